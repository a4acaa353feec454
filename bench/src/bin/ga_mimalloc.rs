//! The workloads with mimalloc as the global allocator.
#[global_allocator]
static A: mimalloc::MiMalloc = mimalloc::MiMalloc;
fn main() {
    poolgc_bench::workloads::main()
}
