//! `models/<name>/<version>/model.toml`: what a model file holds and how to wire it, pinned by
//! sha256 so a run scores with exactly the weights it says it used.

use serde::{Deserialize, Serialize};

use crate::contract::{OutputColumn, OutputType};

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
}

/// One declared output of a model: a scalar (`"score"`) or a fixed-length vector
/// (`{ name = "probs", size = 3 }`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum OutputDecl {
    Scalar(String),
    Vector { name: String, size: usize },
}

/// Longest vector output accepted; a guard against a typo, far above real class counts or
/// embedding widths.
pub const MAX_VECTOR_SIZE: usize = 65_536;

impl OutputDecl {
    /// The output's name.
    pub fn name(&self) -> &str {
        match self {
            Self::Scalar(n) | Self::Vector { name: n, .. } => n,
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
    /// Input feature names, in the order the first layer expects them.
    pub inputs: Vec<String>,
    /// The outputs, in the order of the last layer's columns: a name takes one column (an f32
    /// score), `{ name = "probs", size = 3 }` takes `size` columns as one f32 vector.
    pub outputs: Vec<OutputDecl>,
    /// Weights file, relative to the model.toml.
    #[serde(default = "default_weights")]
    pub weights: String,
    /// Hex sha256 of the weights file; checked on every load.
    pub sha256: String,
    /// Dense layers; linear and logistic models default to tensors `weight` and `bias`.
    #[serde(default)]
    pub layers: Vec<LayerSpec>,
    /// Free text: how the model was made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

fn default_weights() -> String {
    "model.safetensors".to_string()
}

impl ModelSpec {
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
        }
    }
}
