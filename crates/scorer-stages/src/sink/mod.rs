//! Sinks: where scored rows land. Each sink writes one (job, date) partition so that it replaces the
//! date's previous rows atomically: readers see the old rows or the new rows, never a mix, and a run
//! that fails leaves the old rows in place.
//!
//! Each output kind (a PostgreSQL table, a SQLite table, Parquet files, a Delta table) lives in its
//! own folder and implements [`Output`]: open a sink, publish a sharded run's parts, remove a part,
//! drop dates before a day (retention), remove a dead run's leftovers. The kind's `[output]` keys
//! are its [`OutputSection`], which resolves a run's [`Destination`]; `Destination::open` is the
//! one place that picks the kind's `Output`.
//!
//! Every sink goes through the same three steps, held by the run as a `Box<dyn Sink>`:
//! `write` (rows into the run's staging area), `finish` (every row durable in staging, counted),
//! `publish` (the swap or manifest commit that makes them the date's rows). Keeping them apart lets
//! the run check its counts and its lock between finishing and publishing, and lets a later
//! sharded run publish once after several writers have finished.

pub mod checkpoint;
pub mod columns;
pub mod delta;
pub mod objects;
mod output;
pub mod parts;
pub mod postgres;
pub mod retention;
pub mod sqlite;
pub mod table;

pub use columns::VectorType;
pub use objects::ObjectsTarget;
pub use output::{Destination, Output, OutputSection, ShardsToPublish, TableOptions};

use crate::error::{ErrorClass, object_store_class, parquet_class, sqlx_class};
use arrow::array::ArrayRef;
use async_trait::async_trait;
use chrono::NaiveDate;
use thiserror::Error;
use uuid::Uuid;

use crate::contract::OutputColumn;
use crate::db::lock::{LockLost, OutputLock};
use crate::quarantine::RejectedRow;
use crate::source::IdKind;
use crate::sql_ident::TableName;

/// Rows scored by the model, ready to be written.
#[derive(Debug)]
pub struct ScoredBatch {
    /// `Int64Array` or `StringArray`, no nulls.
    pub ids: ArrayRef,
    /// One array of `rows` values per result column, in layout order, of the column's type.
    pub outputs: Vec<ArrayRef>,
    pub rows: usize,
    /// The input rows they came from, for the sink's resume checkpoints; `None` for rows that
    /// came from nowhere a run could read again.
    pub origin: Option<BatchOrigin>,
}

/// The input rows behind a scored batch: rows `first_row .. first_row + source_rows` of one row
/// group, with the rows of them that were rejected and the statistics of the scores.
#[derive(Debug, Clone)]
pub struct BatchOrigin {
    pub object: std::sync::Arc<str>,
    pub row_group: usize,
    pub first_row: usize,
    pub source_rows: usize,
    pub rejected: Vec<RejectedRow>,
    /// One per result column.
    pub stats: Vec<crate::stats::ScoreStats>,
}

/// The shape of a result table and which partition a run writes.
#[derive(Debug, Clone)]
pub struct OutputLayout {
    pub table: TableName,
    pub id_column: String,
    pub id_kind: IdKind,
    /// The model's outputs under their result-table names.
    pub score_columns: Vec<OutputColumn>,
    pub date: NaiveDate,
    pub run_id: Uuid,
    /// Which job and model wrote the rows, for the table's comment.
    pub produced_by: String,
    /// Index the id column of each date's partition (`output.index`).
    pub index: bool,
    /// PostgreSQL: roles granted SELECT on the table and its `_latest` view (`output.readers`).
    pub readers: Vec<String>,
    /// Which of `score_columns` are input columns passed through rather than model outputs.
    pub passthrough: Vec<String>,
    /// How vector columns are stored (`output.vector_type`).
    pub vectors: crate::sink::VectorType,
}

/// Name of the logical-date column in every result table.
pub const DATE_COLUMN: &str = "ds";
/// Name of the column that says which run wrote a row.
pub const RUN_ID_COLUMN: &str = "run_id";

impl OutputLayout {
    /// Column names in table order.
    pub fn columns(&self) -> Vec<&str> {
        let mut c = vec![self.id_column.as_str(), DATE_COLUMN];
        c.extend(self.score_columns.iter().map(|c| c.name.as_str()));
        c.push(RUN_ID_COLUMN);
        c
    }
}

/// A failure writing results; names the table or URL concerned.
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
    /// The output table exists with other columns than the job writes: the job or the table must
    /// change, retrying cannot help.
    #[error("output table {table}: {message}")]
    Mismatch { table: String, message: String },
    #[error("output {url}: {message}")]
    Objects { url: String, message: String },
    /// An object-store operation of the Parquet output failed.
    #[error("output {url}: {context}: {source}")]
    Store {
        url: String,
        context: String,
        source: object_store::Error,
    },
    /// Writing a Parquet file of the output failed (its store's errors travel inside).
    #[error("output {url}: {context}: {source}")]
    Parquet {
        url: String,
        context: String,
        source: parquet::errors::ParquetError,
    },
    /// The run's lock was gone when the sink was about to publish; nothing was published.
    #[error(transparent)]
    LockLost(#[from] LockLost),
    /// The Delta table's log or commit failed, or the table does not fit the run.
    #[cfg(feature = "delta")]
    #[error(transparent)]
    Delta(#[from] crate::delta::log::DeltaError),
    /// The output's kind is not built into this binary (`error::not_built`).
    #[error("output {output}: {message}")]
    NotBuilt { output: String, message: String },
    /// Two shards of a sharded run staged the same id; nothing was published.
    #[error("output {output}: id {id} appears in more than one shard's rows")]
    DuplicateId { output: String, id: String },
}

impl SinkError {
    /// What kind of failure this is: a table that does not fit is configuration, database and
    /// store failures are classed by their typed cause, a lost lock is transient, and the rest
    /// (broken invariants of the sink itself) is internal.
    pub fn class(&self) -> ErrorClass {
        match self {
            Self::Mismatch { .. } => ErrorClass::Config,
            Self::Database { source, .. } => sqlx_class(source),
            Self::Store { source, .. } => object_store_class(source),
            Self::Parquet { source, .. } => parquet_class(source),
            Self::LockLost(_) => ErrorClass::Transient,
            Self::DuplicateId { .. } => ErrorClass::Data,
            #[cfg(feature = "delta")]
            Self::Delta(e) => e.class(),
            Self::NotBuilt { .. } => ErrorClass::Config,
            Self::Table { .. } | Self::Objects { .. } => ErrorClass::Internal,
        }
    }
}

impl SinkError {
    /// Wraps a database failure with the result table and what was being done to it.
    pub fn db(table: &TableName, context: &'static str) -> impl FnOnce(sqlx::Error) -> Self {
        let table = table.to_string();
        move |source| Self::Database {
            table,
            context,
            source,
        }
    }
}

/// Writes one date's partition. Nothing is visible to readers until `publish` returns.
#[async_trait]
pub trait Sink: Send {
    /// Adds rows to the run's staging area.
    async fn write(&mut self, batch: &ScoredBatch) -> Result<(), SinkError>;
    /// Makes every written row durable in staging; returns the rows staged (as the store counted
    /// them, where it counts).
    async fn finish(&mut self) -> Result<u64, SinkError>;
    /// Makes the staged rows the date's rows, replacing any previous ones, and `rejected` the
    /// date's quarantine (`crate::quarantine`) in the same step. Just before anything becomes
    /// visible (inside the swap transaction, or before the manifest PUT) it checks that `lock` is
    /// still held, so a run that lost its lock never publishes. On failure the staged rows are
    /// removed and the date keeps its previous rows and quarantine.
    async fn publish(
        self: Box<Self>,
        lock: &mut dyn OutputLock,
        rejected: &[RejectedRow],
    ) -> Result<(), SinkError>;
    /// Throws the staged rows away; the date's previous rows stay as they were.
    async fn abort(self: Box<Self>);
    /// Leaves the staged rows where they are, unpublished, for a sharded run's publishing shard
    /// (`crate::shard`): says where they are.
    async fn keep(self: Box<Self>) -> Result<Kept, SinkError>;
}

/// Where a finished sink left its staged rows (`Sink::keep`).
#[derive(Debug, Clone, Default)]
pub struct Kept {
    /// A table output: the staging table (in the result table's schema).
    pub staging: Option<String>,
    /// A Parquet output: its files, relative to the output URL.
    pub files: Vec<objects::ManifestFile>,
    /// The run ids the rows carry: the run's, and those of the runs it resumed.
    pub run_ids: Vec<Uuid>,
}

/// What a sink needs to know about the run besides where its rows go.
#[derive(Debug, Clone)]
pub struct SinkSpec {
    pub job: String,
    pub id_column: String,
    pub id_kind: IdKind,
    pub score_columns: Vec<OutputColumn>,
    pub date: NaiveDate,
    pub run_id: Uuid,
    /// PostgreSQL: concurrent COPY sessions.
    pub copy_streams: usize,
    /// Where table sinks commit their resume checkpoints (`crate::resume`); `None` stages without.
    pub checkpoints: Option<checkpoint::CheckpointTarget>,
    /// Rows a resumed run adopted: the staging table already exists (renamed to this run's) and
    /// holds them.
    pub adopted_rows: Option<u64>,
    /// A shard of a sharded run (`crate::shard`): its staging is kept for the publishing shard.
    pub sharded: bool,
    /// Which job and model write the rows (`job J, model M version V (sha256 …)`).
    pub produced_by: String,
    /// PostgreSQL: index the id column of each date's partition (`output.index`).
    pub index: bool,
    /// PostgreSQL: roles granted SELECT on the table and its `_latest` view (`output.readers`).
    pub readers: Vec<String>,
    /// Which of `score_columns` are input columns passed through rather than model outputs.
    pub passthrough: Vec<String>,
    /// How vector columns are stored (`output.vector_type`).
    pub vectors: crate::sink::VectorType,
}

impl SinkSpec {
    /// The layout of this run's partition of `table`.
    pub fn layout(&self, table: &TableName) -> OutputLayout {
        OutputLayout {
            table: table.clone(),
            id_column: self.id_column.clone(),
            id_kind: self.id_kind,
            score_columns: self.score_columns.clone(),
            date: self.date,
            run_id: self.run_id,
            produced_by: self.produced_by.clone(),
            index: self.index,
            readers: self.readers.clone(),
            passthrough: self.passthrough.clone(),
            vectors: self.vectors,
        }
    }
}
