//! An allocator in static storage that is dropped in place (its `static` holds a `Mutex` of an enum, so
//! safe code can replace it) must not stay registered with the fork handlers: they would lock and unlock
//! whatever the static holds next. `Command::uid` makes std fork with `fork()` (not `posix_spawn`), which
//! runs the `pthread_atfork` handlers, so this is reachable from safe code. The process's global
//! allocator is the system's.
#![cfg(all(
    unix,
    feature = "std",
    feature = "os",
    not(feature = "critical-section")
))]

use poolgc::PoolAlloc;
use std::alloc::{GlobalAlloc, Layout};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::sync::{mpsc, Mutex};
use std::time::Duration;

const JUNK: usize = 2 * std::mem::size_of::<PoolAlloc>();

/// What a static slot may hold: an allocator, or bytes that overlap its lock word when it is gone.
// Large inline on purpose: the bytes must lie where the allocator was.
#[allow(dead_code, clippy::large_enum_variant)]
enum Slot {
    Alloc(PoolAlloc),
    Bytes([u8; JUNK]),
}

static SLOT: Mutex<Slot> = Mutex::new(Slot::Alloc(PoolAlloc::new_locked()));

/// Spawns `true` through std's `fork` path; whether it finished within 20 s.
fn spawn_through_fork() -> bool {
    let uid = std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(0);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let ok = std::process::Command::new("true")
            .uid(uid)
            .status()
            .map(|s| s.success())
            .unwrap_or(true); // a refused uid change is not what this test is about
        let _ = tx.send(ok);
    });
    rx.recv_timeout(Duration::from_secs(20)).is_ok()
}

#[test]
fn allocator_dropped_in_its_static_is_forgotten_by_the_fork_handlers() {
    {
        let g = SLOT.lock().unwrap();
        let Slot::Alloc(a) = &*g else { unreachable!() };
        let l = Layout::new::<[u64; 4]>();
        // SAFETY: non-zero size; freed once with its layout.
        unsafe { a.dealloc(a.alloc(l), l) };
    }
    assert!(spawn_through_fork(), "fork hung with the allocator alive");
    // Drops the allocator in place; its bytes are then overwritten with a pattern its lock would read as
    // held.
    *SLOT.lock().unwrap() = Slot::Bytes([1; JUNK]);
    assert!(
        spawn_through_fork(),
        "fork hung: the handlers still lock the dropped allocator's memory"
    );
}
