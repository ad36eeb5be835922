//! A gbdt model's explanation outputs: each row's SHAP contributions ([`super::shap`]) as one f32
//! vector, and reason codes, the `k` features that moved the score most one way, as a text array
//! with their contributions beside it.
//!
//! Reason codes, row by row: of the output group's per-feature contributions (the bias is not a
//! feature), those of the asked sign and not zero, largest magnitude first; equal magnitudes go
//! in input order (the feature listed first in model.toml first). Fewer than `k` when fewer
//! features pushed that way; an empty array when none did. The order and the values are those of
//! the stored f32 contributions, so a reader who sorts the `contributions` column finds the same.

use std::sync::Arc;

use arrow::array::{ArrayRef, FixedSizeListArray, Float32Array, ListArray, StringArray};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::{DataType, Field};

use super::forest::Forest;
use super::shap_tables::ShapTables;
use crate::features::FeatureBatch;
use crate::model::ModelError;
use crate::model::spec::{ExplainedColumn, ReasonSign};

/// A forest and, where they fit, its TreeSHAP tables.
pub struct Explainer {
    forest: Forest,
    tables: Option<ShapTables>,
}

impl Explainer {
    /// Builds the tables for `forest` (which must record covers), or keeps to the recursion when
    /// they would not fit [`super::shap_tables::TABLE_BUDGET`].
    pub fn new(forest: Forest) -> Self {
        let tables = ShapTables::build(&forest);
        Self { forest, tables }
    }

    /// Values per row: `(features + 1) × groups`.
    pub fn width(&self) -> usize {
        (self.forest.features + 1) * self.forest.groups
    }

    /// Each row's contributions, row-major (`rows × width`), rows in parallel (rayon) in chunks
    /// of contiguous rows, as the evaluator scores them.
    pub fn contributions(&self, batch: &FeatureBatch) -> Vec<f32> {
        use rayon::prelude::*;
        const CHUNK: usize = 256;
        let features = batch.width();
        let width = self.width();
        let mut values = vec![0f32; batch.rows * width];
        let all: Vec<usize> = (0..features).collect();
        values
            .par_chunks_mut(CHUNK * width)
            .enumerate()
            .for_each(|(c, out)| {
                let start = c * CHUNK;
                let rows = out.len() / width.max(1);
                let mut x = vec![0f32; rows * features];
                batch.write_row_major(&all, start, rows, &mut x);
                match &self.tables {
                    Some(t) => t.contributions_into(&self.forest, &x, rows, out),
                    None => {
                        for (r, dst) in out.chunks_mut(width).enumerate() {
                            let phi = self
                                .forest
                                .contributions(&x[r * features..(r + 1) * features]);
                            for (d, v) in dst.iter_mut().zip(phi) {
                                *d = v as f32;
                            }
                        }
                    }
                }
            });
        values
    }
}

/// The explanation columns of one batch, from its contributions (`rows × width`, row-major).
pub fn columns(
    explained: &[(usize, ExplainedColumn)],
    contributions: Vec<f32>,
    width: usize,
    features: &[String],
) -> Result<Vec<(usize, ArrayRef)>, ModelError> {
    let runtime = |e: arrow::error::ArrowError| ModelError::Runtime(format!("explanations: {e}"));
    let mut out = Vec::with_capacity(explained.len());
    let mut reasons: Vec<((usize, ReasonSign, usize), TopContributions)> = Vec::new();
    for &(_, what) in explained {
        if let ExplainedColumn::Reasons { k, sign, class, .. } = what {
            let key = (k, sign, class.unwrap_or(0));
            if !reasons.iter().any(|(have, _)| *have == key) {
                let top = TopContributions::of(&contributions, width, features.len(), key);
                reasons.push((key, top));
            }
        }
    }
    let mut contributions = Some(contributions);
    let mut vector: Option<ArrayRef> = None;
    for &(at, what) in explained {
        let array: ArrayRef = match what {
            ExplainedColumn::Contributions => {
                if vector.is_none() {
                    let values = contributions.take().unwrap_or_default();
                    let field = Arc::new(Field::new_list_field(DataType::Float32, false));
                    let size = i32::try_from(width).unwrap_or(i32::MAX);
                    let array = FixedSizeListArray::try_new(
                        field,
                        size,
                        Arc::new(Float32Array::from(values)),
                        None,
                    )
                    .map_err(runtime)?;
                    vector = Some(Arc::new(array));
                }
                vector.clone().ok_or_else(|| {
                    ModelError::Runtime("explanations: contributions were not computed".into())
                })?
            }
            ExplainedColumn::Reasons {
                k,
                sign,
                class,
                values,
            } => {
                let key = (k, sign, class.unwrap_or(0));
                let top = reasons
                    .iter()
                    .find(|(have, _)| *have == key)
                    .map(|(_, t)| t)
                    .ok_or_else(|| {
                        ModelError::Runtime("explanations: reasons were not computed".into())
                    })?;
                if values {
                    top.values_array().map_err(runtime)?
                } else {
                    top.names_array(features).map_err(runtime)?
                }
            }
        };
        out.push((at, array));
    }
    Ok(out)
}

/// Each row's top features of one sign: their input positions and contributions, rows
/// delimited by `offsets`.
struct TopContributions {
    offsets: Vec<i32>,
    features: Vec<u32>,
    values: Vec<f32>,
}

impl TopContributions {
    /// Picks, for every row, up to `k` features of output group `class` whose contributions
    /// have `sign`, largest magnitude first, equal ones in input order.
    fn of(
        contributions: &[f32],
        width: usize,
        features: usize,
        (k, sign, class): (usize, ReasonSign, usize),
    ) -> Self {
        let rows = contributions.len() / width.max(1);
        let mut top = Self {
            offsets: Vec::with_capacity(rows + 1),
            features: Vec::with_capacity(rows * k),
            values: Vec::with_capacity(rows * k),
        };
        top.offsets.push(0);
        let group = class * (features + 1);
        // The row's best so far, best first: (|value|, feature, value).
        let mut best: Vec<(f32, u32, f32)> = Vec::with_capacity(k + 1);
        for row in contributions.chunks_exact(width.max(1)) {
            best.clear();
            let phi = &row[group..group + features];
            for (f, &v) in phi.iter().enumerate() {
                let pushes = match sign {
                    ReasonSign::Positive => v > 0.0,
                    ReasonSign::Negative => v < 0.0,
                };
                if !pushes {
                    continue;
                }
                let m = v.abs();
                if best.len() == k && m <= best[k - 1].0 {
                    // Not larger than the k-th: an equal one came later in input order.
                    continue;
                }
                // After every entry at least as large: equal magnitudes keep input order.
                let at = best.partition_point(|e| e.0 >= m);
                best.insert(at, (m, f as u32, v));
                best.truncate(k);
            }
            for &(_, f, v) in &best {
                top.features.push(f);
                top.values.push(v);
            }
            top.offsets
                .push(i32::try_from(top.features.len()).unwrap_or(i32::MAX));
        }
        top
    }

    fn values_array(&self) -> Result<ArrayRef, arrow::error::ArrowError> {
        let field = Arc::new(Field::new_list_field(DataType::Float32, false));
        Ok(Arc::new(ListArray::try_new(
            field,
            OffsetBuffer::new(self.offsets.clone().into()),
            Arc::new(Float32Array::from(self.values.clone())),
            None,
        )?))
    }

    fn names_array(&self, names: &[String]) -> Result<ArrayRef, arrow::error::ArrowError> {
        let field = Arc::new(Field::new_list_field(DataType::Utf8, false));
        let texts = StringArray::from_iter_values(
            self.features
                .iter()
                .map(|&f| names.get(f as usize).map_or("", String::as_str)),
        );
        Ok(Arc::new(ListArray::try_new(
            field,
            OffsetBuffer::new(self.offsets.clone().into()),
            Arc::new(texts),
            None,
        )?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Array;

    fn top(phi: &[f32], k: usize, sign: ReasonSign) -> Vec<(u32, f32)> {
        let t = TopContributions::of(phi, phi.len(), phi.len() - 1, (k, sign, 0));
        t.features.into_iter().zip(t.values).collect()
    }

    #[test]
    fn largest_first_ties_in_input_order_zero_and_bias_left_out() {
        // features 0..5, then the bias (9.0, never a reason)
        let phi = [0.5, -2.0, 0.5, 0.0, 1.5, 9.0];
        assert_eq!(
            top(&phi, 3, ReasonSign::Positive),
            vec![(4, 1.5), (0, 0.5), (2, 0.5)]
        );
        assert_eq!(top(&phi, 2, ReasonSign::Positive), vec![(4, 1.5), (0, 0.5)]);
        assert_eq!(top(&phi, 3, ReasonSign::Negative), vec![(1, -2.0)]);
        assert_eq!(top(&[0.0, 0.0, 3.0], 2, ReasonSign::Positive), vec![]);
    }

    #[test]
    fn arrays_hold_names_and_values_row_by_row() {
        let phi = [1.0, 2.0, 0.0, -1.0, 0.0, 0.0];
        let t = TopContributions::of(&phi, 3, 2, (2, ReasonSign::Positive, 0));
        let names = t.names_array(&["a".into(), "b".into()]).unwrap();
        let list = names.as_any().downcast_ref::<ListArray>().unwrap();
        assert_eq!(list.len(), 2);
        let first = list.value(0);
        let first = first.as_any().downcast_ref::<StringArray>().unwrap();
        assert_eq!(first.iter().flatten().collect::<Vec<_>>(), vec!["b", "a"]);
        assert_eq!(list.value(1).len(), 0);
    }
}
