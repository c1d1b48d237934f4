//! Split-brain detection: who else answers for our VIPs.
//!
//! Two MASTERs for one VRID happen when adverts cannot pass between the directors
//! (multicast filtered, a firewall, a partition) while everything else does. VRRP cannot
//! see it: each side hears nothing and holds the VIP. ARP can: every second this task
//! asks the segment who has each IPv4 VIP of the interface (an RFC 5227 probe, which
//! teaches no cache anything) and listens to every ARP frame there; an answer or an
//! announcement for a VIP from a MAC that is not this director's is reported to the
//! engine ([`TrackEvent::VipElsewhere`]), which counts and logs it while MASTER. The
//! same sight catches a real server that answers ARP for the VIP (no `arp_ignore`).

use crate::track::TrackEvent;
use std::collections::HashMap;
use std::io::Read as _;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// How often each VIP is probed.
pub const PROBE_EVERY: Duration = Duration::from_secs(1);

/// Watches interface `ifindex` (whose MACs, the interface's and any VMAC's, are `ours`)
/// for other holders of `vips`.
pub fn spawn(
    ifindex: u32,
    ours: Vec<[u8; 6]>,
    vips: Vec<Ipv4Addr>,
    tx: mpsc::UnboundedSender<TrackEvent>,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let sock = rvs_packet::bound(ifindex, socket2::Type::RAW, rvs_packet::ETH_P_ARP)?;
    let fd = rvs_packet::async_fd(sock)?;
    let probe_from = ours.first().copied().unwrap_or_default();
    Ok(tokio::spawn(async move {
        let mut tick = tokio::time::interval(PROBE_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // One report per (VIP, MAC) per probe period: a flood of ARP costs no more.
        let mut reported: HashMap<(Ipv4Addr, [u8; 6]), Instant> = HashMap::new();
        let mut buf = [0u8; 1514];
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    for vip in &vips {
                        let mut f = [0u8; rvs_wire::arp::FRAME_LEN];
                        if let Ok(n) = rvs_wire::arp::Repr::probe(probe_from, *vip).emit_frame(&mut f) {
                            let _ = fd.get_ref().send(&f[..n]);
                        }
                    }
                    reported.retain(|_, t| t.elapsed() < PROBE_EVERY);
                }
                r = fd.readable() => {
                    let Ok(mut guard) = r else { return };
                    let Ok(Ok(n)) = guard.try_io(|s| s.get_ref().read(&mut buf)) else {
                        continue;
                    };
                    let Ok(arp) = rvs_wire::arp::Repr::parse_frame(&buf[..n]) else { continue };
                    if !vips.contains(&arp.sender_ip)
                        || ours.contains(&arp.sender_mac)
                        || arp.sender_mac == [0; 6]
                    {
                        continue;
                    }
                    let key = (arp.sender_ip, arp.sender_mac);
                    if reported.contains_key(&key) {
                        continue;
                    }
                    reported.insert(key, Instant::now());
                    if tx.send(TrackEvent::VipElsewhere(arp.sender_ip, arp.sender_mac)).is_err() {
                        return;
                    }
                }
            }
        }
    }))
}

/// Asks the segment on `ifindex` who has `ip` (an RFC 5227 probe from `mac`) and
/// collects the MACs that answer within `wait` (`rvs doctor`).
pub async fn who_has(
    ifindex: u32,
    mac: [u8; 6],
    ip: Ipv4Addr,
    wait: Duration,
) -> std::io::Result<Vec<[u8; 6]>> {
    let sock = rvs_packet::bound(ifindex, socket2::Type::RAW, rvs_packet::ETH_P_ARP)?;
    let fd = rvs_packet::async_fd(sock)?;
    let mut f = [0u8; rvs_wire::arp::FRAME_LEN];
    let n = rvs_wire::arp::Repr::probe(mac, ip)
        .emit_frame(&mut f)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    fd.get_ref().send(&f[..n])?;
    let mut seen = Vec::new();
    let mut buf = [0u8; 1514];
    let collect = async {
        loop {
            let Ok(mut guard) = fd.readable().await else {
                return;
            };
            let Ok(Ok(n)) = guard.try_io(|s| s.get_ref().read(&mut buf)) else {
                continue;
            };
            if let Ok(arp) = rvs_wire::arp::Repr::parse_frame(&buf[..n]) {
                if arp.op == 2 && arp.sender_ip == ip && !seen.contains(&arp.sender_mac) {
                    seen.push(arp.sender_mac);
                }
            }
        }
    };
    let _ = tokio::time::timeout(wait, collect).await;
    Ok(seen)
}
