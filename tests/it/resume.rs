//! Resume after kill -9: the rerun adopts the killed run's checkpointed rows when the model and
//! input are unchanged, reads only what is missing, and gives the same table, row for row, as an
//! uninterrupted run (scores, quarantine, counts); with a changed input it starts over.

use std::collections::BTreeMap;

use sqlx::postgres::PgPool;
use sqlx::sqlite::SqlitePool;

use crate::common::{
    DATE, ModelOpts, Project, assert_ok, finish, fresh_pg, signal, sqlite_count, wait_for,
};

const ROWS: u64 = 300_000;

/// A job `daily` over ROWS rows with 1% nulls in feature 3 (skipped, so quarantined), into
/// `table`; and the same job as `whole` into `whole_table`, for the uninterrupted reference.
fn project(table: &str, whole_table: &str, extra_output: &str) -> Project {
    let p = Project::new();
    p.add_model(&ModelOpts::mlp(8));
    p.add_input("events", DATE, ROWS, 8, Some((3, 0.01)));
    for (job, t) in [("daily", table), ("whole", whole_table)] {
        let path = p.add_job(job, "events", "m", t, "on_null = \"skip\"");
        let text = std::fs::read_to_string(&path).unwrap() + extra_output;
        std::fs::write(&path, text).unwrap();
    }
    p
}

type Scores = BTreeMap<i64, f32>;

async fn pg_scores(pool: &PgPool, table: &str) -> Scores {
    sqlx::query_as::<_, (i64, f32)>(sqlx::AssertSqlSafe(format!(
        "SELECT id, score FROM {table} WHERE ds = DATE '{DATE}'"
    )))
    .fetch_all(pool)
    .await
    .unwrap()
    .into_iter()
    .collect()
}

async fn pg_quarantine(pool: &PgPool, table: &str) -> Vec<(Option<String>, String, i64)> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT id, object, row_number FROM {table}_quarantine WHERE ds = DATE '{DATE}' \
         ORDER BY object, row_group, row_number"
    )))
    .fetch_all(pool)
    .await
    .unwrap()
}

/// Rows the checkpoints of the running run hold so far (0 before the run made its tables).
async fn pg_checkpointed(pool: &PgPool) -> i64 {
    sqlx::query_scalar(
        "SELECT coalesce(sum((r->>'scored')::bigint), 0)::bigint \
         FROM scorer.resume_checkpoints c, jsonb_array_elements(c.body::jsonb->'ranges') r",
    )
    .fetch_one(pool)
    .await
    .unwrap_or(0)
}

/// (status, rows_read, rows_written, rows_rejected, resumed_from, rows_resumed) of the last run
/// of `job`.
type LedgerRow = (String, i64, i64, i64, Option<uuid::Uuid>, Option<i64>);

async fn pg_last(pool: &PgPool, job: &str) -> LedgerRow {
    sqlx::query_as(
        "SELECT status, rows_read, rows_written, rows_rejected, resumed_from, rows_resumed \
         FROM scorer.runs WHERE job = $1 ORDER BY started_at DESC LIMIT 1",
    )
    .bind(job)
    .fetch_one(pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn postgres_a_run_killed_mid_way_is_resumed_and_equals_an_uninterrupted_one() {
    let (url, pool) = fresh_pg("resume").await;
    let p = project("scores.daily", "scores.whole", "copy_streams = 2\n");
    assert_ok(&p.run("whole", Some(&url)));
    let want = pg_scores(&pool, "scores.whole").await;
    let want_quarantine = pg_quarantine(&pool, "scores.whole").await;
    assert!(!want_quarantine.is_empty());

    let child = p.spawn_run("daily", Some(&url));
    let pid = child.id();
    wait_for("a third of the rows checkpointed", 120, || async {
        pg_checkpointed(&pool).await >= (ROWS / 3) as i64
    })
    .await;
    signal(pid, "KILL");
    let _ = finish(child).await;
    let killed: uuid::Uuid =
        sqlx::query_scalar("SELECT run_id FROM scorer.runs WHERE job = 'daily'")
            .fetch_one(&pool)
            .await
            .unwrap();
    let staged_before = pg_checkpointed(&pool).await;

    assert_ok(&p.run("daily", Some(&url)));
    let (status, read, written, rejected, from, resumed) = pg_last(&pool, "daily").await;
    assert_eq!(status, "succeeded");
    assert_eq!(from, Some(killed), "the rerun resumed the killed run");
    assert_eq!(
        resumed,
        Some(staged_before),
        "it adopted every checkpointed row"
    );
    let (_, w_read, w_written, w_rejected, _, _) = pg_last(&pool, "whole").await;
    assert_eq!((read, written, rejected), (w_read, w_written, w_rejected));
    assert_eq!(read, ROWS as i64);
    // Row for row the uninterrupted run's scores, and the same quarantine.
    assert_eq!(pg_scores(&pool, "scores.daily").await, want);
    assert_eq!(pg_quarantine(&pool, "scores.daily").await, want_quarantine);
    // Nothing of resume is left behind once the run succeeded.
    let left: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM scorer.resume_runs) + (SELECT count(*) FROM scorer.resume_checkpoints)",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(left, 0);
}

#[tokio::test]
async fn postgres_a_changed_input_is_not_resumed() {
    let (url, pool) = fresh_pg("resume_changed").await;
    let p = project("scores.daily", "scores.whole", "");
    let child = p.spawn_run("daily", Some(&url));
    let pid = child.id();
    wait_for("some rows checkpointed", 120, || async {
        pg_checkpointed(&pool).await > 0
    })
    .await;
    signal(pid, "KILL");
    let _ = finish(child).await;
    // The input is rewritten (same rows, new files: new etags and sizes).
    let dir = p.path().join(format!("data/events/dt={DATE}"));
    std::fs::remove_dir_all(&dir).unwrap();
    p.add_input("events", DATE, ROWS - 10, 8, Some((3, 0.01)));
    assert_ok(&p.run("daily", Some(&url)));
    let (status, read, _, _, from, _) = pg_last(&pool, "daily").await;
    assert_eq!((status.as_str(), from), ("succeeded", None));
    assert_eq!(read, (ROWS - 10) as i64);
    let staging: i64 =
        sqlx::query_scalar("SELECT count(*) FROM pg_tables WHERE tablename LIKE '%\\_\\_stg\\_%'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(staging, 0, "the killed run's staging was discarded");
}

#[tokio::test]
async fn sqlite_a_run_killed_mid_way_is_resumed_and_equals_an_uninterrupted_one() {
    let p = project("daily_scores", "whole_scores", "");
    assert_ok(&p.run("whole", None));
    let child = p.spawn_run("daily", None);
    let pid = child.id();
    wait_for("a third of the rows staged", 120, || async {
        sqlite_count(&p, "SELECT count(*) FROM scorer_resume_checkpoints")
            .await
            .unwrap_or(0)
            >= 10
    })
    .await;
    signal(pid, "KILL");
    let _ = finish(child).await;
    assert_ok(&p.run("daily", None));
    let pool = SqlitePool::connect(&p.sqlite_url()).await.unwrap();
    let (resumed_from, resumed): (Option<String>, Option<i64>) = sqlx::query_as(
        "SELECT resumed_from, rows_resumed FROM scorer_runs WHERE job = 'daily' AND status = 'succeeded'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(resumed_from.is_some() && resumed.unwrap_or(0) > 0);
    let differ: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT id, score FROM daily_scores EXCEPT SELECT id, score FROM whole_scores \
         UNION ALL SELECT id, score FROM whole_scores EXCEPT SELECT id, score FROM daily_scores)",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM daily_scores")
        .fetch_one(&pool)
        .await
        .unwrap();
    let quarantined: (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM daily_scores_quarantine), (SELECT count(*) FROM whole_scores_quarantine)",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(differ, 0, "the same scores row for row");
    assert_eq!(quarantined.0, quarantined.1);
    assert_eq!(rows + quarantined.0, ROWS as i64);
}
