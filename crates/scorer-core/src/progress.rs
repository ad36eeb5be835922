//! Progress of a run while it goes: input rows done of the total the Parquet footers promised,
//! rows/s and the time left. On a terminal, a progress bar (indicatif); otherwise (a CronJob's log,
//! Airflow's task log, the scheduler) one log line every `every`, so a long run says how far it
//! is without flooding the log. `Off` shows nothing (`scorer run --quiet`, library callers).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tracing::Instrument;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How a run shows its progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressMode {
    Off,
    /// A log line every so often.
    Log(Duration),
    /// A bar when stderr is a terminal, else log lines every so often.
    Auto(Duration),
}

/// A running progress display; stops when dropped or finished.
pub struct Progress {
    stop: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl Progress {
    /// Starts showing `done` (input rows read so far) against `total` for `label` (the job).
    pub fn start(mode: ProgressMode, label: &str, total: u64, done: Arc<AtomicU64>) -> Self {
        let stop = CancellationToken::new();
        let task = match mode {
            ProgressMode::Off => None,
            ProgressMode::Auto(_) if std::io::IsTerminal::is_terminal(&std::io::stderr()) => Some(
                tokio::spawn(bar(label.to_string(), total, done, stop.clone()).in_current_span()),
            ),
            ProgressMode::Auto(every) | ProgressMode::Log(every) => Some(tokio::spawn(
                lines(label.to_string(), total, done, every, stop.clone()).in_current_span(),
            )),
        };
        Self { stop, task }
    }

    /// Stops the display (the bar is cleared) and waits for it.
    pub async fn finish(mut self) {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Rows/s since `started` and the seconds left at that rate.
fn rate(done: u64, total: u64, started: Instant) -> (f64, Option<f64>) {
    let secs = started.elapsed().as_secs_f64().max(1e-3);
    let per_s = done as f64 / secs;
    let left = (per_s > 0.0).then(|| total.saturating_sub(done) as f64 / per_s);
    (per_s, left)
}

async fn lines(
    label: String,
    total: u64,
    done: Arc<AtomicU64>,
    every: Duration,
    stop: CancellationToken,
) {
    let started = Instant::now();
    let every = every.max(Duration::from_millis(100));
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let rows = done.load(Ordering::Relaxed);
        let (per_s, left) = rate(rows, total, started);
        tracing::info!(
            job = %label,
            rows_done = rows,
            rows_total = total,
            percent = format!("{:.1}", 100.0 * rows as f64 / total.max(1) as f64),
            rows_per_s = per_s.round() as u64,
            eta_s = left.map(|s| s.round() as u64),
            "progress"
        );
    }
}

async fn bar(label: String, total: u64, done: Arc<AtomicU64>, stop: CancellationToken) {
    let bar = indicatif::ProgressBar::new(total);
    let style = indicatif::ProgressStyle::with_template(
        "{prefix} [{bar:30}] {human_pos}/{human_len} rows, {per_sec}, {eta} left",
    )
    .map(|s| s.progress_chars("=> "));
    if let Ok(style) = style {
        bar.set_style(style);
    }
    bar.set_prefix(label);
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            _ = tick.tick() => bar.set_position(done.load(Ordering::Relaxed)),
        }
    }
    bar.finish_and_clear();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_and_time_left_follow_the_rows_done() {
        let started = Instant::now() - Duration::from_secs(10);
        let (per_s, left) = rate(1_000, 5_000, started);
        assert!((per_s - 100.0).abs() < 1.0, "{per_s}");
        assert!((left.unwrap() - 40.0).abs() < 1.0, "{left:?}");
        assert_eq!(rate(0, 5_000, started).1, None);
    }
}
