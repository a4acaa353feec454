//! The `large_actions` fuzz driver (`tests/drivers/large_actions.rs`: OS mappings and the large-block cache)
//! from fixed seeds, so its invariants are exercised on every `cargo test` and under Miri, not only while
//! fuzzing. To replay a failing seed in the fuzzer, write `seeded_input(seed, LEN)` to a file and pass it
//! to `cargo fuzz run large_actions`.
#![cfg(all(feature = "os", unix))]

#[path = "drivers/large_actions.rs"]
mod driver;

use driver::actions::seeded_input;

/// Seeds and bytes per input (Miri is ~1000× slower).
const SEEDS: u64 = if cfg!(miri) { 2 } else { 100 };
const LEN: usize = if cfg!(miri) { 120 } else { 1500 };

#[test]
fn edge_inputs_keep_every_invariant() {
    for data in [&[][..], &[0; 64], &[0xFF; 64], &[4; 200]] {
        driver::run(data);
    }
}

#[test]
fn fixed_seeds_keep_every_invariant() {
    for seed in 0..SEEDS {
        driver::run(&seeded_input(seed, LEN));
    }
}
