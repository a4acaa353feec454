//! Collections in a pool of their own (feature `allocator-api2`): a `Vec`, a `Box` and a hashbrown
//! `HashMap` allocate from one `PoolAlloc`, which counts their bytes apart from the rest of the program
//! and gives its memory back when it is dropped.
//!
//! ```sh
//! cargo run --release --example collections --features allocator-api2
//! ```
//!
//! A program's own `Cargo.toml` needs `poolgc = { version = "0.1", features = ["allocator-api2"] }`,
//! `allocator-api2 = "0.2"` for `Vec`/`Box`, and hashbrown with its `allocator-api2` feature.

use allocator_api2::boxed::Box;
use allocator_api2::vec::Vec;
use poolgc::PoolAlloc;

/// A parsed record, kept in the pool.
#[derive(Debug)]
struct Record<'a> {
    id: u32,
    tags: Vec<u16, &'a PoolAlloc>,
}

fn main() {
    // The pool for one piece of work (a request, a frame, a parse): not the global allocator.
    let pool = PoolAlloc::new();

    let mut records: Vec<Record, &PoolAlloc> = Vec::new_in(&pool);
    for id in 0..1_000 {
        let mut tags = Vec::with_capacity_in(4, &pool);
        tags.extend((0..4).map(|t| (id * 4 + t) as u16));
        records.push(Record { id, tags });
    }
    let mut by_tag = hashbrown::HashMap::new_in(&pool);
    for r in &records {
        for &t in &r.tags {
            by_tag.insert(t, r.id);
        }
    }
    let big = Box::new_in([0u8; 4096], &pool);
    println!(
        "{} records, {} tags, a {}-byte box: {} bytes in the pool",
        records.len(),
        by_tag.len(),
        big.len(),
        pool.bytes_in_use()
    );
    assert_eq!(by_tag[&2001], 500);

    // The pool's own report: only these collections' blocks are in it.
    let mut report = String::new();
    pool.report(&mut report).unwrap();
    println!("{report}");

    drop((records, by_tag, big));
    pool.trim(); // blocks this thread cached, if the pool has thread caches, back to the heap
    println!(
        "after dropping them: {} bytes in the pool",
        pool.bytes_in_use()
    );
    assert_eq!(pool.bytes_in_use(), 0);
    // Dropping the pool returns its arenas to the OS.
}
