//! Pool and arena geometry, chosen per allocator.
//!
//! pymalloc hard-codes 16 KiB pools in 1 MiB arenas. Those are good hosted defaults ([`Config::HOSTED`]),
//! but a firmware heap of 16 KiB must be able to hold several arenas, so the geometry is a value handed to
//! [`Heap::new`](crate::Heap::new) / [`PoolAlloc::with_config`](crate::PoolAlloc::with_config), checked at
//! compile time when the allocator is a `static`, or fitted to the first region (`Config::for_region`).

use crate::size_class::SMALL_MAX;

/// Pool and arena sizes of one heap.
///
/// # Choosing sizes for a small heap
///
/// A pool serves one size class, and an arena is the unit taken from a region and given back, so a heap
/// needs several of each: a program using `n` size classes holds at least `n` pools, partly empty. Pools
/// as large as the region leave nothing (a 16 KiB region with [`Config::HOSTED`] fits no pool beside its
/// own header); [`Config::SMALL`] gives a 16 KiB region 15 pools of 1 KiB. Bookkeeping, measured by
/// `cargo test --test firmware_overhead -- --nocapture` (bytes per KiB of region not handed out when it
/// is filled with 32-byte blocks; 64-bit unless noted):
///
/// | region  | `SMALL` (1 KiB / 4 KiB)   | `MEDIUM` (4 KiB / 64 KiB) | `HOSTED` (16 KiB / 1 MiB) |
/// |---------|---------------------------|---------------------------|---------------------------|
/// | 16 KiB  | 144 (114 on 32-bit)       | 276                       | 1024 (no pool fits)       |
/// | 64 KiB  | 96                        | 83                        | 261                       |
/// | 256 KiB | 84                        | 34                        | 69                        |
/// | 1 MiB   | 81                        | 21                        | 20                        |
///
/// At 16 KiB about 64 of those bytes per KiB are the one pool the region's header (in its last bytes)
/// spoils. One size class filling the heap is the best case for large pools; with many classes in use,
/// each holds a partly empty pool, and a partly used arena's free pools are lost to large blocks, so
/// prefer the smaller geometry when in doubt. [`Config::for_region`] is the rule
/// [`PoolAlloc::empty`](crate::PoolAlloc::empty) applies to its first region.
///
/// ```
/// use poolgc::{Config, PoolAlloc};
/// // 1 KiB pools in 4 KiB arenas: a good fit for a 16 KiB firmware heap.
/// static A: PoolAlloc = PoolAlloc::empty_with_config(Config::new(1024, 4096));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    pool_size: usize,
    arena_size: usize,
}

/// Upper bound on pools per arena (pool indices and counts are kept in `u32`s, bucket maths in `u64`).
pub const MAX_POOLS_PER_ARENA: usize = 1 << 16;

impl Config {
    /// CPython's geometry: 16 KiB pools, 1 MiB arenas.
    pub const HOSTED: Config = Config::new(16 * 1024, 1024 * 1024);
    /// For heaps of a few KiB to a few hundred KiB: 1 KiB pools, 4 KiB arenas.
    pub const SMALL: Config = Config::new(1024, 4 * 1024);
    /// For heaps of a few hundred KiB to a few MiB (firmware with external RAM, a per-task heap):
    /// 4 KiB pools, 64 KiB arenas. At 256 KiB it keeps ~30 bytes per KiB for bookkeeping where `SMALL`
    /// and `HOSTED` keep ~70 (see "Choosing sizes for a small heap").
    pub const MEDIUM: Config = Config::new(4 * 1024, 64 * 1024);

    /// A geometry of `pool_size`-byte pools in `arena_size`-byte arenas.
    ///
    /// # Panics
    /// At compile time when used in a `const`/`static`, otherwise at run time, unless: `pool_size` is a
    /// power of two of at least 1 KiB (a pool must hold its header and one 512-byte block) and at most
    /// 1 GiB; `arena_size` is a multiple of `pool_size`; and an arena has at most 65536 pools.
    pub const fn new(pool_size: usize, arena_size: usize) -> Config {
        assert!(
            pool_size.is_power_of_two(),
            "pool_size must be a power of two"
        );
        assert!(
            pool_size >= 2 * SMALL_MAX,
            "pool_size must be at least 1 KiB"
        );
        assert!(pool_size <= 1 << 30, "pool_size must be at most 1 GiB");
        assert!(
            arena_size >= pool_size && arena_size % pool_size == 0,
            "arena_size must be a multiple of pool_size"
        );
        assert!(
            arena_size / pool_size <= MAX_POOLS_PER_ARENA,
            "too many pools per arena"
        );
        Config {
            pool_size,
            arena_size,
        }
    }

    /// Bytes per pool (a power of two; pools are aligned to it).
    #[inline(always)]
    pub const fn pool_size(&self) -> usize {
        self.pool_size
    }

    /// Bytes per arena (a multiple of the pool size).
    #[inline(always)]
    pub const fn arena_size(&self) -> usize {
        self.arena_size
    }

    /// Pools per arena.
    #[inline(always)]
    pub const fn pools_per_arena(&self) -> usize {
        self.arena_size / self.pool_size
    }

    /// The geometry that suits a heap over a region of `len` bytes, as
    /// [`PoolAlloc::empty`](crate::PoolAlloc::empty) chooses it from its first region: [`SMALL`] below
    /// 2 MiB, 4 KiB pools in 32 KiB arenas below 64 MiB, [`HOSTED`] from there. Arenas stay a small
    /// fraction of the region, since a partly used arena's free pools are lost to large blocks
    /// (`cargo run --release -p poolgc-bench --bin static_region` measures the fill at first failure).
    ///
    /// [`SMALL`]: Config::SMALL
    /// [`HOSTED`]: Config::HOSTED
    ///
    /// ```
    /// use poolgc::Config;
    /// assert_eq!(Config::for_region(16 * 1024), Config::SMALL);
    /// assert_eq!(Config::for_region(4 << 20), Config::new(4096, 32 * 1024));
    /// assert_eq!(Config::for_region(64 << 20), Config::HOSTED);
    /// ```
    pub const fn for_region(len: usize) -> Config {
        if len < 2 << 20 {
            Config::SMALL
        } else if len < 64 << 20 {
            Config::new(4096, 32 * 1024)
        } else {
            Config::HOSTED
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config::HOSTED
    }
}
