//! # poolgc — CPython's memory manager, for Rust
//!
//! A `#![no_std]` allocator built the way pymalloc is: requests up to 512 bytes are rounded to 16-byte
//! size classes (8-byte on 32-bit targets) and served from *pools* of equal-size blocks, carved out of
//! *arenas* that come from the OS (`mmap`, feature `os`) or from static regions handed over by the user
//! (bare-metal firmware). Larger requests go to a fallback: `linked_list_allocator` inside the regions, or
//! the OS. Wholly free arenas go back where they came from.
//!
//! ```
//! use poolgc::PoolAlloc;
//!
//! #[global_allocator]
//! static ALLOC: PoolAlloc = PoolAlloc::new();
//!
//! let s = String::from("hello");
//! let mut report = String::new();
//! ALLOC.report(&mut report).unwrap(); // like sys._debugmallocstats()
//! assert!(report.contains("size classes"));
//! # drop(s);
//! ```
//!
//! ## Layers (bottom up; each module uses only those above it in this list)
//!
//! | module | what it is |
//! |---|---|
//! | `sync` | the lock type: `spin`, or loom's atomics under `cfg(loom)` |
//! | [`config`] | pool and arena geometry, per allocator |
//! | [`size_class`] | request size → class → block size |
//! | `source` | static regions (`linked_list_allocator` inside) and OS mappings |
//! | `pool` | one pool: header, LIFO free list, lazy carving |
//! | `arena` | a run of pools; fewest-free-first order in O(1) buckets |
//! | [`stats`] | snapshot types and the CPython-shaped report |
//! | `large` | requests over 512 B or over-aligned |
//! | [`Heap`] | the `&mut self` core |
//! | `fork` | the registry of locks taken around `fork` (feature `std`), and its `pthread_atfork` handlers |
//! | `thread_cache` | per-thread caches of small blocks (feature `std`): the fast path |
//! | [`PoolAlloc`] | the locked `GlobalAlloc`, with the thread caches in front when built with them |
//! | [`gc`] (feature `gc`) | `Gc<T>`: reference counting with Bacon–Rajan cycle collection, on the pools |
#![no_std]
#![warn(missing_docs)]

#[cfg(feature = "gc")]
extern crate alloc;
#[cfg(any(test, feature = "std"))]
extern crate std;

pub mod config;
pub mod size_class;
pub mod stats;
pub(crate) mod sync;

mod arena;
#[cfg(all(feature = "std", not(loom)))]
mod fork;
mod global;
mod heap;
mod large;
mod pool;
mod source;
#[cfg(feature = "std")]
mod thread_cache;

#[cfg(feature = "gc")]
pub mod gc;

pub use config::Config;
pub use global::{LockedHeap, PoolAlloc};
pub use heap::{BlockState, Heap, HeapError};
pub use source::RegionError;
pub use stats::{ClassStats, Stats};
