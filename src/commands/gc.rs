//! `scorer gc [JOB]`: removes what dead runs left (staging tables, run files) and marks them
//! `abandoned`, then expires sharded attempts that stalled (their parts dropped); fails, after
//! saying what it did, when some could not be removed.

use super::{GlobalArgs, context, load_job, print_before_failing};
use crate::cli::GcArgs;
use crate::db::Database;
use crate::error::exit;
use crate::failure::{Failure, RunError};
use crate::job::Job;
use crate::ledger;
use crate::run::{expire, sweep};

/// Sweeps the dead runs of one job, or of every job.
pub(super) async fn gc(g: &GlobalArgs, args: GcArgs) -> Result<Vec<String>, RunError> {
    let job = args.job.as_deref().map(|j| load_job(g, j)).transpose()?;
    let label = job.as_ref().map_or("*", |j| j.name.as_str()).to_string();
    sweep_dead(
        g,
        job.as_ref(),
        args.stale_after,
        args.expire_attempts_after,
    )
    .await
    .map_err(|f| f.in_job(&label))
}

async fn sweep_dead(
    g: &GlobalArgs,
    job: Option<&Job>,
    stale_after: std::time::Duration,
    expire_after: std::time::Duration,
) -> Result<Vec<String>, Failure> {
    let ctx = context(g, stale_after)?;
    let db = Database::open(&ctx.db).await?;
    let ledger = ledger::for_database(&db);
    let scope = sweep::Scope {
        job: job.map(|j| j.name.as_str()),
        stale_after,
        jobs_dir: &ctx.jobs_dir,
        held: None,
    };
    let report = sweep::sweep(&db, ledger.as_ref(), &scope).await?;
    // After the sweep: the dead shard runs are `abandoned` now, so their attempts show stalled.
    let expiry = expire::expire_stalled(&db, scope.job, expire_after, &ctx.jobs_dir).await?;
    let mut lines = crate::summary::sweep_lines(&report);
    lines.extend(crate::summary::expiry_lines(&expiry));
    if report.failed.is_empty() && expiry.failed.is_empty() {
        return Ok(lines);
    }
    // Say what was done, then fail: some dead runs or attempts still hold leftovers.
    print_before_failing(&lines);
    let problems = report
        .failed
        .iter()
        .map(|(run, why)| format!("run {}: {why}", run.run_id))
        .chain(
            expiry
                .failed
                .iter()
                .map(|(a, why)| format!("attempt {}: {why}", a.attempt)),
        );
    Err(Failure::Many {
        problems: problems.collect(),
        code: exit::TRANSIENT,
    })
}
