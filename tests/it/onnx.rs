//! The `onnx` kind and declared preprocessing against the libraries that trained the models: each
//! example job in `jobs/` runs from the repository root on its committed fixture, and its table
//! must match the training library's own outputs (saved by scripts/fixtures/make_models.py from
//! scikit-learn's predict/predict_proba and PyTorch's forward, not from onnxruntime).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use arrow::array::{Array, Float64Array, Int64Array};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use sqlx::sqlite::SqlitePool;

use crate::common::{DATE, assert_ok, text};

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `scorer ARGS` from the repository root with its jobs and models, into `db`.
pub fn scorer_in_repo(args: &[&str], db: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_scorer"))
        .current_dir(repo())
        .args(args)
        .env_remove("DATABASE_URL")
        .env("SCORER_SQLITE_PATH", db)
        .env("SCORER_MODEL_CACHE", db.with_extension("cache"))
        .env("RUST_LOG", "scorer=info")
        .output()
        .unwrap()
}

/// The expected outputs of a fixture, by column then id.
fn expected(model: &str) -> BTreeMap<String, BTreeMap<i64, f64>> {
    let path = repo().join(format!("tests/fixtures/models/{model}/expected.parquet"));
    let file = std::fs::File::open(&path).unwrap();
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap();
    let mut out: BTreeMap<String, BTreeMap<i64, f64>> = BTreeMap::new();
    for batch in reader {
        let batch = batch.unwrap();
        let ids = batch
            .column_by_name("id")
            .unwrap()
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap()
            .clone();
        for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
            if field.name() == "id" {
                continue;
            }
            let values: Vec<f64> = if let Some(f) = column.as_any().downcast_ref::<Float64Array>() {
                f.values().to_vec()
            } else {
                let i = column.as_any().downcast_ref::<Int64Array>().unwrap();
                i.values().iter().map(|v| *v as f64).collect()
            };
            let col = out.entry(field.name().clone()).or_default();
            for (id, v) in ids.values().iter().zip(values) {
                col.insert(*id, v);
            }
        }
    }
    out
}

/// Runs the example job `jobs/<model>.toml` and returns the SQLite pool holding its table.
async fn run_example(model: &str) -> (tempfile::TempDir, SqlitePool) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("scorer.db");
    let out = scorer_in_repo(&["run", &format!("jobs/{model}.toml"), "--date", DATE], &db);
    assert_ok(&out);
    let pool = SqlitePool::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    (dir, pool)
}

async fn column(pool: &SqlitePool, table: &str, expr: &str) -> BTreeMap<i64, f64> {
    sqlx::query_as::<_, (i64, f64)>(sqlx::AssertSqlSafe(format!(
        "SELECT id, {expr} FROM {table} WHERE ds = '{DATE}'"
    )))
    .fetch_all(pool)
    .await
    .unwrap()
    .into_iter()
    .collect()
}

/// Largest |got - want| over ids; every expected id must be present, nothing more.
fn max_abs_diff(got: &BTreeMap<i64, f64>, want: &BTreeMap<i64, f64>) -> f64 {
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "the table holds other ids than the fixture"
    );
    got.iter()
        .map(|(id, g)| (g - want[id]).abs())
        .fold(0.0, f64::max)
}

/// ColumnTransformer(StandardScaler + OneHotEncoder) + LogisticRegression: scorer runs the
/// transformer from its stored parameters and the classifier in ONNX Runtime. The reference is
/// scikit-learn's predict_proba in f64; scorer reads the features as f32 (|x| ≤ 4000, so ≤ 2.4e-4
/// absolute, ≤ 6e-8 relative), standardizes in f64 and runs the classifier in f32: the
/// probabilities agree to 1e-5. Rows with a size band the encoder never saw are all-zero one-hot,
/// as scikit-learn's handle_unknown="ignore" does.
#[tokio::test]
async fn column_transformer_pipeline_matches_scikit_learn() {
    let (_dir, pool) = run_example("churn_pipeline").await;
    let want = expected("churn_pipeline");
    for col in ["p_benign", "p_malignant"] {
        let got = column(&pool, "churn_pipeline_scores", col).await;
        let diff = max_abs_diff(&got, &want[col]);
        assert!(diff <= 1e-5, "{col}: max abs diff {diff:e}");
    }
    let labels = column(&pool, "churn_pipeline_scores", "CAST(label AS REAL)").await;
    let p = &want["p_malignant"];
    for (id, label) in &labels {
        // A label can only differ where the probability is within the tolerance of 0.5.
        if (p[id] - 0.5).abs() > 1e-5 {
            assert_eq!(*label, want["label"][id], "label of row {id}");
        }
    }
    let version: String = sqlx::query_scalar("SELECT model_version FROM scorer_runs")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(
        version, "1",
        "`latest` is recorded as the version it resolved to"
    );
}

/// A whole scikit-learn pipeline exported by skl2onnx from its DataFrame: the graph takes each
/// column as its own input, the numbers as double and the size band as a string tensor, and runs
/// the ColumnTransformer itself. scorer maps graph inputs to columns by name and feeds each as
/// declared (no `[preprocess]`, no `[onnx]` map); the scores match predict_proba to 1e-5 and
/// every label agrees away from p = 0.5. `pipeline` is the fixture's name.
async fn whole_pipeline_matches_scikit_learn(pipeline: &str) {
    let (_dir, pool) = run_example(pipeline).await;
    let want = expected(pipeline);
    let table = format!("{pipeline}_scores");
    for col in ["p_benign", "p_malignant"] {
        let got = column(&pool, &table, col).await;
        let diff = max_abs_diff(&got, &want[col]);
        assert!(diff <= 1e-5, "{pipeline} {col}: max abs diff {diff:e}");
    }
    let labels = column(&pool, &table, "CAST(label AS REAL)").await;
    for (id, label) in &labels {
        if (want["p_malignant"][id] - 0.5).abs() > 1e-5 {
            assert_eq!(*label, want["label"][id], "{pipeline}: label of row {id}");
        }
    }
}

/// StandardScaler + OneHotEncoder + LogisticRegression, exported whole.
#[tokio::test]
async fn whole_logistic_pipeline_with_string_inputs_matches_scikit_learn() {
    whole_pipeline_matches_scikit_learn("churn_whole_logistic").await;
}

/// passthrough + OneHotEncoder + RandomForestClassifier, exported whole.
#[tokio::test]
async fn whole_forest_pipeline_with_string_inputs_matches_scikit_learn() {
    whole_pipeline_matches_scikit_learn("churn_whole_forest").await;
}

/// A string graph input meets a null: the job's `on_null` decides, as for numbers. Under
/// "fail" the run stops naming the column; under "skip" the row is quarantined; under
/// "fill:0" the null becomes the empty string, which the one-hot encoder ignores.
#[tokio::test]
async fn null_strings_for_a_string_graph_input_follow_on_null() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("dt=2026-11-24");
    std::fs::create_dir_all(&data).unwrap();
    let src = repo().join("tests/fixtures/models/churn_whole_logistic/dt=2026-11-24/input.parquet");
    let file = std::fs::File::open(src).unwrap();
    let batches: Vec<_> = ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let batch = &batches[0];
    let band = batch.column_by_name("size_band").unwrap();
    let band = arrow::compute::cast(band, &arrow::datatypes::DataType::Utf8).unwrap();
    let band = band
        .as_any()
        .downcast_ref::<arrow::array::StringArray>()
        .unwrap();
    let with_null: arrow::array::StringArray = band
        .iter()
        .enumerate()
        .map(|(i, v)| if i == 2 { None } else { v })
        .collect();
    let mut columns = batch.columns().to_vec();
    let at = batch.schema().index_of("size_band").unwrap();
    columns[at] = std::sync::Arc::new(with_null);
    let schema = arrow::datatypes::Schema::new(
        batch
            .schema()
            .fields()
            .iter()
            .map(|f| match f.name().as_str() {
                "size_band" => arrow::datatypes::Field::new(
                    "size_band",
                    arrow::datatypes::DataType::Utf8,
                    true,
                ),
                _ => f.as_ref().clone(),
            })
            .collect::<Vec<_>>(),
    );
    let nulled =
        arrow::record_batch::RecordBatch::try_new(std::sync::Arc::new(schema), columns).unwrap();
    let out = std::fs::File::create(data.join("input.parquet")).unwrap();
    let mut writer = parquet::arrow::ArrowWriter::try_new(out, nulled.schema(), None).unwrap();
    writer.write(&nulled).unwrap();
    writer.close().unwrap();
    let job = |policy: &str| {
        let path = dir
            .path()
            .join(format!("{}.toml", policy.replace(':', "_")));
        std::fs::write(
            &path,
            format!(
                r#"name = "whole_nulls"
[input]
url = "{}/dt={{{{ ds }}}}/*.parquet"
id_column = "id"
on_null = "{policy}"
[model]
name = "churn_whole_logistic"
version = "1"
[output]
table = "whole_nulls"
"#,
                dir.path().display()
            ),
        )
        .unwrap();
        path
    };
    let db = dir.path().join("scorer.db");
    let fail = scorer_in_repo(&["run", job("fail").to_str().unwrap(), "--date", DATE], &db);
    assert_eq!(fail.status.code(), Some(3), "{}", text(&fail));
    assert!(
        text(&fail).contains("size_band") && text(&fail).contains("null text"),
        "{}",
        text(&fail)
    );
    let skip = scorer_in_repo(&["run", job("skip").to_str().unwrap(), "--date", DATE], &db);
    assert_ok(&skip);
    let pool = SqlitePool::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    let kept = column(&pool, "whole_nulls", "p_malignant").await;
    assert_eq!(kept.len(), batch.num_rows() - 1);
    assert!(!kept.contains_key(&2), "the null row was scored under skip");
    let fill = scorer_in_repo(
        &["run", job("fill:0").to_str().unwrap(), "--date", DATE],
        &db,
    );
    assert_ok(&fill);
    let filled = column(&pool, "whole_nulls", "p_malignant").await;
    assert_eq!(filled.len(), batch.num_rows());
    // Every other row scores as scikit-learn did; the empty band is unknown to the encoder
    // (an all-zero one-hot), so row 2 lost its band's coefficient and scores otherwise.
    let want = &expected("churn_whole_logistic")["p_malignant"];
    for (id, p) in &filled {
        if *id != 2 {
            assert!(
                (p - want[id]).abs() <= 1e-5,
                "row {id}: {p} vs {}",
                want[id]
            );
        }
    }
    assert!((filled[&2] - want[&2]).abs() > 1e-4, "row 2 kept its band");
}

/// RandomForestClassifier as ONNX TreeEnsembleClassifier. scikit-learn's trees compare the f32
/// features against thresholds as ONNX Runtime does, so the same leaves are reached; the leaf
/// averages differ only by f32 rounding: 1e-5.
#[tokio::test]
async fn random_forest_matches_scikit_learn() {
    let (_dir, pool) = run_example("cancer_forest").await;
    let want = expected("cancer_forest");
    let proba: BTreeMap<i64, Vec<f64>> = sqlx::query_as::<_, (i64, String)>(sqlx::AssertSqlSafe(
        format!("SELECT id, proba FROM cancer_forest_scores WHERE ds = '{DATE}'"),
    ))
    .fetch_all(&pool)
    .await
    .unwrap()
    .into_iter()
    .map(|(id, json)| (id, serde_json::from_str(&json).unwrap()))
    .collect();
    for (k, col) in ["p0", "p1"].iter().enumerate() {
        let got: BTreeMap<i64, f64> = proba.iter().map(|(id, v)| (*id, v[k])).collect();
        let diff = max_abs_diff(&got, &want[*col]);
        assert!(diff <= 1e-5, "{col}: max abs diff {diff:e}");
    }
    // Labels agree except on exact ties (one row of the fixture has p = 0.5 for both classes:
    // scikit-learn's argmax takes the first class, ONNX Runtime's f32 sums tip it either way).
    let labels = column(&pool, "cancer_forest_scores", "CAST(label AS REAL)").await;
    let mut ties = 0;
    for (id, label) in &labels {
        if (want["p1"][id] - 0.5).abs() <= 1e-5 {
            ties += 1;
        } else {
            assert_eq!(*label, want["label"][id], "label of row {id}");
        }
    }
    assert!(ties <= 1, "{ties} tied rows");
}

/// Ridge over three derived columns written as polars SQL expressions, computed at training time
/// by polars (Python) and here by polars (Rust) from the same text. The reference is scikit-learn's
/// predict in f64; ONNX Runtime's LinearRegressor sums in f32, whose spacing at the outputs'
/// magnitude (≤ 350) is 3e-5, so the bound is relative: 1e-6 × |expected| (≤ 3.5e-4).
#[tokio::test]
async fn derived_columns_with_polars_match_scikit_learn() {
    let (_dir, pool) = run_example("diabetes_derived").await;
    let want = &expected("diabetes_derived")["progression"];
    let got = column(&pool, "diabetes_derived_scores", "progression").await;
    max_abs_diff(&got, want);
    for (id, g) in &got {
        let w = want[id];
        assert!(
            (g - w).abs() <= 1e-6 * w.abs().max(1.0),
            "row {id}: {g} vs {w}"
        );
    }
}

/// W1's MLP exported from PyTorch with torch.onnx; PyTorch's own f32 forward is the reference:
/// 1e-5.
#[tokio::test]
async fn pytorch_export_matches_pytorch() {
    let dir = tempfile::tempdir().unwrap();
    let job = dir.path().join("w1_mlp_onnx.toml");
    std::fs::write(
        &job,
        r#"name = "w1_mlp_onnx_fixture"
[input]
url = "tests/fixtures/models/w1_mlp_onnx/dt={{ ds }}/*.parquet"
id_column = "id"
[model]
name = "w1_mlp_onnx"
version = "1"
[output]
table = "w1_onnx_scores"
"#,
    )
    .unwrap();
    let db = dir.path().join("scorer.db");
    let out = scorer_in_repo(&["run", job.to_str().unwrap(), "--date", DATE], &db);
    assert_ok(&out);
    let pool = SqlitePool::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    let got = column(&pool, "w1_onnx_scores", "score").await;
    let diff = max_abs_diff(&got, &expected("w1_mlp_onnx")["score"]);
    assert!(diff <= 1e-5, "max abs diff {diff:e}");
}

/// Every example job in jobs/ validates (models load, inputs match) without touching output.
#[test]
fn every_example_job_validates() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("scorer.db");
    for job in [
        "quickstart",
        "w1",
        "w1_onnx",
        "w1_derived",
        "churn_pipeline",
        "churn_whole_logistic",
        "churn_whole_forest",
        "cancer_forest",
        "diabetes_derived",
    ] {
        let args = ["validate", &format!("jobs/{job}.toml")];
        let out = scorer_in_repo(&args, &db);
        assert_ok(&out);
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("OK"),
            "{}",
            text(&out)
        );
    }
    assert!(!db.exists(), "validate wrote a database");
    // A model with preprocessing: validate names the columns a run reads, the categorical one
    // included.
    let out = scorer_in_repo(&["validate", "jobs/churn_pipeline.toml"], &db);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("reads: size_band, mean_radius, mean_texture"),
        "{}",
        text(&out)
    );
}

/// The same network as the native `mlp` kind and as ONNX gives the same scores over a batch of
/// several graph tiles (10,000 rows, nulls filled), on one call as the scoring stage makes them.
#[test]
fn onnx_and_native_mlp_agree_across_tiles() {
    use scorer::model::device::DeviceSpec;
    use scorer::source::{IdKind, SourceBatch};
    use std::sync::Arc;

    let registry = scorer::model::registry::Registry::new(
        repo().join("models"),
        std::env::temp_dir().join("scorer-test-model-cache"),
    );
    let native = scorer::model::load(&registry, "w1_mlp", "1", DeviceSpec::Cpu).unwrap();
    let onnx = scorer::model::load(&registry, "w1_mlp_onnx", "1", DeviceSpec::Cpu).unwrap();
    let rows = 10_000;
    let mut columns: Vec<(String, arrow::array::ArrayRef)> = vec![(
        "id".into(),
        Arc::new(Int64Array::from_iter_values(0..rows as i64)),
    )];
    for f in 0..32 {
        let values: arrow::array::Float32Array = (0..rows)
            .map(|r| {
                let x = ((r * 31 + f * 17) % 997) as f32 / 250.0 - 2.0;
                (f != 0 || r % 97 != 5).then_some(x)
            })
            .collect();
        columns.push((format!("f{f}"), Arc::new(values)));
    }
    let batch = arrow::record_batch::RecordBatch::try_from_iter(columns).unwrap();
    let spec = scorer::features::FeatureSpec {
        id_column: "id".into(),
        id_kind: IdKind::Int,
        features: (0..32).map(|f| format!("f{f}")).collect(),
        on_null: scorer::features::NullPolicy::Fill(0.0),
        on_nan: scorer::features::NanPolicy::Fail,
        preprocess: None,
        passed: Default::default(),
        types: Vec::new(),
    };
    let fb = spec
        .build(&SourceBatch {
            object: Arc::from("test"),
            row_group: 0,
            first_row: 0,
            batch,
        })
        .unwrap();
    let a = native.model.score(&fb).unwrap();
    let b = onnx.model.score(&fb).unwrap();
    let a = scorer::contract::f32_values(a[0].as_ref()).unwrap();
    let b = scorer::contract::f32_values(b[0].as_ref()).unwrap();
    assert_eq!(a.len(), rows);
    assert_eq!(b.len(), rows);
    let diff = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max);
    assert!(diff <= 1e-5, "max abs diff {diff:e}");
}
