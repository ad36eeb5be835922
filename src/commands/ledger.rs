//! The commands that read the ledger: `scorer runs`, `scorer show` and `scorer report`.

use super::{GlobalArgs, load_job, open_ledger, registry};
use crate::cli::{OutputFormat, PromoteArgs, ReportArgs, RunsArgs, ShowArgs};
use crate::failure::{Failure, RunError};
use crate::ledger::browse;

/// Recent runs, newest first, as a table or JSON.
pub(super) async fn runs(g: &GlobalArgs, args: RunsArgs) -> Result<Vec<String>, RunError> {
    let label = args.job.clone().unwrap_or_else(|| "*".to_string());
    let lines = async {
        let db = open_ledger(g).await?;
        let runs = browse::recent(&db, args.job.as_deref(), args.last).await?;
        Ok::<_, Failure>(match args.format {
            OutputFormat::Table => {
                let mut lines = browse::table(&runs);
                let promotions =
                    crate::promote::recent_lines(&db, args.job.as_deref(), args.last).await?;
                if !promotions.is_empty() {
                    lines.push(String::new());
                    lines.push("promotions (newest first):".into());
                    lines.extend(promotions);
                }
                lines
            }
            OutputFormat::Json => vec![serde_json::to_string_pretty(&runs).unwrap_or_default()],
        })
    };
    lines.await.map_err(|f| f.in_job(&label))
}

/// `scorer promote`: the job's champion version changed, and recorded.
pub(super) async fn promote(g: &GlobalArgs, args: PromoteArgs) -> Result<Vec<String>, RunError> {
    let path = crate::job::locate(&args.job, &g.jobs_dir);
    let job = load_job(g, &args.job)?;
    let lines = async {
        let db = open_ledger(g).await?;
        let p =
            crate::promote::promote(&job, &path, &args.to, &args.reason, &registry(g), &db).await?;
        Ok::<_, Failure>(vec![format!(
            "scorer: promoted {} of job {} from {} to {}: {} (recorded in the ledger at {})",
            p.model,
            p.job,
            p.from_version.as_deref().unwrap_or("(none)"),
            p.to_version,
            p.action,
            db.target()
        )])
    };
    lines.await.map_err(|f| f.in_job(&job.name))
}

/// The HTML page of a job's recent runs, written to `-o`.
pub(super) async fn report(g: &GlobalArgs, args: ReportArgs) -> Result<Vec<String>, RunError> {
    let ReportArgs { job, days, output } = args;
    let lines = async {
        let db = open_ledger(g).await?;
        let html = crate::report::render(&db, &job, days).await?;
        std::fs::write(&output, html)
            .map_err(|e| Failure::Config(format!("cannot write {}: {e}", output.display())))?;
        Ok::<_, Failure>(vec![format!(
            "scorer: report of job {job} ({days} days) written to {}",
            output.display()
        )])
    };
    lines.await.map_err(|f| f.in_job(&job))
}

/// One run in full, as JSON.
pub(super) async fn show(g: &GlobalArgs, args: ShowArgs) -> Result<Vec<String>, RunError> {
    let run_id = args.run_id;
    let lines = async {
        let db = open_ledger(g).await?;
        let run = browse::one(&db, run_id).await?.ok_or_else(|| {
            Failure::Config(format!("no run {run_id} in the ledger at {}", db.target()))
        })?;
        Ok::<_, Failure>(vec![serde_json::to_string_pretty(&run).unwrap_or_default()])
    };
    lines.await.map_err(|f| f.in_job("*"))
}
