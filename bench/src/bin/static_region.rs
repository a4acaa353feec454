//! In-process mode, the firmware comparison: each allocator's `GlobalAlloc` driven over its own 64 MiB
//! region with the same seeded action sequence. Prints `variant allocator actions_per_second` lines, one
//! per repetition.
//!
//! `static_region [--quick] [--runs N] [--alloc NAME,NAME] [--variant small|mixed]` (the filters run only
//! the named allocators / request mix; the default is all of them).

use core::alloc::{GlobalAlloc, Layout};
use poolgc_bench::regions::{self, map_region};
use poolgc_bench::workloads::Rng;
use std::hint::black_box;
use std::time::Instant;

const REGION: usize = 64 << 20;
const SLOTS: usize = 8192;

/// One step of the seeded sequence: the slot it touches and, if that slot is empty, the request to put
/// there.
#[derive(Clone, Copy)]
struct Action {
    slot: usize,
    layout: Layout,
}

/// The seeded sequence, drawn before any timing so that the clock measures the allocator and the slot
/// table, not the random-number generator (about a quarter of the timed loop when the draws were inline).
fn actions(mixed: bool, n: usize) -> Vec<Action> {
    let mut rng = Rng(0x5eed_57a7);
    (0..n)
        .map(|_| {
            let slot = rng.below(SLOTS);
            let r = rng.below(100);
            let size = if !mixed || r < 80 {
                rng.skewed(512)
            } else if r < 98 {
                513 + rng.below(8192 - 512)
            } else {
                8193 + rng.below(64 * 1024 - 8192)
            };
            let align = if r & 1 == 0 { 8 } else { 16 };
            Action {
                slot,
                layout: Layout::from_size_align(size, align).expect("valid layout"),
            }
        })
        .collect()
}

/// Runs `seq` (or as much of it as fits in `budget_s`): an empty slot gets a new block, a full one is
/// freed. Returns actions per second. The allocator is called through `dyn GlobalAlloc`: one call per
/// request into its `GlobalAlloc` method, as a program's `__rust_alloc` shim calls its global allocator
/// (a generic driver would inline whole allocators into the loop, which no program does).
fn drive(a: &dyn GlobalAlloc, seq: &[Action], budget_s: f64) -> f64 {
    let mut slots: Vec<(*mut u8, Layout)> =
        vec![(core::ptr::null_mut(), Layout::new::<u8>()); SLOTS];
    let t = Instant::now();
    let mut done = 0;
    'outer: for chunk in seq.chunks(4096) {
        for &Action { slot, layout } in chunk {
            let (p, l) = slots[slot];
            if p.is_null() {
                // SAFETY: non-zero size.
                let q = unsafe { a.alloc(layout) };
                if q.is_null() {
                    break 'outer;
                }
                // SAFETY: fresh block of at least one byte.
                unsafe { q.write(1) };
                slots[slot] = (q, layout);
            } else {
                // SAFETY: live block of this allocator with this layout.
                unsafe { a.dealloc(black_box(p), l) };
                slots[slot].0 = core::ptr::null_mut();
            }
        }
        done += chunk.len();
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
    let seqs = [false, true].map(|mixed| actions(mixed, max_actions));
    for _ in 0..runs {
        for (seq, variant) in seqs.iter().zip(["small", "mixed"]) {
            if !wanted(variant, &variants) {
                continue;
            }
            // Each allocator gets a fresh region of its own; the regions are never reused (leaked).
            macro_rules! report {
                ($name:expr, $make:expr, $give:expr) => {
                    if wanted($name, &allocs) {
                        let a = $make;
                        let give: unsafe fn(_, *mut u8, usize) = $give;
                        // SAFETY: a fresh region, used by nothing else.
                        unsafe { give(&a, map_region(REGION), REGION) };
                        let rate = drive(&a, seq, budget);
                        println!("{variant} {} {rate:.0}", $name);
                    }
                };
            }
            report!("poolgc", regions::poolgc(), regions::poolgc_give);
            report!("talc", regions::talc(), regions::talc_give);
            report!(
                "linked_list_allocator",
                regions::Lla::empty(),
                regions::lla_give
            );
            report!("rlsf", regions::Tlsf::new(), regions::tlsf_give);
            report!(
                "buddy_system_allocator",
                regions::Buddy::empty(),
                regions::buddy_give
            );
        }
    }
}
