//! A test binary whose own `#[global_allocator]` is `PoolAlloc`: everything here, including the test
//! harness, allocates through it.

use poolgc::PoolAlloc;
use std::collections::{BTreeMap, HashMap};

#[cfg(all(feature = "os", unix))]
#[global_allocator]
static ALLOC: PoolAlloc = PoolAlloc::new();

#[cfg(all(feature = "os", unix))]
#[test]
fn real_work_through_the_global_allocator() {
    let before = ALLOC.stats().allocations;
    let n = if cfg!(miri) { 200 } else { 50_000 };
    // Collections and strings.
    let mut words: Vec<String> = (0..n).map(|i| format!("word-{}", (i * 7919) % n)).collect();
    let mut counts: HashMap<String, usize> = HashMap::new();
    for w in &words {
        *counts.entry(w.clone()).or_default() += 1;
    }
    assert_eq!(counts.len(), n);
    words.sort();
    assert!(words.windows(2).all(|w| w[0] <= w[1]));
    let tree: BTreeMap<usize, Vec<u8>> = (0..n).map(|i| (i, vec![i as u8; i % 600])).collect();
    assert_eq!(tree[&(n - 1)].len(), (n - 1) % 600);
    // Big buffers (large path, mremap growth).
    let mut big = Vec::new();
    for i in 0..(n * 40) {
        big.push(i as u32);
    }
    assert_eq!(big[n * 40 - 1], (n * 40 - 1) as u32);
    let s = ALLOC.stats();
    assert!(s.allocations > before + n as u64);
    assert!(s.pools_in_use > 0 && s.large_blocks > 0);
    drop((words, counts, tree, big));
    ALLOC.check().unwrap();
}

#[cfg(all(feature = "os", unix))]
#[test]
fn two_threads_free_each_others_blocks() {
    use std::sync::mpsc;
    let n = if cfg!(miri) { 100 } else { 100_000 };
    let (to_b, from_a) = mpsc::channel::<Box<[u8]>>();
    let (to_a, from_b) = mpsc::channel::<String>();
    let a = std::thread::spawn(move || {
        for i in 0..n {
            to_b.send(vec![i as u8; 1 + i % 300].into_boxed_slice())
                .unwrap();
        }
        drop(to_b);
        from_b.into_iter().map(|s| s.len()).sum::<usize>()
    });
    let b = std::thread::spawn(move || {
        let mut seen = 0;
        for (i, buf) in from_a.into_iter().enumerate() {
            assert!(buf.iter().all(|&x| x == i as u8));
            seen += 1;
            to_a.send("x".repeat(i % 100)).unwrap();
        }
        seen
    });
    assert_eq!(b.join().unwrap(), n);
    assert_eq!(a.join().unwrap(), (0..n).map(|i| i % 100).sum::<usize>());
    ALLOC.check().unwrap();
}

#[cfg(all(feature = "os", unix))]
#[test]
fn report_can_be_written_into_a_string() {
    let mut r = String::new();
    ALLOC.report(&mut r).unwrap();
    assert!(r.contains("# arenas allocated current"));
}
