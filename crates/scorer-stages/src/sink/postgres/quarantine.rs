//! The quarantine table beside a PostgreSQL result table (`crate::quarantine`): created with the
//! result table, and the date's rows replaced inside the partition swap's transaction, so the
//! quarantine and the results always belong to the same run.

use chrono::NaiveDate;
use sqlx::postgres::{PgPool, Postgres};
use sqlx::{QueryBuilder, Transaction};
use uuid::Uuid;

use crate::quarantine::{self, COLUMNS, ROWS_PER_STATEMENT, RejectedRow, TABLE_SUFFIX};
use crate::sink::SinkError;
use crate::sql_ident::{TableName, quote};

/// `"schema"."<table>_quarantine"`.
pub fn table_of(result: &TableName) -> String {
    result.pg_sibling(&format!("{}{TABLE_SUFFIX}", result.table))
}

/// Creates the quarantine table and its date index if absent.
pub async fn ensure(pool: &PgPool, result: &TableName) -> Result<(), SinkError> {
    let table = table_of(result);
    let columns: Vec<String> = COLUMNS
        .iter()
        .map(|(name, pg, _)| format!("{} {pg}", quote(name)))
        .collect();
    let index = quote(&format!("{}{TABLE_SUFFIX}__ds", result.table));
    let sql = format!(
        "CREATE TABLE IF NOT EXISTS {table} ({});\nCREATE INDEX IF NOT EXISTS {index} ON {table} ({})",
        columns.join(", "),
        quote("ds")
    );
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(pool)
        .await
        .map_err(SinkError::db(result, "creating the quarantine table"))?;
    Ok(())
}

/// Inside `tx`: deletes the date's quarantined rows and inserts `rows` as the run's.
pub async fn replace(
    tx: &mut Transaction<'_, Postgres>,
    result: &TableName,
    date: NaiveDate,
    run_id: Uuid,
    rows: &[RejectedRow],
) -> Result<(), SinkError> {
    let table = table_of(result);
    let delete = format!("DELETE FROM {table} WHERE {} = $1", quote("ds"));
    sqlx::query(sqlx::AssertSqlSafe(delete))
        .bind(date)
        .execute(&mut **tx)
        .await
        .map_err(SinkError::db(result, "clearing the date's quarantine"))?;
    let names: Vec<String> = quarantine::column_names()
        .iter()
        .map(|c| quote(c))
        .collect();
    let head = format!("INSERT INTO {table} ({}) ", names.join(", "));
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let mut qb: QueryBuilder<Postgres> = QueryBuilder::new(head.clone());
        qb.push_values(chunk, |mut b, r| {
            b.push_bind(r.id.clone())
                .push_bind(date)
                .push_bind(r.reason.as_str())
                .push_bind(r.column.to_string())
                .push_bind(r.object.to_string())
                .push_bind(i32::try_from(r.row_group).unwrap_or(i32::MAX))
                .push_bind(quarantine::as_i64(r.row))
                .push_bind(run_id);
        });
        qb.build()
            .execute(&mut **tx)
            .await
            .map_err(SinkError::db(result, "writing the quarantine"))?;
    }
    Ok(())
}
