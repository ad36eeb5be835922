//! The quickstart-shaped job with its input in S3 (moto), Azure Blob (Azurite) and GCS (its XML
//! client pointed at moto, the only stand-in reachable here), each giving the same table as from
//! local files; and the failures a user meets first: a missing bucket, a missing object, denied
//! credentials. scripts/test.sh starts the emulators; without them these tests fail, never skip.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine;
use object_store::ObjectStore;
use object_store::ObjectStoreExt;
use object_store::aws::AmazonS3Builder;
use object_store::azure::MicrosoftAzureBuilder;
use object_store::path::Path;
use sqlx::SqlitePool;

use crate::common::*;

/// Azurite's published development account and key.
pub const AZ_ACCOUNT: &str = "devstoreaccount1";
pub const AZ_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

fn endpoint(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        panic!("{var} is not set: run the tests with scripts/test.sh, which starts the emulators")
    })
}

pub fn s3_endpoint() -> String {
    endpoint("SCORER_TEST_S3_ENDPOINT")
}

fn az_endpoint() -> String {
    endpoint("SCORER_TEST_AZURITE_ENDPOINT")
}

/// A unique bucket name (lowercase letters and digits only: valid for S3, GCS and Azure).
pub fn unique(tag: &str) -> String {
    format!("{tag}{}", uuid::Uuid::now_v7().simple())
        .chars()
        .take(40)
        .collect()
}

/// Sends an emulator set-up request and fails the test unless it succeeded.
async fn send_ok(request: reqwest::RequestBuilder, what: &str) {
    let resp = request.send().await.unwrap();
    assert!(resp.status().is_success(), "{what}: {}", resp.status());
}

pub async fn create_s3_bucket(name: &str) {
    let request = reqwest::Client::new().put(format!("{}/{name}", s3_endpoint()));
    send_ok(request, "create bucket").await;
}

/// Creates a container with a Shared Key-signed request, as Azure's own tools do.
pub async fn create_az_container(name: &str) {
    let date = chrono::Utc::now()
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string();
    let version = "2021-08-06";
    let to_sign = format!(
        "PUT\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:{date}\nx-ms-version:{version}\n\
         /{AZ_ACCOUNT}/{AZ_ACCOUNT}/{name}\nrestype:container"
    );
    let key = base64::engine::general_purpose::STANDARD
        .decode(AZ_KEY)
        .unwrap();
    let tag = ring::hmac::sign(
        &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key),
        to_sign.as_bytes(),
    );
    let signature = base64::engine::general_purpose::STANDARD.encode(tag.as_ref());
    let request = reqwest::Client::new()
        .put(format!("{}/{name}?restype=container", az_endpoint()))
        .header("x-ms-date", date)
        .header("x-ms-version", version)
        .header(
            "Authorization",
            format!("SharedKey {AZ_ACCOUNT}:{signature}"),
        );
    send_ok(request, "create container").await;
}

pub fn s3_store(bucket: &str) -> Arc<dyn ObjectStore> {
    Arc::new(
        AmazonS3Builder::new()
            .with_bucket_name(bucket)
            .with_endpoint(s3_endpoint())
            .with_allow_http(true)
            .with_region("us-east-1")
            .with_access_key_id("test")
            .with_secret_access_key("test")
            .build()
            .unwrap(),
    )
}

pub fn az_store(container: &str) -> Arc<dyn ObjectStore> {
    Arc::new(
        MicrosoftAzureBuilder::new()
            .with_account(AZ_ACCOUNT)
            .with_access_key(AZ_KEY)
            .with_container_name(container)
            .with_endpoint(az_endpoint())
            .with_allow_http(true)
            .build()
            .unwrap(),
    )
}

/// Copies every file of a local input directory under `prefix` in `store`.
pub async fn upload(store: &dyn ObjectStore, dir: &std::path::Path, prefix: &str) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        let bytes = std::fs::read(&path).unwrap();
        store
            .put(&Path::from(format!("{prefix}/{name}")), bytes.into())
            .await
            .unwrap();
    }
}

/// A project with the quickstart-shaped model and one day of local input, and the job `local`
/// over it; returns the input directory.
pub fn project() -> (Project, std::path::PathBuf) {
    let p = Project::new();
    p.add_model(&ModelOpts::mlp(8));
    let dir = p.add_input("events", DATE, 6_000, 8, Some((3, 0.01)));
    p.add_job(
        "local",
        "events",
        "m",
        "local_scores",
        "on_null = \"fill:0\"",
    );
    (p, dir)
}

/// Writes job `name` reading `url` with `[input.storage]` lines `storage`, into `table`.
pub fn cloud_job(p: &Project, name: &str, url: &str, table: &str, storage: &str) {
    std::fs::write(
        p.path().join(format!("jobs/{name}.toml")),
        format!(
            "name = \"{name}\"\n[input]\nurl = \"{url}\"\nid_column = \"id\"\non_null = \"fill:0\"\n\
             [input.storage]\n{storage}\n[model]\nname = \"m\"\nversion = \"1\"\n\
             [output]\ntable = \"{table}\"\n"
        ),
    )
    .unwrap();
}

pub async fn scores(p: &Project, table: &str) -> BTreeMap<i64, f64> {
    let pool = SqlitePool::connect(&p.sqlite_url()).await.unwrap();
    sqlx::query_as::<_, (i64, f64)>(sqlx::AssertSqlSafe(format!(
        "SELECT id, score FROM {table} WHERE ds = '{DATE}'"
    )))
    .fetch_all(&pool)
    .await
    .unwrap()
    .into_iter()
    .collect()
}

async fn last_run(p: &Project) -> (String, Option<String>, Option<String>) {
    let pool = SqlitePool::connect(&p.sqlite_url()).await.unwrap();
    sqlx::query_as("SELECT status, inputs, error FROM scorer_runs ORDER BY started_at DESC LIMIT 1")
        .fetch_one(&pool)
        .await
        .unwrap()
}

/// Runs `job`, and checks it gives exactly the local run's table, and that the ledger lists the
/// cloud objects with their etags.
async fn same_as_local(p: &Project, job: &str, table: &str, env: &[(&str, &str)], url_start: &str) {
    assert_ok(&p.run("local", None));
    let out = p.scorer_env(&["run", job, "--date", DATE], None, env);
    assert_ok(&out);
    let local = scores(p, "local_scores").await;
    assert_eq!(local.len(), 6_000);
    assert_eq!(scores(p, table).await, local);
    let (status, inputs, _) = last_run(p).await;
    assert_eq!(status, "succeeded");
    let inputs: Vec<serde_json::Value> = serde_json::from_str(&inputs.unwrap()).unwrap();
    assert_eq!(inputs.len(), 3);
    for i in &inputs {
        assert!(i["url"].as_str().unwrap().starts_with(url_start), "{i}");
        assert!(i["etag"].as_str().is_some_and(|e| !e.is_empty()), "{i}");
    }
}

pub const S3_ENV: &[(&str, &str)] = &[
    ("AWS_ACCESS_KEY_ID", "test"),
    ("AWS_SECRET_ACCESS_KEY", "test"),
];

fn s3_storage() -> &'static str {
    "endpoint = \"${SCORER_TEST_S3_ENDPOINT}\"\nallow_http = true\nregion = \"us-east-1\"\nmax_retries = 1"
}

/// Uploads a day of input to `store` (bucket or container `bucket`), points a job at it as
/// `<scheme>://<bucket>/events/dt={{ ds }}/*.parquet` with `[input.storage]` lines `storage`, and
/// checks the run gives the local run's table.
async fn check_cloud_input(
    store: Arc<dyn ObjectStore>,
    scheme: &str,
    bucket: &str,
    storage: &str,
    env: &[(&str, &str)],
) {
    let (p, dir) = project();
    upload(store.as_ref(), &dir, &format!("events/dt={DATE}")).await;
    let url = format!("{scheme}://{bucket}/events/dt={{{{ ds }}}}/*.parquet");
    let table = format!("{scheme}_scores");
    cloud_job(&p, scheme, &url, &table, storage);
    let root = format!("{scheme}://{bucket}/events/");
    same_as_local(&p, scheme, &table, env, &root).await;
}

#[tokio::test]
async fn s3_input_gives_the_same_table_as_local_files() {
    let bucket = unique("scorer");
    create_s3_bucket(&bucket).await;
    check_cloud_input(s3_store(&bucket), "s3", &bucket, s3_storage(), S3_ENV).await;
}

#[tokio::test]
async fn azure_input_gives_the_same_table_as_local_files() {
    let container = unique("scorer");
    create_az_container(&container).await;
    let storage = "endpoint = \"${SCORER_TEST_AZURITE_ENDPOINT}\"\nallow_http = true\naccount = \"devstoreaccount1\"\naccount_key = \"${TEST_AZURE_KEY}\"\nmax_retries = 1";
    let env = [("TEST_AZURE_KEY", AZ_KEY)];
    check_cloud_input(az_store(&container), "az", &container, storage, &env).await;
}

/// GCS: no emulator of the XML API that object_store's GCS client speaks runs here, so the client
/// is pointed at moto (the XML API is S3-shaped) with the job's `endpoint` and a bearer token from
/// the environment, shaped so that moto can read an access key out of it. This covers the gs://
/// URL, options and credentials from `${...}` references, and the client's list and ranged-GET
/// request path; not GCS's own semantics (README: "What the cloud tests cover").
#[tokio::test]
async fn gcs_client_over_the_s3_stand_in_gives_the_same_table() {
    let bucket = unique("scorergcs");
    create_s3_bucket(&bucket).await;
    let storage = "endpoint = \"${SCORER_TEST_S3_ENDPOINT}\"\nallow_http = true\nbearer_token = \"${TEST_GCS_TOKEN}\"\nmax_retries = 1";
    let env = [(
        "TEST_GCS_TOKEN",
        "Credential=test/20260101/us-east-1/s3/aws4_request",
    )];
    check_cloud_input(s3_store(&bucket), "gs", &bucket, storage, &env).await;
}

/// Runs `job` after a good local-table run, expects exit 3 with `needle` in the message and the
/// URL named, a failed ledger row, and the earlier rows of `table` intact.
async fn fails_cleanly(p: &Project, job: &str, env: &[(&str, &str)], needles: &[&str]) {
    let out = p.scorer_env(&["run", job, "--date", DATE], None, env);
    assert!(!out.status.success(), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for n in needles {
        assert!(stderr.contains(n), "expected `{n}` in:\n{stderr}");
    }
    assert!(!stderr.contains(AZ_KEY), "a secret leaked:\n{stderr}");
    let (status, _, error) = last_run(p).await;
    assert_eq!(status, "failed");
    assert!(error.is_some_and(|e| needles.iter().all(|n| e.contains(n))));
}

#[tokio::test]
async fn missing_bucket_missing_object_and_denied_credentials_fail_cleanly() {
    let (p, dir) = project();
    let container = unique("scorer");
    create_az_container(&container).await;
    upload(
        az_store(&container).as_ref(),
        &dir,
        &format!("events/dt={DATE}"),
    )
    .await;
    let good = "endpoint = \"${SCORER_TEST_AZURITE_ENDPOINT}\"\nallow_http = true\naccount = \"devstoreaccount1\"\naccount_key = \"${TEST_AZURE_KEY}\"\nmax_retries = 0";
    let url = format!("az://{container}/events/dt={{{{ ds }}}}/*.parquet");
    // Earlier results in the same table the failing runs write to.
    cloud_job(&p, "az", &url, "az_scores", good);
    let env = [("TEST_AZURE_KEY", AZ_KEY)];
    assert_ok(&p.scorer_env(&["run", "az", "--date", DATE], None, &env));
    let before = scores(&p, "az_scores").await;
    assert_eq!(before.len(), 6_000);

    // A bucket that does not exist.
    let missing = unique("nosuch");
    cloud_job(
        &p,
        "az",
        &format!("az://{missing}/events/*.parquet"),
        "az_scores",
        good,
    );
    fails_cleanly(
        &p,
        "az",
        &env,
        &[&format!("az://{missing}/events/*.parquet")],
    )
    .await;

    // An object that does not exist (a plain path, no glob).
    cloud_job(
        &p,
        "az",
        &format!("az://{container}/events/dt={DATE}/part-09999.parquet"),
        "az_scores",
        good,
    );
    fails_cleanly(
        &p,
        "az",
        &env,
        &["part-09999.parquet", "no Parquet objects found"],
    )
    .await;

    // Wrong credentials: Azurite checks Shared Key signatures.
    cloud_job(&p, "az", &url, "az_scores", good);
    let wrong = base64::engine::general_purpose::STANDARD.encode([7u8; 64]);
    let env_wrong = [("TEST_AZURE_KEY", wrong.as_str())];
    fails_cleanly(
        &p,
        "az",
        &env_wrong,
        &[&format!("az://{container}/events/")],
    )
    .await;

    assert_eq!(scores(&p, "az_scores").await, before, "earlier rows intact");
}

#[tokio::test]
async fn a_literal_secret_in_a_job_file_is_refused() {
    let (p, _) = project();
    cloud_job(
        &p,
        "lit",
        "s3://b/x/*.parquet",
        "t",
        "secret_access_key = \"wJalrXUtnFEMI-K7MDENG\"",
    );
    let out = p.scorer(&["validate", "lit"], None);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("input.storage.secret_access_key"),
        "{stderr}"
    );
    assert!(!stderr.contains("wJalr"), "{stderr}");
}
