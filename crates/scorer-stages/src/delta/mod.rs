//! Delta Lake tables: where one is ([`DeltaTarget`]), its log ([`log`], [`log_store`]) and a
//! date's files as a job's input ([`input`]). The Delta output (`crate::sink::delta`) writes
//! through these.
//!
//! As a job's output (`[output] delta = "s3://lake/scores/churn_daily"`), a Delta table is one
//! table, partitioned by the logical date (`ds`), that Spark, Databricks, Trino, DuckDB, Polars
//! and pandas read as it is.
//!
//! A run writes its Parquet files under `ds=<date>/` (named with its run id, through scorer's own
//! object store, `sink::objects` with [`FileLayout::DatePartition`]), then commits one Delta
//! transaction that removes every file the date had and adds the run's: a partition overwrite,
//! as Spark's `replaceWhere` does. Readers of the table see the old rows or the new, never a mix;
//! a run that fails before the commit leaves the table at its previous version (its files are
//! deleted, and no version names them).
//!
//! The transaction log is delta-rs's (`deltalake-core`): it reads the snapshot (checkpoints and
//! JSON commits), writes the commit with put-if-absent, and on a lost race re-reads and retries
//! if the winner's changes do not overlap. Built without DataFusion, delta-rs takes a commit to
//! have read every file, so another date's rerun (which removes files) reads as a conflict;
//! scorer then lists its date afresh and commits again (`crate::sink::delta::commit`). delta-rs is built on
//! arrow/parquet 59 and object_store 0.13 while scorer's data path is on 60 and 0.14; only log
//! actions (paths, sizes, partition values, statistics as JSON) cross between them, never arrow
//! data. See `log_store` for what each store needs for safe concurrent commits.
//!
//! [`FileLayout::DatePartition`]: crate::sink::objects::FileLayout::DatePartition

#[cfg(feature = "delta")]
pub mod input;
#[cfg(feature = "delta")]
pub mod log;
#[cfg(feature = "delta")]
pub mod log_store;

use url::Url;

use crate::source::InputLocation;
use crate::source::storage::StorageOptions;

/// A job's Delta table: where its data files go (scorer's store) and its URL for delta-rs.
#[derive(Debug, Clone)]
pub struct DeltaTarget {
    /// The table's root in scorer's store; data files are written through it.
    pub location: InputLocation,
    /// The table's URL as delta-rs addresses it (a local path made an absolute `file://` URL).
    pub url: Url,
    /// The job's `[output.storage]` (or `[input.storage]`), for delta-rs's store of the same
    /// location.
    pub storage: StorageOptions,
    /// Which of the two, for messages.
    pub section: &'static str,
    /// Output only: vacuum files removed longer ago than this after each commit.
    pub vacuum: Option<std::time::Duration>,
}

impl DeltaTarget {
    /// Resolves `output.delta` (a URL, or a local path) with the job's `[output.storage]`. No I/O.
    pub fn resolve(text: &str, storage: &StorageOptions) -> Result<Self, String> {
        Self::resolve_with(text, storage, "output", |url| {
            crate::source::resolve_output(url, storage)
        })
    }

    /// Resolves `input.delta` with the job's `[input.storage]`, its requests counted into
    /// `counters`. No I/O.
    pub fn resolve_input(
        text: &str,
        storage: &StorageOptions,
        counters: std::sync::Arc<crate::source::store_metrics::StoreCounters>,
    ) -> Result<Self, String> {
        Self::resolve_with(text, storage, "input", |url| {
            crate::source::resolve_counted(url, storage, counters)
        })
    }

    fn resolve_with(
        text: &str,
        storage: &StorageOptions,
        side: &'static str,
        locate: impl FnOnce(&str) -> Result<InputLocation, crate::source::SourceError>,
    ) -> Result<Self, String> {
        let shown = crate::source::location::redact_url(text);
        let url = match Url::parse(text) {
            Ok(url) if url.scheme().len() > 1 => url,
            // No scheme (or a Windows drive letter): a local path, relative to the working
            // directory.
            _ => {
                let path = std::path::absolute(text)
                    .map_err(|e| format!("{side}.delta {shown}: not a usable path: {e}"))?;
                Url::from_directory_path(&path)
                    .map_err(|()| format!("{side}.delta {shown}: not a usable path"))?
            }
        };
        if !matches!(
            url.scheme(),
            "file" | "s3" | "s3a" | "gs" | "az" | "abfs" | "abfss" | "azure"
        ) {
            return Err(format!(
                "{side}.delta {shown}: {}:// tables are not supported; use s3://, gs://, az:// or a local path",
                url.scheme()
            ));
        }
        let location = locate(url.as_str()).map_err(|e| format!("{side}.delta: {e}"))?;
        Ok(Self {
            location: InputLocation {
                url: shown,
                ..location
            },
            url,
            storage: storage.clone(),
            vacuum: None,
            section: if side == "input" {
                "input.storage"
            } else {
                "output.storage"
            },
        })
    }

    /// The table as the user wrote it (credentials redacted), for messages.
    pub fn shown(&self) -> &str {
        &self.location.url
    }
}
