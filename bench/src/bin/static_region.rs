//! In-process mode, the firmware comparison: each allocator's `GlobalAlloc` driven over its own 64 MiB
//! region with the same seeded action sequence. Prints `variant allocator actions_per_second` lines, one
//! per repetition; then `fill variant allocator percent` lines: how much of a 4 MiB region was live when
//! the first request failed; then a table of the medians, with each allocator's ratio to talc's.
//!
//! Variants: `small` (sizes 1–512 B, skewed small), `realloc` (the same sizes, a fifth of the actions on a
//! live block resize it instead of freeing it), `mixed` (80% small, 18% 513 B–8 KiB, 2% 8–64 KiB).
//! Allocators: `poolgc` (`PoolAlloc::empty()`, what firmware gets by default), `poolgc-hosted` (the same
//! over `Config::HOSTED`'s geometry), talc, linked_list_allocator, rlsf, buddy_system_allocator.
//!
//! `static_region [--quick] [--runs N] [--alloc NAME,NAME] [--variant small|realloc|mixed]` (the filters
//! run only the named allocators / request mixes; the default is all of them).

use core::alloc::{GlobalAlloc, Layout};
use poolgc_bench::regions::{self, map_region};
use poolgc_bench::workloads::Rng;
use std::hint::black_box;
use std::time::Instant;

const REGION: usize = 64 << 20;
const SLOTS: usize = 8192;
/// Region and slots of the fill measurement: enough slots that the live set outgrows the region.
const FILL_REGION: usize = 4 << 20;
const FILL_SLOTS: usize = 1 << 16;

/// One step of the seeded sequence: the slot it touches and, if that slot is empty, the request to put
/// there.
#[derive(Clone, Copy)]
struct Action {
    slot: usize,
    layout: Layout,
    /// On a live block: resize it to `layout.size()` instead of freeing it.
    realloc: bool,
}

/// The seeded sequence, drawn before any timing so that the clock measures the allocator and the slot
/// table, not the random-number generator (about a quarter of the timed loop when the draws were inline).
fn actions(variant: &str, slots: usize, n: usize) -> Vec<Action> {
    let mixed = variant == "mixed";
    let mut rng = Rng(0x5eed_57a7);
    (0..n)
        .map(|_| {
            let slot = rng.below(slots);
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
                realloc: variant == "realloc" && rng.below(5) == 0,
            }
        })
        .collect()
}

/// Runs `seq` over `nslots` slots (or as much of it as fits in `budget_s`, or until a request fails when
/// `until_full`): an empty slot gets a new block, a full one is freed or resized. Returns actions per
/// second and the bytes live at the end (before everything is freed). The allocator is called through
/// `dyn GlobalAlloc`: one call per request into its `GlobalAlloc` method, as a program's `__rust_alloc`
/// shim calls its global allocator (a generic driver would inline whole allocators into the loop, which
/// no program does).
fn drive(
    a: &dyn GlobalAlloc,
    seq: &[Action],
    nslots: usize,
    budget_s: f64,
    until_full: bool,
) -> (f64, usize) {
    let mut slots: Vec<(*mut u8, Layout)> =
        vec![(core::ptr::null_mut(), Layout::new::<u8>()); nslots];
    let mut live = 0usize;
    let t = Instant::now();
    let mut done = 0;
    'outer: for chunk in seq.chunks(4096) {
        for &Action {
            slot,
            layout,
            realloc,
        } in chunk
        {
            let (p, l) = slots[slot];
            if p.is_null() {
                // SAFETY: non-zero size.
                let q = unsafe { a.alloc(layout) };
                if q.is_null() {
                    if until_full {
                        break 'outer;
                    }
                    continue;
                }
                // SAFETY: fresh block of at least one byte.
                unsafe { q.write(1) };
                slots[slot] = (q, layout);
                live += layout.size();
            } else if realloc {
                // SAFETY: live block of this allocator with this layout; the size is valid for its align.
                let q = unsafe { a.realloc(black_box(p), l, layout.size()) };
                if q.is_null() {
                    if until_full {
                        break 'outer;
                    }
                    continue;
                }
                // SAFETY: the resized block holds at least one byte.
                unsafe { q.write(2) };
                live = live - l.size() + layout.size();
                slots[slot] = (
                    q,
                    Layout::from_size_align(layout.size(), l.align()).expect("valid"),
                );
            } else {
                // SAFETY: live block of this allocator with this layout.
                unsafe { a.dealloc(black_box(p), l) };
                slots[slot].0 = core::ptr::null_mut();
                live -= l.size();
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
    (rate, live)
}

/// Median of `v` (not empty).
fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
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
    const VARIANTS: [&str; 3] = ["small", "realloc", "mixed"];
    const ALLOCATORS: [&str; 6] = [
        "poolgc",
        "poolgc-hosted",
        "talc",
        "linked_list_allocator",
        "rlsf",
        "buddy_system_allocator",
    ];
    let seqs = VARIANTS.map(|v| actions(v, SLOTS, max_actions));
    let fill_seq = actions("mixed", FILL_SLOTS, 4 * FILL_SLOTS);
    let mut rates: Vec<(&str, &str, Vec<f64>)> = Vec::new();
    let mut fills: Vec<(&str, f64)> = Vec::new();
    // Runs `drive` on a fresh `$make` over a fresh region of `$len` bytes (never reused: leaked).
    macro_rules! on_each {
        ($len:expr, |$name:ident, $a:ident| $body:expr) => {{
            macro_rules! one {
                ($n:expr, $make:expr, $give:expr) => {
                    if wanted($n, &allocs) {
                        let $name: &'static str = $n;
                        let $a = $make;
                        let give: unsafe fn(_, *mut u8, usize) = $give;
                        // SAFETY: a fresh region, used by nothing else.
                        unsafe { give(&$a, map_region($len), $len) };
                        $body;
                    }
                };
            }
            one!("poolgc", regions::poolgc_empty(), regions::poolgc_give);
            one!("poolgc-hosted", regions::poolgc(), regions::poolgc_give);
            one!("talc", regions::talc(), regions::talc_give);
            one!(
                "linked_list_allocator",
                regions::Lla::empty(),
                regions::lla_give
            );
            one!("rlsf", regions::Tlsf::new(), regions::tlsf_give);
            one!(
                "buddy_system_allocator",
                regions::Buddy::empty(),
                regions::buddy_give
            );
        }};
    }
    for _ in 0..runs {
        for (seq, variant) in seqs.iter().zip(VARIANTS) {
            if !wanted(variant, &variants) {
                continue;
            }
            on_each!(REGION, |name, a| {
                let (rate, _) = drive(&a, seq, SLOTS, budget, false);
                println!("{variant} {name} {rate:.0}");
                match rates.iter_mut().find(|r| r.0 == variant && r.1 == name) {
                    Some(r) => r.2.push(rate),
                    None => rates.push((variant, name, vec![rate])),
                }
            });
        }
    }
    on_each!(FILL_REGION, |name, a| {
        let (_, live) = drive(&a, &fill_seq, FILL_SLOTS, f64::INFINITY, true);
        let pct = 100.0 * live as f64 / FILL_REGION as f64;
        println!("fill mixed {name} {pct:.1}");
        fills.push((name, pct));
    });

    println!("\n| requests | {} |", ALLOCATORS.join(" | "));
    println!("|---|{}", "---|".repeat(ALLOCATORS.len()));
    let talc = |v: &str, rates: &mut Vec<(&str, &str, Vec<f64>)>| {
        let r = rates.iter_mut().find(|r| r.0 == v && r.1 == "talc")?;
        Some(median(&mut r.2))
    };
    for v in VARIANTS {
        let base = talc(v, &mut rates);
        print!("| {v} (M actions/s; / talc) |");
        for a in ALLOCATORS {
            match rates.iter_mut().find(|r| r.0 == v && r.1 == a) {
                Some(r) => {
                    let m = median(&mut r.2);
                    match base {
                        Some(b) => print!(" {:.2} ({:.2}) |", m / 1e6, m / b),
                        None => print!(" {:.2} |", m / 1e6),
                    }
                }
                None => print!(" — |"),
            }
        }
        println!();
    }
    print!("| live at first failure, mixed, 4 MiB region |");
    for a in ALLOCATORS {
        match fills.iter().find(|f| f.0 == a) {
            Some(f) => print!(" {:.1}% |", f.1),
            None => print!(" — |"),
        }
    }
    println!();
}
