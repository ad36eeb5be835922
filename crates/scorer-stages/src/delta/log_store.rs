//! delta-rs's view of a table's location: an object_store 0.13 store (delta-rs's version) built
//! from the same URL, environment and `[output.storage]` options as scorer's own store, under
//! delta-rs's default log store.
//!
//! The default log store commits version N by writing `_delta_log/N.json` with put-if-absent, so
//! of two writers racing for N exactly one wins and the other re-reads and retries. That is safe
//! on local files (an exclusive create), Azure Blob and Google Cloud Storage (conditional
//! requests), and on Amazon S3, which has honoured `If-None-Match: *` on PUT since 2024 (and so do
//! MinIO and moto). S3-compatible stores without conditional writes need delta-rs's DynamoDB
//! lock, which scorer does not build; scorer also holds its own lock per (job, date), so two runs
//! of one job never race for one date, and runs of different dates touch different files and
//! never conflict.

use std::sync::Arc;

use deltalake_core::logstore::{LogStoreRef, StorageConfig, default_logstore};
use object_store_delta::ObjectStore;
use object_store_delta::aws::AmazonS3Builder;
use object_store_delta::azure::MicrosoftAzureBuilder;
use object_store_delta::gcp::GoogleCloudStorageBuilder;
use object_store_delta::local::LocalFileSystem;
use object_store_delta::path::Path;
use object_store_delta::prefix::PrefixStore;

use super::DeltaTarget;

/// The option names of `[output.storage]` as object_store 0.13 spells them, by scheme: most are
/// the same; `None` for an option that store does not take.
fn key_for(scheme: &str, option: &str) -> Option<&'static str> {
    match (scheme, option) {
        ("s3", "endpoint") => Some("endpoint"),
        ("s3", "region") => Some("region"),
        ("s3", "access_key_id") => Some("access_key_id"),
        ("s3", "secret_access_key") => Some("secret_access_key"),
        ("s3", "session_token") => Some("session_token"),
        ("az", "endpoint") => Some("endpoint"),
        ("az", "account") => Some("account_name"),
        ("az", "account_key") => Some("account_key"),
        ("az", "bearer_token") => Some("bearer_token"),
        ("gs", "endpoint") => Some("base_url"),
        ("gs", "service_account_key") => Some("service_account_key"),
        ("gs", "service_account_path") => Some("service_account"),
        _ => None,
    }
}

/// delta-rs's log store for `target`. No I/O.
pub fn open(target: &DeltaTarget) -> Result<LogStoreRef, String> {
    let url = &target.url;
    let scheme = match url.scheme() {
        "file" => "file",
        "s3" | "s3a" => "s3",
        "gs" => "gs",
        _ => "az",
    };
    let root: Arc<dyn ObjectStore> = if scheme == "file" {
        Arc::new(LocalFileSystem::new())
    } else {
        let o = target
            .storage
            .expand(target.section, |name| std::env::var(name).ok())?;
        let mut settings: Vec<(&'static str, String)> = Vec::new();
        for (name, value) in o.store_settings() {
            let Some(value) = value else { continue };
            let key = key_for(scheme, name).ok_or_else(|| {
                format!(
                    "{}.{name} does not apply to {scheme}:// Delta tables",
                    target.section
                )
            })?;
            settings.push((key, value.to_string()));
        }
        if let Some(allow) = o.allow_http {
            settings.push(("allow_http", allow.to_string()));
        }
        if let Some(t) = &o.timeout {
            settings.push(("timeout", t.clone()));
        }
        if let Some(t) = &o.connect_timeout {
            settings.push(("connect_timeout", t.clone()));
        }
        build_cloud(target.section, scheme, url, &settings)?
    };
    let prefix = Path::from_url_path(url.path().trim_matches('/'))
        .map_err(|e| format!("{} is not a usable table path: {e}", target.shown()))?;
    let prefixed: Arc<dyn ObjectStore> = Arc::new(PrefixStore::new(Arc::clone(&root), prefix));
    Ok(default_logstore(
        prefixed,
        root,
        url,
        &StorageConfig::default(),
    ))
}

/// A cloud store (`s3`, `gs` or `az`) for `url`: settings from the environment, then `settings`.
fn build_cloud(
    section: &str,
    scheme: &str,
    url: &url::Url,
    settings: &[(&'static str, String)],
) -> Result<Arc<dyn ObjectStore>, String> {
    let bad = |key: &str, e: object_store_delta::Error| format!("{section}.{key}: {e}");
    Ok(match scheme {
        "s3" => {
            let mut b = AmazonS3Builder::from_env().with_url(url.as_str());
            for (key, value) in settings {
                b = b.with_config(key.parse().map_err(|e| bad(key, e))?, value);
            }
            Arc::new(b.build().map_err(|e| e.to_string())?)
        }
        "gs" => {
            let mut b = GoogleCloudStorageBuilder::from_env().with_url(url.as_str());
            for (key, value) in settings {
                b = b.with_config(key.parse().map_err(|e| bad(key, e))?, value);
            }
            Arc::new(b.build().map_err(|e| e.to_string())?)
        }
        _ => {
            let mut b = MicrosoftAzureBuilder::from_env().with_url(url.as_str());
            for (key, value) in settings {
                b = b.with_config(key.parse().map_err(|e| bad(key, e))?, value);
            }
            Arc::new(b.build().map_err(|e| e.to_string())?)
        }
    })
}
