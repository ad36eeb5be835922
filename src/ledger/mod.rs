//! The run ledger: what each run did, for operators and auditors. A row is written as `running`
//! when a run starts, its `heartbeat_at` refreshed while the run lives, and completed
//! (`succeeded`, `failed` or `cancelled`) when it ends. A killed run leaves a `running` row with a
//! stale heartbeat, which the sweep marks `abandoned` once the run's lock is free.
//!
//! One [`Ledger`] trait, with PostgreSQL (`scorer.runs`) and SQLite (`scorer_runs`)
//! implementations. Values are converted once to text and numbers ([`StartValues`],
//! [`FinishValues`]) and bound by one macro for both engines; only the SQL text (in `sql/`)
//! differs by dialect.

pub mod audit;
pub mod browse;
mod engines;

pub use engines::{PgLedger, SqliteLedger};

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::db::{Database, DbError};
use crate::stats::ScoreStats;

/// Status values, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    Running,
    Succeeded,
    Failed,
    /// Stopped by SIGTERM/SIGINT; its staging data was removed.
    Cancelled,
    /// Its process died (stale heartbeat, lock free); the sweep removed what it left.
    Abandoned,
    /// A shard that staged its rows; they become the date's when its attempt publishes
    /// (`succeeded` then), or never (`superseded`).
    Staged,
    /// A shard whose attempt had this shard's rows staged or published already: it did nothing.
    Skipped,
    /// A shard whose staged rows a newer attempt of the date made obsolete; they were removed.
    Superseded,
}

impl RunStatus {
    /// The stored text.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::Abandoned => "abandoned",
            Self::Staged => "staged",
            Self::Skipped => "skipped",
            Self::Superseded => "superseded",
        }
    }
}

/// What is known when a run starts.
#[derive(Debug, Clone)]
pub struct RunStart {
    pub run_id: Uuid,
    pub job: String,
    pub logical_date: NaiveDate,
    pub started_at: DateTime<Utc>,
    pub output_table: String,
    pub scorer_version: String,
    pub host: String,
    /// The operating-system user of the process (`name (uid N)`).
    pub os_user: Option<String>,
    /// sha256 of the job file as it was read.
    pub job_sha256: Option<String>,
    /// The shard a sharded run scores (`crate::shard`).
    pub shard: Option<crate::shard::ShardSpec>,
}

/// One input object as it was when listed.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct InputObject {
    pub url: String,
    pub size: u64,
    pub etag: Option<String>,
    pub last_modified: DateTime<Utc>,
    /// The Delta table version the object was read at, when the input is a Delta table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delta_version: Option<i64>,
}

/// The model a run used.
#[derive(Debug, Clone, Default)]
pub struct ModelUsed {
    pub name: String,
    pub version: String,
    pub sha256: String,
    pub device: String,
    /// The GPU's name when `device` is a GPU.
    pub gpu_name: Option<String>,
    /// Where a model from the MLflow Model Registry came from, as JSON (alias, resolved
    /// version, run id, every file's sha256); `None` for scorer's own registry.
    pub source: Option<String>,
}

/// What is known when a run ends, successful or not.
#[derive(Debug, Clone)]
pub struct RunFinish {
    pub status: RunStatus,
    pub finished_at: DateTime<Utc>,
    pub rows_read: u64,
    pub rows_scored: u64,
    pub rows_written: u64,
    pub rows_rejected: u64,
    pub stage_seconds: BTreeMap<String, f64>,
    pub inputs: Vec<InputObject>,
    pub model: Option<ModelUsed>,
    pub score_stats: BTreeMap<String, ScoreStats>,
    pub error: Option<String>,
    /// Requests to the input's and output's object stores, and how many of them failed (each
    /// retried by object_store unless its retries ran out); zero for local files.
    pub storage_requests: u64,
    pub storage_errors: u64,
    /// The run whose staged rows this one adopted (`crate::resume`), and how many rows.
    pub resumed_from: Option<Uuid>,
    pub rows_resumed: u64,
    /// The process's memory at the end of the run (`null` where it cannot be read).
    pub memory: Option<MemoryUsed>,
    /// Statistics of each input feature, sampled (`crate::score::feature_sample_every`).
    pub feature_stats: BTreeMap<String, ScoreStats>,
    /// PSI against the job's previous successful run (`crate::drift`), when there was one.
    pub drift: Option<crate::drift::DriftCheck>,
    /// Latency percentiles, rows/s, CPU seconds, slowness (`crate::metrics`).
    pub metrics: crate::metrics::RunMetrics,
    /// What `output.retention_days` dropped after the run published (`crate::sink::retention`).
    pub retention: Option<crate::sink::retention::Retention>,
}

/// What the run's process held: its peak resident set (Linux's VmHWM: the process's, so in a
/// scheduler running several jobs it covers them all) and the large-block cache's figures.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct MemoryUsed {
    pub peak_rss_bytes: Option<u64>,
    pub block_cache: Option<crate::large_alloc::CacheStats>,
    /// The row groups in flight and what chose them (the job, or the footers and cores).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub in_flight: Option<crate::source::in_flight::InFlight>,
}

fn count(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".to_string())
}

/// A timestamp as both engines store and read it: RFC 3339, milliseconds, `Z`.
pub fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The `running` row's values, as text, bound in this order by `bind_start!`.
#[derive(Debug, Clone)]
pub struct StartValues {
    run_id: String,
    job: String,
    logical_date: String,
    started_at: String,
    output_table: String,
    scorer_version: String,
    host: String,
    os_user: Option<String>,
    job_sha256: Option<String>,
    shard_index: Option<i64>,
    shard_count: Option<i64>,
}

impl From<&RunStart> for StartValues {
    fn from(s: &RunStart) -> Self {
        Self {
            run_id: s.run_id.to_string(),
            job: s.job.clone(),
            logical_date: s.logical_date.format("%Y-%m-%d").to_string(),
            started_at: timestamp(s.started_at),
            output_table: s.output_table.clone(),
            scorer_version: s.scorer_version.clone(),
            host: s.host.clone(),
            os_user: s.os_user.clone(),
            job_sha256: s.job_sha256.clone(),
            shard_index: s.shard.map(|s| i64::from(s.index)),
            shard_count: s.shard.map(|s| i64::from(s.count)),
        }
    }
}

/// The completed row's values, as text and numbers, bound in this order by `bind_finish!`.
#[derive(Debug, Clone)]
pub struct FinishValues {
    run_id: String,
    status: &'static str,
    finished_at: String,
    rows: [i64; 4],
    stage_seconds: String,
    inputs: String,
    model_name: Option<String>,
    model_version: Option<String>,
    model_sha256: Option<String>,
    device: Option<String>,
    score_stats: String,
    error: Option<String>,
    gpu_name: Option<String>,
    storage: [i64; 2],
    resumed_from: Option<String>,
    rows_resumed: i64,
    memory: Option<String>,
    feature_stats: Option<String>,
    drift: Option<String>,
    metrics: String,
    retention: Option<String>,
    model_source: Option<String>,
}

impl FinishValues {
    fn new(run_id: Uuid, f: &RunFinish) -> Self {
        let model = f.model.clone().unwrap_or_default();
        let opt = |s: String| (!s.is_empty()).then_some(s);
        Self {
            run_id: run_id.to_string(),
            status: f.status.as_str(),
            finished_at: timestamp(f.finished_at),
            rows: [
                count(f.rows_read),
                count(f.rows_scored),
                count(f.rows_written),
                count(f.rows_rejected),
            ],
            stage_seconds: json(&f.stage_seconds),
            // Through the redaction point: an input URL or an error can quote a credential.
            inputs: crate::redact::redact(&json(&f.inputs)).into_owned(),
            model_name: opt(model.name),
            model_version: opt(model.version),
            model_sha256: opt(model.sha256),
            device: opt(model.device),
            score_stats: json(&f.score_stats),
            error: f
                .error
                .as_deref()
                .map(|e| crate::redact::redact(e).into_owned()),
            gpu_name: model.gpu_name,
            model_source: model.source,
            storage: [count(f.storage_requests), count(f.storage_errors)],
            resumed_from: f.resumed_from.map(|u| u.to_string()),
            rows_resumed: count(f.rows_resumed),
            memory: f.memory.as_ref().map(json),
            feature_stats: (!f.feature_stats.is_empty()).then(|| json(&f.feature_stats)),
            drift: f.drift.as_ref().map(json),
            metrics: json(&f.metrics),
            retention: f.retention.as_ref().map(json),
        }
    }
}

/// Binds [`StartValues`] to a query of either engine (`sql/*/queries/ledger_start.sql`).
macro_rules! bind_start {
    ($query:expr, $v:expr) => {
        $query
            .bind(&$v.run_id)
            .bind(&$v.job)
            .bind(&$v.logical_date)
            .bind(&$v.started_at)
            .bind(&$v.output_table)
            .bind(&$v.scorer_version)
            .bind(&$v.host)
            .bind(&$v.os_user)
            .bind(&$v.job_sha256)
            .bind($v.shard_index)
            .bind($v.shard_count)
    };
}

/// Binds [`FinishValues`] to a query of either engine (`sql/*/queries/ledger_finish.sql`).
macro_rules! bind_finish {
    ($query:expr, $v:expr) => {
        $query
            .bind(&$v.run_id)
            .bind($v.status)
            .bind(&$v.finished_at)
            .bind($v.rows[0])
            .bind($v.rows[1])
            .bind($v.rows[2])
            .bind($v.rows[3])
            .bind(&$v.stage_seconds)
            .bind(&$v.inputs)
            .bind(&$v.model_name)
            .bind(&$v.model_version)
            .bind(&$v.model_sha256)
            .bind(&$v.device)
            .bind(&$v.score_stats)
            .bind(&$v.error)
            .bind(&$v.gpu_name)
            .bind($v.storage[0])
            .bind($v.storage[1])
            .bind(&$v.resumed_from)
            .bind($v.rows_resumed)
            .bind(&$v.memory)
            .bind(&$v.feature_stats)
            .bind(&$v.drift)
            .bind(&$v.metrics)
            .bind(&$v.retention)
            .bind(&$v.model_source)
    };
}
pub(crate) use {bind_finish, bind_start};

/// A ledger row still marked `running`, as the sweep sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct RunningRun {
    pub run_id: Uuid,
    pub job: String,
    pub logical_date: NaiveDate,
    /// The output table or URL, as the run recorded it (the lock key's output).
    pub output: String,
    pub host: String,
    /// Seconds since its last heartbeat.
    pub heartbeat_age: f64,
    /// The shard it scored, for a shard run: its lock is the shard's.
    pub shard: Option<crate::shard::ShardSpec>,
}

impl RunningRun {
    /// What the run locked while it ran (`crate::shard::lock_subject`).
    pub fn lock_subject(&self) -> String {
        crate::shard::lock_subject(&self.output, self.shard)
    }
}

/// The row the engines return for `ledger_running.sql`, all text but the age and the shard.
type RunningRow = (
    String,
    String,
    String,
    String,
    String,
    f64,
    Option<i64>,
    Option<i64>,
);

fn running_run(target: &str, row: RunningRow) -> Result<RunningRun, DbError> {
    let (run_id, job, date, output, host, age, shard_index, shard_count) = row;
    let bad = |what: &str, value: &str| DbError::Ledger {
        target: target.to_string(),
        reason: format!("ledger row has an unreadable {what}: {value}"),
    };
    Ok(RunningRun {
        run_id: run_id.parse().map_err(|_| bad("run_id", &run_id))?,
        logical_date: date.parse().map_err(|_| bad("logical_date", &date))?,
        job,
        output,
        host,
        heartbeat_age: age,
        shard: match (shard_index, shard_count) {
            (Some(i), Some(n)) => Some(
                crate::shard::ShardSpec::new(
                    u32::try_from(i).map_err(|_| bad("shard_index", &i.to_string()))?,
                    u32::try_from(n).map_err(|_| bad("shard_count", &n.to_string()))?,
                )
                .map_err(|e| bad("shard", &e))?,
            ),
            _ => None,
        },
    })
}

/// Which runs [`Ledger::recent`] returns: a job's newest, optionally of one date and status.
#[derive(Debug, Clone, Copy)]
pub struct RecentQuery<'a> {
    pub job: &'a str,
    pub date: Option<NaiveDate>,
    pub status: Option<RunStatus>,
    pub limit: u32,
}

/// One run as `scorer status`, the scheduler and `scorer backfill` look at it.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSummary {
    pub run_id: Uuid,
    pub logical_date: NaiveDate,
    /// As stored: `running`, `succeeded`, `failed`, `cancelled`, `abandoned`.
    pub status: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub rows_written: i64,
    /// Empty unless the run failed.
    pub error: String,
    /// The rows its publication gave the date: `rows_written`, or for a shard of a published
    /// attempt the attempt's rows in all (the row guards compare with this).
    pub date_rows: i64,
}

/// The row the engines return for `ledger_recent.sql`.
type SummaryRow = (String, String, String, String, String, i64, String, i64);

fn run_summary(target: &str, row: SummaryRow) -> Result<RunSummary, DbError> {
    let (run_id, date, status, started, finished, rows_written, error, date_rows) = row;
    let bad = |what: &str, value: &str| DbError::Ledger {
        target: target.to_string(),
        reason: format!("ledger row has an unreadable {what}: {value}"),
    };
    let time = |what: &str, value: &str| {
        DateTime::parse_from_rfc3339(value)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| bad(what, value))
    };
    Ok(RunSummary {
        run_id: run_id.parse().map_err(|_| bad("run_id", &run_id))?,
        logical_date: date.parse().map_err(|_| bad("logical_date", &date))?,
        status,
        started_at: time("started_at", &started)?,
        finished_at: if finished.is_empty() {
            None
        } else {
            Some(time("finished_at", &finished)?)
        },
        rows_written,
        error,
        date_rows,
    })
}

/// What a succeeded run used, as the ledger recorded it: enough to run it again exactly
/// (`scorer rerun --from-ledger`).
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedRun {
    pub run_id: Uuid,
    pub model_name: String,
    pub model_version: String,
    pub model_sha256: String,
    pub inputs: Vec<InputObject>,
}

/// The row the engines return for `ledger_recorded.sql` and `ledger_recorded_attempt.sql`:
/// run id, model name, version, sha256, inputs (JSON) and the shard attempt, if any.
type RecordedRow = (String, String, String, String, String, Option<String>);

/// What the recorded run used: one unsharded run, or every shard run of one attempt (their
/// inputs together, their model, which must be one).
fn recorded_run(target: &str, rows: Vec<RecordedRow>) -> Result<RecordedRun, DbError> {
    let bad = |what: &str, value: &str| DbError::Ledger {
        target: target.to_string(),
        reason: format!("ledger row has an unreadable {what}: {value}"),
    };
    let mut recorded: Option<RecordedRun> = None;
    for (run_id, model_name, model_version, model_sha256, inputs, _) in rows {
        let inputs: Vec<InputObject> =
            serde_json::from_str(&inputs).map_err(|e| bad("inputs", &e.to_string()))?;
        match &mut recorded {
            None => {
                recorded = Some(RecordedRun {
                    run_id: run_id.parse().map_err(|_| bad("run_id", &run_id))?,
                    model_name,
                    model_version,
                    model_sha256,
                    inputs,
                });
            }
            Some(r) if r.model_sha256 != model_sha256 || r.model_version != model_version => {
                return Err(bad(
                    "shard attempt (its shards used different models)",
                    &format!("{} and {model_version}", r.model_version),
                ));
            }
            Some(r) => {
                for object in inputs {
                    if !r.inputs.iter().any(|o| o.url == object.url) {
                        r.inputs.push(object);
                    }
                }
            }
        }
    }
    recorded.ok_or_else(|| bad("shard attempt", "no succeeded shard run"))
}

/// Where runs are recorded. One implementation per database engine; the run holds it as a
/// trait object, so nothing in the run path matches on the engine.
#[async_trait]
pub trait Ledger: Send + Sync {
    /// Writes the run's `running` row.
    async fn start(&self, s: &RunStart) -> Result<(), DbError>;
    /// Refreshes the run's `heartbeat_at`.
    async fn heartbeat(&self, run_id: Uuid) -> Result<(), DbError>;
    /// Completes the run's row.
    async fn finish(&self, run_id: Uuid, f: &RunFinish) -> Result<(), DbError>;
    /// The rows still marked `running`, of one job or all.
    async fn running(&self, job: Option<&str>) -> Result<Vec<RunningRun>, DbError>;
    /// Marks a dead run `abandoned` with a note; false if its row was no longer `running`.
    async fn abandon(&self, run_id: Uuid, note: &str) -> Result<bool, DbError>;
    /// A job's newest runs, newest first.
    async fn recent(&self, q: &RecentQuery<'_>) -> Result<Vec<RunSummary>, DbError>;
    /// The newest succeeded run of `job` for `date`: the date's current rows (the row guards,
    /// the scheduler's and the backfill's "already scored" checks).
    async fn last_succeeded(
        &self,
        job: &str,
        date: NaiveDate,
    ) -> Result<Option<RunSummary>, DbError> {
        let q = RecentQuery {
            job,
            date: Some(date),
            status: Some(RunStatus::Succeeded),
            limit: 1,
        };
        Ok(self.recent(&q).await?.into_iter().next())
    }
    /// What the newest succeeded run of `job` for `date` used, if there is one.
    async fn recorded(&self, job: &str, date: NaiveDate) -> Result<Option<RecordedRun>, DbError>;
    /// The statistics of `job`'s newest succeeded unsharded run, the drift baseline.
    async fn baseline(&self, job: &str) -> Result<Option<crate::drift::Baseline>, DbError>;
}

/// The row the engines return for `ledger_baseline.sql`.
type BaselineRow = (String, String, String);

fn baseline(target: &str, row: BaselineRow) -> Result<crate::drift::Baseline, DbError> {
    let (run_id, scores, features) = row;
    let bad = |what: &str, value: &str| DbError::Ledger {
        target: target.to_string(),
        reason: format!("ledger row has an unreadable {what}: {value}"),
    };
    Ok(crate::drift::Baseline {
        run_id: run_id.parse().map_err(|_| bad("run_id", &run_id))?,
        scores: serde_json::from_str(&scores).map_err(|e| bad("score_stats", &e.to_string()))?,
        features: serde_json::from_str(&features)
            .map_err(|e| bad("feature_stats", &e.to_string()))?,
    })
}

/// The ledger in `db`.
pub fn for_database(db: &Database) -> Box<dyn Ledger> {
    match db {
        Database::Postgres { pool, target } => Box::new(PgLedger::new(pool.clone(), target)),
        Database::Sqlite { pool, target, .. } => Box::new(SqliteLedger::new(pool.clone(), target)),
    }
}
