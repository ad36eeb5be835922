//! The Parquet sink: `[output] url` writes a date's rows as Parquet files under a run-specific
//! prefix and commits them by replacing `_manifest.json`; reruns replace, failures leave the
//! previous manifest (and its files) alone. Locally (file://) and on S3 (moto).

use std::collections::BTreeMap;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{Float32Type, Int64Type};
use bytes::Bytes;
use object_store::ObjectStoreExt;
use object_store::path::Path;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use scorer::sink::objects::Manifest;
use sqlx::SqlitePool;

use crate::cloud::{create_s3_bucket, s3_store, unique};
use crate::common::*;

/// A project with the job `local` (SQLite table `local_scores`) and the job `files` writing the
/// same rows as Parquet to `output_url`.
fn project(output_url: &str, storage: &str) -> (Project, std::path::PathBuf) {
    let (p, dir) = crate::cloud::project();
    std::fs::write(
        p.path().join("jobs/files.toml"),
        events_job_toml("files", &format!("url = \"{output_url}\"\n{storage}")),
    )
    .unwrap();
    (p, dir)
}

async fn local_scores(p: &Project) -> BTreeMap<i64, f32> {
    assert_ok(&p.run("local", None));
    let pool = SqlitePool::connect(&p.sqlite_url()).await.unwrap();
    sqlx::query_as::<_, (i64, f64)>("SELECT id, score FROM local_scores WHERE ds = ?")
        .bind(DATE)
        .fetch_all(&pool)
        .await
        .unwrap()
        .into_iter()
        .map(|(id, s)| (id, s as f32))
        .collect()
}

/// Reads the rows a manifest points at: (id -> score), checking ds and run_id on every row.
fn read_files(manifest: &Manifest, get: impl Fn(&str) -> Bytes) -> BTreeMap<i64, f32> {
    let mut rows = BTreeMap::new();
    for f in &manifest.files {
        let reader = ParquetRecordBatchReaderBuilder::try_new(get(&f.path))
            .unwrap()
            .build()
            .unwrap();
        let mut in_file = 0;
        for batch in reader {
            let batch = batch.unwrap();
            let ids = batch
                .column_by_name("id")
                .unwrap()
                .as_primitive::<Int64Type>();
            let scores = batch
                .column_by_name("score")
                .unwrap()
                .as_primitive::<Float32Type>();
            let runs = batch.column_by_name("run_id").unwrap().as_string::<i32>();
            let ds = batch
                .column_by_name("ds")
                .unwrap()
                .as_primitive::<arrow::datatypes::Date32Type>();
            for r in 0..batch.num_rows() {
                assert_eq!(runs.value(r), manifest.run_id.to_string());
                assert_eq!(ds.value_as_date(r).unwrap().to_string(), DATE);
                assert!(
                    rows.insert(ids.value(r), scores.value(r)).is_none(),
                    "duplicate id"
                );
            }
            in_file += batch.num_rows() as u64;
            assert_eq!(scores.null_count(), 0);
        }
        assert_eq!(in_file, f.rows, "{}: rows as the manifest says", f.path);
    }
    assert_eq!(rows.len() as u64, manifest.rows);
    rows
}

fn runs_in(dir: &std::path::Path) -> Vec<String> {
    let mut runs: Vec<String> = std::fs::read_dir(dir.join("_runs"))
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    runs.sort();
    runs
}

#[tokio::test]
async fn local_parquet_output_replaces_the_date_through_the_manifest() {
    let out = tempfile::tempdir().unwrap();
    let url = format!("file://{}/scores/dt={{{{ ds }}}}/", out.path().display());
    let (p, input) = project(&url, "");
    let want = local_scores(&p).await;
    let day = out.path().join(format!("scores/dt={DATE}"));
    let manifest = || -> Manifest {
        serde_json::from_slice(&std::fs::read(day.join("_manifest.json")).unwrap()).unwrap()
    };
    let get = |rel: &str| Bytes::from(std::fs::read(day.join(rel)).unwrap());

    let first = p.run("files", None);
    assert_ok(&first);
    assert!(String::from_utf8_lossy(&first.stdout).contains("_manifest.json"));
    let m1 = manifest();
    assert_eq!(m1.format, "scorer-manifest/1");
    assert_eq!((m1.job.as_str(), m1.rows), ("files", 6_000));
    assert_eq!(read_files(&m1, get), want);
    for f in &m1.files {
        let on_disk = std::fs::metadata(day.join(&f.path)).unwrap().len();
        assert_eq!(f.size, on_disk, "{}: size as the manifest says", f.path);
    }

    // Rerun: a new manifest and files; the previous run's files are kept one generation.
    assert_ok(&p.run("files", None));
    let m2 = manifest();
    assert_ne!(m2.run_id, m1.run_id);
    assert_eq!(read_files(&m2, get), want);
    assert_eq!(
        runs_in(&day),
        vec![m1.run_id.to_string(), m2.run_id.to_string()]
    );
    // A third run deletes the first run's files.
    assert_ok(&p.run("files", None));
    let m3 = manifest();
    assert_eq!(
        runs_in(&day),
        vec![m2.run_id.to_string(), m3.run_id.to_string()]
    );

    // A failing run leaves the manifest and its files as they were, and nothing of its own.
    std::fs::write(input.join("part-00001.parquet"), b"not parquet").unwrap();
    let failed = p.run("files", None);
    assert_eq!(failed.status.code(), Some(3), "{}", text(&failed));
    assert_eq!(manifest(), m3);
    assert_eq!(read_files(&m3, get), want);
    assert_eq!(
        runs_in(&day),
        vec![m2.run_id.to_string(), m3.run_id.to_string()]
    );
    let pool = SqlitePool::connect(&p.sqlite_url()).await.unwrap();
    let (status, table): (String, String) = sqlx::query_as(
        "SELECT status, output_table FROM scorer_runs ORDER BY started_at DESC LIMIT 1",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(status, "failed");
    assert!(table.ends_with(&format!("scores/dt={DATE}/")), "{table}");
}

#[tokio::test]
async fn s3_parquet_output_matches_the_table() {
    let bucket = unique("scorerout");
    create_s3_bucket(&bucket).await;
    let url = format!("s3://{bucket}/scores/dt={{{{ ds }}}}/");
    let storage = "[output.storage]\nendpoint = \"${SCORER_TEST_S3_ENDPOINT}\"\nallow_http = true\nregion = \"us-east-1\"\nmax_retries = 1";
    let (p, _) = project(&url, storage);
    let want = local_scores(&p).await;
    let env = [
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
    ];
    for _ in 0..2 {
        assert_ok(&p.scorer_env(&["run", "files", "--date", DATE], None, &env));
    }

    let store = s3_store(&bucket);
    let day = format!("scores/dt={DATE}");
    let bytes = |path: String| async {
        let store = &store;
        store
            .get(&Path::from(path))
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap()
    };
    let manifest: Manifest =
        serde_json::from_slice(&bytes(format!("{day}/_manifest.json")).await).unwrap();
    let mut files = BTreeMap::new();
    for f in &manifest.files {
        files.insert(f.path.clone(), bytes(format!("{day}/{}", f.path)).await);
    }
    assert_eq!(read_files(&manifest, |rel| files[rel].clone()), want);
}
