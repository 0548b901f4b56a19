//! Compiles the XDP steering program (bpf/steer.bpf.c) with clang into an eBPF object that the
//! crate embeds. Fails the build with a clear message when clang (or its BPF target) is missing.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let src = PathBuf::from("bpf/steer.bpf.c");
    println!("cargo:rerun-if-changed={}", src.display());
    println!("cargo:rerun-if-env-changed=RAMPART_CLANG");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("steer.bpf.o");
    let clang = std::env::var("RAMPART_CLANG").unwrap_or_else(|_| "clang".to_string());

    let result = Command::new(&clang)
        .args(["-O2", "-g", "-target", "bpf", "-Wall", "-Werror", "-fno-stack-protector", "-c"])
        .arg(&src)
        .arg("-o")
        .arg(&out)
        .output();
    match result {
        Err(e) => {
            eprintln!(
                "\nerror: rampart-nic needs clang with the BPF target to build its XDP program \
                 ({clang:?} could not be run: {e}).\n\
                 Install it (Debian: apt-get install clang) or point RAMPART_CLANG at a clang binary.\n"
            );
            std::process::exit(1);
        }
        Ok(o) if !o.status.success() => {
            eprintln!(
                "\nerror: {clang} failed to compile {} for the BPF target ({}):\n{}{}",
                src.display(),
                o.status,
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
            std::process::exit(1);
        }
        Ok(_) => {}
    }
}
