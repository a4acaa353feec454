// The crate's documentation is the README (docs.rs shows it as the front page). Its examples are compiled
// and run as doctests through `ReadmeDoctests` below, when the features they use are on.
#![cfg_attr(not(doctest), doc = include_str!("../README.md"))]
// Layers, bottom up: each module uses only those above it in this table (docs/architecture.md says more).
//
// | module | what it is |
// |---|---|
// | `sync` | the lock type: `spin`, or loom's atomics under `cfg(loom)` |
// | `decay` | the one rule by which memory kept for reuse goes back (spare arenas, cached mappings, transfer stacks) |
// | `size_class` | request size → class → block size |
// | `config` | pool and arena geometry, per allocator |
// | `source` | where memory comes from: static regions and OS mappings, counted process-wide (`os_mapped`) |
// | `pool` | one pool: header, LIFO free list, lazy carving |
// | `arena` | a run of pools; fewest-free-first order in O(1) buckets |
// | `stats` | snapshot types and the CPython-shaped report |
// | `large` | requests the pools do not serve: region bins, exact-size region blocks, the OS mapping cache |
// | `Heap` | the `&mut self` core |
// | `fork` | the registry of locks taken around `fork` (feature `std`), and its `pthread_atfork` handlers |
// | `thread_cache` | per-thread caches of small blocks (feature `std`): the fast path |
// | `trace` (feature `trace`) | tracemalloc: live blocks by call site, size class and tag, in tables of their own |
// | `debug` (feature `debug`) | CPython's debug allocator: guards, fills, serials, checked on free and reuse |
// | `PoolAlloc` | the locked `GlobalAlloc`, with the thread caches in front when built with them |
// | `heap_map` | the SVG heap map of an allocator's pools (`PoolAlloc::write_heap_svg`) |
// | `allocator_api` | `Allocator` for `PoolAlloc` (features `allocator-api2`, `nightly`) |
// | `gc` (feature `gc`) | `Gc<T>`: reference counting with Bacon–Rajan cycle collection, on the pools |
// | `intern` (feature `intern`) | interned strings: one immortal copy of each, from any thread |
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
mod decay;
pub mod size_class;
pub mod stats;
pub(crate) mod sync;

mod arena;
#[cfg(feature = "debug")]
#[cfg_attr(docsrs, doc(cfg(feature = "debug")))]
pub mod debug;
#[cfg(all(feature = "std", not(loom)))]
mod fork;
mod global;
mod heap;
mod heap_map;
mod large;
mod pool;
mod source;
#[cfg(feature = "std")]
mod thread_cache;
#[cfg(all(feature = "trace", unix, not(loom)))]
#[cfg_attr(docsrs, doc(cfg(feature = "trace")))]
pub mod trace;

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
pub use global::{LockedHeap, PoolAlloc};
pub use heap::{BlockState, Heap, HeapError, PoolInfo};
pub use source::{os_mapped, OsMapped, RegionError};
pub use stats::{ClassStats, Stats};
