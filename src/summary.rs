//! What `scorer run` and `scorer gc` print on stdout when they succeed: where the rows went and
//! how to look at them, or what the sweep removed.

use crate::run::RunReport;
use crate::run::sweep::SweepReport;
use crate::sink::Destination;

/// The lines `scorer run` prints after a successful run.
pub fn run_lines(s: &RunReport) -> Vec<String> {
    let date = s.date.format("%Y-%m-%d");
    let secs = s.stage_seconds.get("total").copied().unwrap_or_default();
    let mut lines = vec![format!(
        "scorer: job {} for {date}: {} rows read from {} objects, {} written, {} rejected, in {secs:.2} s",
        s.job, s.rows_read, s.objects, s.rows_written, s.rows_rejected
    )];
    match &s.output {
        Destination::Objects(location) => {
            lines.push(format!(
                "  results: Parquet files under {}, listed in {}/{} (run {})",
                location.url,
                location.url.trim_end_matches('/'),
                crate::sink::objects::MANIFEST,
                s.run_id
            ));
            lines.push(format!("  ledger:  {}", s.db));
        }
        Destination::Table(table) if s.is_sqlite => {
            let path = s.db.trim_start_matches("sqlite ");
            let table = table.sqlite_name();
            lines.push(format!(
                "  results: table {table} in SQLite file {path} (run {})",
                s.run_id
            ));
            lines.push(format!(
                "  query:   sqlite3 {path} \"SELECT * FROM {table} WHERE ds = '{date}' LIMIT 10\""
            ));
        }
        Destination::Table(table) => {
            lines.push(format!(
                "  results: table {table} in {} (run {})",
                s.db, s.run_id
            ));
            lines.push(format!(
                "  query:   psql \"$DATABASE_URL\" -c \"SELECT * FROM {table} WHERE ds = DATE '{date}' LIMIT 10\""
            ));
        }
    }
    lines
}

/// The lines `scorer gc` prints.
pub fn sweep_lines(r: &SweepReport) -> Vec<String> {
    let mut lines = vec![format!(
        "scorer gc: {} dead run(s) marked abandoned, {} running run(s) left alone",
        r.abandoned.len(),
        r.alive
    )];
    for a in &r.abandoned {
        let removed = if a.removed.is_empty() {
            "nothing left to remove".to_string()
        } else {
            format!("removed {}", a.removed.join(", "))
        };
        lines.push(format!(
            "  run {} (job {}, {}, output {}): {removed}",
            a.run.run_id, a.run.job, a.run.logical_date, a.run.output
        ));
    }
    for (run, why) in &r.failed {
        lines.push(format!(
            "  run {} (job {}, {}): not cleaned up, left `running`: {why}",
            run.run_id, run.job, run.logical_date
        ));
    }
    lines
}
