//! Several `COPY … FROM STDIN (FORMAT binary)` sessions into one staging table, fed whole encoded
//! batches in turn. One COPY is one PostgreSQL backend, i.e. one core: parsing the binary rows,
//! forming tuples and extending the table all happen there. With the scorer's own work lighter
//! than PostgreSQL's per row, a single stream is the end-to-end bound (benches/README.md), and
//! splitting the rows over two sessions lets PostgreSQL use a second core.
//!
//! Each session is a task with its own connection and a small queue of encoded chunks; every chunk
//! holds whole rows, and each session writes its own binary header and trailer. The sessions'
//! COPYs commit independently into the staging table, which only becomes visible through the
//! partition swap after all of them have finished; if any fails, the caller drops the staging
//! table and nothing reaches readers.
//!
//! With checkpoints (`crate::resume`), a session commits every [`CHECKPOINT_BYTES`] of COPY data:
//! it ends its COPY, inserts the record of the input rows those chunks hold, and commits both in
//! one transaction, then starts the next COPY. A run killed at any point leaves whole checkpoints:
//! rows and records together.

use bytes::Bytes;
use sqlx::postgres::PgPool;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::Instrument;

use super::copy_binary::CopyEncoder;
use crate::sink::SinkError;
use crate::sink::checkpoint::{Checkpoint, CheckpointTarget};
use crate::sql_ident::TableName;

/// Encoded chunks waiting per session; with ~1 MB chunks this bounds the sink's memory.
pub const QUEUE_PER_STREAM: usize = 2;

/// COPY data a session sends between two checkpoint commits: about 4% of W1 in one stream, so a
/// killed run loses at most that much per stream, for a commit (an fsync) every few MB.
pub const CHECKPOINT_BYTES: usize = 4 << 20;

/// What a session is told besides data.
enum Message {
    /// Encoded rows, with the record of the input rows they hold.
    Rows(Bytes, Checkpoint),
    /// Give up: abort the COPY instead of committing it.
    Abort,
}

struct Stream {
    tx: mpsc::Sender<Message>,
    task: JoinHandle<Result<u64, SinkError>>,
}

/// The open COPY sessions of one run.
pub struct CopyStreams {
    table: TableName,
    streams: Vec<Stream>,
    next: usize,
}

impl CopyStreams {
    /// Opens `count` (at least one) COPY sessions running `copy_sql`, each on its own pooled
    /// connection. If one cannot start, the ones already open are aborted.
    pub async fn open(
        pool: &PgPool,
        table: &TableName,
        copy_sql: &str,
        count: usize,
        checkpoints: Option<CheckpointTarget>,
    ) -> Result<Self, SinkError> {
        let mut opened = Self {
            table: table.clone(),
            streams: Vec::with_capacity(count.max(1)),
            next: 0,
        };
        for _ in 0..count.max(1) {
            match pool.acquire().await {
                Ok(conn) => {
                    let (tx, rx) = mpsc::channel(QUEUE_PER_STREAM);
                    let session = Session {
                        copy_sql: copy_sql.to_string(),
                        table: table.clone(),
                        checkpoints: checkpoints.clone(),
                    };
                    let task = tokio::spawn(session.run(conn, rx).in_current_span());
                    opened.streams.push(Stream { tx, task });
                }
                Err(e) => {
                    opened.abort().await;
                    return Err(SinkError::db(table, "starting COPY")(e));
                }
            }
        }
        Ok(opened)
    }

    /// Hands a chunk of whole encoded rows to the next session in turn, waiting while its queue is
    /// full. A session that failed reports its own error here.
    pub async fn send(&mut self, rows: Bytes, record: Checkpoint) -> Result<(), SinkError> {
        if self.streams.is_empty() {
            return Err(SinkError::Table {
                table: self.table.to_string(),
                message: "no COPY session is open (an earlier one failed)".into(),
            });
        }
        let i = self.next;
        self.next = (self.next + 1) % self.streams.len();
        if self.streams[i]
            .tx
            .send(Message::Rows(rows, record))
            .await
            .is_ok()
        {
            return Ok(());
        }
        // The session ended early: its task holds the reason.
        let stream = self.streams.remove(i);
        self.next = 0;
        let err = match self.join(stream.task).await {
            Err(e) => e,
            Ok(_) => SinkError::Table {
                table: self.table.to_string(),
                message: "a COPY session ended before its rows were sent".into(),
            },
        };
        self.abort().await;
        Err(err)
    }

    /// Ends every session's COPY and returns the rows PostgreSQL counted over all of them. If any
    /// session failed, the first failure is returned; the others have ended too, and their rows
    /// go with the staging table the caller then drops.
    pub async fn finish(mut self) -> Result<u64, SinkError> {
        let mut rows = 0u64;
        let mut first_error = None;
        let mut tasks = Vec::with_capacity(self.streams.len());
        for stream in std::mem::take(&mut self.streams) {
            drop(stream.tx);
            tasks.push(stream.task);
        }
        for task in tasks {
            match self.join(task).await {
                Ok(n) => rows += n,
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            None => Ok(rows),
            Some(e) => Err(e),
        }
    }

    /// Waits for a session's task: its row count, its error, or a panic as an error.
    async fn join(&self, task: JoinHandle<Result<u64, SinkError>>) -> Result<u64, SinkError> {
        task.await.unwrap_or_else(|e| {
            Err(SinkError::Table {
                table: self.table.to_string(),
                message: format!("a COPY session panicked: {e}"),
            })
        })
    }

    /// Aborts every session's COPY; what they sent is thrown away with the staging table.
    pub async fn abort(&mut self) {
        for stream in self.streams.drain(..) {
            // A session that already ended has dropped its receiver; nothing to tell it.
            let _ = stream.tx.send(Message::Abort).await;
            drop(stream.tx);
            if let Ok(Err(e)) = stream.task.await {
                tracing::debug!(error = %e, "COPY session ended with an error while aborting");
            }
        }
    }
}

/// One COPY session's settings.
struct Session {
    copy_sql: String,
    table: TableName,
    checkpoints: Option<CheckpointTarget>,
}

impl Session {
    /// Runs COPYs on `conn` until the queue ends: each in its own transaction, committed with
    /// its checkpoint record every [`CHECKPOINT_BYTES`] (or once at the end without
    /// checkpoints). Returns the rows PostgreSQL counted.
    async fn run(
        self,
        mut conn: sqlx::pool::PoolConnection<sqlx::Postgres>,
        mut rx: mpsc::Receiver<Message>,
    ) -> Result<u64, SinkError> {
        let failed = |what: &'static str| SinkError::db(&self.table, what);
        let mut total = 0u64;
        loop {
            let mut tx = sqlx::Connection::begin(&mut *conn)
                .await
                .map_err(failed("starting a COPY transaction"))?;
            if self.checkpoints.is_some() {
                // Staged rows are not results: a checkpoint need not wait for its WAL flush. If
                // the server crashes, the last checkpoints are lost whole (rows and record
                // together), which only leaves less to resume; the swap's own commit flushes
                // everything before it.
                sqlx::query("SET LOCAL synchronous_commit = off")
                    .execute(&mut *tx)
                    .await
                    .map_err(failed("starting a COPY transaction"))?;
            }
            let mut copy = tx
                .copy_in_raw(&self.copy_sql)
                .await
                .map_err(failed("starting COPY"))?;
            let mut header = Vec::with_capacity(32);
            CopyEncoder::header(&mut header);
            copy.send(&header[..])
                .await
                .map_err(failed("sending COPY data"))?;
            let mut record = Checkpoint::default();
            let mut sent = 0usize;
            let ended = loop {
                match rx.recv().await {
                    Some(Message::Rows(rows, chunk)) => {
                        copy.send(&rows[..])
                            .await
                            .map_err(failed("sending COPY data"))?;
                        sent += rows.len();
                        record.absorb(chunk);
                        if self.checkpoints.is_some() && sent >= CHECKPOINT_BYTES {
                            break false;
                        }
                    }
                    Some(Message::Abort) => {
                        if let Err(e) = copy.abort("scorer run aborted").await {
                            tracing::warn!(error = %e, "aborting COPY");
                        }
                        // The open transaction rolls back with `tx`.
                        return Ok(total);
                    }
                    None => break true,
                }
            };
            let mut trailer = Vec::with_capacity(2);
            CopyEncoder::trailer(&mut trailer);
            copy.send(&trailer[..])
                .await
                .map_err(failed("sending COPY data"))?;
            total += copy.finish().await.map_err(failed("finishing COPY"))?;
            if let Some(target) = &self.checkpoints
                && !record.is_empty()
            {
                target
                    .save_pg(&mut tx, &record)
                    .await
                    .map_err(failed("recording a resume checkpoint"))?;
            }
            tx.commit()
                .await
                .map_err(failed("committing staged rows"))?;
            if ended {
                return Ok(total);
            }
        }
    }
}
