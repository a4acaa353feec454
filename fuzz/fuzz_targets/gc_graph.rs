//! cargo-fuzz target: the `gc_graph` driver (`tests/drivers/gc_graph.rs`, which comes with the collector):
//! arbitrary graph mutations and collections; the survivors of `collect()` must be exactly the objects
//! reachable from live handles, and every object is dropped exactly once.
//!
//! Built only with this crate's feature `gc` (see `fuzz/Cargo.toml`); CI turns it on when the driver file
//! exists.
#![no_main]

#[path = "../../tests/drivers/gc_graph.rs"]
mod driver;

libfuzzer_sys::fuzz_target!(|data: &[u8]| driver::run(data));
