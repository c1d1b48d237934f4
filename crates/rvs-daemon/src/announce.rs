//! Which VIPs this director announces to its routers (`rvs_bgp`): decided from the
//! desired state the data plane took, so a VIP draws traffic only while this director
//! can serve it.
//!
//! A VIP is announced when
//! - its virtual servers have live real servers: a real server of weight above 0 after
//!   health checks, quorum and `rvs adm` changes (a sorry server does not count: with
//!   ECMP, the other directors may still have real servers) — all of the VIP's virtual
//!   servers with `announce_when all` (the default), one of them with `any` (the sorry
//!   server's address and port never count, even when it is also a real server);
//! - the data plane serves it (`served`: its last apply did not fail for this VIP);
//! - the director is not drained (`rvs bgp drain`; SIGTERM withdraws everything too).
//!
//! Fwmark services have no address and are not announced (the loader warns).

use rvs_conf::model::{AnnounceWhen, Bgp};
use rvs_sched::desired::Desired;
use rvs_types::{Announcement, SvcKey};
use std::collections::BTreeMap;
use std::net::IpAddr;

/// The announcements wanted now, ordered by VIP.
pub fn announcements(
    desired: &Desired,
    bgp: &Bgp,
    served: impl Fn(IpAddr) -> bool,
    drained: bool,
) -> Vec<Announcement> {
    if drained {
        return Vec::new();
    }
    // Per VIP: (virtual servers with live real servers, virtual servers).
    let mut vips: BTreeMap<IpAddr, (usize, usize)> = BTreeMap::new();
    for s in &desired.services {
        let SvcKey::Addr { addr, .. } = s.key else {
            continue;
        };
        let e = vips.entry(addr).or_default();
        e.1 += 1;
        let sorry = |d: &&rvs_sched::desired::DesiredDest| {
            s.sorry
                .as_ref()
                .is_some_and(|x| x.addr == d.addr && x.port == d.port)
        };
        if s.dests.iter().filter(|d| !sorry(d)).any(|d| d.weight > 0) {
            e.0 += 1;
        }
    }
    vips.into_iter()
        .filter(|&(vip, (live, all))| {
            let up = match bgp.announce_when {
                AnnounceWhen::All => live == all,
                AnnounceWhen::Any => live > 0,
            };
            up && served(vip)
        })
        .map(|(vip, _)| Announcement {
            vip,
            communities: bgp.communities.clone(),
            med: bgp.med,
        })
        .collect()
}
