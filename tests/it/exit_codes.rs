//! One test per documented exit code, each driven through the binary as cron or Airflow calls
//! it, for the codes no other module already covers that way: 0, 2, 3, 5 and 6 are asserted by
//! the run's own tests (cli.rs, postgres.rs, sqlite.rs, lifecycle.rs); here are the transient
//! failures (4) of the object store and the database, a table that does not fit (2, not 4), and
//! an internal error (1).

use sqlx::sqlite::SqlitePool;

use crate::cloud::{self, project};
use crate::common::{DATE, assert_ok, text};

/// A loopback port nothing listens on: bound, then released.
fn refusing_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn s3_job(p: &crate::common::Project, name: &str, url: &str, endpoint: &str) {
    std::fs::write(
        p.path().join(format!("jobs/{name}.toml")),
        format!(
            "name = \"{name}\"\n[input]\nurl = \"{url}\"\nid_column = \"id\"\non_null = \"fill:0\"\n\
             [input.storage]\nendpoint = \"{endpoint}\"\nallow_http = true\nregion = \"us-east-1\"\n\
             max_retries = 0\nconnect_timeout = \"2s\"\n\
             [model]\nname = \"m\"\nversion = \"1\"\n[output]\ntable = \"{name}\"\n"
        ),
    )
    .unwrap();
}

const CREDS: [(&str, &str); 2] = [
    ("AWS_ACCESS_KEY_ID", "test"),
    ("AWS_SECRET_ACCESS_KEY", "test"),
];

#[tokio::test]
async fn an_object_store_that_refuses_connections_exits_4_and_an_empty_prefix_exits_3() {
    let (p, _) = project();
    // The store is down (nothing listens): transient, retry.
    let endpoint = format!("http://127.0.0.1:{}", refusing_port());
    s3_job(&p, "down", "s3://lake/events/dt={{ ds }}/", &endpoint);
    let out = p.scorer_env(&["run", "down", "--date", DATE], None, &CREDS);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("listing failed"),
        "{}",
        text(&out)
    );

    // The store answers, but the date's data is not there: data, retry once it lands.
    let bucket = cloud::unique("exit3");
    cloud::create_s3_bucket(&bucket).await;
    s3_job(
        &p,
        "missing",
        &format!("s3://{bucket}/events/dt={{{{ ds }}}}/"),
        &cloud::s3_endpoint(),
    );
    let out = p.scorer_env(&["run", "missing", "--date", DATE], None, &CREDS);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no Parquet objects"),
        "{}",
        text(&out)
    );
}

#[tokio::test]
async fn a_database_that_refuses_connections_exits_4_at_once_saying_so() {
    let (p, _) = project();
    let url = format!("postgres://scorer@127.0.0.1:{}/scores", refusing_port());
    let started = std::time::Instant::now();
    let out = p.run("local", Some(&url));
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    // The cause, at once: not the pool's "timed out" after its 30 s of retries.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot connect") && stderr.contains("refused"),
        "{}",
        text(&out)
    );
    assert!(
        started.elapsed().as_secs() < 10,
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_ledger_row_scorer_cannot_read_exits_1() {
    let (p, _) = project();
    assert_ok(&p.run("local", None));
    let pool = SqlitePool::connect(&p.sqlite_url()).await.unwrap();
    sqlx::query(
        "INSERT INTO scorer_runs (run_id, job, logical_date, status, started_at, output_table, \
         scorer_version, host) VALUES ('not-a-uuid', 'local', ?1, 'running', \
         '2026-11-24T00:00:00.000Z', 'local_scores', 'x', 'h')",
    )
    .bind(DATE)
    .execute(&pool)
    .await
    .unwrap();
    let out = p.scorer(&["gc"], None);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("unreadable run_id"),
        "{}",
        text(&out)
    );
}

/// A ledger migrated by a newer scorer (a migration this binary does not know): refused at
/// start with exit 2 naming the ledger's schema and this scorer's, and nothing written: no run
/// row, no result rows, no migration.
#[tokio::test]
async fn a_ledger_migrated_by_a_newer_scorer_is_refused_and_left_alone() {
    let (p, _) = project();
    assert_ok(&p.run("local", None));
    let pool = SqlitePool::connect(&p.sqlite_url()).await.unwrap();
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (9999, 'from a newer scorer', 1, X'00', 0)",
    )
    .execute(&pool)
    .await
    .unwrap();
    let count = |sql: &'static str| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>(sql)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    let runs = count("SELECT count(*) FROM scorer_runs").await;
    let migrations = count("SELECT count(*) FROM _sqlx_migrations").await;
    let out = p.run("local", None);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("migrated by a newer scorer (ledger schema 9999")
            && stderr.contains("knows schemas up to")
            && stderr.contains("nothing was written"),
        "{}",
        text(&out)
    );
    assert_eq!(count("SELECT count(*) FROM scorer_runs").await, runs);
    assert_eq!(
        count("SELECT count(*) FROM _sqlx_migrations").await,
        migrations
    );
}
