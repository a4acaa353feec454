//! cargo-fuzz target: the `global_actions` driver (`tests/drivers/global_actions.rs`, also run from fixed seeds by
//! `cargo test`) on arbitrary bytes.
#![no_main]

#[path = "../../tests/drivers/global_actions.rs"]
mod driver;

libfuzzer_sys::fuzz_target!(|data: &[u8]| driver::run(data));
