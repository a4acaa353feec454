//! `Allocator` for [`PoolAlloc`]: collections in a pool of their own.
//!
//! With feature `allocator-api2`, [`PoolAlloc`] implements `allocator_api2::alloc::Allocator` (the stable
//! mirror of the standard library's unstable trait, which hashbrown and others accept); with feature
//! `nightly`, `core::alloc::Allocator`. Through the traits' blanket impl for references, `&PoolAlloc` is an
//! allocator too, which is what a collection usually holds:
//!
//! ```
//! # #[cfg(all(feature = "allocator-api2", feature = "os"))] {
//! use allocator_api2::vec::Vec;
//! use poolgc::PoolAlloc;
//!
//! let pool = PoolAlloc::new();
//! let mut v = Vec::new_in(&pool);
//! v.extend_from_slice(&[1u32, 2, 3]);
//! assert!(pool.bytes_in_use() >= 12); // counted in the pool, not in the global allocator
//! drop(v);
//! pool.trim(); // blocks cached by this thread back to the heap, if the pool has thread caches
//! assert_eq!(pool.bytes_in_use(), 0);
//! # }
//! ```
//!
//! Zero-sized requests get a dangling, aligned pointer and never reach the pools. A returned block is
//! exactly the size asked for (not its class size), so every later call names the layout it was
//! allocated with, as `GlobalAlloc` requires.

use core::alloc::{GlobalAlloc, Layout};
use core::ptr::{self, NonNull};

use crate::PoolAlloc;

/// The block a zero-sized `layout` gets: dangling, aligned, never dereferenced.
fn dangling(layout: Layout) -> NonNull<u8> {
    // SAFETY: an alignment is a power of two, so never zero.
    unsafe { NonNull::new_unchecked(ptr::without_provenance_mut(layout.align())) }
}

impl PoolAlloc {
    /// `Allocator::allocate` / `allocate_zeroed`: `None` when the heap is exhausted.
    fn api_allocate(&self, layout: Layout, zeroed: bool) -> Option<NonNull<[u8]>> {
        if layout.size() == 0 {
            return Some(NonNull::slice_from_raw_parts(dangling(layout), 0));
        }
        // SAFETY: the layout's size is non-zero, as `GlobalAlloc` requires.
        let p = unsafe {
            if zeroed {
                self.alloc_zeroed(layout)
            } else {
                self.alloc(layout)
            }
        };
        NonNull::new(p).map(|p| NonNull::slice_from_raw_parts(p, layout.size()))
    }

    /// `Allocator::deallocate`.
    ///
    /// # Safety
    /// `ptr` came from [`api_allocate`](Self::api_allocate) or [`api_resize`](Self::api_resize) of this
    /// allocator with `layout`, and is not used again.
    unsafe fn api_deallocate(&self, ptr: NonNull<u8>, layout: Layout) {
        if layout.size() != 0 {
            // SAFETY: a non-zero-sized block of ours, allocated with exactly `layout` (blocks are
            // handed out at the size asked for).
            unsafe { self.dealloc(ptr.as_ptr(), layout) }
        }
    }

    /// `Allocator::grow`, `grow_zeroed` and `shrink`: `realloc` when the alignment stays, else a new
    /// block, a copy and a free. On `None` the old block is untouched and still live.
    ///
    /// # Safety
    /// `ptr` is a live block of this allocator allocated with `old` (as for
    /// [`api_deallocate`](Self::api_deallocate)).
    unsafe fn api_resize(
        &self,
        ptr: NonNull<u8>,
        old: Layout,
        new: Layout,
        zeroed: bool,
    ) -> Option<NonNull<[u8]>> {
        if old.size() != 0 && new.size() != 0 && old.align() == new.align() {
            // SAFETY: a live block of `old`; `new.size()` is non-zero and, being a `Layout`'s size,
            // does not overflow `isize` when rounded up to the alignment.
            let p = NonNull::new(unsafe { self.realloc(ptr.as_ptr(), old, new.size()) })?;
            if zeroed && new.size() > old.size() {
                // SAFETY: the block holds `new.size()` bytes; the first `old.size()` were kept.
                unsafe { ptr::write_bytes(p.as_ptr().add(old.size()), 0, new.size() - old.size()) };
            }
            return Some(NonNull::slice_from_raw_parts(p, new.size()));
        }
        let block = self.api_allocate(new, zeroed)?;
        // SAFETY: two distinct live blocks (or a zero-length copy from a dangling one), each at least
        // as long as the bytes copied; the old block is then freed with its own layout.
        unsafe {
            ptr::copy_nonoverlapping(
                ptr.as_ptr(),
                block.cast::<u8>().as_ptr(),
                old.size().min(new.size()),
            );
            self.api_deallocate(ptr, old);
        }
        Some(block)
    }
}

/// The `Allocator` impl, written once for both traits (same methods, same contract).
macro_rules! impl_allocator {
    ($feature:literal) => {
        // SAFETY: blocks come from the pool allocator's `GlobalAlloc` methods, which hand out disjoint
        // blocks that stay valid until freed; each is exactly the size asked for, so the layout the caller
        // gives back is the one it was allocated with. The heap is reached through `&self` and its lock,
        // and nothing records the allocator's address, so a moved allocator (or a reference to it) serves
        // the same blocks. Zero-sized blocks are dangling and never passed to `GlobalAlloc`.
        #[cfg_attr(docsrs, doc(cfg(feature = $feature)))]
        unsafe impl Allocator for PoolAlloc {
            #[inline]
            fn allocate(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
                self.api_allocate(layout, false).ok_or(AllocError)
            }

            #[inline]
            fn allocate_zeroed(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
                self.api_allocate(layout, true).ok_or(AllocError)
            }

            #[inline]
            unsafe fn deallocate(&self, ptr: NonNull<u8>, layout: Layout) {
                // SAFETY: the trait's contract: `ptr` is a live block of ours and `layout` fits it,
                // which for blocks of exactly the requested size means it is that layout.
                unsafe { self.api_deallocate(ptr, layout) }
            }

            #[inline]
            unsafe fn grow(
                &self,
                ptr: NonNull<u8>,
                old: Layout,
                new: Layout,
            ) -> Result<NonNull<[u8]>, AllocError> {
                // SAFETY: as for `deallocate`.
                unsafe { self.api_resize(ptr, old, new, false) }.ok_or(AllocError)
            }

            #[inline]
            unsafe fn grow_zeroed(
                &self,
                ptr: NonNull<u8>,
                old: Layout,
                new: Layout,
            ) -> Result<NonNull<[u8]>, AllocError> {
                // SAFETY: as for `deallocate`.
                unsafe { self.api_resize(ptr, old, new, true) }.ok_or(AllocError)
            }

            #[inline]
            unsafe fn shrink(
                &self,
                ptr: NonNull<u8>,
                old: Layout,
                new: Layout,
            ) -> Result<NonNull<[u8]>, AllocError> {
                // SAFETY: as for `deallocate`.
                unsafe { self.api_resize(ptr, old, new, false) }.ok_or(AllocError)
            }
        }
    };
}

/// `allocator_api2::alloc::Allocator` for [`PoolAlloc`] (and `&PoolAlloc`).
#[cfg(feature = "allocator-api2")]
mod api2 {
    use super::*;
    use allocator_api2::alloc::{AllocError, Allocator};

    impl_allocator!("allocator-api2");
}

/// `core::alloc::Allocator` for [`PoolAlloc`] (and `&PoolAlloc`). With feature `allocator-api2` too,
/// `nightly` turns on allocator-api2's own `nightly`, which makes its trait this one: one impl serves.
#[cfg(all(feature = "nightly", not(feature = "allocator-api2")))]
mod core_api {
    use super::*;
    use core::alloc::{AllocError, Allocator};

    impl_allocator!("nightly");
}
