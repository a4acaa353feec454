//! The workloads with poolgc as the global allocator.
#[global_allocator]
static A: poolgc::PoolAlloc = poolgc::PoolAlloc::new();
fn main() {
    poolgc_bench::workloads::main()
}
