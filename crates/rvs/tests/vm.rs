//! Against a real IPVS kernel: `tests/vm/run.sh` boots Debian's stock kernel (which has
//! IPVS; this host's has none) under qemu (TCG) with the rvs binary inside and runs a
//! scenario there. Needs qemu-system-x86_64, busybox-static, cpio, kmod, keepalived and apt access for
//! the kernel package (`.ci/run` installs them); in CI (CI=true) a missing one fails.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

/// qemu and what builds the VM image: a missing one fails the test, naming it.
fn require() {
    let have = |c: &str| {
        Command::new("sh")
            .args(["-c", &format!("command -v {c}")])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    let missing: Vec<&str> = [
        "qemu-system-x86_64",
        "busybox",
        "cpio",
        "depmod",
        "apt-get",
        "strip",
        "keepalived",
    ]
    .into_iter()
    .filter(|c| !have(c))
    .collect();
    assert!(
        missing.is_empty(),
        "the VM tests cannot run: missing {missing:?} (.ci/run installs them)"
    );
}

fn run(scenario: &str) -> (i32, String) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = Command::new("bash")
        .arg(root.join("tests/vm/run.sh"))
        .arg(root.join("tests/vm/scenarios").join(scenario))
        .arg(env!("CARGO_BIN_EXE_rvs"))
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

/// The same 40 new connections per scheduler through the kernel's IPVS (LVS-DR, three
/// real servers of weights 1, 2, 3, connections held open) and through `rvs sim`: every
/// deterministic scheduler picks the same real server for every connection (`twos` is
/// random by design and left out).
#[test]
#[ignore = "needs qemu and a Debian kernel package; boots a VM for minutes: ./test.sh runs it as root"]
fn schedulers_agree_with_kernel_ipvs() {
    require();
    let (code, out) = run("sched-diff");
    eprintln!("{out}");
    assert_eq!(code, 0, "{out}");
    for s in [
        "rr", "wrr", "lc", "wlc", "sed", "nq", "sh", "dh", "mh", "lblc", "lblcr", "fo", "ovf",
    ] {
        assert!(
            out.contains(&format!("{s}: 40 of 40 connections scheduled identically")),
            "{s}\n{out}"
        );
    }
}

/// `rvs run --dataplane ipvs` programs the kernel's IPVS over netlink: `ipvsadm -Ln` and
/// `rvs adm -Ln` print the same table; NAT and DR forward to both real servers; a failed
/// `TCP_CHECK` removes the real server from the kernel and recovery restores it; a reload
/// removes another real server without resetting an unchanged one's kernel counters;
/// stopping removes rvs's services; `lvs_flush` / `lvs_flush_on_stop` empty the table;
/// `net_namespace_ipvs` programs another namespace's table.
#[test]
#[ignore = "needs qemu and a Debian kernel package; boots a VM for minutes: ./test.sh runs it as root"]
fn ipvs_data_plane_drives_the_kernel() {
    require();
    scenario_passes(
        "ipvs-dataplane",
        &[
            "PASS ipvsadm -Ln equals rvs adm -Ln",
            "PASS lvs_timeouts written to the kernel",
            "PASS NAT through kernel IPVS",
            "PASS DR through kernel IPVS",
            "PASS rvs adm -Ln and -Lnc show the kernel's counts and connections",
            "PASS a failed TCP_CHECK removed",
            "PASS recovery restored it",
            "PASS reload removed rs2 and kept rs1 untouched",
            "PASS rvs adm -Z zeroes the kernel's counters",
            "PASS the sync daemon starts, lists as ipvsadm lists it, refuses a second start, stops",
            "PASS stop removed rvs's services",
            "PASS keepalived -n -f programs kernel IPVS and cleans up at stop",
            "PASS lvs_flush emptied the kernel's table at start",
            "PASS lvs_flush_on_stop emptied the kernel's table at stop",
            "PASS net_namespace_ipvs programs another namespace's IPVS and cleans up there",
        ],
    );
}

/// `lvs_sync_daemon IFNAME INSTANCE`: the kernel's sync daemon runs as backup while the
/// VRRP instance is BACKUP and as master once it is MASTER; stopping rvs stops it.
#[test]
#[ignore = "needs qemu and a Debian kernel package; boots a VM for minutes: ./test.sh runs it as root"]
fn sync_daemon_follows_vrrp() {
    require();
    scenario_passes(
        "sync-follow",
        &[
            "PASS backup sync daemon while the instance is BACKUP",
            "PASS master sync daemon once the instance is MASTER",
            "PASS stopping rvs stops the sync daemon",
        ],
    );
}

/// IPv6 through the kernel's IPVS: listings byte-identical to ipvsadm's, NAT to both real
/// servers, the connection table, a failed check over IPv6, stop.
#[test]
#[ignore = "needs qemu and a Debian kernel package; boots a VM for minutes: ./test.sh runs it as root"]
fn ipv6_through_kernel_ipvs() {
    require();
    scenario_passes(
        "ipv6",
        &[
            "PASS ipvsadm -Ln equals rvs adm -Ln for an IPv6 service",
            "PASS IPv6 NAT through kernel IPVS",
            "PASS rvs adm -Ln and -Lnc show the kernel's IPv6 counts and connections",
            "PASS a failed TCP_CHECK over IPv6 removed",
            "PASS stop removed the IPv6 service",
        ],
    );
}

/// LVS-TUN against real IP-in-IP real servers (the guest's kernel has ipip): `rvs doctor`
/// finds the real server without the VIP on `tunl0` and the one with strict reverse-path
/// filtering, passes the right one and warns that full-size packets do not fit the
/// tunnel; `rvs_forwarding_path_check` keeps the two out of the kernel's table with the
/// reason, and clients reach the right one through the kernel's IPVS.
#[test]
#[ignore = "needs qemu and a Debian kernel package; boots a VM for minutes: ./test.sh runs it as root"]
fn tunnel_paths_are_probed_through_ipip() {
    require();
    scenario_passes(
        "tun-path",
        &[
            "PASS rvs doctor probes LVS-TUN real servers through IP-in-IP",
            "PASS rvs doctor warns that full-size packets do not fit the tunnel",
            "PASS rvs_forwarding_path_check keeps out the TUN real servers",
            "PASS clients reach rs1 through kernel IPVS TUN",
        ],
    );
}

/// The IPVS connection sync protocol between the kernel's sync daemon and rvs's (XDP
/// data plane), both ways, with connections that survive a failover from the kernel's
/// director to rvs's (`tests/vm/scenarios/sync-xdp`).
#[test]
#[ignore = "needs qemu and a Debian kernel package; boots a VM for minutes: ./test.sh runs it as root"]
fn sync_interoperates_with_the_kernels_daemon() {
    require();
    scenario_passes(
        "sync-xdp",
        &[
            "PASS rvs (backup) learns the kernel master's 20 connections with their real servers",
            "PASS the 20 connections go on through rvs after the failover",
            "PASS the kernel (backup) learns rvs master's 20 connections with their real servers",
        ],
    );
}

/// The classic active/backup pair, keepalived 2.2.7 beside rvs on the same kernel IPVS
/// and the same keepalived.conf (VRRP, LVS-DR `rr`, with and without
/// `lvs_sync_daemon`): 40 long-lived connections through the MASTER's link going down —
/// none broken with the sync, every one without, for both (`tests/vm/scenarios/ab-compare`;
/// its RESULT lines are the comparison figures of docs/BENCHMARKS.md).
#[test]
#[ignore = "needs qemu, a Debian kernel package and keepalived; boots a VM for minutes: ./test.sh runs it as root"]
fn keepalived_and_rvs_fail_over_alike_on_kernel_ipvs() {
    require();
    scenario_passes(
        "ab-compare",
        &[
            "PASS keepalived + IPVS with lvs_sync_daemon: no connection broken by the failover",
            "PASS keepalived + IPVS without sync: every connection broken by the failover",
            "PASS rvs on the same file and kernel: the same (0 with sync, 40 without)",
        ],
    );
}

/// Runs a scenario and requires exit 0 and every PASS line.
fn scenario_passes(name: &str, steps: &[&str]) {
    let (code, out) = run(name);
    eprintln!("{out}");
    assert_eq!(code, 0, "{out}");
    for step in steps {
        assert!(out.contains(step), "{step}\n{out}");
    }
}
