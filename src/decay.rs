//! The decay of memory kept for reuse: one rule for spare arenas (`heap/spares.rs`), cached large
//! mappings (`large/mapcache.rs`) and the thread caches' transfer stacks (`thread_cache/transfer.rs`),
//! each owning a [`Decay`].
//!
//! The owner keeps a floor for good; beyond it, what stays unused for a whole period goes back. A period
//! starts at the first event at which more than the floor is held; its low-water mark is the least held
//! during it (the owner reports every fall with [`Decay::fell_to`]); when it ends, the amount above the
//! floor held all through it is released and the next period begins. So memory in steady use stays and
//! the rest goes, however often a little of it is reused. The clock ([`now_ms`]) is read only at the
//! owner's events ([`Decay::tick`]), so an idle owner keeps what it holds until its next event. Under
//! `cfg(loom)` the clock moves by half a [`DECAY_MS`] at every look (deterministic, so every schedule of a
//! model sees the same times, and a model of a few events reaches the decay).

/// Default period, in milliseconds (see `Heap::set_spare_decay_ms`).
pub(crate) const DECAY_MS: u32 = 1000;

/// A monotonic clock in milliseconds (only heaps that grow from the OS read it; without the OS, or on
/// wasm, there is no clock and it reads 0, so no period ever ends). It allocates nothing, so an allocator
/// may read it anywhere.
#[cfg(not(loom))]
pub(crate) fn now_ms() -> u64 {
    #[cfg(all(feature = "os", unix))]
    {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC exists on every Unix.
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
        (ts.tv_sec as u64) * 1000 + (ts.tv_nsec as u64) / 1_000_000
    }
    // Hosts without `mmap` but with a clock (Windows): `Instant`, which allocates nothing. wasm's std
    // has no clock (`Instant::now` panics there), so memory kept for reuse stays until `trim`.
    #[cfg(all(
        feature = "os",
        feature = "std",
        not(unix),
        not(target_family = "wasm")
    ))]
    {
        static ORIGIN: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
        ORIGIN
            .get_or_init(std::time::Instant::now)
            .elapsed()
            .as_millis() as u64
    }
    #[cfg(not(any(
        all(feature = "os", unix),
        all(
            feature = "os",
            feature = "std",
            not(unix),
            not(target_family = "wasm")
        )
    )))]
    0
}

// Under loom, a clock made afresh for every execution of a model (see the module docs).
#[cfg(loom)]
loom::lazy_static! {
    static ref CLOCK: crate::sync::atomic::AtomicUsize = crate::sync::atomic::AtomicUsize::new(0);
}

/// The clock under loom: half a [`DECAY_MS`] later at every look.
#[cfg(loom)]
pub(crate) fn now_ms() -> u64 {
    const STEP: usize = DECAY_MS as usize / 2;
    (CLOCK.fetch_add(STEP, crate::sync::atomic::Ordering::Relaxed) + STEP) as u64
}

/// A running period: since when (ms), and the least held during it.
#[derive(Clone, Copy)]
struct Period {
    start: u64,
    low: usize,
}

/// The decay state of one kind of memory kept for reuse (see the module docs).
pub(crate) struct Decay {
    /// The period, in ms: 0 releases everything above the floor at once, `u32::MAX` keeps it.
    pub ms: u32,
    /// The period running while more than the floor is held.
    period: Option<Period>,
}

impl Decay {
    pub const fn new(ms: u32) -> Self {
        Decay { ms, period: None }
    }

    /// Whether a period is running (more than the floor was held at the last event).
    pub fn running(&self) -> bool {
        self.period.is_some()
    }

    /// The amount held fell to `held` (some was taken back into use, or released): lowers the mark.
    pub fn fell_to(&mut self, held: usize) {
        if let Some(p) = &mut self.period {
            p.low = p.low.min(held);
        }
    }

    /// Everything held was released: no period runs.
    pub fn stop(&mut self) {
        self.period = None;
    }

    /// At an event of the owner, which holds `held` and keeps `floor` for good: starts a period, or once
    /// one has lasted [`ms`](Decay::ms), ends it and returns how much to keep (at least `floor`); the owner
    /// then releases down to that and calls [`restart`](Decay::restart). With a period of 0, returns
    /// `floor` at once.
    pub fn tick(&mut self, held: usize, floor: usize) -> Option<usize> {
        if held <= floor {
            self.period = None;
            return None;
        }
        if self.ms == 0 {
            self.period = None;
            return Some(floor);
        }
        let now = now_ms();
        let Some(p) = self.period else {
            self.period = Some(Period {
                start: now,
                low: held,
            });
            return None;
        };
        if now.saturating_sub(p.start) < u64::from(self.ms) {
            return None;
        }
        // The next period starts now; `restart` sets its mark.
        self.period = Some(Period {
            start: now,
            low: usize::MAX,
        });
        let unused = p.low.saturating_sub(floor);
        Some(held.saturating_sub(unused).max(floor))
    }

    /// After the release a [`tick`](Decay::tick) asked for, the owner holds `held`: the next period runs
    /// from that mark if more than `floor` is left.
    pub fn restart(&mut self, held: usize, floor: usize) {
        self.period = match self.period {
            Some(p) if held > floor => Some(Period {
                start: p.start,
                low: held,
            }),
            _ => None,
        };
    }
}
