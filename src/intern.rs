//! Interned strings (feature `intern`): one object per distinct string in the whole process, as CPython's
//! `sys.intern` keeps one copy of each identifier.
//!
//! ```
//! use poolgc::intern::{intern, IStr};
//!
//! let a = intern("spam");
//! let b = intern(&String::from("spam"));
//! assert_eq!(a, b);                          // the same object: compared by identity, in O(1)
//! assert_eq!(a.as_ptr(), b.as_ptr());
//! assert_eq!(&*a, "spam");                    // Deref<Target = str>
//! assert!(intern("eggs") < a);                // ordered by content
//! let copy: IStr = a;                         // Copy: no count to touch
//! assert_eq!(copy.to_string(), "spam");
//! ```
//!
//! # What an `IStr` is
//!
//! A pointer to an immortal entry: a small header (the string's hash and length) then its bytes, in a
//! block from poolgc's pools (with feature `os`, a process-wide `PoolAlloc` of the table's own; without,
//! the global allocator, which on firmware is a `PoolAlloc`). Entries are never freed, so an `IStr` is
//! `Copy`, `Send` and `Sync`, and [`IStr::as_str`] gives a `&'static str`. Equality and hashing are by
//! identity; [`Ord`] is by content (byte-wise, as `str`'s), which agrees with equality because equal
//! contents are the same entry.
//!
//! # The table
//!
//! Sixteen open-addressing hash tables (linear probing, at most half full; a string's hash picks its
//! table), each behind one of the crate's locks (`spin`, or a critical section with feature
//! `critical-section`), with a fixed-seed
//! FxHash-style hash computed before the lock is taken: no OS randomness, so it works without `std`.
//! A fixed seed means an adversary who picks the strings can make them collide; intern identifiers and
//! keys you control, not untrusted input at scale (CPython's `sys.intern` has no such limit, its hash is
//! randomised per process).

use core::alloc::Layout;
use core::cmp::Ordering;
use core::fmt;
use core::hash::{Hash, Hasher};
use core::ptr::NonNull;

use crate::sync::Lock;

/// An interned string: see the [module docs](self).
#[derive(Clone, Copy)]
pub struct IStr(NonNull<Entry>);

// SAFETY: an entry is written once, before its pointer is published through the table's lock, and never
// written or freed afterwards; sharing or sending a pointer to immutable, immortal data is sound.
unsafe impl Send for IStr {}
// SAFETY: as for `Send`.
unsafe impl Sync for IStr {}

/// The header of an entry; the string's bytes follow it.
#[repr(C)]
struct Entry {
    hash: u64,
    len: usize,
}

const HEADER: usize = core::mem::size_of::<Entry>();

/// Interns `s`: returns the one `IStr` holding these contents, making it on first use. From any thread.
///
/// # Panics / aborts
/// Calls `handle_alloc_error` if memory for a new entry or a larger table cannot be had.
pub fn intern(s: &str) -> IStr {
    let hash = hash(s.as_bytes());
    let mut table = shard(hash).lock();
    match table.find(hash, s) {
        Ok(e) => IStr(e),
        Err(slot) => IStr(table.insert_at(slot, hash, s)),
    }
}

/// The interned `IStr` for `s` if `s` was interned before; interns nothing.
pub fn get(s: &str) -> Option<IStr> {
    let hash = hash(s.as_bytes());
    shard(hash).lock().find(hash, s).ok().map(IStr)
}

/// How many distinct strings have been interned.
pub fn count() -> usize {
    tables().iter().map(|t| t.lock().len).sum()
}

impl IStr {
    /// The string, for as long as the program runs (entries are immortal).
    #[inline]
    pub fn as_str(self) -> &'static str {
        // SAFETY: `self.0` is an entry made by `Table::insert_at`: a header then `len` bytes copied from a
        // `&str` (valid UTF-8), never written or freed after publication.
        unsafe {
            let e = self.0.as_ptr();
            let bytes = core::slice::from_raw_parts(e.cast::<u8>().add(HEADER), (*e).len);
            core::str::from_utf8_unchecked(bytes)
        }
    }

    /// A pointer to the string's first byte: the same for every `IStr` of the same contents.
    #[inline]
    pub fn as_ptr(self) -> *const u8 {
        self.as_str().as_ptr()
    }

    /// The 64-bit hash of the contents the table computed (fixed seed, the same in every run).
    #[inline]
    pub fn content_hash(self) -> u64 {
        // SAFETY: see `as_str`: the header is immutable after publication.
        unsafe { (*self.0.as_ptr()).hash }
    }
}

impl core::ops::Deref for IStr {
    type Target = str;
    #[inline]
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for IStr {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl From<&str> for IStr {
    fn from(s: &str) -> IStr {
        intern(s)
    }
}

impl PartialEq for IStr {
    /// By identity: one pointer comparison.
    #[inline]
    fn eq(&self, other: &IStr) -> bool {
        self.0 == other.0
    }
}

impl Eq for IStr {}

impl PartialEq<str> for IStr {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for IStr {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl Hash for IStr {
    /// By identity: hashes the entry's address.
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_usize(self.0.as_ptr() as usize);
    }
}

impl PartialOrd for IStr {
    fn partial_cmp(&self, other: &IStr) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for IStr {
    /// By content, byte-wise (as `str`), so sorted `IStr`s read in alphabetical order; identical
    /// entries compare equal without reading the bytes.
    fn cmp(&self, other: &IStr) -> Ordering {
        if self.0 == other.0 {
            Ordering::Equal
        } else {
            self.as_str().cmp(other.as_str())
        }
    }
}

impl fmt::Display for IStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.as_str(), f)
    }
}

impl fmt::Debug for IStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

// ---- hashing -------------------------------------------------------------------------------------------

/// FxHash's multiplier (rustc's hasher): fast, fixed, no OS randomness.
const K: u64 = 0x517c_c1b7_2722_0a95;

/// A fixed-seed FxHash of `bytes`, eight at a time, with the length mixed in and a final avalanche
/// (the table indexes by the high bits, which the multiply mixes best).
fn hash(bytes: &[u8]) -> u64 {
    let mut h: u64 = bytes.len() as u64;
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        h = (h.rotate_left(5) ^ w).wrapping_mul(K);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut buf = [0u8; 8];
        buf[..rest.len()].copy_from_slice(rest);
        h = (h.rotate_left(5) ^ u64::from_le_bytes(buf)).wrapping_mul(K);
    }
    h ^ (h >> 29)
}

// ---- the table -----------------------------------------------------------------------------------------

/// A slot: an entry and its hash (kept here too, so that probing past other strings and rehashing
/// never read the entries themselves: each would be a cache miss). `entry` is null for an empty slot.
#[derive(Clone, Copy)]
struct Slot {
    hash: u64,
    entry: *mut Entry,
}

/// Entries by hash: `cap` slots (a power of two, or 0); `len` used. Slots and entries come from
/// [`alloc_block`].
struct Table {
    slots: *mut Slot,
    cap: usize,
    len: usize,
}

// SAFETY: the table owns its slot array and entries (plain memory, no thread affinity); it is only
// reached through the lock.
unsafe impl Send for Table {}

/// Independent tables, each behind its own lock, chosen by the low bits of the hash (the slot index
/// uses the high bits), so that threads interning different strings rarely wait for each other.
const SHARDS: usize = 16;

static TABLES: [Lock<Table>; SHARDS] = [const {
    Lock::new(Table {
        slots: core::ptr::null_mut(),
        cap: 0,
        len: 0,
    })
}; SHARDS];

/// The table for `hash`.
#[inline]
fn shard(hash: u64) -> &'static Lock<Table> {
    &tables()[hash as usize % SHARDS]
}

/// The tables. Every path to a table lock comes here first, so the fork handlers know the locks before
/// anyone can hold one.
#[inline]
fn tables() -> &'static [Lock<Table>; SHARDS] {
    #[cfg(all(poolgc_fork, not(miri)))]
    crate::fork::register_tried(&fork_hooks::HOOKS);
    &TABLES
}

/// The tables' locks as hooks of the fork handlers (`crate::fork`): a child forked while another thread
/// interns must find them free. A holder allocates (so may wait for a heap lock) and takes no other table
/// lock, so the handlers only try them, all or none, with the heap locks.
#[cfg(all(poolgc_fork, not(miri)))]
mod fork_hooks {
    use super::TABLES;

    pub(super) static HOOKS: crate::fork::TriedLocks = crate::fork::TriedLocks { try_lock, unlock };

    fn try_lock() -> bool {
        for (i, t) in TABLES.iter().enumerate() {
            if !t.try_lock_raw() {
                for u in TABLES[..i].iter().rev() {
                    // SAFETY: taken just above by this thread.
                    unsafe { u.unlock_raw() };
                }
                return false;
            }
        }
        true
    }

    /// # Safety
    /// This thread took every table lock with `try_lock` and has released none since.
    unsafe fn unlock() {
        for t in TABLES.iter().rev() {
            // SAFETY: forwarded contract.
            unsafe { t.unlock_raw() };
        }
    }
}

impl Table {
    #[inline]
    fn index(hash: u64, cap: usize) -> usize {
        // The high bits: `cap` is a power of two, at least 8.
        (hash >> (64 - cap.trailing_zeros())) as usize
    }

    /// The entry holding `s`, or the empty slot where it belongs (after making room).
    fn find(&mut self, hash: u64, s: &str) -> Result<NonNull<Entry>, usize> {
        if (self.len + 1) * 2 > self.cap {
            self.grow();
        }
        let mask = self.cap - 1;
        let mut i = Table::index(hash, self.cap);
        loop {
            // SAFETY: `i < cap`, and the slot array has `cap` initialised slots.
            let slot = unsafe { *self.slots.add(i) };
            let Some(e) = NonNull::new(slot.entry) else {
                return Err(i);
            };
            // A non-null slot holds a published, immutable entry.
            if slot.hash == hash && IStr(e).as_str() == s {
                return Ok(e);
            }
            i = (i + 1) & mask;
        }
    }

    /// Makes the entry for `s` and puts it in the empty slot `slot` (from `find`, no change since).
    fn insert_at(&mut self, slot: usize, hash: u64, s: &str) -> NonNull<Entry> {
        let layout = entry_layout(s.len());
        let e = alloc_block(layout).cast::<Entry>();
        // SAFETY: `e` is a fresh block of `layout`: a header then `s.len()` bytes.
        unsafe {
            e.as_ptr().write(Entry { hash, len: s.len() });
            core::ptr::copy_nonoverlapping(
                s.as_ptr(),
                e.as_ptr().cast::<u8>().add(HEADER),
                s.len(),
            );
            *self.slots.add(slot) = Slot {
                hash,
                entry: e.as_ptr(),
            };
        }
        self.len += 1;
        e
    }

    /// Doubles the slot array (8 slots at first), rehashing from the stored hashes.
    fn grow(&mut self) {
        let new_cap = (self.cap * 2).max(8);
        let layout = slots_layout(new_cap);
        let new = alloc_block(layout).cast::<Slot>().as_ptr();
        // SAFETY: `new` has room for `new_cap` slots; all-zero bytes are an empty slot (null entry),
        // and every slot is set so before use.
        unsafe { core::ptr::write_bytes(new, 0, new_cap) };
        let mask = new_cap - 1;
        for j in 0..self.cap {
            // SAFETY: `j < cap`: an initialised slot of the old array.
            let slot = unsafe { *self.slots.add(j) };
            if slot.entry.is_null() {
                continue;
            }
            let mut i = Table::index(slot.hash, new_cap);
            // SAFETY: `i < new_cap` throughout; the new array has free slots (at most half full).
            unsafe {
                while !(*new.add(i)).entry.is_null() {
                    i = (i + 1) & mask;
                }
                *new.add(i) = slot;
            }
        }
        if self.cap > 0 {
            // SAFETY: the old array came from `alloc_block(slots_layout(cap))` and is not used again.
            unsafe { dealloc_block(self.slots.cast(), slots_layout(self.cap)) };
        }
        self.slots = new;
        self.cap = new_cap;
    }
}

fn entry_layout(len: usize) -> Layout {
    match Layout::from_size_align(HEADER + len, core::mem::align_of::<Entry>()) {
        Ok(l) => l,
        Err(_) => capacity_overflow(),
    }
}

fn slots_layout(cap: usize) -> Layout {
    match Layout::array::<Slot>(cap) {
        Ok(l) => l,
        Err(_) => capacity_overflow(),
    }
}

#[cold]
fn capacity_overflow() -> ! {
    panic!("poolgc::intern: string or table too large")
}

// ---- where entries come from ---------------------------------------------------------------------------

/// With `os`, a process-wide pool allocator of the table's own (one-page pools under Miri, so that every
/// arena is one mapping).
#[cfg(all(feature = "os", unix))]
static INTERN_HEAP: crate::PoolAlloc = if cfg!(miri) {
    crate::PoolAlloc::with_config(crate::Config::new(4096, 64 * 1024))
} else {
    crate::PoolAlloc::new()
};

/// A block of `layout` (never zero-sized here) from the pools; diverges through `handle_alloc_error`.
fn alloc_block(layout: Layout) -> NonNull<u8> {
    #[cfg(all(feature = "os", unix))]
    // SAFETY: `layout` has a non-zero size (an entry's header, or at least 8 slots).
    let p = unsafe { core::alloc::GlobalAlloc::alloc(&INTERN_HEAP, layout) };
    #[cfg(not(all(feature = "os", unix)))]
    // SAFETY: as above.
    let p = unsafe { alloc::alloc::alloc(layout) };
    match NonNull::new(p) {
        Some(p) => p,
        None => alloc::alloc::handle_alloc_error(layout),
    }
}

/// # Safety
/// `p` came from `alloc_block(layout)` and is not used again.
unsafe fn dealloc_block(p: *mut u8, layout: Layout) {
    #[cfg(all(feature = "os", unix))]
    // SAFETY: forwarded contract.
    unsafe {
        core::alloc::GlobalAlloc::dealloc(&INTERN_HEAP, p, layout)
    };
    #[cfg(not(all(feature = "os", unix)))]
    // SAFETY: forwarded contract.
    unsafe {
        alloc::alloc::dealloc(p, layout)
    };
}
