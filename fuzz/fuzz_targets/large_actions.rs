//! cargo-fuzz target: the `large_actions` driver (`tests/drivers/large_actions.rs`, also run from fixed seeds
//! by `cargo test`) on arbitrary bytes: OS mappings and the large-block cache of a hosted heap.
#![no_main]

#[path = "../../tests/drivers/large_actions.rs"]
mod driver;

libfuzzer_sys::fuzz_target!(|data: &[u8]| driver::run(data));
