//! A tour of poolgc: `cargo run --release --example tour`.
//!
//! This program's own global allocator is poolgc; every `Vec`, `String` and `Box` below comes from its pools.

use poolgc::gc::{self, Gc, Trace, Tracer};
use poolgc::size_class::{block_size, class_of, effective_size, medium_class_of, SMALL_MAX};
use poolgc::PoolAlloc;
use std::cell::RefCell;

#[global_allocator]
static ALLOC: PoolAlloc = PoolAlloc::new();

fn main() {
    println!("== 1. Requests land in 16-byte size classes (pymalloc's rule) ==");
    println!(
        "{:>8} {:>7} {:>11}  where it went",
        "request", "class", "block size"
    );
    let mut kept: Vec<Box<[u8]>> = Vec::new();
    for size in [1, 16, 17, 100, 512, 513, 100_000] {
        let before = ALLOC.stats();
        kept.push(vec![0xAB; size].into_boxed_slice());
        let after = ALLOC.stats();
        let e = effective_size(size, 1);
        if after.large_blocks > before.large_blocks {
            println!(
                "{size:>8} {:>7} {:>11}  large: an OS mapping of its own",
                "-", "-"
            );
        } else {
            // Up to 512 bytes a small class; above, one of the medium classes (four per doubling).
            let c = if e <= SMALL_MAX {
                class_of(e)
            } else {
                medium_class_of(e)
            };
            println!(
                "{size:>8} {c:>7} {:>11}  a pool of class {c} ({} blocks of it in use now)",
                block_size(c),
                after.classes[c].blocks_in_use
            );
        }
    }

    println!("\n== 2. Many small objects: pools fill up, arenas are taken from the OS ==");
    let before = ALLOC.stats();
    let strings: Vec<String> = (0..200_000).map(|i| format!("object number {i}")).collect();
    let during = ALLOC.stats();
    print_stats("before", &before);
    print_stats("with 200,000 strings", &during);

    println!("\n== 3. The report, like CPython's sys._debugmallocstats() ==\n");
    let mut report = String::new();
    ALLOC.report(&mut report).unwrap();
    print!("{report}");

    println!(
        "\n== 4. Free them: empty pools go back to their arenas, empty arenas back to the OS =="
    );
    drop(strings);
    drop(kept);
    // Freed small blocks go to this thread's cache and the shared transfer cache first (the fast path),
    // and count as in use until they reach the heap; a flush hands them back now.
    print_stats("after freeing", &ALLOC.stats());
    ALLOC.flush_thread_cache();
    let after = ALLOC.stats();
    print_stats("after a flush", &after);
    println!(
        "  arenas reclaimed so far: {} (spares kept against thrashing, given back after 1 s unused)",
        after.arenas_reclaimed
    );
    let trimmed = ALLOC.trim();
    println!("  trim() gives back the spares at once: {trimmed} bytes");
    ALLOC.check().expect("heap invariants hold");
    println!("  Heap::check(): every invariant holds");

    gc_tour();
    small_int_tour();
}

/// A node of an object graph: its edges are `Gc`s, so it can take part in cycles.
struct Node {
    name: String,
    edges: RefCell<Vec<Gc<Node>>>,
}

// SAFETY: `trace` visits `edges`, the only field that can own a `Gc`, once. (With feature `derive`,
// `#[derive(Trace)]` writes this.)
unsafe impl Trace for Node {
    fn trace(&self, tracer: &mut Tracer) {
        self.edges.trace(tracer);
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        println!("  dropping {}", self.name);
    }
}

fn gc_tour() {
    println!(
        "\n== 5. Gc<T>: reference counting, and a collector for the cycles counting cannot free =="
    );
    let node = |name: &str| {
        Gc::new(Node {
            name: name.into(),
            edges: RefCell::new(Vec::new()),
        })
    };
    let a = node("a");
    let b = node("b");
    let c = node("c");
    a.edges.borrow_mut().push(b.clone());
    b.edges.borrow_mut().push(c.clone());
    c.edges.borrow_mut().push(a.clone()); // a -> b -> c -> a
    println!(
        "  a ring of three: strong_count(a) = {} (the handle `a`, and c's edge)",
        Gc::strong_count(&a)
    );
    let watch = Gc::downgrade(&a);
    drop((a, b, c));
    println!(
        "  handles dropped: a is still alive ({} strong ref from c), {} possible roots buffered (gc.get_count())",
        watch.strong_count(),
        gc::count()
    );
    let freed = gc::collect();
    println!(
        "  gc::collect() = {freed} (gc.collect()); the weak ref now upgrades to {:?}",
        watch.upgrade().map(|_| ())
    );

    println!(
        "\n  automatic collection: 10,000 garbage 2-cycles made in a loop; threshold {}",
        gc::threshold()
    );
    struct Quiet(RefCell<Option<Gc<Quiet>>>);
    // SAFETY: visits its one `Gc` field once.
    unsafe impl Trace for Quiet {
        fn trace(&self, tracer: &mut Tracer) {
            self.0.trace(tracer);
        }
    }
    for _ in 0..10_000 {
        let x = Gc::new(Quiet(RefCell::new(None)));
        let y = Gc::new(Quiet(RefCell::new(Some(x.clone()))));
        *x.0.borrow_mut() = Some(y);
    }
    let s = gc::stats();
    println!(
        "  gc::stats(): {} collections, {} objects collected, {:?} spent, {} live, {} buffered, threshold {} (effective {})",
        s.collections, s.collected, s.time, s.live, s.buffered, s.threshold, s.effective_threshold
    );
    println!(
        "  gc::collect() frees the last {} buffered cycles' {} objects",
        s.buffered,
        gc::collect()
    );
    if let Some(pools) = gc::box_allocator() {
        let p = pools.stats();
        println!(
            "  Gc boxes live in their own pools: {} B in use, {} pools, {} arenas",
            p.bytes_in_use, p.pools_in_use, p.arenas
        );
    }
}

/// Python's small-integer cache: `-5..=256` built once, immortal, so `a is b` holds for equal small ints.
fn small_int_tour() {
    println!("\n== 6. Immortal objects: a small-integer cache, as CPython's -5..=256 ==");
    let cache: Vec<Gc<i64>> = (-5..=256)
        .map(|i| {
            let g = Gc::new(i);
            Gc::make_immortal(&g); // clone and drop never write its count again
            g
        })
        .collect();
    let int = |i: i64| match usize::try_from(i + 5) {
        Ok(k) if k < cache.len() => cache[k].clone(),
        _ => Gc::new(i),
    };
    let (a, b) = (int(7), int(7));
    let (c, d) = (int(1000), int(1000));
    println!("  a = 7; b = 7:       a is b -> {}", Gc::ptr_eq(&a, &b));
    println!("  c = 1000; d = 1000: c is d -> {}", Gc::ptr_eq(&c, &d));
    let copies: Vec<Gc<i64>> = (0..1000).map(|_| a.clone()).collect();
    println!(
        "  after 1,000 clones: strong_count(7) = {} (sys.getrefcount(7) on CPython 3.12: 4294967295)",
        Gc::strong_count(&a)
    );
    drop(copies);
    println!(
        "  and after dropping them: {}, possible roots buffered: {}",
        Gc::strong_count(&a),
        gc::count()
    );
}

fn print_stats(label: &str, s: &poolgc::Stats) {
    println!(
        "  {label:<22} in use {:>11} B   peak {:>11} B   reserved {:>11} B   arenas {:>3}   pools {:>5}",
        s.bytes_in_use, s.peak_bytes_in_use, s.bytes_reserved, s.arenas, s.pools_in_use
    );
}
