//! Large requests (bigger than the pools serve, or aligned beyond them), and the memory kept for reuse on
//! their behalf.
//!
//! Inside the static regions, a large block comes from its size class's bin ([`bins`]) or first fit, at
//! its class size so that it can be binned when freed; when only its exact size fits it is served at that
//! size and marked in its region, so that it is freed with its own layout. When hosted, a large block is a
//! private OS mapping (as glibc does above its mmap threshold); freed mappings wait in the
//! [`mapcache`] for reuse, bounded and decayed. An OS block grows and shrinks in place by whole pages, and
//! on Linux moves with `mremap` instead of being copied. Arenas mapped from the OS pass through here too
//! ([`Large::alloc_arena`]): they count against the cache's bound.

use core::alloc::Layout;
use core::ptr::NonNull;

use crate::source::Sources;

pub(crate) mod bins;
#[cfg(all(feature = "os", unix, not(poolgc_system)))]
mod mapcache;

#[cfg(all(feature = "os", unix, not(poolgc_system)))]
use crate::source::{os, os_size};
use bins::{bin_of, bin_size, binnable, Bins, BIN_ALIGN};

/// Largest zeroed large request served from the cache (whose memory must then be zeroed by hand); larger
/// ones take fresh, already zeroed OS pages.
pub(crate) const ZEROED_REUSE_MAX: usize = 256 * 1024;

/// The large-block policy of one heap: its region bins and its cache of OS mappings.
pub(crate) struct Large {
    bins: Bins,
    #[cfg(all(feature = "os", unix, not(poolgc_system)))]
    cache: mapcache::MapCache,
}

impl Large {
    pub const fn new() -> Self {
        Large {
            bins: Bins::new(),
            #[cfg(all(feature = "os", unix, not(poolgc_system)))]
            cache: mapcache::MapCache::new(crate::decay::DECAY_MS),
        }
    }

    /// Allocates a large block (`zeroed`: the caller will zero it, so a fresh OS mapping is preferred
    /// above [`ZEROED_REUSE_MAX`]): a binned region block of its size class, else a region block of the
    /// class size, else of its exact size (marked), else the OS. Returns it and whether it is zeroed OS
    /// memory.
    pub fn alloc(
        &mut self,
        src: &mut Sources,
        layout: Layout,
        zeroed: bool,
    ) -> Option<(NonNull<u8>, bool)> {
        let reuse = !zeroed || layout.size() <= ZEROED_REUSE_MAX;
        if src.regions.is_null() || !binnable(layout) {
            return self.alloc_span(src, layout, reuse, false);
        }
        let k = bin_of(layout.size());
        if let Some(p) = self.bins.pop(k) {
            return Some((p, false));
        }
        // SAFETY: `bin_size(k)` ≥ the request, a valid size for the power-of-two BIN_ALIGN.
        let class = unsafe { Layout::from_size_align_unchecked(bin_size(k), BIN_ALIGN) };
        if let Some(p) = self.alloc_regions(src, class) {
            return Some((p, false));
        }
        if let Some((p, r)) = src.alloc_regions(layout) {
            // SAFETY: `r` is the live region header that served `p`, a block over MARK_GRANULE bytes.
            unsafe { (*r).set_mark(p.as_ptr().addr(), true) };
            return Some((p, false));
        }
        self.alloc_os(src, layout, reuse, false)
    }

    /// A span for a new arena: first fit over the regions, else a fresh OS mapping (never a cached one:
    /// fresh pages let new pools skip zeroing, and spare arenas have their own rule). Returns it and
    /// whether it is zeroed OS memory.
    pub fn alloc_arena(
        &mut self,
        src: &mut Sources,
        layout: Layout,
    ) -> Option<(NonNull<u8>, bool)> {
        self.alloc_span(src, layout, false, true)
    }

    /// First fit over the regions, giving the binned blocks back to them first if none has room.
    fn alloc_regions(&mut self, src: &mut Sources, layout: Layout) -> Option<NonNull<u8>> {
        if let Some((p, _)) = src.alloc_regions(layout) {
            return Some(p);
        }
        if self.bins.count > 0 && self.bins.flush(src) > 0 {
            return src.alloc_regions(layout).map(|(p, _)| p);
        }
        None
    }

    /// The regions, else the OS (`reuse`: a cached mapping may serve; `arena`: counted as an arena).
    fn alloc_span(
        &mut self,
        src: &mut Sources,
        layout: Layout,
        reuse: bool,
        arena: bool,
    ) -> Option<(NonNull<u8>, bool)> {
        if let Some(p) = self.alloc_regions(src, layout) {
            return Some((p, false));
        }
        self.alloc_os(src, layout, reuse, arena)
    }

    /// Frees a large block.
    ///
    /// # Safety
    /// `ptr` came from [`alloc`](Large::alloc) on these sources with `layout` (or was resized to it by
    /// [`resize`](Large::resize)) and is no longer used.
    pub unsafe fn dealloc(&mut self, src: &mut Sources, ptr: NonNull<u8>, layout: Layout) {
        let r = src.region_of(ptr.as_ptr().addr());
        if r.is_null() {
            // SAFETY: not in a region, so an OS mapping made with `layout`.
            return unsafe { self.dealloc_os(src, ptr, layout, true, false) };
        }
        if !binnable(layout) {
            // SAFETY: `r` is the live region that carved this non-binnable block with exactly `layout`.
            return unsafe { (*r).dealloc(ptr, layout) };
        }
        // SAFETY: `r` is the live region header containing the block.
        let block = unsafe { (*r).ptr_at(ptr.as_ptr().addr()) };
        // SAFETY: as above.
        if unsafe { (*r).marked(block.addr()) } {
            // SAFETY: a marked block was carved at its exact size; its mark goes before its room is reused.
            unsafe {
                (*r).set_mark(block.addr(), false);
                return (*r).dealloc(ptr, layout);
            }
        }
        // SAFETY: an unmarked binnable region block was allocated at its class size; `block` carries the
        // region's provenance.
        unsafe { self.bins.push(bin_of(layout.size()), block) };
    }

    /// Gives a wholly free arena's span back: to its region, or unmapped.
    ///
    /// # Safety
    /// `ptr` came from [`alloc_arena`](Large::alloc_arena) with `layout` and is no longer used.
    pub unsafe fn free_arena(&mut self, src: &mut Sources, ptr: NonNull<u8>, layout: Layout) {
        let r = src.region_of(ptr.as_ptr().addr());
        if !r.is_null() {
            // SAFETY: the span came from this region with this layout.
            unsafe { (*r).dealloc(ptr, layout) };
        } else {
            // SAFETY: not in any region, so an OS mapping made by `alloc_os` with this layout.
            unsafe { self.dealloc_os(src, ptr, layout, false, true) };
        }
    }

    /// Tries to resize a large block without copying. A region block carved at its bin's size stays in
    /// place while the new size falls in the same bin. An OS block stays in place when its page count does
    /// not change, grows into the cached range that follows it, gives a shrunk tail to the cache, or moves
    /// with `mremap` on Linux. Returns `None` if the caller must allocate, copy and free instead (also when
    /// a cached range can take the grown block: copying beats faulting in fresh pages); the block is then
    /// untouched.
    ///
    /// # Safety
    /// `ptr` is a live large block of `layout`; `new_size` is non-zero and, rounded to `layout.align()`,
    /// does not overflow `isize`.
    pub unsafe fn resize(
        &mut self,
        src: &mut Sources,
        ptr: NonNull<u8>,
        layout: Layout,
        new_size: usize,
    ) -> Option<NonNull<u8>> {
        let r = src.region_of(ptr.as_ptr().addr());
        if !r.is_null() {
            // SAFETY: the caller's size is valid for the alignment.
            let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
            // SAFETY: `r` is the live region header containing the block.
            let same_bin = binnable(layout)
                && binnable(new_layout)
                && bin_of(layout.size()) == bin_of(new_size)
                && !unsafe { (*r).marked(ptr.as_ptr().addr()) };
            // An unmarked binnable block spans its whole bin size, which the new size also names.
            // SAFETY: as above; hand back the region's provenance, not the caller's narrower tag.
            return same_bin
                .then(|| unsafe { NonNull::new_unchecked((*r).ptr_at(ptr.as_ptr().addr())) });
        }
        #[cfg(all(feature = "os", unix, not(poolgc_system)))]
        {
            let old = os_size(layout.size())?;
            let new = os_size(new_size)?;
            if old == new {
                return Some(ptr);
            }
            if layout.align() > os::page_size() {
                return None;
            }
            let a = ptr.as_ptr().addr();
            if new > old {
                if let Some(p) = self.cache.absorb(a, old, new - old) {
                    return Some(p);
                }
                if self.cache.holds(new) {
                    return None;
                }
                // Growing by `mremap` maps `new - old` fresh bytes: the cache first makes room for them.
                self.cache.make_room(src, new - old);
            } else if self.cache.put_tail(a, old, new) {
                return Some(ptr);
            }
            // SAFETY: an OS block of alignment ≤ page size is one whole range of `old` bytes inside one of
            // our mappings (the cache keeps every range inside the mapping it came from).
            let p = unsafe { src.remap(ptr, old, new) }?;
            self.cache.remapped(a, old, p, new);
            Some(p)
        }
        #[cfg(not(all(feature = "os", unix, not(poolgc_system))))]
        None
    }

    /// Gives every binned block back to its region; returns their bytes.
    pub fn flush_bins(&mut self, src: &mut Sources) -> usize {
        self.bins.flush(src)
    }

    /// Unmaps every cached mapping; returns the bytes released.
    pub fn trim_cache(&mut self, src: &mut Sources) -> usize {
        #[cfg(all(feature = "os", unix, not(poolgc_system)))]
        return self.cache.trim(src);
        #[cfg(not(all(feature = "os", unix, not(poolgc_system))))]
        {
            let _ = src;
            0
        }
    }

    /// Bytes in cached mappings (freed large blocks kept for reuse).
    pub fn cached_bytes(&self) -> usize {
        #[cfg(all(feature = "os", unix, not(poolgc_system)))]
        return self.cache.bytes;
        #[cfg(not(all(feature = "os", unix, not(poolgc_system))))]
        0
    }

    /// Sets how long cached mappings beyond the 1 MiB always kept stay mapped without a reuse.
    pub fn set_decay_ms(&mut self, ms: u32) {
        #[cfg(all(feature = "os", unix, not(poolgc_system)))]
        {
            self.cache.decay.ms = ms;
        }
        #[cfg(not(all(feature = "os", unix, not(poolgc_system))))]
        let _ = ms;
    }

    /// Checks the bins (`Err(address)` of a bad block, 0 for a bad count) and the cache.
    pub fn check(&self, src: &Sources) -> Result<(), (&'static str, usize)> {
        if let Err(addr) = self.bins.check(src) {
            return Err(("binned large block outside its region or miscounted", addr));
        }
        #[cfg(all(feature = "os", unix, not(poolgc_system)))]
        self.cache.check().map_err(|what| (what, 0))?;
        Ok(())
    }

    /// A fresh OS mapping of `layout.size()` rounded up to whole pages, or, when `reuse` allows, a cached
    /// one.
    #[cfg(all(feature = "os", unix, not(poolgc_system)))]
    fn alloc_os(
        &mut self,
        src: &mut Sources,
        layout: Layout,
        reuse: bool,
        arena: bool,
    ) -> Option<(NonNull<u8>, bool)> {
        if !src.use_os {
            return None;
        }
        let size = os_size(layout.size())?;
        if reuse && layout.align() <= os::page_size() {
            if let Some(p) = self.cache.take(size) {
                return Some((p, false));
            }
        }
        self.cache.make_room(src, size);
        let p = src.map(size, layout.align(), arena)?;
        self.cache.mapped(p, size);
        Some((p, true))
    }

    /// A fresh span of `layout.size()` rounded up to whole pages from the platform allocator (nothing is
    /// cached: `System` keeps freed memory itself).
    #[cfg(all(feature = "os", feature = "std", any(not(unix), poolgc_system)))]
    fn alloc_os(
        &mut self,
        src: &mut Sources,
        layout: Layout,
        _reuse: bool,
        arena: bool,
    ) -> Option<(NonNull<u8>, bool)> {
        let size = crate::source::system_size(layout.size())?;
        let p = src.take(size, layout.align(), arena)?;
        Some((p, true))
    }

    #[cfg(not(any(
        all(feature = "os", unix, not(poolgc_system)),
        all(feature = "os", feature = "std", any(not(unix), poolgc_system))
    )))]
    fn alloc_os(
        &mut self,
        _src: &mut Sources,
        _layout: Layout,
        _reuse: bool,
        _arena: bool,
    ) -> Option<(NonNull<u8>, bool)> {
        None
    }

    /// Frees an OS block or arena: into the cache when `keep` (large blocks) and its bounds allow, else
    /// unmapped.
    ///
    /// # Safety
    /// `ptr` is a live OS mapping made by `alloc_os(layout, .., arena)`.
    #[cfg(all(feature = "os", unix, not(poolgc_system)))]
    unsafe fn dealloc_os(
        &mut self,
        src: &mut Sources,
        ptr: NonNull<u8>,
        layout: Layout,
        keep: bool,
        arena: bool,
    ) {
        let size = os_size(layout.size()).unwrap_or(0);
        if keep && layout.align() <= os::page_size() {
            let kept = self.cache.put(ptr.as_ptr().addr(), size);
            self.cache.decay(src);
            if kept {
                return;
            }
        } else {
            self.cache.unmapped(ptr.as_ptr().addr(), size);
        }
        // SAFETY: forwarded contract; `alloc_os` mapped exactly this rounded size (or the cache's bounds
        // refused it, which leaves it ours to unmap).
        unsafe { src.unmap(ptr, size, arena) };
    }

    /// Frees a span of the platform allocator's, at once.
    ///
    /// # Safety
    /// `ptr` is a live span made by `alloc_os(layout, .., arena)`.
    #[cfg(all(feature = "os", feature = "std", any(not(unix), poolgc_system)))]
    unsafe fn dealloc_os(
        &mut self,
        src: &mut Sources,
        ptr: NonNull<u8>,
        layout: Layout,
        _keep: bool,
        arena: bool,
    ) {
        // `alloc_os` took exactly this rounded size with this alignment; it cannot overflow, having once
        // been taken.
        let size = crate::source::system_size(layout.size()).unwrap_or(0);
        // SAFETY: forwarded contract.
        unsafe { src.free(ptr, size, layout.align(), arena) };
    }

    /// Without an OS there are no OS mappings: nothing to do.
    ///
    /// # Safety
    /// None.
    #[cfg(not(any(
        all(feature = "os", unix, not(poolgc_system)),
        all(feature = "os", feature = "std", any(not(unix), poolgc_system))
    )))]
    unsafe fn dealloc_os(
        &mut self,
        _src: &mut Sources,
        _ptr: NonNull<u8>,
        _layout: Layout,
        _keep: bool,
        _arena: bool,
    ) {
    }
}
