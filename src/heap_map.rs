//! The heap map: an SVG picture of every pool of an allocator, a cell per pool, coloured by size class
//! and shaded by how full it is (`PoolAlloc::write_heap_svg`), and the pool walk behind it.

use core::fmt::{self, Write};

use crate::size_class::{block_size, NUM_POOL_CLASSES};
use crate::{PoolAlloc, PoolInfo};

/// Pools copied out per lock hold: the lock is never held while `out` is written (which may allocate),
/// and nothing is allocated under it.
const CHUNK: usize = 32;
/// Cells per row, and their size in pixels.
const COLS: usize = 64;
const CELL: usize = 11;
const LEFT: usize = 70;
const TOP: usize = 40;

/// The hue of a size class: golden-angle steps, so neighbouring classes look different.
fn hue(class: usize) -> usize {
    (class * 137 + 200) % 360
}

impl PoolAlloc {
    /// Calls `f` for every pool of every arena with what it holds ([`Heap::visit_pools`](crate::Heap::visit_pools)),
    /// under the heap's lock: `f` must not allocate from this allocator (if it is the global one: not
    /// at all).
    pub fn visit_pools(&self, f: impl FnMut(&PoolInfo)) {
        self.with_heap(|h| h.visit_pools(f));
    }

    /// Writes an SVG heap map: a row of cells per arena, a cell per pool, coloured by the pool's size
    /// class and darker the fuller it is; empty pools are grey. Each cell's tooltip names its class,
    /// block size and blocks in use; a legend lists the classes present.
    ///
    /// Pools are copied out a few at a time under the lock and written after releasing it, so `out`
    /// may allocate (a `String`) even when this is the global allocator; a heap that changes meanwhile
    /// is drawn as it was when each pool was read.
    ///
    /// ```
    /// use poolgc::PoolAlloc;
    ///
    /// let pool = PoolAlloc::new_locked();
    /// let layout = core::alloc::Layout::new::<[u8; 100]>();
    /// let p = unsafe { core::alloc::GlobalAlloc::alloc(&pool, layout) };
    /// let mut svg = String::new();
    /// pool.write_heap_svg(&mut svg).unwrap();
    /// assert!(svg.starts_with("<svg") && svg.contains("1/"));
    /// # unsafe { core::alloc::GlobalAlloc::dealloc(&pool, p, layout) };
    /// ```
    pub fn write_heap_svg(&self, out: &mut dyn Write) -> fmt::Result {
        let (mut arenas, mut max_pools, mut classes, mut used) = (0, 0, 0u128, 0);
        self.visit_pools(|p| {
            arenas = arenas.max(p.arena + 1);
            max_pools = max_pools.max(p.arena_pools);
            if let Some(c) = p.class {
                classes |= 1 << c;
                used += 1;
            }
        });
        let cols = max_pools.clamp(1, COLS);
        let rows_per_arena = max_pools.div_ceil(cols).max(1);
        let legend_y = TOP + arenas * rows_per_arena * CELL + 20;
        let nclasses = classes.count_ones() as usize;
        let width = LEFT + cols * CELL + 20;
        let height = legend_y + nclasses.div_ceil(4) * 16 + 20;
        writeln!(
            out,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" \
             font-family=\"Helvetica,Arial,sans-serif\" font-size=\"11\">"
        )?;
        writeln!(
            out,
            "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
             <text x=\"4\" y=\"16\" font-size=\"13\">poolgc heap map: {arenas} arenas, {used} pools in \
             use (a cell per pool; colour = size class, darker = fuller, grey = empty)</text>"
        )?;
        for a in 0..arenas {
            let y = TOP + a * rows_per_arena * CELL + CELL - 2;
            writeln!(out, "<text x=\"4\" y=\"{y}\">arena {a}</text>")?;
        }
        let mut start = 0;
        loop {
            let mut buf = [PoolInfo::default(); CHUNK];
            let (mut n, mut seen) = (0, 0);
            self.visit_pools(|p| {
                if seen >= start && n < CHUNK {
                    buf[n] = *p;
                    n += 1;
                }
                seen += 1;
            });
            for p in &buf[..n] {
                if p.arena >= arenas {
                    continue; // an arena added after the first pass: no row for it
                }
                cell(out, p, cols, rows_per_arena)?;
            }
            if n < CHUNK {
                break;
            }
            start += n;
        }
        for (i, c) in (0..NUM_POOL_CLASSES)
            .filter(|&c| classes & (1 << c) != 0)
            .enumerate()
        {
            let x = LEFT + (i % 4) * 110;
            let y = legend_y + (i / 4) * 16;
            writeln!(
                out,
                "<rect x=\"{x}\" y=\"{y}\" width=\"10\" height=\"10\" fill=\"hsl({},70%,45%)\"/>\
                 <text x=\"{}\" y=\"{}\">class {c}: {} B</text>",
                hue(c),
                x + 14,
                y + 9,
                block_size(c)
            )?;
        }
        writeln!(out, "</svg>")
    }
}

/// One pool's cell, with its tooltip.
fn cell(out: &mut dyn Write, p: &PoolInfo, cols: usize, rows_per_arena: usize) -> fmt::Result {
    let x = LEFT + (p.index % cols) * CELL;
    let y = TOP + (p.arena * rows_per_arena + p.index / cols) * CELL;
    write!(
        out,
        "<rect x=\"{x}\" y=\"{y}\" width=\"{}\" height=\"{}\" ",
        CELL - 1,
        CELL - 1
    )?;
    match p.class {
        Some(c) => {
            // 85% light when nearly empty, 30% when full.
            let fill = p.in_use * 100 / p.capacity.max(1);
            let light = 85 - fill * 55 / 100;
            writeln!(
                out,
                "fill=\"hsl({},70%,{light}%)\"><title>arena {} pool {}: class {c} ({} B), {}/{} blocks in \
                 use</title></rect>",
                hue(c),
                p.arena,
                p.index,
                p.block_size,
                p.in_use,
                p.capacity
            )
        }
        None => writeln!(
            out,
            "fill=\"#e8e8e8\"><title>arena {} pool {}: empty</title></rect>",
            p.arena, p.index
        ),
    }
}
