//! tracemalloc for Rust (feature `trace`): which code allocated the memory that is live now.
//!
//! [`start`] begins recording every block allocated through any [`PoolAlloc`](crate::PoolAlloc) (the
//! `#[global_allocator]` among them) with its size, the raw return addresses of its stack and the
//! caller's [tag](with_tag); [`take_snapshot`] copies the live records and resolves the addresses to
//! file and line (the slow part, kept off the allocation path). As in Python:
//!
//! ```
//! # #[global_allocator] static A: poolgc::PoolAlloc = poolgc::PoolAlloc::new();
//! use poolgc::trace::{self, GroupBy};
//!
//! trace::start(5);
//! let before = trace::take_snapshot();
//! let table: Vec<String> = (0..1000).map(|i| i.to_string()).collect();
//! let after = trace::take_snapshot();
//! for stat in after.compare_to(&before, GroupBy::Lineno).iter().take(3) {
//!     println!("{stat}"); // e.g. "src/main.rs:7: size=+23.4 KiB (...), count=+1001 (...)"
//! }
//! let (current, peak) = trace::get_traced_memory();
//! assert!(peak >= current);
//! trace::stop();
//! # drop(table);
//! ```
//!
//! Recording never allocates through the global allocator: the tables live in memory mapped for them,
//! and a thread-local flag keeps the tracer's own allocations (snapshots, symbol resolution) out of them.

use core::cell::Cell;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::sync::Lock;

mod snapshot;
mod table;

pub use snapshot::{Filter, Frame, GroupBy, Key, Snapshot, Statistic, StatisticDiff, Trace};
use table::{Entry, Stack, Tables, RAW_FRAMES};

/// Whether recording is on: the one load the allocation path pays when it is off.
static ACTIVE: AtomicBool = AtomicBool::new(false);
/// Frames kept per trace once resolved (`start`'s argument).
static NFRAMES: AtomicUsize = AtomicUsize::new(1);
/// Raw frames captured per allocation: the frames kept and room for the allocator's and the standard
/// library's own frames above them (unwinding is the hot path's main cost, per frame).
static CAPTURE: AtomicUsize = AtomicUsize::new(1 + SKIP_ROOM);
/// Frames of the allocator, the standard library and the `#[global_allocator]` shim that may sit
/// above the caller's frame.
const SKIP_ROOM: usize = 16;
/// Record one call in this many (1: every call).
static SAMPLE_CALLS: AtomicUsize = AtomicUsize::new(1);
/// Record about one block per this many bytes allocated (0: off).
static SAMPLE_BYTES: AtomicUsize = AtomicUsize::new(0);

static TABLES: Lock<Tables> = Lock::new(Tables::new());

std::thread_local! {
    /// Set while this thread is inside the tracer: its allocations then are not recorded.
    static BUSY: Cell<bool> = const { Cell::new(false) };
    /// The tag of this thread's allocations (`with_tag`).
    static TAG: Cell<Option<&'static str>> = const { Cell::new(None) };
    /// Calls since the last sampled one.
    static CALLS: Cell<usize> = const { Cell::new(0) };
    /// Bytes since the last sampled block.
    static BYTES: Cell<usize> = const { Cell::new(0) };
}

/// Sets the thread's busy flag for the guard's life; `None` if it was set already (re-entry) or the
/// thread is exiting.
struct Busy;

impl Busy {
    fn enter() -> Option<Busy> {
        BUSY.try_with(|b| (!b.replace(true)).then(|| Busy))
            .ok()
            .flatten()
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        let _ = BUSY.try_with(|b| b.set(false));
    }
}

/// How many allocations to record: all of them, or a sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sampling {
    /// Every allocation (tracemalloc's only mode).
    All,
    /// One allocation call in `n`, counted per thread.
    Calls(usize),
    /// About one block per `n` bytes allocated, counted per thread: big blocks are more likely to be
    /// recorded than small ones.
    Bytes(usize),
}

/// Starts tracing every `PoolAlloc`, keeping `nframes` frames (1 to 32) of each allocation's stack
/// (Python's `tracemalloc.start(nframes)`). Restarting keeps what was recorded.
pub fn start(nframes: usize) {
    start_sampled(nframes, Sampling::All);
}

/// [`start`], recording a sample only: cheaper, and traced memory then counts the sampled blocks only.
///
/// ```
/// # #[global_allocator] static A: poolgc::PoolAlloc = poolgc::PoolAlloc::new();
/// use poolgc::trace::{self, Sampling};
/// trace::start_sampled(1, Sampling::Calls(100)); // one allocation in a hundred
/// # trace::stop();
/// ```
pub fn start_sampled(nframes: usize, sampling: Sampling) {
    let Some(_busy) = Busy::enter() else { return };
    if !TABLES.lock().ensure() {
        return;
    }
    #[cfg(not(any(feature = "critical-section", miri)))]
    fork::install();
    let nframes = nframes.clamp(1, RAW_FRAMES - SKIP_ROOM);
    NFRAMES.store(nframes, Ordering::Relaxed);
    CAPTURE.store(nframes + SKIP_ROOM, Ordering::Relaxed);
    let (calls, bytes) = match sampling {
        Sampling::All => (1, 0),
        Sampling::Calls(n) => (n.max(1), 0),
        Sampling::Bytes(n) => (1, n),
    };
    SAMPLE_CALLS.store(calls, Ordering::Relaxed);
    SAMPLE_BYTES.store(bytes, Ordering::Relaxed);
    ACTIVE.store(true, Ordering::Release);
}

/// The trace lock around `fork`: taken before it, released after it in both processes, so that a child
/// forked while another thread records never finds it held. The trace lock is never held while a heap
/// lock is taken (nothing allocates under it), so these handlers' order among poolgc's others is free.
#[cfg(not(any(feature = "critical-section", miri)))]
mod fork {
    use super::TABLES;

    extern "C" fn prepare() {
        TABLES.lock_raw();
    }

    extern "C" fn release() {
        // SAFETY: `prepare` took the lock in this thread (the forking one), and nothing released it.
        unsafe { TABLES.unlock_raw() };
    }

    /// Installs the handlers, once per process.
    pub(super) fn install() {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            // SAFETY: the handlers are `extern "C"` functions that live for the whole program.
            unsafe { libc::pthread_atfork(Some(prepare), Some(release), Some(release)) };
        });
    }
}

/// Stops tracing and forgets every trace (Python's `tracemalloc.stop()`).
pub fn stop() {
    ACTIVE.store(false, Ordering::Release);
    TABLES.lock().clear();
}

/// Whether tracing is on.
pub fn is_tracing() -> bool {
    ACTIVE.load(Ordering::Relaxed)
}

/// The frames kept per trace (`start`'s argument).
pub fn get_traceback_limit() -> usize {
    NFRAMES.load(Ordering::Relaxed)
}

/// The bytes of the traced blocks now, and their highest total since tracing started or
/// [`reset_peak`] (requested sizes, as Python counts them).
pub fn get_traced_memory() -> (usize, usize) {
    let t = TABLES.lock();
    (t.current, t.peak)
}

/// Sets the peak to the current traced memory.
pub fn reset_peak() {
    let mut t = TABLES.lock();
    t.peak = t.current;
}

/// Blocks not recorded because the trace table was full (about 786 000 live traced blocks; sample
/// with [`start_sampled`] to trace more).
pub fn dropped() -> usize {
    TABLES.lock().dropped
}

/// Runs `f` with `tag` on every block this thread allocates meanwhile; snapshots group by it with
/// [`GroupBy::Tag`]. Tags nest: the innermost wins.
///
/// ```
/// # #[global_allocator] static A: poolgc::PoolAlloc = poolgc::PoolAlloc::new();
/// let parsed: Vec<u32> = poolgc::trace::with_tag("parser", || vec![1, 2, 3]);
/// # drop(parsed);
/// ```
pub fn with_tag<R>(tag: &'static str, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<&'static str>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let _ = TAG.try_with(|t| t.set(self.0));
        }
    }
    let _restore = Restore(TAG.with(|t| t.replace(Some(tag))));
    f()
}

/// Whether tracing is on: the allocation path's test before calling into the tracer.
#[inline(always)]
pub(crate) fn active() -> bool {
    ACTIVE.load(Ordering::Relaxed)
}

/// Whether this allocation is sampled.
fn sampled(size: usize) -> bool {
    let every = SAMPLE_CALLS.load(Ordering::Relaxed);
    if every > 1 {
        let n = CALLS.with(|c| {
            let n = c.get() + 1;
            c.set(if n >= every { 0 } else { n });
            n
        });
        return n >= every;
    }
    let per = SAMPLE_BYTES.load(Ordering::Relaxed);
    if per > 0 {
        return BYTES.with(|b| {
            let n = b.get() + size;
            b.set(n % per);
            n >= per
        });
    }
    true
}

/// Records the block `addr` of `size` bytes just allocated, in pool class `class`.
#[cold]
#[inline(never)]
pub(crate) fn record_alloc(addr: *mut u8, size: usize, class: Option<usize>) {
    let Some(_busy) = Busy::enter() else { return };
    if !sampled(size) {
        return;
    }
    let mut raw = [0usize; RAW_FRAMES];
    let mut n = 0;
    let capture = CAPTURE.load(Ordering::Relaxed);
    // SAFETY: `trace_unsynchronized` must not run concurrently with other backtrace-crate calls on
    // platforms whose unwinder is not thread-safe; on the platforms `trace` builds for (Unix with the
    // system unwinder) it is, and the busy flag keeps it from re-entering on this thread.
    unsafe {
        backtrace::trace_unsynchronized(|frame| {
            raw[n] = frame.ip() as usize;
            n += 1;
            n < capture
        });
    }
    let tag = TAG.try_with(Cell::get).ok().flatten();
    let mut t = TABLES.lock();
    if !active() {
        return;
    }
    let stack = t.intern_stack(&raw[..n]);
    t.insert(Entry {
        addr: addr as usize,
        size,
        tag,
        stack,
        class: class.map_or(u16::MAX, |c| c as u16),
    });
}

/// Forgets the block `addr`, about to be freed.
#[cold]
#[inline(never)]
pub(crate) fn record_free(addr: *mut u8) {
    let Some(_busy) = Busy::enter() else { return };
    TABLES.lock().remove(addr as usize);
}

/// Copies the live traces and the stacks they use. Nothing is allocated under the trace lock (the
/// buffers are sized before it is taken), so the lock never waits for a heap lock: `fork` handlers and
/// the allocation path may take them in any order.
fn raw_traces() -> (std::vec::Vec<Entry>, std::vec::Vec<(u32, Stack)>) {
    loop {
        let (count, stacks) = {
            let t = TABLES.lock();
            (t.count, t.stack_count)
        };
        let mut entries = std::vec::Vec::with_capacity(count + 1024);
        let mut used = std::vec::Vec::with_capacity(stacks + 256);
        let t = TABLES.lock();
        if t.count > entries.capacity() || t.stack_count > used.capacity() {
            continue;
        }
        t.for_each(|e| entries.push(*e));
        t.for_each_stack(|id, s| used.push((id, *s)));
        return (entries, used);
    }
}

/// A copy of the live traces, resolved to file and line (Python's `tracemalloc.take_snapshot()`).
/// Empty when tracing is off.
pub fn take_snapshot() -> Snapshot {
    let busy = Busy::enter();
    if busy.is_none() || !active() {
        return Snapshot::default();
    }
    let (entries, stacks) = raw_traces();
    snapshot::build(entries, stacks, get_traceback_limit())
}

/// For the debug allocator's message: the raw return addresses of the block `addr`'s allocation, if
/// traced; writes nothing otherwise. Never allocates.
#[cfg(feature = "debug")]
pub(crate) fn write_call_site(out: &mut dyn core::fmt::Write, addr: usize) -> bool {
    let Some(_busy) = Busy::enter() else {
        return false;
    };
    let t = TABLES.lock();
    let Some(e) = t.get(addr) else { return false };
    let _ = write!(out, "  allocated (tracing on) from return addresses:");
    if let Some(s) = t.stack(e.stack) {
        for f in &s.frames[..(s.len as usize).min(12)] {
            let _ = write!(out, " {f:#x}");
        }
    }
    let _ = writeln!(out);
    true
}

/// For the debug allocator, once its message is out: the allocation site of `addr` as file:line, on
/// stderr. Resolving symbols allocates; the heap's own structures are intact when a violation is caught
/// (the guards absorb it), so this is attempted just before the abort.
#[cfg(feature = "debug")]
pub(crate) fn print_resolved_site(addr: usize) {
    let Some(_busy) = Busy::enter() else { return };
    let found = {
        let t = TABLES.lock();
        t.get(addr).and_then(|e| {
            t.stack(e.stack)
                .map(|s| s.frames[..s.len as usize].to_vec())
        })
    };
    if let Some(frames) = found {
        let frames = snapshot::resolve_user_frames(&frames, get_traceback_limit());
        let mut msg = std::string::String::from("  allocated at:\n");
        for f in &frames {
            msg.push_str(&std::format!("    {f}\n"));
        }
        use std::io::Write as _;
        let _ = std::io::stderr().write_all(msg.as_bytes());
    }
}
