//! Preprocessing declared with a model (`[preprocess]` in model.toml), applied to every batch
//! between the source and the model, so the features a run scores are computed exactly as at
//! training time: derived columns (polars SQL expressions over the batch), imputation with stored
//! values, categorical strings to one-hot columns or indexes from a stored vocabulary, and
//! standardisation with stored means and scales, in that order.
//!
//! The model's `inputs` name the columns after preprocessing; [`Preprocessor::raw_columns`] says
//! which input-file columns that needs (only those are read: projection pushdown still applies).

#[cfg(feature = "polars")]
mod bridge;
#[cfg(feature = "polars")]
mod derive;
#[cfg(not(feature = "polars"))]
#[path = "derive_unavailable.rs"]
mod derive;
mod encode;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use arrow::array::ArrayRef;
use arrow::record_batch::RecordBatch;
use serde::{Deserialize, Serialize};
use thiserror::Error;

pub use crate::contract::{ColumnKind, RawColumn};
pub use encode::{Encoding, Unknown};

/// A batch that could not be preprocessed; names the column (the caller adds object and row
/// group).
#[derive(Debug, Error)]
#[error("column `{column}`: {message}")]
pub struct PreprocessError {
    pub column: String,
    pub message: String,
}

/// `[preprocess]` in model.toml.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PreprocessSpec {
    /// `[[preprocess.derive]]`: new columns from polars SQL expressions over the batch's columns,
    /// e.g. `{ name = "log_amount", sql = "ln(amount + 1)" }`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub derive: Vec<DeriveSpec>,
    /// Column -> value that replaces its nulls (SimpleImputer's `statistics_`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub impute: BTreeMap<String, f64>,
    /// `[[preprocess.categorical]]`: string columns encoded from a stored vocabulary.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub categorical: Vec<CategoricalSpec>,
    /// Column -> `{ mean, scale }`: `(x - mean) / scale` (StandardScaler's `mean_`, `scale_`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub standardize: BTreeMap<String, Standardize>,
}

/// One derived column.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DeriveSpec {
    pub name: String,
    /// A polars SQL expression, e.g. `ln(amount + 1)` or `CASE WHEN a > 0 THEN b / a END`.
    pub sql: String,
}

/// One categorical column.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CategoricalSpec {
    /// The string column in the input.
    pub column: String,
    /// The categories seen in training, in the encoder's order (OneHotEncoder's `categories_`).
    pub vocabulary: Vec<String>,
    /// `one_hot` (columns `<column>_<category>`, as scikit-learn names them) or `index`.
    #[serde(default)]
    pub encoding: Encoding,
    /// What a category outside the vocabulary (or a null) does: `error` or `ignore` (all-zero
    /// one-hot, index -1).
    #[serde(default)]
    pub unknown: Unknown,
}

/// Stored standardisation parameters of one column.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Standardize {
    pub mean: f64,
    pub scale: f64,
}

/// A checked `[preprocess]`, ready to apply to batches.
#[derive(Debug)]
pub struct Preprocessor {
    derive: Option<derive::Derived>,
    impute: Vec<(String, f32)>,
    categorical: Vec<encode::Categorical>,
    standardize: Vec<(String, Standardize)>,
    raw: Vec<RawColumn>,
    /// The model's inputs, in order: what `apply` returns.
    outputs: Vec<String>,
}

impl Preprocessor {
    /// Checks `spec` against the model's `inputs` (every input must be a raw column or produced
    /// by a step; every step must feed the model) and compiles the expressions.
    pub fn compile(spec: &PreprocessSpec, inputs: &[String]) -> Result<Self, String> {
        let inputs_set: BTreeSet<&str> = inputs.iter().map(String::as_str).collect();
        let mut produced: BTreeSet<String> = BTreeSet::new();
        let derive = if spec.derive.is_empty() {
            None
        } else {
            Some(derive::Derived::compile(&spec.derive)?)
        };
        if let Some(d) = &derive {
            produced.extend(d.names().map(str::to_string));
        }
        let mut categorical = Vec::new();
        for c in &spec.categorical {
            let compiled = encode::Categorical::compile(c)?;
            for name in compiled.output_names() {
                if !produced.insert(name.clone()) {
                    return Err(format!(
                        "preprocess: column `{name}` is produced by two steps"
                    ));
                }
            }
            categorical.push(compiled);
        }
        for (what, keys) in [
            ("impute", spec.impute.keys().collect::<Vec<_>>()),
            ("standardize", spec.standardize.keys().collect()),
        ] {
            for k in keys {
                if !inputs_set.contains(k.as_str()) {
                    return Err(format!(
                        "preprocess.{what}.{k}: `{k}` is not one of the model's inputs"
                    ));
                }
            }
        }
        for (k, s) in &spec.standardize {
            if !(s.scale.is_finite() && s.scale != 0.0 && s.mean.is_finite()) {
                return Err(format!(
                    "preprocess.standardize.{k}: mean must be finite and scale finite and non-zero"
                ));
            }
        }
        let mut impute = Vec::new();
        for (k, v) in &spec.impute {
            if !v.is_finite() {
                return Err(format!("preprocess.impute.{k}: the value must be finite"));
            }
            impute.push((k.clone(), *v as f32));
        }
        // What the file must hold: model inputs nothing produces, what the expressions read,
        // and the categorical columns.
        // A categorical step reads its column from the file even when its output has the same
        // name (the index encoding replaces the column with its codes).
        let mut raw: Vec<RawColumn> = Vec::new();
        for c in &categorical {
            if !raw.iter().any(|r| r.name == c.column()) {
                raw.push(RawColumn {
                    name: c.column().to_string(),
                    kind: ColumnKind::Text,
                });
            }
        }
        let mut add = |name: &str, kind: ColumnKind| {
            if !produced.contains(name) && !raw.iter().any(|r| r.name == name) {
                raw.push(RawColumn {
                    name: name.to_string(),
                    kind,
                });
            }
        };
        if let Some(d) = &derive {
            for root in d.roots() {
                add(root, ColumnKind::Any);
            }
        }
        for i in inputs {
            add(i, ColumnKind::Number);
        }
        Ok(Self {
            derive,
            impute,
            categorical,
            standardize: spec
                .standardize
                .iter()
                .map(|(k, s)| (k.clone(), *s))
                .collect(),
            raw,
            outputs: inputs.to_vec(),
        })
    }

    /// The input-file columns the preprocessing reads (besides the id).
    pub fn raw_columns(&self) -> &[RawColumn] {
        &self.raw
    }

    /// Applies every step to `batch` and returns a batch of `keep` (the id column, passed
    /// through) followed by the model's inputs as f32 columns, in order. Nulls the steps leave
    /// (no imputation declared) stay null for the job's `on_null` policy.
    pub fn apply(&self, batch: &RecordBatch, keep: &str) -> Result<RecordBatch, PreprocessError> {
        let mut columns: HashMap<String, ArrayRef> = HashMap::new();
        let raw = |name: &str| -> Result<ArrayRef, PreprocessError> {
            batch
                .column_by_name(name)
                .cloned()
                .ok_or_else(|| PreprocessError {
                    column: name.to_string(),
                    message: "column is missing from the decoded batch".into(),
                })
        };
        if let Some(d) = &self.derive {
            for (name, array) in d.apply(batch)? {
                columns.insert(name, array);
            }
        }
        for c in &self.categorical {
            let source = raw(c.column())?;
            for (name, array) in c.encode(&source)? {
                columns.insert(name, array);
            }
        }
        let mut fields = vec![arrow::datatypes::Field::new(
            keep,
            raw(keep)?.data_type().clone(),
            true,
        )];
        let mut arrays = vec![raw(keep)?];
        for name in &self.outputs {
            let array = match columns.remove(name) {
                Some(a) => a,
                None => raw(name)?,
            };
            let mut values = encode::to_f32(name, &array)?;
            if let Some((_, v)) = self.impute.iter().find(|(k, _)| k == name) {
                values = encode::impute(values, *v);
            }
            if let Some((_, s)) = self.standardize.iter().find(|(k, _)| k == name) {
                values = encode::standardize(&values, s.mean, s.scale);
            }
            fields.push(arrow::datatypes::Field::new(
                name,
                arrow::datatypes::DataType::Float32,
                true,
            ));
            arrays.push(Arc::new(values));
        }
        RecordBatch::try_new(Arc::new(arrow::datatypes::Schema::new(fields)), arrays).map_err(|e| {
            PreprocessError {
                column: keep.to_string(),
                message: e.to_string(),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Float32Array, Float64Array, Int64Array, StringArray};

    fn spec() -> PreprocessSpec {
        toml::from_str(
            r#"
            derive = [{ name = "ratio", sql = "a / b" }]
            impute = { a = 10.0 }
            standardize = { a = { mean = 1.0, scale = 2.0 }, ratio = { mean = 0.0, scale = 0.5 } }
            [[categorical]]
            column = "plan"
            vocabulary = ["basic", "pro"]
            unknown = "ignore"
            "#,
        )
        .unwrap()
    }

    fn inputs() -> Vec<String> {
        ["a", "ratio", "plan_basic", "plan_pro"]
            .map(String::from)
            .to_vec()
    }

    fn batch() -> RecordBatch {
        RecordBatch::try_from_iter([
            ("id", Arc::new(Int64Array::from(vec![1, 2, 3])) as ArrayRef),
            (
                "a",
                Arc::new(Float64Array::from(vec![Some(3.0), None, Some(5.0)])) as ArrayRef,
            ),
            (
                "b",
                Arc::new(Float32Array::from(vec![1.0, 4.0, 2.0])) as ArrayRef,
            ),
            (
                "plan",
                Arc::new(StringArray::from(vec![Some("pro"), Some("gold"), None])) as ArrayRef,
            ),
        ])
        .unwrap()
    }

    fn values(b: &RecordBatch, name: &str) -> Vec<Option<f32>> {
        b.column_by_name(name)
            .unwrap()
            .as_any()
            .downcast_ref::<Float32Array>()
            .unwrap()
            .iter()
            .collect()
    }

    #[test]
    fn raw_columns_are_what_the_steps_read() {
        let p = Preprocessor::compile(&spec(), &inputs()).unwrap();
        let mut raw: Vec<(String, ColumnKind)> = p
            .raw_columns()
            .iter()
            .map(|r| (r.name.clone(), r.kind))
            .collect();
        raw.sort_by(|x, y| x.0.cmp(&y.0));
        assert_eq!(
            raw,
            [
                ("a".to_string(), ColumnKind::Any),
                ("b".to_string(), ColumnKind::Any),
                ("plan".to_string(), ColumnKind::Text)
            ]
        );
    }

    #[test]
    fn applies_derive_impute_categorical_and_standardize() {
        let p = Preprocessor::compile(&spec(), &inputs()).unwrap();
        let out = p.apply(&batch(), "id").unwrap();
        assert_eq!(out.num_columns(), 5);
        assert_eq!(out.schema().field(0).name(), "id");
        // a: imputed 10 for the null, then (a - 1) / 2.
        assert_eq!(values(&out, "a"), [Some(1.0), Some(4.5), Some(2.0)]);
        // ratio = a / b on the raw a (null stays null: derive reads the file's column), / 0.5.
        assert_eq!(values(&out, "ratio"), [Some(6.0), None, Some(5.0)]);
        // "gold" and null are unknown and ignored: all zeros.
        assert_eq!(
            values(&out, "plan_basic"),
            [Some(0.0), Some(0.0), Some(0.0)]
        );
        assert_eq!(values(&out, "plan_pro"), [Some(1.0), Some(0.0), Some(0.0)]);
    }

    /// The index encoding's output takes its input column's name: the column is still read from
    /// the file (it once was not, and every run failed), and a null stays missing.
    #[test]
    fn an_index_encoded_column_is_read_and_its_nulls_stay_missing() {
        let spec: PreprocessSpec = toml::from_str(
            r#"
            [[categorical]]
            column = "plan"
            vocabulary = ["basic", "pro"]
            encoding = "index"
            unknown = "ignore"
            "#,
        )
        .unwrap();
        let p = Preprocessor::compile(&spec, &["a".to_string(), "plan".to_string()]).unwrap();
        let raw: Vec<(&str, ColumnKind)> = p
            .raw_columns()
            .iter()
            .map(|r| (r.name.as_str(), r.kind))
            .collect();
        assert_eq!(raw, [("plan", ColumnKind::Text), ("a", ColumnKind::Number)]);
        let out = p.apply(&batch(), "id").unwrap();
        // "pro", "gold" (not in the vocabulary: -1), null (missing)
        assert_eq!(values(&out, "plan"), [Some(1.0), Some(-1.0), None]);
    }

    #[test]
    fn unknown_category_can_be_an_error_naming_the_value() {
        let mut s = spec();
        s.categorical[0].unknown = Unknown::Error;
        let p = Preprocessor::compile(&s, &inputs()).unwrap();
        let e = p.apply(&batch(), "id").unwrap_err();
        assert_eq!(e.column, "plan");
        assert!(e.message.contains("`gold`"), "{}", e.message);
    }

    #[test]
    fn steps_that_feed_nothing_or_inputs_nothing_makes_are_refused() {
        let mut s = spec();
        s.impute.insert("zzz".into(), 1.0);
        let e = Preprocessor::compile(&s, &inputs()).unwrap_err();
        assert!(e.contains("preprocess.impute.zzz"), "{e}");
        let s = PreprocessSpec {
            derive: vec![DeriveSpec {
                name: "x".into(),
                sql: "a +* b".into(),
            }],
            ..Default::default()
        };
        let e = Preprocessor::compile(&s, &inputs()).unwrap_err();
        assert!(e.contains("preprocess.derive.x"), "{e}");
    }

    #[test]
    fn a_derive_type_error_names_the_column() {
        let s = PreprocessSpec {
            derive: vec![DeriveSpec {
                name: "ratio".into(),
                sql: "plan * 2".into(),
            }],
            ..Default::default()
        };
        let p = Preprocessor::compile(&s, &["ratio".to_string()]).unwrap();
        let e = p.apply(&batch(), "id").unwrap_err();
        assert_eq!(e.column, "ratio");
        assert!(!e.message.is_empty());
    }
}
