//! Where memory comes from: static regions handed over by the user ([`Region`]), and (feature `os`) the
//! host: OS mappings on Unix ([`os`]), the platform allocator elsewhere with `std` (`system`). What is kept for reuse, and how large blocks are placed, is the `large` layer's
//! policy; this layer only hands spans out, takes them back, and counts them.

use core::alloc::Layout;
use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicUsize, Ordering};

#[cfg(all(feature = "os", unix, not(poolgc_system)))]
pub(crate) mod os;
mod region;
#[cfg(all(feature = "os", feature = "std", any(not(unix), poolgc_system)))]
pub(crate) mod system;

/// Whether this build has a memory source besides regions: `mmap` on Unix, the platform allocator on
/// other hosts with `std` (both feature `os`). Without one, only regions handed over serve.
pub(crate) const HOST_MEMORY: bool = cfg!(any(
    all(feature = "os", unix, not(poolgc_system)),
    all(
        feature = "os",
        feature = "std",
        any(not(unix), poolgc_system)
    )
));

pub(crate) use region::Region;

/// Why `add_region` refused a region. A `core::error::Error`.
///
/// ```
/// use poolgc::{PoolAlloc, RegionError};
///
/// static ALLOC: PoolAlloc = PoolAlloc::empty();
/// static mut TINY: [u8; 16] = [0; 16];
///
/// // SAFETY: TINY is used by nothing else.
/// let r = unsafe { ALLOC.try_add_region(&raw mut TINY as *mut u8, 16) };
/// assert_eq!(r, Err(RegionError::TooSmall));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
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

impl core::error::Error for RegionError {}

/// What every heap of this process holds from the OS right now (see [`os_mapped`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OsMapped {
    /// Arenas mapped from the OS and not yet unmapped.
    pub arenas: usize,
    /// Bytes in OS mappings not yet unmapped: arenas, large blocks, and freed large blocks kept for reuse.
    pub bytes: usize,
}

/// Arenas mapped from the OS by every heap and not yet unmapped.
static OS_ARENAS: AtomicUsize = AtomicUsize::new(0);

/// What every heap of this process holds from the OS right now, counted where mappings are made and
/// unmapped: a heap dropped, [`trim`](crate::Heap::trim)med or decayed to nothing shows here at once.
/// Zero without the `os` feature.
///
/// ```
/// # #[cfg(all(feature = "os", unix, not(poolgc_system)))] {
/// use core::alloc::Layout;
/// use poolgc::{os_mapped, Config, Heap};
/// let before = os_mapped(); // no other heap maps meanwhile in this example
/// let mut h = Heap::new(Config::HOSTED);
/// let b = h.allocate(Layout::new::<u64>()).unwrap();
/// assert_eq!(os_mapped().arenas, before.arenas + 1);
/// unsafe { h.deallocate(b, Layout::new::<u64>()) };
/// drop(h);
/// assert_eq!(os_mapped(), before);
/// # }
/// ```
pub fn os_mapped() -> OsMapped {
    #[cfg(all(feature = "os", unix, not(poolgc_system)))]
    let bytes = os::MAPPED_BYTES.load(Ordering::Relaxed);
    #[cfg(all(feature = "os", feature = "std", any(not(unix), poolgc_system)))]
    let bytes = system::MAPPED_BYTES.load(Ordering::Relaxed);
    #[cfg(not(any(
        all(feature = "os", unix, not(poolgc_system)),
        all(feature = "os", feature = "std", any(not(unix), poolgc_system))
    )))]
    let bytes = 0;
    OsMapped {
        arenas: OS_ARENAS.load(Ordering::Relaxed),
        bytes,
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
    /// Bytes held from sources: region sizes plus live OS mappings (cached ones included).
    pub reserved: usize,
}

impl Sources {
    pub const fn new(use_os: bool) -> Self {
        Sources {
            regions: ptr::null_mut(),
            nregions: 0,
            use_os: use_os && HOST_MEMORY,
            reserved: 0,
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

    /// First fit over the regions; returns the block and its region.
    pub fn alloc_regions(&mut self, layout: Layout) -> Option<(NonNull<u8>, *mut Region)> {
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

    /// Maps `size` bytes (a page multiple) aligned to `align` from the OS, if this heap may; `arena`
    /// counts it in [`OsMapped::arenas`] until [`unmap`](Sources::unmap)ped as one.
    #[cfg(all(feature = "os", unix, not(poolgc_system)))]
    pub fn map(&mut self, size: usize, align: usize, arena: bool) -> Option<NonNull<u8>> {
        if !self.use_os {
            return None;
        }
        let p = os::map(size, align)?;
        // SAFETY: `[p, p + size)` is the mapping just made.
        unsafe { os::advise_huge(p, size) };
        self.reserved += size;
        if arena {
            OS_ARENAS.fetch_add(1, Ordering::Relaxed);
        }
        Some(p)
    }

    /// Gives `[ptr, ptr + size)` back to the OS (`arena`: as [`map`](Sources::map) was told).
    ///
    /// # Safety
    /// The range is (part of) a mapping of this heap's, page-aligned, a page multiple, no longer used.
    #[cfg(all(feature = "os", unix, not(poolgc_system)))]
    pub unsafe fn unmap(&mut self, ptr: NonNull<u8>, size: usize, arena: bool) {
        // SAFETY: forwarded contract.
        unsafe { os::unmap(ptr, size) };
        self.reserved -= size;
        if arena {
            OS_ARENAS.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Moves or resizes the page range `[ptr, ptr + old)` to `new` bytes (`mremap`); `None`: untouched.
    ///
    /// # Safety
    /// As for [`os::remap`].
    #[cfg(all(feature = "os", unix, not(poolgc_system)))]
    pub unsafe fn remap(
        &mut self,
        ptr: NonNull<u8>,
        old: usize,
        new: usize,
    ) -> Option<NonNull<u8>> {
        // SAFETY: forwarded contract.
        let p = unsafe { os::remap(ptr, old, new) }?;
        self.reserved = self.reserved - old + new;
        Some(p)
    }
}

/// The platform allocator as a source (no `mmap` on this host).
#[cfg(all(feature = "os", feature = "std", any(not(unix), poolgc_system)))]
impl Sources {
    /// Takes `size` bytes (a page multiple) aligned to `align` from the platform allocator, if this heap
    /// may; `arena` counts it in [`OsMapped::arenas`] until [`free`](Sources::free)d as one.
    pub fn take(&mut self, size: usize, align: usize, arena: bool) -> Option<NonNull<u8>> {
        if !self.use_os {
            return None;
        }
        let p = system::map(size, align)?;
        self.reserved += size;
        if arena {
            OS_ARENAS.fetch_add(1, Ordering::Relaxed);
        }
        Some(p)
    }

    /// Gives a span from [`take`](Sources::take) back (`arena`: as `take` was told).
    ///
    /// # Safety
    /// `ptr` came from `take(size, align, arena)` with these arguments and is no longer used.
    pub unsafe fn free(&mut self, ptr: NonNull<u8>, size: usize, align: usize, arena: bool) {
        // SAFETY: forwarded contract.
        unsafe { system::unmap(ptr, size, align) };
        self.reserved -= size;
        if arena {
            OS_ARENAS.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// `size` rounded up to whole [`system::PAGE`]s (`None` on overflow).
#[cfg(all(feature = "os", feature = "std", any(not(unix), poolgc_system)))]
#[inline]
pub(crate) fn system_size(size: usize) -> Option<usize> {
    Some(size.max(1).checked_add(system::PAGE - 1)? & !(system::PAGE - 1))
}

/// `size` rounded up to whole pages, as the OS maps it (`None` on overflow).
#[cfg(all(feature = "os", unix, not(poolgc_system)))]
#[inline]
pub(crate) fn os_size(size: usize) -> Option<usize> {
    let page = os::page_size();
    Some(size.max(1).checked_add(page - 1)? & !(page - 1))
}
