//! What a run that died leaves in its sink, and removing it: the staging table of a table output
//! (PostgreSQL or SQLite), or the `_runs/<run_id>/` files of a Parquet output that the manifest
//! does not name. Used by the sweep (`scorer gc` and the start of every run), never while the
//! run's lock is held by someone else.

use uuid::Uuid;

use super::{Destination, SinkError, objects, postgres, sqlite};
use crate::db::Database;

/// Removes what the run `run_id` left at `destination`; returns a line per thing removed.
pub async fn remove(
    db: &Database,
    destination: &Destination,
    run_id: Uuid,
    date: chrono::NaiveDate,
) -> Result<Vec<String>, SinkError> {
    let mut removed = Vec::new();
    match (destination, db) {
        (Destination::Delta(target), _) => {
            removed = crate::sink::delta::remove_leftovers(target, date, run_id).await?;
        }
        (Destination::Table(table), Database::Postgres { pool, .. }) => {
            let staging = table.staging_name(run_id);
            let qualified = table.pg_sibling(&staging);
            let exists: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
                .bind(&qualified)
                .fetch_one(pool)
                .await
                .map_err(SinkError::db(table, "looking for a staging table"))?;
            if exists {
                postgres::drop_staging(pool, table, &staging).await;
                removed.push(format!("staging table {qualified}"));
            }
        }
        (Destination::Table(table), Database::Sqlite { pool, .. }) => {
            let staging = sqlite::staging_name(table, run_id);
            let exists: bool = sqlx::query_scalar(
                "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = ?",
            )
            .bind(&staging)
            .fetch_one(pool)
            .await
            .map_err(SinkError::db(table, "looking for a staging table"))?;
            if exists {
                sqlite::drop_staging(pool, &staging).await;
                removed.push(format!("staging table {staging}"));
            }
        }
        (Destination::Objects(location), _) => {
            // A run that died between its manifest PUT and its ledger update did publish: its
            // files are the date's rows and stay.
            let manifest =
                objects::read_manifest(&location.store, &location.prefix, &location.url).await?;
            if manifest.is_some_and(|m| m.all_runs().contains(&run_id)) {
                return Ok(removed);
            }
            let dir = objects::run_dir(&location.prefix, run_id);
            let listed = objects::count_under(&location.store, &dir)
                .await
                .map_err(|source| SinkError::Store {
                    url: location.url.clone(),
                    context: format!("listing {dir}"),
                    source,
                })?;
            if listed > 0 {
                objects::delete_dir(&location.store, &dir).await;
                removed.push(format!("{listed} run file(s) under {dir}"));
            }
        }
    }
    Ok(removed)
}
