//! `scorer status`: what the scheduler sees in the jobs directory — each scheduled job's next
//! firing and the date it will score, its last run and how it ended, firings being run or
//! waiting for a retry — plus the files it skips and why.

use std::path::PathBuf;

use chrono::{DateTime, NaiveDate, Utc};

use crate::db::Database;
use crate::failure::Failure;
use crate::ledger::{self, RecentQuery, RunSummary};
use crate::schedule::claims::{self, OpenClaim};
use crate::schedule::jobs::JobDir;

/// One scheduled job.
#[derive(Debug, Clone)]
pub struct JobStatus {
    pub name: String,
    pub schedule: String,
    pub timezone: String,
    pub next_fire: Option<DateTime<Utc>>,
    /// The date the next firing scores.
    pub next_date: Option<NaiveDate>,
    pub last: Option<RunSummary>,
    pub open: Vec<OpenClaim>,
}

/// Everything `scorer status` prints.
#[derive(Debug, Clone, Default)]
pub struct SchedulerView {
    pub jobs: Vec<JobStatus>,
    /// Valid jobs without a schedule, with their last run.
    pub unscheduled: Vec<(String, Option<RunSummary>)>,
    pub invalid: Vec<(PathBuf, String)>,
}

/// Reads the jobs directory and the database.
pub async fn status(jobs_dir: &std::path::Path, db: &Database) -> Result<SchedulerView, Failure> {
    let mut dir = JobDir::new(jobs_dir);
    dir.rescan().map_err(|e| {
        Failure::Config(format!(
            "jobs directory {}: cannot read it: {e}",
            jobs_dir.display()
        ))
    })?;
    let ledger = ledger::for_database(db);
    let open = claims::for_database(db).open().await?;
    let now = Utc::now();
    let last = |job: String| {
        let ledger = ledger.as_ref();
        async move {
            let q = RecentQuery {
                job: &job,
                date: None,
                status: None,
                limit: 1,
            };
            ledger.recent(&q).await.map(|mut r| r.pop())
        }
    };
    let mut report = SchedulerView::default();
    let scan = dir.current();
    for (name, sj) in &scan.scheduled {
        let next_fire = sj.calendar.next_after(now);
        report.jobs.push(JobStatus {
            name: name.clone(),
            schedule: sj.job.schedule.clone().unwrap_or_default(),
            timezone: sj.calendar.zone().to_string(),
            next_fire,
            next_date: next_fire.map(|f| sj.calendar.logical_date(f)),
            last: last(name.clone()).await?,
            open: open
                .iter()
                .filter(|c| &c.firing.job == name)
                .cloned()
                .collect(),
        });
    }
    for name in &scan.unscheduled {
        report
            .unscheduled
            .push((name.clone(), last(name.clone()).await?));
    }
    report.invalid = scan.invalid.clone();
    Ok(report)
}

fn last_run(r: Option<&RunSummary>) -> String {
    match r {
        None => "never run".into(),
        Some(r) => {
            let when = r.finished_at.unwrap_or(r.started_at);
            let mut s = format!(
                "{} {} at {}",
                r.logical_date,
                r.status,
                when.format("%Y-%m-%d %H:%M:%SZ")
            );
            if r.status == "succeeded" {
                s.push_str(&format!(", {} rows", r.rows_written));
            } else if !r.error.is_empty() {
                s.push_str(&format!(": {}", r.error.lines().next().unwrap_or("")));
            }
            s
        }
    }
}

impl SchedulerView {
    /// The table `scorer status` prints.
    pub fn lines(&self) -> Vec<String> {
        let mut lines = vec![format!(
            "{:<24}  {:<20}  {:<16}  {:<22}  {:<10}  last run",
            "job", "schedule", "timezone", "next firing (UTC)", "scores"
        )];
        for j in &self.jobs {
            lines.push(format!(
                "{:<24}  {:<20}  {:<16}  {:<22}  {:<10}  {}",
                j.name,
                j.schedule,
                j.timezone,
                j.next_fire.map_or("never".into(), |t| t
                    .format("%Y-%m-%d %H:%M:%S")
                    .to_string()),
                j.next_date.map_or(String::new(), |d| d.to_string()),
                last_run(j.last.as_ref()),
            ));
            for c in &j.open {
                let what = if c.holder.is_empty() {
                    format!(
                        "waiting for attempt {} in {:.0} s: {}",
                        c.attempts + 1,
                        c.lease_left.max(0.0),
                        c.note
                    )
                } else if c.lease_left < 0.0 {
                    format!(
                        "held by {} whose lease ran out (to be taken over)",
                        c.holder
                    )
                } else {
                    format!("running on {} (attempt {})", c.holder, c.attempts)
                };
                lines.push(format!(
                    "  firing {} for {}: {what}",
                    c.firing.fire_at.format("%Y-%m-%d %H:%M:%SZ"),
                    c.firing.logical_date
                ));
            }
        }
        if self.jobs.is_empty() {
            lines.push("(no job file has a `schedule`)".into());
        }
        for (name, last) in &self.unscheduled {
            lines.push(format!(
                "{name:<24}  {:<20}  {:<16}  {:<22}  {:<10}  {}",
                "(no schedule)",
                "",
                "",
                "",
                last_run(last.as_ref())
            ));
        }
        for (path, why) in &self.invalid {
            lines.push(format!("invalid, skipped: {}: {why}", path.display()));
        }
        lines
    }
}
