//! Real servers' MAC addresses from the kernel neighbour table, resolved actively when
//! missing (a datagram to the discard port makes the kernel ARP / solicit for it). A
//! real server behind a router (TUN, NAT) is reached through its gateway's MAC: the
//! kernel's route lookup (`ip route get`) says which.

use futures_util::stream::TryStreamExt as _;
use rtnetlink::packet_route::neighbour::{NeighbourAddress, NeighbourAttribute, NeighbourState};
use rtnetlink::packet_route::route::{RouteAddress, RouteAttribute};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

async fn table() -> std::io::Result<HashMap<IpAddr, [u8; 6]>> {
    let (conn, handle, _) = rtnetlink::new_connection()?;
    let task = tokio::spawn(conn);
    let mut out = HashMap::new();
    let mut s = handle.neighbours().get().execute();
    while let Ok(Some(m)) = s.try_next().await {
        if matches!(
            m.header.state,
            NeighbourState::Failed | NeighbourState::Incomplete | NeighbourState::None
        ) {
            continue;
        }
        let mut ip = None;
        let mut mac = None;
        for a in &m.attributes {
            match a {
                NeighbourAttribute::Destination(NeighbourAddress::Inet(v)) => {
                    ip = Some(IpAddr::V4(*v));
                }
                NeighbourAttribute::Destination(NeighbourAddress::Inet6(v)) => {
                    ip = Some(IpAddr::V6(*v));
                }
                NeighbourAttribute::LinkLayerAddress(l) if l.len() == 6 => {
                    let mut o = [0u8; 6];
                    o.copy_from_slice(l);
                    mac = Some(o);
                }
                _ => {}
            }
        }
        if let (Some(i), Some(m)) = (ip, mac) {
            out.insert(i, m);
        }
    }
    task.abort();
    Ok(out)
}

fn nudge(ip: IpAddr) {
    let dom = if ip.is_ipv4() {
        socket2::Domain::IPV4
    } else {
        socket2::Domain::IPV6
    };
    if let Ok(s) = socket2::Socket::new(dom, socket2::Type::DGRAM, None) {
        let _ = s.send_to(&[], &SocketAddr::new(ip, 9).into());
    }
}

/// The gateway the kernel routes each of `ips` through (`None`: on the link, or no
/// route — the neighbour lookup then fails on its own).
pub async fn gateways(ips: &[IpAddr]) -> HashMap<IpAddr, Option<IpAddr>> {
    let mut out: HashMap<IpAddr, Option<IpAddr>> = ips.iter().map(|i| (*i, None)).collect();
    let Ok((conn, handle, _)) = rtnetlink::new_connection() else {
        return out;
    };
    let task = tokio::spawn(conn);
    for ip in ips {
        let prefix = if ip.is_ipv4() { 32 } else { 128 };
        let Ok(msg) = rtnetlink::RouteMessageBuilder::<IpAddr>::new()
            .destination_prefix(*ip, prefix)
            .map(rtnetlink::RouteMessageBuilder::build)
        else {
            continue;
        };
        let mut s = handle.route().get(msg).execute();
        if let Ok(Some(r)) = s.try_next().await {
            let gw = r.attributes.iter().find_map(|a| match a {
                RouteAttribute::Gateway(RouteAddress::Inet(v)) => Some(IpAddr::V4(*v)),
                RouteAttribute::Gateway(RouteAddress::Inet6(v)) => Some(IpAddr::V6(*v)),
                _ => None,
            });
            out.insert(*ip, gw);
        }
    }
    task.abort();
    out
}

/// The next-hop MACs of `ips` (their own, or their gateway's as [`gateways`] found it),
/// waiting up to `limit` for the ones the kernel has to resolve.
pub async fn resolve<S: std::hash::BuildHasher>(
    ips: &[IpAddr],
    gws: &HashMap<IpAddr, Option<IpAddr>, S>,
    limit: Duration,
) -> HashMap<IpAddr, [u8; 6]> {
    let hop = |i: &IpAddr| gws.get(i).copied().flatten().unwrap_or(*i);
    let t0 = tokio::time::Instant::now();
    let mut nudged = false;
    loop {
        let t = table().await.unwrap_or_default();
        let missing: Vec<IpAddr> = ips
            .iter()
            .filter(|i| !t.contains_key(&hop(i)))
            .copied()
            .collect();
        if missing.is_empty() || t0.elapsed() >= limit {
            return ips
                .iter()
                .filter_map(|i| t.get(&hop(i)).map(|m| (*i, *m)))
                .collect();
        }
        if !nudged {
            for ip in &missing {
                nudge(*ip);
            }
            nudged = true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
