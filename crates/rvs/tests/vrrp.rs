//! VRRP between real processes in network namespaces: rvs against rvs and against
//! keepalived 2.2.7 in both roles, v2 (with and without PASS auth) and v3 (sub-second
//! adverts), multicast and unicast, IPv4 and IPv6. Each test checks the election, the
//! failover on SIGTERM / SIGKILL / link down, preemption back, that the VIP is on exactly
//! one node, and that the client's neighbour entry follows the gratuitous ARP.
//!
//! Needs root, `ip` and keepalived; in CI (CI=true) a missing prerequisite fails.
//! Timings are printed, and asserted only loosely (these machines are noisy).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::many_single_char_names,
    clippy::format_push_string
)]

#[path = "common/lab.rs"]
mod lab;

use lab::Lab;
use std::time::Duration;

const DIRS: [&str; 2] = ["a", "b"];

#[derive(Clone, Copy)]
struct Opts<'a> {
    version: u8,
    advert: &'a str,
    auth: Option<&'a str>,
    /// Unicast: our address and the peer's host numbers.
    unicast: Option<(u8, u8)>,
    v6: bool,
}

impl Opts<'_> {
    fn vip(&self) -> &'static str {
        if self.v6 {
            "fd00:198:18::50"
        } else {
            "198.18.0.50"
        }
    }
}

fn conf(state: &str, prio: u8, o: Opts<'_>) -> String {
    let mut c = format!(
        "global_defs {{\n  vrrp_garp_master_delay 1\n}}\n\
         vrrp_instance VI_1 {{\n  state {state}\n  interface eth0\n  virtual_router_id 51\n  \
         priority {prio}\n  advert_int {}\n  version {}\n",
        o.advert, o.version
    );
    if let Some(p) = o.auth {
        c += &format!("  authentication {{\n    auth_type PASS\n    auth_pass {p}\n  }}\n");
    }
    if let Some((me, peer)) = o.unicast {
        let net = if o.v6 { "fd00:198:18::" } else { "198.18.0." };
        c += &format!("  unicast_src_ip {net}{me}\n  unicast_peer {{\n    {net}{peer}\n  }}\n");
    }
    let plen = if o.v6 { 64 } else { 24 };
    c += &format!(
        "  virtual_ipaddress {{\n    {}/{plen} dev eth0\n  }}\n}}\n",
        o.vip()
    );
    c
}

fn lab() -> Lab {
    Lab::new(&[("a", 1), ("b", 2), ("c", 100)])
}

/// The client resolves the VIP now; a later move must be announced by gratuitous ARP
/// (Linux only lets a gratuitous ARP override an entry older than `locktime`, 1 s).
fn client_learns(l: &Lab, owner: &str, vip: &str) {
    l.touch("c", vip);
    let mac = l.mac(owner);
    let ok = Lab::wait(Duration::from_secs(3), || {
        l.neigh("c", vip).as_deref() == Some(&mac)
    });
    assert!(ok.is_some(), "client never resolved {vip} to {owner}");
    std::thread::sleep(Duration::from_millis(1100));
}

fn client_follows(l: &Lab, owner: &str, vip: &str) {
    let mac = l.mac(owner);
    let ok = Lab::wait(Duration::from_secs(3), || {
        l.neigh("c", vip).as_deref() == Some(&mac)
    });
    assert!(
        ok.is_some(),
        "client's neighbour entry for {vip} is {:?}, not {owner}'s {mac}\n{}",
        l.neigh("c", vip),
        l.logs()
    );
}

/// The whole scenario, with `x` as MASTER (priority 150) and `y` BACKUP (100). `start`
/// starts a node's daemon (rvs or keepalived) and returns it.
fn scenario(
    l: &mut Lab,
    o: Opts<'_>,
    start: &mut dyn FnMut(&mut Lab, &str, &str) -> lab::Proc,
    down: Duration,
) {
    let limit = down * 2 + Duration::from_secs(2);
    let vip = o.vip();
    let a_conf = conf(
        "MASTER",
        150,
        Opts {
            unicast: o.unicast,
            ..o
        },
    );
    let b_conf = conf(
        "BACKUP",
        100,
        Opts {
            unicast: o.unicast.map(|(x, y)| (y, x)),
            ..o
        },
    );
    let b = start(l, "b", &b_conf);
    let mut a = start(l, "a", &a_conf);
    let t = l.wait_holder(vip, "a", &DIRS, limit);
    eprintln!("election: a holds {vip} after {t:?}");
    client_learns(l, "a", vip);

    // SIGTERM on the MASTER: priority-0 advert, the backup follows after its skew.
    l.signal(&a, "TERM");
    let t = l.wait_holder(vip, "b", &DIRS, limit);
    eprintln!("SIGTERM: b holds {vip} after {t:?}");
    client_follows(l, "b", vip);
    l.wait_exit(&a, Duration::from_secs(5));

    // The higher priority returns and preempts.
    a = start(l, "a", &a_conf);
    let t = l.wait_holder(vip, "a", &DIRS, limit);
    eprintln!("preempt: a holds {vip} after {t:?}");
    client_follows(l, "a", vip);
    std::thread::sleep(Duration::from_millis(1100));

    // SIGKILL: no goodbye; the backup takes over after Master_Down_Interval. The dead
    // master's VIP stays behind until a new daemon removes it at start.
    l.signal(&a, "KILL");
    let t = Lab::wait(limit, || l.has_addr("b", vip)).expect("b never took over");
    eprintln!("SIGKILL: b holds {vip} after {t:?}");
    client_follows(l, "b", vip);
    l.wait_exit(&a, Duration::from_secs(5));
    a = start(l, "a", &a_conf);
    let t = l.wait_holder(vip, "a", &DIRS, limit);
    eprintln!("restart after SIGKILL: a alone holds {vip} after {t:?}");
    std::thread::sleep(Duration::from_millis(1100));

    // Link down on the MASTER: it goes FAULT (removes the VIP); the backup takes over.
    l.link("a", false);
    let t = l.wait_holder(vip, "b", &DIRS, limit);
    eprintln!("link down: b holds {vip} after {t:?}");
    client_follows(l, "b", vip);
    l.link("a", true);
    let t = l.wait_holder(vip, "a", &DIRS, limit);
    eprintln!("link up: a holds {vip} again after {t:?}");

    l.signal(&a, "TERM");
    l.signal(&b, "TERM");
    l.wait_exit(&a, Duration::from_secs(5));
    l.wait_exit(&b, Duration::from_secs(5));
    assert!(
        l.holders(vip, &DIRS).is_empty(),
        "a graceful stop leaves no VIP behind"
    );
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Daemon {
    Rvs,
    Keepalived,
}

/// Runs the scenario with `a` (the MASTER) and `b` run by these daemons.
fn pair(a: Daemon, b: Daemon, o: Opts<'_>, down: Duration) {
    if !lab::prerequisites(a == Daemon::Keepalived || b == Daemon::Keepalived) {
        return;
    }
    let mut l = lab();
    let mut start = |l: &mut Lab, node: &str, c: &str| match if node == "a" { a } else { b } {
        Daemon::Rvs => l.rvs(node, c, &["-P"]),
        Daemon::Keepalived => l.keepalived(node, c),
    };
    scenario(&mut l, o, &mut start, down);
}

const V2: Opts<'static> = Opts {
    version: 2,
    advert: "1",
    auth: None,
    unicast: None,
    v6: false,
};
const V3_FAST: Opts<'static> = Opts {
    version: 3,
    advert: "0.1",
    auth: None,
    unicast: None,
    v6: false,
};
const FAST: Duration = Duration::from_millis(400);
const SLOW: Duration = Duration::from_secs(4);

#[test]
fn rvs_master_keepalived_backup_v3_multicast() {
    pair(Daemon::Rvs, Daemon::Keepalived, V3_FAST, FAST);
}

#[test]
fn keepalived_master_rvs_backup_v3_multicast() {
    pair(Daemon::Keepalived, Daemon::Rvs, V3_FAST, FAST);
}

#[test]
fn rvs_master_keepalived_backup_v2_pass_auth() {
    let o = Opts {
        auth: Some("s3cret"),
        ..V2
    };
    pair(Daemon::Rvs, Daemon::Keepalived, o, SLOW);
}

#[test]
fn keepalived_master_rvs_backup_v2_unicast() {
    let o = Opts {
        unicast: Some((1, 2)),
        ..V2
    };
    pair(Daemon::Keepalived, Daemon::Rvs, o, SLOW);
}

#[test]
fn rvs_pair_v3_unicast() {
    let o = Opts {
        unicast: Some((1, 2)),
        ..V3_FAST
    };
    pair(Daemon::Rvs, Daemon::Rvs, o, FAST);
}

#[test]
fn rvs_pair_ipv6_multicast() {
    let o = Opts {
        v6: true,
        ..V3_FAST
    };
    pair(Daemon::Rvs, Daemon::Rvs, o, FAST);
}

#[test]
fn rvs_master_keepalived_backup_ipv6() {
    let o = Opts {
        v6: true,
        ..V3_FAST
    };
    pair(Daemon::Rvs, Daemon::Keepalived, o, FAST);
}
