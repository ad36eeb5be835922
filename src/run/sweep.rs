//! The sweep: what runs that died left behind, found and removed. A `running` ledger row is a
//! dead run when its output lock is free and either this process holds that lock itself (the
//! start of a run of the same output and date) or its heartbeat is older than `stale_after`.
//! For each, the sink's leftovers are removed (its staging table, or its `_runs/<run_id>/` files
//! that no manifest names) and the row is marked `abandoned`, each logged. Runs at the start of
//! every run and as `scorer gc [JOB]`.

use std::path::Path;
use std::time::Duration;

use chrono::NaiveDate;

use crate::db::Database;
use crate::failure::Failure;
use crate::job::{self, Job};
use crate::ledger::{Ledger, RunningRun};
use crate::sink::Destination;
use crate::sink::table::TableTarget;

/// Which `running` rows a sweep looks at.
#[derive(Debug, Clone)]
pub struct Scope<'a> {
    /// Only this job's runs; all jobs when `None`.
    pub job: Option<&'a str>,
    /// A heartbeat older than this marks a run as possibly dead (then its lock decides).
    pub stale_after: Duration,
    /// Where job files are, to find the storage options of a Parquet output.
    pub jobs_dir: &'a Path,
    /// The (lock subject, date) whose lock the caller holds (the output, or for a shard the
    /// output and shard: `crate::shard::lock_subject`): its `running` rows are dead whatever
    /// their heartbeat says.
    pub held: Option<(&'a str, NaiveDate)>,
}

/// One dead run the sweep dealt with.
#[derive(Debug, Clone)]
pub struct Abandoned {
    pub run: RunningRun,
    /// What was removed, one line each.
    pub removed: Vec<String>,
}

/// What a sweep did.
#[derive(Debug, Clone, Default)]
pub struct SweepOutcome {
    pub abandoned: Vec<Abandoned>,
    /// `running` rows left alone: fresh heartbeat, or their lock is held.
    pub alive: usize,
    /// Dead runs whose leftovers could not be removed, with why; they stay `running`.
    pub failed: Vec<(RunningRun, String)>,
}

/// Finds the dead runs in scope, removes what they left and marks them `abandoned`.
pub async fn sweep(
    db: &Database,
    ledger: &dyn Ledger,
    scope: &Scope<'_>,
) -> Result<SweepOutcome, Failure> {
    let mut report = SweepOutcome::default();
    for run in ledger.running(scope.job).await? {
        let held_by_us = scope.held.is_some_and(|(subject, date)| {
            subject == run.lock_subject() && date == run.logical_date
        });
        let stale = run.heartbeat_age >= scope.stale_after.as_secs_f64();
        if !held_by_us && !stale {
            report.alive += 1;
            continue;
        }
        // A stale heartbeat is not enough: the lock must be free too.
        let taken = if held_by_us {
            None
        } else {
            match db
                .try_lock_output(&run.lock_subject(), run.logical_date)
                .await?
            {
                Some(lock) => Some(lock),
                None => {
                    report.alive += 1;
                    continue;
                }
            }
        };
        // The start of a run of the same output and date: a dead run registered for resume
        // keeps its staging; the starting run adopts or discards it once it has planned.
        let removed = if held_by_us && crate::resume::is_registered(db, run.run_id).await {
            Ok(vec![
                "nothing yet (its staging is kept for this run to resume)".to_string(),
            ])
        } else if run.shard.is_some()
            && crate::shard::coordination::is_part(db, run.run_id)
                .await
                .unwrap_or(true)
        {
            // It died after recording its shard part: the staged rows are the attempt's.
            Ok(vec![
                "nothing (its staged rows are a shard part of its attempt)".to_string(),
            ])
        } else {
            let removed = clear(db, &run, scope.jobs_dir).await;
            if removed.is_ok() {
                crate::resume::forget(db, run.run_id).await;
            }
            removed
        };
        if let Some(lock) = taken {
            lock.release().await;
        }
        match removed {
            Ok(removed) => report.abandoned.push(record(ledger, run, removed).await?),
            // Its leftovers could not be removed: the row stays `running` for a later sweep,
            // and the other dead runs are still dealt with.
            Err(e) => {
                tracing::warn!(run_id = %run.run_id, job = %run.job, error = %e, "cannot clean up after a dead run");
                report.failed.push((run, e.to_string()));
            }
        }
    }
    Ok(report)
}

/// Removes what `run` left in its sink.
async fn clear(db: &Database, run: &RunningRun, jobs_dir: &Path) -> Result<Vec<String>, Failure> {
    let what = format!("run {}", run.run_id);
    let target = written_output(db, &run.output, &run.job, jobs_dir, &what)?;
    Ok(target
        .remove_leftovers(run.run_id, run.logical_date)
        .await?)
}

/// The output `output` as a run of `job` (named `what` in errors) wrote it: a table is found
/// in `db` by its name alone; files and Delta tables need the job file's storage options.
pub(super) fn written_output(
    db: &Database,
    output: &str,
    job: &str,
    jobs_dir: &Path,
    what: &str,
) -> Result<std::sync::Arc<dyn crate::sink::Output>, Failure> {
    let destination = match TableTarget::written(output) {
        Some(table) => Box::new(table) as Box<dyn Destination>,
        None => {
            let job = Job::load(&job::locate(job, jobs_dir)).map_err(|e| {
                Failure::Config(format!(
                    "{what} wrote to {output}; its job file is needed to clean up: {e}"
                ))
            })?;
            job.output
                .target
                .section()
                .written_destination(output)
                .map_err(Failure::Config)?
        }
    };
    Ok(destination.open(db)?)
}

/// Marks `run` abandoned in the ledger and logs what was removed.
async fn record(
    ledger: &dyn Ledger,
    run: RunningRun,
    removed: Vec<String>,
) -> Result<Abandoned, Failure> {
    let note = format!(
        "abandoned: the process stopped without finishing (last heartbeat {:.0} s before the \
         sweep, lock free; host {}); removed: {}",
        run.heartbeat_age,
        run.host,
        if removed.is_empty() {
            "nothing".to_string()
        } else {
            removed.join(", ")
        }
    );
    ledger.abandon(run.run_id, &note).await?;
    tracing::warn!(run_id = %run.run_id, job = %run.job, date = %run.logical_date, output = %run.output, "{note}");
    Ok(Abandoned { run, removed })
}
