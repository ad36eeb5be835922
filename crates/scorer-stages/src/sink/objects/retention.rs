//! `output.retention_days` for Parquet output: a store has no catalogue of its dates, so the
//! dates the job's runs published (from the ledger) before the window are dropped, each date
//! directory's manifest first (readers then see no date), then its files.

use chrono::NaiveDate;
use object_store::ObjectStoreExt;

use crate::sink::SinkError;
use crate::source::storage::StorageOptions;
use crate::template;

/// Each published date directory before `before`: its manifest goes first (readers then see no
/// date), then its files.
pub(crate) async fn drop_directories(
    url: &str,
    storage: &StorageOptions,
    before: NaiveDate,
    published: &[NaiveDate],
) -> Result<Vec<NaiveDate>, SinkError> {
    let mut dates: Vec<NaiveDate> = published.iter().copied().filter(|d| *d < before).collect();
    dates.sort();
    dates.dedup();
    let mut dropped = Vec::new();
    for date in dates {
        let rendered = template::render(url, date).map_err(|e| SinkError::Objects {
            url: url.to_string(),
            message: e.to_string(),
        })?;
        let location =
            crate::source::resolve_output(&rendered, storage).map_err(|e| SinkError::Objects {
                url: rendered.clone(),
                message: e.to_string(),
            })?;
        let manifest = location.prefix.clone().join(super::MANIFEST);
        match location.store.delete(&manifest).await {
            Ok(()) => {}
            Err(object_store::Error::NotFound { .. }) => continue,
            Err(source) => {
                return Err(SinkError::Store {
                    url: rendered,
                    context: format!("deleting the expired date's {}", super::MANIFEST),
                    source,
                });
            }
        }
        super::delete_dir(&location.store, &location.prefix).await;
        dropped.push(date);
    }
    Ok(dropped)
}
