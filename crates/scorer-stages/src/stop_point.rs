//! Named points in a run where the process can be made to freeze itself, so that crash tests
//! kill it (`kill -9`) at an exact step instead of after a guessed delay: the publishing shard
//! before and after it takes the date's lock, inside its publish transaction, and after the
//! commit but before its ledger row is updated. `SCORER_STOP_AT=<point>` names the one point at
//! which the process sends itself SIGSTOP (every thread stops, connections and transactions
//! stay open, as in a process that hangs there); unset, [`reach`] costs one comparison.
//! README, "Development", lists the points.

use std::sync::OnceLock;

/// The environment variable that names the stop point.
pub const ENV: &str = "SCORER_STOP_AT";

/// The publishing shard, every part staged, before it asks for the date's lock.
pub const SHARD_BEFORE_LOCK: &str = "shard-publish-before-lock";
/// The publishing shard holding the date's lock, before its publish transaction begins.
pub const SHARD_LOCKED: &str = "shard-publish-locked";
/// Inside the publish transaction, every statement run, before COMMIT (PostgreSQL tables).
pub const SHARD_IN_TRANSACTION: &str = "shard-publish-in-transaction";
/// The publication committed; the shard's own ledger row not yet updated.
pub const SHARD_COMMITTED: &str = "shard-publish-committed";

/// Stops this process (SIGSTOP) if `SCORER_STOP_AT` names `point`; returns when it is continued
/// (SIGCONT), if ever.
pub fn reach(point: &str) {
    static AT: OnceLock<Option<String>> = OnceLock::new();
    if AT.get_or_init(|| std::env::var(ENV).ok()).as_deref() != Some(point) {
        return;
    }
    eprintln!(
        "scorer: stopping at {point} ({ENV}); pid {}",
        std::process::id()
    );
    #[cfg(unix)]
    // SAFETY: raise has no preconditions; SIGSTOP cannot be caught, so no handler runs.
    unsafe {
        libc::raise(libc::SIGSTOP);
    }
}
