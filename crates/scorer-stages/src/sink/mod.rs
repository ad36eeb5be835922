//! Sinks: where scored rows land. Each sink writes one (job, date) partition so that it replaces the
//! date's previous rows atomically: readers see the old rows or the new rows, never a mix, and a run
//! that fails leaves the old rows in place.
//!
//! Every sink goes through the same three steps, held by the run as a `Box<dyn Sink>`:
//! `write` (rows into the run's staging area), `finish` (every row durable in staging, counted),
//! `publish` (the swap or manifest commit that makes them the date's rows). Keeping them apart lets
//! the run check its counts and its lock between finishing and publishing, and lets a later
//! sharded run publish once after several writers have finished.

pub mod checkpoint;
pub mod columns;
pub mod delta;
pub mod leftovers;
pub mod objects;
pub mod parts;
pub mod postgres;
pub mod retention;
pub mod sqlite;

pub use columns::VectorType;

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
    #[error(transparent)]
    Delta(#[from] crate::delta::log::DeltaError),
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
            Self::Delta(e) => e.class(),
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

/// Where a run's rows go: a table in the run's database, or Parquet files in an object store.
#[derive(Debug, Clone)]
pub enum Destination {
    Table(TableName),
    /// The date's directory (`output.url` rendered for the run's date).
    Objects(crate::source::InputLocation),
    /// A Delta table partitioned by the date (`output.delta`).
    Delta(Box<crate::delta::DeltaTarget>),
}

impl std::fmt::Display for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Table(t) => write!(f, "{t}"),
            Self::Objects(l) => f.write_str(&l.url),
            Self::Delta(t) => f.write_str(t.shown()),
        }
    }
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

/// Opens the sink for `destination`: the one place that picks a sink kind. A table goes to the
/// run's database (PostgreSQL or SQLite); a URL to Parquet files and a manifest.
pub async fn open(
    destination: &Destination,
    db: &crate::db::Database,
    spec: SinkSpec,
) -> Result<Box<dyn Sink>, SinkError> {
    use crate::db::Database;
    Ok(match (destination, db) {
        (Destination::Delta(target), _) => {
            Box::new(crate::sink::delta::DeltaPartitionWriter::begin(target, spec).await?)
        }
        (Destination::Objects(location), _) => Box::new(
            objects::ObjectsPartitionWriter::begin(objects::ObjectsLayout {
                store: std::sync::Arc::clone(&location.store),
                prefix: location.prefix.clone(),
                url: location.url.clone(),
                spec: spec.clone(),
                files: objects::FileLayout::RunDirectory,
            })
            .await?,
        ),
        (Destination::Table(table), Database::Postgres { pool, .. }) => Box::new(
            postgres::PgPartitionWriter::begin(
                pool.clone(),
                spec.layout(table),
                spec.copy_streams,
                spec.checkpoints.clone(),
                spec.adopted_rows,
                spec.sharded,
            )
            .await?,
        ),
        (Destination::Table(table), Database::Sqlite { pool, .. }) => Box::new(
            sqlite::SqlitePartitionWriter::begin(
                pool.clone(),
                spec.layout(table),
                spec.checkpoints.clone(),
                spec.adopted_rows.is_some(),
            )
            .await?,
        ),
    })
}

/// What a sharded run's publishing shard makes the date's (`publish_shards`).
#[derive(Clone, Copy)]
pub struct ShardsToPublish<'a> {
    /// Every shard's staged part.
    pub parts: &'a [parts::Part],
    /// The date's quarantine: every shard's rejected rows.
    pub rejected: &'a [RejectedRow],
    /// The ledger statements recorded with the publication.
    pub publication: &'a dyn parts::PublishRecord,
    /// Whether the parts' ids are known disjoint already (their digests were checked).
    pub ids_checked: bool,
}

/// Publishes the parts a sharded run's shards staged as the date's rows (`crate::shard`), with
/// `rejected` as the date's quarantine and `publication` recorded: in the swap transaction for a
/// PostgreSQL table, right after the manifest's PUT for Parquet. `spec` is the publishing run's.
/// `ids_checked`: the parts' ids are known disjoint (from their digests); else the staged ids
/// are checked. On failure the parts stay staged, for a retry.
pub async fn publish_shards(
    destination: &Destination,
    db: &crate::db::Database,
    spec: &SinkSpec,
    lock: &mut dyn OutputLock,
    shards: &ShardsToPublish<'_>,
) -> Result<(), SinkError> {
    use crate::db::Database;
    let ShardsToPublish {
        parts,
        rejected,
        publication,
        ids_checked,
    } = *shards;
    match (destination, db) {
        (Destination::Table(table), Database::Postgres { pool, .. }) => {
            let layout = spec.layout(table);
            let staged = parts
                .iter()
                .map(|p| {
                    p.body
                        .staging
                        .clone()
                        .map(|staging| postgres::shards::StagedTable {
                            staging,
                            run_ids: p.body.run_ids.clone(),
                        })
                        .ok_or_else(|| SinkError::Table {
                            table: table.to_string(),
                            message: format!("shard {} recorded no staging table", p.index),
                        })
                })
                .collect::<Result<Vec<_>, _>>()?;
            postgres::shards::publish_parts(
                pool,
                &layout,
                &staged,
                lock,
                rejected,
                publication,
                ids_checked,
            )
            .await
        }
        (Destination::Table(table), Database::Sqlite { .. }) => Err(SinkError::Table {
            table: table.to_string(),
            message: "sharded runs write PostgreSQL tables or Parquet output, not SQLite".into(),
        }),
        (Destination::Delta(target), _) => {
            let files: Vec<_> = parts.iter().flat_map(|p| p.body.files.clone()).collect();
            crate::sink::delta::publish_parts(target, spec, lock, &files, rejected, ids_checked)
                .await?;
            publication
                .commit(db)
                .await
                .map_err(|e| SinkError::Objects {
                    url: target.shown().to_string(),
                    message: format!(
                        "the Delta commit is done, but recording the attempt's publication failed \
                         (a retried shard publishes it again, the same rows): {e}"
                    ),
                })
        }
        (Destination::Objects(location), _) => {
            let layout = objects::ObjectsLayout {
                store: std::sync::Arc::clone(&location.store),
                prefix: location.prefix.clone(),
                url: location.url.clone(),
                spec: spec.clone(),
                files: objects::FileLayout::RunDirectory,
            };
            let files = parts.iter().flat_map(|p| p.body.files.clone()).collect();
            let runs = parts.iter().flat_map(|p| p.body.run_ids.clone()).collect();
            objects::publish_parts(&layout, files, runs, lock, rejected, ids_checked).await?;
            publication
                .commit(db)
                .await
                .map_err(|e| SinkError::Objects {
                    url: location.url.clone(),
                    message: format!(
                        "the manifest is committed, but recording the attempt's publication failed \
                     (a retried shard publishes it again, the same rows): {e}"
                    ),
                })
        }
    }
}

/// Removes a superseded shard part's staged rows (best effort: failures are logged).
pub async fn remove_part(destination: &Destination, db: &crate::db::Database, part: &parts::Part) {
    use crate::db::Database;
    match (destination, db) {
        (Destination::Table(table), Database::Postgres { pool, .. }) => {
            if let Some(staging) = &part.body.staging {
                postgres::drop_staging(pool, table, staging).await;
            }
        }
        (Destination::Table(_), Database::Sqlite { .. }) => {}
        (Destination::Delta(target), _) => {
            objects::delete_relative(
                &target.location.store,
                &target.location.prefix,
                &part.body.files,
            )
            .await
        }
        (Destination::Objects(location), _) => {
            for run in &part.body.run_ids {
                objects::delete_dir(&location.store, &objects::run_dir(&location.prefix, *run))
                    .await;
            }
        }
    }
}
