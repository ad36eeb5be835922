//! The run plan: a job and a date resolved into everything a run needs before it writes anything.
//! The model is loaded and its declared inputs and outputs checked against the job; the input
//! objects are listed and every footer checked against the model's inputs; the output is resolved
//! and its columns named and typed. `scorer run`, `scorer validate`, the scheduler and the
//! backfill (and, later, sharded runs) all build plans the same way.

pub mod sample;

use std::sync::Arc;

use chrono::NaiveDate;

use crate::contract::{OutputColumn, RawColumn};
use crate::error::exit;
use crate::failure::Failure;
use crate::features::FeatureSpec;
use crate::job::Job;
use crate::model::device::DeviceSpec;
use crate::model::registry::Registry;
use crate::model::{self, LoadedModel};
use crate::sink::{DATE_COLUMN, Destination, RUN_ID_COLUMN, SinkSpec};
use crate::source::store_metrics::StoreCounters;
use crate::source::{self, CheckedInput};
use crate::sql_ident;
use crate::template;

/// The model a job resolves to, with the job's features and result columns checked against the
/// model's declared contract.
pub struct ModelBinding {
    pub model: LoadedModel,
    /// The input columns that feed the model, in the model's input order (after preprocessing,
    /// when the model declares it).
    pub features: Vec<String>,
    /// The input-file columns the run reads besides the id: the features themselves, or what the
    /// model's preprocessing reads.
    pub columns: Vec<RawColumn>,
    /// The model's outputs under their result-table names (`output.columns` renames them).
    pub score_columns: Vec<OutputColumn>,
}

/// Everything a run needs, resolved and checked before any row is read or written.
pub struct RunPlan {
    pub job: Job,
    pub date: NaiveDate,
    pub model: Arc<LoadedModel>,
    /// How source batches become model input (columns, id, missing-value handling).
    pub features: FeatureSpec,
    pub score_columns: Vec<OutputColumn>,
    pub input: CheckedInput,
}

impl RunPlan {
    /// The row groups this run fetches and decodes at once: the job's
    /// `input.row_groups_in_flight`, else chosen from the footers and rayon's threads
    /// (`source::in_flight`). The same for the pipeline and the ledger.
    pub fn in_flight(&self) -> source::in_flight::InFlight {
        source::in_flight::choose(
            self.job.input.row_groups_in_flight,
            &self.input,
            rayon::current_num_threads(),
        )
    }

    /// Loads the model (on the blocking pool), and lists and checks the input for `date`.
    pub async fn build(
        job: &Job,
        date: NaiveDate,
        models: &Registry,
        device: Option<DeviceSpec>,
        counters: Arc<StoreCounters>,
    ) -> Result<Self, Failure> {
        let (job_c, registry) = (job.clone(), models.clone());
        let binding = tokio::task::spawn_blocking(move || bind_model(&job_c, &registry, device))
            .await
            .map_err(|e| Failure::Internal(format!("model loading task failed: {e}")))??;
        let input = check_input(job, date, &binding.columns, counters).await?;
        Self::assemble(job, date, binding, input)
    }

    /// The plan of `job` for `date` from its bound model and its checked input.
    pub fn assemble(
        job: &Job,
        date: NaiveDate,
        binding: ModelBinding,
        mut input: CheckedInput,
    ) -> Result<Self, Failure> {
        let passed = passed_columns(job, &input, |name| std::env::var(name).ok())?;
        if passed.hashes(&job.input.id_column) {
            input.id_kind = source::IdKind::Text;
        }
        let (on_null, on_nan) = crate::features::policies_for_model(
            binding.model.model.inputs().missing,
            (job.input.on_null, job.input.on_nan),
        );
        Ok(Self {
            features: FeatureSpec {
                id_column: job.input.id_column.clone(),
                id_kind: input.id_kind,
                features: binding.features,
                on_null,
                on_nan,
                preprocess: binding.model.preprocess.clone(),
                passed,
                types: binding.model.model.inputs().types.clone(),
            },
            job: job.clone(),
            date,
            model: Arc::new(binding.model),
            score_columns: binding.score_columns,
            input,
        })
    }

    /// What the sink needs to know for run `run_id`.
    pub fn sink_spec(&self, run_id: uuid::Uuid) -> SinkSpec {
        let table = self.job.output.target.section().table_options();
        SinkSpec {
            job: self.job.name.clone(),
            id_column: self.job.input.id_column.clone(),
            id_kind: self.input.id_kind,
            score_columns: self
                .score_columns
                .iter()
                .chain(&self.features.passed.columns)
                .cloned()
                .collect(),
            date: self.date,
            run_id,
            copy_streams: table.copy_streams,
            checkpoints: None,
            adopted_rows: None,
            sharded: false,
            produced_by: format!(
                "job {}, model {} version {} (sha256 {})",
                self.job.name,
                self.model.name,
                self.model.version,
                self.model.sha256.get(..12).unwrap_or(&self.model.sha256)
            ),
            index: table.index,
            readers: table.readers,
            passthrough: self.job.output.shared.passthrough_columns.clone(),
            vectors: table.vectors,
        }
    }
}

/// Loads the job's model and checks the job's features and output columns against its declared
/// inputs and outputs, reporting every problem at once.
pub fn bind_model(
    job: &Job,
    models: &Registry,
    device: Option<DeviceSpec>,
) -> Result<ModelBinding, Failure> {
    let device = match device {
        Some(d) => d,
        None => job
            .model
            .device
            .parse()
            .map_err(|e| Failure::Config(format!("model.device: {e}")))?,
    };
    let model = match job.model.mlflow(&job.input.storage) {
        // A registered model: resolved once, here, so the whole run scores one version.
        Some(request) => {
            let request = request.map_err(Failure::Config)?;
            let found = model::mlflow::materialize(&request, &models.cache)?;
            let mut loaded = model::load(&found.registry, &found.name, &found.version, device)?;
            loaded.source = Some(found.source);
            loaded
        }
        None => model::load(models, &job.model.name, &job.model.version, device)?,
    };
    let inputs = &model.model.inputs().features;
    let mut problems = Vec::new();
    let (features, columns) = match (&model.preprocess, &job.input.features) {
        (Some(p), None) => (inputs.clone(), p.raw_columns().to_vec()),
        (Some(p), Some(_)) => {
            let raw: Vec<&str> = p.raw_columns().iter().map(|c| c.name.as_str()).collect();
            problems.push(format!(
                "input.features: model {} version {} declares its own preprocessing, which reads the columns {}; leave input.features out",
                model.name,
                model.version,
                raw.join(", ")
            ));
            (inputs.clone(), p.raw_columns().to_vec())
        }
        (None, listed) => {
            let features = listed.clone().unwrap_or_else(|| inputs.clone());
            let contract = model.model.inputs();
            let columns = features
                .iter()
                .enumerate()
                .map(|(j, f)| RawColumn {
                    name: f.clone(),
                    kind: contract.type_of(j).column_kind(),
                })
                .collect();
            (features, columns)
        }
    };
    let mut columns = columns;
    for name in &job.output.shared.passthrough_columns {
        if !columns.iter().any(|c| &c.name == name) {
            columns.push(RawColumn {
                name: name.clone(),
                kind: crate::contract::ColumnKind::Any,
            });
        }
    }
    if features.len() != inputs.len() {
        problems.push(format!(
            "input.features lists {} columns but model {} version {} takes {} inputs ({})",
            features.len(),
            model.name,
            model.version,
            inputs.len(),
            inputs.join(", ")
        ));
    }
    let outputs = model.model.outputs();
    for key in job.output.shared.columns.keys() {
        if !outputs.iter().any(|o| &o.name == key) {
            let names: Vec<&str> = outputs.iter().map(|o| o.name.as_str()).collect();
            problems.push(format!(
                "output.columns.{key}: the model has no output `{key}` (outputs: {})",
                names.join(", ")
            ));
        }
    }
    let score_columns: Vec<OutputColumn> = outputs
        .iter()
        .map(|o| OutputColumn {
            name: job
                .output
                .shared
                .columns
                .get(&o.name)
                .unwrap_or(&o.name)
                .clone(),
            ty: o.ty,
        })
        .collect();
    // Passthrough columns share the table's names (their types are known once a file is read).
    let passthrough = job
        .output
        .shared
        .passthrough_columns
        .iter()
        .map(|name| OutputColumn {
            name: name.clone(),
            ty: crate::contract::OutputType::Text,
        });
    let all: Vec<OutputColumn> = score_columns.iter().cloned().chain(passthrough).collect();
    problems.extend(column_problems(job, &all));
    problems.extend(model::reason_labels::problems(
        &job.model.reasons,
        inputs,
        outputs,
        &format!("model {} version {}", model.name, model.version),
    ));
    if problems.is_empty() {
        Ok(ModelBinding {
            model: model.with_reason_labels(&job.model.reasons),
            features,
            columns,
            score_columns,
        })
    } else {
        Err(Failure::Many {
            problems,
            code: exit::CONFIG,
        })
    }
}

/// Result-column names that are not valid identifiers or clash with each other or with the id,
/// date and run columns.
fn column_problems(job: &Job, columns: &[OutputColumn]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    let reserved = [job.input.id_column.as_str(), DATE_COLUMN, RUN_ID_COLUMN];
    for c in columns {
        if let Err(e) = sql_ident::check_column(&c.name) {
            problems.push(format!(
                "output column {e}; rename it with output.columns = {{ <output> = \"<column>\" }}"
            ));
        }
        if reserved.contains(&c.name.as_str()) || !seen.insert(c.name.clone()) {
            problems.push(format!(
                "output column `{}` clashes with another column of the result table",
                c.name
            ));
        }
    }
    if let Err(e) = sql_ident::check_column(&job.input.id_column) {
        problems.push(format!("input.id_column becomes an output column: {e}"));
    }
    problems
}

/// The job's passthrough columns typed from the input's schema (integers and booleans as
/// `Int64`, other numbers as `Float64`, strings as `Text`, hashed columns as `Text`), and the
/// hasher of its `hash_columns` with the key from `env`.
pub fn passed_columns(
    job: &Job,
    input: &CheckedInput,
    env: impl Fn(&str) -> Option<String>,
) -> Result<crate::features::PassedColumns, Failure> {
    use crate::contract::OutputType;
    use arrow::datatypes::DataType;
    let o = &job.output.shared;
    let hasher = crate::hashing::ColumnHasher::from_env(&o.hash_columns, &o.hash_key_env, env)
        .map_err(Failure::Config)?;
    let mut problems = Vec::new();
    let mut columns = Vec::new();
    for name in &o.passthrough_columns {
        let hashed = hasher.as_ref().is_some_and(|h| h.hashes(name));
        let dt = input
            .schema
            .as_ref()
            .and_then(|s| s.field_with_name(name).ok())
            .map(|f| f.data_type().clone());
        let ty = match dt {
            _ if hashed => OutputType::Text,
            // No input object: no rows to write either; the row guards say so.
            None => OutputType::Text,
            Some(DataType::Float16 | DataType::Float32 | DataType::Float64) => OutputType::Float64,
            Some(DataType::Decimal128(..) | DataType::Decimal256(..)) => OutputType::Float64,
            Some(DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View) => OutputType::Text,
            Some(DataType::Dictionary(..)) => OutputType::Text,
            Some(DataType::UInt64) => OutputType::Text,
            Some(ref dt) if dt.is_integer() || *dt == DataType::Boolean => OutputType::Int64,
            Some(other) => {
                problems.push(format!(
                    "output.passthrough_columns: `{name}` is {other}; a number or strings can be \
                     passed through"
                ));
                continue;
            }
        };
        columns.push(OutputColumn {
            name: name.clone(),
            ty,
        });
    }
    if !problems.is_empty() {
        return Err(Failure::Many {
            problems,
            code: exit::CONFIG,
        });
    }
    Ok(crate::features::PassedColumns { columns, hasher })
}

/// Renders the input URL for `date`, lists the objects and checks their footers for `columns`;
/// the store's requests are counted into `counters`.
pub async fn check_input(
    job: &Job,
    date: NaiveDate,
    columns: &[RawColumn],
    counters: Arc<StoreCounters>,
) -> Result<CheckedInput, Failure> {
    if let Some(delta) = &job.input.delta {
        return plan_delta_input(job, delta, date, columns, counters).await;
    }
    let url = template::render(&job.input.url, date)
        .map_err(|e| Failure::Config(format!("input.url: {e}")))?;
    let location = source::resolve_counted(&url, &job.input.storage, counters)?;
    Ok(source::footers::check_columns(&location, &job.input.id_column, columns).await?)
}

/// `input.delta`: the files of the date's partition in the table's version, footers checked.
#[cfg(feature = "delta")]
async fn plan_delta_input(
    job: &Job,
    delta: &str,
    date: NaiveDate,
    columns: &[RawColumn],
    counters: Arc<StoreCounters>,
) -> Result<CheckedInput, Failure> {
    let target = crate::delta::DeltaTarget::resolve_input(delta, &job.input.storage, counters)
        .map_err(Failure::Config)?;
    let files = crate::delta::input::files_for_date(
        &target,
        job.input.delta_version,
        &job.input.delta_date_column,
        date,
    )
    .await
    // A Delta error carries its class (a table that cannot be read as asked is
    // configuration, exit 2), whichever side of the run it comes from.
    .map_err(|e| Failure::from(crate::sink::SinkError::from(e)))?;
    // Column mapping: the files are checked and read by physical names, renamed as read.
    let physical = files.physical_names.as_ref();
    let in_files = |name: &str| -> Result<String, Failure> {
        let Some(physical) = physical else {
            return Ok(name.to_string());
        };
        physical.get(name).cloned().ok_or_else(|| {
            let known: Vec<&str> = physical.keys().map(String::as_str).collect();
            Failure::Config(format!(
                "input.delta {delta}: the table has no column `{name}` (its columns: {})",
                known.join(", ")
            ))
        })
    };
    let id_column = in_files(&job.input.id_column)?;
    let columns = columns
        .iter()
        .map(|c| {
            Ok(RawColumn {
                name: in_files(&c.name)?,
                ..c.clone()
            })
        })
        .collect::<Result<Vec<_>, Failure>>()?;
    let mut plan =
        source::footers::check_objects(&target.location, files.objects, &id_column, &columns)
            .await?;
    let logical: Option<Arc<std::collections::BTreeMap<String, String>>> =
        physical.map(|p| Arc::new(p.iter().map(|(l, p)| (p.clone(), l.clone())).collect()));
    if let Some(names) = &logical {
        plan.schema = plan
            .schema
            .map(|s| source::footers::rename_fields(&s, names));
    }
    // Each object with its logical names and its deletion vector's rows left out; the input's
    // rows counted without them.
    plan.objects = plan
        .objects
        .iter()
        .zip(&files.deleted)
        .map(|(o, deleted)| {
            if logical.is_none() && deleted.is_none() {
                return Arc::clone(o);
            }
            let object = source::CheckedObject {
                logical_names: logical.clone(),
                ..o.as_ref().clone()
            };
            Arc::new(match deleted {
                Some(rows) => object.with_deleted_rows(Arc::clone(rows)),
                None => object,
            })
        })
        .collect();
    plan.total_rows = plan.objects.iter().map(|o| o.rows).sum();
    plan.delta_version = Some(files.version);
    Ok(plan)
}

/// `input.delta` in a binary built without Delta tables.
#[cfg(not(feature = "delta"))]
async fn plan_delta_input(
    _job: &Job,
    _delta: &str,
    _date: NaiveDate,
    _columns: &[RawColumn],
    _counters: Arc<StoreCounters>,
) -> Result<CheckedInput, Failure> {
    Err(Failure::Config(crate::error::not_built(
        "a Delta table input (input.delta)",
        "delta",
    )))
}

/// Resolves the job's output for `date`: its table, its rendered output URL and store, or its
/// Delta table (the output kind's own section does it). No I/O.
pub fn destination(job: &Job, date: NaiveDate) -> Result<Box<dyn Destination>, Failure> {
    job.output
        .target
        .section()
        .destination(date)
        .map_err(Failure::Config)
}
