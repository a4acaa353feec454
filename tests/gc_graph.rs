//! The collector's graph driver (`tests/drivers/gc_graph.rs`) from fixed seeds: random mutation programs,
//! checked after every collection against a reachability oracle.
#![cfg(feature = "std")] // per-thread collector state; the no_std design is tested in gc_nostd.rs

#[path = "drivers/gc_graph.rs"]
mod gc_graph;

/// xorshift64* bytes.
fn program(seed: u64, len: usize) -> Vec<u8> {
    let mut s = seed | 1;
    (0..len)
        .map(|_| {
            s ^= s >> 12;
            s ^= s << 25;
            s ^= s >> 27;
            (s.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8
        })
        .collect()
}

#[test]
fn fixed_seeds() {
    let (seeds, len) = if cfg!(miri) { (4, 300) } else { (120, 3000) };
    for seed in 0..seeds {
        gc_graph::run(&program(seed, len));
    }
}

#[test]
fn edge_heavy_programs() {
    // Bias towards node creation and edges, so big strongly connected components form.
    let (seeds, len) = if cfg!(miri) { (2, 300) } else { (30, 5000) };
    for seed in 0..seeds {
        let p: Vec<u8> = program(seed ^ 0xABCD, len)
            .into_iter()
            .map(|b| match b % 4 {
                0 => 0,
                1 => 1,
                _ => b,
            })
            .collect();
        gc_graph::run(&p);
    }
}

#[test]
fn empty_and_tiny_programs() {
    gc_graph::run(&[]);
    gc_graph::run(&[0]);
    gc_graph::run(&[0, 1, 0, 0, 3, 0, 8]);
    gc_graph::run(&[0, 0, 1, 0, 1, 1, 1, 0, 3, 0, 3, 0, 8, 5, 0, 6, 0]);
}

/// The same programs with a work budget on automatic collections: a bounded analysis of part of the
/// graph must never free anything reachable, and the explicit (unbounded) collections still find all.
#[test]
fn fixed_seeds_with_a_work_budget() {
    let (seeds, len) = if cfg!(miri) { (3, 300) } else { (60, 3000) };
    for seed in 0..seeds {
        poolgc::gc::set_work_budget(Some(1 + seed as usize % 9));
        gc_graph::run(&program(seed ^ 0x5EED, len));
    }
    poolgc::gc::set_work_budget(None);
}
