//! Reference counting with cycle collection: CPython's object memory model for Rust (feature `gc`).
//!
//! CPython frees an object the moment its reference count drops to zero, and runs a cyclic collector for
//! what counting cannot free: groups of objects that only reference each other. [`Gc<T>`] does the same.
//! It is a single-threaded reference-counted pointer like `std::rc::Rc`, whose boxes come from poolgc's
//! pools, plus a collector — Bacon and Rajan's synchronous *trial deletion* — that finds garbage cycles.
//!
//! ```
//! use core::cell::RefCell;
//! use poolgc::gc::{self, Gc, Trace, Tracer};
//!
//! struct Node {
//!     next: RefCell<Option<Gc<Node>>>,
//! }
//! // SAFETY: visits the only field that can own a `Gc`, once.
//! unsafe impl Trace for Node {
//!     fn trace(&self, t: &mut Tracer) {
//!         self.next.trace(t);
//!     }
//! }
//!
//! let a = Gc::new(Node { next: RefCell::new(None) });
//! let b = Gc::new(Node { next: RefCell::new(Some(a.clone())) });
//! *a.next.borrow_mut() = Some(b.clone()); // a -> b -> a
//! assert_eq!(Gc::strong_count(&a), 2);     // `a`, and b.next
//! drop((a, b));                            // both counts fall to 1: not freed by counting alone
//! assert_eq!(gc::collect(), 2);            // the collector finds the cycle
//! ```
//!
//! With feature `derive`, `#[derive(Trace)]` writes the `Trace` impl. Unsized values work too:
//! `Gc<str>` from a `&str` or `String`, `Gc<[T]>` from a `Vec<T>`, a `&[T]` or an iterator.
//!
//! As in Python, objects can be made immortal ([`Gc::make_immortal`]), weak references can carry a
//! callback ([`Gc::downgrade_with`], [`finalize`]), and [`WeakValueMap`], [`WeakKeyMap`] and [`WeakSet`]
//! forget what died.
//!
//! To find memory problems as with Python's `gc` module, objgraph and `sys._debugmallocstats()`:
//! [`GcAny`] (a handle to an object of any type), [`get_referents`], [`is_tracked`], [`getsizeof`],
//! [`DEBUG_SAVEALL`] and [`garbage`], the DOT graphs [`write_dot`] and `write_backrefs_dot`, one
//! [`report`] of everything; with feature `gc-introspect`, `get_objects`, `get_referrers` and `census`.
//!
//! # How it works
//!
//! * Cloning a `Gc` adds one to the count, dropping subtracts one. At zero, the value is dropped and the
//!   box freed at once, as in CPython (and `Rc`).
//! * A drop that leaves the count above zero may have just cut the last outside reference to a cycle, so
//!   the box goes into this thread's *possible-roots buffer* (Bacon–Rajan's purple), once.
//!   [`count()`] is the buffer's length. Once it has reached [`threshold()`] (700 by default, CPython's
//!   first generation), the next `Gc` allocation runs a collection automatically (allocation is where
//!   CPython and rust-cc start theirs too), unless [`disable`]d (and, with `std`, not while the thread is
//!   unwinding from a panic) — and once the last collection's cost is paid for (see [`threshold()`]), so
//!   that automatic collection does work linear in the program's, however large the live graph.
//!   [`set_work_budget`] bounds the objects one automatic collection visits, for short pauses.
//! * A collection ([`collect()`]) trial-deletes from the buffered roots: it subtracts every reference that
//!   comes from inside the graph reachable from them (MarkGray), keeps what still has outside references
//!   and all it reaches (Scan), and frees the rest (CollectRoots). Every traversal uses an explicit stack,
//!   so a million-node list is collected without deep recursion.
//! * Types that cannot own a `Gc` (`Trace::ACYCLIC`, computed at compile time — strings, numbers,
//!   `Vec<u8>`, a struct of those) are *green*: never buffered, never traversed.
//! * [`freeze()`] makes everything alive now invisible to the collector, as `gc.freeze()` does.
//!
//! # Destruction of garbage, and what `Drop` may do
//!
//! The values of a garbage cycle are all dropped first, while every box of the cycle is still allocated,
//! then the boxes are freed. A `Drop` impl that reaches another member of its own cycle finds it marked
//! dead: `Deref` panics with a clear message, [`Gc::try_deref`] and [`Weak::upgrade`] return `None` — it never
//! reads freed memory. A `Drop` that stores a handle to a member into a live structure (*resurrection*)
//! keeps that box allocated as a *zombie* (its value is gone; deref panics) until that handle is dropped;
//! the rest of the cycle is freed normally. A panic in `Drop` or in `trace` propagates after the collector
//! has restored its state (see [`Trace`] for the contract and the cost of breaking it) — except that a
//! garbage `Drop`'s panic in an *automatic* collection (one the threshold started inside a `Gc` allocation) is
//! swallowed and counted in [`GcStats::drop_panics_ignored`], as CPython reports "Exception ignored".
//!
//! # Threads, and `no_std`
//!
//! `Gc` and `Weak` are `!Send` and `!Sync`. With `std`, each thread has its own buffer, threshold and
//! statistics, and collects only its own objects; a thread that exits runs one last collection (even
//! if [`disable`]d), so its garbage cycles do not outlive it. Without `std`, there is one collector state for the
//! program, unlocked by the `unsafe` `init_single_threaded()` whose contract is that all `Gc` use happens
//! in one execution context; until then `Gc::new` and these functions panic. No safe code can make two
//! contexts touch the collector at once.
//!
//! # Where boxes come from
//!
//! With feature `os`, a process-wide `PoolAlloc` of the collector's own ([`box_allocator`]) serves every
//! box, whatever the program's global allocator is. Without `os` (firmware), boxes come from the global
//! allocator, which is expected to be a `PoolAlloc`. Allocation failure calls `handle_alloc_error`.

mod analysis;
#[cfg(feature = "gc-introspect")]
mod census;
mod collector;
mod gcbox;
mod graph;
mod introspect;
mod ptr;
#[cfg(feature = "gc-introspect")]
mod registry;
mod report;
mod slice;
mod state;
mod trace;
mod weak;
mod weak_cb;
mod weak_map;

#[cfg(feature = "gc-introspect")]
#[cfg_attr(docsrs, doc(cfg(feature = "gc-introspect")))]
pub use census::{census, get_objects, get_referrers, Census, Growth, TypeCount};
pub use gcbox::box_allocator;
#[cfg(feature = "gc-introspect")]
#[cfg_attr(docsrs, doc(cfg(feature = "gc-introspect")))]
pub use graph::write_backrefs_dot;
pub use graph::{short_type_name, write_dot, ExtraInfo};
pub use introspect::{
    garbage, get_debug, get_referents, getsizeof, is_tracked, set_debug, take_garbage, GcAny,
    GcObject, DEBUG_SAVEALL,
};
pub use ptr::{Gc, IMMORTAL_COUNT};
pub use report::report;
pub use state::init_single_threaded;
pub use trace::{Trace, Tracer};
pub use weak::{finalize, Finalizer, Weak};
pub use weak_map::{WeakKeyMap, WeakSet, WeakValueMap};

/// `#[derive(Trace)]` (feature `derive`): visits every field; `ACYCLIC` is the AND of the fields'.
#[cfg(feature = "derive")]
#[cfg_attr(docsrs, doc(cfg(feature = "derive")))]
pub use poolgc_derive::Trace;

use alloc::boxed::Box;
use core::time::Duration;

/// Runs a collection now and returns the number of objects found to be garbage (`gc.collect()`): the
/// collector dropped each one's value (with `std`, a `Drop` that panicked counts: its value was dropped
/// as far as it went). Their boxes are freed, except for those a `Drop` resurrected, which stay allocated
/// as zombies until their last handle goes; they are included in the count (and in
/// [`GcStats::resurrected`]).
///
/// If a garbage `Drop` panics: with `std`, the other values are still dropped and their boxes freed, then
/// the first panic is resumed (so nothing is returned). Without `std`, the panic ends the collection:
/// the values not dropped yet are leaked, boxes nothing references any more are freed, and a box still
/// referenced (by a resurrecting `Drop`, or by a `Gc` inside a leaked value) stays allocated for good as
/// a zombie, counted in [`GcStats::resurrected`]; [`GcStats::collected`] does not count that collection.
///
/// (About all the functions here: with `std`, once this thread's collector state is destroyed — code
/// running in thread-local destructors after it — they do nothing and return neutral values: 0, false,
/// the defaults. Without `std`, they panic until `init_single_threaded` was called.)
///
/// Returns 0 without doing anything when called while this thread is already collecting (from a `Drop`
/// or a callback).
pub fn collect() -> usize {
    state::with_or(0, |s| collector::collect(s, false))
}

/// Turns automatic collection on (`gc.enable()`; the default).
pub fn enable() {
    state::with_or((), |s| s.enabled.set(true));
}

/// Turns automatic collection off (`gc.disable()`). Possible roots are still buffered, [`collect`]
/// still works, and a thread that exits still runs its last collection.
pub fn disable() {
    state::with_or((), |s| s.enabled.set(false));
}

/// Whether automatic collection is on (`gc.isenabled()`).
pub fn is_enabled() -> bool {
    state::with_or(false, |s| s.enabled.get())
}

/// Sets how many possible roots trigger an automatic collection (`gc.set_threshold(n)`); 0 is taken as 1.
/// Also clears the last collection's debt (see below).
pub fn set_threshold(possible_roots: usize) {
    let t = possible_roots.max(1);
    state::with_or((), |s| {
        s.threshold.set(t);
        s.debt.set(0);
    });
}

/// The threshold last set (`gc.get_threshold()[0]`); 700 by default.
///
/// An automatic collection starts at a `Gc` allocation, once this many possible roots are buffered and
/// the last collection is paid for: a collection that visits `v` objects of which `g` are garbage leaves
/// a debt of `v - g`, and the next automatic one waits for that many allocations as well. Visiting
/// garbage costs nothing extra (each object is freed once); visiting live objects is paid for by the
/// program's own work since. So all automatic collections together visit at most the objects allocated
/// plus the objects freed (plus the last one's visits),
/// whatever the size of the live graph (CPython 3.12 bounds its full collections the same way, by the
/// growth of the long-lived population). [`GcStats::effective_threshold`] shows what the next automatic
/// collection waits for.
pub fn threshold() -> usize {
    state::with_or(state::DEFAULT_THRESHOLD, |s| s.threshold.get())
}

/// Bounds the objects one *automatic* collection visits (`None`, the default: no bound), for programs
/// that need short pauses. [`collect`] is never bounded.
///
/// A bounded collection takes boxes into its analysis until the budget is reached; roots it did not get
/// to, and roots it could not decide, stay buffered for the next one, first in line. A possible root
/// whose graph alone exceeds the budget is set aside (it stays counted in [`count`]) for the next
/// unbounded collection. So garbage that fits in the budget (what a possible root reaches is smaller than
/// the budget) is freed as usual; a larger garbage structure is only found by an unbounded collection:
/// call [`collect`] now and then, or turn the budget off (a thread that exits runs one too). A set-aside
/// root whose value dies (freed by counting) is freed by a later bounded collection.
/// `Some(0)` is taken as `Some(1)`.
///
/// ```
/// use poolgc::gc;
/// gc::set_work_budget(Some(10_000));
/// assert_eq!(gc::work_budget(), Some(10_000));
/// // ... each automatic collection now visits at most 10 000 objects ...
/// gc::set_work_budget(None);
/// ```
pub fn set_work_budget(objects: Option<usize>) {
    let b = objects.map_or(usize::MAX, |b| b.max(1));
    state::with_or((), |s| s.budget.set(b));
}

/// The work budget of automatic collections ([`set_work_budget`]); `None` when unbounded.
pub fn work_budget() -> Option<usize> {
    state::with_or(None, |s| Some(s.budget.get()).filter(|&b| b != usize::MAX))
}

/// The number of possible roots buffered now (`gc.get_count()[0]`).
///
/// With a work budget this includes the roots set aside for the next unbounded collection.
pub fn count() -> usize {
    state::with_or(0, |s| s.roots.borrow().len() + s.deferred.borrow().len())
}

/// Freezes every object alive now (`gc.freeze()`): they are never buffered or traversed again until
/// [`unfreeze`]. Use it, like CPython, after building a large long-lived structure, so collections stop
/// rescanning it. The buffer is emptied into the frozen set.
///
/// Called while this thread is collecting (from a `Drop` or a callback), it takes effect when the
/// collection ends; calling it from `trace` breaks the [`Trace`] contract.
pub fn freeze() {
    state::with_or((), |s| collector::request_freeze(s, true));
}

/// Unfreezes everything (`gc.unfreeze()`). Frozen objects whose count fell (without reaching zero) while
/// frozen become possible roots again, so cycles made garbage meanwhile are found by the next collection.
///
/// Called while this thread is collecting, it takes effect when the collection ends (as [`freeze`]).
pub fn unfreeze() {
    state::with_or((), |s| collector::request_freeze(s, false));
}

/// The number of live frozen objects (`gc.get_freeze_count()`).
pub fn get_freeze_count() -> usize {
    state::with_or(0, |s| s.frozen_live.get())
}

/// Collector statistics for this thread (`gc.get_stats()`), from [`stats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct GcStats {
    /// Collections run (automatic and explicit).
    pub collections: u64,
    /// Objects found to be garbage by the collector, in all (see [`collect`] for what that counts).
    pub collected: u64,
    /// Garbage objects whose box stayed allocated after their collection (zombies): a `Drop` resurrected
    /// them, kept until their last handle goes; or, without `std`, a `Gc` in a value leaked by a `Drop`
    /// that unwound still references them, kept for good.
    pub resurrected: u64,
    /// Panics of garbage `Drop`s swallowed by automatic collections (CPython's "Exception ignored in
    /// ..."): a collection started by the threshold inside a `Gc` allocation drops such payloads instead of
    /// unwinding out of that allocation. An explicit [`collect`] resumes the first one instead.
    pub drop_panics_ignored: u64,
    /// Time spent in collections (with `std`; zero without).
    pub time: Duration,
    /// The longest collection (with `std`; zero without): the longest pause the collector made.
    pub longest_pause: Duration,
    /// Objects visited (taken into an analysis and traced) by all collections: the collector's work.
    pub visited: u64,
    /// The most objects one collection visited.
    pub most_visited: usize,
    /// `Gc` objects made by this thread and not yet freed.
    pub live: usize,
    /// Possible roots buffered now ([`count`]).
    pub buffered: usize,
    /// The threshold set ([`threshold`]).
    pub threshold: usize,
    /// Possible roots the next automatic collection waits for: the threshold, or the last collection's
    /// debt if larger (see [`threshold`]).
    pub effective_threshold: usize,
    /// The work budget of automatic collections ([`work_budget`]).
    pub work_budget: Option<usize>,
    /// Live frozen objects ([`get_freeze_count`]).
    pub frozen: usize,
    /// Whether automatic collection is on.
    pub enabled: bool,
}

/// This thread's collector statistics (`gc.get_stats()`).
pub fn stats() -> GcStats {
    state::with_or(GcStats::default(), |s| GcStats {
        collections: s.collections.get(),
        collected: s.collected.get(),
        resurrected: s.resurrected.get(),
        drop_panics_ignored: s.drop_panics_ignored.get(),
        time: Duration::from_nanos(s.time_ns.get()),
        longest_pause: Duration::from_nanos(s.longest_pause_ns.get()),
        visited: s.visited.get(),
        most_visited: s.most_visited.get(),
        live: s.live.get(),
        buffered: s.roots.borrow().len() + s.deferred.borrow().len(),
        threshold: s.threshold.get(),
        effective_threshold: s.threshold.get().max(s.debt.get()),
        work_budget: Some(s.budget.get()).filter(|&b| b != usize::MAX),
        frozen: s.frozen_live.get(),
        enabled: s.enabled.get(),
    })
}

/// When a callback runs (`gc.callbacks`' `phase`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Before a collection.
    Start,
    /// After a collection.
    Stop,
}

/// What a callback is told (`gc.callbacks`' `info`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CallbackInfo {
    /// Possible roots in the buffer when the collection started.
    pub buffered: usize,
    /// Objects found to be garbage (0 at [`Phase::Start`]).
    pub collected: usize,
    /// Objects the collection visited (0 at [`Phase::Start`]).
    pub visited: usize,
}

/// Identifies a callback for [`remove_callback`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CallbackId(u64);

/// Registers `f` to run before and after every collection on this thread (`gc.callbacks.append(f)`).
///
/// A callback may add callbacks (they run from the next collection on); a `collect()` inside one does
/// nothing. Callbacks are set aside while they run, so `remove_callback` from inside a callback finds
/// none of them (it returns false).
pub fn add_callback(f: impl FnMut(Phase, &CallbackInfo) + 'static) -> CallbackId {
    let f: state::Callback = Box::new(f);
    state::with_or(CallbackId(0), |s| {
        let id = s.next_callback_id.get();
        s.next_callback_id.set(id + 1);
        s.callbacks.borrow_mut().push((id, f));
        CallbackId(id)
    })
}

/// Unregisters a callback (`gc.callbacks.remove(f)`); false if it was not registered.
pub fn remove_callback(id: CallbackId) -> bool {
    let removed = state::with_or(None, |s| {
        let mut cbs = s.callbacks.borrow_mut();
        cbs.iter()
            .position(|(i, _)| *i == id.0)
            .map(|pos| cbs.remove(pos))
    });
    // Dropped outside the borrow: the closure's own drop may use the collector.
    removed.is_some()
}
