//! The classic allocator stress programs (the ones mimalloc-bench runs), written in Rust from their
//! published descriptions: larson, cache-scratch, xmalloc-test, glibc's bench-malloc-simple and
//! bench-malloc-thread, and MicroQuill's sh6bench. Each does a fixed amount of work, given by its
//! argument, so its time is comparable across allocators ([`crate::workloads::run`] picks the sizes: a
//! full run does 8 times a `--quick` one).
//!
//! The multi-threaded ones use [`THREADS`] threads: the cores of the machine the published tables come from.

use crate::workloads::Rng;
use std::hint::black_box;
use std::mem::MaybeUninit;
use std::sync::{Arc, Condvar, Mutex};

/// Threads of the multi-threaded programs.
pub const THREADS: usize = 2;

/// A heap block as the C programs get it from `malloc`: uninitialised but for what they write.
type Block = Box<[MaybeUninit<u8>]>;

/// A block of `len` ≥ 1 bytes with its first and last bytes written (`tag`), as the C programs touch
/// their blocks; the rest stays unwritten, so no allocator gains or loses by zeroed pages.
#[inline]
fn block(len: usize, tag: u8) -> Block {
    let mut b = Box::<[u8]>::new_uninit_slice(len);
    b[0].write(tag);
    b[len - 1].write(tag);
    b
}

/// larson (Larson and Krishnan's server simulation): each of [`THREADS`] slots holds 1,000 blocks of
/// 8–1,000 B; a thread replaces random blocks of its slot 10,000 times, then hands the slot to a new
/// thread, which frees what its predecessor allocated. `rounds` generations of threads per slot.
pub fn larson(rounds: usize) {
    const BLOCKS: usize = 1_000;
    const REPLACE: usize = 10_000;
    let slots: Vec<Vec<Block>> = (0..THREADS)
        .map(|t| {
            let mut rng = Rng(0x1a75_0000 + t as u64);
            (0..BLOCKS).map(|_| block(8 + rng.below(993), 1)).collect()
        })
        .collect();
    let mut slots: Vec<Option<Vec<Block>>> = slots.into_iter().map(Some).collect();
    for round in 0..rounds {
        let hs: Vec<_> = slots
            .iter_mut()
            .enumerate()
            .map(|(t, s)| {
                let mut blocks = s.take().expect("slot handed back");
                std::thread::spawn(move || {
                    let mut rng = Rng(0x1a75_1000 + (round * THREADS + t) as u64);
                    for _ in 0..REPLACE {
                        let i = rng.below(BLOCKS);
                        blocks[i] = block(8 + rng.below(993), round as u8);
                    }
                    blocks
                })
            })
            .collect();
        for (s, h) in slots.iter_mut().zip(hs) {
            *s = Some(h.join().expect("larson thread"));
        }
    }
    black_box(&slots);
}

/// cache-scratch (Hoard's test of passive false sharing): the main thread allocates one small object per
/// thread and hands it over; each thread frees it, then `iterations` times allocates an 8-byte object,
/// writes it 2,000 times and frees it. An allocator that gives threads neighbouring blocks from one cache
/// line (as the freed, handed-over objects invite) makes the writes bounce that line between cores.
pub fn cache_scratch(iterations: usize) {
    const WRITES: usize = 2_000;
    let given: Vec<Box<[u8; 8]>> = (0..THREADS).map(|_| Box::new([0u8; 8])).collect();
    let hs: Vec<_> = given
        .into_iter()
        .map(|obj| {
            std::thread::spawn(move || {
                drop(obj);
                for i in 0..iterations {
                    let mut o = Box::new([0u8; 8]);
                    let p = o.as_mut_ptr();
                    for j in 0..WRITES {
                        // SAFETY: `p` points into `o`, which lives until the end of this iteration; the
                        // volatile access only keeps the compiler from merging the writes.
                        unsafe {
                            let v = core::ptr::read_volatile(p);
                            core::ptr::write_volatile(p, v.wrapping_add((i ^ j) as u8));
                        }
                    }
                    black_box(&o);
                }
            })
        })
        .collect();
    for h in hs {
        h.join().expect("cache-scratch thread");
    }
}

/// A bounded queue of batches between producer and consumer threads (a lock and two condition variables;
/// its ring is allocated once, up front).
struct Queue<T> {
    items: Mutex<(std::collections::VecDeque<T>, usize)>,
    not_full: Condvar,
    not_empty: Condvar,
}

impl<T> Queue<T> {
    const CAP: usize = 64;
    fn new(producers: usize) -> Self {
        Queue {
            items: Mutex::new((
                std::collections::VecDeque::with_capacity(Self::CAP),
                producers,
            )),
            not_full: Condvar::new(),
            not_empty: Condvar::new(),
        }
    }
    fn push(&self, x: T) {
        let mut g = self.items.lock().expect("queue");
        while g.0.len() == Self::CAP {
            g = self.not_full.wait(g).expect("queue");
        }
        g.0.push_back(x);
        self.not_empty.notify_one();
    }
    /// A producer is done; consumers stop once every producer is and the queue is empty.
    fn close(&self) {
        self.items.lock().expect("queue").1 -= 1;
        self.not_empty.notify_all();
    }
    fn pop(&self) -> Option<T> {
        let mut g = self.items.lock().expect("queue");
        loop {
            if let Some(x) = g.0.pop_front() {
                self.not_full.notify_one();
                return Some(x);
            }
            if g.1 == 0 {
                return None;
            }
            g = self.not_empty.wait(g).expect("queue");
        }
    }
}

/// xmalloc-test (Lever and Boreham): [`THREADS`] producer threads allocate 64-byte blocks, in batches of
/// 100, and pass them through a shared queue to [`THREADS`] consumer threads, which free them: every block
/// is freed by a thread other than the one that allocated it. `batches` batches per producer.
pub fn xmalloc_test(batches: usize) {
    const BATCH: usize = 100;
    let q: Arc<Queue<Vec<Block>>> = Arc::new(Queue::new(THREADS));
    let producers: Vec<_> = (0..THREADS)
        .map(|t| {
            let q = Arc::clone(&q);
            std::thread::spawn(move || {
                for b in 0..batches {
                    let tag = (b ^ t) as u8;
                    q.push((0..BATCH).map(|_| block(64, tag)).collect());
                }
                q.close();
            })
        })
        .collect();
    let consumers: Vec<_> = (0..THREADS)
        .map(|_| {
            let q = Arc::clone(&q);
            std::thread::spawn(move || {
                let mut n = 0usize;
                while let Some(batch) = q.pop() {
                    // SAFETY: `block` wrote the first byte of every block.
                    n += batch
                        .iter()
                        .map(|b| unsafe { b[0].assume_init() } as usize)
                        .sum::<usize>();
                    drop(batch);
                }
                black_box(n);
            })
        })
        .collect();
    for h in producers.into_iter().chain(consumers) {
        h.join().expect("xmalloc-test thread");
    }
}

/// glibc's bench-malloc-simple: for block sizes 16, 32, 64 and 128 B and batches of 25, 100, 400 and 1,600
/// blocks, allocate a batch and free it, over and over (`iterations` blocks per size and batch), one thread.
pub fn glibc_simple(iterations: usize) {
    let mut ptrs: Vec<Block> = Vec::with_capacity(1_600);
    for size in [16, 32, 64, 128] {
        for batch in [25, 100, 400, 1_600] {
            for r in 0..iterations / batch {
                ptrs.extend((0..batch).map(|_| block(size, r as u8)));
                black_box(&ptrs);
                ptrs.clear();
            }
        }
    }
}

/// A size in `4..=32,768` with a density falling as 1/size (glibc's bench-malloc-thread draws so): as
/// many blocks of 4–8 B as of 16–32 KiB.
#[inline]
fn log_size(rng: &mut Rng) -> usize {
    let u = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
    ((4.0f64).ln() + u * ((32_768.0f64).ln() - (4.0f64).ln())).exp() as usize
}

/// glibc's bench-malloc-thread: each of `threads` threads replaces random blocks of its own working set
/// of 1,024 with blocks of 4 B–32 KiB (density 1/size), `steps` times. `glibc-simple`'s counterpart with
/// varied sizes; with one thread, its single-thread case.
pub fn glibc_thread(threads: usize, steps: usize) {
    let hs: Vec<_> = (0..threads)
        .map(|t| {
            std::thread::spawn(move || {
                let mut rng = Rng(0x61bc_0000 + t as u64);
                let mut set: Vec<Option<Block>> = (0..1_024).map(|_| None).collect();
                for i in 0..steps {
                    let j = rng.below(1_024);
                    set[j] = None;
                    set[j] = Some(block(log_size(&mut rng), i as u8));
                }
                black_box(&set);
            })
        })
        .collect();
    for h in hs {
        h.join().expect("glibc-thread thread");
    }
}

/// sh6bench (MicroQuill's SmartHeap benchmark): each of [`THREADS`] threads, `rounds` times, allocates
/// 2,000 blocks whose sizes sweep 1–1,000 B, then frees them in an order that cycles through LIFO (the
/// newest first), FIFO (the oldest first) and random; a third of each round's blocks (every third one,
/// freed in the next round) outlives the round, so rounds interleave.
pub fn sh6bench(rounds: usize) {
    const N: usize = 2_000;
    let hs: Vec<_> = (0..THREADS)
        .map(|t| {
            std::thread::spawn(move || {
                let mut rng = Rng(0x56b6_0000 + t as u64);
                let mut kept: Vec<Block> = Vec::with_capacity(N / 3 + 1);
                let mut v: Vec<Option<Block>> = Vec::with_capacity(N);
                let mut order: Vec<usize> = (0..N).collect();
                for r in 0..rounds {
                    v.extend((0..N).map(|i| Some(block(1 + (i * 7 + r) % 1_000, r as u8))));
                    match r % 3 {
                        0 => order
                            .iter_mut()
                            .enumerate()
                            .for_each(|(k, o)| *o = N - 1 - k),
                        1 => order.iter_mut().enumerate().for_each(|(k, o)| *o = k),
                        _ => {
                            for k in (1..N).rev() {
                                order.swap(k, rng.below(k + 1));
                            }
                        }
                    }
                    kept.clear();
                    for &i in &order {
                        let b = v[i].take().expect("each block once");
                        if i % 3 == 0 {
                            kept.push(b);
                        }
                    }
                    v.clear();
                    black_box(&kept);
                }
            })
        })
        .collect();
    for h in hs {
        h.join().expect("sh6bench thread");
    }
}
