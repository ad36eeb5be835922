//! Where shards meet: the attempts of a date and the parts their shards staged, in the ledger's
//! database (`sql/*/migrations/0009_shards.sql`). Shards never talk to each other; each records
//! its part here and reads the others'.

use uuid::Uuid;

use crate::db::{Database, DbError};
use crate::sink::parts::{Part, PublishRecord};

/// Runs the statement in `sql/<engine>/queries/<file>` with `$body`, once per engine, so both
/// engines bind the same values in the same order.
macro_rules! each_engine {
    ($db:expr, $file:literal, |$sql:ident, $pool:ident| $body:expr) => {
        match $db {
            Database::Postgres { pool: $pool, .. } => {
                let $sql = include_str!(concat!("../../sql/postgres/queries/", $file));
                $body
            }
            Database::Sqlite { pool: $pool, .. } => {
                let $sql = include_str!(concat!("../../sql/sqlite/queries/", $file));
                $body
            }
        }
    };
}

/// Where an attempt stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptState {
    /// Its shards are staging; nothing of it is visible.
    Open,
    /// Its rows are the date's; published by this run.
    Published(Uuid),
    /// A newer attempt of the date published; its rows never will be.
    Superseded(String),
}

fn err<'a>(db: &'a Database, context: &'static str) -> impl FnOnce(sqlx::Error) -> DbError + 'a {
    move |source| DbError::Query {
        target: db.target().to_string(),
        context,
        source,
    }
}

fn unreadable(db: &Database, what: &str, value: &str) -> DbError {
    DbError::Ledger {
        target: db.target().to_string(),
        reason: format!("shard record has an unreadable {what}: {value}"),
    }
}

/// Records attempt `attempt` (the id of `a`) if it is new; returns where it stands.
pub async fn open(
    db: &Database,
    attempt: &str,
    a: &super::AttemptKey<'_>,
) -> Result<AttemptState, DbError> {
    let date = a.date.to_string();
    each_engine!(db, "shard_attempt_open.sql", |sql, pool| sqlx::query(sql)
        .bind(attempt)
        .bind(a.job)
        .bind(&date)
        .bind(a.output)
        .bind(i64::from(a.count))
        .bind(a.label)
        .execute(pool)
        .await
        .map(|_| ())
        .map_err(err(db, "recording the shard attempt"))?);
    state(db, attempt).await
}

/// Where attempt `attempt` stands.
pub async fn state(db: &Database, attempt: &str) -> Result<AttemptState, DbError> {
    let row: Option<(Option<String>, Option<String>)> =
        each_engine!(db, "shard_attempt_state.sql", |sql, pool| sqlx::query_as(
            sql
        )
        .bind(attempt)
        .fetch_optional(pool)
        .await
        .map_err(err(db, "reading the shard attempt"))?);
    Ok(match row {
        None | Some((None, None)) => AttemptState::Open,
        Some((Some(by), _)) => AttemptState::Published(
            by.parse()
                .map_err(|_| unreadable(db, "published_by", &by))?,
        ),
        Some((None, Some(by))) => AttemptState::Superseded(by),
    })
}

/// The run that staged shard `index` of `attempt`, if one did.
pub async fn part_of(db: &Database, attempt: &str, index: u32) -> Result<Option<Uuid>, DbError> {
    let row: Option<(String,)> =
        each_engine!(db, "shard_part_of.sql", |sql, pool| sqlx::query_as(sql)
            .bind(attempt)
            .bind(i64::from(index))
            .fetch_optional(pool)
            .await
            .map_err(err(db, "reading the shard's part"))?);
    row.map(|(id,)| id.parse().map_err(|_| unreadable(db, "run_id", &id)))
        .transpose()
}

/// The part's record and its run's attempt, in `$conn` (a transaction of either engine).
macro_rules! part_statements {
    ($dir:literal, $conn:expr, $attempt:expr, $index:expr, $run_id:expr, $rows:expr, $body:expr) => {
        sqlx::query(include_str!(concat!(
            "../../sql/",
            $dir,
            "/queries/shard_part_record.sql"
        )))
        .bind($attempt)
        .bind(i64::from($index))
        .bind($run_id)
        .bind($rows)
        .bind($body)
        .execute(&mut *$conn)
        .await?;
        sqlx::query(include_str!(concat!(
            "../../sql/",
            $dir,
            "/queries/shard_run_attempt.sql"
        )))
        .bind($run_id)
        .bind($attempt)
        .execute(&mut *$conn)
        .await?;
    };
}

/// Records that `part` is staged, and which attempt its run belongs to, in one transaction.
pub async fn record(db: &Database, attempt: &str, part: &Part) -> Result<(), DbError> {
    let body = serde_json::to_string(&part.body).map_err(|e| DbError::Ledger {
        target: db.target().to_string(),
        reason: format!("cannot encode the shard's part: {e}"),
    })?;
    let run_id = part.run_id.to_string();
    let rows = i64::try_from(part.rows).unwrap_or(i64::MAX);
    let result: Result<(), sqlx::Error> = async {
        match db {
            Database::Postgres { pool, .. } => {
                let mut tx = pool.begin().await?;
                part_statements!("postgres", tx, attempt, part.index, &run_id, rows, &body);
                tx.commit().await
            }
            Database::Sqlite { pool, .. } => {
                let mut tx = pool.begin().await?;
                part_statements!("sqlite", tx, attempt, part.index, &run_id, rows, &body);
                tx.commit().await
            }
        }
    }
    .await;
    result.map_err(err(db, "recording the shard's part"))
}

type PartRow = (i64, String, i64, String);

fn part(db: &Database, (index, run_id, rows, body): PartRow) -> Result<Part, DbError> {
    Ok(Part {
        index: u32::try_from(index)
            .map_err(|_| unreadable(db, "shard_index", &index.to_string()))?,
        run_id: run_id
            .parse()
            .map_err(|_| unreadable(db, "run_id", &run_id))?,
        rows: u64::try_from(rows).unwrap_or(0),
        body: serde_json::from_str(&body).map_err(|e| unreadable(db, "body", &e.to_string()))?,
    })
}

/// The parts `attempt`'s shards staged, by shard.
pub async fn parts(db: &Database, attempt: &str) -> Result<Vec<Part>, DbError> {
    let rows: Vec<PartRow> = each_engine!(db, "shard_parts.sql", |sql, pool| sqlx::query_as(sql)
        .bind(attempt)
        .fetch_all(pool)
        .await
        .map_err(err(db, "reading the shards' parts"))?);
    rows.into_iter().map(|r| part(db, r)).collect()
}

/// The parts staged by the attempts `attempt` superseded.
pub async fn superseded_parts(db: &Database, attempt: &str) -> Result<Vec<Part>, DbError> {
    let rows: Vec<PartRow> = each_engine!(db, "shard_superseded_parts.sql", |sql, pool| {
        sqlx::query_as(sql)
            .bind(attempt)
            .fetch_all(pool)
            .await
            .map_err(err(db, "reading the superseded parts"))?
    });
    rows.into_iter().map(|r| part(db, r)).collect()
}

/// Drops the part records of the attempts `attempt` superseded, once their staging is gone.
pub async fn forget_superseded(db: &Database, attempt: &str) -> Result<(), DbError> {
    each_engine!(db, "shard_forget_parts.sql", |sql, pool| sqlx::query(sql)
        .bind(attempt)
        .execute(pool)
        .await
        .map(|_| ())
        .map_err(err(db, "forgetting the superseded parts"))?);
    Ok(())
}

/// The statements that make `attempt` the date's: marked published by `run_id`, every other
/// unpublished attempt of the date superseded, and the shard runs' ledger rows updated (`rows` in
/// all). Run inside the transaction that publishes (PostgreSQL tables) or right after the
/// manifest's PUT (Parquet).
pub struct Publication<'a> {
    pub attempt: &'a str,
    pub run_id: Uuid,
    pub output: &'a str,
    pub date: chrono::NaiveDate,
    pub rows: u64,
}

macro_rules! publication_statements {
    ($dir:literal, $p:expr, $conn:expr, $err:expr) => {{
        let run_id = $p.run_id.to_string();
        let date = $p.date.to_string();
        let rows = i64::try_from($p.rows).unwrap_or(i64::MAX);
        sqlx::query(include_str!(concat!(
            "../../sql/",
            $dir,
            "/queries/shard_attempt_published.sql"
        )))
        .bind($p.attempt)
        .bind(&run_id)
        .execute(&mut *$conn)
        .await
        .map_err($err)?;
        sqlx::query(include_str!(concat!(
            "../../sql/",
            $dir,
            "/queries/shard_supersede.sql"
        )))
        .bind($p.attempt)
        .bind($p.output)
        .bind(&date)
        .execute(&mut *$conn)
        .await
        .map_err($err)?;
        sqlx::query(include_str!(concat!(
            "../../sql/",
            $dir,
            "/queries/shard_runs_published.sql"
        )))
        .bind($p.attempt)
        .bind(rows)
        .execute(&mut *$conn)
        .await
        .map_err($err)?;
    }};
}

#[async_trait::async_trait]
impl PublishRecord for Publication<'_> {
    async fn in_pg(&self, tx: &mut sqlx::PgConnection) -> Result<(), sqlx::Error> {
        publication_statements!("postgres", self, tx, |e| e);
        Ok(())
    }

    async fn commit(&self, db: &Database) -> Result<(), DbError> {
        let e = err(db, "recording the attempt's publication");
        let result: Result<(), sqlx::Error> = async {
            match db {
                Database::Postgres { pool, .. } => {
                    let mut tx = pool.begin().await?;
                    self.in_pg(&mut tx).await?;
                    tx.commit().await
                }
                Database::Sqlite { pool, .. } => {
                    let mut tx = pool.begin().await?;
                    publication_statements!("sqlite", self, tx, |e| e);
                    tx.commit().await
                }
            }
        }
        .await;
        result.map_err(e)
    }
}

/// After shard run `run_id` of `attempt` finished as `staged`: marks it `succeeded` if the
/// attempt was published while it finished (or `superseded`), so the ledger never keeps a
/// `staged` row of a settled attempt, whichever order the shards ended in.
pub async fn settle_run(db: &Database, attempt: &str, run_id: Uuid) -> Result<(), DbError> {
    let run_id = run_id.to_string();
    each_engine!(db, "shard_run_settle.sql", |sql, pool| sqlx::query(sql)
        .bind(&run_id)
        .bind(attempt)
        .execute(pool)
        .await
        .map(|_| ())
        .map_err(err(db, "settling the shard run's ledger row"))?);
    Ok(())
}

/// Whether run `run_id` staged a shard part: its staging then belongs to the attempt, and a
/// sweep that finds the run dead must leave it.
pub async fn is_part(db: &Database, run_id: Uuid) -> Result<bool, DbError> {
    let run_id = run_id.to_string();
    Ok(each_engine!(db, "shard_is_part.sql", |sql, pool| {
        sqlx::query_scalar(sql)
            .bind(&run_id)
            .fetch_one(pool)
            .await
            .map_err(err(db, "looking up the run's shard part"))?
    }))
}

/// An unpublished attempt none of whose shards is running ([`stalled`]).
#[derive(Debug, Clone)]
pub struct StalledAttempt {
    pub attempt: String,
    pub job: String,
    pub output: String,
    pub date: chrono::NaiveDate,
    pub count: u32,
    /// How many of its shards staged a part.
    pub staged: u32,
    /// Seconds since it was opened or a part was last staged.
    pub idle_seconds: f64,
}

/// The unpublished, unsuperseded attempts (of `job`, or of every job) of which no shard run of
/// their output and date is running: what `scorer gc` expires once idle long enough.
pub async fn stalled(db: &Database, job: Option<&str>) -> Result<Vec<StalledAttempt>, DbError> {
    type Row = (String, String, String, String, i64, i64, f64);
    let rows: Vec<Row> = each_engine!(db, "shard_attempts_stalled.sql", |sql, pool| {
        sqlx::query_as(sql)
            .bind(job)
            .fetch_all(pool)
            .await
            .map_err(err(db, "listing the unpublished shard attempts"))?
    });
    rows.into_iter()
        .map(|(attempt, job, output, date, count, staged, idle)| {
            Ok(StalledAttempt {
                date: date
                    .parse()
                    .map_err(|_| unreadable(db, "logical_date", &date))?,
                count: u32::try_from(count).map_err(|_| unreadable(db, "shard_count", &attempt))?,
                staged: u32::try_from(staged).unwrap_or(0),
                idle_seconds: idle,
                attempt,
                job,
                output,
            })
        })
        .collect()
}

macro_rules! expire_statements {
    ($dir:literal, $conn:expr, $attempt:expr, $note:expr) => {
        sqlx::query(include_str!(concat!(
            "../../sql/",
            $dir,
            "/queries/shard_attempt_expire_runs.sql"
        )))
        .bind($attempt)
        .bind($note)
        .execute(&mut *$conn)
        .await?;
        sqlx::query(include_str!(concat!(
            "../../sql/",
            $dir,
            "/queries/shard_attempt_forget_parts.sql"
        )))
        .bind($attempt)
        .execute(&mut *$conn)
        .await?;
        sqlx::query(include_str!(concat!(
            "../../sql/",
            $dir,
            "/queries/shard_attempt_forget.sql"
        )))
        .bind($attempt)
        .execute(&mut *$conn)
        .await?;
    };
}

/// Forgets expired attempt `attempt` in one transaction, once its parts' staging is dropped:
/// its `staged` shard runs become `abandoned` (with `note`), its part records and the attempt
/// are deleted, so that its shards, retried, start a new attempt of the same id.
pub async fn expire(db: &Database, attempt: &str, note: &str) -> Result<(), DbError> {
    let result: Result<(), sqlx::Error> = async {
        match db {
            Database::Postgres { pool, .. } => {
                let mut tx = pool.begin().await?;
                expire_statements!("postgres", tx, attempt, note);
                tx.commit().await
            }
            Database::Sqlite { pool, .. } => {
                let mut tx = pool.begin().await?;
                expire_statements!("sqlite", tx, attempt, note);
                tx.commit().await
            }
        }
    }
    .await;
    result.map_err(err(db, "expiring the shard attempt"))
}
