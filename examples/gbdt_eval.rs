//! Times scorer's tree evaluators alone, and checks them against the training libraries, for
//! benches/gbdt.sh (beside XGBoost's `inplace_predict` and LightGBM's `predict` on the same rows)
//! and scripts/gpu-gbdt.sh (the same model on a GPU):
//!
//!   gbdt_eval bench MODELS_DIR MODEL INPUT ROWS RUNS OUT [DEVICE]
//!   gbdt_eval parity FIXTURES_DIR [DEVICE]
//!   gbdt_eval w1 OUT_DIR ROWS
//!
//! `bench` reads the first ROWS rows of INPUT's Parquet files (sorted by name; nulls are missing
//! values), or makes ROWS W1-shaped rows when INPUT is `w1`; scores them once to warm up and RUNS
//! times timed, the way the scoring stage drives the model (64k-row batches, split into one row
//! slice per core on the rayon pool for the CPU evaluator, whole for a GPU); prints `rows
//! median_seconds each_run_seconds…`, and writes the first output's values to OUT (little-endian
//! f32; `GBDT_EVAL_OUTPUT=NAME` picks another, such as contributions) so the caller can check
//! them against the libraries.
//!
//! `parity` scores every fixture in FIXTURES_DIR (tests/fixtures/gbdt) on DEVICE and prints the
//! largest error against the library's own `predict`, in units of the tolerance (1e-5 relative or
//! 1e-6 absolute); it fails when one is over. A model the device refuses is reported as refused.
//! DEVICE is `cpu` (default), `cuda`, `cuda:N` or `auto`.
//!
//! `w1` writes ROWS W1-shaped rows (32 f32 features f0..f31, 1% nulls in f0; what
//! `scorer-datagen input --features 32 --null-feature 0 --null-fraction 0.01 --seed 1` writes)
//! to OUT_DIR, for a host that has no scorer-datagen.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use arrow::array::Float64Array;
use arrow::record_batch::RecordBatch;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use rayon::prelude::*;
use scorer::contract::ExecutionPolicy;
use scorer::features::{FeatureBatch, FeatureSpec};
use scorer::model::LoadedModel;
use scorer::model::device::DeviceSpec;
use scorer::model::registry::Registry;
use scorer::source::{IdKind, SourceBatch};

const BATCH_ROWS: usize = 65_536;
const DATE: &str = "2026-11-24";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("bench") => bench(&args[1..]),
        Some("parity") => parity(&args[1..]),
        Some("w1") => {
            let (Some(out), Some(rows)) = (args.get(1), args.get(2)) else {
                bail!("usage: gbdt_eval w1 OUT_DIR ROWS");
            };
            write_w1(Path::new(out), rows.parse().context("ROWS")?)
        }
        _ => bail!(
            "usage: gbdt_eval bench MODELS_DIR MODEL INPUT ROWS RUNS OUT [DEVICE]\n       gbdt_eval parity FIXTURES_DIR [DEVICE]\n       gbdt_eval w1 OUT_DIR ROWS"
        ),
    }
}

fn device(arg: Option<&String>) -> Result<DeviceSpec> {
    arg.map_or(Ok(DeviceSpec::Cpu), |d| {
        d.parse().map_err(|e: String| anyhow::anyhow!(e))
    })
}

fn feature_spec(model: &LoadedModel) -> FeatureSpec {
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
}

fn parquet_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "parquet"))
        .collect();
    files.sort();
    Ok(files)
}

/// The first `rows` rows of the directory's files, in 64k-row record batches.
fn read_rows(dir: &Path, rows: usize) -> Result<Vec<RecordBatch>> {
    let mut out = Vec::new();
    let mut have = 0;
    for path in parquet_files(dir)? {
        let reader = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&path)?)?
            .with_batch_size(BATCH_ROWS)
            .build()?;
        for batch in reader {
            let batch = batch?;
            let take = batch.num_rows().min(rows - have);
            out.push(batch.slice(0, take));
            have += take;
            if have == rows {
                return Ok(out);
            }
        }
    }
    bail!("{} holds {have} rows, fewer than {rows}", dir.display())
}

fn bench(args: &[String]) -> Result<()> {
    let (Some(models), Some(model), Some(input), Some(rows), Some(runs), Some(out)) = (
        args.first(),
        args.get(1),
        args.get(2),
        args.get(3),
        args.get(4),
        args.get(5),
    ) else {
        bail!("usage: gbdt_eval bench MODELS_DIR MODEL INPUT ROWS RUNS OUT [DEVICE]");
    };
    let rows: usize = rows.parse().context("ROWS")?;
    let runs: usize = runs.parse().context("RUNS")?;
    let device = device(args.get(6))?;
    let models = PathBuf::from(models);
    let registry = Registry::new(models.clone(), models.join(".cache"));
    let loaded = scorer::model::load(&registry, model, "latest", device)?;
    let spec = feature_spec(&loaded);

    let generated = tempfile::tempdir()?;
    let dir = if input == "w1" {
        write_w1(generated.path(), rows)?;
        generated.path().to_path_buf()
    } else {
        PathBuf::from(input)
    };
    // each 64k-row batch as the scoring stage splits it
    let threads = rayon::current_num_threads().max(1);
    let per_slice = |n: usize| match loaded.model.execution() {
        ExecutionPolicy::RowSlices { min_rows } => n.div_ceil(threads).max(min_rows),
        ExecutionPolicy::WholeBatches => n,
    };
    let mut batches: Vec<Vec<FeatureBatch>> = Vec::new();
    for batch in read_rows(&dir, rows)? {
        let n = batch.num_rows();
        let per = per_slice(n).max(1);
        let slices = (0..n)
            .step_by(per)
            .map(|start| {
                spec.build(&SourceBatch {
                    object: Arc::from("bench"),
                    row_group: 0,
                    first_row: 0,
                    batch: batch.slice(start, per.min(n - start)),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        batches.push(slices);
    }

    // The output written to OUT: the first, or the one GBDT_EVAL_OUTPUT names.
    let written = match std::env::var("GBDT_EVAL_OUTPUT") {
        Ok(name) => loaded
            .model
            .outputs()
            .iter()
            .position(|o| o.name == name)
            .with_context(|| format!("GBDT_EVAL_OUTPUT: model {model} has no output `{name}`"))?,
        Err(_) => 0,
    };
    let score_all = || -> Result<Vec<Vec<f32>>> {
        batches
            .iter()
            .map(|slices| {
                let parts: Vec<Vec<f32>> = slices
                    .par_iter()
                    .map(|slice| {
                        let outputs = loaded.model.score(slice)?;
                        scorer::contract::f32_values(outputs[written].as_ref())
                            .map(<[f32]>::to_vec)
                            .context("the written output is not f32")
                    })
                    .collect::<Result<_>>()?;
                Ok(parts.concat())
            })
            .collect()
    };
    let values = score_all()?;
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        std::hint::black_box(score_all()?);
        times.push(t.elapsed().as_secs_f64());
    }
    let mut sorted = times.clone();
    sorted.sort_by(f64::total_cmp);
    let median = sorted.get(sorted.len() / 2).copied().unwrap_or(f64::NAN);
    println!(
        "{rows} {median:.4} {}",
        times
            .iter()
            .map(|t| format!("{t:.4}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    eprintln!(
        "gbdt_eval: {model} on {:?}{}, {threads} CPU threads; {}",
        loaded.device,
        loaded
            .gpu_name
            .as_deref()
            .map(|g| format!(" ({g})"))
            .unwrap_or_default(),
        loaded.model.describe().unwrap_or_default()
    );
    let mut file = std::io::BufWriter::new(std::fs::File::create(out)?);
    for v in values.iter().flatten() {
        file.write_all(&v.to_le_bytes())?;
    }
    file.flush()?;
    Ok(())
}

fn parity(args: &[String]) -> Result<()> {
    let Some(fixtures) = args.first() else {
        bail!("usage: gbdt_eval parity FIXTURES_DIR [DEVICE]");
    };
    let fixtures = PathBuf::from(fixtures);
    let device = device(args.get(1))?;
    let cache = tempfile::tempdir()?;
    let registry = Registry::new(fixtures.join("models"), cache.path().to_path_buf());
    let mut failed = Vec::new();
    let mut names: Vec<String> = registry
        .list()
        .context("listing the fixtures")?
        .into_iter()
        .map(|e| e.name)
        .collect();
    names.dedup();
    for name in names {
        let loaded = match scorer::model::load(&registry, &name, "1", device) {
            Ok(m) => m,
            Err(e) => {
                println!("{name:16} refused: {e}");
                continue;
            }
        };
        let data = fixtures.join(format!("data/{name}"));
        let mut got: Vec<Vec<f64>> = Vec::new();
        for batch in read_rows(&data.join(format!("dt={DATE}")), count_rows(&data)?)? {
            let fb = feature_spec(&loaded).build(&SourceBatch {
                object: Arc::from(name.as_str()),
                row_group: 0,
                first_row: 0,
                batch,
            })?;
            let outputs = loaded.model.score(&fb)?;
            let width = outputs.len().max(1);
            let flat: Vec<Vec<f32>> = outputs
                .iter()
                .map(|o| scorer::contract::f32_values(o.as_ref()).map(<[f32]>::to_vec))
                .collect::<Option<_>>()
                .context("non-f32 output")?;
            for r in 0..fb.rows {
                let row: Vec<f64> = if width == 1 {
                    let g = flat[0].len() / fb.rows;
                    (0..g).map(|k| f64::from(flat[0][r * g + k])).collect()
                } else {
                    flat.iter().map(|c| f64::from(c[r])).collect()
                };
                got.push(row);
            }
        }
        let want = expected(&data.join("expected.parquet"))?;
        let groups = got.first().map_or(0, Vec::len);
        let mut worst = 0f64;
        for k in 0..groups {
            let col = if groups == 1 {
                "pred".to_string()
            } else {
                format!("pred{k}")
            };
            let w = want
                .iter()
                .find(|(n, _)| *n == col)
                .map(|(_, v)| v)
                .with_context(|| format!("{name}: no expected column {col}"))?;
            for (row, wv) in got.iter().zip(w) {
                let err = (row[k] - wv).abs() / 1e-6f64.max(1e-5 * wv.abs());
                worst = if err.is_nan() {
                    f64::INFINITY
                } else {
                    worst.max(err)
                };
            }
        }
        println!(
            "{name:16} {:?}: {} rows, worst error {worst:.3} of the tolerance ({})",
            loaded.device,
            got.len(),
            loaded.model.describe().unwrap_or_default()
        );
        if worst > 1.0 {
            failed.push(name);
        }
    }
    if !failed.is_empty() {
        bail!("over the tolerance: {}", failed.join(", "));
    }
    Ok(())
}

fn write_w1(out: &Path, rows: usize) -> Result<()> {
    scorer::datagen::write_input(&scorer::datagen::InputGen {
        out_dir: out.to_path_buf(),
        date: DATE.parse()?,
        rows: rows as u64,
        files: 1,
        row_group_rows: 131_072,
        features: 32,
        nulls: Some((0, 0.01)),
        seed: 1,
    })?;
    Ok(())
}

fn count_rows(data: &Path) -> Result<usize> {
    let mut n = 0;
    for path in parquet_files(&data.join(format!("dt={DATE}")))? {
        let reader = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&path)?)?;
        n += usize::try_from(reader.metadata().file_metadata().num_rows())?;
    }
    Ok(n)
}

fn expected(path: &Path) -> Result<Vec<(String, Vec<f64>)>> {
    let reader = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(path)?)?.build()?;
    let mut cols: Vec<(String, Vec<f64>)> = Vec::new();
    for batch in reader {
        let batch = batch?;
        for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
            let Some(v) = column.as_any().downcast_ref::<Float64Array>() else {
                continue;
            };
            match cols.iter_mut().find(|(n, _)| n == field.name()) {
                Some((_, values)) => values.extend(v.values().iter()),
                None => cols.push((field.name().clone(), v.values().to_vec())),
            }
        }
    }
    Ok(cols)
}
