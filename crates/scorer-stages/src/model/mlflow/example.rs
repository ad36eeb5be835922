//! The input example MLflow logs beside a model (`input_example.json`, a DataFrame in pandas'
//! "split" orient: `{"columns": [...], "data": [[...], ...]}`), as an arrow batch `scorer models
//! verify` scores: numbers become f64 columns, strings text, JSON null a null.

use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, StringArray};
use arrow::record_batch::RecordBatch;

/// The file scorer keeps the example in, beside the model's `model.toml`.
pub const FILE: &str = "input_example.json";

/// Reads a split-orient example into a batch with one column per example column.
pub fn read(text: &str) -> Result<RecordBatch, String> {
    #[derive(serde::Deserialize)]
    struct Split {
        columns: Vec<String>,
        data: Vec<Vec<serde_json::Value>>,
    }
    let split: Split = serde_json::from_str(text)
        .map_err(|e| format!("the input example is not a DataFrame in split orient: {e}"))?;
    let mut columns: Vec<(String, ArrayRef)> = Vec::with_capacity(split.columns.len());
    for (j, name) in split.columns.iter().enumerate() {
        let cells: Vec<&serde_json::Value> = split
            .data
            .iter()
            .map(|row| row.get(j).unwrap_or(&serde_json::Value::Null))
            .collect();
        let array: ArrayRef = if cells.iter().any(|v| v.is_string()) {
            Arc::new(
                cells
                    .iter()
                    .map(|v| v.as_str().map(str::to_string))
                    .collect::<StringArray>(),
            )
        } else if cells
            .iter()
            .all(|v| v.is_number() || v.is_null() || v.is_boolean())
        {
            Arc::new(
                cells
                    .iter()
                    .map(|v| v.as_f64().or_else(|| v.as_bool().map(f64::from)))
                    .collect::<Float64Array>(),
            )
        } else {
            return Err(format!(
                "the input example's column `{name}` holds values that are neither numbers nor strings"
            ));
        };
        columns.push((name.clone(), array));
    }
    RecordBatch::try_from_iter(columns).map_err(|e| format!("the input example: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_split_dataframe_becomes_typed_columns() {
        let batch = read(r#"{"columns": ["a", "b"], "data": [[0.5, "x"], [null, "y"]]}"#).unwrap();
        assert_eq!(batch.num_rows(), 2);
        assert_eq!(
            batch.column(0).data_type(),
            &arrow::datatypes::DataType::Float64
        );
        assert_eq!(batch.column(0).null_count(), 1);
        assert_eq!(
            batch.column(1).data_type(),
            &arrow::datatypes::DataType::Utf8
        );
        assert!(read(r#"{"inputs": [1]}"#).is_err());
    }
}
