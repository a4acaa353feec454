//! A program that frees a structure of one block size and then builds one of another: the blocks the
//! transfer cache holds go back to the heap before it grows, so the second structure reuses the first's
//! arenas. (Small arenas, `Config::MEDIUM`, so that it also runs under Miri.)

mod common;

use common::{fill_blocks, free_blocks};
use poolgc::{Config, PoolAlloc};

static A: PoolAlloc = PoolAlloc::with_config(Config::MEDIUM);

#[test]
fn a_new_block_size_reuses_what_the_transfer_cache_held() {
    let bytes = if cfg!(miri) { 128 << 10 } else { 2 << 20 };
    let first = fill_blocks(&A, 48, bytes / 48);
    let arenas = A.stats().arenas;
    assert!(arenas >= 2, "{arenas} arenas");
    // SAFETY: the blocks of `fill_blocks(&A, 48, …)` above, freed once.
    unsafe { free_blocks(&A, 48, first) };
    // The 48-byte blocks now sit in this thread's cache and, beyond two batches, on the transfer cache;
    // from the heap's point of view they are still in use.
    assert!(A.stats().bytes_in_use >= bytes / 2);
    let second = fill_blocks(&A, 64, bytes / 64);
    let s = A.stats();
    assert!(
        s.arenas_highwater <= arenas + 1,
        "{arenas} arenas for the first structure, a high-water mark of {} after the second",
        s.arenas_highwater
    );
    // SAFETY: as above.
    unsafe { free_blocks(&A, 64, second) };
    A.flush_thread_cache();
    assert_eq!(A.stats().bytes_in_use, 0);
    A.check().unwrap();
}
