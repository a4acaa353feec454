//! `PoolAlloc::empty()` fits its geometry to the first region it is given, and its lock-free class
//! lookup follows (runs under Miri: `cargo +nightly miri test --test region_geometry`).

mod common;

use common::{Region, Rng};
use core::alloc::{GlobalAlloc, Layout};
use poolgc::{Config, PoolAlloc};

/// Region sizes around each threshold of `Config::for_region`, and what they get.
const CASES: [(usize, Config); 4] = [
    (16 * 1024, Config::SMALL),
    ((2 << 20) - 1, Config::SMALL),
    (2 << 20, Config::new(4096, 32 * 1024)),
    (64 << 20, Config::HOSTED),
];

/// Random allocations, reallocations and frees of 1 B–`max` (at most 32 live; medium classes where the
/// geometry has them) through `a`, checking contents and the heap; everything is freed at the end.
fn churn(a: &PoolAlloc, steps: usize, max: usize) {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut live: Vec<(*mut u8, Layout, u8)> = Vec::new();
    for i in 0..steps {
        let tag = i as u8;
        if live.len() < 32 && rng.below(3) != 0 {
            let l = Layout::from_size_align(1 + rng.below(max), 8).unwrap();
            // SAFETY: non-zero size.
            let p = unsafe { a.alloc(l) };
            assert!(!p.is_null(), "{l:?} refused in {:?}", a.stats().config);
            // SAFETY: a fresh block of `l.size()` bytes.
            unsafe { p.write_bytes(tag, l.size()) };
            live.push((p, l, tag));
        } else if !live.is_empty() {
            let (p, l, t) = live.swap_remove(rng.below(live.len()));
            // SAFETY: a live block of `l`, filled with `t`.
            unsafe {
                assert!(core::slice::from_raw_parts(p, l.size())
                    .iter()
                    .all(|&b| b == t));
                if rng.below(4) == 0 {
                    let n = 1 + rng.below(max);
                    let q = a.realloc(p, l, n);
                    assert!(!q.is_null());
                    let k = l.size().min(n);
                    assert!(core::slice::from_raw_parts(q, k).iter().all(|&b| b == t));
                    q.write_bytes(tag, n);
                    live.push((q, Layout::from_size_align(n, 8).unwrap(), tag));
                } else {
                    a.dealloc(p, l);
                }
            }
        }
    }
    for (p, l, _) in live {
        // SAFETY: live blocks of `l`.
        unsafe { a.dealloc(p, l) };
    }
    a.check().unwrap();
}

#[test]
fn the_first_region_decides_the_geometry_and_blocks_follow_it() {
    let steps = if cfg!(miri) { 200 } else { 20_000 };
    for (len, want) in CASES {
        if cfg!(miri) && len > 4 << 20 {
            continue;
        }
        let r = Region::new(len, 4096);
        let a = PoolAlloc::empty_locked();
        // Before any region: nothing to serve, and nothing is decided.
        // SAFETY: a valid layout of non-zero size.
        assert!(unsafe { a.alloc(Layout::new::<[u8; 2000]>()) }.is_null());
        // SAFETY: a fresh allocation, used by nothing else, outliving `a`'s use.
        unsafe { a.add_region(r.ptr(), len) };
        assert_eq!(a.stats().config, want, "region of {len} bytes");
        churn(&a, steps, 4096.min(len / 256));
        // A second region keeps the geometry.
        let r2 = Region::new(64 << 10, 4096);
        // SAFETY: as above.
        unsafe { a.add_region(r2.ptr(), r2.len()) };
        assert_eq!(a.stats().config, want);
        churn(&a, steps / 4, 4096.min(len / 256));
        assert_eq!(a.stats().bytes_in_use, 0);
    }
}

/// The same through the thread caches (this test binary's only caching allocator).
#[test]
fn a_cached_allocator_follows_the_fitted_geometry() {
    let steps = if cfg!(miri) { 200 } else { 20_000 };
    let len = if cfg!(miri) { 2 << 20 } else { 64 << 20 };
    let r = Region::new(len, 4096);
    let a = PoolAlloc::empty();
    // SAFETY: a fresh allocation, used by nothing else, outliving `a` (dropped first).
    unsafe { a.add_region(r.ptr(), len) };
    assert_eq!(a.stats().config, Config::for_region(len));
    assert_ne!(a.stats().config, Config::SMALL);
    churn(&a, steps, 4096);
    a.flush_thread_cache();
    assert_eq!(a.stats().bytes_in_use, 0);
    drop(a);
}
