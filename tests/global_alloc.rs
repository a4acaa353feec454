//! The `GlobalAlloc` contract, through `PoolAlloc` values (not the process's global allocator).

mod common;

use common::{boundary_sizes, Region, Rng, Tracker};
use core::alloc::{GlobalAlloc, Layout};
use core::ptr::NonNull;
use poolgc::{Config, PoolAlloc, RegionError};

/// An allocator over a fresh region; keep the region alive (`let (a, _r) = ...`) while it is used.
fn static_alloc(len: usize, config: Config) -> (PoolAlloc, Region) {
    let r = Region::new(len, 4096);
    let a = PoolAlloc::empty_with_config_locked(config);
    // SAFETY: a fresh allocation, used by nothing else, outliving the allocator's use.
    unsafe { a.add_region(r.ptr(), len) };
    (a, r)
}

fn alloc(a: &PoolAlloc, l: Layout) -> Option<NonNull<u8>> {
    NonNull::new(unsafe { a.alloc(l) })
}

#[test]
fn boundaries_and_alignments_through_global_alloc() {
    let (a, _r) = static_alloc(8 << 20, Config::new(16 * 1024, 256 * 1024));
    let mut t = Tracker::default();
    let mut align = 1;
    while align <= 65536 {
        for &size in boundary_sizes()
            .iter()
            .step_by(if cfg!(miri) { 7 } else { 1 })
        {
            let l = Layout::from_size_align(size, align).unwrap();
            let p = alloc(&a, l).unwrap_or_else(|| panic!("size {size} align {align}"));
            t.add(p, l, size as u8);
        }
        t.verify_all();
        a.with_heap(|h| t.check_heap(h));
        for (p, l, _) in t.live.drain(..) {
            unsafe { a.dealloc(p.as_ptr(), l) };
        }
        align *= if cfg!(miri) { 16 } else { 2 };
    }
    a.check().unwrap();
    assert_eq!(a.stats().bytes_in_use, 0);
}

#[test]
fn alloc_zeroed_is_zero_and_realloc_keeps_contents() {
    let (a, _r) = static_alloc(1 << 20, Config::SMALL);
    for size in [0, 1, 31, 32, 511, 512, 513, 9000] {
        let l = Layout::from_size_align(size, 16).unwrap();
        let junk = alloc(&a, l).unwrap();
        unsafe { junk.as_ptr().write_bytes(0x5A, size) };
        unsafe { a.dealloc(junk.as_ptr(), l) };
        let p = unsafe { a.alloc_zeroed(l) };
        assert_eq!(p, junk.as_ptr(), "size {size}: the dirty block is reused");
        assert!(
            unsafe { core::slice::from_raw_parts(p, size) }
                .iter()
                .all(|&b| b == 0),
            "size {size}"
        );
        for (i, b) in unsafe { core::slice::from_raw_parts_mut(p, size) }
            .iter_mut()
            .enumerate()
        {
            *b = i as u8;
        }
        let mut q = p;
        let mut cur = size;
        for new in [size + 1, size * 2 + 600, 3, 1] {
            q = unsafe { a.realloc(q, Layout::from_size_align(cur, 16).unwrap(), new) };
            assert!(!q.is_null());
            let keep = cur.min(new).min(size);
            let s = unsafe { core::slice::from_raw_parts(q, keep) };
            assert!(
                s.iter().enumerate().all(|(i, &b)| b == i as u8),
                "{size}: {cur} → {new}"
            );
            cur = new;
        }
        unsafe { a.dealloc(q, Layout::from_size_align(cur, 16).unwrap()) };
    }
    a.check().unwrap();
    assert_eq!(a.stats().bytes_in_use, 0);
}

#[test]
fn exhaustion_gives_null_never_panics_and_recovers() {
    let (a, _r) = static_alloc(16 * 1024, Config::SMALL);
    let mut rng = Rng(7);
    let mut live = Vec::new();
    // Mixed sizes until the heap says no, many times in a row.
    let mut refusals = 0;
    while refusals < 50 {
        let l = Layout::from_size_align(1 + rng.below(2000), 8).unwrap();
        match alloc(&a, l) {
            Some(p) => live.push((p, l)),
            None => refusals += 1,
        }
    }
    a.check().unwrap();
    for (p, l) in live.drain(..) {
        unsafe { a.dealloc(p.as_ptr(), l) };
    }
    let l = Layout::from_size_align(24, 8).unwrap();
    let count = |a: &PoolAlloc, live: &mut Vec<NonNull<u8>>| {
        while let Some(p) = alloc(a, l) {
            live.push(p);
        }
        live.len()
    };
    let mut small = Vec::new();
    let n1 = count(&a, &mut small);
    for p in small.drain(..) {
        unsafe { a.dealloc(p.as_ptr(), l) };
    }
    let n2 = count(&a, &mut small);
    assert_eq!(n1, n2);
    assert!(n1 > 300, "{n1}");
    // A request larger than the whole heap, and one so large its size overflows when rounded.
    assert!(alloc(&a, Layout::from_size_align(1 << 20, 8).unwrap()).is_none());
    assert!(alloc(
        &a,
        Layout::from_size_align(isize::MAX as usize - 4096, 4096).unwrap()
    )
    .is_none());
    a.check().unwrap();
}

#[test]
fn try_add_region_reports_errors() {
    let region = Region::new(4096, 64);
    let a = PoolAlloc::empty_locked();
    assert!(
        alloc(&a, Layout::new::<u64>()).is_none(),
        "an empty allocator has nothing to give"
    );
    let r = region.ptr();
    assert_eq!(
        unsafe { a.try_add_region(r, 16) },
        Err(RegionError::TooSmall)
    );
    unsafe { a.try_add_region(r, 4096) }.unwrap();
    assert_eq!(
        unsafe { a.try_add_region(r.add(8), 100) },
        Err(RegionError::Overlaps)
    );
    assert!(alloc(&a, Layout::new::<u64>()).is_some());
}

#[test]
fn two_threads_with_cross_thread_frees() {
    use std::sync::mpsc;
    let (owned, _r) = static_alloc(4 << 20, Config::new(4096, 64 * 1024));
    let a = &owned;
    let rounds = if cfg!(miri) { 50 } else { 20_000 };
    struct Block(*mut u8, Layout);
    // SAFETY: the block is owned by whoever holds the message; the allocator is shared and thread-safe.
    unsafe impl Send for Block {}
    let (tx, rx) = mpsc::sync_channel::<Block>(256);
    std::thread::scope(|s| {
        let producer = s.spawn(move || {
            let mut rng = Rng(11);
            for i in 0..rounds {
                let l = Layout::from_size_align(1 + rng.below(700), 8).unwrap();
                let p = alloc(a, l).expect("4 MiB is plenty");
                unsafe { p.as_ptr().write_bytes(i as u8, l.size()) };
                tx.send(Block(p.as_ptr(), l)).unwrap();
            }
        });
        let consumer = s.spawn(move || {
            let mut own = Vec::new();
            let mut rng = Rng(13);
            for (i, Block(p, l)) in rx.into_iter().enumerate() {
                assert!(unsafe { core::slice::from_raw_parts(p, l.size()) }
                    .iter()
                    .all(|&b| b == i as u8));
                unsafe { a.dealloc(p, l) };
                let ol = Layout::from_size_align(1 + rng.below(300), 8).unwrap();
                own.push((alloc(a, ol).unwrap(), ol));
                if own.len() > 64 {
                    let (q, ql) = own.swap_remove(rng.below(own.len()));
                    unsafe { a.dealloc(q.as_ptr(), ql) };
                }
            }
            for (q, ql) in own {
                unsafe { a.dealloc(q.as_ptr(), ql) };
            }
        });
        producer.join().unwrap();
        consumer.join().unwrap();
    });
    a.check().unwrap();
    assert_eq!(a.stats().bytes_in_use, 0);
}

#[cfg(all(feature = "os", unix, not(miri)))]
mod hosted {
    use super::*;

    #[test]
    fn grows_from_the_os_and_gives_arenas_back() {
        let a = PoolAlloc::new_locked();
        a.with_heap(|h| h.set_spare_decay_ms(0));
        let l = Layout::from_size_align(64, 8).unwrap();
        let v: Vec<_> = (0..100_000).map(|_| alloc(&a, l).unwrap()).collect();
        let s = a.stats();
        assert!(s.arenas >= 6, "{} arenas for 6.4 MB", s.arenas);
        assert!(s.bytes_reserved >= s.arenas * 1024 * 1024);
        for p in v {
            unsafe { a.dealloc(p.as_ptr(), l) };
        }
        let s = a.stats();
        assert_eq!(s.arenas, 4, "with no decay time all but 4 spares go back");
        assert_eq!(s.spare_arenas, 4);
        assert_eq!(s.arenas_reclaimed + 4, s.arenas_allocated_total);
        assert!(a.trim() > 0);
        assert_eq!(a.stats().bytes_reserved, 0);
        a.check().unwrap();
    }

    #[test]
    fn decay_releases_spares_between_arenas_still_in_use() {
        let a = PoolAlloc::new_locked();
        a.with_heap(|h| h.set_spare_decay_ms(0));
        let l = Layout::from_size_align(64, 8).unwrap();
        // ~12 arenas of 64-byte blocks, carved in address order arena after arena.
        let v: Vec<_> = (0..200_000).map(|_| alloc(&a, l).unwrap()).collect();
        let held = a.stats().arenas;
        assert!(held >= 12, "{held}");
        // Keep one block in every other 1 MiB stretch of the blocks, free the rest: wholly free arenas
        // then alternate with arenas in use on the arena list, and each release walks past the latter.
        let per_arena = 1024 * 1024 / 64;
        let mut kept = Vec::new();
        for (i, p) in v.into_iter().enumerate() {
            if i % (2 * per_arena) == per_arena / 2 {
                kept.push(p);
            } else {
                unsafe { a.dealloc(p.as_ptr(), l) };
            }
        }
        a.check().unwrap();
        let s = a.stats();
        assert_eq!(
            s.spare_arenas, 4,
            "with no decay time all but 4 spares go back"
        );
        assert!(
            s.arenas - 4 <= kept.len() + 1 && s.arenas - 4 >= kept.len() / 2,
            "{} arenas in use for {} kept blocks",
            s.arenas - 4,
            kept.len()
        );
        assert_eq!(s.arenas_reclaimed + s.arenas, s.arenas_allocated_total);
        for p in kept {
            unsafe { a.dealloc(p.as_ptr(), l) };
        }
        a.check().unwrap();
        assert_eq!(a.stats().arenas, 4);
    }

    /// Allocates and frees a 300-byte block (a class nothing else here uses): a pool taken and given back,
    /// the pool-level event at which the heap looks at the age of its spares. The caller keeps a live
    /// block of another class in an arena with free pools, so that the pool comes from there: taking a
    /// spare back into use would restart the spares' clock instead.
    fn pool_event(a: &PoolAlloc) {
        let l = Layout::from_size_align(300, 8).unwrap();
        let p = alloc(a, l).unwrap();
        unsafe { a.dealloc(p.as_ptr(), l) };
    }

    #[test]
    fn spare_arenas_are_reused_decay_and_are_trimmed() {
        let a = PoolAlloc::new_locked();
        assert_eq!(a.with_heap(|h| h.spare_decay_ms()), 1000, "the default");
        // Never decay while the rounds run, so that nothing depends on how fast this machine is.
        a.with_heap(|h| h.set_spare_decay_ms(u32::MAX));
        let kl = Layout::from_size_align(200, 8).unwrap();
        let keep = alloc(&a, kl).unwrap();
        let l = Layout::from_size_align(64, 8).unwrap();
        // ~25 MB of 64-byte blocks: about 26 arenas.
        let n = 400_000;
        let mut total = 0;
        for round in 0..3 {
            let v: Vec<_> = (0..n).map(|_| alloc(&a, l).unwrap()).collect();
            a.check().unwrap();
            let s = a.stats();
            if round == 0 {
                total = s.arenas_allocated_total;
            } else {
                assert_eq!(
                    s.arenas_allocated_total, total,
                    "round {round}: a rebuild reuses the spares and maps nothing new"
                );
            }
            for p in v {
                unsafe { a.dealloc(p.as_ptr(), l) };
            }
            a.check().unwrap();
            let s = a.stats();
            assert!(s.arenas_highwater >= 20, "{}", s.arenas_highwater);
            assert_eq!(
                (s.arenas, s.spare_arenas),
                (s.arenas_highwater, s.arenas_highwater - 1),
                "round {round}: every freed arena kept as a spare (one holds `keep`)"
            );
            assert_eq!(s.pools_in_use, 1);
        }
        pool_event(&a);
        assert_eq!(a.stats().arenas, total, "not yet decayed: kept");
        a.with_heap(|h| h.set_spare_decay_ms(20));
        std::thread::sleep(std::time::Duration::from_millis(50));
        pool_event(&a);
        // The period that ends here began when round 2's frees took the spares past 4 (the rounds took
        // them all back into use, which ended the earlier periods): only the fifth spare, held all
        // through it, goes back now.
        assert_eq!(
            a.stats().arenas,
            total - 1,
            "one period: what it did not use"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
        pool_event(&a);
        let s = a.stats();
        assert_eq!(
            (s.arenas, s.spare_arenas),
            (5, 4),
            "a whole period unused: all spares but 4 go back"
        );
        assert_eq!(s.arenas_reclaimed, total - 5);
        a.check().unwrap();
        // The next build maps only what the 4 spares and `keep`'s arena cannot hold.
        let v: Vec<_> = (0..n).map(|_| alloc(&a, l).unwrap()).collect();
        let s = a.stats();
        assert_eq!(s.arenas_allocated_total, total + s.arenas - 5);
        for p in v {
            unsafe { a.dealloc(p.as_ptr(), l) };
        }
        unsafe { a.dealloc(keep.as_ptr(), kl) };
        let s = a.stats();
        assert_eq!(
            a.trim(),
            s.arenas * 1024 * 1024,
            "trim releases every spare"
        );
        let s = a.stats();
        assert_eq!((s.arenas, s.bytes_reserved), (0, 0));
        a.check().unwrap();
    }

    #[test]
    fn spares_decay_despite_steady_reuse_of_a_few() {
        let a = PoolAlloc::new_locked();
        a.with_heap(|h| h.set_spare_decay_ms(u32::MAX));
        let l = Layout::from_size_align(64, 8).unwrap();
        // ~25 MB of 64-byte blocks (about 26 arenas), all spare once freed.
        let v: Vec<_> = (0..400_000).map(|_| alloc(&a, l).unwrap()).collect();
        for p in v {
            unsafe { a.dealloc(p.as_ptr(), l) };
        }
        let held = a.stats().spare_arenas;
        assert!(held >= 20, "{held}");
        // Every 5 ms two arenas' worth of blocks are built and dropped, taking spares back into use: with
        // a 20 ms period, those stay and the rest, unused all through a period, go back.
        a.with_heap(|h| h.set_spare_decay_ms(20));
        for _ in 0..40 {
            std::thread::sleep(std::time::Duration::from_millis(5));
            let v: Vec<_> = (0..30_000).map(|_| alloc(&a, l).unwrap()).collect();
            for p in v {
                unsafe { a.dealloc(p.as_ptr(), l) };
            }
        }
        let s = a.stats();
        assert!(
            s.spare_arenas <= 4 + 3,
            "{} spares of {held} left after 200 ms of steady reuse of two",
            s.spare_arenas
        );
        a.check().unwrap();
    }

    #[test]
    fn large_blocks_are_mapped_and_remapped() {
        let a = PoolAlloc::new_locked();
        let l = Layout::from_size_align(100_000, 8).unwrap();
        let p = unsafe { a.alloc_zeroed(l) };
        assert!(unsafe { core::slice::from_raw_parts(p, 100_000) }
            .iter()
            .all(|&b| b == 0));
        unsafe { p.write_bytes(7, 100_000) };
        let q = unsafe { a.realloc(p, l, 50 << 20) };
        assert!(unsafe { core::slice::from_raw_parts(q, 100_000) }
            .iter()
            .all(|&b| b == 7));
        let s = a.stats();
        assert!(s.bytes_reserved >= 50 << 20);
        // Grown by `mremap`: not copied into a new mapping (which would leave the old one cached).
        #[cfg(target_os = "linux")]
        assert_eq!((s.bytes_reserved, s.cached_large_bytes), (50 << 20, 0));
        let big = Layout::from_size_align(50 << 20, 8).unwrap();
        let r = unsafe { a.realloc(q, big, 100) };
        assert!(unsafe { core::slice::from_raw_parts(r, 100) }
            .iter()
            .all(|&b| b == 7));
        unsafe { a.dealloc(r, Layout::from_size_align(100, 8).unwrap()) };
        assert_eq!(a.stats().large_blocks, 0);
        a.trim();
        assert_eq!(a.stats().bytes_reserved, 0);
    }

    #[test]
    fn huge_alignment_from_the_os() {
        let a = PoolAlloc::new_locked();
        for align in [4096, 1 << 16, 1 << 21] {
            let l = Layout::from_size_align(10, align).unwrap();
            let p = alloc(&a, l).unwrap();
            assert_eq!(p.as_ptr() as usize % align, 0);
            unsafe { a.dealloc(p.as_ptr(), l) };
        }
        // Small freed mappings stay in the large-block cache until `trim`.
        a.trim();
        assert_eq!(a.stats().bytes_reserved, 0);
    }
}
