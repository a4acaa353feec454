//! The workloads with jemalloc as the global allocator.
#[global_allocator]
static A: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;
fn main() {
    poolgc_bench::workloads::main()
}
