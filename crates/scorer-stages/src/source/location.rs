//! The one URL -> ObjectStore function: every input URL (after date templating) becomes a store,
//! a listing prefix and an optional glob. Every scheme is handled here and nowhere else.

use std::sync::Arc;

use globset::{GlobBuilder, GlobMatcher};
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ClientConfigKey, ObjectStore, ObjectStoreScheme, RetryConfig};

use super::SourceError;
use super::store_metrics::{CountingConnector, StoreCounters};
use crate::source::storage::StorageOptions;

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
    /// Requests and failed requests of the store's HTTP client (zero for local files).
    pub counters: Arc<StoreCounters>,
}

impl InputLocation {
    /// The URL of an object in this location, for messages and the ledger.
    pub fn object_url(&self, path: &Path) -> String {
        format!("{}{}", self.display_root, path)
    }
}

const GLOB_CHARS: &[char] = &['*', '?', '[', '{'];

/// Resolves a rendered input URL to its store, listing prefix and glob: `file:///abs/...` or a
/// plain path (relative to the working directory), `s3://bucket/...` (also `s3a://`),
/// `gs://bucket/...`, `az://container/...` (also `abfs[s]://`, `adl://`, `azure://` and
/// `https://<account>.blob.core.windows.net/<container>/...`). Cloud stores take their
/// credentials and settings from the environment (`AWS_*`, `GOOGLE_*`, `AZURE_*`, as object_store
/// reads them), overridden by the job's `[input.storage]` options.
pub fn resolve(url: &str, storage: &StorageOptions) -> Result<InputLocation, SourceError> {
    resolve_for(Side::Input, url, storage, Arc::default())
}

/// [`resolve`], with the store's requests counted into `counters` (a run's, for its ledger row).
pub fn resolve_counted(
    url: &str,
    storage: &StorageOptions,
    counters: Arc<StoreCounters>,
) -> Result<InputLocation, SourceError> {
    resolve_for(Side::Input, url, storage, counters)
}

/// Resolves a rendered output URL (a directory for Parquet files, no globs) the same way.
pub fn resolve_output(url: &str, storage: &StorageOptions) -> Result<InputLocation, SourceError> {
    let location = resolve_for(Side::Output, url, storage, Arc::default())?;
    if location.glob.is_some() {
        return Err(Side::Output.error(url, "names one directory; globs are for input".into()));
    }
    Ok(location)
}

/// Which end of a job a URL is for: its messages and `[..storage]` section say so.
#[derive(Debug, Clone, Copy)]
enum Side {
    Input,
    Output,
}

impl Side {
    fn name(self) -> &'static str {
        match self {
            Side::Input => "input",
            Side::Output => "output",
        }
    }

    fn section(self) -> &'static str {
        match self {
            Side::Input => "input.storage",
            Side::Output => "output.storage",
        }
    }

    fn error(self, url: &str, reason: String) -> SourceError {
        SourceError::Url {
            side: self.name(),
            url: redact_url(url),
            reason,
        }
    }
}

fn resolve_for(
    side: Side,
    url: &str,
    storage: &StorageOptions,
    counters: Arc<StoreCounters>,
) -> Result<InputLocation, SourceError> {
    let unsupported = |reason: String| side.error(url, reason);
    match url.split_once("://") {
        Some(("file", rest)) => {
            if !rest.starts_with('/') {
                return Err(unsupported(
                    "file:// URLs must be absolute (file:///path/to/data)".into(),
                ));
            }
            local(side, url, std::path::PathBuf::from(rest), storage)
        }
        Some(_) => cloud(side, url, storage, counters),
        None => {
            let p = std::path::PathBuf::from(url);
            let p = if p.is_absolute() {
                p
            } else {
                std::env::current_dir()
                    .map_err(|e| unsupported(format!("cannot read the working directory: {e}")))?
                    .join(p)
            };
            local(side, url, p, storage)
        }
    }
}

fn local(
    side: Side,
    url: &str,
    path: std::path::PathBuf,
    storage: &StorageOptions,
) -> Result<InputLocation, SourceError> {
    let unsupported = |reason: String| side.error(url, reason);
    if *storage != StorageOptions::default() {
        return Err(unsupported(format!(
            "[{}] options apply to s3://, gs:// and az:// URLs only",
            side.section()
        )));
    }
    let text = path
        .to_str()
        .ok_or_else(|| unsupported("the path is not valid UTF-8".into()))?
        .trim_start_matches('/')
        .to_string();
    let (prefix_text, glob) = split_glob(&text).map_err(unsupported)?;
    let prefix =
        Path::parse(&prefix_text).map_err(|e| unsupported(format!("not a usable path: {e}")))?;
    Ok(InputLocation {
        // Deleting a file also removes directories it leaves empty (the Parquet sink's old runs).
        store: Arc::new(LocalFileSystem::new().with_automatic_cleanup(true)),
        url: url.to_string(),
        display_root: "file:///".to_string(),
        prefix,
        glob,
        counters: Arc::default(),
    })
}

fn cloud(
    side: Side,
    url: &str,
    storage: &StorageOptions,
    counters: Arc<StoreCounters>,
) -> Result<InputLocation, SourceError> {
    let shown = redact_url(url);
    let unsupported = |reason: String| side.error(url, reason);
    // The glob part cannot go through URL parsing (`{` would be percent-encoded): parse the
    // literal part, then match the glob against whole object paths.
    let (scheme_len, after_scheme) = url
        .split_once("://")
        .map(|(s, rest)| (s.len() + 3, rest))
        .ok_or_else(|| unsupported("not a URL".into()))?;
    let segments: Vec<&str> = after_scheme.split('/').collect();
    let first_glob = segments
        .iter()
        .skip(1)
        .position(|s| s.contains(GLOB_CHARS))
        .map(|i| i + 1);
    let (literal, glob_tail) = match first_glob {
        Some(i) => (segments[..i].join("/"), Some(segments[i..].join("/"))),
        None => (after_scheme.trim_end_matches('/').to_string(), None),
    };
    let literal_url = format!("{}{literal}", &url[..scheme_len]);
    let parsed =
        url::Url::parse(&literal_url).map_err(|e| unsupported(format!("not a valid URL: {e}")))?;
    let (scheme, path) = ObjectStoreScheme::parse(&parsed).map_err(|_| {
        unsupported(format!(
            "the `{}://` scheme is not supported; use s3://, gs://, az://, abfss://,              https://<account>.blob.core.windows.net/..., file:// or a local path",
            parsed.scheme()
        ))
    })?;
    let prefix_text = path.to_string();
    let store = build_store(side, &scheme, &parsed, storage, &counters).map_err(unsupported)?;
    let glob = match glob_tail {
        Some(tail) => {
            let full = if prefix_text.is_empty() {
                tail
            } else {
                format!("{prefix_text}/{tail}")
            };
            split_glob(&full).map_err(&unsupported)?.1
        }
        None => None,
    };
    let prefix =
        Path::parse(&prefix_text).map_err(|e| unsupported(format!("not a usable path: {e}")))?;
    let root = redact_url(parsed.as_str());
    let root = root
        .strip_suffix(prefix_text.as_str())
        .unwrap_or(&root)
        .trim_end_matches('/');
    Ok(InputLocation {
        store,
        url: shown.clone(),
        display_root: format!("{root}/"),
        prefix,
        glob,
        counters,
    })
}

/// Builds the cloud store for `url`: settings from the environment first, then the job's options.
fn build_store(
    side: Side,
    scheme: &ObjectStoreScheme,
    url: &url::Url,
    storage: &StorageOptions,
    counters: &Arc<StoreCounters>,
) -> Result<Arc<dyn ObjectStore>, String> {
    let section = side.section();
    let connector = || CountingConnector {
        counters: Arc::clone(counters),
    };
    let o = storage.expand(section, |name| std::env::var(name).ok())?;
    // The expanded credentials are secrets from here on, wherever a message might quote them.
    for (_, value) in o.secrets() {
        if let Some(v) = value {
            crate::redact::register_value(v);
        }
    }
    let retry = retry_config(section, &o)?;
    let store: Arc<dyn ObjectStore> = match scheme {
        ObjectStoreScheme::AmazonS3 => {
            let b = AmazonS3Builder::from_env()
                .with_url(url.as_str())
                .with_http_connector(connector());
            let keys = [
                ("endpoint", AmazonS3ConfigKey::Endpoint),
                ("region", AmazonS3ConfigKey::Region),
                ("access_key_id", AmazonS3ConfigKey::AccessKeyId),
                ("secret_access_key", AmazonS3ConfigKey::SecretAccessKey),
                ("session_token", AmazonS3ConfigKey::Token),
            ];
            let b = configure(b, &o, section, "s3", &keys, retry)?;
            Arc::new(b.build().map_err(|e| e.to_string())?)
        }
        ObjectStoreScheme::GoogleCloudStorage => {
            let b = GoogleCloudStorageBuilder::from_env()
                .with_url(url.as_str())
                .with_http_connector(connector());
            let keys = [
                ("endpoint", GoogleConfigKey::BaseUrl),
                ("bearer_token", GoogleConfigKey::BearerToken),
                ("service_account_key", GoogleConfigKey::ServiceAccountKey),
                ("service_account_path", GoogleConfigKey::ServiceAccount),
            ];
            let b = configure(b, &o, section, "gs", &keys, retry)?;
            Arc::new(b.build().map_err(|e| e.to_string())?)
        }
        ObjectStoreScheme::MicrosoftAzure => {
            let b = MicrosoftAzureBuilder::from_env()
                .with_url(url.as_str())
                .with_http_connector(connector());
            let keys = [
                ("endpoint", AzureConfigKey::Endpoint),
                ("account", AzureConfigKey::AccountName),
                ("account_key", AzureConfigKey::AccessKey),
                ("bearer_token", AzureConfigKey::Token),
            ];
            let b = configure(b, &o, section, "az", &keys, retry)?;
            Arc::new(b.build().map_err(|e| e.to_string())?)
        }
        other => {
            return Err(format!(
                "{other:?} URLs are not supported for {}; use s3://, gs://, az:// or a local path",
                side.name()
            ));
        }
    };
    Ok(store)
}

/// The parts of object_store's three builders that [`configure`] uses.
trait StoreBuilder: Sized {
    type Key: Copy;
    fn set(self, key: Self::Key, value: &str) -> Self;
    fn client_key(key: ClientConfigKey) -> Self::Key;
    fn retry(self, retry: RetryConfig) -> Self;
}

macro_rules! store_builder {
    ($builder:ty, $key:ty) => {
        impl StoreBuilder for $builder {
            type Key = $key;
            fn set(self, key: $key, value: &str) -> Self {
                self.with_config(key, value)
            }
            fn client_key(key: ClientConfigKey) -> $key {
                <$key>::Client(key)
            }
            fn retry(self, retry: RetryConfig) -> Self {
                self.with_retry(retry)
            }
        }
    };
}
store_builder!(AmazonS3Builder, AmazonS3ConfigKey);
store_builder!(GoogleCloudStorageBuilder, GoogleConfigKey);
store_builder!(MicrosoftAzureBuilder, AzureConfigKey);

/// Applies the job's options to a store builder: each set option through the store's own key in
/// `keys` (an option the store has no key for is an error naming it), then plain HTTP, timeouts
/// and retries, which every store takes the same way.
fn configure<B: StoreBuilder>(
    mut builder: B,
    o: &StorageOptions,
    section: &str,
    scheme: &str,
    keys: &[(&str, B::Key)],
    retry: Option<RetryConfig>,
) -> Result<B, String> {
    for (name, value) in o.store_settings() {
        let Some(value) = value else { continue };
        let Some((_, key)) = keys.iter().find(|(k, _)| *k == name) else {
            return Err(format!(
                "{section}.{name} does not apply to {scheme}:// URLs"
            ));
        };
        builder = builder.set(*key, value);
    }
    for (key, value) in client_settings(o) {
        builder = builder.set(B::client_key(key), &value);
    }
    Ok(match retry {
        Some(r) => builder.retry(r),
        None => builder,
    })
}

/// Client settings shared by every cloud store: plain HTTP and timeouts.
fn client_settings(o: &StorageOptions) -> Vec<(ClientConfigKey, String)> {
    let mut out = Vec::new();
    if let Some(allow) = o.allow_http {
        out.push((ClientConfigKey::AllowHttp, allow.to_string()));
    }
    if let Some(t) = &o.timeout {
        out.push((ClientConfigKey::Timeout, t.clone()));
    }
    if let Some(t) = &o.connect_timeout {
        out.push((ClientConfigKey::ConnectTimeout, t.clone()));
    }
    out
}

/// object_store's retry policy with the job's overrides; `None` keeps its defaults.
fn retry_config(section: &str, o: &StorageOptions) -> Result<Option<RetryConfig>, String> {
    if o.max_retries.is_none()
        && o.retry_timeout.is_none()
        && o.retry_backoff.is_none()
        && o.retry_max_backoff.is_none()
    {
        return Ok(None);
    }
    let duration = |key: &str, text: &str| {
        humantime::parse_duration(text).map_err(|e| format!("{section}.{key}: `{text}`: {e}"))
    };
    let mut r = RetryConfig::default();
    if let Some(n) = o.max_retries {
        r.max_retries = n;
    }
    if let Some(t) = &o.retry_timeout {
        r.retry_timeout = duration("retry_timeout", t)?;
    }
    if let Some(t) = &o.retry_backoff {
        r.backoff.init_backoff = duration("retry_backoff", t)?;
    }
    if let Some(t) = &o.retry_max_backoff {
        r.backoff.max_backoff = duration("retry_max_backoff", t)?;
    }
    if r.backoff.max_backoff < r.backoff.init_backoff {
        return Err(format!(
            "{section}.retry_max_backoff must not be shorter than retry_backoff"
        ));
    }
    Ok(Some(r))
}

/// The URL without its query string, which can carry a SAS token or a signature.
pub fn redact_url(url: &str) -> String {
    match url.split_once('?') {
        Some((base, _)) => format!("{base}?<redacted>"),
        None => url.to_string(),
    }
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

/// `relative` (slash-separated) under `prefix`.
pub fn under(prefix: &Path, relative: &str) -> Path {
    Path::from_iter(prefix.parts().chain(Path::from(relative).parts()))
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
    fn unsupported_schemes_are_named_in_the_error() {
        let none = StorageOptions::default();
        let err = resolve("ftp://host/x", &none).unwrap_err().to_string();
        assert!(err.contains("ftp://"), "{err}");
        assert!(resolve("file://relative/x", &none).is_err());
    }

    fn cloud(url: &str, storage: &str) -> Result<InputLocation, String> {
        let storage: StorageOptions = toml::from_str(storage).unwrap();
        resolve(url, &storage).map_err(|e| e.to_string())
    }

    #[test]
    fn cloud_urls_split_into_store_prefix_and_glob() {
        let s3 =
            "region = \"us-east-1\"\naccess_key_id = \"${PATH}\"\nsecret_access_key = \"${PATH}\"";
        let loc = cloud("s3://bucket/events/dt=2026-11-24/*.parquet", s3).unwrap();
        assert_eq!(loc.prefix.as_ref(), "events/dt=2026-11-24");
        assert_eq!(loc.display_root, "s3://bucket/");
        let g = loc.glob.unwrap();
        assert!(g.is_match("events/dt=2026-11-24/part-0.parquet"));
        assert!(!g.is_match("events/dt=2026-11-24/x/part-0.parquet"));
        assert_eq!(
            loc.url, "s3://bucket/events/dt=2026-11-24/*.parquet",
            "the URL as written"
        );

        let gs = "service_account_key = \"${GCS_TEST_KEY}\"\nendpoint = \"http://127.0.0.1:1\"";
        // SAFETY: test-only variable, set before the builder reads it and never changed.
        unsafe {
            std::env::set_var(
                "GCS_TEST_KEY",
                r#"{"private_key":"k","private_key_id":"i","client_email":"e","disable_oauth":true}"#,
            )
        };
        let loc = cloud("gs://bkt/a/{x,y}.parquet", gs).unwrap();
        assert_eq!(
            (loc.prefix.as_ref(), loc.display_root.as_str()),
            ("a", "gs://bkt/")
        );
        assert!(loc.glob.unwrap().is_match("a/x.parquet"));

        let az = "account = \"acct\"\naccount_key = \"${AZ_TEST_KEY}\"";
        unsafe { std::env::set_var("AZ_TEST_KEY", "a2V5") };
        let loc = cloud("az://container/p/q.parquet", az).unwrap();
        assert_eq!(loc.prefix.as_ref(), "p/q.parquet");
        assert!(loc.glob.is_none());
        let loc = cloud(
            "https://acct.blob.core.windows.net/container/p/*.parquet",
            az,
        )
        .unwrap();
        assert_eq!(loc.prefix.as_ref(), "p");
        assert_eq!(
            loc.display_root,
            "https://acct.blob.core.windows.net/container/"
        );
    }

    #[test]
    fn options_that_do_not_fit_the_scheme_are_named() {
        let err = cloud("gs://bkt/a.parquet", "region = \"eu\"").unwrap_err();
        assert!(
            err.contains("input.storage.region does not apply to gs:// URLs"),
            "{err}"
        );
        let err = cloud("data/a.parquet", "allow_http = true").unwrap_err();
        assert!(
            err.contains("apply to s3://, gs:// and az:// URLs only"),
            "{err}"
        );
        let err = cloud("s3://b/a", "endpoint = \"${SCORER_SURELY_UNSET}\"").unwrap_err();
        assert!(err.contains("SCORER_SURELY_UNSET is not set"), "{err}");
    }

    #[test]
    fn query_strings_are_redacted() {
        assert_eq!(
            redact_url("https://a.blob.core.windows.net/c/x?sv=1&sig=SECRET"),
            "https://a.blob.core.windows.net/c/x?<redacted>"
        );
        let err = cloud("ftp://h/x?sig=SECRET", "").unwrap_err();
        assert!(!err.contains("SECRET"), "{err}");
    }

    #[test]
    fn relative_paths_resolve_against_the_working_directory() {
        let loc = resolve("some/dir/*.parquet", &StorageOptions::default()).unwrap();
        let cwd = std::env::current_dir().unwrap();
        assert!(
            cwd.join("some/dir")
                .to_str()
                .unwrap()
                .ends_with(loc.prefix.as_ref())
        );
    }
}
