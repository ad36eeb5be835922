//! The run as a library: one process calls `scorer::run::run` several times at once (as the
//! scheduler will), each run with its own cancellation token.

use scorer::db::DbTarget;
use scorer::error::exit;
use scorer::job::Job;
use scorer::run::{self, RunContext, RunRequest};
use sqlx::SqlitePool;
use tokio_util::sync::CancellationToken;

use crate::common::*;

#[tokio::test]
async fn two_runs_in_one_process_at_once_and_a_cancelled_one() {
    let p = Project::new();
    p.add_model(&ModelOpts::mlp(8));
    p.add_input("events", DATE, 30_000, 8, None);
    p.add_input("other", DATE, 10_000, 8, None);
    let a = Job::load(&p.add_job("a", "events", "m", "scores_a", "")).unwrap();
    let b = Job::load(&p.add_job("b", "other", "m", "scores_b", "")).unwrap();
    // Relative input URLs resolve against the working directory; give the jobs absolute ones.
    let absolute = |mut job: Job| {
        job.input.url = format!("{}/{}", p.path().display(), job.input.url);
        job
    };
    let (a, b) = (absolute(a), absolute(b));
    let ctx = RunContext {
        models: p.registry(),
        jobs_dir: p.path().join("jobs"),
        db: DbTarget::Sqlite(p.path().join("scorer.db")),
        heartbeat_every: run::HEARTBEAT_EVERY,
        stale_after: run::DEFAULT_STALE_AFTER,
        progress: scorer::progress::ProgressMode::Off,
        pushgateway: None,
        exporter: None,
    };
    let request = |job: &Job| RunRequest {
        job: job.clone(),
        date: DATE.parse().unwrap(),
        device: None,
        allow_row_drop: false,
        pin: None,
        shard: None,
        attempt_label: String::new(),
    };
    let (req_a, req_b) = (request(&a), request(&b));
    let (ra, rb) = tokio::join!(
        run::run(&ctx, &req_a, CancellationToken::new()),
        run::run(&ctx, &req_b, CancellationToken::new()),
    );
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    assert_eq!((ra.rows_written, rb.rows_written), (30_000, 10_000));

    let cancelled = CancellationToken::new();
    cancelled.cancel();
    let err = run::run(&ctx, &req_a, cancelled).await.unwrap_err();
    assert_eq!(err.exit_code(), exit::CANCELLED, "{err}");
    assert!(err.to_string().starts_with("job a: cancelled"), "{err}");

    let pool = SqlitePool::connect(&p.sqlite_url()).await.unwrap();
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM scores_a WHERE ds = ?")
        .bind(DATE)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(n, 30_000, "the cancelled run left the date's rows alone");
    let statuses: Vec<(String, String)> =
        sqlx::query_as("SELECT job, status FROM scorer_runs ORDER BY job, started_at")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        statuses,
        [
            ("a".to_string(), "succeeded".to_string()),
            ("a".to_string(), "cancelled".to_string()),
            ("b".to_string(), "succeeded".to_string()),
        ]
    );
}
