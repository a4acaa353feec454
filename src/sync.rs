//! The one place that picks lock and atomic types.
//!
//! Normally the heap lock is a [`spin`] mutex: it needs no OS and works in a `static` built by a `const fn`.
//! Under `cfg(loom)` it is a spin lock built on loom's atomics whose wait loop yields to the loom scheduler,
//! so loom can explore every interleaving of the code that takes it.
//!
//! With feature `critical-section` (and not under loom) the lock is a critical section instead: taking it
//! calls `critical_section::acquire()`, dropping the guard calls `release()` with the state `acquire`
//! returned. On single-core Cortex-M (`cortex-m`'s `critical-section-single-core`) that is "save PRIMASK,
//! disable interrupts" and "restore PRIMASK": an interrupt handler that allocates simply runs after the
//! allocation it interrupted has finished, where a spin lock held by the main loop would spin forever.
//!
//! Cores without compare-and-swap (Cortex-M0/M0+, `riscv32imc`) have no spin lock: there the crate needs
//! feature `critical-section`, whose lock uses no atomic read-modify-write at all (its `held` flag is a
//! plain `Cell`, written only inside the critical section). `spin` is not even compiled for them.

#[cfg(all(
    not(loom),
    not(feature = "critical-section"),
    not(target_has_atomic = "8")
))]
compile_error!(
    "poolgc: this target has no compare-and-swap (Cortex-M0/M0+, riscv32imc?), so the spin lock cannot \
     exist: enable feature `critical-section` and link a critical-section implementation (e.g. \
     cortex-m's `critical-section-single-core`, riscv's `critical-section-single-hart`)"
);

#[cfg(all(not(loom), not(feature = "critical-section"), target_has_atomic = "8"))]
mod imp {
    /// A mutual-exclusion lock that can live in a `static`.
    pub struct Lock<T>(spin::Mutex<T>);
    /// Holds the lock until dropped.
    pub type LockGuard<'a, T> = spin::MutexGuard<'a, T>;

    impl<T> Lock<T> {
        pub const fn new(value: T) -> Self {
            Lock(spin::Mutex::new(value))
        }
        #[inline(always)]
        pub fn lock(&self) -> LockGuard<'_, T> {
            #[cfg(feature = "std")]
            match self.0.try_lock() {
                Some(g) => return g,
                // Held: by this very thread, inside `PoolAlloc::with_heap`? Then waiting never ends.
                None => super::lent::check(core::ptr::from_ref(self).addr()),
            }
            self.0.lock()
        }
        /// Takes the lock and keeps it without a guard, until [`Lock::unlock_raw`] (the fork handlers:
        /// taken before `fork`, released after it in both processes).
        #[cfg(all(feature = "std", feature = "os", unix, not(miri)))]
        pub fn lock_raw(&self) {
            core::mem::forget(self.0.lock());
        }
        /// Like [`Lock::lock_raw`] if the lock is free; `false` if it is held.
        #[cfg(all(feature = "std", feature = "os", unix, not(miri)))]
        pub fn try_lock_raw(&self) -> bool {
            self.0.try_lock().map(core::mem::forget).is_some()
        }
        /// Releases a lock taken by [`Lock::lock_raw`] or [`Lock::try_lock_raw`].
        ///
        /// # Safety
        /// This thread took the lock with `lock_raw` or `try_lock_raw` and has not released it since.
        #[cfg(all(feature = "std", feature = "os", unix, not(miri)))]
        pub unsafe fn unlock_raw(&self) {
            // SAFETY: the caller holds the lock, and no guard for it exists (`lock_raw` and `try_lock_raw`
            // forget theirs).
            unsafe { self.0.force_unlock() }
        }
    }
}

#[cfg(loom)]
mod imp {
    use core::mem::ManuallyDrop;
    use core::ops::{Deref, DerefMut};
    use loom::cell::UnsafeCell;
    use loom::sync::atomic::{AtomicBool, Ordering};

    /// A spin lock on loom atomics; waiting yields to loom.
    pub struct Lock<T> {
        locked: AtomicBool,
        value: UnsafeCell<T>,
    }
    // SAFETY: the lock hands out access to `value` to one thread at a time (acquire/release on `locked`).
    unsafe impl<T: Send> Sync for Lock<T> {}
    // SAFETY: owning the lock is owning the value.
    unsafe impl<T: Send> Send for Lock<T> {}

    /// Holds the lock until dropped.
    ///
    /// `ptr` is loom's tracked access to the value: loom records a write for as long as it lives, so it
    /// is ended *before* the release store (see `Drop`), keeping the tracked access inside the critical
    /// section. (The other order happens to pass too, since loom only switches threads at atomic
    /// operations, but it would describe an access that outlives the lock.)
    pub struct LockGuard<'a, T> {
        lock: &'a Lock<T>,
        ptr: ManuallyDrop<loom::cell::MutPtr<T>>,
    }

    impl<T> Lock<T> {
        pub fn new(value: T) -> Self {
            Lock {
                locked: AtomicBool::new(false),
                value: UnsafeCell::new(value),
            }
        }
        pub fn lock(&self) -> LockGuard<'_, T> {
            while self
                .locked
                .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_err()
            {
                loom::thread::yield_now();
            }
            LockGuard {
                lock: self,
                ptr: ManuallyDrop::new(self.value.get_mut()),
            }
        }
        /// Takes the lock and keeps it without a guard (the fork handlers' shared-lock step).
        #[cfg(all(test, feature = "std"))]
        pub fn lock_raw(&self) {
            while self
                .locked
                .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_err()
            {
                loom::thread::yield_now();
            }
        }
        /// Releases a lock taken by [`Lock::lock_raw`].
        ///
        /// # Safety
        /// This thread took the lock with `lock_raw` and has not released it since.
        #[cfg(all(test, feature = "std"))]
        pub unsafe fn unlock_raw(&self) {
            self.locked.store(false, Ordering::Release);
        }
    }
    impl<T> Deref for LockGuard<'_, T> {
        type Target = T;
        fn deref(&self) -> &T {
            // SAFETY: we hold the lock, so no other reference to the value exists.
            unsafe { loom::cell::MutPtr::deref(&self.ptr) }
        }
    }
    impl<T> DerefMut for LockGuard<'_, T> {
        fn deref_mut(&mut self) -> &mut T {
            // SAFETY: we hold the lock, so no other reference to the value exists.
            unsafe { loom::cell::MutPtr::deref(&self.ptr) }
        }
    }
    impl<T> Drop for LockGuard<'_, T> {
        fn drop(&mut self) {
            // SAFETY: `ptr` is dropped exactly once, here, and never used afterwards. Ending loom's access
            // record before the release store keeps it inside the critical section.
            unsafe { ManuallyDrop::drop(&mut self.ptr) };
            self.lock.locked.store(false, Ordering::Release);
        }
    }
}

#[cfg(all(not(loom), feature = "critical-section"))]
mod imp {
    use core::cell::{Cell, UnsafeCell};
    use core::marker::PhantomData;
    use core::ops::{Deref, DerefMut};

    /// A lock that is a critical section, so that an interrupt handler may allocate.
    ///
    /// Nesting: `critical_section::acquire` may be called inside another critical section (an outer
    /// `critical_section::with`, or another allocator's lock); each guard restores exactly the state its own
    /// `acquire` saw, so interrupts come back on only when the outermost section ends. That requires
    /// guards to be dropped in the reverse order of taking them: guards never leave this crate, and every
    /// one is dropped at the end of the scope that took it.
    ///
    /// Re-entry: a critical section does not exclude the context that holds it. Code running with the heap
    /// locked that allocates from the same heap (the closure of `PoolAlloc::with_heap`) would get a second
    /// `&mut Heap`; instead the lock aborts with a message (a spin lock would deadlock there).
    ///
    /// Multi-core: exclusion across cores is the critical-section implementation's job (multi-core ones
    /// add a spin lock); this type adds nothing of its own.
    pub struct Lock<T> {
        /// Whether a guard exists; read and written only inside the critical section.
        held: Cell<bool>,
        value: UnsafeCell<T>,
    }
    // SAFETY: `held` and `value` are accessed only inside a critical section, which the critical-section
    // implementation makes exclusive across cores and interrupt levels, and `held` rules out a second
    // guard from the context already inside; so one context at a time has access to the value.
    unsafe impl<T: Send> Sync for Lock<T> {}

    /// Holds the lock (and the critical section) until dropped.
    pub struct LockGuard<'a, T> {
        lock: &'a Lock<T>,
        state: critical_section::RestoreState,
        /// `!Send`: the critical section belongs to the context (core, interrupt level) that entered it.
        _not_send: PhantomData<*mut ()>,
    }

    impl<T> Lock<T> {
        pub const fn new(value: T) -> Self {
            Lock {
                held: Cell::new(false),
                value: UnsafeCell::new(value),
            }
        }

        #[inline]
        pub fn lock(&self) -> LockGuard<'_, T> {
            // SAFETY: released exactly once, with this state: below on re-entry, otherwise by the guard's
            // `Drop`. Guards are dropped in reverse order of taking (see the type's docs), so sections nest.
            let state = unsafe { critical_section::acquire() };
            if self.held.replace(true) {
                // SAFETY: pairs with the `acquire` above; no guard was made.
                unsafe { critical_section::release(state) };
                reentered();
            }
            LockGuard {
                lock: self,
                state,
                _not_send: PhantomData,
            }
        }
    }

    impl<T> Deref for LockGuard<'_, T> {
        type Target = T;
        #[inline]
        fn deref(&self) -> &T {
            // SAFETY: we hold the lock, so no other reference to the value exists.
            unsafe { &*self.lock.value.get() }
        }
    }
    impl<T> DerefMut for LockGuard<'_, T> {
        #[inline]
        fn deref_mut(&mut self) -> &mut T {
            // SAFETY: we hold the lock, so no other reference to the value exists.
            unsafe { &mut *self.lock.value.get() }
        }
    }
    impl<T> Drop for LockGuard<'_, T> {
        #[inline]
        fn drop(&mut self) {
            self.lock.held.set(false);
            // SAFETY: `state` came from the `acquire` in `lock` that made this guard; released once, here.
            unsafe { critical_section::release(self.state) };
        }
    }

    /// The heap lock was taken again by the context holding it.
    #[cold]
    #[inline(never)]
    fn reentered() -> ! {
        super::abort_with("poolgc: heap lock re-entered (allocating inside PoolAlloc::with_heap?)")
    }
}

pub use imp::Lock;

/// Panics with `msg` and never unwinds (the allocator must not): under panic=abort the panic aborts;
/// under unwinding, the guard panics again while the first panic unwinds, which aborts.
#[cfg(all(not(loom), any(feature = "critical-section", feature = "std")))]
#[cold]
#[inline(never)]
fn abort_with(msg: &str) -> ! {
    struct Abort;
    impl Drop for Abort {
        fn drop(&mut self) {
            panic!("poolgc: aborting");
        }
    }
    let _abort = Abort;
    panic!("{msg}")
}

/// Which lock this thread holds while user code runs under it (`PoolAlloc::with_heap`'s closure), so
/// that taking it again aborts with a message instead of spinning forever. Checked only when a lock is
/// found held. (The critical-section lock detects re-entry by itself.)
#[cfg(all(not(loom), not(feature = "critical-section"), feature = "std"))]
pub(crate) mod lent {
    use core::cell::Cell;

    std::thread_local! {
        static LENT: Cell<usize> = const { Cell::new(0) };
    }

    /// Marks a lock this thread holds as lent to user code, until dropped.
    pub(crate) struct Lent(usize);

    impl Lent {
        pub(crate) fn new<T>(lock: &super::Lock<T>) -> Lent {
            let addr = core::ptr::from_ref(lock).addr();
            Lent(LENT.try_with(|l| l.replace(addr)).unwrap_or(0))
        }
    }

    impl Drop for Lent {
        fn drop(&mut self) {
            let _ = LENT.try_with(|l| l.set(self.0));
        }
    }

    /// The lock at `addr` was found held: aborts if this thread lent it (it would wait for itself).
    #[cold]
    #[inline(never)]
    pub(super) fn check(addr: usize) {
        if LENT.try_with(|l| l.get() == addr).unwrap_or(false) {
            reentered();
        }
    }

    #[cold]
    #[inline(never)]
    fn reentered() -> ! {
        super::abort_with(
            "poolgc: heap lock re-entered: PoolAlloc::with_heap's closure used the allocator it runs \
             under (allocated through it, or called its stats, check, trim or with_heap)",
        )
    }
}

/// The atomics of the shared state that loom models (the thread caches', feature `std`): `core`'s, or
/// loom's under `cfg(loom)`.
#[cfg(all(feature = "std", not(loom)))]
pub(crate) use core::sync::atomic;
#[cfg(loom)]
pub(crate) use loom::sync::atomic;

/// The loom lock itself: two threads bump a plain counter under it. loom fails the model if the two
/// increments are ever unordered (the counter lives in a loom `UnsafeCell`) or a waiter starves.
#[cfg(all(test, loom))]
mod loom_tests {
    use super::Lock;
    use loom::sync::Arc;

    #[test]
    fn lock_excludes_and_publishes() {
        loom::model(|| {
            let lock = Arc::new(Lock::new(0usize));
            let l2 = lock.clone();
            let t = loom::thread::spawn(move || *l2.lock() += 1);
            *lock.lock() += 1;
            t.join().unwrap();
            assert_eq!(*lock.lock(), 2);
        });
    }
}
