//! `Heap::stats()`: the snapshot behind [`Stats`], from the running counters and a walk of every arena.

use super::Heap;
use crate::arena::{ArenaHeader, ARENA_RESERVED};
use crate::pool::{first_offset, PoolHeader, POOL_HEADER};
use crate::stats::Stats;

impl Heap {
    /// Bytes handed out and not yet freed (as [`Stats::bytes_in_use`]), from the running counter: O(1).
    pub fn bytes_in_use(&self) -> usize {
        self.counters.bytes_in_use
    }

    /// A snapshot of the heap's state (walks every arena: O(pools)).
    pub fn stats(&self) -> Stats {
        let mut s = Stats::empty(self.config);
        let c = &self.counters;
        s.bytes_in_use = c.bytes_in_use;
        s.peak_bytes_in_use = c.peak;
        s.bytes_reserved = self.sources.reserved;
        s.arenas = self.arenas.count;
        s.spare_arenas = self.arenas.spares;
        s.cached_large_bytes = self.large.cached_bytes();
        s.arenas_allocated_total = c.arenas_total;
        s.arenas_reclaimed = c.arenas_reclaimed;
        s.arenas_highwater = c.arenas_highwater;
        s.large_blocks = c.large_blocks;
        s.large_bytes = c.large_bytes;
        s.allocations = c.allocations;
        s.deallocations = c.deallocations;
        s.regions = self.sources.nregions;
        let ps = self.config.pool_size();
        self.for_each_pool(|arena, pool| {
            // SAFETY: `for_each_pool` yields initialised pool headers of live arenas.
            let p = unsafe { &*pool };
            if p.in_use == 0 {
                return;
            }
            s.pools_in_use += 1;
            // Pool 0 of an arena also holds the arena header.
            // SAFETY: `arena` is the live arena of `pool`.
            let reserved = if unsafe { (*arena).base } == pool.cast() {
                ARENA_RESERVED
            } else {
                POOL_HEADER
            };
            let first = first_offset(reserved, p.class as usize);
            s.pool_header_bytes += reserved;
            s.alignment_bytes += first - reserved;
            s.quantization_bytes += ps - first - p.capacity as usize * p.block_size as usize;
            let cs = &mut s.classes[p.class as usize];
            cs.pools += 1;
            cs.blocks_in_use += p.in_use as usize;
            cs.blocks_available += (p.capacity - p.in_use) as usize;
        });
        let mut a = self.arenas.all;
        while !a.is_null() {
            // SAFETY: arenas on the all-list are live.
            unsafe {
                s.pools_free += (*a).nfree as usize;
                s.arena_bytes += (*a).ntotal as usize * ps;
                a = (*a).all_next;
            }
        }
        s
    }

    /// Calls `f(arena, pool)` for every pool of every arena whose header has been initialised.
    fn for_each_pool(&self, mut f: impl FnMut(*mut ArenaHeader, *mut PoolHeader)) {
        let ps = self.config.pool_size();
        let mut a = self.arenas.all;
        while !a.is_null() {
            // SAFETY: arenas on the all-list are live; pools below `next_fresh` have initialised headers.
            unsafe {
                for i in 0..(*a).next_fresh as usize {
                    f(a, (*a).base.wrapping_add(i * ps).cast());
                }
                a = (*a).all_next;
            }
        }
    }
}
