//! Delta Lake output (`[output] delta`), read back by readers nobody here wrote: the `deltalake`
//! Python package and Polars' `read_delta` (scripts/delta-readers.sh installs them;
//! tests/delta/read_table.py reads). After a rerun of a date they see exactly that date's rows
//! once and the other dates untouched; a run that fails leaves the table at its version. Locally,
//! on S3 (moto) and on Azure Blob (Azurite).

use std::process::Command;

use serde_json::Value;

use crate::cloud::{AZ_ACCOUNT, AZ_KEY, create_az_container, create_s3_bucket, unique};
use crate::common::*;

const DATE2: &str = "2026-11-25";

/// The Python with `deltalake` and `polars` that scripts/test.sh sets up.
fn python() -> String {
    std::env::var("SCORER_TEST_DELTA_PYTHON").unwrap_or_else(|_| {
        panic!("SCORER_TEST_DELTA_PYTHON is not set: run the tests with scripts/test.sh")
    })
}

/// The table as `deltalake` and Polars read it (tests/delta/read_table.py's JSON).
fn read_table(url: &str, options: &Value) -> Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/delta/read_table.py");
    let out = Command::new(python())
        .args([script, url, &options.to_string()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A project with the model, 6,000 rows for DATE and 4,000 for DATE2, and the job `lake` writing
/// the Delta table `table` (with `[output.storage]` lines `storage`).
fn project(table: &str, storage: &str) -> Project {
    let p = Project::new();
    p.add_model(&ModelOpts::mlp(8));
    p.add_input("events", DATE, 6_000, 8, Some((3, 0.01)));
    p.add_input("events", DATE2, 4_000, 8, None);
    std::fs::create_dir_all(p.path().join("jobs")).unwrap();
    std::fs::write(
        p.path().join("jobs/lake.toml"),
        events_job_toml("lake", &format!("delta = \"{table}\"\n{storage}")),
    )
    .unwrap();
    p
}

/// Runs `lake` for `date`, asserting success.
fn run(p: &Project, date: &str, env: &[(&str, &str)]) -> String {
    let out = p.scorer_env(&["run", "lake", "--date", date], None, env);
    assert!(out.status.success(), "{}", text(&out));
    text(&out)
}

/// The run id scorer printed.
fn run_id(said: &str) -> String {
    said.split("(run ")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .unwrap_or_else(|| panic!("no run id in {said}"))
        .to_string()
}

/// Both readers see `rows` rows of `date`, each id once, all from `run`.
fn assert_date(table: &Value, date: &str, rows: u64, run: &str) {
    for reader in ["deltalake", "polars"] {
        let day = &table[reader][date];
        assert_eq!(day["rows"], rows, "{reader} {date}: {table}");
        assert_eq!(day["ids"], rows, "{reader} {date}: {table}");
        assert_eq!(day["run_ids"], serde_json::json!([run]), "{reader} {date}");
    }
}

/// Two dates, a rerun of the first with fewer rows, then a failing run of it: the readers see
/// each date's last run's rows once, the failed run changes nothing, and the history carries
/// each commit's run.
fn reruns_replace_one_date(p: &Project, url: &str, options: &Value, env: &[(&str, &str)]) {
    let first = run_id(&run(p, DATE, env));
    let second = run_id(&run(p, DATE2, env));
    let t = read_table(url, options);
    assert_eq!(
        t["columns"],
        serde_json::json!(["id", "score", "run_id", "ds"])
    );
    assert_eq!(t["partition_columns"], serde_json::json!(["ds"]));
    assert_date(&t, DATE, 6_000, &first);
    assert_date(&t, DATE2, 4_000, &second);

    // The date's input shrinks to 3,500 rows and the date is rerun.
    std::fs::remove_dir_all(p.path().join(format!("data/events/dt={DATE}"))).unwrap();
    p.add_input("events", DATE, 3_500, 8, None);
    let rerun = run_id(&run(p, DATE, env));
    let t = read_table(url, options);
    assert_date(&t, DATE, 3_500, &rerun);
    assert_date(&t, DATE2, 4_000, &second);
    let version = t["version"].clone();
    let history = t["history"].as_array().unwrap();
    let newest = &history[0];
    assert_eq!(newest["operation"], "WRITE", "{newest}");
    assert_eq!(newest["scorer"]["run_id"], rerun.as_str(), "{newest}");
    assert_eq!(newest["scorer"]["logical_date"], DATE, "{newest}");

    // A run that fails after writing its files (fewer rows than output.min_rows allows)
    // leaves the table at its version, with the same rows.
    let job = p.path().join("jobs/lake.toml");
    let spec = std::fs::read_to_string(&job).unwrap();
    std::fs::write(
        &job,
        spec.replace("[output]\n", "[output]\nmin_rows = 1000000\n"),
    )
    .unwrap();
    let failed = p.scorer_env(&["run", "lake", "--date", DATE], None, env);
    assert!(!failed.status.success(), "{}", text(&failed));
    std::fs::write(&job, spec).unwrap();
    let t = read_table(url, options);
    assert_eq!(t["version"], version);
    assert_date(&t, DATE, 3_500, &rerun);
    assert_date(&t, DATE2, 4_000, &second);
}

#[test]
fn a_local_delta_table_is_read_by_deltalake_and_polars() {
    let lake = tempfile::tempdir().unwrap();
    let table = lake.path().join("scores");
    let p = project(table.to_str().unwrap(), "");
    let url = format!("file://{}", table.display());
    reruns_replace_one_date(&p, &url, &serde_json::json!({}), &[]);
    // Only the committed files remain in the date's directory: the failed run's were deleted
    // and the replaced ones are Delta's to vacuum (the previous versions still name them).
    let day: Vec<_> = std::fs::read_dir(table.join(format!("ds={DATE}")))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    assert_eq!(day.len(), 2, "{day:?}");

    // With output.delta_vacuum, the next commit's vacuum deletes the files older versions
    // removed, and only those: each date keeps the one file its current version names.
    let job = p.path().join("jobs/lake.toml");
    let spec = std::fs::read_to_string(&job).unwrap();
    std::fs::write(
        &job,
        spec.replace("[output]\n", "[output]\ndelta_vacuum = \"0s\"\n"),
    )
    .unwrap();
    let latest = run_id(&run(&p, DATE2, &[]));
    for date in [DATE, DATE2] {
        let files = std::fs::read_dir(table.join(format!("ds={date}")))
            .unwrap()
            .count();
        assert_eq!(files, 1, "{date}");
    }
    let t = read_table(&url, &serde_json::json!({}));
    assert_eq!(t["deltalake"][DATE]["rows"], 3_500);
    assert_date(&t, DATE2, 4_000, &latest);
}

#[test]
fn a_delta_table_on_s3_is_read_by_deltalake_and_polars() {
    let bucket = unique("scorerdelta");
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(create_s3_bucket(&bucket));
    let endpoint = crate::cloud::s3_endpoint();
    let storage = "[output.storage]\nendpoint = \"${SCORER_TEST_S3_ENDPOINT}\"\nallow_http = true\nregion = \"us-east-1\"\nmax_retries = 1";
    let url = format!("s3://{bucket}/lake/scores");
    let p = project(&url, storage);
    let options = serde_json::json!({
        "aws_endpoint_url": endpoint,
        "aws_access_key_id": "test",
        "aws_secret_access_key": "test",
        "aws_region": "us-east-1",
        "allow_http": "true",
    });
    let env = [
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
    ];
    reruns_replace_one_date(&p, &url, &options, &env);
}

#[test]
fn a_delta_table_on_azure_is_read_by_deltalake_and_polars() {
    let container = unique("scorerdelta");
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(create_az_container(&container));
    let endpoint = std::env::var("SCORER_TEST_AZURITE_ENDPOINT").unwrap();
    let storage = "[output.storage]\nendpoint = \"${SCORER_TEST_AZURITE_ENDPOINT}\"\nallow_http = true\naccount = \"devstoreaccount1\"\naccount_key = \"${TEST_AZURE_KEY}\"\nmax_retries = 1";
    let url = format!("az://{container}/lake/scores");
    let p = project(&url, storage);
    let options = serde_json::json!({
        "azure_storage_account_name": AZ_ACCOUNT,
        "azure_storage_account_key": AZ_KEY,
        "azure_storage_endpoint": endpoint,
        "allow_http": "true",
    });
    // Azurite has no list-from (`startFrom`), which reading the Delta log uses: object_store
    // filters client-side in its emulator mode, which these two variables select.
    let emulator = endpoint.trim_end_matches(&format!("/{AZ_ACCOUNT}"));
    let env = [
        ("TEST_AZURE_KEY", AZ_KEY),
        ("AZURE_STORAGE_USE_EMULATOR", "true"),
        ("AZURITE_BLOB_STORAGE_URL", emulator),
    ];
    reruns_replace_one_date(&p, &url, &options, &env);
}

/// A project with the model and tests/delta/write_input.py's tables and files under data/.
fn deltalake_input() -> Project {
    deltalake_input_with(&[])
}

/// As [`deltalake_input`], with write_input.py's extra arguments.
fn deltalake_input_with(extra: &[&str]) -> Project {
    let p = Project::new();
    p.add_model(&ModelOpts::mlp(8));
    std::fs::create_dir_all(p.path().join("jobs")).unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/delta/write_input.py");
    let out = Command::new(python())
        .args([script, p.path().join("data").to_str().unwrap()])
        .args(extra)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    p
}

/// A job whose input is `input` (lines of `[input]` after the id column) and whose output is the
/// SQLite table `table`.
fn input_job(p: &Project, name: &str, input: &str, table: &str) {
    std::fs::write(
        p.path().join(format!("jobs/{name}.toml")),
        format!(
            "name = \"{name}\"\n[input]\n{input}\nid_column = \"id\"\n[model]\nname = \"m\"\n\
             version = \"1\"\n[output]\ntable = \"{table}\"\n"
        ),
    )
    .unwrap();
}

/// (id, score) of every row of the SQLite table `table` for DATE.
fn sqlite_scores(p: &Project, table: &str) -> Vec<(i64, f64)> {
    let url = p.sqlite_url();
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT id, score FROM {table} WHERE ds = '{DATE}' ORDER BY id"
        )))
        .fetch_all(&pool)
        .await
        .unwrap()
    })
}

/// A Delta table written by the `deltalake` package (partitioned by ds; an overwrite of one
/// date's partition and an append after it, so four versions) scores exactly as the same rows
/// given as plain Parquet; `delta_version` reads an older version; the ledger records the
/// version read with each input object.
#[test]
fn a_delta_table_from_deltalake_scores_as_the_same_rows_in_parquet() {
    let p = deltalake_input();
    input_job(
        &p,
        "from_delta",
        "delta = \"data/events_delta\"",
        "from_delta",
    );
    input_job(
        &p,
        "from_parquet",
        "url = \"data/events_parquet/dt={{ ds }}/*.parquet\"",
        "from_parquet",
    );
    input_job(
        &p,
        "from_delta_v1",
        "delta = \"data/events_delta\"\ndelta_version = 1",
        "from_delta_v1",
    );
    input_job(
        &p,
        "from_parquet_v1",
        "url = \"data/events_parquet_v1/dt={{ ds }}/*.parquet\"",
        "from_parquet_v1",
    );
    let mut run_ids = Vec::new();
    for job in [
        "from_delta",
        "from_parquet",
        "from_delta_v1",
        "from_parquet_v1",
    ] {
        let out = p.scorer(&["run", job, "--date", DATE], None);
        assert_ok(&out);
        run_ids.push(run_id(&text(&out)));
    }
    let latest = sqlite_scores(&p, "from_delta");
    assert_eq!(latest.len(), 2_500);
    assert_eq!(latest, sqlite_scores(&p, "from_parquet"));
    let v1 = sqlite_scores(&p, "from_delta_v1");
    assert_eq!(v1.len(), 3_000);
    assert_eq!(v1, sqlite_scores(&p, "from_parquet_v1"));
    assert_ne!(
        &v1[..2_000],
        &latest[..2_000],
        "version 1's rows were overwritten"
    );

    let shown = p.scorer(&["show", &run_ids[0]], None);
    assert_ok(&shown);
    let run: Value = serde_json::from_slice(&shown.stdout).unwrap();
    let inputs = &run["inputs"];
    let objects = inputs.as_array().unwrap_or_else(|| panic!("{run}"));
    assert_eq!(objects.len(), 2, "{inputs}");
    for o in objects {
        assert_eq!(o["delta_version"], 3, "{o}");
        assert!(o["url"].as_str().unwrap().contains("ds=2026-11-24/"), "{o}");
    }
}

/// Tables as engines leave them, written by `deltalake`: column mapping in `name` and `id` mode
/// (the files' columns are `col-<uuid>`, the job names the logical columns), a table of 300
/// versions whose early log is gone behind checkpoints, and deletion vectors (a commit that
/// deletes rows from two files without rewriting them; write_input.py says why by hand). Each
/// scores exactly as the same rows in plain Parquet (after the deletes).
#[test]
fn delta_tables_as_engines_leave_them_score_as_the_same_rows_in_parquet() {
    let p = deltalake_input_with(&["--engines-defaults"]);
    let jobs = [
        ("mapped_name", "delta = \"data/events_delta_name\""),
        ("mapped_id", "delta = \"data/events_delta_id\""),
        ("long_lived", "delta = \"data/events_delta_long\""),
        ("with_deletions", "delta = \"data/events_delta_dv\""),
        (
            "plain_after_deletes",
            "url = \"data/events_parquet_dv/dt={{ ds }}/*.parquet\"",
        ),
        (
            "plain",
            "url = \"data/events_parquet/dt={{ ds }}/*.parquet\"",
        ),
        (
            "plain_v1",
            "url = \"data/events_parquet_v1/dt={{ ds }}/*.parquet\"",
        ),
    ];
    for (job, input) in jobs {
        input_job(&p, job, input, job);
        assert_ok(&p.scorer(&["run", job, "--date", DATE], None));
    }
    let plain = sqlite_scores(&p, "plain");
    assert_eq!(plain.len(), 2_500);
    assert_eq!(
        sqlite_scores(&p, "mapped_name"),
        plain,
        "column mapping `name`"
    );
    assert_eq!(sqlite_scores(&p, "mapped_id"), plain, "column mapping `id`");
    let v1 = sqlite_scores(&p, "plain_v1");
    assert_eq!(v1.len(), 3_000);
    assert_eq!(
        sqlite_scores(&p, "long_lived"),
        v1,
        "300 versions, checkpoints"
    );
    // Deletion vectors (inline, and in a file): the deleted rows are not scored.
    let after_deletes = sqlite_scores(&p, "plain_after_deletes");
    assert_eq!(after_deletes.len(), 3_000 - 103 - 215);
    assert_eq!(
        sqlite_scores(&p, "with_deletions"),
        after_deletes,
        "deletion vectors"
    );

    // A column the job names that the mapped table lacks is named with the table's columns.
    std::fs::write(
        p.path().join("jobs/missing.toml"),
        "name = \"missing\"\n[input]\ndelta = \"data/events_delta_name\"\nid_column = \"ident\"\n\
         [model]\nname = \"m\"\nversion = \"1\"\n[output]\ntable = \"missing\"\n",
    )
    .unwrap();
    let out = p.scorer(&["run", "missing", "--date", DATE], None);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("has no column `ident` (its columns: ds, f0"),
        "{}",
        text(&out)
    );
}

/// A table not partitioned by the date column is refused before reading, naming its partition
/// columns and the setting.
#[test]
fn a_delta_input_not_partitioned_by_the_date_column_is_refused() {
    let p = deltalake_input();
    input_job(
        &p,
        "wrong",
        "delta = \"data/events_delta\"\ndelta_date_column = \"day\"",
        "wrong",
    );
    let out = p.scorer(&["run", "wrong", "--date", DATE], None);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("partitioned by (ds), not by `day`"),
        "{}",
        text(&out)
    );
}

/// Reruns of four dates started together commit into one table without losing each other's
/// work: each removes its date's files, which delta-rs (without DataFusion) takes as conflicting
/// with every concurrent commit; the losers list their date afresh and retry, and the readers
/// see every date's rows from its rerun.
#[test]
fn concurrent_runs_of_different_dates_all_land() {
    let lake = tempfile::tempdir().unwrap();
    let table = lake.path().join("scores");
    let p = project(table.to_str().unwrap(), "");
    let dates = [DATE, DATE2, "2026-11-26", "2026-11-27"];
    for date in &dates[2..] {
        p.add_input("events", date, 3_000, 8, None);
    }
    // Every date has rows first, so each rerun removes files.
    for date in dates {
        run(&p, date, &[]);
    }
    let children: Vec<_> = dates
        .iter()
        .map(|d| {
            p.command(&["run", "lake", "--date", d], None)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut runs = Vec::new();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", text(&out));
        runs.push(run_id(&text(&out)));
    }
    let url = format!("file://{}", table.display());
    let t = read_table(&url, &serde_json::json!({}));
    for ((date, rows), run) in dates.iter().zip([6_000, 4_000, 3_000, 3_000]).zip(&runs) {
        assert_date(&t, date, rows, run);
    }
    assert_eq!(
        t["version"], 8,
        "the creation, four first runs, four reruns"
    );
}

/// A local table with DATE's first run committed, then a rerun of DATE over 400,000 rows,
/// started and running (its ledger row written): the project, the first run's id, the rerun.
async fn rerun_in_flight(table: &std::path::Path) -> (Project, String, std::process::Child) {
    let p = project(table.to_str().unwrap(), "");
    let first = run_id(&run(&p, DATE, &[]));
    std::fs::remove_dir_all(p.path().join(format!("data/events/dt={DATE}"))).unwrap();
    p.add_input("events", DATE, 400_000, 8, None);
    let child = p.spawn_run("lake", None);
    wait_for("the rerun to start", 60, || async {
        running_runs(&p).await == Some(1)
    })
    .await;
    (p, first, child)
}

/// A rerun cancelled with SIGTERM while it scores exits 6 and leaves the table at its version,
/// with no file of its own left in the date's directory.
#[tokio::test]
async fn a_cancelled_run_leaves_the_table_at_its_version() {
    let lake = tempfile::tempdir().unwrap();
    let table = lake.path().join("scores");
    let url = format!("file://{}", table.display());
    let (_p, first, child) = rerun_in_flight(&table).await;
    let pid = child.id();
    signal(pid, "STOP");
    signal(pid, "TERM");
    signal(pid, "CONT");
    let out = finish(child).await;
    assert_eq!(out.status.code(), Some(6), "{}", text(&out));
    let after = read_table(&url, &serde_json::json!({}));
    assert_eq!(after["version"], 1, "the creation and the first run only");
    assert_date(&after, DATE, 6_000, &first);
    let files = std::fs::read_dir(table.join(format!("ds={DATE}")))
        .unwrap()
        .count();
    assert_eq!(files, 1, "the cancelled run's files are gone");
}

/// A date scored as two shards (`--shard 0/2`, then `1/2`): nothing of it is visible until the
/// last shard commits every shard's files in one Delta version; the readers then see each id
/// once, from the two shards' runs.
#[test]
fn sharded_runs_commit_every_shard_in_one_version() {
    let lake = tempfile::tempdir().unwrap();
    let table = lake.path().join("scores");
    let p = project(table.to_str().unwrap(), "");
    let url = format!("file://{}", table.display());
    let shard = |spec: &str| {
        let out = p.scorer(&["run", "lake", "--date", DATE, "--shard", spec], None);
        assert!(out.status.success(), "{}", text(&out));
        run_id(&text(&out))
    };
    let first = shard("0/2");
    let before = read_table(&url, &serde_json::json!({}));
    assert!(before["deltalake"].get(DATE).is_none(), "{before}");
    let second = shard("1/2");
    let t = read_table(&url, &serde_json::json!({}));
    assert_eq!(
        t["version"], 1,
        "the creation, then one commit of both shards"
    );
    for reader in ["deltalake", "polars"] {
        let day = &t[reader][DATE];
        assert_eq!(day["rows"], 6_000, "{reader}: {t}");
        assert_eq!(day["ids"], 6_000, "{reader}: {t}");
        let mut runs = vec![first.clone(), second.clone()];
        runs.sort();
        assert_eq!(day["run_ids"], serde_json::json!(runs), "{reader}");
    }
}

/// `output.retention_days = 2`: the run of the third date removes the first from the table's
/// current version in one commit, and the ledger records the date dropped.
#[test]
fn retention_removes_expired_dates_from_the_table() {
    let lake = tempfile::tempdir().unwrap();
    let table = lake.path().join("scores");
    let p = project(table.to_str().unwrap(), "retention_days = 2");
    let third = "2026-11-26";
    p.add_input("events", third, 3_000, 8, None);
    run(&p, DATE, &[]);
    run(&p, DATE2, &[]);
    let last = run_id(&run(&p, third, &[]));
    let url = format!("file://{}", table.display());
    let t = read_table(&url, &serde_json::json!({}));
    for reader in ["deltalake", "polars"] {
        let dates: Vec<&String> = t[reader].as_object().unwrap().keys().collect();
        assert_eq!(dates, vec![DATE2, third], "{reader}: {t}");
    }
    assert_eq!(t["history"][0]["operation"], "DELETE", "{t}");
    let shown = p.scorer(&["show", &last], None);
    assert_ok(&shown);
    let run: Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(
        run["retention"]["dropped"],
        serde_json::json!([DATE]),
        "{run}"
    );
}

/// A run killed with SIGKILL leaves files no version names; `scorer gc` marks it abandoned and
/// deletes those files (found by its run id), never the committed ones.
#[tokio::test]
async fn gc_removes_a_killed_runs_uncommitted_files() {
    let lake = tempfile::tempdir().unwrap();
    let table = lake.path().join("scores");
    let day = table.join(format!("ds={DATE}"));
    let (p, first, child) = rerun_in_flight(&table).await;
    let committed: Vec<_> = std::fs::read_dir(&day)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(committed.len(), 1);
    signal(child.id(), "KILL");
    let out = finish(child).await;
    assert_eq!(out.status.code(), None, "{}", text(&out));
    // What the killed run had written, or would have: a data file named with its run id.
    let pool = sqlx::SqlitePool::connect(&p.sqlite_url()).await.unwrap();
    let killed: String =
        sqlx::query_scalar("SELECT run_id FROM scorer_runs WHERE status = 'running'")
            .fetch_one(&pool)
            .await
            .unwrap();
    let leftover = day.join(format!("part-00000-{killed}.zstd.parquet"));
    if !leftover.exists() {
        std::fs::copy(&committed[0], &leftover).unwrap();
    }

    let gc = p.scorer(&["gc", "lake", "--stale-after", "0s"], None);
    assert_ok(&gc);
    let said = String::from_utf8_lossy(&gc.stdout);
    assert!(said.contains("1 dead run(s) marked abandoned"), "{said}");
    assert!(!leftover.exists(), "gc left {}", leftover.display());
    assert!(committed[0].exists(), "gc deleted a committed file");
    let t = read_table(
        &format!("file://{}", table.display()),
        &serde_json::json!({}),
    );
    assert_date(&t, DATE, 6_000, &first);
}
