//! Batches that stay on the transfer cache through a whole decay period go back to the heap, while
//! batches in use within each period stay.

mod common;

use common::{fill_blocks, free_blocks};
use poolgc::{Config, PoolAlloc};
use std::time::Duration;

static A: PoolAlloc = PoolAlloc::with_config(Config::MEDIUM);

/// Blocks per batch of the 48-, 64- and 80-byte classes (about 2 KiB each).
const BATCH_48: usize = 2048 / 48;
const BATCH_80: usize = 2048 / 80;

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
        let v = fill_blocks(&A, size, n);
        // SAFETY: just allocated by `fill_blocks(&A, size, …)`, freed once.
        unsafe { free_blocks(&A, size, v) };
    }
}

/// Whether the test can tell where periods end. Under Miri the clock also runs while the interpreter
/// executes (a second of it every few seconds), so more periods end than the sleeps below, and only the
/// final bounds, which more periods do not break, are checked there.
const EXACT: bool = !cfg!(miri);

/// Sleeps past the end of a decay period, then churns 64-byte blocks so that the period ends; checks
/// that the churn was served without the heap (the 64-byte batches, in use in every period, stayed).
fn end_a_period(m: usize) {
    std::thread::sleep(Duration::from_millis(1100));
    let allocations = A.stats().allocations;
    churn(64, m);
    if EXACT {
        assert_eq!(
            A.stats().allocations,
            allocations,
            "64-byte blocks in use every period were taken from the heap again"
        );
    }
}

#[test]
fn batches_unused_for_a_whole_period_go_back_to_the_heap() {
    let n = if cfg!(miri) { 800 } else { 20_000 };
    let m = if cfg!(miri) { 700 } else { 4_000 };
    // 48- and 80-byte blocks allocated (and, below, freed): beyond this thread's two batches per class,
    // they go to the transfer cache, and count as in use.
    let v48 = fill_blocks(&A, 48, n);
    let v80 = fill_blocks(&A, 80, n);
    // Then the 64-byte blocks whose traffic ends the periods below, so that nothing below grows the
    // heap (a refill that would grow it hands the whole transfer cache back at once, decayed or not).
    churn(64, m);
    // SAFETY: from `fill_blocks(&A, 48 / 80, …)`, each freed once.
    unsafe {
        free_blocks(&A, 48, v48);
        free_blocks(&A, 80, v80);
    }
    if EXACT {
        assert!(blocks_in_use(48) >= n && blocks_in_use(80) >= n);
    }
    // The first period ends with all those batches as its low-water mark.
    end_a_period(m);
    // In the second, the 48-byte batches stay untouched again, and go back; of the 80-byte ones, those
    // taken during the period (from the transfer cache, not the heap) stay.
    let k = n / 5;
    let allocations = A.stats().allocations;
    let taken = fill_blocks(&A, 80, k);
    if EXACT {
        assert_eq!(A.stats().allocations, allocations);
    }
    // SAFETY: from `fill_blocks(&A, 80, …)`, freed once.
    unsafe { free_blocks(&A, 80, taken) };
    end_a_period(m);
    assert!(
        blocks_in_use(48) <= 2 * BATCH_48,
        "{} 48-byte blocks still cached",
        blocks_in_use(48)
    );
    // About `k` (the batches taken from the transfer cache this period), give or take this thread's own
    // two batches and a batch's rounding.
    let left = blocks_in_use(80);
    let low = if EXACT { k - BATCH_80 } else { 0 };
    assert!(
        (low..=k + 3 * BATCH_80).contains(&left),
        "{left} 80-byte blocks left, {k} were in use during the period"
    );
    A.flush_thread_cache();
    assert_eq!(A.stats().bytes_in_use, 0);
    A.check().unwrap();
}
