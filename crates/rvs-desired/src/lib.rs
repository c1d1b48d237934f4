//! `rvs-desired`: a keepalived configuration turned into the desired state every data
//! plane takes: one IPVS service per virtual server (per address or fwmark of a
//! `virtual_server_group`), real servers added in config order as keepalived adds them,
//! so the kernel's list holds them newest first.
//!
//! The one place where the parser's model meets the scheduling core: `rvs-sched` and the
//! data planes never see keepalived.conf, and the parser never sees a scheduler.

use rvs_conf::model::{Config, Method, Protocol, Scheduler, VirtualServer, VsKey, VsgEntry};
use rvs_sched::desired::{Desired, DesiredDest, DesiredService};
use rvs_sched::{Algo, Compat, Flags, Fwd, Ipvs, Persistence, Proto, SvcKey, Timeouts};
use std::net::IpAddr;

/// Most services one `virtual_server_group` range may expand to.
pub const MAX_GROUP_SERVICES: usize = 65536;

fn algo(s: Scheduler) -> Algo {
    match s {
        Scheduler::Rr => Algo::Rr,
        Scheduler::Wrr => Algo::Wrr,
        Scheduler::Lc => Algo::Lc,
        Scheduler::Wlc => Algo::Wlc,
        Scheduler::Lblc => Algo::Lblc,
        Scheduler::Lblcr => Algo::Lblcr,
        Scheduler::Dh => Algo::Dh,
        Scheduler::Sh => Algo::Sh,
        Scheduler::Sed => Algo::Sed,
        Scheduler::Nq => Algo::Nq,
        Scheduler::Mh => Algo::Mh,
        Scheduler::Fo => Algo::Fo,
        Scheduler::Ovf => Algo::Ovf,
        Scheduler::Twos => Algo::Twos,
    }
}

pub fn fwd(m: Method) -> Fwd {
    match m {
        Method::Nat => Fwd::Masq,
        Method::Dr => Fwd::Route,
        Method::Tun => Fwd::Tunnel,
        Method::FullNat => Fwd::FullNat,
    }
}

fn proto(p: Option<Protocol>) -> Proto {
    match p {
        Some(Protocol::Tcp) => Proto::Tcp,
        Some(Protocol::Sctp) => Proto::Sctp,
        Some(Protocol::Udp) | None => Proto::Udp,
    }
}

/// Prefix length of a `persistence_granularity` (IPv4 netmask or IPv6 prefix).
fn prefix(g: Option<&str>, v6: bool) -> u8 {
    match g {
        None => {
            if v6 {
                128
            } else {
                32
            }
        }
        Some(s) => match s.parse::<std::net::Ipv4Addr>() {
            Ok(m) => u8::try_from(u32::from(m).count_ones()).unwrap_or(32),
            Err(_) => s.parse().unwrap_or(if v6 { 128 } else { 32 }),
        },
    }
}

/// The service keys a virtual server stands for (one, or a group's members).
pub fn keys(cfg: &Config, vs: &VirtualServer) -> Vec<SvcKey> {
    let p = proto(vs.protocol);
    let v6_of_rs = vs.real_servers.first().is_some_and(|r| r.address.is_ipv6());
    match &vs.key {
        VsKey::Address { address, port } => vec![SvcKey::Addr {
            proto: p,
            addr: *address,
            port: *port,
        }],
        VsKey::Fwmark { fwmark } => {
            let v6 = vs
                .ip_family
                .map_or(v6_of_rs, |f| f == rvs_conf::model::Family::Inet6);
            vec![SvcKey::Fwmark { mark: *fwmark, v6 }]
        }
        VsKey::Group { group } => {
            let mut out = Vec::new();
            let Some(g) = cfg.virtual_server_groups.iter().find(|g| &g.name == group) else {
                return out;
            };
            for e in &g.entries {
                match e {
                    VsgEntry::Fwmark { fwmark, family } => {
                        let v6 = family.map_or(v6_of_rs, |f| f == rvs_conf::model::Family::Inet6);
                        out.push(SvcKey::Fwmark { mark: *fwmark, v6 });
                    }
                    VsgEntry::Range { first, last, port } => {
                        let mut a = *first;
                        loop {
                            out.push(SvcKey::Addr {
                                proto: p,
                                addr: a,
                                port: *port,
                            });
                            if a >= *last || out.len() >= MAX_GROUP_SERVICES {
                                break;
                            }
                            a = next_addr(a);
                        }
                    }
                }
            }
            out
        }
    }
}

fn next_addr(a: IpAddr) -> IpAddr {
    match a {
        IpAddr::V4(v) => IpAddr::V4(u32::from(v).wrapping_add(1).into()),
        IpAddr::V6(v) => IpAddr::V6(u128::from(v).wrapping_add(1).into()),
    }
}

/// keepalived's `lvs_method TUN type ipip|gue|gre [port P] [nocsum|csum|remcsum]`.
fn tun(f: &rvs_conf::model::Forwarding) -> rvs_sched::Tun {
    let Some(t) = &f.tunnel else {
        return rvs_sched::Tun::default();
    };
    rvs_sched::Tun {
        kind: match t.kind.as_str() {
            "gue" => rvs_sched::Tun::GUE,
            "gre" => rvs_sched::Tun::GRE,
            _ => rvs_sched::Tun::IPIP,
        },
        port: t.port.unwrap_or(0),
        flags: match t.csum.as_deref() {
            Some("csum") => 1,
            Some("remcsum") => 2,
            _ => 0,
        },
    }
}

/// The desired state a configuration describes; every real server taken as up
/// (keepalived adds them all at start unless `alpha`; the checkers change weights later).
pub fn desired(cfg: &Config) -> Desired {
    desired_with(cfg, |_, _, rs| Some(rs.weight), |_| false)
}

/// The desired state with each real server's weight decided by `weight(vs index, rs
/// index, real server)`: `None` leaves the real server out (a failed health check),
/// `Some(0)` keeps it quiesced (`inhibit_on_failure`). `quorum_lost(vs index)`: as
/// keepalived, a virtual server that lost its quorum and has a `sorry_server` serves from
/// the sorry server alone (its real servers are taken out); with `sorry_server_inhibit`
/// the sorry server stays in the table at weight 0 otherwise. Without a sorry server a
/// lost quorum only runs `quorum_down`.
pub fn desired_with(
    cfg: &Config,
    weight: impl Fn(usize, usize, &rvs_conf::model::RealServer) -> Option<i32>,
    quorum_lost: impl Fn(usize) -> bool,
) -> Desired {
    let t = cfg.global_defs.lvs_timeouts;
    let mut timeouts = Timeouts::default();
    timeouts.set(
        t.tcp.unwrap_or(0),
        t.tcpfin.unwrap_or(0),
        t.udp.unwrap_or(0),
    );
    let mut services = Vec::new();
    for (vi, vs) in cfg.virtual_servers.iter().enumerate() {
        if vs.real_servers.is_empty() && vs.sorry_server.is_none() {
            continue;
        }
        for key in keys(cfg, vs) {
            let f = &vs.sched_flags;
            let flags = Flags {
                fallback: f.sh_fallback || f.mh_fallback || f.flag_1,
                port: f.sh_port || f.mh_port || f.flag_2,
                sched3: f.flag_3,
                ops: f.ops,
            };
            let v6 = match key {
                SvcKey::Addr { addr, .. } => addr.is_ipv6(),
                SvcKey::Fwmark { v6, .. } => v6,
            };
            let sorry = vs.sorry_server.as_ref().map(|s| DesiredDest {
                addr: s.address,
                port: s.port,
                weight: 1,
                base_weight: 1,
                fwd: fwd(s.forwarding.method),
                tun: tun(&s.forwarding),
                u_threshold: 0,
                l_threshold: 0,
            });
            let sorry_active = sorry.is_some() && quorum_lost(vi);
            let mut dests: Vec<DesiredDest> = if sorry_active {
                Vec::new()
            } else {
                vs.real_servers
                    .iter()
                    .enumerate()
                    .filter_map(|(ri, rs)| weight(vi, ri, rs).map(|w| (rs, w)))
                    .map(|(rs, w)| DesiredDest {
                        addr: rs.address,
                        port: rs.port,
                        weight: w,
                        // Up: its weight now; taken down to 0: its configured one.
                        base_weight: if w > 0 { w } else { rs.weight },
                        fwd: fwd(rs.forwarding.method),
                        tun: tun(&rs.forwarding),
                        u_threshold: rs.uthreshold,
                        l_threshold: rs.lthreshold,
                    })
                    .collect()
            };
            let inhibit = vs.sorry_server.as_ref().is_some_and(|s| s.inhibit);
            if let Some(d) = &sorry {
                // A sorry server that is also a real server is not listed twice.
                let listed = dests.iter().any(|x| x.addr == d.addr && x.port == d.port);
                if sorry_active {
                    dests.push(d.clone());
                } else if inhibit && !listed {
                    // Never up while real servers serve: no share of a hashing table.
                    dests.push(DesiredDest {
                        weight: 0,
                        base_weight: 0,
                        ..d.clone()
                    });
                }
            }
            services.push(DesiredService {
                key,
                algo: algo(vs.lb_algo),
                flags,
                persistence: vs.persistence_timeout.map(|t| Persistence {
                    timeout_s: t,
                    prefix: prefix(vs.persistence_granularity.as_deref(), v6),
                }),
                mh_size: vs.mh_table_size.map(|m| m as usize),
                dests,
                sorry,
                connect_timeout: vs.connect_timeout,
                proxy_protocol: match vs.proxy_protocol.as_deref() {
                    Some("v1") => Some(1),
                    Some("v2") => Some(2),
                    _ => None,
                },
                fwd: fwd(vs.forwarding.method),
                local_addrs: if vs.forwarding.method == Method::FullNat {
                    cfg.local_addresses(vs).to_vec()
                } else {
                    Vec::new()
                },
            });
        }
    }
    let kernel_timeouts = (t.tcp.is_some() || t.tcpfin.is_some() || t.udp.is_some()).then(|| {
        [
            t.tcp.unwrap_or(0),
            t.tcpfin.unwrap_or(0),
            t.udp.unwrap_or(0),
        ]
    });
    Desired {
        timeouts,
        services,
        kernel_timeouts,
    }
}

/// Builds the director's tables from a configuration (see [`desired`]).
pub fn build(cfg: &Config, compat: Compat) -> Ipvs {
    let mut ipvs = Ipvs::new();
    ipvs.apply(&desired(cfg), compat);
    ipvs
}
