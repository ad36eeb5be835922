//! What analysts query: the README's "Querying results" examples run as written against a real
//! PostgreSQL, the `_latest` view, the table and column comments and the id index; and the
//! `_latest` view in SQLite.

use crate::common::*;

/// The SQL statements of the README's "Querying results" section, comments removed.
fn readme_queries() -> Vec<String> {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let start = readme.find("## Querying results").unwrap();
    let section = &readme[start..];
    let section = &section[..section[3..].find("\n## ").unwrap() + 3];
    let sql = section
        .split("```sql")
        .nth(1)
        .unwrap()
        .split("```")
        .next()
        .unwrap();
    let text: String = sql
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .map(|l| format!("{l}\n"))
        .collect();
    text.split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

fn project(table: &str) -> Project {
    let p = Project::new();
    p.add_model(&ModelOpts::mlp(8));
    for date in ["2026-11-23", "2026-11-24"] {
        p.add_input("events", date, 5_000, 8, None);
    }
    let job = p.add_job("churn_daily", "events", "m", table, "");
    let text = std::fs::read_to_string(&job).unwrap() + "index = true\n";
    std::fs::write(&job, text).unwrap();
    p
}

#[tokio::test]
async fn the_readme_queries_run_and_the_table_explains_itself() {
    let p = project("scores.churn_daily");
    let (url, pool) = fresh_pg("analyst").await;
    // The newest date first, then a backfill of the day before: _latest stays on the newest.
    for date in ["2026-11-24", "2026-11-23"] {
        assert_ok(&p.scorer(&["run", "churn_daily", "--date", date], Some(&url)));
    }
    let queries = readme_queries();
    assert_eq!(queries.len(), 5, "{queries:?}");
    for q in &queries {
        sqlx::raw_sql(sqlx::AssertSqlSafe(q.clone()))
            .execute(&pool)
            .await
            .unwrap_or_else(|e| panic!("README query failed: {e}\n{q}"));
    }
    let latest: Vec<(String, i64)> =
        sqlx::query_as("SELECT ds::text, count(*) FROM scores.churn_daily_latest GROUP BY ds")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(latest, [("2026-11-24".to_string(), 5_000)]);
    let (table, score): (String, String) = sqlx::query_as(
        "SELECT obj_description('scores.churn_daily'::regclass), \
         col_description('scores.churn_daily'::regclass, 3)",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(
        table.contains("job churn_daily, model m version 1 (sha256 "),
        "{table}"
    );
    assert!(table.contains("scores.churn_daily_latest"), "{table}");
    assert!(score.contains("model m version 1"), "{score}");
    let index: String = sqlx::query_scalar(
        "SELECT indexdef FROM pg_indexes WHERE schemaname = 'scores' \
         AND tablename = 'churn_daily_20261124'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(index.ends_with("(id)"), "{index}");
    // One id on one date is answered from the date's partition by its index.
    let mut conn = pool.acquire().await.unwrap();
    sqlx::raw_sql("SET enable_seqscan = off")
        .execute(&mut *conn)
        .await
        .unwrap();
    let plan: Vec<String> = sqlx::query_scalar(
        "EXPLAIN SELECT score FROM scores.churn_daily WHERE ds = DATE '2026-11-24' AND id = 42",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    let plan = plan.join("\n");
    assert!(plan.contains("churn_daily_20261124"), "{plan}");
    assert!(!plan.contains("churn_daily_20261123"), "{plan}");
    assert!(plan.contains("Index"), "{plan}");
}

#[tokio::test]
async fn sqlite_has_the_latest_view_too() {
    let p = project("churn_daily");
    for date in ["2026-11-24", "2026-11-23"] {
        assert_ok(&p.scorer(&["run", "churn_daily", "--date", date], None));
    }
    let n = sqlite_count(
        &p,
        "SELECT count(*) FROM churn_daily_latest WHERE ds = '2026-11-24'",
    )
    .await;
    assert_eq!(n, Some(5_000));
    let other = sqlite_count(
        &p,
        "SELECT count(*) FROM churn_daily_latest WHERE ds <> '2026-11-24'",
    )
    .await;
    assert_eq!(other, Some(0));
}
