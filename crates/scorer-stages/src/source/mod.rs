//! The source stage: list a job's input objects, check their Parquet footers against what the job
//! needs before any scoring, then stream the projected columns row group by row group with a bounded
//! number in flight, so memory depends on the row-group size, not on the input size.

mod done_ranges;
pub mod footers;
pub mod in_flight;
pub mod location;
pub mod reader;
pub mod storage;
pub mod store_metrics;

use std::sync::Arc;
use tracing::Instrument;

use arrow::record_batch::RecordBatch;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use futures::{StreamExt, TryStreamExt};
use object_store::ObjectMeta;
use parquet::arrow::ParquetRecordBatchStreamBuilder;
use parquet::arrow::arrow_reader::ArrowReaderMetadata;
use parquet::errors::ParquetError;
use thiserror::Error;

use crate::buffer_pool::BufferPool;
use crate::error::{ErrorClass, object_store_class, parquet_class};
pub use done_ranges::{DoneRanges, StagedRange};
pub use footers::{CheckedInput, CheckedObject, IdKind};
pub use location::{InputLocation, resolve, resolve_counted, resolve_output};
use reader::ObjectReader;

/// A problem with the input data; every variant names the URL or object concerned.
#[derive(Debug, Error)]
pub enum SourceError {
    #[error("{side} {url}: {reason}")]
    Url {
        /// `input` or `output`.
        side: &'static str,
        url: String,
        reason: String,
    },
    #[error("input {url}: listing failed: {source}")]
    List {
        url: String,
        source: object_store::Error,
    },
    #[error("input {url}: no Parquet objects found")]
    NoObjects { url: String },
    /// A footer could not be fetched for a reason that is not the file's content (the store
    /// failed or the object changed); a corrupt footer is one of the `Schema` problems instead.
    #[error("input {object}: reading the footer failed: {source}")]
    Footer {
        object: String,
        source: ParquetError,
    },
    #[error("input does not match the job:\n  - {}", problems.join("\n  - "))]
    Schema { problems: Vec<String> },
    #[error("input {object}, row group {row_group}: {source}")]
    Read {
        object: String,
        row_group: usize,
        source: ParquetError,
    },
    /// A row group that failed to decode, with the column whose pages failed (a page checksum,
    /// a corrupt page), found by reading the row group's columns one at a time.
    #[error("input {object}, row group {row_group}, column `{column}`: {source}")]
    ReadColumn {
        object: String,
        row_group: usize,
        column: String,
        source: ParquetError,
    },
    #[error("input {object}, row group {row_group}: the reader task failed: {message}")]
    ReadTask {
        object: String,
        row_group: usize,
        message: String,
    },
}

impl SourceError {
    /// What kind of failure this is, from the store's and the reader's typed errors.
    pub fn class(&self) -> ErrorClass {
        match self {
            Self::Url { .. } => ErrorClass::Config,
            Self::List { source, .. } => object_store_class(source),
            Self::NoObjects { .. } | Self::Schema { .. } => ErrorClass::Data,
            Self::Footer { source, .. }
            | Self::Read { source, .. }
            | Self::ReadColumn { source, .. } => parquet_class(source),
            // The decoder panicked on this object's bytes: a corrupt file (the panic names no
            // type to tell otherwise; the message names the object and row group).
            Self::ReadTask { .. } => ErrorClass::Data,
        }
    }
}

/// One decoded slice of a row group, with where it came from for error messages.
#[derive(Debug, Clone)]
pub struct SourceBatch {
    pub object: Arc<str>,
    pub row_group: usize,
    /// Index within the row group of the batch's first row, so rows can be named exactly.
    pub first_row: usize,
    pub batch: RecordBatch,
}

/// Whether an object below `prefix` is another writer's bookkeeping rather than data: its name or
/// any directory between `prefix` and it starts with `_` or `.` (`_SUCCESS`, `.crc` files,
/// Spark's `_temporary/` and `.spark-staging-*/`, Hive's `.hive-staging*`, scorer's own `_runs/`).
/// Directories in `prefix` itself are the user's choice and do not count.
fn is_hidden(prefix: &object_store::path::Path, object: &object_store::path::Path) -> bool {
    let below: Vec<_> = match object.prefix_match(prefix) {
        Some(parts) => parts.collect(),
        None => object.parts().collect(),
    };
    below.iter().any(|part| {
        let p = part.as_ref();
        p.starts_with('_') || p.starts_with('.')
    })
}

/// Lists the objects at a location, sorted by path, leaving out other writers' bookkeeping: any
/// name or directory below the location starting with `_` or `.` (see `is_hidden`).
pub async fn list(location: &InputLocation) -> Result<Vec<ObjectMeta>, SourceError> {
    let list_err = |source| SourceError::List {
        url: location.url.clone(),
        source,
    };
    let mut objects = Vec::new();
    if location.glob.is_none() {
        match object_store::ObjectStoreExt::head(location.store.as_ref(), &location.prefix).await {
            Ok(meta) => return Ok(vec![meta]),
            Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(list_err(e)),
        }
    }
    let mut stream = location.store.list(Some(&location.prefix));
    loop {
        let meta = match stream.try_next().await {
            Ok(Some(meta)) => meta,
            Ok(None) | Err(object_store::Error::NotFound { .. }) => break,
            Err(e) => return Err(list_err(e)),
        };
        let hidden = is_hidden(&location.prefix, &meta.location);
        let wanted = match &location.glob {
            Some(g) => g.is_match(meta.location.as_ref()),
            None => true,
        };
        if wanted && !hidden {
            objects.push(meta);
        }
    }
    if objects.is_empty() {
        return Err(SourceError::NoObjects {
            url: location.url.clone(),
        });
    }
    objects.sort_by(|a, b| a.location.cmp(&b.location));
    Ok(objects)
}

/// Reads every row group of the checked input and sends its batches (at most `batch_rows` rows each) to `tx`
/// as they are decoded. Up to `in_flight` row groups are fetched and decoded at once, on the
/// runtime's worker threads; each holds at most one decoded batch while `tx` is full, so memory is
/// bounded by `in_flight` row groups' column chunks plus the channel. Rows arrive in no particular
/// order. Returns the seconds spent fetching and decoding, summed over row groups.
///
/// `done` (a resumed run's adopted rows) leaves out row groups it covers wholly, and the covered
/// rows of the others as they are decoded.
pub async fn send_batches(
    input: &CheckedInput,
    in_flight: usize,
    batch_rows: usize,
    tx: tokio::sync::mpsc::Sender<SourceBatch>,
    done: Option<Arc<DoneRanges>>,
) -> Result<f64, SourceError> {
    let units: Vec<(Arc<CheckedObject>, Arc<Footer>, usize)> = input
        .objects
        .iter()
        .flat_map(|o| {
            // The object's footer, read by whichever of its row groups comes first and dropped
            // with the last of them.
            let footer = Arc::new(tokio::sync::OnceCell::new());
            let done = done.clone();
            o.row_group_indexes()
                .into_iter()
                .filter(move |&rg| {
                    let rows = o.row_group_rows.get(rg).copied().unwrap_or(u64::MAX);
                    !done.as_ref().is_some_and(|d| d.complete(&o.url, rg, rows))
                })
                .map(move |rg| (Arc::clone(o), Arc::clone(&footer), rg))
        })
        .collect();
    let busy_nanos = Arc::new(AtomicU64::new(0));
    // Enough for every row group in flight to have all its reads out at once, and the one before
    // it still being decoded.
    let buffers = BufferPool::new(
        reader::MAX_MERGED_READ as usize,
        (in_flight.max(1) + 1) * reader::PARALLEL_READS,
    );
    let tasks = futures::stream::iter(units).map(|(object, footer, rg)| {
        let done = done
            .as_ref()
            .filter(|d| d.touches(&object.url, rg))
            .map(Arc::clone);
        let unit = RowGroupRead {
            store: Arc::clone(&input.store),
            url: Arc::from(object.url.as_str()),
            object,
            footer,
            row_group: rg,
            batch_rows,
            busy_nanos: Arc::clone(&busy_nanos),
            buffers: Arc::clone(&buffers),
            done,
        };
        let (url, tx) = (Arc::clone(&unit.url), tx.clone());
        // Once the scoring stage has stopped (done, failed or cancelled), start no more reads.
        let task = (!tx.is_closed()).then(|| tokio::spawn(unit.run(tx).in_current_span()));
        async move {
            let Some(task) = task else {
                return Ok(());
            };
            task.await.map_err(|e| SourceError::ReadTask {
                object: url.to_string(),
                row_group: rg,
                message: e.to_string(),
            })?
        }
    });
    tasks
        .buffer_unordered(in_flight.max(1))
        .try_for_each(|()| async { Ok(()) })
        .await?;
    Ok(busy_nanos.load(Ordering::Relaxed) as f64 / 1e9)
}

/// An object's decoded footer, shared by its row groups while they are read.
type Footer = tokio::sync::OnceCell<ArrowReaderMetadata>;

/// One row group to fetch, decode and pass on.
struct RowGroupRead {
    store: Arc<dyn object_store::ObjectStore>,
    object: Arc<CheckedObject>,
    footer: Arc<Footer>,
    url: Arc<str>,
    row_group: usize,
    batch_rows: usize,
    busy_nanos: Arc<AtomicU64>,
    buffers: Arc<BufferPool>,
    /// Rows of this row group a resumed run adopted, to leave out.
    done: Option<Arc<DoneRanges>>,
}

impl RowGroupRead {
    async fn run(self, tx: tokio::sync::mpsc::Sender<SourceBatch>) -> Result<(), SourceError> {
        let read_err = |source: ParquetError| SourceError::Read {
            object: self.url.to_string(),
            row_group: self.row_group,
            source,
        };
        let mut reader = self.reader();
        let footer = self
            .footer
            .get_or_try_init(|| ArrowReaderMetadata::load_async(&mut reader, Default::default()))
            .await
            .map_err(read_err)?
            .clone();
        let mut stream = ParquetRecordBatchStreamBuilder::new_with_metadata(reader, footer.clone())
            .with_projection(self.object.projection.clone())
            .with_row_groups(vec![self.row_group])
            .with_batch_size(self.batch_rows)
            .build()
            .map_err(read_err)?;
        let mut first_row = 0;
        loop {
            let started = Instant::now();
            let next = stream.try_next().await;
            let nanos = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
            self.busy_nanos.fetch_add(nanos, Ordering::Relaxed);
            let next = match next {
                // Bytes that do not decode (not the store failing): say which column.
                Err(source) if !matches!(source, ParquetError::External(_)) => {
                    return Err(match self.failing_column(&footer).await {
                        Some(column) => SourceError::ReadColumn {
                            object: self.url.to_string(),
                            row_group: self.row_group,
                            column,
                            source,
                        },
                        None => read_err(source),
                    });
                }
                other => other.map_err(read_err)?,
            };
            let Some(batch) = next else {
                return Ok(());
            };
            let batch = self.object.rename_columns(batch);
            let rows = batch.num_rows();
            let parts = match &self.done {
                Some(done) => done.missing(&self.url, self.row_group, first_row, rows),
                None => vec![(0, rows)],
            };
            let parts = self
                .object
                .without_deleted(self.row_group, first_row, parts);
            for (offset, len) in parts {
                let item = SourceBatch {
                    object: Arc::clone(&self.url),
                    row_group: self.row_group,
                    first_row: first_row + offset,
                    batch: if len == rows {
                        batch.clone()
                    } else {
                        batch.slice(offset, len)
                    },
                };
                if tx.send(item).await.is_err() {
                    // The scoring stage stopped (it failed or was cancelled); it reports why.
                    return Ok(());
                }
            }
            first_row += rows;
        }
    }
}

impl RowGroupRead {
    /// A reader of this row group's object, checked against the etag its footer was read at.
    fn reader(&self) -> ObjectReader {
        ObjectReader::new(
            Arc::clone(&self.store),
            self.object.meta.location.clone(),
            self.object.meta.size,
            self.object.meta.e_tag.clone(),
            Arc::clone(&self.buffers),
        )
    }

    /// The first projected column whose pages in this row group fail to decode on their own,
    /// by reading each alone: the failed read's error names no column. Only on the error path.
    async fn failing_column(&self, footer: &ArrowReaderMetadata) -> Option<String> {
        let schema = footer.metadata().file_metadata().schema_descr_ptr();
        for leaf in (0..schema.num_columns()).filter(|&i| self.object.projection.leaf_included(i)) {
            let Ok(mut stream) =
                ParquetRecordBatchStreamBuilder::new_with_metadata(self.reader(), footer.clone())
                    .with_projection(parquet::arrow::ProjectionMask::leaves(&schema, [leaf]))
                    .with_row_groups(vec![self.row_group])
                    .with_batch_size(self.batch_rows)
                    .build()
            else {
                continue;
            };
            loop {
                match stream.try_next().await {
                    Ok(Some(_)) => {}
                    Ok(None) => break,
                    Err(_) => return Some(schema.column(leaf).path().string()),
                }
            }
        }
        None
    }
}

/// Reads the id column of the rows `done` covers (a resumed run's adopted rows) and hands each
/// slice of ids to `add`, so the duplicate-id check spans the whole date. One row group at a time.
pub async fn read_ids<E: From<SourceError>>(
    input: &CheckedInput,
    done: &DoneRanges,
    batch_rows: usize,
    mut add: impl FnMut(&dyn arrow::array::Array) -> Result<(), E>,
) -> Result<(), E> {
    let buffers = BufferPool::new(reader::MAX_MERGED_READ as usize, reader::PARALLEL_READS);
    for object in &input.objects {
        let groups: Vec<usize> = object
            .row_group_indexes()
            .into_iter()
            .filter(|&rg| done.touches(&object.url, rg))
            .collect();
        if groups.is_empty() {
            continue;
        }
        let read_err = |row_group: usize| {
            let url = object.url.clone();
            move |source: ParquetError| SourceError::Read {
                object: url,
                row_group,
                source,
            }
        };
        let open = || {
            ObjectReader::new(
                Arc::clone(&input.store),
                object.meta.location.clone(),
                object.meta.size,
                object.meta.e_tag.clone(),
                Arc::clone(&buffers),
            )
        };
        let footer = ArrowReaderMetadata::load_async(&mut open(), Default::default())
            .await
            .map_err(read_err(groups[0]))?;
        for rg in groups {
            let mut stream =
                ParquetRecordBatchStreamBuilder::new_with_metadata(open(), footer.clone())
                    .with_projection(object.id_projection.clone())
                    .with_row_groups(vec![rg])
                    .with_batch_size(batch_rows.max(1))
                    .build()
                    .map_err(read_err(rg))?;
            let mut first_row = 0;
            while let Some(batch) = stream.try_next().await.map_err(read_err(rg))? {
                let rows = batch.num_rows();
                for (offset, len) in done.done(&object.url, rg, first_row, rows) {
                    add(batch.column(0).slice(offset, len).as_ref())?;
                }
                first_row += rows;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::path::Path;

    #[test]
    fn other_writers_bookkeeping_is_hidden_at_any_depth_below_the_prefix() {
        let prefix = Path::from("lake/_landing/events/dt=2026-11-24");
        let hidden = |p: &str| is_hidden(&prefix, &Path::from(format!("{prefix}/{p}")));
        assert!(!hidden("part-0.parquet"));
        assert!(!hidden("region=eu/part-0.parquet"));
        assert!(hidden("_SUCCESS"));
        assert!(hidden(".part-0.parquet.crc"));
        assert!(hidden("_temporary/0/_temporary/attempt_1/part-0.parquet"));
        assert!(hidden(".spark-staging-42/part-0.parquet"));
        assert!(hidden("_runs/0190/part-0.parquet"));
        assert!(hidden("region=eu/.hive-staging_1/part-0.parquet"));
    }
}
