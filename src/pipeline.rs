//! A run, end to end: plan -> source -> features + score -> sink -> ledger. This is the only module
//! that knows all the stages; they are connected by bounded channels so reading, scoring and writing
//! overlap and a slow stage pushes back instead of buffering the dataset in memory.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use chrono::{NaiveDate, Utc};
use rayon::prelude::*;
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::db::{Database, DbTarget};
use crate::error::{RunError, exit};
use crate::features::{FeatureBatch, FeatureSpec};
use crate::job::{Job, template};
use crate::ledger::{self, InputObject, ModelUsed, RunFinish, RunStart, RunStatus, ScoreStats};
use crate::model::device::DeviceSpec;
use crate::model::{self, LoadedModel};
use crate::sink::objects::{ObjectsLayout, ObjectsPartitionWriter};
use crate::sink::postgres::PgPartitionWriter;
use crate::sink::sqlite::SqlitePartitionWriter;
use crate::sink::{OutputLayout, PartitionWriter, ScoredBatch};
use crate::source::{self, InputLocation, InputPlan, SourceBatch};
use crate::sql_ident::{self, TableName};

/// Smallest slice of a batch worth handing to its own rayon task.
const MIN_ROWS_PER_TASK: usize = 2048;
/// Scored batches waiting for the sink.
const SCORED_QUEUE: usize = 4;

/// Everything a run needs besides the job itself.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub date: NaiveDate,
    pub models_dir: PathBuf,
    pub db: DbTarget,
    /// Overrides the job's `model.device`.
    pub device: Option<DeviceSpec>,
}

/// What a successful run reports.
#[derive(Debug, Clone)]
pub struct RunSummary {
    pub run_id: Uuid,
    pub job: String,
    pub date: NaiveDate,
    pub rows_read: u64,
    pub rows_written: u64,
    pub rows_rejected: u64,
    pub objects: usize,
    /// Where the rows went.
    pub output: Destination,
    /// The database holding the ledger (and the table, for table outputs).
    pub db: String,
    pub is_sqlite: bool,
    pub stage_seconds: BTreeMap<String, f64>,
}

/// The model and the column mapping a job resolves to.
pub struct Prepared {
    pub model: LoadedModel,
    pub features: Vec<String>,
    pub score_columns: Vec<String>,
}

fn config(job: &Job, message: String) -> RunError {
    RunError::Config {
        job: job.name.clone(),
        message,
    }
}

/// Loads the job's model and checks the job's features and output columns against it.
pub fn prepare(
    job: &Job,
    models_dir: &std::path::Path,
    device: Option<DeviceSpec>,
) -> Result<Prepared, RunError> {
    let device = match device {
        Some(d) => d,
        None => job
            .model
            .device
            .parse()
            .map_err(|e| config(job, format!("model.device: {e}")))?,
    };
    let model =
        model::load(models_dir, &job.model.name, &job.model.version, device).map_err(|source| {
            RunError::Model {
                job: job.name.clone(),
                source,
            }
        })?;
    let features = job
        .input
        .features
        .clone()
        .unwrap_or_else(|| model.spec.inputs.clone());
    let mut problems = Vec::new();
    if features.len() != model.model.input_width() {
        problems.push(format!(
            "input.features lists {} columns but model {} version {} takes {} inputs ({})",
            features.len(),
            model.name,
            model.version,
            model.model.input_width(),
            model.spec.inputs.join(", ")
        ));
    }
    let outputs = model.model.output_names();
    for key in job.output.columns.keys() {
        if !outputs.contains(key) {
            problems.push(format!(
                "output.columns.{key}: the model has no output `{key}` (outputs: {})",
                outputs.join(", ")
            ));
        }
    }
    let score_columns: Vec<String> = outputs
        .iter()
        .map(|o| {
            job.output
                .columns
                .get(o)
                .cloned()
                .unwrap_or_else(|| o.clone())
        })
        .collect();
    let mut seen = std::collections::BTreeSet::new();
    for c in &score_columns {
        if let Err(e) = sql_ident::check_column(c) {
            problems.push(format!(
                "output column {e}; rename it with output.columns = {{ <output> = \"<column>\" }}"
            ));
        }
        let reserved = [
            job.input.id_column.as_str(),
            crate::sink::DATE_COLUMN,
            crate::sink::RUN_ID_COLUMN,
        ];
        if reserved.contains(&c.as_str()) || !seen.insert(c.clone()) {
            problems.push(format!(
                "output column `{c}` clashes with another column of the result table"
            ));
        }
    }
    if let Err(e) = sql_ident::check_column(&job.input.id_column) {
        problems.push(format!("input.id_column becomes an output column: {e}"));
    }
    if problems.is_empty() {
        Ok(Prepared {
            model,
            features,
            score_columns,
        })
    } else {
        Err(RunError::Many {
            job: job.name.clone(),
            problems,
            code: exit::CONFIG,
        })
    }
}

/// Renders the input URL for `date`, lists the objects and checks their footers.
pub async fn plan_input(
    job: &Job,
    date: NaiveDate,
    features: &[String],
) -> Result<InputPlan, RunError> {
    let src = |source| RunError::Source {
        job: job.name.clone(),
        source,
    };
    let url = template::render(&job.input.url, date)
        .map_err(|e| config(job, format!("input.url: {e}")))?;
    let location = source::resolve(&url, &job.input.storage).map_err(src)?;
    source::plan::plan(&location, &job.input.id_column, features)
        .await
        .map_err(src)
}

/// Counters and timings gathered while a run goes, written to the ledger at the end.
#[derive(Debug, Default)]
struct Recorder {
    rows_read: u64,
    rows_scored: u64,
    rows_written: u64,
    rows_rejected: u64,
    objects: usize,
    stage_seconds: BTreeMap<String, f64>,
    inputs: Vec<InputObject>,
    model: Option<ModelUsed>,
    score_stats: BTreeMap<String, ScoreStats>,
}

/// Runs `job` for `opts.date`: the whole contract of `scorer run`.
pub async fn run(job: &Job, opts: &RunOptions) -> Result<RunSummary, RunError> {
    let started = Instant::now();
    let db_err = |source| RunError::Db {
        job: job.name.clone(),
        source,
    };
    let output = destination(job, opts.date)?;
    let db = Database::open(&opts.db).await.map_err(db_err)?;
    let date_text = opts.date.format("%Y-%m-%d").to_string();
    let lock = db
        .try_lock_run(&job.name, &date_text)
        .await
        .map_err(db_err)?
        .ok_or_else(|| RunError::AlreadyRunning {
            job: job.name.clone(),
            date: date_text.clone(),
        })?;
    let run_id = Uuid::now_v7();
    ledger::start(
        &db,
        &RunStart {
            run_id,
            job: job.name.clone(),
            logical_date: opts.date,
            started_at: Utc::now(),
            output_table: output.to_string(),
            scorer_version: env!("CARGO_PKG_VERSION").to_string(),
            host: gethostname::gethostname().to_string_lossy().into_owned(),
        },
    )
    .await
    .map_err(db_err)?;
    tracing::info!(%run_id, job = %job.name, date = %date_text, db = db.target(), "run started");

    let mut rec = Recorder::default();
    let outcome = execute(job, opts, &db, run_id, &output, &mut rec).await;
    rec.stage_seconds
        .insert("total".into(), started.elapsed().as_secs_f64());
    let finish = RunFinish {
        status: if outcome.is_ok() {
            RunStatus::Succeeded
        } else {
            RunStatus::Failed
        },
        finished_at: Utc::now(),
        rows_read: rec.rows_read,
        rows_scored: rec.rows_scored,
        rows_written: rec.rows_written,
        rows_rejected: rec.rows_rejected,
        stage_seconds: rec.stage_seconds.clone(),
        inputs: rec.inputs.clone(),
        model: rec.model.clone(),
        score_stats: rec.score_stats.clone(),
        error: outcome.as_ref().err().map(|e| e.to_string()),
    };
    let ledger_result = ledger::finish(&db, run_id, &finish).await;
    lock.release().await;
    outcome?;
    ledger_result.map_err(db_err)?;
    tracing::info!(%run_id, rows = rec.rows_written, seconds = started.elapsed().as_secs_f64(), "run succeeded");
    Ok(RunSummary {
        run_id,
        job: job.name.clone(),
        date: opts.date,
        rows_read: rec.rows_read,
        rows_written: rec.rows_written,
        rows_rejected: rec.rows_rejected,
        objects: rec.objects,
        output,
        db: db.target().to_string(),
        is_sqlite: matches!(db, Database::Sqlite { .. }),
        stage_seconds: rec.stage_seconds,
    })
}

async fn execute(
    job: &Job,
    opts: &RunOptions,
    db: &Database,
    run_id: Uuid,
    output: &Destination,
    rec: &mut Recorder,
) -> Result<(), RunError> {
    let t_plan = Instant::now();
    let (job_c, models_dir, device) = (job.clone(), opts.models_dir.clone(), opts.device);
    let prepared = tokio::task::spawn_blocking(move || prepare(&job_c, &models_dir, device))
        .await
        .map_err(|e| internal(job, format!("model loading task failed: {e}")))??;
    rec.model = Some(ModelUsed {
        name: prepared.model.name.clone(),
        version: prepared.model.version.clone(),
        sha256: prepared.model.sha256.clone(),
        device: prepared.model.device.to_string(),
        gpu_name: prepared.model.gpu_name.clone(),
    });
    let plan = plan_input(job, opts.date, &prepared.features).await?;
    rec.objects = plan.objects.len();
    rec.inputs = plan
        .objects
        .iter()
        .map(|o| InputObject {
            url: o.url.clone(),
            size: o.meta.size,
            etag: o.meta.e_tag.clone(),
            last_modified: o.meta.last_modified,
        })
        .collect();
    rec.stage_seconds
        .insert("plan".into(), t_plan.elapsed().as_secs_f64());
    tracing::info!(
        objects = plan.objects.len(),
        rows = plan.total_rows,
        "input planned"
    );

    let sink = |source| RunError::Sink {
        job: job.name.clone(),
        source,
    };
    let table = match output {
        Destination::Table(table) => table,
        Destination::Objects(location) => {
            let w = ObjectsPartitionWriter::begin(ObjectsLayout {
                store: Arc::clone(&location.store),
                prefix: location.prefix.clone(),
                url: location.url.clone(),
                job: job.name.clone(),
                id_column: job.input.id_column.clone(),
                id_kind: plan.id_kind,
                score_columns: prepared.score_columns.clone(),
                date: opts.date,
                run_id,
            })
            .await
            .map_err(sink)?;
            return stream_through(w, job, &plan, prepared, rec).await;
        }
    };
    let layout = OutputLayout {
        table: table.clone(),
        id_column: job.input.id_column.clone(),
        id_kind: plan.id_kind,
        score_columns: prepared.score_columns.clone(),
        date: opts.date,
        run_id,
    };
    match db {
        Database::Postgres { pool, .. } => {
            let w = PgPartitionWriter::begin(pool.clone(), layout, job.output.copy_streams)
                .await
                .map_err(sink)?;
            stream_through(w, job, &plan, prepared, rec).await
        }
        Database::Sqlite { pool, .. } => {
            let w = SqlitePartitionWriter::begin(pool.clone(), layout)
                .await
                .map_err(sink)?;
            stream_through(w, job, &plan, prepared, rec).await
        }
    }
}

/// Where a run's rows go: a table in the run's database, or Parquet files in an object store.
#[derive(Debug, Clone)]
pub enum Destination {
    Table(TableName),
    /// The date's directory (`output.url` rendered for the run's date).
    Objects(InputLocation),
}

impl std::fmt::Display for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Table(t) => write!(f, "{t}"),
            Self::Objects(l) => f.write_str(&l.url),
        }
    }
}

/// Resolves the job's output for `date`: its table, or its rendered output URL and store.
fn destination(job: &Job, date: NaiveDate) -> Result<Destination, RunError> {
    if let Some(table) = job.table() {
        return table
            .map(Destination::Table)
            .map_err(|e| config(job, format!("output.table: {e}")));
    }
    let url = job
        .output
        .url
        .as_deref()
        .ok_or_else(|| config(job, "output: set `table` or `url`".into()))?;
    let rendered =
        template::render(url, date).map_err(|e| config(job, format!("output.url: {e}")))?;
    source::resolve_output(&rendered, &job.output.storage)
        .map(Destination::Objects)
        .map_err(|e| config(job, e.to_string()))
}

fn internal(job: &Job, message: String) -> RunError {
    RunError::Internal {
        job: job.name.clone(),
        message,
    }
}

/// Features and model for the scoring stage, shared with its worker threads.
struct Scorer {
    features: FeatureSpec,
    model: LoadedModel,
    batch_size: usize,
}

/// What the scoring stage reports when its input ends.
#[derive(Default)]
struct ScoreReport {
    rows_read: u64,
    rows_scored: u64,
    rows_rejected: u64,
    seconds: f64,
    stats: Vec<ScoreStats>,
}

/// One slice of a source batch with its scores, one vector per model output.
type ScoredSlice = (FeatureBatch, Vec<Vec<f32>>);

impl Scorer {
    /// Splits a source batch into slices for the rayon pool and scores them in parallel. On a GPU
    /// the batch goes whole (up to `batch_size` rows per forward pass): the device is the
    /// parallelism, and bigger launches use it better.
    fn score(&self, src: &SourceBatch) -> Result<Vec<ScoredSlice>, RunError> {
        let rows = src.batch.num_rows();
        let tasks = match self.model.device {
            DeviceSpec::Cpu => rayon::current_num_threads().max(1),
            _ => 1,
        };
        let per_task = rows
            .div_ceil(tasks)
            .max(MIN_ROWS_PER_TASK)
            .min(self.batch_size);
        let slices: Vec<SourceBatch> = (0..rows)
            .step_by(per_task.max(1))
            .map(|start| SourceBatch {
                object: Arc::clone(&src.object),
                row_group: src.row_group,
                batch: src.batch.slice(start, per_task.min(rows - start)),
            })
            .collect();
        slices
            .par_iter()
            .map(|slice| {
                let fb = self
                    .features
                    .build(slice)
                    .map_err(|source| RunError::Features {
                        job: String::new(),
                        source,
                    })?;
                let scores = self
                    .model
                    .model
                    .score(&fb)
                    .map_err(|source| RunError::Model {
                        job: String::new(),
                        source,
                    })?;
                Ok((fb, scores))
            })
            .collect()
    }
}

/// Runs source, scoring and sink concurrently and commits the partition if all three succeed.
async fn stream_through<W: PartitionWriter>(
    mut writer: W,
    job: &Job,
    plan: &InputPlan,
    prepared: Prepared,
    rec: &mut Recorder,
) -> Result<(), RunError> {
    let in_flight = job.input.row_groups_in_flight;
    let (src_tx, mut src_rx) = mpsc::channel::<SourceBatch>(in_flight);
    let (scored_tx, mut scored_rx) = mpsc::channel::<ScoredBatch>(SCORED_QUEUE);
    let outputs = prepared.score_columns.clone();

    // Source: async fetch + decode, bounded by `in_flight` row groups.
    let source_task = {
        let plan = plan.clone();
        let batch_rows = job.model.batch_size;
        tokio::spawn(
            async move { source::send_batches(&plan, in_flight, batch_rows, src_tx).await },
        )
    };

    // Scoring: CPU work on the blocking pool and rayon, never on the runtime's worker threads.
    let scorer = Scorer {
        features: FeatureSpec {
            id_column: job.input.id_column.clone(),
            id_kind: plan.id_kind,
            features: prepared.features.clone(),
            on_null: job.input.on_null,
        },
        model: prepared.model,
        batch_size: job.model.batch_size,
    };
    let width = outputs.len();
    let score_task = tokio::task::spawn_blocking(move || {
        let mut report = ScoreReport {
            stats: vec![ScoreStats::default(); width],
            ..Default::default()
        };
        let mut first = true;
        while let Some(src) = src_rx.blocking_recv() {
            let t = Instant::now();
            report.rows_read += src.batch.num_rows() as u64;
            let scored = scorer.score(&src)?;
            report.seconds += t.elapsed().as_secs_f64();
            if first {
                first = false;
                tracing::info!(
                    since_launch_ms = crate::telemetry::since_launch().as_millis() as u64,
                    rows = src.batch.num_rows(),
                    "first batch scored"
                );
            }
            // Keep only ids and scores: the feature columns, slices of the source batch, go now
            // rather than while the sink is behind, so a stalled sink holds no decoded input.
            let batches: Vec<ScoredBatch> = scored
                .into_iter()
                .map(|(fb, scores)| {
                    report.rows_rejected += fb.rejected as u64;
                    report.rows_scored += fb.rows as u64;
                    for (stats, column) in report.stats.iter_mut().zip(&scores) {
                        for v in column {
                            stats.add(*v);
                        }
                    }
                    ScoredBatch {
                        ids: fb.ids,
                        scores,
                        rows: fb.rows,
                    }
                })
                .collect();
            drop(src);
            for batch in batches {
                if scored_tx.blocking_send(batch).is_err() {
                    return Ok(report);
                }
            }
        }
        Ok::<ScoreReport, RunError>(report)
    });

    // Sink: in this task.
    let mut write_seconds = 0f64;
    let mut sink_error = None;
    while let Some(batch) = scored_rx.recv().await {
        let t = Instant::now();
        if let Err(e) = writer.write(&batch).await {
            sink_error = Some(e);
            break;
        }
        write_seconds += t.elapsed().as_secs_f64();
    }
    drop(scored_rx);
    let name = &job.name;
    let source_outcome = match source_task.await {
        Ok(Ok(waited)) => Ok(waited),
        Ok(Err(source)) => Err(RunError::Source {
            job: name.clone(),
            source,
        }),
        Err(e) => Err(internal(job, format!("source task failed: {e}"))),
    };
    let score_outcome = match score_task.await {
        Ok(Ok(report)) => Ok(report),
        Ok(Err(e)) => Err(with_job(e, name)),
        Err(e) => Err(internal(job, format!("scoring task failed: {e}"))),
    };
    rec.stage_seconds.insert("write".into(), write_seconds);
    if let Ok(waited) = &source_outcome {
        rec.stage_seconds.insert("read".into(), *waited);
    }
    if let Ok(r) = &score_outcome {
        rec.rows_read = r.rows_read;
        rec.rows_scored = r.rows_scored;
        rec.rows_rejected = r.rows_rejected;
        rec.stage_seconds.insert("score".into(), r.seconds);
        rec.score_stats = outputs
            .iter()
            .cloned()
            .zip(r.stats.iter().cloned())
            .collect();
    }
    // The first failure is the cause: a stage that fails closes its channels, and its neighbours
    // then stop without an error of their own.
    let failure = sink_error
        .map(|source| RunError::Sink {
            job: name.clone(),
            source,
        })
        .or(score_outcome.err())
        .or(source_outcome.err());
    if let Some(e) = failure {
        writer.abort().await;
        return Err(e);
    }
    let t_commit = Instant::now();
    let written = writer.commit().await.map_err(|source| RunError::Sink {
        job: name.clone(),
        source,
    })?;
    rec.stage_seconds
        .insert("commit".into(), t_commit.elapsed().as_secs_f64());
    rec.rows_written = written;
    if written != rec.rows_scored {
        return Err(internal(
            job,
            format!("wrote {written} rows but scored {}", rec.rows_scored),
        ));
    }
    Ok(())
}

/// Errors from inside the scoring stage do not know the job's name; add it.
fn with_job(e: RunError, job: &str) -> RunError {
    match e {
        RunError::Features { source, .. } => RunError::Features {
            job: job.to_string(),
            source,
        },
        RunError::Model { source, .. } => RunError::Model {
            job: job.to_string(),
            source,
        },
        other => other,
    }
}
