//! `scorer models list` and `scorer models verify`: the registry's versions, and their artifacts
//! checked against their sha256 (and loaded).

use super::{GlobalArgs, print_before_failing, registry};
use crate::cli::{ListArgs, VerifyArgs};
use crate::error::exit;
use crate::failure::{Failure, RunError};

/// Every model version of --models-dir, or with --mlflow every registered model of MLflow.
pub(super) async fn list(g: &GlobalArgs, args: ListArgs) -> Result<Vec<String>, RunError> {
    if args.mlflow {
        return tokio::task::spawn_blocking(crate::model::mlflow::list_registered)
            .await
            .map_err(|e| in_registry(g, Failure::Internal(e.to_string())))?
            .map_err(|e| in_registry(g, e.into()));
    }
    crate::summary::models_list(&registry(g)).map_err(|e| in_registry(g, e.into()))
}

/// `scorer models verify models:/…`: the version the URI resolves to now, fetched into the
/// cache, its files checked and the model loaded.
async fn verify_registered(
    g: &GlobalArgs,
    args: VerifyArgs,
    uri: String,
) -> Result<Vec<String>, RunError> {
    use crate::model::mlflow::{MlflowRequest, RegistryUri, materialize};
    let uri = RegistryUri::parse(&uri).map_err(|e| in_registry(g, Failure::Config(e)))?;
    let request = MlflowRequest {
        uri,
        pinned_version: args.version.clone().filter(|v| v != "latest"),
        declare: Default::default(),
        storage: Default::default(),
    };
    let cache = registry(g).cache;
    let found = tokio::task::spawn_blocking(move || materialize(&request, &cache))
        .await
        .map_err(|e| in_registry(g, Failure::Internal(e.to_string())))?
        .map_err(|e| in_registry(g, e.into()))?;
    let s = &found.source;
    let mut lines = vec![format!(
        "{} -> version {} ({} flavor{}), from {}",
        s.uri,
        s.version,
        s.flavor,
        s.run_id
            .as_deref()
            .map(|r| format!(", run {r}"))
            .unwrap_or_default(),
        s.artifact_uri
    )];
    let (checked, failed) = crate::summary::models_verify(
        &found.registry,
        Some(&found.name),
        Some(&found.version),
        args.device,
        args.texts.as_deref(),
    )
    .map_err(|e| in_registry(g, e.into()))?;
    lines.extend(checked);
    if failed.is_empty()
        && let Some(path) = &found.example
    {
        let registry = found.registry.clone();
        let (name, version, path) = (found.name.clone(), found.version.clone(), path.clone());
        let device = args.device;
        let scored = tokio::task::spawn_blocking(move || {
            score_example(&registry, &name, &version, device, &path)
        })
        .await
        .map_err(|e| in_registry(g, Failure::Internal(e.to_string())))?;
        match scored {
            Ok(line) => lines.push(line),
            Err(e) => {
                let failed = vec![format!("the logged input example: {e}")];
                return Err(verify_failed(g, &lines, failed));
            }
        }
    }
    if failed.is_empty() {
        Ok(lines)
    } else {
        Err(verify_failed(g, &lines, failed))
    }
}

/// Checks every artifact (of NAME, or NAME VERSION) and loads each model; exit 2 on a mismatch.
pub(super) async fn verify(g: &GlobalArgs, args: VerifyArgs) -> Result<Vec<String>, RunError> {
    if let Some(uri) = args.name.clone().filter(|n| n.starts_with("models:/")) {
        return verify_registered(g, args, uri).await;
    }
    let (lines, failed) = crate::summary::models_verify(
        &registry(g),
        args.name.as_deref(),
        args.version.as_deref(),
        args.device,
        args.texts.as_deref(),
    )
    .map_err(|e| in_registry(g, e.into()))?;
    if failed.is_empty() {
        Ok(lines)
    } else {
        Err(verify_failed(g, &lines, failed))
    }
}

/// Scores the input example MLflow logged with a model, as a run would (its preprocessing, its
/// null handling), and says what came out: the first values of each output.
fn score_example(
    registry: &crate::model::registry::Registry,
    name: &str,
    version: &str,
    device: crate::model::device::DeviceSpec,
    path: &std::path::Path,
) -> Result<String, String> {
    use crate::features::{FeatureSpec, NanPolicy, NullPolicy};
    use arrow::util::display::{ArrayFormatter, FormatOptions};
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let example = crate::model::mlflow::example::read(&text)?;
    let rows = example.num_rows();
    let mut columns = example.columns().to_vec();
    let mut fields: Vec<arrow::datatypes::Field> = example
        .schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    let id = "__example_row";
    columns.push(std::sync::Arc::new(
        arrow::array::Int64Array::from_iter_values(0..rows as i64),
    ));
    fields.push(arrow::datatypes::Field::new(
        id,
        arrow::datatypes::DataType::Int64,
        false,
    ));
    let batch = arrow::record_batch::RecordBatch::try_new(
        std::sync::Arc::new(arrow::datatypes::Schema::new(fields)),
        columns,
    )
    .map_err(|e| e.to_string())?;
    let loaded = crate::model::load(registry, name, version, device).map_err(|e| e.to_string())?;
    let contract = loaded.model.inputs();
    // An example is scored strictly: a null or NaN the model does not handle fails it.
    let (on_null, on_nan) =
        crate::features::policies_for_model(contract.missing, (NullPolicy::Fail, NanPolicy::Fail));
    let spec = FeatureSpec {
        id_column: id.into(),
        id_kind: crate::source::IdKind::Int,
        features: contract.features.clone(),
        on_null,
        on_nan,
        preprocess: loaded.preprocess.clone(),
        passed: Default::default(),
        types: contract.types.clone(),
    };
    let source = crate::source::SourceBatch {
        object: std::sync::Arc::from(path.display().to_string()),
        row_group: 0,
        first_row: 0,
        batch,
    };
    let features = spec.build(&source).map_err(|e| e.to_string())?;
    let outputs = loaded.model.score(&features).map_err(|e| e.to_string())?;
    let options = FormatOptions::default();
    let shown: Vec<String> = loaded
        .model
        .outputs()
        .iter()
        .zip(&outputs)
        .map(|(o, a)| {
            let values: Vec<String> = match ArrayFormatter::try_new(a.as_ref(), &options) {
                Ok(f) => (0..a.len().min(5))
                    .map(|i| f.value(i).to_string())
                    .collect(),
                Err(e) => vec![e.to_string()],
            };
            format!(
                "{} = [{}{}]",
                o.name,
                values.join(", "),
                if a.len() > 5 { ", …" } else { "" }
            )
        })
        .collect();
    Ok(format!(
        "input example ({rows} rows, logged with the model): scored; {}",
        shown.join("; ")
    ))
}

/// A `models verify` that found problems: the lines it checked are printed, then every failure
/// at once (exit 2).
fn verify_failed(g: &GlobalArgs, lines: &[String], failed: Vec<String>) -> RunError {
    print_before_failing(lines);
    in_registry(
        g,
        Failure::Many {
            problems: failed,
            code: exit::CONFIG,
        },
    )
}

/// A `scorer models` failure, naming the registry.
fn in_registry(g: &GlobalArgs, failure: Failure) -> RunError {
    RunError::Registry {
        root: g.models_dir.display().to_string(),
        failure,
    }
}
