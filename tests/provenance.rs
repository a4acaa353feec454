//! Blocks freed through pointers derived from references, as `Box` drop does: the allocator must not read
//! its headers, or hand the block out again, through the caller's (narrower) tag. Meaningful under Miri
//! (`cargo +nightly miri test --test provenance`, Stacked and Tree Borrows); plain checks natively.

mod common;

use common::Region;
use core::alloc::Layout;
use core::ptr::NonNull;
use poolgc::{Config, Heap};

fn heap_with(len: usize) -> (Heap, Region) {
    let r = Region::new(len, 4096);
    let mut h = Heap::empty(Config::SMALL);
    // SAFETY: a fresh allocation, used by nothing else, outliving the heap's use.
    unsafe { h.add_region(r.ptr(), len).unwrap() };
    (h, r)
}

#[test]
fn small_block_freed_through_a_reference_and_reissued() {
    let (mut h, _r) = heap_with(64 * 1024);
    let l = Layout::new::<[u64; 2]>();
    let keep = h.allocate(l).unwrap();
    let p = h.allocate(l).unwrap();
    // SAFETY: a live, aligned block of the right size.
    let r: &mut [u64; 2] = unsafe { &mut *p.as_ptr().cast() };
    r[0] = 1;
    // SAFETY: freed once, with its layout; the pointer's tag covers only the 16 user bytes.
    unsafe { h.deallocate(NonNull::from(r).cast(), l) };
    let p2 = h.allocate(l).unwrap();
    let other = h.allocate(l).unwrap();
    // SAFETY: as above.
    let r2: &mut [u64; 2] = unsafe { &mut *p2.as_ptr().cast() };
    r2[1] = 2;
    unsafe {
        h.deallocate(NonNull::from(r2).cast(), l);
        h.deallocate(other, l);
        h.deallocate(keep, l);
    }
    h.check().unwrap();
}

#[test]
fn large_region_block_freed_through_a_reference_and_reused() {
    let (mut h, _r) = heap_with(64 * 1024);
    let l = Layout::new::<[u8; 1024]>();
    let p = h.allocate(l).unwrap();
    // SAFETY: a live, aligned block of the right size.
    let r: &mut [u8; 1024] = unsafe { &mut *p.as_ptr().cast() };
    r[0] = 1;
    // SAFETY: freed once, with its layout.
    unsafe { h.deallocate(NonNull::from(r).cast(), l) };
    // The same size class comes back from the bins, with the region's provenance.
    let p2 = h.allocate(l).unwrap();
    assert_eq!(p2, p, "the bin reuses the block");
    // SAFETY: a live, aligned block of the right size.
    let r2: &mut [u8; 1024] = unsafe { &mut *p2.as_ptr().cast() };
    *r2 = [7; 1024];
    // SAFETY: freed once, with its layout.
    unsafe { h.deallocate(NonNull::from(r2).cast(), l) };
    h.check().unwrap();
    // `trim` hands binned blocks back to the first-fit allocator.
    h.trim();
    let l2 = Layout::from_size_align(8192, 8).unwrap();
    let q = h.allocate(l2).unwrap();
    assert_eq!(q, p, "first fit reuses the address");
    // SAFETY: a live block of 8192 bytes.
    unsafe {
        q.as_ptr().write_bytes(0xAB, 8192);
        h.deallocate(q, l2);
    }
    h.check().unwrap();
}

#[test]
fn realloc_in_place_hands_back_a_pointer_valid_for_the_new_size() {
    let (mut h, _r) = heap_with(64 * 1024);
    let l = Layout::new::<[u8; 17]>();
    let p = h.allocate(l).unwrap();
    // SAFETY: a live block of 17 bytes.
    let r: &mut [u8; 17] = unsafe { &mut *p.as_ptr().cast() };
    r[0] = 1;
    // SAFETY: live block of `l`; 30 is a valid size.
    let q = unsafe { h.reallocate(NonNull::from(r).cast(), l, 30) }.unwrap();
    assert_eq!(q, p, "grown in place inside its 32-byte block");
    // SAFETY: q is valid for 30 bytes now.
    unsafe {
        q.as_ptr().write_bytes(7, 30);
        h.deallocate(q, Layout::new::<[u8; 30]>());
    }
    h.check().unwrap();
}

/// Dropping a heap unmaps every arena it mapped and every freed large block it cached, as counted by the
/// allocator where mappings are made and unmapped (alone in a child process, so that the process-wide
/// count is this test's).
#[cfg(all(feature = "os", unix, not(miri)))]
#[test]
fn dropping_a_heap_returns_its_arenas_to_the_os() {
    if !common::in_child("dropping_a_heap_returns_its_arenas_to_the_os") {
        return;
    }
    use poolgc::os_mapped;
    let before = os_mapped();
    for _ in 0..50 {
        let mut h = Heap::new(Config::HOSTED);
        let l = Layout::new::<[u8; 64]>();
        for _ in 0..40_000 {
            h.allocate(l).unwrap();
        }
        let big = Layout::from_size_align(256 * 1024, 8).unwrap();
        let p = h.allocate(big).unwrap();
        // SAFETY: a live block of this layout; freed, it stays mapped in the heap's cache.
        unsafe { h.deallocate(p, big) };
        let s = h.stats();
        assert!(s.arenas >= 2 && s.cached_large_bytes >= 256 * 1024);
        let now = os_mapped();
        assert_eq!(now.arenas, before.arenas + s.arenas);
        assert_eq!(now.bytes, before.bytes + s.bytes_reserved);
    }
    assert_eq!(os_mapped(), before);
}
