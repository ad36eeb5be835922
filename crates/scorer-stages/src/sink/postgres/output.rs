//! A PostgreSQL result table as an output kind: the run's sink stages over COPY and swaps the
//! date's partition in; a sharded run's parts become the date's partitions in one transaction;
//! retention drops whole partitions.

use async_trait::async_trait;
use chrono::NaiveDate;
use sqlx::postgres::PgPool;
use uuid::Uuid;

use super::{PgPartitionWriter, drop_staging, retention, shards};
use crate::db::Database;
use crate::db::lock::OutputLock;
use crate::sink::parts::Part;
use crate::sink::{Output, ShardsToPublish, Sink, SinkError, SinkSpec};
use crate::sql_ident::TableName;

/// A result table in the run's PostgreSQL database.
#[derive(Debug)]
pub struct PgTable {
    pool: PgPool,
    table: TableName,
    /// The database as messages name it.
    db: String,
}

impl PgTable {
    /// The table `table` in `db` (whose pool is `pool`).
    pub fn new(pool: PgPool, table: TableName, db: &Database) -> Self {
        Self {
            pool,
            table,
            db: db.target().to_string(),
        }
    }
}

impl std::fmt::Display for PgTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.table)
    }
}

#[async_trait]
impl Output for PgTable {
    fn staging_table(&self) -> Option<&TableName> {
        Some(&self.table)
    }

    fn result_lines(&self, date: NaiveDate, run_id: Uuid) -> Vec<String> {
        let table = &self.table;
        let date = date.format("%Y-%m-%d");
        vec![
            format!("  results: table {table} in {} (run {run_id})", self.db),
            format!(
                "  query:   psql \"$DATABASE_URL\" -c \"SELECT * FROM {table} WHERE ds = DATE '{date}' LIMIT 10\""
            ),
        ]
    }

    async fn open(&self, spec: SinkSpec) -> Result<Box<dyn Sink>, SinkError> {
        Ok(Box::new(
            PgPartitionWriter::begin(
                self.pool.clone(),
                spec.layout(&self.table),
                spec.copy_streams,
                spec.checkpoints.clone(),
                spec.adopted_rows,
                spec.sharded,
            )
            .await?,
        ))
    }

    async fn publish_parts(
        &self,
        _db: &Database,
        spec: &SinkSpec,
        lock: &mut dyn OutputLock,
        shards: &ShardsToPublish<'_>,
    ) -> Result<(), SinkError> {
        let table = &self.table;
        let staged = shards
            .parts
            .iter()
            .map(|p| {
                p.body
                    .staging
                    .clone()
                    .map(|staging| shards::StagedTable {
                        staging,
                        run_ids: p.body.run_ids.clone(),
                    })
                    .ok_or_else(|| SinkError::Table {
                        table: table.to_string(),
                        message: format!("shard {} recorded no staging table", p.index),
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        shards::publish_parts(
            &self.pool,
            &spec.layout(table),
            &staged,
            lock,
            shards.rejected,
            shards.publication,
            shards.ids_checked,
        )
        .await
    }

    async fn remove_part(&self, part: &Part) {
        if let Some(staging) = &part.body.staging {
            drop_staging(&self.pool, &self.table, staging).await;
        }
    }

    async fn drop_dates_before(
        &self,
        before: NaiveDate,
        _published: &[NaiveDate],
    ) -> Result<Vec<NaiveDate>, SinkError> {
        retention::drop_partitions(&self.pool, &self.table, before).await
    }

    async fn remove_leftovers(
        &self,
        run_id: Uuid,
        _date: NaiveDate,
    ) -> Result<Vec<String>, SinkError> {
        let table = &self.table;
        let staging = table.staging_name(run_id);
        let qualified = table.pg_sibling(&staging);
        let exists: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
            .bind(&qualified)
            .fetch_one(&self.pool)
            .await
            .map_err(SinkError::db(table, "looking for a staging table"))?;
        if !exists {
            return Ok(Vec::new());
        }
        drop_staging(&self.pool, table, &staging).await;
        Ok(vec![format!("staging table {qualified}")])
    }
}
