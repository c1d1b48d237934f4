//! Real servers' MAC addresses from the kernel neighbour table, resolved actively when
//! missing (a datagram to the discard port makes the kernel ARP / solicit for it).

use futures_util::stream::TryStreamExt as _;
use rtnetlink::packet_route::neighbour::{NeighbourAddress, NeighbourAttribute, NeighbourState};
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

/// The MACs of `ips`, waiting up to `limit` for the ones the kernel has to resolve.
pub async fn resolve(ips: &[IpAddr], limit: Duration) -> HashMap<IpAddr, [u8; 6]> {
    let t0 = tokio::time::Instant::now();
    let mut nudged = false;
    loop {
        let t = table().await.unwrap_or_default();
        let missing: Vec<IpAddr> = ips.iter().filter(|i| !t.contains_key(i)).copied().collect();
        if missing.is_empty() || t0.elapsed() >= limit {
            return ips
                .iter()
                .filter_map(|i| t.get(i).map(|m| (*i, *m)))
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
