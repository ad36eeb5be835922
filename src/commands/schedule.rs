//! `scorer schedule` (the cron daemon, with `/metrics`) and `scorer status` (what it sees).

use std::sync::Arc;

use super::{GlobalArgs, context};
use crate::cli::ScheduleArgs;
use crate::db::Database;
use crate::failure::{Failure, RunError};
use crate::run::{self, signals};
use crate::schedule::{daemon, status as schedule_status};
use crate::telemetry::{exporter::Exporter, serve};

/// Runs every scheduled job of --jobs-dir until a signal stops the scheduler.
pub(super) async fn schedule(g: &GlobalArgs, args: ScheduleArgs) -> Result<Vec<String>, RunError> {
    serve_schedule(g, args).await.map_err(|f| f.in_job("*"))
}

async fn serve_schedule(g: &GlobalArgs, args: ScheduleArgs) -> Result<Vec<String>, Failure> {
    let mut ctx = context(g, run::DEFAULT_STALE_AFTER)?;
    let serving = tokio_util::sync::CancellationToken::new();
    let _stop_serving = serving.clone().drop_guard();
    if let Some(addr) = args.metrics_addr {
        let exporter = Arc::new(Exporter::new());
        let bound = serve::serve(addr, exporter.clone(), serving.clone())
            .await
            .map_err(|e| Failure::Config(format!("--metrics-addr {addr}: cannot listen: {e}")))?;
        tracing::info!(%bound, "serving metrics on /metrics");
        ctx.exporter = Some(exporter);
    }
    let opts = daemon::Options {
        max_concurrent: args.max_concurrent,
        lease: args.lease,
        reload_every: args.reload_every,
        grace: args.grace,
        retry_delay: args.retry_delay,
        max_attempts: args.max_attempts,
    };
    let stop = signals::stop_on_signals("the scheduler");
    let summary = daemon::serve(ctx, opts, stop).await?;
    Ok(vec![format!(
        "scheduler stopped: {} runs ({} succeeded, {} failed, {} to retry, {} skipped)",
        summary.runs, summary.succeeded, summary.failed, summary.retried, summary.skipped
    )])
}

/// The scheduled jobs: next firing, the date it scores, the last run and its outcome.
pub(super) async fn status(g: &GlobalArgs) -> Result<Vec<String>, RunError> {
    let lines = async {
        let ctx = context(g, run::DEFAULT_STALE_AFTER)?;
        let db = Database::open(&ctx.db).await?;
        Ok::<_, Failure>(schedule_status::status(&ctx.jobs_dir, &db).await?.lines())
    };
    lines.await.map_err(|f| f.in_job("*"))
}
