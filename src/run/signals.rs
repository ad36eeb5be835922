//! SIGTERM and SIGINT for `scorer run`: Kubernetes, Airflow and a terminal stop tasks this way.
//! The first signal cancels the run, which stops reading, lets nothing more reach the sink, drops
//! its staging and marks the ledger `cancelled`; a grace period bounds that, and a second signal
//! exits at once (what it leaves is swept by the next run or `scorer gc`).

use std::time::Duration;

use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

use crate::error::exit;

/// A token cancelled by the first SIGTERM or SIGINT. After it, the process exits with code 6 when
/// `grace` has passed or another signal comes, whichever is first. Call inside the runtime.
pub fn cancel_on_signals(grace: Duration) -> CancellationToken {
    let token = CancellationToken::new();
    let (mut term, mut int) = match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(term), Ok(int)) => (term, int),
        (Err(e), _) | (_, Err(e)) => {
            tracing::warn!(error = %e, "cannot listen for SIGTERM/SIGINT; a signal will kill the run");
            return token;
        }
    };
    let cancel = token.clone();
    tokio::spawn(async move {
        let name = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        eprintln!(
            "scorer: {name} received: cancelling the run (up to {} s; a second signal exits now)",
            grace.as_secs()
        );
        cancel.cancel();
        let why = tokio::select! {
            _ = term.recv() => "a second signal",
            _ = int.recv() => "a second signal",
            () = tokio::time::sleep(grace) => "the grace period ended",
        };
        eprintln!(
            "scorer: {why}: exiting without finishing the clean-up (the next run or `scorer gc` sweeps it)"
        );
        std::process::exit(i32::from(exit::CANCELLED));
    });
    token
}

/// The signals a long-running command (`scorer schedule`, `scorer backfill`) stops on: `first`
/// is cancelled by the first SIGTERM or SIGINT (stop starting work, let running runs finish
/// within the grace period), `second` by the next one (cancel them now). The command decides
/// what each means and exits by itself. Call inside the runtime.
#[derive(Debug, Clone, Default)]
pub struct Stop {
    pub first: CancellationToken,
    pub second: CancellationToken,
}

/// Listens for SIGTERM and SIGINT for a long-running command; see [`Stop`].
pub fn stop_on_signals(what: &'static str) -> Stop {
    let stop = Stop::default();
    let (mut term, mut int) = match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(term), Ok(int)) => (term, int),
        (Err(e), _) | (_, Err(e)) => {
            tracing::warn!(error = %e, "cannot listen for SIGTERM/SIGINT; a signal will kill {what}");
            return stop;
        }
    };
    let tokens = stop.clone();
    tokio::spawn(async move {
        let name = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        tracing::warn!(
            "{name} received: {what} stops starting runs and lets running ones finish (a second signal cancels them)"
        );
        tokens.first.cancel();
        tokio::select! {
            _ = term.recv() => {},
            _ = int.recv() => {},
        }
        tracing::warn!("second signal: cancelling running runs");
        tokens.second.cancel();
        tokio::select! {
            _ = term.recv() => {},
            _ = int.recv() => {},
        }
        eprintln!(
            "scorer: third signal: exiting without finishing the clean-up (the next run or `scorer gc` sweeps it)"
        );
        std::process::exit(i32::from(exit::CANCELLED));
    });
    stop
}
