//! A run's performance figures (per-batch latency percentiles, rows/s, CPU seconds, whether it
//! was slow against the job's recent runs), kept in the ledger's `metrics` column and exported
//! for Prometheus by `crate::telemetry::exporter`.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::histogram::Histogram;

/// What the ledger's `metrics` column holds for a run.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct RunMetrics {
    /// Milliseconds to build features and score one source batch: p50, p95, p99, max.
    pub batch_latency_ms: BTreeMap<String, f64>,
    /// Input rows per second over the whole run.
    pub rows_per_second: Option<f64>,
    /// CPU seconds (user + system) the process used during the run (the whole process's: in a
    /// scheduler running several jobs at once, theirs too).
    pub cpu_seconds: Option<f64>,
    /// Set when the run took longer than `metrics.slow_factor` times the median of the job's
    /// recent successful runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slow: Option<SlowRun>,
}

/// A run slower than its job's recent ones.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SlowRun {
    pub seconds: f64,
    pub median_seconds: f64,
    /// How many recent successful runs the median is over.
    pub over_runs: usize,
    pub factor: f64,
}

/// The percentiles of per-batch latencies (in seconds) as milliseconds.
pub fn latency_percentiles(latencies: &Histogram) -> BTreeMap<String, f64> {
    [("p50", 0.5), ("p95", 0.95), ("p99", 0.99), ("max", 1.0)]
        .into_iter()
        .filter_map(|(name, q)| Some((name.to_string(), f64::from(latencies.quantile(q)?) * 1e3)))
        .collect()
}

/// CPU seconds (user + system) the process has used so far.
pub fn process_cpu_seconds() -> Option<f64> {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::uninit();
    // SAFETY: getrusage writes a whole `rusage` to the pointer it is given and returns 0 on
    // success; the value is read only then.
    let usage = unsafe {
        if libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) != 0 {
            return None;
        }
        usage.assume_init()
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Some(secs(usage.ru_utime) + secs(usage.ru_stime))
}

/// `Some` when `seconds` is over `factor` × the median of `recent` (at least 3 runs' seconds).
pub fn slow_run(seconds: f64, recent: &[f64], factor: f64) -> Option<SlowRun> {
    if recent.len() < 3 {
        return None;
    }
    let mut sorted = recent.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    let median = if sorted.len().is_multiple_of(2) {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    } else {
        sorted[mid]
    };
    (seconds > factor * median).then_some(SlowRun {
        seconds,
        median_seconds: median,
        over_runs: recent.len(),
        factor,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_is_slow_only_against_enough_history() {
        assert_eq!(slow_run(10.0, &[1.0, 1.0], 3.0), None);
        let s = slow_run(10.0, &[1.0, 2.0, 1.5, 9.0], 3.0).unwrap();
        assert_eq!((s.median_seconds, s.over_runs), (1.75, 4));
        assert_eq!(slow_run(5.0, &[1.0, 2.0, 2.0], 3.0), None);
        assert!(process_cpu_seconds().unwrap() >= 0.0);
        let mut h = Histogram::default();
        for ms in 1..=100 {
            h.add(ms as f32 / 1e3);
        }
        let p = latency_percentiles(&h);
        assert!(
            (p["p50"] - 50.0).abs() < 0.5 && (p["max"] - 100.0).abs() < 0.5,
            "{p:?}"
        );
    }
}
