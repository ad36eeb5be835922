//! The wiring of a run's stages: source -> score -> sink over bounded channels, so reading,
//! scoring and writing overlap and a slow stage pushes back instead of buffering the dataset in
//! memory. Each stage reports what it did; the first failure is the cause. Every id written is
//! checked against the run's others (`crate::ids`): a repeat fails the run. Cancellation stops the
//! sink from taking more rows and lets the other stages wind down; what was staged is the
//! caller's to abort.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::failure::Failure;
use crate::ids::{Duplicate, IdSet};
use crate::plan::RunPlan;
use crate::quarantine::RejectedRow;
use crate::resume::Adopted;
use crate::score::{ScoreStage, ScoreTally};
use crate::sink::{ScoredBatch, Sink};
use crate::source::{self, DoneRanges, SourceBatch};

/// Scored batches waiting for the sink.
const SCORED_QUEUE: usize = 4;

/// What the stages did, whether or not the run went through.
#[derive(Debug, Default, Clone)]
pub struct StageTimings {
    /// Seconds the source spent fetching and decoding (summed over row groups in flight).
    pub read_seconds: Option<f64>,
    pub score: Option<ScoreTally>,
    /// Seconds the sink spent in `write`.
    pub write_seconds: f64,
    /// A resumed run: seconds spent reading the ids of the adopted rows again.
    pub resume_ids_seconds: Option<f64>,
}

/// The outcome of streaming a plan's input into a sink.
#[derive(Debug)]
pub struct Streamed {
    pub reports: StageTimings,
    /// `Err` with the first failure (or `Cancelled`); the sink then holds a partial staging.
    pub result: Result<(), Failure>,
    /// The rows left out, for the sink to publish as the date's quarantine.
    pub rejected: Vec<RejectedRow>,
    /// The ids written, when the run went through (a shard passes their digest on).
    pub ids: Option<IdSet>,
}

/// Streams every input row of `plan` through its model into `sink` (written, not yet finished).
/// A resumed run passes the rows it adopted: they are not read again, except their ids, which
/// seed the duplicate-id check. `rows_done` counts the input rows through the sink, for progress.
pub async fn stream(
    plan: &RunPlan,
    sink: &mut dyn Sink,
    cancel: &CancellationToken,
    adopted: Option<&Adopted>,
    rows_done: &Arc<AtomicU64>,
) -> Streamed {
    let done = adopted.map(|a| Arc::clone(&a.done));
    let mut ids = IdSet::default();
    let resume_ids_seconds = match &done {
        Some(done) => match seed_adopted_ids(plan, done, &mut ids).await {
            Ok(seconds) => Some(seconds),
            Err(f) => {
                return Streamed {
                    reports: StageTimings::default(),
                    result: Err(f),
                    rejected: Vec::new(),
                    ids: None,
                };
            }
        },
        None => None,
    };
    let Stages {
        source_task,
        score_task,
        mut scored_rx,
    } = spawn_stages(plan, cancel, done);
    let mut reports = StageTimings {
        resume_ids_seconds,
        ..Default::default()
    };
    let mut rejected = Vec::new();
    let mut sink_result = write_all(
        sink,
        &mut scored_rx,
        cancel,
        &mut ids,
        &mut reports.write_seconds,
        &mut rejected,
        rows_done,
    )
    .instrument(crate::telemetry::stage_span("write"))
    .await;
    let mut written = None;
    if sink_result.is_ok() {
        let (checked, result) = finish_ids(ids).await;
        written = checked;
        sink_result = result;
    }
    // Closing the queue stops the scoring stage, whose closed input then stops the source.
    drop(scored_rx);
    let score_result = match score_task.await {
        Ok(result) => result,
        Err(e) => Err(Failure::Internal(format!("scoring task failed: {e}"))),
    };
    let source_result = match source_task.await {
        Ok(result) => result.map_err(Failure::from),
        Err(e) => Err(Failure::Internal(format!("source task failed: {e}"))),
    };
    reports.read_seconds = source_result.as_ref().ok().copied();
    reports.score = score_result.as_ref().ok().cloned();
    // The first failure is the cause: a stage that fails closes its channels, and its neighbours
    // then stop without an error of their own.
    let result = sink_result
        .and(score_result.map(|_| ()))
        .and(source_result.map(|_| ()));
    Streamed {
        ids: written.filter(|_| result.is_ok()),
        reports,
        result,
        rejected,
    }
}

/// The source and scoring stages, running; the sink's loop reads `scored_rx`.
struct Stages {
    source_task: tokio::task::JoinHandle<Result<f64, source::SourceError>>,
    score_task: tokio::task::JoinHandle<Result<ScoreTally, Failure>>,
    scored_rx: mpsc::Receiver<ScoredBatch>,
}

/// Starts the source (async, a bounded number of row groups in flight) and the scoring stage
/// (on a blocking thread, which hands its batches to rayon), joined by bounded channels.
fn spawn_stages(
    plan: &RunPlan,
    cancel: &CancellationToken,
    done: Option<Arc<DoneRanges>>,
) -> Stages {
    let in_flight = plan.in_flight().row_groups;
    let batch_rows = plan.job.model.batch_size;
    let (src_tx, src_rx) = mpsc::channel::<SourceBatch>(in_flight);
    let (scored_tx, scored_rx) = mpsc::channel::<ScoredBatch>(SCORED_QUEUE);
    let source_task = {
        let input = plan.input.clone();
        tokio::spawn(
            async move { source::send_batches(&input, in_flight, batch_rows, src_tx, done).await }
                .instrument(crate::telemetry::stage_span("read")),
        )
    };
    let score_task = {
        let stage = ScoreStage {
            features: plan.features.clone(),
            model: Arc::clone(&plan.model),
            batch_size: batch_rows,
            feature_sample_every: crate::score::feature_sample_every(plan.input.total_rows),
        };
        let cancel = cancel.clone();
        let span = crate::telemetry::stage_span("score");
        tokio::task::spawn_blocking(move || span.in_scope(|| stage.run(src_rx, scored_tx, &cancel)))
    };
    Stages {
        source_task,
        score_task,
        scored_rx,
    }
}

/// A resumed run's adopted rows are not read again, but their ids are: they seed the
/// duplicate-id check, so it spans the whole date. Returns the seconds it took.
async fn seed_adopted_ids(
    plan: &RunPlan,
    done: &Arc<DoneRanges>,
    ids: &mut IdSet,
) -> Result<f64, Failure> {
    let t = Instant::now();
    // Hashed ids (`output.hash_columns`) are checked as the run writes them.
    let hasher = plan
        .features
        .passed
        .hasher
        .as_ref()
        .filter(|h| h.hashes(&plan.features.id_column));
    source::read_ids(&plan.input, done, plan.job.model.batch_size, |batch| {
        let hashed =
            match hasher {
                Some(h) => Some(h.hash(batch).map_err(|e| {
                    Failure::Internal(format!("hashing the adopted rows' ids: {e}"))
                })?),
                None => None,
            };
        ids.add(hashed.as_deref().unwrap_or(batch))
            .map_err(|Duplicate(id)| Failure::DuplicateId { id })
    })
    .await?;
    Ok(t.elapsed().as_secs_f64())
}

/// The duplicate-id check's last step, off the async threads: the ids written (when none is
/// twice), and whether one was.
async fn finish_ids(mut ids: IdSet) -> (Option<IdSet>, Result<(), Failure>) {
    match tokio::task::spawn_blocking(move || {
        let r = ids.finish();
        (ids, r)
    })
    .await
    {
        Ok((ids, r)) => (
            Some(ids),
            r.map_err(|Duplicate(id)| Failure::DuplicateId { id }),
        ),
        Err(e) => (
            None,
            Err(Failure::Internal(format!(
                "the duplicate-id check failed: {e}"
            ))),
        ),
    }
}

/// The sink's loop: writes scored batches until the queue ends; stops at once on cancellation.
async fn write_all(
    sink: &mut dyn Sink,
    rx: &mut mpsc::Receiver<ScoredBatch>,
    cancel: &CancellationToken,
    ids: &mut IdSet,
    seconds: &mut f64,
    rejected: &mut Vec<RejectedRow>,
    rows_done: &AtomicU64,
) -> Result<(), Failure> {
    loop {
        let batch = tokio::select! {
            biased;
            () = cancel.cancelled() => return Err(Failure::Cancelled),
            batch = rx.recv() => batch,
        };
        let Some(mut batch) = batch else {
            return Ok(());
        };
        ids.add(batch.ids.as_ref())
            .map_err(|Duplicate(id)| Failure::DuplicateId { id })?;
        let t = Instant::now();
        sink.write(&batch).await?;
        *seconds += t.elapsed().as_secs_f64();
        if let Some(origin) = batch.origin.as_mut() {
            rejected.append(&mut origin.rejected);
            rows_done.fetch_add(origin.source_rows as u64, Ordering::Relaxed);
        }
    }
}
