//! Projection pushdown, proven by counting bytes: reading 4 of 32 feature columns through the
//! source stage fetches well under half of each object.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use futures::stream::BoxStream;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, Result,
};
use scorer::datagen::{InputGen, write_input};
use scorer::source::storage::StorageOptions;

/// A store that counts the bytes and requests of every GET it serves.
#[derive(Debug)]
struct Counting {
    inner: Arc<dyn ObjectStore>,
    bytes: AtomicU64,
    gets: AtomicU64,
}

impl fmt::Display for Counting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Counting({})", self.inner)
    }
}

#[async_trait]
impl ObjectStore for Counting {
    async fn put_opts(&self, l: &Path, p: PutPayload, o: PutOptions) -> Result<PutResult> {
        self.inner.put_opts(l, p, o).await
    }
    async fn put_multipart_opts(
        &self,
        l: &Path,
        o: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(l, o).await
    }
    async fn get_opts(&self, l: &Path, o: GetOptions) -> Result<GetResult> {
        let head = o.head;
        let r = self.inner.get_opts(l, o).await?;
        if !head {
            self.bytes
                .fetch_add(r.range.end - r.range.start, Ordering::Relaxed);
            self.gets.fetch_add(1, Ordering::Relaxed);
        }
        Ok(r)
    }
    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        self.inner.delete_stream(locations)
    }
    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list(prefix)
    }
    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }
    async fn copy_opts(&self, from: &Path, to: &Path, o: CopyOptions) -> Result<()> {
        self.inner.copy_opts(from, to, o).await
    }
}

/// 60,000 W1-shaped rows in two files, and a location over them that counts what it fetches.
fn counted_input() -> (
    tempfile::TempDir,
    u64,
    scorer::source::InputLocation,
    Arc<Counting>,
) {
    let dir = tempfile::tempdir().unwrap();
    let files = write_input(&InputGen {
        out_dir: dir.path().to_path_buf(),
        date: "2026-11-24".parse().unwrap(),
        rows: 60_000,
        files: 2,
        row_group_rows: 16_384,
        features: 32,
        nulls: None,
        seed: 7,
    })
    .unwrap();
    let total: u64 = files
        .iter()
        .map(|f| std::fs::metadata(f).unwrap().len())
        .sum();
    let url = format!("{}/*.parquet", dir.path().display());
    let mut location = scorer::source::resolve(&url, &StorageOptions::default()).unwrap();
    let counting = Arc::new(Counting {
        inner: Arc::new(LocalFileSystem::new()),
        bytes: AtomicU64::new(0),
        gets: AtomicU64::new(0),
    });
    location.store = Arc::clone(&counting) as Arc<dyn ObjectStore>;
    (dir, total, location, counting)
}

/// Streams the plan; returns the rows, checking every batch has `columns` columns.
async fn stream_all(plan: scorer::source::CheckedInput, columns: usize) -> usize {
    let (tx, mut rx) = tokio::sync::mpsc::channel(4);
    let reading =
        tokio::spawn(async move { scorer::source::send_batches(&plan, 2, 8192, tx, None).await });
    let mut rows = 0;
    while let Some(b) = rx.recv().await {
        assert_eq!(b.batch.num_columns(), columns, "only the planned columns");
        rows += b.batch.num_rows();
    }
    reading.await.unwrap().unwrap();
    rows
}

#[tokio::test]
async fn reading_4_of_32_features_fetches_well_under_half_the_bytes() {
    let (_dir, total, location, counting) = counted_input();
    let features: Vec<String> = ["f0", "f5", "f17", "f30"].map(String::from).to_vec();
    let plan = scorer::source::footers::check(&location, "id", &features)
        .await
        .unwrap();
    // id + 4 features, nothing else.
    assert_eq!(stream_all(plan, 5).await, 60_000);

    let fetched = counting.bytes.load(Ordering::Relaxed);
    let share = fetched as f64 / total as f64;
    println!(
        "fetched {fetched} of {total} bytes ({:.1}%) in {} GETs",
        share * 100.0,
        counting.gets.load(Ordering::Relaxed)
    );
    // id + 4 of 32 features (plus ds and a string column left unread) is about 1/7 of the data.
    assert!(share < 0.25, "fetched {:.1}% of the bytes", share * 100.0);
}

/// A model with preprocessing reads only the columns its steps and inputs name: here an input
/// passed through (f0), two columns a polars expression reads (f3, f7) and a standardized one
/// (f9), not the other 28.
#[tokio::test]
async fn preprocessing_reads_only_the_columns_its_expressions_reference() {
    let (_dir, total, location, counting) = counted_input();
    let spec: scorer::preprocess::PreprocessSpec = toml::from_str(
        r#"
        derive = [{ name = "ratio", sql = "f3 / (abs(f7) + 1)" }]
        standardize = { f9 = { mean = 0.5, scale = 2.0 } }
        "#,
    )
    .unwrap();
    let inputs: Vec<String> = ["f0", "ratio", "f9"].map(String::from).to_vec();
    let pre = scorer::preprocess::Preprocessor::compile(&spec, &inputs).unwrap();
    let mut read: Vec<&str> = pre.raw_columns().iter().map(|c| c.name.as_str()).collect();
    read.sort();
    assert_eq!(read, ["f0", "f3", "f7", "f9"]);
    let plan = scorer::source::footers::check_columns(&location, "id", pre.raw_columns())
        .await
        .unwrap();
    assert_eq!(stream_all(plan, 5).await, 60_000);
    let share = counting.bytes.load(Ordering::Relaxed) as f64 / total as f64;
    assert!(share < 0.25, "fetched {:.1}% of the bytes", share * 100.0);
}
