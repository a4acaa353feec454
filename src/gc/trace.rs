//! [`Trace`]: how the collector finds the `Gc`s a value owns, and the impls for std types.

use alloc::boxed::Box;
use alloc::collections::{BTreeMap, BTreeSet, BinaryHeap, LinkedList, VecDeque};
use alloc::string::String;
use alloc::vec::Vec;
use core::cell::{Cell, RefCell};
use core::marker::PhantomData;
use core::ptr::NonNull;

use super::gcbox::Header;
use super::{Gc, Weak};

/// Visits every [`Gc`] a value owns, so the cycle collector can see the edges of the object graph.
///
/// Implement it with `#[derive(Trace)]` (feature `derive`) or by hand: call `trace` on every field that
/// may own a `Gc`, once each, and nothing else.
///
/// ```
/// use core::cell::RefCell;
/// use poolgc::gc::{Gc, Trace, Tracer};
///
/// struct Node {
///     label: String,
///     edges: RefCell<Vec<Gc<Node>>>,
/// }
///
/// // SAFETY: `trace` visits `edges`, the only field that can own a `Gc`, once; `ACYCLIC` keeps its
/// // conservative default (`false`).
/// unsafe impl Trace for Node {
///     fn trace(&self, tracer: &mut Tracer) {
///         self.edges.trace(tracer);
///     }
/// }
///
/// let a = Gc::new(Node { label: "a".into(), edges: RefCell::new(Vec::new()) });
/// a.edges.borrow_mut().push(a.clone()); // a self-loop
/// drop(a);
/// assert_eq!(poolgc::gc::collect(), 1);
/// ```
///
/// # Safety
///
/// The collector frees a group of objects when the references it counts *inside* the group explain every
/// reference to it. For that count to be right, an implementation must:
///
/// 1. **Visit only `Gc`s this value owns, each at most once per call.** Visiting a `Gc` that is not owned
///    (one reached through an `Rc`, a `&`, a raw pointer, or shared with another object), or visiting one
///    twice, makes the collector believe an outside reference is internal: it may then drop the values of
///    objects still in use. Later access through a `Gc` panics, but a `&T` already borrowed from such an
///    object dangles: this is the breach that is **undefined behaviour**.
/// 2. **Not create, clone, drop, or move `Gc` or `Weak` handles, nor mutate the object graph**, while
///    tracing, **nor call the `poolgc::gc` control functions** (`collect`, `freeze`, `unfreeze`, …). The
///    collector's bookkeeping is in the headers during a collection; doing so may corrupt it, which is
///    **undefined behaviour** in the worst case. (The collector defends itself where it cheaply can:
///    `collect()` does nothing and `freeze()`/`unfreeze()` are deferred to the end of the collection.)
/// 3. **Set `ACYCLIC = true` only for types that can never own a `Gc`.** (A wrong `true` is memory-safe: the
///    object is never examined, so a cycle through it is simply never collected.)
///
/// Omitting a `Gc` (under-reporting) is memory-safe, even if different calls omit different `Gc`s: the
/// collector calls `trace` once per object per collection, records the edges reported, and both its
/// passes (subtracting internal references, then marking what is reachable from outside) use those same
/// recorded edges. An omitted edge's target therefore keeps an outside reference and is kept, with all it
/// reaches; any cycle through that edge leaks (until a collection in which `trace` reports it). A
/// `trace` that panics is memory-safe too: the collection is abandoned, every count and mark is
/// restored, and the panic propagates.
pub unsafe trait Trace {
    /// True when no value of this type can own a `Gc` (Bacon–Rajan's *green* objects): such objects are
    /// never put in the possible-roots buffer and never traversed. The default, `false`, is always sound.
    const ACYCLIC: bool = false;

    /// Calls [`Trace::trace`] on every field that may own a `Gc`; a `Gc` field records the edge.
    fn trace(&self, tracer: &mut Tracer);
}

/// Receives the edges a [`Trace`] impl reports. Only the collector makes one; user code passes on the
/// one it is given.
pub struct Tracer {
    pub(crate) edges: Vec<NonNull<Header>>,
    /// Also report edges into green (acyclic) boxes: introspection wants every referent, the collector
    /// none of those.
    pub(crate) green: bool,
}

impl Tracer {
    pub(crate) const fn new() -> Tracer {
        Tracer {
            edges: Vec::new(),
            green: false,
        }
    }

    #[inline]
    pub(crate) fn edge(&mut self, h: NonNull<Header>) {
        self.edges.push(h);
    }
}

impl core::fmt::Debug for Tracer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Tracer").finish_non_exhaustive()
    }
}

// SAFETY: a `Gc` is the edge itself: it reports its own box, once. `ACYCLIC` does not look at `T` (that
// would make `struct Node { next: Gc<Node> }` a cycle in constant evaluation), but edges into green boxes
// are dropped by the collector.
unsafe impl<T: ?Sized + Trace + 'static> Trace for Gc<T> {
    #[inline]
    fn trace(&self, tracer: &mut Tracer) {
        if !T::ACYCLIC || tracer.green {
            tracer.edge(Gc::header_ptr(self));
        }
    }
}

// SAFETY: a weak reference is not an ownership edge: nothing to visit, and it cannot keep a cycle alive.
unsafe impl<T: ?Sized + 'static> Trace for Weak<T> {
    const ACYCLIC: bool = true;
    #[inline]
    fn trace(&self, _: &mut Tracer) {}
}

macro_rules! acyclic {
    ($($t:ty),* $(,)?) => {$(
        // SAFETY: this type cannot own a `Gc`: nothing to visit.
        unsafe impl Trace for $t {
            const ACYCLIC: bool = true;
            #[inline(always)]
            fn trace(&self, _: &mut Tracer) {}
        }
    )*};
}

acyclic!(
    (),
    bool,
    char,
    u8,
    u16,
    u32,
    u64,
    u128,
    usize,
    i8,
    i16,
    i32,
    i64,
    i128,
    isize,
    f32,
    f64,
    str,
    String,
    core::time::Duration,
    core::num::NonZeroU8,
    core::num::NonZeroU16,
    core::num::NonZeroU32,
    core::num::NonZeroU64,
    core::num::NonZeroUsize,
    core::num::NonZeroI32,
    core::num::NonZeroI64,
);

#[cfg(feature = "std")]
acyclic!(
    std::path::PathBuf,
    std::ffi::OsString,
    std::time::Instant,
    std::time::SystemTime
);

// SAFETY: a shared `'static` reference owns nothing (whatever it points to is owned elsewhere); visiting
// nothing is always allowed.
unsafe impl<T: ?Sized + 'static> Trace for &'static T {
    const ACYCLIC: bool = true;
    #[inline(always)]
    fn trace(&self, _: &mut Tracer) {}
}

// SAFETY: `PhantomData` holds no value.
unsafe impl<T: ?Sized> Trace for PhantomData<T> {
    const ACYCLIC: bool = true;
    #[inline(always)]
    fn trace(&self, _: &mut Tracer) {}
}

// SAFETY: the box owns its content: visit it.
unsafe impl<T: ?Sized + Trace> Trace for Box<T> {
    const ACYCLIC: bool = T::ACYCLIC;
    #[inline]
    fn trace(&self, tracer: &mut Tracer) {
        (**self).trace(tracer);
    }
}

// SAFETY: visits the one value if present.
unsafe impl<T: Trace> Trace for Option<T> {
    const ACYCLIC: bool = T::ACYCLIC;
    #[inline]
    fn trace(&self, tracer: &mut Tracer) {
        if let Some(v) = self {
            v.trace(tracer);
        }
    }
}

// SAFETY: visits whichever value is present.
unsafe impl<T: Trace, E: Trace> Trace for Result<T, E> {
    const ACYCLIC: bool = T::ACYCLIC && E::ACYCLIC;
    #[inline]
    fn trace(&self, tracer: &mut Tracer) {
        match self {
            Ok(v) => v.trace(tracer),
            Err(e) => e.trace(tracer),
        }
    }
}

// SAFETY: `get()` copies the value out and visits the copy, which reports exactly what the cell's value
// reports (a `Copy` type owns no `Gc`, since `Gc` is not `Copy`, so in practice nothing).
unsafe impl<T: Copy + Trace> Trace for Cell<T> {
    const ACYCLIC: bool = T::ACYCLIC;
    #[inline]
    fn trace(&self, tracer: &mut Tracer) {
        if !T::ACYCLIC {
            self.get().trace(tracer);
        }
    }
}

// SAFETY: visits the content through a shared borrow. If the cell is mutably borrowed at the moment (a
// collection started by a `Gc` drop inside a `borrow_mut()` scope), its edges are not visited: the
// collector then sees its targets as referenced from outside and keeps them, which is the safe direction.
unsafe impl<T: ?Sized + Trace> Trace for RefCell<T> {
    const ACYCLIC: bool = T::ACYCLIC;
    #[inline]
    fn trace(&self, tracer: &mut Tracer) {
        if let Ok(v) = self.try_borrow() {
            v.trace(tracer);
        }
    }
}

// SAFETY: visits each element once.
unsafe impl<T: Trace> Trace for [T] {
    const ACYCLIC: bool = T::ACYCLIC;
    #[inline]
    fn trace(&self, tracer: &mut Tracer) {
        if !T::ACYCLIC {
            for v in self {
                v.trace(tracer);
            }
        }
    }
}

// SAFETY: visits each element once.
unsafe impl<T: Trace, const N: usize> Trace for [T; N] {
    const ACYCLIC: bool = T::ACYCLIC;
    #[inline]
    fn trace(&self, tracer: &mut Tracer) {
        self.as_slice().trace(tracer);
    }
}

macro_rules! sequence {
    ($($c:ident),*) => {$(
        // SAFETY: the collection owns its elements; each is visited once.
        unsafe impl<T: Trace> Trace for $c<T> {
            const ACYCLIC: bool = T::ACYCLIC;
            #[inline]
            fn trace(&self, tracer: &mut Tracer) {
                if !T::ACYCLIC {
                    for v in self.iter() {
                        v.trace(tracer);
                    }
                }
            }
        }
    )*};
}
sequence!(Vec, VecDeque, LinkedList, BTreeSet, BinaryHeap);

// SAFETY: the map owns its keys and values; each is visited once.
unsafe impl<K: Trace, V: Trace> Trace for BTreeMap<K, V> {
    const ACYCLIC: bool = K::ACYCLIC && V::ACYCLIC;
    #[inline]
    fn trace(&self, tracer: &mut Tracer) {
        if !Self::ACYCLIC {
            for (k, v) in self {
                k.trace(tracer);
                v.trace(tracer);
            }
        }
    }
}

#[cfg(feature = "std")]
// SAFETY: the map owns its keys and values; each is visited once. The hasher owns no `Gc`.
unsafe impl<K: Trace, V: Trace, S> Trace for std::collections::HashMap<K, V, S> {
    const ACYCLIC: bool = K::ACYCLIC && V::ACYCLIC;
    #[inline]
    fn trace(&self, tracer: &mut Tracer) {
        if !Self::ACYCLIC {
            for (k, v) in self {
                k.trace(tracer);
                v.trace(tracer);
            }
        }
    }
}

#[cfg(feature = "std")]
// SAFETY: the set owns its elements; each is visited once. The hasher owns no `Gc`.
unsafe impl<T: Trace, S> Trace for std::collections::HashSet<T, S> {
    const ACYCLIC: bool = T::ACYCLIC;
    #[inline]
    fn trace(&self, tracer: &mut Tracer) {
        if !T::ACYCLIC {
            for v in self {
                v.trace(tracer);
            }
        }
    }
}

macro_rules! tuple {
    ($($n:ident . $i:tt),+) => {
        // SAFETY: a tuple owns its fields; each is visited once.
        unsafe impl<$($n: Trace),+> Trace for ($($n,)+) {
            const ACYCLIC: bool = true $(&& $n::ACYCLIC)+;
            #[inline]
            fn trace(&self, tracer: &mut Tracer) {
                $(self.$i.trace(tracer);)+
            }
        }
    };
}
tuple!(A.0);
tuple!(A.0, B.1);
tuple!(A.0, B.1, C.2);
tuple!(A.0, B.1, C.2, D.3);
tuple!(A.0, B.1, C.2, D.3, E.4);
tuple!(A.0, B.1, C.2, D.3, E.4, F.5);
tuple!(A.0, B.1, C.2, D.3, E.4, F.5, G.6);
tuple!(A.0, B.1, C.2, D.3, E.4, F.5, G.6, H.7);
tuple!(A.0, B.1, C.2, D.3, E.4, F.5, G.6, H.7, I.8);
tuple!(A.0, B.1, C.2, D.3, E.4, F.5, G.6, H.7, I.8, J.9);
tuple!(A.0, B.1, C.2, D.3, E.4, F.5, G.6, H.7, I.8, J.9, K.10);
tuple!(A.0, B.1, C.2, D.3, E.4, F.5, G.6, H.7, I.8, J.9, K.10, L.11);
