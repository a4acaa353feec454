//! poolgc on bare metal: a Cortex-M3 firmware, run in QEMU's LM3S6965 board with one command:
//!
//! ```sh
//! cd examples/firmware && cargo run --release
//! ```
//!
//! A 16 KiB static array is the whole heap of a `#[global_allocator] static PoolAlloc`. The firmware uses
//! `Vec`, `String` and `BTreeMap`; allocates from the SysTick interrupt while the main loop allocates
//! (the `critical-section` lock: a spin lock would deadlock there); fills the heap until the allocator
//! returns null and shows it fills to the same count again after freeing; with feature `gc`, builds a
//! reference cycle and collects it. Every step checks its results; the stats report and the results go to
//! the host over semihosting, and the exit code is 0 only if every check passed ("ALL CHECKS PASSED").
#![no_std]
#![no_main]

extern crate alloc;

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use core::alloc::{GlobalAlloc, Layout};
use core::cell::RefCell;
use core::fmt::Write;
use core::sync::atomic::{AtomicU32, Ordering};

use cortex_m::peripheral::syst::SystClkSource;
use cortex_m::peripheral::SCB;
use cortex_m_rt::{entry, exception};
use cortex_m_semihosting::{debug, hio, hprintln};
use critical_section::Mutex;
use poolgc::PoolAlloc;

/// Failed checks so far.
static FAILURES: AtomicU32 = AtomicU32::new(0);
/// Checks run so far.
static CHECKS: AtomicU32 = AtomicU32::new(0);

/// `check!(condition, "what it means", args…)`: prints `ok` or `FAIL` and counts failures.
macro_rules! check {
    ($cond:expr, $($what:tt)+) => {{
        let ok: bool = $cond;
        $crate::CHECKS.fetch_add(1, core::sync::atomic::Ordering::Relaxed);
        if !ok {
            $crate::FAILURES.fetch_add(1, core::sync::atomic::Ordering::Relaxed);
        }
        cortex_m_semihosting::hprintln!(
            "  {} {}",
            if ok { "ok  " } else { "FAIL" },
            format_args!($($what)+)
        );
    }};
}

#[cfg(feature = "gc")]
mod gc_demo;

/// The global allocator: never asks an OS; `Config::SMALL` geometry (1 KiB pools in 4 KiB arenas), which
/// lets a 16 KiB heap hold four arenas. With poolgc's `critical-section` feature its lock is a critical
/// section (cortex-m's `critical-section-single-core`: PRIMASK saved, interrupts off, PRIMASK restored).
#[global_allocator]
static ALLOC: PoolAlloc = PoolAlloc::empty();

const HEAP_SIZE: usize = 16 * 1024;

/// The heap, aligned to the pool size: the first arena starts at its first byte, and the bytes no whole
/// pool fits in (beside the region's header, in its last bytes) stay in one piece, for a large block.
#[repr(C, align(1024))]
struct HeapMemory([u8; HEAP_SIZE]);
static mut HEAP: HeapMemory = HeapMemory([0; HEAP_SIZE]);

#[entry]
fn main() -> ! {
    // SAFETY: first thing in main, before anything allocates; HEAP is referred to nowhere else, and its
    // pointer comes from `&raw mut` on the whole static, so its provenance covers all of it.
    unsafe { ALLOC.add_region(&raw mut HEAP as *mut u8, HEAP_SIZE) };

    let cfg = ALLOC.stats().config;
    hprintln!(
        "poolgc firmware: {} KiB static heap, {} B pools in {} B arenas, {} lock",
        HEAP_SIZE / 1024,
        cfg.pool_size(),
        cfg.arena_size(),
        if cfg!(feature = "critical-section") {
            "critical-section"
        } else {
            "spin (expect a deadlock in the interrupt step)"
        }
    );
    let s = ALLOC.stats();
    check!(
        s.regions == 1 && s.bytes_reserved == HEAP_SIZE && s.bytes_in_use == 0,
        "region handed over: {} region, {} bytes reserved, {} in use",
        s.regions,
        s.bytes_reserved,
        s.bytes_in_use
    );

    collections();
    interrupts();
    exhaustion();
    #[cfg(feature = "gc")]
    gc_demo::run();

    let s = ALLOC.stats();
    check!(
        s.bytes_in_use == 0 && s.large_blocks == 0,
        "everything freed at the end: {} bytes in use, {} large blocks",
        s.bytes_in_use,
        s.large_blocks
    );
    check!(ALLOC.check().is_ok(), "heap invariants hold (Heap::check)");

    let (checks, failures) = (
        CHECKS.load(Ordering::Relaxed),
        FAILURES.load(Ordering::Relaxed),
    );
    if failures == 0 && checks > 0 {
        hprintln!("ALL CHECKS PASSED ({} checks)", checks);
        debug::exit(debug::EXIT_SUCCESS);
    } else {
        hprintln!("{} OF {} CHECKS FAILED", failures, checks);
        debug::exit(debug::EXIT_FAILURE);
    }
    loop {
        cortex_m::asm::wfi();
    }
}

/// Vec, String and BTreeMap on the 16 KiB heap; prints the stats report while they are alive.
fn collections() {
    hprintln!("\n== collections");
    let squares: Vec<u32> = (0..300).map(|i| i * i).collect(); // 1200 B: a large block
    let sum: u32 = squares.iter().sum();
    check!(
        sum == (0..300u32).map(|i| i * i).sum::<u32>() && squares[299] == 89_401,
        "Vec<u32> of 300 squares: sum {}",
        sum
    );

    let text = "the quick brown fox jumps over the lazy dog the fox the dog";
    let mut counts: BTreeMap<String, u32> = BTreeMap::new();
    for word in text.split(' ') {
        *counts.entry(String::from(word)).or_insert(0) += 1;
    }
    let the = counts.get("the").copied();
    let firsts: String = counts.keys().map(|k| &k[..1]).collect();
    check!(
        counts.len() == 8 && the == Some(4) && counts.get("fox") == Some(&2),
        "BTreeMap<String, u32> word count: {} words, \"the\" x{:?}",
        counts.len(),
        the
    );
    check!(
        firsts == "bdfjloqt",
        "BTreeMap keys in order: {:?}",
        firsts.as_str()
    );

    let mut line = String::new();
    for (word, n) in &counts {
        let _ = write!(line, "{word}={n} ");
    }
    let mut lines: Vec<String> = (0..40).map(|i| alloc::format!("line {i}")).collect();
    lines.retain(|l| l.ends_with('7'));
    check!(
        line.starts_with("brown=1 dog=2 fox=2") && lines.len() == 4 && lines[3] == "line 37",
        "String building: {:?}",
        line.trim_end()
    );

    let s = ALLOC.stats();
    check!(
        s.bytes_in_use > 0 && s.large_blocks == 1 && s.pools_in_use > 0,
        "stats while live: {} bytes in use, {} pools, {} large block",
        s.bytes_in_use,
        s.pools_in_use,
        s.large_blocks
    );
    hprintln!("-- stats report (like sys._debugmallocstats()), collections alive:");
    match hio::hstdout() {
        Ok(mut out) => check!(ALLOC.report(&mut out).is_ok(), "report written"),
        Err(()) => check!(false, "semihosting stdout unavailable"),
    }

    drop((squares, counts, firsts, line, lines));
    let s = ALLOC.stats();
    check!(
        s.bytes_in_use == 0 && s.large_blocks == 0,
        "all freed: {} bytes in use (peak {})",
        s.bytes_in_use,
        s.peak_bytes_in_use
    );
    check!(ALLOC.check().is_ok(), "heap invariants hold (Heap::check)");
}

/// SysTick interrupts taken so far.
static TICKS: AtomicU32 = AtomicU32::new(0);
/// Blocks the SysTick handler allocated (and checked).
static HANDLER_ALLOCS: AtomicU32 = AtomicU32::new(0);
/// Handler-side problems: allocation refused, or a block's contents changed while it was kept.
static HANDLER_ERRORS: AtomicU32 = AtomicU32::new(0);
/// Blocks the handler keeps from one tick to a later one, so its blocks interleave with the main loop's.
static KEPT: Mutex<RefCell<[Option<Vec<u32>>; 4]>> =
    Mutex::new(RefCell::new([None, None, None, None]));

/// Ticks to wait for, and the cap on main-loop rounds (a hang shows up as a failed check, not a timeout).
const TICKS_WANTED: u32 = 200;
const MAX_ROUNDS: u32 = 2_000_000;

#[exception]
fn SysTick() {
    let tick = TICKS.fetch_add(1, Ordering::Relaxed);
    // A few dozen bytes mostly (pools), every 16th tick 800 bytes (a large block).
    let len = if tick.is_multiple_of(16) {
        200
    } else {
        1 + (tick as usize * 7) % 40
    };
    let mut fresh: Vec<u32> = Vec::new();
    // `try_reserve`: a handler must not panic on a full heap; here a refusal is counted as an error.
    if fresh.try_reserve_exact(len).is_err() {
        HANDLER_ERRORS.fetch_add(1, Ordering::Relaxed);
        return;
    }
    fresh.extend((0..len as u32).map(|k| tick ^ k));
    HANDLER_ALLOCS.fetch_add(1, Ordering::Relaxed);
    let old =
        critical_section::with(|cs| KEPT.borrow_ref_mut(cs)[tick as usize % 4].replace(fresh));
    if let Some(old) = old {
        let t = tick.wrapping_sub(4);
        if !old.iter().enumerate().all(|(k, &x)| x == t ^ k as u32) {
            HANDLER_ERRORS.fetch_add(1, Ordering::Relaxed);
        }
    } // `old` is freed here, inside the handler
}

/// The SysTick handler allocates and frees while the main loop allocates and frees. With a spin lock, the
/// first tick that lands while the main loop holds the heap lock would spin forever; the critical-section
/// lock defers the tick until the main loop's allocator call returns. Then the same, made certain: the
/// main loop holds the lock until a tick is raised.
fn interrupts() {
    hprintln!("\n== allocating from an interrupt handler while the main loop allocates");
    let Some(mut cp) = cortex_m::Peripherals::take() else {
        check!(false, "core peripherals available");
        return;
    };
    let syst = &mut cp.SYST;
    syst.set_clock_source(SystClkSource::Core);
    syst.set_reload(4_000); // a tick every 4000 core cycles
    syst.clear_current();
    syst.enable_interrupt();
    syst.enable_counter();

    let mut map: BTreeMap<u32, String> = BTreeMap::new();
    let mut errors = 0u32;
    let mut rounds = 0u32;
    while TICKS.load(Ordering::Relaxed) < TICKS_WANTED && rounds < MAX_ROUNDS {
        let key = rounds % 64;
        let mut s = String::new();
        let _ = write!(s, "value-{rounds}");
        let v: Vec<u16> = (0..(rounds % 48) as u16).collect();
        if v.iter().map(|&x| x as u32).sum::<u32>()
            != (rounds % 48) * (rounds % 48).saturating_sub(1) / 2
        {
            errors += 1;
        }
        if let Some(old) = map.insert(key, s) {
            if !old.starts_with("value-") || old[6..].parse::<u32>().ok() != Some(rounds - 64) {
                errors += 1;
            }
        }
        rounds += 1;
    }

    // Deterministically: hold the heap lock (through `with_heap`, allocating from the `Heap` directly)
    // until a SysTick is raised. It must wait, pending, until the lock is released, then run.
    let layout = Layout::new::<[u32; 4]>();
    let before = TICKS.load(Ordering::Relaxed);
    let (raised, ran_inside) = ALLOC.with_heap(|heap| {
        let mut spins = 0u32;
        while !SCB::is_pendst_pending() && spins < MAX_ROUNDS {
            if let Some(p) = heap.allocate(layout) {
                // SAFETY: just allocated with `layout`; freed once.
                unsafe { heap.deallocate(p, layout) };
            }
            spins += 1;
        }
        (
            SCB::is_pendst_pending(),
            TICKS.load(Ordering::Relaxed) != before,
        )
    });
    let after = TICKS.load(Ordering::Relaxed);
    check!(
        raised && !ran_inside && after > before,
        "a SysTick raised while the main loop held the heap lock waited, pending, and ran once it was \
         released (ticks {} -> {})",
        before,
        after
    );

    syst.disable_interrupt();
    syst.disable_counter();

    let ticks = TICKS.load(Ordering::Relaxed);
    check!(
        ticks >= TICKS_WANTED,
        "{} SysTick interrupts taken in {} main-loop rounds (no deadlock)",
        ticks,
        rounds
    );
    check!(
        HANDLER_ALLOCS.load(Ordering::Relaxed) == ticks
            && HANDLER_ERRORS.load(Ordering::Relaxed) == 0,
        "the handler allocated {} blocks, all intact, none refused",
        HANDLER_ALLOCS.load(Ordering::Relaxed)
    );
    check!(
        errors == 0 && map.len() == 64,
        "main-loop data intact ({} errors, {} map entries)",
        errors,
        map.len()
    );
    drop(map);
    let kept = critical_section::with(|cs| core::mem::take(&mut *KEPT.borrow_ref_mut(cs)));
    drop(kept);
    let s = ALLOC.stats();
    check!(
        s.bytes_in_use == 0,
        "all freed: {} bytes in use; {} allocations, {} deallocations in all",
        s.bytes_in_use,
        s.allocations,
        s.deallocations
    );
    check!(ALLOC.check().is_ok(), "heap invariants hold (Heap::check)");
}

/// Fills the heap with `layout` blocks straight through `GlobalAlloc::alloc` until it returns null; returns
/// how many it got. The pointers go to `slots` (on the stack: the heap is what is being measured).
fn fill(layout: Layout, slots: &mut [*mut u8]) -> Option<usize> {
    for (n, slot) in slots.iter_mut().enumerate() {
        // SAFETY: `layout` has a non-zero size.
        let p = unsafe { ALLOC.alloc(layout) };
        if p.is_null() {
            return Some(n);
        }
        // SAFETY: `p` is a fresh block of `layout.size()` bytes.
        unsafe { p.write_bytes(n as u8, layout.size()) };
        *slot = p;
    }
    None // more blocks than slots: not exhausted
}

/// Frees the first `n` blocks of `slots`, checking each still holds its fill byte; returns the bad ones.
fn free_all(layout: Layout, slots: &[*mut u8], n: usize) -> usize {
    let mut bad = 0;
    for (i, &p) in slots[..n].iter().enumerate() {
        // SAFETY: `p` is a live block of `layout` from `fill`, filled with `i as u8`, freed once here.
        unsafe {
            if core::slice::from_raw_parts(p, layout.size())
                .iter()
                .any(|&b| b != i as u8)
            {
                bad += 1;
            }
            ALLOC.dealloc(p, layout);
        }
    }
    bad
}

/// Exhaustion on firmware is a null pointer, not a crash: `alloc` returns null, `try_reserve` returns
/// `Err`, and only the infallible APIs (`Vec::push`, `Box::new`) go on to `handle_alloc_error`.
fn exhaustion() {
    hprintln!("\n== exhaustion: null from alloc, then the same again after freeing");
    let mut slots = [core::ptr::null_mut::<u8>(); 1024];
    // Large blocks freed by the sections above (the interrupt handler's among them, at moments that vary
    // from run to run) wait on the region's bins until memory runs short, and the first fill would pack its
    // arenas around them before taking them back. Give them back to the first-fit allocator now, so that
    // both fills of each size start from the same coalesced region.
    ALLOC.trim();
    for size in [16usize, 32, 1024] {
        if size > 512 {
            // Large blocks come from the region's first-fit allocator; the wholly free arena the heap keeps
            // as a spare (against arena thrashing) would hold 4 KiB of it back: give it back first.
            let released = ALLOC.trim();
            check!(
                released == ALLOC.stats().config.arena_size(),
                "trim gave the spare arena back to the region ({} bytes)",
                released
            );
        }
        let layout = Layout::from_size_align(size, 8).unwrap();
        let Some(first) = fill(layout, &mut slots) else {
            check!(
                false,
                "{size}-byte blocks: heap exhausted within 1024 blocks"
            );
            return;
        };
        let s = ALLOC.stats();
        // Refused while full, gracefully: no panic, no handle_alloc_error.
        let mut v: Vec<u8> = Vec::new();
        let refused = v.try_reserve_exact(size).is_err();
        check!(
            first * size >= HEAP_SIZE * 3 / 4 && s.bytes_in_use == first * size && refused,
            "{size}-byte blocks: alloc returned null after {} blocks ({} of {} bytes handed out, \
             {} B/KiB overhead); try_reserve -> Err",
            first,
            s.bytes_in_use,
            HEAP_SIZE,
            (HEAP_SIZE - s.bytes_in_use) / (HEAP_SIZE / 1024)
        );
        let bad = free_all(layout, &slots, first);
        let again = fill(layout, &mut slots);
        check!(
            bad == 0 && again == Some(first),
            "{size}-byte blocks: contents intact, and after freeing, the heap fills to {:?} again",
            again
        );
        let bad = free_all(layout, &slots, again.unwrap_or(0));
        let s = ALLOC.stats();
        check!(
            bad == 0 && s.bytes_in_use == 0 && ALLOC.check().is_ok(),
            "{size}-byte blocks: all freed, heap invariants hold"
        );
    }
    let mut v: Vec<u8> = Vec::new();
    check!(
        v.try_reserve(HEAP_SIZE).is_err() && v.try_reserve(HEAP_SIZE / 4).is_ok(),
        "try_reserve: 16 KiB refused (the heap's own bookkeeping needs some), 4 KiB granted"
    );
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    // Also where a failed infallible allocation ends up: no_std's default `handle_alloc_error` panics.
    hprintln!("PANIC: {}", info);
    debug::exit(debug::EXIT_FAILURE);
    loop {
        cortex_m::asm::wfi();
    }
}
