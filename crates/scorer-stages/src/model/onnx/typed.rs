//! Graph inputs that are not f32: a tile of string, i64, f64 or bool features as the tensor the
//! graph declares, row-major `[rows, features]` (or `[rows]`), from the feature stage's typed
//! columns (nulls already filled or left out by the job's policy).

use arrow::array::{Array, BooleanArray, Float64Array, Int64Array, StringArray};
use ort::session::SessionInputValue;
use ort::value::Tensor;

use super::mapping::Feed;
use crate::contract::FeatureType;
use crate::features::{FeatureBatch, FeatureColumn};

/// Rows `start..start + len` of `feed`'s features as one tensor of `shape`.
pub(super) fn tile(
    batch: &FeatureBatch,
    feed: &Feed,
    start: usize,
    len: usize,
    shape: Vec<usize>,
) -> Result<SessionInputValue<'static>, String> {
    let columns = feed
        .columns
        .iter()
        .map(|&j| match batch.column(j) {
            Some(FeatureColumn::Typed(a)) => Ok(a.slice(start, len)),
            _ => Err(format!(
                "graph input `{}`: feature {j} is not held as {}",
                feed.name, feed.ty
            )),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let at = |e: ort::Error| format!("graph input `{}`: {e}", feed.name);
    Ok(match feed.ty {
        FeatureType::Text => {
            let cols = downcast::<StringArray>(&columns, feed)?;
            // ort copies each string into the tensor; its input type must be 'static.
            let values: Vec<String> = row_major(&cols, len, |c, r| c.value(r).to_string());
            if let Some(bad) = values.iter().find(|v| v.contains('\0')) {
                return Err(format!(
                    "graph input `{}`: the value {bad:?} holds a NUL character, which an ONNX string tensor cannot",
                    feed.name
                ));
            }
            Tensor::from_string_array((shape, values.as_slice()))
                .map_err(at)?
                .into()
        }
        FeatureType::Int64 => {
            let cols = downcast::<Int64Array>(&columns, feed)?;
            let values = row_major(&cols, len, |c, r| c.value(r));
            Tensor::from_array((shape, values)).map_err(at)?.into()
        }
        FeatureType::Float64 => {
            let cols = downcast::<Float64Array>(&columns, feed)?;
            let values = row_major(&cols, len, |c, r| c.value(r));
            Tensor::from_array((shape, values)).map_err(at)?.into()
        }
        FeatureType::Boolean => {
            let cols = downcast::<BooleanArray>(&columns, feed)?;
            let values = row_major(&cols, len, |c, r| c.value(r));
            Tensor::from_array((shape, values)).map_err(at)?.into()
        }
        FeatureType::Float32 => {
            return Err(format!(
                "graph input `{}`: f32 features are written by the float path",
                feed.name
            ));
        }
    })
}

/// The columns as arrays of `A`, or an error naming the graph input.
fn downcast<'a, A: 'static>(
    columns: &'a [arrow::array::ArrayRef],
    feed: &Feed,
) -> Result<Vec<&'a A>, String> {
    columns
        .iter()
        .map(|c| {
            c.as_any().downcast_ref::<A>().ok_or_else(|| {
                format!(
                    "graph input `{}`: a feature is {}, expected {}",
                    feed.name,
                    c.data_type(),
                    feed.ty
                )
            })
        })
        .collect()
}

/// `len` rows of `cols` interleaved row-major: row `r` holds `value(col, r)` for each column.
fn row_major<'a, A, T>(cols: &[&'a A], len: usize, value: impl Fn(&'a A, usize) -> T) -> Vec<T> {
    let mut out = Vec::with_capacity(len * cols.len());
    for r in 0..len {
        for c in cols {
            out.push(value(c, r));
        }
    }
    out
}
