//! The CPU evaluator. Trees are walked for a tile of rows at a time, tree by tree, so one tree
//! stays in L1 while a whole tile goes through it and the tile's features (64 rows × the
//! features, feature-major) stay in L1; the scoring stage runs different row slices on different
//! cores (rayon). Rows are summed in f64, as LightGBM does (XGBoost sums in f32; f64 is the closer
//! of the two to both).
//!
//! Three layouts, chosen per tree:
//! - **perfect** (numeric splits, depth ≤ [`PERFECT_MAX_DEPTH`]): the tree padded to a perfect
//!   tree, node `i`'s children at `2i + 1` and `2i + 2`, so a node is 8 bytes (threshold; feature
//!   offset with the NaN direction in the top bit) and no child index is loaded. Every row takes
//!   exactly `depth` branch-free steps, `i = 2i + 1 + (x > t | isnan(x) & nan_right)`. With
//!   AVX-512, 16 rows take each step together: the top [`TOP_LEVELS`] levels test every row
//!   against all of the level's nodes with plain loads (no gathers), the next levels (up to 128
//!   nodes) are held in registers and looked up with permutes, so the only gather is the rows'
//!   feature values, and the leaf values are gathered into the sums. AVX2 does 8 rows with the
//!   same top levels and gathers below. All vectors of a tile take a step before any takes the
//!   next, so their loads overlap. Figures for each step in benches/README.md.
//! - **linked** (numeric splits, deeper trees): breadth-first nodes with an explicit left child
//!   (the right one follows it); a leaf points to itself, so the walk is still branch-free.
//! - **reference** (zero-as-missing splits on a feature other splits read as it is): [`Tree::leaf`],
//!   row by row.
//!
//! Before the walk, the tile gets what the plain form of the forest ([`Forest::plain`]) needs:
//! zero-as-missing features' zero band as NaN, and one 0/1 column per distinct categorical split,
//! so categorical trees take the fast layouts too.

use super::forest::{Forest, Node, PlainForest, RowPrep, Split, Tree};
use crate::features::FeatureBatch;

/// Rows walked through one tree before moving to the next: 64 rows of 32 features are 8 KiB, in
/// L1 beside the tree. Measured in benches/README.md (64 beat 128, 256 and 512).
pub const TILE_ROWS: usize = 64;
/// Levels tested whole, every row against every node of the level (1 + 2 + 4 + 8 nodes): cheaper
/// than a gather up to 8 nodes, dearer at 16 (benches/README.md).
pub const TOP_LEVELS: usize = 4;
/// Deepest tree laid out as a perfect tree (2^12 - 1 nodes of 8 bytes: 32 KiB).
pub const PERFECT_MAX_DEPTH: usize = 12;
const NAN_RIGHT: u32 = 1 << 31;

/// The instruction set the perfect-tree walk uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernel {
    Scalar,
    /// 8 rows per step (x86-64 with AVX2).
    Avx2,
    /// 16 rows per step (x86-64 with AVX-512F).
    Avx512,
}

impl Kernel {
    /// The fastest kernel this CPU runs, unless `SCORER_GBDT_KERNEL` (`scalar`, `avx2`,
    /// `avx512`) names another it can run (for benchmarks and for ruling a kernel out).
    pub fn detect() -> Self {
        let forced = match std::env::var("SCORER_GBDT_KERNEL").as_deref() {
            Ok("scalar") => Some(Self::Scalar),
            Ok("avx2") => Some(Self::Avx2),
            Ok("avx512") => Some(Self::Avx512),
            _ => None,
        };
        if let Some(k) = forced.filter(|k| k.available()) {
            return k;
        }
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                return Self::Avx512;
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                return Self::Avx2;
            }
        }
        Self::Scalar
    }

    /// Whether this CPU can run the kernel.
    pub fn available(self) -> bool {
        match self {
            Self::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            Self::Avx2 => std::arch::is_x86_feature_detected!("avx2"),
            #[cfg(target_arch = "x86_64")]
            Self::Avx512 => std::arch::is_x86_feature_detected!("avx512f"),
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }
}

/// A tree padded to a perfect tree of its depth.
#[derive(Debug)]
pub(super) struct PerfectTree {
    pub(super) depth: usize,
    /// `2^depth - 1` split thresholds (`+∞` on padding: always left).
    pub(super) threshold: Vec<f32>,
    /// Per split: the feature's offset (feature × stride), `| NAN_RIGHT`.
    pub(super) meta: Vec<u32>,
    /// `2^depth` leaf values.
    pub(super) leaves: Vec<f64>,
    pub(super) group: usize,
}

/// A deeper tree, breadth-first with explicit children.
#[derive(Debug)]
struct LinkedTree {
    /// Per node: feature × TILE_ROWS | NAN_RIGHT; threshold; left child (the right one is next).
    /// A leaf: threshold +∞, no NaN flag, left = itself.
    meta: Vec<u32>,
    threshold: Vec<f32>,
    left: Vec<u32>,
    values: Vec<f64>,
    depth: usize,
    group: usize,
}

/// A forest compiled for the CPU.
#[derive(Debug)]
pub struct CpuForest {
    perfect: Vec<PerfectTree>,
    linked: Vec<LinkedTree>,
    reference: Vec<Tree>,
    groups: usize,
    base_margin: Vec<f64>,
    kernel: Kernel,
    /// What each tile goes through before the walk: zero bands as NaN, categorical splits as 0/1
    /// columns after the features (so their trees take the fast layouts too).
    rows: RowPrep,
}

impl CpuForest {
    /// Compiles the forest for the fastest kernel this CPU runs.
    pub fn compile(forest: &Forest) -> Result<Self, String> {
        Self::compile_for(forest, Kernel::detect())
    }

    /// Compiles the forest for `kernel` (the tests run every kernel the CPU has).
    pub fn compile_for(forest: &Forest, kernel: Kernel) -> Result<Self, String> {
        if !kernel.available() {
            return Err(format!("this CPU cannot run the {kernel:?} kernel"));
        }
        let PlainForest {
            forest: plain,
            rows,
        } = forest.plain();
        if plain
            .features
            .checked_mul(TILE_ROWS)
            .is_none_or(|n| n >= NAN_RIGHT as usize)
        {
            return Err(format!(
                "{} features and categorical splits are too many",
                plain.features
            ));
        }
        let mut perfect = Vec::new();
        let mut linked = Vec::new();
        let mut reference = Vec::new();
        for (t, tree) in plain.trees.into_iter().enumerate() {
            if !numeric_only(&tree) {
                reference.push(tree);
                continue;
            }
            let depth = tree.depth();
            if depth <= PERFECT_MAX_DEPTH {
                perfect.push(perfect_tree(&tree, depth, TILE_ROWS as u32));
            } else {
                linked.push(linked_tree(&tree, depth).map_err(|e| format!("tree {t}: {e}"))?);
            }
        }
        Ok(Self {
            perfect,
            linked,
            reference,
            groups: forest.groups,
            base_margin: forest.base_margin.clone(),
            kernel,
            rows,
        })
    }

    /// The kernel the perfect trees run with.
    pub fn kernel(&self) -> Kernel {
        self.kernel
    }

    /// How many trees take each layout: (perfect, linked, reference).
    pub fn layouts(&self) -> (usize, usize, usize) {
        (self.perfect.len(), self.linked.len(), self.reference.len())
    }

    /// The margins of every row of `batch` (`rows × groups`, row-major), base included. Missing
    /// features must arrive as NaN (the model's input contract says so).
    pub fn margins(&self, batch: &FeatureBatch) -> Vec<f64> {
        let rows = batch.rows;
        let g = self.groups;
        let mut out = Vec::with_capacity(rows * g);
        for _ in 0..rows {
            out.extend_from_slice(&self.base_margin);
        }
        // full-size tile: rows past a short last tile hold stale values, walked harmlessly
        let columns = self.rows.width();
        let mut tile = vec![0f32; TILE_ROWS * columns];
        let mut cursor = [0u32; TILE_ROWS];
        let mut row = vec![0f32; columns];
        for start in (0..rows).step_by(TILE_ROWS) {
            let len = TILE_ROWS.min(rows - start);
            batch.write_tile_strided(start, len, TILE_ROWS, &mut tile);
            self.rows.prepare_tile(&mut tile, TILE_ROWS, len);
            let acc = &mut out[start * g..(start + len) * g];
            for tree in &self.perfect {
                self.walk_perfect(tree, &tile, &mut cursor);
                let first_leaf = (1u32 << tree.depth) - 1;
                let mut done = 0;
                #[cfg(target_arch = "x86_64")]
                if g == 1 && self.kernel == Kernel::Avx512 {
                    // SAFETY: AVX-512F was checked at compile; after the walk every cursor is a
                    // bottom slot, first_leaf + k with k < 2^depth = leaves.len().
                    done = unsafe {
                        simd::add_leaves_avx512(&tree.leaves, first_leaf, &cursor[..len], acc)
                    };
                }
                for (r, &c) in cursor[..len].iter().enumerate().skip(done) {
                    acc[r * g + tree.group] += tree.leaves[(c - first_leaf) as usize];
                }
            }
            for tree in &self.linked {
                walk_linked(tree, &tile, &mut cursor);
                for (r, &c) in cursor[..len].iter().enumerate() {
                    acc[r * g + tree.group] += tree.values[c as usize];
                }
            }
            if !self.reference.is_empty() {
                for r in 0..len {
                    for (j, x) in row.iter_mut().enumerate() {
                        *x = tile[j * TILE_ROWS + r];
                    }
                    for tree in &self.reference {
                        acc[r * g + tree.group] += tree.leaf(&row);
                    }
                }
            }
        }
        out
    }

    fn walk_perfect(&self, tree: &PerfectTree, tile: &[f32], cursor: &mut [u32; TILE_ROWS]) {
        debug_assert_eq!(tile.len(), TILE_ROWS * self.rows.width());
        match self.kernel {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `compile_for` checked the CPU has AVX-512F; the tile is TILE_ROWS × features
            // and every meta offset is feature × TILE_ROWS with feature < features; cursors stay
            // below 2^(depth+1) - 1 (see simd::walk_avx512).
            Kernel::Avx512 => unsafe {
                simd::walk_avx512(&tree.threshold, &tree.meta, tree.depth, tile, cursor)
            },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above, with AVX2.
            Kernel::Avx2 => unsafe {
                simd::walk_avx2(&tree.threshold, &tree.meta, tree.depth, tile, cursor)
            },
            _ => walk_perfect_scalar(tree, tile, cursor),
        }
    }
}

/// The perfect walk, one row at a time (the reference for the SIMD kernels).
fn walk_perfect_scalar(tree: &PerfectTree, tile: &[f32], cursor: &mut [u32; TILE_ROWS]) {
    cursor.fill(0);
    for _ in 0..tree.depth {
        for (r, c) in cursor.iter_mut().enumerate() {
            let i = *c as usize;
            let m = tree.meta[i];
            let x = tile[(m & !NAN_RIGHT) as usize + r];
            let right = u32::from(x > tree.threshold[i]) | (u32::from(x.is_nan()) & (m >> 31));
            *c = 2 * *c + 1 + right;
        }
    }
}

/// Moves every row of a tile from the root to its leaf in `tree.depth` steps.
fn walk_linked(tree: &LinkedTree, tile: &[f32], cursor: &mut [u32; TILE_ROWS]) {
    cursor.fill(0);
    for _ in 0..tree.depth {
        for (r, c) in cursor.iter_mut().enumerate() {
            let i = *c as usize;
            let m = tree.meta[i];
            let x = tile[(m & !NAN_RIGHT) as usize + r];
            let right = u32::from(x > tree.threshold[i]) | (u32::from(x.is_nan()) & (m >> 31));
            *c = tree.left[i] + right;
        }
    }
}

/// Whether every split is numeric without zero-as-missing (the fast layouts' rule).
fn numeric_only(tree: &Tree) -> bool {
    tree.nodes.iter().all(|n| match n {
        Node::Leaf(_) => true,
        Node::Split { split, .. } => matches!(
            split,
            Split::Numeric {
                zero_is_missing: false,
                ..
            }
        ),
    })
}

/// The split's meta word and threshold (numeric splits only; `numeric_only` was checked).
fn encode(split: &Split, stride: u32) -> (u32, f32) {
    match split {
        Split::Numeric {
            feature,
            threshold,
            nan_left,
            ..
        } => (
            (feature * stride) | if *nan_left { 0 } else { NAN_RIGHT },
            *threshold,
        ),
        // not reached: such trees take the reference walk; always-left keeps it harmless
        Split::Categorical { .. } => (0, f32::INFINITY),
    }
}

/// Pads a tree of `depth` to a perfect one: a leaf above the bottom becomes a chain of always-left
/// nodes (threshold +∞, NaN left) ending at its leftmost bottom slot. A meta word holds the
/// feature times `stride` (its offset in the rows' layout: [`TILE_ROWS`] in a feature-major tile,
/// 1 in a row) with the NaN direction in the top bit; categorical splits (which callers keep out)
/// would become always-left.
pub(super) fn perfect_tree(tree: &Tree, depth: usize, stride: u32) -> PerfectTree {
    let splits = (1usize << depth) - 1;
    let mut threshold = vec![f32::INFINITY; splits];
    let mut meta = vec![0u32; splits];
    let mut leaves = vec![0f64; 1 << depth];
    let mut stack = vec![(0usize, 0usize)]; // (original node, perfect index)
    while let Some((orig, at)) = stack.pop() {
        match &tree.nodes[orig] {
            Node::Leaf(v) => {
                // follow the always-left chain down to the bottom
                let mut i = at;
                while i < splits {
                    i = 2 * i + 1;
                }
                leaves[i - splits] = *v;
            }
            Node::Split { split, left, right } => {
                let (m, t) = encode(split, stride);
                meta[at] = m;
                threshold[at] = t;
                stack.push((*left, 2 * at + 1));
                stack.push((*right, 2 * at + 2));
            }
        }
    }
    PerfectTree {
        depth,
        threshold,
        meta,
        leaves,
        group: tree.group,
    }
}

/// Breadth-first relayout with explicit children: a node's two children are adjacent.
fn linked_tree(tree: &Tree, depth: usize) -> Result<LinkedTree, String> {
    let n = tree.nodes.len();
    if u32::try_from(n).is_err() {
        return Err("the tree has too many nodes".into());
    }
    let mut meta = vec![0u32; 1];
    let mut threshold = vec![f32::INFINITY; 1];
    let mut left = vec![0u32; 1];
    let mut values = vec![0f64; 1];
    let mut queue = std::collections::VecDeque::from([(0usize, 0usize)]);
    while let Some((orig, at)) = queue.pop_front() {
        match &tree.nodes[orig] {
            Node::Leaf(v) => {
                // a leaf loops on itself: threshold +∞, NaN left
                left[at] = at as u32;
                values[at] = *v;
            }
            Node::Split {
                split,
                left: l,
                right: r,
            } => {
                let first = meta.len();
                let (m, t) = encode(split, TILE_ROWS as u32);
                meta[at] = m;
                threshold[at] = t;
                left[at] = first as u32;
                meta.extend([0, 0]);
                threshold.extend([f32::INFINITY; 2]);
                left.extend([0, 0]);
                values.extend([0.0, 0.0]);
                queue.push_back((*l, first));
                queue.push_back((*r, first + 1));
            }
        }
    }
    Ok(LinkedTree {
        meta,
        threshold,
        left,
        values,
        depth,
        group: tree.group,
    })
}

#[cfg(target_arch = "x86_64")]
mod simd {
    //! The perfect walk with gathers. Per step and vector of rows: gather the nodes' thresholds
    //! and meta words at the cursors, gather each row's feature value at the meta offset, compare,
    //! and move the cursors to `2i + 1 + right`. All vectors of a tile take a step before any
    //! takes the next, so the gathers of different vectors overlap.

    use std::arch::x86_64::*;

    use super::{NAN_RIGHT, TILE_ROWS};

    /// # Safety
    /// The CPU has AVX-512F; `threshold` and `meta` hold `2^depth - 1` entries; every meta offset
    /// (without the NaN bit) plus `TILE_ROWS - 1` is inside `tile`. Cursors start at 0 and after
    /// `d < depth` steps are below `2^(d+1) - 1`, so every lookup reads inside the arrays.
    ///
    /// Levels of up to 128 nodes are held in registers (thresholds and meta words, 16 per
    /// register) and looked up with permutes (`vpermps` / `vpermt2ps` and blends on the position's
    /// high bits), so the only gather per step is the rows' feature values; deeper levels gather
    /// the nodes too.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn walk_avx512(
        threshold: &[f32],
        meta: &[u32],
        depth: usize,
        tile: &[f32],
        cursor: &mut [u32; TILE_ROWS],
    ) {
        debug_assert_eq!(threshold.len(), (1 << depth) - 1);
        let one = _mm512_set1_epi32(1);
        let offset_mask = _mm512_set1_epi32(!NAN_RIGHT as i32);
        let lanes = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
        let bit5 = _mm512_set1_epi32(32);
        let bit6 = _mm512_set1_epi32(64);
        cursor.fill(0);
        for level in 0..depth {
            let first = (1usize << level) - 1;
            let width = 1usize << level;
            let regs = width.div_ceil(16);
            let mut t = [_mm512_setzero_ps(); 8];
            let mut m = [_mm512_setzero_si512(); 8];
            if regs <= 8 {
                for k in 0..regs {
                    let n = (width - k * 16).min(16);
                    let mask = if n == 16 { u16::MAX } else { (1u16 << n) - 1 };
                    // SAFETY: first + k * 16 + n <= 2^(level+1) - 1 <= threshold.len()
                    unsafe {
                        t[k] = _mm512_maskz_loadu_ps(mask, threshold.as_ptr().add(first + k * 16));
                        m[k] = _mm512_maskz_loadu_epi32(
                            mask,
                            meta.as_ptr().add(first + k * 16) as *const i32,
                        );
                    }
                }
            }
            if level < super::TOP_LEVELS {
                // few nodes: test each row against every node of the level with plain loads (a
                // node's feature is a contiguous run of the tile) and keep its own node's result
                for (v, chunk) in cursor.chunks_exact_mut(16).enumerate() {
                    // SAFETY: node indices first + n < 2^(level+1) - 1 <= threshold.len(); meta
                    // offsets plus v * 16 + 15 < TILE_ROWS are inside the tile.
                    unsafe {
                        let ptr = chunk.as_mut_ptr() as *mut __m512i;
                        let i = _mm512_loadu_si512(ptr);
                        let pos = _mm512_sub_epi32(i, _mm512_set1_epi32(first as i32));
                        let mut right: __mmask16 = 0;
                        for n in 0..width {
                            let mn = *meta.get_unchecked(first + n);
                            let tn = _mm512_set1_ps(*threshold.get_unchecked(first + n));
                            let x = _mm512_loadu_ps(
                                tile.as_ptr().add((mn & !NAN_RIGHT) as usize + v * 16),
                            );
                            let mut r = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(x, tn);
                            if mn & NAN_RIGHT != 0 {
                                r |= _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(x, x);
                            }
                            let here = _mm512_cmpeq_epi32_mask(pos, _mm512_set1_epi32(n as i32));
                            right |= here & r;
                        }
                        let next = _mm512_add_epi32(_mm512_add_epi32(i, i), one);
                        let next = _mm512_mask_add_epi32(next, right, next, one);
                        _mm512_storeu_si512(ptr, next);
                    }
                }
                continue;
            }
            for (v, chunk) in cursor.chunks_exact_mut(16).enumerate() {
                // SAFETY: the caller's contract (see above) bounds every index.
                unsafe {
                    let ptr = chunk.as_mut_ptr() as *mut __m512i;
                    let i = _mm512_loadu_si512(ptr);
                    let pos = _mm512_sub_epi32(i, _mm512_set1_epi32(first as i32));
                    let (tv, mv) = match regs {
                        1 => (
                            _mm512_permutexvar_ps(pos, t[0]),
                            _mm512_permutexvar_epi32(pos, m[0]),
                        ),
                        2 => (
                            _mm512_permutex2var_ps(t[0], pos, t[1]),
                            _mm512_permutex2var_epi32(m[0], pos, m[1]),
                        ),
                        4 | 8 => {
                            let hi5 = _mm512_test_epi32_mask(pos, bit5);
                            let mut tq = [_mm512_setzero_ps(); 4];
                            let mut mq = [_mm512_setzero_si512(); 4];
                            for q in 0..regs / 2 {
                                let lo_t = _mm512_permutex2var_ps(t[2 * q], pos, t[2 * q + 1]);
                                let lo_m = _mm512_permutex2var_epi32(m[2 * q], pos, m[2 * q + 1]);
                                tq[q] = lo_t;
                                mq[q] = lo_m;
                            }
                            let t01 = _mm512_mask_blend_ps(hi5, tq[0], tq[1]);
                            let m01 = _mm512_mask_blend_epi32(hi5, mq[0], mq[1]);
                            if regs == 4 {
                                (t01, m01)
                            } else {
                                let hi6 = _mm512_test_epi32_mask(pos, bit6);
                                let t23 = _mm512_mask_blend_ps(hi5, tq[2], tq[3]);
                                let m23 = _mm512_mask_blend_epi32(hi5, mq[2], mq[3]);
                                (
                                    _mm512_mask_blend_ps(hi6, t01, t23),
                                    _mm512_mask_blend_epi32(hi6, m01, m23),
                                )
                            }
                        }
                        _ => (
                            _mm512_i32gather_ps::<4>(i, threshold.as_ptr()),
                            _mm512_i32gather_epi32::<4>(i, meta.as_ptr() as *const i32),
                        ),
                    };
                    let rows = _mm512_add_epi32(lanes, _mm512_set1_epi32((v * 16) as i32));
                    let at = _mm512_add_epi32(_mm512_and_si512(mv, offset_mask), rows);
                    let x = _mm512_i32gather_ps::<4>(at, tile.as_ptr());
                    let above = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(x, tv);
                    let nan = _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(x, x);
                    let nan_right = _mm512_movepi32_mask_f(mv);
                    let right = above | (nan & nan_right);
                    let next = _mm512_add_epi32(_mm512_add_epi32(i, i), one);
                    let next = _mm512_mask_add_epi32(next, right, next, one);
                    _mm512_storeu_si512(ptr, next);
                }
            }
        }
    }

    /// `acc[r] += leaves[cursor[r] - first_leaf]` for whole groups of 8 rows; returns how many
    /// rows it did (the caller does the rest).
    ///
    /// # Safety
    /// The CPU has AVX-512F; `acc` has at least `cursor.len()` values; every cursor minus
    /// `first_leaf` is below `leaves.len()`.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn add_leaves_avx512(
        leaves: &[f64],
        first_leaf: u32,
        cursor: &[u32],
        acc: &mut [f64],
    ) -> usize {
        let full = cursor.len() / 8 * 8;
        let first = _mm256_set1_epi32(first_leaf as i32);
        for (c, a) in cursor[..full].chunks_exact(8).zip(acc.chunks_exact_mut(8)) {
            // SAFETY: the caller's contract bounds every index; chunks are 8 long.
            unsafe {
                let i = _mm256_sub_epi32(_mm256_loadu_si256(c.as_ptr() as *const __m256i), first);
                let v = _mm512_i32gather_pd::<8>(i, leaves.as_ptr());
                let sum = _mm512_add_pd(_mm512_loadu_pd(a.as_ptr()), v);
                _mm512_storeu_pd(a.as_mut_ptr(), sum);
            }
        }
        full
    }

    /// The sign bits of 16 i32 lanes as a mask, with AVX-512F alone (`vpmovd2m` needs DQ).
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn _mm512_movepi32_mask_f(m: __m512i) -> __mmask16 {
        _mm512_cmplt_epi32_mask(m, _mm512_setzero_si512())
    }

    /// # Safety
    /// As [`walk_avx512`], with AVX2.
    #[target_feature(enable = "avx2")]
    pub unsafe fn walk_avx2(
        threshold: &[f32],
        meta: &[u32],
        depth: usize,
        tile: &[f32],
        cursor: &mut [u32; TILE_ROWS],
    ) {
        debug_assert_eq!(threshold.len(), (1 << depth) - 1);
        let one = _mm256_set1_epi32(1);
        let offset_mask = _mm256_set1_epi32(!NAN_RIGHT as i32);
        let lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        cursor.fill(0);
        // The top levels hold few nodes: test every row against all of a level's nodes with
        // plain loads (a node's feature is a contiguous run of the tile) and pick each row's
        // result by its position, instead of gathering.
        let top = super::TOP_LEVELS.min(depth);
        for level in 0..top {
            let first = (1usize << level) - 1;
            for (v, chunk) in cursor.chunks_exact_mut(8).enumerate() {
                // SAFETY: node indices are below 2^top - 1 <= threshold.len(); every meta offset
                // plus v * 8 + 7 < TILE_ROWS is inside the tile.
                unsafe {
                    let ptr = chunk.as_mut_ptr() as *mut __m256i;
                    let i = _mm256_loadu_si256(ptr);
                    let mut bits = _mm256_setzero_si256();
                    for n in 0..(1usize << level) {
                        let m = *meta.get_unchecked(first + n);
                        let t = _mm256_set1_ps(*threshold.get_unchecked(first + n));
                        let x =
                            _mm256_loadu_ps(tile.as_ptr().add((m & !NAN_RIGHT) as usize + v * 8));
                        let above = _mm256_castps_si256(_mm256_cmp_ps::<_CMP_GT_OQ>(x, t));
                        let nan = _mm256_castps_si256(_mm256_cmp_ps::<_CMP_UNORD_Q>(x, x));
                        let nan_right = _mm256_set1_epi32((m as i32) >> 31);
                        let right = _mm256_or_si256(above, _mm256_and_si256(nan, nan_right));
                        bits = _mm256_or_si256(
                            bits,
                            _mm256_and_si256(right, _mm256_set1_epi32(1 << n)),
                        );
                    }
                    let pos = _mm256_sub_epi32(i, _mm256_set1_epi32(first as i32));
                    let right = _mm256_and_si256(_mm256_srlv_epi32(bits, pos), one);
                    let next = _mm256_add_epi32(_mm256_add_epi32(i, i), one);
                    _mm256_storeu_si256(ptr, _mm256_add_epi32(next, right));
                }
            }
        }
        for _ in top..depth {
            for (v, chunk) in cursor.chunks_exact_mut(8).enumerate() {
                // SAFETY: the caller's contract bounds every index.
                unsafe {
                    let ptr = chunk.as_mut_ptr() as *mut __m256i;
                    let i = _mm256_loadu_si256(ptr);
                    let t = _mm256_i32gather_ps::<4>(threshold.as_ptr(), i);
                    let m = _mm256_i32gather_epi32::<4>(meta.as_ptr() as *const i32, i);
                    let rows = _mm256_add_epi32(lanes, _mm256_set1_epi32((v * 8) as i32));
                    let at = _mm256_add_epi32(_mm256_and_si256(m, offset_mask), rows);
                    let x = _mm256_i32gather_ps::<4>(tile.as_ptr(), at);
                    let above = _mm256_castps_si256(_mm256_cmp_ps::<_CMP_GT_OQ>(x, t));
                    let nan = _mm256_castps_si256(_mm256_cmp_ps::<_CMP_UNORD_Q>(x, x));
                    // the NaN flag is the sign bit: an arithmetic shift spreads it to all bits
                    let nan_right = _mm256_srai_epi32::<31>(m);
                    let right = _mm256_or_si256(above, _mm256_and_si256(nan, nan_right));
                    // right is all ones (-1) or 0: next = 2i + 1 - right
                    let next = _mm256_add_epi32(_mm256_add_epi32(i, i), one);
                    let next = _mm256_sub_epi32(next, right);
                    _mm256_storeu_si256(ptr, next);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::gbdt::forest::Link;

    /// A random forest of mixed depths (perfect and linked layouts) with NaN handling both ways,
    /// categorical splits on feature 3 and zero-as-missing ones on feature 4.
    fn forest(seed: u64) -> Forest {
        let mut state = seed;
        let mut next = move || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) as u32
        };
        let mut trees = Vec::new();
        for t in 0..15 {
            // 1–8: perfect, every kind of level (candidates, permutes); 10: perfect with gathered
            // levels; 13: linked
            let depth = [1, 3, 8, 10, 13][t % 5];
            let mut nodes = Vec::new();
            // a random tree: grow with probability 3/4 down to `depth`
            fn grow(
                nodes: &mut Vec<Node>,
                d: usize,
                depth: usize,
                next: &mut dyn FnMut() -> u32,
            ) -> usize {
                let at = nodes.len();
                nodes.push(Node::Leaf(0.0));
                if d < depth && (d == 0 || !next().is_multiple_of(4)) {
                    let feature = next() % 5;
                    let split = if feature == 3 {
                        // feature 3 is categorical: truncated to -1, 0 or 1 (and NaN)
                        Split::Categorical {
                            feature,
                            set: vec![next() % 8],
                            listed_left: next().is_multiple_of(2),
                            nan_left: next().is_multiple_of(2),
                            other_left: next().is_multiple_of(2),
                            truncate_first: next().is_multiple_of(2),
                        }
                    } else {
                        Split::Numeric {
                            feature,
                            threshold: (next() % 200) as f32 / 100.0 - 1.0,
                            nan_left: next().is_multiple_of(2),
                            // feature 4 is LightGBM's zero_as_missing
                            zero_is_missing: feature == 4,
                        }
                    };
                    let left = grow(nodes, d + 1, depth, next);
                    let right = grow(nodes, d + 1, depth, next);
                    nodes[at] = Node::Split { split, left, right };
                } else {
                    nodes[at] = Node::Leaf(f64::from(next() % 1000) / 1000.0 - 0.5);
                }
                at
            }
            grow(&mut nodes, 0, depth, &mut next);
            trees.push(Tree {
                nodes,
                group: t % 2,
                covers: Vec::new(),
            });
        }
        Forest {
            features: 5,
            groups: 2,
            trees,
            base_margin: vec![0.25, -0.5],
            link: Link::Softmax,
            objective: "test".into(),
            feature_names: None,
        }
    }

    fn batch(rows: usize) -> FeatureBatch {
        use arrow::array::{Float32Array, Int64Array};
        use std::sync::Arc;
        let mut cols: Vec<(String, arrow::array::ArrayRef)> = vec![(
            "id".into(),
            Arc::new(Int64Array::from_iter_values(0..rows as i64)),
        )];
        for f in 0..5 {
            let v: Float32Array = (0..rows)
                .map(|r| {
                    let x = ((r * 37 + f * 11) % 211) as f32 / 100.0 - 1.05;
                    if (r + f) % 13 == 0 {
                        None
                    } else if (r + f) % 19 == 0 {
                        Some(if r % 2 == 0 { 1e-36 } else { -0.0 })
                    } else if (r + f) % 23 == 0 {
                        Some(2e-35)
                    } else if (r + f) % 17 == 0 {
                        Some(f32::NAN)
                    } else {
                        Some(x)
                    }
                })
                .collect();
            cols.push((format!("f{f}"), Arc::new(v)));
        }
        let rb = arrow::record_batch::RecordBatch::try_from_iter(cols).unwrap();
        crate::features::FeatureSpec {
            id_column: "id".into(),
            id_kind: crate::source::IdKind::Int,
            features: (0..5).map(|f| format!("f{f}")).collect(),
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
            batch: rb,
        })
        .unwrap()
    }

    /// Every kernel this CPU has, on every layout, gives the reference walk's margins exactly
    /// (same f64 sums in the same tree order), on a short last tile too.
    #[test]
    fn kernels_match_the_reference_walk() {
        let forest = forest(7);
        let fb = batch(TILE_ROWS * 2 + 77);
        let want: Vec<f64> = (0..fb.rows)
            .flat_map(|r| {
                let mut row = vec![0f32; 5];
                let mut tile = vec![0f32; 5];
                fb.write_tile(r, 1, &mut tile);
                row.copy_from_slice(&tile);
                forest.margins(&row)
            })
            .collect();
        for kernel in [Kernel::Scalar, Kernel::Avx2, Kernel::Avx512] {
            if !kernel.available() {
                continue;
            }
            let compiled = CpuForest::compile_for(&forest, kernel).unwrap();
            let (perfect, linked, reference) = compiled.layouts();
            assert!(perfect > 0 && linked > 0);
            assert_eq!(
                reference, 0,
                "categorical and zero-as-missing splits take the fast layouts"
            );
            let got = compiled.margins(&fb);
            assert_eq!(got.len(), want.len());
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                assert!((g - w).abs() < 1e-12, "{kernel:?} value {i}: {g} vs {w}");
            }
        }
    }
}
