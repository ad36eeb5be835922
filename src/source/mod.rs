//! The source stage: list a job's input objects, check their Parquet footers against what the job
//! needs before any scoring, then stream the projected columns row group by row group with a bounded
//! number in flight, so memory depends on the row-group size, not on the input size.

pub mod location;
pub mod plan;
pub mod reader;

use std::sync::Arc;

use arrow::record_batch::RecordBatch;
use futures::{Stream, StreamExt, TryStreamExt};
use object_store::ObjectMeta;
use parquet::arrow::ParquetRecordBatchStreamBuilder;
use thiserror::Error;

pub use location::{InputLocation, resolve};
pub use plan::{IdKind, InputPlan, PlannedObject};
use reader::ObjectReader;

/// A problem with the input data; every variant names the URL or object concerned.
#[derive(Debug, Error)]
pub enum SourceError {
    #[error("input {url}: {reason}")]
    Url { url: String, reason: String },
    #[error("input {url}: listing failed: {source}")]
    List {
        url: String,
        source: object_store::Error,
    },
    #[error("input {url}: no Parquet objects found")]
    NoObjects { url: String },
    #[error("input {object}: not a readable Parquet file: {message}")]
    Footer { object: String, message: String },
    #[error("input does not match the job:\n  - {}", problems.join("\n  - "))]
    Schema { problems: Vec<String> },
    #[error("input {object}, row group {row_group}: {message}")]
    Read {
        object: String,
        row_group: usize,
        message: String,
    },
}

/// One decoded slice of a row group, with where it came from for error messages.
#[derive(Debug, Clone)]
pub struct SourceBatch {
    pub object: Arc<str>,
    pub row_group: usize,
    pub batch: RecordBatch,
}

/// Lists the objects at a location, sorted by path, leaving out `_`- and `.`-prefixed names
/// (`_SUCCESS`, `.crc` files) that writers put beside their data.
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
        let hidden = meta
            .location
            .filename()
            .is_some_and(|f| f.starts_with('_') || f.starts_with('.'));
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

/// Streams every planned row group in order, decoding up to `in_flight` row groups concurrently on
/// the runtime's worker threads. Each yielded batch has at most `batch_rows` rows.
pub fn stream_batches(
    plan: &InputPlan,
    in_flight: usize,
    batch_rows: usize,
) -> impl Stream<Item = Result<SourceBatch, SourceError>> + Send + 'static {
    let units: Vec<(Arc<PlannedObject>, Arc<str>, usize)> = plan
        .objects
        .iter()
        .flat_map(|o| {
            let url: Arc<str> = Arc::from(o.url.as_str());
            (0..o.row_groups()).map(move |rg| (Arc::clone(o), Arc::clone(&url), rg))
        })
        .collect();
    let store = Arc::clone(&plan.store);
    futures::stream::iter(units)
        .map(move |(object, url, rg)| {
            let store = Arc::clone(&store);
            let task = tokio::spawn(read_row_group(
                store,
                object,
                Arc::clone(&url),
                rg,
                batch_rows,
            ));
            async move {
                task.await.map_err(|e| SourceError::Read {
                    object: url.to_string(),
                    row_group: rg,
                    message: format!("reader task failed: {e}"),
                })?
            }
        })
        .buffered(in_flight.max(1))
        .map_ok(|batches| futures::stream::iter(batches.into_iter().map(Ok)))
        .try_flatten()
}

async fn read_row_group(
    store: Arc<dyn object_store::ObjectStore>,
    object: Arc<PlannedObject>,
    url: Arc<str>,
    row_group: usize,
    batch_rows: usize,
) -> Result<Vec<SourceBatch>, SourceError> {
    let read_err = |message: String| SourceError::Read {
        object: url.to_string(),
        row_group,
        message,
    };
    let reader = ObjectReader::new(
        store,
        object.meta.location.clone(),
        object.meta.size,
        object.meta.e_tag.clone(),
    );
    let mut stream =
        ParquetRecordBatchStreamBuilder::new_with_metadata(reader, object.arrow_meta.clone())
            .with_projection(object.projection.clone())
            .with_row_groups(vec![row_group])
            .with_batch_size(batch_rows)
            .build()
            .map_err(|e| read_err(e.to_string()))?;
    let mut out = Vec::new();
    while let Some(batch) = stream
        .try_next()
        .await
        .map_err(|e| read_err(e.to_string()))?
    {
        out.push(SourceBatch {
            object: Arc::clone(&url),
            row_group,
            batch,
        });
    }
    Ok(out)
}
