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

#[tokio::test]
async fn a_second_run_on_the_same_sqlite_file_exits_5_within_a_second() {
    let p = Project::new();
    p.add_model(&ModelOpts::mlp(8));
    p.add_input("events", DATE, 200_000, 8, None);
    p.add_job("daily", "events", "m", "daily", "");
    let first = p.spawn_run("jobs/daily.toml", None);
    // The first run writes its `running` ledger row after taking the output's lock. Watched
    // read-only: probing the lock itself would contend for it (and could take it first).
    wait_for("the first run's ledger row", 60, || async {
        running_runs(&p).await == Some(1)
    })
    .await;
    signal(first.id(), "STOP");
    let started = std::time::Instant::now();
    let second = p.run("jobs/daily.toml", None);
    let waited = started.elapsed();
    signal(first.id(), "CONT");
    assert_eq!(second.status.code(), Some(5), "{}", text(&second));
    assert!(
        waited < std::time::Duration::from_secs(1),
        "the second run took {waited:?} to give up"
    );
    assert_ok(&finish(first).await);
    let pool = SqlitePool::connect(&p.sqlite_url()).await.unwrap();
    let (n, runs): (i64, i64) =
        sqlx::query_as("SELECT count(*), count(DISTINCT run_id) FROM daily WHERE ds = ?")
            .bind(DATE)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!((n, runs), (200_000, 1));
    let statuses: Vec<String> = sqlx::query_scalar("SELECT status FROM scorer_runs")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(statuses, vec!["succeeded"]);
}

#[tokio::test]
async fn sigterm_cancels_a_sqlite_run_and_drops_its_staging_table() {
    let p = Project::new();
    p.add_model(&ModelOpts::mlp(8));
    p.add_input("events", DATE, 200_000, 8, None);
    p.add_job("daily", "events", "m", "daily", "");
    assert_ok(&p.run("jobs/daily.toml", None));
    let pool = SqlitePool::connect(&p.sqlite_url()).await.unwrap();
    let before: Vec<(i64, String)> = sqlx::query_as("SELECT id, run_id FROM daily ORDER BY id")
        .fetch_all(&pool)
        .await
        .unwrap();

    let child = p.spawn_run("jobs/daily.toml", None);
    wait_for("the staging table", 60, || has_staging_table(&pool)).await;
    signal(child.id(), "STOP");
    signal(child.id(), "TERM");
    signal(child.id(), "CONT");
    let out = finish(child).await;
    assert_eq!(out.status.code(), Some(6), "{}", text(&out));
    assert!(
        !has_staging_table(&pool).await,
        "the staging table was left behind"
    );
    let after: Vec<(i64, String)> = sqlx::query_as("SELECT id, run_id FROM daily ORDER BY id")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(before, after);
    let status: String =
        sqlx::query_scalar("SELECT status FROM scorer_runs ORDER BY started_at DESC LIMIT 1")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(status, "cancelled");
}

#[tokio::test]
async fn a_sqlite_run_killed_mid_way_is_swept_by_gc() {
    let p = Project::new();
    p.add_model(&ModelOpts::mlp(8));
    p.add_input("events", DATE, 200_000, 8, None);
    p.add_job("daily", "events", "m", "daily", "");
    let pool = SqlitePool::connect_with(
        sqlx::sqlite::SqliteConnectOptions::new()
            .filename(p.path().join("scorer.db"))
            .create_if_missing(true),
    )
    .await
    .unwrap();
    let child = p.spawn_run("jobs/daily.toml", None);
    wait_for("the staging table", 60, || has_staging_table(&pool)).await;
    signal(child.id(), "KILL");
    let out = finish(child).await;
    assert_eq!(out.status.code(), None, "{}", text(&out));

    // Its heartbeat is fresh, so a gc with the default staleness leaves it alone.
    let gc = p.scorer(&["gc"], None);
    assert_ok(&gc);
    assert!(
        String::from_utf8_lossy(&gc.stdout).contains("0 dead run(s) marked abandoned, 1 running")
    );
    let gc = p.scorer(&["gc", "daily", "--stale-after", "0s"], None);
    assert_ok(&gc);
    let stdout = String::from_utf8_lossy(&gc.stdout);
    assert!(
        stdout.contains("1 dead run(s) marked abandoned"),
        "{stdout}"
    );
    assert!(!has_staging_table(&pool).await, "gc left the staging table");
    let status: String = sqlx::query_scalar("SELECT status FROM scorer_runs")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(status, "abandoned");
    assert_ok(&p.run("jobs/daily.toml", None));
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM daily WHERE ds = ?")
        .bind(DATE)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(n, 200_000);
}

/// Whether a run's staging table for `daily` exists.
async fn has_staging_table(pool: &SqlitePool) -> bool {
    sqlx::query_scalar::<_, i64>(
        "SELECT count(*) FROM sqlite_master WHERE name LIKE 'daily\\_\\_stg\\_%' ESCAPE '\\'",
    )
    .fetch_one(pool)
    .await
    .unwrap_or(0)
        > 0
}
