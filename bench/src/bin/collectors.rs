//! The collector benchmark: `cargo run --release -p poolgc-bench --bin collectors [-- --quick]
//! [--runs N] [--workload w,v] [--collector c,d] [--alloc system,poolgc]`.
//!
//! Runs every workload of `poolgc_bench::collectors` under poolgc's `Gc` and its peers, each cell (workload,
//! collector, global allocator) in a child process of its own (`gc_system` or `gc_poolgc`), so that peak
//! RSS is the cell's. `--runs` timing runs per cell (medians; default 3, 1 with `--quick`), then one more
//! run with a clock read around every step for the longest pause. A child that overflows its stack,
//! crashes, times out, leaks nodes or frees live ones is reported as such. Prints markdown tables and the
//! targets checked against this run's numbers (ratios only, never absolute numbers).

use poolgc_bench::collectors::WORKLOADS;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const COLLECTORS: &[&str] = &[
    "poolgc",
    "Rc",
    "bacon_rajan_cc",
    "rust-cc",
    "dumpster",
    "gcmodule",
];
const ALLOCS: &[(&str, &str)] = &[("system", "system allocator"), ("poolgc", "poolgc")];

/// How one child run ended.
#[derive(Clone, Debug)]
enum Outcome {
    Done {
        time: f64,
        rss_kib: f64,
        pause: f64,
        leaked: u64,
        freed_live: u64,
    },
    Overflow,
    Crash(String),
    Timeout,
}

fn list_arg(args: &[String], flag: &str) -> Option<Vec<String>> {
    let i = args.iter().position(|a| a == flag)?;
    Some(args.get(i + 1)?.split(',').map(str::to_owned).collect())
}

fn pick<'a>(args: &[String], flag: &str, all: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let want = list_arg(args, flag);
    all.filter(|x| want.as_ref().is_none_or(|w| w.iter().any(|y| y == x)))
        .collect()
}

fn run_child(bin: &Path, args: &[&str], limit: Duration) -> Outcome {
    let Ok(mut child) = Command::new(bin)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    else {
        return Outcome::Crash("spawn failed".into());
    };
    let t = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if t.elapsed() > limit => {
                let _ = child.kill();
                let _ = child.wait();
                return Outcome::Timeout;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(2)),
            Err(e) => return Outcome::Crash(e.to_string()),
        }
    }
    let Ok(out) = child.wait_with_output() else {
        return Outcome::Crash("no output".into());
    };
    let err = String::from_utf8_lossy(&out.stderr);
    if err.contains("has overflowed its stack") {
        return Outcome::Overflow;
    }
    if !out.status.success() {
        let last = err
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        return Outcome::Crash(format!("{} {}", out.status, last.trim()));
    }
    let s = String::from_utf8_lossy(&out.stdout);
    let f: Vec<&str> = s.split_whitespace().collect();
    let num = |i: usize| f.get(i).and_then(|x| x.parse::<f64>().ok());
    match (num(0), num(1), num(2), num(3), num(4)) {
        (Some(time), Some(rss_kib), Some(pause), Some(leaked), Some(freed)) => Outcome::Done {
            time,
            rss_kib,
            pause,
            leaked: leaked as u64,
            freed_live: freed as u64,
        },
        _ => Outcome::Crash(format!("bad output {s:?}")),
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// A cell's results over its runs.
#[derive(Default)]
struct Cell {
    times: Vec<f64>,
    rss: Vec<f64>,
    pause: Option<f64>,
    leaked: u64,
    freed_live: u64,
    /// The first failure (overflow, crash, timeout), if any.
    failure: Option<String>,
}

impl Cell {
    fn add(&mut self, o: Outcome, pauses: bool) {
        match o {
            Outcome::Done {
                time,
                rss_kib,
                pause,
                leaked,
                freed_live,
            } => {
                if pauses {
                    self.pause = Some(pause);
                } else {
                    self.times.push(time);
                    self.rss.push(rss_kib);
                }
                self.leaked = self.leaked.max(leaked);
                self.freed_live = self.freed_live.max(freed_live);
            }
            Outcome::Overflow => self.fail("stack overflow"),
            Outcome::Timeout => self.fail("timeout"),
            Outcome::Crash(why) => self.fail(&format!("crash: {why}")),
        }
    }
    fn fail(&mut self, why: &str) {
        self.failure.get_or_insert_with(|| why.to_owned());
    }
    /// Time and RSS medians, if every run finished and nothing leaked or was freed while live.
    fn clean(&self) -> Option<(f64, f64)> {
        (self.failure.is_none()
            && self.leaked == 0
            && self.freed_live == 0
            && !self.times.is_empty())
        .then(|| {
            (
                median(&mut self.times.clone()),
                median(&mut self.rss.clone()),
            )
        })
    }
    fn problems(&self) -> String {
        let mut s = String::new();
        if let Some(f) = &self.failure {
            s.push_str(f);
        }
        if self.leaked > 0 {
            let _ = write!(
                s,
                "{}leaks {} nodes",
                if s.is_empty() { "" } else { ", " },
                self.leaked
            );
        }
        if self.freed_live > 0 {
            let _ = write!(
                s,
                "{}freed {} live nodes",
                if s.is_empty() { "" } else { ", " },
                self.freed_live
            );
        }
        s
    }
    fn show(&self, what: impl Fn(&Cell) -> Option<f64>) -> String {
        match (what(self), self.problems()) {
            (Some(v), p) if p.is_empty() => format!("{v:.1}"),
            (Some(v), p) => format!("{v:.1} ({p})"),
            (None, p) if p.is_empty() => "—".into(),
            (None, p) => p,
        }
    }
}

type Key<'a> = (&'a str, &'a str, &'a str);

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let runs: usize = list_arg(&args, "--runs")
        .and_then(|v| v.first()?.parse().ok())
        .unwrap_or(if quick { 1 } else { 3 });
    let workloads = pick(&args, "--workload", WORKLOADS.iter().map(|w| w.0));
    let collectors = pick(&args, "--collector", COLLECTORS.iter().copied());
    let allocs = pick(&args, "--alloc", ALLOCS.iter().map(|a| a.0));
    let dir: PathBuf = std::env::current_exe()
        .expect("own path")
        .parent()
        .expect("dir")
        .to_owned();
    if let Ok(cargo) = std::env::var("CARGO") {
        let ok = Command::new(cargo)
            .args(["build", "--release", "-p", "poolgc-bench", "--quiet"])
            .args(["--bin", "gc_system", "--bin", "gc_poolgc"])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "building the benchmark binaries failed");
    }
    let limit = Duration::from_secs(if quick { 30 } else { 120 });
    let started = Instant::now();
    let mut cells: HashMap<Key, Cell> = HashMap::new();
    for pass in 0..=runs {
        let pauses = pass == runs;
        eprintln!(
            "{}",
            if pauses {
                "pause run".to_owned()
            } else {
                format!("round {}/{runs}", pass + 1)
            }
        );
        for &a in &allocs {
            let bin = dir.join(format!("gc_{a}"));
            for &w in &workloads {
                let cyclic = WORKLOADS.iter().any(|x| x.0 == w && x.2);
                for &c in &collectors {
                    if c == "Rc" && cyclic {
                        continue;
                    }
                    let cell = cells.entry((a, w, c)).or_default();
                    if cell.failure.is_some() {
                        continue; // an overflow or a timeout is not retried
                    }
                    let mut cargs = vec![w, c];
                    cargs.extend(quick.then_some("--quick"));
                    cargs.extend(pauses.then_some("--pauses"));
                    cell.add(run_child(&bin, &cargs, limit), pauses);
                }
            }
        }
    }
    print_report(
        &args,
        quick,
        runs,
        started.elapsed(),
        &allocs,
        &workloads,
        &collectors,
        &cells,
    );
}

#[allow(clippy::too_many_arguments)]
fn print_report(
    args: &[String],
    quick: bool,
    runs: usize,
    took: Duration,
    allocs: &[&str],
    workloads: &[&str],
    collectors: &[&str],
    cells: &HashMap<Key, Cell>,
) {
    let machine = format!("{} cores, {}", sh("nproc", &[]), sh("uname", &["-sr"]));
    println!("# poolgc's collector against its peers\n");
    println!(
        "`cargo run --release -p poolgc-bench --bin collectors --{}` ({}, {runs} timing run(s) per cell, medians; {machine}; took {:.0} s)\n",
        args[1..].iter().map(|a| format!(" {a}")).collect::<String>(),
        if quick { "quick sizes" } else { "full sizes" },
        took.as_secs_f64()
    );
    for w in WORKLOADS.iter().filter(|w| workloads.contains(&w.0)) {
        println!("- `{}`: {}", w.0, w.1);
    }
    type Metric = (&'static str, fn(&Cell) -> Option<f64>);
    let metrics: [Metric; 3] = [
        ("time, ms", |c| {
            c.clean()
                .map(|t| t.0 * 1e3)
                .or_else(|| (!c.times.is_empty()).then(|| median(&mut c.times.clone()) * 1e3))
        }),
        ("peak RSS, MiB", |c| {
            (!c.rss.is_empty()).then(|| median(&mut c.rss.clone()) / 1024.0)
        }),
        ("longest pause, ms", |c| c.pause.map(|p| p * 1e3)),
    ];
    for &a in allocs {
        let alloc_name = ALLOCS.iter().find(|x| x.0 == a).map_or(a, |x| x.1);
        for (metric, f) in &metrics {
            println!("\n## {metric}, global allocator: {alloc_name}\n");
            println!("| workload | {} |", collectors.join(" | "));
            println!("|---|{}", "---:|".repeat(collectors.len()));
            for &w in workloads {
                let row: Vec<String> = collectors
                    .iter()
                    .map(|&c| {
                        cells
                            .get(&(a, w, c))
                            .map_or("—".into(), |cell| cell.show(f))
                    })
                    .collect();
                println!("| {w} | {} |", row.join(" | "));
            }
        }
    }
    print_targets(allocs, workloads, collectors, cells);
}

/// The targets, from this run's numbers: ≥ 1.5× faster than the fastest clean peer on every cyclic
/// workload; on acyclic trees ≤ 1.0× `Rc`'s time and peak RSS ≤ `Rc`'s; poolgc itself clean everywhere.
fn print_targets(
    allocs: &[&str],
    workloads: &[&str],
    collectors: &[&str],
    cells: &HashMap<Key, Cell>,
) {
    println!("\n## Targets (this run)\n");
    for &a in allocs {
        for &w in workloads {
            let Some(me) = cells.get(&(a, w, "poolgc")) else {
                continue;
            };
            let Some((t, rss)) = me.clean() else {
                println!("- {a}/{w}: MISSED: poolgc {}", me.problems());
                continue;
            };
            let cyclic = WORKLOADS.iter().any(|x| x.0 == w && x.2);
            if cyclic {
                let best = collectors
                    .iter()
                    .filter(|&&c| c != "poolgc" && c != "Rc")
                    .filter_map(|&c| Some((c, cells.get(&(a, w, c))?.clean()?.0)))
                    .min_by(|x, y| x.1.total_cmp(&y.1));
                match best {
                    Some((c, bt)) => {
                        let r = bt / t;
                        let ok = if r >= 1.5 { "met" } else { "MISSED" };
                        println!(
                            "- {a}/{w}: {ok}: the fastest clean peer ({c}) takes {r:.2}× poolgc's time \
                             (target ≥ 1.50)"
                        );
                    }
                    None => println!("- {a}/{w}: met: no peer finished cleanly"),
                }
            } else if let Some((rt, rrss)) = cells.get(&(a, w, "Rc")).and_then(Cell::clean) {
                let ok = if t <= rt && rss <= rrss {
                    "met"
                } else {
                    "MISSED"
                };
                println!(
                    "- {a}/{w}: {ok}: {:.2}× Rc's time, peak RSS {:.3}× Rc's (target ≤ 1.00 for both)",
                    t / rt,
                    rss / rrss
                );
            }
        }
    }
}

fn sh(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}
