//! Parquet's async reader over an object store: ranged GETs for the footer and the projected column
//! chunks only, each pinned to the etag seen at listing time so a file that changes mid-run fails
//! the run instead of mixing two versions.

use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{GetOptions, GetRange, GetResultPayload, ObjectStore};
use parquet::arrow::arrow_reader::ArrowReaderOptions;
use parquet::arrow::async_reader::AsyncFileReader;
use parquet::errors::ParquetError;
use parquet::file::metadata::{ParquetMetaData, ParquetMetaDataReader};

use crate::buffer_pool::{BufferPool, PooledBuffer};

/// Bytes fetched with the first footer read; most footers fit, saving a second round trip.
const FOOTER_PREFETCH: usize = 64 * 1024;

/// Column chunks closer than this are fetched in one request: adjacent chunks (a row group's
/// projected columns are often neighbours) become one read instead of one per column, while a
/// skipped column of any real size is still not fetched.
const COALESCE_GAP: u64 = 64 * 1024;

/// A merged request stops growing at this size. Every chunk sliced from a read keeps the whole
/// read's buffer alive, so a row group's worth in one buffer (17 MB for W1) would stay until its
/// last column is decoded; reads of a few MB go back to the pool sooner. Still few requests per
/// row group. Also the size class of the pooled read buffers.
pub const MAX_MERGED_READ: u64 = 4 * 1024 * 1024;

/// Concurrent requests for one row group's merged ranges.
pub const PARALLEL_READS: usize = 8;

/// An [`AsyncFileReader`] for one object.
#[derive(Debug, Clone)]
pub struct ObjectReader {
    store: Arc<dyn ObjectStore>,
    path: Path,
    size: u64,
    etag: Option<String>,
    buffers: Arc<BufferPool>,
}

impl ObjectReader {
    /// A reader for `path` of `size` bytes that reads into `buffers`; reads fail if the object's
    /// etag is no longer `etag`.
    pub fn new(
        store: Arc<dyn ObjectStore>,
        path: Path,
        size: u64,
        etag: Option<String>,
        buffers: Arc<BufferPool>,
    ) -> Self {
        Self {
            store,
            path,
            size,
            etag,
            buffers,
        }
    }

    /// Refuses a range outside the object (or reversed) before any arithmetic on it: the ranges
    /// come from the footer, which a corrupt or hostile file can fill with anything.
    fn check_range(&self, range: &Range<u64>) -> parquet::errors::Result<()> {
        if range.start > range.end || range.end > self.size {
            return Err(ParquetError::General(format!(
                "the footer asks for bytes {range:?} of a {}-byte object; the file is corrupt",
                self.size
            )));
        }
        Ok(())
    }

    async fn get(&self, range: Range<u64>) -> parquet::errors::Result<Bytes> {
        self.check_range(&range)?;
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
        let range = result.range;
        let len = usize::try_from(range.end - range.start)
            .map_err(|_| ParquetError::General(format!("range {range:?} is too large")))?;
        let mut buf = self.buffers.take(len);
        match result.payload {
            GetResultPayload::File(mut file, local) => {
                let start = range.start;
                let read = tokio::task::spawn_blocking(move || {
                    use std::io::{Read, Seek, SeekFrom};
                    file.seek(SeekFrom::Start(start))?;
                    file.read_exact(buf.as_mut_slice())?;
                    Ok::<PooledBuffer, std::io::Error>(buf)
                });
                let buf = read
                    .await
                    .map_err(|e| ParquetError::General(format!("read task failed: {e}")))?
                    .map_err(|e| {
                        // Kept as an I/O error of its kind, so its class is the kind's.
                        ParquetError::External(Box::new(std::io::Error::new(
                            e.kind(),
                            format!("reading bytes {range:?} of {}: {e}", local.display()),
                        )))
                    })?;
                Ok(buf.freeze())
            }
            GetResultPayload::Stream(mut body) => {
                let mut filled = 0;
                while let Some(chunk) = body.try_next().await.map_err(|e| self.error(e))? {
                    let end = filled + chunk.len();
                    let Some(dest) = buf.as_mut_slice().get_mut(filled..end) else {
                        return Err(self.wrong_length(&range, end));
                    };
                    dest.copy_from_slice(&chunk);
                    filled = end;
                }
                if filled != len {
                    return Err(self.wrong_length(&range, filled));
                }
                Ok(buf.freeze())
            }
        }
    }

    fn wrong_length(&self, range: &Range<u64>, got: usize) -> ParquetError {
        ParquetError::General(format!(
            "{}: asked for bytes {range:?} and got {got} bytes instead of {}",
            self.path,
            range.end - range.start
        ))
    }

    /// Says plainly when the object changed under the run (its etag no longer matches the one
    /// listed), instead of object_store's precondition wording.
    fn error(&self, e: object_store::Error) -> ParquetError {
        match e {
            object_store::Error::Precondition { .. } => {
                ParquetError::External(Box::new(crate::error::ObjectChanged {
                    etag: self.etag.clone().unwrap_or_else(|| "unknown".into()),
                }))
            }
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
        async move {
            for r in &ranges {
                this.check_range(r)?;
            }
            let (merged, holder) = merge_ranges(&ranges, COALESCE_GAP, MAX_MERGED_READ);
            let fetched: Vec<Bytes> = futures::stream::iter(merged.iter().cloned())
                .map(|r| this.get(r))
                .buffered(PARALLEL_READS)
                .try_collect()
                .await?;
            Ok(ranges
                .iter()
                .zip(holder)
                .map(|(r, i)| {
                    let base = merged[i].start;
                    let end = usize::try_from(r.end - base)
                        .unwrap_or(usize::MAX)
                        .min(fetched[i].len());
                    let start = usize::try_from(r.start - base).unwrap_or(end).min(end);
                    fetched[i].slice(start..end)
                })
                .collect())
        }
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

/// Merged ranges covering `ranges`, and for each input range the index of the merged range that
/// holds it: neighbours closer than `gap` are joined unless the result would exceed `max_len` (a
/// single range longer than that stays whole).
fn merge_ranges(ranges: &[Range<u64>], gap: u64, max_len: u64) -> (Vec<Range<u64>>, Vec<usize>) {
    let mut order: Vec<usize> = (0..ranges.len()).collect();
    order.sort_unstable_by_key(|&i| (ranges[i].start, ranges[i].end));
    let mut merged: Vec<Range<u64>> = Vec::with_capacity(ranges.len());
    let mut holder = vec![0; ranges.len()];
    for i in order {
        let r = &ranges[i];
        match merged.last_mut() {
            Some(last)
                if r.start <= last.end.saturating_add(gap)
                    && r.end.max(last.end) - last.start <= max_len =>
            {
                last.end = last.end.max(r.end);
            }
            _ => merged.push(r.clone()),
        }
        holder[i] = merged.len() - 1;
    }
    (merged, holder)
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::ObjectStoreExt;
    use object_store::local::LocalFileSystem;

    #[test]
    fn neighbours_merge_up_to_the_size_cap_and_every_range_finds_its_read() {
        let ranges = vec![30..40, 0..10, 12..20, 100..110, 41..70];
        let (merged, holder) = merge_ranges(&ranges, 10, 50);
        // 0..10 + 12..20 + 30..40 + 41..70 would be 70 long: the cap splits before 41..70.
        assert_eq!(merged, vec![0..40, 41..70, 100..110]);
        for (r, i) in ranges.iter().zip(&holder) {
            assert!(
                merged[*i].start <= r.start && r.end <= merged[*i].end,
                "{r:?}"
            );
        }
        // A range longer than the cap stays whole.
        let long = 0..100;
        assert_eq!(
            merge_ranges(std::slice::from_ref(&long), 10, 50).0,
            vec![long]
        );
    }

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
            BufferPool::new(0, 1),
        );
        assert_eq!(reader.get_bytes(0..8).await.unwrap().len(), 8);
        // Rewritten with another size: a new etag.
        store.put(&path, vec![2u8; 128].into()).await.unwrap();
        let err = reader.get_bytes(0..8).await.unwrap_err();
        // Typed, so the run exits with the retryable code: a new run reads the new version.
        assert_eq!(
            crate::error::parquet_class(&err),
            crate::error::ErrorClass::Transient
        );
        let err = err.to_string();
        assert!(err.contains("changed after it was listed"), "{err}");
        assert!(err.contains(listed.e_tag.as_deref().unwrap()), "{err}");
    }
}
