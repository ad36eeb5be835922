//! The `model.toml` written for a registered model: its kind and native file from the MLmodel
//! flavor, its inputs from the signature (or `[model.declare]`), its outputs from the declaration
//! (one `score` by default for trees), the file pinned by the sha256 of the bytes fetched, and
//! every other key of `[model.declare]` as written.

use super::ModelSource;
use super::mlmodel::{NativeFlavor, SignatureColumn};
use crate::model::spec::ModelSpec;

/// The file a flavor's model is read from.
pub fn flavor_file(flavor: &NativeFlavor) -> &str {
    match flavor {
        NativeFlavor::Xgboost { file }
        | NativeFlavor::Lightgbm { file }
        | NativeFlavor::Onnx { file } => file,
    }
}

/// The flavor's name in MLmodel.
pub fn flavor_name(flavor: &NativeFlavor) -> &'static str {
    match flavor {
        NativeFlavor::Xgboost { .. } => "xgboost",
        NativeFlavor::Lightgbm { .. } => "lightgbm",
        NativeFlavor::Onnx { .. } => "onnx",
    }
}

/// XGBoost's file by its first bytes: JSON text, UBJSON, or the legacy binary format (refused).
fn xgboost_format(bytes: &[u8]) -> Result<&'static str, String> {
    let start = bytes.iter().position(|b| !b.is_ascii_whitespace());
    match start.map(|i| (bytes[i], bytes.get(i + 1).copied())) {
        Some((b'{', Some(b'"' | b'}' | b' ' | b'\n' | b'\r' | b'\t'))) => Ok("xgboost_json"),
        Some((b'{', _)) => Ok("xgboost_ubj"),
        _ => Err(
            "the XGBoost file is in the legacy binary format, which XGBoost itself deprecated; log the model with model_format=\"ubj\" (MLflow's default) or \"json\"".into(),
        ),
    }
}

/// The model.toml text for a registered model, checked by [`ModelSpec::parse`].
pub fn model_toml(
    flavor: &NativeFlavor,
    bytes: &[u8],
    signature: Option<&[SignatureColumn]>,
    declare: &toml::Table,
    source: &ModelSource,
) -> Result<String, String> {
    let mut t = toml::Table::new();
    let (kind, role) = match flavor {
        NativeFlavor::Onnx { .. } => ("onnx", "graph"),
        _ => ("gbdt", "model"),
    };
    t.insert("kind".into(), kind.into());
    t.insert(
        "description".into(),
        format!(
            "{} version {} from MLflow {} ({} flavor{})",
            source.uri,
            source.version,
            source.tracking,
            source.flavor,
            source
                .run_id
                .as_deref()
                .map(|r| format!(", run {r}"))
                .unwrap_or_default()
        )
        .into(),
    );
    let inputs = match (declare.get("inputs"), signature) {
        (Some(declared), _) => declared.clone(),
        (None, Some(columns)) => {
            let mut names = Vec::new();
            for c in columns {
                let name = c.name.clone().unwrap_or_default();
                // Trees and most graphs read numbers; a string column needs an encoding that the
                // declaration names (or a graph that takes strings).
                if kind == "gbdt" && matches!(c.ty.as_str(), "string" | "binary" | "datetime") {
                    let encoded = declare
                        .get("preprocess")
                        .and_then(|p| p.get("categorical"))
                        .and_then(|c| c.as_array())
                        .is_some_and(|list| {
                            list.iter()
                                .any(|e| e.get("column").and_then(|v| v.as_str()) == Some(&name))
                        });
                    if !encoded {
                        return Err(format!(
                            "the signature's input `{name}` is {}; a tree model reads numbers: encode it with [[model.declare.preprocess.categorical]] column = \"{name}\"",
                            c.ty
                        ));
                    }
                }
                names.push(toml::Value::String(name));
            }
            toml::Value::Array(names)
        }
        (None, None) => {
            return Err(
                "the model has no column signature; log it with one (mlflow.models.infer_signature) or list its inputs in [model.declare] inputs = [...]".into(),
            );
        }
    };
    t.insert("inputs".into(), inputs);
    let outputs = match declare.get("outputs") {
        Some(o) => o.clone(),
        None if kind == "gbdt" => toml::Value::Array(vec!["score".into()]),
        None => {
            return Err(
                "an ONNX model's outputs must be declared: [model.declare] outputs = [...] (and [model.declare.onnx.outputs] when the graph has several)".into(),
            );
        }
    };
    t.insert("outputs".into(), outputs);
    if kind == "gbdt" {
        let format = match flavor {
            NativeFlavor::Lightgbm { .. } => "lightgbm_text",
            _ => xgboost_format(bytes)?,
        };
        let mut gbdt = declare
            .get("gbdt")
            .and_then(|g| g.as_table())
            .cloned()
            .unwrap_or_default();
        gbdt.entry("format").or_insert(format.into());
        t.insert("gbdt".into(), gbdt.into());
    }
    let mut artifact = toml::Table::new();
    artifact.insert("file".into(), flavor_file(flavor).into());
    artifact.insert(
        "sha256".into(),
        crate::model::artifacts::sha256_hex(bytes).into(),
    );
    t.insert(
        "artifacts".into(),
        toml::Table::from_iter([(role.to_string(), artifact.into())]).into(),
    );
    for (key, value) in declare {
        match key.as_str() {
            "inputs" | "outputs" | "gbdt" => {}
            "kind" | "artifacts" => {
                return Err(format!(
                    "[model.declare] cannot set `{key}`: MLflow's MLmodel says it"
                ));
            }
            _ => {
                t.insert(key.clone(), value.clone());
            }
        }
    }
    let text = toml::to_string(&t).map_err(|e| e.to_string())?;
    ModelSpec::parse(&text)
        .map_err(|problems| format!("[model.declare]: {}", problems.join("; ")))?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xgboost_files_are_told_apart_by_their_first_bytes() {
        assert_eq!(
            xgboost_format(b"{\"learner\": {}}").unwrap(),
            "xgboost_json"
        );
        assert_eq!(xgboost_format(b"{L\x00\x00\x00").unwrap(), "xgboost_ubj");
        assert!(xgboost_format(b"\x00\x00binf").is_err());
    }
}
