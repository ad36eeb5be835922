//! Sharded runs as separate processes (`scorer run JOB --date D --shard I/N`): the date is
//! published once, by the last shard, and equals the unsharded run's rows; readers never see a
//! part; a failed shard is retried alone; a shard rerun after success changes nothing; a newer
//! attempt supersedes an unfinished one; PostgreSQL tables and Parquet output.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arrow::array::AsArray;
use arrow::datatypes::{Float32Type, Int64Type};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use scorer::sink::objects::Manifest;
use sqlx::PgPool;

use crate::common::*;

/// A project with 3 input files of `rows` rows in all, the model `m` and the job `daily` writing
/// the PostgreSQL table `scores`.
fn project(rows: u64) -> Project {
    let p = Project::new();
    p.add_model(&ModelOpts::mlp(8));
    p.add_input("events", DATE, rows, 8, None);
    p.add_job("daily", "events", "m", "scores", "");
    p
}

fn shard(p: &Project, db: Option<&str>, spec: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["run", "daily", "--date", DATE, "--shard", spec];
    args.extend_from_slice(extra);
    p.scorer(&args, db)
}

/// The date's rows: id -> (score, run id).
async fn table(pool: &PgPool) -> BTreeMap<i64, (f32, String)> {
    sqlx::query_as::<_, (i64, f32, String)>(
        "SELECT id, score, run_id::text FROM scores WHERE ds = $1::date",
    )
    .bind(DATE)
    .fetch_all(pool)
    .await
    .unwrap()
    .into_iter()
    .map(|(id, s, r)| (id, (s, r)))
    .collect()
}

fn scores(t: &BTreeMap<i64, (f32, String)>) -> BTreeMap<i64, f32> {
    t.iter().map(|(id, (s, _))| (*id, *s)).collect()
}

fn run_ids(t: &BTreeMap<i64, (f32, String)>) -> std::collections::BTreeSet<String> {
    t.values().map(|(_, r)| r.clone()).collect()
}

/// The ledger's shard rows of the date: (shard index, status, rows written, published rows).
async fn shard_rows(pool: &PgPool) -> Vec<(i32, String, i64, Option<i64>)> {
    sqlx::query_as(
        "SELECT shard_index, status, coalesce(rows_written, 0), published_rows FROM scorer.runs \
         WHERE shard_count IS NOT NULL ORDER BY started_at",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

/// Polls the date's rows until `stop`: every look must be all of the previous run's rows (`old`
/// run id, `rows` rows) or none of them, with `rows` rows; returns how many looks saw each.
fn watch(
    pool: PgPool,
    old: String,
    rows: i64,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<(u32, u32)> {
    tokio::spawn(async move {
        let (mut saw_old, mut saw_new) = (0, 0);
        while !stop.load(Ordering::Relaxed) {
            let (n, from_old): (i64, i64) = sqlx::query_as(
                "SELECT count(*), count(*) FILTER (WHERE run_id = $2::uuid) FROM scores \
                 WHERE ds = $1::date",
            )
            .bind(DATE)
            .bind(&old)
            .fetch_one(&pool)
            .await
            .unwrap();
            assert_eq!(n, rows, "a reader saw {n} rows, not the date's {rows}");
            match from_old {
                x if x == rows => saw_old += 1,
                0 => saw_new += 1,
                x => panic!("a reader saw a mix: {x} of {rows} rows from the previous run"),
            }
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        (saw_old, saw_new)
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn three_shards_publish_once_the_unsharded_rows_and_readers_never_see_a_part() {
    let p = project(30_000);
    let (url, pool) = fresh_pg("shards").await;
    // The unsharded run: the date's previous rows, and what the shards must reproduce.
    assert_ok(&p.run("daily", Some(&url)));
    let unsharded = table(&pool).await;
    assert_eq!(unsharded.len(), 30_000);
    let old = run_ids(&unsharded).into_iter().next().unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let reader = watch(pool.clone(), old.clone(), 30_000, Arc::clone(&stop));
    for (i, spec) in ["0/3", "1/3"].into_iter().enumerate() {
        let out = shard(&p, Some(&url), spec, &[]);
        assert_ok(&out);
        assert!(
            text(&out).contains(&format!("{} of 3 shards have staged theirs", i + 1)),
            "{}",
            text(&out)
        );
        // Nothing of the shards is visible yet.
        assert_eq!(table(&pool).await, unsharded);
    }
    let out = shard(&p, Some(&url), "2/3", &[]);
    assert_ok(&out);
    assert!(
        text(&out).contains("published the date: 30000 rows from 3 shards"),
        "{}",
        text(&out)
    );
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    stop.store(true, Ordering::Relaxed);
    let (saw_old, saw_new) = reader.await.unwrap();
    assert!(saw_old > 0 && saw_new > 0, "{saw_old} {saw_new}");

    let sharded = table(&pool).await;
    assert_eq!(scores(&sharded), scores(&unsharded));
    assert_eq!(run_ids(&sharded).len(), 3, "one run id per shard");
    let ledger = shard_rows(&pool).await;
    let shares: i64 = ledger.iter().map(|r| r.2).sum();
    assert_eq!(shares, 30_000);
    for (i, row) in ledger.iter().enumerate() {
        assert_eq!(
            (row.0, row.1.as_str(), row.3),
            (i as i32, "succeeded", Some(30_000))
        );
        assert!(row.2 > 5_000, "shares are balanced: {ledger:?}");
    }
    // The shards' tables are the date's partition's, named after it; no staging is left.
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT relname::text FROM pg_class WHERE relname LIKE 'scores%' AND relkind IN ('r','p') \
         ORDER BY 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        tables,
        [
            "scores",
            "scores_20261124",
            "scores_20261124_s0",
            "scores_20261124_s1",
            "scores_20261124_s2",
            "scores_quarantine"
        ]
    );

    // A shard rerun after success changes nothing.
    let out = shard(&p, Some(&url), "1/3", &[]);
    assert_ok(&out);
    assert!(text(&out).contains("nothing to do"), "{}", text(&out));
    assert_eq!(table(&pool).await, sharded);
    let last = shard_rows(&pool).await.pop().unwrap();
    assert_eq!(last.1, "skipped");

    // An unsharded run replaces the sharded date as any run does, and the row guard compares
    // with the sharded publication's rows in all.
    assert_ok(&p.run("daily", Some(&url)));
    assert_eq!(scores(&table(&pool).await), scores(&unsharded));
    // The row guards count the shards' rows together: the default guard passed above.
}

#[tokio::test(flavor = "multi_thread")]
async fn a_shard_killed_mid_run_is_retried_alone() {
    let p = project(300_000);
    let (url, pool) = fresh_pg("shards_kill").await;
    assert_ok(&p.run("daily", Some(&url)));
    let unsharded = scores(&table(&pool).await);
    assert_ok(&shard(&p, Some(&url), "0/3", &[]));
    assert_ok(&shard(&p, Some(&url), "2/3", &[]));

    // Shard 1 dies (kill -9) once it has started.
    let child = p
        .command(
            &["run", "daily", "--date", DATE, "--shard", "1/3"],
            Some(&url),
        )
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let watcher = pool.clone();
    wait_for("shard 1 to start", 60, || {
        let pool = watcher.clone();
        async move {
            sqlx::query_scalar::<_, i64>(
                "SELECT count(*) FROM scorer.runs WHERE shard_index = 1 AND status = 'running'",
            )
            .fetch_one(&pool)
            .await
            .unwrap()
                > 0
        }
    })
    .await;
    signal(child.id(), "KILL");
    let killed = finish(child).await;
    assert_eq!(killed.status.code(), None, "{}", text(&killed));
    assert_eq!(
        scores(&table(&pool).await),
        unsharded,
        "the date kept its rows"
    );

    // Retried alone, it stages its share and publishes the date.
    let out = shard(&p, Some(&url), "1/3", &[]);
    assert_ok(&out);
    assert!(
        text(&out).contains("published the date: 300000 rows"),
        "{}",
        text(&out)
    );
    let now = table(&pool).await;
    assert_eq!(scores(&now), unsharded);
    assert_eq!(run_ids(&now).len(), 3);
    let statuses: Vec<String> = shard_rows(&pool).await.into_iter().map(|r| r.1).collect();
    assert_eq!(
        statuses,
        ["succeeded", "succeeded", "abandoned", "succeeded"]
    );
}

/// Staging tables of `scores` in the database (`scores__stg_<run>`).
async fn staging(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM pg_class WHERE relname LIKE 'scores\\_\\_stg\\_%'")
        .fetch_one(pool)
        .await
        .unwrap()
}

/// Shard 2/3 of `daily`, started with `SCORER_STOP_AT=point` and stopped there.
async fn last_shard_stopped_at(p: &Project, url: &str, point: &str) -> std::process::Child {
    let mut child = p
        .command(
            &["run", "daily", "--date", DATE, "--shard", "2/3"],
            Some(url),
        )
        .env(scorer::stop_point::ENV, point)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_stopped(&mut child, 120).await;
    child
}

/// kill -9 of the publishing shard at each of its steps (`scorer::stop_point`): before it takes
/// the date's lock, holding it, inside the publish transaction, and after the commit before its
/// ledger row is updated. Each time the date holds exactly the input's rows (the previous run's
/// until the commit, the shards' after it), a retry of that shard publishes once or finds the
/// attempt published, and `scorer gc` leaves no `running` row and no staging table.
#[tokio::test(flavor = "multi_thread")]
async fn the_publishing_shard_killed_at_each_step_publishes_exactly_once() {
    const ROWS: usize = 20_000;
    let p = project(ROWS as u64);
    let points = [
        (scorer::stop_point::SHARD_BEFORE_LOCK, false),
        (scorer::stop_point::SHARD_LOCKED, false),
        (scorer::stop_point::SHARD_IN_TRANSACTION, false),
        (scorer::stop_point::SHARD_COMMITTED, true),
    ];
    let mut printed = Vec::new();
    for (i, (point, committed)) in points.into_iter().enumerate() {
        let (url, pool) = fresh_pg(&format!("shards_stop{i}")).await;
        assert_ok(&p.run("daily", Some(&url)));
        let unsharded = table(&pool).await;
        assert_eq!(unsharded.len(), ROWS);
        assert_ok(&shard(&p, Some(&url), "0/3", &[]));
        assert_ok(&shard(&p, Some(&url), "1/3", &[]));

        // The last shard stops itself at the point; readers meanwhile see the previous rows,
        // or (stopped after the commit) the shards' rows; then it is killed there.
        let child = last_shard_stopped_at(&p, &url, point).await;
        if point == scorer::stop_point::SHARD_IN_TRANSACTION {
            // The swap holds the table's lock until COMMIT: a reader waits, it never sees a part.
            let mut reader = pool.acquire().await.unwrap();
            sqlx::query("SET lock_timeout = '300ms'")
                .execute(&mut *reader)
                .await
                .unwrap();
            let waited = sqlx::query("SELECT count(*) FROM scores WHERE ds = $1::date")
                .bind(DATE)
                .fetch_one(&mut *reader)
                .await
                .unwrap_err();
            assert!(
                waited.to_string().contains("lock timeout"),
                "{point}: {waited}"
            );
            sqlx::query("RESET lock_timeout")
                .execute(&mut *reader)
                .await
                .unwrap();
        } else {
            let seen = table(&pool).await;
            assert_eq!(
                scores(&seen),
                scores(&unsharded),
                "{point}: a reader saw other rows"
            );
            assert_eq!(
                run_ids(&seen).len(),
                if committed { 3 } else { 1 },
                "{point}"
            );
        }
        signal(child.id(), "KILL");
        let killed = finish(child).await;
        assert_eq!(killed.status.code(), None, "{point}: {}", text(&killed));
        let after_kill = table(&pool).await;
        assert_eq!(
            scores(&after_kill),
            scores(&unsharded),
            "{point}: rows after the kill"
        );

        // The retry publishes the attempt, or finds it published: exactly once either way.
        let retry = shard(&p, Some(&url), "2/3", &[]);
        assert_ok(&retry);
        let said = if committed {
            "nothing to do"
        } else {
            "published the date: 20000 rows from 3 shards"
        };
        assert!(text(&retry).contains(said), "{point}: {}", text(&retry));
        let now = table(&pool).await;
        assert_eq!(scores(&now), scores(&unsharded), "{point}: the date's rows");
        assert_eq!(run_ids(&now).len(), 3, "{point}: one run id per shard");
        let published: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT count(*) FILTER (WHERE published_by IS NOT NULL), count(*) \
             FROM scorer.shard_attempts",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        assert_eq!(published, [(1, 1)], "{point}: one attempt, published once");

        // gc: the killed run is abandoned; nothing is left running or staged.
        let gc = p.scorer(&["gc", "daily", "--stale-after", "0s"], Some(&url));
        assert_ok(&gc);
        let statuses: Vec<String> = shard_rows(&pool).await.into_iter().map(|r| r.1).collect();
        assert!(
            !statuses.iter().any(|s| s == "running"),
            "{point}: {statuses:?}"
        );
        assert_eq!(staging(&pool).await, 0, "{point}: staging tables left");
        let (rows, distinct): (i64, i64) =
            sqlx::query_as("SELECT count(*), count(DISTINCT id) FROM scores WHERE ds = $1::date")
                .bind(DATE)
                .fetch_one(&pool)
                .await
                .unwrap();
        assert_eq!((rows, distinct), (ROWS as i64, ROWS as i64), "{point}");
        printed.push(format!(
            "{point}: {rows} rows, {distinct} distinct ids; retry: {said}; ledger {statuses:?}"
        ));
    }
    eprintln!(
        "publishing shard killed at {} points; rows lost 0, rows duplicated 0:\n  {}",
        printed.len(),
        printed.join("\n  ")
    );
}

/// An attempt whose publishing shard died (kill -9, never retried) stalls: `scorer gc`
/// keeps it while it is younger than --expire-attempts-after, then drops its staged parts, marks
/// its staged runs abandoned and forgets it; the shards run again publish a new attempt.
#[tokio::test(flavor = "multi_thread")]
async fn gc_expires_an_attempt_whose_shards_stalled() {
    let p = project(12_000);
    let (url, pool) = fresh_pg("shards_expire").await;
    assert_ok(&p.run("daily", Some(&url)));
    let unsharded = table(&pool).await;
    assert_ok(&shard(&p, Some(&url), "0/3", &[]));
    assert_ok(&shard(&p, Some(&url), "1/3", &[]));
    // Shard 2 stages its part and dies (kill -9) before it publishes; nobody retries it.
    let child = last_shard_stopped_at(&p, &url, scorer::stop_point::SHARD_BEFORE_LOCK).await;
    signal(child.id(), "KILL");
    let _ = finish(child).await;
    assert_eq!(staging(&pool).await, 3, "every shard staged its part");

    // Young: kept.
    let gc = p.scorer(&["gc", "daily", "--stale-after", "0s"], Some(&url));
    assert_ok(&gc);
    assert!(
        text(&gc).contains("0 stalled sharded attempt(s) expired, 1 unpublished attempt(s) kept"),
        "{}",
        text(&gc)
    );
    assert_eq!(staging(&pool).await, 3);
    // Idle past the limit: expired, its parts dropped, the date's rows untouched.
    let gc = p.scorer(
        &[
            "gc",
            "daily",
            "--stale-after",
            "0s",
            "--expire-attempts-after",
            "0s",
        ],
        Some(&url),
    );
    assert_ok(&gc);
    assert!(
        text(&gc).contains("1 stalled sharded attempt(s) expired")
            && text(&gc).contains("3 of 3 shards had staged"),
        "{}",
        text(&gc)
    );
    assert_eq!(
        staging(&pool).await,
        0,
        "the expired attempt's parts were dropped"
    );
    assert_eq!(table(&pool).await, unsharded, "the date kept its rows");
    let attempts: i64 = sqlx::query_scalar("SELECT count(*) FROM scorer.shard_attempts")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(attempts, 0);
    let statuses: Vec<String> = shard_rows(&pool).await.into_iter().map(|r| r.1).collect();
    assert_eq!(statuses, ["abandoned", "abandoned", "abandoned"]);

    // The shards run again: a fresh attempt, published once with every row.
    for spec in ["0/3", "1/3", "2/3"] {
        assert_ok(&shard(&p, Some(&url), spec, &[]));
    }
    let now = table(&pool).await;
    assert_eq!(scores(&now), scores(&unsharded));
    assert_eq!(run_ids(&now).len(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_newer_attempt_supersedes_an_unfinished_one() {
    let p = project(12_000);
    let (url, pool) = fresh_pg("shards_attempts").await;
    assert_ok(&shard(&p, Some(&url), "0/3", &["--attempt", "a"]));
    assert_ok(&shard(&p, Some(&url), "1/3", &["--attempt", "a"]));
    let staging = || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM pg_class WHERE relname LIKE 'scores__stg_%'",
        )
        .fetch_one(&pool)
        .await
        .unwrap()
    };
    assert_eq!(staging().await, 2);
    // Attempt b: the same date with another label (a new Kubernetes Job, say), all shards.
    for spec in ["2/3", "0/3", "1/3"] {
        assert_ok(&shard(&p, Some(&url), spec, &["--attempt", "b"]));
    }
    assert_eq!(table(&pool).await.len(), 12_000);
    assert_eq!(staging().await, 0, "attempt a's staged rows were removed");
    let published = table(&pool).await;
    // Attempt a's last shard cannot add its rows to b's: it fails, not retryable (exit 3).
    let out = shard(&p, Some(&url), "2/3", &["--attempt", "a"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(text(&out).contains("is superseded"), "{}", text(&out));
    assert_eq!(table(&pool).await, published);
    let statuses: Vec<String> = shard_rows(&pool).await.into_iter().map(|r| r.1).collect();
    assert_eq!(
        statuses,
        [
            "superseded",
            "superseded",
            "succeeded",
            "succeeded",
            "succeeded",
            "failed"
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_id_in_two_shards_fails_the_publication() {
    let p = project(12_000);
    let dir = p.path().join(format!("data/events/dt={DATE}"));
    let first = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .min()
        .unwrap();
    std::fs::copy(&first, dir.join("zz-copy.parquet")).unwrap();
    let (url, pool) = fresh_pg("shards_dup").await;
    four_shards_then_a_duplicate(&p, &url, "appears more than once");
    assert!(table(&pool).await.is_empty());
}

#[tokio::test]
async fn sqlite_tables_are_not_sharded() {
    let p = project(1_000);
    let out = shard(&p, None, "0/2", &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("sharded runs write a PostgreSQL table"),
        "{}",
        text(&out)
    );
}

/// Reads a manifest's files: id -> score, checking every row's run id is one of the manifest's.
fn manifest_rows(dir: &std::path::Path, m: &Manifest) -> BTreeMap<i64, f32> {
    let runs: Vec<String> = m.all_runs().iter().map(|r| r.to_string()).collect();
    let mut rows = BTreeMap::new();
    for f in &m.files {
        let file = std::fs::File::open(dir.join(&f.path)).unwrap();
        for batch in ParquetRecordBatchReaderBuilder::try_new(file)
            .unwrap()
            .build()
            .unwrap()
        {
            let batch = batch.unwrap();
            let ids = batch
                .column_by_name("id")
                .unwrap()
                .as_primitive::<Int64Type>();
            let scores = batch
                .column_by_name("score")
                .unwrap()
                .as_primitive::<Float32Type>();
            let run = batch.column_by_name("run_id").unwrap().as_string::<i32>();
            for r in 0..batch.num_rows() {
                assert!(runs.contains(&run.value(r).to_string()));
                assert!(rows.insert(ids.value(r), scores.value(r)).is_none());
            }
        }
    }
    rows
}

/// Points the job `daily` at Parquet output under `out/dt=<date>/` instead of its table.
fn write_parquet_instead(p: &Project) {
    let job = p.path().join("jobs/daily.toml");
    let text = std::fs::read_to_string(&job)
        .unwrap()
        .replace("table = \"scores\"", "url = \"out/dt={{ ds }}/\"");
    std::fs::write(&job, text).unwrap();
}

fn manifest(dir: &std::path::Path) -> Option<Manifest> {
    let text = std::fs::read(dir.join("_manifest.json")).ok()?;
    Some(serde_json::from_slice(&text).unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn parquet_output_publishes_one_manifest_for_all_shards() {
    let (url, _pool) = fresh_pg("shards_parquet").await;
    parquet_shards(Some(&url)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn parquet_output_with_a_sqlite_ledger_is_sharded_too() {
    parquet_shards(None).await;
}

/// Two shards writing Parquet, with the ledger (and so the shards' meeting place) in `db`.
async fn parquet_shards(db: Option<&str>) {
    let p = project(20_000);
    write_parquet_instead(&p);
    let out_dir = p.path().join(format!("out/dt={DATE}"));
    assert_ok(&p.run("daily", db));
    let unsharded = manifest(&out_dir).unwrap();
    let expected = manifest_rows(&out_dir, &unsharded);
    assert_eq!(expected.len(), 20_000);

    assert_ok(&shard(&p, db, "0/2", &[]));
    assert_eq!(
        manifest(&out_dir).unwrap(),
        unsharded,
        "nothing visible yet"
    );
    let out = shard(&p, db, "1/2", &[]);
    assert_ok(&out);
    let sharded = manifest(&out_dir).unwrap();
    assert_eq!(sharded.rows, 20_000);
    assert_eq!(sharded.all_runs().len(), 2, "{sharded:?}");
    assert_eq!(manifest_rows(&out_dir, &sharded), expected);
    // The unsharded run's files stay for readers of the manifest before; the next commit
    // deletes them, and the one after that the shards' directories.
    let kept = |run: uuid::Uuid| out_dir.join("_runs").join(run.to_string()).exists();
    assert!(kept(unsharded.run_id));
    assert_ok(&p.run("daily", db));
    assert!(!kept(unsharded.run_id));
    assert!(sharded.all_runs().into_iter().all(kept));
    assert_ok(&p.run("daily", db));
    let left: Vec<String> = std::fs::read_dir(out_dir.join("_runs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    for run in sharded.all_runs() {
        assert!(!left.contains(&run.to_string()), "{left:?}");
    }
    assert_eq!(left.len(), 2, "the last two runs' files: {left:?}");
}

/// Runs shards 0 to 2 of 4 (each stages), then shard 3, whose publication finds an id in two
/// shards: exit 3, naming it (`needle`).
fn four_shards_then_a_duplicate(p: &Project, url: &str, needle: &str) {
    for spec in ["0/4", "1/4", "2/4"] {
        assert_ok(&shard(p, Some(url), spec, &[]));
    }
    let out = shard(p, Some(url), "3/4", &[]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(text(&out).contains(needle), "{}", text(&out));
}

/// Writes 4 files of 10 rows with string ids `<file>-<row>` and features f0..f7; the last file
/// repeats one id of the first.
fn write_string_ids(p: &Project) {
    use arrow::array::{ArrayRef, Float32Array, StringArray};
    let dir = p.path().join(format!("data/events/dt={DATE}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for file in 0..4 {
        let ids: Vec<String> = (0..10)
            .map(|r| {
                if file == 3 && r == 9 {
                    "0-4".to_string()
                } else {
                    format!("{file}-{r}")
                }
            })
            .collect();
        let mut cols: Vec<(String, ArrayRef)> =
            vec![("id".into(), Arc::new(StringArray::from(ids)) as ArrayRef)];
        for f in 0..8 {
            let v: Vec<f32> = (0..10).map(|r| (file * 10 + r + f) as f32 * 0.01).collect();
            cols.push((format!("f{f}"), Arc::new(Float32Array::from(v))));
        }
        let batch = arrow::record_batch::RecordBatch::try_from_iter(cols).unwrap();
        let out = std::fs::File::create(dir.join(format!("part-{file}.parquet"))).unwrap();
        let mut w = parquet::arrow::ArrowWriter::try_new(out, batch.schema(), None).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn string_ids_in_two_shards_fail_the_publication_on_both_outputs() {
    // String ids have no digest: the publishing shard checks the staged rows (PostgreSQL) or
    // the shards' files (Parquet) itself.
    let p = project(10);
    write_string_ids(&p);
    let (url, pool) = fresh_pg("shards_strings").await;
    four_shards_then_a_duplicate(&p, &url, "id 0-4 appears more than once");
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM scores")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(rows, 0);

    write_parquet_instead(&p);
    four_shards_then_a_duplicate(&p, &url, "id 0-4 appears more than once");
    assert!(manifest(&p.path().join(format!("out/dt={DATE}"))).is_none());
}

/// `rerun --from-ledger` of a date that was published by shards: the date's input is every
/// shard's share of the published attempt, the model theirs; the date is re-scored in one
/// unsharded run that reads exactly those objects and gives the same scores.
#[tokio::test]
async fn rerun_from_ledger_reproduces_a_sharded_date_in_one_run() {
    let p = project(9_000);
    let (url, pool) = fresh_pg("shard_rerun").await;
    for spec in ["0/3", "1/3", "2/3"] {
        assert_ok(&shard(&p, Some(&url), spec, &[]));
    }
    let sharded = table(&pool).await;
    assert_eq!(sharded.len(), 9_000);
    let rerun = p.scorer(
        &[
            "rerun",
            "daily",
            "--from",
            DATE,
            "--to",
            DATE,
            "--from-ledger",
        ],
        Some(&url),
    );
    assert_ok(&rerun);
    let again = table(&pool).await;
    assert_eq!(scores(&again), scores(&sharded));
    let runs = run_ids(&again);
    assert_eq!(runs.len(), 1, "one unsharded run holds the date");
    let (shard_count, objects): (Option<i32>, i64) = sqlx::query_as(
        "SELECT shard_count, jsonb_array_length(inputs)::bigint FROM scorer.runs \
         WHERE run_id = $1::uuid",
    )
    .bind(runs.iter().next().unwrap())
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        (shard_count, objects),
        (None, 3),
        "all three objects, in one run"
    );
}
