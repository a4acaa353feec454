//! Per-thread caches of small blocks (feature `std`): the fast path of a [`PoolAlloc`] built with
//! [`PoolAlloc::new`] (every constructor but the `*_locked` ones, with feature `std`).
//!
//! # The fast path
//!
//! Each thread has, per pool class (small and medium), a *bin* of two lists of free blocks threaded
//! through their first word (mimalloc's free-list sharding): `alloc` pops the *alloc list*, `dealloc`
//! pushes the *free list*. `alloc` of a pool block is: compute the class, one thread-local access, compare
//! the cache's owner token with the allocator's, pop — no lock, no atomic read-modify-write; `dealloc` is
//! the same with a push and a countdown. Keeping the two lists apart means an `alloc` never waits on the
//! store of the `dealloc` just before it (no store-to-load chain through one list head), and a full free
//! list leaves as a whole in O(1), with no walk to cut it.
//!
//! Only when the alloc list is empty or the free list holds a whole *batch* (up to 2 KiB of a small class,
//! 8–16 KiB of a medium one) does the thread do more: an empty alloc list first takes the free list (still
//! thread-local); then a refill takes a whole batch from the central *transfer cache* (a per-class stack of
//! batches, O(1) under a short per-class lock), and only when that is empty does it take the heap lock, where
//! [`Heap::alloc_batch`] takes runs of blocks per pool visit. A full free list becomes the alloc list if that
//! is empty, else a batch on the transfer cache; only when the transfer cache holds
//! [`transfer::TRANSFER_BYTES`] does a batch go back to the heap. So a thread that frees a big structure
//! and builds another one (binary trees, a parsed document) moves its blocks in batches of dozens through
//! O(1) steps, and threads that free each other's blocks do not meet per free: a freed block lands in the
//! freeing thread's cache (any thread may hold any block of a class), and whole batches travel between
//! threads.
//!
//! Blocks on the transfer cache serve only their own class. So that they do not hold memory that another
//! class needs (a program that frees a structure of one block size and builds one of another), a refill
//! that finds the heap would have to grow by an arena first hands the whole transfer cache back to the
//! heap: pools left wholly free serve the new class, and arenas left wholly free are spares again. And
//! batches that stay on the transfer cache through a whole period (1 s) decay back to the heap (see
//! [`transfer`]).
//!
//! A class a thread has not used much is refilled from the heap a few blocks at a time (doubling up to a
//! batch), so a class used once touches one page rather than a batch's worth.
//!
//! # Whose blocks a cache holds
//!
//! A cache holds blocks of exactly one allocator, named by a *token*. At most one caching allocator per
//! process is *primary* at a time (the first one used; normally the one `#[global_allocator]` static):
//! it takes a fresh token under the central lock. Other caching instances run on the lock, as plain
//! `PoolAlloc`s do. A cache whose token is not the primary's belongs to an allocator that has been
//! dropped (dropping unregisters it), so its blocks are forgotten, never touched. Nothing here stores an
//! allocator's address, so moving a `PoolAlloc` is fine. (The tokens and the process-wide state: [`owner`].)
//!
//! # Thread exit and re-entrancy
//!
//! The cache is a `const`-initialised `thread_local!` without a destructor, so an access is a plain
//! thread-pointer-relative load (no "initialised?" state check) and first use allocates nothing. A second,
//! empty thread-local with a destructor is touched when the thread starts caching (outside any lock); on
//! Linux std registers it with glibc's `__cxa_thread_atexit_impl`, not through the Rust global allocator.
//! At thread exit it hands the cached blocks to the process-wide *orphan list* (it cannot reach the
//! allocator, whose address nothing stores) and closes the cache; the primary allocator takes orphans back
//! into its heap on its next refill or heap-bound flush, or on [`PoolAlloc::flush_thread_cache`].
//! Allocations made after that (other TLS destructors) find the cache closed and use the lock.
//!
//! # Statistics
//!
//! Blocks sitting in thread caches, the transfer cache or the orphan list are in use from the heap's point
//! of view: [`Stats`](crate::Stats) counts them in `bytes_in_use` and the per-class `blocks_in_use`, and
//! `allocations`/`deallocations`/`peak_bytes_in_use` move at batch granularity. `Heap::check()` stays
//! exact for the heap. [`PoolAlloc::flush_thread_cache`] gives back the calling thread's blocks, the
//! transfer cache and the orphans, so a thread that wants exact figures calls it before
//! [`PoolAlloc::stats`]; [`PoolAlloc::trim`] does the same before returning memory to the OS; a thread's
//! cache is handed over at its exit.
//!
//! [`PoolAlloc`]: crate::PoolAlloc
//! [`PoolAlloc::new`]: crate::PoolAlloc::new
//! [`PoolAlloc::flush_thread_cache`]: crate::PoolAlloc::flush_thread_cache
//! [`PoolAlloc::stats`]: crate::PoolAlloc::stats
//! [`PoolAlloc::trim`]: crate::PoolAlloc::trim

use crate::sync::atomic::Ordering;
use core::alloc::Layout;
use core::cell::UnsafeCell;
use core::ptr::{self, NonNull};

use crate::heap::Heap;
use crate::size_class::{block_size, NUM_CLASSES, NUM_POOL_CLASSES};
use crate::sync::Lock;

mod fork_hooks;
mod owner;
mod transfer;

pub(crate) use owner::Owner;
use owner::{take_orphans, CENTRAL, ORPHANS_PENDING};

/// `ThreadCache::token` of a thread that has not used a cache yet (never an owner's token).
const NO_OWNER: usize = usize::MAX;
/// `ThreadCache::token` of a thread whose exit handler has run: the lock from then on.
const EXITED: usize = usize::MAX - 1;
/// Blocks per batch, per class: the length at which a free list moves on, what a refill from the heap
/// takes at most, and the size of every batch on the transfer cache. For small classes about 2 KiB worth,
/// between 4 and 64 blocks; for medium ones about 8 KiB worth, between 2 and 8 (so 10–16 KiB for the
/// classes above 4 KiB). A thread holds at most two batches per class (its alloc and free lists).
///
/// Computed (a division, on slow paths only) rather than kept in a table, so that the cache's paths read
/// no `.rodata` (see [`block_size`]).
#[inline]
const fn batch(class: usize) -> u32 {
    let (budget, min, max) = if class < NUM_CLASSES {
        (2048, 4, 64)
    } else {
        (8192, 2, 8)
    };
    let n = budget / block_size(class);
    (if n < min {
        min
    } else if n > max {
        max
    } else {
        n
    }) as u32
}

/// Blocks of the first refill of a class from the heap (doubling up to [`batch`] afterwards).
const FIRST_REFILL: u32 = 2;

/// One class's part of a thread's cache.
///
/// Invariant: either `free` is null and `room` is 0 (nothing freed since the list last moved on: the
/// next `dealloc` takes the slow path and starts a list), or `free` holds `batch(class) - room` blocks.
/// Both lists hold free blocks of the class, owned by this thread, linked through their first word.
#[derive(Clone, Copy)]
struct Bin {
    /// Popped by `alloc`.
    alloc: *mut u8,
    /// Pushed by `dealloc`.
    free: *mut u8,
    /// Pushes left before `free` is a whole batch.
    room: u32,
    /// Blocks the next refill from the heap takes (0: [`FIRST_REFILL`]).
    refill: u32,
}

/// Slow-path events (refills, moved free lists) of a thread between two runs of [`upkeep`] (every other
/// one under loom, so that a model of a few events reaches it).
const UPKEEP_EVERY: u32 = if cfg!(loom) { 2 } else { 64 };

/// One thread's cache.
struct ThreadCache {
    token: usize,
    /// Slow-path events left before this thread runs [`upkeep`].
    upkeep_in: u32,
    bins: [Bin; NUM_POOL_CLASSES],
}

const EMPTY_BIN: Bin = Bin {
    alloc: ptr::null_mut(),
    free: ptr::null_mut(),
    room: 0,
    refill: 0,
};

#[cfg(not(loom))]
std::thread_local! {
    /// The cache itself: no destructor, so an access is a plain thread-pointer-relative load, valid
    /// until the thread is gone (also while other TLS destructors run).
    static CACHE: UnsafeCell<ThreadCache> = const { UnsafeCell::new(EMPTY_CACHE) };
    /// Touched when a thread starts caching, so that its destructor runs at thread exit.
    static EXIT: ExitHandler = const { ExitHandler };
}

const EMPTY_CACHE: ThreadCache = ThreadCache {
    token: NO_OWNER,
    upkeep_in: UPKEEP_EVERY,
    bins: [EMPTY_BIN; NUM_POOL_CLASSES],
};

/// This thread's cache (valid until the thread is gone).
#[inline(always)]
fn cache() -> *mut ThreadCache {
    #[cfg(not(loom))]
    return CACHE.with(UnsafeCell::get);
    #[cfg(loom)]
    return CACHE.with(UnsafeCell::get);
}

/// Makes this thread hand its cache over at exit (called once it starts caching).
#[inline]
fn arm_exit_hook() {
    #[cfg(not(loom))]
    let _ = EXIT.try_with(|_| ());
}

/// The thread-exit hook.
#[cfg(not(loom))]
struct ExitHandler;

#[cfg(not(loom))]
impl Drop for ExitHandler {
    fn drop(&mut self) {
        // SAFETY: only this thread touches its cache, and no other reference to it is live here.
        let _ = CACHE.try_with(|c| on_thread_exit(unsafe { &mut *c.get() }));
    }
}

// Under loom the cache has no destructor: loom drops thread-locals after `join` has returned and even
// after the model's statics are gone, so a model runs the exit hand-over itself, at the end of each
// thread's closure, where std runs it (`PoolAlloc::loom_thread_exit`).
#[cfg(loom)]
loom::thread_local! {
    static CACHE: UnsafeCell<ThreadCache> = UnsafeCell::new(EMPTY_CACHE);
}

/// The thread-exit hand-over, run by a loom model at the end of a thread (see above).
#[cfg(loom)]
pub(crate) fn loom_thread_exit() {
    // SAFETY: only this thread touches its cache, and no other reference to it is live here.
    on_thread_exit(unsafe { &mut *cache() });
}

/// Thread exit: the blocks go to the orphan list if their allocator is still primary, and the cache
/// closes (later allocations of this thread, from other TLS destructors, use the lock).
fn on_thread_exit(c: &mut ThreadCache) {
    let token = core::mem::replace(&mut c.token, EXITED);
    if token == NO_OWNER {
        return;
    }
    // Under the central lock, so that the allocator cannot be dropped (and its arenas unmapped) while
    // the lists are walked: `Owner::drop` unregisters under this lock first.
    let mut o = CENTRAL.lock();
    if o.primary != token {
        // Blocks of a dropped allocator (or none): forgotten, never touched.
        c.bins = [EMPTY_BIN; NUM_POOL_CLASSES];
        return;
    }
    let chain = c.take_all();
    if !chain.is_null() {
        // SAFETY: `chain` is a well-formed list of blocks we own; its last block gets the old list.
        unsafe { append(chain, o.orphans) };
        o.orphans = chain;
        ORPHANS_PENDING.store(true, Ordering::Relaxed);
    }
}

impl ThreadCache {
    /// Empties every bin into one chain and returns its head.
    fn take_all(&mut self) -> *mut u8 {
        let mut chain = ptr::null_mut();
        for bin in self.bins.iter_mut() {
            for list in [bin.alloc, bin.free] {
                if !list.is_null() {
                    // SAFETY: the bin's lists are well-formed lists of blocks this thread owns.
                    unsafe { append(list, chain) };
                    chain = list;
                }
            }
            *bin = EMPTY_BIN;
        }
        chain
    }

    /// Counts a slow-path event; whether this thread runs [`upkeep`] now.
    #[inline]
    fn upkeep_due(&mut self) -> bool {
        self.upkeep_in -= 1;
        if self.upkeep_in == 0 {
            self.upkeep_in = UPKEEP_EVERY;
            return true;
        }
        false
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
///
/// # Safety
/// `class` is a pool class (`< NUM_POOL_CLASSES`) of `heap`'s geometry and `layout` one of its layouts.
#[inline(always)]
pub(crate) unsafe fn alloc(
    owner: &Owner,
    heap: &Lock<Heap>,
    class: usize,
    layout: Layout,
) -> *mut u8 {
    debug_assert!(class < NUM_POOL_CLASSES);
    let token = owner.token.load(Ordering::Relaxed);
    let c = cache();
    // SAFETY: the cache is only touched by this thread, and no other reference to it is live (nothing
    // between here and the end of the function re-enters this module); `class` is in range (contract).
    unsafe {
        if (*c).token == token {
            let bin = (*c).bins.get_unchecked_mut(class);
            let b = bin.alloc;
            if !b.is_null() {
                // The alloc list holds free blocks of this class owned by this thread; the first word
                // holds the next one.
                bin.alloc = b.cast::<*mut u8>().read();
                return b;
            }
        }
    }
    alloc_slow(owner, heap, class, layout)
}

#[cold]
#[inline(never)]
fn alloc_slow(owner: &Owner, heap: &Lock<Heap>, class: usize, layout: Layout) -> *mut u8 {
    owner.note_fork(heap);
    let cp = cache();
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
            arm_exit_hook();
        }
    }
    // SAFETY: as in `alloc`; the reference above has ended, and a nested allocation made while
    // registering the exit hook has returned (it may have filled this bin).
    if unsafe { (*cp).upkeep_due() } {
        upkeep(heap);
    }
    // SAFETY: as above (`upkeep` does not touch the cache).
    let bin = unsafe { &mut (*cp).bins[class] };
    if bin.alloc.is_null() && !bin.free.is_null() {
        // What this thread freed is served next (still hot in its cache); the free list starts over.
        bin.alloc = core::mem::replace(&mut bin.free, ptr::null_mut());
        bin.room = batch(class);
    }
    let b = bin.alloc;
    if !b.is_null() {
        // SAFETY: as in `alloc`.
        bin.alloc = unsafe { b.cast::<*mut u8>().read() };
        return b;
    }
    refill(bin, heap, class).map_or(ptr::null_mut(), NonNull::as_ptr)
}

/// Fills an empty alloc list with a batch from the transfer cache, or else from the heap under one lock;
/// returns one block of it.
#[cold]
#[inline(never)]
fn refill(bin: &mut Bin, heap: &Lock<Heap>, class: usize) -> Option<NonNull<u8>> {
    debug_assert!(bin.alloc.is_null() && bin.free.is_null());
    let (batch_list, stale) = transfer::pop(class);
    let orphans = take_orphans();
    if !orphans.is_null() || !stale.is_null() {
        let mut h = heap.lock();
        // SAFETY: the orphans and the decayed batches are blocks of this heap (the primary's: only its
        // caches get here), no longer used by anyone.
        unsafe {
            give_back(&mut h, orphans);
            give_back_batches(&mut h, stale);
        }
    }
    let list = match batch_list {
        Some(b) => b,
        None => {
            let want = bin.refill.clamp(FIRST_REFILL, batch(class));
            bin.refill = (want * 2).min(batch(class));
            // With batches on the transfer cache, the heap is asked not to grow at first: they may be
            // of other classes (a program that freed a structure of one size and now builds one of
            // another), and handed back, they may leave pools wholly free that serve this class
            // instead of a new arena. Each block reaches the transfer cache once per free, so this is
            // paid at most once per block cached.
            let grow = transfer::is_empty();
            let (mut list, mut n) = heap.lock().alloc_batch(class, want, ptr::null_mut(), grow);
            if n == 0 && !grow {
                // (Taken even if another thread has emptied the transfer cache meanwhile: null then.)
                let held = transfer::take_all();
                let mut h = heap.lock();
                // SAFETY: the batches are free blocks of this heap (the primary's: only its caches get
                // here), now owned by nobody else.
                unsafe { give_back_batches(&mut h, held) };
                (list, n) = h.alloc_batch(class, want, ptr::null_mut(), true);
            }
            if n == 0 {
                return None;
            }
            list
        }
    };
    // SAFETY: `list` holds at least one free block of this class, linked through the first word.
    bin.alloc = unsafe { list.cast::<*mut u8>().read() };
    NonNull::new(list)
}

/// Pushes a freed block of `class` on this thread's cache; [`dealloc_slow`] moves a full free list on,
/// or frees under the lock when the cache cannot take the block.
///
/// # Safety
/// `block` is a live block of the allocator that owns `owner` and `heap`, handed out for `layout`, whose
/// class is `class` (`< NUM_POOL_CLASSES`), and no longer used by the caller.
#[inline(always)]
pub(crate) unsafe fn dealloc(
    owner: &Owner,
    heap: &Lock<Heap>,
    block: *mut u8,
    class: usize,
    layout: Layout,
) {
    debug_assert!(class < NUM_POOL_CLASSES);
    // The caller's pointer may carry a tag that covers only its own bytes (a `Box<T>`'s): the block is
    // stored and handed out again, so take the heap's provenance back (exposed for every arena, see
    // `pool::pool_of`). A no-op at run time.
    let stored = core::ptr::with_exposed_provenance_mut::<u8>(block.addr());
    let token = owner.token.load(Ordering::Relaxed);
    let c = cache();
    // SAFETY: as in `alloc`; the block is ours now, at least a pointer wide and aligned.
    unsafe {
        if (*c).token == token {
            let bin = (*c).bins.get_unchecked_mut(class);
            if bin.room != 0 {
                bin.room -= 1;
                crate::pool::link_ptr(block, layout.size())
                    .cast::<*mut u8>()
                    .write(bin.free);
                bin.free = stored;
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
    owner.note_fork(heap);
    let c = cache();
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
    if c.upkeep_due() {
        upkeep(heap);
    }
    let bin = &mut c.bins[class];
    if !bin.free.is_null() {
        // `room == 0`: the free list is a whole batch (the bin's invariant).
        let full = core::mem::replace(&mut bin.free, ptr::null_mut());
        if bin.alloc.is_null() {
            bin.alloc = full;
        } else {
            flush_batch(full, heap, class);
        }
    }
    // SAFETY: the block is ours now, at least a pointer wide and aligned.
    unsafe {
        crate::pool::link_ptr(block, layout.size())
            .cast::<*mut u8>()
            .write(ptr::null_mut())
    };
    bin.free = core::ptr::with_exposed_provenance_mut::<u8>(block.addr());
    bin.room = batch(class) - 1;
}

/// Moves a whole batch onto the transfer cache, or to the heap under its lock when the transfer cache is
/// at its budget (with the orphans, if any); runs the transfer cache's decay when its clock is due.
#[cold]
#[inline(never)]
fn flush_batch(list: *mut u8, heap: &Lock<Heap>, class: usize) {
    // SAFETY: `list` is a whole batch of free blocks of `class` of the primary's heap (a bin's full free
    // list: only the primary's caches get here), now owned by nobody else.
    let (pushed, stale) = unsafe { transfer::push(class, list) };
    let list = pushed.err().unwrap_or(ptr::null_mut());
    if list.is_null() && stale.is_null() {
        return;
    }
    let orphans = take_orphans();
    let mut h = heap.lock();
    // SAFETY: the batch, the orphans and the decayed batches are free blocks of this heap that nobody
    // uses.
    unsafe {
        give_back(&mut h, list);
        give_back(&mut h, orphans);
        give_back_batches(&mut h, stale);
    }
}

/// The periodic upkeep of a primary's caching thread (every [`UPKEEP_EVERY`] slow-path events): the
/// transfer cache's decay clock is read, and the heap runs its spare-arena decay. A thread whose traffic
/// stays in its cache and the transfer cache never reaches the heap's own decay events otherwise, and
/// arenas freed through the caches would stay mapped until `trim`.
#[cold]
#[inline(never)]
fn upkeep(heap: &Lock<Heap>) {
    let stale = transfer::tick();
    let orphans = take_orphans();
    let mut h = heap.lock();
    // SAFETY: the decayed batches and the orphans are free blocks of this heap (the primary's: only its
    // caches get here) that nobody uses.
    unsafe {
        give_back_batches(&mut h, stale);
        give_back(&mut h, orphans);
    }
    h.run_spare_decay();
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

/// Frees every block of a list of batches (linked as on the transfer cache) into the heap.
///
/// # Safety
/// `batches` is null or a well-formed list of batches of live small blocks of `heap` that nobody uses
/// any more.
unsafe fn give_back_batches(heap: &mut Heap, mut batches: *mut u8) {
    while !batches.is_null() {
        // SAFETY: forwarded contract; the first block's second word links the next batch, read before
        // the batch is handed back.
        unsafe {
            let next = batches.cast::<*mut u8>().add(1).read();
            give_back(heap, batches);
            batches = next;
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
    let c = unsafe { &mut *cache() };
    let mine = if c.token == token {
        c.take_all()
    } else {
        ptr::null_mut()
    };
    let (orphans, batches) = {
        let mut o = CENTRAL.lock();
        if o.primary == token {
            ORPHANS_PENDING.store(false, Ordering::Relaxed);
            // The transfer cache is taken under the central lock, so that no claim clears it meanwhile.
            (
                core::mem::replace(&mut o.orphans, ptr::null_mut()),
                transfer::take_all(),
            )
        } else {
            (ptr::null_mut(), ptr::null_mut())
        }
    };
    let mut h = heap.lock();
    // SAFETY: the lists hold free blocks of this heap that nobody uses.
    unsafe {
        give_back(&mut h, mine);
        give_back(&mut h, orphans);
        give_back_batches(&mut h, batches);
    }
}
