//! `scorer schedule`, `scorer backfill` and `scorer status` through the binary: two schedulers on
//! one PostgreSQL, a scheduler killed during catch-up, job files changed while it runs, and a
//! backfill that resumes.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use chrono::{NaiveDate, Utc};
use sqlx::postgres::PgPool;
use sqlx::sqlite::SqlitePool;

use crate::common::{
    ModelOpts, Project, Spawned, assert_ok, fresh_pg, running_runs, signal, sqlite_count, text,
};

/// A project with the test model and `rows` of input under data/<set>/ for each date.
fn project_with(inputs: &[(&str, Vec<NaiveDate>)], rows: u64) -> Project {
    let p = Project::new();
    p.add_model(&ModelOpts::mlp(8));
    for (set, dates) in inputs {
        for d in dates {
            p.add_input(set, &d.to_string(), rows, 8, None);
        }
    }
    std::fs::create_dir_all(p.path().join("jobs")).unwrap();
    p
}

/// A job file with a schedule; `extra` lines go at the top (catchup, start_date, timezone).
fn scheduled_job(p: &Project, name: &str, set: &str, schedule: &str, extra: &str) -> PathBuf {
    let path = p.path().join("jobs").join(format!("{name}.toml"));
    std::fs::write(
        &path,
        format!(
            "name = \"{name}\"\nschedule = \"{schedule}\"\n{extra}\n[input]\n\
             url = \"data/{set}/dt={{{{ ds }}}}/*.parquet\"\nid_column = \"id\"\n\
             [model]\nname = \"m\"\nversion = \"1\"\nbatch_size = 8192\n\
             [output]\ntable = \"{name}_scores\"\n"
        ),
    )
    .unwrap();
    path
}

fn days_before(today: NaiveDate, n: std::ops::RangeInclusive<i64>) -> Vec<NaiveDate> {
    n.map(|i| today - chrono::Duration::days(i)).collect()
}

/// Starts `scorer schedule` with a short lease and reload; its log goes to `<log>.log`.
fn spawn_scheduler(p: &Project, db: Option<&str>, log: &str) -> Spawned {
    spawn_scheduler_with_grace(p, db, log, "20s")
}

fn spawn_scheduler_with_grace(p: &Project, db: Option<&str>, log: &str, grace: &str) -> Spawned {
    let file = std::fs::File::create(p.path().join(format!("{log}.log"))).unwrap();
    p.command(
        &[
            "schedule",
            "--lease",
            "2s",
            "--reload-every",
            "200ms",
            "--retry-delay",
            "1s",
            "--grace",
            grace,
        ],
        db,
    )
    .stdout(Stdio::null())
    .stderr(file)
    .spawn()
    .map(Spawned::new)
    .unwrap()
}

/// As `wait_for`, but a timeout shows the schedulers' logs.
async fn wait_logged<F, Fut>(p: &Project, logs: &[&str], what: &str, secs: u64, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !check().await {
        if Instant::now() > deadline {
            let shown: Vec<String> = logs.iter().map(|l| log_of(p, l)).collect();
            panic!(
                "timed out after {secs} s waiting for {what}\n{}",
                shown.join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn log_of(p: &Project, log: &str) -> String {
    std::fs::read_to_string(p.path().join(format!("{log}.log"))).unwrap_or_default()
}

/// Stops a scheduler as Kubernetes does and checks it exits cleanly.
async fn stop(p: &Project, child: Spawned, log: &str) {
    let mut child = child.take();
    signal(child.id(), "TERM");
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert_eq!(status.code(), Some(0), "{}", log_of(p, log));
}

/// (logical date, status, started_at, finished_at) of a job's runs, oldest first; none before
/// the first scheduler created the ledger.
async fn runs(pool: &PgPool, job: &str) -> Vec<(String, String, f64, Option<f64>)> {
    sqlx::query_as(
        "SELECT logical_date::text, status, extract(epoch FROM started_at)::float8, \
         extract(epoch FROM finished_at)::float8 FROM scorer.runs WHERE job = $1 \
         ORDER BY started_at",
    )
    .bind(job)
    .fetch_all(pool)
    .await
    .unwrap_or_default()
}

/// (fire_at epoch, state, outcome, run_id) of a job's claims, by fire time; none before the
/// first scheduler created the table.
async fn claims(pool: &PgPool, job: &str) -> Vec<(f64, String, String, Option<String>)> {
    sqlx::query_as(
        "SELECT extract(epoch FROM fire_at)::float8, state, coalesce(outcome, ''), run_id::text \
         FROM scorer.claims WHERE job = $1 ORDER BY fire_at",
    )
    .bind(job)
    .fetch_all(pool)
    .await
    .unwrap_or_default()
}

async fn done_claims(pool: &PgPool, job: &str) -> usize {
    claims(pool, job)
        .await
        .iter()
        .filter(|c| c.1 == "done")
        .count()
}

/// No two runs of the job at once: each starts after the one before finished.
fn assert_one_at_a_time(job: &str, runs: &[(String, String, f64, Option<f64>)]) {
    for pair in runs.windows(2) {
        let finished = pair[0].3.expect("a finished run");
        assert!(
            pair[1].2 >= finished,
            "{job}: a run started at {} while the one before ran until {finished}: {runs:?}",
            pair[1].2
        );
    }
}

#[tokio::test]
async fn two_schedulers_on_one_postgres_run_every_firing_exactly_once() {
    let (url, pool) = fresh_pg("ha").await;
    let today = Utc::now().date_naive();
    // `daily` catches up seven midnights (scoring the seven days before today); `tick` fires
    // every two seconds and scores today.
    let daily_dates = days_before(today, 1..=7);
    let p = project_with(
        &[("daily", daily_dates.clone()), ("tick", vec![today])],
        20_000,
    );
    scheduled_job(
        &p,
        "daily",
        "daily",
        "0 0 * * *",
        &format!(
            "start_date = \"{}\"\nmax_catchup = 20",
            today - chrono::Duration::days(6)
        ),
    );
    scheduled_job(&p, "tick", "tick", "*/2 * * * * *", "");
    let started = Instant::now();
    let a = spawn_scheduler(&p, Some(&url), "a");
    let b = spawn_scheduler(&p, Some(&url), "b");
    wait_logged(&p, &["a", "b"], "the daily catch-up", 90, || async {
        done_claims(&pool, "daily").await == 7
    })
    .await;
    if let Some(left) = Duration::from_secs(14).checked_sub(started.elapsed()) {
        tokio::time::sleep(left).await;
    }
    stop(&p, a, "a").await;
    stop(&p, b, "b").await;
    let logs = format!("{}\n{}", log_of(&p, "a"), log_of(&p, "b"));

    // Every catch-up date succeeded exactly once, and nothing else ran.
    let daily = runs(&pool, "daily").await;
    let mut dates: Vec<String> = daily.iter().map(|r| r.0.clone()).collect();
    dates.sort();
    let want: Vec<String> = daily_dates.iter().rev().map(|d| d.to_string()).collect();
    assert_eq!(dates, want, "{daily:?}\n{logs}");
    assert!(daily.iter().all(|r| r.1 == "succeeded"), "{daily:?}");
    assert_one_at_a_time("daily", &daily);

    // `tick`: every firing between the first and the last was claimed once and finished;
    // each succeeded claim is one succeeded run, and no two runs overlapped.
    let tick_claims = claims(&pool, "tick").await;
    assert!(tick_claims.len() >= 4, "{tick_claims:?}\n{logs}");
    for pair in tick_claims.windows(2) {
        assert!(
            (pair[1].0 - pair[0].0 - 2.0).abs() < 1e-6,
            "a firing was skipped: {tick_claims:?}"
        );
    }
    assert!(
        tick_claims
            .iter()
            .all(|c| c.1 == "done" && (c.2.starts_with("succeeded") || c.2.starts_with("skipped"))),
        "{tick_claims:?}\n{logs}"
    );
    let tick = runs(&pool, "tick").await;
    let succeeded_claims: Vec<&String> = tick_claims
        .iter()
        .filter(|c| c.2.starts_with("succeeded"))
        .filter_map(|c| c.3.as_ref())
        .collect();
    assert_eq!(
        succeeded_claims.len(),
        tick.iter().filter(|r| r.1 == "succeeded").count(),
        "{tick_claims:?}\n{tick:?}"
    );
    assert_eq!(tick.len(), succeeded_claims.len(), "{tick:?}");
    assert_one_at_a_time("tick", &tick);

    // `scorer status` shows both jobs with their last run.
    let out = p.scorer(&["status"], Some(&url));
    assert_ok(&out);
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(
        shown.contains("daily") && shown.contains("tick") && shown.contains("succeeded"),
        "{shown}"
    );
}

#[tokio::test]
async fn a_scheduler_killed_during_catch_up_is_taken_over_without_skipping_or_repeating() {
    let (url, pool) = fresh_pg("takeover").await;
    let today = Utc::now().date_naive();
    let dates = days_before(today, 1..=8);
    let p = project_with(&[("daily", dates.clone())], 300_000);
    scheduled_job(
        &p,
        "daily",
        "daily",
        "0 0 * * *",
        &format!("start_date = \"{}\"", today - chrono::Duration::days(7)),
    );
    let mut a = spawn_scheduler(&p, Some(&url), "a");
    // Killed in the middle of a run, after two dates succeeded: a run that started under 50 ms
    // ago (a run here takes ~200 ms).
    wait_logged(
        &p,
        &["a"],
        "two caught-up dates and a third just started",
        90,
        || async {
            let now = runs(&pool, "daily").await;
            let clock = Utc::now().timestamp_millis() as f64 / 1000.0;
            now.iter().filter(|r| r.1 == "succeeded").count() >= 2
                && now.iter().any(|r| r.1 == "running" && clock - r.2 < 0.05)
        },
    )
    .await;
    signal(a.id(), "KILL");
    a.wait().unwrap();
    let killed_at = runs(&pool, "daily").await;
    let b = spawn_scheduler(&p, Some(&url), "b");
    wait_logged(&p, &["a", "b"], "the rest of the catch-up", 120, || async {
        done_claims(&pool, "daily").await == 8
    })
    .await;
    stop(&p, b, "b").await;

    let all = runs(&pool, "daily").await;
    let logs = format!("{}\n{}", log_of(&p, "a"), log_of(&p, "b"));
    for d in &dates {
        let succeeded = all
            .iter()
            .filter(|r| r.0 == d.to_string() && r.1 == "succeeded")
            .count();
        assert_eq!(
            succeeded, 1,
            "{d}: {all:?}\nat the kill: {killed_at:?}\n{logs}"
        );
    }
    // Besides those, the run that was killed, whose firing the second scheduler took over as
    // attempt 2: its lease and lock died with it, and the run that replaced it marked it
    // `abandoned` (holding that output's lock proves its owner is gone).
    let others: Vec<_> = all.iter().filter(|r| r.1 != "succeeded").collect();
    assert!(
        others.len() == 1 && others[0].1 == "abandoned",
        "{all:?}\n{logs}"
    );
    let taken: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM scorer.claims WHERE job = 'daily' AND attempts > 1",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(taken, others.len() as i64, "{all:?}");
}

async fn sqlite_runs(p: &Project, job: &str) -> usize {
    let sql =
        format!("SELECT count(*) FROM scorer_runs WHERE job = '{job}' AND status = 'succeeded'");
    sqlite_count(p, &sql)
        .await
        .map_or(0, |n| usize::try_from(n).unwrap_or(0))
}

#[tokio::test]
async fn job_files_added_broken_and_removed_take_effect_without_a_restart() {
    let today = Utc::now().date_naive();
    let p = project_with(&[("events", vec![today])], 2_000);
    scheduled_job(&p, "first", "events", "* * * * * *", "");
    let s = spawn_scheduler(&p, None, "s");
    wait_logged(&p, &["s"], "the first job to fire", 30, || async {
        sqlite_runs(&p, "first").await >= 1
    })
    .await;

    // Added while running: fires without a restart.
    let second = scheduled_job(&p, "second", "events", "* * * * * *", "");
    wait_logged(&p, &["s"], "the added job to fire", 30, || async {
        sqlite_runs(&p, "second").await >= 1
    })
    .await;

    // A broken file is reported, and the others keep firing.
    std::fs::write(
        p.path().join("jobs/broken.toml"),
        "name = \"broken\"\nschedule = \"whenever\"\n",
    )
    .unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    let (f, s2) = (
        sqlite_runs(&p, "first").await,
        sqlite_runs(&p, "second").await,
    );
    wait_logged(&p, &["s"], "both jobs to fire again", 30, || async {
        sqlite_runs(&p, "first").await > f && sqlite_runs(&p, "second").await > s2
    })
    .await;
    let log = log_of(&p, "s");
    assert!(
        log.contains("invalid job file skipped") && log.contains("broken.toml"),
        "{log}"
    );
    assert_eq!(
        log.matches("invalid job file skipped").count(),
        1,
        "reported once: {log}"
    );

    // Removed: fires no more.
    std::fs::remove_file(second).unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after_removal = sqlite_runs(&p, "second").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(sqlite_runs(&p, "second").await, after_removal);
    stop(&p, s, "s").await;
    assert!(log_of(&p, "s").contains("job removed"));
}

#[tokio::test]
async fn a_backfill_reports_each_date_and_resumes_where_it_failed() {
    let dates: Vec<NaiveDate> = ["2026-11-01", "2026-11-02", "2026-11-03"]
        .iter()
        .map(|d| d.parse().unwrap())
        .collect();
    // The 2nd has no input yet.
    let p = project_with(&[("events", vec![dates[0], dates[2]])], 5_000);
    p.add_job("daily", "events", "m", "daily_scores", "");
    let args = [
        "backfill",
        "daily",
        "--from",
        "2026-11-01",
        "--to",
        "2026-11-03",
    ];
    let out = p.scorer(&[&args[..], &["--parallel", "2"]].concat(), None);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("2 succeeded") && table.contains("1 failed"),
        "{table}"
    );
    assert!(
        table
            .lines()
            .any(|l| l.contains("2026-11-02") && l.contains("failed") && l.contains("exit 3")),
        "{table}"
    );

    // The data lands; the same command runs only the missing date.
    p.add_input("events", "2026-11-02", 5_000, 8, None);
    let out = p.scorer(&args, None);
    assert_ok(&out);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("1 succeeded") && table.contains("2 skipped"),
        "{table}"
    );
    assert_eq!(sqlite_runs(&p, "daily").await, 3);

    // --force runs every date again.
    let out = p.scorer(&[&args[..], &["--force"]].concat(), None);
    assert_ok(&out);
    assert_eq!(sqlite_runs(&p, "daily").await, 6);
    let pool = SqlitePool::connect(&p.sqlite_url()).await.unwrap();
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM daily_scores")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(rows, 15_000);
}

#[tokio::test]
async fn sigterm_cancels_a_run_past_the_grace_and_gives_its_firing_to_the_next_scheduler() {
    // One firing due, today's midnight, which scores yesterday.
    let today = Utc::now().date_naive();
    let yesterday = today - chrono::Duration::days(1);
    let p = project_with(&[("events", vec![yesterday])], 300_000);
    scheduled_job(
        &p,
        "slow",
        "events",
        "0 0 * * *",
        &format!("start_date = \"{today}\""),
    );
    let a = spawn_scheduler_with_grace(&p, None, "a", "100ms");
    wait_logged(&p, &["a"], "the run to start", 60, || async {
        running_runs(&p).await == Some(1)
    })
    .await;
    stop(&p, a, "a").await;
    let pool = SqlitePool::connect(&p.sqlite_url()).await.unwrap();
    let statuses: Vec<String> = sqlx::query_scalar("SELECT status FROM scorer_runs")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(statuses, ["cancelled"], "{}", log_of(&p, "a"));
    let staging: i64 =
        sqlx::query_scalar("SELECT count(*) FROM sqlite_master WHERE name LIKE '%__stg_%'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(staging, 0);
    // Given back: claimed by nobody, claimable at once.
    let (state, holder, outcome): (String, String, String) =
        sqlx::query_as("SELECT state, holder, outcome FROM scorer_claims")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(
        (state.as_str(), holder.as_str()),
        ("claimed", ""),
        "{outcome}"
    );

    let b = spawn_scheduler(&p, None, "b");
    wait_logged(
        &p,
        &["a", "b"],
        "the given-back firing to succeed",
        120,
        || async { sqlite_runs(&p, "slow").await == 1 },
    )
    .await;
    stop(&p, b, "b").await;
    let (state, attempts, outcome): (String, i64, String) =
        sqlx::query_as("SELECT state, attempts, outcome FROM scorer_claims")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!((state.as_str(), attempts), ("done", 2), "{outcome}");
    assert!(outcome.starts_with("succeeded"), "{outcome}");
}

#[tokio::test]
async fn a_firing_whose_output_is_locked_by_another_run_is_retried_after_the_delay() {
    let today = Utc::now().date_naive();
    let yesterday = today - chrono::Duration::days(1);
    let p = project_with(&[("events", vec![yesterday])], 2_000);
    scheduled_job(
        &p,
        "daily",
        "events",
        "0 0 * * *",
        &format!("start_date = \"{today}\""),
    );
    // A `scorer run` launched by cron holds the date's output (its lock, as that run takes it).
    let db = p.path().join("scorer.db");
    let key = scorer::db::lock::lock_key("daily_scores", yesterday);
    let held = scorer::db::lock::FileLock::try_acquire(&db, &key)
        .unwrap()
        .unwrap();
    let s = spawn_scheduler(&p, None, "s");
    let url = format!("{}?mode=ro", p.sqlite_url());
    let outcome = || {
        let url = url.clone();
        async move {
            let pool = SqlitePool::connect(&url).await.ok()?;
            let row: Option<(String, i64, String)> =
                sqlx::query_as("SELECT state, attempts, coalesce(outcome, '') FROM scorer_claims")
                    .fetch_optional(&pool)
                    .await
                    .ok()?;
            pool.close().await;
            row
        }
    };
    wait_logged(
        &p,
        &["s"],
        "the first attempt to fail with exit 5",
        30,
        || async {
            outcome()
                .await
                .is_some_and(|(_, _, o)| o.contains("attempt 1 failed (exit 5)"))
        },
    )
    .await;
    drop(held);
    wait_logged(&p, &["s"], "a later attempt to succeed", 30, || async {
        outcome().await.is_some_and(|(state, _, _)| state == "done")
    })
    .await;
    stop(&p, s, "s").await;
    let (_, attempts, o) = outcome().await.unwrap();
    assert_eq!(attempts, 2, "{o}\n{}", log_of(&p, "s"));
    assert!(o.starts_with("succeeded"), "{o}");
}
