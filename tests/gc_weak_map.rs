//! Weak collections: entries leave when their referent dies, by count or by collection.
#![cfg(feature = "std")]

mod gc_util;

use gc_util::{link, node, settle, Node};
use poolgc::gc::{self, Gc, WeakKeyMap, WeakSet, WeakValueMap};
use std::rc::Rc;

#[test]
fn weak_value_map_drops_entries_whose_value_died() {
    let m = WeakValueMap::new();
    let a = Gc::new(String::from("a"));
    let b = Gc::new(String::from("b"));
    assert!(m.insert("a", &a).is_none());
    m.insert("b", &b);
    assert_eq!(m.len(), 2);
    drop(a);
    assert_eq!(m.len(), 1);
    assert!(m.get(&"a").is_none() && !m.contains_key(&"a"));
    assert_eq!(m.get(&"b").as_deref().map(String::as_str), Some("b"));
    let items = m.items();
    assert_eq!(items.len(), 1);
    assert!(Gc::ptr_eq(&items[0].1, &b));
}

#[test]
fn weak_value_map_replaced_value_does_not_remove_the_new_entry() {
    let m = WeakValueMap::new();
    let old = Gc::new(1);
    let new = Gc::new(2);
    m.insert(0u8, &old);
    let replaced = m.insert(0u8, &new).expect("old value alive");
    assert!(Gc::ptr_eq(&replaced, &old));
    drop((old, replaced));
    assert_eq!(m.get(&0).as_deref(), Some(&2));
    drop(new);
    assert!(m.is_empty());
}

#[test]
fn weak_value_map_entries_of_a_collected_cycle_go() {
    settle();
    let m: WeakValueMap<usize, Node> = WeakValueMap::new();
    let a = node(1);
    let b = node(2);
    link(&a, &b);
    link(&b, &a);
    m.insert(1, &a);
    m.insert(2, &b);
    drop((a, b));
    assert_eq!(m.len(), 2, "only the collector can free a cycle");
    assert_eq!(gc::collect(), 2);
    assert!(m.is_empty());
}

#[test]
fn weak_key_map_drops_the_value_with_the_key() {
    let m = WeakKeyMap::new();
    let k1 = Gc::new(1);
    let k2 = Gc::new(1); // equal, but another object
    let marker = Rc::new(());
    m.insert(&k1, marker.clone());
    m.insert(&k2, marker.clone());
    assert_eq!(m.len(), 2);
    assert_eq!(Rc::strong_count(&marker), 3);
    drop(k1);
    assert_eq!(m.len(), 1);
    assert_eq!(
        Rc::strong_count(&marker),
        2,
        "the dead key's value was kept"
    );
    assert!(m.contains_key(&k2));
    assert_eq!(m.with(&k2, |v| Rc::ptr_eq(v, &marker)), Some(true));
    assert!(m.remove(&k2).is_some());
    assert_eq!(Rc::strong_count(&marker), 1);
}

#[test]
fn weak_set_forgets_dead_members() {
    let s = WeakSet::new();
    let a = Gc::new("a");
    let b = Gc::new("b");
    assert!(s.add(&a));
    assert!(!s.add(&a));
    s.add(&b);
    drop(a);
    assert_eq!(s.len(), 1);
    assert!(Gc::ptr_eq(&s.to_vec()[0], &b));
    assert!(s.remove(&b) && s.is_empty());
}

/// A key dying while the map is borrowed (here inside `with`): its callback cannot remove the entry
/// then, so it marks the map, and the next call purges it.
#[test]
fn a_key_dying_while_the_map_is_busy_is_purged_on_the_next_call() {
    let m = WeakKeyMap::new();
    let k1 = Gc::new(1);
    let mut k2 = Some(Gc::new(2));
    m.insert(&k1, "one");
    m.insert(k2.as_ref().unwrap(), "two");
    m.with(&k1, |_| drop(k2.take()));
    assert_eq!(m.len(), 1);
    assert_eq!(m.keys().len(), 1);
}

#[test]
fn weak_value_map_entry_of_a_self_cycle_goes_when_collected() {
    settle();
    let m = WeakValueMap::new();
    let a = node(5);
    link(&a, &a);
    m.insert(5, &a);
    drop(a);
    assert_eq!(m.len(), 1);
    gc::collect();
    assert!(m.is_empty());
}
