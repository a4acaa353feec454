//! `fork` without deadlocks, with no call from the program: handlers (`pthread_atfork`) that poolgc
//! installs itself, on the first use of an allocator that lives in a `static`.
//!
//! A thread that calls `fork` while another thread holds one of poolgc's locks leaves the child with that
//! lock held for good: the child runs only the forking thread, and its first allocation that needs the
//! lock spins forever. Before `fork`, the forking thread takes every lock (this registry's, each
//! registered heap lock, then the thread caches' shared ones), so no operation is half done when the
//! address space is copied; after it, parent and child each release them. Blocks that other threads of
//! the parent held in their caches stay handed out in the child's copy (those threads do not exist
//! there): a leak in the child, never a corruption.
//!
//! What is registered: the heap lock of every allocator in static storage (a `static`, found with
//! `dladdr`), before that lock is first taken — `PoolAlloc`'s locked paths and the thread caches' first
//! slow path note it, so a lock is never held by anyone before it is registered; the allocator records
//! what was registered and [`forget_heap`]s it when dropped (static storage can be reused: a `static
//! Mutex<…>` whose value is replaced). One *moved* out of static storage stays registered at its old
//! place until dropped (forking in between is unsupported). An allocator elsewhere (a local, a `Box`)
//! can move or be dropped, so it is not registered; [`register_static`] takes one that is `&'static`
//! all the same (a leaked one). The thread caches register their shared locks (one set
//! per process) as [`SharedLocks`] hooks, so this module imports nothing above the heap.
//!
//! Order: the registry lock, the interned-string tables' locks ([`TriedLocks`]: their holders allocate)
//! and the heap locks first, only *tried*: code outside the crate may hold one allocator's heap lock and
//! then allocate through another allocator (or intern), so waiting for each lock in turn while holding
//! the others could deadlock; if any is held, those taken are released and the set tried
//! again after a `sched_yield`. Then, waiting, the thread caches' shared locks, whose holders never wait
//! for a heap lock.
//!
//! `pthread_atfork` and `dladdr` allocate through the C library's `malloc` if at all, never through the
//! Rust global allocator, so registering from inside an allocation does not recurse into poolgc.

#![cfg_attr(not(all(poolgc_fork, not(miri))), allow(dead_code))]

use core::ptr;
use core::sync::atomic::{AtomicI32, AtomicPtr, Ordering::Relaxed};

use crate::heap::Heap;
use crate::sync::Lock;

/// How many heap locks the handlers can cover.
const MAX_HEAPS: usize = 8;

/// The registered heap locks (`'static`, so never moved or dropped), in registration order.
static SLOTS: [AtomicPtr<Lock<Heap>>; MAX_HEAPS] =
    [const { AtomicPtr::new(ptr::null_mut()) }; MAX_HEAPS];
/// Taken by registration and by the handlers (first), so the slots the handlers lock before a `fork` are
/// the slots they unlock after it; every slot is written and read under it.
static REGISTRY: Lock<()> = Lock::new(());

/// The thread caches' shared locks, as hooks (see [`register_shared`]).
pub(crate) struct SharedLocks {
    /// Takes every shared lock and keeps it; may wait (its holders never wait for a heap lock).
    pub(crate) lock: fn(),
    /// Releases what `lock` took.
    ///
    /// # Safety
    /// This thread took them with `lock` and has released none since.
    pub(crate) unlock: unsafe fn(),
    /// In the child, once unlocked: makes counters kept outside the locks exact again.
    pub(crate) child: fn(),
}

static SHARED: AtomicPtr<SharedLocks> = AtomicPtr::new(ptr::null_mut());

/// Locks whose holders may wait for a heap lock (the interned-string tables, whose holders allocate),
/// as hooks: taken right after the registry and before the heap locks, only *tried* like them (user
/// code may hold a heap lock and then wait for one of these), all or none.
pub(crate) struct TriedLocks {
    /// Takes every lock if none is held (then `true`), else takes none (`false`).
    pub(crate) try_lock: fn() -> bool,
    /// Releases what a successful `try_lock` took.
    ///
    /// # Safety
    /// This thread took them with `try_lock` and has released none since.
    pub(crate) unlock: unsafe fn(),
}

static TRIED: AtomicPtr<TriedLocks> = AtomicPtr::new(ptr::null_mut());

/// `pthread_atfork` not called yet (or it failed).
const NOT_INSTALLED: i32 = 0;
/// The handlers are installed.
const INSTALLED: i32 = -1;
/// One of these, or the process id of the process in which a thread is calling `pthread_atfork`: a
/// child forked meanwhile finds its parent's id there (that thread does not exist in the child, so it
/// would never finish) and installs them itself.
static STATE: AtomicI32 = AtomicI32::new(NOT_INSTALLED);

/// Whether fork handlers can exist in this build: Unix with the OS source, a spin lock (the
/// critical-section lock cannot be held across a `fork`), not under Miri (no `pthread_atfork`).
pub(crate) const SUPPORTED: bool = cfg!(all(poolgc_fork, not(miri)));

/// Registers `heap` with the fork handlers if it lives in static storage (see the module docs); whether
/// it did. Called once per allocator, before its lock is first taken. Never allocates through poolgc.
#[cold]
#[inline(never)]
pub(crate) fn note_heap(heap: &Lock<Heap>) -> bool {
    #[cfg(all(poolgc_fork, not(miri)))]
    if in_static_storage(ptr::from_ref(heap).cast()) {
        // SAFETY: static storage is never freed; the allocator holding `heap` unregisters it with
        // `forget_heap` when it is dropped, so the slot never outlives it there.
        return register_static(unsafe { &*ptr::from_ref(heap) });
    }
    #[cfg(not(all(poolgc_fork, not(miri))))]
    let _ = heap;
    false
}

/// Unregisters a heap lock that [`note_heap`] registered, as its allocator is dropped: static storage
/// can be reused (a `static Mutex<…>` whose value is replaced), and the handlers must not lock or unlock
/// what comes next there. Waits while a fork is under way (the handlers hold the registry).
pub(crate) fn forget_heap(heap: *const Lock<Heap>) {
    let _guard = REGISTRY.lock();
    for s in &SLOTS {
        if s.load(Relaxed).cast_const() == heap {
            s.store(ptr::null_mut(), Relaxed);
        }
    }
}

/// Whether `p` lies in a loaded object's segments (its `.data`/`.bss`: a `static`), as `dladdr` says.
#[cfg(all(poolgc_fork, not(miri)))]
fn in_static_storage(p: *const libc::c_void) -> bool {
    // SAFETY: `Dl_info` is plain data; all-zero is a valid value.
    let mut info: libc::Dl_info = unsafe { core::mem::zeroed() };
    // SAFETY: `dladdr` only reads the loader's tables and writes `info`.
    unsafe { libc::dladdr(p, &mut info) != 0 }
}

/// Registers the thread caches' shared locks (once per process; again is a no-op) and installs the
/// handlers. Called before the shared locks are first taken.
pub(crate) fn register_shared(hooks: &'static SharedLocks) {
    if !SUPPORTED || !SHARED.load(Relaxed).is_null() {
        return;
    }
    {
        let _guard = REGISTRY.lock();
        SHARED.store(ptr::from_ref(hooks).cast_mut(), Relaxed);
    }
    install();
}

/// Registers the [`TriedLocks`] (one set per process; again is a no-op) and installs the handlers.
/// Called before those locks are first taken; a relaxed load once done.
#[cfg_attr(not(feature = "intern"), allow(dead_code))]
#[inline]
pub(crate) fn register_tried(hooks: &'static TriedLocks) {
    if SUPPORTED && TRIED.load(Relaxed).is_null() {
        register_tried_slow(hooks);
    }
}

#[cfg_attr(not(feature = "intern"), allow(dead_code))]
#[cold]
#[inline(never)]
fn register_tried_slow(hooks: &'static TriedLocks) {
    {
        let _guard = REGISTRY.lock();
        TRIED.store(ptr::from_ref(hooks).cast_mut(), Relaxed);
    }
    install();
}

/// Registers a heap lock that is `'static` (again is a no-op) and installs the handlers if they are not
/// yet. `true` once both are done; `false` where fork handlers are not supported, if the registry is
/// full, or if `pthread_atfork` failed.
pub(crate) fn register_static(heap: &'static Lock<Heap>) -> bool {
    if !SUPPORTED {
        return false;
    }
    let p = ptr::from_ref(heap).cast_mut();
    {
        let _guard = REGISTRY.lock();
        if !SLOTS.iter().any(|s| s.load(Relaxed) == p) {
            let Some(free) = SLOTS.iter().find(|s| s.load(Relaxed).is_null()) else {
                return false;
            };
            free.store(p, Relaxed);
        }
    }
    install()
}

/// Installs the handlers if they are not yet; whether they are.
fn install() -> bool {
    #[cfg(all(poolgc_fork, not(miri)))]
    loop {
        // SAFETY: `getpid` has no preconditions.
        let me = unsafe { libc::getpid() };
        match STATE.compare_exchange(NOT_INSTALLED, me, Relaxed, Relaxed) {
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
            // Forked while a thread of the parent was installing them: take over. (If the parent's
            // `pthread_atfork` had returned, the child has the handlers twice; they nest, see `DEPTH`.)
            Err(p) if p != me => {
                let _ = STATE.compare_exchange(p, NOT_INSTALLED, Relaxed, Relaxed);
            }
            // Another thread is installing them (or failed to: then this one tries).
            Err(_) => std::thread::yield_now(),
        }
    }
    #[cfg(not(all(poolgc_fork, not(miri))))]
    false
}

#[cfg(all(poolgc_fork, not(miri)))]
mod handlers {
    use super::*;
    use core::sync::atomic::AtomicUsize;

    /// How many times `prepare` ran for the fork under way: the handlers may be installed twice (see
    /// `install`), and only the outermost pair takes and releases the locks. Forks are serialized by the
    /// C library (its atfork lock is held from the prepare handlers to the parent/child ones).
    static DEPTH: AtomicUsize = AtomicUsize::new(0);

    /// Before `fork`, in the forking thread: takes every lock (see the module docs for the order).
    pub(super) extern "C" fn prepare() {
        if DEPTH.fetch_add(1, Relaxed) > 0 {
            return;
        }
        while !try_lock_registry_and_heaps() {
            std::thread::yield_now();
        }
        // Read under REGISTRY (held from here until `unlock_all`), so `unlock_all` sees the same hooks.
        if let Some(shared) = shared() {
            (shared.lock)();
        }
    }

    fn shared() -> Option<&'static SharedLocks> {
        // SAFETY: only ever set to a `&'static SharedLocks`.
        unsafe { SHARED.load(Relaxed).as_ref() }
    }

    fn tried() -> Option<&'static TriedLocks> {
        // SAFETY: only ever set to a `&'static TriedLocks`.
        unsafe { TRIED.load(Relaxed).as_ref() }
    }

    /// Takes the registry lock, the [`TriedLocks`] and each registered heap lock; on the first one held,
    /// releases what it took and returns `false`.
    fn try_lock_registry_and_heaps() -> bool {
        if !REGISTRY.try_lock_raw() {
            return false;
        }
        // Read under REGISTRY, which stays held until the locks are released: the same hooks then.
        if let Some(t) = tried() {
            if !(t.try_lock)() {
                // SAFETY: this thread took the registry, and nothing else.
                unsafe { REGISTRY.unlock_raw() };
                return false;
            }
        }
        for (i, s) in SLOTS.iter().enumerate() {
            let p = s.load(Relaxed);
            // SAFETY: registered locks are `'static`.
            if !p.is_null() && !unsafe { (*p).try_lock_raw() } {
                // SAFETY: this thread took the registry and the heap locks of the slots below `i`, and
                // nothing else.
                unsafe { unlock_registry_and_heaps(i) };
                return false;
            }
        }
        true
    }

    /// Releases the heap locks of the slots below `n`, then the [`TriedLocks`], then the registry.
    ///
    /// # Safety
    /// This thread holds exactly those, taken by [`try_lock_registry_and_heaps`] (REGISTRY kept the
    /// slots and hooks unchanged).
    unsafe fn unlock_registry_and_heaps(n: usize) {
        // SAFETY: forwarded contract; registered locks are `'static`.
        unsafe {
            for s in SLOTS[..n].iter().rev() {
                let p = s.load(Relaxed);
                if !p.is_null() {
                    (*p).unlock_raw();
                }
            }
            if let Some(t) = tried() {
                (t.unlock)();
            }
            REGISTRY.unlock_raw();
        }
    }

    /// Releases everything `prepare` took, in reverse order.
    ///
    /// # Safety
    /// `prepare` took the locks in this thread (or, in a child, in the thread this one is the copy of),
    /// and none was released since.
    unsafe fn unlock_all() {
        // SAFETY: forwarded contract (the hooks are the ones `prepare` saw: REGISTRY is still held).
        unsafe {
            if let Some(shared) = shared() {
                (shared.unlock)();
            }
            unlock_registry_and_heaps(MAX_HEAPS);
        }
    }

    /// After `fork`, in the parent: releases what `prepare` took.
    pub(super) extern "C" fn parent() {
        if DEPTH.fetch_sub(1, Relaxed) != 1 {
            return;
        }
        // SAFETY: `prepare` took every lock in this thread just before the fork.
        unsafe { unlock_all() };
    }

    /// After `fork`, in the child (whose only thread is the copy of the one that forked): releases what
    /// `prepare` took, then lets the thread caches make their counters exact again.
    pub(super) extern "C" fn child() {
        if DEPTH.fetch_sub(1, Relaxed) != 1 {
            return;
        }
        let shared = shared();
        // SAFETY: as in `parent`: the child's memory is a copy of the parent's at the fork.
        unsafe { unlock_all() };
        if let Some(shared) = shared {
            (shared.child)();
        }
    }
}
#[cfg(all(poolgc_fork, not(miri)))]
use handlers::{child, parent, prepare};
