//! Real servers' MAC addresses from the kernel neighbour table, resolved actively when
//! missing (a datagram to the discard port makes the kernel ARP / solicit for it). A
//! real server behind a router (TUN, NAT) is reached through its gateway's MAC: the
//! kernel's route lookup (`ip route get`) says which.
//!
//! [`Watch`] keeps a copy of the table current from the kernel's neighbour
//! notifications (`RTMGRP_NEIGH`, what `ip monitor neigh` shows), so that the XDP data
//! plane reads MACs without asking the kernel on every change of its table, and learns
//! when a real server's MAC appears or changes.

use futures_util::stream::{StreamExt as _, TryStreamExt as _};
use rtnetlink::packet_core::NetlinkPayload;
use rtnetlink::packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourMessage, NeighbourState,
};
use rtnetlink::packet_route::route::{RouteAddress, RouteAttribute};
use rtnetlink::packet_route::RouteNetlinkMessage;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// A neighbour entry's address and, when it is usable, its MAC (`None`: failed,
/// incomplete or being deleted).
fn entry(m: &NeighbourMessage) -> Option<(IpAddr, Option<[u8; 6]>)> {
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
    let usable = !matches!(
        m.header.state,
        NeighbourState::Failed | NeighbourState::Incomplete | NeighbourState::None
    );
    Some((ip?, mac.filter(|_| usable)))
}

async fn table() -> std::io::Result<HashMap<IpAddr, [u8; 6]>> {
    let (conn, handle, _) = rtnetlink::new_connection()?;
    let task = tokio::spawn(conn);
    let mut out = HashMap::new();
    let mut s = handle.neighbours().get().execute();
    while let Ok(Some(m)) = s.try_next().await {
        if let Some((ip, Some(mac))) = entry(&m) {
            out.insert(ip, mac);
        }
    }
    task.abort();
    Ok(out)
}

/// The kernel's neighbour table (usable entries: address → MAC), kept current by its
/// notifications. Dropping it stops the subscription.
pub struct Watch {
    rx: tokio::sync::watch::Receiver<Arc<HashMap<IpAddr, [u8; 6]>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Watch {
    /// Subscribes to the notifications, then reads the table once (an entry that
    /// changes in between is seen twice, never missed).
    pub async fn start() -> std::io::Result<Watch> {
        let (conn, _handle, mut events) =
            rtnetlink::new_multicast_connection(&[rtnetlink::MulticastGroup::Neigh])?;
        let conn_task = tokio::spawn(conn);
        let mut now = table().await?;
        let (tx, rx) = tokio::sync::watch::channel(Arc::new(now.clone()));
        let task = tokio::spawn(async move {
            while let Some((msg, _)) = events.next().await {
                let (m, deleted) = match &msg.payload {
                    NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewNeighbour(m)) => {
                        (m, false)
                    }
                    NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelNeighbour(m)) => (m, true),
                    _ => continue,
                };
                let Some((ip, mac)) = entry(m) else { continue };
                let changed = match mac.filter(|_| !deleted) {
                    Some(mac) => now.insert(ip, mac) != Some(mac),
                    None => now.remove(&ip).is_some(),
                };
                if changed {
                    tx.send_replace(Arc::new(now.clone()));
                }
            }
            conn_task.abort();
        });
        Ok(Watch { rx, task })
    }

    /// The table now.
    pub fn table(&self) -> Arc<HashMap<IpAddr, [u8; 6]>> {
        self.rx.borrow().clone()
    }

    /// A receiver that wakes on every change (for a task that re-applies).
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<Arc<HashMap<IpAddr, [u8; 6]>>> {
        self.rx.clone()
    }

    /// Asks the kernel to resolve `ips` and waits until the table has them all or
    /// `limit` has passed; returns the table then.
    pub async fn resolve(&self, ips: &[IpAddr], limit: Duration) -> Arc<HashMap<IpAddr, [u8; 6]>> {
        let mut rx = self.rx.clone();
        let missing = |t: &HashMap<IpAddr, [u8; 6]>| ips.iter().any(|i| !t.contains_key(i));
        if !missing(&rx.borrow_and_update()) {
            return self.table();
        }
        for ip in ips {
            nudge(*ip);
        }
        let _ = tokio::time::timeout(limit, async {
            while rx.changed().await.is_ok() {
                if !missing(&rx.borrow_and_update()) {
                    return;
                }
            }
        })
        .await;
        self.table()
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.task.abort();
    }
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
