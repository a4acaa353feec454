//! What needs the list of every live object (feature `gc-introspect`): `get_objects`, `get_referrers`,
//! and a census of live objects by type (objgraph's `most_common_types` / `show_growth`, pympler's
//! summary).

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::fmt;
use core::ptr::NonNull;

use super::gcbox::{Flags, Header};
use super::introspect::{header_of, is_tracked_box, referents_of, size_of_box, GcAny, GcObject};
use super::registry;

/// Every live object this thread's collector tracks (`gc.get_objects()`), newest first: not those of
/// acyclic types nor immortal ones (see [`is_tracked`](super::is_tracked)). With `std`, objects made by
/// other threads are not listed (each thread has its own collector).
///
/// ```
/// use poolgc::gc::{self, Gc};
/// use std::cell::RefCell;
///
/// let list = Gc::new(RefCell::new(Vec::<Gc<u8>>::new()));
/// let all = gc::get_objects();
/// assert!(all.iter().any(|o| o.downcast::<RefCell<Vec<Gc<u8>>>>().is_some()));
/// assert!(!gc::get_objects().iter().any(|o| o.type_name() == "u8")); // acyclic: not tracked
/// ```
pub fn get_objects() -> Vec<GcAny> {
    registry::snapshot()
        .into_iter()
        .filter(|&h| is_tracked_box(h))
        .map(GcAny::new_counted)
        .collect()
}

/// The tracked objects that reference `obj` (`gc.get_referrers`): those whose `trace` reports it, each
/// once, newest first.
///
/// ```
/// use poolgc::gc::{self, Gc, GcAny};
/// use std::cell::RefCell;
///
/// let leaf = Gc::new(String::from("leaf"));
/// let holder = Gc::new(RefCell::new(vec![leaf.clone()]));
/// let who = gc::get_referrers(&leaf);
/// assert_eq!(who.len(), 1);
/// assert!(GcAny::ptr_eq(&who[0], &GcAny::from(&holder)));
/// ```
pub fn get_referrers(obj: &impl GcObject) -> Vec<GcAny> {
    let target = header_of(obj);
    tracked_boxes()
        .into_iter()
        .filter(|&h| referents_of(h).contains(&target))
        .map(GcAny::new_counted)
        .collect()
}

/// This thread's tracked boxes. `trace` may run over them afterwards: its contract (no handle made or
/// dropped while tracing) keeps every one allocated meanwhile.
pub(crate) fn tracked_boxes() -> Vec<NonNull<Header>> {
    registry::snapshot()
        .into_iter()
        .filter(|&h| is_tracked_box(h))
        .collect()
}

/// Every edge between this thread's tracked objects and what they reference (green objects included),
/// as `(from, to)`: the graph `show_backrefs` draws.
pub(crate) fn all_edges() -> Vec<(NonNull<Header>, NonNull<Header>)> {
    let mut edges = Vec::new();
    for h in tracked_boxes() {
        for to in referents_of(h) {
            edges.push((h, to));
        }
    }
    edges
}

/// Live objects of one type: an entry of a [`Census`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TypeCount {
    /// `core::any::type_name` of the type.
    pub type_name: &'static str,
    /// Objects of it alive.
    pub count: usize,
    /// Bytes their allocations take ([`getsizeof`](super::getsizeof) summed).
    pub bytes: usize,
}

/// Live objects of this thread by type, most numerous first (objgraph's `most_common_types`, pympler's
/// `summary`): every live `Gc` object, tracked or not (a `Gc<String>` counts), except those whose value
/// is dropped. Print it, or compare two with [`growth_since`](Census::growth_since).
///
/// ```
/// use poolgc::gc::{self, Gc};
///
/// let before = gc::census();
/// let names: Vec<Gc<String>> = (0..3).map(|i| Gc::new(i.to_string())).collect();
/// let after = gc::census();
/// let growth = after.growth_since(&before);
/// assert_eq!(growth[0].type_name, "alloc::string::String");
/// assert_eq!(growth[0].count_delta, 3);
/// println!("{after}");
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Census {
    /// One entry per type, by count (then bytes) descending, then by name.
    pub types: Vec<TypeCount>,
}

/// How one type's live objects changed between two censuses: an entry of [`Census::growth_since`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Growth {
    /// `core::any::type_name` of the type.
    pub type_name: &'static str,
    /// Objects of it alive in the later census.
    pub count: usize,
    /// Change in the number of objects.
    pub count_delta: isize,
    /// Change in their bytes.
    pub bytes_delta: isize,
}

/// Takes a census of this thread's live objects (see [`Census`]).
pub fn census() -> Census {
    let mut by_type: BTreeMap<&'static str, (usize, usize)> = BTreeMap::new();
    for h in registry::snapshot() {
        // SAFETY: boxes on the list are allocated.
        let hr = unsafe { h.as_ref() };
        if hr.has(Flags::DROPPED) {
            continue;
        }
        let e = by_type.entry((hr.vtable.type_name)()).or_default();
        e.0 += 1;
        e.1 += size_of_box(h);
    }
    let mut types: Vec<TypeCount> = by_type
        .into_iter()
        .map(|(type_name, (count, bytes))| TypeCount {
            type_name,
            count,
            bytes,
        })
        .collect();
    types.sort_by(|a, b| {
        (b.count, b.bytes)
            .cmp(&(a.count, a.bytes))
            .then(a.type_name.cmp(b.type_name))
    });
    Census { types }
}

impl Census {
    /// The `n` most numerous types (`objgraph.most_common_types(limit=n)`).
    pub fn most_common(&self, n: usize) -> &[TypeCount] {
        &self.types[..n.min(self.types.len())]
    }

    /// Objects alive in all, and their bytes.
    pub fn total(&self) -> (usize, usize) {
        self.types
            .iter()
            .fold((0, 0), |(c, b), t| (c + t.count, b + t.bytes))
    }

    /// The types whose number of live objects changed since `earlier`, largest growth first
    /// (objgraph's `show_growth`, comparing against a census you kept rather than a hidden peak).
    pub fn growth_since(&self, earlier: &Census) -> Vec<Growth> {
        let mut before: BTreeMap<&str, (usize, usize)> = earlier
            .types
            .iter()
            .map(|t| (t.type_name, (t.count, t.bytes)))
            .collect();
        let mut out = Vec::new();
        for t in &self.types {
            let (c0, b0) = before.remove(t.type_name).unwrap_or((0, 0));
            out.push(Growth {
                type_name: t.type_name,
                count: t.count,
                count_delta: t.count as isize - c0 as isize,
                bytes_delta: t.bytes as isize - b0 as isize,
            });
        }
        for t in &earlier.types {
            if before.contains_key(t.type_name) {
                out.push(Growth {
                    type_name: t.type_name,
                    count: 0,
                    count_delta: -(t.count as isize),
                    bytes_delta: -(t.bytes as isize),
                });
            }
        }
        out.retain(|g| g.count_delta != 0);
        out.sort_by(|a, b| {
            b.count_delta
                .cmp(&a.count_delta)
                .then(a.type_name.cmp(b.type_name))
        });
        out
    }
}

impl fmt::Display for Census {
    /// A table like `objgraph.show_most_common_types()`: type, count, bytes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{:<48} {:>10} {:>12}", "type", "objects", "bytes")?;
        for t in &self.types {
            writeln!(f, "{:<48} {:>10} {:>12}", t.type_name, t.count, t.bytes)?;
        }
        let (c, b) = self.total();
        writeln!(f, "{:<48} {:>10} {:>12}", "total", c, b)
    }
}
