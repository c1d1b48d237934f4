//! FULLNAT: `local_address_group NAME { ADDR | a.b.c.d-e | ADDR/nn [IFNAME] }` and a
//! virtual server's `lb_kind FNAT` + `laddr_group_name NAME`, the syntax of the LVS
//! FULLNAT and DPVS forks of keepalived (docs/cluster.md).

use super::{parse_range, Loader};
use crate::model::Method;
use crate::tree::Node;
use std::net::IpAddr;

/// The most addresses one group may expand to.
const MAX_ADDRS: u128 = 4096;

impl Loader<'_> {
    pub(super) fn local_address_group(&mut self, node: &Node) {
        let Some(name) = super::name_of(&mut self.a, node) else {
            return;
        };
        let a = &mut self.a;
        let mut addrs: Vec<IpAddr> = Vec::new();
        for item in node.children() {
            if let Some(t) = item.args.first() {
                // DPVS names the interface the address lives on; the kernel's routes
                // decide here.
                a.diags.not_applied(
                    t.loc,
                    t.width,
                    format!(
                        "the interface after {} is not applied: the address is bound and \
                         the kernel routes from it",
                        item.kw.text
                    ),
                );
                a.extra(item, 1);
            }
            let Some((first, last)) = parse_range(&item.kw.text) else {
                a.diags
                    .error(
                        item.kw.loc,
                        item.kw.width,
                        format!("invalid local_address_group entry '{}'", item.kw.text),
                    )
                    .hint("entries are 'IP', 'a.b.c.d-e' or 'a.b.c.d/nn'");
                continue;
            };
            match expand(first, last) {
                Some(v) if (addrs.len() + v.len()) as u128 <= MAX_ADDRS => addrs.extend(v),
                _ => {
                    a.diags.error(
                        item.kw.loc,
                        item.kw.width,
                        format!("local_address_group {name}: more than {MAX_ADDRS} addresses"),
                    );
                }
            }
        }
        if addrs.is_empty() {
            a.diags.error(
                node.kw.loc,
                node.kw.width,
                format!("local_address_group {name} has no address"),
            );
            return;
        }
        if self.cfg.local_address_groups.contains_key(&name) {
            a.diags.error(
                node.args[0].loc,
                node.args[0].width,
                format!("local_address_group {name} is defined twice"),
            );
            return;
        }
        self.cfg.local_address_groups.insert(name, addrs);
    }

    /// FNAT virtual servers name an existing group of their family; a group named by a
    /// virtual server of another method is not used.
    pub(super) fn fnat_checks(&mut self) {
        for (vs, kw) in self.cfg.virtual_servers.iter().zip(&self.locs.vs) {
            let fnat = vs.forwarding.method == Method::FullNat;
            match (&vs.laddr_group, fnat) {
                (None, true) => {
                    self.a
                        .diags
                        .error(kw.loc, kw.width, "lb_kind FNAT needs laddr_group_name")
                        .hint(
                            "the director's addresses to connect to the real servers from: \
                               'laddr_group_name NAME' and a 'local_address_group NAME { ... }'",
                        );
                }
                (Some(g), true) => match self.cfg.local_address_groups.get(g) {
                    None => {
                        self.a.diags.error(
                            kw.loc,
                            kw.width,
                            format!("laddr_group_name {g}: no local_address_group of that name"),
                        );
                    }
                    Some(addrs) => {
                        let v6 = vs.real_servers.first().is_some_and(|r| r.address.is_ipv6());
                        if !addrs.iter().any(|x| x.is_ipv6() == v6) {
                            self.a.diags.error(
                                kw.loc,
                                kw.width,
                                format!(
                                    "local_address_group {g} has no {} address for these real servers",
                                    if v6 { "IPv6" } else { "IPv4" }
                                ),
                            );
                        }
                    }
                },
                (Some(g), false) => {
                    self.a.diags.warning(
                        kw.loc,
                        kw.width,
                        format!(
                            "laddr_group_name {g} is used by lb_kind FNAT only: not applied here"
                        ),
                    );
                }
                (None, false) => {}
            }
        }
    }
}

/// Every address from `first` to `last` (one family), or `None` past the limit.
fn expand(first: IpAddr, last: IpAddr) -> Option<Vec<IpAddr>> {
    match (first, last) {
        (IpAddr::V4(f), IpAddr::V4(l)) => {
            let (f, l) = (u32::from(f), u32::from(l));
            (u128::from(l.checked_sub(f)?) < MAX_ADDRS).then(|| {
                (f..=l)
                    .map(|x| IpAddr::from(std::net::Ipv4Addr::from(x)))
                    .collect()
            })
        }
        (IpAddr::V6(f), IpAddr::V6(l)) => {
            let (f, l) = (u128::from(f), u128::from(l));
            (l.checked_sub(f)? < MAX_ADDRS).then(|| {
                (f..=l)
                    .map(|x| IpAddr::from(std::net::Ipv6Addr::from(x)))
                    .collect()
            })
        }
        _ => None,
    }
}
