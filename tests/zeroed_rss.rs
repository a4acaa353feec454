//! `alloc_zeroed` must not write memory that came zeroed from the OS: the pages stay untouched, so the
//! resident set does not grow. Its own test binary (one test), so no other test moves the RSS meanwhile.
#![cfg(all(feature = "os", target_os = "linux", not(miri)))]

use core::alloc::{GlobalAlloc, Layout};
use poolgc::PoolAlloc;

/// Resident set size in bytes, from /proc/self/statm.
fn rss() -> usize {
    let s = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: usize = s.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

#[test]
fn fresh_os_memory_is_not_zeroed_again() {
    let a = PoolAlloc::new_locked();
    // Large: one 64 MiB mapping.
    let big = Layout::from_size_align(64 << 20, 8).unwrap();
    let before = rss();
    let p = unsafe { a.alloc_zeroed(big) };
    assert!(!p.is_null());
    let grown = rss().saturating_sub(before);
    assert!(
        grown < 4 << 20,
        "alloc_zeroed of 64 MiB touched {grown} bytes"
    );
    // It is zero all the same (reading maps the shared zero page, still no private copy).
    assert!(unsafe { core::slice::from_raw_parts(p, 64 << 20) }
        .iter()
        .step_by(4096)
        .all(|&b| b == 0));
    unsafe { a.dealloc(p, big) };

    // Small: 20,000 blocks of 512 bytes (10 MB) carved from fresh arenas. Only the pool headers (one per
    // 16 KiB pool, so at most one page in four) may be touched.
    let small = Layout::from_size_align(512, 8).unwrap();
    let before = rss();
    let v: Vec<*mut u8> = (0..20_000)
        .map(|_| unsafe { a.alloc_zeroed(small) })
        .collect();
    let grown = rss().saturating_sub(before);
    assert!(
        grown < 20_000 * 512 / 2,
        "alloc_zeroed of 10 MB of small blocks touched {grown} bytes"
    );
    assert!(v.iter().all(|&p| unsafe { *p == 0 && *p.add(511) == 0 }));
    // Recycled blocks are dirty, so they must be zeroed.
    for &p in &v {
        unsafe { p.write_bytes(0xEE, 512) };
        unsafe { a.dealloc(p, small) };
    }
    for _ in 0..1000 {
        let p = unsafe { a.alloc_zeroed(small) };
        assert!(unsafe { core::slice::from_raw_parts(p, 512) }
            .iter()
            .all(|&b| b == 0));
    }
}
