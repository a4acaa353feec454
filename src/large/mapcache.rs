//! The large-block cache (feature `os`, Unix): freed OS mappings kept mapped and handed out again.
//!
//! A large block given back to the OS costs a `munmap`, and the next one fresh pages: a fault per page,
//! each zeroed by the kernel; a `Vec` that is built, dropped and built again would pay that every time.
//! So freed page ranges stay mapped here, and:
//! - an allocation takes the smallest cached range that holds it (best fit); the rest of the range stays
//!   cached, *joined* to the block it was split from;
//! - a block growing by `realloc` absorbs the range joined to its end, in place: a `Vec` doubling its way
//!   up inside a cached range makes no copy, no system call and no page fault;
//! - a shrinking block gives its tail to the cache, joined; a freed block takes its joined tail back.
//!
//! A range only ever splits, or merges with the tail split from it, so it always lies inside one `mmap`:
//! `mremap` of a block never spans two mappings. At most one range is joined to a block, and it starts
//! exactly at the block's end: every way a block moves, shrinks by `mremap` or goes away unjoins it, and a
//! shrink extends the joined range downwards rather than adding a second one. Mappings are made with
//! exposed provenance, and cached ranges re-derive it from their address (as pool blocks do), never from
//! a caller's possibly narrower pointer.
//!
//! **Bounds.** Peak memory must not grow (as for spare arenas): the cache keeps a freed block only while
//! live plus cached mappings (arenas included) stay within the most that was ever live at once, or while
//! it holds at most [`FLOOR`] bytes; and before a fresh mapping is made it unmaps ranges until live plus
//! cached bytes, the new mapping included, are again within that mark (a block grown by `mremap` counts as
//! a new mapping of the bytes it grows by). Cached bytes beyond `FLOOR` decay (see [`crate::decay`]): what
//! stays unused for a whole period goes back to the OS, so a cache that serves a little steady reuse does
//! not keep the rest; the clock is read at large-block events only. Zeroed requests above
//! [`ZEROED_REUSE_MAX`](super::ZEROED_REUSE_MAX) take fresh mappings, which need no zeroing and leave
//! untouched pages unmapped.

use core::ptr::{self, NonNull};

use crate::decay::Decay;
use crate::source::{os, Sources};

/// Cached bytes always allowed (1 MiB): a buffer of a few KiB freed and allocated in a loop never costs an
/// `mmap`/`munmap` pair.
pub(crate) const FLOOR: usize = 1 << 20;

/// Cached ranges held at most.
const SLOTS: usize = 32;

/// A cached page range.
#[derive(Clone, Copy)]
struct Range {
    /// Its start, with the provenance of the mapping it lies in.
    ptr: *mut u8,
    /// Its length, a multiple of the page size.
    len: usize,
    /// Start of the live block whose end this range starts at, split from the same mapping (0: none).
    joined_to: usize,
}

const EMPTY: Range = Range {
    ptr: ptr::null_mut(),
    len: 0,
    joined_to: 0,
};

/// Freed OS page ranges kept for reuse, and the figures that bound them (see the module docs).
pub(crate) struct MapCache {
    ranges: [Range; SLOTS],
    /// Ranges in use: `ranges[..n]`.
    n: usize,
    /// Bytes cached: the sum of the ranges' lengths.
    pub bytes: usize,
    /// Bytes in live OS mappings: arenas and large blocks (page-rounded).
    live: usize,
    /// Highest `live` seen.
    live_hw: usize,
    /// The decay of the bytes cached beyond [`FLOOR`].
    pub decay: Decay,
}

/// A pointer to `addr` with the provenance of the mapping it lies in (exposed when it was made).
fn mapping_ptr(addr: usize) -> *mut u8 {
    ptr::with_exposed_provenance_mut(addr)
}

impl MapCache {
    pub const fn new(decay_ms: u32) -> Self {
        MapCache {
            ranges: [EMPTY; SLOTS],
            n: 0,
            bytes: 0,
            live: 0,
            live_hw: 0,
            decay: Decay::new(decay_ms),
        }
    }

    /// Records a fresh mapping of `size` bytes at `p` (an arena or a large block), exposing its provenance.
    pub fn mapped(&mut self, p: NonNull<u8>, size: usize) {
        let a = p.as_ptr().expose_provenance();
        self.unjoin(a);
        self.grow_live(size);
    }

    /// A live block of `old` bytes at `block` was resized by `mremap` to `new` bytes at `to` (perhaps the
    /// same address): it no longer ends where a joined range starts.
    pub fn remapped(&mut self, block: usize, old: usize, to: NonNull<u8>, new: usize) {
        let to = to.as_ptr().expose_provenance();
        self.unjoin(block);
        self.unjoin(to);
        self.live -= old;
        self.grow_live(new);
    }

    /// A live mapping of `size` bytes at `block` (an arena, or an over-aligned large block) is being
    /// unmapped.
    pub fn unmapped(&mut self, block: usize, size: usize) {
        self.unjoin(block);
        self.live -= size;
    }

    /// Takes `size` bytes (a page multiple) for a new block: the start of the smallest cached range that
    /// holds them, preferring ranges joined to no block (a joined range is room for its block to grow
    /// into: `Vec`s growing side by side must not take each other's). The range's rest stays cached,
    /// joined to the new block.
    pub fn take(&mut self, size: usize) -> Option<NonNull<u8>> {
        // Ordered by (joined, length): the smallest unjoined range that fits, else the smallest joined one.
        let key = |r: &Range| (r.joined_to != 0, r.len);
        let mut best: Option<usize> = None;
        for (i, r) in self.ranges[..self.n].iter().enumerate() {
            if r.len >= size && best.is_none_or(|b| key(r) < key(&self.ranges[b])) {
                best = Some(i);
            }
        }
        let i = best?;
        let r = &mut self.ranges[i];
        let p = r.ptr;
        if r.len == size {
            self.remove(i);
        } else {
            *r = Range {
                ptr: p.wrapping_add(size),
                len: r.len - size,
                joined_to: p.addr(),
            };
        }
        self.reused(size);
        NonNull::new(p)
    }

    /// Grows the live block of `old` bytes at `block` by `extra` bytes in place, out of the range joined to
    /// its end. Returns the block with its mapping's provenance, or `None` if no such range holds `extra`.
    pub fn absorb(&mut self, block: usize, old: usize, extra: usize) -> Option<NonNull<u8>> {
        let end = block.checked_add(old)?;
        let i = self.ranges[..self.n]
            .iter()
            .position(|r| r.joined_to == block && r.ptr.addr() == end && r.len >= extra)?;
        let r = &mut self.ranges[i];
        let p = r.ptr.with_addr(block);
        if r.len == extra {
            self.remove(i);
        } else {
            r.ptr = r.ptr.wrapping_add(extra);
            r.len -= extra;
        }
        self.reused(extra);
        NonNull::new(p)
    }

    /// Whether a range joined to no block can take `size` bytes: a grown block is then better copied
    /// there than grown by `mremap` into fresh pages.
    pub fn holds(&self, size: usize) -> bool {
        self.ranges[..self.n]
            .iter()
            .any(|r| r.joined_to == 0 && r.len >= size)
    }

    /// A live block of `size` bytes at `block` is freed: keeps its pages (merged with the range joined to
    /// its end, if any) when the bounds allow. `false`: the caller must unmap it (it no longer counts as
    /// live either way).
    pub fn put(&mut self, block: usize, size: usize) -> bool {
        self.live -= size;
        let tail = self.joined_tail(block, size);
        if !self.room_for(size, self.live) || (tail.is_none() && self.n == SLOTS) {
            self.unjoin(block);
            return false;
        }
        match tail {
            Some(i) => {
                let r = &mut self.ranges[i];
                *r = Range {
                    ptr: r.ptr.wrapping_sub(size),
                    len: r.len + size,
                    joined_to: 0,
                };
            }
            None => {
                self.ranges[self.n] = Range {
                    ptr: mapping_ptr(block),
                    len: size,
                    joined_to: 0,
                };
                self.n += 1;
            }
        }
        self.unjoin(block);
        self.bytes += size;
        true
    }

    /// The live block at `block` shrinks from `old` to `new` bytes: its last `old - new` bytes stay cached,
    /// joined to it (extending the range already joined to its end, if any), when the bounds allow.
    /// `false`: the caller must give them back itself (they stay live meanwhile).
    pub fn put_tail(&mut self, block: usize, old: usize, new: usize) -> bool {
        let len = old - new;
        let tail = self.joined_tail(block, old);
        if !self.room_for(len, self.live - len) || (tail.is_none() && self.n == SLOTS) {
            return false;
        }
        self.live -= len;
        match tail {
            Some(i) => {
                let r = &mut self.ranges[i];
                r.ptr = r.ptr.wrapping_sub(len);
                r.len += len;
            }
            None => {
                self.ranges[self.n] = Range {
                    ptr: mapping_ptr(block + new),
                    len,
                    joined_to: block,
                };
                self.n += 1;
            }
        }
        self.bytes += len;
        true
    }

    /// The range joined to the block at `block` of `size` bytes, if any (it starts at the block's end).
    fn joined_tail(&self, block: usize, size: usize) -> Option<usize> {
        self.ranges[..self.n]
            .iter()
            .position(|r| r.joined_to == block && r.ptr.addr() == block + size)
    }

    /// Whether `size` more bytes may be cached while `live` bytes stay live (without them): up to
    /// [`FLOOR`], or as long as live plus cached bytes stay within the live high-water mark.
    fn room_for(&self, size: usize, live: usize) -> bool {
        let cached = self.bytes + size;
        cached <= FLOOR || cached + live <= self.live_hw
    }

    /// Called before a fresh mapping of `size` bytes is made (or a block grows by `size` bytes with
    /// `mremap`): unmaps cached ranges, largest first, so that live plus cached bytes afterwards stay within
    /// the most that was live at once (or what is then live, if more): the ranges kept must not stack on
    /// top of memory that is new, or peak memory would grow. Also runs the decay (see
    /// [`decay`](MapCache::decay)). Returns the bytes unmapped.
    pub fn make_room(&mut self, src: &mut Sources, size: usize) -> usize {
        let allowed = self.live_hw.max(self.live + size);
        let keep = allowed.saturating_sub(self.live + size);
        let released = if self.bytes > keep {
            self.release_over(src, keep)
        } else {
            0
        };
        released + self.decay(src)
    }

    /// Called at large-block events: runs the decay of the bytes cached beyond [`FLOOR`] (see
    /// [`crate::decay`]), unmapping what stayed unused all through a period that ends now. Returns the
    /// bytes unmapped.
    pub fn decay(&mut self, src: &mut Sources) -> usize {
        let Some(keep) = self.decay.tick(self.bytes, FLOOR) else {
            return 0;
        };
        let released = self.release_over(src, keep);
        self.decay.restart(self.bytes, FLOOR);
        released
    }

    /// Unmaps every cached range; returns the bytes released.
    pub fn trim(&mut self, src: &mut Sources) -> usize {
        self.decay.stop();
        self.release_over(src, 0)
    }

    /// Unmaps cached ranges, largest first, until at most `keep` bytes are cached; returns the bytes
    /// released.
    fn release_over(&mut self, src: &mut Sources, keep: usize) -> usize {
        let mut released = 0;
        while self.bytes > keep {
            let Some(i) = (0..self.n).max_by_key(|&i| self.ranges[i].len) else {
                break;
            };
            let r = self.ranges[i];
            self.remove(i);
            // SAFETY: a cached range lies inside one of our mappings, whole pages, and nobody uses it.
            unsafe { src.unmap(NonNull::new_unchecked(r.ptr), r.len, false) };
            self.bytes -= r.len;
            released += r.len;
        }
        self.decay.fell_to(self.bytes);
        released
    }

    /// Checks the cache's invariants (for `Heap::check`): page-multiple ranges, no overlaps, at most one
    /// range joined to a block, `bytes` their sum, within the bounds.
    pub fn check(&self) -> Result<(), &'static str> {
        let page = os::page_size();
        let ranges = &self.ranges[..self.n];
        let mut sum = 0usize;
        for (i, r) in ranges.iter().enumerate() {
            if r.ptr.is_null() || r.len == 0 || r.len % page != 0 || r.ptr.addr() % page != 0 {
                return Err("cached mapping range not whole pages");
            }
            let rest = &ranges[i + 1..];
            if rest
                .iter()
                .any(|q| q.ptr.addr() < r.ptr.addr() + r.len && r.ptr.addr() < q.ptr.addr() + q.len)
            {
                return Err("cached mapping ranges overlap");
            }
            if r.joined_to != 0 && rest.iter().any(|q| q.joined_to == r.joined_to) {
                return Err("two cached ranges joined to one block");
            }
            sum += r.len;
        }
        if sum != self.bytes || self.live > self.live_hw {
            return Err("large-block cache byte counts wrong");
        }
        if self.bytes + self.live > self.live_hw.max(self.live + FLOOR) {
            return Err("large-block cache over its bound");
        }
        Ok(())
    }

    /// Cached bytes became live again.
    fn reused(&mut self, size: usize) {
        self.bytes -= size;
        self.decay.fell_to(self.bytes);
        self.grow_live(size);
    }

    fn grow_live(&mut self, size: usize) {
        self.live += size;
        self.live_hw = self.live_hw.max(self.live);
    }

    /// The block at `block` moves, shrinks away from its joined range, or goes away: no range is joined to
    /// it any more.
    fn unjoin(&mut self, block: usize) {
        for r in self.ranges[..self.n].iter_mut() {
            if r.joined_to == block {
                r.joined_to = 0;
            }
        }
    }

    fn remove(&mut self, i: usize) {
        self.n -= 1;
        self.ranges[i] = self.ranges[self.n];
        self.ranges[self.n] = EMPTY;
    }
}
