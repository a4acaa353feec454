//! The workloads, generic over [`Collector`]. Sizes are fixed (full, or `--quick` for CI's smoke run),
//! and every random choice comes from a fixed seed, so every library does the same operations, and the
//! same explicit collections at the same points.

use super::{count_new, dropped, Collector, Pauses, Report};
use crate::workloads::Rng;
use std::hint::black_box;

/// The workloads, in table order: (name, what it does, whether it makes cycles).
pub const WORKLOADS: &[(&str, &str, bool)] = &[
    (
        "trees",
        "binary trees of 2^21 nodes built, walked by reference, dropped (acyclic), 3 times",
        false,
    ),
    (
        "parent-trees",
        "binary trees of 2^19 nodes whose children point to their parent, walked cloning handles, 3 times",
        true,
    ),
    (
        "dlist",
        "a doubly linked list of 1M nodes built, walked, dropped, collected",
        true,
    ),
    (
        "random-graph",
        "1M random operations (create, add edge, drop root, drop edge) on up to 10k roots",
        true,
    ),
    (
        "rings",
        "100k rings of 2-64 nodes made and dropped, a collection every 1000",
        true,
    ),
    (
        "churn",
        "200 times: 5000 nodes with random back edges built, dropped, collected",
        true,
    ),
    (
        "live-graph",
        "a live random graph of 200k nodes: 20 times 1000 nodes touched and a collection",
        true,
    ),
];

/// A new node, counted.
#[inline]
fn mk<C: Collector>(id: u32) -> C::P {
    count_new();
    C::node(id)
}

/// Runs workload `name` under `C`; `None` if there is no such workload. Every handle is dropped and
/// two collections run at the end, so what is not dropped then has leaked.
pub fn run<C: Collector>(name: &str, quick: bool, p: &mut Pauses) -> Option<Report> {
    let q = |full: usize, small: usize| if quick { small } else { full };
    let mut report = Report::default();
    match name {
        "trees" => trees::<C>(q(20, 15) as u32, q(3, 2), false, p),
        "parent-trees" => trees::<C>(q(18, 13) as u32, q(3, 2), true, p),
        "dlist" => dlist::<C>(q(1_000_000, 50_000), p),
        "random-graph" => random_graph::<C>(q(1_000_000, 50_000), p),
        "rings" => rings::<C>(q(100_000, 5_000), p),
        "churn" => churn::<C>(q(200, 10), 5000, p),
        "live-graph" => report.freed_live = live_graph::<C>(q(200_000, 20_000), q(20, 5), p),
        _ => return None,
    }
    p.step(C::collect);
    p.step(C::collect);
    Some(report)
}

/// A complete binary tree of `depth` levels below `n`; with `parents`, every child's edge 0 is its
/// parent (a cycle per edge).
fn grow<C: Collector>(n: &C::P, depth: u32, id: &mut u32, parents: bool) {
    if depth == 0 {
        return;
    }
    for _ in 0..2 {
        *id += 1;
        let c = mk::<C>(*id);
        if parents {
            C::push(&c, n.clone());
        }
        grow::<C>(&c, depth - 1, id, parents);
        C::push(n, c);
    }
}

/// The sum of the ids below `n`, by reference.
fn sum_tree<C: Collector>(n: &C::P) -> u64 {
    let mut s = u64::from(C::id(n));
    C::each(n, |c| s += sum_tree::<C>(c));
    s
}

fn trees<C: Collector>(depth: u32, times: usize, parents: bool, p: &mut Pauses) {
    for _ in 0..times {
        let mut id = 0;
        let root = mk::<C>(0);
        grow::<C>(&root, depth, &mut id, parents);
        if parents {
            // Walked with a stack of handles, as an interpreter would: every node becomes a possible
            // root for the collectors that buffer them.
            let mut sum = 0u64;
            let mut stack = vec![root.clone()];
            while let Some(n) = stack.pop() {
                sum += u64::from(C::id(&n));
                let first = usize::from(C::id(&n) != 0);
                for i in first..C::degree(&n) {
                    stack.push(C::edge(&n, i).expect("edge"));
                }
                p.step(|| drop(n));
            }
            black_box(sum);
        } else {
            // Walked by reference, as Rust code reading a tree would.
            black_box(sum_tree::<C>(&root));
        }
        p.step(|| drop(root));
        p.step(C::collect);
    }
}

fn dlist<C: Collector>(n: usize, p: &mut Pauses) {
    let head = mk::<C>(0);
    let mut tail = head.clone();
    for i in 1..n as u32 {
        let node = mk::<C>(i);
        C::push(&node, tail.clone()); // prev: edge 0
        C::push(&tail, node.clone()); // next: edge 1 (edge 0 for the head)
        p.step(|| tail = node);
    }
    let mut sum = 0u64;
    let mut cur = Some(head.clone());
    while let Some(c) = cur {
        sum += u64::from(C::id(&c));
        let next = usize::from(C::id(&c) != 0);
        cur = p.step(|| {
            let next = C::edge(&c, next);
            drop(c);
            next
        });
    }
    black_box(sum);
    p.step(|| drop((head, tail)));
    p.step(C::collect);
}

fn random_graph<C: Collector>(ops: usize, p: &mut Pauses) {
    const MAX_ROOTS: usize = 10_000;
    const MAX_DEGREE: usize = 4;
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut roots: Vec<C::P> = Vec::new();
    let mut id = 0;
    for op in 0..ops {
        match rng.below(10) {
            0..=2 => {
                id += 1;
                roots.push(mk::<C>(id));
                if roots.len() > MAX_ROOTS {
                    let r = roots.swap_remove(rng.below(roots.len()));
                    p.step(|| drop(r));
                }
            }
            3..=5 if !roots.is_empty() => {
                let a = rng.below(roots.len());
                let b = roots[rng.below(roots.len())].clone();
                let from = &roots[a];
                if C::degree(from) >= MAX_DEGREE {
                    let old = C::take(from, rng.below(MAX_DEGREE));
                    p.step(|| drop(old));
                }
                C::push(from, b);
            }
            6..=7 if !roots.is_empty() => {
                let r = roots.swap_remove(rng.below(roots.len()));
                p.step(|| drop(r));
            }
            8..=9 if !roots.is_empty() => {
                let a = &roots[rng.below(roots.len())];
                let d = C::degree(a);
                if d > 0 {
                    let old = C::take(a, rng.below(d));
                    p.step(|| drop(old));
                }
            }
            _ => {}
        }
        if op % 100_000 == 99_999 {
            p.step(C::collect);
        }
    }
    p.step(|| drop(roots));
}

fn rings<C: Collector>(count: usize, p: &mut Pauses) {
    for i in 0..count {
        let len = 2 + i % 63;
        let first = mk::<C>(0);
        let mut prev = first.clone();
        for j in 1..len as u32 {
            let n = mk::<C>(j);
            C::push(&prev, n.clone());
            p.step(|| prev = n);
        }
        C::push(&prev, first.clone());
        p.step(|| drop((prev, first)));
        if i % 1000 == 999 {
            p.step(C::collect);
        }
    }
}

/// `n` nodes, each with edges to two random earlier nodes and one random earlier node pointing back.
fn random_nodes<C: Collector>(n: usize, rng: &mut Rng, p: &mut Pauses) -> Vec<C::P> {
    let mut nodes: Vec<C::P> = Vec::with_capacity(n);
    for i in 0..n {
        let node = mk::<C>(i as u32);
        if i > 0 {
            for _ in 0..2 {
                C::push(&node, nodes[rng.below(i)].clone());
            }
            C::push(&nodes[rng.below(i)], node.clone());
        }
        p.step(|| nodes.push(node));
    }
    nodes
}

fn churn<C: Collector>(rounds: usize, n: usize, p: &mut Pauses) {
    let mut rng = Rng(0xC0FF_EE00_D15E_A5E5);
    for _ in 0..rounds {
        let nodes = random_nodes::<C>(n, &mut rng, p);
        p.step(|| drop(nodes));
        p.step(C::collect);
    }
}

/// Returns the nodes dropped while the graph was alive (must be 0).
fn live_graph<C: Collector>(n: usize, rounds: usize, p: &mut Pauses) -> u64 {
    let mut rng = Rng(0x1234_5678_9ABC_DEF1);
    let nodes = random_nodes::<C>(n, &mut rng, p);
    p.step(C::collect);
    let before = dropped();
    for _ in 0..rounds {
        for _ in 0..1000 {
            let t = nodes[rng.below(n)].clone();
            p.step(|| drop(t));
        }
        p.step(C::collect);
    }
    let freed = dropped() - before;
    p.step(|| drop(nodes));
    freed
}
