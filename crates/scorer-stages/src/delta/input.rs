//! A Delta table as a job's input (`[input] delta = "…"`): the files of the run's date, from the
//! table's current snapshot (or `input.delta_version`), found through the Delta log rather than
//! a listing, so files a later commit removed, or a writer left uncommitted, are never read.
//! The date selects one partition of `input.delta_date_column` (default `ds`); a table not
//! partitioned by it is refused, since reading every file for every date is never what a daily
//! job means. The files are then planned and read as any Parquet input (footers, projection,
//! bounded memory), and the version read goes into the ledger with each object. A table with
//! column mapping (`name` or `id`, Databricks' default for new tables) is read by its columns'
//! physical names, which the source stage renames back to the logical ones the job file uses.
//! A file with a deletion vector (rows a DELETE, UPDATE or MERGE removed without rewriting it)
//! carries the deleted rows' indexes, which the source stage leaves out as it reads.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::NaiveDate;
use deltalake_core::DeltaTable;
use object_store::ObjectMeta;

use super::DeltaTarget;
use super::log::DeltaError;

/// What a run reads of a Delta table for one date.
#[derive(Debug)]
pub struct DateFiles {
    /// The date's data files, as objects of the target's store.
    pub objects: Vec<ObjectMeta>,
    /// For each object, the rows its deletion vector deletes (indexes in the file, ascending):
    /// rows a later commit deleted without rewriting the file, never to be scored.
    pub deleted: Vec<Option<Arc<Vec<u64>>>>,
    /// The table version read.
    pub version: i64,
    /// With column mapping (`name` or `id` mode): each column's physical name in the data
    /// files, by its logical name (the one job files use).
    pub physical_names: Option<BTreeMap<String, String>>,
}

/// The table's files for `date` at `version` (the latest when `None`).
pub async fn files_for_date(
    target: &DeltaTarget,
    version: Option<i64>,
    date_column: &str,
    date: NaiveDate,
) -> Result<DateFiles, DeltaError> {
    let url = target.shown().to_string();
    let config = |message: String| DeltaError::Config {
        url: url.clone(),
        message,
    };
    let log = |context: &str| super::log::log_error(&url, context);
    let log_store = super::log_store::open(target).map_err(&config)?;
    let mut table = DeltaTable::new(log_store);
    match version {
        Some(v) => {
            let v = u64::try_from(v).map_err(|_| config(format!("no version {v}")))?;
            table
                .load_version(v)
                .await
                .map_err(log(&format!("cannot read version {v} of the table")))?
        }
        None => table
            .load()
            .await
            .map_err(log("cannot read the table's log"))?,
    }
    let snapshot = table.snapshot().map_err(log("cannot read the table"))?;
    let read_version = i64::try_from(snapshot.version()).unwrap_or(i64::MAX);
    let partitions = snapshot.metadata().partition_columns().to_vec();
    if !partitions.iter().any(|p| p == date_column) {
        return Err(config(format!(
            "the table is partitioned by ({}), not by `{date_column}`: set \
             input.delta_date_column to its date partition column",
            partitions.join(", ")
        )));
    }
    let mapping = snapshot
        .metadata()
        .configuration()
        .get("delta.columnMapping.mode")
        .cloned()
        .unwrap_or_default();
    let physical_names = match mapping.as_str() {
        "" | "none" => None,
        // Both modes name each column's physical name in its schema metadata; writers use it
        // as the Parquet column name in `id` mode too (the field id is beside it).
        "name" | "id" => Some(physical_names(snapshot.schema().fields()).map_err(&config)?),
        other => {
            return Err(config(format!(
                "the table's column mapping mode `{other}` is not one of none, name, id"
            )));
        }
    };
    let day = date.format("%Y-%m-%d").to_string();
    let files =
        super::log::partition_files(&table, date_column, deltalake_core::FilterOp::Eq, &day)
            .await
            .map_err(log("cannot list the date's files"))?;
    let root = table.table_url().clone();
    // delta-rs's kernel engine, made only for a table whose files have deletion vectors.
    let mut engine = None;
    let mut metas = Vec::with_capacity(files.len());
    let mut deleted = Vec::with_capacity(files.len());
    for file in &files {
        deleted.push(match file.deletion_vector_descriptor() {
            None => None,
            Some(dv) => {
                let what = format!("cannot read the deletion vector of {}", file.path());
                let engine = engine.get_or_insert_with(|| table.log_store().engine(None));
                let rows = deleted_rows(dv, Arc::clone(engine), root.clone())
                    .await
                    .map_err(log(&what))?;
                Some(Arc::new(rows))
            }
        });
        metas.push(ObjectMeta {
            location: crate::source::location::under(&target.location.prefix, &file.path()),
            last_modified: file
                .modification_datetime()
                .map_err(log("cannot read a file's modification time"))?,
            size: u64::try_from(file.size()).unwrap_or(0),
            e_tag: None,
            version: None,
        });
    }
    Ok(DateFiles {
        objects: metas,
        deleted,
        version: read_version,
        physical_names,
    })
}

/// The rows (indexes in the file, ascending) a file's deletion vector deletes, read by delta-rs's
/// kernel (inline, or from the table's `deletion_vector_*.bin` file), checked against the
/// number the log records.
async fn deleted_rows(
    dv: deltalake_core::kernel::DeletionVectorDescriptor,
    engine: Arc<dyn delta_kernel::Engine>,
    root: url::Url,
) -> Result<Vec<u64>, deltalake_core::DeltaTableError> {
    use deltalake_core::DeltaTableError;
    let cardinality = dv.cardinality;
    let descriptor: delta_kernel::actions::deletion_vector::DeletionVectorDescriptor =
        dv.try_into().map_err(DeltaTableError::from)?;
    // The kernel's storage calls block on their own executor: off the async workers.
    let rows = tokio::task::spawn_blocking(move || {
        descriptor
            .read(engine.storage_handler(), &root)
            .map(|bitmap| bitmap.iter().collect::<Vec<u64>>())
    })
    .await
    .map_err(|e| DeltaTableError::Generic(e.to_string()))?
    .map_err(DeltaTableError::from)?;
    if i64::try_from(rows.len()).ok() != Some(cardinality) {
        return Err(DeltaTableError::Generic(format!(
            "it deletes {} rows where the log says {cardinality}",
            rows.len()
        )));
    }
    Ok(rows)
}

/// Logical name -> physical name of every top-level column of a column-mapped table.
fn physical_names<'a>(
    fields: impl Iterator<Item = &'a deltalake_core::kernel::StructField>,
) -> Result<BTreeMap<String, String>, String> {
    let key = "delta.columnMapping.physicalName";
    fields
        .map(|f| match f.metadata().get(key) {
            Some(deltalake_core::kernel::MetadataValue::String(physical)) => {
                Ok((f.name().to_string(), physical.clone()))
            }
            _ => Err(format!(
                "the table uses column mapping, and its column `{}` has no `{key}`",
                f.name()
            )),
        })
        .collect()
}
