//! Large requests: bigger than the largest size class, or aligned beyond it.
//!
//! They are served straight from the heap's [`Sources`]: inside the static regions, a freed block of the
//! same size class (segregated bins, eight per doubling up to 256 KiB) or first fit
//! (`linked_list_allocator`), then, when hosted, a private OS mapping per block (as glibc does above its
//! mmap threshold). An OS block grows and shrinks in place by whole pages, and on Linux moves with
//! `mremap` instead of being copied.

use core::alloc::Layout;
use core::ptr::NonNull;

use crate::source::Sources;

/// Allocates a large block (`zeroed`: the caller will zero it, so a fresh OS mapping is preferred above
/// a size). Returns it and whether it is zeroed OS memory.
#[inline]
pub(crate) fn alloc(
    src: &mut Sources,
    layout: Layout,
    zeroed: bool,
) -> Option<(NonNull<u8>, bool)> {
    src.alloc_large(layout, zeroed)
}

/// Frees a large block.
///
/// # Safety
/// `ptr` came from [`alloc`] with `layout` (or was resized to it by [`resize`]) and is no longer used.
#[inline]
pub(crate) unsafe fn dealloc(src: &mut Sources, ptr: NonNull<u8>, layout: Layout) {
    // SAFETY: forwarded contract.
    unsafe { src.dealloc_large(ptr, layout) }
}

/// Tries to resize a large block without copying. An OS block stays in place when its page count does not
/// change, grows into the cached range that follows it, gives a shrunk tail to the cache, or moves with
/// `mremap` on Linux. Returns `None` if the caller must allocate, copy and free instead (also when a
/// cached range can take the grown block: copying beats faulting in fresh pages); the block is then
/// untouched.
///
/// # Safety
/// `ptr` is a live large block of `layout`; `new_size` is non-zero and, rounded to `layout.align()`,
/// does not overflow `isize`.
pub(crate) unsafe fn resize(
    src: &mut Sources,
    ptr: NonNull<u8>,
    layout: Layout,
    new_size: usize,
) -> Option<NonNull<u8>> {
    #[cfg(all(feature = "os", unix))]
    {
        use crate::source::{os, os_size};
        if !src.region_of(ptr.as_ptr().addr()).is_null() {
            return None;
        }
        let old = os_size(layout.size())?;
        let new = os_size(new_size)?;
        if old == new {
            return Some(ptr);
        }
        if layout.align() > os::page_size() {
            return None;
        }
        // SAFETY: an OS block of alignment ≤ page size is one whole range of `old` bytes inside one of our
        // mappings, as the contract of `resize_os` asks.
        unsafe { src.resize_os(ptr, old, new) }
    }
    #[cfg(not(all(feature = "os", unix)))]
    {
        let _ = (src, ptr, layout, new_size);
        None
    }
}
