//! Fuzz driver: the `heap_actions` stream through the `GlobalAlloc` trait of a [`PoolAlloc`] that serves
//! two or three regions of different sizes (see `actions.rs` for the byte format and the checks).
//!
//! After the stream, every block is freed (`bytes_in_use == 0`), the spare arena is trimmed, and the
//! allocator must hold exactly as many blocks of one layout as a fresh one over regions of the same sizes.
//!
//! Shared by the cargo-fuzz target `fuzz/fuzz_targets/global_actions.rs` and by
//! `tests/fuzz_global_actions.rs` (fixed seeds, also under Miri).

#[path = "actions.rs"]
pub(crate) mod actions;
#[path = "../common/mod.rs"]
pub(crate) mod common;

use actions::{Backend, Input};
use common::Tracker;
use core::alloc::{GlobalAlloc, Layout};
use core::ptr::NonNull;
use poolgc::{Config, PoolAlloc};

/// Region sizes: the first two always, the third when the input asks for it (a quarter under Miri).
pub const REGIONS: [usize; 3] = if cfg!(miri) {
    [16 * 1024, 6 * 1024, 10 * 1024]
} else {
    [64 * 1024, 24 * 1024, 40 * 1024]
};

/// Regions from the system allocator (freed when the allocator is done with them), aligned to 64 KiB.
struct Regions(Vec<(*mut u8, Layout)>);

impl Regions {
    fn new(n: usize) -> Regions {
        Regions(
            REGIONS[..n]
                .iter()
                .map(|&len| {
                    let layout = Layout::from_size_align(len, 64 * 1024).unwrap();
                    // SAFETY: non-zero size.
                    let p = unsafe { std::alloc::alloc(layout) };
                    assert!(!p.is_null());
                    (p, layout)
                })
                .collect(),
        )
    }
}

impl Drop for Regions {
    fn drop(&mut self) {
        for &(p, l) in &self.0 {
            // SAFETY: allocated in `new` with this layout; the allocator using it is gone (see `run`).
            unsafe { std::alloc::dealloc(p, l) };
        }
    }
}

struct GlobalBackend {
    a: PoolAlloc,
    regions: Vec<(usize, usize)>,
}

impl GlobalBackend {
    fn new(regions: &Regions, config: Config) -> GlobalBackend {
        let a = PoolAlloc::empty_with_config(config);
        for &(p, l) in &regions.0 {
            // SAFETY: each region is valid for its length, used by this allocator only, and outlives it.
            unsafe { a.add_region(p, l.size()) };
        }
        GlobalBackend {
            a,
            regions: regions
                .0
                .iter()
                .map(|&(p, l)| (p as usize, l.size()))
                .collect(),
        }
    }
}

impl Backend for GlobalBackend {
    fn alloc(&mut self, l: Layout) -> Option<NonNull<u8>> {
        // SAFETY: GlobalAlloc::alloc's contract asks for a non-zero size; `PoolAlloc` documents zero-size
        // layouts as served too (a unique smallest-class block), which this driver relies on and checks.
        NonNull::new(unsafe { self.a.alloc(l) })
    }
    fn alloc_zeroed(&mut self, l: Layout) -> Option<NonNull<u8>> {
        // SAFETY: as for `alloc`.
        NonNull::new(unsafe { self.a.alloc_zeroed(l) })
    }
    unsafe fn dealloc(&mut self, p: NonNull<u8>, l: Layout) {
        // SAFETY: forwarded contract.
        unsafe { self.a.dealloc(p.as_ptr(), l) }
    }
    unsafe fn realloc(
        &mut self,
        p: NonNull<u8>,
        l: Layout,
        new_size: usize,
    ) -> Option<NonNull<u8>> {
        // SAFETY: forwarded contract (zero sizes as for `alloc`).
        NonNull::new(unsafe { self.a.realloc(p.as_ptr(), l, new_size) })
    }
    fn trim(&mut self) {
        self.a.trim();
    }
    fn check(&mut self, t: &Tracker) {
        self.a.check().unwrap_or_else(|e| panic!("{e}"));
        self.a.with_heap(|h| t.check_heap(h));
    }
    fn bytes_in_use(&mut self) -> usize {
        // Blocks in this thread's cache, the transfer cache or orphans count as in use until flushed.
        self.a.flush_thread_cache();
        self.a.stats().bytes_in_use
    }
    fn owns(&self, p: NonNull<u8>, len: usize) -> bool {
        let a = p.as_ptr() as usize;
        self.regions
            .iter()
            .any(|&(start, size)| a >= start && a + len <= start + size)
    }
}

/// Interprets `data` as an action stream on a fresh `PoolAlloc`; panics on any broken invariant.
pub fn run(data: &[u8]) {
    let mut input = Input::new(data);
    let shape = input.u8();
    let (pool, arena) = actions::geometry(shape);
    let config = Config::new(pool, arena);
    let nregions = 2 + (shape as usize / 4) % 2;
    let regions = Regions::new(nregions);
    let mut b = GlobalBackend::new(&regions, config);
    let refill = actions::run_actions(&mut b, &mut input);

    b.trim();
    b.check(&Tracker::default());
    let again = actions::fill_count(&mut b, refill);
    let fresh_regions = Regions::new(nregions);
    let mut fresh = GlobalBackend::new(&fresh_regions, config);
    let expected = actions::fill_count(&mut fresh, refill);
    assert_eq!(
        again, expected,
        "after freeing everything the allocator holds {again} blocks of {refill:?}, a fresh one {expected}"
    );
    b.check(&Tracker::default());
}
