//! Bacon & Rajan's synchronous cycle collector ("Concurrent Cycle Collection in Reference Counted
//! Systems", ECOOP 2001, section 3), iterative throughout.
//!
//! * A decrement that leaves a count above zero makes the box a *possible root* (purple): it is put in the
//!   thread's buffer, once (`BUFFERED`). Green boxes (`Trace::ACYCLIC`) and frozen ones are not.
//! * **MarkRoots**: roots whose value is already dropped leave the buffer (and are freed if nothing else
//!   holds them: the `Release` rule is that a buffered box is only ever freed here). From each remaining
//!   root, **MarkGray** walks the graph with an explicit stack, calling `trace` once per box and
//!   recording the edges it reports; every edge subtracts one from its target's *trial count* (a copy of
//!   its strong count kept by the analysis; the header's count is never changed).
//! * **ScanRoots**: a box whose trial count is still above zero is referenced from outside the graph; it
//!   and everything reachable from it over the *recorded* edges is marked live (**ScanBlack**, again with
//!   an explicit stack, and without calling `trace` again: see `analysis`).
//! * **CollectRoots**: what was reached but not marked live is garbage (white). All white boxes are marked `DROPPED` and held (+1) by the collector; then every white
//!   value is dropped while all white boxes are still allocated; then the holds are released and boxes
//!   whose count fell to zero are freed. A box a `Drop` stored somewhere keeps a count, stays allocated
//!   with its value dropped (a *zombie*: deref panics, `upgrade` says `None`), and is freed when its last
//!   handle goes. Nothing else of the cycle leaks because of it.
//!
//! When automatic collections run (the threshold, and the debt that makes their total work linear) is
//! explained in `buffer_in` and `gc::threshold`; a work budget bounds each one (see `analysis`).
//!
//! User code runs in two places: `trace` during analysis (if it panics, [`Analysis`]'s drop restores
//! every mark and puts the roots back in the buffer) and `Drop` during CollectRoots (with `std`
//! each drop is caught, the rest still dropped and freed, then the first panic resumed — or, in an
//! automatic collection, swallowed and counted; without `std` the unwinding drop ends the collection: the
//! values not dropped yet are leaked, and a guard releases every hold — see `drop_garbage`). Either way
//! the collector stays usable.

use alloc::vec::Vec;
use core::cell::RefCell;
use core::mem;
use core::ptr::NonNull;

use super::analysis::Analysis;
use super::gcbox::{free_box, Flags, Header};
use super::state::{self, State};
use super::weak_cb;
use super::{CallbackInfo, Phase};

/// The header behind a box pointer.
///
/// Module invariant (why this private helper is not `unsafe`): every `NonNull<Header>` the collector
/// handles points to an allocated box — held by a handle, by the buffer or frozen-candidates list (the
/// ownership bits), by the trash, or by the collector's own +1 during a collection — and the returned
/// reference is only used while that holds.
#[inline(always)]
pub(super) fn hdr<'a>(h: NonNull<Header>) -> &'a Header {
    // SAFETY: every caller passes a box that is allocated for the duration of the borrow (held by a
    // handle, by the buffer, or by the collector during a collection).
    unsafe { &*h.as_ptr() }
}

/// Frees `h` if nothing owns it any more.
///
/// # Safety
/// `h` is allocated, and its value is dropped (or `strong > 0` so it will not be freed).
#[inline]
pub(super) unsafe fn free_if_unowned(h: NonNull<Header>) {
    let hr = hdr(h);
    if hr.is_unowned() {
        state::try_with(|s| s.note_freed(hr));
        // SAFETY: no handle, buffer or collector owns it; the value is gone (caller).
        unsafe { free_box(h) };
    }
}

/// Nested value drops beyond this depth are deferred to the trash (CPython's trashcan), so that dropping
/// a long chain by counting (`a -> b -> c -> …`, a million long) does not recurse a million deep.
const TRASH_DEPTH: u32 = 64;

/// The last strong handle to `h` was dropped: drop the value (unless the collector did), free the box
/// unless a `Weak` or the buffer still holds it.
///
/// # Safety
/// `h` is allocated and its strong count just reached zero.
#[inline(never)]
pub(crate) unsafe fn release(h: NonNull<Header>) {
    let hr = hdr(h);
    if hr.has(Flags::DROPPED) {
        // SAFETY: a zombie: its value was dropped by the collector.
        unsafe { free_if_unowned(h) };
        return;
    }
    // Hold the box while its value drops (or waits in the trash): the `Drop` may start a collection,
    // which must not free a buffered box whose count reads zero from under us.
    hr.set(Flags::DROPPED);
    hr.strong.set(1);
    let outermost = state::with_trashcan(|depth, trash| {
        let d = depth.get();
        if d >= TRASH_DEPTH {
            trash.borrow_mut().push(h);
            return None;
        }
        depth.set(d + 1);
        Some(d == 0)
    });
    match outermost {
        // Deferred: the outermost release drops it.
        Some(None) => {}
        Some(Some(outer)) => {
            struct Depth;
            impl Drop for Depth {
                fn drop(&mut self) {
                    state::with_trashcan(|depth, _| depth.set(depth.get() - 1));
                }
            }
            let depth = Depth;
            // SAFETY: `h` is allocated and held by the +1 set above; its value is not dropped yet
            // (`DROPPED` was clear on entry).
            unsafe { drop_held_value(h) };
            if outer {
                // Empty the trash iteratively, still counted as one level deep.
                while let Some(t) =
                    state::with_trashcan(|_, trash| trash.borrow_mut().pop()).flatten()
                {
                    // SAFETY: trashed boxes are held, `DROPPED`-flagged, with their value still live.
                    unsafe { drop_held_value(t) };
                }
            }
            drop(depth);
        }
        // SAFETY: no trashcan storage (without `std`, before `init_single_threaded`, when no `Gc` can
        // exist; with `std`, a platform whose thread-locals are gone in late teardown): a plain recursive
        // drop, as `Rc` does.
        None => unsafe { drop_held_value(h) },
    }
}

/// Drops the value of a held, `DROPPED`-flagged box, then gives up the hold and frees the box if nothing
/// else owns it — also when the drop unwinds (the rest of the value then leaks).
///
/// # Safety
/// `h` is allocated, held (`strong == 1` by the caller's hold), and its value has not been dropped.
unsafe fn drop_held_value(h: NonNull<Header>) {
    struct Finish(NonNull<Header>);
    impl Drop for Finish {
        fn drop(&mut self) {
            // Unwinding from the value's drop or a callback: the callbacks not run are dropped.
            drop(weak_cb::take(&[self.0]));
            hdr(self.0).strong.set(0);
            // SAFETY: the value is dropped (or its drop unwound); the box is still allocated thanks to
            // the hold given up just now.
            unsafe { free_if_unowned(self.0) };
        }
    }
    let _finish = Finish(h);
    // SAFETY: the box is live, its value not dropped (caller), and nothing can reach the value any more
    // (no strong handle; `upgrade` sees `DROPPED`).
    unsafe { (hdr(h).vtable.drop_value)(h) };
    if hdr(h).has(Flags::WEAK_CB) {
        weak_cb::on_count_death(h);
    }
}

/// A `Weak` handle to `h` was dropped.
///
/// # Safety
/// `h` is allocated and the caller's weak count is being given up.
pub(crate) unsafe fn release_weak(h: NonNull<Header>) {
    let hr = hdr(h);
    hr.weak.set(hr.weak.get() - 1);
    if hr.strong.get() == 0 {
        // SAFETY: count zero means the value was dropped.
        unsafe { free_if_unowned(h) };
    }
}

/// A decrement left `h`'s count above zero: buffer it as a possible root (purple), once.
#[inline]
pub(crate) fn possible_root(h: NonNull<Header>) {
    let hr = hdr(h);
    // One load and one test: green, already buffered, dead, or a frozen candidate.
    if hr.has(Flags::GREEN | Flags::BUFFERED | Flags::DROPPED | Flags::FROZEN_CANDIDATE) {
        return;
    }
    buffer(h);
}

#[inline(never)]
fn buffer(h: NonNull<Header>) {
    if state::try_with(|s| buffer_in(s, h)).is_none() {
        // The state is being destroyed. While its destructor drops the callbacks, they still buffer into
        // it (for the last collection); later there is nothing to buffer into: the decrement stands, a
        // cycle made garbage that late may leak.
        #[cfg(feature = "std")]
        state::with_dying(|s| buffer_in(s, h));
    }
}

fn buffer_in(s: &State, h: NonNull<Header>) {
    let hr = hdr(h);
    if s.is_frozen(hr) {
        hr.set(Flags::FROZEN_CANDIDATE);
        s.frozen_candidates.borrow_mut().push(h);
        return;
    }
    hr.set(Flags::BUFFERED);
    s.roots.borrow_mut().push(h);
}

/// A new box is about to be made: counts it as live and as program activity, and runs an automatic
/// collection if one is due.
///
/// Automatic collections start here, when allocating, as in CPython and rust-cc — not from the drop that
/// buffers a root: a program only reading its data (cloning and dropping handles) allocates nothing, so
/// it never pays for a traversal of the live data it reads, and garbage cannot grow without allocation.
/// A collection is due when the buffer holds `threshold` roots and the last collection's debt is paid.
/// The debt is the live boxes that collection visited, paid by as many allocations since: so all
/// automatic collections together visit at most the boxes allocated plus the boxes freed, plus the last
/// collection's visits — linear in the program's work, however large the live graph its roots reach.
#[inline]
pub(crate) fn note_new_box(s: &State) {
    s.live.set(s.live.get() + 1);
    let since = s.since.get() + 1;
    s.since.set(since);
    if since >= s.debt.get() && s.roots.borrow().len() >= s.threshold.get() {
        auto_collect(s);
    }
}

#[cold]
#[inline(never)]
fn auto_collect(s: &State) {
    // Never while unwinding: the garbage's `Drop`s would run inside a cleanup pad (a panic from one
    // could not be reported, and with `panic = "unwind"` a second panic aborts).
    if s.enabled.get() && !s.collecting.get() && !unwinding() {
        collect(s, true);
    }
}

/// Whether this thread is panicking (with `std`; never known without).
#[inline]
fn unwinding() -> bool {
    #[cfg(feature = "std")]
    return std::thread::panicking();
    #[cfg(not(feature = "std"))]
    false
}

/// Runs one collection; returns the number of objects found to be garbage (their values dropped).
/// Returns 0 at once if a collection is already running on this thread (a `Drop` calling `collect`).
///
/// A garbage `Drop` that panics (with `std`): an explicit collection resumes the first such panic once it
/// has finished; an `automatic` one (started inside a `Gc` drop) never unwinds out of that drop: it drops
/// the payloads and counts them in `drop_panics_ignored` (CPython's "Exception ignored in ...").
pub(crate) fn collect(s: &State, automatic: bool) -> usize {
    if s.collecting.get() {
        return 0;
    }
    s.collecting.set(true);
    struct Reset<'a>(&'a State);
    impl Drop for Reset<'_> {
        fn drop(&mut self) {
            self.0.collecting.set(false);
            // A `freeze()`/`unfreeze()` asked for during the collection (from `trace`, `Drop` or a
            // callback) takes effect now; neither runs user code.
            match self.0.pending_freeze.take() {
                Some(true) => freeze(self.0),
                Some(false) => unfreeze(self.0),
                None => {}
            }
        }
    }
    let _reset = Reset(s);
    let start = Clock::now();
    let buffered = s.roots.borrow().len();
    run_callbacks(
        s,
        Phase::Start,
        &CallbackInfo {
            buffered,
            collected: 0,
            visited: 0,
        },
    );

    sweep_frozen_candidates(s);
    s.since.set(0);
    let mut roots = mem::take(&mut *s.roots.borrow_mut());
    let budget = if automatic {
        s.budget.get()
    } else {
        usize::MAX
    };
    if budget == usize::MAX {
        roots.append(&mut s.deferred.borrow_mut());
    } else {
        // Set-aside roots whose value died meanwhile are freed by a sweep once collections have visited
        // as many boxes as the list holds since the last one: the sweep costs at most one step per box
        // visited, and no dead box waits for an unbounded collection.
        let len = s.deferred.borrow().len();
        if len >= 64 && s.visited.get() - s.deferred_swept.get() >= len as u64 {
            sweep_dead(&s.deferred, Flags::BUFFERED);
            s.deferred_swept.set(s.visited.get());
        }
    }
    let mut analysis = Analysis::new(s, roots, budget);
    analysis.mark_roots();
    analysis.mark_gray();
    analysis.scan();
    let (white, visited) = analysis.finish();
    let collected = white.len();
    // Visiting garbage is paid for by its allocation (an object is freed once); visiting live objects
    // is paid for afterwards, by the activity the next automatic collection waits for.
    s.debt.set(visited.saturating_sub(collected));
    s.visited
        .set(s.visited.get().saturating_add(visited as u64));
    s.most_visited.set(s.most_visited.get().max(visited));
    // With `DEBUG_SAVEALL`, the garbage is kept in `gc::garbage()` instead (nothing is left to drop).
    let white = super::introspect::save_garbage(white);
    let panic = drop_garbage(s, white);

    s.collections.set(s.collections.get() + 1);
    s.collected.set(s.collected.get() + collected as u64);
    let pause = start.elapsed_ns();
    s.time_ns.set(s.time_ns.get().saturating_add(pause));
    s.longest_pause_ns.set(s.longest_pause_ns.get().max(pause));
    run_callbacks(
        s,
        Phase::Stop,
        &CallbackInfo {
            buffered,
            collected,
            visited,
        },
    );
    if !automatic {
        // An explicit collection keeps nothing of its own for the next one: what `collect()` finds is
        // all given back, the collector's scratch buffers included (automatic ones reuse them).
        drop(s.scratch.take());
        if let Ok(mut roots) = s.roots.try_borrow_mut() {
            if roots.is_empty() {
                *roots = Vec::new();
            }
        }
    }
    #[cfg(feature = "std")]
    if let (Some(p), n) = panic {
        if automatic {
            s.drop_panics_ignored
                .set(s.drop_panics_ignored.get().saturating_add(n));
            // A payload whose own drop panics is forgotten rather than let out.
            if let Err(again) = std::panic::catch_unwind(core::panic::AssertUnwindSafe(|| drop(p)))
            {
                mem::forget(again);
            }
        } else {
            drop(_reset);
            std::panic::resume_unwind(p);
        }
    }
    #[cfg(not(feature = "std"))]
    if let (Some(never), _) = panic {
        match never {}
    }
    collected
}

fn run_callbacks(s: &State, phase: Phase, info: &CallbackInfo) {
    if s.callbacks.borrow().is_empty() {
        return;
    }
    // Taken out while they run, so that a callback may add or remove callbacks (or collect: a no-op).
    struct PutBack<'a>(&'a State, Vec<(u64, state::Callback)>);
    impl Drop for PutBack<'_> {
        fn drop(&mut self) {
            let mut cur = self.0.callbacks.borrow_mut();
            let added = mem::take(&mut *cur);
            *cur = mem::take(&mut self.1);
            cur.extend(added);
        }
    }
    let mut taken = PutBack(s, mem::take(&mut *s.callbacks.borrow_mut()));
    for (_, cb) in taken.1.iter_mut() {
        cb(phase, info);
    }
}

/// Frozen boxes that died while in the frozen-candidates list are freed (without tracing anything).
fn sweep_frozen_candidates(s: &State) {
    sweep_dead(&s.frozen_candidates, Flags::FROZEN_CANDIDATE);
}

/// Takes the boxes whose value is dropped out of `list` (whose membership flag is `member`) and frees
/// those nothing else holds.
fn sweep_dead(list: &RefCell<Vec<NonNull<Header>>>, member: Flags) {
    let mut list = list.borrow_mut();
    let mut dead = Vec::new();
    list.retain(|&h| {
        let keep = !hdr(h).has(Flags::DROPPED);
        if !keep {
            dead.push(h);
        }
        keep
    });
    drop(list);
    for h in dead {
        hdr(h).clear(member);
        // SAFETY: DROPPED: the value is gone; the list owned the box until now.
        unsafe { free_if_unowned(h) };
    }
}

#[cfg(feature = "std")]
/// The first panic of a garbage `Drop`, and how many panicked.
type Payload = (
    Option<alloc::boxed::Box<dyn core::any::Any + Send + 'static>>,
    u64,
);
#[cfg(not(feature = "std"))]
type Payload = (Option<core::convert::Infallible>, u64);

/// Drops every white value, then releases the collector's holds, freeing what falls to zero.
fn drop_garbage(s: &State, white: Vec<NonNull<Header>>) -> Payload {
    /// Releases the holds however the drops end. If a drop unwinds (only without `std`), the values not
    /// dropped yet are leaked (but marked `DROPPED`: never traced or dropped later). Each hold is still
    /// released: a box nothing else references is freed, but one still referenced — resurrected by a
    /// `Drop`, or referenced by a `Gc` field inside a leaked peer's value, which will never be dropped —
    /// stays allocated as a zombie (counted in `resurrected`), in the latter case for good.
    struct Release<'a> {
        state: &'a State,
        white: Vec<NonNull<Header>>,
    }
    impl Drop for Release<'_> {
        fn drop(&mut self) {
            // Unwinding (without `std`): the weak callbacks not run are dropped.
            drop(weak_cb::take(&self.white));
            for &h in &self.white {
                let hr = hdr(h);
                let n = hr.strong.get() - 1;
                hr.strong.set(n);
                if n == 0 {
                    // SAFETY: the value is dropped (or leaked on unwind); nothing else holds a count.
                    unsafe { free_if_unowned(h) };
                } else {
                    // Resurrected by a `Drop` (or kept by an over-reporting `trace`): a zombie.
                    self.state.resurrected.set(self.state.resurrected.get() + 1);
                }
            }
            super::analysis::recycle_white(self.state, mem::take(&mut self.white));
        }
    }
    let guard = Release { state: s, white };
    #[cfg(feature = "std")]
    let mut first_panic: Payload = (None, 0);
    for &h in &guard.white {
        let drop_one = || {
            // SAFETY: white boxes are held by the collector (allocated); each value is dropped once here,
            // and no reference to it can exist (it was unreachable from outside the garbage).
            unsafe { (hdr(h).vtable.drop_value)(h) }
        };
        #[cfg(feature = "std")]
        if let Err(p) = std::panic::catch_unwind(core::panic::AssertUnwindSafe(drop_one)) {
            first_panic.0.get_or_insert(p);
            first_panic.1 += 1;
        }
        #[cfg(not(feature = "std"))]
        drop_one();
    }
    // Weak callbacks, as CPython orders them: every weak reference to the garbage already reads dead
    // (`DROPPED`), and the `Weak`s inside the garbage were dropped with it, so only live ones' run.
    let callbacks = weak_cb::take(&guard.white);
    #[cfg(feature = "std")]
    if let (Some(p), n) = weak_cb::run(callbacks) {
        first_panic.0.get_or_insert(p);
        first_panic.1 += n;
    }
    #[cfg(not(feature = "std"))]
    weak_cb::run(callbacks);
    drop(guard);
    #[cfg(feature = "std")]
    return first_panic;
    #[cfg(not(feature = "std"))]
    (None, 0)
}

/// Time spent collecting: `std::time::Instant` with `std`, nothing without.
struct Clock {
    #[cfg(feature = "std")]
    start: std::time::Instant,
}

impl Clock {
    fn now() -> Clock {
        Clock {
            #[cfg(feature = "std")]
            start: std::time::Instant::now(),
        }
    }
    fn elapsed_ns(&self) -> u64 {
        #[cfg(feature = "std")]
        return u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        #[cfg(not(feature = "std"))]
        0
    }
}

/// `gc::freeze()`/`gc::unfreeze()`: at once, or, during a collection, when it ends (changing which boxes
/// are frozen in the middle of an analysis would make it miscount: the analysis decides membership once).
pub(crate) fn request_freeze(s: &State, freeze_now: bool) {
    if s.collecting.get() {
        s.pending_freeze.set(Some(freeze_now));
    } else if freeze_now {
        freeze(s);
    } else {
        unfreeze(s);
    }
}

/// `freeze()`: everything alive now becomes frozen; the buffer's entries move to the frozen candidates.
fn freeze(s: &State) {
    let e = s.epoch.get().saturating_add(1).min(u32::MAX - 1);
    s.epoch.set(e);
    s.freeze_mark.set(e);
    s.frozen_live.set(s.live.get());
    let mut roots = mem::take(&mut *s.roots.borrow_mut());
    roots.append(&mut s.deferred.borrow_mut());
    move_entries(
        roots,
        &s.frozen_candidates,
        Flags::BUFFERED,
        Flags::FROZEN_CANDIDATE,
    );
}

/// `unfreeze()`: nothing is frozen any more; frozen boxes decremented meanwhile become possible roots.
fn unfreeze(s: &State) {
    s.freeze_mark.set(0);
    s.frozen_live.set(0);
    let cands = mem::take(&mut *s.frozen_candidates.borrow_mut());
    move_entries(cands, &s.roots, Flags::FROZEN_CANDIDATE, Flags::BUFFERED);
}

/// Moves the boxes of `from` (a list taken out of the state, whose flag `left` marks membership) onto `to`,
/// flagged `joined`; boxes whose value was already dropped are freed instead.
fn move_entries(
    from: Vec<NonNull<Header>>,
    to: &RefCell<Vec<NonNull<Header>>>,
    left: Flags,
    joined: Flags,
) {
    let mut to = to.borrow_mut();
    let mut dead = Vec::new();
    for h in from {
        let hr = hdr(h);
        hr.clear(left);
        if hr.has(Flags::DROPPED) {
            dead.push(h);
        } else {
            hr.set(joined);
            to.push(h);
        }
    }
    drop(to);
    for h in dead {
        // SAFETY: DROPPED, and the list's ownership was just given up.
        unsafe { free_if_unowned(h) };
    }
}
