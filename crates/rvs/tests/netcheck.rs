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

/// The whole log of the `n`th process started in `node` by `spawn_cmd`.
fn cmd_log(l: &Lab, node: &str, n: usize) -> String {
    std::fs::read_to_string(l.dir.join(format!("{node}-cmd{n}.log"))).unwrap_or_default()
}

/// `BFD_CHECK` against keepalived 2.2.7's BFD process on the real server: the session
/// comes Up (the `alpha` real server enters the table), keepalived's BFD process is
/// frozen (SIGSTOP) and the real server leaves within the detection time (3 × 100 ms,
/// plus polling), it resumes and the real server returns; stopping rvs sends `AdminDown`,
/// which keepalived logs as "Neighbor Signaled Session Down".
#[test]
fn bfd_check_follows_a_keepalived_bfd_session() {
    if !lab::prerequisites(true) {
        return;
    }
    let mut l = Lab::new(&[("lb", 1), ("rs", 11)]);
    let ka_conf = l.dir.join("rs-bfd.conf");
    std::fs::write(
        &ka_conf,
        "global_defs {\n    router_id rs\n}\nbfd_instance to_lb {\n    neighbor_ip 198.18.0.1\n    source_ip 198.18.0.11\n    min_rx 100\n    min_tx 100\n    multiplier 3\n}\n",
    )
    .unwrap();
    let pid = |p: &str| l.dir.join(format!("ka-{p}.pid")).display().to_string();
    let (main_pid, bfd_pid) = (pid("main"), pid("bfd"));
    let ka_n = 0;
    l.spawn_cmd(
        "rs",
        &[
            "keepalived",
            "-n",
            "-l",
            "-D",
            "-f",
            &ka_conf.display().to_string(),
            "-p",
            &main_pid,
            "-r",
            &pid("vrrp"),
            "-c",
            &pid("check"),
            "-b",
            &bfd_pid,
        ],
    );
    let conf = "bfd_instance to_rs {\n    neighbor_ip 198.18.0.11\n    source_ip 198.18.0.1\n    min_rx 100\n    min_tx 100\n    multiplier 3\n}\n\
                virtual_server 198.18.0.1 8080 {\n    delay_loop 1\n    lvs_sched rr\n    lvs_method NAT\n    protocol TCP\n    \
                real_server 198.18.0.11 80 {\n        BFD_CHECK {\n            name to_rs\n            alpha\n        }\n    }\n}\n";
    let rvs = l.rvs("lb", conf, &[]);
    let rvs_n = 1;
    // alpha: out until the session is Up (three-way handshake at the 1 s idle rate).
    let up = wait_listed(
        &l,
        "lb",
        rvs_n,
        "198.18.0.11:80",
        true,
        Duration::from_secs(10),
    );
    eprintln!("session Up, real server in after {up:?}");
    assert!(
        Lab::wait(Duration::from_secs(3), || cmd_log(&l, "rs", ka_n)
            .contains("(to_lb) Entering Up state"))
        .is_some(),
        "keepalived's side did not come Up:\n{}",
        cmd_log(&l, "rs", ka_n)
    );
    // Freeze keepalived's BFD process: silence, the session expires on rvs's side.
    let child: i32 = std::fs::read_to_string(&bfd_pid)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let sig = |s: &str| {
        assert!(Command::new("kill")
            .args([&format!("-{s}"), &child.to_string()])
            .status()
            .unwrap()
            .success());
    };
    sig("STOP");
    let out = wait_listed(
        &l,
        "lb",
        rvs_n,
        "198.18.0.11:80",
        false,
        Duration::from_secs(5),
    );
    eprintln!("real server out {out:?} after the BFD peer froze (detection time 300 ms)");
    assert!(out < Duration::from_secs(2), "{out:?}");
    sig("CONT");
    let back = wait_listed(
        &l,
        "lb",
        rvs_n,
        "198.18.0.11:80",
        true,
        Duration::from_secs(10),
    );
    eprintln!("back {back:?} after the peer resumed");
    // The operator interface shows the session.
    let st = Command::new(env!("CARGO_BIN_EXE_rvs"))
        .args(["status"])
        .env("RVS_CONTROL", l.control("lb", rvs_n))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&st.stdout);
    assert!(
        text.contains("to_rs to 198.18.0.11: Up (remote Up), detection 300 ms"),
        "status: {text}"
    );
    // rvs stops: AdminDown reaches keepalived, which goes Down at once.
    l.signal(&rvs, "TERM");
    l.wait_exit(&rvs, Duration::from_secs(10));
    assert!(
        Lab::wait(Duration::from_secs(3), || cmd_log(&l, "rs", ka_n)
            .contains("Neighbor Signaled Session Down"))
        .is_some(),
        "keepalived did not hear AdminDown:\n{}",
        cmd_log(&l, "rs", ka_n)
    );
    let _ = main_pid;
}
