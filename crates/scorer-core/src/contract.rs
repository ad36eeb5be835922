//! The typed contract between stages. A model kind declares what it reads ([`InputContract`]),
//! what it writes ([`OutputColumn`]s of an [`OutputType`]) and how it wants to be driven
//! ([`ExecutionPolicy`]); the plan checks the data and the sinks against these declarations before
//! any row is read, and batches between stages carry arrow arrays of exactly these types.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, FixedSizeListArray, Float32Array};
use arrow::datatypes::{DataType, Field};

/// The arrow type of one model output, as it travels to the sinks. `sink::columns` maps each to
/// its PostgreSQL type and binary COPY encoding, its SQLite type and (through arrow) its Parquet
/// type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputType {
    /// One f32 per row (`Float32`): a score, a probability, a regression value.
    Float32,
    /// A fixed-length f32 vector per row (`FixedSizeList<Float32>`): class probabilities,
    /// embeddings.
    Float32Vector(usize),
    /// An integer per row (`Int64`): a class label, or an integer passthrough column (which may
    /// hold nulls).
    Int64,
    /// A 64-bit float per row: a passthrough column (`output.passthrough_columns`), may be null.
    Float64,
    /// Text per row: a passthrough column or a hashed one (`output.hash_columns`), may be null.
    Text,
    /// Up to `k` texts per row (`List<Utf8>`, never null, possibly empty): reason codes, the
    /// features behind a score, most important first.
    TextList(usize),
    /// Up to `k` f32 per row (`List<Float32>`): the values that go with a [`OutputType::TextList`],
    /// element by element.
    Float32List(usize),
}

impl OutputType {
    /// The arrow type of the column.
    pub fn arrow(self) -> DataType {
        match self {
            Self::Float32 => DataType::Float32,
            Self::Float32Vector(n) => DataType::FixedSizeList(
                Arc::new(Field::new_list_field(DataType::Float32, false)),
                i32::try_from(n).unwrap_or(i32::MAX),
            ),
            Self::Int64 => DataType::Int64,
            Self::Float64 => DataType::Float64,
            Self::Text => DataType::Utf8,
            Self::TextList(_) => {
                DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, false)))
            }
            Self::Float32List(_) => {
                DataType::List(Arc::new(Field::new_list_field(DataType::Float32, false)))
            }
        }
    }

    /// How many of a model's raw value columns this output takes (a variable-length list is
    /// built whole by the model, from none of them).
    pub fn width(self) -> usize {
        match self {
            Self::Float32 | Self::Int64 | Self::Float64 | Self::Text => 1,
            Self::Float32Vector(n) => n,
            Self::TextList(_) | Self::Float32List(_) => 0,
        }
    }
}

impl std::fmt::Display for OutputType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Float32 => f.write_str("f32"),
            Self::Float32Vector(n) => write!(f, "f32[{n}]"),
            Self::Int64 => f.write_str("i64"),
            Self::Float64 => f.write_str("f64"),
            Self::Text => f.write_str("text"),
            Self::TextList(k) => write!(f, "text[<={k}]"),
            Self::Float32List(k) => write!(f, "f32[<={k}]"),
        }
    }
}

/// One output a model declares: its name and type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputColumn {
    pub name: String,
    pub ty: OutputType,
}

/// What a model does with a missing feature value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MissingValues {
    /// The job's `on_null` policy decides (fail, skip the row, or fill a value): dense networks
    /// have no notion of a missing input.
    JobPolicy,
    /// Missing values reach the model as NaN, which it handles itself (decision trees route
    /// them down a learned branch); no row is rejected for them.
    NaN,
}

/// What a model reads: its features, in this order, each delivered as its [`FeatureType`]
/// (numbers as f32 unless the model says otherwise; a text model's one column as strings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputContract {
    pub features: Vec<String>,
    pub missing: MissingValues,
    /// The type each feature reaches the model as, by position; a feature past the end of this
    /// list is [`FeatureType::Float32`], so numeric models leave it empty.
    pub types: Vec<FeatureType>,
}

impl InputContract {
    /// The type feature `j` reaches the model as.
    pub fn type_of(&self, j: usize) -> FeatureType {
        self.types.get(j).copied().unwrap_or_default()
    }
}

/// The type one feature reaches a model as. Almost every model reads f32; a graph that declares
/// other input types (an ONNX pipeline exported whole: strings for its categorical columns,
/// int64, double, bool) gets them as declared, converted from the input column by arrow's cast.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FeatureType {
    /// A number as f32: the stages' native feature layout.
    #[default]
    Float32,
    /// A number as f64, without the round trip through f32.
    Float64,
    /// An integer as i64.
    Int64,
    /// A boolean (a number is true when not zero).
    Boolean,
    /// Strings: a categorical column, or a text model's text.
    Text,
}

impl FeatureType {
    /// The arrow type the feature stage casts the column to.
    pub fn arrow(self) -> DataType {
        match self {
            Self::Float32 => DataType::Float32,
            Self::Float64 => DataType::Float64,
            Self::Int64 => DataType::Int64,
            Self::Boolean => DataType::Boolean,
            Self::Text => DataType::Utf8,
        }
    }

    /// What the input file's column must hold for this feature.
    pub fn column_kind(self) -> ColumnKind {
        match self {
            Self::Text => ColumnKind::Text,
            _ => ColumnKind::Number,
        }
    }
}

impl std::fmt::Display for FeatureType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Float32 => "f32",
            Self::Float64 => "f64",
            Self::Int64 => "i64",
            Self::Boolean => "bool",
            Self::Text => "text",
        })
    }
}

/// What an input-file column must hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    /// Converted to f32 (integers, floats, decimals, booleans).
    Number,
    /// Strings (categorical columns).
    Text,
    /// Whatever a derive expression accepts; polars checks it per batch.
    Any,
}

/// An input-file column a run reads besides the id: a feature, or what a model's preprocessing
/// reads. The plan checks every file's footer for these before scoring starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawColumn {
    pub name: String,
    pub kind: ColumnKind,
}

impl RawColumn {
    /// A numeric feature column.
    pub fn number(name: &str) -> Self {
        Self {
            name: name.to_string(),
            kind: ColumnKind::Number,
        }
    }
}

/// How the scoring stage drives a model. Each kind knows what suits it; the stage only follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecutionPolicy {
    /// Split each source batch into slices of at least `min_rows` rows and score them in
    /// parallel on the shared rayon pool (CPU kernels that are single-threaded per slice).
    RowSlices { min_rows: usize },
    /// Hand each batch whole (up to the job's `batch_size` rows) to one call: the device is the
    /// parallelism, and bigger launches use it better.
    WholeBatches,
}

/// Packs a model's raw f32 value columns (one `Vec<f32>` of `rows` values each, in output order)
/// into one arrow array per declared f32 output (scalars and vectors).
pub fn pack_outputs(
    outputs: &[OutputColumn],
    mut values: Vec<Vec<f32>>,
    rows: usize,
) -> Result<Vec<ArrayRef>, String> {
    let needed: usize = outputs.iter().map(|o| o.ty.width()).sum();
    if values.len() != needed || values.iter().any(|v| v.len() != rows) {
        return Err(format!(
            "the model produced {} value columns for {needed} declared output values",
            values.len()
        ));
    }
    let mut packed = Vec::with_capacity(outputs.len());
    let mut rest = values.drain(..);
    for output in outputs {
        let array: ArrayRef = match output.ty {
            OutputType::Float32 => {
                let column = rest.next().unwrap_or_default();
                Arc::new(Float32Array::from(column))
            }
            OutputType::Int64 => {
                // A label is an integer the model computes itself (a class index); f32 values
                // are never truncated into one.
                return Err(format!(
                    "output `{}` is an integer label; it cannot be packed from f32 values",
                    output.name
                ));
            }
            OutputType::TextList(_) | OutputType::Float32List(_) => {
                return Err(format!(
                    "output `{}` is {}: a list the model builds whole, not packed from values",
                    output.name, output.ty
                ));
            }
            OutputType::Float64 | OutputType::Text => {
                return Err(format!(
                    "output `{}` is {}: a passthrough type, not a model output",
                    output.name, output.ty
                ));
            }
            OutputType::Float32Vector(n) => {
                let columns: Vec<Vec<f32>> = rest.by_ref().take(n).collect();
                let mut flat = Vec::with_capacity(rows * n);
                for r in 0..rows {
                    flat.extend(columns.iter().map(|c| c[r]));
                }
                let field = Arc::new(Field::new_list_field(DataType::Float32, false));
                let size = i32::try_from(n).map_err(|_| format!("vector of {n} is too long"))?;
                Arc::new(
                    FixedSizeListArray::try_new(
                        field,
                        size,
                        Arc::new(Float32Array::from(flat)),
                        None,
                    )
                    .map_err(|e| format!("output `{}`: {e}", output.name))?,
                )
            }
        };
        packed.push(array);
    }
    Ok(packed)
}

/// The f32 values of an output column (a scalar column's values, or a vector column's flattened
/// elements), for statistics; `None` for integer columns.
pub fn f32_values(array: &dyn Array) -> Option<&[f32]> {
    if let Some(a) = array.as_any().downcast_ref::<Float32Array>() {
        return Some(a.values());
    }
    let list = array.as_any().downcast_ref::<FixedSizeListArray>()?;
    let values = list.values().as_any().downcast_ref::<Float32Array>()?;
    let width = usize::try_from(list.value_length()).ok()?;
    let start = list.offset() * width;
    values.values().get(start..start + list.len() * width)
}

/// Whether a column type converts to f32 without surprises.
pub fn is_numeric(dt: &DataType) -> bool {
    // A dictionary of numbers (pandas categoricals of numbers, some writers' dictionary pages
    // kept as such) is a number column: the cast to f32 looks each value up.
    if let DataType::Dictionary(_, values) = dt {
        return is_numeric(values);
    }
    matches!(
        dt,
        DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32
            | DataType::UInt64
            | DataType::Float16
            | DataType::Float32
            | DataType::Float64
            | DataType::Decimal128(_, _)
            | DataType::Decimal256(_, _)
            | DataType::Boolean
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packs_scalars_and_vectors_in_declared_order() {
        let outputs = vec![
            OutputColumn {
                name: "score".into(),
                ty: OutputType::Float32,
            },
            OutputColumn {
                name: "probs".into(),
                ty: OutputType::Float32Vector(2),
            },
        ];
        let packed = pack_outputs(
            &outputs,
            vec![vec![1.0, 2.0], vec![0.1, 0.2], vec![0.9, 0.8]],
            2,
        )
        .unwrap();
        assert_eq!(packed[0].data_type(), &OutputType::Float32.arrow());
        assert_eq!(packed[1].data_type(), &OutputType::Float32Vector(2).arrow());
        assert_eq!(f32_values(packed[0].as_ref()).unwrap(), &[1.0, 2.0]);
        // Row-major: row 0 is [0.1, 0.9], row 1 is [0.2, 0.8].
        assert_eq!(
            f32_values(packed[1].as_ref()).unwrap(),
            &[0.1, 0.9, 0.2, 0.8]
        );
        assert_eq!(
            f32_values(packed[1].slice(1, 1).as_ref()).unwrap(),
            &[0.2, 0.8]
        );
        let wrong = pack_outputs(&outputs, vec![vec![1.0, 2.0]], 2);
        assert!(wrong.unwrap_err().contains("1 value columns for 3"));
    }
}
