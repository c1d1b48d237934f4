//! XDP: the BPF program forwards DR, TUN and NAT in the kernel; rvs programs its maps.
//! The loaded program lives on its own thread ([`Owner`]), which also copies its
//! per-CPU counters into the table every second and walks its flow table (paced) for
//! the connection counts and the `-Lc` snapshot. Dropped on that thread at stop, which
//! detaches it.
//!
//! Next-hop MACs come from a copy of the kernel's neighbour table kept current by its
//! notifications ([`rvs_xdp::neigh::Watch`]): `apply` waits (at most 2 s) only for
//! next hops it has never asked for, so a dead real server does not stall every health
//! event; and when a next hop's MAC appears or changes, the last desired state is
//! programmed again with it (a real server that had no MAC gets traffic once it
//! answers ARP, one whose MAC changed gets it at the new one).

use super::owner::Owner;
use super::{ApplyError, Forwarder, Fut, Kind, Snapshots};
use rvs_proxy::Shared;
use rvs_sched::desired::Desired;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How to run the XDP data plane.
#[derive(Debug, Clone)]
pub struct XdpSettings {
    pub iface: String,
    pub native: bool,
    pub flows: u32,
    /// `--xdp-by-table`.
    pub by_table: bool,
    /// Where `rvs upgrade` pins the program (stale pins there are removed at start).
    pub bpffs: std::path::PathBuf,
}

type XdpKey = (rvs_sched::SvcKey, IpAddr, u16);

/// What the owning thread holds.
pub struct State {
    xdp: rvs_xdp::Xdp,
    /// `-Z`: the program's counters at the time of the zero, subtracted from what it
    /// counts (its per-CPU counters are never written from userspace).
    base: HashMap<XdpKey, rvs_xdp::maps::Counters>,
    shared: Arc<Shared>,
    snapshots: Arc<Snapshots>,
    next_scan: Instant,
    /// What was programmed last: the desired state, each real server's next hop, and
    /// the MACs used.
    last: Option<Programmed>,
    /// The neighbour table as last seen (FULLNAT clients' next hops, for adopted
    /// connections).
    neighbours: tokio::sync::watch::Receiver<Arc<HashMap<IpAddr, [u8; 6]>>>,
    /// When adopted FULLNAT connections without a client next hop were last warned of.
    warned_no_hop: Option<Instant>,
}

struct Programmed {
    want: Desired,
    hops: HashMap<IpAddr, IpAddr>,
    macs: HashMap<IpAddr, [u8; 6]>,
}

pub struct XdpForwarder {
    owner: Owner<State>,
    /// `--start-daemon`: the connection sync daemons of this plane.
    sync: super::sync::SyncDaemons,
    shared: Arc<Shared>,
    snapshots: Arc<Snapshots>,
    neigh: rvs_xdp::neigh::Watch,
    /// Next hops already asked for (resolved, or waited for once).
    asked: std::collections::HashSet<IpAddr>,
    /// Re-programs the last desired state when next-hop MACs change.
    follower: tokio::task::JoinHandle<()>,
    /// The FULLNAT local addresses the reset guard holds ([`super::guard`]).
    guarded: std::collections::BTreeSet<IpAddr>,
    /// `nft` failed once: said, not again.
    guard_failed: bool,
}

impl XdpForwarder {
    /// Loads and attaches the program on `s.iface`; with `carried`, on the maps and the
    /// link the rvs it replaces pinned (its flows go on).
    pub async fn load(
        s: &XdpSettings,
        shared: Arc<Shared>,
        snapshots: Arc<Snapshots>,
        carried: Option<rvs_xdp::Carried>,
    ) -> anyhow::Result<XdpForwarder> {
        let nl = rvs_vrrpd::link::Netlink::new()?;
        let link = nl
            .link(&s.iface)
            .await
            .map_err(|e| anyhow::anyhow!("--xdp-iface {}: {e}", s.iface))?;
        let addrs = nl.addrs(link.index).await?;
        let tun_src4 = addrs.iter().find_map(|(a, _)| match a {
            IpAddr::V4(v) => Some(*v),
            IpAddr::V6(_) => None,
        });
        let tun_src6 = addrs.iter().find_map(|(a, _)| match a {
            IpAddr::V6(v) if !v.is_unicast_link_local() => Some(*v),
            _ => None,
        });
        let opts = rvs_xdp::Options {
            iface: Some(s.iface.clone()),
            native: s.native,
            flows: s.flows,
            tun_src4,
            tun_src6,
            own_mac: Some(link.mac),
            bench: false,
            by_table: s.by_table,
        };
        let took_over = carried.is_some();
        if !took_over {
            rvs_xdp::remove_stale_pins(&s.bpffs);
        }
        // Loading (the verifier) blocks: off the runtime.
        let xdp = tokio::task::spawn_blocking(move || match &carried {
            Some(c) => rvs_xdp::Xdp::load_carried(&opts, c),
            None => rvs_xdp::Xdp::load(&opts),
        })
        .await?
        .map_err(|e| anyhow::anyhow!("--dataplane xdp on {}: {e}", s.iface))?;
        tracing::info!(
            "XDP program attached to {} ({} mode, {} flows){}",
            s.iface,
            if s.native { "native" } else { "generic" },
            s.flows,
            if took_over {
                ": took over the running program's link and maps (flows, templates, counters)"
            } else {
                ""
            }
        );
        let neigh = rvs_xdp::neigh::Watch::start().await?;
        let state = State {
            xdp,
            base: HashMap::new(),
            shared: shared.clone(),
            snapshots: snapshots.clone(),
            next_scan: Instant::now(),
            last: None,
            neighbours: neigh.subscribe(),
            warned_no_hop: None,
        };
        let owner = Owner::spawn("rvs-xdp", state, |st| {
            st.copy_counters();
            Duration::from_secs(1)
        })?;
        let follower = match owner.caller() {
            Some(caller) => tokio::spawn(follow_neighbours(neigh.subscribe(), caller)),
            None => tokio::spawn(async {}),
        };
        Ok(XdpForwarder {
            owner,
            sync: super::sync::SyncDaemons::default(),
            shared,
            snapshots,
            neigh,
            asked: std::collections::HashSet::new(),
            follower,
            guarded: std::collections::BTreeSet::new(),
            guard_failed: false,
        })
    }
}

fn stopped() -> Vec<ApplyError> {
    vec![ApplyError::Stopping(Kind::Xdp)]
}

impl XdpForwarder {
    /// The reset guard follows the FULLNAT services' local addresses (reconciled: `nft`
    /// runs only when they change).
    async fn guard(&mut self, want: &Desired) {
        let laddrs: std::collections::BTreeSet<IpAddr> = want
            .services
            .iter()
            .flat_map(|s| s.local_addrs.iter().copied())
            .collect();
        if laddrs == self.guarded {
            return;
        }
        match super::guard::apply(&super::guard::script(&laddrs)).await {
            Ok(()) => {
                self.guarded = laddrs;
                self.guard_failed = false;
            }
            Err(e) if !self.guard_failed => {
                self.guard_failed = true;
                tracing::warn!(
                    "FULLNAT reset guard not installed ({e}): should rvs die, this host's \
                     kernel would reset the connections of its local addresses until they \
                     move (install nftables)"
                );
            }
            Err(_) => {}
        }
    }
}

impl Forwarder for XdpForwarder {
    fn kind(&self) -> Kind {
        Kind::Xdp
    }

    fn apply<'a>(&'a mut self, want: &'a Desired) -> Fut<'a, Result<(), Vec<ApplyError>>> {
        Box::pin(async move {
            let mut ips: Vec<IpAddr> = want
                .services
                .iter()
                .flat_map(|s| s.dests.iter().map(|d| d.addr))
                .collect();
            ips.sort_unstable();
            ips.dedup();
            // One route lookup per real server: the next hop whose MAC frames get, and
            // the check that LVS-DR (which only rewrites MACs) has its real servers on
            // the link.
            let gws = rvs_xdp::neigh::gateways(&ips).await;
            let routed: Vec<ApplyError> = want
                .services
                .iter()
                .flat_map(|s| {
                    s.dests
                        .iter()
                        .filter(|d| d.fwd == rvs_sched::Fwd::Route)
                        .filter_map(|d| {
                            gws.get(&d.addr).copied().flatten().map(|gateway| {
                                ApplyError::DrRouted {
                                    service: s.key,
                                    real: d.addr,
                                    gateway,
                                }
                            })
                        })
                })
                .collect();
            if !routed.is_empty() {
                return Err(routed);
            }
            let hops: HashMap<IpAddr, IpAddr> = ips
                .iter()
                .map(|i| (*i, gws.get(i).copied().flatten().unwrap_or(*i)))
                .collect();
            let mut fresh: Vec<IpAddr> = hops
                .values()
                .copied()
                .filter(|h| !self.asked.contains(h))
                .collect();
            fresh.sort_unstable();
            fresh.dedup();
            let table = if fresh.is_empty() {
                self.neigh.table()
            } else {
                self.asked.extend(fresh.iter().copied());
                self.neigh.resolve(&fresh, Duration::from_secs(2)).await
            };
            self.asked.retain(|h| hops.values().any(|x| x == h));
            self.guard(want).await;
            let want = want.clone();
            self.owner
                .call(move |st| st.program(want, hops, &table))
                .await
                .ok_or_else(stopped)?
        })
    }

    fn command<'a>(
        &'a mut self,
        c: &'a rvs_adm::cmd::Command,
    ) -> Fut<'a, Option<Result<(), String>>> {
        Box::pin(async move {
            match c {
                // `-Z`: the program's counters now become the zero of what the table
                // shows (the caller zeroes the table's copy as well).
                rvs_adm::cmd::Command::Zero(only) => {
                    let only = *only;
                    let _ = self.owner.call(move |st| st.take_base(only)).await;
                    None
                }
                rvs_adm::cmd::Command::StartDaemon(d) => {
                    Some(
                        self.sync
                            .start(d, self.owner.caller(), &self.snapshots, &self.shared),
                    )
                }
                rvs_adm::cmd::Command::StopDaemon { state, .. } => {
                    Some(self.sync.stop(state, &self.snapshots).await)
                }
                _ => None,
            }
        })
    }

    fn pin_for_upgrade<'a>(
        &'a mut self,
        dir: &'a std::path::Path,
    ) -> Fut<'a, Result<Option<rvs_xdp::Carried>, String>> {
        let dir = dir.to_path_buf();
        Box::pin(async move {
            self.owner
                .call(move |st| st.xdp.pin_for_upgrade(&dir))
                .await
                .ok_or_else(|| "the XDP data plane is stopping".to_owned())?
                .map(Some)
                .map_err(|e| e.to_string())
        })
    }

    fn release_pins(&mut self, handed_over: bool) -> Fut<'_, ()> {
        Box::pin(async move {
            let r = self
                .owner
                .call(move |st| st.xdp.release_pins(handed_over))
                .await;
            if let Some(Err(e)) = r {
                tracing::error!("{e}");
            }
        })
    }

    fn stop(self: Box<Self>) -> Fut<'static, ()> {
        self.finish(true)
    }

    /// Handed over (`rvs upgrade`): the successor's reset guard stays.
    fn leave(self: Box<Self>) -> Fut<'static, ()> {
        self.finish(false)
    }
}

impl XdpForwarder {
    /// Stops the sync daemons and the program's thread; `unguard`: the FULLNAT reset
    /// guard goes too.
    fn finish(self: Box<Self>, unguard: bool) -> Fut<'static, ()> {
        let XdpForwarder {
            owner,
            follower,
            mut sync,
            snapshots,
            guarded,
            ..
        } = *self;
        Box::pin(async move {
            for state in ["master", "backup"] {
                let _ = sync.stop(state, &snapshots).await;
            }
            if unguard && !guarded.is_empty() {
                let gone = super::guard::script(&std::collections::BTreeSet::new());
                if let Err(e) = super::guard::apply(&gone).await {
                    tracing::warn!("removing the FULLNAT reset guard: {e}");
                }
            }
            // The follower holds a caller: ended first, so that the thread can stop.
            follower.abort();
            let _ = follower.await;
            // Dropping the program on its thread detaches it: traffic goes back to the
            // kernel.
            owner.stop().await;
        })
    }
}

/// Programs the last desired state again whenever the neighbour table changes a MAC
/// it uses (or supplies one it lacked).
async fn follow_neighbours(
    mut rx: tokio::sync::watch::Receiver<Arc<HashMap<IpAddr, [u8; 6]>>>,
    caller: super::owner::Caller<State>,
) {
    while rx.changed().await.is_ok() {
        let table = rx.borrow_and_update().clone();
        if caller.call(move |st| st.refresh(&table)).await.is_none() {
            return;
        }
    }
}

impl State {
    /// Flows and templates the sync daemon received, taken over (`rvs_xdp::Xdp::adopt`);
    /// `client_hops`: the next hop towards each FULLNAT client, whose MAC (from the
    /// neighbour table) the replies get.
    pub fn adopt(
        &mut self,
        flows: &[rvs_xdp::FlowEntry],
        templates: &[rvs_xdp::TemplateEntry],
        client_hops: &HashMap<IpAddr, IpAddr>,
    ) -> Result<rvs_xdp::Adopted, rvs_xdp::XdpError> {
        let table = self.neighbours.borrow().clone();
        let macs: HashMap<IpAddr, [u8; 6]> = client_hops
            .iter()
            .filter_map(|(c, hop)| table.get(hop).map(|m| (*c, *m)))
            .collect();
        // Behind ECMP the client's packets may never come here to tell: say so (once a
        // minute), with the way out.
        let unknown = client_hops.keys().find(|c| !macs.contains_key(*c));
        if let Some(c) = unknown {
            if self
                .warned_no_hop
                .is_none_or(|t| t.elapsed() >= Duration::from_mins(1))
            {
                self.warned_no_hop = Some(Instant::now());
                tracing::warn!(
                    "XDP: FULLNAT connections taken over by connection sync from client {c}: \
                     no next hop known for the client (no route to it, or its MAC not in \
                     the neighbour table), so their replies wait for the client's next \
                     packet here, which ECMP may send to another director: give the \
                     directors a route to the clients"
                );
            }
        }
        self.xdp.adopt(flows, templates, &macs)
    }

    /// Each real server's MAC: its next hop's in `table`, else the one programmed
    /// last (an entry that failed or went away while its real server is down: the MAC
    /// is still the right one when it comes back).
    fn macs(
        &self,
        hops: &HashMap<IpAddr, IpAddr>,
        table: &HashMap<IpAddr, [u8; 6]>,
    ) -> HashMap<IpAddr, [u8; 6]> {
        hops.iter()
            .filter_map(|(ip, hop)| {
                table
                    .get(hop)
                    .or_else(|| self.last.as_ref().and_then(|l| l.macs.get(ip)))
                    .map(|m| (*ip, *m))
            })
            .collect()
    }

    /// Programs `want` with the next hops' MACs, and remembers it.
    fn program(
        &mut self,
        want: Desired,
        hops: HashMap<IpAddr, IpAddr>,
        table: &HashMap<IpAddr, [u8; 6]>,
    ) -> Result<(), Vec<ApplyError>> {
        let macs = self.macs(&hops, table);
        let res = self
            .xdp
            .apply(&want, &macs)
            .map(|_| ())
            .map_err(|errs| errs.into_iter().map(ApplyError::from).collect());
        self.last = Some(Programmed { want, hops, macs });
        res
    }

    /// The neighbour table changed: programs the last desired state again if a MAC it
    /// uses changed or appeared.
    fn refresh(&mut self, table: &HashMap<IpAddr, [u8; 6]>) {
        let Some(last) = &self.last else { return };
        let macs = self.macs(&last.hops, table);
        if macs == last.macs {
            return;
        }
        let (want, hops) = (last.want.clone(), last.hops.clone());
        match self.program(want, hops, table) {
            Ok(()) => tracing::info!("XDP: next-hop MACs changed, real servers re-programmed"),
            Err(errs) => tracing::warn!(
                "XDP: next-hop MACs changed, re-programming: {}",
                ApplyError::messages(&errs).join("; ")
            ),
        }
    }

    fn take_base(&mut self, only: Option<rvs_sched::SvcKey>) {
        let Ok((_, reals)) = self.xdp.counters() else {
            return;
        };
        for (k, now) in reals {
            if only.is_none_or(|o| o == k.0) {
                self.base.insert(k, now);
            }
        }
    }

    /// Copies the program's counters (minus the `-Z` base) into the table's, and walks
    /// its flow table as [`scan_flows`] paces it.
    fn copy_counters(&mut self) {
        if Instant::now() >= self.next_scan {
            self.next_scan = Instant::now() + scan_flows(&self.xdp, &self.shared, &self.snapshots);
        }
        // Forwarding by table: slots whose flows from before a change have timed out go
        // back to the table alone.
        match self.xdp.sweep_changes() {
            Ok(s) => self
                .snapshots
                .by_table
                .store(Arc::new((s.services > 0).then_some(rvs_api::ByTable {
                    services: s.services as u64,
                    changed_slots: s.changed as u64,
                }))),
            Err(e) => tracing::warn!("XDP: clearing changed table slots: {e}"),
        }
        let Ok((_, reals)) = self.xdp.counters() else {
            return;
        };
        let by_key = self.shared.services_by_key();
        for ((key, addr, port), now) in reals {
            let c = match self.base.get(&(key, addr, port)).map(|b| since(now, *b)) {
                None => now,
                Some(Some(c)) => c,
                Some(None) => {
                    self.base.remove(&(key, addr, port));
                    now
                }
            };
            let Some(svc) = by_key.get(&key) else {
                continue;
            };
            svc.counters(std::net::SocketAddr::new(addr, port)).store(
                rvs_sched::estimator::Totals {
                    conns: c.conns,
                    in_pkts: c.pkts_in,
                    out_pkts: c.pkts_out,
                    in_bytes: c.bytes_in,
                    out_bytes: c.bytes_out,
                },
            );
        }
    }
}

/// `now − base`, or `None` when a counter went backwards (the real server's slot was
/// reused from zero: the base no longer applies).
fn since(
    now: rvs_xdp::maps::Counters,
    base: rvs_xdp::maps::Counters,
) -> Option<rvs_xdp::maps::Counters> {
    Some(rvs_xdp::maps::Counters {
        conns: now.conns.checked_sub(base.conns)?,
        pkts_in: now.pkts_in.checked_sub(base.pkts_in)?,
        bytes_in: now.bytes_in.checked_sub(base.bytes_in)?,
        pkts_out: now.pkts_out.checked_sub(base.pkts_out)?,
        bytes_out: now.bytes_out.checked_sub(base.bytes_out)?,
    })
}

/// Walks the program's flow table: active (TCP without FIN/RST) and inactive (the rest)
/// counts per real server into the table, and the `-Lc` list. A walk costs two system
/// calls per flow, so it is paced to about 5 % of a core: the next one waits at least
/// 20 × as long as this one took (at least a second).
fn scan_flows(x: &rvs_xdp::Xdp, shared: &Shared, snapshots: &Snapshots) -> Duration {
    let t0 = Instant::now();
    let read = x
        .flows(1 << 22)
        .and_then(|f| Ok((f, x.templates(1 << 20)?)));
    let (flows, templates) = match read {
        Ok(f) => f,
        Err(e) => {
            tracing::warn!("reading the XDP flow table: {e}");
            return Duration::from_secs(10);
        }
    };
    let took = t0.elapsed();
    let mut counts: HashMap<XdpKey, (u32, u32)> = HashMap::new();
    for f in &flows {
        let c = counts.entry((f.svc, f.real.0, f.real.1)).or_default();
        if f.proto == 6 && !f.fin {
            c.0 += 1;
        } else {
            c.1 += 1;
        }
    }
    // Persistence templates count as the kernel's PersistConn.
    let mut persist: HashMap<XdpKey, u32> = HashMap::new();
    for t in &templates {
        *persist.entry((t.svc, t.real.0, t.real.1)).or_default() += 1;
    }
    for shard in shared.services().iter() {
        let mut table = shard.table();
        for ts in table.services.iter_mut().filter(|t| !t.removed) {
            let key = ts.key;
            let dests: Vec<(rvs_sched::DestId, IpAddr, u16)> =
                ts.dests().map(|(id, d)| (id, d.addr, d.port)).collect();
            for (id, addr, port) in dests {
                let (a, i) = counts.get(&(key, addr, port)).copied().unwrap_or_default();
                let p = persist.get(&(key, addr, port)).copied().unwrap_or_default();
                ts.set_conn_counts(id, a, i, p);
            }
        }
    }
    let conns = flows
        .iter()
        .map(|f| rvs_adm::Conn {
            proto: if f.proto == 17 { "UDP" } else { "TCP" }.to_owned(),
            expires_s: u64::from(f.expires_s),
            state: match (f.proto, f.fin) {
                (17, _) => "UDP",
                (_, false) => "ESTABLISHED",
                _ => "FIN_WAIT",
            }
            .to_owned(),
            caddr: f.client.ip(),
            cport: f.client.port(),
            vaddr: f.vip.ip(),
            vport: f.vip.port(),
            daddr: f.real.0,
            dport: f.real.1,
        })
        .chain(templates.iter().filter_map(|t| {
            let rvs_sched::SvcKey::Addr { proto, addr, port } = t.svc else {
                return None;
            };
            Some(rvs_adm::Conn {
                proto: proto.name().to_owned(),
                expires_s: u64::from(t.expires_s),
                state: "NONE".to_owned(),
                caddr: t.client,
                cport: 0,
                vaddr: addr,
                vport: port,
                daddr: t.real.0,
                dport: t.real.1,
            })
        }))
        .collect::<Vec<_>>();
    snapshots.flows.store(Arc::new(conns));
    let generation = snapshots.walk.load().generation + 1;
    snapshots.walk.store(Arc::new(super::sync::Walk {
        flows,
        templates,
        generation,
    }));
    (took * 20).max(Duration::from_secs(1))
}
