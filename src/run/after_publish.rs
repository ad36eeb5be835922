//! What a run does once its rows are published, none of which can undo the publication:
//! `output.retention_days`, the slow-run check against the job's recent runs, and the metrics
//! handed to the scheduler's `/metrics` and the Pushgateway.

use super::record::Recorder;
use super::{RunContext, RunRequest};
use crate::job::Job;
use crate::ledger::{self, Ledger, RecentQuery};
use crate::shard::publish::ShardOutcome;
use crate::sink::Output;
use crate::sink::retention::{self, Retention};

/// After a successful run: whether it was slow against the job's recent runs, and, when it
/// published (a plain run, or the shard that published the attempt), `output.retention_days`.
pub(super) async fn after_success(
    ledger: &dyn Ledger,
    req: &RunRequest,
    target: &dyn Output,
    rec: &mut Recorder,
) {
    rec.slow = slow_against_recent(ledger, req, rec).await;
    let published = matches!(
        rec.shard_outcome,
        None | Some(ShardOutcome::Published { .. })
    );
    if let (true, Some(days)) = (published, req.job.output.shared.retention_days) {
        rec.retention = Some(retain(ledger, req, target, days).await);
    }
}

/// `output.retention_days` after a publication: drops the output's dates before the window
/// ending at the run's date. A failure is logged and recorded, never the run's: its results are
/// published already.
async fn retain(
    ledger: &dyn Ledger,
    req: &RunRequest,
    target: &dyn Output,
    days: u32,
) -> Retention {
    let before = retention::first_kept(req.date, days);
    // Parquet output has no catalogue of its dates: the ledger's publications are it.
    let published = if target.needs_published_dates() {
        let q = RecentQuery {
            job: &req.job.name,
            date: None,
            status: Some(ledger::RunStatus::Succeeded),
            limit: u32::MAX,
        };
        match ledger.recent(&q).await {
            Ok(runs) => runs.iter().map(|r| r.logical_date).collect(),
            Err(e) => {
                return Retention {
                    before,
                    dropped: Vec::new(),
                    error: Some(format!("cannot read the job's published dates: {e}")),
                };
            }
        }
    } else {
        Vec::new()
    };
    match target.drop_dates_before(before, &published).await {
        Ok(dropped) => {
            if !dropped.is_empty() {
                let dates: Vec<String> = dropped.iter().map(|d| d.to_string()).collect();
                tracing::info!(
                    before = %before,
                    dropped = %dates.join(","),
                    "output.retention_days: dropped expired dates"
                );
            }
            Retention {
                before,
                dropped,
                error: None,
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "output.retention_days: could not drop the expired dates; the run's results are published");
            Retention {
                before,
                dropped: Vec::new(),
                error: Some(e.to_string()),
            }
        }
    }
}

/// A succeeded run's seconds against the median of the job's last 10 succeeded runs: over
/// `metrics.slow_factor` times it, a performance-regression warning.
async fn slow_against_recent(
    ledger: &dyn Ledger,
    req: &RunRequest,
    rec: &Recorder,
) -> Option<crate::metrics::SlowRun> {
    let seconds = rec.stage_seconds.get("total").copied()?;
    let q = RecentQuery {
        job: &req.job.name,
        date: None,
        status: Some(ledger::RunStatus::Succeeded),
        limit: 10,
    };
    let recent: Vec<f64> = match ledger.recent(&q).await {
        Ok(runs) => runs
            .iter()
            .filter_map(|r| Some((r.finished_at? - r.started_at).as_seconds_f64()))
            .collect(),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the job's recent runs; slowness not checked");
            return None;
        }
    };
    let slow = crate::metrics::slow_run(seconds, &recent, req.job.metrics.slow_factor)?;
    tracing::warn!(
        seconds = slow.seconds,
        median_seconds = slow.median_seconds,
        runs = slow.over_runs,
        "performance regression: this run took more than metrics.slow_factor = {} times the \
         median of the job's recent successful runs",
        slow.factor
    );
    Some(slow)
}

/// Hands a finished run's metrics to the process's exporter (the scheduler's `/metrics`) and
/// pushes them to the Pushgateway, if either is set up. Failures are logged, never the run's.
pub(super) async fn export_metrics(ctx: &RunContext, job: &Job, finish: &ledger::RunFinish) {
    if ctx.exporter.is_none() && ctx.pushgateway.is_none() {
        return;
    }
    let facts = crate::telemetry::exporter::JobFacts::of(job);
    if let Some(exporter) = &ctx.exporter {
        exporter.record(&facts, finish);
    }
    if let Some(url) = &ctx.pushgateway
        && let Err(e) = crate::telemetry::exporter::push(url, &facts, finish).await
    {
        tracing::warn!(error = %e, "metrics not pushed");
    }
}
