//! What feature `gc-introspect` (the list of live `Gc` boxes behind `gc::get_objects`) costs: time per
//! operation and bytes per box, measured in this build. Run it without and with the feature, one after
//! the other, and compare the two tables:
//!
//! `for f in "" gc-introspect; do cargo run --release -p poolgc-bench --bin gc_registry --features "$f" -- [--quick]; done`
//!
//! * **new+drop green**: `Gc::new(u64)` then drop (freed at once; never tracked);
//! * **new+drop node**: the same for a node type the collector tracks;
//! * **cycles**: build 2-cycles of nodes, drop the handles, `gc::collect()` (per object freed).
//!
//! Every time cell is the median over the runs, in ns per object.

use poolgc::gc::{self, Gc, Trace, Tracer};
use std::cell::RefCell;
use std::hint::black_box;
use std::time::Instant;

struct Node(RefCell<Option<Gc<Node>>>);
// SAFETY: visits its one `Gc` field once.
unsafe impl Trace for Node {
    fn trace(&self, t: &mut Tracer) {
        self.0.trace(t);
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn time(runs: usize, n: usize, mut f: impl FnMut(usize)) -> f64 {
    median(
        (0..runs)
            .map(|_| {
                let t = Instant::now();
                f(n);
                t.elapsed().as_nanos() as f64 / n as f64
            })
            .collect(),
    )
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (runs, n) = if quick { (3, 100_000) } else { (11, 1_000_000) };
    gc::disable();
    let green = time(runs, n, |n| {
        for i in 0..n {
            black_box(Gc::new(i as u64));
        }
    });
    let node = time(runs, n, |n| {
        for _ in 0..n {
            black_box(Gc::new(Node(RefCell::new(None))));
        }
    });
    let cycles = time(runs, n, |n| {
        for _ in 0..n / 2 {
            let a = Gc::new(Node(RefCell::new(None)));
            let b = Gc::new(Node(RefCell::new(Some(a.clone()))));
            *a.0.borrow_mut() = Some(b);
        }
        gc::collect();
    });
    let feature = if cfg!(feature = "gc-introspect") {
        "on"
    } else {
        "off"
    };
    println!("| gc-introspect | new+drop green (ns) | new+drop node (ns) | cycles (ns/object) | Gc<u64> box (B) | node box (B) |");
    println!("|---|---|---|---|---|---|");
    println!(
        "| {feature} | {green:.1} | {node:.1} | {cycles:.1} | {} | {} |",
        gc::getsizeof(&Gc::new(0u64)),
        gc::getsizeof(&Gc::new(Node(RefCell::new(None))))
    );
}
