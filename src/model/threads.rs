//! CPU threading for scoring. scorer parallelises across row tiles on the rayon pool; candle's CPU
//! matmul would also split each small matmul across the same pool, which for these shapes (k = 32
//! to 64) costs more than it gains (benches/README.md: 30% slower with both). candle reads its
//! thread count from `RAYON_NUM_THREADS` on every matmul, so the global rayon pool is built first
//! with the real size and the variable is then set to 1 for candle.

/// Builds the global rayon pool and makes candle's matmul single-threaded inside each task.
///
/// Must run at the start of `main`, before any other thread exists (it sets an environment
/// variable). The pool size is `RAYON_NUM_THREADS` when set, else the number of CPUs.
pub fn configure_for_scoring() {
    let threads = std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|n| *n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if let Err(e) = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("scorer-score-{i}"))
        .build_global()
    {
        tracing::warn!(error = %e, "rayon pool already built; candle may oversubscribe");
        return;
    }
    // SAFETY: called first thing in `main`, before the runtime or any other thread is started, so
    // nothing reads the environment concurrently.
    unsafe { std::env::set_var("RAYON_NUM_THREADS", "1") };
}
