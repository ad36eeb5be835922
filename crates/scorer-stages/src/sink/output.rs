//! One trait per output kind, and what a job's `[output]` section is to each kind.
//!
//! A job's output is first an [`OutputSection`]: its `[output]` keys, parsed and validated by the
//! kind's own folder (the job file registers the kinds, `crate::job::output`). For a run's date the
//! section resolves, with no I/O, to a [`Destination`] (it names the run's lock before any database
//! is open). Once the run's database is open, the destination opens the kind that writes it, an
//! [`Output`]: every operation a run, a sharded run's publishing shard, retention and the sweep do
//! on an output goes through it.
//!
//! Adding an output kind: a folder under `sink/` with its `Sink`, its `Output`, its
//! `OutputSection` and its `Destination`, and one line in `job/output.rs` (ARCHITECTURE.md,
//! "Adding an output kind").

use std::fmt::{Debug, Display};
use std::sync::Arc;

use async_trait::async_trait;
use chrono::NaiveDate;
use uuid::Uuid;

use super::parts::{Part, PublishRecord};
use super::{Sink, SinkError, SinkSpec, VectorType};
use crate::db::Database;
use crate::db::lock::OutputLock;
use crate::quarantine::RejectedRow;
use crate::source::store_metrics::StoreCounters;
use crate::sql_ident::TableName;

/// One output kind's keys of a job's `[output]` section, as its folder parsed them. The keys
/// every kind shares (row guards, column names, privacy, retention) are the job's
/// (`crate::job::output`).
pub trait OutputSection: Debug + Send + Sync {
    /// Every problem with the kind's own keys, each naming its key (`output.<key>: …`).
    fn problems(&self) -> Vec<String>;

    /// Where a run of `date` writes. No I/O.
    fn destination(&self, date: NaiveDate) -> Result<Box<dyn Destination>, String>;

    /// Where a dead run wrote, from the output the ledger recorded for it (`written`): the
    /// sweep removes its leftovers there. No I/O.
    fn written_destination(&self, written: &str) -> Result<Box<dyn Destination>, String>;

    /// What a table output's sink does beyond writing rows; the defaults for the other kinds.
    fn table_options(&self) -> TableOptions {
        TableOptions::default()
    }
}

/// The `[output]` keys that only a table output has, as the sink reads them.
#[derive(Debug, Clone, PartialEq)]
pub struct TableOptions {
    /// PostgreSQL: concurrent COPY sessions into the staging table.
    pub copy_streams: usize,
    /// PostgreSQL: index the id column of each date's partition.
    pub index: bool,
    /// PostgreSQL: roles granted SELECT on the table and its `_latest` view.
    pub readers: Vec<String>,
    /// How vector columns are stored.
    pub vectors: VectorType,
}

impl Default for TableOptions {
    fn default() -> Self {
        Self {
            copy_streams: 1,
            index: false,
            readers: Vec::new(),
            vectors: VectorType::RealArray,
        }
    }
}

/// Where a run's rows go, as the job file says for the run's date: a table in the run's
/// database, Parquet files in an object store, a Delta table. Its `Display` is the output's name
/// as the ledger and the date's lock name it.
pub trait Destination: Debug + Display + Send + Sync {
    /// Database sessions the output's sink opens beside the run's own (a table's COPY streams).
    fn database_sessions(&self) -> usize {
        0
    }

    /// The output kind that writes here, in the run's database `db`. Fails only for a kind this
    /// binary was built without.
    fn open(&self, db: &Database) -> Result<Arc<dyn Output>, SinkError>;
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
