//! Reusable byte buffers for the run's large, short-lived I/O: object reads (a few MB each) and
//! encoded COPY chunks. Fresh buffers of varying sizes for each one left the allocator with holes
//! it could not reuse for the next buffer's different size, so the process's resident memory
//! drifted upwards with the length of a run even though the data alive at any moment stayed the
//! same (benches/README.md, "Memory"). Buffers here come in one size class, go back to their pool
//! when the last [`Bytes`] slice of them is dropped, and are filled again by the next user.

use std::sync::{Arc, Mutex};

use bytes::Bytes;

/// A pool of buffers shared by one stage of a run.
#[derive(Debug)]
pub struct BufferPool {
    free: Mutex<Vec<Vec<u8>>>,
    /// Buffers are at least this large, so any read up to it fits any free buffer.
    size_class: usize,
    /// Free buffers kept; more than the run ever had in use at once is never reached, this only
    /// caps what an unusual burst leaves behind.
    keep: usize,
}

impl BufferPool {
    /// A pool whose buffers hold at least `size_class` bytes and which keeps up to `keep` of them.
    pub fn new(size_class: usize, keep: usize) -> Arc<Self> {
        Arc::new(Self {
            free: Mutex::new(Vec::new()),
            size_class,
            keep,
        })
    }

    /// A buffer of `len` bytes to read into, a free one if any is large enough. Its contents are
    /// whatever an earlier user left: the caller overwrites all `len` bytes.
    pub fn take(self: &Arc<Self>, len: usize) -> PooledBuffer {
        let reused = self.lock().and_then(|mut free| {
            let at = free.iter().position(|b| b.capacity() >= len)?;
            Some(free.swap_remove(at))
        });
        let mut buf = reused.unwrap_or_else(|| Vec::with_capacity(len.max(self.size_class)));
        // Zeroes only bytes this buffer never held before; reused bytes are overwritten by the read.
        if buf.len() < len {
            buf.resize(len, 0);
        }
        PooledBuffer {
            buf,
            len,
            home: Arc::clone(self),
        }
    }

    /// An empty buffer to append to (see [`PooledBuffer::extend_with`]).
    pub fn take_empty(self: &Arc<Self>) -> PooledBuffer {
        self.take(0)
    }

    /// Free buffers now in the pool.
    #[cfg(test)]
    fn free_count(&self) -> usize {
        self.lock().map_or(0, |free| free.len())
    }

    /// The free list, unless a thread panicked while holding it; then the pool is simply not used.
    fn lock(&self) -> Option<std::sync::MutexGuard<'_, Vec<Vec<u8>>>> {
        self.free.lock().ok()
    }

    fn give_back(&self, buf: Vec<u8>) {
        if let Some(mut free) = self.lock()
            && free.len() < self.keep
        {
            free.push(buf);
        }
    }
}

/// A buffer taken from a [`BufferPool`]; it returns there when dropped.
#[derive(Debug)]
pub struct PooledBuffer {
    buf: Vec<u8>,
    len: usize,
    home: Arc<BufferPool>,
}

impl PooledBuffer {
    /// The `len` bytes to fill.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        &mut self.buf[..self.len]
    }

    /// Appends through `write`, which gets the buffer's bytes as a vector it may grow.
    pub fn extend_with<R>(&mut self, write: impl FnOnce(&mut Vec<u8>) -> R) -> R {
        self.buf.truncate(self.len);
        let out = write(&mut self.buf);
        self.len = self.buf.len();
        out
    }

    /// Bytes held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no bytes are held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The filled buffer as [`Bytes`]; slices of it keep it out of the pool until the last one
    /// is dropped.
    pub fn freeze(self) -> Bytes {
        Bytes::from_owner(self)
    }
}

impl AsRef<[u8]> for PooledBuffer {
    fn as_ref(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl Drop for PooledBuffer {
    fn drop(&mut self) {
        self.home.give_back(std::mem::take(&mut self.buf));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_buffer_returns_when_its_last_slice_is_dropped_and_is_reused_in_place() {
        let pool = BufferPool::new(1024, 4);
        let mut first = pool.take(100);
        first.as_mut_slice().fill(7);
        let bytes = first.freeze();
        let address = bytes.as_ptr();
        let slice = bytes.slice(10..20);
        drop(bytes);
        assert_eq!(pool.free_count(), 0, "a slice still holds the buffer");
        assert_eq!(&slice[..], &[7u8; 10]);
        drop(slice);
        assert_eq!(pool.free_count(), 1);

        // A larger read within the size class gets the same memory back, at its full length.
        let mut second = pool.take(1000);
        assert_eq!(second.as_mut_slice().len(), 1000);
        assert_eq!(second.as_mut_slice().as_ptr(), address);
        assert_eq!(pool.free_count(), 0);
    }

    #[test]
    fn reads_beyond_the_size_class_get_a_buffer_of_their_own_and_the_pool_keeps_at_most_keep() {
        let pool = BufferPool::new(64, 2);
        let small = pool.take(64);
        drop(small);
        let large = pool.take(1000);
        assert_eq!(large.as_ref().len(), 1000);
        assert_eq!(
            pool.free_count(),
            1,
            "the small buffer was too small and stays free"
        );
        let taken: Vec<PooledBuffer> = (0..4).map(|_| pool.take(10)).collect();
        drop(large);
        drop(taken);
        assert_eq!(pool.free_count(), 2);
    }

    #[test]
    fn an_appended_buffer_holds_what_was_appended_and_starts_empty_when_reused() {
        let pool = BufferPool::new(16, 1);
        let mut buf = pool.take_empty();
        buf.extend_with(|v| v.extend_from_slice(b"abc"));
        buf.extend_with(|v| v.extend_from_slice(b"de"));
        assert_eq!(buf.as_ref(), b"abcde");
        drop(buf.freeze());
        let again = pool.take_empty();
        assert!(again.is_empty());
        assert_eq!(pool.free_count(), 0);
    }
}
