//! Claims: the database's record of which scheduler runs which firing.
//!
//! A scheduler runs a firing only after claiming its (job, fire time) row: a new row, or one
//! whose lease ran out (its holder died, or it waits for a retry that is now due). The holder
//! renews the lease while the run lives and marks the row `done` at the end. Claiming is
//! serialised per job, and a firing is not claimed while another firing of the same job is held
//! or an older one is unfinished: a job's firings run one at a time, oldest first, across every
//! scheduler on the database. This is the pattern of graphile-worker, GoodJob and River; the
//! run's output lock stays as the second line.
//!
//! PostgreSQL keeps the clocks honest (leases are the server's `clock_timestamp()`); SQLite
//! serialises claims with `BEGIN IMMEDIATE` and uses the host's clock, which its one host shares.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use crate::db::{Database, DbError};
use crate::ledger::timestamp;

/// One firing of a job: when it was due and the date it scores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Firing {
    pub job: String,
    pub fire_at: DateTime<Utc>,
    pub logical_date: NaiveDate,
}

/// What claiming a firing came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// Ours to run; the attempt number (1 for the first).
    Taken { attempt: u32 },
    /// Finished already (by us or another scheduler).
    Done,
    /// Someone holds it, or another firing of the job must go first.
    Busy,
}

/// A firing claimed and not done, for `scorer status`.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenClaim {
    pub firing: Firing,
    /// Empty while it waits for a retry.
    pub holder: String,
    pub attempts: u32,
    /// Seconds until the lease runs out (negative: it has).
    pub lease_left: f64,
    /// Why it waits, when it does.
    pub note: String,
}

/// The claims table of one database.
#[async_trait]
pub trait Claims: Send + Sync {
    /// Claims `f` for `holder` with a lease of `lease`.
    async fn claim(&self, f: &Firing, holder: &str, lease: Duration) -> Result<Claim, DbError>;
    /// Extends the lease; `false` when the claim is no longer `holder`'s.
    async fn renew(&self, f: &Firing, holder: &str, lease: Duration) -> Result<bool, DbError>;
    /// Marks the firing done with `outcome`; `false` when it was no longer `holder`'s.
    async fn finish(
        &self,
        f: &Firing,
        holder: &str,
        outcome: &str,
        run_id: Option<Uuid>,
    ) -> Result<bool, DbError>;
    /// Gives the firing back, claimable by anyone after `after`; `note` says why.
    async fn release(
        &self,
        f: &Firing,
        holder: &str,
        note: &str,
        after: Duration,
    ) -> Result<bool, DbError>;
    /// The newest fire time the job has a row for.
    async fn latest(&self, job: &str) -> Result<Option<DateTime<Utc>>, DbError>;
    /// The job's claimed firings whose lease ran out, oldest first.
    async fn due(&self, job: &str) -> Result<Vec<Firing>, DbError>;
    /// Every firing not yet done.
    async fn open(&self) -> Result<Vec<OpenClaim>, DbError>;
}

/// The claims table in `db`.
pub fn for_database(db: &Database) -> Box<dyn Claims> {
    match db {
        Database::Postgres { pool, target } => Box::new(PgClaims {
            pool: pool.clone(),
            target: target.clone(),
        }),
        Database::Sqlite { pool, target, .. } => Box::new(SqliteClaims {
            pool: pool.clone(),
            target: target.clone(),
        }),
    }
}

fn query_err(target: &str, context: &'static str) -> impl FnOnce(sqlx::Error) -> DbError {
    let target = target.to_string();
    move |source| DbError::Query {
        target,
        context,
        source,
    }
}

fn parse_time(target: &str, value: &str) -> Result<DateTime<Utc>, DbError> {
    DateTime::parse_from_rfc3339(value)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| DbError::Ledger {
            target: target.to_string(),
            reason: format!("claims row has an unreadable time: {value}"),
        })
}

type OpenRow = (String, String, String, String, i32, f64, String);

fn firing(target: &str, job: &str, fire_at: &str, date: &str) -> Result<Firing, DbError> {
    Ok(Firing {
        job: job.to_string(),
        fire_at: parse_time(target, fire_at)?,
        logical_date: date.parse().map_err(|_| DbError::Ledger {
            target: target.to_string(),
            reason: format!("claims row has an unreadable logical_date: {date}"),
        })?,
    })
}

fn open_claim(target: &str, row: OpenRow) -> Result<OpenClaim, DbError> {
    let (job, fire_at, date, holder, attempts, lease_left, note) = row;
    Ok(OpenClaim {
        firing: firing(target, &job, &fire_at, &date)?,
        holder,
        attempts: u32::try_from(attempts).unwrap_or(0),
        lease_left,
        note,
    })
}

/// The claim's fire time as both engines bind it.
fn fire_text(f: &Firing) -> String {
    timestamp(f.fire_at)
}

fn state_claim(state: Option<String>) -> Claim {
    match state.as_deref() {
        Some("done") => Claim::Done,
        _ => Claim::Busy,
    }
}

/// PostgreSQL takes a lease as seconds (`make_interval(secs => $n)`).
fn pg_lease(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// SQLite takes a lease as a date-time modifier: `+30.000 seconds`.
fn sqlite_lease(d: Duration) -> String {
    format!("+{:.3} seconds", d.as_secs_f64())
}

/// One [`Claims`] implementation per engine from one definition, as for the ledger: the same
/// statements with the same bound values; only the SQL files (`sql/<engine>/queries/claim_*`),
/// the pool, how a lease is bound and how a claim's transaction starts (`begin_claim`, per
/// engine below) differ.
macro_rules! sql_claims {
    ($(#[$doc:meta])* $name:ident, $pool:ty, $dir:literal, $lease:path) => {
        $(#[$doc])*
        struct $name {
            pool: $pool,
            target: String,
        }

        #[async_trait]
        impl Claims for $name {
            async fn claim(
                &self,
                f: &Firing,
                holder: &str,
                lease: Duration,
            ) -> Result<Claim, DbError> {
                let err = |c| query_err(&self.target, c);
                let mut tx = self.begin_claim(&f.job).await?;
                let blockers: i64 = sqlx::query_scalar(include_str!(concat!(
                    "../../sql/", $dir, "/queries/claim_blockers.sql"
                )))
                .bind(&f.job)
                .bind(fire_text(f))
                .fetch_one(&mut *tx)
                .await
                .map_err(err("looking for other firings of the job"))?;
                if blockers > 0 {
                    tx.rollback().await.map_err(err("claiming a firing"))?;
                    return Ok(Claim::Busy);
                }
                let taken: Option<i64> = sqlx::query_scalar(include_str!(concat!(
                    "../../sql/", $dir, "/queries/claim_take.sql"
                )))
                .bind(&f.job)
                .bind(fire_text(f))
                .bind(f.logical_date.format("%Y-%m-%d").to_string())
                .bind(holder)
                .bind($lease(lease))
                .fetch_optional(&mut *tx)
                .await
                .map_err(err("claiming a firing"))?;
                let outcome = match taken {
                    Some(n) => Claim::Taken {
                        attempt: u32::try_from(n).unwrap_or(1),
                    },
                    None => state_claim(
                        sqlx::query_scalar(include_str!(concat!(
                            "../../sql/", $dir, "/queries/claim_state.sql"
                        )))
                        .bind(&f.job)
                        .bind(fire_text(f))
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(err("reading a firing's claim"))?,
                    ),
                };
                tx.commit().await.map_err(err("claiming a firing"))?;
                Ok(outcome)
            }

            async fn renew(
                &self,
                f: &Firing,
                holder: &str,
                lease: Duration,
            ) -> Result<bool, DbError> {
                let sql = include_str!(concat!("../../sql/", $dir, "/queries/claim_renew.sql"));
                let done = sqlx::query(sql)
                    .bind(&f.job)
                    .bind(fire_text(f))
                    .bind(holder)
                    .bind($lease(lease))
                    .execute(&self.pool)
                    .await
                    .map_err(query_err(&self.target, "renewing a claim"))?;
                Ok(done.rows_affected() > 0)
            }

            async fn finish(
                &self,
                f: &Firing,
                holder: &str,
                outcome: &str,
                run_id: Option<Uuid>,
            ) -> Result<bool, DbError> {
                let sql = include_str!(concat!("../../sql/", $dir, "/queries/claim_finish.sql"));
                let done = sqlx::query(sql)
                    .bind(&f.job)
                    .bind(fire_text(f))
                    .bind(holder)
                    .bind(outcome)
                    .bind(run_id.map(|r| r.to_string()))
                    .execute(&self.pool)
                    .await
                    .map_err(query_err(&self.target, "finishing a claim"))?;
                Ok(done.rows_affected() > 0)
            }

            async fn release(
                &self,
                f: &Firing,
                holder: &str,
                note: &str,
                after: Duration,
            ) -> Result<bool, DbError> {
                let sql = include_str!(concat!("../../sql/", $dir, "/queries/claim_release.sql"));
                let done = sqlx::query(sql)
                    .bind(&f.job)
                    .bind(fire_text(f))
                    .bind(holder)
                    .bind(note)
                    .bind($lease(after))
                    .execute(&self.pool)
                    .await
                    .map_err(query_err(&self.target, "releasing a claim"))?;
                Ok(done.rows_affected() > 0)
            }

            async fn latest(&self, job: &str) -> Result<Option<DateTime<Utc>>, DbError> {
                let sql = include_str!(concat!("../../sql/", $dir, "/queries/claim_latest.sql"));
                let t: Option<String> = sqlx::query_scalar(sql)
                    .bind(job)
                    .fetch_one(&self.pool)
                    .await
                    .map_err(query_err(&self.target, "reading the job's last firing"))?;
                t.map(|t| parse_time(&self.target, &t)).transpose()
            }

            async fn due(&self, job: &str) -> Result<Vec<Firing>, DbError> {
                let sql = include_str!(concat!("../../sql/", $dir, "/queries/claim_due.sql"));
                let rows: Vec<(String, String)> = sqlx::query_as(sql)
                    .bind(job)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(query_err(&self.target, "reading firings to take over"))?;
                rows.iter()
                    .map(|(t, d)| firing(&self.target, job, t, d))
                    .collect()
            }

            async fn open(&self) -> Result<Vec<OpenClaim>, DbError> {
                let sql = include_str!(concat!("../../sql/", $dir, "/queries/claim_open.sql"));
                let rows: Vec<OpenRow> = sqlx::query_as(sql)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(query_err(&self.target, "reading open claims"))?;
                rows.into_iter()
                    .map(|r| open_claim(&self.target, r))
                    .collect()
            }
        }
    };
}

sql_claims!(
    /// `scorer.claims` in PostgreSQL.
    PgClaims,
    sqlx::PgPool,
    "postgres",
    pg_lease
);
sql_claims!(
    /// `scorer_claims` in SQLite.
    SqliteClaims,
    sqlx::SqlitePool,
    "sqlite",
    sqlite_lease
);

impl PgClaims {
    /// A claim's transaction, holding the job's transaction-level advisory lock: claims of one
    /// job are made one at a time across every scheduler.
    async fn begin_claim(
        &self,
        job: &str,
    ) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, DbError> {
        let err = |c| query_err(&self.target, c);
        let mut tx = self.pool.begin().await.map_err(err("claiming a firing"))?;
        sqlx::query(include_str!(
            "../../sql/postgres/queries/claim_lock_job.sql"
        ))
        .bind(format!("scorer claims {job}"))
        .execute(&mut *tx)
        .await
        .map_err(err("locking the job's claims"))?;
        Ok(tx)
    }
}

impl SqliteClaims {
    /// A claim's transaction, `BEGIN IMMEDIATE`: the write lock from the start, so the check and
    /// the insert are one step for every process on the file.
    async fn begin_claim(
        &self,
        _job: &str,
    ) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, DbError> {
        self.pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(query_err(&self.target, "claiming a firing"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::DbTarget;

    fn firing(job: &str, day: u32) -> Firing {
        Firing {
            job: job.into(),
            fire_at: chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 11, day, 2, 0, 0).unwrap(),
            logical_date: NaiveDate::from_ymd_opt(2026, 11, day - 1).unwrap(),
        }
    }

    /// Claiming on SQLite: one holder at a time, oldest first, taken over after the lease, done
    /// stays done. (PostgreSQL's claims are exercised by the two-scheduler tests.)
    #[tokio::test]
    async fn claims_are_exclusive_ordered_and_taken_over_after_the_lease() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(&DbTarget::Sqlite(dir.path().join("s.db")))
            .await
            .unwrap();
        let c = for_database(&db);
        let lease = Duration::from_millis(300);
        let (f24, f25) = (firing("j", 24), firing("j", 25));
        assert_eq!(
            c.claim(&f24, "a", lease).await.unwrap(),
            Claim::Taken { attempt: 1 }
        );
        assert_eq!(c.claim(&f24, "b", lease).await.unwrap(), Claim::Busy);
        // Another firing of the job waits while this one is held.
        assert_eq!(c.claim(&f25, "b", lease).await.unwrap(), Claim::Busy);
        // Another job does not.
        assert_eq!(
            c.claim(&firing("k", 25), "b", lease).await.unwrap(),
            Claim::Taken { attempt: 1 }
        );
        assert!(c.renew(&f24, "a", lease).await.unwrap());
        assert!(!c.renew(&f24, "b", lease).await.unwrap());
        // a dies: after its lease, b takes the firing over (attempt 2), and a can no longer
        // renew or finish it.
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(c.due("j").await.unwrap(), vec![f24.clone()]);
        // The newer firing still waits: the older one is unfinished.
        assert_eq!(c.claim(&f25, "b", lease).await.unwrap(), Claim::Busy);
        assert_eq!(
            c.claim(&f24, "b", lease).await.unwrap(),
            Claim::Taken { attempt: 2 }
        );
        assert!(!c.finish(&f24, "a", "succeeded", None).await.unwrap());
        assert!(c.finish(&f24, "b", "succeeded", None).await.unwrap());
        assert_eq!(c.claim(&f24, "a", lease).await.unwrap(), Claim::Done);
        assert_eq!(
            c.claim(&f25, "a", lease).await.unwrap(),
            Claim::Taken { attempt: 1 }
        );
        // A release makes it claimable after the delay, by anyone.
        assert!(c.release(&f25, "a", "retry", Duration::ZERO).await.unwrap());
        assert_eq!(
            c.claim(&f25, "b", lease).await.unwrap(),
            Claim::Taken { attempt: 2 }
        );
        assert_eq!(c.latest("j").await.unwrap(), Some(f25.fire_at));
        let open = c.open().await.unwrap();
        assert_eq!(open.len(), 2, "{open:?}");
    }
}
