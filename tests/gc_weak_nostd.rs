//! Weak callbacks, finalizers and weak maps without `std`
//! (`cargo test --no-default-features --features gc --test gc_weak_nostd`): the program-wide callback
//! registry, reached only after `init_single_threaded`. One test function, one thread, as the contract
//! requires.
#![cfg(not(feature = "std"))]

use core::cell::{Cell, RefCell};
use poolgc::gc::{self, Gc, Trace, Tracer, WeakValueMap};
use std::rc::Rc;

struct Node {
    next: RefCell<Option<Gc<Node>>>,
}
// SAFETY: visits its one `Gc` field once.
unsafe impl Trace for Node {
    fn trace(&self, t: &mut Tracer) {
        self.next.trace(t);
    }
}

#[test]
fn no_std_weak_callbacks() {
    // SAFETY: this test is the only code in this binary that uses `Gc`, and it runs on one thread.
    unsafe { gc::init_single_threaded() };

    let hits = Rc::new(Cell::new(0));
    let h = hits.clone();
    let obj = Gc::new(5u32);
    let w = Gc::downgrade_with(&obj, move || h.set(h.get() + 1));
    drop(obj);
    assert_eq!(hits.get(), 1, "callback on count death");
    drop(w);

    let a = Gc::new(Node {
        next: RefCell::new(None),
    });
    *a.next.borrow_mut() = Some(a.clone());
    let h = hits.clone();
    let fin = gc::finalize(&a, move || h.set(h.get() + 10));
    let map = WeakValueMap::new();
    map.insert(1u8, &a);
    drop(a);
    assert_eq!(gc::collect(), 1);
    assert_eq!(hits.get(), 11, "finalizer on collection");
    assert!(!fin.alive() && map.is_empty());
}
