//! `scorer validate JOB [--date D]`: every problem of a job file and its model at once, and with
//! a date, its input's footers.

use super::{GlobalArgs, load_job, registry};
use crate::cli::ValidateArgs;
use crate::failure::RunError;

/// Checks the job (and its input for the date) without scoring anything.
pub(super) async fn validate(g: &GlobalArgs, args: ValidateArgs) -> Result<Vec<String>, RunError> {
    let job = load_job(g, &args.job)?;
    let report = crate::validate::validate(&job, &registry(g), args.date).await?;
    Ok(report.lines())
}
