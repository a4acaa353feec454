//! [`PoolAlloc`]: a [`Heap`] behind a lock, as a thread-safe `GlobalAlloc`.
//!
//! This is the top layer of the allocator: nothing else in the crate depends on it.

use core::alloc::{GlobalAlloc, Layout};
use core::fmt;
use core::ptr::{self, NonNull};

use crate::config::Config;
use crate::heap::{Heap, HeapError};
use crate::source::RegionError;
use crate::stats::Stats;
use crate::sync::Lock;

/// The pool allocator, usable as `#[global_allocator]`.
///
/// Hosted, growing from the OS (feature `os`):
///
/// ```
/// use poolgc::PoolAlloc;
///
/// #[global_allocator]
/// static ALLOC: PoolAlloc = PoolAlloc::new();
///
/// let v: Vec<u32> = (0..100).collect();
/// assert_eq!(ALLOC.stats().classes[24].blocks_in_use, 1); // 400 bytes → the 400-byte class (64-bit)
/// # drop(v);
/// ```
///
/// Firmware, from a static array (see [`add_region`](PoolAlloc::add_region)):
///
/// ```no_run
/// use poolgc::PoolAlloc;
///
/// #[global_allocator]
/// static ALLOC: PoolAlloc = PoolAlloc::empty();
/// static mut HEAP: [u8; 16 * 1024] = [0; 16 * 1024];
///
/// // First thing in main, before anything allocates:
/// unsafe { ALLOC.add_region(&raw mut HEAP as *mut u8, 16 * 1024) };
/// ```
pub struct PoolAlloc {
    heap: Lock<Heap>,
}

impl PoolAlloc {
    // Under `cfg(loom)` the lock is built from loom's atomics, whose constructors are not `const`, so the
    // four constructors below exist twice: `const` normally, plain `fn` under loom (same bodies). A loom
    // model builds its `PoolAlloc` values at run time inside `loom::model`, so nothing is lost there.

    /// An allocator with CPython's geometry ([`Config::HOSTED`]) that grows from the OS on demand
    /// (feature `os`; without it, only regions handed over serve).
    #[cfg(not(loom))]
    pub const fn new() -> Self {
        Self::with_config(Config::HOSTED)
    }

    /// An allocator that never asks the OS: it serves only the regions handed to
    /// [`add_region`](PoolAlloc::add_region). Uses [`Config::SMALL`], which suits heaps from a few KiB up.
    #[cfg(not(loom))]
    pub const fn empty() -> Self {
        Self::empty_with_config(Config::SMALL)
    }

    /// Like [`new`](PoolAlloc::new), with another geometry.
    #[cfg(not(loom))]
    pub const fn with_config(config: Config) -> Self {
        PoolAlloc {
            heap: Lock::new(Heap::new(config)),
        }
    }

    /// Like [`empty`](PoolAlloc::empty), with another geometry.
    #[cfg(not(loom))]
    pub const fn empty_with_config(config: Config) -> Self {
        PoolAlloc {
            heap: Lock::new(Heap::empty(config)),
        }
    }

    // ---- the same constructors under `cfg(loom)`, not `const` ------------------------------------------

    /// [`PoolAlloc::new`] (not `const` under `cfg(loom)`).
    #[cfg(loom)]
    pub fn new() -> Self {
        Self::with_config(Config::HOSTED)
    }

    /// [`PoolAlloc::empty`] (not `const` under `cfg(loom)`).
    #[cfg(loom)]
    pub fn empty() -> Self {
        Self::empty_with_config(Config::SMALL)
    }

    /// [`PoolAlloc::with_config`] (not `const` under `cfg(loom)`).
    #[cfg(loom)]
    pub fn with_config(config: Config) -> Self {
        PoolAlloc {
            heap: Lock::new(Heap::new(config)),
        }
    }

    /// [`PoolAlloc::empty_with_config`] (not `const` under `cfg(loom)`).
    #[cfg(loom)]
    pub fn empty_with_config(config: Config) -> Self {
        PoolAlloc {
            heap: Lock::new(Heap::empty(config)),
        }
    }

    /// Hands the memory `[start, start + len)` over to the allocator; several regions may be added.
    ///
    /// # Panics
    /// If the region is too small (under a few hundred bytes), overlaps one already added, or wraps the
    /// address space. Use [`try_add_region`](PoolAlloc::try_add_region) to handle that instead.
    ///
    /// # Safety
    /// The span must be valid for reads and writes, used by nothing else for the rest of the program (or
    /// as long as the allocator and any block from it lives), and come from a pointer whose provenance
    /// covers it all (e.g. `&raw mut ARRAY as *mut u8`).
    pub unsafe fn add_region(&self, start: *mut u8, len: usize) {
        // SAFETY: forwarded contract.
        if let Err(e) = unsafe { self.try_add_region(start, len) } {
            panic!("poolgc: add_region({start:p}, {len}) refused: {e}");
        }
    }

    /// Like [`add_region`](PoolAlloc::add_region), returning the reason instead of panicking.
    ///
    /// # Safety
    /// As for [`add_region`](PoolAlloc::add_region).
    pub unsafe fn try_add_region(&self, start: *mut u8, len: usize) -> Result<(), RegionError> {
        // SAFETY: forwarded contract.
        unsafe { self.heap.lock().add_region(start, len) }
    }

    /// A consistent snapshot of the allocator's state.
    pub fn stats(&self) -> Stats {
        self.heap.lock().stats()
    }

    /// Writes a report shaped like CPython's `sys._debugmallocstats()`.
    ///
    /// The snapshot is taken under the lock and written after releasing it, so `out` may allocate (e.g. a
    /// `String`) even when this is the global allocator.
    pub fn report(&self, out: &mut dyn fmt::Write) -> fmt::Result {
        let stats = self.stats();
        stats.write_report(out)
    }

    /// Runs [`Heap::check`] under the lock.
    pub fn check(&self) -> Result<(), HeapError> {
        self.heap.lock().check()
    }

    /// Gives the spare free arena back to its source; returns the bytes released.
    pub fn trim(&self) -> usize {
        self.heap.lock().trim()
    }

    /// Runs `f` with the locked heap.
    ///
    /// `f` must not allocate through this allocator (if it is the global one, that means: not at all), or
    /// it deadlocks.
    pub fn with_heap<R>(&self, f: impl FnOnce(&mut Heap) -> R) -> R {
        f(&mut self.heap.lock())
    }
}

impl Default for PoolAlloc {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for PoolAlloc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PoolAlloc").finish_non_exhaustive()
    }
}

// SAFETY: every method forwards to the `Heap` under the lock; the heap returns blocks that fit the layout
// (size and alignment), keeps them disjoint until freed, returns null rather than unwinding when it has no
// memory, and preserves contents on reallocation.
unsafe impl GlobalAlloc for PoolAlloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.heap
            .lock()
            .allocate(layout)
            .map_or(ptr::null_mut(), NonNull::as_ptr)
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: GlobalAlloc's contract: `ptr` came from this allocator with `layout` (hence non-null).
        unsafe {
            self.heap
                .lock()
                .deallocate(NonNull::new_unchecked(ptr), layout)
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        self.heap
            .lock()
            .allocate_zeroed(layout)
            .map_or(ptr::null_mut(), NonNull::as_ptr)
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: GlobalAlloc's contract: `ptr` is live with `layout`, and `new_size` is a valid size for it.
        unsafe {
            self.heap
                .lock()
                .reallocate(NonNull::new_unchecked(ptr), layout, new_size)
        }
        .map_or(ptr::null_mut(), NonNull::as_ptr)
    }
}
