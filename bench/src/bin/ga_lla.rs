//! The workloads with lla as the global allocator.
use poolgc_bench::regions::{self, Lazy, GLOBAL_REGION};
#[global_allocator]
static A: Lazy<regions::Lla> = Lazy::new(regions::Lla::empty(), GLOBAL_REGION, regions::lla_give);
fn main() {
    poolgc_bench::workloads::main()
}
