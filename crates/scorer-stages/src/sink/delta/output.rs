//! A Delta table as an output kind (`output.delta`): the run's sink writes its files under
//! `ds=<date>/` and publishes them by one Delta commit; a sharded run's publishing shard commits
//! every shard's files at once; retention removes the expired dates' files in one commit.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::NaiveDate;
use uuid::Uuid;

use super::{DeltaPartitionWriter, commit, publish_parts, remove_leftovers};
use crate::db::Database;
use crate::db::lock::OutputLock;
use crate::delta::DeltaTarget;
use crate::delta::log::DeltaError;
use crate::sink::objects::delete_relative;
use crate::sink::parts::{Part, record_after_commit};
use crate::sink::{Output, ShardsToPublish, Sink, SinkError, SinkSpec};
use crate::source::store_metrics::StoreCounters;

/// A job's Delta table.
#[derive(Debug)]
pub struct DeltaOutput {
    target: DeltaTarget,
    /// The database holding the ledger, as messages name it.
    ledger: String,
}

impl DeltaOutput {
    /// The table `target`; its runs are recorded in `db`.
    pub fn new(target: DeltaTarget, db: &Database) -> Self {
        Self {
            target,
            ledger: db.target().to_string(),
        }
    }
}

impl std::fmt::Display for DeltaOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.target.shown())
    }
}

#[async_trait]
impl Output for DeltaOutput {
    fn store_counters(&self) -> Option<Arc<StoreCounters>> {
        Some(Arc::clone(&self.target.location.counters))
    }

    fn result_lines(&self, date: NaiveDate, run_id: Uuid) -> Vec<String> {
        vec![
            format!(
                "  results: Delta table {}, partition ds={} (run {run_id})",
                self.target.shown(),
                date.format("%Y-%m-%d"),
            ),
            format!(
                "  query:   python -c \"import polars as pl; print(pl.read_delta('{}').filter(pl.col('ds') == pl.date({}, {}, {})).head())\"",
                self.target.url,
                date.format("%Y"),
                date.format("%-m"),
                date.format("%-d")
            ),
            format!("  ledger:  {}", self.ledger),
        ]
    }

    async fn open(&self, spec: SinkSpec) -> Result<Box<dyn Sink>, SinkError> {
        Ok(Box::new(
            DeltaPartitionWriter::begin(&self.target, spec).await?,
        ))
    }

    async fn publish_parts(
        &self,
        db: &Database,
        spec: &SinkSpec,
        lock: &mut dyn OutputLock,
        shards: &ShardsToPublish<'_>,
    ) -> Result<(), SinkError> {
        let files: Vec<_> = shards
            .parts
            .iter()
            .flat_map(|p| p.body.files.clone())
            .collect();
        publish_parts(
            &self.target,
            spec,
            lock,
            &files,
            shards.rejected,
            shards.ids_checked,
        )
        .await?;
        record_after_commit(
            shards.publication,
            db,
            self.target.shown(),
            "the Delta commit is done",
        )
        .await
    }

    async fn remove_part(&self, part: &Part) {
        let location = &self.target.location;
        delete_relative(&location.store, &location.prefix, &part.body.files).await
    }

    async fn drop_dates_before(
        &self,
        before: NaiveDate,
        _published: &[NaiveDate],
    ) -> Result<Vec<NaiveDate>, SinkError> {
        let url = self.target.shown().to_string();
        let log_store =
            crate::delta::log_store::open(&self.target).map_err(|message| DeltaError::Config {
                url: url.clone(),
                message,
            })?;
        Ok(commit::drop_dates_before(&log_store, &url, before).await?)
    }

    async fn remove_leftovers(
        &self,
        run_id: Uuid,
        date: NaiveDate,
    ) -> Result<Vec<String>, SinkError> {
        remove_leftovers(&self.target, date, run_id).await
    }
}
