//! [`PoolAlloc`]: a [`Heap`] behind a lock, as a thread-safe `GlobalAlloc`.
//!
//! This is the top layer of the allocator: nothing else in the crate depends on it.

use core::alloc::{GlobalAlloc, Layout};
use core::fmt;
use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use crate::config::Config;
use crate::heap::{Heap, HeapError};
use crate::size_class::pool_class_of;
use crate::source::RegionError;
use crate::stats::Stats;
use crate::sync::Lock;
#[cfg(feature = "std")]
use crate::thread_cache;

mod locked;
mod raw;
mod usage;

pub use locked::LockedHeap;

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
/// // 400 bytes → the 400-byte class (64-bit); blocks a thread cache holds count as in use too.
/// assert!(ALLOC.stats().classes[24].blocks_in_use >= 1);
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
///
/// With feature `std`, every constructor but the `*_locked` ones puts per-thread caches in front of the
/// lock: the fast path for a `#[global_allocator]`. At most one caching allocator per process uses the
/// caches at a time: the first one to allocate (until it is dropped); any other runs on its lock, like a
/// `*_locked` one. Blocks cached by threads, by the central transfer cache (up to 8 MiB) or left by
/// exited threads count as in use in [`stats`](PoolAlloc::stats) until
/// [`flush_thread_cache`](PoolAlloc::flush_thread_cache) (or [`trim`](PoolAlloc::trim)) takes them back.
///
/// ```
/// use poolgc::PoolAlloc;
///
/// #[global_allocator]
/// static ALLOC: PoolAlloc = PoolAlloc::new();
///
/// let v: Vec<String> = (0..1000).map(|i| i.to_string()).collect();
/// drop(v);
/// ALLOC.flush_thread_cache(); // this thread's cached blocks back to the heap, for exact stats
/// ```
pub struct PoolAlloc {
    /// Declared (so dropped) before `heap`: a dropped allocator unregisters from the thread caches before
    /// its arenas are unmapped, so a thread exiting meanwhile never walks blocks of unmapped memory.
    #[cfg(feature = "std")]
    cache: thread_cache::Owner,
    /// On cache lines of its own: the lock word and the heap's fields change whenever any thread takes
    /// the lock, and must not evict the read-mostly fields (the cache token, `pool_max`) that every
    /// thread's fast path reads.
    heap: CacheAligned<Lock<Heap>>,
    /// The heap's medium-class bound, so that a layout's class is found before the lock is taken (or, with
    /// thread caches, without it). Set at construction, or, for [`empty`](PoolAlloc::empty), under the
    /// lock when the first region fixes the geometry: until then it is `SMALL_MAX`, the least of every
    /// geometry, and no block exists. So a value read for a live block is the heap's (the block was handed
    /// out after the store, under the same lock); a stale one only sends a medium request to the locked
    /// path, where the heap classes it itself.
    pool_max: AtomicUsize,
    /// `pool_size - 1` of the heap's geometry, set with `pool_max`: a freed block's pool header is
    /// prefetched before the lock (a hint: a stale value only prefetches the wrong line).
    pool_mask: AtomicUsize,
}

/// A heap that grows from the host, for the constructors that promise one. Without a memory source in
/// this build such a heap could only fail every allocation, so constructing one is refused: at compile
/// time in a `static` or `const` (the usual form), at once otherwise.
const fn hosted(config: Config) -> Heap {
    if !crate::source::HOST_MEMORY {
        panic!(
            "poolgc: PoolAlloc::new() (and with_config) has no memory source in this build (feature \
             `os` needs Unix or `std`): use PoolAlloc::empty() and hand it memory with add_region"
        );
    }
    Heap::new(config)
}

/// A value alone on its cache lines (64-byte aligned, size rounded up to 64).
#[repr(align(64))]
struct CacheAligned<T>(T);

impl<T> core::ops::Deref for CacheAligned<T> {
    type Target = T;
    #[inline(always)]
    fn deref(&self) -> &T {
        &self.0
    }
}

impl PoolAlloc {
    // Under `cfg(loom)` the lock is built from loom's atomics, whose constructors are not `const`, so the
    // constructors below exist twice: `const` normally, plain `fn` under loom (same bodies). A loom model
    // builds its `PoolAlloc` values at run time inside `loom::model`, so nothing is lost there.

    /// An allocator with CPython's geometry ([`Config::HOSTED`]) that grows from the host on demand
    /// (feature `os`: `mmap` on Unix, the platform allocator on other hosts with `std`). With feature
    /// `std` it has per-thread caches of small blocks in front of its lock (see
    /// [`new_locked`](PoolAlloc::new_locked) for the variant without them).
    ///
    /// In a build with no memory source (no `os`, or `os` on a target with neither Unix nor `std`) it is
    /// refused: deprecated with the fix in its note, and a compile error in a `static`, so that no
    /// program builds whose first allocation would fail. Use [`empty`](PoolAlloc::empty) and
    /// [`add_region`](PoolAlloc::add_region) there. The same holds for `with_config` and the `*_locked`
    /// variants.
    #[cfg_attr(
        not(any(
            all(feature = "os", unix, not(poolgc_system)),
            all(feature = "os", feature = "std", any(not(unix), poolgc_system))
        )),
        deprecated = "this build has no memory source (feature `os` on a host with `std` or Unix): use \
                      `PoolAlloc::empty()` and hand it memory with `add_region`"
    )]
    #[cfg(not(loom))]
    pub const fn new() -> Self {
        Self::build(hosted(Config::HOSTED), Config::HOSTED, true)
    }

    /// An allocator that never asks the OS: it serves only the regions handed to
    /// [`add_region`](PoolAlloc::add_region). The first region decides its geometry
    /// ([`Config::for_region`]): 1 KiB pools for a firmware heap of a few KiB, CPython's for tens of MiB.
    /// Cached like [`new`](PoolAlloc::new) with feature `std`.
    ///
    /// ```
    /// use poolgc::{Config, PoolAlloc};
    ///
    /// static A: PoolAlloc = PoolAlloc::empty_locked();
    /// static mut HEAP: [u8; 16 * 1024] = [0; 16 * 1024];
    /// // SAFETY: HEAP is used by nothing else.
    /// unsafe { A.add_region(&raw mut HEAP as *mut u8, 16 * 1024) };
    /// assert_eq!(A.stats().config, Config::SMALL);
    /// ```
    #[cfg(not(loom))]
    pub const fn empty() -> Self {
        Self::build(Heap::empty_fitted(), Config::SMALL, true)
    }

    /// Like [`new`](PoolAlloc::new), with another geometry.
    #[cfg_attr(
        not(any(
            all(feature = "os", unix, not(poolgc_system)),
            all(feature = "os", feature = "std", any(not(unix), poolgc_system))
        )),
        deprecated = "this build has no memory source (feature `os` on a host with `std` or Unix): use \
                      `PoolAlloc::empty()` and hand it memory with `add_region`"
    )]
    #[cfg(not(loom))]
    pub const fn with_config(config: Config) -> Self {
        Self::build(hosted(config), config, true)
    }

    /// Like [`empty`](PoolAlloc::empty), with another geometry.
    #[cfg(not(loom))]
    pub const fn empty_with_config(config: Config) -> Self {
        Self::build(Heap::empty(config), config, true)
    }

    /// Like [`new`](PoolAlloc::new), without thread caches: every call takes the lock, and
    /// [`stats`](PoolAlloc::stats) is exact at every moment (no block sits in a cache). Slower when several
    /// threads allocate; meant for allocators that are not the process's main one, and for tests that
    /// check exact figures.
    ///
    /// ```
    /// use poolgc::PoolAlloc;
    /// use std::alloc::{GlobalAlloc, Layout};
    ///
    /// let a = PoolAlloc::new_locked();
    /// let l = Layout::new::<[u64; 4]>();
    /// unsafe { a.dealloc(a.alloc(l), l) };
    /// assert_eq!(a.stats().bytes_in_use, 0); // exact: no cache holds the block
    /// ```
    #[cfg_attr(
        not(any(
            all(feature = "os", unix, not(poolgc_system)),
            all(feature = "os", feature = "std", any(not(unix), poolgc_system))
        )),
        deprecated = "this build has no memory source (feature `os` on a host with `std` or Unix): use \
                      `PoolAlloc::empty()` and hand it memory with `add_region`"
    )]
    #[cfg(not(loom))]
    pub const fn new_locked() -> Self {
        Self::build(hosted(Config::HOSTED), Config::HOSTED, false)
    }

    /// Like [`empty`](PoolAlloc::empty), without thread caches (see [`new_locked`](PoolAlloc::new_locked)).
    #[cfg(not(loom))]
    pub const fn empty_locked() -> Self {
        Self::build(Heap::empty_fitted(), Config::SMALL, false)
    }

    /// Like [`with_config`](PoolAlloc::with_config), without thread caches (see
    /// [`new_locked`](PoolAlloc::new_locked)).
    #[cfg_attr(
        not(any(
            all(feature = "os", unix, not(poolgc_system)),
            all(feature = "os", feature = "std", any(not(unix), poolgc_system))
        )),
        deprecated = "this build has no memory source (feature `os` on a host with `std` or Unix): use \
                      `PoolAlloc::empty()` and hand it memory with `add_region`"
    )]
    #[cfg(not(loom))]
    pub const fn with_config_locked(config: Config) -> Self {
        Self::build(hosted(config), config, false)
    }

    /// Like [`empty_with_config`](PoolAlloc::empty_with_config), without thread caches (see
    /// [`new_locked`](PoolAlloc::new_locked)).
    #[cfg(not(loom))]
    pub const fn empty_with_config_locked(config: Config) -> Self {
        Self::build(Heap::empty(config), config, false)
    }

    /// The one constructor: whether the thread caches serve this allocator is fixed here, for its whole
    /// life (without feature `std` there are none).
    #[cfg(not(loom))]
    #[cfg_attr(not(feature = "std"), allow(unused_variables))]
    const fn build(heap: Heap, config: Config, cached: bool) -> Self {
        PoolAlloc {
            heap: CacheAligned(Lock::new(heap)),
            #[cfg(feature = "std")]
            cache: thread_cache::Owner::new(cached),
            pool_max: AtomicUsize::new(crate::heap::pool_max(config)),
            pool_mask: AtomicUsize::new(config.pool_size() - 1),
        }
    }

    /// Returns the allocator unchanged: thread caches are decided by the constructor (on by default with
    /// feature `std`; the `*_locked` constructors have none), never switched on an allocator.
    #[deprecated(
        note = "thread caches are on by default with feature `std`; `new_locked()` and the other \
                `*_locked` constructors build an allocator without them"
    )]
    pub const fn with_thread_cache(self) -> Self {
        self
    }

    /// Gives the calling thread's cached blocks, the central transfer cache and the blocks left by threads
    /// that have exited back to the heap. A no-op for an allocator without thread caches.
    pub fn flush_thread_cache(&self) {
        #[cfg(feature = "std")]
        thread_cache::flush(&self.cache, self.heap());
    }

    /// The heap lock, for every path that takes it.
    #[inline(always)]
    fn heap(&self) -> &Lock<Heap> {
        // Before the lock is first taken, shown to the fork handlers (see `crate::fork`).
        #[cfg(feature = "std")]
        self.cache.note_fork(&self.heap);
        &self.heap
    }

    /// Whether this allocator's pool blocks go through thread caches.
    #[inline(always)]
    #[cfg(feature = "std")]
    fn cached(&self) -> bool {
        self.cache.enabled()
    }

    /// The pool class of a layout as the heap chooses it (`Heap::pool_class`), `None` for the large
    /// path. Computed before the lock is taken, so that the critical section is only the pool work.
    #[inline(always)]
    fn pool_class(&self, layout: Layout) -> Option<usize> {
        pool_class_of(layout.size(), layout.align(), self.pool_max.load(Relaxed))
    }

    /// The locked path of `alloc` (the only one for an allocator without thread caches). Out of line
    /// where thread caches exist, so that `alloc` stays small enough to be inlined into the `__rust_alloc`
    /// shim, with no stack frame on the fast path.
    #[cfg_attr(feature = "std", inline(never))]
    #[cfg_attr(not(feature = "std"), inline)]
    fn alloc_locked(&self, layout: Layout) -> *mut u8 {
        // Classed under the lock, by the heap itself: `self.pool_max` may not show a geometry just fixed.
        let mut heap = self.heap().lock();
        let p = match heap.pool_class(layout) {
            // SAFETY: the class is the heap's own for this layout.
            Some(class) => unsafe { heap.alloc_class(class) },
            None => heap.alloc_large_block(layout),
        };
        p.map_or(ptr::null_mut(), NonNull::as_ptr)
    }

    /// The locked path of `dealloc`, out of line where thread caches exist (see `alloc_locked`).
    ///
    /// # Safety
    /// As for `GlobalAlloc::dealloc`.
    #[cfg_attr(feature = "std", inline(never))]
    #[cfg_attr(not(feature = "std"), inline)]
    unsafe fn dealloc_locked(&self, ptr: *mut u8, layout: Layout) {
        if self.pool_class(layout).is_some() {
            crate::pool::prefetch(ptr.addr());
            crate::pool::prefetch(ptr.addr() & !self.pool_mask.load(Relaxed));
            // SAFETY: GlobalAlloc's contract: `ptr` is a live block of ours, and a pooled layout means it
            // lives in one of the heap's pools.
            unsafe {
                self.heap()
                    .lock()
                    .dealloc_small(crate::pool::link_ptr(ptr, layout.size()))
            }
        } else {
            // SAFETY: GlobalAlloc's contract: `ptr` came from this allocator with `layout` (hence non-null),
            // and the layout is a large one.
            unsafe {
                self.heap()
                    .lock()
                    .dealloc_large(NonNull::new_unchecked(ptr), layout)
            }
        }
    }

    /// The locked path of `alloc_zeroed`, out of line where thread caches exist (see `alloc_locked`).
    #[cfg_attr(feature = "std", inline(never))]
    #[cfg_attr(not(feature = "std"), inline)]
    fn alloc_zeroed_locked(&self, layout: Layout) -> *mut u8 {
        self.heap()
            .lock()
            .allocate_zeroed(layout)
            .map_or(ptr::null_mut(), NonNull::as_ptr)
    }

    /// The locked path of `realloc`, out of line where thread caches exist (see `alloc_locked`). Out of
    /// line, the lock guard's unwinding cleanup stays here too, so the `__rust_realloc` and
    /// `__rust_alloc_zeroed` shims carry no landing pad.
    ///
    /// # Safety
    /// As for `GlobalAlloc::realloc`.
    #[cfg_attr(feature = "std", inline(never))]
    #[cfg_attr(not(feature = "std"), inline)]
    unsafe fn realloc_locked(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: GlobalAlloc's contract: `ptr` is live with `layout` (hence non-null), and `new_size` is
        // a valid size for it.
        unsafe {
            self.heap()
                .lock()
                .reallocate(NonNull::new_unchecked(ptr), layout, new_size)
        }
        .map_or(ptr::null_mut(), NonNull::as_ptr)
    }

    /// `realloc`, with or without thread caches. The rule that keeps a small block's layout naming its
    /// class (the caches file a freed block by its layout's class, and hand it out for any layout of that
    /// class): a pool block stays in place only when the new layout maps to the same class, whose blocks
    /// are aligned for it (same alignment); across classes it moves.
    ///
    /// # Safety
    /// As for `GlobalAlloc::realloc`.
    #[cfg_attr(feature = "debug", allow(dead_code))]
    #[inline]
    unsafe fn realloc_any(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let align = layout.align();
        // SAFETY: the caller guarantees `new_size` is a valid size for `align`.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, align) };
        let (old_class, new_class) = (self.pool_class(layout), self.pool_class(new_layout));
        if old_class.is_some() && old_class == new_class {
            // Same block, valid for the new size: hand back the heap's provenance, not the caller's
            // possibly narrower tag (see `pool::pool_of`). A no-op at run time.
            return core::ptr::with_exposed_provenance_mut(ptr.addr());
        }
        if old_class.is_none() && new_class.is_none() {
            // SAFETY: GlobalAlloc's contract; both large: the heap keeps large blocks on the large path.
            return unsafe { self.realloc_locked(ptr, layout, new_size) };
        }
        // SAFETY: GlobalAlloc's contract for `alloc`, `dealloc`; both blocks are live and distinct.
        unsafe {
            let new = self.raw_alloc(new_layout);
            if !new.is_null() {
                ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                self.raw_dealloc(ptr, layout);
            }
            new
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
        Self::build(Heap::empty_fitted(), Config::SMALL, true)
    }

    /// [`PoolAlloc::with_config`] (not `const` under `cfg(loom)`).
    #[cfg(loom)]
    pub fn with_config(config: Config) -> Self {
        Self::build(hosted(config), config, true)
    }

    /// [`PoolAlloc::empty_with_config`] (not `const` under `cfg(loom)`).
    #[cfg(loom)]
    pub fn empty_with_config(config: Config) -> Self {
        Self::build(Heap::empty(config), config, true)
    }

    /// [`PoolAlloc::with_config_locked`] (not `const` under `cfg(loom)`).
    #[cfg(loom)]
    pub fn with_config_locked(config: Config) -> Self {
        Self::build(hosted(config), config, false)
    }

    /// [`PoolAlloc::empty_with_config_locked`] (not `const` under `cfg(loom)`).
    #[cfg(loom)]
    pub fn empty_with_config_locked(config: Config) -> Self {
        Self::build(Heap::empty(config), config, false)
    }

    /// [`PoolAlloc::build`] (not `const` under `cfg(loom)`).
    #[cfg(loom)]
    #[cfg_attr(not(feature = "std"), allow(unused_variables))]
    fn build(heap: Heap, config: Config, cached: bool) -> Self {
        PoolAlloc {
            heap: CacheAligned(Lock::new(heap)),
            #[cfg(feature = "std")]
            cache: thread_cache::Owner::new(cached),
            pool_max: AtomicUsize::new(crate::heap::pool_max(config)),
            pool_mask: AtomicUsize::new(config.pool_size() - 1),
        }
    }

    /// Under loom only: runs the calling thread's exit hand-over of its cache (std runs it as a
    /// thread-local destructor before `join` returns; loom runs those too late for a model).
    #[cfg(all(loom, feature = "std"))]
    #[doc(hidden)]
    pub fn loom_thread_exit() {
        thread_cache::loom_thread_exit();
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
        let mut heap = self.heap().lock();
        // SAFETY: forwarded contract.
        unsafe { heap.add_region(start, len) }?;
        // The geometry may just have been fixed (see `pool_max`): stored before the lock is released.
        let config = heap.config();
        self.pool_max.store(crate::heap::pool_max(config), Relaxed);
        self.pool_mask.store(config.pool_size() - 1, Relaxed);
        Ok(())
    }

    /// Covers this allocator with poolgc's fork handlers; whether it is covered.
    ///
    /// Not needed for an allocator in a `static` (the `#[global_allocator]`, the `Gc` box heap): poolgc
    /// installs its `pthread_atfork` handlers itself and registers such an allocator on its first use, so
    /// `fork` while other threads allocate never leaves the child with a lock held (see
    /// `docs/threads-and-fork.md`). This registers one that lives elsewhere but is never moved or dropped
    /// (a leaked `Box`). `false` where fork handlers do not apply (feature `critical-section`, no `std`,
    /// `os` or Unix, Miri) or when eight allocators are registered already.
    ///
    /// ```
    /// use poolgc::PoolAlloc;
    ///
    /// let a: &'static PoolAlloc = Box::leak(Box::new(PoolAlloc::new()));
    /// let covered = a.install_fork_handlers(); // true on Unix with the default features
    /// ```
    pub fn install_fork_handlers(&'static self) -> bool {
        #[cfg(all(feature = "std", not(loom)))]
        return crate::fork::register_static(&self.heap.0);
        #[cfg(not(all(feature = "std", not(loom))))]
        false
    }

    /// A consistent snapshot of the allocator's state.
    pub fn stats(&self) -> Stats {
        self.heap().lock().stats()
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
        self.heap().lock().check()
    }

    /// Gives the spare free arenas and cached OS mappings back to their sources; returns the bytes
    /// released. With thread caches, first flushes like
    /// [`flush_thread_cache`](PoolAlloc::flush_thread_cache), so that wholly free arenas are seen as such.
    pub fn trim(&self) -> usize {
        self.flush_thread_cache();
        self.heap().lock().trim()
    }
}

impl Default for PoolAlloc {
    /// [`PoolAlloc::new`].
    #[allow(deprecated)]
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for PoolAlloc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PoolAlloc").finish_non_exhaustive()
    }
}

// SAFETY: every method forwards to the `Heap` under the lock, or (with thread caches) hands out and takes
// back whole blocks of the pool class the layout names, which the caches hold exclusively while cached
// (see `thread_cache`); the heap returns blocks that fit the layout (size and alignment), keeps them
// disjoint until freed, returns null rather than unwinding when it has no memory, and preserves contents
// on reallocation.
unsafe impl GlobalAlloc for PoolAlloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        #[cfg(feature = "debug")]
        // SAFETY: forwarded contract; the debug layer calls `raw_alloc` below.
        let p = unsafe { crate::debug::alloc(self, layout, false) };
        #[cfg(not(feature = "debug"))]
        // SAFETY: forwarded contract.
        let p = unsafe { self.raw_alloc(layout) };
        #[cfg(all(feature = "trace", unix, not(loom)))]
        if crate::trace::active() && !p.is_null() {
            crate::trace::record_alloc(p, layout.size(), self.pool_class(layout));
        }
        p
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // Forgotten before the block can be handed out again (the debug layer does it after its checks).
        #[cfg(all(feature = "trace", unix, not(loom), not(feature = "debug")))]
        if crate::trace::active() {
            crate::trace::record_free(ptr);
        }
        #[cfg(feature = "debug")]
        // SAFETY: forwarded contract.
        unsafe {
            crate::debug::dealloc(self, ptr, layout)
        };
        #[cfg(not(feature = "debug"))]
        // SAFETY: forwarded contract.
        unsafe {
            self.raw_dealloc(ptr, layout)
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        #[cfg(feature = "debug")]
        // SAFETY: forwarded contract.
        let p = unsafe { crate::debug::alloc(self, layout, true) };
        #[cfg(not(feature = "debug"))]
        // SAFETY: forwarded contract.
        let p = unsafe { self.raw_alloc_zeroed(layout) };
        #[cfg(all(feature = "trace", unix, not(loom)))]
        if crate::trace::active() && !p.is_null() {
            crate::trace::record_alloc(p, layout.size(), self.pool_class(layout));
        }
        p
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // The old block is forgotten before it can be handed out again, and traced again if it stays
        // (the debug layer forgets it after its checks, when it frees it).
        #[cfg(all(feature = "trace", unix, not(loom)))]
        let traced = crate::trace::active();
        #[cfg(all(feature = "trace", unix, not(loom), not(feature = "debug")))]
        if traced {
            crate::trace::record_free(ptr);
        }
        #[cfg(feature = "debug")]
        // SAFETY: forwarded contract.
        let p = unsafe { crate::debug::realloc(self, ptr, layout, new_size) };
        #[cfg(not(feature = "debug"))]
        // SAFETY: forwarded contract.
        let p = unsafe { self.realloc_any(ptr, layout, new_size) };
        #[cfg(all(feature = "trace", unix, not(loom)))]
        if traced {
            if !p.is_null() {
                // SAFETY: the caller guarantees `new_size` is valid for `layout.align()`.
                let new = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
                crate::trace::record_alloc(p, new_size, self.pool_class(new));
            } else if cfg!(not(feature = "debug")) {
                crate::trace::record_alloc(ptr, layout.size(), self.pool_class(layout));
            }
        }
        p
    }
}
