//! The `onnx` kind's part of `model.toml`: `[onnx]`, which features feed which graph input and
//! which declared outputs each graph output fills.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::ModelError;
use crate::model::device::DeviceSpec;
use crate::model::kind::{Built, KindSection, ModelFiles};
use crate::model::spec::ModelSpec;

/// `kind = "onnx"`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OnnxSection {
    /// `[onnx]`: how the graph's inputs and outputs map to the declared ones; the obvious
    /// mapping when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub onnx: Option<OnnxSpec>,
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

impl KindSection for OnnxSection {
    fn main_artifact(&self) -> &'static str {
        "graph"
    }

    fn problems(&self, _spec: &ModelSpec) -> Vec<String> {
        // The graph itself is checked against the declared inputs and outputs when it loads.
        Vec::new()
    }

    #[cfg(feature = "onnx")]
    fn build(&self, files: &ModelFiles<'_>, device: DeviceSpec) -> Result<Built, ModelError> {
        if let DeviceSpec::Cuda(_) = device {
            return Err(ModelError::Runtime(format!(
                "{}: the onnx kind runs on the CPU in this build; set model.device = \"cpu\" or \"auto\" (or pass --device cpu)",
                files.model
            )));
        }
        let sessions = rayon::current_num_threads().max(1);
        let model = super::OnnxModel::build(
            &files.main.bytes,
            &files.main.path,
            &files.spec.inputs,
            files.outputs,
            &self.onnx.clone().unwrap_or_default(),
            sessions,
        )?;
        Ok(Built {
            model: Box::new(model),
            device: DeviceSpec::Cpu,
            gpu_name: None,
        })
    }

    #[cfg(not(feature = "onnx"))]
    fn build(&self, files: &ModelFiles<'_>, _device: DeviceSpec) -> Result<Built, ModelError> {
        Err(ModelError::Runtime(format!(
            "{}: {}",
            files.model,
            crate::error::not_built("the onnx model kind", "onnx")
        )))
    }
}
