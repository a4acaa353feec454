//! Fork-safe with no call: children forked while other threads allocate through the default
//! `PoolAlloc::new()` must not hang on a lock that was held at the moment of the fork, and must find a
//! consistent heap. The program never calls anything to get there: poolgc installs its handlers itself.
//! Threads keep every lock busy: small and medium blocks freed and taken back in whole batches (the
//! transfer cache's class locks), large blocks (the heap lock, with system calls under it), short-lived
//! threads (the thread caches' central lock, taken when a caching thread exits) and, with feature `gc`,
//! `Gc` boxes (the box heap's lock). Without the handlers, or with any of these locks left out of them, a
//! child hangs within the first few forks; the parent kills a child that has not exited after 20 s.
#![cfg(all(
    unix,
    feature = "std",
    feature = "os",
    not(feature = "critical-section")
))]

use poolgc::PoolAlloc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{Duration, Instant};

#[global_allocator]
static ALLOC: PoolAlloc = PoolAlloc::new();

const FORKS: usize = 100;

/// xorshift64: allocation-free.
fn next(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

/// Builds and frees runs of a few hundred blocks of one pool class: whole batches to and from the transfer
/// cache (its class locks).
fn churn_batches(stop: &AtomicBool, mut x: u64) {
    while !stop.load(Relaxed) {
        let size = 1 + next(&mut x) as usize % 3584;
        let run: Vec<Box<[u8]>> = (0..300)
            .map(|_| vec![7u8; size].into_boxed_slice())
            .collect();
        drop(run);
    }
}

/// Allocates and frees large blocks without pause: every call takes the heap lock, often with a system
/// call under it.
fn churn_large(stop: &AtomicBool, mut x: u64) {
    let mut keep: Vec<Vec<u8>> = Vec::new();
    while !stop.load(Relaxed) {
        keep.push(vec![1u8; 4096 + next(&mut x) as usize % 300_000]);
        if keep.len() > 8 {
            keep.swap_remove(next(&mut x) as usize % keep.len());
        }
    }
}

/// Starts and joins short-lived threads that allocate (their exit takes the central lock).
fn spawn_threads(stop: &AtomicBool) {
    while !stop.load(Relaxed) {
        std::thread::spawn(|| drop(std::hint::black_box(vec![0u8; 100])))
            .join()
            .expect("short-lived thread");
    }
}

/// Makes and drops `Gc` boxes (and collects their cycles): the box heap's lock.
#[cfg(feature = "gc")]
fn churn_gc(stop: &AtomicBool) {
    while !stop.load(Relaxed) {
        let v: Vec<poolgc::gc::Gc<[u64; 4]>> =
            (0..64).map(|i| poolgc::gc::Gc::new([i; 4])).collect();
        drop(v);
    }
}

/// What a child does: a few blocks of every pool class and some large ones, checked, freed, then the
/// heap checked; exits with 0 if all was well.
fn child() -> ! {
    let mut v: Vec<Box<[u8]>> = Vec::new();
    for size in (16..=3584).step_by(16).chain((1..=2).map(|i| i * 100_000)) {
        for _ in 0..8 {
            v.push(vec![size as u8; size].into_boxed_slice());
        }
    }
    let intact = v.iter().all(|b| b.iter().all(|&x| x == b.len() as u8));
    drop(v);
    #[cfg(feature = "gc")]
    let intact = intact && {
        let g: Vec<_> = (0..256u64).map(|i| poolgc::gc::Gc::new([i; 4])).collect();
        g.iter().enumerate().all(|(i, b)| b[3] == i as u64)
            && poolgc::gc::box_allocator().is_none_or(|a| a.check().is_ok())
    };
    let ok = intact && ALLOC.check().is_ok();
    // SAFETY: ends the child without running the parent's exit handlers.
    unsafe { libc::_exit(if ok { 0 } else { 1 }) }
}

/// Waits up to 20 s for the child (a hang may come before the child's own code runs: in the fork
/// handlers); kills it and returns `None` if it is still running then.
fn wait_for(pid: libc::pid_t) -> Option<libc::c_int> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut status = 0;
    loop {
        // SAFETY: polls the child just forked.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        assert!(r == 0 || r == pid, "waitpid failed");
        if r == pid {
            return Some(status);
        }
        if Instant::now() > deadline {
            // SAFETY: our own child; reaped right after.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, &mut status, 0);
            }
            return None;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Sets the flag when dropped: the helper threads stop even if an assertion fails.
struct StopOnDrop<'a>(&'a AtomicBool);
impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Relaxed);
    }
}

#[test]
fn children_forked_while_threads_allocate_do_not_hang() {
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        let stop = &stop;
        let _stop = StopOnDrop(stop);
        s.spawn(move || churn_batches(stop, 0x9e37_79b9_7f4a_7c15));
        s.spawn(move || churn_large(stop, 0xd1b5_4a32_d192_ed03));
        s.spawn(move || spawn_threads(stop));
        #[cfg(feature = "gc")]
        s.spawn(move || churn_gc(stop));
        for i in 0..FORKS {
            // SAFETY: the child only allocates, frees and exits (`child`).
            let pid = unsafe { libc::fork() };
            assert!(pid >= 0, "fork failed");
            if pid == 0 {
                child();
            }
            let status =
                wait_for(pid).unwrap_or_else(|| panic!("child {i} hung (killed after 20 s)"));
            assert!(
                libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
                "child {i} did not exit cleanly (wait status {status:#x})"
            );
        }
    });
}
