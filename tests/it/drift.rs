//! Score and input statistics with histograms in the ledger, and drift: the PSI of each output and
//! input feature against the job's previous successful run, acted on as `[drift]` says.

use std::sync::Arc;

use arrow::array::{ArrayRef, Float32Array, Int64Array};
use sqlx::sqlite::SqlitePool;

use crate::common::*;

/// Writes `rows` rows for `date`: ids 0.., features f0..f7 spread over [0, 1) plus `shift`.
fn write_day(p: &Project, date: &str, rows: usize, shift: f32) {
    let dir = p.path().join(format!("data/events/dt={date}"));
    std::fs::create_dir_all(&dir).unwrap();
    let mut cols: Vec<(String, ArrayRef)> = vec![(
        "id".into(),
        Arc::new(Int64Array::from_iter_values(0..rows as i64)) as ArrayRef,
    )];
    for f in 0..8u64 {
        let v: Vec<f32> = (0..rows as u64)
            .map(|r| {
                // A fixed scramble of the row number: spread over [0, 1), the same every day.
                let x = (r.wrapping_mul(2_654_435_761).wrapping_add(f * 97)) % 10_007;
                x as f32 / 10_007.0 + shift
            })
            .collect();
        cols.push((format!("f{f}"), Arc::new(Float32Array::from(v))));
    }
    let batch = arrow::record_batch::RecordBatch::try_from_iter(cols).unwrap();
    let out = std::fs::File::create(dir.join("part-0.parquet")).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(out, batch.schema(), None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

fn project(drift: &str) -> Project {
    let p = Project::new();
    p.add_model(&ModelOpts::mlp(8));
    let job = p.add_job("daily", "events", "m", "daily_scores", "");
    let text = std::fs::read_to_string(&job).unwrap();
    std::fs::write(&job, format!("{text}{drift}")).unwrap();
    for (date, shift) in [
        ("2026-11-20", 0.0),
        ("2026-11-21", 0.0),
        ("2026-11-22", 0.5),
    ] {
        write_day(&p, date, 20_000, shift);
    }
    p
}

fn run(p: &Project, date: &str) -> std::process::Output {
    p.scorer(&["run", "daily", "--date", date], None)
}

/// The ledger's newest row: (status, score_stats, feature_stats, drift) as JSON.
async fn newest(
    p: &Project,
) -> (
    String,
    serde_json::Value,
    serde_json::Value,
    serde_json::Value,
) {
    let pool = SqlitePool::connect(&p.sqlite_url()).await.unwrap();
    let (status, scores, features, drift): (
        String,
        Option<String>,
        Option<String>,
        Option<String>,
    ) = sqlx::query_as(
        "SELECT status, score_stats, feature_stats, drift FROM scorer_runs \
             ORDER BY started_at DESC LIMIT 1",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    let parse = |s: Option<String>| {
        s.map_or(serde_json::Value::Null, |s| {
            serde_json::from_str(&s).unwrap()
        })
    };
    (status, parse(scores), parse(features), parse(drift))
}

#[tokio::test]
async fn statistics_have_quantiles_and_a_stable_day_shows_no_drift() {
    let p = project("");
    assert_ok(&run(&p, "2026-11-20"));
    let (_, scores, features, drift) = newest(&p).await;
    let score = &scores["score"];
    assert_eq!(score["count"], 20_000);
    for q in ["p01", "p50", "p99"] {
        assert!(score["quantiles"][q].is_number(), "{score}");
    }
    assert!(score["std"].as_f64().unwrap() > 0.0);
    assert!(score["histogram"].as_array().unwrap().len() > 1);
    // A small input's features are summarised on every row.
    assert_eq!(features["f3"]["count"], 20_000);
    let p50 = features["f3"]["quantiles"]["p50"].as_f64().unwrap();
    assert!((p50 - 0.5).abs() < 0.05, "{p50}");
    assert!(drift.is_null(), "no baseline for the first run");

    assert_ok(&run(&p, "2026-11-21"));
    let (_, _, _, drift) = newest(&p).await;
    assert!(drift["scores"]["score"].as_f64().unwrap() < 0.05, "{drift}");
    assert!(drift["features"]["f0"].as_f64().unwrap() < 0.05, "{drift}");
    assert_eq!(drift["exceeded"].as_array().unwrap().len(), 0);
    // `scorer runs` shows the largest PSI of each run that had a baseline.
    let out = p.scorer(&["runs", "daily"], None);
    assert_ok(&out);
    let listing = String::from_utf8_lossy(&out.stdout).to_string();
    let mut lines = listing.lines();
    assert!(lines.next().unwrap().contains("  psi  "), "{listing}");
    let worst = drift["worst"][1].as_f64().unwrap();
    assert!(
        lines.next().unwrap().contains(&format!("{worst:.3}")),
        "{listing}"
    );
}

#[tokio::test]
async fn a_shift_past_max_psi_fails_the_run_when_the_job_says_fail() {
    let p = project("[drift]\nmax_psi = 0.2\non_drift = \"fail\"\n");
    assert_ok(&run(&p, "2026-11-21"));
    let out = run(&p, "2026-11-22");
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        text(&out).contains("PSI over drift.max_psi = 0.2"),
        "{}",
        text(&out)
    );
    assert!(text(&out).contains("feature:f0"), "{}", text(&out));
    let (status, _, _, drift) = newest(&p).await;
    assert_eq!(status, "failed");
    assert_eq!(drift["action"], "fail");
    assert!(drift["features"]["f0"].as_f64().unwrap() > 1.0, "{drift}");
    let rows = sqlite_count(
        &p,
        "SELECT count(*) FROM daily_scores WHERE ds = '2026-11-22'",
    )
    .await;
    assert_eq!(rows, Some(0), "nothing published");
}

#[tokio::test]
async fn a_shift_past_max_psi_only_warns_by_default() {
    let p = project("[drift]\nmax_psi = 0.2\n");
    assert_ok(&run(&p, "2026-11-21"));
    let out = run(&p, "2026-11-22");
    assert_ok(&out);
    assert!(
        text(&out).contains("publishing (drift.on_drift = \"warn\")"),
        "{}",
        text(&out)
    );
    let (status, _, _, drift) = newest(&p).await;
    assert_eq!(status, "succeeded");
    assert_eq!(drift["action"], "warn");
    assert!(drift["exceeded"].as_array().unwrap().len() >= 8, "{drift}");
    // Only features: their check can be turned off.
    let job = p.path().join("jobs/daily.toml");
    let text_ = std::fs::read_to_string(&job).unwrap() + "features = false\n";
    std::fs::write(&job, text_).unwrap();
    assert_ok(&run(&p, "2026-11-22"));
    let (_, _, _, drift) = newest(&p).await;
    assert!(drift["features"].as_object().unwrap().is_empty(), "{drift}");
}

/// The same on PostgreSQL: drift fails the run, the ledger's statistics, drift and metrics are
/// there as jsonb, and `scorer report` draws its charts from them.
#[tokio::test]
async fn drift_metrics_and_the_report_on_postgres() {
    let p = project("[drift]\nmax_psi = 0.2\non_drift = \"fail\"\n");
    let (url, pool) = fresh_pg("drift").await;
    let run_pg = |date: &str| p.scorer(&["run", "daily", "--date", date], Some(&url));
    assert_ok(&run_pg("2026-11-20"));
    assert_ok(&run_pg("2026-11-21"));
    let out = run_pg("2026-11-22");
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let (status, action, p50, latency): (String, String, f64, f64) = sqlx::query_as(
        "SELECT status, drift->>'action', \
                (score_stats->'score'->'quantiles'->>'p50')::float8, \
                (metrics->'batch_latency_ms'->>'p50')::float8 \
         FROM scorer.runs ORDER BY started_at DESC LIMIT 1",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!((status.as_str(), action.as_str()), ("failed", "fail"));
    assert!(p50 > 0.0 && latency > 0.0);
    let published: i64 =
        sqlx::query_scalar("SELECT count(*) FROM daily_scores WHERE ds = DATE '2026-11-22'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(published, 0);
    // The report reads the same ledger (its dates are not recent: a wide window).
    let page = p.path().join("r.html");
    let out = p.scorer(
        &[
            "report",
            "daily",
            "--days",
            "100000",
            "-o",
            page.to_str().unwrap(),
        ],
        Some(&url),
    );
    assert_ok(&out);
    let html = std::fs::read_to_string(&page).unwrap();
    assert_eq!(html.matches("<svg").count(), 4);
    assert_eq!(html.matches("class=\"failed\"").count(), 1);
}
