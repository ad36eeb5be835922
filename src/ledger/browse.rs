//! Reading the ledger as people do: `scorer runs` (recent runs, newest first) and `scorer show`
//! (one run in full: counts, stages, inputs with their etags, model and sha256, statistics,
//! memory, storage requests, the run it resumed). Rows come out as JSON objects with every
//! column, so a column added by a migration shows up without a change here.

use serde_json::{Map, Value};
use uuid::Uuid;

use crate::db::{Database, DbError};
use crate::sql_ident::quote;

/// Columns stored as JSON text in SQLite (jsonb in PostgreSQL): parsed back into JSON.
const JSON_COLUMNS: [&str; 8] = [
    "stage_seconds",
    "inputs",
    "score_stats",
    "memory",
    "feature_stats",
    "drift",
    "metrics",
    "retention",
];

/// The newest runs, of `job` when given, at most `limit`.
pub async fn recent(db: &Database, job: Option<&str>, limit: u32) -> Result<Vec<Value>, DbError> {
    let rows = match db {
        Database::Postgres { pool, .. } => sqlx::query_scalar::<_, String>(
            "SELECT row_to_json(r)::text FROM (SELECT * FROM scorer.runs \
             WHERE $1::text IS NULL OR job = $1 ORDER BY started_at DESC LIMIT $2) r",
        )
        .bind(job)
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await
        .map_err(|e| query_err(db, "reading recent runs", e))?,
        Database::Sqlite { pool, .. } => {
            let object = sqlite_json_object(pool)
                .await
                .map_err(|e| query_err(db, "reading the ledger's columns", e))?;
            sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(format!(
                "SELECT {object} FROM scorer_runs WHERE ?1 IS NULL OR job = ?1 \
                 ORDER BY started_at DESC LIMIT ?2"
            )))
            .bind(job)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await
            .map_err(|e| query_err(db, "reading recent runs", e))?
        }
    };
    rows.iter().map(|r| parse_row(db, r)).collect()
}

/// The run `run_id`, if the ledger has it.
pub async fn one(db: &Database, run_id: Uuid) -> Result<Option<Value>, DbError> {
    let row = match db {
        Database::Postgres { pool, .. } => sqlx::query_scalar::<_, String>(
            "SELECT row_to_json(r)::text FROM scorer.runs r WHERE run_id = $1::uuid",
        )
        .bind(run_id.to_string())
        .fetch_optional(pool)
        .await
        .map_err(|e| query_err(db, "reading the run", e))?,
        Database::Sqlite { pool, .. } => {
            let object = sqlite_json_object(pool)
                .await
                .map_err(|e| query_err(db, "reading the ledger's columns", e))?;
            sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(format!(
                "SELECT {object} FROM scorer_runs WHERE run_id = ?1"
            )))
            .bind(run_id.to_string())
            .fetch_optional(pool)
            .await
            .map_err(|e| query_err(db, "reading the run", e))?
        }
    };
    row.map(|r| parse_row(db, &r)).transpose()
}

fn query_err(db: &Database, context: &'static str, source: sqlx::Error) -> DbError {
    DbError::Query {
        target: db.target().to_string(),
        context,
        source,
    }
}

/// `json_object('col', "col", …)` over every column of `scorer_runs` as SQLite has it.
async fn sqlite_json_object(pool: &sqlx::SqlitePool) -> Result<String, sqlx::Error> {
    let columns: Vec<String> =
        sqlx::query_scalar("SELECT name FROM pragma_table_info('scorer_runs') ORDER BY cid")
            .fetch_all(pool)
            .await?;
    let pairs: Vec<String> = columns
        .iter()
        .map(|c| format!("{}, {}", crate::sql_ident::literal(c), quote(c)))
        .collect();
    Ok(format!("json_object({})", pairs.join(", ")))
}

/// One row's JSON, with SQLite's JSON-in-text columns parsed.
fn parse_row(db: &Database, text: &str) -> Result<Value, DbError> {
    let mut value: Value = serde_json::from_str(text).map_err(|e| DbError::Ledger {
        target: db.target().to_string(),
        reason: format!("a ledger row is not JSON: {e}"),
    })?;
    if let Some(map) = value.as_object_mut() {
        for column in JSON_COLUMNS {
            if let Some(Value::String(s)) = map.get(column)
                && let Ok(parsed) = serde_json::from_str::<Value>(s)
            {
                map.insert(column.to_string(), parsed);
            }
        }
    }
    Ok(value)
}

/// `scorer runs` as a table: one line per run, newest first.
pub fn table(runs: &[Value]) -> Vec<String> {
    let text = |r: &Map<String, Value>, k: &str| match r.get(k) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(v) => v.to_string(),
    };
    let mut lines = vec![format!(
        "{:<36}  {:<20}  {:<10}  {:<10}  {:<7}  {:<24}  {:>8}  {:>10}  {:>8}  {:>6}  {}",
        "run_id",
        "job",
        "date",
        "status",
        "shard",
        "started",
        "seconds",
        "rows",
        "rejected",
        "psi",
        "error"
    )];
    for r in runs.iter().filter_map(Value::as_object) {
        let seconds = r
            .get("stage_seconds")
            .and_then(|s| s.get("total"))
            .and_then(Value::as_f64)
            .map_or(String::new(), |s| format!("{s:.2}"));
        let mut error = text(r, "error");
        if error.len() > 80 {
            let cut = (0..=77)
                .rev()
                .find(|&i| error.is_char_boundary(i))
                .unwrap_or(0);
            error.truncate(cut);
            error.push_str("...");
        }
        let shard = match (text(r, "shard_index"), text(r, "shard_count")) {
            (i, n) if !i.is_empty() && !n.is_empty() => format!("{i}/{n}"),
            _ => String::new(),
        };
        // The largest PSI against the previous successful run (`crate::drift`).
        let psi = r
            .get("drift")
            .and_then(|d| d.get("worst"))
            .and_then(|w| w.get(1))
            .and_then(Value::as_f64)
            .map_or(String::new(), |p| format!("{p:.3}"));
        lines.push(format!(
            "{:<36}  {:<20}  {:<10}  {:<10}  {:<7}  {:<24}  {:>8}  {:>10}  {:>8}  {:>6}  {}",
            text(r, "run_id"),
            text(r, "job"),
            text(r, "logical_date"),
            text(r, "status"),
            shard,
            text(r, "started_at"),
            seconds,
            text(r, "rows_written"),
            text(r, "rows_rejected"),
            psi,
            error
        ));
    }
    lines
}
