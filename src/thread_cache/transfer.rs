//! The central transfer cache: per pool class, a stack of whole batches that threads push their full free
//! lists onto and refill from, each class behind its own short lock; and its decay.
//!
//! # Decay
//!
//! Batches that stay on a stack serve only their class and keep their pools in use. Beyond the budget
//! ([`TRANSFER_BYTES`]) and the refill that hands everything back before the heap grows (see
//! `thread_cache::refill`), the stacks decay like the heap's spare arenas: each stack keeps the low-water
//! mark of its length over a period of [`DECAY_MS`]; when the period ends, that many batches (the bottom
//! ones, untouched all period, since the stack is LIFO) go back to the heap, so batches in steady use
//! stay and the rest do not. The clock is read every [`CHECK_EVERY`] pushes and pops of a class, outside
//! every lock, so an idle transfer cache keeps its batches until its next events. The period is
//! [`DECAY_MS`] whatever a heap's `spare_decay_ms` says (the transfer cache is shared by every thread,
//! the heap setting is per allocator); without the OS there is no clock and nothing decays.
//!
//! The thread whose push or pop ends a period pays for it: a walk of each stack down to its cut, under
//! that stack's lock, and then every decayed block freed into the heap under the heap lock (at most
//! [`TRANSFER_BYTES`] worth, and only what stayed unused for a whole period).

use core::ptr;

use super::batch;
#[cfg(not(loom))]
use crate::decay::now_ms;
use crate::decay::DECAY_MS;
use crate::size_class::{block_size, NUM_POOL_CLASSES};
use crate::sync::atomic::{AtomicUsize, Ordering};
use crate::sync::Lock;

/// Most bytes the transfer cache holds in batches, all classes together; a flush beyond it goes to the
/// heap. Memory held here is in use from the heap's point of view, so it is bounded; it is sized so that
/// structures of a few MiB of small blocks that are freed and rebuilt (trees, parsed documents) cycle
/// without the heap.
pub(crate) const TRANSFER_BYTES: usize = 8 << 20;

/// A class's pushes and pops between two looks at the clock (every one under loom, so that a model of a
/// few events reaches the decay).
const CHECK_EVERY: u32 = if cfg!(loom) { 1 } else { 64 };

// A batch on a stack links to the next batch through the second word of its first block.
const _: () = assert!(block_size(0) >= 2 * size_of::<*mut u8>());

/// One class's stack of whole batches of [`batch`]`(class)` blocks: each batch is a null-terminated list
/// through the blocks' first word, and its first block's second word links the next batch down.
struct Stack {
    top: *mut u8,
    /// Batches on the stack.
    len: u32,
    /// The fewest batches on the stack since the current period began.
    low: u32,
    /// Pushes and pops left before the next look at the clock.
    countdown: u32,
}

// SAFETY: the batches are owned by whoever holds the lock.
unsafe impl Send for Stack {}

impl Stack {
    /// Counts an event; whether the clock is due (every [`CHECK_EVERY`]th event).
    fn event(&mut self) -> bool {
        if self.countdown == 0 {
            self.countdown = CHECK_EVERY - 1;
            true
        } else {
            self.countdown -= 1;
            false
        }
    }

    /// Empties the stack; returns its batches (as linked on it) and how many there were.
    fn take(&mut self) -> (*mut u8, u32) {
        let taken = (self.top, self.len);
        self.top = ptr::null_mut();
        self.len = 0;
        self.low = 0;
        taken
    }
}

/// One class's part of the transfer cache, on a cache line of its own: threads moving batches of
/// different classes neither wait for each other nor share a line.
#[repr(align(64))]
struct ClassBatches(Lock<Stack>);

const EMPTY_STACK: Stack = Stack {
    top: ptr::null_mut(),
    len: 0,
    low: 0,
    countdown: CHECK_EVERY - 1,
};

#[cfg(not(loom))]
static BATCHES: [ClassBatches; NUM_POOL_CLASSES] =
    [const { ClassBatches(Lock::new(EMPTY_STACK)) }; NUM_POOL_CLASSES];

/// Bytes in [`BATCHES`], at most [`TRANSFER_BYTES`] (reserved before a push, released once batches are
/// off a stack: popped, taken or decayed).
#[cfg(not(loom))]
static HELD: AtomicUsize = AtomicUsize::new(0);

/// When the current decay period began ([`now_ms`], truncated to `usize`: compared with wrapping
/// arithmetic).
#[cfg(not(loom))]
static PERIOD_START: AtomicUsize = AtomicUsize::new(0);

// Under loom, the same statics, made afresh for every execution of a model, and a clock that moves by
// half a period at every look (deterministic, so every schedule sees the same times).
#[cfg(loom)]
loom::lazy_static! {
    static ref BATCHES: [ClassBatches; NUM_POOL_CLASSES] =
        core::array::from_fn(|_| ClassBatches(Lock::new(EMPTY_STACK)));
    static ref HELD: AtomicUsize = AtomicUsize::new(0);
    static ref PERIOD_START: AtomicUsize = AtomicUsize::new(0);
    static ref CLOCK: AtomicUsize = AtomicUsize::new(0);
}

#[cfg(loom)]
fn now_ms() -> u64 {
    (CLOCK.fetch_add(DECAY_MS as usize / 2, Ordering::Relaxed) + DECAY_MS as usize / 2) as u64
}

fn batch_bytes(class: usize) -> usize {
    batch(class) as usize * block_size(class)
}

/// Whether any batch is held.
pub(super) fn is_empty() -> bool {
    HELD.load(Ordering::Relaxed) == 0
}

/// Pops a batch of `class`, if there is one. Also returns the batches that decayed if this event ended
/// a period (see [`decay_if`]; null if none), for the caller to give back to the heap.
pub(super) fn pop(class: usize) -> (Option<*mut u8>, *mut u8) {
    let (b, due) = {
        let mut stack = BATCHES[class].0.lock();
        let due = stack.event();
        let b = stack.top;
        if !b.is_null() {
            // SAFETY: `b` heads a batch on the stack; its second word links the next batch.
            stack.top = unsafe { b.cast::<*mut u8>().add(1).read() };
            stack.len -= 1;
            stack.low = stack.low.min(stack.len);
        }
        (b, due)
    };
    if !b.is_null() {
        HELD.fetch_sub(batch_bytes(class), Ordering::Relaxed);
    }
    ((!b.is_null()).then_some(b), decay_if(due))
}

/// Pushes a whole batch of `class` if the budget allows (else hands it back). Also returns the batches
/// that decayed if this event ended a period, as [`pop`] does.
///
/// # Safety
/// `list` is a null-terminated list of exactly [`batch`]`(class)` free blocks of `class` of the primary's
/// heap that nobody else uses.
pub(super) unsafe fn push(class: usize, list: *mut u8) -> (Result<(), *mut u8>, *mut u8) {
    let bytes = batch_bytes(class);
    if HELD.fetch_add(bytes, Ordering::Relaxed) + bytes > TRANSFER_BYTES {
        HELD.fetch_sub(bytes, Ordering::Relaxed);
        return (Err(list), ptr::null_mut());
    }
    let due = {
        let mut stack = BATCHES[class].0.lock();
        // SAFETY: the first block is ours and at least two words long (asserted above).
        unsafe { list.cast::<*mut u8>().add(1).write(stack.top) };
        stack.top = list;
        stack.len += 1;
        stack.event()
    };
    (Ok(()), decay_if(due))
}

/// Takes every batch off every stack, as one list of batches (linked as on a stack); null if none.
pub(super) fn take_all() -> *mut u8 {
    let mut all = ptr::null_mut();
    // `HELD` covers every batch on a stack (reserved before the push, released after the pop).
    if is_empty() {
        return all;
    }
    for (class, b) in BATCHES.iter().enumerate() {
        let (top, len) = b.0.lock().take();
        if top.is_null() {
            continue;
        }
        HELD.fetch_sub(len as usize * batch_bytes(class), Ordering::Relaxed);
        // SAFETY: the batches are now ours; the bottom one's link word gets the batches taken so far.
        unsafe { link_below(top, all) };
        all = top;
    }
    all
}

/// Takes every class's lock, in class order, and keeps them (the fork handlers, `crate::fork`).
#[cfg(any(
    all(test, loom),
    all(
        feature = "os",
        unix,
        not(feature = "critical-section"),
        not(miri),
        not(loom)
    )
))]
pub(super) fn lock_all_raw() {
    for b in BATCHES.iter() {
        b.0.lock_raw();
    }
}

/// Releases the locks [`lock_all_raw`] took, in reverse order.
///
/// # Safety
/// This thread took them with [`lock_all_raw`] and has released none since.
#[cfg(any(
    all(test, loom),
    all(
        feature = "os",
        unix,
        not(feature = "critical-section"),
        not(miri),
        not(loom)
    )
))]
pub(super) unsafe fn unlock_all_raw() {
    for b in BATCHES.iter().rev() {
        // SAFETY: forwarded contract.
        unsafe { b.0.unlock_raw() };
    }
}

/// Sets [`HELD`] to what the stacks hold. For a child after `fork` (the fork handlers call it once the
/// locks are released, with no other thread in the process): a thread of the parent may have reserved
/// bytes for a push it never made, or popped a batch whose bytes it had yet to release, and `HELD` would
/// stay that much too high for good.
#[cfg(all(
    feature = "os",
    unix,
    not(feature = "critical-section"),
    not(miri),
    not(loom)
))]
pub(super) fn recount_held() {
    let mut held = 0;
    for (class, b) in BATCHES.iter().enumerate() {
        held += b.0.lock().len as usize * batch_bytes(class);
    }
    HELD.store(held, Ordering::Relaxed);
}

/// Forgets every batch (their allocator is gone, or a new one starts).
pub(super) fn clear() {
    // As in `take_all`: no bytes held, no batch on any stack.
    if is_empty() {
        return;
    }
    for b in BATCHES.iter() {
        b.0.lock().take();
    }
    HELD.store(0, Ordering::Relaxed);
}

/// Looks at the decay clock now (the thread caches' periodic upkeep, see `thread_cache::upkeep`): the
/// batches that decayed if a period ended, as [`pop`] returns them.
pub(super) fn tick() -> *mut u8 {
    decay_if(true)
}

/// When `due`, ends the decay period if it has lasted [`DECAY_MS`] (one caller wins the race): takes off
/// each stack the batches that stayed on it all period (its low-water mark, counted from the bottom) and
/// returns them as one list of batches, for the caller to give back to the heap; null if none. Called by
/// [`pop`] and [`push`], outside the stack's lock, with whether their event made the clock due.
fn decay_if(due: bool) -> *mut u8 {
    if !due {
        return ptr::null_mut();
    }
    // The start is read before the clock, and the difference taken as signed: a thread whose reading
    // was overtaken by another thread's new period sees a negative age, never a period just ended.
    let start = PERIOD_START.load(Ordering::Relaxed);
    let now = now_ms() as usize;
    if (now.wrapping_sub(start) as isize) < DECAY_MS as isize
        || PERIOD_START
            .compare_exchange(start, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
    {
        return ptr::null_mut();
    }
    let mut all = ptr::null_mut();
    // As in `take_all`: with no bytes held there is nothing to decay, and no stack to walk.
    if is_empty() {
        return all;
    }
    for (class, b) in BATCHES.iter().enumerate() {
        let (cut, n) = {
            let mut stack = b.0.lock();
            let n = stack.low;
            let keep = stack.len - n;
            stack.low = keep;
            if n == 0 {
                continue;
            }
            // The last of the `keep` batches above the cut, or the stack's head if none is kept.
            let cut = if keep == 0 {
                core::mem::replace(&mut stack.top, ptr::null_mut())
            } else {
                let mut above = stack.top;
                // SAFETY: the stack holds `len` well-formed batches linked through their first block's
                // second word; we hold its lock.
                unsafe {
                    for _ in 1..keep {
                        above = above.cast::<*mut u8>().add(1).read();
                    }
                    let link = above.cast::<*mut u8>().add(1);
                    let cut = link.read();
                    link.write(ptr::null_mut());
                    cut
                }
            };
            stack.len = keep;
            (cut, n)
        };
        HELD.fetch_sub(n as usize * batch_bytes(class), Ordering::Relaxed);
        // SAFETY: the cut batches are now ours.
        unsafe { link_below(cut, all) };
        all = cut;
    }
    all
}

/// Links the list of batches `below` under the last batch of the list of batches `batches`.
///
/// # Safety
/// `batches` is a non-null, well-formed, null-terminated list of batches owned by the caller.
unsafe fn link_below(batches: *mut u8, below: *mut u8) {
    let mut b = batches;
    // SAFETY: every batch's first block holds the next batch in its second word.
    unsafe {
        loop {
            let next = b.cast::<*mut u8>().add(1).read();
            if next.is_null() {
                break;
            }
            b = next;
        }
        b.cast::<*mut u8>().add(1).write(below);
    }
}
