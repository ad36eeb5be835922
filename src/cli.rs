//! Command-line definitions (clap only; behaviour lives in the library).

use std::path::PathBuf;

use chrono::NaiveDate;
use clap::{Args, Parser, Subcommand};

use crate::model::device::DeviceSpec;
use crate::telemetry::LogFormat;

/// Batch scoring job runner: Parquet -> model -> one atomic partition per job and date.
#[derive(Debug, Parser)]
#[command(
    name = "scorer",
    version,
    after_help = "Examples:\n  \
        scorer validate jobs/quickstart.toml --date 2026-11-24\n  \
        scorer run quickstart --date 2026-11-24\n  \
        DATABASE_URL=postgres://scorer@db/analytics scorer run churn_daily --date 2026-11-24\n\n\
        Exit codes: 0 success, 1 internal error, 2 bad job/model/config, 3 bad or missing input,\n\
        4 database error, 5 a run of this job and date is already in progress."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    #[command(flatten)]
    pub global: GlobalArgs,
}

/// Options every subcommand shares.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Where job names are looked up (`NAME` -> DIR/NAME.toml).
    #[arg(long, global = true, env = "SCORER_JOBS_DIR", default_value = "jobs")]
    pub jobs_dir: PathBuf,
    /// The model registry: DIR/<name>/<version>/model.toml.
    #[arg(
        long,
        global = true,
        env = "SCORER_MODELS_DIR",
        default_value = "models"
    )]
    pub models_dir: PathBuf,
    /// PostgreSQL URL for results and the ledger; without it, the SQLite file is used.
    #[arg(long, global = true, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// The embedded SQLite database used when no DATABASE_URL is set.
    #[arg(
        long,
        global = true,
        env = "SCORER_SQLITE_PATH",
        default_value = "scorer.db"
    )]
    pub sqlite_path: PathBuf,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value = "text")]
    pub log_format: LogFormat,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Score one logical date of a job and replace that date's results atomically.
    #[command(after_help = "Example:\n  scorer run jobs/quickstart.toml --date 2026-11-24")]
    Run {
        /// Job file path, or a job name in --jobs-dir.
        job: String,
        /// Logical date (YYYY-MM-DD), as Airflow's `ds`.
        #[arg(long)]
        date: NaiveDate,
        /// Run the model here instead of the job's `model.device` (cpu, cuda, cuda:N, auto).
        #[arg(long)]
        device: Option<DeviceSpec>,
    },
    /// Check a job file and its model; with --date, also list the input and check every footer.
    #[command(after_help = "Example:\n  scorer validate jobs/quickstart.toml --date 2026-11-24")]
    Validate {
        /// Job file path, or a job name in --jobs-dir.
        job: String,
        /// Also check the input objects for this logical date.
        #[arg(long)]
        date: Option<NaiveDate>,
    },
}
