//! The model registry: `<root>/<name>/<version>/model.toml`, plus a local cache for artifacts that
//! live in object storage. Names and versions are checked before they touch a path, so a job can
//! never make scorer read outside the registry; `latest` resolves to the highest version.

use std::cmp::Ordering;
use std::path::{Path, PathBuf};

use super::ModelError;

/// Where models are found and where fetched artifacts are kept.
#[derive(Debug, Clone)]
pub struct Registry {
    /// `<root>/<name>/<version>/model.toml`.
    pub root: PathBuf,
    /// Artifacts fetched from object storage, by sha256 (`<cache>/<sha256>`).
    pub cache: PathBuf,
}

/// The version a job asks for when it wants the newest one.
pub const LATEST: &str = "latest";

/// Longest model name or version accepted.
const MAX_NAME_LEN: usize = 128;

/// Checks a model name or version: 1–128 of letters, digits, `_`, `-` and `.`, not starting with
/// `.` (so no `..`, no hidden directories) and no path separators.
pub fn check_name(what: &str, value: &str) -> Result<(), String> {
    let ok = !value.is_empty()
        && value.len() <= MAX_NAME_LEN
        && !value.starts_with('.')
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "model {what} `{value}` must be 1-{MAX_NAME_LEN} letters, digits, `_`, `-` or `.`, not starting with `.`"
        ))
    }
}

/// Orders versions the way people number them: `2` < `10`, `1.2` < `1.10`; parts that are not
/// numbers compare as text, and a numeric part sorts before a text one.
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    let parts = |s: &str| -> Vec<String> { s.split(['.', '-', '_']).map(str::to_string).collect() };
    let (pa, pb) = (parts(a), parts(b));
    for (x, y) in pa.iter().zip(&pb) {
        let ord = match (x.parse::<u64>(), y.parse::<u64>()) {
            (Ok(m), Ok(n)) => m.cmp(&n),
            (Ok(_), Err(_)) => Ordering::Less,
            (Err(_), Ok(_)) => Ordering::Greater,
            (Err(_), Err(_)) => x.cmp(y),
        };
        if ord != Ordering::Equal {
            return ord;
        }
    }
    pa.len().cmp(&pb.len()).then_with(|| a.cmp(b))
}

/// One model version found in the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    pub version: String,
}

impl Registry {
    /// A registry at `root` caching fetched artifacts in `cache`.
    pub fn new(root: impl Into<PathBuf>, cache: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            cache: cache.into(),
        }
    }

    /// The default cache for artifacts fetched from object storage: `$SCORER_MODEL_CACHE`, else
    /// `$XDG_CACHE_HOME/scorer/models`, else `$HOME/.cache/scorer/models`, else under the
    /// registry itself (`<root>/.cache`).
    pub fn default_cache(root: &Path) -> PathBuf {
        let env = |k: &str| {
            std::env::var_os(k)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        env("SCORER_MODEL_CACHE")
            .or_else(|| env("XDG_CACHE_HOME").map(|d| d.join("scorer").join("models")))
            .or_else(|| env("HOME").map(|d| d.join(".cache").join("scorer").join("models")))
            .unwrap_or_else(|| root.join(".cache"))
    }

    /// The directory of one model version, after checking name and version.
    pub fn dir(&self, name: &str, version: &str) -> Result<PathBuf, ModelError> {
        check_name("name", name).map_err(ModelError::BadName)?;
        check_name("version", version).map_err(ModelError::BadName)?;
        Ok(self.root.join(name).join(version))
    }

    /// The versions of `name` that have a model.toml, lowest first.
    pub fn versions(&self, name: &str) -> Result<Vec<String>, ModelError> {
        check_name("name", name).map_err(ModelError::BadName)?;
        let dir = self.root.join(name);
        let mut versions: Vec<String> = read_dir_names(&dir)?
            .into_iter()
            .filter(|v| check_name("version", v).is_ok())
            .filter(|v| dir.join(v).join("model.toml").is_file())
            .collect();
        versions.sort_by(|a, b| compare_versions(a, b));
        Ok(versions)
    }

    /// The version a job's `version` means: itself, or the highest one for `latest`.
    pub fn resolve_version(&self, name: &str, version: &str) -> Result<String, ModelError> {
        if version != LATEST {
            check_name("version", version).map_err(ModelError::BadName)?;
            return Ok(version.to_string());
        }
        self.versions(name)?
            .pop()
            .ok_or_else(|| ModelError::NotFound {
                name: name.to_string(),
                version: LATEST.to_string(),
                path: self.root.join(name),
                dir: self.root.clone(),
            })
    }

    /// Every model version in the registry, by name then version.
    pub fn list(&self) -> Result<Vec<Entry>, ModelError> {
        let mut names = read_dir_names(&self.root)?;
        names.retain(|n| check_name("name", n).is_ok() && self.root.join(n).is_dir());
        names.sort();
        let mut entries = Vec::new();
        for name in names {
            for version in self.versions(&name)? {
                entries.push(Entry {
                    name: name.clone(),
                    version,
                });
            }
        }
        Ok(entries)
    }
}

/// Names of the entries of a directory (none when it does not exist).
fn read_dir_names(dir: &Path) -> Result<Vec<String>, ModelError> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(ModelError::Io {
                path: dir.to_path_buf(),
                source,
            });
        }
    };
    let mut names = Vec::new();
    for entry in rd {
        let entry = entry.map_err(|source| ModelError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        if let Ok(name) = entry.file_name().into_string() {
            names.push(name);
        }
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_escape_the_registry_are_refused() {
        for bad in ["..", "../x", "a/b", "/etc", ".hidden", "", "a\\b", "x y"] {
            assert!(check_name("name", bad).is_err(), "{bad}");
        }
        for good in ["churn", "w1_mlp", "v1.2.3", "2026-11-01", "a.b"] {
            assert!(check_name("name", good).is_ok(), "{good}");
        }
        let r = Registry::new("/models", "/cache");
        let e = r.dir("..", "1").unwrap_err().to_string();
        assert!(e.contains("`..`"), "{e}");
        assert!(r.dir("m", "../../etc").is_err());
    }

    #[test]
    fn versions_compare_numerically() {
        let mut v = vec!["10", "2", "1.10", "1.2", "1", "beta"];
        v.sort_by(|a, b| compare_versions(a, b));
        assert_eq!(v, ["1", "1.2", "1.10", "2", "10", "beta"]);
    }

    #[test]
    fn latest_is_the_highest_version_with_a_model_toml() {
        let dir = tempfile::tempdir().unwrap();
        for v in ["1", "2", "10", "11"] {
            std::fs::create_dir_all(dir.path().join("m").join(v)).unwrap();
        }
        for v in ["1", "2", "10"] {
            std::fs::write(dir.path().join("m").join(v).join("model.toml"), "").unwrap();
        }
        let r = Registry::new(dir.path(), dir.path().join(".cache"));
        assert_eq!(r.resolve_version("m", "latest").unwrap(), "10");
        assert_eq!(r.resolve_version("m", "2").unwrap(), "2");
        assert!(r.resolve_version("nope", "latest").is_err());
        let listed: Vec<String> = r.list().unwrap().into_iter().map(|e| e.version).collect();
        assert_eq!(listed, ["1", "2", "10"]);
    }
}
