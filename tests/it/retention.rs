//! `output.retention_days`: after each publication the dates before the window ending at the
//! run's date are dropped, exactly those, in each kind of output (PostgreSQL partitions, SQLite
//! rows, Parquet date directories), quarantines included, and the ledger says which.

use sqlx::{PgPool, SqlitePool};

use crate::common::{ModelOpts, Project, assert_ok, fresh_pg};

const DATES: [&str; 5] = [
    "2026-11-20",
    "2026-11-21",
    "2026-11-22",
    "2026-11-19",
    "2026-11-23",
];

/// A project with input for every date (1% nulls in f3, skipped into the quarantine) and the job
/// `kept` writing to `output` (`table = …` or `url = …`) with retention_days = 2.
fn project(output: &str) -> Project {
    let p = Project::new();
    p.add_model(&ModelOpts::mlp(8));
    for d in DATES {
        p.add_input("events", d, 500, 8, Some((3, 0.01)));
    }
    let path = p.add_job("kept", "events", "m", "unused", "on_null = \"skip\"");
    let toml = std::fs::read_to_string(&path).unwrap().replace(
        "table = \"unused\"",
        &format!("{output}\nretention_days = 2"),
    );
    std::fs::write(&path, toml).unwrap();
    p
}

/// Runs every date in order; after 11-22 the window is 11-21..11-22, the backfill of 11-19
/// drops nothing newer than its own window, and 11-23 keeps 11-22..11-23.
fn run_all(p: &Project, db: Option<&str>) {
    for d in DATES {
        assert_ok(&p.scorer(&["run", "kept", "--date", d], db));
    }
}

fn expected_last() -> serde_json::Value {
    serde_json::json!({"before": "2026-11-22", "dropped": ["2026-11-19", "2026-11-21"]})
}

#[tokio::test]
async fn postgres_partitions_and_quarantine_rows_before_the_window_are_dropped() {
    let p = project("table = \"kept_scores\"");
    let (url, pool): (String, PgPool) = fresh_pg("retention").await;
    run_all(&p, Some(&url));
    let dates: Vec<String> =
        sqlx::query_scalar("SELECT DISTINCT ds::text FROM kept_scores ORDER BY 1")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(dates, ["2026-11-22", "2026-11-23"]);
    let partitions: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_inherits WHERE inhparent = 'kept_scores'::regclass",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(partitions, 2);
    let quarantined: Vec<String> =
        sqlx::query_scalar("SELECT DISTINCT ds::text FROM kept_scores_quarantine ORDER BY 1")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(quarantined, ["2026-11-22", "2026-11-23"]);
    let recorded: Vec<(String, Option<serde_json::Value>)> =
        sqlx::query_as("SELECT logical_date::text, retention FROM scorer.runs ORDER BY started_at")
            .fetch_all(&pool)
            .await
            .unwrap();
    let dropped: Vec<(&str, serde_json::Value)> = recorded
        .iter()
        .map(|(d, r)| (d.as_str(), r.clone().unwrap()["dropped"].clone()))
        .collect();
    assert_eq!(
        dropped,
        [
            ("2026-11-20", serde_json::json!([])),
            ("2026-11-21", serde_json::json!([])),
            ("2026-11-22", serde_json::json!(["2026-11-20"])),
            ("2026-11-19", serde_json::json!([])),
            (
                "2026-11-23",
                serde_json::json!(["2026-11-19", "2026-11-21"])
            ),
        ]
    );
    assert_eq!(recorded[4].1.clone().unwrap(), expected_last());
}

#[tokio::test]
async fn sqlite_rows_before_the_window_are_deleted() {
    let p = project("table = \"kept_scores\"");
    run_all(&p, None);
    let pool = SqlitePool::connect(&p.sqlite_url()).await.unwrap();
    for table in ["kept_scores", "kept_scores_quarantine"] {
        let dates: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT DISTINCT ds FROM {table} ORDER BY 1"
        )))
        .fetch_all(&pool)
        .await
        .unwrap();
        assert_eq!(dates, ["2026-11-22", "2026-11-23"], "{table}");
    }
    assert_eq!(last_retention(&pool).await, expected_last());
}

#[tokio::test]
async fn parquet_date_directories_before_the_window_are_removed() {
    let p = project("url = \"out/dt={{ ds }}/\"");
    run_all(&p, None);
    for d in DATES {
        let dir = p.path().join(format!("out/dt={d}"));
        let manifest = dir.join("_manifest.json").exists();
        let files = walk(&dir);
        if ["2026-11-22", "2026-11-23"].contains(&d) {
            assert!(manifest && files > 1, "{d} is kept");
        } else {
            assert!(
                !manifest && files == 0,
                "{d} is dropped ({files} files left)"
            );
        }
    }
    let pool = SqlitePool::connect(&p.sqlite_url()).await.unwrap();
    assert_eq!(last_retention(&pool).await, expected_last());
}

/// The SQLite ledger's `retention` of the last date's run.
async fn last_retention(pool: &SqlitePool) -> serde_json::Value {
    let last: String =
        sqlx::query_scalar("SELECT retention FROM scorer_runs WHERE logical_date = '2026-11-23'")
            .fetch_one(pool)
            .await
            .unwrap();
    serde_json::from_str(&last).unwrap()
}

/// Files under `dir` at any depth (0 when it is gone).
fn walk(dir: &std::path::Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .map(|e| e.unwrap().path())
        .map(|p| if p.is_dir() { walk(&p) } else { 1 })
        .sum()
}
