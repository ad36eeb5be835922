//! Scores must equal an independent computation of the same model: a plain f64 forward pass over
//! the weights read straight from the safetensors file, for every model kind.

use std::collections::HashMap;
use std::path::Path;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{Float32Type, Int64Type};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use scorer::model::spec::{Activation, ModelKind, ModelSpec};
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
        let spec: ModelSpec =
            toml::from_str(&std::fs::read_to_string(dir.join("model.toml")).unwrap()).unwrap();
        let bytes = std::fs::read(dir.join(&spec.weights)).unwrap();
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
        let layers = spec
            .effective_layers()
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

async fn check_kind(
    kind: ModelKind,
    hidden: Vec<usize>,
    outputs: Vec<&'static str>,
    act: Activation,
) {
    let p = Project::new();
    let features = 6;
    let model_dir = p.add_model(&ModelOpts {
        name: "m",
        kind,
        inputs: features,
        hidden,
        outputs: outputs.clone(),
        output_activation: act,
    });
    let input = p.add_input("ref", DATE, 20_000, features, Some((2, 0.05)));
    p.add_job("ref", "ref", "m", "ref_scores", "on_null = \"fill:0.25\"");
    assert_ok(&p.run("jobs/ref.toml", None));

    let expected = read_input(&input, features, 0.25);
    let reference = Reference::load(&model_dir);
    let pool = sqlx::SqlitePool::connect(&p.sqlite_url()).await.unwrap();
    let cols = outputs.join(", ");
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT id, {cols} FROM ref_scores WHERE ds = ?"
    )))
    .bind(DATE)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(rows.len(), expected.len());
    let mut worst = 0f64;
    for row in rows {
        let id: i64 = row.get(0);
        let want = reference.forward(&expected[&id]);
        for (k, w) in want.iter().enumerate() {
            let got: f64 = row.get(k + 1);
            worst = worst.max((got - w).abs());
        }
    }
    assert!(worst <= 1e-5, "{kind:?}: worst absolute error {worst}");
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
