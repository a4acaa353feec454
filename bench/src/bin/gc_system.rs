//! The collector workloads with the system allocator (see `collectors`).
fn main() {
    poolgc_bench::collectors::child_main()
}
