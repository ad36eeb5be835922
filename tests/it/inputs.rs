//! Bad input through the binary: each policy (row guards, NaN and infinity, duplicate ids, other
//! writers' temporary files) with the message a user needs and the date's previous rows intact.

use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, Float32Array, Int64Array};
use arrow::record_batch::RecordBatch;
use sqlx::sqlite::SqlitePool;

use crate::common::{DATE, ModelOpts, Project, assert_ok, text};

/// Writes `data/<set>/dt=DATE/<name>` with ids `ids` and features f0..f7, where `odd` sets
/// (row, feature, value) cells.
fn write_parquet(p: &Project, set: &str, name: &str, ids: &[i64], odd: &[(usize, usize, f32)]) {
    let dir = p.path().join("data").join(set).join(format!("dt={DATE}"));
    std::fs::create_dir_all(&dir).unwrap();
    let mut cols: Vec<(String, ArrayRef)> = vec![(
        "id".to_string(),
        Arc::new(Int64Array::from(ids.to_vec())) as ArrayRef,
    )];
    for f in 0..8 {
        let values: Vec<f32> = (0..ids.len())
            .map(|r| {
                odd.iter()
                    .find(|(row, feat, _)| *row == r && *feat == f)
                    .map_or(r as f32 * 0.01 + f as f32, |(_, _, v)| *v)
            })
            .collect();
        cols.push((format!("f{f}"), Arc::new(Float32Array::from(values))));
    }
    let batch = RecordBatch::try_from_iter(cols).unwrap();
    let file = std::fs::File::create(dir.join(name)).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

fn project(extra_input: &str) -> Project {
    let p = Project::new();
    p.add_model(&ModelOpts::mlp(8));
    p.add_job("daily", "events", "m", "daily", extra_input);
    p
}

async fn rows(p: &Project) -> i64 {
    let pool = SqlitePool::connect(&p.sqlite_url()).await.unwrap();
    sqlx::query_scalar("SELECT count(*) FROM daily WHERE ds = ?")
        .bind(DATE)
        .fetch_one(&pool)
        .await
        .unwrap()
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn clear(p: &Project) {
    let dir = p.path().join("data/events").join(format!("dt={DATE}"));
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn an_input_far_smaller_than_the_dates_previous_run_does_not_replace_it() {
    let p = project("");
    let ids: Vec<i64> = (0..5_000).collect();
    write_parquet(&p, "events", "part-0.parquet", &ids, &[]);
    assert_ok(&p.run("daily", None));
    assert_eq!(rows(&p).await, 5_000);

    // Half-landed data: a fifth of the rows.
    clear(&p);
    write_parquet(&p, "events", "part-0.parquet", &ids[..1_000], &[]);
    let out = p.run("daily", None);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        stderr(&out).contains("80.0% fewer than the 5000"),
        "{}",
        text(&out)
    );
    assert_eq!(rows(&p).await, 5_000, "the date keeps its previous rows");

    // An input with no rows at all.
    clear(&p);
    write_parquet(&p, "events", "part-0.parquet", &[], &[]);
    let out = p.run("daily", None);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(stderr(&out).contains("min_rows = 1"), "{}", text(&out));
    assert_eq!(rows(&p).await, 5_000);

    // Forced: the smaller input replaces the date.
    clear(&p);
    write_parquet(&p, "events", "part-0.parquet", &ids[..1_000], &[]);
    assert_ok(&p.scorer(&["run", "daily", "--date", DATE, "--allow-row-drop"], None));
    assert_eq!(rows(&p).await, 1_000);
}

#[tokio::test]
async fn nan_and_infinite_features_fail_or_are_rejected_never_scored() {
    let p = project("");
    let ids: Vec<i64> = (0..100).collect();
    write_parquet(
        &p,
        "events",
        "part-0.parquet",
        &ids,
        &[(3, 2, f32::NAN), (5, 4, f32::INFINITY)],
    );
    let out = p.run("daily", None);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let err = stderr(&out);
    assert!(
        err.contains("column `f2`") && err.contains("part-0.parquet") && err.contains("on_nan"),
        "{err}"
    );

    let p = project("on_nan = \"skip\"");
    write_parquet(
        &p,
        "events",
        "part-0.parquet",
        &ids,
        &[(3, 2, f32::NAN), (5, 4, f32::INFINITY)],
    );
    assert_ok(&p.run("daily", None));
    assert_eq!(rows(&p).await, 98);
    let pool = SqlitePool::connect(&p.sqlite_url()).await.unwrap();
    let rejected: i64 = sqlx::query_scalar("SELECT rows_rejected FROM scorer_runs")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(rejected, 2);
    // Past input.max_rejected_fraction the run fails rather than publish what is left.
    std::fs::write(
        p.path().join("jobs/daily.toml"),
        std::fs::read_to_string(p.path().join("jobs/daily.toml"))
            .unwrap()
            .replace(
                "on_nan = \"skip\"",
                "on_nan = \"skip\"\nmax_rejected_fraction = 0.01",
            ),
    )
    .unwrap();
    let out = p.run("daily", None);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        stderr(&out).contains("2 of the 100 input rows (2.0%) were rejected"),
        "{}",
        text(&out)
    );
    let missing: Vec<i64> = sqlx::query_scalar(
        "SELECT id FROM (SELECT 3 AS id UNION SELECT 5) WHERE id IN (SELECT id FROM daily)",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert!(missing.is_empty(), "rows 3 and 5 must not be scored");
}

#[tokio::test]
async fn a_duplicate_id_fails_the_run_naming_it() {
    let p = project("");
    write_parquet(
        &p,
        "events",
        "part-0.parquet",
        &(0..1_000).collect::<Vec<_>>(),
        &[],
    );
    assert_ok(&p.run("daily", None));
    write_parquet(&p, "events", "part-1.parquet", &[5_000, 777, 5_001], &[]);
    let out = p.run("daily", None);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        stderr(&out).contains("id 777 appears more than once"),
        "{}",
        text(&out)
    );
    assert_eq!(rows(&p).await, 1_000);
}

#[tokio::test]
async fn other_writers_temporary_files_are_not_read() {
    let p = project("");
    write_parquet(
        &p,
        "events",
        "part-0.parquet",
        &(0..100).collect::<Vec<_>>(),
        &[],
    );
    let dir = p.path().join("data/events").join(format!("dt={DATE}"));
    // Spark's and Hive's in-progress output and a half-written file: garbage if read.
    for junk in [
        "_temporary/0/_temporary/attempt_1/part-9.parquet",
        ".spark-staging-7/part-9.parquet",
        ".hive-staging_1/part-9.parquet",
        "_runs/0190/part-9.parquet",
    ] {
        let path = dir.join(junk);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, b"not parquet").unwrap();
    }
    // A glob over subdirectories is what would pick them up.
    std::fs::write(
        p.path().join("jobs/daily.toml"),
        std::fs::read_to_string(p.path().join("jobs/daily.toml"))
            .unwrap()
            .replace("/*.parquet\"", "/\""),
    )
    .unwrap();
    let out = p.run("daily", None);
    assert_ok(&out);
    assert_eq!(rows(&p).await, 100);
    assert!(Path::new(&dir).exists());
}
