//! Loom models of the thread caches' shared-state protocol (`src/thread_cache.rs`).
//!
//! Run with `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=3 cargo test --release --features loom --test loom_thread_cache`.
//!
//! The caches have no lock-free shared state of their own: a thread's cache is touched only by that thread
//! (std TLS, compiled out under loom), and everything shared — the heap, the central transfer cache of
//! batches, the orphan list, the primary token — changes only under a lock. The two atomics read without
//! the lock (the allocator's token on the fast path, the "orphans pending" flag on the slow paths) are hints
//! that are acted on only after a check under the lock. So these models drive the same protocol — per-thread
//! private caches, batch refill from the heap, batch flush to a central list or the heap, a thread's exit
//! handing its blocks over, cross-thread frees — through the real `PoolAlloc` lock and `Heap`, with the
//! central list behind a second lock as in the code, and check that no block is lost, duplicated or
//! corrupted and that `Heap::check()` holds at the end of every interleaving.
#![cfg(loom)]

use core::alloc::Layout;
use core::ptr::NonNull;
use loom::sync::{Arc, Mutex};
use loom::thread;
use poolgc::{Config, PoolAlloc};

const BATCH: usize = 2;

struct Block(NonNull<u8>);
// SAFETY: a block is owned by whoever holds it; the heap behind the lock is shared.
unsafe impl Send for Block {}

fn layout() -> Layout {
    Layout::from_size_align(32, 8).unwrap()
}

/// A leaked region handed to a fresh allocator (built inside the model: loom's lock is not `const`).
fn alloc_with_region() -> Arc<PoolAlloc> {
    let len = 16 * 1024;
    let mem = Box::leak(vec![0u8; len + 4096].into_boxed_slice());
    let start = mem
        .as_mut_ptr()
        .wrapping_add(mem.as_ptr().align_offset(4096));
    let a = PoolAlloc::empty_with_config(Config::SMALL);
    // SAFETY: a leaked, 4096-aligned span of `len` bytes used by nothing else.
    unsafe { a.add_region(start, len) };
    Arc::new(a)
}

/// One thread's cache: refill takes a batch from the central list, else from the heap (one lock each).
fn refill(a: &PoolAlloc, central: &Mutex<Vec<Vec<Block>>>, cache: &mut Vec<Block>) {
    if let Some(batch) = central.lock().unwrap().pop() {
        cache.extend(batch);
        return;
    }
    a.with_heap(|h| {
        for _ in 0..BATCH {
            cache.push(Block(h.allocate(layout()).expect("room")));
        }
    });
}

/// Flush: the batch goes to the central list if it has room, else back to the heap.
fn flush(a: &PoolAlloc, central: &Mutex<Vec<Vec<Block>>>, batch: Vec<Block>) {
    let mut c = central.lock().unwrap();
    if c.is_empty() {
        c.push(batch);
        return;
    }
    drop(c);
    a.with_heap(|h| {
        for Block(p) in batch {
            // SAFETY: a live block of this heap with this layout, no longer used.
            unsafe { h.deallocate(p, layout()) };
        }
    });
}

/// Everything left (central batches, a thread's remains) goes back; the heap must then be empty.
fn drain_and_check(a: &PoolAlloc, central: &Mutex<Vec<Vec<Block>>>, rest: Vec<Block>) {
    let mut all: Vec<Block> = rest;
    for b in central.lock().unwrap().drain(..) {
        all.extend(b);
    }
    let mut seen: Vec<usize> = all.iter().map(|b| b.0.as_ptr() as usize).collect();
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen.len(), all.len(), "a block is held twice");
    a.with_heap(|h| {
        for Block(p) in all {
            // SAFETY: as in `flush`.
            unsafe { h.deallocate(p, layout()) };
        }
        h.check().unwrap();
        assert_eq!(h.stats().bytes_in_use, 0, "a block was lost");
    });
}

#[test]
fn two_threads_refill_and_flush_batches_through_the_locks() {
    loom::model(|| {
        let a = alloc_with_region();
        let central = Arc::new(Mutex::new(Vec::new()));
        let worker = |id: u8| {
            let (a, central) = (a.clone(), central.clone());
            thread::spawn(move || {
                let mut cache = Vec::new();
                refill(&a, &central, &mut cache);
                for b in &cache {
                    // SAFETY: a block of 32 bytes this thread holds.
                    unsafe { b.0.as_ptr().write_bytes(id, 32) };
                }
                for b in &cache {
                    // SAFETY: as above; nobody else may have written it.
                    assert!(unsafe { core::slice::from_raw_parts(b.0.as_ptr(), 32) }
                        .iter()
                        .all(|&x| x == id));
                }
                // Thread exit: its blocks are handed over whole.
                flush(&a, &central, cache);
            })
        };
        let (t1, t2) = (worker(1), worker(2));
        t1.join().unwrap();
        t2.join().unwrap();
        drain_and_check(&a, &central, Vec::new());
    });
}

#[test]
fn blocks_freed_by_another_thread_land_in_its_cache_and_flow_back() {
    loom::model(|| {
        let a = alloc_with_region();
        let central = Arc::new(Mutex::new(Vec::new()));
        // The producer allocates a batch through its cache and hands it to the consumer, which "frees"
        // it into its own cache and flushes; the producer refills concurrently.
        let tx = Arc::new(Mutex::new(None::<Vec<Block>>));
        let producer = {
            let (a, central, tx) = (a.clone(), central.clone(), tx.clone());
            thread::spawn(move || {
                let mut cache = Vec::new();
                refill(&a, &central, &mut cache);
                *tx.lock().unwrap() = Some(cache);
                let mut again = Vec::new();
                refill(&a, &central, &mut again);
                again
            })
        };
        let consumer = {
            let (a, central, tx) = (a.clone(), central.clone(), tx.clone());
            thread::spawn(move || {
                let got = loop {
                    if let Some(b) = tx.lock().unwrap().take() {
                        break b;
                    }
                    thread::yield_now();
                };
                flush(&a, &central, got);
            })
        };
        let left = producer.join().unwrap();
        consumer.join().unwrap();
        drain_and_check(&a, &central, left);
    });
}
