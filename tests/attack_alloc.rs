//! Adversarial use of the allocator from safe code and within its documented contracts: heaps moved after
//! use, extreme layouts and sizes, tiny regions, odd geometries, `Allocator` resizes that change the
//! alignment, and an allocator in a `static` that is dropped in place. The process's global allocator is
//! the system's.

use poolgc::{Config, Heap, PoolAlloc};
use std::alloc::{GlobalAlloc, Layout};
use std::ptr::NonNull;

/// A `Heap` must not point into itself: moving it (into a `Box`, out again) with live blocks keeps every
/// block valid and the heap consistent.
#[test]
fn heap_moved_with_live_blocks() {
    for config in [Config::SMALL, Config::MEDIUM, Config::HOSTED] {
        let mut h = Heap::new(config);
        let sizes = [1usize, 8, 24, 100, 512, 700, 3000, 70_000];
        let mut live: Vec<(NonNull<u8>, Layout)> = Vec::new();
        for (i, &s) in sizes.iter().cycle().take(64).enumerate() {
            let l = Layout::from_size_align(s, 8).unwrap();
            let p = h.allocate(l).expect("memory");
            // SAFETY: a fresh block of `s` bytes.
            unsafe { p.as_ptr().write_bytes(i as u8, s) };
            live.push((p, l));
        }
        let mut boxed = Box::new(h); // moved
        boxed.check().unwrap();
        for &(p, l) in live.iter().step_by(2) {
            // SAFETY: a live block of this heap with its layout, freed once.
            unsafe { boxed.deallocate(p, l) };
        }
        let mut h = *boxed; // moved again
        h.check().unwrap();
        for (i, &s) in sizes.iter().cycle().take(64).enumerate() {
            let l = Layout::from_size_align(s, 8).unwrap();
            let p = h.allocate(l).expect("memory");
            // SAFETY: a fresh block of `s` bytes.
            unsafe { p.as_ptr().write_bytes(!(i as u8), s) };
            live.push((p, l));
        }
        for (i, &(p, l)) in live.iter().enumerate().skip(1).step_by(2).take(32) {
            // SAFETY: untouched since it was filled with `i`.
            assert_eq!(
                unsafe { *p.as_ptr() },
                i as u8,
                "a block changed while the heap moved"
            );
            let _ = l;
        }
        h.check().unwrap();
        for (i, (p, l)) in live.into_iter().enumerate() {
            if i < 64 && i % 2 == 0 {
                continue; // freed above
            }
            // SAFETY: live, freed once.
            unsafe { h.deallocate(p, l) };
        }
        h.check().unwrap();
        assert_eq!(h.stats().bytes_in_use, 0);
    }
}

/// A `PoolAlloc` used from the stack, moved, then used again (nothing may record its address).
#[test]
fn pool_alloc_moved_between_uses() {
    for a in [PoolAlloc::new(), PoolAlloc::new_locked()] {
        let l = Layout::from_size_align(48, 16).unwrap();
        // SAFETY: non-zero size.
        let p = unsafe { a.alloc(l) };
        assert!(!p.is_null());
        let b = Box::new(a);
        // SAFETY: a live block of the (moved) allocator, with its layout.
        unsafe { b.dealloc(p, l) };
        // SAFETY: as above.
        let q = unsafe { b.alloc(l) };
        assert!(!q.is_null());
        // SAFETY: as above.
        unsafe { b.dealloc(q, l) };
        b.check().unwrap();
    }
}

/// Extreme alignments: a block aligned as asked, or null; never a misaligned one.
#[test]
#[cfg_attr(miri, ignore = "Miri backs every mapping with real memory")]
fn huge_alignments() {
    let a = PoolAlloc::new_locked();
    for shift in [12u32, 16, 20, 24, 29] {
        let l = Layout::from_size_align(8, 1 << shift).unwrap();
        // SAFETY: non-zero size.
        let p = unsafe { a.alloc(l) };
        if !p.is_null() {
            assert_eq!(p as usize % l.align(), 0, "align {}", l.align());
            // SAFETY: the block holds 8 bytes.
            unsafe { p.write_bytes(1, 8) };
            // SAFETY: as returned.
            unsafe { a.dealloc(p, l) };
        }
    }
    a.check().unwrap();
    // With regions only, an alignment no region can meet is a null, not a panic.
    let e = PoolAlloc::empty_locked();
    static mut REGION: [u64; 2048] = [0; 2048];
    // SAFETY: the array is used by nothing else and outlives `e`'s blocks (freed below).
    unsafe { e.add_region(&raw mut REGION as *mut u8, 2048 * 8) };
    for shift in [12u32, 20, 29] {
        let l = Layout::from_size_align(8, 1 << shift).unwrap();
        // SAFETY: non-zero size.
        let p = unsafe { e.alloc(l) };
        if !p.is_null() {
            assert_eq!(p as usize % l.align(), 0);
            // SAFETY: as returned.
            unsafe { e.dealloc(p, l) };
        }
    }
    e.check().unwrap();
}

/// `realloc` to sizes no source can serve returns null and leaves the block intact.
#[test]
#[cfg_attr(miri, ignore = "Miri backs every mapping with real memory")]
fn realloc_to_huge_keeps_the_block() {
    for a in [PoolAlloc::new(), PoolAlloc::new_locked()] {
        for (size, align) in [(16usize, 8usize), (100_000, 8), (40, 64)] {
            let l = Layout::from_size_align(size, align).unwrap();
            // SAFETY: non-zero size.
            let p = unsafe { a.alloc(l) };
            assert!(!p.is_null());
            // SAFETY: `size` bytes.
            unsafe { p.write_bytes(0xA5, size) };
            for huge in [isize::MAX as usize - 2 * align, 1 << 60, (1 << 47) + 1] {
                // SAFETY: a live block of `l`; `huge` rounded up to `align` does not exceed isize::MAX.
                let q = unsafe { a.realloc(p, l, huge) };
                assert!(q.is_null(), "a {huge}-byte realloc succeeded");
            }
            // SAFETY: still live and untouched.
            assert!(unsafe { std::slice::from_raw_parts(p, size) }
                .iter()
                .all(|&b| b == 0xA5));
            // SAFETY: as above.
            unsafe { a.dealloc(p, l) };
        }
        a.check().unwrap();
    }
}

/// Regions too small for an arena, or for anything: errors or nulls, never UB; exhaustion and refill.
#[test]
fn tiny_regions_exhaust_cleanly() {
    for len in [0usize, 1, 64, 300, 1000, 1024, 4095, 4096, 5000, 9000] {
        let mut mem = vec![0u64; len.div_ceil(8) + 1];
        let mut h = Heap::empty(Config::SMALL);
        // SAFETY: `mem` outlives `h` (declared before it, dropped after) and is used by nothing else.
        let added = unsafe { h.add_region(mem.as_mut_ptr().cast::<u8>().add(3), len) };
        let mut got = Vec::new();
        for s in [8usize, 24, 200, 512, 600, 2000, 5000] {
            let l = Layout::from_size_align(s, 8).unwrap();
            while let Some(p) = h.allocate(l) {
                assert_eq!(p.as_ptr() as usize % 8, 0);
                got.push((p, l));
                assert!(got.len() < 100_000);
            }
        }
        assert!(added.is_ok() || got.is_empty(), "a refused region served");
        h.check().unwrap();
        for (p, l) in got.drain(..) {
            // SAFETY: live blocks of `h`, freed once.
            unsafe { h.deallocate(p, l) };
        }
        h.check().unwrap();
        assert_eq!(h.stats().bytes_in_use, 0);
        h.trim();
        drop(h);
        drop(mem);
    }
}

/// Geometries at the edge of what `Config::new` accepts, and what it must refuse (at run time here;
/// in a `static` they fail to compile).
#[test]
#[cfg_attr(miri, ignore = "Miri backs every mapping with real memory")]
fn configs_at_the_edges() {
    for (pool, arena) in [
        (0usize, 0usize),
        (1000, 4000),
        (512, 4096),
        (1024, 1000),
        (1024, 1536),
    ] {
        assert!(
            std::panic::catch_unwind(|| Config::new(pool, arena)).is_err(),
            "Config::new({pool}, {arena}) accepted"
        );
    }
    assert!(std::panic::catch_unwind(|| Config::new(1024, 1024 * (1 << 16) + 1024)).is_err());
    for c in [
        Config::new(1024, 1024),
        Config::new(1024, 1024 << 16),
        Config::new(1 << 20, 1 << 20),
    ] {
        let a = PoolAlloc::with_config_locked(c);
        for s in [1usize, 64, 512, 513, 1000, 4096, 1 << 20] {
            let l = Layout::from_size_align(s, 8).unwrap();
            // SAFETY: non-zero size.
            let p = unsafe { a.alloc(l) };
            assert!(!p.is_null());
            // SAFETY: `s` bytes.
            unsafe { p.write_bytes(3, s) };
            // SAFETY: as returned.
            let q = unsafe { a.realloc(p, l, s * 3) };
            assert!(!q.is_null());
            // SAFETY: live with the new size.
            unsafe { a.dealloc(q, Layout::from_size_align(s * 3, 8).unwrap()) };
        }
        a.check().unwrap();
    }
}

#[cfg(feature = "allocator-api2")]
mod api {
    use super::*;
    use allocator_api2::alloc::Allocator;

    /// `grow` and `shrink` may change the alignment (the trait allows it); zero sizes on either side.
    #[test]
    fn resizes_across_alignments_and_zero_sizes() {
        for a in [PoolAlloc::new(), PoolAlloc::new_locked()] {
            let aligns = [1usize, 8, 16, 64, 4096];
            let sizes = [0usize, 1, 16, 48, 512, 513, 5000, 100_000];
            for &oa in &aligns {
                for &na in &aligns {
                    for &os in &sizes {
                        for &ns in &sizes {
                            let old = Layout::from_size_align(os, oa).unwrap();
                            let new = Layout::from_size_align(ns, na).unwrap();
                            let p = a.allocate(old).unwrap().cast::<u8>();
                            // SAFETY: `os` bytes.
                            unsafe { p.as_ptr().write_bytes(0x5A, os) };
                            // SAFETY: a live block of `old`; grow needs new >= old, shrink new <= old.
                            let q = unsafe {
                                if ns >= os {
                                    a.grow_zeroed(p, old, new)
                                } else {
                                    a.shrink(p, old, new)
                                }
                            }
                            .unwrap();
                            assert_eq!(q.len(), ns);
                            let q = q.cast::<u8>();
                            assert_eq!(q.as_ptr() as usize % na, 0, "{old:?} -> {new:?}");
                            // SAFETY: `ns` bytes, the first min(os, ns) kept, the rest zeroed on grow.
                            let bytes = unsafe { std::slice::from_raw_parts(q.as_ptr(), ns) };
                            assert!(bytes[..os.min(ns)].iter().all(|&b| b == 0x5A));
                            assert!(bytes[os.min(ns)..].iter().all(|&b| b == 0));
                            // SAFETY: live with `new`.
                            unsafe { a.deallocate(q, new) };
                        }
                    }
                }
            }
            a.flush_thread_cache();
            a.check().unwrap();
            assert_eq!(a.stats().bytes_in_use, 0);
        }
    }
}

/// `realloc` between every pair of small and medium sizes, at every alignment, on a caching allocator:
/// afterwards every class must still hand out blocks aligned for any layout it serves.
#[test]
fn realloc_sweep_keeps_classes_aligned() {
    let a = PoolAlloc::new();
    let sizes = [
        1usize, 8, 16, 24, 48, 64, 100, 128, 256, 500, 512, 513, 1024, 2000, 4096, 8000,
    ];
    let aligns = [1usize, 2, 8, 16, 32, 64, 128, 256, 512];
    for &al in &aligns {
        for &s1 in &sizes {
            for &s2 in &sizes {
                let l1 = Layout::from_size_align(s1, al).unwrap();
                // SAFETY: non-zero size.
                let p = unsafe { a.alloc(l1) };
                assert!(!p.is_null());
                // SAFETY: `s1` bytes.
                unsafe { p.write_bytes(0x11, s1) };
                // SAFETY: live with `l1`; the new size is small.
                let q = unsafe { a.realloc(p, l1, s2) };
                assert!(!q.is_null());
                assert_eq!(q as usize % al, 0, "realloc {s1}->{s2} at align {al}");
                // SAFETY: min(s1, s2) bytes kept.
                assert!(unsafe { std::slice::from_raw_parts(q, s1.min(s2)) }
                    .iter()
                    .all(|&b| b == 0x11));
                // SAFETY: live with the new size.
                unsafe { a.dealloc(q, Layout::from_size_align(s2, al).unwrap()) };
            }
        }
    }
    for &al in &aligns {
        for &s in &sizes {
            let l = Layout::from_size_align(s, al).unwrap();
            // SAFETY: non-zero size.
            let ps: Vec<_> = (0..64).map(|_| unsafe { a.alloc(l) }).collect();
            for &p in &ps {
                assert!(!p.is_null() && p as usize % al == 0, "{l:?} got {p:p}");
            }
            for p in ps {
                // SAFETY: as allocated.
                unsafe { a.dealloc(p, l) };
            }
        }
    }
    a.flush_thread_cache();
    a.check().unwrap();
}

/// A `with_heap` closure that allocates through its own allocator would wait for the lock it runs under
/// forever; it must abort with a message instead. Run in a child process (this test binary again).
#[cfg(all(not(miri), not(feature = "critical-section")))]
#[test]
fn with_heap_closure_allocating_through_its_allocator_aborts() {
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};
    const NAME: &str = "with_heap_closure_allocating_through_its_allocator_aborts";
    if std::env::var_os("POOLGC_ATTACK_CHILD").is_some() {
        let a = PoolAlloc::new_locked();
        a.with_heap(|_| {
            let l = Layout::new::<u64>();
            // SAFETY: non-zero size; the block is leaked (the process aborts before).
            std::hint::black_box(unsafe { a.alloc(l) });
        });
        return;
    }
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", NAME, "--nocapture", "--test-threads=1"])
        .env("POOLGC_ATTACK_CHILD", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("with_heap's closure deadlocked allocating through its allocator");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(!status.success());
    assert!(err.contains("heap lock re-entered"), "stderr: {err}");
}
