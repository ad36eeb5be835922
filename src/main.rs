//! The `scorer` binary: parse the command line, run the library, map the outcome to an exit code.

use std::process::ExitCode;

use clap::Parser;
use scorer::cli::{Cli, Command, GlobalArgs, ModelsCommand, OutputFormat};
use scorer::db::{Database, DbTarget};
use scorer::error::{Failure, RunError, exit};
use scorer::job::{self, Job};
use scorer::large_alloc::LargeBlockCache;
use scorer::model::registry::Registry;
use scorer::progress::ProgressMode;
use scorer::run::{self, RunContext, RunRequest, signals, sweep};
use scorer::schedule::{backfill, daemon, status};
use scorer::shard::ShardSpec;
use scorer::{ledger, summary, telemetry, validate};

/// mimalloc for small allocations; blocks of 128 KiB and more (decoded columns, dictionaries, pages)
/// are kept by size class for reuse, so the resident set settles instead of creeping up over a
/// long run (`scorer::large_alloc`, benches/README.md "Memory"). mimalloc is built without
/// transparent huge pages (`no_thp`): asking for them made page faults stall in the kernel's
/// compaction once the page cache filled memory, which varied a W1 run by ±15%.
#[global_allocator]
static ALLOCATOR: LargeBlockCache<mimalloc::MiMalloc> =
    LargeBlockCache::new(mimalloc::MiMalloc, LARGE_BLOCKS_HELD);

/// Most bytes of free large blocks kept for reuse until `SCORER_BLOCK_CACHE_MB` is read.
const LARGE_BLOCKS_HELD: usize = scorer::large_alloc::DEFAULT_CAP_MB << 20;

fn main() -> ExitCode {
    telemetry::mark_launch();
    // Before anything can print: every secret in the environment is known to the one
    // redaction point every message passes through.
    scorer::redact::register_environment();
    scorer::redact::install_panic_hook();
    // polars (a model's derived columns) runs inside the scoring pool's threads, one row slice
    // per core already; its own pool would only add threads competing for the same cores.
    // Set before any thread exists, so no other thread can be reading the environment.
    if std::env::var_os("POLARS_MAX_THREADS").is_none() {
        // SAFETY: single-threaded here: nothing else reads or writes the environment yet.
        unsafe { std::env::set_var("POLARS_MAX_THREADS", "1") };
    }
    scorer::model::threads::configure_scoring_pool(None);
    scorer::large_alloc::register(&ALLOCATOR);
    match scorer::large_alloc::cap_from_env() {
        Ok(cap) => ALLOCATOR.set_cap(cap),
        Err(e) => {
            scorer::redact::eprint_line(&format!("scorer: error: {e}"));
            return ExitCode::from(exit::CONFIG);
        }
    }
    let cli = Cli::parse();
    telemetry::init(cli.global.log_format);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("scorer: cannot start the async runtime: {e}");
            return ExitCode::from(exit::INTERNAL);
        }
    };
    match runtime.block_on(dispatch(cli)) {
        Ok(lines) => {
            lines.iter().for_each(|l| scorer::redact::print_line(l));
            ExitCode::SUCCESS
        }
        Err(e) => {
            scorer::redact::eprint_line(&format!("scorer: error: {e}"));
            ExitCode::from(e.exit_code())
        }
    }
}

/// Runs the subcommand; returns the lines to print on success.
async fn dispatch(cli: Cli) -> Result<Vec<String>, RunError> {
    let g = cli.global;
    match cli.command {
        Command::Run {
            job,
            date,
            device,
            grace,
            allow_row_drop,
            quiet,
            progress_every,
            shard,
            shards,
            attempt,
        } => {
            let job = Job::load(&job::locate(&job, &g.jobs_dir))?;
            let completion_index = std::env::var("JOB_COMPLETION_INDEX").ok();
            let shard = ShardSpec::choose(shard, shards, completion_index.as_deref())
                .map_err(|e| Failure::Config(format!("--shard: {e}")).in_job(&job.name))?;
            let date = date
                .resolve(
                    job.schedule.as_deref(),
                    job.timezone.as_deref(),
                    chrono::Utc::now(),
                )
                .map_err(|e| Failure::Config(e).in_job(&job.name))?;
            let mut ctx = context(&g, run::DEFAULT_STALE_AFTER).map_err(|f| f.in_job(&job.name))?;
            ctx.progress = if quiet {
                ProgressMode::Off
            } else {
                ProgressMode::Auto(progress_every)
            };
            let cancel = signals::cancel_on_signals(grace);
            let request = RunRequest {
                job,
                date,
                device,
                allow_row_drop,
                pin: None,
                shard,
                attempt_label: attempt.unwrap_or_default(),
            };
            let report = run::run(&ctx, &request, cancel).await?;
            Ok(summary::run_lines(&report))
        }
        Command::Validate { job, date } => {
            let job = Job::load(&job::locate(&job, &g.jobs_dir))?;
            let report = validate::validate(&job, &registry(&g), date).await?;
            Ok(report.lines())
        }
        Command::Schedule {
            max_concurrent,
            lease,
            reload_every,
            grace,
            retry_delay,
            max_attempts,
            metrics_addr,
        } => {
            let mut ctx = context(&g, run::DEFAULT_STALE_AFTER).map_err(|f| f.in_job("*"))?;
            let serving = tokio_util::sync::CancellationToken::new();
            let _stop_serving = serving.clone().drop_guard();
            if let Some(addr) = metrics_addr {
                let exporter = std::sync::Arc::new(scorer::metrics::exporter::Exporter::new());
                let bound = scorer::metrics::serve::serve(addr, exporter.clone(), serving.clone())
                    .await
                    .map_err(|e| {
                        Failure::Config(format!("--metrics-addr {addr}: cannot listen: {e}"))
                            .in_job("*")
                    })?;
                tracing::info!(%bound, "serving metrics on /metrics");
                ctx.exporter = Some(exporter);
            }
            let opts = daemon::Options {
                max_concurrent,
                lease,
                reload_every,
                grace,
                retry_delay,
                max_attempts,
            };
            let stop = signals::stop_on_signals("the scheduler");
            let summary = daemon::serve(ctx, opts, stop)
                .await
                .map_err(|f| f.in_job("*"))?;
            Ok(vec![format!(
                "scheduler stopped: {} runs ({} succeeded, {} failed, {} to retry, {} skipped)",
                summary.runs, summary.succeeded, summary.failed, summary.retried, summary.skipped
            )])
        }
        Command::Backfill {
            job,
            from,
            to,
            parallel,
            force,
            device,
            allow_row_drop,
        } => {
            let opts = backfill::Options {
                from,
                to,
                parallel,
                force,
                device,
                allow_row_drop,
                from_ledger: false,
            };
            backfill_command(&g, &job, &opts).await
        }
        Command::Rerun {
            job,
            from,
            to,
            from_ledger,
            parallel,
        } => {
            let opts = backfill::Options {
                from,
                to,
                parallel,
                force: true,
                device: None,
                allow_row_drop: false,
                from_ledger,
            };
            backfill_command(&g, &job, &opts).await
        }
        Command::Status => {
            let ctx = context(&g, run::DEFAULT_STALE_AFTER).map_err(|f| f.in_job("*"))?;
            let db = Database::open(&ctx.db)
                .await
                .map_err(|e| Failure::from(e).in_job("*"))?;
            let report = status::status(&ctx.jobs_dir, &db)
                .await
                .map_err(|f| f.in_job("*"))?;
            Ok(report.lines())
        }
        Command::Runs { job, last, format } => {
            let label = job.clone().unwrap_or_else(|| "*".to_string());
            let db = open_ledger(&g).await.map_err(|f| f.in_job(&label))?;
            let runs = ledger::browse::recent(&db, job.as_deref(), last)
                .await
                .map_err(|e| Failure::from(e).in_job(&label))?;
            Ok(match format {
                OutputFormat::Table => ledger::browse::table(&runs),
                OutputFormat::Json => vec![serde_json::to_string_pretty(&runs).unwrap_or_default()],
            })
        }
        Command::Report { job, days, output } => {
            let db = open_ledger(&g).await.map_err(|f| f.in_job(&job))?;
            let html = scorer::report::render(&db, &job, days)
                .await
                .map_err(|f| f.in_job(&job))?;
            std::fs::write(&output, html).map_err(|e| {
                Failure::Config(format!("cannot write {}: {e}", output.display())).in_job(&job)
            })?;
            Ok(vec![format!(
                "scorer: report of job {job} ({days} days) written to {}",
                output.display()
            )])
        }
        Command::Show { run_id } => {
            let db = open_ledger(&g).await.map_err(|f| f.in_job("*"))?;
            let run = ledger::browse::one(&db, run_id)
                .await
                .map_err(|e| Failure::from(e).in_job("*"))?
                .ok_or_else(|| {
                    Failure::Config(format!("no run {run_id} in the ledger at {}", db.target()))
                        .in_job("*")
                })?;
            Ok(vec![serde_json::to_string_pretty(&run).unwrap_or_default()])
        }
        Command::Models(ModelsCommand::List) => {
            summary::models_list(&registry(&g)).map_err(|e| in_registry(&g, e.into()))
        }
        Command::Models(ModelsCommand::Verify {
            name,
            version,
            device,
            texts,
        }) => {
            let (lines, failed) = summary::models_verify(
                &registry(&g),
                name.as_deref(),
                version.as_deref(),
                device,
                texts.as_deref(),
            )
            .map_err(|e| in_registry(&g, e.into()))?;
            if failed.is_empty() {
                return Ok(lines);
            }
            lines.iter().for_each(|l| scorer::redact::print_line(l));
            Err(in_registry(
                &g,
                Failure::Many {
                    problems: failed,
                    code: exit::CONFIG,
                },
            ))
        }
        Command::Gc { job, stale_after } => {
            let job = job
                .map(|j| Job::load(&job::locate(&j, &g.jobs_dir)))
                .transpose()?;
            let label = job.as_ref().map_or("*", |j| j.name.as_str()).to_string();
            let ctx = context(&g, stale_after).map_err(|f| f.in_job(&label))?;
            let db = Database::open(&ctx.db)
                .await
                .map_err(|e| Failure::from(e).in_job(&label))?;
            let ledger = ledger::for_database(&db);
            let scope = sweep::Scope {
                job: job.as_ref().map(|j| j.name.as_str()),
                stale_after,
                jobs_dir: &ctx.jobs_dir,
                held: None,
            };
            let report = sweep::sweep(&db, ledger.as_ref(), &scope)
                .await
                .map_err(|f| f.in_job(&label))?;
            let lines = summary::sweep_lines(&report);
            if report.failed.is_empty() {
                return Ok(lines);
            }
            // Say what was done, then fail: some dead runs still hold leftovers.
            lines.iter().for_each(|l| scorer::redact::print_line(l));
            let problems = report
                .failed
                .iter()
                .map(|(run, why)| format!("run {}: {why}", run.run_id));
            Err(Failure::Many {
                problems: problems.collect(),
                code: exit::TRANSIENT,
            }
            .in_job(&label))
        }
    }
}

/// `scorer backfill` and `scorer rerun`: the dates, a table, and the exit code of the worst one.
async fn backfill_command(
    g: &GlobalArgs,
    job: &str,
    opts: &backfill::Options,
) -> Result<Vec<String>, RunError> {
    let job = Job::load(&job::locate(job, &g.jobs_dir))?;
    let ctx = context(g, run::DEFAULT_STALE_AFTER).map_err(|f| f.in_job(&job.name))?;
    let cancel = signals::cancel_on_signals(std::time::Duration::from_secs(30));
    let report = backfill::backfill(&ctx, &job, opts, cancel)
        .await
        .map_err(|f| f.in_job(&job.name))?;
    let lines = report.lines();
    let code = report.exit_code();
    if code == exit::OK {
        return Ok(lines);
    }
    lines.iter().for_each(|l| scorer::redact::print_line(l));
    Err(Failure::Many {
        problems: vec![format!(
            "{}..{} did not complete; run the same command again to retry the dates without a succeeded run",
            opts.from, opts.to
        )],
        code,
    }
    .in_job(&job.name))
}

/// A `scorer models` failure, naming the registry.
fn in_registry(g: &GlobalArgs, failure: Failure) -> RunError {
    RunError::Registry {
        root: g.models_dir.display().to_string(),
        failure,
    }
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
fn context(g: &GlobalArgs, stale_after: std::time::Duration) -> Result<RunContext, Failure> {
    Ok(RunContext {
        models: registry(g),
        jobs_dir: g.jobs_dir.clone(),
        db: DbTarget::choose(g.database_url.as_deref(), g.sqlite_path.clone())?,
        heartbeat_every: run::HEARTBEAT_EVERY,
        stale_after,
        // Backfills and the scheduler log a progress line per running job every minute.
        progress: ProgressMode::Log(std::time::Duration::from_secs(60)),
        pushgateway: g.pushgateway_url.clone(),
        exporter: None,
    })
}

/// The ledger's database, for the commands that only read it (`runs`, `show`).
async fn open_ledger(g: &GlobalArgs) -> Result<Database, Failure> {
    let target = DbTarget::choose(g.database_url.as_deref(), g.sqlite_path.clone())?;
    Ok(Database::open(&target).await?)
}
