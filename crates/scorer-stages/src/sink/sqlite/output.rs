//! A SQLite result table as an output kind, the embedded default: the run's sink stages in a
//! table of its own and replaces the date's rows in one transaction; retention deletes rows.

use async_trait::async_trait;
use chrono::NaiveDate;
use sqlx::sqlite::SqlitePool;
use uuid::Uuid;

use super::{SqlitePartitionWriter, drop_staging, retention, staging_name};
use crate::db::Database;
use crate::db::lock::OutputLock;
use crate::sink::parts::Part;
use crate::sink::{Output, ShardsToPublish, Sink, SinkError, SinkSpec};
use crate::sql_ident::TableName;

/// A result table in the run's SQLite file.
#[derive(Debug)]
pub struct SqliteTable {
    pool: SqlitePool,
    table: TableName,
    /// The database as messages name it (`sqlite <path>`).
    db: String,
}

impl SqliteTable {
    /// The table `table` in `db` (whose pool is `pool`).
    pub fn new(pool: SqlitePool, table: TableName, db: &Database) -> Self {
        Self {
            pool,
            table,
            db: db.target().to_string(),
        }
    }
}

impl std::fmt::Display for SqliteTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.table)
    }
}

#[async_trait]
impl Output for SqliteTable {
    fn staging_table(&self) -> Option<&TableName> {
        Some(&self.table)
    }

    fn refuses_shards(&self) -> Option<String> {
        Some(format!(
            "--shard: sharded runs write a PostgreSQL table (set DATABASE_URL) or Parquet \
             output (output.url); output {} is a table in the SQLite file {}, which one \
             process writes",
            self.table, self.db
        ))
    }

    fn result_lines(&self, date: NaiveDate, run_id: Uuid) -> Vec<String> {
        let path = self.db.trim_start_matches("sqlite ");
        let table = self.table.sqlite_name();
        let date = date.format("%Y-%m-%d");
        vec![
            format!("  results: table {table} in SQLite file {path} (run {run_id})"),
            format!(
                "  query:   sqlite3 {path} \"SELECT * FROM {table} WHERE ds = '{date}' LIMIT 10\""
            ),
        ]
    }

    async fn open(&self, spec: SinkSpec) -> Result<Box<dyn Sink>, SinkError> {
        Ok(Box::new(
            SqlitePartitionWriter::begin(
                self.pool.clone(),
                spec.layout(&self.table),
                spec.checkpoints.clone(),
                spec.adopted_rows.is_some(),
            )
            .await?,
        ))
    }

    async fn publish_parts(
        &self,
        _db: &Database,
        _spec: &SinkSpec,
        _lock: &mut dyn OutputLock,
        _shards: &ShardsToPublish<'_>,
    ) -> Result<(), SinkError> {
        Err(SinkError::Table {
            table: self.table.to_string(),
            message: "sharded runs write PostgreSQL tables or Parquet output, not SQLite".into(),
        })
    }

    /// A SQLite output has no shard parts (sharded runs refuse it).
    async fn remove_part(&self, _part: &Part) {}

    async fn drop_dates_before(
        &self,
        before: NaiveDate,
        _published: &[NaiveDate],
    ) -> Result<Vec<NaiveDate>, SinkError> {
        retention::delete_rows_before(&self.pool, &self.table, before).await
    }

    async fn remove_leftovers(
        &self,
        run_id: Uuid,
        _date: NaiveDate,
    ) -> Result<Vec<String>, SinkError> {
        let staging = staging_name(&self.table, run_id);
        let exists: bool = sqlx::query_scalar(
            "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = ?",
        )
        .bind(&staging)
        .fetch_one(&self.pool)
        .await
        .map_err(SinkError::db(&self.table, "looking for a staging table"))?;
        if !exists {
            return Ok(Vec::new());
        }
        drop_staging(&self.pool, &staging).await;
        Ok(vec![format!("staging table {staging}")])
    }
}
