//! Threads racing to make a fresh caching allocator primary (the process's global allocator is the
//! system's here, so nothing has claimed the caches before): they must all end up with the primary's
//! token, and every block must come back to the heap once the threads have exited. Each thread uses a
//! class of its own, so what a thread's cache held at exit shows in its class's count: a thread that
//! lost the race and ran on the lock would leave its class empty, and one holding another token would
//! have its blocks forgotten (never flushed back).

use poolgc::PoolAlloc;
use std::alloc::{GlobalAlloc, Layout};
use std::sync::{Arc, Barrier};

static A: PoolAlloc = PoolAlloc::new();

#[test]
fn racing_first_uses_agree_and_nothing_is_stranded() {
    let barrier = Arc::new(Barrier::new(4));
    let hs: Vec<_> = (0..4)
        .map(|t| {
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let l = Layout::from_size_align(16 + 16 * t, 8).unwrap();
                barrier.wait();
                let mut live = Vec::new();
                for i in 0..if cfg!(miri) { 1500 } else { 5000 } {
                    // SAFETY: freed below with the same layout.
                    live.push(unsafe { A.alloc(l) });
                    if i % 2 == 1 {
                        // SAFETY: a live block of `A` with layout `l`.
                        unsafe { A.dealloc(live.swap_remove(i % live.len()), l) };
                    }
                }
                for p in live {
                    // SAFETY: as above.
                    unsafe { A.dealloc(p, l) };
                }
            })
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    // Every thread's cache held blocks of its class at exit, handed to the primary's orphan list.
    for (t, class) in A.stats().classes.iter().take(4).enumerate() {
        assert!(
            class.blocks_in_use > 0,
            "thread {t} exited with nothing cached for the primary: it did not share the token"
        );
    }
    // The exited threads' caches are orphans of the primary; flushing hands them back to the heap.
    A.flush_thread_cache();
    assert_eq!(A.stats().bytes_in_use, 0);
    A.check().unwrap();
}
