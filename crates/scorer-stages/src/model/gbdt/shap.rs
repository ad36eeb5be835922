//! Per-row SHAP contributions of a forest: exact path-dependent TreeSHAP (Lundberg, Erion and
//! Lee, "Consistent Individualized Feature Attribution for Tree Ensembles", algorithm 2), the
//! algorithm XGBoost's `pred_contribs` and LightGBM's `pred_contrib` implement. A row follows
//! the same split rules as scoring ([`Split::goes_left`]: missing values, default directions,
//! zero-as-missing and categorical splits alike); the other branch of each split is weighted by
//! the share of training data ([`Tree::covers`]) that went there. For each output group the
//! values are one per input feature, then the bias (the base margin plus each tree's expected
//! value), and they sum to the group's margin.

use super::error::ForestFileError;
use super::forest::{Forest, Node, Tree};

/// One feature on the path from the root, with the fractions of the "zero" (feature unknown)
/// and "one" (feature known) paths that pass, and the path's permutation weight.
#[derive(Debug, Clone, Copy, Default)]
struct PathElement {
    /// The input feature, or `usize::MAX` for the root's placeholder.
    feature: usize,
    zero_fraction: f64,
    one_fraction: f64,
    weight: f64,
}

impl Forest {
    /// Whether every tree records its nodes' covers, which TreeSHAP needs; the reason when not.
    pub fn check_covers(&self) -> Result<(), ForestFileError> {
        for (t, tree) in self.trees.iter().enumerate() {
            if tree.covers.len() != tree.nodes.len() {
                return Err(format!(
                    "tree {t} does not record how much training data reached its nodes \
                     (XGBoost's sum_hessian, LightGBM's internal_count and leaf_count), which \
                     contributions need"
                )
                .into());
            }
        }
        Ok(())
    }

    /// The SHAP contributions of one row: `groups × (features + 1)` values, group-major, each
    /// group's features in input order and then its bias. Needs covers ([`Forest::check_covers`]).
    pub fn contributions(&self, row: &[f32]) -> Vec<f64> {
        let width = self.features + 1;
        let mut phi = self.base_contributions();
        // Each level of the recursion copies its parent's path into the next segment of one
        // buffer: at most depth + 2 segments of at most depth + 2 elements.
        let depth = self.trees.iter().map(Tree::depth).max().unwrap_or(0) + 2;
        let mut arena = vec![PathElement::default(); depth * (depth + 1) / 2 + depth];
        for tree in &self.trees {
            let out = &mut phi[tree.group * width..(tree.group + 1) * width];
            out[self.features] += tree.expected_value();
            tree.shap(row, out, 0, &mut arena, 0, 1.0, 1.0, usize::MAX);
        }
        phi
    }

    /// Contributions before any tree's share: each group's bias holds its base margin.
    pub(super) fn base_contributions(&self) -> Vec<f64> {
        let width = self.features + 1;
        let mut phi = vec![0.0; self.groups * width];
        for (g, base) in self.base_margin.iter().enumerate() {
            phi[g * width + self.features] += base;
        }
        phi
    }
}

impl Tree {
    /// The tree's output averaged over the training data: each leaf weighted by its cover.
    pub(super) fn expected_value(&self) -> f64 {
        let root = self.covers[0];
        if root <= 0.0 {
            return 0.0;
        }
        self.nodes
            .iter()
            .zip(&self.covers)
            .filter_map(|(node, cover)| match node {
                Node::Leaf(v) => Some(v * cover / root),
                Node::Split { .. } => None,
            })
            .sum()
    }

    /// The recursion of algorithm 2 at `node`: `arena[..parent_len]` is the parent's path, which
    /// this call copies after it and extends with the split that led here.
    #[allow(clippy::too_many_arguments)]
    fn shap(
        &self,
        row: &[f32],
        phi: &mut [f64],
        node: usize,
        arena: &mut [PathElement],
        parent_len: usize,
        zero_fraction: f64,
        one_fraction: f64,
        feature: usize,
    ) {
        let (parent, rest) = arena.split_at_mut(parent_len);
        rest[..parent_len].copy_from_slice(parent);
        let mut len = parent_len;
        extend(rest, &mut len, zero_fraction, one_fraction, feature);
        match &self.nodes[node] {
            Node::Leaf(value) => {
                // Element 0 is the root's placeholder; every other one is a feature split on.
                for i in 1..len {
                    let w = unwound_sum(&rest[..len], i);
                    let e = rest[i];
                    phi[e.feature] += w * (e.one_fraction - e.zero_fraction) * value;
                }
            }
            Node::Split { split, left, right } => {
                let f = split.feature() as usize;
                let x = row.get(f).copied().unwrap_or(f32::NAN);
                let (hot, cold) = if split.goes_left(x) {
                    (*left, *right)
                } else {
                    (*right, *left)
                };
                let cover = self.covers[node];
                let (hot_zero, cold_zero) = if cover > 0.0 {
                    (self.covers[hot] / cover, self.covers[cold] / cover)
                } else {
                    (0.0, 0.0)
                };
                // A feature met again on this path: its earlier element is taken out and its
                // fractions carried into this split's.
                let (mut incoming_zero, mut incoming_one) = (1.0, 1.0);
                if let Some(k) = (1..len).find(|&k| rest[k].feature == f) {
                    incoming_zero = rest[k].zero_fraction;
                    incoming_one = rest[k].one_fraction;
                    unwind(rest, &mut len, k);
                }
                self.shap(
                    row,
                    phi,
                    hot,
                    rest,
                    len,
                    hot_zero * incoming_zero,
                    incoming_one,
                    f,
                );
                self.shap(row, phi, cold, rest, len, cold_zero * incoming_zero, 0.0, f);
            }
        }
    }
}

/// Appends a feature to `path[..len]` and updates the permutation weights (EXTEND).
fn extend(
    path: &mut [PathElement],
    len: &mut usize,
    zero_fraction: f64,
    one_fraction: f64,
    feature: usize,
) {
    let depth = *len;
    path[depth] = PathElement {
        feature,
        zero_fraction,
        one_fraction,
        weight: if depth == 0 { 1.0 } else { 0.0 },
    };
    *len += 1;
    let d = depth as f64;
    for i in (0..depth).rev() {
        let w = path[i].weight;
        path[i + 1].weight += one_fraction * w * (i as f64 + 1.0) / (d + 1.0);
        path[i].weight = zero_fraction * w * (d - i as f64) / (d + 1.0);
    }
}

/// Removes element `k` from `path[..len]`, undoing its EXTEND (UNWIND).
fn unwind(path: &mut [PathElement], len: &mut usize, k: usize) {
    let depth = *len - 1;
    let PathElement {
        zero_fraction,
        one_fraction,
        ..
    } = path[k];
    let d = depth as f64;
    let mut next_one = path[depth].weight;
    for i in (0..depth).rev() {
        if one_fraction != 0.0 {
            let w = path[i].weight;
            path[i].weight = next_one * (d + 1.0) / ((i as f64 + 1.0) * one_fraction);
            next_one = w - path[i].weight * zero_fraction * (d - i as f64) / (d + 1.0);
        } else {
            path[i].weight = path[i].weight * (d + 1.0) / (zero_fraction * (d - i as f64));
        }
    }
    for i in k..depth {
        path[i].feature = path[i + 1].feature;
        path[i].zero_fraction = path[i + 1].zero_fraction;
        path[i].one_fraction = path[i + 1].one_fraction;
    }
    *len -= 1;
}

/// The total permutation weight of `path` with element `k` unwound, without changing it.
fn unwound_sum(path: &[PathElement], k: usize) -> f64 {
    let depth = path.len() - 1;
    let PathElement {
        zero_fraction,
        one_fraction,
        ..
    } = path[k];
    let d = depth as f64;
    let mut next_one = path[depth].weight;
    let mut total = 0.0;
    for i in (0..depth).rev() {
        if one_fraction != 0.0 {
            let w = next_one * (d + 1.0) / ((i as f64 + 1.0) * one_fraction);
            total += w;
            next_one = path[i].weight - w * zero_fraction * (d - i as f64) / (d + 1.0);
        } else if zero_fraction != 0.0 {
            total += path[i].weight / zero_fraction / ((d - i as f64) / (d + 1.0));
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::super::forest::{Link, Split};
    use super::*;

    /// A depth-2 tree on features 0 and 1 with covers, and its exact Shapley values by
    /// enumerating coalitions (the definition TreeSHAP computes in polynomial time).
    #[test]
    fn contributions_are_the_shapley_values_and_sum_to_the_margin() {
        let split = |feature, threshold| Split::Numeric {
            feature,
            threshold,
            nan_left: true,
            zero_is_missing: false,
        };
        let tree = Tree {
            nodes: vec![
                Node::Split {
                    split: split(0, 0.5),
                    left: 1,
                    right: 2,
                },
                Node::Split {
                    split: split(1, 0.5),
                    left: 3,
                    right: 4,
                },
                Node::Leaf(3.0),
                Node::Leaf(1.0),
                Node::Leaf(-2.0),
            ],
            group: 0,
            covers: vec![10.0, 6.0, 4.0, 2.0, 4.0],
        };
        let forest = Forest {
            features: 2,
            groups: 1,
            trees: vec![tree.clone()],
            base_margin: vec![0.25],
            link: Link::Identity,
            objective: "test".into(),
            feature_names: None,
        };
        forest.check_covers().unwrap();
        // E[f | features in `known` fixed to the row's values], by the covers.
        let conditional = |row: &[f32], known: &[bool]| -> f64 {
            fn walk(t: &Tree, n: usize, row: &[f32], known: &[bool]) -> f64 {
                match &t.nodes[n] {
                    Node::Leaf(v) => *v,
                    Node::Split { split, left, right } => {
                        let f = split.feature() as usize;
                        if known[f] {
                            let next = if split.goes_left(row[f]) {
                                *left
                            } else {
                                *right
                            };
                            walk(t, next, row, known)
                        } else {
                            (t.covers[*left] * walk(t, *left, row, known)
                                + t.covers[*right] * walk(t, *right, row, known))
                                / t.covers[n]
                        }
                    }
                }
            }
            walk(&tree, 0, row, known)
        };
        for row in [[0.2f32, 0.9], [0.2, 0.1], [0.9, 0.1], [f32::NAN, 0.7]] {
            let phi = forest.contributions(&row);
            let none = conditional(&row, &[false, false]);
            let both = conditional(&row, &[true, true]);
            let only0 = conditional(&row, &[true, false]);
            let only1 = conditional(&row, &[false, true]);
            let want0 = 0.5 * (only0 - none) + 0.5 * (both - only1);
            let want1 = 0.5 * (only1 - none) + 0.5 * (both - only0);
            assert!((phi[0] - want0).abs() < 1e-12, "{row:?}: {phi:?}");
            assert!((phi[1] - want1).abs() < 1e-12, "{row:?}: {phi:?}");
            assert!((phi[2] - (0.25 + none)).abs() < 1e-12, "{row:?}: {phi:?}");
            let margin = forest.margins(&row)[0];
            assert!((phi.iter().sum::<f64>() - margin).abs() < 1e-12);
            let fast = super::super::shap_tables::ShapTables::build(&forest)
                .unwrap()
                .contributions(&forest, &row);
            // The tables' entries are f32.
            for (a, b) in phi.iter().zip(&fast) {
                assert!((a - b).abs() < 1e-7, "{row:?}: {phi:?} vs {fast:?}");
            }
        }
    }

    #[test]
    fn a_forest_without_covers_is_refused_with_the_reason() {
        let forest = Forest {
            features: 1,
            groups: 1,
            trees: vec![Tree {
                nodes: vec![Node::Leaf(1.0)],
                group: 0,
                covers: Vec::new(),
            }],
            base_margin: vec![0.0],
            link: Link::Identity,
            objective: "test".into(),
            feature_names: None,
        };
        let e = forest.check_covers().unwrap_err().to_string();
        assert!(e.contains("sum_hessian"), "{e}");
    }
}
