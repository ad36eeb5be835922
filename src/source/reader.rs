//! Parquet's async reader over an object store: ranged GETs for the footer and the projected column
//! chunks only, each pinned to the etag seen at listing time so a file that changes mid-run fails
//! the run instead of mixing two versions.

use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use futures::FutureExt;
use futures::future::BoxFuture;
use object_store::path::Path;
use object_store::{GetOptions, GetRange, ObjectStore};
use parquet::arrow::arrow_reader::ArrowReaderOptions;
use parquet::arrow::async_reader::AsyncFileReader;
use parquet::errors::ParquetError;
use parquet::file::metadata::{ParquetMetaData, ParquetMetaDataReader};

/// Bytes fetched with the first footer read; most footers fit, saving a second round trip.
const FOOTER_PREFETCH: usize = 64 * 1024;

/// Column chunks closer than this are fetched in one request: adjacent chunks (a row group's
/// projected columns are often neighbours) become one read instead of one per column, while a
/// skipped column of any real size is still not fetched.
const COALESCE_GAP: u64 = 64 * 1024;

/// An [`AsyncFileReader`] for one object.
#[derive(Debug, Clone)]
pub struct ObjectReader {
    store: Arc<dyn ObjectStore>,
    path: Path,
    size: u64,
    etag: Option<String>,
}

impl ObjectReader {
    /// A reader for `path` of `size` bytes; reads fail if the object's etag is no longer `etag`.
    pub fn new(store: Arc<dyn ObjectStore>, path: Path, size: u64, etag: Option<String>) -> Self {
        Self {
            store,
            path,
            size,
            etag,
        }
    }

    async fn get(&self, range: Range<u64>) -> parquet::errors::Result<Bytes> {
        let options = GetOptions {
            range: Some(GetRange::Bounded(range)),
            if_match: self.etag.clone(),
            ..Default::default()
        };
        let result = self
            .store
            .get_opts(&self.path, options)
            .await
            .map_err(external)?;
        result.bytes().await.map_err(external)
    }
}

fn external(e: object_store::Error) -> ParquetError {
    ParquetError::External(Box::new(e))
}

impl AsyncFileReader for ObjectReader {
    fn get_bytes(&mut self, range: Range<u64>) -> BoxFuture<'_, parquet::errors::Result<Bytes>> {
        self.get(range).boxed()
    }

    fn get_byte_ranges(
        &mut self,
        ranges: Vec<Range<u64>>,
    ) -> BoxFuture<'_, parquet::errors::Result<Vec<Bytes>>> {
        let this = &*self;
        async move { object_store::coalesce_ranges(&ranges, |r| this.get(r), COALESCE_GAP).await }
            .boxed()
    }

    fn get_metadata<'a>(
        &'a mut self,
        _options: Option<&'a ArrowReaderOptions>,
    ) -> BoxFuture<'a, parquet::errors::Result<Arc<ParquetMetaData>>> {
        async move {
            let size = self.size;
            let meta = ParquetMetaDataReader::new()
                .with_prefetch_hint(Some(FOOTER_PREFETCH))
                .load_and_finish(self, size)
                .await?;
            Ok(Arc::new(meta))
        }
        .boxed()
    }
}
