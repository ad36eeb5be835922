//! `models/<name>/<version>/model.toml`: the kind, the inputs in order, the preprocessing, the
//! outputs and every artifact pinned by sha256, so a run scores with exactly the files it says it
//! used.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::contract::{OutputColumn, OutputType};
use crate::preprocess::PreprocessSpec;
use crate::source::storage::StorageOptions;

/// The model kinds scorer can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    /// One dense layer, no activation: `y = xWᵀ + b`.
    Linear,
    /// One dense layer followed by a sigmoid.
    Logistic,
    /// Dense layers, each with its own activation.
    Mlp,
    /// An ONNX graph run by ONNX Runtime (scikit-learn pipelines through skl2onnx, PyTorch
    /// exports through `torch.onnx`).
    Onnx,
    /// Gradient-boosted trees from an XGBoost JSON or LightGBM text model file, scored natively.
    Gbdt,
    /// A BERT-family encoder (safetensors, `config.json`, `tokenizer.json`) over one string
    /// column, mean-pooled (and L2-normalised) into one embedding per row, as
    /// sentence-transformers computes it.
    #[serde(rename = "text_embedding")]
    TextEmbedding,
}

impl ModelKind {
    /// The artifact role holding the model itself: `weights` (safetensors) for the dense kinds,
    /// `graph` (an .onnx file) for ONNX.
    pub fn main_artifact(self) -> &'static str {
        match self {
            Self::Linear | Self::Logistic | Self::Mlp | Self::TextEmbedding => "weights",
            Self::Onnx => "graph",
            Self::Gbdt => "model",
        }
    }
}

/// One file a model needs, pinned by sha256: in the model's directory (`file`) or in an object
/// store (`url`, fetched once into the local model cache and checked before use).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ArtifactSpec {
    /// Path relative to the model.toml; no `..`, not absolute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// `s3://`, `gs://`, `az://` or `file://` URL of the artifact, resolved like a job's input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Hex sha256 of the file's bytes; checked on every load.
    pub sha256: String,
    /// How to reach `url`'s store (as a job's `[input.storage]`).
    #[serde(default, skip_serializing)]
    pub storage: StorageOptions,
}

/// One declared output of a model: a scalar (`"score"`) or a fixed-length vector
/// (`{ name = "probs", size = 3 }`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum OutputDecl {
    Scalar(String),
    Vector {
        name: String,
        size: usize,
    },
    /// `{ name = "label", type = "i64" }`: an integer the model computes itself (a class label).
    Typed {
        name: String,
        #[serde(rename = "type")]
        ty: ScalarType,
    },
}

/// The element type of a typed scalar output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ScalarType {
    F32,
    I64,
}

/// Longest vector output accepted; a guard against a typo, far above real class counts or
/// embedding widths.
pub const MAX_VECTOR_SIZE: usize = 65_536;

impl OutputDecl {
    /// The output's name.
    pub fn name(&self) -> &str {
        match self {
            Self::Scalar(n) | Self::Vector { name: n, .. } | Self::Typed { name: n, .. } => n,
        }
    }

    /// The typed output column it declares.
    pub fn column(&self) -> OutputColumn {
        match self {
            Self::Scalar(name) => OutputColumn {
                name: name.clone(),
                ty: OutputType::Float32,
            },
            Self::Vector { name, size } => OutputColumn {
                name: name.clone(),
                ty: OutputType::Float32Vector(*size),
            },
            Self::Typed { name, ty } => OutputColumn {
                name: name.clone(),
                ty: match ty {
                    ScalarType::F32 => OutputType::Float32,
                    ScalarType::I64 => OutputType::Int64,
                },
            },
        }
    }
}

impl From<&str> for OutputDecl {
    fn from(name: &str) -> Self {
        Self::Scalar(name.to_string())
    }
}

/// Element-wise function after a dense layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    #[default]
    None,
    Relu,
    Sigmoid,
    Tanh,
    Gelu,
}

/// One dense layer: tensor names in the safetensors file.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LayerSpec {
    /// `[out, in]` weight matrix, as PyTorch's `nn.Linear` stores it.
    pub weight: String,
    /// `[out]` bias vector; optional.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bias: Option<String>,
    #[serde(default)]
    pub activation: Activation,
}

/// The content of `model.toml`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    pub kind: ModelKind,
    /// Input feature names, in the order the model expects them (after preprocessing).
    pub inputs: Vec<String>,
    /// The outputs, in the order of the model's value columns: a name takes one column (an f32
    /// score), `{ name = "probs", size = 3 }` takes `size` columns as one f32 vector,
    /// `{ name = "label", type = "i64" }` an integer label.
    pub outputs: Vec<OutputDecl>,
    /// Free text: how the model was made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Dense layers; linear and logistic models default to tensors `weight` and `bias`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub layers: Vec<LayerSpec>,
    /// Every file the model needs, by role (`weights`, `graph`, `model`), each pinned by sha256.
    pub artifacts: BTreeMap<String, ArtifactSpec>,
    /// What happens to each batch's columns before the model sees them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preprocess: Option<PreprocessSpec>,
    /// How an ONNX graph's inputs and outputs map to the declared ones (`onnx` kind only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub onnx: Option<OnnxSpec>,
    /// The tree model's file format and output (`gbdt` kind only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gbdt: Option<crate::model::gbdt::GbdtSpec>,
    /// Sequence length, pooling and normalisation (`text_embedding` kind only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text_embedding: Option<crate::model::text_embedding::TextEmbeddingSpec>,
}

/// `[onnx]`: which features feed which graph input and which declared outputs each graph output
/// fills. Both default to the obvious mapping when the graph has one input or one output.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OnnxSpec {
    /// Graph input name -> the features it takes (a float tensor `[rows, len]`), in order.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub inputs: BTreeMap<String, Vec<String>>,
    /// Graph output name -> the declared outputs that take its columns, in order.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub outputs: BTreeMap<String, Vec<String>>,
}

impl ModelSpec {
    /// The artifact holding the model itself (the weights or the graph).
    pub fn main_artifact(&self) -> Result<&ArtifactSpec, String> {
        let role = self.kind.main_artifact();
        self.artifacts.get(role).ok_or_else(|| {
            format!(
                "a {:?} model needs [artifacts.{role}] with `file` (or `url`) and `sha256`",
                self.kind
            )
        })
    }

    /// Problems with the declared artifacts: each names a file or a URL (not both), a
    /// well-formed sha256, and no path out of the model's directory.
    pub fn artifact_problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if let Err(e) = self.main_artifact() {
            p.push(e);
        }
        for (role, a) in &self.artifacts {
            match (&a.file, &a.url) {
                (Some(_), Some(_)) | (None, None) => p.push(format!(
                    "artifacts.{role}: set exactly one of `file` and `url`"
                )),
                (Some(f), None) => {
                    let path = std::path::Path::new(f);
                    if f.is_empty()
                        || path.is_absolute()
                        || path
                            .components()
                            .any(|c| !matches!(c, std::path::Component::Normal(_)))
                    {
                        p.push(format!(
                            "artifacts.{role}.file `{f}` must be a relative path inside the model's directory (no `..`)"
                        ));
                    }
                }
                (None, Some(_)) => {}
            }
            if a.sha256.len() != 64 || !a.sha256.chars().all(|c| c.is_ascii_hexdigit()) {
                p.push(format!(
                    "artifacts.{role}.sha256 must be 64 hex digits, got `{}`",
                    a.sha256
                ));
            }
            p.extend(a.storage.problems(&format!("artifacts.{role}.storage")));
        }
        p
    }

    /// Problems with the declared outputs: empty or repeated names, vector sizes out of range.
    pub fn output_problems(&self) -> Option<String> {
        let mut seen = std::collections::BTreeSet::new();
        for o in &self.outputs {
            if o.name().is_empty() {
                return Some("an output name is empty".into());
            }
            if !seen.insert(o.name()) {
                return Some(format!("output `{}` is declared twice", o.name()));
            }
            if let OutputDecl::Vector { name, size } = o
                && !(1..=MAX_VECTOR_SIZE).contains(size)
            {
                return Some(format!(
                    "output `{name}`: size must be between 1 and {MAX_VECTOR_SIZE}, got {size}"
                ));
            }
        }
        None
    }

    /// The layers to run, with the defaults for linear and logistic models filled in.
    pub fn effective_layers(&self) -> Result<Vec<LayerSpec>, String> {
        let single = |activation| {
            if self.layers.is_empty() {
                Ok(vec![LayerSpec {
                    weight: "weight".into(),
                    bias: Some("bias".into()),
                    activation,
                }])
            } else if self.layers.len() == 1 {
                let mut l = self.layers[0].clone();
                if l.activation != Activation::None && l.activation != activation {
                    return Err(format!(
                        "a {:?} model's layer cannot have activation {:?}",
                        self.kind, l.activation
                    ));
                }
                l.activation = activation;
                Ok(vec![l])
            } else {
                Err(format!(
                    "a {:?} model has exactly one layer, found {}",
                    self.kind,
                    self.layers.len()
                ))
            }
        };
        match self.kind {
            ModelKind::Linear => single(Activation::None),
            ModelKind::Logistic => single(Activation::Sigmoid),
            ModelKind::Mlp if self.layers.is_empty() => {
                Err("an mlp model needs at least one [[layers]] entry".into())
            }
            ModelKind::Mlp => Ok(self.layers.clone()),
            ModelKind::Onnx => Err("an onnx model has no dense layers".into()),
            ModelKind::Gbdt => Err("a gbdt model has no dense layers".into()),
            ModelKind::TextEmbedding => Err("a text_embedding model has no dense layers".into()),
        }
    }
}
