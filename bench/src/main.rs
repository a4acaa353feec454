//! The driver: `cargo run --release -p poolgc-bench -- [--quick] [--runs N] [--alloc a,b] [--workload w,v]
//! [--threads 1,2,4]` (`--help` lists them; an unknown option or name is an error).
//!
//! Builds the `ga_<allocator>` binaries, runs every workload under every allocator as separate processes
//! (`--runs` rounds, default 5; allocators interleaved within a round so that machine noise spreads
//! evenly), takes medians, runs the in-process static-region comparison, and prints markdown tables plus
//! the targets checked against this run's numbers. With `--threads`, it also runs the thread-scaling
//! workload (`threads-N`) at each given thread count and prints a throughput table.

use poolgc_bench::workloads::WORKLOADS;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// (binary suffix, column name); poolgc first: every ratio is against it.
const ALLOCATORS: &[(&str, &str)] = &[
    ("poolgc", "poolgc"),
    ("system", "System (glibc)"),
    ("mimalloc", "mimalloc"),
    ("jemalloc", "jemalloc"),
    ("talc", "talc"),
    ("lla", "linked_list_allocator"),
    ("rlsf", "rlsf"),
    ("buddy", "buddy_system_allocator"),
];

/// Workloads whose targets are "small objects, one thread".
const SMALL_SINGLE: &[&str] = &[
    "binary-trees",
    "strings",
    "hashmap",
    "serde-json",
    "ring32",
    "glibc-simple",
];
/// Workloads whose blocks are freed by threads other than the one that allocated them.
const CROSS_THREAD: &[&str] = &["xthread", "larson", "xmalloc-test"];
const STATIC_ALLOCATORS: &[&str] = &[
    "poolgc",
    "talc",
    "linked_list_allocator",
    "rlsf",
    "buddy_system_allocator",
];

struct Opts {
    quick: bool,
    runs: usize,
    allocs: Vec<&'static str>,
    workloads: Vec<&'static str>,
    /// Thread counts for the scaling table (empty: no scaling table).
    threads: Vec<usize>,
}

const HELP: &str = "\
poolgc against its peers: runs every workload under every allocator, prints markdown tables.

Usage: cargo run --release -p poolgc-bench -- [OPTIONS]

Options:
      --quick              smaller workloads (a smoke run)
      --runs N             rounds per cell, allocators interleaved within a round [default: 5]
      --alloc A,B,...      allocators to compare (poolgc is always included) [default: all]
      --workload W,V,...   workloads to run [default: all]
      --threads 1,2,4,...  also run the thread-scaling workload at these thread counts
  -h, --help               print this help
";

/// `HELP` with the valid names, taken from the tables the driver runs.
fn help() -> String {
    let allocs: Vec<&str> = ALLOCATORS.iter().map(|a| a.0).collect();
    let workloads: Vec<&str> = WORKLOADS.iter().map(|w| w.0).collect();
    format!(
        "{HELP}\nAllocators: {}\nWorkloads: {}\n",
        allocs.join(", "),
        workloads.join(", ")
    )
}

/// Names from a comma-separated `value`, each checked against `valid` (in `valid`'s order, no repeats).
fn names(
    flag: &str,
    value: &str,
    valid: &[&'static str],
) -> Result<Vec<&'static str>, lexopt::Error> {
    let given: Vec<&str> = value.split(',').collect();
    if let Some(bad) = given.iter().find(|x| !valid.contains(x)) {
        return Err(format!(
            "--{flag}: unknown name `{bad}`; valid names: {}",
            valid.join(", ")
        )
        .into());
    }
    Ok(valid
        .iter()
        .copied()
        .filter(|v| given.contains(v))
        .collect())
}

fn opts() -> Result<Opts, lexopt::Error> {
    use lexopt::prelude::*;
    let all_allocs: Vec<&'static str> = ALLOCATORS.iter().map(|a| a.0).collect();
    let all_workloads: Vec<&'static str> = WORKLOADS.iter().map(|w| w.0).collect();
    let mut o = Opts {
        quick: false,
        runs: 5,
        allocs: all_allocs.clone(),
        workloads: all_workloads.clone(),
        threads: Vec::new(),
    };
    let mut parser = lexopt::Parser::from_env();
    while let Some(arg) = parser.next()? {
        match arg {
            Long("quick") => o.quick = true,
            Long("runs") => {
                o.runs = parser.value()?.parse()?;
                if o.runs == 0 {
                    return Err("--runs: at least 1".into());
                }
            }
            Long("alloc") => {
                let mut v = names("alloc", &parser.value()?.string()?, &all_allocs)?;
                if !v.contains(&"poolgc") {
                    v.insert(0, "poolgc");
                }
                o.allocs = v;
            }
            Long("workload") => {
                o.workloads = names("workload", &parser.value()?.string()?, &all_workloads)?;
            }
            Long("threads") => {
                o.threads = parser
                    .value()?
                    .string()?
                    .split(',')
                    .map(|n| match n.parse::<usize>() {
                        Ok(n) if n > 0 => Ok(n),
                        _ => Err(format!("--threads: `{n}` is not a positive thread count")),
                    })
                    .collect::<Result<_, _>>()?;
            }
            Short('h') | Long("help") => {
                print!("{}", help());
                std::process::exit(0);
            }
            _ => return Err(arg.unexpected()),
        }
    }
    Ok(o)
}

fn sh(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

fn machine() -> String {
    let lscpu = sh("lscpu", &[]);
    let model = lscpu
        .lines()
        .find_map(|l| l.strip_prefix("Model name:"))
        .unwrap_or("?")
        .trim()
        .to_owned();
    format!(
        "{model}, {} cores, {}, load average {}",
        sh("nproc", &[]),
        sh("uname", &["-sr"]),
        load()
    )
}

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs `bin args…` with a time limit; returns its stdout, or `None` on timeout or failure.
fn run_child(bin: &Path, args: &[&str], limit: Duration) -> Option<String> {
    let mut child = Command::new(bin)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .ok()?;
    let t = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                let out = child.wait_with_output().ok()?;
                return status
                    .success()
                    .then(|| String::from_utf8_lossy(&out.stdout).into_owned());
            }
            Ok(None) if t.elapsed() > limit => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(_) => return None,
        }
    }
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

#[derive(Default)]
struct Cell {
    values: Vec<f64>,
    rss_kib: Vec<f64>,
    unit: String,
    failed: bool,
}

impl Cell {
    /// Every run finished (none timed out or failed).
    fn complete(&self, runs: usize) -> bool {
        !self.values.is_empty() && (!self.failed || self.values.len() >= runs)
    }
}

fn main() {
    let o = opts().unwrap_or_else(|e| {
        eprintln!("poolgc-bench: {e}\n\n{}", help());
        std::process::exit(2)
    });
    let dir: PathBuf = std::env::current_exe()
        .expect("own path")
        .parent()
        .expect("target dir")
        .to_owned();
    if let Ok(cargo) = std::env::var("CARGO") {
        let ok = Command::new(cargo)
            .args([
                "build",
                "--release",
                "-p",
                "poolgc-bench",
                "--bins",
                "--quiet",
            ])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "building the benchmark binaries failed");
    }
    let limit = Duration::from_secs(if o.quick { 5 } else { 30 });
    let load_before = load();
    let started = Instant::now();
    let mode = if o.quick { vec!["--quick"] } else { vec![] };
    let mut cells: HashMap<(&'static str, &'static str), Cell> = HashMap::new();
    for round in 0..o.runs {
        eprintln!("round {}/{} (load {})", round + 1, o.runs, load());
        for &w in &o.workloads {
            for &a in &o.allocs {
                let cell = cells.entry((w, a)).or_default();
                if cell.failed {
                    continue;
                }
                let mut args = vec![w];
                args.extend(&mode);
                let out = run_child(&dir.join(format!("ga_{a}")), &args, limit);
                let parsed = out.as_deref().and_then(|s| {
                    let mut it = s.split_whitespace();
                    let v: f64 = it.next()?.parse().ok()?;
                    let unit = it.next()?.to_owned();
                    let rss: f64 = it.next()?.parse().ok()?;
                    Some((v, unit, rss))
                });
                match parsed {
                    Some((v, unit, rss)) => {
                        cell.values.push(v);
                        cell.rss_kib.push(rss);
                        cell.unit = unit;
                    }
                    None => cell.failed = true,
                }
            }
        }
    }
    let scaling = run_scaling(&o, &dir, limit);
    let static_out = run_child(
        &dir.join("static_region"),
        &[
            if o.quick { "--quick" } else { "--full" },
            "--runs",
            &o.runs.to_string(),
        ],
        Duration::from_secs(600),
    )
    .unwrap_or_default();

    let mut args: Vec<String> = std::env::args().skip(1).collect();
    args.insert(0, "cargo run --release -p poolgc-bench --".into());
    println!("# poolgc-bench\n");
    println!("Command: `{}`  ", args.join(" "));
    println!("Machine: {}  ", machine());
    println!(
        "Load average at start: {load_before}; the run took {:.0} s. Median of {} runs, each a separate process.\n",
        started.elapsed().as_secs_f64(),
        o.runs
    );
    print_tables(&o, &cells);
    print_scaling(&o, &scaling);
    let statics = print_static(&static_out);
    print_targets(&o, &cells, &statics);
}

/// Runs `threads-N` for every `--threads` count and allocator, `--runs` rounds, allocators interleaved;
/// returns the throughputs (million pairs/s) per (threads, allocator).
fn run_scaling(o: &Opts, dir: &Path, limit: Duration) -> HashMap<(usize, &'static str), Vec<f64>> {
    let mut out: HashMap<(usize, &'static str), Vec<f64>> = HashMap::new();
    for _ in 0..o.runs {
        for &n in &o.threads {
            for &a in &o.allocs {
                let w = format!("threads-{n}");
                let mut args = vec![w.as_str()];
                if o.quick {
                    args.push("--quick");
                }
                let v = run_child(&dir.join(format!("ga_{a}")), &args, limit)
                    .and_then(|s| s.split_whitespace().next()?.parse().ok());
                if let Some(v) = v {
                    out.entry((n, a)).or_default().push(v);
                }
            }
        }
    }
    out
}

fn print_scaling(o: &Opts, runs: &HashMap<(usize, &'static str), Vec<f64>>) {
    if o.threads.is_empty() {
        return;
    }
    println!("\n## Thread scaling (million free+alloc pairs/s in all threads, median; in brackets: poolgc's / that allocator's)\n");
    println!(
        "Each of N threads replaces blocks of 16–256 B in its own ring of 1,024 (`threads-N`).\n"
    );
    table_header(
        "allocator",
        o.threads
            .iter()
            .map(|n| format!("{n} thread{}", if *n == 1 { "" } else { "s" })),
    );
    for &a in &o.allocs {
        print!("| {} |", col(a));
        for &n in &o.threads {
            let m = runs
                .get(&(n, a))
                .filter(|v| !v.is_empty())
                .map(|v| median(v));
            let base = runs
                .get(&(n, "poolgc"))
                .filter(|v| !v.is_empty())
                .map(|v| median(v));
            match (m, base) {
                (Some(m), Some(b)) if a != "poolgc" => print!(" {m:.1} ({:.2}) |", b / m),
                (Some(m), _) => print!(" {m:.1} |"),
                _ => print!(" timeout/failed |"),
            }
        }
        println!();
    }
}

fn col(a: &str) -> &'static str {
    ALLOCATORS.iter().find(|x| x.0 == a).map_or("?", |x| x.1)
}

/// Prints a markdown table's header: a left-aligned first column, then right-aligned number columns.
fn table_header<T: std::fmt::Display>(first: &str, columns: impl Iterator<Item = T>) {
    print!("| {first} |");
    let mut n = 0;
    for c in columns {
        print!(" {c} |");
        n += 1;
    }
    println!("\n|---|{}", "---:|".repeat(n));
}

fn print_tables(o: &Opts, cells: &HashMap<(&'static str, &'static str), Cell>) {
    let header = |title: &str| table_header(title, o.allocs.iter().map(|a| col(a)));
    println!("## Time (median; in brackets: that allocator's time / poolgc's, above 1 = poolgc faster)\n");
    header("workload");
    for &w in &o.workloads {
        let base = cells.get(&(w, "poolgc")).map(|c| median(&c.values));
        let unit = cells
            .get(&(w, "poolgc"))
            .map_or("", |c| c.unit.as_str())
            .to_owned();
        print!("| {w} ({unit}) |");
        for &a in &o.allocs {
            let c = cells.get(&(w, a)).expect("cell");
            if c.values.is_empty() || c.failed && c.values.len() < o.runs {
                print!(" timeout/failed |");
                continue;
            }
            let m = median(&c.values);
            match base {
                Some(b) if a != "poolgc" && b > 0.0 => print!(" {m:.1} ({:.2}) |", m / b),
                _ => print!(" {m:.1} |"),
            }
        }
        println!();
    }
    geomean_row(o, cells, |c| &c.values);
    println!("\n## Peak RSS (MiB, median of VmHWM; in brackets: that allocator's / poolgc's)\n");
    header("workload");
    for &w in &o.workloads {
        let base = cells.get(&(w, "poolgc")).map(|c| median(&c.rss_kib));
        print!("| {w} |");
        for &a in &o.allocs {
            let c = cells.get(&(w, a)).expect("cell");
            if c.rss_kib.is_empty() || c.failed && c.rss_kib.len() < o.runs {
                print!(" — |");
                continue;
            }
            let m = median(&c.rss_kib);
            match base {
                Some(b) if a != "poolgc" && b > 0.0 => {
                    print!(" {:.1} ({:.2}) |", m / 1024.0, m / b)
                }
                _ => print!(" {:.1} |", m / 1024.0),
            }
        }
        println!();
    }
    geomean_row(o, cells, |c| &c.rss_kib);
}

/// The median of `of(cell)` for workload `w` and allocator `a`, if every run finished.
fn cell_median(
    o: &Opts,
    cells: &HashMap<(&'static str, &'static str), Cell>,
    w: &'static str,
    a: &'static str,
    of: fn(&Cell) -> &Vec<f64>,
) -> Option<f64> {
    let c = cells.get(&(w, a))?;
    (c.complete(o.runs) && !of(c).is_empty()).then(|| median(of(c)))
}

/// The geometric mean of `a`'s medians over poolgc's, on the workloads both finished, and how many those
/// are.
fn geomean(
    o: &Opts,
    cells: &HashMap<(&'static str, &'static str), Cell>,
    a: &'static str,
    of: fn(&Cell) -> &Vec<f64>,
) -> Option<(f64, usize)> {
    let logs: Vec<f64> = o
        .workloads
        .iter()
        .filter_map(|&w| {
            let m = cell_median(o, cells, w, a, of)?;
            let b = cell_median(o, cells, w, "poolgc", of)?;
            (m > 0.0 && b > 0.0).then(|| (m / b).ln())
        })
        .collect();
    (!logs.is_empty()).then(|| {
        (
            (logs.iter().sum::<f64>() / logs.len() as f64).exp(),
            logs.len(),
        )
    })
}

/// A table's last row: each allocator's geometric-mean ratio to poolgc over the workloads both finished
/// (how many, when not all).
fn geomean_row(
    o: &Opts,
    cells: &HashMap<(&'static str, &'static str), Cell>,
    of: fn(&Cell) -> &Vec<f64>,
) {
    print!("| geometric mean of the ratios |");
    for &a in &o.allocs {
        match geomean(o, cells, a, of) {
            _ if a == "poolgc" => print!(" 1 |"),
            Some((g, n)) if n == o.workloads.len() => print!(" ({g:.2}) |"),
            Some((g, n)) => print!(" ({g:.2}, {n} of {}) |", o.workloads.len()),
            None => print!(" — |"),
        }
    }
    println!();
}

/// Prints the static-region table; returns median actions/s per (variant, allocator).
fn print_static(out: &str) -> HashMap<(String, String), f64> {
    let mut raw: HashMap<(String, String), Vec<f64>> = HashMap::new();
    for line in out.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if let [v, a, r] = f[..] {
            if let Ok(r) = r.parse() {
                raw.entry((v.into(), a.into())).or_default().push(r);
            }
        }
    }
    let med: HashMap<_, _> = raw.into_iter().map(|(k, v)| (k, median(&v))).collect();
    println!("\n## Static region, in process (million actions/s, median; in brackets: poolgc's rate / that allocator's, above 1 = poolgc faster)\n");
    println!("Each allocator's `GlobalAlloc` over its own 64 MiB region, the same seeded sequence of allocations and frees over 8,192 slots; `small`: sizes 1–512 B (skewed small), `mixed`: 80% of those, 18% 513 B–8 KiB, 2% 8–64 KiB. An allocator that has not finished its sequence within the time budget is rated on what it did.\n");
    table_header("requests", STATIC_ALLOCATORS.iter());
    for v in ["small", "mixed"] {
        print!("| {v} |");
        let base = med.get(&(v.into(), "poolgc".into())).copied();
        for a in STATIC_ALLOCATORS {
            match (med.get(&(v.into(), (*a).into())), base) {
                (Some(&r), Some(b)) if *a != "poolgc" => {
                    print!(" {:.2} ({:.2}) |", r / 1e6, b / r)
                }
                (Some(&r), _) => print!(" {:.2} |", r / 1e6),
                _ => print!(" — |"),
            }
        }
        println!();
    }
    med
}

fn print_targets(
    o: &Opts,
    cells: &HashMap<(&'static str, &'static str), Cell>,
    statics: &HashMap<(String, String), f64>,
) {
    println!("\n## Targets, checked against this run\n");
    let med = |w: &'static str, a: &'static str| -> Option<f64> {
        let c = cells.get(&(w, a))?;
        c.complete(o.runs).then(|| median(&c.values))
    };
    let verdict = |ok: bool| if ok { "met" } else { "**missed**" };
    for &w in SMALL_SINGLE.iter().filter(|w| o.workloads.contains(w)) {
        if let (Some(p), Some(m)) = (med(w, "poolgc"), med(w, "mimalloc")) {
            println!(
                "- {w}: poolgc / mimalloc = {:.2} (target ≤ 0.9): {}",
                p / m,
                verdict(p / m <= 0.9)
            );
        }
        if let (Some(p), Some(s)) = (med(w, "poolgc"), med(w, "system")) {
            println!(
                "- {w}: poolgc / glibc = {:.2} (target ≤ 0.6): {}",
                p / s,
                verdict(p / s <= 0.6)
            );
        }
    }
    for &w in CROSS_THREAD.iter().filter(|w| o.workloads.contains(w)) {
        if let (Some(p), Some(m)) = (med(w, "poolgc"), med(w, "mimalloc")) {
            println!(
                "- {w} (cross-thread): poolgc / mimalloc = {:.2} (target ≤ 1.0): {}",
                p / m,
                verdict(p / m <= 1.0)
            );
        }
    }
    if let Some((g, n)) = geomean(o, cells, "mimalloc", |c| &c.values) {
        println!(
            "- geometric mean over {n} of {} workloads: poolgc / mimalloc = {:.2} (target ≤ 0.85): {}",
            o.workloads.len(),
            1.0 / g,
            verdict(1.0 / g <= 0.85)
        );
    }
    for &w in &o.workloads {
        let rss = |a: &'static str| {
            let c = cells.get(&(w, a))?;
            (!c.rss_kib.is_empty()).then(|| median(&c.rss_kib))
        };
        if let (Some(p), Some(s)) = (rss("poolgc"), rss("system")) {
            println!(
                "- {w}: peak RSS poolgc / glibc = {:.2} (target ≤ 1.0): {}",
                p / s,
                verdict(p / s <= 1.0)
            );
        }
    }
    let get = |a: &str| statics.get(&("small".to_owned(), a.to_owned())).copied();
    if let (Some(p), Some(t)) = (get("poolgc"), get("talc")) {
        println!(
            "- static region, requests ≤ 512 B: poolgc / talc actions/s = {:.2} (target ≥ 2): {}",
            p / t,
            verdict(p / t >= 2.0)
        );
    }
}
