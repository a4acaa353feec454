//! [`PoolAlloc::bytes_in_use`]: the heap's running count, read without walking anything.

use super::PoolAlloc;

impl PoolAlloc {
    /// Bytes handed out and not yet freed, as [`Stats::bytes_in_use`](crate::Stats::bytes_in_use)
    /// counts them (small blocks at their class size), without the walk over every arena that
    /// [`stats`](PoolAlloc::stats) makes: the lock is held for one load. Blocks held in thread caches
    /// count as in use until [`flush_thread_cache`](PoolAlloc::flush_thread_cache) or
    /// [`trim`](PoolAlloc::trim) takes them back.
    ///
    /// ```
    /// use poolgc::PoolAlloc;
    ///
    /// let pool = PoolAlloc::new();
    /// assert_eq!(pool.bytes_in_use(), 0);
    /// assert_eq!(pool.bytes_in_use(), pool.stats().bytes_in_use);
    /// ```
    pub fn bytes_in_use(&self) -> usize {
        self.heap().lock().bytes_in_use()
    }
}
