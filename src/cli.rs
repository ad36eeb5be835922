//! Command-line definitions (clap only; behaviour lives in `crate::commands` and the library).

use std::path::PathBuf;
use std::time::Duration;

use chrono::NaiveDate;
use clap::{Args, Parser, Subcommand};

use crate::model::device::DeviceSpec;
use crate::shard::ShardSpec;
use crate::telemetry::LogFormat;

/// Batch scoring job runner: Parquet -> model -> one atomic partition per job and date.
#[derive(Debug, Parser)]
#[command(
    name = "scorer",
    version,
    after_help = "Examples:\n  \
        scorer validate jobs/quickstart.toml --date 2026-11-24\n  \
        scorer run quickstart --date 2026-11-24\n  \
        DATABASE_URL=postgres://scorer@db/analytics scorer run churn_daily --date 2026-11-24\n  \
        scorer schedule --jobs-dir jobs\n  \
        scorer backfill churn_daily --from 2026-11-01 --to 2026-11-24 --parallel 2\n\n\
        Exit codes (what to retry):\n  \
        0  success\n  \
        1  internal error (a defect; report it)\n  \
        2  configuration: job, model, credentials, or an existing table that does not fit. Never retry\n  \
        3  data: input missing, corrupt or not fitting the job. Retry once the data changed\n  \
        4  transient: database or object store unreachable, timed out or failing, an input object\n     \
        changed while read, or the lock was lost. Retry\n  \
        5  a run of this output and date is in progress. Retry later\n  \
        6  cancelled by SIGTERM/SIGINT, cleaned up. Retry when wanted"
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
    /// A Prometheus Pushgateway (e.g. http://pushgateway:9091) every run pushes its metrics to
    /// when it ends: the batch-job pattern, for `scorer run` under cron, Kubernetes or Airflow.
    #[arg(
        long,
        global = true,
        env = "SCORER_PUSHGATEWAY_URL",
        hide_env_values = true
    )]
    pub pushgateway_url: Option<String>,
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
        after_help = "Examples:\n  scorer run jobs/quickstart.toml --date 2026-11-24\n  \
        scorer run churn_daily --date 2026-11-24 --shard 0/3   # and 1/3, 2/3, anywhere\n  \
        JOB_COMPLETION_INDEX=2 scorer run churn_daily --date 2026-11-24 --shards 3\n\n\
        SIGTERM or SIGINT cancels the run: staging is dropped, the ledger says `cancelled`, the\n\
        date keeps its previous rows, and scorer exits with code 6 (at once on a second signal).\n\n\
        Sharded runs (PostgreSQL tables or Parquet output): each shard stages its share of the\n\
        input; the last shard to finish publishes all of them at once. A shard retried after it\n\
        staged does nothing; one retried after a failure scores its share again."
    )]
    Run(RunArgs),
    /// Remove what dead runs left behind (staging tables, run files) and mark them `abandoned`;
    /// expire sharded attempts that stalled.
    #[command(
        after_help = "Examples:\n  scorer gc\n  scorer gc churn_daily --stale-after 5m\n  \
        scorer gc churn_daily --expire-attempts-after 6h\n\n\
        A `running` ledger row is a dead run when its heartbeat is older than --stale-after and\n\
        no process holds the lock of its output and date. Every run also does this when it starts.\n\
        A sharded attempt stalls when its shards stopped before the last staged its part: once no\n\
        shard of its date runs and it was idle for --expire-attempts-after, gc drops its parts."
    )]
    Gc(GcArgs),
    /// Run every job file with a `schedule` in --jobs-dir, as a long-running cron daemon.
    #[command(after_help = "Examples:\n  scorer schedule --jobs-dir jobs\n  \
        DATABASE_URL=postgres://scorer@db/analytics scorer schedule --max-concurrent 4\n\n\
        Logical date: a firing scores the data interval that ends at it, named by its start (the\n\
        previous firing), as Airflow does: a daily job firing on the 25th at 02:00 scores the 24th.\n\
        Schedules are cron expressions (5 fields, or 6 with seconds first) in the job's `timezone`\n\
        (UTC if unset). A wall-clock time skipped by daylight saving fires when the clock jumps past\n\
        it; one that occurs twice fires the first time.\n\n\
        Catch-up: after downtime, the missed firings run oldest first (up to `max_catchup`), or only\n\
        the latest with `catchup = false`. Job files added, changed or removed are picked up without\n\
        a restart; an invalid one is reported and skipped.\n\n\
        Several schedulers may share one PostgreSQL: each firing is claimed in scorer.claims with a\n\
        lease, so it runs once; a dead scheduler's firing is taken over when its lease runs out.\n\
        Retryable failures (exit 4, 5) are retried after --retry-delay, up to --max-attempts.\n\n\
        SIGTERM/SIGINT: stop firing, let running runs finish within --grace, then cancel them\n\
        (ledger `cancelled`, nothing half-published); a second signal cancels at once. Exits 0.")]
    Schedule(ScheduleArgs),
    /// Run a job for every date of a range; dates that already succeeded are skipped.
    #[command(
        after_help = "Examples:\n  scorer backfill churn_daily --from 2026-11-01 --to 2026-11-24\n  \
        scorer backfill churn_daily --from 2026-11-20 --to 2026-11-24 --parallel 3 --force\n\n\
        Resumable: run the same command again after an interruption and only the dates without a\n\
        succeeded run are run. A summary table is printed at the end. SIGTERM/SIGINT cancels the\n\
        running dates (cleaned up) and starts no more: exit 6. Otherwise the exit code is 0 when\n\
        every date succeeded or was skipped, else the code of the failure least likely to go away\n\
        by retrying (2, then 3, 1, 4, 5)."
    )]
    Backfill(BackfillArgs),
    /// Score past dates again; with --from-ledger, exactly as their last succeeded run did.
    #[command(
        after_help = "Examples:\n  scorer rerun churn_daily --from 2026-11-01 --to 2026-11-24 --from-ledger\n  \
        scorer rerun churn_daily --from 2026-11-24 --to 2026-11-24\n\n\
        With --from-ledger each date is scored with the model version its last succeeded run used\n\
        and only if every input object is still the one it read (same etag) and the model's sha256\n\
        is the same: a lost or damaged result table is rebuilt row for row (README: \"Disaster\n\
        recovery\"). A date whose inputs or model changed is refused with exit 3 or 2, naming what\n\
        changed, and keeps its rows. Without it, every date is run again as it is now (as\n\
        `scorer backfill --force`). Prints the same table as `scorer backfill`."
    )]
    Rerun(RerunArgs),
    /// The jobs `scorer schedule` sees: next firing, the date it scores, last run and outcome.
    #[command(after_help = "Example:\n  scorer status --jobs-dir jobs")]
    Status,
    /// Recent runs from the ledger, newest first: status, date, rows, duration, error.
    #[command(
        after_help = "Examples:\n  scorer runs\n  scorer runs churn_daily --last 30\n  \
        scorer runs churn_daily --format json | jq '.[0].score_stats'"
    )]
    Runs(RunsArgs),
    /// An HTML page about a job's recent runs: score distribution per day, PSI, rows, durations.
    #[command(
        after_help = "Example:\n  scorer report churn_daily --days 30 -o churn_daily.html\n\n\
        One self-contained file (charts as inline SVG, nothing fetched), from the ledger."
    )]
    Report(ReportArgs),
    /// One run in full: counts, stages, input objects and etags, model and sha256, score
    /// statistics, memory, storage requests, the run it resumed; as JSON.
    #[command(after_help = "Example:\n  scorer show 01a21780-4235-7297-a627-0f1fcde5793d")]
    Show(ShowArgs),
    /// Change which model version a job scores as champion (or roll back), recorded in the
    /// ledger with who, when and why. A model from MLflow under an alias: the alias moves. Else
    /// the job file's model.version (or its models:/name/N URI) is rewritten. The version must
    /// load first.
    #[command(
        after_help = "Examples:\n  scorer promote churn_daily --to 8 --reason \"AUC 0.91 vs 0.89 on two weeks of labels\"\n  \
        scorer promote churn_daily --to 7 --reason \"rollback: v8 scores drifted\"\n\n\
        Promotions are listed under the runs by `scorer runs`."
    )]
    Promote(PromoteArgs),
    /// The model registry: list model versions, or check their artifacts against their sha256.
    #[command(subcommand)]
    Models(ModelsCommand),
    /// Check a job file and its model; with --date, also list the input and check every footer.
    #[command(after_help = "Example:\n  scorer validate jobs/quickstart.toml --date 2026-11-24")]
    Validate(ValidateArgs),
}

/// `scorer models …`.
#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// Every model version in --models-dir: kind, inputs, outputs, preprocessing, artifacts;
    /// with --mlflow, every model of the MLflow Model Registry at MLFLOW_TRACKING_URI instead,
    /// with its aliases and the versions they point at.
    #[command(
        after_help = "Examples:\n  scorer models list --models-dir models\n  MLFLOW_TRACKING_URI=http://mlflow:5000 scorer models list --mlflow"
    )]
    List(ListArgs),
    /// Check every artifact of every version (or of NAME, or NAME VERSION) against its pinned
    /// sha256, fetching remote ones into the cache; also loads each model. A text_embedding
    /// model also encodes sample texts and reports texts/s; in bf16 or f16 on a GPU, also the
    /// speed-up over f32 and the worst cosine against f32. Exits 2 on a mismatch.
    #[command(
        after_help = "Examples:\n  scorer models verify\n  scorer models verify churn_pipeline\n  scorer models verify churn_pipeline latest\n  scorer models verify minilm --device cuda --texts my_sentences.txt\n  scorer models verify models:/churn@champion"
    )]
    Verify(VerifyArgs),
}

/// `scorer run --date`: a logical date, or the one the job's schedule names now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateArg {
    Day(NaiveDate),
    /// The logical date of the job's latest firing at or before now.
    Scheduled,
}

impl std::str::FromStr for DateArg {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "scheduled" {
            return Ok(Self::Scheduled);
        }
        s.parse::<NaiveDate>()
            .map(Self::Day)
            .map_err(|e| format!("`{s}` is not a date (YYYY-MM-DD) or `scheduled`: {e}"))
    }
}

/// The arguments of `scorer run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Job file path, or a job name in --jobs-dir.
    pub job: String,
    /// Logical date (YYYY-MM-DD), as Airflow's `ds`; or `scheduled`: the date the job's
    /// latest firing (its `schedule`, in its `timezone`) scores, as a Kubernetes CronJob on
    /// the same schedule needs.
    #[arg(long)]
    pub date: DateArg,
    /// Run the model here instead of the job's `model.device` (cpu, cuda, cuda:N, auto).
    #[arg(long)]
    pub device: Option<DeviceSpec>,
    /// After SIGTERM/SIGINT, how long the clean-up may take before scorer exits anyway.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub grace: Duration,
    /// No progress display (on a terminal a bar, otherwise a log line every --progress-every).
    #[arg(long)]
    pub quiet: bool,
    /// How often a run whose stderr is not a terminal logs its progress (rows done of the
    /// input's total, rows/s, time left).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub progress_every: Duration,
    /// Publish even if the run gives fewer rows than `output.min_rows`, or fewer than the
    /// date's previous run allows (`output.max_row_drop_fraction`).
    #[arg(long)]
    pub allow_row_drop: bool,
    /// Score shard I of N (from 0) of the date's input; the date is published once, by the
    /// last of the N shards to stage its rows.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<ShardSpec>,
    /// The shard count, with the index from JOB_COMPLETION_INDEX (a Kubernetes Indexed Job).
    #[arg(long, env = "SCORER_SHARDS", value_name = "N")]
    pub shards: Option<u32>,
    /// A label that makes this a separate attempt of a sharded run (e.g. the Kubernetes
    /// Job's uid, or Airflow's run_id): shards of one attempt publish together.
    #[arg(long, env = "SCORER_ATTEMPT", value_name = "LABEL")]
    pub attempt: Option<String>,
}

/// The arguments of `scorer gc`.
#[derive(Debug, Args)]
pub struct GcArgs {
    /// Only this job's runs (a job file path or a name in --jobs-dir); all jobs without it.
    pub job: Option<String>,
    /// A run whose heartbeat is older than this may be dead (its lock then decides).
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub stale_after: Duration,
    /// An unpublished sharded attempt none of whose shards runs, idle (no shard started or
    /// staged) this long, is expired: its staged parts dropped, its `staged` runs marked
    /// `abandoned`, the attempt forgotten, so its shards retried start it afresh.
    #[arg(long, default_value = "24h", value_parser = humantime::parse_duration)]
    pub expire_attempts_after: Duration,
}

/// The arguments of `scorer schedule`.
#[derive(Debug, Args)]
pub struct ScheduleArgs {
    /// Most runs at once in this process.
    #[arg(long, default_value_t = 2)]
    pub max_concurrent: usize,
    /// How long a claim lives without renewal (renewed every third of it); a dead
    /// scheduler's firing is taken over after it.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub lease: Duration,
    /// How often the jobs directory is read again.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub reload_every: Duration,
    /// After SIGTERM/SIGINT, how long running runs may take before they are cancelled.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub grace: Duration,
    /// Wait before a run that failed for a retryable reason (exit 4 or 5) is tried again.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub retry_delay: Duration,
    /// Attempts of one firing before a retryable failure counts as failed.
    #[arg(long, default_value_t = 3)]
    pub max_attempts: u32,
    /// Serve the finished runs' metrics on http://ADDR/metrics for Prometheus to scrape
    /// (e.g. 0.0.0.0:9184).
    #[arg(long, value_name = "ADDR")]
    pub metrics_addr: Option<std::net::SocketAddr>,
}

/// The arguments of `scorer backfill`.
#[derive(Debug, Args)]
pub struct BackfillArgs {
    /// Job file path, or a job name in --jobs-dir.
    pub job: String,
    /// First logical date (YYYY-MM-DD).
    #[arg(long)]
    pub from: NaiveDate,
    /// Last logical date, included.
    #[arg(long)]
    pub to: NaiveDate,
    /// Dates run at once.
    #[arg(long, default_value_t = 1)]
    pub parallel: usize,
    /// Run dates that already succeeded, too (their rows are replaced).
    #[arg(long)]
    pub force: bool,
    /// Run the model here instead of the job's `model.device`.
    #[arg(long)]
    pub device: Option<DeviceSpec>,
    /// Publish dates whose rows fail the row guards (as `scorer run --allow-row-drop`).
    #[arg(long)]
    pub allow_row_drop: bool,
}

/// The arguments of `scorer rerun`.
#[derive(Debug, Args)]
pub struct RerunArgs {
    /// Job file path, or a job name in --jobs-dir.
    pub job: String,
    /// First logical date (YYYY-MM-DD).
    #[arg(long)]
    pub from: NaiveDate,
    /// Last logical date, included.
    #[arg(long)]
    pub to: NaiveDate,
    /// Reproduce each date's last succeeded run (model version, input objects) from the ledger.
    #[arg(long)]
    pub from_ledger: bool,
    /// Dates run at once.
    #[arg(long, default_value_t = 1)]
    pub parallel: usize,
}

/// The arguments of `scorer promote`.
#[derive(Debug, Args)]
pub struct PromoteArgs {
    /// Job file path, or a job name in --jobs-dir.
    pub job: String,
    /// The version to score as champion from now on.
    #[arg(long)]
    pub to: String,
    /// Why, recorded in the ledger.
    #[arg(long)]
    pub reason: String,
}

/// The arguments of `scorer runs`.
#[derive(Debug, Args)]
pub struct RunsArgs {
    /// Only this job's runs (a job name, as the ledger records it).
    pub job: Option<String>,
    /// How many runs.
    #[arg(long, default_value_t = 20)]
    pub last: u32,
    /// `table` for people, `json` (an array of ledger rows) for tools.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
}

/// The arguments of `scorer report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The job's name, as the ledger records it.
    pub job: String,
    /// Runs whose logical date is within this many days of today.
    #[arg(long, default_value_t = 30)]
    pub days: u32,
    /// Where to write the page.
    #[arg(short = 'o', long, default_value = "report.html")]
    pub output: PathBuf,
}

/// The arguments of `scorer show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The run's id (`scorer runs` lists them).
    pub run_id: uuid::Uuid,
}

/// The arguments of `scorer validate`.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Job file path, or a job name in --jobs-dir.
    pub job: String,
    /// Also check the input objects for this logical date.
    #[arg(long)]
    pub date: Option<NaiveDate>,
}

/// The arguments of `scorer models list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// List the MLflow Model Registry at MLFLOW_TRACKING_URI instead of --models-dir.
    #[arg(long)]
    pub mlflow: bool,
}

/// The arguments of `scorer models verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Only this model; or a registry URI (`models:/churn@champion`, `models:/churn/7`): what
    /// the MLflow Model Registry at MLFLOW_TRACKING_URI resolves it to, fetched, checked and
    /// loaded.
    pub name: Option<String>,
    /// Only this version of NAME (`latest` for the highest).
    pub version: Option<String>,
    /// Load the models here (cpu, cuda, cuda:N, auto).
    #[arg(long, default_value = "cpu")]
    pub device: DeviceSpec,
    /// Texts a text_embedding model is checked with, one per line (a JSON string per line
    /// for texts with newlines); default: the 210 fixture sentences of the parity test.
    #[arg(long)]
    pub texts: Option<std::path::PathBuf>,
}

/// How `scorer runs` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Table,
    Json,
}
