//! [`Gc<T>`]: the strong handle.

use core::borrow::Borrow;
use core::cmp::Ordering;
use core::fmt;
use core::hash::{Hash, Hasher};
use core::marker::PhantomData;
use core::ptr::{self, NonNull};

use super::collector;
use super::gcbox::{alloc_box, Flags, GcBox, Header, VTable, IMMORTAL_STRONG};
use super::state;
use super::trace::Trace;
use super::Weak;

/// What [`Gc::strong_count`] returns for an immortal object (see [`Gc::make_immortal`]): 4294967295,
/// the number CPython 3.12 reports for its immortal objects on 64-bit (`sys.getrefcount(None)`).
pub const IMMORTAL_COUNT: usize = IMMORTAL_STRONG as usize;

/// A reference-counted pointer whose cycles are collected: poolgc's `Rc`.
///
/// Cloning adds one to the count, dropping removes one; when it reaches zero the value is dropped and its
/// box (from poolgc's pools) freed at once. When a drop leaves the count above zero, the box may have
/// become part of an unreachable cycle, so it is remembered in the thread's possible-roots buffer (once),
/// and the next collection ([`collect`](super::collect), or an automatic one started by a later `Gc`
/// allocation once the buffer has reached [`threshold`](super::threshold)) decides. See the [module docs](super) for the whole story.
///
/// `Gc` is neither `Send` nor `Sync`: counts are plain integers, and each thread collects only its own
/// objects.
///
/// ```compile_fail
/// fn must_be_send<T: Send>() {}
/// must_be_send::<poolgc::gc::Gc<u32>>();
/// ```
///
/// ```compile_fail
/// fn must_be_sync<T: Sync>() {}
/// must_be_sync::<poolgc::gc::Gc<u32>>();
/// ```
///
/// Dereferencing a `Gc` whose value the collector already dropped panics; that can only happen inside a
/// `Drop` impl of a garbage object reaching a peer of the same cycle. [`Gc::try_deref`] is the checked
/// form.
pub struct Gc<T: ?Sized + 'static> {
    ptr: NonNull<GcBox<T>>,
    // Owns a `T` (drop check), and is !Send + !Sync through `NonNull` / the raw pointer below.
    _own: PhantomData<GcBox<T>>,
    _not_send: PhantomData<*mut ()>,
}

impl<T: Trace> Gc<T> {
    /// Moves `value` into a new box from the pools, with a count of one.
    ///
    /// ```
    /// use poolgc::gc::Gc;
    /// let five = Gc::new(5);
    /// assert_eq!(*five, 5);
    /// ```
    pub fn new(value: T) -> Gc<T> {
        let epoch = new_box_epoch();
        let vtable = VTable::of::<T>();
        let ptr = alloc_box(core::alloc::Layout::new::<GcBox<T>>()).cast::<GcBox<T>>();
        // SAFETY: `ptr` is a fresh allocation with `GcBox<T>`'s layout.
        unsafe {
            ptr.as_ptr().write(GcBox {
                header: Header {
                    strong: core::cell::Cell::new(1),
                    weak: core::cell::Cell::new(0),
                    flags: core::cell::Cell::new(Flags::initial(T::ACYCLIC)),
                    epoch: core::cell::Cell::new(epoch),
                    vtable,
                    #[cfg(feature = "gc-introspect")]
                    links: super::registry::Links::new(),
                },
                value,
            })
        };
        #[cfg(feature = "gc-introspect")]
        // SAFETY: just initialised; freed only through `free_box`, by this thread (`Gc` is `!Send`).
        unsafe {
            super::registry::register(ptr.cast())
        };
        Gc {
            ptr,
            _own: PhantomData,
            _not_send: PhantomData,
        }
    }
}

/// The birth epoch of a new box, counting it as live in this thread's state.
#[inline]
pub(crate) fn new_box_epoch() -> u32 {
    let f = |s: &state::State| {
        // May run an automatic collection (which may apply a deferred `freeze()`): epoch read after.
        super::collector::note_new_box(s);
        s.epoch.get()
    };
    #[cfg(feature = "std")]
    {
        // In thread teardown there is no state: the box is simply never frozen.
        state::try_with(f).unwrap_or(u32::MAX)
    }
    #[cfg(not(feature = "std"))]
    {
        state::with(f)
    }
}

impl<T: ?Sized> Gc<T> {
    #[inline(always)]
    pub(crate) fn header_ptr(this: &Self) -> NonNull<Header> {
        this.ptr.cast()
    }

    #[inline(always)]
    fn header(&self) -> &Header {
        // SAFETY: while a handle exists, the box is allocated (strong > 0 keeps it).
        unsafe { &(*self.ptr.as_ptr()).header }
    }

    /// The number of `Gc` handles to this object (`sys.getrefcount` minus its own argument), or
    /// [`IMMORTAL_COUNT`] once it is immortal.
    pub fn strong_count(this: &Self) -> usize {
        this.header().strong.get() as usize
    }

    /// The number of `Weak` handles to this object.
    pub fn weak_count(this: &Self) -> usize {
        this.header().weak.get() as usize
    }

    /// Makes the object immortal, as CPython does with `None`, small integers and interned strings
    /// (PEP 683): from now on cloning and dropping its handles write no memory, its value is never
    /// dropped and its box never freed, and the collector never buffers or traverses it (what it
    /// references stays alive through it). [`Gc::strong_count`] returns [`IMMORTAL_COUNT`].
    ///
    /// ```
    /// use poolgc::gc::{self, Gc, IMMORTAL_COUNT};
    /// let none = Gc::new(());
    /// Gc::make_immortal(&none);
    /// let copies: Vec<_> = (0..10).map(|_| none.clone()).collect();
    /// assert_eq!(Gc::strong_count(&none), IMMORTAL_COUNT);
    /// drop(copies);
    /// assert_eq!(gc::count(), 0); // nothing was buffered
    /// ```
    ///
    /// # Panics
    /// If the collector already dropped the value (see [`Gc::try_deref`]).
    pub fn make_immortal(this: &Self) {
        let h = this.header();
        if h.has(Flags::IMMORTAL) {
            return;
        }
        if h.has(Flags::DROPPED) {
            dead_deref();
        }
        forget_root(Gc::header_ptr(this));
        h.strong.set(IMMORTAL_STRONG);
        h.set(Flags::IMMORTAL | Flags::GREEN);
    }

    /// Whether [`Gc::make_immortal`] was called on this object.
    pub fn is_immortal(this: &Self) -> bool {
        this.header().has(Flags::IMMORTAL)
    }

    /// A `Weak` handle to this object.
    pub fn downgrade(this: &Self) -> Weak<T> {
        this.header().inc_weak();
        // SAFETY: we just counted the new weak handle.
        unsafe { Weak::from_box(this.ptr) }
    }

    /// A `Weak` handle carrying `callback`, run once when this object dies (its count reaches zero, or
    /// a collection finds it garbage) if that `Weak` still exists then: `weakref.ref(obj, callback)`.
    /// Dropping the `Weak` first drops the callback unrun. The callback cannot reach the object (it
    /// runs after the value is dropped; `upgrade` says `None`).
    ///
    /// ```
    /// use poolgc::gc::Gc;
    /// use std::cell::Cell;
    /// use std::rc::Rc;
    ///
    /// let died = Rc::new(Cell::new(false));
    /// let obj = Gc::new(String::from("x"));
    /// let d = died.clone();
    /// let weak = Gc::downgrade_with(&obj, move || d.set(true));
    /// drop(obj);
    /// assert!(died.get() && weak.upgrade().is_none());
    /// ```
    ///
    /// During a collection every weak reference to the garbage is cleared before any callback runs, and
    /// a `Weak` that was itself part of the garbage has its callback dropped unrun, as in CPython. A
    /// callback that panics is treated as a garbage `Drop` that panics (see [`collect`](super::collect)
    /// and the module docs); on a count death the panic propagates from the `Gc` drop, after the other
    /// callbacks of the object ran (with `std`).
    ///
    /// With `std`, in thread teardown once this thread's callback registry is gone, the callback is
    /// dropped at once and the `Weak` carries none.
    pub fn downgrade_with(this: &Self, callback: impl FnOnce() + 'static) -> Weak<T> {
        let mut w = Gc::downgrade(this);
        w.attach(alloc::boxed::Box::new(callback));
        w
    }

    /// Whether both handles point to the same object (like `Rc::ptr_eq`).
    pub fn ptr_eq(a: &Self, b: &Self) -> bool {
        ptr::addr_eq(a.ptr.as_ptr(), b.ptr.as_ptr())
    }

    /// A raw pointer to the value; valid while a handle exists and the value is not dropped.
    pub fn as_ptr(this: &Self) -> *const T {
        // SAFETY: the box is allocated while a handle exists; no reference is made.
        unsafe { ptr::addr_of!((*this.ptr.as_ptr()).value) }
    }

    /// The value, or `None` if the collector has already dropped it (only possible inside the `Drop` of
    /// another member of the same garbage cycle, or of a value such a `Drop` stored away).
    #[inline]
    pub fn try_deref(this: &Self) -> Option<&T> {
        if this.header().has(Flags::DROPPED) {
            None
        } else {
            // SAFETY: allocated (we hold a count) and the value is not dropped; values are only dropped by
            // the collector when no live reference can reach them, or when the count reaches zero, which
            // cannot happen while `this` exists.
            Some(unsafe { &(*this.ptr.as_ptr()).value })
        }
    }

    /// Whether the collector already dropped this value (see [`Gc::try_deref`]).
    pub fn is_dropped(this: &Self) -> bool {
        this.header().has(Flags::DROPPED)
    }

    /// Gives up the handle without touching the count, returning its box pointer.
    pub(crate) fn into_box(this: Self) -> NonNull<GcBox<T>> {
        let p = this.ptr;
        core::mem::forget(this);
        p
    }

    /// Builds a handle from a box pointer whose strong count already includes it.
    ///
    /// # Safety
    /// `ptr` is a live box and one strong count is transferred to the new handle.
    pub(crate) unsafe fn from_box(ptr: NonNull<GcBox<T>>) -> Gc<T> {
        Gc {
            ptr,
            _own: PhantomData,
            _not_send: PhantomData,
        }
    }
}

impl<T: ?Sized> Clone for Gc<T> {
    /// Adds one to the count (aborts if the count would overflow); writes nothing for an immortal object.
    #[inline]
    fn clone(&self) -> Gc<T> {
        self.header().inc_strong();
        Gc {
            ptr: self.ptr,
            _own: PhantomData,
            _not_send: PhantomData,
        }
    }
}

impl<T: ?Sized> core::ops::Deref for Gc<T> {
    type Target = T;

    /// # Panics
    /// If the collector already dropped the value (see [`Gc::try_deref`]).
    #[inline]
    fn deref(&self) -> &T {
        match Gc::try_deref(self) {
            Some(v) => v,
            None => dead_deref(),
        }
    }
}

/// Takes a box that is becoming immortal out of the possible-roots buffer and the frozen candidates, so
/// that no collection reaches it from there. (During a collection's analysis the roots are out of the
/// buffer; `make_immortal` cannot run then without breaking the `Trace` contract.)
fn forget_root(h: NonNull<Header>) {
    // SAFETY: the caller holds a handle, so the box is allocated.
    let hr = unsafe { h.as_ref() };
    if !hr.has(Flags::BUFFERED | Flags::FROZEN_CANDIDATE) {
        return;
    }
    state::try_with(|s| {
        for (list, flag) in [
            (&s.roots, Flags::BUFFERED),
            (&s.frozen_candidates, Flags::FROZEN_CANDIDATE),
        ] {
            if hr.has(flag) {
                list.borrow_mut().retain(|&r| r != h);
                hr.clear(flag);
            }
        }
    });
}

#[cold]
#[inline(never)]
fn dead_deref() -> ! {
    panic!(
        "poolgc: Gc dereferenced after the cycle collector dropped its value \
         (a Drop impl reached a peer in its own garbage cycle); use Gc::try_deref"
    )
}

impl<T: ?Sized> Drop for Gc<T> {
    #[inline]
    fn drop(&mut self) {
        let h = self.header();
        let n = h.strong.get();
        if n == IMMORTAL_STRONG {
            return;
        }
        let n = n - 1;
        h.strong.set(n);
        if n == 0 {
            // SAFETY: that was the last strong handle.
            unsafe { collector::release(self.ptr.cast()) };
        } else {
            collector::possible_root(self.ptr.cast());
        }
    }
}

// ---- the trait forwarding std's `Rc` has ----

impl<T: ?Sized + fmt::Debug> fmt::Debug for Gc<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match Gc::try_deref(self) {
            Some(v) => fmt::Debug::fmt(v, f),
            None => f.write_str("<dropped by the collector>"),
        }
    }
}

impl<T: ?Sized + fmt::Display> fmt::Display for Gc<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}

impl<T: ?Sized> fmt::Pointer for Gc<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Pointer::fmt(&Gc::as_ptr(self), f)
    }
}

impl<T: ?Sized + PartialEq> PartialEq for Gc<T> {
    #[inline]
    fn eq(&self, other: &Gc<T>) -> bool {
        **self == **other
    }
}

impl<T: ?Sized + Eq> Eq for Gc<T> {}

impl<T: ?Sized + PartialOrd> PartialOrd for Gc<T> {
    #[inline]
    fn partial_cmp(&self, other: &Gc<T>) -> Option<Ordering> {
        (**self).partial_cmp(&**other)
    }
}

impl<T: ?Sized + Ord> Ord for Gc<T> {
    #[inline]
    fn cmp(&self, other: &Gc<T>) -> Ordering {
        (**self).cmp(&**other)
    }
}

impl<T: ?Sized + Hash> Hash for Gc<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (**self).hash(state)
    }
}

impl<T: ?Sized> Borrow<T> for Gc<T> {
    fn borrow(&self) -> &T {
        self
    }
}

impl<T: ?Sized> AsRef<T> for Gc<T> {
    fn as_ref(&self) -> &T {
        self
    }
}

impl<T: Trace + Default> Default for Gc<T> {
    fn default() -> Gc<T> {
        Gc::new(T::default())
    }
}

impl<T: Trace> From<T> for Gc<T> {
    fn from(value: T) -> Gc<T> {
        Gc::new(value)
    }
}

impl<T: ?Sized> Unpin for Gc<T> {}
