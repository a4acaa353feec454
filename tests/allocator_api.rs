//! `PoolAlloc` as an `allocator_api2` allocator, `bytes_in_use`, and the error types as `Error`s.

mod common;

use allocator_api2::alloc::{Allocator, Layout};
use allocator_api2::boxed::Box as ApiBox;
use allocator_api2::vec::Vec as ApiVec;
use common::Region;
use core::ptr::NonNull;
use poolgc::{Config, PoolAlloc, RegionError};

/// An allocator over a fresh region (no OS; locked, so its counts are exact at every moment); keep the
/// region alive while it is used.
fn pool(len: usize) -> (PoolAlloc, Region) {
    let r = Region::new(len, 4096);
    let a = PoolAlloc::empty_with_config_locked(Config::MEDIUM);
    // SAFETY: a fresh allocation, used by nothing else, outliving the allocator's use.
    unsafe { a.add_region(r.ptr(), len) };
    (a, r)
}

#[test]
fn bytes_in_use_follows_the_stats_without_walking() {
    let (a, _r) = pool(4 << 20);
    assert_eq!(a.bytes_in_use(), 0);
    let mut blocks = Vec::new();
    for (i, size) in [1usize, 16, 17, 100, 512, 600, 3000, 9000, 70_000]
        .iter()
        .enumerate()
    {
        let layout = Layout::from_size_align(*size, 8).unwrap();
        let p = a.allocate(layout).unwrap();
        blocks.push((p.cast::<u8>(), layout));
        assert!(a.bytes_in_use() >= blocks.iter().map(|(_, l)| l.size()).sum::<usize>());
        assert_eq!(
            a.bytes_in_use(),
            a.stats().bytes_in_use,
            "after {} blocks",
            i + 1
        );
    }
    while let Some((p, layout)) = blocks.pop() {
        // SAFETY: allocated above with this layout.
        unsafe { a.deallocate(p, layout) };
        assert_eq!(a.bytes_in_use(), a.stats().bytes_in_use);
    }
    assert_eq!(a.bytes_in_use(), 0);
}

#[test]
fn collections_live_in_their_own_pool() {
    let (a, _r) = pool(4 << 20);
    let mut v: ApiVec<u64, &PoolAlloc> = ApiVec::new_in(&a);
    for i in 0..10_000u64 {
        v.push(i); // grows through the pool classes into large blocks
    }
    assert!(v.iter().copied().eq(0..10_000));
    assert!(a.bytes_in_use() >= 80_000);
    v.truncate(10);
    v.shrink_to_fit(); // shrinks back into a pool class
    assert_eq!(&v[..], &(0..10).collect::<Vec<_>>()[..]);

    let mut m = hashbrown::HashMap::new_in(&a);
    for i in 0..1000u32 {
        m.insert(i, i.to_string());
    }
    assert_eq!(m.get(&777).map(String::as_str), Some("777"));
    let b = ApiBox::new_in([7u8; 40], &a);
    assert_eq!(b[39], 7);
    a.check().unwrap();
    drop((v, m, b));
    assert_eq!(a.bytes_in_use(), 0);
}

#[test]
fn resizes_keep_contents_and_zero_what_they_add() {
    let (a, _r) = pool(4 << 20);
    let l = |size, align| Layout::from_size_align(size, align).unwrap();
    // Dirty the memory the steps below will reuse, so that zeroing is not the region's doing.
    for (size, align) in [
        (24, 64),
        (400, 64),
        (5000, 16),
        (100_000, 16),
        (200_000, 16),
    ] {
        let p = a.allocate(l(size, align)).unwrap().cast::<u8>();
        // SAFETY: a live block of `size` bytes, freed with its layout.
        unsafe {
            p.as_ptr().write_bytes(0xCD, size);
            a.deallocate(p, l(size, align));
        }
    }
    // Zero-sized: dangling, aligned, never counted.
    let z = a.allocate(l(0, 64)).unwrap();
    assert_eq!(z.len(), 0);
    assert_eq!(z.cast::<u8>().as_ptr() as usize % 64, 0);
    assert_eq!(a.bytes_in_use(), 0);
    // SAFETY: each block is live with the layout named, and only its own bytes are touched.
    unsafe {
        let p = a.grow_zeroed(z.cast(), l(0, 64), l(24, 64)).unwrap();
        assert_eq!(p.as_ref(), &[0u8; 24][..]);
        let mut p: NonNull<u8> = p.cast();
        p.as_ptr().write_bytes(0xAB, 24);
        // Through sizes that cross the pool/large boundary, with and without a change of alignment.
        let steps = [
            (24, 64),
            (400, 64),
            (5000, 16),
            (100_000, 16),
            (300, 8),
            (8, 8),
        ];
        for w in steps.windows(2) {
            let (old, new) = (l(w[0].0, w[0].1), l(w[1].0, w[1].1));
            let q = if new.size() > old.size() {
                a.grow_zeroed(p, old, new).unwrap()
            } else {
                a.shrink(p, old, new).unwrap()
            };
            assert_eq!(q.len(), new.size());
            let bytes = q.as_ref();
            let kept = old.size().min(new.size()).min(24);
            assert!(
                bytes[..kept].iter().all(|&b| b == 0xAB),
                "{old:?} -> {new:?}"
            );
            assert!(
                bytes[24.min(new.size())..].iter().all(|&b| b == 0),
                "{old:?} -> {new:?}"
            );
            assert_eq!(q.cast::<u8>().as_ptr() as usize % new.align(), 0);
            p = q.cast();
        }
        a.deallocate(p, l(8, 8));
    }
    assert_eq!(a.bytes_in_use(), 0);
    a.check().unwrap();
}

#[test]
fn exhaustion_is_an_error_not_a_panic() {
    let (a, _r) = pool(64 * 1024);
    let mut v: ApiVec<u8, &PoolAlloc> = ApiVec::new_in(&a);
    assert!(v.try_reserve(1 << 20).is_err());
    assert!(a.allocate(Layout::new::<[u8; 1 << 20]>()).is_err());
    assert!(v.try_reserve(1000).is_ok());
}

#[test]
fn error_types_convert_into_box_dyn_error() {
    fn checked(a: &PoolAlloc) -> Result<(), Box<dyn std::error::Error>> {
        a.check()?;
        Err(RegionError::TooSmall)?
    }
    let (a, _r) = pool(64 * 1024);
    let e = checked(&a).unwrap_err();
    assert_eq!(e.to_string(), RegionError::TooSmall.to_string());
}
