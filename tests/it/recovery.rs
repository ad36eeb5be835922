//! The recovery drill: a result table lost and rebuilt from the ledger with `scorer rerun
//! --from-ledger`, identical row for row; and the refusal when an input changed since.

use sqlx::sqlite::SqlitePool;

use crate::common::{ModelOpts, Project, assert_ok, text};

const DATES: [&str; 2] = ["2026-11-20", "2026-11-21"];

/// Every (date, id, score, run_id) of the result table, in order.
async fn table(p: &Project) -> Vec<(String, i64, f64)> {
    let pool = SqlitePool::connect(&p.sqlite_url()).await.unwrap();
    sqlx::query_as("SELECT ds, id, score FROM daily ORDER BY ds, id")
        .fetch_all(&pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_dropped_result_table_is_rebuilt_from_the_ledger_row_for_row() {
    let p = Project::new();
    p.add_model(&ModelOpts::mlp(8));
    for d in DATES {
        p.add_input("events", d, 5_000, 8, Some((2, 0.01)));
    }
    p.add_job("daily", "events", "m", "daily", "on_null = \"fill:0\"");
    for d in DATES {
        assert_ok(&p.scorer(&["run", "daily", "--date", d], None));
    }
    let before = table(&p).await;
    assert_eq!(before.len(), 10_000);

    // The disaster: the result table is gone (the ledger, backed up, is not).
    let pool = SqlitePool::connect(&p.sqlite_url()).await.unwrap();
    sqlx::query("DROP TABLE daily")
        .execute(&pool)
        .await
        .unwrap();
    let out = p.scorer(
        &[
            "rerun",
            "daily",
            "--from",
            DATES[0],
            "--to",
            DATES[1],
            "--from-ledger",
        ],
        None,
    );
    assert_ok(&out);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("2 succeeded"),
        "{}",
        text(&out)
    );
    assert_eq!(table(&p).await, before, "rebuilt row for row");

    // An input rewritten since: that date is refused, naming the object, and keeps its rows.
    p.add_input("events", DATES[1], 5_000, 8, None);
    let out = p.scorer(
        &[
            "rerun",
            "daily",
            "--from",
            DATES[1],
            "--to",
            DATES[1],
            "--from-ledger",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("cannot reproduce run")
            && said.contains("part-0000")
            && said.contains("changed"),
        "{}",
        text(&out)
    );
    assert_eq!(table(&p).await, before);
}
