//! The collector benchmark's workloads, run in one process per cell by the `gc_system` and `gc_poolgc`
//! binaries (the system allocator, or poolgc, as `#[global_allocator]`); the `collectors` binary drives
//! them and prints the tables.
//!
//! Every collector is used through [`Collector`]: nodes with an id and a list of edges, whose drops are
//! counted, so that a workload can say at its end how many nodes leaked.

mod peers;
mod workloads;

pub use peers::{BaconRajan, Dumpster, GcModule, Poolgc, RcPeer, RustCc};
pub use workloads::WORKLOADS;

use std::cell::Cell;
use std::time::{Duration, Instant};

/// A reference-counted pointer library, seen through one node type.
pub trait Collector {
    /// The column name.
    const NAME: &'static str;
    /// Whether it reclaims cycles (`Rc` does not: it runs the acyclic workloads only).
    const CYCLES: bool;
    /// Whether it collects on its own; the workloads also call [`collect`](Self::collect) at fixed
    /// points, the same for every library, as a program using one without automatic collection must.
    const AUTOMATIC: bool;
    /// The pointer to a node.
    type P: Clone;
    /// A new node (counted as created).
    fn node(id: u32) -> Self::P;
    /// The node's id.
    fn id(p: &Self::P) -> u32;
    /// Adds an edge `from -> to`.
    fn push(from: &Self::P, to: Self::P);
    /// Removes edge `i` of `from` (the last edge takes its place) and returns it.
    fn take(from: &Self::P, i: usize) -> Option<Self::P>;
    /// How many edges `p` has.
    fn degree(p: &Self::P) -> usize;
    /// A handle to the target of edge `i`.
    fn edge(p: &Self::P, i: usize) -> Option<Self::P>;
    /// Calls `f` on every edge of `p`, by reference (no handle is cloned).
    fn each(p: &Self::P, f: impl FnMut(&Self::P));
    /// A full collection.
    fn collect();
}

thread_local! {
    static CREATED: Cell<u64> = const { Cell::new(0) };
    static DROPPED: Cell<u64> = const { Cell::new(0) };
}

/// Counts one node dropped (every node type's `Drop`).
#[inline]
pub fn count_drop() {
    DROPPED.with(|d| d.set(d.get() + 1));
}

/// Counts one node created (the workloads call it beside every `Collector::node`).
#[inline]
fn count_new() {
    CREATED.with(|d| d.set(d.get() + 1));
}

fn dropped() -> u64 {
    DROPPED.with(Cell::get)
}

/// The longest step of a workload. Off in timing runs (a clock read around every step would weigh on
/// the time); on in the separate run that measures pauses.
pub struct Pauses {
    on: bool,
    longest: Duration,
}

impl Pauses {
    /// Runs one step of the workload (an operation that may drop handles or collect).
    #[inline]
    pub fn step<R>(&mut self, f: impl FnOnce() -> R) -> R {
        if !self.on {
            return f();
        }
        let t = Instant::now();
        let r = f();
        self.longest = self.longest.max(t.elapsed());
        r
    }
}

/// What a workload reports besides its time.
#[derive(Default)]
pub struct Report {
    /// Nodes dropped while the live-graph workload collected (must be 0).
    pub freed_live: u64,
}

/// Peak resident set size of this process (`VmHWM`), in KiB.
fn peak_rss_kib() -> u64 {
    crate::workloads::peak_rss_kib()
}

/// One cell: `gc_<allocator> WORKLOAD COLLECTOR [--quick] [--pauses]`. Prints
/// `time_s peak_rss_kib longest_pause_s leaked freed_live`.
pub fn child_main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(w), Some(c)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: gc_<allocator> WORKLOAD COLLECTOR [--quick] [--pauses]");
        std::process::exit(2);
    };
    let quick = args.iter().any(|a| a == "--quick");
    let mut pauses = Pauses {
        on: args.iter().any(|a| a == "--pauses"),
        longest: Duration::ZERO,
    };
    let run = match c.as_str() {
        "poolgc" => workloads::run::<Poolgc>,
        "Rc" => workloads::run::<RcPeer>,
        "bacon_rajan_cc" => workloads::run::<BaconRajan>,
        "rust-cc" => workloads::run::<RustCc>,
        "dumpster" => workloads::run::<Dumpster>,
        "gcmodule" => workloads::run::<GcModule>,
        _ => {
            eprintln!("unknown collector {c}");
            std::process::exit(2);
        }
    };
    let t = Instant::now();
    let Some(report) = run(w, quick, &mut pauses) else {
        eprintln!("unknown workload {w}");
        std::process::exit(2);
    };
    let time = t.elapsed().as_secs_f64();
    let leaked = CREATED.with(Cell::get) - dropped();
    println!(
        "{time:.6} {} {:.6} {leaked} {}",
        peak_rss_kib(),
        pauses.longest.as_secs_f64(),
        report.freed_live
    );
}
