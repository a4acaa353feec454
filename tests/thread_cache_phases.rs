//! A program that frees a structure of one block size and then builds one of another: the blocks the
//! transfer cache holds go back to the heap before it grows, so the second structure reuses the first's
//! arenas. (Small arenas, `Config::MEDIUM`, so that it also runs under Miri.)

use poolgc::{Config, PoolAlloc};
use std::alloc::{GlobalAlloc, Layout};

static A: PoolAlloc = PoolAlloc::with_config(Config::MEDIUM).with_thread_cache();

/// Allocates `bytes` worth of `size`-byte blocks of `A`, each filled with its index.
fn build(size: usize, bytes: usize) -> Vec<*mut u8> {
    let l = Layout::from_size_align(size, 8).unwrap();
    (0..bytes / size)
        .map(|i| {
            // SAFETY: a non-zero size; freed by `free` with the same layout.
            let p = unsafe { A.alloc(l) };
            assert!(!p.is_null());
            // SAFETY: a fresh block of `size` bytes.
            unsafe { p.write_bytes(i as u8, size) };
            p
        })
        .collect()
}

fn free(size: usize, blocks: Vec<*mut u8>) {
    let l = Layout::from_size_align(size, 8).unwrap();
    for (i, p) in blocks.into_iter().enumerate() {
        // SAFETY: a live block of `A` from `build(size, …)`; its contents are as written there.
        unsafe {
            assert_eq!(*p.add(size - 1), i as u8);
            A.dealloc(p, l);
        }
    }
}

#[test]
fn a_new_block_size_reuses_what_the_transfer_cache_held() {
    let bytes = if cfg!(miri) { 192 << 10 } else { 2 << 20 };
    let first = build(48, bytes);
    let arenas = A.stats().arenas;
    assert!(arenas >= 3, "{arenas} arenas");
    free(48, first);
    // The 48-byte blocks now sit in this thread's cache and, beyond two batches, on the transfer cache;
    // from the heap's point of view they are still in use.
    assert!(A.stats().bytes_in_use >= bytes / 2);
    let second = build(64, bytes);
    let s = A.stats();
    assert!(
        s.arenas_highwater <= arenas + 1,
        "{arenas} arenas for the first structure, a high-water mark of {} after the second",
        s.arenas_highwater
    );
    free(64, second);
    A.flush_thread_cache();
    assert_eq!(A.stats().bytes_in_use, 0);
    A.check().unwrap();
}
