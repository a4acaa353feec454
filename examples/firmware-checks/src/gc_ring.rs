//! Feature `gc`: a ring of `Gc` nodes — a reference cycle that counting alone never frees — dropped by
//! the program and reclaimed by the cycle collector, all on the static heap.

use core::cell::RefCell;

use alloc::vec::Vec;
use poolgc::gc::{self, Gc, Trace, Tracer};

use crate::{check, say, Board, Checks};

/// Nodes in the ring.
const RING: usize = 8;

/// A ring node: owns one `Gc` (the next node).
struct Node {
    id: u32,
    next: RefCell<Option<Gc<Node>>>,
}

// SAFETY: `trace` visits exactly the `Gc` this node owns (its `next`), and `Node` has no other `Gc`.
unsafe impl Trace for Node {
    fn trace(&self, tracer: &mut Tracer) {
        if let Some(next) = self.next.borrow().as_ref() {
            next.trace(tracer);
        }
    }
}

/// Builds the ring, checks it, drops it, collects it, and checks that every byte came back.
/// Not inlined: each section's frame is on the stack alone, not summed into `run`'s (the nRF51 has
/// 16 KiB of RAM, half of it the heap).
#[inline(never)]
pub(crate) fn run<B: Board>(c: &mut Checks<B>) {
    say!(
        c,
        "\n== gc: a cycle of {} Gc nodes, dropped, then collected",
        RING
    );
    // SAFETY: every `Gc` operation of the firmware happens here, in the main loop's context: the tick
    // handler never touches a `Gc` (and is stopped before this runs).
    unsafe { gc::init_single_threaded() };
    gc::collect(); // start from an empty possible-roots buffer
    let before = c.usage().bytes_in_use;

    let ring: Vec<Gc<Node>> = (0..RING as u32)
        .map(|id| {
            Gc::new(Node {
                id,
                next: RefCell::new(None),
            })
        })
        .collect();
    for (i, node) in ring.iter().enumerate() {
        *node.next.borrow_mut() = Some(ring[(i + 1) % RING].clone());
    }
    let watch = Gc::downgrade(&ring[0]);

    // Walk the ring once: ids 0..RING, back to the start.
    let mut at = ring[0].clone();
    let mut ids = 0;
    for _ in 0..RING {
        ids += at.id;
        let next = at.next.borrow().clone();
        match next {
            Some(next) => at = next,
            None => break,
        }
    }
    check!(
        c,
        Gc::ptr_eq(&at, &ring[0])
            && ids == (0..RING as u32).sum::<u32>()
            && Gc::strong_count(&ring[0]) == 3,
        "ring of {} nodes built and walked (node 0 strong count {})",
        RING,
        Gc::strong_count(&ring[0])
    );
    drop(at);
    drop(ring);

    let held = c.usage().bytes_in_use;
    check!(
        c,
        held > before && watch.upgrade().is_some(),
        "ring dropped but alive: counts never reach zero in a cycle ({} bytes held)",
        held - before
    );

    let freed = gc::collect();
    check!(c, freed >= RING, "gc::collect() freed {} objects", freed);
    check!(
        c,
        watch.upgrade().is_none(),
        "the weak pointer sees the node gone"
    );
    drop(watch);
    let after = c.usage().bytes_in_use;
    check!(
        c,
        after == before,
        "every byte of the cycle back: {} bytes in use, {} before the ring",
        after,
        before
    );
}
