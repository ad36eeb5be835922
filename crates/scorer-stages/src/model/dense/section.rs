//! The dense kinds' part of `model.toml`: `[[layers]]`, the tensor names and activation of each
//! layer. A linear or logistic model is one layer (tensors `weight` and `bias` unless it says
//! otherwise); an MLP lists its layers.

use serde::{Deserialize, Serialize};

use super::DenseModel;
use crate::contract::OutputType;
use crate::model::ModelError;
use crate::model::device::DeviceSpec;
use crate::model::kind::{Built, KindSection, ModelFiles};
use crate::model::spec::{Activation, LayerSpec, ModelSpec};

/// `kind = "linear"`: one dense layer, no activation.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Linear {
    /// At most one layer; tensors `weight` and `bias` when left out.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub layers: Vec<LayerSpec>,
}

/// `kind = "logistic"`: one dense layer followed by a sigmoid.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Logistic {
    /// At most one layer; tensors `weight` and `bias` when left out.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub layers: Vec<LayerSpec>,
}

/// `kind = "mlp"`: dense layers, each with its own activation.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Mlp {
    /// At least one layer, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub layers: Vec<LayerSpec>,
}

/// The one layer of a linear or logistic model, with its fixed activation: the declared layer
/// (which may not ask for another activation), or tensors `weight` and `bias`.
fn single_layer(
    kind: &str,
    layers: &[LayerSpec],
    activation: Activation,
) -> Result<Vec<LayerSpec>, String> {
    match layers {
        [] => Ok(vec![LayerSpec {
            weight: "weight".into(),
            bias: Some("bias".into()),
            activation,
        }]),
        [layer] => {
            if layer.activation != Activation::None && layer.activation != activation {
                return Err(format!(
                    "a {kind} model's layer cannot have activation {:?}",
                    layer.activation
                ));
            }
            Ok(vec![LayerSpec {
                activation,
                ..layer.clone()
            }])
        }
        more => Err(format!(
            "a {kind} model has exactly one layer, found {}",
            more.len()
        )),
    }
}

impl Linear {
    /// The layer to run.
    pub fn effective_layers(&self) -> Result<Vec<LayerSpec>, String> {
        single_layer("linear", &self.layers, Activation::None)
    }
}

impl Logistic {
    /// The layer to run.
    pub fn effective_layers(&self) -> Result<Vec<LayerSpec>, String> {
        single_layer("logistic", &self.layers, Activation::Sigmoid)
    }
}

impl Mlp {
    /// The layers to run.
    pub fn effective_layers(&self) -> Result<Vec<LayerSpec>, String> {
        if self.layers.is_empty() {
            return Err("an mlp model needs at least one [[layers]] entry".into());
        }
        Ok(self.layers.clone())
    }
}

/// What the three dense kinds share: they differ only in the layers they run.
macro_rules! dense_kind {
    ($section:ty, $kind:literal) => {
        impl KindSection for $section {
            fn main_artifact(&self) -> &'static str {
                "weights"
            }

            fn problems(&self, spec: &ModelSpec) -> Vec<String> {
                dense_problems($kind, self.effective_layers(), spec)
            }

            fn build(
                &self,
                files: &ModelFiles<'_>,
                device: DeviceSpec,
            ) -> Result<Built, ModelError> {
                build(files, self.effective_layers(), device)
            }
        }
    };
}

dense_kind!(Linear, "linear");
dense_kind!(Logistic, "logistic");
dense_kind!(Mlp, "mlp");

/// A dense model's layers must make sense, and it computes f32 values only.
fn dense_problems(
    kind: &str,
    layers: Result<Vec<LayerSpec>, String>,
    spec: &ModelSpec,
) -> Vec<String> {
    let mut p: Vec<String> = layers.err().into_iter().collect();
    if let Some(o) = spec
        .outputs
        .iter()
        .find(|o| o.column().ty == OutputType::Int64)
    {
        p.push(format!(
            "output `{}`: a {kind} model computes f32 values; integer outputs come from onnx graphs",
            o.name()
        ));
    }
    p
}

/// Loads the weights onto the device and stacks the layers.
fn build(
    files: &ModelFiles<'_>,
    layers: Result<Vec<LayerSpec>, String>,
    device: DeviceSpec,
) -> Result<Built, ModelError> {
    let main = files.main;
    let opened = device.open()?;
    let tensors =
        candle_core::safetensors::load_buffer(&main.bytes, &opened.device).map_err(|e| {
            ModelError::Spec {
                path: main.path.clone(),
                message: format!("not a readable safetensors file: {e}"),
            }
        })?;
    let layers = layers.map_err(|message| ModelError::Spec {
        path: main.path.clone(),
        message,
    })?;
    let model = DenseModel::build(
        &tensors,
        &layers,
        files.spec.inputs.clone(),
        files.outputs.to_vec(),
        &main.path.display().to_string(),
        &opened.device,
    )?;
    Ok(Built::on(opened, model))
}
