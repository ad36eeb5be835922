//! One in-memory form for every gradient-boosted forest, whatever file it came from: the XGBoost
//! and LightGBM readers translate their formats' split rules into [`Split`] (so each rule is
//! written down once, here), and the evaluators compile a [`Forest`] into their own layouts.

use super::error::ForestFileError;
use crate::features::FeatureBatch;

/// How a node sends a row down.
#[derive(Debug, Clone, PartialEq)]
pub enum Split {
    /// Left iff `x <= threshold` (both formats' rules are brought to this form in f32: XGBoost's
    /// `x < t` becomes `x <= prev_f32(t)`, LightGBM's f64 `x <= t` becomes `x <= the largest f32
    /// not above t`). NaN goes left iff `nan_left`. With `zero_is_missing` (LightGBM's missing type
    /// Zero) values within ±1e-35 go where NaN goes.
    Numeric {
        feature: u32,
        threshold: f32,
        nan_left: bool,
        zero_is_missing: bool,
    },
    /// A category test on the integer part of `x` (truncated toward zero, as C++'s cast does).
    Categorical {
        feature: u32,
        /// Bitset of the categories listed in the model (bit `c % 32` of word `c / 32`).
        set: Vec<u32>,
        /// Where a listed category goes: right in XGBoost (the listed ones are the split-off
        /// partition), left in LightGBM.
        listed_left: bool,
        /// Where NaN goes.
        nan_left: bool,
        /// Where a negative value, or a category beyond the bitset, goes.
        other_left: bool,
        /// Whether "negative" is judged after truncation (LightGBM: `int(-0.5)` is category 0)
        /// or before (XGBoost: -0.5 is invalid).
        truncate_first: bool,
    },
}

impl Split {
    /// The feature the split reads.
    pub fn feature(&self) -> u32 {
        match self {
            Self::Numeric { feature, .. } | Self::Categorical { feature, .. } => *feature,
        }
    }

    /// The split as a column of a plain forest ([`Forest::with_categorical_columns`]): 0 where a
    /// row with value `x` goes left, 1 where it goes right.
    pub fn column_value(&self, x: f32) -> f32 {
        if self.goes_left(x) { 0.0 } else { 1.0 }
    }

    /// Whether a row with value `x` goes left (the reference rule the fast evaluators must match).
    pub fn goes_left(&self, x: f32) -> bool {
        match self {
            Self::Numeric {
                threshold,
                nan_left,
                zero_is_missing,
                ..
            } => {
                if x.is_nan() || (*zero_is_missing && (-ZERO_BAND..=ZERO_BAND).contains(&x)) {
                    *nan_left
                } else {
                    x <= *threshold
                }
            }
            Self::Categorical {
                set,
                listed_left,
                nan_left,
                other_left,
                truncate_first,
                ..
            } => {
                if x.is_nan() {
                    return *nan_left;
                }
                if (if *truncate_first { x.trunc() } else { x }) < 0.0 {
                    return *other_left;
                }
                // x is finite or +inf here; the cast saturates, so +inf lands past any bitset
                let c = x as u64;
                let word = usize::try_from(c / 32).unwrap_or(usize::MAX);
                match set.get(word) {
                    Some(bits) if bits & (1u32 << (c % 32)) != 0 => *listed_left,
                    Some(_) => !*listed_left,
                    None => *other_left,
                }
            }
        }
    }
}

/// A node: a split with its two children (indices into the tree's nodes), or a leaf.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Split {
        split: Split,
        left: usize,
        right: usize,
    },
    Leaf(f64),
}

/// One tree, root at index 0, adding its leaf value to one output group (a class).
#[derive(Debug, Clone, PartialEq)]
pub struct Tree {
    pub nodes: Vec<Node>,
    pub group: usize,
    /// How much training data reached each node (XGBoost's `sum_hessian`, LightGBM's
    /// `internal_count`/`leaf_count`), by node index: the weights TreeSHAP averages over
    /// (`super::shap`). Empty when the file does not record them.
    pub covers: Vec<f64>,
}

impl Tree {
    /// The leaf value a row of features reaches (the reference walk).
    pub fn leaf(&self, row: &[f32]) -> f64 {
        let mut i = 0;
        // a checked tree has no cycles, so this ends within `nodes.len()` steps
        for _ in 0..=self.nodes.len() {
            match &self.nodes[i] {
                Node::Leaf(v) => return *v,
                Node::Split { split, left, right } => {
                    let x = row
                        .get(split.feature() as usize)
                        .copied()
                        .unwrap_or(f32::NAN);
                    i = if split.goes_left(x) { *left } else { *right };
                }
            }
        }
        f64::NAN
    }

    /// Longest root-to-leaf path, in splits.
    pub fn depth(&self) -> usize {
        let mut deepest = 0;
        let mut stack = vec![(0usize, 0usize)];
        while let Some((i, d)) = stack.pop() {
            match &self.nodes[i] {
                Node::Leaf(_) => deepest = deepest.max(d),
                Node::Split { left, right, .. } => {
                    stack.push((*left, d + 1));
                    stack.push((*right, d + 1));
                }
            }
        }
        deepest
    }

    /// Checks that the nodes form one tree from the root: children in range, every node reached
    /// exactly once, every feature below `features`.
    pub fn check(&self, features: usize) -> Result<(), ForestFileError> {
        if self.nodes.is_empty() {
            return Err("a tree has no nodes".into());
        }
        let mut seen = vec![false; self.nodes.len()];
        let mut stack = vec![0usize];
        while let Some(i) = stack.pop() {
            let Some(node) = self.nodes.get(i) else {
                return Err(format!("a child index {i} is out of range").into());
            };
            if std::mem::replace(&mut seen[i], true) {
                return Err(format!("node {i} is reached twice").into());
            }
            if let Node::Split { split, left, right } = node {
                if split.feature() as usize >= features {
                    return Err(format!(
                        "node {i} splits on feature {} but the model has {features} features",
                        split.feature()
                    )
                    .into());
                }
                stack.push(*left);
                stack.push(*right);
            }
        }
        if let Some(i) = seen.iter().position(|s| !s) {
            return Err(format!("node {i} is not reachable from the root").into());
        }
        Ok(())
    }
}

/// The function from summed margins to the library's `predict` output.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Link {
    /// Regression: the margin is the prediction.
    Identity,
    /// Binary classification: `1 / (1 + exp(-scale · margin))`.
    Sigmoid { scale: f64 },
    /// Multiclass: softmax across the groups.
    Softmax,
    /// Poisson, gamma, tweedie: `exp(margin)`.
    Exp,
}

/// A whole model: trees, where each adds, the starting margin and the output link.
#[derive(Debug, Clone, PartialEq)]
pub struct Forest {
    pub features: usize,
    /// Output groups: 1, or the number of classes.
    pub groups: usize,
    pub trees: Vec<Tree>,
    /// Margin each group starts from (XGBoost's base_score through the inverse link; 0 for
    /// LightGBM, whose init score is inside the first trees).
    pub base_margin: Vec<f64>,
    pub link: Link,
    /// The objective as the file names it (for messages and `scorer models list`).
    pub objective: String,
    /// Feature names the file records, when it records real ones.
    pub feature_names: Option<Vec<String>>,
}

impl Forest {
    /// Checks every tree and the group bookkeeping.
    pub fn check(&self) -> Result<(), ForestFileError> {
        if self.groups == 0 {
            return Err("the model has no output groups".into());
        }
        if self.base_margin.len() != self.groups {
            return Err(format!(
                "{} base margins for {} output groups",
                self.base_margin.len(),
                self.groups
            )
            .into());
        }
        if self.link == Link::Softmax && self.groups < 2 {
            return Err("a softmax objective needs at least 2 classes".into());
        }
        for (t, tree) in self.trees.iter().enumerate() {
            if tree.group >= self.groups {
                return Err(
                    format!("tree {t} adds to class {} of {}", tree.group, self.groups).into(),
                );
            }
            tree.check(self.features)
                .map_err(|e| e.in_tree(format!("tree {t}")))?;
        }
        Ok(())
    }

    /// The summed margins of one row, base included (the reference the evaluators are tested
    /// against).
    pub fn margins(&self, row: &[f32]) -> Vec<f64> {
        let mut m = self.base_margin.clone();
        for t in &self.trees {
            m[t.group] += t.leaf(row);
        }
        m
    }

    /// Features whose every split is numeric with zero-as-missing (LightGBM's
    /// `zero_as_missing`). A categorical or plain numeric split on the same feature reads the
    /// value as it is, so such a feature is not listed.
    pub fn zero_as_missing_features(&self) -> Vec<usize> {
        let mut zero = vec![false; self.features];
        let mut other = vec![false; self.features];
        for tree in &self.trees {
            for node in &tree.nodes {
                if let Node::Split { split, .. } = node {
                    let f = split.feature() as usize;
                    match split {
                        Split::Numeric {
                            zero_is_missing: true,
                            ..
                        } => zero[f] = true,
                        _ => other[f] = true,
                    }
                }
            }
        }
        (0..self.features)
            .filter(|&f| zero[f] && !other[f])
            .collect()
    }

    /// The forest for inputs whose `features` went through [`zero_to_nan`]: their zero-as-missing
    /// splits become plain numeric ones (NaN goes where zero went), which the fast layouts run.
    pub fn with_zero_as_nan(&self, features: &[usize]) -> Forest {
        let mut forest = self.clone();
        for tree in &mut forest.trees {
            for node in &mut tree.nodes {
                if let Node::Split {
                    split:
                        Split::Numeric {
                            feature,
                            zero_is_missing,
                            ..
                        },
                    ..
                } = node
                    && *zero_is_missing
                    && features.contains(&(*feature as usize))
                {
                    *zero_is_missing = false;
                }
            }
        }
        forest
    }

    /// The forest with every categorical split replaced by a numeric split on a new column
    /// (`features + k` for the k-th distinct split) that holds 0 where the split sends a row left
    /// and 1 where it sends it right: the caller computes those columns per row
    /// ([`Split::column_value`], [`RowPrep`]), and the fast layouts then run every tree. Returns the forest and the
    /// distinct splits, in column order.
    pub fn with_categorical_columns(&self) -> (Forest, Vec<Split>) {
        let mut columns: Vec<Split> = Vec::new();
        let mut forest = self.clone();
        for tree in &mut forest.trees {
            for node in &mut tree.nodes {
                if let Node::Split { split, .. } = node
                    && matches!(split, Split::Categorical { .. })
                {
                    let k = match columns.iter().position(|c| c == split) {
                        Some(k) => k,
                        None => {
                            columns.push(split.clone());
                            columns.len() - 1
                        }
                    };
                    *split = Split::Numeric {
                        feature: (self.features + k) as u32,
                        threshold: 0.5,
                        nan_left: true,
                        zero_is_missing: false,
                    };
                }
            }
        }
        forest.features += columns.len();
        (forest, columns)
    }

    /// Deepest tree, in splits.
    pub fn max_depth(&self) -> usize {
        self.trees.iter().map(Tree::depth).max().unwrap_or(0)
    }
}

/// LightGBM's zero band (`kZeroThreshold`): values within ±this count as zero.
pub const ZERO_BAND: f32 = 1e-35;

/// Values in the zero band become NaN (for a zero-as-missing feature; see
/// [`Forest::with_zero_as_nan`]).
pub fn zero_to_nan(values: &mut [f32]) {
    for x in values {
        if (-ZERO_BAND..=ZERO_BAND).contains(x) {
            *x = f32::NAN;
        }
    }
}

/// A forest every split of which the fast evaluators run (numeric, no zero band), with what the
/// rows need first ([`RowPrep`]).
#[derive(Debug, Clone)]
pub struct PlainForest {
    /// Its `features` counts the appended categorical columns.
    pub forest: Forest,
    pub rows: RowPrep,
}

/// What a batch's rows go through before a plain forest reads them: zero-as-missing features'
/// zero band turned into NaN, then one 0/1 column per categorical split appended after the
/// features. The evaluators keep this, not the forest it came from.
#[derive(Debug, Clone)]
pub struct RowPrep {
    /// The input's feature count (the columns a batch has).
    pub inputs: usize,
    pub zero_as_nan: Vec<usize>,
    pub categorical: Vec<Split>,
}

impl Forest {
    /// The plain form of the forest (see [`PlainForest`]).
    pub fn plain(&self) -> PlainForest {
        let zero_as_nan = self.zero_as_missing_features();
        let (forest, categorical) = self
            .with_zero_as_nan(&zero_as_nan)
            .with_categorical_columns();
        PlainForest {
            forest,
            rows: RowPrep {
                inputs: self.features,
                zero_as_nan,
                categorical,
            },
        }
    }
}

impl RowPrep {
    /// Columns a prepared row has: the features, then the categorical columns.
    pub fn width(&self) -> usize {
        self.inputs + self.categorical.len()
    }

    /// Rows `start..start + len` of `batch` row-major, prepared; `len × width()` values. Built in
    /// blocks of rows on the rayon pool: on a GPU host this copy, not the kernel, is the bound.
    pub fn device_rows(&self, batch: &FeatureBatch, start: usize, len: usize) -> Vec<f32> {
        use rayon::prelude::*;
        const BLOCK: usize = 4096;
        let width = self.width().max(1);
        let inputs = self.inputs;
        let all: Vec<usize> = (0..inputs).collect();
        let mut out = vec![0f32; len * width];
        out.par_chunks_mut(BLOCK * width)
            .enumerate()
            .for_each(|(b, block)| {
                let rows = block.len() / width;
                let first = start + b * BLOCK;
                if width == inputs {
                    batch.write_row_major(&all, first, rows, block);
                } else {
                    let mut raw = vec![0f32; rows * inputs];
                    batch.write_row_major(&all, first, rows, &mut raw);
                    for (src, dst) in raw
                        .chunks_exact(inputs.max(1))
                        .zip(block.chunks_exact_mut(width))
                    {
                        dst[..inputs].copy_from_slice(src);
                        for (k, split) in self.categorical.iter().enumerate() {
                            dst[inputs + k] = split.column_value(src[split.feature() as usize]);
                        }
                    }
                }
                if !self.zero_as_nan.is_empty() {
                    for row in block.chunks_exact_mut(width) {
                        for &f in &self.zero_as_nan {
                            zero_to_nan(&mut row[f..=f]);
                        }
                    }
                }
            });
        out
    }

    /// The same preparation for a feature-major tile (`tile[j * stride + r]`, `len` rows, room
    /// for `width()` columns), whose feature columns are already written.
    pub fn prepare_tile(&self, tile: &mut [f32], stride: usize, len: usize) {
        for &f in &self.zero_as_nan {
            zero_to_nan(&mut tile[f * stride..f * stride + len]);
        }
        if self.categorical.is_empty() {
            return;
        }
        let (features, extra) = tile.split_at_mut(self.inputs * stride);
        for (split, col) in self.categorical.iter().zip(extra.chunks_exact_mut(stride)) {
            let f = split.feature() as usize;
            for (o, &x) in col[..len]
                .iter_mut()
                .zip(&features[f * stride..f * stride + len])
            {
                *o = split.column_value(x);
            }
        }
    }
}

/// Margins → outputs, in place: `groups` values per row.
pub fn apply_link(link: Link, groups: usize, values: &mut [f64]) {
    match link {
        Link::Identity => {}
        Link::Sigmoid { scale } => {
            for v in values.iter_mut() {
                *v = 1.0 / (1.0 + (-scale * *v).exp());
            }
        }
        Link::Exp => {
            for v in values.iter_mut() {
                *v = v.exp();
            }
        }
        Link::Softmax => {
            for row in values.chunks_exact_mut(groups.max(1)) {
                let max = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let mut sum = 0.0;
                for v in row.iter_mut() {
                    *v = (*v - max).exp();
                    sum += *v;
                }
                for v in row.iter_mut() {
                    *v /= sum;
                }
            }
        }
    }
}

/// The largest f32 that is not above `t`: LightGBM compares `f64(x) <= t`, which for an f32 `x`
/// is `x <= f32_at_or_below(t)`.
pub fn f32_at_or_below(t: f64) -> f32 {
    let c = t as f32;
    if f64::from(c) > t { c.next_down() } else { c }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f32_rounding_keeps_the_comparison() {
        for t in [0.1f64, 0.13580000400543216, -2.5e-8, 1e300, -1e300, 3.0] {
            let c = f32_at_or_below(t);
            for x in [c.next_down(), c, c.next_up()] {
                assert_eq!(f64::from(x) <= t, x <= c, "t={t} x={x}");
            }
        }
    }

    #[test]
    fn categorical_rules() {
        let s = Split::Categorical {
            feature: 0,
            set: vec![0b1010],
            listed_left: false,
            nan_left: true,
            other_left: true,
            truncate_first: false,
        };
        assert!(!s.goes_left(1.0));
        assert!(!s.goes_left(3.7), "3.7 is category 3");
        assert!(s.goes_left(2.0));
        assert!(s.goes_left(f32::NAN));
        assert!(s.goes_left(-0.5), "negative is invalid: other");
        assert!(s.goes_left(40.0), "beyond the bitset: other");
        assert!(s.goes_left(f32::INFINITY));
        let lgb = Split::Categorical {
            feature: 0,
            set: vec![0b1],
            listed_left: true,
            nan_left: false,
            other_left: false,
            truncate_first: true,
        };
        assert!(lgb.goes_left(-0.5), "LightGBM truncates -0.5 to category 0");
        assert!(!lgb.goes_left(-1.0));
    }
}
