//! Resume: a run that died (killed, out of memory, its node lost, its database gone mid-run) has
//! its staged rows committed in checkpoints; the next run of the same job, date and output adopts
//! them when its input objects (URLs, etags, sizes) and model (sha256) are the same, and reads only
//! the rows they do not cover. The result is the same rows an uninterrupted run writes.
//!
//! How it stays exact:
//! - A table-writing run registers its key (job, date, output, model sha256, input digest,
//!   scorer version) before it streams.
//! - Its sink commits staged rows in checkpoints. Each checkpoint is one transaction holding the
//!   rows and a record of the input rows they came from: object, row group and row range, rows
//!   scored, rows rejected (with the rejected rows themselves) and the score statistics. A
//!   checkpoint's rows and its record are both there or both not.
//! - The adopting run renames the dead run's staging table to its own and takes over its
//!   checkpoints (one transaction). It skips row groups the checkpoints cover wholly, and drops the
//!   covered rows of the others as they are decoded. It reads the id column of the covered rows
//!   again, so the duplicate-id check spans the whole date. Its counts, statistics and quarantine
//!   include what it adopted.
//!
//! Only runs that ended without cleaning up are resumable: a run that fails or is cancelled
//! normally drops its staging, as always. Parquet output (`output.url`) is not resumed; its runs
//! start over.

use std::sync::Arc;

use chrono::NaiveDate;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::db::Database;
use crate::quarantine::RejectedRow;
use crate::sink::SinkError;
use crate::sink::checkpoint::Checkpoint;
use crate::source::DoneRanges;
use crate::source::footers::CheckedObject;
use crate::sql_ident::{TableName, quote};
use crate::stats::ScoreStats;

/// What must be the same for a run to adopt another's staged rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResumeKey {
    pub job: String,
    pub date: NaiveDate,
    /// The output table as the ledger names it.
    pub output: String,
    pub model_sha256: String,
    /// sha256 over every planned input object's URL, etag and size, in plan order.
    pub inputs_digest: String,
}

/// The digest of a plan's input objects for [`ResumeKey::inputs_digest`].
pub fn inputs_digest(objects: &[Arc<CheckedObject>]) -> String {
    let mut h = Sha256::new();
    for o in objects {
        h.update(o.url.as_bytes());
        h.update(b"\t");
        h.update(o.meta.e_tag.as_deref().unwrap_or("").as_bytes());
        h.update(format!("\t{}\n", o.meta.size).as_bytes());
    }
    hex::encode(h.finalize())
}

/// What a run took over from the run it resumed.
#[derive(Debug, Clone)]
pub struct Adopted {
    pub from: Uuid,
    pub done: Arc<DoneRanges>,
    pub rejected: Vec<RejectedRow>,
    pub stats: Vec<ScoreStats>,
    /// Input rows the adopted checkpoints cover, and how many of them were staged.
    pub rows_read: u64,
    pub rows_scored: u64,
    /// The first checkpoint number free after the adopted ones (now this run's).
    pub next_seq: i64,
}

/// Runs `$body` with `$pool` and `$sql` (the query file `$name` of the database's engine).
macro_rules! on_engine {
    ($db:expr, $name:literal, |$pool:ident, $sql:ident| $body:expr) => {
        match $db {
            Database::Postgres { pool: $pool, .. } => {
                let $sql = include_str!(concat!("../../sql/postgres/queries/", $name));
                $body
            }
            Database::Sqlite { pool: $pool, .. } => {
                let $sql = include_str!(concat!("../../sql/sqlite/queries/", $name));
                $body
            }
        }
    };
}

/// Registers run `run_id` as resumable under `key`.
pub async fn register(
    db: &Database,
    table: &TableName,
    run_id: Uuid,
    key: &ResumeKey,
) -> Result<(), SinkError> {
    on_engine!(db, "resume_register.sql", |pool, sql| {
        sqlx::query(sql)
            .bind(run_id.to_string())
            .bind(&key.job)
            .bind(key.date.format("%Y-%m-%d").to_string())
            .bind(&key.output)
            .bind(&key.model_sha256)
            .bind(&key.inputs_digest)
            .bind(env!("CARGO_PKG_VERSION"))
            .execute(pool)
            .await
            .map(|_| ())
    })
    .map_err(SinkError::db(table, "registering the run for resume"))
}

/// Whether run `run_id` is registered as resumable (the sweep at the start of a run of the same
/// output and date leaves its staging for that run to adopt or discard).
pub async fn is_registered(db: &Database, run_id: Uuid) -> bool {
    let n: Result<i64, sqlx::Error> = on_engine!(db, "resume_is_registered.sql", |pool, sql| {
        sqlx::query_scalar(sql)
            .bind(run_id.to_string())
            .fetch_one(pool)
            .await
    });
    n.is_ok_and(|n| n > 0)
}

/// Drops what resume knows of run `run_id` (best effort: a failure is logged).
pub async fn forget(db: &Database, run_id: Uuid) {
    let id = run_id.to_string();
    let a: Result<_, sqlx::Error> = on_engine!(db, "resume_forget_checkpoints.sql", |pool, sql| {
        sqlx::query(sql).bind(&id).execute(pool).await.map(|_| ())
    });
    let b: Result<_, sqlx::Error> = on_engine!(db, "resume_forget_run.sql", |pool, sql| {
        sqlx::query(sql).bind(&id).execute(pool).await.map(|_| ())
    });
    if let Err(e) = a.and(b) {
        tracing::warn!(%run_id, error = %e, "could not clear the run's resume records");
    }
}

/// After planning, holding the output's lock: adopts the staging of the newest registered run of
/// this job, date and output that ended without succeeding and has the same key, and discards
/// every other such run's staging. Returns what was adopted.
pub async fn settle(
    db: &Database,
    table: &TableName,
    run_id: Uuid,
    key: &ResumeKey,
) -> Result<Option<Adopted>, SinkError> {
    let date = key.date.format("%Y-%m-%d").to_string();
    let candidates: Vec<(String, String, String, String)> =
        on_engine!(db, "resume_candidates.sql", |pool, sql| {
            sqlx::query_as(sql)
                .bind(&key.job)
                .bind(&date)
                .bind(&key.output)
                .bind(run_id.to_string())
                .fetch_all(pool)
                .await
        })
        .map_err(SinkError::db(table, "looking for a run to resume"))?;
    let mut adopted = None;
    for (old, sha, digest, version) in candidates {
        let Ok(old) = Uuid::parse_str(&old) else {
            continue;
        };
        let same = sha == key.model_sha256
            && digest == key.inputs_digest
            && version == env!("CARGO_PKG_VERSION");
        if adopted.is_none() && same && staging_exists(db, table, old).await? {
            adopted = Some(adopt(db, table, old, run_id).await?);
        } else {
            let why = if same {
                "an earlier attempt"
            } else {
                "its model or input changed"
            };
            tracing::info!(run_id = %old, "not resuming the run ({why}); removing its staging");
            drop_staging(db, table, old).await;
            forget(db, old).await;
        }
    }
    Ok(adopted)
}

/// The staging table name of `run_id` for `table`, quoted for the engine.
fn staging_of(db: &Database, table: &TableName, run_id: Uuid) -> String {
    match db {
        Database::Postgres { .. } => table.pg_sibling(&table.staging_name(run_id)),
        Database::Sqlite { .. } => quote(&crate::sink::sqlite::staging_name(table, run_id)),
    }
}

/// Whether run `run_id`'s staging table for `table` exists.
pub async fn staging_exists(
    db: &Database,
    table: &TableName,
    run_id: Uuid,
) -> Result<bool, SinkError> {
    let found = match db {
        Database::Postgres { pool, .. } => {
            sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
                .bind(staging_of(db, table, run_id))
                .fetch_one(pool)
                .await
        }
        Database::Sqlite { pool, .. } => {
            sqlx::query_scalar(
                "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = ?",
            )
            .bind(crate::sink::sqlite::staging_name(table, run_id))
            .fetch_one(pool)
            .await
        }
    };
    found.map_err(SinkError::db(
        table,
        "looking for a staging table to resume",
    ))
}

async fn drop_staging(db: &Database, table: &TableName, run_id: Uuid) {
    match db {
        Database::Postgres { pool, .. } => {
            crate::sink::postgres::drop_staging(pool, table, &table.staging_name(run_id)).await;
        }
        Database::Sqlite { pool, .. } => {
            crate::sink::sqlite::drop_staging(
                pool,
                &crate::sink::sqlite::staging_name(table, run_id),
            )
            .await;
        }
    }
}

/// One transaction: rename `old`'s staging table to `new`'s, move its checkpoints to `new` and
/// drop its registration; then read the checkpoints.
async fn adopt(
    db: &Database,
    table: &TableName,
    old: Uuid,
    new: Uuid,
) -> Result<Adopted, SinkError> {
    let new_name = match db {
        Database::Postgres { .. } => table.staging_name(new),
        Database::Sqlite { .. } => crate::sink::sqlite::staging_name(table, new),
    };
    let rename = format!(
        "ALTER TABLE {} RENAME TO {}",
        staging_of(db, table, old),
        quote(&new_name)
    );
    let failed = |what| SinkError::db(table, what);
    let (link_sql, unregister_sql) = match db {
        Database::Postgres { .. } => (
            include_str!("../../sql/postgres/queries/resume_link.sql"),
            include_str!("../../sql/postgres/queries/resume_forget_run.sql"),
        ),
        Database::Sqlite { .. } => (
            include_str!("../../sql/sqlite/queries/resume_link.sql"),
            include_str!("../../sql/sqlite/queries/resume_forget_run.sql"),
        ),
    };
    on_engine!(db, "resume_move.sql", |pool, move_sql| {
        let mut tx = pool
            .begin()
            .await
            .map_err(failed("starting the adoption"))?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(rename.clone()))
            .execute(&mut *tx)
            .await
            .map_err(failed("taking over the staging table"))?;
        sqlx::query(move_sql)
            .bind(old.to_string())
            .bind(new.to_string())
            .execute(&mut *tx)
            .await
            .map_err(failed("taking over the checkpoints"))?;
        sqlx::query(link_sql)
            .bind(old.to_string())
            .bind(new.to_string())
            .execute(&mut *tx)
            .await
            .map_err(failed("recording which run is resumed"))?;
        sqlx::query(unregister_sql)
            .bind(old.to_string())
            .execute(&mut *tx)
            .await
            .map_err(failed("dropping the resumed run's registration"))?;
        tx.commit().await.map_err(failed("committing the adoption"))
    })?;
    let bodies: Vec<(i64, String)> = on_engine!(db, "resume_bodies.sql", |pool, sql| {
        sqlx::query_as(sql)
            .bind(new.to_string())
            .fetch_all(pool)
            .await
    })
    .map_err(failed("reading the checkpoints"))?;
    let next_seq = bodies.iter().map(|(seq, _)| seq + 1).max().unwrap_or(0);
    let mut all = Checkpoint::default();
    for (_, body) in bodies {
        let c: Checkpoint = serde_json::from_str(&body).map_err(|e| SinkError::Table {
            table: table.to_string(),
            message: format!("a resume checkpoint of run {old} cannot be read: {e}"),
        })?;
        all.absorb(c);
    }
    let rows_read = all.ranges.iter().map(|r| r.rows as u64).sum();
    let rows_scored = all.ranges.iter().map(|r| r.scored as u64).sum();
    tracing::info!(
        from = %old,
        ranges = all.ranges.len(),
        rows = rows_scored,
        "resuming: adopted the staged rows of a run that did not finish"
    );
    Ok(Adopted {
        from: old,
        done: Arc::new(DoneRanges::from_ranges(&all.ranges)),
        rejected: all.rejected,
        stats: all.stats,
        rows_read,
        rows_scored,
        next_seq,
    })
}
