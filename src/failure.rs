//! How a run (or a validation) failed. The stages report their own typed errors; a [`Failure`]
//! gathers them with the run-level outcomes (lock held, cancelled, row guards, drift), knowing
//! what went wrong and where (object, row group, column, table) but not which job it belongs to.
//! The run and `validate` attach the job's name at one boundary, turning it into a [`RunError`].
//! It sits above the stages, so the bottom `error` module needs to know none of them.

use thiserror::Error;

use crate::db::DbError;
use crate::db::lock::LockLost;
use crate::error::{ErrorClass, exit};
use crate::features::FeatureError;
use crate::job::JobError;
use crate::model::ModelError;
use crate::sink::SinkError;
use crate::source::SourceError;

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
    /// The run's rows failed a row guard (`min_rows`, `max_row_drop_fraction`): the input is
    /// probably incomplete, so the date keeps its previous rows.
    #[error(
        "{reason}; nothing was published and the date keeps its previous rows (check the input, \
         or pass --allow-row-drop to publish anyway)"
    )]
    TooFewRows { rows: u64, reason: String },
    /// More input rows were rejected than the job allows (`input.max_rejected_fraction`).
    #[error("{0}; nothing was published and the date keeps its previous rows")]
    TooManyRejected(String),
    /// `--from-ledger`: today's model or input is not what the recorded run used.
    #[error(
        "cannot reproduce run {run_id}: {why}; nothing was published (run without --from-ledger \
         to score the date as it is now)"
    )]
    NotReproducible { run_id: uuid::Uuid, why: String },
    /// An id appears more than once in the date's input: the date would get two result rows
    /// for it.
    #[error(
        "id {id} appears more than once in the input; nothing was published (deduplicate the \
         input, or pick an id column that is unique for the date)"
    )]
    DuplicateId { id: String },
    /// A shard of an attempt that a newer attempt of the date replaced (`crate::shard`): its
    /// rows would mix with the newer attempt's, so they are dropped.
    #[error(
        "shard {shard} of attempt {attempt} is superseded: attempt {by} of the same date was \
         published since it started (the input, model, job file or --attempt changed); its \
         rows were dropped and nothing was published"
    )]
    Superseded {
        shard: String,
        attempt: String,
        by: String,
    },
    /// The scores or inputs drifted past `drift.max_psi` under `on_drift = "fail"`.
    #[error("{0}; nothing was published and the date keeps its previous rows")]
    Drift(String),
    #[error("{0}")]
    Internal(String),
    #[error("problems found:\n  - {}", problems.join("\n  - "))]
    Many { problems: Vec<String>, code: u8 },
}

impl Failure {
    /// The process exit code for this failure.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::AlreadyRunning { .. } => exit::ALREADY_RUNNING,
            Self::Cancelled => exit::CANCELLED,
            Self::Many { code, .. } => *code,
            other => other.class().map_or(exit::INTERNAL, ErrorClass::exit_code),
        }
    }

    /// The class of this failure; `None` for the outcomes that are not errors of a class
    /// (already running, cancelled, a list of problems with its own code).
    pub fn class(&self) -> Option<ErrorClass> {
        Some(match self {
            Self::Config(_) => ErrorClass::Config,
            Self::Model(e) => e.class(),
            Self::Source(e) => e.class(),
            Self::Features(_)
            | Self::TooFewRows { .. }
            | Self::TooManyRejected(_)
            | Self::NotReproducible { .. }
            | Self::DuplicateId { .. }
            | Self::Superseded { .. }
            | Self::Drift(_) => ErrorClass::Data,
            Self::Sink(e) => e.class(),
            Self::Db(e) => e.class(),
            Self::LockLost(_) => ErrorClass::Transient,
            Self::Internal(_) => ErrorClass::Internal,
            Self::AlreadyRunning { .. } | Self::Cancelled | Self::Many { .. } => return None,
        })
    }

    /// Whether running again, unchanged, may succeed: transient infrastructure, another run
    /// holding the lock, or a cancellation.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self.exit_code(),
            exit::TRANSIENT | exit::ALREADY_RUNNING | exit::CANCELLED
        )
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

/// A sink that found its lock gone while publishing reports the lost lock, not a sink error (and
/// ids found twice across shards, the duplicate id).
pub(crate) fn publish_failure(e: SinkError) -> Failure {
    match e {
        SinkError::LockLost(lost) => Failure::LockLost(lost),
        SinkError::DuplicateId { id, .. } => Failure::DuplicateId { id },
        other => other.into(),
    }
}
