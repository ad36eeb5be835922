//! Summary statistics of a column over a run: what the ledger records per output and feature,
//! what drift compares, what the feature stage and the sinks fold batch by batch. It knows no
//! stage, so every one of them can use it.

use std::collections::BTreeMap;

use serde::Serialize;

/// Summary statistics of one output column (or input feature) over a run, or a part of it: parts
/// merge exactly, so a resumed run's statistics cover the rows it adopted too. The fixed-bin
/// histogram gives the quantiles and the PSI against another run (`crate::histogram`).
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize, PartialEq)]
pub struct ScoreStats {
    pub count: u64,
    pub nan: u64,
    pub mean: Option<f64>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    /// Standard deviation (population), set by [`ScoreStats::summarize`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub std: Option<f64>,
    /// p01, p05, p25, p50, p75, p95, p99 (bin middles, within ±3.2 %), set by `summarize`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub quantiles: BTreeMap<String, f32>,
    #[serde(default)]
    pub histogram: crate::histogram::Histogram,
    #[serde(default)]
    sum: f64,
    #[serde(default)]
    sum_sq: f64,
}

impl ScoreStats {
    /// Folds in every value of an output column (a vector column's elements count one by one;
    /// integer columns are not summarised).
    pub fn add_column(&mut self, column: &dyn arrow::array::Array) {
        if let Some(values) = crate::contract::f32_values(column) {
            for v in values {
                self.add(*v);
            }
            self.update_mean();
        }
    }

    /// Sets `mean` from the sums (`add` leaves it to whoever adds many values).
    pub fn update_mean(&mut self) {
        self.mean = (self.count > 0).then(|| self.sum / self.count as f64);
    }

    /// Folds in the statistics of other rows of the same column.
    pub fn merge(&mut self, other: &ScoreStats) {
        if other.count + other.nan == 0 {
            return;
        }
        self.count += other.count;
        self.nan += other.nan;
        self.sum += other.sum;
        self.sum_sq += other.sum_sq;
        self.histogram.merge(&other.histogram);
        let pick = |a: Option<f64>, b: Option<f64>, f: fn(f64, f64) -> f64| match (a, b) {
            (Some(x), Some(y)) => Some(f(x, y)),
            (x, y) => x.or(y),
        };
        self.min = pick(self.min, other.min, f64::min);
        self.max = pick(self.max, other.max, f64::max);
        self.mean = (self.count > 0).then(|| self.sum / self.count as f64);
    }

    /// Folds in one value.
    pub fn add(&mut self, v: f32) {
        if v.is_nan() {
            self.nan += 1;
            return;
        }
        self.histogram.add(v);
        let v = f64::from(v);
        self.count += 1;
        self.sum += v;
        self.sum_sq += v * v;
        self.min = Some(self.min.map_or(v, |m| m.min(v)));
        self.max = Some(self.max.map_or(v, |m| m.max(v)));
    }

    /// Fills in the mean, the standard deviation and the quantiles, for the ledger.
    pub fn summarize(&mut self) {
        self.update_mean();
        if self.count == 0 {
            return;
        }
        let n = self.count as f64;
        let mean = self.sum / n;
        self.std = Some((self.sum_sq / n - mean * mean).max(0.0).sqrt());
        self.quantiles = [
            ("p01", 0.01),
            ("p05", 0.05),
            ("p25", 0.25),
            ("p50", 0.5),
            ("p75", 0.75),
            ("p95", 0.95),
            ("p99", 0.99),
        ]
        .into_iter()
        .filter_map(|(name, q)| Some((name.to_string(), self.histogram.quantile(q)?)))
        .collect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn score_stats_fold() {
        let mut s = ScoreStats::default();
        for v in [1.0, 3.0, f32::NAN, 2.0] {
            s.add(v);
        }
        assert_eq!(s.count, 3);
        assert_eq!(s.nan, 1);
        // `add` leaves the mean to the caller; `summarize` (or `update_mean`) sets it.
        assert_eq!(s.mean, None);
        s.summarize();
        assert_eq!(s.mean, Some(2.0));
        assert_eq!(s.min, Some(1.0));
        assert_eq!(s.max, Some(3.0));
        let std = s.std.unwrap();
        assert!((std - (2.0f64 / 3.0).sqrt()).abs() < 1e-9, "{std}");
        assert_eq!(s.quantiles.len(), 7);
        let p50 = s.quantiles["p50"];
        assert!((p50 - 2.0).abs() < 0.01, "{p50}");
        // Parts merge into the whole.
        let (mut a, mut b) = (ScoreStats::default(), ScoreStats::default());
        a.add(1.0);
        b.add(3.0);
        b.add(2.0);
        a.merge(&b);
        assert_eq!((a.count, a.mean, a.histogram.total()), (3, Some(2.0), 3));
    }
}
