//! A global-allocator layer that keeps freed large blocks for reuse by size class, so that a run's
//! resident memory is set by the most of each size it ever had in use at once, not by how long it
//! ran.
//!
//! Decoding Parquet allocates and frees thousands of blocks per row group in a few sizes: 256 KiB
//! decoded columns, 512 KiB dictionaries, ~510 KiB decompressed pages, 1 MiB id columns. A general
//! allocator (mimalloc, glibc, jemalloc alike) carves these out of shared spans and coalesces
//! them on free; with slightly different sizes interleaved, the holes move, and the resident set
//! crept upwards over a long run while the live heap stayed flat (benches/README.md, "Memory").
//! Here a block of 128 KiB or more is rounded up to a 64 KiB class, and on free goes on its class's
//! list instead of back to the allocator; the next request of that class takes it as it is.
//! A repeating workload therefore settles after its first row groups on a fixed set of blocks.
//! What the lists hold is capped; beyond the cap, blocks go back to the inner allocator.
//!
//! The cap is set at start-up (`SCORER_BLOCK_CACHE_MB`, default [`DEFAULT_CAP_MB`]), what the
//! lists held at most and how many requests they served go into each run's ledger row
//! (`memory`), and a process that has no run left (the scheduler between runs) gives every held
//! block back, so a long-lived process does not keep a run's working set while idle.

use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

/// The default cap in MiB, chosen by measurement (benches/README.md, "Memory on other writers'
/// files"): on 2 cores 64 MiB serves as many requests as 128 (W1: 6,881 of 6,885) at the same peak
/// RSS, but on 16 cores, where more row groups and threads are at work at once, 64 MiB left peak
/// RSS higher than 128 (395–408 against 351–367 MB on W1). Below 64 MiB reuse drops and RSS rises
/// on 2 cores too. Each run's ledger row says what the cache held at most, to size it by.
pub const DEFAULT_CAP_MB: usize = 128;

/// Blocks at least this large are kept by class; smaller ones are the inner allocator's business,
/// which handles them well (size-segregated pages).
const MIN_CACHED: usize = 128 << 10;
/// Class step: fine enough that rounding costs little (≤ 1/2 for the smallest class, under 13%
/// from 512 KiB up), coarse enough that near-equal sizes (pages of a few bytes more or less)
/// share a class.
const GRANULE: usize = 64 << 10;
/// Number of classes; blocks above `MIN_CACHED + (CLASSES - 1) * GRANULE` (~64 MiB) pass through.
const CLASSES: usize = 1024;
/// Every cached block is allocated with this alignment, so it can serve any request aligned up to
/// it (arrow asks for 64 or 128 bytes); requests aligned more strictly pass through.
const BLOCK_ALIGN: usize = 4096;

/// Wraps `A`, keeping freed blocks of 128 KiB to ~64 MiB for reuse, at most `cap` bytes of them.
pub struct LargeBlockCache<A> {
    inner: A,
    /// Free blocks (addresses) of each class.
    free: [Mutex<Vec<usize>>; CLASSES],
    /// Bytes held in `free`.
    held: AtomicUsize,
    /// Most bytes held at once since the last [`BlockCacheControl::reset_peak`].
    peak: AtomicUsize,
    /// Requests served from the lists.
    reused: AtomicU64,
    cap: AtomicUsize,
}

impl<A> LargeBlockCache<A> {
    /// A cache over `inner` that holds at most `cap` bytes of free blocks.
    pub const fn new(inner: A, cap: usize) -> Self {
        Self {
            inner,
            free: [const { Mutex::new(Vec::new()) }; CLASSES],
            held: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
            reused: AtomicU64::new(0),
            cap: AtomicUsize::new(cap),
        }
    }

    /// Bytes of free blocks held for reuse: the memory the process keeps beyond its live data,
    /// and what the cap is checked against.
    pub fn held_bytes(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }

    /// A free block of `class`, taken off its list, if there is one.
    fn reuse(&self, class: usize) -> Option<*mut u8> {
        let addr = self.list(class).pop()?;
        self.held
            .fetch_sub(block_layout(class).size(), Ordering::Relaxed);
        self.reused.fetch_add(1, Ordering::Relaxed);
        Some(addr as *mut u8)
    }

    fn list(&self, class: usize) -> std::sync::MutexGuard<'_, Vec<usize>> {
        // A panic never happens while a list is locked (pushing allocates a small vector, which
        // aborts rather than panics on failure); take the list regardless.
        self.free[class]
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// What a run reports of the cache (process-wide figures).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct CacheStats {
    pub cap_bytes: usize,
    pub held_bytes: usize,
    pub peak_held_bytes: usize,
    pub reused: u64,
}

/// The cache as the library sees it: the binary owns the global allocator and registers it.
pub trait BlockCacheControl: Sync {
    /// Current figures.
    fn stats(&self) -> CacheStats;
    /// Starts a new peak (at a run's start).
    fn reset_peak(&self);
    /// Hands every held block back to the inner allocator.
    fn release_all(&self);
}

impl<A: GlobalAlloc + Sync> BlockCacheControl for LargeBlockCache<A> {
    fn stats(&self) -> CacheStats {
        CacheStats {
            cap_bytes: self.cap.load(Ordering::Relaxed),
            held_bytes: self.held.load(Ordering::Relaxed),
            peak_held_bytes: self.peak.load(Ordering::Relaxed),
            reused: self.reused.load(Ordering::Relaxed),
        }
    }

    fn reset_peak(&self) {
        self.peak
            .store(self.held.load(Ordering::Relaxed), Ordering::Relaxed);
    }

    fn release_all(&self) {
        for class in 0..CLASSES {
            let blocks = std::mem::take(&mut *self.list(class));
            let layout = block_layout(class);
            for addr in blocks {
                self.held.fetch_sub(layout.size(), Ordering::Relaxed);
                // SAFETY: a free block of this class, allocated by `inner` with `layout`, just
                // taken off its list, so no one else holds it.
                unsafe { self.inner.dealloc(addr as *mut u8, layout) };
            }
        }
    }
}

impl<A> LargeBlockCache<A> {
    /// Sets the cap (bytes); blocks freed while over it go back to the inner allocator.
    pub fn set_cap(&self, bytes: usize) {
        self.cap.store(bytes, Ordering::Relaxed);
    }
}

static REGISTERED: OnceLock<&'static dyn BlockCacheControl> = OnceLock::new();

/// Makes the process's cache known to the library (the binary calls it once at start-up).
pub fn register(cache: &'static dyn BlockCacheControl) {
    let _ = REGISTERED.set(cache);
}

/// The registered cache's figures; `None` when the process runs without it (tests, embedders).
pub fn stats() -> Option<CacheStats> {
    REGISTERED.get().map(|c| c.stats())
}

/// Starts a new peak of held bytes.
pub fn reset_peak() {
    if let Some(c) = REGISTERED.get() {
        c.reset_peak();
    }
}

/// Gives every held block back (a process with no run left).
pub fn release_all() {
    if let Some(c) = REGISTERED.get() {
        c.release_all();
    }
}

/// The cap from `SCORER_BLOCK_CACHE_MB` (whole MiB, 0 turns the cache off), else the default.
pub fn cap_from_env() -> Result<usize, String> {
    match std::env::var("SCORER_BLOCK_CACHE_MB") {
        Ok(v) => {
            v.trim().parse::<usize>().map(|mb| mb << 20).map_err(|_| {
                format!("SCORER_BLOCK_CACHE_MB must be a whole number of MiB, got `{v}`")
            })
        }
        Err(_) => Ok(DEFAULT_CAP_MB << 20),
    }
}

/// The class of a request, if it is one this layer keeps.
fn class_of(layout: Layout) -> Option<usize> {
    if layout.size() < MIN_CACHED || layout.align() > BLOCK_ALIGN {
        return None;
    }
    let class = (layout.size() - MIN_CACHED).div_ceil(GRANULE);
    (class < CLASSES).then_some(class)
}

/// The layout every block of `class` is allocated with.
fn block_layout(class: usize) -> Layout {
    // In range by construction: at most ~64 MiB, a power-of-two alignment.
    Layout::from_size_align(MIN_CACHED + class * GRANULE, BLOCK_ALIGN)
        .unwrap_or_else(|_| unreachable!("class sizes are small multiples of the page size"))
}

// SAFETY: blocks handed out are either the inner allocator's own (requests outside the classes) or
// blocks the inner allocator returned for `block_layout(class)`, which is at least as large and as
// aligned as any request mapped to `class`. A free block is on exactly one list and is removed
// before it is handed out again; blocks go back to the inner allocator with the layout they were
// allocated with.
unsafe impl<A: GlobalAlloc> GlobalAlloc for LargeBlockCache<A> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let Some(class) = class_of(layout) else {
            // SAFETY: the caller's contract, passed on.
            return unsafe { self.inner.alloc(layout) };
        };
        if let Some(ptr) = self.reuse(class) {
            return ptr;
        }
        // SAFETY: `block_layout` has a non-zero size.
        unsafe { self.inner.alloc(block_layout(class)) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let Some(class) = class_of(layout) else {
            // SAFETY: the caller's contract, passed on.
            return unsafe { self.inner.alloc_zeroed(layout) };
        };
        if let Some(ptr) = self.reuse(class) {
            // SAFETY: the block is at least `layout.size()` bytes and now ours alone.
            unsafe { ptr.write_bytes(0, layout.size()) };
            return ptr;
        }
        // SAFETY: `block_layout` has a non-zero size.
        unsafe { self.inner.alloc_zeroed(block_layout(class)) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let Some(class) = class_of(layout) else {
            // SAFETY: allocated by `inner` with this layout (see `alloc`).
            return unsafe { self.inner.dealloc(ptr, layout) };
        };
        let block = block_layout(class);
        let held = self.held.fetch_add(block.size(), Ordering::Relaxed) + block.size();
        if held <= self.cap.load(Ordering::Relaxed) {
            self.list(class).push(ptr as usize);
            self.peak.fetch_max(held, Ordering::Relaxed);
        } else {
            self.held.fetch_sub(block.size(), Ordering::Relaxed);
            // SAFETY: a block of this class, allocated by `inner` with `block`.
            unsafe { self.inner.dealloc(ptr, block) };
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY (all branches): the caller guarantees `new_size` with `layout.align()` is a valid
        // layout and `ptr` was allocated here with `layout`.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        match (class_of(layout), class_of(new_layout)) {
            (None, None) => unsafe { self.inner.realloc(ptr, layout, new_size) },
            (Some(old), Some(new)) if old == new => ptr,
            _ => {
                let moved = unsafe { self.alloc(new_layout) };
                if !moved.is_null() {
                    unsafe {
                        std::ptr::copy_nonoverlapping(ptr, moved, layout.size().min(new_size));
                        self.dealloc(ptr, layout);
                    }
                }
                moved
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::alloc::System;

    fn layout(size: usize, align: usize) -> Layout {
        Layout::from_size_align(size, align).unwrap()
    }

    #[test]
    fn sizes_round_up_to_64_kib_classes_and_small_or_overaligned_requests_pass_through() {
        assert_eq!(class_of(layout(100, 8)), None);
        assert_eq!(class_of(layout(MIN_CACHED - 1, 64)), None);
        assert_eq!(class_of(layout(MIN_CACHED, 64)), Some(0));
        // A decompressed page a few bytes short of 512 KiB shares the dictionaries' class.
        assert_eq!(
            class_of(layout(520_312, 64)),
            class_of(layout(524_288, 128))
        );
        assert_eq!(
            block_layout(class_of(layout(520_312, 64)).unwrap()).size(),
            524_288
        );
        assert_eq!(class_of(layout(262_144, 128)), Some(2));
        assert_eq!(class_of(layout(1 << 20, 8192)), None);
        assert_eq!(class_of(layout(1 << 30, 64)), None);
    }

    #[test]
    fn a_freed_block_serves_the_next_request_of_its_class_in_place() {
        let cache = LargeBlockCache::new(System, 8 << 20);
        unsafe {
            let a = cache.alloc(layout(520_000, 64));
            assert!(!a.is_null());
            a.write_bytes(7, 520_000);
            cache.dealloc(a, layout(520_000, 64));
            assert_eq!(cache.held_bytes(), 524_288);
            let b = cache.alloc(layout(524_288, 128));
            assert_eq!(b, a, "same class, same block");
            assert_eq!(cache.held_bytes(), 0);
            // A zeroed request gets the reused block cleared.
            cache.dealloc(b, layout(524_288, 128));
            let c = cache.alloc_zeroed(layout(500_000, 64));
            assert_eq!(c, a);
            assert!(
                std::slice::from_raw_parts(c, 500_000)
                    .iter()
                    .all(|&x| x == 0)
            );
            cache.dealloc(c, layout(500_000, 64));
        }
    }

    #[test]
    fn free_blocks_beyond_the_cap_go_back_to_the_inner_allocator() {
        let cache = LargeBlockCache::new(System, 1 << 20);
        unsafe {
            let blocks: Vec<*mut u8> = (0..3).map(|_| cache.alloc(layout(512 << 10, 64))).collect();
            for &b in &blocks {
                cache.dealloc(b, layout(512 << 10, 64));
            }
            assert_eq!(
                cache.held_bytes(),
                1 << 20,
                "two blocks kept, the third freed"
            );
            for _ in 0..2 {
                cache.alloc(layout(512 << 10, 64));
            }
            assert_eq!(cache.held_bytes(), 0);
        }
    }

    #[test]
    fn realloc_keeps_the_contents_across_classes_and_stays_in_place_within_one() {
        let cache = LargeBlockCache::new(System, 64 << 20);
        unsafe {
            let small = cache.alloc(layout(1000, 8));
            small.write_bytes(3, 1000);
            let grown = cache.realloc(small, layout(1000, 8), 300_000);
            assert!(
                std::slice::from_raw_parts(grown, 1000)
                    .iter()
                    .all(|&x| x == 3)
            );
            grown.add(1000).write_bytes(4, 299_000);
            // 300,000 and 320,000 bytes are both in the 320 KiB class.
            let same = cache.realloc(grown, layout(300_000, 8), 320_000);
            assert_eq!(same, grown);
            let bigger = cache.realloc(same, layout(320_000, 8), 2 << 20);
            let bytes = std::slice::from_raw_parts(bigger, 300_000);
            assert!(bytes[..1000].iter().all(|&x| x == 3));
            assert!(bytes[1000..].iter().all(|&x| x == 4));
            let shrunk = cache.realloc(bigger, layout(2 << 20, 8), 10);
            assert!(
                std::slice::from_raw_parts(shrunk, 10)
                    .iter()
                    .all(|&x| x == 3)
            );
            cache.dealloc(shrunk, layout(10, 8));
            assert_eq!(cache.held_bytes(), (320 << 10) + (2 << 20));
        }
    }

    #[test]
    fn the_peak_is_counted_the_cap_can_change_and_release_gives_everything_back() {
        let cache = LargeBlockCache::new(System, 4 << 20);
        unsafe {
            let blocks: Vec<*mut u8> = (0..3).map(|_| cache.alloc(layout(1 << 20, 64))).collect();
            for &b in &blocks {
                cache.dealloc(b, layout(1 << 20, 64));
            }
            let s = cache.stats();
            assert_eq!((s.held_bytes, s.peak_held_bytes), (3 << 20, 3 << 20));
            let again = cache.alloc(layout(1 << 20, 64));
            assert_eq!(cache.stats().reused, 1);
            // Under a lower cap, a freed block goes back to the inner allocator.
            cache.set_cap(2 << 20);
            cache.dealloc(again, layout(1 << 20, 64));
            assert_eq!(cache.stats().held_bytes, 2 << 20);
            cache.reset_peak();
            assert_eq!(cache.stats().peak_held_bytes, 2 << 20);
            cache.release_all();
            assert_eq!(cache.stats().held_bytes, 0);
        }
    }
}
