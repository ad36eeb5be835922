//! The `MLmodel` file MLflow writes beside every logged model: which flavors it was saved in,
//! each flavor's native file, and the signature (input names and types).

use std::collections::BTreeMap;

use serde::Deserialize;

/// The parts of `MLmodel` scorer reads; everything else is ignored.
#[derive(Debug, Deserialize)]
pub struct MlModel {
    #[serde(default)]
    pub flavors: BTreeMap<String, Flavor>,
    #[serde(default)]
    pub signature: Option<Signature>,
    #[serde(default)]
    pub run_id: Option<String>,
    /// Where the input example is, when the model was logged with one.
    #[serde(default)]
    pub saved_input_example_info: Option<InputExampleInfo>,
}

/// `saved_input_example_info:`: the example's file and how pandas wrote it.
#[derive(Debug, Deserialize)]
pub struct InputExampleInfo {
    pub artifact_path: String,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub pandas_orient: Option<String>,
}

/// One flavor's entry: where its file is, and (for XGBoost) how it was saved.
#[derive(Debug, Default, Deserialize)]
pub struct Flavor {
    /// `model.ubj`, `model.xgb`, `model.lgb` (xgboost, lightgbm).
    #[serde(default)]
    pub data: Option<String>,
    /// `model.onnx` (onnx).
    #[serde(default)]
    pub model_file: Option<String>,
    /// `pickle`, `cloudpickle` or `skops` (sklearn; lightgbm writes it for boosters too).
    #[serde(default)]
    pub serialization_format: Option<String>,
    /// `lightgbm.basic.Booster`, `lightgbm.sklearn.LGBMClassifier`…
    #[serde(default)]
    pub model_class: Option<String>,
}

/// `signature:` as MLflow writes it: JSON text inside the YAML.
#[derive(Debug, Deserialize)]
pub struct Signature {
    #[serde(default)]
    pub inputs: Option<String>,
}

/// One input column of a column-based signature.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SignatureColumn {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(rename = "type")]
    pub ty: String,
}

/// Which of the flavors scorer reads natively, and the file it reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NativeFlavor {
    /// XGBoost's own file (JSON, UBJSON; the legacy binary `.xgb` is refused when read).
    Xgboost { file: String },
    /// LightGBM's text model.
    Lightgbm { file: String },
    /// An ONNX graph (the onnx flavor, also how scikit-learn pipelines are logged for scorer).
    Onnx { file: String },
}

impl MlModel {
    /// Parses the YAML text of an `MLmodel` file.
    pub fn parse(text: &str) -> Result<Self, String> {
        serde_saphyr::from_str(text).map_err(|e| format!("MLmodel is not valid: {e}"))
    }

    /// The flavor scorer scores, preferring ONNX, then XGBoost, then LightGBM; or why none fits.
    pub fn native_flavor(&self) -> Result<NativeFlavor, String> {
        let file = |f: &Flavor, default: &str| f.data.clone().unwrap_or_else(|| default.into());
        if let Some(f) = self.flavors.get("onnx") {
            let name = f
                .data
                .clone()
                .or(f.model_file.clone())
                .unwrap_or_else(|| "model.onnx".into());
            return Ok(NativeFlavor::Onnx { file: name });
        }
        if let Some(f) = self.flavors.get("xgboost") {
            return Ok(NativeFlavor::Xgboost {
                file: file(f, "model.xgb"),
            });
        }
        if let Some(f) = self.flavors.get("lightgbm") {
            // A Booster is saved as LightGBM's text model; the scikit-learn wrappers
            // (LGBMClassifier…) are serialized by Python.
            let booster = f.model_class.as_deref() == Some("lightgbm.basic.Booster")
                || f.data.as_deref().is_some_and(|d| d.ends_with(".lgb"));
            if !booster {
                let how = f.serialization_format.as_deref().unwrap_or("pickle");
                return Err(format!(
                    "the LightGBM model is a scikit-learn wrapper saved with {how}, which cannot be read outside Python; log its booster instead: mlflow.lightgbm.log_model(model.booster_, name=\"model\", ...), which saves LightGBM's own text model"
                ));
            }
            return Ok(NativeFlavor::Lightgbm {
                file: file(f, "model.lgb"),
            });
        }
        let names: Vec<&str> = self.flavors.keys().map(String::as_str).collect();
        if let Some(f) = self.flavors.get("sklearn") {
            let how = f.serialization_format.as_deref().unwrap_or("pickle");
            return Err(format!(
                "the model is logged only with the sklearn flavor (saved with {how}; flavors: {}), which cannot be read outside Python; log it with the ONNX flavor instead: mlflow.onnx.log_model(skl2onnx.to_onnx(model, X[:1], options={{id(clf): {{'zipmap': False}}}}), name=\"model\", registered_model_name=...)",
                names.join(", ")
            ));
        }
        Err(format!(
            "no flavor scorer reads natively (it has: {}; scorer reads onnx, xgboost and lightgbm)",
            names.join(", ")
        ))
    }

    /// The signature's input columns, in order; `None` without a column-based signature.
    pub fn input_columns(&self) -> Result<Option<Vec<SignatureColumn>>, String> {
        let Some(text) = self.signature.as_ref().and_then(|s| s.inputs.as_deref()) else {
            return Ok(None);
        };
        let columns: Vec<SignatureColumn> = serde_json::from_str(text)
            .map_err(|e| format!("the signature's inputs are not valid: {e}"))?;
        if columns.iter().any(|c| c.name.is_none() || c.ty == "tensor") {
            // A tensor signature names no columns.
            return Ok(None);
        }
        Ok(Some(columns))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const XGB: &str = r#"artifact_path: mlflow-artifacts:/0/models/m-1/artifacts
flavors:
  python_function:
    data: model.ubj
    loader_module: mlflow.xgboost
  xgboost:
    code: null
    data: model.ubj
    model_class: xgboost.sklearn.XGBClassifier
    model_format: ubj
run_id: e8e1
signature:
  inputs: '[{"type": "float", "name": "a", "required": true}, {"type": "string", "name":
    "b", "required": true}]'
  outputs: '[{"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 2]}}]'
"#;

    #[test]
    fn an_xgboost_mlmodel_names_its_file_and_columns() {
        let m = MlModel::parse(XGB).unwrap();
        assert_eq!(
            m.native_flavor().unwrap(),
            NativeFlavor::Xgboost {
                file: "model.ubj".into()
            }
        );
        let cols = m.input_columns().unwrap().unwrap();
        assert_eq!(cols.len(), 2);
        assert_eq!(cols[1].name.as_deref(), Some("b"));
        assert_eq!(cols[1].ty, "string");
        assert_eq!(m.run_id.as_deref(), Some("e8e1"));
    }

    #[test]
    fn a_pickled_scikit_learn_model_is_refused_naming_the_onnx_flavor() {
        let m = MlModel::parse(
            "flavors:\n  python_function: {loader_module: mlflow.sklearn}\n  sklearn:\n    pickled_model: model.pkl\n    serialization_format: cloudpickle\n",
        )
        .unwrap();
        let e = m.native_flavor().unwrap_err();
        assert!(
            e.contains("cloudpickle") && e.contains("ONNX flavor"),
            "{e}"
        );
    }
}
