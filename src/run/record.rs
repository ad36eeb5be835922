//! Counters and timings gathered while a run goes, written to the ledger when it ends.

use std::collections::BTreeMap;
use std::time::Instant;

use chrono::Utc;

use crate::failure::Failure;
use crate::ledger::{InputObject, ModelUsed, RunFinish, RunStatus};
use crate::pipeline::StageTimings;
use crate::plan::RunPlan;
use crate::sink::Output;
use crate::source::store_metrics::StoreCounters;
use crate::stats::ScoreStats;
use std::sync::Arc;

/// What the ledger gets at the end of a run, filled in stage by stage.
#[derive(Debug, Default)]
pub struct Recorder {
    pub rows_read: u64,
    pub rows_scored: u64,
    pub rows_written: u64,
    pub rows_rejected: u64,
    pub stage_seconds: BTreeMap<String, f64>,
    inputs: Vec<InputObject>,
    model: Option<ModelUsed>,
    pub score_stats: BTreeMap<String, ScoreStats>,
    score_columns: Vec<String>,
    /// The input's and (Parquet output) the output's store request counts.
    store_counters: Vec<Arc<StoreCounters>>,
    /// The run whose staged rows this one adopted, and how many.
    resumed_from: Option<uuid::Uuid>,
    rows_resumed: u64,
    /// A shard run: its attempt, once known (`crate::shard`).
    pub attempt: Option<String>,
    /// A shard run whose part is recorded: its rows belong to the attempt now, so the run ends
    /// `staged` even when publishing fails afterwards (and the sweep leaves its staging).
    pub part_recorded: bool,
    /// A shard run's outcome when it did not fail.
    pub shard_outcome: Option<crate::shard::publish::ShardOutcome>,
    /// The model's input features, by name (sampled).
    pub feature_stats: BTreeMap<String, ScoreStats>,
    feature_names: Vec<String>,
    /// PSI against the job's previous successful run.
    pub drift: Option<crate::drift::DriftCheck>,
    /// Seconds per scored batch.
    latency: crate::histogram::Histogram,
    /// The process's CPU seconds when the run started.
    pub cpu_at_start: Option<f64>,
    /// Set when the run was slow against the job's recent runs.
    pub slow: Option<crate::metrics::SlowRun>,
    /// What `output.retention_days` dropped once the run published.
    pub retention: Option<crate::sink::retention::Retention>,
    /// The row groups in flight the plan chose (ledger `memory`).
    in_flight: Option<crate::source::in_flight::InFlight>,
}

impl Recorder {
    /// Records the seconds since `since` as stage `name`.
    pub fn stage(&mut self, name: &str, since: Instant) {
        self.stage_seconds
            .insert(name.to_string(), since.elapsed().as_secs_f64());
    }

    /// Records what the plan resolved: the input objects and the model.
    pub fn planned(&mut self, plan: &RunPlan) {
        let m = &plan.model;
        self.model = Some(ModelUsed {
            name: m.name.clone(),
            version: m.version.clone(),
            sha256: m.sha256.clone(),
            device: m.device.to_string(),
            gpu_name: m.gpu_name.clone(),
            source: m
                .source
                .as_ref()
                .and_then(|s| serde_json::to_string(s).ok()),
        });
        self.inputs = plan
            .input
            .objects
            .iter()
            .map(|o| InputObject {
                url: o.url.clone(),
                size: o.meta.size,
                etag: o.meta.e_tag.clone(),
                last_modified: o.meta.last_modified,
                delta_version: plan.input.delta_version,
            })
            .collect();
        self.score_columns = plan.score_columns.iter().map(|c| c.name.clone()).collect();
        self.feature_names = plan.features.numeric_features();
        self.in_flight = Some(plan.in_flight());
    }

    /// Counts the requests of the stores the run uses: the input's (before planning, so a run
    /// whose listing failed reports them too) and a Parquet output's.
    pub fn watch_stores(&mut self, input: &Arc<StoreCounters>, target: &dyn Output) {
        self.store_counters = vec![Arc::clone(input)];
        self.store_counters.extend(target.store_counters());
    }

    /// Records what the stages reported.
    pub fn streamed(&mut self, r: &StageTimings) {
        self.stage_seconds.insert("write".into(), r.write_seconds);
        if let Some(read) = r.read_seconds {
            self.stage_seconds.insert("read".into(), read);
        }
        if let Some(ids) = r.resume_ids_seconds {
            self.stage_seconds.insert("resume_ids".into(), ids);
        }
        if let Some(score) = &r.score {
            self.rows_read = score.rows_read;
            self.rows_scored = score.rows_scored;
            self.rows_rejected = score.rows_rejected;
            self.stage_seconds.insert("score".into(), score.seconds);
            self.latency = score.latency.clone();
            self.score_stats = self
                .score_columns
                .iter()
                .cloned()
                .zip(score.stats.iter().cloned())
                .collect();
            self.feature_stats = self
                .feature_names
                .iter()
                .cloned()
                .zip(score.features.iter().map(|s| {
                    let mut s = s.clone();
                    s.histogram = s.histogram.coarsened(crate::score::FEATURE_BIN_BITS);
                    s
                }))
                .collect();
        }
    }

    /// Adds what a resumed run adopted: its rows, rejects and statistics count as this run's.
    pub fn adopted(&mut self, a: &crate::resume::Adopted) {
        self.rows_read += a.rows_read;
        self.rows_scored += a.rows_scored;
        self.rows_rejected += a.rejected.len() as u64;
        for (name, stats) in self.score_columns.iter().zip(&a.stats) {
            self.score_stats
                .entry(name.clone())
                .or_default()
                .merge(stats);
        }
        self.resumed_from = Some(a.from);
        self.rows_resumed = a.rows_scored;
    }

    /// Input objects listed by the plan.
    pub fn objects(&self) -> usize {
        self.inputs.len()
    }

    /// The ledger's final values for a run that ended with `outcome`.
    pub fn finish_of(&self, outcome: &Result<(), Failure>) -> RunFinish {
        use crate::shard::publish::ShardOutcome;
        let status = match (outcome, &self.shard_outcome) {
            (Ok(()), None | Some(ShardOutcome::Published { .. })) => RunStatus::Succeeded,
            (Ok(()), Some(ShardOutcome::Staged { .. })) => RunStatus::Staged,
            (Ok(()), Some(ShardOutcome::Skipped(_))) => RunStatus::Skipped,
            // Its part stays staged for a retry or another shard to publish.
            (Err(_), _) if self.part_recorded => RunStatus::Staged,
            (Err(Failure::Cancelled), _) => RunStatus::Cancelled,
            (Err(_), _) => RunStatus::Failed,
        };
        let error = match (outcome, &self.shard_outcome) {
            (Err(e), _) => Some(e.to_string()),
            (Ok(()), Some(ShardOutcome::Skipped(why))) => Some(why.clone()),
            (Ok(()), _) => None,
        };
        RunFinish {
            status,
            finished_at: Utc::now(),
            rows_read: self.rows_read,
            rows_scored: self.rows_scored,
            rows_written: self.rows_written,
            rows_rejected: self.rows_rejected,
            stage_seconds: self.stage_seconds.clone(),
            inputs: self.inputs.clone(),
            model: self.model.clone(),
            score_stats: summarized(&self.score_stats),
            feature_stats: summarized(&self.feature_stats),
            drift: self.drift.clone(),
            metrics: self.metrics(),
            retention: self.retention.clone(),
            error,
            storage_requests: self.store_counters.iter().map(|c| c.requests()).sum(),
            storage_errors: self.store_counters.iter().map(|c| c.errors()).sum(),
            resumed_from: self.resumed_from,
            rows_resumed: self.rows_resumed,
            memory: Some(crate::ledger::MemoryUsed {
                peak_rss_bytes: peak_rss_bytes(),
                block_cache: crate::large_alloc::stats(),
                in_flight: self.in_flight,
            }),
        }
    }
}

impl Recorder {
    /// The run's performance figures so far.
    pub fn metrics(&self) -> crate::metrics::RunMetrics {
        let total = self.stage_seconds.get("total").copied();
        crate::metrics::RunMetrics {
            batch_latency_ms: crate::metrics::latency_percentiles(&self.latency),
            rows_per_second: total
                .filter(|t| *t > 0.0)
                .map(|t| self.rows_read as f64 / t),
            cpu_seconds: crate::metrics::process_cpu_seconds()
                .zip(self.cpu_at_start)
                .map(|(now, then)| now - then),
            slow: self.slow.clone(),
        }
    }
}

/// The statistics with their standard deviations and quantiles filled in.
fn summarized(stats: &BTreeMap<String, ScoreStats>) -> BTreeMap<String, ScoreStats> {
    stats
        .iter()
        .map(|(name, s)| {
            let mut s = s.clone();
            s.summarize();
            (name.clone(), s)
        })
        .collect()
}

/// The process's peak resident set so far (`VmHWM` in `/proc/self/status`; Linux only).
fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}
