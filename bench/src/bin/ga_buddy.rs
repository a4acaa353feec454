//! The workloads with buddy as the global allocator.
use poolgc_bench::regions::{self, Lazy, GLOBAL_REGION};
#[global_allocator]
static A: Lazy<regions::Buddy> =
    Lazy::new(regions::Buddy::empty(), GLOBAL_REGION, regions::buddy_give);
fn main() {
    poolgc_bench::workloads::main()
}
