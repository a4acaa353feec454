//! Cycles of every shape, weak pointers, green objects, and the 1,000,000-node list.
#![cfg(feature = "std")] // per-thread collector state; the no_std design is tested in gc_nostd.rs

mod gc_util;

use gc_util::{drops, link, node, scaled, settle, Node};
use poolgc::gc::{self, Gc, Trace, Tracer, Weak};
use std::cell::RefCell;

#[test]
fn counting_alone_frees_acyclic_graphs_at_once() {
    settle();
    let d = drops();
    let a = node(1);
    let b = node(2);
    link(&a, &b);
    assert_eq!(Gc::strong_count(&b), 2);
    drop(b);
    drop(a);
    assert_eq!(
        drops(),
        d + 2,
        "a tree is freed by counting, no collection needed"
    );
    assert_eq!(gc::collect(), 0);
}

#[test]
fn self_loop() {
    settle();
    let d = drops();
    let a = node(1);
    link(&a, &a);
    assert_eq!(Gc::strong_count(&a), 2);
    drop(a);
    assert_eq!(drops(), d, "counting cannot free a self-loop");
    assert_eq!(gc::count(), 1, "the decrement to 1 buffered it");
    assert_eq!(gc::collect(), 1);
    assert_eq!(drops(), d + 1);
    assert_eq!(gc::count(), 0);
}

#[test]
fn two_cycle() {
    settle();
    let d = drops();
    let a = node(1);
    let b = node(2);
    link(&a, &b);
    link(&b, &a);
    drop((a, b));
    assert_eq!(gc::collect(), 2);
    assert_eq!(drops(), d + 2);
}

#[test]
fn rings_of_many_sizes() {
    settle();
    for n in [3, 10, scaled(1000, 50)] {
        let d = drops();
        let nodes: Vec<_> = (0..n).map(node).collect();
        for i in 0..n {
            link(&nodes[i], &nodes[(i + 1) % n]);
        }
        drop(nodes);
        assert_eq!(gc::collect(), n);
        assert_eq!(drops(), d + n);
    }
}

#[test]
fn clique() {
    settle();
    let n = scaled(40, 8);
    let d = drops();
    let nodes: Vec<_> = (0..n).map(node).collect();
    for a in &nodes {
        for b in &nodes {
            link(a, b);
        }
    }
    assert_eq!(Gc::strong_count(&nodes[0]), n + 1);
    drop(nodes);
    assert_eq!(gc::collect(), n);
    assert_eq!(drops(), d + n);
}

#[test]
fn live_cycle_is_kept_until_its_last_outside_reference_goes() {
    settle();
    let d = drops();
    let a = node(1);
    let b = node(2);
    link(&a, &b);
    link(&b, &a);
    drop(b);
    assert_eq!(gc::collect(), 0, "a still holds the cycle");
    assert_eq!(drops(), d);
    assert_eq!(
        a.edges.borrow()[0].id,
        2,
        "b intact after the trial deletion"
    );
    assert_eq!(
        Gc::strong_count(&a),
        2,
        "counts restored after the trial deletion"
    );
    drop(a);
    assert_eq!(gc::collect(), 2);
    assert_eq!(drops(), d + 2);
}

#[test]
fn cycle_hanging_off_a_live_object() {
    settle();
    let d = drops();
    let root = node(0);
    let a = node(1);
    let b = node(2);
    link(&root, &a);
    link(&a, &b);
    link(&b, &a);
    drop((a, b));
    assert_eq!(gc::collect(), 0, "reachable from root");
    assert_eq!(drops(), d);
    root.edges.borrow_mut().clear(); // cut the only outside edge
    assert_eq!(gc::collect(), 2);
    assert_eq!(drops(), d + 2);
    assert_eq!(Gc::strong_count(&root), 1);
}

#[test]
fn cycle_holding_a_live_object() {
    settle();
    let d = drops();
    let live = node(9);
    let a = node(1);
    let b = node(2);
    link(&a, &b);
    link(&b, &a);
    link(&a, &live);
    link(&b, &live);
    assert_eq!(Gc::strong_count(&live), 3);
    drop((a, b));
    assert_eq!(gc::collect(), 2, "the cycle goes, the object it held stays");
    assert_eq!(drops(), d + 2);
    assert_eq!(
        Gc::strong_count(&live),
        1,
        "the cycle's references to it were released"
    );
    assert_eq!(live.id, 9);
    drop(live);
    assert_eq!(drops(), d + 3);
}

#[test]
fn two_cycles_joined_by_one_edge() {
    settle();
    let d = drops();
    let (a1, a2, b1, b2) = (node(1), node(2), node(3), node(4));
    link(&a1, &a2);
    link(&a2, &a1);
    link(&b1, &b2);
    link(&b2, &b1);
    link(&a1, &b1);
    drop((a2, b1, b2));
    assert_eq!(gc::collect(), 0);
    drop(a1);
    assert_eq!(gc::collect(), 4);
    assert_eq!(drops(), d + 4);
}

#[test]
fn weak_pointer_into_a_cycle() {
    settle();
    let d = drops();
    let a = node(1);
    let b = node(2);
    link(&a, &b);
    link(&b, &a);
    let w: Weak<Node> = Gc::downgrade(&b);
    assert_eq!(Gc::weak_count(&b), 1);
    assert_eq!(w.strong_count(), 2);
    drop((a, b));
    assert_eq!(w.upgrade().map(|g| g.id), Some(2), "not collected yet");
    assert_eq!(gc::collect(), 2, "a weak edge does not keep the cycle");
    assert_eq!(drops(), d + 2);
    assert!(w.upgrade().is_none());
    assert_eq!(w.strong_count(), 0);
    assert_eq!(w.weak_count(), 1);
    drop(w); // frees the box that the weak handle kept
}

#[test]
fn weak_edges_are_not_traced() {
    struct Parent {
        kids: RefCell<Vec<Gc<Kid>>>,
    }
    struct Kid {
        parent: RefCell<Weak<Parent>>,
    }
    // SAFETY: visits `kids`, its only `Gc` field, once.
    unsafe impl Trace for Parent {
        fn trace(&self, t: &mut Tracer) {
            self.kids.trace(t);
        }
    }
    // SAFETY: a Weak is not an edge; visiting it visits nothing.
    unsafe impl Trace for Kid {
        const ACYCLIC: bool = <Weak<Parent> as Trace>::ACYCLIC;
        fn trace(&self, t: &mut Tracer) {
            self.parent.trace(t);
        }
    }
    const { assert!(<Kid as Trace>::ACYCLIC) };
    settle();
    let p = Gc::new(Parent {
        kids: RefCell::new(Vec::new()),
    });
    let k = Gc::new(Kid {
        parent: RefCell::new(Gc::downgrade(&p)),
    });
    p.kids.borrow_mut().push(k.clone());
    drop(k);
    assert_eq!(gc::count(), 0, "a green object (Kid) is never buffered");
    let w = Gc::downgrade(&p);
    drop(p);
    assert!(
        w.upgrade().is_none(),
        "freed by counting: the back edge is weak"
    );
    assert_eq!(gc::collect(), 0);
}

#[test]
fn green_objects_are_never_buffered() {
    settle();
    let s = Gc::new(String::from("green"));
    let s2 = s.clone();
    drop(s);
    assert_eq!(gc::count(), 0);
    let v = Gc::new(vec![1u8, 2, 3]);
    let v2 = v.clone();
    drop(v);
    assert_eq!(gc::count(), 0);
    const { assert!(<Vec<(u8, String, Option<Box<[u32; 4]>>)> as Trace>::ACYCLIC) };
    const { assert!(!<Vec<Gc<u8>> as Trace>::ACYCLIC) };
    // An object holding only green `Gc`s reports no edges, so it cannot be part of a cycle.
    let holder = Gc::new(vec![s2.clone(), s2.clone()]);
    let h2 = holder.clone();
    drop(holder);
    assert_eq!(gc::count(), 1);
    assert_eq!(gc::collect(), 0);
    assert_eq!(Gc::strong_count(&s2), 3);
    drop((h2, s2, v2));
}

#[test]
fn random_graphs_collect_exactly_the_unreachable() {
    settle();
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut rnd = move |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n as u64) as usize
    };
    for round in 0..scaled(20, 3) {
        let n = scaled(300, 30);
        let d = drops();
        let nodes: Vec<_> = (0..n).map(node).collect();
        for _ in 0..n * 2 {
            link(&nodes[rnd(n)], &nodes[rnd(n)]);
        }
        // Keep a few; compute what they reach.
        let keep: Vec<usize> = (0..3).map(|_| rnd(n)).collect();
        let mut reach = vec![false; n];
        let mut stack = keep.clone();
        while let Some(i) = stack.pop() {
            if !std::mem::replace(&mut reach[i], true) {
                stack.extend(nodes[i].edges.borrow().iter().map(|g| g.id));
            }
        }
        let kept: Vec<Gc<Node>> = keep.iter().map(|&i| nodes[i].clone()).collect();
        drop(nodes);
        settle();
        let alive = reach.iter().filter(|&&r| r).count();
        assert_eq!(drops() - d, n - alive, "round {round}");
        drop(kept);
        settle();
        assert_eq!(drops() - d, n, "round {round}: everything goes at the end");
    }
}

/// The 1,000,000-node doubly linked list: MarkGray, Scan and the drop phase are iterative.
#[test]
fn million_node_doubly_linked_list() {
    struct Link {
        prev: RefCell<Option<Gc<Link>>>,
        next: RefCell<Option<Gc<Link>>>,
    }
    // SAFETY: visits both `Gc` fields once.
    unsafe impl Trace for Link {
        fn trace(&self, t: &mut Tracer) {
            self.prev.trace(t);
            self.next.trace(t);
        }
    }
    settle();
    let n = scaled(1_000_000, 1_000);
    gc::disable(); // building the list makes many possible roots; don't rescan it while it grows
    let head = Gc::new(Link {
        prev: RefCell::new(None),
        next: RefCell::new(None),
    });
    let mut tail = head.clone();
    for _ in 1..n {
        let l = Gc::new(Link {
            prev: RefCell::new(Some(tail.clone())),
            next: RefCell::new(None),
        });
        *tail.next.borrow_mut() = Some(l.clone());
        tail = l;
    }
    drop(tail);
    gc::enable();
    assert_eq!(gc::collect(), 0, "all reachable from head");
    let live_before = gc::stats().live;
    drop(head);
    assert_eq!(gc::collect(), n);
    assert_eq!(gc::stats().live, live_before - n);
}
