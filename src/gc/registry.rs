//! The list of live boxes behind `get_objects`, `get_referrers` and the census (feature `gc-introspect`).
//!
//! Every box made is pushed on its thread's list (a doubly linked list through [`Header::links`]) and
//! unlinked when it is freed, so a box on the list is always allocated and its neighbours too. The cost
//! is 16 bytes per box (two pointers, on 64-bit) and a few stores when a box is made and freed; CPython
//! pays the same two pointers per tracked object (`PyGC_Head`).
//!
//! With `std` the head is a thread-local with no destructor, so it stays usable all through thread
//! teardown; without `std` it sits beside the program's one collector state, behind the same gate.

use alloc::vec::Vec;
use core::cell::Cell;
use core::ptr::{self, NonNull};

use super::gcbox::Header;

/// A box's place on its thread's list.
pub(crate) struct Links {
    prev: Cell<*const Header>,
    next: Cell<*const Header>,
}

impl Links {
    pub(crate) const fn new() -> Links {
        Links {
            prev: Cell::new(ptr::null()),
            next: Cell::new(ptr::null()),
        }
    }
}

#[cfg(feature = "std")]
std::thread_local! {
    /// The newest box of this thread's list (null when empty). A raw pointer needs no drop: no destructor.
    static HEAD: Cell<*const Header> = const { Cell::new(ptr::null()) };
}

/// Runs `f` with the list's head; `None` where it cannot be reached (without `std`, before
/// `init_single_threaded`, when no box can exist).
#[cfg(feature = "std")]
fn with_head<R>(f: impl FnOnce(&Cell<*const Header>) -> R) -> Option<R> {
    HEAD.try_with(f).ok()
}

#[cfg(not(feature = "std"))]
struct Global(Cell<*const Header>);
// SAFETY: only reached through `state::try_with`, which refuses until `init_single_threaded`, whose
// contract is that every `Gc` operation happens in one execution context.
#[cfg(not(feature = "std"))]
unsafe impl Sync for Global {}
#[cfg(not(feature = "std"))]
static GLOBAL_HEAD: Global = Global(Cell::new(ptr::null()));

#[cfg(not(feature = "std"))]
fn with_head<R>(f: impl FnOnce(&Cell<*const Header>) -> R) -> Option<R> {
    super::state::try_with(|_| f(&GLOBAL_HEAD.0))
}

/// Puts a new box at the head of this thread's list.
///
/// # Safety
/// `h` is an allocated box with an initialised header, on no list yet, that will be freed only through
/// `free_box` (which unlinks it) and only by this thread.
pub(crate) unsafe fn register(h: NonNull<Header>) {
    with_head(|head| {
        let old = head.get();
        // SAFETY: `h` is allocated (caller); `old`, when not null, is a box on the list (allocated).
        unsafe {
            h.as_ref().links.next.set(old);
            if let Some(o) = old.as_ref() {
                o.links.prev.set(h.as_ptr());
            }
        }
        head.set(h.as_ptr());
    });
}

/// Takes a box off its thread's list (nothing if it was never put on one).
///
/// # Safety
/// `h` is allocated, and is about to be freed.
pub(crate) unsafe fn unlink(h: NonNull<Header>) {
    // SAFETY: caller; its neighbours are on the list, hence allocated.
    unsafe {
        let l = &h.as_ref().links;
        let (prev, next) = (l.prev.get(), l.next.get());
        if let Some(n) = next.as_ref() {
            n.links.prev.set(prev);
        }
        match prev.as_ref() {
            Some(p) => p.links.next.set(next),
            None => {
                with_head(|head| {
                    if head.get() == h.as_ptr().cast_const() {
                        head.set(next);
                    }
                });
            }
        }
    }
}

/// Every box on this thread's list, newest first (including zombies and immortal ones; callers filter).
/// No user code runs during the walk.
pub(crate) fn snapshot() -> Vec<NonNull<Header>> {
    let mut out = Vec::new();
    let mut p = with_head(Cell::get).unwrap_or(ptr::null());
    while let Some(nn) = NonNull::new(p.cast_mut()) {
        out.push(nn);
        // SAFETY: boxes on the list are allocated.
        p = unsafe { nn.as_ref().links.next.get() };
    }
    out
}
