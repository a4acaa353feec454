//! Arenas: runs of pools, and the order in which they are used.
//!
//! An arena is `arena_size` bytes, aligned to the pool size, cut into pools. Its header lives in pool 0,
//! right after that pool's own header, so an arena needs no memory outside itself:
//!
//! ```text
//!  ┌──────────────────────────────┬────────┬────────┬─────┬──────────────────────────┐
//!  │ pool 0: PoolHeader,          │ pool 1 │ pool 2 │ ... │ never-used pools         │
//!  │ ArenaHeader, blocks          │        │        │     │ (from next_fresh on)     │
//!  └──────────────────────────────┴────────┴────────┴─────┴──────────────────────────┘
//! ```
//!
//! Like CPython (`usable_arenas`, `nfp2lasta`), a new pool is taken from the arena with the *fewest* free
//! pools, so that lightly used arenas drain and can be given back. Arenas with at least one free pool sit in
//! one of 64 buckets by their free-pool count ([`bucket_of`]); a bitmask finds the lowest non-empty bucket,
//! so taking and returning a pool are O(1) whatever the number of arenas. With up to 64 pools per arena the
//! order is exact; with more, arenas whose counts share a bucket are used in LIFO order.

use core::mem::size_of;
use core::ptr;

use crate::pool::{PoolHeader, POOL_HEADER};

/// Number of usable-arena buckets (one bit each in a `u64`).
pub(crate) const BUCKETS: usize = 64;
/// `bucket` value of an arena with no free pool (it is on no bucket list).
pub(crate) const NO_BUCKET: u32 = u32::MAX;

/// Header of an arena, stored in its pool 0 after the pool header.
#[repr(C)]
pub(crate) struct ArenaHeader {
    /// First byte of the arena (pool 0).
    pub base: *mut u8,
    /// Empty pools that have been used before, singly linked through `PoolHeader::next`.
    pub free_pools: *mut PoolHeader,
    /// Next / previous arena in the same bucket list.
    pub next: *mut ArenaHeader,
    pub prev: *mut ArenaHeader,
    /// Next / previous arena in the list of all arenas (for statistics and checks).
    pub all_next: *mut ArenaHeader,
    pub all_prev: *mut ArenaHeader,
    /// Free pools: those on `free_pools` plus the never-used ones.
    pub nfree: u32,
    /// Pools in the arena.
    pub ntotal: u32,
    /// Index of the first never-used pool; pools from it on have never been touched.
    pub next_fresh: u32,
    /// The bucket list the arena is on, or [`NO_BUCKET`] when `nfree == 0`.
    pub bucket: u32,
    /// The memory came zeroed from the OS (never-used pools are still zero).
    pub fresh: bool,
}

/// Bytes at the start of pool 0 taken by the pool and arena headers.
pub(crate) const ARENA_RESERVED: usize = POOL_HEADER + size_of::<ArenaHeader>();

/// The bucket of an arena with `nfree` (≥ 1) free pools out of `ntotal`.
#[inline]
pub(crate) const fn bucket_of(nfree: u32, ntotal: u32) -> u32 {
    (((nfree as u64 - 1) * BUCKETS as u64) / ntotal as u64) as u32
}

/// The set of arenas of one heap.
pub(crate) struct Arenas {
    buckets: [*mut ArenaHeader; BUCKETS],
    nonempty: u64,
    /// Every arena, newest first.
    pub all: *mut ArenaHeader,
    /// Arenas now held.
    pub count: usize,
    /// Wholly free arenas held (kept against map/fault thrashing; see `Heap::max_spares`). They sit in the
    /// buckets like any arena with free pools, in the emptiest ones, so they are used last.
    pub spares: usize,
}

impl Arenas {
    pub const fn new() -> Self {
        Arenas {
            buckets: [ptr::null_mut(); BUCKETS],
            nonempty: 0,
            all: ptr::null_mut(),
            count: 0,
            spares: 0,
        }
    }

    /// Lays out a new arena in `[base, base + pools * pool_size)` and makes it available.
    ///
    /// # Safety
    /// `base` is aligned to `pool_size`, the span is owned by the heap, and `pools ≥ 1`.
    pub unsafe fn add(&mut self, base: *mut u8, pools: usize, fresh: bool) -> *mut ArenaHeader {
        // Pool headers are found from block addresses alone (`pool::pool_of`), with this provenance.
        let _ = base.expose_provenance();
        let a = base.wrapping_add(POOL_HEADER).cast::<ArenaHeader>();
        // SAFETY: the span is ours; the header fits in pool 0 (a pool is ≥ 1 KiB) and is suitably aligned
        // (base is pool-aligned and POOL_HEADER is a multiple of the pointer size).
        unsafe {
            a.write(ArenaHeader {
                base,
                free_pools: ptr::null_mut(),
                next: ptr::null_mut(),
                prev: ptr::null_mut(),
                all_next: self.all,
                all_prev: ptr::null_mut(),
                nfree: pools as u32,
                ntotal: pools as u32,
                next_fresh: 0,
                bucket: NO_BUCKET,
                fresh,
            });
            if !self.all.is_null() {
                (*self.all).all_prev = a;
            }
            self.all = a;
            self.count += 1;
            self.spares += 1; // wholly free until its first pool is taken
            self.push_bucket(a);
        }
        a
    }

    /// Takes an empty pool from the arena with the fewest free pools.
    ///
    /// Returns the pool, its arena, and whether its block area is untouched zeroed OS memory; `None` when
    /// no arena has a free pool.
    ///
    /// # Safety
    /// The arena lists are well formed (as every method here keeps them).
    #[inline]
    pub unsafe fn take_pool(
        &mut self,
        pool_size: usize,
    ) -> Option<(*mut PoolHeader, *mut ArenaHeader, bool)> {
        if self.nonempty == 0 {
            return None;
        }
        let a = self.buckets[self.nonempty.trailing_zeros() as usize];
        // SAFETY: `a` is a live arena on a bucket list, so it has a free pool: a recycled one or a never-used
        // one below `ntotal`.
        unsafe {
            let (pool, fresh) = if !(*a).free_pools.is_null() {
                let p = (*a).free_pools;
                (*a).free_pools = (*p).next;
                (p, false)
            } else {
                let i = (*a).next_fresh as usize;
                (*a).next_fresh += 1;
                (
                    (*a).base.wrapping_add(i * pool_size).cast::<PoolHeader>(),
                    (*a).fresh,
                )
            };
            if (*a).nfree == (*a).ntotal {
                self.spares -= 1;
            }
            self.unlink_bucket(a);
            (*a).nfree -= 1;
            if (*a).nfree > 0 {
                self.push_bucket(a);
            }
            Some((pool, a, fresh))
        }
    }

    /// Gives an empty pool back to its arena. Returns the arena if it became wholly free and should be
    /// released to its source (it has then been removed from every list); while fewer than `max_spares`
    /// wholly free arenas are held, it is kept instead as a spare.
    ///
    /// # Safety
    /// `pool` is an initialised pool of a live arena, with no block in use, on no used list.
    pub unsafe fn return_pool(
        &mut self,
        pool: *mut PoolHeader,
        max_spares: usize,
    ) -> Option<*mut ArenaHeader> {
        // SAFETY: the pool header and its arena header are live.
        unsafe {
            let a = (*pool).arena.cast::<ArenaHeader>();
            (*pool).next = (*a).free_pools;
            (*a).free_pools = pool;
            if (*a).nfree > 0 {
                self.unlink_bucket(a);
            }
            (*a).nfree += 1;
            self.push_bucket(a);
            if (*a).nfree < (*a).ntotal {
                return None;
            }
            if self.spares < max_spares {
                self.spares += 1;
                return None;
            }
            self.remove(a);
            Some(a)
        }
    }

    /// Removes the first spare (wholly free) arena at or after `*cursor` on the all-arena list from the set
    /// and returns it, for release to its source; `*cursor` moves past it, so that a walk releasing several
    /// spares visits each arena once. `None` when no spare is left there. Start with `cursor = self.all`.
    ///
    /// # Safety
    /// `*cursor` is null or an arena of this set.
    pub unsafe fn take_spare(&mut self, cursor: &mut *mut ArenaHeader) -> Option<*mut ArenaHeader> {
        if self.spares == 0 {
            return None;
        }
        let mut a = *cursor;
        // SAFETY: arenas on the all-list are live; a wholly free one is on a bucket list too, as every arena
        // with a free pool is.
        unsafe {
            while !a.is_null() && (*a).nfree != (*a).ntotal {
                a = (*a).all_next;
            }
            if a.is_null() {
                *cursor = a;
                return None;
            }
            *cursor = (*a).all_next;
            self.spares -= 1;
            self.remove(a);
        }
        Some(a)
    }

    /// Unlinks a wholly free arena from every list.
    unsafe fn remove(&mut self, a: *mut ArenaHeader) {
        // SAFETY: `a` is live and on the bucket and all-arena lists.
        unsafe {
            self.unlink_bucket(a);
            let (n, p) = ((*a).all_next, (*a).all_prev);
            if !n.is_null() {
                (*n).all_prev = p;
            }
            if p.is_null() {
                self.all = n;
            } else {
                (*p).all_next = n;
            }
        }
        self.count -= 1;
    }

    unsafe fn push_bucket(&mut self, a: *mut ArenaHeader) {
        // SAFETY: `a` is live, has at least one free pool and is on no bucket list.
        unsafe {
            let b = bucket_of((*a).nfree, (*a).ntotal);
            let head = self.buckets[b as usize];
            (*a).bucket = b;
            (*a).prev = ptr::null_mut();
            (*a).next = head;
            if !head.is_null() {
                (*head).prev = a;
            }
            self.buckets[b as usize] = a;
            self.nonempty |= 1 << b;
        }
    }

    unsafe fn unlink_bucket(&mut self, a: *mut ArenaHeader) {
        // SAFETY: `a` is live and on the bucket list `(*a).bucket`.
        unsafe {
            let b = (*a).bucket as usize;
            let (n, p) = ((*a).next, (*a).prev);
            if !n.is_null() {
                (*n).prev = p;
            }
            if p.is_null() {
                self.buckets[b] = n;
                if n.is_null() {
                    self.nonempty &= !(1 << b);
                }
            } else {
                (*p).next = n;
            }
            (*a).bucket = NO_BUCKET;
        }
    }

    /// Head of bucket `b` (for checks).
    pub fn bucket_head(&self, b: usize) -> *mut ArenaHeader {
        self.buckets[b]
    }

    /// Whether bucket `b` is marked non-empty (for checks).
    pub fn bucket_marked(&self, b: usize) -> bool {
        self.nonempty & (1 << b) != 0
    }
}
