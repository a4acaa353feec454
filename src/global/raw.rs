//! The allocator's own `GlobalAlloc` methods (pools, thread caches, the large path), which the
//! `GlobalAlloc` impl calls directly or through the debug layer.

use core::alloc::Layout;

use super::PoolAlloc;
#[cfg(feature = "std")]
use crate::thread_cache;

#[cfg(feature = "debug")]
impl crate::debug::Inner for PoolAlloc {
    #[inline]
    unsafe fn inner_alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded contract.
        unsafe { self.raw_alloc(layout) }
    }

    #[inline]
    unsafe fn inner_dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded contract.
        unsafe { self.raw_dealloc(ptr, layout) }
    }
}

/// The allocator's own `GlobalAlloc` methods, under whatever layer wraps them (the debug layer).
impl PoolAlloc {
    /// `GlobalAlloc::alloc` of the pools and caches.
    ///
    /// # Safety
    /// As for `GlobalAlloc::alloc`.
    #[inline(always)]
    pub(super) unsafe fn raw_alloc(&self, layout: Layout) -> *mut u8 {
        #[cfg(feature = "std")]
        if self.cached() {
            if let Some(class) = self.pool_class(layout) {
                // SAFETY: `pool_class` returns a pool class of this heap's geometry for this layout.
                return unsafe { thread_cache::alloc(&self.cache, &self.heap, class, layout) };
            }
        }
        self.alloc_locked(layout)
    }

    /// `GlobalAlloc::dealloc` of the pools and caches.
    ///
    /// # Safety
    /// As for `GlobalAlloc::dealloc`.
    #[inline(always)]
    pub(super) unsafe fn raw_dealloc(&self, ptr: *mut u8, layout: Layout) {
        #[cfg(feature = "std")]
        if self.cached() {
            if let Some(class) = self.pool_class(layout) {
                // SAFETY: GlobalAlloc's contract: a live block of ours; a caching allocator keeps every
                // small block's layout in its class (see `realloc_cached`).
                return unsafe {
                    thread_cache::dealloc(&self.cache, &self.heap, ptr, class, layout)
                };
            }
        }
        // SAFETY: forwarded contract.
        unsafe { self.dealloc_locked(ptr, layout) }
    }

    /// `GlobalAlloc::alloc_zeroed` of the pools and caches.
    ///
    /// # Safety
    /// As for `GlobalAlloc::alloc_zeroed`.
    #[cfg_attr(feature = "debug", allow(dead_code))]
    #[inline]
    pub(super) unsafe fn raw_alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        #[cfg(feature = "std")]
        if self.cached() && self.pool_class(layout).is_some() {
            // SAFETY: GlobalAlloc's contract.
            let p = unsafe { self.raw_alloc(layout) };
            if !p.is_null() {
                // SAFETY: a fresh block of at least `layout.size()` bytes.
                unsafe { core::ptr::write_bytes(p, 0, layout.size()) };
            }
            return p;
        }
        self.alloc_zeroed_locked(layout)
    }
}
