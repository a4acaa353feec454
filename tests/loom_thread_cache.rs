//! Loom models of the thread caches: the real code of `src/thread_cache*` (its atomics, locks, statics and
//! thread-locals come from `crate::sync` and loom under `--cfg loom`), driven through a caching
//! `PoolAlloc`. Every interleaving of two threads and the model's main thread must end with no block lost,
//! duplicated or corrupted, and an exact, consistent heap once the caches are flushed.
//!
//! Run with `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test --release --features loom --test loom_thread_cache`.
//!
//! Under loom, the decay's clock (`crate::decay`) moves by half a period at every look, the transfer
//! cache looks at it at every push and pop, and a thread runs its upkeep every other slow-path event: so
//! a model of a few blocks reaches the upkeep. (The decay cutting batches off a transfer stack is
//! modelled in `thread_cache::transfer::loom_tests`, the fork handlers' lock order in
//! `thread_cache::fork_hooks::loom_tests`.)
#![cfg(loom)]

use core::alloc::{GlobalAlloc, Layout};
use loom::sync::Arc;
use loom::thread;
use poolgc::{Config, PoolAlloc};

/// The 512-byte class: four blocks to a batch, so a free list moves on after a few frees.
fn layout() -> Layout {
    Layout::from_size_align(512, 16).unwrap()
}

/// A leaked region handed to a fresh caching allocator (built inside the model: loom's atomics are not
/// `const`).
fn cached_alloc() -> Arc<PoolAlloc> {
    let len = 64 * 1024;
    let mem = Box::leak(vec![0u8; len + 4096].into_boxed_slice());
    let start = mem
        .as_mut_ptr()
        .wrapping_add(mem.as_ptr().align_offset(4096));
    let a = PoolAlloc::empty_with_config(Config::new(4096, 16 * 1024));
    // SAFETY: a leaked, 4096-aligned span of `len` bytes used by nothing else.
    unsafe { a.add_region(start, len) };
    Arc::new(a)
}

/// Allocates `n` blocks, fills each with `id`, checks them all, frees them.
fn use_blocks(a: &PoolAlloc, n: usize, id: u8) {
    let l = layout();
    // SAFETY: each block is freed once below, with its layout.
    let blocks: Vec<*mut u8> = (0..n).map(|_| unsafe { a.alloc(l) }).collect();
    for &p in &blocks {
        assert!(!p.is_null());
        // SAFETY: a live block of 512 bytes this thread holds.
        unsafe { p.write_bytes(id, l.size()) };
    }
    for &p in &blocks {
        // SAFETY: as above; nobody else may have written it.
        let bytes = unsafe { core::slice::from_raw_parts(p, l.size()) };
        assert!(
            bytes.iter().all(|&x| x == id),
            "a block was handed out twice"
        );
        // SAFETY: as above.
        unsafe { a.dealloc(p, l) };
    }
}

/// `loom::model` with room for the walks over every class's transfer stack (each lock is a branch).
fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut b = loom::model::Builder::new();
    b.max_branches = 20_000;
    b.check(f);
}

/// The end state: after a flush (which takes the orphans and the transfer cache back), nothing in use.
fn assert_all_back(a: &PoolAlloc) {
    a.flush_thread_cache();
    a.check().unwrap();
    assert_eq!(a.stats().bytes_in_use, 0, "a block was lost");
}

/// A model's thread: `f`, then the thread's exit hand-over, where std runs it (loom runs thread-local
/// destructors too late, see `PoolAlloc::loom_thread_exit`).
fn spawn(f: impl FnOnce() + Send + 'static) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        f();
        PoolAlloc::loom_thread_exit();
    })
}

/// Two threads make a fresh caching allocator primary at once (the claim), cache a block each, and exit
/// (their caches become orphans of the primary).
#[test]
fn racing_claims_agree_and_exits_leave_orphans() {
    model(|| {
        let a = cached_alloc();
        let ts: Vec<_> = (1..=2u8)
            .map(|id| {
                let a = a.clone();
                spawn(move || use_blocks(&a, 1, id))
            })
            .collect();
        for t in ts {
            t.join().unwrap();
        }
        // Both threads cached for the primary: their blocks are orphans, still in use for the heap.
        assert!(a.stats().bytes_in_use > 0, "a thread did not cache");
        assert_all_back(&a);
    });
}

/// Whole batches move through the transfer stacks (a full free list pushed by one thread, popped by a
/// refill of the other), with the decay clock ending periods and the upkeep running meanwhile.
#[test]
fn batches_move_between_threads_through_the_transfer_stacks() {
    model(|| {
        let a = cached_alloc();
        let t1 = {
            let a = a.clone();
            spawn(move || use_blocks(&a, 6, 1))
        };
        let t2 = {
            let a = a.clone();
            spawn(move || use_blocks(&a, 3, 2))
        };
        t1.join().unwrap();
        t2.join().unwrap();
        assert_all_back(&a);
    });
}

/// A thread exits (its cache becomes orphans) while the main thread flushes. (The main thread itself
/// never caches: its thread-locals are dropped after the model's statics.)
#[test]
fn an_exit_races_a_flush() {
    model(|| {
        let a = cached_alloc();
        let t = {
            let a = a.clone();
            spawn(move || use_blocks(&a, 2, 1))
        };
        a.flush_thread_cache();
        t.join().unwrap();
        assert_all_back(&a);
    });
}
