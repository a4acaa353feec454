//! The gc module's introspection: `GcAny`, `is_tracked`, `getsizeof`, `get_referents`, `DEBUG_SAVEALL` /
//! `garbage`, the DOT graphs, and (feature `gc-introspect`) `get_objects`, `get_referrers`, the census.
#![cfg(feature = "std")] // per-thread collector state; the tests rely on each test thread having its own

mod gc_util;

use gc_util::{drops, link, node, settle, Node};
use poolgc::gc::{self, Gc, GcAny, Trace, Tracer};
use std::cell::RefCell;

#[test]
fn is_tracked_follows_cpython() {
    assert!(
        !gc::is_tracked(&Gc::new(7u64)),
        "acyclic types are not tracked"
    );
    assert!(!gc::is_tracked(&Gc::new(String::from("s"))));
    let n = node(1);
    assert!(gc::is_tracked(&n));
    assert!(GcAny::from(&n).is_tracked());
    // An immortal box is never freed: Miri's leak check (boxes from its allocator, without `os`) says so.
    if cfg!(feature = "os") || !cfg!(miri) {
        Gc::make_immortal(&n);
        assert!(!gc::is_tracked(&n), "immortal objects are not tracked");
    }
}

#[test]
fn getsizeof_is_the_allocation() {
    let empty = gc::getsizeof(&Gc::new([0u64; 0]));
    assert!(empty >= 20, "the header is counted");
    assert_eq!(gc::getsizeof(&Gc::new([0u64; 10])) - empty, 80);
    let s0: Gc<[u64]> = Gc::from(Vec::<u64>::new());
    let s10: Gc<[u64]> = Gc::from(vec![0u64; 10]);
    assert_eq!(gc::getsizeof(&s10) - gc::getsizeof(&s0), 80);
    assert_eq!(
        GcAny::from(&s10).size(),
        gc::getsizeof(&s10),
        "GcAny::size is getsizeof"
    );
}

#[test]
fn type_names_and_downcast() {
    let v = Gc::new(vec![1u32]);
    let any = GcAny::from(v.clone());
    assert_eq!(any.type_name(), "alloc::vec::Vec<u32>");
    assert!(Gc::ptr_eq(&any.downcast::<Vec<u32>>().unwrap(), &v));
    assert!(any.downcast::<Vec<u64>>().is_none());
    assert_eq!(Gc::strong_count(&v), 2, "the GcAny holds one count");
    drop(any);
    assert_eq!(Gc::strong_count(&v), 1);
    let s: Gc<str> = Gc::from("text");
    assert_eq!(GcAny::from(&s).type_name(), "str");
    let sl: Gc<[u16]> = Gc::from(&[1u16, 2][..]);
    assert_eq!(GcAny::from(&sl).type_name(), "[u16]");
    assert_eq!(
        gc::short_type_name("alloc::vec::Vec<gc_introspect::Thing>"),
        "Vec<Thing>"
    );
    assert_eq!(
        gc::short_type_name("core::cell::RefCell<(u8, [alloc::string::String; 2])>"),
        "RefCell<(u8, [String; 2])>"
    );
}

/// Holds a tracked and an acyclic `Gc`.
struct Mixed {
    name: Gc<String>,
    next: RefCell<Option<Gc<Node>>>,
}
// SAFETY: visits both `Gc` fields, once each.
unsafe impl Trace for Mixed {
    fn trace(&self, t: &mut Tracer) {
        self.name.trace(t);
        self.next.trace(t);
    }
}

#[test]
fn get_referents_reports_every_edge_green_ones_too() {
    let (a, b) = (node(1), node(2));
    let hub = node(0);
    link(&hub, &a);
    link(&hub, &b);
    link(&hub, &a);
    let refs = gc::get_referents(&hub);
    let ids: Vec<usize> = refs
        .iter()
        .map(|r| r.downcast::<Node>().unwrap().id)
        .collect();
    assert_eq!(ids, [1, 2, 1]);
    let name = Gc::new(String::from("n"));
    let m = Gc::new(Mixed {
        name: name.clone(),
        next: RefCell::new(Some(a.clone())),
    });
    let refs = GcAny::from(&m).referents();
    assert_eq!(refs.len(), 2, "the acyclic String is a referent too");
    assert!(Gc::ptr_eq(&refs[0].downcast::<String>().unwrap(), &name));
    assert!(gc::get_referents(&name).is_empty());
}

/// A ring of `n` nodes, ids `base..base + n`, with no outside handle left.
fn ring(base: usize, n: usize) {
    let nodes: Vec<_> = (base..base + n).map(node).collect();
    for i in 0..n {
        link(&nodes[i], &nodes[(i + 1) % n]);
    }
}

#[test]
fn saveall_keeps_the_garbage_in_gc_garbage() {
    settle();
    drop(gc::take_garbage());
    gc::set_debug(gc::DEBUG_SAVEALL);
    assert_eq!(gc::get_debug(), gc::DEBUG_SAVEALL);
    let before = drops();
    ring(100, 3);
    assert_eq!(gc::collect(), 3, "found as garbage");
    assert_eq!(drops(), before, "but not dropped");
    let saved = gc::garbage();
    assert_eq!(saved.len(), 3);
    let mut ids: Vec<usize> = saved
        .iter()
        .map(|o| o.downcast::<Node>().unwrap().id)
        .collect();
    ids.sort();
    assert_eq!(ids, [100, 101, 102], "alive and readable");
    let mut dot = String::new();
    gc::write_dot(&saved, None, &mut dot).unwrap();
    assert_eq!(
        dot.matches(" -> ").count(),
        3,
        "the cycle's three edges:\n{dot}"
    );
    assert_eq!(dot.matches("label=").count(), 3);
    // Still saved on the next collection: nothing new is found, nothing freed.
    drop(saved);
    assert_eq!(gc::collect(), 0);
    assert_eq!(gc::garbage().len(), 3);
    gc::set_debug(0);
    drop(gc::take_garbage());
    assert_eq!(gc::collect(), 3, "let go, the cycle is collected");
    assert_eq!(drops(), before + 3);
    assert!(gc::garbage().is_empty());
}

#[test]
fn dropped_object_has_no_referents() {
    // A Drop that reaches a garbage peer (found by `collect`) sees it dropped.
    thread_local!(static SEEN: RefCell<Option<(bool, usize)>> = const { RefCell::new(None) });
    struct Peek(RefCell<Option<Gc<Peek>>>, bool);
    // SAFETY: visits its one `Gc` field.
    unsafe impl Trace for Peek {
        fn trace(&self, t: &mut Tracer) {
            self.0.trace(t);
        }
    }
    impl Drop for Peek {
        fn drop(&mut self) {
            if self.1 {
                if let Some(p) = self.0.borrow().as_ref() {
                    let any = GcAny::from(p);
                    SEEN.with(|s| {
                        *s.borrow_mut() = Some((any.is_dropped(), any.referents().len()))
                    });
                }
            }
        }
    }
    let a = Gc::new(Peek(RefCell::new(None), false));
    let b = Gc::new(Peek(RefCell::new(Some(a.clone())), true));
    *a.0.borrow_mut() = Some(b.clone());
    drop((a, b));
    gc::collect();
    let seen = SEEN.with(|s| *s.borrow());
    assert!(
        matches!(seen, Some((true, 0)) | Some((false, 1))),
        "{seen:?}"
    );
}

#[cfg(feature = "gc-introspect")]
mod registry {
    use super::*;

    struct Marker(#[allow(dead_code)] u64);
    // SAFETY: owns no `Gc`.
    unsafe impl Trace for Marker {
        fn trace(&self, _: &mut Tracer) {}
    }

    fn count_nodes(objs: &[GcAny]) -> usize {
        objs.iter()
            .filter(|o| o.downcast::<Node>().is_some())
            .count()
    }

    #[test]
    fn get_objects_lists_tracked_live_objects() {
        settle();
        let base = count_nodes(&gc::get_objects());
        let nodes: Vec<_> = (0..10).map(node).collect();
        let green = Gc::new(5u64);
        let objs = gc::get_objects();
        assert_eq!(count_nodes(&objs), base + 10);
        assert!(!objs.iter().any(|o| o.addr() == GcAny::from(&green).addr()));
        drop(objs);
        // Freed in an order that unlinks heads, tails and middles.
        let mut nodes: Vec<Option<Gc<Node>>> = nodes.into_iter().map(Some).collect();
        for i in [9, 0, 5, 4, 6, 1, 8, 2, 3, 7] {
            nodes[i] = None;
            let left = nodes.iter().filter(|n| n.is_some()).count();
            assert_eq!(count_nodes(&gc::get_objects()), base + left);
        }
    }

    #[test]
    fn census_counts_every_live_object() {
        settle();
        assert_eq!(
            gc::census().total().0,
            gc::stats().live,
            "every live box is on the list"
        );
        let before = gc::census();
        let kept: Vec<_> = (0..5).map(|i| Gc::new(Marker(i))).collect();
        let s: Gc<str> = Gc::from("abc");
        let after = gc::census();
        assert_eq!(after.total().0, gc::stats().live);
        let growth = after.growth_since(&before);
        let m = growth
            .iter()
            .find(|g| g.type_name.ends_with("Marker"))
            .unwrap();
        assert_eq!(m.count_delta, 5);
        assert_eq!(m.bytes_delta, 5 * gc::getsizeof(&kept[0]) as isize);
        assert_eq!(growth[0].type_name, m.type_name, "largest growth first");
        assert!(growth
            .iter()
            .any(|g| g.type_name == "str" && g.count_delta == 1));
        drop((kept, s));
        let shrink = gc::census().growth_since(&after);
        assert!(shrink
            .iter()
            .any(|g| g.type_name.ends_with("Marker") && g.count_delta == -5 && g.count == 0));
        let table = after.to_string();
        assert!(table.contains("Marker") && table.lines().last().unwrap().starts_with("total"));
    }

    #[test]
    fn get_referrers_finds_exactly_the_referrers() {
        let (a, b, c, d) = (node(1), node(2), node(3), node(4));
        link(&a, &c);
        link(&b, &c);
        link(&b, &c);
        link(&d, &a);
        let mut ids: Vec<usize> = gc::get_referrers(&c)
            .iter()
            .map(|o| o.downcast::<Node>().unwrap().id)
            .collect();
        ids.sort();
        assert_eq!(ids, [1, 2], "each referrer once");
        let leaf = Gc::new(String::from("leaf"));
        let m = Gc::new(Mixed {
            name: leaf.clone(),
            next: RefCell::new(None),
        });
        let who = gc::get_referrers(&leaf);
        assert_eq!(who.len(), 1, "acyclic objects have referrers too");
        assert!(GcAny::ptr_eq(&who[0], &GcAny::from(&m)));
    }

    #[test]
    fn backrefs_draw_the_chain_that_keeps_an_object_alive() {
        let chain: Vec<_> = (0..4).map(node).collect();
        for w in chain.windows(2) {
            link(&w[0], &w[1]);
        }
        let target = chain[3].clone();
        let root = chain[0].clone();
        drop(chain);
        let mut dot = String::new();
        gc::write_backrefs_dot(&target, 2, None, &mut dot).unwrap();
        assert_eq!(dot.matches(" -> ").count(), 2, "two steps back:\n{dot}");
        dot.clear();
        let id = |o: &GcAny| format!("id \"{}\"", o.downcast::<Node>().unwrap().id);
        gc::write_backrefs_dot(&target, 10, Some(&id), &mut dot).unwrap();
        assert!(
            dot.contains("Node\\nid \\\"0\\\"\\n"),
            "escaped extra line:\n{dot}"
        );
        assert_eq!(dot.matches(" -> ").count(), 3, "the whole chain:\n{dot}");
        assert_eq!(dot.matches("label=").count(), 4);
        // The root and the target are held by locals here; the middle ones only by references.
        assert_eq!(dot.matches("1 outside").count(), 2, "{dot}");
        let root_id = format!("n{:x} [", GcAny::from(&root).addr());
        let root_line = dot.lines().find(|l| l.contains(&root_id)).unwrap();
        assert!(root_line.contains("1 outside"), "{root_line}");
    }

    #[test]
    fn other_threads_objects_are_not_listed() {
        let mine = node(77);
        let theirs = std::thread::spawn(|| {
            let n = node(78);
            let objs = gc::get_objects();
            let ids: Vec<usize> = objs
                .iter()
                .filter_map(|o| o.downcast::<Node>())
                .map(|n| n.id)
                .collect();
            drop(n);
            ids
        })
        .join()
        .unwrap();
        assert!(theirs.contains(&78) && !theirs.contains(&77));
        drop(mine);
    }
}
