//! One rule files a block under its class on every path: a pool block stays in place on `realloc` only
//! when the new layout maps to the same class, so the layout a block is freed with always names the class
//! it is cached under, and every pointer handed out satisfies its layout. One test function, so that its
//! caching allocator is the process's primary one (the global allocator is the system's here).

use poolgc::PoolAlloc;
use std::alloc::{GlobalAlloc, Layout};

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn fill(p: *mut u8, len: usize, tag: u8) {
    // SAFETY: `p` is a live block of at least `len` bytes.
    unsafe { core::ptr::write_bytes(p, tag, len) };
}

fn holds(p: *mut u8, len: usize, tag: u8) -> bool {
    // Under Miri (slow per byte) every 61st byte and the last; Miri checks the accesses themselves.
    let step = if cfg!(miri) { 61 } else { 1 };
    // SAFETY: as in `fill`.
    let bytes = unsafe { core::slice::from_raw_parts(p, len) };
    bytes.iter().step_by(step).all(|&b| b == tag) && bytes.last().is_none_or(|&b| b == tag)
}

/// Whether `a` serves this thread from a cache: a freed block stays counted in use until a flush.
fn is_cached(a: &PoolAlloc) -> bool {
    let l = Layout::from_size_align(24, 8).unwrap();
    // SAFETY: freed once, with its layout.
    unsafe { a.dealloc(a.alloc(l), l) };
    let cached = a.stats().bytes_in_use != 0;
    a.flush_thread_cache();
    cached
}

/// The reproduction: a 448-byte block (64-aligned, not 128-aligned) shrunk to 384 bytes, freed as such,
/// must not come back for a 384-byte request aligned to 128.
fn shrunk_block_is_not_handed_out_misaligned(a: &PoolAlloc) {
    let l448 = Layout::from_size_align(448, 16).unwrap();
    let mut kept = Vec::new();
    let p = loop {
        // SAFETY: every block is freed below with its layout.
        let p = unsafe { a.alloc(l448) };
        assert!(!p.is_null());
        if p.addr() % 128 != 0 {
            break p;
        }
        kept.push(p);
    };
    // The thread has allocated through its cache already (if `a` caches), so the free below is cached.
    let l16 = Layout::from_size_align(16, 8).unwrap();
    // SAFETY: freed once, with its layout.
    unsafe { a.dealloc(a.alloc(l16), l16) };
    // SAFETY: a live block with `l448`; 384 is a valid size for align 16.
    let q = unsafe { a.realloc(p, l448, 384) };
    assert!(!q.is_null());
    // SAFETY: `q` is live with the new layout.
    unsafe { a.dealloc(q, Layout::from_size_align(384, 16).unwrap()) };
    let l384 = Layout::from_size_align(384, 128).unwrap();
    // SAFETY: freed below with its layout.
    let r = unsafe { a.alloc(l384) };
    assert_eq!(r.addr() % 128, 0, "alloc(384, align 128) returned {r:p}");
    // SAFETY: live blocks with these layouts.
    unsafe {
        a.dealloc(r, l384);
        for p in kept {
            a.dealloc(p, l448);
        }
    }
}

/// Random allocs, reallocs across classes and frees with the latest layout, alignments 8..=512, sizes
/// up to 8 KiB: every pointer aligned, every content intact.
fn random_actions(a: &PoolAlloc, seed: u64, steps: usize) {
    let mut rng = Rng(seed);
    let mut live: Vec<(*mut u8, Layout, u8)> = Vec::new();
    let size = |rng: &mut Rng| match rng.below(4) {
        0 => rng.below(65) as usize,
        1 | 2 => rng.below(1025) as usize,
        _ => rng.below(8193) as usize,
    };
    for step in 0..steps {
        let tag = step as u8 | 1;
        match rng.below(8) {
            0..=2 => {
                let align = 8 << rng.below(7);
                let l = Layout::from_size_align(size(&mut rng), align).unwrap();
                // SAFETY: freed once below with its latest layout.
                let p = unsafe { a.alloc(l) };
                assert!(!p.is_null(), "alloc {l:?}");
                assert_eq!(p.addr() % align, 0, "alloc {l:?} returned {p:p}");
                fill(p, l.size(), tag);
                live.push((p, l, tag));
            }
            3..=5 if !live.is_empty() => {
                let i = rng.below(live.len() as u64) as usize;
                let (p, l, old) = live[i];
                let new_size = size(&mut rng);
                // SAFETY: a live block with `l`; `new_size` is valid for its alignment.
                let q = unsafe { a.realloc(p, l, new_size) };
                assert!(!q.is_null(), "realloc {l:?} to {new_size}");
                assert_eq!(
                    q.addr() % l.align(),
                    0,
                    "realloc {l:?} to {new_size}: {q:p}"
                );
                assert!(
                    holds(q, l.size().min(new_size), old),
                    "realloc lost content"
                );
                let nl = Layout::from_size_align(new_size, l.align()).unwrap();
                fill(q, new_size, tag);
                live[i] = (q, nl, tag);
            }
            _ if !live.is_empty() => {
                let (p, l, t) = live.swap_remove(rng.below(live.len() as u64) as usize);
                assert!(
                    holds(p, l.size(), t),
                    "content of {p:p} ({l:?}) overwritten"
                );
                // SAFETY: a live block with its latest layout, freed once.
                unsafe { a.dealloc(p, l) };
            }
            _ => {}
        }
    }
    for (p, l, t) in live {
        assert!(
            holds(p, l.size(), t),
            "content of {p:p} ({l:?}) overwritten"
        );
        // SAFETY: as above.
        unsafe { a.dealloc(p, l) };
    }
    a.flush_thread_cache();
    a.check().unwrap();
    assert_eq!(a.stats().bytes_in_use, 0);
}

#[test]
fn every_pointer_fits_its_layout_with_caches_on_and_off() {
    let steps = if cfg!(miri) { 200 } else { 60_000 };
    let cached = PoolAlloc::new();
    assert!(
        is_cached(&cached),
        "new() must serve this thread from a cache"
    );
    shrunk_block_is_not_handed_out_misaligned(&cached);
    random_actions(&cached, 0x9e37_79b9_7f4a_7c15, steps);

    let locked = PoolAlloc::new_locked();
    assert!(!is_cached(&locked));
    shrunk_block_is_not_handed_out_misaligned(&locked);
    random_actions(&locked, 0xd1b5_4a32_d192_ed03, steps);

    // The deprecated switch changes nothing: a locked allocator stays locked, a cached one cached.
    #[allow(deprecated)]
    let still_locked = PoolAlloc::new_locked().with_thread_cache();
    assert!(!is_cached(&still_locked));
    shrunk_block_is_not_handed_out_misaligned(&still_locked);
    drop(cached);
    #[allow(deprecated)]
    let still_cached = PoolAlloc::new().with_thread_cache();
    assert!(is_cached(&still_cached));
    random_actions(&still_cached, 7, steps / 10);
}
