//! Drift: how far a run's score and input-feature distributions moved from the job's previous
//! successful run, as the population stability index (PSI) of their fixed-bin histograms
//! (`crate::histogram`), checked against `[drift] max_psi` before anything is published.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::stats::ScoreStats;

/// Groups the baseline's distribution is cut into for PSI (its deciles).
pub const PSI_GROUPS: usize = 10;

/// What the job's previous successful run recorded.
#[derive(Debug, Clone, Default)]
pub struct Baseline {
    pub run_id: Uuid,
    pub scores: BTreeMap<String, ScoreStats>,
    pub features: BTreeMap<String, ScoreStats>,
}

/// A run's drift against its baseline, as the ledger's `drift` column holds it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DriftCheck {
    pub baseline_run_id: Uuid,
    /// PSI per output column.
    pub scores: BTreeMap<String, f64>,
    /// PSI per input feature (when `drift.features`).
    pub features: BTreeMap<String, f64>,
    /// The largest PSI of all, and where.
    pub worst: Option<(String, f64)>,
    /// `drift.max_psi`, if set.
    pub max_psi: Option<f64>,
    /// Columns over `max_psi` (`feature:` before an input's name).
    pub exceeded: Vec<String>,
    /// What was done about them: `warn` or `fail`; absent when nothing exceeded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<DriftAction>,
}

/// PSI of every column `now` shares with `then`.
fn psi_of(
    now: &BTreeMap<String, ScoreStats>,
    then: &BTreeMap<String, ScoreStats>,
) -> BTreeMap<String, f64> {
    now.iter()
        .filter_map(|(name, s)| {
            let base = then.get(name)?;
            Some((name.clone(), s.histogram.psi(&base.histogram, PSI_GROUPS)?))
        })
        .collect()
}

/// Compares a run's statistics with `baseline` under `spec`.
pub fn compare(
    scores: &BTreeMap<String, ScoreStats>,
    features: &BTreeMap<String, ScoreStats>,
    baseline: &Baseline,
    spec: &DriftSpec,
) -> DriftCheck {
    let scores = psi_of(scores, &baseline.scores);
    let features = if spec.features {
        psi_of(features, &baseline.features)
    } else {
        BTreeMap::new()
    };
    let all = scores
        .iter()
        .map(|(n, v)| (n.clone(), *v))
        .chain(features.iter().map(|(n, v)| (format!("feature:{n}"), *v)));
    let worst = all.clone().max_by(|a, b| a.1.total_cmp(&b.1));
    let exceeded: Vec<String> = match spec.max_psi {
        Some(max) => all.filter(|(_, v)| *v > max).map(|(n, _)| n).collect(),
        None => Vec::new(),
    };
    DriftCheck {
        baseline_run_id: baseline.run_id,
        action: (!exceeded.is_empty()).then_some(spec.on_drift),
        scores,
        features,
        worst,
        max_psi: spec.max_psi,
        exceeded,
    }
}

impl DriftCheck {
    /// One line naming what drifted, for the log and the failure.
    pub fn describe(&self) -> String {
        let over: Vec<String> = self
            .exceeded
            .iter()
            .map(|name| {
                let psi = match name.strip_prefix("feature:") {
                    Some(f) => self.features.get(f),
                    None => self.scores.get(name),
                };
                format!("{name} {:.3}", psi.copied().unwrap_or(f64::NAN))
            })
            .collect();
        format!(
            "PSI over drift.max_psi = {} against run {}: {}",
            self.max_psi.unwrap_or(f64::NAN),
            self.baseline_run_id,
            over.join(", ")
        )
    }
}

/// `[drift]`: the population stability index (PSI) of each output and input feature against
/// the job's previous successful run, checked before anything is published.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DriftSpec {
    /// The largest PSI allowed; unset: recorded, never acted on. 0.1–0.25 is the usual range
    /// (under 0.1 stable, over 0.25 a shift).
    #[serde(default)]
    pub max_psi: Option<f64>,
    /// What a PSI over `max_psi` does: `warn` (publish, log a warning, ledger `drift.exceeded`)
    /// or `fail` (publish nothing, exit 3).
    #[serde(default)]
    pub on_drift: DriftAction,
    /// Check the input features too (inputs usually drift before scores do).
    #[serde(default = "default_true")]
    pub features: bool,
}

impl Default for DriftSpec {
    fn default() -> Self {
        Self {
            max_psi: None,
            on_drift: DriftAction::Warn,
            features: true,
        }
    }
}

fn default_true() -> bool {
    true
}

/// What a drift past `drift.max_psi` does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DriftAction {
    #[default]
    Warn,
    Fail,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(values: impl Iterator<Item = f32>) -> ScoreStats {
        let mut s = ScoreStats::default();
        for v in values {
            s.add(v);
        }
        s
    }

    #[test]
    fn a_shifted_feature_is_named_and_the_action_follows_the_job() {
        let uniform = |shift: f32| stats((0..20_000).map(move |i| i as f32 / 20_000.0 + shift));
        let baseline = Baseline {
            run_id: Uuid::nil(),
            scores: [("score".to_string(), uniform(0.0))].into(),
            features: [
                ("f0".to_string(), uniform(0.0)),
                ("f1".to_string(), uniform(0.0)),
            ]
            .into(),
        };
        let scores = [("score".to_string(), uniform(0.0))].into();
        let features = [
            ("f0".to_string(), uniform(0.0)),
            ("f1".to_string(), uniform(0.3)),
        ]
        .into();
        let spec = DriftSpec {
            max_psi: Some(0.25),
            on_drift: DriftAction::Fail,
            features: true,
        };
        let r = compare(&scores, &features, &baseline, &spec);
        assert!(r.scores["score"] < 0.01);
        assert_eq!(r.exceeded, ["feature:f1"]);
        assert_eq!(r.action, Some(DriftAction::Fail));
        assert_eq!(r.worst.as_ref().unwrap().0, "feature:f1");
        assert!(r.describe().contains("feature:f1"), "{}", r.describe());
        // Without max_psi, PSI is recorded and nothing is acted on; features can be left out.
        let r = compare(&scores, &features, &baseline, &DriftSpec::default());
        assert!(r.exceeded.is_empty() && r.action.is_none() && r.features.len() == 2);
        let spec = DriftSpec {
            features: false,
            ..spec
        };
        assert!(
            compare(&scores, &features, &baseline, &spec)
                .features
                .is_empty()
        );
    }
}
