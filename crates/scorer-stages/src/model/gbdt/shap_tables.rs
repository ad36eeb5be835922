//! A forest's SHAP contributions through per-leaf tables: the values of the path-dependent
//! recursion ([`super::shap`]) in O(leaves × depth) per tree and row instead of O(leaves ×
//! depth²), computed for a block of rows at a time so each leaf's table is read from the cache
//! for every row of the block.
//!
//! A leaf's share of the path-dependent SHAP values is the Shapley value of the product game
//! `v(S) = value × Π_{m in S} o_m × Π_{m on the path, not in S} z_m` over its path's distinct
//! features, where `z_m` is the share of training data that follows the path at `m`'s splits
//! and `o_m` is 1 when the row does. With `A` the features the row follows and `Z` the product
//! of `z` outside `A`, feature `j` gets `value × (1 − z_j) × Z × R(A \ {j})` when `j` is in `A`,
//! else `−value × Z × R(A)`, where `R(B) = Σ_{S ⊆ B} w(|S|) Π_{m in B \ S} z_m` with the Shapley
//! weights `w(s) = s! (k − s − 1)! / k!` (`k` distinct features) depends on the row only through
//! `A`. Each leaf keeps `T(A) = value × Z(A) × R(A)` for every subset `A` of its features (f32;
//! the sums are f64): since `Z(A \ {j}) = Z(A) × z_j`, feature `j` gets `(1 − z_j) / z_j ×
//! T(A \ {j})` when `j` is in `A` and `−T(A)` when not, one table read each. A leaf where some
//! `z_j` is 0 (a child no training row reached), or whose `z`s multiply to less than 1e-20, keeps
//! `value × R` instead and multiplies `Z` in per row.
//!
//! Per block of rows and per tree: one pass over the nodes in preorder gives, for every row,
//! the set `A` of each leaf (a child keeps its parent's set, less the parent's feature when the
//! row goes the other way); then leaf by leaf and feature by feature, a run over the block's
//! rows adds into that feature's contributions, which the block keeps feature-major.

use super::cpu::Kernel;
use super::forest::{Forest, Node, Split, Tree, ZERO_BAND};

/// The forest's trees as per-leaf tables.
#[derive(Debug)]
pub struct ShapTables {
    trees: Vec<TreeTables>,
    /// Per output group: the base margin plus the expected value of each of its trees, the
    /// bias term every row gets.
    bias: Vec<f64>,
    /// The most nodes of one tree.
    max_nodes: usize,
    /// The vector instructions the row loops use.
    kernel: Kernel,
}

/// Most table entries (f32) all leaves may take together: 256 MiB, which holds a 500-tree
/// depth-8 forest (at most 256 entries for each of 256 leaves a tree: 128 MiB). Forests beyond
/// use the recursion, which needs no tables but is several times slower.
pub const TABLE_BUDGET: usize = 1 << 26;

/// Smallest product of a leaf's `z` for which it keeps `T` (else `value × R`, and `Z` per row):
/// far above f32's smallest normal number, so the tables keep f32's relative precision.
const MIN_SCALED_Z: f64 = 1e-20;

/// Rows computed together: their per-leaf sets and contributions stay in the core's cache.
pub const BLOCK_ROWS: usize = 128;

#[derive(Debug)]
struct TreeTables {
    /// The nodes in preorder, a parent before its children.
    order: Vec<Visit>,
    leaves: Vec<LeafTable>,
    /// Each leaf's position in `order`.
    leaf_at: Vec<u32>,
}

/// One node in preorder.
#[derive(Debug, Clone)]
struct Visit {
    /// What the node tests, or that it is a leaf.
    test: Test,
    /// Its parent's position in the preorder (the root's is itself, 0).
    parent: u32,
    /// Whether it is its parent's left child.
    left: bool,
    /// For a split: the bit of its feature among the distinct features on the path from the
    /// root (numbered in order of first appearance, the same for every leaf below).
    bit: u8,
}

/// A node's test, the numeric kind unpacked for the row loops.
#[derive(Debug, Clone)]
enum Test {
    Leaf,
    /// As [`Split::Numeric`].
    Numeric {
        feature: u32,
        threshold: f32,
        nan_left: bool,
        zero_is_missing: bool,
    },
    /// A categorical split, through [`Split::goes_left`].
    Other(Split),
}

#[derive(Debug)]
struct LeafTable {
    /// Where each distinct feature of the path (bit `m`) adds up: its position in the row's
    /// contributions (`group × (features + 1) + feature`).
    outputs: Vec<u32>,
    /// `z_m`: the share of training data that follows the path at feature `m`'s splits.
    zero: Vec<f64>,
    /// Per subset `A` of the features (bit `m` for feature `m`): `T(A) = value × Z(A) × R(A)`,
    /// or, when some `z_m` is 0 (`scaled` false), `value × R(A)`.
    table: Vec<f32>,
    /// Whether `table` holds `T`.
    scaled: bool,
}

impl ShapTables {
    /// The tables of `forest` (which has covers), or `None` when they would pass
    /// [`TABLE_BUDGET`] (or a path splits on more than 20 distinct features).
    pub fn build(forest: &Forest) -> Option<Self> {
        let width = forest.features + 1;
        let mut entries = 0usize;
        let mut trees = Vec::with_capacity(forest.trees.len());
        for tree in &forest.trees {
            let t = tree_tables(tree, width, &mut entries)?;
            trees.push(t);
        }
        let mut bias: Vec<f64> = forest.base_margin.clone();
        bias.resize(forest.groups, 0.0);
        for tree in &forest.trees {
            if let Some(b) = bias.get_mut(tree.group) {
                *b += tree.expected_value();
            }
        }
        Some(Self {
            max_nodes: trees.iter().map(|t| t.order.len()).max().unwrap_or(0),
            trees,
            bias,
            kernel: Kernel::detect(),
        })
    }

    /// The same tables run with `kernel` (one the CPU has; see [`Kernel::available`]), to test
    /// the kernels against each other.
    pub fn with_kernel(mut self, kernel: Kernel) -> Self {
        if kernel.available() {
            self.kernel = kernel;
        }
        self
    }

    /// The same values as [`Forest::contributions`] for one row of `forest` (the one the tables
    /// were built from).
    pub fn contributions(&self, forest: &Forest, row: &[f32]) -> Vec<f64> {
        let width = (forest.features + 1) * forest.groups;
        let mut out = vec![0f64; width];
        let mut scratch = Scratch::default();
        self.block(forest, row, 1, &mut scratch, |_, j, v| out[j] = v);
        out
    }

    /// The contributions of `rows` rows (`x` row-major, `forest.features` values a row) into
    /// `out` (row-major, `(features + 1) × groups` f32 values a row), a block at a time.
    pub fn contributions_into(&self, forest: &Forest, x: &[f32], rows: usize, out: &mut [f32]) {
        let features = forest.features;
        let width = (features + 1) * forest.groups;
        let mut scratch = Scratch::default();
        let mut start = 0;
        while start < rows {
            let n = BLOCK_ROWS.min(rows - start);
            let block = &x[start * features..(start + n) * features];
            let dst = &mut out[start * width..(start + n) * width];
            self.block(forest, block, n, &mut scratch, |r, j, v| {
                dst[r * width + j] = v as f32;
            });
            start += n;
        }
    }

    /// Computes `rows` rows of `x` together and hands each value to `put(row, position, value)`.
    fn block(
        &self,
        forest: &Forest,
        x: &[f32],
        rows: usize,
        scratch: &mut Scratch,
        mut put: impl FnMut(usize, usize, f64),
    ) {
        let features = forest.features;
        let width = (features + 1) * forest.groups;
        scratch.reset(width * rows, self.max_nodes * rows, features * rows);
        let Scratch {
            phi,
            sets,
            went_left,
            columns,
        } = scratch;
        // The block's rows feature-major, so a split reads its feature along memory.
        for (r, row) in x.chunks_exact(features.max(1)).take(rows).enumerate() {
            for (f, v) in row.iter().enumerate() {
                columns[f * rows + r] = *v;
            }
        }
        for tables in &self.trees {
            match self.kernel {
                #[cfg(target_arch = "x86_64")]
                // SAFETY: the kernel was detected (`Kernel::detect`): the CPU has AVX2.
                Kernel::Avx2 | Kernel::Avx512 => unsafe {
                    node_sets_avx2(&tables.order, columns, rows, sets, went_left)
                },
                _ => node_sets(&tables.order, columns, rows, sets, went_left),
            }
            for (leaf, &at) in tables.leaves.iter().zip(&tables.leaf_at) {
                let at = at as usize * rows;
                leaf.add(&sets[at..at + rows], phi, rows, self.kernel);
            }
        }
        for j in 0..width {
            let bias = if (j + 1) % (features + 1) == 0 {
                self.bias.get(j / (features + 1)).copied().unwrap_or(0.0)
            } else {
                0.0
            };
            for r in 0..rows {
                put(r, j, phi[j * rows + r] + bias);
            }
        }
    }
}

/// [`node_sets`] compiled for AVX2 (its row loops become 8-wide).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn node_sets_avx2(
    order: &[Visit],
    columns: &[f32],
    rows: usize,
    sets: &mut [u32],
    went_left: &mut [u32],
) {
    node_sets(order, columns, rows, sets, went_left);
}

/// Every row's set `A` at every node of a tree (`sets[node * rows + row]`, nodes by preorder
/// position), node by node along the block's rows: a child keeps its parent's set, less the
/// parent's feature where the row went the other way there. `went_left` is all ones where a row
/// goes left at a split, 0 where it goes right.
#[inline(always)]
fn node_sets(
    order: &[Visit],
    columns: &[f32],
    rows: usize,
    sets: &mut [u32],
    went_left: &mut [u32],
) {
    for (i, visit) in order.iter().enumerate() {
        let (before, rest) = sets.split_at_mut(i * rows);
        let Some(here) = rest.get_mut(..rows) else {
            return;
        };
        if i == 0 {
            here.fill(u32::MAX);
        } else {
            let p = visit.parent as usize;
            let (Some(parent), Some(went), Some(parent_visit)) = (
                before.get(p * rows..(p + 1) * rows),
                went_left.get(p * rows..(p + 1) * rows),
                order.get(p),
            ) else {
                return;
            };
            // Kept where the row went this way (went == want), else the parent's bit cleared.
            let clear = !(1u32 << parent_visit.bit);
            let want = if visit.left { u32::MAX } else { 0 };
            for ((h, &a), &w) in here.iter_mut().zip(parent).zip(went) {
                *h = a & (clear | !(w ^ want));
            }
        }
        let Some(went) = went_left.get_mut(i * rows..(i + 1) * rows) else {
            return;
        };
        match &visit.test {
            Test::Leaf => {}
            Test::Numeric {
                feature,
                threshold,
                nan_left,
                zero_is_missing,
            } => {
                let f = *feature as usize;
                let Some(column) = columns.get(f * rows..(f + 1) * rows) else {
                    return;
                };
                let (t, nan_left, zim) = (*threshold, *nan_left, *zero_is_missing);
                for (g, &x) in went.iter_mut().zip(column) {
                    // As `Split::goes_left`: NaN (and, with zero as missing, the zero band) go
                    // the missing values' way.
                    let missing = x.is_nan() | (zim & (x.abs() <= ZERO_BAND));
                    let left = if missing { nan_left } else { x <= t };
                    *g = u32::from(left).wrapping_neg();
                }
            }
            Test::Other(split) => {
                let f = split.feature() as usize;
                for (r, g) in went.iter_mut().enumerate() {
                    let x = columns.get(f * rows + r).copied().unwrap_or(f32::NAN);
                    *g = u32::from(split.goes_left(x)).wrapping_neg();
                }
            }
        }
    }
}

impl LeafTable {
    /// Adds this leaf's share for every row of a block (`sets[r]` is row `r`'s set) into the
    /// block's feature-major contributions: feature by feature, a run along the rows of that
    /// feature's contributions, one table read a row.
    #[inline]
    fn add(&self, sets: &[u32], phi: &mut [f64], rows: usize, kernel: Kernel) {
        let k = self.outputs.len();
        if k == 0 {
            return;
        }
        let full = (1u32 << k) - 1;
        // Exactly 2^k entries, and every index below is masked by `full`: no read is out of
        // range.
        let Some(table) = self.table.get(..=full as usize) else {
            return;
        };
        let sets = &sets[..rows.min(sets.len())];
        for (m, &position) in self.outputs.iter().enumerate() {
            let bit = 1u32 << m;
            let z = self.zero[m];
            let start = position as usize * rows;
            let Some(column) = phi.get_mut(start..start + sets.len()) else {
                return;
            };
            if !self.scaled {
                add_unscaled(table, &self.zero, sets, column, full, bit, 1.0 - z);
                continue;
            }
            // In A: (1 − z_m) / z_m × T(A \ m); outside: −T(A) (and A \ m = A).
            let inside = (1.0 - z) / z;
            match kernel {
                #[cfg(target_arch = "x86_64")]
                // SAFETY: the kernel was detected (`Kernel::detect`), so the CPU has AVX2 (every
                // AVX-512 CPU has it too); `table` holds `full + 1` entries and `sets` and
                // `column` are as long as each other (see `add_scaled_avx2`).
                Kernel::Avx2 | Kernel::Avx512 => unsafe {
                    add_scaled_avx2(table, sets, column, full, bit, inside)
                },
                _ => add_scaled(table, sets, column, full, bit, inside),
            }
        }
    }
}

/// One feature's run for a leaf that keeps `T`, a row at a time.
#[inline]
fn add_scaled(table: &[f32], sets: &[u32], column: &mut [f64], full: u32, bit: u32, inside: f64) {
    for (p, &set) in column.iter_mut().zip(sets) {
        let a = set & full;
        let coef = if a & bit != 0 { inside } else { -1.0 };
        *p += coef * f64::from(table[(a & !bit) as usize]);
    }
}

/// [`add_scaled`], eight rows a step: the eight table entries in one gather.
///
/// # Safety
/// The CPU has AVX2; `table.len() == full + 1`; `column.len() == sets.len()`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn add_scaled_avx2(
    table: &[f32],
    sets: &[u32],
    column: &mut [f64],
    full: u32,
    bit: u32,
    inside: f64,
) {
    use std::arch::x86_64::*;
    debug_assert_eq!(table.len(), full as usize + 1);
    debug_assert_eq!(column.len(), sets.len());
    let n = sets.len().min(column.len());
    let steps = n / 8;
    let v_full = _mm256_set1_epi32(full as i32);
    let v_bit = _mm256_set1_epi32(bit as i32);
    let v_not_bit = _mm256_set1_epi32(!bit as i32);
    let zero = _mm256_setzero_si256();
    let v_inside = _mm256_set1_pd(inside);
    let v_outside = _mm256_set1_pd(-1.0);
    for step in 0..steps {
        let r = step * 8;
        // SAFETY: r + 8 <= n, within `sets` and `column`; every gathered index is masked by
        // `full`, below `table.len()`.
        unsafe {
            let s = _mm256_loadu_si256(sets.as_ptr().add(r).cast());
            let a = _mm256_and_si256(s, v_full);
            let index = _mm256_and_si256(a, v_not_bit);
            let t = _mm256_i32gather_ps::<4>(table.as_ptr(), index);
            // All ones in the lanes whose row is outside A (bit m clear).
            let outside = _mm256_cmpeq_epi32(_mm256_and_si256(a, v_bit), zero);
            let out_lo =
                _mm256_castsi256_pd(_mm256_cvtepi32_epi64(_mm256_castsi256_si128(outside)));
            let out_hi = _mm256_castsi256_pd(_mm256_cvtepi32_epi64(_mm256_extracti128_si256::<1>(
                outside,
            )));
            let coef_lo = _mm256_blendv_pd(v_inside, v_outside, out_lo);
            let coef_hi = _mm256_blendv_pd(v_inside, v_outside, out_hi);
            let t_lo = _mm256_cvtps_pd(_mm256_castps256_ps128(t));
            let t_hi = _mm256_cvtps_pd(_mm256_extractf128_ps::<1>(t));
            let p = column.as_mut_ptr().add(r);
            _mm256_storeu_pd(p, _mm256_fmadd_pd(coef_lo, t_lo, _mm256_loadu_pd(p)));
            _mm256_storeu_pd(
                p.add(4),
                _mm256_fmadd_pd(coef_hi, t_hi, _mm256_loadu_pd(p.add(4))),
            );
        }
    }
    let done = steps * 8;
    add_scaled(
        table,
        &sets[done..n],
        &mut column[done..n],
        full,
        bit,
        inside,
    );
}

/// One feature's run for a leaf that keeps `value × R`: `Z(A)` multiplied in per row.
#[inline]
fn add_unscaled(
    table: &[f32],
    zero: &[f64],
    sets: &[u32],
    column: &mut [f64],
    full: u32,
    bit: u32,
    inside: f64,
) {
    for (p, &set) in column.iter_mut().zip(sets) {
        let a = set & full;
        let mut scale = 1.0;
        for (n, zn) in zero.iter().enumerate() {
            if a & (1 << n) == 0 {
                scale *= zn;
            }
        }
        let coef = if a & bit != 0 { inside } else { -1.0 };
        *p += scale * coef * f64::from(table[(a & !bit) as usize]);
    }
}

/// A block's working memory, reused from block to block.
#[derive(Debug, Default)]
struct Scratch {
    /// The block's contributions, position-major: `phi[position * rows + row]`.
    phi: Vec<f64>,
    /// Each node's set for each row, `sets[node * rows + row]` (nodes by preorder position).
    sets: Vec<u32>,
    /// At each split, all ones for the rows that go left: `went_left[node * rows + row]`.
    went_left: Vec<u32>,
    /// The block's rows feature-major: `columns[feature * rows + row]`.
    columns: Vec<f32>,
}

impl Scratch {
    fn reset(&mut self, phi: usize, nodes: usize, columns: usize) {
        self.phi.clear();
        self.phi.resize(phi, 0.0);
        self.sets.resize(nodes, 0);
        self.went_left.resize(nodes, 0);
        self.columns.resize(columns, 0.0);
    }
}

/// A node still to visit while building a tree's tables.
struct Pending {
    node: usize,
    /// Its parent's position in the preorder.
    parent: u32,
    left: bool,
    /// The distinct features on the path to it, and their `z` so far.
    features: Vec<usize>,
    zero: Vec<f64>,
}

/// One tree's preorder and leaf tables, counting their entries into `entries`; `None` past
/// [`TABLE_BUDGET`] or 20 distinct features on a path.
fn tree_tables(tree: &Tree, width: usize, entries: &mut usize) -> Option<TreeTables> {
    let mut order: Vec<Visit> = Vec::with_capacity(tree.nodes.len());
    let mut leaves = Vec::new();
    let mut leaf_at = Vec::new();
    let mut stack = vec![Pending {
        node: 0,
        parent: 0,
        left: true,
        features: Vec::new(),
        zero: Vec::new(),
    }];
    while let Some(Pending {
        node,
        parent,
        left,
        features,
        zero,
    }) = stack.pop()
    {
        let at = u32::try_from(order.len()).ok()?;
        match tree.nodes.get(node)? {
            Node::Leaf(value) => {
                let table = leaf_table(*value, tree.group * width, &features, zero)?;
                *entries = entries.checked_add(table.table.len())?;
                if *entries > TABLE_BUDGET {
                    return None;
                }
                leaf_at.push(at);
                order.push(Visit {
                    test: Test::Leaf,
                    parent,
                    left,
                    bit: 0,
                });
                leaves.push(table);
            }
            Node::Split {
                split,
                left: l,
                right: r,
            } => {
                let f = split.feature() as usize;
                let (bit, known) = match features.iter().position(|&g| g == f) {
                    Some(m) => (m, true),
                    None => (features.len(), false),
                };
                if bit >= 20 {
                    return None;
                }
                let test = match split {
                    Split::Numeric {
                        feature,
                        threshold,
                        nan_left,
                        zero_is_missing,
                    } => Test::Numeric {
                        feature: *feature,
                        threshold: *threshold,
                        nan_left: *nan_left,
                        zero_is_missing: *zero_is_missing,
                    },
                    Split::Categorical { .. } => Test::Other(split.clone()),
                };
                order.push(Visit {
                    test,
                    parent,
                    left,
                    bit: u8::try_from(bit).ok()?,
                });
                let cover = tree.covers.get(node).copied().unwrap_or(0.0);
                let share = |child: usize| {
                    if cover > 0.0 {
                        tree.covers.get(child).copied().unwrap_or(0.0) / cover
                    } else {
                        0.0
                    }
                };
                for (child, is_left) in [(*r, false), (*l, true)] {
                    let mut fs = features.clone();
                    let mut zs = zero.clone();
                    if known {
                        zs[bit] *= share(child);
                    } else {
                        fs.push(f);
                        zs.push(share(child));
                    }
                    stack.push(Pending {
                        node: child,
                        parent: at,
                        left: is_left,
                        features: fs,
                        zero: zs,
                    });
                }
            }
        }
    }
    Some(TreeTables {
        order,
        leaves,
        leaf_at,
    })
}

/// One leaf's table from its path's distinct features and their `z`.
fn leaf_table(value: f64, offset: usize, features: &[usize], zero: Vec<f64>) -> Option<LeafTable> {
    let k = features.len();
    // Shapley weights w(s) = s! (k - s - 1)! / k!, s < k.
    let weights: Vec<f64> = (0..k)
        .map(|s| {
            let mut w = 1.0 / k as f64;
            // 1 / (k choose s) / k = s! (k-1-s)! / k!
            for i in 0..s {
                w *= (i + 1) as f64 / (k - 1 - i) as f64;
            }
            w
        })
        .collect();
    // Elementary symmetric polynomials of the z's in each subset, by adding one feature at a
    // time: e(B) = e(B without its lowest feature) × (1 + z_low · x).
    let size = 1usize << k;
    let mut e = vec![0.0f64; size * (k + 1)];
    e[0] = 1.0;
    for mask in 1..size {
        let low = mask.trailing_zeros() as usize;
        let prev = mask & (mask - 1);
        for t in 0..=k {
            let from_prev = e[prev * (k + 1) + t];
            let shifted = if t > 0 {
                e[prev * (k + 1) + t - 1] * zero[low]
            } else {
                0.0
            };
            e[mask * (k + 1) + t] = from_prev + shifted;
        }
    }
    // T(A) stays a normal f32 (full relative precision) when Z(A) >= Z(all) does.
    let scaled = zero.iter().product::<f64>() >= MIN_SCALED_Z;
    let table = (0..size)
        .map(|mask| {
            let b = mask.count_ones() as usize;
            let r: f64 = (0..=b)
                .filter(|t| b - t < k)
                .map(|t| weights[b - t] * e[mask * (k + 1) + t])
                .sum();
            // Z(A): the z of every feature outside A.
            let outside: f64 = if scaled {
                (0..k)
                    .filter(|m| mask & (1 << m) == 0)
                    .map(|m| zero[m])
                    .product()
            } else {
                1.0
            };
            (value * outside * r) as f32
        })
        .collect();
    Some(LeafTable {
        outputs: features
            .iter()
            .map(|&f| u32::try_from(offset + f).ok())
            .collect::<Option<_>>()?,
        zero,
        table,
        scaled,
    })
}

#[cfg(test)]
mod tests {
    use super::super::forest::Link;
    use super::*;

    /// A tree with a child no training row reached (cover 0: a leaf kept as `value × R`) and a
    /// feature split on twice along a path, in blocks of rows: the recursion's values.
    #[test]
    fn zero_covers_and_repeated_features_give_the_recursions_values() {
        let split = |feature, threshold| Split::Numeric {
            feature,
            threshold,
            nan_left: false,
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
                Node::Split {
                    split: split(0, 0.8),
                    left: 5,
                    right: 6,
                },
                Node::Leaf(3.0),
                Node::Leaf(1.0),
                Node::Leaf(-2.0),
                Node::Leaf(0.5),
            ],
            group: 0,
            covers: vec![10.0, 6.0, 4.0, 6.0, 0.0, 3.0, 1.0],
        };
        let forest = Forest {
            features: 2,
            groups: 1,
            trees: vec![tree],
            base_margin: vec![0.1],
            link: Link::Identity,
            objective: "test".into(),
            feature_names: None,
        };
        let rows: Vec<[f32; 2]> = (0..37)
            .map(|i| {
                [
                    (i % 10) as f32 / 10.0,
                    if i % 7 == 0 {
                        f32::NAN
                    } else {
                        (i % 3) as f32 / 2.0
                    },
                ]
            })
            .collect();
        let x: Vec<f32> = rows.iter().flatten().copied().collect();
        for kernel in [Kernel::Scalar, Kernel::Avx2, Kernel::Avx512] {
            let tables = ShapTables::build(&forest).unwrap().with_kernel(kernel);
            assert!(
                tables.trees[0].leaves.iter().any(|l| !l.scaled),
                "the zero cover keeps a leaf unscaled"
            );
            let mut out = vec![0f32; rows.len() * 3];
            tables.contributions_into(&forest, &x, rows.len(), &mut out);
            for (r, row) in rows.iter().enumerate() {
                let want = forest.contributions(row);
                for (j, w) in want.iter().enumerate() {
                    let got = f64::from(out[r * 3 + j]);
                    assert!(
                        (got - w).abs() < 1e-6,
                        "{kernel:?} row {row:?}: {got} vs {w}"
                    );
                }
            }
        }
    }
}
