//! poolgc's benchmark crate: workloads run with each allocator as the process's `#[global_allocator]`
//! (the `ga_<allocator>` binaries), the in-process static-region comparison (`static_region`), and the
//! driver that runs them all and prints markdown tables (`poolgc-bench`, `src/main.rs`).
//!
//! `cargo run --release -p poolgc-bench` (add `-- --quick` for a smoke run).

pub mod collectors;
pub mod regions;
pub mod stress;
pub mod workloads;
