//! A caching allocator dropped while threads that cached its blocks are still alive: their exit must
//! forget those blocks without touching them (the arenas are unmapped by then), and a new caching
//! allocator must be able to become primary afterwards. The process's global allocator is the system's.

use poolgc::PoolAlloc;
use std::alloc::{GlobalAlloc, Layout};
use std::sync::{mpsc, Arc, Barrier};

/// Four threads allocate and free through `a` (leaving blocks in their caches), then wait until the
/// allocator has been dropped before they exit.
fn cache_then_drop(a: PoolAlloc) {
    let a = Box::into_raw(Box::new(a)) as usize;
    let release = Arc::new(Barrier::new(5));
    let (done, cached) = mpsc::channel();
    let hs: Vec<_> = (0..4)
        .map(|t| {
            let (release, done) = (release.clone(), done.clone());
            std::thread::spawn(move || {
                // SAFETY: the allocator stays alive until every thread has sent `done`.
                let a = unsafe { &*(a as *const PoolAlloc) };
                let l = Layout::from_size_align(16 + 32 * t, 8).unwrap();
                // SAFETY: each block is freed once with its layout, while `a` is alive.
                let blocks: Vec<_> = (0..100).map(|_| unsafe { a.alloc(l) }).collect();
                assert!(blocks.iter().all(|p| !p.is_null()));
                for p in blocks {
                    // SAFETY: as above.
                    unsafe { a.dealloc(p, l) };
                }
                done.send(()).unwrap();
                release.wait();
                // The thread exits here, its cache still holding blocks of the dropped allocator.
            })
        })
        .collect();
    for _ in 0..4 {
        cached.recv().unwrap();
    }
    // SAFETY: made by `Box::into_raw` above; no thread uses it any more.
    drop(unsafe { Box::from_raw(a as *mut PoolAlloc) });
    release.wait();
    for h in hs {
        h.join().unwrap();
    }
}

#[test]
fn threads_outliving_their_caching_allocator_exit_cleanly_and_a_new_one_takes_over() {
    cache_then_drop(PoolAlloc::new());
    // The first one is gone: a second caching allocator becomes primary, and is dropped the same way.
    cache_then_drop(PoolAlloc::new());
    // A third one works through the caches and gives everything back.
    let a = PoolAlloc::new();
    let l = Layout::from_size_align(24, 8).unwrap();
    // SAFETY: freed once below with its layout.
    let p = unsafe { a.alloc(l) };
    assert!(!p.is_null());
    // SAFETY: as above.
    unsafe { a.dealloc(p, l) };
    a.flush_thread_cache();
    assert_eq!(a.stats().bytes_in_use, 0);
    a.check().unwrap();
}
