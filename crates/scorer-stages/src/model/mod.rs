//! The model registry and model kinds. A model lives in `models/<name>/<version>/` as a
//! `model.toml` naming its kind, inputs, preprocessing, outputs and artifacts (each pinned by
//! sha256); every kind implements [`ScoringModel`], so the pipeline never needs to know which kind
//! it runs.

pub mod artifacts;
pub mod dense;
pub mod device;
pub mod gbdt;
pub mod kind;
pub mod mlflow;
pub mod onnx;
pub mod precision_check;
pub mod reason_labels;
pub mod registry;
pub mod spec;
pub mod text_embedding;
pub mod threads;

use std::path::PathBuf;
use std::sync::Arc;

use thiserror::Error;

use arrow::array::ArrayRef;

use crate::contract::{ExecutionPolicy, InputContract, OutputColumn};
use crate::features::FeatureBatch;

use crate::error::{ErrorClass, object_store_class};
use crate::preprocess::Preprocessor;
use device::DeviceSpec;
use kind::ModelFiles;
use registry::Registry;
use spec::ModelSpec;

/// A model that could not be loaded or run; each variant names the file concerned.
#[derive(Debug, Error)]
pub enum ModelError {
    #[error(
        "model {name} version {version}: {path} not found (looked in the models directory {dir})"
    )]
    NotFound {
        name: String,
        version: String,
        path: PathBuf,
        dir: PathBuf,
    },
    #[error("model file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("model file {path}: {message}")]
    Spec { path: PathBuf, message: String },
    /// A tree model file (XGBoost JSON, LightGBM text) that cannot be used.
    #[error("model file {path}: {source}")]
    ForestFile {
        path: PathBuf,
        source: gbdt::error::ForestFileError,
    },
    #[error("model weights {path}: sha256 is {actual}, but model.toml pins {expected}")]
    Sha256Mismatch {
        path: PathBuf,
        expected: String,
        actual: String,
    },
    #[error("model weights {file}: tensor `{tensor}` is missing (the file has: {})", available.join(", "))]
    MissingTensor {
        file: String,
        tensor: String,
        available: Vec<String>,
    },
    #[error("model weights {file}: {message}")]
    Shape { file: String, message: String },
    #[error("{0}")]
    BadName(String),
    #[error("model artifact {url}: {message}")]
    Fetch { url: String, message: String },
    /// Downloading an artifact from its object store failed.
    #[error("model artifact {url}: {source}")]
    FetchStore {
        url: String,
        source: object_store::Error,
    },
    #[error("{0}")]
    Runtime(String),
    #[error(transparent)]
    Device(#[from] device::DeviceError),
    #[error("model computation failed: {0}")]
    Candle(String),
    /// The MLflow Model Registry refused, lacks what the job names, or cannot be reached
    /// (`transient`).
    #[error("MLflow registry: {message}")]
    Mlflow { message: String, transient: bool },
}

impl ModelError {
    /// What kind of failure this is: a download is classed by the store's typed error, a
    /// failing computation is scorer's, everything else is the model's configuration.
    pub fn class(&self) -> ErrorClass {
        match self {
            // A missing artifact is the registry's configuration, not input data; the store
            // being away is transient.
            Self::FetchStore { source, .. } => match object_store_class(source) {
                ErrorClass::Data => ErrorClass::Config,
                other => other,
            },
            Self::Candle(_) => ErrorClass::Internal,
            Self::Mlflow {
                transient: true, ..
            } => ErrorClass::Transient,
            _ => ErrorClass::Config,
        }
    }
}

/// What every model kind offers the run: it declares its inputs, outputs and execution policy
/// (checked and followed by the plan and the scoring stage), and scores a batch of feature rows
/// into one arrow array per declared output.
pub trait ScoringModel: Send + Sync {
    /// The features it reads, in order, and what it does with missing values.
    fn inputs(&self) -> &InputContract;
    /// The outputs it writes, in order, with their types.
    fn outputs(&self) -> &[OutputColumn];
    /// How the scoring stage should drive it (row slices on the CPU pool, or whole batches).
    fn execution(&self) -> ExecutionPolicy;
    /// Scores every row of `batch`; returns one array of `batch.rows` values per output, of the
    /// output's declared type.
    fn score(&self, batch: &FeatureBatch) -> Result<Vec<ArrayRef>, ModelError>;
    /// One line on what was loaded beyond model.toml (a forest's trees and objective), for
    /// `scorer models verify` and the run's log; `None` when model.toml says it all.
    fn describe(&self) -> Option<String> {
        None
    }
}

/// A model resolved from the registry and ready to score, with what the ledger records about it.
pub struct LoadedModel {
    pub name: String,
    /// The resolved version (`latest` is never stored).
    pub version: String,
    /// sha256 of the main artifact (the weights or the graph).
    pub sha256: String,
    pub spec: ModelSpec,
    /// The device the model runs on (`auto` resolved).
    pub device: DeviceSpec,
    /// The GPU's name when `device` is a GPU.
    pub gpu_name: Option<String>,
    /// The declared preprocessing, compiled; `None` when the model reads its inputs as they are.
    pub preprocess: Option<Arc<Preprocessor>>,
    pub model: Box<dyn ScoringModel>,
    /// Where a model from the MLflow Model Registry came from (alias, version, run, files);
    /// `None` for scorer's own registry.
    pub source: Option<mlflow::ModelSource>,
}

impl LoadedModel {
    /// The same model, its reason codes worded by `table` (`[model.reasons]` in the job file,
    /// checked by [`reason_labels::problems`]); unchanged when the table is empty.
    pub fn with_reason_labels(self, table: &std::collections::BTreeMap<String, String>) -> Self {
        if table.is_empty() {
            return self;
        }
        Self {
            model: Box::new(reason_labels::ReasonLabels::new(self.model, table)),
            ..self
        }
    }
}

/// Reads and checks `model.toml` without loading any artifact (for `scorer validate` and
/// `scorer models list`).
pub fn read_spec(registry: &Registry, name: &str, version: &str) -> Result<ModelSpec, ModelError> {
    read_checked(registry, name, version).map(|(spec, _)| spec)
}

/// `read_spec`, also handing over the preprocessing it compiled to check it.
fn read_checked(
    registry: &Registry,
    name: &str,
    version: &str,
) -> Result<(ModelSpec, Option<Preprocessor>), ModelError> {
    let path = registry.dir(name, version)?.join("model.toml");
    let text = std::fs::read_to_string(&path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            ModelError::NotFound {
                name: name.to_string(),
                version: version.to_string(),
                path: path.clone(),
                dir: registry.root.clone(),
            }
        } else {
            ModelError::Io {
                path: path.clone(),
                source,
            }
        }
    })?;
    let spec = ModelSpec::parse(&text).map_err(|problems| ModelError::Spec {
        path: path.clone(),
        message: problems.join("; "),
    })?;
    let mut problems = spec.artifact_problems();
    if spec.inputs.is_empty() {
        problems.push("`inputs` must name at least one feature".to_string());
    }
    if spec.outputs.is_empty() {
        problems.push("`outputs` must name at least one output".to_string());
    }
    problems.extend(spec.output_problems());
    problems.extend(spec.kind.section().problems(&spec));
    let preprocess = match spec
        .preprocess
        .as_ref()
        .map(|p| Preprocessor::compile(p, &spec.inputs))
    {
        Some(Ok(compiled)) => Some(compiled),
        Some(Err(e)) => {
            problems.push(e);
            None
        }
        None => None,
    };
    if problems.is_empty() {
        Ok((spec, preprocess))
    } else {
        Err(ModelError::Spec {
            path,
            message: problems.join("; "),
        })
    }
}

/// Loads a model version (`latest` resolved) from the registry onto `device`, checking every
/// artifact's pinned sha256.
pub fn load(
    registry: &Registry,
    name: &str,
    version: &str,
    device: DeviceSpec,
) -> Result<LoadedModel, ModelError> {
    load_adjusted(registry, name, version, device, |_| {})
}

/// [`load`], with the spec changed by `adjust` before the model is built. `scorer models verify`
/// loads a reduced-precision text encoder a second time in f32 this way, to measure what the
/// reduction costs and gains.
pub fn load_adjusted(
    registry: &Registry,
    name: &str,
    version: &str,
    device: DeviceSpec,
    adjust: impl FnOnce(&mut ModelSpec),
) -> Result<LoadedModel, ModelError> {
    let version = registry.resolve_version(name, version)?;
    let (mut spec, preprocess) = read_checked(registry, name, &version)?;
    adjust(&mut spec);
    let dir = registry.dir(name, &version)?;
    let model_toml = dir.join("model.toml");
    let section = spec.kind.section();
    let role = section.main_artifact();
    let main_spec = spec.main_artifact().map_err(|message| ModelError::Spec {
        path: model_toml.clone(),
        message,
    })?;
    let main = artifacts::load(registry, &dir, role, main_spec)?;
    // Every pinned file is checked, whether or not the kind reads it.
    for (other, a) in spec.artifacts.iter().filter(|(r, _)| r.as_str() != role) {
        artifacts::load(registry, &dir, other, a)?;
    }
    let outputs: Vec<OutputColumn> = spec.output_columns();
    let artifact = |role: &str| -> Result<artifacts::Artifact, ModelError> {
        let a = spec.artifacts.get(role).ok_or_else(|| ModelError::Spec {
            path: model_toml.clone(),
            message: format!("a {} model needs [artifacts.{role}]", spec.kind.kind()),
        })?;
        artifacts::load(registry, &dir, role, a)
    };
    let files = ModelFiles {
        model: format!("model {name} version {version}"),
        spec: &spec,
        model_toml: &model_toml,
        main: &main,
        outputs: &outputs,
        artifact: &artifact,
    };
    let built = section.build(&files, device)?;
    Ok(LoadedModel {
        name: name.to_string(),
        version,
        sha256: main.sha256,
        spec,
        device: built.device,
        gpu_name: built.gpu_name,
        preprocess: preprocess.map(Arc::new),
        model: built.model,
        source: None,
    })
}
