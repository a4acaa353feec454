//! Spare arenas: wholly free arenas a heap keeps mapped instead of giving them back at once, so that a
//! program that builds and drops a large structure again and again does not unmap and page-fault that
//! memory every time.
//!
//! Growing from the OS, a heap keeps [`MIN_SPARES`] spares for as long as they stay unused, and any number
//! more (never more than it has held at once, so peak memory does not grow: spares are used before a new
//! arena is mapped) while they are wanted — jemalloc's and mimalloc's "decay" idea: at the end of each
//! [`spare_decay_ms`](Heap::spare_decay_ms) period, the spares beyond `MIN_SPARES` that stayed spare all
//! through it (the fewest held during the period, beyond `MIN_SPARES`) go back, so spares in steady use
//! stay and the rest do not. The clock is read only when pools change hands while spares beyond
//! `MIN_SPARES` are held, so an idle heap keeps them until its next pool-level event or
//! [`trim`](Heap::trim). Over static regions one spare is kept: a free arena there is room a large request
//! may need, and holding it saves no page faults.

use super::{Heap, MIN_SPARES};
use crate::arena::ArenaHeader;

impl Heap {
    /// How many wholly free arenas the heap may hold right now: growing from the OS, as many as it has
    /// ever held at once (those beyond 4 until a [`spare_decay_ms`](Heap::spare_decay_ms) period passes
    /// in which they all stayed spare); over regions, one. [`trim`](Heap::trim) gives them all back.
    pub fn max_spares(&self) -> usize {
        if self.sources.use_os {
            self.counters.arenas_highwater.max(MIN_SPARES)
        } else {
            1
        }
    }

    /// The decay period, in milliseconds (1 s by default): spare arenas beyond the four always kept, and
    /// cached large mappings beyond the 1 MiB always kept, that stay unused for a whole period go back to
    /// the OS.
    pub fn spare_decay_ms(&self) -> u32 {
        self.spare_decay.ms
    }

    /// Sets [`spare_decay_ms`](Heap::spare_decay_ms). `0` gives spares beyond the four kept (and cached
    /// mappings beyond 1 MiB) back as soon as they appear (pymalloc's policy, but for its one spare);
    /// `u32::MAX` keeps them until [`trim`](Heap::trim). Takes effect at the next pool-level (or
    /// large-block) event.
    ///
    /// ```
    /// use poolgc::PoolAlloc;
    /// let a = PoolAlloc::new();
    /// a.with_heap(|h| h.set_spare_decay_ms(0));
    /// ```
    pub fn set_spare_decay_ms(&mut self, ms: u32) {
        self.spare_decay.ms = ms;
        self.large.set_decay_ms(ms);
    }

    /// Called at pool-level events while spares beyond `MIN_SPARES` may be held: runs their decay (see
    /// [`crate::decay`]), giving back the spares that stayed spare all through a period that ends
    /// now (with a decay time of 0, all but `MIN_SPARES` at once).
    #[cold]
    #[inline(never)]
    pub(super) fn decay_spares(&mut self) {
        if let Some(keep) = self.spare_decay.tick(self.arenas.spares, MIN_SPARES) {
            self.release_spares_over(keep);
            self.spare_decay.restart(self.arenas.spares, MIN_SPARES);
        }
    }

    /// Runs the spare arenas' decay as a pool-level event would: for the thread caches, whose traffic can
    /// bypass the heap for long stretches, so that freed arenas still go back within a period or two.
    #[cfg_attr(not(all(feature = "std", not(loom))), allow(dead_code))]
    pub(crate) fn run_spare_decay(&mut self) {
        if self.arenas.spares > MIN_SPARES {
            self.decay_spares();
        }
    }

    /// Gives every spare arena back to its source; returns the bytes released.
    pub(super) fn release_spares(&mut self) -> usize {
        self.spare_decay.stop();
        self.release_spares_over(0)
    }

    /// Gives spare arenas back to their sources until `keep` are left (one walk of the arena list);
    /// returns the bytes released.
    fn release_spares_over(&mut self, keep: usize) -> usize {
        let mut released = 0;
        let mut cursor: *mut ArenaHeader = self.arenas.all;
        while self.arenas.spares > keep {
            // SAFETY: the cursor starts at the list head and `take_spare` only moves it along the list, past
            // the arena it removes; `release_arena` below gives back that arena alone and unlinks no other
            // (a region's first-fit allocator only edits its free holes), so the cursor stays on the list.
            let Some(a) = (unsafe { self.arenas.take_spare(&mut cursor) }) else {
                break;
            };
            // SAFETY: `take_spare` removed a wholly free arena from every list.
            released += unsafe { self.release_arena(a) };
        }
        released
    }
}
