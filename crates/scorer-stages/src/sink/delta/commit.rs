//! The Delta side of a run: opening (or creating) the table with the run's schema, and the one
//! commit that replaces a date's files with the run's.

use std::collections::HashMap;

use chrono::NaiveDate;
use deltalake_core::kernel::transaction::CommitBuilder;
use deltalake_core::kernel::{Action, Add};
use deltalake_core::logstore::LogStoreRef;
use deltalake_core::operations::create::CreateBuilder;
use deltalake_core::protocol::{DeltaOperation, SaveMode};
use deltalake_core::{DeltaTable, FilterOp};
use serde_json::json;

use crate::delta::log::{DeltaError, load, log_error, partition_files};
use crate::sink::objects::ManifestFile;
use crate::sink::{DATE_COLUMN, SinkSpec};

/// The table, created partitioned by `ds` with the run's columns when absent; checks an existing
/// table's columns are the run's.
pub async fn open_or_create(
    log_store: &LogStoreRef,
    url: &str,
    spec: &SinkSpec,
) -> Result<DeltaTable, DeltaError> {
    let wanted = super::schema::fields(spec);
    let table = match load(log_store, url).await? {
        Some(table) => table,
        None => {
            let created = CreateBuilder::new()
                .with_log_store(log_store.clone())
                .with_columns(wanted.clone())
                .with_partition_columns([DATE_COLUMN])
                .with_comment(format!("scores written by scorer: {}", spec.produced_by))
                .with_save_mode(SaveMode::Ignore)
                .await;
            match created {
                Ok(table) => table,
                // Another run created it first: read what it made; else the failure is real.
                Err(e) => load(log_store, url)
                    .await?
                    .ok_or_else(|| log_error(url, "cannot create the table")(e))?,
            }
        }
    };
    let log = |context: &str| log_error(url, context);
    let snapshot = table.snapshot().map_err(log("cannot read the table"))?;
    let existing: Vec<_> = snapshot.schema().fields().cloned().collect();
    if let Some(message) = super::schema::mismatch(&existing, &wanted) {
        return Err(DeltaError::Mismatch {
            url: url.to_string(),
            message,
        });
    }
    let partitions = snapshot.metadata().partition_columns();
    if partitions.len() != 1 || partitions[0] != DATE_COLUMN {
        return Err(DeltaError::Mismatch {
            url: url.to_string(),
            message: format!(
                "the table is partitioned by ({}); scorer writes tables partitioned by {DATE_COLUMN}",
                partitions.join(", ")
            ),
        });
    }
    Ok(table)
}

/// Attempts at a commit when commits of other dates keep conflicting.
const CONFLICT_ATTEMPTS: u32 = 10;

/// When a commit that failed for a concurrent one delta-rs judged in conflict
/// ([`DeltaError::is_conflict`]) is tried again, on the latest version: after a short, growing
/// wait, up to [`CONFLICT_ATTEMPTS`] attempts in all.
struct ConflictRetries {
    attempt: u32,
    /// Concurrent runs are separate processes: their ids keep their waits apart.
    jitter: u64,
}

impl ConflictRetries {
    fn new() -> Self {
        Self {
            attempt: 1,
            jitter: u64::from(std::process::id() % 64),
        }
    }

    /// After the attempt failed with `e`: whether to try again (having waited).
    async fn again(&mut self, e: &DeltaError) -> bool {
        if !e.is_conflict() || self.attempt >= CONFLICT_ATTEMPTS {
            return false;
        }
        tracing::info!(attempt = self.attempt, error = %e, "Delta commit conflicted with another date's; retrying on the latest version");
        tokio::time::sleep(std::time::Duration::from_millis(
            50 * u64::from(self.attempt) + self.jitter,
        ))
        .await;
        self.attempt += 1;
        true
    }
}

/// Brings `table` to the latest version: runs of other dates may have committed since.
async fn to_latest(table: &mut DeltaTable, url: &str) -> Result<(), DeltaError> {
    table
        .update_state()
        .await
        .map_err(log_error(url, "cannot read the table's log"))
}

/// [`replace_date`] on the table's latest version, again on a conflict with a concurrent
/// commit (`ConflictRetries`).
pub async fn commit_date(
    table: &mut DeltaTable,
    url: &str,
    spec: &SinkSpec,
    files: &[ManifestFile],
) -> Result<i64, DeltaError> {
    let mut retries = ConflictRetries::new();
    loop {
        to_latest(table, url).await?;
        match replace_date(table, url, spec, files).await {
            Err(e) if retries.again(&e).await => {}
            other => return other,
        }
    }
}

/// Commits `actions` as `operation` on the table's loaded version; returns the new version.
async fn commit_actions(
    table: &DeltaTable,
    url: &str,
    actions: Vec<Action>,
    metadata: HashMap<String, serde_json::Value>,
    operation: DeltaOperation,
    context: &str,
) -> Result<i64, DeltaError> {
    let snapshot = table
        .snapshot()
        .map_err(log_error(url, "cannot read the table"))?;
    let committed = CommitBuilder::default()
        .with_actions(actions)
        .with_app_metadata(metadata)
        .build(Some(snapshot), table.log_store(), operation)
        .await
        .map_err(log_error(url, context))?;
    Ok(i64::try_from(committed.version()).unwrap_or(i64::MAX))
}

/// Commits one transaction that removes every file of `date` and adds `files` (relative to the
/// table's root, under `ds=<date>/`), with the run in the commit info. Returns the new version.
pub async fn replace_date(
    table: &DeltaTable,
    url: &str,
    spec: &SinkSpec,
    files: &[ManifestFile],
) -> Result<i64, DeltaError> {
    let day = spec.date.format("%Y-%m-%d").to_string();
    let mut actions: Vec<Action> = partition_files(table, DATE_COLUMN, FilterOp::Eq, &day)
        .await
        .map_err(log_error(url, "cannot list the date's files"))?
        .iter()
        .map(|file| Action::Remove(file.remove_action(true)))
        .collect();
    let now = chrono::Utc::now().timestamp_millis();
    actions.extend(files.iter().map(|f| {
        Action::Add(Add {
            path: f.path.clone(),
            partition_values: HashMap::from([(DATE_COLUMN.to_string(), Some(day.clone()))]),
            size: i64::try_from(f.size).unwrap_or(i64::MAX),
            modification_time: now,
            data_change: true,
            stats: Some(json!({ "numRecords": f.rows }).to_string()),
            ..Default::default()
        })
    }));
    let metadata = HashMap::from([(
        "scorer".to_string(),
        json!({
            "job": spec.job,
            "run_id": spec.run_id.to_string(),
            "logical_date": day,
            "produced_by": spec.produced_by,
            "rows": files.iter().map(|f| f.rows).sum::<u64>(),
        }),
    )]);
    let operation = DeltaOperation::Write {
        mode: SaveMode::Overwrite,
        partition_by: Some(vec![DATE_COLUMN.to_string()]),
        predicate: Some(format!("{DATE_COLUMN} = '{day}'")),
    };
    commit_actions(
        table,
        url,
        actions,
        metadata,
        operation,
        "cannot commit the date's files",
    )
    .await
}

/// Removes every date before `before` from the table's current version in one commit (a Delta
/// DELETE by partition: the files stay on storage for time travel until a vacuum), retried on
/// a conflict with a concurrent commit (`ConflictRetries`). Returns the dates removed.
pub async fn drop_dates_before(
    log_store: &LogStoreRef,
    url: &str,
    before: NaiveDate,
) -> Result<Vec<NaiveDate>, DeltaError> {
    let Some(mut table) = load(log_store, url).await? else {
        return Ok(Vec::new());
    };
    let mut retries = ConflictRetries::new();
    loop {
        to_latest(&mut table, url).await?;
        match drop_dates_once(&table, url, before).await {
            Err(e) if retries.again(&e).await => {}
            other => return other,
        }
    }
}

/// One attempt of [`drop_dates_before`] on the table's loaded version.
async fn drop_dates_once(
    table: &DeltaTable,
    url: &str,
    before: NaiveDate,
) -> Result<Vec<NaiveDate>, DeltaError> {
    let cutoff = before.format("%Y-%m-%d").to_string();
    let files = partition_files(table, DATE_COLUMN, FilterOp::Lt, &cutoff)
        .await
        .map_err(log_error(url, "cannot list the expired dates' files"))?;
    let mut dates: Vec<NaiveDate> = files
        .iter()
        .filter_map(|f| {
            f.partition_values_map()
                .get(DATE_COLUMN)
                .cloned()
                .flatten()
                .and_then(|d| NaiveDate::parse_from_str(&d, "%Y-%m-%d").ok())
        })
        .collect();
    dates.sort();
    dates.dedup();
    if files.is_empty() {
        return Ok(dates);
    }
    let actions = files
        .iter()
        .map(|f| Action::Remove(f.remove_action(true)))
        .collect();
    let operation = DeltaOperation::Delete {
        predicate: Some(format!("{DATE_COLUMN} < '{cutoff}'")),
    };
    commit_actions(
        table,
        url,
        actions,
        HashMap::new(),
        operation,
        "cannot commit the removal of expired dates",
    )
    .await?;
    Ok(dates)
}

/// Deletes the data files that versions removed longer than `retention` ago (a Delta VACUUM,
/// lite mode: only files the log's `remove` actions name; never a file of the current version,
/// nor one no commit names yet). Returns how many were deleted.
pub async fn vacuum(
    log_store: &LogStoreRef,
    url: &str,
    retention: std::time::Duration,
) -> Result<usize, DeltaError> {
    let log = |context: &str| log_error(url, context);
    let table = load(log_store, url)
        .await?
        .ok_or_else(|| DeltaError::Config {
            url: url.to_string(),
            message: "no table to vacuum".into(),
        })?;
    let retention = chrono::Duration::from_std(retention).map_err(|e| DeltaError::Config {
        url: url.to_string(),
        message: format!("output.delta_vacuum: {e}"),
    })?;
    let (_, metrics) = table
        .vacuum()
        .with_retention_period(retention)
        // The job's own setting is the user's decision, shorter than the table's default
        // (delta.deletedFileRetentionDuration, 7 days) included.
        .with_enforce_retention_duration(false)
        .with_mode(deltalake_core::operations::vacuum::VacuumMode::Lite)
        .await
        .map_err(log("cannot vacuum"))?;
    Ok(metrics.files_deleted.len())
}

/// Whether the table's current version holds a file written by the run `run_id` for `date`:
/// after a commit that reported an error, whether it took effect. `None` when the table cannot
/// be read.
pub async fn holds_run(log_store: &LogStoreRef, date: NaiveDate, run_id: &str) -> Option<bool> {
    let table = load(log_store, "").await.ok()??;
    let day = date.format("%Y-%m-%d").to_string();
    let files = partition_files(&table, DATE_COLUMN, FilterOp::Eq, &day)
        .await
        .ok()?;
    Some(files.iter().any(|f| f.path().contains(run_id)))
}
