//! One run per output and date. Two runs that write the same table (or output URL) for the same
//! date, whether of one job or of two, must not interleave: the second gets exit code 5 at once.
//!
//! - PostgreSQL ledger: a session advisory lock on a connection of its own, keyed by output and
//!   date. It ends when the run releases it or its process dies; if its connection is killed (or
//!   a pooler hands the session to someone else) the lock is gone, and [`OutputLock::verify`]
//!   says so, which the run checks on every heartbeat and again just before it publishes.
//! - SQLite ledger: an exclusive file lock (`flock`) on `<database>.locks/<key hash>.lock`; the
//!   kernel releases it when the process dies.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use chrono::NaiveDate;
use sha2::{Digest, Sha256};
use sqlx::Connection;
use sqlx::postgres::{PgConnection, PgPool};
use thiserror::Error;

use crate::db::DbError;

/// The lock of an output and date was lost while the run held it.
#[derive(Debug, Error)]
#[error("lost the lock on {key}: {reason}")]
pub struct LockLost {
    pub key: String,
    pub reason: String,
}

/// A held lock on one output and date.
#[async_trait]
pub trait OutputLock: Send {
    /// The key the lock is held on (`scorer output <output> <date>`), for messages.
    fn key(&self) -> &str;
    /// Confirms the lock is still held.
    async fn verify(&mut self) -> Result<(), LockLost>;
    /// Releases the lock.
    async fn release(self: Box<Self>);
}

/// The lock key of an output (a table name or an output URL) and a date.
pub fn lock_key(output: &str, date: NaiveDate) -> String {
    format!("scorer output {output} {}", date.format("%Y-%m-%d"))
}

/// A PostgreSQL session advisory lock, held on its own connection.
pub struct PgAdvisoryLock {
    key: String,
    conn: Option<PgConnection>,
}

impl PgAdvisoryLock {
    /// Takes the lock on `key` if it is free; `Ok(None)` means another session holds it.
    pub async fn try_acquire(
        pool: &PgPool,
        target: &str,
        key: &str,
    ) -> Result<Option<Self>, DbError> {
        let err = |context| {
            let target = target.to_string();
            move |source| DbError::Query {
                target,
                context,
                source,
            }
        };
        let mut conn = pool
            .acquire()
            .await
            .map_err(err("connecting for the output lock"))?
            .detach();
        let got: bool = sqlx::query_scalar(include_str!(
            "../../../../sql/postgres/queries/try_output_lock.sql"
        ))
        .bind(key)
        .fetch_one(&mut conn)
        .await
        .map_err(err("taking the output lock"))?;
        if got {
            Ok(Some(Self {
                key: key.to_string(),
                conn: Some(conn),
            }))
        } else {
            close(conn).await;
            Ok(None)
        }
    }
}

async fn close(conn: PgConnection) {
    if let Err(e) = conn.close().await {
        tracing::debug!(error = %e, "closing a lock connection");
    }
}

#[async_trait]
impl OutputLock for PgAdvisoryLock {
    fn key(&self) -> &str {
        &self.key
    }

    async fn verify(&mut self) -> Result<(), LockLost> {
        let lost = |reason: String| LockLost {
            key: self.key.clone(),
            reason,
        };
        let Some(conn) = self.conn.as_mut() else {
            return Err(lost("already released".into()));
        };
        let held: Result<bool, sqlx::Error> = sqlx::query_scalar(include_str!(
            "../../../../sql/postgres/queries/output_lock_held.sql"
        ))
        .fetch_one(conn)
        .await;
        match held {
            Ok(true) => Ok(()),
            Ok(false) => Err(lost(
                "this session no longer holds it (a connection pooler in between?)".into(),
            )),
            Err(e) => Err(lost(format!("its connection failed: {e}"))),
        }
    }

    async fn release(mut self: Box<Self>) {
        // Closing the session releases its advisory locks.
        if let Some(conn) = self.conn.take() {
            close(conn).await;
        }
    }
}

/// An exclusive `flock` on a file beside the SQLite database.
pub struct FileLock {
    key: String,
    path: PathBuf,
    /// Held open for the lock's life; closing it releases the lock.
    _file: File,
}

impl FileLock {
    /// The lock file for `key` beside the SQLite database at `database`.
    pub fn path_for(database: &Path, key: &str) -> PathBuf {
        let mut dir = database.as_os_str().to_owned();
        dir.push(".locks");
        let hash = hex::encode(Sha256::digest(key.as_bytes()));
        PathBuf::from(dir).join(format!("{}.lock", &hash[..24]))
    }

    /// Takes the lock on `key` if it is free; `Ok(None)` means another process holds it.
    pub fn try_acquire(database: &Path, key: &str) -> Result<Option<Self>, DbError> {
        let (path, file) = open_lock_file(database, key)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(Self::held(key, path, file))),
            Err(TryLockError::WouldBlock) => Ok(None),
            Err(TryLockError::Error(e)) => Err(DbError::LockFile {
                path,
                reason: format!("cannot lock: {e}"),
            }),
        }
    }

    /// Takes the lock on `key`, waiting (on the blocking pool) while another holder has it. For
    /// short critical sections, like applying migrations to a new database file.
    pub async fn acquire(database: &Path, key: &str) -> Result<Self, DbError> {
        let (path, file) = open_lock_file(database, key)?;
        let waiting = path.clone();
        let file = tokio::task::spawn_blocking(move || file.lock().map(|()| file))
            .await
            .map_err(|e| DbError::LockFile {
                path: waiting.clone(),
                reason: format!("the waiting task failed: {e}"),
            })?
            .map_err(|e| DbError::LockFile {
                path: waiting,
                reason: format!("cannot lock: {e}"),
            })?;
        Ok(Self::held(key, path, file))
    }

    fn held(key: &str, path: PathBuf, mut file: File) -> Self {
        // For whoever looks in the directory: what this file guards.
        let _ = file.set_len(0).and_then(|()| writeln!(file, "{key}"));
        Self {
            key: key.to_string(),
            path,
            _file: file,
        }
    }

    /// Where the lock file is.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Opens (creating it and its directory if needed) the lock file for `key`.
fn open_lock_file(database: &Path, key: &str) -> Result<(PathBuf, File), DbError> {
    let path = FileLock::path_for(database, key);
    let err = |reason: String| DbError::LockFile {
        path: path.clone(),
        reason,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| err(format!("cannot create: {e}")))?;
    }
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| err(format!("cannot open: {e}")))?;
    Ok((path, file))
}

#[async_trait]
impl OutputLock for FileLock {
    fn key(&self) -> &str {
        &self.key
    }

    async fn verify(&mut self) -> Result<(), LockLost> {
        // A flock held by an open descriptor cannot be taken away from this process.
        Ok(())
    }

    async fn release(self: Box<Self>) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_lock_is_exclusive_until_released() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("scorer.db");
        let key = lock_key(
            "scores.daily",
            NaiveDate::from_ymd_opt(2026, 11, 24).unwrap(),
        );
        let first = FileLock::try_acquire(&db, &key).unwrap().unwrap();
        assert!(first.path().starts_with(dir.path().join("scorer.db.locks")));
        assert!(FileLock::try_acquire(&db, &key).unwrap().is_none());
        let other = lock_key(
            "scores.daily",
            NaiveDate::from_ymd_opt(2026, 11, 25).unwrap(),
        );
        assert!(FileLock::try_acquire(&db, &other).unwrap().is_some());
        drop(first);
        assert!(FileLock::try_acquire(&db, &key).unwrap().is_some());
    }
}
