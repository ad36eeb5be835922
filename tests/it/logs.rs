//! Structured logs: with `--log-format json` every line is one JSON object, and every event of a
//! run carries the run's span (job, date, run id) and its stage's.

use crate::common::*;

#[test]
fn every_event_of_a_run_carries_its_run_and_stage() {
    let p = Project::new();
    p.add_model(&ModelOpts::mlp(8));
    p.add_input("events", DATE, 20_000, 8, None);
    p.add_job("daily", "events", "m", "daily_scores", "");
    let out = p.scorer(
        &["--log-format", "json", "run", "daily", "--date", DATE],
        None,
    );
    assert_ok(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<serde_json::Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let message = |l: &serde_json::Value| l["fields"]["message"].as_str().unwrap_or("").to_string();
    let started = lines
        .iter()
        .find(|l| message(l) == "run started")
        .expect("a `run started` line");
    let run_id = started["fields"]["run_id"].as_str().unwrap().to_string();
    let mut stages = std::collections::BTreeSet::new();
    for l in lines
        .iter()
        .filter(|l| l["target"].as_str().unwrap_or("").starts_with("scorer"))
    {
        let spans = l["spans"]
            .as_array()
            .unwrap_or_else(|| panic!("no spans: {l}"));
        let run = &spans[0];
        assert_eq!(run["name"], "run", "{l}");
        assert_eq!(run["job"], "daily", "{l}");
        assert_eq!(run["date"], DATE, "{l}");
        // The run id is known once the run has its lock; every event from then on names it.
        if run.get("run_id").is_some() {
            assert_eq!(run["run_id"], run_id.as_str(), "{l}");
        }
        if let Some(stage) = spans.get(1) {
            assert_eq!(stage["name"], "stage");
            stages.insert(stage["stage"].as_str().unwrap().to_string());
        }
    }
    let scored = lines
        .iter()
        .find(|l| message(l) == "first batch scored")
        .expect("a `first batch scored` line");
    assert_eq!(scored["span"]["stage"], "score", "{scored}");
    assert_eq!(scored["spans"][0]["run_id"], run_id.as_str());
    assert!(stages.contains("score"), "{stages:?}");
    let done = lines
        .iter()
        .find(|l| message(l) == "run succeeded")
        .unwrap();
    assert_eq!(done["spans"][0]["run_id"], run_id.as_str());
}
