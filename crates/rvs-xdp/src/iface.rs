//! Which interface the XDP program goes on when the operator did not say
//! (`--xdp-iface`): in LVS-DR (and TUN, NAT through this program) the director reaches
//! its real servers and receives the VIP's traffic on one link, so the kernel's routes
//! to the real servers name it. [`choose`] decides from the routes (pure); [`routes`]
//! asks the kernel (`ip route get` per real server, and the interface that holds each
//! VIP). Ambiguity is refused, never guessed.

use futures_util::stream::TryStreamExt as _;
use rtnetlink::packet_route::address::AddressAttribute;
use rtnetlink::packet_route::link::LinkAttribute;
use rtnetlink::packet_route::route::RouteAttribute;
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

/// What the kernel says of one address the program must serve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub addr: IpAddr,
    /// A real server (its route's interface) or a VIP (the interface holding it).
    pub role: Role,
    /// The interface, `None` when there is no route (real server) or no such address
    /// on this host yet (VIP: VRRP may add it later).
    pub iface: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    RealServer,
    Vip,
}

/// Why no interface could be chosen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChooseError {
    #[error(
        "--dataplane xdp: no route to any real server tells which interface to use; \
         pass --xdp-iface"
    )]
    NoRoute,
    #[error("--dataplane xdp: the real servers and VIPs are on several interfaces ({0}); pass --xdp-iface")]
    Ambiguous(String),
}

/// The interface every real server's route (and every VIP held on a non-loopback
/// interface) agrees on. Real servers without a route and VIPs not yet on the host do
/// not vote; loopback never counts (a DR real server's VIP lives there, not the director's).
pub fn choose(seen: &[Seen]) -> Result<String, ChooseError> {
    let mut by_iface: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for s in seen {
        if let Some(i) = s.iface.as_deref().filter(|i| *i != "lo") {
            let what = match s.role {
                Role::RealServer => s.addr.to_string(),
                Role::Vip => format!("VIP {}", s.addr),
            };
            by_iface.entry(i).or_default().push(what);
        }
    }
    if !seen
        .iter()
        .any(|s| s.role == Role::RealServer && s.iface.as_deref().is_some_and(|i| i != "lo"))
    {
        return Err(ChooseError::NoRoute);
    }
    let mut it = by_iface.iter();
    match (it.next(), it.next()) {
        (Some((i, _)), None) => Ok((*i).to_owned()),
        _ => Err(ChooseError::Ambiguous(
            by_iface
                .iter()
                .map(|(i, who)| format!("{} via {i}", who.join(", ")))
                .collect::<Vec<_>>()
                .join("; "),
        )),
    }
}

/// Asks the kernel: the output interface of the route to each real server, and the
/// interface holding each VIP.
pub async fn routes(real_servers: &[IpAddr], vips: &[IpAddr]) -> std::io::Result<Vec<Seen>> {
    let (conn, handle, _) = rtnetlink::new_connection()?;
    let task = tokio::spawn(conn);
    let mut names: HashMap<u32, String> = HashMap::new();
    let mut links = handle.link().get().execute();
    while let Ok(Some(l)) = links.try_next().await {
        if let Some(n) = l.attributes.iter().find_map(|a| match a {
            LinkAttribute::IfName(n) => Some(n.clone()),
            _ => None,
        }) {
            names.insert(l.header.index, n);
        }
    }
    let mut out = Vec::new();
    for ip in real_servers {
        let prefix = if ip.is_ipv4() { 32 } else { 128 };
        let mut iface = None;
        if let Ok(msg) = rtnetlink::RouteMessageBuilder::<IpAddr>::new()
            .destination_prefix(*ip, prefix)
            .map(rtnetlink::RouteMessageBuilder::build)
        {
            let mut s = handle.route().get(msg).execute();
            if let Ok(Some(r)) = s.try_next().await {
                iface = r
                    .attributes
                    .iter()
                    .find_map(|a| match a {
                        RouteAttribute::Oif(i) => Some(*i),
                        _ => None,
                    })
                    .and_then(|i| names.get(&i).cloned());
            }
        }
        out.push(Seen {
            addr: *ip,
            role: Role::RealServer,
            iface,
        });
    }
    let mut held: HashMap<IpAddr, u32> = HashMap::new();
    let mut addrs = handle.address().get().execute();
    while let Ok(Some(a)) = addrs.try_next().await {
        for at in &a.attributes {
            if let AddressAttribute::Address(ip) | AddressAttribute::Local(ip) = at {
                held.entry(*ip).or_insert(a.header.index);
            }
        }
    }
    for ip in vips {
        out.push(Seen {
            addr: *ip,
            role: Role::Vip,
            iface: held.get(ip).and_then(|i| names.get(i).cloned()),
        });
    }
    task.abort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rs(a: &str, i: Option<&str>) -> Seen {
        Seen {
            addr: a.parse().unwrap_or(IpAddr::from([0, 0, 0, 0])),
            role: Role::RealServer,
            iface: i.map(str::to_owned),
        }
    }

    fn vip(a: &str, i: Option<&str>) -> Seen {
        Seen {
            role: Role::Vip,
            ..rs(a, i)
        }
    }

    #[test]
    fn one_link_for_every_real_server_is_chosen() {
        let seen = [
            rs("198.18.0.11", Some("eth0")),
            rs("198.18.0.12", Some("eth0")),
            rs("198.18.0.13", None),
            vip("198.18.0.50", None),
        ];
        assert_eq!(choose(&seen), Ok("eth0".to_owned()));
        // A VIP on the same link agrees; loopback never votes.
        let seen = [
            rs("198.18.0.11", Some("eth0")),
            vip("198.18.0.50", Some("eth0")),
            vip("198.18.0.51", Some("lo")),
        ];
        assert_eq!(choose(&seen), Ok("eth0".to_owned()));
    }

    #[test]
    fn several_links_or_none_are_refused_with_the_reason() {
        let seen = [
            rs("198.18.0.11", Some("eth0")),
            rs("198.18.1.12", Some("eth1")),
        ];
        assert_eq!(
            choose(&seen),
            Err(ChooseError::Ambiguous(
                "198.18.0.11 via eth0; 198.18.1.12 via eth1".to_owned()
            ))
        );
        let seen = [
            rs("198.18.0.11", Some("eth0")),
            vip("198.18.0.50", Some("eth1")),
        ];
        assert!(
            matches!(choose(&seen), Err(ChooseError::Ambiguous(w)) if w.contains("VIP 198.18.0.50 via eth1"))
        );
        assert_eq!(
            choose(&[rs("198.18.0.11", None)]),
            Err(ChooseError::NoRoute)
        );
        assert_eq!(
            choose(&[rs("198.18.0.11", Some("lo"))]),
            Err(ChooseError::NoRoute)
        );
        assert_eq!(choose(&[]), Err(ChooseError::NoRoute));
    }
}
