//! Each pipeline stage on its own, on W1-shaped data (32 f32 features, 64k-row batches): Parquet
//! decode of the projected columns, arrow -> feature batch, the W1 MLP forward pass (feature tiles
//! included), and binary COPY encoding. `cargo bench --bench stages`; figures in benches/README.md.

use std::hint::black_box;
use std::sync::Arc;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use scorer::datagen::{InputGen, ModelGen, feature_names, write_input, write_model};
use scorer::features::FeatureSpec;
use scorer::features::NullPolicy;
use scorer::model::device::DeviceSpec;
use scorer::model::spec::{Activation, ModelKind};
use scorer::sink::ScoredBatch;
use scorer::sink::postgres::CopyEncoder;
use scorer::source::{IdKind, SourceBatch};

const ROWS: usize = 65_536;
const FEATURES: usize = 32;

struct Fixture {
    _dir: tempfile::TempDir,
    parquet: Bytes,
    models: scorer::model::registry::Registry,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    write_input(&InputGen {
        out_dir: data.clone(),
        date: "2026-11-24".parse().expect("date"),
        rows: ROWS as u64,
        files: 1,
        row_group_rows: ROWS,
        features: FEATURES,
        nulls: Some((0, 0.01)),
        seed: 1,
    })
    .expect("input");
    let models = dir.path().join("models");
    write_model(&ModelGen {
        out_dir: models.join("w1_mlp/1"),
        kind: ModelKind::Mlp,
        inputs: feature_names(FEATURES),
        hidden: vec![64, 64],
        outputs: vec!["score".into()],
        output_activation: Activation::Sigmoid,
        seed: 1,
        description: "bench".into(),
    })
    .expect("model");
    let parquet = Bytes::from(std::fs::read(data.join("part-00000.parquet")).expect("read"));
    Fixture {
        _dir: dir,
        parquet,
        models: scorer::model::registry::Registry::new(&models, models.join(".cache")),
    }
}

fn decode(parquet: &Bytes) -> arrow::record_batch::RecordBatch {
    let builder = ParquetRecordBatchReaderBuilder::try_new(parquet.clone()).expect("footer");
    let schema = builder.parquet_schema();
    // id + the 32 features: everything but ds and segment.
    let mask = ProjectionMask::roots(
        schema,
        (0..FEATURES + 3).filter(|&i| i != 1 && i != FEATURES + 2),
    );
    let mut reader = builder
        .with_projection(mask)
        .with_batch_size(ROWS)
        .build()
        .expect("reader");
    reader.next().expect("a batch").expect("decoded")
}

fn stages(c: &mut Criterion) {
    let f = fixture();
    let mut g = c.benchmark_group("stages");
    g.throughput(Throughput::Elements(ROWS as u64));
    g.sample_size(20);

    g.bench_function("parquet_decode_projected", |b| {
        b.iter(|| black_box(decode(&f.parquet)))
    });

    let src = SourceBatch {
        object: Arc::from("bench"),
        row_group: 0,
        first_row: 0,
        batch: decode(&f.parquet),
    };
    let spec = FeatureSpec {
        id_column: "id".into(),
        id_kind: IdKind::Int,
        features: feature_names(FEATURES),
        on_null: NullPolicy::Fill(0.0),
        on_nan: scorer::features::NanPolicy::Fail,
        preprocess: None,
        passed: Default::default(),
        types: Vec::new(),
    };
    g.bench_function("arrow_to_feature_batch", |b| {
        b.iter(|| black_box(spec.build(&src).expect("features")))
    });

    let model = scorer::model::load(&f.models, "w1_mlp", "1", DeviceSpec::Cpu).expect("model");
    let features = spec.build(&src).expect("features");
    g.bench_function("mlp_forward_32_64_64_1", |b| {
        b.iter(|| black_box(model.model.score(&features).expect("score")))
    });

    // The repository's registry: W1's network behind declared preprocessing, and as ONNX.
    let repo = scorer::model::registry::Registry::new(
        concat!(env!("CARGO_MANIFEST_DIR"), "/models"),
        std::env::temp_dir().join("scorer-bench-model-cache"),
    );
    let prepared =
        scorer::model::load(&repo, "w1_mlp_derived", "1", DeviceSpec::Cpu).expect("w1_mlp_derived");
    let with_prep = FeatureSpec {
        features: prepared.model.inputs().features.clone(),
        preprocess: prepared.preprocess.clone(),
        passed: Default::default(),
        types: Vec::new(),
        ..spec.clone()
    };
    g.bench_function(
        "preprocess_derive_impute_standardize_to_feature_batch",
        |b| b.iter(|| black_box(with_prep.build(&src).expect("features"))),
    );
    // ONNX Runtime is loaded at run time: without ORT_DYLIB_PATH (scripts/onnxruntime.sh) this
    // one bench is left out, and says so.
    if std::env::var_os("ORT_DYLIB_PATH").is_some() {
        let onnx =
            scorer::model::load(&repo, "w1_mlp_onnx", "1", DeviceSpec::Cpu).expect("w1_mlp_onnx");
        g.bench_function("onnx_forward_32_64_64_1_one_session", |b| {
            b.iter(|| black_box(onnx.model.score(&features).expect("score")))
        });
    } else {
        eprintln!(
            "stages: ORT_DYLIB_PATH is not set; onnx_forward_32_64_64_1_one_session left out"
        );
    }

    let outputs = model.model.score(&features).expect("score");
    let scored = ScoredBatch {
        ids: Arc::clone(&features.ids),
        outputs,
        rows: features.rows,
        origin: None,
    };
    let encoder = CopyEncoder::new(
        model.model.outputs().to_vec(),
        scorer::sink::VectorType::RealArray,
    );
    let mut buf = Vec::with_capacity(ROWS * 64);
    g.bench_function("copy_binary_encode", |b| {
        b.iter(|| {
            buf.clear();
            encoder.encode(&scored, &mut buf).expect("encode");
            black_box(buf.len())
        })
    });
    // The duplicate-id check on a batch's ids (a fresh set each time).
    g.bench_function("duplicate_id_check", |b| {
        b.iter(|| {
            let mut s = scorer::ids::IdSet::default();
            black_box(s.add(features.ids.as_ref()).is_ok())
        })
    });
    g.finish();
}

/// The same forward pass on the GPU, per 64k-row batch and per 1M-row batch (host -> device copy,
/// forward, device -> host copy included): what `device = "cuda"` buys per batch size.
#[cfg(feature = "cuda")]
fn cuda_forward(c: &mut Criterion) {
    let f = fixture();
    let spec = FeatureSpec {
        id_column: "id".into(),
        id_kind: IdKind::Int,
        features: feature_names(FEATURES),
        on_null: NullPolicy::Fill(0.0),
        on_nan: scorer::features::NanPolicy::Fail,
        preprocess: None,
        passed: Default::default(),
        types: Vec::new(),
    };
    let gpu = scorer::model::load(&f.models, "w1_mlp", "1", DeviceSpec::Cuda(0))
        .expect("the CUDA bench needs a visible GPU");
    let name = gpu.gpu_name.clone().unwrap_or_default();
    eprintln!("cuda_forward on {name}");
    let one = decode(&f.parquet);
    for copies in [1usize, 16] {
        let batch = arrow::compute::concat_batches(&one.schema(), &vec![one.clone(); copies])
            .expect("concat");
        let src = SourceBatch {
            object: Arc::from("bench"),
            row_group: 0,
            first_row: 0,
            batch,
        };
        let features = spec.build(&src).expect("features");
        let mut g = c.benchmark_group("cuda");
        g.throughput(Throughput::Elements(features.rows as u64));
        g.sample_size(20);
        g.bench_function(
            format!("mlp_forward_32_64_64_1_rows_{}", features.rows),
            |b| b.iter(|| black_box(gpu.model.score(&features).expect("score"))),
        );
        g.finish();
    }
}

#[cfg(feature = "cuda")]
criterion_group!(benches, stages, cuda_forward);
#[cfg(not(feature = "cuda"))]
criterion_group!(benches, stages);
criterion_main!(benches);
