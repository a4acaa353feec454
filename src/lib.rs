// The crate's documentation is the README (docs.rs shows it as the front page). Its examples are compiled
// and run as doctests through `ReadmeDoctests` below, when the features they use are on.
#![cfg_attr(not(doctest), doc = include_str!("../README.md"))]
#![no_std]
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![cfg_attr(feature = "nightly", feature(allocator_api))]

// The loom models build the lock on loom's atomics, which the `loom` feature brings in.
#[cfg(all(loom, not(feature = "loom")))]
compile_error!("`--cfg loom` needs `--features loom`");

#[cfg(any(feature = "gc", feature = "intern"))]
extern crate alloc;
#[cfg(any(test, feature = "std"))]
extern crate std;

pub mod config;
pub mod size_class;
pub mod stats;
pub(crate) mod sync;

mod arena;
mod global;
mod heap;
mod heap_map;
mod large;
mod pool;
mod source;
#[cfg(all(feature = "std", not(loom)))]
mod thread_cache;

#[cfg(feature = "gc")]
#[cfg_attr(docsrs, doc(cfg(feature = "gc")))]
pub mod gc;
#[cfg(all(feature = "intern", not(loom)))]
#[cfg_attr(docsrs, doc(cfg(feature = "intern")))]
pub mod intern;

#[cfg(any(feature = "allocator-api2", feature = "nightly"))]
mod allocator_api;

/// The README's examples, as doctests (they use the hosted allocator, `#[derive(Trace)]` and
/// allocator-api2).
#[cfg(all(
    doctest,
    feature = "os",
    feature = "derive",
    feature = "allocator-api2"
))]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

pub use config::Config;
pub use global::PoolAlloc;
pub use heap::{BlockState, Heap, HeapError, PoolInfo};
pub use source::RegionError;
pub use stats::{ClassStats, Stats};
