//! What a sharded run's publishing shard hands the sink: the parts the shards staged, and the
//! record to commit with the publication. The sink owns these types, so it needs nothing from
//! `crate::shard`, which keeps the parts in the ledger's database and implements the record.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::db::{Database, DbError};
use crate::quarantine::RejectedRow;
use crate::sink::SinkError;
use crate::sink::objects::ManifestFile;

/// What a shard staged, as the publishing shard needs it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PartBody {
    /// The run ids its rows carry: the shard run's, and those of runs it resumed.
    pub run_ids: Vec<Uuid>,
    /// PostgreSQL: the staging table (in the result table's schema).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub staging: Option<String>,
    /// Parquet: its files, relative to the output URL.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<ManifestFile>,
    pub rows_read: u64,
    /// The rows it left out, for the date's quarantine.
    pub rejected: Vec<RejectedRow>,
    /// Its ids' digest (`crate::ids::IdSet::digest`): the publishing shard checks the shards'
    /// ids are disjoint from these, without reading the rows. `None` (string ids, say): it
    /// reads the staged ids instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ids: Option<String>,
}

/// One shard's staged part.
#[derive(Debug, Clone, PartialEq)]
pub struct Part {
    pub index: u32,
    pub run_id: Uuid,
    pub rows: u64,
    pub body: PartBody,
}

/// What the publishing shard records with the date's publication (the attempt marked published,
/// its runs settled): inside the PostgreSQL transaction that swaps the partition in, or in a
/// transaction of its own right after a manifest or Delta commit. `crate::shard` implements it.
#[async_trait::async_trait]
pub trait PublishRecord: Send + Sync {
    /// Runs the statements on `tx`, the PostgreSQL transaction of the partition swap.
    async fn in_pg(&self, tx: &mut sqlx::PgConnection) -> Result<(), sqlx::Error>;

    /// Runs the statements in a transaction of their own.
    async fn commit(&self, db: &Database) -> Result<(), DbError>;
}

/// Records `publication` in a transaction of its own right after an output's own commit (a
/// manifest PUT, a Delta commit: `committed` says which) made the shards' rows the date's. A
/// failure says so: the rows are published, and a retried shard publishes them again.
pub async fn record_after_commit(
    publication: &dyn PublishRecord,
    db: &Database,
    url: &str,
    committed: &str,
) -> Result<(), SinkError> {
    publication
        .commit(db)
        .await
        .map_err(|e| SinkError::Objects {
            url: url.to_string(),
            message: format!(
                "{committed}, but recording the attempt's publication failed (a retried shard \
                 publishes it again, the same rows): {e}"
            ),
        })
}
