//! `scorer runs` and `scorer show` read the ledger as people and tools do, on both engines.

use crate::common::{DATE, ModelOpts, Project, assert_ok, fresh_pg, text};

fn project() -> Project {
    let p = Project::new();
    p.add_model(&ModelOpts::mlp(8));
    p.add_input("events", DATE, 3_000, 8, None);
    p.add_job("daily", "events", "m", "daily", "");
    p.add_job("other", "missing", "m", "other", "");
    p
}

fn json(out: &std::process::Output) -> serde_json::Value {
    assert_ok(out);
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(out)))
}

fn check(p: &Project, db: Option<&str>) {
    assert_ok(&p.run("daily", db));
    let failed = p.run("other", db);
    assert_eq!(failed.status.code(), Some(3), "{}", text(&failed));

    // Newest first; the table names both jobs and the failure's reason.
    let table = p.scorer(&["runs"], db);
    assert_ok(&table);
    let lines: Vec<String> = String::from_utf8_lossy(&table.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(
        lines[1].contains("other") && lines[1].contains("failed"),
        "{lines:?}"
    );
    assert!(lines[1].contains("no Parquet objects"), "{lines:?}");
    assert!(
        lines[2].contains("daily") && lines[2].contains("succeeded"),
        "{lines:?}"
    );

    // JSON for tools, filtered by job.
    let runs = json(&p.scorer(&["runs", "daily", "--format", "json"], db));
    let runs = runs.as_array().unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["rows_written"].as_i64(), Some(3_000));
    assert!(
        runs[0]["stage_seconds"]["total"].as_f64().is_some(),
        "{}",
        runs[0]
    );
    let run_id = runs[0]["run_id"].as_str().unwrap().to_string();

    // One run in full.
    let run = json(&p.scorer(&["show", &run_id], db));
    assert_eq!(run["status"], "succeeded");
    assert_eq!(run["inputs"].as_array().map(Vec::len), Some(3), "{run}");
    assert!(run["inputs"][0]["etag"].is_string(), "{run}");
    assert_eq!(
        run["model_sha256"].as_str().map(str::len),
        Some(64),
        "{run}"
    );
    assert!(run["memory"]["peak_rss_bytes"].as_u64().is_some(), "{run}");
    // A job without `row_groups_in_flight`: the run chose it from the footers and its threads,
    // by the rule (README, "Job file reference"), and recorded what it chose from.
    let f = &run["memory"]["in_flight"];
    assert_eq!(f["chosen_by"], "auto", "{run}");
    let (largest, threads, budget) = (
        f["largest_row_group_bytes"].as_u64().unwrap(),
        f["threads"].as_u64().unwrap(),
        f["budget_bytes"].as_u64().unwrap(),
    );
    assert!(largest > 0 && threads >= 1, "{run}");
    let rule = (threads / 4).max(1).min((budget / largest).max(1)).min(64);
    assert_eq!(f["row_groups"].as_u64(), Some(rule), "{run}");
    assert!(
        run["score_stats"]["score"]["count"].as_u64() == Some(3_000),
        "{run}"
    );
    // The audit trail: who ran it, on which host, with which job file, scorer and model.
    let job_file = std::fs::read(p.path().join("jobs/daily.toml")).unwrap();
    let sha = {
        use sha2::{Digest, Sha256};
        hex::encode(Sha256::digest(&job_file))
    };
    assert_eq!(run["job_sha256"].as_str(), Some(sha.as_str()), "{run}");
    assert!(
        run["os_user"].as_str().is_some_and(|u| u.contains("uid ")),
        "{run}"
    );
    assert!(run["host"].as_str().is_some_and(|h| !h.is_empty()), "{run}");
    assert_eq!(
        run["scorer_version"].as_str(),
        Some(env!("CARGO_PKG_VERSION"))
    );

    let missing = p.scorer(&["show", "01a21780-4235-7297-a627-0f1fcde5793d"], db);
    assert_eq!(missing.status.code(), Some(2), "{}", text(&missing));
    assert!(
        text(&missing).contains("no run 01a21780"),
        "{}",
        text(&missing)
    );
}

#[test]
fn runs_and_show_read_the_sqlite_ledger() {
    check(&project(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_and_show_read_the_postgres_ledger() {
    let (url, _pool) = fresh_pg("browse").await;
    let p = project();
    tokio::task::spawn_blocking(move || check(&p, Some(&url)))
        .await
        .unwrap();
}

/// A job that sets `input.row_groups_in_flight` gets exactly that, recorded as the job's choice.
#[test]
fn row_groups_in_flight_set_by_the_job_is_kept_and_recorded() {
    let p = Project::new();
    p.add_model(&ModelOpts::mlp(8));
    p.add_input("events", DATE, 3_000, 8, None);
    p.add_job("tuned", "events", "m", "tuned", "row_groups_in_flight = 3");
    assert_ok(&p.run("tuned", None));
    let runs = json(&p.scorer(&["runs", "tuned", "--format", "json"], None));
    let run_id = runs[0]["run_id"].as_str().unwrap().to_string();
    let run = json(&p.scorer(&["show", &run_id], None));
    let f = &run["memory"]["in_flight"];
    assert_eq!(f["chosen_by"], "job", "{run}");
    assert_eq!(f["row_groups"].as_u64(), Some(3), "{run}");
}
