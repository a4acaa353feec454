//! [`Gc<T>`]: the strong handle.

use core::borrow::Borrow;
use core::cmp::Ordering;
use core::fmt;
use core::hash::{Hash, Hasher};
use core::marker::PhantomData;
use core::ptr::{self, NonNull};

use super::collector;
use super::gcbox::{alloc_box, Flags, GcBox, Header, VTable};
use super::state;
use super::trace::Trace;
use super::Weak;

/// A reference-counted pointer whose cycles are collected: poolgc's `Rc`.
///
/// Cloning adds one to the count, dropping removes one; when it reaches zero the value is dropped and its
/// box (from poolgc's pools) freed at once. When a drop leaves the count above zero, the box may have
/// become part of an unreachable cycle, so it is remembered in the thread's possible-roots buffer (once),
/// and the next collection ([`collect`](super::collect), or automatic when the buffer reaches
/// [`threshold`](super::threshold)) decides. See the [module docs](super) for the whole story.
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
                },
                value,
            })
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

    /// The number of `Gc` handles to this object (`sys.getrefcount` minus its own argument).
    pub fn strong_count(this: &Self) -> usize {
        this.header().strong.get() as usize
    }

    /// The number of `Weak` handles to this object.
    pub fn weak_count(this: &Self) -> usize {
        this.header().weak.get() as usize
    }

    /// A `Weak` handle to this object.
    pub fn downgrade(this: &Self) -> Weak<T> {
        this.header().inc_weak();
        // SAFETY: we just counted the new weak handle.
        unsafe { Weak::from_box(this.ptr) }
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
    /// Adds one to the count (aborts if the count would overflow).
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
        let n = h.strong.get() - 1;
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
