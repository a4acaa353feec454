//! The workloads with system as the global allocator.
#[global_allocator]
static A: std::alloc::System = std::alloc::System;
fn main() {
    poolgc_bench::workloads::main()
}
