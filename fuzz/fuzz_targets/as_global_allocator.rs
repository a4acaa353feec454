//! cargo-fuzz target with `PoolAlloc` as the fuzz process's own `#[global_allocator]`: everything Rust
//! allocates here — libFuzzer's Rust side (`libfuzzer-sys`), the input copies, the collections below —
//! goes through poolgc, growing from the OS, through the default `PoolAlloc::new()` (per-thread caches in
//! front of the heap, as users run it). This is how a user fuzzes their own program on poolgc.
//!
//! The input drives std collections (B-tree and hash maps, strings, vectors grown by `realloc` into the
//! large path and shrunk back), the results are checked against each other, and `A.check()` runs the full
//! heap scan after every input.
#![no_main]

use poolgc::PoolAlloc;
use std::collections::{BTreeMap, HashMap};

#[global_allocator]
static A: PoolAlloc = PoolAlloc::new();

/// Largest value a growth op makes (well into the large, `mremap`-grown path).
const MAX_VALUE: usize = 4 << 20;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut tree: BTreeMap<u8, Vec<u8>> = BTreeMap::new();
    let mut hash: HashMap<u8, String> = HashMap::new();
    let mut big: Vec<u32> = Vec::new();
    for chunk in data.chunks(3) {
        let op = chunk[0];
        // Every value of key `k` is filled with the byte `k`, so corruption shows.
        let key = *chunk.get(1).unwrap_or(&0);
        let len = usize::from(*chunk.get(2).unwrap_or(&0));
        match op % 5 {
            // Insert: a value whose size walks across the small classes and into large blocks.
            0 | 1 => {
                let v = vec![key; len * (1 + usize::from(op % 8))];
                hash.insert(key, format!("{key}:{}", v.len()));
                tree.insert(key, v);
            }
            2 => {
                tree.remove(&key);
                hash.remove(&key);
            }
            // Grow a value (realloc), or give the big vector's spare capacity back (shrinking realloc).
            // Doubling is capped at 4 MiB: a run of growth ops would otherwise ask for gigabytes and
            // trip libFuzzer's RSS limit (an out-of-memory report, not a bug).
            3 => {
                if let Some(v) = tree.get_mut(&key) {
                    v.resize((v.len() * 2 + len).min(MAX_VALUE), key);
                    hash.insert(key, format!("{key}:{}", v.len()));
                } else {
                    big.shrink_to(len);
                }
            }
            // Grow one vector by runs of 0..16: realloc through every class and into the large path.
            _ => big.extend((0..len * 16).map(|i| (i % 16) as u32)),
        }
    }
    assert_eq!(tree.len(), hash.len());
    for (k, v) in &tree {
        assert_eq!(hash[k], format!("{k}:{}", v.len()));
        assert!(v.iter().all(|b| b == k), "value of {k} corrupted");
    }
    assert!(
        big.chunks(16)
            .all(|c| c.iter().enumerate().all(|(i, &x)| x as usize == i)),
        "big vector corrupted"
    );
    drop((tree, hash, big));
    A.check().unwrap_or_else(|e| panic!("heap check: {e}"));
});
