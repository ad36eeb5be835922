//! The command line as users meet it: validation that reports every problem, clear errors for bad
//! jobs and models, and the documented exit codes.

use crate::common::*;

#[test]
fn validate_with_a_date_checks_every_footer() {
    let p = Project::new();
    p.add_model(&ModelOpts::mlp(8));
    p.add_input("events", DATE, 3_000, 8, None);
    p.add_job("daily", "events", "m", "daily", "");
    let out = p.scorer(&["validate", "jobs/daily.toml", "--date", DATE], None);
    assert_ok(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("3 Parquet objects, 3000 rows"), "{stdout}");
    // and the first rows went through the features and the model, as a run's would
    assert!(stdout.contains("sample: the first"), "{stdout}");
}

#[test]
fn validate_reports_every_problem_at_once() {
    let p = Project::new();
    p.add_model(&ModelOpts::mlp(8));
    p.add_input("events", DATE, 3_000, 6, None);
    // Lists a feature the model does not have room for, and the files lack f6/f7/f8.
    let features = "features = [\"f0\",\"f1\",\"f2\",\"f3\",\"f4\",\"f5\",\"f6\",\"f7\",\"f8\"]";
    p.add_job("daily", "events", "m", "daily", features);
    let out = p.scorer(&["validate", "jobs/daily.toml", "--date", DATE], None);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("lists 9 columns but model m version 1 takes 8"),
        "{stderr}"
    );
    for file in ["part-00000", "part-00001", "part-00002"] {
        for col in ["`f6`", "`f7`", "`f8`"] {
            assert!(
                stderr.lines().any(|l| l.contains(file) && l.contains(col)),
                "no line for {file} {col}:\n{stderr}"
            );
        }
    }
}

#[test]
fn unknown_keys_are_answered_with_the_valid_names() {
    let p = Project::new();
    let job = p.add_job("daily", "events", "m", "daily", "on_nul = \"skip\"");
    let out = p.scorer(&["validate", job.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("on_nul") && stderr.contains("on_null"),
        "{stderr}"
    );
    assert!(stderr.contains("daily.toml"), "{stderr}");
}

#[test]
fn a_model_whose_weights_changed_is_refused() {
    let p = Project::new();
    let dir = p.add_model(&ModelOpts::mlp(8));
    p.add_input("events", DATE, 100, 8, None);
    p.add_job("daily", "events", "m", "daily", "");
    let w = dir.join("model.safetensors");
    let mut bytes = std::fs::read(&w).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&w, bytes).unwrap();
    let out = p.run("jobs/daily.toml", None);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("sha256"));
}

#[test]
fn a_missing_tensor_is_named() {
    let p = Project::new();
    let dir = p.add_model(&ModelOpts::mlp(8));
    p.add_input("events", DATE, 100, 8, None);
    p.add_job("daily", "events", "m", "daily", "");
    let toml = dir.join("model.toml");
    let text_ = std::fs::read_to_string(&toml).unwrap();
    std::fs::write(
        &toml,
        text_.replace("layers.1.bias", "layers.1.bias_missing"),
    )
    .unwrap();
    let out = p.scorer(&["validate", "jobs/daily.toml"], None);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("`layers.1.bias_missing` is missing"),
        "{stderr}"
    );
}

#[test]
fn no_input_for_the_date_is_an_input_error() {
    let p = Project::new();
    p.add_model(&ModelOpts::mlp(8));
    p.add_job("daily", "events", "m", "daily", "");
    let out = p.run("jobs/daily.toml", None);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("dt={DATE}")) && stderr.contains("no Parquet objects"),
        "{stderr}"
    );
}

#[test]
fn date_scheduled_takes_the_date_from_the_jobs_schedule() {
    let p = Project::new();
    p.add_model(&ModelOpts::mlp(8));
    p.add_job("daily", "events", "m", "daily", "");
    // Without a schedule there is no date to take: a configuration error naming the fix.
    let out = p.scorer(&["run", "daily", "--date", "scheduled"], None);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("needs the job's `schedule`"),
        "{}",
        text(&out)
    );
    // Scheduled every minute: the latest firing scores the minute before it, today's date or
    // (just after midnight UTC) yesterday's; no input for it is then an input error naming it.
    let path = p.path().join("jobs/daily.toml");
    let job = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, format!("schedule = \"* * * * *\"\n{job}")).unwrap();
    let out = p.scorer(&["run", "daily", "--date", "scheduled"], None);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let today = chrono::Utc::now().date_naive();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("dt={today}"))
            || stderr.contains(&format!("dt={}", today.pred_opt().unwrap())),
        "{stderr}"
    );
}

#[test]
fn a_run_logs_its_progress_when_stderr_is_not_a_terminal_unless_quiet() {
    let p = Project::new();
    p.add_model(&ModelOpts::mlp(8));
    p.add_input("events", DATE, 400_000, 8, None);
    p.add_job("daily", "events", "m", "daily", "");
    let out = p.scorer(
        &["run", "daily", "--date", DATE, "--progress-every", "100ms"],
        None,
    );
    assert!(out.status.success(), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains(" progress "))
        .collect();
    assert!(!lines.is_empty(), "{stderr}");
    assert!(
        lines
            .iter()
            .all(|l| l.contains("rows_total=400000") && l.contains("rows_done=")),
        "{lines:?}"
    );
    let quiet = p.scorer(
        &[
            "run",
            "daily",
            "--date",
            DATE,
            "--progress-every",
            "100ms",
            "--quiet",
        ],
        None,
    );
    assert!(quiet.status.success(), "{}", text(&quiet));
    assert!(!String::from_utf8_lossy(&quiet.stderr).contains(" progress "));
}

#[test]
fn help_shows_an_example_and_the_exit_codes() {
    let p = Project::new();
    let out = p.scorer(&["--help"], None);
    assert_ok(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("scorer run quickstart --date"), "{stdout}");
    assert!(stdout.contains("Exit codes"), "{stdout}");
}
