//! The model registry: `scorer models list|verify`, `latest`, artifacts in object storage fetched
//! once into the cache, and the refusals (a changed artifact, a name out of the registry, inputs
//! the data lacks, an operator ONNX Runtime does not have).

use std::path::PathBuf;

use object_store::ObjectStoreExt;
use object_store::path::Path as ObjectPath;
use sqlx::sqlite::SqlitePool;

use crate::cloud::{create_s3_bucket, s3_endpoint, s3_store, unique};
use crate::common::{DATE, Project, assert_ok, text};
use crate::onnx::scorer_in_repo;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Copies `models/<name>/1` of the repository into the project's registry as `<name>/<version>`.
fn copy_model(p: &Project, name: &str, version: &str) -> PathBuf {
    let to = p.models_dir().join(name).join(version);
    std::fs::create_dir_all(&to).unwrap();
    for entry in std::fs::read_dir(repo().join("models").join(name).join("1")).unwrap() {
        let from = entry.unwrap().path();
        std::fs::copy(&from, to.join(from.file_name().unwrap())).unwrap();
    }
    to
}

/// Copies the committed fixture input of `model` into the project's `data/<set>/dt=DATE/`.
fn copy_input(p: &Project, model: &str, set: &str) {
    let to = p.path().join(format!("data/{set}/dt={DATE}"));
    std::fs::create_dir_all(&to).unwrap();
    std::fs::copy(
        repo().join(format!(
            "tests/fixtures/models/{model}/dt={DATE}/input.parquet"
        )),
        to.join("input.parquet"),
    )
    .unwrap();
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn models_list_and_verify_cover_the_repository_registry() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("scorer.db");
    let out = scorer_in_repo(&["models", "list"], &db);
    assert_ok(&out);
    let listed = String::from_utf8_lossy(&out.stdout);
    for line in [
        "churn_pipeline 1: Onnx model, 8 inputs -> label (i64), p_benign (f32), p_malignant (f32)",
        "preprocess: 0 derived, 0 imputed, 1 categorical, 5 standardized",
        "cancer_forest 1: Onnx model, 30 inputs -> label (i64), proba (f32[2])",
        "w1_mlp 1: Mlp model, 32 inputs -> score (f32)",
        "graph: model.onnx sha256 ",
    ] {
        assert!(listed.contains(line), "missing `{line}` in:\n{listed}");
    }
    let out = scorer_in_repo(&["models", "verify"], &db);
    assert_ok(&out);
    let verified = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        verified
            .lines()
            .filter(|l| l.contains(": OK (sha256 "))
            .count(),
        listed.lines().filter(|l| !l.starts_with(' ')).count(),
        "{verified}"
    );
}

#[test]
fn a_changed_artifact_fails_verify_and_run() {
    let p = Project::new();
    let dir = copy_model(&p, "churn_pipeline", "1");
    copy_input(&p, "churn_pipeline", "churn");
    p.add_job("churn", "churn", "churn_pipeline", "churn_scores", "");
    let graph = dir.join("model.onnx");
    let mut bytes = std::fs::read(&graph).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&graph, bytes).unwrap();
    let out = p.scorer(&["models", "verify", "churn_pipeline"], None);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(stderr(&out).contains("sha256"), "{}", text(&out));
    let out = p.run("jobs/churn.toml", None);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        stderr(&out).contains("model.onnx: sha256 is"),
        "{}",
        text(&out)
    );
}

#[test]
fn a_model_name_that_escapes_the_registry_is_refused() {
    let p = Project::new();
    copy_model(&p, "churn_pipeline", "1");
    copy_input(&p, "churn_pipeline", "churn");
    for (name, version) in [
        ("../models/churn_pipeline", "1"),
        ("churn_pipeline", "../1"),
    ] {
        let job = p.path().join("jobs/escape.toml");
        std::fs::create_dir_all(job.parent().unwrap()).unwrap();
        std::fs::write(
            &job,
            format!(
                "name = \"escape\"\n[input]\nurl = \"data/churn/dt={{{{ ds }}}}/*.parquet\"\nid_column = \"id\"\n\
                 [model]\nname = \"{name}\"\nversion = \"{version}\"\n[output]\ntable = \"t\"\n"
            ),
        )
        .unwrap();
        let out = p.run("jobs/escape.toml", None);
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        assert!(
            stderr(&out).contains("not starting with `.`"),
            "{}",
            text(&out)
        );
    }
    let out = p.scorer(&["models", "verify", ".."], None);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

#[test]
fn declared_inputs_missing_from_the_data_are_named() {
    let p = Project::new();
    copy_model(&p, "churn_pipeline", "1");
    // The forest's fixture has the numeric columns but no `size_band`.
    copy_input(&p, "cancer_forest", "forest");
    p.add_job("churn", "forest", "churn_pipeline", "churn_scores", "");
    let out = p.run("jobs/churn.toml", None);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        stderr(&out).contains("column `size_band` is missing"),
        "{}",
        text(&out)
    );
}

#[test]
fn an_unsupported_operator_is_refused_at_load_naming_it() {
    let p = Project::new();
    let dir = p.models_dir().join("odd").join("1");
    std::fs::create_dir_all(&dir).unwrap();
    let graph = repo().join("tests/fixtures/models/unsupported/model.onnx");
    std::fs::copy(&graph, dir.join("model.onnx")).unwrap();
    let sha = scorer::model::artifacts::sha256_hex(&std::fs::read(&graph).unwrap());
    std::fs::write(
        dir.join("model.toml"),
        format!(
            "kind = \"onnx\"\ninputs = [\"a\", \"b\"]\noutputs = [\"score\"]\n\
             [artifacts.graph]\nfile = \"model.onnx\"\nsha256 = \"{sha}\"\n"
        ),
    )
    .unwrap();
    let out = p.scorer(&["models", "verify", "odd"], None);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(stderr(&out).contains("Frobnicate"), "{}", text(&out));
}

/// `latest` is the highest version; the ledger says which one ran.
#[tokio::test]
async fn latest_resolves_to_the_highest_version_and_the_ledger_records_it() {
    let p = Project::new();
    copy_model(&p, "churn_pipeline", "2");
    copy_model(&p, "churn_pipeline", "10");
    copy_input(&p, "churn_pipeline", "churn");
    p.add_job("churn", "churn", "churn_pipeline", "churn_scores", "");
    let job = p.path().join("jobs/churn.toml");
    let text_ = std::fs::read_to_string(&job).unwrap();
    std::fs::write(
        &job,
        text_.replace("version = \"1\"", "version = \"latest\""),
    )
    .unwrap();
    assert_ok(&p.run("jobs/churn.toml", None));
    let pool = SqlitePool::connect(&p.sqlite_url()).await.unwrap();
    let version: String = sqlx::query_scalar("SELECT model_version FROM scorer_runs")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(version, "10");
}

/// A graph in S3 (moto) is fetched once into the cache and checked; a second run needs the store
/// no more; a corrupt cached copy is fetched again.
#[tokio::test]
async fn an_artifact_in_object_storage_is_fetched_once_and_verified() {
    let p = Project::new();
    let dir = copy_model(&p, "churn_pipeline", "1");
    copy_input(&p, "churn_pipeline", "churn");
    p.add_job("churn", "churn", "churn_pipeline", "churn_scores", "");
    let bucket = unique("models");
    create_s3_bucket(&bucket).await;
    let store = s3_store(&bucket);
    let key = ObjectPath::from("churn_pipeline/1/model.onnx");
    let bytes = std::fs::read(dir.join("model.onnx")).unwrap();
    store.put(&key, bytes.clone().into()).await.unwrap();
    std::fs::remove_file(dir.join("model.onnx")).unwrap();
    let toml_path = dir.join("model.toml");
    let spec = std::fs::read_to_string(&toml_path).unwrap().replace(
        "file = \"model.onnx\"",
        &format!(
            "url = \"s3://{bucket}/churn_pipeline/1/model.onnx\"\n\
             storage = {{ endpoint = \"{}\", allow_http = true, region = \"us-east-1\", max_retries = 1 }}",
            s3_endpoint()
        ),
    );
    std::fs::write(&toml_path, spec).unwrap();
    let env = [
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
    ];
    let cache = p.path().join("cache");
    let cache_s = cache.to_str().unwrap();
    let run = |p: &Project| {
        p.scorer_env(
            &[
                "run",
                "jobs/churn.toml",
                "--date",
                DATE,
                "--model-cache",
                cache_s,
            ],
            None,
            &env,
        )
    };
    assert_ok(&run(&p));
    let sha = scorer::model::artifacts::sha256_hex(&bytes);
    let cached = cache.join(&sha);
    assert_eq!(std::fs::read(&cached).unwrap(), bytes);
    // Gone from the store: the cached copy is used.
    store.delete(&key).await.unwrap();
    assert_ok(&run(&p));
    // A corrupt cached copy is not used; with the object gone, the run fails naming the URL.
    std::fs::write(&cached, b"not a graph").unwrap();
    let out = run(&p);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        stderr(&out).contains(&format!("s3://{bucket}/")),
        "{}",
        text(&out)
    );
    // Put back, it is fetched again and the cache is repaired.
    store.put(&key, bytes.clone().into()).await.unwrap();
    assert_ok(&run(&p));
    assert_eq!(std::fs::read(&cached).unwrap(), bytes);
}

/// Without the ONNX Runtime library the onnx kind is refused at load, saying how to install it;
/// the other kinds do not need it.
#[test]
fn a_missing_onnx_runtime_library_says_how_to_install_it() {
    let p = Project::new();
    copy_model(&p, "churn_pipeline", "1");
    copy_model(&p, "w1_mlp", "1");
    let missing = [("ORT_DYLIB_PATH", "/nonexistent/libonnxruntime.so.1.31.1")];
    let out = p.scorer_env(&["models", "verify", "churn_pipeline"], None, &missing);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    for needle in [
        "cannot load the ONNX Runtime library",
        "/nonexistent/libonnxruntime.so.1.31.1",
        "scripts/onnxruntime.sh",
    ] {
        assert!(
            stderr(&out).contains(needle),
            "no `{needle}` in {}",
            text(&out)
        );
    }
    assert_ok(&p.scorer_env(&["models", "verify", "w1_mlp"], None, &missing));
}

/// A category outside the vocabulary under `unknown = "error"` fails the run naming the file,
/// the row group, the column and the value, and publishes nothing.
#[tokio::test]
async fn an_unknown_category_fails_naming_file_row_group_column_and_value() {
    let p = Project::new();
    let dir = copy_model(&p, "churn_pipeline", "1");
    let toml_path = dir.join("model.toml");
    let spec = std::fs::read_to_string(&toml_path).unwrap();
    std::fs::write(
        &toml_path,
        spec.replace("unknown = \"ignore\"", "unknown = \"error\""),
    )
    .unwrap();
    copy_input(&p, "churn_pipeline", "churn");
    p.add_job("churn", "churn", "churn_pipeline", "churn_scores", "");
    let out = p.run("jobs/churn.toml", None);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    for needle in ["input.parquet", "row group 0", "`size_band`", "`giant`"] {
        assert!(
            stderr(&out).contains(needle),
            "no {needle} in {}",
            text(&out)
        );
    }
    let pool = SqlitePool::connect(&p.sqlite_url()).await.unwrap();
    let status: String = sqlx::query_scalar("SELECT status FROM scorer_runs")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(status, "failed");
}

/// A library older than the API scorer was built for (ONNX Runtime 1.20 from its wheel; the
/// test set-up fetches it) is refused at load with the version found and the way to install a
/// newer one.
#[test]
fn an_onnx_runtime_library_that_is_too_old_is_refused_with_its_version() {
    let old = std::env::var("SCORER_TEST_OLD_ORT").unwrap_or_else(|_| {
        panic!("SCORER_TEST_OLD_ORT is not set: run the tests with scripts/test.sh")
    });
    let p = Project::new();
    copy_model(&p, "churn_pipeline", "1");
    let out = p.scorer_env(
        &["models", "verify", "churn_pipeline"],
        None,
        &[("ORT_DYLIB_PATH", old.as_str())],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    for needle in ["1.20.1", ">= 1.31", "scripts/onnxruntime.sh"] {
        assert!(
            stderr(&out).contains(needle),
            "no `{needle}` in {}",
            text(&out)
        );
    }
}

/// `scorer promote` on a model of scorer's own registry: the target version is loaded first
/// (a version that does not exist changes nothing), then the job file's `model.version` is
/// rewritten with its comments kept, the next run scores the new version, and `scorer runs`
/// lists the promotion with its reason. A rollback is the same command.
#[test]
fn promote_rewrites_the_job_files_version_and_is_listed_under_the_runs() {
    let p = Project::new();
    copy_model(&p, "quickstart_mlp", "1");
    copy_model(&p, "quickstart_mlp", "2");
    p.add_input("q", DATE, 500, 8, None);
    let job = p.add_job("promoted", "q", "quickstart_mlp", "promoted_scores", "");
    let written = std::fs::read_to_string(&job).unwrap();
    std::fs::write(
        &job,
        written.replace("version = \"1\"", "version = \"1\"   # the champion"),
    )
    .unwrap();
    let job = job.to_str().unwrap();
    let missing = promote(&p, job, "9", "typo", None);
    assert_eq!(missing.status.code(), Some(2), "{}", text(&missing));
    assert!(
        std::fs::read_to_string(job)
            .unwrap()
            .contains("version = \"1\"")
    );
    let promoted = promote(&p, job, "2", "retrained on November", None);
    assert_ok(&promoted);
    let after = std::fs::read_to_string(job).unwrap();
    assert!(
        after.contains("version = \"2\"   # the champion"),
        "{after}"
    );
    assert_ok(&p.scorer(&["run", job, "--date", DATE], None));
    let runs = p.scorer(&["runs", "promoted"], None);
    assert_ok(&runs);
    let listed = String::from_utf8_lossy(&runs.stdout).to_string();
    assert!(listed.contains("promotions (newest first):"), "{listed}");
    assert!(
        listed.contains("promoted: quickstart_mlp 1 -> 2 by ")
            && listed.contains(": retrained on November"),
        "{listed}"
    );
    let back = promote(&p, job, "1", "rollback", None);
    assert_ok(&back);
    assert!(
        std::fs::read_to_string(job)
            .unwrap()
            .contains("version = \"1\"")
    );
}

/// The same on PostgreSQL: the promotion is a row of `scorer.promotions`, listed by `scorer runs`.
#[tokio::test]
async fn promote_is_recorded_in_postgres() {
    let (url, pool) = crate::common::fresh_pg("promote").await;
    let p = Project::new();
    copy_model(&p, "quickstart_mlp", "1");
    copy_model(&p, "quickstart_mlp", "2");
    let job = p.add_job("promoted_pg", "q", "quickstart_mlp", "promoted_pg", "");
    let job = job.to_str().unwrap();
    let promoted = promote(&p, job, "2", "shadow week looked fine", Some(&url));
    assert_ok(&promoted);
    let (from, to, reason): (Option<String>, String, String) =
        sqlx::query_as("SELECT from_version, to_version, reason FROM scorer.promotions")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(
        (from.as_deref(), to.as_str(), reason.as_str()),
        (Some("1"), "2", "shadow week looked fine")
    );
    let runs = p.scorer(&["runs", "promoted_pg"], Some(&url));
    assert_ok(&runs);
    let listed = String::from_utf8_lossy(&runs.stdout).to_string();
    assert!(
        listed.contains("promoted_pg: quickstart_mlp 1 -> 2 by "),
        "{listed}"
    );
}

/// `scorer promote JOB --to TO --reason REASON` in the project, against `db` (SQLite if `None`).
fn promote(
    p: &Project,
    job: &str,
    to: &str,
    reason: &str,
    db: Option<&str>,
) -> std::process::Output {
    p.scorer(&["promote", job, "--to", to, "--reason", reason], db)
}
