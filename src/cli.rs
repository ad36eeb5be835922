//! Command-line definitions (clap only; behaviour lives in the library).

use std::path::PathBuf;
use std::time::Duration;

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
        4 database error or lost lock, 5 a run of this output and date is already in progress,\n\
        6 cancelled by SIGTERM/SIGINT (cleaned up)."
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
    /// Where model artifacts fetched from object storage are kept (by sha256). Default:
    /// $XDG_CACHE_HOME/scorer/models, else ~/.cache/scorer/models.
    #[arg(long, global = true, env = "SCORER_MODEL_CACHE")]
    pub model_cache: Option<PathBuf>,
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
    #[command(
        after_help = "Example:\n  scorer run jobs/quickstart.toml --date 2026-11-24\n\n\
        SIGTERM or SIGINT cancels the run: staging is dropped, the ledger says `cancelled`, the\n\
        date keeps its previous rows, and scorer exits with code 6 (at once on a second signal)."
    )]
    Run {
        /// Job file path, or a job name in --jobs-dir.
        job: String,
        /// Logical date (YYYY-MM-DD), as Airflow's `ds`.
        #[arg(long)]
        date: NaiveDate,
        /// Run the model here instead of the job's `model.device` (cpu, cuda, cuda:N, auto).
        #[arg(long)]
        device: Option<DeviceSpec>,
        /// After SIGTERM/SIGINT, how long the clean-up may take before scorer exits anyway.
        #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
        grace: Duration,
    },
    /// Remove what dead runs left behind (staging tables, run files) and mark them `abandoned`.
    #[command(
        after_help = "Examples:\n  scorer gc\n  scorer gc churn_daily --stale-after 5m\n\n\
        A `running` ledger row is a dead run when its heartbeat is older than --stale-after and\n\
        no process holds the lock of its output and date. Every run also does this when it starts."
    )]
    Gc {
        /// Only this job's runs (a job file path or a name in --jobs-dir); all jobs without it.
        job: Option<String>,
        /// A run whose heartbeat is older than this may be dead (its lock then decides).
        #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
        stale_after: Duration,
    },
    /// The model registry: list model versions, or check their artifacts against their sha256.
    #[command(subcommand)]
    Models(ModelsCommand),
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

/// `scorer models …`.
#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// Every model version in --models-dir: kind, inputs, outputs, preprocessing, artifacts.
    #[command(after_help = "Example:\n  scorer models list --models-dir models")]
    List,
    /// Check every artifact of every version (or of NAME, or NAME VERSION) against its pinned
    /// sha256, fetching remote ones into the cache; also loads each model. Exits 2 on a mismatch.
    #[command(
        after_help = "Examples:\n  scorer models verify\n  scorer models verify churn_pipeline\n  scorer models verify churn_pipeline latest"
    )]
    Verify {
        /// Only this model.
        name: Option<String>,
        /// Only this version of NAME (`latest` for the highest).
        version: Option<String>,
    },
}
