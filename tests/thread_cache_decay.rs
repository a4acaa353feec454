//! Batches that stay on the transfer cache through a whole decay period go back to the heap, while a
//! class in steady use keeps its batches moving.

mod common;

use common::{fill_blocks, free_blocks};
use poolgc::{Config, PoolAlloc};
use std::time::Duration;

static A: PoolAlloc = PoolAlloc::with_config(Config::MEDIUM).with_thread_cache();

fn blocks_in_use(size: usize) -> usize {
    A.stats()
        .classes
        .iter()
        .find(|c| c.block_size == size)
        .unwrap()
        .blocks_in_use
}

/// Allocates `n` blocks of `size` bytes and frees them again, twice: a few hundred pushes and pops of
/// whole batches on the transfer cache, so its clock is looked at.
fn churn(size: usize, n: usize) {
    for _ in 0..2 {
        free_blocks(&A, size, fill_blocks(&A, size, n));
    }
}

#[test]
fn batches_unused_for_a_whole_period_go_back_to_the_heap() {
    // 48-byte blocks freed once and not asked for again: beyond this thread's two batches of 42, they
    // go to the transfer cache, and count as in use.
    let n = if cfg!(miri) { 2_000 } else { 20_000 };
    let m = if cfg!(miri) { 1_200 } else { 4_000 };
    let v = fill_blocks(&A, 48, n);
    // The other class's blocks next, so that its traffic below does not grow the heap (a refill that
    // would grow it hands the whole transfer cache back at once, decayed or not).
    churn(64, m);
    free_blocks(&A, 48, v);
    assert!(blocks_in_use(48) >= n);
    // Two periods with traffic of another class: the first ends with the 48-byte batches as its
    // low-water mark, the second, in which they stay untouched again, gives them back.
    for _ in 0..2 {
        std::thread::sleep(Duration::from_millis(1100));
        churn(64, m);
    }
    assert!(
        blocks_in_use(48) <= 2 * 42,
        "{} 48-byte blocks still cached",
        blocks_in_use(48)
    );
    // The class in use kept its batches (they were wanted within each period).
    assert!(blocks_in_use(64) > 0);
    A.flush_thread_cache();
    assert_eq!(A.stats().bytes_in_use, 0);
    A.check().unwrap();
}
