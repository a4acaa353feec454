//! The `Heap` core on static regions: runs under Miri (`cargo +nightly miri test --test heap`).

mod common;

use common::{boundary_sizes, Region, Rng, Tracker};
use core::alloc::Layout;
use core::ptr::NonNull;
use poolgc::size_class::{block_size, class_of, effective_size, NUM_CLASSES, SMALL_MAX};
use poolgc::{BlockState, Config, Heap, RegionError};

/// Steps of the random-action test (Miri is ~1000× slower).
const STEPS: usize = if cfg!(miri) { 30 } else { 3000 };

/// A heap over a fresh region; keep the region alive (`let (mut h, _r) = ...`) while the heap is used.
fn heap_with(len: usize, config: Config) -> (Heap, Region) {
    let r = Region::new(len, 4096);
    let mut h = Heap::empty(config);
    // SAFETY: a fresh allocation, used by nothing else, outliving the heap's use in each test.
    unsafe { h.add_region(r.ptr(), len).unwrap() };
    (h, r)
}

#[test]
fn every_class_boundary_allocates_fills_and_frees() {
    let (mut h, _r) = heap_with(1 << 20, Config::new(16 * 1024, 256 * 1024));
    let mut t = Tracker::default();
    for (i, &size) in boundary_sizes().iter().enumerate() {
        let l = Layout::from_size_align(size, 1).unwrap();
        let p = h.allocate(l).unwrap_or_else(|| panic!("size {size}"));
        t.add(p, l, i as u8);
        t.check_heap(&h);
    }
    t.verify_all();
    let s = h.stats();
    assert_eq!(
        s.bytes_in_use,
        t.live
            .iter()
            .map(|&(_, l, _)| h.usable_size(l))
            .sum::<usize>()
    );
    // A full check() costs seconds under Miri: there, check every 48th free (and at the end).
    let every = if cfg!(miri) { 48 } else { 1 };
    for (i, (p, l, _)) in t.live.drain(..).enumerate() {
        unsafe { h.deallocate(p, l) };
        if i % every == 0 {
            h.check().unwrap();
        }
    }
    h.check().unwrap();
    assert_eq!(h.stats().bytes_in_use, 0);
    assert_eq!(h.stats().pools_in_use, 0);
}

#[test]
fn small_requests_land_in_their_class() {
    let (mut h, _r) = heap_with(1 << 20, Config::new(16 * 1024, 256 * 1024));
    for size in 1..=SMALL_MAX {
        let l = Layout::from_size_align(size, 1).unwrap();
        let p = h.allocate(l).unwrap();
        let c = class_of(effective_size(size, 1));
        assert_eq!(h.stats().classes[c].blocks_in_use, 1, "size {size}");
        assert_eq!(h.block_state(p.as_ptr()), BlockState::InUse);
        unsafe { h.deallocate(p, l) };
        assert_eq!(h.block_state(p.as_ptr()), BlockState::Free);
    }
    h.check().unwrap();
}

#[test]
fn alignments_from_1_to_65536() {
    let (mut h, _r) = heap_with(4 << 20, Config::new(16 * 1024, 256 * 1024));
    let mut t = Tracker::default();
    let mut align = 1;
    while align <= 65536 {
        for size in [0, 1, 24, align, 512, 513, 3000] {
            let l = Layout::from_size_align(size, align).unwrap();
            let p = h
                .allocate(l)
                .unwrap_or_else(|| panic!("size {size} align {align}"));
            t.add(p, l, align.trailing_zeros() as u8);
        }
        t.check_heap(&h);
        align *= 2;
    }
    t.verify_all();
    for (p, l, _) in t.live.drain(..) {
        unsafe { h.deallocate(p, l) };
    }
    h.check().unwrap();
    assert_eq!(h.stats().bytes_in_use, 0);
}

#[test]
fn over_aligned_small_requests_stay_in_pools() {
    let (mut h, _r) = heap_with(1 << 20, Config::new(16 * 1024, 256 * 1024));
    for align in [32, 64, 128, 256, 512] {
        let l = Layout::from_size_align(8, align).unwrap();
        let p = h.allocate(l).unwrap();
        assert_eq!(p.as_ptr() as usize % align, 0);
        assert_eq!(
            h.block_state(p.as_ptr()),
            BlockState::InUse,
            "align {align} not pooled"
        );
        unsafe { h.deallocate(p, l) };
    }
    h.check().unwrap();
}

#[test]
fn zeroed_memory_is_zero_even_when_recycled() {
    let (mut h, _r) = heap_with(256 * 1024, Config::SMALL);
    for size in [1, 16, 100, 512, 600, 5000] {
        let l = Layout::from_size_align(size, 8).unwrap();
        let ps: Vec<_> = (0..8).map(|_| h.allocate(l).unwrap()).collect();
        for p in &ps {
            unsafe { p.as_ptr().write_bytes(0xAA, size) };
        }
        for &p in &ps {
            unsafe { h.deallocate(p, l) };
        }
        for _ in 0..8 {
            let p = h.allocate_zeroed(l).unwrap();
            assert!(ps.contains(&p), "size {size}: a dirty block is reused");
            let s = unsafe { core::slice::from_raw_parts(p.as_ptr(), size) };
            assert!(s.iter().all(|&b| b == 0), "size {size}");
            unsafe { h.deallocate(p, l) };
        }
    }
    h.check().unwrap();
}

#[test]
fn a_recycled_pool_carves_again_in_address_order() {
    let (mut h, _r) = heap_with(64 * 1024, Config::SMALL);
    let l = Layout::from_size_align(64, 8).unwrap();
    let a: Vec<_> = (0..3).map(|_| h.allocate(l).unwrap()).collect();
    assert!(a
        .windows(2)
        .all(|w| w[1].as_ptr() as usize == w[0].as_ptr() as usize + 64));
    for &p in &a {
        unsafe { h.deallocate(p, l) };
    }
    // The pool is empty and back in its arena. Taken again for the same class, it carves from its first
    // block, not along its free list (which would hand out the last block freed, a[2], first).
    let b: Vec<_> = (0..2).map(|_| h.allocate(l).unwrap()).collect();
    assert_eq!(b, a[..2]);
    assert_eq!(h.block_state(a[2].as_ptr()), BlockState::NeverUsed);
    for p in b {
        unsafe { h.deallocate(p, l) };
    }
    h.check().unwrap();
}

#[test]
fn realloc_keeps_contents_across_classes_and_into_large() {
    let (mut h, _r) = heap_with(1 << 20, Config::new(4096, 64 * 1024));
    let l = Layout::from_size_align(1, 1).unwrap();
    let mut p = h.allocate(l).unwrap();
    let mut size = 1;
    unsafe { *p.as_ptr() = 0 };
    for new in [2, 15, 16, 17, 100, 512, 513, 4000, 70_000, 600, 100, 3, 1] {
        let old_l = Layout::from_size_align(size, 1).unwrap();
        p = unsafe { h.reallocate(p, old_l, new) }.unwrap();
        let keep = size.min(new);
        let s = unsafe { core::slice::from_raw_parts_mut(p.as_ptr(), new) };
        for (i, b) in s[..keep].iter().enumerate() {
            assert_eq!(*b, i as u8, "byte {i} after {size} → {new}");
        }
        for (i, b) in s.iter_mut().enumerate() {
            *b = i as u8;
        }
        size = new;
        h.check().unwrap();
    }
    unsafe { h.deallocate(p, Layout::from_size_align(size, 1).unwrap()) };
    h.check().unwrap();
    assert_eq!(h.stats().bytes_in_use, 0);
}

#[test]
fn realloc_in_place_within_a_class_and_on_small_shrinks() {
    let (mut h, _r) = heap_with(256 * 1024, Config::SMALL);
    let l = Layout::from_size_align(100, 8).unwrap();
    let p = h.allocate(l).unwrap();
    let bs = block_size(class_of(effective_size(100, 8)));
    // Growing inside the block's class: same address.
    let q = unsafe { h.reallocate(p, l, bs) }.unwrap();
    assert_eq!(p, q);
    // Shrinking by less than 25%: same address (pymalloc's rule).
    let l2 = Layout::from_size_align(bs, 8).unwrap();
    let r = unsafe { h.reallocate(q, l2, bs * 3 / 4 + 1) }.unwrap();
    assert_eq!(q, r);
    // Shrinking by 25% or more: moves to a smaller class.
    let l3 = Layout::from_size_align(bs * 3 / 4 + 1, 8).unwrap();
    let s = unsafe { h.reallocate(r, l3, 8) }.unwrap();
    assert_ne!(r, s);
    unsafe { h.deallocate(s, Layout::from_size_align(8, 8).unwrap()) };
    h.check().unwrap();
    assert_eq!(h.stats().bytes_in_use, 0);
}

/// Fills a heap with `layout` blocks until it refuses; returns them.
fn fill(h: &mut Heap, l: Layout) -> Vec<core::ptr::NonNull<u8>> {
    let mut v = Vec::new();
    while let Some(p) = h.allocate(l) {
        v.push(p);
    }
    v
}

/// Frees blocks of `layout` taken with [`fill`].
fn free_all(h: &mut Heap, v: Vec<core::ptr::NonNull<u8>>, l: Layout) {
    for p in v {
        // SAFETY: live blocks of this heap with this layout.
        unsafe { h.deallocate(p, l) };
    }
}

#[test]
fn exhaustion_returns_none_then_recovers_to_the_same_count() {
    for config in [
        Config::SMALL,
        Config::new(1024, 1024),
        Config::new(2048, 8192),
    ] {
        for size in [1, 32, 100, 512, 700, 3000] {
            let (mut h, _r) = heap_with(16 * 1024, config);
            let l = Layout::from_size_align(size, 8).unwrap();
            let first = fill(&mut h, l);
            assert!(
                !first.is_empty(),
                "16 KiB heap holds no {size}-byte block with {config:?}"
            );
            assert!(h.allocate(l).is_none());
            h.check().unwrap();
            for p in &first {
                unsafe { h.deallocate(*p, l) };
            }
            h.check().unwrap();
            assert_eq!(h.stats().bytes_in_use, 0);
            let second = fill(&mut h, l);
            assert_eq!(
                first.len(),
                second.len(),
                "refill of {size}-byte blocks with {config:?}"
            );
            for p in second {
                unsafe { h.deallocate(p, l) };
            }
            h.check().unwrap();
        }
    }
}

#[test]
fn small_heap_is_mostly_usable() {
    // A 16 KiB region with 1 KiB pools: at least 80% of it must be handed out as 32-byte blocks.
    let (mut h, _r) = heap_with(16 * 1024, Config::SMALL);
    let l = Layout::from_size_align(32, 8).unwrap();
    let n = fill(&mut h, l).len();
    assert!(
        n * 32 >= 16 * 1024 * 8 / 10,
        "only {n} 32-byte blocks from 16 KiB"
    );
}

#[test]
fn several_regions_serve_and_refuse_overlap() {
    let (ra, rb, tiny) = (
        Region::new(8 * 1024, 1024),
        Region::new(8 * 1024, 1024),
        Region::new(64, 8),
    );
    let (a, b) = (ra.ptr(), rb.ptr());
    let mut h = Heap::empty(Config::SMALL);
    unsafe {
        h.add_region(a, 8 * 1024).unwrap();
        h.add_region(b, 8 * 1024).unwrap();
        assert_eq!(h.add_region(a.add(100), 1000), Err(RegionError::Overlaps));
        assert_eq!(h.add_region(tiny.ptr(), 64), Err(RegionError::TooSmall));
    }
    let l = Layout::from_size_align(64, 8).unwrap();
    let v = fill(&mut h, l);
    let in_a = v
        .iter()
        .filter(|p| (p.as_ptr() as usize).wrapping_sub(a as usize) < 8 * 1024)
        .count();
    assert!(
        in_a > 0 && in_a < v.len(),
        "both regions used: {in_a} of {}",
        v.len()
    );
    assert_eq!(h.stats().regions, 2);
    h.check().unwrap();
}

#[test]
fn free_arenas_return_to_the_region_for_large_use() {
    let (mut h, _r) = heap_with(64 * 1024, Config::SMALL);
    let small = Layout::from_size_align(64, 8).unwrap();
    let v = fill(&mut h, small);
    let big = Layout::from_size_align(20 * 1024, 8).unwrap();
    assert!(h.allocate(big).is_none());
    for p in v {
        unsafe { h.deallocate(p, small) };
    }
    h.trim();
    assert_eq!(h.stats().arenas, 0);
    let p = h.allocate(big).expect("freed arenas serve a large block");
    unsafe { h.deallocate(p, big) };
    h.check().unwrap();
}

#[test]
fn random_actions_keep_every_invariant() {
    for (seed, config) in [
        (1, Config::SMALL),
        (2, Config::new(4096, 16 * 1024)),
        (3, Config::new(1024, 1024)),
    ] {
        let (mut h, _r) = heap_with(128 * 1024, config);
        let mut t = Tracker::default();
        let mut rng = Rng((seed as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        for step in 0..STEPS {
            let size = match rng.below(10) {
                0 => rng.below(4000),
                1 => 0,
                _ => rng.below(SMALL_MAX + 1),
            };
            let max_shift = if rng.below(8) == 0 { 10 } else { 5 };
            let align = 1 << rng.below(max_shift);
            match rng.below(4) {
                0 | 1 => {
                    let l = Layout::from_size_align(size, align).unwrap();
                    let zero = rng.below(2) == 0;
                    let p = if zero {
                        h.allocate_zeroed(l)
                    } else {
                        h.allocate(l)
                    };
                    if let Some(p) = p {
                        if zero {
                            let s = unsafe { core::slice::from_raw_parts(p.as_ptr(), size) };
                            assert!(
                                s.iter().all(|&b| b == 0),
                                "step {step}: zeroed block not zero"
                            );
                        }
                        t.add(p, l, step as u8);
                    }
                }
                2 if !t.live.is_empty() => {
                    let i = rng.below(t.live.len());
                    t.verify(i);
                    let (p, l, _) = t.live.swap_remove(i);
                    unsafe { h.deallocate(p, l) };
                }
                _ if !t.live.is_empty() => {
                    let i = rng.below(t.live.len());
                    t.verify(i);
                    let (p, l, fill) = t.live.swap_remove(i);
                    match unsafe { h.reallocate(p, l, size.max(1)) } {
                        Some(q) => {
                            let nl = Layout::from_size_align(size.max(1), l.align()).unwrap();
                            let keep = l.size().min(nl.size());
                            let s = unsafe { core::slice::from_raw_parts(q.as_ptr(), keep) };
                            assert!(
                                s.iter().all(|&b| b == fill),
                                "step {step}: realloc lost content"
                            );
                            t.add(q, nl, step as u8);
                        }
                        None => t.live.push((p, l, fill)),
                    }
                }
                _ => {}
            }
            t.check_heap(&h);
        }
        t.verify_all();
        for (p, l, _) in t.live.drain(..) {
            unsafe { h.deallocate(p, l) };
        }
        h.check().unwrap();
        assert_eq!(h.stats().bytes_in_use, 0);
    }
}

#[test]
fn stats_and_report_agree() {
    let (mut h, _r) = heap_with(256 * 1024, Config::SMALL);
    let l = Layout::from_size_align(48, 8).unwrap();
    let v: Vec<_> = (0..100).map(|_| h.allocate(l).unwrap()).collect();
    let big = Layout::from_size_align(2000, 8).unwrap();
    let b = h.allocate(big).unwrap();
    let s = h.stats();
    let c = class_of(48);
    assert_eq!(s.classes[c].blocks_in_use, 100);
    assert_eq!(s.large_blocks, 1);
    assert_eq!(s.bytes_in_use, 100 * 48 + 2000);
    assert_eq!(s.peak_bytes_in_use, s.bytes_in_use);
    assert_eq!(s.regions, 1);
    assert!(s.pools_in_use >= 100 * 48 / 1024);
    let mut r = String::new();
    s.write_report(&mut r).unwrap();
    assert!(r.contains(&format!("in {NUM_CLASSES} size classes")), "{r}");
    assert!(r.contains("# arenas allocated current"), "{r}");
    let row = format!("{c:5}  {:5}", 48);
    assert!(
        r.lines()
            .any(|line| line.starts_with(&row) && line.split_whitespace().nth(3) == Some("100")),
        "{r}"
    );
    for p in v {
        unsafe { h.deallocate(p, l) };
    }
    unsafe { h.deallocate(b, big) };
    let s = h.stats();
    assert_eq!(s.bytes_in_use, 0);
    assert_eq!(s.peak_bytes_in_use, 100 * 48 + 2000);
    assert_eq!(s.allocations, 101);
    assert_eq!(s.deallocations, 101);
}

#[test]
fn medium_requests_come_from_pools_when_the_pools_are_big_enough() {
    use poolgc::size_class::{medium_class_of, MEDIUM_SIZE, NUM_CLASSES};
    let (mut h, _r) = heap_with(4 << 20, Config::new(16 * 1024, 256 * 1024));
    let mut t = Tracker::default();
    let step = if cfg!(miri) { 499 } else { 61 };
    let mut sizes: Vec<usize> = (SMALL_MAX + 1..=3584).step_by(step).collect();
    let edges = MEDIUM_SIZE.iter().filter(|&&s| s <= 3584);
    let every = if cfg!(miri) { 3 } else { 1 };
    sizes.extend(edges.step_by(every).flat_map(|&s| [s - 1, s, s + 1]));
    for (i, &size) in sizes.iter().enumerate() {
        let l = Layout::from_size_align(size, 16).unwrap();
        let p = h.allocate(l).unwrap();
        assert_eq!(h.is_pooled(l), size <= 3584, "size {size}");
        if size <= 3584 {
            let c = medium_class_of(size);
            assert!(c >= NUM_CLASSES);
            assert!(h.stats().classes[c].blocks_in_use >= 1);
            assert_eq!(h.usable_size(l), block_size(c));
        }
        t.add(p, l, i as u8);
    }
    t.verify_all();
    t.check_heap(&h);
    // Over-aligned and larger requests take the large path.
    assert!(!h.is_pooled(Layout::from_size_align(600, 32).unwrap()));
    assert!(!h.is_pooled(Layout::from_size_align(5000, 8).unwrap()));
    // 1 KiB pools hold no medium class.
    let (small, _small_region) = heap_with(64 * 1024, Config::SMALL);
    assert!(!small.is_pooled(Layout::from_size_align(513, 8).unwrap()));
    for (p, l, _) in t.live.drain(..) {
        unsafe { h.deallocate(p, l) };
    }
    h.check().unwrap();
    assert_eq!(h.stats().bytes_in_use, 0);
}

/// Large region blocks freed into the size-class bins are never lost: after filling the region with one
/// size and freeing everything, a different size (another bin) fills it again to the same bytes within
/// the rounding, and the first size refills to exactly the same count; `check()` after every step.
#[test]
fn region_large_bins_exhaust_and_refill() {
    let (mut h, _r) = heap_with(512 * 1024, Config::SMALL);
    // A full check() scans the heap: after every step natively, every 64th and at the end under Miri.
    let every = if cfg!(miri) { 64 } else { 1 };
    let fill = |h: &mut Heap, l: Layout| {
        let mut v = Vec::new();
        while let Some(p) = h.allocate(l) {
            v.push(p);
            if v.len() % every == 0 {
                h.check().unwrap();
            }
        }
        h.check().unwrap();
        v
    };
    let free = |h: &mut Heap, v: Vec<NonNull<u8>>, l: Layout| {
        for (i, p) in v.into_iter().enumerate() {
            // SAFETY: live blocks of this heap with this layout.
            unsafe { h.deallocate(p, l) };
            if i % every == 0 {
                h.check().unwrap();
            }
        }
        h.check().unwrap();
    };
    let a = Layout::from_size_align(3000, 8).unwrap();
    let b = Layout::from_size_align(5000, 16).unwrap();
    let c = Layout::from_size_align(40_000, 8).unwrap();
    let n = fill(&mut h, a);
    let count_a = n.len();
    assert!(count_a > 100, "{count_a}");
    free(&mut h, n, a);
    for round in 0..if cfg!(miri) { 1 } else { 3 } {
        // Other sizes must find the room held by the first size's bin.
        let m = fill(&mut h, b);
        assert!(
            m.len() * 5000 > count_a * 3000 * 7 / 10,
            "round {round}: {} blocks of 5000",
            m.len()
        );
        free(&mut h, m, b);
        let m = fill(&mut h, c);
        assert!(
            m.len() * 40_000 > count_a * 3000 * 6 / 10,
            "round {round}: {} blocks of 40000",
            m.len()
        );
        free(&mut h, m, c);
        // Mixed: every other block of the first size, then the gaps with the second.
        let n = fill(&mut h, a);
        assert_eq!(n.len(), count_a, "round {round}: refill to the same count");
        let (keep, gone): (Vec<_>, Vec<_>) =
            n.into_iter().enumerate().partition(|(i, _)| i % 2 == 0);
        free(&mut h, gone.into_iter().map(|(_, p)| p).collect(), a);
        let m = fill(&mut h, b);
        free(&mut h, m, b);
        free(&mut h, keep.into_iter().map(|(_, p)| p).collect(), a);
    }
    assert_eq!(h.stats().bytes_in_use, 0);
    h.trim();
    h.check().unwrap();
    // Everything back in the first-fit allocator: one block of nearly the whole region fits again.
    let big = Layout::from_size_align(400 * 1024, 8).unwrap();
    let p = h.allocate(big).expect("the region coalesced again");
    // SAFETY: live block with this layout.
    unsafe { h.deallocate(p, big) };
    h.check().unwrap();
}

/// Pools never fail for want of room that freed large blocks hold on the region bins: after large blocks
/// filled the region and were freed, small blocks fill it to the same count as on a fresh heap.
#[test]
fn pool_growth_takes_back_the_room_of_binned_large_blocks() {
    let small = Layout::from_size_align(16, 8).unwrap();
    let count_small = |h: &mut Heap| {
        let v = fill(h, small);
        let n = v.len();
        free_all(h, v, small);
        h.check().unwrap();
        n
    };
    let (mut fresh, _r1) = heap_with(64 * 1024, Config::SMALL);
    let expected = count_small(&mut fresh);
    let (mut h, _r2) = heap_with(64 * 1024, Config::SMALL);
    let large = Layout::from_size_align(2000, 8).unwrap();
    let v = fill(&mut h, large);
    assert!(v.len() > 10, "{} large blocks", v.len());
    free_all(&mut h, v, large);
    h.check().unwrap();
    assert_eq!(count_small(&mut h), expected);
}

/// A large request fails only when no region can hold it, however many blocks had to be allocated at their
/// exact size because their bin's rounded size no longer fitted: here each of nine regions can hold one
/// 9,000-byte block but not its bin's 9,216, and all nine are served, freed and served again.
#[test]
fn exact_size_region_blocks_have_no_limit() {
    const REGIONS: usize = 9;
    let len = 9256;
    let regions: Vec<Region> = (0..REGIONS).map(|_| Region::new(len, 4096)).collect();
    let mut h = Heap::empty(Config::SMALL);
    for r in &regions {
        // SAFETY: fresh allocations, used by nothing else, outliving the heap's use.
        unsafe { h.add_region(r.ptr(), len).unwrap() };
    }
    let l = Layout::from_size_align(9000, 8).unwrap();
    for round in 0..2 {
        let v: Vec<_> = (0..REGIONS)
            .map(|i| {
                h.allocate(l)
                    .unwrap_or_else(|| panic!("round {round}: block {i} refused"))
            })
            .collect();
        assert!(
            h.allocate(l).is_none(),
            "round {round}: a tenth block fitted"
        );
        h.check().unwrap();
        for p in v {
            // SAFETY: live blocks of this heap with this layout.
            unsafe { h.deallocate(p, l) };
        }
        h.check().unwrap();
    }
    // Exact-size blocks went back whole: the regions coalesced, and a nearly region-sized block fits.
    h.trim();
    let big = Layout::from_size_align(9000, 16).unwrap();
    let w: Vec<_> = (0..REGIONS).map(|_| h.allocate(big).unwrap()).collect();
    for p in w {
        // SAFETY: live blocks of this heap with this layout.
        unsafe { h.deallocate(p, big) };
    }
    h.check().unwrap();
}

/// A large region block stays in place when resized within its bin (it was carved at the bin's size) and
/// moves when the new size names another bin or the block was carved at its exact size.
#[test]
fn large_region_blocks_resize_in_place_within_their_bin() {
    let (mut h, _r) = heap_with(64 * 1024, Config::SMALL);
    let l = |size| Layout::from_size_align(size, 8).unwrap();
    // 600 B and 640 B share the bin of blocks of 640 B (eight bins per doubling from 512).
    let p = h.allocate(l(600)).unwrap();
    unsafe { p.as_ptr().write_bytes(7, 600) };
    let q = unsafe { h.reallocate(p, l(600), 640) }.unwrap();
    assert_eq!(q, p, "grown within its bin: in place");
    let q = unsafe { h.reallocate(q, l(640), 577) }.unwrap();
    assert_eq!(q, p, "shrunk within its bin: in place");
    assert_eq!(h.stats().large_bytes, 577);
    h.check().unwrap();
    let m = unsafe { h.reallocate(q, l(577), 700) }.unwrap();
    assert_ne!(m, p, "another bin: moved");
    assert!(unsafe { core::slice::from_raw_parts(m.as_ptr(), 577) }
        .iter()
        .all(|&b| b == 7));
    unsafe { h.deallocate(m, l(700)) };
    h.check().unwrap();
    assert_eq!(h.stats().bytes_in_use, 0);
    // A block carved at its exact size (its bin's 9,216 B do not fit) cannot grow even within its bin,
    // and there is no room to move it: the resize fails and leaves it as it was.
    let (mut h, _r) = heap_with(9256, Config::SMALL);
    let p = h.allocate(l(9000)).unwrap();
    unsafe { p.as_ptr().write_bytes(3, 9000) };
    assert!(unsafe { h.reallocate(p, l(9000), 9100) }.is_none());
    h.check().unwrap();
    assert!(unsafe { core::slice::from_raw_parts(p.as_ptr(), 9000) }
        .iter()
        .all(|&b| b == 3));
    unsafe { h.deallocate(p, l(9000)) };
    h.check().unwrap();
}
