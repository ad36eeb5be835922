//! `scorer run JOB --date D`: one run, what cron, Airflow and Kubernetes call.

use chrono::NaiveDate;

use super::{GlobalArgs, context, load_job};
use crate::cli::{DateArg, RunArgs};
use crate::failure::{Failure, RunError};
use crate::job::Job;
use crate::progress::ProgressMode;
use crate::run::{self, RunContext, RunRequest, signals};
use crate::shard::ShardSpec;

/// Runs one date of a job (or one shard of it) and returns its summary lines.
pub(super) async fn run(g: &GlobalArgs, args: RunArgs) -> Result<Vec<String>, RunError> {
    let job = load_job(g, &args.job)?;
    let name = job.name.clone();
    let (ctx, request) = request(g, job, &args).map_err(|f| f.in_job(&name))?;
    let cancel = signals::cancel_on_signals(args.grace);
    let report = run::run(&ctx, &request, cancel).await?;
    Ok(crate::summary::run_lines(&report))
}

/// The run the arguments ask for: its shard, its date, and how it shows progress.
fn request(g: &GlobalArgs, job: Job, args: &RunArgs) -> Result<(RunContext, RunRequest), Failure> {
    let completion_index = std::env::var("JOB_COMPLETION_INDEX").ok();
    let shard = ShardSpec::choose(args.shard, args.shards, completion_index.as_deref())
        .map_err(|e| Failure::Config(format!("--shard: {e}")))?;
    let date = logical_date(
        args.date,
        job.schedule.as_deref(),
        job.timezone.as_deref(),
        chrono::Utc::now(),
    )
    .map_err(Failure::Config)?;
    let mut ctx = context(g, run::DEFAULT_STALE_AFTER)?;
    ctx.progress = if args.quiet {
        ProgressMode::Off
    } else {
        ProgressMode::Auto(args.progress_every)
    };
    let request = RunRequest {
        job,
        date,
        device: args.device,
        allow_row_drop: args.allow_row_drop,
        pin: None,
        shard,
        attempt_label: args.attempt.clone().unwrap_or_default(),
    };
    Ok((ctx, request))
}

/// The logical date `--date` names: the given day, or the one the latest firing of `schedule`
/// (in `zone`) at or before `now` scores.
pub fn logical_date(
    date: DateArg,
    schedule: Option<&str>,
    zone: Option<&str>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<NaiveDate, String> {
    match date {
        DateArg::Day(d) => Ok(d),
        DateArg::Scheduled => {
            let expr =
                schedule.ok_or("--date scheduled needs the job's `schedule`; this job has none")?;
            let calendar = crate::calendar::Calendar::new(expr, zone)?;
            let fire = calendar
                .prev_before(now + chrono::Duration::seconds(1))
                .ok_or_else(|| format!("schedule `{expr}` has no firing before now"))?;
            Ok(calendar.logical_date(fire))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn scheduled_names_the_date_the_latest_firing_scores() {
        let now = chrono::Utc.with_ymd_and_hms(2026, 11, 25, 2, 0, 7).unwrap();
        let d: DateArg = "scheduled".parse().unwrap();
        // A daily 02:00 firing on the 25th scores the 24th, as `scorer schedule` would.
        assert_eq!(
            logical_date(d, Some("0 2 * * *"), None, now)
                .unwrap()
                .to_string(),
            "2026-11-24"
        );
        // Just before it, the latest firing is the 24th's: it scores the 23rd.
        let before = now - chrono::Duration::seconds(10);
        assert_eq!(
            logical_date(d, Some("0 2 * * *"), None, before)
                .unwrap()
                .to_string(),
            "2026-11-23"
        );
        assert!(
            logical_date(d, None, None, now)
                .unwrap_err()
                .contains("schedule")
        );
        let day: DateArg = "2026-01-02".parse().unwrap();
        assert_eq!(
            logical_date(day, None, None, now).unwrap().to_string(),
            "2026-01-02"
        );
        assert!(
            "tomorrow"
                .parse::<DateArg>()
                .unwrap_err()
                .contains("scheduled")
        );
    }
}
