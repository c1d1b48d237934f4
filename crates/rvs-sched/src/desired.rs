//! The desired state of a director, as every data plane takes it: services, their real
//! servers and the timeouts. Built from a configuration by `rvs-desired` (this crate
//! knows nothing of keepalived.conf), changed at run time by `rvs adm`.

use crate::sched::Algo;
use crate::service::{Flags, Fwd, Persistence, SvcKey};
use crate::table::Timeouts;
use std::net::IpAddr;

/// A real server as the configuration wants it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredDest {
    pub addr: IpAddr,
    pub port: u16,
    pub weight: i32,
    /// The weight the real server has when it is up (its configured or last dynamic
    /// weight). The hashing tables of the XDP plane (`mh`) are built from it while
    /// health sets `weight` to 0 (`inhibit_on_failure`), so that every director of a
    /// cluster builds the same table whatever it has seen since it started.
    pub base_weight: i32,
    pub fwd: Fwd,
    /// Encapsulation of a `Tunnel` real server.
    pub tun: crate::Tun,
    pub u_threshold: u32,
    pub l_threshold: u32,
}

/// A virtual service as the configuration wants it.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredService {
    pub key: SvcKey,
    pub algo: Algo,
    pub flags: Flags,
    pub persistence: Option<Persistence>,
    pub mh_size: Option<usize>,
    /// Real servers in config order.
    pub dests: Vec<DesiredDest>,
    pub sorry: Option<DesiredDest>,
    /// `virtual_server` connect timeout (seconds), used by the proxy to connect.
    pub connect_timeout: std::time::Duration,
    /// rvs extension: PROXY protocol version towards real servers.
    pub proxy_protocol: Option<u8>,
    /// FULLNAT (`laddr_group_name`): the director's addresses its connections to the
    /// real servers come from (the proxy data plane binds them in turn).
    pub local_addrs: Vec<IpAddr>,
    /// Forwarding method of the service (`lb_kind`).
    pub fwd: Fwd,
}

impl DesiredService {
    /// A service with no real servers and every setting at its default (no flags, no
    /// persistence, DR, the kernel's `mh` table size, 5 s connect timeout).
    pub fn new(key: SvcKey, algo: Algo) -> DesiredService {
        DesiredService {
            key,
            algo,
            flags: Flags::default(),
            persistence: None,
            mh_size: None,
            dests: Vec::new(),
            sorry: None,
            connect_timeout: std::time::Duration::from_secs(5),
            proxy_protocol: None,
            local_addrs: Vec::new(),
            fwd: Fwd::Route,
        }
    }
}

/// The desired state of a director: services and timeouts.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Desired {
    pub timeouts: Timeouts,
    pub services: Vec<DesiredService>,
    /// tcp, tcpfin, udp to write to a kernel's IPVS (`lvs_timeouts`, `ipvsadm --set`);
    /// 0 leaves one unchanged. `None`: the kernel's own stay (an administrator's
    /// `ipvsadm --set` is not undone by defaults).
    pub kernel_timeouts: Option<[u32; 3]>,
}

/// One change a data plane makes to go from one desired state to another, in the order
/// [`crate::table::Table::apply`] makes them: per wanted service (added or changed), its
/// removed real servers, then its added and changed ones; then the removed services.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    ServiceAdded {
        key: SvcKey,
        algo: Algo,
    },
    /// Settings of a kept service: each `what` is `setting old → new`.
    ServiceChanged {
        key: SvcKey,
        what: Vec<String>,
    },
    ServiceRemoved {
        key: SvcKey,
    },
    DestAdded {
        key: SvcKey,
        dest: DesiredDest,
    },
    DestRemoved {
        key: SvcKey,
        addr: IpAddr,
        port: u16,
    },
    /// A kept real server's weight/thresholds (`weights`) or forwarding (`forwarding`)
    /// changed; `what` says how.
    DestChanged {
        key: SvcKey,
        addr: IpAddr,
        port: u16,
        weights: bool,
        forwarding: bool,
        what: Vec<String>,
    },
}

fn dest_label(addr: IpAddr, port: u16) -> String {
    match addr {
        IpAddr::V4(a) => format!("{a}:{port}"),
        IpAddr::V6(a) => format!("[{a}]:{port}"),
    }
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Step::ServiceAdded { key, algo } => {
                write!(f, "add virtual server {key} (scheduler {})", algo.name())
            }
            Step::ServiceChanged { key, what } => {
                write!(f, "change virtual server {key}: {}", what.join(", "))
            }
            Step::ServiceRemoved { key } => {
                write!(f, "remove virtual server {key} (its connections drain)")
            }
            Step::DestAdded { key, dest } => write!(
                f,
                "add real server {} to {key} (weight {}, {})",
                dest_label(dest.addr, dest.port),
                dest.weight,
                dest.fwd.name()
            ),
            Step::DestRemoved { key, addr, port } => write!(
                f,
                "remove real server {} from {key} (its connections drain)",
                dest_label(*addr, *port)
            ),
            Step::DestChanged {
                key,
                addr,
                port,
                what,
                ..
            } => write!(
                f,
                "change real server {} of {key}: {}",
                dest_label(*addr, *port),
                what.join(", ")
            ),
        }
    }
}

/// What goes from `have` to `want`, step by step (see [`Step`]); empty when they agree.
pub fn diff(have: &Desired, want: &Desired) -> Vec<Step> {
    let mut steps = Vec::new();
    for ws in &want.services {
        let Some(hs) = have.services.iter().find(|h| h.key == ws.key) else {
            steps.push(Step::ServiceAdded {
                key: ws.key,
                algo: ws.algo,
            });
            for d in &ws.dests {
                steps.push(Step::DestAdded {
                    key: ws.key,
                    dest: d.clone(),
                });
            }
            continue;
        };
        let mut what = Vec::new();
        if hs.algo != ws.algo {
            what.push(format!("scheduler {} → {}", hs.algo.name(), ws.algo.name()));
        }
        if hs.flags != ws.flags {
            what.push(format!("flags {:?} → {:?}", hs.flags, ws.flags));
        }
        if hs.persistence != ws.persistence {
            let p = |p: Option<Persistence>| {
                p.map_or_else(
                    || "none".to_owned(),
                    |p| format!("{} s /{}", p.timeout_s, p.prefix),
                )
            };
            what.push(format!(
                "persistence {} → {}",
                p(hs.persistence),
                p(ws.persistence)
            ));
        }
        if hs.mh_size != ws.mh_size {
            what.push(format!("mh table {:?} → {:?}", hs.mh_size, ws.mh_size));
        }
        if !what.is_empty() {
            steps.push(Step::ServiceChanged { key: ws.key, what });
        }
        for hd in &hs.dests {
            if !ws
                .dests
                .iter()
                .any(|w| w.addr == hd.addr && w.port == hd.port)
            {
                steps.push(Step::DestRemoved {
                    key: ws.key,
                    addr: hd.addr,
                    port: hd.port,
                });
            }
        }
        for wd in &ws.dests {
            let Some(hd) = hs
                .dests
                .iter()
                .find(|h| h.addr == wd.addr && h.port == wd.port)
            else {
                steps.push(Step::DestAdded {
                    key: ws.key,
                    dest: wd.clone(),
                });
                continue;
            };
            let mut what = Vec::new();
            if hd.weight != wd.weight {
                what.push(format!("weight {} → {}", hd.weight, wd.weight));
            }
            if (hd.u_threshold, hd.l_threshold) != (wd.u_threshold, wd.l_threshold) {
                what.push(format!(
                    "thresholds {}/{} → {}/{}",
                    hd.u_threshold, hd.l_threshold, wd.u_threshold, wd.l_threshold
                ));
            }
            let weights = !what.is_empty();
            let forwarding = hd.fwd != wd.fwd || hd.tun != wd.tun;
            if forwarding {
                what.push(format!("forwarding {} → {}", hd.fwd.name(), wd.fwd.name()));
            }
            if weights || forwarding {
                steps.push(Step::DestChanged {
                    key: ws.key,
                    addr: wd.addr,
                    port: wd.port,
                    weights,
                    forwarding,
                    what,
                });
            }
        }
    }
    for hs in &have.services {
        if !want.services.iter().any(|w| w.key == hs.key) {
            steps.push(Step::ServiceRemoved { key: hs.key });
        }
    }
    steps
}

/// The counts [`crate::table::Table::apply`] reports for these steps.
pub fn report(steps: &[Step]) -> crate::table::ApplyReport {
    let mut r = crate::table::ApplyReport::default();
    for s in steps {
        match s {
            Step::ServiceAdded { .. } => r.services_added += 1,
            Step::ServiceRemoved { .. } => r.services_removed += 1,
            Step::ServiceChanged { .. } => {}
            Step::DestAdded { .. } => r.dests_added += 1,
            Step::DestRemoved { .. } => r.dests_removed += 1,
            Step::DestChanged {
                weights,
                forwarding,
                ..
            } => r.dests_changed += usize::from(*weights) + usize::from(*forwarding),
        }
    }
    r
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests panic on failure")]
mod tests {
    use super::*;
    use rvs_types::Proto;

    fn svc(port: u16, algo: Algo, dests: &[(u8, i32, Fwd)]) -> DesiredService {
        let mut s = DesiredService::new(
            SvcKey::Addr {
                proto: Proto::Tcp,
                addr: IpAddr::from([198, 18, 0, 50]),
                port,
            },
            algo,
        );
        s.dests = dests
            .iter()
            .map(|&(h, weight, fwd)| DesiredDest {
                addr: IpAddr::from([198, 18, 0, h]),
                port: 80,
                weight,
                base_weight: weight,
                fwd,
                tun: crate::Tun::default(),
                u_threshold: 0,
                l_threshold: 0,
            })
            .collect();
        s
    }

    fn state(services: Vec<DesiredService>) -> Desired {
        Desired {
            services,
            ..Desired::default()
        }
    }

    /// The plan of a reload cannot lie: the steps' counts are what the table's apply
    /// then reports, for every kind of change.
    #[test]
    fn the_diff_counts_what_apply_does() {
        let have = state(vec![
            svc(
                80,
                Algo::Wlc,
                &[
                    (11, 1, Fwd::Route),
                    (12, 1, Fwd::Route),
                    (13, 1, Fwd::Route),
                ],
            ),
            svc(81, Algo::Rr, &[(11, 1, Fwd::Route)]),
        ]);
        let want = state(vec![
            svc(
                80,
                Algo::Rr,
                &[(11, 3, Fwd::Masq), (12, 1, Fwd::Route), (14, 1, Fwd::Route)],
            ),
            svc(82, Algo::Sh, &[(11, 1, Fwd::Route)]),
        ]);
        let steps = diff(&have, &want);
        let shown: Vec<String> = steps.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "change virtual server [198.18.0.50]:tcp:80: scheduler wlc → rr",
                "remove real server 198.18.0.13:80 from [198.18.0.50]:tcp:80 (its connections drain)",
                "change real server 198.18.0.11:80 of [198.18.0.50]:tcp:80: weight 1 → 3, forwarding Route → Masq",
                "add real server 198.18.0.14:80 to [198.18.0.50]:tcp:80 (weight 1, Route)",
                "add virtual server [198.18.0.50]:tcp:82 (scheduler sh)",
                "add real server 198.18.0.11:80 to [198.18.0.50]:tcp:82 (weight 1, Route)",
                "remove virtual server [198.18.0.50]:tcp:81 (its connections drain)",
            ]
        );
        let mut table = crate::table::Ipvs::new();
        table.apply(&have, crate::service::Compat::default());
        assert_eq!(
            report(&steps),
            table.apply(&want, crate::service::Compat::default())
        );
        assert!(diff(&want, &want).is_empty());
        assert_eq!(
            report(&diff(&want, &want)),
            table.apply(&want, crate::service::Compat::default())
        );
    }
}
