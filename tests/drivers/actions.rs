//! The action stream shared by the `heap_actions` and `global_actions` drivers: bytes in, a deterministic
//! sequence of alloc / alloc_zeroed / dealloc / realloc / trim out, with every invariant checked after each
//! action. A backend (`Heap` or `PoolAlloc`) supplies the operations; this file knows nothing of locks.
//!
//! Byte format (every read past the end yields 0, and the stream stops once the input is used up):
//! `config` (1 byte), `refill layout` (1 byte), then actions of `op` (1 byte) and its arguments:
//!
//! | op % 16  | action | arguments |
//! |---|---|---|
//! | 0..=5    | alloc | size, align |
//! | 6..=7    | alloc_zeroed | size, align |
//! | 8..=11   | dealloc | index (u16) |
//! | 12..=14  | realloc | index (u16), new size |
//! | 15       | trim (give the spare arena back) | — |
//!
//! Sizes (1 + 2 bytes) run from 0 to 5000, skewed to small: half of them ≤ 512, a quarter ≤ 64.
//! Alignments (1 byte) are mostly 1..=8, then 16..=4096, and about one in eight 8192..=65536.

use core::alloc::Layout;
use core::ptr::NonNull;

use super::common::{Rng, Tracker};

/// The allocator under test.
pub trait Backend {
    fn alloc(&mut self, l: Layout) -> Option<NonNull<u8>>;
    fn alloc_zeroed(&mut self, l: Layout) -> Option<NonNull<u8>>;
    /// # Safety
    /// `p` is live with layout `l`.
    unsafe fn dealloc(&mut self, p: NonNull<u8>, l: Layout);
    /// # Safety
    /// `p` is live with layout `l`; `new_size` is a valid size for `l.align()`.
    unsafe fn realloc(&mut self, p: NonNull<u8>, l: Layout, new_size: usize)
        -> Option<NonNull<u8>>;
    fn trim(&mut self);
    /// `Heap::check()` plus the tracker's per-block checks (`Tracker::check_heap`).
    fn check(&mut self, t: &Tracker);
    fn bytes_in_use(&mut self) -> usize;
    /// Whether `[p, p + len)` lies inside the memory handed to the allocator.
    fn owns(&self, p: NonNull<u8>, len: usize) -> bool;
}

/// A cursor over the fuzz input; reads past the end give zeros.
pub struct Input<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Input<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Input { data, pos: 0 }
    }
    pub fn done(&self) -> bool {
        self.pos >= self.data.len()
    }
    pub fn u8(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }
    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }
    /// 0..=5000, skewed to small sizes.
    pub fn size(&mut self) -> usize {
        let kind = self.u8();
        let r = self.u16() as usize;
        match kind % 4 {
            0 => r % 65,
            1 => r % 513,
            2 => 505 + r % 16, // around the small/large boundary
            _ => r % 5001,
        }
    }
    /// 1..=65536, mostly small.
    pub fn align(&mut self) -> usize {
        let r = self.u8() as usize % 32;
        let shift = match r {
            0..=15 => r % 4,             // 1..=8
            16..=27 => 4 + (r - 16) % 9, // 16..=4096
            _ => 13 + (r - 28),          // 8192..=65536
        };
        1 << shift
    }
}

/// Region geometry for a config byte: `(pool_size, arena_size)`.
pub fn geometry(b: u8) -> (usize, usize) {
    match b % 4 {
        0 => (1024, 4096),
        1 => (1024, 1024),
        2 => (4096, 16 * 1024),
        _ => (16 * 1024, 64 * 1024),
    }
}

/// The layout that the refill at the end uses.
pub fn refill_layout(b: u8) -> Layout {
    let (size, align) =
        [(1, 1), (48, 8), (512, 16), (24, 64), (700, 8), (3000, 256)][b as usize % 6];
    Layout::from_size_align(size, align).unwrap()
}

/// Fills `b` with blocks of `l` until it refuses; frees them; returns how many fit.
pub fn fill_count<B: Backend>(b: &mut B, l: Layout) -> usize {
    let mut v = Vec::new();
    while let Some(p) = b.alloc(l) {
        v.push(p);
    }
    let n = v.len();
    for p in v {
        // SAFETY: each was allocated just now with `l` and is freed once.
        unsafe { b.dealloc(p, l) };
    }
    n
}

/// Runs the action stream on `b`, checking every invariant after each action; at the end frees every
/// block and checks that nothing is in use. Returns the refill layout chosen by the input.
pub fn run_actions<B: Backend>(b: &mut B, input: &mut Input<'_>) -> Layout {
    let mut t = Tracker::default();
    let refill = refill_layout(input.u8());
    let mut step: u8 = 0;
    while !input.done() {
        step = step.wrapping_add(1);
        let pattern = step | 1; // never 0, so a zeroed block is told apart from a filled one
        let op = input.u8() % 16;
        match op {
            0..=7 => {
                let (size, align) = (input.size(), input.align());
                let l = Layout::from_size_align(size, align).unwrap();
                let zeroed = op >= 6;
                let p = if zeroed {
                    b.alloc_zeroed(l)
                } else {
                    b.alloc(l)
                };
                if let Some(p) = p {
                    assert!(b.owns(p, size.max(1)), "{p:p} ({l:?}) outside the regions");
                    if zeroed {
                        // SAFETY: a fresh block of `size` bytes.
                        let s = unsafe { core::slice::from_raw_parts(p.as_ptr(), size) };
                        assert!(s.iter().all(|&x| x == 0), "alloc_zeroed({l:?}) not zero");
                    }
                    t.add(p, l, pattern);
                }
            }
            8..=11 => {
                let i = input.u16() as usize;
                if !t.live.is_empty() {
                    let i = i % t.live.len();
                    t.verify(i);
                    let (p, l, _) = t.live.swap_remove(i);
                    // SAFETY: tracked blocks are live with their layout.
                    unsafe { b.dealloc(p, l) };
                }
            }
            12..=14 => {
                let i = input.u16() as usize;
                let new_size = input.size();
                if !t.live.is_empty() {
                    let i = i % t.live.len();
                    t.verify(i);
                    let (p, l, fill) = t.live.swap_remove(i);
                    // SAFETY: `p` is live with `l`; sizes ≤ 5000 are valid for any alignment ≤ 65536.
                    match unsafe { b.realloc(p, l, new_size) } {
                        Some(q) => {
                            let nl = Layout::from_size_align(new_size, l.align()).unwrap();
                            assert_eq!(
                                q.as_ptr() as usize % l.align(),
                                0,
                                "realloc lost alignment"
                            );
                            assert!(b.owns(q, new_size.max(1)), "{q:p} outside the regions");
                            let keep = l.size().min(new_size);
                            // SAFETY: `q` is live with at least `keep` bytes.
                            let s = unsafe { core::slice::from_raw_parts(q.as_ptr(), keep) };
                            if let Some(k) = s.iter().position(|&x| x != fill) {
                                panic!("realloc {l:?} → {new_size}: byte {k} lost");
                            }
                            t.add(q, nl, pattern);
                        }
                        // The old block is untouched and still ours.
                        None => t.live.push((p, l, fill)),
                    }
                }
            }
            _ => b.trim(),
        }
        b.check(&t);
    }
    t.verify_all();
    for (p, l, _) in t.live.drain(..) {
        // SAFETY: tracked blocks are live with their layout; each is freed once.
        unsafe { b.dealloc(p, l) };
    }
    b.check(&t);
    assert_eq!(b.bytes_in_use(), 0, "bytes in use after freeing everything");
    refill
}

/// A pseudo-random input of `len` bytes from `seed`, for the fixed-seed tests.
#[allow(dead_code)] // used by tests/fuzz_*.rs, not by the fuzz targets
pub fn seeded_input(seed: u64, len: usize) -> Vec<u8> {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    (0..len).map(|_| rng.next() as u8).collect()
}

/// Inputs that are not random: empty, all zeros (allocations of size 0 only), all ones, and `n`
/// allocations of 0..=5000 bytes in a row (so exhaustion is reached and refused), for the fixed-seed tests.
#[allow(dead_code)] // used by tests/fuzz_*.rs, not by the fuzz targets
pub fn edge_inputs(n: usize) -> Vec<Vec<u8>> {
    let mut alloc_only = vec![0u8, 1];
    for i in 0..n {
        // op 0 (alloc), size kind 3 (0..=5000) with a varying value, align byte 16 (16 bytes).
        alloc_only.extend([0, 3, (i * 37) as u8, (i / 7) as u8, 16]);
    }
    vec![Vec::new(), vec![0; 64], vec![0xFF; 64], alloc_only]
}
