//! Puts the board's memory map where the linker finds it, as `memory.x` in OUT_DIR: the nRF51 of QEMU's
//! microbit for Arm, QEMU's virt machine for RISC-V.

use std::env;
use std::fs;
use std::path::PathBuf;

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR is set by cargo"));
    let target = env::var("TARGET").expect("TARGET is set by cargo");
    let map = if target.starts_with("riscv") {
        "memory-virt.x"
    } else {
        "memory-microbit.x"
    };
    fs::copy(map, out.join("memory.x")).expect("copy the memory map");
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed={map}");
    println!("cargo:rerun-if-changed=build.rs");
}
