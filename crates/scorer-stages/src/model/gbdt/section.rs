//! The `gbdt` kind's part of `model.toml`: `[gbdt]`, the model file's format and what the outputs
//! hold.

use serde::{Deserialize, Serialize};

use super::{GbdtFormat, GbdtModel, GbdtOutput, GbdtSpec};
use crate::contract::OutputType;
use crate::model::ModelError;
use crate::model::device::DeviceSpec;
use crate::model::kind::{Built, KindSection, ModelFiles};
use crate::model::spec::ModelSpec;

/// `kind = "gbdt"`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GbdtSection {
    /// `[gbdt]`: `format = "xgboost_json"`, `"xgboost_ubj"` or `"lightgbm_text"`, and `output`.
    pub gbdt: GbdtSpec,
}

impl KindSection for GbdtSection {
    fn main_artifact(&self) -> &'static str {
        "model"
    }

    fn problems(&self, spec: &ModelSpec) -> Vec<String> {
        let labels = spec
            .outputs
            .iter()
            .filter(|o| o.column().ty == OutputType::Int64)
            .count();
        if labels > 1 {
            return vec![
                "a gbdt model has at most one integer output (the predicted class)".into(),
            ];
        }
        Vec::new()
    }

    fn build(&self, files: &ModelFiles<'_>, device: DeviceSpec) -> Result<Built, ModelError> {
        let opened = device.open()?;
        let model = GbdtModel::build_explained(
            &files.main.bytes,
            &files.main.path,
            &self.gbdt,
            &files.spec.inputs,
            files.outputs,
            &files.spec.explained_columns(),
            &opened.device,
        )?;
        Ok(Built::on(opened, model))
    }

    fn describe(&self) -> Option<String> {
        Some(format!(
            "gbdt: {} file, outputs {}",
            match self.gbdt.format {
                GbdtFormat::XgboostJson => "XGBoost JSON",
                GbdtFormat::XgboostUbj => "XGBoost UBJSON",
                GbdtFormat::LightgbmText => "LightGBM text",
            },
            match self.gbdt.output {
                GbdtOutput::Prediction => "the prediction",
                GbdtOutput::Margin => "the raw margin",
            }
        ))
    }
}
