//! SQLite sink, the embedded default. Rows go into a staging table of the run's own
//! (`<table>__stg_<run>`), each batch committed as it comes, so a long run does not hold SQLite's
//! write lock and other jobs on the same file keep writing. Publishing is one transaction that
//! deletes the date's rows, copies the staged rows in and drops the staging table, so readers
//! (WAL mode) see the old rows until the commit and the new rows after it. A killed run leaves its
//! staging table behind for the sweep (`scorer gc`).

pub mod output;
pub mod quarantine;
mod retention;

use arrow::array::{Array, Int64Array, StringArray};
use async_trait::async_trait;
use sqlx::QueryBuilder;
use sqlx::sqlite::{Sqlite, SqlitePool};

use super::columns::{ColumnValues, SqliteValue};
use super::{DATE_COLUMN, OutputLayout, RUN_ID_COLUMN, ScoredBatch, Sink, SinkError};
use crate::db::lock::OutputLock;
use crate::quarantine::RejectedRow;
use crate::sink::checkpoint::{Checkpoint, CheckpointTarget};
use crate::sink::columns::SqlColumnType;
use crate::source::IdKind;
use crate::sql_ident::{TableName, quote};

/// SQLite allows 32766 bound parameters per statement; stay well under it.
const MAX_PARAMS: usize = 30_000;

enum Ids<'a> {
    Int(&'a Int64Array),
    Text(&'a StringArray),
}

/// Stages one date's rows in a table of the run's own and swaps them in on publish.
pub struct SqlitePartitionWriter {
    pool: SqlitePool,
    layout: OutputLayout,
    /// The run's staging table, `<table>__stg_<run>`.
    staging: String,
    date: String,
    run_id: String,
    /// Where each batch's record goes, in the batch's transaction (`crate::resume`).
    checkpoints: Option<CheckpointTarget>,
}

impl SqlitePartitionWriter {
    /// Creates the result table if needed, checks its columns and creates the staging table (a
    /// resumed run's is `adopted`: it exists already, renamed to this run's). With `checkpoints`,
    /// each batch commits with the record of the input rows it holds.
    pub async fn begin(
        pool: SqlitePool,
        layout: OutputLayout,
        checkpoints: Option<CheckpointTarget>,
        adopted: bool,
    ) -> Result<Self, SinkError> {
        let t = &layout.table;
        if !layout.readers.is_empty() {
            return Err(SinkError::Mismatch {
                table: t.sqlite_name(),
                message: "output.readers grants PostgreSQL roles; SQLite has none (whoever can \
                          read the file reads every table): remove it or set DATABASE_URL"
                    .into(),
            });
        }
        if layout.vectors == crate::sink::VectorType::Pgvector {
            return Err(SinkError::Mismatch {
                table: t.sqlite_name(),
                message: "output.vector_type = \"pgvector\" is for PostgreSQL, and this run \
                          writes to SQLite (set DATABASE_URL, or vector_type = \"real[]\")"
                    .into(),
            });
        }
        let name = quote(&t.sqlite_name());
        let id_type = match layout.id_kind {
            IdKind::Int => "INTEGER",
            IdKind::Text => "TEXT",
        };
        let mut cols = vec![
            format!("{} {id_type} NOT NULL", quote(&layout.id_column)),
            format!("{} TEXT NOT NULL", quote(DATE_COLUMN)),
        ];
        let blob = layout.vectors == crate::sink::VectorType::Blob;
        cols.extend(layout.score_columns.iter().map(|c| {
            let ty = match c.ty {
                crate::contract::OutputType::Float32Vector(_) if blob => "BLOB",
                other => other.sqlite_type(),
            };
            format!("{} {ty}", quote(&c.name))
        }));
        cols.push(format!("{} TEXT NOT NULL", quote(RUN_ID_COLUMN)));
        // `<table>_latest`: the rows of the newest date a run of this output published.
        let ddl = format!(
            "CREATE TABLE IF NOT EXISTS {name} ({});\nCREATE INDEX IF NOT EXISTS {} ON {name} ({});\n\
             CREATE VIEW IF NOT EXISTS {} AS SELECT * FROM {name} WHERE {ds} = (\
             SELECT max(logical_date) FROM scorer_runs WHERE output_table = {} AND status = 'succeeded')",
            cols.join(", "),
            quote(&format!("{}__ds", t.sqlite_name())),
            quote(DATE_COLUMN),
            quote(&format!("{}_latest", t.sqlite_name())),
            crate::sql_ident::literal(&t.to_string()),
            ds = quote(DATE_COLUMN),
        );
        sqlx::raw_sql(sqlx::AssertSqlSafe(ddl))
            .execute(&pool)
            .await
            .map_err(SinkError::db(t, "creating the result table"))?;
        check_columns(&pool, &layout).await?;
        quarantine::ensure(&pool, t).await?;
        let staging = staging_name(t, layout.run_id);
        if !adopted {
            let create = format!("CREATE TABLE {} ({})", quote(&staging), cols.join(", "));
            sqlx::raw_sql(sqlx::AssertSqlSafe(create))
                .execute(&pool)
                .await
                .map_err(SinkError::db(t, "creating the staging table"))?;
        }
        Ok(Self {
            checkpoints,
            pool,
            date: layout.date.format("%Y-%m-%d").to_string(),
            run_id: layout.run_id.to_string(),
            layout,
            staging,
        })
    }
}

/// The staging table of a run writing `table`.
pub fn staging_name(table: &TableName, run_id: uuid::Uuid) -> String {
    let t = TableName {
        schema: None,
        table: table.sqlite_name(),
    };
    t.staging_name(run_id)
}

/// Drops a run's staging table if it is there (best effort: a failure is logged).
pub async fn drop_staging(pool: &SqlitePool, staging: &str) {
    let sql = format!("DROP TABLE IF EXISTS {}", quote(staging));
    if let Err(e) = sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(pool).await {
        tracing::warn!(error = %e, staging, "could not drop the staging table; drop it by hand");
    }
}
/// Rejects an existing table whose columns differ from what this job writes.
async fn check_columns(pool: &SqlitePool, layout: &OutputLayout) -> Result<(), SinkError> {
    let t = &layout.table;
    let actual: Vec<String> =
        sqlx::query_scalar("SELECT name FROM pragma_table_info(?) ORDER BY cid")
            .bind(t.sqlite_name())
            .fetch_all(pool)
            .await
            .map_err(SinkError::db(t, "reading the result table's columns"))?;
    let want = layout.columns();
    if actual != want {
        return Err(SinkError::Mismatch {
            table: t.sqlite_name(),
            message: format!(
                "exists with columns ({}), but this job writes ({}); rename or drop the old table",
                actual.join(", "),
                want.join(", ")
            ),
        });
    }
    Ok(())
}

#[async_trait]
impl Sink for SqlitePartitionWriter {
    async fn write(&mut self, batch: &ScoredBatch) -> Result<(), SinkError> {
        let t = &self.layout.table;
        let per_row = 3 + self.layout.score_columns.len();
        let chunk = (MAX_PARAMS / per_row).max(1);
        let ids = match (
            batch.ids.as_any().downcast_ref::<Int64Array>(),
            batch.ids.as_any().downcast_ref::<StringArray>(),
        ) {
            (Some(ints), _) => Ids::Int(ints),
            (None, Some(strings)) => Ids::Text(strings),
            (None, None) => {
                return Err(SinkError::Table {
                    table: t.sqlite_name(),
                    message: format!("ids must be Int64 or Utf8, got {}", batch.ids.data_type()),
                });
            }
        };
        let values = batch
            .outputs
            .iter()
            .zip(&self.layout.score_columns)
            .enumerate()
            .map(|(i, (array, c))| {
                ColumnValues::of(i, array, c.ty, batch.rows)
                    .map(|v| v.stored_as(self.layout.vectors))
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| SinkError::Table {
                table: t.sqlite_name(),
                message: e.to_string(),
            })?;
        let columns: Vec<String> = self.layout.columns().iter().map(|c| quote(c)).collect();
        let head = format!(
            "INSERT INTO {} ({}) ",
            quote(&self.staging),
            columns.join(", ")
        );
        // One transaction per batch: its rows and its resume record commit together.
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(SinkError::db(t, "starting a staging transaction"))?;
        let mut start = 0;
        while start < batch.rows {
            let end = (start + chunk).min(batch.rows);
            let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(head.clone());
            qb.push_values(start..end, |mut row, r| {
                match ids {
                    Ids::Int(ids) => row.push_bind(ids.value(r)),
                    Ids::Text(ids) => row.push_bind(ids.value(r).to_string()),
                };
                row.push_bind(self.date.clone());
                for column in &values {
                    match column.sqlite_value(r) {
                        SqliteValue::Null => row.push_bind(None::<i64>),
                        SqliteValue::Blob(v) => row.push_bind(v),
                        SqliteValue::Real(v) => row.push_bind(v),
                        SqliteValue::Integer(v) => row.push_bind(v),
                        SqliteValue::Text(v) => row.push_bind(v),
                    };
                }
                row.push_bind(self.run_id.clone());
            });
            qb.build()
                .execute(&mut *tx)
                .await
                .map_err(SinkError::db(t, "inserting rows into the staging table"))?;
            start = end;
        }
        if let (Some(target), Some(origin)) = (&self.checkpoints, &batch.origin) {
            let mut record = Checkpoint::default();
            record.add(origin, batch.rows);
            target
                .save_sqlite(&mut tx, &record)
                .await
                .map_err(SinkError::db(t, "recording a resume checkpoint"))?;
        }
        tx.commit()
            .await
            .map_err(SinkError::db(t, "committing staged rows"))
    }

    async fn finish(&mut self) -> Result<u64, SinkError> {
        // Every batch above committed on its own; count what the staging table holds (a resumed
        // run's adopted rows included).
        let sql = format!("SELECT count(*) FROM {}", quote(&self.staging));
        let rows: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .fetch_one(&self.pool)
            .await
            .map_err(SinkError::db(
                &self.layout.table,
                "counting the staged rows",
            ))?;
        Ok(u64::try_from(rows).unwrap_or(0))
    }

    async fn publish(
        self: Box<Self>,
        lock: &mut dyn OutputLock,
        rejected: &[RejectedRow],
    ) -> Result<(), SinkError> {
        match self.swap_in(lock, rejected).await {
            Ok(()) => Ok(()),
            Err(e) => {
                self.abort().await;
                Err(e)
            }
        }
    }

    async fn abort(self: Box<Self>) {
        drop_staging(&self.pool, &self.staging).await;
    }

    /// SQLite tables are written by one process: a sharded run is refused before it starts, so
    /// this only says why and removes the staging.
    async fn keep(self: Box<Self>) -> Result<super::Kept, SinkError> {
        let table = self.layout.table.to_string();
        self.abort().await;
        Err(SinkError::Table {
            table,
            message: "sharded runs write PostgreSQL tables or Parquet output, not SQLite".into(),
        })
    }
}

impl SqlitePartitionWriter {
    /// One transaction: delete the date's rows, copy the staged rows in, drop the staging table,
    /// replace the date's quarantine. Readers (WAL mode) see the old rows until the commit and the
    /// new rows after it.
    async fn swap_in(
        &self,
        lock: &mut dyn OutputLock,
        rejected: &[RejectedRow],
    ) -> Result<(), SinkError> {
        let t = &self.layout.table;
        let name = quote(&t.sqlite_name());
        let staging = quote(&self.staging);
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(SinkError::db(t, "starting the swap"))?;
        lock.verify().await?;
        let delete = format!("DELETE FROM {name} WHERE {} = ?", quote(DATE_COLUMN));
        sqlx::query(sqlx::AssertSqlSafe(delete))
            .bind(&self.date)
            .execute(&mut *tx)
            .await
            .map_err(SinkError::db(t, "deleting the date's previous rows"))?;
        let copy = format!("INSERT INTO {name} SELECT * FROM {staging};\nDROP TABLE {staging};");
        sqlx::raw_sql(sqlx::AssertSqlSafe(copy))
            .execute(&mut *tx)
            .await
            .map_err(SinkError::db(t, "moving the staged rows in"))?;
        quarantine::replace(&mut tx, t, &self.date, &self.run_id, rejected).await?;
        tx.commit().await.map_err(SinkError::db(t, "committing"))
    }
}
