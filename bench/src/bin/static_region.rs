//! In-process mode, the firmware comparison: each allocator's `GlobalAlloc` driven over its own 64 MiB
//! region with the same seeded action sequence. Prints `variant allocator actions_per_second` lines, one
//! per repetition.
//!
//! `static_region [--quick] [--runs N] [--alloc NAME,NAME] [--variant small|mixed]` (the filters run only
//! the named allocators / request mix; the default is all of them).

use core::alloc::{GlobalAlloc, Layout};
use poolgc::{Config, PoolAlloc};
use poolgc_bench::regions::{self, map_region};
use poolgc_bench::workloads::Rng;
use std::hint::black_box;
use std::time::Instant;

const REGION: usize = 64 << 20;
const SLOTS: usize = 8192;

/// One seeded sequence: each action picks a slot; an empty slot gets a new block, a full one is freed.
fn drive(a: &dyn GlobalAlloc, mixed: bool, max_actions: usize, budget_s: f64) -> f64 {
    let mut slots: Vec<(*mut u8, Layout)> =
        vec![(core::ptr::null_mut(), Layout::new::<u8>()); SLOTS];
    let mut rng = Rng(0x5eed_57a7);
    let t = Instant::now();
    let mut done = 0;
    'outer: while done < max_actions {
        for _ in 0..4096 {
            let i = rng.below(SLOTS);
            let (p, l) = slots[i];
            if p.is_null() {
                let r = rng.below(100);
                let size = if !mixed || r < 80 {
                    rng.skewed(512)
                } else if r < 98 {
                    513 + rng.below(8192 - 512)
                } else {
                    8193 + rng.below(64 * 1024 - 8192)
                };
                let l = Layout::from_size_align(size, if r & 1 == 0 { 8 } else { 16 }).unwrap();
                // SAFETY: non-zero size.
                let q = unsafe { a.alloc(l) };
                if q.is_null() {
                    break 'outer;
                }
                // SAFETY: fresh block of at least one byte.
                unsafe { q.write(1) };
                slots[i] = (q, l);
            } else {
                // SAFETY: live block of this allocator with this layout.
                unsafe { a.dealloc(black_box(p), l) };
                slots[i].0 = core::ptr::null_mut();
            }
        }
        done += 4096;
        if t.elapsed().as_secs_f64() > budget_s {
            break;
        }
    }
    let rate = done as f64 / t.elapsed().as_secs_f64();
    for (p, l) in slots {
        if !p.is_null() {
            // SAFETY: as above.
            unsafe { a.dealloc(p, l) };
        }
    }
    rate
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let runs: usize = args
        .iter()
        .position(|a| a == "--runs")
        .and_then(|i| args.get(i + 1)?.parse().ok())
        .unwrap_or(5);
    let list = |flag: &str| -> Option<Vec<String>> {
        let i = args.iter().position(|a| a == flag)?;
        Some(args.get(i + 1)?.split(',').map(String::from).collect())
    };
    let allocs = list("--alloc");
    let variants = list("--variant");
    let wanted = |name: &str, filter: &Option<Vec<String>>| {
        filter.as_ref().is_none_or(|f| f.iter().any(|x| x == name))
    };
    let (max_actions, budget) = if quick {
        (200_000, 0.3)
    } else {
        (4_000_000, 2.0)
    };
    for run in 0..runs {
        for mixed in [false, true] {
            let variant = if mixed { "mixed" } else { "small" };
            if !wanted(variant, &variants) {
                continue;
            }
            let report = |name: &str, a: &dyn GlobalAlloc| {
                if !wanted(name, &allocs) {
                    return;
                }
                let rate = drive(a, mixed, max_actions, budget);
                println!("{variant} {name} {rate:.0}");
                let _ = run;
            };
            // Each allocator gets a fresh region; the regions are never reused (leaked).
            let p = PoolAlloc::empty_with_config(Config::HOSTED);
            // SAFETY: a fresh region, used by nothing else.
            unsafe { p.add_region(map_region(REGION), REGION) };
            report("poolgc", &p);
            let t = regions::talc();
            // SAFETY: as above.
            unsafe { regions::talc_give(&t, map_region(REGION), REGION) };
            report("talc", &t);
            let l = regions::Lla::empty();
            // SAFETY: as above.
            unsafe { regions::lla_give(&l, map_region(REGION), REGION) };
            report("linked_list_allocator", &l);
            let r = regions::Tlsf::new();
            // SAFETY: as above.
            unsafe { regions::tlsf_give(&r, map_region(REGION), REGION) };
            report("rlsf", &r);
            let b = regions::Buddy::empty();
            // SAFETY: as above.
            unsafe { regions::buddy_give(&b, map_region(REGION), REGION) };
            report("buddy_system_allocator", &b);
        }
    }
}
