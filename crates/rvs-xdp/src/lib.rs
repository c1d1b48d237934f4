//! `rvs-xdp`: the packet data plane. An XDP program (`bpf/lb.bpf.c`, built by clang)
//! forwards the virtual services in LVS-DR, TUN and NAT mode; this crate loads it with
//! aya, attaches it, and reconciles its maps with the desired state:
//!
//! - `vips`: (VIP, port, protocol) → service (scheduler, table length, flags, persistence);
//! - `reals`: slot → real server (address, MAC, port, method, usable);
//! - `tables`: service → its scheduling table, an inner array swapped whole (array of
//!   maps): the kernel IPVS `dh`/`sh`/`mh` lookup tables (built by `rvs-sched`, hashed the
//!   same way in the program) or one `wrr` cycle for `rr`/`wrr`;
//! - `laddrs`: slot → FULLNAT local address (a slot per address, never moved while rvs
//!   runs, so that a connection's slot stays its address); `svc_laddrs`: each service's
//!   local addresses, as slots;
//! - `flows` (LRU), `templates` (persistence), `nat_rev` (NAT and FULLNAT replies),
//!   `fnat_port` (each CPU's next FULLNAT port): written by the program only;
//! - `svc_stats`, `real_stats`: per-CPU counters.
//!
//! Invariants: a real server keeps its slot while it stays in its service, so established
//! flows keep going to it when the others change; a removed or weight-0 real server is
//! marked unusable (no new flows) but its slot is not reused while flows may point at it;
//! a service's table is replaced only when its content changes, by one map update.
//!
//! Across `rvs upgrade` the maps and the link are pinned and the next rvs loads its
//! program on them ([`carry`](Xdp::pin_for_upgrade)): nothing is copied or detached.

mod bytable;
mod carry;
pub use bytable::Sweep;
pub mod iface;
pub mod maps;

pub use carry::{layout, pin_dir, remove_pins, remove_stale_pins, Carried, MapLayout, Slots};
pub mod neigh;

use aya::maps::{Array, ArrayOfMaps, HashMap as BpfHashMap, MapData, PerCpuArray};
use aya::programs::xdp::XdpLinkId;
use aya::programs::{TestRun as _, TestRunOptions, Xdp as XdpProgram, XdpMode};
use aya::{Ebpf, EbpfLoader};
use maps::{addr16, Config, Counters, Real, Svc, VipKey};
use rvs_sched::desired::{Desired, DesiredService};
use rvs_sched::{Algo, Fwd, Proto, SvcKey};
use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/lb.bpf.o"));

/// `bpf/pass.bpf.c`: one program, `rvs_pass`, that passes every frame (empty when rvs was
/// built without clang). Native `XDP_TX` on veth needs a program on the peer device.
pub static PASS_OBJECT: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/pass.bpf.o"));

#[derive(Debug, thiserror::Error)]
pub enum XdpError {
    #[error(
        "rvs was built without its XDP program (clang was missing): install clang and \
         libbpf-dev (apt-get install clang libbpf-dev) and rebuild"
    )]
    NotBuilt,
    #[error("loading the XDP program: {0}")]
    Load(#[from] aya::EbpfError),
    #[error("XDP program: {0}")]
    Program(#[from] aya::programs::ProgramError),
    #[error("XDP map: {0}")]
    Map(#[from] aya::maps::MapError),
    #[error("the XDP program's clock: {0}")]
    Clock(String),
    #[error("the XDP object has no {0}")]
    Missing(&'static str),
    #[error("virtual server {service}: {what} (with --dataplane xdp)")]
    Unsupported { service: String, what: String },
    #[error("virtual server {service}: no MAC address for real server {real} (not on the director's link?)")]
    NoMac { service: String, real: IpAddr },
    #[error("too many {0} for the XDP maps")]
    Full(&'static str),
    #[error("handing the XDP program over: {0}")]
    Carry(String),
}

/// How to attach.
#[derive(Debug, Clone)]
pub struct Options {
    /// The interface that receives VIP traffic; `None`: load only (for `BPF_PROG_RUN`).
    pub iface: Option<String>,
    /// `generic` (SKB mode, works everywhere) or `native` (driver mode).
    pub native: bool,
    /// Flow table entries (LRU).
    pub flows: u32,
    /// Outer source addresses of TUN packets.
    pub tun_src4: Option<Ipv4Addr>,
    pub tun_src6: Option<Ipv6Addr>,
    /// The interface's MAC: unicast frames addressed to another host (a switch flooding,
    /// promiscuous mode) pass to the kernel instead of being forwarded.
    pub own_mac: Option<[u8; 6]>,
    /// Benchmarks only: load `rvs_lb_bench`, which moves the frame to the next of
    /// [`Xdp::set_rotation`]'s flows before balancing (never attach it).
    #[doc(hidden)]
    pub bench: bool,
    /// Forward the TCP flows of `mh`, `sh` and `dh` services (DR and TUN, without
    /// persistence) by their table slot alone, looking the flow table up only for slots
    /// whose real server changed (docs/xdp.md, "Forwarding by the table").
    pub by_table: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            iface: None,
            native: false,
            flows: 1 << 20,
            tun_src4: None,
            tun_src6: None,
            own_mac: None,
            bench: false,
            by_table: false,
        }
    }
}

/// What an [`Xdp::apply`] changed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ApplyReport {
    pub services_added: usize,
    pub services_removed: usize,
    pub tables_swapped: usize,
    /// Slots of tables forwarded by table alone rewritten in place (and marked).
    pub slots_changed: usize,
    pub reals_written: usize,
}

/// One live flow of the program's table, as `-Lc` lists a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowEntry {
    /// 6 (TCP) or 17 (UDP).
    pub proto: u8,
    pub client: std::net::SocketAddr,
    pub vip: std::net::SocketAddr,
    pub svc: SvcKey,
    pub real: (IpAddr, u16),
    /// A FIN or RST was seen.
    pub fin: bool,
    /// Seconds left before the flow expires (its idle timeout minus its idle time).
    pub expires_s: u32,
    /// This director forwarded a packet of it; `false` while it is only adopted from
    /// another director's connection sync. A sync master sends only these (active-active:
    /// a director does not send back, and so keep alive, what it was sent).
    pub here: bool,
    /// FULLNAT: the connection's local address and port (the source the real server
    /// sees).
    pub local: Option<std::net::SocketAddr>,
}

/// What [`Xdp::adopt`] did with the entries it was given.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Adopted {
    /// Written into the program's tables.
    pub taken: usize,
    /// Of a service or real server this director does not have.
    pub not_ours: usize,
    /// Flows this director forwards itself (its own entry is the fresher one).
    pub forwarded_here: usize,
}

/// One live persistence template, as `-Lc` lists the kernel's (state `NONE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateEntry {
    /// The client's address masked to the service's granularity.
    pub client: IpAddr,
    pub svc: SvcKey,
    pub real: (IpAddr, u16),
    /// Seconds left of the persistence timeout.
    pub expires_s: u32,
}

pub(crate) fn sockaddr(a: [u8; 16], family: u8, port_be: u16) -> std::net::SocketAddr {
    let ip = if family == 4 {
        IpAddr::from([a[0], a[1], a[2], a[3]])
    } else {
        IpAddr::from(a)
    };
    std::net::SocketAddr::new(ip, u16::from_be(port_be))
}

/// Counters per service and per (service, real server address, port).
pub type AllCounters = (
    HashMap<SvcKey, Counters>,
    HashMap<(SvcKey, IpAddr, u16), Counters>,
);

/// The loaded (and possibly attached) program with the state it was given.
pub struct Xdp {
    ebpf: Ebpf,
    /// `rvs_lb`, or `rvs_lb_bench` for benchmarks.
    prog: &'static str,
    svc_ids: HashMap<SvcKey, u32>,
    free_svc: Vec<u32>,
    next_svc: u32,
    /// (service id, address, port) → real slot.
    real_ids: HashMap<(u32, IpAddr, u16), u32>,
    next_real: u32,
    /// Slots of removed real servers, reusable once every flow to them has expired.
    retired: Vec<(u32, Instant)>,
    reals_written: HashMap<u32, Real>,
    tables: HashMap<u32, Vec<u32>>,
    applied: HashMap<SvcKey, VipKey>,
    /// Persistence timeout (s) by service id, 0 without persistence (`-Lc` templates).
    persist_s: HashMap<u32, u32>,
    cfg: Config,
    /// The longest idle timeout: how long a retired slot may still be referenced.
    max_idle: Duration,
    /// The interface the program is attached to, and its link.
    iface: Option<String>,
    link: Option<XdpLinkId>,
    /// Whether the kernel attached it through a BPF link (`bpf_link_create`), which an
    /// upgrade can hand over, rather than netlink (aya falls back to netlink where the
    /// kernel refuses a link). Known at attach time: aya says it only by consuming the
    /// link, which would detach a netlink attachment.
    by_bpf_link: bool,
    /// The flow table's size as loaded.
    flows_max: u32,
    /// The link while pinned for an upgrade ([`Xdp::pin_for_upgrade`]).
    pinned: Option<(std::path::PathBuf, aya::programs::links::PinnedLink)>,
    /// [`Options::by_table`].
    by_table: bool,
    /// Services forwarded by their table: id → (scheduler, `SF_*` flags).
    by_table_svc: HashMap<u32, (u32, u32)>,
    /// FULLNAT local address → its slot in `laddrs` (kept while rvs runs).
    laddr_ids: HashMap<IpAddr, u32>,
    /// Each FULLNAT service's local addresses as written to `svc_laddrs` (slots).
    svc_laddrs: HashMap<u32, Vec<u32>>,
}

/// Whether a BPF link of type XDP holds `prog` (the kernel's list of links).
fn program_has_xdp_link(prog: &XdpProgram) -> bool {
    let Ok(id) = prog.info().map(|i| i.id()) else {
        return false;
    };
    aya::programs::loaded_links().flatten().any(|l| {
        l.program_id() == id && l.link_type().ok() == Some(aya::programs::links::LinkType::Xdp)
    })
}

impl Xdp {
    /// Loads the program (and attaches it when `opts.iface` is set).
    pub fn load(opts: &Options) -> Result<Xdp, XdpError> {
        if OBJECT.is_empty() {
            return Err(XdpError::NotBuilt);
        }
        let mut ebpf = EbpfLoader::new()
            .map_max_entries("flows", opts.flows.max(1024))
            .load(OBJECT)?;
        load_clock(&mut ebpf)?;
        let name = if opts.bench { "rvs_lb_bench" } else { "rvs_lb" };
        let prog: &mut XdpProgram = ebpf
            .program_mut(name)
            .ok_or(XdpError::Missing("program rvs_lb"))?
            .try_into()?;
        prog.load()?;
        let (link, by_link) = match &opts.iface {
            Some(iface) => {
                let mode = if opts.native {
                    XdpMode::Driver
                } else {
                    XdpMode::Skb
                };
                let id = prog.attach(iface, mode)?;
                let by_link = program_has_xdp_link(prog);
                tracing::info!(
                    "XDP program attached to {iface} through {}",
                    if by_link {
                        "a BPF link"
                    } else {
                        "netlink (no hand-over across rvs upgrade)"
                    }
                );
                (Some(id), by_link)
            }
            None => (None, false),
        };
        let mut x = Xdp::with(ebpf, name, opts, link, by_link);
        x.cfg.hz = x.measure_hz()?;
        tracing::debug!("XDP clock: {} jiffies a second", x.cfg.hz);
        Ok(x)
    }

    /// A loaded program with nothing programmed yet.
    fn with(
        ebpf: Ebpf,
        prog: &'static str,
        opts: &Options,
        link: Option<XdpLinkId>,
        by_bpf_link: bool,
    ) -> Xdp {
        let mut cfg = Config {
            mh_k0: rvs_sched::sched::MH_KEY1.0,
            mh_k1: rvs_sched::sched::MH_KEY1.1,
            // Online CPU ids (possible ones may be many more, each with its share of
            // ports): one that comes online later shares another's, which the reply
            // entry's exclusive insert keeps apart.
            cpus: aya::util::online_cpus()
                .ok()
                .and_then(|c| c.into_iter().max())
                .and_then(|m| u16::try_from(m + 1).ok())
                .unwrap_or(1),
            ..Config::default()
        };
        if let Some(a) = opts.tun_src4 {
            cfg.tun_src4 = a.octets();
        }
        if let Some(a) = opts.tun_src6 {
            cfg.tun_src6 = a.octets();
        }
        if let Some(m) = opts.own_mac.filter(|m| *m != [0; 6]) {
            cfg.own_mac = m;
            cfg.flags |= maps::CF_OWN_MAC;
        }
        Xdp {
            ebpf,
            prog,
            svc_ids: HashMap::new(),
            free_svc: Vec::new(),
            next_svc: 0,
            real_ids: HashMap::new(),
            next_real: 0,
            retired: Vec::new(),
            reals_written: HashMap::new(),
            tables: HashMap::new(),
            applied: HashMap::new(),
            persist_s: HashMap::new(),
            cfg,
            max_idle: Duration::from_mins(15),
            iface: link.as_ref().and(opts.iface.clone()),
            link,
            by_bpf_link,
            flows_max: opts.flows,
            pinned: None,
            by_table: opts.by_table,
            by_table_svc: HashMap::new(),
            laddr_ids: HashMap::new(),
            svc_laddrs: HashMap::new(),
        }
    }

    fn map_mut(&mut self, name: &'static str) -> Result<&mut aya::maps::Map, XdpError> {
        self.ebpf.map_mut(name).ok_or(XdpError::Missing(name))
    }

    fn write_config(&mut self, want: &Desired) -> Result<(), XdpError> {
        let t = &want.timeouts;
        let hz = self.cfg.hz;
        let jiffies = |s: u32| u64::from(s) * hz;
        // Established, FIN_WAIT (a flow that saw FIN or RST), UDP.
        self.cfg.timeout_tcp = jiffies(t.tcp[1]);
        self.cfg.timeout_tcpfin = jiffies(t.tcp[4]);
        self.cfg.timeout_udp = jiffies(t.udp);
        self.max_idle = Duration::from_secs(u64::from(t.tcp[1].max(t.udp).max(t.tcp[4])));
        // Replies are looked up only when some real server is NAT or FULLNAT; port-0
        // services cost a second lookup only when one exists. A NAT or FULLNAT flag stays
        // set once seen: replies of flows that outlive their service still need their
        // rewrite.
        let nat = want
            .services
            .iter()
            .any(|s| s.dests.iter().any(|d| d.fwd == Fwd::Masq));
        let fnat = want
            .services
            .iter()
            .any(|s| s.dests.iter().any(|d| d.fwd == Fwd::FullNat));
        let port0 = want
            .services
            .iter()
            .any(|s| matches!(s.key, SvcKey::Addr { port: 0, .. }));
        self.cfg.flags = (self.cfg.flags & (maps::CF_NAT | maps::CF_FNAT | maps::CF_OWN_MAC))
            | if nat { maps::CF_NAT } else { 0 }
            | if fnat { maps::CF_FNAT } else { 0 }
            | if port0 { maps::CF_PORT0 } else { 0 };
        let cfg = self.cfg;
        let mut a: Array<_, Config> = Array::try_from(self.map_mut("cfg")?)?;
        a.set(0, cfg, 0)?;
        Ok(())
    }

    fn alloc_real(&mut self) -> Result<u32, XdpError> {
        let now = Instant::now();
        if let Some(pos) = self
            .retired
            .iter()
            .position(|(_, t)| now.duration_since(*t) > self.max_idle)
        {
            return Ok(self.retired.swap_remove(pos).0);
        }
        if self.next_real >= maps::MAX_REALS {
            return Err(XdpError::Full("real servers"));
        }
        self.next_real += 1;
        Ok(self.next_real - 1)
    }

    fn write_real(&mut self, slot: u32, r: Real) -> Result<bool, XdpError> {
        if self.reals_written.get(&slot) == Some(&r) {
            return Ok(false);
        }
        let mut a: Array<_, Real> = Array::try_from(self.map_mut("reals")?)?;
        a.set(slot, r, 0)?;
        self.reals_written.insert(slot, r);
        Ok(true)
    }

    /// Reconciles the maps with `want`; `macs` gives each real server's MAC (next hop).
    /// Services the program cannot run are reported and left out; the others apply.
    pub fn apply(
        &mut self,
        want: &Desired,
        macs: &HashMap<IpAddr, [u8; 6]>,
    ) -> Result<ApplyReport, Vec<XdpError>> {
        let mut errs = Vec::new();
        let mut rep = ApplyReport::default();
        if let Err(e) = self.write_config(want) {
            return Err(vec![e]);
        }
        let mut seen = HashSet::new();
        for s in &want.services {
            match self.apply_service(s, macs, &mut rep) {
                Ok(()) => {
                    seen.insert(s.key);
                }
                Err(e) => errs.push(e),
            }
        }
        let gone: Vec<SvcKey> = self
            .applied
            .keys()
            .filter(|k| !seen.contains(*k))
            .copied()
            .collect();
        for k in gone {
            if let Err(e) = self.remove_service(k) {
                errs.push(e);
            }
            rep.services_removed += 1;
        }
        if errs.is_empty() {
            Ok(rep)
        } else {
            Err(errs)
        }
    }

    fn remove_service(&mut self, k: SvcKey) -> Result<(), XdpError> {
        if let Some(vk) = self.applied.remove(&k) {
            let mut m: BpfHashMap<_, VipKey, Svc> = BpfHashMap::try_from(self.map_mut("vips")?)?;
            m.remove(&vk)?;
        }
        if let Some(id) = self.svc_ids.remove(&k) {
            let slots: Vec<((u32, IpAddr, u16), u32)> = self
                .real_ids
                .iter()
                .filter(|((s, _, _), _)| *s == id)
                .map(|(k, v)| (*k, *v))
                .collect();
            for (key, slot) in slots {
                self.retire(key, slot)?;
            }
            self.tables.remove(&id);
            self.by_table_svc.remove(&id);
            self.svc_laddrs.remove(&id);
            self.forget_changes(id)?;
            self.free_svc.push(id);
        }
        Ok(())
    }

    fn retire(&mut self, key: (u32, IpAddr, u16), slot: u32) -> Result<(), XdpError> {
        self.real_ids.remove(&key);
        let mut r = self.reals_written.get(&slot).copied().unwrap_or_default();
        r.flags &= !maps::RF_USABLE;
        self.write_real(slot, r)?;
        self.retired.push((slot, Instant::now()));
        Ok(())
    }

    fn apply_service(
        &mut self,
        s: &DesiredService,
        macs: &HashMap<IpAddr, [u8; 6]>,
        rep: &mut ApplyReport,
    ) -> Result<(), XdpError> {
        let service = s.key.to_string();
        let unsupported = |what: String| XdpError::Unsupported {
            service: service.clone(),
            what,
        };
        match s.key {
            SvcKey::Fwmark { .. } => {
                return Err(unsupported(
                    "fwmark services need the firewall mark, which XDP does not see".into(),
                ))
            }
            SvcKey::Addr {
                proto: Proto::Sctp, ..
            } => return Err(unsupported("SCTP is not forwarded".into())),
            SvcKey::Addr { .. } => {}
        }
        let sched = match s.algo {
            Algo::Rr | Algo::Wrr => maps::SCHED_SEQ,
            Algo::Sh => maps::SCHED_SH,
            Algo::Dh => maps::SCHED_DH,
            Algo::Mh => maps::SCHED_MH,
            other => {
                return Err(unsupported(format!(
                    "scheduler {} needs live connection counts, which the XDP program does \
                     not keep; use rr, wrr, sh, dh or mh",
                    other.name()
                )))
            }
        };
        if let Some(d) = s
            .dests
            .iter()
            .find(|d| d.fwd == Fwd::Tunnel && d.tun.kind != rvs_sched::Tun::IPIP)
        {
            return Err(unsupported(format!(
                "real server {}: GUE and GRE tunnels are not implemented in XDP (use ipip)",
                d.addr
            )));
        }
        let vip_v4 = matches!(s.key, SvcKey::Addr { addr, .. } if addr.is_ipv4());
        if let Some(d) = s
            .dests
            .iter()
            .find(|d| matches!(d.fwd, Fwd::Masq | Fwd::FullNat) && d.addr.is_ipv4() != vip_v4)
        {
            return Err(unsupported(format!(
                "real server {}: NAT and FULLNAT rewrite addresses within one family; the \
                 virtual server's is the other",
                d.addr
            )));
        }
        let laddrs: Vec<IpAddr> = if s.dests.iter().any(|d| d.fwd == Fwd::FullNat) {
            let mine: Vec<IpAddr> = s
                .local_addrs
                .iter()
                .filter(|a| a.is_ipv4() == vip_v4)
                .copied()
                .collect();
            if mine.is_empty() {
                return Err(unsupported(format!(
                    "FULLNAT needs local addresses of the virtual server's family \
                     (laddr_group_name: a local_address_group with {} addresses)",
                    if vip_v4 { "IPv4" } else { "IPv6" }
                )));
            }
            if mine.len() > maps::LADDRS_PER_SVC as usize {
                return Err(unsupported(format!(
                    "FULLNAT: {} local addresses; the XDP program takes at most {} per \
                     virtual server",
                    mine.len(),
                    maps::LADDRS_PER_SVC
                )));
            }
            mine
        } else {
            Vec::new()
        };
        // Every MAC first: a service is applied whole or not at all.
        for d in &s.dests {
            if !macs.contains_key(&d.addr) {
                return Err(XdpError::NoMac {
                    service,
                    real: d.addr,
                });
            }
        }
        let id = if let Some(id) = self.svc_ids.get(&s.key) {
            *id
        } else {
            let id = match self.free_svc.pop() {
                Some(i) => i,
                None if self.next_svc < maps::MAX_SVC => {
                    self.next_svc += 1;
                    self.next_svc - 1
                }
                None => return Err(XdpError::Full("virtual services")),
            };
            self.svc_ids.insert(s.key, id);
            rep.services_added += 1;
            id
        };
        // The kernel's list order: keepalived adds real servers in config order, each at
        // the head, so the newest is first.
        let order: Vec<&rvs_sched::desired::DesiredDest> = s.dests.iter().rev().collect();
        let mut slots = Vec::with_capacity(order.len());
        for d in &order {
            let key = (id, d.addr, d.port);
            let slot = if let Some(sl) = self.real_ids.get(&key) {
                *sl
            } else {
                let sl = self.alloc_real()?;
                self.real_ids.insert(key, sl);
                sl
            };
            let (a, family) = addr16(d.addr);
            let r = Real {
                addr: a,
                mac: macs.get(&d.addr).copied().unwrap_or_default(),
                port: d.port.to_be(),
                family,
                method: match d.fwd {
                    Fwd::Route | Fwd::Local => maps::M_DR,
                    Fwd::Tunnel => maps::M_TUN,
                    Fwd::Masq => maps::M_NAT,
                    Fwd::FullNat => maps::M_FNAT,
                },
                flags: if d.weight > 0 { maps::RF_USABLE } else { 0 },
                pad: 0,
            };
            if self.write_real(slot, r)? {
                rep.reals_written += 1;
            }
            slots.push(slot);
        }
        // Real servers that left this service: no new flows, existing ones finish.
        let stale: Vec<((u32, IpAddr, u16), u32)> = self
            .real_ids
            .iter()
            .filter(|((sv, a, p), _)| {
                *sv == id && !s.dests.iter().any(|d| d.addr == *a && d.port == *p)
            })
            .map(|(k, v)| (*k, *v))
            .collect();
        for (key, slot) in stale {
            self.retire(key, slot)?;
        }
        let table: Vec<u32> = if sched == maps::SCHED_SEQ {
            let weights: Vec<i32> = order
                .iter()
                .map(|d| match (s.algo, d.weight > 0) {
                    (_, false) => 0,
                    (Algo::Rr, true) => 1,
                    (_, true) => d.weight,
                })
                .collect();
            rvs_sched::sched::wrr_cycle(&weights)
                .into_iter()
                .take(maps::TABLE_MAX as usize)
                .map(|i| slots[i] + 1)
                .collect()
        } else {
            let mut dests = Vec::with_capacity(order.len());
            for d in &order {
                let mut x = rvs_sched::Dest::new(d.addr, d.port, d.weight, d.fwd);
                // mh keeps a real server's share while its weight is 0 (the kernel's
                // last_weight): here from the desired state alone, not from what this
                // director has seen, so every director of a cluster builds the same
                // table (docs/cluster.md).
                x.last_weight = if d.weight > 0 {
                    d.weight
                } else {
                    d.base_weight
                };
                dests.push(x);
            }
            let size = s
                .mh_size
                .unwrap_or(rvs_sched::sched::MH_DEFAULT_TABLE)
                .min(maps::TABLE_MAX as usize);
            rvs_sched::sched::lookup_table(s.algo, &dests, size)
                .unwrap_or_default()
                .into_iter()
                .map(|e| e.map_or(0, |i| slots[i as usize] + 1))
                .collect()
        };
        let by_table = self.by_table
            && sched != maps::SCHED_SEQ
            && s.persistence.is_none()
            && matches!(
                s.key,
                SvcKey::Addr {
                    proto: Proto::Tcp,
                    ..
                }
            )
            && s.dests
                .iter()
                .all(|d| matches!(d.fwd, Fwd::Route | Fwd::Local | Fwd::Tunnel));
        let old = self.tables.get(&id);
        if by_table
            && self.by_table_svc.contains_key(&id)
            && old.is_some_and(|o| o.len() == table.len())
        {
            // Slot by slot, each changed one marked: its earlier flows go on.
            if let Some(old) = old.filter(|o| **o != table).cloned() {
                rep.slots_changed += self.change_slots(id, &old, &table)?;
            }
        } else if old != Some(&table) {
            // Whole: a new service or table length. Forwarded by table, the slots
            // `changes` holds live entries for keep their mark (after an upgrade).
            if by_table && old.is_some_and(|o| o.len() != table.len()) {
                tracing::warn!(
                    "XDP: {} changes its table length ({} → {} slots): its established \
                     flows that were forwarded by the table alone may move to another real \
                     server",
                    service,
                    old.map_or(0, Vec::len),
                    table.len()
                );
            }
            let marked = if by_table {
                self.marked_slots(id)?
            } else {
                HashSet::new()
            };
            let mut inner: Array<MapData, u32> = Array::create(maps::TABLE_MAX, 0)?;
            for (i, v) in table.iter().enumerate() {
                let i = u32::try_from(i).unwrap_or(0);
                let mark = if marked.contains(&i) {
                    maps::SLOT_CHANGED
                } else {
                    0
                };
                if *v | mark != 0 {
                    inner.set(i, *v | mark, 0)?;
                }
            }
            let mut outer: ArrayOfMaps<_, Array<MapData, u32>> =
                ArrayOfMaps::try_from(self.map_mut("tables")?)?;
            outer.set(id, &inner, 0)?;
            rep.tables_swapped += 1;
            self.tables.insert(id, table.clone());
        }
        let vk = vip_key(s.key).ok_or_else(|| unsupported("not forwarded".into()))?;
        let mut flags = 0;
        if s.flags.port {
            flags |= maps::SF_PORT;
        }
        if s.flags.fallback {
            flags |= maps::SF_FALLBACK;
        }
        let (persist_s, persist_prefix) = match s.persistence {
            Some(p) => {
                flags |= maps::SF_PERSIST;
                (p.timeout_s, u32::from(p.prefix))
            }
            None => (0, 0),
        };
        if by_table {
            flags |= maps::SF_BY_TABLE;
            if self.by_table_svc.insert(id, (sched, flags)).is_none() {
                // Forwarded by table from now on (a new option, persistence or NAT
                // gone, another scheduler): flows recorded until now that go elsewhere
                // than their slot are marked before the program sees the flag.
                self.mark_recorded(id)?;
            }
        } else {
            self.by_table_svc.remove(&id);
        }
        self.persist_s.insert(id, persist_s);
        self.write_laddrs(id, &laddrs)?;
        let svc = Svc {
            id,
            sched,
            table_len: u32::try_from(table.len()).unwrap_or(0),
            flags,
            persist_s,
            persist_prefix,
            laddrs: u32::try_from(laddrs.len()).unwrap_or(0),
            pad: 0,
        };
        let mut m: BpfHashMap<_, VipKey, Svc> = BpfHashMap::try_from(self.map_mut("vips")?)?;
        m.insert(vk, svc, 0)?;
        self.applied.insert(s.key, vk);
        Ok(())
    }

    /// Writes a FULLNAT service's local addresses (`svc_laddrs`), each address given a
    /// slot of `laddrs` the first time it is seen. A slot is never reused for another
    /// address while rvs runs: a connection's flow names its local address by slot.
    fn write_laddrs(&mut self, id: u32, addrs: &[IpAddr]) -> Result<(), XdpError> {
        let mut slots = Vec::with_capacity(addrs.len());
        for a in addrs {
            slots.push(self.laddr_slot(*a)?);
        }
        if self
            .svc_laddrs
            .get(&id)
            .map_or(slots.is_empty(), |w| *w == slots)
        {
            return Ok(());
        }
        // The count goes in the service's entry, written after: a packet in between
        // reads the old count over the new list (positions past it keep earlier
        // addresses of the service: never cleared).
        let mut m: Array<_, u32> = Array::try_from(self.map_mut("svc_laddrs")?)?;
        for (i, sl) in slots.iter().enumerate() {
            let i = u32::try_from(i).unwrap_or(0);
            m.set(id * maps::LADDRS_PER_SVC + i, sl + 1, 0)?;
        }
        self.svc_laddrs.insert(id, slots);
        Ok(())
    }

    /// The slot of FULLNAT local address `a` in `laddrs`, written there the first time
    /// (an address of this director's groups, or of another director's connections
    /// adopted by sync).
    fn laddr_slot(&mut self, a: IpAddr) -> Result<u32, XdpError> {
        if let Some(sl) = self.laddr_ids.get(&a) {
            return Ok(*sl);
        }
        let sl = u32::try_from(self.laddr_ids.len()).unwrap_or(u32::MAX);
        if sl >= maps::MAX_LADDRS {
            return Err(XdpError::Full("FULLNAT local addresses"));
        }
        let mut m: Array<_, maps::Laddr> = Array::try_from(self.map_mut("laddrs")?)?;
        m.set(sl, maps::Laddr { addr: addr16(a).0 }, 0)?;
        self.laddr_ids.insert(a, sl);
        Ok(sl)
    }

    /// Per-service and per-real-server counters, summed over CPUs.
    /// Real server (address, port) by slot.
    fn real_addrs(&self) -> HashMap<u32, (IpAddr, u16)> {
        self.real_ids
            .iter()
            .map(|((_, a, p), slot)| (*slot, (*a, *p)))
            .collect()
    }

    /// The live flows (not yet expired by their idle timeout), at most `limit`. Walks
    /// the LRU map from userspace: two system calls per flow, so callers pace it.
    pub fn flows(&self, limit: usize) -> Result<Vec<FlowEntry>, XdpError> {
        let map: aya::maps::HashMap<&MapData, maps::FlowKey, maps::Flow> =
            aya::maps::HashMap::try_from(
                self.ebpf.map("flows").ok_or(XdpError::Missing("flows"))?,
            )?;
        let now = self.jiffies()?;
        let hz = self.cfg.hz.max(1);
        let svc_of: HashMap<u32, SvcKey> = self.svc_ids.iter().map(|(k, v)| (*v, *k)).collect();
        let real_of = self.real_addrs();
        let laddr_of: HashMap<u32, IpAddr> =
            self.laddr_ids.iter().map(|(a, s)| (*s + 1, *a)).collect();
        let mut out = Vec::new();
        for item in &map {
            // An entry evicted between the key walk and the lookup is simply skipped.
            let Ok((k, f)) = item else { continue };
            let timeout = self.flow_timeout(k.proto, f.fin != 0);
            let idle = now.saturating_sub(f.last);
            if idle >= timeout {
                continue;
            }
            let (Some(svc), Some(real)) = (svc_of.get(&f.svc), real_of.get(&f.real)) else {
                continue;
            };
            out.push(FlowEntry {
                proto: k.proto,
                client: sockaddr(k.src, k.family, k.sport),
                vip: sockaddr(k.dst, k.family, k.dport),
                svc: *svc,
                real: *real,
                fin: f.fin != 0,
                expires_s: u32::try_from((timeout - idle) / hz).unwrap_or(u32::MAX),
                here: f.here != 0,
                local: laddr_of
                    .get(&u32::from(f.laddr))
                    .map(|a| std::net::SocketAddr::new(*a, u16::from_be(f.lport))),
            });
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }

    /// Flows and persistence templates another director carried (the connection sync
    /// daemon's), taken over: each is written to the program's tables with the real
    /// server it had there and the time it had left, so the packets that follow go on
    /// to the same real server. Entries of a service or real server this director does
    /// not have are skipped, and so are flows this director forwards itself (two
    /// directors syncing each other: its own entry is the fresher).
    ///
    /// `client_macs`: the next hop's MAC towards each FULLNAT client, where known (the
    /// sync record has none); a FULLNAT connection without one learns it from the
    /// client's next packet, its replies dropped until then.
    pub fn adopt(
        &mut self,
        flows: &[FlowEntry],
        templates: &[TemplateEntry],
        client_macs: &HashMap<IpAddr, [u8; 6]>,
    ) -> Result<Adopted, XdpError> {
        let now = self.jiffies()?;
        let hz = self.cfg.hz;
        let since = |timeout: u64, left_s: u32| {
            let left = u64::from(left_s) * hz;
            now.saturating_sub(timeout.saturating_sub(left))
        };
        // FULLNAT local addresses of other directors' connections get slots first.
        for l in flows.iter().filter_map(|f| f.local) {
            self.laddr_slot(l.ip())?;
        }
        let mut flow_writes = Vec::new();
        let mut nat_writes = Vec::new();
        let mut marks = Vec::new();
        let mut tmpl_writes = Vec::new();
        let mut skipped = 0;
        let mut here = 0;
        let live: BpfHashMap<&MapData, maps::FlowKey, maps::Flow> =
            BpfHashMap::try_from(self.ebpf.map("flows").ok_or(XdpError::Missing("flows"))?)?;
        for f in flows {
            let slots = self.svc_ids.get(&f.svc).and_then(|id| {
                self.real_ids
                    .get(&(*id, f.real.0, f.real.1))
                    .map(|r| (*id, *r))
            });
            let Some((svc, real)) = slots else {
                skipped += 1;
                continue;
            };
            let (src, family) = addr16(f.client.ip());
            let (dst, _) = addr16(f.vip.ip());
            let timeout = self.flow_timeout(f.proto, f.fin);
            let k = maps::FlowKey {
                src,
                dst,
                sport: f.client.port().to_be(),
                dport: f.vip.port().to_be(),
                proto: f.proto,
                family,
                pad: 0,
            };
            if live
                .get(&k, 0)
                .is_ok_and(|cur| cur.here != 0 && now.saturating_sub(cur.last) < timeout)
            {
                here += 1;
                continue;
            }
            let mut v = maps::Flow {
                last: since(timeout, f.expires_s),
                real,
                svc,
                fin: u8::from(f.fin),
                ..maps::Flow::default()
            };
            // FULLNAT: the same local end, so the real server sees the same connection,
            // and its reply entry (the client's MAC comes with its next packet).
            if let Some(local) = f.local.filter(|l| l.is_ipv4() == f.client.is_ipv4()) {
                let slot = self.laddr_ids.get(&local.ip()).copied().unwrap_or(u32::MAX);
                v.laddr = u16::try_from(slot.saturating_add(1)).unwrap_or(0);
                v.lport = local.port().to_be();
                v.toa = 1;
                let client_mac = client_macs.get(&f.client.ip()).copied();
                v.mac_wait = u8::from(client_mac.is_none());
                let rport = if f.real.1 == 0 {
                    f.vip.port()
                } else {
                    f.real.1
                };
                let nk = maps::NatKey {
                    real: addr16(f.real.0).0,
                    client: addr16(local.ip()).0,
                    rport: rport.to_be(),
                    cport: local.port().to_be(),
                    proto: f.proto,
                    family,
                    pad: 0,
                };
                let nv = maps::NatVal {
                    vip: dst,
                    client: src,
                    vport: f.vip.port().to_be(),
                    cport: f.client.port().to_be(),
                    client_mac: client_mac.unwrap_or_default(),
                    fnat: 1,
                    svc,
                    real,
                    ..maps::NatVal::default()
                };
                nat_writes.push((nk, nv));
            }
            flow_writes.push((k, v));
            marks.push((svc, (f.client, f.vip.ip()), real, v.last + timeout));
        }
        for t in templates {
            let slots = self.svc_ids.get(&t.svc).and_then(|id| {
                let real = self.real_ids.get(&(*id, t.real.0, t.real.1))?;
                Some((*id, *real, *self.persist_s.get(id)?))
            });
            let Some((svc, real, persist_s)) = slots.filter(|s| s.2 > 0) else {
                skipped += 1;
                continue;
            };
            let k = maps::TmplKey {
                client: addr16(t.client).0,
                svc,
            };
            let v = maps::Tmpl {
                last: since(u64::from(persist_s) * hz, t.expires_s),
                real,
                pad: 0,
            };
            tmpl_writes.push((k, v));
        }
        // Slots first: a flow's packet in between is looked up, not sent by the table.
        for (svc, ends, real, until) in marks {
            self.mark_adopted(svc, ends, real, until)?;
        }
        {
            let mut m: BpfHashMap<_, maps::FlowKey, maps::Flow> =
                BpfHashMap::try_from(self.map_mut("flows")?)?;
            for (k, v) in &flow_writes {
                m.insert(*k, *v, 0)?;
            }
        }
        {
            let mut m: BpfHashMap<_, maps::NatKey, maps::NatVal> =
                BpfHashMap::try_from(self.map_mut("nat_rev")?)?;
            for (k, v) in &nat_writes {
                m.insert(*k, *v, 0)?;
            }
        }
        {
            let mut m: BpfHashMap<_, maps::TmplKey, maps::Tmpl> =
                BpfHashMap::try_from(self.map_mut("templates")?)?;
            for (k, v) in &tmpl_writes {
                m.insert(*k, *v, 0)?;
            }
        }
        Ok(Adopted {
            taken: flow_writes.len() + tmpl_writes.len(),
            not_ours: skipped,
            forwarded_here: here,
        })
    }

    /// The live persistence templates (used within their service's persistence
    /// timeout), at most `limit`; paced by the caller like [`Xdp::flows`].
    pub fn templates(&self, limit: usize) -> Result<Vec<TemplateEntry>, XdpError> {
        let map: aya::maps::HashMap<&MapData, maps::TmplKey, maps::Tmpl> =
            aya::maps::HashMap::try_from(
                self.ebpf
                    .map("templates")
                    .ok_or(XdpError::Missing("templates"))?,
            )?;
        let now = self.jiffies()?;
        let hz = self.cfg.hz.max(1);
        let real_of = self.real_addrs();
        // Service id → (service, persistence timeout), once per walk.
        let svc_of: HashMap<u32, (SvcKey, u32)> = self
            .svc_ids
            .iter()
            .filter_map(|(key, id)| self.persist_s.get(id).map(|p| (*id, (*key, *p))))
            .collect();
        let mut out = Vec::new();
        for item in &map {
            let Ok((k, t)) = item else { continue };
            let Some(&(svc, timeout_s)) = svc_of.get(&k.svc) else {
                continue;
            };
            let timeout = u64::from(timeout_s) * hz;
            let idle = now.saturating_sub(t.last);
            if idle >= timeout {
                continue;
            }
            let Some(real) = real_of.get(&t.real) else {
                continue;
            };
            let v4 = match svc {
                SvcKey::Addr { addr, .. } => addr.is_ipv4(),
                SvcKey::Fwmark { v6, .. } => !v6,
            };
            out.push(TemplateEntry {
                client: sockaddr(k.client, if v4 { 4 } else { 6 }, 0).ip(),
                svc,
                real: *real,
                expires_s: u32::try_from((timeout - idle) / hz).unwrap_or(u32::MAX),
            });
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }

    /// A flow's idle timeout (jiffies), as the program applies it: UDP's, TCP's, or
    /// `FIN_WAIT`'s once a FIN or RST was seen.
    fn flow_timeout(&self, proto: u8, fin: bool) -> u64 {
        match (proto, fin) {
            (17, _) => self.cfg.timeout_udp,
            (_, false) => self.cfg.timeout_tcp,
            _ => self.cfg.timeout_tcpfin,
        }
    }

    /// The program's clock now (`rvs_clock`, one `BPF_PROG_RUN`): jiffies with
    /// `CLOCK_MONOTONIC` read at the same moment.
    fn clock(&self) -> Result<maps::Clock, XdpError> {
        let prog: &XdpProgram = self
            .ebpf
            .program("rvs_clock")
            .ok_or(XdpError::Missing("program rvs_clock"))?
            .try_into()?;
        // The run needs a frame of at least an Ethernet header; the program ignores it.
        let frame = [0u8; 64];
        prog.test_run(TestRunOptions {
            data_in: Some(&frame),
            ..TestRunOptions::new()
        })?;
        let m: Array<&MapData, maps::Clock> =
            Array::try_from(self.ebpf.map("clock").ok_or(XdpError::Missing("clock"))?)?;
        Ok(m.get(&0, 0)?)
    }

    /// Jiffies now: the unit of the flows' and templates' last-seen times.
    fn jiffies(&self) -> Result<u64, XdpError> {
        Ok(self.clock()?.jiffies)
    }

    /// The kernel's HZ (userspace is not told it: `CLK_TCK` is `USER_HZ`): jiffies
    /// counted against `CLOCK_MONOTONIC` over 200 ms, each reading of both taken in one
    /// run of `rvs_clock` (so a descheduled rvs does not skew it: only the ±1 tick of
    /// where each reading falls between ticks, and a late tick), then [`snap_hz`]. Once
    /// at load.
    fn measure_hz(&self) -> Result<u64, XdpError> {
        let a = self.clock()?;
        std::thread::sleep(Duration::from_millis(200));
        let b = self.clock()?;
        let (ticks, ns) = (
            b.jiffies.saturating_sub(a.jiffies),
            b.ns.saturating_sub(a.ns),
        );
        snap_hz(ticks, ns)
            .ok_or_else(|| XdpError::Clock(format!("{ticks} jiffies in {ns} ns: no HZ fits")))
    }

    pub fn counters(&self) -> Result<AllCounters, XdpError> {
        let sum = |m: &PerCpuArray<&MapData, Counters>, i: u32| -> Result<Counters, XdpError> {
            let mut t = Counters::default();
            for c in m.get(&i, 0)?.iter() {
                t.conns += c.conns;
                t.pkts_in += c.pkts_in;
                t.bytes_in += c.bytes_in;
                t.pkts_out += c.pkts_out;
                t.bytes_out += c.bytes_out;
            }
            Ok(t)
        };
        let svc_map: PerCpuArray<&MapData, Counters> = PerCpuArray::try_from(
            self.ebpf
                .map("svc_stats")
                .ok_or(XdpError::Missing("svc_stats"))?,
        )?;
        let real_map: PerCpuArray<&MapData, Counters> = PerCpuArray::try_from(
            self.ebpf
                .map("real_stats")
                .ok_or(XdpError::Missing("real_stats"))?,
        )?;
        let mut svcs = HashMap::new();
        for (k, id) in &self.svc_ids {
            svcs.insert(*k, sum(&svc_map, *id)?);
        }
        let mut reals = HashMap::new();
        for ((sid, a, p), slot) in &self.real_ids {
            if let Some((k, _)) = self.svc_ids.iter().find(|(_, v)| **v == *sid) {
                reals.insert((*k, *a, *p), sum(&real_map, *slot)?);
            }
        }
        Ok((svcs, reals))
    }

    fn test_run(&self, frame: &[u8], repeat: u32) -> Result<(u32, Vec<u8>, Duration), XdpError> {
        let prog: &XdpProgram = self
            .ebpf
            .program(self.prog)
            .ok_or(XdpError::Missing("program rvs_lb"))?
            .try_into()?;
        let mut out = vec![0u8; frame.len() + 128];
        let r = prog.test_run(TestRunOptions {
            data_in: Some(frame),
            data_out: Some(&mut out),
            repeat,
            ..TestRunOptions::new()
        })?;
        out.truncate(r.data_size_out as usize);
        Ok((r.return_value, out, r.duration))
    }

    /// Runs the program once on `frame` (`BPF_PROG_RUN`): its verdict and the frame as it
    /// left.
    pub fn run(&self, frame: &[u8]) -> Result<(u32, Vec<u8>), XdpError> {
        self.test_run(frame, 1).map(|(v, out, _)| (v, out))
    }

    /// Benchmarks only (with `Options::bench`): every run first moves the frame to the
    /// next of flows `base..base + n` (flow k: client 198.19.0.0/16 + k / 32, source port
    /// 10000 + k % 32; n = 0: no rotation), starting from `base`.
    #[doc(hidden)]
    pub fn set_rotation(&mut self, base: u32, n: u32) -> Result<(), XdpError> {
        let mut m: Array<&mut MapData, [u32; 3]> = Array::try_from(
            self.ebpf
                .map_mut("bench_rotation")
                .ok_or(XdpError::Missing("map bench_rotation"))?,
        )?;
        m.set(0, [n, base, 0], 0)?;
        Ok(())
    }

    /// `BPF_PROG_RUN` with `repeat` iterations: the kernel's average time per run.
    pub fn time(&self, frame: &[u8], repeat: u32) -> Result<Duration, XdpError> {
        self.test_run(frame, repeat).map(|(_, _, d)| d)
    }
}

/// The program's key of a service (`None`: one it cannot forward).
fn vip_key(k: SvcKey) -> Option<VipKey> {
    let SvcKey::Addr { proto, addr, port } = k else {
        return None;
    };
    if proto == Proto::Sctp {
        return None;
    }
    let proto = proto.number();
    let (a, family) = addr16(addr);
    Some(VipKey {
        addr: a,
        port: port.to_be(),
        proto,
        family,
    })
}

/// XDP verdicts.
pub const XDP_DROP: u32 = 1;
pub const XDP_PASS: u32 = 2;
pub const XDP_TX: u32 = 3;

/// Loads `rvs_clock`, the program userspace reads the program's clock with.
fn load_clock(ebpf: &mut Ebpf) -> Result<(), XdpError> {
    let p: &mut XdpProgram = ebpf
        .program_mut("rvs_clock")
        .ok_or(XdpError::Missing("program rvs_clock"))?
        .try_into()?;
    p.load()?;
    Ok(())
}

/// The kernel's HZ from `ticks` jiffies counted in `ns`: the `CONFIG_HZ` choice (100,
/// 250, 300, 1000) nearest the rate, if within 10 % of it (the choices are at least 20 %
/// apart; over 200 ms the count is off by a tick or two at most), else none.
fn snap_hz(ticks: u64, ns: u64) -> Option<u64> {
    if ns == 0 {
        return None;
    }
    let rate = u128::from(ticks) * 1_000_000_000 / u128::from(ns);
    let off = |hz: u64| rate.abs_diff(u128::from(hz));
    [100u64, 250, 300, 1000]
        .into_iter()
        .min_by_key(|hz| off(*hz))
        .filter(|hz| off(*hz) * 10 <= u128::from(*hz))
}

#[cfg(test)]
mod tests {
    use super::snap_hz;

    #[test]
    fn hz_is_the_config_choice_nearest_the_measured_rate() {
        assert_eq!(snap_hz(50, 200_000_000), Some(250));
        // A tick more or less, a reading late: still 250 (the case a busy machine hit
        // with a 40 ms edge-timed measurement: 237 Hz).
        assert_eq!(snap_hz(49, 201_500_000), Some(250));
        assert_eq!(snap_hz(51, 200_000_000), Some(250));
        assert_eq!(snap_hz(20, 200_000_000), Some(100));
        assert_eq!(snap_hz(19, 200_300_000), Some(100));
        assert_eq!(snap_hz(60, 200_000_000), Some(300));
        assert_eq!(snap_hz(201, 200_100_000), Some(1000));
        // 170 Hz and 600 Hz are far from any choice: refused rather than guessed.
        assert_eq!(snap_hz(34, 200_000_000), None);
        assert_eq!(snap_hz(120, 200_000_000), None);
        assert_eq!(snap_hz(1, 0), None);
    }
}
