//! The run ledger: what each run did, for operators and auditors. A row is written as `running`
//! when a run starts and completed (`succeeded` or `failed`) when it ends, so a killed run leaves a
//! stale `running` row that says so.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::db::{Database, DbError};

/// Status values, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    Running,
    Succeeded,
    Failed,
}

impl RunStatus {
    /// The stored text.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }
}

/// What is known when a run starts.
#[derive(Debug, Clone)]
pub struct RunStart {
    pub run_id: Uuid,
    pub job: String,
    pub logical_date: NaiveDate,
    pub started_at: DateTime<Utc>,
    pub output_table: String,
    pub scorer_version: String,
    pub host: String,
}

/// One input object as it was when listed.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct InputObject {
    pub url: String,
    pub size: u64,
    pub etag: Option<String>,
    pub last_modified: DateTime<Utc>,
}

/// Summary statistics of one output column over a run.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct ScoreStats {
    pub count: u64,
    pub nan: u64,
    pub mean: Option<f64>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    #[serde(skip)]
    sum: f64,
}

impl ScoreStats {
    /// Folds in one value.
    pub fn add(&mut self, v: f32) {
        if v.is_nan() {
            self.nan += 1;
            return;
        }
        let v = f64::from(v);
        self.count += 1;
        self.sum += v;
        self.min = Some(self.min.map_or(v, |m| m.min(v)));
        self.max = Some(self.max.map_or(v, |m| m.max(v)));
        self.mean = Some(self.sum / self.count as f64);
    }
}

/// The model a run used.
#[derive(Debug, Clone, Default)]
pub struct ModelUsed {
    pub name: String,
    pub version: String,
    pub sha256: String,
    pub device: String,
    /// The GPU's name when `device` is a GPU.
    pub gpu_name: Option<String>,
}

/// What is known when a run ends, successful or not.
#[derive(Debug, Clone)]
pub struct RunFinish {
    pub status: RunStatus,
    pub finished_at: DateTime<Utc>,
    pub rows_read: u64,
    pub rows_scored: u64,
    pub rows_written: u64,
    pub rows_rejected: u64,
    pub stage_seconds: BTreeMap<String, f64>,
    pub inputs: Vec<InputObject>,
    pub model: Option<ModelUsed>,
    pub score_stats: BTreeMap<String, ScoreStats>,
    pub error: Option<String>,
}

fn count(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn json<T: Serialize>(v: &T) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or(serde_json::Value::Null)
}

/// Writes the `running` row.
pub async fn start(db: &Database, s: &RunStart) -> Result<(), DbError> {
    let err = |source| DbError::Query {
        target: db.target().to_string(),
        context: "writing the run's ledger row",
        source,
    };
    match db {
        Database::Postgres { pool, .. } => {
            sqlx::query(include_str!("../../sql/postgres/queries/ledger_start.sql"))
                .bind(s.run_id)
                .bind(&s.job)
                .bind(s.logical_date)
                .bind(s.started_at)
                .bind(&s.output_table)
                .bind(&s.scorer_version)
                .bind(&s.host)
                .execute(pool)
                .await
                .map_err(err)?;
        }
        Database::Sqlite { pool, .. } => {
            sqlx::query(include_str!("../../sql/sqlite/queries/ledger_start.sql"))
                .bind(s.run_id.to_string())
                .bind(&s.job)
                .bind(s.logical_date.format("%Y-%m-%d").to_string())
                .bind(s.started_at.to_rfc3339())
                .bind(&s.output_table)
                .bind(&s.scorer_version)
                .bind(&s.host)
                .execute(pool)
                .await
                .map_err(err)?;
        }
    }
    Ok(())
}

/// Completes the run's row.
pub async fn finish(db: &Database, run_id: Uuid, f: &RunFinish) -> Result<(), DbError> {
    let err = |source| DbError::Query {
        target: db.target().to_string(),
        context: "completing the run's ledger row",
        source,
    };
    let model = f.model.clone().unwrap_or_default();
    let opt = |s: &str| (!s.is_empty()).then(|| s.to_string());
    let stages = json(&f.stage_seconds);
    let inputs = json(&f.inputs);
    let stats = json(&f.score_stats);
    match db {
        Database::Postgres { pool, .. } => {
            sqlx::query(include_str!("../../sql/postgres/queries/ledger_finish.sql"))
                .bind(run_id)
                .bind(f.status.as_str())
                .bind(f.finished_at)
                .bind(count(f.rows_read))
                .bind(count(f.rows_scored))
                .bind(count(f.rows_written))
                .bind(count(f.rows_rejected))
                .bind(stages)
                .bind(inputs)
                .bind(opt(&model.name))
                .bind(opt(&model.version))
                .bind(opt(&model.sha256))
                .bind(opt(&model.device))
                .bind(stats)
                .bind(&f.error)
                .bind(&model.gpu_name)
                .execute(pool)
                .await
                .map_err(err)?;
        }
        Database::Sqlite { pool, .. } => {
            sqlx::query(include_str!("../../sql/sqlite/queries/ledger_finish.sql"))
                .bind(run_id.to_string())
                .bind(f.status.as_str())
                .bind(f.finished_at.to_rfc3339())
                .bind(count(f.rows_read))
                .bind(count(f.rows_scored))
                .bind(count(f.rows_written))
                .bind(count(f.rows_rejected))
                .bind(stages.to_string())
                .bind(inputs.to_string())
                .bind(opt(&model.name))
                .bind(opt(&model.version))
                .bind(opt(&model.sha256))
                .bind(opt(&model.device))
                .bind(stats.to_string())
                .bind(&f.error)
                .bind(&model.gpu_name)
                .execute(pool)
                .await
                .map_err(err)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn score_stats_fold() {
        let mut s = ScoreStats::default();
        for v in [1.0, 3.0, f32::NAN, 2.0] {
            s.add(v);
        }
        assert_eq!(s.count, 3);
        assert_eq!(s.nan, 1);
        assert_eq!(s.mean, Some(2.0));
        assert_eq!(s.min, Some(1.0));
        assert_eq!(s.max, Some(3.0));
    }
}
