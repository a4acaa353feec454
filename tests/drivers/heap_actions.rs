//! Fuzz driver: arbitrary alloc / alloc_zeroed / dealloc / realloc / trim on a [`Heap`] over one region,
//! every invariant checked after each action (see `actions.rs` for the byte format and the checks).
//!
//! After the stream, every block is freed (`bytes_in_use == 0`), the spare arena is trimmed, and the heap
//! must hold exactly as many blocks of one layout as a fresh heap over a region of the same size: freeing
//! everything gives back all the room there was.
//!
//! Shared by the cargo-fuzz target `fuzz/fuzz_targets/heap_actions.rs` and by
//! `tests/fuzz_heap_actions.rs` (fixed seeds, also under Miri).

#[path = "actions.rs"]
pub(crate) mod actions;
#[path = "../common/mod.rs"]
pub(crate) mod common;

use actions::{Backend, Input};
use common::Tracker;
use core::alloc::Layout;
use core::ptr::NonNull;
use poolgc::{Config, Heap};

/// Bytes of the region: room for a few dozen arenas, small enough that exhaustion is reachable (smaller
/// under Miri, where the refill at the end dominates the run time).
pub const REGION: usize = if cfg!(miri) { 32 * 1024 } else { 128 * 1024 };

/// A region from the system allocator (freed when the heap is done with it), so that under ASan or Miri
/// any write outside it is caught. Aligned to 64 KiB so that two regions give the same geometry.
struct Region {
    ptr: *mut u8,
    layout: Layout,
}

impl Region {
    fn new(len: usize) -> Region {
        let layout = Layout::from_size_align(len, 64 * 1024).unwrap();
        // SAFETY: non-zero size.
        let ptr = unsafe { std::alloc::alloc(layout) };
        assert!(!ptr.is_null());
        Region { ptr, layout }
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout; the heap using it is gone (drop order in `run`).
        unsafe { std::alloc::dealloc(self.ptr, self.layout) };
    }
}

struct HeapBackend {
    heap: Heap,
    region: (usize, usize),
}

impl HeapBackend {
    fn new(region: &Region, config: Config) -> HeapBackend {
        let mut heap = Heap::empty(config);
        // SAFETY: the region is valid for its length, used by this heap only, and outlives it.
        unsafe { heap.add_region(region.ptr, region.layout.size()).unwrap() };
        HeapBackend {
            heap,
            region: (region.ptr as usize, region.layout.size()),
        }
    }
}

impl Backend for HeapBackend {
    fn alloc(&mut self, l: Layout) -> Option<NonNull<u8>> {
        self.heap.allocate(l)
    }
    fn alloc_zeroed(&mut self, l: Layout) -> Option<NonNull<u8>> {
        self.heap.allocate_zeroed(l)
    }
    unsafe fn dealloc(&mut self, p: NonNull<u8>, l: Layout) {
        // SAFETY: forwarded contract.
        unsafe { self.heap.deallocate(p, l) }
    }
    unsafe fn realloc(
        &mut self,
        p: NonNull<u8>,
        l: Layout,
        new_size: usize,
    ) -> Option<NonNull<u8>> {
        // SAFETY: forwarded contract.
        unsafe { self.heap.reallocate(p, l, new_size) }
    }
    fn trim(&mut self) {
        self.heap.trim();
    }
    fn check(&mut self, t: &Tracker) {
        t.check_heap(&self.heap);
    }
    fn bytes_in_use(&mut self) -> usize {
        self.heap.stats().bytes_in_use
    }
    fn owns(&self, p: NonNull<u8>, len: usize) -> bool {
        let (start, size) = self.region;
        let a = p.as_ptr() as usize;
        a >= start && a + len <= start + size
    }
}

/// Interprets `data` as an action stream on a fresh heap; panics on any broken invariant.
pub fn run(data: &[u8]) {
    let mut input = Input::new(data);
    let (pool, arena) = actions::geometry(input.u8());
    let config = Config::new(pool, arena);
    let region = Region::new(REGION);
    let mut b = HeapBackend::new(&region, config);
    let refill = actions::run_actions(&mut b, &mut input);

    b.trim();
    b.check(&Tracker::default());
    let again = actions::fill_count(&mut b, refill);
    let fresh_region = Region::new(REGION);
    let mut fresh = HeapBackend::new(&fresh_region, config);
    let expected = actions::fill_count(&mut fresh, refill);
    assert_eq!(
        again, expected,
        "after freeing everything the heap holds {again} blocks of {refill:?}, a fresh one {expected}"
    );
    b.check(&Tracker::default());
}
