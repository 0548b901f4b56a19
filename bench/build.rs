//! Builds the benchmark-only shim over intel-ipsec-mb when its header is installed
//! (`libipsec-mb-dev`, see scripts/setup.sh), and sets `cfg(ipsec_mb)`. Without it the
//! benchmarks still build and leave the intel-ipsec-mb column out.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(ipsec_mb)");
    println!("cargo::rerun-if-changed=csrc/ipsec_mb_shim.c");
    println!("cargo::rerun-if-changed=/usr/include/intel-ipsec-mb.h");
    let x86_64 = std::env::var("CARGO_CFG_TARGET_ARCH").is_ok_and(|a| a == "x86_64");
    if !x86_64 || !std::path::Path::new("/usr/include/intel-ipsec-mb.h").exists() {
        println!("cargo::warning=intel-ipsec-mb not found: benchmarks run without it");
        return;
    }
    cc::Build::new().file("csrc/ipsec_mb_shim.c").opt_level(2).warnings(true).compile("rampart_ipsec_mb_shim");
    println!("cargo::rustc-link-lib=IPSec_MB");
    println!("cargo::rustc-cfg=ipsec_mb");
}
