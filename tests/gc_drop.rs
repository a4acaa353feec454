//! Sound destruction: `Drop` reaching dead peers, resurrection, panics in `Drop` and `trace`, re-entrant
//! collection, and thread teardown.
#![cfg(feature = "std")] // per-thread collector state; the no_std design is tested in gc_nostd.rs

mod gc_util;

use gc_util::{drops, link, node, settle, Node};
use poolgc::gc::{self, Gc, Trace, Tracer, Weak};
use std::cell::{Cell, RefCell};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// A node whose `Drop` runs a per-thread hook with itself.
#[derive(Debug)]
struct Hooked {
    peer: RefCell<Option<Gc<Hooked>>>,
    weak_peer: RefCell<Weak<Hooked>>,
    name: &'static str,
}

type Hook = Option<Box<dyn Fn(&Hooked)>>;

thread_local! {
    static HOOK: RefCell<Hook> = const { RefCell::new(None) };
    static GRAVEYARD: RefCell<Vec<Gc<Hooked>>> = const { RefCell::new(Vec::new()) };
    static LOG: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

fn set_hook(f: impl Fn(&Hooked) + 'static) {
    HOOK.with(|h| *h.borrow_mut() = Some(Box::new(f)));
}
fn clear_hook() {
    HOOK.with(|h| *h.borrow_mut() = None);
}
fn log(s: String) {
    LOG.with(|l| l.borrow_mut().push(s));
}
fn take_log() -> Vec<String> {
    LOG.with(|l| std::mem::take(&mut *l.borrow_mut()))
}

impl Drop for Hooked {
    fn drop(&mut self) {
        log(format!("drop {}", self.name));
        let hook = HOOK.with(|h| h.borrow_mut().take());
        if let Some(f) = hook {
            // Put it back before running it, so a panicking hook stays installed for the next drop.
            let f: std::rc::Rc<dyn Fn(&Hooked)> = std::rc::Rc::from(f);
            let g = f.clone();
            HOOK.with(|h| *h.borrow_mut() = Some(Box::new(move |x: &Hooked| g(x))));
            f(self);
        }
    }
}

// SAFETY: visits `peer`, the only owning `Gc` field, once (`weak_peer` is not an edge).
unsafe impl Trace for Hooked {
    fn trace(&self, t: &mut Tracer) {
        self.peer.trace(t);
    }
}

fn hooked(name: &'static str) -> Gc<Hooked> {
    Gc::new(Hooked {
        peer: RefCell::new(None),
        weak_peer: RefCell::new(Weak::new()),
        name,
    })
}

/// a -> b -> a, with weak back pointers too.
fn pair() -> (Gc<Hooked>, Gc<Hooked>) {
    let a = hooked("a");
    let b = hooked("b");
    *a.peer.borrow_mut() = Some(b.clone());
    *b.peer.borrow_mut() = Some(a.clone());
    *a.weak_peer.borrow_mut() = Gc::downgrade(&b);
    *b.weak_peer.borrow_mut() = Gc::downgrade(&a);
    (a, b)
}

#[test]
fn drop_reaching_a_dead_peer_gets_none_never_freed_memory() {
    settle();
    let seen = std::rc::Rc::new(RefCell::new(Vec::new()));
    let s2 = seen.clone();
    set_hook(move |me| {
        let peer = me.peer.borrow();
        let peer = peer.as_ref().unwrap();
        s2.borrow_mut().push((
            Gc::try_deref(peer).is_some(),
            Gc::is_dropped(peer),
            me.weak_peer.borrow().upgrade().is_none(),
            format!("{peer:?}").contains("dropped"),
        ));
    });
    let (a, b) = pair();
    drop((a, b));
    assert_eq!(gc::collect(), 2);
    clear_hook();
    assert_eq!(*seen.borrow(), vec![(false, true, true, true); 2]);
    take_log();
}

#[test]
fn deref_of_a_dead_peer_panics_and_everything_is_still_freed() {
    settle();
    let live = gc::stats().live;
    set_hook(|me| {
        let peer = me.peer.borrow();
        let _ = peer.as_ref().unwrap().name; // Deref: panics, the peer's value is dropped
    });
    let (a, b) = pair();
    drop((a, b));
    let r = catch_unwind(AssertUnwindSafe(gc::collect));
    clear_hook();
    let msg = r.expect_err("deref of a dead peer panics");
    let msg = msg
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| msg.downcast_ref::<String>().cloned())
        .unwrap();
    assert!(msg.contains("after the cycle collector dropped"), "{msg}");
    assert_eq!(
        take_log(),
        ["drop a", "drop b"],
        "both values dropped despite the panic"
    );
    assert_eq!(gc::stats().live, live, "both boxes freed");
    // Still usable.
    let (a, b) = pair();
    drop((a, b));
    assert_eq!(gc::collect(), 2);
    take_log();
}

#[test]
fn resurrection_keeps_a_zombie_and_frees_the_rest() {
    settle();
    let stats0 = gc::stats();
    set_hook(|me| {
        if me.name == "a" {
            // Store the peer into a live structure.
            let p = me.peer.borrow().clone().unwrap();
            GRAVEYARD.with(|g| g.borrow_mut().push(p));
        }
    });
    let (a, b) = pair();
    let c = hooked("c"); // a third member: a -> b -> a, c -> a, a… c is reached only from b
    *c.peer.borrow_mut() = Some(a.clone());
    *b.weak_peer.borrow_mut() = Gc::downgrade(&c);
    drop((a, b, c));
    assert_eq!(
        gc::collect(),
        2,
        "a and b (c was freed by counting already)"
    );
    clear_hook();
    let s = gc::stats();
    assert_eq!(s.resurrected - stats0.resurrected, 1);
    let zombie = GRAVEYARD.with(|g| g.borrow_mut().pop()).unwrap();
    assert_eq!(zombie.name_checked(), None);
    assert!(Gc::is_dropped(&zombie));
    assert_eq!(Gc::strong_count(&zombie), 1);
    assert!(catch_unwind(AssertUnwindSafe(|| zombie.name)).is_err());
    let w = Gc::downgrade(&zombie);
    assert!(w.upgrade().is_none());
    assert_eq!(
        gc::stats().live,
        stats0.live + 1,
        "only the zombie's box remains"
    );
    drop(zombie); // frees the box without dropping the value again
    drop(w);
    assert_eq!(gc::stats().live, stats0.live);
    assert_eq!(gc::collect(), 0);
    let log = take_log();
    assert_eq!(
        log.iter().filter(|l| *l == "drop b").count(),
        1,
        "each value dropped once: {log:?}"
    );
}

trait NameChecked {
    fn name_checked(&self) -> Option<&'static str>;
}
impl NameChecked for Gc<Hooked> {
    fn name_checked(&self) -> Option<&'static str> {
        Gc::try_deref(self).map(|h| h.name)
    }
}

#[test]
fn panic_in_drop_on_count_zero_frees_the_box() {
    settle();
    let live = gc::stats().live;
    set_hook(|_| panic!("boom"));
    let a = hooked("solo");
    let w = Gc::downgrade(&a);
    assert!(catch_unwind(AssertUnwindSafe(move || drop(a))).is_err());
    clear_hook();
    assert!(w.upgrade().is_none());
    drop(w);
    assert_eq!(gc::stats().live, live);
    take_log();
}

#[test]
fn panic_in_drop_during_collection_leaves_the_collector_usable() {
    settle();
    let live = gc::stats().live;
    set_hook(|me| {
        if me.name == "a" {
            panic!("drop of a fails");
        }
    });
    let (a, b) = pair();
    drop((a, b));
    assert!(catch_unwind(AssertUnwindSafe(gc::collect)).is_err());
    clear_hook();
    let log = take_log();
    assert!(log.contains(&"drop a".to_string()) && log.contains(&"drop b".to_string()));
    assert_eq!(gc::stats().live, live, "both boxes freed");
    let (a, b) = pair();
    drop((a, b));
    assert_eq!(gc::collect(), 2);
    take_log();
}

/// A node whose `trace` panics while a flag is set.
struct Fragile {
    next: RefCell<Option<Gc<Fragile>>>,
}
thread_local! {
    static TRACE_PANICS: Cell<bool> = const { Cell::new(false) };
}
// SAFETY: visits `next`, its only `Gc`, once (or panics before visiting anything).
unsafe impl Trace for Fragile {
    fn trace(&self, t: &mut Tracer) {
        if TRACE_PANICS.with(Cell::get) {
            panic!("trace fails");
        }
        self.next.trace(t);
    }
}

#[test]
fn panic_in_trace_restores_counts_and_roots() {
    settle();
    let a = Gc::new(Fragile {
        next: RefCell::new(None),
    });
    let b = Gc::new(Fragile {
        next: RefCell::new(Some(a.clone())),
    });
    *a.next.borrow_mut() = Some(b.clone());
    let (wa, wb) = (Gc::downgrade(&a), Gc::downgrade(&b));
    drop((a, b));
    assert_eq!(gc::count(), 2);
    TRACE_PANICS.with(|f| f.set(true));
    assert!(catch_unwind(AssertUnwindSafe(gc::collect)).is_err());
    TRACE_PANICS.with(|f| f.set(false));
    assert_eq!(
        (wa.strong_count(), wb.strong_count()),
        (1, 1),
        "counts restored"
    );
    assert_eq!(gc::count(), 2, "roots back in the buffer");
    assert!(wa.upgrade().is_some());
    assert_eq!(gc::collect(), 2);
    assert!(wa.upgrade().is_none() && wb.upgrade().is_none());
}

#[test]
fn panic_in_trace_midway_through_a_big_graph() {
    settle();
    // A ring of 50; trace panics on the 20th call.
    thread_local!(static CALLS: Cell<usize> = const { Cell::new(0) });
    struct Counted(RefCell<Option<Gc<Counted>>>);
    // SAFETY: visits its one `Gc` once, or panics.
    unsafe impl Trace for Counted {
        fn trace(&self, t: &mut Tracer) {
            let n = CALLS.with(|c| {
                c.set(c.get() + 1);
                c.get()
            });
            if n == 20 {
                panic!("twentieth trace");
            }
            self.0.trace(t);
        }
    }
    let first = Gc::new(Counted(RefCell::new(None)));
    let mut prev = first.clone();
    let mut weaks = vec![Gc::downgrade(&first)];
    for _ in 1..50 {
        let n = Gc::new(Counted(RefCell::new(Some(prev.clone()))));
        weaks.push(Gc::downgrade(&n));
        prev = n;
    }
    *first.0.borrow_mut() = Some(prev.clone());
    drop((first, prev));
    assert!(catch_unwind(AssertUnwindSafe(gc::collect)).is_err());
    assert!(weaks.iter().all(|w| w.strong_count() == 1));
    assert_eq!(gc::collect(), 50);
    assert!(weaks.iter().all(|w| w.upgrade().is_none()));
}

#[test]
fn drop_may_collect_allocate_and_free_during_a_collection() {
    settle();
    set_hook(|me| {
        assert_eq!(gc::collect(), 0, "no nested collection");
        if me.name == "a" {
            // A new cycle made during the drop phase, and an acyclic object freed at once.
            let (x, y) = (node(100), node(101));
            link(&x, &y);
            link(&y, &x);
            let t = Gc::new(5u64);
            drop((x, y, t));
        }
    });
    let (a, b) = pair();
    drop((a, b));
    let d = drops();
    assert_eq!(gc::collect(), 2);
    clear_hook();
    assert_eq!(drops(), d, "the new cycle is not garbage-collected yet");
    assert_eq!(gc::collect(), 2, "found by the next collection");
    assert_eq!(drops(), d + 2);
    take_log();
}

#[test]
fn garbage_holding_the_last_reference_to_a_tree() {
    settle();
    let d = drops();
    let a = node(1);
    link(&a, &a);
    let tree = node(2);
    for i in 0..10 {
        link(&tree, &node(10 + i));
    }
    let leaf = Gc::downgrade(&tree.edges.borrow()[3]);
    a.edges.borrow_mut().push(tree);
    drop(a);
    assert_eq!(
        gc::collect(),
        12,
        "the self-loop and everything only it reaches are garbage"
    );
    assert_eq!(drops(), d + 12);
    assert!(leaf.upgrade().is_none());
}

#[test]
fn a_gc_dropped_in_thread_teardown_does_not_crash() {
    struct Holder(RefCell<Vec<Gc<Node>>>);
    impl Drop for Holder {
        fn drop(&mut self) {
            // Runs in thread-local destruction, maybe after the collector's state is gone.
            let v = std::mem::take(&mut *self.0.borrow_mut());
            drop(v);
            let extra = Gc::new(Node {
                id: 7,
                edges: RefCell::new(Vec::new()),
            });
            let e2 = extra.clone();
            drop(extra); // decrement to non-zero
            drop(e2); // and to zero
        }
    }
    thread_local!(static HOLDER: Holder = const { Holder(RefCell::new(Vec::new())) });
    for touch_collector_first in [false, true] {
        std::thread::spawn(move || {
            if touch_collector_first {
                gc::collect();
            }
            let a = node(1);
            let b = node(2);
            link(&a, &b);
            link(&b, &a);
            HOLDER.with(|h| h.0.borrow_mut().extend([a.clone(), b.clone(), node(3)]));
            if !touch_collector_first {
                gc::collect();
            }
            drop((a, b));
        })
        .join()
        .expect("thread teardown with live Gcs is clean");
    }
}

#[test]
fn each_thread_collects_its_own_objects() {
    settle();
    let a = node(1);
    link(&a, &a);
    drop(a);
    assert_eq!(gc::count(), 1);
    let other = std::thread::spawn(|| {
        let before = gc::count();
        let b = node(2);
        link(&b, &b);
        drop(b);
        (before, gc::count(), gc::collect())
    })
    .join()
    .unwrap();
    assert_eq!(other, (0, 1, 1));
    assert_eq!(
        gc::count(),
        1,
        "the other thread did not touch this thread's buffer"
    );
    assert_eq!(gc::collect(), 1);
}

/// CPython's trashcan: a long chain freed by counting is dropped iteratively, not a million frames deep.
#[test]
fn long_chain_dropped_by_counting_does_not_recurse() {
    settle();
    let d = drops();
    let n = gc_util::scaled(300_000, 2_000);
    let live = gc::stats().live;
    let mut head = node(0);
    for i in 1..n {
        let next = node(i);
        link(&next, &head);
        head = next;
    }
    gc::disable(); // the walk below makes every node a possible root; don't rescan the chain meanwhile
    let tail_weak = {
        let mut cur = head.clone();
        for _ in 0..n - 1 {
            let next = cur.edges.borrow()[0].clone();
            cur = next;
        }
        Gc::downgrade(&cur)
    };
    gc::enable();
    settle(); // the walk's possible roots: all live, nothing collected
    assert_eq!(drops(), d);
    drop(head);
    assert_eq!(drops(), d + n, "all dropped by counting, no collection");
    assert!(tail_weak.upgrade().is_none());
    drop(tail_weak);
    assert_eq!(gc::stats().live, live);
}

/// A thread that ends runs one last collection: its buffered garbage cycles do not leak, and a `Drop`
/// that calls into the collector during teardown gets neutral answers instead of a panic.
#[test]
fn thread_exit_collects_the_threads_garbage() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    struct Counted {
        peer: RefCell<Option<Gc<Counted>>>,
        dropped: Arc<AtomicUsize>,
    }
    impl Drop for Counted {
        fn drop(&mut self) {
            // Thread teardown: the state is gone, these must not panic.
            let _ = (gc::collect(), gc::count(), gc::stats(), gc::is_enabled());
            self.dropped.fetch_add(1, Ordering::SeqCst);
        }
    }
    // SAFETY: visits its one `Gc` once.
    unsafe impl Trace for Counted {
        fn trace(&self, t: &mut Tracer) {
            self.peer.trace(t);
        }
    }
    let dropped = Arc::new(AtomicUsize::new(0));
    let d2 = dropped.clone();
    std::thread::spawn(move || {
        for _ in 0..10 {
            let mk = || {
                Gc::new(Counted {
                    peer: RefCell::new(None),
                    dropped: d2.clone(),
                })
            };
            let (a, b) = (mk(), mk());
            *a.peer.borrow_mut() = Some(b.clone());
            *b.peer.borrow_mut() = Some(a.clone());
        }
        assert_eq!(gc::count(), 20, "buffered, not collected yet");
    })
    .join()
    .unwrap();
    assert_eq!(dropped.load(Ordering::SeqCst), 20);
}

/// A long chain held by a thread-local destroyed after the collector's state: its drop used to take the
/// stateless path, which recursed once per node and overflowed the thread's stack.
#[test]
#[cfg_attr(miri, ignore = "spawns a process")]
fn deep_chain_dropped_in_thread_teardown_does_not_overflow() {
    gc_util::in_child_process(
        "deep_chain_dropped_in_thread_teardown_does_not_overflow",
        || {
            thread_local!(static HOLDER: RefCell<Option<Gc<Node>>> = const { RefCell::new(None) });
            std::thread::spawn(|| {
                HOLDER.with(|_| {}); // registers HOLDER's destructor first...
                let mut head = node(0); // ...then the collector state's: destroyed before HOLDER
                for i in 1..1_000_000 {
                    let n = node(i);
                    n.edges.borrow_mut().push(head);
                    head = n;
                }
                HOLDER.with(|h| *h.borrow_mut() = Some(head));
            })
            .join()
            .unwrap();
        },
    );
}

/// A garbage cycle whose `Drop` panics.
struct Bomb(RefCell<Option<Gc<Bomb>>>);
impl Drop for Bomb {
    fn drop(&mut self) {
        panic!("Bomb::drop");
    }
}
// SAFETY: visits its one `Gc` field once.
unsafe impl Trace for Bomb {
    fn trace(&self, t: &mut Tracer) {
        self.0.trace(t);
    }
}

fn bomb_loop() {
    let b = Gc::new(Bomb(RefCell::new(None)));
    *b.0.borrow_mut() = Some(b.clone());
}

/// A `Gc` dropped while unwinding used to start an automatic collection whose garbage `Drop` panic was
/// resumed out of that drop, i.e. out of a cleanup pad: the process aborted.
#[test]
#[cfg_attr(miri, ignore = "spawns a process")]
fn no_automatic_collection_while_unwinding() {
    gc_util::in_child_process("no_automatic_collection_while_unwinding", || {
        settle();
        gc::set_threshold(2);
        bomb_loop(); // garbage self-loop, buffered (1 root of 2)
        let r = catch_unwind(|| {
            let a = node(1);
            let _keep = a.clone();
            let _guard = a; // dropped while unwinding: buffered, at the threshold
            panic!("unrelated panic");
        });
        assert!(r.is_err());
        gc::set_threshold(gc::stats().threshold.max(700));
        // The bomb is still there for an explicit collection, which re-raises its panic.
        assert!(catch_unwind(gc::collect).is_err());
        assert_eq!(gc::stats().drop_panics_ignored, 0);
    });
}

#[test]
fn automatic_collection_swallows_and_counts_drop_panics() {
    settle();
    let before = gc::stats().drop_panics_ignored;
    gc::set_threshold(2);
    bomb_loop();
    bomb_loop(); // the second root: a collection is due
    drop(Gc::new(0u8)); // the next allocation starts it: both bombs' drops panic
    gc::set_threshold(700);
    assert_eq!(gc::stats().drop_panics_ignored, before + 2);
    assert_eq!(gc::count(), 0);
}
