//! One report for the whole memory manager: the program's allocator, the `Gc` box heap and the
//! collector, shaped like CPython's `sys._debugmallocstats()`.

use core::fmt::{self, Write};

use crate::stats::line;
use crate::PoolAlloc;

/// Writes one report of everything poolgc manages in this program, as `sys._debugmallocstats()` does
/// for CPython: `alloc`'s report (usually the `#[global_allocator]`; `None` to leave it out), that of
/// the `Gc` box heap ([`box_allocator`](super::box_allocator), when boxes have a heap of their own), then
/// this thread's collector figures ([`stats`](super::stats)) and, with feature `gc-introspect`, the ten
/// most common types of live objects (`census`).
///
/// Each allocator's snapshot is taken under its lock and written after, so `out` may allocate.
///
/// ```
/// use poolgc::{gc, PoolAlloc};
///
/// static ALLOC: PoolAlloc = PoolAlloc::new();
/// let x = gc::Gc::new(1u64);
/// let mut out = String::new();
/// gc::report(Some(&ALLOC), &mut out).unwrap();
/// assert!(out.contains("Gc box heap") && out.contains("# collections"));
/// ```
pub fn report(alloc: Option<&PoolAlloc>, out: &mut dyn Write) -> fmt::Result {
    if let Some(a) = alloc {
        writeln!(out, "== Allocator ==")?;
        a.report(out)?;
        writeln!(out)?;
    }
    writeln!(out, "== Gc box heap ==")?;
    match super::box_allocator() {
        Some(b) if !alloc.is_some_and(|a| core::ptr::eq(a, b)) => b.report(out)?,
        _ => writeln!(out, "Gc boxes come from the global allocator.")?,
    }
    writeln!(out)?;
    writeln!(out, "== Collector (this thread) ==")?;
    let s = super::stats();
    line(out, "# live Gc objects", s.live)?;
    line(out, "# frozen objects", s.frozen)?;
    line(out, "# possible roots buffered", s.buffered)?;
    line(out, "# threshold (set)", s.threshold)?;
    line(out, "# threshold (effective)", s.effective_threshold)?;
    line(out, "# collections", s.collections as usize)?;
    line(out, "# objects collected", s.collected as usize)?;
    line(out, "# objects resurrected", s.resurrected as usize)?;
    line(out, "# Drop panics ignored", s.drop_panics_ignored as usize)?;
    line(
        out,
        "# microseconds collecting",
        s.time.as_micros().min(usize::MAX as u128) as usize,
    )?;
    line(
        out,
        "# saved garbage (DEBUG_SAVEALL)",
        super::introspect::garbage_len(),
    )?;
    #[cfg(feature = "gc-introspect")]
    {
        let c = super::census();
        let (count, bytes) = c.total();
        line(out, "# objects in the census", count)?;
        line(out, "# bytes in the census", bytes)?;
        writeln!(out)?;
        writeln!(
            out,
            "{:<48} {:>10} {:>12}",
            "most common types", "objects", "bytes"
        )?;
        for t in c.most_common(10) {
            writeln!(
                out,
                "{:<48} {:>10} {:>12}",
                super::short_type_name(t.type_name),
                t.count,
                t.bytes
            )?;
        }
    }
    Ok(())
}
