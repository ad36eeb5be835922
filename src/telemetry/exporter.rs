//! Run metrics in Prometheus's text format, encoded by `prometheus-client`: a registry of the
//! latest run per job (and runs counted by status), pushed to a Pushgateway when a run ends
//! (the batch-job pattern: one push at the end) or served on `/metrics` by the scheduler.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::ledger::RunFinish;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobLabels {
    job: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    job: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QuantileLabels {
    job: String,
    quantile: String,
}

type FloatGauge = Gauge<f64, AtomicU64>;

/// The metrics of finished runs, by job.
pub struct Exporter {
    registry: Registry,
    runs: Family<StatusLabels, Counter>,
    success: Family<JobLabels, Gauge>,
    finished: Family<JobLabels, Gauge>,
    rows_read: Family<JobLabels, Gauge>,
    rows_written: Family<JobLabels, Gauge>,
    rows_rejected: Family<JobLabels, Gauge>,
    seconds: Family<JobLabels, FloatGauge>,
    rows_per_second: Family<JobLabels, FloatGauge>,
    cpu_seconds: Family<JobLabels, FloatGauge>,
    peak_rss: Family<JobLabels, Gauge>,
    batch_latency: Family<QuantileLabels, FloatGauge>,
    max_psi: Family<JobLabels, FloatGauge>,
    slow: Family<JobLabels, Gauge>,
    schedule_interval: Family<JobLabels, FloatGauge>,
    job_max_psi: Family<JobLabels, FloatGauge>,
}

/// What the alert rules (`deploy/prometheus/`) compare a job's runs against, from its job file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobFacts {
    pub name: String,
    /// The longest gap between consecutive firings of its `schedule` (over the next 60), in
    /// seconds; `None` without a schedule.
    pub schedule_interval_seconds: Option<f64>,
    /// Its `drift.max_psi`, when set.
    pub max_psi: Option<f64>,
}

/// Firings looked at for a schedule's longest gap: two months of a daily job, a weekday job's
/// weekends, a day-of-month job's two months.
const GAP_FIRINGS: usize = 60;

impl JobFacts {
    /// The facts of `job`, its schedule read from now.
    pub fn of(job: &crate::job::Job) -> Self {
        let interval = job.schedule.as_deref().and_then(|expr| {
            let calendar = crate::calendar::Calendar::new(expr, job.timezone.as_deref()).ok()?;
            let gap = calendar.longest_gap(chrono::Utc::now(), GAP_FIRINGS)?;
            Some(gap.as_seconds_f64())
        });
        Self {
            name: job.name.clone(),
            schedule_interval_seconds: interval,
            max_psi: job.drift.max_psi,
        }
    }
}

impl std::fmt::Debug for Exporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exporter").finish_non_exhaustive()
    }
}

impl Default for Exporter {
    fn default() -> Self {
        Self::new()
    }
}

impl Exporter {
    /// An empty registry with every metric family declared.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("scorer");
        let runs = Family::<StatusLabels, Counter>::default();
        registry.register("runs", "Runs finished, by job and status", runs.clone());
        let gauge = |registry: &mut Registry, name: &str, help: &str| {
            let g = Family::<JobLabels, Gauge>::default();
            registry.register(name, help, g.clone());
            g
        };
        let float = |registry: &mut Registry, name: &str, help: &str| {
            let g = Family::<JobLabels, FloatGauge>::default();
            registry.register(name, help, g.clone());
            g
        };
        let success = gauge(
            &mut registry,
            "last_run_success",
            "1 if the job's last run succeeded (or staged its shard), else 0",
        );
        let finished = gauge(
            &mut registry,
            "last_run_finished_timestamp_seconds",
            "When the job's last run ended (Unix time)",
        );
        let rows_read = gauge(
            &mut registry,
            "last_run_rows_read",
            "Input rows the last run read",
        );
        let rows_written = gauge(
            &mut registry,
            "last_run_rows_written",
            "Rows the last run wrote",
        );
        let rows_rejected = gauge(
            &mut registry,
            "last_run_rows_rejected",
            "Rows the last run left out (quarantined)",
        );
        let seconds = float(
            &mut registry,
            "last_run_seconds",
            "Wall seconds of the last run",
        );
        let rows_per_second = float(
            &mut registry,
            "last_run_rows_per_second",
            "Input rows per second of the last run",
        );
        let cpu_seconds = float(
            &mut registry,
            "last_run_cpu_seconds",
            "CPU seconds the process used during the last run",
        );
        let peak_rss = gauge(
            &mut registry,
            "last_run_peak_rss_bytes",
            "Peak resident set of the process at the end of the last run",
        );
        let max_psi = float(
            &mut registry,
            "last_run_max_psi",
            "Largest PSI of the last run's outputs and features against its baseline",
        );
        let slow = gauge(
            &mut registry,
            "last_run_slow",
            "1 when the last run took over metrics.slow_factor times the median of the job's recent successful runs",
        );
        let schedule_interval = float(
            &mut registry,
            "job_schedule_interval_seconds",
            "The longest gap between consecutive firings of the job's schedule",
        );
        let job_max_psi = float(
            &mut registry,
            "job_max_psi",
            "The job's drift.max_psi: the largest PSI it allows",
        );
        let batch_latency = Family::<QuantileLabels, FloatGauge>::default();
        registry.register(
            "last_run_batch_latency_seconds",
            "Seconds to build features and score one batch in the last run, by quantile",
            batch_latency.clone(),
        );
        Self {
            registry,
            runs,
            success,
            finished,
            rows_read,
            rows_written,
            rows_rejected,
            seconds,
            rows_per_second,
            cpu_seconds,
            peak_rss,
            batch_latency,
            max_psi,
            slow,
            schedule_interval,
            job_max_psi,
        }
    }

    /// Records a finished run of `facts.name` as its ledger row says, with what its job file
    /// says the alert rules compare against.
    pub fn record(&self, facts: &JobFacts, f: &RunFinish) {
        let job = facts.name.as_str();
        let labels = JobLabels {
            job: job.to_string(),
        };
        if let Some(interval) = facts.schedule_interval_seconds {
            self.schedule_interval.get_or_create(&labels).set(interval);
        }
        if let Some(max) = facts.max_psi {
            self.job_max_psi.get_or_create(&labels).set(max);
        }
        self.slow
            .get_or_create(&labels)
            .set(i64::from(f.metrics.slow.is_some()));
        let status = f.status.as_str();
        self.runs
            .get_or_create(&StatusLabels {
                job: job.to_string(),
                status: status.to_string(),
            })
            .inc();
        let ok = matches!(status, "succeeded" | "staged" | "skipped");
        self.success.get_or_create(&labels).set(i64::from(ok));
        self.finished
            .get_or_create(&labels)
            .set(f.finished_at.timestamp());
        let int = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        self.rows_read.get_or_create(&labels).set(int(f.rows_read));
        self.rows_written
            .get_or_create(&labels)
            .set(int(f.rows_written));
        self.rows_rejected
            .get_or_create(&labels)
            .set(int(f.rows_rejected));
        if let Some(total) = f.stage_seconds.get("total") {
            self.seconds.get_or_create(&labels).set(*total);
        }
        if let Some(r) = f.metrics.rows_per_second {
            self.rows_per_second.get_or_create(&labels).set(r);
        }
        if let Some(c) = f.metrics.cpu_seconds {
            self.cpu_seconds.get_or_create(&labels).set(c);
        }
        if let Some(rss) = f.memory.as_ref().and_then(|m| m.peak_rss_bytes) {
            self.peak_rss.get_or_create(&labels).set(int(rss));
        }
        if let Some((_, psi)) = f.drift.as_ref().and_then(|d| d.worst.as_ref()) {
            self.max_psi.get_or_create(&labels).set(*psi);
        }
        for (q, ms) in &f.metrics.batch_latency_ms {
            let quantile = match q.as_str() {
                "p50" => "0.5",
                "p95" => "0.95",
                "p99" => "0.99",
                _ => "1",
            };
            self.batch_latency
                .get_or_create(&QuantileLabels {
                    job: job.to_string(),
                    quantile: quantile.to_string(),
                })
                .set(ms / 1e3);
        }
    }

    /// The registry in Prometheus's text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String does not fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// Pushes `job`'s finished run to the Pushgateway at `url`, replacing the group
/// `job="<job>"` (the label every metric carries). A failure is the caller's to log: metrics never
/// fail a run.
pub async fn push(url: &str, facts: &JobFacts, f: &RunFinish) -> Result<(), String> {
    let exporter = Exporter::new();
    exporter.record(facts, f);
    let job = facts.name.as_str();
    let target = format!("{}/metrics/job/{job}", url.trim_end_matches('/'));
    let response = reqwest::Client::new()
        .put(&target)
        .header("Content-Type", "text/plain; version=0.0.4")
        .body(exporter.encode())
        .timeout(std::time::Duration::from_secs(10))
        .send()
        .await
        .map_err(|e| format!("pushing metrics to {target}: {e}"))?;
    if response.status().is_success() {
        Ok(())
    } else {
        Err(format!(
            "pushing metrics to {target}: the Pushgateway answered {}",
            response.status()
        ))
    }
}
