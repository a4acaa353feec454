//! The `gc` module's introspection: an untyped handle to any object ([`GcAny`]), its type, size and
//! referents, whether the collector tracks it, and `gc.DEBUG_SAVEALL` / `gc.garbage`.
//!
//! What needs the list of every live object (`get_objects`, `get_referrers`, the census) is in
//! `registry`-backed functions behind feature `gc-introspect`; everything here costs nothing until used.

use alloc::vec::Vec;
use core::any::TypeId;
use core::cell::{Cell, RefCell};
use core::fmt;
use core::ptr::NonNull;

use super::collector;
use super::gcbox::{Flags, GcBox, Header, IMMORTAL_STRONG};
use super::trace::Tracer;
use super::Gc;

/// A strong handle to an object of any type (what Python's `object` is to the `gc` functions): it keeps
/// the object alive like a [`Gc`] and tells its type name and size; [`downcast`](GcAny::downcast) gives
/// the typed handle back.
///
/// ```
/// use poolgc::gc::{Gc, GcAny};
///
/// let v = Gc::new(vec![1u32, 2, 3]);
/// let any = GcAny::from(&v);
/// assert_eq!(any.type_name(), "alloc::vec::Vec<u32>");
/// assert_eq!(any.size(), poolgc::gc::getsizeof(&v));
/// let back: Gc<Vec<u32>> = any.downcast().unwrap();
/// assert!(Gc::ptr_eq(&back, &v));
/// assert!(any.downcast::<String>().is_none());
/// ```
pub struct GcAny {
    h: NonNull<Header>,
    _not_send: core::marker::PhantomData<*mut ()>,
}

impl GcAny {
    /// Takes over one strong count of `h`.
    ///
    /// # Safety
    /// `h` is allocated and one strong count (or immortality) is transferred to the new handle.
    pub(crate) unsafe fn from_counted(h: NonNull<Header>) -> GcAny {
        GcAny {
            h,
            _not_send: core::marker::PhantomData,
        }
    }

    /// A new handle to the allocated box `h` (adds a strong count).
    pub(crate) fn new_counted(h: NonNull<Header>) -> GcAny {
        // SAFETY: callers pass boxes that are allocated now (held by a handle, the list or the collector).
        unsafe { h.as_ref() }.inc_strong();
        // SAFETY: the count just added is the new handle's.
        unsafe { GcAny::from_counted(h) }
    }

    fn header(&self) -> &Header {
        // SAFETY: a handle keeps the box allocated.
        unsafe { self.h.as_ref() }
    }

    pub(crate) fn header_ptr(&self) -> NonNull<Header> {
        self.h
    }

    /// The name of the value's type, as `core::any::type_name` spells it (`Gc<str>` reads `str`).
    pub fn type_name(&self) -> &'static str {
        (self.header().vtable.type_name)()
    }

    /// The bytes the object's allocation takes: header, value and padding (`sys.getsizeof`).
    pub fn size(&self) -> usize {
        size_of_box(self.h)
    }

    /// The object's address, stable while it lives (what Python's `id()` is).
    pub fn addr(&self) -> usize {
        self.h.as_ptr() as usize
    }

    /// The typed handle, if the value is a `T`.
    pub fn downcast<T: 'static>(&self) -> Option<Gc<T>> {
        if (self.header().vtable.type_id)() != TypeId::of::<T>() {
            return None;
        }
        self.header().inc_strong();
        // SAFETY: the box is a `GcBox<T>` (its vtable's `TypeId` is `T`'s, and sized boxes start with the
        // header), and the count just added is the new handle's.
        Some(unsafe { Gc::from_box(self.h.cast::<GcBox<T>>()) })
    }

    /// The strong count (as [`Gc::strong_count`]; this handle included).
    pub fn strong_count(&self) -> usize {
        self.header().strong.get() as usize
    }

    /// Whether the collector tracks the object ([`is_tracked`]).
    pub fn is_tracked(&self) -> bool {
        tracked(self.header())
    }

    /// Whether the value has been dropped (as [`Gc::is_dropped`]).
    pub fn is_dropped(&self) -> bool {
        self.header().has(Flags::DROPPED)
    }

    /// Whether both handles are to the same object.
    pub fn ptr_eq(a: &GcAny, b: &GcAny) -> bool {
        a.h == b.h
    }

    /// The objects this one references ([`get_referents`]).
    pub fn referents(&self) -> Vec<GcAny> {
        referents_of(self.h)
            .into_iter()
            .map(GcAny::new_counted)
            .collect()
    }
}

impl<T: ?Sized> From<&Gc<T>> for GcAny {
    fn from(gc: &Gc<T>) -> GcAny {
        GcAny::new_counted(Gc::header_ptr(gc))
    }
}

impl<T: ?Sized> From<Gc<T>> for GcAny {
    fn from(gc: Gc<T>) -> GcAny {
        // SAFETY: the handle's count moves to the new one.
        unsafe { GcAny::from_counted(Gc::into_box(gc).cast()) }
    }
}

impl Clone for GcAny {
    fn clone(&self) -> GcAny {
        GcAny::new_counted(self.h)
    }
}

impl Drop for GcAny {
    /// As dropping a [`Gc`]: the last strong handle drops the value; another may leave a possible root.
    fn drop(&mut self) {
        let h = self.header();
        let n = h.strong.get();
        if n == IMMORTAL_STRONG {
            return;
        }
        h.strong.set(n - 1);
        if n == 1 {
            // SAFETY: that was the last strong handle.
            unsafe { collector::release(self.h) };
        } else {
            collector::possible_root(self.h);
        }
    }
}

impl fmt::Debug for GcAny {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{} at {:#x}>", self.type_name(), self.addr())
    }
}

/// Anything that names a `Gc` object: a [`Gc<T>`] or a [`GcAny`]. Sealed.
pub trait GcObject: sealed::Sealed {}

mod sealed {
    use core::ptr::NonNull;

    pub trait Sealed {
        /// The box's header, as an untyped pointer (the header type is private).
        fn box_ptr(&self) -> NonNull<u8>;
    }
}

impl<T: ?Sized> sealed::Sealed for Gc<T> {
    fn box_ptr(&self) -> NonNull<u8> {
        Gc::header_ptr(self).cast()
    }
}
impl<T: ?Sized> GcObject for Gc<T> {}
impl sealed::Sealed for GcAny {
    fn box_ptr(&self) -> NonNull<u8> {
        self.h.cast()
    }
}
impl GcObject for GcAny {}

pub(crate) fn header_of(obj: &impl GcObject) -> NonNull<Header> {
    obj.box_ptr().cast()
}

fn tracked(h: &Header) -> bool {
    !h.has(Flags::GREEN | Flags::DROPPED)
}

pub(crate) fn is_tracked_box(h: NonNull<Header>) -> bool {
    // SAFETY: callers pass allocated boxes.
    tracked(unsafe { h.as_ref() })
}

pub(crate) fn size_of_box(h: NonNull<Header>) -> usize {
    // SAFETY: callers pass allocated boxes; `alloc_of` reads the header (and a slice's length prefix).
    unsafe { (h.as_ref().vtable.alloc_of)(h).1.size() }
}

/// The boxes `h`'s value references, green ones included, in the order its `trace` reports them; none
/// once the value is dropped.
pub(crate) fn referents_of(h: NonNull<Header>) -> Vec<NonNull<Header>> {
    // SAFETY: callers pass allocated boxes.
    let hr = unsafe { h.as_ref() };
    if hr.has(Flags::DROPPED) {
        return Vec::new();
    }
    let mut t = Tracer::new();
    t.green = true;
    // SAFETY: the box is allocated and its value not dropped.
    unsafe { (hr.vtable.trace)(h, &mut t) };
    t.edges
}

/// Whether the collector tracks `obj` (`gc.is_tracked`): false for objects of acyclic (*green*) types,
/// which can own no `Gc` — strings, numbers, `Vec<u8>` — and for immortal ones, as in CPython; and for an
/// object whose value was dropped.
///
/// ```
/// use poolgc::gc::{self, Gc};
/// use std::cell::RefCell;
///
/// assert!(!gc::is_tracked(&Gc::new(42u64)));
/// let list = Gc::new(RefCell::new(Vec::<Gc<u8>>::new()));
/// assert!(gc::is_tracked(&list));
/// Gc::make_immortal(&list);
/// assert!(!gc::is_tracked(&list));
/// ```
pub fn is_tracked(obj: &impl GcObject) -> bool {
    is_tracked_box(header_of(obj))
}

/// The bytes `obj`'s allocation takes — header, value and padding (`sys.getsizeof`). Not what the value
/// owns elsewhere (a `Vec`'s buffer), as in Python.
///
/// ```
/// use poolgc::gc::{self, Gc};
/// let x = Gc::new([0u64; 4]);
/// assert!(gc::getsizeof(&x) >= 32 + 16);
/// ```
pub fn getsizeof(obj: &impl GcObject) -> usize {
    size_of_box(header_of(obj))
}

/// The objects `obj` references (`gc.get_referents`): the `Gc`s its `trace` reports, those to acyclic
/// objects included, each as often as reported.
///
/// ```
/// use poolgc::gc::{self, Gc};
/// use std::cell::RefCell;
///
/// let s = Gc::new(String::from("leaf"));
/// let list = Gc::new(RefCell::new(vec![s.clone(), s.clone()]));
/// let refs = gc::get_referents(&list);
/// assert_eq!(refs.len(), 2);
/// assert_eq!(refs[0].type_name(), "alloc::string::String");
/// ```
pub fn get_referents(obj: &impl GcObject) -> Vec<GcAny> {
    referents_of(header_of(obj))
        .into_iter()
        .map(GcAny::new_counted)
        .collect()
}

// ---- gc.set_debug(gc.DEBUG_SAVEALL) and gc.garbage ----------------------------------------------------

/// [`set_debug`] flag: keep what collections find to be garbage in [`garbage`] instead of dropping it
/// (`gc.DEBUG_SAVEALL`).
pub const DEBUG_SAVEALL: u32 = 1 << 5;

/// Where the debug flags and the saved garbage live: per thread with `std`, as the collector state.
struct Saved {
    flags: Cell<u32>,
    garbage: RefCell<Vec<GcAny>>,
}

impl Saved {
    const fn new() -> Saved {
        Saved {
            flags: Cell::new(0),
            garbage: RefCell::new(Vec::new()),
        }
    }
}

#[cfg(feature = "std")]
std::thread_local! {
    static SAVED: Saved = const { Saved::new() };
}

#[cfg(feature = "std")]
fn with_saved<R>(f: impl FnOnce(&Saved) -> R) -> Option<R> {
    SAVED.try_with(f).ok()
}

#[cfg(not(feature = "std"))]
struct Global(Saved);
// SAFETY: only reached through `state::try_with`, which refuses until `init_single_threaded`, whose
// contract is that every `Gc` operation happens in one execution context.
#[cfg(not(feature = "std"))]
unsafe impl Sync for Global {}
#[cfg(not(feature = "std"))]
static GLOBAL_SAVED: Global = Global(Saved::new());

#[cfg(not(feature = "std"))]
fn with_saved<R>(f: impl FnOnce(&Saved) -> R) -> Option<R> {
    super::state::try_with(|_| f(&GLOBAL_SAVED.0))
}

/// Sets this thread's collector debug flags (`gc.set_debug`); [`DEBUG_SAVEALL`] is the one there is.
///
/// ```
/// use poolgc::gc::{self, Gc};
/// use std::cell::RefCell;
///
/// struct Node(RefCell<Option<Gc<Node>>>);
/// // SAFETY: visits its one `Gc` field.
/// unsafe impl gc::Trace for Node {
///     fn trace(&self, t: &mut gc::Tracer) { self.0.trace(t) }
/// }
///
/// gc::set_debug(gc::DEBUG_SAVEALL);
/// let a = Gc::new(Node(RefCell::new(None)));
/// *a.0.borrow_mut() = Some(a.clone()); // a self-loop
/// drop(a);
/// assert_eq!(gc::collect(), 1);        // found, but kept:
/// let saved = gc::garbage();
/// assert_eq!(saved.len(), 1);
/// assert!(saved[0].downcast::<Node>().is_some());
/// gc::set_debug(0);
/// drop(saved);
/// drop(gc::take_garbage());             // let go of it: the next collection frees it
/// assert_eq!(gc::collect(), 1);
/// ```
pub fn set_debug(flags: u32) {
    with_saved(|s| s.flags.set(flags));
}

/// This thread's collector debug flags (`gc.get_debug`).
pub fn get_debug() -> u32 {
    with_saved(|s| s.flags.get()).unwrap_or(0)
}

/// Handles to the garbage collections kept while [`DEBUG_SAVEALL`] was set (`gc.garbage`), oldest first.
pub fn garbage() -> Vec<GcAny> {
    with_saved(|s| s.garbage.borrow().clone()).unwrap_or_default()
}

/// How many objects [`garbage`] holds, without making handles.
pub(crate) fn garbage_len() -> usize {
    with_saved(|s| s.garbage.borrow().len()).unwrap_or(0)
}

/// Empties the saved garbage and returns it (`del gc.garbage[:]`): dropping the handles lets the next
/// collection free the cycles (unless [`DEBUG_SAVEALL`] is still set, which saves them again).
pub fn take_garbage() -> Vec<GcAny> {
    with_saved(|s| core::mem::take(&mut *s.garbage.borrow_mut())).unwrap_or_default()
}

/// The collector's hook, between finding the garbage and dropping it: with [`DEBUG_SAVEALL`], each
/// garbage box is made live again and the collector's hold on it becomes a handle in `gc.garbage`;
/// what is returned (nothing, then) is dropped as garbage.
///
/// `white` comes from `Analysis::finish`: held (+1) and flagged `DROPPED`, values not yet dropped.
pub(crate) fn save_garbage(white: Vec<NonNull<Header>>) -> Vec<NonNull<Header>> {
    if white.is_empty() || get_debug() & DEBUG_SAVEALL == 0 {
        return white;
    }
    let kept = with_saved(|s| {
        let mut g = s.garbage.borrow_mut();
        for &h in &white {
            // SAFETY: held by the collector (allocated); its value was not dropped, so clearing the mark
            // makes it an ordinary live object again.
            unsafe { h.as_ref() }.clear(Flags::DROPPED);
            // SAFETY: the collector's hold (+1) moves to the handle.
            g.push(unsafe { GcAny::from_counted(h) });
        }
    });
    if kept.is_some() {
        Vec::new()
    } else {
        white
    }
}
