//! The workloads with rlsf as the global allocator.
#[global_allocator]
static A: rlsf::GlobalTlsf = rlsf::GlobalTlsf::new();
fn main() {
    poolgc_bench::workloads::main()
}
