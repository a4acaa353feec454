//! Where memory comes from: static regions handed over by the user, and (feature `os`) the OS.
//!
//! A [`Region`] is a span of memory the user gave to the heap with `add_region`. Its own header lives in its
//! last bytes (so a region whose start is aligned keeps that alignment for its first arena); the rest is
//! managed by a `linked_list_allocator` heap, from which both arenas (pool-aligned) and large requests are
//! carved. A wholly free arena goes back to that allocator, so memory flows between small and large use.
//! Large blocks freed inside a region wait on per-size-class bins ([`bin_of`]) for reuse, and go back to the
//! first-fit allocator when a request finds no room (or on `trim`).
//!
//! Under `os`, [`os`] maps arenas and large blocks with `mmap` and returns them with `munmap`.

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

/// The decay of memory kept for reuse (spare arenas, cached mappings).
pub(crate) mod decay;
/// Freed large OS mappings kept for reuse.
#[cfg(all(feature = "os", unix))]
mod mapcache;
/// Memory mappings from the OS.
#[cfg(all(feature = "os", unix))]
pub(crate) mod os;

/// Largest zeroed large request served from the large-block cache (whose memory must then be zeroed by
/// hand); larger ones take fresh, already zeroed OS pages.
pub(crate) const ZEROED_REUSE_MAX: usize = 256 * 1024;

/// Why `add_region` refused a region.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegionError {
    /// Shorter than the minimum (a header plus room for one allocation).
    TooSmall,
    /// Overlaps a region already handed over.
    Overlaps,
    /// `start + len` wraps around the address space.
    Wraps,
}

impl core::fmt::Display for RegionError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            RegionError::TooSmall => "region too small to hold its header and one allocation",
            RegionError::Overlaps => "region overlaps a region already handed over",
            RegionError::Wraps => "region wraps around the end of the address space",
        })
    }
}

/// All the memory sources of one heap: its regions, and the OS when allowed.
pub(crate) struct Sources {
    /// Regions, newest first.
    pub regions: *mut Region,
    /// Number of regions.
    pub nregions: usize,
    /// Whether to map memory from the OS when the regions cannot serve (feature `os`).
    pub use_os: bool,
    /// Bytes held from sources: region sizes plus live OS mappings (the large-block cache included).
    pub reserved: usize,
    /// Freed OS mappings kept for reuse (see [`mapcache`]).
    #[cfg(all(feature = "os", unix))]
    cache: mapcache::MapCache,
    /// Freed large region blocks kept for reuse, by size class (see [`bin_of`]): heads of lists threaded
    /// through the blocks' first word. Every block on bin `k` came from a region as
    /// `Layout(bin_size(k), BIN_ALIGN)`.
    bins: [*mut u8; NUM_BINS],
    /// Blocks on the bins.
    pub binned: usize,
}

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

impl Sources {
    pub const fn new(use_os: bool) -> Self {
        Sources {
            regions: ptr::null_mut(),
            nregions: 0,
            use_os: use_os && cfg!(all(feature = "os", unix)),
            reserved: 0,
            #[cfg(all(feature = "os", unix))]
            cache: mapcache::MapCache::new(decay::DECAY_MS),
            bins: [ptr::null_mut(); NUM_BINS],
            binned: 0,
        }
    }

    /// Adds `[start, start + len)` as a region.
    ///
    /// # Safety
    /// See [`Region::init`].
    pub unsafe fn add_region(&mut self, start: *mut u8, len: usize) -> Result<(), RegionError> {
        let begin = start.addr();
        let end = begin.checked_add(len).ok_or(RegionError::Wraps)?;
        let mut r = self.regions;
        while !r.is_null() {
            // SAFETY: regions on the list are live headers.
            let (s, e) = unsafe { ((*r).start, (*r).limit) };
            if begin < e && s < end {
                return Err(RegionError::Overlaps);
            }
            // SAFETY: as above.
            r = unsafe { (*r).next };
        }
        // SAFETY: forwarded contract.
        let region = unsafe { Region::init(start, len) }.ok_or(RegionError::TooSmall)?;
        // SAFETY: `region` was just initialised and is ours.
        unsafe { (*region.as_ptr()).next = self.regions };
        self.regions = region.as_ptr();
        self.nregions += 1;
        self.reserved += len;
        Ok(())
    }

    /// The region whose allocatable part contains `addr`, or null.
    #[inline]
    pub fn region_of(&self, addr: usize) -> *mut Region {
        let mut r = self.regions;
        // SAFETY: regions on the list are live headers.
        while !r.is_null() && !unsafe { (*r).contains(addr) } {
            r = unsafe { (*r).next };
        }
        r
    }

    /// Allocates a span for `layout`: first fit over the regions (after giving the binned blocks back to
    /// them if none has room), then (when allowed) a fresh OS mapping of `layout.size()` rounded up to whole
    /// pages, or, when `reuse` allows (large blocks, see [`alloc_large`](Sources::alloc_large); never
    /// arenas), a cached one. Returns the span and whether it is zeroed OS memory.
    pub fn alloc(&mut self, layout: Layout, reuse: bool) -> Option<(NonNull<u8>, bool)> {
        if let Some(p) = self.alloc_regions(layout) {
            return Some((p, false));
        }
        if self.binned > 0 && self.flush_bins() > 0 {
            if let Some(p) = self.alloc_regions(layout) {
                return Some((p, false));
            }
        }
        self.alloc_os(layout, reuse)
    }

    /// First fit over the regions.
    fn alloc_regions(&mut self, layout: Layout) -> Option<NonNull<u8>> {
        self.alloc_regions_in(layout).map(|(p, _)| p)
    }

    /// First fit over the regions; returns the block and its region.
    fn alloc_regions_in(&mut self, layout: Layout) -> Option<(NonNull<u8>, *mut Region)> {
        let mut r = self.regions;
        while !r.is_null() {
            // SAFETY: regions on the list are live headers, and we have `&mut self`.
            unsafe {
                if let Some(p) = (*r).alloc(layout) {
                    return Some((p, r));
                }
                r = (*r).next;
            }
        }
        None
    }

    /// Allocates a large block: a binned region block of its size class if one is waiting, else a region
    /// block of the class size (so that it can be binned when freed), else as [`alloc`](Sources::alloc).
    /// A `zeroed` request above [`ZEROED_REUSE_MAX`] takes a fresh OS mapping rather than a cached one
    /// (fresh pages need no zeroing, and untouched ones stay unmapped).
    pub fn alloc_large(&mut self, layout: Layout, zeroed: bool) -> Option<(NonNull<u8>, bool)> {
        let reuse = !zeroed || layout.size() <= ZEROED_REUSE_MAX;
        if self.regions.is_null() || !binnable(layout) {
            return self.alloc(layout, reuse);
        }
        let k = bin_of(layout.size());
        let head = self.bins[k];
        if !head.is_null() {
            // SAFETY: a binned block is a free region block of `bin_size(k)` bytes owned by us; its first
            // word holds the next binned block of the same bin.
            self.bins[k] = unsafe { head.cast::<*mut u8>().read() };
            self.binned -= 1;
            // SAFETY: binned blocks are inside regions, never at address 0.
            return Some((unsafe { NonNull::new_unchecked(head) }, false));
        }
        // SAFETY: `bin_size(k)` ≥ the request, a valid size for the power-of-two BIN_ALIGN.
        let class = unsafe { Layout::from_size_align_unchecked(bin_size(k), BIN_ALIGN) };
        if let Some(p) = self.alloc_regions(class) {
            return Some((p, false));
        }
        if self.binned > 0 && self.flush_bins() > 0 {
            if let Some(p) = self.alloc_regions(class) {
                return Some((p, false));
            }
        }
        // The class size does not fit but the exact size may: such a block is marked in its region so that
        // `dealloc_large` gives it back with its own layout. Else the OS.
        if let Some((p, r)) = self.alloc_regions_in(layout) {
            // SAFETY: `r` is the live region header that served `p`.
            unsafe { (*r).set_mark(p.as_ptr().addr(), true) };
            return Some((p, false));
        }
        self.alloc_os(layout, reuse)
    }

    /// Frees a large block from [`alloc_large`](Sources::alloc_large).
    ///
    /// # Safety
    /// `ptr` came from `alloc_large(layout)` on these sources and is no longer used.
    pub unsafe fn dealloc_large(&mut self, ptr: NonNull<u8>, layout: Layout) {
        let r = self.region_of(ptr.as_ptr().addr());
        if r.is_null() {
            // SAFETY: not in a region, so an OS mapping made with `layout`.
            return unsafe { self.dealloc_os(ptr, layout, true) };
        }
        if !binnable(layout) {
            // SAFETY: a non-binnable region block was allocated with exactly `layout`.
            return unsafe { (*r).dealloc(ptr, layout) };
        }
        let k = bin_of(layout.size());
        // SAFETY: `r` is a live region header; its `mem` has provenance over the whole region.
        let block = unsafe { (*r).mem }.with_addr(ptr.as_ptr().addr());
        // SAFETY: `r` is a live region header containing the block.
        if unsafe { (*r).marked(block.addr()) } {
            // SAFETY: as above; a marked block was allocated with its exact layout (the class size did not
            // fit), and its mark is cleared before its room can serve another block.
            unsafe {
                (*r).set_mark(block.addr(), false);
                return (*r).dealloc(ptr, layout);
            }
        }
        // SAFETY: the block is ours again, at least `bin_size(k)` ≥ 513 bytes and 16-aligned.
        unsafe { block.cast::<*mut u8>().write(self.bins[k]) };
        self.bins[k] = block;
        self.binned += 1;
    }

    /// Gives every binned block back to its region's first-fit allocator (which coalesces it with its free
    /// neighbours); returns their bytes.
    pub fn flush_bins(&mut self) -> usize {
        let mut bytes = 0;
        for k in 0..NUM_BINS {
            let mut b = core::mem::replace(&mut self.bins[k], ptr::null_mut());
            while !b.is_null() {
                // SAFETY: binned blocks are free region blocks of `bin_size(k)` bytes, allocated with
                // `Layout(bin_size(k), BIN_ALIGN)`; the next link is read before the block is given back.
                unsafe {
                    let next = b.cast::<*mut u8>().read();
                    let r = self.region_of(b.addr());
                    debug_assert!(!r.is_null());
                    let layout = Layout::from_size_align_unchecked(bin_size(k), BIN_ALIGN);
                    (*r).dealloc(NonNull::new_unchecked(b), layout);
                    b = next;
                }
                bytes += bin_size(k);
            }
        }
        self.binned = 0;
        bytes
    }

    /// Verifies the bins: every binned block inside a region, 16-aligned, and as many as counted. Returns
    /// the address of the first bad block (0 for a count mismatch).
    pub fn check_bins(&self) -> Result<(), usize> {
        let mut n = 0;
        for (k, &head) in self.bins.iter().enumerate() {
            let mut b = head;
            while !b.is_null() {
                n += 1;
                let r = self.region_of(b.addr());
                // SAFETY: `r` is null or a live region header.
                if n > self.binned
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
        if n != self.binned {
            return Err(0);
        }
        Ok(())
    }

    #[cfg(all(feature = "os", unix))]
    fn alloc_os(&mut self, layout: Layout, reuse: bool) -> Option<(NonNull<u8>, bool)> {
        if !self.use_os {
            return None;
        }
        let size = os_size(layout.size())?;
        if reuse && layout.align() <= os::page_size() {
            if let Some(p) = self.cache.take(size) {
                return Some((p, false));
            }
        }
        self.reserved -= self.cache.make_room(size);
        let p = os::map(size, layout.align())?;
        // SAFETY: `[p, p + size)` is the mapping just made.
        unsafe { os::advise_huge(p, size) };
        self.reserved += size;
        self.cache.mapped(p, size);
        Some((p, true))
    }

    /// Resizes the live OS block `[ptr, ptr + old)` to `new` bytes without copying (see
    /// [`large::resize`](crate::large::resize)); `None`: the caller copies.
    ///
    /// # Safety
    /// `[ptr, ptr + old)` is a live large block of page alignment made by `alloc_os`; `old != new`, both
    /// page multiples.
    #[cfg(all(feature = "os", unix))]
    pub unsafe fn resize_os(
        &mut self,
        ptr: NonNull<u8>,
        old: usize,
        new: usize,
    ) -> Option<NonNull<u8>> {
        let a = ptr.as_ptr().addr();
        if new > old {
            if let Some(p) = self.cache.absorb(a, old, new - old) {
                return Some(p);
            }
            if self.cache.holds(new) {
                return None;
            }
            // Growing by `mremap` maps `new - old` fresh bytes: the cache first makes room for them.
            self.reserved -= self.cache.make_room(new - old);
        } else if self.cache.put_tail(a, old, new) {
            return Some(ptr);
        }
        // SAFETY: forwarded contract: a range inside one of our mappings (the cache keeps every range
        // inside the mapping it came from), of alignment at most the page size.
        let p = unsafe { os::remap(ptr, old, new) }?;
        self.cache.remapped(a, old, p, new);
        self.reserved = self.reserved - old + new;
        Some(p)
    }

    /// Unmaps every cached mapping; returns the bytes released.
    #[cfg(all(feature = "os", unix))]
    pub fn trim_cache(&mut self) -> usize {
        let released = self.cache.trim();
        self.reserved -= released;
        released
    }

    /// Bytes in cached mappings (freed large blocks kept for reuse).
    pub fn cached_bytes(&self) -> usize {
        #[cfg(all(feature = "os", unix))]
        return self.cache.bytes;
        #[cfg(not(all(feature = "os", unix)))]
        0
    }

    /// Sets how long cached mappings beyond the 1 MiB always kept stay mapped without a reuse.
    pub fn set_decay_ms(&mut self, ms: u32) {
        #[cfg(all(feature = "os", unix))]
        {
            self.cache.decay.ms = ms;
        }
        #[cfg(not(all(feature = "os", unix)))]
        let _ = ms;
    }

    /// Checks the large-block cache's invariants.
    pub fn check_cache(&self) -> Result<(), &'static str> {
        #[cfg(all(feature = "os", unix))]
        return self.cache.check();
        #[cfg(not(all(feature = "os", unix)))]
        Ok(())
    }

    /// Without an OS there is no cache.
    #[cfg(not(all(feature = "os", unix)))]
    pub fn trim_cache(&mut self) -> usize {
        0
    }

    #[cfg(not(all(feature = "os", unix)))]
    fn alloc_os(&mut self, _layout: Layout, _reuse: bool) -> Option<(NonNull<u8>, bool)> {
        None
    }

    /// Gives back an arena's span from [`Sources::alloc`]: to its region, or unmapped (never kept in the
    /// large-block cache; spare arenas have their own policy).
    ///
    /// # Safety
    /// `ptr` came from `alloc(layout, false)` on these sources and is no longer used.
    pub unsafe fn dealloc(&mut self, ptr: NonNull<u8>, layout: Layout) {
        let r = self.region_of(ptr.as_ptr().addr());
        if !r.is_null() {
            // SAFETY: the span came from this region with this layout.
            unsafe { (*r).dealloc(ptr, layout) };
        } else {
            // SAFETY: not in any region, so it is an OS mapping made by `alloc_os` with this layout.
            unsafe { self.dealloc_os(ptr, layout, false) };
        }
    }

    /// Frees an OS block or arena: into the large-block cache when `keep` (large blocks) and its bounds
    /// allow, else unmapped.
    ///
    /// # Safety
    /// `ptr` is a live OS mapping made by `alloc_os(layout)`.
    #[cfg(all(feature = "os", unix))]
    unsafe fn dealloc_os(&mut self, ptr: NonNull<u8>, layout: Layout, keep: bool) {
        let size = os_size(layout.size()).unwrap_or(0);
        if keep && layout.align() <= os::page_size() {
            let kept = self.cache.put(ptr.as_ptr().addr(), size);
            self.reserved -= self.cache.decay();
            if kept {
                return;
            }
        } else {
            self.cache.unmapped(ptr.as_ptr().addr(), size);
        }
        // SAFETY: forwarded contract; `alloc_os` mapped exactly this rounded size (or the cache's bounds
        // refused it, which leaves it ours to unmap).
        unsafe { os::unmap(ptr, size) };
        self.reserved -= size;
    }

    /// Without an OS there are no OS mappings: nothing to do.
    ///
    /// # Safety
    /// None.
    #[cfg(not(all(feature = "os", unix)))]
    unsafe fn dealloc_os(&mut self, _ptr: NonNull<u8>, _layout: Layout, _keep: bool) {}
}

/// `size` rounded up to whole pages, as the OS maps it (`None` on overflow).
#[cfg(all(feature = "os", unix))]
#[inline]
pub(crate) fn os_size(size: usize) -> Option<usize> {
    let page = os::page_size();
    Some(size.max(1).checked_add(page - 1)? & !(page - 1))
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
