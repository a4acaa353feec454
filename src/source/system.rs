//! Memory from the platform allocator (`std::alloc::System`), where there is no `mmap`: Windows, wasm
//! with std. Feature `os` there means this source; `--cfg poolgc_system` selects it on Unix too, so that
//! the host tests run through it.
//!
//! Each span is one `System` allocation of its exact layout (size rounded to [`PAGE`], the caller's
//! alignment), freed whole with that same layout: no span is ever split, moved or resized in place.

use core::alloc::{GlobalAlloc, Layout};
use core::ptr::NonNull;
use core::sync::atomic::{AtomicUsize, Ordering};

/// The granule spans are rounded to (a page on every platform this source serves).
pub const PAGE: usize = 4096;

/// Bytes held from `System` by [`map`] in this process and not yet given back by [`unmap`].
pub(crate) static MAPPED_BYTES: AtomicUsize = AtomicUsize::new(0);

/// `size` bytes (a multiple of [`PAGE`]) of zeroed memory aligned to `align` (a power of two), or `None`
/// when the platform allocator refuses.
pub fn map(size: usize, align: usize) -> Option<NonNull<u8>> {
    debug_assert!(size % PAGE == 0 && align.is_power_of_two());
    let layout = Layout::from_size_align(size, align).ok()?;
    // SAFETY: `size` is a non-zero page multiple. Zeroed, as the callers take fresh spans to be (they
    // skip zeroing new pools and zeroed large blocks, as with fresh OS pages).
    let p = NonNull::new(unsafe { std::alloc::System.alloc_zeroed(layout) })?;
    MAPPED_BYTES.fetch_add(size, Ordering::Relaxed);
    Some(p)
}

/// Gives a span back to the platform allocator.
///
/// # Safety
/// `ptr` came from [`map`]`(size, align)` with these very arguments and is no longer used.
pub unsafe fn unmap(ptr: NonNull<u8>, size: usize, align: usize) {
    MAPPED_BYTES.fetch_sub(size, Ordering::Relaxed);
    // SAFETY: forwarded contract: the layout is the one `map` allocated with.
    unsafe {
        std::alloc::System.dealloc(ptr.as_ptr(), Layout::from_size_align_unchecked(size, align))
    };
}
