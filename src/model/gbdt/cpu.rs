//! The CPU evaluator: every tree compiled into a flat array of 16-byte nodes in breadth-first
//! order (a node's right child sits right after its left one), walked for a tile of rows at a
//! time, tree by tree.
//!
//! Why it is fast:
//! - one tree (a few KiB) stays in L1 while a whole tile of rows goes through it, and the tile's
//!   features (256 rows × the features, feature-major) stay in L1/L2;
//! - the walk has no branches: a leaf points to itself (threshold +∞), so every row takes exactly
//!   the tree's depth in steps, each step `left + (x > threshold | isnan(x) & nan_right)`; the
//!   rows of a tile are independent, so the core overlaps many rows' memory loads;
//! - rows are summed in f64, as LightGBM does (XGBoost sums in f32; f64 is the closer of the two to
//!   both);
//! - the scoring stage runs tiles of different row slices on different cores (rayon).
//!
//! Trees with categorical or zero-as-missing splits take the reference walk ([`Tree::leaf`]),
//! row by row.

use super::forest::{Forest, Node, Split, Tree};
use crate::features::FeatureBatch;

/// Rows walked through one tree before moving to the next: the tile's features (256 × 32 f32 =
/// 32 KiB for W1) and row cursors stay in L1/L2. Measured in benches/README.md.
pub const TILE_ROWS: usize = 256;

/// One compiled node. A leaf has `threshold = +∞`, `nan_right = 0` and `left` = itself.
#[derive(Debug, Clone, Copy)]
#[repr(C)]
struct FastNode {
    feature: u32,
    threshold: f32,
    left: u32,
    nan_right: u32,
}

#[derive(Debug)]
struct CompiledTree {
    nodes: Vec<FastNode>,
    /// Leaf value by node index (0 for split nodes).
    values: Vec<f64>,
    depth: usize,
    group: usize,
}

/// A forest compiled for the CPU.
#[derive(Debug)]
pub struct CpuForest {
    compiled: Vec<CompiledTree>,
    /// Trees that need the reference walk (categorical or zero-as-missing splits).
    general: Vec<Tree>,
    features: usize,
    groups: usize,
    base_margin: Vec<f64>,
}

impl CpuForest {
    /// Compiles every tree it can into the fast form.
    pub fn compile(forest: &Forest) -> Result<Self, String> {
        let mut compiled = Vec::new();
        let mut general = Vec::new();
        for (t, tree) in forest.trees.iter().enumerate() {
            match compile_tree(tree) {
                Some(c) => compiled.push(c.map_err(|e| format!("tree {t}: {e}"))?),
                None => general.push(tree.clone()),
            }
        }
        Ok(Self {
            compiled,
            general,
            features: forest.features,
            groups: forest.groups,
            base_margin: forest.base_margin.clone(),
        })
    }

    /// Trees that take the fast walk, of all.
    pub fn compiled_trees(&self) -> (usize, usize) {
        (
            self.compiled.len(),
            self.compiled.len() + self.general.len(),
        )
    }

    /// The margins of every row of `batch` (`rows × groups`, row-major), base included. Missing
    /// features must arrive as NaN (the model's input contract says so).
    pub fn margins(&self, batch: &FeatureBatch) -> Vec<f64> {
        let rows = batch.rows;
        let f = self.features;
        let g = self.groups;
        let mut out = Vec::with_capacity(rows * g);
        for _ in 0..rows {
            out.extend_from_slice(&self.base_margin);
        }
        let mut tile = vec![0f32; TILE_ROWS.min(rows) * f];
        let mut cursor = [0u32; TILE_ROWS];
        let mut row = vec![0f32; f];
        for start in (0..rows).step_by(TILE_ROWS) {
            let len = TILE_ROWS.min(rows - start);
            let tile = &mut tile[..len * f];
            batch.write_tile(start, len, tile);
            let acc = &mut out[start * g..(start + len) * g];
            let cursor = &mut cursor[..len];
            for tree in &self.compiled {
                walk(tree, tile, len, cursor);
                for (r, &c) in cursor.iter().enumerate() {
                    acc[r * g + tree.group] += tree.values[c as usize];
                }
            }
            if !self.general.is_empty() {
                for r in 0..len {
                    for (j, x) in row.iter_mut().enumerate() {
                        *x = tile[j * len + r];
                    }
                    for tree in &self.general {
                        acc[r * g + tree.group] += tree.leaf(&row);
                    }
                }
            }
        }
        out
    }
}

/// Moves every row of a tile from the root to its leaf in `tree.depth` steps.
#[inline]
fn walk(tree: &CompiledTree, tile: &[f32], len: usize, cursor: &mut [u32]) {
    cursor.fill(0);
    let nodes = tree.nodes.as_slice();
    for _ in 0..tree.depth {
        for (r, c) in cursor.iter_mut().enumerate() {
            let n = nodes[*c as usize];
            let x = tile[n.feature as usize * len + r];
            let right = u32::from(x > n.threshold) | (u32::from(x.is_nan()) & n.nan_right);
            *c = n.left + right;
        }
    }
}

/// The fast form of a tree, or `None` when it has a split the fast walk does not express.
fn compile_tree(tree: &Tree) -> Option<Result<CompiledTree, String>> {
    let simple = tree.nodes.iter().all(|n| match n {
        Node::Leaf(_) => true,
        Node::Split { split, .. } => matches!(
            split,
            Split::Numeric {
                zero_is_missing: false,
                ..
            }
        ),
    });
    if !simple {
        return None;
    }
    Some(relayout(tree))
}

/// Breadth-first relayout: children of a node become adjacent (left, right).
fn relayout(tree: &Tree) -> Result<CompiledTree, String> {
    let n = tree.nodes.len();
    if u32::try_from(n).is_err() {
        return Err("the tree has too many nodes".into());
    }
    let mut nodes: Vec<FastNode> = Vec::with_capacity(n);
    let mut values = Vec::with_capacity(n);
    // queue of (original index, new index); new indices are handed out in pairs
    let mut queue = std::collections::VecDeque::from([(0usize, 0u32)]);
    nodes.push(leaf_node(0));
    values.push(0.0);
    while let Some((orig, at)) = queue.pop_front() {
        match &tree.nodes[orig] {
            Node::Leaf(v) => {
                nodes[at as usize] = leaf_node(at);
                values[at as usize] = *v;
            }
            Node::Split { split, left, right } => {
                let Split::Numeric {
                    feature,
                    threshold,
                    nan_left,
                    ..
                } = split
                else {
                    return Err("a categorical split reached the fast form".into());
                };
                let l = u32::try_from(nodes.len()).map_err(|_| "too many nodes")?;
                nodes.push(leaf_node(l));
                nodes.push(leaf_node(l + 1));
                values.extend([0.0, 0.0]);
                nodes[at as usize] = FastNode {
                    feature: *feature,
                    threshold: *threshold,
                    left: l,
                    nan_right: u32::from(!nan_left),
                };
                queue.push_back((*left, l));
                queue.push_back((*right, l + 1));
            }
        }
    }
    Ok(CompiledTree {
        nodes,
        values,
        depth: tree.depth(),
        group: tree.group,
    })
}

fn leaf_node(at: u32) -> FastNode {
    FastNode {
        feature: 0,
        threshold: f32::INFINITY,
        left: at,
        nan_right: 0,
    }
}
