//! poolgc on bare metal, Cortex-M: one firmware for a Cortex-M3 (QEMU's LM3S6965 board) and a Cortex-M0
//! (QEMU's micro:bit, an nRF51), each run with one command:
//!
//! ```sh
//! cd examples/firmware && cargo run --release                             # Cortex-M3
//! cd examples/firmware && cargo run --release --target thumbv6m-none-eabi # Cortex-M0
//! ```
//!
//! An 8 KiB static array is the whole heap of a `#[global_allocator] static PoolAlloc`, whose lock is a
//! critical section (cortex-m's `critical-section-single-core`: PRIMASK saved, interrupts off, PRIMASK
//! restored; Cortex-M0 has no compare-and-swap, so no spin lock). The checks are the shared ones of
//! `examples/firmware-checks`; SysTick is their tick interrupt. The results and the stats report go to
//! the host over semihosting, and the exit code is 0 only if every check passed ("ALL CHECKS PASSED").
#![no_std]
#![no_main]

use core::fmt;

use cortex_m::peripheral::syst::SystClkSource;
use cortex_m::peripheral::{SCB, SYST};
use cortex_m_rt::{entry, exception};
use cortex_m_semihosting::{debug, hprint};
use poolgc::PoolAlloc;

/// The global allocator: never asks an OS; `Config::SMALL` geometry (1 KiB pools in 4 KiB arenas).
#[global_allocator]
static ALLOC: PoolAlloc = PoolAlloc::empty();

const HEAP_SIZE: usize = 8 * 1024;

/// The heap, aligned to the pool size: the first arena starts at its first byte, and the bytes no whole
/// pool fits in (beside the region's header, in its last bytes) stay in one piece, for a large block.
#[repr(C, align(1024))]
struct HeapMemory([u8; HEAP_SIZE]);
static mut HEAP: HeapMemory = HeapMemory([0; HEAP_SIZE]);

const BOARD: &str = match (
    cfg!(target_has_atomic = "8"),
    cfg!(feature = "critical-section"),
) {
    (false, _) => "Cortex-M0 (QEMU microbit), critical-section lock",
    (true, true) => "Cortex-M3 (QEMU lm3s6965evb), critical-section lock",
    (true, false) => {
        "Cortex-M3 (QEMU lm3s6965evb), spin lock (expect a hang in the interrupt step)"
    }
};

/// SysTick, as the checks' tick interrupt.
struct Cortex;

impl Cortex {
    fn syst() -> SYST {
        // SAFETY: SYST is touched only through these `Board` methods, called from the main loop one at a
        // time; `cortex_m::Peripherals::take` is never called, so nothing else owns it.
        unsafe { cortex_m::Peripherals::steal() }.SYST
    }
}

impl checks::Board for Cortex {
    fn print(args: fmt::Arguments<'_>) {
        let mut line = Line {
            buf: [0; 128],
            len: 0,
        };
        let _ = fmt::Write::write_fmt(&mut line, args);
        line.flush();
    }
    fn start_ticks() {
        let mut syst = Self::syst();
        syst.set_clock_source(SystClkSource::Core);
        syst.set_reload(4_000); // a tick every 4000 core cycles
        syst.clear_current();
        syst.enable_interrupt();
        syst.enable_counter();
    }
    fn stop_ticks() {
        let mut syst = Self::syst();
        syst.disable_interrupt();
        syst.disable_counter();
        SCB::clear_pendst();
    }
    fn tick_pending() -> bool {
        SCB::is_pendst_pending()
    }
}

/// Text on its way to the host, copied into RAM first: QEMU's semihosting cannot read the nRF51's flash,
/// where string literals live.
struct Line {
    buf: [u8; 128],
    len: usize,
}

impl Line {
    fn flush(&mut self) {
        if let Ok(text) = core::str::from_utf8(&self.buf[..self.len]) {
            hprint!("{}", text);
        }
        self.len = 0;
    }
}

impl fmt::Write for Line {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for ch in s.chars() {
            if self.len + ch.len_utf8() > self.buf.len() {
                self.flush();
            }
            self.len += ch.encode_utf8(&mut self.buf[self.len..]).len();
        }
        Ok(())
    }
}

#[exception]
fn SysTick() {
    checks::on_tick();
}

#[entry]
fn main() -> ! {
    // SAFETY: first thing in main, before anything allocates; HEAP is referred to nowhere else, and its
    // pointer comes from `&raw mut` on the whole static, so its provenance covers all of it.
    unsafe { ALLOC.add_region(&raw mut HEAP as *mut u8, HEAP_SIZE) };
    let passed = checks::run::<Cortex>(BOARD, &ALLOC, HEAP_SIZE);
    debug::exit(if passed {
        debug::EXIT_SUCCESS
    } else {
        debug::EXIT_FAILURE
    });
    loop {
        cortex_m::asm::wfi();
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    // Also where a failed infallible allocation ends up: no_std's default `handle_alloc_error` panics.
    <Cortex as checks::Board>::print(format_args!("PANIC: {info}\n"));
    debug::exit(debug::EXIT_FAILURE);
    loop {
        cortex_m::asm::wfi();
    }
}
