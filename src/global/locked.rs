//! [`LockedHeap`]: what [`PoolAlloc::with_heap`] lends, the heap of an allocator that may have live
//! blocks. It reads the heap through `&Heap` and offers only the `&mut` operations that keep every live
//! block valid, so the heap itself can never be replaced, swapped or moved out from safe code (its `Drop`
//! would unmap arenas whose blocks are still in use).

use core::alloc::Layout;
use core::ops::Deref;
use core::ptr::NonNull;

use super::PoolAlloc;
use crate::heap::Heap;

/// The locked heap of a [`PoolAlloc`], lent to the closure of [`PoolAlloc::with_heap`].
///
/// Dereferences to [`Heap`] for everything that reads it ([`check`](Heap::check),
/// [`stats`](Heap::stats), [`block_state`](Heap::block_state), …); its own methods are the changes that
/// leave every live block valid. There is no `&mut Heap` to be had, so replacing the heap does not
/// compile:
///
/// ```compile_fail
/// use poolgc::{Config, Heap, PoolAlloc};
/// let a = PoolAlloc::new();
/// a.with_heap(|h| **h = Heap::new(Config::HOSTED)); // no DerefMut: would drop the live heap
/// ```
///
/// ```compile_fail
/// use poolgc::{Config, Heap, PoolAlloc};
/// let a = PoolAlloc::new();
/// let mut other = Heap::new(Config::HOSTED);
/// a.with_heap(|h| core::mem::swap(&mut **h, &mut other)); // no DerefMut either
/// ```
///
/// while reading and tuning it does:
///
/// ```
/// use poolgc::PoolAlloc;
/// let a = PoolAlloc::new();
/// a.with_heap(|h| {
///     h.set_spare_decay_ms(0);
///     h.check().unwrap();
///     assert_eq!(h.spare_decay_ms(), 0);
/// });
/// ```
pub struct LockedHeap<'a> {
    heap: &'a mut Heap,
}

impl Deref for LockedHeap<'_> {
    type Target = Heap;
    #[inline]
    fn deref(&self) -> &Heap {
        self.heap
    }
}

impl LockedHeap<'_> {
    /// [`Heap::allocate`], under the lock already held (the block may be freed through the allocator
    /// later, with the same layout).
    #[inline]
    pub fn allocate(&mut self, layout: Layout) -> Option<NonNull<u8>> {
        self.heap.allocate(layout)
    }

    /// [`Heap::allocate_zeroed`], under the lock already held.
    #[inline]
    pub fn allocate_zeroed(&mut self, layout: Layout) -> Option<NonNull<u8>> {
        self.heap.allocate_zeroed(layout)
    }

    /// [`Heap::deallocate`], under the lock already held.
    ///
    /// # Safety
    /// `ptr` is a live block of this allocator (from it or from this heap) handed out for `layout`, and
    /// is not used afterwards.
    #[inline]
    pub unsafe fn deallocate(&mut self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: forwarded contract.
        unsafe { self.heap.deallocate(ptr, layout) }
    }

    /// [`Heap::set_spare_decay_ms`].
    pub fn set_spare_decay_ms(&mut self, ms: u32) {
        self.heap.set_spare_decay_ms(ms);
    }

    /// [`Heap::trim`]: spare arenas and cached mappings back to their sources (blocks held by thread
    /// caches stay where they are; [`PoolAlloc::trim`] flushes them first).
    pub fn trim(&mut self) -> usize {
        self.heap.trim()
    }
}

impl PoolAlloc {
    /// Runs `f` with the locked heap, as a [`LockedHeap`]: reads, and the changes that keep live blocks
    /// valid.
    ///
    /// `f` must not allocate through this allocator (if it is the global one, that means: not at all):
    /// the process then aborts with a message when `f` needs the lock it runs under (with thread caches,
    /// an allocation the calling thread's cache serves may still succeed). Without `std` (no thread-local
    /// storage to tell) it deadlocks, unless with feature `critical-section`, which aborts too.
    ///
    /// ```
    /// use poolgc::PoolAlloc;
    /// let a = PoolAlloc::new();
    /// a.with_heap(|h| h.set_spare_decay_ms(0));
    /// ```
    pub fn with_heap<R>(&self, f: impl FnOnce(&mut LockedHeap<'_>) -> R) -> R {
        let mut guard = self.heap().lock();
        #[cfg(all(not(loom), not(feature = "critical-section"), feature = "std"))]
        let _lent = crate::sync::lent::Lent::new(self.heap());
        f(&mut LockedHeap { heap: &mut guard })
    }
}
