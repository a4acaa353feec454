//! Fuzz driver: arbitrary large allocations, zeroed allocations, growths, shrinks and frees on a hosted
//! [`Heap`] (OS mappings and the large-block cache, `src/large/mapcache.rs`), with trims and decay-time
//! changes mixed in. After every action the heap's invariants are checked (`Heap::check`, which covers
//! the cache's ranges, joins and bounds) and every live block must still hold its pattern (first and last
//! byte of each of its pages). At the end every block is freed and `trim` must leave nothing mapped.
//!
//! Byte format: a geometry byte (even: `Config::HOSTED`; odd: `Config::SMALL`, whose 4 KiB page-aligned
//! arenas come from and go back to the cache like large blocks), then a stream of actions, each an opcode
//! byte and its operands (missing bytes read as 0):
//!
//! | op % 8 | action | operands |
//! |---|---|---|
//! | 0..=2 | allocate | slot, pages, tail |
//! | 3 | allocate zeroed | slot, pages, tail |
//! | 4..=5 | reallocate (or allocate, if the slot is empty) | slot, pages, tail |
//! | 6 | free | slot |
//! | 7 | trim / decay time 0 / decay time endless | which |
//!
//! A size is `pages` pages (1–64, or 64–1,024 for a pages byte ≥ 240; fewer under Miri) less `tail × 16`
//! bytes, so requests land on and off page boundaries, and the smallest ones in the pools.
//!
//! Shared by the cargo-fuzz target `fuzz/fuzz_targets/large_actions.rs` and by
//! `tests/fuzz_large_actions.rs` (fixed seeds, also under Miri).

#[path = "actions.rs"]
#[allow(dead_code)] // this driver reads its input with `Input`; the rest serves the other drivers
pub(crate) mod actions;
#[path = "../common/mod.rs"]
pub(crate) mod common;

use actions::Input;
use core::alloc::Layout;
use core::ptr::NonNull;
use poolgc::{Config, Heap};

const PAGE: usize = 4096;
/// Slots a block can live in.
const SLOTS: usize = 32;

fn layout(size: usize) -> Layout {
    Layout::from_size_align(size, 8).unwrap()
}

/// A request size from a pages byte and a tail byte.
fn size(pages: u8, tail: u8) -> usize {
    let pages = if pages >= 240 {
        64 * (pages as usize - 239)
    } else {
        1 + pages as usize % 64
    };
    let pages = if cfg!(miri) { pages.min(8) } else { pages };
    pages * PAGE - (tail as usize * 16) % PAGE
}

/// Writes `tag` into the first and last byte of every page of `[p, p + n)`.
fn mark(p: NonNull<u8>, n: usize, tag: u8) {
    for off in (0..n).step_by(PAGE) {
        let last = (off + PAGE).min(n) - 1;
        // SAFETY: both offsets are inside the live block of `n` bytes.
        unsafe {
            p.as_ptr().add(off).write(tag);
            p.as_ptr().add(last).write(tag);
        }
    }
}

/// Whether the bytes [`mark`] wrote into a block of `n` bytes still read `tag` within its first `keep`
/// bytes (`keep < n`: what a shrinking realloc keeps).
fn kept(p: NonNull<u8>, keep: usize, n: usize, tag: u8) -> bool {
    (0..keep).step_by(PAGE).all(|off| {
        let last = (off + PAGE).min(n) - 1;
        // SAFETY: `off < keep` and, when read, `last < keep`: inside the live block.
        unsafe {
            p.as_ptr().add(off).read() == tag
                && (last >= keep || p.as_ptr().add(last).read() == tag)
        }
    })
}

/// Whether every page of `[p, p + n)` starts and ends (within the block) with `tag`.
fn marked(p: NonNull<u8>, n: usize, tag: u8) -> bool {
    kept(p, n, n, tag)
}

/// Runs one input (see the module docs).
pub fn run(data: &[u8]) {
    let mut input = Input::new(data);
    let config = if input.u8() % 2 == 0 {
        Config::HOSTED
    } else {
        Config::SMALL
    };
    let mut h = Heap::new(config);
    h.set_spare_decay_ms(u32::MAX);
    let mut slots: [Option<(NonNull<u8>, usize, u8)>; SLOTS] = [None; SLOTS];
    let mut step: u8 = 0;
    while !input.done() {
        step = step.wrapping_add(1);
        let tag = step | 1; // never 0, so a zeroed block is told apart from a marked one
        let op = input.u8() % 8;
        match op {
            0..=5 => {
                let i = input.u8() as usize % SLOTS;
                let n = size(input.u8(), input.u8());
                match slots[i] {
                    Some((p, old, t)) if op >= 4 => {
                        // SAFETY: `p` is live with `layout(old)`; `n` is a valid size.
                        let q = unsafe { h.reallocate(p, layout(old), n) }.expect("realloc");
                        assert!(
                            kept(q, old.min(n), old, t),
                            "realloc {old} → {n}: contents lost"
                        );
                        mark(q, n, tag);
                        slots[i] = Some((q, n, tag));
                    }
                    _ => {
                        if let Some((p, old, _)) = slots[i].take() {
                            // SAFETY: live with this layout, freed once.
                            unsafe { h.deallocate(p, layout(old)) };
                        }
                        let p = if op == 3 {
                            let p = h.allocate_zeroed(layout(n)).expect("alloc_zeroed");
                            assert!(marked(p, n, 0), "alloc_zeroed of {n}: not zero");
                            p
                        } else {
                            h.allocate(layout(n)).expect("alloc")
                        };
                        mark(p, n, tag);
                        slots[i] = Some((p, n, tag));
                    }
                }
            }
            6 => {
                let i = input.u8() as usize % SLOTS;
                if let Some((p, n, t)) = slots[i].take() {
                    assert!(marked(p, n, t), "contents of a live block");
                    // SAFETY: live with this layout, freed once.
                    unsafe { h.deallocate(p, layout(n)) };
                }
            }
            _ => match input.u8() % 3 {
                0 => {
                    h.trim();
                }
                1 => h.set_spare_decay_ms(0),
                _ => h.set_spare_decay_ms(u32::MAX),
            },
        }
        if let Err(e) = h.check() {
            panic!("after step {step} ({op}): {e:?}");
        }
        for &(p, n, t) in slots.iter().flatten() {
            assert!(marked(p, n, t), "step {step}: a live block changed");
        }
    }
    for (p, n, _) in slots.into_iter().flatten() {
        // SAFETY: live with this layout, freed once.
        unsafe { h.deallocate(p, layout(n)) };
    }
    h.check().unwrap();
    assert_eq!(h.stats().bytes_in_use, 0);
    h.trim();
    assert_eq!(h.stats().bytes_reserved, 0, "trim left memory mapped");
}
