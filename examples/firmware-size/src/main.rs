//! The cost of an allocator on firmware, one image per allocator (a cargo feature picks it; see
//! `measure.sh`, which builds them all and prints the table).
//!
//! Each image hands the allocator an 8 KiB static array, then allocates, reallocates and frees through
//! `GlobalAlloc` (so that all three are linked: the code size is that of a firmware that uses them).
//! On RISC-V it also counts instructions (`minstret`; run QEMU with `-icount shift=0` so that the counter
//! counts guest instructions) over two loops and prints them on the UART:
//!
//! - `pair`: allocate and free one 32-byte block, 1000 times (the fast path);
//! - `warm`: the same while another 32-byte block stays live;
//! - `churn`: 16 live blocks of 8 to 200 bytes, one freed and another allocated each round, 1000 rounds;
//!
//! and then how many 32-byte blocks the 8 KiB heap hands out before the first null (`fill32`).
//!
//! The baseline (feature `none`) refuses every request; its `.text` is what the other images share.
#![no_std]
#![no_main]

use core::alloc::{GlobalAlloc, Layout};
use core::hint::black_box;

const HEAP_SIZE: usize = 8 * 1024;

#[repr(C, align(1024))]
struct HeapMemory([u8; HEAP_SIZE]);
static mut HEAP: HeapMemory = HeapMemory([0; HEAP_SIZE]);

#[cfg(feature = "poolgc")]
mod chosen {
    /// poolgc with the critical-section lock.
    #[global_allocator]
    pub static ALLOC: poolgc::PoolAlloc = poolgc::PoolAlloc::empty();
    pub unsafe fn init(start: *mut u8, len: usize) {
        // SAFETY: forwarded: the caller's span is unused and lives for the whole program.
        unsafe { ALLOC.add_region(start, len) }
    }
}

#[cfg(feature = "llff")]
mod chosen {
    /// embedded-alloc's linked-list first fit (critical-section lock).
    #[global_allocator]
    pub static ALLOC: embedded_alloc::LlffHeap = embedded_alloc::LlffHeap::empty();
    pub unsafe fn init(start: *mut u8, len: usize) {
        // SAFETY: forwarded; called once, before any allocation.
        unsafe { ALLOC.init(start as usize, len) }
    }
}

#[cfg(feature = "tlsf")]
mod chosen {
    /// embedded-alloc's two-level segregated fit (rlsf; critical-section lock).
    #[global_allocator]
    pub static ALLOC: embedded_alloc::TlsfHeap = embedded_alloc::TlsfHeap::empty();
    pub unsafe fn init(start: *mut u8, len: usize) {
        // SAFETY: forwarded; called once, before any allocation.
        unsafe { ALLOC.init(start as usize, len) }
    }
}

#[cfg(feature = "talc")]
mod chosen {
    use core::cell::UnsafeCell;

    /// A `lock_api` mutex that is a critical section, as embedded-alloc's and poolgc's locks are.
    pub struct CsLock(UnsafeCell<critical_section::RestoreState>);
    // SAFETY: the cell is written by `lock` and read by `unlock`, both inside the critical section.
    unsafe impl Sync for CsLock {}
    // SAFETY: `lock` enters a critical section (exclusive on a single core), `unlock` leaves it with the
    // state `lock` saved; the allocator never nests its own lock.
    unsafe impl lock_api::RawMutex for CsLock {
        #[allow(clippy::declare_interior_mutable_const)]
        const INIT: CsLock = CsLock(UnsafeCell::new(critical_section::RestoreState::invalid()));
        type GuardMarker = lock_api::GuardNoSend;
        fn lock(&self) {
            // SAFETY: released exactly once, by `unlock`, with this state.
            let state = unsafe { critical_section::acquire() };
            // SAFETY: inside the critical section: no other context touches the cell.
            unsafe { *self.0.get() = state };
        }
        fn try_lock(&self) -> bool {
            self.lock();
            true
        }
        unsafe fn unlock(&self) {
            // SAFETY: the caller holds the lock, so `lock` stored the state of the section it entered.
            unsafe { critical_section::release(*self.0.get()) }
        }
    }

    /// talc, claiming the span handed to `init`.
    #[global_allocator]
    pub static ALLOC: talc::Talck<CsLock, talc::ErrOnOom> = talc::Talc::new(talc::ErrOnOom).lock();
    pub unsafe fn init(start: *mut u8, len: usize) {
        // SAFETY: forwarded: the span is unused and lives for the whole program.
        let _ = unsafe { ALLOC.lock().claim(talc::Span::from_base_size(start, len)) };
    }
}

#[cfg(feature = "none")]
mod chosen {
    use core::alloc::{GlobalAlloc, Layout};
    /// The baseline: refuses every request.
    pub struct Refuse;
    // SAFETY: never hands out memory.
    unsafe impl GlobalAlloc for Refuse {
        unsafe fn alloc(&self, _: Layout) -> *mut u8 {
            core::ptr::null_mut()
        }
        unsafe fn dealloc(&self, _: *mut u8, _: Layout) {}
    }
    #[global_allocator]
    pub static ALLOC: Refuse = Refuse;
    pub unsafe fn init(_: *mut u8, _: usize) {}
}

use chosen::ALLOC;

/// Allocates, reallocates and frees one block (links all three), through `black_box`ed layouts.
fn exercise() -> bool {
    let l = black_box(Layout::from_size_align(24, 8).unwrap());
    // SAFETY: non-zero size; the block is reallocated and freed with the layouts it has.
    unsafe {
        let p = ALLOC.alloc(l);
        if p.is_null() {
            return false;
        }
        let q = ALLOC.realloc(p, l, black_box(200));
        if q.is_null() {
            ALLOC.dealloc(p, l);
            return false;
        }
        ALLOC.dealloc(q, Layout::from_size_align_unchecked(200, 8));
    }
    true
}

#[cfg(target_arch = "riscv32")]
mod board {
    use core::ptr;

    const UART_THR: *mut u8 = 0x1000_0000 as *mut u8;
    const TEST_FINISHER: *mut u32 = 0x0010_0000 as *mut u32;

    pub fn instret() -> u32 {
        riscv::register::minstret::read() as u32
    }

    pub fn print(s: &[u8]) {
        for &b in s {
            // SAFETY: the virt machine's UART data register.
            unsafe { ptr::write_volatile(UART_THR, b) };
        }
    }

    pub fn print_num(mut n: u32) {
        let mut buf = [0u8; 10];
        let mut i = buf.len();
        loop {
            i -= 1;
            buf[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        print(&buf[i..]);
    }

    pub fn exit(ok: bool) -> ! {
        // SAFETY: the virt machine's test finisher: 0x5555 passes, 0x13333 fails with code 1.
        unsafe { ptr::write_volatile(TEST_FINISHER, if ok { 0x5555 } else { 0x1_3333 }) };
        loop {
            riscv::asm::wfi();
        }
    }

    #[riscv_rt::entry]
    fn main() -> ! {
        exit(super::run())
    }
}

#[cfg(target_arch = "arm")]
mod board {
    #[cortex_m_rt::entry]
    fn main() -> ! {
        let ok = super::run();
        cortex_m_semihosting::debug::exit(if ok {
            cortex_m_semihosting::debug::EXIT_SUCCESS
        } else {
            cortex_m_semihosting::debug::EXIT_FAILURE
        });
        loop {
            cortex_m::asm::wfi();
        }
    }
}

/// Rounds of each measured loop.
#[cfg(target_arch = "riscv32")]
const ROUNDS: u32 = 1000;

/// Instructions per round of `pair` and `churn`, printed as `pair=N churn=M`.
#[cfg(target_arch = "riscv32")]
fn measure() -> bool {
    let l32 = black_box(Layout::from_size_align(32, 8).unwrap());
    let t0 = board::instret();
    for _ in 0..ROUNDS {
        // SAFETY: non-zero size; freed at once with its layout.
        unsafe {
            let p = ALLOC.alloc(l32);
            if p.is_null() {
                return false;
            }
            ALLOC.dealloc(black_box(p), l32);
        }
    }
    let pair = board::instret().wrapping_sub(t0) / ROUNDS;

    // The same with another 32-byte block live throughout (the block's pool, or its neighbourhood, stays
    // in use, as in a program that holds some memory).
    // SAFETY: non-zero size; freed below with its layout.
    let keep = unsafe { ALLOC.alloc(l32) };
    let t0 = board::instret();
    for _ in 0..ROUNDS {
        // SAFETY: as above.
        unsafe {
            let p = ALLOC.alloc(l32);
            if p.is_null() {
                return false;
            }
            ALLOC.dealloc(black_box(p), l32);
        }
    }
    let warm = board::instret().wrapping_sub(t0) / ROUNDS;
    if keep.is_null() {
        return false;
    }
    // SAFETY: allocated above with `l32`, freed once.
    unsafe { ALLOC.dealloc(keep, l32) };

    const SIZES: [usize; 6] = [8, 24, 40, 64, 100, 200];
    let mut live = [(core::ptr::null_mut::<u8>(), 8usize); 16];
    for (i, slot) in live.iter_mut().enumerate() {
        let size = SIZES[i % SIZES.len()];
        // SAFETY: non-zero size.
        *slot = (
            unsafe { ALLOC.alloc(Layout::from_size_align(size, 8).unwrap()) },
            size,
        );
    }
    let t1 = board::instret();
    for i in 0..ROUNDS as usize {
        let slot = &mut live[(i * 7) % 16];
        let size = black_box(SIZES[(i * 5) % SIZES.len()]);
        // SAFETY: each slot holds a live block of its size (or null, which is skipped), freed once here.
        unsafe {
            if !slot.0.is_null() {
                ALLOC.dealloc(slot.0, Layout::from_size_align_unchecked(slot.1, 8));
            }
            *slot = (
                ALLOC.alloc(Layout::from_size_align_unchecked(size, 8)),
                size,
            );
        }
    }
    let churn = board::instret().wrapping_sub(t1) / ROUNDS;
    let mut ok = true;
    for (p, size) in live {
        ok &= !p.is_null();
        if !p.is_null() {
            // SAFETY: a live block of `size` bytes, freed once.
            unsafe { ALLOC.dealloc(p, Layout::from_size_align_unchecked(size, 8)) };
        }
    }

    // How many 32-byte blocks the 8 KiB heap hands out before the first null (never freed: the image
    // ends here).
    let mut fill = 0;
    // SAFETY: non-zero size; the blocks are never used or freed.
    while !unsafe { ALLOC.alloc(l32) }.is_null() {
        fill += 1;
    }
    for (label, n) in [
        (&b"pair="[..], pair),
        (b" warm=", warm),
        (b" churn=", churn),
        (b" fill32=", fill),
    ] {
        board::print(label);
        board::print_num(n);
    }
    board::print(b"\n");
    ok
}

fn run() -> bool {
    // SAFETY: first thing, before anything allocates; HEAP is referred to nowhere else.
    unsafe { chosen::init(&raw mut HEAP as *mut u8, HEAP_SIZE) };
    let ok = exercise();
    #[cfg(target_arch = "riscv32")]
    let ok = measure() && ok;
    ok || cfg!(feature = "none")
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    loop {}
}
