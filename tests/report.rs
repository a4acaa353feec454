//! The report (`sys._debugmallocstats()`'s shape): every byte of every arena is accounted for, the pool
//! walk agrees with the statistics, and the heap map draws a cell per pool. Also `gc::report`.

mod common;

use common::{Region, Rng};
use core::alloc::Layout;
use poolgc::size_class::block_size;
use poolgc::{Config, Heap, PoolInfo};

/// A heap over a region (arenas of varied sizes: the last one is short) with blocks of many classes,
/// some freed again.
fn busy_heap(r: &Region, len: usize) -> (Heap, Vec<(core::ptr::NonNull<u8>, Layout)>) {
    let mut h = Heap::empty(Config::new(4096, 64 * 1024));
    // SAFETY: a fresh allocation, used by nothing else, outliving the heap's use in each test.
    unsafe { h.add_region(r.ptr(), len).unwrap() };
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut live = Vec::new();
    let steps = if cfg!(miri) { 200 } else { 3000 };
    for _ in 0..steps {
        if live.is_empty() || rng.below(3) != 0 {
            let size = 1 + rng.below(2000);
            let align = 1 << rng.below(7);
            let l = Layout::from_size_align(size, align).unwrap();
            if let Some(p) = h.allocate(l) {
                live.push((p, l));
            }
        } else {
            let (p, l) = live.swap_remove(rng.below(live.len()));
            // SAFETY: allocated above with `l`, freed once.
            unsafe { h.deallocate(p, l) };
        }
    }
    (h, live)
}

#[test]
fn the_report_adds_up_to_the_arenas() {
    let len = 300 * 1024; // four 64 KiB arenas and a short one
    let r = Region::new(len, 4096);
    let (mut h, live) = busy_heap(&r, len);
    let s = h.stats();
    assert!(s.arenas >= if cfg!(miri) { 1 } else { 2 } && s.pools_in_use > 0);
    // Every arena's bytes, summed from the pool walk, independently of the statistics.
    let mut arena_bytes = 0;
    let mut pools_in_use = 0;
    let (mut headers, mut align, mut quant) = (0, 0, 0);
    let (mut first_header, mut other_header) = (0, 0);
    h.visit_pools(|p: &PoolInfo| {
        if p.index == 0 {
            arena_bytes += p.arena_pools * 4096;
        }
        if let Some(c) = p.class {
            pools_in_use += 1;
            headers += p.header_bytes;
            align += p.alignment_bytes;
            quant += p.quantization_bytes;
            if p.index == 0 {
                first_header = p.header_bytes;
            } else {
                other_header = p.header_bytes;
            }
            assert_eq!(p.block_size, block_size(c));
            assert_eq!(
                p.header_bytes
                    + p.alignment_bytes
                    + p.capacity * p.block_size
                    + p.quantization_bytes,
                4096,
                "every byte of a pool in use is in one part: {p:?}"
            );
            assert!(p.quantization_bytes < p.block_size && p.in_use <= p.capacity);
        }
    });
    assert_eq!(s.arena_bytes, arena_bytes);
    assert_eq!(s.pools_in_use, pools_in_use);
    assert_eq!(
        (s.pool_header_bytes, s.alignment_bytes, s.quantization_bytes),
        (headers, align, quant),
        "the walk and the statistics agree"
    );
    assert!(
        first_header > other_header && other_header > 0,
        "pool 0 also holds the arena header"
    );
    assert_eq!(
        s.accounted_bytes(),
        arena_bytes,
        "the report's parts add up to the arenas"
    );
    assert!(s.quantization_bytes > 0 && s.alignment_bytes > 0 && s.pool_header_bytes > 0);
    let mut text = String::new();
    s.write_report(&mut text).unwrap();
    let total = text.lines().find(|l| l.starts_with("Total")).unwrap();
    let n: usize = total
        .split('=')
        .nth(1)
        .unwrap()
        .trim()
        .replace(',', "")
        .parse()
        .unwrap();
    assert_eq!(n, arena_bytes, "{text}");
    for label in [
        "# bytes lost to quantization",
        "# bytes lost to alignment",
        "# bytes lost to pool headers",
    ] {
        assert!(text.contains(label), "{label} missing:\n{text}");
    }
    for (p, l) in live {
        // SAFETY: allocated by `busy_heap` with `l`, freed once.
        unsafe { h.deallocate(p, l) };
    }
    let s = h.stats();
    assert_eq!((s.pools_in_use, s.accounted_bytes()), (0, s.arena_bytes));
}

#[cfg(all(feature = "os", unix))]
#[test]
fn the_heap_map_draws_a_cell_per_pool() {
    use poolgc::PoolAlloc;
    let a = PoolAlloc::with_config_locked(Config::new(4096, 64 * 1024));
    let mut kept = Vec::new();
    for size in [8usize, 24, 24, 100, 100, 100, 700, 3000] {
        let l = Layout::from_size_align(size, 8).unwrap();
        // SAFETY: non-zero size.
        kept.push((unsafe { core::alloc::GlobalAlloc::alloc(&a, l) }, l));
    }
    let (mut pools, mut used) = (0, 0);
    a.visit_pools(|p| {
        pools += 1;
        used += usize::from(p.class.is_some());
    });
    let mut svg = String::new();
    a.write_heap_svg(&mut svg).unwrap();
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    assert_eq!(
        svg.matches("<title>arena ").count(),
        pools,
        "one cell per pool"
    );
    assert_eq!(svg.matches(": empty</title>").count(), pools - used);
    let classes = a.stats().classes.iter().filter(|c| c.pools > 0).count();
    assert!(classes >= 3);
    assert_eq!(used, classes, "one pool per class used here");
    assert!(
        svg.contains("3/"),
        "the 100-byte pool holds 3 blocks:\n{svg}"
    );
    for (p, l) in kept {
        // SAFETY: allocated above with `l`.
        unsafe { core::alloc::GlobalAlloc::dealloc(&a, p, l) };
    }
}

#[cfg(all(feature = "gc", feature = "os", unix))]
#[test]
fn gc_report_covers_the_allocator_the_box_heap_and_the_collector() {
    use poolgc::gc::{self, Gc};
    use poolgc::PoolAlloc;
    static ALLOC: PoolAlloc = PoolAlloc::new();
    let x: Vec<_> = (0..100).map(|i| Gc::new([i as u64; 5])).collect();
    let boxes = gc::box_allocator().unwrap().stats();
    assert!(boxes.bytes_in_use >= 100 * gc::getsizeof(&x[0]));
    let mut out = String::new();
    gc::report(Some(&ALLOC), &mut out).unwrap();
    let sections: Vec<_> = out.lines().filter(|l| l.starts_with("== ")).collect();
    assert_eq!(
        sections,
        [
            "== Allocator ==",
            "== Gc box heap ==",
            "== Collector (this thread) =="
        ],
        "{out}"
    );
    assert_eq!(
        out.matches("\nTotal").count(),
        2,
        "both heaps' tables:\n{out}"
    );
    let live = out
        .lines()
        .find(|l| l.starts_with("# live Gc objects"))
        .unwrap();
    let n: usize = live
        .split('=')
        .nth(1)
        .unwrap()
        .trim()
        .replace(',', "")
        .parse()
        .unwrap();
    assert_eq!(n, gc::stats().live);
    assert!(n >= 100);
}
