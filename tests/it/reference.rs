//! Scores must equal an independent computation of the same model: a plain f64 forward pass over
//! the weights read straight from the safetensors file, for every model kind.

use std::collections::HashMap;
use std::path::Path;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{Float32Type, Int64Type};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use scorer::model::spec::{Activation, KindSpec, ModelKind, ModelSpec};
use sqlx::Row;

use crate::common::*;

/// Reads (id -> features) from every Parquet file under `dir`, nulls filled with `fill`.
fn read_input(dir: &Path, features: usize, fill: f64) -> HashMap<i64, Vec<f64>> {
    let mut rows = HashMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let file = std::fs::File::open(entry.unwrap().path()).unwrap();
        for batch in ParquetRecordBatchReaderBuilder::try_new(file)
            .unwrap()
            .build()
            .unwrap()
        {
            let batch = batch.unwrap();
            let ids = batch
                .column_by_name("id")
                .unwrap()
                .as_primitive::<Int64Type>();
            let cols: Vec<_> = (0..features)
                .map(|i| {
                    batch
                        .column_by_name(&format!("f{i}"))
                        .unwrap()
                        .as_primitive::<Float32Type>()
                        .clone()
                })
                .collect();
            for r in 0..batch.num_rows() {
                let x = cols
                    .iter()
                    .map(|c| {
                        if c.is_null(r) {
                            fill
                        } else {
                            f64::from(c.value(r))
                        }
                    })
                    .collect();
                rows.insert(ids.value(r), x);
            }
        }
    }
    rows
}

/// The model, computed in f64 from the raw safetensors bytes.
struct Reference {
    layers: Vec<(Vec<Vec<f64>>, Vec<f64>, Activation)>,
}

impl Reference {
    fn load(dir: &Path) -> Self {
        let spec =
            ModelSpec::parse(&std::fs::read_to_string(dir.join("model.toml")).unwrap()).unwrap();
        let bytes =
            std::fs::read(dir.join(spec.artifacts["weights"].file.as_deref().unwrap())).unwrap();
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let get = |name: &str| -> (Vec<usize>, Vec<f64>) {
            let t = st.tensor(name).unwrap();
            let v = t
                .data()
                .chunks_exact(4)
                .map(|c| f64::from(f32::from_le_bytes([c[0], c[1], c[2], c[3]])))
                .collect();
            (t.shape().to_vec(), v)
        };
        let layers = match &spec.kind {
            KindSpec::Linear(k) => k.effective_layers(),
            KindSpec::Logistic(k) => k.effective_layers(),
            KindSpec::Mlp(k) => k.effective_layers(),
            other => panic!("not a dense model: {other:?}"),
        };
        let layers = layers
            .unwrap()
            .into_iter()
            .map(|l| {
                let (shape, w) = get(&l.weight);
                let rows = w.chunks(shape[1]).map(<[f64]>::to_vec).collect();
                let b = l
                    .bias
                    .map(|b| get(&b).1)
                    .unwrap_or_else(|| vec![0.0; shape[0]]);
                (rows, b, l.activation)
            })
            .collect();
        Self { layers }
    }

    fn forward(&self, x: &[f64]) -> Vec<f64> {
        let mut x = x.to_vec();
        for (w, b, act) in &self.layers {
            x = w
                .iter()
                .zip(b)
                .map(|(row, bias)| {
                    let z: f64 = row.iter().zip(&x).map(|(a, b)| a * b).sum::<f64>() + bias;
                    match act {
                        Activation::None => z,
                        Activation::Relu => z.max(0.0),
                        Activation::Sigmoid => 1.0 / (1.0 + (-z).exp()),
                        Activation::Tanh => z.tanh(),
                        Activation::Gelu => {
                            panic!("gelu has no f64 reference here; no test model uses it")
                        }
                    }
                })
                .collect();
        }
        x
    }
}

/// A scratch project with a `kind` model over 6 features and 20k input rows (5% nulls in one
/// feature, filled with 0.25), and the job `ref` writing to `ref_scores`.
pub struct KindCase {
    pub project: Project,
    pub kind: ModelKind,
    pub outputs: Vec<&'static str>,
    model_dir: std::path::PathBuf,
    input: std::path::PathBuf,
}

const FEATURES: usize = 6;

impl KindCase {
    pub fn new(
        kind: ModelKind,
        hidden: Vec<usize>,
        outputs: Vec<&'static str>,
        act: Activation,
    ) -> Self {
        let project = Project::new();
        let model_dir = project.add_model(&ModelOpts {
            name: "m",
            kind,
            inputs: FEATURES,
            hidden,
            outputs: outputs.clone(),
            output_activation: act,
        });
        let input = project.add_input("ref", DATE, 20_000, FEATURES, Some((2, 0.05)));
        project.add_job("ref", "ref", "m", "ref_scores", "on_null = \"fill:0.25\"");
        Self {
            project,
            kind,
            outputs,
            model_dir,
            input,
        }
    }

    /// Runs the job on `device` and reads back id -> outputs from SQLite.
    pub async fn scores_on(&self, device: &str) -> HashMap<i64, Vec<f64>> {
        let p = &self.project;
        assert_ok(&p.scorer(
            &["run", "jobs/ref.toml", "--date", DATE, "--device", device],
            None,
        ));
        let pool = sqlx::SqlitePool::connect(&p.sqlite_url()).await.unwrap();
        let cols = self.outputs.join(", ");
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT id, {cols} FROM ref_scores WHERE ds = ?"
        )))
        .bind(DATE)
        .fetch_all(&pool)
        .await
        .unwrap();
        rows.iter()
            .map(|row| {
                let values = (0..self.outputs.len())
                    .map(|k| row.get::<f64, _>(k + 1))
                    .collect();
                (row.get::<i64, _>(0), values)
            })
            .collect()
    }

    /// Asserts `scores` equal a plain f64 forward pass over the input to 1e-5, for every row.
    pub fn assert_matches_reference(&self, scores: &HashMap<i64, Vec<f64>>) {
        let expected = read_input(&self.input, FEATURES, 0.25);
        let reference = Reference::load(&self.model_dir);
        assert_eq!(scores.len(), expected.len());
        let worst = max_abs_diff(scores, |id| reference.forward(&expected[&id]));
        assert!(
            worst <= 1e-5,
            "{:?}: worst absolute error {worst}",
            self.kind
        );
    }
}

/// The largest absolute difference between `got` and `want(id)` over every row and output.
pub fn max_abs_diff(got: &HashMap<i64, Vec<f64>>, want: impl Fn(i64) -> Vec<f64>) -> f64 {
    let mut worst = 0f64;
    for (id, values) in got {
        let w = want(*id);
        assert_eq!(values.len(), w.len(), "row {id}: output count");
        for (g, w) in values.iter().zip(&w) {
            worst = worst.max((g - w).abs());
        }
    }
    worst
}

async fn check_kind(
    kind: ModelKind,
    hidden: Vec<usize>,
    outputs: Vec<&'static str>,
    act: Activation,
) {
    let case = KindCase::new(kind, hidden, outputs, act);
    let scores = case.scores_on("cpu").await;
    case.assert_matches_reference(&scores);
}

#[tokio::test]
async fn mlp_scores_match_an_f64_forward_pass() {
    check_kind(
        ModelKind::Mlp,
        vec![32, 16],
        vec!["score"],
        Activation::Sigmoid,
    )
    .await;
}

#[tokio::test]
async fn linear_scores_match_with_two_outputs() {
    check_kind(ModelKind::Linear, vec![], vec!["a", "b"], Activation::None).await;
}

#[tokio::test]
async fn logistic_scores_match() {
    check_kind(ModelKind::Logistic, vec![], vec!["p"], Activation::None).await;
}
