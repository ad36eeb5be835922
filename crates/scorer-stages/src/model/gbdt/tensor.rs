//! The forest as tensor operations (Hummingbird's perfect-tree traversal), so the same model file
//! runs on a CUDA GPU: every tree is padded to a perfect tree of the forest's depth `D` (a leaf
//! above the bottom becomes a chain of always-left nodes), each level's nodes are tensors
//! `[trees × 2^level]`, and a batch of rows descends all trees at once, one level per step:
//! gather the node's feature and threshold for every (row, tree), compare, double the position
//! and add the direction. At the bottom the leaf values are gathered and summed per class.
//!
//! It runs on any candle device; the tests run it on the CPU against the reference walk, so the
//! formulation is checked where no GPU is at hand.

use candle_core::{DType, Device, Tensor};

use super::ModelError;
use super::forest::{Node, PlainForest, RowPrep, Split};
use crate::features::FeatureBatch;

/// Deepest forest padded to perfect trees: 2^16 leaves per tree.
pub const MAX_DEPTH: usize = 16;
/// Most leaf slots (trees × 2^depth) laid out on a device: 4 arrays of this many 4-byte values.
const MAX_SLOTS: usize = 1 << 27;
/// (row, tree) pairs per step: bounds the intermediates at 4 × this × 4 bytes.
const MAX_PAIRS: usize = 1 << 23;

struct Level {
    feature: Tensor,
    threshold: Tensor,
    nan_right: Tensor,
    /// `[1, trees]`: tree t's first node in this level's arrays.
    offsets: Tensor,
}

/// A forest laid out as tensors on one device.
pub struct TensorForest {
    device: Device,
    levels: Vec<Level>,
    leaves: Tensor,
    leaf_offsets: Tensor,
    /// `[trees, groups]` one-hot, when there is more than one group.
    group_matrix: Option<Tensor>,
    trees: usize,
    groups: usize,
    base_margin: Vec<f64>,
    /// What the rows go through before upload (zero bands, categorical columns).
    rows: RowPrep,
}

impl std::fmt::Debug for TensorForest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TensorForest")
            .field("device", &self.device)
            .field("depth", &self.levels.len())
            .field("trees", &self.trees)
            .finish()
    }
}

fn candle(e: candle_core::Error) -> ModelError {
    ModelError::Candle(e.to_string())
}

impl TensorForest {
    /// Pads and uploads the forest (its plain form: categorical splits as 0/1 columns computed on
    /// the host). Forests deeper than [`MAX_DEPTH`], or with zero-as-missing splits on a feature
    /// other splits read as it is, are refused (they run on the CPU evaluator).
    pub fn build(plain: &PlainForest, device: &Device) -> Result<Self, String> {
        let forest = &plain.forest;
        let depth = forest.max_depth().max(1);
        if depth > MAX_DEPTH {
            return Err(format!(
                "trees {depth} deep are too deep for the GPU evaluator (at most {MAX_DEPTH}); run it with device = \"cpu\""
            ));
        }
        let trees = forest.trees.len();
        if trees.saturating_mul(1 << depth) > MAX_SLOTS {
            return Err(format!(
                "{trees} trees padded to depth {depth} would take {} leaf slots, more than the GPU evaluator's {MAX_SLOTS}; run it with device = \"cpu\"",
                trees.saturating_mul(1 << depth)
            ));
        }
        let mut feature: Vec<Vec<u32>> = (0..depth).map(|l| vec![0; trees << l]).collect();
        let mut threshold: Vec<Vec<f32>> = (0..depth)
            .map(|l| vec![f32::INFINITY; trees << l])
            .collect();
        let mut nan_right: Vec<Vec<u32>> = (0..depth).map(|l| vec![0; trees << l]).collect();
        let mut leaves = vec![0f32; trees << depth];
        for (t, tree) in forest.trees.iter().enumerate() {
            let mut stack = vec![(0usize, 0usize, 0usize)]; // (node, level, position)
            while let Some((i, level, pos)) = stack.pop() {
                match &tree.nodes[i] {
                    Node::Leaf(v) => {
                        // always-left chain below: the row lands on the leftmost bottom slot
                        leaves[(t << depth) + (pos << (depth - level))] = *v as f32;
                    }
                    Node::Split { split, left, right } => {
                        let Split::Numeric {
                            feature: f,
                            threshold: th,
                            nan_left,
                            zero_is_missing: false,
                        } = split
                        else {
                            return Err(UNSUPPORTED.into());
                        };
                        let at = (t << level) + pos;
                        feature[level][at] = *f;
                        threshold[level][at] = *th;
                        nan_right[level][at] = u32::from(!nan_left);
                        stack.push((*left, level + 1, pos * 2));
                        stack.push((*right, level + 1, pos * 2 + 1));
                    }
                }
            }
        }
        let mut build = || -> candle_core::Result<Self> {
            let mut levels = Vec::with_capacity(depth);
            for l in 0..depth {
                let width = trees << l;
                let offsets: Vec<u32> = (0..trees).map(|t| (t << l) as u32).collect();
                levels.push(Level {
                    feature: Tensor::from_vec(std::mem::take(&mut feature[l]), width, device)?,
                    threshold: Tensor::from_vec(std::mem::take(&mut threshold[l]), width, device)?,
                    nan_right: Tensor::from_vec(std::mem::take(&mut nan_right[l]), width, device)?,
                    offsets: Tensor::from_vec(offsets, (1, trees), device)?,
                });
            }
            let leaf_offsets: Vec<u32> = (0..trees).map(|t| (t << depth) as u32).collect();
            let group_matrix = if forest.groups > 1 {
                let mut m = vec![0f32; trees * forest.groups];
                for (t, tree) in forest.trees.iter().enumerate() {
                    m[t * forest.groups + tree.group] = 1.0;
                }
                Some(Tensor::from_vec(m, (trees, forest.groups), device)?)
            } else {
                None
            };
            Ok(Self {
                device: device.clone(),
                levels,
                leaves: Tensor::from_vec(std::mem::take(&mut leaves), trees << depth, device)?,
                leaf_offsets: Tensor::from_vec(leaf_offsets, (1, trees), device)?,
                group_matrix,
                trees,
                groups: forest.groups,
                base_margin: forest.base_margin.clone(),
                rows: plain.rows.clone(),
            })
        };
        build().map_err(|e| format!("uploading the forest: {e}"))
    }

    /// The margins of every row of `batch` (`rows × groups`, row-major), base included.
    pub fn margins(&self, batch: &FeatureBatch) -> Result<Vec<f64>, ModelError> {
        let rows = batch.rows;
        let chunk = (MAX_PAIRS / self.trees.max(1)).max(1);
        let mut out = Vec::with_capacity(rows * self.groups);
        for start in (0..rows).step_by(chunk) {
            let len = chunk.min(rows - start);
            let host = self.rows.device_rows(batch, start, len);
            let x = Tensor::from_slice(&host, (len, self.rows.width()), &self.device)
                .map_err(candle)?;
            let m = self.chunk_margins(&x, len).map_err(candle)?;
            let m = m.to_vec2::<f32>().map_err(candle)?;
            for row in m {
                for (v, b) in row.iter().zip(&self.base_margin) {
                    out.push(f64::from(*v) + b);
                }
            }
        }
        Ok(out)
    }

    fn chunk_margins(&self, x: &Tensor, rows: usize) -> candle_core::Result<Tensor> {
        let mut pos = Tensor::zeros((rows, self.trees), DType::U32, &self.device)?;
        for level in &self.levels {
            let at = pos.broadcast_add(&level.offsets)?.flatten_all()?;
            let feature = level
                .feature
                .index_select(&at, 0)?
                .reshape((rows, self.trees))?;
            let threshold = level
                .threshold
                .index_select(&at, 0)?
                .reshape((rows, self.trees))?;
            let nan_right = level
                .nan_right
                .index_select(&at, 0)?
                .reshape((rows, self.trees))?;
            let v = x.gather(&feature, 1)?;
            let above = v.gt(&threshold)?.to_dtype(DType::U32)?;
            let nan = v.ne(&v)?.to_dtype(DType::U32)?;
            let right = (above + nan.mul(&nan_right)?)?;
            pos = ((&pos + &pos)? + right)?;
        }
        let at = pos.broadcast_add(&self.leaf_offsets)?.flatten_all()?;
        let values = self
            .leaves
            .index_select(&at, 0)?
            .reshape((rows, self.trees))?;
        match &self.group_matrix {
            Some(m) => values.matmul(m),
            None => values.sum_keepdim(1),
        }
    }
}

const UNSUPPORTED: &str = "the model has zero-as-missing splits on a feature that other splits read as it is, which the GPU evaluator does not run; run it with device = \"cpu\"";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::gbdt::forest::{Forest, Link, Tree};
    use std::sync::Arc;

    /// Zero-as-missing splits: zeros (and the ±1e-35 band) go where NaN goes, on the tensor path
    /// as in the reference walk.
    #[test]
    fn zero_as_missing_follows_the_reference() {
        let stump = |nan_left| Tree {
            nodes: vec![
                Node::Split {
                    split: Split::Numeric {
                        feature: 0,
                        threshold: 0.5,
                        nan_left,
                        zero_is_missing: true,
                    },
                    left: 1,
                    right: 2,
                },
                Node::Leaf(-1.0),
                Node::Leaf(1.0),
            ],
            group: 0,
            covers: Vec::new(),
        };
        let forest = Forest {
            features: 1,
            groups: 1,
            trees: vec![stump(false), stump(true)],
            base_margin: vec![0.0],
            link: Link::Identity,
            objective: "test".into(),
            feature_names: None,
        };
        let values = [0.0f32, 0.25, f32::NAN, 1e-36, -0.0, 1.0, 2e-35];
        let batch = arrow::record_batch::RecordBatch::try_from_iter([
            (
                "id",
                Arc::new(arrow::array::Int64Array::from_iter_values(0..7))
                    as arrow::array::ArrayRef,
            ),
            (
                "x",
                Arc::new(arrow::array::Float32Array::from(values.to_vec())) as _,
            ),
        ])
        .unwrap();
        let fb = crate::features::FeatureSpec {
            id_column: "id".into(),
            id_kind: crate::source::IdKind::Int,
            features: vec!["x".into()],
            on_null: crate::features::NullPolicy::Fill(f32::NAN),
            on_nan: crate::features::NanPolicy::Pass,
            preprocess: None,
            passed: Default::default(),
            types: Vec::new(),
        }
        .build(&crate::source::SourceBatch {
            object: Arc::from("t"),
            row_group: 0,
            first_row: 0,
            batch,
        })
        .unwrap();
        let got = TensorForest::build(&forest.plain(), &Device::Cpu)
            .unwrap()
            .margins(&fb)
            .unwrap();
        let want: Vec<f64> = values.iter().map(|&x| forest.margins(&[x])[0]).collect();
        assert_eq!(got, want);
        // zero and the band are missing: one stump sends them right, the other left
        assert_eq!(want[0], 0.0);
        assert_eq!(want[1], -2.0);
    }
}
