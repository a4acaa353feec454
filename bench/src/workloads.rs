//! The global-allocator workloads. Each `ga_<allocator>` binary is this module behind a different
//! `#[global_allocator]`; one process runs one workload once and prints `value unit peak_rss_kib`.

use crate::stress;
use std::collections::HashMap;
use std::hint::black_box;
use std::time::Instant;

/// xorshift64*: deterministic and allocation-free, so every allocator sees the same sequence.
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in `0..n`.
    #[inline]
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
    /// A size in `1..=max`, skewed small (cubic): half the draws are under `max / 8`.
    #[inline]
    pub fn skewed(&mut self, max: usize) -> usize {
        let u = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        1 + (u * u * u * (max - 1) as f64) as usize
    }
}

/// The workloads, in table order: (name, what the number measures).
pub const WORKLOADS: &[(&str, &str)] = &[
    ("binary-trees", "Benchmarks Game binary-trees (boxed nodes)"),
    (
        "strings",
        "random-size strings 1–512 B in a Vec, randomly replaced",
    ),
    ("hashmap", "HashMap<String, u64> insert/remove churn"),
    (
        "serde-json",
        "parse + drop of a generated ~10 MB JSON document",
    ),
    ("xthread", "two threads freeing each other's allocations"),
    (
        "vec-growth",
        "8 Vecs grown by push into MiB sizes (realloc)",
    ),
    (
        "ring32",
        "ring of 32-byte boxes, alloc + free in a tight loop",
    ),
    (
        "larson",
        "mimalloc-bench's larson: random 8–1,000 B blocks replaced, slots handed to new threads",
    ),
    (
        "cache-scratch",
        "Hoard's cache-scratch: per-thread 8 B objects written in tight loops (false sharing)",
    ),
    (
        "xmalloc-test",
        "producer threads allocate 64 B blocks, consumer threads free them",
    ),
    (
        "glibc-simple",
        "glibc's bench-malloc-simple: batches of 16–128 B blocks allocated and freed, one thread",
    ),
    (
        "glibc-thread",
        "glibc's bench-malloc-thread: random 4 B–32 KiB blocks (density 1/size) replaced, per thread",
    ),
    (
        "sh6bench",
        "MicroQuill's sh6bench: 1–1,000 B blocks freed in LIFO, FIFO and random order",
    ),
];

/// Runs workload `name` once; returns its measured value and unit (`ms`, or `ns` per pair for ring32).
/// Besides [`WORKLOADS`], `threads-N` is the thread-scaling workload: `N` threads, each replacing blocks of
/// 16–256 B in its own ring (see [`threads`]); its value is the total throughput in million pairs/s.
pub fn run(name: &str, quick: bool) -> Option<(f64, &'static str)> {
    let s = if quick { 1 } else { 8 };
    let t = Instant::now();
    let ms = |t: Instant| t.elapsed().as_secs_f64() * 1e3;
    match name {
        "binary-trees" => {
            binary_trees(if quick { 14 } else { 18 });
            Some((ms(t), "ms"))
        }
        "strings" => {
            strings(250_000 * s);
            Some((ms(t), "ms"))
        }
        "hashmap" => {
            hashmap(250_000 * s);
            Some((ms(t), "ms"))
        }
        "serde-json" => {
            let doc = json_doc(if quick { 1 << 20 } else { 10 << 20 });
            let t = Instant::now();
            for _ in 0..3 {
                let v: serde_json::Value = serde_json::from_str(&doc).expect("valid JSON");
                black_box(&v);
            }
            Some((ms(t), "ms"))
        }
        "xthread" => {
            xthread(200_000 * s);
            Some((ms(t), "ms"))
        }
        "vec-growth" => {
            vec_growth(if quick { 2 } else { 10 });
            Some((ms(t), "ms"))
        }
        "ring32" => {
            let pairs = 5_000_000 * s;
            ring32(pairs);
            Some((ms(t) * 1e6 / pairs as f64, "ns/pair"))
        }
        "larson" => {
            stress::larson(60 * s);
            Some((ms(t), "ms"))
        }
        "cache-scratch" => {
            stress::cache_scratch(20_000 * s);
            Some((ms(t), "ms"))
        }
        "xmalloc-test" => {
            stress::xmalloc_test(5_000 * s);
            Some((ms(t), "ms"))
        }
        "glibc-simple" => {
            stress::glibc_simple(400_000 * s);
            Some((ms(t), "ms"))
        }
        "glibc-thread" => {
            stress::glibc_thread(stress::THREADS, 100_000 * s);
            Some((ms(t), "ms"))
        }
        "sh6bench" => {
            stress::sh6bench(250 * s);
            Some((ms(t), "ms"))
        }
        _ => {
            let n: usize = name
                .strip_prefix("threads-")?
                .parse()
                .ok()
                .filter(|&n| n > 0)?;
            let pairs = if quick { 200_000 } else { 2_000_000 };
            threads(n, pairs);
            Some((
                (n * pairs) as f64 / t.elapsed().as_secs_f64() / 1e6,
                "Mpairs/s",
            ))
        }
    }
}

/// Peak resident set size of this process (`VmHWM`), in KiB.
pub fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// `main` of every `ga_<allocator>` binary: `ga_x WORKLOAD [--quick]`.
pub fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let name = args.get(1).map(String::as_str).unwrap_or("");
    match run(name, quick) {
        Some((v, unit)) => println!("{v:.4} {unit} {}", peak_rss_kib()),
        None => {
            eprintln!("unknown workload {name:?}; one of:");
            for (w, what) in WORKLOADS {
                eprintln!("  {w:14} {what}");
            }
            std::process::exit(2);
        }
    }
}

// ---- the workloads ----------------------------------------------------------------------------------

struct Tree {
    children: Option<(Box<Tree>, Box<Tree>)>,
}

fn bottom_up(depth: u32) -> Box<Tree> {
    Box::new(Tree {
        children: (depth > 0).then(|| (bottom_up(depth - 1), bottom_up(depth - 1))),
    })
}

fn check(t: &Tree) -> u32 {
    1 + t.children.as_ref().map_or(0, |(l, r)| check(l) + check(r))
}

/// The Benchmarks Game program (single-threaded): a stretch tree, a long-lived tree, and many
/// short-lived trees of every depth.
fn binary_trees(max_depth: u32) {
    let min_depth = 4;
    black_box(check(&bottom_up(max_depth + 1)));
    let long_lived = bottom_up(max_depth);
    let mut d = min_depth;
    while d <= max_depth {
        let iterations = 1u32 << (max_depth - d + min_depth);
        let mut sum = 0;
        for _ in 0..iterations {
            sum += check(&bottom_up(d));
        }
        black_box(sum);
        d += 2;
    }
    black_box(check(&long_lived));
}

/// 50,000 live strings of 1–512 bytes (skewed small), one replaced at random per step.
fn strings(steps: usize) {
    let mut rng = Rng(0x5eed_0001);
    let mut v: Vec<String> = (0..50_000).map(|_| "s".repeat(rng.skewed(512))).collect();
    for _ in 0..steps {
        let i = rng.below(v.len());
        v[i] = "r".repeat(rng.skewed(512));
    }
    black_box(&v);
}

/// Insert and remove random keys of a 100,000-key space.
fn hashmap(steps: usize) {
    let mut rng = Rng(0x5eed_0002);
    let mut m: HashMap<String, u64> = HashMap::new();
    for i in 0..steps {
        let k = rng.below(100_000);
        if rng.next_u64() & 1 == 0 {
            m.insert(format!("key-{k}"), i as u64);
        } else {
            m.remove(format!("key-{k}").as_str());
        }
    }
    black_box(m.len());
}

/// A JSON document of about `bytes` bytes: an array of records with strings, numbers and nested arrays.
fn json_doc(bytes: usize) -> String {
    use std::fmt::Write;
    let mut rng = Rng(0x5eed_0003);
    let mut s = String::with_capacity(bytes + 4096);
    s.push('[');
    let mut i = 0u64;
    while s.len() < bytes {
        if i > 0 {
            s.push(',');
        }
        let name_len = rng.skewed(64);
        let _ = write!(
            s,
            r#"{{"id":{i},"name":"{}","score":{}.{},"tags":["#,
            "n".repeat(name_len),
            rng.below(1000),
            rng.below(100)
        );
        for t in 0..rng.below(6) {
            if t > 0 {
                s.push(',');
            }
            let _ = write!(s, r#""tag{}""#, rng.below(50));
        }
        let _ = write!(s, r#"],"nested":{{"a":[1,2,3],"b":null,"c":true}}}}"#);
        i += 1;
    }
    s.push(']');
    s
}

/// Two threads, each allocating batches of 16–256-byte blocks and sending them to the other, which frees
/// them.
fn xthread(per_thread: usize) {
    use std::sync::mpsc::sync_channel;
    const BATCH: usize = 256;
    let (tx_a, rx_a) = sync_channel::<Vec<Box<[u8]>>>(8);
    let (tx_b, rx_b) = sync_channel::<Vec<Box<[u8]>>>(8);
    let worker = |seed: u64,
                  tx: std::sync::mpsc::SyncSender<Vec<Box<[u8]>>>,
                  rx: std::sync::mpsc::Receiver<Vec<Box<[u8]>>>| {
        move || {
            let mut rng = Rng(seed);
            let mut sent = 0;
            while sent < per_thread {
                let batch: Vec<Box<[u8]>> = (0..BATCH)
                    .map(|_| vec![sent as u8; 16 + rng.below(241)].into_boxed_slice())
                    .collect();
                sent += BATCH;
                tx.send(batch).expect("peer alive");
                while let Ok(b) = rx.try_recv() {
                    drop(b);
                }
            }
            drop(tx);
            for b in rx {
                drop(b);
            }
        }
    };
    let a = std::thread::spawn(worker(1, tx_a, rx_b));
    let b = std::thread::spawn(worker(2, tx_b, rx_a));
    a.join().expect("thread a");
    b.join().expect("thread b");
}

/// Eight Vec<u64>s grown round-robin by `push` to 512 Ki elements (4 MiB) each, `rounds` times.
fn vec_growth(rounds: usize) {
    for _ in 0..rounds {
        let mut vs: Vec<Vec<u64>> = (0..8).map(|_| Vec::new()).collect();
        for i in 0..(512 * 1024) as u64 {
            for v in vs.iter_mut() {
                v.push(i);
            }
        }
        black_box(&vs);
    }
}

/// A ring of 1,024 32-byte boxes; each step frees the oldest and allocates a new one.
fn ring32(pairs: usize) {
    let mut ring: Vec<Box<[u64; 4]>> = (0..1024).map(|i| Box::new([i as u64; 4])).collect();
    for i in 0..pairs {
        let slot = i & 1023;
        ring[slot] = black_box(Box::new([i as u64; 4]));
    }
    black_box(&ring);
}

/// `n` threads, each freeing and allocating `pairs` blocks of 16–256 B in its own ring of 1,024: the
/// allocator's throughput when every thread allocates at once (a single-lock allocator serialises them).
fn threads(n: usize, pairs: usize) {
    let hs: Vec<_> = (0..n)
        .map(|t| {
            std::thread::spawn(move || {
                let mut rng = Rng(0x5eed_7000 + t as u64);
                let mut ring: Vec<Box<[u8]>> = (0..1024)
                    .map(|_| vec![0u8; 16 + rng.below(241)].into_boxed_slice())
                    .collect();
                for i in 0..pairs {
                    let len = 16 + rng.below(241);
                    ring[i & 1023] = black_box(vec![i as u8; len].into_boxed_slice());
                }
                black_box(&ring);
            })
        })
        .collect();
    for h in hs {
        h.join().expect("worker");
    }
}
