//! One collection's analysis: MarkRoots, MarkGray and ScanRoots (see `collector` for the algorithm).
//!
//! The user's `trace` runs **once per box** per collection, during MarkGray, and the edges it reports are
//! recorded; Scan walks the recorded edges and never calls `trace` again. So the edges Scan follows are
//! exactly the ones MarkGray subtracted: a `trace` that omits an edge (on any call) only keeps its target
//! alive, whatever it reports elsewhere.
//!
//! While the analysis runs, a reached box's `epoch` is its index in [`Analysis::nodes`] (the true value
//! is saved there and restored by `finish`, or by `drop` if a `trace` panics). Trial counts and liveness
//! are kept in the node array, not in the headers: Scan touches no box, and `strong` is never changed. Which boxes take part (not dropped, not frozen) is decided when a box is first met,
//! against the freeze mark taken when the collection started.
//!
//! **A work budget** (automatic collections, `gc::set_work_budget`) caps the boxes taken into the
//! analysis. Once it is reached, no new box is taken in: roots not started yet stay buffered, and an edge
//! to a box outside the analysis is ignored. That is sound on any subset `S` of boxes: only edges from
//! `S` to `S` are subtracted, so a box still above zero is referenced from outside `S` or from `S`'s live
//! part, and what is left white is referenced only from white boxes — unreachable from anything else.
//! A cut analysis only fails to prove some garbage dead: its live-looking roots go back to the buffer.

use alloc::vec::Vec;
use core::mem;
use core::ptr::NonNull;

use super::collector::{free_if_unowned, hdr};
use super::gcbox::{Flags, Header};
use super::state::State;
use super::trace::Tracer;

/// The analysis' buffers, kept between collections (cleared) so that frequent small collections do not
/// allocate and grow them each time; dropped instead when a large collection made them big.
#[derive(Default)]
pub(crate) struct Scratch {
    nodes: Vec<Node>,
    edges: Vec<u32>,
    stack: Vec<u32>,
    live: Vec<u64>,
    white: Vec<NonNull<Header>>,
}

impl Scratch {
    pub(crate) const fn new() -> Scratch {
        Scratch {
            nodes: Vec::new(),
            edges: Vec::new(),
            stack: Vec::new(),
            live: Vec::new(),
            white: Vec::new(),
        }
    }
}

/// Gives the garbage list's storage back for the next collection (once its boxes are released).
pub(super) fn recycle_white(state: &State, mut white: Vec<NonNull<Header>>) {
    if white.capacity() <= KEEP {
        white.clear();
        let mut s = state.scratch.take();
        s.white = white;
        state.scratch.set(s);
    }
}

/// Buffers that grew past this many nodes (or edges) are not kept (a few hundred KiB at most).
const KEEP: usize = 1 << 14;

/// An edge index as stored in a [`Node`] (checked: the panic, at 4 billion edges, leaves nothing that
/// `drop` could not restore).
fn edge_index(i: usize) -> u32 {
    u32::try_from(i).expect("poolgc: too many edges in one collection")
}

/// A box reached by MarkGray.
struct Node {
    h: NonNull<Header>,
    /// Its true birth epoch (the header holds the node's index meanwhile).
    epoch: u32,
    /// Its trial count: its strong count less the edges to it from the analysed graph.
    trial: u32,
    /// Its outgoing edges: `len` entries of [`Analysis::edges`] from `first`.
    first: u32,
    len: u32,
}

/// One collection's analysis. If `trace` panics, dropping it restores every count, epoch and mark and
/// puts the roots back in the buffer.
pub(super) struct Analysis<'a> {
    /// The freeze mark when the collection started: boxes born before it are frozen, whatever user code
    /// does meanwhile (`freeze()` is deferred during a collection anyway).
    freeze_mark: u32,
    /// Possible roots taken from the buffer; they keep `BUFFERED` until `finish`.
    roots: Vec<NonNull<Header>>,
    /// Every box reached, in the order reached.
    nodes: Vec<Node>,
    /// The edges `trace` reported between reached boxes, as node indices, grouped by source node.
    edges: Vec<u32>,
    /// Node indices still to visit.
    stack: Vec<u32>,
    /// One bit per node: marked live by Scan.
    live: Vec<u64>,
    /// Storage for the garbage list `finish` returns.
    white: Vec<NonNull<Header>>,
    tracer: Tracer,
    state: &'a State,
    /// Most boxes to take in (`usize::MAX`: no budget).
    budget: usize,
    /// Roots not taken into the analysis for want of budget (by index; empty if none): they stay buffered.
    skipped: Vec<bool>,
    /// The first root whose traversal the budget cut (`usize::MAX`: none). Roots before it were analysed
    /// in full; it and later ones may look live only because part of their graph was left out.
    cut: usize,
    /// Whether that root had the whole budget to itself (it started the analysis): its graph is larger
    /// than the budget, so no bounded collection can decide it; it waits for an unbounded one.
    cut_alone: bool,
    done: bool,
}

impl<'a> Analysis<'a> {
    pub(super) fn new(
        state: &'a State,
        roots: Vec<NonNull<Header>>,
        budget: usize,
    ) -> Analysis<'a> {
        let mut scratch = state.scratch.take();
        Analysis {
            budget: budget.max(1),
            skipped: Vec::new(),
            cut: usize::MAX,
            cut_alone: false,
            freeze_mark: state.freeze_mark.get(),
            roots,
            nodes: mem::take(&mut scratch.nodes),
            edges: mem::take(&mut scratch.edges),
            stack: mem::take(&mut scratch.stack),
            live: mem::take(&mut scratch.live),
            white: mem::take(&mut scratch.white),
            tracer: Tracer::new(),
            state,
            done: false,
        }
    }

    /// Takes out of the roots the boxes whose value is already dropped (count reached zero while
    /// buffered, or zombies), freeing those nothing else holds.
    pub(super) fn mark_roots(&mut self) {
        let mut dead = Vec::new();
        self.roots.retain(|&h| {
            let live = !hdr(h).has(Flags::DROPPED);
            if !live {
                dead.push(h);
            }
            live
        });
        for h in dead {
            hdr(h).clear(Flags::BUFFERED);
            // SAFETY: DROPPED: its value is gone; the buffer owned the box until now.
            unsafe { free_if_unowned(h) };
        }
    }

    /// Adds `h` to the graph and to the stack; returns its node index.
    fn reach(&mut self, h: NonNull<Header>) -> u32 {
        // Checked before anything changes, so that the panic (at 4 billion boxes) restores cleanly.
        let idx =
            u32::try_from(self.nodes.len()).expect("poolgc: too many objects in one collection");
        let hr = hdr(h);
        self.nodes.push(Node {
            h,
            epoch: hr.epoch.get(),
            trial: hr.strong.get(),
            first: 0,
            len: 0,
        });
        hr.set(Flags::VISITED);
        hr.epoch.set(idx);
        self.stack.push(idx);
        idx
    }

    /// MarkGray from every root: calls `trace` once on every box reached, records the edges, and
    /// trial-decrements every edge's target, iteratively.
    pub(super) fn mark_gray(&mut self) {
        for i in 0..self.roots.len() {
            let r = self.roots[i];
            // Roots are never dropped (`mark_roots`) nor frozen (a frozen box is never buffered, and
            // `freeze()` empties the buffer), so they all take part.
            if !hdr(r).has(Flags::VISITED) {
                if self.nodes.len() >= self.budget {
                    // Not taken; the rest are still looked at, as those already reached are decided.
                    self.skipped.resize(self.roots.len(), false);
                    self.skipped[i] = true;
                    continue;
                }
                self.reach(r);
            }
            let alone = self.nodes.len() <= 1;
            while let Some(n) = self.stack.pop() {
                self.tracer.edges.clear();
                let h = self.nodes[n as usize].h;
                // SAFETY: `h` was reached by this analysis, hence allocated (a handle or the buffer holds
                // it) and not DROPPED (never reached if so); this is its one `trace` call.
                unsafe { (hdr(h).vtable.trace)(h, &mut self.tracer) };
                let first = self.edges.len();
                for j in 0..self.tracer.edges.len() {
                    let c = self.tracer.edges[j];
                    let cr = hdr(c);
                    let ci = if cr.has(Flags::VISITED) {
                        // Already in the graph: its header's epoch is its index.
                        cr.epoch.get()
                    } else if cr.has(Flags::DROPPED | Flags::IMMORTAL)
                        || cr.epoch.get() < self.freeze_mark
                    {
                        // A zombie, an immortal or a frozen box: not part of the analysis.
                        continue;
                    } else if self.nodes.len() >= self.budget {
                        // Over budget: the edge is left out, its target keeps the count it gives.
                        if self.cut == usize::MAX {
                            self.cut = i;
                            self.cut_alone = alone;
                        }
                        continue;
                    } else {
                        self.reach(c)
                    };
                    self.edges.push(ci);
                    // Saturating: a count driven below zero means `trace` over-reported (a broken
                    // `Trace` impl); zero is the conservative reading for this box.
                    let t = &mut self.nodes[ci as usize].trial;
                    *t = t.saturating_sub(1);
                }
                let node = &mut self.nodes[n as usize];
                node.first = edge_index(first);
                node.len = edge_index(self.edges.len() - first);
            }
        }
    }

    /// ScanRoots: everything reachable (over the recorded edges) from a box with references from
    /// outside the graph is live. Runs no user code.
    pub(super) fn scan(&mut self) {
        self.live.clear();
        self.live.resize(self.nodes.len().div_ceil(64), 0);
        for i in 0..self.nodes.len() {
            if self.nodes[i].trial == 0 || self.is_live(i) {
                continue;
            }
            self.set_live(i);
            self.stack.push(i as u32);
            while let Some(n) = self.stack.pop() {
                let node = &self.nodes[n as usize];
                let (first, len) = (node.first as usize, node.len as usize);
                for k in first..first + len {
                    let c = self.edges[k] as usize;
                    if !self.is_live(c) {
                        self.set_live(c);
                        self.stack.push(c as u32);
                    }
                }
            }
        }
    }

    #[inline(always)]
    fn is_live(&self, i: usize) -> bool {
        self.live[i / 64] & (1 << (i % 64)) != 0
    }

    #[inline(always)]
    fn set_live(&mut self, i: usize) {
        self.live[i / 64] |= 1 << (i % 64);
    }

    /// Gives the buffers back to the state for the next collection, unless they grew large.
    fn keep_scratch(&mut self) {
        if self.nodes.capacity() > KEEP || self.edges.capacity() > 4 * KEEP {
            return;
        }
        let mut s = Scratch {
            nodes: mem::take(&mut self.nodes),
            edges: mem::take(&mut self.edges),
            stack: mem::take(&mut self.stack),
            live: mem::take(&mut self.live),
            white: Vec::new(),
        };
        s.nodes.clear();
        s.edges.clear();
        s.stack.clear();
        s.live.clear();
        self.state.scratch.set(s);
    }

    /// Restores counts, epochs and marks; returns the white boxes, now `DROPPED` and held (+1) by the
    /// collector, and the number of boxes visited. Live roots from the one whose traversal the budget cut
    /// on go back to the buffer, first in line, then the roots not taken; except when that root had the
    /// whole budget: its graph is larger than any bounded collection can decide, so it is set aside for
    /// the next unbounded one, and the live roots after it, all reached from it, leave the buffer (they
    /// can only be garbage if it is, and then the unbounded collection reaches them from it).
    pub(super) fn finish(mut self) -> (Vec<NonNull<Header>>, usize) {
        let mut white = mem::take(&mut self.white);
        for (i, node) in self.nodes.iter().enumerate() {
            let hr = hdr(node.h);
            hr.epoch.set(node.epoch);
            hr.clear(Flags::VISITED);
            if !self.is_live(i) {
                // Held, so that dropping its peers' values cannot bring it to zero and free it early.
                hr.strong.set(hr.strong.get() + 1);
                hr.set(Flags::DROPPED);
                white.push(node.h);
            }
        }
        let mut buf = self.state.roots.borrow_mut();
        let mut back: Vec<NonNull<Header>> = Vec::new();
        let mut not_taken: Vec<NonNull<Header>> = Vec::new();
        for (i, &r) in self.roots.iter().enumerate() {
            let rr = hdr(r);
            if self.skipped.get(i) == Some(&true) {
                not_taken.push(r);
            } else if i < self.cut || rr.has(Flags::DROPPED) || (self.cut_alone && i > self.cut) {
                rr.clear(Flags::BUFFERED);
            } else if i == self.cut && self.cut_alone {
                // Stays `BUFFERED` (owned by that list, never buffered twice).
                self.state.deferred.borrow_mut().push(r);
            } else {
                // Maybe live only because the budget left part of its graph out: tried again first.
                back.push(r);
            }
        }
        // Then the roots not taken, then those buffered during the analysis.
        back.append(&mut not_taken);
        // The taken buffer's storage becomes the buffer again (unless a large collection grew it).
        let mut roots = mem::take(&mut self.roots);
        if roots.capacity() > 4 * KEEP {
            roots = Vec::new();
        }
        roots.clear();
        roots.append(&mut back);
        roots.append(&mut buf);
        *buf = roots;
        drop(buf);
        self.done = true;
        let visited = self.nodes.len();
        self.keep_scratch();
        (white, visited)
    }
}

impl Drop for Analysis<'_> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        // A `trace` panicked: undo everything, keep the roots for a later collection.
        for node in &self.nodes {
            let hr = hdr(node.h);
            hr.epoch.set(node.epoch);
            hr.clear(Flags::VISITED);
        }
        let mut buf = self.state.roots.borrow_mut();
        buf.extend(self.roots.drain(..));
    }
}
