//! tracemalloc (feature `trace`): call sites, traced memory and its peak, growth between snapshots,
//! tags, size classes, filters and sampling. One test at a time holds the tracer (it is process-wide).

use poolgc::trace::{self, Filter, GroupBy, Key, Sampling};
use poolgc::PoolAlloc;
use std::sync::Mutex;

#[global_allocator]
static ALLOC: PoolAlloc = PoolAlloc::new();

static TRACER: Mutex<()> = Mutex::new(());

fn hold() -> std::sync::MutexGuard<'static, ()> {
    TRACER.lock().unwrap_or_else(|e| e.into_inner())
}

/// `n` boxes of 1000 bytes (one block each), allocated on the line this returns.
#[allow(clippy::vec_box)]
#[inline(never)]
fn known_allocation(n: usize) -> (Vec<Box<[u8; 1000]>>, u32) {
    let mut v = Vec::with_capacity(n);
    let line = line!() + 2;
    for _ in 0..n {
        v.push(Box::new([7u8; 1000]));
    }
    (v, line)
}

#[test]
fn snapshot_names_this_file_and_line() {
    let _g = hold();
    trace::start(1);
    let (v, line) = known_allocation(50);
    let snap = trace::take_snapshot();
    trace::stop();
    let stats = snap.statistics(GroupBy::Lineno);
    let here = stats
        .iter()
        .find(|s| matches!(&s.key, Key::Site(f) if f[0].file.ends_with("tests/trace.rs") && f[0].line == line))
        .unwrap_or_else(|| panic!("no trace at tests/trace.rs:{line}; top: {:#?}", &stats[..stats.len().min(5)]));
    assert_eq!(here.count, 50);
    assert_eq!(here.size, 50_000);
    assert!(
        here.to_string()
            .contains(&format!("tests/trace.rs:{line}: size=48.8 KiB, count=50")),
        "{here}"
    );
    drop(v);
}

#[test]
fn traced_memory_peak_and_reset() {
    let _g = hold();
    trace::start(1);
    let (base, _) = trace::get_traced_memory();
    let big = vec![0u8; 1 << 20];
    let (cur, peak) = trace::get_traced_memory();
    assert!(
        cur >= base + (1 << 20) && peak >= cur,
        "{base} {cur} {peak}"
    );
    drop(big);
    let (cur2, peak2) = trace::get_traced_memory();
    assert!(
        cur2 + (1 << 20) <= cur + 64,
        "freed memory still counted: {cur2} vs {cur}"
    );
    assert_eq!(peak2, peak, "peak kept after the free");
    trace::reset_peak();
    let (cur3, peak3) = trace::get_traced_memory();
    assert!(peak3 < peak && peak3 >= cur3, "{peak3} {peak} {cur3}");
    assert!(trace::is_tracing());
    trace::stop();
    assert!(!trace::is_tracing());
    assert_eq!(trace::get_traced_memory(), (0, 0));
}

#[test]
fn compare_to_lists_the_growth_first() {
    let _g = hold();
    trace::start(1);
    // The same line allocates before and after the first snapshot: the difference is the growth.
    let (old, _) = known_allocation(100);
    let before = trace::take_snapshot();
    let (v, line) = known_allocation(200);
    let after = trace::take_snapshot();
    trace::stop();
    let diff = after.compare_to(&before, GroupBy::Lineno);
    let top = &diff[0];
    assert!(
        matches!(&top.key, Key::Site(f) if f[0].line == line),
        "{top}"
    );
    assert_eq!((top.size, top.size_diff), (300_000, 200_000));
    assert_eq!((top.count, top.count_diff), (300, 200));
    assert!(
        top.to_string()
            .contains("size=293.0 KiB (+195.3 KiB), count=300 (+200)"),
        "{top}"
    );
    drop(old);
    drop(v);
}

#[test]
fn tags_and_size_classes_group() {
    let _g = hold();
    trace::start(1);
    let parsed: Vec<Vec<u8>> =
        trace::with_tag("parser", || (0..30).map(|_| vec![1u8; 48]).collect());
    let other: Vec<u8> = vec![2u8; 100_000];
    let snap = trace::take_snapshot();
    trace::stop();
    let tags = snap.statistics(GroupBy::Tag);
    let parser = tags
        .iter()
        .find(|s| s.key == Key::Tag(Some("parser")))
        .expect("the parser tag");
    // The 30 vectors and the outer vector's buffer.
    assert_eq!(parser.count, 31);
    assert_eq!(parser.size, 30 * 48 + 30 * std::mem::size_of::<Vec<u8>>());
    let classes = snap.statistics(GroupBy::SizeClass);
    let c48 = classes
        .iter()
        .find(|s| s.key.to_string() == "class 2 (48 B blocks)")
        .expect("48-byte class");
    assert!(c48.count >= 30);
    let large = classes
        .iter()
        .find(|s| s.key == Key::SizeClass(None))
        .expect("large blocks");
    assert!(large.size >= 100_000);
    drop((parsed, other));
}

#[test]
fn filters_by_file() {
    let _g = hold();
    trace::start(1);
    let (v, _) = known_allocation(10);
    let snap = trace::take_snapshot();
    trace::stop();
    let mine = snap.filter_traces(&[Filter::include("*/tests/trace.rs")]);
    assert!(mine.traces().len() >= 10);
    assert!(mine
        .traces()
        .iter()
        .all(|t| t.frames[0].file.ends_with("tests/trace.rs")));
    let others = snap.filter_traces(&[Filter::exclude("*/tests/trace.rs")]);
    assert_eq!(
        others.traces().len() + mine.traces().len(),
        snap.traces().len()
    );
    drop(v);
}

#[test]
fn sampling_records_fewer() {
    let _g = hold();
    let count = |sampling| {
        trace::start_sampled(1, sampling);
        let (v, line) = known_allocation(1000);
        let snap = trace::take_snapshot();
        trace::stop();
        drop(v);
        snap.statistics(GroupBy::Lineno)
            .iter()
            .find(|s| matches!(&s.key, Key::Site(f) if f[0].line == line))
            .map_or(0, |s| s.count)
    };
    assert_eq!(count(Sampling::All), 1000);
    let tenth = count(Sampling::Calls(10));
    assert!((90..=110).contains(&tenth), "{tenth}");
    let bytes = count(Sampling::Bytes(10_000));
    assert!((90..=110).contains(&bytes), "{bytes}");
}

/// A child forked while another thread records finds the trace lock free: it allocates (and records)
/// and exits; a lock copied held would hang it until the alarm kills it.
#[test]
fn fork_while_recording() {
    let _g = hold();
    trace::start(1);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let s = stop.clone();
    let worker = std::thread::spawn(move || {
        while !s.load(std::sync::atomic::Ordering::Relaxed) {
            std::hint::black_box(vec![0u8; 100]);
        }
    });
    for _ in 0..50 {
        // SAFETY: the child only allocates, frees and exits.
        unsafe {
            let pid = libc::fork();
            if pid == 0 {
                libc::alarm(5);
                std::hint::black_box(vec![1u8; 64]);
                libc::_exit(0);
            }
            let mut status = 0;
            assert_eq!(libc::waitpid(pid, &mut status, 0), pid);
            assert!(
                libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
                "child: {status:#x}"
            );
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    worker.join().unwrap();
    trace::stop();
}
