//! The quarantine table beside a SQLite result table (`crate::quarantine`): created with the
//! result table, and the date's rows replaced inside the publish transaction.

use sqlx::sqlite::{Sqlite, SqlitePool};
use sqlx::{QueryBuilder, Transaction};

use crate::quarantine::{self, COLUMNS, ROWS_PER_STATEMENT, RejectedRow, TABLE_SUFFIX};
use crate::sink::SinkError;
use crate::sql_ident::{TableName, quote};

/// `<table>_quarantine` (SQLite's name for `schema.table` first, as for the result table).
pub fn table_of(result: &TableName) -> String {
    format!("{}{TABLE_SUFFIX}", result.sqlite_name())
}

/// Creates the quarantine table and its date index if absent.
pub async fn ensure(pool: &SqlitePool, result: &TableName) -> Result<(), SinkError> {
    let name = table_of(result);
    let columns: Vec<String> = COLUMNS
        .iter()
        .map(|(column, _, sqlite)| format!("{} {sqlite}", quote(column)))
        .collect();
    let sql = format!(
        "CREATE TABLE IF NOT EXISTS {} ({});\nCREATE INDEX IF NOT EXISTS {} ON {} ({});",
        quote(&name),
        columns.join(", "),
        quote(&format!("{name}__ds")),
        quote(&name),
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
    tx: &mut Transaction<'_, Sqlite>,
    result: &TableName,
    date: &str,
    run_id: &str,
    rows: &[RejectedRow],
) -> Result<(), SinkError> {
    let name = quote(&table_of(result));
    let delete = format!("DELETE FROM {name} WHERE {} = ?", quote("ds"));
    sqlx::query(sqlx::AssertSqlSafe(delete))
        .bind(date)
        .execute(&mut **tx)
        .await
        .map_err(SinkError::db(result, "clearing the date's quarantine"))?;
    let names: Vec<String> = quarantine::column_names()
        .iter()
        .map(|c| quote(c))
        .collect();
    let head = format!("INSERT INTO {name} ({}) ", names.join(", "));
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(head.clone());
        qb.push_values(chunk, |mut b, r| {
            b.push_bind(r.id.clone())
                .push_bind(date.to_string())
                .push_bind(r.reason.as_str())
                .push_bind(r.column.to_string())
                .push_bind(r.object.to_string())
                .push_bind(quarantine::as_i64(r.row_group))
                .push_bind(quarantine::as_i64(r.row))
                .push_bind(run_id.to_string());
        });
        qb.build()
            .execute(&mut **tx)
            .await
            .map_err(SinkError::db(result, "writing the quarantine"))?;
    }
    Ok(())
}
