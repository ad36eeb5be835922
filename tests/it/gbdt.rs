//! The `gbdt` kind against the libraries that trained the models: every fixture in
//! tests/fixtures/gbdt (made by scripts/fixtures/make_gbdt.py: XGBoost and LightGBM, binary,
//! multiclass, regression, poisson and categorical, on data with missing values and rows on split
//! thresholds) must give each library's own `predict` and margin outputs within 1e-5 relative or
//! 1e-6 absolute, on the CPU evaluator and on the tensor formulation the GPU runs.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::{Array, Float64Array, Int64Array};
use arrow::record_batch::RecordBatch;
use candle_core::Device;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use scorer::contract::OutputColumn;
use scorer::features::{FeatureBatch, FeatureSpec};
use scorer::model::ScoringModel;
use scorer::model::device::DeviceSpec;
use scorer::model::gbdt::{GbdtModel, GbdtOutput, GbdtSpec};
use scorer::model::registry::Registry;
use scorer::model::spec::{KindSpec, ModelSpec};
use scorer::source::SourceBatch;
use scorer::source::footers::IdKind;
use sqlx::sqlite::SqlitePool;

use crate::common::{DATE, assert_ok};

/// The `[gbdt]` section of a gbdt model's spec.
fn gbdt_of(spec: &ModelSpec) -> &GbdtSpec {
    match &spec.kind {
        KindSpec::Gbdt(section) => &section.gbdt,
        other => panic!("not a gbdt model: {other:?}"),
    }
}

/// Every fixture and the number of values it gives per row.
pub(crate) const FIXTURES: [(&str, usize); 10] = [
    ("xgb_binary", 1),
    ("xgb_multiclass", 3),
    ("xgb_regression", 1),
    ("xgb_poisson", 1),
    ("xgb_categorical", 1),
    ("lgb_binary", 1),
    ("lgb_multiclass", 3),
    ("lgb_regression", 1),
    ("lgb_poisson", 1),
    ("lgb_categorical", 1),
];

fn base() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gbdt")
}

pub(crate) fn registry(cache: &std::path::Path) -> Registry {
    Registry::new(base().join("models"), cache.to_path_buf())
}

fn read_parquet(path: PathBuf) -> RecordBatch {
    let file = std::fs::File::open(&path).unwrap();
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap();
    let batches: Vec<RecordBatch> = reader.map(Result::unwrap).collect();
    arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap()
}

/// The fixture's rows as the run would hand them to the model (nulls as NaN).
fn feature_batch(name: &str, features: &[String]) -> FeatureBatch {
    let batch = read_parquet(base().join(format!("data/{name}/dt={DATE}/input.parquet")));
    FeatureSpec {
        id_column: "id".into(),
        id_kind: IdKind::Int,
        features: features.to_vec(),
        on_null: scorer::features::NullPolicy::Fill(f32::NAN),
        on_nan: scorer::features::NanPolicy::Pass,
        preprocess: None,
        passed: Default::default(),
        types: Vec::new(),
    }
    .build(&SourceBatch {
        object: Arc::from(name),
        row_group: 0,
        first_row: 0,
        batch,
    })
    .unwrap()
}

/// Expected columns by name, in id order (ids are 0..n).
fn expected(name: &str) -> BTreeMap<String, Vec<f64>> {
    let batch = read_parquet(base().join(format!("data/{name}/expected.parquet")));
    let ids = batch
        .column_by_name("id")
        .unwrap()
        .as_any()
        .downcast_ref::<Int64Array>()
        .unwrap();
    assert!(
        ids.values()
            .iter()
            .enumerate()
            .all(|(i, id)| *id == i as i64)
    );
    batch
        .schema()
        .fields()
        .iter()
        .zip(batch.columns())
        .filter(|(f, _)| f.name() != "id")
        .map(|(f, c)| {
            let v = c.as_any().downcast_ref::<Float64Array>().unwrap();
            (f.name().clone(), v.values().to_vec())
        })
        .collect()
}

/// The model's values per row, `groups` per row, from its output arrays.
fn values(arrays: &[arrow::array::ArrayRef], groups: usize) -> Vec<Vec<f64>> {
    let flat: Vec<Vec<f32>> = arrays
        .iter()
        .map(|a| scorer::contract::f32_values(a.as_ref()).unwrap().to_vec())
        .collect();
    // one scalar array, or one vector array flattened row by row
    let rows = flat[0].len() / if arrays.len() == 1 { groups } else { 1 };
    (0..groups)
        .map(|k| {
            (0..rows)
                .map(|r| {
                    if arrays.len() == 1 {
                        f64::from(flat[0][r * groups + k])
                    } else {
                        f64::from(flat[k][r])
                    }
                })
                .collect()
        })
        .collect()
}

/// Every value within 1e-5 relative or 1e-6 absolute of the library's.
fn assert_close(what: &str, got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{what}: row count");
    let mut worst = (0.0f64, 0usize);
    for (r, (g, w)) in got.iter().zip(want).enumerate() {
        let err = (g - w).abs() / 1e-6f64.max(1e-5 * w.abs());
        if err > worst.0 || err.is_nan() {
            worst = (err, r);
        }
    }
    assert!(
        worst.0 <= 1.0,
        "{what}: row {} is {} but the library gives {} (error {:.2} of the tolerance)",
        worst.1,
        got[worst.1],
        want[worst.1],
        worst.0
    );
}

pub(crate) fn check_fixture(
    model: &dyn scorer::model::ScoringModel,
    name: &str,
    groups: usize,
    prefix: &str,
) {
    let spec = scorer::model::read_spec(&registry(std::path::Path::new("/nonexistent")), name, "1")
        .unwrap();
    let batch = feature_batch(name, &spec.inputs);
    let got = values(&model.score(&batch).unwrap(), groups);
    let want = expected(name);
    for (k, g) in got.iter().enumerate() {
        let col = if groups == 1 {
            prefix.to_string()
        } else {
            format!("{prefix}{k}")
        };
        assert_close(&format!("{name} {col}"), g, &want[&col]);
    }
}

/// The model file and declared outputs of a fixture, for building variants of it.
fn parts(name: &str) -> (Vec<u8>, scorer::model::spec::ModelSpec, Vec<OutputColumn>) {
    let dir = base().join(format!("models/{name}/1"));
    let spec = scorer::model::read_spec(&registry(std::path::Path::new("/nonexistent")), name, "1")
        .unwrap();
    let file = spec.artifacts["model"].file.clone().unwrap();
    let bytes = std::fs::read(dir.join(file)).unwrap();
    let outputs = spec.outputs.iter().map(|o| o.column()).collect();
    (bytes, spec, outputs)
}

#[test]
fn cpu_evaluator_matches_each_library_predict() {
    let cache = tempfile::tempdir().unwrap();
    for (name, groups) in FIXTURES {
        let loaded = scorer::model::load(&registry(cache.path()), name, "1", DeviceSpec::Cpu)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        check_fixture(loaded.model.as_ref(), name, groups, "pred");
    }
}

#[test]
fn cpu_evaluator_matches_each_library_margin() {
    for (name, groups) in FIXTURES {
        let (bytes, spec, outputs) = parts(name);
        let mut gbdt = gbdt_of(&spec).clone();
        gbdt.output = GbdtOutput::Margin;
        let model = GbdtModel::build(
            &bytes,
            std::path::Path::new(name),
            &gbdt,
            &spec.inputs,
            &outputs,
            &Device::Cpu,
        )
        .unwrap();
        check_fixture(&model, name, groups, "margin");
    }
}

/// XGBoost's UBJSON (`save_model("model.ubj")`, MLflow's default): each XGBoost fixture saved
/// again by XGBoost as UBJSON (scripts/fixtures/make_ubj.py) reads as the same forest as its JSON
/// and scores the library's predictions, whichever of the two formats model.toml names.
#[test]
fn xgboost_ubjson_models_read_as_their_json_and_score_the_same() {
    use scorer::model::gbdt::GbdtFormat;
    for (name, groups) in FIXTURES.iter().filter(|(n, _)| n.starts_with("xgb_")) {
        let dir = base().join(format!("models/{name}/1"));
        let json = std::fs::read(dir.join("model.json")).unwrap();
        let ubj = std::fs::read(dir.join("model.ubj")).unwrap();
        assert_eq!(ubj.first(), Some(&b'{'), "{name}");
        // the same forest, bit for bit (XGBoost keeps splits and leaves in f32)
        assert_eq!(
            scorer::model::gbdt::parse(GbdtFormat::XgboostUbj, &ubj).unwrap(),
            scorer::model::gbdt::parse(GbdtFormat::XgboostJson, &json).unwrap(),
            "{name}"
        );
        let (_, spec, outputs) = parts(name);
        for format in [GbdtFormat::XgboostUbj, GbdtFormat::XgboostJson] {
            let gbdt = GbdtSpec {
                format,
                ..gbdt_of(&spec).clone()
            };
            let model = GbdtModel::build(
                &ubj,
                std::path::Path::new("model.ubj"),
                &gbdt,
                &spec.inputs,
                &outputs,
                &Device::Cpu,
            )
            .unwrap();
            check_fixture(&model, name, *groups, "pred");
        }
    }
}

/// The GPU's formulation (perfect trees as tensors), run by candle on the CPU: the same numbers,
/// for every fixture (categorical splits arrive as 0/1 columns computed per row, zero-as-missing
/// features with their zero band as NaN).
#[test]
fn tensor_formulation_matches_each_library() {
    for (name, groups) in FIXTURES {
        let (bytes, spec, outputs) = parts(name);
        let built =
            GbdtModel::build_tensor(&bytes, gbdt_of(&spec), &spec.inputs, &outputs, &Device::Cpu)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        check_fixture(&built, name, groups, "pred");
    }
}

/// A model.toml whose inputs are not the file's features, in count or in order, is refused
/// before any row is read, naming both lists.
#[test]
fn declared_inputs_must_match_the_file() {
    let (bytes, spec, outputs) = parts("lgb_binary");
    let gbdt = gbdt_of(&spec).clone();
    let mut swapped = spec.inputs.clone();
    swapped.swap(0, 1);
    let err = GbdtModel::build(
        &bytes,
        std::path::Path::new("m.txt"),
        &gbdt,
        &swapped,
        &outputs,
        &Device::Cpu,
    )
    .err()
    .unwrap()
    .to_string();
    assert!(
        err.contains("input 0 is `mean_texture` in model.toml but `mean_radius` in the model file"),
        "{err}"
    );
    let err = GbdtModel::build(
        &bytes,
        std::path::Path::new("m.txt"),
        &gbdt,
        &spec.inputs[..5],
        &outputs,
        &Device::Cpu,
    )
    .err()
    .unwrap()
    .to_string();
    assert!(
        err.contains("the model file has 30 features but model.toml declares 5 inputs"),
        "{err}"
    );
    let (bytes, spec, _) = parts("xgb_multiclass");
    let err = GbdtModel::build(
        &bytes,
        std::path::Path::new("m.json"),
        gbdt_of(&spec),
        &spec.inputs,
        &[OutputColumn {
            name: "score".into(),
            ty: scorer::contract::OutputType::Float32,
        }],
        &Device::Cpu,
    )
    .err()
    .unwrap()
    .to_string();
    assert!(
        err.contains("computes 3 value(s) per row") && err.contains("size = 3"),
        "{err}"
    );
}

/// End to end: `scorer run` over the fixture's Parquet into SQLite, from the job file; the
/// table holds the library's probabilities (a vector column for the multiclass model).
#[tokio::test]
async fn jobs_score_gbdt_models_end_to_end() {
    for (name, column) in [("xgb_binary", "score"), ("lgb_multiclass", "proba")] {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("scorer.db");
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_scorer"))
            .current_dir(base())
            .args(["run", &format!("jobs/{name}.toml"), "--date", DATE])
            .args(["--models-dir", "models"])
            .env_remove("DATABASE_URL")
            .env("SCORER_SQLITE_PATH", &db)
            .env("SCORER_MODEL_CACHE", dir.path().join("cache"))
            .output()
            .unwrap();
        assert_ok(&out);
        let pool = SqlitePool::connect(&format!("sqlite://{}", db.display()))
            .await
            .unwrap();
        let want = expected(name);
        let rows: Vec<(i64, String)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT id, CAST({column} AS TEXT) FROM {name}_scores WHERE ds = '{DATE}' ORDER BY id"
        )))
        .fetch_all(&pool)
        .await
        .unwrap();
        assert_eq!(rows.len(), want.values().next().unwrap().len(), "{name}");
        let groups = if column == "proba" { 3 } else { 1 };
        for k in 0..groups {
            let got: Vec<f64> = rows
                .iter()
                .map(|(_, v)| {
                    if groups == 1 {
                        v.parse().unwrap()
                    } else {
                        let list: Vec<f64> = serde_json::from_str(v).unwrap();
                        list[k]
                    }
                })
                .collect();
            let col = if groups == 1 {
                "pred".to_string()
            } else {
                format!("pred{k}")
            };
            assert_close(&format!("{name} {col} in SQLite"), &got, &want[&col]);
        }
    }
}

/// The categorical fixtures with their categories as text, as a warehouse holds them: the
/// model's `[[preprocess.categorical]] encoding = "index"` turns each string into the code the
/// library was trained on (nulls stay missing), and `scorer run` into SQLite gives the library's
/// predictions for every row, unseen categories and missing values included.
#[tokio::test]
async fn categorical_models_score_from_string_columns_end_to_end() {
    const COLUMNS: [&str; 2] = ["segment", "texture_band"];
    for name in ["xgb_categorical", "lgb_categorical"] {
        let dir = tempfile::tempdir().unwrap();
        // the data: each code k as the string "c<k>"
        let input = read_parquet(base().join(format!("data/{name}/dt={DATE}/input.parquet")));
        let mut largest = 0i64;
        let mut columns = Vec::new();
        for (field, column) in input.schema().fields().iter().zip(input.columns()) {
            if !COLUMNS.contains(&field.name().as_str()) {
                columns.push((field.name().clone(), Arc::clone(column)));
                continue;
            }
            let codes = arrow::compute::cast(column, &arrow::datatypes::DataType::Float64).unwrap();
            let codes = codes.as_any().downcast_ref::<Float64Array>().unwrap();
            let text: arrow::array::StringArray = codes
                .iter()
                .map(|c| {
                    c.map(|c| {
                        largest = largest.max(c as i64);
                        format!("c{}", c as i64)
                    })
                })
                .collect();
            columns.push((
                field.name().clone(),
                Arc::new(text) as arrow::array::ArrayRef,
            ));
        }
        let strings = RecordBatch::try_from_iter(columns).unwrap();
        let data = dir.path().join(format!("data/dt={DATE}"));
        std::fs::create_dir_all(&data).unwrap();
        let file = std::fs::File::create(data.join("input.parquet")).unwrap();
        let mut writer =
            parquet::arrow::ArrowWriter::try_new(file, strings.schema(), None).unwrap();
        writer.write(&strings).unwrap();
        writer.close().unwrap();
        // the model: the fixture's file, declaring the two index encodings (version 1 with
        // every category, version 2 without `c3`)
        let vocabulary: Vec<String> = (0..=largest).map(|k| format!("c{k}")).collect();
        let short: Vec<String> = vocabulary.iter().filter(|c| *c != "c3").cloned().collect();
        for (version, vocabulary) in [("1", &vocabulary), ("2", &short)] {
            let models = dir.path().join(format!("models/{name}/{version}"));
            std::fs::create_dir_all(&models).unwrap();
            for entry in std::fs::read_dir(base().join(format!("models/{name}/1"))).unwrap() {
                let entry = entry.unwrap();
                std::fs::copy(entry.path(), models.join(entry.file_name())).unwrap();
            }
            let mut toml = std::fs::read_to_string(models.join("model.toml")).unwrap();
            for column in COLUMNS {
                toml.push_str(&format!(
                    "\n[[preprocess.categorical]]\ncolumn = \"{column}\"\nencoding = \"index\"\nvocabulary = {vocabulary:?}\n"
                ));
            }
            std::fs::write(models.join("model.toml"), toml).unwrap();
            std::fs::write(
                dir.path().join(format!("v{version}.toml")),
                format!(
                    "name = \"{name}_strings\"\n[input]\nurl = \"data/dt={{{{ ds }}}}/*.parquet\"\n\
                     id_column = \"id\"\n[model]\nname = \"{name}\"\nversion = \"{version}\"\n\
                     [output]\ntable = \"scores\"\n"
                ),
            )
            .unwrap();
        }
        let db = dir.path().join("scorer.db");
        let scorer = |args: &[&str]| {
            std::process::Command::new(env!("CARGO_BIN_EXE_scorer"))
                .current_dir(dir.path())
                .args(args)
                .args(["--date", DATE, "--models-dir", "models"])
                .env_remove("DATABASE_URL")
                .env("SCORER_SQLITE_PATH", &db)
                .env("SCORER_MODEL_CACHE", dir.path().join("cache"))
                .output()
                .unwrap()
        };
        // `validate` runs the first rows through the preprocessing and the model: a category
        // the vocabulary lacks is found before any run (the data's exit code, 3).
        let out = scorer(&["validate", "v1.toml"]);
        assert_ok(&out);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains("sample: the first"), "{stdout}");
        let out = scorer(&["validate", "v2.toml"]);
        assert_eq!(out.status.code(), Some(3), "{}", crate::common::text(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("`c3`") && stderr.contains("not in the vocabulary"),
            "{stderr}"
        );
        let out = scorer(&["run", "v1.toml"]);
        assert_ok(&out);
        let pool = SqlitePool::connect(&format!("sqlite://{}", db.display()))
            .await
            .unwrap();
        let rows: Vec<(i64, f64)> =
            sqlx::query_as("SELECT id, score FROM scores WHERE ds = ?1 ORDER BY id")
                .bind(DATE)
                .fetch_all(&pool)
                .await
                .unwrap();
        let got: Vec<f64> = rows.iter().map(|(_, v)| *v).collect();
        assert_close(
            &format!("{name} from strings"),
            &got,
            &expected(name)["pred"],
        );
    }
}

/// Damaged or foreign model files are refused with an error naming the file, never a panic.
#[test]
fn damaged_model_files_are_refused_with_the_file_named() {
    let (xgb, xspec, xout) = parts("xgb_binary");
    let (lgb, lspec, lout) = parts("lgb_binary");
    let ubj = std::fs::read(base().join("models/xgb_binary/1/model.ubj")).unwrap();
    let text = String::from_utf8(xgb.clone()).unwrap();
    let cases: Vec<(Vec<u8>, bool, &str)> = vec![
        (
            xgb[..xgb.len() / 2].to_vec(),
            true,
            "not an XGBoost JSON model",
        ),
        (lgb.clone(), true, "not an XGBoost JSON model"),
        (
            text.replacen("\"left_children\":[1,", "\"left_children\":[999,", 1)
                .into_bytes(),
            true,
            "out of range",
        ),
        (
            text.replacen("binary:logistic", "rank:pairwise", 1)
                .into_bytes(),
            true,
            "objective `rank:pairwise` is not supported",
        ),
        (xgb.clone(), false, "not a LightGBM text model"),
        (
            ubj[..ubj.len() / 2].to_vec(),
            true,
            "not an XGBoost UBJSON model: the file ends",
        ),
        (lgb[..lgb.len() / 3].to_vec(), false, "cut short"),
        (
            String::from_utf8(lgb.clone())
                .unwrap()
                .replacen("objective=binary sigmoid:1", "objective=lambdarank", 1)
                .into_bytes(),
            false,
            "objective `lambdarank` is not supported",
        ),
    ];
    for (bytes, is_xgb, want) in cases {
        let (spec, outputs) = if is_xgb {
            (&xspec, &xout)
        } else {
            (&lspec, &lout)
        };
        let err = GbdtModel::build(
            &bytes,
            std::path::Path::new("models/m/1/model.bin"),
            gbdt_of(spec),
            &spec.inputs,
            outputs,
            &Device::Cpu,
        )
        .err()
        .unwrap_or_else(|| panic!("accepted a damaged file (wanted: {want})"))
        .to_string();
        assert!(
            err.contains("models/m/1/model.bin") && err.contains(want),
            "{err}"
        );
    }
}

/// `{ name = "label", type = "i64" }` beside the probabilities: the predicted class, the argmax of
/// the library's probabilities (what `predict` gives for `multi:softmax`), or for a binary model
/// probability > 0.5; refused for a regressor.
#[test]
fn a_label_output_is_the_predicted_class() {
    use scorer::contract::OutputType;
    for (name, groups) in [
        ("xgb_multiclass", 3),
        ("lgb_multiclass", 3),
        ("xgb_binary", 1),
    ] {
        let (bytes, spec, mut outputs) = parts(name);
        outputs.push(OutputColumn {
            name: "label".into(),
            ty: OutputType::Int64,
        });
        let model = GbdtModel::build(
            &bytes,
            std::path::Path::new(name),
            gbdt_of(&spec),
            &spec.inputs,
            &outputs,
            &Device::Cpu,
        )
        .unwrap();
        let batch = feature_batch(name, &spec.inputs);
        let arrays = model.score(&batch).unwrap();
        assert_eq!(arrays.len(), 2);
        let labels = arrays[1]
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap()
            .values()
            .to_vec();
        let want = expected(name);
        let mut agree = 0;
        for (r, label) in labels.iter().enumerate() {
            let class = if groups == 1 {
                i64::from(want["pred"][r] > 0.5)
            } else {
                let p: Vec<f64> = (0..groups).map(|k| want[&format!("pred{k}")][r]).collect();
                let mut best = 0;
                for k in 1..groups {
                    if p[k] > p[best] {
                        best = k;
                    }
                }
                best as i64
            };
            agree += usize::from(*label == class);
        }
        assert_eq!(
            agree,
            labels.len(),
            "{name}: labels agree with the library's classes"
        );
    }
    let (bytes, spec, mut outputs) = parts("xgb_regression");
    outputs.push(OutputColumn {
        name: "label".into(),
        ty: OutputType::Int64,
    });
    let err = GbdtModel::build(
        &bytes,
        std::path::Path::new("m.json"),
        gbdt_of(&spec),
        &spec.inputs,
        &outputs,
        &Device::Cpu,
    )
    .err()
    .unwrap()
    .to_string();
    assert!(err.contains("is not a classifier"), "{err}");
}

/// The fixture's rows as plain f32 rows in the model's input order (nulls as NaN).
fn input_rows(name: &str, inputs: &[String]) -> Vec<Vec<f32>> {
    use arrow::array::AsArray;
    use arrow::datatypes::Float32Type;
    let batch = read_parquet(base().join(format!("data/{name}/dt={DATE}/input.parquet")));
    let columns: Vec<_> = inputs
        .iter()
        .map(|f| {
            let c = arrow::compute::cast(
                batch.column_by_name(f).unwrap(),
                &arrow::datatypes::DataType::Float32,
            )
            .unwrap();
            c.as_primitive::<Float32Type>().clone()
        })
        .collect();
    (0..batch.num_rows())
        .map(|r| {
            columns
                .iter()
                .map(|c| if c.is_null(r) { f32::NAN } else { c.value(r) })
                .collect()
        })
        .collect()
}

/// TreeSHAP against the libraries: for every fixture (both libraries, every objective, rows on
/// split thresholds, missing values, categorical splits and unseen categories) each row's
/// contributions equal XGBoost's `pred_contribs` / LightGBM's `pred_contrib`
/// (scripts/fixtures/make_contribs.py) within 1e-5 of the row's margin scale, and each group's
/// contributions sum to its margin within 1e-6.
#[test]
fn contributions_match_each_library_and_sum_to_the_margin() {
    use arrow::array::AsArray;
    use arrow::datatypes::Float64Type;
    for (name, groups) in FIXTURES {
        let (bytes, spec, _) = parts(name);
        let forest = scorer::model::gbdt::parse(gbdt_of(&spec).format, &bytes).unwrap();
        forest
            .check_covers()
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let want = read_parquet(base().join(format!("data/{name}/contributions.parquet")));
        let want = want.column_by_name("contrib").unwrap().as_list::<i32>();
        let rows = input_rows(name, &spec.inputs);
        assert_eq!(rows.len(), want.len());
        let width = spec.inputs.len() + 1;
        let tables = scorer::model::gbdt::shap_tables::ShapTables::build(&forest)
            .unwrap_or_else(|| panic!("{name}: the tables fit the budget"));
        let mut worst = 0.0f64;
        for (r, row) in rows.iter().enumerate() {
            let got = forest.contributions(row);
            // The tables give the recursion's values, by another route (their entries are f32:
            // to 1e-6 of the row's largest value).
            let scale = got.iter().fold(1.0f64, |m, v| m.max(v.abs()));
            for (a, b) in got.iter().zip(tables.contributions(&forest, row)) {
                assert!((a - b).abs() <= 1e-6 * scale, "{name} row {r}: {a} vs {b}");
            }
            let lib = want.value(r);
            let lib = lib.as_primitive::<Float64Type>().values();
            assert_eq!(got.len(), groups * width, "{name}");
            assert_eq!(lib.len(), got.len(), "{name}");
            let margins = forest.margins(row);
            let scale = margins.iter().fold(1.0f64, |m, v| m.max(v.abs()));
            for (i, (g, w)) in got.iter().zip(lib).enumerate() {
                let err = (g - w).abs() / scale;
                worst = worst.max(err);
                assert!(
                    err <= 1e-5,
                    "{name} row {r} value {i} (group {}, feature {}): {g} vs the library's {w}",
                    i / width,
                    i % width
                );
            }
            for (k, margin) in margins.iter().enumerate() {
                let sum: f64 = got[k * width..(k + 1) * width].iter().sum();
                assert!(
                    (sum - margin).abs() <= 1e-6,
                    "{name} row {r} group {k}: contributions sum to {sum}, margin {margin}"
                );
            }
        }
        eprintln!(
            "{name}: {} rows x {} contributions, worst difference {worst:.2e} of the margin scale",
            rows.len(),
            groups * width
        );
    }
}

/// The tables run in blocks of rows (full blocks and a short last one) with every kernel this
/// CPU has (scalar, AVX2, AVX-512) give the recursion's contributions for every fixture row.
#[test]
fn contributions_in_blocks_agree_across_kernels() {
    use scorer::model::gbdt::cpu::Kernel;
    for (name, _) in FIXTURES {
        let (bytes, spec, _) = parts(name);
        let forest = scorer::model::gbdt::parse(gbdt_of(&spec).format, &bytes).unwrap();
        let rows = input_rows(name, &spec.inputs);
        let x: Vec<f32> = rows.iter().flatten().copied().collect();
        let width = (forest.features + 1) * forest.groups;
        let mut tested = Vec::new();
        for kernel in [Kernel::Scalar, Kernel::Avx2, Kernel::Avx512] {
            if !kernel.available() {
                continue;
            }
            let tables = scorer::model::gbdt::shap_tables::ShapTables::build(&forest)
                .unwrap()
                .with_kernel(kernel);
            let mut out = vec![0f32; rows.len() * width];
            tables.contributions_into(&forest, &x, rows.len(), &mut out);
            for (r, row) in rows.iter().enumerate() {
                let want = forest.contributions(row);
                let scale = want.iter().fold(1.0f64, |m, v| m.max(v.abs()));
                for (j, w) in want.iter().enumerate() {
                    let got = f64::from(out[r * width + j]);
                    assert!(
                        (got - w).abs() <= 1e-6 * scale,
                        "{name} {kernel:?} row {r} value {j}: {got} vs {w}"
                    );
                }
            }
            tested.push(kernel);
        }
        assert!(tested.contains(&Kernel::Scalar), "{name}");
        eprintln!("{name}: {} rows, kernels {tested:?}", rows.len());
    }
}

/// The library's contributions of a fixture, by row (id order).
fn library_contributions(name: &str) -> Vec<Vec<f64>> {
    use arrow::array::AsArray;
    use arrow::datatypes::Float64Type;
    let batch = read_parquet(base().join(format!("data/{name}/contributions.parquet")));
    let list = batch.column_by_name("contrib").unwrap().as_list::<i32>();
    (0..list.len())
        .map(|r| {
            list.value(r)
                .as_primitive::<Float64Type>()
                .values()
                .to_vec()
        })
        .collect()
}

/// `got` (f32, as written) against the library's values, within 1e-5 of the row's scale.
fn assert_contributions(what: &str, got: &[f32], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{what}");
    let scale = want.iter().fold(1.0f64, |m, v| m.max(v.abs()));
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (f64::from(*g) - w).abs() <= 1e-5 * scale,
            "{what} value {i}: {g} vs the library's {w}"
        );
    }
}

/// A fixture's model directory copied into `models`, its outputs followed by `extra`.
fn model_with_outputs(models: &std::path::Path, name: &str, extra: &str) {
    let from = base().join(format!("models/{name}/1"));
    let to = models.join(format!("{name}/1"));
    std::fs::create_dir_all(&to).unwrap();
    for entry in std::fs::read_dir(&from).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, to.join(path.file_name().unwrap())).unwrap();
    }
    let toml = std::fs::read_to_string(to.join("model.toml")).unwrap();
    let outputs = toml
        .lines()
        .find(|l| l.starts_with("outputs = ["))
        .unwrap()
        .to_string();
    let with = format!("{}, {extra}]", outputs.trim_end_matches(']'));
    std::fs::write(to.join("model.toml"), toml.replace(&outputs, &with)).unwrap();
}

/// `{ name = "contrib", kind = "contributions" }` in model.toml: a job writes each row's
/// contributions beside its score, into SQLite and PostgreSQL, equal to the library's (f32 as
/// written); `scorer models list` shows the vector's length.
#[tokio::test]
async fn a_job_writes_contributions_beside_the_score() {
    for name in ["xgb_categorical", "lgb_multiclass"] {
        let dir = tempfile::tempdir().unwrap();
        let models = dir.path().join("models");
        model_with_outputs(
            &models,
            name,
            r#"{ name = "contrib", kind = "contributions" }"#,
        );
        let job = dir.path().join("explain.toml");
        std::fs::write(
            &job,
            format!(
                "name = \"explain_{name}\"\n[input]\nurl = \"{}/data/{name}/dt={{{{ ds }}}}/*.parquet\"\n\
                 id_column = \"id\"\n[model]\nname = \"{name}\"\nversion = \"1\"\n[output]\n\
                 table = \"explained\"\n",
                base().display()
            ),
        )
        .unwrap();
        let (pg_url, pg) = crate::common::fresh_pg("contributions").await;
        let want = library_contributions(name);
        for db in [None, Some(pg_url.as_str())] {
            let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_scorer"));
            cmd.current_dir(dir.path())
                .args(["--models-dir", models.to_str().unwrap(), "run"])
                .arg(&job)
                .args(["--date", DATE])
                .env("SCORER_MODEL_CACHE", dir.path().join("cache"));
            match db {
                Some(url) => cmd.env("DATABASE_URL", url),
                None => cmd
                    .env_remove("DATABASE_URL")
                    .env("SCORER_SQLITE_PATH", dir.path().join("scorer.db")),
            };
            let out = cmd.output().unwrap();
            assert_ok(&out);
            let rows: Vec<(i64, Vec<f32>)> = match db {
                None => {
                    let pool = SqlitePool::connect(&format!(
                        "sqlite://{}/scorer.db",
                        dir.path().display()
                    ))
                    .await
                    .unwrap();
                    let rows: Vec<(i64, String)> =
                        sqlx::query_as("SELECT id, contrib FROM explained ORDER BY id")
                            .fetch_all(&pool)
                            .await
                            .unwrap();
                    rows.into_iter()
                        .map(|(id, v)| (id, serde_json::from_str(&v).unwrap()))
                        .collect()
                }
                Some(_) => sqlx::query_as("SELECT id, contrib FROM explained ORDER BY id")
                    .fetch_all(&pg)
                    .await
                    .unwrap(),
            };
            assert_eq!(rows.len(), want.len(), "{name}");
            for (id, got) in &rows {
                assert_contributions(
                    &format!(
                        "{name} row {id} in {}",
                        if db.is_some() { "PostgreSQL" } else { "SQLite" }
                    ),
                    got,
                    &want[*id as usize],
                );
            }
        }
        let listed = std::process::Command::new(env!("CARGO_BIN_EXE_scorer"))
            .args(["--models-dir", models.to_str().unwrap(), "models", "list"])
            .output()
            .unwrap();
        assert_ok(&listed);
        let width = want[0].len();
        assert!(
            String::from_utf8_lossy(&listed.stdout).contains(&format!("contrib (f32[{width}])")),
            "{}",
            crate::common::text(&listed)
        );
    }
}

/// One row's reason codes as the README documents them, from its contributions as written:
/// group `class`'s features (not the bias) whose contributions have `sign`, largest magnitude
/// first, equal ones in input order, at most `k`; as (feature, value).
fn expected_reasons(
    contrib: &[f32],
    features: usize,
    class: usize,
    k: usize,
    negative: bool,
) -> Vec<(usize, f32)> {
    let group = &contrib[class * (features + 1)..class * (features + 1) + features];
    let mut picked: Vec<(usize, f32)> = group
        .iter()
        .copied()
        .enumerate()
        .filter(|(_, v)| if negative { *v < 0.0 } else { *v > 0.0 })
        .collect();
    picked.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()).then(a.0.cmp(&b.0)));
    picked.truncate(k);
    picked
}

/// One row as read back from a sink: id, contributions, reasons and their values, the negative
/// reasons and theirs.
type ReasonRow = (i64, Vec<f32>, Vec<String>, Vec<f32>, Vec<String>, Vec<f32>);

/// Checks every row's reason codes against its contributions (the documented rule), the job's
/// texts and the library's contributions.
fn assert_reasons(
    what: &str,
    rows: &[ReasonRow],
    inputs: &[String],
    class: usize,
    library: &[Vec<f64>],
) {
    assert_eq!(rows.len(), library.len(), "{what}");
    let mut listed = 0;
    for (id, contrib, reasons, values, against, against_by) in rows {
        for (names, vals, k, negative) in
            [(reasons, values, 3, false), (against, against_by, 2, true)]
        {
            let want = expected_reasons(contrib, inputs.len(), class, k, negative);
            let texts: Vec<String> = want
                .iter()
                .map(|(f, _)| format!("Because of {}", inputs[*f]))
                .collect();
            assert_eq!(names, &texts, "{what} row {id}");
            let want_values: Vec<f32> = want.iter().map(|(_, v)| *v).collect();
            assert_eq!(vals, &want_values, "{what} row {id}");
            let lib = &library[*id as usize];
            let scale = lib.iter().fold(1.0f64, |m, v| m.max(v.abs()));
            for (f, v) in &want {
                let l = lib[class * (inputs.len() + 1) + f];
                assert!(
                    (f64::from(*v) - l).abs() <= 1e-5 * scale,
                    "{what} row {id} feature {f}: {v} vs {l}"
                );
            }
            listed += names.len();
        }
    }
    assert!(
        listed > rows.len(),
        "{what}: only {listed} reasons in {} rows",
        rows.len()
    );
}

/// `{ name = "reasons", kind = "top_contributions" }` in model.toml and `[model.reasons]` in the
/// job: reason codes (positive, k = 3, and negative, k = 2, with a named values column), worded
/// by the job, written into PostgreSQL (text[] and real[]), SQLite (JSON arrays) and Delta
/// (read by `deltalake`), each row's equal to the rule applied to its contributions; the
/// README's analyst query runs on the PostgreSQL table. For a multiclass model, `class` picks
/// the group.
#[tokio::test]
async fn a_job_writes_reason_codes_into_postgresql_sqlite_and_delta() {
    for (name, class) in [("xgb_categorical", 0usize), ("lgb_multiclass", 1)] {
        let dir = tempfile::tempdir().unwrap();
        let models = dir.path().join("models");
        let class_key = if name == "lgb_multiclass" {
            format!(", class = {class}")
        } else {
            String::new()
        };
        model_with_outputs(
            &models,
            name,
            &format!(
                "{{ name = \"contrib\", kind = \"contributions\" }}, \
                 {{ name = \"reasons\", kind = \"top_contributions\", k = 3{class_key} }}, \
                 {{ name = \"against\", kind = \"top_contributions\", k = 2, sign = \"negative\", values = \"against_by\"{class_key} }}"
            ),
        );
        let spec = std::fs::read_to_string(models.join(format!("{name}/1/model.toml"))).unwrap();
        let spec: toml::Table = toml::from_str(&spec).unwrap();
        let inputs: Vec<String> = spec["inputs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        let table: String = inputs
            .iter()
            .map(|f| format!("\"{f}\" = \"Because of {f}\"\n"))
            .collect();
        let job = |output: &str| {
            format!(
                "name = \"reasons_{name}\"\n[input]\nurl = \"{}/data/{name}/dt={{{{ ds }}}}/*.parquet\"\n\
                 id_column = \"id\"\n[model]\nname = \"{name}\"\nversion = \"1\"\n\
                 [model.reasons]\n{table}[output]\n{output}\n",
                base().display()
            )
        };
        std::fs::write(dir.path().join("table.toml"), job("table = \"explained\"")).unwrap();
        let lake = dir.path().join("lake");
        std::fs::write(
            dir.path().join("delta.toml"),
            job(&format!("delta = \"{}\"", lake.display())),
        )
        .unwrap();
        let (pg_url, pg) = crate::common::fresh_pg("reasons").await;
        let library = library_contributions(name);
        let run = |job: &str, db: Option<&str>| {
            let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_scorer"));
            cmd.current_dir(dir.path())
                .args(["--models-dir", models.to_str().unwrap(), "run"])
                .arg(dir.path().join(job))
                .args(["--date", DATE])
                .env("SCORER_MODEL_CACHE", dir.path().join("cache"))
                .env("SCORER_SQLITE_PATH", dir.path().join("scorer.db"));
            match db {
                Some(url) => cmd.env("DATABASE_URL", url),
                None => cmd.env_remove("DATABASE_URL"),
            };
            let out = cmd.output().unwrap();
            assert_ok(&out);
        };
        run("table.toml", Some(&pg_url));
        let rows: Vec<ReasonRow> = sqlx::query_as(
            "SELECT id, contrib, reasons, reasons_values, against, against_by FROM explained ORDER BY id",
        )
        .fetch_all(&pg)
        .await
        .unwrap();
        assert_reasons(
            &format!("{name} in PostgreSQL"),
            &rows,
            &inputs,
            class,
            &library,
        );
        if name == "xgb_categorical" {
            // The README's analyst query: the most frequent reasons among a date's 100 highest
            // scores, with their mean contribution.
            let readme =
                std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
            let query = readme
                .split("```sql")
                .map(|block| block.split("```").next().unwrap())
                .find(|block| block.contains("unnest(top.reasons, top.reasons_values)"))
                .expect("the README's reason-codes query")
                .replace("scores.credit_daily", "explained")
                .replace("2026-11-24", DATE);
            let top: Vec<(String, i64, f64)> = sqlx::query_as(sqlx::AssertSqlSafe(query))
                .fetch_all(&pg)
                .await
                .unwrap();
            let highest: Vec<(i64,)> =
                sqlx::query_as("SELECT id FROM explained ORDER BY score DESC LIMIT 100")
                    .fetch_all(&pg)
                    .await
                    .unwrap();
            let mut counted: BTreeMap<String, i64> = BTreeMap::new();
            for (id,) in &highest {
                let row = rows.iter().find(|r| r.0 == *id).unwrap();
                for reason in &row.2 {
                    *counted.entry(reason.clone()).or_default() += 1;
                }
            }
            assert_eq!(top.len(), counted.len(), "{top:?}");
            for (reason, n, mean) in &top {
                assert_eq!(counted.get(reason), Some(n), "{reason}");
                assert!(*mean > 0.0, "{reason}: {mean}");
            }
        }
        run("table.toml", None);
        let sqlite = SqlitePool::connect(&format!("sqlite://{}/scorer.db", dir.path().display()))
            .await
            .unwrap();
        let raw: Vec<(i64, String, String, String, String, String)> = sqlx::query_as(
            "SELECT id, contrib, reasons, reasons_values, against, against_by FROM explained ORDER BY id",
        )
        .fetch_all(&sqlite)
        .await
        .unwrap();
        fn json<T: serde::de::DeserializeOwned>(s: &str) -> T {
            serde_json::from_str(s).unwrap()
        }
        let rows: Vec<ReasonRow> = raw
            .iter()
            .map(|(id, c, r, rv, a, av)| (*id, json(c), json(r), json(rv), json(a), json(av)))
            .collect();
        assert_reasons(
            &format!("{name} in SQLite"),
            &rows,
            &inputs,
            class,
            &library,
        );
        run("delta.toml", None);
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/delta/read_rows.py");
        let python = std::env::var("SCORER_TEST_DELTA_PYTHON")
            .expect("SCORER_TEST_DELTA_PYTHON is not set: run the tests with scripts/test.sh");
        let out = std::process::Command::new(python)
            .arg(script)
            .arg(&lake)
            .args([
                "id",
                "contrib",
                "reasons",
                "reasons_values",
                "against",
                "against_by",
            ])
            .output()
            .unwrap();
        assert_ok(&out);
        let rows: Vec<ReasonRow> = serde_json::from_slice(&out.stdout).unwrap();
        assert_reasons(&format!("{name} in Delta"), &rows, &inputs, class, &library);
    }
}

/// A reasons table that misses an input or names one the model lacks, and reason codes without
/// a class on a multiclass model, are refused before any row is read, with exit 2 and every
/// problem named.
#[test]
fn reason_codes_misconfigured_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let models = dir.path().join("models");
    model_with_outputs(
        &models,
        "xgb_binary",
        r#"{ name = "reasons", kind = "top_contributions" }"#,
    );
    model_with_outputs(
        &models,
        "xgb_multiclass",
        r#"{ name = "reasons", kind = "top_contributions", k = 2 }"#,
    );
    let job = |name: &str, table: &str| {
        let path = dir.path().join(format!("{name}.toml"));
        std::fs::write(
            &path,
            format!(
                "name = \"j\"\n[input]\nurl = \"{}/data/{name}/dt={{{{ ds }}}}/*.parquet\"\n\
                 id_column = \"id\"\n[model]\nname = \"{name}\"\nversion = \"1\"\n\
                 [model.reasons]\n{table}[output]\ntable = \"t\"\n",
                base().display()
            ),
        )
        .unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_scorer"))
            .current_dir(dir.path())
            .args(["--models-dir", models.to_str().unwrap(), "run"])
            .arg(&path)
            .args(["--date", DATE])
            .env_remove("DATABASE_URL")
            .env("SCORER_SQLITE_PATH", dir.path().join("scorer.db"))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{}", crate::common::text(&out));
        crate::common::text(&out)
    };
    let said = job(
        "xgb_binary",
        "mean_radius = \"Size\"\nmean_radiuss = \"Typo\"\n",
    );
    assert!(said.contains("mean_radiuss is not an input"), "{said}");
    assert!(said.contains("missing: mean_texture"), "{said}");
    let said = job("xgb_multiclass", "");
    assert!(
        said.contains("say whose reasons with `class = 0` to `class = 2`"),
        "{said}"
    );
}

/// Contributions on a model kind that has none, or from a file without covers, are refused
/// before scoring with exit 2, saying which kind computes them.
#[test]
fn contributions_are_refused_where_there_are_none() {
    let p = crate::common::Project::new();
    p.add_model(&crate::common::ModelOpts::mlp(8));
    let toml = p.models_dir().join("m/1/model.toml");
    let text = std::fs::read_to_string(&toml).unwrap();
    let outputs = text
        .lines()
        .find(|l| l.starts_with("outputs = ["))
        .unwrap()
        .to_string();
    let with = format!(
        "{}, {{ name = \"contrib\", kind = \"contributions\" }}]",
        outputs.trim_end_matches(']')
    );
    std::fs::write(&toml, text.replace(&outputs, &with)).unwrap();
    p.add_input("events", DATE, 100, 8, None);
    p.add_job("daily", "events", "m", "scores", "on_null = \"fill:0\"");
    let out = p.run("daily", None);
    assert_eq!(out.status.code(), Some(2), "{}", crate::common::text(&out));
    assert!(
        crate::common::text(&out).contains("are computed for gbdt models only"),
        "{}",
        crate::common::text(&out)
    );
}
