//! The self-checks of poolgc's firmware examples, shared by every board (`examples/firmware`: Cortex-M3
//! and Cortex-M0; `examples/firmware-riscv`: RISC-V).
//!
//! A board crate owns the `#[global_allocator]`, the heap's static array, the interrupt and the exit; it
//! implements [`Board`] (print to the host, start/stop a periodic interrupt, ask whether one is pending),
//! calls [`on_tick`] from that interrupt's handler and [`run`] from `main`, and exits with its result.
//!
//! The checks: `Vec`, `String` and `BTreeMap` with the stats report printed while they are alive; an
//! interrupt handler that allocates and frees while the main loop does (the `critical-section` lock: a
//! spin lock would deadlock there), and a tick raised while the main loop holds the heap lock waits for
//! it; exhaustion returns null and, after freeing, the heap fills to the same count again; with feature
//! `gc`, a reference cycle collected. Each check prints `ok` or `FAIL`; `run` returns whether all passed.
//!
//! Nothing here uses an atomic read-modify-write (Cortex-M0 and `riscv32imc` have none): counters live in
//! [`Checks`] (main loop only), and the tick counters are written by the handler alone.
#![no_std]

extern crate alloc;

use core::fmt;
use core::marker::PhantomData;

use poolgc::PoolAlloc;

mod collections;
mod exhaustion;
#[cfg(feature = "gc")]
mod gc_ring;
mod interrupts;

pub use interrupts::on_tick;

/// What a board gives the checks.
pub trait Board {
    /// Writes `args` to the host (semihosting, a UART).
    fn print(args: fmt::Arguments<'_>);
    /// Starts a periodic interrupt whose handler calls [`on_tick`], a few thousand cycles apart.
    fn start_ticks();
    /// Stops it; no [`on_tick`] runs after this returns.
    fn stop_ticks();
    /// Whether the tick interrupt is raised but not yet taken (masked by a critical section).
    fn tick_pending() -> bool;
}

/// The checks' state: the allocator under test, its heap's size, and the counts of checks run and failed.
pub struct Checks<B: Board> {
    alloc: &'static PoolAlloc,
    heap_size: usize,
    run: u32,
    failed: u32,
    _board: PhantomData<B>,
}

/// `say!(checks, "format", args…)`: one line to the host.
macro_rules! say {
    ($c:expr, $($arg:tt)+) => {
        $c.say(format_args!($($arg)+))
    };
}
/// `check!(checks, condition, "what it means", args…)`: prints `ok` or `FAIL` and counts.
macro_rules! check {
    ($c:expr, $cond:expr, $($what:tt)+) => {
        $c.check($cond, format_args!($($what)+))
    };
}
pub(crate) use {check, say};

/// The figures the checks read from [`PoolAlloc::stats`], without its per-class table.
pub(crate) struct Usage {
    pub bytes_in_use: usize,
    pub peak_bytes_in_use: usize,
    pub bytes_reserved: usize,
    pub large_blocks: usize,
    pub pools_in_use: usize,
    pub regions: usize,
    pub allocations: u64,
    pub deallocations: u64,
    pub pool_size: usize,
    pub arena_size: usize,
}

impl<B: Board> Checks<B> {
    /// A snapshot of the heap's figures. Not inlined: `Stats` holds a row per size class (over 1 KiB on
    /// 32-bit), and its frame must not add to the callers' (the nRF51's stack is about 6 KiB).
    #[inline(never)]
    pub(crate) fn usage(&self) -> Usage {
        let s = self.alloc.stats();
        Usage {
            bytes_in_use: s.bytes_in_use,
            peak_bytes_in_use: s.peak_bytes_in_use,
            bytes_reserved: s.bytes_reserved,
            large_blocks: s.large_blocks,
            pools_in_use: s.pools_in_use,
            regions: s.regions,
            allocations: s.allocations,
            deallocations: s.deallocations,
            pool_size: s.config.pool_size(),
            arena_size: s.config.arena_size(),
        }
    }

    fn say(&self, args: fmt::Arguments<'_>) {
        B::print(format_args!("{args}\n"));
    }

    fn check(&mut self, ok: bool, what: fmt::Arguments<'_>) {
        self.run += 1;
        if !ok {
            self.failed += 1;
        }
        B::print(format_args!(
            "  {} {what}\n",
            if ok { "ok  " } else { "FAIL" }
        ));
    }

    /// Prints the allocator's report; whether it was written. Not inlined, like [`Checks::usage`].
    #[inline(never)]
    pub(crate) fn report(&self) -> bool {
        self.alloc.report(&mut Out::<B>(PhantomData)).is_ok()
    }

    /// The heap is back to empty and its invariants hold.
    #[inline(never)]
    fn all_freed(&mut self) {
        let s = self.usage();
        check!(
            self,
            s.bytes_in_use == 0 && s.large_blocks == 0,
            "all freed: {} bytes in use, {} large blocks (peak {} bytes)",
            s.bytes_in_use,
            s.large_blocks,
            s.peak_bytes_in_use
        );
        check!(
            self,
            self.alloc.check().is_ok(),
            "heap invariants hold (Heap::check)"
        );
    }
}

/// A `fmt::Write` to the host, for the allocator's report.
struct Out<B>(PhantomData<B>);
impl<B: Board> fmt::Write for Out<B> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        B::print(format_args!("{s}"));
        Ok(())
    }
}

/// Runs every check against `alloc`, whose only region is the board's `heap_size`-byte static array,
/// already handed over and not yet allocated from; prints the results and a last line, `ALL CHECKS
/// PASSED` or `n OF m CHECKS FAILED`. Returns whether all passed.
///
/// Call it from the board's main loop, the only context besides the tick handler that allocates.
pub fn run<B: Board>(board: &str, alloc: &'static PoolAlloc, heap_size: usize) -> bool {
    let mut c = Checks::<B> {
        alloc,
        heap_size,
        run: 0,
        failed: 0,
        _board: PhantomData,
    };
    let s = c.usage();
    say!(
        c,
        "poolgc firmware on {board}: {} B static heap, {} B pools in {} B arenas",
        heap_size,
        s.pool_size,
        s.arena_size
    );
    check!(
        c,
        s.regions == 1 && s.bytes_reserved == heap_size && s.bytes_in_use == 0,
        "region handed over: {} region, {} bytes reserved, {} in use",
        s.regions,
        s.bytes_reserved,
        s.bytes_in_use
    );

    // Each section frees what it allocated; the checks of that run here, after its frame is gone.
    collections::run(&mut c);
    c.all_freed();
    interrupts::run(&mut c);
    c.all_freed();
    exhaustion::run(&mut c);
    #[cfg(feature = "gc")]
    gc_ring::run(&mut c);
    c.all_freed();
    if c.failed == 0 && c.run > 0 {
        say!(c, "ALL CHECKS PASSED ({} checks)", c.run);
        true
    } else {
        say!(c, "{} OF {} CHECKS FAILED", c.failed, c.run);
        false
    }
}
