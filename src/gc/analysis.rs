//! One collection's analysis: MarkRoots, MarkGray and ScanRoots (see `collector` for the algorithm).
//!
//! The user's `trace` runs **once per box** per collection, during MarkGray, and the edges it reports are
//! recorded; Scan walks the recorded edges and never calls `trace` again. So the edges Scan follows are
//! exactly the ones MarkGray subtracted: a `trace` that omits an edge (on any call) only keeps its target
//! alive, whatever it reports elsewhere.
//!
//! While the analysis runs, a reached box's `strong` is its trial count and its `epoch` is its index in
//! [`Analysis::nodes`]; both true values are saved there and restored by `finish`, or by `drop` if a
//! `trace` panics. Which boxes take part (not dropped, not frozen) is decided when a box is first met,
//! against the freeze mark taken when the collection started.
//!
//! **A work budget** (automatic collections, `gc::set_work_budget`) caps the boxes taken into the
//! analysis. Once it is reached, no new box is taken in: roots not started yet stay buffered, and an edge
//! to a box outside the analysis is ignored. That is sound on any subset `S` of boxes: only edges from
//! `S` to `S` are subtracted, so a box still above zero is referenced from outside `S` or from `S`'s live
//! part, and what is left white is referenced only from white boxes — unreachable from anything else.
//! A cut analysis only fails to prove some garbage dead: its live-looking roots go back to the buffer.

use alloc::vec::Vec;
use core::ops::Range;
use core::ptr::NonNull;

use super::collector::{free_if_unowned, hdr};
use super::gcbox::{Flags, Header};
use super::state::State;
use super::trace::Tracer;

/// A box reached by MarkGray.
struct Node {
    h: NonNull<Header>,
    /// Its true strong count.
    strong: u32,
    /// Its true birth epoch (the header holds the node's index meanwhile).
    epoch: u32,
    /// Its outgoing edges: a range of [`Analysis::edges`].
    edges: Range<usize>,
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
        Analysis {
            budget: budget.max(1),
            skipped: Vec::new(),
            cut: usize::MAX,
            cut_alone: false,
            freeze_mark: state.freeze_mark.get(),
            roots,
            nodes: Vec::new(),
            edges: Vec::new(),
            stack: Vec::new(),
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
            strong: hr.strong.get(),
            epoch: hr.epoch.get(),
            edges: 0..0,
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
                    } else if cr.has(Flags::DROPPED) || cr.epoch.get() < self.freeze_mark {
                        // A zombie or a frozen box: not part of the analysis.
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
                    // `Trace` impl); zero is the conservative reading for this box and restore fixes it.
                    cr.strong.set(cr.strong.get().saturating_sub(1));
                }
                self.nodes[n as usize].edges = first..self.edges.len();
            }
        }
    }

    /// ScanRoots: everything reachable (over the recorded edges) from a box with references from
    /// outside the graph is live. Runs no user code.
    pub(super) fn scan(&mut self) {
        for i in 0..self.nodes.len() {
            let hr = hdr(self.nodes[i].h);
            if hr.strong.get() == 0 || hr.has(Flags::LIVE) {
                continue;
            }
            hr.set(Flags::LIVE);
            self.stack.push(i as u32);
            while let Some(n) = self.stack.pop() {
                for k in self.nodes[n as usize].edges.clone() {
                    let c = self.edges[k];
                    let cr = hdr(self.nodes[c as usize].h);
                    if !cr.has(Flags::LIVE) {
                        cr.set(Flags::LIVE);
                        self.stack.push(c);
                    }
                }
            }
        }
    }

    /// Restores counts, epochs and marks; returns the white boxes, now `DROPPED` and held (+1) by the
    /// collector, and the number of boxes visited. Live roots from the one whose traversal the budget cut
    /// on go back to the buffer, first in line, then the roots not taken; except when that root had the
    /// whole budget: its graph is larger than any bounded collection can decide, so it is set aside for
    /// the next unbounded one, and the live roots after it, all reached from it, leave the buffer (they
    /// can only be garbage if it is, and then the unbounded collection reaches them from it).
    pub(super) fn finish(mut self) -> (Vec<NonNull<Header>>, usize) {
        let mut white = Vec::new();
        for node in &self.nodes {
            let hr = hdr(node.h);
            hr.epoch.set(node.epoch);
            if hr.has(Flags::LIVE) {
                hr.strong.set(node.strong);
            } else {
                // Held, so that dropping its peers' values cannot bring it to zero and free it early.
                hr.strong.set(node.strong + 1);
                hr.set(Flags::DROPPED);
                white.push(node.h);
            }
            hr.clear(Flags::VISITED | Flags::LIVE);
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
        back.append(&mut buf);
        *buf = back;
        drop(buf);
        self.done = true;
        (white, self.nodes.len())
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
            hr.strong.set(node.strong);
            hr.epoch.set(node.epoch);
            hr.clear(Flags::VISITED | Flags::LIVE);
        }
        let mut buf = self.state.roots.borrow_mut();
        buf.extend(self.roots.drain(..));
    }
}
