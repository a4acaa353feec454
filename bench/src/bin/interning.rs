//! String interning: `poolgc::intern` against lasso, string-interner, ustr and internment.
//!
//! `cargo run --release -p poolgc-bench --bin interning -- [--quick] [--runs R] [--strings N]`
//!
//! Three operations on N distinct identifier-like strings (4 to 40 bytes), from one thread and from two:
//! * **new**: intern strings never seen (two threads: each interns its own half);
//! * **existing**: intern them again, every one a hit (two threads: each interns all N);
//! * **resolve**: handle back to `&str`, summing the lengths (two threads: each resolves all N).
//!
//! Every cell is the median over the runs of wall time divided by operations, in ns per operation (with
//! two threads, total operations of both threads, so a cell that halves means perfect scaling). Each run
//! uses strings of its own prefix, so the process-wide interners (poolgc, ustr, internment) see new
//! strings in every run's "new" phase. string-interner needs `&mut` to intern and has no thread-safe
//! form, so it has no two-thread cells. The global allocator is `System` for everyone (poolgc's
//! interner takes its entries from a pool allocator of its own).

use std::hint::black_box;
use std::time::{Duration, Instant};

#[global_allocator]
static A: std::alloc::System = std::alloc::System;

/// Durations of (new, existing, resolve) for one run.
type Times = [Duration; 3];

fn strings(prefix: &str, n: usize) -> Vec<String> {
    const WORDS: [&str; 8] = [
        "x",
        "count",
        "self",
        "__init__",
        "value_error",
        "DEFAULT_BUFFER_SIZE",
        "get_or_insert_with",
        "a_fairly_long_identifier",
    ];
    (0..n)
        .map(|i| format!("{prefix}{}{i:x}", WORDS[i % WORDS.len()]))
        .collect()
}

/// Times `new` (interning `strs`), `existing` (interning them again) and `resolve` on one thread.
/// `state` is the interner for those that are values (`()` for the process-wide ones).
fn one_thread<S, H: Copy>(
    strs: &[String],
    state: &mut S,
    intern: impl Fn(&mut S, &str) -> H,
    resolve: impl Fn(&S, H) -> usize,
) -> Times {
    let t = Instant::now();
    let handles: Vec<H> = strs.iter().map(|s| intern(state, s)).collect();
    let new = t.elapsed();
    let t = Instant::now();
    for s in strs {
        black_box(intern(state, black_box(s)));
    }
    let existing = t.elapsed();
    let t = Instant::now();
    let mut total = 0;
    for &h in &handles {
        total += resolve(state, black_box(h));
    }
    black_box(total);
    [new, existing, t.elapsed()]
}

/// The same three phases with two threads (see the module docs for who does what).
fn two_threads<H: Copy + Send + Sync>(
    strs: &[String],
    intern: impl Fn(&str) -> H + Sync,
    resolve: impl Fn(H) -> usize + Sync,
) -> Times {
    let (intern, resolve) = (&intern, &resolve);
    let half = strs.len() / 2;
    let t = Instant::now();
    let handles: Vec<H> = std::thread::scope(|sc| {
        let a = sc.spawn(|| strs[..half].iter().map(|s| intern(s)).collect::<Vec<H>>());
        let b = sc.spawn(|| strs[half..].iter().map(|s| intern(s)).collect::<Vec<H>>());
        let mut v = a.join().unwrap();
        v.extend(b.join().unwrap());
        v
    });
    let new = t.elapsed();
    let t = Instant::now();
    std::thread::scope(|sc| {
        for _ in 0..2 {
            sc.spawn(|| {
                for s in strs {
                    black_box(intern(black_box(s)));
                }
            });
        }
    });
    let existing = t.elapsed();
    let t = Instant::now();
    std::thread::scope(|sc| {
        for _ in 0..2 {
            sc.spawn(|| {
                let mut total = 0;
                for &h in &handles {
                    total += resolve(black_box(h));
                }
                black_box(total);
            });
        }
    });
    [new, existing, t.elapsed()]
}

/// One peer: its name, and a run on one thread and (if it can) on two, given the run's strings.
struct Peer {
    name: &'static str,
    one: fn(&[String]) -> Times,
    two: Option<fn(&[String]) -> Times>,
}

fn peers() -> Vec<Peer> {
    vec![
        Peer {
            name: "poolgc::intern",
            one: |s| one_thread(s, &mut (), |_, x| poolgc::intern::intern(x), |_, h| h.len()),
            two: Some(|s| two_threads(s, poolgc::intern::intern, |h| h.len())),
        },
        Peer {
            name: "lasso (Rodeo / ThreadedRodeo)",
            one: |s| {
                let mut r = lasso::Rodeo::default();
                one_thread(
                    s,
                    &mut r,
                    |r, x| r.get_or_intern(x),
                    |r, h| r.resolve(&h).len(),
                )
            },
            two: Some(|s| {
                let r = lasso::ThreadedRodeo::default();
                two_threads(s, |x| r.get_or_intern(x), |h| r.resolve(&h).len())
            }),
        },
        Peer {
            name: "string-interner",
            one: |s| {
                let mut r = string_interner::DefaultStringInterner::default();
                one_thread(
                    s,
                    &mut r,
                    |r, x| r.get_or_intern(x),
                    |r, h| r.resolve(h).map_or(0, str::len),
                )
            },
            two: None,
        },
        Peer {
            name: "ustr",
            one: |s| one_thread(s, &mut (), |_, x| ustr::ustr(x), |_, h| h.len()),
            two: Some(|s| two_threads(s, ustr::ustr, |h| h.len())),
        },
        Peer {
            name: "internment (Intern<String>)",
            one: |s| {
                one_thread(
                    s,
                    &mut (),
                    |_, x| internment::Intern::<String>::from_ref(x),
                    |_, h| h.as_ref().len(),
                )
            },
            two: Some(|s| {
                two_threads(
                    s,
                    |x| internment::Intern::<String>::from_ref(x),
                    |h| h.as_ref().len(),
                )
            }),
        },
    ]
}

fn median_ns_per_op(mut xs: Vec<Duration>, ops: usize) -> f64 {
    xs.sort();
    xs[xs.len() / 2].as_nanos() as f64 / ops as f64
}

fn main() {
    let mut args = std::env::args().skip(1);
    let (mut runs, mut n) = (5usize, 200_000usize);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--quick" => (runs, n) = (1, 20_000),
            "--runs" => runs = args.next().and_then(|v| v.parse().ok()).expect("--runs R"),
            "--strings" => {
                n = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--strings N")
            }
            _ => panic!("usage: interning [--quick] [--runs R] [--strings N]"),
        }
    }
    println!("String interning, {n} distinct strings, median of {runs} runs, ns per operation");
    println!("(two threads: wall time over both threads' operations; `-`: not thread-safe)\n");
    println!(
        "| interner | new, 1 thread | existing, 1 thread | resolve, 1 thread | new, 2 threads | existing, 2 threads | resolve, 2 threads |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for (p_i, p) in peers().iter().enumerate() {
        let mut one: [Vec<Duration>; 3] = Default::default();
        let mut two: [Vec<Duration>; 3] = Default::default();
        for run in 0..runs {
            let s = strings(&format!("p{p_i}r{run}a_"), n);
            for (k, d) in (p.one)(&s).into_iter().enumerate() {
                one[k].push(d);
            }
            if let Some(f) = p.two {
                let s = strings(&format!("p{p_i}r{run}b_"), n);
                for (k, d) in f(&s).into_iter().enumerate() {
                    two[k].push(d);
                }
            }
        }
        let ops_two = [n, 2 * n, 2 * n];
        let mut row = format!("| {} ", p.name);
        for xs in one {
            row += &format!("| {:.1} ", median_ns_per_op(xs, n));
        }
        for (xs, ops) in two.into_iter().zip(ops_two) {
            if xs.is_empty() {
                row += "| - ";
            } else {
                row += &format!("| {:.1} ", median_ns_per_op(xs, ops));
            }
        }
        println!("{row}|");
    }
}
