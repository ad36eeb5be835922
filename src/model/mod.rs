//! The model registry and model kinds. A model lives in `models/<name>/<version>/` as a
//! `model.toml` plus a safetensors file; every kind implements [`ScoringModel`], so the pipeline
//! never needs to know which kind it runs.

pub mod dense;
mod dense_cpu;
pub mod device;
pub mod spec;
pub mod threads;

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use thiserror::Error;

use arrow::array::ArrayRef;

use crate::contract::{ExecutionPolicy, InputContract, OutputColumn};
use crate::features::FeatureBatch;

use device::DeviceSpec;
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
    #[error(transparent)]
    Device(#[from] device::DeviceError),
    #[error("model computation failed: {0}")]
    Candle(String),
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
}

/// A model resolved from the registry and ready to score, with what the ledger records about it.
pub struct LoadedModel {
    pub name: String,
    pub version: String,
    pub sha256: String,
    pub spec: ModelSpec,
    /// The device the model runs on (`auto` resolved).
    pub device: DeviceSpec,
    /// The GPU's name when `device` is a GPU.
    pub gpu_name: Option<String>,
    pub model: Box<dyn ScoringModel>,
}

/// The directory of one model version.
pub fn model_dir(models_dir: &Path, name: &str, version: &str) -> PathBuf {
    models_dir.join(name).join(version)
}

/// Reads and checks `model.toml` without loading the weights (for `scorer validate`).
pub fn read_spec(models_dir: &Path, name: &str, version: &str) -> Result<ModelSpec, ModelError> {
    let path = model_dir(models_dir, name, version).join("model.toml");
    let text = std::fs::read_to_string(&path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            ModelError::NotFound {
                name: name.to_string(),
                version: version.to_string(),
                path: path.clone(),
                dir: models_dir.to_path_buf(),
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
    let problem = if spec.inputs.is_empty() {
        Some("`inputs` must name at least one feature".to_string())
    } else if spec.outputs.is_empty() {
        Some("`outputs` must name at least one output".to_string())
    } else {
        spec.output_problems()
            .or_else(|| spec.effective_layers().err())
    };
    match problem {
        Some(message) => Err(ModelError::Spec { path, message }),
        None => Ok(spec),
    }
}

/// Hex sha256 of a file.
pub fn sha256_file(path: &Path) -> Result<String, ModelError> {
    let bytes = std::fs::read(path).map_err(|source| ModelError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(hex::encode(Sha256::digest(&bytes)))
}

/// Loads a model version from the registry onto `device`, checking its pinned sha256.
pub fn load(
    models_dir: &Path,
    name: &str,
    version: &str,
    device: DeviceSpec,
) -> Result<LoadedModel, ModelError> {
    let spec = read_spec(models_dir, name, version)?;
    let weights_path = model_dir(models_dir, name, version).join(&spec.weights);
    let bytes = std::fs::read(&weights_path).map_err(|source| ModelError::Io {
        path: weights_path.clone(),
        source,
    })?;
    let actual = hex::encode(Sha256::digest(&bytes));
    if !actual.eq_ignore_ascii_case(spec.sha256.trim()) {
        return Err(ModelError::Sha256Mismatch {
            path: weights_path,
            expected: spec.sha256.clone(),
            actual,
        });
    }
    let opened = device.open()?;
    let dev = opened.device;
    let tensors =
        candle_core::safetensors::load_buffer(&bytes, &dev).map_err(|e| ModelError::Spec {
            path: weights_path.clone(),
            message: format!("not a readable safetensors file: {e}"),
        })?;
    let layers = spec
        .effective_layers()
        .map_err(|message| ModelError::Spec {
            path: weights_path.clone(),
            message,
        })?;
    let model = dense::DenseModel::build(
        &tensors,
        &layers,
        spec.inputs.clone(),
        spec.outputs.iter().map(|o| o.column()).collect(),
        &weights_path.display().to_string(),
        &dev,
    )?;
    Ok(LoadedModel {
        name: name.to_string(),
        version: version.to_string(),
        sha256: actual,
        spec,
        device: opened.spec,
        gpu_name: opened.gpu_name,
        model: Box::new(model),
    })
}
