//! Exhaustion on firmware is a null pointer, not a crash: `alloc` returns null, `try_reserve` returns
//! `Err`, and only the infallible APIs (`Vec::push`, `Box::new`) go on to `handle_alloc_error`.

use alloc::vec::Vec;
use core::alloc::{GlobalAlloc, Layout};
use core::mem::size_of;
use core::ptr;

use poolgc::PoolAlloc;

use crate::{check, say, Board, Checks};

/// The blocks of one fill, chained through their first word (newest first), so that holding them takes
/// no memory but theirs: the stack is small, and the heap is what is being measured.
struct Filled {
    layout: Layout,
    newest: *mut u8,
    count: usize,
}

/// Fills the heap with `layout` blocks straight through `GlobalAlloc::alloc` until it returns null. Block
/// `n` (counted from the first) holds the link to block `n - 1`, then the byte `n as u8` to its end.
fn fill(alloc: &PoolAlloc, layout: Layout) -> Filled {
    let mut f = Filled {
        layout,
        newest: ptr::null_mut(),
        count: 0,
    };
    loop {
        // SAFETY: `layout` has a non-zero size.
        let p = unsafe { alloc.alloc(layout) };
        if p.is_null() {
            return f;
        }
        // SAFETY: `p` is a fresh block of `layout.size()` ≥ 16 bytes, aligned for a pointer.
        unsafe {
            p.write_bytes(f.count as u8, layout.size());
            p.cast::<*mut u8>().write(f.newest);
        }
        f.newest = p;
        f.count += 1;
    }
}

/// Frees the blocks of a fill, checking each still holds its bytes; returns the bad ones.
fn free_all(alloc: &PoolAlloc, f: Filled) -> usize {
    let (mut bad, mut p, mut n) = (0, f.newest, f.count);
    let link = size_of::<*mut u8>();
    while !p.is_null() {
        n -= 1;
        // SAFETY: `p` is block `n` of the fill, live, of `f.layout`; its link is read before it is freed,
        // once, here.
        unsafe {
            let next = p.cast::<*mut u8>().read();
            if core::slice::from_raw_parts(p.add(link), f.layout.size() - link)
                .iter()
                .any(|&b| b != n as u8)
            {
                bad += 1;
            }
            alloc.dealloc(p, f.layout);
            p = next;
        }
    }
    bad
}

pub(crate) fn run<B: Board>(c: &mut Checks<B>) {
    say!(
        c,
        "\n== exhaustion: null from alloc, then the same again after freeing"
    );
    let (alloc, heap_size) = (c.alloc, c.heap_size);
    // Large blocks freed above (the interrupt handler's among them, at moments that vary from run to run)
    // wait on the region's bins until memory runs short, and the first fill would pack its arenas around
    // them before taking them back. Give them back to the first-fit allocator now, so that both fills of
    // each size start from the same coalesced region.
    alloc.trim();
    for size in [16usize, 32, 1024] {
        if size > 512 {
            // Large blocks come from the region's first-fit allocator; the wholly free arena the heap keeps
            // as a spare (against arena thrashing) would hold some of it back: give it back first.
            let released = alloc.trim();
            check!(
                c,
                released > 0,
                "trim gave the spare arena back to the region ({} bytes)",
                released
            );
        }
        let layout = Layout::from_size_align(size, 8).unwrap();
        let filled = fill(alloc, layout);
        let first = filled.count;
        let s = c.usage();
        // Refused while full, gracefully: no panic, no handle_alloc_error.
        let mut v: Vec<u8> = Vec::new();
        let refused = v.try_reserve_exact(size).is_err();
        check!(
            c,
            first * size >= heap_size * 2 / 3 && s.bytes_in_use == first * size && refused,
            "{size}-byte blocks: alloc returned null after {} blocks ({} of {} bytes handed out, \
             {} B/KiB overhead); try_reserve -> Err",
            first,
            s.bytes_in_use,
            heap_size,
            (heap_size - s.bytes_in_use) / (heap_size / 1024)
        );
        let bad = free_all(alloc, filled);
        let again = fill(alloc, layout);
        let count = again.count;
        check!(
            c,
            bad == 0 && count == first,
            "{size}-byte blocks: contents intact, and after freeing, the heap fills to {} again",
            count
        );
        let bad = free_all(alloc, again);
        let s = c.usage();
        check!(
            c,
            bad == 0 && s.bytes_in_use == 0 && alloc.check().is_ok(),
            "{size}-byte blocks: all freed, heap invariants hold"
        );
    }
    let mut v: Vec<u8> = Vec::new();
    check!(
        c,
        v.try_reserve(heap_size).is_err() && v.try_reserve(heap_size / 4).is_ok(),
        "try_reserve: {} bytes refused (the heap's own bookkeeping needs some), {} granted",
        heap_size,
        heap_size / 4
    );
}
