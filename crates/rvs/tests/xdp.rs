//! The XDP data plane end to end, in network namespaces: the seed articles' LVS-DR setup
//! (`rvs lab`: client, two directors with VRRP, two real servers with the VIP on `lo`),
//! NAT with the real servers' route back through the director, and TUN checked by
//! capturing the IP-in-IP packet at the real server (this kernel has no ipip module).
//! Generic XDP mode, and the DR setup once more in native mode.
//!
//! Needs root, `ip` and the XDP program (clang at build time); in CI (CI=true) a missing
//! prerequisite fails.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/lab.rs"]
mod lab;

use lab::Lab;
use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

const VIP: &str = "198.18.0.50";

/// Root, `ip`, and clang (the XDP program is built by it): a missing one fails the test.
fn require() {
    lab::require(false);
    let clang = Command::new("sh")
        .args(["-c", "command -v clang"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        clang,
        "the XDP tests cannot run: clang is missing, so the program was not built (.ci/run installs it)"
    );
}

fn rvs(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_rvs"))
        .args(args)
        .output()
        .unwrap()
}

struct LabUp(String);

impl Drop for LabUp {
    fn drop(&mut self) {
        let _ = rvs(&["lab", "down", "--prefix", &self.0]);
    }
}

fn has_vip(ns: &str) -> bool {
    let o = Command::new("ip")
        .args(["-n", ns, "-o", "addr", "show", "dev", "eth0"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout).contains(&format!(" {VIP}/"))
}

/// Twenty requests from the client reach both real servers, rs1 and rs2.
fn assert_both_real_servers_answer(client: &str, addr: SocketAddr) {
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..20 {
        seen.insert(lab::http_get(client, addr).unwrap());
    }
    assert_eq!(
        seen.into_iter().collect::<Vec<_>>(),
        vec!["rs1".to_owned(), "rs2".to_owned()],
        "the client talked to {addr} and got both real servers' answers"
    );
}

fn vip80() -> SocketAddr {
    SocketAddr::new(VIP.parse().unwrap(), 80)
}

/// `rvs adm -Ln --stats` of a director: (`InPkts`, `OutPkts`) of the VIP service.
fn service_packets(sock: &std::path::Path) -> (u64, u64) {
    service_packets_of(sock, "TCP  198.18.0.50:80")
}

/// (`InPkts`, `OutPkts`) of the service whose `--stats` line starts with `service`.
fn service_packets_of(sock: &std::path::Path, service: &str) -> (u64, u64) {
    let text = lab::rvs_at(sock, &["adm", "-Ln", "--stats"]);
    let line = text
        .lines()
        .find(|l| l.starts_with(service))
        .unwrap_or_else(|| panic!("{text}"));
    let f: Vec<u64> = line
        .split_whitespace()
        .skip(2)
        .map(|w| w.parse().unwrap())
        .collect();
    (f[1], f[2])
}

/// `rvs lab up --prefix PREFIX EXTRA...`, the VIP answering through dir1, then 20
/// requests through the VIP reaching both real servers (rr), and the director's
/// service counters a second later: requests in, no reply (DR). Returns the lab's
/// guard (it takes the lab down) and its directory.
fn dr_lab_serves(prefix: &str, extra: &[&str]) -> (LabUp, std::path::PathBuf) {
    let mut args = vec!["lab", "up", "--prefix", prefix];
    args.extend_from_slice(extra);
    let up = rvs(&args);
    let guard = LabUp(prefix.to_owned());
    assert!(
        up.status.success(),
        "rvs {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&up.stderr)
    );
    let dir = std::env::temp_dir().join(format!("rvs-lab-{prefix}"));
    let client = format!("{prefix}-client");
    let served = Lab::wait(Duration::from_secs(10), || {
        has_vip(&format!("{prefix}-dir1")) && lab::http_get(&client, vip80()).is_ok()
    });
    assert!(
        served.is_some(),
        "the VIP never answered\n{}",
        lab_logs(&dir)
    );
    assert_both_real_servers_answer(&client, vip80());
    // DR: the requests went through the director, the replies did not.
    std::thread::sleep(Duration::from_millis(1300));
    let (inp, outp) = service_packets(&dir.join("dir1.sock"));
    assert!(inp > 20, "{inp} packets in");
    assert_eq!(outp, 0, "replies must go straight to the client in DR mode");
    (guard, dir)
}

fn lab_logs(dir: &std::path::Path) -> String {
    ["dir1-rvs.log", "dir2-rvs.log"]
        .iter()
        .map(|f| std::fs::read_to_string(dir.join(f)).unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n---\n")
}

#[test]
#[ignore = "needs root, network namespaces and clang: ./test.sh runs it as root"]
fn seed_dr_setup_end_to_end_in_rvs_lab() {
    require();
    let prefix = format!("rvx{}", std::process::id() % 100_000);
    let (_guard, dir) = dr_lab_serves(&prefix, &[]);
    let logs = || lab_logs(&dir);
    let client = format!("{prefix}-client");
    // `rvs adm -Z` zeroes what the table shows, although the program's counters (per-CPU
    // BPF maps, copied every second) go on: the copy subtracts the zero's base.
    let z = Command::new(env!("CARGO_BIN_EXE_rvs"))
        .args(["adm", "-Z"])
        .env("RVS_CONTROL", dir.join("dir1.sock"))
        .output()
        .unwrap();
    assert!(z.status.success(), "{}", String::from_utf8_lossy(&z.stderr));
    std::thread::sleep(Duration::from_millis(2300));
    assert_eq!(service_packets(&dir.join("dir1.sock")), (0, 0), "zeroed");
    lab::http_get(&client, vip80()).unwrap();
    std::thread::sleep(Duration::from_millis(1300));
    let (after, _) = service_packets(&dir.join("dir1.sock"));
    assert!(
        (1..20).contains(&after),
        "one request after the zero: {after} packets"
    );

    // A real server fails: its TCP_CHECK takes it out, traffic goes to the other.
    let rs1 = std::fs::read_to_string(dir.join("rs1-http.pid")).unwrap();
    let _ = Command::new("kill").arg(rs1.trim()).status();
    let only_rs2 = Lab::wait(Duration::from_secs(15), || {
        (0..6).all(|_| lab::http_get(&client, vip80()).as_deref() == Ok("rs2"))
    });
    assert!(only_rs2.is_some(), "rs1 never left the pool\n{}", logs());

    // The MASTER director stops: the BACKUP takes the VIP and keeps serving.
    let dir1 = std::fs::read_to_string(dir.join("dir1-rvs.pid")).unwrap();
    let _ = Command::new("kill").arg(dir1.trim()).status();
    let moved = Lab::wait(Duration::from_secs(5), || {
        has_vip(&format!("{prefix}-dir2")) && !has_vip(&format!("{prefix}-dir1"))
    });
    assert!(moved.is_some(), "dir2 never took the VIP\n{}", logs());
    let served = Lab::wait(Duration::from_secs(5), || {
        lab::http_get(&client, vip80()).as_deref() == Ok("rs2")
    });
    assert!(served.is_some(), "no service after failover\n{}", logs());
    for _ in 0..5 {
        assert_eq!(lab::http_get(&client, vip80()).as_deref(), Ok("rs2"));
    }
}

/// The same DR setup with the directors' program in native (driver) mode, where the lab
/// notes say it works on veth: `rvs lab up --xdp-mode native` attaches a pass program to
/// the bridge side of each director's veth and turns the client's TX checksum offload
/// off. Both real servers answer through the VIP, the program is attached in driver
/// mode, and the replies bypass the director.
#[test]
#[ignore = "needs root, network namespaces and clang: ./test.sh runs it as root"]
fn seed_dr_setup_in_native_mode() {
    require();
    let ethtool = Command::new("ethtool").arg("--version").output().is_ok();
    assert!(
        ethtool,
        "the native XDP test cannot run: ethtool is missing (.ci/run installs it)"
    );
    let prefix = format!("rvn{}", std::process::id() % 100_000);
    let (_guard, _dir) = dr_lab_serves(&prefix, &["--xdp-mode", "native"]);
    let link = Command::new("ip")
        .args(["-n", &format!("{prefix}-dir1"), "link", "show", "eth0"])
        .output()
        .unwrap();
    let link = String::from_utf8_lossy(&link.stdout).into_owned();
    assert!(
        link.contains(" xdp ") && !link.contains("xdpgeneric"),
        "not attached in driver mode: {link}"
    );
}

/// The first IP-in-IP packet that reaches namespace `ns` (a raw socket for protocol 4:
/// without an ipip module nobody decapsulates), or `None` after 8 s.
fn capture_ipip(ns: String) -> std::thread::JoinHandle<Option<Vec<u8>>> {
    std::thread::spawn(move || {
        lab::in_ns(&ns, || {
            let s = socket2::Socket::new(
                socket2::Domain::IPV4,
                socket2::Type::RAW,
                Some(socket2::Protocol::from(4)),
            )
            .unwrap();
            s.set_read_timeout(Some(Duration::from_secs(8))).unwrap();
            let mut buf = [0u8; 2048];
            let n = std::io::Read::read(&mut &s, &mut buf).ok()?;
            Some(buf[..n].to_vec())
        })
    })
}

/// A director with the VIP on eth0 and the XDP data plane, for NAT and TUN; `extra`:
/// more `virtual_server` lines.
fn director(l: &mut Lab, method: &str, rport: u16, extra: &str) {
    l.ip_in("dir", &["addr", "add", &format!("{VIP}/32"), "dev", "eth0"]);
    let conf = format!(
        "virtual_server {VIP} 80 {{\n    lb_algo rr\n    lb_kind {method}\n    protocol TCP\n{extra}    \
         real_server 198.18.0.11 {rport} {{\n        weight 1\n    }}\n    \
         real_server 198.18.0.12 {rport} {{\n        weight 1\n    }}\n}}\n"
    );
    l.rvs(
        "dir",
        &conf,
        &["-C", "--dataplane", "xdp", "--xdp-iface", "eth0"],
    );
}

/// Two real servers serving on 8080, routed back through the director (NAT), and the
/// director's XDP NAT service on the VIP.
fn nat_lab() -> Lab {
    require();
    let mut l = Lab::new(&[("dir", 1), ("rs1", 11), ("rs2", 12), ("c", 100)]);
    for rs in ["rs1", "rs2"] {
        // The real servers' route to the client goes through the director (NAT).
        l.ip_in(
            rs,
            &["route", "add", "198.18.0.100/32", "via", "198.18.0.1"],
        );
        l.spawn_cmd(
            rs,
            &[
                env!("CARGO_BIN_EXE_rvs"),
                "lab",
                "serve",
                rs,
                "0.0.0.0:8080",
            ],
        );
    }
    director(&mut l, "NAT", 8080, "");
    l
}

#[test]
#[ignore = "needs root, network namespaces and clang: ./test.sh runs it as root"]
fn nat_rewrites_both_ways_through_the_director() {
    let l = nat_lab();
    let client = l.ns("c");
    let up = Lab::wait(Duration::from_secs(10), || {
        lab::http_get(&client, vip80()).is_ok()
    });
    assert!(up.is_some(), "NAT service never answered\n{}", l.logs());
    assert_both_real_servers_answer(&client, vip80());
    // The program's flow table shows in ipvsadm's listings: an open connection is
    // active and listed ESTABLISHED by -Lnc; closed, it is FIN_WAIT and inactive.
    let sock = l.control("dir", 2);
    let adm = |args: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_rvs"))
            .arg("adm")
            .args(args)
            .env("RVS_CONTROL", &sock)
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let active = |text: &str| -> u64 {
        text.lines()
            .filter(|l| l.trim_start().starts_with("-> 198.18.0.1"))
            .map(|l| l.split_whitespace().nth(4).unwrap().parse::<u64>().unwrap())
            .sum()
    };
    lab::in_ns(&client, || {
        let s = std::net::TcpStream::connect(vip80()).unwrap();
        let me = s.local_addr().unwrap().to_string();
        let seen = Lab::wait(Duration::from_secs(6), || {
            active(&adm(&["-Ln"])) == 1 && adm(&["-Lnc"]).contains(&me)
        });
        let lnc = adm(&["-Lnc"]);
        assert!(seen.is_some(), "{}\n{lnc}", adm(&["-Ln"]));
        let row = lnc.lines().find(|l| l.contains(&me)).unwrap();
        assert!(
            row.starts_with("TCP") && row.contains("ESTABLISHED") && row.contains("198.18.0.50:80"),
            "{row}"
        );
        drop(s);
        let closed = Lab::wait(Duration::from_secs(6), || {
            let lnc = adm(&["-Lnc"]);
            lnc.lines()
                .any(|l| l.contains(&me) && l.contains("FIN_WAIT"))
                && active(&adm(&["-Ln"])) == 0
        });
        assert!(closed.is_some(), "{}\n{}", adm(&["-Ln"]), adm(&["-Lnc"]));
    });
}

/// A real server whose MAC changes (a replaced NIC, a VM moved) keeps its traffic: the
/// XDP data plane follows the kernel's neighbour table (its notifications) and programs
/// the new MAC without a reload. Before, frames kept going to the old MAC, which the
/// real server's interface drops.
#[test]
#[ignore = "needs root, network namespaces and clang: ./test.sh runs it as root"]
fn a_real_servers_new_mac_is_followed_without_a_reload() {
    let l = nat_lab();
    let client = l.ns("c");
    let both = |l: &Lab| -> Result<(), String> {
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..10 {
            seen.insert(lab::http_get(&client, vip80())?);
        }
        let seen: Vec<String> = seen.into_iter().collect();
        if seen == ["rs1", "rs2"] {
            Ok(())
        } else {
            Err(format!("answers from {seen:?}\n{}", l.logs()))
        }
    };
    let up = Lab::wait(Duration::from_secs(10), || both(&l).is_ok());
    assert!(up.is_some(), "NAT service never answered\n{}", l.logs());
    // rs1 gets a new MAC; the director's kernel learns it (as from a gratuitous ARP).
    let new_mac = "02:00:00:00:11:99";
    l.ip_in("rs1", &["link", "set", "dev", "eth0", "address", new_mac]);
    l.ip_in(
        "dir",
        &[
            "neigh",
            "replace",
            "198.18.0.11",
            "lladdr",
            new_mac,
            "dev",
            "eth0",
            "nud",
            "reachable",
        ],
    );
    let followed = Lab::wait(Duration::from_secs(10), || both(&l).is_ok());
    assert!(
        followed.is_some(),
        "rs1 lost its traffic after its MAC changed: {:?}",
        both(&l)
    );
    assert!(l.logs().contains("next-hop MACs changed"), "{}", l.logs());
}

#[test]
#[ignore = "needs root, network namespaces and clang: ./test.sh runs it as root"]
fn tun_sends_ip_in_ip_to_the_real_server() {
    require();
    let mut l = Lab::new(&[("dir", 1), ("rs1", 11), ("rs2", 12), ("c", 100)]);
    director(&mut l, "TUN", 80, "    persistence_timeout 300\n");
    // Without an ipip module the real server cannot decapsulate: capture instead.
    let rs1 = l.ns("rs1");
    let rs2 = l.ns("rs2");
    let t1 = capture_ipip(rs1);
    let t2 = capture_ipip(rs2);
    std::thread::sleep(Duration::from_millis(300));
    let client = l.ns("c");
    let sent = Lab::wait(Duration::from_secs(8), || {
        // The handshake cannot finish (nobody decapsulates); the SYN is what we want.
        let _ = lab::in_ns(&client, || {
            std::net::TcpStream::connect_timeout(&vip80(), Duration::from_millis(300))
        });
        t1.is_finished() || t2.is_finished()
    });
    assert!(sent.is_some(), "no encapsulated packet\n{}", l.logs());
    let got = [t1, t2]
        .into_iter()
        .filter(std::thread::JoinHandle::is_finished)
        .find_map(|t| t.join().unwrap())
        .expect("a real server captured the packet");
    // Outer IPv4: protocol 4 (IP-in-IP), director -> real server.
    assert_eq!(got[0] >> 4, 4);
    assert_eq!(got[9], 4, "outer protocol IPIP");
    assert_eq!(&got[12..16], &[198, 18, 0, 1], "outer source: the director");
    assert!(
        got[16..20] == [198, 18, 0, 11] || got[16..20] == [198, 18, 0, 12],
        "outer destination: a real server"
    );
    // Inner: the client's SYN to VIP:80, unchanged.
    let inner = &got[20..];
    assert_eq!(inner[9], 6, "inner TCP");
    assert_eq!(&inner[12..16], &[198, 18, 0, 100]);
    assert_eq!(&inner[16..20], &[198, 18, 0, 50]);
    assert_eq!(u16::from_be_bytes([inner[22], inner[23]]), 80);
    // The service is persistent: `rvs adm -Lnc` lists the client's template as ipvsadm
    // lists the kernel's (state NONE, client port 0), towards the real server used.
    let real = format!("198.18.0.{}:80", got[19]);
    let adm = |args: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_rvs"))
            .arg("adm")
            .args(args)
            .env("RVS_CONTROL", l.control("dir", 0))
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let listed = Lab::wait(Duration::from_secs(5), || {
        adm(&["-Lnc"]).lines().any(|x| {
            let w: Vec<&str> = x.split_whitespace().collect();
            w.len() == 6
                && w[0] == "TCP"
                && w[2] == "NONE"
                && w[3] == "198.18.0.100:0"
                && w[4] == "198.18.0.50:80"
                && w[5] == real
        })
    });
    assert!(
        listed.is_some(),
        "no template for the client:\n{}",
        adm(&["-Lnc"])
    );
    // ... and counts it as the real server's PersistConn.
    let pc = adm(&["-Ln", "--persistent-conn"]);
    let line = pc
        .lines()
        .find(|x| x.contains(&format!("-> {real}")))
        .unwrap_or_else(|| panic!("{pc}"));
    let w: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(w.get(4), Some(&"1"), "PersistConn of {real}:\n{pc}");
}

/// LVS-DR over IPv6 through the XDP program: the VIP `fd00:198:18::50` on the director's
/// eth0, on the real servers' `lo` (IPv6 neighbour discovery answers only for the
/// receiving interface's addresses, so no ARP-style sysctls are needed); the client
/// reaches both real servers and their replies bypass the director.
#[test]
#[ignore = "needs root, network namespaces and clang: ./test.sh runs it as root"]
fn dr_over_ipv6_reaches_both_real_servers() {
    require();
    let vip6 = "fd00:198:18::50";
    let mut l = Lab::new(&[("dir", 1), ("rs1", 11), ("rs2", 12), ("c", 100)]);
    for rs in ["rs1", "rs2"] {
        l.ip_in(rs, &["addr", "add", &format!("{vip6}/128"), "dev", "lo"]);
        l.spawn_cmd(
            rs,
            &[env!("CARGO_BIN_EXE_rvs"), "lab", "serve", rs, "[::]:80"],
        );
    }
    l.ip_in(
        "dir",
        &[
            "addr",
            "add",
            &format!("{vip6}/128"),
            "dev",
            "eth0",
            "nodad",
        ],
    );
    let conf = format!(
        "virtual_server {vip6} 80 {{\n    lb_algo rr\n    lb_kind DR\n    protocol TCP\n    \
         real_server fd00:198:18::11 80 {{\n        weight 1\n    }}\n    \
         real_server fd00:198:18::12 80 {{\n        weight 1\n    }}\n}}\n"
    );
    l.rvs(
        "dir",
        &conf,
        &["-C", "--dataplane", "xdp", "--xdp-iface", "eth0"],
    );
    let client = l.ns("c");
    let vip: SocketAddr = format!("[{vip6}]:80").parse().unwrap();
    let up = Lab::wait(Duration::from_secs(10), || {
        lab::http_get(&client, vip).is_ok()
    });
    assert!(up.is_some(), "the IPv6 VIP never answered\n{}", l.logs());
    assert_both_real_servers_answer(&client, vip);
    std::thread::sleep(Duration::from_millis(1300));
    let (inp, outp) = service_packets_of(&l.control("dir", 2), &format!("TCP  [{vip6}]:80"));
    assert!(inp > 20, "{inp} packets in");
    assert_eq!(outp, 0, "DR: no reply through the director");
}

/// Node `gw` as a router between the lab's link and 198.19.1.0/24 (198.19.1.254),
/// forwarding without ICMP redirects.
fn router(l: &Lab) {
    l.ip_in("gw", &["addr", "add", "198.19.1.254/24", "dev", "eth0"]);
    for kv in [
        "net.ipv4.ip_forward=1",
        "net.ipv4.conf.all.send_redirects=0",
        "net.ipv4.conf.eth0.send_redirects=0",
    ] {
        let st = Command::new("ip")
            .args(["netns", "exec", &l.ns("gw"), "sysctl", "-qw", kv])
            .status()
            .unwrap();
        assert!(st.success(), "{kv}");
    }
}

/// TUN to a real server behind a router: the director has no route of its own to
/// 198.19.1.0/24 but through the gateway 198.18.0.254, so the encapsulated frame goes
/// to the gateway's MAC, and the gateway forwards it (the outer TTL arrives one below
/// the program's 64). An LVS-DR real server behind the same router is refused at start
/// with the reason (DR only rewrites MACs).
#[test]
#[ignore = "needs root, network namespaces and clang: ./test.sh runs it as root"]
fn tun_reaches_a_real_server_behind_a_router() {
    require();
    let mut l = Lab::new(&[("dir", 1), ("gw", 254), ("far", 11), ("c", 100)]);
    router(&l);
    l.ip_in("far", &["addr", "add", "198.19.1.11/24", "dev", "eth0"]);
    l.ip_in(
        "dir",
        &["route", "add", "198.19.1.0/24", "via", "198.18.0.254"],
    );
    l.ip_in("dir", &["addr", "add", &format!("{VIP}/32"), "dev", "eth0"]);

    // DR to a routed real server: refused, with the reason.
    let dr = l.dir.join("dr.conf");
    std::fs::write(
        &dr,
        format!(
            "virtual_server {VIP} 80 {{\n    lb_algo rr\n    lb_kind DR\n    protocol TCP\n    \
             real_server 198.19.1.11 80 {{\n        weight 1\n    }}\n}}\n"
        ),
    )
    .unwrap();
    let o = Command::new("timeout")
        .args(["20", "ip", "netns", "exec", &l.ns("dir")])
        .arg(env!("CARGO_BIN_EXE_rvs"))
        .args([
            "run",
            "-C",
            "--dataplane",
            "xdp",
            "--xdp-iface",
            "eth0",
            "-f",
        ])
        .arg(&dr)
        .arg("--control")
        .arg(l.dir.join("dr.sock"))
        .arg("--pid-file")
        .arg(l.dir.join("dr.pid"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(
        !o.status.success(),
        "DR to a routed real server started\n{err}"
    );
    assert!(
        err.contains("DR real server 198.19.1.11 is routed through 198.18.0.254"),
        "{err}"
    );

    let conf = format!(
        "virtual_server {VIP} 80 {{\n    lb_algo rr\n    lb_kind TUN\n    protocol TCP\n    \
         real_server 198.19.1.11 80 {{\n        weight 1\n    }}\n}}\n"
    );
    l.rvs(
        "dir",
        &conf,
        &["-C", "--dataplane", "xdp", "--xdp-iface", "eth0"],
    );
    let cap = capture_ipip(l.ns("far"));
    std::thread::sleep(Duration::from_millis(300));
    let client = l.ns("c");
    let sent = Lab::wait(Duration::from_secs(8), || {
        let _ = lab::in_ns(&client, || {
            std::net::TcpStream::connect_timeout(&vip80(), Duration::from_millis(300))
        });
        cap.is_finished()
    });
    assert!(
        sent.is_some(),
        "nothing reached the far real server\n{}",
        l.logs()
    );
    let got = cap.join().unwrap().expect("a captured IP-in-IP packet");
    assert_eq!(got[9], 4, "outer protocol IPIP");
    assert_eq!(&got[12..16], &[198, 18, 0, 1], "outer source: the director");
    assert_eq!(
        &got[16..20],
        &[198, 19, 1, 11],
        "outer destination: the real server"
    );
    assert_eq!(got[8], 63, "forwarded once, by the gateway");
    let inner = &got[20..];
    assert_eq!(&inner[12..16], &[198, 18, 0, 100]);
    assert_eq!(&inner[16..20], &[198, 18, 0, 50]);
}

/// Issue #22: the seed articles' ipvsadm-only LVS-DR director (no VRRP, so no
/// `vrrp_instance` interface to fall back on) runs `--dataplane xdp` without
/// `--xdp-iface`: the program goes on the one interface that reaches the real servers,
/// the log and `rvs status` say which and why, and clients are served. A director whose
/// real servers sit behind two interfaces is refused, naming where each one goes.
#[test]
#[ignore = "needs root, network namespaces and clang: ./test.sh runs it as root"]
fn xdp_without_an_interface_takes_the_one_that_reaches_the_real_servers() {
    require();
    let mut l = Lab::new(&[("dir", 1), ("rs1", 11), ("rs2", 12), ("c", 100)]);
    for rs in ["rs1", "rs2"] {
        l.vip_on_lo(rs, VIP);
        l.spawn_cmd(
            rs,
            &[env!("CARGO_BIN_EXE_rvs"), "lab", "serve", rs, "0.0.0.0:80"],
        );
    }
    l.ip_in("dir", &["addr", "add", &format!("{VIP}/32"), "dev", "eth0"]);
    let conf = format!(
        "virtual_server {VIP} 80 {{\n    lb_algo rr\n    lb_kind DR\n    protocol TCP\n    \
         real_server 198.18.0.11 80 {{\n        weight 1\n    }}\n    \
         real_server 198.18.0.12 80 {{\n        weight 1\n    }}\n}}\n"
    );
    l.rvs("dir", &conf, &["--dataplane", "xdp"]);
    let client = l.ns("c");
    let up = Lab::wait(Duration::from_secs(20), || {
        lab::http_get(&client, vip80()).is_ok()
    });
    assert!(up.is_some(), "the DR service never answered\n{}", l.logs());
    assert_both_real_servers_answer(&client, vip80());
    let status = Command::new(env!("CARGO_BIN_EXE_rvs"))
        .arg("status")
        .env("RVS_CONTROL", l.control("dir", 2))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(
        text.contains("xdp data plane on eth0 (chosen by route to the real servers)"),
        "{text}"
    );
    let logs: String = std::fs::read_dir(&l.dir)
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "log"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .collect();
    assert!(
        logs.contains("XDP data plane on eth0 (chosen by route to the real servers)"),
        "the log says which interface: {logs}"
    );
    // A second link to a second real server: the choice is ambiguous and refused.
    // (A veth pair: this kernel has no dummy links.)
    l.ip_in(
        "dir",
        &[
            "link", "add", "dum0", "type", "veth", "peer", "name", "dum1",
        ],
    );
    l.ip_in("dir", &["addr", "add", "198.19.5.1/24", "dev", "dum0"]);
    l.ip_in("dir", &["link", "set", "dum1", "up"]);
    l.ip_in("dir", &["link", "set", "dum0", "up"]);
    let conf2 = l.dir.join("ambiguous.conf");
    std::fs::write(
        &conf2,
        "virtual_server 198.18.0.51 80 {\n    lb_algo rr\n    lb_kind DR\n    protocol TCP\n    \
         real_server 198.18.0.11 80 {\n    }\n    real_server 198.19.5.2 80 {\n    }\n}\n",
    )
    .unwrap();
    let out = Command::new("ip")
        .args(["netns", "exec", &l.ns("dir")])
        .arg(env!("CARGO_BIN_EXE_rvs"))
        .args(["run", "--dataplane", "xdp", "-f"])
        .arg(&conf2)
        .arg("--control")
        .arg(l.dir.join("ambiguous.sock"))
        .arg("--pid-file")
        .arg(l.dir.join("ambiguous.pid"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains(
            "several interfaces (198.19.5.2 via dum0; 198.18.0.11 via eth0); pass --xdp-iface"
        ),
        "{err}"
    );
}

/// `rvs adm -Lnc` of a director: client port → the real server's name (`rs1`, `rs2`)
/// of each established connection.
fn flows_by_port(sock: &std::path::Path) -> std::collections::BTreeMap<u16, String> {
    lab::rvs_at(sock, &["adm", "-Lnc"])
        .lines()
        .filter(|l| l.contains("ESTABLISHED"))
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            let client: SocketAddr = w.get(3)?.parse().ok()?;
            let real = match *w.get(5)? {
                "198.18.0.11:80" => "rs1",
                "198.18.0.12:80" => "rs2",
                _ => return None,
            };
            Some((client.port(), real.to_owned()))
        })
        .collect()
}

/// The rvs pid a director's pid file names.
fn director_pid(dir: &std::path::Path) -> u32 {
    std::fs::read_to_string(dir.join("dir1.rvs-pid"))
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// `rvs upgrade` of an XDP director (the seed articles' DR setup, `rr`) with 20
/// connections open through it, each halfway through its request: the old process
/// pins the program's maps and link, the new one loads its program on those maps and
/// swaps it into the link. Every connection then finishes at the real server it was
/// scheduled to (`rr` would send a flow the table forgot to the next real server, which
/// resets it), the counters go on from where they were, and the pins are gone. Before
/// that, a successor whose maps differ (a smaller flow table) is refused: the old
/// process takes its link back and nothing is lost.
#[test]
#[ignore = "needs root, network namespaces and clang: ./test.sh runs it as root"]
fn an_upgrade_keeps_every_flow_of_the_xdp_program() {
    use std::io::{Read as _, Write as _};
    require();
    let prefix = format!("rvu{}", std::process::id() % 100_000);
    let (_guard, dir) = dr_lab_serves(&prefix, &[]);
    let sock = dir.join("dir1.sock");
    let client = format!("{prefix}-client");
    let held: Vec<std::net::TcpStream> = lab::in_ns(&client, || {
        (0..20)
            .map(|_| {
                let mut s =
                    std::net::TcpStream::connect_timeout(&vip80(), Duration::from_secs(2)).unwrap();
                s.write_all(b"GET / HTTP/1.0\r\n").unwrap();
                s
            })
            .collect()
    });
    let ports: Vec<u16> = held
        .iter()
        .map(|s| s.local_addr().unwrap().port())
        .collect();
    // Where the program sent each connection (its flow table, as `-Lnc` lists it).
    let mut before = std::collections::BTreeMap::new();
    let listed = Lab::wait(Duration::from_secs(15), || {
        before = flows_by_port(&sock);
        ports.iter().all(|p| before.contains_key(p))
    });
    assert!(
        listed.is_some(),
        "-Lnc never listed the 20 connections: {before:?}"
    );
    let on = |r: &str| ports.iter().filter(|p| before[*p] == r).count();
    assert_eq!(
        (on("rs1"), on("rs2")),
        (10, 10),
        "rr spreads them: {before:?}"
    );
    let (pkts_before, _) = service_packets(&sock);
    let old = director_pid(&dir);
    let upgrade = |binary: Option<&std::path::Path>| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_rvs"));
        c.arg("upgrade").arg("--control").arg(&sock);
        if let Some(b) = binary {
            c.arg("--binary").arg(b);
        }
        c.output().unwrap()
    };

    // A successor with another flow table size cannot load on these maps: refused.
    let small = dir.join("rvs-small-table.sh");
    std::fs::write(
        &small,
        format!(
            "#!/bin/sh\nexec {} \"$@\" --xdp-flows 4096\n",
            env!("CARGO_BIN_EXE_rvs")
        ),
    )
    .unwrap();
    assert!(Command::new("chmod")
        .arg("755")
        .arg(&small)
        .status()
        .unwrap()
        .success());
    let refused = upgrade(Some(&small));
    let err = String::from_utf8_lossy(&refused.stderr).into_owned();
    assert!(!refused.status.success(), "{err}");
    assert!(err.contains("exited before taking over"), "{err}");
    assert_eq!(director_pid(&dir), old, "the running rvs goes on");
    let logs = lab_logs(&dir);
    assert!(
        logs.contains("the maps of the running program differ from this one's (flows)"),
        "{logs}"
    );
    // What makes the hand-over possible, found at attach time (asking aya later would
    // consume the link).
    assert!(
        logs.contains("XDP program attached to eth0 through a BPF link"),
        "{logs}"
    );
    assert!(
        lab::http_get(&client, vip80()).is_ok(),
        "{}",
        lab_logs(&dir)
    );

    // What an rvs that died halfway through an upgrade would have left: removed.
    std::fs::create_dir(dir.join("bpf/rvs-upgrade-4199999")).unwrap();
    let done = upgrade(None);
    assert!(
        done.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&done.stderr),
        lab_logs(&dir)
    );
    let new = director_pid(&dir);
    assert_ne!(new, old);
    assert!(
        Lab::wait(Duration::from_secs(10), || {
            !std::path::Path::new(&format!("/proc/{old}")).exists()
        })
        .is_some(),
        "the old rvs never exited"
    );
    assert!(
        lab_logs(&dir).contains("took over the running program's link and maps"),
        "{}",
        lab_logs(&dir)
    );
    // Every held connection finishes where it began.
    let mut answers = std::collections::BTreeMap::new();
    for (mut s, port) in held.into_iter().zip(&ports) {
        s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        let mut out = String::new();
        let r = s
            .write_all(b"Host: lab\r\n\r\n")
            .and_then(|()| s.read_to_string(&mut out).map(|_| ()));
        let body = match r {
            Ok(()) => out
                .split("\r\n\r\n")
                .nth(1)
                .unwrap_or_default()
                .trim()
                .to_owned(),
            Err(e) => format!("error: {e}"),
        };
        answers.insert(*port, body);
    }
    let expected: std::collections::BTreeMap<u16, String> =
        ports.iter().map(|p| (*p, before[p].clone())).collect();
    assert_eq!(
        answers,
        expected,
        "each connection at its real server\n{}",
        lab_logs(&dir)
    );
    // The counters are the same maps: they go on.
    std::thread::sleep(Duration::from_millis(1300));
    let (pkts_after, _) = service_packets(&sock);
    assert!(
        pkts_after >= pkts_before + 20,
        "InPkts {pkts_before} before the upgrade, {pkts_after} after"
    );
    let pins: Vec<String> = std::fs::read_dir(dir.join("bpf"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("rvs-upgrade"))
        .collect();
    assert!(pins.is_empty(), "pins left behind: {pins:?}");
    assert_both_real_servers_answer(&client, vip80());
    // `rvs lab down` stops the rvs that took over (its pid file names it).
    let down = rvs(&["lab", "down", "--prefix", &prefix]);
    assert!(down.status.success(), "{down:?}");
    assert!(
        Lab::wait(Duration::from_secs(10), || {
            !std::path::Path::new(&format!("/proc/{new}")).exists()
        })
        .is_some(),
        "the successor (pid {new}) outlived its lab"
    );
}

/// A connection from `src` to the VIP on port 80, with the request sent but for its
/// last line (namespace `ns`).
fn open_from(ns: &str, src: std::net::IpAddr) -> std::net::TcpStream {
    use std::io::Write as _;
    lab::in_ns(ns, || {
        let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        s.bind(&SocketAddr::new(src, 0).into()).unwrap();
        s.connect_timeout(&vip80().into(), Duration::from_secs(2))
            .unwrap();
        let mut s: std::net::TcpStream = s.into();
        s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        s.write_all(b"GET / HTTP/1.0\r\n").unwrap();
        s
    })
}

/// Ends the request of a connection from [`open_from`]: the real server's name, or the
/// error (a reset: the connection reached another real server).
fn finish(mut s: std::net::TcpStream) -> Result<String, String> {
    use std::io::Write as _;
    s.write_all(b"\r\n").map_err(|e| e.to_string())?;
    lab::response_body(&mut s)
}

/// `--xdp-by-table` on an `mh` DR service: the program forwards by the table alone, so
/// `-Lnc` lists none of the open connections; when a third real server joins (a
/// reload), new connections from a third of the clients go to it, while each of the 40
/// connections open through the director finishes at the real server it started on —
/// none reset.
#[test]
#[ignore = "needs root, network namespaces and clang: ./test.sh runs it as root"]
fn forwarding_by_table_moves_no_open_connection_when_a_real_server_joins() {
    require();
    let mut l = Lab::new(&[
        ("dir", 1),
        ("rs1", 11),
        ("rs2", 12),
        ("rs3", 13),
        ("c", 100),
    ]);
    for rs in ["rs1", "rs2", "rs3"] {
        l.vip_on_lo(rs, VIP);
        l.spawn_cmd(
            rs,
            &[env!("CARGO_BIN_EXE_rvs"), "lab", "serve", rs, "0.0.0.0:80"],
        );
    }
    // mh hashes the client's address: 40 clients.
    let clients: Vec<std::net::IpAddr> = (160..200u8)
        .map(|i| std::net::IpAddr::from([198, 18, 0, i]))
        .collect();
    for a in &clients {
        l.ip_in("c", &["addr", "add", &format!("{a}/24"), "dev", "eth0"]);
    }
    l.ip_in("dir", &["addr", "add", &format!("{VIP}/32"), "dev", "eth0"]);
    let conf = |n: u8| {
        let reals = (11..11 + n).fold(String::new(), |mut out, i| {
            use std::fmt::Write as _;
            let _ = writeln!(
                out,
                "    real_server 198.18.0.{i} 80 {{\n        weight 1\n    }}"
            );
            out
        });
        format!("virtual_server {VIP} 80 {{\n    lb_algo mh\n    lb_kind DR\n    protocol TCP\n{reals}}}\n")
    };
    let p = l.rvs(
        "dir",
        &conf(2),
        &[
            "--dataplane",
            "xdp",
            "--xdp-iface",
            "eth0",
            "--xdp-by-table",
        ],
    );
    let conf_file = l.dir.join("dir-3.conf");
    let sock = l.control("dir", 3);
    let client = l.ns("c");
    let up = Lab::wait(Duration::from_secs(20), || {
        lab::http_get(&client, vip80()).is_ok()
    });
    assert!(up.is_some(), "the service never answered\n{}", l.logs());
    let before: Vec<String> = clients
        .iter()
        .map(|a| finish(open_from(&client, *a)).unwrap())
        .collect();
    let held: Vec<std::net::TcpStream> = clients.iter().map(|a| open_from(&client, *a)).collect();
    // Forwarded by the table: no flow recorded, none listed (the listing is refreshed
    // every second).
    std::thread::sleep(Duration::from_millis(2500));
    let lnc = lab::rvs_at(&sock, &["adm", "-Lnc"]);
    assert!(!lnc.contains("ESTABLISHED"), "{lnc}");
    let status = lab::rvs_at(&sock, &["status"]);
    assert!(
        status.contains("forwarding by table: 1 service(s), 0 slot(s) changed"),
        "{status}"
    );

    std::fs::write(&conf_file, conf(3)).unwrap();
    l.signal(&p, "HUP");
    let joined = Lab::wait(Duration::from_secs(10), || {
        lab::rvs_at(&sock, &["adm", "-Ln"]).contains("198.18.0.13:80")
    });
    assert!(joined.is_some(), "rs3 never joined\n{}", l.logs());
    // The slots rs3 took are changed: their flows are looked up (rvs status).
    let changed = Lab::wait(Duration::from_secs(5), || {
        let st = lab::rvs_at(&sock, &["status"]);
        st.contains("forwarding by table: 1 service(s)") && !st.contains(" 0 slot(s) changed")
    });
    assert!(changed.is_some(), "{}", lab::rvs_at(&sock, &["status"]));
    let after: Vec<String> = clients
        .iter()
        .map(|a| finish(open_from(&client, *a)).unwrap())
        .collect();
    let moved = before.iter().zip(&after).filter(|(b, a)| b != a).count();
    assert!(
        after.iter().any(|a| a == "rs3") && moved >= 5,
        "new connections of a third of the clients go to rs3: {after:?}"
    );
    let ended: Vec<Result<String, String>> = held.into_iter().map(finish).collect();
    let want: Vec<Result<String, String>> = before.into_iter().map(Ok).collect();
    assert_eq!(
        ended,
        want,
        "where the open connections ended\n{}",
        l.logs()
    );
}

/// The ESTABLISHED peers (address:port) of TCP port `port` in `ns`, as `ss` lists them.
fn peers_of(ns: &str, port: u16) -> Vec<String> {
    let o = Command::new("ip")
        .args(["netns", "exec", ns, "ss", "-Htn", "state", "established"])
        .arg(format!("( sport = :{port} )"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().nth(3).map(str::to_owned))
        .collect()
}

/// FULLNAT over IPv6 in namespaces: the VIP `fd00:198:18::50` on the director, its local
/// addresses `fd00:198:18::60` and `::61`, two real servers. 20 connections from the client:
/// both real servers answer, each sees only the local addresses as peers (never the
/// client), and data goes both ways through the director on every connection.
#[test]
#[ignore = "needs root, network namespaces and clang: ./test.sh runs it as root"]
fn fullnat_over_ipv6_shows_the_real_servers_only_local_addresses() {
    require();
    let mut l = Lab::new(&[("dir", 1), ("rs1", 11), ("rs2", 12), ("c", 100)]);
    for rs in ["rs1", "rs2"] {
        l.spawn_cmd(
            rs,
            &[env!("CARGO_BIN_EXE_rvs"), "lab", "echo", rs, "[::]:7000"],
        );
    }
    for a in [
        "fd00:198:18::50/128",
        "fd00:198:18::60/128",
        "fd00:198:18::61/128",
    ] {
        l.ip_in("dir", &["-6", "addr", "add", a, "dev", "eth0", "nodad"]);
    }
    let conf = "local_address_group laddr6 {\n    fd00:198:18::60\n    fd00:198:18::61\n}\n\
                virtual_server fd00:198:18::50 80 {\n    lb_algo rr\n    lb_kind FNAT\n    \
                laddr_group_name laddr6\n    protocol TCP\n    \
                real_server fd00:198:18::11 7000 {\n    }\n    \
                real_server fd00:198:18::12 7000 {\n    }\n}\n";
    l.rvs(
        "dir",
        conf,
        &["-C", "--dataplane", "xdp", "--xdp-iface", "eth0"],
    );
    let vip: SocketAddr = "[fd00:198:18::50]:80".parse().unwrap();
    greeted_through(&l, vip);
    let mut conns = open_greeted(&l, vip, 20);
    let names: std::collections::BTreeSet<&str> = conns.iter().map(|c| c.1.as_str()).collect();
    assert_eq!(names.into_iter().collect::<Vec<_>>(), ["rs1", "rs2"]);
    assert_eq!(
        peer_hosts(&l, &["rs1", "rs2"], 20),
        ["[fd00:198:18::60]", "[fd00:198:18::61]"]
    );
    echo_on_each(&mut conns);
}

/// The FULLNAT reset guard: the director's kernel has no socket on its local
/// addresses, and must not reset what reaches it there — while rvs runs (a packet the
/// program passes) and once rvs is killed (its program gone, the guard left in the
/// kernel). A connection from the real server to the local address is not refused but
/// unanswered; `rvs cleanup` removes the guard, and the kernel refuses it again.
#[test]
#[ignore = "needs root, network namespaces, nftables and clang: ./test.sh runs it as root"]
fn the_kernel_resets_nothing_on_fullnat_local_addresses_even_after_rvs_is_killed() {
    require();
    let mut l = Lab::new(&[("dir", 1), ("rs1", 11)]);
    l.ip_in("dir", &["addr", "add", &format!("{VIP}/32"), "dev", "eth0"]);
    l.ip_in("dir", &["addr", "add", "198.18.0.60/32", "dev", "eth0"]);
    let conf = format!(
        "local_address_group g {{\n    198.18.0.60\n}}\n\
         virtual_server {VIP} 80 {{\n    lb_algo rr\n    lb_kind FNAT\n    \
         laddr_group_name g\n    protocol TCP\n    real_server 198.18.0.11 7000 {{\n    }}\n}}\n"
    );
    let p = l.rvs(
        "dir",
        &conf,
        &["-C", "--dataplane", "xdp", "--xdp-iface", "eth0"],
    );
    let dir = l.ns("dir");
    let guard = || {
        let o = Command::new("ip")
            .args(["netns", "exec", &dir])
            .args(["nft", "list", "table", "inet", "rvs_fullnat"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).contains("198.18.0.60")
    };
    assert!(
        Lab::wait(Duration::from_secs(10), guard).is_some(),
        "no reset guard\n{}",
        l.logs()
    );
    // A connection from rs1 to a port of the local address nobody listens on.
    let rs1 = l.ns("rs1");
    let attempt = || {
        lab::in_ns(&rs1, || {
            let to: SocketAddr = "198.18.0.60:5555".parse().unwrap();
            match std::net::TcpStream::connect_timeout(&to, Duration::from_millis(700)) {
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => "refused",
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => "unanswered",
                Err(_) => "failed otherwise",
                Ok(_) => "accepted",
            }
        })
    };
    assert_eq!(attempt(), "unanswered", "while rvs runs");
    l.signal(&p, "KILL");
    l.wait_exit(&p, Duration::from_secs(5));
    assert!(guard(), "the guard went with rvs");
    assert_eq!(attempt(), "unanswered", "after rvs was killed");
    let out = Command::new("ip")
        .args(["netns", "exec", &l.ns("dir")])
        .arg(env!("CARGO_BIN_EXE_rvs"))
        .arg("cleanup")
        .arg("-f")
        .arg(l.dir.join("dir-0.conf"))
        .arg("--pid-file")
        .arg(l.dir.join("dir-0.pid"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("removed the FULLNAT reset guard"),
        "{out:?}"
    );
    assert!(!guard());
    assert_eq!(attempt(), "refused", "without the guard");
}

/// A connection from the client (node `c`) to `vip` is greeted by a real server's name
/// within 10 s, or the logs.
fn greeted_through(l: &Lab, vip: SocketAddr) {
    let up = Lab::wait(Duration::from_secs(10), || {
        lab::in_ns(&l.ns("c"), || {
            std::net::TcpStream::connect_timeout(&vip, Duration::from_millis(500))
                .and_then(|s| {
                    s.set_read_timeout(Some(Duration::from_secs(1)))?;
                    greeting(&mut std::io::BufReader::new(s))
                })
                .is_ok_and(|n| !n.is_empty())
        })
    });
    assert!(up.is_some(), "{vip} never answered\n{}", l.logs());
}

/// The first line an echo real server sends: its name.
fn greeting(s: &mut std::io::BufReader<std::net::TcpStream>) -> std::io::Result<String> {
    use std::io::BufRead as _;
    let mut name = String::new();
    s.read_line(&mut name).map(|_| name.trim().to_owned())
}

/// `n` connections from the client to `vip`: (client end, real server's name, stream).
fn open_greeted(
    l: &Lab,
    vip: SocketAddr,
    n: usize,
) -> Vec<(SocketAddr, String, std::io::BufReader<std::net::TcpStream>)> {
    (0..n)
        .map(|_| {
            let s = lab::in_ns(&l.ns("c"), || {
                std::net::TcpStream::connect_timeout(&vip, Duration::from_secs(2)).unwrap()
            });
            s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
            let me = s.local_addr().unwrap();
            let mut r = std::io::BufReader::new(s);
            let name = greeting(&mut r).unwrap();
            (me, name, r)
        })
        .collect()
}

/// The hosts the real servers' port-7000 connections have as peers (`n` of them in all).
fn peer_hosts(l: &Lab, rss: &[&str], n: usize) -> Vec<String> {
    let peers: Vec<String> = rss
        .iter()
        .flat_map(|rs| peers_of(&l.ns(rs), 7000))
        .collect();
    assert_eq!(peers.len(), n, "{peers:?}");
    let hosts: std::collections::BTreeSet<String> = peers
        .iter()
        .map(|p| p.rsplit_once(':').unwrap().0.to_owned())
        .collect();
    hosts.into_iter().collect()
}

/// Data both ways on every connection: a line out, the same line back.
fn echo_on_each(conns: &mut [(SocketAddr, String, std::io::BufReader<std::net::TcpStream>)]) {
    use std::io::{BufRead as _, Write as _};
    for (me, name, r) in conns {
        let line = format!("hello from {me}\n");
        r.get_mut().write_all(line.as_bytes()).unwrap();
        let mut back = String::new();
        r.read_line(&mut back).unwrap();
        assert_eq!(back, line, "echoed by {name}");
    }
}

/// The first TOA option (TCP option 254: the client's port and IPv4 address) in a TCP
/// segment to port 7000 that `ns` receives within 8 s, captured with a raw socket.
fn capture_toa(ns: String) -> std::thread::JoinHandle<Option<SocketAddr>> {
    std::thread::spawn(move || {
        lab::in_ns(&ns, || {
            let sock = socket2::Socket::new(
                socket2::Domain::IPV4,
                socket2::Type::RAW,
                Some(socket2::Protocol::TCP),
            )
            .unwrap();
            sock.set_read_timeout(Some(Duration::from_millis(500)))
                .unwrap();
            let until = std::time::Instant::now() + Duration::from_secs(8);
            let mut buf = [0u8; 2048];
            while std::time::Instant::now() < until {
                let Ok(n) = std::io::Read::read(&mut &sock, &mut buf) else {
                    continue;
                };
                let pkt = &buf[..n];
                let th = usize::from(pkt[0] & 0xf) * 4;
                if n < th + 20 || u16::from_be_bytes([pkt[th + 2], pkt[th + 3]]) != 7000 {
                    continue;
                }
                let opts = &pkt[th + 20..(th + usize::from(pkt[th + 12] >> 4) * 4).min(n)];
                let mut i = 0;
                while i + 1 < opts.len() && opts[i] != 0 {
                    if opts[i] == 1 {
                        i += 1;
                        continue;
                    }
                    if opts[i] == 254 && opts[i + 1] == 8 && i + 8 <= opts.len() {
                        let port = u16::from_be_bytes([opts[i + 2], opts[i + 3]]);
                        let ip = std::net::Ipv4Addr::new(
                            opts[i + 4],
                            opts[i + 5],
                            opts[i + 6],
                            opts[i + 7],
                        );
                        return Some(SocketAddr::new(ip.into(), port));
                    }
                    i += usize::from(opts[i + 1]).max(2);
                }
            }
            None
        })
    })
}

/// FULLNAT in the XDP data plane (issue #21): `lb_kind FNAT` with `laddr_group_name`. The
/// real servers need no VIP, no ARP tuning and no route through the director — one sits
/// on the director's link with its own default route elsewhere, the other behind a
/// router — because each connection comes to them from one of the director's local
/// addresses and their replies go back to it. Twenty connections held open: each real
/// server's `ss` shows only local addresses as peers, never the client, while the
/// client's address and port reach it in the TOA option (captured at rs1); data goes
/// both ways; `rvs adm -Lnc` lists them.
#[test]
#[ignore = "needs root, network namespaces and clang: ./test.sh runs it as root"]
fn fullnat_real_servers_see_only_the_directors_local_addresses() {
    require();
    let mut l = Lab::new(&[
        ("dir", 1),
        ("gw", 254),
        ("rs1", 11),
        ("far", 21),
        ("c", 100),
    ]);
    router(&l);
    // The far real server has only 198.19.1.21, and its routes go through the router.
    l.ip_in("far", &["addr", "flush", "dev", "eth0"]);
    l.ip_in("far", &["addr", "add", "198.19.1.21/24", "dev", "eth0"]);
    l.ip_in("far", &["route", "add", "default", "via", "198.19.1.254"]);
    // rs1's default route is the router too: replies that went to the client directly
    // (no FULLNAT) would never reach the director.
    l.ip_in("rs1", &["route", "add", "default", "via", "198.18.0.254"]);
    l.spawn_cmd(
        "rs1",
        &[
            env!("CARGO_BIN_EXE_rvs"),
            "lab",
            "echo",
            "rs1",
            "0.0.0.0:7000",
        ],
    );
    l.spawn_cmd(
        "far",
        &[
            env!("CARGO_BIN_EXE_rvs"),
            "lab",
            "echo",
            "far",
            "0.0.0.0:7000",
        ],
    );
    l.ip_in("dir", &["addr", "add", &format!("{VIP}/32"), "dev", "eth0"]);
    for a in ["198.18.0.60/32", "198.18.0.61/32"] {
        l.ip_in("dir", &["addr", "add", a, "dev", "eth0"]);
    }
    l.ip_in(
        "dir",
        &["route", "add", "198.19.1.0/24", "via", "198.18.0.254"],
    );
    let conf = format!(
        "local_address_group laddr_g1 {{\n    198.18.0.60\n    198.18.0.61\n}}\n\
         virtual_server {VIP} 80 {{\n    lb_algo rr\n    lb_kind FNAT\n    \
         laddr_group_name laddr_g1\n    protocol TCP\n    \
         real_server 198.18.0.11 7000 {{\n        weight 1\n    }}\n    \
         real_server 198.19.1.21 7000 {{\n        weight 1\n    }}\n}}\n"
    );
    l.rvs(
        "dir",
        &conf,
        &["-C", "--dataplane", "xdp", "--xdp-iface", "eth0"],
    );
    greeted_through(&l, vip80());
    let toa = capture_toa(l.ns("rs1"));
    std::thread::sleep(Duration::from_millis(200));
    let mut conns = open_greeted(&l, vip80(), 20);
    let names: std::collections::BTreeSet<&str> = conns.iter().map(|c| c.1.as_str()).collect();
    assert_eq!(
        names.into_iter().collect::<Vec<_>>(),
        ["far", "rs1"],
        "rr over both real servers"
    );
    let toa = toa.join().unwrap().expect("a TOA option reached rs1");
    assert!(
        conns
            .iter()
            .any(|(me, name, _)| *me == toa && name == "rs1"),
        "TOA {toa}: not a client connection of rs1's"
    );
    // What each real server sees: only the director's local addresses.
    assert_eq!(
        peer_hosts(&l, &["rs1", "far"], 20),
        ["198.18.0.60", "198.18.0.61"]
    );
    echo_on_each(&mut conns);
    // (-Lnc reads a snapshot of the flow table the daemon refreshes.)
    let sock = l.control("dir", 2);
    let listed = Lab::wait(Duration::from_secs(6), || {
        let lnc = lab::rvs_at(&sock, &["adm", "-Lnc"]);
        conns.iter().all(|(me, _, _)| lnc.contains(&me.to_string()))
    });
    assert!(listed.is_some(), "{}", lab::rvs_at(&sock, &["adm", "-Lnc"]));
}
