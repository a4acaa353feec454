//! Shared test helpers: leaked regions, a seeded RNG, and a tracker that checks every live block.
#![allow(dead_code)]

use core::alloc::Layout;
use core::ptr::NonNull;
use poolgc::{BlockState, Heap};

/// Memory for a test heap, freed when dropped: declare it before the heap that uses it (so it is dropped
/// after), and Miri's leak check stays meaningful.
pub struct Region {
    ptr: *mut u8,
    layout: Layout,
}

impl Region {
    /// `len` bytes aligned to `align`.
    pub fn new(len: usize, align: usize) -> Region {
        let layout = Layout::from_size_align(len, align).unwrap();
        // SAFETY: non-zero size.
        let ptr = unsafe { std::alloc::alloc(layout) };
        assert!(!ptr.is_null());
        Region { ptr, layout }
    }

    pub fn ptr(&self) -> *mut u8 {
        self.ptr
    }

    pub fn len(&self) -> usize {
        self.layout.size()
    }

    /// Gives the memory up for good (for allocators that must be `'static`); not for Miri-run tests.
    pub fn leak(self) -> *mut u8 {
        let p = self.ptr;
        core::mem::forget(self);
        p
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout.
        unsafe { std::alloc::dealloc(self.ptr, self.layout) }
    }
}

// SAFETY: a Region is plain owned memory.
unsafe impl Send for Region {}
unsafe impl Sync for Region {}

/// A fresh region of `len` bytes, leaked (the heap keeps it for the rest of the test), aligned to `align`.
pub fn region(len: usize, align: usize) -> *mut u8 {
    let layout = Layout::from_size_align(len, align).unwrap();
    // SAFETY: non-zero size.
    let p = unsafe { std::alloc::alloc(layout) };
    assert!(!p.is_null());
    LEAKED.lock().unwrap().push(Leaked(p));
    p
}

/// Every region `region` leaked on purpose. Miri's leak check does not count memory reachable from a
/// static, so keeping the pointers here (with their provenance) lets `cargo miri test` pass while still
/// catching real leaks.
static LEAKED: std::sync::Mutex<Vec<Leaked>> = std::sync::Mutex::new(Vec::new());

struct Leaked(#[allow(dead_code)] *mut u8);
// SAFETY: only kept, never dereferenced.
unsafe impl Send for Leaked {}

/// xorshift64*: deterministic, allocation-free.
pub struct Rng(pub u64);
impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Live blocks with the byte pattern each was filled with.
#[derive(Default)]
pub struct Tracker {
    pub live: Vec<(NonNull<u8>, Layout, u8)>,
}

impl Tracker {
    /// Records a new block: checks alignment and that it overlaps no live block, then fills it.
    pub fn add(&mut self, p: NonNull<u8>, layout: Layout, fill: u8) {
        let a = p.as_ptr() as usize;
        assert_eq!(
            a % layout.align(),
            0,
            "block {a:#x} misaligned for {layout:?}"
        );
        let end = a + layout.size().max(1);
        for &(q, l, _) in &self.live {
            let b = q.as_ptr() as usize;
            assert!(
                end <= b || b + l.size().max(1) <= a,
                "block {a:#x}+{} overlaps {b:#x}+{}",
                layout.size(),
                l.size()
            );
        }
        // SAFETY: the block is ours and `layout.size()` bytes long.
        unsafe { p.as_ptr().write_bytes(fill, layout.size()) };
        self.live.push((p, layout, fill));
    }

    /// Checks that block `i` still holds its pattern.
    pub fn verify(&self, i: usize) {
        let (p, l, fill) = self.live[i];
        // SAFETY: live block of `l.size()` bytes.
        let s = unsafe { core::slice::from_raw_parts(p.as_ptr(), l.size()) };
        if let Some(k) = s.iter().position(|&b| b != fill) {
            panic!(
                "block {:p} ({l:?}) byte {k} is {:#x}, expected {fill:#x}",
                p.as_ptr(),
                s[k]
            );
        }
    }

    pub fn verify_all(&self) {
        for i in 0..self.live.len() {
            self.verify(i);
        }
    }

    /// Checks the heap's invariants and that it sees every small live block as in use.
    pub fn check_heap(&self, heap: &Heap) {
        heap.check().unwrap_or_else(|e| panic!("{e}"));
        for &(p, l, _) in &self.live {
            let st = heap.block_state(p.as_ptr());
            if heap.is_pooled(l) {
                assert_eq!(st, BlockState::InUse, "live block {:p} ({l:?})", p.as_ptr());
            } else {
                assert_eq!(
                    st,
                    BlockState::NotInArena,
                    "large block {:p} inside an arena",
                    p.as_ptr()
                );
            }
        }
    }
}

/// Every size that matters to the size classes: each class boundary −1, 0, +1, and around the large limit.
pub fn boundary_sizes() -> Vec<usize> {
    let mut v = vec![0, 1];
    for &bs in poolgc::size_class::CLASS_SIZE.iter() {
        v.extend([bs - 1, bs, bs + 1]);
    }
    v.extend([1000, 4095, 4096, 4097, 65536, 100_000]);
    v.sort_unstable();
    v.dedup();
    v
}

/// Allocates `n` blocks of `size` bytes (alignment 8) from `a`, each filled with its index.
pub fn fill_blocks(a: &impl core::alloc::GlobalAlloc, size: usize, n: usize) -> Vec<*mut u8> {
    assert!(size > 0);
    let l = Layout::from_size_align(size, 8).unwrap();
    (0..n)
        .map(|i| {
            // SAFETY: a non-zero size; freed by `free_blocks` with the same layout.
            let p = unsafe { a.alloc(l) };
            assert!(!p.is_null(), "out of memory");
            // SAFETY: a fresh block of `size` bytes.
            unsafe { p.write_bytes(i as u8, size) };
            p
        })
        .collect()
}

/// Frees the blocks of `fill_blocks(a, size, …)`, checking first that each still holds its index.
///
/// # Safety
/// `blocks` is what `fill_blocks(a, size, _)` returned, and none of them has been freed since.
pub unsafe fn free_blocks(a: &impl core::alloc::GlobalAlloc, size: usize, blocks: Vec<*mut u8>) {
    let l = Layout::from_size_align(size, 8).unwrap();
    for (i, p) in blocks.into_iter().enumerate() {
        // SAFETY: a live block of `a` with layout `l`, written by `fill_blocks` (the contract).
        unsafe {
            assert_eq!(
                *p.add(size - 1),
                i as u8,
                "block {i} of {size} bytes changed"
            );
            a.dealloc(p, l);
        }
    }
}

/// Runs the calling test alone in a child process (for process-wide state: resource limits, counts that
/// other tests would disturb). Returns `true` in the child, which runs the test's body; in the parent it
/// runs the child, asserts that the test passed there, and returns `false`.
pub fn in_child(test: &str) -> bool {
    const CHILD: &str = "POOLGC_TEST_CHILD";
    if std::env::var_os(CHILD).is_some_and(|v| v == test) {
        return true;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(CHILD, test)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && text.contains("1 passed"),
        "{test} failed in its child process:\n{text}"
    );
    false
}
