//! The one place that picks lock types.
//!
//! Normally the heap lock is a [`spin`] mutex: it needs no OS and works in a `static` built by a `const fn`.
//! Under `cfg(loom)` it is a spin lock built on loom's atomics whose wait loop yields to the loom scheduler,
//! so loom can explore every interleaving of the code that takes it.

#[cfg(not(loom))]
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
            self.0.lock()
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

pub use imp::Lock;

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
