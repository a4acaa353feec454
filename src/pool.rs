//! One pool: a header followed by equal-size blocks of one size class.
//!
//! ```text
//!  pool start (aligned to pool_size)
//!  ┌────────────┬──────────────┬───────┬───────┬─────┬───────┬───────────── … ┐
//!  │ PoolHeader │ (ArenaHeader │ block │ block │ ... │ block │ never carved   │
//!  │            │  in pool 0)  │       │       │     │       │ (untouched)    │
//!  └────────────┴──────────────┴───────┴───────┴─────┴───────┴───────────── … ┘
//!                               ▲ first_offset        next_offset ▲
//! ```
//!
//! Freed blocks form a LIFO list threaded through their first word (pymalloc's `freeblock`). Blocks past
//! `next_offset` have never been handed out: they are carved lazily, one at a time, so memory that is never
//! needed is never touched (and, for fresh OS memory, is still zero — `alloc_zeroed` relies on that).
//!
//! Because pools are aligned to the pool size, a block's pool header is found by masking its address.
//! The first block sits at a multiple of the class's [`block_align`], so
//! every block is aligned to it.

use core::mem::size_of;
use core::ptr;

use crate::size_class::{block_align, block_size, MEDIUM_MAX, NUM_POOL_CLASSES};

bitflags::bitflags! {
    /// State bits of a pool.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub(crate) struct PoolFlags: u8 {
        /// The blocks past `next_offset` have never been written since the memory came zeroed from the OS.
        const FRESH = 1;
    }
}

/// The header at the start of every pool. `#[repr(C)]` so that its size (56 bytes on 64-bit, 36 on 32-bit)
/// is fixed and known to the offset arithmetic.
///
/// Class indices fit a `u8` and block sizes a `u16` (at most [`MEDIUM_MAX`]).
#[repr(C)]
pub(crate) struct PoolHeader {
    /// This header, with the heap's provenance (see [`pool_of`]).
    pub this: *mut PoolHeader,
    /// Head of the freed-block list; null when no freed block is waiting (carving may still have some).
    pub free: *mut u8,
    /// Next pool: in its class's used list while partly used, in its arena's free-pool list while empty.
    pub next: *mut PoolHeader,
    /// Previous pool in the class's used list (null at the head). Unused while the pool is free.
    pub prev: *mut PoolHeader,
    /// The arena this pool belongs to (an `ArenaHeader`, opaque at this layer).
    pub arena: *mut u8,
    /// Blocks handed out and not yet freed. `0 < in_use < capacity` ⇔ the pool is on its class's used list.
    pub in_use: u32,
    /// Number of blocks that fit in the pool.
    pub capacity: u32,
    /// Offset of the first never-carved block (`first_offset + carved * block_size`).
    pub next_offset: u32,
    /// Size class of the blocks.
    pub class: u8,
    /// See [`PoolFlags`].
    pub flags: PoolFlags,
    /// `block_size(class)`, so that a free counts its bytes without a table lookup.
    pub block_size: u16,
}

/// Bytes taken by a pool header.
pub(crate) const POOL_HEADER: usize = size_of::<PoolHeader>();

const _: () = assert!(
    NUM_POOL_CLASSES <= u8::MAX as usize + 1
        && MEDIUM_MAX <= u16::MAX as usize
        && POOL_HEADER == if usize::BITS >= 64 { 56 } else { 36 }
);

/// Offset of the first block of a `class` pool whose headers take `reserved` bytes.
#[inline]
pub(crate) const fn first_offset(reserved: usize, class: usize) -> usize {
    let a = block_align(class);
    (reserved + a - 1) & !(a - 1)
}

/// Initialises the header of the pool at `pool`, keeping `arena`.
///
/// The pool starts with no freed block and carving at the first block, even when it last held blocks of
/// the same class: pymalloc keeps such a pool's free list, but that list is in the order the blocks were
/// freed, and walking it (a thread cache's refill takes dozens of blocks at once) is a chain of dependent
/// cache misses, where carving walks the pool in address order. `fresh` says whether the pool's block
/// area is untouched zeroed OS memory.
///
/// # Safety
/// `pool` points to a pool-size-aligned pool of `pool_size` bytes owned by the caller, with no block in
/// use (its header, if any, is overwritten); `reserved` is the bytes taken by headers at its start.
pub(crate) unsafe fn init(
    pool: *mut PoolHeader,
    arena: *mut u8,
    class: usize,
    reserved: usize,
    pool_size: usize,
    fresh: bool,
) {
    // SAFETY: the caller owns the pool and every byte of it.
    unsafe {
        let first = first_offset(reserved, class);
        let capacity = (pool_size - first) / block_size(class);
        debug_assert!(capacity >= 1);
        pool.write(PoolHeader {
            this: pool,
            free: ptr::null_mut(),
            next: ptr::null_mut(),
            prev: ptr::null_mut(),
            arena,
            in_use: 0,
            capacity: capacity as u32,
            next_offset: first as u32,
            class: class as u8,
            block_size: block_size(class) as u16,
            flags: if fresh {
                PoolFlags::FRESH
            } else {
                PoolFlags::empty()
            },
        });
        // The debug layer trusts a block's header to be its own when it finds a freed block's mark;
        // a pool carved anew may have left such marks of old blocks where other blocks since wrote.
        #[cfg(feature = "debug")]
        if !fresh {
            ptr::write_bytes(pool.cast::<u8>().add(first), 0, pool_size - first);
        }
    }
}

/// Takes one block from a pool that is not full. Returns the block and whether it is pristine
/// (never written since it came zeroed from the OS).
///
/// # Safety
/// `pool` is an initialised pool of class `class` with `in_use < capacity`.
#[inline(always)]
pub(crate) unsafe fn take_block(pool: *mut PoolHeader, class: usize) -> (*mut u8, bool) {
    // SAFETY: the pool header is initialised; `free` is null or the head of a well-formed list of blocks
    // inside the pool, each holding the next pointer in its first word; a non-full pool with no freed block
    // has room to carve at `next_offset`.
    unsafe {
        (*pool).in_use += 1;
        let b = (*pool).free;
        if !b.is_null() {
            (*pool).free = b.cast::<*mut u8>().read();
            return (b, false);
        }
        let off = (*pool).next_offset as usize;
        (*pool).next_offset = (off + block_size(class)) as u32;
        (
            pool.cast::<u8>().wrapping_add(off),
            (*pool).flags.contains(PoolFlags::FRESH),
        )
    }
}

/// The pointer through which a block freed by a caller with a `size`-byte layout gets its free-list
/// link: the caller's own when its bytes cover the link, else the heap's (exposed) provenance.
///
/// Both are the same address; the choice matters to Miri only. A `Box` freed inside the function it was
/// passed to is still protected there, and Miri sees a custom allocator's block as part of one live
/// arena, so a write through the heap's tag would be a foreign write to a protected tag; a block smaller
/// than a pointer has a tag that does not cover the link (under Stacked Borrows).
#[inline(always)]
pub(crate) fn link_ptr(block: *mut u8, size: usize) -> *mut u8 {
    if size >= core::mem::size_of::<*mut u8>() {
        block
    } else {
        core::ptr::with_exposed_provenance_mut(block.addr())
    }
}

/// Returns a block to its pool's free list.
///
/// # Safety
/// `block` is a block of `pool` currently handed out, with provenance for its first pointer-wide bytes.
#[inline(always)]
pub(crate) unsafe fn put_block(pool: *mut PoolHeader, block: *mut u8) {
    // SAFETY: the block is ours again and at least a pointer wide and pointer-aligned (every block is a
    // multiple of ALIGNMENT ≥ size_of::<*mut u8>() and aligned to it).
    unsafe {
        // The link is written through `block` as given (see `link_ptr`); what is stored is re-derived
        // from the pool's (heap-owned) provenance: the caller's tag may cover only the user's bytes, and
        // it must not be handed out again.
        block.cast::<*mut u8>().write((*pool).free);
        (*pool).free = pool.cast::<u8>().with_addr(block.addr());
        (*pool).in_use -= 1;
    }
}

/// The pool containing `block`, found by masking (pools are aligned to their size).
///
/// The result is not derived from `block`: a pointer handed back by a user may carry a tag that covers only
/// the user's bytes (a `Box<T>`'s covers `size_of::<T>()`), and reaching the header through it is undefined
/// behaviour under Stacked and Tree Borrows. Arena bases are exposed when an arena is made
/// (`Arenas::add`); one load through the exposed provenance reads the header's own `this` pointer, and
/// everything after uses that, the heap's own provenance. This is the allocator's one use of exposed
/// provenance — an address-to-metadata lookup, which every allocator that finds headers by masking has
/// (Miri runs it with `-Zmiri-permissive-provenance`).
///
/// # Safety
/// `block` is a block of a live pool of this heap.
#[inline(always)]
pub(crate) unsafe fn pool_of(block: *mut u8, pool_mask: usize) -> *mut PoolHeader {
    let header = core::ptr::with_exposed_provenance_mut::<PoolHeader>(block.addr() & !pool_mask);
    // SAFETY: the caller guarantees a live, initialised pool header at that address, inside an arena whose
    // base provenance was exposed.
    unsafe { (*header).this }
}

/// Asks the CPU to start loading the cache line at `addr` (a hint: no memory is accessed, no fault is
/// possible, nothing happens on other targets or under Miri). Used before the heap lock is taken, so that
/// the miss on a freed block and its pool header overlaps with the lock's atomic instruction.
#[inline(always)]
pub(crate) fn prefetch(addr: usize) {
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    // SAFETY: `prefetcht0` only hints the cache; it never faults and has no effect on program semantics
    // whatever the address. SSE is part of the x86_64 baseline.
    unsafe {
        use core::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>(core::ptr::without_provenance::<i8>(addr));
    }
    #[cfg(not(all(target_arch = "x86_64", not(miri))))]
    let _ = addr;
}
