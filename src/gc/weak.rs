//! [`Weak<T>`]: a handle that does not keep the value alive (`weakref.ref`).

use core::fmt;
use core::marker::PhantomData;
use core::ptr::NonNull;

use super::collector;
use super::gcbox::{Flags, GcBox, Header};
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
/// Like [`Gc`], it is neither `Send` nor `Sync`.
///
/// ```compile_fail
/// fn must_be_send<T: Send>() {}
/// must_be_send::<poolgc::gc::Weak<u32>>();
/// ```
pub struct Weak<T: ?Sized + 'static> {
    /// `None` for [`Weak::new`], which points at nothing.
    ptr: Option<NonNull<GcBox<T>>>,
    _not_send: PhantomData<*mut ()>,
}

impl<T: ?Sized> Weak<T> {
    /// A weak handle to nothing: `upgrade` always returns `None`. Allocates nothing.
    pub const fn new() -> Weak<T> {
        Weak {
            ptr: None,
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
            _not_send: PhantomData,
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
    fn clone(&self) -> Weak<T> {
        if let Some(h) = self.header() {
            h.inc_weak();
        }
        Weak {
            ptr: self.ptr,
            _not_send: PhantomData,
        }
    }
}

impl<T: ?Sized> Drop for Weak<T> {
    fn drop(&mut self) {
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
