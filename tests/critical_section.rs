//! The `critical-section` lock on the host (critical-section's `std` implementation):
//! `cargo test --features critical-section --test critical_section`.
#![cfg(feature = "critical-section")]

use core::alloc::{GlobalAlloc, Layout};
use poolgc::{Config, PoolAlloc};
use std::process::Command;

mod common;

fn allocator(len: usize) -> &'static PoolAlloc {
    let a: &'static PoolAlloc =
        Box::leak(Box::new(PoolAlloc::empty_with_config_locked(Config::SMALL)));
    // SAFETY: a fresh leaked allocation, used by nothing else.
    unsafe { a.add_region(common::Region::new(len, 1024).leak(), len) };
    a
}

#[test]
fn allocating_inside_a_critical_section_nests() {
    let a = allocator(16 * 1024);
    let layout = Layout::from_size_align(48, 8).unwrap();
    let p = critical_section::with(|_| {
        // SAFETY: non-zero size.
        let p = unsafe { a.alloc(layout) };
        // A second allocator's lock, taken while the first section is open, nests as well.
        let b = allocator(16 * 1024);
        // SAFETY: non-zero size; freed right away with the same layout.
        unsafe { b.dealloc(b.alloc(layout), layout) };
        p
    });
    assert!(!p.is_null());
    // SAFETY: allocated above with `layout`.
    unsafe { a.dealloc(p, layout) };
    assert_eq!(a.stats().bytes_in_use, 0);
    a.check().unwrap();
}

#[test]
fn threads_share_it() {
    // 4 threads × at most 51 live blocks × at most 700 bytes, with room to spare.
    let a = allocator(512 * 1024);
    std::thread::scope(|s| {
        for t in 0..4u8 {
            s.spawn(move || {
                let mut rng = common::Rng(u64::from(t) + 1);
                let mut live: Vec<(*mut u8, Layout, u8)> = Vec::new();
                for i in 0..2000 {
                    if live.len() > 50 || (rng.below(3) == 0 && !live.is_empty()) {
                        let (p, l, fill) = live.swap_remove(rng.below(live.len()));
                        // SAFETY: `p` is live with `l`, filled with `fill`; freed once.
                        unsafe {
                            assert!(std::slice::from_raw_parts(p, l.size())
                                .iter()
                                .all(|&b| b == fill));
                            a.dealloc(p, l);
                        }
                    } else {
                        let l = Layout::from_size_align(1 + rng.below(700), 8).unwrap();
                        // SAFETY: non-zero size.
                        let p = unsafe { a.alloc(l) };
                        assert!(!p.is_null());
                        let fill = (i as u8) ^ t;
                        // SAFETY: `p` is a fresh block of `l.size()` bytes.
                        unsafe { p.write_bytes(fill, l.size()) };
                        live.push((p, l, fill));
                    }
                }
                for (p, l, _) in live {
                    // SAFETY: live with `l`; freed once.
                    unsafe { a.dealloc(p, l) };
                }
            });
        }
    });
    assert_eq!(a.stats().bytes_in_use, 0);
    a.check().unwrap();
}

/// Run in a child process by `reentry_aborts_instead_of_aliasing`.
#[test]
fn reentry_child() {
    if std::env::var_os("POOLGC_REENTRY_CHILD").is_none() {
        return;
    }
    let a = allocator(16 * 1024);
    // Taking the lock again while `with_heap` holds it: a second `&mut Heap` must never be handed out.
    a.with_heap(|_| a.stats());
    unreachable!("re-entry was not refused");
}

#[test]
fn reentry_aborts_instead_of_aliasing() {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "reentry_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("POOLGC_REENTRY_CHILD", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "child succeeded: {stderr}");
    assert!(stderr.contains("heap lock re-entered"), "{stderr}");
    assert!(!stderr.contains("re-entry was not refused"), "{stderr}");
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        // Aborted (SIGABRT), not a test failure that unwound.
        assert_eq!(out.status.signal(), Some(6), "{stderr}");
    }
}
