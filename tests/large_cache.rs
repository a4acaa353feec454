//! The large-block cache: freed OS mappings kept for reuse, split, grown into in place, bounded and decayed
//! (`src/large/mapcache.rs`). Runs under Miri too (with `-Zmiri-ignore-leaks`: `os::unmap` leaks there).
#![cfg(all(feature = "os", unix))]

mod common;

use common::Rng;
use core::alloc::Layout;
use core::ptr::NonNull;
use poolgc::{Config, Heap};

/// Largest size the growth test reaches (Miri is slow).
const TOP: usize = if cfg!(miri) { 256 << 10 } else { 4 << 20 };
const PAGE: usize = 4096;

fn layout(size: usize) -> Layout {
    Layout::from_size_align(size, 8).unwrap()
}

/// A heap that keeps what it caches until told otherwise (nothing here depends on the clock).
fn heap() -> Heap {
    let mut h = Heap::new(Config::HOSTED);
    h.set_spare_decay_ms(u32::MAX);
    h
}

/// Writes `tag` into the first byte of every page of `[p, p + len)`.
fn mark(p: NonNull<u8>, len: usize, tag: u8) {
    for off in (0..len).step_by(PAGE) {
        unsafe { p.as_ptr().add(off).write(tag) };
    }
}

/// Whether every page of `[p, p + len)` starts with `tag`.
fn marked(p: NonNull<u8>, len: usize, tag: u8) -> bool {
    (0..len)
        .step_by(PAGE)
        .all(|off| unsafe { p.as_ptr().add(off).read() } == tag)
}

/// Eight blocks grown side by side from 4 KiB to [`TOP`] by doubling, as `Vec`s pushed in turn grow; checks
/// their contents after every step. Returns them, and whether none ever moved after its first allocation.
fn grow_eight(h: &mut Heap) -> (Vec<NonNull<u8>>, bool) {
    let mut v: Vec<NonNull<u8>> = (0..8u8)
        .map(|i| {
            let p = h.allocate(layout(PAGE)).unwrap();
            mark(p, PAGE, i);
            p
        })
        .collect();
    let first = v.clone();
    let mut size = PAGE;
    while size < TOP {
        for (i, p) in v.iter_mut().enumerate() {
            *p = unsafe { h.reallocate(*p, layout(size), 2 * size) }.unwrap();
            assert!(marked(*p, size, i as u8), "contents kept");
            mark(*p, 2 * size, i as u8);
        }
        size *= 2;
        h.check().unwrap();
    }
    let stayed = v == first;
    (v, stayed)
}

#[test]
fn growth_reuses_cached_ranges_in_place() {
    let mut h = heap();
    // Eight ranges of TOP bytes cached (a first round of growth would leave the same, by `mremap`).
    let v: Vec<_> = (0..8).map(|_| h.allocate(layout(TOP)).unwrap()).collect();
    for p in v {
        unsafe { h.deallocate(p, layout(TOP)) };
    }
    let reserved = h.stats().bytes_reserved;
    assert_eq!(reserved, 8 * TOP);
    assert_eq!(
        h.stats().cached_large_bytes,
        8 * TOP,
        "every freed block kept"
    );
    for round in 1..4 {
        let (v, stayed) = grow_eight(&mut h);
        let s = h.stats();
        assert!(
            stayed,
            "round {round}: every block grew in place, into its own range"
        );
        assert_eq!(
            s.cached_large_bytes, 0,
            "round {round}: the ranges wholly reused"
        );
        assert_eq!(
            s.bytes_reserved, reserved,
            "round {round}: nothing new mapped"
        );
        for p in v {
            unsafe { h.deallocate(p, layout(TOP)) };
        }
        assert_eq!(h.stats().cached_large_bytes, 8 * TOP);
        h.check().unwrap();
    }
    assert_eq!(h.trim(), 8 * TOP);
    assert_eq!(h.stats().bytes_reserved, 0);
}

#[test]
fn a_shrunk_tail_is_cached_and_grown_back_into() {
    let mut h = heap();
    let big = 64 * PAGE;
    let p = h.allocate(layout(big)).unwrap();
    mark(p, big, 7);
    let q = unsafe { h.reallocate(p, layout(big), big / 4) }.unwrap();
    assert_eq!(q, p, "shrinks in place");
    assert!(marked(q, big / 4, 7));
    assert_eq!(
        h.stats().cached_large_bytes,
        big - big / 4,
        "the tail cached"
    );
    h.check().unwrap();
    let r = unsafe { h.reallocate(q, layout(big / 4), big) }.unwrap();
    assert_eq!(r, p, "grows back into its tail");
    assert!(marked(r, big / 4, 7));
    assert_eq!(h.stats().cached_large_bytes, 0);
    // Shrunk again, then freed: block and tail are one range again, which a request of the whole takes.
    let s = unsafe { h.reallocate(r, layout(big), big / 2) }.unwrap();
    unsafe { h.deallocate(s, layout(big / 2)) };
    assert_eq!(h.stats().cached_large_bytes, big);
    h.check().unwrap();
    assert_eq!(h.allocate(layout(big)), Some(p), "merged with its tail");
    assert_eq!(h.stats().cached_large_bytes, 0);
    unsafe { h.deallocate(p, layout(big)) };
}

#[test]
fn a_request_takes_the_smallest_free_range_and_splits_it() {
    let mut h = heap();
    let (a, b) = (16 * PAGE, 64 * PAGE);
    let pa = h.allocate(layout(a)).unwrap();
    let pb = h.allocate(layout(b)).unwrap();
    unsafe { h.deallocate(pa, layout(a)) };
    unsafe { h.deallocate(pb, layout(b)) };
    assert_eq!(
        h.allocate(layout(8 * PAGE)),
        Some(pa),
        "best fit: the 16-page range"
    );
    assert_eq!(
        h.stats().cached_large_bytes,
        b + 8 * PAGE,
        "its rest stays cached"
    );
    // The rest is joined to that block: another request takes the 64-page range rather than it.
    assert_eq!(h.allocate(layout(8 * PAGE)), Some(pb));
    h.check().unwrap();
}

#[test]
fn cached_ranges_do_not_stack_on_new_memory() {
    let mut h = heap();
    let two = 2 << 20;
    let p = h.allocate(layout(two)).unwrap();
    mark(p, two, 1);
    unsafe { h.deallocate(p, layout(two)) };
    assert_eq!(
        h.stats().cached_large_bytes,
        two,
        "within the high-water mark: kept"
    );
    // Nothing cached can hold 3 MiB: before mapping it, the cache gives back what would stack on top.
    let q = h.allocate(layout(3 << 20)).unwrap();
    let s = h.stats();
    assert_eq!(s.cached_large_bytes, 0);
    assert_eq!(s.bytes_reserved, 3 << 20);
    unsafe { h.deallocate(q, layout(3 << 20)) };
    h.check().unwrap();
}

/// A zeroed request takes a dirty cached range up to 256 KiB, and zeroes it; above, fresh pages.
#[test]
fn zeroed_requests_get_zeroes_from_dirty_ranges() {
    let mut h = heap();
    for size in [32 * PAGE, 512 * PAGE] {
        let p = h.allocate(layout(size)).unwrap();
        unsafe { p.as_ptr().write_bytes(0xAA, size) };
        unsafe { h.deallocate(p, layout(size)) };
        let z = h.allocate_zeroed(layout(size)).unwrap();
        if size <= 256 << 10 {
            assert_eq!(z, p, "the dirty range is reused");
        }
        let bytes = unsafe { core::slice::from_raw_parts(z.as_ptr(), size) };
        assert!(bytes.iter().step_by(61).all(|&b| b == 0), "{size} bytes");
        unsafe { h.deallocate(z, layout(size)) };
        h.check().unwrap();
    }
}

/// Random allocations, zeroed allocations, growths, shrinks and frees of 1–64 pages (now and then up to
/// 2 MiB) over 48 slots, with the contents of every live block checked after each step and the heap's
/// invariants after every few; `trim` and a zero decay time now and then. (Under Miri the `large_actions`
/// fuzz driver's fixed seeds cover the same ground.)
#[cfg(not(miri))]
#[test]
fn random_large_actions_keep_contents_and_invariants() {
    for seed in [1u64, 0x5eed_1a26e, 0xdead_beef] {
        let mut rng = Rng(seed);
        let mut h = heap();
        let mut slots: Vec<Option<(NonNull<u8>, usize, u8)>> = vec![None; 48];
        let size = |rng: &mut Rng| {
            let pages = if rng.below(16) == 0 {
                1 + rng.below(512)
            } else {
                1 + rng.below(64)
            };
            pages * PAGE - rng.below(PAGE)
        };
        for step in 0..6000 {
            let i = rng.below(slots.len());
            let tag = (step % 251) as u8 + 1;
            match slots[i] {
                None => {
                    let n = size(&mut rng);
                    let p = if rng.below(4) == 0 {
                        let p = h.allocate_zeroed(layout(n)).unwrap();
                        assert!(marked(p, n, 0), "zeroed");
                        p
                    } else {
                        h.allocate(layout(n)).unwrap()
                    };
                    mark(p, n, tag);
                    slots[i] = Some((p, n, tag));
                }
                Some((p, n, t)) => {
                    assert!(marked(p, n, t), "contents of a live block");
                    if rng.below(2) == 0 {
                        let m = size(&mut rng);
                        let q = unsafe { h.reallocate(p, layout(n), m) }.unwrap();
                        assert!(marked(q, n.min(m), t), "contents kept by realloc");
                        mark(q, m, tag);
                        slots[i] = Some((q, m, tag));
                    } else {
                        unsafe { h.deallocate(p, layout(n)) };
                        slots[i] = None;
                    }
                }
            }
            match rng.below(500) {
                0 => {
                    h.trim();
                }
                1 => h.set_spare_decay_ms(0),
                2 => h.set_spare_decay_ms(u32::MAX),
                _ => {}
            }
            if step % 8 == 0 {
                h.check().unwrap();
            }
        }
        for (p, n, t) in slots.into_iter().flatten() {
            assert!(marked(p, n, t));
            unsafe { h.deallocate(p, layout(n)) };
        }
        h.check().unwrap();
        h.trim();
        assert_eq!(
            h.stats().bytes_reserved,
            0,
            "seed {seed}: nothing left mapped"
        );
    }
}

#[cfg(not(miri))]
#[test]
fn cached_bytes_unused_for_a_decay_period_go_back() {
    let mut h = heap();
    let mib = 1 << 20;
    let v: Vec<_> = (0..8).map(|_| h.allocate(layout(mib)).unwrap()).collect();
    for p in v {
        unsafe { h.deallocate(p, layout(mib)) };
    }
    assert_eq!(
        h.stats().cached_large_bytes,
        8 * mib,
        "kept while the decay time is endless"
    );
    // A little steady reuse (300 KiB taken and given back every 5 ms) must not keep the rest: what stays
    // unused for a whole 20 ms period goes, down to the mebibyte always kept plus what is in use.
    h.set_spare_decay_ms(20);
    let small = 300 << 10;
    for _ in 0..40 {
        std::thread::sleep(std::time::Duration::from_millis(5));
        let p = h.allocate(layout(small)).unwrap();
        unsafe { h.deallocate(p, layout(small)) };
        h.check().unwrap();
    }
    let s = h.stats();
    assert!(
        s.cached_large_bytes <= mib + small.next_multiple_of(PAGE),
        "decayed despite steady reuse: {} cached",
        s.cached_large_bytes
    );
    assert!(s.cached_large_bytes >= small, "what is reused stays");
    assert_eq!(s.bytes_reserved, s.cached_large_bytes);
}

/// The ways a block leaves its joined range (a shrink by `mremap`, a move, a free that unmaps) must not
/// leave a stale join that a later block at the same address could grow into.
#[cfg(not(miri))]
#[test]
fn shrinks_and_moves_leave_no_stale_joins() {
    let mut h = heap();
    let mib = 1 << 20;
    // Shrinks at the high-water mark are cached (the tail is no new memory) and extend one joined range.
    let p = h.allocate(layout(8 * mib)).unwrap();
    let q = unsafe { h.reallocate(p, layout(8 * mib), 4 * mib) }.unwrap();
    assert_eq!(q, p);
    assert_eq!(h.stats().cached_large_bytes, 4 * mib, "shrunk tail cached");
    let r = unsafe { h.reallocate(q, layout(4 * mib), 2 * mib) }.unwrap();
    assert_eq!(r, p);
    h.check().unwrap();
    unsafe { h.deallocate(r, layout(2 * mib)) };
    assert_eq!(
        h.allocate(layout(8 * mib)),
        Some(p),
        "block and both shrunk tails are one range again"
    );
    unsafe { h.deallocate(p, layout(8 * mib)) };
    h.trim();
    // Random sizes, trims and growths past every cached range (so by `mremap`): `check` fails if two
    // ranges are ever joined to one block, and every grown block must keep its contents.
    let mut rng = Rng(7);
    let mut live: Vec<(NonNull<u8>, usize)> = Vec::new();
    for step in 0..400 {
        if live.len() < 6 || rng.below(3) == 0 {
            let n = (1 + rng.below(32)) * PAGE;
            let p = h.allocate(layout(n)).unwrap();
            mark(p, n, 9);
            live.push((p, n));
        } else {
            let i = rng.below(live.len());
            let (p, n) = live[i];
            assert!(marked(p, n, 9));
            match rng.below(3) {
                0 => {
                    unsafe { h.deallocate(p, layout(n)) };
                    live.swap_remove(i);
                }
                1 => {
                    let m = (n / 2).max(PAGE);
                    live[i] = (unsafe { h.reallocate(p, layout(n), m) }.unwrap(), m);
                }
                _ => {
                    let m = n + (1 + rng.below(64)) * PAGE;
                    let q = unsafe { h.reallocate(p, layout(n), m) }.unwrap();
                    mark(q, m, 9);
                    live[i] = (q, m);
                }
            }
        }
        if step % 50 == 49 {
            h.trim();
        }
        h.check().unwrap();
    }
    for (p, n) in live {
        unsafe { h.deallocate(p, layout(n)) };
    }
    h.check().unwrap();
}

/// A block grown by `mremap` maps new memory: the cache first gives back what would stack on top of it.
#[cfg(not(miri))]
#[test]
fn growth_by_mremap_makes_room_first() {
    let mut h = heap();
    let mib = 1 << 20;
    let a = h.allocate(layout(16 * mib)).unwrap();
    let b = h.allocate(layout(4 * mib)).unwrap();
    unsafe { h.deallocate(a, layout(16 * mib)) };
    assert_eq!(h.stats().cached_large_bytes, 16 * mib);
    // No unjoined range holds 32 MiB, so `b` grows by `mremap`: 28 MiB of new memory, on top of which the
    // 16 MiB cached would take live plus cached past the 20 MiB ever live at once.
    let b = unsafe { h.reallocate(b, layout(4 * mib), 32 * mib) }.unwrap();
    let s = h.stats();
    assert_eq!(s.cached_large_bytes, 0);
    assert_eq!(s.bytes_reserved, 32 * mib);
    h.check().unwrap();
    unsafe { h.deallocate(b, layout(32 * mib)) };
}

/// Arenas never pass through the large-block cache, even when page-aligned (`Config::SMALL`'s 4 KiB
/// arenas): `trim` gives back the spares and leaves nothing cached or mapped.
#[test]
fn page_aligned_arenas_bypass_the_cache() {
    let mut h = Heap::new(Config::SMALL);
    h.set_spare_decay_ms(u32::MAX);
    let l = layout(48);
    let v: Vec<_> = (0..if cfg!(miri) { 600 } else { 2000 })
        .map(|_| h.allocate(l).unwrap())
        .collect();
    assert!(h.stats().arenas > 4);
    for p in v {
        unsafe { h.deallocate(p, l) };
    }
    assert_eq!(
        h.stats().cached_large_bytes,
        0,
        "freed arenas are spares, not cached"
    );
    h.check().unwrap();
    h.trim();
    let s = h.stats();
    assert_eq!(
        (s.arenas, s.cached_large_bytes, s.bytes_reserved),
        (0, 0, 0)
    );
}

/// Small-block growth unmaps cached ranges before it fails, as the large path does: with the address space
/// capped 2 MiB above what is mapped and 64 MiB of freed large blocks in the cache, 4 MiB of small blocks
/// are still served. Runs in a child process, whose address-space limit the test harness does not share.
#[cfg(all(target_os = "linux", not(miri)))]
#[test]
fn small_growth_unmaps_cached_ranges_before_failing() {
    if !common::in_child("small_growth_unmaps_cached_ranges_before_failing") {
        return;
    }
    let mut h = heap();
    // A 16 MiB block, unmapped by `trim`, raises the mark that bounds the cache, so that the 64 MiB block
    // freed next stays cached however many arenas (1 MiB each) are added below.
    let (big, extra) = (layout(64 << 20), layout(16 << 20));
    let p = h.allocate(big).unwrap();
    let q = h.allocate(extra).unwrap();
    // SAFETY: live blocks of these layouts.
    unsafe { h.deallocate(q, extra) };
    h.trim();
    // SAFETY: as above.
    unsafe { h.deallocate(p, big) };
    assert!(
        h.stats().cached_large_bytes >= 64 << 20,
        "the freed block is cached"
    );
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().next().unwrap().parse().unwrap();
    let cap = pages * PAGE as u64 + (2 << 20);
    let lim = libc::rlimit {
        rlim_cur: cap,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: setrlimit reads a valid rlimit; lowering the soft limit affects only this child process.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_AS, &lim) }, 0);
    // Fill more arenas than the 2 MiB of slack can map (an arena is 1 MiB, mapped over-aligned).
    let l = layout(64);
    let n = 4 * (1 << 20) / 64;
    let v: Vec<_> = (0..n)
        .map(|i| h.allocate(l).unwrap_or_else(|| panic!("block {i} refused")))
        .collect();
    assert!(
        h.stats().cached_large_bytes < 64 << 20,
        "the cache was unmapped"
    );
    for p in v {
        // SAFETY: live blocks of this layout.
        unsafe { h.deallocate(p, l) };
    }
    h.check().unwrap();
}
