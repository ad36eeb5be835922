//! One function per subcommand of the `scorer` binary: each loads what it names (job file,
//! ledger, registry), calls the library, and returns the lines to print. A failure is attached
//! to its job (or `*`) once, by the command that knows which job it ran.

mod backfill;
mod gc;
mod ledger;
mod models;
mod run;
mod schedule;
mod validate;

use std::time::Duration;

use crate::cli::{Command, GlobalArgs, ModelsCommand};
use crate::db::{Database, DbTarget};
use crate::failure::{Failure, RunError};
use crate::job::{self, Job, JobError};
use crate::model::registry::Registry;
use crate::progress::ProgressMode;
use crate::run::{HEARTBEAT_EVERY, RunContext};

/// Runs the subcommand; returns the lines to print on success.
pub async fn dispatch(command: Command, g: &GlobalArgs) -> Result<Vec<String>, RunError> {
    match command {
        Command::Run(args) => run::run(g, args).await,
        Command::Validate(args) => validate::validate(g, args).await,
        Command::Schedule(args) => schedule::schedule(g, args).await,
        Command::Backfill(args) => backfill::backfill(g, args).await,
        Command::Rerun(args) => backfill::rerun(g, args).await,
        Command::Status => schedule::status(g).await,
        Command::Runs(args) => ledger::runs(g, args).await,
        Command::Report(args) => ledger::report(g, args).await,
        Command::Show(args) => ledger::show(g, args).await,
        Command::Models(ModelsCommand::List(args)) => models::list(g, args).await,
        Command::Models(ModelsCommand::Verify(args)) => models::verify(g, args).await,
        Command::Gc(args) => gc::gc(g, args).await,
        Command::Promote(args) => ledger::promote(g, args).await,
    }
}

/// Reads the job file a command names (a path, or a name in --jobs-dir).
fn load_job(g: &GlobalArgs, job: &str) -> Result<Job, JobError> {
    Job::load(&job::locate(job, &g.jobs_dir))
}

/// The model registry and artifact cache the global options name.
fn registry(g: &GlobalArgs) -> Registry {
    let cache = g
        .model_cache
        .clone()
        .unwrap_or_else(|| Registry::default_cache(&g.models_dir));
    Registry::new(g.models_dir.clone(), cache)
}

/// What every run of this process shares, from the global options.
fn context(g: &GlobalArgs, stale_after: Duration) -> Result<RunContext, Failure> {
    Ok(RunContext {
        models: registry(g),
        jobs_dir: g.jobs_dir.clone(),
        db: DbTarget::choose(g.database_url.as_deref(), g.sqlite_path.clone())?,
        heartbeat_every: HEARTBEAT_EVERY,
        stale_after,
        // Backfills and the scheduler log a progress line per running job every minute.
        progress: ProgressMode::Log(Duration::from_secs(60)),
        pushgateway: g.pushgateway_url.clone(),
        exporter: None,
    })
}

/// The ledger's database, for the commands that only read it (`runs`, `show`, `report`).
async fn open_ledger(g: &GlobalArgs) -> Result<Database, Failure> {
    let target = DbTarget::choose(g.database_url.as_deref(), g.sqlite_path.clone())?;
    Ok(Database::open(&target).await?)
}

/// Prints what a command did before it fails on what it could not do.
fn print_before_failing(lines: &[String]) {
    lines.iter().for_each(|l| crate::redact::print_line(l));
}
