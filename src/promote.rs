//! `scorer promote JOB --to VERSION --reason "..."`: changes which model version a job scores as
//! its champion, and records who did it, when and why in the ledger (`promotions`). Where the
//! model comes from MLflow under an alias, the alias moves (the registry's own set-alias call), so
//! every job and tool that follows the alias sees the change; otherwise the job file's
//! `model.version` (or a pinned `models:/name/N` URI) is rewritten in place, comments and layout
//! kept. The target version is loaded first: a version that does not load is never promoted.
//! A demotion (rollback) is the same command with the older version.

use std::path::Path;

use serde::Serialize;

use crate::db::Database;
use crate::failure::Failure;
use crate::job::Job;
use crate::model::registry::Registry;

/// What a promotion changed, as recorded.
#[derive(Debug, Clone, Serialize)]
pub struct Promotion {
    pub job: String,
    /// The registry name, or the MLflow URI as the job writes it.
    pub model: String,
    pub from_version: Option<String>,
    pub to_version: String,
    /// What was changed: `MLflow alias …` or `job file …`.
    pub action: String,
    pub reason: String,
}

/// Promotes `to` for `job` (read from `path`) and records it in `db`.
pub async fn promote(
    job: &Job,
    path: &Path,
    to: &str,
    reason: &str,
    models: &Registry,
    db: &Database,
) -> Result<Promotion, Failure> {
    if reason.trim().is_empty() {
        return Err(Failure::Config(
            "--reason must say why (it is recorded in the ledger)".into(),
        ));
    }
    crate::model::registry::check_name("version", to).map_err(Failure::Config)?;
    let promotion = match job.model.mlflow(&job.input.storage) {
        Some(request) => {
            let mut request = request.map_err(Failure::Config)?;
            let uri = request.uri.clone();
            // The version must exist and load before anything moves.
            request.pinned_version = Some(to.to_string());
            let (req, cache) = (request.clone(), models.cache.clone());
            tokio::task::spawn_blocking(move || {
                let found = crate::model::mlflow::materialize(&req, &cache)?;
                crate::model::load(
                    &found.registry,
                    &found.name,
                    &found.version,
                    crate::model::device::DeviceSpec::Cpu,
                )
                .map(|_| ())
            })
            .await
            .map_err(|e| Failure::Internal(e.to_string()))??;
            match &uri.selector {
                crate::model::mlflow::Selector::Alias(alias) => {
                    let (u, v) = (uri.clone(), to.to_string());
                    let before = tokio::task::spawn_blocking(move || {
                        crate::model::mlflow::move_alias(&u, &v)
                    })
                    .await
                    .map_err(|e| Failure::Internal(e.to_string()))??;
                    Promotion {
                        job: job.name.clone(),
                        model: uri.to_string(),
                        from_version: before,
                        to_version: to.to_string(),
                        action: format!(
                            "MLflow alias @{alias} of {} set to version {to}",
                            uri.name
                        ),
                        reason: reason.to_string(),
                    }
                }
                crate::model::mlflow::Selector::Version(before) => {
                    let new_uri = format!("models:/{}/{to}", uri.name);
                    rewrite_model_key(path, "uri", &new_uri)?;
                    Promotion {
                        job: job.name.clone(),
                        model: uri.to_string(),
                        from_version: Some(before.clone()),
                        to_version: to.to_string(),
                        action: format!("job file {}: model.uri = \"{new_uri}\"", path.display()),
                        reason: reason.to_string(),
                    }
                }
            }
        }
        None => {
            let before = models
                .resolve_version(&job.model.name, &job.model.version)
                .ok();
            let (m, name, v) = (models.clone(), job.model.name.clone(), to.to_string());
            tokio::task::spawn_blocking(move || {
                crate::model::load(&m, &name, &v, crate::model::device::DeviceSpec::Cpu).map(|_| ())
            })
            .await
            .map_err(|e| Failure::Internal(e.to_string()))??;
            rewrite_model_key(path, "version", to)?;
            Promotion {
                job: job.name.clone(),
                model: job.model.name.clone(),
                from_version: before,
                to_version: to.to_string(),
                action: format!("job file {}: model.version = \"{to}\"", path.display()),
                reason: reason.to_string(),
            }
        }
    };
    record(db, &promotion).await?;
    Ok(promotion)
}

/// Sets `[model] key = "value"` in the job file, keeping its comments and layout; written
/// through a temporary file and a rename, so the file is whole at every moment.
fn rewrite_model_key(path: &Path, key: &str, value: &str) -> Result<(), Failure> {
    let fail = |e: String| Failure::Config(format!("job file {}: {e}", path.display()));
    let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
    let mut doc: toml_edit::DocumentMut = text
        .parse()
        .map_err(|e: toml_edit::TomlError| fail(e.to_string()))?;
    let model = doc
        .get_mut("model")
        .and_then(|m| m.as_table_like_mut())
        .ok_or_else(|| fail("has no [model] table".into()))?;
    match model.get_mut(key).and_then(|item| item.as_value_mut()) {
        // The same key: its new value keeps the old one's spacing and trailing comment.
        Some(existing) => {
            let decor = existing.decor().clone();
            *existing = toml_edit::Value::from(value);
            *existing.decor_mut() = decor;
        }
        None => {
            model.insert(key, toml_edit::value(value));
        }
    }
    let tmp = path.with_extension(format!("toml.{}.tmp", uuid::Uuid::now_v7()));
    std::fs::write(&tmp, doc.to_string()).map_err(|e| fail(e.to_string()))?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        fail(e.to_string())
    })
}

/// Writes the promotion's ledger row.
async fn record(db: &Database, p: &Promotion) -> Result<(), Failure> {
    let now = crate::ledger::timestamp(chrono::Utc::now());
    let host = crate::ledger::audit::host();
    let user = crate::ledger::audit::os_user();
    let err = |e: sqlx::Error| {
        Failure::Db(crate::db::DbError::Query {
            target: db.target().to_string(),
            context: "recording the promotion",
            source: e,
        })
    };
    // The same values in the same order for both engines; only the statement differs.
    macro_rules! insert {
        ($sql:expr, $pool:expr) => {
            sqlx::query($sql)
                .bind(&now)
                .bind(&p.job)
                .bind(&p.model)
                .bind(&p.from_version)
                .bind(&p.to_version)
                .bind(&p.action)
                .bind(&p.reason)
                .bind(&user)
                .bind(&host)
                .execute($pool)
                .await
                .map(|_| ())
                .map_err(err)
        };
    }
    match db {
        Database::Postgres { pool, .. } => insert!(
            "INSERT INTO scorer.promotions (promoted_at, job, model, from_version, to_version, \
             action, reason, os_user, host) VALUES ($1::timestamptz, $2, $3, $4, $5, $6, $7, $8, $9)",
            pool
        ),
        Database::Sqlite { pool, .. } => insert!(
            "INSERT INTO scorer_promotions (promoted_at, job, model, from_version, to_version, \
             action, reason, os_user, host) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            pool
        ),
    }
}

/// The newest promotions (of `job` when given), newest first, one line each for `scorer runs`.
pub async fn recent_lines(
    db: &Database,
    job: Option<&str>,
    limit: u32,
) -> Result<Vec<String>, Failure> {
    type Row = (
        String,
        String,
        String,
        Option<String>,
        String,
        String,
        Option<String>,
    );
    let err = |e: sqlx::Error| {
        Failure::Db(crate::db::DbError::Query {
            target: db.target().to_string(),
            context: "reading promotions",
            source: e,
        })
    };
    let rows: Vec<Row> = match db {
        Database::Postgres { pool, .. } => sqlx::query_as(
            "SELECT to_char(promoted_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), job, \
             model, from_version, to_version, reason, os_user FROM scorer.promotions \
             WHERE $1::text IS NULL OR job = $1 ORDER BY promoted_at DESC LIMIT $2",
        )
        .bind(job)
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await
        .map_err(err)?,
        Database::Sqlite { pool, .. } => sqlx::query_as(
            "SELECT promoted_at, job, model, from_version, to_version, reason, os_user \
             FROM scorer_promotions WHERE ?1 IS NULL OR job = ?1 ORDER BY promoted_at DESC LIMIT ?2",
        )
        .bind(job)
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await
        .map_err(err)?,
    };
    Ok(rows
        .into_iter()
        .map(|(at, job, model, from, to, reason, user)| {
            format!(
                "{at}  {job}: {model} {} -> {to} by {}: {reason}",
                from.as_deref().unwrap_or("(none)"),
                user.as_deref().unwrap_or("?")
            )
        })
        .collect())
}
