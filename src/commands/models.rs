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
    if failed.is_empty() {
        return Ok(lines);
    }
    print_before_failing(&lines);
    Err(in_registry(
        g,
        Failure::Many {
            problems: failed,
            code: exit::CONFIG,
        },
    ))
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
        return Ok(lines);
    }
    print_before_failing(&lines);
    Err(in_registry(
        g,
        Failure::Many {
            problems: failed,
            code: exit::CONFIG,
        },
    ))
}

/// A `scorer models` failure, naming the registry.
fn in_registry(g: &GlobalArgs, failure: Failure) -> RunError {
    RunError::Registry {
        root: g.models_dir.display().to_string(),
        failure,
    }
}
