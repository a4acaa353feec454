//! Weak references with callbacks and finalizers (`weakref.ref(obj, cb)`, `weakref.finalize`).
#![cfg(feature = "std")]

mod gc_util;

use gc_util::{link, node, settle, Node};
use poolgc::gc::{self, Gc, Trace, Tracer, Weak};
use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;

type Log = Rc<RefCell<Vec<String>>>;

fn log() -> Log {
    Rc::new(RefCell::new(Vec::new()))
}

fn push(l: &Log, s: impl Into<String>) -> impl FnOnce() + 'static {
    let l = l.clone();
    let s = s.into();
    move || l.borrow_mut().push(s)
}

#[test]
fn callback_runs_once_when_the_count_reaches_zero() {
    let l = log();
    let obj = Gc::new(5u32);
    let w = Gc::downgrade_with(&obj, push(&l, "dead"));
    assert!(w.has_callback());
    let other = obj.clone();
    drop(obj);
    assert!(l.borrow().is_empty());
    drop(other);
    assert_eq!(*l.borrow(), ["dead"]);
    assert!(w.upgrade().is_none());
    assert!(!w.has_callback());
    drop(w);
    assert_eq!(l.borrow().len(), 1);
}

#[test]
fn dropping_the_weak_first_cancels_its_callback() {
    let l = log();
    let obj = Gc::new(1u8);
    let w = Gc::downgrade_with(&obj, push(&l, "dead"));
    let plain = w.clone();
    assert!(!plain.has_callback(), "clones carry no callback");
    drop(w);
    drop(obj);
    assert!(l.borrow().is_empty());
    assert!(plain.upgrade().is_none());
}

#[test]
fn several_callbacks_run_in_registration_order() {
    let l = log();
    let obj = Gc::new(());
    let w1 = Gc::downgrade_with(&obj, push(&l, "first"));
    let w2 = Gc::downgrade_with(&obj, push(&l, "second"));
    drop(obj);
    assert_eq!(*l.borrow(), ["first", "second"]);
    drop((w1, w2));
}

#[test]
fn callback_runs_when_the_collector_frees_a_cycle() {
    settle();
    let l = log();
    let a = node(1);
    let b = node(2);
    link(&a, &b);
    link(&b, &a);
    let wa = Gc::downgrade_with(&a, push(&l, "a"));
    let wb = Gc::downgrade_with(&b, push(&l, "b"));
    drop((a, b));
    assert!(l.borrow().is_empty());
    assert_eq!(gc::collect(), 2);
    let mut got = l.borrow().clone();
    got.sort();
    assert_eq!(got, ["a", "b"]);
    drop((wa, wb));
}

/// A cycle member that can hold weak references.
struct Holder {
    peer: RefCell<Option<Gc<Holder>>>,
    weaks: RefCell<Vec<Weak<Holder>>>,
}
// SAFETY: visits `peer`, the only owning field, once (weak handles are not edges).
unsafe impl Trace for Holder {
    fn trace(&self, t: &mut Tracer) {
        self.peer.trace(t);
    }
}
fn holder() -> Gc<Holder> {
    Gc::new(Holder {
        peer: RefCell::new(None),
        weaks: RefCell::new(Vec::new()),
    })
}

#[test]
fn every_weak_to_garbage_is_cleared_before_any_callback_runs() {
    settle();
    let a = holder();
    let b = holder();
    *a.peer.borrow_mut() = Some(b.clone());
    *b.peer.borrow_mut() = Some(a.clone());
    let seen: Rc<RefCell<Vec<(bool, bool)>>> = Rc::default();
    let (wa, wb) = (Gc::downgrade(&a), Gc::downgrade(&b));
    let mk = || {
        let (wa, wb, seen) = (wa.clone(), wb.clone(), seen.clone());
        move || {
            seen.borrow_mut()
                .push((wa.upgrade().is_none(), wb.upgrade().is_none()))
        }
    };
    let cb_a = Gc::downgrade_with(&a, mk());
    let cb_b = Gc::downgrade_with(&b, mk());
    drop((a, b));
    assert_eq!(gc::collect(), 2);
    assert_eq!(*seen.borrow(), [(true, true), (true, true)]);
    drop((cb_a, cb_b));
}

#[test]
fn callbacks_of_weak_references_inside_the_garbage_do_not_run() {
    settle();
    let l = log();
    let a = holder();
    let b = holder();
    *a.peer.borrow_mut() = Some(b.clone());
    *b.peer.borrow_mut() = Some(a.clone());
    // a holds a weak reference with a callback to b: both die together, so it must not run.
    let inner = Gc::downgrade_with(&b, push(&l, "from inside the garbage"));
    a.weaks.borrow_mut().push(inner);
    // A live weak reference to a: its callback runs.
    let outer = Gc::downgrade_with(&a, push(&l, "from outside"));
    drop((a, b));
    assert_eq!(gc::collect(), 2);
    assert_eq!(*l.borrow(), ["from outside"]);
    drop(outer);
}

#[test]
fn finalizer_runs_without_its_handle_and_can_be_detached_or_called() {
    let l = log();
    let a = Gc::new(1);
    let _ = gc::finalize(&a, push(&l, "a finalized")); // the handle is not kept
    drop(a);
    assert_eq!(*l.borrow(), ["a finalized"]);

    let b = Gc::new(2);
    let f = gc::finalize(&b, push(&l, "b finalized"));
    assert!(f.detach());
    assert!(!f.alive() && !f.detach());
    drop(b);
    assert_eq!(l.borrow().len(), 1);

    let c = Gc::new(3);
    let f = gc::finalize(&c, push(&l, "c called"));
    assert!(f.call());
    assert!(!f.call());
    drop(c);
    assert_eq!(*l.borrow(), ["a finalized", "c called"]);
}

#[test]
fn finalizer_runs_when_a_cycle_is_collected() {
    settle();
    let l = log();
    let a = node(7);
    link(&a, &a);
    let f = gc::finalize(&a, push(&l, "fin"));
    drop(a);
    assert!(f.alive());
    gc::collect();
    assert!(!f.alive());
    assert_eq!(*l.borrow(), ["fin"]);
}

#[test]
fn a_panicking_callback_on_count_death_propagates_after_the_others_ran_and_frees_the_box() {
    let l = log();
    let obj = Gc::new(String::from("x"));
    let w1 = Gc::downgrade_with(&obj, || panic!("callback fails"));
    let w2 = Gc::downgrade_with(&obj, push(&l, "second ran"));
    let watch = Gc::downgrade(&obj);
    let r = catch_unwind(AssertUnwindSafe(move || drop(obj)));
    assert!(r.is_err());
    assert_eq!(*l.borrow(), ["second ran"]);
    assert!(watch.upgrade().is_none());
    drop((w1, w2, watch));
}

#[test]
fn a_panicking_callback_in_an_explicit_collection_is_resumed_after_the_collection() {
    settle();
    let l = log();
    let a = node(1);
    link(&a, &a);
    let b = node(2);
    link(&b, &b);
    let wa = Gc::downgrade_with(&a, || panic!("callback of a"));
    let wb = Gc::downgrade_with(&b, push(&l, "b"));
    drop((a, b));
    let r = catch_unwind(gc::collect);
    assert!(r.is_err(), "the panic was not resumed");
    assert_eq!(*l.borrow(), ["b"], "the other callback did not run");
    assert!(wa.upgrade().is_none() && wb.upgrade().is_none());
    assert_eq!(
        gc::collect(),
        0,
        "the collector is usable and nothing is left"
    );
}

#[test]
fn a_panicking_callback_in_an_automatic_collection_is_swallowed_and_counted() {
    settle();
    let before = gc::stats().drop_panics_ignored;
    gc::set_threshold(1);
    let a = node(1);
    link(&a, &a);
    let wa = Gc::downgrade_with(&a, || panic!("callback in automatic collection"));
    drop(a); // buffered: reaches the threshold
    drop(Gc::new(0u8)); // automatic collections start when allocating
    gc::set_threshold(700);
    assert!(wa.upgrade().is_none());
    assert_eq!(gc::stats().drop_panics_ignored, before + 1);
}

#[test]
fn a_callback_may_use_the_collector_and_make_new_objects() {
    settle();
    let made: Rc<RefCell<Vec<Gc<Node>>>> = Rc::default();
    let m = made.clone();
    let a = node(1);
    link(&a, &a);
    let w = Gc::downgrade_with(&a, move || {
        gc::collect(); // a no-op inside a collection
        m.borrow_mut().push(node(99));
    });
    drop(a);
    gc::collect();
    assert_eq!(made.borrow()[0].id, 99);
    drop(w);
}
