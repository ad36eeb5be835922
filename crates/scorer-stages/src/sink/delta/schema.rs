//! A result table's columns as a Delta schema: the id, the scores (from the model's typed
//! outputs and the passthrough columns), the run id, and `ds`, the date partition column, which
//! the data files do not hold (Delta keeps it as each file's partition value).

use deltalake_core::kernel::{ArrayType, DataType, StructField};

use crate::contract::OutputType;
use crate::sink::{DATE_COLUMN, RUN_ID_COLUMN, SinkSpec};
use crate::source::IdKind;

/// The table's columns in order: id, the scores, run id, then `ds`.
pub fn fields(spec: &SinkSpec) -> Vec<StructField> {
    let mut fields = vec![StructField::new(
        spec.id_column.as_str(),
        match spec.id_kind {
            IdKind::Int => DataType::LONG,
            IdKind::Text => DataType::STRING,
        },
        false,
    )];
    fields.extend(
        spec.score_columns
            .iter()
            .map(|c| StructField::new(c.name.as_str(), delta_type(&c.ty), true)),
    );
    fields.push(StructField::new(RUN_ID_COLUMN, DataType::STRING, false));
    fields.push(StructField::new(DATE_COLUMN, DataType::DATE, false));
    fields
}

/// The Delta type of an output column, matching what the Parquet writer stores for its arrow
/// type (a fixed-size list is a Parquet LIST, i.e. a Delta array).
fn delta_type(ty: &OutputType) -> DataType {
    match ty {
        OutputType::Float32 => DataType::FLOAT,
        OutputType::Float64 => DataType::DOUBLE,
        OutputType::Int64 => DataType::LONG,
        OutputType::Text => DataType::STRING,
        OutputType::Float32Vector(_) | OutputType::Float32List(_) => {
            DataType::Array(Box::new(ArrayType::new(DataType::FLOAT, false)))
        }
        OutputType::TextList(_) => {
            DataType::Array(Box::new(ArrayType::new(DataType::STRING, false)))
        }
    }
}

/// What differs between an existing table's columns and the ones a run writes (names, types and
/// nullability, in order); `None` when they agree.
pub fn mismatch(existing: &[StructField], wanted: &[StructField]) -> Option<String> {
    let show = |f: &[StructField]| {
        f.iter()
            .map(|c| {
                format!(
                    "{} {}{}",
                    c.name(),
                    c.data_type(),
                    if c.is_nullable() { "" } else { " not null" }
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let same = existing.len() == wanted.len()
        && existing.iter().zip(wanted).all(|(a, b)| {
            a.name() == b.name()
                && a.data_type() == b.data_type()
                && a.is_nullable() == b.is_nullable()
        });
    (!same).then(|| {
        format!(
            "the table's columns are ({}), the job writes ({}); write to a new table, or change \
             the job's outputs back",
            show(existing),
            show(wanted)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mismatch_names_both_column_lists() {
        let a = vec![StructField::new("id", DataType::LONG, false)];
        let b = vec![StructField::new("id", DataType::STRING, false)];
        assert_eq!(mismatch(&a, &a), None);
        let why = mismatch(&a, &b).unwrap_or_default();
        assert!(why.contains("(id long not null)"), "{why}");
        assert!(why.contains("(id string not null)"), "{why}");
    }
}
