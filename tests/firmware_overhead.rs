//! What the allocator's bookkeeping costs on a small heap, measured: a region is filled with equal blocks
//! until `allocate` says no, and whatever was not handed out is overhead (region header, arena and pool
//! headers, the tails of pools too short for one more block, the first-fit allocator's alignment slack).
//!
//! `cargo test --test firmware_overhead -- --nocapture` prints the bookkeeping table (bytes per KiB of
//! heap not handed out). The figures are for the host's pointer width; the firmware example prints its
//! own (32-bit) figure at 16 KiB.

mod common;

use core::alloc::Layout;
use poolgc::{Config, Heap};

const KIB: usize = 1024;

/// Fills a fresh `len`-byte region (aligned to `align`) with `block`-byte blocks; returns the number of
/// blocks it took and the overhead in bytes per KiB of region. Frees everything and checks the heap after.
fn overhead(len: usize, align: usize, config: Config, block: usize) -> (usize, f64) {
    let region = common::Region::new(len, align);
    let mut h = Heap::empty(config);
    // SAFETY: a fresh allocation, used by nothing else, outliving the heap's use.
    unsafe { h.add_region(region.ptr(), len).unwrap() };
    let layout = Layout::from_size_align(block, 8).unwrap();
    let mut blocks = Vec::new();
    while let Some(p) = h.allocate(layout) {
        blocks.push(p);
    }
    let n = blocks.len();
    assert_eq!(h.stats().bytes_in_use, n * block);
    for p in blocks {
        // SAFETY: allocated above with `layout`, freed once.
        unsafe { h.deallocate(p, layout) };
    }
    h.check().unwrap();
    assert_eq!(h.stats().bytes_in_use, 0);
    (n, (len - n * block) as f64 / (len / KIB) as f64)
}

fn name(c: Config) -> String {
    match c {
        Config::SMALL => "SMALL (1 KiB / 4 KiB)".into(),
        Config::MEDIUM => "MEDIUM (4 KiB / 64 KiB)".into(),
        Config::HOSTED => "HOSTED (16 KiB / 1 MiB)".into(),
        c => format!("{} KiB / {} KiB", c.pool_size() / KIB, c.arena_size() / KIB),
    }
}

#[test]
fn metadata_overhead_per_kib() {
    let mid = Config::MEDIUM;
    println!(
        "{}-bit: bytes not handed out per KiB of region, region filled with equal blocks",
        usize::BITS
    );
    println!(
        "{:>8}  {:<24} {:>6}  {:>10} {:>10}",
        "region", "config", "align", "16 B", "32 B"
    );
    let mut rows = Vec::new();
    for (len, config, align) in [
        (16 * KIB, Config::SMALL, 1024),
        (16 * KIB, Config::SMALL, 8),
        (16 * KIB, mid, 4096),
        (16 * KIB, Config::HOSTED, 16 * KIB),
        (64 * KIB, Config::SMALL, 1024),
        (64 * KIB, mid, 4096),
        (64 * KIB, Config::HOSTED, 16 * KIB),
        (256 * KIB, Config::SMALL, 1024),
        (256 * KIB, mid, 4096),
        (256 * KIB, Config::HOSTED, 16 * KIB),
        (1024 * KIB, Config::SMALL, 1024),
        (1024 * KIB, mid, 4096),
        (1024 * KIB, Config::HOSTED, 16 * KIB),
    ] {
        let (n16, o16) = overhead(len, align, config, 16);
        let (n32, o32) = overhead(len, align, config, 32);
        println!(
            "{:>5} KiB  {:<24} {:>6}  {:>6.1} B/KiB {:>6.1} B/KiB   ({} / {} blocks)",
            len / KIB,
            name(config),
            align,
            o16,
            o32,
            n16,
            n32
        );
        rows.push((len, config, align, o16, o32));
    }
    let get = |len, config, align| {
        rows.iter()
            .find(|r| r.0 == len && r.1 == config && r.2 == align)
            .map(|r| (r.3, r.4))
            .unwrap()
    };
    // The recommended geometries. At 16 KiB a whole pool of the 16 goes to the region's header (it sits in
    // the last bytes, so the last pool is not whole): ~64 of these bytes per KiB.
    let (o16, o32) = get(16 * KIB, Config::SMALL, 1024);
    assert!(o16 < 150.0 && o32 < 150.0, "16 KiB, SMALL: {o16} / {o32}");
    let (o16, o32) = get(1024 * KIB, Config::HOSTED, 16 * KIB);
    assert!(o16 < 25.0 && o32 < 25.0, "1 MiB, HOSTED: {o16} / {o32}");
    let (o16, o32) = get(1024 * KIB, mid, 4096);
    assert!(o16 < 25.0 && o32 < 25.0, "1 MiB, MEDIUM: {o16} / {o32}");
    let (o16, o32) = get(256 * KIB, mid, 4096);
    assert!(o16 < 40.0 && o32 < 40.0, "256 KiB, MEDIUM: {o16} / {o32}");
    let (o16, o32) = get(1024 * KIB, Config::SMALL, 1024);
    assert!(o16 < 90.0 && o32 < 90.0, "1 MiB, SMALL: {o16} / {o32}");
    // HOSTED pools are as large as the whole 16 KiB region: no pool fits beside the region's header.
    let (o16, _) = get(16 * KIB, Config::HOSTED, 16 * KIB);
    assert!(o16 > 900.0, "16 KiB, HOSTED should not fit a pool: {o16}");
}
