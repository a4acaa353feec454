//! Statistics: a consistent snapshot of a heap, and the report shaped like CPython's
//! `sys._debugmallocstats()`.
//!
//! This module holds plain data and formatting only; the heap fills a [`Stats`] while it holds its lock.

use core::fmt::{self, Write};

use crate::config::Config;
use crate::size_class::{block_size, NUM_CLASSES, NUM_POOL_CLASSES, SMALL_MAX};

/// Figures for one size class: an entry of [`Stats::classes`].
///
/// ```
/// use poolgc::PoolAlloc;
///
/// let pool = PoolAlloc::new();
/// let p = unsafe { core::alloc::GlobalAlloc::alloc(&pool, core::alloc::Layout::new::<[u8; 24]>()) };
/// let busy: Vec<_> = pool.stats().classes.iter().filter(|c| c.blocks_in_use > 0).copied().collect();
/// assert_eq!(busy.len(), 1);
/// assert!(busy[0].block_size >= 24 && busy[0].pools == 1);
/// # unsafe { core::alloc::GlobalAlloc::dealloc(&pool, p, core::alloc::Layout::new::<[u8; 24]>()) };
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClassStats {
    /// Bytes per block.
    pub block_size: usize,
    /// Pools currently holding blocks of this class (partly or wholly used).
    pub pools: usize,
    /// Blocks handed out.
    pub blocks_in_use: usize,
    /// Blocks available in those pools without taking a new pool (freed or never carved).
    pub blocks_available: usize,
}

/// A consistent snapshot of a heap's state, taken under its lock (`PoolAlloc::stats`, `Heap::stats`).
///
/// Taking one walks every arena; for the bytes in use alone,
/// [`PoolAlloc::bytes_in_use`](crate::PoolAlloc::bytes_in_use) reads a counter. New fields may be added
/// in minor releases, so the type cannot be built outside the crate.
///
/// ```
/// use poolgc::PoolAlloc;
///
/// let pool = PoolAlloc::new();
/// let layout = core::alloc::Layout::new::<[u64; 1000]>(); // 8,000 bytes: a large block
/// let p = unsafe { core::alloc::GlobalAlloc::alloc(&pool, layout) };
/// let s = pool.stats();
/// assert_eq!((s.large_blocks, s.large_bytes), (1, 8000));
/// assert!(s.bytes_reserved >= s.bytes_in_use);
/// print!("{}", s); // the report, as `PoolAlloc::report` writes it
/// # unsafe { core::alloc::GlobalAlloc::dealloc(&pool, p, layout) };
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Bytes handed out and not yet freed: small blocks count their class size, large ones their size.
    pub bytes_in_use: usize,
    /// Highest `bytes_in_use` seen.
    pub peak_bytes_in_use: usize,
    /// Bytes held from sources: OS mappings (arenas and large blocks) plus the regions handed over.
    pub bytes_reserved: usize,
    /// Arenas held now.
    pub arenas: usize,
    /// Arenas ever taken from a source.
    pub arenas_allocated_total: usize,
    /// Arenas given back to their source.
    pub arenas_reclaimed: usize,
    /// Most arenas held at once.
    pub arenas_highwater: usize,
    /// Wholly free arenas held for reuse (counted in `arenas`; see
    /// [`Heap::spare_decay_ms`](crate::Heap::spare_decay_ms)).
    pub spare_arenas: usize,
    /// Bytes of freed large OS mappings kept for reuse (counted in `bytes_reserved`; see
    /// [`Heap::spare_decay_ms`](crate::Heap::spare_decay_ms)).
    pub cached_large_bytes: usize,
    /// Pools holding at least one block.
    pub pools_in_use: usize,
    /// Empty pools inside held arenas (recycled or never used).
    pub pools_free: usize,
    /// Large (non-pool) blocks in use.
    pub large_blocks: usize,
    /// Bytes in large blocks in use.
    pub large_bytes: usize,
    /// Blocks handed out so far (a reallocation that moves counts as one allocation and one deallocation).
    pub allocations: u64,
    /// Blocks taken back so far.
    pub deallocations: u64,
    /// Regions handed over with `add_region`.
    pub regions: usize,
    /// Bytes of the arenas held (the sum of their sizes): what the report's `Total` adds up to.
    pub arena_bytes: usize,
    /// Bytes of pools in use taken by pool headers (and, in an arena's pool 0, the arena header).
    pub pool_header_bytes: usize,
    /// Bytes of pools in use between the headers and the first block, lost to block alignment.
    pub alignment_bytes: usize,
    /// Bytes at the end of pools in use too few for one more block (CPython's "lost to quantization").
    pub quantization_bytes: usize,
    /// Pool and arena geometry.
    pub config: Config,
    /// Per-class figures, index = class: the small classes, then the medium ones
    /// ([`NUM_POOL_CLASSES`] in all).
    pub classes: [ClassStats; NUM_POOL_CLASSES],
}

impl Stats {
    pub(crate) fn empty(config: Config) -> Stats {
        let mut classes = [ClassStats::default(); NUM_POOL_CLASSES];
        for (i, c) in classes.iter_mut().enumerate() {
            c.block_size = block_size(i);
        }
        Stats {
            bytes_in_use: 0,
            peak_bytes_in_use: 0,
            bytes_reserved: 0,
            arenas: 0,
            arenas_allocated_total: 0,
            arenas_reclaimed: 0,
            arenas_highwater: 0,
            spare_arenas: 0,
            cached_large_bytes: 0,
            pools_in_use: 0,
            pools_free: 0,
            large_blocks: 0,
            large_bytes: 0,
            allocations: 0,
            deallocations: 0,
            regions: 0,
            arena_bytes: 0,
            pool_header_bytes: 0,
            alignment_bytes: 0,
            quantization_bytes: 0,
            config,
            classes,
        }
    }

    /// Bytes in pool blocks (small and medium classes) handed out.
    pub fn small_bytes_in_use(&self) -> usize {
        self.classes
            .iter()
            .map(|c| c.blocks_in_use * c.block_size)
            .sum()
    }

    /// The sum of the report's parts: bytes in allocated and available blocks, unused pools, and bytes
    /// lost to pool headers, alignment and quantization. It equals [`arena_bytes`](Stats::arena_bytes):
    /// every byte of every arena is in exactly one part.
    ///
    /// ```
    /// use poolgc::PoolAlloc;
    ///
    /// let pool = PoolAlloc::new();
    /// let p = unsafe { core::alloc::GlobalAlloc::alloc(&pool, core::alloc::Layout::new::<[u8; 40]>()) };
    /// let s = pool.stats();
    /// assert_eq!(s.accounted_bytes(), s.arena_bytes);
    /// # unsafe { core::alloc::GlobalAlloc::dealloc(&pool, p, core::alloc::Layout::new::<[u8; 40]>()) };
    /// ```
    pub fn accounted_bytes(&self) -> usize {
        let avail: usize = self
            .classes
            .iter()
            .map(|c| c.blocks_available * c.block_size)
            .sum();
        self.small_bytes_in_use()
            + avail
            + self.pools_free * self.config.pool_size()
            + self.pool_header_bytes
            + self.alignment_bytes
            + self.quantization_bytes
    }

    /// Writes the report: a per-class table and arena/pool totals, laid out like CPython's
    /// `sys._debugmallocstats()`, followed by the large-block and counter totals.
    pub fn write_report(&self, out: &mut dyn Write) -> fmt::Result {
        let cfg = &self.config;
        writeln!(
            out,
            "Small block threshold = {SMALL_MAX}, in {NUM_CLASSES} size classes."
        )?;
        writeln!(out)?;
        writeln!(
            out,
            "class   size   num pools   blocks in use  avail blocks"
        )?;
        writeln!(
            out,
            "-----   ----   ---------   -------------  ------------"
        )?;
        for (i, c) in self.classes.iter().enumerate() {
            if c.pools > 0 {
                writeln!(
                    out,
                    "{i:5}  {:5}  {:10}  {:14}  {:12}",
                    c.block_size, c.pools, c.blocks_in_use, c.blocks_available
                )?;
            }
        }
        writeln!(out)?;
        line(out, "# arenas allocated total", self.arenas_allocated_total)?;
        line(out, "# arenas reclaimed", self.arenas_reclaimed)?;
        line(out, "# arenas highwater mark", self.arenas_highwater)?;
        line(out, "# arenas allocated current", self.arenas)?;
        line(out, "# arenas held as spares", self.spare_arenas)?;
        let mut label = Label::default();
        write!(
            label,
            "{} arenas * {} bytes/arena",
            self.arenas,
            cfg.arena_size()
        )?;
        line(out, label.as_str(), self.arenas * cfg.arena_size())?;
        line(out, "# bytes in arenas", self.arena_bytes)?;
        writeln!(out)?;
        let in_blocks = self.small_bytes_in_use();
        let avail: usize = self
            .classes
            .iter()
            .map(|c| c.blocks_available * c.block_size)
            .sum();
        let unused = self.pools_free * cfg.pool_size();
        line(out, "# bytes in allocated blocks", in_blocks)?;
        line(out, "# bytes in available blocks", avail)?;
        let mut label = Label::default();
        write!(
            label,
            "{} unused pools * {} bytes",
            self.pools_free,
            cfg.pool_size()
        )?;
        line(out, label.as_str(), unused)?;
        line(out, "# bytes lost to pool headers", self.pool_header_bytes)?;
        line(out, "# bytes lost to alignment", self.alignment_bytes)?;
        line(out, "# bytes lost to quantization", self.quantization_bytes)?;
        line(out, "Total", self.accounted_bytes())?;
        writeln!(out)?;
        line(out, "# large blocks in use", self.large_blocks)?;
        line(out, "# bytes in large blocks", self.large_bytes)?;
        line(out, "# bytes in use (small + large)", self.bytes_in_use)?;
        line(out, "# peak bytes in use", self.peak_bytes_in_use)?;
        line(out, "# bytes reserved from sources", self.bytes_reserved)?;
        line(
            out,
            "# bytes in cached large mappings",
            self.cached_large_bytes,
        )?;
        line(out, "# regions", self.regions)?;
        line(out, "# allocations", self.allocations as usize)?;
        line(out, "# deallocations", self.deallocations as usize)
    }
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_report(f)
    }
}

/// One `label = value` line of the report.
pub(crate) fn line(out: &mut dyn Write, label: &str, value: usize) -> fmt::Result {
    write!(out, "{label:<35}= ")?;
    Grouped(value).write_padded(out, 20)?;
    writeln!(out)
}

/// A number printed with `,` between groups of three digits, as CPython's report does.
struct Grouped(usize);

impl Grouped {
    fn write_padded(&self, out: &mut dyn Write, width: usize) -> fmt::Result {
        let mut digits = [0u8; 32];
        let mut n = self.0;
        let mut len = 0;
        loop {
            if len % 4 == 3 {
                digits[len] = b',';
                len += 1;
            }
            digits[len] = b'0' + (n % 10) as u8;
            len += 1;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        for _ in len..width {
            out.write_char(' ')?;
        }
        for &d in digits[..len].iter().rev() {
            out.write_char(d as char)?;
        }
        Ok(())
    }
}

/// A small fixed buffer for composing a label without allocating (the report may run inside the allocator's
/// own user, e.g. a firmware with no other heap).
struct Label {
    buf: [u8; 48],
    len: usize,
}

impl Default for Label {
    fn default() -> Self {
        Label {
            buf: [0; 48],
            len: 0,
        }
    }
}

impl Label {
    fn as_str(&self) -> &str {
        core::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }
}

impl Write for Label {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = self.buf.len() - self.len;
        // Truncate on a char boundary rather than fail: a label is cosmetic.
        let mut take = s.len().min(room);
        while !s.is_char_boundary(take) {
            take -= 1;
        }
        self.buf[self.len..self.len + take].copy_from_slice(&s.as_bytes()[..take]);
        self.len += take;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::String;

    #[test]
    fn numbers_are_grouped_like_cpython() {
        for (n, want) in [
            (0, "0"),
            (999, "999"),
            (1000, "1,000"),
            (1048576, "1,048,576"),
        ] {
            let mut s = String::new();
            Grouped(n).write_padded(&mut s, 0).unwrap();
            assert_eq!(s, want);
        }
    }
}
