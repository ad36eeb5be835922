//! `scorer run --from-ledger RUN`: a pinned run reproduces a recorded one, so its plan must
//! name the same model bytes and the same input objects, or the run fails saying what changed.

use crate::failure::Failure;
use crate::ledger::RecordedRun;
use crate::plan::RunPlan;

/// A pinned run's plan must be the recorded run's: the same model bytes and the same input
/// objects, each with its recorded etag (or size and time, where a store gives no etag).
pub fn check_pin(plan: &RunPlan, pin: &RecordedRun) -> Result<(), Failure> {
    let cannot = |why: String| Failure::NotReproducible {
        run_id: pin.run_id,
        why,
    };
    if plan.model.sha256 != pin.model_sha256 {
        return Err(cannot(format!(
            "model {} version {} has sha256 {}, the run used {}",
            plan.model.name, plan.model.version, plan.model.sha256, pin.model_sha256
        )));
    }
    let now: std::collections::BTreeMap<&str, &crate::source::CheckedObject> = plan
        .input
        .objects
        .iter()
        .map(|o| (o.url.as_str(), o.as_ref()))
        .collect();
    for was in &pin.inputs {
        let Some(o) = now.get(was.url.as_str()) else {
            return Err(cannot(format!("input {} is gone", was.url)));
        };
        let same = match (&was.etag, &o.meta.e_tag) {
            (Some(a), Some(b)) => a == b,
            _ => was.size == o.meta.size && was.last_modified == o.meta.last_modified,
        };
        if !same {
            return Err(cannot(format!(
                "input {} changed (etag {} then, {} now)",
                was.url,
                was.etag.as_deref().unwrap_or("none"),
                o.meta.e_tag.as_deref().unwrap_or("none")
            )));
        }
    }
    if let Some(extra) = plan
        .input
        .objects
        .iter()
        .find(|o| !pin.inputs.iter().any(|w| w.url == o.url))
    {
        return Err(cannot(format!("input {} was not there then", extra.url)));
    }
    Ok(())
}
