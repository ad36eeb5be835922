//! The database that holds results and the run ledger: PostgreSQL when `DATABASE_URL` names one,
//! otherwise an embedded SQLite file. Connection strings are redacted in every message. The
//! per-(output, date) locks a run holds live in [`lock`].

pub mod lock;

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use sqlx::ConnectOptions;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use thiserror::Error;

use crate::error::{ErrorClass, sqlx_class};
use lock::{FileLock, OutputLock, PgAdvisoryLock, lock_key};

/// The key of the file lock that serialises opening a SQLite file (WAL switch, migrations).
const MIGRATIONS_LOCK: &str = "scorer migrations";

/// The most PostgreSQL connections one process's pool opens: a run's ledger's and drift baseline
/// read's, and one per COPY stream, up to `MAX_COPY_STREAMS` (the lock's connection leaves the
/// pool).
pub const MAX_SESSIONS: usize = MAX_COPY_STREAMS + 2;

/// Most COPY sessions one run may open (the PostgreSQL pool holds 8 connections).
pub const MAX_COPY_STREAMS: usize = 6;

/// Where results and the ledger go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbTarget {
    /// `postgres://...` or `postgresql://...`
    Postgres(String),
    /// The embedded default.
    Sqlite(PathBuf),
}

/// A database that could not be opened or prepared; the URL in it is redacted.
#[derive(Debug, Error)]
pub enum DbError {
    #[error("database {target}: {reason}")]
    Url { target: String, reason: String },
    #[error("database {target}: cannot connect: {source}")]
    Connect { target: String, source: sqlx::Error },
    #[error("database {target}: applying migrations failed: {source}")]
    Migrate {
        target: String,
        source: sqlx::migrate::MigrateError,
    },
    /// The ledger was migrated by a newer scorer than this one: this binary refuses to touch
    /// it (an older binary could misread or miswrite the newer layout).
    #[error(
        "database {target}: its ledger was migrated by a newer scorer (ledger schema {applied}{by}; this scorer {ours} knows schemas up to {known}); nothing was written: run a scorer at least as new as the one that migrated it (README, \"Upgrading\")"
    )]
    NewerLedger {
        target: String,
        applied: i64,
        known: i64,
        by: String,
        ours: &'static str,
    },
    #[error("lock file {path}: {reason}")]
    LockFile { path: PathBuf, reason: String },
    #[error("database {target}: {reason}")]
    Ledger { target: String, reason: String },
    #[error("database {target}: {context}: {source}")]
    Query {
        target: String,
        context: &'static str,
        source: sqlx::Error,
    },
}

impl DbError {
    /// What kind of failure this is, from sqlx's typed error: an unreachable server is
    /// transient, a refused login or a missing database is configuration.
    pub fn class(&self) -> ErrorClass {
        match self {
            Self::Url { .. } | Self::LockFile { .. } | Self::NewerLedger { .. } => {
                ErrorClass::Config
            }
            Self::Connect { source, .. } | Self::Query { source, .. } => sqlx_class(source),
            Self::Migrate { source, .. } => match source {
                sqlx::migrate::MigrateError::Execute(e)
                | sqlx::migrate::MigrateError::ExecuteMigration(e, _) => sqlx_class(e),
                // A migration this binary does not know was applied: an older scorer against a
                // newer database.
                _ => ErrorClass::Config,
            },
            Self::Ledger { .. } => ErrorClass::Internal,
        }
    }
}

/// The refusal of a ledger migrated past what this binary knows; `by` is the scorer version
/// its newest run recorded, when there is one.
fn newer_ledger(target: String, applied: i64, known: i64, by: Option<String>) -> DbError {
    DbError::NewerLedger {
        target,
        applied,
        known,
        by: by
            .map(|v| format!(", whose newest run was by scorer {v}"))
            .unwrap_or_default(),
        ours: env!("CARGO_PKG_VERSION"),
    }
}

/// Waits (at most a second) until `count` connections are idle in `pool`. Dropped connections
/// go back to the pool through tasks of their own; an acquire before they are back would open
/// one more. A connection that fails its return is closed instead, so the wait is bounded.
async fn settle(pool: &sqlx::PgPool, count: usize) {
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        while pool.num_idle() < count.min(pool.size() as usize) {
            tokio::task::yield_now().await;
        }
    })
    .await;
}

/// How long the first connections may take before one direct attempt asks why.
const DIAGNOSE_AFTER: Duration = Duration::from_secs(1);

/// Acquires `n` connections from `pool`. The pool retries a refused connection until its
/// acquire timeout (30 s) and then says only "pool timed out"; a typo in the port would cost
/// that wait and hide the cause. So when nothing has come after [`DIAGNOSE_AFTER`], one direct
/// connection attempt runs beside the pool's: its error (refused, DNS, TLS, authentication) is
/// returned at once. If it connects, the server is there but slow, and the pool is waited for.
async fn acquire_or_say_why(
    pool: &sqlx::PgPool,
    options: &PgConnectOptions,
    n: usize,
) -> Result<Vec<sqlx::pool::PoolConnection<sqlx::Postgres>>, sqlx::Error> {
    use sqlx::Connection;
    let acquire = futures::future::try_join_all((0..n).map(|_| pool.acquire()));
    tokio::pin!(acquire);
    tokio::select! {
        done = &mut acquire => return done,
        () = tokio::time::sleep(DIAGNOSE_AFTER) => {}
    }
    let probe = tokio::select! {
        done = &mut acquire => return done,
        probe = sqlx::PgConnection::connect_with(options) => probe,
    };
    match probe {
        Err(cause) => Err(cause),
        Ok(connection) => {
            let _ = connection.close().await;
            acquire.await
        }
    }
}

impl DbTarget {
    /// `DATABASE_URL` if given (postgres or sqlite URL), else the SQLite file.
    pub fn choose(database_url: Option<&str>, sqlite_path: PathBuf) -> Result<Self, DbError> {
        match database_url.map(str::trim).filter(|u| !u.is_empty()) {
            None => Ok(Self::Sqlite(sqlite_path)),
            Some(u) if u.starts_with("postgres://") || u.starts_with("postgresql://") => {
                Ok(Self::Postgres(u.to_string()))
            }
            Some(u) if u.starts_with("sqlite://") => Ok(Self::Sqlite(PathBuf::from(
                u.trim_start_matches("sqlite://"),
            ))),
            Some(u) => Err(DbError::Url {
                target: redact(u),
                reason: "DATABASE_URL must start with postgres://, postgresql:// or sqlite://"
                    .into(),
            }),
        }
    }

    /// A printable description with any password removed.
    pub fn describe(&self) -> String {
        match self {
            Self::Postgres(u) => redact(u),
            Self::Sqlite(p) => format!("sqlite {}", p.display()),
        }
    }
}

/// Replaces the password in a URL with `***`, wherever libpq-style URLs can carry one: the
/// userinfo (`postgres://u:pw@h/db`) and the `password` and `sslpassword` query parameters
/// (`postgres://h/db?password=pw`).
pub fn redact(url: &str) -> String {
    let Ok(mut u) = url::Url::parse(url) else {
        return "<unparseable database URL>".to_string();
    };
    if u.password().is_some() {
        let _ = u.set_password(Some("***"));
    }
    let secret = |k: &str| matches!(k.to_ascii_lowercase().as_str(), "password" | "sslpassword");
    if u.query_pairs().any(|(k, _)| secret(&k)) {
        let pairs: Vec<(String, String)> = u
            .query_pairs()
            .map(|(k, v)| {
                let v = if secret(&k) {
                    "***".to_string()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        u.query_pairs_mut().clear().extend_pairs(pairs);
    }
    u.to_string()
}

/// An open, migrated database.
#[derive(Debug, Clone)]
pub enum Database {
    Postgres {
        pool: PgPool,
        target: String,
    },
    Sqlite {
        pool: SqlitePool,
        target: String,
        /// The database file; its lock files live beside it.
        path: PathBuf,
    },
}

impl Database {
    /// Connects and applies the ledger migrations in `sql/<engine>/migrations`.
    pub async fn open(target: &DbTarget) -> Result<Self, DbError> {
        Self::open_with_sessions(target, 1).await
    }

    /// [`Database::open`], with `sessions` PostgreSQL connections opened side by side (at most
    /// [`MAX_SESSIONS`]); SQLite ignores it. A run needs several at once (its ledger's, its
    /// lock's, one per COPY stream): opened one after another, each pays the connection set-up
    /// in turn. With TLS that is ~40–120 ms each here, since sqlx 0.9.0 leaves Nagle's algorithm
    /// on during the handshake (sqlx issue 4335); side by side the run pays it once.
    pub async fn open_with_sessions(target: &DbTarget, sessions: usize) -> Result<Self, DbError> {
        let described = target.describe();
        match target {
            DbTarget::Postgres(url) => {
                let options =
                    PgConnectOptions::from_str(url).map_err(|source| DbError::Connect {
                        target: described.clone(),
                        source,
                    })?;
                let options = options.log_statements(tracing::log::LevelFilter::Debug);
                let pool = PgPoolOptions::new()
                    .max_connections(MAX_SESSIONS as u32)
                    .acquire_timeout(Duration::from_secs(30))
                    .connect_lazy_with(options.clone());
                // Opened and handed back to the pool; the first error is the connection's.
                let opened = acquire_or_say_why(&pool, &options, sessions.clamp(1, MAX_SESSIONS))
                    .await
                    .map_err(|source| DbError::Connect {
                        target: described.clone(),
                        source,
                    })?;
                let count = opened.len();
                drop(opened);
                settle(&pool, count).await;
                let mut migrator = sqlx::migrate!("../../sql/postgres/migrations");
                migrator.create_schema("scorer");
                migrator.dangerous_set_table_name("scorer._sqlx_migrations");
                let known = migrator.iter().map(|m| m.version).max().unwrap_or(0);
                let applied: Option<i64> =
                    sqlx::query_scalar("SELECT max(version) FROM scorer._sqlx_migrations")
                        .fetch_one(&pool)
                        .await
                        .unwrap_or(None);
                if let Some(applied) = applied.filter(|a| *a > known) {
                    let by: Option<String> = sqlx::query_scalar(
                        "SELECT scorer_version FROM scorer.runs ORDER BY started_at DESC LIMIT 1",
                    )
                    .fetch_optional(&pool)
                    .await
                    .unwrap_or(None);
                    return Err(newer_ledger(described, applied, known, by));
                }
                migrator
                    .run(&pool)
                    .await
                    .map_err(|source| DbError::Migrate {
                        target: described.clone(),
                        source,
                    })?;
                // The migrations' connection goes back through a task of its own too: wait for
                // it, so the run's first acquires find every opened session idle.
                settle(&pool, count).await;
                Ok(Self::Postgres {
                    pool,
                    target: described,
                })
            }
            DbTarget::Sqlite(path) => {
                // One opener at a time, across processes and runs in one process: the first
                // connection switches a new file to WAL, which takes an exclusive lock that
                // another opener would meet as "database is locked" before its busy timeout
                // applies; then the migrations (sqlx takes no lock around SQLite migrations:
                // two runs opening a new file at once would both create the ledger).
                let migrating = FileLock::acquire(path, MIGRATIONS_LOCK).await?;
                let options = SqliteConnectOptions::new()
                    .filename(path)
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .busy_timeout(Duration::from_secs(30));
                let pool = SqlitePoolOptions::new()
                    .max_connections(4)
                    .connect_with(options)
                    .await
                    .map_err(|source| DbError::Connect {
                        target: described.clone(),
                        source,
                    })?;
                let migrator = sqlx::migrate!("../../sql/sqlite/migrations");
                let known = migrator.iter().map(|m| m.version).max().unwrap_or(0);
                let applied: Option<i64> =
                    sqlx::query_scalar("SELECT max(version) FROM _sqlx_migrations")
                        .fetch_one(&pool)
                        .await
                        .unwrap_or(None);
                if let Some(applied) = applied.filter(|a| *a > known) {
                    let by: Option<String> = sqlx::query_scalar(
                        "SELECT scorer_version FROM scorer_runs ORDER BY started_at DESC LIMIT 1",
                    )
                    .fetch_optional(&pool)
                    .await
                    .unwrap_or(None);
                    return Err(newer_ledger(described, applied, known, by));
                }
                migrator
                    .run(&pool)
                    .await
                    .map_err(|source| DbError::Migrate {
                        target: described.clone(),
                        source,
                    })?;
                drop(migrating);
                Ok(Self::Sqlite {
                    pool,
                    target: described,
                    path: path.clone(),
                })
            }
        }
    }

    /// The redacted description of where this database is.
    pub fn target(&self) -> &str {
        match self {
            Self::Postgres { target, .. } | Self::Sqlite { target, .. } => target,
        }
    }

    /// Takes the lock on `output` (a table name or output URL) for `date`; `Ok(None)` means
    /// another run holds it. PostgreSQL: an advisory lock on a connection of its own; SQLite: a
    /// file lock beside the database file (`lock`).
    pub async fn try_lock_output(
        &self,
        output: &str,
        date: chrono::NaiveDate,
    ) -> Result<Option<Box<dyn OutputLock>>, DbError> {
        let key = lock_key(output, date);
        Ok(match self {
            Self::Postgres { pool, target } => PgAdvisoryLock::try_acquire(pool, target, &key)
                .await?
                .map(|l| Box::new(l) as Box<dyn OutputLock>),
            Self::Sqlite { path, .. } => {
                FileLock::try_acquire(path, &key)?.map(|l| Box::new(l) as Box<dyn OutputLock>)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords() {
        let r = redact("postgres://scorer:hunter2@db:5432/x");
        assert!(!r.contains("hunter2"), "{r}");
        assert!(r.contains("***"), "{r}");
        assert_eq!(redact("not a url"), "<unparseable database URL>");
        let r = redact("postgres://db:5432/x?user=scorer&password=hunter2&sslmode=require");
        assert!(!r.contains("hunter2"), "{r}");
        assert!(
            r.contains("password=***") && r.contains("sslmode=require"),
            "{r}"
        );
        let r = redact("postgres://db/x?PassWord=hunter2&sslpassword=key-secret");
        assert!(!r.contains("hunter2") && !r.contains("key-secret"), "{r}");
    }

    #[test]
    fn chooses_the_database() {
        let p = PathBuf::from("scorer.db");
        assert_eq!(
            DbTarget::choose(None, p.clone()).unwrap(),
            DbTarget::Sqlite(p.clone())
        );
        assert!(matches!(
            DbTarget::choose(Some("postgres://h/db"), p.clone()).unwrap(),
            DbTarget::Postgres(_)
        ));
        let e = DbTarget::choose(Some("mysql://u:pw@h/db"), p)
            .unwrap_err()
            .to_string();
        assert!(!e.contains("pw@"), "{e}");
    }
}
