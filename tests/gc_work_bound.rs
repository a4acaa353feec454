//! The collector's work, counted (never timed): automatic collection visits a number of objects linear
//! in the program's work however large the live graph, and a work budget bounds each automatic
//! collection while garbage is still freed.
#![cfg(feature = "std")] // per-thread collector state; the no_std design is tested in gc_nostd.rs

mod gc_util;

use gc_util::{drops, link, node, scaled, settle, Node};
use poolgc::gc::{self, Gc, Phase, Trace, Tracer};
use std::cell::{Cell, RefCell};
use std::rc::Rc;

thread_local! {
    static LIST_DROPS: Cell<usize> = const { Cell::new(0) };
}

/// A doubly linked list node: every node is on a cycle with its neighbours.
struct DNode {
    prev: RefCell<Option<Gc<DNode>>>,
    next: RefCell<Option<Gc<DNode>>>,
    value: usize,
}

impl Drop for DNode {
    fn drop(&mut self) {
        LIST_DROPS.with(|d| d.set(d.get() + 1));
    }
}

// SAFETY: visits both fields that can own a `Gc`, once each.
unsafe impl Trace for DNode {
    fn trace(&self, t: &mut Tracer) {
        self.prev.trace(t);
        self.next.trace(t);
    }
}

fn dnode(value: usize) -> Gc<DNode> {
    Gc::new(DNode {
        prev: RefCell::new(None),
        next: RefCell::new(None),
        value,
    })
}

/// Builds a doubly linked list of `n` nodes by appending (every append makes the old tail a possible
/// root, so automatic collections keep running while the list grows); returns its head.
fn build_list(n: usize) -> Gc<DNode> {
    let head = dnode(0);
    let mut tail = head.clone();
    for i in 1..n {
        let node = dnode(i);
        *node.prev.borrow_mut() = Some(tail.clone());
        *tail.next.borrow_mut() = Some(node.clone());
        tail = node;
    }
    head
}

/// A million-node doubly linked list built, read, dropped and collected with automatic collection on:
/// all collections together visit a small constant times the list's length. (With a threshold that
/// grows by a bounded factor, each collection re-traverses the whole live list: quadratic.)
#[test]
fn a_large_live_list_costs_linear_work() {
    settle();
    gc::enable();
    gc::set_threshold(700);
    let n = scaled(1_000_000, 1_500);
    let s0 = gc::stats();
    let d0 = LIST_DROPS.with(Cell::get);

    let head = build_list(n);
    // Read it: a walk that clones and drops a handle per node (each a possible root).
    let mut sum = 0;
    let mut cur = Some(head.clone());
    while let Some(c) = cur {
        sum += c.value;
        cur = c.next.borrow().clone();
    }
    assert_eq!(sum, n * (n - 1) / 2);
    let automatic = gc::stats().collections - s0.collections;
    assert!(automatic >= 2, "automatic collections ran: {automatic}");
    drop(head);
    settle();

    let s = gc::stats();
    assert_eq!(
        LIST_DROPS.with(Cell::get) - d0,
        n,
        "the whole list was freed"
    );
    let visited = s.visited - s0.visited;
    assert!(
        visited <= 5 * n as u64,
        "{visited} objects visited for a list of {n} ({} collections)",
        s.collections - s0.collections
    );
}

/// With a work budget, no automatic collection visits more objects than it allows — here while a live
/// list larger than the budget keeps offering possible roots — and rings made garbage meanwhile are
/// still freed without any explicit collection.
#[test]
fn a_work_budget_bounds_each_automatic_collection() {
    settle();
    gc::enable();
    // (Under Miri, smaller: the list still larger than the budget, the largest ring, 64, within it.)
    let (budget, list_len, rings, loops, threshold) = if cfg!(miri) {
        (100, 300, 60, 1_500, 20)
    } else {
        (500, 5_000, 20_000, 2_000, 100)
    };
    gc::set_threshold(threshold);
    gc::set_work_budget(Some(budget));
    assert_eq!(gc::stats().work_budget, Some(budget));

    let most = Rc::new(Cell::new(0usize));
    let autos = Rc::new(Cell::new(0usize));
    let (m, a) = (most.clone(), autos.clone());
    let id = gc::add_callback(move |phase, info| {
        if phase == Phase::Stop {
            m.set(m.get().max(info.visited));
            a.set(a.get() + 1);
        }
    });

    let head = build_list(list_len);
    let d0 = drops();
    let mut made = 0;
    let mut cur = Some(head.clone());
    for i in 0..rings {
        // Touch the live list: one of its nodes becomes a possible root.
        let c = cur.take().unwrap_or_else(|| head.clone());
        cur = c.next.borrow().clone();
        drop(c);
        // A garbage ring of 2..=64 nodes.
        let len = 2 + i % 63;
        let first = node(i);
        let mut prev = first.clone();
        for j in 1..len {
            let n = node(j);
            link(&prev, &n);
            prev = n;
        }
        link(&prev, &first);
        made += len;
    }
    drop(cur);
    // Rings only, from here: the list's roots still buffered get their turn too.
    for i in 0..loops {
        let a = node(i);
        link(&a, &a);
        made += 1;
    }
    assert!(
        autos.get() > 10,
        "automatic collections ran: {}",
        autos.get()
    );
    assert!(
        most.get() <= budget,
        "an automatic collection visited {} objects, over the budget of {budget}",
        most.get()
    );
    let left = made - (drops() - d0);
    assert!(
        left * 10 < made,
        "{left} of {made} ring nodes are still waiting after automatic collections alone"
    );

    assert!(gc::remove_callback(id));
    gc::set_work_budget(None);
    assert_eq!(gc::work_budget(), None);
    drop(head);
    settle();
    assert_eq!(drops() - d0, made, "an unbounded collection frees the rest");
    assert!(
        gc::stats().most_visited > budget,
        "explicit collections are unbounded"
    );
    gc::set_threshold(700);
}

/// A garbage cycle larger than the budget is not found by bounded collections (they only ever prove
/// what fits), but an explicit collection, which has no budget, frees it.
#[test]
fn garbage_larger_than_the_budget_waits_for_an_explicit_collection() {
    settle();
    gc::set_threshold(10);
    gc::set_work_budget(Some(50));
    let d0 = LIST_DROPS.with(Cell::get);
    let n = 200;
    drop(build_list(n));
    for i in 0..30 {
        let a = node(i);
        link(&a, &a);
    }
    assert_eq!(LIST_DROPS.with(Cell::get), d0, "too large for the budget");
    gc::set_work_budget(None);
    settle();
    assert_eq!(LIST_DROPS.with(Cell::get) - d0, n);
    gc::set_threshold(700);
}

/// The longest pause is recorded, and no longer than all collections together.
#[test]
fn the_longest_pause_is_reported() {
    settle();
    let n = scaled(1000, 100);
    let keep: Vec<Gc<Node>> = (0..n).map(node).collect();
    for w in keep.windows(2) {
        link(&w[0], &w[1]);
        link(&w[1], &w[0]);
    }
    drop(keep);
    settle();
    let s = gc::stats();
    assert!(s.longest_pause > std::time::Duration::ZERO);
    assert!(s.longest_pause <= s.time);
    assert!(s.most_visited >= n);
}

/// A long chain (acyclic, longer than the budget) whose nodes keep becoming possible roots is set aside
/// by bounded collections; once it is freed by counting, the set-aside boxes are freed too by later
/// bounded collections, without waiting for an unbounded one.
#[test]
fn set_aside_roots_that_die_are_freed_by_bounded_collections() {
    settle();
    gc::set_threshold(20);
    gc::set_work_budget(Some(50));
    let base = gc::stats().live;
    let n = scaled(10_000, 300);
    let nodes: Vec<Gc<Node>> = (0..n).map(node).collect();
    for w in nodes.windows(2) {
        link(&w[0], &w[1]);
    }
    let head = nodes[0].clone();
    for k in &nodes {
        drop(k.clone());
    }
    drop(nodes);
    assert!(gc::count() > 0, "roots were set aside");
    drop(head); // the chain is freed by counting, its values at once
    let d = drops();
    for i in 0..scaled(20_000, 500) {
        let a = node(i);
        link(&a, &a);
    }
    assert!(drops() > d);
    let left = gc::stats().live - base;
    // About one root in 50 is set aside (those its traversal reached leave the buffer); sweeps free the
    // dead ones once there are 64.
    assert!(
        left < 64,
        "{left} boxes of the {n}-node chain still allocated"
    );
    gc::set_work_budget(None);
    settle();
    gc::set_threshold(700);
}
