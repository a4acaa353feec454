//! `Heap::check()`: a full consistency scan, and `Heap::block_state()` for tests and debugging.
//!
//! The scan allocates nothing and bounds every list walk, so a corrupted heap yields an error rather than
//! a hang. It is O(pools × blocks per pool); tests call it after every step.

use core::fmt;

use super::Heap;
use crate::arena::ARENA_RESERVED;
use crate::arena::{bucket_of, ArenaHeader, BUCKETS, NO_BUCKET};
use crate::pool::{first_offset, PoolHeader, POOL_HEADER};
use crate::size_class::{block_size, NUM_POOL_CLASSES};

/// An invariant that `Heap::check` found broken: what, and the address of the structure concerned.
///
/// It is a `core::error::Error`, so `?` turns it into a `Box<dyn Error>`:
///
/// ```
/// use poolgc::PoolAlloc;
///
/// static ALLOC: PoolAlloc = PoolAlloc::new();
///
/// fn main() -> Result<(), Box<dyn std::error::Error>> {
///     ALLOC.check()?;
///     Ok(())
/// }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct HeapError {
    /// The invariant, in words.
    pub what: &'static str,
    /// Address of the pool, arena or block concerned (0 when global).
    pub addr: usize,
}

impl fmt::Display for HeapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "heap corrupt: {} (at {:#x})", self.what, self.addr)
    }
}

impl core::error::Error for HeapError {}

/// What a small-block address is, as far as the heap can tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockState {
    /// Handed out and not freed.
    InUse,
    /// On its pool's free list, or in an empty pool.
    Free,
    /// Past the pool's carving point: never handed out since the pool was set up.
    NeverUsed,
    /// Inside a pool but not at a block boundary (a header or an interior pointer).
    NotABlock,
    /// Not inside any arena of this heap (a large block, or foreign memory).
    NotInArena,
}

fn fail<T>(what: &'static str, addr: usize) -> Result<T, HeapError> {
    Err(HeapError { what, addr })
}

impl Heap {
    /// Verifies every invariant of the heap: each arena's lists, counts and bucket; each pool's class,
    /// capacity, carving point and free list (every free block inside its pool, at a block boundary, below
    /// the carving point, listed once; `in_use + free == carved`); every partly used pool on exactly its
    /// class's used list and no other pool there; the byte counters agreeing with the pools.
    pub fn check(&self) -> Result<(), HeapError> {
        let ps = self.config.pool_size();
        let mut partial = [0usize; NUM_POOL_CLASSES];
        let mut small_bytes = 0usize;
        let mut arenas = 0usize;
        let mut with_free = 0usize;
        let mut spares = 0usize;
        let mut prev: *mut ArenaHeader = core::ptr::null_mut();
        let mut a = self.arenas.all;
        while !a.is_null() {
            arenas += 1;
            if arenas > self.arenas.count {
                return fail(
                    "more arenas on the all-arena list than counted (cycle?)",
                    a.addr(),
                );
            }
            // SAFETY: arenas reachable from the all-list are live (the walk is bounded by the count).
            let ar = unsafe { &*a };
            if ar.nfree == ar.ntotal {
                spares += 1;
            }
            if ar.all_prev != prev {
                return fail("all-arena list back link broken", a.addr());
            }
            if ar.base.addr() & (ps - 1) != 0 || ar.base.wrapping_add(POOL_HEADER).cast() != a {
                return fail("arena not pool-aligned or header misplaced", a.addr());
            }
            if ar.ntotal == 0 || ar.next_fresh > ar.ntotal || ar.nfree > ar.ntotal {
                return fail("arena pool counts out of range", a.addr());
            }
            // The recycled-pool list.
            let mut recycled = 0u32;
            let mut p = ar.free_pools;
            while !p.is_null() {
                recycled += 1;
                let off = p.addr().wrapping_sub(ar.base.addr());
                if recycled > ar.ntotal || off % ps != 0 || off / ps >= ar.next_fresh as usize {
                    return fail(
                        "free-pool list entry outside its arena's used pools",
                        p.addr(),
                    );
                }
                // SAFETY: the pool lies in a used pool slot of this live arena, so its header is initialised.
                let pool = unsafe { &*p };
                if pool.in_use != 0 {
                    return fail("pool on the free-pool list has blocks in use", p.addr());
                }
                p = pool.next;
            }
            if ar.nfree != recycled + (ar.ntotal - ar.next_fresh) {
                return fail("arena free-pool count disagrees with its lists", a.addr());
            }
            let want = if ar.nfree == 0 {
                NO_BUCKET
            } else {
                bucket_of(ar.nfree, ar.ntotal)
            };
            if ar.bucket != want {
                return fail(
                    "arena in the wrong bucket for its free-pool count",
                    a.addr(),
                );
            }
            if ar.nfree > 0 {
                with_free += 1;
            }
            // Every initialised pool.
            let mut empty = 0u32;
            for i in 0..ar.next_fresh as usize {
                let p = ar.base.wrapping_add(i * ps).cast::<PoolHeader>();
                // SAFETY: pools below next_fresh have initialised headers.
                let pool = unsafe { &*p };
                // Empty pools too: an empty pool's header keeps its last free list until the pool is reused,
                // and that list must still be well formed.
                let reserved = if i == 0 { ARENA_RESERVED } else { POOL_HEADER };
                small_bytes += self.check_pool(p, pool, a, reserved)?;
                if pool.in_use == 0 {
                    empty += 1;
                } else if pool.in_use < pool.capacity {
                    partial[pool.class as usize] += 1;
                }
            }
            if empty != recycled {
                return fail("empty pools and the free-pool list disagree", a.addr());
            }
            prev = a;
            a = ar.all_next;
        }
        if arenas != self.arenas.count {
            return fail("arena count disagrees with the all-arena list", 0);
        }
        self.check_buckets(with_free)?;
        for (class, &want) in partial.iter().enumerate() {
            self.check_used_list(class, want)?;
        }
        if spares != self.arenas.spares {
            return fail("spare count disagrees with the wholly free arenas", spares);
        }
        if let Err((what, addr)) = self.large.check(&self.sources) {
            return fail(what, addr);
        }
        let c = &self.counters;
        if small_bytes + c.large_bytes != c.bytes_in_use {
            return fail("bytes_in_use disagrees with the pools and large blocks", 0);
        }
        if c.peak < c.bytes_in_use {
            return fail("peak below bytes in use", 0);
        }
        Ok(())
    }

    /// Checks one initialised pool (in use or empty); returns the bytes its blocks in use hold.
    fn check_pool(
        &self,
        p: *mut PoolHeader,
        pool: &PoolHeader,
        arena: *mut ArenaHeader,
        reserved: usize,
    ) -> Result<usize, HeapError> {
        let ps = self.config.pool_size();
        let class = pool.class as usize;
        if class >= NUM_POOL_CLASSES {
            return fail("pool with an invalid size class", p.addr());
        }
        if pool.arena != arena.cast() {
            return fail("pool points to the wrong arena", p.addr());
        }
        let bs = block_size(class);
        let first = first_offset(reserved, class);
        if pool.capacity as usize != (ps - first) / bs || pool.in_use > pool.capacity {
            return fail("pool capacity or in-use count wrong", p.addr());
        }
        let next = pool.next_offset as usize;
        if next < first || next > first + pool.capacity as usize * bs || (next - first) % bs != 0 {
            return fail("pool carving point out of range", p.addr());
        }
        let carved = (next - first) / bs;
        // One bit per block, to catch a block listed twice (pools of up to 4096 blocks; bigger ones are
        // checked by count only).
        let mut seen = [0u64; 64];
        let mut free = 0usize;
        let mut b = pool.free;
        while !b.is_null() {
            free += 1;
            let off = b.addr().wrapping_sub(p.addr());
            if free > carved || off < first || off >= next || (off - first) % bs != 0 {
                return fail("free block outside its pool's carved blocks", b.addr());
            }
            let k = (off - first) / bs;
            if k < 64 * 64 {
                if seen[k / 64] & (1 << (k % 64)) != 0 {
                    return fail("block on its pool's free list twice", b.addr());
                }
                seen[k / 64] |= 1 << (k % 64);
            }
            // SAFETY: `b` is a free block inside the pool; its first word is the next free block.
            b = unsafe { b.cast::<*mut u8>().read() };
        }
        if pool.in_use as usize + free != carved {
            return fail("in-use + free blocks differ from carved blocks", p.addr());
        }
        Ok(pool.in_use as usize * bs)
    }

    fn check_buckets(&self, with_free: usize) -> Result<(), HeapError> {
        let mut total = 0;
        for b in 0..BUCKETS {
            let mut a = self.arenas.bucket_head(b);
            if a.is_null() == self.arenas.bucket_marked(b) {
                return fail("bucket bitmask disagrees with the bucket list", b);
            }
            let mut prev = core::ptr::null_mut();
            while !a.is_null() {
                total += 1;
                if total > with_free {
                    return fail(
                        "more arenas on bucket lists than arenas with free pools",
                        a.addr(),
                    );
                }
                // SAFETY: arenas on bucket lists are live (walk bounded above).
                let ar = unsafe { &*a };
                if ar.bucket as usize != b || ar.prev != prev {
                    return fail("arena on a bucket list it does not belong to", a.addr());
                }
                prev = a;
                a = ar.next;
            }
        }
        if total != with_free {
            return fail("an arena with free pools is missing from the buckets", 0);
        }
        Ok(())
    }

    fn check_used_list(&self, class: usize, want: usize) -> Result<(), HeapError> {
        let mut n = 0;
        let mut prev = core::ptr::null_mut();
        let mut p = self.used[class];
        while !p.is_null() {
            n += 1;
            if n > want {
                return fail(
                    "used list holds a pool that is not partly used (or a cycle)",
                    p.addr(),
                );
            }
            // SAFETY: on a healthy heap every used-list entry is a live pool; on a corrupt one this scan may
            // read a bad pointer before the count bound stops it (it is a debugging aid, like any heap walk).
            let pool = unsafe { &*p };
            if pool.class as usize != class
                || pool.prev != prev
                || pool.in_use == 0
                || pool.in_use >= pool.capacity
            {
                return fail(
                    "used list entry of the wrong class, state or back link",
                    p.addr(),
                );
            }
            prev = p;
            p = pool.next;
        }
        if n != want {
            return fail(
                "a partly used pool is missing from its class's used list",
                class,
            );
        }
        Ok(())
    }

    /// What `ptr` is, as far as the pools can tell (O(arenas + blocks of its pool)).
    pub fn block_state(&self, ptr: *const u8) -> BlockState {
        let ps = self.config.pool_size();
        let addr = ptr.addr();
        let mut a = self.arenas.all;
        while !a.is_null() {
            // SAFETY: arenas on the all-list are live.
            let ar = unsafe { &*a };
            let base = ar.base.addr();
            if addr >= base && addr < base + ar.ntotal as usize * ps {
                let i = (addr - base) / ps;
                if i >= ar.next_fresh as usize {
                    return BlockState::NeverUsed;
                }
                let p = ar.base.wrapping_add(i * ps).cast::<PoolHeader>();
                // SAFETY: pools below next_fresh have initialised headers.
                let pool = unsafe { &*p };
                let reserved = if i == 0 { ARENA_RESERVED } else { POOL_HEADER };
                let (first, bs) = (
                    first_offset(reserved, pool.class as usize),
                    block_size(pool.class as usize),
                );
                let off = addr - p.addr();
                if off < first
                    || (off - first) % bs != 0
                    || (off - first) / bs >= pool.capacity as usize
                {
                    return BlockState::NotABlock;
                }
                if pool.in_use == 0 {
                    return BlockState::Free;
                }
                if off >= pool.next_offset as usize {
                    return BlockState::NeverUsed;
                }
                let mut b = pool.free;
                while !b.is_null() {
                    if b.addr() == addr {
                        return BlockState::Free;
                    }
                    // SAFETY: free-list entries are free blocks of this pool.
                    b = unsafe { b.cast::<*mut u8>().read() };
                }
                return BlockState::InUse;
            }
            a = ar.all_next;
        }
        BlockState::NotInArena
    }
}
