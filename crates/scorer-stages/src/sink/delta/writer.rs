//! The Delta sink's writer: the run's Parquet files under `ds=<date>/`, written as the Parquet
//! output writes them, and published by one Delta commit.

use super::commit;
use async_trait::async_trait;
use deltalake_core::DeltaTable;
use deltalake_core::logstore::LogStoreRef;

use crate::db::lock::OutputLock;
use crate::delta::DeltaTarget;
use crate::delta::log::DeltaError;
use crate::quarantine::RejectedRow;
use crate::sink::objects::{FileLayout, ObjectsLayout, ObjectsPartitionWriter, delete_files};
use crate::sink::{Kept, ScoredBatch, Sink, SinkError, SinkSpec};

/// Writes one run's files into a Delta table and commits them as the date's.
pub struct DeltaPartitionWriter {
    files: ObjectsPartitionWriter,
    /// Vacuum after the commit (`output.delta_vacuum`).
    vacuum: Option<std::time::Duration>,
    log_store: LogStoreRef,
    /// The table as it was when the run began (created if absent); re-read at the commit.
    table: DeltaTable,
    url: String,
    spec: SinkSpec,
}

impl DeltaPartitionWriter {
    /// Opens the table (creating it, partitioned by `ds`, when absent) and checks its columns
    /// are the run's, so a table that does not fit fails the run before anything is scored.
    pub async fn begin(target: &DeltaTarget, spec: SinkSpec) -> Result<Self, SinkError> {
        let url = target.shown().to_string();
        let log_store =
            crate::delta::log_store::open(target).map_err(|message| DeltaError::Config {
                url: url.clone(),
                message,
            })?;
        if target.url.scheme() == "file"
            && let Ok(path) = target.url.to_file_path()
        {
            std::fs::create_dir_all(&path).map_err(|e| DeltaError::Config {
                url: url.clone(),
                message: format!("cannot create the table's directory: {e}"),
            })?;
        }
        let table = commit::open_or_create(&log_store, &url, &spec).await?;
        let files = ObjectsPartitionWriter::begin(ObjectsLayout {
            store: std::sync::Arc::clone(&target.location.store),
            prefix: target.location.prefix.clone(),
            url: url.clone(),
            spec: spec.clone(),
            files: FileLayout::DatePartition,
        })
        .await?;
        Ok(Self {
            files,
            vacuum: target.vacuum,
            log_store,
            table,
            url,
            spec,
        })
    }
}

#[async_trait]
impl Sink for DeltaPartitionWriter {
    async fn write(&mut self, batch: &ScoredBatch) -> Result<(), SinkError> {
        self.files.write(batch).await
    }

    async fn finish(&mut self) -> Result<u64, SinkError> {
        self.files.finish().await
    }

    async fn publish(
        self: Box<Self>,
        lock: &mut dyn OutputLock,
        rejected: &[RejectedRow],
    ) -> Result<(), SinkError> {
        let Self {
            files,
            vacuum,
            log_store,
            mut table,
            url,
            spec,
        } = *self;
        let layout = files.layout().clone();
        let written = files.files().to_vec();
        drop(files);
        let prepared = async {
            crate::sink::objects::write_quarantine(&layout, rejected).await?;
            lock.verify().await?;
            Ok::<(), SinkError>(())
        }
        .await;
        if let Err(e) = prepared {
            delete_files(&layout, &written).await;
            return Err(e);
        }
        match commit::commit_date(&mut table, &url, &spec, &written).await {
            Ok(version) => {
                tracing::info!(table = %url, version, "Delta commit");
                // The date is published; a vacuum that fails only leaves old files for the next.
                if let Some(retention) = vacuum {
                    match commit::vacuum(&log_store, &url, retention).await {
                        Ok(deleted) => tracing::info!(table = %url, deleted, "Delta vacuum"),
                        Err(e) => {
                            tracing::warn!(error = %e, "Delta vacuum failed; the next run tries again")
                        }
                    }
                }
                Ok(())
            }
            Err(e) => {
                let run_id = spec.run_id.to_string();
                match commit::holds_run(&log_store, spec.date, &run_id).await {
                    Some(true) => {
                        tracing::warn!(error = %e, "the Delta commit reported an error, but the table holds this run's files: committed");
                        Ok(())
                    }
                    Some(false) => {
                        delete_files(&layout, &written).await;
                        Err(e.into())
                    }
                    // Whether it committed is unknown: the files stay, as a committed version
                    // may name them.
                    None => Err(e.into()),
                }
            }
        }
    }

    async fn abort(self: Box<Self>) {
        let layout = self.files.layout().clone();
        let written = self.files.files().to_vec();
        drop(self);
        delete_files(&layout, &written).await;
    }

    async fn keep(self: Box<Self>) -> Result<Kept, SinkError> {
        Ok(Kept {
            staging: None,
            files: self.files.files().to_vec(),
            run_ids: vec![self.spec.run_id],
        })
    }
}

/// Publishes a sharded run's parts (`crate::shard`) as the date: checks their ids are unique
/// across shards (unless `ids_checked`), writes the date's quarantine, and commits every shard's
/// `files` in one Delta commit. On failure the files stay, for a retry.
pub async fn publish_parts(
    target: &DeltaTarget,
    spec: &SinkSpec,
    lock: &mut dyn OutputLock,
    files: &[crate::sink::objects::ManifestFile],
    rejected: &[RejectedRow],
    ids_checked: bool,
) -> Result<(), SinkError> {
    let url = target.shown().to_string();
    let layout = ObjectsLayout {
        store: std::sync::Arc::clone(&target.location.store),
        prefix: target.location.prefix.clone(),
        url: url.clone(),
        spec: spec.clone(),
        files: FileLayout::DatePartition,
    };
    if !ids_checked {
        crate::sink::objects::check_unique_ids(&layout, files).await?;
    }
    crate::sink::objects::write_quarantine(&layout, rejected).await?;
    let log_store =
        crate::delta::log_store::open(target).map_err(|message| DeltaError::Config {
            url: url.clone(),
            message,
        })?;
    let mut table = commit::open_or_create(&log_store, &url, spec).await?;
    lock.verify().await?;
    let version = commit::commit_date(&mut table, &url, spec, files).await?;
    tracing::info!(table = %url, version, shards_files = files.len(), "Delta commit of every shard's files");
    Ok(())
}

/// What a run that died before its Delta commit left in the table (`scorer gc`): its data files
/// (named with its run id) and its quarantine, unless the table's current version names them
/// (the run committed and died before the ledger heard). Returns what was removed.
pub async fn remove_leftovers(
    target: &DeltaTarget,
    date: chrono::NaiveDate,
    run_id: uuid::Uuid,
) -> Result<Vec<String>, SinkError> {
    use futures::TryStreamExt;
    use object_store::ObjectStoreExt;
    let url = target.shown().to_string();
    let log_store =
        crate::delta::log_store::open(target).map_err(|message| DeltaError::Config {
            url: url.clone(),
            message,
        })?;
    let run = run_id.to_string();
    if commit::holds_run(&log_store, date, &run).await != Some(false) {
        // Committed, or the table cannot be read: nothing may be deleted.
        return Ok(Vec::new());
    }
    let store = &target.location.store;
    let dir = crate::source::location::under(
        &target.location.prefix,
        &format!("{}={}", crate::sink::DATE_COLUMN, date.format("%Y-%m-%d")),
    );
    let suffix = format!("-{run}.zstd.parquet");
    let listed: Vec<_> = store
        .list(Some(&dir))
        .try_collect()
        .await
        .map_err(|source| SinkError::Store {
            url: url.clone(),
            context: format!("listing {dir}"),
            source,
        })?;
    let mut removed = Vec::new();
    for object in listed
        .iter()
        .filter(|o| o.location.as_ref().ends_with(&suffix))
    {
        match store.delete(&object.location).await {
            Ok(()) => removed.push(format!("uncommitted Delta file {}", object.location)),
            Err(e) => tracing::warn!(object = %object.location, error = %e, "could not delete"),
        }
    }
    let quarantine = crate::sink::objects::run_dir(&target.location.prefix, run_id);
    crate::sink::objects::delete_dir(store, &quarantine).await;
    Ok(removed)
}
