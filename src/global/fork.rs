//! `fork` without deadlocks: [`PoolAlloc::install_fork_handlers`].
//!
//! A thread that calls `fork` while another thread holds an allocator's lock leaves the child with that
//! lock held for good: the child runs only the forking thread, and its first allocation that needs the
//! lock spins forever. glibc's malloc has fork handlers of its own for this; these are poolgc's. Before
//! `fork`, the forking thread takes every lock (the thread caches' shared ones, then each registered
//! allocator's heap lock), so no operation is half done when the address space is copied; after it,
//! parent and child each release them. Blocks that other threads of the parent held in their caches
//! stay handed out in the child's copy (those threads do not exist there): a leak in the child, never a
//! corruption.

use core::ptr;
use core::sync::atomic::{AtomicPtr, AtomicU8, Ordering::Relaxed};

use super::PoolAlloc;
use crate::sync::Lock;

/// How many allocators the fork handlers can cover.
pub(super) const MAX_FORK_ALLOCATORS: usize = 8;

/// The registered allocators (`&'static`, so never moved or dropped), in registration order.
static SLOTS: [AtomicPtr<PoolAlloc>; MAX_FORK_ALLOCATORS] =
    [const { AtomicPtr::new(ptr::null_mut()) }; MAX_FORK_ALLOCATORS];
/// Taken by registration and by the handlers (first), so the slots the handlers lock before a `fork` are
/// the slots they unlock after it; every slot is written and read under it.
static REGISTRY: Lock<()> = Lock::new(());
/// `pthread_atfork` state: 0 not called, 1 being called, 2 done.
static INSTALLED: AtomicU8 = AtomicU8::new(0);

/// Registers `a` (once; again is a no-op) and installs the handlers on first use. `false`: the registry
/// is full, or `pthread_atfork` failed.
pub(super) fn register(a: &'static PoolAlloc) -> bool {
    let p = ptr::from_ref(a).cast_mut();
    let registered = {
        let _guard = REGISTRY.lock();
        if SLOTS.iter().any(|s| s.load(Relaxed) == p) {
            true
        } else if let Some(s) = SLOTS.iter().find(|s| s.load(Relaxed).is_null()) {
            s.store(p, Relaxed);
            true
        } else {
            false
        }
    };
    if registered && INSTALLED.compare_exchange(0, 1, Relaxed, Relaxed).is_ok() {
        // Not under REGISTRY: glibc runs the handlers holding its own atfork lock, which
        // `pthread_atfork` takes too.
        // SAFETY: the handlers are `extern "C"` functions that live as long as the process and never
        // unwind (they only take and release spin locks).
        let rc = unsafe { libc::pthread_atfork(Some(prepare), Some(release), Some(release)) };
        if rc != 0 {
            INSTALLED.store(0, Relaxed);
            return false;
        }
        INSTALLED.store(2, Relaxed);
    }
    registered
}

/// Before `fork`, in the forking thread: takes every lock, outermost first (see
/// `thread_cache::lock_shared_raw` for why this order cannot deadlock; heap locks are never held while
/// another lock is taken).
extern "C" fn prepare() {
    REGISTRY.lock_raw();
    crate::thread_cache::lock_shared_raw();
    for s in &SLOTS {
        let p = s.load(Relaxed);
        if !p.is_null() {
            // SAFETY: registered allocators are `&'static`.
            unsafe { (*p).heap.lock_raw() };
        }
    }
}

/// After `fork`, in the parent and in the child (whose only thread is the one that forked): releases
/// what `prepare` took, in reverse order.
extern "C" fn release() {
    // SAFETY: `prepare` ran in this thread just before the fork (the child is a copy of it) and took
    // exactly these locks: REGISTRY kept the slots unchanged meanwhile.
    unsafe {
        for s in SLOTS.iter().rev() {
            let p = s.load(Relaxed);
            if !p.is_null() {
                (*p).heap.unlock_raw();
            }
        }
        crate::thread_cache::unlock_shared_raw();
        REGISTRY.unlock_raw();
    }
}
