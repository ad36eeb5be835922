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
            .map_err(|e| self.error(e))?;
        result.bytes().await.map_err(|e| self.error(e))
    }

    /// Says plainly when the object changed under the run (its etag no longer matches the one
    /// listed), instead of object_store's precondition wording.
    fn error(&self, e: object_store::Error) -> ParquetError {
        match e {
            object_store::Error::Precondition { .. } => ParquetError::General(format!(
                "the object changed after it was listed (etag was {}); nothing from this run \
                 is kept, run again to score the new version",
                self.etag.as_deref().unwrap_or("unknown")
            )),
            other => external(other),
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::ObjectStoreExt;
    use object_store::local::LocalFileSystem;

    #[tokio::test]
    async fn a_changed_object_is_refused_with_a_clear_message() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn ObjectStore> =
            Arc::new(LocalFileSystem::new_with_prefix(dir.path()).unwrap());
        let path = Path::from("x.bin");
        store.put(&path, vec![1u8; 64].into()).await.unwrap();
        let listed = store.head(&path).await.unwrap();
        let mut reader = ObjectReader::new(
            Arc::clone(&store),
            path.clone(),
            listed.size,
            listed.e_tag.clone(),
        );
        assert_eq!(reader.get_bytes(0..8).await.unwrap().len(), 8);
        // Rewritten with another size: a new etag.
        store.put(&path, vec![2u8; 128].into()).await.unwrap();
        let err = reader.get_bytes(0..8).await.unwrap_err().to_string();
        assert!(err.contains("changed after it was listed"), "{err}");
        assert!(err.contains(listed.e_tag.as_deref().unwrap()), "{err}");
    }
}
