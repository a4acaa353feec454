//! CPython's debug allocator (`PYTHONMALLOC=debug`) as a layer over the pools (feature `debug`).
//!
//! Every block the caller sees sits inside a larger block of the layer below:
//!
//! ```text
//! base: [link room 16][size 8][serial 8][state 1][align log2 1][0xFD ... up to `prefix`]
//! user: [requested size bytes: 0xCD when fresh, 0xDD once freed][0xFD x 8]
//! ```
//!
//! The first 16 bytes are left to the free lists below (pool, thread cache and transfer links use the
//! first two words of a free block), so a freed block's header survives while it waits for reuse; that
//! is how write-after-free is caught when the block is handed out again. A violation writes one message
//! (formatted on the stack, never allocating) and aborts the process: the allocator never unwinds.

use core::alloc::Layout;
use core::fmt::{self, Write};
use core::ptr;
use core::sync::atomic::{AtomicUsize, Ordering};

/// The byte that fills fresh memory (CPython's `PYMEM_CLEANBYTE`).
pub const CLEAN_BYTE: u8 = 0xCD;
/// The byte that fills freed memory (CPython's `PYMEM_DEADBYTE`).
pub const DEAD_BYTE: u8 = 0xDD;
/// The byte of the guards before and after each block (CPython's `PYMEM_FORBIDDENBYTE`).
pub const FORBIDDEN_BYTE: u8 = 0xFD;

/// Bytes at the start of the outer block left to the free lists of the layers below.
const LINK_ROOM: usize = 16;
const SIZE_AT: usize = LINK_ROOM;
const SERIAL_AT: usize = LINK_ROOM + 8;
const STATE_AT: usize = LINK_ROOM + 16;
const ALIGN_AT: usize = STATE_AT + 1;
/// The first guard byte before the user's bytes; the guard runs up to the prefix (at least 14 bytes).
const GUARD_AT: usize = ALIGN_AT + 1;
const MIN_PREFIX: usize = 48;
/// Guard bytes after the user's bytes.
const TRAILER: usize = 8;

/// State byte of a live block. Neither this nor `FREED` is a fill byte, so stale fill is never taken
/// for a header.
const ALIVE: u8 = 0xA7;
/// State byte of a freed block, kept until the block is handed out again.
const FREED: u8 = 0x5E;

/// The serial number of the next allocation (CPython's `serialno`), process-wide.
static SERIAL: AtomicUsize = AtomicUsize::new(1);

/// Takes the next serial number. Without compare-and-swap (Cortex-M0, riscv32imc) an interrupt may
/// repeat one: serials are for reading, nothing relies on them being unique.
#[inline]
fn next_serial() -> u64 {
    #[cfg(target_has_atomic = "ptr")]
    let s = SERIAL.fetch_add(1, Ordering::Relaxed);
    #[cfg(not(target_has_atomic = "ptr"))]
    let s = {
        let s = SERIAL.load(Ordering::Relaxed);
        SERIAL.store(s.wrapping_add(1), Ordering::Relaxed);
        s
    };
    s as u64
}

/// The layer below: the allocator without the debug layer.
pub(crate) trait Inner {
    /// # Safety
    /// As for `GlobalAlloc::alloc`.
    unsafe fn inner_alloc(&self, layout: Layout) -> *mut u8;
    /// # Safety
    /// As for `GlobalAlloc::dealloc`.
    unsafe fn inner_dealloc(&self, ptr: *mut u8, layout: Layout);
}

/// The bytes before the user's for a block of alignment `align`: a multiple of `align`, at least
/// `MIN_PREFIX`.
#[inline]
const fn prefix(align: usize) -> usize {
    if align > MIN_PREFIX {
        align
    } else {
        (MIN_PREFIX + align - 1) & !(align - 1)
    }
}

/// The layout asked of the layer below for `layout`, or `None` when it would overflow.
#[inline]
fn outer_layout(layout: Layout) -> Option<Layout> {
    let size = prefix(layout.align())
        .checked_add(layout.size())?
        .checked_add(TRAILER)?;
    Layout::from_size_align(size, layout.align()).ok()
}

/// Allocates `layout` through `inner`, with header and guards; fresh bytes are `0xCD` (zero when
/// `zeroed`). Checks a reused block's dead fill first.
///
/// # Safety
/// As for `GlobalAlloc::alloc`.
pub(crate) unsafe fn alloc(inner: &impl Inner, layout: Layout, zeroed: bool) -> *mut u8 {
    let Some(outer) = outer_layout(layout) else {
        return ptr::null_mut();
    };
    // SAFETY: `outer` has a non-zero size (at least the prefix).
    let base = unsafe { inner.inner_alloc(outer) };
    if base.is_null() {
        return base;
    }
    let pre = prefix(layout.align());
    // SAFETY: `base` is a fresh block of `outer.size()` bytes, which covers the header, the user bytes
    // and the trailer; the layers below leave its bytes past `LINK_ROOM` as the last owner wrote them.
    unsafe {
        if base.add(STATE_AT).read() == FREED {
            check_dead_fill(base, outer.size());
        }
        base.add(SIZE_AT)
            .cast::<usize>()
            .write_unaligned(layout.size());
        let serial = next_serial();
        base.add(SERIAL_AT).cast::<u64>().write_unaligned(serial);
        base.add(STATE_AT).write(ALIVE);
        base.add(ALIGN_AT)
            .write(layout.align().trailing_zeros() as u8);
        ptr::write_bytes(base.add(GUARD_AT), FORBIDDEN_BYTE, pre - GUARD_AT);
        let fill = if zeroed { 0 } else { CLEAN_BYTE };
        ptr::write_bytes(base.add(pre), fill, layout.size());
        ptr::write_bytes(base.add(pre + layout.size()), FORBIDDEN_BYTE, TRAILER);
        base.add(pre)
    }
}

/// Frees a block of this layer: checks its state, layout and guards, fills it with `0xDD` and hands
/// it to `inner`.
///
/// # Safety
/// As for `GlobalAlloc::dealloc`; a pointer that breaks the contract in a way the header shows (double
/// free, wrong layout, overwritten guards) aborts instead.
pub(crate) unsafe fn dealloc(inner: &impl Inner, ptr: *mut u8, layout: Layout) {
    // SAFETY: forwarded contract: `ptr` came from `alloc` above, so its header precedes it.
    let base = unsafe { check_live(ptr, layout, "free") };
    // Forgotten by the tracer once checked (a violation still names the call site), before the block
    // can be handed out again.
    #[cfg(all(feature = "trace", unix, not(loom)))]
    if crate::trace::active() {
        crate::trace::record_free(ptr);
    }
    // SAFETY: the header matched `layout`, so the block spans `outer_layout(layout)` from `base`.
    unsafe {
        ptr::write_bytes(ptr, DEAD_BYTE, layout.size());
        base.add(STATE_AT).write(FREED);
        let outer = outer_layout(layout).unwrap_unchecked();
        inner.inner_dealloc(base, outer);
    }
}

/// `realloc`: a new block, the bytes copied, the old block freed (so both are checked and the old one
/// is filled with `0xDD`, as CPython's debug realloc does).
///
/// # Safety
/// As for `GlobalAlloc::realloc`.
pub(crate) unsafe fn realloc(
    inner: &impl Inner,
    ptr: *mut u8,
    layout: Layout,
    new_size: usize,
) -> *mut u8 {
    // SAFETY: forwarded contract.
    unsafe { check_live(ptr, layout, "realloc") };
    // SAFETY: the caller guarantees `new_size` is valid for `layout.align()`.
    let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
    // SAFETY: forwarded contract; `ptr` was checked live above and is distinct from the new block.
    unsafe {
        let new = alloc(inner, new_layout, false);
        if !new.is_null() {
            ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
            dealloc(inner, ptr, layout);
        }
        new
    }
}

/// The base of the live block `ptr`, after checking its state, layout and both guards; aborts on any
/// violation.
///
/// # Safety
/// `ptr` must come from [`alloc`] with a layout of `layout.align()` (what the header then confirms).
unsafe fn check_live(ptr: *mut u8, layout: Layout, op: &str) -> *mut u8 {
    let pre = prefix(layout.align());
    // SAFETY: the caller guarantees the header `pre` bytes before `ptr`; the trailer is read only once
    // the header confirmed the size.
    unsafe {
        let base = ptr.sub(pre);
        let size = base.add(SIZE_AT).cast::<usize>().read_unaligned();
        let serial = base.add(SERIAL_AT).cast::<u64>().read_unaligned();
        let state = base.add(STATE_AT).read();
        let align_log2 = base.add(ALIGN_AT).read();
        let block = BlockInfo {
            addr: ptr as usize,
            size,
            serial,
        };
        if state == FREED {
            fail(
                &block,
                "double free",
                op,
                format_args!("the block was freed already"),
                None,
            );
        }
        let guard = core::slice::from_raw_parts(base.add(GUARD_AT), pre - GUARD_AT);
        if state != ALIVE {
            fail(
                &block,
                "not a live block (or its header was overwritten)",
                op,
                format_args!("state byte {state:#04x}"),
                Some(("bytes before the block", guard)),
            );
        }
        if guard.iter().any(|&b| b != FORBIDDEN_BYTE) {
            fail(
                &block,
                "buffer underrun: the guard bytes before the block were overwritten",
                op,
                format_args!("expected {} bytes of 0xfd", guard.len()),
                Some(("bytes before the block", guard)),
            );
        }
        if size != layout.size() || u32::from(align_log2) != layout.align().trailing_zeros() {
            fail(
                &block,
                "layout mismatch",
                op,
                format_args!(
                    "allocated with size {size} align {}, freed with size {} align {}",
                    1usize << align_log2,
                    layout.size(),
                    layout.align()
                ),
                None,
            );
        }
        let tail = core::slice::from_raw_parts(ptr.add(size), TRAILER);
        if tail.iter().any(|&b| b != FORBIDDEN_BYTE) {
            fail(
                &block,
                "buffer overrun: the guard bytes after the block were overwritten",
                op,
                format_args!(
                    "expected {TRAILER} bytes of 0xfd at {:#x}",
                    ptr as usize + size
                ),
                Some(("bytes after the block", tail)),
            );
        }
        base
    }
}

/// Checks that a reused block's user bytes still hold the dead fill its free left, over what both its
/// old and its new extent cover; aborts otherwise.
///
/// # Safety
/// `base` must point to a block of `outer_size` bytes whose state byte says `FREED`.
unsafe fn check_dead_fill(base: *mut u8, outer_size: usize) {
    // SAFETY: every read stays below `outer_size` bytes from `base`.
    unsafe {
        let size = base.add(SIZE_AT).cast::<usize>().read_unaligned();
        let serial = base.add(SERIAL_AT).cast::<u64>().read_unaligned();
        let align_log2 = u32::from(base.add(ALIGN_AT).read());
        if align_log2 >= usize::BITS {
            return;
        }
        let pre = prefix(1 << align_log2);
        if pre >= outer_size {
            return;
        }
        let len = size.min(outer_size - pre);
        let user = core::slice::from_raw_parts(base.add(pre), len);
        if let Some(i) = user.iter().position(|&b| b != DEAD_BYTE) {
            let block = BlockInfo {
                addr: base as usize + pre,
                size,
                serial,
            };
            let found = &user[i..len.min(i + 16)];
            fail(
                &block,
                "write after free: the freed block's 0xdd fill was overwritten",
                "reuse",
                format_args!("first changed byte at offset {i} ({:#x})", block.addr + i),
                Some(("bytes from there", found)),
            );
        }
    }
}

/// What a message says about a block.
struct BlockInfo {
    addr: usize,
    size: usize,
    serial: u64,
}

/// A message buffer on the stack; what does not fit is cut.
struct StackBuf {
    buf: [u8; 1024],
    len: usize,
}

impl Write for StackBuf {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let n = s.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

/// Writes the violation's message and aborts.
#[cold]
#[inline(never)]
fn fail(
    block: &BlockInfo,
    what: &str,
    op: &str,
    detail: fmt::Arguments<'_>,
    bytes: Option<(&str, &[u8])>,
) -> ! {
    let mut m = StackBuf {
        buf: [0; 1024],
        len: 0,
    };
    let _ = writeln!(
        m,
        "poolgc debug allocator: {what}\n  block {:#x}: requested size {} bytes, serial number {}\n  \
         detected on {op}: {detail}",
        block.addr, block.size, block.serial
    );
    if let Some((label, found)) = bytes {
        let _ = write!(m, "  {label}:");
        for b in found {
            let _ = write!(m, " {b:02x}");
        }
        let _ = writeln!(m);
    }
    #[cfg(all(feature = "trace", unix, not(loom)))]
    let traced = crate::trace::write_call_site(&mut m, block.addr);
    emit(&m.buf[..m.len]);
    #[cfg(all(feature = "trace", unix, not(loom)))]
    if traced {
        crate::trace::print_resolved_site(block.addr);
    }
    emit(b"  aborting\n");
    abort()
}

/// Writes the message to stderr without allocating.
fn emit(msg: &[u8]) {
    #[cfg(all(feature = "std", unix))]
    {
        let mut rest = msg;
        while !rest.is_empty() {
            // SAFETY: `rest` is a valid byte slice; fd 2 is stderr (a closed one only fails the write).
            let n = unsafe { libc::write(2, rest.as_ptr().cast(), rest.len()) };
            if n <= 0 {
                break;
            }
            rest = &rest[n as usize..];
        }
    }
    #[cfg(all(feature = "std", not(unix)))]
    {
        use std::io::Write as _;
        let _ = std::io::stderr().write_all(msg);
    }
    #[cfg(not(feature = "std"))]
    if let Some(hook) = REPORT_HOOK.get() {
        hook(core::str::from_utf8(msg).unwrap_or("poolgc debug allocator: violation\n"));
    }
}

/// Ends the process without unwinding.
fn abort() -> ! {
    #[cfg(feature = "std")]
    std::process::abort();
    #[cfg(not(feature = "std"))]
    {
        // A panic cannot unwind out of an `extern "C"` function: this aborts, or runs the firmware's
        // panic handler, which does not return.
        extern "C" fn no_unwind() -> ! {
            panic!("poolgc debug allocator: heap violation")
        }
        no_unwind()
    }
}

#[cfg(not(feature = "std"))]
static REPORT_HOOK: HookCell = HookCell(core::sync::atomic::AtomicPtr::new(ptr::null_mut()));

#[cfg(not(feature = "std"))]
struct HookCell(core::sync::atomic::AtomicPtr<()>);

#[cfg(not(feature = "std"))]
impl HookCell {
    fn get(&self) -> Option<fn(&str)> {
        let p = self.0.load(Ordering::Acquire);
        // SAFETY: only `set_report_hook` stores here, always a `fn(&str)`.
        (!p.is_null()).then(|| unsafe { core::mem::transmute::<*mut (), fn(&str)>(p) })
    }
}

/// Without `std`: where the debug allocator's violation message goes (a UART, semihosting) before it
/// stops the program. With `std` the message goes to stderr and this does not exist.
///
/// ```ignore
/// poolgc::debug::set_report_hook(|msg| uart_write(msg.as_bytes()));
/// ```
#[cfg(not(feature = "std"))]
pub fn set_report_hook(hook: fn(&str)) {
    REPORT_HOOK.0.store(hook as *mut (), Ordering::Release);
}

/// The bytes the debug layer adds to a block of `layout` (header, guards and trailer).
///
/// ```
/// use std::alloc::Layout;
/// assert_eq!(poolgc::debug::overhead(Layout::new::<u64>()), 56);
/// ```
pub fn overhead(layout: Layout) -> usize {
    prefix(layout.align()) + TRAILER
}
