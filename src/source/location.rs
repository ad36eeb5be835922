//! The one URL -> ObjectStore function: every input URL (after date templating) becomes a store,
//! a listing prefix and an optional glob. Cloud schemes are added here and nowhere else.

use std::sync::Arc;

use globset::{GlobBuilder, GlobMatcher};
use object_store::ObjectStore;
use object_store::local::LocalFileSystem;
use object_store::path::Path;

use super::SourceError;

/// Where a job's input objects are, resolved from its URL.
#[derive(Debug, Clone)]
pub struct InputLocation {
    pub store: Arc<dyn ObjectStore>,
    /// The URL as the user wrote it (rendered), for messages.
    pub url: String,
    /// What to prepend to an object path to make a URL the user recognises (`file:///`).
    pub display_root: String,
    /// Listing starts here: the part of the path before any glob character.
    pub prefix: Path,
    /// Set when the URL has glob characters; matched against whole object paths.
    pub glob: Option<GlobMatcher>,
}

impl InputLocation {
    /// The URL of an object in this location, for messages and the ledger.
    pub fn object_url(&self, path: &Path) -> String {
        format!("{}{}", self.display_root, path)
    }
}

const GLOB_CHARS: &[char] = &['*', '?', '[', '{'];

/// Resolves a rendered input URL (`file:///abs/...`, or a plain path relative to the working
/// directory) to its store, listing prefix and glob.
pub fn resolve(url: &str) -> Result<InputLocation, SourceError> {
    let unsupported = |reason: String| SourceError::Url {
        url: url.to_string(),
        reason,
    };
    let local_path = match url.split_once("://") {
        Some(("file", rest)) => {
            if !rest.starts_with('/') {
                return Err(unsupported(
                    "file:// URLs must be absolute (file:///path/to/data)".into(),
                ));
            }
            std::path::PathBuf::from(rest)
        }
        Some((scheme, _)) => {
            return Err(unsupported(format!(
                "the `{scheme}://` scheme is not supported; use file:// or a local path"
            )));
        }
        None => {
            let p = std::path::PathBuf::from(url);
            if p.is_absolute() {
                p
            } else {
                std::env::current_dir()
                    .map_err(|e| unsupported(format!("cannot read the working directory: {e}")))?
                    .join(p)
            }
        }
    };
    let text = local_path
        .to_str()
        .ok_or_else(|| unsupported("the path is not valid UTF-8".into()))?
        .trim_start_matches('/')
        .to_string();
    let (prefix_text, glob) = split_glob(&text).map_err(unsupported)?;
    let prefix =
        Path::parse(&prefix_text).map_err(|e| unsupported(format!("not a usable path: {e}")))?;
    Ok(InputLocation {
        store: Arc::new(LocalFileSystem::new()),
        url: url.to_string(),
        display_root: "file:///".to_string(),
        prefix,
        glob,
    })
}

/// Splits `a/b/dt=1/*.parquet` into the literal prefix `a/b/dt=1` and a glob over the whole path.
fn split_glob(path: &str) -> Result<(String, Option<GlobMatcher>), String> {
    let segments: Vec<&str> = path.split('/').collect();
    let Some(first_glob) = segments.iter().position(|s| s.contains(GLOB_CHARS)) else {
        return Ok((path.trim_end_matches('/').to_string(), None));
    };
    let glob = GlobBuilder::new(path)
        .literal_separator(true)
        .build()
        .map_err(|e| format!("bad glob: {e}"))?
        .compile_matcher();
    Ok((segments[..first_glob].join("/"), Some(glob)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_prefix_and_glob() {
        let (p, g) = split_glob("data/dt=2026-01-01/*.parquet").unwrap();
        assert_eq!(p, "data/dt=2026-01-01");
        let g = g.unwrap();
        assert!(g.is_match("data/dt=2026-01-01/part-0.parquet"));
        assert!(!g.is_match("data/dt=2026-01-01/sub/part-0.parquet"));
        assert!(!g.is_match("data/dt=2026-01-01/part-0.csv"));
        let (p, g) = split_glob("data/x.parquet").unwrap();
        assert_eq!(p, "data/x.parquet");
        assert!(g.is_none());
    }

    #[test]
    fn cloud_schemes_are_named_in_the_error() {
        let err = resolve("ftp://host/x").unwrap_err().to_string();
        assert!(err.contains("ftp://"), "{err}");
        assert!(resolve("file://relative/x").is_err());
    }

    #[test]
    fn relative_paths_resolve_against_the_working_directory() {
        let loc = resolve("some/dir/*.parquet").unwrap();
        let cwd = std::env::current_dir().unwrap();
        assert!(
            cwd.join("some/dir")
                .to_str()
                .unwrap()
                .ends_with(loc.prefix.as_ref())
        );
    }
}
