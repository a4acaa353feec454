//! The fuzz drivers (`tests/drivers/*.rs`) from fixed seeds, so their invariants are exercised on every
//! `cargo test` and under Miri (`cargo +nightly miri test --test fuzz_drivers`), not only while fuzzing.
//!
//! Each seed becomes a pseudo-random byte string that the driver interprets exactly as a fuzz input; a
//! failing seed can be replayed in the fuzzer by writing those bytes to a file.

mod common;
#[path = "drivers/global_actions.rs"]
mod global_actions;
#[path = "drivers/heap_actions.rs"]
mod heap_actions;

use common::Rng;

/// Seeds per driver and bytes per input (Miri is ~1000× slower).
const SEEDS: u64 = if cfg!(miri) { 2 } else { 200 };
const LEN: usize = if cfg!(miri) { 100 } else { 1500 };

/// A pseudo-random input of `len` bytes from `seed`.
fn input(seed: u64, len: usize) -> Vec<u8> {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    (0..len).map(|_| rng.next() as u8).collect()
}

/// Inputs that are not random: empty, all zeros (allocations of size 0 only), all ones, and a stream of
/// nothing but allocations (so exhaustion is reached and refused).
fn edge_inputs() -> Vec<Vec<u8>> {
    let mut alloc_only = vec![0u8, 1];
    for i in 0..if cfg!(miri) { 12 } else { 600 } {
        // op 0 (alloc), size kind 3 (0..=5000) with a varying value, align byte 16 (16 bytes).
        alloc_only.extend([0, 3, (i * 37) as u8, (i / 7) as u8, 16]);
    }
    vec![Vec::new(), vec![0; 64], vec![0xFF; 64], alloc_only]
}

#[test]
fn heap_actions_from_fixed_seeds() {
    for data in edge_inputs() {
        heap_actions::run(&data);
    }
    for seed in 0..SEEDS {
        heap_actions::run(&input(seed, LEN));
    }
}

#[test]
fn global_actions_from_fixed_seeds() {
    for data in edge_inputs() {
        global_actions::run(&data);
    }
    for seed in 0..SEEDS {
        global_actions::run(&input(1000 + seed, LEN));
    }
}
