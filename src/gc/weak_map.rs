//! Weak collections: [`WeakValueMap`], [`WeakKeyMap`] and [`WeakSet`] (`weakref.WeakValueDictionary`,
//! `WeakKeyDictionary`, `WeakSet`), on `alloc::collections::BTreeMap`.
//!
//! Each entry holds a [`Weak`] whose callback removes the entry when its referent dies. The callback
//! may run while the collection is borrowed (a `Gc` dropped inside one of its methods, or a value's
//! `Drop` using it): then it only marks the collection dirty, and the next method call purges every
//! dead entry first. Methods never run user code (drop a handle or a value) while the map is borrowed.

use alloc::collections::BTreeMap;
use alloc::rc::{Rc, Weak as RcWeak};
use alloc::vec::Vec;
use core::cell::{Cell, RefCell};
use core::fmt;

use super::{Gc, Weak};

/// The shared part of a weak collection: what its entries' callbacks reach.
struct Inner<K, E> {
    map: RefCell<BTreeMap<K, E>>,
    /// A callback found the map borrowed: some dead entry may still be in it.
    dirty: Cell<bool>,
}

impl<K: Ord, E> Inner<K, E> {
    fn new() -> Rc<Self> {
        Rc::new(Inner {
            map: RefCell::new(BTreeMap::new()),
            dirty: Cell::new(false),
        })
    }

    /// An entry's referent died: removes the entry under `key` if `dead` says it is dead (the key may
    /// have been given a live referent since), or marks the map dirty if it is borrowed.
    fn on_death(&self, key: &K, dead: impl Fn(&E) -> bool) {
        let removed = match self.map.try_borrow_mut() {
            Ok(mut m) => match m.get(key) {
                Some(e) if dead(e) => m.remove(key),
                _ => None,
            },
            Err(_) => {
                self.dirty.set(true);
                None
            }
        };
        drop(removed);
    }

    /// Removes every dead entry if a callback found the map borrowed.
    fn purge(&self, dead: impl Fn(&E) -> bool)
    where
        K: Clone,
    {
        if !self.dirty.replace(false) {
            return;
        }
        let gone: Vec<E> = {
            let mut m = self.map.borrow_mut();
            let keys: Vec<K> = m
                .iter()
                .filter(|(_, e)| dead(e))
                .map(|(k, _)| k.clone())
                .collect();
            keys.iter().filter_map(|k| m.remove(k)).collect()
        };
        drop(gone);
    }
}

/// A map whose values are held weakly: an entry goes away when its value dies
/// (`weakref.WeakValueDictionary`). A cache of objects that lives no longer than the objects.
///
/// ```
/// use poolgc::gc::{Gc, WeakValueMap};
/// let mut cache = WeakValueMap::new();
/// let obj = Gc::new(String::from("big"));
/// cache.insert(1, &obj);
/// assert_eq!(cache.get(&1).as_deref().map(String::as_str), Some("big"));
/// drop(obj);
/// assert!(cache.get(&1).is_none() && cache.is_empty());
/// ```
pub struct WeakValueMap<K: Ord + Clone + 'static, V: ?Sized + 'static> {
    inner: Rc<Inner<K, Weak<V>>>,
}

fn weak_dead<V: ?Sized>(w: &Weak<V>) -> bool {
    w.strong_count() == 0
}

impl<K: Ord + Clone + 'static, V: ?Sized + 'static> WeakValueMap<K, V> {
    /// An empty map.
    pub fn new() -> Self {
        WeakValueMap {
            inner: Inner::new(),
        }
    }

    fn map(&self) -> &RefCell<BTreeMap<K, Weak<V>>> {
        self.inner.purge(weak_dead);
        &self.inner.map
    }

    /// Maps `key` to `value` (held weakly); returns the value it replaces, if alive.
    pub fn insert(&self, key: K, value: &Gc<V>) -> Option<Gc<V>> {
        let inner = Rc::downgrade(&self.inner);
        let k = key.clone();
        let w = Gc::downgrade_with(value, move || {
            if let Some(i) = inner.upgrade() {
                i.on_death(&k, weak_dead);
            }
        });
        let old = self.map().borrow_mut().insert(key, w);
        old.and_then(|o| o.upgrade())
    }

    /// The value under `key`, if it is alive.
    pub fn get(&self, key: &K) -> Option<Gc<V>> {
        self.map().borrow().get(key).and_then(Weak::upgrade)
    }

    /// Whether a live value is under `key`.
    pub fn contains_key(&self, key: &K) -> bool {
        self.map().borrow().get(key).is_some_and(|w| !weak_dead(w))
    }

    /// Removes the entry under `key`; returns its value if alive.
    pub fn remove(&self, key: &K) -> Option<Gc<V>> {
        let old = self.map().borrow_mut().remove(key);
        old.and_then(|o| o.upgrade())
    }

    /// The number of entries (each one's value alive, except while a collection is dropping it).
    pub fn len(&self) -> usize {
        self.map().borrow().len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The keys and live values, in key order (a snapshot: `WeakValueDictionary.items()`).
    pub fn items(&self) -> Vec<(K, Gc<V>)> {
        let m = self.map().borrow();
        m.iter()
            .filter_map(|(k, w)| Some((k.clone(), w.upgrade()?)))
            .collect()
    }

    /// Removes every entry.
    pub fn clear(&self) {
        let old = core::mem::take(&mut *self.map().borrow_mut());
        drop(old);
    }
}

impl<K: Ord + Clone + 'static, V: ?Sized + 'static> Default for WeakValueMap<K, V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Ord + Clone + fmt::Debug + 'static, V: ?Sized + 'static> fmt::Debug for WeakValueMap<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys: Vec<K> = self.items().into_iter().map(|(k, _)| k).collect();
        f.debug_struct("WeakValueMap").field("keys", &keys).finish()
    }
}

/// A map whose keys are objects held weakly, compared by identity ([`Gc::ptr_eq`]): an entry (and its
/// value) goes away when its key dies (`weakref.WeakKeyDictionary`). Extra data attached to objects
/// without changing them. A value that holds a `Gc` to its own key keeps the entry alive for ever, as in
/// Python.
///
/// ```
/// use poolgc::gc::{Gc, WeakKeyMap};
/// let notes = WeakKeyMap::new();
/// let obj = Gc::new(7u32);
/// notes.insert(&obj, "seven");
/// assert_eq!(notes.get(&obj), Some("seven"));
/// drop(obj);
/// assert!(notes.is_empty()); // the note was dropped with the key
/// ```
pub struct WeakKeyMap<K: ?Sized + 'static, V: 'static> {
    inner: Rc<Inner<usize, (Weak<K>, V)>>,
}

fn key_dead<K: ?Sized, V>(e: &(Weak<K>, V)) -> bool {
    e.0.strong_count() == 0
}

/// The identity of an object: its box address (a `Weak` in the map keeps the box, so no other object
/// gets the address while the entry exists).
fn addr<T: ?Sized>(obj: &Gc<T>) -> usize {
    Gc::as_ptr(obj) as *const u8 as usize
}

impl<K: ?Sized + 'static, V: 'static> WeakKeyMap<K, V> {
    /// An empty map.
    pub fn new() -> Self {
        WeakKeyMap {
            inner: Inner::new(),
        }
    }

    fn map(&self) -> &RefCell<BTreeMap<usize, (Weak<K>, V)>> {
        self.inner.purge(key_dead);
        &self.inner.map
    }

    /// Maps `key` (held weakly) to `value`; returns the value it replaces.
    pub fn insert(&self, key: &Gc<K>, value: V) -> Option<V> {
        let a = addr(key);
        if let Some(e) = self.map().borrow_mut().get_mut(&a) {
            return Some(core::mem::replace(&mut e.1, value));
        }
        let inner: RcWeak<Inner<usize, (Weak<K>, V)>> = Rc::downgrade(&self.inner);
        let w = Gc::downgrade_with(key, move || {
            if let Some(i) = inner.upgrade() {
                i.on_death(&a, key_dead);
            }
        });
        self.map().borrow_mut().insert(a, (w, value));
        None
    }

    /// A copy of the value under `key`.
    pub fn get(&self, key: &Gc<K>) -> Option<V>
    where
        V: Clone,
    {
        self.map().borrow().get(&addr(key)).map(|e| e.1.clone())
    }

    /// Runs `f` on the value under `key`, if any (`f` must not use this map).
    pub fn with<R>(&self, key: &Gc<K>, f: impl FnOnce(&mut V) -> R) -> Option<R> {
        self.map()
            .borrow_mut()
            .get_mut(&addr(key))
            .map(|e| f(&mut e.1))
    }

    /// Whether `key` has an entry.
    pub fn contains_key(&self, key: &Gc<K>) -> bool {
        self.map().borrow().contains_key(&addr(key))
    }

    /// Removes `key`'s entry; returns its value.
    pub fn remove(&self, key: &Gc<K>) -> Option<V> {
        let old = self.map().borrow_mut().remove(&addr(key));
        old.map(|(_, v)| v)
    }

    /// The number of entries (each one's key alive, except while a collection is dropping it).
    pub fn len(&self) -> usize {
        self.map().borrow().len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The live keys, in no particular order (a snapshot).
    pub fn keys(&self) -> Vec<Gc<K>> {
        self.map()
            .borrow()
            .values()
            .filter_map(|e| e.0.upgrade())
            .collect()
    }

    /// Removes every entry.
    pub fn clear(&self) {
        let old = core::mem::take(&mut *self.map().borrow_mut());
        drop(old);
    }
}

impl<K: ?Sized + 'static, V: 'static> Default for WeakKeyMap<K, V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: ?Sized + 'static, V: 'static> fmt::Debug for WeakKeyMap<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WeakKeyMap")
            .field("len", &self.len())
            .finish()
    }
}

/// A set of objects held weakly, compared by identity: an object leaves the set when it dies
/// (`weakref.WeakSet`).
///
/// ```
/// use poolgc::gc::{Gc, WeakSet};
/// let live = WeakSet::new();
/// let a = Gc::new(1);
/// live.add(&a);
/// assert!(live.contains(&a));
/// drop(a);
/// assert_eq!(live.len(), 0);
/// ```
pub struct WeakSet<T: ?Sized + 'static> {
    map: WeakKeyMap<T, ()>,
}

impl<T: ?Sized + 'static> WeakSet<T> {
    /// An empty set.
    pub fn new() -> Self {
        WeakSet {
            map: WeakKeyMap::new(),
        }
    }

    /// Adds `obj`; returns whether it was not in the set.
    pub fn add(&self, obj: &Gc<T>) -> bool {
        self.map.insert(obj, ()).is_none()
    }

    /// Whether `obj` is in the set.
    pub fn contains(&self, obj: &Gc<T>) -> bool {
        self.map.contains_key(obj)
    }

    /// Removes `obj`; returns whether it was in the set.
    pub fn remove(&self, obj: &Gc<T>) -> bool {
        self.map.remove(obj).is_some()
    }

    /// The number of objects in the set.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The objects in the set, in no particular order (a snapshot).
    pub fn to_vec(&self) -> Vec<Gc<T>> {
        self.map.keys()
    }

    /// Removes every object.
    pub fn clear(&self) {
        self.map.clear();
    }
}

impl<T: ?Sized + 'static> Default for WeakSet<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: ?Sized + 'static> fmt::Debug for WeakSet<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WeakSet").field("len", &self.len()).finish()
    }
}
