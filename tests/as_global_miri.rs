//! A small test binary whose `#[global_allocator]` is the default, thread-caching `PoolAlloc::new()`,
//! sized to run under Miri (see `.ci/run`): every allocation here, the harness's and std's thread start
//! included, goes through the caches.

use poolgc::PoolAlloc;
use std::sync::mpsc;

#[global_allocator]
static ALLOC: PoolAlloc = PoolAlloc::new();

/// Blocks of several classes, some above the pools (large path).
fn sizes(i: usize) -> usize {
    [1, 8, 24, 56, 120, 250, 500, 1000, 3000][i % 9]
}

#[test]
fn threads_free_each_others_blocks_and_exit_with_cached_blocks() {
    let threads = 3;
    let n = if cfg!(miri) { 60 } else { 20_000 };
    let (tx, rx) = mpsc::channel::<(usize, Vec<u8>)>();
    let producers: Vec<_> = (0..threads)
        .map(|t| {
            let tx = tx.clone();
            std::thread::spawn(move || {
                // Kept until exit: this thread's cache still holds blocks when it ends.
                let mut kept = Vec::new();
                for i in 0..n {
                    let v = vec![(t * 31 + i) as u8; sizes(i)];
                    if i % 4 == 0 {
                        kept.push(v);
                    } else {
                        // Freed by the consumer thread, not by this one.
                        tx.send((t * 31 + i, v)).unwrap();
                    }
                }
                // Freed here, after others' frees have reached this thread's pools.
                kept.truncate(kept.len() / 2);
                kept.len()
            })
        })
        .collect();
    drop(tx);
    let consumer = std::thread::spawn(move || {
        let mut seen = 0;
        for (tag, v) in rx {
            assert!(
                v.iter().all(|&x| x == tag as u8),
                "block of tag {tag} was overwritten"
            );
            seen += 1;
        }
        seen
    });
    let kept: usize = producers.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(kept, threads * (n.div_ceil(4) / 2));
    assert_eq!(consumer.join().unwrap(), threads * (n - n.div_ceil(4)));
    ALLOC.flush_thread_cache();
    ALLOC.check().unwrap();
}

#[test]
fn realloc_across_classes_keeps_the_bytes() {
    let mut v: Vec<u8> = Vec::new();
    let top = if cfg!(miri) { 3000 } else { 100_000 };
    // Grows one byte at a time through every class and past the pools, then shrinks back down.
    for i in 0..top {
        v.push(i as u8);
    }
    while v.len() > 1 {
        let half = v.len() / 2;
        v.truncate(half);
        v.shrink_to_fit();
        assert!(v.iter().enumerate().all(|(i, &x)| x == i as u8));
    }
    // The same on another thread, whose blocks this thread then frees after a flush there.
    let moved = std::thread::spawn(|| {
        let mut s = String::new();
        for i in 0..200 {
            s.push(char::from(b'a' + (i % 26) as u8));
        }
        ALLOC.flush_thread_cache();
        s
    })
    .join()
    .unwrap();
    assert_eq!(moved.len(), 200);
    drop(moved);
    ALLOC.flush_thread_cache();
    ALLOC.check().unwrap();
}
