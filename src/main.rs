//! The `scorer` binary: parse the command line, run the library, map the outcome to an exit code.

use std::process::ExitCode;

use clap::Parser;
use scorer::cli::{Cli, Command};
use scorer::db::DbTarget;
use scorer::error::{RunError, exit};
use scorer::job::{self, Job};
use scorer::large_alloc::LargeBlockCache;
use scorer::pipeline::{self, Destination, RunOptions, RunSummary};
use scorer::{telemetry, validate};

/// mimalloc for small allocations; blocks of 128 KiB and more (decoded columns, dictionaries, pages)
/// are kept by size class for reuse, so the resident set settles instead of creeping up over a
/// long run (`scorer::large_alloc`, benches/README.md "Memory"). mimalloc is built without
/// transparent huge pages (`no_thp`): asking for them made page faults stall in the kernel's
/// compaction once the page cache filled memory, which varied a W1 run by ±15%.
#[global_allocator]
static ALLOCATOR: LargeBlockCache<mimalloc::MiMalloc> =
    LargeBlockCache::new(mimalloc::MiMalloc, LARGE_BLOCKS_HELD);

/// Most bytes of free large blocks kept for reuse. Between row groups W1 has up to ~64 MB of them
/// free at once; the cap leaves room for that and bounds what a change of sizes can leave behind.
const LARGE_BLOCKS_HELD: usize = 128 << 20;

fn main() -> ExitCode {
    telemetry::mark_launch();
    scorer::model::threads::configure_for_scoring();
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
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("scorer: error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

async fn dispatch(cli: Cli) -> Result<(), RunError> {
    let g = cli.global;
    match cli.command {
        Command::Run { job, date, device } => {
            let job = Job::load(&job::locate(&job, &g.jobs_dir))?;
            let db =
                DbTarget::choose(g.database_url.as_deref(), g.sqlite_path).map_err(|source| {
                    RunError::Db {
                        job: job.name.clone(),
                        source,
                    }
                })?;
            let opts = RunOptions {
                date,
                models_dir: g.models_dir,
                db,
                device,
            };
            let summary = pipeline::run(&job, &opts).await?;
            print_summary(&summary);
            Ok(())
        }
        Command::Validate { job, date } => {
            let job = Job::load(&job::locate(&job, &g.jobs_dir))?;
            let report = validate::validate(&job, &g.models_dir, date).await?;
            println!("job {}: OK", report.job);
            println!("  model: {}", report.model);
            if let Some((objects, rows)) = report.input {
                println!("  input: {objects} Parquet objects, {rows} rows, all footers match");
            }
            Ok(())
        }
    }
}

fn print_summary(s: &RunSummary) {
    let date = s.date.format("%Y-%m-%d");
    let secs = s.stage_seconds.get("total").copied().unwrap_or_default();
    println!(
        "scorer: job {} for {date}: {} rows read from {} objects, {} written, {} rejected, in {secs:.2} s",
        s.job, s.rows_read, s.objects, s.rows_written, s.rows_rejected
    );
    match &s.output {
        Destination::Objects(location) => {
            println!(
                "  results: Parquet files under {}, listed in {}/{} (run {})",
                location.url,
                location.url.trim_end_matches('/'),
                scorer::sink::objects::MANIFEST,
                s.run_id
            );
            println!("  ledger:  {}", s.db);
        }
        Destination::Table(table) if s.is_sqlite => {
            let path = s.db.trim_start_matches("sqlite ");
            let table = table.sqlite_name();
            println!(
                "  results: table {table} in SQLite file {path} (run {})",
                s.run_id
            );
            println!(
                "  query:   sqlite3 {path} \"SELECT * FROM {table} WHERE ds = '{date}' LIMIT 10\""
            );
        }
        Destination::Table(table) => {
            println!("  results: table {table} in {} (run {})", s.db, s.run_id);
            println!(
                "  query:   psql \"$DATABASE_URL\" -c \"SELECT * FROM {table} WHERE ds = DATE '{date}' LIMIT 10\""
            );
        }
    }
}
