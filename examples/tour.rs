//! A tour of poolgc: `cargo run --release --example tour`.
//!
//! This program's own global allocator is poolgc; every `Vec`, `String` and `Box` below comes from its pools.

use poolgc::size_class::{block_size, class_of, effective_size};
use poolgc::PoolAlloc;

#[global_allocator]
static ALLOC: PoolAlloc = PoolAlloc::new();

fn main() {
    println!("== 1. Requests land in 16-byte size classes (pymalloc's rule) ==");
    println!(
        "{:>8} {:>7} {:>11}  where it went",
        "request", "class", "block size"
    );
    let mut kept: Vec<Box<[u8]>> = Vec::new();
    for size in [1, 16, 17, 100, 512, 513, 100_000] {
        let before = ALLOC.stats();
        kept.push(vec![0xAB; size].into_boxed_slice());
        let after = ALLOC.stats();
        let e = effective_size(size, 1);
        if after.large_blocks > before.large_blocks {
            println!(
                "{size:>8} {:>7} {:>11}  large: an OS mapping of its own",
                "-", "-"
            );
        } else {
            let c = class_of(e);
            println!(
                "{size:>8} {c:>7} {:>11}  a pool of class {c} ({} blocks of it in use now)",
                block_size(c),
                after.classes[c].blocks_in_use
            );
        }
    }

    println!("\n== 2. Many small objects: pools fill up, arenas are taken from the OS ==");
    let before = ALLOC.stats();
    let strings: Vec<String> = (0..200_000).map(|i| format!("object number {i}")).collect();
    let during = ALLOC.stats();
    print_stats("before", &before);
    print_stats("with 200,000 strings", &during);

    println!("\n== 3. The report, like CPython's sys._debugmallocstats() ==\n");
    let mut report = String::new();
    ALLOC.report(&mut report).unwrap();
    print!("{report}");

    println!(
        "\n== 4. Free them: empty pools go back to their arenas, empty arenas back to the OS =="
    );
    drop(strings);
    drop(kept);
    let after = ALLOC.stats();
    print_stats("after freeing", &after);
    println!(
        "  arenas reclaimed so far: {} (one spare kept against thrashing)",
        after.arenas_reclaimed
    );
    let trimmed = ALLOC.trim();
    println!("  trim() gave back the spare: {trimmed} bytes");
    ALLOC.check().expect("heap invariants hold");
    println!("  Heap::check(): every invariant holds");
}

fn print_stats(label: &str, s: &poolgc::Stats) {
    println!(
        "  {label:<22} in use {:>11} B   peak {:>11} B   reserved {:>11} B   arenas {:>3}   pools {:>5}",
        s.bytes_in_use, s.peak_bytes_in_use, s.bytes_reserved, s.arenas, s.pools_in_use
    );
}
