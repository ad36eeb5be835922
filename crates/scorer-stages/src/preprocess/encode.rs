//! The stored-parameter steps: categorical encoding from a vocabulary, imputation and
//! standardisation, on arrow arrays.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Float32Array, StringArray};
use arrow::compute::cast;
use arrow::datatypes::DataType;
use serde::{Deserialize, Serialize};

use super::{CategoricalSpec, PreprocessError};

/// How a categorical column becomes numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    /// One 0/1 column per category, named `<column>_<category>`.
    #[default]
    OneHot,
    /// One column (named like the input column) holding the category's position.
    Index,
}

/// What a category outside the vocabulary does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Unknown {
    /// The run fails, naming the column and the value.
    #[default]
    Error,
    /// All-zero one-hot columns (scikit-learn's `handle_unknown="ignore"`), or index -1.
    Ignore,
}

/// Where one value lands in the vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Known(usize),
    Unknown,
    /// A null, for the index encoding: stays missing.
    Missing,
}

/// A compiled categorical step.
#[derive(Debug)]
pub struct Categorical {
    column: String,
    index: HashMap<String, usize>,
    names: Vec<String>,
    encoding: Encoding,
    unknown: Unknown,
}

impl Categorical {
    /// Checks the vocabulary (non-empty, no repeats) and names the output columns.
    pub fn compile(spec: &CategoricalSpec) -> Result<Self, String> {
        let at = format!("preprocess.categorical `{}`", spec.column);
        if spec.vocabulary.is_empty() {
            return Err(format!("{at}: the vocabulary is empty"));
        }
        let mut index = HashMap::new();
        for (i, v) in spec.vocabulary.iter().enumerate() {
            if index.insert(v.clone(), i).is_some() {
                return Err(format!("{at}: `{v}` is in the vocabulary twice"));
            }
        }
        let names = match spec.encoding {
            Encoding::OneHot => spec
                .vocabulary
                .iter()
                .map(|v| format!("{}_{v}", spec.column))
                .collect(),
            Encoding::Index => vec![spec.column.clone()],
        };
        Ok(Self {
            column: spec.column.clone(),
            index,
            names,
            encoding: spec.encoding,
            unknown: spec.unknown,
        })
    }

    /// The input column it reads.
    pub fn column(&self) -> &str {
        &self.column
    }

    /// The columns it produces.
    pub fn output_names(&self) -> &[String] {
        &self.names
    }

    /// Encodes one string array into its output columns.
    pub fn encode(&self, source: &ArrayRef) -> Result<Vec<(String, ArrayRef)>, PreprocessError> {
        let err = |message: String| PreprocessError {
            column: self.column.clone(),
            message,
        };
        let strings = cast(source, &DataType::Utf8)
            .map_err(|e| err(format!("cannot read as strings: {e}")))?;
        let strings = strings
            .as_any()
            .downcast_ref::<StringArray>()
            .ok_or_else(|| err("cast did not give strings".into()))?;
        let mut positions = Vec::with_capacity(strings.len());
        for (row, value) in strings.iter().enumerate() {
            let slot = match value {
                Some(v) => self.index.get(v).map_or(Slot::Unknown, |&i| Slot::Known(i)),
                // A null is a missing value, which the index encoding passes on as missing (the
                // model's own handling, or the job's on_null policy, decides); one-hot has no
                // column for it and treats it as an unknown category.
                None if self.encoding == Encoding::Index => Slot::Missing,
                None => Slot::Unknown,
            };
            if slot == Slot::Unknown && self.unknown == Unknown::Error {
                let shown = value.map_or("a null".to_string(), |v| format!("`{v}`"));
                return Err(err(format!(
                    "{shown} at row {row} of the batch is not in the vocabulary ({} categories; set unknown = \"ignore\" to encode it as {})",
                    self.index.len(),
                    match self.encoding {
                        Encoding::OneHot => "all zeros",
                        Encoding::Index => "-1",
                    }
                )));
            }
            positions.push(slot);
        }
        Ok(match self.encoding {
            Encoding::Index => {
                let values: Float32Array = positions
                    .iter()
                    .map(|slot| match slot {
                        Slot::Known(i) => Some(*i as f32),
                        Slot::Unknown => Some(-1.0),
                        Slot::Missing => None,
                    })
                    .collect();
                vec![(self.names[0].clone(), Arc::new(values) as ArrayRef)]
            }
            Encoding::OneHot => self
                .names
                .iter()
                .enumerate()
                .map(|(k, name)| {
                    let values: Float32Array = positions
                        .iter()
                        .map(|slot| Some(if *slot == Slot::Known(k) { 1.0 } else { 0.0 }))
                        .collect();
                    (name.clone(), Arc::new(values) as ArrayRef)
                })
                .collect(),
        })
    }
}

/// Any numeric column as f32 (nulls kept).
pub fn to_f32(name: &str, array: &ArrayRef) -> Result<Float32Array, PreprocessError> {
    let err = |message: String| PreprocessError {
        column: name.to_string(),
        message,
    };
    if !crate::contract::is_numeric(array.data_type()) {
        return Err(err(format!(
            "is {}, expected a number (a string column needs a [[preprocess.categorical]] entry)",
            array.data_type()
        )));
    }
    let cast = cast(array, &DataType::Float32).map_err(|e| err(e.to_string()))?;
    cast.as_any()
        .downcast_ref::<Float32Array>()
        .cloned()
        .ok_or_else(|| err("cast did not give f32 values".into()))
}

/// Nulls replaced by `value`.
pub fn impute(values: Float32Array, value: f32) -> Float32Array {
    if values.null_count() == 0 {
        return values;
    }
    values.iter().map(|v| Some(v.unwrap_or(value))).collect()
}

/// `(x - mean) / scale`, computed in f64 as scikit-learn does on f64 data; nulls stay null.
pub fn standardize(values: &Float32Array, mean: f64, scale: f64) -> Float32Array {
    let out: Vec<f32> = values
        .values()
        .iter()
        .map(|&x| ((f64::from(x) - mean) / scale) as f32)
        .collect();
    Float32Array::new(out.into(), values.nulls().cloned())
}
