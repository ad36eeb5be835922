//! The one mapping from a result column's arrow type to what each sink stores: its PostgreSQL
//! type and binary COPY encoding, its SQLite type and value, and (through the arrow type, see
//! [`OutputType::arrow`]) its Parquet type.
//!
//! | output type | arrow | PostgreSQL | SQLite | Parquet |
//! | --- | --- | --- | --- | --- |
//! | `Float32` | `Float32` | `real` | `REAL` | `FLOAT` |
//! | `Float32Vector(n)` | `FixedSizeList<Float32>[n]` | `real[]` | `TEXT` (JSON array) | `LIST<FLOAT>` |
//! | `Int64` | `Int64` | `bigint` | `INTEGER` | `INT64` |
//! | `Float64` | `Float64` | `double precision` | `REAL` | `DOUBLE` |
//! | `Text` | `Utf8` | `text` | `TEXT` | `BYTE_ARRAY` (UTF8) |
//! | `TextList(k)` | `List<Utf8>` | `text[]` | `TEXT` (JSON array) | `LIST<BYTE_ARRAY>` |
//! | `Float32List(k)` | `List<Float32>` | `real[]` | `TEXT` (JSON array) | `LIST<FLOAT>` |
//!
//! Model outputs are never null; passthrough columns (`Int64`, `Float64`, `Text`) may be.

use arrow::array::{
    Array, ArrayRef, FixedSizeListArray, Float32Array, Float64Array, Int64Array, ListArray,
    StringArray,
};
use bytes::BufMut;
use serde::Deserialize;

use crate::contract::OutputType;

/// PostgreSQL's OID of `float4`, the element type of a `real[]` in binary COPY.
const FLOAT4_OID: u32 = 700;
/// PostgreSQL's OID of `text`, the element type of a `text[]`.
const TEXT_OID: u32 = 25;

/// The SQL type a table sink stores a result column as. A trait because the output types belong
/// to the contract (`scorer-core`), which knows no sink.
pub trait SqlColumnType {
    /// The column's PostgreSQL type, as `format_type` prints it.
    fn pg_type(self) -> &'static str;
    /// The column's SQLite type.
    fn sqlite_type(self) -> &'static str;
}

impl SqlColumnType for OutputType {
    fn pg_type(self) -> &'static str {
        match self {
            Self::Float32 => "real",
            Self::Float32Vector(_) | Self::Float32List(_) => "real[]",
            Self::TextList(_) => "text[]",
            Self::Int64 => "bigint",
            Self::Float64 => "double precision",
            Self::Text => "text",
        }
    }

    fn sqlite_type(self) -> &'static str {
        match self {
            Self::Float32 => "REAL",
            Self::Float32Vector(_) | Self::TextList(_) | Self::Float32List(_) => "TEXT",
            Self::Int64 => "INTEGER",
            Self::Float64 => "REAL",
            Self::Text => "TEXT",
        }
    }
}

/// A result column's values, resolved once per batch so the per-row loop does not downcast.
#[derive(Debug, Clone, Copy)]
pub enum ColumnValues<'a> {
    F32(&'a [f32]),
    /// Row `r` is `values[r * width .. (r + 1) * width]`.
    F32Vector {
        values: &'a [f32],
        width: usize,
    },
    I64(&'a [i64]),
    /// A vector as pgvector's `vector(n)` (PostgreSQL with `output.vector_type = "pgvector"`).
    PgVector {
        values: &'a [f32],
        width: usize,
    },
    /// A vector as a SQLite BLOB of little-endian f32 (`output.vector_type = "blob"`).
    BlobVector {
        values: &'a [f32],
        width: usize,
    },
    /// Passthrough columns, nulls allowed.
    NullableI64(&'a Int64Array),
    F64(&'a Float64Array),
    Text(&'a StringArray),
    /// Reason codes: row `r` is `values[offsets[r]..offsets[r + 1]]`.
    TextList {
        offsets: &'a [i32],
        values: &'a StringArray,
    },
    /// The values beside reason codes: row `r` is `values[offsets[r]..offsets[r + 1]]`.
    F32List {
        offsets: &'a [i32],
        values: &'a [f32],
    },
}

/// A batch column that is not of its declared type: a programming error upstream, reported
/// rather than written half.
#[derive(Debug, thiserror::Error)]
#[error("result column {index} is {actual}, but the layout declares {declared}")]
pub struct WrongColumnType {
    pub index: usize,
    pub actual: String,
    pub declared: OutputType,
}

impl<'a> ColumnValues<'a> {
    /// Views `array` (of `rows` rows) as values of `ty`.
    pub fn of(
        index: usize,
        array: &'a ArrayRef,
        ty: OutputType,
        rows: usize,
    ) -> Result<Self, WrongColumnType> {
        let wrong = || WrongColumnType {
            index,
            actual: array.data_type().to_string(),
            declared: ty,
        };
        if array.len() < rows {
            return Err(wrong());
        }
        let any = array.as_any();
        let nullable = matches!(
            ty,
            OutputType::Int64 | OutputType::Float64 | OutputType::Text
        );
        if array.null_count() > 0 && !nullable {
            return Err(wrong());
        }
        match ty {
            OutputType::Int64 if array.null_count() > 0 => any
                .downcast_ref::<Int64Array>()
                .map(Self::NullableI64)
                .ok_or_else(wrong),
            OutputType::Float64 => any
                .downcast_ref::<Float64Array>()
                .map(Self::F64)
                .ok_or_else(wrong),
            OutputType::Text => any
                .downcast_ref::<StringArray>()
                .map(Self::Text)
                .ok_or_else(wrong),
            OutputType::Float32 => any
                .downcast_ref::<Float32Array>()
                .map(|a| Self::F32(a.values()))
                .ok_or_else(wrong),
            OutputType::Int64 => any
                .downcast_ref::<Int64Array>()
                .map(|a| Self::I64(a.values()))
                .ok_or_else(wrong),
            OutputType::Float32Vector(width) => {
                let list = any.downcast_ref::<FixedSizeListArray>().ok_or_else(wrong)?;
                if usize::try_from(list.value_length()).ok() != Some(width) {
                    return Err(wrong());
                }
                let values = crate::contract::f32_values(list).ok_or_else(wrong)?;
                Ok(Self::F32Vector { values, width })
            }
            OutputType::TextList(_) => {
                let (offsets, values) = list_parts::<StringArray>(any).ok_or_else(wrong)?;
                Ok(Self::TextList { offsets, values })
            }
            OutputType::Float32List(_) => {
                let (offsets, values) = list_parts::<Float32Array>(any).ok_or_else(wrong)?;
                Ok(Self::F32List {
                    offsets,
                    values: values.values(),
                })
            }
        }
    }

    /// The same values, a vector stored as `output.vector_type` says: pgvector's `vector(n)`,
    /// a SQLite BLOB of little-endian f32, or (`real[]`) as it is. Other columns are unchanged.
    pub fn stored_as(self, vectors: VectorType) -> Self {
        match (self, vectors) {
            (Self::F32Vector { values, width }, VectorType::Pgvector) => {
                Self::PgVector { values, width }
            }
            (Self::F32Vector { values, width }, VectorType::Blob) => {
                Self::BlobVector { values, width }
            }
            (other, _) => other,
        }
    }

    /// Appends row `r` as one binary COPY field (length, then the value).
    #[inline]
    pub fn encode_copy(&self, r: usize, buf: &mut Vec<u8>) {
        match *self {
            Self::F32(v) => {
                buf.put_i32(4);
                buf.put_f32(v[r]);
            }
            Self::I64(v) => {
                buf.put_i32(8);
                buf.put_i64(v[r]);
            }
            Self::PgVector { values, width } => {
                // pgvector's binary form: dimensions (int16), unused (int16), float4 each.
                let n = i16::try_from(width).unwrap_or(i16::MAX);
                buf.put_i32(4 + 4 * i32::from(n));
                buf.put_i16(n);
                buf.put_i16(0);
                for v in &values[r * width..(r + 1) * width] {
                    buf.put_f32(*v);
                }
            }
            // A null field is length -1 with no bytes.
            Self::NullableI64(a) if a.is_null(r) => buf.put_i32(-1),
            Self::F64(a) if a.is_null(r) => buf.put_i32(-1),
            Self::Text(a) if a.is_null(r) => buf.put_i32(-1),
            Self::NullableI64(a) => {
                buf.put_i32(8);
                buf.put_i64(a.value(r));
            }
            Self::F64(a) => {
                buf.put_i32(8);
                buf.put_f64(a.value(r));
            }
            Self::Text(a) => {
                let v = a.value(r).as_bytes();
                buf.put_i32(i32::try_from(v.len()).unwrap_or(i32::MAX));
                buf.extend_from_slice(v);
            }
            Self::F32Vector { values, width } | Self::BlobVector { values, width } => {
                encode_f32_array(&values[r * width..(r + 1) * width], buf);
            }
            Self::F32List { offsets, values } => {
                encode_f32_array(&values[list_range(offsets, r)], buf);
            }
            Self::TextList { offsets, values } => {
                let range = list_range(offsets, r);
                if range.is_empty() {
                    put_empty_array(TEXT_OID, buf);
                    return;
                }
                let at = buf.len();
                buf.put_i32(0); // the field's length, set below
                put_array_header(TEXT_OID, range.len(), buf);
                for i in range {
                    let v = values.value(i).as_bytes();
                    buf.put_i32(i32::try_from(v.len()).unwrap_or(i32::MAX));
                    buf.extend_from_slice(v);
                }
                let len = i32::try_from(buf.len() - at - 4).unwrap_or(i32::MAX);
                buf[at..at + 4].copy_from_slice(&len.to_be_bytes());
            }
        }
    }

    /// Bytes per row this column adds to a binary COPY row, for reserving buffer space.
    pub fn copy_bytes_per_row(&self) -> usize {
        match *self {
            Self::F32(_) => 8,
            Self::I64(_) | Self::NullableI64(_) | Self::F64(_) => 12,
            Self::F32Vector { width, .. } | Self::BlobVector { width, .. } => 24 + 8 * width,
            Self::PgVector { width, .. } => 8 + 4 * width,
            // An estimate (a hex HMAC is 64 bytes): the buffer grows if rows are longer.
            Self::Text(_) => 4 + 64,
            // Estimates for three entries: the buffer grows if rows are longer.
            Self::F32List { .. } => 24 + 8 * 3,
            Self::TextList { .. } => 24 + 3 * (4 + 24),
        }
    }

    /// Row `r` as the value SQLite stores.
    pub fn sqlite_value(&self, r: usize) -> SqliteValue {
        match *self {
            Self::F32(v) => SqliteValue::Real(f64::from(v[r])),
            Self::I64(v) => SqliteValue::Integer(v[r]),
            Self::NullableI64(a) if a.is_null(r) => SqliteValue::Null,
            Self::F64(a) if a.is_null(r) => SqliteValue::Null,
            Self::Text(a) if a.is_null(r) => SqliteValue::Null,
            Self::NullableI64(a) => SqliteValue::Integer(a.value(r)),
            Self::F64(a) => SqliteValue::Real(a.value(r)),
            Self::Text(a) => SqliteValue::Text(a.value(r).to_string()),
            Self::F32Vector { values, width } | Self::PgVector { values, width } => {
                let row = &values[r * width..(r + 1) * width];
                SqliteValue::Text(json_array(row))
            }
            Self::BlobVector { values, width } => SqliteValue::Blob(
                values[r * width..(r + 1) * width]
                    .iter()
                    .flat_map(|v| v.to_le_bytes())
                    .collect(),
            ),
            Self::F32List { offsets, values } => {
                SqliteValue::Text(json_array(&values[list_range(offsets, r)]))
            }
            Self::TextList { offsets, values } => {
                let texts: Vec<&str> = list_range(offsets, r).map(|i| values.value(i)).collect();
                SqliteValue::Text(serde_json::Value::from(texts).to_string())
            }
        }
    }
}

/// A list column's offsets and its elements as `T`, which must hold no nulls.
fn list_parts<T: Array + 'static>(any: &dyn std::any::Any) -> Option<(&[i32], &T)> {
    let list = any.downcast_ref::<ListArray>()?;
    let values = list
        .values()
        .as_any()
        .downcast_ref::<T>()
        .filter(|v| v.null_count() == 0)?;
    Some((list.value_offsets(), values))
}

/// The element positions of row `r` of a list column.
#[inline]
fn list_range(offsets: &[i32], r: usize) -> std::ops::Range<usize> {
    let at = |i: usize| usize::try_from(offsets[i]).unwrap_or(0);
    at(r)..at(r + 1).max(at(r))
}

/// A one-dimensional `real[]` as one binary COPY field (length, then the array): ndim, has-nulls
/// flag, element type, the dimension's length and lower bound, then each element with its
/// length. An empty array is written with no dimension, as PostgreSQL writes one.
fn encode_f32_array(values: &[f32], buf: &mut Vec<u8>) {
    if values.is_empty() {
        put_empty_array(FLOAT4_OID, buf);
        return;
    }
    let n = i32::try_from(values.len()).unwrap_or(i32::MAX);
    buf.put_i32(20 + 8 * n);
    put_array_header(FLOAT4_OID, values.len(), buf);
    for v in values {
        buf.put_i32(4);
        buf.put_f32(*v);
    }
}

/// The header of a one-dimensional array of `n` elements of type `oid`, from index 1.
fn put_array_header(oid: u32, n: usize, buf: &mut Vec<u8>) {
    buf.put_i32(1);
    buf.put_i32(0);
    buf.put_u32(oid);
    buf.put_i32(i32::try_from(n).unwrap_or(i32::MAX));
    buf.put_i32(1);
}

/// An empty array of type `oid` as one field: no dimensions.
fn put_empty_array(oid: u32, buf: &mut Vec<u8>) {
    buf.put_i32(12);
    buf.put_i32(0);
    buf.put_i32(0);
    buf.put_u32(oid);
}

/// A value as SQLite stores it.
#[derive(Debug, Clone, PartialEq)]
pub enum SqliteValue {
    Null,
    Blob(Vec<u8>),
    Real(f64),
    Integer(i64),
    Text(String),
}

/// `[0.25,1,-3.5]`: the shortest text that reads back as the same f32 (`json_extract` reads it);
/// NaN and infinities, which JSON lacks, become `null`.
fn json_array(values: &[f32]) -> String {
    let mut s = String::with_capacity(values.len() * 10 + 2);
    s.push('[');
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        if v.is_finite() {
            s.push_str(&v.to_string());
        } else {
            s.push_str("null");
        }
    }
    s.push(']');
    s
}

/// `output.vector_type`: the PostgreSQL type of vector columns.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum VectorType {
    /// `real[]`: no extension needed.
    #[default]
    #[serde(rename = "real[]")]
    RealArray,
    /// pgvector's `vector(n)`; the extension must be installed in the database.
    #[serde(rename = "pgvector")]
    Pgvector,
    /// SQLite: a BLOB of the little-endian f32 values (4 bytes each), instead of a JSON array.
    #[serde(rename = "blob")]
    Blob,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::{OutputColumn, pack_outputs};

    fn vector_column() -> ArrayRef {
        let outputs = [OutputColumn {
            name: "v".into(),
            ty: OutputType::Float32Vector(2),
        }];
        pack_outputs(&outputs, vec![vec![0.5, 1.0], vec![-2.0, f32::NAN]], 2)
            .unwrap()
            .remove(0)
    }

    #[test]
    fn vectors_encode_as_a_postgres_float4_array() {
        let col = vector_column();
        let values = ColumnValues::of(0, &col, OutputType::Float32Vector(2), 2).unwrap();
        let mut buf = Vec::new();
        values.encode_copy(0, &mut buf);
        let mut want = Vec::new();
        for v in [36i32, 1, 0, 700, 2, 1, 4] {
            want.extend(v.to_be_bytes());
        }
        want.extend(0.5f32.to_be_bytes());
        want.extend(4i32.to_be_bytes());
        want.extend((-2.0f32).to_be_bytes());
        assert_eq!(buf, want);
        assert_eq!(buf.len(), values.copy_bytes_per_row());
    }

    #[test]
    fn vectors_become_json_arrays_in_sqlite() {
        let col = vector_column();
        let values = ColumnValues::of(0, &col, OutputType::Float32Vector(2), 2).unwrap();
        assert_eq!(values.sqlite_value(0), SqliteValue::Text("[0.5,-2]".into()));
        assert_eq!(values.sqlite_value(1), SqliteValue::Text("[1,null]".into()));
    }

    #[test]
    fn vectors_become_little_endian_blobs_when_asked() {
        let col = vector_column();
        let values = ColumnValues::of(0, &col, OutputType::Float32Vector(2), 2)
            .unwrap()
            .stored_as(VectorType::Blob);
        let mut want = Vec::new();
        want.extend(1.0f32.to_le_bytes());
        want.extend(f32::NAN.to_le_bytes());
        assert_eq!(values.sqlite_value(1), SqliteValue::Blob(want));
    }

    #[test]
    fn a_column_of_another_type_is_refused() {
        let col = vector_column();
        let e = ColumnValues::of(3, &col, OutputType::Float32, 2).unwrap_err();
        assert!(e.to_string().contains("column 3"), "{e}");
        let ints: ArrayRef = std::sync::Arc::new(Int64Array::from(vec![4, 5]));
        let mut buf = Vec::new();
        ColumnValues::of(0, &ints, OutputType::Int64, 2)
            .unwrap()
            .encode_copy(1, &mut buf);
        assert_eq!(buf[..4], 8i32.to_be_bytes());
        assert_eq!(buf[4..], 5i64.to_be_bytes());
    }
}
