//! A static region handed over with `add_region`: its header and mark bitmap live in its last bytes (so a
//! region whose start is aligned keeps that alignment for its first arena); the rest is managed by a
//! `linked_list_allocator` heap, from which both arenas (pool-aligned) and large blocks are carved.

use core::alloc::Layout;
use core::mem::{align_of, size_of};
use core::ptr::{self, NonNull};

/// Header of a user-supplied region; lives at the end of the region itself, after its mark bitmap.
#[repr(C)]
pub(crate) struct Region {
    /// Next region in the heap's singly linked list (null at the end).
    pub next: *mut Region,
    /// First byte managed by `lla` (inclusive).
    pub start: usize,
    /// One past the last byte managed by `lla` (where the mark bitmap starts).
    pub end: usize,
    /// One past the region's last byte (the end of the header and any alignment slack after it).
    pub limit: usize,
    /// `start` with the provenance of the whole region: re-derives pointers that users hand back.
    mem: *mut u8,
    /// One bit per [`MARK_GRANULE`] bytes of `[start, end)` (see [`Region::marked`]), zeroed at `init`.
    marks: *mut usize,
    lla: linked_list_allocator::Heap,
}

/// Bytes of a region per mark bit: blocks larger than this never start in the same granule, so a bit
/// names at most one live block.
pub(crate) const MARK_GRANULE: usize = 512;

/// Smallest region `add_region` accepts (header + room for at least one allocation).
pub(crate) const MIN_REGION: usize = size_of::<Region>() + 256;

impl Region {
    /// Turns `[start, start + len)` into a region and returns its header.
    ///
    /// Returns `None` if the span is too small to be useful.
    ///
    /// # Safety
    /// `start..start + len` must be valid for reads and writes, unused by anything else for as long as the
    /// heap lives, and `start + len` must not overflow.
    pub unsafe fn init(start: *mut u8, len: usize) -> Option<NonNull<Region>> {
        if len < MIN_REGION {
            return None;
        }
        let begin = start.addr();
        let hdr = (begin + len - size_of::<Region>()) & !(align_of::<Region>() - 1);
        let words = (hdr - begin)
            .div_ceil(MARK_GRANULE)
            .div_ceil(usize::BITS as usize);
        let marks = hdr - words * size_of::<usize>();
        if marks < begin + 64 {
            return None;
        }
        let hdr_ptr = start.wrapping_add(hdr - begin).cast::<Region>();
        let marks_ptr = start.wrapping_add(marks - begin).cast::<usize>();
        // SAFETY: the `words` words from `marks` lie inside the caller's span, below the header; `marks` is
        // usize-aligned because `hdr` is aligned for `Region`, whose alignment is at least usize's.
        unsafe { ptr::write_bytes(marks_ptr, 0, words) };
        let mut lla = linked_list_allocator::Heap::empty();
        // SAFETY: `[start, marks)` lies inside the caller's span, is unused, and is at least 64 bytes long.
        unsafe { lla.init(start, marks - begin) };
        // SAFETY: `hdr_ptr` is aligned for `Region` and `size_of::<Region>()` bytes from it lie inside the span.
        unsafe {
            hdr_ptr.write(Region {
                next: ptr::null_mut(),
                start: begin,
                end: marks,
                limit: begin + len,
                mem: start,
                marks: marks_ptr,
                lla,
            })
        };
        NonNull::new(hdr_ptr)
    }

    /// The word and bit of the mark of the block at `addr` (inside the region).
    #[inline]
    fn mark_bit(&self, addr: usize) -> (*mut usize, usize) {
        debug_assert!(self.contains(addr));
        let g = (addr - self.start) / MARK_GRANULE;
        let bits = usize::BITS as usize;
        (self.marks.wrapping_add(g / bits), 1 << (g % bits))
    }

    /// Whether the block at `addr` is marked. A mark belongs to the one live block larger than
    /// [`MARK_GRANULE`] that starts in its granule; it is meaningful only for such blocks.
    #[inline]
    pub fn marked(&self, addr: usize) -> bool {
        let (w, bit) = self.mark_bit(addr);
        // SAFETY: `w` is a word of this region's bitmap (`addr` is inside the region).
        unsafe { *w & bit != 0 }
    }

    /// Sets or clears the mark of the block at `addr` (a live block larger than [`MARK_GRANULE`]).
    #[inline]
    pub fn set_mark(&mut self, addr: usize, on: bool) {
        let (w, bit) = self.mark_bit(addr);
        // SAFETY: `w` is a word of this region's bitmap, which only this region's owner touches.
        unsafe {
            if on {
                *w |= bit;
            } else {
                *w &= !bit;
            }
        }
    }

    /// Whether `addr` lies inside the part of this region that the allocator hands out.
    #[inline]
    pub fn contains(&self, addr: usize) -> bool {
        addr >= self.start && addr < self.end
    }

    /// A pointer to `addr` (inside the region) with the provenance of the whole region.
    #[inline]
    pub fn ptr_at(&self, addr: usize) -> *mut u8 {
        self.mem.with_addr(addr)
    }

    /// First-fit allocation from the region (arenas and large requests).
    pub fn alloc(&mut self, layout: Layout) -> Option<NonNull<u8>> {
        self.lla.allocate_first_fit(layout).ok()
    }

    /// Returns a block to the region.
    ///
    /// # Safety
    /// `ptr` must come from [`Region::alloc`] on this region with the same `layout`, and not be freed yet.
    pub unsafe fn dealloc(&mut self, ptr: NonNull<u8>, layout: Layout) {
        // The caller's pointer may carry a tag covering only the user's bytes (a `Box`'s): the first-fit
        // allocator writes a hole header through what it is given and hands the address out again later,
        // so give it the region's own provenance.
        let ptr = NonNull::new(self.mem.with_addr(ptr.as_ptr().addr())).unwrap_or(ptr);
        // SAFETY: forwarded contract.
        unsafe { self.lla.deallocate(ptr, layout) }
    }
}
