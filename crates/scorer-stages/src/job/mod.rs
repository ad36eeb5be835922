//! Job files: what to score, with which model, into which table. Parsed strictly (unknown keys are
//! errors that list the valid names) and validated as a whole, so a user sees every problem at once.

pub mod output;

use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::Deserialize;
use thiserror::Error;

use crate::drift::DriftSpec;
use crate::features::{NanPolicy, NullPolicy};
use crate::source::storage;
use crate::template;

pub use output::{OutputSpec, OutputTarget, SharedOutput};

/// Default number of rows the model sees at once.
pub const DEFAULT_BATCH_SIZE: usize = 65_536;

/// A job file that could not be used; every variant names the file.
#[derive(Debug, Error)]
pub enum JobError {
    #[error("job file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("job file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("job file {path} is invalid:\n  - {}", problems.join("\n  - "))]
    Invalid {
        path: PathBuf,
        problems: Vec<String>,
    },
}

/// A parsed and validated job definition. `Output` is the `[output]` section: an [`OutputSpec`]
/// once validated, the section's raw keys while the job file is being parsed (each output kind
/// parses its own keys, `output`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Job<Output = OutputSpec> {
    /// Identifies the job in the ledger and in locks; letters, digits, `_` and `-`.
    pub name: String,
    /// Cron expression (five fields, or six with seconds first) for `scorer schedule`.
    #[serde(default)]
    pub schedule: Option<String>,
    /// IANA time zone the schedule is read in (and logical dates are taken in); UTC if unset.
    #[serde(default)]
    pub timezone: Option<String>,
    /// After downtime, whether `scorer schedule` runs the firings it missed (oldest first) or
    /// only the latest one.
    #[serde(default = "default_catchup")]
    pub catchup: bool,
    /// The most missed firings one catch-up runs (the newest ones).
    #[serde(default = "default_max_catchup")]
    pub max_catchup: usize,
    /// With `catchup`, a job the scheduler has never run catches up from here (firings after
    /// this date's midnight in the job's zone); without it, a new job starts with its next firing.
    #[serde(default)]
    pub start_date: Option<chrono::NaiveDate>,
    pub input: InputSpec,
    pub model: ModelRef,
    /// `[output]`: where the rows go, and the keys every kind of output shares.
    pub output: Output,
    /// `[drift]`: how far the scores' and inputs' distributions may move from the job's previous
    /// successful run (PSI) before the run warns or fails. PSI is recorded whatever this says.
    #[serde(default)]
    pub drift: DriftSpec,
    /// `[metrics]`: when a run counts as slow.
    #[serde(default)]
    pub metrics: MetricsSpec,
    /// Where the job file was read from, for error messages.
    #[serde(skip)]
    pub path: PathBuf,
    /// sha256 of the job file's text as parsed, for the ledger's audit trail.
    #[serde(skip)]
    pub text_sha256: String,
}

/// `[metrics]`: a run slower than `slow_factor` × the median of the job's last 10 successful
/// runs (at least 3) logs a performance-regression warning and is marked `metrics.slow`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsSpec {
    #[serde(default = "default_slow_factor")]
    pub slow_factor: f64,
}

impl Default for MetricsSpec {
    fn default() -> Self {
        Self {
            slow_factor: default_slow_factor(),
        }
    }
}

fn default_slow_factor() -> f64 {
    3.0
}

/// `[input]`: which Parquet objects to read and which columns matter.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputSpec {
    /// URL or path with date templating and globs, e.g. `data/dt={{ ds }}/*.parquet`. Either
    /// this or `delta`.
    #[serde(default)]
    pub url: String,
    /// A Delta Lake table instead (`s3://lake/events`, or a local path): the run reads the
    /// files of its date's partition from the table's log (`crate::delta::input`).
    #[serde(default)]
    pub delta: Option<String>,
    /// The Delta table's version to read; the latest when unset.
    #[serde(default)]
    pub delta_version: Option<i64>,
    /// The Delta table's date partition column, whose value the run's date selects.
    #[serde(default = "default_delta_date_column")]
    pub delta_date_column: String,
    /// Column that identifies a row in the output (integer or string).
    pub id_column: String,
    /// Feature columns in the model's input order; defaults to the model's declared inputs.
    #[serde(default)]
    pub features: Option<Vec<String>>,
    /// What to do with a null feature value.
    #[serde(default)]
    pub on_null: NullPolicy,
    /// What to do with a NaN or ±infinity in a feature (never scored silently): `fail` names the
    /// object, row group and column; `skip` leaves the row out and counts it as rejected. Models
    /// that handle missing values themselves (`gbdt`) take NaN as missing instead.
    #[serde(default)]
    pub on_nan: NanPolicy,
    /// Largest fraction of the input's rows that may be rejected (null ids; nulls or NaN under
    /// `skip`) before the run fails instead of publishing the rest.
    #[serde(default = "default_max_rejected_fraction")]
    pub max_rejected_fraction: f64,
    /// Row groups fetched and decoded concurrently; bounds memory. Left out, the run chooses
    /// from the footers and the cores (`crate::source::in_flight`).
    #[serde(default)]
    pub row_groups_in_flight: Option<usize>,
    /// `[input.storage]`: endpoint, region, timeouts, retries, credential references.
    #[serde(default)]
    pub storage: storage::StorageOptions,
}

/// `[model]`: which model from the registry scores the rows, and where.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelRef {
    /// The model's directory in the registry (for `uri`, the registered model's name, filled
    /// in from it).
    #[serde(default)]
    pub name: String,
    /// A version directory, or `latest` for the highest one (the ledger records which ran). For
    /// `uri`, `latest` means what the URI says; a number pins that version instead.
    #[serde(default = "default_version")]
    pub version: String,
    /// `models:/<name>@<alias>` or `models:/<name>/<version>`: a model from the MLflow Model
    /// Registry at `MLFLOW_TRACKING_URI`, instead of scorer's own registry.
    #[serde(default)]
    pub uri: Option<String>,
    /// `[model.declare]`: model.toml keys for what MLflow cannot say of a registered model
    /// (`outputs`, `[preprocess]`, `[onnx]`, `[gbdt] output`).
    #[serde(default)]
    pub declare: Option<toml::Table>,
    /// `[model.storage]`: for a registered model's files in object storage (`[input.storage]`
    /// when left out).
    #[serde(default)]
    pub storage: Option<storage::StorageOptions>,
    /// `cpu`, `cuda` or `cuda:N`.
    #[serde(default = "default_device")]
    pub device: String,
    /// Rows per forward pass.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// `[model.reasons]`: the text each input feature's reason code reads as (`dti = "Debt to
    /// income ratio too high"`), for a model with a `top_contributions` output; every input must
    /// have one.
    #[serde(default)]
    pub reasons: std::collections::BTreeMap<String, String>,
}

fn default_delta_date_column() -> String {
    "ds".into()
}

pub use crate::source::in_flight::MAX_ROW_GROUPS_IN_FLIGHT;
/// Most rows per model call; a W1 row's features are 128 bytes, so this is 512 MiB of input.
pub const MAX_BATCH_SIZE: usize = 4 * 1024 * 1024;

/// Missed firings a catch-up runs unless the job says otherwise: a week and a half of a daily job.
pub const DEFAULT_MAX_CATCHUP: usize = 10;

fn default_catchup() -> bool {
    true
}
fn default_max_catchup() -> usize {
    DEFAULT_MAX_CATCHUP
}
fn default_max_rejected_fraction() -> f64 {
    0.5
}
fn default_version() -> String {
    crate::model::registry::LATEST.to_string()
}
fn default_device() -> String {
    "cpu".to_string()
}
fn default_batch_size() -> usize {
    DEFAULT_BATCH_SIZE
}

impl Job {
    /// Reads and validates a job file.
    pub fn load(path: &Path) -> Result<Self, JobError> {
        let text = std::fs::read_to_string(path).map_err(|source| JobError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses and validates job-file text; `path` is only used in messages.
    pub fn parse(text: &str, path: &Path) -> Result<Self, JobError> {
        let mut raw: Job<toml::Table> = toml::from_str(text).map_err(|e| JobError::Parse {
            path: path.to_path_buf(),
            message: e.to_string().trim_end().to_string(),
        })?;
        let mut problems = raw.problems();
        // A registered model goes by its registry name, for messages and the ledger.
        if let Some(Ok(req)) = raw.model.mlflow(&raw.input.storage)
            && raw.model.name.is_empty()
        {
            raw.model.name = req.uri.name;
        }
        let (output, output_problems) =
            OutputSpec::parse(std::mem::take(&mut raw.output), &raw.input.id_column);
        problems.extend(output_problems);
        match output {
            Some(output) if problems.is_empty() => {
                use sha2::{Digest, Sha256};
                Ok(raw.with_output(output, path, hex::encode(Sha256::digest(text.as_bytes()))))
            }
            _ => Err(JobError::Invalid {
                path: path.to_path_buf(),
                problems,
            }),
        }
    }
}

impl Job<toml::Table> {
    /// The job with its `[output]` parsed, read from `path` whose text hashes to `text_sha256`.
    fn with_output(self, output: OutputSpec, path: &Path, text_sha256: String) -> Job {
        let Job {
            name,
            schedule,
            timezone,
            catchup,
            max_catchup,
            start_date,
            input,
            model,
            output: _,
            drift,
            metrics,
            path: _,
            text_sha256: _,
        } = self;
        Job {
            name,
            schedule,
            timezone,
            catchup,
            max_catchup,
            start_date,
            input,
            model,
            output,
            drift,
            metrics,
            path: path.to_path_buf(),
            text_sha256,
        }
    }
}

impl<Output> Job<Output> {
    /// Every problem with the job outside `[output]` that can be found without touching data
    /// or the model.
    fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.name.is_empty()
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            p.push(format!(
                "name `{}` must be non-empty and use only letters, digits, `_` and `-`",
                self.name
            ));
        }
        if let Some(s) = &self.schedule
            && let Err(e) = crate::calendar::parse_expr(s)
        {
            p.push(e);
        }
        if let Some(z) = &self.timezone
            && let Err(e) = crate::calendar::parse_zone(z)
        {
            p.push(e);
        }
        if !(self.metrics.slow_factor.is_finite() && self.metrics.slow_factor > 1.0) {
            p.push(format!(
                "metrics.slow_factor must be a number over 1, got {}",
                self.metrics.slow_factor
            ));
        }
        if let Some(m) = self.drift.max_psi
            && !(m.is_finite() && m > 0.0)
        {
            p.push(format!("drift.max_psi must be a positive number, got {m}"));
        }
        if self.max_catchup == 0 {
            p.push("max_catchup must be at least 1".into());
        }
        if self.schedule.is_none() && (self.timezone.is_some() || self.start_date.is_some()) {
            p.push("timezone and start_date apply to a job with a schedule; add `schedule`".into());
        }
        p.extend(self.input.problems());
        p.extend(self.model.problems());
        p
    }
}

impl InputSpec {
    /// Every problem with `[input]` that can be found without touching data.
    fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if !(0.0..=1.0).contains(&self.max_rejected_fraction) {
            p.push(format!(
                "input.max_rejected_fraction must be between 0 and 1, got {}",
                self.max_rejected_fraction
            ));
        }
        match (&self.delta, self.url.is_empty()) {
            (None, true) => {
                p.push("input: set `url` (Parquet files) or `delta` (a Delta table)".into())
            }
            (None, false) => {
                if let Err(e) = template::check(&self.url) {
                    p.push(format!("input.url: {e}"));
                }
                if self.delta_version.is_some() {
                    p.push("input.delta_version applies to input.delta only".into());
                }
            }
            (Some(_), false) => {
                p.push("input: set either `url` (Parquet files) or `delta`, not both".into())
            }
            (Some(delta), true) => {
                if delta.contains("{{") {
                    p.push(
                        "input.delta names the whole table; the run's date selects its \
                         partition (input.delta_date_column): no date template"
                            .into(),
                    );
                }
                if self.delta_version.is_some_and(|v| v < 0) {
                    p.push("input.delta_version must be 0 or more".into());
                }
            }
        }
        if self.id_column.is_empty() {
            p.push("input.id_column must not be empty".into());
        }
        if let Some(features) = &self.features {
            if features.is_empty() {
                p.push("input.features must name at least one column (or be left out to use the model's inputs)".into());
            }
            let mut seen = std::collections::BTreeSet::new();
            for f in features {
                if !seen.insert(f) {
                    p.push(format!("input.features lists `{f}` twice"));
                }
                if f == &self.id_column {
                    p.push(format!("input.features: `{f}` is also the id_column"));
                }
            }
        }
        p.extend(self.storage.problems("input.storage"));
        if let Some(n) = self.row_groups_in_flight
            && !(1..=MAX_ROW_GROUPS_IN_FLIGHT).contains(&n)
        {
            p.push(format!(
                "input.row_groups_in_flight must be between 1 and {MAX_ROW_GROUPS_IN_FLIGHT}, got {n}"
            ));
        }
        if let NullPolicy::Fill(v) = self.on_null
            && !v.is_finite()
        {
            p.push(format!(
                "input.on_null: the fill value must be a finite number, got {v}"
            ));
        }
        p
    }
}

impl ModelRef {
    /// What to ask MLflow for, when the model comes from its registry (`uri`).
    pub fn mlflow(
        &self,
        input_storage: &storage::StorageOptions,
    ) -> Option<Result<crate::model::mlflow::MlflowRequest, String>> {
        let uri = self.uri.as_ref()?;
        Some(crate::model::mlflow::RegistryUri::parse(uri).map(|uri| {
            crate::model::mlflow::MlflowRequest {
                uri,
                pinned_version: (self.version != crate::model::registry::LATEST)
                    .then(|| self.version.clone()),
                declare: self.declare.clone().unwrap_or_default(),
                storage: self
                    .storage
                    .clone()
                    .unwrap_or_else(|| input_storage.clone()),
            }
        }))
    }

    /// Every problem with `[model]` that can be found without reading the model.
    fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if !(1..=MAX_BATCH_SIZE).contains(&self.batch_size) {
            p.push(format!(
                "model.batch_size must be between 1 and {MAX_BATCH_SIZE}, got {}",
                self.batch_size
            ));
        }
        if let Err(e) = crate::model::device::DeviceSpec::from_str(&self.device) {
            p.push(format!("model.device: {e}"));
        }
        match (&self.uri, self.name.as_str()) {
            (Some(uri), name) => match crate::model::mlflow::RegistryUri::parse(uri) {
                Ok(u) if !name.is_empty() && name != u.name => p.push(format!(
                    "model.name `{name}` differs from model.uri's `{}`; leave model.name out",
                    u.name
                )),
                Ok(_) => {}
                Err(e) => p.push(e),
            },
            (None, "") => p.push(
                "[model] needs `name` (scorer's registry) or `uri` (models:/<name>@<alias> from MLflow)"
                    .into(),
            ),
            (None, name) => {
                if let Err(e) = crate::model::registry::check_name("name", name) {
                    p.push(format!("model.name: {e}"));
                }
            }
        }
        if self.uri.is_none() && self.declare.is_some() {
            p.push("[model.declare] applies to a model from MLflow (model.uri) only; a registry model says it in its model.toml".into());
        }
        if let Some(s) = &self.storage {
            p.extend(s.problems("model.storage"));
        }
        if self.version != crate::model::registry::LATEST
            && let Err(e) = crate::model::registry::check_name("version", &self.version)
        {
            p.push(format!("model.version: {e} (or `latest`)"));
        }
        p
    }
}

/// Finds a job by path, or by name in `jobs_dir` (`NAME` -> `jobs_dir/NAME.toml`).
pub fn locate(job: &str, jobs_dir: &Path) -> PathBuf {
    let direct = PathBuf::from(job);
    if direct.is_file() {
        return direct;
    }
    let named = jobs_dir.join(format!("{job}.toml"));
    if named.is_file() { named } else { direct }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
name = "churn_daily"
schedule = "0 2 * * *"
[input]
url = "data/dt={{ ds }}/*.parquet"
id_column = "customer_id"
features = ["f0", "f1"]
on_null = "fill:0.5"
[model]
name = "churn"
version = "3"
[output]
table = "scores.churn_daily"
columns = { score = "prob" }
"#;

    #[test]
    fn parses_a_full_job() {
        let job = Job::parse(GOOD, Path::new("j.toml")).unwrap();
        assert_eq!(job.name, "churn_daily");
        assert_eq!(job.input.on_null, NullPolicy::Fill(0.5));
        assert_eq!(job.model.batch_size, DEFAULT_BATCH_SIZE);
        assert_eq!(job.model.device, "cpu");
        assert_eq!(job.output.shared.columns["score"], "prob");
    }

    #[test]
    fn unknown_key_lists_valid_names() {
        let text = GOOD.replace("id_column", "idcolumn");
        let msg = Job::parse(&text, Path::new("j.toml"))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("j.toml"), "{msg}");
        assert!(msg.contains("idcolumn"), "{msg}");
        assert!(msg.contains("id_column"), "{msg}");
    }

    #[test]
    fn reports_every_problem_at_once() {
        let text = GOOD
            .replace("0 2 * * *", "61 * * * *")
            .replace("{{ ds }}", "{{ dss }}")
            .replace("scores.churn_daily", "scores.churn;drop")
            .replace("\"f1\"]", "\"f0\"]");
        let err = Job::parse(&text, Path::new("j.toml")).unwrap_err();
        let JobError::Invalid { problems, .. } = err else {
            panic!("expected Invalid, got {err}")
        };
        assert_eq!(problems.len(), 4, "{problems:#?}");
    }

    /// GOOD with its `table = …` line replaced by `output`, parsed.
    fn with_output(output: &str) -> Result<Job, String> {
        let text = GOOD.replace("table = \"scores.churn_daily\"", output);
        Job::parse(&text, Path::new("j.toml")).map_err(|e| e.to_string())
    }

    #[test]
    fn output_is_a_table_or_a_directory_url() {
        assert!(with_output("url = \"s3://lake/scores/dt={{ ds }}/\"").is_ok());
        let err = with_output("url = \"s3://lake/dt={{ ds }}/*.parquet\"").unwrap_err();
        assert!(err.contains("output.url: names one directory"), "{err}");
        let err = with_output("url = \"s3://lake/x/\"\ntable = \"t\"").unwrap_err();
        assert!(err.contains("not both"), "{err}");
        let err = with_output("").unwrap_err();
        assert!(err.contains("set `table`"), "{err}");
    }

    #[test]
    fn copy_streams_is_bounded_and_for_tables_only() {
        let copy_streams = |job: Job| job.output.target.section().table_options().copy_streams;
        let job = with_output("table = \"t\"").unwrap();
        assert_eq!(copy_streams(job), 1);
        let job = with_output("table = \"t\"\ncopy_streams = 3").unwrap();
        assert_eq!(copy_streams(job), 3);
        let err = with_output("table = \"t\"\ncopy_streams = 0").unwrap_err();
        assert!(
            err.contains("output.copy_streams must be between 1 and 6"),
            "{err}"
        );
        let err = with_output("table = \"t\"\ncopy_streams = 7").unwrap_err();
        assert!(err.contains("got 7"), "{err}");
        let err = with_output("url = \"s3://lake/x/\"\ncopy_streams = 2").unwrap_err();
        assert!(err.contains("applies to output.table only"), "{err}");
    }

    #[test]
    fn null_policy_parses() {
        assert_eq!("skip".parse::<NullPolicy>().unwrap(), NullPolicy::Skip);
        assert_eq!("fail".parse::<NullPolicy>().unwrap(), NullPolicy::Fail);
        assert_eq!(
            "fill:-1".parse::<NullPolicy>().unwrap(),
            NullPolicy::Fill(-1.0)
        );
        assert!("fill:x".parse::<NullPolicy>().is_err());
        assert!("drop".parse::<NullPolicy>().is_err());
    }

    #[test]
    fn numeric_options_are_range_checked_with_the_range_in_the_message() {
        let job = |input: &str, model: &str| {
            let text = GOOD
                .replace("on_null = \"fill:0.5\"", input)
                .replace("version = \"3\"", &format!("version = \"3\"\n{model}"));
            Job::parse(&text, Path::new("j.toml"))
                .map(|_| ())
                .unwrap_err()
                .to_string()
        };
        let e = job("row_groups_in_flight = 0", "");
        assert!(e.contains("between 1 and 64, got 0"), "{e}");
        let e = job("row_groups_in_flight = 100000", "");
        assert!(e.contains("between 1 and 64, got 100000"), "{e}");
        let e = job("on_null = \"fill:NaN\"", "");
        assert!(e.contains("finite number"), "{e}");
        let e = job("on_null = \"fill:inf\"", "batch_size = 0");
        assert!(e.contains("finite number"), "{e}");
        assert!(
            e.contains("model.batch_size must be between 1 and 4194304, got 0"),
            "{e}"
        );
        let e = job("[input.storage]\nmax_retries = 1000", "");
        assert!(
            e.contains("max_retries must be between 0 and 100, got 1000"),
            "{e}"
        );
        // A negative number is refused by the parser, naming the key.
        let e = job("row_groups_in_flight = -1", "");
        assert!(e.contains("row_groups_in_flight"), "{e}");
    }
}
