//! The thread caches' shared locks (the central one and every class's transfer lock) as hooks of the
//! fork registry (`crate::fork`), and the loom model of their order against a caching thread.

/// Takes the caches' process-wide locks (the central one, then every class's transfer lock) and keeps
/// them: a step of the fork handlers (`crate::fork`), taken after the heap locks. It may wait: a
/// thread holding one of these locks runs only this module's code meanwhile, which takes the central
/// lock before any transfer lock, holds one transfer lock at a time, and never takes a heap lock or
/// runs user code under them; so it releases them without waiting for anything the handler holds.
#[cfg(any(all(test, loom), all(poolgc_fork, not(miri), not(loom))))]
fn lock_shared_raw() {
    super::owner::CENTRAL.lock_raw();
    super::transfer::lock_all_raw();
}

/// Releases what [`lock_shared_raw`] took, in reverse order.
///
/// # Safety
/// This thread took the locks with [`lock_shared_raw`] and has released none since.
#[cfg(any(all(test, loom), all(poolgc_fork, not(miri), not(loom))))]
unsafe fn unlock_shared_raw() {
    // SAFETY: forwarded contract.
    unsafe {
        super::transfer::unlock_all_raw();
        super::owner::CENTRAL.unlock_raw();
    }
}

/// In a child after `fork`, once the fork handlers have released the locks: the transfer cache's byte
/// count made exact again (see `transfer::recount_held`).
#[cfg(all(poolgc_fork, not(miri), not(loom)))]
fn after_fork_in_child() {
    super::transfer::recount_held();
}

/// The shared locks, as the fork registry's hooks.
#[cfg(all(poolgc_fork, not(miri), not(loom)))]
static FORK_HOOKS: crate::fork::SharedLocks = crate::fork::SharedLocks {
    lock: lock_shared_raw,
    unlock: unlock_shared_raw,
    child: after_fork_in_child,
};

/// Shows the shared locks to the fork registry (before a claim first takes them).
pub(super) fn register() {
    #[cfg(all(poolgc_fork, not(miri), not(loom)))]
    crate::fork::register_shared(&FORK_HOOKS);
}

/// The fork handlers' step over the shared locks (`lock_shared_raw`, then `unlock_shared_raw`, as
/// `prepare` and `parent` run them) against a thread that claims, refills, moves batches, flushes and
/// exits: under every interleaving both finish (the order never deadlocks) and no block is lost.
#[cfg(all(test, loom))]
mod loom_tests {
    use super::{lock_shared_raw, unlock_shared_raw};
    use crate::{Config, PoolAlloc};
    use core::alloc::{GlobalAlloc, Layout};
    use loom::sync::Arc;
    use std::boxed::Box;
    use std::vec;

    #[test]
    fn fork_lock_order_against_a_caching_thread() {
        let mut b = loom::model::Builder::new();
        b.max_branches = 20_000;
        b.check(|| {
            let len = 64 * 1024;
            let mem = Box::leak(vec![0u8; len + 4096].into_boxed_slice());
            let start = mem
                .as_mut_ptr()
                .wrapping_add(mem.as_ptr().align_offset(4096));
            let a = PoolAlloc::empty_with_config(Config::new(4096, 16 * 1024));
            // SAFETY: a leaked, 4096-aligned span of `len` bytes used by nothing else.
            unsafe { a.add_region(start, len) };
            let a = Arc::new(a);
            let t = {
                let a = a.clone();
                loom::thread::spawn(move || {
                    let l = Layout::from_size_align(512, 16).unwrap();
                    // SAFETY: freed once below, with its layout.
                    let ps: std::vec::Vec<_> = (0..5).map(|_| unsafe { a.alloc(l) }).collect();
                    for p in ps {
                        assert!(!p.is_null());
                        // SAFETY: as above.
                        unsafe { a.dealloc(p, l) };
                    }
                    a.flush_thread_cache();
                })
            };
            lock_shared_raw();
            // SAFETY: taken just above by this thread.
            unsafe { unlock_shared_raw() };
            t.join().unwrap();
            a.flush_thread_cache();
            assert_eq!(a.stats().bytes_in_use, 0);
        });
    }
}
