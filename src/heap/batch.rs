//! `Heap::alloc_batch`: many blocks of one class under one lock, for the thread caches' refills.

use super::Heap;
use crate::size_class::block_size;

impl Heap {
    /// Takes up to `n` blocks of `class` at once (a thread cache's refill), linked through their first
    /// word onto `list`; returns the new head and how many were taken. Whole runs of a pool's free list and
    /// of its never-carved blocks are taken per pool visit. Fewer than `n` (maybe 0) when the heap is out
    /// of memory, or when it would have to grow by an arena and `grow` is false: the caller may then
    /// free what it holds elsewhere and ask again.
    #[cfg_attr(not(all(feature = "std", not(loom))), allow(dead_code))]
    pub(crate) fn alloc_batch(
        &mut self,
        class: usize,
        n: u32,
        mut list: *mut u8,
        grow: bool,
    ) -> (*mut u8, u32) {
        let bs = block_size(class);
        let mut got = 0u32;
        while got < n {
            let mut pool = self.used[class];
            if pool.is_null() {
                match self.new_pool(class, grow) {
                    Some(p) => pool = p,
                    None => break,
                }
            }
            // SAFETY: pools on a used list are initialised, of this class, and not full; their free list
            // is well formed and `next_offset` leaves room for `capacity - in_use - free` more blocks.
            unsafe {
                let room = (*pool).capacity - (*pool).in_use;
                let take = room.min(n - got);
                let mut b = (*pool).free;
                let mut k = 0;
                while k < take && !b.is_null() {
                    let next = b.cast::<*mut u8>().read();
                    b.cast::<*mut u8>().write(list);
                    list = b;
                    b = next;
                    k += 1;
                }
                (*pool).free = b;
                let mut off = (*pool).next_offset as usize;
                while k < take {
                    let c = pool.cast::<u8>().wrapping_add(off);
                    c.cast::<*mut u8>().write(list);
                    list = c;
                    off += bs;
                    k += 1;
                }
                (*pool).next_offset = off as u32;
                (*pool).in_use += take;
                if (*pool).in_use == (*pool).capacity {
                    self.unlink_used(pool, class);
                }
                got += take;
            }
        }
        self.counters.allocations += got as u64;
        self.note_bytes_in_use(self.counters.bytes_in_use + got as usize * bs);
        (list, got)
    }
}
