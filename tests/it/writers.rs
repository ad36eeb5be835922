//! Parquet written by the engines teams use, not by this project: Spark 4.3 (INT96 timestamps,
//! part files with `_SUCCESS` and `.crc` beside them), DuckDB 2.0 (its own row groups), and
//! pyarrow with page indexes, bloom filters, small pages and a file with no row group at all.
//! Each holds the same rows (scripts/fixtures/make_writers.py) with timestamp, decimal, struct
//! and list columns beside the features; each must score exactly as pyarrow's default layout.

use std::collections::BTreeMap;
use std::path::PathBuf;

use sqlx::sqlite::SqlitePool;

use crate::common::{DATE, Project, assert_ok};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Scores `tests/fixtures/writers/<writer>/dt=DATE/` (the whole prefix, as a job would name a
/// table's directory) with models/quickstart_mlp and returns (id, score).
async fn scored(p: &Project, writer: &str) -> BTreeMap<i64, f64> {
    let job = p.path().join(format!("{writer}.toml"));
    std::fs::write(
        &job,
        format!(
            r#"name = "{writer}"
[input]
url = "{}/tests/fixtures/writers/{writer}/dt={{{{ ds }}}}/"
id_column = "id"
[model]
name = "quickstart_mlp"
version = "1"
[output]
table = "{writer}_scores"
"#,
            repo().display()
        ),
    )
    .unwrap();
    let out = p.scorer(
        &[
            "--models-dir",
            repo().join("models").to_str().unwrap(),
            "run",
            job.to_str().unwrap(),
            "--date",
            DATE,
        ],
        None,
    );
    assert_ok(&out);
    let pool = SqlitePool::connect(&p.sqlite_url()).await.unwrap();
    sqlx::query_as::<_, (i64, f64)>(sqlx::AssertSqlSafe(format!(
        "SELECT id, score FROM {writer}_scores WHERE ds = '{DATE}'"
    )))
    .fetch_all(&pool)
    .await
    .unwrap()
    .into_iter()
    .collect()
}

#[tokio::test]
async fn spark_duckdb_and_indexed_files_score_as_pyarrows_layout() {
    let p = Project::new();
    let reference = scored(&p, "pyarrow").await;
    assert_eq!(reference.len(), 6_000);
    for writer in ["spark", "duckdb", "indexed"] {
        let got = scored(&p, writer).await;
        assert_eq!(
            got, reference,
            "{writer}: the same rows must score the same"
        );
    }
}
