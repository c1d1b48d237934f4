//! `rvs lab cluster up|down|status`: the seed articles' scaled-out topology ("OSPF +
//! LVS", issue #21) in network namespaces — clients behind a router that runs BIRD 2 and
//! installs the VIP's route over every director (ECMP, hashing on ports), three
//! directors (rvs, XDP data plane, LVS-DR with `mh`, each announcing the VIP through its
//! own BIRD with `rvs_bgp`), three real servers (the VIP on `lo`). Nothing is created in
//! the host's own namespace.
//!
//! ```text
//!             198.18.1.0/24                      198.18.0.0/24
//! client .100 ──── .1 router (BIRD, ECMP) .1 ──┬── d1 .2, d2 .3, d3 .4 (rvs + BIRD)
//!                                               └── rs1 .11, rs2 .12, rs3 .13 (VIP on lo)
//! ```
//!
//! The real servers answer HTTP on port 80 (their name) and echo lines on port 7 after
//! their name (long-lived connections, `rvs lab hold`); both are LVS-DR `mh` services.
//!
//! `--fnat`: both are FULLNAT services instead. Each director forwards from a local
//! address of its own (`d1` 198.18.0.22, `d2` .23, `d3` .24), which a VRRP instance per
//! address holds (its director MASTER, the others BACKUP: a dead director's address
//! moves to a live one); every director runs a master and a backup sync daemon, so
//! whichever director a connection's packets or replies reach next knows its real server
//! and local end. The real servers need no VIP and no ARP settings.

use super::lab::{dir, in_ns, ip, ns, ns_exists, spawn};
use anyhow::{bail, Context as _, Result};
use std::fmt::Write as _;
use std::process::{Command, ExitCode};

pub const VIP: &str = "198.18.0.60";
const DIRECTORS: [(&str, u8); 3] = [("d1", 2), ("d2", 3), ("d3", 4)];
const REALS: [(&str, u8); 3] = [("rs1", 11), ("rs2", 12), ("rs3", 13)];

/// The cluster's namespaces share the lab's prefix with a `c` (beside a classic lab).
fn prefix_of(p: &str) -> String {
    format!("{p}c")
}

/// The router's BIRD: a session with each director (BFD on), their routes merged into
/// one multipath route in the kernel.
pub fn router_conf() -> String {
    let mut c = String::from(
        "router id 198.18.0.1;\nlog stderr all;\nprotocol device {}\n\
         protocol kernel { ipv4 { import none; export all; }; merge paths on; }\n\
         protocol bfd { interface \"*\" { min rx interval 100 ms; min tx interval 100 ms; \
         multiplier 3; }; }\n",
    );
    for (name, host) in DIRECTORS {
        let _ = writeln!(
            c,
            "protocol bgp {name} {{ local as 65000; neighbor 198.18.0.{host} as 65001; \
             connect retry time 1; error wait time 1, 5; bfd on; \
             ipv4 {{ import all; export none; }}; }}"
        );
    }
    c
}

/// Director `host`'s FULLNAT local address (d1: 198.18.0.22, …).
fn laddr(host: u8) -> String {
    format!("198.18.0.{}", 20 + host)
}

/// A director's keepalived.conf: the VIP's two services, LVS-DR with `mh` (every
/// director builds the same table), and `rvs_bgp` towards the router. `fnat`: FULLNAT
/// from the director's local address, and a VRRP instance per director's local address
/// (this director's MASTER, the others' BACKUP, 0.1 s adverts).
pub fn director_conf(host: u8, fnat: bool) -> String {
    let reals = |port: u16| {
        REALS.iter().fold(String::new(), |mut out, (_, h)| {
            let _ = writeln!(
                out,
                "    real_server 198.18.0.{h} {port} {{\n        TCP_CHECK {{\n            \
                 connect_timeout 1\n        }}\n    }}"
            );
            out
        })
    };
    // FULLNAT: a local address that moves is announced again past the real servers'
    // neighbour lock time (1 s: an entry updated within it ignores a gratuitous ARP).
    let garp = if fnat {
        "    vrrp_garp_master_repeat 3\n    vrrp_garp_interval 0.4\n    vrrp_garp_master_delay 1\n"
    } else {
        ""
    };
    let mut c = format!(
        "global_defs {{\n    router_id d{}\n{garp}}}\n\nrvs_bgp {{\n    router_id 198.18.0.{host}\n    \
         local_as 65001\n    neighbor 198.18.0.1 {{\n        remote_as 65000\n        bfd\n    \
         }}\n    withdraw_delay 1\n}}\n",
        host - 1
    );
    let kind = if fnat {
        let _ = writeln!(c, "\nlocal_address_group own {{\n    {}\n}}", laddr(host));
        for (name, h) in DIRECTORS {
            let _ = writeln!(
                c,
                "\nvrrp_instance la_{name} {{\n    state BACKUP\n    interface eth0\n    \
                 virtual_router_id {}\n    priority {}\n    advert_int 0.1\n    version 3\n    \
                 virtual_ipaddress {{\n        {}/32\n    }}\n}}",
                50 + h,
                if h == host { 150 } else { 100 + host },
                laddr(h)
            );
        }
        "FNAT\n    laddr_group_name own"
    } else {
        "DR"
    };
    for port in [80, 7] {
        let _ = writeln!(
            c,
            "\nvirtual_server {VIP} {port} {{\n    delay_loop 1\n    lb_algo mh\n    mh-port\n    \
             lb_kind {kind}\n    protocol TCP\n{}}}",
            reals(port)
        );
    }
    c
}

fn veth(br: &str, bridge: &str, port: &str, node_ns: &str, ifname: &str, addr: &str) -> Result<()> {
    ip(&[
        "-n", br, "link", "add", port, "type", "veth", "peer", "name", ifname, "netns", node_ns,
    ])?;
    ip(&["-n", br, "link", "set", port, "master", bridge, "up"])?;
    ip(&["-n", node_ns, "addr", "add", addr, "dev", ifname])?;
    ip(&["-n", node_ns, "link", "set", ifname, "up"])
}

fn sysctl(p: &str, node: &str, kv: &str) -> Result<()> {
    in_ns(p, node, &["sysctl", "-qw", kv])
}

pub fn up(prefix: &str, fnat: bool) -> Result<()> {
    let p = prefix_of(prefix);
    if Command::new("bird").arg("--version").output().is_err() {
        bail!("the cluster lab needs BIRD 2 (apt-get install bird2)");
    }
    if ns_exists(&p, "br") {
        bail!("the cluster lab {prefix} is up already (rvs lab cluster down first)");
    }
    let d = dir(&p);
    std::fs::create_dir_all(&d)?;
    let br = ns(&p, "br");
    ip(&["netns", "add", &br])?;
    for b in ["br0", "br1"] {
        ip(&["-n", &br, "link", "add", b, "type", "bridge"])?;
        ip(&["-n", &br, "link", "set", b, "up"])?;
    }
    let mut port = 0;
    let mut next_port = || {
        port += 1;
        format!("p{port}")
    };
    let nodes: Vec<(&str, u8)> = [("router", 1)]
        .into_iter()
        .chain(DIRECTORS)
        .chain(REALS)
        .collect();
    for (node, host) in nodes.iter().copied().chain([("client", 100)]) {
        let n = ns(&p, node);
        ip(&["netns", "add", &n])?;
        ip(&["-n", &n, "link", "set", "lo", "up"])?;
        if node == "client" {
            veth(&br, "br1", &next_port(), &n, "eth0", "198.18.1.100/24")?;
            ip(&["-n", &n, "route", "add", "default", "via", "198.18.1.1"])?;
        } else {
            veth(
                &br,
                "br0",
                &next_port(),
                &n,
                "eth0",
                &format!("198.18.0.{host}/24"),
            )?;
            if DIRECTORS.iter().any(|(d, _)| *d == node) {
                // As a director's: its route to the clients goes through the router
                // (where a director that adopts a FULLNAT connection sends the replies).
                ip(&["-n", &n, "route", "add", "default", "via", "198.18.0.1"])?;
            }
        }
    }
    // The router: the clients' segment on eth1, forwarding, L4 hashing for multipath.
    veth(
        &br,
        "br1",
        &next_port(),
        &ns(&p, "router"),
        "eth1",
        "198.18.1.1/24",
    )?;
    sysctl(&p, "router", "net.ipv4.ip_forward=1")?;
    sysctl(&p, "router", "net.ipv4.fib_multipath_hash_policy=1")?;
    let rconf = d.join("router-bird.conf");
    std::fs::write(&rconf, router_conf())?;
    spawn(
        &p,
        "router",
        "bird",
        &[
            "bird".into(),
            "-f".into(),
            "-c".into(),
            rconf.display().to_string(),
            "-s".into(),
            d.join("router-bird.ctl").display().to_string(),
        ],
    )?;
    let me = std::env::current_exe().context("locating the rvs binary")?;
    let me = me.display().to_string();
    for (node, _) in REALS {
        if !fnat {
            ip(&[
                "-n",
                &ns(&p, node),
                "addr",
                "add",
                &format!("{VIP}/32"),
                "dev",
                "lo",
            ])?;
            for kv in [
                "net.ipv4.conf.all.arp_ignore=1",
                "net.ipv4.conf.all.arp_announce=2",
            ] {
                sysctl(&p, node, kv)?;
            }
        }
        ip(&[
            "-n",
            &ns(&p, node),
            "route",
            "add",
            "default",
            "via",
            "198.18.0.1",
        ])?;
        for (tag, sub, port) in [("http", "serve", 80), ("echo", "echo", 7)] {
            spawn(
                &p,
                node,
                tag,
                &[
                    me.clone(),
                    "lab".into(),
                    sub.into(),
                    node.into(),
                    format!("0.0.0.0:{port}"),
                ],
            )?;
        }
    }
    for (node, host) in DIRECTORS {
        let conf = d.join(format!("{node}.conf"));
        std::fs::write(&conf, director_conf(host, fnat))?;
        // LVS-DR: checkers and the data plane only (-C); FULLNAT: VRRP too.
        let mut args = vec![me.clone(), "run".into()];
        if !fnat {
            args.push("-C".into());
        }
        args.extend([
            "-f".into(),
            conf.display().to_string(),
            "--dataplane".into(),
            "xdp".into(),
            "--xdp-iface".into(),
            "eth0".into(),
            "--control".into(),
            d.join(format!("{node}.sock")).display().to_string(),
            "--pid-file".into(),
            d.join(format!("{node}.rvs-pid")).display().to_string(),
        ]);
        // As rvs.service runs it: `rvs cleanup` once it has exited, however it died
        // (ExecStopPost), so that a killed director's kernel does not keep its VRRP
        // addresses. The shell records rvs's own pid where a director's pid goes.
        let mut sup = vec![
            "sh".to_owned(),
            "-c".into(),
            "me=$1 conf=$2 pidf=$3 at=$4; shift 4; \"$me\" \"$@\" & echo $! > \"$at\"; \
             wait $!; exec \"$me\" cleanup -q -f \"$conf\" --pid-file \"$pidf\""
                .into(),
            "sup".into(),
            me.clone(),
            conf.display().to_string(),
            d.join(format!("{node}.rvs-pid")).display().to_string(),
            d.join(format!("{node}-rvs.pid")).display().to_string(),
        ];
        sup.extend(args.into_iter().skip(1));
        spawn(&p, node, "sup", &sup)?;
    }
    if fnat {
        start_sync(&me, &d)?;
    }
    println!(
        "cluster lab {prefix} is up: client 198.18.1.100 behind the router 198.18.1.1 / \
         198.18.0.1 (BIRD, ECMP), directors d1 d2 d3 198.18.0.2-4 (rvs, XDP, {} mh, \
         rvs_bgp), real servers rs1 rs2 rs3 198.18.0.11-13, VIP {VIP} ports 80 (HTTP) and 7 \
         (echo)\n\
         try:  rvs lab cluster status\n      rvs lab exec --prefix {p} client curl -s http://{VIP}/\n\
         logs and configs: {}",
        if fnat {
            "FULLNAT from 198.18.0.22-24 (VRRP), connection sync both ways,"
        } else {
            "LVS-DR"
        },
        d.display()
    );
    Ok(())
}

/// Every director runs a master and a backup connection sync daemon (sync id 1, on
/// eth0), once its control socket answers (at most 30 s each).
fn start_sync(me: &str, d: &std::path::Path) -> Result<()> {
    for (node, _) in DIRECTORS {
        let sock = d.join(format!("{node}.sock"));
        let adm = |args: &[&str]| {
            Command::new(me)
                .arg("adm")
                .args(args)
                .arg("--control")
                .arg(&sock)
                .output()
                .is_ok_and(|o| o.status.success())
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !adm(&["-Ln"]) {
            if std::time::Instant::now() > deadline {
                bail!("{node} never answered on {}", sock.display());
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        for state in ["master", "backup"] {
            let args = [
                "--start-daemon",
                state,
                "--mcast-interface",
                "eth0",
                "--syncid",
                "1",
            ];
            if !adm(&args) {
                bail!("{node}: rvs adm --start-daemon {state} failed");
            }
        }
    }
    Ok(())
}

pub fn down(prefix: &str) -> Result<()> {
    let p = prefix_of(prefix);
    // (The directors' supervising shells: `dash` where `sh` is it.)
    super::lab::stop_processes(&dir(&p), &["bird", "sh", "dash", "bash"]);
    for node in [
        "client", "rs3", "rs2", "rs1", "d3", "d2", "d1", "router", "br",
    ] {
        if ns_exists(&p, node) {
            ip(&["netns", "del", &ns(&p, node)])?;
        }
    }
    let _ = std::fs::remove_dir_all(dir(&p));
    println!("cluster lab {prefix} is down");
    Ok(())
}

/// The router's next hops for the VIP, each director's BGP state, and which director
/// each flow it carries takes (its XDP flow table).
pub fn status(prefix: &str) -> Result<ExitCode> {
    let p = prefix_of(prefix);
    if !ns_exists(&p, "br") {
        println!("the cluster lab {prefix} is not up (rvs lab cluster up)");
        return Ok(ExitCode::from(1));
    }
    let o = Command::new("ip")
        .args(["-n", &ns(&p, "router"), "route", "show", VIP])
        .output()?;
    let route = String::from_utf8_lossy(&o.stdout);
    let hops: Vec<&str> = route
        .split_whitespace()
        .collect::<Vec<_>>()
        .windows(2)
        .filter(|w| w[0] == "via")
        .map(|w| w[1])
        .collect();
    println!(
        "router: {VIP} via {}",
        if hops.is_empty() {
            "nothing (no director announces it)".to_owned()
        } else {
            hops.join(", ")
        }
    );
    let me = std::env::current_exe()?;
    for (node, host) in DIRECTORS {
        let sock = dir(&p).join(format!("{node}.sock"));
        let bgp = Command::new(&me)
            .args(["bgp", "--control"])
            .arg(&sock)
            .output()?;
        let flows = Command::new(&me)
            .args(["adm", "-Lcn", "--control"])
            .arg(&sock)
            .output()?;
        let flows = String::from_utf8_lossy(&flows.stdout);
        let lines: Vec<&str> = flows
            .lines()
            .filter(|l| l.starts_with("TCP") || l.starts_with("UDP"))
            .collect();
        println!(
            "\n{node} 198.18.0.{host}: {}\n  {} flow(s) through it",
            String::from_utf8_lossy(&bgp.stdout)
                .trim_end()
                .replace('\n', "\n  "),
            lines.len()
        );
        for l in lines {
            println!("    {l}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `rvs lab echo NAME ADDR`: sends NAME, then echoes every line, per connection.
pub fn echo(name: &str, addr: std::net::SocketAddr) -> Result<ExitCode> {
    use std::io::{BufRead as _, Write as _};
    let l =
        std::net::TcpListener::bind(addr).with_context(|| format!("echo: listening on {addr}"))?;
    for s in l.incoming() {
        let Ok(mut s) = s else { continue };
        let name = name.to_owned();
        std::thread::spawn(move || {
            let _ = writeln!(s, "{name}");
            let Ok(c) = s.try_clone() else { return };
            let mut r = std::io::BufReader::new(c);
            let mut line = String::new();
            while r.read_line(&mut line).is_ok_and(|n| n > 0) {
                if s.write_all(line.as_bytes()).is_err() {
                    return;
                }
                line.clear();
            }
        });
    }
    Ok(ExitCode::SUCCESS)
}

/// `rvs lab hold`: `n` connections to an echo service, each checked every 100 ms (a
/// line out, the same line back within `timeout`) for `seconds`; a connection that
/// fails once is counted broken and dropped. Prints the longest wait for an echo too.
/// Exit status 1 when any broke.
pub fn hold(
    to: std::net::SocketAddr,
    n: usize,
    seconds: u64,
    timeout: std::time::Duration,
    ready: Option<&std::path::Path>,
) -> Result<ExitCode> {
    use std::io::{BufRead as _, Write as _};
    use std::time::{Duration, Instant};
    struct Held {
        s: std::net::TcpStream,
        r: std::io::BufReader<std::net::TcpStream>,
        rs: String,
    }
    let mut held = Vec::with_capacity(n);
    for _ in 0..n {
        let s = std::net::TcpStream::connect_timeout(&to, Duration::from_secs(3))
            .with_context(|| format!("connecting to {to}"))?;
        s.set_read_timeout(Some(timeout))?;
        let mut r = std::io::BufReader::new(s.try_clone()?);
        let mut rs = String::new();
        r.read_line(&mut rs)?;
        held.push(Held {
            s,
            r,
            rs: rs.trim().to_owned(),
        });
    }
    let mut by_rs = std::collections::BTreeMap::<String, usize>::new();
    for h in &held {
        *by_rs.entry(h.rs.clone()).or_default() += 1;
    }
    if let Some(f) = ready {
        std::fs::write(f, format!("{n}\n"))?;
    }
    let mut broken: Vec<String> = Vec::new();
    let mut longest = Duration::ZERO;
    let t0 = Instant::now();
    let mut round = 0u64;
    while t0.elapsed() < Duration::from_secs(seconds) {
        round += 1;
        let msg = format!("{round}\n");
        let mut i = 0;
        while i < held.len() {
            let h = &mut held[i];
            let mut back = String::new();
            let asked = Instant::now();
            let ok = h.s.write_all(msg.as_bytes()).is_ok()
                && h.r.read_line(&mut back).is_ok()
                && back == msg;
            if ok {
                longest = longest.max(asked.elapsed());
                i += 1;
            } else {
                let h = held.swap_remove(i);
                broken.push(format!(
                    "{} (to {}) broke after {:.1} s",
                    h.s.local_addr().map(|a| a.to_string()).unwrap_or_default(),
                    h.rs,
                    t0.elapsed().as_secs_f64()
                ));
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let spread: Vec<String> = by_rs.iter().map(|(k, v)| format!("{k} {v}")).collect();
    println!(
        "held {n} connections to {to} for {seconds} s ({}): {} broken",
        spread.join(", "),
        broken.len()
    );
    for b in &broken {
        println!("  {b}");
    }
    println!("longest wait for an echo: {} ms", longest.as_millis());
    Ok(if broken.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `rvs lab probe`: a new connection every 10 ms (an HTTP request, answered within
/// 3 s) for `seconds`, each started on time whatever the earlier ones are doing. Prints
/// the failures, the longest time between two answers, and the outage as new clients
/// see it: the span of start times of the attempts not answered within 500 ms (a SYN
/// lost into a dead director waits for its retransmission, 1 s later).
pub fn probe(to: std::net::SocketAddr, seconds: u64) -> ExitCode {
    use std::io::{Read as _, Write as _};
    use std::time::{Duration, Instant};
    const PROMPT: Duration = Duration::from_millis(500);
    let t0 = Instant::now();
    // (started, answered at) per attempt, in start order.
    let attempts: Vec<(Duration, Option<Duration>)> = std::thread::scope(|sc| {
        let mut running = Vec::new();
        while t0.elapsed() < Duration::from_secs(seconds) {
            let started = t0.elapsed();
            running.push(sc.spawn(move || {
                let good = std::net::TcpStream::connect_timeout(&to, Duration::from_secs(3))
                    .and_then(|mut s| {
                        s.set_read_timeout(Some(Duration::from_secs(3)))?;
                        s.write_all(b"GET / HTTP/1.0\r\n\r\n")?;
                        let mut b = [0u8; 1];
                        s.read_exact(&mut b)
                    })
                    .is_ok();
                (started, good.then(|| t0.elapsed()))
            }));
            std::thread::sleep(Duration::from_millis(10));
        }
        running
            .into_iter()
            .map(|h| h.join().unwrap_or((Duration::ZERO, None)))
            .collect()
    });
    let ok = attempts.iter().filter(|a| a.1.is_some()).count();
    let failed = attempts.len() - ok;
    // The answers' times, between the start and the end of the run.
    let mut answers: Vec<Duration> = attempts.iter().filter_map(|a| a.1).collect();
    answers.push(Duration::ZERO);
    answers.push(Duration::from_secs(seconds));
    answers.sort();
    let longest = answers
        .windows(2)
        .map(|w| w[1].saturating_sub(w[0]))
        .max()
        .unwrap_or_default();
    let slow: Vec<Duration> = attempts
        .iter()
        .filter(|(s, a)| a.is_none_or(|a| a.saturating_sub(*s) > PROMPT))
        .map(|a| a.0)
        .collect();
    let outage = match (slow.first(), slow.last()) {
        (Some(a), Some(b)) => b.saturating_sub(*a) + Duration::from_millis(10),
        _ => Duration::ZERO,
    };
    println!(
        "probed {to} for {seconds} s: {ok} connections answered, {failed} failed, longest \
         gap between answers {} ms, {} not answered within {} ms, started within a span of \
         {} ms",
        longest.as_millis(),
        slow.len(),
        PROMPT.as_millis(),
        outage.as_millis()
    );
    ExitCode::SUCCESS
}
