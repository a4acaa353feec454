//! [`Heap`]: the single-owner allocator core (`&mut self`, no locks).
//!
//! Small requests (size rounded to alignment ≤ 512 bytes) are served from size-class pools; larger or
//! more-aligned ones from the [`large`](crate::large) layer. `dealloc` is handed the `Layout`, so whether a
//! pointer is small is decided from its layout alone — no address-range lookup as in pymalloc.
//!
//! # The fast paths
//!
//! `allocate` of a small block: compute the class, load `used[class]` (the pool at the head of that class's
//! list of partly used pools), pop its free list or carve the next never-used block, bump `in_use`, and if
//! the pool just became full unlink it (cold). `deallocate`: mask the address to find the pool header, push
//! the block, and only if the pool was full or became empty go to the cold path that relinks it or gives it
//! back to its arena. Everything else — new pools, new arenas, large blocks — is `#[cold]`.

use core::alloc::Layout;
use core::ptr::{self, NonNull};

use crate::arena::{ArenaHeader, Arenas, ARENA_RESERVED};
use crate::config::Config;
use crate::decay::{Decay, DECAY_MS};
use crate::large::Large;
use crate::pool::{self, PoolHeader, POOL_HEADER};
use crate::size_class::{
    block_size, effective_size, pool_class_of, MEDIUM_SIZE, NUM_MEDIUM, NUM_POOL_CLASSES, SMALL_MAX,
};
use crate::source::{RegionError, Sources};

mod batch;
mod check;
mod spares;
mod stats;
mod visit;
pub use check::{BlockState, HeapError};
pub use visit::PoolInfo;

/// Wholly free arenas a heap growing from the OS keeps however long they stay unused (see
/// [`Heap::max_spares`]).
pub(crate) const MIN_SPARES: usize = 4;

/// Running totals kept on every operation (the rest of [`Stats`](crate::Stats) is computed by walking the
/// arenas, see `heap/stats.rs`).
#[derive(Clone, Copy)]
struct Counters {
    bytes_in_use: usize,
    peak: usize,
    allocations: u64,
    deallocations: u64,
    large_blocks: usize,
    large_bytes: usize,
    arenas_total: usize,
    arenas_reclaimed: usize,
    arenas_highwater: usize,
}

/// The allocator core: pools, arenas and sources, driven through `&mut self`.
///
/// `Heap` knows nothing of locks; [`PoolAlloc`](crate::PoolAlloc) wraps one in a lock to make a
/// `GlobalAlloc`. It is also usable directly, e.g. as a per-thread or per-task heap:
///
/// ```
/// use core::alloc::Layout;
/// use poolgc::{Config, Heap};
///
/// static mut MEM: [u8; 16 * 1024] = [0; 16 * 1024];
/// let mut heap = Heap::empty(Config::SMALL);
/// // SAFETY: MEM is used by nothing else.
/// unsafe { heap.add_region(&raw mut MEM as *mut u8, 16 * 1024).unwrap() };
/// let layout = Layout::new::<[u64; 4]>();
/// let p = heap.allocate(layout).expect("room for 32 bytes");
/// assert_eq!(heap.stats().classes[1].blocks_in_use, 1); // class 1 = 32-byte blocks (64-bit)
/// unsafe { heap.deallocate(p, layout) };
/// heap.check().unwrap();
/// ```
pub struct Heap {
    config: Config,
    /// `pool_size - 1`: masking a block address with its complement gives the pool header.
    pool_mask: usize,
    /// Largest request (size rounded to alignment ≤ 16) served from medium-class pools: the largest medium
    /// class of which a pool holds at least four blocks; `SMALL_MAX` when the pools are too small for any.
    pool_max: usize,
    /// Per class, the head of the doubly linked list of pools with `0 < in_use < capacity`.
    used: [*mut PoolHeader; NUM_POOL_CLASSES],
    arenas: Arenas,
    sources: Sources,
    large: Large,
    counters: Counters,
    /// The decay of spare arenas beyond `MIN_SPARES` (see `spares.rs`).
    spare_decay: Decay,
    /// The geometry is still to be fitted to the first region added (see [`Heap::empty_fitted`]).
    fit: bool,
}

// SAFETY: a `Heap` exclusively owns every pool, arena and region it points to; nothing in it is tied to a
// thread, so moving it to another thread moves that ownership.
unsafe impl Send for Heap {}

impl Heap {
    /// A heap with this geometry that grows from the OS on demand (feature `os`; without it, it behaves as
    /// [`Heap::empty`]). Regions may be added as well; they are used first.
    pub const fn new(config: Config) -> Heap {
        Heap::build(config, true)
    }

    /// A heap that never asks the OS for memory: it serves only the regions handed to
    /// [`add_region`](Heap::add_region).
    pub const fn empty(config: Config) -> Heap {
        Heap::build(config, false)
    }

    /// Like [`empty`](Heap::empty), with the geometry the first region added calls for
    /// ([`Config::for_region`]): until then the heap has no memory, so no block depends on it.
    pub const fn empty_fitted() -> Heap {
        let mut h = Heap::build(Config::SMALL, false);
        h.fit = true;
        h
    }

    const fn build(config: Config, use_os: bool) -> Heap {
        Heap {
            config,
            pool_mask: config.pool_size() - 1,
            pool_max: pool_max(config),
            used: [ptr::null_mut(); NUM_POOL_CLASSES],
            arenas: Arenas::new(),
            sources: Sources::new(use_os),
            large: Large::new(),
            counters: Counters {
                bytes_in_use: 0,
                peak: 0,
                allocations: 0,
                deallocations: 0,
                large_blocks: 0,
                large_bytes: 0,
                arenas_total: 0,
                arenas_reclaimed: 0,
                arenas_highwater: 0,
            },
            spare_decay: Decay::new(DECAY_MS),
            fit: false,
        }
    }

    /// The pool and arena geometry.
    pub fn config(&self) -> Config {
        self.config
    }

    /// Hands `[start, start + len)` over to the heap. Arenas and large blocks are carved from it
    /// (first fit); several regions may be added. Regions are never given back.
    ///
    /// # Safety
    /// The span must be valid for reads and writes, used by nothing else for as long as the heap (or any
    /// block it handed out) lives, and derived from a pointer whose provenance covers all of it.
    pub unsafe fn add_region(&mut self, start: *mut u8, len: usize) -> Result<(), RegionError> {
        // SAFETY: forwarded contract.
        unsafe { self.sources.add_region(start, len) }?;
        if self.fit {
            // The first region: nothing was ever allocated (there was no memory), so nothing depends on
            // the geometry yet.
            debug_assert!(self.arenas.all.is_null() && self.counters.large_blocks == 0);
            let c = Config::for_region(len);
            (self.config, self.pool_mask, self.pool_max) = (c, c.pool_size() - 1, pool_max(c));
            self.fit = false;
        }
        Ok(())
    }

    /// Allocates a block for `layout`; `None` when no source has room. Never panics.
    /// A zero-size layout gets a real, unique block of the smallest class.
    #[inline]
    pub fn allocate(&mut self, layout: Layout) -> Option<NonNull<u8>> {
        match self.pool_class(layout) {
            Some(class) => self.alloc_small(class).map(|(p, _)| p),
            None => self.alloc_large(layout, false).map(|(p, _)| p),
        }
    }

    /// The pool class serving `layout`: its small class, or a medium class when it is larger than
    /// `SMALL_MAX`, not over-aligned, and fits this heap's medium pools; `None` for the large path.
    #[inline(always)]
    pub(crate) fn pool_class(&self, layout: Layout) -> Option<usize> {
        pool_class_of(layout.size(), layout.align(), self.pool_max)
    }

    /// Whether blocks of `layout` come from the pools (small and medium classes) rather than the large
    /// path.
    #[inline]
    pub fn is_pooled(&self, layout: Layout) -> bool {
        self.pool_class(layout).is_some()
    }

    /// Like [`allocate`](Heap::allocate), with the first `layout.size()` bytes zeroed. Memory that came
    /// zeroed from the OS and was never used is not written again.
    pub fn allocate_zeroed(&mut self, layout: Layout) -> Option<NonNull<u8>> {
        let (p, pristine) = if let Some(class) = self.pool_class(layout) {
            self.alloc_small(class)?
        } else {
            self.alloc_large(layout, true)?
        };
        if !pristine {
            // SAFETY: the block was just allocated with at least `layout.size()` bytes.
            unsafe { ptr::write_bytes(p.as_ptr(), 0, layout.size()) };
        }
        Some(p)
    }

    /// Frees a block.
    ///
    /// # Safety
    /// `ptr` was returned by this heap's `allocate`/`allocate_zeroed`/`reallocate` for `layout` (for
    /// `reallocate`, the layout with the new size) and has not been freed since.
    #[inline]
    pub unsafe fn deallocate(&mut self, ptr: NonNull<u8>, layout: Layout) {
        if self.is_pooled(layout) {
            // SAFETY: a pooled layout means the block lives in one of our pools.
            unsafe { self.dealloc_small(pool::link_ptr(ptr.as_ptr(), layout.size())) }
        } else {
            // SAFETY: forwarded contract.
            unsafe { self.dealloc_large(ptr, layout) }
        }
    }

    /// Resizes a block to `new_size` bytes (alignment unchanged), keeping `min(old, new)` bytes of content.
    ///
    /// Stays in place when the new size still fits its block and a shrink would not save at least 25%
    /// (pymalloc's rule), or, for large OS blocks, when the page count is unchanged or `mremap` can move it.
    /// On `None` the old block is untouched and still owned by the caller.
    ///
    /// # Safety
    /// As for [`deallocate`](Heap::deallocate); `new_size` rounded up to `layout.align()` must not exceed
    /// `isize::MAX`.
    pub unsafe fn reallocate(
        &mut self,
        ptr: NonNull<u8>,
        layout: Layout,
        new_size: usize,
    ) -> Option<NonNull<u8>> {
        let align = layout.align();
        // SAFETY: the caller guarantees the new size is a valid layout size for this alignment.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, align) };
        let new_e = effective_size(new_size, align);
        let (old_pooled, new_pooled) = (self.is_pooled(layout), self.is_pooled(new_layout));
        if old_pooled && new_pooled {
            // SAFETY: a live pooled block lives in an initialised pool of this heap.
            let pool = unsafe { pool::pool_of(ptr.as_ptr(), self.pool_mask) };
            // SAFETY: as above.
            let bs = block_size(unsafe { (*pool).class } as usize);
            if new_e <= bs && 4 * new_e > 3 * bs {
                // Hand back the heap's provenance, not the caller's (possibly narrower) tag.
                return NonNull::new(pool.cast::<u8>().with_addr(ptr.as_ptr().addr()));
            }
        } else if !old_pooled && !new_pooled {
            // SAFETY: a live large block of `layout`; the new size is valid (caller).
            if let Some(p) = unsafe { self.large.resize(&mut self.sources, ptr, layout, new_size) }
            {
                self.counters.large_bytes = self.counters.large_bytes - layout.size() + new_size;
                self.note_bytes_in_use(self.counters.bytes_in_use - layout.size() + new_size);
                return Some(p);
            }
        }
        let new = self.allocate(new_layout)?;
        // SAFETY: both blocks are live, distinct, and at least `min(old, new)` bytes long.
        unsafe {
            ptr::copy_nonoverlapping(ptr.as_ptr(), new.as_ptr(), layout.size().min(new_size));
            self.deallocate(ptr, layout);
        }
        Some(new)
    }

    /// The bytes a block of `layout` counts in `bytes_in_use`: its class size when pooled, else its size.
    pub fn usable_size(&self, layout: Layout) -> usize {
        match self.pool_class(layout) {
            Some(class) => block_size(class),
            None => layout.size(),
        }
    }

    /// Gives the spare arenas (wholly free arenas kept against thrashing, see
    /// [`max_spares`](Heap::max_spares)) back to their sources, the binned large region blocks back to
    /// their regions' first-fit allocator, and unmaps the large-block cache (freed OS mappings kept for
    /// reuse). Returns the bytes released.
    pub fn trim(&mut self) -> usize {
        let src = &mut self.sources;
        self.large.flush_bins(src) + self.large.trim_cache(src) + self.release_spares()
    }

    // ---- small blocks -------------------------------------------------------------------------------

    /// Frees a small block whatever layout it was last handed out with (its class is read from its pool).
    ///
    /// # Safety
    /// `block` is a live small block of this heap.
    #[inline]
    #[cfg_attr(not(all(feature = "std", not(loom))), allow(dead_code))]
    pub(crate) unsafe fn dealloc_small_block(&mut self, block: *mut u8) {
        // SAFETY: forwarded contract.
        unsafe { self.dealloc_small(block) }
    }

    /// Allocates a block of pool class `class` (the lock-free part of the class choice done by the caller,
    /// [`PoolAlloc`](crate::PoolAlloc), before it takes the lock).
    ///
    /// # Safety
    /// `class` is what [`pool_class`](Heap::pool_class) returns for some layout on this heap.
    #[inline(always)]
    pub(crate) unsafe fn alloc_class(&mut self, class: usize) -> Option<NonNull<u8>> {
        debug_assert!(class < NUM_POOL_CLASSES);
        self.alloc_small(class).map(|(p, _)| p)
    }

    /// Allocates a block for a layout that [`pool_class`](Heap::pool_class) sends to the large path.
    #[inline]
    pub(crate) fn alloc_large_block(&mut self, layout: Layout) -> Option<NonNull<u8>> {
        self.alloc_large(layout, false).map(|(p, _)| p)
    }

    /// Takes a block of `class`; returns it and whether it is pristine zeroed OS memory.
    #[inline(always)]
    fn alloc_small(&mut self, class: usize) -> Option<(NonNull<u8>, bool)> {
        debug_assert!(class < NUM_POOL_CLASSES);
        // SAFETY: every caller passes a class from `pool_class`, which is below NUM_POOL_CLASSES.
        let mut pool = unsafe { *self.used.get_unchecked(class) };
        if pool.is_null() {
            pool = self.new_pool(class, true)?;
        }
        // SAFETY: pools on a used list are initialised, of this class, and not full.
        let (block, pristine) = unsafe {
            let taken = pool::take_block(pool, class);
            if (*pool).in_use == (*pool).capacity {
                self.pool_filled(pool, class);
            }
            taken
        };
        self.counters.allocations += 1;
        self.note_bytes_in_use(self.counters.bytes_in_use + block_size(class));
        // SAFETY: blocks are inside pools, never at address 0.
        Some((unsafe { NonNull::new_unchecked(block) }, pristine))
    }

    /// Frees a pooled (small or medium) block, whatever layout it was last handed out with.
    ///
    /// # Safety
    /// `block` is a live pooled block of this heap.
    #[inline(always)]
    pub(crate) unsafe fn dealloc_small(&mut self, block: *mut u8) {
        // SAFETY: the block's pool is initialised and the block is handed out.
        unsafe {
            let pool = pool::pool_of(block, self.pool_mask);
            let was_full = (*pool).in_use == (*pool).capacity;
            pool::put_block(pool, block);
            self.counters.deallocations += 1;
            self.counters.bytes_in_use -= (*pool).block_size as usize;
            if was_full || (*pool).in_use == 0 {
                self.pool_changed_list(pool, was_full);
            }
        }
    }

    /// Cold part of a small allocation: the pool just became full, so it leaves its class's used list.
    ///
    /// # Safety
    /// `pool` is on the used list of `class` and now full.
    #[cold]
    #[inline(never)]
    unsafe fn pool_filled(&mut self, pool: *mut PoolHeader, class: usize) {
        // SAFETY: forwarded contract.
        unsafe { self.unlink_used(pool, class) }
    }

    /// Cold part of a small free: a full pool got a free block (relink it), or a pool became empty (give it
    /// back to its arena, and the arena to its source if it is wholly free).
    #[cold]
    #[inline(never)]
    unsafe fn pool_changed_list(&mut self, pool: *mut PoolHeader, was_full: bool) {
        // SAFETY: `pool` is live and initialised; it is on its class's used list unless it was full.
        unsafe {
            let class = (*pool).class as usize;
            if (*pool).in_use > 0 {
                self.link_used(pool, class);
                return;
            }
            if !was_full {
                self.unlink_used(pool, class);
            }
            let max = self.max_spares();
            if let Some(a) = self.arenas.return_pool(pool, max) {
                self.release_arena(a);
            } else if self.arenas.spares > MIN_SPARES {
                self.decay_spares();
            }
        }
    }

    /// Puts a new pool for `class` at the head of its (empty) used list; grows by an arena if needed and
    /// `grow` allows it (else `None`, as when the sources are exhausted).
    #[cold]
    #[inline(never)]
    fn new_pool(&mut self, class: usize, grow: bool) -> Option<*mut PoolHeader> {
        let ps = self.config.pool_size();
        // SAFETY: the arena lists are well formed.
        let (pool, arena, fresh) = match unsafe { self.arenas.take_pool(ps) } {
            Some(t) => t,
            None => {
                if !grow {
                    return None;
                }
                self.grow()?;
                // SAFETY: as above; the new arena has a free pool.
                unsafe { self.arenas.take_pool(ps) }?
            }
        };
        // SAFETY: a pool taken from an arena is ours, with no block in use (pool 0 also carries the arena
        // header, which `reserved` keeps clear of).
        unsafe {
            let reserved = if (*arena).base == pool.cast::<u8>() {
                ARENA_RESERVED
            } else {
                POOL_HEADER
            };
            pool::init(pool, arena.cast(), class, reserved, ps, fresh);
            self.link_used(pool, class);
        }
        if self.spare_decay.running() {
            // A spare taken back into use was wanted this period: the period's low-water mark keeps it.
            self.spare_decay.fell_to(self.arenas.spares);
            self.decay_spares();
        }
        Some(pool)
    }

    /// Takes a new arena from the sources: a full-size one, or in a region short of room, the largest
    /// smaller run of pools that still fits. Memory held for reuse (spare arenas, cached mappings) is
    /// released before this fails, as on the large path: it must not make a request fail.
    #[cold]
    fn grow(&mut self) -> Option<()> {
        if self.try_grow() {
            return Some(());
        }
        if self.release_spares() + self.large.trim_cache(&mut self.sources) == 0 {
            return None;
        }
        self.try_grow().then_some(())
    }

    /// One attempt of [`grow`](Heap::grow), halving the arena down to one pool while no source has room.
    fn try_grow(&mut self) -> bool {
        let ps = self.config.pool_size();
        let mut size = self.config.arena_size();
        loop {
            // SAFETY: size is a non-zero multiple of the power-of-two pool size, far below isize::MAX.
            let layout = unsafe { Layout::from_size_align_unchecked(size, ps) };
            if let Some((base, fresh)) = self.large.alloc_arena(&mut self.sources, layout) {
                // SAFETY: `base` is pool-aligned and the `size` bytes from it are ours.
                unsafe { self.arenas.add(base.as_ptr(), size / ps, fresh) };
                let c = &mut self.counters;
                c.arenas_total += 1;
                c.arenas_highwater = c.arenas_highwater.max(self.arenas.count);
                return true;
            }
            if size == ps {
                return false;
            }
            size = (size / 2).max(ps) / ps * ps;
        }
    }

    /// Gives a wholly free arena back to its source; returns its size.
    ///
    /// # Safety
    /// `a` is an arena already removed from every list, with no pool in use.
    unsafe fn release_arena(&mut self, a: *mut ArenaHeader) -> usize {
        let ps = self.config.pool_size();
        // SAFETY: the arena header is still readable; the arena came from the sources with this layout.
        unsafe {
            let size = (*a).ntotal as usize * ps;
            let base = NonNull::new_unchecked((*a).base);
            let layout = Layout::from_size_align_unchecked(size, ps);
            self.large.free_arena(&mut self.sources, base, layout);
            self.counters.arenas_reclaimed += 1;
            size
        }
    }

    /// Links a pool at the head of its class's used list.
    unsafe fn link_used(&mut self, pool: *mut PoolHeader, class: usize) {
        let head = self.used[class];
        // SAFETY: `pool` and `head` (if any) are live pool headers.
        unsafe {
            (*pool).prev = ptr::null_mut();
            (*pool).next = head;
            if !head.is_null() {
                (*head).prev = pool;
            }
        }
        self.used[class] = pool;
    }

    /// Unlinks a pool from its class's used list.
    unsafe fn unlink_used(&mut self, pool: *mut PoolHeader, class: usize) {
        // SAFETY: `pool` is on the list, so its neighbours are live pool headers.
        unsafe {
            let (n, p) = ((*pool).next, (*pool).prev);
            if !n.is_null() {
                (*n).prev = p;
            }
            if p.is_null() {
                self.used[class] = n;
            } else {
                (*p).next = n;
            }
        }
    }

    // ---- large blocks -------------------------------------------------------------------------------

    /// Allocates a large block (`zeroed`: the caller zeroes it, see [`Large::alloc`]); returns it and
    /// whether it is zeroed OS memory.
    #[cold]
    #[inline(never)]
    fn alloc_large(&mut self, layout: Layout, zeroed: bool) -> Option<(NonNull<u8>, bool)> {
        let r = match self.large.alloc(&mut self.sources, layout, zeroed) {
            Some(r) => r,
            None => {
                // Memory held for reuse (spare arenas, cached mappings) must not make a request fail.
                if self.release_spares() + self.large.trim_cache(&mut self.sources) == 0 {
                    return None;
                }
                self.large.alloc(&mut self.sources, layout, zeroed)?
            }
        };
        let c = &mut self.counters;
        c.allocations += 1;
        c.large_blocks += 1;
        c.large_bytes += layout.size();
        self.note_bytes_in_use(self.counters.bytes_in_use + layout.size());
        Some(r)
    }

    /// Frees a block of a layout that [`pool_class`](Heap::pool_class) sends to the large path.
    ///
    /// # Safety
    /// As for [`deallocate`](Heap::deallocate).
    #[cold]
    #[inline(never)]
    pub(crate) unsafe fn dealloc_large(&mut self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: forwarded contract.
        unsafe { self.large.dealloc(&mut self.sources, ptr, layout) };
        let c = &mut self.counters;
        c.deallocations += 1;
        c.large_blocks -= 1;
        c.large_bytes -= layout.size();
        c.bytes_in_use -= layout.size();
    }

    #[inline(always)]
    fn note_bytes_in_use(&mut self, bytes: usize) {
        self.counters.bytes_in_use = bytes;
        if bytes > self.counters.peak {
            self.counters.peak = bytes;
        }
    }
}

/// The largest medium class of which a pool (pool 0 included, with the arena header) holds four blocks,
/// or `SMALL_MAX` if none.
pub(crate) const fn pool_max(config: Config) -> usize {
    let room = config.pool_size() - ARENA_RESERVED;
    let mut max = SMALL_MAX;
    let mut i = 0;
    while i < NUM_MEDIUM {
        if room / MEDIUM_SIZE[i] >= 4 {
            max = MEDIUM_SIZE[i];
        }
        i += 1;
    }
    max
}

impl core::fmt::Debug for Heap {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Heap")
            .field("config", &self.config)
            .field("bytes_in_use", &self.counters.bytes_in_use)
            .field("arenas", &self.arenas.count)
            .finish_non_exhaustive()
    }
}

impl Drop for Heap {
    /// Gives every arena back to its source (OS arenas are unmapped). Large OS blocks still live are not
    /// tracked and stay mapped; blocks still in use from the arenas dangle, as with any allocator dropped
    /// before its allocations (using or freeing them afterwards breaks `deallocate`'s contract).
    ///
    /// A heap that never asks the OS ([`Heap::empty`]) owns nothing outside its regions and touches no
    /// memory here, so its regions may already be gone.
    fn drop(&mut self) {
        if !self.sources.use_os {
            return;
        }
        self.large.trim_cache(&mut self.sources);
        let mut a = self.arenas.all;
        while !a.is_null() {
            // SAFETY: arenas on the all-list are live; the next link is read before the arena is given back,
            // and the lists are dropped with the heap (reset below), so no list still points to it.
            unsafe {
                let next = (*a).all_next;
                self.release_arena(a);
                a = next;
            }
        }
        self.arenas = Arenas::new();
    }
}
