//! Parquet files in an object store (`[output] url = "s3://…/dt={{ ds }}/"`), with the same
//! replace-a-date-atomically contract as the database sinks, through a manifest:
//!
//! ```text
//! <url>/_runs/<run_id>/part-00000.parquet   data of one run (multipart uploads), never rewritten
//! <url>/_manifest.json                      the committed run: its files, rows and sizes
//! ```
//!
//! A run writes its files under its own `_runs/<run_id>/` prefix, where nothing reads them, then
//! commits by replacing `_manifest.json` with one PUT, which object stores make atomic: readers that
//! go through the manifest see the previous run's files or this run's, never a mix. The run's
//! rejected rows, if any, go to `_runs/<run_id>/quarantine.parquet`, which the manifest names.
//!
//! After the commit only the files of the run the previous manifest replaced are deleted (each
//! manifest names its predecessor): the previous run's are kept for readers that read the old
//! manifest moments ago, and a directory no manifest named (another run of the same URL still
//! writing, or one that died) is never touched here; the sweep removes dead runs' files by the
//! ledger. A manifest PUT that fails is checked by reading the manifest back: if it names this run
//! the commit happened (the store stored it and the answer was lost); if it cannot be read, the
//! run's files stay, since a committed manifest may point at them. A failed run otherwise deletes
//! what it wrote; the manifest, and so the date's visible rows, stay as they were. The `_` prefix
//! keeps Hive-style readers (Spark, DuckDB, pyarrow datasets) from picking up run directories.

pub mod output;
mod retention;
pub mod section;

pub use section::{FilesSection, ObjectsTarget};

use std::sync::Arc;

use arrow::array::{ArrayRef, Date32Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Date32Type, Field, Schema, SchemaRef};
use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use futures::TryStreamExt;
use object_store::buffered::BufWriter;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use parquet::arrow::AsyncArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{DATE_COLUMN, RUN_ID_COLUMN, ScoredBatch, Sink, SinkError, SinkSpec};
use crate::db::lock::OutputLock;
use crate::quarantine::{self, RejectedRow};
use crate::source::IdKind;
use crate::source::location::under;

/// Rows per Parquet file; a bigger output is split into several files.
pub const ROWS_PER_FILE: usize = 4 * 1024 * 1024;
/// Name of the manifest object under the output URL.
pub const MANIFEST: &str = "_manifest.json";
/// Identifies the manifest's format for readers.
pub const MANIFEST_FORMAT: &str = "scorer-manifest/1";

/// `_manifest.json`: what a reader needs to read one committed date.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    pub format: String,
    pub job: String,
    pub logical_date: NaiveDate,
    pub run_id: Uuid,
    pub committed_at: DateTime<Utc>,
    pub rows: u64,
    /// Paths relative to the output URL, in order.
    pub files: Vec<ManifestFile>,
    /// The rows the run left out (`crate::quarantine`), when there were any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quarantine: Option<ManifestFile>,
    /// The run whose manifest this one replaced: the next commit deletes that run's files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_run_id: Option<Uuid>,
    /// The runs whose `_runs/<run_id>/` directories hold the files, when more than `run_id`'s
    /// (a sharded run: every shard's, `crate::shard`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub runs: Vec<Uuid>,
    /// The runs of the manifest this one replaced, when more than `previous_run_id`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub previous_runs: Vec<Uuid>,
}

impl Manifest {
    /// The runs whose directories hold this manifest's files.
    pub fn all_runs(&self) -> Vec<Uuid> {
        let mut runs = vec![self.run_id];
        runs.extend(self.runs.iter().filter(|r| **r != self.run_id));
        runs
    }

    /// The runs whose directories held the files of the manifest this one replaced.
    fn replaced_runs(&self) -> Vec<Uuid> {
        let mut runs: Vec<Uuid> = self.previous_run_id.into_iter().collect();
        runs.extend(
            self.previous_runs
                .iter()
                .filter(|r| Some(**r) != self.previous_run_id),
        );
        runs
    }
}

/// One data file of a committed run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ManifestFile {
    pub path: String,
    pub rows: u64,
    pub size: u64,
}

/// Where a run's Parquet files go and what they hold.
#[derive(Debug, Clone)]
pub struct ObjectsLayout {
    pub store: Arc<dyn ObjectStore>,
    /// The output URL's path in the store (the date's directory).
    pub prefix: Path,
    /// The output URL as the user wrote it (rendered), for messages.
    pub url: String,
    /// The job, columns, date and run.
    pub spec: SinkSpec,
    /// How the run's files are named and whether they hold the date column.
    pub files: FileLayout,
}

/// Where a run's Parquet files go under the output URL, and what they hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileLayout {
    /// `_runs/<run_id>/part-NNNNN.parquet`, with the date column: the manifest protocol, where
    /// the URL is the date's directory.
    RunDirectory,
    /// `ds=<date>/part-NNNNN-<run_id>.zstd.parquet` under a Delta table's root, without the
    /// date column: the table keeps it as each file's partition value (`crate::delta`).
    DatePartition,
}

/// The Parquet file a run is writing.
struct OpenFile {
    /// Path relative to the output URL, as the manifest lists it.
    relative: String,
    writer: AsyncArrowWriter<BufWriter>,
    rows: usize,
}

/// Writes one run's files and commits them by replacing the manifest.
pub struct ObjectsPartitionWriter {
    layout: ObjectsLayout,
    schema: SchemaRef,
    /// The logical date as days since the epoch.
    date: i32,
    run_id: String,
    current: Option<OpenFile>,
    done: Vec<ManifestFile>,
    rows: u64,
}

impl ObjectsPartitionWriter {
    /// Checks the output location is writable by reading its current manifest (if any); nothing
    /// is written until the first batch.
    pub async fn begin(layout: ObjectsLayout) -> Result<Self, SinkError> {
        if layout.files == FileLayout::RunDirectory {
            read_manifest(&layout.store, &layout.prefix, &layout.url).await?;
        }
        let mut fields = vec![Field::new(
            &layout.spec.id_column,
            match layout.spec.id_kind {
                IdKind::Int => DataType::Int64,
                IdKind::Text => DataType::Utf8,
            },
            false,
        )];
        if layout.files == FileLayout::RunDirectory {
            fields.push(Field::new(DATE_COLUMN, DataType::Date32, false));
        }
        fields.extend(
            layout
                .spec
                .score_columns
                .iter()
                .map(|c| Field::new(&c.name, c.ty.arrow(), true)),
        );
        fields.push(Field::new(RUN_ID_COLUMN, DataType::Utf8, false));
        Ok(Self {
            run_id: layout.spec.run_id.to_string(),
            schema: Arc::new(Schema::new(fields)),
            date: Date32Type::from_naive_date(layout.spec.date),
            layout,
            current: None,
            done: Vec::new(),
            rows: 0,
        })
    }

    fn parquet_err(&self, context: String, source: parquet::errors::ParquetError) -> SinkError {
        SinkError::Parquet {
            url: self.layout.url.clone(),
            context,
            source,
        }
    }

    fn err(&self, message: impl std::fmt::Display) -> SinkError {
        SinkError::Objects {
            url: self.layout.url.clone(),
            message: message.to_string(),
        }
    }

    fn run_dir(&self) -> Path {
        run_dir(&self.layout.prefix, self.layout.spec.run_id)
    }

    /// Starts the run's next file, named as the layout's [`FileLayout`] says.
    fn open_file(&self) -> Result<OpenFile, SinkError> {
        let relative = match self.layout.files {
            FileLayout::RunDirectory => {
                format!("_runs/{}/part-{:05}.parquet", self.run_id, self.done.len())
            }
            FileLayout::DatePartition => format!(
                "{DATE_COLUMN}={}/part-{:05}-{}.zstd.parquet",
                self.layout.spec.date.format("%Y-%m-%d"),
                self.done.len(),
                self.run_id
            ),
        };
        let path = under(&self.layout.prefix, &relative);
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::default()))
            .build();
        let sink = BufWriter::new(Arc::clone(&self.layout.store), path.clone());
        let writer = AsyncArrowWriter::try_new(sink, Arc::clone(&self.schema), Some(props))
            .map_err(|source| self.parquet_err(format!("cannot start {path}"), source))?;
        Ok(OpenFile {
            relative,
            writer,
            rows: 0,
        })
    }

    /// Finishes the open file and records it for the manifest.
    async fn close_current(&mut self) -> Result<(), SinkError> {
        let Some(mut file) = self.current.take() else {
            return Ok(());
        };
        let meta = file.writer.finish().await.map_err(|source| {
            self.parquet_err(format!("cannot finish {}", file.relative), source)
        })?;
        self.done.push(ManifestFile {
            rows: u64::try_from(meta.file_metadata().num_rows()).unwrap_or(0),
            size: file.writer.bytes_written() as u64,
            path: file.relative,
        });
        Ok(())
    }

    /// The finished files, relative to the output URL (after `finish`).
    pub fn files(&self) -> &[ManifestFile] {
        &self.done
    }

    /// The layout the files were written under.
    pub fn layout(&self) -> &ObjectsLayout {
        &self.layout
    }

    fn record_batch(&self, batch: &ScoredBatch) -> Result<RecordBatch, SinkError> {
        let rows = batch.rows;
        // The date and run id are constant columns; Parquet dictionary-encodes them to nothing.
        let mut columns: Vec<ArrayRef> = vec![Arc::clone(&batch.ids)];
        if self.layout.files == FileLayout::RunDirectory {
            columns.push(Arc::new(Date32Array::from(vec![self.date; rows])));
        }
        columns.extend(batch.outputs.iter().cloned());
        columns.push(Arc::new(StringArray::from(vec![
            self.run_id.as_str();
            rows
        ])));
        RecordBatch::try_new(Arc::clone(&self.schema), columns)
            .map_err(|e| self.err(format!("cannot assemble a batch: {e}")))
    }
}

/// A manifest commit that failed, and whether the files it would have named may be deleted
/// (false when whether the PUT took effect is unknown).
struct CommitFailed {
    error: SinkError,
    may_delete: bool,
}

/// Commits a manifest naming `files` (`rows` in all) and `quarantine`, written by the runs
/// `runs` (the first is the committing run): checks `lock`, reads the previous manifest, PUTs the
/// new one (reading it back if the PUT reports an error), then deletes the files of the runs the
/// previous manifest had replaced, except any this one names.
async fn commit_manifest(
    layout: &ObjectsLayout,
    files: Vec<ManifestFile>,
    rows: u64,
    quarantine: Option<ManifestFile>,
    runs: Vec<Uuid>,
    lock: &mut dyn OutputLock,
) -> Result<(), CommitFailed> {
    let fail = |error: SinkError| CommitFailed {
        error,
        may_delete: true,
    };
    lock.verify().await.map_err(|e| fail(e.into()))?;
    let previous = read_manifest(&layout.store, &layout.prefix, &layout.url)
        .await
        .map_err(fail)?;
    let run_id = layout.spec.run_id;
    let manifest = Manifest {
        format: MANIFEST_FORMAT.to_string(),
        job: layout.spec.job.clone(),
        logical_date: layout.spec.date,
        run_id,
        committed_at: Utc::now(),
        rows,
        files,
        quarantine,
        previous_run_id: previous.as_ref().map(|m| m.run_id),
        runs: if runs.iter().any(|r| *r != run_id) {
            runs
        } else {
            Vec::new()
        },
        previous_runs: previous
            .as_ref()
            .map(|m| m.all_runs())
            .filter(|r| r.len() > 1)
            .unwrap_or_default(),
    };
    let body = serde_json::to_vec_pretty(&manifest).map_err(|e| {
        fail(SinkError::Objects {
            url: layout.url.clone(),
            message: format!("cannot encode the manifest: {e}"),
        })
    })?;
    let path = layout.prefix.clone().join(MANIFEST);
    if let Err(source) = layout.store.put(&path, PutPayload::from(body)).await {
        let committed = committed_after_error(layout).await;
        if committed != Some(true) {
            return Err(CommitFailed {
                may_delete: committed == Some(false),
                error: SinkError::Store {
                    url: layout.url.clone(),
                    context: if committed.is_none() {
                        format!(
                            "cannot write {MANIFEST}, and reading it back failed too: whether \
                             this run committed is unknown; its files are kept, and the next run \
                             or `scorer gc` settles it"
                        )
                    } else {
                        format!("cannot write {MANIFEST}")
                    },
                    source,
                },
            });
        }
        tracing::warn!(
            error = %source,
            "the manifest PUT reported an error, but the manifest read back names this run: committed"
        );
    }
    // Committed. Delete the files of the runs the previous manifest had replaced.
    let keep = manifest.all_runs();
    if let Some(previous) = previous {
        for older in previous.replaced_runs() {
            if !keep.contains(&older) {
                delete_dir(&layout.store, &run_dir(&layout.prefix, older)).await;
            }
        }
    }
    Ok(())
}

/// Publishes a sharded run's parts as the date: checks their ids are unique across shards (by
/// reading the id column of every file, unless `ids_checked`), writes the date's quarantine under the publishing run's
/// directory, and commits one manifest naming every shard's files. On failure the shards' files
/// stay, for a retry.
pub async fn publish_parts(
    layout: &ObjectsLayout,
    files: Vec<ManifestFile>,
    runs: Vec<Uuid>,
    lock: &mut dyn OutputLock,
    rejected: &[RejectedRow],
    ids_checked: bool,
) -> Result<(), SinkError> {
    if !ids_checked {
        check_unique_ids(layout, &files).await?;
    }
    let quarantine = write_quarantine(layout, rejected).await?;
    let rows = files.iter().map(|f| f.rows).sum();
    let mut all = vec![layout.spec.run_id];
    all.extend(runs.into_iter().filter(|r| *r != layout.spec.run_id));
    commit_manifest(layout, files, rows, quarantine, all, lock)
        .await
        .map_err(|f| f.error)
}

/// Reads the id column (the first) of every file and fails on an id seen twice.
pub(crate) async fn check_unique_ids(
    layout: &ObjectsLayout,
    files: &[ManifestFile],
) -> Result<(), SinkError> {
    use parquet::arrow::ParquetRecordBatchStreamBuilder;
    let mut ids = crate::ids::IdSet::default();
    let buffers = crate::buffer_pool::BufferPool::new(0, 4);
    for file in files {
        let path = under(&layout.prefix, &file.path);
        let parquet_err = |source| SinkError::Parquet {
            url: layout.url.clone(),
            context: format!("reading the ids of {}", file.path),
            source,
        };
        let reader = crate::source::reader::ObjectReader::new(
            Arc::clone(&layout.store),
            path,
            file.size,
            None,
            Arc::clone(&buffers),
        );
        let builder = ParquetRecordBatchStreamBuilder::new(reader)
            .await
            .map_err(parquet_err)?;
        let mask = parquet::arrow::ProjectionMask::roots(builder.parquet_schema(), [0]);
        let mut stream = builder.with_projection(mask).build().map_err(parquet_err)?;
        while let Some(batch) = stream.try_next().await.map_err(parquet_err)? {
            ids.add(batch.column(0).as_ref())
                .map_err(|crate::ids::Duplicate(id)| SinkError::DuplicateId {
                    output: layout.url.clone(),
                    id,
                })?;
        }
    }
    ids.finish()
        .map_err(|crate::ids::Duplicate(id)| SinkError::DuplicateId {
            output: layout.url.clone(),
            id,
        })
}

/// Writes `rejected` to `_runs/<run_id>/quarantine.parquet` under the layout's URL; `None` when
/// there are none. `date` is the logical date as days since the epoch.
pub(crate) async fn write_quarantine(
    layout: &ObjectsLayout,
    rejected: &[RejectedRow],
) -> Result<Option<ManifestFile>, SinkError> {
    let date = Date32Type::from_naive_date(layout.spec.date);
    if rejected.is_empty() {
        return Ok(None);
    }
    let run_id = layout.spec.run_id.to_string();
    let relative = format!("_runs/{run_id}/quarantine.parquet");
    let path = under(&layout.prefix, &relative);
    let parquet_err = |context: String| {
        let url = layout.url.clone();
        move |source| SinkError::Parquet {
            url,
            context,
            source,
        }
    };
    let batch = quarantine_batch(rejected, date, &run_id).map_err(|e| SinkError::Objects {
        url: layout.url.clone(),
        message: format!("cannot assemble the quarantine: {e}"),
    })?;
    let sink = BufWriter::new(Arc::clone(&layout.store), path.clone());
    let mut writer = AsyncArrowWriter::try_new(sink, batch.schema(), None)
        .map_err(parquet_err(format!("cannot start {path}")))?;
    writer
        .write(&batch)
        .await
        .map_err(parquet_err(format!("cannot write {path}")))?;
    writer
        .finish()
        .await
        .map_err(parquet_err(format!("cannot finish {path}")))?;
    Ok(Some(ManifestFile {
        path: relative,
        rows: rejected.len() as u64,
        size: writer.bytes_written() as u64,
    }))
}

/// After a manifest PUT failed: `Some(true)` if the manifest now names this run (the store kept
/// the PUT and the answer was lost), `Some(false)` if it names another run or none, and `None` if
/// it cannot be read either.
async fn committed_after_error(layout: &ObjectsLayout) -> Option<bool> {
    match read_manifest(&layout.store, &layout.prefix, &layout.url).await {
        Ok(m) => Some(m.is_some_and(|m| m.run_id == layout.spec.run_id)),
        Err(e) => {
            tracing::warn!(error = %e, "could not read the manifest back after a failed PUT");
            None
        }
    }
}

/// The quarantine's rows as one batch, with the columns of `crate::quarantine::COLUMNS`.
fn quarantine_batch(
    rows: &[RejectedRow],
    date: i32,
    run_id: &str,
) -> Result<RecordBatch, arrow::error::ArrowError> {
    use arrow::array::Int64Array;
    let n = rows.len();
    let text = |f: &dyn Fn(&RejectedRow) -> String| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(rows.iter().map(f)))
    };
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter(rows.iter().map(|r| r.id.clone()))),
        Arc::new(Date32Array::from(vec![date; n])),
        text(&|r| r.reason.as_str().to_string()),
        text(&|r| r.column.to_string()),
        text(&|r| r.object.to_string()),
        Arc::new(Int64Array::from_iter_values(
            rows.iter().map(|r| quarantine::as_i64(r.row_group)),
        )),
        Arc::new(Int64Array::from_iter_values(
            rows.iter().map(|r| quarantine::as_i64(r.row)),
        )),
        Arc::new(StringArray::from(vec![run_id; n])),
    ];
    let fields: Vec<Field> = quarantine::column_names()
        .into_iter()
        .zip(&columns)
        .map(|(name, c)| Field::new(name, c.data_type().clone(), name == "id"))
        .collect();
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
}

/// Where a run's files go under the output directory `prefix`: `_runs/<run_id>/`.
/// Deletes `files` (relative to the layout's URL) one by one (a date partition's directory holds
/// other runs' files too); failures are logged.
pub async fn delete_files(layout: &ObjectsLayout, files: &[ManifestFile]) {
    delete_relative(&layout.store, &layout.prefix, files).await
}

/// Deletes `files` (relative to `prefix`) from `store`, one by one; failures are logged.
pub async fn delete_relative(store: &Arc<dyn ObjectStore>, prefix: &Path, files: &[ManifestFile]) {
    for file in files {
        let path = under(prefix, &file.path);
        if let Err(e) = store.delete(&path).await {
            tracing::warn!(object = %path, error = %e, "could not delete");
        }
    }
}

pub fn run_dir(prefix: &Path, run_id: Uuid) -> Path {
    prefix
        .clone()
        .join("_runs")
        .join(run_id.to_string().as_str())
}

/// Deletes every object under `dir` (best effort: failures are logged, not fatal).
pub async fn delete_dir(store: &Arc<dyn ObjectStore>, dir: &Path) {
    let listed: Result<Vec<_>, _> = store.list(Some(dir)).try_collect().await;
    match listed {
        Ok(objects) => {
            for o in objects {
                if let Err(e) = store.delete(&o.location).await {
                    tracing::warn!(object = %o.location, error = %e, "could not delete");
                }
            }
        }
        Err(e) => tracing::warn!(dir = %dir, error = %e, "could not list to clean up"),
    }
}

/// Reads the current manifest of the output directory `prefix` in `store` (`url` names it in
/// messages), if there is one.
pub async fn read_manifest(
    store: &Arc<dyn ObjectStore>,
    prefix: &Path,
    url: &str,
) -> Result<Option<Manifest>, SinkError> {
    let store_err = |source| SinkError::Store {
        url: url.to_string(),
        context: format!("cannot read {MANIFEST}"),
        source,
    };
    let path = prefix.clone().join(MANIFEST);
    match store.get(&path).await {
        Ok(got) => {
            let bytes = got.bytes().await.map_err(store_err)?;
            serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| SinkError::Objects {
                    url: url.to_string(),
                    message: format!("{MANIFEST} is not a scorer manifest: {e}"),
                })
        }
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(store_err(e)),
    }
}

/// How many objects there are under `dir` in `store`.
pub async fn count_under(
    store: &Arc<dyn ObjectStore>,
    dir: &Path,
) -> Result<usize, object_store::Error> {
    let listed: Vec<_> = store.list(Some(dir)).try_collect().await?;
    Ok(listed.len())
}

#[async_trait]
impl Sink for ObjectsPartitionWriter {
    async fn write(&mut self, batch: &ScoredBatch) -> Result<(), SinkError> {
        if batch.rows == 0 {
            return Ok(());
        }
        let rb = self.record_batch(batch)?;
        let file = match self.current.take() {
            Some(file) => file,
            None => self.open_file()?,
        };
        let file = self.current.insert(file);
        file.writer
            .write(&rb)
            .await
            .map_err(|source| SinkError::Parquet {
                url: self.layout.url.clone(),
                context: format!("cannot write {}", file.relative),
                source,
            })?;
        file.rows += batch.rows;
        self.rows += batch.rows as u64;
        if file.rows >= ROWS_PER_FILE {
            self.close_current().await?;
        }
        Ok(())
    }

    async fn finish(&mut self) -> Result<u64, SinkError> {
        self.close_current().await?;
        Ok(self.done.iter().map(|f| f.rows).sum())
    }

    async fn publish(
        self: Box<Self>,
        lock: &mut dyn OutputLock,
        rejected: &[RejectedRow],
    ) -> Result<(), SinkError> {
        let quarantine = match write_quarantine(&self.layout, rejected).await {
            Ok(q) => q,
            Err(e) => {
                self.abort().await;
                return Err(e);
            }
        };
        let files = self.done.clone();
        let run_ids = vec![self.layout.spec.run_id];
        match commit_manifest(&self.layout, files, self.rows, quarantine, run_ids, lock).await {
            Ok(()) => Ok(()),
            Err(CommitFailed { error, may_delete }) => {
                if may_delete {
                    self.abort().await;
                }
                Err(error)
            }
        }
    }

    async fn keep(self: Box<Self>) -> Result<super::Kept, SinkError> {
        Ok(super::Kept {
            staging: None,
            files: self.done.clone(),
            run_ids: vec![self.layout.spec.run_id],
        })
    }

    async fn abort(mut self: Box<Self>) {
        // An unfinished multipart upload is dropped here; object stores expire those by their
        // lifecycle rules. Finished files of this run are deleted.
        self.current = None;
        match self.layout.files {
            FileLayout::RunDirectory => delete_dir(&self.layout.store, &self.run_dir()).await,
            FileLayout::DatePartition => delete_files(&self.layout, &self.done).await,
        }
    }
}
