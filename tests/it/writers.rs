//! Parquet written by the engines teams use, not by this project: Spark 4.3 (INT96 timestamps,
//! part files with `_SUCCESS` and `.crc` beside them), DuckDB 2.0 (its own row groups), and
//! pyarrow with page indexes, bloom filters, small pages and a file with no row group at all.
//! Each holds the same rows (scripts/fixtures/make_writers.py) with timestamp, decimal, struct
//! and list columns beside the features; each must score exactly as pyarrow's default layout.
//! And a row group of over a million rows, as Spark's block size makes them, against small ones.

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
    let dir = repo().join("tests/fixtures/writers").join(writer);
    scored_in(p, writer, &dir).await
}

/// Scores `<dir>/dt=DATE/` as job `name` (see [`scored`]).
async fn scored_in(p: &Project, name: &str, dir: &std::path::Path) -> BTreeMap<i64, f64> {
    let writer = name;
    let job = p.path().join(format!("{writer}.toml"));
    std::fs::write(
        &job,
        format!(
            r#"name = "{writer}"
[input]
url = "{}/dt={{{{ ds }}}}/"
id_column = "id"
[model]
name = "quickstart_mlp"
version = "1"
[output]
table = "{writer}_scores"
"#,
            dir.display()
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

/// One row group of 1,200,000 rows (what Spark's 128 MiB blocks make of a narrow table), written
/// by pyarrow, scores exactly as the same rows in 100,000-row groups.
#[tokio::test]
async fn a_row_group_of_over_a_million_rows_scores_as_small_ones() {
    let python = std::env::var("SCORER_TEST_DELTA_PYTHON").unwrap_or_else(|_| {
        panic!("SCORER_TEST_DELTA_PYTHON is not set: run the tests with scripts/test.sh")
    });
    let p = Project::new();
    let script = r#"
import sys, numpy as np, pyarrow as pa, pyarrow.parquet as pq, os
root, date = sys.argv[1], sys.argv[2]
n = 1_200_000
rng = np.random.default_rng(38)
cols = {"id": pa.array(np.arange(n, dtype=np.int64))}
for f in range(8):
    cols[f"f{f}"] = pa.array(rng.normal(size=n).astype(np.float32))
t = pa.table(cols)
for name, group in (("big", n), ("small", 100_000)):
    d = os.path.join(root, name, f"dt={date}")
    os.makedirs(d)
    pq.write_table(t, os.path.join(d, "part-0.parquet"), row_group_size=group)
assert pq.ParquetFile(os.path.join(root, "big", f"dt={date}", "part-0.parquet")).metadata.num_row_groups == 1
"#;
    let out = std::process::Command::new(python)
        .args(["-c", script, p.path().to_str().unwrap(), DATE])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", crate::common::text(&out));
    let big = scored_in(&p, "big", &p.path().join("big")).await;
    let small = scored_in(&p, "small", &p.path().join("small")).await;
    assert_eq!(big.len(), 1_200_000);
    assert!(big == small, "the same rows must score the same");
}
