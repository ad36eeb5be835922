//! Secrets never reach the output: jobs that succeed and jobs that fail, with a known secret in
//! every place one can be given (the `DATABASE_URL` password as userinfo and as `?password=`, an
//! AWS secret key, an Azure account key, a GCS service-account key, an Azure SAS token, the HMAC
//! key of `output.hash_columns`), in text and JSON logs, `--help`, `scorer runs` and `scorer
//! show`; then every table of the database (the ledger, the results, the quarantine) is dumped
//! and searched for them too.

use crate::cloud::{
    AZ_KEY, az_store, cloud_job, create_az_container, create_s3_bucket, s3_endpoint, s3_store,
    unique, upload,
};
use crate::common::{DATE, Project, dump_database, fresh_pg, text};

const DB_PASSWORD: &str = "pg-pass-Xq81vR";
const AWS_SECRET: &str = "aws-secret-Lm42Tz9w";
const GCS_KEY_ID: &str = "gcs-key-id-Pf73Qa";
const GCS_PRIVATE_KEY: &str = "MIIEvQgcsPrivateKeyMaterialKx93";
const SAS_SIG: &str = "SasSignatureZr58Hn";
const HMAC_KEY: &str = "hmac-key-Wd26Yc4e";
const MLFLOW_TOKEN: &str = "mlflow-token-Hu83Lp2d";
const MLFLOW_PASSWORD: &str = "mlflow-pass-Ta57Vn1x";

/// Every secret the test gives the scorer, with what it is, to say which one leaked.
fn secrets() -> Vec<(&'static str, String)> {
    vec![
        ("DATABASE_URL password", DB_PASSWORD.to_string()),
        ("AWS secret key", AWS_SECRET.to_string()),
        ("Azure account key", AZ_KEY.to_string()),
        ("GCS private_key_id", GCS_KEY_ID.to_string()),
        ("GCS private key", GCS_PRIVATE_KEY.to_string()),
        ("SAS signature", SAS_SIG.to_string()),
        ("HMAC key", HMAC_KEY.to_string()),
        ("MLflow token", MLFLOW_TOKEN.to_string()),
        ("MLflow password", MLFLOW_PASSWORD.to_string()),
    ]
}

fn assert_clean(what: &str, haystack: &str) {
    for (name, secret) in secrets() {
        assert!(
            !haystack.contains(&secret),
            "the {name} leaked into {what}:\n{haystack}"
        );
    }
}

/// The database URL with the password as userinfo or as a `?password=` parameter (the test server
/// trusts loopback connections: the password is accepted and ignored).
fn with_password(url: &str, as_param: bool) -> String {
    if as_param {
        format!("{url}?password={DB_PASSWORD}&application_name=scorer-secrets")
    } else {
        let mut u = url::Url::parse(url).unwrap();
        u.set_password(Some(DB_PASSWORD)).unwrap();
        u.to_string()
    }
}

/// A GCS service-account key pointing the client at the S3 stand-in (see tests/it/cloud.rs).
fn gcs_key() -> String {
    serde_json::json!({
        "type": "service_account",
        "private_key_id": GCS_KEY_ID,
        "private_key": format!("-----BEGIN PRIVATE KEY-----\n{GCS_PRIVATE_KEY}\n-----END PRIVATE KEY-----\n"),
        "client_email": "scorer@test.iam.gserviceaccount.com",
        "gcs_base_url": s3_endpoint(),
        "disable_oauth": true,
    })
    .to_string()
}

/// Runs `args` with `env` and collects everything it printed; returns the exit code.
fn run(
    p: &Project,
    args: &[&str],
    db: &str,
    env: &[(&str, &str)],
    out: &mut String,
) -> Option<i32> {
    let o = p.scorer_env(args, Some(db), env);
    let t = text(&o);
    out.push_str(&t);
    o.status.code()
}

#[tokio::test]
async fn no_secret_reaches_logs_help_the_ledger_or_the_tables() {
    let (p, dir) = crate::cloud::project();
    let (url, pool) = fresh_pg("secrets").await;
    let db = with_password(&url, false);
    let db_param = with_password(&url, true);
    let mut printed = String::new();
    let sas = format!("sv=2022-11-02&ss=b&srt=co&sp=rl&se=2030-01-01T00%3A00%3A00Z&sig={SAS_SIG}");
    let gcs = gcs_key();
    let env: Vec<(&str, &str)> = vec![
        ("TEST_AWS_SECRET", AWS_SECRET),
        ("AWS_SECRET_ACCESS_KEY", AWS_SECRET),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("TEST_AZURE_KEY", AZ_KEY),
        ("GOOGLE_SERVICE_ACCOUNT_KEY", gcs.as_str()),
        ("SCORER_HASH_KEY", HMAC_KEY),
        // MLflow's credential variables: in every run's environment (the runs here read no
        // registered model; tests/it/mlflow.rs checks them against a real tracking server).
        ("MLFLOW_TRACKING_TOKEN", MLFLOW_TOKEN),
        ("MLFLOW_TRACKING_USERNAME", "scorer"),
        ("MLFLOW_TRACKING_PASSWORD", MLFLOW_PASSWORD),
    ];

    // S3: moto accepts any key, so the run succeeds with the secret in play; then a missing bucket.
    let bucket = unique("secrets");
    create_s3_bucket(&bucket).await;
    upload(
        s3_store(&bucket).as_ref(),
        &dir,
        &format!("events/dt={DATE}"),
    )
    .await;
    let s3 = "endpoint = \"${SCORER_TEST_S3_ENDPOINT}\"\nallow_http = true\nregion = \"us-east-1\"\n\
              access_key_id = \"${AWS_ACCESS_KEY_ID}\"\nsecret_access_key = \"${TEST_AWS_SECRET}\"\nmax_retries = 0";
    let s3_url = format!("s3://{bucket}/events/dt={{{{ ds }}}}/*.parquet");
    cloud_job(&p, "s3", &s3_url, "s3_scores", s3);
    let hashed = "[output]\ntable = \"hashed_scores\"\npassthrough_columns = [\"f1\"]\nhash_columns = [\"id\"]\n";
    let job = std::fs::read_to_string(p.path().join("jobs/s3.toml")).unwrap();
    std::fs::write(
        p.path().join("jobs/s3_hashed.toml"),
        job.replace("name = \"s3\"", "name = \"s3_hashed\"")
            .replace("[output]\ntable = \"s3_scores\"\n", hashed),
    )
    .unwrap();
    for (args, db) in [
        (vec!["run", "s3", "--date", DATE], &db),
        (
            vec!["--log-format", "json", "run", "s3_hashed", "--date", DATE],
            &db_param,
        ),
    ] {
        assert_eq!(run(&p, &args, db, &env, &mut printed), Some(0), "{printed}");
    }
    cloud_job(
        &p,
        "s3_missing",
        &format!("s3://{}/x/*.parquet", unique("nosuch")),
        "s3_scores",
        s3,
    );
    assert_ne!(
        run(
            &p,
            &["run", "s3_missing", "--date", DATE],
            &db_param,
            &env,
            &mut printed
        ),
        Some(0),
        "{printed}"
    );

    // Azure: the account key works; a SAS token that Azurite refuses fails the run.
    let container = unique("secrets");
    create_az_container(&container).await;
    upload(
        az_store(&container).as_ref(),
        &dir,
        &format!("events/dt={DATE}"),
    )
    .await;
    let az_url = format!("az://{container}/events/dt={{{{ ds }}}}/*.parquet");
    let az = "endpoint = \"${SCORER_TEST_AZURITE_ENDPOINT}\"\nallow_http = true\naccount = \"devstoreaccount1\"\n\
              account_key = \"${TEST_AZURE_KEY}\"\nmax_retries = 0";
    cloud_job(&p, "az", &az_url, "az_scores", az);
    assert_eq!(
        run(&p, &["run", "az", "--date", DATE], &db, &env, &mut printed),
        Some(0),
        "{printed}"
    );
    let az_sas = "endpoint = \"${SCORER_TEST_AZURITE_ENDPOINT}\"\nallow_http = true\naccount = \"devstoreaccount1\"\nmax_retries = 0";
    cloud_job(&p, "az_sas", &az_url, "az_scores", az_sas);
    let mut sas_env = env.clone();
    sas_env.push(("AZURE_STORAGE_SAS_KEY", sas.as_str()));
    assert_ne!(
        run(
            &p,
            &["run", "az_sas", "--date", DATE],
            &db_param,
            &sas_env,
            &mut printed
        ),
        Some(0),
        "{printed}"
    );

    // GCS through its service-account key (pointed at the S3 stand-in), then a missing bucket.
    let gbucket = unique("secretsgcs");
    create_s3_bucket(&gbucket).await;
    upload(
        s3_store(&gbucket).as_ref(),
        &dir,
        &format!("events/dt={DATE}"),
    )
    .await;
    // moto answers the client's listing without credentials but not its reads: the run that
    // reads authenticates with a token moto can parse (tests/it/cloud.rs), the key still set.
    let gcs_read = "endpoint = \"${SCORER_TEST_S3_ENDPOINT}\"\nallow_http = true\nbearer_token = \"${TEST_GCS_TOKEN}\"\nmax_retries = 0";
    cloud_job(
        &p,
        "gcs",
        &format!("gs://{gbucket}/events/dt={{{{ ds }}}}/*.parquet"),
        "gcs_scores",
        gcs_read,
    );
    let mut gcs_env = env.clone();
    gcs_env.push((
        "TEST_GCS_TOKEN",
        "Credential=test/20260101/us-east-1/s3/aws4_request",
    ));
    assert_eq!(
        run(
            &p,
            &["run", "gcs", "--date", DATE],
            &db,
            &gcs_env,
            &mut printed
        ),
        Some(0),
        "{printed}"
    );
    cloud_job(
        &p,
        "gcs_missing",
        &format!("gs://{}/x/*.parquet", unique("nosuchgcs")),
        "gcs_scores",
        "allow_http = true\nmax_retries = 0",
    );
    assert_ne!(
        run(
            &p,
            &["run", "gcs_missing", "--date", DATE],
            &db_param,
            &env,
            &mut printed
        ),
        Some(0),
        "{printed}"
    );

    // A database that does not exist, with the password in both forms.
    let (base, _) = url.rsplit_once('/').unwrap();
    for missing in [
        with_password(&format!("{base}/no_such_db"), false),
        with_password(&format!("{base}/no_such_db"), true),
    ] {
        assert_eq!(
            run(
                &p,
                &["run", "s3", "--date", DATE],
                &missing,
                &env,
                &mut printed
            ),
            Some(2),
            "{printed}"
        );
        assert!(printed.contains("no_such_db"), "{printed}");
    }

    // What users and operators read: help, the run list, one run in full.
    for args in [
        vec!["--help"],
        vec!["run", "--help"],
        vec!["schedule", "--help"],
        vec!["runs"],
        vec!["runs", "--format", "json"],
    ] {
        let mut with_url_env = env.clone();
        with_url_env.push((
            "SCORER_PUSHGATEWAY_URL",
            "http://pusher:pg-pass-Xq81vR@127.0.0.1:1/",
        ));
        assert_eq!(
            run(&p, &args, &db, &with_url_env, &mut printed),
            Some(0),
            "{printed}"
        );
    }
    let ids: Vec<String> = sqlx::query_scalar("SELECT run_id::text FROM scorer.runs")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(
        ids.len(),
        7,
        "one ledger row per run that reached the database"
    );
    for id in &ids {
        assert_eq!(
            run(&p, &["show", id], &db, &env, &mut printed),
            Some(0),
            "{printed}"
        );
    }
    assert!(
        printed.contains("password=***"),
        "the parameter form is shown masked:\n{printed}"
    );
    assert_clean("the printed output", &printed);

    // Every row of every table: the ledger, results, quarantines.
    let (dumped, tables) = dump_database(&pool).await;
    assert!(
        ["runs", "hashed_scores", "s3_scores"]
            .iter()
            .all(|t| tables.iter().any(|n| n == t)),
        "{tables:?}"
    );
    assert!(
        dumped.contains("no Parquet objects found") || dumped.contains("s3://"),
        "the ledger holds the failures"
    );
    assert_clean("the database", &dumped);
}
