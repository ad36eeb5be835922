//! `scorer report`: a self-contained HTML page with its charts, rendered by a real headless
//! Chromium (Debian's, installed by the test command) to a PNG, with no console errors.

use chrono::Utc;

use crate::common::*;

/// The headless browser: `SCORER_TEST_CHROMIUM`, or `chromium` on the PATH.
fn chromium() -> String {
    std::env::var("SCORER_TEST_CHROMIUM").unwrap_or_else(|_| "chromium".to_string())
}

fn headless(args: &[&str]) -> std::process::Output {
    std::process::Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot start {} ({e}): run the suite with scripts/test.sh, which installs it",
                chromium()
            )
        })
}

#[test]
fn a_report_has_its_charts_and_renders_in_a_browser_without_errors() {
    let p = Project::new();
    p.add_model(&ModelOpts::mlp(8));
    let today = Utc::now().date_naive();
    let dates: Vec<String> = (0..3)
        .rev()
        .map(|d| (today - chrono::Duration::days(d)).to_string())
        .collect();
    for date in &dates {
        p.add_input("events", date, 4_000, 8, None);
    }
    p.add_job("daily", "events", "m", "daily_scores", "");
    for date in &dates {
        assert_ok(&p.scorer(&["run", "daily", "--date", date], None));
    }
    let html_path = p.path().join("daily.html");
    let out = p.scorer(
        &[
            "report",
            "daily",
            "--days",
            "7",
            "-o",
            html_path.to_str().unwrap(),
        ],
        None,
    );
    assert_ok(&out);
    let html = std::fs::read_to_string(&html_path).unwrap();
    assert_eq!(
        html.matches("<svg").count(),
        4,
        "score, PSI, rows, duration"
    );
    for title in [
        "Score distribution per day: score",
        "PSI against the previous successful run",
        "Rows written per run",
        "Duration per run",
    ] {
        assert!(html.contains(title), "{title}");
    }
    // Self-contained: nothing to fetch, nothing to run.
    for external in ["<script", " src=", "<link", "url("] {
        assert!(!html.contains(external), "{external}");
    }
    assert_eq!(html.matches("<tr><td>").count(), 3, "one row per run");

    let url = format!("file://{}", html_path.display());
    let png = p.path().join("daily.png");
    let shot = headless(&[
        &format!("--screenshot={}", png.display()),
        "--window-size=1000,1800",
        &url,
    ]);
    assert!(
        shot.status.success(),
        "{}",
        String::from_utf8_lossy(&shot.stderr)
    );
    let console: Vec<String> = String::from_utf8_lossy(&shot.stderr)
        .lines()
        .filter(|l| l.contains(":CONSOLE"))
        .map(String::from)
        .collect();
    assert!(console.is_empty(), "console messages: {console:?}");
    let size = std::fs::metadata(&png).unwrap().len();
    assert!(
        size > 20_000,
        "a {size}-byte screenshot is too small to hold four charts"
    );
    // The DOM as the browser built it still has the four charts.
    let dom = headless(&["--dump-dom", &url]);
    assert!(dom.status.success());
    assert_eq!(
        String::from_utf8_lossy(&dom.stdout).matches("<svg").count(),
        4
    );
}

#[test]
fn a_report_of_a_job_without_runs_says_so() {
    let p = Project::new();
    let out = p.scorer(&["report", "nothing", "-o", "r.html"], None);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("job nothing has no runs"),
        "{}",
        text(&out)
    );
}
