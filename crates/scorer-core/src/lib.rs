//! scorer's bottom layer: the types every stage and the run share, with no I/O of their own and
//! nothing above them: the typed stage contract, error classes and exit codes, statistics and
//! histograms, ids, the quarantine's rows, SQL identifiers, redaction, date templates and cron
//! calendars, buffers and the large-block allocator. See ARCHITECTURE.md for the layers.

pub mod buffer_pool;
pub mod calendar;
pub mod config_keys;
pub mod contract;
pub mod error;
pub mod hashing;
pub mod histogram;
pub mod ids;
pub mod large_alloc;
pub mod progress;
pub mod quarantine;
pub mod redact;
pub mod sql_ident;
pub mod stats;
pub mod template;
