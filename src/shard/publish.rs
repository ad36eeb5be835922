//! The publishing step of a sharded run: once every shard of an attempt has recorded its part,
//! the shard that sees it takes the date's lock and publishes all parts as the date's rows.

use std::time::{Duration, Instant};

use chrono::NaiveDate;
use tokio_util::sync::CancellationToken;

use super::coordination::{self, AttemptState, Publication};
use crate::db::Database;
use crate::failure::Failure;
use crate::job::SharedOutput;
use crate::sink::parts::Part;
use crate::sink::{self, Output, SinkSpec};

/// How long a shard that finds every part staged waits for the date's lock (held by another
/// shard publishing, or by an unsharded run of the date) before it gives up with exit 5.
pub const LOCK_WAIT: Duration = Duration::from_secs(120);

/// Everything publishing needs, from the shard run that tries it.
pub struct Publisher<'a> {
    pub db: &'a Database,
    /// The output kind the shards staged their parts in.
    pub target: &'a dyn Output,
    /// The output as the lock and the ledger name it.
    pub output: &'a str,
    pub date: NaiveDate,
    pub attempt: &'a str,
    pub count: u32,
    /// The publishing run's sink spec (its run id names the new partition or manifest).
    pub spec: SinkSpec,
    pub output_spec: &'a SharedOutput,
    /// The rows of the date's last publication, for the row-drop guard.
    pub previous_rows: Option<u64>,
    pub allow_row_drop: bool,
}

/// What a try to publish found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Published {
    /// This run published the date: its `rows` from `shards` parts.
    Now { rows: u64, shards: u32 },
    /// Another run had published the attempt.
    Already(uuid::Uuid),
    /// Parts are missing: `staged` of the attempt's shards have staged theirs.
    Waiting { staged: u32 },
}

impl Publisher<'_> {
    /// Publishes the attempt if every shard has staged its part and it is still open; the row
    /// guards apply to the parts' rows in all.
    pub async fn publish_if_complete(
        &self,
        cancel: &CancellationToken,
    ) -> Result<Published, Failure> {
        let staged = coordination::parts(self.db, self.attempt).await?;
        if (staged.len() as u32) < self.count {
            return Ok(Published::Waiting {
                staged: staged.len() as u32,
            });
        }
        crate::stop_point::reach(crate::stop_point::SHARD_BEFORE_LOCK);
        let mut lock = self.date_lock(cancel).await?;
        crate::stop_point::reach(crate::stop_point::SHARD_LOCKED);
        let outcome = self.publish_locked(lock.as_mut()).await;
        lock.release().await;
        let outcome = outcome?;
        if let Published::Now { .. } = outcome {
            self.remove_superseded().await;
        }
        Ok(outcome)
    }

    /// Takes the (output, date) lock, waiting up to [`LOCK_WAIT`].
    async fn date_lock(
        &self,
        cancel: &CancellationToken,
    ) -> Result<Box<dyn crate::db::lock::OutputLock>, Failure> {
        let started = Instant::now();
        loop {
            if let Some(lock) = self.db.try_lock_output(self.output, self.date).await? {
                return Ok(lock);
            }
            if started.elapsed() >= LOCK_WAIT {
                return Err(Failure::AlreadyRunning {
                    output: self.output.to_string(),
                    date: self.date.to_string(),
                });
            }
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(250)) => {}
                () = cancel.cancelled() => return Err(Failure::Cancelled),
            }
        }
    }

    /// Under the date's lock: the attempt's state again (another shard may have published it),
    /// the row guards, then the publication.
    async fn publish_locked(
        &self,
        lock: &mut dyn crate::db::lock::OutputLock,
    ) -> Result<Published, Failure> {
        match coordination::state(self.db, self.attempt).await? {
            AttemptState::Published(by) => return Ok(Published::Already(by)),
            AttemptState::Superseded(by) => {
                return Err(Failure::Superseded {
                    shard: format!("*/{}", self.count),
                    attempt: self.attempt.to_string(),
                    by,
                });
            }
            AttemptState::Open => {}
        }
        let parts: Vec<Part> = coordination::parts(self.db, self.attempt).await?;
        let rows: u64 = parts.iter().map(|p| p.rows).sum();
        match crate::guards::check_row_guards(self.output_spec, rows, self.previous_rows) {
            Err(f) if self.allow_row_drop => {
                tracing::warn!(reason = %f, "row guard overridden by --allow-row-drop; publishing");
            }
            other => other?,
        }
        let rejected: Vec<_> = parts
            .iter()
            .flat_map(|p| p.body.rejected.iter().cloned())
            .collect();
        // The shards' id digests, when every shard has one: disjoint, or the duplicate named.
        let digests: Option<Vec<&str>> = parts.iter().map(|p| p.body.ids.as_deref()).collect();
        let ids_checked = match digests.map(|d| crate::ids::first_shared(&d)) {
            Some(Ok(None)) => true,
            Some(Ok(Some(id))) => return Err(Failure::DuplicateId { id }),
            Some(Err(e)) => {
                tracing::warn!(error = %e, "a shard's id digest is unreadable; checking the staged ids");
                false
            }
            None => false,
        };
        let publication = Publication {
            attempt: self.attempt,
            run_id: self.spec.run_id,
            output: self.output,
            date: self.date,
            rows,
        };
        let shards = sink::ShardsToPublish {
            parts: &parts,
            rejected: &rejected,
            publication: &publication,
            ids_checked,
        };
        self.target
            .publish_parts(self.db, &self.spec, lock, &shards)
            .await
            .map_err(crate::failure::publish_failure)?;
        crate::stop_point::reach(crate::stop_point::SHARD_COMMITTED);
        tracing::info!(
            attempt = self.attempt,
            shards = parts.len(),
            rows,
            "published every shard's rows as the date's"
        );
        Ok(Published::Now {
            rows,
            shards: parts.len() as u32,
        })
    }

    /// Removes what the attempts this one superseded had staged (best effort, logged).
    async fn remove_superseded(&self) {
        let parts = match coordination::superseded_parts(self.db, self.attempt).await {
            Ok(parts) => parts,
            Err(e) => {
                tracing::warn!(error = %e, "cannot list the superseded attempts' parts");
                return;
            }
        };
        for part in &parts {
            self.target.remove_part(part).await;
        }
        if !parts.is_empty() {
            tracing::info!(
                parts = parts.len(),
                "removed the parts of attempts this one superseded"
            );
        }
        if let Err(e) = coordination::forget_superseded(self.db, self.attempt).await {
            tracing::warn!(error = %e, "cannot forget the superseded attempts' parts");
        }
    }
}

/// Where a shard stands once it is done: for its ledger row and its report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShardOutcome {
    /// It staged its part and published the date.
    Published { rows: u64, shards: u32 },
    /// It staged its part; the last shard to finish publishes.
    Staged { staged: u32, of: u32 },
    /// Its part was staged (or the attempt published) before it started: it did nothing.
    Skipped(String),
}

impl ShardOutcome {
    /// One line for the run's report.
    pub fn describe(&self) -> String {
        match self {
            Self::Published { rows, shards } => {
                format!("published the date: {rows} rows from {shards} shards")
            }
            Self::Staged { staged, of } => format!(
                "staged; {staged} of {of} shards have staged theirs, the last to finish publishes"
            ),
            Self::Skipped(why) => format!("nothing to do: {why}"),
        }
    }
}
