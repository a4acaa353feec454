//! Where the collector's state lives: one per thread with `std`, one per program without.
//!
//! # With `std`
//! A `thread_local!` with a `const` initialiser (no lazy-init allocation). `Gc` is `!Send`/`!Sync`, so a
//! box is only ever touched by the thread that made it, and that thread's state is the only one that
//! buffers it. When the thread exits, its state runs one last collection and is destroyed (see `Drop for
//! State`). A `Gc` dropped later in that thread's teardown (another thread-local holding one) finds no
//! state and takes the stateless path: a count that reaches zero still frees at once (through the
//! trashcan, whose storage outlives the state, so a long chain does not recurse), a decrement to
//! non-zero is not buffered (a cycle made garbage that late is leaked rather than chased through destroyed
//! state), and the `gc::` functions return neutral values.
//!
//! # Without `std`
//! There is no portable notion of "thread", so there is one state for the program, in a `static`. It is
//! sound only if every `Gc` operation happens in one execution context (say the main loop, not an
//! interrupt handler or a second RTOS task); the compiler cannot check that, so the state is locked until
//! the program says so with `unsafe { poolgc::gc::init_single_threaded() }`. Before that, every `Gc`
//! operation that needs the state panics; no safe code can reach the state from two contexts.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::cell::{Cell, RefCell};
use core::ptr::NonNull;

use super::analysis::Scratch;
use super::gcbox::Header;
use super::{CallbackInfo, Phase};

/// A user callback run before and after every collection.
pub(crate) type Callback = Box<dyn FnMut(Phase, &CallbackInfo)>;

/// The collector's per-thread (or per-program) state. Every field is a `Cell` or a `RefCell` whose borrow
/// never spans user code, so `Drop`/`trace` code that re-enters the collector finds it consistent.
pub(crate) struct State {
    /// The possible-roots buffer: boxes with `BUFFERED`.
    pub(crate) roots: RefCell<Vec<NonNull<Header>>>,
    /// Possible roots whose graph is larger than the work budget (`BUFFERED`, owned by this list): left
    /// to the next unbounded collection, which takes them back into the analysis.
    pub(crate) deferred: RefCell<Vec<NonNull<Header>>>,
    /// `visited` when `deferred` was last swept of dead boxes.
    pub(crate) deferred_swept: Cell<u64>,
    /// Frozen boxes decremented to non-zero while frozen (`FROZEN_CANDIDATE`), for `unfreeze()`.
    pub(crate) frozen_candidates: RefCell<Vec<NonNull<Header>>>,
    pub(crate) enabled: Cell<bool>,
    pub(crate) collecting: Cell<bool>,
    pub(crate) threshold: Cell<usize>,
    /// Boxes allocated since the last collection: the program activity that pays for the next.
    pub(crate) since: Cell<usize>,
    /// What the last collection cost beyond the garbage it found (live objects visited): the next
    /// automatic collection waits until `since` reaches it (see `collector::note_new_box`).
    pub(crate) debt: Cell<usize>,
    /// Most objects an automatic collection may visit; `usize::MAX` when unbounded.
    pub(crate) budget: Cell<usize>,
    /// Birth epoch given to new boxes; `freeze()` advances it.
    pub(crate) epoch: Cell<u32>,
    /// Boxes with `epoch < freeze_mark` are frozen; 0 when nothing is.
    pub(crate) freeze_mark: Cell<u32>,
    /// A `freeze()` (`true`) or `unfreeze()` (`false`) called during a collection, applied when it ends
    /// (the last call wins).
    pub(crate) pending_freeze: Cell<Option<bool>>,
    /// Boxes made by this thread and not yet freed.
    pub(crate) live: Cell<usize>,
    /// Of those, frozen ones.
    pub(crate) frozen_live: Cell<usize>,
    pub(crate) collections: Cell<u64>,
    pub(crate) collected: Cell<u64>,
    pub(crate) resurrected: Cell<u64>,
    /// Garbage `Drop` panics an automatic collection swallowed.
    pub(crate) drop_panics_ignored: Cell<u64>,
    pub(crate) time_ns: Cell<u64>,
    /// Objects visited (taken into an analysis) by all collections.
    pub(crate) visited: Cell<u64>,
    /// The longest collection, in nanoseconds (with `std`).
    pub(crate) longest_pause_ns: Cell<u64>,
    /// The most objects one collection visited.
    pub(crate) most_visited: Cell<usize>,
    /// The analysis' buffers between collections (see [`Scratch`]).
    pub(crate) scratch: Cell<Scratch>,
    pub(crate) callbacks: RefCell<Vec<(u64, Callback)>>,
    pub(crate) next_callback_id: Cell<u64>,
    /// The trashcan's depth (see [`with_trashcan`]); with `std` it is a thread-local of its own.
    #[cfg(not(feature = "std"))]
    drop_depth: Cell<u32>,
    /// The trashcan's list (see [`with_trashcan`]); with `std` it is a thread-local of its own.
    #[cfg(not(feature = "std"))]
    trash: RefCell<Vec<NonNull<Header>>>,
}

/// CPython's first-generation threshold.
pub(crate) const DEFAULT_THRESHOLD: usize = 700;

impl State {
    pub(crate) const fn new() -> State {
        State {
            roots: RefCell::new(Vec::new()),
            deferred: RefCell::new(Vec::new()),
            deferred_swept: Cell::new(0),
            frozen_candidates: RefCell::new(Vec::new()),
            enabled: Cell::new(true),
            collecting: Cell::new(false),
            threshold: Cell::new(DEFAULT_THRESHOLD),
            since: Cell::new(0),
            debt: Cell::new(0),
            budget: Cell::new(usize::MAX),
            epoch: Cell::new(1),
            freeze_mark: Cell::new(0),
            pending_freeze: Cell::new(None),
            live: Cell::new(0),
            frozen_live: Cell::new(0),
            collections: Cell::new(0),
            collected: Cell::new(0),
            resurrected: Cell::new(0),
            drop_panics_ignored: Cell::new(0),
            time_ns: Cell::new(0),
            visited: Cell::new(0),
            longest_pause_ns: Cell::new(0),
            most_visited: Cell::new(0),
            scratch: Cell::new(Scratch::new()),
            callbacks: RefCell::new(Vec::new()),
            next_callback_id: Cell::new(1),
            #[cfg(not(feature = "std"))]
            drop_depth: Cell::new(0),
            #[cfg(not(feature = "std"))]
            trash: RefCell::new(Vec::new()),
        }
    }

    /// Whether `h` is frozen.
    #[inline(always)]
    pub(crate) fn is_frozen(&self, h: &Header) -> bool {
        h.epoch.get() < self.freeze_mark.get()
    }

    /// Book-keeping for a box about to be freed.
    #[inline]
    pub(crate) fn note_freed(&self, h: &Header) {
        self.live.set(self.live.get().saturating_sub(1));
        if self.is_frozen(h) {
            self.frozen_live
                .set(self.frozen_live.get().saturating_sub(1));
        }
    }
}

impl Drop for State {
    /// Thread exit: drop the callbacks (without calling them), then one last collection (even if
    /// automatic collection is disabled), so that a thread that ends does not leak the garbage cycles
    /// still waiting in its buffer (CPython collects at finalization too); then release the buffers.
    /// Their boxes' values are either dropped already (count zero: free the box now) or still
    /// referenced (forget the entry; the last handle frees the box).
    ///
    /// During this, the thread's state reads as destroyed: `Drop` impls that run take the stateless
    /// path (no buffering, except for handles dropped with the callbacks, which are buffered for the last
    /// collection; the trashcan still works), the `gc::` functions return neutral values, and callbacks
    /// are not called. A panic from a `Drop` is contained here (unwinding out of a thread-local
    /// destructor would abort).
    fn drop(&mut self) {
        let callbacks = core::mem::take(self.callbacks.get_mut());
        #[cfg(feature = "std")]
        {
            let this = &*self;
            // The callbacks go first (they are not called during teardown): a closure may hold the last
            // outside handle to a cycle, which must then be buffered for the last collection. While they
            // drop, `buffer` finds this state through `DYING`; `collecting` keeps that from starting a
            // collection.
            this.collecting.set(true);
            DYING.with(|d| d.set(this));
            let drop_callbacks = move || drop(callbacks);
            let _ = std::panic::catch_unwind(core::panic::AssertUnwindSafe(drop_callbacks));
            DYING.with(|d| d.set(core::ptr::null()));
            this.collecting.set(false);
            // Also when automatic collection is disabled: like CPython's `gc.disable()`, that only stops
            // automatic collections, and this one is the thread's last chance.
            if !this.roots.borrow().is_empty() || !this.deferred.borrow().is_empty() {
                let collect = || super::collector::collect(this, false);
                let _ = std::panic::catch_unwind(core::panic::AssertUnwindSafe(collect));
            }
        }
        #[cfg(not(feature = "std"))]
        drop(callbacks);
        // Only left over if a drop panicked while the trash was emptied: those values leak, their boxes
        // are freed (no user code runs in thread teardown from here).
        let trash = with_trashcan(|_, t| core::mem::take(&mut *t.borrow_mut())).unwrap_or_default();
        for h in trash {
            // SAFETY: a trashed box is held by the trash (+1), hence allocated.
            let hr = unsafe { h.as_ref() };
            hr.strong.set(0);
            if hr.is_unowned() {
                // SAFETY: nothing else owns it; its value is leaked, never read again.
                unsafe { super::gcbox::free_box(h) };
            }
        }
        let roots = core::mem::take(self.roots.get_mut());
        let deferred = core::mem::take(self.deferred.get_mut());
        let frozen = core::mem::take(self.frozen_candidates.get_mut());
        for h in roots.into_iter().chain(deferred).chain(frozen) {
            // SAFETY: a buffered box is owned by the buffer, hence allocated.
            let hr = unsafe { h.as_ref() };
            hr.clear(super::gcbox::Flags::BUFFERED | super::gcbox::Flags::FROZEN_CANDIDATE);
            if hr.is_unowned() {
                // SAFETY: no handle and no buffer owns it any more, and a zero count means the value was
                // dropped when the count got there.
                unsafe { super::gcbox::free_box(h) };
            }
        }
    }
}

#[cfg(feature = "std")]
std::thread_local! {
    static STATE: State = const { State::new() };
    /// Nesting of value drops started by counts reaching zero (the trashcan's depth).
    static DROP_DEPTH: Cell<u32> = const { Cell::new(0) };
    /// Boxes whose count reached zero too deep in nested drops; dropped iteratively by the outermost
    /// release (CPython's trashcan). Each is `DROPPED` and held (+1) until its value is dropped.
    ///
    /// `ManuallyDrop`, like `DROP_DEPTH` needing no drop, so that neither registers a thread-local
    /// destructor: both stay usable during thread teardown, after `STATE` is destroyed, and a long chain
    /// dropped then is still dropped iteratively. The price: the list's buffer (a few pointers: the
    /// trash is emptied as it fills) is leaked when a thread that used it exits.
    static TRASH: core::mem::ManuallyDrop<RefCell<Vec<NonNull<Header>>>> =
        const { core::mem::ManuallyDrop::new(RefCell::new(Vec::new())) };
}

/// Runs `f` with the trashcan's depth counter and list: with `std`, thread-locals that outlive the
/// thread's `State` (usable all through thread teardown); without `std`, in the program's state.
/// `None` only where no such storage can be reached (without `std`, before `init_single_threaded`).
#[cfg(feature = "std")]
#[inline]
pub(crate) fn with_trashcan<R>(
    f: impl FnOnce(&Cell<u32>, &RefCell<Vec<NonNull<Header>>>) -> R,
) -> Option<R> {
    DROP_DEPTH
        .try_with(|d| TRASH.try_with(|t| f(d, t)).ok())
        .ok()
        .flatten()
}

/// Runs `f` with the trashcan's depth counter and list (see the `std` variant).
#[cfg(not(feature = "std"))]
#[inline]
pub(crate) fn with_trashcan<R>(
    f: impl FnOnce(&Cell<u32>, &RefCell<Vec<NonNull<Header>>>) -> R,
) -> Option<R> {
    try_with(|s| f(&s.drop_depth, &s.trash))
}

#[cfg(feature = "std")]
std::thread_local! {
    /// The thread's state while its destructor drops the callbacks (null otherwise). A raw pointer needs
    /// no drop, so this registers no destructor and stays readable during teardown.
    static DYING: Cell<*const State> = const { Cell::new(core::ptr::null()) };
}

/// Runs `f` with the thread's state while its destructor drops the callbacks (see `Drop for State`):
/// only `buffer` uses this, so that a handle a callback closure held is buffered for the last collection.
#[cfg(feature = "std")]
pub(crate) fn with_dying<R>(f: impl FnOnce(&State) -> R) -> Option<R> {
    let p = DYING.try_with(Cell::get).ok()?;
    // SAFETY: `DYING` is non-null only while `Drop for State` runs the callbacks' drops, during which the
    // state is alive and only accessed through shared references (`this` there, this one here).
    (!p.is_null()).then(|| f(unsafe { &*p }))
}

/// Runs `f` with this thread's state, or returns `None` once the thread's state is destroyed.
#[cfg(feature = "std")]
#[inline]
pub(crate) fn try_with<R>(f: impl FnOnce(&State) -> R) -> Option<R> {
    STATE.try_with(f).ok()
}

#[cfg(not(feature = "std"))]
mod global {
    use super::State;
    use core::sync::atomic::{AtomicBool, Ordering};

    /// The program's one state. See the module docs for why sharing it is sound.
    pub(super) struct Global(pub(super) State);
    // SAFETY: `State` is only reached through `try_with`, which refuses until `init_single_threaded` was
    // called, whose contract is that every `Gc` operation of the program happens in one execution context
    // from then on; so no two contexts ever touch the state (or any box) concurrently.
    unsafe impl Sync for Global {}

    pub(super) static STATE: Global = Global(State::new());
    pub(super) static READY: AtomicBool = AtomicBool::new(false);

    #[inline]
    pub(super) fn ready() -> bool {
        READY.load(Ordering::Acquire)
    }
}

/// Declares that this program uses `Gc` from one execution context only (feature `gc` without `std`).
///
/// Without `std` the collector has one state for the whole program, not one per thread; this call
/// unlocks it. Until it is made, [`Gc::new`](super::Gc::new) and the `gc` control functions panic. With
/// `std`, state is per thread and this function does nothing (it exists so that turning `std` on never
/// removes it).
///
/// # Safety
/// From the call on, every `Gc`/`Weak` operation and every `poolgc::gc` function must run in the same
/// execution context as this call: never concurrently from an interrupt handler, another core, or another
/// RTOS task. (`Gc` being `!Send`/`!Sync` keeps handles where they were made; this contract covers the
/// program-wide collector state they share.)
pub unsafe fn init_single_threaded() {
    #[cfg(not(feature = "std"))]
    global::READY.store(true, core::sync::atomic::Ordering::Release);
}

/// Runs `f` with the program's state; `None` until [`init_single_threaded`] was called.
#[cfg(not(feature = "std"))]
#[inline]
pub(crate) fn try_with<R>(f: impl FnOnce(&State) -> R) -> Option<R> {
    if global::ready() {
        Some(f(&global::STATE.0))
    } else {
        None
    }
}

/// Runs `f` with the state for the public control functions: with `std`, `default` once the thread's
/// state is destroyed (thread teardown: a `Drop` calling `gc::collect()` then must not panic inside a
/// thread-local destructor); without `std`, panics before `init_single_threaded`.
#[inline]
pub(crate) fn with_or<R>(default: R, f: impl FnOnce(&State) -> R) -> R {
    #[cfg(feature = "std")]
    {
        try_with(f).unwrap_or(default)
    }
    #[cfg(not(feature = "std"))]
    {
        drop(default);
        with(f)
    }
}

/// Runs `f` with the state; panics before `init_single_threaded`.
#[cfg(not(feature = "std"))]
#[inline]
pub(crate) fn with<R>(f: impl FnOnce(&State) -> R) -> R {
    match try_with(f) {
        Some(r) => r,
        None => no_state(),
    }
}

#[cfg(not(feature = "std"))]
#[cold]
#[inline(never)]
fn no_state() -> ! {
    panic!("poolgc::gc: call `unsafe {{ poolgc::gc::init_single_threaded() }}` before using Gc");
}
