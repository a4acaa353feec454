//! The heap's host memory source, whichever this build has: `mmap` on Unix, or the platform allocator
//! (`System`), which hosts without `mmap` use and `--cfg poolgc_system` selects on Unix too:
//! `RUSTFLAGS="--cfg poolgc_system" cargo test --test host_source --test global_alloc --test as_global`.
#![cfg(feature = "os")]

use core::alloc::Layout;
use poolgc::{os_mapped, BlockState, Config, Heap};

/// Arenas and large blocks come from the host, are aligned as the geometry needs, counted while held,
/// and given back by `trim` and `drop`. (One test: `os_mapped` is process-wide.)
#[test]
fn arenas_and_large_blocks_come_from_the_host_and_go_back() {
    let before = os_mapped();
    let config = Config::new(4096, 64 * 1024);
    let mut h = Heap::new(config);
    let l = Layout::from_size_align(48, 8).unwrap();
    // More blocks than one arena holds: several arenas.
    let blocks: Vec<_> = (0..4000).map(|_| h.allocate(l).unwrap()).collect();
    for (i, b) in blocks.iter().enumerate() {
        // SAFETY: a live block of 48 bytes.
        unsafe { b.as_ptr().write_bytes(i as u8, 48) };
    }
    let arenas = os_mapped().arenas - before.arenas;
    assert!(arenas >= 3, "{arenas} arenas for 4000 × 48 bytes");
    assert!(os_mapped().bytes >= before.bytes + arenas * config.arena_size());
    for b in &blocks {
        assert!(matches!(h.block_state(b.as_ptr()), BlockState::InUse));
    }
    h.check().unwrap();

    let big = Layout::from_size_align(3 << 20, 1 << 16).unwrap();
    let p = h.allocate_zeroed(big).unwrap();
    assert_eq!(p.as_ptr().addr() % (1 << 16), 0);
    // SAFETY: a live zeroed block of `big.size()` bytes.
    let s = unsafe { core::slice::from_raw_parts(p.as_ptr(), big.size()) };
    assert!(s.iter().all(|&b| b == 0));
    assert!(os_mapped().bytes >= before.bytes + big.size());
    // SAFETY: allocated above with `big`.
    unsafe { h.deallocate(p, big) };

    for (i, b) in blocks.into_iter().enumerate() {
        // SAFETY: each block is live, freed once, and still holds its pattern.
        unsafe {
            assert_eq!(*b.as_ptr().add(47), i as u8);
            h.deallocate(b, l);
        }
    }
    h.trim();
    assert_eq!(os_mapped().arenas, before.arenas);
    h.check().unwrap();
    drop(h);
    assert_eq!(os_mapped(), before);
}
