//! The `global_actions` fuzz driver (`tests/drivers/global_actions.rs`) from fixed seeds, so its invariants are exercised
//! on every `cargo test` and under Miri, not only while fuzzing.
//!
//! Each seed becomes a pseudo-random byte string that the driver reads exactly as a fuzz input; to replay a
//! failing seed in the fuzzer, write `seeded_input(seed, LEN)` to a file and pass it to `cargo fuzz run`.

#[path = "drivers/global_actions.rs"]
mod driver;

use driver::actions::{edge_inputs, seeded_input};

/// Seeds, bytes per input, and allocations in the alloc-only input (Miri is ~1000× slower).
const SEEDS: u64 = if cfg!(miri) { 2 } else { 200 };
const LEN: usize = if cfg!(miri) { 100 } else { 1500 };
const ALLOCS: usize = if cfg!(miri) { 12 } else { 600 };

#[test]
fn edge_inputs_keep_every_invariant() {
    for data in edge_inputs(ALLOCS) {
        driver::run(&data);
    }
}

#[test]
fn fixed_seeds_keep_every_invariant() {
    for seed in 1000..1000 + SEEDS {
        driver::run(&seeded_input(seed, LEN));
    }
}
