//! Freed large region blocks kept for reuse, by size class: eight bins per doubling from 513 B to
//! 256 KiB, so a block is at most 12.5% larger than asked for. A binned block goes back to its region's
//! first-fit allocator when a request finds no room there (or on `trim`), where it coalesces again.

use core::alloc::Layout;
use core::ptr::{self, NonNull};

use crate::source::{Region, Sources};

/// Alignment of every binned block (requests aligned more than this bypass the bins).
pub(crate) const BIN_ALIGN: usize = 16;
/// Smallest binned size: large requests start above the small classes.
const BIN_MIN: usize = 513;
/// Largest binned size; bigger region blocks go straight back to the first-fit allocator.
pub(crate) const BIN_MAX: usize = 256 * 1024;
/// Bins per doubling of the size.
const BINS_PER_DOUBLING: usize = 8;
/// Number of bins: eight per doubling from 512 (exclusive) to [`BIN_MAX`].
const NUM_BINS: usize = (BIN_MAX.trailing_zeros() as usize - 9) * BINS_PER_DOUBLING;

/// The bin of a request of `size` bytes (`BIN_MIN..=BIN_MAX`): eight per doubling, so a block is at most
/// 12.5% larger than asked for.
#[inline]
pub(crate) const fn bin_of(size: usize) -> usize {
    debug_assert!(size >= BIN_MIN && size <= BIN_MAX);
    let s = size - 1;
    let p = (usize::BITS - 1 - s.leading_zeros()) as usize; // ≥ 9
    (p - 9) * BINS_PER_DOUBLING + (s >> (p - 3)) - BINS_PER_DOUBLING
}

/// Block size of bin `k`: the largest request it serves.
#[inline]
pub(crate) const fn bin_size(k: usize) -> usize {
    let p = k / BINS_PER_DOUBLING + 9;
    (k % BINS_PER_DOUBLING + BINS_PER_DOUBLING + 1) << (p - 3)
}

/// Whether a large request of `layout` is served through the bins when it comes from a region.
#[inline]
pub(crate) const fn binnable(layout: Layout) -> bool {
    layout.align() <= BIN_ALIGN && layout.size() >= BIN_MIN && layout.size() <= BIN_MAX
}

/// Heads of the bins: lists threaded through the blocks' first word. Every block on bin `k` is a free
/// region block allocated as `Layout(bin_size(k), BIN_ALIGN)`.
pub(crate) struct Bins {
    heads: [*mut u8; NUM_BINS],
    /// Blocks on the bins.
    pub count: usize,
}

impl Bins {
    pub const fn new() -> Self {
        Bins {
            heads: [ptr::null_mut(); NUM_BINS],
            count: 0,
        }
    }

    /// Takes a block of bin `k`, if one waits.
    #[inline]
    pub fn pop(&mut self, k: usize) -> Option<NonNull<u8>> {
        let head = NonNull::new(self.heads[k])?;
        // SAFETY: a binned block is a free region block of `bin_size(k)` bytes owned by us; its first word
        // holds the next block of the same bin.
        self.heads[k] = unsafe { head.as_ptr().cast::<*mut u8>().read() };
        self.count -= 1;
        Some(head)
    }

    /// Puts a freed block on bin `k`.
    ///
    /// # Safety
    /// `block` is a free region block allocated as `Layout(bin_size(k), BIN_ALIGN)`, with the provenance of
    /// its region, used by nobody.
    #[inline]
    pub unsafe fn push(&mut self, k: usize, block: *mut u8) {
        // SAFETY: the block is ours, at least `bin_size(k)` ≥ 513 bytes and 16-aligned.
        unsafe { block.cast::<*mut u8>().write(self.heads[k]) };
        self.heads[k] = block;
        self.count += 1;
    }

    /// Gives every binned block back to its region's first-fit allocator (which coalesces it with its free
    /// neighbours); returns their bytes.
    pub fn flush(&mut self, src: &mut Sources) -> usize {
        let mut bytes = 0;
        for k in 0..NUM_BINS {
            let mut b = core::mem::replace(&mut self.heads[k], ptr::null_mut());
            while !b.is_null() {
                // SAFETY: binned blocks are free region blocks of `bin_size(k)` bytes, allocated with
                // `Layout(bin_size(k), BIN_ALIGN)`; the next link is read before the block is given back.
                unsafe {
                    let next = b.cast::<*mut u8>().read();
                    let r: *mut Region = src.region_of(b.addr());
                    debug_assert!(!r.is_null());
                    let layout = Layout::from_size_align_unchecked(bin_size(k), BIN_ALIGN);
                    (*r).dealloc(NonNull::new_unchecked(b), layout);
                    b = next;
                }
                bytes += bin_size(k);
            }
        }
        self.count = 0;
        bytes
    }

    /// Verifies the bins: every binned block inside a region, 16-aligned, and as many as counted. Returns
    /// the address of the first bad block (0 for a count mismatch).
    pub fn check(&self, src: &Sources) -> Result<(), usize> {
        let mut n = 0;
        for (k, &head) in self.heads.iter().enumerate() {
            let mut b = head;
            while !b.is_null() {
                n += 1;
                let r = src.region_of(b.addr());
                // SAFETY: `r` is null or a live region header.
                if n > self.count
                    || r.is_null()
                    || b.addr() % BIN_ALIGN != 0
                    || b.addr() + bin_size(k) > unsafe { (*r).end }
                {
                    return Err(b.addr());
                }
                // SAFETY: a binned block inside a region: its first word is the next link.
                b = unsafe { b.cast::<*mut u8>().read() };
            }
        }
        if n != self.count {
            return Err(0);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_cover_every_binned_size() {
        assert_eq!(NUM_BINS, 72);
        assert_eq!(bin_size(NUM_BINS - 1), BIN_MAX);
        let step = if cfg!(miri) { 97 } else { 1 };
        for size in (BIN_MIN..=BIN_MAX).step_by(step).chain([BIN_MAX]) {
            let k = bin_of(size);
            assert!(k < NUM_BINS && bin_size(k) >= size, "size {size}");
            let prev = if k == 0 { BIN_MIN - 1 } else { bin_size(k - 1) };
            assert!(prev < size, "size {size} not in the smallest bin");
            assert!(bin_size(k) % BIN_ALIGN == 0 && bin_size(k) * 8 <= size * 9 + 8 * 64);
        }
    }
}
