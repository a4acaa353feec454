//! Puts the target board's memory map where the linker (driven by cortex-m-rt's `link.x`) finds it, as
//! `memory.x` (in OUT_DIR, not the crate root, where the linker would look first): the nRF51 of QEMU's microbit for Cortex-M0 (`thumbv6m`), the LM3S6965 otherwise.

use std::env;
use std::fs;
use std::path::PathBuf;

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR is set by cargo"));
    let target = env::var("TARGET").expect("TARGET is set by cargo");
    let map = if target.starts_with("thumbv6m") {
        "memory-microbit.x"
    } else {
        "memory-lm3s6965.x"
    };
    fs::copy(map, out.join("memory.x")).expect("copy the memory map");
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed={map}");
    println!("cargo:rerun-if-changed=build.rs");
}
