//! `fork` without deadlocks: [`PoolAlloc::install_fork_handlers`].
//!
//! A thread that calls `fork` while another thread holds an allocator's lock leaves the child with that
//! lock held for good: the child runs only the forking thread, and its first allocation that needs the
//! lock spins forever. glibc's malloc has fork handlers of its own for this; these are poolgc's. Before
//! `fork`, the forking thread takes every lock (the registry's, each registered allocator's heap lock,
//! then the thread caches' shared ones), so no operation is half done when the address space is copied;
//! after it, parent and child each release them. Blocks that other threads of the parent held in their
//! caches stay handed out in the child's copy (those threads do not exist there): a leak in the child,
//! never a corruption.
//!
//! Order: the registry lock and the heap locks first, only *tried*: code outside the crate may hold one
//! allocator's heap lock and then allocate through another allocator, or register, so waiting for each
//! lock in turn while holding the others could deadlock; if any is held, those taken are released and
//! the set tried again after a `sched_yield`. Then, waiting, the thread caches' shared locks, whose
//! holders never wait for a heap lock (see `thread_cache::lock_shared_raw`).

use core::ptr;
use core::sync::atomic::{AtomicPtr, AtomicU8, Ordering::Relaxed};

use super::PoolAlloc;
use crate::sync::Lock;
use crate::thread_cache;

/// How many allocators the fork handlers can cover.
const MAX_FORK_ALLOCATORS: usize = 8;

/// The registered allocators (`&'static`, so never moved or dropped), in registration order.
static SLOTS: [AtomicPtr<PoolAlloc>; MAX_FORK_ALLOCATORS] =
    [const { AtomicPtr::new(ptr::null_mut()) }; MAX_FORK_ALLOCATORS];
/// Taken by registration and by the handlers (first), so the slots the handlers lock before a `fork` are
/// the slots they unlock after it; every slot is written and read under it.
static REGISTRY: Lock<()> = Lock::new(());

/// `pthread_atfork` not called yet (or it failed).
const NOT_INSTALLED: u8 = 0;
/// A thread is calling `pthread_atfork`.
const INSTALLING: u8 = 1;
/// The handlers are installed.
const INSTALLED: u8 = 2;
static STATE: AtomicU8 = AtomicU8::new(NOT_INSTALLED);

impl PoolAlloc {
    /// Makes `fork` safe while other threads allocate: registers this allocator with fork handlers
    /// (`pthread_atfork`, installed on first use) that take every lock of poolgc's before `fork` and
    /// release them after it, in parent and child. Without them, a thread that forks while another holds
    /// this allocator's lock leaves the child's copy locked for good, and the child's first allocation
    /// that needs it hangs (glibc's malloc has handlers of its own; a program that only calls `exec` after
    /// `fork`, as `std::process::Command` does, needs none). With feature `gc` it covers the `Gc` heap
    /// too. Returns `false` if the handlers could not be installed or eight allocators are registered
    /// already. Unix with features `std` and `os`, not with `critical-section`.
    ///
    /// Call it first thing in `main`, before any thread forks and before other code registers fork
    /// handlers: `prepare` handlers run in the reverse order of registration and the others in order, so
    /// poolgc's then take the locks last before `fork` and release them first after it, and other
    /// handlers may allocate. Still not allowed: forking inside a [`with_heap`](PoolAlloc::with_heap)
    /// closure, or from a signal handler that interrupted an allocation (the locks are not re-entrant).
    ///
    /// ```
    /// use poolgc::PoolAlloc;
    ///
    /// #[global_allocator]
    /// static ALLOC: PoolAlloc = PoolAlloc::new();
    ///
    /// assert!(ALLOC.install_fork_handlers());
    /// ```
    pub fn install_fork_handlers(&'static self) -> bool {
        #[cfg(feature = "gc")]
        if let Some(gc_heap) = crate::gc::box_allocator() {
            if !register(gc_heap) {
                return false;
            }
        }
        register(self)
    }
}

/// Registers `a` (again is a no-op) and installs the handlers if they are not yet. `true` once both are
/// done; `false` if the registry is full or `pthread_atfork` failed (a registered allocator stays
/// registered, and a later call may install the handlers).
fn register(a: &'static PoolAlloc) -> bool {
    let p = ptr::from_ref(a).cast_mut();
    {
        let _guard = REGISTRY.lock();
        if !SLOTS.iter().any(|s| s.load(Relaxed) == p) {
            let Some(free) = SLOTS.iter().find(|s| s.load(Relaxed).is_null()) else {
                return false;
            };
            free.store(p, Relaxed);
        }
    }
    loop {
        match STATE.compare_exchange(NOT_INSTALLED, INSTALLING, Relaxed, Relaxed) {
            Ok(_) => {
                // Not under REGISTRY: glibc runs the handlers holding its own atfork lock, which
                // `pthread_atfork` takes too.
                // SAFETY: the handlers are `extern "C"` functions that live as long as the process and
                // never unwind (they only try, take and release spin locks and yield).
                let rc = unsafe { libc::pthread_atfork(Some(prepare), Some(parent), Some(child)) };
                let ok = rc == 0;
                STATE.store(if ok { INSTALLED } else { NOT_INSTALLED }, Relaxed);
                return ok;
            }
            Err(INSTALLED) => return true,
            // Another thread is installing them (or failed to: then this one tries).
            Err(_) => std::thread::yield_now(),
        }
    }
}

/// Before `fork`, in the forking thread: takes every lock (see the module docs for the order).
extern "C" fn prepare() {
    while !try_lock_registry_and_heaps() {
        std::thread::yield_now();
    }
    thread_cache::lock_shared_raw();
}

/// Takes the registry lock and each registered heap lock; on the first one held, releases what it took
/// and returns `false`.
fn try_lock_registry_and_heaps() -> bool {
    if !REGISTRY.try_lock_raw() {
        return false;
    }
    for (i, s) in SLOTS.iter().enumerate() {
        let p = s.load(Relaxed);
        // SAFETY: registered allocators are `&'static`.
        if !p.is_null() && !unsafe { (*p).heap.try_lock_raw() } {
            // SAFETY: this thread took the registry and the heap locks of the slots below `i`, and
            // nothing else.
            unsafe { unlock_registry_and_heaps(i) };
            return false;
        }
    }
    true
}

/// Releases the heap locks of the slots below `n`, then the registry.
///
/// # Safety
/// This thread holds exactly those, taken by [`try_lock_registry_and_heaps`] (REGISTRY kept the slots
/// unchanged).
unsafe fn unlock_registry_and_heaps(n: usize) {
    // SAFETY: forwarded contract; registered allocators are `&'static`.
    unsafe {
        for s in SLOTS[..n].iter().rev() {
            let p = s.load(Relaxed);
            if !p.is_null() {
                (*p).heap.unlock_raw();
            }
        }
        REGISTRY.unlock_raw();
    }
}

/// Releases everything `prepare` took, in reverse order.
///
/// # Safety
/// `prepare` took the locks in this thread (or, in a child, in the thread this one is the copy of), and
/// none was released since.
unsafe fn unlock_all() {
    // SAFETY: forwarded contract.
    unsafe {
        thread_cache::unlock_shared_raw();
        unlock_registry_and_heaps(MAX_FORK_ALLOCATORS);
    }
}

/// After `fork`, in the parent: releases what `prepare` took.
extern "C" fn parent() {
    // SAFETY: `prepare` took every lock in this thread just before the fork.
    unsafe { unlock_all() };
}

/// After `fork`, in the child (whose only thread is the copy of the one that forked): releases what
/// `prepare` took, then makes the transfer cache's byte count exact again.
extern "C" fn child() {
    // SAFETY: as in `parent`: the child's memory is a copy of the parent's at the fork.
    unsafe { unlock_all() };
    thread_cache::after_fork_in_child();
}
