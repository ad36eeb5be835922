//! The CPU thread pool scoring runs on. Every run in a process shares one rayon pool, sized once:
//! CPU model kinds score row slices as rayon tasks (their execution policy says how big), each
//! slice single-threaded inside (gemm with `Parallelism::None`), so runs that go concurrently in
//! one process (the scheduler) share the cores instead of oversubscribing them. Nothing here
//! touches the process environment.

/// Builds the global rayon pool with `threads` threads (when `None`, rayon's default:
/// `RAYON_NUM_THREADS` if set, else the number of CPUs).
///
/// Call it once, early in `main`; if the pool already exists (a second call, or a library user
/// that built its own), that pool is kept and a debug message says so.
pub fn configure_scoring_pool(threads: Option<usize>) {
    if let Err(e) = rayon::ThreadPoolBuilder::new()
        .num_threads(threads.unwrap_or(0))
        .thread_name(|i| format!("scorer-score-{i}"))
        .build_global()
    {
        tracing::debug!(error = %e, "rayon pool already built; keeping it");
    }
}
