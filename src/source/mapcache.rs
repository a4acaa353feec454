//! The large-block cache (feature `os`, Unix): freed OS mappings kept mapped and handed out again.
//!
//! A large block given back to the OS costs a `munmap`, and the next one fresh pages: a fault per page,
//! each zeroed by the kernel. A `Vec` that is built, dropped and built again pays that every time (the
//! bench's `vec-growth` spent two thirds of its time in the kernel). So freed page ranges stay mapped
//! here, and:
//! - an allocation takes the smallest cached range that holds it (best fit); the rest of the range stays
//!   cached, *joined* to the block it was split from;
//! - a block growing by `realloc` absorbs the range joined to its end, in place: a `Vec` doubling its way
//!   up inside a cached range makes no copy, no system call and no page fault;
//! - a shrinking block gives its tail to the cache, joined; a freed block takes its joined tail back.
//!
//! A range only ever splits, or merges with the tail split from it, so it always lies inside one `mmap`:
//! `mremap` of a block never spans two mappings, and a block's pointer keeps the provenance of its mapping.
//!
//! **Bounds.** Peak memory must not grow (as for spare arenas): the cache keeps a freed block only while
//! live plus cached mappings (arenas included) stay within the most that was ever live at once, or while
//! it holds at most [`FLOOR`] bytes; and before a fresh mapping is made it unmaps ranges until live plus
//! cached bytes, the new mapping included, are again within that mark. Bytes beyond `FLOOR` go back to the OS once they have gone
//! [`decay_ms`](MapCache::decay_ms) without a reuse; the clock is read at large-block events only.
//! Zeroed requests above [`ZEROED_REUSE_MAX`] take fresh mappings, which need no zeroing and leave
//! untouched pages unmapped.

use core::ptr::{self, NonNull};

use super::os;

/// Cached bytes always allowed (1 MiB): a buffer of a few KiB freed and allocated in a loop never costs an
/// `mmap`/`munmap` pair.
pub(crate) const FLOOR: usize = 1 << 20;

/// Largest zeroed request served from the cache (which must then be zeroed by hand); larger ones map
/// fresh, already zeroed pages.
pub(crate) const ZEROED_REUSE_MAX: usize = 256 * 1024;

/// Cached ranges held at most.
const SLOTS: usize = 32;

/// A cached page range.
#[derive(Clone, Copy)]
struct Range {
    /// Its start, with the provenance of the mapping it lies in.
    ptr: *mut u8,
    /// Its length, a multiple of the page size.
    len: usize,
    /// Start of the live block this range was split from and still directly follows (0: none).
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
    /// See [`MapCache::decay_ms`].
    pub decay_ms: u32,
    /// Since when (ms) the cache has held more than [`FLOOR`] without a reuse.
    over_since: Option<u64>,
}

impl MapCache {
    pub const fn new(decay_ms: u32) -> Self {
        MapCache {
            ranges: [EMPTY; SLOTS],
            n: 0,
            bytes: 0,
            live: 0,
            live_hw: 0,
            decay_ms,
            over_since: None,
        }
    }

    /// Records a fresh mapping of `size` bytes (an arena or a large block).
    pub fn mapped(&mut self, size: usize) {
        self.live += size;
        self.live_hw = self.live_hw.max(self.live);
    }

    /// A live block of `old` bytes at `block` grew to `new` (`mremap`); it may have moved to `to`.
    pub fn remapped(&mut self, block: usize, old: usize, to: usize, new: usize) {
        if to != block {
            self.unjoin(block);
        }
        self.live = self.live - old + new;
        self.live_hw = self.live_hw.max(self.live);
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

    /// Whether [`take`](MapCache::take) would find `size` bytes.
    pub fn holds(&self, size: usize) -> bool {
        self.ranges[..self.n].iter().any(|r| r.len >= size)
    }

    /// A live block of `size` bytes at `p` is freed: keeps its pages (merged with the range joined to its
    /// end, if any) when the bounds allow. `false`: the caller must unmap it (it no longer counts as live
    /// either way).
    pub fn put(&mut self, p: NonNull<u8>, size: usize) -> bool {
        self.live -= size;
        let a = p.as_ptr().addr();
        let tail = self.ranges[..self.n]
            .iter()
            .position(|r| r.joined_to == a && r.ptr.addr() == a + size);
        if !self.room_for(size) || (tail.is_none() && self.n == SLOTS) {
            self.unjoin(a);
            return false;
        }
        let merged = Range {
            ptr: p.as_ptr(),
            len: size,
            joined_to: 0,
        };
        match tail {
            Some(i) => {
                let r = &mut self.ranges[i];
                *r = Range {
                    len: r.len + size,
                    ..merged
                };
            }
            None => {
                self.ranges[self.n] = merged;
                self.n += 1;
            }
        }
        self.bytes += size;
        true
    }

    /// A live block at `block` shrinks: its last `len` bytes, from `tail`, stay cached, joined to it, when
    /// the bounds allow. `false`: the caller must give them back itself (they stay live meanwhile).
    pub fn put_tail(&mut self, block: usize, tail: *mut u8, len: usize) -> bool {
        if !self.room_for(len) || self.n == SLOTS {
            return false;
        }
        self.live -= len;
        self.ranges[self.n] = Range {
            ptr: tail,
            len,
            joined_to: block,
        };
        self.n += 1;
        self.bytes += len;
        true
    }

    /// Whether `size` more bytes may be cached: up to [`FLOOR`], or as long as live plus cached bytes stay
    /// within the live high-water mark.
    fn room_for(&self, size: usize) -> bool {
        let cached = self.bytes + size;
        cached <= FLOOR || cached + self.live <= self.live_hw
    }

    /// Called before a fresh mapping of `size` bytes is made (the cache could not serve it): unmaps cached
    /// ranges, largest first, so that live plus cached bytes after the mapping stay within the most that
    /// was live at once (or what is then live, if more): the ranges kept must not stack on top of memory
    /// that is new, or peak memory would grow. Also runs the decay (see [`decay`](MapCache::decay)).
    /// Returns the bytes unmapped.
    pub fn make_room(&mut self, size: usize) -> usize {
        let allowed = self.live_hw.max(self.live + size);
        let keep = allowed.saturating_sub(self.live + size);
        let released = if self.bytes > keep {
            self.release_over(keep)
        } else {
            0
        };
        released + self.decay()
    }

    /// Called at large-block events: starts the clock of the bytes beyond [`FLOOR`], or, once they have
    /// gone [`decay_ms`](MapCache::decay_ms) without a reuse, unmaps ranges until at most `FLOOR` are left.
    /// Returns the bytes unmapped.
    pub fn decay(&mut self) -> usize {
        if self.bytes <= FLOOR {
            self.over_since = None;
            return 0;
        }
        let now = super::now_ms();
        let since = *self.over_since.get_or_insert(now);
        if now.saturating_sub(since) < u64::from(self.decay_ms) {
            return 0;
        }
        self.over_since = None;
        self.release_over(FLOOR)
    }

    /// Unmaps every cached range; returns the bytes released.
    pub fn trim(&mut self) -> usize {
        self.over_since = None;
        self.release_over(0)
    }

    /// Unmaps cached ranges, largest first, until at most `keep` bytes are cached; returns the bytes
    /// released.
    fn release_over(&mut self, keep: usize) -> usize {
        let mut released = 0;
        while self.bytes > keep {
            let Some(i) = (0..self.n).max_by_key(|&i| self.ranges[i].len) else {
                break;
            };
            let r = self.ranges[i];
            self.remove(i);
            // SAFETY: a cached range lies inside one of our mappings and nobody uses it.
            unsafe { os::unmap(NonNull::new_unchecked(r.ptr), r.len) };
            self.bytes -= r.len;
            released += r.len;
        }
        released
    }

    /// Checks the cache's invariants (for `Heap::check`): page-multiple ranges, no overlaps, `bytes` their
    /// sum, within the bounds.
    pub fn check(&self) -> Result<(), &'static str> {
        let page = os::page_size();
        let ranges = &self.ranges[..self.n];
        let mut sum = 0usize;
        for (i, r) in ranges.iter().enumerate() {
            if r.ptr.is_null() || r.len == 0 || r.len % page != 0 || r.ptr.addr() % page != 0 {
                return Err("cached mapping range not whole pages");
            }
            let overlaps = ranges[i + 1..].iter().any(|q| {
                q.ptr.addr() < r.ptr.addr() + r.len && r.ptr.addr() < q.ptr.addr() + q.len
            });
            if overlaps {
                return Err("cached mapping ranges overlap");
            }
            sum += r.len;
        }
        if sum != self.bytes || self.live > self.live_hw {
            return Err("large-block cache byte counts wrong");
        }
        Ok(())
    }

    /// Cached bytes were reused: demand is back, so the decay clock restarts.
    fn reused(&mut self, size: usize) {
        self.bytes -= size;
        self.over_since = None;
        self.live += size;
        self.live_hw = self.live_hw.max(self.live);
    }

    /// The block at `block` moves or goes away: the range joined to it is no longer its tail.
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
