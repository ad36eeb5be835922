//! Error classes and the exit codes orchestrators see. The codes are part of scorer's interface
//! (documented in the README): cron, Airflow and Kubernetes decide on retries with them.
//!
//! Every stage's error says which [`ErrorClass`] it is; the run-level `scorer::failure` module
//! gathers the stages' errors into one `Failure` and maps it to an exit code here.

mod class;

pub use class::{
    ErrorClass, ObjectChanged, io_class, object_store_class, parquet_class, sqlstate_class,
    sqlx_class,
};

/// What a job or model asks of a capability this binary was built without (a cargo feature:
/// `delta`, `polars`, `onnx`, `text-embedding`): the message says how to build it in. A
/// configuration error (exit 2): retrying the same binary cannot help.
pub fn not_built(what: &str, feature: &str) -> String {
    format!(
        "{what} needs the `{feature}` feature, and this scorer was built without it; build scorer \
         with its default features (`cargo build --release`) or add `--features {feature}`"
    )
}

/// Stable exit codes. Each comes from a typed error class ([`ErrorClass`]), never from a
/// message: 2 never retry, 3 retry once the data changes, 4 retry now, 5 retry later.
pub mod exit {
    /// The run succeeded.
    pub const OK: u8 = 0;
    /// Something unexpected; see the message.
    pub const INTERNAL: u8 = 1;
    /// Bad command line, job file, model, credentials, or an existing table whose columns do not
    /// fit the job: fix the configuration, retrying will not help.
    pub const CONFIG: u8 = 2;
    /// The input data is missing or does not fit the job (missing column, corrupt file, nulls,
    /// duplicate ids): retrying helps only once the data changed.
    pub const INPUT: u8 = 3;
    /// Transient infrastructure: the database or object store could not be reached, timed out or
    /// failed for now, an input object changed while it was read, or the run lost its lock.
    /// Retry.
    pub const TRANSIENT: u8 = 4;
    /// Another run of the same output and date holds the lock; retry later.
    pub const ALREADY_RUNNING: u8 = 5;
    /// The run was stopped by SIGTERM or SIGINT and cleaned up after itself; the date's previous
    /// results are untouched. Retry when the orchestrator wants the run again.
    pub const CANCELLED: u8 = 6;
}
