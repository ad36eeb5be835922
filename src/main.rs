//! The `scorer` binary: parse the command line, run the subcommand (`scorer::commands`), map the
//! outcome to an exit code.

use std::process::ExitCode;

use clap::Parser;
use scorer::cli::Cli;
use scorer::error::exit;
use scorer::large_alloc::LargeBlockCache;
use scorer::telemetry;

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
    match runtime.block_on(scorer::commands::dispatch(cli.command, &cli.global)) {
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
