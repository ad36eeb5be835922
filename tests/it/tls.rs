//! TLS to PostgreSQL. The test server (scripts/pg-env.sh) has a certificate for `localhost`
//! signed by a throwaway CA, and refuses the role `scorer_tls_only` without TLS, so every run
//! that succeeds below was encrypted: `sslmode=require` encrypts without checking the
//! certificate, `verify-full` with `sslrootcert` accepts the right host name and refuses a wrong
//! one (the certificate does not name 127.0.0.1).

use crate::common::{DATE, ModelOpts, Project, admin_url, fresh_pg, text};

fn ca() -> String {
    std::env::var("SCORER_TEST_PG_CA").unwrap_or_else(|_| {
        panic!("SCORER_TEST_PG_CA is not set: run the tests with scripts/test.sh")
    })
}

#[tokio::test]
async fn verify_full_accepts_the_right_host_and_refuses_a_wrong_one() {
    let (url, pool) = fresh_pg("tls").await;
    sqlx::raw_sql(
        "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'scorer_tls_only') THEN \
         CREATE ROLE scorer_tls_only LOGIN; END IF; END $$",
    )
    .execute(&pool)
    .await
    .unwrap();
    let db = url.rsplit_once('/').unwrap().1;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "ALTER DATABASE \"{db}\" OWNER TO scorer_tls_only"
    )))
    .execute(&pool)
    .await
    .unwrap();
    let port = url::Url::parse(&admin_url()).unwrap().port().unwrap();
    let at = |host: &str, params: &str| {
        format!("postgres://scorer_tls_only@{host}:{port}/{db}?{params}")
    };
    let ca = ca();
    let p = Project::new();
    p.add_model(&ModelOpts::mlp(8));
    p.add_input("events", DATE, 1_000, 8, None);
    p.add_job("daily", "events", "m", "daily", "");
    let run = |url: &str| p.scorer(&["run", "daily", "--date", DATE], Some(url));

    // Without TLS the server refuses this role: what follows succeeds only over TLS.
    let plain = run(&at("localhost", "sslmode=disable"));
    assert_eq!(plain.status.code(), Some(2), "{}", text(&plain));
    assert!(text(&plain).contains("no encryption"), "{}", text(&plain));

    let require = run(&at("127.0.0.1", "sslmode=require"));
    assert!(require.status.success(), "{}", text(&require));

    let verified = run(&at(
        "localhost",
        &format!("sslmode=verify-full&sslrootcert={ca}"),
    ));
    assert!(verified.status.success(), "{}", text(&verified));

    // The certificate names localhost, not 127.0.0.1: verify-full refuses, before any query.
    let wrong = run(&at(
        "127.0.0.1",
        &format!("sslmode=verify-full&sslrootcert={ca}"),
    ));
    assert_eq!(wrong.status.code(), Some(2), "{}", text(&wrong));
    let message = text(&wrong).to_lowercase();
    assert!(message.contains("certificate"), "{}", text(&wrong));

    // Without the CA, verify-full does not trust the throwaway certificate either.
    let untrusted = run(&at("localhost", "sslmode=verify-full"));
    assert_ne!(untrusted.status.code(), Some(0), "{}", text(&untrusted));

    let runs: i64 =
        sqlx::query_scalar("SELECT count(*) FROM scorer.runs WHERE status = 'succeeded'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(runs, 2);
}
