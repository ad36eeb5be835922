//! A model's artifacts, each pinned by sha256: read from the model's directory, or fetched once
//! from object storage (through the same URL -> store function as job input) into the registry's
//! cache, and checked before any byte is used. A cached file that no longer matches its sha256 is
//! fetched again; a fetched file that does not match is never cached.

use std::path::{Path, PathBuf};

use object_store::ObjectStoreExt;
use sha2::{Digest, Sha256};

use super::ModelError;
use super::registry::Registry;
use super::spec::ArtifactSpec;

/// An artifact's verified bytes.
#[derive(Debug)]
pub struct Artifact {
    pub bytes: Vec<u8>,
    /// Where it was read from (the file, or the cached copy of the URL), for messages.
    pub path: PathBuf,
    /// Hex sha256 of `bytes` (equal to the pinned one).
    pub sha256: String,
}

/// Reads artifact `role` of the model in `model_dir` and checks its sha256.
pub fn load(
    registry: &Registry,
    model_dir: &Path,
    role: &str,
    spec: &ArtifactSpec,
) -> Result<Artifact, ModelError> {
    let expected = spec.sha256.trim().to_ascii_lowercase();
    match (&spec.file, &spec.url) {
        (Some(file), _) => {
            let path = model_dir.join(file);
            let bytes = read(&path)?;
            verified(bytes, path, &expected)
        }
        (None, Some(url)) => load_remote(registry, url, spec, &expected),
        (None, None) => Err(ModelError::Spec {
            path: model_dir.join("model.toml"),
            message: format!("artifacts.{role}: set `file` or `url`"),
        }),
    }
}

fn read(path: &Path) -> Result<Vec<u8>, ModelError> {
    std::fs::read(path).map_err(|source| ModelError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Hex sha256 of some bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn verified(bytes: Vec<u8>, path: PathBuf, expected: &str) -> Result<Artifact, ModelError> {
    let actual = sha256_hex(&bytes);
    if actual != expected {
        return Err(ModelError::Sha256Mismatch {
            path,
            expected: expected.to_string(),
            actual,
        });
    }
    Ok(Artifact {
        bytes,
        path,
        sha256: actual,
    })
}

/// The cached copy of a remote artifact, fetched first when missing or corrupt.
fn load_remote(
    registry: &Registry,
    url: &str,
    spec: &ArtifactSpec,
    expected: &str,
) -> Result<Artifact, ModelError> {
    let cached = registry.cache.join(expected);
    if let Ok(bytes) = std::fs::read(&cached) {
        if sha256_hex(&bytes) == expected {
            return Ok(Artifact {
                bytes,
                path: cached,
                sha256: expected.to_string(),
            });
        }
        tracing::warn!(path = %cached.display(), "cached model artifact is corrupt; fetching it again");
    }
    let bytes = fetch(url, spec)?;
    let artifact = verified(bytes, PathBuf::from(url), expected)?;
    store_in_cache(&registry.cache, &cached, &artifact.bytes)?;
    Ok(Artifact {
        path: cached,
        ..artifact
    })
}

/// Writes a verified artifact into the cache atomically (temporary file, then rename), so a
/// concurrent reader sees the whole file or none.
pub(crate) fn store_in_cache(dir: &Path, cached: &Path, bytes: &[u8]) -> Result<(), ModelError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ModelError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        cached
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        uuid::Uuid::now_v7()
    ));
    std::fs::write(&tmp, bytes).map_err(io(&tmp))?;
    std::fs::rename(&tmp, cached).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io(cached)(e)
    })
}

/// Runs `work` to completion on a small runtime of its own on a helper thread. Model loading is
/// synchronous (it runs on a blocking thread or before a runtime exists), where no runtime may
/// be entered, yet downloads (an artifact's, MLflow's) are async.
pub(crate) fn on_own_runtime<T: Send>(
    work: impl std::future::Future<Output = Result<T, ModelError>> + Send,
) -> Result<T, ModelError> {
    std::thread::scope(|s| {
        s.spawn(|| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| ModelError::Runtime(format!("download runtime: {e}")))?;
            rt.block_on(work)
        })
        .join()
        .map_err(|_| ModelError::Runtime("the download thread failed".into()))?
    })
}

/// Downloads an object, on [`on_own_runtime`].
fn fetch(url: &str, spec: &ArtifactSpec) -> Result<Vec<u8>, ModelError> {
    let fail = |message: String| ModelError::Fetch {
        url: crate::source::location::redact_url(url),
        message,
    };
    let location = crate::source::resolve(url, &spec.storage).map_err(|e| fail(e.to_string()))?;
    if location.glob.is_some() {
        return Err(fail("an artifact URL names one object; no globs".into()));
    }
    on_own_runtime(async {
        let store_err = |source| ModelError::FetchStore {
            url: crate::source::location::redact_url(url),
            source,
        };
        let got = location
            .store
            .get(&location.prefix)
            .await
            .map_err(store_err)?;
        let bytes = got.bytes().await.map_err(store_err)?;
        Ok(bytes.to_vec())
    })
}
