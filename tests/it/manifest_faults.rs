//! The Parquet output's commit under faults, driven through the sink itself over object_store's
//! in-memory store: a manifest PUT whose answer is lost after the store kept it, and two runs of
//! one output URL interleaved (the first still writing while the second commits three times).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arrow::array::{ArrayRef, Float32Array, Int64Array};
use async_trait::async_trait;
use futures::stream::BoxStream;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    ObjectStoreExt, PutMultipartOptions, PutOptions, PutPayload, PutResult,
};
use scorer::contract::{OutputColumn, OutputType};
use scorer::db::lock::FileLock;
use scorer::sink::objects::{Manifest, ObjectsLayout, ObjectsPartitionWriter, run_dir};
use scorer::sink::{ScoredBatch, Sink, SinkSpec};
use scorer::source::IdKind;
use uuid::Uuid;

use crate::common::DATE;

/// A real store with one injected fault: while `lose_manifest_answer` is set, a PUT of a
/// `_manifest.json` is stored and then answered with an error, as when a timeout fires after the
/// server kept the object.
#[derive(Debug)]
struct LostAnswer {
    inner: InMemory,
    lose_manifest_answer: AtomicBool,
}

impl std::fmt::Display for LostAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LostAnswer({})", self.inner)
    }
}

#[async_trait]
impl ObjectStore for LostAnswer {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        let stored = self.inner.put_opts(location, payload, opts).await?;
        if location.filename() == Some("_manifest.json")
            && self.lose_manifest_answer.load(Ordering::SeqCst)
        {
            return Err(object_store::Error::Generic {
                store: "LostAnswer",
                source: "operation timed out (the store kept the object)".into(),
            });
        }
        Ok(stored)
    }
    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }
    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        self.inner.get_opts(location, options).await
    }
    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        self.inner.delete_stream(locations)
    }
    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }
    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }
    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}

const PREFIX: &str = "scores/dt=2026-11-24";

fn layout(store: &Arc<LostAnswer>) -> ObjectsLayout {
    ObjectsLayout {
        store: Arc::clone(store) as Arc<dyn ObjectStore>,
        prefix: Path::from(PREFIX),
        url: format!("memory:///{PREFIX}/"),
        files: scorer::sink::objects::FileLayout::RunDirectory,
        spec: SinkSpec {
            job: "faults".into(),
            id_column: "id".into(),
            id_kind: IdKind::Int,
            score_columns: vec![OutputColumn {
                name: "score".into(),
                ty: OutputType::Float32,
            }],
            date: DATE.parse().unwrap(),
            run_id: Uuid::now_v7(),
            copy_streams: 1,
            checkpoints: None,
            adopted_rows: None,
            sharded: false,
            produced_by: String::new(),
            index: false,
            readers: Vec::new(),
            passthrough: Vec::new(),
            vectors: scorer::sink::VectorType::RealArray,
        },
    }
}

/// Opens a writer and stages `rows` rows (ids from 0).
async fn staged(store: &Arc<LostAnswer>, rows: usize) -> (Uuid, Box<dyn Sink>) {
    let layout = layout(store);
    let run = layout.spec.run_id;
    let mut sink: Box<dyn Sink> = Box::new(ObjectsPartitionWriter::begin(layout).await.unwrap());
    let ids: ArrayRef = Arc::new(Int64Array::from_iter_values(0..rows as i64));
    let scores: ArrayRef = Arc::new(Float32Array::from(vec![0.5f32; rows]));
    sink.write(&ScoredBatch {
        ids,
        outputs: vec![scores],
        rows,
        origin: None,
    })
    .await
    .unwrap();
    assert_eq!(sink.finish().await.unwrap(), rows as u64);
    (run, sink)
}

async fn manifest(store: &LostAnswer) -> Manifest {
    let got = store
        .get(&Path::from(format!("{PREFIX}/_manifest.json")))
        .await
        .unwrap();
    serde_json::from_slice(&got.bytes().await.unwrap()).unwrap()
}

/// Whether every file the manifest names is in the store.
async fn files_present(store: &LostAnswer, m: &Manifest) -> bool {
    for f in &m.files {
        if store
            .head(&Path::from(format!("{PREFIX}/{}", f.path)))
            .await
            .is_err()
        {
            return false;
        }
    }
    true
}

fn lock(dir: &tempfile::TempDir) -> FileLock {
    FileLock::try_acquire(&dir.path().join("scorer.db"), &Uuid::now_v7().to_string())
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn a_manifest_put_whose_answer_is_lost_is_found_committed_and_its_files_kept() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(LostAnswer {
        inner: InMemory::new(),
        lose_manifest_answer: AtomicBool::new(true),
    });
    let (run, sink) = staged(&store, 1_000).await;
    // The PUT errs, but the manifest read back names this run: the commit happened.
    sink.publish(&mut lock(&dir), &[]).await.unwrap();
    let m = manifest(&store).await;
    assert_eq!((m.run_id, m.rows), (run, 1_000));
    assert!(
        files_present(&store, &m).await,
        "a committed manifest must not point at deleted files"
    );

    // A later run whose answer is lost too, then one that goes through: each manifest's files
    // stay readable, and the oldest run's go only once two newer ones committed.
    let (second, sink) = staged(&store, 700).await;
    sink.publish(&mut lock(&dir), &[]).await.unwrap();
    store.lose_manifest_answer.store(false, Ordering::SeqCst);
    let (third, sink) = staged(&store, 500).await;
    sink.publish(&mut lock(&dir), &[]).await.unwrap();
    let m = manifest(&store).await;
    assert_eq!((m.run_id, m.previous_run_id), (third, Some(second)));
    assert!(files_present(&store, &m).await);
    let left = |run: Uuid| {
        let store = Arc::clone(&store);
        async move {
            store
                .list(Some(&run_dir(&Path::from(PREFIX), run)))
                .next_item()
                .await
                .is_some()
        }
    };
    assert!(
        !left(run).await,
        "the first run's files are gone after two newer commits"
    );
    assert!(left(second).await && left(third).await);
}

#[tokio::test]
async fn two_runs_of_one_url_do_not_delete_each_others_files() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(LostAnswer {
        inner: InMemory::new(),
        lose_manifest_answer: AtomicBool::new(false),
    });
    // Run A stages its files and is slow to commit; run B commits three times meanwhile (another
    // job, or another ledger, writing the same URL).
    let (a, slow) = staged(&store, 800).await;
    for _ in 0..3 {
        let (_, sink) = staged(&store, 300).await;
        sink.publish(&mut lock(&dir), &[]).await.unwrap();
    }
    slow.publish(&mut lock(&dir), &[]).await.unwrap();
    let m = manifest(&store).await;
    assert_eq!((m.run_id, m.rows), (a, 800));
    assert!(
        files_present(&store, &m).await,
        "the slow run's files survived the other run's commits"
    );
}

/// `next()` on a listing, without importing the stream extension traits at every call.
trait NextItem {
    async fn next_item(self) -> Option<object_store::Result<ObjectMeta>>;
}

impl NextItem for BoxStream<'static, object_store::Result<ObjectMeta>> {
    async fn next_item(mut self) -> Option<object_store::Result<ObjectMeta>> {
        futures::StreamExt::next(&mut self).await
    }
}
