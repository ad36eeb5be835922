//! The run's error types and the exit codes orchestrators see. The codes are part of scorer's
//! interface (documented in the README): cron, Airflow and Kubernetes decide on retries with them.
//!
//! The stages report a [`Failure`], which knows what went wrong and where (object, row group,
//! column, table) but not which job it belongs to; the run and `validate` attach the job's name
//! at one boundary, turning it into a [`RunError`].

use thiserror::Error;

use crate::db::DbError;
use crate::features::FeatureError;
use crate::job::JobError;
use crate::lock::LockLost;
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
    /// The database could not be reached, refused the write, or the run lost its lock; often
    /// worth a retry.
    pub const SINK: u8 = 4;
    /// Another run of the same output and date holds the lock; retry later.
    pub const ALREADY_RUNNING: u8 = 5;
    /// The run was stopped by SIGTERM or SIGINT and cleaned up after itself; the date's previous
    /// results are untouched. Retry when the orchestrator wants the run again.
    pub const CANCELLED: u8 = 6;
}

/// What went wrong in a stage of a run (or a validation), without the job's name.
#[derive(Debug, Error)]
pub enum Failure {
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Features(#[from] FeatureError),
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("output {output} for {date} is being written by another run (lock held); retry later")]
    AlreadyRunning { output: String, date: String },
    #[error("{0}; nothing was published")]
    LockLost(LockLost),
    #[error("cancelled by a signal; nothing was published and the run's staging data was removed")]
    Cancelled,
    #[error("{0}")]
    Internal(String),
    #[error("problems found:\n  - {}", problems.join("\n  - "))]
    Many { problems: Vec<String>, code: u8 },
}

impl Failure {
    /// The process exit code for this failure.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Config(_) | Self::Model(_) => exit::CONFIG,
            Self::Source(_) | Self::Features(_) => exit::INPUT,
            Self::Sink(_) | Self::Db(_) | Self::LockLost(_) => exit::SINK,
            Self::AlreadyRunning { .. } => exit::ALREADY_RUNNING,
            Self::Cancelled => exit::CANCELLED,
            Self::Internal(_) => exit::INTERNAL,
            Self::Many { code, .. } => *code,
        }
    }

    /// Attaches the job's name: the one place a failure learns which job it belongs to.
    pub fn in_job(self, job: &str) -> RunError {
        RunError::Failed {
            job: job.to_string(),
            failure: self,
        }
    }
}

/// Why a run (or a validation) failed, as the binary reports it.
#[derive(Debug, Error)]
pub enum RunError {
    /// The job file itself could not be read or is invalid (it names itself).
    #[error(transparent)]
    Job(#[from] JobError),
    #[error("job {job}: {failure}")]
    Failed { job: String, failure: Failure },
    /// `scorer models …` failed; names the registry directory.
    #[error("model registry {root}: {failure}")]
    Registry { root: String, failure: Failure },
}

impl RunError {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Job(_) => exit::CONFIG,
            Self::Failed { failure, .. } | Self::Registry { failure, .. } => failure.exit_code(),
        }
    }

    /// The stage failure, when there is one.
    pub fn failure(&self) -> Option<&Failure> {
        match self {
            Self::Job(_) => None,
            Self::Failed { failure, .. } | Self::Registry { failure, .. } => Some(failure),
        }
    }
}
