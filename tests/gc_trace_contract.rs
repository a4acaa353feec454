//! What the collector guarantees when a `Trace` impl misbehaves in ways the contract calls memory-safe,
//! or calls the `gc` control functions: live objects are never collected.
#![cfg(feature = "gc")]

use poolgc::gc::{self, Gc, Trace, Tracer};
use std::cell::{Cell, RefCell};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Honest,
    /// Calls `gc::freeze()` on its second call (the contract forbids it; the collector must cope).
    FreezeOnSecondCall,
    /// Omits its edge on its second call (under-reporting, which the docs call memory-safe).
    OmitOnSecondCall,
    /// Omits its edge on its first call only.
    OmitOnFirstCall,
}

thread_local! {
    static TRACE_CALLS: Cell<usize> = const { Cell::new(0) };
    static MODE: Cell<Mode> = const { Cell::new(Mode::Honest) };
}

struct N {
    payload: String,
    next: RefCell<Option<Gc<N>>>,
    special: bool,
}

// SAFETY: visits its one `Gc` field at most once per call and never touches handles; in the test modes it
// sometimes omits that field (allowed) or calls `gc::freeze()` (a breach the collector must survive).
unsafe impl Trace for N {
    fn trace(&self, t: &mut Tracer) {
        if self.special {
            let c = TRACE_CALLS.with(|c| {
                c.set(c.get() + 1);
                c.get()
            });
            match (MODE.with(Cell::get), c) {
                (Mode::FreezeOnSecondCall, 2) => gc::freeze(),
                (Mode::OmitOnSecondCall, 2) | (Mode::OmitOnFirstCall, 1) => return,
                _ => {}
            }
        }
        self.next.trace(t);
    }
}

fn n(special: bool, s: &str) -> Gc<N> {
    Gc::new(N {
        payload: s.to_string(),
        next: RefCell::new(None),
        special,
    })
}

/// A live root `r -> x`, `r` buffered, a `&N` into `x` held across `collect()`: nothing may be collected
/// and the reference must stay readable (Miri checks the latter).
fn live_object_survives(mode: Mode) -> usize {
    MODE.with(|m| m.set(mode));
    TRACE_CALLS.with(|c| c.set(0));
    let r = n(true, "root");
    let x = n(false, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
    *r.next.borrow_mut() = Some(x.clone());
    drop(x); // x is referenced only by r, which is live (`r` is on the stack)
    drop(r.clone()); // buffers r as a possible root
    let guard = r.next.borrow();
    let x_ref: &N = guard.as_ref().unwrap();
    let freed = gc::collect();
    assert_eq!(freed, 0);
    assert!(
        !Gc::is_dropped(guard.as_ref().unwrap()),
        "live object x was collected"
    );
    assert_eq!(x_ref.payload.as_bytes()[0], b'x');
    drop(guard);
    let calls = TRACE_CALLS.with(Cell::get);
    gc::unfreeze();
    MODE.with(|m| m.set(Mode::Honest));
    calls
}

#[test]
fn freeze_inside_trace_does_not_collect_a_live_object() {
    live_object_survives(Mode::FreezeOnSecondCall);
    // The freeze asked for from `trace` was applied when the collection ended, then undone.
    assert_eq!(gc::get_freeze_count(), 0);
}

#[test]
fn freeze_from_trace_is_deferred_to_the_end_of_the_collection() {
    MODE.with(|m| m.set(Mode::FreezeOnSecondCall));
    TRACE_CALLS.with(|c| c.set(0));
    // Two roots, so that `trace` runs twice on `r` whatever the collector's traversal.
    let r = n(true, "root");
    *r.next.borrow_mut() = Some(r.clone()); // garbage self-loop once `r` goes
    let keep = n(true, "keep");
    drop(keep.clone());
    drop(r);
    let collected = gc::collect();
    MODE.with(|m| m.set(Mode::Honest));
    // Whatever the freeze did, it did after the analysis: the garbage loop was found, `keep` was not
    // collected, and `keep` is frozen now (alive when the deferred freeze ran).
    assert_eq!(collected, 1);
    assert!(!Gc::is_dropped(&keep));
    assert!(gc::get_freeze_count() >= 1);
    gc::unfreeze();
    assert_eq!(gc::get_freeze_count(), 0);
}

#[test]
fn under_reporting_on_the_second_trace_call_does_not_collect_a_live_object() {
    live_object_survives(Mode::OmitOnSecondCall);
}

#[test]
fn under_reporting_on_the_first_trace_call_does_not_collect_a_live_object() {
    live_object_survives(Mode::OmitOnFirstCall);
}

#[test]
fn trace_runs_once_per_object_per_collection() {
    assert_eq!(live_object_survives(Mode::Honest), 1);
}

#[test]
fn inconsistent_under_reporting_only_keeps_garbage_alive() {
    // Garbage loop r -> x -> r; r omits its edge on its first call: the loop is kept (leaked to this
    // collection), never half-collected.
    MODE.with(|m| m.set(Mode::OmitOnFirstCall));
    TRACE_CALLS.with(|c| c.set(0));
    let r = n(true, "r");
    let x = n(false, "x");
    *r.next.borrow_mut() = Some(x.clone());
    *x.next.borrow_mut() = Some(r.clone());
    let w = Gc::downgrade(&x);
    drop((r, x));
    assert_eq!(gc::collect(), 0);
    assert!(w.upgrade().is_some());
    // Honest again: the loop is found once it is buffered again.
    MODE.with(|m| m.set(Mode::Honest));
    drop(w.upgrade());
    assert_eq!(gc::collect(), 2);
    assert!(w.upgrade().is_none());
}
