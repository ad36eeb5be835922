//! `output.retention_days` for a PostgreSQL table: the expired dates' partitions are dropped, and
//! their rows of the quarantine table deleted, in one transaction.

use chrono::NaiveDate;
use sqlx::Row;

use crate::sink::SinkError;
use crate::sql_ident::TableName;

/// The date in a partition bound as `pg_get_expr` prints it: `FOR VALUES IN ('2026-11-24')`.
pub(crate) fn bound_date(bound: &str) -> Option<NaiveDate> {
    let start = bound.find('\'')? + 1;
    let end = start + bound[start..].find('\'')?;
    NaiveDate::parse_from_str(&bound[start..end], "%Y-%m-%d").ok()
}

pub(crate) async fn drop_partitions(
    pool: &sqlx::PgPool,
    t: &TableName,
    before: NaiveDate,
) -> Result<Vec<NaiveDate>, SinkError> {
    let rows = sqlx::query(include_str!(
        "../../../../../sql/postgres/queries/date_partitions.sql"
    ))
    .bind(t.pg_quoted())
    .fetch_all(pool)
    .await
    .map_err(SinkError::db(t, "listing the date partitions"))?;
    let mut old: Vec<(NaiveDate, String)> = rows
        .iter()
        .filter_map(|r| {
            let name: String = r.get(0);
            let bound: String = r.get(1);
            bound_date(&bound)
                .filter(|d| *d < before)
                .map(|d| (d, name))
        })
        .collect();
    old.sort();
    if old.is_empty() {
        return Ok(Vec::new());
    }
    let mut tx = pool
        .begin()
        .await
        .map_err(SinkError::db(t, "starting the retention transaction"))?;
    sqlx::query(include_str!(
        "../../../../../sql/postgres/queries/set_swap_timeouts.sql"
    ))
    .execute(&mut *tx)
    .await
    .map_err(SinkError::db(t, "setting lock timeout"))?;
    for (_, name) in &old {
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DROP TABLE {}",
            t.pg_sibling(name)
        )))
        .execute(&mut *tx)
        .await
        .map_err(SinkError::db(t, "dropping an expired partition"))?;
    }
    let quarantine = super::quarantine::table_of(t);
    let exists: Option<String> = sqlx::query_scalar("SELECT to_regclass($1)::text")
        .bind(&quarantine)
        .fetch_one(&mut *tx)
        .await
        .map_err(SinkError::db(t, "looking up the quarantine table"))?;
    if exists.is_some() {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM {quarantine} WHERE ds < $1"
        )))
        .bind(before)
        .execute(&mut *tx)
        .await
        .map_err(SinkError::db(t, "deleting expired quarantine rows"))?;
    }
    tx.commit()
        .await
        .map_err(SinkError::db(t, "committing the retention"))?;
    Ok(old.into_iter().map(|(d, _)| d).collect())
}
