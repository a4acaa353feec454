//! Per-thread caches of small blocks (feature `std`): the fast path of a [`PoolAlloc`] built with
//! [`PoolAlloc::with_thread_cache`].
//!
//! # The fast path
//!
//! Each thread has, per pool class (small and medium), a bounded LIFO list of free blocks threaded through
//! their first word (tcache / mimalloc style). `alloc` of a pool block is: compute the class, one
//! thread-local access, compare the cache's owner token with the allocator's, pop the list — no lock, no
//! atomic read-modify-write. `dealloc` pushes the block the same way. Only when a list is empty (refill:
//! half its bound) or full (flush: the colder half) does the thread touch shared state, once per 2–64
//! operations: first the central *transfer cache*, per class a stack of whole batches that a flush pushes
//! and a refill pops, O(1) under a short lock; only when that is empty (or full) the heap, under its lock,
//! with [`Heap::alloc_batch`] taking runs of blocks per pool. Threads that free each other's blocks do not
//! meet per free: a freed block simply lands in the freeing thread's cache (any thread may hold any block of
//! a class), and whole batches travel between threads through the transfer cache.
//!
//! # Whose blocks a cache holds
//!
//! A cache holds blocks of exactly one allocator, named by a *token*. At most one caching allocator per
//! process is *primary* at a time (the first one used; normally the one `#[global_allocator]` static):
//! it takes a fresh token under the orphan lock. Other caching instances run on the lock, as plain
//! `PoolAlloc`s do. A cache whose token is not the primary's belongs to an allocator that has been
//! dropped (dropping unregisters it), so its blocks are forgotten, never touched. Nothing here stores an
//! allocator's address, so moving a `PoolAlloc` is fine.
//!
//! # Thread exit and re-entrancy
//!
//! The cache is a `const`-initialised `thread_local!` without a destructor, so an access is a plain
//! thread-pointer-relative load (no "initialised?" state check) and first use allocates nothing. A second,
//! empty thread-local with a destructor is touched when the thread starts caching (outside any lock); on
//! Linux std registers it with glibc's `__cxa_thread_atexit_impl`, not through the Rust global allocator.
//! At thread exit it hands the cached blocks to the process-wide *orphan list* (it cannot reach the
//! allocator, whose address nothing stores) and closes the cache; the primary allocator takes orphans back
//! into its heap on its next refill or flush, or on [`PoolAlloc::flush_thread_cache`]. Allocations made
//! after that (other TLS destructors) find the cache closed and use the lock.
//!
//! # Statistics
//!
//! Blocks sitting in thread caches or on the orphan list are in use from the heap's point of view:
//! [`Stats`](crate::Stats) counts them in `bytes_in_use` and the per-class `blocks_in_use`, and
//! `allocations`/`deallocations`/`peak_bytes_in_use` move at batch granularity. `Heap::check()` stays exact
//! for the heap. [`PoolAlloc::flush_thread_cache`] gives back the calling thread's blocks and the orphans,
//! so a thread that wants exact figures calls it before [`PoolAlloc::stats`]; a thread's cache is flushed
//! at its exit.
//!
//! [`PoolAlloc`]: crate::PoolAlloc
//! [`PoolAlloc::with_thread_cache`]: crate::PoolAlloc::with_thread_cache
//! [`PoolAlloc::flush_thread_cache`]: crate::PoolAlloc::flush_thread_cache
//! [`PoolAlloc::stats`]: crate::PoolAlloc::stats

use core::alloc::Layout;
use core::cell::UnsafeCell;
use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::heap::Heap;
use crate::size_class::{block_size, NUM_CLASSES, NUM_POOL_CLASSES};
use crate::sync::Lock;

/// `Owner::token` of a caching allocator that has not tried to become primary yet.
const UNCLAIMED: usize = 0;
/// `Owner::token` of an allocator without caches, or one that found another one primary: it uses the lock.
const NOT_PRIMARY: usize = 1;
/// `ThreadCache::token` of a thread that has not used a cache yet (never an owner's token).
const NO_OWNER: usize = usize::MAX;
/// `ThreadCache::token` of a thread whose exit handler has run: the lock from then on.
const EXITED: usize = usize::MAX - 1;
/// Tokens handed to primaries start here (0 and 1 are the markers above).
static NEXT_TOKEN: AtomicUsize = AtomicUsize::new(2);

/// Most batches the central transfer cache keeps per class.
const MAX_BATCHES: usize = 32;

/// The process-wide part: which token is primary, blocks left by threads that exited, and the transfer
/// cache: per class, whole batches flushed by one thread and taken whole by the next refill (of any
/// thread), each move O(1) under this lock, so that blocks travelling between threads (or out of and back
/// into one thread's cache) skip the heap.
struct Orphans {
    /// Token of the primary allocator, or [`UNCLAIMED`].
    primary: usize,
    /// Blocks of the primary, of any class, linked through their first word.
    list: *mut u8,
    /// Per class, `nbatches[class]` batches: null-terminated lists of blocks of that class, with lengths.
    batches: [[(*mut u8, u32); MAX_BATCHES]; NUM_POOL_CLASSES],
    nbatches: [u8; NUM_POOL_CLASSES],
}

impl Orphans {
    /// Forgets everything (the primary is gone, or a new one starts).
    fn clear(&mut self) {
        self.list = ptr::null_mut();
        self.nbatches = [0; NUM_POOL_CLASSES];
    }

    /// Takes every block held centrally (orphans and batches) as one list.
    fn take_all(&mut self) -> *mut u8 {
        let mut all = core::mem::replace(&mut self.list, ptr::null_mut());
        for class in 0..NUM_POOL_CLASSES {
            for &(head, _) in &self.batches[class][..self.nbatches[class] as usize] {
                // SAFETY: a batch is a well-formed list of free blocks owned by this structure.
                unsafe { append(head, all) };
                all = head;
            }
            self.nbatches[class] = 0;
        }
        all
    }
}
// SAFETY: the list's blocks are owned by whoever holds the lock.
unsafe impl Send for Orphans {}

static ORPHANS: Lock<Orphans> = Lock::new(Orphans {
    primary: UNCLAIMED,
    list: ptr::null_mut(),
    batches: [[(ptr::null_mut(), 0); MAX_BATCHES]; NUM_POOL_CLASSES],
    nbatches: [0; NUM_POOL_CLASSES],
});
/// Hint that `ORPHANS.list` is non-empty (checked without the lock on the slow paths).
static ORPHANS_PENDING: AtomicBool = AtomicBool::new(false);

/// The per-allocator part, a field of `PoolAlloc`.
pub(crate) struct Owner {
    enabled: bool,
    token: AtomicUsize,
}

impl Owner {
    pub(crate) const fn new(enabled: bool) -> Owner {
        Owner {
            enabled,
            token: AtomicUsize::new(if enabled { UNCLAIMED } else { NOT_PRIMARY }),
        }
    }

    #[inline(always)]
    pub(crate) fn enabled(&self) -> bool {
        self.enabled
    }

    /// Tries to make this allocator the primary one; returns its token if it is.
    #[cold]
    fn claim(&self) -> Option<usize> {
        match self.token.load(Ordering::Relaxed) {
            NOT_PRIMARY => return None,
            UNCLAIMED => {}
            t => return Some(t),
        }
        let mut o = ORPHANS.lock();
        // Another thread may have claimed for this allocator meanwhile: every store of the token happens
        // under this lock, so this read is the final word.
        match self.token.load(Ordering::Relaxed) {
            UNCLAIMED => {}
            NOT_PRIMARY => return None,
            t => return Some(t),
        }
        let t = if o.primary == UNCLAIMED {
            let t = NEXT_TOKEN.fetch_add(1, Ordering::Relaxed);
            o.primary = t;
            o.clear();
            t
        } else {
            NOT_PRIMARY
        };
        self.token.store(t, Ordering::Relaxed);
        (t != NOT_PRIMARY).then_some(t)
    }
}

impl Drop for Owner {
    /// Unregisters a primary allocator: the orphans and every cache's blocks of it are forgotten.
    fn drop(&mut self) {
        let t = *self.token.get_mut();
        if t >= 2 {
            let mut o = ORPHANS.lock();
            if o.primary == t {
                o.primary = UNCLAIMED;
                o.clear();
            }
        }
    }
}

/// Most blocks a thread keeps per class (a table, so the fast path does no division): for small classes
/// about 8 KiB worth, between 16 and 128 blocks; for medium ones about 16 KiB worth, between 4 and 16.
const LIMIT: [u32; NUM_POOL_CLASSES] = {
    let mut t = [0; NUM_POOL_CLASSES];
    let mut c = 0;
    while c < NUM_POOL_CLASSES {
        let (budget, min, max) = if c < NUM_CLASSES {
            (8192, 16, 128)
        } else {
            (16384, 4, 16)
        };
        let n = budget / block_size(c);
        t[c] = if n < min {
            min as u32
        } else if n > max {
            max as u32
        } else {
            n as u32
        };
        c += 1;
    }
    t
};

#[inline(always)]
fn limit(class: usize) -> u32 {
    LIMIT[class]
}

#[derive(Clone, Copy)]
struct Bin {
    head: *mut u8,
    count: u32,
}

/// One thread's cache.
struct ThreadCache {
    token: usize,
    bins: [Bin; NUM_POOL_CLASSES],
}

const EMPTY_BIN: Bin = Bin {
    head: ptr::null_mut(),
    count: 0,
};

std::thread_local! {
    /// The cache itself: no destructor, so an access is a plain thread-pointer-relative load, valid
    /// until the thread is gone (also while other TLS destructors run).
    static CACHE: UnsafeCell<ThreadCache> = const {
        UnsafeCell::new(ThreadCache { token: NO_OWNER, bins: [EMPTY_BIN; NUM_POOL_CLASSES] })
    };
    /// Touched when a thread starts caching, so that its destructor runs at thread exit.
    static EXIT: ExitHandler = const { ExitHandler };
}

/// The thread-exit hook.
struct ExitHandler;

impl Drop for ExitHandler {
    /// Thread exit: the blocks go to the orphan list if their allocator is still primary, and the cache
    /// closes (later allocations of this thread, from other TLS destructors, use the lock).
    fn drop(&mut self) {
        let _ = CACHE.try_with(|c| {
            // SAFETY: only this thread touches its cache, and no other reference to it is live here.
            let c = unsafe { &mut *c.get() };
            let (chain, _) = c.take_all();
            let token = core::mem::replace(&mut c.token, EXITED);
            if chain.is_null() {
                return;
            }
            let mut o = ORPHANS.lock();
            if o.primary == token {
                // SAFETY: `chain` is a well-formed list of blocks we own; its last block gets the old list.
                unsafe { append(chain, o.list) };
                o.list = chain;
                ORPHANS_PENDING.store(true, Ordering::Relaxed);
            }
        });
    }
}

impl ThreadCache {
    /// Empties every bin into one chain; returns its head and length.
    fn take_all(&mut self) -> (*mut u8, usize) {
        let mut chain = ptr::null_mut();
        let mut n = 0;
        for bin in self.bins.iter_mut() {
            if bin.head.is_null() {
                continue;
            }
            // SAFETY: the bin is a well-formed list of blocks this thread owns.
            unsafe { append(bin.head, chain) };
            chain = bin.head;
            n += bin.count as usize;
            *bin = EMPTY_BIN;
        }
        (chain, n)
    }

    /// Makes this cache serve the allocator with token `t` (forgetting blocks of a dropped one).
    #[cold]
    fn adopt_token(&mut self, t: usize) {
        self.bins = [EMPTY_BIN; NUM_POOL_CLASSES];
        self.token = t;
    }
}

/// Links `tail` after the last block of the non-empty list `head`.
///
/// # Safety
/// `head` is a well-formed, null-terminated list of blocks owned by the caller.
unsafe fn append(head: *mut u8, tail: *mut u8) {
    let mut b = head;
    // SAFETY: every block of the list holds the next one in its first word.
    unsafe {
        loop {
            let next = b.cast::<*mut u8>().read();
            if next.is_null() {
                break;
            }
            b = next;
        }
        b.cast::<*mut u8>().write(tail);
    }
}

/// Pops a block of `class` from this thread's cache; on a miss, [`alloc_slow`] refills it, or serves
/// `layout` under the lock when the cache cannot (this allocator is not primary, or the thread has
/// exited). Null when the heap is out of memory.
#[inline(always)]
pub(crate) fn alloc(owner: &Owner, heap: &Lock<Heap>, class: usize, layout: Layout) -> *mut u8 {
    let token = owner.token.load(Ordering::Relaxed);
    let c = CACHE.with(UnsafeCell::get);
    // SAFETY: the cache is only touched by this thread, and no other reference to it is live (nothing
    // between here and the end of the function re-enters this module).
    unsafe {
        if (*c).token == token {
            let bin = &mut (*c).bins[class];
            let b = bin.head;
            if !b.is_null() {
                // Blocks in a bin are free blocks of this class owned by this thread; the first word
                // holds the next one.
                bin.head = b.cast::<*mut u8>().read();
                bin.count -= 1;
                return b;
            }
        }
    }
    alloc_slow(owner, heap, class, layout)
}

#[cold]
#[inline(never)]
fn alloc_slow(owner: &Owner, heap: &Lock<Heap>, class: usize, layout: Layout) -> *mut u8 {
    let cp = CACHE.with(UnsafeCell::get);
    {
        // SAFETY: as in `alloc`; `claim` takes a lock, which never allocates.
        let c = unsafe { &mut *cp };
        if c.token != owner.token.load(Ordering::Relaxed) {
            let claimed = if c.token == EXITED || !owner.enabled {
                None
            } else {
                owner.claim()
            };
            let Some(t) = claimed else {
                return heap
                    .lock()
                    .allocate(layout)
                    .map_or(ptr::null_mut(), NonNull::as_ptr);
            };
            c.adopt_token(t);
            // The exit hook is registered now, with no reference to the cache live and no lock held: if
            // the platform's registration allocates, that allocation finds the cache ready.
            let _ = EXIT.try_with(|_| ());
        }
    }
    // SAFETY: as in `alloc`; the reference above has ended, and a nested allocation made while
    // registering the exit hook has returned (it may have refilled this bin).
    let bin = unsafe { &mut (*cp).bins[class] };
    let b = bin.head;
    if !b.is_null() {
        // SAFETY: as in `alloc`.
        bin.head = unsafe { b.cast::<*mut u8>().read() };
        bin.count -= 1;
        return b;
    }
    refill(bin, heap, class).map_or(ptr::null_mut(), NonNull::as_ptr)
}

/// Takes half a bin's bound from the heap under one lock; returns one block and caches the rest.
#[cold]
#[inline(never)]
fn refill(bin: &mut Bin, heap: &Lock<Heap>, class: usize) -> Option<NonNull<u8>> {
    debug_assert!(bin.head.is_null());
    let (batch, orphans) = {
        let mut o = ORPHANS.lock();
        let n = o.nbatches[class] as usize;
        let batch = if n > 0 {
            o.nbatches[class] -= 1;
            Some(o.batches[class][n - 1])
        } else {
            None
        };
        let orphans = if ORPHANS_PENDING.load(Ordering::Relaxed) {
            ORPHANS_PENDING.store(false, Ordering::Relaxed);
            core::mem::replace(&mut o.list, ptr::null_mut())
        } else {
            ptr::null_mut()
        };
        (batch, orphans)
    };
    if !orphans.is_null() {
        // SAFETY: the orphans are blocks of this heap (the primary's), no longer used by anyone.
        unsafe { give_back(&mut heap.lock(), orphans) };
    }
    let (list, n) = match batch {
        Some(b) => b,
        None => heap
            .lock()
            .alloc_batch(class, limit(class) / 2, ptr::null_mut()),
    };
    if n == 0 {
        return None;
    }
    // SAFETY: `list` holds `n ≥ 1` free blocks of this class linked through their first word.
    bin.head = unsafe { list.cast::<*mut u8>().read() };
    bin.count += n - 1;
    // SAFETY: list entries are never null.
    Some(unsafe { NonNull::new_unchecked(list) })
}

/// Pushes a freed block of `class` on this thread's cache; [`dealloc_slow`] flushes the colder half of
/// a full bin, or frees under the lock when the cache cannot take the block.
///
/// # Safety
/// `block` is a live block of the allocator that owns `owner` and `heap`, handed out for `layout`, whose
/// class is `class`, and no longer used by the caller.
#[inline(always)]
pub(crate) unsafe fn dealloc(
    owner: &Owner,
    heap: &Lock<Heap>,
    block: *mut u8,
    class: usize,
    layout: Layout,
) {
    // The caller's pointer may carry a tag that covers only its own bytes (a `Box<T>`'s): the block is
    // stored and handed out again, so take the heap's provenance back (exposed for every arena, see
    // `pool::pool_of`). A no-op at run time.
    let block = core::ptr::with_exposed_provenance_mut::<u8>(block.addr());
    let token = owner.token.load(Ordering::Relaxed);
    let c = CACHE.with(UnsafeCell::get);
    // SAFETY: as in `alloc`; the block is ours now, at least a pointer wide and aligned.
    unsafe {
        if (*c).token == token {
            let bin = &mut (*c).bins[class];
            if bin.count + 1 < limit(class) {
                block.cast::<*mut u8>().write(bin.head);
                bin.head = block;
                bin.count += 1;
                return;
            }
        }
        dealloc_slow(owner, heap, block, class, layout)
    }
}

/// # Safety
/// As for [`dealloc`].
#[cold]
#[inline(never)]
unsafe fn dealloc_slow(
    owner: &Owner,
    heap: &Lock<Heap>,
    block: *mut u8,
    class: usize,
    layout: Layout,
) {
    let c = CACHE.with(UnsafeCell::get);
    // SAFETY: as in `alloc`.
    let c = unsafe { &mut *c };
    if c.token != owner.token.load(Ordering::Relaxed) {
        // SAFETY: forwarded contract: a live block of this heap with this layout.
        unsafe {
            heap.lock()
                .deallocate(NonNull::new_unchecked(block), layout)
        };
        return;
    }
    let bin = &mut c.bins[class];
    // SAFETY: the block is ours now, at least a pointer wide and aligned.
    unsafe { block.cast::<*mut u8>().write(bin.head) };
    bin.head = block;
    bin.count += 1;
    flush_half(bin, heap, class);
}

/// Gives the colder half of a full bin back to the heap under one lock.
#[cold]
#[inline(never)]
fn flush_half(bin: &mut Bin, heap: &Lock<Heap>, class: usize) {
    let keep = limit(class) / 2;
    let mut last = bin.head;
    // SAFETY: the bin holds `count > keep` well-formed entries; we cut the list after the `keep`-th.
    let cold = unsafe {
        for _ in 1..keep {
            last = last.cast::<*mut u8>().read();
        }
        let cold = last.cast::<*mut u8>().read();
        last.cast::<*mut u8>().write(ptr::null_mut());
        cold
    };
    let n = bin.count - keep;
    bin.count = keep;
    {
        let mut o = ORPHANS.lock();
        let k = o.nbatches[class] as usize;
        if k < MAX_BATCHES {
            o.batches[class][k] = (cold, n);
            o.nbatches[class] += 1;
            return;
        }
    }
    let orphans = take_orphans();
    let mut h = heap.lock();
    // SAFETY: the cold half and the orphans are free blocks of this heap that nobody uses.
    unsafe {
        give_back(&mut h, cold);
        give_back(&mut h, orphans);
    }
}

/// Takes the orphan list if there is one (it belongs to the primary, whose lock the caller is about to
/// take: only the primary's caches reach here).
#[inline]
fn take_orphans() -> *mut u8 {
    if !ORPHANS_PENDING.load(Ordering::Relaxed) {
        return ptr::null_mut();
    }
    let mut o = ORPHANS.lock();
    ORPHANS_PENDING.store(false, Ordering::Relaxed);
    core::mem::replace(&mut o.list, ptr::null_mut())
}

/// Frees every block of a list into the heap.
///
/// # Safety
/// `list` is null or a well-formed list of live small blocks of `heap` that nobody uses any more.
unsafe fn give_back(heap: &mut Heap, mut list: *mut u8) {
    while !list.is_null() {
        // SAFETY: forwarded contract; read the link before the block is handed back.
        unsafe {
            let next = list.cast::<*mut u8>().read();
            heap.dealloc_small_block(list);
            list = next;
        }
    }
}

/// Gives this thread's cached blocks, the transfer cache's batches and the orphans back to the heap, if
/// `owner` is primary.
pub(crate) fn flush(owner: &Owner, heap: &Lock<Heap>) {
    let token = owner.token.load(Ordering::Relaxed);
    if token < 2 {
        return;
    }
    // SAFETY: as in `alloc`.
    let c = unsafe { &mut *CACHE.with(UnsafeCell::get) };
    let mine = if c.token == token {
        c.take_all().0
    } else {
        ptr::null_mut()
    };
    let orphans = {
        let mut o = ORPHANS.lock();
        ORPHANS_PENDING.store(false, Ordering::Relaxed);
        if o.primary == token {
            o.take_all()
        } else {
            ptr::null_mut()
        }
    };
    let mut h = heap.lock();
    // SAFETY: both lists hold free blocks of this heap that nobody uses.
    unsafe {
        give_back(&mut h, mine);
        give_back(&mut h, orphans);
    }
}
