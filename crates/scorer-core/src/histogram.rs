//! A fixed-bin histogram of `f32` values that merges exactly across batches, shards and resumed
//! runs, for quantiles and the population stability index (PSI) between two runs.
//!
//! The bins are fixed in float space, not in the data's range (which no batch knows in advance):
//! one bin per sign, exponent and top 7 mantissa bits, so each bin spans 1/128 of an octave (a
//! value's bin says it within ±0.3 %), which separates even scores that sit in a narrow band.
//! Counters live in pages of 256 bins, allocated when a value first lands in one: a score between
//! 1e-6 and 1 touches about 10 pages (20 KB). Only bins with values are stored.

use serde::{Deserialize, Serialize};

/// Mantissa bits that select a bin within an octave.
const MANTISSA_BITS: u32 = 7;
/// Bits of a bin index: sign, exponent and `MANTISSA_BITS`.
const INDEX_BITS: u32 = 1 + 8 + MANTISSA_BITS;
const BINS: usize = 1 << INDEX_BITS;
const PAGE: usize = 256;
const PAGES: usize = BINS / PAGE;

/// The bin of `v` (not NaN): ordered like the values.
fn bin_of(v: f32) -> usize {
    let bits = v.to_bits();
    // Order-preserving: negatives reversed below positives.
    let key = if bits >> 31 == 1 {
        !bits
    } else {
        bits | (1 << 31)
    };
    (key >> (32 - INDEX_BITS)) as usize
}

/// The value in the middle of bin `bin`.
fn middle_of(bin: usize) -> f32 {
    let key = ((bin as u32) << (32 - INDEX_BITS)) | (1 << (31 - INDEX_BITS));
    let bits = if key >> 31 == 1 {
        key & !(1 << 31)
    } else {
        !key
    };
    f32::from_bits(bits)
}

/// Counts per fixed bin, in pages allocated on first use; empty until the first value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Histogram {
    pages: Vec<Option<Box<[u64; PAGE]>>>,
}

/// How a histogram is stored: `[bin, count]` for every bin with values, in bin order.
#[derive(Serialize, Deserialize)]
struct Stored(Vec<(u16, u64)>);

impl Serialize for Histogram {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        Stored(self.bins().map(|(b, c)| (b as u16, c)).collect()).serialize(s)
    }
}

impl<'de> Deserialize<'de> for Histogram {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let Stored(bins) = Stored::deserialize(d)?;
        let mut h = Histogram::default();
        for (bin, count) in bins {
            *h.slot(usize::from(bin)) += count;
        }
        Ok(h)
    }
}

impl Histogram {
    /// The counter of `bin` (below `BINS`), its page allocated if new.
    fn slot(&mut self, bin: usize) -> &mut u64 {
        if self.pages.is_empty() {
            self.pages.resize_with(PAGES, || None);
        }
        let page = self.pages[bin / PAGE].get_or_insert_with(|| Box::new([0; PAGE]));
        &mut page[bin % PAGE]
    }

    /// Every bin with values, in order, with its count.
    fn bins(&self) -> impl Iterator<Item = (usize, u64)> + '_ {
        self.pages.iter().enumerate().flat_map(|(p, page)| {
            page.iter().flat_map(move |page| {
                page.iter()
                    .enumerate()
                    .filter(|(_, c)| **c > 0)
                    .map(move |(i, c)| (p * PAGE + i, *c))
            })
        })
    }

    /// Counts `v`; NaN is not counted (callers count it apart).
    pub fn add(&mut self, v: f32) {
        if !v.is_nan() {
            *self.slot(bin_of(v)) += 1;
        }
    }

    /// Adds another histogram's counts.
    pub fn merge(&mut self, other: &Histogram) {
        for (p, page) in other.pages.iter().enumerate() {
            if let Some(page) = page {
                for (i, c) in page.iter().enumerate().filter(|(_, c)| **c > 0) {
                    *self.slot(p * PAGE + i) += c;
                }
            }
        }
    }

    /// The same counts in bins 2^`bits` times wider (each count moved to the middle of its
    /// wide bin): fewer bins to store where the fine ones are not needed (input features: their
    /// PSI groups by deciles), quantiles then within ±(2^`bits` × 0.3) %.
    pub fn coarsened(&self, bits: u32) -> Histogram {
        if bits == 0 {
            return self.clone();
        }
        let mask = (1usize << bits) - 1;
        let mut out = Histogram::default();
        for (bin, c) in self.bins() {
            *out.slot((bin & !mask) | (1 << (bits - 1))) += c;
        }
        out
    }

    /// Values counted.
    pub fn total(&self) -> u64 {
        self.bins().map(|(_, c)| c).sum()
    }

    /// The `q` quantile (0 to 1) as the middle of its bin (within ±0.3 % of the exact one);
    /// `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<f32> {
        let total = self.total();
        if total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        self.bins()
            .find(|(_, c)| {
                seen += c;
                seen >= rank
            })
            .map(|(bin, _)| middle_of(bin))
    }

    /// The population stability index of `self` against `baseline`: both histograms grouped
    /// into (at most) `groups` bins that each hold about 1/`groups` of the baseline, then
    /// Σ (p − q) · ln(p / q) over the groups, with empty shares floored at 1e-4. `None` when
    /// either is empty. Under 0.1 is usually read as stable, over 0.25 as a shift.
    pub fn psi(&self, baseline: &Histogram, groups: usize) -> Option<f64> {
        let (n, m) = (self.total(), baseline.total());
        if n == 0 || m == 0 {
            return None;
        }
        // Group edges: bins where the baseline's cumulative share passes k / groups.
        let mut edges = Vec::with_capacity(groups);
        let mut seen = 0u64;
        let mut next = 1;
        for (bin, c) in baseline.bins() {
            seen += c;
            while next < groups && seen as f64 >= next as f64 * m as f64 / groups as f64 {
                if edges.last() != Some(&bin) {
                    edges.push(bin);
                }
                next += 1;
            }
        }
        let group_of = |bin: usize| edges.partition_point(|&e| e < bin);
        let mut p = vec![0u64; edges.len() + 1];
        let mut q = vec![0u64; edges.len() + 1];
        for (bin, c) in self.bins() {
            p[group_of(bin)] += c;
        }
        for (bin, c) in baseline.bins() {
            q[group_of(bin)] += c;
        }
        let floor = 1e-4;
        Some(
            p.iter()
                .zip(&q)
                .map(|(&a, &b)| {
                    let a = (a as f64 / n as f64).max(floor);
                    let b = (b as f64 / m as f64).max(floor);
                    (a - b) * (a / b).ln()
                })
                .sum(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_keep_the_values_order_and_a_bin_is_narrow() {
        let values = [
            f32::NEG_INFINITY,
            -1e9,
            -1.5,
            -1e-7,
            0.0,
            1e-30,
            0.3,
            0.5,
            1.0,
            7.0,
            f32::MAX,
        ];
        for w in values.windows(2) {
            assert!(bin_of(w[0]) < bin_of(w[1]), "{} {}", w[0], w[1]);
        }
        for v in [0.001f32, 0.3, 0.97, 12.5, -4.2] {
            let m = middle_of(bin_of(v));
            assert!(((m - v) / v).abs() < 0.004, "{v} -> {m}");
            assert_eq!(bin_of(m), bin_of(v));
        }
    }

    #[test]
    fn quantiles_of_a_uniform_sample_are_close() {
        let mut h = Histogram::default();
        for i in 0..100_000 {
            h.add(i as f32 / 100_000.0);
        }
        h.add(f32::NAN);
        assert_eq!(h.total(), 100_000);
        for q in [0.01, 0.25, 0.5, 0.9, 0.99] {
            let got = f64::from(h.quantile(q).unwrap());
            assert!((got - q).abs() / q < 0.01, "q{q}: {got}");
        }
        assert_eq!(Histogram::default().quantile(0.5), None);
    }

    #[test]
    fn psi_is_zero_for_the_same_distribution_and_large_for_a_shift() {
        let sample = |shift: f32, n: usize| {
            let mut h = Histogram::default();
            for i in 0..n {
                h.add((i as f32 / n as f32) * 0.8 + 0.1 + shift);
            }
            h
        };
        let base = sample(0.0, 50_000);
        assert!(sample(0.0, 20_000).psi(&base, 10).unwrap() < 0.01);
        let shifted = sample(0.15, 50_000).psi(&base, 10).unwrap();
        assert!(shifted > 0.25, "{shifted}");
        // Merging parts gives the whole.
        let mut parts = sample(0.0, 0);
        parts.merge(&base);
        assert_eq!(parts, base);
        let json = serde_json::to_string(&base).unwrap();
        assert_eq!(serde_json::from_str::<Histogram>(&json).unwrap(), base);
        assert_eq!(base.psi(&Histogram::default(), 10), None);
        // Coarser bins keep the counts and the median close, and PSI still sees the shift.
        let coarse = base.coarsened(3);
        assert_eq!(coarse.total(), base.total());
        assert!((coarse.quantile(0.5).unwrap() - 0.5).abs() < 0.03);
        assert!(sample(0.15, 50_000).coarsened(3).psi(&coarse, 10).unwrap() > 0.25);
    }
}
