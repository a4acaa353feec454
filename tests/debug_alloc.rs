//! The debug allocator (feature `debug`) catches each kind of heap violation: every case runs in a child
//! process (this test binary, re-run with `POOLGC_DEBUG_CASE` set), which must abort with a message
//! naming the block, its requested size and serial number, what broke and the bytes found.

use poolgc::PoolAlloc;
use std::alloc::{alloc, dealloc, Layout};
use std::process::Command;

/// The default allocator: thread caches in front of the lock, so that reuse goes through them.
#[global_allocator]
static ALLOC: PoolAlloc = PoolAlloc::new();

const CASE_VAR: &str = "POOLGC_DEBUG_CASE";

/// In a child, runs the violation `POOLGC_DEBUG_CASE` names (printing the block's address first); in the
/// parent, does nothing.
#[test]
fn child() {
    let Ok(case) = std::env::var(CASE_VAR) else {
        return;
    };
    #[cfg(feature = "trace")]
    if case == "overrun_traced" {
        poolgc::trace::start(4);
    }
    let l = Layout::from_size_align(24, 8).unwrap();
    // SAFETY: each case breaks the allocator's contract on purpose, in a child that must abort.
    unsafe {
        let p = alloc(l);
        assert!(!p.is_null());
        eprintln!("ADDR {:#x}", p as usize);
        match case.as_str() {
            "overrun" | "overrun_traced" => {
                p.add(24).write(0x00);
                dealloc(p, l);
            }
            "underrun" => {
                p.sub(1).write(0x00);
                dealloc(p, l);
            }
            "double_free" => {
                dealloc(p, l);
                dealloc(p, l);
            }
            "write_after_free" => {
                dealloc(p, l);
                p.add(3).write(0x41);
                // The block comes back once the thread cache's other blocks of its class are used up.
                for _ in 0..100_000 {
                    if alloc(l) == p {
                        break;
                    }
                }
            }
            "layout_mismatch" => dealloc(p, Layout::from_size_align(32, 8).unwrap()),
            other => panic!("unknown case {other}"),
        }
    }
    eprintln!("NOT CAUGHT");
    std::process::exit(0);
}

/// Runs `case` in a child; returns its stderr after checking that it aborted.
fn run_case(case: &str) -> String {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child", "--nocapture", "--test-threads=1"])
        .env(CASE_VAR, case)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{case}: child did not fail:\n{err}");
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            out.status.signal(),
            Some(libc::SIGABRT),
            "{case}: not an abort:\n{err}"
        );
    }
    assert!(!err.contains("NOT CAUGHT"), "{case}:\n{err}");
    err
}

/// The block's address as the child printed it.
fn addr(err: &str) -> &str {
    err.lines()
        .find_map(|l| l.strip_prefix("ADDR "))
        .expect("the child printed its address")
}

/// Checks the parts every message has: what broke, the address, the size and a serial number.
fn check_message(case: &str, what: &str, found: &str) {
    let err = run_case(case);
    let a = addr(&err);
    assert!(err.contains(what), "{case}: no {what:?} in:\n{err}");
    assert!(
        err.contains(&format!("block {a}:")),
        "{case}: address {a} not named:\n{err}"
    );
    assert!(err.contains("requested size 24 bytes"), "{case}:\n{err}");
    assert!(err.contains("serial number "), "{case}:\n{err}");
    assert!(
        err.contains(found),
        "{case}: bytes {found:?} not shown:\n{err}"
    );
}

#[test]
fn overrun_by_one_byte_aborts() {
    check_message(
        "overrun",
        "buffer overrun",
        "bytes after the block: 00 fd fd fd fd fd fd fd",
    );
}

#[test]
fn underrun_by_one_byte_aborts() {
    check_message("underrun", "buffer underrun", "fd fd 00\n");
}

#[test]
fn double_free_aborts() {
    check_message("double_free", "double free", "freed already");
}

#[test]
fn write_after_free_aborts_on_reuse() {
    check_message("write_after_free", "write after free", "offset 3");
    let err = run_case("write_after_free");
    assert!(err.contains(": 41 dd dd"), "{err}");
}

#[test]
fn layout_mismatch_aborts() {
    check_message(
        "layout_mismatch",
        "layout mismatch",
        "allocated with size 24 align 8, freed with size 32 align 8",
    );
}

/// With tracing on, the message names where the block was allocated.
#[cfg(feature = "trace")]
#[test]
fn traced_violation_names_the_call_site() {
    let err = run_case("overrun_traced");
    assert!(err.contains("buffer overrun"), "{err}");
    assert!(
        err.contains("allocated (tracing on) from return addresses: 0x"),
        "{err}"
    );
    // The `alloc(l)` line of `child`.
    let line = include_str!("debug_alloc.rs")
        .lines()
        .position(|l| l.trim() == "let p = alloc(l);")
        .unwrap()
        + 1;
    assert!(
        err.contains(&format!("tests/debug_alloc.rs:{line}")),
        "line {line} not named:\n{err}"
    );
}

/// Clean use runs unchanged: fills are visible, contents survive realloc, and zeroed memory is zero.
#[test]
fn clean_use_and_fills() {
    let l = Layout::from_size_align(40, 8).unwrap();
    // SAFETY: used within the contract.
    unsafe {
        let p = alloc(l);
        assert!((0..40).all(|i| p.add(i).read() == poolgc::debug::CLEAN_BYTE));
        p.write_bytes(7, 40);
        let q = std::alloc::realloc(p, l, 4000);
        assert!((0..40).all(|i| q.add(i).read() == 7));
        dealloc(q, Layout::from_size_align(4000, 8).unwrap());
        let z = std::alloc::alloc_zeroed(l);
        assert!((0..40).all(|i| z.add(i).read() == 0));
        dealloc(z, l);
    }
    let big: Vec<u64> = (0..100_000).collect();
    assert_eq!(big.iter().sum::<u64>(), 99_999 * 100_000 / 2);
    let mut grown: Vec<u8> = Vec::new();
    for i in 0..10_000u32 {
        grown.push(i as u8); // reallocs across the pool classes into the large path
    }
    assert!(grown.iter().enumerate().all(|(i, &b)| b == i as u8));
    #[repr(align(256))]
    struct A([u8; 3]);
    let a = Box::new(A([1, 2, 3]));
    assert_eq!(&*a as *const A as usize % 256, 0);
    assert_eq!(a.0, [1, 2, 3]);
}
