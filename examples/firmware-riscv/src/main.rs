//! poolgc on bare metal, RISC-V: an rv32imc firmware (the ESP32-C3's instruction set: no atomic
//! instructions, so no compare-and-swap), run in QEMU's virt machine with one command:
//!
//! ```sh
//! cd examples/firmware-riscv && cargo run --release
//! ```
//!
//! An 8 KiB static array is the whole heap of a `#[global_allocator] static PoolAlloc`, whose lock is a
//! critical section (riscv's `critical-section-single-hart`: `mstatus.MIE` cleared, then restored). The
//! checks are the shared ones of `examples/firmware-checks`; the machine timer (CLINT `mtimecmp`) is
//! their tick interrupt. The output goes to the virt machine's 16550 UART, and the exit code, through its
//! test finisher device, is 0 only if every check passed ("ALL CHECKS PASSED").
#![no_std]
#![no_main]

use core::fmt;
use core::ptr;

use poolgc::PoolAlloc;
use riscv::interrupt::Interrupt;
use riscv::register::{mie, mip};

/// The global allocator: never asks an OS; `Config::SMALL` geometry (1 KiB pools in 4 KiB arenas).
#[global_allocator]
static ALLOC: PoolAlloc = PoolAlloc::empty();

const HEAP_SIZE: usize = 8 * 1024;

/// The heap, aligned to the pool size: the first arena starts at its first byte.
#[repr(C, align(1024))]
struct HeapMemory([u8; HEAP_SIZE]);
static mut HEAP: HeapMemory = HeapMemory([0; HEAP_SIZE]);

/// The virt machine's devices (QEMU `hw/riscv/virt.c`).
const UART_THR: *mut u8 = 0x1000_0000 as *mut u8;
const UART_LSR: *const u8 = 0x1000_0005 as *const u8;
const TEST_FINISHER: *mut u32 = 0x0010_0000 as *mut u32;
const MTIME: *const u32 = 0x0200_bff8 as *const u32;
const MTIMECMP: *mut u32 = 0x0200_4000 as *mut u32;
/// Timer ticks (10 MHz) between interrupts: 20 µs.
const TICK_PERIOD: u64 = 200;

fn mtime() -> u64 {
    // SAFETY: the CLINT's `mtime` is a readable device register pair; the high word is read around the
    // low one until it did not change, so the two halves belong together.
    unsafe {
        loop {
            let hi = ptr::read_volatile(MTIME.add(1));
            let lo = ptr::read_volatile(MTIME);
            if ptr::read_volatile(MTIME.add(1)) == hi {
                return (hi as u64) << 32 | lo as u64;
            }
        }
    }
}

/// Sets hart 0's `mtimecmp` to `at`, never passing through a smaller value (high word first at all ones).
fn set_mtimecmp(at: u64) {
    // SAFETY: the CLINT's `mtimecmp` for hart 0 is a writable device register pair; with the high word at
    // all ones first, no intermediate value lies in the past.
    unsafe {
        ptr::write_volatile(MTIMECMP.add(1), u32::MAX);
        ptr::write_volatile(MTIMECMP, at as u32);
        ptr::write_volatile(MTIMECMP.add(1), (at >> 32) as u32);
    }
}

/// The virt machine, as the checks' board.
struct Virt;

impl checks::Board for Virt {
    fn print(args: fmt::Arguments<'_>) {
        let _ = fmt::write(&mut Uart, args);
    }
    fn start_ticks() {
        set_mtimecmp(mtime() + TICK_PERIOD);
        // SAFETY: the timer interrupt's handler (`machine_timer`) only allocates through the
        // critical-section heap lock and touches the checks' handler-side state.
        unsafe {
            mie::enable(Interrupt::MachineTimer);
            riscv::interrupt::enable();
        }
    }
    fn stop_ticks() {
        mie::disable(Interrupt::MachineTimer);
    }
    fn tick_pending() -> bool {
        mip::read().is_pending(Interrupt::MachineTimer)
    }
}

/// The virt machine's 16550 UART (QEMU needs no set-up for it).
struct Uart;
impl fmt::Write for Uart {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for &b in s.as_bytes() {
            // SAFETY: THR and LSR are the UART's device registers; a byte is written once the transmit
            // holding register is empty (LSR bit 5).
            unsafe {
                while ptr::read_volatile(UART_LSR) & 0x20 == 0 {}
                ptr::write_volatile(UART_THR, b);
            }
        }
        Ok(())
    }
}

#[riscv_rt::core_interrupt(Interrupt::MachineTimer)]
fn machine_timer() {
    set_mtimecmp(mtime() + TICK_PERIOD);
    checks::on_tick();
}

/// Ends the QEMU run through the test finisher: 0x5555 passes, `code << 16 | 0x3333` fails with `code`.
fn exit(passed: bool) -> ! {
    // SAFETY: the test finisher is a writable device register; writing it stops the machine.
    unsafe {
        ptr::write_volatile(
            TEST_FINISHER,
            if passed { 0x5555 } else { 1 << 16 | 0x3333 },
        )
    };
    loop {
        riscv::asm::wfi();
    }
}

#[riscv_rt::entry]
fn main() -> ! {
    // SAFETY: first thing in main, before anything allocates; HEAP is referred to nowhere else, and its
    // pointer comes from `&raw mut` on the whole static, so its provenance covers all of it.
    unsafe { ALLOC.add_region(&raw mut HEAP as *mut u8, HEAP_SIZE) };
    exit(checks::run::<Virt>(
        "RISC-V rv32imc (QEMU virt), critical-section lock",
        &ALLOC,
        HEAP_SIZE,
    ))
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    // Also where a failed infallible allocation ends up: no_std's default `handle_alloc_error` panics.
    <Virt as checks::Board>::print(format_args!("PANIC: {info}\n"));
    exit(false)
}
