//! `output.retention_days = N`: after a run of date D publishes, every date before D - N + 1 is
//! dropped from the output, so a table holds the N dates up to the newest one a run wrote (a
//! backfill of an older date drops nothing newer than its own window). What each output drops:
//!
//! | output | dropped |
//! | --- | --- |
//! | PostgreSQL table | the dates' partitions, and their rows of the quarantine table |
//! | SQLite table | the dates' rows, and their rows of the quarantine table |
//! | Parquet at `url` | each date directory a run of the job published: manifest first, then files |
//! | Delta table | the dates' files, removed from the current version in one commit (a vacuum deletes them) |
//!
//! Each output kind drops its own dates (`Output::drop_dates_before`, in the kind's folder).
//! The run records the dates it dropped in the ledger (`retention`); a failure to drop is
//! recorded there too and logged, and does not undo the publication it followed.

use chrono::{Days, NaiveDate};

/// The oldest date kept when date `date` keeps `days` dates.
pub fn first_kept(date: NaiveDate, days: u32) -> NaiveDate {
    date.checked_sub_days(Days::new(u64::from(days.saturating_sub(1))))
        .unwrap_or(NaiveDate::MIN)
}

/// What one run's retention did, as the ledger records it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Retention {
    /// Dates before this one were dropped.
    pub before: NaiveDate,
    /// The dates dropped, oldest first.
    pub dropped: Vec<NaiveDate>,
    /// Why dropping stopped, if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::postgres::retention::bound_date;

    #[test]
    fn keeps_n_dates_up_to_the_run() {
        let d = NaiveDate::from_ymd_opt(2026, 11, 24).unwrap();
        assert_eq!(first_kept(d, 1), d);
        assert_eq!(
            first_kept(d, 7),
            NaiveDate::from_ymd_opt(2026, 11, 18).unwrap()
        );
        assert_eq!(
            bound_date("FOR VALUES IN ('2026-11-01')"),
            NaiveDate::from_ymd_opt(2026, 11, 1)
        );
        assert_eq!(bound_date("DEFAULT"), None);
    }
}
