//! One trait per output kind, and the one place that picks the kind.
//!
//! A job's output is first a [`Destination`]: what the job file names, resolved for the date with
//! no I/O (it names the run's lock before any database is open). Once the run's database is open,
//! [`output`] turns it into the kind that writes it, an [`Output`]: every operation a run, a
//! sharded run's publishing shard, retention and the sweep do on an output goes through it.
//!
//! Adding an output kind: a folder under `sink/` with its `Sink` and its `Output`, a variant of
//! [`Destination`] and its arm in [`output`] (ARCHITECTURE.md, "Adding an output kind").

use std::fmt::{Debug, Display};
use std::sync::Arc;

use async_trait::async_trait;
use chrono::NaiveDate;
use uuid::Uuid;

use super::parts::{Part, PublishRecord};
use super::{Sink, SinkError, SinkSpec, objects, postgres, sqlite};
use crate::db::Database;
use crate::db::lock::OutputLock;
use crate::quarantine::RejectedRow;
use crate::source::storage::StorageOptions;
use crate::source::store_metrics::StoreCounters;
use crate::sql_ident::TableName;

/// Where a run's rows go, as the job file says for the run's date: a table in the run's
/// database, Parquet files in an object store, or a Delta table.
#[derive(Debug, Clone)]
pub enum Destination {
    Table(TableName),
    /// The date's directory (`output.url` rendered for the run's date).
    Objects(Box<ObjectsTarget>),
    /// A Delta table partitioned by the date (`output.delta`).
    Delta(Box<crate::delta::DeltaTarget>),
}

/// A Parquet output: the date's directory, and the job's `output.url` template and storage
/// options, which retention renders for the older dates it drops.
#[derive(Debug, Clone)]
pub struct ObjectsTarget {
    pub location: crate::source::InputLocation,
    pub url_template: String,
    pub storage: StorageOptions,
}

impl Destination {
    /// Whether the rows are staged in a table of the run's database (and so written over COPY
    /// sessions, checkpointed and resumable): known before the database is open.
    pub fn stages_in_table(&self) -> bool {
        matches!(self, Self::Table(_))
    }
}

impl Display for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Table(t) => write!(f, "{t}"),
            Self::Objects(o) => f.write_str(&o.location.url),
            Self::Delta(t) => f.write_str(t.shown()),
        }
    }
}

/// The output kind that writes `destination`, in the run's database `db`: the one place that
/// picks a kind. A table goes to the run's database (PostgreSQL or SQLite). Fails only for a
/// kind this binary was built without.
pub fn output(destination: &Destination, db: &Database) -> Result<Arc<dyn Output>, SinkError> {
    Ok(match (destination, db) {
        (Destination::Table(table), Database::Postgres { pool, .. }) => Arc::new(
            postgres::output::PgTable::new(pool.clone(), table.clone(), db),
        ),
        (Destination::Table(table), Database::Sqlite { pool, .. }) => Arc::new(
            sqlite::output::SqliteTable::new(pool.clone(), table.clone(), db),
        ),
        (Destination::Objects(target), _) => {
            Arc::new(objects::output::ParquetFiles::new((**target).clone(), db))
        }
        #[cfg(feature = "delta")]
        (Destination::Delta(target), _) => Arc::new(super::delta::output::DeltaOutput::new(
            (**target).clone(),
            db,
        )),
        #[cfg(not(feature = "delta"))]
        (Destination::Delta(target), _) => {
            return Err(SinkError::NotBuilt {
                output: target.shown().to_string(),
                message: crate::error::not_built("a Delta table output (output.delta)", "delta"),
            });
        }
    })
}

/// What a sharded run's publishing shard makes the date's ([`Output::publish_parts`]).
#[derive(Clone, Copy)]
pub struct ShardsToPublish<'a> {
    /// Every shard's staged part.
    pub parts: &'a [Part],
    /// The date's quarantine: every shard's rejected rows.
    pub rejected: &'a [RejectedRow],
    /// The ledger statements recorded with the publication.
    pub publication: &'a dyn PublishRecord,
    /// Whether the parts' ids are known disjoint already (their digests were checked).
    pub ids_checked: bool,
}

/// One kind of output. Its `Display` is the output's name as the ledger and the date's lock
/// name it.
#[async_trait]
pub trait Output: Debug + Display + Send + Sync {
    /// The result table, for outputs that stage their rows in one: those are written over COPY
    /// sessions, commit resume checkpoints and can be resumed. `None` for files.
    fn staging_table(&self) -> Option<&TableName> {
        None
    }

    /// Why a sharded run cannot write this output, if it cannot (its shards' parts must meet in
    /// one store that several processes write).
    fn refuses_shards(&self) -> Option<String> {
        None
    }

    /// The request counters of the output's object store, for the ledger.
    fn store_counters(&self) -> Option<Arc<StoreCounters>> {
        None
    }

    /// Whether [`Output::drop_dates_before`] needs the dates the job's runs published: a store
    /// has no catalogue of its own.
    fn needs_published_dates(&self) -> bool {
        false
    }

    /// What `scorer run` prints after a run published date `date`: where the rows are, and how
    /// to look at them.
    fn result_lines(&self, date: NaiveDate, run_id: Uuid) -> Vec<String>;

    /// Opens the run's sink: rows go to staging that nothing reads until `Sink::publish`.
    async fn open(&self, spec: SinkSpec) -> Result<Box<dyn Sink>, SinkError>;

    /// Publishes the parts a sharded run's shards staged as the date's rows, with
    /// `shards.rejected` as the date's quarantine and `shards.publication` recorded: in the same
    /// transaction where the output has one, right after its commit otherwise. `spec` is the
    /// publishing run's. `shards.ids_checked`: the parts' ids are known disjoint (from their
    /// digests); else the staged ids are checked. On failure the parts stay staged, for a retry.
    async fn publish_parts(
        &self,
        db: &Database,
        spec: &SinkSpec,
        lock: &mut dyn OutputLock,
        shards: &ShardsToPublish<'_>,
    ) -> Result<(), SinkError>;

    /// Removes a superseded shard part's staged rows (best effort: failures are logged).
    async fn remove_part(&self, part: &Part);

    /// `output.retention_days`: drops every date before `before` (for files, of those in
    /// `published`); returns the dates dropped, oldest first.
    async fn drop_dates_before(
        &self,
        before: NaiveDate,
        published: &[NaiveDate],
    ) -> Result<Vec<NaiveDate>, SinkError>;

    /// Removes what the dead run `run_id` of `date` left (a staging table, run files); returns
    /// a line per thing removed. Never called while another run holds the output's lock.
    async fn remove_leftovers(
        &self,
        run_id: Uuid,
        date: NaiveDate,
    ) -> Result<Vec<String>, SinkError>;
}
