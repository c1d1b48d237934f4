//! Compiles `bpf/lb.bpf.c` (and `bpf/pass.bpf.c`, the lab's pass program) with clang
//! (`-target bpf`). Without clang the crate still builds: the objects are empty, and
//! loading one says what to install.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=bpf/lb.bpf.c");
    println!("cargo:rerun-if-changed=bpf/pass.bpf.c");
    println!("cargo:rerun-if-changed=bpf/rotation.h");
    println!("cargo:rerun-if-env-changed=CLANG");
    println!("cargo:rustc-check-cfg=cfg(rvs_xdp_no_bpf)");
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").unwrap_or_else(|_| ".".into()));
    let clang = std::env::var("CLANG").unwrap_or_else(|_| "clang".into());
    let arch = match std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() {
        Ok("aarch64") => "aarch64-linux-gnu",
        _ => "x86_64-linux-gnu",
    };
    let mut built = true;
    for name in ["lb", "pass"] {
        let out = out_dir.join(format!("{name}.bpf.o"));
        let status = Command::new(&clang)
            .args(["-O2", "-g", "-target", "bpf", "-mcpu=v3", "-Wall"])
            .arg(format!("-I/usr/include/{arch}"))
            .arg("-c")
            .arg(format!("bpf/{name}.bpf.c"))
            .arg("-o")
            .arg(&out)
            .status();
        match status {
            Ok(s) if s.success() => {}
            other => {
                println!(
                    "cargo:warning=rvs-xdp: cannot compile bpf/{name}.bpf.c with {clang} \
                     ({other:?}); --dataplane xdp will not start (install clang and libbpf-dev)"
                );
                built = false;
                let _ = std::fs::write(&out, b"");
            }
        }
    }
    if !built {
        println!("cargo:rustc-cfg=rvs_xdp_no_bpf");
    }
}
