//! The workloads with talc as the global allocator.
use poolgc_bench::regions::{self, Lazy, GLOBAL_REGION};
#[global_allocator]
static A: Lazy<regions::Talc> = Lazy::new(regions::talc(), GLOBAL_REGION, regions::talc_give);
fn main() {
    poolgc_bench::workloads::main()
}
