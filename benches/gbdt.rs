//! The `gbdt` evaluator per objective and format: each committed fixture model
//! (tests/fixtures/gbdt: 30 boosting rounds, depth 5 / 24 leaves) over 65,536 of its rows (its
//! fixture rows repeated, missing values and threshold rows included) on one core, as one row
//! slice of the scoring stage. With the benchmark's 500-tree depth-8 models made by benches/gbdt.sh
//! (data/bench-models), those too. `cargo bench --bench gbdt`; figures in benches/README.md.

use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Arc;

use arrow::record_batch::RecordBatch;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use scorer::features::{FeatureBatch, FeatureSpec};
use scorer::model::LoadedModel;
use scorer::model::device::DeviceSpec;
use scorer::model::registry::Registry;
use scorer::source::{IdKind, SourceBatch};

const ROWS: usize = 65_536;
const DATE: &str = "2026-11-24";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn rows_of(dir: &std::path::Path) -> RecordBatch {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("input directory")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "parquet"))
        .collect();
    files.sort();
    let mut batches = Vec::new();
    let mut have = 0;
    for path in files {
        let reader =
            ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(path).expect("open"))
                .expect("parquet")
                .build()
                .expect("reader");
        for b in reader {
            let b = b.expect("batch");
            have += b.num_rows();
            batches.push(b);
        }
        if have >= ROWS {
            break;
        }
    }
    // repeat small fixtures up to ROWS rows
    let mut all = Vec::new();
    let mut n = 0;
    while n < ROWS {
        for b in &batches {
            let take = b.num_rows().min(ROWS - n);
            all.push(b.slice(0, take));
            n += take;
        }
    }
    arrow::compute::concat_batches(&all[0].schema(), &all).expect("concat")
}

fn feature_batch(model: &LoadedModel, batch: RecordBatch) -> FeatureBatch {
    FeatureSpec {
        id_column: "id".into(),
        id_kind: IdKind::Int,
        features: model.spec.inputs.clone(),
        on_null: scorer::features::NullPolicy::Fill(f32::NAN),
        on_nan: scorer::features::NanPolicy::Pass,
        preprocess: None,
        passed: Default::default(),
        types: Vec::new(),
    }
    .build(&SourceBatch {
        object: Arc::from("bench"),
        row_group: 0,
        first_row: 0,
        batch,
    })
    .expect("features")
}

fn bench(c: &mut Criterion) {
    let cache = tempfile::tempdir().expect("temp dir");
    let fixtures = repo().join("tests/fixtures/gbdt");
    let registry = Registry::new(fixtures.join("models"), cache.path().to_path_buf());
    let mut group = c.benchmark_group("gbdt_fixture");
    group.throughput(Throughput::Elements(ROWS as u64));
    for name in [
        "xgb_binary",
        "xgb_multiclass",
        "xgb_regression",
        "xgb_poisson",
        "xgb_categorical",
        "lgb_binary",
        "lgb_multiclass",
        "lgb_regression",
        "lgb_poisson",
        "lgb_categorical",
    ] {
        let model = scorer::model::load(&registry, name, "1", DeviceSpec::Cpu).expect("model");
        let fb = feature_batch(
            &model,
            rows_of(&fixtures.join(format!("data/{name}/dt={DATE}"))),
        );
        group.bench_function(name, |b| {
            b.iter(|| black_box(model.model.score(&fb).expect("score")))
        });
    }
    group.finish();

    let big = repo().join("data/bench-models");
    let w1 = repo().join(format!("data/w1/dt={DATE}"));
    if big.join("w1_gbdt_xgb").is_dir() && w1.is_dir() {
        let registry = Registry::new(big, cache.path().to_path_buf());
        let mut group = c.benchmark_group("gbdt_w1_500x8");
        group.throughput(Throughput::Elements(ROWS as u64));
        group.sample_size(10);
        for name in ["w1_gbdt_xgb", "w1_gbdt_lgb"] {
            let model = scorer::model::load(&registry, name, "1", DeviceSpec::Cpu).expect("model");
            let fb = feature_batch(&model, rows_of(&w1));
            group.bench_function(name, |b| {
                b.iter(|| black_box(model.model.score(&fb).expect("score")))
            });
        }
        group.finish();
    } else {
        eprintln!(
            "gbdt bench: no data/bench-models (run benches/gbdt.sh once); the 500-tree models are left out"
        );
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
