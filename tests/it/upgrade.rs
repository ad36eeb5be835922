//! Upgrades: a ledger left by every earlier schema state, with runs written in that state's
//! shape, opened by today's scorer. The remaining migrations apply, every earlier run is still
//! listed by `scorer runs` and shown by `scorer show`, and (SQLite) a rerun of an old date
//! replaces the rows that date's run published.

use std::path::{Path, PathBuf};

use sqlx::migrate::Migrator;

use crate::common::{DATE, ModelOpts, Project, assert_ok, fresh_pg, text};

fn migrations(engine: &str) -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("sql/{engine}/migrations"));
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "sql"))
        .collect();
    files.sort();
    files
}

/// A migrator of the first `k` migration files, as an older scorer embedded them.
async fn first(engine: &str, k: usize, scratch: &Path) -> Migrator {
    let dir = scratch.join(format!("{engine}-{k}"));
    std::fs::create_dir_all(&dir).unwrap();
    for file in &migrations(engine)[..k] {
        std::fs::copy(file, dir.join(file.file_name().unwrap())).unwrap();
    }
    Migrator::new(dir.as_path()).await.unwrap()
}

/// An INSERT of a succeeded run of date `date` into `table`, filling the columns it has at this
/// state (`columns`) that an old scorer filled.
fn old_run(table: &str, columns: &[String], run_id: &str, date: &str, state: usize) -> String {
    let at = format!("{date}T02:00:00.000Z");
    let known: [(&str, String); 17] = [
        ("run_id", format!("'{run_id}'")),
        ("job", "'upgraded'".into()),
        ("logical_date", format!("'{date}'")),
        ("status", "'succeeded'".into()),
        ("started_at", format!("'{at}'")),
        ("finished_at", format!("'{at}'")),
        ("heartbeat_at", format!("'{at}'")),
        ("output_table", "'upgraded_scores'".into()),
        ("rows_read", "500".into()),
        ("rows_scored", "500".into()),
        ("rows_written", "500".into()),
        ("rows_rejected", "0".into()),
        ("inputs", "'[]'".into()),
        ("model_name", "'m'".into()),
        ("model_version", "'1'".into()),
        ("scorer_version", format!("'state-{state}'")),
        ("host", "'old-host'".into()),
    ];
    let (names, values): (Vec<&str>, Vec<String>) = known
        .iter()
        .filter(|(name, _)| columns.iter().any(|c| c == name))
        .map(|(name, value)| (*name, value.clone()))
        .unzip();
    format!(
        "INSERT INTO {table} ({}) VALUES ({})",
        names.join(", "),
        values.join(", ")
    )
}

/// The dates of the old runs: one per schema state, in October.
fn old_date(state: usize) -> String {
    format!("2026-10-{state:02}")
}

fn project() -> Project {
    let p = Project::new();
    p.add_model(&ModelOpts::mlp(8));
    p.add_input("events", DATE, 500, 8, None);
    p.add_job("upgraded", "events", "m", "upgraded_scores", "");
    p
}

/// Today's scorer over the ledger: every old run listed and shown, then a run of its own.
fn check_opened_by_today(p: &Project, db: Option<&str>, run_ids: &[String]) {
    let runs = p.scorer(
        &["runs", "upgraded", "--last", "100", "--format", "json"],
        db,
    );
    assert_ok(&runs);
    let listed: serde_json::Value = serde_json::from_slice(&runs.stdout).unwrap();
    let listed: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["run_id"].as_str())
        .collect();
    for id in run_ids {
        assert!(
            listed.contains(&id.as_str()),
            "run {id} not listed: {listed:?}"
        );
        let show = p.scorer(&["show", id], db);
        assert_ok(&show);
        assert!(
            String::from_utf8_lossy(&show.stdout).contains(id.as_str()),
            "{}",
            text(&show)
        );
    }
    assert_ok(&p.run("jobs/upgraded.toml", db));
}

/// The input of the first old date: the same files as today's.
fn old_input(p: &Project) -> String {
    let date = old_date(1);
    let input = p.path().join(format!("data/events/dt={date}"));
    std::fs::create_dir_all(&input).unwrap();
    for entry in std::fs::read_dir(p.path().join(format!("data/events/dt={DATE}"))).unwrap() {
        let from = entry.unwrap().path();
        std::fs::copy(&from, input.join(from.file_name().unwrap())).unwrap();
    }
    date
}

/// SQLite: from every schema state, with a run of each earlier state's shape, today's scorer
/// migrates the rest; and a rerun of an old date replaces the rows its old run published.
#[tokio::test]
async fn a_sqlite_ledger_from_every_earlier_state_is_upgraded_in_place() {
    let all = migrations("sqlite").len();
    let scratch = tempfile::tempdir().unwrap();
    for k in 1..all {
        let p = project();
        let url = format!("{}?mode=rwc", p.sqlite_url());
        let pool = sqlx::sqlite::SqlitePool::connect(&url).await.unwrap();
        let mut run_ids = Vec::new();
        for state in 1..=k {
            first("sqlite", state, scratch.path())
                .await
                .run(&pool)
                .await
                .unwrap();
            let columns: Vec<String> =
                sqlx::query_scalar("SELECT name FROM pragma_table_info('scorer_runs')")
                    .fetch_all(&pool)
                    .await
                    .unwrap();
            let id = uuid::Uuid::now_v7().to_string();
            sqlx::raw_sql(sqlx::AssertSqlSafe(old_run(
                "scorer_runs",
                &columns,
                &id,
                &old_date(state),
                state,
            )))
            .execute(&pool)
            .await
            .unwrap();
            run_ids.push(id);
        }
        pool.close().await;
        check_opened_by_today(&p, None, &run_ids);
        // A rerun of an old date: its rows become the new run's, and only those.
        let date = old_input(&p);
        let pool = sqlx::sqlite::SqlitePool::connect(&p.sqlite_url())
            .await
            .unwrap();
        sqlx::query("INSERT INTO upgraded_scores (id, ds, score, run_id) SELECT id + 1000000, ?1, score, ?2 FROM upgraded_scores")
            .bind(&date)
            .bind(&run_ids[0])
            .execute(&pool)
            .await
            .unwrap();
        let rerun = p.scorer(&["run", "jobs/upgraded.toml", "--date", &date], None);
        assert_ok(&rerun);
        let (rows, old): (i64, i64) = sqlx::query_as(
            "SELECT count(*), count(*) FILTER (WHERE run_id = ?2) FROM upgraded_scores WHERE ds = ?1",
        )
        .bind(&date)
        .bind(&run_ids[0])
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!(
            (rows, old),
            (500, 0),
            "state {k}: the old date holds the rerun's rows only"
        );
    }
}

/// PostgreSQL: the same from every schema state, the ledger in its `scorer` schema.
#[tokio::test]
async fn a_postgres_ledger_from_every_earlier_state_is_upgraded_in_place() {
    let all = migrations("postgres").len();
    let scratch = tempfile::tempdir().unwrap();
    for k in 1..all {
        let (url, pool) = fresh_pg(&format!("upgrade{k}")).await;
        let p = project();
        let mut run_ids = Vec::new();
        for state in 1..=k {
            let mut m = first("postgres", state, scratch.path()).await;
            m.create_schema("scorer");
            m.dangerous_set_table_name("scorer._sqlx_migrations");
            m.run(&pool).await.unwrap();
            let columns: Vec<String> = sqlx::query_scalar(
                "SELECT column_name::text FROM information_schema.columns \
                 WHERE table_schema = 'scorer' AND table_name = 'runs'",
            )
            .fetch_all(&pool)
            .await
            .unwrap();
            let id = uuid::Uuid::now_v7().to_string();
            sqlx::raw_sql(sqlx::AssertSqlSafe(old_run(
                "scorer.runs",
                &columns,
                &id,
                &old_date(state),
                state,
            )))
            .execute(&pool)
            .await
            .unwrap();
            run_ids.push(id);
        }
        check_opened_by_today(&p, Some(&url), &run_ids);
        if k > 1 {
            continue;
        }
        // From the oldest state, also a rerun of the old date over its old run's rows.
        // The results are partitioned by date: the date's partition and rows come from a run,
        // then become the old run's, as if it had published them.
        let date = old_input(&p);
        assert_ok(&p.scorer(&["run", "jobs/upgraded.toml", "--date", &date], Some(&url)));
        sqlx::query("UPDATE upgraded_scores SET run_id = $2::uuid WHERE ds = $1::date")
            .bind(&date)
            .bind(&run_ids[0])
            .execute(&pool)
            .await
            .unwrap();
        assert_ok(&p.scorer(&["run", "jobs/upgraded.toml", "--date", &date], Some(&url)));
        let (rows, old): (i64, i64) = sqlx::query_as(
            "SELECT count(*), count(*) FILTER (WHERE run_id = $2::uuid) FROM upgraded_scores \
             WHERE ds = $1::date",
        )
        .bind(&date)
        .bind(&run_ids[0])
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!(
            (rows, old),
            (500, 0),
            "the old date holds the rerun's rows only"
        );
    }
}

/// PostgreSQL: a ledger a newer scorer migrated (a migration this binary does not know) is
/// refused at start with exit 2, and nothing is written to it.
#[tokio::test]
async fn a_postgres_ledger_migrated_by_a_newer_scorer_is_refused_and_left_alone() {
    let (url, pool) = fresh_pg("newer").await;
    let p = project();
    assert_ok(&p.run("jobs/upgraded.toml", Some(&url)));
    sqlx::query(
        "INSERT INTO scorer._sqlx_migrations (version, description, success, checksum, \
         execution_time) VALUES (9999, 'from a newer scorer', true, '\\x00', 0)",
    )
    .execute(&pool)
    .await
    .unwrap();
    let runs = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM scorer.runs")
            .fetch_one(&pool)
            .await
            .unwrap()
    };
    let before = runs().await;
    let out = p.run("jobs/upgraded.toml", Some(&url));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("migrated by a newer scorer (ledger schema 9999"),
        "{}",
        text(&out)
    );
    assert_eq!(runs().await, before, "the refused run wrote a ledger row");
}
