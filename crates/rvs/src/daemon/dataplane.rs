//! The data planes behind one interface: `apply(&Desired)` by difference, a table for
//! listings and statistics (`shared`), `shutdown`. The proxy forwards itself; the XDP
//! data plane forwards in the kernel and keeps a table-only proxy for the operator
//! interface, whose counters a task copies from the program's per-CPU maps every second.

use rvs_proxy::{Proxy, ProxyOptions, Shared};
use rvs_sched::desired::Desired;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How to run the XDP data plane.
#[derive(Debug, Clone)]
pub struct XdpSettings {
    pub iface: String,
    pub native: bool,
    pub flows: u32,
}

struct XdpPlane {
    xdp: Arc<Mutex<rvs_xdp::Xdp>>,
    sync: Worker,
    /// `-Z`: the program's counters at the time of the zero, subtracted from what it
    /// counts (its per-CPU counters are never written from userspace).
    base: Arc<Mutex<XdpBase>>,
}

type XdpKey = (rvs_sched::SvcKey, IpAddr, u16);
type XdpBase = std::collections::HashMap<XdpKey, rvs_xdp::maps::Counters>;

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

/// The kernel's IPVS through netlink: rvs programs the table, the kernel forwards.
struct IpvsPlane {
    ipvs: Arc<Mutex<rvs_ipvs::Ipvs>>,
    /// The services rvs created or adopted (others in the kernel are left alone).
    managed: std::collections::HashSet<rvs_sched::SvcKey>,
    sync: Worker,
}

/// `ipvsadm -L --daemon` lines of the running sync daemons (kernel IPVS only), refreshed
/// every second and after every start or stop.
pub type SyncLines = Arc<Mutex<Vec<String>>>;

/// The XDP program's live flows as `-Lc` lists them, refreshed by the counter task.
pub type FlowList = Arc<Mutex<Vec<rvs_adm::Conn>>>;

/// Which data plane forwards (`rvs run --dataplane`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// The userspace TCP/UDP proxy (no root needed).
    Proxy,
    /// The XDP/eBPF program forwards DR, TUN and NAT in the kernel (root).
    Xdp,
    /// The kernel's IPVS programmed over netlink, as keepalived does (root, `ip_vs`).
    Ipvs,
}

impl Kind {
    /// The name the CLI, the API and the metrics use.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Proxy => "proxy",
            Kind::Xdp => "xdp",
            Kind::Ipvs => "ipvs",
        }
    }
}

pub struct Dataplane {
    pub proxy: Proxy,
    xdp: Option<XdpPlane>,
    ipvs: Option<IpvsPlane>,
    pub sync_lines: SyncLines,
    pub xdp_flows: FlowList,
}

pub use rvs_sched::table::ApplyReport;

impl Dataplane {
    pub fn proxy(opts: ProxyOptions) -> Dataplane {
        Dataplane {
            proxy: Proxy::new(opts),
            xdp: None,
            ipvs: None,
            sync_lines: SyncLines::default(),
            xdp_flows: FlowList::default(),
        }
    }

    /// Opens the kernel's IPVS (fails with what to do when the kernel has none).
    pub fn ipvs(opts: &ProxyOptions) -> anyhow::Result<Dataplane> {
        let ipvs = rvs_ipvs::Ipvs::open().map_err(|e| anyhow::anyhow!("--dataplane ipvs: {e}"))?;
        tracing::info!("kernel IPVS over netlink");
        let proxy = Proxy::new(ProxyOptions {
            table_only: true,
            ..opts.clone()
        });
        let ipvs = Arc::new(Mutex::new(ipvs));
        let sync_lines = SyncLines::default();
        let sync = {
            let (ipvs, shared, lines) = (ipvs.clone(), proxy.shared.clone(), sync_lines.clone());
            Worker::spawn("rvs-ipvs-stats", move |stop| {
                copy_kernel_counters(&ipvs, &shared, &lines, stop);
            })?
        };
        Ok(Dataplane {
            proxy,
            xdp: None,
            sync_lines,
            xdp_flows: FlowList::default(),
            ipvs: Some(IpvsPlane {
                ipvs,
                managed: std::collections::HashSet::new(),
                sync,
            }),
        })
    }

    /// Loads and attaches the XDP program on `s.iface`.
    pub async fn xdp(opts: ProxyOptions, s: &XdpSettings) -> anyhow::Result<Dataplane> {
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
        let xdp = rvs_xdp::Xdp::load(&rvs_xdp::Options {
            iface: Some(s.iface.clone()),
            native: s.native,
            flows: s.flows,
            tun_src4,
            tun_src6,
            bench: false,
        })
        .map_err(|e| anyhow::anyhow!("--dataplane xdp on {}: {e}", s.iface))?;
        tracing::info!(
            "XDP program attached to {} ({} mode, {} flows)",
            s.iface,
            if s.native { "native" } else { "generic" },
            s.flows
        );
        let proxy = Proxy::new(ProxyOptions {
            table_only: true,
            ..opts
        });
        let xdp = Arc::new(Mutex::new(xdp));
        let base = Arc::new(Mutex::new(XdpBase::new()));
        let flows = FlowList::default();
        let sync = {
            let (xdp, shared, base, flows) = (
                xdp.clone(),
                proxy.shared.clone(),
                base.clone(),
                flows.clone(),
            );
            Worker::spawn("rvs-xdp-stats", move |stop| {
                copy_counters(&xdp, &shared, &base, &flows, stop);
            })?
        };
        Ok(Dataplane {
            proxy,
            xdp: Some(XdpPlane { xdp, sync, base }),
            ipvs: None,
            sync_lines: SyncLines::default(),
            xdp_flows: flows,
        })
    }

    pub fn kind(&self) -> Kind {
        if self.xdp.is_some() {
            Kind::Xdp
        } else if self.ipvs.is_some() {
            Kind::Ipvs
        } else {
            Kind::Proxy
        }
    }

    pub fn shared(&self) -> &Arc<Shared> {
        &self.proxy.shared
    }

    /// Applies `want` by difference. Errors name what was not applied; the rest is.
    pub async fn apply(&mut self, want: &Desired) -> Result<ApplyReport, Vec<String>> {
        let table = self
            .proxy
            .apply(want)
            .map_err(|errs| errs.iter().map(ToString::to_string).collect::<Vec<_>>());
        if let Some(k) = &mut self.ipvs {
            let res = rvs_ipvs::reconcile(
                &mut k
                    .ipvs
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner),
                want,
                &mut k.managed,
            );
            if let Ok(r) = &res {
                if r != &rvs_ipvs::Report::default() {
                    tracing::info!("kernel IPVS: {r:?}");
                }
            }
            return match (table, res) {
                (Ok(rep), Ok(_)) => Ok(rep),
                (t, r) => {
                    let mut errs = t.err().unwrap_or_default();
                    errs.extend(r.err().unwrap_or_default().iter().map(ToString::to_string));
                    Err(errs)
                }
            };
        }
        let Some(x) = &self.xdp else {
            return table;
        };
        let mut ips: Vec<IpAddr> = want
            .services
            .iter()
            .flat_map(|s| s.dests.iter().map(|d| d.addr))
            .collect();
        ips.sort_unstable();
        ips.dedup();
        // One route lookup per real server: the next hop whose MAC frames get, and the
        // check that LVS-DR (which only rewrites MACs) has its real servers on the link.
        let gws = rvs_xdp::neigh::gateways(&ips).await;
        let routed: Vec<String> = want
            .services
            .iter()
            .flat_map(|s| {
                s.dests
                    .iter()
                    .filter(|d| d.fwd == rvs_sched::Fwd::Route)
                    .filter_map(|d| {
                        gws.get(&d.addr).copied().flatten().map(|g| {
                            format!(
                                "virtual server {}: DR real server {} is routed through {g}, \
                                 not on the director's link (LVS-DR needs the real servers on \
                                 its segment; use TUN or NAT)",
                                s.key, d.addr
                            )
                        })
                    })
            })
            .collect();
        if !routed.is_empty() {
            let mut errs = table.err().unwrap_or_default();
            errs.extend(routed);
            return Err(errs);
        }
        let macs = rvs_xdp::neigh::resolve(&ips, &gws, Duration::from_secs(2)).await;
        let res = x
            .xdp
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .apply(want, &macs);
        match (table, res) {
            (Ok(rep), Ok(_)) => Ok(rep),
            (t, r) => {
                let mut errs = t.err().unwrap_or_default();
                errs.extend(r.err().unwrap_or_default().iter().map(ToString::to_string));
                Err(errs)
            }
        }
    }

    /// `-Z` under XDP: the program's counters now become the zero of what the table
    /// shows (`only`: one service). The caller zeroes the table's copy as well.
    pub fn zero_xdp(&self, only: Option<rvs_sched::SvcKey>) {
        let Some(x) = &self.xdp else { return };
        let got = x
            .xdp
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .counters();
        let Ok((_, reals)) = got else { return };
        let mut base = x
            .base
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for (k, now) in reals {
            if only.is_none_or(|o| o == k.0) {
                base.insert(k, now);
            }
        }
    }

    /// `--start-daemon` / `--stop-daemon` / `-Z` on the kernel's IPVS; `None` when this
    /// data plane is not the kernel's (the caller handles them).
    pub fn kernel_command(&mut self, c: &rvs_adm::cmd::Command) -> Option<Result<(), String>> {
        let k = self.ipvs.as_ref()?;
        let mut ipvs = k
            .ipvs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let r = match c {
            rvs_adm::cmd::Command::StartDaemon(d) => ipvs.new_daemon(&rvs_ipvs::SyncDaemon {
                state: d.state.clone(),
                ifname: d.ifname.clone(),
                syncid: u32::from(d.syncid),
                maxlen: d.maxlen,
                group: d.group,
                port: d.port,
                ttl: d.ttl,
            }),
            rvs_adm::cmd::Command::StopDaemon { state, .. } => ipvs.del_daemon(state),
            // Counters live in the kernel: zero them there (the table copy follows).
            rvs_adm::cmd::Command::Zero(id) => {
                let key = *id;
                ipvs.zero(key.as_ref())
            }
            _ => return None,
        };
        let r = r.map_err(|e| match e {
            rvs_ipvs::IpvsError::Kernel { errno, .. } if errno == libc::EEXIST => {
                "Daemon has already run".to_owned()
            }
            rvs_ipvs::IpvsError::Kernel { errno, .. } if errno == libc::ESRCH => {
                if matches!(c, rvs_adm::cmd::Command::Zero(_)) {
                    "No such service".to_owned()
                } else {
                    "No daemon is running".to_owned()
                }
            }
            e => e.to_string(),
        });
        if let Ok(ds) = ipvs.daemons() {
            *self
                .sync_lines
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) =
                ds.iter().map(rvs_ipvs::SyncDaemon::line).collect();
        }
        Some(r)
    }

    pub async fn shutdown(&mut self, drain: Duration) {
        if let Some(mut k) = self.ipvs.take() {
            k.sync.stop();
            // As keepalived does at stop: remove what rvs put in the kernel.
            let mut ipvs = k
                .ipvs
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for key in &k.managed {
                if let Err(e) = ipvs.del_service(key) {
                    tracing::warn!("removing a kernel IPVS service at stop: {e}");
                }
            }
        }
        if let Some(mut x) = self.xdp.take() {
            // The copier holds the program too: stopped (joined) first, so that dropping
            // it here really detaches it.
            x.sync.stop();
            // Dropping the program detaches it: traffic goes back to the kernel.
            drop(x.xdp);
        }
        self.proxy.shutdown(drain).await;
    }
}

/// A periodic copier on an OS thread of its own: its netlink dumps and BPF map walks
/// (two system calls per flow, up to millions) are blocking calls that must never
/// occupy the async runtime's threads, where the control API, the checkers and the
/// proxy run.
struct Worker {
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Worker {
    fn spawn(
        name: &str,
        run: impl FnOnce(&std::sync::atomic::AtomicBool) + Send + 'static,
    ) -> std::io::Result<Worker> {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || run(&flag))?;
        Ok(Worker {
            stop,
            thread: Some(thread),
        })
    }

    /// Asks the copier to stop and waits for it (at most its current pass).
    fn stop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Waits `d` in short steps; false once `stop` is set.
fn pause(stop: &std::sync::atomic::AtomicBool, d: Duration) -> bool {
    let until = std::time::Instant::now() + d;
    while std::time::Instant::now() < until {
        if stop.load(std::sync::atomic::Ordering::Relaxed) {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100).min(d));
    }
    !stop.load(std::sync::atomic::Ordering::Relaxed)
}

/// Copies the kernel's per-real-server counters into the table's, every second, until
/// `stop`.
fn copy_kernel_counters(
    ipvs: &Mutex<rvs_ipvs::Ipvs>,
    shared: &Shared,
    sync_lines: &SyncLines,
    stop: &std::sync::atomic::AtomicBool,
) {
    while pause(stop, Duration::from_secs(1)) {
        let mut k = ipvs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Ok(ds) = k.daemons() {
            *sync_lines
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) =
                ds.iter().map(rvs_ipvs::SyncDaemon::line).collect();
        }
        let Ok(services) = k.services() else { continue };
        let by_key = shared.services_by_key();
        for s in services {
            let Ok(dests) = k.dests(&s.key) else { continue };
            let Some(svc) = by_key.get(&s.key) else {
                continue;
            };
            {
                // Active/inactive/persistent counts, for listings.
                let mut table = svc.table();
                if let Some(ts) = table
                    .services
                    .iter_mut()
                    .find(|t| t.key == s.key && !t.removed)
                {
                    for d in &dests {
                        if let Some(id) = ts.find(d.addr, d.port) {
                            ts.set_conn_counts(id, d.active, d.inactive, d.persist);
                        }
                    }
                }
            }
            for d in dests {
                svc.counters(std::net::SocketAddr::new(d.addr, d.port))
                    .store(rvs_sched::estimator::Totals {
                        conns: d.stats.conns,
                        in_pkts: d.stats.inpkts,
                        out_pkts: d.stats.outpkts,
                        in_bytes: d.stats.inbytes,
                        out_bytes: d.stats.outbytes,
                    });
            }
        }
    }
}

/// Walks the program's flow table: active (TCP without FIN/RST) and inactive (the rest)
/// counts per real server into the table, and the `-Lc` list. A walk costs two system
/// calls per flow, so it is paced to about 5 % of a core: the next one waits at least
/// 20 × as long as this one took (at least a second).
fn scan_flows(xdp: &Mutex<rvs_xdp::Xdp>, shared: &Shared, list: &FlowList) -> Duration {
    let t0 = std::time::Instant::now();
    let read = {
        let x = xdp
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        x.flows(1 << 22)
            .and_then(|f| Ok((f, x.templates(1 << 20)?)))
    };
    let (flows, templates) = match read {
        Ok(f) => f,
        Err(e) => {
            tracing::warn!("reading the XDP flow table: {e}");
            return Duration::from_secs(10);
        }
    };
    let took = t0.elapsed();
    let mut counts: std::collections::HashMap<XdpKey, (u32, u32)> =
        std::collections::HashMap::new();
    for f in &flows {
        let c = counts.entry((f.svc, f.real.0, f.real.1)).or_default();
        if f.proto == 6 && !f.fin {
            c.0 += 1;
        } else {
            c.1 += 1;
        }
    }
    // Persistence templates count as the kernel's PersistConn.
    let mut persist: std::collections::HashMap<XdpKey, u32> = std::collections::HashMap::new();
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
    *list
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = conns;
    (took * 20).max(Duration::from_secs(1))
}

/// Copies the program's counters (minus the `-Z` base) into the table's, every second,
/// and walks its flow table as [`scan_flows`] paces it, until `stop`.
fn copy_counters(
    xdp: &Mutex<rvs_xdp::Xdp>,
    shared: &Shared,
    base: &Mutex<XdpBase>,
    flows: &FlowList,
    stop: &std::sync::atomic::AtomicBool,
) {
    let mut next_scan = std::time::Instant::now();
    while pause(stop, Duration::from_secs(1)) {
        if std::time::Instant::now() >= next_scan {
            next_scan = std::time::Instant::now() + scan_flows(xdp, shared, flows);
        }
        let got = xdp
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .counters();
        let Ok((_, reals)) = got else { continue };
        let mut base = base
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let by_key = shared.services_by_key();
        for ((key, addr, port), now) in reals {
            let c = match base.get(&(key, addr, port)).map(|b| since(now, *b)) {
                None => now,
                Some(Some(c)) => c,
                Some(None) => {
                    base.remove(&(key, addr, port));
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
