//! The scoring stage: source batches in, scored batches (ids + one arrow array per result column)
//! out. It runs on a blocking thread and follows the model's own execution policy: row slices in
//! parallel on the shared rayon pool for CPU kernels, whole batches for a GPU. The stage knows
//! nothing of the model's kind beyond what the model declares.

use std::sync::Arc;
use std::time::Instant;

use arrow::array::ArrayRef;
use rayon::prelude::*;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::contract::ExecutionPolicy;
use crate::failure::Failure;
use crate::features::{FeatureBatch, FeatureSpec};
use crate::model::LoadedModel;
use crate::sink::{BatchOrigin, ScoredBatch};
use crate::source::SourceBatch;
use crate::stats::ScoreStats;

/// What the scoring stage reports when its input ends (or it stops).
#[derive(Debug, Default, Clone)]
pub struct ScoreTally {
    pub rows_read: u64,
    pub rows_scored: u64,
    pub rows_rejected: u64,
    /// Seconds spent building features and scoring.
    pub seconds: f64,
    /// One per result column, in order.
    pub stats: Vec<ScoreStats>,
    /// One per model input feature, in order, over a sample of the scored rows
    /// (`feature_sample_every`)
    /// (a block of each batch): enough for their distributions and drift (78k rows
    /// of W1's 5M) at a fraction of the cost.
    pub features: Vec<ScoreStats>,
    /// Seconds to build features and score each source batch.
    pub latency: crate::histogram::Histogram,
}

/// Input features' histograms are kept in bins this many bits coarser than the outputs' (1/16
/// of an octave instead of 1/128): a tenth of the size in the ledger, enough for drift.
pub const FEATURE_BIN_BITS: u32 = 3;

/// Rows of input features a run aims to summarise: enough that two samples of one distribution
/// give a PSI near 0 (about 9 / rows for decile groups), few enough to cost little.
pub const FEATURE_SAMPLE_ROWS: u64 = 80_000;
/// The sparsest feature sample: one row in this many.
pub const MAX_FEATURE_SAMPLE_EVERY: u64 = 256;

/// One row in how many a run of `total_rows` input rows summarises for its features: every row
/// of a small input, one in ~64 of W1's 5M, one in 256 at most.
pub fn feature_sample_every(total_rows: u64) -> usize {
    (total_rows / FEATURE_SAMPLE_ROWS).clamp(1, MAX_FEATURE_SAMPLE_EVERY) as usize
}

/// The features and the model, shared with the stage's worker threads.
pub struct ScoreStage {
    pub features: FeatureSpec,
    pub model: Arc<LoadedModel>,
    /// Most rows per model call (the job's `model.batch_size`).
    pub batch_size: usize,
    /// Input features are summarised on one scored row in this many (`feature_sample_every`).
    pub feature_sample_every: usize,
}

/// One slice of a source batch (its first row within the row group and its rows) with its
/// features and result columns.
type ScoredSlice = (usize, usize, FeatureBatch, Vec<ArrayRef>);

impl ScoreStage {
    /// Scores every batch from `rx` and sends the results to `tx`, until `rx` ends, `tx` closes
    /// (the sink stopped) or `cancel` fires. Blocking: run it on a blocking thread.
    pub fn run(
        &self,
        mut rx: mpsc::Receiver<SourceBatch>,
        tx: mpsc::Sender<ScoredBatch>,
        cancel: &CancellationToken,
    ) -> Result<ScoreTally, Failure> {
        let mut report = ScoreTally {
            stats: vec![ScoreStats::default(); self.model.model.outputs().len()],
            ..Default::default()
        };
        let mut first = true;
        while let Some(src) = rx.blocking_recv() {
            if cancel.is_cancelled() {
                break;
            }
            let t = Instant::now();
            report.rows_read += src.batch.num_rows() as u64;
            let scored = self.score(&src)?;
            report.seconds += t.elapsed().as_secs_f64();
            report.latency.add(t.elapsed().as_secs_f32());
            if std::mem::take(&mut first) {
                tracing::info!(
                    since_launch_ms = crate::telemetry::since_launch().as_millis() as u64,
                    rows = src.batch.num_rows(),
                    "first batch scored"
                );
            }
            // Keep only ids and results: the feature columns, slices of the source batch, go now
            // rather than while the sink is behind, so a stalled sink holds no decoded input.
            let batches: Vec<ScoredBatch> = scored
                .into_iter()
                .map(|(first_row, source_rows, mut fb, outputs)| {
                    // Into the stage's own accumulators: no statistics allocated per slice.
                    fb.sample_into(&mut report.features, self.feature_sample_every, first_row);
                    report.rows_rejected += fb.rejected as u64;
                    report.rows_scored += fb.rows as u64;
                    let stats: Vec<ScoreStats> = outputs
                        .iter()
                        .map(|column| {
                            let mut s = ScoreStats::default();
                            s.add_column(column.as_ref());
                            s
                        })
                        .collect();
                    for (total, part) in report.stats.iter_mut().zip(&stats) {
                        total.merge(part);
                    }
                    // The passthrough columns follow the model's outputs, as in the layout.
                    let mut outputs = outputs;
                    outputs.append(&mut fb.passed);
                    ScoredBatch {
                        ids: fb.ids,
                        outputs,
                        rows: fb.rows,
                        origin: Some(BatchOrigin {
                            object: Arc::clone(&src.object),
                            row_group: src.row_group,
                            first_row,
                            source_rows,
                            rejected: std::mem::take(&mut fb.rejected_rows),
                            stats,
                        }),
                    }
                })
                .collect();
            drop(src);
            for batch in batches {
                if tx.blocking_send(batch).is_err() {
                    return Ok(report);
                }
            }
        }
        Ok(report)
    }

    /// Splits a source batch as the model's execution policy says and scores the slices (in
    /// parallel on the rayon pool when there are several).
    fn score(&self, src: &SourceBatch) -> Result<Vec<ScoredSlice>, Failure> {
        let rows = src.batch.num_rows();
        let per_slice = match self.model.model.execution() {
            ExecutionPolicy::RowSlices { min_rows } => rows
                .div_ceil(rayon::current_num_threads().max(1))
                .max(min_rows),
            ExecutionPolicy::WholeBatches => rows,
        }
        .clamp(1, self.batch_size.max(1));
        let slices: Vec<SourceBatch> = (0..rows)
            .step_by(per_slice)
            .map(|start| SourceBatch {
                object: Arc::clone(&src.object),
                row_group: src.row_group,
                first_row: src.first_row + start,
                batch: src.batch.slice(start, per_slice.min(rows - start)),
            })
            .collect();
        slices
            .par_iter()
            .map(|slice| {
                let fb = self.features.build(slice)?;
                let outputs = self.model.model.score(&fb)?;
                Ok((slice.first_row, slice.batch.num_rows(), fb, outputs))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_inputs_summarise_every_feature_row_and_large_ones_a_sample() {
        assert_eq!(feature_sample_every(20_000), 1);
        assert_eq!(feature_sample_every(5_000_000), 62);
        assert_eq!(feature_sample_every(50_000_000), 256);
        assert_eq!(feature_sample_every(0), 1);
    }
}
