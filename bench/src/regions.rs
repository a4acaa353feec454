//! Region-based allocators (talc, linked_list_allocator, buddy_system_allocator, rlsf's `Tlsf`) need a
//! span of memory handed to them before the first allocation, and std allocates before `main`. [`Lazy`]
//! maps the span (`mmap`, not through any global allocator) and hands it over on first use.

use core::alloc::{GlobalAlloc, Layout};
use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicU8, Ordering};

/// Bytes of address space reserved for an allocator that is the global one (`MAP_NORESERVE`: only the
/// pages touched count toward RSS).
pub const GLOBAL_REGION: usize = 2 << 30;

/// Maps `len` bytes of zeroed, lazily committed memory; aborts if the OS refuses.
pub fn map_region(len: usize) -> *mut u8 {
    // SAFETY: an anonymous private mapping at an address of the kernel's choosing touches nothing else.
    let p = unsafe {
        libc::mmap(
            ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        std::process::abort();
    }
    p.cast()
}

/// An allocator that gets its region handed over on first use.
pub struct Lazy<A> {
    inner: A,
    state: AtomicU8,
    len: usize,
    give: unsafe fn(&A, *mut u8, usize),
}

impl<A> Lazy<A> {
    /// Wraps `inner`; `give(inner, start, len)` hands it a fresh region of `len` bytes.
    pub const fn new(inner: A, len: usize, give: unsafe fn(&A, *mut u8, usize)) -> Self {
        Lazy {
            inner,
            state: AtomicU8::new(0),
            len,
            give,
        }
    }

    #[inline]
    fn ensure(&self) {
        if self.state.load(Ordering::Acquire) != 2 {
            self.init_slow();
        }
    }

    #[cold]
    fn init_slow(&self) {
        if self
            .state
            .compare_exchange(0, 1, Ordering::Acquire, Ordering::Acquire)
            .is_ok()
        {
            let base = map_region(self.len);
            // SAFETY: the region is fresh, ours alone, and handed over exactly once.
            unsafe { (self.give)(&self.inner, base, self.len) };
            self.state.store(2, Ordering::Release);
        } else {
            while self.state.load(Ordering::Acquire) != 2 {
                core::hint::spin_loop();
            }
        }
    }
}

// SAFETY: forwards to `inner` once it owns its region.
unsafe impl<A: GlobalAlloc> GlobalAlloc for Lazy<A> {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.ensure();
        // SAFETY: forwarded contract.
        unsafe { self.inner.alloc(layout) }
    }
    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded contract (a live pointer means the region was handed over).
        unsafe { self.inner.dealloc(ptr, layout) }
    }
    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        self.ensure();
        // SAFETY: forwarded contract.
        unsafe { self.inner.alloc_zeroed(layout) }
    }
    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded contract.
        unsafe { self.inner.realloc(ptr, layout, new_size) }
    }
}

/// poolgc as firmware gets it by default: `PoolAlloc::empty()`, pools and large blocks from the region
/// handed to it.
pub const fn poolgc_empty() -> poolgc::PoolAlloc {
    poolgc::PoolAlloc::empty()
}

/// A firmware-style poolgc with the hosted geometry: no thread caches, pools and large blocks from the
/// region handed to it.
pub const fn poolgc() -> poolgc::PoolAlloc {
    poolgc::PoolAlloc::empty_with_config(poolgc::Config::HOSTED)
}
/// Hands a region to poolgc.
///
/// # Safety
/// As for [`talc_give`].
pub unsafe fn poolgc_give(a: &poolgc::PoolAlloc, start: *mut u8, len: usize) {
    // SAFETY: forwarded contract.
    unsafe { a.add_region(start, len) }
}

/// talc behind a spin lock.
pub type Talc = talc::Talck<spin::Mutex<()>, talc::ErrOnOom>;
/// A fresh talc.
pub const fn talc() -> Talc {
    talc::Talc::new(talc::ErrOnOom).lock()
}
/// Hands a region to talc.
///
/// # Safety
/// The region is valid, unused, and handed over once.
pub unsafe fn talc_give(a: &Talc, start: *mut u8, len: usize) {
    // SAFETY: forwarded contract.
    unsafe { a.lock().claim(talc::Span::from_base_size(start, len)) }.expect("talc claims");
}

/// linked_list_allocator's locked heap.
pub type Lla = linked_list_allocator::LockedHeap;
/// Hands a region to linked_list_allocator.
///
/// # Safety
/// As for [`talc_give`].
pub unsafe fn lla_give(a: &Lla, start: *mut u8, len: usize) {
    // SAFETY: forwarded contract.
    unsafe { a.lock().init(start, len) }
}

/// buddy_system_allocator's locked heap (orders up to 2^32 bytes).
pub type Buddy = buddy_system_allocator::LockedHeap<33>;
/// Hands a region to buddy_system_allocator.
///
/// # Safety
/// As for [`talc_give`].
pub unsafe fn buddy_give(a: &Buddy, start: *mut u8, len: usize) {
    // SAFETY: forwarded contract.
    unsafe { a.lock().init(start as usize, len) }
}

/// rlsf's `Tlsf` behind a spin lock (its own `GlobalTlsf` grows from the OS instead of a region).
pub struct Tlsf(spin::Mutex<rlsf::Tlsf<'static, u32, u32, 28, 16>>);
impl Tlsf {
    /// A fresh, empty TLSF.
    pub const fn new() -> Self {
        Tlsf(spin::Mutex::new(rlsf::Tlsf::new()))
    }
}
impl Default for Tlsf {
    fn default() -> Self {
        Self::new()
    }
}
/// Hands a region to rlsf.
///
/// # Safety
/// As for [`talc_give`].
pub unsafe fn tlsf_give(a: &Tlsf, start: *mut u8, len: usize) {
    let span = NonNull::slice_from_raw_parts(NonNull::new(start).expect("non-null"), len);
    // SAFETY: forwarded contract.
    unsafe { a.0.lock().insert_free_block_ptr(span) };
}
// SAFETY: rlsf returns blocks that fit the layout and are disjoint until freed, or None.
unsafe impl GlobalAlloc for Tlsf {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.0
            .lock()
            .allocate(layout)
            .map_or(ptr::null_mut(), NonNull::as_ptr)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: GlobalAlloc's contract: a live block of ours with this layout.
        unsafe {
            self.0
                .lock()
                .deallocate(NonNull::new_unchecked(ptr), layout.align())
        }
    }
}
