//! `scorer backfill` and `scorer rerun`: a range of dates, a table of how each went, and the exit
//! code of the worst one.

use super::{GlobalArgs, context, load_job, print_before_failing};
use crate::cli::{BackfillArgs, RerunArgs};
use crate::error::exit;
use crate::failure::{Failure, RunError};
use crate::run::{self, signals};
use crate::schedule::backfill::{self, Options};

/// Runs every date of the range that has no succeeded run (or every date, with --force).
pub(super) async fn backfill(g: &GlobalArgs, args: BackfillArgs) -> Result<Vec<String>, RunError> {
    let opts = Options {
        from: args.from,
        to: args.to,
        parallel: args.parallel,
        force: args.force,
        device: args.device,
        allow_row_drop: args.allow_row_drop,
        from_ledger: false,
    };
    dates(g, &args.job, &opts).await
}

/// Runs every date of the range again; with --from-ledger, as its last succeeded run did.
pub(super) async fn rerun(g: &GlobalArgs, args: RerunArgs) -> Result<Vec<String>, RunError> {
    let opts = Options {
        from: args.from,
        to: args.to,
        parallel: args.parallel,
        force: true,
        device: None,
        allow_row_drop: false,
        from_ledger: args.from_ledger,
    };
    dates(g, &args.job, &opts).await
}

async fn dates(g: &GlobalArgs, job: &str, opts: &Options) -> Result<Vec<String>, RunError> {
    let job = load_job(g, job)?;
    let outcome = async {
        let ctx = context(g, run::DEFAULT_STALE_AFTER)?;
        let cancel = signals::cancel_on_signals(std::time::Duration::from_secs(30));
        let report = backfill::backfill(&ctx, &job, opts, cancel).await?;
        let lines = report.lines();
        let code = report.exit_code();
        if code == exit::OK {
            return Ok(lines);
        }
        print_before_failing(&lines);
        Err(Failure::Many {
            problems: vec![format!(
                "{}..{} did not complete; run the same command again to retry the dates without a succeeded run",
                opts.from, opts.to
            )],
            code,
        })
    };
    outcome.await.map_err(|f| f.in_job(&job.name))
}
