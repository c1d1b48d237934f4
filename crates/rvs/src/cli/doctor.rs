//! `rvs doctor -f keepalived.conf`: from a director, checks what LVS and keepalived
//! leave to the operator (the seed articles' traps) and says how to fix each finding:
//!
//! - every LVS-DR real server (IPv4, TCP) answers on its own address and, through the
//!   DR path (a SYN to the VIP in a frame to its MAC), on the VIP: else its VIP is not
//!   on its loopback, or nothing listens on the VIP's port there;
//! - no real server answers ARP for a VIP (who has the VIP is asked on the segment): one
//!   that does draws the clients' packets past the director;
//! - with the kernel's IPVS, a director with LVS-NAT services forwards IP;
//! - no other router advertises one of the configuration's VRIDs with other VIPs on the
//!   instance's interface (two VRRP groups sharing a VRID fight).
//!
//! The probes are the health checker's ([`rvs_check::path`]) and the split-brain
//! detector's ([`rvs_vrrpd::conflict::who_has`]).

use anyhow::Result;
use rvs_conf::model::{Method, Protocol, VsKey};
use std::net::{IpAddr, Ipv4Addr, SocketAddrV4};
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
        let mut f = examine(&parsed.config, &a.dataplane, wait).await;
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

async fn examine(cfg: &rvs_conf::Config, dataplane: &str, wait: Duration) -> Vec<Finding> {
    let mut out = Vec::new();
    let nat = cfg.virtual_servers.iter().any(|vs| {
        vs.real_servers
            .iter()
            .any(|rs| rs.forwarding.method == Method::Nat)
    });
    if nat && dataplane == "ipvs" {
        let fwd = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap_or_default();
        if fwd.trim() == "1" {
            out.push(ok("director", "forwards IP (LVS-NAT)"));
        } else {
            out.push(Finding {
                severity: Severity::Problem,
                subject: "director".into(),
                what: "LVS-NAT services, but net.ipv4.ip_forward is 0: the real servers' \
                       replies are not forwarded back to the clients"
                    .into(),
                fix: Some("sysctl -w net.ipv4.ip_forward=1 (and in /etc/sysctl.d/)".into()),
            });
        }
    }
    // (VIP, its DR real servers) of the TCP services.
    let mut vips: Vec<(Ipv4Addr, Vec<Ipv4Addr>)> = Vec::new();
    for vs in &cfg.virtual_servers {
        let VsKey::Address {
            address: IpAddr::V4(vip),
            port,
        } = vs.key
        else {
            continue;
        };
        if vs.protocol != Some(Protocol::Tcp) {
            continue;
        }
        for rs in &vs.real_servers {
            let IpAddr::V4(rip) = rs.address else {
                continue;
            };
            if rs.forwarding.method != Method::Dr {
                continue;
            }
            let subject = format!("real server {rip}:{} of {vip}:{port}", rs.port);
            out.push(dr_path(&subject, SocketAddrV4::new(vip, port), rip, wait).await);
            match vips.iter_mut().find(|(v, _)| *v == vip) {
                Some((_, list)) => list.push(rip),
                None => vips.push((vip, vec![rip])),
            }
        }
    }
    for (vip, rips) in vips {
        out.extend(arp_for(vip, &rips, wait).await);
    }
    out
}

fn ok(subject: &str, what: &str) -> Finding {
    Finding {
        severity: Severity::Ok,
        subject: subject.to_owned(),
        what: what.to_owned(),
        fix: None,
    }
}

/// The real server answers on its own address, then along the DR path.
async fn dr_path(subject: &str, vip: SocketAddrV4, rip: Ipv4Addr, wait: Duration) -> Finding {
    let own = SocketAddrV4::new(rip, vip.port());
    match tokio::time::timeout(wait, tokio::net::TcpStream::connect(own)).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => {
            return Finding {
                severity: Severity::Problem,
                subject: subject.to_owned(),
                what: format!("does not accept TCP connections on its own address {own}: {e}"),
                fix: Some(
                    "start its server, or check the firewall between the director and it".into(),
                ),
            }
        }
        Err(_) => {
            return Finding {
                severity: Severity::Problem,
                subject: subject.to_owned(),
                what: format!("no answer on its own address {own} within {wait:?}"),
                fix: Some("check that it is up and on the director's link".into()),
            }
        }
    }
    match rvs_check::path::dr_syn(vip, rip, wait).await {
        Ok(p) => match p.failure(vip, rip) {
            None => ok(
                subject,
                &format!("answers on the VIP {vip} through the DR path"),
            ),
            Some(what) => Finding {
                severity: Severity::Problem,
                subject: subject.to_owned(),
                fix: Some(match p {
                    rvs_check::path::PathOutcome::Refused => format!(
                        "make its server listen on {vip} (or on 0.0.0.0:{})",
                        vip.port()
                    ),
                    rvs_check::path::PathOutcome::NoNeighbour => {
                        "LVS-DR needs the real servers on the director's link (or use TUN)".into()
                    }
                    _ => format!(
                        "on {rip}: ip addr add {}/32 dev lo; sysctl -w \
                         net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2",
                        vip.ip()
                    ),
                }),
                what,
            },
        },
        Err(e) => Finding {
            severity: Severity::Problem,
            subject: subject.to_owned(),
            what: format!("cannot probe the DR path: {e}"),
            fix: Some("run rvs doctor as root on the director (it sends raw frames)".into()),
        },
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
