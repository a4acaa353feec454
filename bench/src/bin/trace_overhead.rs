//! What tracemalloc costs: the workloads with poolgc as the global allocator, tracing off, on (1 and 8
//! frames) and sampled, in one process, alternating; prints the median time of each and its ratio to
//! tracing off.
//!
//! `cargo run --release -p poolgc-bench --features trace --bin trace_overhead -- [--quick] [--runs N]`

use poolgc::trace::{self, Sampling};
use poolgc_bench::workloads;

#[global_allocator]
static A: poolgc::PoolAlloc = poolgc::PoolAlloc::new();

/// The tracer's settings measured: (column name, frames and sampling; `None` for tracing off).
const MODES: &[(&str, Option<(usize, Sampling)>)] = &[
    ("off", None),
    ("on, 1 frame", Some((1, Sampling::All))),
    ("on, 8 frames", Some((8, Sampling::All))),
    ("1 call in 64", Some((1, Sampling::Calls(64)))),
];

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let runs: usize = args
        .iter()
        .position(|a| a == "--runs")
        .and_then(|i| args.get(i + 1)?.parse().ok())
        .unwrap_or(3);
    let names = ["binary-trees", "strings", "hashmap", "vec-growth"];
    print!("| workload |");
    for (m, _) in MODES {
        print!(" {m} |");
    }
    println!();
    println!("|---|{}", "---|".repeat(MODES.len()));
    for name in names {
        let mut times = vec![Vec::new(); MODES.len()];
        let mut unit = "";
        for _ in 0..runs {
            for (i, (_, mode)) in MODES.iter().enumerate() {
                if let Some((frames, sampling)) = mode {
                    trace::start_sampled(*frames, *sampling);
                }
                let (v, u) = workloads::run(name, quick).expect("a known workload");
                trace::stop();
                times[i].push(v);
                unit = u;
            }
        }
        let median = |v: &mut Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        let off = median(&mut times[0]);
        print!("| {name} | {off:.1} {unit} |");
        for t in &mut times[1..] {
            let m = median(t);
            print!(" {m:.1} {unit} ({:.2}×) |", m / off);
        }
        println!();
    }
}
