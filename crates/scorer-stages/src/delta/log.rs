//! Reading a Delta table's log through delta-rs: loading its current version, the files of a
//! date's partition, and the one error type every Delta operation reports (with the table's URL).
//! Shared by Delta input (`super::input`) and the Delta output (`crate::sink::delta`).

use deltalake_core::logstore::LogStoreRef;
use deltalake_core::{DeltaTable, DeltaTableError, FilterOp, FilterValue};
use futures::TryStreamExt;

/// A failure of the table or its commit, with the table's URL.
#[derive(Debug, thiserror::Error)]
pub enum DeltaError {
    /// delta-rs failed reading or committing.
    #[error("Delta table {url}: {context}: {source}")]
    Log {
        url: String,
        context: String,
        source: Box<DeltaTableError>,
    },
    /// The table exists with other columns than the run writes.
    #[error("Delta table {url}: {message}")]
    Mismatch { url: String, message: String },
    /// The table's location or options cannot be used.
    #[error("Delta table {url}: {message}")]
    Config { url: String, message: String },
}

impl DeltaError {
    /// Whether delta-rs refused the commit for a concurrent one it judged in conflict. Without
    /// its DataFusion feature delta-rs takes a write to have read every file of the table, so a
    /// concurrent rerun of another date (which removes that date's files) conflicts with every
    /// commit in flight; the date's files are listed afresh and the commit tried again
    /// (`crate::sink::delta::commit::commit_date`).
    pub fn is_conflict(&self) -> bool {
        use deltalake_core::kernel::transaction::TransactionError;
        matches!(
            self,
            Self::Log { source, .. } if matches!(
                source.as_ref(),
                DeltaTableError::Transaction {
                    source: TransactionError::CommitConflict(_)
                        | TransactionError::MaxCommitAttempts(_)
                }
            )
        )
    }

    /// A store that failed or a commit race lost after retries is transient; a schema that does
    /// not fit or a location that cannot be used is configuration.
    pub fn class(&self) -> crate::error::ErrorClass {
        use crate::error::ErrorClass;
        match self {
            Self::Mismatch { .. } | Self::Config { .. } => ErrorClass::Config,
            Self::Log { source, .. } => match source.as_ref() {
                DeltaTableError::InvalidTableLocation(_) => ErrorClass::Config,
                _ => ErrorClass::Transient,
            },
        }
    }
}

/// Wraps a delta-rs failure with the table and what was being done.
pub fn log_error(url: &str, context: &str) -> impl FnOnce(DeltaTableError) -> DeltaError + use<> {
    let (url, context) = (url.to_string(), context.to_string());
    move |source| DeltaError::Log {
        url,
        context,
        source: Box::new(source),
    }
}

/// The files of the table's loaded version whose partition `column` compares to `day` by `op`.
pub async fn partition_files(
    table: &DeltaTable,
    column: &str,
    op: FilterOp,
    day: &str,
) -> Result<Vec<deltalake_core::kernel::LogicalFileView>, DeltaTableError> {
    table
        .get_active_add_actions_by_partitions(&[(column, op, FilterValue::Scalar(day))])
        .try_collect()
        .await
}

/// The loaded table, or `None` when nothing is at the location yet.
pub async fn load(log_store: &LogStoreRef, url: &str) -> Result<Option<DeltaTable>, DeltaError> {
    let mut table = DeltaTable::new(log_store.clone());
    match table.load().await {
        Ok(()) => Ok(Some(table)),
        Err(DeltaTableError::NotATable(_)) => Ok(None),
        Err(source) => Err(log_error(url, "cannot read the table's log")(source)),
    }
}
