//! The run's error type and the exit codes orchestrators see. The codes are part of scorer's
//! interface (documented in the README): cron, Airflow and Kubernetes decide on retries with them.

use thiserror::Error;

use crate::db::DbError;
use crate::features::FeatureError;
use crate::job::JobError;
use crate::model::ModelError;
use crate::sink::SinkError;
use crate::source::SourceError;

/// Stable exit codes.
pub mod exit {
    /// The run succeeded.
    pub const OK: u8 = 0;
    /// Something unexpected; see the message.
    pub const INTERNAL: u8 = 1;
    /// Bad command line, job file or model: fix the configuration, retrying will not help.
    pub const CONFIG: u8 = 2;
    /// The input data is missing or does not fit the job (missing column, corrupt file, nulls).
    pub const INPUT: u8 = 3;
    /// The database could not be reached or refused the write; often worth a retry.
    pub const SINK: u8 = 4;
    /// Another run of the same job and date holds the lock; retry later.
    pub const ALREADY_RUNNING: u8 = 5;
}

/// Why a run (or a validation) failed.
#[derive(Debug, Error)]
pub enum RunError {
    #[error(transparent)]
    Job(#[from] JobError),
    #[error("job {job}: {message}")]
    Config { job: String, message: String },
    #[error("job {job}: {source}")]
    Model { job: String, source: ModelError },
    #[error("job {job}: {source}")]
    Source { job: String, source: SourceError },
    #[error("job {job}: {source}")]
    Features { job: String, source: FeatureError },
    #[error("job {job}: {source}")]
    Sink { job: String, source: SinkError },
    #[error("job {job}: {source}")]
    Db { job: String, source: DbError },
    #[error("job {job}: a run for {date} is already in progress (advisory lock held); retry later")]
    AlreadyRunning { job: String, date: String },
    #[error("job {job}: {message}")]
    Internal { job: String, message: String },
    #[error("job {job}: problems found:\n  - {}", problems.join("\n  - "))]
    Many {
        job: String,
        problems: Vec<String>,
        code: u8,
    },
}

impl RunError {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Job(_) | Self::Config { .. } | Self::Model { .. } => exit::CONFIG,
            Self::Source { .. } | Self::Features { .. } => exit::INPUT,
            Self::Sink { .. } | Self::Db { .. } => exit::SINK,
            Self::AlreadyRunning { .. } => exit::ALREADY_RUNNING,
            Self::Internal { .. } => exit::INTERNAL,
            Self::Many { code, .. } => *code,
        }
    }
}
