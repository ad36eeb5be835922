//! PostgreSQL sink: rows go through binary COPY into a staging table named after the run; one short
//! transaction then swaps it in as the date's partition of a table partitioned by `ds`. A CHECK
//! constraint on the staging table lets ATTACH PARTITION skip its validation scan.

pub mod analyst;
mod copy_binary;
mod copy_streams;
pub mod ddl;
pub mod output;
pub mod quarantine;
pub(crate) mod retention;
pub mod shards;

use std::sync::Arc;

use async_trait::async_trait;
use sqlx::Row;
use sqlx::postgres::PgPool;

pub use copy_binary::CopyEncoder;
use copy_streams::CopyStreams;

use super::{OutputLayout, ScoredBatch, Sink, SinkError};
use crate::buffer_pool::{BufferPool, PooledBuffer};
use crate::db::lock::OutputLock;
use crate::quarantine::RejectedRow;
use crate::sink::VectorType;
use crate::sink::checkpoint::{Checkpoint, CheckpointTarget};
use crate::sql_ident::{TableName, quote};

/// COPY data is handed to a session in chunks of at least this many bytes (whole rows).
const SEND_THRESHOLD: usize = 1 << 20;

/// Stages one date's rows and swaps them in on commit.
pub struct PgPartitionWriter {
    pool: PgPool,
    layout: OutputLayout,
    staging: String,
    copy: Option<CopyStreams>,
    encoder: CopyEncoder,
    /// Chunks being encoded, queued for a session, or being sent; each comes back when sent.
    buffers: Arc<BufferPool>,
    buf: PooledBuffer,
    /// The input rows the batches in `buf` came from (sent with it, for resume checkpoints).
    record: Checkpoint,
    /// Rows of a resumed run's adopted staging.
    adopted_rows: u64,
}

impl PgPartitionWriter {
    /// Creates the result table if needed, checks its columns, creates the staging table (or, for
    /// a resumed run, takes the adopted one, already renamed to this run's, holding
    /// `adopted_rows`) and opens `streams` COPY sessions into it, committing checkpoints to
    /// `checkpoints` when given. A shard's staging (`sharded`) holds only its run's rows.
    pub async fn begin(
        pool: PgPool,
        layout: OutputLayout,
        streams: usize,
        checkpoints: Option<CheckpointTarget>,
        adopted_rows: Option<u64>,
        sharded: bool,
    ) -> Result<Self, SinkError> {
        let t = &layout.table;
        match layout.vectors {
            VectorType::Pgvector => ddl::require_pgvector(&pool, &layout).await?,
            VectorType::Blob => {
                return Err(SinkError::Mismatch {
                    table: t.to_string(),
                    message: "output.vector_type = \"blob\" is for SQLite; in PostgreSQL use \
                              \"real[]\" or \"pgvector\""
                        .into(),
                });
            }
            VectorType::RealArray => {}
        }
        ddl::ensure_table(&pool, &layout).await?;
        quarantine::ensure(&pool, t).await?;
        analyst::ensure_latest_view(&pool, &layout).await?;
        analyst::grant_readers(&pool, &layout).await?;
        let staging = t.staging_name(layout.run_id);
        let prepare = match adopted_rows {
            None => ddl::create_staging(&layout, &staging, sharded),
            // Rows this run adds carry its own id; the adopted ones keep the id of the run that
            // staged them (the ledger's `resumed_from` links the two).
            Some(_) => ddl::set_staging_run(&layout, &staging),
        };
        sqlx::raw_sql(sqlx::AssertSqlSafe(prepare))
            .execute(&pool)
            .await
            .map_err(SinkError::db(t, "preparing the staging table"))?;
        let cols: Vec<String> = std::iter::once(&layout.id_column)
            .chain(layout.score_columns.iter().map(|c| &c.name))
            .map(|c| quote(c))
            .collect();
        let copy_sql = format!(
            "COPY {} ({}) FROM STDIN (FORMAT binary)",
            t.pg_sibling(&staging),
            cols.join(", ")
        );
        let copy = match CopyStreams::open(&pool, t, &copy_sql, streams, checkpoints).await {
            Ok(c) => c,
            Err(e) => {
                drop_staging(&pool, &layout.table, &staging).await;
                return Err(e);
            }
        };
        // A chunk passes the threshold by at most one scored batch; twice the threshold holds that
        // for CPU-sized slices (~0.7 MB for W1). A larger chunk grows its buffer, which then
        // serves later chunks as well.
        let buffers = BufferPool::new(
            SEND_THRESHOLD * 2,
            streams.max(1) * (copy_streams::QUEUE_PER_STREAM + 1) + 1,
        );
        let encoder = CopyEncoder::new(layout.score_columns.clone(), layout.vectors);
        Ok(Self {
            pool,
            layout,
            staging,
            copy: Some(copy),
            encoder,
            buf: buffers.take_empty(),
            buffers,
            record: Checkpoint::default(),
            adopted_rows: adopted_rows.unwrap_or(0),
        })
    }

    async fn flush(&mut self) -> Result<(), SinkError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let rows = std::mem::replace(&mut self.buf, self.buffers.take_empty()).freeze();
        let record = std::mem::take(&mut self.record);
        if let Some(copy) = self.copy.as_mut() {
            copy.send(rows, record).await?;
        }
        Ok(())
    }
}

#[async_trait]
impl Sink for PgPartitionWriter {
    async fn write(&mut self, batch: &ScoredBatch) -> Result<(), SinkError> {
        let encoder = &self.encoder;
        self.buf
            .extend_with(|buf| encoder.encode(batch, buf))
            .map_err(|e| SinkError::Table {
                table: self.layout.table.to_string(),
                message: e.to_string(),
            })?;
        if let Some(origin) = &batch.origin {
            self.record.add(origin, batch.rows);
        }
        if self.buf.len() >= SEND_THRESHOLD {
            self.flush().await?;
        }
        Ok(())
    }

    async fn finish(&mut self) -> Result<u64, SinkError> {
        self.flush().await?;
        let copy = self.copy.take().ok_or_else(|| SinkError::Table {
            table: self.layout.table.to_string(),
            message: "COPY stream already closed".into(),
        })?;
        let staged = copy.finish().await? + self.adopted_rows;
        if self.layout.index {
            sqlx::raw_sql(sqlx::AssertSqlSafe(analyst::id_index(
                &self.layout,
                &self.staging,
            )))
            .execute(&self.pool)
            .await
            .map_err(SinkError::db(&self.layout.table, "indexing the staged ids"))?;
        }
        Ok(staged)
    }

    async fn publish(
        self: Box<Self>,
        lock: &mut dyn OutputLock,
        rejected: &[RejectedRow],
    ) -> Result<(), SinkError> {
        match swap_in(&self.pool, &self.layout, &self.staging, lock, rejected).await {
            Ok(()) => Ok(()),
            Err(e) => {
                self.abort().await;
                Err(e)
            }
        }
    }

    async fn keep(self: Box<Self>) -> Result<super::Kept, SinkError> {
        let t = &self.layout.table;
        // A resumed run's staging also holds rows of the runs it adopted, under their ids.
        let run_ids = if self.adopted_rows > 0 {
            let sql = format!(
                "SELECT DISTINCT {}::text FROM {}",
                quote(super::RUN_ID_COLUMN),
                t.pg_sibling(&self.staging)
            );
            let ids: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                .fetch_all(&self.pool)
                .await
                .map_err(SinkError::db(t, "reading the staged rows' run ids"))?;
            ids.iter()
                .map(|id| {
                    id.parse().map_err(|_| SinkError::Table {
                        table: t.to_string(),
                        message: format!("staged run id {id:?} is not a uuid"),
                    })
                })
                .collect::<Result<Vec<_>, _>>()?
        } else {
            vec![self.layout.run_id]
        };
        Ok(super::Kept {
            staging: Some(self.staging.clone()),
            files: Vec::new(),
            run_ids,
        })
    }

    async fn abort(mut self: Box<Self>) {
        if let Some(mut copy) = self.copy.take() {
            copy.abort().await;
        }
        drop_staging(&self.pool, &self.layout.table, &self.staging).await;
    }
}

/// Inside `tx`: replaces the date's quarantine with `rejected` (before the result table is
/// locked, so its readers do not wait for that), locks the result table, checks `lock` is still
/// held, detaches and drops the date's old partition (if any), and attaches `new_table` (a
/// sibling of the result table) as the date's partition under the partition's name.
pub(super) async fn swap_partition(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    layout: &OutputLayout,
    new_table: &str,
    lock: &mut dyn OutputLock,
    rejected: &[RejectedRow],
) -> Result<(), SinkError> {
    let t = &layout.table;
    quarantine::replace(tx, t, layout.date, layout.run_id, rejected).await?;
    sqlx::query(include_str!(
        "../../../../../sql/postgres/queries/set_swap_timeouts.sql"
    ))
    .execute(&mut **tx)
    .await
    .map_err(SinkError::db(t, "setting lock timeout"))?;
    let parent = t.pg_quoted();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "LOCK TABLE {parent} IN ACCESS EXCLUSIVE MODE"
    )))
    .execute(&mut **tx)
    .await
    .map_err(SinkError::db(t, "locking the result table for the swap"))?;
    lock.verify().await?;
    let bound = ddl::partition_bound(layout.date);
    let existing: Option<String> = sqlx::query(include_str!(
        "../../../../../sql/postgres/queries/find_partition.sql"
    ))
    .bind(t.pg_quoted())
    .bind(&bound)
    .fetch_optional(&mut **tx)
    .await
    .map_err(SinkError::db(t, "looking up the date's partition"))?
    .map(|row| row.get::<String, _>(0));
    let mut statements = analyst::comments(layout, &layout.produced_by);
    if let Some(old) = &existing {
        let old = t.pg_sibling(old);
        statements.push(format!("ALTER TABLE {parent} DETACH PARTITION {old}"));
        statements.push(format!("DROP TABLE {old}"));
    }
    let new = t.pg_sibling(new_table);
    statements.push(format!(
        "ALTER TABLE {parent} ATTACH PARTITION {new} {bound}"
    ));
    statements.push(format!(
        "ALTER TABLE {new} RENAME TO {}",
        quote(&t.partition_name(layout.date))
    ));
    for s in statements {
        sqlx::raw_sql(sqlx::AssertSqlSafe(s))
            .execute(&mut **tx)
            .await
            .map_err(SinkError::db(t, "swapping in the new partition"))?;
    }
    Ok(())
}

/// Drops a run's staging table if it is there (best effort: a failure is logged).
pub async fn drop_staging(pool: &PgPool, table: &TableName, staging: &str) {
    let sql = format!("DROP TABLE IF EXISTS {}", table.pg_sibling(staging));
    if let Err(e) = sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(pool).await {
        tracing::warn!(error = %e, staging, "could not drop the staging table; drop it by hand");
    }
}

/// One transaction: replace the date's quarantine, lock the result table, check the run still
/// holds its output lock, detach and drop the date's old partition (if any), attach the staging
/// table in its place and give it the partition's name. Readers block for the few milliseconds
/// this takes and then see the new rows.
/// The lock is checked after the table lock is granted, so a run that lost its output lock while
/// it waited for readers does not publish.
async fn swap_in(
    pool: &PgPool,
    layout: &OutputLayout,
    staging: &str,
    lock: &mut dyn OutputLock,
    rejected: &[RejectedRow],
) -> Result<(), SinkError> {
    let t = &layout.table;
    let mut tx = pool
        .begin()
        .await
        .map_err(SinkError::db(t, "starting the partition swap"))?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(ddl::drop_staging_defaults(
        layout, staging,
    )))
    .execute(&mut *tx)
    .await
    .map_err(SinkError::db(t, "preparing the staging table for the swap"))?;
    swap_partition(&mut tx, layout, staging, lock, rejected).await?;
    tx.commit()
        .await
        .map_err(SinkError::db(t, "committing the partition swap"))
}
