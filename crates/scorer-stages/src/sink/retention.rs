//! `output.retention_days = N`: after a run of date D publishes, every date before D - N + 1 is
//! dropped from the output, so a table holds the N dates up to the newest one a run wrote (a
//! backfill of an older date drops nothing newer than its own window). What each output drops:
//!
//! | output | dropped |
//! | --- | --- |
//! | PostgreSQL table | the dates' partitions, and their rows of the quarantine table |
//! | SQLite table | the dates' rows, and their rows of the quarantine table |
//! | Parquet at `url` | each date directory a run of the job published: manifest first, then files |
//! | Delta table | the dates' files, removed from the current version in one commit (a vacuum deletes them) |
//!
//! The run records the dates it dropped in the ledger (`retention`); a failure to drop is
//! recorded there too and logged, and does not undo the publication it followed.

use chrono::{Days, NaiveDate};
use object_store::ObjectStoreExt;
use sqlx::Row;

use crate::db::Database;
use crate::sink::{Destination, SinkError, objects};
use crate::source::storage::StorageOptions;
use crate::sql_ident::{TableName, quote};
use crate::template;

/// The oldest date kept when date `date` keeps `days` dates.
pub fn first_kept(date: NaiveDate, days: u32) -> NaiveDate {
    date.checked_sub_days(Days::new(u64::from(days.saturating_sub(1))))
        .unwrap_or(NaiveDate::MIN)
}

/// What one run's retention did, as the ledger records it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Retention {
    /// Dates before this one were dropped.
    pub before: NaiveDate,
    /// The dates dropped, oldest first.
    pub dropped: Vec<NaiveDate>,
    /// Why dropping stopped, if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Drops every date of the job's output before `before`. `published` lists the dates a run of
/// the job published (from the ledger), which Parquet output needs: a store has no catalogue; so
/// does the job's `output.url` template and its storage options.
pub async fn drop_before(
    output_url: Option<&str>,
    storage: &StorageOptions,
    destination: &Destination,
    db: &Database,
    before: NaiveDate,
    published: &[NaiveDate],
) -> Result<Vec<NaiveDate>, SinkError> {
    match (destination, db) {
        (Destination::Table(t), Database::Postgres { pool, .. }) => {
            drop_partitions(pool, t, before).await
        }
        (Destination::Table(t), Database::Sqlite { pool, .. }) => {
            delete_sqlite_rows(pool, t, before).await
        }
        (Destination::Objects(_), _) => {
            drop_directories(output_url, storage, before, published).await
        }
        (Destination::Delta(target), _) => {
            let url = target.shown().to_string();
            let log_store = crate::delta::log_store::open(target).map_err(|message| {
                crate::delta::log::DeltaError::Config {
                    url: url.clone(),
                    message,
                }
            })?;
            Ok(crate::sink::delta::commit::drop_dates_before(&log_store, &url, before).await?)
        }
    }
}

/// The date in a partition bound as `pg_get_expr` prints it: `FOR VALUES IN ('2026-11-24')`.
fn bound_date(bound: &str) -> Option<NaiveDate> {
    let start = bound.find('\'')? + 1;
    let end = start + bound[start..].find('\'')?;
    NaiveDate::parse_from_str(&bound[start..end], "%Y-%m-%d").ok()
}

async fn drop_partitions(
    pool: &sqlx::PgPool,
    t: &TableName,
    before: NaiveDate,
) -> Result<Vec<NaiveDate>, SinkError> {
    let rows = sqlx::query(include_str!(
        "../../../../sql/postgres/queries/date_partitions.sql"
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
        "../../../../sql/postgres/queries/set_swap_timeouts.sql"
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
    let quarantine = super::postgres::quarantine::table_of(t);
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

async fn delete_sqlite_rows(
    pool: &sqlx::SqlitePool,
    t: &TableName,
    before: NaiveDate,
) -> Result<Vec<NaiveDate>, SinkError> {
    let table = quote(&t.sqlite_name());
    let quarantine = super::sqlite::quarantine::table_of(t);
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

/// Each published date directory before `before`: its manifest goes first (readers then see no
/// date), then its files.
async fn drop_directories(
    output_url: Option<&str>,
    storage: &StorageOptions,
    before: NaiveDate,
    published: &[NaiveDate],
) -> Result<Vec<NaiveDate>, SinkError> {
    let Some(url) = output_url else {
        return Ok(Vec::new());
    };
    let mut dates: Vec<NaiveDate> = published.iter().copied().filter(|d| *d < before).collect();
    dates.sort();
    dates.dedup();
    let mut dropped = Vec::new();
    for date in dates {
        let rendered = template::render(url, date).map_err(|e| SinkError::Objects {
            url: url.to_string(),
            message: e.to_string(),
        })?;
        let location =
            crate::source::resolve_output(&rendered, storage).map_err(|e| SinkError::Objects {
                url: rendered.clone(),
                message: e.to_string(),
            })?;
        let manifest = location.prefix.clone().join(objects::MANIFEST);
        match location.store.delete(&manifest).await {
            Ok(()) => {}
            Err(object_store::Error::NotFound { .. }) => continue,
            Err(source) => {
                return Err(SinkError::Store {
                    url: rendered,
                    context: format!("deleting the expired date's {}", objects::MANIFEST),
                    source,
                });
            }
        }
        objects::delete_dir(&location.store, &location.prefix).await;
        dropped.push(date);
    }
    Ok(dropped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_n_dates_up_to_the_run() {
        let d = NaiveDate::from_ymd_opt(2026, 11, 24).unwrap();
        assert_eq!(first_kept(d, 1), d);
        assert_eq!(
            first_kept(d, 7),
            NaiveDate::from_ymd_opt(2026, 11, 18).unwrap()
        );
        assert_eq!(
            bound_date("FOR VALUES IN ('2026-11-01')"),
            NaiveDate::from_ymd_opt(2026, 11, 1)
        );
        assert_eq!(bound_date("DEFAULT"), None);
    }
}
