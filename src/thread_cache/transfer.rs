//! The central transfer cache: per pool class, a stack of whole batches that threads push their full free
//! lists onto and refill from, each class behind its own short lock; and its decay.
//!
//! # Decay
//!
//! Batches that stay on a stack serve only their class and keep their pools in use. Beyond the budget
//! ([`TRANSFER_BYTES`]) and the refill that hands everything back before the heap grows (see
//! `thread_cache::refill`), each stack decays by the crate's one rule ([`Decay`], period [`DECAY_MS`],
//! floor 0): when a period ends, as many batches as its low-water mark over the period (the bottom ones,
//! untouched all period, since the stack is LIFO) go back to the heap. A stack looks at the clock under
//! its lock every [`CHECK_EVERY`] of its pushes and pops, and at every thread's upkeep ([`tick`]), so an
//! idle transfer cache keeps its batches until its next events. The period is [`DECAY_MS`] whatever a
//! heap's `spare_decay_ms` says (the transfer cache is shared by every thread, the heap setting is per
//! allocator); without the OS there is no clock and nothing decays.
//!
//! The thread whose event ends a stack's period pays for it: a walk of that stack down to its cut, under
//! its lock, and then the decayed blocks freed into the heap under the heap lock (at most
//! [`TRANSFER_BYTES`] worth, and only what stayed unused for a whole period).

use core::ptr;

use super::batch;
use crate::decay::{Decay, DECAY_MS};
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
    /// Their decay, with a floor of 0: every fall of `len` is reported to it.
    decay: Decay,
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
        self.decay.stop();
        taken
    }

    /// Runs the decay at an event of the stack: if a period ends, cuts off the bottom batches that stayed
    /// on it all period and returns them (null if none) and how many.
    fn decay(&mut self) -> (*mut u8, u32) {
        let Some(keep) = self.decay.tick(self.len as usize, 0) else {
            return (ptr::null_mut(), 0);
        };
        // `keep <= len`: the decay keeps at most what is held.
        let keep = keep as u32;
        let n = self.len - keep;
        let cut = if n == 0 {
            ptr::null_mut()
        } else if keep == 0 {
            core::mem::replace(&mut self.top, ptr::null_mut())
        } else {
            // The last of the `keep` batches above the cut.
            let mut above = self.top;
            // SAFETY: the stack holds `len` well-formed batches linked through their first block's
            // second word; `&mut self` is behind the stack's lock.
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
        self.len = keep;
        self.decay.restart(keep as usize, 0);
        (cut, n)
    }
}

/// One class's part of the transfer cache, on a cache line of its own: threads moving batches of
/// different classes neither wait for each other nor share a line.
#[repr(align(64))]
struct ClassBatches(Lock<Stack>);

const EMPTY_STACK: Stack = Stack {
    top: ptr::null_mut(),
    len: 0,
    decay: Decay::new(DECAY_MS),
    countdown: CHECK_EVERY - 1,
};

#[cfg(not(loom))]
static BATCHES: [ClassBatches; NUM_POOL_CLASSES] =
    [const { ClassBatches(Lock::new(EMPTY_STACK)) }; NUM_POOL_CLASSES];

/// Bytes in [`BATCHES`], at most [`TRANSFER_BYTES`] (reserved before a push, released once batches are
/// off a stack: popped, taken or decayed).
#[cfg(not(loom))]
static HELD: AtomicUsize = AtomicUsize::new(0);

// Under loom, the same statics, made afresh for every execution of a model.
#[cfg(loom)]
loom::lazy_static! {
    static ref BATCHES: [ClassBatches; NUM_POOL_CLASSES] =
        core::array::from_fn(|_| ClassBatches(Lock::new(EMPTY_STACK)));
    static ref HELD: AtomicUsize = AtomicUsize::new(0);
}

fn batch_bytes(class: usize) -> usize {
    batch(class) as usize * block_size(class)
}

/// Whether any batch is held.
pub(super) fn is_empty() -> bool {
    HELD.load(Ordering::Relaxed) == 0
}

/// Pops a batch of `class`, if there is one. Also returns the batches of `class` that decayed if this
/// event ended the stack's period (see [`Stack::decay`]; null if none), for the caller to give back to
/// the heap.
pub(super) fn pop(class: usize) -> (Option<*mut u8>, *mut u8) {
    let (b, (cut, n)) = {
        let mut stack = BATCHES[class].0.lock();
        let b = stack.top;
        if !b.is_null() {
            // SAFETY: `b` heads a batch on the stack; its second word links the next batch.
            stack.top = unsafe { b.cast::<*mut u8>().add(1).read() };
            stack.len -= 1;
            let len = stack.len as usize;
            stack.decay.fell_to(len);
        }
        let decayed = if stack.event() {
            stack.decay()
        } else {
            (ptr::null_mut(), 0)
        };
        (b, decayed)
    };
    if !b.is_null() {
        HELD.fetch_sub(batch_bytes(class), Ordering::Relaxed);
    }
    ((!b.is_null()).then_some(b), decayed(class, cut, n))
}

/// Pushes a whole batch of `class` if the budget allows (else hands it back). Also returns the batches
/// that decayed if this event ended the stack's period, as [`pop`] does.
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
    let (cut, n) = {
        let mut stack = BATCHES[class].0.lock();
        // SAFETY: the first block is ours and at least two words long (asserted above).
        unsafe { list.cast::<*mut u8>().add(1).write(stack.top) };
        stack.top = list;
        stack.len += 1;
        if stack.event() {
            stack.decay()
        } else {
            (ptr::null_mut(), 0)
        }
    };
    (Ok(()), decayed(class, cut, n))
}

/// Releases the bytes of the `n` batches of `class` that [`Stack::decay`] cut off as `cut`, now the
/// caller's; returns `cut`.
fn decayed(class: usize, cut: *mut u8, n: u32) -> *mut u8 {
    if n != 0 {
        HELD.fetch_sub(n as usize * batch_bytes(class), Ordering::Relaxed);
    }
    cut
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
#[cfg(any(all(test, loom), all(poolgc_fork, not(miri), not(loom))))]
pub(super) fn lock_all_raw() {
    for b in BATCHES.iter() {
        b.0.lock_raw();
    }
}

/// Releases the locks [`lock_all_raw`] took, in reverse order.
///
/// # Safety
/// This thread took them with [`lock_all_raw`] and has released none since.
#[cfg(any(all(test, loom), all(poolgc_fork, not(miri), not(loom))))]
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
#[cfg(all(poolgc_fork, not(miri), not(loom)))]
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

/// Runs every stack's decay (the thread caches' periodic upkeep, see `thread_cache::upkeep`), so that
/// stacks of classes without traffic decay too: the batches that decayed, as one list of batches for the
/// caller to give back to the heap; null if none.
pub(super) fn tick() -> *mut u8 {
    let mut all = ptr::null_mut();
    // As in `take_all`: with no bytes held there is nothing to decay, and no stack to walk.
    if is_empty() {
        return all;
    }
    for (class, b) in BATCHES.iter().enumerate() {
        let (cut, n) = b.0.lock().decay();
        if n == 0 {
            continue;
        }
        // SAFETY: the cut batches are now ours.
        unsafe { link_below(decayed(class, cut, n), all) };
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

/// The decay racing the traffic: a thread pushes two batches and pops one (its events end a period and
/// cut the bottom batch off) while another runs the upkeep's decay; every batch comes back exactly once
/// (popped, decayed or taken) and nothing stays counted as held.
#[cfg(all(test, loom))]
mod loom_tests {
    use super::{is_empty, pop, push, take_all, tick};
    use core::ptr;
    use std::boxed::Box;
    use std::vec::Vec;

    const CLASS: usize = 0;

    /// A stand-in for a batch: one two-word block (the transfer cache reads only its first block).
    fn fake_batch() -> usize {
        Box::into_raw(Box::new([ptr::null_mut::<u8>(); 2])) as usize
    }

    /// Appends the batches of a list of batches to `out`.
    fn collect(mut list: *mut u8, out: &mut Vec<usize>) {
        while !list.is_null() {
            out.push(list as usize);
            // SAFETY: every batch of the list is a live fake batch whose second word links the next one.
            list = unsafe { list.cast::<*mut u8>().add(1).read() };
        }
    }

    #[test]
    fn the_decay_races_pushes_and_pops() {
        let mut b = loom::model::Builder::new();
        b.max_branches = 20_000;
        b.check(|| {
            let mut made: Vec<usize> = (0..2).map(|_| fake_batch()).collect();
            let t = {
                let made = made.clone();
                loom::thread::spawn(move || {
                    let mut back = Vec::new();
                    for &m in &made {
                        // SAFETY: a fake batch nobody else uses (the model never frees blocks of it).
                        let (pushed, decayed) = unsafe { push(CLASS, m as *mut u8) };
                        assert!(pushed.is_ok());
                        collect(decayed, &mut back);
                    }
                    let (popped, decayed) = pop(CLASS);
                    back.extend(popped.map(|b| b as usize));
                    collect(decayed, &mut back);
                    back
                })
            };
            let mut back = Vec::new();
            for _ in 0..2 {
                collect(tick(), &mut back);
            }
            back.extend(t.join().unwrap());
            collect(take_all(), &mut back);
            assert!(is_empty());
            back.sort_unstable();
            made.sort_unstable();
            assert_eq!(back, made, "a batch was lost or came back twice");
            for m in made {
                // SAFETY: from `fake_batch`, no longer on any stack.
                drop(unsafe { Box::from_raw(m as *mut [*mut u8; 2]) });
            }
        });
    }
}
