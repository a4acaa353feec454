//! poolgc as the program's global allocator: every `Box`, `Vec` and `String` comes from its pools.
//!
//! ```sh
//! cargo run --release --example global_allocator
//! ```

use poolgc::PoolAlloc;
use std::collections::BTreeMap;
use std::error::Error;

#[global_allocator]
static ALLOC: PoolAlloc = PoolAlloc::new();

fn main() -> Result<(), Box<dyn Error>> {
    let before = ALLOC.bytes_in_use();

    // Ordinary code: nothing here knows which allocator serves it.
    let words: Vec<String> = (0..10_000).map(|i| format!("word-{i}")).collect();
    let mut lengths: BTreeMap<usize, usize> = BTreeMap::new();
    for w in &words {
        *lengths.entry(w.len()).or_default() += 1;
    }
    println!("{} words, by length: {lengths:?}", words.len());

    // The cheap counter: one load under the lock, no walk over the heap.
    println!(
        "bytes in use: {} before, {} now",
        before,
        ALLOC.bytes_in_use()
    );

    // The full snapshot (walks every arena) and CPython's `sys._debugmallocstats()` table.
    let stats = ALLOC.stats();
    println!(
        "arenas: {}, pools in use: {}, peak bytes in use: {}",
        stats.arenas, stats.pools_in_use, stats.peak_bytes_in_use
    );
    let mut report = String::new();
    ALLOC.report(&mut report)?;
    println!("{report}");

    // The heap's invariants, checked (the tests run this after every step); the error is a
    // `core::error::Error`, so `?` works.
    ALLOC.check()?;

    drop((words, lengths));
    // Spare arenas and cached mappings back to the OS.
    let released = ALLOC.trim();
    println!(
        "after dropping everything and trimming: {} bytes in use, {released} bytes released",
        ALLOC.bytes_in_use()
    );
    Ok(())
}
