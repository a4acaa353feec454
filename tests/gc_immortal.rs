//! Immortal objects: counts never written, never buffered, never traversed, never freed.
#![cfg(feature = "std")]

mod gc_util;

use gc_util::{drops, link, node, settle};
use poolgc::gc::{self, Gc, Trace, Tracer, IMMORTAL_COUNT};
use std::cell::{Cell, RefCell};

#[test]
fn clone_and_drop_of_an_immortal_leave_the_count_and_the_buffer_alone() {
    settle();
    let n = node(1);
    let keep = n.clone();
    Gc::make_immortal(&n);
    assert!(Gc::is_immortal(&n));
    assert_eq!(Gc::strong_count(&n), IMMORTAL_COUNT);
    assert_eq!(IMMORTAL_COUNT, 4_294_967_295);
    let copies: Vec<_> = (0..1000).map(|_| n.clone()).collect();
    assert_eq!(Gc::strong_count(&n), IMMORTAL_COUNT);
    drop(copies);
    drop(keep);
    assert_eq!(Gc::strong_count(&n), IMMORTAL_COUNT);
    assert_eq!(gc::count(), 0, "an immortal is never a possible root");
    let before = drops();
    drop(n);
    settle();
    assert_eq!(drops(), before, "an immortal's value is never dropped");
}

#[test]
fn making_a_buffered_object_immortal_takes_it_out_of_the_buffer() {
    settle();
    gc::disable();
    let n = node(2);
    drop(n.clone()); // buffered
    assert_eq!(gc::count(), 1);
    Gc::make_immortal(&n);
    assert_eq!(gc::count(), 0);
    gc::enable();
}

/// A node that counts its `trace` calls.
struct Traced {
    calls: Cell<usize>,
    next: RefCell<Option<Gc<Traced>>>,
}
// SAFETY: visits `next`, the only `Gc` field, once.
unsafe impl Trace for Traced {
    fn trace(&self, t: &mut Tracer) {
        self.calls.set(self.calls.get() + 1);
        self.next.trace(t);
    }
}

#[test]
fn the_collector_never_traverses_an_immortal_and_what_it_holds_stays_alive() {
    settle();
    let imm = Gc::new(Traced {
        calls: Cell::new(0),
        next: RefCell::new(None),
    });
    let holder = Gc::new(Traced {
        calls: Cell::new(0),
        next: RefCell::new(None),
    });
    Gc::make_immortal(&imm);
    // A mortal cycle through the immortal: holder -> imm, imm.next -> holder.
    *holder.next.borrow_mut() = Some(imm.clone());
    *imm.next.borrow_mut() = Some(holder.clone());
    drop(holder.clone()); // holder buffered
    gc::collect();
    assert_eq!(imm.calls.get(), 0, "the immortal was traced");
    assert!(holder.calls.get() >= 1);
    let weak = Gc::downgrade(&holder);
    drop(holder);
    settle();
    assert!(
        weak.upgrade().is_some(),
        "an object referenced by an immortal was collected"
    );
    assert_eq!(imm.calls.get(), 0);
}

#[test]
fn an_immortal_cycle_member_is_not_garbage() {
    settle();
    let a = node(10);
    let b = node(11);
    link(&a, &b);
    link(&b, &a);
    Gc::make_immortal(&a);
    let before = drops();
    drop((a, b));
    assert_eq!(settle(), 0);
    assert_eq!(drops(), before);
}

#[test]
fn a_weak_to_an_immortal_always_upgrades() {
    let n = node(4);
    Gc::make_immortal(&n);
    let w = Gc::downgrade(&n);
    drop(n);
    let s = w.upgrade().expect("immortal");
    assert_eq!(Gc::strong_count(&s), IMMORTAL_COUNT);
    assert_eq!(w.strong_count(), IMMORTAL_COUNT);
}

#[test]
fn small_int_cache_gives_identity() {
    let cache: Vec<Gc<i64>> = (-5..=256)
        .map(|i| {
            let g = Gc::new(i);
            Gc::make_immortal(&g);
            g
        })
        .collect();
    let small = |i: i64| cache[(i + 5) as usize].clone();
    assert!(Gc::ptr_eq(&small(7), &small(7)));
    assert!(!Gc::ptr_eq(&small(7), &Gc::new(7)));
}
