//! Models from the MLflow Model Registry (`model.uri = "models:/name@alias"`), against a real
//! tracking server started by scripts/test.sh (`mlflow server`, SQLite backend, artifacts on the
//! S3 emulator, basic auth). Each test logs and registers its models with MLflow's own Python API
//! (scripts/fixtures/mlflow_register.py), then scores them through scorer and compares with the
//! training library's own predictions.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use arrow::array::{Array, Float64Array, Int64Array};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use sqlx::sqlite::SqlitePool;

use crate::common::{DATE, assert_ok, text};

fn env(name: &str) -> String {
    std::env::var(name)
        .unwrap_or_else(|_| panic!("{name} is not set: run the tests with scripts/test.sh"))
}

/// A scratch directory with its own SQLite file and model cache, and a unique model-name prefix
/// (the tracking server is shared by every test).
struct Scratch {
    dir: tempfile::TempDir,
    prefix: String,
}

impl Scratch {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
            prefix: format!("t{}", uuid::Uuid::now_v7().simple()),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn db(&self) -> PathBuf {
        self.path().join("scorer.db")
    }

    /// Logs and registers a model as a new version of `name` with MLflow's Python API; returns
    /// the version. Its input and the library's predictions land in `<dir>/<out>/`.
    fn register(
        &self,
        flavor: &str,
        name: &str,
        out: &str,
        alias: Option<&str>,
        seed: u32,
    ) -> String {
        self.register_in(flavor, name, out, alias, seed, None)
    }

    /// [`register`](Self::register), the artifacts written straight to `location` (s3://) by
    /// MLflow's client instead of through the server.
    fn register_in(
        &self,
        flavor: &str,
        name: &str,
        out: &str,
        alias: Option<&str>,
        seed: u32,
        location: Option<&str>,
    ) -> String {
        let mut cmd = Command::new(env("SCORER_TEST_MLFLOW_PYTHON"));
        cmd.arg(repo().join("scripts/fixtures/mlflow_register.py"))
            .args([flavor, &self.model(name)])
            .arg(self.path().join(out))
            .args(["--seed", &seed.to_string()])
            .env("MLFLOW_TRACKING_URI", env("SCORER_TEST_MLFLOW_URI"))
            .env("MLFLOW_TRACKING_USERNAME", env("SCORER_TEST_MLFLOW_USER"))
            .env(
                "MLFLOW_TRACKING_PASSWORD",
                env("SCORER_TEST_MLFLOW_PASSWORD"),
            );
        if let Some(a) = alias {
            cmd.args(["--alias", a]);
        }
        if let Some(url) = location {
            cmd.args(["--artifact-location", url])
                .env("MLFLOW_S3_ENDPOINT_URL", env("SCORER_TEST_S3_ENDPOINT"))
                .env("AWS_ACCESS_KEY_ID", "test")
                .env("AWS_SECRET_ACCESS_KEY", "test")
                .env("AWS_DEFAULT_REGION", "us-east-1");
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "registering failed:\n{}", text(&out));
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .unwrap_or_default()
            .trim()
            .to_string()
    }

    /// The registered name of test model `name`.
    fn model(&self, name: &str) -> String {
        format!("{}_{name}", self.prefix)
    }

    /// A job scoring `<dir>/<data>/` with `models:/<model>…` (`selector`: `@alias` or `/7`).
    fn job(&self, job: &str, data: &str, model: &str, selector: &str, extra: &str) -> PathBuf {
        let path = self.path().join(format!("{job}.toml"));
        std::fs::write(
            &path,
            format!(
                r#"name = "{job}"
[input]
url = "{}/{data}/dt={{{{ ds }}}}/*.parquet"
id_column = "id"
[model]
uri = "models:/{}{selector}"
{extra}
[output]
table = "{job}"
"#,
                self.path().display(),
                self.model(model),
            ),
        )
        .unwrap();
        path
    }

    /// `scorer ARGS` with this scratch's database and model cache, and no MLflow variables.
    fn bare(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_scorer"));
        cmd.args(args)
            .env_remove("DATABASE_URL")
            .env("SCORER_SQLITE_PATH", self.db())
            .env("SCORER_MODEL_CACHE", self.path().join("cache"))
            // For artifacts in the S3 emulator (which takes any key).
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test");
        cmd
    }

    /// `scorer ARGS` with the tracking server's URI and credentials (`password` replacing the
    /// right one when given).
    fn scorer(&self, args: &[&str], password: Option<&str>) -> Output {
        self.bare(args)
            .env("MLFLOW_TRACKING_URI", env("SCORER_TEST_MLFLOW_URI"))
            .env("MLFLOW_TRACKING_USERNAME", env("SCORER_TEST_MLFLOW_USER"))
            .env(
                "MLFLOW_TRACKING_PASSWORD",
                password.map_or_else(|| env("SCORER_TEST_MLFLOW_PASSWORD"), str::to_string),
            )
            .output()
            .unwrap()
    }

    async fn pool(&self) -> SqlitePool {
        SqlitePool::connect(&format!("sqlite://{}", self.db().display()))
            .await
            .unwrap()
    }
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The library's predictions written by the register script, by id.
fn expected(dir: &Path) -> BTreeMap<i64, f64> {
    let file = std::fs::File::open(dir.join("expected.parquet")).unwrap();
    let mut out = BTreeMap::new();
    for batch in ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap()
    {
        let batch = batch.unwrap();
        let ids = batch
            .column(0)
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap()
            .clone();
        let p = batch
            .column(1)
            .as_any()
            .downcast_ref::<Float64Array>()
            .unwrap()
            .clone();
        for i in 0..ids.len() {
            out.insert(ids.value(i), p.value(i));
        }
    }
    out
}

async fn scores(pool: &SqlitePool, table: &str, column: &str, date: &str) -> BTreeMap<i64, f64> {
    sqlx::query_as::<_, (i64, f64)>(sqlx::AssertSqlSafe(format!(
        "SELECT id, {column} FROM {table} WHERE ds = '{date}'"
    )))
    .fetch_all(pool)
    .await
    .unwrap()
    .into_iter()
    .collect()
}

/// Every expected id scored, each within 1e-5 relative (the gbdt tests' bound).
fn assert_matches(got: &BTreeMap<i64, f64>, want: &BTreeMap<i64, f64>, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: rows");
    for (id, w) in want {
        let g = got[id];
        assert!(
            (g - w).abs() <= 1e-5 * w.abs().max(1e-3),
            "{what}: row {id}: {g} vs the library's {w}"
        );
    }
}

/// XGBoost logged by mlflow.xgboost in UBJSON (MLflow's default) and in JSON, scored through
/// `@champion`, equal to XGBoost's predict_proba.
#[tokio::test]
async fn xgboost_ubj_and_json_score_through_the_alias_like_xgboost() {
    let s = Scratch::new();
    for format in ["xgboost_ubj", "xgboost_json"] {
        s.register(format, format, format, Some("champion"), 0);
        let job = s.job(format, format, format, "@champion", "");
        let out = s.scorer(&["run", job.to_str().unwrap(), "--date", DATE], None);
        assert_ok(&out);
        let got = scores(&s.pool().await, format, "score", DATE).await;
        assert_matches(&got, &expected(&s.path().join(format)), format);
    }
    // A second run finds the version's files in the model cache, whole, and fetches none; a
    // file changed in the cache is fetched again.
    let job = s.path().join("xgboost_ubj.toml");
    let again = s.scorer(&["run", job.to_str().unwrap(), "--date", DATE], None);
    assert_ok(&again);
    assert!(
        text(&again).contains("MLflow files found in the model cache")
            && text(&again).contains("files=3"),
        "{}",
        text(&again)
    );
    let cached = s.path().join(format!(
        "cache/mlflow/{}/1/model.ubj",
        s.model("xgboost_ubj")
    ));
    std::fs::write(&cached, b"{corrupt").unwrap();
    let repaired = s.scorer(&["run", job.to_str().unwrap(), "--date", DATE], None);
    assert_ok(&repaired);
    assert!(text(&repaired).contains("files=2"), "{}", text(&repaired));
    assert_ne!(std::fs::read(&cached).unwrap(), b"{corrupt");
    // What the alias resolves to, checked and loaded, and the registry's listing.
    let uri = format!("models:/{}@champion", s.model("xgboost_ubj"));
    let verify = s.scorer(&["models", "verify", &uri], None);
    assert_ok(&verify);
    let said = String::from_utf8_lossy(&verify.stdout).to_string();
    assert!(
        said.contains(&format!("{uri} -> version 1 (xgboost flavor, run ")),
        "{said}"
    );
    assert!(said.contains(": OK (sha256 "), "{said}");
    // The register script logs three rows as the input example; verify scores them.
    assert!(
        said.contains("input example (3 rows, logged with the model): scored; score = ["),
        "{said}"
    );
    let list = s.scorer(&["models", "list", "--mlflow"], None);
    assert_ok(&list);
    let said = String::from_utf8_lossy(&list.stdout).to_string();
    assert!(
        said.contains(&format!(
            "models:/{}  newest version 1; @champion -> 1",
            s.model("xgboost_json")
        )),
        "{said}"
    );
}

/// A version whose artifacts MLflow keeps in S3 itself (an experiment with an s3://
/// artifact location): scorer fetches them from the bucket with object_store and the job's
/// `[model.storage]`, not through the tracking server.
#[tokio::test]
async fn artifacts_kept_in_s3_are_fetched_from_the_bucket() {
    let s = Scratch::new();
    let bucket = crate::cloud::unique("mlflowdirect");
    crate::cloud::create_s3_bucket(&bucket).await;
    let location = format!("s3://{bucket}/experiments");
    s.register_in(
        "xgboost_json",
        "direct",
        "direct",
        Some("champion"),
        0,
        Some(&location),
    );
    let storage = "[model.storage]\nendpoint = \"${SCORER_TEST_S3_ENDPOINT}\"\nallow_http = true\n\
                   region = \"us-east-1\"\naccess_key_id = \"${AWS_ACCESS_KEY_ID}\"\nsecret_access_key = \"${AWS_SECRET_ACCESS_KEY}\"\nmax_retries = 0";
    let job = s.job("direct", "direct", "direct", "@champion", storage);
    let out = s.scorer(&["run", job.to_str().unwrap(), "--date", DATE], None);
    assert_ok(&out);
    let got = scores(&s.pool().await, "direct", "score", DATE).await;
    assert_matches(&got, &expected(&s.path().join("direct")), "xgboost from s3");
    let source: String = sqlx::query_scalar("SELECT model_source FROM scorer_runs")
        .fetch_one(&s.pool().await)
        .await
        .unwrap();
    assert!(
        source.contains(&format!("\"artifact_uri\":\"s3://{bucket}/experiments/")),
        "{source}"
    );
}

/// A LightGBM booster logged by mlflow.lightgbm, equal to LightGBM's predict_proba.
#[tokio::test]
async fn lightgbm_scores_through_the_alias_like_lightgbm() {
    scores_like_the_library("lightgbm", "", "score").await;
}

/// A whole scikit-learn pipeline (StandardScaler + OneHotEncoder on a string column +
/// LogisticRegression) exported by skl2onnx and logged with mlflow.onnx: the outputs are
/// declared in the job (`[model.declare]`), the rest comes from MLflow; equal to predict_proba.
#[tokio::test]
async fn a_scikit_learn_pipeline_through_the_onnx_flavor_matches_predict_proba() {
    let declare = r#"[model.declare]
outputs = [{ name = "label", type = "i64" }, "p_benign", "p_malignant"]
onnx = { outputs = { label = ["label"], probabilities = ["p_benign", "p_malignant"] } }"#;
    scores_like_the_library("sklearn_onnx", declare, "p_malignant").await;
}

/// Registers a `flavor` model under `@champion`, runs a job on it (with `declare` in its
/// `[model]`), and checks `column` against the library's own predictions.
async fn scores_like_the_library(flavor: &str, declare: &str, column: &str) {
    let s = Scratch::new();
    s.register(flavor, flavor, flavor, Some("champion"), 0);
    let job = s.job(flavor, flavor, flavor, "@champion", declare);
    let out = s.scorer(&["run", job.to_str().unwrap(), "--date", DATE], None);
    assert_ok(&out);
    let got = scores(&s.pool().await, flavor, column, DATE).await;
    assert_matches(&got, &expected(&s.path().join(flavor)), flavor);
}

/// The alias moves to a new version: the next date's run uses it, the ledger shows each date's
/// version and where it came from, and `rerun --from-ledger` of the old date scores with the
/// version recorded, not the one the alias points at now.
#[tokio::test]
async fn moving_the_alias_moves_the_next_run_and_rerun_from_ledger_keeps_the_recorded_version() {
    let s = Scratch::new();
    let v1 = s.register("xgboost_ubj", "m", "v1", Some("champion"), 0);
    // The second version is trained differently (more rounds, another seed).
    let v2 = s.register("xgboost_ubj", "m", "v2", None, 1);
    assert_ne!(v1, v2);
    let (first, second) = (
        expected(&s.path().join("v1")),
        expected(&s.path().join("v2")),
    );
    let (d1, d2) = ("2026-11-24", "2026-11-25");
    let data = s.path().join("v1");
    std::fs::create_dir_all(data.join(format!("dt={d2}"))).unwrap();
    std::fs::copy(
        data.join(format!("dt={d1}/input.parquet")),
        data.join(format!("dt={d2}/input.parquet")),
    )
    .unwrap();
    let job = s.job("moving", "v1", "m", "@champion", "");
    let job = job.to_str().unwrap();
    assert_ok(&s.scorer(&["run", job, "--date", d1], None));
    // Move the alias with MLflow's own client, as a team's promotion step would.
    let moved = Command::new(env("SCORER_TEST_MLFLOW_PYTHON"))
        .args([
            "-c",
            &format!(
                "import mlflow; mlflow.MlflowClient().set_registered_model_alias('{}', 'champion', '{v2}')",
                s.model("m")
            ),
        ])
        .env("MLFLOW_TRACKING_URI", env("SCORER_TEST_MLFLOW_URI"))
        .env("MLFLOW_TRACKING_USERNAME", env("SCORER_TEST_MLFLOW_USER"))
        .env("MLFLOW_TRACKING_PASSWORD", env("SCORER_TEST_MLFLOW_PASSWORD"))
        .output()
        .unwrap();
    assert!(moved.status.success(), "{}", text(&moved));
    assert_ok(&s.scorer(&["run", job, "--date", d2], None));
    let pool = s.pool().await;
    assert_matches(
        &scores(&pool, "moving", "score", d1).await,
        &first,
        "first date",
    );
    assert_matches(
        &scores(&pool, "moving", "score", d2).await,
        &second,
        "second date",
    );
    let ledger = || async {
        let rows: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT logical_date, model_version, model_source FROM scorer_runs \
             WHERE status = 'succeeded' ORDER BY finished_at",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        rows
    };
    let rows = ledger().await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!((rows[0].0.as_str(), rows[0].1.as_str()), (d1, v1.as_str()));
    assert_eq!((rows[1].0.as_str(), rows[1].1.as_str()), (d2, v2.as_str()));
    let source: serde_json::Value = serde_json::from_str(&rows[0].2).unwrap();
    assert_eq!(source["uri"], format!("models:/{}@champion", s.model("m")));
    assert_eq!(source["alias"], "champion");
    assert_eq!(source["version"], v1.as_str());
    assert_eq!(source["flavor"], "xgboost");
    assert!(
        source["run_id"].as_str().is_some_and(|r| r.len() == 32),
        "{source}"
    );
    assert_eq!(
        source["artifacts"]["model.ubj"].as_str().map(str::len),
        Some(64)
    );
    // The alias now points at v2; --from-ledger scores the first date with v1 again.
    let rerun = s.scorer(
        &["rerun", job, "--from", d1, "--to", d1, "--from-ledger"],
        None,
    );
    assert_ok(&rerun);
    assert_matches(
        &scores(&pool, "moving", "score", d1).await,
        &first,
        "rerun of the first date",
    );
    let rows = ledger().await;
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert_eq!((rows[2].0.as_str(), rows[2].1.as_str()), (d1, v1.as_str()));
}

/// `scorer promote` on a model from MLflow: the alias moves (MLflow's set-alias call) once the
/// target version has loaded, the next run scores it, and the ledger lists who promoted what and
/// why. A version that does not exist moves nothing.
#[tokio::test]
async fn promote_moves_the_mlflow_alias_and_records_it() {
    let s = Scratch::new();
    let v1 = s.register("xgboost_ubj", "p", "p1", Some("champion"), 0);
    let v2 = s.register("xgboost_ubj", "p", "p2", None, 1);
    let job = s.job("promo", "p1", "p", "@champion", "");
    let job = job.to_str().unwrap();
    let uri = format!("models:/{}@champion", s.model("p"));
    let missing = s.scorer(&["promote", job, "--to", "99", "--reason", "typo"], None);
    assert_eq!(missing.status.code(), Some(2), "{}", text(&missing));
    let verify = |want: &str| {
        let out = s.scorer(&["models", "verify", &uri], None);
        assert_ok(&out);
        let said = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            said.contains(&format!("{uri} -> version {want} ")),
            "{said}"
        );
    };
    verify(&v1);
    let promoted = s.scorer(
        &[
            "promote",
            job,
            "--to",
            &v2,
            "--reason",
            "better AUC on October",
        ],
        None,
    );
    assert_ok(&promoted);
    assert!(
        String::from_utf8_lossy(&promoted.stdout).contains(&format!("from {v1} to {v2}")),
        "{}",
        text(&promoted)
    );
    verify(&v2);
    assert_ok(&s.scorer(&["run", job, "--date", DATE], None));
    let pool = s.pool().await;
    assert_matches(
        &scores(&pool, "promo", "score", DATE).await,
        &expected(&s.path().join("p2")),
        "after the promotion",
    );
    let (from, to, reason, action): (Option<String>, String, String, String) =
        sqlx::query_as("SELECT from_version, to_version, reason, action FROM scorer_promotions")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(
        (from.as_deref(), to.as_str()),
        (Some(v1.as_str()), v2.as_str())
    );
    assert_eq!(reason, "better AUC on October");
    assert!(action.contains("MLflow alias @champion"), "{action}");
    let runs = s.scorer(&["runs", "promo"], None);
    assert!(
        String::from_utf8_lossy(&runs.stdout).contains(&format!("{uri} {v1} -> {v2} by ")),
        "{}",
        text(&runs)
    );
}

/// What scorer refuses, each with exit 2 and a message that says why; a server that is down is
/// exit 4 (try again later). No credential appears in any output.
#[tokio::test]
async fn refusals_say_why_with_their_exit_codes_and_no_credential() {
    let s = Scratch::new();
    s.register("sklearn_pickle", "pickled", "pickled", Some("champion"), 0);
    let run = |job: &Path, password: Option<&str>| {
        s.scorer(&["run", job.to_str().unwrap(), "--date", DATE], password)
    };
    let pickled = run(
        &s.job("pickled", "pickled", "pickled", "@champion", ""),
        None,
    );
    assert_eq!(pickled.status.code(), Some(2), "{}", text(&pickled));
    assert!(text(&pickled).contains("ONNX flavor"), "{}", text(&pickled));
    // An alias nobody set.
    let missing = run(&s.job("missing", "pickled", "pickled", "@nope", ""), None);
    assert_eq!(missing.status.code(), Some(2), "{}", text(&missing));
    assert!(text(&missing).contains("alias nope"), "{}", text(&missing));
    // A signature that does not fit the job: the job lists two columns, the model takes five.
    s.register("xgboost_ubj", "fit", "fit", Some("champion"), 0);
    let misfit = run(
        &s.job("misfit", "fit", "fit", "@champion", "")
            .with_file_name("misfit.toml"),
        None,
    );
    assert_ok(&misfit);
    let narrow = s.path().join("narrow.toml");
    let text_of = std::fs::read_to_string(s.path().join("misfit.toml")).unwrap();
    std::fs::write(
        &narrow,
        text_of
            .replace("name = \"misfit\"", "name = \"narrow\"")
            .replace(
                "id_column = \"id\"",
                "id_column = \"id\"\nfeatures = [\"mean_radius\", \"mean_texture\"]",
            ),
    )
    .unwrap();
    let narrow_out = run(&narrow, None);
    assert_eq!(narrow_out.status.code(), Some(2), "{}", text(&narrow_out));
    assert!(
        text(&narrow_out).contains("takes 5 inputs"),
        "{}",
        text(&narrow_out)
    );
    // Credentials the server refuses: exit 2, and the password shows nowhere.
    let wrong = "wrong-pw-7f3a9c";
    let refused = run(
        &s.job("refused", "fit", "fit", "@champion", ""),
        Some(wrong),
    );
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused));
    assert!(
        text(&refused).contains("refused the credentials"),
        "{}",
        text(&refused)
    );
    assert!(!text(&refused).contains(wrong), "{}", text(&refused));
    // A bearer token the server does not know (it takes basic auth): refused, never shown.
    let token = "mlflow-token-Qe41Zk8p";
    let misfit_job = s.path().join("misfit.toml");
    let misfit_args = ["run", misfit_job.to_str().unwrap(), "--date", DATE];
    let with_token = s
        .bare(&misfit_args)
        .env("MLFLOW_TRACKING_URI", env("SCORER_TEST_MLFLOW_URI"))
        .env("MLFLOW_TRACKING_TOKEN", token)
        .output()
        .unwrap();
    assert_eq!(with_token.status.code(), Some(2), "{}", text(&with_token));
    assert!(!text(&with_token).contains(token), "{}", text(&with_token));
    let right = env("SCORER_TEST_MLFLOW_PASSWORD");
    for out in [
        &pickled,
        &missing,
        &misfit,
        &narrow_out,
        &refused,
        &with_token,
    ] {
        assert!(!text(out).contains(&right), "{}", text(out));
    }
    let pool = s.pool().await;
    let errors: Vec<(Option<String>, Option<String>)> =
        sqlx::query_as("SELECT error, model_source FROM scorer_runs")
            .fetch_all(&pool)
            .await
            .unwrap();
    for (error, source) in &errors {
        for secret in [wrong, right.as_str(), token] {
            assert!(!error.as_deref().unwrap_or("").contains(secret));
            assert!(!source.as_deref().unwrap_or("").contains(secret));
        }
    }
    // A tracking server that is down: exit 4, with the connection's own cause.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let down = s
        .bare(&misfit_args)
        .env("MLFLOW_TRACKING_URI", format!("http://127.0.0.1:{port}"))
        .output()
        .unwrap();
    assert_eq!(down.status.code(), Some(4), "{}", text(&down));
    assert!(text(&down).contains("cannot be reached"), "{}", text(&down));
}
