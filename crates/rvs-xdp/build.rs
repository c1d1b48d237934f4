//! Compiles `bpf/lb.bpf.c` with clang (`-target bpf`). Without clang the crate still
//! builds: the object is empty, and loading it says what to install.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=bpf/lb.bpf.c");
    println!("cargo:rerun-if-env-changed=CLANG");
    println!("cargo:rustc-check-cfg=cfg(rvs_xdp_no_bpf)");
    let out =
        PathBuf::from(std::env::var("OUT_DIR").unwrap_or_else(|_| ".".into())).join("lb.bpf.o");
    let clang = std::env::var("CLANG").unwrap_or_else(|_| "clang".into());
    let arch = match std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() {
        Ok("aarch64") => "aarch64-linux-gnu",
        _ => "x86_64-linux-gnu",
    };
    let status = Command::new(&clang)
        .args(["-O2", "-g", "-target", "bpf", "-mcpu=v3", "-Wall"])
        .arg(format!("-I/usr/include/{arch}"))
        .args(["-c", "bpf/lb.bpf.c", "-o"])
        .arg(&out)
        .status();
    match status {
        Ok(s) if s.success() => {}
        other => {
            println!(
                "cargo:warning=rvs-xdp: cannot compile bpf/lb.bpf.c with {clang} ({other:?}); \
                 --dataplane xdp will not start (install clang and libbpf-dev)"
            );
            println!("cargo:rustc-cfg=rvs_xdp_no_bpf");
            let _ = std::fs::write(&out, b"");
        }
    }
}
