//! The [`Ledger`] implementations for PostgreSQL and SQLite. Both are generated from one
//! definition: the statements are the same calls with the same bound values, and only the SQL
//! file they read (`sql/postgres/queries/` or `sql/sqlite/queries/`) and the pool type differ.

use async_trait::async_trait;
use chrono::Utc;
use uuid::Uuid;

use super::{
    BaselineRow, FinishValues, Ledger, RecentQuery, RecordedRow, RecordedRun, RunFinish, RunStart,
    RunStatus, RunSummary, RunningRow, RunningRun, StartValues, SummaryRow, baseline, bind_finish,
    bind_start, recorded_run, run_summary, running_run, timestamp,
};
use crate::db::DbError;
use crate::drift::Baseline;

macro_rules! sql_ledger {
    ($(#[$doc:meta])* $name:ident, $pool:ty, $dir:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone)]
        pub struct $name {
            pool: $pool,
            target: String,
        }

        impl $name {
            /// The ledger in the database behind `pool` (`target` is its redacted description).
            pub fn new(pool: $pool, target: &str) -> Self {
                Self {
                    pool,
                    target: target.to_string(),
                }
            }

            fn err(&self, context: &'static str) -> impl FnOnce(sqlx::Error) -> DbError + '_ {
                move |source| DbError::Query {
                    target: self.target.clone(),
                    context,
                    source,
                }
            }
        }

        #[async_trait]
        impl Ledger for $name {
            async fn start(&self, s: &RunStart) -> Result<(), DbError> {
                let v = StartValues::from(s);
                let sql = include_str!(concat!("../../sql/", $dir, "/queries/ledger_start.sql"));
                bind_start!(sqlx::query(sql), v)
                    .execute(&self.pool)
                    .await
                    .map_err(self.err("writing the run's ledger row"))?;
                Ok(())
            }

            async fn heartbeat(&self, run_id: Uuid) -> Result<(), DbError> {
                let sql =
                    include_str!(concat!("../../sql/", $dir, "/queries/ledger_heartbeat.sql"));
                sqlx::query(sql)
                    .bind(run_id.to_string())
                    .bind(timestamp(Utc::now()))
                    .execute(&self.pool)
                    .await
                    .map_err(self.err("refreshing the run's heartbeat"))?;
                Ok(())
            }

            async fn finish(&self, run_id: Uuid, f: &RunFinish) -> Result<(), DbError> {
                let v = FinishValues::new(run_id, f);
                let sql = include_str!(concat!("../../sql/", $dir, "/queries/ledger_finish.sql"));
                bind_finish!(sqlx::query(sql), v)
                    .execute(&self.pool)
                    .await
                    .map_err(self.err("completing the run's ledger row"))?;
                Ok(())
            }

            async fn running(&self, job: Option<&str>) -> Result<Vec<RunningRun>, DbError> {
                let sql = include_str!(concat!("../../sql/", $dir, "/queries/ledger_running.sql"));
                let rows: Vec<RunningRow> = sqlx::query_as(sql)
                    .bind(job)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(self.err("listing running runs"))?;
                rows.into_iter()
                    .map(|row| running_run(&self.target, row))
                    .collect()
            }

            async fn abandon(&self, run_id: Uuid, note: &str) -> Result<bool, DbError> {
                let sql = include_str!(concat!("../../sql/", $dir, "/queries/ledger_abandon.sql"));
                let done = sqlx::query(sql)
                    .bind(run_id.to_string())
                    .bind(timestamp(Utc::now()))
                    .bind(note)
                    .execute(&self.pool)
                    .await
                    .map_err(self.err("marking a run abandoned"))?;
                Ok(done.rows_affected() > 0)
            }

            async fn recorded(
                &self,
                job: &str,
                date: chrono::NaiveDate,
            ) -> Result<Option<RecordedRun>, DbError> {
                let sql =
                    include_str!(concat!("../../sql/", $dir, "/queries/ledger_recorded.sql"));
                let row: Option<RecordedRow> = sqlx::query_as(sql)
                    .bind(job)
                    .bind(date.format("%Y-%m-%d").to_string())
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(self.err("reading what a past run used"))?;
                let Some(row) = row else {
                    return Ok(None);
                };
                // A shard run read a share: the date's input is every shard's of its attempt.
                let rows = match &row.5 {
                    Some(attempt) => {
                        let sql = include_str!(concat!(
                            "../../sql/",
                            $dir,
                            "/queries/ledger_recorded_attempt.sql"
                        ));
                        sqlx::query_as(sql)
                            .bind(attempt)
                            .fetch_all(&self.pool)
                            .await
                            .map_err(self.err("reading what a past sharded run used"))?
                    }
                    None => vec![row],
                };
                recorded_run(&self.target, rows).map(Some)
            }

            async fn baseline(&self, job: &str) -> Result<Option<Baseline>, DbError> {
                let sql =
                    include_str!(concat!("../../sql/", $dir, "/queries/ledger_baseline.sql"));
                let row: Option<BaselineRow> = sqlx::query_as(sql)
                    .bind(job)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(self.err("reading the drift baseline"))?;
                row.map(|r| baseline(&self.target, r)).transpose()
            }

            async fn recent(&self, q: &RecentQuery<'_>) -> Result<Vec<RunSummary>, DbError> {
                let sql = include_str!(concat!("../../sql/", $dir, "/queries/ledger_recent.sql"));
                let rows: Vec<SummaryRow> = sqlx::query_as(sql)
                    .bind(q.job)
                    .bind(q.date.map(|d| d.format("%Y-%m-%d").to_string()))
                    .bind(q.status.map(RunStatus::as_str))
                    .bind(i64::from(q.limit))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(self.err("reading recent runs"))?;
                rows.into_iter()
                    .map(|row| run_summary(&self.target, row))
                    .collect()
            }
        }
    };
}

sql_ledger!(
    /// The ledger in PostgreSQL: `scorer.runs`.
    PgLedger,
    sqlx::postgres::PgPool,
    "postgres"
);
sql_ledger!(
    /// The ledger in SQLite: `scorer_runs`.
    SqliteLedger,
    sqlx::sqlite::SqlitePool,
    "sqlite"
);
