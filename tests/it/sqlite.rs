//! The embedded default: no DATABASE_URL, results and ledger in ./scorer.db, same replace-a-date
//! semantics as PostgreSQL.

use sqlx::Row;
use sqlx::SqlitePool;

use crate::common::*;

#[tokio::test]
async fn quickstart_shaped_job_lands_in_sqlite_and_reruns_replace_the_date() {
    let p = Project::new();
    p.add_model(&ModelOpts::mlp(8));
    p.add_input("events", DATE, 30_000, 8, Some((3, 0.01)));
    p.add_input("events", "2026-11-23", 1_000, 8, None);
    p.add_job("daily", "events", "m", "scores.daily", "on_null = \"skip\"");

    assert_ok(&p.scorer(&["run", "jobs/daily.toml", "--date", "2026-11-23"], None));
    let first = p.run("daily", None); // by name, from jobs/
    assert_ok(&first);
    let stdout = String::from_utf8_lossy(&first.stdout);
    assert!(stdout.contains("scores__daily"), "{stdout}");
    assert!(stdout.contains("sqlite3"), "{stdout}");
    assert_ok(&p.run("jobs/daily.toml", None));

    let pool = SqlitePool::connect(&p.sqlite_url()).await.unwrap();
    let rejected: i64 = sqlx::query_scalar(
        "SELECT rows_rejected FROM scorer_runs WHERE logical_date = ? ORDER BY started_at DESC LIMIT 1",
    )
    .bind(DATE)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(
        rejected > 100,
        "expected ~1% of 30000 rows skipped, got {rejected}"
    );
    let row = sqlx::query(
        "SELECT count(*), count(DISTINCT run_id), count(DISTINCT id) FROM scores__daily WHERE ds = ?",
    )
    .bind(DATE)
    .fetch_one(&pool)
    .await
    .unwrap();
    let expected = 30_000 - rejected;
    assert_eq!(row.get::<i64, _>(0), expected);
    assert_eq!(row.get::<i64, _>(1), 1);
    assert_eq!(row.get::<i64, _>(2), expected);
    // The other date is untouched.
    let other: i64 =
        sqlx::query_scalar("SELECT count(*) FROM scores__daily WHERE ds = '2026-11-23'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(other, 1_000);
    let statuses: Vec<String> =
        sqlx::query_scalar("SELECT status FROM scorer_runs ORDER BY started_at")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(statuses, vec!["succeeded"; 3]);
}

#[tokio::test]
async fn a_failed_run_keeps_the_previous_rows_in_sqlite() {
    let p = Project::new();
    p.add_model(&ModelOpts::mlp(8));
    let dir = p.add_input("events", DATE, 5_000, 8, Some((3, 0.01)));
    p.add_job("daily", "events", "m", "daily", "on_null = \"fill:0\"");
    assert_ok(&p.run("jobs/daily.toml", None));
    let f = dir.join("part-00002.parquet");
    std::fs::write(&f, b"not parquet at all").unwrap();
    let out = p.run("jobs/daily.toml", None);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let pool = SqlitePool::connect(&p.sqlite_url()).await.unwrap();
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM daily WHERE ds = ?")
        .bind(DATE)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(n, 5_000);
    let (status, error): (String, String) =
        sqlx::query_as("SELECT status, error FROM scorer_runs ORDER BY started_at DESC LIMIT 1")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(status, "failed");
    assert!(error.contains("part-00002.parquet"), "{error}");
}
