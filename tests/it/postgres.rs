//! The PostgreSQL sink against a real server: atomic, idempotent date partitions, a ledger row per
//! run, and failures that leave the previous rows untouched.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use sqlx::Row;
use sqlx::postgres::PgPool;

use crate::common::*;

async fn counts(pool: &PgPool, table: &str) -> (i64, i64) {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT count(*), count(DISTINCT run_id) FROM {table} WHERE ds = DATE '{DATE}'"
    )))
    .fetch_one(pool)
    .await
    .unwrap();
    (row.get(0), row.get(1))
}

async fn ledger(pool: &PgPool) -> Vec<(String, Option<i64>, Option<String>)> {
    sqlx::query("SELECT status, rows_written, error FROM scorer.runs ORDER BY started_at")
        .fetch_all(pool)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect()
}

fn project(rows: u64) -> Project {
    let p = Project::new();
    p.add_model(&ModelOpts::mlp(8));
    p.add_input("events", DATE, rows, 8, Some((3, 0.01)));
    p.add_job(
        "daily",
        "events",
        "m",
        "scores.daily",
        "on_null = \"fill:0.0\"",
    );
    p
}

#[tokio::test]
async fn run_twice_replaces_the_date_and_a_reader_never_sees_a_mix() {
    let (url, pool) = fresh_pg("twice").await;
    let rows = 150_000;
    let p = project(rows);
    let first = p.run("jobs/daily.toml", Some(&url));
    assert_ok(&first);
    let stdout = String::from_utf8_lossy(&first.stdout);
    assert!(stdout.contains(&format!("{rows} written")), "{stdout}");
    assert!(stdout.contains("psql"), "{stdout}");
    assert_eq!(counts(&pool, "scores.daily").await, (rows as i64, 1));

    // A reader polls the date while the second run replaces it. The run starts only once the
    // reader has its first answer, so the reads span the swap however fast the run is.
    let done = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let reader = {
        let (pool, done, reads) = (pool.clone(), Arc::clone(&done), Arc::clone(&reads));
        tokio::spawn(async move {
            let mut seen = Vec::new();
            while !done.load(Ordering::Relaxed) {
                seen.push(counts(&pool, "scores.daily").await);
                reads.fetch_add(1, Ordering::Relaxed);
            }
            seen
        })
    };
    while reads.load(Ordering::Relaxed) == 0 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let second = tokio::task::spawn_blocking(move || {
        let out = p.run("jobs/daily.toml", Some(&url));
        (p, out)
    })
    .await
    .unwrap();
    done.store(true, Ordering::Relaxed);
    let (p, out) = second;
    assert_ok(&out);
    let seen = reader.await.unwrap();
    assert!(
        seen.len() >= 2,
        "the reader only got {} reads in",
        seen.len()
    );
    for s in &seen {
        assert_eq!(*s, (rows as i64, 1), "a reader saw a mix or a gap: {s:?}");
    }
    assert_eq!(counts(&pool, "scores.daily").await, (rows as i64, 1));

    // The two runs are in the ledger, the partition holds the second run's rows, no staging left.
    let runs = ledger(&pool).await;
    assert_eq!(runs.len(), 2);
    assert!(
        runs.iter()
            .all(|r| r.0 == "succeeded" && r.1 == Some(rows as i64)),
        "{runs:?}"
    );
    let last_run: uuid::Uuid =
        sqlx::query_scalar("SELECT run_id FROM scorer.runs ORDER BY started_at DESC LIMIT 1")
            .fetch_one(&pool)
            .await
            .unwrap();
    let in_table: uuid::Uuid = sqlx::query_scalar("SELECT DISTINCT run_id FROM scores.daily")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(last_run, in_table);
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT tablename::text FROM pg_tables WHERE schemaname = 'scores' ORDER BY 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(tables, ["daily", "daily_20261124", "daily_quarantine"]);
    drop(p);
}

#[tokio::test]
async fn ledger_records_inputs_model_and_stages() {
    let (url, pool) = fresh_pg("ledger").await;
    let p = project(10_000);
    assert_ok(&p.run("jobs/daily.toml", Some(&url)));
    let row = sqlx::query(
        "SELECT job, logical_date::text, rows_read, rows_scored, rows_rejected, inputs, model_name, \
         model_version, model_sha256, device, stage_seconds, score_stats, host, scorer_version, finished_at IS NOT NULL, \
         memory FROM scorer.runs",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(row.get::<String, _>(0), "daily");
    assert_eq!(row.get::<String, _>(1), DATE);
    assert_eq!(row.get::<i64, _>(2), 10_000);
    assert_eq!(row.get::<i64, _>(3), 10_000);
    assert_eq!(row.get::<i64, _>(4), 0);
    let inputs: serde_json::Value = row.get(5);
    let inputs = inputs.as_array().unwrap();
    assert_eq!(inputs.len(), 3);
    assert!(
        inputs[0]["url"]
            .as_str()
            .unwrap()
            .ends_with("part-00000.parquet")
    );
    assert!(inputs[0]["size"].as_u64().unwrap() > 0);
    assert!(inputs[0]["etag"].is_string());
    assert_eq!(row.get::<String, _>(6), "m");
    assert_eq!(row.get::<String, _>(7), "1");
    let sha: String = row.get(8);
    let spec = std::fs::read_to_string(p.models_dir().join("m/1/model.toml")).unwrap();
    assert!(spec.contains(&sha));
    assert_eq!(row.get::<String, _>(9), "cpu");
    let stages: serde_json::Value = row.get(10);
    for stage in ["plan", "read", "score", "write", "commit", "total"] {
        assert!(
            stages[stage].as_f64().is_some(),
            "stage {stage} missing: {stages}"
        );
    }
    let stats: serde_json::Value = row.get(11);
    assert_eq!(stats["score"]["count"].as_u64(), Some(10_000));
    let mean = stats["score"]["mean"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&mean), "{stats}");
    assert!(!row.get::<String, _>(12).is_empty());
    assert_eq!(row.get::<String, _>(13), env!("CARGO_PKG_VERSION"));
    assert!(row.get::<bool, _>(14));
    let memory: serde_json::Value = row.get(15);
    assert!(
        memory["peak_rss_bytes"].as_u64().unwrap() > 10 << 20,
        "{memory}"
    );
    assert_eq!(memory["block_cache"]["cap_bytes"].as_u64(), Some(128 << 20));
    assert!(
        memory["block_cache"]["reused"].as_u64().is_some(),
        "{memory}"
    );

    // The cap is configurable, and recorded; a malformed value is refused.
    let out = p.scorer_env(
        &["run", "jobs/daily.toml", "--date", DATE],
        Some(&url),
        &[("SCORER_BLOCK_CACHE_MB", "16")],
    );
    assert_ok(&out);
    let cap: Option<i64> = sqlx::query_scalar(
        "SELECT (memory->'block_cache'->>'cap_bytes')::bigint FROM scorer.runs ORDER BY started_at DESC LIMIT 1",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(cap, Some(16 << 20));
    let out = p.scorer_env(
        &["run", "jobs/daily.toml", "--date", DATE],
        Some(&url),
        &[("SCORER_BLOCK_CACHE_MB", "lots")],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

/// Runs a job that must fail and checks exit code, message, ledger row and that the date's
/// previous rows are still there.
async fn fails_and_keeps_previous(
    tag: &str,
    break_it: impl FnOnce(&Project),
    code: i32,
    must_mention: &[&str],
) {
    let (url, pool) = fresh_pg(tag).await;
    let p = project(20_000);
    assert_ok(&p.run("jobs/daily.toml", Some(&url)));
    let before: Vec<(i64, f32)> = sqlx::query_as("SELECT id, score FROM scores.daily ORDER BY id")
        .fetch_all(&pool)
        .await
        .unwrap();
    break_it(&p);
    let out = p.run("jobs/daily.toml", Some(&url));
    assert_eq!(out.status.code(), Some(code), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for m in must_mention {
        assert!(
            stderr.contains(m),
            "error does not mention {m:?}:\n{stderr}"
        );
    }
    let after: Vec<(i64, f32)> = sqlx::query_as("SELECT id, score FROM scores.daily ORDER BY id")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(before, after, "the previous rows changed");
    let runs = ledger(&pool).await;
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[1].0, "failed");
    let error = runs[1].2.clone().unwrap_or_default();
    for m in must_mention {
        assert!(
            error.contains(m),
            "ledger error does not mention {m:?}: {error}"
        );
    }
    let staging: i64 =
        sqlx::query_scalar("SELECT count(*) FROM pg_tables WHERE tablename LIKE '%\\_\\_stg\\_%'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(staging, 0, "a staging table was left behind");
}

fn input_dir(p: &Project) -> std::path::PathBuf {
    p.path().join("data/events").join(format!("dt={DATE}"))
}

#[tokio::test]
async fn missing_feature_column_fails_naming_file_and_column() {
    fails_and_keeps_previous(
        "missing",
        |p| {
            let dir = input_dir(p);
            std::fs::remove_dir_all(&dir).unwrap();
            // f7 is gone: the new day's files only have 7 features.
            p.add_input("events", DATE, 20_000, 7, None);
        },
        3,
        &["part-00000.parquet", "`f7`", "missing"],
    )
    .await;
}

#[tokio::test]
async fn corrupt_parquet_fails_naming_the_file() {
    fails_and_keeps_previous(
        "corrupt",
        |p| {
            let f = input_dir(p).join("part-00001.parquet");
            let bytes = std::fs::read(&f).unwrap();
            std::fs::write(&f, &bytes[..bytes.len() / 2]).unwrap();
        },
        3,
        &["part-00001.parquet", "not a readable Parquet file"],
    )
    .await;
}

/// Scribbles over the middle of part-00002's data, leaving its footer readable.
fn corrupt_a_data_page(p: &Project) {
    let f = input_dir(p).join("part-00002.parquet");
    let mut bytes = std::fs::read(&f).unwrap();
    let mid = bytes.len() / 3;
    for b in &mut bytes[mid..mid + 4096] {
        *b = 0xAB;
    }
    std::fs::write(&f, &bytes).unwrap();
}

#[tokio::test]
async fn corrupt_data_page_fails_naming_file_and_row_group() {
    fails_and_keeps_previous(
        "page",
        corrupt_a_data_page,
        3,
        &["part-00002.parquet", "row group"],
    )
    .await;
}

/// Appends `copy_streams = n` to the job's `[output]` section (the last section of the file).
fn set_copy_streams(p: &Project, n: usize) {
    let job = p.path().join("jobs/daily.toml");
    let mut text = std::fs::read_to_string(&job).unwrap();
    text.push_str(&format!("copy_streams = {n}\n"));
    std::fs::write(&job, text).unwrap();
}

#[tokio::test]
async fn a_failure_during_parallel_copy_keeps_the_previous_rows() {
    fails_and_keeps_previous(
        "page_par",
        |p| {
            set_copy_streams(p, 3);
            corrupt_a_data_page(p);
        },
        3,
        &["part-00002.parquet", "row group"],
    )
    .await;
}

#[tokio::test]
async fn parallel_copy_streams_write_the_same_rows_and_leave_no_run_defaults() {
    let (url, pool) = fresh_pg("streams").await;
    let rows = 60_000;
    let p = project(rows);
    let all = "SELECT id, score FROM scores.daily ORDER BY id";
    assert_ok(&p.run("jobs/daily.toml", Some(&url)));
    let one: Vec<(i64, f32)> = sqlx::query_as(all).fetch_all(&pool).await.unwrap();
    assert_eq!(one.len(), rows as usize);

    set_copy_streams(&p, 3);
    assert_ok(&p.run("jobs/daily.toml", Some(&url)));
    let three: Vec<(i64, f32)> = sqlx::query_as(all).fetch_all(&pool).await.unwrap();
    assert_eq!(one, three, "three COPY sessions wrote other rows than one");

    // Every row carries the date and the id of the run that wrote it (filled by the staging
    // table's defaults, not sent per row) ...
    let latest: uuid::Uuid =
        sqlx::query_scalar("SELECT run_id FROM scorer.runs ORDER BY started_at DESC LIMIT 1")
            .fetch_one(&pool)
            .await
            .unwrap();
    let (n, runs): (i64, i64) = counts(&pool, "scores.daily").await;
    assert_eq!((n, runs), (rows as i64, 1));
    let stamped: i64 = sqlx::query_scalar("SELECT count(*) FROM scores.daily WHERE run_id = $1")
        .bind(latest)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(stamped, rows as i64);
    // ... and those defaults are gone once the staging table is the date's partition.
    let defaults: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM information_schema.columns \
         WHERE table_schema = 'scores' AND column_default IS NOT NULL",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(defaults, 0, "a run's default was left on a partition");
}

#[tokio::test]
async fn null_under_fail_policy_names_file_and_column() {
    fails_and_keeps_previous(
        "nulls",
        |p| {
            let job = p.path().join("jobs/daily.toml");
            let text = std::fs::read_to_string(&job).unwrap();
            std::fs::write(&job, text.replace("fill:0.0", "fail")).unwrap();
        },
        3,
        &["part-0000", "`f3`", "null"],
    )
    .await;
}

#[tokio::test]
async fn a_second_concurrent_run_of_the_same_date_is_refused() {
    let (url, pool) = fresh_pg("lock").await;
    let p = project(1_000);
    // Hold the output lock from here, as a concurrent run would.
    let mut holder = pool.acquire().await.unwrap();
    let key = scorer::db::lock::lock_key("scores.daily", DATE.parse().unwrap());
    let got: bool = sqlx::query_scalar(include_str!(
        "../../sql/postgres/queries/try_output_lock.sql"
    ))
    .bind(&key)
    .fetch_one(&mut *holder)
    .await
    .unwrap();
    assert!(got);
    let out = p.run("jobs/daily.toml", Some(&url));
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("being written by another run"));
    drop(holder);
}

#[tokio::test]
async fn an_existing_table_with_other_columns_is_refused() {
    let (url, pool) = fresh_pg("shape").await;
    sqlx::raw_sql("CREATE SCHEMA scores; CREATE TABLE scores.daily (id bigint, note text)")
        .execute(&pool)
        .await
        .unwrap();
    let p = project(1_000);
    let out = p.run("jobs/daily.toml", Some(&url));
    // Configuration, not a transient failure: retrying cannot help until the table or the job
    // changes.
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("scores.daily") && stderr.contains("note text"),
        "{stderr}"
    );
}

/// A run's connections (lock, ledger, drift baseline, COPY) are opened side by side and kept in
/// the pool, so later acquires find them instead of opening more one after another.
#[tokio::test]
async fn sessions_are_opened_at_once_and_kept_for_the_run() {
    use scorer::db::{Database, DbTarget};
    let (url, admin) = fresh_pg("sessions").await;
    let db = Database::open_with_sessions(&DbTarget::Postgres(url.clone()), 4)
        .await
        .unwrap();
    let Database::Postgres { pool, .. } = &db else {
        panic!("a postgres:// target opens PostgreSQL")
    };
    assert_eq!(pool.size(), 4);
    let name = url.rsplit_once('/').unwrap().1;
    // The four, and the test's own pool. A session that was closed a moment ago (the migrations'
    // connection) can still be listed while its backend exits, so the count may take a moment
    // to settle; it must settle at exactly that.
    let mut counts = Vec::new();
    for _ in 0..50 {
        let backends: i64 =
            sqlx::query_scalar("SELECT count(*) FROM pg_stat_activity WHERE datname = $1")
                .bind(name)
                .fetch_one(&admin)
                .await
                .unwrap();
        let expected = 4 + i64::from(admin.size());
        counts.push((backends, expected));
        if backends == expected {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let (backends, expected) = counts[counts.len() - 1];
    assert_eq!(backends, expected, "backends seen, expected: {counts:?}");
    // Acquiring them again opens nothing new.
    let held: Vec<_> = futures::future::try_join_all((0..4).map(|_| pool.acquire()))
        .await
        .unwrap();
    assert_eq!(pool.size(), 4);
    drop(held);
}
