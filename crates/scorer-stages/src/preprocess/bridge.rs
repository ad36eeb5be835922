//! arrow-rs <-> polars, column by column, through the Arrow C Data Interface: the buffers are
//! handed over, not copied or serialized. polars bundles its own arrow (`polars-arrow`), so this is
//! the one place where the two meet.

use arrow::array::{ArrayRef, make_array};
use arrow::ffi::{FFI_ArrowArray, FFI_ArrowSchema, from_ffi, to_ffi};
use polars::prelude::{Column, CompatLevel, DataFrame, PlSmallStr, Series};
use polars_arrow::ffi::{ArrowArray, ArrowSchema};

/// An arrow-rs array as a polars column named `name`.
pub fn to_polars(name: &str, array: &ArrayRef) -> Result<Column, String> {
    let (ffi_array, ffi_schema) = to_ffi(&array.to_data()).map_err(|e| e.to_string())?;
    // SAFETY: arrow-rs' FFI_ArrowArray/FFI_ArrowSchema and polars-arrow's ArrowArray/ArrowSchema
    // are both `#[repr(C)]` definitions of the C Data Interface's structs (same fields, same
    // order); the release callbacks move with them, so each buffer is freed exactly once.
    let (c_array, c_schema) = unsafe {
        (
            std::mem::transmute::<FFI_ArrowArray, ArrowArray>(ffi_array),
            std::mem::transmute::<FFI_ArrowSchema, ArrowSchema>(ffi_schema),
        )
    };
    // SAFETY: both structs were just exported by arrow-rs from a valid array.
    let field =
        unsafe { polars_arrow::ffi::import_field_from_c(&c_schema) }.map_err(|e| e.to_string())?;
    let imported = unsafe { polars_arrow::ffi::import_array_from_c(c_array, field.dtype.clone()) }
        .map_err(|e| e.to_string())?;
    let series = Series::from_arrow(PlSmallStr::from(name), imported).map_err(|e| e.to_string())?;
    Ok(series.into())
}

/// Builds a frame of `height` rows from named arrow-rs arrays.
pub fn frame(height: usize, columns: &[(&str, &ArrayRef)]) -> Result<DataFrame, String> {
    let cols = columns
        .iter()
        .map(|(name, array)| to_polars(name, array))
        .collect::<Result<Vec<_>, _>>()?;
    DataFrame::new(height, cols).map_err(|e| e.to_string())
}

/// A polars column as an arrow-rs array (one chunk: rechunked first when needed).
pub fn to_arrow(column: &Column) -> Result<ArrayRef, String> {
    let series = column.as_materialized_series().rechunk();
    let array = series.to_arrow(0, CompatLevel::newest());
    let field =
        polars_arrow::datatypes::Field::new(series.name().clone(), array.dtype().clone(), true);
    let c_schema = polars_arrow::ffi::export_field_to_c(&field);
    let c_array = polars_arrow::ffi::export_array_to_c(array);
    // SAFETY: the same layout argument as in `to_polars`, in the other direction.
    let (ffi_array, ffi_schema) = unsafe {
        (
            std::mem::transmute::<ArrowArray, FFI_ArrowArray>(c_array),
            std::mem::transmute::<ArrowSchema, FFI_ArrowSchema>(c_schema),
        )
    };
    // SAFETY: polars-arrow exported a valid array with its schema.
    let data = unsafe { from_ffi(ffi_array, &ffi_schema) }.map_err(|e| e.to_string())?;
    Ok(make_array(data))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, Float32Array, StringArray};
    use std::sync::Arc;

    #[test]
    fn round_trips_numbers_and_strings_with_nulls() {
        let f: ArrayRef = Arc::new(Float32Array::from(vec![Some(1.5), None, Some(-2.0)]));
        let s: ArrayRef = Arc::new(StringArray::from(vec![Some("a"), Some("b"), None]));
        let df = frame(3, &[("f", &f), ("s", &s)]).unwrap();
        let back_f = to_arrow(df.column("f").unwrap()).unwrap();
        assert_eq!(back_f.as_ref(), f.as_ref());
        let back_s = to_arrow(df.column("s").unwrap()).unwrap();
        let back_s = arrow::compute::cast(&back_s, &arrow::datatypes::DataType::Utf8).unwrap();
        assert_eq!(back_s.as_ref(), s.as_ref());
        assert_eq!(back_s.null_count(), 1);
    }
}
