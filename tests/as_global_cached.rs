//! A test binary whose `#[global_allocator]` is `PoolAlloc` with per-thread caches: the fast path, thread
//! exit, cross-thread frees, and the stats after `flush_thread_cache`.

use poolgc::PoolAlloc;
use std::alloc::{GlobalAlloc, Layout};
use std::sync::Mutex;

#[global_allocator]
static ALLOC: PoolAlloc = PoolAlloc::new();

/// The tests of this binary measure the global heap: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn small_bytes() -> usize {
    ALLOC.flush_thread_cache();
    ALLOC.stats().small_bytes_in_use()
}

#[test]
fn threads_that_exit_give_their_blocks_back() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let before = small_bytes();
    let handles: Vec<_> = (0..4)
        .map(|t| {
            std::thread::spawn(move || {
                let mut v: Vec<Box<[u8]>> = Vec::new();
                for i in 0..50_000usize {
                    v.push(vec![t as u8; 1 + (i * 7) % 500].into_boxed_slice());
                    if i % 3 == 0 {
                        v.swap_remove((i * 31) % v.len());
                    }
                }
                assert!(v.iter().all(|b| b.iter().all(|&x| x == t as u8)));
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    // The exited threads' caches went to the orphan list; flushing takes them back. (The tolerance is
    // what the harness's own threads, waiting to run the other tests, may hold in their caches: a batch
    // of up to 4 KiB per class they use; the four threads here held megabytes.)
    let after = small_bytes();
    assert!(
        after <= before + 64 * 1024,
        "small bytes in use grew from {before} to {after}"
    );
    ALLOC.check().unwrap();
}

#[test]
fn cross_thread_frees_through_the_caches() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    use std::sync::mpsc;
    let n = 100_000;
    let (tx, rx) = mpsc::sync_channel::<Vec<Box<[u8]>>>(4);
    let producer = std::thread::spawn(move || {
        for i in 0..n / 100 {
            let batch = (0..100)
                .map(|k| vec![(i + k) as u8; 1 + (i * k) % 400].into_boxed_slice())
                .collect();
            tx.send(batch).unwrap();
        }
    });
    let consumer = std::thread::spawn(move || {
        let mut seen = 0;
        for (i, batch) in rx.into_iter().enumerate() {
            for (k, b) in batch.into_iter().enumerate() {
                assert!(b.iter().all(|&x| x == (i + k) as u8));
                seen += 1;
            }
        }
        seen
    });
    producer.join().unwrap();
    assert_eq!(consumer.join().unwrap(), n);
    ALLOC.flush_thread_cache();
    ALLOC.check().unwrap();
}

#[test]
fn every_small_layout_through_the_cache_and_realloc_across_classes() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut live = Vec::new();
    for align in [1, 2, 4, 8, 16, 32, 64, 128, 256, 512] {
        for size in (0..=4200).step_by(13) {
            let l = Layout::from_size_align(size, align).unwrap();
            // SAFETY: non-null checked below; freed with the same layout.
            let p = unsafe { ALLOC.alloc(l) };
            assert!(!p.is_null());
            assert_eq!(p as usize % align, 0, "{l:?}");
            // SAFETY: a fresh block of `size` bytes.
            unsafe { p.write_bytes(size as u8, size) };
            live.push((p, l));
        }
    }
    for (p, l) in live.drain(..) {
        // SAFETY: live blocks of ours; realloc keeps the content and the alignment.
        unsafe {
            let q = ALLOC.realloc(p, l, l.size() / 2 + 1);
            assert_eq!(q as usize % l.align(), 0);
            let keep = (l.size() / 2 + 1).min(l.size());
            assert!(std::slice::from_raw_parts(q, keep)
                .iter()
                .all(|&b| b == l.size() as u8));
            let nl = Layout::from_size_align(l.size() / 2 + 1, l.align()).unwrap();
            let z = ALLOC.alloc_zeroed(nl);
            assert!(std::slice::from_raw_parts(z, nl.size())
                .iter()
                .all(|&b| b == 0));
            ALLOC.dealloc(z, nl);
            ALLOC.dealloc(q, nl);
        }
    }
    ALLOC.flush_thread_cache();
    ALLOC.check().unwrap();
}

#[test]
fn a_second_caching_allocator_runs_on_its_lock() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let a = PoolAlloc::new();
    let l = Layout::from_size_align(48, 8).unwrap();
    // SAFETY: freed below with the same layout.
    let ps: Vec<_> = (0..1000).map(|_| unsafe { a.alloc(l) }).collect();
    assert_eq!(
        a.stats().classes[2].blocks_in_use,
        1000,
        "no batch refills: not primary"
    );
    for p in ps {
        // SAFETY: live blocks of `a`.
        unsafe { a.dealloc(p, l) };
    }
    assert_eq!(a.stats().bytes_in_use, 0);
    a.check().unwrap();
}

#[test]
fn racing_threads_keep_a_second_caching_allocator_on_its_lock() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // `ALLOC` is primary already; a second caching allocator must end up on its lock in every thread,
    // whoever asks first.
    let a: &'static PoolAlloc = Box::leak(Box::new(PoolAlloc::new()));
    let l = Layout::from_size_align(64, 8).unwrap();
    let hs: Vec<_> = (0..4)
        .map(|_| {
            std::thread::spawn(move || {
                for _ in 0..1000 {
                    // SAFETY: freed at once with the same layout.
                    unsafe { a.dealloc(a.alloc(l), l) };
                }
            })
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    assert_eq!(a.stats().bytes_in_use, 0);
    a.check().unwrap();
}

/// A binary tree of 16-byte nodes, the binary-trees benchmark's shape.
struct Node(Option<(Box<Node>, Box<Node>)>);

fn tree(depth: u32) -> Box<Node> {
    Box::new(Node(
        (depth > 0).then(|| (tree(depth - 1), tree(depth - 1))),
    ))
}

fn count(n: &Node) -> usize {
    1 + n.0.as_ref().map_or(0, |(l, r)| count(l) + count(r))
}

#[test]
fn trees_cycle_through_the_transfer_cache_and_flush_back_exactly() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let before = small_bytes();
    // Depth 19: 1 Mi nodes, 16 MiB of 16-byte blocks, more than the transfer cache holds (so freeing it
    // also sends batches to the heap); depth 12 fits, and is rebuilt from the cached batches.
    for depth in [19, 12, 12, 19, 12] {
        let t = tree(depth);
        assert_eq!(count(&t), (1 << (depth + 1)) - 1);
        drop(t);
        ALLOC.check().unwrap();
    }
    // Another thread builds and frees trees too: batches it flushes are refills for this one.
    std::thread::spawn(|| drop(tree(14))).join().unwrap();
    let t = tree(14);
    assert_eq!(count(&t), (1 << 15) - 1);
    drop(t);
    // Everything cached (this thread's bins, the transfer cache, the exited thread's orphans) goes back:
    // of the 16 MiB, no more than what other tests' threads (running beside this one, each caching up to
    // two batches per class) may hold.
    let after = small_bytes();
    assert!(
        after <= before + 64 * 1024,
        "small bytes in use grew from {before} to {after}"
    );
    ALLOC.check().unwrap();
    // And trim() returns the now wholly free arenas to the OS.
    ALLOC.trim();
    ALLOC.check().unwrap();
}

#[test]
fn spares_decay_while_the_caches_refill() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // With no decay time, every pool-level event leaves at most 4 spares, including the new pools that
    // the caches' batch refills take (`Heap::alloc_batch`), which may release arenas mid-refill.
    ALLOC.with_heap(|h| h.set_spare_decay_ms(0));
    for round in 0..3u8 {
        let v: Vec<Box<[u8]>> = (0..200_000usize)
            .map(|i| vec![round; 16 + (i * 37) % 480].into_boxed_slice())
            .collect();
        assert!(v.iter().all(|b| b.iter().all(|&x| x == round)));
        drop(v);
        ALLOC.flush_thread_cache();
        ALLOC.check().unwrap();
        let s = ALLOC.stats();
        assert!(
            s.spare_arenas <= 4,
            "round {round}: {} spares",
            s.spare_arenas
        );
        assert!(s.arenas_reclaimed > 0, "round {round}");
    }
    ALLOC.with_heap(|h| h.set_spare_decay_ms(1000));
}

#[test]
fn a_phase_change_reuses_the_memory_the_transfer_cache_held() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // 6 MiB of 48-byte blocks, freed: they fit the transfer cache's budget, so they stay there as batches
    // of their class. Then 6 MiB of 64-byte blocks: before the heap maps a new arena for them, the cached
    // 48-byte blocks go back to it, their pools and arenas empty out, and the 64-byte blocks reuse them.
    // (`trim` first: no spare arenas left over from the other tests of this binary.)
    ALLOC.trim();
    let total = || ALLOC.stats().arenas_allocated_total;
    let n = (6 << 20) / 48;
    let first: Vec<Box<[u8; 48]>> = (0..n).map(|i| Box::new([i as u8; 48])).collect();
    let after_first = total();
    drop(first);
    let second: Vec<Box<[u8; 64]>> = (0..(6 << 20) / 64)
        .map(|i| Box::new([i as u8; 64]))
        .collect();
    assert!(
        total() <= after_first + 2,
        "arenas mapped in all: {after_first} after the first phase, {} after the second",
        total()
    );
    assert!(second.iter().enumerate().all(|(i, b)| b[63] == i as u8));
    drop(second);
    ALLOC.flush_thread_cache();
    ALLOC.check().unwrap();
}
