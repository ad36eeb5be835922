//! The model registry and model kinds. A model lives in `models/<name>/<version>/` as a
//! `model.toml` naming its kind, inputs, preprocessing, outputs and artifacts (each pinned by
//! sha256); every kind implements [`ScoringModel`], so the pipeline never needs to know which kind
//! it runs.

pub mod artifacts;
pub mod dense;
mod dense_cpu;
pub mod device;
pub mod gbdt;
#[cfg(feature = "onnx")]
pub mod onnx;
pub mod precision_check;
pub mod registry;
pub mod spec;
pub mod text_embedding;
pub mod threads;

use std::path::PathBuf;
use std::sync::Arc;

use thiserror::Error;

use arrow::array::ArrayRef;

use crate::contract::{ExecutionPolicy, InputContract, OutputColumn, OutputType};
use crate::features::FeatureBatch;

use crate::error::{ErrorClass, object_store_class};
use crate::preprocess::Preprocessor;
use device::DeviceSpec;
use registry::Registry;
use spec::{ModelKind, ModelSpec};

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
    let spec: ModelSpec = toml::from_str(&text).map_err(|e| ModelError::Spec {
        path: path.clone(),
        message: e.to_string().trim_end().to_string(),
    })?;
    let mut problems = spec.artifact_problems();
    if spec.inputs.is_empty() {
        problems.push("`inputs` must name at least one feature".to_string());
    }
    if spec.outputs.is_empty() {
        problems.push("`outputs` must name at least one output".to_string());
    }
    problems.extend(spec.output_problems());
    if spec.kind != ModelKind::TextEmbedding && spec.text_embedding.is_some() {
        problems.push(format!(
            "[text_embedding] applies to text_embedding models, not {:?}",
            spec.kind
        ));
    }
    if spec.kind != ModelKind::Gbdt && spec.gbdt.is_some() {
        problems.push(format!(
            "[gbdt] applies to gbdt models, not {:?}",
            spec.kind
        ));
    }
    if spec.kind == ModelKind::Gbdt {
        if !spec.layers.is_empty() {
            problems.push("a gbdt model has no [[layers]]".into());
        }
        if spec.onnx.is_some() {
            problems.push("[onnx] applies to onnx models, not Gbdt".into());
        }
        if spec.gbdt.is_none() {
            problems.push(
                "a gbdt model needs [gbdt] with `format = \"xgboost_json\"` or `\"lightgbm_text\"`"
                    .into(),
            );
        }
        if spec
            .outputs
            .iter()
            .filter(|o| o.column().ty == OutputType::Int64)
            .count()
            > 1
        {
            problems
                .push("a gbdt model has at most one integer output (the predicted class)".into());
        }
    } else if spec.kind == ModelKind::TextEmbedding {
        if !spec.layers.is_empty() || spec.onnx.is_some() || spec.preprocess.is_some() {
            problems
                .push("a text_embedding model has no [[layers]], [onnx] or [preprocess]".into());
        }
        if spec.text_embedding.is_none() {
            problems.push("a text_embedding model needs [text_embedding] with max_seq_len".into());
        }
        for role in ["config", "tokenizer"] {
            if !spec.artifacts.contains_key(role) {
                problems.push(format!(
                    "a text_embedding model needs [artifacts.{role}] (config.json, tokenizer.json)"
                ));
            }
        }
        if spec.inputs.len() != 1 {
            problems.push("a text_embedding model reads exactly one string input".into());
        }
    } else if spec.kind == ModelKind::Onnx {
        if !spec.layers.is_empty() {
            problems.push("an onnx model has no [[layers]]".into());
        }
    } else {
        problems.extend(spec.effective_layers().err());
        if spec.onnx.is_some() {
            problems.push(format!(
                "[onnx] applies to onnx models, not {:?}",
                spec.kind
            ));
        }
        if let Some(o) = spec
            .outputs
            .iter()
            .find(|o| o.column().ty == OutputType::Int64)
        {
            problems.push(format!(
                "output `{}`: a {:?} model computes f32 values; integer outputs come from onnx graphs",
                o.name(),
                spec.kind
            ));
        }
    }
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
    load_as(registry, name, version, device, None)
}

/// [`load`], with a text encoder's `[text_embedding] dtype` replaced by `dtype` (`None`: as
/// model.toml says). `scorer models verify` loads a reduced-precision encoder a second time in
/// f32 this way, to measure what the reduction costs and gains.
pub fn load_as(
    registry: &Registry,
    name: &str,
    version: &str,
    device: DeviceSpec,
    dtype: Option<text_embedding::Precision>,
) -> Result<LoadedModel, ModelError> {
    let version = registry.resolve_version(name, version)?;
    let (spec, preprocess) = read_checked(registry, name, &version)?;
    let dir = registry.dir(name, &version)?;
    let role = spec.kind.main_artifact();
    let main_spec = spec.main_artifact().map_err(|message| ModelError::Spec {
        path: dir.join("model.toml"),
        message,
    })?;
    let main = artifacts::load(registry, &dir, role, main_spec)?;
    for (other, a) in spec.artifacts.iter().filter(|(r, _)| r.as_str() != role) {
        artifacts::load(registry, &dir, other, a)?;
    }
    let outputs: Vec<OutputColumn> = spec.outputs.iter().map(|o| o.column()).collect();
    let (model, opened_spec, gpu_name): (Box<dyn ScoringModel>, DeviceSpec, Option<String>) =
        match spec.kind {
            #[cfg(not(feature = "onnx"))]
            ModelKind::Onnx => {
                return Err(ModelError::Runtime(format!(
                    "model {name} version {version}: {}",
                    crate::error::not_built("the onnx model kind", "onnx")
                )));
            }
            #[cfg(feature = "onnx")]
            ModelKind::Onnx => {
                if let DeviceSpec::Cuda(_) = device {
                    return Err(ModelError::Runtime(format!(
                        "model {name} version {version}: the onnx kind runs on the CPU in this build; set model.device = \"cpu\" or \"auto\" (or pass --device cpu)"
                    )));
                }
                let sessions = rayon::current_num_threads().max(1);
                let m = onnx::OnnxModel::build(
                    &main.bytes,
                    &main.path,
                    &spec.inputs,
                    &outputs,
                    &spec.onnx.clone().unwrap_or_default(),
                    sessions,
                )?;
                (Box::new(m), DeviceSpec::Cpu, None)
            }
            ModelKind::Gbdt => {
                let gbdt = spec.gbdt.clone().ok_or_else(|| ModelError::Spec {
                    path: dir.join("model.toml"),
                    message: "a gbdt model needs [gbdt]".into(),
                })?;
                let opened = device.open()?;
                let m = gbdt::GbdtModel::build(
                    &main.bytes,
                    &main.path,
                    &gbdt,
                    &spec.inputs,
                    &outputs,
                    &opened.device,
                )?;
                (Box::new(m), opened.spec, opened.gpu_name)
            }
            #[cfg(not(feature = "text-embedding"))]
            ModelKind::TextEmbedding => {
                // No encoder here to load at another precision.
                let _ = dtype;
                return Err(ModelError::Runtime(format!(
                    "model {name} version {version}: {}",
                    crate::error::not_built("the text_embedding model kind", "text-embedding")
                )));
            }
            #[cfg(feature = "text-embedding")]
            ModelKind::TextEmbedding => {
                let mut te = spec
                    .text_embedding
                    .clone()
                    .ok_or_else(|| ModelError::Spec {
                        path: dir.join("model.toml"),
                        message: "a text_embedding model needs [text_embedding] with max_seq_len"
                            .into(),
                    })?;
                te.dtype = dtype.unwrap_or(te.dtype);
                let file = |role: &str| -> Result<artifacts::Artifact, ModelError> {
                    let a = spec.artifacts.get(role).ok_or_else(|| ModelError::Spec {
                        path: dir.join("model.toml"),
                        message: format!(
                            "a text_embedding model needs [artifacts.{role}] (config.json, tokenizer.json)"
                        ),
                    })?;
                    artifacts::load(registry, &dir, role, a)
                };
                let (config, tokenizer) = (file("config")?, file("tokenizer")?);
                let opened = device.open()?;
                let files = text_embedding::TextEmbeddingFiles {
                    weights: (&main.bytes, &main.path),
                    config: (&config.bytes, &config.path),
                    tokenizer: (&tokenizer.bytes, &tokenizer.path),
                };
                let m = text_embedding::TextEmbeddingModel::build(
                    &files,
                    &te,
                    &spec.inputs,
                    &outputs,
                    &opened.device,
                )?;
                (Box::new(m), opened.spec, opened.gpu_name)
            }
            ModelKind::Linear | ModelKind::Logistic | ModelKind::Mlp => {
                let opened = device.open()?;
                let dev = opened.device;
                let tensors =
                    candle_core::safetensors::load_buffer(&main.bytes, &dev).map_err(|e| {
                        ModelError::Spec {
                            path: main.path.clone(),
                            message: format!("not a readable safetensors file: {e}"),
                        }
                    })?;
                let layers = spec
                    .effective_layers()
                    .map_err(|message| ModelError::Spec {
                        path: main.path.clone(),
                        message,
                    })?;
                let m = dense::DenseModel::build(
                    &tensors,
                    &layers,
                    spec.inputs.clone(),
                    outputs,
                    &main.path.display().to_string(),
                    &dev,
                )?;
                (Box::new(m), opened.spec, opened.gpu_name)
            }
        };
    Ok(LoadedModel {
        name: name.to_string(),
        version,
        sha256: main.sha256,
        spec,
        device: opened_spec,
        gpu_name,
        preprocess: preprocess.map(Arc::new),
        model,
    })
}
