//! Logging: `tracing` to stderr, human-readable or JSON for log shippers, plus the launch instant
//! so latency to the first scored batch can be reported from process start; each stage's span;
//! and a run's metrics for Prometheus ([`exporter`]: pushed to a Pushgateway when a run ends, or
//! served on `/metrics` by the scheduler through [`serve`]).

pub mod exporter;
pub mod serve;

use std::io::IsTerminal;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use tracing_subscriber::EnvFilter;

static LAUNCH: OnceLock<Instant> = OnceLock::new();

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Records the process start; call first thing in `main`.
pub fn mark_launch() {
    let _ = LAUNCH.set(Instant::now());
}

/// Time since [`mark_launch`] (or since the first call, in tests).
pub fn since_launch() -> Duration {
    LAUNCH.get_or_init(Instant::now).elapsed()
}

/// Installs the global subscriber, writing through [`crate::redact`]. `RUST_LOG` overrides the default (`scorer=info,warn`).
///
/// Every event inside a run carries the run's span (`run`: `job`, `date`, `run_id`, `shard`)
/// and its stage's (`stage`: plan, read, score, write, commit): in text as the line's prefix,
/// in JSON as `span` (the innermost) and `spans` (all, outermost first).
pub fn init(format: LogFormat) {
    // delta-rs's kernel logs at ERROR when it looks for a table that is not there yet, which
    // is how every Delta output starts; delta-rs returns its real failures to scorer, which
    // reports them, so the kernel's own events are off unless RUST_LOG asks for them.
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("scorer=info,warn,buoyant_kernel=off"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(crate::redact::RedactedStderr)
        .with_ansi(std::io::stderr().is_terminal());
    let result = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .try_init(),
    };
    if let Err(e) = result {
        eprintln!("scorer: logging already initialised: {e}");
    }
}

/// The span of one stage of a run (plan, read, score, write, commit), inside the run's span.
pub fn stage_span(stage: &'static str) -> tracing::Span {
    tracing::info_span!("stage", stage)
}
