//! Scale-out (issue #21): directors behind ECMP, each announcing the VIP through BIRD 2
//! (`rvs_bgp`) while it serves it, to a router that runs BIRD 2 too and installs the
//! multipath route in its kernel. Everything in network namespaces, with the real
//! routing daemon on both sides.
//!
//! Needs root, `ip`, nftables and BIRD 2 (bird2); in CI (CI=true) a missing one fails.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::many_single_char_names,
    clippy::format_push_string,
    clippy::format_collect
)]

#[path = "common/lab.rs"]
mod lab;

use lab::Lab;
use std::io::{BufRead as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

const VIP: &str = "198.19.1.10";
/// The FULLNAT local address of [`SyncLab::fullnat`].
const LADDR: &str = "198.18.0.60";

fn require_bird() {
    let ok = Command::new("sh")
        .args(["-c", "command -v bird"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "BIRD 2 is not installed (apt-get install bird2; .ci/run installs it)"
    );
}

/// The router's BIRD: a BGP session with each director (BFD on), the routes it learns
/// merged into one multipath route in the kernel.
fn router_conf(directors: &[u8]) -> String {
    let mut c = String::from(
        "router id 198.18.0.1;\nlog stderr all;\nprotocol device {}\n\
         protocol kernel { ipv4 { import none; export all; }; merge paths on; }\n\
         protocol bfd { interface \"*\" { min rx interval 100 ms; min tx interval 100 ms; \
         multiplier 3; }; }\n",
    );
    for d in directors {
        c.push_str(&format!(
            "protocol bgp d{d} {{ local as 65000; neighbor 198.18.0.{d} as 65001; \
             hold time 30; connect retry time 1; error wait time 1, 5; bfd on; ipv4 {{ import all; export none; }}; }}\n"
        ));
    }
    c
}

/// The router `rt`: L4 hashing for its multipath routes (each connection picks a
/// director) and BIRD with a session to d1 and d2 (198.18.0.2, .3); its control socket.
fn start_router(l: &mut Lab) -> std::path::PathBuf {
    let ok = Command::new("ip")
        .args(["netns", "exec", &l.ns("rt"), "sysctl", "-qw"])
        .arg("net.ipv4.fib_multipath_hash_policy=1")
        .status()
        .unwrap();
    assert!(ok.success());
    let rconf = l.dir.join("router-bird.conf");
    std::fs::write(&rconf, router_conf(&[2, 3])).unwrap();
    let rsock = l.dir.join("router-bird.ctl");
    l.spawn_cmd(
        "rt",
        &[
            "bird",
            "-f",
            "-c",
            rconf.to_str().unwrap(),
            "-s",
            rsock.to_str().unwrap(),
        ],
    );
    rsock
}

/// A director: the VIP on `lo`, one virtual server on the real server, `rvs_bgp` with the
/// router as its neighbour.
fn director_conf(host: u8) -> String {
    format!(
        "rvs_bgp {{\n    router_id 198.18.0.{host}\n    local_as 65001\n    \
         neighbor 198.18.0.1 {{\n        remote_as 65000\n        bfd\n        hold_time 30\n    \
         }}\n    community 65000:100\n    med 10\n    withdraw_delay 1\n}}\n\
         virtual_server {VIP} 80 {{\n    delay_loop 1\n    lb_algo rr\n    lb_kind NAT\n    \
         protocol TCP\n    real_server 198.18.0.11 80 {{\n        TCP_CHECK {{\n            \
         connect_timeout 1\n        }}\n    }}\n}}\n"
    )
}

/// The router's next hops for the VIP (sorted).
fn next_hops(l: &Lab) -> Vec<String> {
    let o = Command::new("ip")
        .args(["-n", &l.ns("rt"), "route", "show", VIP])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    let mut hops: Vec<String> = text
        .split_whitespace()
        .collect::<Vec<_>>()
        .windows(2)
        .filter(|w| w[0] == "via")
        .map(|w| w[1].to_owned())
        .collect();
    hops.sort();
    hops
}

fn wait_hops(l: &Lab, want: &[&str], limit: Duration, what: &str) -> Duration {
    Lab::wait(limit, || next_hops(l) == want).unwrap_or_else(|| {
        let birds: String = ["router-bird.ctl", "d1-0.bird/bird.ctl", "d2-1.bird/bird.ctl"]
            .iter()
            .map(|s| {
                let o = Command::new("birdc")
                    .args(["-s", l.dir.join(s).to_str().unwrap(), "show", "protocols", "all"])
                    .output()
                    .unwrap();
                format!("--- {s}\n{}", String::from_utf8_lossy(&o.stdout))
            })
            .collect();
        panic!(
            "{what}: the router's next hops for {VIP} are {:?}, not {want:?} within {limit:?}\n{}\n{birds}",
            next_hops(l),
            l.logs()
        )
    })
}

/// A real server on `addr` in `node`: answers each connection with `name`, or with the
/// address it came from (the director that proxied it) when `name` is empty, then echoes
/// lines until the client closes.
fn real_server(l: &Lab, node: &str, addr: &str, name: &'static str) {
    let addr = addr.to_owned();
    let listener = lab::in_ns(&l.ns(node), move || TcpListener::bind(addr).unwrap());
    std::thread::spawn(move || {
        for s in listener.incoming() {
            let Ok(mut s) = s else { continue };
            std::thread::spawn(move || {
                let peer = s
                    .peer_addr()
                    .map(|p| p.ip().to_string())
                    .unwrap_or_default();
                let _ = writeln!(s, "{}", if name.is_empty() { &peer } else { name });
                let mut r = std::io::BufReader::new(s.try_clone().unwrap());
                let mut line = String::new();
                while r.read_line(&mut line).is_ok_and(|n| n > 0) {
                    let _ = s.write_all(line.as_bytes());
                    line.clear();
                }
            });
        }
    });
}

/// A connection from the router's namespace (the clients' side of the ECMP route) to
/// the VIP, and the director it went through.
fn connect(l: &Lab) -> (TcpStream, String) {
    lab::in_ns(&l.ns("rt"), || {
        let addr: SocketAddr = format!("{VIP}:80").parse().unwrap();
        let s = TcpStream::connect_timeout(&addr, Duration::from_secs(3)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut line = String::new();
        std::io::BufReader::new(&s).read_line(&mut line).unwrap();
        (s, line.trim().to_owned())
    })
}

/// Whether a connection opened earlier still carries data both ways.
fn still_works(s: &mut TcpStream) -> bool {
    let Ok(c) = s.try_clone() else { return false };
    let mut r = std::io::BufReader::new(c);
    if s.write_all(b"ping\n").is_err() {
        return false;
    }
    let mut line = String::new();
    r.read_line(&mut line).is_ok() && line == "ping\n"
}

/// Which directors `n` new connections went through: (d1's count, d2's count).
fn spread(l: &Lab, n: usize) -> (usize, usize) {
    let mut c = (0, 0);
    for _ in 0..n {
        let (_, via) = connect(l);
        match via.as_str() {
            "198.18.0.2" => c.0 += 1,
            "198.18.0.3" => c.1 += 1,
            other => panic!("a connection came from {other:?}"),
        }
    }
    c
}

fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit_once(") ")
            .is_some_and(|(_, r)| !r.starts_with('Z'))
    })
}

/// Two directors announce the VIP to a router running BIRD, which installs one route
/// with both as next hops; new connections spread over both. Each director withdraws
/// the VIP — and only its own next hop goes — when drained (`rvs bgp drain`), when its real servers fail their checks, when BFD
/// loses the router (link down; hold time 30 s, so only BFD can be that quick), on
/// SIGTERM (before it stops serving), and when it is killed (BIRD dies with it and its
/// session ends).
#[test]
#[ignore = "needs root, network namespaces, nftables and BIRD 2: ./test.sh runs it as root"]
fn directors_announce_the_vip_while_they_serve_it() {
    lab::require(false);
    require_bird();
    let mut l = Lab::new(&[("rt", 1), ("d1", 2), ("d2", 3), ("rs", 11)]);
    real_server(&l, "rs", "198.18.0.11:80", "");
    for d in ["d1", "d2"] {
        l.ip_in(d, &["addr", "add", &format!("{VIP}/32"), "dev", "lo"]);
    }
    let d1 = l.rvs("d1", &director_conf(2), &[]);
    let d2 = l.rvs("d2", &director_conf(3), &[]);
    let (c1, c2) = (l.control("d1", 0), l.control("d2", 1));
    let rsock = start_router(&mut l);
    let both = ["198.18.0.2", "198.18.0.3"];
    wait_hops(&l, &both, Duration::from_secs(30), "announced by both");
    // The route carries the community and MED rvs_bgp gives it.
    let o = Command::new("birdc")
        .args(["-s", rsock.to_str().unwrap(), "show", "route", "all"])
        .output()
        .unwrap();
    let routes = String::from_utf8_lossy(&o.stdout);
    assert!(routes.contains("BGP.community: (65000,100)"), "{routes}");
    assert!(routes.contains("BGP.med: 10"), "{routes}");
    // `rvs bgp` on a director: the session and what it announces (published each second).
    let mut st = String::new();
    Lab::wait(Duration::from_secs(5), || {
        st = lab::rvs_at(&c1, &["bgp"]);
        st.contains("Established")
    });
    assert!(st.contains(&format!("announcing {VIP}")), "{st}");
    assert!(
        st.contains("neighbour 198.18.0.1") && st.contains("Established"),
        "{st}"
    );
    // New connections spread over both directors (L4 hash of the source port).
    let (a, b) = spread(&l, 200);
    assert!(
        a >= 50 && b >= 50,
        "200 connections: {a} through d1, {b} through d2"
    );

    // Drain d1: its next hop goes; new connections go to d2. (The proxy terminates TCP:
    // the packets of d1's established connections now reach d2, which resets them. The
    // XDP plane's DR keeps them: `dr_connections_survive_a_drain` below.)
    let drained = lab::rvs_at(&c1, &["bgp", "drain"]);
    assert!(drained.is_empty(), "{drained}");
    wait_hops(&l, &["198.18.0.3"], Duration::from_secs(10), "d1 drained");
    assert!(lab::rvs_at(&c1, &["bgp"]).contains("DRAINED"));
    assert_eq!(spread(&l, 20), (0, 20));
    lab::rvs_at(&c1, &["bgp", "undrain"]);
    wait_hops(&l, &both, Duration::from_secs(10), "d1 undrained");

    // d1's checks fail (its packets to the real server dropped): quorum lost, withdrawn.
    l.nft(
        "d1",
        "table inet cut {\n  chain output {\n    type filter hook output priority 0;\n    \
         ip daddr 198.18.0.11 tcp dport 80 drop\n  }\n}\n",
    );
    wait_hops(
        &l,
        &["198.18.0.3"],
        Duration::from_secs(15),
        "d1's real server down",
    );
    let ok = Command::new("ip")
        .args([
            "netns",
            "exec",
            &l.ns("d1"),
            "nft",
            "delete",
            "table",
            "inet",
            "cut",
        ])
        .status()
        .unwrap();
    assert!(ok.success());
    wait_hops(&l, &both, Duration::from_secs(15), "d1's real server back");

    // d1's link goes down: the router's BFD takes the session down (hold time is 30 s).
    l.link("d1", false);
    let t = wait_hops(
        &l,
        &["198.18.0.3"],
        Duration::from_secs(5),
        "d1's link down",
    );
    eprintln!("link down: withdrawn after {t:?}");
    l.link("d1", true);
    wait_hops(&l, &both, Duration::from_secs(30), "d1's link up");

    // SIGTERM d2: its next hop goes while it still runs (then it drains and exits).
    l.signal(&d2, "TERM");
    let mut withdrawn_alive = None;
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(10) && withdrawn_alive.is_none() {
        if next_hops(&l) == ["198.18.0.2"] {
            withdrawn_alive = Some(alive(d2.pids[0]));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(
        withdrawn_alive,
        Some(true),
        "d2 withdrawn before it exited\n{}",
        l.logs()
    );
    l.wait_exit(&d2, Duration::from_secs(15));
    assert!(
        Command::new("ip")
            .args(["netns", "pids", &l.ns("d2")])
            .output()
            .unwrap()
            .stdout
            .is_empty(),
        "BIRD outlived rvs in d2"
    );
    drop(c2);

    // SIGKILL d1: BIRD dies with it, its session ends, the router withdraws at once.
    l.signal(&d1, "KILL");
    wait_hops(&l, &[], Duration::from_secs(5), "d1 killed");
    let left = Lab::wait(Duration::from_secs(5), || {
        Command::new("ip")
            .args(["netns", "pids", &l.ns("d1")])
            .output()
            .unwrap()
            .stdout
            .is_empty()
    });
    assert!(left.is_some(), "BIRD outlived the killed rvs in d1");
}

/// The XDP plane's LVS-DR with `mh` on two directors behind ECMP: both build the same
/// Maglev table from the same configuration, and each schedules a packet of a flow it
/// has not seen (not only a SYN), so when one director leaves — drained, then killed —
/// the flows the router moves to the other reach the real server that holds their TCP
/// state: of 40 long-lived connections, none breaks.
#[test]
#[ignore = "needs root, network namespaces, clang (the XDP program) and BIRD 2: ./test.sh runs it as root"]
fn dr_connections_survive_a_director_leaving() {
    lab::require(false);
    require_bird();
    let mut l = Lab::new(&[("rt", 1), ("d1", 2), ("d2", 3), ("rs1", 11), ("rs2", 12)]);
    for (rs, name) in [("rs1", "rs1"), ("rs2", "rs2")] {
        l.vip_on_lo(rs, VIP);
        real_server(&l, rs, "0.0.0.0:80", name);
    }
    let conf = |host: u8| {
        format!(
            "rvs_bgp {{\n    router_id 198.18.0.{host}\n    local_as 65001\n    \
             neighbor 198.18.0.1 {{\n        remote_as 65000\n        bfd\n    }}\n    \
             withdraw_delay 1\n}}\n\
             virtual_server {VIP} 80 {{\n    delay_loop 1\n    lb_algo mh\n    mh-port\n    \
             lb_kind DR\n    protocol TCP\n    real_server 198.18.0.11 80 {{\n        \
             TCP_CHECK {{\n            connect_timeout 1\n        }}\n    }}\n    \
             real_server 198.18.0.12 80 {{\n        TCP_CHECK {{\n            \
             connect_timeout 1\n        }}\n    }}\n}}\n"
        )
    };
    let xdp = ["-C", "--dataplane", "xdp", "--xdp-iface", "eth0"];
    let d1 = l.rvs("d1", &conf(2), &xdp);
    l.rvs("d2", &conf(3), &xdp);
    let c1 = l.control("d1", 0);
    start_router(&mut l);
    let both = ["198.18.0.2", "198.18.0.3"];
    wait_hops(&l, &both, Duration::from_secs(30), "announced by both");
    // 40 connections, each answered by the real server the directors chose.
    let mut held: Vec<(TcpStream, String)> = (0..40).map(|_| connect(&l)).collect();
    let mut by_rs = std::collections::BTreeMap::new();
    for (_, rs) in &held {
        *by_rs.entry(rs.clone()).or_insert(0) += 1;
    }
    assert_eq!(
        by_rs.len(),
        2,
        "both real servers take connections: {by_rs:?}"
    );
    let all_work = |held: &mut Vec<(TcpStream, String)>| {
        held.iter_mut()
            .map(|(s, _)| still_works(s))
            .filter(|ok| !ok)
            .count()
    };
    assert_eq!(all_work(&mut held), 0);
    // Drained: d1's flows now reach d2, whose table sends them to the same real servers.
    assert!(lab::rvs_at(&c1, &["bgp", "drain"]).is_empty());
    wait_hops(&l, &["198.18.0.3"], Duration::from_secs(10), "d1 drained");
    assert_eq!(all_work(&mut held), 0, "connections broken by d1's drain");
    lab::rvs_at(&c1, &["bgp", "undrain"]);
    wait_hops(&l, &both, Duration::from_secs(10), "d1 undrained");
    assert_eq!(all_work(&mut held), 0, "connections broken by d1's return");
    // Killed: the same, without a word from d1.
    l.signal(&d1, "KILL");
    wait_hops(&l, &["198.18.0.3"], Duration::from_secs(5), "d1 killed");
    assert_eq!(all_work(&mut held), 0, "connections broken by d1's death");
    let (_, rs) = connect(&l);
    assert!(rs == "rs1" || rs == "rs2", "{rs}");
}

fn rvs(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_rvs"))
        .args(args)
        .output()
        .unwrap()
}

/// `rvs lab cluster up` (`--fnat`), taken down when the test ends, pass or fail.
struct ClusterUp {
    prefix: String,
    /// The namespaces' prefix (the lab's, with `c`).
    p: String,
}

impl ClusterUp {
    /// Up, and the router's route over the three directors within 30 s.
    fn start(fnat: bool) -> ClusterUp {
        // One lab per test, tests in parallel: this process's id and a count.
        static LABS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        lab::require(false);
        require_bird();
        let prefix = format!(
            "rvc{}{}",
            std::process::id() % 100_000,
            LABS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let mut args = vec!["lab", "cluster", "up", "--prefix", &prefix];
        if fnat {
            args.push("--fnat");
        }
        let up = rvs(&args);
        let c = ClusterUp {
            p: format!("{prefix}c"),
            prefix,
        };
        assert!(
            up.status.success(),
            "rvs lab cluster up: {}",
            String::from_utf8_lossy(&up.stderr)
        );
        assert!(
            Lab::wait(Duration::from_secs(30), || c.hops() == 3).is_some(),
            "the router never had three next hops\n{}",
            c.logs()
        );
        c
    }

    /// How many next hops the router's route to the VIP has.
    fn hops(&self) -> usize {
        let o = Command::new("ip")
            .args([
                "-n",
                &format!("{}-router", self.p),
                "route",
                "show",
                "198.18.0.60",
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).matches(" via ").count()
    }

    fn dir(&self) -> std::path::PathBuf {
        std::env::temp_dir().join(format!("rvs-lab-{}", self.p))
    }

    fn logs(&self) -> String {
        let mut out = String::new();
        for e in std::fs::read_dir(self.dir())
            .into_iter()
            .flatten()
            .flatten()
        {
            if e.path().extension().is_some_and(|x| x == "log") {
                out.push_str(&format!(
                    "--- {}\n{}\n",
                    e.path().display(),
                    std::fs::read_to_string(e.path()).unwrap_or_default()
                ));
            }
        }
        out
    }

    /// The real servers that answer 60 HTTP requests from the client behind the router.
    fn answering(&self) -> Vec<String> {
        let client = format!("{}-client", self.p);
        let vip: SocketAddr = "198.18.0.60:80".parse().unwrap();
        let names: std::collections::BTreeSet<String> = (0..60)
            .map(|_| lab::http_get(&client, vip).unwrap_or_else(|e| e))
            .collect();
        names.into_iter().collect()
    }

    /// `rvs lab hold` of `n` connections to the echo port from the client for `seconds`,
    /// once they are all open.
    fn hold(&self, n: usize, seconds: u64) -> std::process::Child {
        let ready = std::env::temp_dir().join(format!("{}-ready", self.p));
        let _ = std::fs::remove_file(&ready);
        let hold = Command::new(env!("CARGO_BIN_EXE_rvs"))
            .args(["lab", "exec", "--prefix", &self.p, "client"])
            .arg(env!("CARGO_BIN_EXE_rvs"))
            .args(["lab", "hold", "198.18.0.60:7", "--connections"])
            .arg(n.to_string())
            .arg("--seconds")
            .arg(seconds.to_string())
            .arg("--ready")
            .arg(&ready)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        assert!(Lab::wait(Duration::from_secs(10), || ready.exists()).is_some());
        hold
    }

    /// What `hold` said; none broken, or the text and the logs.
    fn none_broken(&self, hold: std::process::Child) {
        let (ok, text) = ClusterUp::held(hold);
        assert!(ok && text.contains(": 0 broken"), "{text}\n{}", self.logs());
    }

    /// What `hold` said (exit status, text), once it is done.
    fn held(hold: std::process::Child) -> (bool, String) {
        let out = hold.wait_with_output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    }

    /// The pid of `node`'s `what` (`rvs` on a director, `echo` or `http` on a real server).
    fn pid_of(&self, node: &str, what: &str) -> i32 {
        std::fs::read_to_string(self.dir().join(format!("{node}-{what}.pid")))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }

    /// The pid of director `node`'s rvs.
    fn pid(&self, node: &str) -> i32 {
        self.pid_of(node, "rvs")
    }

    /// `kill -SIG pid`.
    fn kill(pid: i32, sig: &str) {
        let st = Command::new("kill")
            .args([&format!("-{sig}"), &pid.to_string()])
            .status()
            .unwrap();
        assert!(st.success(), "kill -{sig} {pid}");
    }

    /// `rvs bgp drain` or `undrain` on director `node`.
    fn bgp(&self, node: &str, what: &str) {
        let sock = self.dir().join(format!("{node}.sock"));
        let o = rvs(&["bgp", what, "--control", &sock.display().to_string()]);
        assert!(
            o.status.success(),
            "rvs bgp {what} on {node}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }

    /// Director `node`'s link to the lab's switch goes down (its processes live on).
    fn link_down(&self, node: &str) {
        let st = Command::new("ip")
            .args(["-n", &format!("{}-{node}", self.p), "link", "set", "eth0"])
            .arg("down")
            .status()
            .unwrap();
        assert!(st.success());
    }

    /// The router's route has `n` next hops within `limit`, or the logs.
    fn wait_hops(&self, n: usize, limit: Duration, what: &str) {
        assert!(
            Lab::wait(limit, || self.hops() == n).is_some(),
            "{what}: the router's route never had {n} next hops\n{}",
            self.logs()
        );
    }

    /// How many established flows to the echo port director `node`'s flow table holds
    /// (from `rvs lab cluster status`).
    fn echo_flows_on(&self, node: &str) -> usize {
        let st = rvs(&["lab", "cluster", "status", "--prefix", &self.prefix]);
        let mut at = String::new();
        let mut n = 0;
        for l in String::from_utf8_lossy(&st.stdout).lines() {
            if let Some(d) = l
                .split_whitespace()
                .next()
                .filter(|d| d.len() == 2 && d.starts_with('d') && !l.starts_with(' '))
            {
                d.clone_into(&mut at);
            } else if at == node && l.contains("ESTABLISHED") && l.contains(" 198.18.0.60:7 ") {
                n += 1;
            }
        }
        n
    }
}

impl Drop for ClusterUp {
    fn drop(&mut self) {
        let _ = rvs(&["lab", "cluster", "down", "--prefix", &self.prefix]);
    }
}

/// `rvs lab cluster`: up, the router's route over the three directors, HTTP through the
/// VIP from the client behind the router reaching all three real servers, `status`
/// naming the director each flow takes, 30 long-lived connections held through a
/// director's SIGKILL with none broken (`rvs lab hold`), and down leaving nothing.
#[test]
#[ignore = "needs root, network namespaces, clang (the XDP program) and BIRD 2: ./test.sh runs it as root"]
fn the_cluster_lab_runs_the_seed_topology_scaled_out() {
    let c = ClusterUp::start(false);
    assert_eq!(c.answering(), ["rs1", "rs2", "rs3"], "{}", c.logs());
    // 30 long-lived connections held through d2's death.
    let hold = c.hold(30, 6);
    // The status: the route, each director's session, and the held flows (the flow
    // tables are walked each second), spread over the directors.
    let held_flows = |st: &str| {
        st.lines()
            .filter(|l| l.contains("ESTABLISHED") && l.contains(" 198.18.0.60:7 "))
            .count()
    };
    let mut st = String::new();
    Lab::wait(Duration::from_secs(10), || {
        st = String::from_utf8_lossy(
            &rvs(&["lab", "cluster", "status", "--prefix", &c.prefix]).stdout,
        )
        .into_owned();
        st.matches("Established").count() == 3 && held_flows(&st) == 30
    });
    assert!(
        st.contains("router: 198.18.0.60 via 198.18.0.2, 198.18.0.3, 198.18.0.4"),
        "{st}"
    );
    assert_eq!(st.matches("Established").count(), 3, "{st}");
    assert_eq!(held_flows(&st), 30, "{st}");
    ClusterUp::kill(c.pid("d2"), "KILL");
    assert!(Lab::wait(Duration::from_secs(5), || c.hops() == 2).is_some());
    c.none_broken(hold);
    let p = c.p.clone();
    drop(c);
    assert!(
        !std::path::Path::new(&format!("/run/netns/{p}-router")).exists(),
        "rvs lab cluster down left the router's namespace"
    );
}

/// `rvs lab cluster up --fnat` (issue #21): the same cluster with FULLNAT — each
/// director forwards from its own local address (198.18.0.22-24, held by VRRP), every
/// director syncs its connections to the others. All three real servers answer the
/// client, and see only the directors' local addresses as peers; 30 long-lived
/// connections are held while d2 is drained (`rvs bgp drain`): the router sends d2's
/// clients' packets to d1 and d3, which forward them from d2's local end (the
/// connections adopted by sync), while the real servers' replies still reach d2: none
/// broken.
#[test]
#[ignore = "needs root, network namespaces, clang (the XDP program) and BIRD 2: ./test.sh runs it as root"]
fn the_cluster_lab_runs_fullnat_with_sync() {
    let c = ClusterUp::start(true);
    assert_eq!(c.answering(), ["rs1", "rs2", "rs3"], "{}", c.logs());
    let hold = c.hold(30, 8);
    let mut peers = std::collections::BTreeSet::new();
    for rs in ["rs1", "rs2", "rs3"] {
        let o = Command::new("ip")
            .args(["netns", "exec", &format!("{}-{rs}", c.p), "ss", "-Htn"])
            .args(["state", "established", "( sport = :7 )"])
            .output()
            .unwrap();
        for l in String::from_utf8_lossy(&o.stdout).lines() {
            if let Some(peer) = l.split_whitespace().nth(3) {
                peers.insert(peer.rsplit_once(':').unwrap().0.to_owned());
            }
        }
    }
    assert_eq!(
        peers.into_iter().collect::<Vec<_>>(),
        ["198.18.0.22", "198.18.0.23", "198.18.0.24"],
        "the real servers' peers: the directors' local addresses only"
    );
    // Each director's flows reach the others within the sync's walk (about a second).
    std::thread::sleep(Duration::from_secs(2));
    // The directors route to the clients: no adopted connection waits for a next hop.
    assert!(
        !c.logs().contains("no next hop known for the client"),
        "{}",
        c.logs()
    );
    c.bgp("d2", "drain");
    assert!(Lab::wait(Duration::from_secs(5), || c.hops() == 2).is_some());
    c.none_broken(hold);
}

/// Director d2's link goes down under 30 long-lived connections (LVS-DR): only the
/// router's BFD notices; its route loses d2 and the connections ECMP moves to d1 and d3
/// reach the same real servers (`mh` builds the same table everywhere): none broken, and
/// new connections reach all three real servers.
#[test]
#[ignore = "needs root, network namespaces, clang (the XDP program) and BIRD 2: ./test.sh runs it as root"]
fn the_cluster_lab_holds_connections_through_a_directors_link_loss() {
    let c = ClusterUp::start(false);
    let hold = c.hold(30, 8);
    c.link_down("d2");
    c.wait_hops(2, Duration::from_secs(10), "d2's link down (BFD)");
    assert_eq!(c.answering(), ["rs1", "rs2", "rs3"], "{}", c.logs());
    c.none_broken(hold);
}

/// A director joins (d3, drained until then, is undrained) under 30 long-lived
/// connections (LVS-DR): ECMP moves about a third of them to d3, which sends them to the
/// same real servers: they go on through it, none broken.
#[test]
#[ignore = "needs root, network namespaces, clang (the XDP program) and BIRD 2: ./test.sh runs it as root"]
fn a_director_joining_the_cluster_breaks_no_connection() {
    let c = ClusterUp::start(false);
    c.bgp("d3", "drain");
    c.wait_hops(2, Duration::from_secs(10), "d3 drained");
    let hold = c.hold(30, 8);
    assert_eq!(c.echo_flows_on("d3"), 0, "d3 carried flows while drained");
    c.bgp("d3", "undrain");
    c.wait_hops(3, Duration::from_secs(10), "d3 undrained");
    assert!(
        Lab::wait(Duration::from_secs(5), || c.echo_flows_on("d3") > 0).is_some(),
        "no held connection reached d3 after it joined\n{}",
        String::from_utf8_lossy(&rvs(&["lab", "cluster", "status", "--prefix", &c.prefix]).stdout)
    );
    c.none_broken(hold);
}

/// Real server rs3's echo server dies while director d2 is killed (LVS-DR), under 60
/// long-lived connections: those to rs3 end (its process is gone), and of the others —
/// a third of them moved by ECMP from d2 to d1 and d3 — none breaks.
#[test]
#[ignore = "needs root, network namespaces, clang (the XDP program) and BIRD 2: ./test.sh runs it as root"]
fn a_real_server_lost_while_a_director_dies_breaks_only_its_own_connections() {
    let c = ClusterUp::start(false);
    let hold = c.hold(60, 8);
    ClusterUp::kill(c.pid("d2"), "KILL");
    ClusterUp::kill(c.pid_of("rs3", "echo"), "TERM");
    c.wait_hops(2, Duration::from_secs(10), "d2 killed");
    let (_, text) = ClusterUp::held(hold);
    // "held 60 connections to …:7 for 8 s (rs1 21, rs2 19, rs3 20): 20 broken"
    let count = |what: &str| -> usize {
        let at = text.find(what).unwrap_or_else(|| panic!("{what}? {text}")) + what.len();
        text[at..]
            .split(|ch: char| !ch.is_ascii_digit())
            .find(|d| !d.is_empty())
            .unwrap()
            .parse()
            .unwrap()
    };
    let to_rs3 = count("rs3 ");
    let broken: Vec<&str> = text
        .lines()
        .filter(|l| l.contains(" broke after "))
        .collect();
    assert!(to_rs3 > 0, "no connection went to rs3: {text}");
    assert_eq!(count("): "), broken.len(), "{text}");
    assert!(
        broken.iter().all(|l| l.contains("(to rs3)")),
        "connections to rs1/rs2 broken:\n{text}\n{}",
        c.logs()
    );
    assert_eq!(
        broken.len(),
        to_rs3,
        "rs3's connections should all end: {text}"
    );
}

/// FULLNAT with sync: director d2's link goes down under 30 long-lived connections. The
/// router's BFD withdraws d2; d2's local address moves by VRRP to d3, which rewrites the
/// real servers' replies for d2's connections (adopted by sync), and d1 and d3 forward
/// the clients' packets from d2's local end: none broken.
#[test]
#[ignore = "needs root, network namespaces, clang (the XDP program) and BIRD 2: ./test.sh runs it as root"]
fn fullnat_connections_survive_a_directors_link_loss_in_the_cluster_lab() {
    let c = ClusterUp::start(true);
    let hold = c.hold(30, 10);
    // Each director's flows reach the others within the sync's walk (about a second).
    std::thread::sleep(Duration::from_secs(2));
    c.link_down("d2");
    c.wait_hops(2, Duration::from_secs(10), "d2's link down (BFD)");
    c.none_broken(hold);
}

/// FULLNAT with sync: director d2's rvs is killed (SIGKILL) under 30 long-lived
/// connections, its kernel alive. d2's kernel has no socket for its FULLNAT
/// connections: the reset guard (nftables, installed by rvs, outliving it) keeps it from
/// resetting the real servers' replies that reach it before its local address has
/// moved. The lab runs rvs as rvs.service does, with `rvs cleanup` after it
/// (`ExecStopPost`): d2's local address leaves d2 — whose kernel would otherwise go on
/// answering ARP for it — with the guard, and moves by VRRP to d3, which rewrites the
/// real servers' replies for d2's connections: none broken.
#[test]
#[ignore = "needs root, network namespaces, clang (the XDP program) and BIRD 2: ./test.sh runs it as root"]
fn a_killed_fullnat_director_leaves_its_local_address_and_breaks_no_connection() {
    let c = ClusterUp::start(true);
    let laddr_on = |node: &str| {
        let o = Command::new("ip")
            .args([
                "-n",
                &format!("{}-{node}", c.p),
                "-4",
                "addr",
                "show",
                "eth0",
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).contains(" 198.18.0.23/32 ")
    };
    assert!(laddr_on("d2"), "d2 does not hold its local address");
    let guard_on = |node: &str| {
        let o = Command::new("ip")
            .args(["netns", "exec", &format!("{}-{node}", c.p)])
            .args(["nft", "list", "table", "inet", "rvs_fullnat"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    assert!(
        guard_on("d2").contains("elements = { 198.18.0.23 }"),
        "d2's reset guard: {}",
        guard_on("d2")
    );
    let hold = c.hold(30, 14);
    // d2's connections have reached d1 and d3 by sync (each walks its flow table about
    // once a second; longer on a loaded machine).
    let clients_on = |node: &str| -> std::collections::BTreeSet<String> {
        let sock = c.dir().join(format!("{node}.sock"));
        lab::rvs_at(&sock, &["adm", "-Lcn"])
            .lines()
            .filter(|l| l.contains(" 198.18.0.60:7 "))
            .filter_map(|l| l.split_whitespace().nth(3).map(str::to_owned))
            .collect()
    };
    assert!(
        Lab::wait(Duration::from_secs(10), || {
            let d2 = clients_on("d2");
            !d2.is_empty() && d2.is_subset(&clients_on("d1")) && d2.is_subset(&clients_on("d3"))
        })
        .is_some(),
        "d2's connections never all reached d1 and d3\n{}",
        c.logs()
    );
    ClusterUp::kill(c.pid("d2"), "KILL");
    c.wait_hops(2, Duration::from_secs(10), "d2 killed");
    assert!(
        Lab::wait(Duration::from_secs(5), || !laddr_on("d2") && laddr_on("d3")).is_some(),
        "d2's local address did not leave d2 for d3 (d2: {}, d3: {})\n{}",
        laddr_on("d2"),
        laddr_on("d3"),
        c.logs()
    );
    assert!(
        c.logs()
            .contains("(la_d2) removed 198.18.0.23/32 from eth0"),
        "rvs cleanup did not say what it removed\n{}",
        c.logs()
    );
    assert!(c.logs().contains("removed the FULLNAT reset guard"));
    assert_eq!(guard_on("d2"), "", "the guard outlived rvs cleanup");
    c.none_broken(hold);
}

/// Two XDP directors of an `rr` DR service on one link (real servers answering their
/// name, then echoing), a client whose route to the VIP is the link.
struct SyncLab {
    l: Lab,
    c1: std::path::PathBuf,
    c2: std::path::PathBuf,
}

impl SyncLab {
    fn new() -> SyncLab {
        SyncLab::with_globals("")
    }

    /// The same with these `global_defs` lines in both directors' configuration.
    fn with_globals(globals: &str) -> SyncLab {
        SyncLab::build(globals, false)
    }

    /// FULLNAT (`lb_kind FNAT`) from the local address [`LADDR`] instead of DR: the real
    /// servers hold no VIP, and reach the local address at d1's MAC (as if VRRP held it
    /// there) until [`SyncLab::laddr_via`] moves it.
    fn fullnat() -> SyncLab {
        let t = SyncLab::build("", true);
        t.laddr_via("d1");
        t
    }

    fn build(globals: &str, fullnat: bool) -> SyncLab {
        lab::require(false);
        let mut l = Lab::new(&[("c", 100), ("d1", 1), ("d2", 2), ("rs1", 11), ("rs2", 12)]);
        for (rs, name) in [("rs1", "rs1"), ("rs2", "rs2")] {
            if !fullnat {
                l.vip_on_lo(rs, VIP);
            }
            real_server(&l, rs, "0.0.0.0:80", name);
        }
        let (kind, group) = if fullnat {
            (
                "FNAT\n    laddr_group_name lg",
                format!("local_address_group lg {{\n    {LADDR}\n}}\n"),
            )
        } else {
            ("DR", String::new())
        };
        let conf = format!(
            "global_defs {{\n{globals}}}\n{group}\
             virtual_server {VIP} 80 {{\n    lb_algo rr\n    lb_kind {kind}\n    protocol TCP\n    \
             real_server 198.18.0.11 80 {{\n    }}\n    real_server 198.18.0.12 80 {{\n    }}\n}}\n"
        );
        let xdp = ["-C", "--dataplane", "xdp", "--xdp-iface", "eth0"];
        l.rvs("d1", &conf, &xdp);
        l.rvs("d2", &conf, &xdp);
        let (c1, c2) = (l.control("d1", 0), l.control("d2", 1));
        let up = Lab::wait(Duration::from_secs(30), || {
            [&c1, &c2]
                .iter()
                .all(|c| lab::rvs_at(c, &["adm", "-Ln"]).contains(&format!("{VIP}:80")))
        });
        assert!(up.is_some(), "the directors did not start\n{}", l.logs());
        l.ip_in("c", &["route", "add", &format!("{VIP}/32"), "dev", "eth0"]);
        SyncLab { l, c1, c2 }
    }

    /// `rvs adm --start-daemon STATE` (sync id 5) on the director of control socket `sock`.
    fn start(sock: &std::path::Path, state: &str) {
        let out = Command::new(env!("CARGO_BIN_EXE_rvs"))
            .args([
                "adm",
                "--start-daemon",
                state,
                "--mcast-interface",
                "eth0",
                "--syncid",
                "5",
            ])
            .env("RVS_CONTROL", sock)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{state}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The client's packets to the VIP go to director `n` (its MAC for the VIP).
    fn via(&self, n: &str) {
        self.pin(&["c"], VIP, n);
    }

    /// Nodes `on` reach `addr` at director `n`'s MAC (a permanent neighbour entry).
    fn pin(&self, on: &[&str], addr: &str, n: &str) {
        for node in on {
            self.l.ip_in(
                node,
                &[
                    "neigh",
                    "replace",
                    addr,
                    "lladdr",
                    &self.l.mac(n),
                    "dev",
                    "eth0",
                    "nud",
                    "permanent",
                ],
            );
        }
    }

    /// d1 the sync master (its daemon listed as such), d2 the backup, the client's
    /// packets to d1: 20 connections held over both real servers, once d2 has learnt
    /// each with the real server d1 chose.
    fn held_and_learnt(&self) -> Vec<(TcpStream, String)> {
        SyncLab::start(&self.c1, "master");
        SyncLab::start(&self.c2, "backup");
        let daemons = lab::rvs_at(&self.c1, &["adm", "-L", "--daemon"]);
        assert!(
            daemons.contains("master sync daemon (mcast=eth0, syncid=5"),
            "{daemons}"
        );
        self.via("d1");
        let held = self.hold(20);
        let names: std::collections::BTreeSet<&str> =
            held.iter().map(|(_, n)| n.as_str()).collect();
        assert_eq!(names.len(), 2, "rr used both real servers");
        let want = SyncLab::expected(&held);
        let got = Lab::wait(Duration::from_secs(15), || {
            SyncLab::learnt(&self.c2) == want
        });
        assert!(
            got.is_some(),
            "the backup's flows:\n{:?}\nwanted:\n{want:?}\n{}",
            SyncLab::learnt(&self.c2),
            self.l.logs()
        );
        held
    }

    /// Every held connection still echoes.
    fn none_broken(&self, held: &mut [(TcpStream, String)]) {
        assert_eq!(
            SyncLab::broken(held),
            0,
            "connections broken by the failover\n{}",
            self.l.logs()
        );
    }

    /// The real servers reach the FULLNAT local address at director `n`'s MAC.
    fn laddr_via(&self, n: &str) {
        self.pin(&["rs1", "rs2"], LADDR, n);
    }

    /// `n` connections from the client, each with the name of its real server.
    fn hold(&self, n: usize) -> Vec<(TcpStream, String)> {
        let client = self.l.ns("c");
        let vip: SocketAddr = format!("{VIP}:80").parse().unwrap();
        (0..n)
            .map(|_| {
                lab::in_ns(&client, || {
                    let s = TcpStream::connect_timeout(&vip, Duration::from_secs(3)).unwrap();
                    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
                    let mut line = String::new();
                    std::io::BufReader::new(&s).read_line(&mut line).unwrap();
                    (s, line.trim().to_owned())
                })
            })
            .collect()
    }

    /// "client real-server-address" of each connection held.
    fn expected(held: &[(TcpStream, String)]) -> std::collections::BTreeSet<String> {
        held.iter()
            .map(|(s, name)| {
                let rs = if name == "rs1" {
                    "198.18.0.11"
                } else {
                    "198.18.0.12"
                };
                format!("{} {rs}", s.local_addr().unwrap())
            })
            .collect()
    }

    /// The same of the ESTABLISHED flows a director lists (`-Lcn`).
    fn learnt(sock: &std::path::Path) -> std::collections::BTreeSet<String> {
        lab::rvs_at(sock, &["adm", "-Lcn"])
            .lines()
            .filter(|l| l.contains("ESTABLISHED"))
            .filter_map(|l| {
                let w: Vec<&str> = l.split_whitespace().collect();
                Some(format!("{} {}", w.get(3)?, w.get(5)?.rsplit_once(':')?.0))
            })
            .collect()
    }

    /// A count of `rvs status`'s connection sync line, the number after `what`.
    fn counted(sock: &std::path::Path, what: &str) -> u64 {
        let st = lab::rvs_at(sock, &["status"]);
        let line = st
            .lines()
            .find(|l| l.starts_with("connection sync:"))
            .unwrap_or_else(|| panic!("no sync line in\n{st}"))
            .to_owned();
        let at = line
            .find(what)
            .unwrap_or_else(|| panic!("no {what:?} in {line}"));
        line[at + what.len()..]
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no count after {what:?} in {line}"))
    }

    /// The count just before `what` in `rvs status`'s connection sync line.
    fn counted_before(sock: &std::path::Path, what: &str) -> u64 {
        let st = lab::rvs_at(sock, &["status"]);
        let line = st
            .lines()
            .find(|l| l.starts_with("connection sync:"))
            .unwrap_or_else(|| panic!("no sync line in\n{st}"));
        let at = line
            .find(what)
            .unwrap_or_else(|| panic!("no {what:?} in {line}"));
        line[..at]
            .split(|c: char| !c.is_ascii_digit())
            .rfind(|w| !w.is_empty())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no count before {what:?} in {line}"))
    }

    /// How many held connections no longer carry data both ways.
    fn broken(held: &mut [(TcpStream, String)]) -> usize {
        held.iter_mut()
            .map(|h| still_works(&mut h.0))
            .filter(|ok| !ok)
            .count()
    }
}

/// The IPVS connection sync protocol between two XDP directors (`rvs adm
/// --start-daemon`): the master's flows appear in the backup's table with the same real
/// servers, so when the VIP moves to the backup, connections that `rr` alone would have
/// sent elsewhere go on: 20 held connections, none broken.
#[test]
#[ignore = "needs root, network namespaces and clang (the XDP program): ./test.sh runs it as root"]
fn synced_flows_survive_a_failover_with_rr() {
    let t = SyncLab::new();
    let mut held = t.held_and_learnt();
    // What each daemon did, in `rvs status` (and the rvs_sync_* metrics).
    assert!(SyncLab::counted(&t.c1, "sent ") >= 20);
    assert!(SyncLab::counted(&t.c2, "adopted ") >= 20);
    assert!(SyncLab::counted(&t.c2, "received ") >= 1);
    // The VIP moves to d2: every connection goes on, to the same real server.
    t.via("d2");
    t.none_broken(&mut held);
}

/// FULLNAT with connection sync (issue #21): the master's FULLNAT flows reach the
/// backup with their local address and port (an option of the sync record the kernel
/// would skip), so when the client's packets and the real servers' replies to the local
/// address move to the backup, each connection goes on from the same local end to the
/// same real server: 20 held connections, none broken.
#[test]
#[ignore = "needs root, network namespaces and clang (the XDP program): ./test.sh runs it as root"]
fn fullnat_connections_survive_a_failover_with_sync() {
    let t = SyncLab::fullnat();
    let mut held = t.held_and_learnt();
    // d2 never exchanged a packet with the client: it says it cannot send the replies of
    // what it adopted until the client's packets come to it (here they will).
    assert!(
        t.l.logs().contains("no next hop known for the client"),
        "{}",
        t.l.logs()
    );
    t.via("d2");
    t.laddr_via("d2");
    t.none_broken(&mut held);
}

/// Active-active connection sync (beyond the kernel, which runs one director's master
/// against the others' backups): both directors run a master and a backup at once. Each
/// sends only the flows it forwards — the program marks them — so the flows d2 learnt
/// from d1 are not sent back (they would keep each other alive forever); when the client
/// moves to d2, d2 forwards them (20 of 20 go on) and sends them from then on, while d1
/// keeps its own entries rather than d2's view of them; and back to d1, none broken.
#[test]
#[ignore = "needs root, network namespaces and clang (the XDP program): ./test.sh runs it as root"]
fn both_directors_sync_each_other_without_echoing() {
    let t = SyncLab::new();
    for sock in [&t.c1, &t.c2] {
        SyncLab::start(sock, "master");
        SyncLab::start(sock, "backup");
    }
    t.via("d1");
    let mut held = t.hold(20);
    let want = SyncLab::expected(&held);
    let got = Lab::wait(Duration::from_secs(15), || SyncLab::learnt(&t.c2) == want);
    assert!(got.is_some(), "d2 never learnt d1's flows\n{}", t.l.logs());
    // d2 walks its table every second: two more walks, and nothing of it was sent.
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(
        SyncLab::counted(&t.c2, "sent "),
        0,
        "d2 sent back what it learnt\n{}",
        lab::rvs_at(&t.c2, &["status"])
    );
    assert!(SyncLab::counted(&t.c2, "adopted ") >= 20);
    // The client moves to d2: the flows go on, and d2 now sends them (to d1, which keeps
    // its own entries).
    t.via("d2");
    assert_eq!(
        SyncLab::broken(&mut held),
        0,
        "moving to d2\n{}",
        t.l.logs()
    );
    let sent = Lab::wait(Duration::from_secs(10), || {
        SyncLab::counted(&t.c2, "sent ") >= 20
            && SyncLab::counted_before(&t.c1, " forwarded here") >= 20
    });
    assert!(
        sent.is_some(),
        "d2: {}\nd1: {}",
        lab::rvs_at(&t.c2, &["status"]),
        lab::rvs_at(&t.c1, &["status"])
    );
    t.via("d1");
    assert_eq!(SyncLab::broken(&mut held), 0, "back to d1\n{}", t.l.logs());
    assert_eq!(SyncLab::learnt(&t.c1), want);
}

/// A sync datagram of one forged ESTABLISHED flow (client 198.18.9.9) to the VIP on rs1,
/// as the kernel's protocol writes it; signed with `key` when given.
fn forged_datagram(key: Option<&str>) -> Vec<u8> {
    use rvs_wire::ipvs_sync::{ConnRepr, MessageRepr};
    let m = MessageRepr {
        syncid: 5,
        conns: vec![ConnRepr {
            protocol: 6,
            flags: 3,
            state: 1,
            caddr: "198.18.9.9".parse().unwrap(),
            cport: 4242,
            vaddr: VIP.parse().unwrap(),
            vport: 80,
            daddr: "198.18.0.11".parse().unwrap(),
            dport: 80,
            fwmark: 0,
            timeout_s: Some(800),
            seq: None,
            pe_data: Vec::new(),
            pe_name: None,
            local: None,
        }],
    };
    let mut buf = vec![0u8; m.buffer_len()];
    m.emit(&mut buf).unwrap();
    if let Some(k) = key {
        // The trailer `rvs_sync_key` adds (docs/cluster.md): RVS1, ms since the epoch,
        // HMAC-SHA256 of all before it.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis();
        buf.extend_from_slice(b"RVS1");
        buf.extend_from_slice(&u64::try_from(now).unwrap().to_be_bytes());
        let tag = ring::hmac::sign(
            &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, k.as_bytes()),
            &buf,
        );
        buf.extend_from_slice(tag.as_ref());
    }
    buf
}

/// Connection sync beyond the kernel's multicast (`rvs_sync_peer`, `rvs_sync_key`):
/// both directors carry the same list of peers (each skips itself) and the same key.
/// The backup joins no multicast group, so the master's 20 flows reach it by unicast,
/// signed; datagrams from an address that is not a peer are dropped, and so are an
/// unsigned one and one signed with another key from a peer's own address — the forged
/// flow never appears in the backup's table, even one signed with the right key when
/// it does not come from a peer. A failover then breaks none of the 20.
#[test]
#[ignore = "needs root, network namespaces and clang (the XDP program): ./test.sh runs it as root"]
fn unicast_signed_sync_takes_only_its_peers_signed_datagrams() {
    let t = SyncLab::with_globals(
        "    rvs_sync_peer 198.18.0.1\n    rvs_sync_peer 198.18.0.2\n    rvs_sync_key lab-sync-secret\n",
    );
    SyncLab::start(&t.c1, "master");
    SyncLab::start(&t.c2, "backup");
    t.via("d1");
    let mut held = t.hold(20);
    let want = SyncLab::expected(&held);
    let got = Lab::wait(Duration::from_secs(15), || SyncLab::learnt(&t.c2) == want);
    assert!(
        got.is_some(),
        "the backup's flows (unicast, signed):\n{:?}\n{}",
        SyncLab::learnt(&t.c2),
        t.l.logs()
    );
    let logs = t.l.logs();
    assert!(
        logs.contains("unicast to the rvs_sync_peer directors") && logs.contains(", signed)"),
        "{logs}"
    );
    let to: SocketAddr = "198.18.0.2:8848".parse().unwrap();
    let send_from = |ns: &str, src: &str, dgram: Vec<u8>| {
        let src: SocketAddr = format!("{src}:0").parse().unwrap();
        lab::in_ns(&t.l.ns(ns), move || {
            let s = std::net::UdpSocket::bind(src).unwrap();
            s.send_to(&dgram, to).unwrap();
        });
    };
    // From the client, not a peer: even signed with the right key.
    send_from(
        "c",
        "198.18.0.100",
        forged_datagram(Some("lab-sync-secret")),
    );
    // From d1's address (a peer): unsigned, and signed with another key.
    send_from("d1", "198.18.0.1", forged_datagram(None));
    send_from("d1", "198.18.0.1", forged_datagram(Some("another key")));
    let dropped = Lab::wait(Duration::from_secs(5), || {
        let st = lab::rvs_at(&t.c2, &["status"]);
        st.contains("1 not from a peer") && st.contains("2 unauthenticated")
    });
    assert!(dropped.is_some(), "{}", lab::rvs_at(&t.c2, &["status"]));
    assert!(
        !lab::rvs_at(&t.c2, &["adm", "-Lcn"]).contains("198.18.9.9"),
        "a forged flow was adopted"
    );
    t.via("d2");
    assert_eq!(
        SyncLab::broken(&mut held),
        0,
        "the failover\n{}",
        t.l.logs()
    );
}

/// A director that (re)joins asks its peers for every flow (`rvs_sync_peer`; the
/// kernel's protocol has no such message, so a backup waits for the master's refresh,
/// every 30 s): d1 runs both daemons and has sent its 20 connections once when d2
/// starts its own; d2 lists all 20 within 5 s, and the failover to it breaks none.
#[test]
#[ignore = "needs root, network namespaces and clang (the XDP program): ./test.sh runs it as root"]
fn a_director_that_joins_gets_every_flow_at_once() {
    let t = SyncLab::with_globals("    rvs_sync_peer 198.18.0.1\n    rvs_sync_peer 198.18.0.2\n");
    SyncLab::start(&t.c1, "master");
    SyncLab::start(&t.c1, "backup");
    t.via("d1");
    let mut held = t.hold(20);
    let want = SyncLab::expected(&held);
    let sent = Lab::wait(Duration::from_secs(10), || {
        SyncLab::counted(&t.c1, "sent ") >= 20
    });
    assert!(sent.is_some(), "{}", lab::rvs_at(&t.c1, &["status"]));
    // Sent once; unchanged, they are not sent again before the refresh.
    std::thread::sleep(Duration::from_secs(2));
    let before = SyncLab::counted(&t.c1, "sent ");
    SyncLab::start(&t.c2, "backup");
    SyncLab::start(&t.c2, "master");
    let got = Lab::wait(Duration::from_secs(5), || SyncLab::learnt(&t.c2) == want);
    assert!(
        got.is_some(),
        "d2 has {:?}\nd1 sent {before}, then {}\n{}",
        SyncLab::learnt(&t.c2),
        SyncLab::counted(&t.c1, "sent "),
        t.l.logs()
    );
    assert!(t.l.logs().contains("(re)joined and asks for every flow"));
    t.via("d2");
    assert_eq!(
        SyncLab::broken(&mut held),
        0,
        "the failover\n{}",
        t.l.logs()
    );
}
