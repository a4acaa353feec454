//! One name for a condition the code tests in many places: `poolgc_fork` is set where poolgc installs
//! `pthread_atfork` handlers (feature `std` and `os` on Unix, with the spin lock: a critical section
//! cannot be held across `fork`). Miri and loom are still tested at each use (they are `--cfg`s).
fn main() {
    println!("cargo::rustc-check-cfg=cfg(poolgc_fork)");
    let feature = |name: &str| std::env::var_os(format!("CARGO_FEATURE_{name}")).is_some();
    let unix = std::env::var_os("CARGO_CFG_UNIX").is_some();
    if unix && feature("STD") && feature("OS") && !feature("CRITICAL_SECTION") {
        println!("cargo::rustc-cfg=poolgc_fork");
    }
}
