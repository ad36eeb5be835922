//! Models from the MLflow Model Registry: `model.uri = "models:/churn@champion"` (or
//! `models:/churn/7`). At plan time the alias is resolved once to a version, the version's
//! `MLmodel` and its native file (XGBoost JSON or UBJSON, LightGBM text, ONNX) are fetched from
//! where MLflow keeps them (the tracking server's artifact proxy, or s3/gs/az/file through
//! object_store), and a `model.toml` is written for them into the model cache, each file pinned
//! by the sha256 of the bytes fetched. From there the model loads like any registry model; the
//! run never mixes versions, and the ledger records where it came from ([`ModelSource`]).
//!
//! What MLflow cannot say (output names, a categorical encoding, an `[onnx]` map) comes from
//! `[model.declare]` in the job: the same keys as `model.toml`.

mod client;
pub mod example;
mod mlmodel;
mod spec;
pub mod uri;

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use super::ModelError;
use super::artifacts::{on_own_runtime, sha256_hex, store_in_cache};
use super::registry::Registry;
use crate::source::storage::StorageOptions;
pub use client::Tracking;
pub use client::{Alias, RegisteredModel};
use client::{CallError, ModelVersion};
use mlmodel::MlModel;
pub use uri::{RegistryUri, Selector};

/// What a job asks of the registry.
#[derive(Debug, Clone)]
pub struct MlflowRequest {
    pub uri: RegistryUri,
    /// A version that replaces the URI's alias (`scorer rerun --from-ledger` pins the one the
    /// recorded run used).
    pub pinned_version: Option<String>,
    /// `[model.declare]`: model.toml keys for what MLflow cannot say.
    pub declare: toml::Table,
    /// For artifacts kept in object storage.
    pub storage: StorageOptions,
}

/// Where a model came from, as the ledger records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ModelSource {
    /// The URI as the job wrote it (`models:/churn@champion`).
    pub uri: String,
    /// The tracking server, without credentials.
    pub tracking: String,
    /// The alias, when the URI named one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
    /// The version it resolved to.
    pub version: String,
    /// The MLflow run that logged the model.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// Where the version's files are.
    pub artifact_uri: String,
    /// The MLmodel flavor scored.
    pub flavor: String,
    /// sha256 of every file fetched, by name.
    pub artifacts: BTreeMap<String, String>,
}

/// A registered model made ready to load: a registry holding it, and where it came from.
#[derive(Debug, Clone)]
pub struct Materialized {
    /// The input example MLflow logged with the model, if any (the directory's
    /// [`example::FILE`]).
    pub example: Option<std::path::PathBuf>,
    /// A registry (in the model cache) whose `<name>/<version>/model.toml` describes it.
    pub registry: Registry,
    pub name: String,
    pub version: String,
    pub source: ModelSource,
}

impl From<CallError> for ModelError {
    fn from(e: CallError) -> Self {
        ModelError::Mlflow {
            message: e.message,
            transient: e.transient,
        }
    }
}

/// Resolves `req` against the tracking server in the environment, fetches the version's files
/// and writes its `model.toml` under `cache`. Runs its own small runtime on a helper thread, so
/// it can be called from a blocking thread or before any runtime exists.
pub fn materialize(req: &MlflowRequest, cache: &Path) -> Result<Materialized, ModelError> {
    let tracking = Tracking::from_process_env()?;
    on_own_runtime(materialize_with(&tracking, req, cache))
}

/// `scorer promote` for a model from MLflow: points the URI's alias at `version` (after checking
/// the version exists) and returns the version it pointed at before, if any.
pub fn move_alias(uri: &RegistryUri, version: &str) -> Result<Option<String>, ModelError> {
    let Selector::Alias(alias) = &uri.selector else {
        return Err(ModelError::Mlflow {
            message: format!("{uri} names a version, not an alias: there is no alias to move"),
            transient: false,
        });
    };
    let tracking = Tracking::from_process_env()?;
    let at = |e: CallError| ModelError::Mlflow {
        message: format!("{uri}: {}", e.message),
        transient: e.transient,
    };
    on_own_runtime(async {
        tracking.version(&uri.name, version).await.map_err(at)?;
        let before = match tracking.version_by_alias(&uri.name, alias).await {
            Ok(v) => Some(v.version),
            Err(e) if !e.transient && e.message.contains("not found") => None,
            Err(e) => return Err(at(e)),
        };
        tracking
            .set_alias(&uri.name, alias, version)
            .await
            .map_err(at)?;
        Ok(before)
    })
}

/// `scorer models list --mlflow`: one line per registered model of the tracking server in the
/// environment: its aliases and the versions they point at, and its newest version.
pub fn list_registered() -> Result<Vec<String>, ModelError> {
    let tracking = Tracking::from_process_env()?;
    let models =
        on_own_runtime(async { tracking.registered_models().await.map_err(ModelError::from) })?;
    let mut lines = vec![format!(
        "MLflow {}: {} registered model(s)",
        tracking.address(),
        models.len()
    )];
    for m in models {
        let aliases: Vec<String> = m
            .aliases
            .iter()
            .map(|a| format!("@{} -> {}", a.alias, a.version))
            .collect();
        let newest = m
            .latest_versions
            .iter()
            .map(|v| v.version.as_str())
            .max_by(|a, b| super::registry::compare_versions(a, b))
            .unwrap_or("-");
        lines.push(format!(
            "models:/{}  newest version {newest}{}{}",
            m.name,
            if aliases.is_empty() { "" } else { "; " },
            aliases.join(", ")
        ));
    }
    Ok(lines)
}

/// [`materialize`] against `tracking`.
pub async fn materialize_with(
    tracking: &Tracking,
    req: &MlflowRequest,
    cache: &Path,
) -> Result<Materialized, ModelError> {
    let name = &req.uri.name;
    let at = |e: CallError| ModelError::Mlflow {
        message: format!("{}: {}", req.uri, e.message),
        transient: e.transient,
    };
    let (version, alias): (ModelVersion, Option<String>) =
        match (&req.pinned_version, &req.uri.selector) {
            (Some(v), _) => (tracking.version(name, v).await.map_err(at)?, None),
            (None, Selector::Alias(a)) => (
                tracking.version_by_alias(name, a).await.map_err(at)?,
                Some(a.clone()),
            ),
            (None, Selector::Version(v)) => (tracking.version(name, v).await.map_err(at)?, None),
        };
    if let Some(status) = version.status.as_deref().filter(|s| *s != "READY") {
        return Err(ModelError::Mlflow {
            message: format!(
                "{}: version {} is {status}, not READY",
                req.uri, version.version
            ),
            transient: status == "PENDING_REGISTRATION",
        });
    }
    let location = tracking
        .download_uri(name, &version.version)
        .await
        .map_err(at)?;
    let fetch = |file: String| {
        let location = location.clone();
        async move { fetch_artifact(tracking, &location, &file, &req.storage).await }
    };
    // A version's files do not change: those already in the cache, whole, are not fetched again.
    let root = cache.join("mlflow");
    let dir = root.join(name).join(&version.version);
    let cached = cached_files(&dir, &tracking.address(), &version.version, &location);
    if !cached.is_empty() {
        tracing::info!(uri = %req.uri, version = %version.version, files = cached.len(), "MLflow files found in the model cache");
    }
    let fetch = |file: String| {
        let hit = cached.get(&file).cloned();
        let fetch = &fetch;
        async move {
            match hit {
                Some(bytes) => Ok(bytes),
                None => fetch(file).await,
            }
        }
    };
    let mlmodel_bytes = fetch("MLmodel".into()).await.map_err(at)?;
    let mlmodel_text =
        String::from_utf8(mlmodel_bytes.clone()).map_err(|_| ModelError::Mlflow {
            message: format!("{}: MLmodel is not text", req.uri),
            transient: false,
        })?;
    let refused = |message: String| ModelError::Mlflow {
        message: format!("{} (version {}): {message}", req.uri, version.version),
        transient: false,
    };
    let mlmodel = MlModel::parse(&mlmodel_text).map_err(refused)?;
    let flavor = mlmodel.native_flavor().map_err(refused)?;
    let file = relative_file(spec::flavor_file(&flavor)).map_err(refused)?;
    let bytes = fetch(file.clone()).await.map_err(at)?;
    let signature = mlmodel.input_columns().map_err(refused)?;
    // The input example, where one was logged as a DataFrame: `scorer models verify` scores it.
    let example = match &mlmodel.saved_input_example_info {
        Some(info)
            if info.kind.as_deref().unwrap_or("dataframe") == "dataframe"
                && info.pandas_orient.as_deref().unwrap_or("split") == "split" =>
        {
            let path = relative_file(&info.artifact_path).map_err(refused)?;
            Some(fetch(path).await.map_err(at)?)
        }
        _ => None,
    };
    let mut source = ModelSource {
        uri: req.uri.to_string(),
        tracking: tracking.address(),
        alias,
        version: version.version.clone(),
        run_id: version.run_id.clone().or(mlmodel.run_id.clone()),
        artifact_uri: crate::source::location::redact_url(&location),
        flavor: spec::flavor_name(&flavor).to_string(),
        artifacts: BTreeMap::from([
            ("MLmodel".to_string(), sha256_hex(&mlmodel_bytes)),
            (file.clone(), sha256_hex(&bytes)),
        ]),
    };
    if let Some(e) = &example {
        source
            .artifacts
            .insert(example::FILE.to_string(), sha256_hex(e));
    }
    let text = spec::model_toml(&flavor, &bytes, signature.as_deref(), &req.declare, &source)
        .map_err(refused)?;
    write_atomically(&dir, &file, &bytes)?;
    write_atomically(&dir, "MLmodel", &mlmodel_bytes)?;
    if let Some(e) = &example {
        write_atomically(&dir, example::FILE, e)?;
    }
    write_atomically(&dir, "model.toml", text.as_bytes())?;
    let record =
        serde_json::to_vec_pretty(&source).map_err(|e| ModelError::Runtime(e.to_string()))?;
    write_atomically(&dir, SOURCE_FILE, &record)?;
    Ok(Materialized {
        example: example.is_some().then(|| dir.join(example::FILE)),
        registry: Registry::new(root, cache.to_path_buf()),
        name: name.clone(),
        version: version.version,
        source,
    })
}

/// A file name from MLmodel as a path below the version's directory: relative, without `..`, so
/// a crafted MLmodel cannot make scorer read or write outside it.
fn relative_file(name: &str) -> Result<String, String> {
    use std::path::Component;
    let path = Path::new(name);
    let plain = !name.is_empty() && path.components().all(|c| matches!(c, Component::Normal(_)));
    if plain {
        Ok(name.to_string())
    } else {
        Err(format!(
            "MLmodel names the file `{name}`, which is not a plain path inside the model's directory"
        ))
    }
}

/// Where a cached version's [`ModelSource`] is kept, beside its files.
const SOURCE_FILE: &str = "source.json";

/// The files of a version already in `dir` from an earlier fetch of the same version from the
/// same server and location, each still matching the sha256 recorded then; by name.
fn cached_files(
    dir: &Path,
    tracking: &str,
    version: &str,
    location: &str,
) -> BTreeMap<String, Vec<u8>> {
    let Ok(text) = std::fs::read(dir.join(SOURCE_FILE)) else {
        return BTreeMap::new();
    };
    let Ok(source) = serde_json::from_slice::<ModelSource>(&text) else {
        return BTreeMap::new();
    };
    let same = source.tracking == tracking
        && source.version == version
        && source.artifact_uri == crate::source::location::redact_url(location);
    if !same {
        return BTreeMap::new();
    }
    source
        .artifacts
        .iter()
        .filter_map(|(file, sha)| {
            let bytes = std::fs::read(dir.join(file)).ok()?;
            (&sha256_hex(&bytes) == sha).then(|| (file.clone(), bytes))
        })
        .collect()
}

/// A file of a version: through the tracking server's proxy for `mlflow-artifacts:`, else from
/// the object store or directory the location names.
async fn fetch_artifact(
    tracking: &Tracking,
    location: &str,
    file: &str,
    storage: &StorageOptions,
) -> Result<Vec<u8>, CallError> {
    if location.starts_with("mlflow-artifacts:") {
        return tracking.proxied_artifact(location, file).await;
    }
    let url = format!("{}/{file}", location.trim_end_matches('/'));
    let shown = crate::source::location::redact_url(&url);
    let fail = |message: String, transient: bool| CallError { message, transient };
    let resolved = crate::source::resolve(&url, storage)
        .map_err(|e| fail(format!("artifact {shown}: {e}"), false))?;
    use object_store::ObjectStoreExt;
    let got = resolved.store.get(&resolved.prefix).await.map_err(|e| {
        let transient = !matches!(e, object_store::Error::NotFound { .. });
        fail(format!("artifact {shown}: {e}"), transient)
    })?;
    let bytes = got
        .bytes()
        .await
        .map_err(|e| fail(format!("artifact {shown}: {e}"), true))?;
    Ok(bytes.to_vec())
}

/// Writes `dir/name` (through the cache's temporary file and rename, so a concurrent reader sees
/// the whole file or the previous one), unless it already holds these bytes.
fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), ModelError> {
    let path = dir.join(name);
    if std::fs::read(&path).is_ok_and(|old| old == bytes) {
        return Ok(());
    }
    store_in_cache(path.parent().unwrap_or(dir), &path, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_from_mlmodel_stay_inside_the_model_directory() {
        assert!(relative_file("model.ubj").is_ok());
        assert!(relative_file("data/model.lgb").is_ok());
        for bad in ["../x", "/etc/passwd", "a/../../b", "", "./"] {
            assert!(relative_file(bad).is_err(), "{bad}");
        }
    }
}
