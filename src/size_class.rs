//! Size classes: request size → class index → block size, computed (no table on the allocation paths).
//!
//! Like pymalloc, small requests are rounded up to a multiple of [`ALIGNMENT`] (16 bytes on 64-bit targets,
//! 8 on 32-bit ones, as CPython's `ALIGNMENT`) up to [`SMALL_MAX`] = 512 bytes, which gives
//! [`NUM_CLASSES`] classes (`NB_SMALL_SIZE_CLASSES`): 32 on 64-bit, 64 on 32-bit.
//!
//! Unlike pymalloc, a small request may also be *over-aligned* (alignment up to 512): its size is rounded up
//! to a multiple of its alignment first. A pool places its first block at an offset that is a multiple of the
//! largest power of two dividing the block size (see [`block_align`]), so every block of class `bs` is
//! aligned to `block_align(bs)`, and `round_up(size, align)` always lands in a class whose blocks are aligned
//! enough. Cache-padded types (`align(64)`, `align(128)`) therefore stay in the pools.
//!
//! ```
//! use poolgc::size_class::{block_size, class_of, effective_size, is_small, SMALL_MAX};
//!
//! let e = effective_size(24, 8); // a 24-byte request, 8-byte aligned
//! assert!(is_small(e));
//! let class = class_of(e);
//! assert!(block_size(class) >= 24); // 32 on 64-bit targets (16-byte classes), 24 on 32-bit ones
//! assert_eq!(effective_size(100, 64), 128); // over-aligned: rounded up to the alignment first
//! assert!(!is_small(effective_size(SMALL_MAX + 1, 8)));
//! ```

/// Granularity of the size classes and the alignment every block has at least.
pub const ALIGNMENT: usize = if usize::BITS >= 64 { 16 } else { 8 };
const ALIGNMENT_SHIFT: u32 = ALIGNMENT.trailing_zeros();

/// Largest request (size rounded to its alignment) served from the pools; anything larger is "large".
pub const SMALL_MAX: usize = 512;

/// Number of size classes.
pub const NUM_CLASSES: usize = SMALL_MAX / ALIGNMENT;

/// Medium classes, served from pools too when a heap's pools are big enough (see
/// [`Heap`](crate::Heap)): four per doubling above [`SMALL_MAX`], up to [`MEDIUM_MAX`]. Their class indices
/// follow the small ones, so small class numbers are pymalloc's.
pub const MEDIUM_SIZE: [usize; NUM_MEDIUM] = [
    640, 768, 896, 1024, 1280, 1536, 1792, 2048, 2560, 3072, 3584, 4096, 5120, 6144, 7168, 8192,
];
/// Number of medium classes.
pub const NUM_MEDIUM: usize = 16;
/// The largest medium class.
pub const MEDIUM_MAX: usize = MEDIUM_SIZE[NUM_MEDIUM - 1];
/// Small and medium classes together: the classes a pool can hold.
pub const NUM_POOL_CLASSES: usize = NUM_CLASSES + NUM_MEDIUM;

/// Block size of each small class: `CLASS_SIZE[i] == (i + 1) * ALIGNMENT`.
pub const CLASS_SIZE: [usize; NUM_CLASSES] = {
    let mut t = [0; NUM_CLASSES];
    let mut i = 0;
    while i < NUM_CLASSES {
        t[i] = (i + 1) * ALIGNMENT;
        i += 1;
    }
    t
};

/// The size a request occupies once its alignment is taken into account: `size` rounded up to `align`,
/// and at least 1 so that zero-size requests get a real, distinct block.
///
/// `align` must be a power of two (as every `Layout` alignment is).
#[inline(always)]
pub const fn effective_size(size: usize, align: usize) -> usize {
    let size = if size == 0 { 1 } else { size };
    // Cannot overflow for anything that is then compared against SMALL_MAX: callers check `is_small`
    // through this value, and `Layout` guarantees `size + align - 1 <= isize::MAX + align - 1`.
    (size.wrapping_add(align - 1)) & !(align - 1)
}

/// Whether a request of this (effective) size is served from the pools.
#[inline(always)]
pub const fn is_small(effective: usize) -> bool {
    // effective == 0 only after wrap-around of a huge request; treat it as large.
    effective.wrapping_sub(1) < SMALL_MAX
}

/// Class index of a small effective size (`1..=SMALL_MAX`).
#[inline(always)]
pub const fn class_of(effective: usize) -> usize {
    debug_assert!(effective >= 1 && effective <= SMALL_MAX);
    (effective - 1) >> ALIGNMENT_SHIFT
}

/// Class index of a medium size (`SMALL_MAX < size <= MEDIUM_MAX`): four classes per doubling.
#[inline(always)]
pub const fn medium_class_of(size: usize) -> usize {
    debug_assert!(size > SMALL_MAX && size <= MEDIUM_MAX);
    let s = size - 1;
    let p = usize::BITS - 1 - s.leading_zeros(); // floor(log2(size - 1)) ≥ 9
    NUM_CLASSES + (p as usize - 9) * 4 + ((s >> (p - 2)) - 4)
}

/// The pool class serving a request of `size` bytes aligned to `align` in a heap whose medium pools go up
/// to `pool_max` bytes: its small class, or a medium class when the request is larger than
/// [`SMALL_MAX`], not over-aligned and at most `pool_max`; `None` for the large path. Always below
/// [`NUM_POOL_CLASSES`] when `pool_max ≤ MEDIUM_MAX`.
///
/// Two compares and a shift for the usual alignments (at most [`ALIGNMENT`], which every class satisfies
/// and whose rounding never crosses a class boundary).
#[inline(always)]
pub(crate) const fn pool_class_of(size: usize, align: usize, pool_max: usize) -> Option<usize> {
    if align <= ALIGNMENT {
        if size <= SMALL_MAX {
            return Some(size.saturating_sub(1) >> ALIGNMENT_SHIFT);
        }
        if size <= pool_max {
            return Some(medium_class_of(size));
        }
        return None;
    }
    let e = effective_size(size, align);
    if is_small(e) {
        Some(class_of(e))
    } else {
        None
    }
}

/// Block size of (small or medium) class `class`.
///
/// Computed, not looked up: the allocation paths read no table, so they touch no read-only data (one
/// cache line fewer per call).
#[inline(always)]
pub const fn block_size(class: usize) -> usize {
    debug_assert!(class < NUM_POOL_CLASSES);
    if class < NUM_CLASSES {
        return (class + 1) * ALIGNMENT;
    }
    // Four classes per doubling above SMALL_MAX: 5/4, 6/4, 7/4 and 8/4 of 512 << (m / 4).
    let m = class - NUM_CLASSES;
    (5 + m % 4) * ((SMALL_MAX / 4) << (m / 4))
}

/// The alignment every block of a class is guaranteed: for a small class, the largest power of two
/// dividing its block size; for a medium class, [`ALIGNMENT`] (medium requests are never over-aligned).
#[inline(always)]
pub const fn block_align(class: usize) -> usize {
    if class >= NUM_CLASSES {
        return ALIGNMENT;
    }
    let bs = block_size(class);
    bs & bs.wrapping_neg()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_cover_every_small_size() {
        for size in 0..=SMALL_MAX {
            let e = effective_size(size, 1);
            assert!(is_small(e));
            let c = class_of(e);
            assert!(block_size(c) >= size.max(1));
            if c > 0 {
                assert!(
                    block_size(c - 1) < size,
                    "size {size} not in the smallest class"
                );
            }
            assert_eq!(CLASS_SIZE[c], block_size(c));
        }
        assert!(!is_small(effective_size(SMALL_MAX + 1, 1)));
        assert_eq!(NUM_CLASSES, if usize::BITS >= 64 { 32 } else { 64 });
    }

    #[test]
    fn medium_classes_cover_every_medium_size() {
        for size in SMALL_MAX + 1..=MEDIUM_MAX {
            let c = medium_class_of(size);
            assert!(block_size(c) >= size, "size {size}");
            let prev = if c == NUM_CLASSES {
                SMALL_MAX
            } else {
                block_size(c - 1)
            };
            assert!(prev < size, "size {size} not in the smallest medium class");
        }
        assert_eq!(medium_class_of(MEDIUM_MAX), NUM_POOL_CLASSES - 1);
        for (i, &size) in MEDIUM_SIZE.iter().enumerate() {
            assert_eq!(block_size(NUM_CLASSES + i), size);
        }
    }

    #[test]
    fn pool_class_of_matches_the_slow_rule() {
        for pool_max in [SMALL_MAX, 3584, MEDIUM_MAX] {
            for align in [1, 2, 4, 8, 16, 32, 64, 512, 4096] {
                for size in (0..=MEDIUM_MAX + 16)
                    .step_by(if cfg!(miri) { 61 } else { 1 })
                    .chain([usize::MAX / 2 - 8192])
                {
                    let e = effective_size(size, align);
                    let want = if is_small(e) {
                        Some(class_of(e))
                    } else if e <= pool_max && align <= ALIGNMENT {
                        Some(medium_class_of(e))
                    } else {
                        None
                    };
                    assert_eq!(pool_class_of(size, align, pool_max), want, "{size} {align}");
                }
            }
        }
    }

    #[test]
    fn over_aligned_requests_land_in_aligned_classes() {
        let mut align = 1;
        while align <= SMALL_MAX {
            for size in [0, 1, align - 1, align, align + 1, SMALL_MAX - 1, SMALL_MAX] {
                let e = effective_size(size, align);
                if is_small(e) {
                    let c = class_of(e);
                    assert!(block_size(c) >= size);
                    assert!(block_align(c) >= align, "size {size} align {align}");
                }
            }
            align *= 2;
        }
        assert!(!is_small(effective_size(usize::MAX - 4095, 4096)));
    }
}
