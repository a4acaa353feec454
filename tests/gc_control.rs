//! CPython's control surface (collect, thresholds, enable/disable, count, stats, callbacks, freeze), the
//! cases of CPython's `Lib/test/test_gc.py` that translate, and memory staying bounded.
#![cfg(feature = "std")] // per-thread collector state; the no_std design is tested in gc_nostd.rs

mod gc_util;

use gc_util::{drops, link, node, scaled, settle, Node};
use poolgc::gc::{self, CallbackInfo, Gc, Phase, Trace, Tracer};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Restores the defaults this thread's tests change.
fn defaults() {
    settle();
    gc::enable();
    gc::set_threshold(700);
    gc::unfreeze();
}

#[test]
fn defaults_are_cpythons() {
    defaults();
    assert_eq!(gc::threshold(), 700);
    assert!(gc::is_enabled());
    assert_eq!(gc::count(), 0);
    let s = gc::stats();
    assert_eq!(
        (s.threshold, s.effective_threshold, s.buffered),
        (700, 700, 0)
    );
}

#[test]
fn automatic_collection_at_the_threshold() {
    defaults();
    gc::set_threshold(10);
    let before = gc::stats().collections;
    let d = drops();
    for i in 0..9 {
        let a = node(i);
        link(&a, &a);
    }
    assert_eq!(gc::count(), 9);
    assert_eq!(gc::stats().collections, before, "not yet");
    let a = node(9);
    link(&a, &a);
    drop(a); // the tenth possible root
    assert_eq!(gc::count(), 10);
    assert_eq!(
        gc::stats().collections,
        before,
        "collections start when allocating"
    );
    let b = node(10); // the next allocation collects
    assert_eq!(gc::stats().collections, before + 1);
    assert_eq!(gc::count(), 0);
    assert_eq!(drops(), d + 10);
    drop(b);
    defaults();
}

/// Reading data through cloned handles buffers possible roots but allocates nothing, so it never
/// starts a collection (which would traverse the live data being read).
#[test]
fn reading_without_allocating_never_collects() {
    defaults();
    gc::set_threshold(10);
    let keep: Vec<Gc<Node>> = (0..100).map(node).collect();
    for w in keep.windows(2) {
        link(&w[0], &w[1]);
    }
    let before = gc::stats().collections;
    for k in &keep {
        drop(k.clone());
    }
    assert_eq!(gc::count(), 100);
    assert_eq!(gc::stats().collections, before);
    drop(keep);
    defaults();
}

#[test]
fn disable_stops_automatic_collection_but_not_collect() {
    defaults();
    gc::set_threshold(5);
    gc::disable();
    assert!(!gc::is_enabled());
    let before = gc::stats().collections;
    for i in 0..20 {
        let a = node(i);
        link(&a, &a);
    }
    assert_eq!(gc::stats().collections, before);
    assert_eq!(gc::count(), 20);
    assert_eq!(gc::collect(), 20);
    gc::enable();
    defaults();
}

#[test]
fn stats_count_collections_objects_and_time() {
    defaults();
    let s0 = gc::stats();
    for _ in 0..3 {
        let (a, b) = (node(1), node(2));
        link(&a, &b);
        link(&b, &a);
        drop((a, b));
        assert_eq!(gc::collect(), 2);
    }
    let s = gc::stats();
    assert_eq!(s.collections - s0.collections, 3);
    assert_eq!(s.collected - s0.collected, 6);
    assert!(s.time >= s0.time);
    assert_eq!(s.live, s0.live);
}

#[test]
fn callbacks_before_and_after() {
    defaults();
    let seen: Rc<RefCell<Vec<(Phase, CallbackInfo)>>> = Rc::default();
    let s2 = seen.clone();
    let id = gc::add_callback(move |phase, info| s2.borrow_mut().push((phase, *info)));
    let a = node(1);
    link(&a, &a);
    drop(a);
    assert_eq!(gc::collect(), 1);
    {
        let seen = seen.borrow();
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[0].0, Phase::Start);
        assert_eq!((seen[0].1.buffered, seen[0].1.collected), (1, 0));
        assert_eq!(seen[1].0, Phase::Stop);
        assert_eq!((seen[1].1.buffered, seen[1].1.collected), (1, 1));
    }
    assert!(gc::remove_callback(id));
    assert!(!gc::remove_callback(id));
    gc::collect();
    assert_eq!(seen.borrow().len(), 2, "removed callbacks do not run");
}

#[test]
fn a_callback_may_register_another_and_collect() {
    defaults();
    let hits = Rc::new(RefCell::new(0));
    let h2 = hits.clone();
    let id = gc::add_callback(move |phase, _| {
        assert_eq!(gc::collect(), 0, "nested collect is a no-op");
        if phase == Phase::Stop && *h2.borrow() == 1 {
            let h3 = h2.clone();
            gc::add_callback(move |_, _| *h3.borrow_mut() += 10);
        }
        *h2.borrow_mut() += 1;
    });
    gc::collect();
    assert_eq!(*hits.borrow(), 2);
    gc::collect();
    assert_eq!(*hits.borrow(), 2 + 2 + 20);
    assert!(gc::remove_callback(id));
}

#[test]
fn freeze_hides_live_objects_from_the_collector() {
    defaults();
    let d = drops();
    let a = node(1);
    let b = node(2);
    link(&a, &b);
    link(&b, &a);
    let (wa, wb) = (Gc::downgrade(&a), Gc::downgrade(&b));
    let c = node(3);
    link(&c, &c);
    drop(c); // buffered before the freeze
    let live = gc::stats().live;
    gc::freeze();
    assert_eq!(gc::get_freeze_count(), live);
    assert_eq!(gc::count(), 0, "the buffer moved into the frozen set");
    drop((a, b)); // a frozen cycle becomes garbage
    assert_eq!(gc::count(), 0, "frozen objects are not buffered");
    assert_eq!(gc::collect(), 0, "nor collected");
    assert!(wa.upgrade().is_some());
    // New objects are not frozen.
    let n = node(4);
    link(&n, &n);
    drop(n);
    assert_eq!(gc::collect(), 1);
    gc::unfreeze();
    assert_eq!(gc::get_freeze_count(), 0);
    assert_eq!(
        gc::collect(),
        3,
        "after unfreeze, what died frozen is found"
    );
    assert!(wa.upgrade().is_none() && wb.upgrade().is_none());
    assert_eq!(drops(), d + 4);
}

#[test]
fn frozen_objects_that_die_are_freed() {
    defaults();
    let a = node(1);
    let a2 = a.clone();
    let live = gc::stats().live;
    gc::freeze();
    drop(a2); // decrement to non-zero while frozen: a candidate
    drop(a); // and to zero
    gc::collect(); // sweeps dead candidates
    assert_eq!(gc::stats().live, live - 1);
    assert_eq!(gc::get_freeze_count(), live - 1);
    gc::unfreeze();
}

#[test]
fn memory_stays_bounded_in_a_garbage_loop() {
    defaults();
    gc::set_threshold(100);
    let base = gc::stats().live;
    let mut peak = 0;
    for i in 0..scaled(100_000, 1_500) {
        let (a, b) = (node(i), node(i + 1));
        link(&a, &b);
        link(&b, &a);
        drop((a, b));
        peak = peak.max(gc::stats().live - base);
    }
    assert!(peak <= 2 * 100 + 2, "peak live objects {peak}");
    assert!(gc::stats().effective_threshold <= 200);
    defaults();
}

/// A collection that visits live data leaves a debt: the next automatic one waits for as many new
/// possible roots, so the same live structure is not rescanned every `threshold` roots.
#[test]
fn threshold_waits_for_the_debt_of_live_data() {
    defaults();
    gc::set_threshold(50);
    // A live structure whose members keep becoming possible roots.
    let keep: Vec<Gc<Node>> = (0..scaled(2_000, 200)).map(node).collect();
    for w in keep.windows(2) {
        link(&w[0], &w[1]);
    }
    for _ in 0..3 {
        for k in &keep {
            drop(k.clone());
            drop(Gc::new(0u8)); // and an allocation, which starts the collections that are due
        }
    }
    let s = gc::stats();
    assert!(
        s.effective_threshold > 50,
        "unproductive collections raise the effective threshold: {s:?}"
    );
    assert!(
        s.effective_threshold <= keep.len(),
        "at most the live objects visited"
    );
    assert_eq!(gc::threshold(), 50, "the user's threshold is unchanged");
    drop(keep);
    // Productive collections bring it back down.
    for i in 0..scaled(20_000, 2_000) {
        let a = node(i);
        link(&a, &a);
    }
    assert_eq!(gc::stats().effective_threshold, 50);
    defaults();
}

// ---- CPython Lib/test/test_gc.py, translated ----

/// test_list: `l = []; l.append(l); del l; assert gc.collect() == 1`
#[test]
fn cpython_test_list() {
    defaults();
    let l = node(0);
    link(&l, &l);
    drop(l);
    assert_eq!(gc::collect(), 1);
}

/// test_dict: `d = {}; d[1] = d; del d; assert gc.collect() == 1`
#[test]
fn cpython_test_dict() {
    struct Dict(RefCell<HashMap<i32, Gc<Dict>>>);
    // SAFETY: visits the map, its only field, once.
    unsafe impl Trace for Dict {
        fn trace(&self, t: &mut Tracer) {
            self.0.trace(t);
        }
    }
    defaults();
    let d = Gc::new(Dict(RefCell::new(HashMap::new())));
    d.0.borrow_mut().insert(1, d.clone());
    drop(d);
    assert_eq!(gc::collect(), 1);
}

/// test_tuple: `l = []; t = (l,); l.append(t); del t, l; assert gc.collect() == 2`
#[test]
fn cpython_test_tuple() {
    enum Obj {
        List(RefCell<Vec<Gc<Obj>>>),
        Tuple(Box<[Gc<Obj>]>),
    }
    // SAFETY: visits the owned `Gc`s of whichever variant, once each.
    unsafe impl Trace for Obj {
        fn trace(&self, t: &mut Tracer) {
            match self {
                Obj::List(l) => l.trace(t),
                Obj::Tuple(items) => items.trace(t),
            }
        }
    }
    defaults();
    let l = Gc::new(Obj::List(RefCell::new(Vec::new())));
    let t = Gc::new(Obj::Tuple(Box::new([l.clone()])));
    if let Obj::List(v) = &*l {
        v.borrow_mut().push(t.clone());
    }
    drop((t, l));
    assert_eq!(gc::collect(), 2);
}

/// test_instance / test_class: `a = A(); a.a = a; del a; assert gc.collect() == 1`, and
/// test_finalizer (PEP 442): a cycle whose objects have finalizers is collected, each finalizer run once.
#[test]
fn cpython_test_instance_and_finalizer() {
    defaults();
    let d = drops();
    let a = node(0);
    link(&a, &a);
    drop(a);
    assert_eq!(gc::collect(), 1);
    assert_eq!(drops(), d + 1, "the finalizer (Drop) ran once");
    assert_eq!(gc::collect(), 0);
}

/// test_get_count: `gc.get_count()` grows with possible garbage and falls to zero after a collection.
#[test]
fn cpython_test_get_count() {
    defaults();
    let keep = node(0);
    let extra = keep.clone();
    assert_eq!(gc::count(), 0);
    drop(extra);
    assert_eq!(gc::count(), 1);
    gc::collect();
    assert_eq!(gc::count(), 0);
    drop(keep);
}

/// test_freeze: `gc.freeze(); assert gc.get_freeze_count() > 0; gc.unfreeze(); == 0`
#[test]
fn cpython_test_freeze() {
    defaults();
    let keep = node(0);
    gc::freeze();
    assert!(gc::get_freeze_count() > 0);
    gc::unfreeze();
    assert_eq!(gc::get_freeze_count(), 0);
    drop(keep);
}

/// test_bug21435-like: garbage with a weak reference to itself; the weakref is cleared, not resurrected.
#[test]
fn cpython_test_weakref_to_garbage_is_cleared() {
    defaults();
    struct Obj {
        me: RefCell<poolgc::gc::Weak<Obj>>,
        cycle: RefCell<Option<Gc<Obj>>>,
    }
    // SAFETY: visits `cycle`, its only owning `Gc`, once.
    unsafe impl Trace for Obj {
        fn trace(&self, t: &mut Tracer) {
            self.cycle.trace(t);
        }
    }
    impl Drop for Obj {
        fn drop(&mut self) {
            assert!(self.me.borrow().upgrade().is_none());
        }
    }
    let o = Gc::new(Obj {
        me: RefCell::new(poolgc::gc::Weak::new()),
        cycle: RefCell::new(None),
    });
    *o.me.borrow_mut() = Gc::downgrade(&o);
    *o.cycle.borrow_mut() = Some(o.clone());
    drop(o);
    assert_eq!(gc::collect(), 1);
}

/// test_trashcan (counting form): a long acyclic chain is freed when its head goes.
#[test]
fn long_chain_freed_by_counting_after_collection() {
    defaults();
    let d = drops();
    let n = scaled(100_000, 500);
    let head = node(0);
    let mut cur = head.clone();
    for i in 1..n {
        let next = node(i);
        link(&cur, &next);
        cur = next;
    }
    link(&cur, &head); // close the ring: collected iteratively by the collector
    drop(cur);
    drop(head);
    assert_eq!(gc::collect(), n);
    assert_eq!(drops(), d + n);
}

#[test]
fn gc_counts_and_trait_forwarding() {
    use std::collections::{BTreeSet, HashSet};
    let a = Gc::new(5);
    let b = Gc::new(7);
    assert!(a < b && a != b && a == Gc::new(5));
    assert_eq!(a.cmp(&b), std::cmp::Ordering::Less);
    assert_eq!(format!("{a} {a:?}"), "5 5");
    let set: HashSet<Gc<i32>> = [a.clone(), Gc::new(5)].into_iter().collect();
    assert_eq!(set.len(), 1);
    assert!(set.contains(&5), "Borrow<T>");
    let tree: BTreeSet<Gc<i32>> = [b.clone(), a.clone()].into_iter().collect();
    assert_eq!(*tree.first().unwrap(), a);
    let r: &i32 = a.as_ref();
    assert_eq!(*r, 5);
    let a2 = a.clone();
    assert!(Gc::ptr_eq(&a, &a2) && !Gc::ptr_eq(&a, &Gc::new(5)));
    assert_eq!(
        Gc::strong_count(&a),
        4,
        "a, a2, and the clones in the two sets"
    );
    let w = Gc::downgrade(&a);
    assert_eq!(Gc::weak_count(&a), 1);
    assert_eq!(w.clone().weak_count(), 2);
    assert!(poolgc::gc::Weak::<i32>::new().upgrade().is_none());
    assert!(format!("{:p}", a).starts_with("0x"));
    let s: Gc<String> = Gc::default();
    assert_eq!(*s, "");
}

#[test]
fn boxes_come_from_the_pools() {
    #[cfg(all(feature = "os", unix))]
    {
        let pools = gc::box_allocator().expect("a dedicated PoolAlloc with `os`");
        let before = pools.stats().allocations;
        let a = Gc::new([0u64; 4]);
        assert!(pools.stats().allocations > before);
        drop(a);
        pools.check().unwrap();
    }
}

/// A node that counts its drops in a process-wide counter (to be read after its thread is gone).
struct Counted {
    drops: &'static AtomicUsize,
    next: RefCell<Option<Gc<Counted>>>,
}
impl Drop for Counted {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::Relaxed);
    }
}
// SAFETY: visits its one `Gc` field once.
unsafe impl Trace for Counted {
    fn trace(&self, t: &mut Tracer) {
        self.next.trace(t);
    }
}

/// A garbage two-cycle of `Counted`; returns a handle to one member (the caller drops it).
fn counted_cycle(drops: &'static AtomicUsize) -> Gc<Counted> {
    let a = Gc::new(Counted {
        drops,
        next: RefCell::new(None),
    });
    let b = Gc::new(Counted {
        drops,
        next: RefCell::new(Some(a.clone())),
    });
    *a.next.borrow_mut() = Some(b);
    a
}

#[test]
fn thread_exit_collects_even_when_disabled() {
    static DROPS: AtomicUsize = AtomicUsize::new(0);
    std::thread::spawn(|| {
        gc::disable();
        drop(counted_cycle(&DROPS));
        assert_eq!(gc::count(), 1);
    })
    .join()
    .unwrap();
    assert_eq!(DROPS.load(Ordering::Relaxed), 2, "the last collection ran");
}

#[test]
fn thread_exit_collects_a_cycle_held_only_by_a_callback() {
    static DROPS: AtomicUsize = AtomicUsize::new(0);
    static CALLS: AtomicUsize = AtomicUsize::new(0);
    std::thread::spawn(|| {
        let held = counted_cycle(&DROPS);
        gc::add_callback(move |_, _| {
            let _ = &held; // the cycle's last outside reference, dropped with the callback
            CALLS.fetch_add(1, Ordering::Relaxed);
        });
    })
    .join()
    .unwrap();
    assert_eq!(
        CALLS.load(Ordering::Relaxed),
        0,
        "callbacks are not called at thread exit"
    );
    assert_eq!(DROPS.load(Ordering::Relaxed), 2, "the cycle was collected");
}
