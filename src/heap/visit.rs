//! A read-only walk over every pool of every arena, for pictures of the heap (`Heap::visit_pools`).

use super::Heap;
use crate::arena::ARENA_RESERVED;
use crate::pool::{first_offset, POOL_HEADER};

/// What [`Heap::visit_pools`] reports of one pool.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolInfo {
    /// The arena's position in the heap's list of arenas (newest first), from 0.
    pub arena: usize,
    /// The pool's position in its arena, from 0.
    pub index: usize,
    /// Pools in the arena.
    pub arena_pools: usize,
    /// The size class of its blocks, or `None` for an empty pool (free, or never used).
    pub class: Option<usize>,
    /// Bytes per block (0 for an empty pool).
    pub block_size: usize,
    /// Blocks handed out (blocks held in thread caches count as handed out).
    pub in_use: usize,
    /// Blocks that fit in the pool (0 for an empty pool).
    pub capacity: usize,
    /// Bytes at the pool's start taken by the pool header (and, in pool 0, the arena header).
    pub header_bytes: usize,
    /// Bytes between the headers and the first block, lost to the class's alignment.
    pub alignment_bytes: usize,
    /// Bytes at the pool's end too few for one more block.
    pub quantization_bytes: usize,
}

impl Heap {
    /// Calls `f` once for every pool of every arena, in arena order (newest arena first) then address
    /// order, with what it holds. Runs in O(pools), reads only, and allocates nothing; through
    /// [`PoolAlloc::visit_pools`](crate::PoolAlloc::visit_pools) it runs under the heap's lock, so `f`
    /// must not allocate from that allocator.
    ///
    /// ```
    /// use core::alloc::Layout;
    /// use poolgc::PoolAlloc;
    ///
    /// let pool = PoolAlloc::new_locked();
    /// let p = unsafe { core::alloc::GlobalAlloc::alloc(&pool, Layout::new::<[u8; 24]>()) };
    /// let mut used = 0;
    /// pool.visit_pools(|info| used += info.in_use);
    /// assert_eq!(used, 1);
    /// # unsafe { core::alloc::GlobalAlloc::dealloc(&pool, p, Layout::new::<[u8; 24]>()) };
    /// ```
    pub fn visit_pools(&self, mut f: impl FnMut(&PoolInfo)) {
        let ps = self.config.pool_size();
        let mut a = self.arenas.all;
        let mut arena = 0;
        while !a.is_null() {
            // SAFETY: arenas on the all-list are live; pools below `next_fresh` have initialised headers,
            // the ones from it on were never used (empty).
            unsafe {
                let ntotal = (*a).ntotal as usize;
                for index in 0..ntotal {
                    let mut info = PoolInfo {
                        arena,
                        index,
                        arena_pools: ntotal,
                        ..PoolInfo::default()
                    };
                    if index < (*a).next_fresh as usize {
                        let p = &*(*a)
                            .base
                            .wrapping_add(index * ps)
                            .cast::<crate::pool::PoolHeader>();
                        if p.in_use > 0 {
                            let class = p.class as usize;
                            let reserved = if index == 0 {
                                ARENA_RESERVED
                            } else {
                                POOL_HEADER
                            };
                            let first = first_offset(reserved, class);
                            info.class = Some(class);
                            info.block_size = p.block_size as usize;
                            info.in_use = p.in_use as usize;
                            info.capacity = p.capacity as usize;
                            info.header_bytes = reserved;
                            info.alignment_bytes = first - reserved;
                            info.quantization_bytes = ps - first - info.capacity * info.block_size;
                        }
                    }
                    f(&info);
                }
                a = (*a).all_next;
            }
            arena += 1;
        }
    }
}
