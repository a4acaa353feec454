//! The collector workloads with poolgc as the global allocator (see `collectors`).
#[global_allocator]
static A: poolgc::PoolAlloc = poolgc::PoolAlloc::new();
fn main() {
    poolgc_bench::collectors::child_main()
}
