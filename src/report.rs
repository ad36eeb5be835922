//! `scorer report JOB --days N -o report.html`: one self-contained HTML page about a job's recent
//! runs, for the people who watch it: the score distribution per day, the PSI against the
//! previous run, rows and duration per run, and the runs themselves. Charts are drawn by
//! `plotters` as inline SVG; the page loads nothing from anywhere.

use chrono::{NaiveDate, Utc};
use plotters::prelude::*;
use serde_json::Value;

use crate::db::Database;
use crate::failure::Failure;

/// Most runs a report looks at.
const MAX_RUNS: u32 = 2000;

/// One run as the report uses it.
struct Run {
    date: NaiveDate,
    started: String,
    status: String,
    rows: f64,
    seconds: Option<f64>,
    psi: Option<f64>,
    /// Per output column: (p05, p25, p50, p75, p95).
    quantiles: Vec<(String, [Option<f64>; 5])>,
    error: String,
}

fn run_of(v: &Value) -> Option<Run> {
    let text = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let date = text("logical_date").get(..10)?.parse().ok()?;
    let quantiles = v
        .get("score_stats")
        .and_then(Value::as_object)
        .map(|cols| {
            cols.iter()
                .map(|(name, s)| {
                    let q = |k: &str| {
                        s.get("quantiles")
                            .and_then(|q| q.get(k))
                            .and_then(Value::as_f64)
                    };
                    (
                        name.clone(),
                        [q("p05"), q("p25"), q("p50"), q("p75"), q("p95")],
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    Some(Run {
        date,
        started: text("started_at"),
        status: text("status"),
        rows: v.get("rows_written").and_then(Value::as_f64).unwrap_or(0.0),
        seconds: v
            .get("stage_seconds")
            .and_then(|s| s.get("total"))
            .and_then(Value::as_f64),
        psi: v
            .get("drift")
            .and_then(|d| d.get("worst"))
            .and_then(|w| w.get(1))
            .and_then(Value::as_f64),
        quantiles,
        error: text("error"),
    })
}

/// A line chart as an SVG document: `series` are (name, one value or gap per x), `x` labels the
/// points; `from_zero` starts the y axis at 0 and shows at least up to its value.
fn line_chart(
    title: &str,
    y_label: &str,
    x: &[String],
    series: &[(String, Vec<Option<f64>>)],
    from_zero: Option<f64>,
) -> String {
    let mut svg = String::new();
    let values: Vec<f64> = series
        .iter()
        .flat_map(|(_, v)| v.iter().flatten().copied())
        .collect();
    let (lo, hi) = values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    let (lo, hi) = if lo.is_finite() && hi.is_finite() {
        let pad = ((hi - lo) * 0.08).max(hi.abs() * 0.01).max(1e-9);
        (lo - pad, hi + pad)
    } else {
        (0.0, 1.0)
    };
    let (lo, hi) = match from_zero {
        Some(at_least) => (0.0, hi.max(at_least)),
        None => (lo, hi),
    };
    let n = x.len().max(1);
    {
        let root = SVGBackend::with_string(&mut svg, (900, 320)).into_drawing_area();
        let drawn: Result<(), Box<dyn std::error::Error>> = (|| {
            root.fill(&WHITE)?;
            let mut chart = ChartBuilder::on(&root)
                .caption(title, ("sans-serif", 20))
                .margin(12)
                .x_label_area_size(40)
                .y_label_area_size(70)
                .build_cartesian_2d(-0.5f64..(n as f64 - 0.5), lo..hi)?;
            chart
                .configure_mesh()
                .y_desc(y_label)
                .x_labels(n.min(12))
                .x_label_formatter(&|v| {
                    let i = v.round();
                    if (v - i).abs() < 1e-6 && i >= 0.0 {
                        x.get(i as usize).cloned().unwrap_or_default()
                    } else {
                        String::new()
                    }
                })
                .draw()?;
            for (k, (name, points)) in series.iter().enumerate() {
                let color = Palette99::pick(k).to_rgba();
                let pts: Vec<(f64, f64)> = points
                    .iter()
                    .enumerate()
                    .filter_map(|(i, v)| v.map(|v| (i as f64, v)))
                    .collect();
                chart
                    .draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))?
                    .label(name.as_str())
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color));
                chart.draw_series(pts.into_iter().map(|p| Circle::new(p, 3, color.filled())))?;
            }
            if series.len() > 1 {
                chart
                    .configure_series_labels()
                    .background_style(WHITE.mix(0.8))
                    .border_style(BLACK)
                    .draw()?;
            }
            root.present()?;
            Ok(())
        })();
        if let Err(e) = drawn {
            tracing::warn!(chart = title, error = %e, "a chart could not be drawn");
        }
    }
    svg
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The report of `job`'s runs whose logical date is within `days` days of today, as HTML.
pub async fn render(db: &Database, job: &str, days: u32) -> Result<String, Failure> {
    let rows = crate::ledger::browse::recent(db, Some(job), MAX_RUNS).await?;
    let since = Utc::now().date_naive() - chrono::Duration::days(i64::from(days));
    let mut runs: Vec<Run> = rows
        .iter()
        .filter_map(run_of)
        .filter(|r| r.date >= since)
        .collect();
    if runs.is_empty() {
        return Err(Failure::Config(format!(
            "job {job} has no runs with a logical date in the last {days} days in {}",
            db.target()
        )));
    }
    // Oldest first.
    runs.reverse();
    // Per date, its newest succeeded run: what the table holds.
    let mut by_date: std::collections::BTreeMap<NaiveDate, &Run> = Default::default();
    for r in runs.iter().filter(|r| r.status == "succeeded") {
        by_date.insert(r.date, r);
    }
    let dates: Vec<String> = by_date
        .keys()
        .map(|d| d.format("%m-%d").to_string())
        .collect();
    let mut charts = Vec::new();
    let columns: Vec<String> = by_date
        .values()
        .flat_map(|r| r.quantiles.iter().map(|(c, _)| c.clone()))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    for column in &columns {
        let names = ["p05", "p25", "p50", "p75", "p95"];
        let series: Vec<(String, Vec<Option<f64>>)> = names
            .iter()
            .enumerate()
            .map(|(k, name)| {
                let values = by_date
                    .values()
                    .map(|r| {
                        r.quantiles
                            .iter()
                            .find(|(c, _)| c == column)
                            .and_then(|(_, q)| q[k])
                    })
                    .collect();
                (name.to_string(), values)
            })
            .collect();
        charts.push(line_chart(
            &format!("Score distribution per day: {column}"),
            column,
            &dates,
            &series,
            None,
        ));
    }
    charts.push(line_chart(
        "PSI against the previous successful run",
        "largest PSI",
        &dates,
        &[("PSI".into(), by_date.values().map(|r| r.psi).collect())],
        // Up to 0.3 at least: the usual "shift" threshold (0.25) stays in view.
        Some(0.3),
    ));
    let run_labels: Vec<String> = runs
        .iter()
        .map(|r| r.date.format("%m-%d").to_string())
        .collect();
    charts.push(line_chart(
        "Rows written per run",
        "rows",
        &run_labels,
        &[("rows".into(), runs.iter().map(|r| Some(r.rows)).collect())],
        Some(1.0),
    ));
    charts.push(line_chart(
        "Duration per run",
        "seconds",
        &run_labels,
        &[("seconds".into(), runs.iter().map(|r| r.seconds).collect())],
        Some(0.0),
    ));
    let table: String = runs
        .iter()
        .rev()
        .take(50)
        .map(|r| {
            format!(
                "<tr><td>{}</td><td>{}</td><td class=\"{}\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                r.date,
                escape(&r.started),
                escape(&r.status),
                escape(&r.status),
                r.rows,
                r.seconds.map_or(String::new(), |s| format!("{s:.2}")),
                r.psi.map_or(String::new(), |p| format!("{p:.3}")),
                escape(&r.error),
            )
        })
        .collect();
    let figures: String = charts
        .iter()
        .map(|svg| format!("<figure>{svg}</figure>\n"))
        .collect();
    Ok(format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>scorer report: {job}</title>\n<style>\
         body{{font-family:sans-serif;margin:2em;color:#222}} figure{{margin:1em 0}}\
         table{{border-collapse:collapse}} td,th{{border:1px solid #ccc;padding:2px 8px;font-size:13px}}\
         .failed,.superseded{{color:#b00}} .succeeded{{color:#070}}</style></head>\n<body>\n\
         <h1>scorer report: {job}</h1>\n<p>{n} runs with a logical date since {since}, from {db}; \
         generated {now}.</p>\n{figures}<h2>Runs, newest first</h2>\n<table>\
         <tr><th>date</th><th>started</th><th>status</th><th>rows</th><th>seconds</th><th>PSI</th><th>error</th></tr>\n\
         {table}</table>\n</body></html>\n",
        job = escape(job),
        n = runs.len(),
        db = escape(db.target()),
        now = Utc::now().format("%Y-%m-%d %H:%M UTC"),
    ))
}
