//! A vector output through every sink. The same weights are declared twice: once as three scalar
//! outputs (`a`, `b`, `c`), once as one vector output `probs` of size 3. Every sink must store the
//! vector as the three scalars in order: PostgreSQL as `real[]` (binary COPY of a float4 array),
//! SQLite as a JSON array (or, with `output.vector_type = "blob"`, little-endian f32 bytes),
//! Parquet as a list of floats.

use std::collections::BTreeMap;

use arrow::array::{Array, AsArray, Int64Array};
use arrow::datatypes::Float32Type;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use scorer::model::spec::{Activation, ModelKind};
use scorer::sink::objects::Manifest;
use sqlx::SqlitePool;

use crate::common::*;

const ROWS: u64 = 20_000;

type Rows = BTreeMap<i64, Vec<f32>>;

/// A project with model `m3` (three scalar outputs), model `mv` (the same weights, one vector
/// output) and jobs writing each to a table, and `mv` to Parquet files too.
fn project() -> Project {
    let p = Project::new();
    let scalar_dir = p.add_model(&ModelOpts {
        name: "m3",
        kind: ModelKind::Mlp,
        inputs: 8,
        hidden: vec![8],
        outputs: vec!["a", "b", "c"],
        output_activation: Activation::Sigmoid,
    });
    let vector_dir = p.models_dir().join("mv").join("1");
    std::fs::create_dir_all(&vector_dir).unwrap();
    for f in ["model.toml", "model.safetensors"] {
        std::fs::copy(scalar_dir.join(f), vector_dir.join(f)).unwrap();
    }
    let spec_path = vector_dir.join("model.toml");
    let mut spec: toml::Table = std::fs::read_to_string(&spec_path)
        .unwrap()
        .parse()
        .unwrap();
    let mut probs = toml::Table::new();
    probs.insert("name".into(), "probs".into());
    probs.insert("size".into(), 3.into());
    spec.insert("outputs".into(), toml::Value::Array(vec![probs.into()]));
    std::fs::write(&spec_path, toml::to_string(&spec).unwrap()).unwrap();

    p.add_input("events", DATE, ROWS, 8, None);
    p.add_job("scalars", "events", "m3", "scalar_scores", "");
    p.add_job("vectors", "events", "mv", "vector_scores", "");
    let files = std::fs::read_to_string(p.path().join("jobs/vectors.toml"))
        .unwrap()
        .replace(
            "table = \"vector_scores\"",
            "url = \"out/vectors/dt={{ ds }}/\"",
        )
        .replace("name = \"vectors\"", "name = \"vector_files\"");
    std::fs::write(p.path().join("jobs/vector_files.toml"), files).unwrap();
    p
}

fn assert_same(vectors: &Rows, scalars: &Rows, sink: &str) {
    assert_eq!(vectors.len(), ROWS as usize, "{sink}: row count");
    assert_eq!(
        vectors, scalars,
        "{sink}: the vector is not the three scalars in order"
    );
}

#[tokio::test]
async fn a_vector_output_lands_in_postgres_as_real_arrays() {
    let (url, pool) = fresh_pg("vectors").await;
    let p = project();
    assert_ok(&p.run("jobs/scalars.toml", Some(&url)));
    assert_ok(&p.run("jobs/vectors.toml", Some(&url)));
    let scalars: Rows =
        sqlx::query_as::<_, (i64, f32, f32, f32)>("SELECT id, a, b, c FROM scalar_scores")
            .fetch_all(&pool)
            .await
            .unwrap()
            .into_iter()
            .map(|(id, a, b, c)| (id, vec![a, b, c]))
            .collect();
    let vectors: Rows = sqlx::query_as::<_, (i64, Vec<f32>)>("SELECT id, probs FROM vector_scores")
        .fetch_all(&pool)
        .await
        .unwrap()
        .into_iter()
        .collect();
    assert_same(&vectors, &scalars, "PostgreSQL");
    assert_eq!(column_type(&pool, "vector_scores", "probs").await, "real[]");
    // The ledger's statistics cover every element of the vector.
    let count: i64 = sqlx::query_scalar(
        "SELECT (score_stats->'probs'->>'count')::bigint FROM scorer.runs WHERE job = 'vectors'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(count, 3 * ROWS as i64);
}

async fn sqlite_scalars(pool: &SqlitePool) -> Rows {
    sqlx::query_as::<_, (i64, f64, f64, f64)>("SELECT id, a, b, c FROM scalar_scores")
        .fetch_all(pool)
        .await
        .unwrap()
        .into_iter()
        .map(|(id, a, b, c)| (id, vec![a as f32, b as f32, c as f32]))
        .collect()
}

#[tokio::test]
async fn a_vector_output_lands_in_sqlite_as_json_and_in_parquet_as_lists() {
    let p = project();
    assert_ok(&p.run("jobs/scalars.toml", None));
    assert_ok(&p.run("jobs/vectors.toml", None));
    assert_ok(&p.run("jobs/vector_files.toml", None));
    let pool = SqlitePool::connect(&p.sqlite_url()).await.unwrap();
    let scalars = sqlite_scalars(&pool).await;

    let vectors: Rows = sqlx::query_as::<_, (i64, String)>("SELECT id, probs FROM vector_scores")
        .fetch_all(&pool)
        .await
        .unwrap()
        .into_iter()
        .map(|(id, json)| {
            let values: Vec<f32> = serde_json::from_str(&json).unwrap();
            (id, values)
        })
        .collect();
    assert_same(&vectors, &scalars, "SQLite");

    let dir = p.path().join(format!("out/vectors/dt={DATE}"));
    let manifest: Manifest =
        serde_json::from_slice(&std::fs::read(dir.join("_manifest.json")).unwrap()).unwrap();
    let mut files = Rows::new();
    for f in &manifest.files {
        let file = std::fs::File::open(dir.join(&f.path)).unwrap();
        for batch in ParquetRecordBatchReaderBuilder::try_new(file)
            .unwrap()
            .build()
            .unwrap()
        {
            let batch = batch.unwrap();
            let ids = batch
                .column_by_name("id")
                .unwrap()
                .as_any()
                .downcast_ref::<Int64Array>()
                .unwrap()
                .clone();
            let probs = batch.column_by_name("probs").unwrap().as_fixed_size_list();
            for r in 0..batch.num_rows() {
                let row = probs.value(r);
                let values = row.as_primitive::<Float32Type>().values().to_vec();
                files.insert(ids.value(r), values);
            }
        }
    }
    assert_same(&files, &scalars, "Parquet");
}

#[tokio::test]
async fn a_vector_output_lands_in_sqlite_as_little_endian_floats_with_vector_type_blob() {
    let p = project();
    let job = std::fs::read_to_string(p.path().join("jobs/vectors.toml")).unwrap();
    std::fs::write(
        p.path().join("jobs/vector_blobs.toml"),
        job.replace("name = \"vectors\"", "name = \"vector_blobs\"")
            .replace(
                "table = \"vector_scores\"",
                "table = \"vector_blobs\"\nvector_type = \"blob\"",
            ),
    )
    .unwrap();
    assert_ok(&p.run("jobs/scalars.toml", None));
    assert_ok(&p.run("jobs/vector_blobs.toml", None));
    let pool = SqlitePool::connect(&p.sqlite_url()).await.unwrap();
    let declared: String = sqlx::query_scalar(
        "SELECT type FROM pragma_table_info('vector_blobs') WHERE name = 'probs'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(declared, "BLOB");
    let blobs: Rows = sqlx::query_as::<_, (i64, Vec<u8>)>("SELECT id, probs FROM vector_blobs")
        .fetch_all(&pool)
        .await
        .unwrap()
        .into_iter()
        .map(|(id, bytes)| {
            assert_eq!(bytes.len(), 12);
            let values = bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            (id, values)
        })
        .collect();
    assert_same(&blobs, &sqlite_scalars(&pool).await, "SQLite BLOB");

    // PostgreSQL has no such storage: the run says which to use instead.
    let (url, _) = fresh_pg("blobs").await;
    let out = p.scorer(
        &["run", "jobs/vector_blobs.toml", "--date", DATE],
        Some(&url),
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("\"blob\" is for SQLite"),
        "{}",
        text(&out)
    );
}
