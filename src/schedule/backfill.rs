//! `scorer backfill JOB --from D1 --to D2`: every logical date of a range, up to `parallel` at
//! once, each a full run with its own lock and ledger row. Dates that already have a succeeded
//! run are skipped unless `force`, so an interrupted backfill resumes by running the same command
//! again. A signal cancels the running dates (ledger `cancelled`, nothing half-published) and
//! starts no more.

use chrono::NaiveDate;
use futures::StreamExt;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::db::Database;
use crate::error::exit;
use crate::failure::Failure;
use crate::job::Job;
use crate::ledger::{self, Ledger};
use crate::model::device::DeviceSpec;
use crate::run::{self, RunContext, RunRequest};

/// Most dates one backfill covers (ten years of days).
pub const MAX_DATES: i64 = 3660;
/// Most dates run at once.
pub const MAX_PARALLEL: usize = 32;

/// What to backfill.
#[derive(Debug, Clone)]
pub struct Options {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub parallel: usize,
    /// Run dates that already succeeded too.
    pub force: bool,
    pub device: Option<DeviceSpec>,
    /// Publish dates whose rows fail the row guards (see `scorer run --allow-row-drop`).
    pub allow_row_drop: bool,
    /// Reproduce each date's last succeeded run: its model version and exactly its input
    /// objects, from the ledger (`scorer rerun --from-ledger`).
    pub from_ledger: bool,
}

/// How one date ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Succeeded {
        run_id: Uuid,
        rows: u64,
        seconds: f64,
    },
    /// A run of it had succeeded before (`--force` runs it again).
    Skipped {
        run_id: Uuid,
    },
    Failed {
        code: u8,
        error: String,
    },
    Cancelled,
    /// Not started: the backfill was stopped first.
    NotStarted,
}

/// The backfill's result, one line per date.
#[derive(Debug, Clone)]
pub struct BackfillSummary {
    pub job: String,
    pub dates: Vec<(NaiveDate, Outcome)>,
}

impl BackfillSummary {
    /// The exit code: 0 when every date succeeded or was skipped; 6 when stopped by a signal;
    /// otherwise the failure that retrying is least likely to fix (configuration, then data,
    /// then an internal error, then transient, then already running).
    pub fn exit_code(&self) -> u8 {
        let outcomes = || self.dates.iter().map(|(_, o)| o);
        if outcomes().any(|o| matches!(o, Outcome::Cancelled | Outcome::NotStarted)) {
            return exit::CANCELLED;
        }
        let codes: Vec<u8> = outcomes()
            .filter_map(|o| match o {
                Outcome::Failed { code, .. } => Some(*code),
                _ => None,
            })
            .collect();
        [
            exit::CONFIG,
            exit::INPUT,
            exit::INTERNAL,
            exit::TRANSIENT,
            exit::ALREADY_RUNNING,
        ]
        .into_iter()
        .find(|c| codes.contains(c))
        .or_else(|| codes.first().copied())
        .unwrap_or(exit::OK)
    }

    /// The summary table printed at the end.
    pub fn lines(&self) -> Vec<String> {
        let count = |f: fn(&Outcome) -> bool| self.dates.iter().filter(|(_, o)| f(o)).count();
        let mut lines = vec![format!(
            "backfill {} {}..{}: {} succeeded, {} skipped (already succeeded), {} failed, {} cancelled or not started",
            self.job,
            self.dates
                .first()
                .map_or(String::new(), |(d, _)| d.to_string()),
            self.dates
                .last()
                .map_or(String::new(), |(d, _)| d.to_string()),
            count(|o| matches!(o, Outcome::Succeeded { .. })),
            count(|o| matches!(o, Outcome::Skipped { .. })),
            count(|o| matches!(o, Outcome::Failed { .. })),
            count(|o| matches!(o, Outcome::Cancelled | Outcome::NotStarted)),
        )];
        lines.push(format!(
            "  {:<10}  {:<11}  {:>12}  {:>8}  run / error",
            "date", "outcome", "rows", "seconds"
        ));
        for (date, o) in &self.dates {
            let (outcome, rows, secs, detail) = match o {
                Outcome::Succeeded {
                    run_id,
                    rows,
                    seconds,
                } => (
                    "succeeded",
                    rows.to_string(),
                    format!("{seconds:.2}"),
                    run_id.to_string(),
                ),
                Outcome::Skipped { run_id } => (
                    "skipped",
                    String::new(),
                    String::new(),
                    format!("{run_id} succeeded before (--force runs it again)"),
                ),
                Outcome::Failed { code, error } => (
                    "failed",
                    String::new(),
                    String::new(),
                    format!("exit {code}: {}", error.lines().next().unwrap_or("")),
                ),
                Outcome::Cancelled => ("cancelled", String::new(), String::new(), String::new()),
                Outcome::NotStarted => ("not started", String::new(), String::new(), String::new()),
            };
            lines.push(format!(
                "  {date}  {outcome:<11}  {rows:>12}  {secs:>8}  {detail}"
            ));
        }
        lines
    }
}

/// The dates of `opts`, checked.
pub fn dates(opts: &Options) -> Result<Vec<NaiveDate>, Failure> {
    if opts.from > opts.to {
        return Err(Failure::Config(format!(
            "--from {} is after --to {}",
            opts.from, opts.to
        )));
    }
    let days = (opts.to - opts.from).num_days() + 1;
    if days > MAX_DATES {
        return Err(Failure::Config(format!(
            "{days} dates from {} to {}; a backfill covers at most {MAX_DATES}",
            opts.from, opts.to
        )));
    }
    if !(1..=MAX_PARALLEL).contains(&opts.parallel) {
        return Err(Failure::Config(format!(
            "--parallel must be between 1 and {MAX_PARALLEL}, got {}",
            opts.parallel
        )));
    }
    Ok(opts
        .from
        .iter_days()
        .take_while(|d| *d <= opts.to)
        .collect())
}

/// Runs the backfill; `cancel` stops it (running dates cancelled, no more started).
pub async fn backfill(
    ctx: &RunContext,
    job: &Job,
    opts: &Options,
    cancel: CancellationToken,
) -> Result<BackfillSummary, Failure> {
    let dates = dates(opts)?;
    let db = Database::open(&ctx.db).await?;
    let ledger = ledger::for_database(&db);
    let outcomes: Vec<(NaiveDate, Outcome)> = futures::stream::iter(dates)
        .map(|date| {
            let cancel = cancel.clone();
            let ledger = ledger.as_ref();
            async move {
                if cancel.is_cancelled() {
                    return (date, Outcome::NotStarted);
                }
                if !opts.force
                    && let Some(run_id) = succeeded(ledger, &job.name, date).await
                {
                    return (date, Outcome::Skipped { run_id });
                }
                let pin = if opts.from_ledger {
                    match ledger.recorded(&job.name, date).await {
                        Ok(Some(pin)) => Some(pin),
                        Ok(None) => {
                            return (
                                date,
                                Outcome::Failed {
                                    code: exit::INPUT,
                                    error:
                                        "the ledger has no succeeded run of this date to reproduce"
                                            .into(),
                                },
                            );
                        }
                        Err(e) => {
                            let f = Failure::from(e);
                            return (
                                date,
                                Outcome::Failed {
                                    code: f.exit_code(),
                                    error: f.to_string(),
                                },
                            );
                        }
                    }
                } else {
                    None
                };
                (date, run_date(ctx, job, date, opts, pin, cancel).await)
            }
        })
        .buffered(opts.parallel)
        .collect()
        .await;
    Ok(BackfillSummary {
        job: job.name.clone(),
        dates: outcomes,
    })
}

/// A succeeded run of the job and date, if there is one (a ledger that cannot be read counts as
/// none: the date is run, which replaces it safely).
async fn succeeded(ledger: &dyn Ledger, job: &str, date: NaiveDate) -> Option<Uuid> {
    match ledger.last_succeeded(job, date).await {
        Ok(last) => last.map(|r| r.run_id),
        Err(e) => {
            tracing::warn!(%date, error = %e, "reading the ledger failed; running the date");
            None
        }
    }
}

async fn run_date(
    ctx: &RunContext,
    job: &Job,
    date: NaiveDate,
    opts: &Options,
    pin: Option<crate::ledger::RecordedRun>,
    cancel: CancellationToken,
) -> Outcome {
    let (device, allow_row_drop) = (opts.device, opts.allow_row_drop);
    let started = std::time::Instant::now();
    let req = RunRequest {
        job: job.clone(),
        date,
        device,
        allow_row_drop,
        pin,
        shard: None,
        attempt_label: String::new(),
    };
    match run::run(ctx, &req, cancel).await {
        Ok(r) => Outcome::Succeeded {
            run_id: r.run_id,
            rows: r.rows_written,
            seconds: started.elapsed().as_secs_f64(),
        },
        Err(e) if e.exit_code() == exit::CANCELLED => Outcome::Cancelled,
        Err(e) => Outcome::Failed {
            code: e.exit_code(),
            error: e.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(outcomes: Vec<Outcome>) -> BackfillSummary {
        let d = NaiveDate::from_ymd_opt(2026, 11, 1).unwrap();
        BackfillSummary {
            job: "j".into(),
            dates: outcomes
                .into_iter()
                .enumerate()
                .map(|(i, o)| (d + chrono::Duration::days(i as i64), o))
                .collect(),
        }
    }

    #[test]
    fn the_exit_code_points_at_what_retrying_cannot_fix() {
        let ok = Outcome::Skipped {
            run_id: Uuid::nil(),
        };
        let failed = |code| Outcome::Failed {
            code,
            error: "x".into(),
        };
        assert_eq!(report(vec![ok.clone()]).exit_code(), exit::OK);
        assert_eq!(
            report(vec![
                ok.clone(),
                failed(exit::TRANSIENT),
                failed(exit::INPUT)
            ])
            .exit_code(),
            exit::INPUT
        );
        assert_eq!(
            report(vec![failed(exit::TRANSIENT)]).exit_code(),
            exit::TRANSIENT
        );
        assert_eq!(
            report(vec![failed(exit::CONFIG), Outcome::NotStarted]).exit_code(),
            exit::CANCELLED
        );
    }

    #[test]
    fn ranges_are_checked() {
        let d = |s: &str| s.parse::<NaiveDate>().unwrap();
        let opts = |from, to, parallel| Options {
            from: d(from),
            to: d(to),
            parallel,
            force: false,
            device: None,
            allow_row_drop: false,
            from_ledger: false,
        };
        assert_eq!(
            dates(&opts("2026-11-01", "2026-11-03", 2)).unwrap().len(),
            3
        );
        assert!(dates(&opts("2026-11-03", "2026-11-01", 2)).is_err());
        assert!(dates(&opts("2026-11-01", "2026-11-03", 0)).is_err());
        assert!(dates(&opts("2000-01-01", "2026-11-03", 1)).is_err());
    }
}
