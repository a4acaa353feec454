//! The trace tables: live traced blocks by address, and the distinct stacks they were allocated from.
//! Fixed-capacity open addressing in memory mapped from the OS, so that recording never allocates
//! through the global allocator (which is what is being traced).

use core::ptr;

/// Raw return addresses kept per stack: enough to skip the allocator's and the standard library's own
/// frames and still keep the frames asked for.
pub(crate) const RAW_FRAMES: usize = 48;

/// Slots for live traced blocks; filled to three quarters at most.
const TRACE_SLOTS: usize = 1 << 20;
/// Slots for distinct stacks; filled to three quarters at most.
const STACK_SLOTS: usize = 1 << 15;

/// One live traced block.
#[derive(Clone, Copy)]
pub(crate) struct Entry {
    /// The block's address; 0 marks an empty slot.
    pub addr: usize,
    pub size: usize,
    /// The tag the allocating thread had set.
    pub tag: Option<&'static str>,
    /// 1 + the stack's slot in the stack table (0: none captured).
    pub stack: u32,
    /// The pool class the layout mapped to, `u16::MAX` for the large path.
    pub class: u16,
}

/// One distinct stack of raw return addresses.
#[derive(Clone, Copy)]
pub(crate) struct Stack {
    /// Hash of the frames, never 0 in a used slot.
    pub hash: u64,
    pub len: u32,
    pub frames: [usize; RAW_FRAMES],
}

/// Both tables and the traced-memory counters; lives behind the trace lock.
pub(crate) struct Tables {
    traces: *mut Entry,
    stacks: *mut Stack,
    pub count: usize,
    pub stack_count: usize,
    pub current: usize,
    pub peak: usize,
    /// Blocks not recorded because a table was full.
    pub dropped: usize,
}

// SAFETY: the tables are plain memory owned by this value; it is only used behind the trace lock.
unsafe impl Send for Tables {}

/// Maps `bytes` of zeroed memory, or null.
fn map(bytes: usize) -> *mut u8 {
    // SAFETY: an anonymous private mapping; no existing memory is touched.
    let p = unsafe {
        libc::mmap(
            ptr::null_mut(),
            bytes,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        ptr::null_mut()
    } else {
        p.cast()
    }
}

/// Gives the pages of `[p, p + bytes)` back; they read as zero again.
fn zero(p: *mut u8, bytes: usize) {
    // SAFETY: `p` is a mapping of `bytes` from `map`, used by nothing else while the lock is held.
    unsafe { libc::madvise(p.cast(), bytes, libc::MADV_DONTNEED) };
}

#[inline]
fn hash_addr(addr: usize) -> usize {
    // Fibonacci hashing; the low bits of block addresses are mostly zero.
    ((addr as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40) as usize
}

impl Tables {
    pub(crate) const fn new() -> Self {
        Tables {
            traces: ptr::null_mut(),
            stacks: ptr::null_mut(),
            count: 0,
            stack_count: 0,
            current: 0,
            peak: 0,
            dropped: 0,
        }
    }

    /// Maps the tables on first use; whether they exist.
    pub(crate) fn ensure(&mut self) -> bool {
        if self.traces.is_null() {
            self.traces = map(TRACE_SLOTS * size_of::<Entry>()).cast();
            self.stacks = map(STACK_SLOTS * size_of::<Stack>()).cast();
        }
        !self.traces.is_null() && !self.stacks.is_null()
    }

    /// Forgets every trace and stack (the mapping stays).
    pub(crate) fn clear(&mut self) {
        if !self.traces.is_null() {
            zero(self.traces.cast(), TRACE_SLOTS * size_of::<Entry>());
        }
        if !self.stacks.is_null() {
            zero(self.stacks.cast(), STACK_SLOTS * size_of::<Stack>());
        }
        self.count = 0;
        self.stack_count = 0;
        self.current = 0;
        self.peak = 0;
        self.dropped = 0;
    }

    fn slot(&self, i: usize) -> *mut Entry {
        // SAFETY: callers pass `i < TRACE_SLOTS`, inside the mapping.
        unsafe { self.traces.add(i) }
    }

    /// The stack table's id for `frames`, adding it if new; 0 when the table is full.
    pub(crate) fn intern_stack(&mut self, frames: &[usize]) -> u32 {
        if self.stacks.is_null() {
            return 0;
        }
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for &f in frames {
            h = (h ^ f as u64).wrapping_mul(0x0000_0100_0000_01b3);
        }
        let h = h | 1;
        let mask = STACK_SLOTS - 1;
        let mut i = (h as usize) & mask;
        loop {
            // SAFETY: `i <= mask`, inside the mapping; zeroed memory is a valid empty `Stack`.
            let s = unsafe { &mut *self.stacks.add(i) };
            if s.hash == 0 {
                if self.stack_count >= STACK_SLOTS / 4 * 3 {
                    return 0;
                }
                s.hash = h;
                s.len = frames.len() as u32;
                s.frames[..frames.len()].copy_from_slice(frames);
                self.stack_count += 1;
                return i as u32 + 1;
            }
            if s.hash == h && &s.frames[..s.len as usize] == frames {
                return i as u32 + 1;
            }
            i = (i + 1) & mask;
        }
    }

    /// The stack of id `id` (from `intern_stack`), if any.
    #[cfg(feature = "debug")]
    pub(crate) fn stack(&self, id: u32) -> Option<&Stack> {
        if id == 0 || self.stacks.is_null() {
            return None;
        }
        // SAFETY: ids are 1 + a slot index below STACK_SLOTS.
        Some(unsafe { &*self.stacks.add(id as usize - 1) })
    }

    /// Records a live block (replacing any stale entry at the same address).
    pub(crate) fn insert(&mut self, e: Entry) {
        if self.traces.is_null() {
            return;
        }
        self.remove(e.addr);
        if self.count >= TRACE_SLOTS / 4 * 3 {
            self.dropped += 1;
            return;
        }
        let mask = TRACE_SLOTS - 1;
        let mut i = hash_addr(e.addr) & mask;
        // SAFETY: every index is masked into the mapping.
        unsafe {
            while (*self.slot(i)).addr != 0 {
                i = (i + 1) & mask;
            }
            self.slot(i).write(e);
        }
        self.count += 1;
        self.current += e.size;
        self.peak = self.peak.max(self.current);
    }

    /// The entry of `addr`, if traced.
    #[cfg(feature = "debug")]
    pub(crate) fn get(&self, addr: usize) -> Option<Entry> {
        self.find(addr).map(|i| {
            // SAFETY: `find` returns an index inside the mapping.
            unsafe { *self.slot(i) }
        })
    }

    fn find(&self, addr: usize) -> Option<usize> {
        if self.traces.is_null() || addr == 0 {
            return None;
        }
        let mask = TRACE_SLOTS - 1;
        let mut i = hash_addr(addr) & mask;
        loop {
            // SAFETY: masked index inside the mapping.
            let a = unsafe { (*self.slot(i)).addr };
            if a == addr {
                return Some(i);
            }
            if a == 0 {
                return None;
            }
            i = (i + 1) & mask;
        }
    }

    /// Forgets `addr`, if traced (linear probing with backward-shift deletion: no tombstones).
    pub(crate) fn remove(&mut self, addr: usize) {
        let Some(mut i) = self.find(addr) else {
            return;
        };
        let mask = TRACE_SLOTS - 1;
        // SAFETY: every index is masked into the mapping.
        unsafe {
            self.current -= (*self.slot(i)).size;
            self.count -= 1;
            let mut j = i;
            loop {
                (*self.slot(i)).addr = 0;
                loop {
                    j = (j + 1) & mask;
                    let a = (*self.slot(j)).addr;
                    if a == 0 {
                        return;
                    }
                    let home = hash_addr(a) & mask;
                    // The entry at `j` may fill the hole at `i` unless its home lies cyclically in (i, j].
                    let stays = if i <= j {
                        i < home && home <= j
                    } else {
                        i < home || home <= j
                    };
                    if !stays {
                        self.slot(i).write(*self.slot(j));
                        i = j;
                        break;
                    }
                }
            }
        }
    }

    /// Calls `f` on every stored stack, with its id.
    pub(crate) fn for_each_stack(&self, mut f: impl FnMut(u32, &Stack)) {
        if self.stacks.is_null() {
            return;
        }
        for i in 0..STACK_SLOTS {
            // SAFETY: `i < STACK_SLOTS`.
            let s = unsafe { &*self.stacks.add(i) };
            if s.hash != 0 {
                f(i as u32 + 1, s);
            }
        }
    }

    /// Calls `f` on every live entry.
    pub(crate) fn for_each(&self, mut f: impl FnMut(&Entry)) {
        if self.traces.is_null() {
            return;
        }
        for i in 0..TRACE_SLOTS {
            // SAFETY: `i < TRACE_SLOTS`.
            let e = unsafe { &*self.slot(i) };
            if e.addr != 0 {
                f(e);
            }
        }
    }
}
