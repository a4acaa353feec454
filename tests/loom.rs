//! loom models of `PoolAlloc`: every interleaving of a few threads allocating, freeing and inspecting one
//! allocator, explored up to `LOOM_MAX_PREEMPTIONS` preemptions.
//!
//! ```sh
//! RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=3 cargo test --release --features loom --test loom
//! ```
//!
//! loom itself allocates through the process's global allocator, so these models drive `PoolAlloc`
//! *values*, each fed one static region, never the global allocator. Under `cfg(loom)` the heap lock is a
//! spin lock on loom's atomics (`src/sync.rs`) and the `Heap` sits in a loom `UnsafeCell`: loom reports any
//! two accesses to the heap that the lock does not order, and any schedule where a thread never gets the
//! lock (the spin loop yields to loom).
//!
//! Each model has two threads and a handful of lock acquisitions: loom's state space grows combinatorially
//! with both. Two threads is also a hard limit for a *spin* lock under loom: with two waiters, loom's
//! deliberately unfair scheduler explores the schedule where they yield to each other forever while the
//! holder never runs, and the model exceeds its branch limit (tried: a three-thread model does not finish
//! even with `LOOM_MAX_BRANCHES=20000`).
//!
//! Lock-free paths (per-thread caches, remote-free lists in `src/global.rs`) get their models as a separate
//! `mod` appended at the end of this file, reusing `fresh_alloc`, `fill` and `verify`.
#![cfg(loom)]

use core::alloc::{GlobalAlloc, Layout};
use loom::sync::Arc;
use loom::thread;
use poolgc::{Config, PoolAlloc};

/// Bytes of the region each model's allocator serves from.
const REGION: usize = 16 * 1024;

/// A region leaked once for the whole test binary and handed to the allocator of every loom iteration.
///
/// Iterations run one after the other, and each iteration's `PoolAlloc` (with every block from it) is gone
/// before the next starts, so the region always has exactly one user. Regions are never "fresh" memory
/// (`alloc_zeroed` always writes zeros in them), so leftovers of the previous iteration are harmless.
#[derive(Clone, Copy)]
struct Region(*mut u8);
// SAFETY: only an address, handed to one allocator at a time (see above).
unsafe impl Send for Region {}
// SAFETY: as above.
unsafe impl Sync for Region {}

fn leak_region() -> Region {
    let layout = Layout::from_size_align(REGION, 4096).unwrap();
    // SAFETY: non-zero size; the block is never freed.
    let p = unsafe { std::alloc::alloc(layout) };
    assert!(!p.is_null());
    Region(p)
}

/// A `PoolAlloc` with small pools (1 KiB in 4 KiB arenas) serving only `region`.
fn fresh_alloc(region: Region) -> Arc<PoolAlloc> {
    fresh_alloc_with(region, Config::SMALL)
}

/// A `PoolAlloc` with this geometry serving only `region`.
fn fresh_alloc_with(region: Region, config: Config) -> Arc<PoolAlloc> {
    let a = PoolAlloc::empty_with_config_locked(config);
    // SAFETY: the region is valid for `REGION` bytes and used by this allocator only (see `Region`).
    unsafe { a.add_region(region.0, REGION) };
    Arc::new(a)
}

/// Allocates `size` bytes aligned to `align` and fills them with `pattern`; returns the address.
fn fill(a: &PoolAlloc, size: usize, align: usize, pattern: u8) -> usize {
    let l = Layout::from_size_align(size, align).unwrap();
    // SAFETY: non-zero size.
    let p = unsafe { a.alloc(l) };
    assert!(!p.is_null(), "a 16 KiB region holds {size} bytes");
    assert_eq!(p as usize % align, 0);
    // SAFETY: a fresh block of `size` bytes.
    unsafe { p.write_bytes(pattern, size) };
    p as usize
}

/// Checks that the block at `addr` still holds `pattern`, then frees it.
fn verify_and_free(a: &PoolAlloc, addr: usize, size: usize, align: usize, pattern: u8) {
    verify(addr, size, pattern);
    // SAFETY: `addr` is a live block of this allocator with this layout, freed once.
    unsafe {
        a.dealloc(
            addr as *mut u8,
            Layout::from_size_align(size, align).unwrap(),
        )
    };
}

fn verify(addr: usize, size: usize, pattern: u8) {
    // SAFETY: a live block of at least `size` bytes, owned by the caller.
    let s = unsafe { core::slice::from_raw_parts(addr as *const u8, size) };
    assert!(
        s.iter().all(|&b| b == pattern),
        "block {addr:#x} lost its {pattern:#x} pattern"
    );
}

/// The end state every model must reach: nothing in use and a consistent heap.
fn assert_empty(a: &PoolAlloc) {
    a.check().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(a.stats().bytes_in_use, 0);
}

/// Two threads allocate and free blocks of different classes (one large) on one allocator at once, in
/// different orders.
#[test]
fn two_threads_allocate_and_free() {
    let region = leak_region();
    loom::model(move || {
        let a = fresh_alloc(region);
        let a2 = a.clone();
        let t = thread::spawn(move || {
            let p = fill(&a2, 24, 8, 0xA1);
            let q = fill(&a2, 600, 16, 0xA2); // large
            verify_and_free(&a2, p, 24, 8, 0xA1);
            let r = fill(&a2, 24, 8, 0xA3); // may take back `p`'s block, or one the other thread freed
            verify_and_free(&a2, q, 600, 16, 0xA2);
            verify_and_free(&a2, r, 24, 8, 0xA3);
        });
        let p = fill(&a, 24, 8, 0xB1); // same class as the other thread's small blocks
        let q = fill(&a, 200, 64, 0xB2);
        verify_and_free(&a, q, 200, 64, 0xB2);
        verify_and_free(&a, p, 24, 8, 0xB1);
        t.join().unwrap();
        assert_empty(&a);
    });
}

/// A block allocated on one thread is freed on another while the first keeps allocating.
#[test]
fn block_freed_on_another_thread() {
    let region = leak_region();
    loom::model(move || {
        let a = fresh_alloc(region);
        let p = fill(&a, 48, 8, 0xC1);
        let big = fill(&a, 1500, 8, 0xC2);
        let a2 = a.clone();
        let t = thread::spawn(move || {
            verify_and_free(&a2, p, 48, 8, 0xC1);
            verify_and_free(&a2, big, 1500, 8, 0xC2);
        });
        let q = fill(&a, 48, 8, 0xC3); // same class: may reuse `p`'s block once it is freed
        let r = fill(&a, 1200, 8, 0xC4); // large: may reuse `big`'s span once it is freed
        verify(q, 48, 0xC3);
        verify_and_free(&a, r, 1200, 8, 0xC4);
        t.join().unwrap();
        verify_and_free(&a, q, 48, 8, 0xC3);
        assert_empty(&a);
    });
}

/// One thread allocates and reallocates (small → small, small → large, large → small) while another takes
/// `stats()` snapshots and runs `check()`: every snapshot must be one the allocating thread could have
/// produced between two of its calls.
#[test]
fn realloc_races_stats_and_check() {
    let region = leak_region();
    loom::model(move || {
        let a = fresh_alloc(region);
        let a2 = a.clone();
        let t = thread::spawn(move || {
            let p = fill(&a2, 16, 8, 0xD1);
            let mut size = 16;
            let mut p = p as *mut u8;
            for new in [100, 900, 40] {
                // SAFETY: `p` is live with `size` bytes at align 8; `new` is a valid size.
                p = unsafe { a2.realloc(p, Layout::from_size_align(size, 8).unwrap(), new) };
                assert!(!p.is_null());
                verify(p as usize, size.min(new), 0xD1);
                // SAFETY: `p` now has `new` bytes.
                unsafe { p.write_bytes(0xD1, new) };
                size = new;
            }
            // SAFETY: live with `size` bytes at align 8.
            unsafe { a2.dealloc(p, Layout::from_size_align(size, 8).unwrap()) };
        });
        for _ in 0..2 {
            a.check().unwrap_or_else(|e| panic!("{e}"));
            let s = a.stats();
            // Between calls the other thread holds one block: 16 B, the 112-byte class for 100 B (64-bit:
            // 16-byte classes; 32-bit: 8-byte classes → 104), 900 B large, 48/40 B, or nothing; or, inside
            // a realloc that moves the block to another class (new block taken, old one not yet freed),
            // both: 16 + 112 (104), 112 (104) + 900, 900 + 48 (40).
            let possible = [0, 16, 104, 112, 900, 40, 48, 128, 120, 1012, 1004, 948, 940];
            assert!(
                possible.contains(&s.bytes_in_use),
                "impossible snapshot: {} bytes in use",
                s.bytes_in_use
            );
            assert!(s.large_blocks <= 1);
        }
        t.join().unwrap();
        assert_empty(&a);
    });
}

/// With one-pool arenas, the last free of a pool gives its whole arena back to the region while the other
/// thread allocates in the same class (and so needs a new pool, possibly the very memory just released):
/// the cold paths `pool_changed_list`, `release_arena` and `grow` interleaved.
#[test]
fn arena_released_while_other_thread_allocates() {
    let region = leak_region();
    loom::model(move || {
        let a = fresh_alloc_with(region, Config::new(1024, 1024));
        let p = fill(&a, 64, 8, 0xE1);
        let a2 = a.clone();
        let t = thread::spawn(move || {
            let q = fill(&a2, 64, 8, 0xE2);
            let r = fill(&a2, 700, 8, 0xE3); // large, from the same region
            verify_and_free(&a2, r, 700, 8, 0xE3);
            q
        });
        verify_and_free(&a, p, 64, 8, 0xE1); // may empty the only pool and release its arena
        let q = t.join().unwrap();
        assert_ne!(q, 0);
        verify_and_free(&a, q, 64, 8, 0xE2);
        assert_empty(&a);
        assert_eq!(a.stats().pools_in_use, 0);
    });
}

// ---- lock-free paths --------------------------------------------------------------------------------
//
// Models for the per-thread caches and remote-free lists of `src/global.rs` go here, as their own
// `mod thread_caches { use super::*; … }`, once those paths exist: a block freed by a thread that does not
// own its cache (pushed on a remote-free list while the owner drains it), a thread exiting with a full
// cache, and a cache flush racing `stats()`/`check()`. Their atomics must come from `crate::sync` (loom's
// under `cfg(loom)`) for loom to see them.
