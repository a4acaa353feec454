//! Memory mappings from the OS (feature `os`, Unix): `mmap`/`munmap`/`mremap`/`madvise` through `libc`.

use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicUsize, Ordering};

static PAGE_SIZE: AtomicUsize = AtomicUsize::new(0);

/// Bytes mapped by [`map`] (and grown by [`remap`]) in this process and not yet given back by [`unmap`]:
/// every OS mapping of every heap goes through this module, so the count is exact.
pub(crate) static MAPPED_BYTES: AtomicUsize = AtomicUsize::new(0);

/// The OS page size: 4096 on x86 Linux, else `sysconf`'s answer, cached after the first call
/// (allocation-free).
#[inline]
pub fn page_size() -> usize {
    // Fixed on x86 Linux; skipping `sysconf` also spares the process a fault on its part of libc.
    if cfg!(all(
        target_os = "linux",
        any(target_arch = "x86_64", target_arch = "x86")
    )) {
        return 4096;
    }
    let p = PAGE_SIZE.load(Ordering::Relaxed);
    if p != 0 {
        return p;
    }
    // SAFETY: sysconf has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    let p = if p > 0 { p as usize } else { 4096 };
    PAGE_SIZE.store(p, Ordering::Relaxed);
    p
}

/// Maps `size` bytes (a multiple of the page size) of fresh, zeroed memory aligned to `align`
/// (a power of two). Returns `None` when the OS refuses.
pub fn map(size: usize, align: usize) -> Option<NonNull<u8>> {
    let page = page_size();
    debug_assert!(size % page == 0 && align.is_power_of_two());
    let p = if align <= page {
        raw_map(size)?
    } else {
        map_aligned(size, align)?
    };
    MAPPED_BYTES.fetch_add(size, Ordering::Relaxed);
    Some(p)
}

/// [`map`] for an alignment beyond the page size.
fn map_aligned(size: usize, align: usize) -> Option<NonNull<u8>> {
    let page = page_size();
    // Over-map by `align - page`, then give back the misaligned head and the unused tail.
    let total = size.checked_add(align - page)?;
    let base = raw_map(total)?;
    let addr = base.as_ptr().addr();
    let head = addr.wrapping_neg() & (align - 1);
    let tail = total - head - size;
    if head > 0 {
        // SAFETY: `[base, base + head)` is part of the mapping we just made and nobody uses it.
        unsafe { raw_unmap(base, head) };
    }
    let aligned = base.as_ptr().wrapping_add(head);
    if tail > 0 {
        // SAFETY: `[aligned + size, base + total)` is the unused end of our own mapping.
        unsafe { raw_unmap(NonNull::new_unchecked(aligned.wrapping_add(size)), tail) };
    }
    NonNull::new(aligned)
}

fn raw_map(size: usize) -> Option<NonNull<u8>> {
    // SAFETY: an anonymous private mapping at an address of the kernel's choosing affects no existing memory.
    let p = unsafe {
        libc::mmap(
            ptr::null_mut(),
            size,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        None
    } else {
        NonNull::new(p.cast::<u8>())
    }
}

/// Returns `[ptr, ptr + size)` to the OS.
///
/// # Safety
/// The span must be (part of) a mapping made by [`map`], page-aligned, and no longer used.
pub unsafe fn unmap(ptr: NonNull<u8>, size: usize) {
    MAPPED_BYTES.fetch_sub(size, Ordering::Relaxed);
    // SAFETY: forwarded contract.
    unsafe { raw_unmap(ptr, size) }
}

/// [`unmap`] without the count.
///
/// # Safety
/// As for [`unmap`].
unsafe fn raw_unmap(ptr: NonNull<u8>, size: usize) {
    // Miri emulates each mapping as one allocation and cannot unmap part of it (as `map` does to
    // align): under Miri unmapped memory is leaked instead (run such tests with -Zmiri-ignore-leaks).
    if cfg!(miri) {
        return;
    }
    // SAFETY: forwarded contract. munmap of our own mapping cannot fail except on bad arguments, which
    // the contract rules out; there is nothing useful to do on failure anyway.
    unsafe { libc::munmap(ptr.as_ptr().cast(), size) };
}

/// Grows or shrinks a page range of ours, moving it if needed (Linux `mremap`); the rest of the mapping
/// it lies in is untouched. `None` where unsupported or refused; the range is then untouched.
///
/// # Safety
/// `[ptr, ptr + old)` must be a page-aligned range inside one mapping made by [`map`], used by nobody
/// else; `old` and `new` are multiples of the page size.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub unsafe fn remap(ptr: NonNull<u8>, old: usize, new: usize) -> Option<NonNull<u8>> {
    // Miri emulates each mapping as one allocation and cannot move part of one: callers copy instead.
    if cfg!(miri) {
        return None;
    }
    // SAFETY: forwarded contract; MREMAP_MAYMOVE either moves the whole range or fails leaving it as is.
    let p = unsafe { libc::mremap(ptr.as_ptr().cast(), old, new, libc::MREMAP_MAYMOVE) };
    if p == libc::MAP_FAILED {
        None
    } else {
        let p = NonNull::new(p.cast::<u8>())?;
        MAPPED_BYTES.fetch_add(new, Ordering::Relaxed);
        MAPPED_BYTES.fetch_sub(old, Ordering::Relaxed);
        // SAFETY: `[p, p + new)` is the range mremap just returned, ours.
        unsafe { advise_huge(p, new) };
        Some(p)
    }
}

/// Mappings at least this large are offered to transparent huge pages (see [`advise_huge`]).
pub const HUGE_MIN: usize = 4 << 20;

/// Asks Linux to back a large mapping with transparent huge pages where it is 2 MiB-aligned (with THP
/// in `madvise` mode, the usual default, nothing else gets them): a large block that is written
/// through then takes one fault per 2 MiB instead of 512. Only for mappings of at least
/// [`HUGE_MIN`], where the rounding of resident memory to 2 MiB costs at most a few percent. A hint:
/// failure changes nothing.
///
/// # Safety
/// `[p, p + size)` is a mapping of ours.
pub unsafe fn advise_huge(p: NonNull<u8>, size: usize) {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    if size >= HUGE_MIN && !cfg!(miri) {
        // SAFETY: forwarded contract; MADV_HUGEPAGE changes no contents and cannot fail harmfully.
        unsafe { libc::madvise(p.as_ptr().cast(), size, libc::MADV_HUGEPAGE) };
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let _ = (p, size);
}

/// Grows or shrinks a page range: unsupported on this OS.
///
/// # Safety
/// None needed; kept `unsafe` to match the Linux signature.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub unsafe fn remap(_ptr: NonNull<u8>, _old: usize, _new: usize) -> Option<NonNull<u8>> {
    None
}
