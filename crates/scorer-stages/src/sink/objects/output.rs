//! Parquet files with a manifest as an output kind (`output.url`): the run's sink writes its files
//! under its own run directory and publishes the date by its manifest; a sharded run's publishing
//! shard writes one manifest naming every shard's files.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::NaiveDate;
use uuid::Uuid;

use super::ObjectsTarget;
use super::{
    FileLayout, MANIFEST, ObjectsLayout, ObjectsPartitionWriter, count_under, delete_dir,
    publish_parts, read_manifest, retention, run_dir,
};
use crate::db::Database;
use crate::db::lock::OutputLock;
use crate::sink::parts::{Part, record_after_commit};
use crate::sink::{Output, ShardsToPublish, Sink, SinkError, SinkSpec};
use crate::source::store_metrics::StoreCounters;

/// The date's directory of a Parquet output, and the job's URL template for older dates.
#[derive(Debug)]
pub struct ParquetFiles {
    target: ObjectsTarget,
    /// The database holding the ledger, as messages name it.
    ledger: String,
}

impl ParquetFiles {
    /// The output `target`; its runs are recorded in `db`.
    pub fn new(target: ObjectsTarget, db: &Database) -> Self {
        Self {
            target,
            ledger: db.target().to_string(),
        }
    }

    fn layout(&self, spec: &SinkSpec) -> ObjectsLayout {
        let location = &self.target.location;
        ObjectsLayout {
            store: Arc::clone(&location.store),
            prefix: location.prefix.clone(),
            url: location.url.clone(),
            spec: spec.clone(),
            files: FileLayout::RunDirectory,
        }
    }
}

impl std::fmt::Display for ParquetFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.target.location.url)
    }
}

#[async_trait]
impl Output for ParquetFiles {
    fn store_counters(&self) -> Option<Arc<StoreCounters>> {
        Some(Arc::clone(&self.target.location.counters))
    }

    fn needs_published_dates(&self) -> bool {
        true
    }

    fn result_lines(&self, _date: NaiveDate, run_id: Uuid) -> Vec<String> {
        let url = &self.target.location.url;
        vec![
            format!(
                "  results: Parquet files under {url}, listed in {}/{MANIFEST} (run {run_id})",
                url.trim_end_matches('/'),
            ),
            format!("  ledger:  {}", self.ledger),
        ]
    }

    async fn open(&self, spec: SinkSpec) -> Result<Box<dyn Sink>, SinkError> {
        Ok(Box::new(
            ObjectsPartitionWriter::begin(self.layout(&spec)).await?,
        ))
    }

    async fn publish_parts(
        &self,
        db: &Database,
        spec: &SinkSpec,
        lock: &mut dyn OutputLock,
        shards: &ShardsToPublish<'_>,
    ) -> Result<(), SinkError> {
        let parts = shards.parts;
        let files = parts.iter().flat_map(|p| p.body.files.clone()).collect();
        let runs = parts.iter().flat_map(|p| p.body.run_ids.clone()).collect();
        publish_parts(
            &self.layout(spec),
            files,
            runs,
            lock,
            shards.rejected,
            shards.ids_checked,
        )
        .await?;
        record_after_commit(
            shards.publication,
            db,
            &self.target.location.url,
            "the manifest is committed",
        )
        .await
    }

    async fn remove_part(&self, part: &Part) {
        let location = &self.target.location;
        for run in &part.body.run_ids {
            delete_dir(&location.store, &run_dir(&location.prefix, *run)).await;
        }
    }

    async fn drop_dates_before(
        &self,
        before: NaiveDate,
        published: &[NaiveDate],
    ) -> Result<Vec<NaiveDate>, SinkError> {
        retention::drop_directories(
            &self.target.url_template,
            &self.target.storage,
            before,
            published,
        )
        .await
    }

    async fn remove_leftovers(
        &self,
        run_id: Uuid,
        _date: NaiveDate,
    ) -> Result<Vec<String>, SinkError> {
        let location = &self.target.location;
        // A run that died between its manifest PUT and its ledger update did publish: its
        // files are the date's rows and stay.
        let manifest = read_manifest(&location.store, &location.prefix, &location.url).await?;
        if manifest.is_some_and(|m| m.all_runs().contains(&run_id)) {
            return Ok(Vec::new());
        }
        let dir = run_dir(&location.prefix, run_id);
        let listed =
            count_under(&location.store, &dir)
                .await
                .map_err(|source| SinkError::Store {
                    url: location.url.clone(),
                    context: format!("listing {dir}"),
                    source,
                })?;
        if listed == 0 {
            return Ok(Vec::new());
        }
        delete_dir(&location.store, &dir).await;
        Ok(vec![format!("{listed} run file(s) under {dir}")])
    }
}
