//! Rows the run left out, and why: the quarantine. Under `on_null = "skip"` and `on_nan = "skip"`,
//! and for every null id, a row is not scored; so that nobody has to guess which rows those were,
//! each one is recorded (its id, the reason, the column, the input object, row group and row) and
//! published beside the result, replaced with the date exactly as the result rows are:
//!
//! | output | quarantine |
//! | --- | --- |
//! | PostgreSQL table `s.t` | table `s.t_quarantine`, the date's rows replaced in the swap transaction |
//! | SQLite table `t` | table `t_quarantine`, replaced in the publish transaction |
//! | Parquet at `url` | `_runs/<run>/quarantine.parquet`, named by the manifest |
//!
//! Rejected rows are held in memory until publish (about 100 bytes each plus the id); the job's
//! `input.max_rejected_fraction` bounds how many a run that publishes can have.

use std::sync::Arc;

/// Suffix of the quarantine table beside a result table (`churn_daily` → `churn_daily_quarantine`).
pub const TABLE_SUFFIX: &str = "_quarantine";

/// Why a row was not scored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum RejectReason {
    /// The id column is null: the row could not be written under any id.
    NullId,
    /// A feature is null and the job's `on_null` is `skip`.
    NullFeature,
    /// A feature is NaN or ±infinity and the job's `on_nan` is `skip`.
    NotFinite,
}

impl RejectReason {
    /// The reason as stored in the quarantine's `reason` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NullId => "null id",
            Self::NullFeature => "null feature",
            Self::NotFinite => "NaN or infinite feature",
        }
    }
}

/// One row that was left out.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RejectedRow {
    /// The row's id as text; `None` when the id itself was null.
    pub id: Option<String>,
    pub reason: RejectReason,
    /// The column that caused it (the id column for a null id).
    pub column: Arc<str>,
    /// The input object's URL.
    pub object: Arc<str>,
    pub row_group: usize,
    /// Row within the row group, from 0.
    pub row: usize,
}

/// The quarantine's columns, in order, with their PostgreSQL and SQLite types. `ds` and `run_id`
/// are named as in result tables.
pub const COLUMNS: [(&str, &str, &str); 8] = [
    ("id", "text", "TEXT"),
    ("ds", "date NOT NULL", "TEXT NOT NULL"),
    ("reason", "text NOT NULL", "TEXT NOT NULL"),
    ("column_name", "text NOT NULL", "TEXT NOT NULL"),
    ("object", "text NOT NULL", "TEXT NOT NULL"),
    ("row_group", "integer NOT NULL", "INTEGER NOT NULL"),
    ("row_number", "bigint NOT NULL", "INTEGER NOT NULL"),
    ("run_id", "uuid NOT NULL", "TEXT NOT NULL"),
];

/// The column names, for INSERT statements.
pub fn column_names() -> Vec<&'static str> {
    COLUMNS.iter().map(|(name, _, _)| *name).collect()
}

/// Rows at most per INSERT statement when a quarantine is written.
pub const ROWS_PER_STATEMENT: usize = 2_000;

/// A row group or row index as the integer the tables store.
pub fn as_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
