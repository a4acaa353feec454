//! Memory freed through the thread caches goes back to the OS without `trim()`: 256 MiB of small blocks
//! freed, then 3 s of light allocation, and the resident set is at most a quarter of its peak. Its own
//! test binary (one test), so no other test moves the resident set meanwhile.
#![cfg(all(feature = "os", target_os = "linux", not(miri)))]

use poolgc::PoolAlloc;
use std::time::{Duration, Instant};

#[global_allocator]
static ALLOC: PoolAlloc = PoolAlloc::new();

/// Resident set size in bytes (`VmRSS` of /proc/self/status).
fn rss() -> usize {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = s.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    let kib: usize = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib << 10
}

#[test]
fn memory_freed_through_the_caches_goes_back_without_trim() {
    // 100-byte boxes (the 112-byte class): 2.5 M of them hold 266 MiB of blocks.
    let n = 2_500_000;
    let boxes: Vec<Box<[u8; 100]>> = (0..n).map(|i| Box::new([i as u8; 100])).collect();
    let peak = rss();
    assert!(
        peak >= 256 << 20,
        "only {} MiB resident at the peak",
        peak >> 20
    );
    assert!(boxes.iter().enumerate().all(|(i, b)| b[99] == i as u8));
    drop(boxes);
    // Light allocation: a hundred short-lived boxes and strings every millisecond.
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(3) {
        let v: Vec<Box<[u8; 100]>> = (0..100).map(|i| Box::new([i as u8; 100])).collect();
        let s: Vec<String> = (0..100).map(|i| i.to_string()).collect();
        drop((v, s));
        std::thread::sleep(Duration::from_millis(1));
    }
    let after = rss();
    assert!(
        after <= peak / 4,
        "resident {} MiB after 3 s, peak {} MiB",
        after >> 20,
        peak >> 20
    );
}
