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

use bytes::Bytes;
use sqlx::postgres::PgPool;
use sqlx::postgres::PgPoolCopyExt;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::copy_binary::CopyEncoder;
use crate::sink::SinkError;
use crate::sql_ident::TableName;

/// Encoded chunks waiting per session; with ~1 MB chunks this bounds the sink's memory.
pub const QUEUE_PER_STREAM: usize = 2;

/// What a session is told besides data.
enum Message {
    Rows(Bytes),
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
    ) -> Result<Self, SinkError> {
        let mut opened = Self {
            table: table.clone(),
            streams: Vec::with_capacity(count.max(1)),
            next: 0,
        };
        for _ in 0..count.max(1) {
            match pool.copy_in_raw(copy_sql).await {
                Ok(copy) => {
                    let (tx, rx) = mpsc::channel(QUEUE_PER_STREAM);
                    let task = tokio::spawn(run_session(copy, rx, table.clone()));
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
    pub async fn send(&mut self, rows: Bytes) -> Result<(), SinkError> {
        if self.streams.is_empty() {
            return Err(SinkError::Table {
                table: self.table.to_string(),
                message: "no COPY session is open (an earlier one failed)".into(),
            });
        }
        let i = self.next;
        self.next = (self.next + 1) % self.streams.len();
        if self.streams[i].tx.send(Message::Rows(rows)).await.is_ok() {
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

/// One session: header, the chunks as they come, then trailer and the COPY's end (or its abort).
async fn run_session<C>(
    mut copy: sqlx::postgres::PgCopyIn<C>,
    mut rx: mpsc::Receiver<Message>,
    table: TableName,
) -> Result<u64, SinkError>
where
    C: std::ops::DerefMut<Target = sqlx::PgConnection> + Send,
{
    let failed = |what: &'static str| SinkError::db(&table, what);
    let mut header = Vec::with_capacity(32);
    CopyEncoder::header(&mut header);
    copy.send(&header[..])
        .await
        .map_err(failed("sending COPY data"))?;
    while let Some(message) = rx.recv().await {
        match message {
            Message::Rows(rows) => {
                copy.send(&rows[..])
                    .await
                    .map_err(failed("sending COPY data"))?;
            }
            Message::Abort => {
                if let Err(e) = copy.abort("scorer run aborted").await {
                    tracing::warn!(error = %e, "aborting COPY");
                }
                return Ok(0);
            }
        }
    }
    let mut trailer = Vec::with_capacity(2);
    CopyEncoder::trailer(&mut trailer);
    copy.send(&trailer[..])
        .await
        .map_err(failed("sending COPY data"))?;
    copy.finish().await.map_err(failed("finishing COPY"))
}
