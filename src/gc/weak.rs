//! [`Weak<T>`]: a handle that does not keep the value alive (`weakref.ref`).

use core::fmt;
use core::marker::PhantomData;
use core::num::NonZeroU64;
use core::ptr::NonNull;

use super::collector;
use super::gcbox::{Flags, GcBox, Header};
use super::weak_cb;
use super::Gc;

/// A weak handle: it keeps the box's memory (not the value) alive, and is not an edge of the object graph,
/// so it never keeps a cycle alive. [`upgrade`](Weak::upgrade) gives a [`Gc`] while the value lives.
///
/// ```
/// use poolgc::gc::Gc;
/// let strong = Gc::new(String::from("x"));
/// let weak = Gc::downgrade(&strong);
/// assert_eq!(weak.upgrade().as_deref().map(String::as_str), Some("x"));
/// drop(strong);
/// assert!(weak.upgrade().is_none());
/// ```
///
/// A `Weak` made by [`Gc::downgrade_with`] carries a callback, run once when the value dies (by its
/// count reaching zero, or by a collection), while that `Weak` still exists: `weakref.ref(obj,
/// callback)`. Its clones carry none.
///
/// Like [`Gc`], it is neither `Send` nor `Sync`.
///
/// ```compile_fail
/// fn must_be_send<T: Send>() {}
/// must_be_send::<poolgc::gc::Weak<u32>>();
/// ```
pub struct Weak<T: ?Sized + 'static> {
    /// `None` for [`Weak::new`], which points at nothing.
    ptr: Option<NonNull<GcBox<T>>>,
    /// The registration of this handle's callback (see `weak_cb`), if it has one.
    cb: Option<NonZeroU64>,
    _not_send: PhantomData<*mut ()>,
}

impl<T: ?Sized> Weak<T> {
    /// A weak handle to nothing: `upgrade` always returns `None`. Allocates nothing.
    pub const fn new() -> Weak<T> {
        Weak {
            ptr: None,
            cb: None,
            _not_send: PhantomData,
        }
    }
}

impl<T: ?Sized> Default for Weak<T> {
    fn default() -> Weak<T> {
        Weak::new()
    }
}

impl<T: ?Sized> Weak<T> {
    /// # Safety
    /// `ptr` is a live box whose weak count already includes the new handle.
    pub(crate) unsafe fn from_box(ptr: NonNull<GcBox<T>>) -> Weak<T> {
        Weak {
            ptr: Some(ptr),
            cb: None,
            _not_send: PhantomData,
        }
    }

    /// Attaches `f` to this handle (made just now by `Gc::downgrade_with`; the box is live).
    pub(crate) fn attach(&mut self, f: weak_cb::Callback) {
        if let Some(p) = self.ptr {
            self.cb = weak_cb::register(p.cast(), f).and_then(NonZeroU64::new);
        }
    }

    #[inline]
    fn header(&self) -> Option<&Header> {
        // SAFETY: a weak count keeps the box allocated.
        self.ptr.map(|p| unsafe { &(*p.as_ptr()).header })
    }

    /// A strong handle if the value is still alive (not dropped, whether by its count reaching zero or by
    /// the collector), else `None`.
    pub fn upgrade(&self) -> Option<Gc<T>> {
        let h = self.header()?;
        if h.strong.get() == 0 || h.has(Flags::DROPPED) {
            return None;
        }
        h.inc_strong();
        // SAFETY: alive, and we just counted the new strong handle.
        Some(unsafe { Gc::from_box(self.ptr?) })
    }

    /// The number of `Gc` handles to the object (0 once it is dropped, or for `Weak::new()`).
    pub fn strong_count(&self) -> usize {
        match self.header() {
            Some(h) if !h.has(Flags::DROPPED) => h.strong.get() as usize,
            _ => 0,
        }
    }

    /// The number of `Weak` handles to the object (0 for `Weak::new()`).
    pub fn weak_count(&self) -> usize {
        self.header().map_or(0, |h| h.weak.get() as usize)
    }

    /// Whether this handle carries a callback that has not run yet (`weakref.ref.__callback__` is not
    /// `None`).
    pub fn has_callback(&self) -> bool {
        match (self.ptr, self.cb) {
            (Some(p), Some(id)) => weak_cb::is_registered(p.cast(), id.get()),
            _ => false,
        }
    }

    /// Whether both point to the same box (two `Weak::new()` are equal).
    pub fn ptr_eq(&self, other: &Weak<T>) -> bool {
        match (self.ptr, other.ptr) {
            (Some(a), Some(b)) => core::ptr::addr_eq(a.as_ptr(), b.as_ptr()),
            (None, None) => true,
            _ => false,
        }
    }
}

impl<T: ?Sized> Clone for Weak<T> {
    /// Another handle to the same object, without the callback.
    fn clone(&self) -> Weak<T> {
        if let Some(h) = self.header() {
            h.inc_weak();
        }
        Weak {
            ptr: self.ptr,
            cb: None,
            _not_send: PhantomData,
        }
    }
}

impl<T: ?Sized> Drop for Weak<T> {
    /// A callback this handle carries is dropped without running (as dropping a `weakref.ref` does).
    fn drop(&mut self) {
        if let (Some(p), Some(id)) = (self.ptr, self.cb) {
            // Dropped after the registry is released: the closure may own handles.
            drop(weak_cb::unregister(p.cast(), id.get()));
        }
        if let Some(p) = self.ptr {
            // SAFETY: our weak count keeps the box allocated until we give it up here.
            unsafe { collector::release_weak(p.cast()) };
        }
    }
}

impl<T: ?Sized> fmt::Debug for Weak<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(Weak)")
    }
}

/// A finalizer registered by [`finalize`](super::finalize): `weakref.finalize`. Dropping this handle does
/// not cancel it.
#[derive(Clone, Debug)]
pub struct Finalizer {
    /// The object's box: dangling once it died (then only its address is used).
    h: NonNull<Header>,
    id: Option<u64>,
    _not_send: PhantomData<*mut ()>,
}

impl Finalizer {
    pub(crate) fn new(h: NonNull<Header>, f: weak_cb::Callback) -> Finalizer {
        Finalizer {
            h,
            id: weak_cb::register(h, f),
            _not_send: PhantomData,
        }
    }

    /// Whether the finalizer has neither run nor been detached (`finalize.alive`).
    pub fn alive(&self) -> bool {
        self.id.is_some_and(|id| weak_cb::is_registered(self.h, id))
    }

    /// Cancels the finalizer; returns whether it was alive (`finalize.detach()`). The closure is dropped.
    pub fn detach(&self) -> bool {
        let cb = self.id.and_then(|id| weak_cb::unregister(self.h, id));
        let was = cb.is_some();
        drop(cb);
        was
    }

    /// Runs the finalizer now if it is alive, and returns whether it ran (`finalize()`); it never runs
    /// again.
    pub fn call(&self) -> bool {
        match self.id.and_then(|id| weak_cb::unregister(self.h, id)) {
            Some(cb) => {
                cb();
                true
            }
            None => false,
        }
    }
}

/// Registers `f` to run once when `obj` dies (its count reaches zero, or a collection finds it garbage),
/// whether or not the returned handle still exists: `weakref.finalize(obj, f)`. The closure must not own
/// a handle to `obj` (that would keep it alive, as in Python). It never runs for an immortal object, nor
/// for one still alive when its thread's collector state is destroyed.
///
/// ```
/// use poolgc::gc::{self, Gc};
/// use std::cell::Cell;
/// use std::rc::Rc;
///
/// let closed = Rc::new(Cell::new(0));
/// let file = Gc::new(42);
/// let c = closed.clone();
/// let fin = gc::finalize(&file, move || c.set(c.get() + 1));
/// assert!(fin.alive());
/// drop(file);
/// assert_eq!(closed.get(), 1);
/// assert!(!fin.alive());
/// ```
pub fn finalize<T: ?Sized>(obj: &Gc<T>, f: impl FnOnce() + 'static) -> Finalizer {
    Finalizer::new(Gc::header_ptr(obj), alloc::boxed::Box::new(f))
}
