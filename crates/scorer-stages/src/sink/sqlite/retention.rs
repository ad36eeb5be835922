//! `output.retention_days` for a SQLite table: the expired dates' rows, and their quarantine rows,
//! deleted in one transaction.

use chrono::NaiveDate;

use crate::sink::SinkError;
use crate::sql_ident::{TableName, quote};

/// Deletes the rows of every date before `before`, and their quarantine rows, in one
/// transaction; returns the dates deleted.
pub(crate) async fn delete_rows_before(
    pool: &sqlx::SqlitePool,
    t: &TableName,
    before: NaiveDate,
) -> Result<Vec<NaiveDate>, SinkError> {
    let table = quote(&t.sqlite_name());
    let quarantine = super::quarantine::table_of(t);
    let before_text = before.format("%Y-%m-%d").to_string();
    let mut tx = pool
        .begin()
        .await
        .map_err(SinkError::db(t, "starting the retention transaction"))?;
    let dates: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT DISTINCT ds FROM {table} WHERE ds < ? ORDER BY ds"
    )))
    .bind(&before_text)
    .fetch_all(&mut *tx)
    .await
    .map_err(SinkError::db(t, "listing expired dates"))?;
    let has_quarantine: Option<String> =
        sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table' AND name = ?")
            .bind(&quarantine)
            .fetch_optional(&mut *tx)
            .await
            .map_err(SinkError::db(t, "looking up the quarantine table"))?;
    let mut statements = vec![format!("DELETE FROM {table} WHERE ds < ?")];
    if has_quarantine.is_some() {
        statements.push(format!("DELETE FROM {} WHERE ds < ?", quote(&quarantine)));
    }
    for sql in statements {
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(&before_text)
            .execute(&mut *tx)
            .await
            .map_err(SinkError::db(t, "deleting expired rows"))?;
    }
    tx.commit()
        .await
        .map_err(SinkError::db(t, "committing the retention"))?;
    Ok(dates
        .iter()
        .filter_map(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
        .collect())
}
