//! A tour of poolgc: `cargo run --release --example tour` (add `--features gc-introspect` for all of
//! section 7).
//!
//! This program's own global allocator is poolgc; every `Vec`, `String` and `Box` below comes from its pools.

use poolgc::gc::{self, Gc, Trace, Tracer};
use poolgc::size_class::{block_size, class_of, effective_size};
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
        // The smallest class that fits and whose blocks in use grew (a small or a medium class), if any.
        let grew = (0..after.classes.len()).find(|&i| {
            block_size(i) >= size
                && after.classes[i].blocks_in_use > before.classes[i].blocks_in_use
        });
        if after.large_blocks > before.large_blocks || grew.is_none() {
            println!(
                "{size:>8} {:>7} {:>11}  large: an OS mapping of its own",
                "-", "-"
            );
        } else {
            let c = grew.unwrap_or_else(|| class_of(effective_size(size, 1)));
            println!(
                "{size:>8} {c:>7} {:>11}  a pool of class {c} ({} blocks of it in use now)",
                block_size(c),
                after.classes[c].blocks_in_use
            );
        }
    }

    println!("\n== 2. Many small objects: pools fill up, arenas are taken from the OS ==");
    let before = ALLOC.stats();
    let mut strings: Vec<String> = (0..200_000).map(|i| format!("object number {i}")).collect();
    let during = ALLOC.stats();
    print_stats("before", &before);
    print_stats("with 200,000 strings", &during);
    // Free every other string of the oldest 100,000 and some of the next: their pools are left part full.
    for (i, s) in strings.iter_mut().enumerate().take(150_000) {
        if i % 2 == 0 || (i > 100_000 && i % 7 != 0) {
            *s = String::new();
        }
    }
    print_stats("after freeing 105,000", &ALLOC.stats());
    let map = std::env::temp_dir().join("poolgc-heap-map.svg");
    let mut svg = String::new();
    ALLOC.write_heap_svg(&mut svg).unwrap();
    std::fs::write(&map, svg).unwrap();
    println!(
        "  heap map (a cell per pool, by size class and fill): {}",
        map.display()
    );

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
    introspection_tour();
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

/// The gc module's tools for finding what holds memory: a census and its growth, sizes, what references
/// what, the garbage a collection found (kept with DEBUG_SAVEALL), and pictures of both.
fn introspection_tour() {
    println!("\n== 7. Finding memory problems: gc.get_referrers, objgraph, DEBUG_SAVEALL ==");
    let node = |name: &str| {
        Gc::new(Node {
            name: name.into(),
            edges: RefCell::new(Vec::new()),
        })
    };
    #[cfg(feature = "gc-introspect")]
    let before = gc::census();
    // A cache that was meant to be cleared: app -> cache -> session -> the leaked buffer.
    let app = node("app");
    let cache = node("cache");
    let session = node("session");
    let leaked = node("leaked buffer");
    app.edges.borrow_mut().push(cache.clone());
    cache.edges.borrow_mut().push(session.clone());
    session.edges.borrow_mut().push(leaked.clone());
    drop((cache, session));
    let names: Vec<Gc<String>> = (0..50).map(|i| Gc::new(format!("name {i}"))).collect();
    println!(
        "  sys.getsizeof: a Node box is {} B, a Gc<String> box {} B; gc.is_tracked: {} and {}",
        gc::getsizeof(&app),
        gc::getsizeof(&names[0]),
        gc::is_tracked(&app),
        gc::is_tracked(&names[0])
    );
    #[cfg(feature = "gc-introspect")]
    {
        println!("  objgraph.show_growth() since the start of this section:");
        for g in gc::census().growth_since(&before) {
            println!(
                "    {:<28} {:>6} {:>+6}",
                gc::short_type_name(g.type_name),
                g.count,
                g.count_delta
            );
        }
        let who = gc::get_referrers(&leaked);
        println!(
            "  gc.get_referrers(leaked) = {:?}",
            who.iter()
                .map(|o| o.downcast::<Node>().unwrap().name.clone())
                .collect::<Vec<_>>()
        );
        drop(who); // its handles would show as holding `session` from outside
        let name = |o: &gc::GcAny| {
            o.downcast::<Node>()
                .map_or(String::new(), |n| n.name.clone())
        };
        let mut dot = String::new();
        gc::write_backrefs_dot(&leaked, 5, Some(&name), &mut dot).unwrap();
        let path = std::env::temp_dir().join("poolgc-backrefs.dot");
        std::fs::write(&path, dot).unwrap();
        println!(
            "  what keeps it alive (objgraph.show_backrefs): {}  (dot -Tsvg to draw it)",
            path.display()
        );
    }
    #[cfg(not(feature = "gc-introspect"))]
    println!(
        "  (the census, gc.get_referrers and the back-reference graph need --features gc-introspect)"
    );
    drop((app, leaked, names));

    gc::set_debug(gc::DEBUG_SAVEALL);
    let (x, y, z) = (node("x"), node("y"), node("z"));
    x.edges.borrow_mut().push(y.clone());
    y.edges.borrow_mut().push(z.clone());
    z.edges.borrow_mut().push(x.clone());
    y.edges.borrow_mut().push(x.clone());
    drop((x, y, z));
    let found = gc::collect();
    let garbage = gc::garbage();
    println!(
        "  with gc.DEBUG_SAVEALL, gc::collect() = {found} and nothing is dropped: gc.garbage holds {:?}",
        garbage
            .iter()
            .map(|o| o.downcast::<Node>().unwrap().name.clone())
            .collect::<Vec<_>>()
    );
    let mut dot = String::new();
    let name = |o: &gc::GcAny| {
        o.downcast::<Node>()
            .map_or(String::new(), |n| n.name.clone())
    };
    gc::write_dot(&garbage, Some(&name), &mut dot).unwrap();
    let path = std::env::temp_dir().join("poolgc-garbage.dot");
    std::fs::write(&path, dot).unwrap();
    println!("  the cycles it found: {}", path.display());
    gc::set_debug(0);
    drop(garbage);
    drop(gc::take_garbage());
    println!("  gc.garbage cleared; the next collection frees them:");
    gc::collect();

    println!(
        "\n== 8. One report for everything: the allocator, the Gc box heap, the collector ==\n"
    );
    let mut report = String::new();
    gc::report(Some(&ALLOC), &mut report).unwrap();
    print!("{report}");
}

fn print_stats(label: &str, s: &poolgc::Stats) {
    println!(
        "  {label:<22} in use {:>11} B   peak {:>11} B   reserved {:>11} B   arenas {:>3}   pools {:>5}",
        s.bytes_in_use, s.peak_bytes_in_use, s.bytes_reserved, s.arenas, s.pools_in_use
    );
}
