//! Which allocator the thread caches serve: at most one caching `PoolAlloc` per process is *primary*, named
//! by a token that every cache records; the process-wide state behind [`CENTRAL`] says which token that is
//! and holds the blocks of threads that exited (the orphans). See the `thread_cache` module docs.

use core::ptr;

use super::transfer;
use crate::heap::Heap;
use crate::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use crate::sync::Lock;

/// `Owner::token` of a caching allocator that has not tried to become primary yet.
const UNCLAIMED: usize = 0;
/// `Owner::token` of an allocator without caches, or one that found another one primary: it uses the lock.
const NOT_PRIMARY: usize = 1;
/// Tokens handed to primaries start here (0 and 1 are the markers above).
#[cfg(not(loom))]
static NEXT_TOKEN: AtomicUsize = AtomicUsize::new(2);

/// The process-wide part, behind [`CENTRAL`]: which token is primary, and blocks left by threads that
/// exited. (The transfer cache has a lock per class: see [`transfer`].)
pub(super) struct Central {
    /// Token of the primary allocator, or [`UNCLAIMED`].
    pub(super) primary: usize,
    /// Blocks of the primary left by exited threads, of any class, linked through their first word.
    pub(super) orphans: *mut u8,
}

impl Central {
    /// Forgets everything, the transfer cache included (the primary is gone, or a new one starts).
    fn clear(&mut self) {
        self.orphans = ptr::null_mut();
        transfer::clear();
    }
}
// SAFETY: the orphans are owned by whoever holds the lock.
unsafe impl Send for Central {}

#[cfg(not(loom))]
pub(super) static CENTRAL: Lock<Central> = Lock::new(Central {
    primary: UNCLAIMED,
    orphans: ptr::null_mut(),
});

/// Hint that `CENTRAL.orphans` is non-empty (checked without the lock on the slow paths).
#[cfg(not(loom))]
pub(super) static ORPHANS_PENDING: AtomicBool = AtomicBool::new(false);

// Under loom, the same statics, made afresh for every execution of a model.
#[cfg(loom)]
loom::lazy_static! {
    static ref NEXT_TOKEN: AtomicUsize = AtomicUsize::new(2);
    pub(super) static ref CENTRAL: Lock<Central> = Lock::new(Central {
        primary: UNCLAIMED,
        orphans: ptr::null_mut(),
    });
    pub(super) static ref ORPHANS_PENDING: AtomicBool = AtomicBool::new(false);
}

/// The per-allocator part, a field of `PoolAlloc`.
pub(crate) struct Owner {
    pub(super) enabled: bool,
    pub(super) token: AtomicUsize,
    /// The heap lock has been shown to the fork registry (always true where there are no fork handlers).
    /// Not part of what loom models (no `fork` there).
    #[cfg(not(loom))]
    fork_noted: core::sync::atomic::AtomicBool,
    /// The heap lock the fork registry holds for this allocator (null if none): unregistered on drop,
    /// wherever the allocator has moved since, so a dropped allocator's storage is never locked by the
    /// fork handlers.
    #[cfg(not(loom))]
    fork_registered: core::sync::atomic::AtomicPtr<Lock<Heap>>,
}

impl Owner {
    #[cfg(not(loom))]
    pub(crate) const fn new(enabled: bool) -> Owner {
        Owner {
            enabled,
            token: AtomicUsize::new(if enabled { UNCLAIMED } else { NOT_PRIMARY }),
            fork_noted: core::sync::atomic::AtomicBool::new(!crate::fork::SUPPORTED),
            fork_registered: core::sync::atomic::AtomicPtr::new(ptr::null_mut()),
        }
    }

    /// [`Owner::new`] under loom (whose atomics have no `const` constructor).
    #[cfg(loom)]
    pub(crate) fn new(enabled: bool) -> Owner {
        Owner {
            enabled,
            token: AtomicUsize::new(if enabled { UNCLAIMED } else { NOT_PRIMARY }),
        }
    }

    /// Shows `heap` (this owner's allocator's lock) to the fork registry the first time; every path that
    /// takes the heap lock calls this first, so the lock is registered before anyone can hold it (see
    /// `crate::fork`). A relaxed load once noted.
    #[inline(always)]
    pub(crate) fn note_fork(&self, heap: &Lock<Heap>) {
        #[cfg(not(loom))]
        if !self.fork_noted.load(core::sync::atomic::Ordering::Relaxed) {
            if crate::fork::note_heap(heap) {
                self.fork_registered.store(
                    ptr::from_ref(heap).cast_mut(),
                    core::sync::atomic::Ordering::Relaxed,
                );
            }
            self.fork_noted
                .store(true, core::sync::atomic::Ordering::Relaxed);
        }
        #[cfg(loom)]
        let _ = heap;
    }

    #[inline(always)]
    pub(crate) const fn enabled(&self) -> bool {
        self.enabled
    }

    /// Tries to make this allocator the primary one; returns its token if it is.
    #[cold]
    pub(super) fn claim(&self) -> Option<usize> {
        match self.token.load(Ordering::Relaxed) {
            NOT_PRIMARY => return None,
            UNCLAIMED => {}
            t => return Some(t),
        }
        // Before the shared locks are first taken (for this process's first primary).
        super::fork_hooks::register();
        let mut o = CENTRAL.lock();
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
    /// Unregisters the allocator from the fork handlers, and a primary one from the caches: the orphans,
    /// the transfer cache and every cache's blocks of it are forgotten.
    fn drop(&mut self) {
        #[cfg(not(loom))]
        {
            let h = *self.fork_registered.get_mut();
            if !h.is_null() {
                crate::fork::forget_heap(h);
            }
        }
        let t = self.token.load(Ordering::Relaxed);
        if t >= 2 {
            let mut o = CENTRAL.lock();
            if o.primary == t {
                o.primary = UNCLAIMED;
                o.clear();
            }
        }
    }
}

/// Takes the orphan list if there is one (it belongs to the primary, whose lock the caller is about to
/// take: only the primary's caches reach here).
#[inline]
pub(super) fn take_orphans() -> *mut u8 {
    if !ORPHANS_PENDING.load(Ordering::Relaxed) {
        return ptr::null_mut();
    }
    let mut o = CENTRAL.lock();
    ORPHANS_PENDING.store(false, Ordering::Relaxed);
    core::mem::replace(&mut o.orphans, ptr::null_mut())
}
