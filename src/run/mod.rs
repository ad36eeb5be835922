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

mod heartbeat;
mod record;
pub mod signals;
pub mod sweep;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{NaiveDate, Utc};
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use uuid::Uuid;

use crate::db::{Database, DbTarget};
use crate::error::{Failure, RunError};
use crate::job::Job;
use crate::ledger::{self, Ledger, RecentQuery, RecordedRun, RunStart};
use crate::lock::OutputLock;
use crate::model::device::DeviceSpec;
use crate::model::registry::Registry;
use crate::pipeline;
use crate::plan::{self, RunPlan};
use crate::shard::coordination::{self, AttemptState, Part, PartBody};
use crate::shard::publish::{Published, Publisher, ShardOutcome};
use crate::shard::{AttemptKey, ShardSpec};
use crate::sink::retention::{self, Retention};
use crate::sink::{self, Destination};

use heartbeat::Heartbeat;
use record::Recorder;

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
    pub exporter: Option<Arc<crate::metrics::exporter::Exporter>>,
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
pub struct RunReport {
    pub run_id: Uuid,
    pub job: String,
    pub date: NaiveDate,
    pub rows_read: u64,
    pub rows_written: u64,
    pub rows_rejected: u64,
    pub objects: usize,
    /// Where the rows went.
    pub output: Destination,
    /// The database holding the ledger (and the table, for table outputs).
    pub db: String,
    pub is_sqlite: bool,
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
) -> Result<RunReport, RunError> {
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
    lifecycle(ctx, req, cancel)
        .instrument(span)
        .await
        .map_err(|f| f.in_job(&req.job.name))
}

/// A pinned run's plan must be the recorded run's: the same model bytes and the same input
/// objects, each with its recorded etag (or size and time, where a store gives no etag).
pub fn check_pin(plan: &RunPlan, pin: &RecordedRun) -> Result<(), Failure> {
    let cannot = |why: String| Failure::NotReproducible {
        run_id: pin.run_id,
        why,
    };
    if plan.model.sha256 != pin.model_sha256 {
        return Err(cannot(format!(
            "model {} version {} has sha256 {}, the run used {}",
            plan.model.name, plan.model.version, plan.model.sha256, pin.model_sha256
        )));
    }
    let now: std::collections::BTreeMap<&str, &crate::source::PlannedObject> = plan
        .input
        .objects
        .iter()
        .map(|o| (o.url.as_str(), o.as_ref()))
        .collect();
    for was in &pin.inputs {
        let Some(o) = now.get(was.url.as_str()) else {
            return Err(cannot(format!("input {} is gone", was.url)));
        };
        let same = match (&was.etag, &o.meta.e_tag) {
            (Some(a), Some(b)) => a == b,
            _ => was.size == o.meta.size && was.last_modified == o.meta.last_modified,
        };
        if !same {
            return Err(cannot(format!(
                "input {} changed (etag {} then, {} now)",
                was.url,
                was.etag.as_deref().unwrap_or("none"),
                o.meta.e_tag.as_deref().unwrap_or("none")
            )));
        }
    }
    if let Some(extra) = plan
        .input
        .objects
        .iter()
        .find(|o| !pin.inputs.iter().any(|w| w.url == o.url))
    {
        return Err(cannot(format!("input {} was not there then", extra.url)));
    }
    Ok(())
}

async fn lifecycle(
    ctx: &RunContext,
    req: &RunRequest,
    cancel: CancellationToken,
) -> Result<RunReport, Failure> {
    let started = Instant::now();
    let destination = plan::destination(&req.job, req.date)?;
    let output = destination.to_string();
    // Opened side by side: the lock's connection, the ledger's, the drift baseline's read
    // (while the input streams), and one per COPY stream.
    let copy_streams = match destination {
        Destination::Table(_) => req.job.output.copy_streams,
        _ => 0,
    };
    let db = Database::open_with_sessions(&ctx.db, 3 + copy_streams).await?;
    if req.shard.is_some()
        && matches!(destination, Destination::Table(_))
        && matches!(db, Database::Sqlite { .. })
    {
        return Err(Failure::Config(format!(
            "--shard: sharded runs write a PostgreSQL table (set DATABASE_URL) or Parquet \
             output (output.url); output {output} is a table in the SQLite file {}, which one \
             process writes",
            db.target()
        )));
    }
    // A shard locks its own share: the N shards of a date run side by side, and each is
    // exclusive with its own retry. Publishing takes the date's lock.
    let subject = crate::shard::lock_subject(&output, req.shard);
    let lock = db
        .try_lock_output(&subject, req.date)
        .await?
        .ok_or_else(|| Failure::AlreadyRunning {
            output: subject.clone(),
            date: req.date.to_string(),
        })?;
    let ledger: Arc<dyn Ledger> = Arc::from(ledger::for_database(&db));
    let scope = sweep::Scope {
        job: None,
        stale_after: ctx.stale_after,
        jobs_dir: &ctx.jobs_dir,
        held: Some((subject.as_str(), req.date)),
    };
    if let Err(e) = sweep::sweep(&db, ledger.as_ref(), &scope).await {
        tracing::warn!(error = %e, "sweeping what dead runs left failed; going on");
    }
    clear_unfinished_cleanups(&db, ledger.as_ref(), req, &destination).await;
    let previous_rows = previous_rows(ledger.as_ref(), req).await;
    let run_id = Uuid::now_v7();
    tracing::Span::current().record("run_id", tracing::field::display(run_id));
    if let Err(e) = ledger.start(&run_start(req, run_id, &output)).await {
        lock.release().await;
        return Err(e.into());
    }
    tracing::info!(%run_id, job = %req.job.name, date = %req.date, db = db.target(), %output, "run started");
    let lock = Arc::new(Mutex::new(lock));
    let work = Work {
        ctx,
        req,
        db: &db,
        run_id,
        destination: destination.clone(),
        output: output.clone(),
        subject: subject.clone(),
        lock: &lock,
        // The run stops on the caller's token, or on its own when its lock is found lost.
        cancel: cancel.child_token(),
        previous_rows,
    };
    let mut rec = Recorder::default();
    rec.cpu_at_start = crate::metrics::process_cpu_seconds();
    let _active = ActiveRun::start();
    let outcome = work.supervised(&ledger, &mut rec).await;
    // A failed run whose staging is gone (the usual case) has nothing to resume.
    if outcome.is_err()
        && let Destination::Table(table) = &destination
        && !crate::resume::staging_exists(&db, table, run_id)
            .await
            .unwrap_or(true)
    {
        crate::resume::forget(&db, run_id).await;
    }
    rec.stage("total", started);
    if outcome.is_ok() {
        rec.slow = slow_against_recent(ledger.as_ref(), req, &rec).await;
        let published = matches!(
            rec.shard_outcome,
            None | Some(ShardOutcome::Published { .. })
        );
        if let (true, Some(days)) = (published, req.job.output.retention_days) {
            rec.retention = Some(retain(ledger.as_ref(), &db, req, &destination, days).await);
        }
    }
    let finish = rec.finish_of(&outcome);
    let ledger_result = ledger.finish(run_id, &finish).await;
    // A shard that ended `staged` while another shard published: its row follows the attempt.
    if let (Some(attempt), crate::ledger::RunStatus::Staged) = (&rec.attempt, finish.status)
        && let Err(e) = coordination::settle_run(&db, attempt, run_id).await
    {
        tracing::warn!(error = %e, "cannot settle the shard run's ledger row");
    }
    match Arc::try_unwrap(lock) {
        Ok(lock) => lock.into_inner().release().await,
        Err(_) => tracing::warn!("the output lock is still shared; it ends with its connection"),
    }
    export_metrics(ctx, &req.job.name, &finish).await;
    outcome?;
    ledger_result?;
    tracing::info!(%run_id, rows = rec.rows_written, seconds = started.elapsed().as_secs_f64(), "run succeeded");
    Ok(RunReport {
        run_id,
        job: req.job.name.clone(),
        date: req.date,
        rows_read: rec.rows_read,
        rows_written: rec.rows_written,
        rows_rejected: rec.rows_rejected,
        objects: rec.objects(),
        output: destination,
        db: db.target().to_string(),
        is_sqlite: matches!(db, Database::Sqlite { .. }),
        stage_seconds: rec.stage_seconds,
        shard: req
            .shard
            .zip(rec.shard_outcome.as_ref())
            .map(|(s, o)| format!("shard {s}: {}", o.describe())),
    })
}

/// `output.retention_days` after a publication: drops the output's dates before the window
/// ending at the run's date. A failure is logged and recorded, never the run's: its results are
/// published already.
async fn retain(
    ledger: &dyn Ledger,
    db: &Database,
    req: &RunRequest,
    destination: &Destination,
    days: u32,
) -> Retention {
    let before = retention::first_kept(req.date, days);
    // Parquet output has no catalogue of its dates: the ledger's publications are it.
    let published = match destination {
        Destination::Objects(_) => {
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
        }
        Destination::Table(_) | Destination::Delta(_) => Vec::new(),
    };
    match retention::drop_before(&req.job, destination, db, before, &published).await {
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
async fn export_metrics(ctx: &RunContext, job: &str, finish: &ledger::RunFinish) {
    if let Some(exporter) = &ctx.exporter {
        exporter.record(job, finish);
    }
    if let Some(url) = &ctx.pushgateway
        && let Err(e) = crate::metrics::exporter::push(url, job, finish).await
    {
        tracing::warn!(error = %e, "metrics not pushed");
    }
}

/// Runs in progress in this process. The first to start begins a new peak of the large-block
/// cache; the last to end gives its held blocks back, so a scheduler between runs holds none.
static ACTIVE_RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

struct ActiveRun;

impl ActiveRun {
    fn start() -> Self {
        if ACTIVE_RUNS.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
            crate::large_alloc::reset_peak();
        }
        Self
    }
}

impl Drop for ActiveRun {
    fn drop(&mut self) {
        if ACTIVE_RUNS.fetch_sub(1, std::sync::atomic::Ordering::SeqCst) == 1 {
            crate::large_alloc::release_all();
        }
    }
}

/// Runs of this job and date that failed or were cancelled but could not remove their staging
/// (the database went away as they failed): holding the date's lock, this run removes it.
async fn clear_unfinished_cleanups(
    db: &Database,
    ledger: &dyn Ledger,
    req: &RunRequest,
    destination: &Destination,
) {
    let q = RecentQuery {
        job: &req.job.name,
        date: Some(req.date),
        status: None,
        limit: 10,
    };
    let Ok(runs) = ledger.recent(&q).await else {
        return;
    };
    for r in runs
        .iter()
        .filter(|r| matches!(r.status.as_str(), "failed" | "cancelled"))
    {
        // A run registered for resume is this run's to adopt or discard once it has planned.
        if crate::resume::is_registered(db, r.run_id).await {
            continue;
        }
        match crate::sink::leftovers::remove(db, destination, r.run_id, r.logical_date).await {
            Ok(removed) if !removed.is_empty() => {
                tracing::warn!(run_id = %r.run_id, removed = %removed.join(", "), "removed what a failed run could not");
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(run_id = %r.run_id, error = %e, "cannot remove what a failed run left; going on")
            }
        }
    }
}

/// The rows the date's last successful run wrote, for the row-drop guard; a ledger that cannot be
/// read leaves the guard to `min_rows` alone.
async fn previous_rows(ledger: &dyn Ledger, req: &RunRequest) -> Option<u64> {
    match ledger.last_succeeded(&req.job.name, req.date).await {
        Ok(last) => last.map(|r| u64::try_from(r.date_rows).unwrap_or(0)),
        Err(e) => {
            tracing::warn!(error = %e, "reading the date's previous run failed; the row-drop guard is off for this run");
            None
        }
    }
}

/// The row guards: fewer rows than `min_rows`, or fewer than `1 - max_row_drop_fraction` of the
/// date's previous run, mean an incomplete input more often than a real change.
pub fn check_row_guards(
    output: &crate::job::OutputSpec,
    rows: u64,
    previous: Option<u64>,
) -> Result<(), Failure> {
    if rows < output.min_rows {
        return Err(Failure::TooFewRows {
            rows,
            reason: format!(
                "the input gave {rows} rows to publish, fewer than output.min_rows = {}",
                output.min_rows
            ),
        });
    }
    if let Some(before) = previous.filter(|&b| b > 0) {
        let floor = (before as f64 * (1.0 - output.max_row_drop_fraction)).ceil() as u64;
        if rows < floor {
            return Err(Failure::TooFewRows {
                rows,
                reason: format!(
                    "the input gave {rows} rows, {:.1}% fewer than the {before} the date's \
                     previous run wrote (output.max_row_drop_fraction = {})",
                    100.0 * (1.0 - rows as f64 / before as f64),
                    output.max_row_drop_fraction
                ),
            });
        }
    }
    Ok(())
}

/// The ledger's `running` row of a run.
fn run_start(req: &RunRequest, run_id: Uuid, output: &str) -> RunStart {
    RunStart {
        run_id,
        job: req.job.name.clone(),
        logical_date: req.date,
        started_at: Utc::now(),
        output_table: output.to_string(),
        scorer_version: env!("CARGO_PKG_VERSION").to_string(),
        host: gethostname::gethostname().to_string_lossy().into_owned(),
        os_user: os_user(),
        job_sha256: Some(req.job.text_sha256.clone()).filter(|s| !s.is_empty()),
        shard: req.shard,
    }
}

/// The process's user as `name (uid N)`: the real uid from `/proc/self/status`, its name from
/// `/etc/passwd` when listed there (containers often run a uid with no name). Linux only.
fn os_user() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let uid: u32 = status
        .lines()
        .find(|l| l.starts_with("Uid:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    let name = std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|passwd| {
            passwd.lines().find_map(|line| {
                let mut fields = line.split(':');
                let name = fields.next()?;
                (fields.nth(1)?.parse::<u32>().ok()? == uid).then(|| name.to_string())
            })
        });
    Some(match name {
        Some(n) => format!("{n} (uid {uid})"),
        None => format!("uid {uid}"),
    })
}

/// The part of a run between the ledger's start and finish.
struct Work<'a> {
    ctx: &'a RunContext,
    req: &'a RunRequest,
    db: &'a Database,
    run_id: Uuid,
    destination: Destination,
    /// The output as the ledger and the date's lock name it.
    output: String,
    /// What this run locked: the output, or the output and shard.
    subject: String,
    lock: &'a Arc<Mutex<Box<dyn OutputLock>>>,
    cancel: CancellationToken,
    /// Rows the date's last successful run wrote, if any.
    previous_rows: Option<u64>,
}

impl Work<'_> {
    /// Executes the run with its heartbeat beside it; a lock the heartbeat found lost turns the
    /// cancellation it caused into `LockLost`.
    async fn supervised(
        &self,
        ledger: &Arc<dyn Ledger>,
        rec: &mut Recorder,
    ) -> Result<(), Failure> {
        let heartbeat = Heartbeat::spawn(
            Arc::clone(ledger),
            Arc::clone(self.lock),
            self.run_id,
            self.ctx.heartbeat_every,
            self.cancel.clone(),
        );
        let outcome = self.execute(rec).await;
        match (outcome, heartbeat.stop().await) {
            (Err(Failure::Cancelled), Some(lost)) => Err(Failure::LockLost(lost)),
            (outcome, _) => outcome,
        }
    }

    /// Plans, streams into the sink, checks, publishes. Nothing is visible to readers unless
    /// every step succeeds; on any failure or cancellation the sink's staging is removed.
    async fn execute(&self, rec: &mut Recorder) -> Result<(), Failure> {
        let t_plan = Instant::now();
        // The drift baseline is read while the run goes, not on the way to publishing.
        let baseline = self.req.shard.is_none().then(|| {
            let ledger = ledger::for_database(self.db);
            let job = self.req.job.name.clone();
            tokio::spawn(async move { ledger.baseline(&job).await }.in_current_span())
        });
        let input_counters = Arc::default();
        rec.watch_stores(&input_counters, &self.destination);
        let mut plan = tokio::select! {
            plan = RunPlan::build(
                &self.req.job,
                self.req.date,
                &self.ctx.models,
                self.req.device,
                self.destination.clone(),
                input_counters,
            ).instrument(stage_span("plan")) => plan?,
            () = self.cancel.cancelled() => return Err(Failure::Cancelled),
        };
        if let Some(pin) = &self.req.pin {
            rec.planned(&plan);
            check_pin(&plan, pin)?;
        }
        let attempt = match self.req.shard {
            Some(shard) => match self.shard_start(&plan, shard, rec).await? {
                Some(attempt) => {
                    plan.input = crate::shard::split(&plan.input, shard);
                    Some((shard, attempt))
                }
                None => {
                    rec.stage("plan", t_plan);
                    return Ok(());
                }
            },
            None => None,
        };
        rec.planned(&plan);
        rec.stage("plan", t_plan);
        tracing::info!(
            objects = plan.input.objects.len(),
            rows = plan.input.total_rows,
            "input planned"
        );
        let adopted = self.resume(&plan).await?;
        let mut spec = plan.sink_spec(self.run_id);
        if matches!(plan.destination, Destination::Table(_)) {
            let first = adopted.as_ref().map_or(0, |a| a.next_seq);
            spec.checkpoints = Some(crate::resume::CheckpointTarget::new(self.run_id, first));
        }
        spec.adopted_rows = adopted.as_ref().map(|a| a.rows_scored);
        spec.sharded = attempt.is_some();
        let mut sink = sink::open(&plan.destination, self.db, spec).await?;
        let done = Arc::new(std::sync::atomic::AtomicU64::new(
            adopted.as_ref().map_or(0, |a| a.rows_read),
        ));
        let progress = crate::progress::Progress::start(
            self.ctx.progress,
            &self.req.job.name,
            plan.input.total_rows,
            Arc::clone(&done),
        );
        let streamed =
            pipeline::stream(&plan, sink.as_mut(), &self.cancel, adopted.as_ref(), &done).await;
        progress.finish().await;
        rec.streamed(&streamed.reports);
        let ids = match (&attempt, &streamed.ids) {
            (Some(_), Some(ids)) => ids.digest(),
            _ => None,
        };
        let mut rejected = streamed.rejected;
        if let Some(a) = adopted {
            rec.adopted(&a);
            rejected.splice(0..0, a.rejected);
        }
        if let Err(f) = streamed.result {
            sink.abort().await;
            return Err(f);
        }
        let t_commit = Instant::now();
        async {
            let staged = match sink.finish().await {
                Ok(n) => n,
                Err(e) => {
                    sink.abort().await;
                    return Err(e.into());
                }
            };
            if let Err(f) = self.check_before_publish(staged, rec) {
                sink.abort().await;
                return Err(f);
            }
            if let Err(f) = self.check_drift(baseline, rec).await {
                sink.abort().await;
                return Err(f);
            }
            if let Some((shard, attempt)) = &attempt {
                let part = PartBody {
                    rows_read: rec.rows_read,
                    rejected,
                    ids,
                    ..PartBody::default()
                };
                let outcome = self
                    .stage_part(&plan, sink, *shard, attempt, staged, part, rec)
                    .await;
                rec.stage("commit", t_commit);
                return outcome;
            }
            // From here the swap (or manifest commit) runs to its end: a signal now lets it commit
            // or roll back as a whole, never leaves half.
            let mut lock = self.lock.lock().await;
            sink.publish(lock.as_mut(), &rejected)
                .await
                .map_err(publish_failure)?;
            drop(lock);
            rec.rows_written = staged;
            rec.stage("commit", t_commit);
            crate::resume::forget(self.db, self.run_id).await;
            Ok(())
        }
        .instrument(stage_span("commit"))
        .await
    }

    /// For a table output: adopts the staged rows of an earlier run of this job and date that
    /// died with the same model and input, then registers this run so that a later one can
    /// resume it in turn. Parquet output is not resumed.
    async fn resume(&self, plan: &RunPlan) -> Result<Option<crate::resume::Adopted>, Failure> {
        let Destination::Table(table) = &plan.destination else {
            return Ok(None);
        };
        let key = crate::resume::ResumeKey {
            job: self.req.job.name.clone(),
            date: self.req.date,
            output: self.subject.clone(),
            model_sha256: plan.model.sha256.clone(),
            inputs_digest: crate::resume::inputs_digest(&plan.input.objects),
        };
        let adopted = crate::resume::settle(self.db, table, self.run_id, &key).await?;
        crate::resume::register(self.db, table, self.run_id, &key).await?;
        Ok(adopted)
    }

    /// The scores' and inputs' PSI against the job's previous successful run, recorded; past
    /// `drift.max_psi` a warning, or under `on_drift = "fail"` the run's failure. Shards are not
    /// checked (each scores a share, not the date's distribution); a run with no baseline has
    /// nothing to compare.
    async fn check_drift(
        &self,
        baseline: Option<
            tokio::task::JoinHandle<Result<Option<crate::drift::Baseline>, crate::db::DbError>>,
        >,
        rec: &mut Recorder,
    ) -> Result<(), Failure> {
        let Some(baseline) = baseline else {
            return Ok(());
        };
        if rec.rows_scored == 0 {
            return Ok(());
        }
        let baseline = match baseline.await {
            Ok(Ok(Some(b))) => b,
            Ok(Ok(None)) => return Ok(()),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "cannot read the drift baseline; drift is not checked");
                return Ok(());
            }
            Err(e) => {
                tracing::warn!(error = %e, "reading the drift baseline failed; drift is not checked");
                return Ok(());
            }
        };
        let spec = &self.req.job.drift;
        let report = crate::drift::compare(&rec.score_stats, &rec.feature_stats, &baseline, spec);
        if let Some((name, psi)) = &report.worst {
            tracing::info!(worst = %name, psi, baseline = %baseline.run_id, "drift against the previous successful run");
        }
        let verdict = match report.action {
            Some(crate::job::DriftAction::Fail) => Err(Failure::Drift(report.describe())),
            Some(crate::job::DriftAction::Warn) => {
                tracing::warn!(
                    "{}; publishing (drift.on_drift = \"warn\")",
                    report.describe()
                );
                Ok(())
            }
            None => Ok(()),
        };
        rec.drift = Some(report);
        verdict
    }

    /// The last checks before anything becomes visible: not cancelled, every scored row
    /// staged, no more rows rejected than the job allows, and the row guards.
    fn check_before_publish(&self, staged: u64, rec: &Recorder) -> Result<(), Failure> {
        if self.cancel.is_cancelled() {
            return Err(Failure::Cancelled);
        }
        let scored = rec.rows_scored;
        if staged != scored {
            return Err(Failure::Internal(format!(
                "staged {staged} rows but scored {scored}; nothing was published"
            )));
        }
        let allowed = self.req.job.input.max_rejected_fraction;
        if rec.rows_read > 0 && rec.rows_rejected as f64 > allowed * rec.rows_read as f64 {
            return Err(Failure::TooManyRejected(format!(
                "{} of the {} input rows ({:.1}%) were rejected (null ids, or nulls and NaN \
                 under `skip`), more than input.max_rejected_fraction = {allowed}",
                rec.rows_rejected,
                rec.rows_read,
                100.0 * rec.rows_rejected as f64 / rec.rows_read as f64
            )));
        }
        // A shard's rows are a share of the date's: the guards apply to all shards' at publish.
        if self.req.shard.is_some() {
            return Ok(());
        }
        match check_row_guards(&self.req.job.output, staged, self.previous_rows) {
            Err(f) if self.req.allow_row_drop => {
                tracing::warn!(reason = %f, "row guard overridden by --allow-row-drop; publishing");
                Ok(())
            }
            other => other,
        }
    }
}

impl Work<'_> {
    /// A shard run, planned: names its attempt and records it. `None` when there is nothing
    /// for it to stage: the attempt is published, or this shard's part is staged already (then
    /// it publishes the attempt if every part is there and nobody has).
    async fn shard_start(
        &self,
        plan: &RunPlan,
        shard: ShardSpec,
        rec: &mut Recorder,
    ) -> Result<Option<String>, Failure> {
        let job = &self.req.job;
        let output = self.destination.to_string();
        let inputs_digest = crate::resume::inputs_digest(&plan.input.objects);
        let key = AttemptKey {
            job: &job.name,
            job_sha256: &job.text_sha256,
            date: self.req.date,
            output: &output,
            count: shard.count,
            model_sha256: &plan.model.sha256,
            inputs_digest: &inputs_digest,
            label: &self.req.attempt_label,
        };
        let attempt = key.id();
        tracing::info!(%shard, attempt, "shard of a sharded run");
        rec.attempt = Some(attempt.clone());
        match coordination::open(self.db, &attempt, &key).await? {
            AttemptState::Open => {}
            AttemptState::Published(by) => {
                rec.shard_outcome = Some(ShardOutcome::Skipped(format!(
                    "attempt {attempt} was published by run {by}"
                )));
                return Ok(None);
            }
            AttemptState::Superseded(by) => {
                return Err(Failure::Superseded {
                    shard: shard.to_string(),
                    attempt,
                    by,
                });
            }
        }
        let Some(staged_by) = coordination::part_of(self.db, &attempt, shard.index).await? else {
            return Ok(Some(attempt));
        };
        let outcome = match self
            .publisher(plan, &attempt, shard)
            .publish_if_complete(&self.cancel)
            .await?
        {
            Published::Now { rows, shards } => ShardOutcome::Published { rows, shards },
            Published::Already(by) => ShardOutcome::Skipped(format!(
                "shard {shard} of attempt {attempt} was staged by run {staged_by}, and run {by} \
                 published the attempt"
            )),
            Published::Waiting { staged } => ShardOutcome::Skipped(format!(
                "shard {shard} of attempt {attempt} was staged by run {staged_by}; {staged} of \
                 {} shards have staged theirs",
                shard.count
            )),
        };
        rec.shard_outcome = Some(outcome);
        Ok(None)
    }

    /// A shard's staged rows, finished and checked: recorded as its part of the attempt (its
    /// staging no longer resumable, it belongs to the attempt), then published with the others
    /// if it is the last.
    #[allow(clippy::too_many_arguments)]
    async fn stage_part(
        &self,
        plan: &RunPlan,
        sink: Box<dyn sink::Sink>,
        shard: ShardSpec,
        attempt: &str,
        staged: u64,
        mut body: PartBody,
        rec: &mut Recorder,
    ) -> Result<(), Failure> {
        let superseded = |by: String| Failure::Superseded {
            shard: shard.to_string(),
            attempt: attempt.to_string(),
            by,
        };
        match coordination::state(self.db, attempt).await {
            Ok(AttemptState::Superseded(by)) => {
                sink.abort().await;
                return Err(superseded(by));
            }
            Ok(_) => {}
            Err(e) => {
                sink.abort().await;
                return Err(e.into());
            }
        }
        let kept = sink.keep().await?;
        body.run_ids = kept.run_ids;
        body.staging = kept.staging;
        body.files = kept.files;
        let part = Part {
            index: shard.index,
            run_id: self.run_id,
            rows: staged,
            body,
        };
        // Killed between these two, the staging is a dead run's (the sweep removes it, a retry
        // scores the shard again); after both, it is the attempt's.
        crate::resume::forget(self.db, self.run_id).await;
        coordination::record(self.db, attempt, &part).await?;
        rec.part_recorded = true;
        rec.rows_written = staged;
        if let AttemptState::Superseded(by) = coordination::state(self.db, attempt).await? {
            sink::remove_part(&self.destination, self.db, &part).await;
            rec.part_recorded = false;
            return Err(superseded(by));
        }
        let outcome = match self
            .publisher(plan, attempt, shard)
            .publish_if_complete(&self.cancel)
            .await?
        {
            Published::Now { rows, shards } => ShardOutcome::Published { rows, shards },
            Published::Already(_) => ShardOutcome::Staged {
                staged: shard.count,
                of: shard.count,
            },
            Published::Waiting { staged } => ShardOutcome::Staged {
                staged,
                of: shard.count,
            },
        };
        rec.shard_outcome = Some(outcome);
        Ok(())
    }

    fn publisher<'b>(
        &'b self,
        plan: &RunPlan,
        attempt: &'b str,
        shard: ShardSpec,
    ) -> Publisher<'b> {
        Publisher {
            db: self.db,
            destination: &self.destination,
            output: &self.output,
            date: self.req.date,
            attempt,
            count: shard.count,
            spec: plan.sink_spec(self.run_id),
            output_spec: &self.req.job.output,
            previous_rows: self.previous_rows,
            allow_row_drop: self.req.allow_row_drop,
        }
    }
}

/// The span of one stage of a run (plan, read, score, write, commit), inside the run's span.
pub fn stage_span(stage: &'static str) -> tracing::Span {
    tracing::info_span!("stage", stage)
}

/// A sink that found its lock gone while publishing reports the lost lock, not a sink error (and
/// ids found twice across shards, the duplicate id).
pub(crate) fn publish_failure(e: sink::SinkError) -> Failure {
    match e {
        sink::SinkError::LockLost(lost) => Failure::LockLost(lost),
        sink::SinkError::DuplicateId { id, .. } => Failure::DuplicateId { id },
        other => other.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn output(min_rows: u64, max_drop: f64) -> crate::job::OutputSpec {
        let text =
            format!("table = \"t\"\nmin_rows = {min_rows}\nmax_row_drop_fraction = {max_drop}\n");
        toml::from_str(&text).unwrap()
    }

    #[test]
    fn row_guards_stop_empty_and_shrunken_inputs() {
        let o = output(1, 0.5);
        assert!(check_row_guards(&o, 10, None).is_ok());
        let e = check_row_guards(&o, 0, None).unwrap_err();
        assert_eq!(e.exit_code(), crate::error::exit::INPUT);
        assert!(e.to_string().contains("min_rows = 1"), "{e}");
        // Half of the previous run is allowed, less is not.
        assert!(check_row_guards(&o, 500, Some(1000)).is_ok());
        let e = check_row_guards(&o, 499, Some(1000)).unwrap_err();
        assert!(e.to_string().contains("50.1% fewer than the 1000"), "{e}");
        // 1 turns the drop guard off; 0 allows no drop at all.
        assert!(check_row_guards(&output(1, 1.0), 1, Some(1000)).is_ok());
        assert!(check_row_guards(&output(1, 0.0), 999, Some(1000)).is_err());
        assert!(check_row_guards(&output(0, 1.0), 0, Some(1000)).is_ok());
    }
}
