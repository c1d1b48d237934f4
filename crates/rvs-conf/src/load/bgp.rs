//! `rvs_bgp { ... }`: the VIPs announced to routers (rvs extension, docs/cluster.md).

use super::Loader;
use crate::model::{AnnounceWhen, Bgp, BgpNeighbor, VsKey, VsgEntry};
use crate::tree::Node;
use std::net::IpAddr;
use std::time::Duration;

impl Loader<'_> {
    pub(super) fn rvs_bgp(&mut self, node: &Node) {
        let a = &mut self.a;
        a.extra(node, 0);
        if self.cfg.bgp.is_some() {
            a.diags
                .error(node.kw.loc, node.kw.width, "rvs_bgp is given twice")
                .hint("one rvs_bgp block lists every neighbour");
            return;
        }
        let mut b = Bgp {
            router_id: None,
            local_as: 0,
            neighbors: Vec::new(),
            communities: Vec::new(),
            med: None,
            withdraw_delay: Duration::from_secs(2),
            announce_when: AnnounceWhen::All,
            bfd_interval: Duration::from_millis(100),
            bfd_multiplier: 3,
            bird: "bird".to_owned(),
        };
        let mut local_as = None;
        for n in node.children() {
            match n.name() {
                "router_id" => match a.arg_ip(n) {
                    Some(IpAddr::V4(id)) => b.router_id = Some(id),
                    Some(IpAddr::V6(_)) => {
                        a.diags.error(
                            n.args[0].loc,
                            n.args[0].width,
                            "a BGP router ID is an IPv4 address",
                        );
                    }
                    None => {}
                },
                "local_as" => local_as = a.arg_int(n, 1, i64::from(u32::MAX)).or(local_as),
                "neighbor" => {
                    if let Some(nb) = neighbor(a, n) {
                        if b.neighbors.iter().any(|o| o.address == nb.address) {
                            a.diags.error(
                                n.args[0].loc,
                                n.args[0].width,
                                format!("neighbor {} is given twice", nb.address),
                            );
                        } else {
                            b.neighbors.push(nb);
                        }
                    }
                }
                "community" => {
                    if n.args.is_empty() {
                        a.need(n, 0, "one or more communities (ASN:VALUE)");
                    }
                    for t in &n.args {
                        match t.text.parse() {
                            Ok(c) => b.communities.push(c),
                            Err(why) => {
                                a.diags.error(t.loc, t.width, why);
                            }
                        }
                    }
                }
                "med" => b.med = a.arg_int(n, 0, i64::from(u32::MAX)).or(b.med),
                "withdraw_delay" => {
                    b.withdraw_delay = a.arg_timer(n, 0.0, 3600.0).unwrap_or(b.withdraw_delay);
                }
                "announce_when" => {
                    a.extra(n, 1);
                    match n.args.first().map(|t| t.text.as_str()) {
                        Some("all") => b.announce_when = AnnounceWhen::All,
                        Some("any") => b.announce_when = AnnounceWhen::Any,
                        Some(_) => {
                            let t = &n.args[0];
                            a.diags
                                .error(t.loc, t.width, format!("announce_when {}: unknown", t.text))
                                .hint("all (every virtual server of the VIP is up) or any");
                        }
                        None => {
                            a.need(n, 0, "all or any");
                        }
                    }
                }
                "bfd_interval" => {
                    if let Some(ms) = a.arg_int::<u64>(n, 10, 10_000) {
                        b.bfd_interval = Duration::from_millis(ms);
                    }
                }
                "bfd_multiplier" => b.bfd_multiplier = a.arg_int(n, 1, 255).unwrap_or(3),
                "bird" => {
                    if let Some(p) = a.string(n) {
                        b.bird = p;
                    }
                }
                _ => {}
            }
        }
        match local_as {
            Some(asn) => b.local_as = asn,
            None => {
                a.diags
                    .error(node.kw.loc, node.kw.width, "rvs_bgp needs local_as")
                    .hint("the director's AS number, e.g. 'local_as 65001'");
            }
        }
        if b.neighbors.is_empty() {
            a.diags
                .error(node.kw.loc, node.kw.width, "rvs_bgp has no neighbor")
                .hint("name the routers: 'neighbor 198.18.0.1 { remote_as 65000 }'");
        }
        self.cfg.bgp = Some(b);
    }

    /// What `rvs_bgp` cannot announce: said at the virtual server's line.
    pub(super) fn bgp_checks(&mut self) {
        let Some(b) = &self.cfg.bgp else {
            return;
        };
        let v4 = b.neighbors.iter().any(|n| n.address.is_ipv4());
        let v6 = b.neighbors.iter().any(|n| n.address.is_ipv6());
        for (vs, kw) in self.cfg.virtual_servers.iter().zip(&self.locs.vs) {
            let why = match vs.key {
                VsKey::Fwmark { .. } => Some(
                    "a fwmark virtual server has no address: rvs_bgp does not announce it \
                     (announce its addresses with virtual servers of their own)"
                        .to_owned(),
                ),
                VsKey::Address { address, .. } if address.is_ipv4() && !v4 => Some(format!(
                    "{address}: rvs_bgp has no IPv4 neighbour to announce it to"
                )),
                VsKey::Address { address, .. } if address.is_ipv6() && !v6 => Some(format!(
                    "{address}: rvs_bgp has no IPv6 neighbour to announce it to"
                )),
                VsKey::Group { ref group } => self
                    .cfg
                    .virtual_server_groups
                    .iter()
                    .filter(|g| &g.name == group)
                    .flat_map(|g| &g.entries)
                    .any(|e| matches!(e, VsgEntry::Fwmark { .. }))
                    .then(|| {
                        format!(
                            "virtual_server_group {group} has fwmark entries: rvs_bgp does not                              announce them (they have no address)"
                        )
                    }),
                VsKey::Address { .. } => None,
            };
            if let Some(why) = why {
                self.a.diags.warning(kw.loc, kw.width, why);
            }
        }
    }
}

fn neighbor(a: &mut crate::args::Args<'_>, n: &Node) -> Option<BgpNeighbor> {
    a.extra(n, 1);
    let address = a.need(n, 0, "the router's address").cloned()?;
    let address = a.ip(&address)?;
    let mut nb = BgpNeighbor {
        address,
        remote_as: 0,
        bfd: false,
        hold_time: None,
        source_address: None,
    };
    let mut remote_as = None;
    for c in n.children() {
        match c.name() {
            "remote_as" => remote_as = a.arg_int(c, 1, i64::from(u32::MAX)).or(remote_as),
            "bfd" => nb.bfd = a.flag(c),
            // RFC 4271: 0, or at least 3 seconds.
            "hold_time" => nb.hold_time = a.arg_int(c, 3, 65535).or(nb.hold_time),
            "source_address" => {
                if let Some(s) = a.arg_ip(c) {
                    if s.is_ipv4() == address.is_ipv4() {
                        nb.source_address = Some(s);
                    } else {
                        a.diags.error(
                            c.args[0].loc,
                            c.args[0].width,
                            format!("source_address {s} is not of neighbor {address}'s family"),
                        );
                    }
                }
            }
            _ => {}
        }
    }
    if let Some(r) = remote_as {
        nb.remote_as = r;
        Some(nb)
    } else {
        a.diags
            .error(
                n.kw.loc,
                n.kw.width,
                format!("neighbor {address} needs remote_as"),
            )
            .hint("the router's AS number, e.g. 'remote_as 65000'");
        None
    }
}
