//! sql/postgres/roles.sql: scorer runs as `scorer_writer`, which is no superuser and cannot
//! create roles or databases; an analyst (a login in `scorer_analyst`) reads the result table,
//! its `_latest` view and the ledger, and cannot write, drop, or read a date partition, a staging
//! table or the quarantine.

use sqlx::{Connection, PgConnection};

use crate::common::{DATE, ModelOpts, Project, assert_ok, fresh_pg};

/// `url` with another user.
fn as_user(url: &str, user: &str) -> String {
    let mut u = url::Url::parse(url).unwrap();
    u.set_username(user).unwrap();
    u.to_string()
}

/// Runs roles.sql with psql, as the administrator of the database at `url`.
fn apply_roles(url: &str) {
    let out = std::process::Command::new("psql")
        .args([url, "-Xq", "-v", "ON_ERROR_STOP=1", "-f"])
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/sql/postgres/roles.sql"
        ))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn fails(conn: &mut PgConnection, sql: &str, needle: &str) {
    let e = sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
        .execute(&mut *conn)
        .await
        .expect_err(sql);
    assert!(e.to_string().contains(needle), "{sql}: {e}");
}

#[tokio::test]
async fn the_writer_runs_scorer_and_the_analyst_only_reads() {
    let (url, admin) = fresh_pg("roles").await;
    apply_roles(&url);
    apply_roles(&url); // idempotent
    // An analyst login, in the group role (roles are cluster-wide: created once).
    sqlx::raw_sql(
        "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'alice_analyst') THEN \
         CREATE ROLE alice_analyst LOGIN IN ROLE scorer_analyst; END IF; END $$",
    )
    .execute(&admin)
    .await
    .unwrap();
    let (sup, createdb, createrole): (bool, bool, bool) = sqlx::query_as(
        "SELECT rolsuper, rolcreatedb, rolcreaterole FROM pg_roles WHERE rolname = 'scorer_writer'",
    )
    .fetch_one(&admin)
    .await
    .unwrap();
    assert!(!sup && !createdb && !createrole);

    let p = Project::new();
    p.add_model(&ModelOpts::mlp(8));
    p.add_input("events", DATE, 2_000, 8, Some((3, 0.01)));
    let path = p.add_job("daily", "events", "m", "scores.daily", "on_null = \"skip\"");
    let mut toml = std::fs::read_to_string(&path).unwrap();
    toml.push_str("readers = [\"scorer_analyst\"]\n");
    std::fs::write(&path, toml).unwrap();
    // SQLite has no roles to grant: the job says so instead of ignoring the setting.
    let sqlite = p.scorer(&["run", "daily", "--date", DATE], None);
    assert_eq!(
        sqlite.status.code(),
        Some(2),
        "{}",
        crate::common::text(&sqlite)
    );
    assert!(crate::common::text(&sqlite).contains("output.readers grants PostgreSQL roles"));
    let writer = as_user(&url, "scorer_writer");
    assert_ok(&p.scorer(&["run", "daily", "--date", DATE], Some(&writer)));
    assert_ok(&p.scorer(&["run", "daily", "--date", DATE], Some(&writer)));

    let owner: String =
        sqlx::query_scalar("SELECT tableowner::text FROM pg_tables WHERE tablename = 'daily'")
            .fetch_one(&admin)
            .await
            .unwrap();
    assert_eq!(owner, "scorer_writer");

    let mut analyst = PgConnection::connect(&as_user(&url, "alice_analyst"))
        .await
        .unwrap();
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM scores.daily")
        .fetch_one(&mut analyst)
        .await
        .unwrap();
    assert!(rows > 1_900, "{rows}");
    let latest: i64 = sqlx::query_scalar("SELECT count(*) FROM scores.daily_latest")
        .fetch_one(&mut analyst)
        .await
        .unwrap();
    assert_eq!(latest, rows);
    let runs: i64 =
        sqlx::query_scalar("SELECT count(*) FROM scorer.runs WHERE status = 'succeeded'")
            .fetch_one(&mut analyst)
            .await
            .unwrap();
    assert_eq!(runs, 2);

    fails(
        &mut analyst,
        "INSERT INTO scores.daily (id, ds, run_id) VALUES (1, '2026-11-24', gen_random_uuid())",
        "permission denied",
    )
    .await;
    fails(
        &mut analyst,
        "DELETE FROM scores.daily",
        "permission denied",
    )
    .await;
    fails(&mut analyst, "DROP TABLE scores.daily", "must be owner").await;
    fails(
        &mut analyst,
        "UPDATE scorer.runs SET status = 'failed'",
        "permission denied",
    )
    .await;
    fails(
        &mut analyst,
        "CREATE TABLE scores.mine (x int)",
        "permission denied",
    )
    .await;
    fails(
        &mut analyst,
        "SELECT * FROM scores.daily_quarantine",
        "permission denied",
    )
    .await;

    // Every relation in the results schema other than the table and its view (date partitions,
    // which were staging tables, and the quarantine) is closed to the analyst; a live staging
    // table, made as scorer makes one, is too.
    let writer_pool = sqlx::PgPool::connect(&writer).await.unwrap();
    sqlx::raw_sql("CREATE TABLE scores.daily__staging_probe (LIKE scores.daily)")
        .execute(&writer_pool)
        .await
        .unwrap();
    let readable: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = 'scores' AND c.relkind IN ('r', 'p', 'v') \
         AND has_table_privilege('alice_analyst', c.oid, 'SELECT') ORDER BY 1",
    )
    .fetch_all(&admin)
    .await
    .unwrap();
    assert_eq!(readable, ["daily", "daily_latest"]);
    let partition: String = sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
         WHERE i.inhparent = 'scores.daily'::regclass",
    )
    .fetch_one(&admin)
    .await
    .unwrap();
    fails(
        &mut analyst,
        &format!("SELECT * FROM scores.\"{partition}\""),
        "permission denied",
    )
    .await;
    fails(
        &mut analyst,
        "SELECT * FROM scores.daily__staging_probe",
        "permission denied",
    )
    .await;
}
