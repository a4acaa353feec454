//! Unsized boxes: `Gc<[T]>` and `Gc<str>`.
//!
//! The collector reaches a box through a thin header pointer, but dropping or tracing a slice needs its
//! length. So a slice box is allocated with the length in front of the header:
//!
//! ```text
//! base ─► [ len: usize | padding ][ Header | T; len ]
//!                                 ▲ header (offset `header_offset::<T>()`, fixed per T)
//! ```
//!
//! The vtable's functions for `[T]` read the length back from `header - offset`. A `Gc<[T]>` is an
//! ordinary fat pointer to the `GcBox<[T]>` that starts at the header. `Gc<str>` is a `Gc<[u8]>` whose
//! pointer is cast to `GcBox<str>` (same layout; `u8` has nothing to drop or trace).

use alloc::string::String;
use alloc::vec::Vec;
use core::alloc::Layout;
use core::any::TypeId;
use core::cell::Cell;
use core::mem;
use core::ptr::{self, NonNull};

use super::gcbox::{alloc_box, dealloc_block, Flags, GcBox, Header, VTable};
use super::ptr::new_box_epoch;
use super::trace::{Trace, Tracer};
use super::Gc;

/// Offset of the header from the allocation's start: a `usize` length, padded to the box's alignment.
const fn header_offset<T>() -> usize {
    let align = if mem::align_of::<T>() > mem::align_of::<Header>() {
        mem::align_of::<T>()
    } else {
        mem::align_of::<Header>()
    };
    let word = mem::size_of::<usize>();
    word.div_ceil(align) * align
}

/// The allocation's layout for `n` elements.
fn alloc_layout<T>(n: usize) -> Layout {
    let value = Layout::array::<T>(n).expect("poolgc: Gc<[T]> too large");
    let (boxed, _) = Layout::new::<Header>()
        .extend(value)
        .expect("poolgc: Gc<[T]> too large");
    let (all, off) = Layout::new::<usize>()
        .extend(boxed.pad_to_align())
        .expect("poolgc: Gc<[T]> too large");
    debug_assert_eq!(off, header_offset::<T>());
    all.pad_to_align()
}

/// The fat box pointer of a slice box, from its header.
///
/// # Safety
/// `h` is the header of a slice box of `T` made by [`from_iter_exact`] (allocated).
unsafe fn fat<T>(h: NonNull<Header>) -> *mut GcBox<[T]> {
    // SAFETY: forwarded contract.
    let len = unsafe { prefix_len::<T>(h) };
    ptr::slice_from_raw_parts_mut(h.as_ptr().cast::<T>(), len) as *mut GcBox<[T]>
}

/// The length stored in front of a slice box's header.
///
/// # Safety
/// As for [`fat`].
unsafe fn prefix_len<T>(h: NonNull<Header>) -> usize {
    // SAFETY: the length prefix sits `header_offset` bytes before the header, in the same allocation
    // (and `h` carries the whole allocation's provenance, being derived from its base pointer).
    unsafe {
        *h.as_ptr()
            .cast::<u8>()
            .sub(header_offset::<T>())
            .cast::<usize>()
    }
}

impl VTable {
    /// The vtable of a slice box of `T`.
    const fn of_slice<T: Trace + 'static>() -> &'static VTable {
        const {
            &VTable {
                trace: trace_slice::<T>,
                drop_value: drop_slice::<T>,
                alloc_of: alloc_of_slice::<T>,
                type_name: core::any::type_name::<[T]>,
                type_id: TypeId::of::<[T]>,
            }
        }
    }

    /// The vtable of a `Gc<str>`: that of a slice box of bytes, named `str`.
    const fn of_str() -> &'static VTable {
        const {
            &VTable {
                trace: trace_slice::<u8>,
                drop_value: drop_slice::<u8>,
                alloc_of: alloc_of_slice::<u8>,
                type_name: core::any::type_name::<str>,
                type_id: TypeId::of::<str>,
            }
        }
    }
}

/// # Safety
/// `h` is a live slice box of `T` whose values are not dropped.
unsafe fn trace_slice<T: Trace>(h: NonNull<Header>, tracer: &mut Tracer) {
    // SAFETY: per the contract.
    unsafe { (*fat::<T>(h)).value.trace(tracer) };
}

/// # Safety
/// `h` is a live slice box of `T` whose values are not dropped; they are not used again.
unsafe fn drop_slice<T: Trace>(h: NonNull<Header>) {
    // SAFETY: per the contract; no reference to the whole box is made.
    unsafe { ptr::drop_in_place(ptr::addr_of_mut!((*fat::<T>(h)).value)) };
}

/// # Safety
/// `h` is a slice box of `T` (allocated).
unsafe fn alloc_of_slice<T: Trace>(h: NonNull<Header>) -> (NonNull<u8>, Layout) {
    // SAFETY: per the contract, the prefix is readable.
    let len = unsafe { prefix_len::<T>(h) };
    // SAFETY: the allocation starts `header_offset` bytes before the header (same allocation).
    let base = unsafe { NonNull::new_unchecked(h.as_ptr().cast::<u8>().sub(header_offset::<T>())) };
    (base, alloc_layout::<T>(len))
}

/// Makes a slice box from exactly `n` items.
///
/// # Panics
/// If `iter` yields fewer than `n` items (what was moved in is dropped and the box freed).
fn from_iter_exact<T: Trace>(mut iter: impl Iterator<Item = T>, n: usize) -> Gc<[T]> {
    let layout = alloc_layout::<T>(n);
    let epoch = new_box_epoch();
    let base = alloc_box(layout);
    // SAFETY: `base` is a fresh allocation of `layout`, which holds the prefix, then the header at
    // `header_offset`, then `n` elements.
    unsafe {
        base.as_ptr().cast::<usize>().write(n);
        let h = base.as_ptr().add(header_offset::<T>()).cast::<Header>();
        h.write(Header {
            strong: Cell::new(1),
            weak: Cell::new(0),
            flags: Cell::new(Flags::initial(T::ACYCLIC)),
            epoch: Cell::new(epoch),
            vtable: VTable::of_slice::<T>(),
            #[cfg(feature = "gc-introspect")]
            links: super::registry::Links::new(),
        });
        let fat = fat::<T>(NonNull::new_unchecked(h));
        let first = ptr::addr_of_mut!((*fat).value).cast::<T>();
        /// Drops what was written and frees the box if the iterator panics or runs short.
        struct Partial<T> {
            first: *mut T,
            written: usize,
            base: NonNull<u8>,
            layout: Layout,
        }
        impl<T> Drop for Partial<T> {
            fn drop(&mut self) {
                // SAFETY: `written` elements were initialised; the block is ours (not yet a Gc).
                unsafe {
                    ptr::drop_in_place(ptr::slice_from_raw_parts_mut(self.first, self.written));
                    dealloc_block(self.base, self.layout);
                }
                super::state::try_with(|s| s.live.set(s.live.get().saturating_sub(1)));
            }
        }
        let mut partial = Partial {
            first,
            written: 0,
            base,
            layout,
        };
        while partial.written < n {
            let item = iter
                .next()
                .expect("poolgc: iterator shorter than its exact size");
            first.add(partial.written).write(item);
            partial.written += 1;
        }
        mem::forget(partial);
        // The box is complete: from here on it is freed only through `free_box`, by this thread.
        #[cfg(feature = "gc-introspect")]
        super::registry::register(NonNull::new_unchecked(h));
        Gc::from_box(NonNull::new_unchecked(fat))
    }
}

impl<T: Trace> From<Vec<T>> for Gc<[T]> {
    /// Moves the elements into a new slice box.
    fn from(v: Vec<T>) -> Gc<[T]> {
        let n = v.len();
        from_iter_exact(v.into_iter(), n)
    }
}

impl<T: Trace + Clone> From<&[T]> for Gc<[T]> {
    /// Clones the elements into a new slice box.
    fn from(v: &[T]) -> Gc<[T]> {
        from_iter_exact(v.iter().cloned(), v.len())
    }
}

impl<T: Trace> FromIterator<T> for Gc<[T]> {
    /// Collects into a `Vec` first (unless the length is known exactly), then into a slice box.
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Gc<[T]> {
        Gc::from(iter.into_iter().collect::<Vec<T>>())
    }
}

impl From<&str> for Gc<str> {
    /// Copies the string into a new box.
    fn from(s: &str) -> Gc<str> {
        let bytes: Gc<[u8]> = Gc::from(s.as_bytes());
        let p = Gc::into_box(bytes).as_ptr() as *mut GcBox<str>;
        // SAFETY: `GcBox<[u8]>` and `GcBox<str>` have the same layout and metadata; the bytes are the
        // UTF-8 of `s`; the strong count moves to the new handle. The box is new and this is its only
        // handle, so nothing reads the header while its vtable (same functions, named `str`) is replaced.
        unsafe {
            ptr::addr_of_mut!((*p).header.vtable).write(VTable::of_str());
            Gc::from_box(NonNull::new_unchecked(p))
        }
    }
}

impl From<String> for Gc<str> {
    fn from(s: String) -> Gc<str> {
        Gc::from(s.as_str())
    }
}
