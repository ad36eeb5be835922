//! Sinks: where scored rows land. Each sink writes one (job, date) partition so that it replaces the
//! date's previous rows atomically: readers see the old rows or the new rows, never a mix, and a run
//! that fails leaves the old rows in place.

pub mod objects;
pub mod postgres;
pub mod sqlite;

use std::future::Future;

use arrow::array::ArrayRef;
use chrono::NaiveDate;
use thiserror::Error;
use uuid::Uuid;

use crate::source::IdKind;
use crate::sql_ident::TableName;

/// Rows scored by the model, ready to be written.
#[derive(Debug)]
pub struct ScoredBatch {
    /// `Int64Array` or `StringArray`, no nulls.
    pub ids: ArrayRef,
    /// One vector of `rows` values per model output, in output order.
    pub scores: Vec<Vec<f32>>,
    pub rows: usize,
}

/// The shape of a result table and which partition a run writes.
#[derive(Debug, Clone)]
pub struct OutputLayout {
    pub table: TableName,
    pub id_column: String,
    pub id_kind: IdKind,
    pub score_columns: Vec<String>,
    pub date: NaiveDate,
    pub run_id: Uuid,
}

/// Name of the logical-date column in every result table.
pub const DATE_COLUMN: &str = "ds";
/// Name of the column that says which run wrote a row.
pub const RUN_ID_COLUMN: &str = "run_id";

impl OutputLayout {
    /// Column names in table order.
    pub fn columns(&self) -> Vec<&str> {
        let mut c = vec![self.id_column.as_str(), DATE_COLUMN];
        c.extend(self.score_columns.iter().map(String::as_str));
        c.push(RUN_ID_COLUMN);
        c
    }
}

/// A failure writing results; names the table concerned.
#[derive(Debug, Error)]
pub enum SinkError {
    #[error("output table {table}: {message}")]
    Table { table: String, message: String },
    #[error("output table {table}: {context}: {source}")]
    Database {
        table: String,
        context: &'static str,
        source: sqlx::Error,
    },
    #[error("output {url}: {message}")]
    Objects { url: String, message: String },
}

impl SinkError {
    pub(crate) fn db(table: &TableName, context: &'static str) -> impl FnOnce(sqlx::Error) -> Self {
        let table = table.to_string();
        move |source| Self::Database {
            table,
            context,
            source,
        }
    }
}

/// Writes one date's partition. Nothing is visible to readers until `commit` returns.
pub trait PartitionWriter: Send + Sized + 'static {
    /// Adds rows to the staged partition.
    fn write(&mut self, batch: &ScoredBatch) -> impl Future<Output = Result<(), SinkError>> + Send;
    /// Makes the staged rows the date's partition, replacing any previous one; returns rows written.
    fn commit(self) -> impl Future<Output = Result<u64, SinkError>> + Send;
    /// Throws the staged rows away; the date's previous rows stay as they were.
    fn abort(self) -> impl Future<Output = ()> + Send;
}
