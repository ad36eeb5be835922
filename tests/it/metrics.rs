//! Run metrics: per-batch latency percentiles, rows/s and CPU seconds in the ledger, a slow run
//! flagged against the job's recent ones, `/metrics` served by the scheduler and parsed as
//! Prometheus parses it, and a run's metrics pushed to a real Pushgateway and read back.

use std::process::Stdio;

use chrono::Utc;

use crate::common::*;

/// A text-format exposition, parsed by a Prometheus text-format parser.
fn parse(text: &str) -> prometheus_parse::Scrape {
    prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).unwrap()
}

/// The value of `metric` with label `job` = `job`.
fn value(scrape: &prometheus_parse::Scrape, metric: &str, job: &str) -> Option<f64> {
    scrape
        .samples
        .iter()
        .find(|s| s.metric == metric && s.labels.get("job") == Some(job))
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => f64::NAN,
        })
}

async fn newest_metrics(p: &Project) -> serde_json::Value {
    let pool = sqlx::SqlitePool::connect(&p.sqlite_url()).await.unwrap();
    let text: String =
        sqlx::query_scalar("SELECT metrics FROM scorer_runs ORDER BY started_at DESC LIMIT 1")
            .fetch_one(&pool)
            .await
            .unwrap();
    serde_json::from_str(&text).unwrap()
}

#[tokio::test]
async fn a_run_records_its_metrics_and_a_slow_one_is_flagged() {
    let p = Project::new();
    p.add_model(&ModelOpts::mlp(8));
    p.add_input("events", DATE, 2_000, 8, None);
    let job = p.add_job("daily", "events", "m", "daily_scores", "");
    let job_text = std::fs::read_to_string(&job).unwrap() + "[metrics]\nslow_factor = 2.0\n";
    std::fs::write(&job, job_text).unwrap();
    for _ in 0..3 {
        assert_ok(&p.run("daily", None));
    }
    let m = newest_metrics(&p).await;
    for q in ["p50", "p95", "p99", "max"] {
        assert!(m["batch_latency_ms"][q].as_f64().unwrap() > 0.0, "{m}");
    }
    assert!(m["rows_per_second"].as_f64().unwrap() > 0.0, "{m}");
    assert!(m["cpu_seconds"].as_f64().unwrap() > 0.0, "{m}");
    assert!(m.get("slow").is_none(), "{m}");

    // The same date with 150 times the rows: over twice the median of the three before.
    std::fs::remove_dir_all(p.path().join(format!("data/events/dt={DATE}"))).unwrap();
    p.add_input("events", DATE, 300_000, 8, None);
    let out = p.run("daily", None);
    assert_ok(&out);
    assert!(
        text(&out).contains("performance regression"),
        "{}",
        text(&out)
    );
    let m = newest_metrics(&p).await;
    let slow = &m["slow"];
    assert_eq!(slow["over_runs"], 3, "{m}");
    assert!(slow["seconds"].as_f64().unwrap() > 2.0 * slow["median_seconds"].as_f64().unwrap());
}

/// Every scorer metric the alert rules (deploy/prometheus) and the Grafana dashboard
/// (deploy/grafana) name, as samples are named (`scorer_runs_total` for the counter).
fn deploy_metric_names() -> std::collections::BTreeSet<String> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut names = std::collections::BTreeSet::new();
    for file in [
        "deploy/prometheus/scorer-alerts.yml",
        "deploy/grafana/scorer-dashboard.json",
    ] {
        let text = std::fs::read_to_string(root.join(file)).unwrap();
        let mut rest = text.as_str();
        while let Some(at) = rest.find("scorer_") {
            let name: String = rest[at..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect();
            rest = &rest[at + name.len()..];
            names.insert(name);
        }
    }
    names
}

#[tokio::test(flavor = "multi_thread")]
async fn the_scheduler_serves_metrics_for_prometheus() {
    let deploy_names = deploy_metric_names();
    assert!(deploy_names.len() >= 10, "{deploy_names:?}");
    let p = Project::new();
    p.add_model(&ModelOpts::mlp(8));
    let today = Utc::now().date_naive().to_string();
    p.add_input("events", &today, 2_000, 8, None);
    std::fs::create_dir_all(p.path().join("jobs")).unwrap();
    std::fs::write(
        p.path().join("jobs/first.toml"),
        "name = \"first\"\nschedule = \"* * * * * *\"\n[input]\n\
         url = \"data/events/dt={{ ds }}/*.parquet\"\nid_column = \"id\"\n\
         [model]\nname = \"m\"\nversion = \"1\"\n[output]\ntable = \"first_scores\"\n\
         [drift]\nmax_psi = 0.25\n",
    )
    .unwrap();
    let log = p.path().join("s.log");
    let child = p
        .command(
            &[
                "schedule",
                "--reload-every",
                "200ms",
                "--metrics-addr",
                "127.0.0.1:0",
            ],
            None,
        )
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    // Killed if the test fails before it stops the scheduler: a scheduler left behind would
    // fire its every-second job for as long as the machine runs.
    let child = Spawned::new(child);
    let mut addr = String::new();
    wait_for("the metrics endpoint", 30, || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if let Some(line) = text.lines().find(|l| l.contains("serving metrics")) {
            addr = line.split("bound=").nth(1).unwrap_or("").trim().to_string();
        }
        let found = !addr.is_empty();
        async move { found }
    })
    .await;
    let url = format!("http://{addr}/metrics");
    // Polled until a run has ended and shows there with every metric the alert rules and the
    // dashboard in deploy/ name (the PSI needs a second run, against the first).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let scrape = loop {
        if let Ok(response) = reqwest::get(&url).await {
            let parsed = parse(&response.text().await.unwrap_or_default());
            let served: std::collections::BTreeSet<&str> =
                parsed.samples.iter().map(|s| s.metric.as_str()).collect();
            if value(&parsed, "scorer_last_run_success", "first") == Some(1.0)
                && deploy_names.iter().all(|n| served.contains(n.as_str()))
            {
                break parsed;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no succeeded run on /metrics with all of {deploy_names:?} after 60 s:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(
        value(&scrape, "scorer_last_run_rows_written", "first"),
        Some(2_000.0)
    );
    // The job's facts the alert rules compare against: its schedule fires every second, and
    // its drift.max_psi.
    assert_eq!(
        value(&scrape, "scorer_job_schedule_interval_seconds", "first"),
        Some(1.0)
    );
    assert_eq!(value(&scrape, "scorer_job_max_psi", "first"), Some(0.25));
    assert!(value(&scrape, "scorer_last_run_seconds", "first").unwrap() > 0.0);
    let runs = scrape
        .samples
        .iter()
        .find(|s| {
            s.metric == "scorer_runs_total"
                && s.labels.get("job") == Some("first")
                && s.labels.get("status") == Some("succeeded")
        })
        .expect("scorer_runs_total{status=\"succeeded\"}");
    // OpenMetrics names the family `scorer_runs`, its sample `scorer_runs_total`.
    assert!(matches!(
        runs.value,
        prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Untyped(v) if v >= 1.0
    ));
    let latency = scrape
        .samples
        .iter()
        .filter(|s| s.metric == "scorer_last_run_batch_latency_seconds")
        .count();
    assert_eq!(latency, 4, "p50, p95, p99 and max");
    let missing = reqwest::get(format!("http://{addr}/other")).await.unwrap();
    assert_eq!(missing.status().as_u16(), 404);
    let mut child = child.take();
    signal(child.id(), "TERM");
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert_eq!(status.code(), Some(0));
}

#[tokio::test]
async fn a_run_pushes_its_metrics_to_a_pushgateway() {
    let gateway = std::env::var("SCORER_TEST_PUSHGATEWAY_URL").expect(
        "SCORER_TEST_PUSHGATEWAY_URL is not set: run the suite with scripts/test.sh, which starts \
         a Pushgateway",
    );
    let p = Project::new();
    p.add_model(&ModelOpts::mlp(8));
    p.add_input("events", DATE, 3_000, 8, None);
    // A job name of this test's own, so parallel tests and reruns do not meet in the gateway.
    let name = format!("push_{}", uuid::Uuid::now_v7().simple());
    p.add_job(&name, "events", "m", "pushed_scores", "");
    let out = p.scorer_env(
        &["run", &name, "--date", DATE],
        None,
        &[("SCORER_PUSHGATEWAY_URL", gateway.as_str())],
    );
    assert_ok(&out);
    assert!(!text(&out).contains("metrics not pushed"), "{}", text(&out));
    let text = reqwest::get(format!("{gateway}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let scrape = parse(&text);
    assert_eq!(
        value(&scrape, "scorer_last_run_rows_written", &name),
        Some(3_000.0)
    );
    assert_eq!(value(&scrape, "scorer_last_run_success", &name), Some(1.0));
    assert!(value(&scrape, "push_time_seconds", &name).unwrap() > 0.0);
}
