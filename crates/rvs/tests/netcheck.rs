//! Health checks that need a network of their own: `PING_CHECK` against a real server in
//! a namespace that stops answering echo requests, and `BFD_CHECK` against keepalived's
//! BFD process. Real processes in network namespaces (198.18.0.0/24).
//!
//! Needs root, `ip` and keepalived; in CI (CI=true) a missing prerequisite fails.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::format_push_string)]

#[path = "common/lab.rs"]
mod lab;

use lab::Lab;
use std::process::Command;
use std::time::Duration;

/// `rvs adm -Ln` of the `n`th process started in `node`.
fn table(l: &Lab, node: &str, n: usize) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_rvs"))
        .args(["adm", "-Ln"])
        .env("RVS_CONTROL", l.control(node, n))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn sysctl(l: &Lab, node: &str, kv: &str) {
    let st = Command::new("ip")
        .args(["netns", "exec", &l.ns(node), "sysctl", "-q", "-w", kv])
        .status()
        .unwrap();
    assert!(st.success(), "sysctl {kv}");
}

/// Waits until `rvs adm -Ln` does (or does not) list `rs`; the time it took.
fn wait_listed(l: &Lab, node: &str, n: usize, rs: &str, listed: bool, limit: Duration) -> Duration {
    let took = Lab::wait(limit, || table(l, node, n).contains(rs) == listed);
    took.unwrap_or_else(|| {
        panic!(
            "{rs} {} after {limit:?}:\n{}\n{}",
            if listed { "not listed" } else { "still listed" },
            table(l, node, n),
            l.logs()
        )
    })
}

/// `PING_CHECK` as root in a namespace whose `ping_group_range` excludes root (the
/// default): rvs falls back to a raw ICMP socket. The real server stops answering echo
/// requests (`icmp_echo_ignore_all`) and leaves the table; it answers again and returns.
#[test]
fn ping_check_follows_echo_replies() {
    if !lab::prerequisites(false) {
        return;
    }
    let mut l = Lab::new(&[("lb", 1), ("rs", 11)]);
    let conf = "virtual_server 198.18.0.1 8080 {\n    delay_loop 1\n    lvs_sched rr\n    lvs_method NAT\n    protocol TCP\n    real_server 198.18.0.11 80 {\n        PING_CHECK {\n            connect_timeout 1\n            retry 0\n            warmup 0\n        }\n    }\n}\n";
    l.rvs("lb", conf, &[]);
    wait_listed(&l, "lb", 0, "198.18.0.11:80", true, Duration::from_secs(5));
    // Two rounds of successful echoes keep it in.
    std::thread::sleep(Duration::from_millis(2200));
    assert!(
        table(&l, "lb", 0).contains("198.18.0.11:80"),
        "{}",
        l.logs()
    );
    sysctl(&l, "rs", "net.ipv4.icmp_echo_ignore_all=1");
    let out = wait_listed(&l, "lb", 0, "198.18.0.11:80", false, Duration::from_secs(5));
    eprintln!("removed {out:?} after echo replies stopped");
    sysctl(&l, "rs", "net.ipv4.icmp_echo_ignore_all=0");
    let back = wait_listed(&l, "lb", 0, "198.18.0.11:80", true, Duration::from_secs(5));
    eprintln!("back {back:?} after echo replies resumed");
}
