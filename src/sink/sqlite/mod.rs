//! SQLite sink, the embedded default: one transaction deletes the date's rows and inserts the new
//! ones, so readers (WAL mode) see the old rows until the commit and the new rows after it.

use arrow::array::{Array, Int64Array, StringArray};
use sqlx::sqlite::{Sqlite, SqlitePool};
use sqlx::{QueryBuilder, Transaction};

use super::{DATE_COLUMN, OutputLayout, PartitionWriter, RUN_ID_COLUMN, ScoredBatch, SinkError};
use crate::source::IdKind;
use crate::sql_ident::quote;

/// SQLite allows 32766 bound parameters per statement; stay well under it.
const MAX_PARAMS: usize = 30_000;

enum Ids<'a> {
    Int(&'a Int64Array),
    Text(&'a StringArray),
}

/// Replaces one date's rows inside a single transaction.
pub struct SqlitePartitionWriter {
    tx: Transaction<'static, Sqlite>,
    layout: OutputLayout,
    rows: u64,
    date: String,
    run_id: String,
}

impl SqlitePartitionWriter {
    /// Creates the table if needed, then opens the transaction and deletes the date's old rows in it.
    pub async fn begin(pool: SqlitePool, layout: OutputLayout) -> Result<Self, SinkError> {
        let t = &layout.table;
        let name = quote(&t.sqlite_name());
        let id_type = match layout.id_kind {
            IdKind::Int => "INTEGER",
            IdKind::Text => "TEXT",
        };
        let mut cols = vec![
            format!("{} {id_type} NOT NULL", quote(&layout.id_column)),
            format!("{} TEXT NOT NULL", quote(DATE_COLUMN)),
        ];
        cols.extend(
            layout
                .score_columns
                .iter()
                .map(|c| format!("{} REAL", quote(c))),
        );
        cols.push(format!("{} TEXT NOT NULL", quote(RUN_ID_COLUMN)));
        let ddl = format!(
            "CREATE TABLE IF NOT EXISTS {name} ({});\nCREATE INDEX IF NOT EXISTS {} ON {name} ({});",
            cols.join(", "),
            quote(&format!("{}__ds", t.sqlite_name())),
            quote(DATE_COLUMN)
        );
        sqlx::raw_sql(sqlx::AssertSqlSafe(ddl))
            .execute(&pool)
            .await
            .map_err(SinkError::db(t, "creating the result table"))?;
        check_columns(&pool, &layout).await?;
        let mut tx = pool
            .begin()
            .await
            .map_err(SinkError::db(t, "starting the transaction"))?;
        let date = layout.date.format("%Y-%m-%d").to_string();
        let delete = format!("DELETE FROM {name} WHERE {} = ?", quote(DATE_COLUMN));
        sqlx::query(sqlx::AssertSqlSafe(delete))
            .bind(&date)
            .execute(&mut *tx)
            .await
            .map_err(SinkError::db(t, "deleting the date's previous rows"))?;
        let run_id = layout.run_id.to_string();
        Ok(Self {
            tx,
            layout,
            rows: 0,
            date,
            run_id,
        })
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
        return Err(SinkError::Table {
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

impl PartitionWriter for SqlitePartitionWriter {
    async fn write(&mut self, batch: &ScoredBatch) -> Result<(), SinkError> {
        let t = &self.layout.table;
        let outputs = self.layout.score_columns.len();
        let per_row = 3 + outputs;
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
        let columns: Vec<String> = self.layout.columns().iter().map(|c| quote(c)).collect();
        let head = format!(
            "INSERT INTO {} ({}) ",
            quote(&t.sqlite_name()),
            columns.join(", ")
        );
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
                for column in &batch.scores {
                    row.push_bind(f64::from(column[r]));
                }
                row.push_bind(self.run_id.clone());
            });
            qb.build()
                .execute(&mut *self.tx)
                .await
                .map_err(SinkError::db(t, "inserting rows"))?;
            start = end;
        }
        self.rows += batch.rows as u64;
        Ok(())
    }

    async fn commit(self) -> Result<u64, SinkError> {
        let t = self.layout.table.clone();
        self.tx
            .commit()
            .await
            .map_err(SinkError::db(&t, "committing"))?;
        Ok(self.rows)
    }

    async fn abort(self) {
        if let Err(e) = self.tx.rollback().await {
            tracing::warn!(error = %e, "rolling back the SQLite transaction");
        }
    }
}
