//! Unsized values: `Gc<str>` and `Gc<[T]>` (a length prefix in front of the header), in cycles too.
#![cfg(feature = "std")] // per-thread collector state; the no_std design is tested in gc_nostd.rs

mod gc_util;

use gc_util::{drops, node, settle, Node};
use poolgc::gc::{self, Gc, Trace, Tracer, Weak};
use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};

#[test]
fn gc_str() {
    let live = gc::stats().live;
    let s: Gc<str> = Gc::from("hello, pools");
    let t: Gc<str> = Gc::from(String::from("hello, pools"));
    assert_eq!(&*s, "hello, pools");
    assert_eq!(s, t);
    assert!(!Gc::ptr_eq(&s, &t));
    assert_eq!(format!("{s} {t:?}"), "hello, pools \"hello, pools\"");
    let w: Weak<str> = Gc::downgrade(&s);
    assert_eq!(w.upgrade().as_deref(), Some("hello, pools"));
    let empty: Gc<str> = Gc::from("");
    assert_eq!(&*empty, "");
    drop((s, t, empty));
    assert!(w.upgrade().is_none());
    drop(w);
    assert_eq!(gc::stats().live, live);
    assert_eq!(gc::count(), 0, "str is green");
}

#[test]
fn gc_slices_of_various_alignments() {
    #[derive(Clone, Copy, PartialEq, Debug)]
    #[repr(align(64))]
    struct Wide(u8);
    // SAFETY: owns no `Gc`.
    unsafe impl Trace for Wide {
        const ACYCLIC: bool = true;
        fn trace(&self, _: &mut Tracer) {}
    }
    let a: Gc<[u128]> = Gc::from(vec![1u128, 2, 3]);
    assert_eq!(&*a, &[1, 2, 3]);
    assert_eq!(
        Gc::as_ptr(&a) as *const u128 as usize % std::mem::align_of::<u128>(),
        0
    );
    let b: Gc<[Wide]> = Gc::from(&[Wide(1), Wide(2)][..]);
    assert_eq!(Gc::as_ptr(&b) as *const Wide as usize % 64, 0);
    assert_eq!(b[1], Wide(2));
    let c: Gc<[String]> = (0..5).map(|i| i.to_string()).collect();
    assert_eq!(c.len(), 5);
    assert_eq!(c[4], "4");
    let e: Gc<[String]> = Gc::from(Vec::new());
    assert!(e.is_empty());
    let c2 = c.clone();
    assert_eq!(Gc::strong_count(&c), 2);
    drop((a, b, c, c2, e));
}

#[test]
fn slice_of_gcs_in_a_cycle() {
    struct Parent {
        kids: RefCell<Option<Gc<[Gc<Node>]>>>,
        me: RefCell<Option<Gc<Parent>>>,
    }
    // SAFETY: visits both owning fields once.
    unsafe impl Trace for Parent {
        fn trace(&self, t: &mut Tracer) {
            self.kids.trace(t);
            self.me.trace(t);
        }
    }
    settle();
    let d = drops();
    let kids: Gc<[Gc<Node>]> = (0..4).map(node).collect();
    let p = Gc::new(Parent {
        kids: RefCell::new(Some(kids.clone())),
        me: RefCell::new(None),
    });
    *p.me.borrow_mut() = Some(p.clone());
    let w = Gc::downgrade(&kids);
    drop(kids);
    drop(p);
    assert_eq!(
        gc::collect(),
        6,
        "the parent, the slice box, and the four nodes only it held"
    );
    assert_eq!(drops(), d + 4);
    assert!(w.upgrade().is_none());
}

#[test]
fn slice_box_reached_through_a_cycle() {
    // node -> slice -> node
    struct Holder(RefCell<Option<Gc<[Gc<Holder>]>>>);
    // SAFETY: visits its one owning field once.
    unsafe impl Trace for Holder {
        fn trace(&self, t: &mut Tracer) {
            self.0.trace(t);
        }
    }
    settle();
    let h = Gc::new(Holder(RefCell::new(None)));
    let slice: Gc<[Gc<Holder>]> = Gc::from(vec![h.clone(), h.clone()]);
    *h.0.borrow_mut() = Some(slice);
    assert_eq!(Gc::strong_count(&h), 3);
    let w = Gc::downgrade(&h);
    drop(h);
    assert_eq!(gc::collect(), 2);
    assert!(w.upgrade().is_none());
}

#[test]
fn a_panicking_clone_frees_the_partial_slice() {
    struct Bomb(u32);
    impl Clone for Bomb {
        fn clone(&self) -> Bomb {
            if self.0 == 3 {
                panic!("clone of 3");
            }
            Bomb(self.0)
        }
    }
    // SAFETY: owns no `Gc`.
    unsafe impl Trace for Bomb {
        const ACYCLIC: bool = true;
        fn trace(&self, _: &mut Tracer) {}
    }
    let live = gc::stats().live;
    let src: Vec<Bomb> = (0..6).map(Bomb).collect();
    let r = catch_unwind(AssertUnwindSafe(|| Gc::<[Bomb]>::from(&src[..])));
    assert!(r.is_err());
    assert_eq!(gc::stats().live, live);
    #[cfg(all(feature = "os", unix))]
    gc::box_allocator().unwrap().check().unwrap();
}
