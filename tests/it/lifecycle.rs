//! The run lifecycle against a real PostgreSQL: SIGTERM cancels cleanly, SIGKILL leaves debris that
//! `scorer gc` and the next run sweep, one run per output and date, and a lost lock never
//! publishes. A run is caught in the phase under test by pausing the process (SIGSTOP) the moment
//! the server shows it there, so the timing does not depend on the machine's speed.

use sqlx::Row;
use sqlx::postgres::PgPool;

use crate::common::*;

const ROWS: u64 = 400_000;

fn project() -> Project {
    let p = Project::new();
    p.add_model(&ModelOpts::mlp(8));
    p.add_input("events", DATE, ROWS, 8, None);
    p.add_job("daily", "events", "m", "scores.daily", "");
    p
}

/// (rows, distinct run ids, the run id) of the date in the result table.
async fn date_rows(pool: &PgPool) -> (i64, i64, Option<uuid::Uuid>) {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT count(*), count(DISTINCT run_id), min(run_id::text)::uuid FROM scores.daily \
         WHERE ds = DATE '{DATE}'"
    )))
    .fetch_one(pool)
    .await
    .unwrap();
    (row.get(0), row.get(1), row.get(2))
}

/// Whether the run ids in the date's rows are one run and the runs it resumed (`resumed_from`,
/// followed back): one published run, never a mix of two. (The publishing run may be one killed
/// after its swap and before its ledger row was finished, so its status is not looked at.)
async fn rows_are_one_resume_chain(pool: &PgPool) -> bool {
    let ids: Vec<uuid::Uuid> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT DISTINCT run_id FROM scores.daily WHERE ds = DATE '{DATE}'"
    )))
    .fetch_all(pool)
    .await
    .unwrap();
    let links: std::collections::HashMap<uuid::Uuid, Option<uuid::Uuid>> =
        sqlx::query_as("SELECT run_id, resumed_from FROM scorer.runs")
            .fetch_all(pool)
            .await
            .unwrap()
            .into_iter()
            .collect();
    ids.iter().any(|&head| {
        let mut chain = vec![head];
        while let Some(Some(prev)) = chain.last().and_then(|r| links.get(r)) {
            chain.push(*prev);
        }
        ids.iter().all(|id| chain.contains(id))
    })
}

async fn staging_tables(pool: &PgPool) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT tablename::text FROM pg_tables WHERE tablename LIKE '%\\_\\_stg\\_%' ORDER BY 1",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

/// (status, error) of every run, oldest first.
async fn ledger(pool: &PgPool) -> Vec<(String, Option<String>)> {
    sqlx::query_as("SELECT status, error FROM scorer.runs ORDER BY started_at")
        .fetch_all(pool)
        .await
        .unwrap()
}

async fn running_runs(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM scorer.runs WHERE status = 'running'")
        .fetch_one(pool)
        .await
        .unwrap()
}

/// Rows a COPY into this database has sent so far (0 when none is in progress).
async fn copy_progress(pool: &PgPool) -> i64 {
    sqlx::query_scalar(
        "SELECT coalesce(max(tuples_processed), 0)::bigint FROM pg_stat_progress_copy \
         WHERE datname = current_database()",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

/// Backend pids holding the output lock of scores.daily for DATE (a bigint advisory lock: its key
/// is split over classid and objid). Other advisory locks, like the migrator's, do not count.
async fn output_lock_holders(pool: &PgPool) -> Vec<i32> {
    let key = scorer::db::lock::lock_key("scores.daily", DATE.parse().unwrap());
    sqlx::query_scalar(
        "SELECT l.pid FROM pg_locks l JOIN pg_database d ON d.oid = l.database \
         WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 \
           AND d.datname = current_database() \
           AND ((l.classid::bigint << 32) | l.objid::bigint) = hashtextextended($1, 0)",
    )
    .bind(key)
    .fetch_all(pool)
    .await
    .unwrap()
}

/// A first successful run, so the date has rows a failed or cancelled run must leave alone.
async fn with_previous_rows(
    tag: &str,
) -> (Project, String, PgPool, (i64, i64, Option<uuid::Uuid>)) {
    let (url, pool) = fresh_pg(tag).await;
    let p = project();
    assert_ok(&p.run("jobs/daily.toml", Some(&url)));
    let before = date_rows(&pool).await;
    assert_eq!((before.0, before.1), (ROWS as i64, 1));
    (p, url, pool, before)
}

/// Pauses the run, sends SIGTERM, resumes it: the signal lands exactly in the paused phase.
fn terminate_paused(pid: u32) {
    signal(pid, "TERM");
    signal(pid, "CONT");
}

async fn assert_cancelled_cleanly(
    out: &std::process::Output,
    pool: &PgPool,
    before: (i64, i64, Option<uuid::Uuid>),
) {
    assert_eq!(out.status.code(), Some(6), "{}", text(out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("SIGTERM received"), "{stderr}");
    let runs = ledger(pool).await;
    assert_eq!(runs.len(), 2, "{runs:?}");
    assert_eq!(runs[1].0, "cancelled", "{runs:?}");
    assert!(
        runs[1]
            .1
            .as_deref()
            .unwrap_or_default()
            .contains("cancelled"),
        "{runs:?}"
    );
    assert_eq!(staging_tables(pool).await, Vec::<String>::new());
    assert_eq!(
        date_rows(pool).await,
        before,
        "the date's previous rows changed"
    );
}

#[tokio::test]
async fn sigterm_while_reading_cancels_and_keeps_the_previous_rows() {
    let (p, url, pool, before) = with_previous_rows("term_read").await;
    let child = p.spawn_run("jobs/daily.toml", Some(&url));
    let pid = child.id();
    // The ledger row appears before planning: the run is about to list and read its input.
    wait_for("the run to start", 60, || async {
        running_runs(&pool).await == 1
    })
    .await;
    signal(pid, "STOP");
    assert_eq!(copy_progress(&pool).await, 0, "COPY had already begun");
    terminate_paused(pid);
    let out = finish(child).await;
    assert_cancelled_cleanly(&out, &pool, before).await;
}

#[tokio::test]
async fn sigterm_during_copy_cancels_and_keeps_the_previous_rows() {
    let (p, url, pool, before) = with_previous_rows("term_copy").await;
    let child = p.spawn_run("jobs/daily.toml", Some(&url));
    let pid = child.id();
    wait_for("COPY to start sending rows", 60, || async {
        copy_progress(&pool).await > 0
    })
    .await;
    signal(pid, "STOP");
    assert_eq!(staging_tables(&pool).await.len(), 1);
    terminate_paused(pid);
    let out = finish(child).await;
    assert_cancelled_cleanly(&out, &pool, before).await;
}

/// Starts a second run, kills it with SIGKILL while it COPYs, and checks what it left.
async fn kill_during_copy(p: &Project, url: &str, pool: &PgPool) {
    let child = p.spawn_run("jobs/daily.toml", Some(url));
    let pid = child.id();
    wait_for("COPY to start sending rows", 60, || async {
        copy_progress(pool).await > 0
    })
    .await;
    signal(pid, "KILL");
    let out = finish(child).await;
    assert_eq!(out.status.code(), None, "{}", text(&out));
    assert_eq!(
        staging_tables(pool).await.len(),
        1,
        "a killed run leaves its staging"
    );
    assert_eq!(running_runs(pool).await, 1);
}

#[tokio::test]
async fn sigkill_during_copy_then_gc_sweeps_and_a_rerun_replaces_the_date() {
    let (p, url, pool, before) = with_previous_rows("kill_gc").await;
    kill_during_copy(&p, &url, &pool).await;
    assert_eq!(date_rows(&pool).await, before);

    let gc = p.scorer(&["gc", "--stale-after", "0s"], Some(&url));
    assert_ok(&gc);
    let stdout = String::from_utf8_lossy(&gc.stdout);
    assert!(
        stdout.contains("1 dead run(s) marked abandoned"),
        "{stdout}"
    );
    assert!(stdout.contains("staging table"), "{stdout}");
    assert_eq!(staging_tables(&pool).await, Vec::<String>::new());
    let runs = ledger(&pool).await;
    assert_eq!(runs[1].0, "abandoned", "{runs:?}");
    assert!(
        runs[1]
            .1
            .as_deref()
            .unwrap_or_default()
            .contains("staging table")
    );

    // A second gc finds nothing more.
    let again = p.scorer(&["gc", "daily", "--stale-after", "0s"], Some(&url));
    assert_ok(&again);
    assert!(String::from_utf8_lossy(&again.stdout).contains("0 dead run(s)"));

    assert_ok(&p.run("jobs/daily.toml", Some(&url)));
    let after = date_rows(&pool).await;
    assert_eq!((after.0, after.1), (ROWS as i64, 1));
    assert_ne!(
        after.2, before.2,
        "the rerun's rows replaced the first run's"
    );
}

#[tokio::test]
async fn sigkill_during_copy_then_the_next_run_sweeps_it() {
    let (p, url, pool, _) = with_previous_rows("kill_next").await;
    kill_during_copy(&p, &url, &pool).await;

    // Its heartbeat is fresh, but the next run of the same output and date holds the lock the
    // dead run held, so the dead run's row and staging are its to sweep.
    let out = p.run("jobs/daily.toml", Some(&url));
    assert_ok(&out);
    assert_eq!(staging_tables(&pool).await, Vec::<String>::new());
    let statuses: Vec<String> = ledger(&pool).await.into_iter().map(|r| r.0).collect();
    assert_eq!(statuses, ["succeeded", "abandoned", "succeeded"]);
    let last: uuid::Uuid =
        sqlx::query_scalar("SELECT run_id FROM scorer.runs ORDER BY started_at DESC LIMIT 1")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(date_rows(&pool).await, (ROWS as i64, 1, Some(last)));
}

#[tokio::test]
async fn two_jobs_writing_one_table_and_date_one_exits_5_and_the_table_is_never_a_mix() {
    let (url, pool) = fresh_pg("two_jobs").await;
    let p = project();
    // A second job with another name, input and model settings, writing the same table.
    p.add_input("other", DATE, 1_000, 8, None);
    p.add_job("daily_b", "other", "m", "scores.daily", "");

    let first = p.spawn_run("jobs/daily.toml", Some(&url));
    wait_for("the first run's output lock", 60, || async {
        output_lock_holders(&pool).await.len() == 1
    })
    .await;
    signal(first.id(), "STOP");
    let started = std::time::Instant::now();
    let second = p.run("jobs/daily_b.toml", Some(&url));
    let waited = started.elapsed();
    signal(first.id(), "CONT");
    assert_eq!(second.status.code(), Some(5), "{}", text(&second));
    assert!(
        waited < std::time::Duration::from_secs(5),
        "the refusal took {waited:?}"
    );
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        stderr.contains("scores.daily") && stderr.contains("another run"),
        "{stderr}"
    );
    let out = finish(first).await;
    assert_ok(&out);
    let (rows, runs, run) = date_rows(&pool).await;
    assert_eq!((rows, runs), (ROWS as i64, 1));
    let job: String = sqlx::query_scalar("SELECT job FROM scorer.runs WHERE run_id = $1")
        .bind(run)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(job, "daily");
}

#[tokio::test]
async fn a_run_whose_lock_connection_is_terminated_fails_before_publishing() {
    let (p, url, pool, before) = with_previous_rows("lock_lost").await;
    let child = p.spawn_run("jobs/daily.toml", Some(&url));
    wait_for("the run's output lock", 60, || async {
        output_lock_holders(&pool).await.len() == 1
    })
    .await;
    signal(child.id(), "STOP");
    let holder = output_lock_holders(&pool).await[0];
    let killed: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1)")
        .bind(holder)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(killed);
    signal(child.id(), "CONT");
    let out = finish(child).await;
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("lost the lock"), "{stderr}");
    assert!(stderr.contains("nothing was published"), "{stderr}");
    assert_eq!(
        date_rows(&pool).await,
        before,
        "the date's previous rows changed"
    );
    assert_eq!(staging_tables(&pool).await, Vec::<String>::new());
    let runs = ledger(&pool).await;
    assert_eq!(runs[1].0, "failed", "{runs:?}");
}

/// kill -9 at twenty points spread over a whole run (listing, footers, reading, scoring, COPY,
/// the swap), each followed by a check that the date holds exactly one run's rows, the previous
/// ones or a complete new set, never part or duplicates; then a rerun gives exactly the input's
/// rows and leaves no staging table or `running` row behind.
#[tokio::test]
async fn kill_9_at_twenty_points_never_leaves_a_partial_date() {
    use rand::{Rng, SeedableRng};
    let (p, url, pool, before) = with_previous_rows("kill9").await;
    // How long an uninterrupted run takes here, process start to exit: the shorter of two, so
    // that a run slowed by other load on the machine does not stretch every kill point past
    // the end of the runs that follow.
    let mut whole = f64::INFINITY;
    for _ in 0..2 {
        let started = std::time::Instant::now();
        assert_ok(&p.run("jobs/daily.toml", Some(&url)));
        whole = whole.min(started.elapsed().as_secs_f64());
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(16);
    let mut outcomes = Vec::new();
    for k in 0..20 {
        // Point k of 20 across the run, jittered within its twentieth.
        let at = whole * (f64::from(k) + rng.random::<f64>()) / 20.0;
        // Each point is a point of a whole run: the killed run before it is not resumed (that
        // would make this run shorter than `whole`); tests/it/resume.rs covers resuming, and the
        // final rerun below resumes the last killed run.
        sqlx::query("DELETE FROM scorer.resume_runs")
            .execute(&pool)
            .await
            .unwrap();
        let child = p.spawn_run("jobs/daily.toml", Some(&url));
        tokio::time::sleep(std::time::Duration::from_secs_f64(at)).await;
        signal(child.id(), "KILL");
        let out = finish(child).await;
        let (rows, _, _) = date_rows(&pool).await;
        assert_eq!(
            rows, ROWS as i64,
            "killed at {at:.3} s of {whole:.3} s: the date is partial"
        );
        assert!(
            rows_are_one_resume_chain(&pool).await,
            "killed at {at:.3} s of {whole:.3} s: the date mixes runs"
        );
        let distinct: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT count(DISTINCT id) FROM scores.daily WHERE ds = DATE '{DATE}'"
        )))
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!(
            distinct, ROWS as i64,
            "duplicates after a kill at {at:.3} s"
        );
        outcomes.push((at, out.status.code()));
    }
    // Some kills must have landed mid-run (no exit code: killed), not all after the end.
    let killed = outcomes.iter().filter(|(_, code)| code.is_none()).count();
    assert!(killed >= 15, "{outcomes:?}");
    // The rerun sweeps what the killed runs left (or resumes the last of them) and replaces the
    // date exactly.
    assert_ok(&p.run("jobs/daily.toml", Some(&url)));
    let (rows, _, run_id) = date_rows(&pool).await;
    assert_eq!(rows, ROWS as i64);
    assert!(
        rows_are_one_resume_chain(&pool).await,
        "the date's rows are the rerun's"
    );
    assert_ne!(run_id, before.2);
    let resumed: i64 =
        sqlx::query_scalar("SELECT count(*) FROM scorer.runs WHERE resumed_from IS NOT NULL")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(staging_tables(&pool).await, Vec::<String>::new());
    assert_eq!(running_runs(&pool).await, 0, "{:?}", ledger(&pool).await);
    eprintln!(
        "kill -9 points tried: {}, killed mid-run: {killed}, the final rerun resumed: {}, rows \
         lost: 0, rows duplicated: 0 (uninterrupted run {whole:.2} s)",
        outcomes.len(),
        resumed > 0
    );
}

/// A PostgreSQL server of this test's own (scripts/pg-env.sh), so it can be restarted without
/// disturbing the other tests; stopped and removed on drop.
struct OwnServer {
    url: String,
    dir: String,
    bin: String,
}

impl OwnServer {
    fn start() -> Self {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/pg-env.sh");
        let out = std::process::Command::new("bash")
            .args([
                "-c",
                &format!("source {script} && pg_up >/dev/null && echo \"$SCORER_TEST_DATABASE_URL $PG_TMP $PG_BIN\""),
            ])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out));
        let line = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let mut parts = line.split(' ');
        let (url, dir, bin) = (parts.next(), parts.next(), parts.next());
        Self {
            url: url.unwrap().to_string(),
            dir: dir.unwrap().to_string(),
            bin: bin.unwrap().to_string(),
        }
    }

    /// `pg_ctl` as the server's user (root may not run it).
    fn pg_ctl(&self, args: &[&str]) -> std::process::Output {
        let pg_ctl = format!("{}/pg_ctl", self.bin);
        let data = format!("{}/data", self.dir);
        let mut cmd = if nix_root() {
            let mut c = std::process::Command::new("runuser");
            c.args(["-u", "postgres", "--", &pg_ctl]);
            c
        } else {
            std::process::Command::new(&pg_ctl)
        };
        cmd.args(["-D", &data]).args(args).output().unwrap()
    }
}

fn nix_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

impl Drop for OwnServer {
    fn drop(&mut self) {
        let _ = self.pg_ctl(&["-m", "immediate", "-w", "stop"]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// PostgreSQL restarted while a run COPYs: the run fails with the retryable code (4), the date
/// keeps its previous rows, and once the server is back the ledger says what happened and a rerun
/// scores the date exactly.
#[tokio::test]
async fn a_postgres_restart_mid_run_fails_it_retryably_and_keeps_the_date() {
    let server = OwnServer::start();
    let url = server.url.clone();
    let p = project();
    assert_ok(&p.run("jobs/daily.toml", Some(&url)));
    let pool = PgPool::connect(&url).await.unwrap();
    let before = date_rows(&pool).await;
    pool.close().await;

    // Watched over one connection opened before the run starts: a connection per poll (a TLS
    // handshake each) let a loaded machine's short COPY pass between two polls.
    let watch = PgPool::connect(&url).await.unwrap();
    let child = p.spawn_run("jobs/daily.toml", Some(&url));
    wait_for("the COPY to be under way", 60, || {
        let watch = watch.clone();
        async move { copy_progress(&watch).await > 0 }
    })
    .await;
    watch.close().await;
    // The log file again: without it the new server would write to (and hold open) our pipe.
    let log = format!("{}/server.log", server.dir);
    let restarted = server.pg_ctl(&["-m", "fast", "-w", "-t", "60", "-l", &log, "restart"]);
    assert!(restarted.status.success(), "{}", text(&restarted));
    let out = finish(child).await;
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));

    let pool = PgPool::connect(&url).await.unwrap();
    assert_eq!(
        date_rows(&pool).await,
        before,
        "the date keeps its previous rows"
    );
    // The rerun resumes what the failed run had checkpointed (or sweeps it) and replaces the
    // date exactly.
    assert_ok(&p.run("jobs/daily.toml", Some(&url)));
    let (rows, _, _) = date_rows(&pool).await;
    assert_eq!(rows, ROWS as i64);
    assert!(rows_are_one_resume_chain(&pool).await);
    assert_eq!(staging_tables(&pool).await, Vec::<String>::new());
    let statuses: Vec<String> =
        sqlx::query_scalar("SELECT status FROM scorer.runs ORDER BY started_at")
            .fetch_all(&pool)
            .await
            .unwrap();
    // The interrupted run is `failed` (its ledger update reached the server once it was back)
    // or `abandoned` (it did not, and the rerun swept it); never left `running`.
    assert_eq!(statuses.len(), 3, "{statuses:?}");
    assert!(
        matches!(statuses[1].as_str(), "failed" | "abandoned"),
        "{statuses:?}"
    );
    assert_eq!(
        (statuses[0].as_str(), statuses[2].as_str()),
        ("succeeded", "succeeded")
    );
    pool.close().await;
}
