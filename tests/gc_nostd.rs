//! The collector without `std` (`cargo test --no-default-features --features gc --test gc_nostd`): one
//! program-wide state, locked until `init_single_threaded`, boxes from the global allocator. Everything
//! runs in one test function, on one thread, as the `unsafe` contract requires.
#![cfg(not(feature = "std"))]

use core::cell::RefCell;
use core::sync::atomic::{AtomicPtr, AtomicUsize, Ordering::Relaxed};
use poolgc::gc::{self, Gc, Trace, Tracer, Weak};
use std::panic::{catch_unwind, AssertUnwindSafe};

static DROPS: AtomicUsize = AtomicUsize::new(0);

struct Node {
    next: RefCell<Option<Gc<Node>>>,
}
impl Drop for Node {
    fn drop(&mut self) {
        DROPS.fetch_add(1, Relaxed);
    }
}
// SAFETY: visits its one `Gc` field once.
unsafe impl Trace for Node {
    fn trace(&self, t: &mut Tracer) {
        self.next.trace(t);
    }
}

#[test]
fn no_std_single_context_collector() {
    // Locked until the program takes on the single-context contract.
    assert!(catch_unwind(|| Gc::new(1u8)).is_err());
    assert!(catch_unwind(gc::collect).is_err());

    // SAFETY: this test is the only code in this binary that uses `Gc`, and it runs on one thread.
    unsafe { gc::init_single_threaded() };
    assert!(
        gc::box_allocator().is_none(),
        "no `os`: boxes come from the global allocator"
    );

    let drops = || DROPS.load(Relaxed);
    let mk = || {
        Gc::new(Node {
            next: RefCell::new(None),
        })
    };
    let (a, b) = (mk(), mk());
    *a.next.borrow_mut() = Some(b.clone());
    *b.next.borrow_mut() = Some(a.clone());
    let w: Weak<Node> = Gc::downgrade(&a);
    drop((a, b));
    assert_eq!(gc::count(), 2);
    assert_eq!(gc::collect(), 2);
    assert_eq!(drops(), 2);
    assert!(w.upgrade().is_none());
    drop(w); // its box was kept for the weak handle until now

    // Automatic collection, stats, freeze.
    gc::set_threshold(8);
    for _ in 0..100 {
        let n = mk();
        *n.next.borrow_mut() = Some(n.clone());
    }
    assert!(gc::stats().collections > 1);
    assert_eq!(
        gc::stats().time,
        core::time::Duration::ZERO,
        "no clock without std"
    );
    gc::collect();
    assert_eq!(drops(), 102);
    let keep = mk();
    gc::freeze();
    assert_eq!(gc::get_freeze_count(), 1);
    gc::unfreeze();
    drop(keep);

    // A panicking Drop during collection: no catch_unwind in the collector without std, the guard
    // frees the boxes (values not dropped yet leak), and the collector stays usable.
    struct Bomb(RefCell<Option<Gc<Bomb>>>);
    impl Drop for Bomb {
        fn drop(&mut self) {
            panic!("bomb");
        }
    }
    // SAFETY: visits its one `Gc` field once.
    unsafe impl Trace for Bomb {
        fn trace(&self, t: &mut Tracer) {
            self.0.trace(t);
        }
    }
    let live = gc::stats().live;
    let x = Gc::new(Bomb(RefCell::new(None)));
    *x.0.borrow_mut() = Some(x.clone());
    drop(x);
    assert!(catch_unwind(AssertUnwindSafe(gc::collect)).is_err());
    assert_eq!(gc::stats().live, live, "the box was freed");
    let (a, b) = (mk(), mk());
    *a.next.borrow_mut() = Some(b.clone());
    *b.next.borrow_mut() = Some(a.clone());
    drop((a, b));
    assert_eq!(gc::collect(), 2);

    // What exactly survives such a panic: a <-> b, a's drop unwinds first (buffered first, so dropped
    // first): b's value is leaked, but b's box is freed (a's fields were still dropped while unwinding,
    // and with them the handle to b). a's box is still referenced by the `Gc` inside b's leaked value,
    // so it stays allocated for good as a zombie, counted in `resurrected`; `collected` does not count
    // the abandoned collection.
    let before = gc::stats();
    let a = Gc::new(Bomb(RefCell::new(None)));
    let b = Gc::new(Bomb(RefCell::new(Some(a.clone()))));
    *a.0.borrow_mut() = Some(b.clone());
    let pa = Gc::as_ptr(&a) as *mut ();
    let wa = Gc::downgrade(&a);
    let wb = Gc::downgrade(&b);
    drop((a, b));
    assert!(catch_unwind(AssertUnwindSafe(gc::collect)).is_err());
    let after = gc::stats();
    assert!(wa.upgrade().is_none() && wb.upgrade().is_none());
    assert_eq!(after.resurrected, before.resurrected + 1);
    assert_eq!(after.collected, before.collected);
    assert_eq!(after.live, before.live + 2); // both still held: a by b's value, b by `wb`
    drop(wb);
    assert_eq!(gc::stats().live, before.live + 1, "b's box freed");
    drop(wa);
    assert_eq!(gc::stats().live, before.live + 1, "a's box stays: a zombie");
    // The zombie is leaked on purpose; keep it reachable from a static so that Miri's leak check (which
    // ignores memory reachable from globals) accepts it.
    static ZOMBIE: AtomicPtr<()> = AtomicPtr::new(core::ptr::null_mut());
    ZOMBIE.store(pa, Relaxed);

    // Miri's leak check covers this binary (boxes come from the global allocator here): nothing leaks.
}
