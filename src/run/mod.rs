//! A run's lifecycle: the library entry point behind `scorer run`, `scorer schedule` and
//! `scorer backfill`.
//!
//! ```text
//! resolve output -> lock (output, date) -> sweep dead runs -> ledger `running` + heartbeat
//!   -> plan -> sink.open -> stream -> sink.finish -> counts and lock checked -> sink.publish
//!   -> ledger `succeeded` | `failed` | `cancelled` -> unlock
//! ```
//!
//! [`run`] can be called many times in one process, concurrently: it sets no process-wide state,
//! shares the rayon pool, and stops cleanly when its cancellation token fires. The job's name is
//! attached to a failure here, once.
//!
//! - `lifecycle`: output, lock, sweep, ledger `running`, heartbeat, ledger end, unlock.
//! - `execute`: plan -> stream -> publish, with one guard that aborts the sink on any failure.
//! - `shards`: a shard run's attempt, its part, and the publication of the last one.
//! - `after_publish`: retention, the slow-run check, the metrics export.
//! - `pin`: `--from-ledger`, the recorded run's model and inputs checked.

mod after_publish;
mod execute;
pub mod expire;
mod heartbeat;
mod lifecycle;
mod pin;
mod record;
mod shards;
pub mod signals;
pub mod sweep;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDate;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use uuid::Uuid;

use crate::db::DbTarget;
use crate::failure::RunError;
use crate::job::Job;
use crate::ledger::RecordedRun;
use crate::model::device::DeviceSpec;
use crate::model::registry::Registry;
use crate::shard::ShardSpec;
use crate::sink::Output;

pub use pin::check_pin;

/// How often a running process refreshes its ledger heartbeat and checks its lock.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(10);
/// A `running` row whose heartbeat is older than this (and whose lock is free) is a dead run.
pub const DEFAULT_STALE_AFTER: Duration = Duration::from_secs(60);

/// What every run of a process shares: where models, jobs and the database are.
#[derive(Debug, Clone)]
pub struct RunContext {
    /// The model registry and its artifact cache.
    pub models: Registry,
    /// Where job files are looked up by name (the sweep needs other jobs' storage options).
    pub jobs_dir: PathBuf,
    pub db: DbTarget,
    pub heartbeat_every: Duration,
    pub stale_after: Duration,
    /// How runs show their progress (a bar, log lines, or nothing).
    pub progress: crate::progress::ProgressMode,
    /// A Prometheus Pushgateway each run pushes its metrics to when it ends.
    pub pushgateway: Option<String>,
    /// Where finished runs' metrics are kept for `/metrics` (the scheduler's).
    pub exporter: Option<Arc<crate::telemetry::exporter::Exporter>>,
}

/// One run to make: a job, a logical date and optionally another device than the job's.
#[derive(Debug, Clone)]
pub struct RunRequest {
    pub job: Job,
    pub date: NaiveDate,
    /// Overrides the job's `model.device`.
    pub device: Option<DeviceSpec>,
    /// Publish even when the row guards (`output.min_rows`, `output.max_row_drop_fraction`) fail.
    pub allow_row_drop: bool,
    /// Reproduce this recorded run: its model version, and exactly its input objects (same
    /// etags), or fail saying what changed.
    pub pin: Option<RecordedRun>,
    /// Score one shard of the date's input (`crate::shard`); the date is published when every
    /// shard of the attempt has staged its rows.
    pub shard: Option<ShardSpec>,
    /// Part of a sharded run's attempt name (`--attempt`): shards with another label are
    /// another attempt. Empty by default.
    pub attempt_label: String,
}

/// What a successful run reports.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    pub run_id: Uuid,
    pub job: String,
    pub date: NaiveDate,
    pub rows_read: u64,
    pub rows_written: u64,
    pub rows_rejected: u64,
    pub objects: usize,
    /// Where the rows went.
    pub output: Arc<dyn Output>,
    /// The database holding the ledger (and the table, for table outputs).
    pub db: String,
    pub stage_seconds: std::collections::BTreeMap<String, f64>,
    /// A shard run: which shard, and what it did (staged, published, nothing).
    pub shard: Option<String>,
}

/// Runs `req`: the whole contract of `scorer run`. `cancel` stops it cleanly (staging removed,
/// ledger `cancelled`, exit code 6).
pub async fn run(
    ctx: &RunContext,
    req: &RunRequest,
    cancel: CancellationToken,
) -> Result<RunOutcome, RunError> {
    // A pinned run uses the recorded model version, whatever the job file says today.
    let pinned;
    let req = match &req.pin {
        Some(pin) => {
            let mut r = req.clone();
            r.job.model.version = pin.model_version.clone();
            pinned = r;
            &pinned
        }
        None => req,
    };
    let span = tracing::info_span!(
        "run",
        job = %req.job.name,
        date = %req.date,
        run_id = tracing::field::Empty,
        shard = req.shard.map(|s| s.to_string()),
    );
    lifecycle::lifecycle(ctx, req, cancel)
        .instrument(span)
        .await
        .map_err(|f| f.in_job(&req.job.name))
}
