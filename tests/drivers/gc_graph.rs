//! A fuzz-style driver for the collector: bytes become graph mutations on `Gc<Node>` objects, and after
//! every `collect()` the survivors must be exactly the objects reachable from live handles, each dropped
//! value dropped exactly once. Used by `tests/gc_graph.rs` (fixed seeds, and under Miri) and by the
//! cargo-fuzz target `gc_graph` (through `#[path]`). Depends on nothing but poolgc and std.
//!
//! Opcodes (one byte each, operands follow):
//! `0` new node · `1 a b` edge handle a → handle b · `2 a k` remove edge k of a · `3 a` drop handle a ·
//! `4 a` clone handle a · `5 a` downgrade a · `6 w` upgrade weak w · `7 w` drop weak w · `8` collect ·
//! `9 t` set the threshold (t+1) · `10` toggle automatic collection.
#![allow(dead_code)]

use poolgc::gc::{self, Gc, Trace, Tracer, Weak};
use std::cell::{Cell, RefCell};
use std::rc::Rc;

/// What the driver knows about every node ever made, shared with the nodes' `Drop`.
#[derive(Default)]
struct Ledger {
    /// Per node id: how many times its value was dropped.
    dropped: RefCell<Vec<u32>>,
}

struct Node {
    id: usize,
    edges: RefCell<Vec<Gc<Node>>>,
    ledger: Rc<Ledger>,
    /// Set while the node is being dropped: a peer's `Drop` must never see a half-dropped node.
    alive: Cell<bool>,
}

impl Drop for Node {
    fn drop(&mut self) {
        assert!(self.alive.replace(false), "node {} dropped twice", self.id);
        self.ledger.dropped.borrow_mut()[self.id] += 1;
        // Reach the peers: a dead one must be reported dead, never read.
        for e in self.edges.borrow().iter() {
            if let Some(peer) = Gc::try_deref(e) {
                assert!(peer.alive.get(), "a live-looking peer was already dropped");
            }
        }
    }
}

// SAFETY: visits `edges`, its only `Gc` field, once.
unsafe impl Trace for Node {
    fn trace(&self, t: &mut Tracer) {
        self.edges.trace(t);
    }
}

/// Runs the byte program. Panics if an invariant breaks.
pub fn run(data: &[u8]) {
    let saved = (gc::threshold(), gc::is_enabled());
    let ledger = Rc::new(Ledger::default());
    let mut handles: Vec<Gc<Node>> = Vec::new();
    let mut weaks: Vec<(usize, Weak<Node>)> = Vec::new();
    let mut made = 0usize;
    let mut bytes = data.iter().copied();
    let mut next = move || bytes.next();
    while let Some(op) = next() {
        match op % 11 {
            0 => {
                if made >= 512 {
                    continue;
                }
                ledger.dropped.borrow_mut().push(0);
                handles.push(Gc::new(Node {
                    id: made,
                    edges: RefCell::new(Vec::new()),
                    ledger: ledger.clone(),
                    alive: Cell::new(true),
                }));
                made += 1;
            }
            1 => {
                let (Some(a), Some(b)) = (next(), next()) else {
                    break;
                };
                if !handles.is_empty() {
                    let to = handles[b as usize % handles.len()].clone();
                    handles[a as usize % handles.len()]
                        .edges
                        .borrow_mut()
                        .push(to);
                }
            }
            2 => {
                let (Some(a), Some(k)) = (next(), next()) else {
                    break;
                };
                if !handles.is_empty() {
                    let removed = {
                        let mut e = handles[a as usize % handles.len()].edges.borrow_mut();
                        if e.is_empty() {
                            None
                        } else {
                            let k = k as usize % e.len();
                            Some(e.swap_remove(k))
                        }
                    };
                    drop(removed); // outside the borrow: this may collect
                }
            }
            3 => {
                let Some(a) = next() else { break };
                if !handles.is_empty() {
                    let i = a as usize % handles.len();
                    drop(handles.swap_remove(i));
                }
            }
            4 => {
                let Some(a) = next() else { break };
                if !handles.is_empty() && handles.len() < 1024 {
                    let h = handles[a as usize % handles.len()].clone();
                    handles.push(h);
                }
            }
            5 => {
                let Some(a) = next() else { break };
                if !handles.is_empty() {
                    let h = &handles[a as usize % handles.len()];
                    weaks.push((h.id, Gc::downgrade(h)));
                }
            }
            6 => {
                let Some(w) = next() else { break };
                if !weaks.is_empty() {
                    let (id, w) = &weaks[w as usize % weaks.len()];
                    let dropped = ledger.dropped.borrow()[*id] > 0;
                    match w.upgrade() {
                        Some(h) => {
                            assert!(!dropped, "upgrade of a dropped node {id}");
                            assert_eq!(h.id, *id);
                            handles.push(h);
                        }
                        None => assert!(dropped, "live node {id} failed to upgrade"),
                    }
                }
            }
            7 => {
                let Some(w) = next() else { break };
                if !weaks.is_empty() {
                    let i = w as usize % weaks.len();
                    weaks.swap_remove(i);
                }
            }
            8 => {
                gc::collect();
                check(&ledger, &handles, made);
            }
            9 => {
                let Some(t) = next() else { break };
                gc::set_threshold(t as usize + 1);
            }
            _ => {
                if gc::is_enabled() {
                    gc::disable();
                } else {
                    gc::enable();
                }
            }
        }
    }
    gc::collect();
    check(&ledger, &handles, made);
    drop(handles);
    gc::collect();
    assert!(
        ledger.dropped.borrow().iter().all(|&d| d == 1),
        "every node dropped exactly once at the end"
    );
    drop(weaks);
    gc::set_threshold(saved.0);
    if saved.1 {
        gc::enable();
    } else {
        gc::disable();
    }
}

/// After a full collection: dropped ⇔ unreachable from the handles, and never more than once.
fn check(ledger: &Ledger, handles: &[Gc<Node>], made: usize) {
    let mut reach = vec![false; made];
    let mut stack: Vec<Gc<Node>> = handles.to_vec();
    while let Some(n) = stack.pop() {
        if !std::mem::replace(&mut reach[n.id], true) {
            stack.extend(n.edges.borrow().iter().cloned());
        }
    }
    let dropped = ledger.dropped.borrow();
    for id in 0..made {
        assert!(dropped[id] <= 1, "node {id} dropped {} times", dropped[id]);
        assert_eq!(
            dropped[id] == 0,
            reach[id],
            "node {id}: reachable {} but dropped {}",
            reach[id],
            dropped[id]
        );
    }
}
