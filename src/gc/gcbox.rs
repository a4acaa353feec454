//! The box behind every [`Gc`](super::Gc): a header the collector reads through a thin pointer, then the
//! value; and where boxes come from (the crate's pools).

use core::alloc::Layout;
use core::any::TypeId;
use core::cell::Cell;
use core::ptr::{self, NonNull};

use super::trace::{Trace, Tracer};

bitflags::bitflags! {
    /// The state bits of a box.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub(crate) struct Flags: u32 {
        /// In the possible-roots buffer (Bacon–Rajan's purple + buffered). The collector owns the box's
        /// memory until it takes it out: a box with this bit is never freed by a handle (the `Release` rule).
        const BUFFERED = 1 << 0;
        /// The value has been dropped (count reached zero, or the collector found it garbage). `Gc`
        /// dereference panics, `Weak::upgrade` says `None`, and the value is never traced or dropped again.
        const DROPPED = 1 << 1;
        /// Reached by the current collection's MarkGray (Bacon–Rajan's gray; white if not later `LIVE`).
        const VISITED = 1 << 2;
        /// Proved reachable from outside the graph by the current collection's Scan (black).
        const LIVE = 1 << 3;
        /// In the frozen-candidates list kept while `freeze()` is in force (owned like `BUFFERED`).
        const FROZEN_CANDIDATE = 1 << 4;
        /// The value's type is `Trace::ACYCLIC` (Bacon–Rajan's green): never buffered. Set at creation.
        const GREEN = 1 << 5;
        /// Weak callbacks or finalizers are registered for the box (see `weak_cb`): its death runs them.
        const WEAK_CB = 1 << 6;
        /// Immortal (`Gc::make_immortal`): `strong` is pinned at [`IMMORTAL_STRONG`], handles never write
        /// the header, and the collector never buffers or traverses the box (`GREEN` is set too).
        const IMMORTAL = 1 << 7;
    }
}

impl Flags {
    /// The flags a new box of a type with this `ACYCLIC` starts with.
    #[inline(always)]
    pub(crate) const fn initial(acyclic: bool) -> Flags {
        if acyclic {
            Flags::GREEN
        } else {
            Flags::empty()
        }
    }
}

/// What the collector needs to know of a box's type, reached from its header alone.
pub(crate) struct VTable {
    /// Visits the value's `Gc` fields. The box must be live and not `DROPPED`.
    pub(crate) trace: unsafe fn(NonNull<Header>, &mut Tracer),
    /// Drops the value in place. The box must be live and not `DROPPED`; called once.
    pub(crate) drop_value: unsafe fn(NonNull<Header>),
    /// Where the box's allocation starts and its layout, for deallocation (for sized values, the box
    /// itself; for slices, a length prefix comes first: see `slice`).
    pub(crate) alloc_of: unsafe fn(NonNull<Header>) -> (NonNull<u8>, Layout),
    /// `core::any::type_name` of the value's type, for introspection (`GcAny::type_name`).
    pub(crate) type_name: fn() -> &'static str,
    /// `TypeId` of the value's type, for `GcAny::downcast`.
    pub(crate) type_id: fn() -> TypeId,
}

impl VTable {
    /// The vtable of `GcBox<T>`, as a `'static` constant.
    pub(crate) const fn of<T: Trace + 'static>() -> &'static VTable {
        const {
            &VTable {
                trace: trace_erased::<T>,
                drop_value: drop_erased::<T>,
                alloc_of: alloc_of_sized::<T>,
                type_name: core::any::type_name::<T>,
                type_id: TypeId::of::<T>,
            }
        }
    }
}

/// # Safety
/// `h` is the header of a `GcBox<T>` (allocated).
unsafe fn alloc_of_sized<T>(h: NonNull<Header>) -> (NonNull<u8>, Layout) {
    (h.cast(), Layout::new::<GcBox<T>>())
}

/// # Safety
/// `h` is the header of a live `GcBox<T>` whose value has not been dropped.
unsafe fn trace_erased<T: Trace>(h: NonNull<Header>, tracer: &mut Tracer) {
    // SAFETY: per the contract, `h` starts a live `GcBox<T>` (header at offset 0, `repr(C)`).
    let value = unsafe { &(*h.cast::<GcBox<T>>().as_ptr()).value };
    value.trace(tracer);
}

/// # Safety
/// `h` is the header of a live `GcBox<T>` whose value has not been dropped, and it will not be used again.
unsafe fn drop_erased<T: Trace>(h: NonNull<Header>) {
    // SAFETY: per the contract; `addr_of_mut!` avoids making a `&mut` to the whole box, which other
    // handles may be reading the header of.
    unsafe { ptr::drop_in_place(ptr::addr_of_mut!((*h.cast::<GcBox<T>>().as_ptr()).value)) };
}

/// The header in front of every value.
///
/// 24 bytes on 64-bit targets (20 on 32-bit; 16 or 8 more with feature `gc-introspect`): two counts, the state bits, the birth epoch for `freeze()`,
/// and the vtable. The vtable lets the possible-roots buffer and the traversal stack hold *thin* pointers
/// (8 bytes per entry, not 16) and lets `Gc<T>` drop and buffer without a `T: Trace` bound.
#[repr(C)]
pub(crate) struct Header {
    /// Strong handles (`Gc`s) in existence, plus one per collector hold. During a collection's analysis
    /// phase, the collector uses it as Bacon–Rajan's trial count (the true value is saved and restored).
    pub(crate) strong: Cell<u32>,
    /// `Weak` handles in existence. The box is freed when `strong`, `weak` and the ownership bits are all
    /// zero.
    pub(crate) weak: Cell<u32>,
    pub(crate) flags: Cell<Flags>,
    /// The collector's epoch when the box was made; below the thread's freeze mark means frozen.
    pub(crate) epoch: Cell<u32>,
    pub(crate) vtable: &'static VTable,
    /// This thread's list of live boxes, for `get_objects` (feature `gc-introspect`: 16 more bytes).
    #[cfg(feature = "gc-introspect")]
    pub(crate) links: super::registry::Links,
}

/// The strong count of an immortal box (CPython 3.12's `sys.getrefcount` of an immortal object on 64-bit
/// reads the same number, 4294967295).
pub(crate) const IMMORTAL_STRONG: u32 = u32::MAX;

/// Header then value. `repr(C)` puts the header at offset 0, so a pointer to the box is a pointer to its
/// header: the collector works on `NonNull<Header>` whatever `T` is, and gets `T` back through the vtable.
#[repr(C)]
pub(crate) struct GcBox<T: ?Sized> {
    pub(crate) header: Header,
    pub(crate) value: T,
}

impl Header {
    #[inline(always)]
    pub(crate) fn has(&self, f: Flags) -> bool {
        self.flags.get().intersects(f)
    }
    #[inline(always)]
    pub(crate) fn set(&self, f: Flags) {
        self.flags.set(self.flags.get() | f);
    }
    #[inline(always)]
    pub(crate) fn clear(&self, f: Flags) {
        self.flags.set(self.flags.get() - f);
    }

    /// Adds one strong reference (none to an immortal box); aborts on overflow, like `Rc` (wrapping
    /// would free a live box). A real count stops below `IMMORTAL_STRONG - 1`, so it never reads as
    /// immortal.
    #[inline(always)]
    pub(crate) fn inc_strong(&self) {
        let n = self.strong.get();
        if n >= IMMORTAL_STRONG - 1 {
            if n == IMMORTAL_STRONG {
                return;
            }
            overflow_abort();
        }
        self.strong.set(n + 1);
    }

    /// Adds one weak reference; aborts on overflow.
    #[inline(always)]
    pub(crate) fn inc_weak(&self) {
        let n = self.weak.get();
        if n == u32::MAX {
            overflow_abort();
        }
        self.weak.set(n + 1);
    }

    /// Whether nothing holds the box any more: no handle of either kind, no collector ownership.
    #[inline(always)]
    pub(crate) fn is_unowned(&self) -> bool {
        self.strong.get() == 0
            && self.weak.get() == 0
            && !self.has(Flags::BUFFERED | Flags::FROZEN_CANDIDATE)
    }
}

#[cold]
#[inline(never)]
fn overflow_abort() -> ! {
    // Without std there is no `process::abort`; a panic while panicking aborts everywhere.
    struct Abort;
    impl Drop for Abort {
        fn drop(&mut self) {
            panic!("poolgc: Gc reference count overflow");
        }
    }
    let _a = Abort;
    panic!("poolgc: Gc reference count overflow");
}

// ---- where boxes come from ----------------------------------------------------------------------------

/// With `os`, boxes come from a process-wide pool allocator of their own, so `Gc` values live in poolgc
/// pools even when the program's global allocator is `System` (not under `cfg(loom)`, where `PoolAlloc`
/// cannot be built in a `static`: there boxes come from the global allocator). Without thread caches: they
/// serve the process's main allocator. Under Miri, pools are one page so that
/// every arena is exactly one mapping (Miri cannot unmap part of a mapping).
#[cfg(all(feature = "os", unix, not(loom)))]
static GC_HEAP: crate::PoolAlloc = if cfg!(miri) {
    crate::PoolAlloc::with_config_locked(crate::Config::new(4096, 64 * 1024))
} else {
    crate::PoolAlloc::new_locked()
};

/// The allocator `Gc` boxes come from: the dedicated one with feature `os`; otherwise `None`, meaning the
/// global allocator (firmware makes `PoolAlloc` its global allocator, so boxes still come from pools).
#[cfg(all(feature = "os", unix, not(loom)))]
pub fn box_allocator() -> Option<&'static crate::PoolAlloc> {
    Some(&GC_HEAP)
}

/// The allocator `Gc` boxes come from (see the `os` variant): here, the global allocator.
#[cfg(not(all(feature = "os", unix, not(loom))))]
pub fn box_allocator() -> Option<&'static crate::PoolAlloc> {
    None
}

/// Allocates a box with `layout` (never zero-sized: the header is in it); diverges through
/// `handle_alloc_error` on failure.
pub(crate) fn alloc_box(layout: Layout) -> NonNull<u8> {
    #[cfg(all(feature = "os", unix, not(loom)))]
    // SAFETY: `layout` has a non-zero size (the header).
    let p = unsafe { core::alloc::GlobalAlloc::alloc(&GC_HEAP, layout) };
    #[cfg(not(all(feature = "os", unix, not(loom))))]
    // SAFETY: `layout` has a non-zero size (the header).
    let p = unsafe { alloc::alloc::alloc(layout) };
    match NonNull::new(p) {
        Some(p) => p,
        None => alloc::alloc::handle_alloc_error(layout),
    }
}

/// Frees a box's memory (its value must already be dropped or moved out).
///
/// # Safety
/// `h` is the header of a box made by [`alloc_box`] (with the layout its vtable's `alloc_of` reports),
/// and nothing uses it afterwards.
pub(crate) unsafe fn free_box(h: NonNull<Header>) {
    #[cfg(feature = "gc-introspect")]
    // SAFETY: `h` is allocated (caller), and every box on the list is (each leaves it here).
    unsafe {
        super::registry::unlink(h)
    };
    // SAFETY: the header (and a slice box's length prefix) is readable until we free it.
    let (base, layout) = unsafe { (h.as_ref().vtable.alloc_of)(h) };
    // SAFETY: forwarded contract: `base` is where `alloc_box(layout)` put the box.
    unsafe { dealloc_block(base, layout) };
}

/// Returns a block from [`alloc_box`] to where it came from.
///
/// # Safety
/// `base` came from `alloc_box(layout)` and is not used again.
pub(crate) unsafe fn dealloc_block(base: NonNull<u8>, layout: Layout) {
    #[cfg(all(feature = "os", unix, not(loom)))]
    // SAFETY: forwarded contract: the block came from GC_HEAP with this layout.
    unsafe {
        core::alloc::GlobalAlloc::dealloc(&GC_HEAP, base.as_ptr(), layout)
    };
    #[cfg(not(all(feature = "os", unix, not(loom))))]
    // SAFETY: forwarded contract: the block came from the global allocator with this layout.
    unsafe {
        alloc::alloc::dealloc(base.as_ptr(), layout)
    };
}
