//! Shared helpers for the GC tests: a graph node that counts its drops (per thread, as the collector is).
#![allow(dead_code)]

use poolgc::gc::{Gc, Trace, Tracer};
use std::cell::{Cell, RefCell};

thread_local! {
    static DROPS: Cell<usize> = const { Cell::new(0) };
}

/// Values of `Node` dropped on this thread so far.
pub fn drops() -> usize {
    DROPS.with(Cell::get)
}

/// A node with outgoing edges.
pub struct Node {
    pub id: usize,
    pub edges: RefCell<Vec<Gc<Node>>>,
}

impl Drop for Node {
    fn drop(&mut self) {
        DROPS.with(|d| d.set(d.get() + 1));
    }
}

// SAFETY: visits `edges`, the only field that can own a `Gc`, once.
unsafe impl Trace for Node {
    fn trace(&self, t: &mut Tracer) {
        self.edges.trace(t);
    }
}

pub fn node(id: usize) -> Gc<Node> {
    Gc::new(Node {
        id,
        edges: RefCell::new(Vec::new()),
    })
}

pub fn link(from: &Gc<Node>, to: &Gc<Node>) {
    from.edges.borrow_mut().push(to.clone());
}

/// Collects until nothing is left to collect, returning the total (also clears earlier tests' leftovers).
pub fn settle() -> usize {
    let mut total = 0;
    loop {
        let n = poolgc::gc::collect();
        total += n;
        if n == 0 && poolgc::gc::count() == 0 {
            return total;
        }
    }
}

/// `n` scaled down under Miri.
pub fn scaled(n: usize, miri: usize) -> usize {
    if cfg!(miri) {
        miri
    } else {
        n
    }
}

/// For a test whose failure ends the process (a stack overflow, an abort): run as a plain test, it re-runs
/// itself (`name`, the test's own name) in a child process and asserts that the child succeeded; in the
/// child, it runs `body`.
pub fn in_child_process(name: &str, body: impl FnOnce()) {
    const VAR: &str = "POOLGC_GC_CHILD";
    if std::env::var(VAR).as_deref() == Ok(name) {
        body();
        return;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(VAR, name)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "child {name} failed: {:?}\n{stdout}\n{stderr}",
        out.status
    );
}
