//! `Vec`, `String` and `BTreeMap` on the static heap; the stats report printed while they are alive.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;

use crate::{check, say, Board, Checks};

/// Not inlined: each section's frame is on the stack alone, not summed into `run`'s (the nRF51 has
/// 16 KiB of RAM, half of it the heap).
#[inline(never)]
pub(crate) fn run<B: Board>(c: &mut Checks<B>) {
    say!(c, "\n== collections");
    let squares: Vec<u32> = (0..300).map(|i| i * i).collect(); // 1200 B: a large block
    let sum: u32 = squares.iter().sum();
    check!(
        c,
        sum == (0..300u32).map(|i| i * i).sum::<u32>() && squares[299] == 89_401,
        "Vec<u32> of 300 squares: sum {}",
        sum
    );

    let text = "the quick brown fox jumps over the lazy dog the fox the dog";
    let mut counts: BTreeMap<String, u32> = BTreeMap::new();
    for word in text.split(' ') {
        *counts.entry(String::from(word)).or_insert(0) += 1;
    }
    let the = counts.get("the").copied();
    let firsts: String = counts.keys().map(|k| &k[..1]).collect();
    check!(
        c,
        counts.len() == 8 && the == Some(4) && counts.get("fox") == Some(&2),
        "BTreeMap<String, u32> word count: {} words, \"the\" x{:?}",
        counts.len(),
        the
    );
    check!(
        c,
        firsts == "bdfjloqt",
        "BTreeMap keys in order: {:?}",
        firsts.as_str()
    );

    let mut line = String::new();
    for (word, n) in &counts {
        let _ = write!(line, "{word}={n} ");
    }
    let mut lines: Vec<String> = (0..40).map(|i| alloc::format!("line {i}")).collect();
    lines.retain(|l| l.ends_with('7'));
    check!(
        c,
        line.starts_with("brown=1 dog=2 fox=2") && lines.len() == 4 && lines[3] == "line 37",
        "String building: {:?}",
        line.trim_end()
    );

    let s = c.usage();
    check!(
        c,
        s.bytes_in_use > 0 && s.large_blocks == 1 && s.pools_in_use > 0,
        "stats while live: {} bytes in use, {} pools, {} large block",
        s.bytes_in_use,
        s.pools_in_use,
        s.large_blocks
    );
    say!(
        c,
        "-- stats report (like sys._debugmallocstats()), collections alive:"
    );
    let written = c.report();
    check!(c, written, "report written");

    drop((squares, counts, firsts, line, lines));
}
