//! Settings for the process's allocator (mimalloc, the global allocator set in `main.rs`).
//!
//! A run frees and re-allocates buffers of a few hundred KB to a few MB all the time: parquet's
//! decompressed pages and dictionaries, decoded columns. Freed memory that mimalloc holds on to is
//! reused, but not always in the same arrangement, and over a long run the resident set drifted
//! upwards while the live heap stayed flat at ~90 MB: with mimalloc's default purge delay of one
//! second, 10 × W1 peaked 10-35% above W1 (benches/README.md, "Memory"). Purging after 300 ms
//! keeps the resident set close to the live heap at any input size, for ~3% more wall time on W1
//! (page faults for the memory taken back); shorter delays cost much more (100 ms: +7%, 0: +35%).

use std::os::raw::{c_int, c_long};

/// `mi_option_purge_delay` in the vendored mimalloc v3's `mi_option_e`. The Rust bindings'
/// constants follow mimalloc v2's numbering, so the value is spelled here and checked by a test
/// against the option mimalloc reads from `MIMALLOC_PURGE_DELAY`.
const MI_OPTION_PURGE_DELAY: c_int = 15;

/// Milliseconds freed memory stays with the process before it goes back to the kernel.
pub const PURGE_DELAY_MS: c_long = 300;

/// Applies the settings above, unless the user set `MIMALLOC_PURGE_DELAY` themselves. Call it
/// first thing in `main`, before other threads exist: mimalloc's option setter is not thread safe.
pub fn configure() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: a plain store into mimalloc's option table, made before any other thread runs;
        // the index is checked by the test below.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// mimalloc reads `MIMALLOC_PURGE_DELAY` when the option is first used; a copy of this test
    /// process started with it set must see that value through our index.
    #[test]
    fn the_option_index_is_mimallocs_purge_delay() {
        if std::env::var_os("SCORER_ALLOCATOR_CHILD").is_some() {
            // SAFETY: reading an option; this child process runs only this test.
            let seen = unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) };
            assert_eq!(seen, 4321);
            return;
        }
        let exe = std::env::current_exe().unwrap();
        let out = std::process::Command::new(exe)
            .args([
                "--exact",
                "allocator::tests::the_option_index_is_mimallocs_purge_delay",
            ])
            .env("SCORER_ALLOCATOR_CHILD", "1")
            .env("MIMALLOC_PURGE_DELAY", "4321")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{text}");
        assert!(text.contains("1 passed"), "the child ran no test: {text}");
    }
}
