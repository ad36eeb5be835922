//! Times scorer's tree evaluator alone, the way the scoring stage drives it (64k-row batches
//! split into one row slice per core, on the rayon pool), for benches/gbdt.sh, which runs it
//! beside XGBoost's `inplace_predict` and LightGBM's `predict` on the same rows.
//!
//!   cargo run --release --example gbdt_eval -- MODELS_DIR MODEL INPUT_DIR ROWS RUNS OUT
//!
//! Reads the first ROWS rows of INPUT_DIR's Parquet files (sorted by name; nulls are missing
//! values), scores them once to warm up and RUNS times timed, prints `rows median_seconds
//! each_run_seconds…`, and writes the first output's values to OUT (little-endian f32) so the
//! caller can check them against the libraries.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use rayon::prelude::*;
use scorer::features::{FeatureBatch, FeatureSpec};
use scorer::model::device::DeviceSpec;
use scorer::model::registry::Registry;
use scorer::source::{IdKind, SourceBatch};

const BATCH_ROWS: usize = 65_536;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [models, model, input, rows, runs, out] = args.as_slice() else {
        bail!("usage: gbdt_eval MODELS_DIR MODEL INPUT_DIR ROWS RUNS OUT");
    };
    let rows: usize = rows.parse().context("ROWS")?;
    let runs: usize = runs.parse().context("RUNS")?;
    let models = PathBuf::from(models);
    let registry = Registry::new(models.clone(), models.join(".cache"));
    let loaded = scorer::model::load(&registry, model, "latest", DeviceSpec::Cpu)?;
    let spec = FeatureSpec {
        id_column: "id".into(),
        id_kind: IdKind::Int,
        features: loaded.spec.inputs.clone(),
        on_null: scorer::job::NullPolicy::Fill(f32::NAN),
        preprocess: None,
    };

    let mut files: Vec<PathBuf> = std::fs::read_dir(input)
        .with_context(|| format!("reading {input}"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "parquet"))
        .collect();
    files.sort();
    // each 64k-row batch as the scoring stage splits it: one row slice per core
    let threads = rayon::current_num_threads().max(1);
    let mut batches: Vec<Vec<FeatureBatch>> = Vec::new();
    let mut have = 0;
    'files: for path in &files {
        let file = std::fs::File::open(path)?;
        let reader = ParquetRecordBatchReaderBuilder::try_new(file)?
            .with_batch_size(BATCH_ROWS)
            .build()?;
        for batch in reader {
            let batch = batch?;
            let take = batch.num_rows().min(rows - have);
            let per = take.div_ceil(threads).max(1);
            let slices = (0..take)
                .step_by(per)
                .map(|start| {
                    spec.build(&SourceBatch {
                        object: Arc::from(path.display().to_string()),
                        row_group: 0,
                        batch: batch.slice(start, per.min(take - start)),
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            batches.push(slices);
            have += take;
            if have == rows {
                break 'files;
            }
        }
    }
    if have < rows {
        bail!("{input} holds {have} rows, fewer than {rows}");
    }

    let score_all = || -> Result<Vec<Vec<f32>>> {
        batches
            .iter()
            .map(|slices| {
                let parts: Vec<Vec<f32>> = slices
                    .par_iter()
                    .map(|slice| {
                        let outputs = loaded.model.score(slice)?;
                        scorer::contract::f32_values(outputs[0].as_ref())
                            .map(<[f32]>::to_vec)
                            .context("the first output is not f32")
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
    let mut file = std::io::BufWriter::new(std::fs::File::create(out)?);
    for v in values.iter().flatten() {
        file.write_all(&v.to_le_bytes())?;
    }
    file.flush()?;
    Ok(())
}
