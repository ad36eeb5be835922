//! The other half of `scorer gc`: sharded attempts that stalled. An attempt whose shards all
//! stopped (finished `staged`, or died and were swept) before the last one staged its part is
//! never published, and its parts (staging tables, run files) would stay for good. Once no shard
//! of its output and date is running and it has been idle for `--expire-attempts-after`, gc takes
//! the date's lock (so no shard publishes it meanwhile), drops its parts, marks its `staged` runs
//! `abandoned` and forgets it: its shards, retried, start it afresh.

use std::path::Path;
use std::time::Duration;

use crate::db::Database;
use crate::failure::Failure;
use crate::shard::coordination::{self, StalledAttempt};

/// What an expiry pass did.
#[derive(Debug, Default)]
pub struct ExpiryOutcome {
    /// The attempts expired, with how many parts each had staged (now dropped).
    pub expired: Vec<StalledAttempt>,
    /// Stalled attempts not idle long enough yet, or whose date's lock was held.
    pub kept: usize,
    /// Attempts that could not be expired, with why; they stay as they were.
    pub failed: Vec<(StalledAttempt, String)>,
}

/// Expires the stalled attempts of `job` (every job when `None`) idle for `older_than` or more.
pub async fn expire_stalled(
    db: &Database,
    job: Option<&str>,
    older_than: Duration,
    jobs_dir: &Path,
) -> Result<ExpiryOutcome, Failure> {
    let mut outcome = ExpiryOutcome::default();
    for attempt in coordination::stalled(db, job).await? {
        if attempt.idle_seconds < older_than.as_secs_f64() {
            outcome.kept += 1;
            continue;
        }
        let Some(lock) = db.try_lock_output(&attempt.output, attempt.date).await? else {
            outcome.kept += 1;
            continue;
        };
        let result = expire_one(db, &attempt, jobs_dir).await;
        lock.release().await;
        match result {
            Ok(()) => {
                tracing::warn!(attempt = %attempt.attempt, job = %attempt.job, date = %attempt.date,
                    staged = attempt.staged, of = attempt.count, "expired a stalled sharded attempt");
                outcome.expired.push(attempt);
            }
            Err(e) => {
                tracing::warn!(attempt = %attempt.attempt, error = %e, "cannot expire a stalled sharded attempt");
                outcome.failed.push((attempt, e.to_string()));
            }
        }
    }
    Ok(outcome)
}

/// Under the date's lock: the attempt's parts dropped, then its records.
async fn expire_one(db: &Database, a: &StalledAttempt, jobs_dir: &Path) -> Result<(), Failure> {
    let parts = coordination::parts(db, &a.attempt).await?;
    if !parts.is_empty() {
        let what = format!("sharded attempt {}", a.attempt);
        let target = super::sweep::written_output(db, &a.output, &a.job, jobs_dir, &what)?;
        for part in &parts {
            target.remove_part(part).await;
        }
    }
    let note = format!(
        "abandoned: its sharded attempt {} expired in `scorer gc` ({} of {} shards staged, idle \
         {:.0} s); its staged rows were dropped",
        a.attempt, a.staged, a.count, a.idle_seconds
    );
    coordination::expire(db, &a.attempt, &note).await?;
    Ok(())
}
