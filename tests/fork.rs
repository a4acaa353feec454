//! `PoolAlloc::install_fork_handlers`: children forked while two other threads allocate (small blocks
//! through the thread caches and the transfer cache, large ones under the heap lock) must not hang on a
//! lock that was held at the moment of the fork, and must find a consistent heap.
#![cfg(all(
    unix,
    feature = "std",
    feature = "os",
    not(feature = "critical-section")
))]

use poolgc::PoolAlloc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

#[global_allocator]
static ALLOC: PoolAlloc = PoolAlloc::new().with_thread_cache();

const FORKS: usize = 200;

/// Allocates and frees until `stop`: small blocks, medium ones, and large ones whose every allocation
/// and free takes the heap lock (with a system call under it now and then).
fn churn(stop: &AtomicBool, seed: u64) {
    let mut keep: Vec<Vec<u8>> = Vec::new();
    let mut x = seed | 1;
    while !stop.load(Relaxed) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let size = match x % 8 {
            0..=3 => 1 + (x >> 8) as usize % 512,
            4..=6 => 4096 + (x >> 8) as usize % 60_000,
            _ => 300_000,
        };
        keep.push(vec![x as u8; size]);
        if keep.len() > 64 {
            keep.swap_remove((x >> 32) as usize % keep.len());
        }
    }
}

/// What a child does: allocates, checks, frees, checks the heap, and exits with 0 if all was well. A hang
/// becomes death by `SIGALRM` after 10 s.
fn child() -> ! {
    // SAFETY: alarm and _exit are async-signal-safe; the allocations in between are what is tested.
    unsafe { libc::alarm(10) };
    let v: Vec<Vec<u8>> = (0..100).map(|i| vec![i as u8; 1 + i * 700]).collect();
    let intact = v
        .iter()
        .enumerate()
        .all(|(i, b)| b.iter().all(|&x| x == i as u8));
    drop(v);
    let ok = intact && ALLOC.check().is_ok();
    // SAFETY: ends the child without running the parent's exit handlers.
    unsafe { libc::_exit(if ok { 0 } else { 1 }) }
}

#[test]
fn children_forked_while_threads_allocate_do_not_hang() {
    assert!(ALLOC.install_fork_handlers());
    assert!(
        ALLOC.install_fork_handlers(),
        "registering twice is a no-op"
    );
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        for seed in [0x9e37_79b9_7f4a_7c15, 0xd1b5_4a32_d192_ed03] {
            let stop = &stop;
            s.spawn(move || churn(stop, seed));
        }
        for i in 0..FORKS {
            // SAFETY: the child only allocates, frees and exits (`child`).
            let pid = unsafe { libc::fork() };
            assert!(pid >= 0, "fork failed");
            if pid == 0 {
                child();
            }
            let mut status = 0;
            // SAFETY: waits for the child just forked.
            let r = unsafe { libc::waitpid(pid, &mut status, 0) };
            assert_eq!(r, pid);
            let clean = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
            if !clean {
                stop.store(true, Relaxed);
            }
            assert!(
                clean,
                "child {i} did not exit cleanly (wait status {status:#x}; SIGALRM = {}: it hung)",
                libc::SIGALRM
            );
        }
        stop.store(true, Relaxed);
    });
}
