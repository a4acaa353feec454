//! An interrupt handler that allocates and frees while the main loop does.
//!
//! With a spin lock, the first tick that lands while the main loop holds the heap lock would spin
//! forever; the critical-section lock defers the tick until the main loop's allocator call returns.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use core::alloc::Layout;
use core::cell::RefCell;
use core::fmt::Write;
use core::sync::atomic::{AtomicU32, Ordering};

use critical_section::Mutex;

use crate::{check, say, Board, Checks};

/// Ticks taken, blocks the handler allocated (and checked), and the handler's problems (a refused
/// allocation, a block whose contents changed while it was kept). Written only by [`on_tick`], whose
/// runs never overlap (one interrupt, not re-entered), so a load and a store stand for an increment: the
/// cores these run on have no atomic read-modify-write.
static TICKS: AtomicU32 = AtomicU32::new(0);
static HANDLER_ALLOCS: AtomicU32 = AtomicU32::new(0);
static HANDLER_ERRORS: AtomicU32 = AtomicU32::new(0);
/// Blocks the handler keeps from one tick to a later one, so its blocks interleave with the main loop's.
static KEPT: Mutex<RefCell<[Option<Vec<u32>>; 4]>> =
    Mutex::new(RefCell::new([None, None, None, None]));

/// Ticks to wait for, and the cap on main-loop rounds (a hang shows up as a failed check, not a timeout).
const TICKS_WANTED: u32 = 200;
const MAX_ROUNDS: u32 = 2_000_000;
/// Keys of the main loop's map. Every size class in use holds a pool of its own (1 KiB at least), so on
/// an 8 KiB heap the loop and the handler share a few classes: 8 and 16 bytes, and the map's leaf node.
const KEYS: u32 = 10;

/// Adds one to a counter only [`on_tick`] writes.
fn bump(counter: &AtomicU32) -> u32 {
    let n = counter.load(Ordering::Relaxed);
    counter.store(n.wrapping_add(1), Ordering::Relaxed);
    n
}

/// The tick interrupt's work: call it from the board's handler (and nowhere else). Allocates a block of 8
/// or 16 bytes mostly, from the pools the main loop allocates from too, every 16th tick 640 bytes (a
/// large block); keeps it for four ticks and checks it is intact before freeing it, inside the handler.
pub fn on_tick() {
    let tick = bump(&TICKS);
    let len = if tick.is_multiple_of(16) {
        160
    } else {
        2 << (tick % 2)
    };
    let mut fresh: Vec<u32> = Vec::new();
    // `try_reserve`: a handler must not panic on a full heap; here a refusal is counted as an error.
    if fresh.try_reserve_exact(len).is_err() {
        bump(&HANDLER_ERRORS);
        return;
    }
    fresh.extend((0..len as u32).map(|k| tick ^ k));
    bump(&HANDLER_ALLOCS);
    let old =
        critical_section::with(|cs| KEPT.borrow_ref_mut(cs)[tick as usize % 4].replace(fresh));
    if let Some(old) = old {
        let t = tick.wrapping_sub(4);
        if !old.iter().enumerate().all(|(k, &x)| x == t ^ k as u32) {
            bump(&HANDLER_ERRORS);
        }
    } // `old` is freed here, inside the handler
}

/// Not inlined: each section's frame is on the stack alone, not summed into `run`'s (the nRF51 has
/// 16 KiB of RAM, half of it the heap).
#[inline(never)]
pub(crate) fn run<B: Board>(c: &mut Checks<B>) {
    say!(
        c,
        "\n== allocating from an interrupt handler while the main loop allocates"
    );
    B::start_ticks();
    let mut map: BTreeMap<u32, String> = BTreeMap::new();
    let mut errors = 0u32;
    let mut rounds = 0u32;
    while TICKS.load(Ordering::Relaxed) < TICKS_WANTED && rounds < MAX_ROUNDS {
        let key = rounds % KEYS;
        let mut s = String::new();
        let _ = write!(s, "value-{rounds}");
        let v: Vec<u16> = (0..(rounds % 8) as u16).collect();
        if v.iter().map(|&x| x as u32).sum::<u32>()
            != (rounds % 8) * (rounds % 8).saturating_sub(1) / 2
        {
            errors += 1;
        }
        if let Some(old) = map.insert(key, s) {
            if !old.starts_with("value-") || old[6..].parse::<u32>().ok() != Some(rounds - KEYS) {
                errors += 1;
            }
        }
        rounds += 1;
    }

    // Deterministically: hold the heap lock (through `with_heap`, allocating from the `Heap` directly)
    // until a tick is raised. It must wait, pending, until the lock is released, then run.
    let layout = Layout::new::<[u32; 4]>();
    let before = TICKS.load(Ordering::Relaxed);
    let (raised, ran_inside) = c.alloc.with_heap(|heap| {
        let mut spins = 0u32;
        while !B::tick_pending() && spins < MAX_ROUNDS {
            if let Some(p) = heap.allocate(layout) {
                // SAFETY: just allocated with `layout`; freed once.
                unsafe { heap.deallocate(p, layout) };
            }
            spins += 1;
        }
        (B::tick_pending(), TICKS.load(Ordering::Relaxed) != before)
    });
    let after = TICKS.load(Ordering::Relaxed);
    B::stop_ticks();
    check!(
        c,
        raised && !ran_inside && after > before,
        "a tick raised while the main loop held the heap lock waited, pending, and ran once it was \
         released (ticks {} -> {})",
        before,
        after
    );

    let ticks = TICKS.load(Ordering::Relaxed);
    check!(
        c,
        ticks >= TICKS_WANTED,
        "{} tick interrupts taken in {} main-loop rounds (no deadlock)",
        ticks,
        rounds
    );
    let allocs = HANDLER_ALLOCS.load(Ordering::Relaxed);
    check!(
        c,
        allocs == ticks && HANDLER_ERRORS.load(Ordering::Relaxed) == 0,
        "the handler allocated {} blocks, all intact, none refused",
        allocs
    );
    check!(
        c,
        errors == 0 && map.len() == KEYS as usize,
        "main-loop data intact ({} errors, {} map entries)",
        errors,
        map.len()
    );
    drop(map);
    let kept = critical_section::with(|cs| core::mem::take(&mut *KEPT.borrow_ref_mut(cs)));
    drop(kept);
    let s = c.usage();
    say!(
        c,
        "  ({} allocations, {} deallocations in all)",
        s.allocations,
        s.deallocations
    );
}
