//! The closures to run when a box dies: callbacks of `Weak` handles ([`Gc::downgrade_with`]) and
//! finalizers ([`finalize`](super::finalize)), like CPython's `weakref.ref(obj, callback)` and
//! `weakref.finalize`.
//!
//! They live in a registry keyed by (box address, registration id), one per thread with `std` (boxes
//! never leave their thread) and one per program without (reached only after `init_single_threaded`,
//! under its one-execution-context contract). A box with registrations has `Flags::WEAK_CB`, so a death
//! costs one flag test when there are none.
//!
//! Invariant: a box's registrations are all taken out when it dies (`take`, or `discard` on an unwinding
//! path), before its memory can be freed; so an address in the registry always names the live box that
//! registered it, and an id (never reused) names at most one registration ever.
//!
//! [`Gc::downgrade_with`]: super::Gc::downgrade_with

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;
#[cfg(feature = "std")]
use core::cell::RefCell;
use core::ptr::NonNull;

use super::collector::hdr;
use super::gcbox::{Flags, Header};

/// A registered closure.
pub(crate) type Callback = Box<dyn FnOnce()>;

/// Registered closures by (box address, id).
pub(crate) struct Registry {
    next_id: u64,
    map: BTreeMap<(usize, u64), Callback>,
}

impl Registry {
    const fn new() -> Registry {
        Registry {
            next_id: 1,
            map: BTreeMap::new(),
        }
    }
}

#[cfg(feature = "std")]
std::thread_local! {
    static REGISTRY: RefCell<Registry> = const { RefCell::new(Registry::new()) };
}

/// Runs `f` on the registry; `None` where there is none (with `std`, once this thread's registry is
/// destroyed in thread teardown). `f` must run no user code: closures are dropped or called by the
/// caller, after the borrow ends.
#[cfg(feature = "std")]
fn with<R>(f: impl FnOnce(&mut Registry) -> R) -> Option<R> {
    REGISTRY.try_with(|r| f(&mut r.borrow_mut())).ok()
}

#[cfg(not(feature = "std"))]
mod global {
    use super::Registry;
    use core::cell::RefCell;

    pub(super) struct Global(pub(super) RefCell<Registry>);
    // SAFETY: reached only through `with`, which refuses until `init_single_threaded` was called, whose
    // contract is that every `Gc` operation from then on happens in one execution context; so no two
    // contexts ever touch the registry concurrently.
    unsafe impl Sync for Global {}

    pub(super) static REGISTRY: Global = Global(RefCell::new(Registry::new()));
}

/// Runs `f` on the registry; `None` before `init_single_threaded` (when no `Gc` can exist).
#[cfg(not(feature = "std"))]
fn with<R>(f: impl FnOnce(&mut Registry) -> R) -> Option<R> {
    super::state::try_with(|_| ())?;
    Some(f(&mut global::REGISTRY.0.borrow_mut()))
}

/// Registers `cb` to run when the box `h` dies; returns its id, or `None` (and drops `cb`) where there is
/// no registry (thread teardown) or the box has died already (`DROPPED`: a zombie, or garbage whose
/// registrations were taken): it will not die again, so a registration would outlive its memory and
/// fire for the next box at its address.
pub(crate) fn register(h: NonNull<Header>, cb: Callback) -> Option<u64> {
    if hdr(h).has(Flags::DROPPED) {
        drop(cb);
        return None;
    }
    let addr = h.as_ptr() as usize;
    let mut cb = Some(cb);
    let id = with(|r| {
        let id = r.next_id;
        r.next_id += 1;
        r.map.insert((addr, id), cb.take()?);
        Some(id)
    })
    .flatten();
    if id.is_some() {
        hdr(h).set(Flags::WEAK_CB);
    }
    drop(cb);
    id
}

/// Whether registration `id` of the box `h` is still waiting for the box to die (`h` may be dangling:
/// only its address is used).
pub(crate) fn is_registered(h: NonNull<Header>, id: u64) -> bool {
    let addr = h.as_ptr() as usize;
    with(|r| r.map.contains_key(&(addr, id))).unwrap_or(false)
}

/// Takes registration `id` of the box `h` out, if it is still there; the caller drops or calls it. If it
/// was the box's last one, the box's `WEAK_CB` flag is cleared. (`h` may be dangling if the registration
/// is gone: then it is not dereferenced.)
pub(crate) fn unregister(h: NonNull<Header>, id: u64) -> Option<Callback> {
    let addr = h.as_ptr() as usize;
    let (cb, last) = with(|r| {
        let cb = r.map.remove(&(addr, id))?;
        let last = r.map.range((addr, 0)..=(addr, u64::MAX)).next().is_none();
        Some((cb, last))
    })
    .flatten()?;
    if last {
        // SAFETY: a registration was still there, so the box has not died (module invariant): the
        // address is the live box's header.
        unsafe { h.as_ref().clear(Flags::WEAK_CB) };
    }
    Some(cb)
}

/// Takes out every registration of the dying boxes `hs` (in box order, then registration order), clearing
/// their `WEAK_CB` flags. The caller runs them (or drops them) after this returns.
pub(crate) fn take(hs: &[NonNull<Header>]) -> Vec<Callback> {
    let mut out = Vec::new();
    for &h in hs {
        let hr = hdr(h);
        if !hr.has(Flags::WEAK_CB) {
            continue;
        }
        hr.clear(Flags::WEAK_CB);
        let addr = h.as_ptr() as usize;
        with(|r| {
            let ids: Vec<u64> = r
                .map
                .range((addr, 0)..=(addr, u64::MAX))
                .map(|(&(_, id), _)| id)
                .collect();
            out.extend(ids.into_iter().filter_map(|id| r.map.remove(&(addr, id))));
        });
    }
    out
}

/// The payload of the first panic among callbacks run by [`run`], and how many panicked.
#[cfg(feature = "std")]
pub(crate) type Panics = (Option<Box<dyn core::any::Any + Send + 'static>>, u64);

/// Runs every callback, catching panics; returns the first payload and the number that panicked.
#[cfg(feature = "std")]
pub(crate) fn run(cbs: Vec<Callback>) -> Panics {
    let mut panics: Panics = (None, 0);
    for cb in cbs {
        if let Err(p) = std::panic::catch_unwind(core::panic::AssertUnwindSafe(cb)) {
            panics.0.get_or_insert(p);
            panics.1 += 1;
        }
    }
    panics
}

/// Runs every callback; one that panics unwinds out of this, and the rest are dropped without running.
#[cfg(not(feature = "std"))]
pub(crate) fn run(cbs: Vec<Callback>) {
    for cb in cbs {
        cb();
    }
}

/// A box died by its count reaching zero (its value is dropped, the box still held): runs its callbacks.
/// A panicking callback propagates as a panicking `Drop` would, after (with `std`) the others ran.
pub(crate) fn on_count_death(h: NonNull<Header>) {
    let cbs = take(&[h]);
    #[cfg(feature = "std")]
    if let (Some(p), _) = run(cbs) {
        std::panic::resume_unwind(p);
    }
    #[cfg(not(feature = "std"))]
    run(cbs);
}
