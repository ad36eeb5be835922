//! A Delta table as a job's input (`[input] delta = "…"`): the files of the run's date, from the
//! table's current snapshot (or `input.delta_version`), found through the Delta log rather than
//! a listing, so files a later commit removed, or a writer left uncommitted, are never read.
//! The date selects one partition of `input.delta_date_column` (default `ds`); a table not
//! partitioned by it is refused, since reading every file for every date is never what a daily
//! job means. The files are then planned and read as any Parquet input (footers, projection,
//! bounded memory), and the version read goes into the ledger with each object.

use chrono::NaiveDate;
use deltalake_core::DeltaTable;
use object_store::ObjectMeta;

use super::DeltaTarget;
use super::log::DeltaError;

/// The table's files for `date` at `version` (the latest when `None`), as objects of the
/// target's store, with the version read.
pub async fn files_for_date(
    target: &DeltaTarget,
    version: Option<i64>,
    date_column: &str,
    date: NaiveDate,
) -> Result<(Vec<ObjectMeta>, i64), DeltaError> {
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
    if !matches!(mapping.as_str(), "" | "none") {
        return Err(config(format!(
            "the table uses column mapping (`delta.columnMapping.mode = {mapping}`), whose \
             physical column names scorer does not read yet"
        )));
    }
    let day = date.format("%Y-%m-%d").to_string();
    let files =
        super::log::partition_files(&table, date_column, deltalake_core::FilterOp::Eq, &day)
            .await
            .map_err(log("cannot list the date's files"))?;
    let mut metas = Vec::with_capacity(files.len());
    for file in &files {
        if file.deletion_vector_descriptor().is_some() {
            return Err(config(format!(
                "{}: has a deletion vector (rows deleted without rewriting the file), which \
                 scorer does not apply yet; reading it would score deleted rows",
                file.path()
            )));
        }
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
    Ok((metas, read_version))
}
