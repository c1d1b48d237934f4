//! `rvs doctor -f keepalived.conf`: from a director, checks what LVS and keepalived
//! leave to the operator (the seed articles' traps) and says how to fix each finding:
//!
//! - every real server of a TCP service answers on its own address; an LVS-DR one also
//!   through the DR path (a SYN to the VIP in a frame to its MAC), an LVS-TUN one inside
//!   IP-in-IP: else its VIP is not on its loopback (`tunl0`), reverse-path filtering
//!   drops the tunnelled packet, or nothing listens on the VIP's port there;
//! - where each real server routes its replies to clients (a SYN from an address off its
//!   link; the answer reaches the director only through its route): LVS-NAT needs the
//!   director there, LVS-DR must not have it;
//! - LVS-TUN: whether the path MTU carries the clients' packets plus the tunnel's 20 bytes;
//! - no real server answers ARP for a VIP (who has the VIP is asked on the segment): one
//!   that does draws the clients' packets past the director;
//! - with the kernel's IPVS, a director with LVS-NAT services forwards IP and, one-armed,
//!   sends no ICMP redirects;
//! - no other router advertises one of the configuration's VRIDs with other VIPs on the
//!   instance's interface (two VRRP groups sharing a VRID fight).
//!
//! The probes are the health checker's ([`rvs_check::path`]) and the split-brain
//! detector's ([`rvs_vrrpd::conflict::who_has`]).

use anyhow::Result;
use rvs_check::path::{PathOutcome, PathTarget, PathVia};
use rvs_conf::model::{Method, Protocol, VsKey};
use std::net::{IpAddr, Ipv4Addr};
use std::process::ExitCode;
use std::time::Duration;

#[derive(clap::Args, Debug)]
pub struct DoctorArgs {
    /// The configuration file.
    #[arg(
        short = 'f',
        long = "file",
        default_value = "/etc/keepalived/keepalived.conf"
    )]
    pub file: std::path::PathBuf,
    /// The findings as JSON.
    #[arg(long)]
    pub json: bool,
    /// The data plane the director runs (what it needs of the kernel differs).
    #[arg(long, default_value = "ipvs", value_parser = ["ipvs", "xdp", "proxy"])]
    pub dataplane: String,
    /// How long each probe waits for an answer (seconds).
    #[arg(long, default_value_t = 2.0)]
    pub wait: f64,
    /// The client address of the route checks: a SYN from it tells where a real server
    /// sends its replies to clients. Any address off the real servers' link that nobody
    /// uses (default: one of the benchmarking range 198.18.0.0/15).
    #[arg(long, default_value = "198.19.255.254")]
    pub client: Ipv4Addr,
    /// How long to listen for other routers' VRRP adverts on each instance's interface
    /// (seconds; 0: not at all).
    #[arg(long, default_value_t = 3.0)]
    pub listen: f64,
}

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Ok,
    /// Works, with a risk the operator should know (not counted as a problem).
    Warning,
    Problem,
}

/// One thing `rvs doctor` found.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Finding {
    pub severity: Severity,
    /// What it is about (`real server 198.18.0.12:80 of 198.18.0.50:80`, `director`).
    pub subject: String,
    pub what: String,
    /// How to fix it (problems).
    pub fix: Option<String>,
}

fn mac_text(m: [u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

pub fn run(a: &DoctorArgs) -> Result<ExitCode> {
    let parsed = rvs_conf::parse_file(&a.file, &rvs_conf::Options::default());
    if parsed.errors() > 0 {
        eprint!("{}", parsed.render());
        return Ok(ExitCode::from(2));
    }
    let wait = Duration::from_secs_f64(a.wait.clamp(0.1, 30.0));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let listen = Duration::from_secs_f64(a.listen.clamp(0.0, 60.0));
    let findings = rt.block_on(async {
        let mut f = examine(a, &parsed.config, wait).await;
        if !listen.is_zero() {
            f.extend(vrids(&parsed.config, listen).await);
        }
        f
    });
    if a.json {
        println!("{}", serde_json::to_string_pretty(&findings)?);
    } else {
        for f in &findings {
            match f.severity {
                Severity::Ok => println!("ok       {}: {}", f.subject, f.what),
                Severity::Warning => {
                    println!("warning  {}: {}", f.subject, f.what);
                    if let Some(fix) = &f.fix {
                        println!("         fix: {fix}");
                    }
                }
                Severity::Problem => {
                    println!("PROBLEM  {}: {}", f.subject, f.what);
                    if let Some(fix) = &f.fix {
                        println!("         fix: {fix}");
                    }
                }
            }
        }
        let n = findings
            .iter()
            .filter(|f| f.severity == Severity::Problem)
            .count();
        println!("{n} problem{}", if n == 1 { "" } else { "s" });
    }
    Ok(
        if findings.iter().any(|f| f.severity == Severity::Problem) {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        },
    )
}

async fn examine(a: &DoctorArgs, cfg: &rvs_conf::Config, wait: Duration) -> Vec<Finding> {
    let mut director = Vec::new();
    let mut out = Vec::new();
    let nat = cfg.virtual_servers.iter().any(|vs| {
        vs.real_servers
            .iter()
            .any(|rs| rs.forwarding.method == Method::Nat)
    });
    if nat && a.dataplane == "ipvs" {
        let fwd = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap_or_default();
        if fwd.trim() == "1" {
            director.push(ok("director", "forwards IP (LVS-NAT)"));
        } else {
            director.push(Finding {
                severity: Severity::Problem,
                subject: "director".into(),
                what: "LVS-NAT services, but net.ipv4.ip_forward is 0: the real servers' \
                       replies are not forwarded back to the clients"
                    .into(),
                fix: Some("sysctl -w net.ipv4.ip_forward=1 (and in /etc/sysctl.d/)".into()),
            });
        }
    }
    // (VIP, its DR and TUN real servers) of the TCP services, for the ARP question.
    let mut vips: Vec<(Ipv4Addr, Vec<Ipv4Addr>)> = Vec::new();
    // The interfaces LVS-NAT real servers are on (the redirects question).
    let mut nat_devs: Vec<String> = Vec::new();
    for vs in &cfg.virtual_servers {
        let VsKey::Address { address, port } = vs.key else {
            continue;
        };
        if vs.protocol != Some(Protocol::Tcp) {
            continue;
        }
        for rs in &vs.real_servers {
            let own = std::net::SocketAddr::new(rs.address, rs.port);
            let subject = format!(
                "real server {own} of {}",
                std::net::SocketAddr::new(address, port)
            );
            if let Some(problem) = own_address(&subject, own, wait).await {
                out.push(problem);
                continue;
            }
            let method = rs.forwarding.method;
            if method == Method::FullNat {
                // Its replies go to the director's local addresses: each on this director
                // is tried as the source of a connection.
                out.push(ok(&subject, &format!("accepts TCP connections on {own}")));
                for &laddr in cfg.local_addresses(vs).iter().filter(|l| is_local(**l)) {
                    out.push(from_local_address(&subject, own, laddr, wait).await);
                }
                continue;
            }
            if method == Method::Nat {
                out.push(ok(&subject, &format!("accepts TCP connections on {own}")));
                if let std::net::SocketAddr::V4(own) = own {
                    let t = PathTarget {
                        vip: own,
                        rip: *own.ip(),
                        via: PathVia::Mac,
                    };
                    out.extend(route(&subject, t, a.client, wait, true).await);
                    if let Some((_, dev)) = rvs_check::path::neighbour(*own.ip()) {
                        nat_devs.push(dev);
                    }
                }
                continue;
            }
            // The probe `rvs_forwarding_path_check` would send, or why there is none.
            let (vip_port, rip, tunnel) =
                match rvs_conf::model::forwarding_path_probe(&vs.key, rs.address, &rs.forwarding) {
                    Ok(p) => p,
                    Err(why) => {
                        out.push(Finding {
                            severity: Severity::Warning,
                            subject,
                            what: format!(
                                "accepts TCP connections on {own}; its {} path is not probed: \
                                 {why}",
                                method_name(method)
                            ),
                            fix: None,
                        });
                        continue;
                    }
                };
            let vip = *vip_port.ip();
            let via = if tunnel { PathVia::Ipip } else { PathVia::Mac };
            let t = PathTarget {
                vip: vip_port,
                rip,
                via,
            };
            let (finding, answered) = forwarding_path(&subject, t, wait).await;
            out.push(finding);
            if answered && via == PathVia::Mac {
                out.extend(route(&subject, t, a.client, wait, false).await);
            }
            if via == PathVia::Ipip {
                out.extend(tunnel_mtu(cfg, &subject, vip, rip));
            }
            match vips.iter_mut().find(|(v, _)| *v == vip) {
                Some((_, list)) => list.push(rip),
                None => vips.push((vip, vec![rip])),
            }
        }
    }
    director.extend(fullnat_director(cfg, a.client));
    if a.dataplane == "ipvs" {
        nat_devs.sort();
        nat_devs.dedup();
        director.extend(nat_devs.iter().filter_map(|d| redirects(d)));
    }
    for (vip, rips) in vips {
        out.extend(arp_for(vip, &rips, wait).await);
    }
    director.extend(out);
    director
}

/// Whether `addr` is one of this host's addresses (a socket can be bound to it; with
/// `ip_nonlocal_bind` set any address can).
fn is_local(addr: IpAddr) -> bool {
    std::net::UdpSocket::bind((addr, 0)).is_ok()
}

/// FULLNAT on this director: every local address is its own — on an interface, or held
/// by one of the configuration's VRRP instances (a local address nobody holds gets the
/// real servers' replies nowhere) — and it routes to the clients, to which it sends the
/// replies itself (connections handed over by sync find their clients' next hop so).
fn fullnat_director(cfg: &rvs_conf::Config, client: Ipv4Addr) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut groups: Vec<&str> = cfg
        .virtual_servers
        .iter()
        .filter(|vs| {
            vs.real_servers
                .iter()
                .any(|rs| rs.forwarding.method == Method::FullNat)
        })
        .filter_map(|vs| vs.laddr_group.as_deref())
        .collect();
    groups.sort_unstable();
    groups.dedup();
    if groups.is_empty() {
        return out;
    }
    for g in groups {
        for addr in cfg.local_address_groups.get(g).into_iter().flatten() {
            let subject = format!("local address {addr} (local_address_group {g})");
            let vrrp = cfg.vrrp_instances.iter().find(|i| {
                i.virtual_ipaddress
                    .iter()
                    .chain(&i.virtual_ipaddress_excluded)
                    .any(|v| v.address == *addr)
            });
            out.push(match (is_local(*addr), vrrp) {
                (true, _) => ok(&subject, "is on this director"),
                (false, Some(i)) => ok(
                    &subject,
                    &format!(
                        "held by vrrp_instance {} (on this director while it is MASTER)",
                        i.name
                    ),
                ),
                (false, None) => Finding {
                    severity: Severity::Problem,
                    subject,
                    what: "is not on this director and no vrrp_instance holds it: the real \
                           servers' replies to it never reach this director"
                        .into(),
                    fix: Some(format!(
                        "ip addr add {addr}/{} dev IFACE on this director only, or list it in \
                         a vrrp_instance's virtual_ipaddress",
                        if addr.is_ipv4() { 32 } else { 128 }
                    )),
                },
            });
        }
    }
    let routed =
        std::net::UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).and_then(|s| s.connect((client, 9)));
    out.push(match routed {
        Ok(()) => ok(
            "director",
            &format!("routes to the clients (FULLNAT replies; checked for {client})"),
        ),
        Err(e) => Finding {
            severity: Severity::Problem,
            subject: "director".into(),
            what: format!(
                "no route to the clients ({client}: {e}): FULLNAT replies, and connections \
                 taken over from another director by sync, cannot reach them"
            ),
            fix: Some(
                "a default route (or routes to the client networks) through the router".into(),
            ),
        },
    });
    out
}

/// A connection to the real server from one of this director's FULLNAT local
/// addresses: answered only if the real server's replies to that address come back here.
async fn from_local_address(
    subject: &str,
    own: std::net::SocketAddr,
    laddr: IpAddr,
    wait: Duration,
) -> Finding {
    let tried = async {
        let s = if laddr.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        s.bind(std::net::SocketAddr::new(laddr, 0))?;
        s.connect(own).await
    };
    match tokio::time::timeout(wait, tried).await {
        Ok(Ok(_)) => ok(
            subject,
            &format!("answers connections from the local address {laddr} (its replies come back)"),
        ),
        Ok(Err(e)) => Finding {
            severity: Severity::Problem,
            subject: subject.to_owned(),
            what: format!("a connection from the local address {laddr} failed: {e}"),
            fix: Some(format!(
                "on {}: accept connections from {laddr} (firewall)",
                own.ip()
            )),
        },
        Err(_) => Finding {
            severity: Severity::Problem,
            subject: subject.to_owned(),
            what: format!(
                "no answer within {wait:?} to a connection from the local address {laddr}: \
                 its replies to {laddr} do not come back to this director"
            ),
            fix: Some(format!(
                "on {} (or its router): a route to {laddr} through this director",
                own.ip()
            )),
        },
    }
}

fn ok(subject: &str, what: &str) -> Finding {
    Finding {
        severity: Severity::Ok,
        subject: subject.to_owned(),
        what: what.to_owned(),
        fix: None,
    }
}

fn method_name(m: Method) -> &'static str {
    match m {
        Method::Nat => "LVS-NAT",
        Method::Dr => "LVS-DR",
        Method::Tun => "LVS-TUN",
        Method::FullNat => "FULLNAT",
    }
}

/// A problem when the real server does not accept TCP connections on its own address.
async fn own_address(subject: &str, own: std::net::SocketAddr, wait: Duration) -> Option<Finding> {
    match tokio::time::timeout(wait, tokio::net::TcpStream::connect(own)).await {
        Ok(Ok(_)) => None,
        Ok(Err(e)) => Some(Finding {
            severity: Severity::Problem,
            subject: subject.to_owned(),
            what: format!("does not accept TCP connections on its own address {own}: {e}"),
            fix: Some("start its server, or check the firewall between the director and it".into()),
        }),
        Err(_) => Some(Finding {
            severity: Severity::Problem,
            subject: subject.to_owned(),
            what: format!("no answer on its own address {own} within {wait:?}"),
            fix: Some("check that it is up and reachable from the director".into()),
        }),
    }
}

/// The real server answers a SYN for the VIP sent along its forwarding path (the
/// finding, and whether it answered).
async fn forwarding_path(subject: &str, t: PathTarget, wait: Duration) -> (Finding, bool) {
    let (vip, rip) = (t.vip, t.rip);
    let how = match t.via {
        PathVia::Mac => "the DR path",
        PathVia::Ipip => "an IP-in-IP tunnel",
    };
    match rvs_check::path::syn(t, None, wait).await {
        Ok(p) => match p.failure_of(&t) {
            None => (
                ok(subject, &format!("answers on the VIP {vip} through {how}")),
                true,
            ),
            Some(what) => (
                Finding {
                    severity: Severity::Problem,
                    subject: subject.to_owned(),
                    fix: Some(match (p, t.via) {
                        (PathOutcome::Refused, _) => format!(
                            "make its server listen on {vip} (or on 0.0.0.0:{})",
                            vip.port()
                        ),
                        (PathOutcome::NoNeighbour, _) => {
                            "LVS-DR needs the real servers on the director's link (or use TUN)"
                                .into()
                        }
                        (_, PathVia::Ipip) => format!(
                            "on {rip}: modprobe ipip; ip link set tunl0 up; ip addr add {}/32 \
                             dev tunl0; sysctl -w net.ipv4.conf.tunl0.rp_filter=0 \
                             net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.all.arp_ignore=1 \
                             net.ipv4.conf.all.arp_announce=2",
                            vip.ip()
                        ),
                        _ => format!(
                            "on {rip}: ip addr add {}/32 dev lo; sysctl -w \
                             net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2",
                            vip.ip()
                        ),
                    }),
                    what,
                },
                false,
            ),
        },
        Err(e) => (
            Finding {
                severity: Severity::Problem,
                subject: subject.to_owned(),
                what: format!("cannot probe {how}: {e}"),
                fix: Some("run rvs doctor as root on the director (it sends raw packets)".into()),
            },
            false,
        ),
    }
}

/// The director's own address towards `rip`.
fn director_address(rip: Ipv4Addr) -> Option<Ipv4Addr> {
    match rvs_check::path::towards(rip).ok()?.local_addr().ok()? {
        std::net::SocketAddr::V4(a) => Some(*a.ip()),
        std::net::SocketAddr::V6(_) => None,
    }
}

/// Where the real server sends its replies to clients: a SYN from `client` (an address
/// off its link) is answered towards its route to the clients, and that answer reaches
/// the director only if the route goes through it. LVS-NAT needs it to (`nat`); an LVS-DR
/// real server must answer clients directly.
async fn route(
    subject: &str,
    t: PathTarget,
    client: Ipv4Addr,
    wait: Duration,
    nat: bool,
) -> Option<Finding> {
    let outcome = match rvs_check::path::syn(t, Some(client), wait).await {
        // LVS-NAT real servers may sit behind a router: then the director is on their
        // way back by routing, and this probe (a frame to their MAC) cannot ask.
        Ok(PathOutcome::NoNeighbour) => {
            return nat.then(|| Finding {
                severity: Severity::Warning,
                subject: subject.to_owned(),
                what: "not on the director's link: where it sends its replies is not probed \
                       (they must come back through the director)"
                    .into(),
                fix: None,
            })
        }
        Ok(o) => o,
        Err(e) => {
            return Some(Finding {
                severity: Severity::Problem,
                subject: subject.to_owned(),
                what: format!("cannot probe its route to the clients: {e}"),
                fix: Some("run rvs doctor as root on the director (it sends raw frames)".into()),
            })
        }
    };
    let through_us = matches!(outcome, PathOutcome::Answered | PathOutcome::Refused);
    let rip = t.rip;
    let dip = director_address(rip).map_or_else(|| "the director".to_owned(), |a| a.to_string());
    Some(match (nat, through_us) {
        (true, true) => ok(
            subject,
            &format!(
                "routes its replies to clients ({client}) through the director (LVS-NAT needs it)"
            ),
        ),
        (true, false) => Finding {
            severity: Severity::Problem,
            subject: subject.to_owned(),
            what: format!(
                "its replies to clients (tried from {client}) do not come back through the \
                 director: LVS-NAT can only rewrite the replies that pass through it, so \
                 clients get answers from {rip} they never asked"
            ),
            fix: Some(format!(
                "on {rip}: ip route replace default via {dip} (the director's address on its link)"
            )),
        },
        (false, true) => Finding {
            severity: Severity::Problem,
            subject: subject.to_owned(),
            what: format!(
                "its replies to clients (tried from {client}) come back to the director: its \
                 default route points at the director, so LVS-DR's replies take the director's \
                 path back (and are lost where it does not forward)"
            ),
            fix: Some(format!(
                "on {rip}: ip route replace default via ROUTER (the segment's gateway, not the \
                 director's {dip})"
            )),
        },
        (false, false) => ok(
            subject,
            &format!("does not send its replies to clients ({client}) through the director"),
        ),
    })
}

/// An LVS-TUN real server: IP-in-IP adds 20 bytes to every packet of the clients'; where
/// the path to the real server does not carry the clients' full-size packets plus 20, the
/// director must answer them with ICMP "fragmentation needed", and connections stall
/// where the clients' ICMP is filtered.
fn tunnel_mtu(
    cfg: &rvs_conf::Config,
    subject: &str,
    vip: Ipv4Addr,
    rip: Ipv4Addr,
) -> Option<Finding> {
    let path = path_mtu(rip).ok()?;
    // The clients' MTU: the interface of the VRRP instance that holds the VIP, else the
    // default route's.
    let dev = cfg
        .vrrp_instances
        .iter()
        .find(|v| {
            v.virtual_ipaddress
                .iter()
                .any(|a| a.address == IpAddr::V4(vip))
        })
        .and_then(|v| v.interface.clone())
        .or_else(default_route_dev);
    let client = dev
        .as_deref()
        .and_then(|d| std::fs::read_to_string(format!("/sys/class/net/{d}/mtu")).ok())
        .and_then(|m| m.trim().parse::<u32>().ok())
        .unwrap_or(1500);
    let inner = path.saturating_sub(20);
    if inner >= client {
        return Some(ok(
            subject,
            &format!(
                "the path to it (MTU {path}) carries the clients' {client}-byte packets tunnelled"
            ),
        ));
    }
    Some(Finding {
        severity: Severity::Warning,
        subject: subject.to_owned(),
        what: format!(
            "tunnelled packets are 20 bytes longer: the clients' {client}-byte packets ({}) \
             exceed the path MTU to it ({path}); the director answers them with ICMP \
             \"fragmentation needed\" (MTU {inner}), and connections stall where the clients' \
             ICMP is filtered",
            dev.as_deref().unwrap_or("assumed")
        ),
        fix: Some(format!(
            "on {rip}, announce a smaller MSS to the clients (ip route change default via GW \
             advmss {}), or raise the MTU between the director and it to {}",
            inner.saturating_sub(40),
            client + 20
        )),
    })
}

/// The kernel's path MTU towards `rip` (a connected UDP socket's `IP_MTU`).
fn path_mtu(rip: Ipv4Addr) -> std::io::Result<u32> {
    Ok(rustix::net::sockopt::ip_mtu(rvs_check::path::towards(
        rip,
    )?)?)
}

/// The interface of the IPv4 default route (`/proc/net/route`).
fn default_route_dev() -> Option<String> {
    let table = std::fs::read_to_string("/proc/net/route").ok()?;
    table.lines().skip(1).find_map(|l| {
        let w: Vec<&str> = l.split_whitespace().collect();
        (w.get(1) == Some(&"00000000") && w.get(7) == Some(&"00000000"))
            .then(|| w.first().map(|d| (*d).to_owned()))
            .flatten()
    })
}

/// One-armed LVS-NAT under the kernel's IPVS: the real servers' replies enter and leave
/// the director by the same interface, and a director that sends ICMP redirects tells
/// the real servers to send them to the router directly, past the NAT.
fn redirects(dev: &str) -> Option<Finding> {
    if default_route_dev().as_deref() != Some(dev) {
        return None;
    }
    let on = |scope: &str| {
        std::fs::read_to_string(format!("/proc/sys/net/ipv4/conf/{scope}/send_redirects"))
            .is_ok_and(|v| v.trim() == "1")
    };
    // The kernel sends redirects when either `all` or the interface says so.
    if on("all") || on(dev) {
        Some(Finding {
            severity: Severity::Problem,
            subject: "director".into(),
            what: format!(
                "LVS-NAT real servers on {dev}, the interface of the default route too \
                 (one-armed), and send_redirects on: the director tells the real servers to \
                 send their replies to the router directly, past the NAT"
            ),
            fix: Some(format!(
                "sysctl -w net.ipv4.conf.all.send_redirects=0 \
                 net.ipv4.conf.default.send_redirects=0 net.ipv4.conf.{dev}.send_redirects=0"
            )),
        })
    } else {
        Some(ok(
            "director",
            &format!("sends no ICMP redirects on {dev} (one-armed LVS-NAT)"),
        ))
    }
}

/// Who answers ARP for `vip` on the real servers' link: a real server must not.
async fn arp_for(vip: Ipv4Addr, rips: &[Ipv4Addr], wait: Duration) -> Vec<Finding> {
    let subject = format!("VIP {vip}");
    let macs: Vec<(Ipv4Addr, [u8; 6], String)> = rips
        .iter()
        .filter_map(|r| rvs_check::path::neighbour(*r).map(|(m, d)| (*r, m, d)))
        .collect();
    let Some(dev) = macs.first().map(|(_, _, d)| d.clone()) else {
        return Vec::new();
    };
    let link = match rvs_vrrpd::link::Netlink::new() {
        Ok(nl) => nl.link(&dev).await.ok(),
        Err(_) => None,
    };
    let Some(link) = link else {
        return vec![Finding {
            severity: Severity::Problem,
            subject,
            what: format!("cannot read interface {dev}"),
            fix: None,
        }];
    };
    let answers = match rvs_vrrpd::conflict::who_has(link.index, link.mac, vip, wait).await {
        Ok(a) => a,
        Err(e) => {
            return vec![Finding {
                severity: Severity::Problem,
                subject,
                what: format!("cannot ask who has it on {dev}: {e}"),
                fix: Some("run rvs doctor as root on the director (it sends raw frames)".into()),
            }]
        }
    };
    let mut out = Vec::new();
    let mut others = Vec::new();
    for m in answers {
        if let Some((rip, _, _)) = macs.iter().find(|(_, rm, _)| *rm == m) {
            out.push(Finding {
                severity: Severity::Problem,
                subject: format!("real server {rip}"),
                what: format!(
                    "answers ARP for the VIP {vip} (from {}): clients' packets for the VIP \
                     can reach it directly, past the director",
                    mac_text(m)
                ),
                fix: Some(format!(
                    "on {rip}: sysctl -w net.ipv4.conf.all.arp_ignore=1 \
                     net.ipv4.conf.all.arp_announce=2 (and lo's)"
                )),
            });
        } else {
            others.push(mac_text(m));
        }
    }
    match others.len() {
        0 if out.is_empty() => out.push(ok(
            &subject,
            &format!("no real server answers ARP for it on {dev} (nor does a director now)"),
        )),
        0 => {}
        1 => out.push(ok(
            &subject,
            &format!("answered on {dev} by {} only (the MASTER)", others[0]),
        )),
        _ => out.push(Finding {
            severity: Severity::Problem,
            subject,
            what: format!(
                "answered on {dev} by several hosts: {} (two MASTERs, or another host holds it)",
                others.join(", ")
            ),
            fix: Some(
                "one director only may hold the VIP: see the VRRP logs for a split brain".into(),
            ),
        }),
    }
    out
}

/// One advert heard: (interface, VRID, source, VIPs sorted).
type Heard = (String, u8, IpAddr, Vec<IpAddr>);

/// Listens on `ifname` for VRRP adverts (IPv4, the multicast group) for `listen`.
async fn hear(ifname: &str, listen: Duration) -> std::io::Result<Vec<Heard>> {
    let nl = rvs_vrrpd::link::Netlink::new().map_err(std::io::Error::other)?;
    let link = nl.link(ifname).await.map_err(std::io::Error::other)?;
    let own: Vec<IpAddr> = nl
        .addrs(link.index)
        .await
        .map_err(std::io::Error::other)?
        .into_iter()
        .map(|(a, _)| a)
        .collect();
    let sock = socket2::Socket::new(
        socket2::Domain::IPV4,
        socket2::Type::RAW,
        Some(socket2::Protocol::from(112)),
    )?;
    sock.bind_device(Some(ifname.as_bytes()))?;
    sock.join_multicast_v4_n(
        &rvs_wire::vrrp::GROUP4,
        &socket2::InterfaceIndexOrAddress::Index(link.index),
    )?;
    sock.set_nonblocking(true)?;
    let fd = rvs_packet::async_fd(sock)?;
    let mut out: Vec<Heard> = Vec::new();
    let mut buf = [0u8; 2048];
    let collect = async {
        loop {
            let Ok(mut guard) = fd.readable().await else {
                return;
            };
            let Ok(Ok(n)) = guard.try_io(|io| std::io::Read::read(&mut io.get_ref(), &mut buf))
            else {
                continue;
            };
            let Ok((meta, msg)) = rvs_vrrpd::net::split_ipv4(&buf[..n]) else {
                continue;
            };
            if own.contains(&meta.src) {
                continue;
            }
            let Ok(pkt) = rvs_wire::vrrp::Packet::new_checked(msg, false) else {
                continue;
            };
            let ck = match (pkt.version(), meta.dst) {
                (3, Some(dst)) => rvs_wire::vrrp::Checksum::Pseudo { src: meta.src, dst },
                _ => rvs_wire::vrrp::Checksum::MessageOnly,
            };
            let Ok(adv) = rvs_wire::vrrp::Repr::parse(&pkt, false, ck) else {
                continue;
            };
            let mut addrs = adv.addrs.clone();
            addrs.sort();
            let h = (ifname.to_owned(), adv.vrid, meta.src, addrs);
            if !out.contains(&h) {
                out.push(h);
            }
        }
    };
    let _ = tokio::time::timeout(listen, collect).await;
    Ok(out)
}

/// Other routers on the instances' interfaces that advertise one of the configuration's
/// VRIDs with other VIPs.
async fn vrids(cfg: &rvs_conf::Config, listen: Duration) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut ifaces: Vec<String> = cfg
        .vrrp_instances
        .iter()
        .filter_map(|v| v.interface.clone())
        .collect();
    ifaces.sort();
    ifaces.dedup();
    for ifname in ifaces {
        let heard = match hear(&ifname, listen).await {
            Ok(h) => h,
            Err(e) => {
                out.push(Finding {
                    severity: Severity::Problem,
                    subject: format!("interface {ifname}"),
                    what: format!("cannot listen for VRRP adverts: {e}"),
                    fix: Some("run rvs doctor as root on the director".into()),
                });
                continue;
            }
        };
        for vi in cfg
            .vrrp_instances
            .iter()
            .filter(|v| v.interface.as_deref() == Some(ifname.as_str()))
        {
            let Some(vrid) = vi.virtual_router_id else {
                continue;
            };
            let mut ours: Vec<IpAddr> = vi.virtual_ipaddress.iter().map(|v| v.address).collect();
            ours.sort();
            let subject = format!("vrrp_instance {} (VRID {vrid} on {ifname})", vi.name);
            let others: Vec<&Heard> = heard.iter().filter(|h| h.1 == vrid).collect();
            if others.is_empty() {
                out.push(ok(
                    &subject,
                    &format!("no other router heard in {listen:?}"),
                ));
            }
            for (_, _, src, addrs) in others {
                let show = |a: &[IpAddr]| {
                    a.iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                if *addrs == ours {
                    out.push(ok(
                        &subject,
                        &format!("{src} advertises it with the same VIPs (a peer director)"),
                    ));
                } else {
                    out.push(Finding {
                        severity: Severity::Problem,
                        subject: subject.clone(),
                        what: format!(
                            "{src} advertises VRID {vrid} with VIPs [{}], this configuration \
                             with [{}]: two VRRP groups share one VRID on this segment",
                            show(addrs),
                            show(&ours)
                        ),
                        fix: Some(
                            "give one of the groups another virtual_router_id (1-255, unique \
                             per segment)"
                                .into(),
                        ),
                    });
                }
            }
        }
    }
    out
}
