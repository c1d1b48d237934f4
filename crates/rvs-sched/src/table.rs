//! The connection table of a director: connections and persistence templates keyed as
//! IPVS keys them, IPVS's TCP state machine with per-state timeouts, active/inactive
//! accounting, and expiry by a timer wheel driven by `now` (no per-entry timers).
//!
//! Sans-IO: [`Ipvs::packet`] takes the time and a packet summary and returns a verdict;
//! [`Ipvs::advance`] expires what is due. Nothing here reads a clock.

use crate::service::{DestId, PktInfo, Proto, Service, SvcKey};
use rustc_hash::FxHashMap as HashMap;
use std::net::IpAddr;

/// IPVS TCP states, in the kernel's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TcpState {
    None = 0,
    Established,
    SynSent,
    SynRecv,
    FinWait,
    TimeWait,
    Close,
    CloseWait,
    LastAck,
    Listen,
    SynAck,
}

impl TcpState {
    pub const ALL: [TcpState; 11] = [
        TcpState::None,
        TcpState::Established,
        TcpState::SynSent,
        TcpState::SynRecv,
        TcpState::FinWait,
        TcpState::TimeWait,
        TcpState::Close,
        TcpState::CloseWait,
        TcpState::LastAck,
        TcpState::Listen,
        TcpState::SynAck,
    ];

    /// The name `ipvsadm -Lc` prints.
    pub fn name(self) -> &'static str {
        match self {
            TcpState::None => "NONE",
            TcpState::Established => "ESTABLISHED",
            TcpState::SynSent => "SYN_SENT",
            TcpState::SynRecv => "SYN_RECV",
            TcpState::FinWait => "FIN_WAIT",
            TcpState::TimeWait => "TIME_WAIT",
            TcpState::Close => "CLOSE",
            TcpState::CloseWait => "CLOSE_WAIT",
            TcpState::LastAck => "LAST_ACK",
            TcpState::Listen => "LISTEN",
            TcpState::SynAck => "SYNACK",
        }
    }

    /// States in which a connection counts as active.
    pub fn is_active(self) -> bool {
        matches!(
            self,
            TcpState::Established | TcpState::SynSent | TcpState::SynRecv | TcpState::SynAck
        )
    }
}

use TcpState::{
    Close as CL, CloseWait as CW, Established as ES, FinWait as FW, LastAck as LA, Listen as LI,
    SynRecv as SR, SynSent as SS, TimeWait as TW,
};

/// `tcp_states[]` of `ip_vs_proto_tcp.c`: [direction][event][current state] → next state.
/// Directions: INPUT (client → server), OUTPUT (server → client, seen in NAT only),
/// INPUT-ONLY (DR/TUN, where replies bypass the director). Events: syn, fin, ack, rst.
#[rustfmt::skip]
const TCP_STATES: [[[TcpState; 11]; 4]; 3] = [
    [
        /*syn*/ [SR, ES, ES, SR, SR, SR, SR, SR, SR, SR, SR],
        /*fin*/ [CL, CW, SS, TW, TW, TW, CL, CW, LA, LI, TW],
        /*ack*/ [CL, ES, SS, ES, FW, TW, CL, CW, CL, LI, ES],
        /*rst*/ [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, SR],
    ],
    [
        /*syn*/ [SS, ES, SS, SR, SS, SS, SS, SS, SS, LI, SR],
        /*fin*/ [TW, FW, SS, TW, FW, TW, CL, TW, LA, LI, TW],
        /*ack*/ [ES, ES, SS, ES, FW, TW, CL, CW, LA, ES, ES],
        /*rst*/ [CL, CL, SS, CL, CL, TW, CL, CL, CL, CL, CL],
    ],
    [
        /*syn*/ [SR, ES, ES, SR, SR, SR, SR, SR, SR, SR, SR],
        /*fin*/ [CL, FW, SS, TW, FW, TW, CL, CW, LA, LI, TW],
        /*ack*/ [CL, ES, SS, ES, FW, TW, CL, CW, CL, LI, ES],
        /*rst*/ [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, CL],
    ],
];

/// TCP flags of a packet, as far as IPVS looks at them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TcpFlags {
    pub syn: bool,
    pub fin: bool,
    pub ack: bool,
    pub rst: bool,
}

impl TcpFlags {
    #[expect(
        clippy::fn_params_excessive_bools,
        reason = "the four TCP flag bits, in header order"
    )]
    const fn new(syn: bool, fin: bool, ack: bool, rst: bool) -> TcpFlags {
        TcpFlags { syn, fin, ack, rst }
    }
    pub const SYN: TcpFlags = TcpFlags::new(true, false, false, false);
    pub const ACK: TcpFlags = TcpFlags::new(false, false, true, false);
    pub const SYN_ACK: TcpFlags = TcpFlags::new(true, false, true, false);
    pub const FIN_ACK: TcpFlags = TcpFlags::new(false, true, true, false);
    pub const RST: TcpFlags = TcpFlags::new(false, false, false, true);

    /// `tcp_state_idx`: rst, then syn, then fin, then ack.
    fn event(self) -> Option<usize> {
        if self.rst {
            Some(3)
        } else if self.syn {
            Some(0)
        } else if self.fin {
            Some(1)
        } else if self.ack {
            Some(2)
        } else {
            None
        }
    }
}

/// Per-state timeouts in seconds (`ipvsadm --set tcp tcpfin udp` changes three of them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub tcp: [u32; 11],
    pub udp: u32,
    pub sctp: u32,
}

impl Default for Timeouts {
    fn default() -> Self {
        // NONE, ES, SS, SR, FW, TW, CL, CW, LA, LI, SA (ip_vs_proto_tcp.c)
        Timeouts {
            tcp: [2, 900, 120, 60, 120, 120, 10, 60, 30, 120, 120],
            udp: 300,
            sctp: 900,
        }
    }
}

impl Timeouts {
    /// `ipvsadm --set tcp tcpfin udp`: 0 leaves a value unchanged.
    pub fn set(&mut self, tcp: u32, tcpfin: u32, udp: u32) {
        if tcp != 0 {
            self.tcp[TcpState::Established as usize] = tcp;
        }
        if tcpfin != 0 {
            self.tcp[TcpState::FinWait as usize] = tcpfin;
        }
        if udp != 0 {
            self.udp = udp;
        }
    }

    /// The three values `ipvsadm -L --timeout` shows.
    pub fn shown(&self) -> (u32, u32, u32) {
        (
            self.tcp[TcpState::Established as usize],
            self.tcp[TcpState::FinWait as usize],
            self.udp,
        )
    }
}

/// Kernel sysctls that change table behaviour (all default as in the kernel).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Params {
    /// `expire_nodest_conn` (0): a packet for a connection whose destination was deleted
    /// expires the connection (and is dropped) instead of still going to the old server.
    pub expire_nodest_conn: bool,
    /// `expire_quiescent_template` (0): a template whose destination has weight 0 is invalid.
    pub expire_quiescent_template: bool,
    /// `conn_reuse_mode` (1): a SYN that hits a `TIME_WAIT` connection schedules anew.
    pub conn_reuse: bool,
    /// `sloppy_tcp` (0): create connections on any TCP packet, not only SYN.
    pub sloppy_tcp: bool,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            expire_nodest_conn: false,
            expire_quiescent_template: false,
            conn_reuse: true,
            sloppy_tcp: false,
        }
    }
}

/// Which way a packet goes through the director.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    /// Client → virtual service.
    In,
    /// Real server → client (NAT replies).
    Out,
}

/// What [`Ipvs::apply`] changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ApplyReport {
    pub services_added: usize,
    pub services_removed: usize,
    pub dests_added: usize,
    pub dests_removed: usize,
    pub dests_changed: usize,
}

/// A packet, as the table needs it.
#[derive(Debug, Clone, Copy)]
pub struct Packet {
    pub proto: Proto,
    pub src: IpAddr,
    pub sport: u16,
    pub dst: IpAddr,
    pub dport: u16,
    pub fwmark: u32,
    pub tcp: TcpFlags,
    pub dir: Dir,
}

impl Packet {
    /// What a scheduler may look at.
    pub fn info(&self) -> PktInfo {
        PktInfo {
            proto: self.proto,
            src: self.src,
            sport: self.sport,
            dst: self.dst,
            dport: self.dport,
        }
    }
}

/// A connection: (slot, generation), stale once the connection is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnRef {
    slot: u32,
    gen: u32,
}

/// What to do with a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Forward to `dest` of service `svc`; `new` when this packet created the connection.
    Forward {
        svc: usize,
        dest: DestId,
        conn: Option<ConnRef>,
        new: bool,
    },
    /// Not for a virtual service: the local stack handles it.
    NotService,
    /// A virtual service, but no destination is available (the kernel drops or rejects).
    NoDest { svc: usize },
    /// A TCP packet that does not open a connection and matches none: dropped.
    NoConn { svc: usize },
    /// The connection's destination was deleted and `expire_nodest_conn` is set: dropped.
    DestGone { svc: usize },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct ConnKey {
    proto: Proto,
    caddr: IpAddr,
    cport: u16,
    vaddr: IpAddr,
    vport: u16,
}

/// Template key: <service, client address under the netmask, port or 0>. The service
/// index stands for the protocol and virtual address (or fwmark) of the kernel's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct TplKey {
    svc: u32,
    caddr: IpAddr,
    vport: u16,
}

#[derive(Debug, Clone, Copy)]
enum Key {
    Conn(ConnKey),
    Tpl(TplKey),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Tcp(TcpState),
    Udp,
    Sctp,
    Template,
}

impl State {
    /// The state column of `ipvsadm -Lc`.
    fn name(self) -> &'static str {
        match self {
            State::Tcp(t) => t.name(),
            State::Udp => "UDP",
            State::Sctp => "ESTABLISHED",
            State::Template => "NONE",
        }
    }
}

/// One entry. Fields are kept small: millions of these live in the table.
#[derive(Debug, Clone)]
struct Slot {
    key: Key,
    svc: u32,
    dest: DestId,
    state: State,
    active: bool,
    no_output: bool,
    /// Still findable (an invalidated template is not, but lives on while it controls).
    hashed: bool,
    gen: u32,
    live: bool,
    expires: u64,
    timeout_ms: u32,
    control: Option<u32>,
    n_control: u32,
}

/// A connection as listed by `ipvsadm -Lc`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnInfo {
    pub proto: Proto,
    pub template: bool,
    pub state: &'static str,
    pub expires_ms: u64,
    pub caddr: IpAddr,
    pub cport: u16,
    pub vaddr: IpAddr,
    pub vport: u16,
    pub daddr: IpAddr,
    pub dport: u16,
    pub svc: usize,
}

const TICK_MS: u64 = 100;
const WHEEL: usize = 4096;

/// Services plus connection table: everything a data plane asks "where does this go?".
#[derive(Debug)]
pub struct Ipvs {
    pub services: Vec<Service>,
    pub params: Params,
    pub timeouts: Timeouts,
    conns: HashMap<ConnKey, u32>,
    /// NAT replies: (real server addr, port, client addr, port, proto) → connection.
    out: HashMap<ConnKey, u32>,
    tpls: HashMap<TplKey, u32>,
    slots: Vec<Slot>,
    free: Vec<u32>,
    wheel: Vec<Vec<(u32, u32)>>,
    tick: u64,
    rng: u64,
}

impl Default for Ipvs {
    fn default() -> Self {
        Self::new()
    }
}

impl Ipvs {
    pub fn new() -> Ipvs {
        Ipvs {
            services: Vec::new(),
            params: Params::default(),
            timeouts: Timeouts::default(),
            conns: HashMap::default(),
            out: HashMap::default(),
            tpls: HashMap::default(),
            slots: Vec::new(),
            free: Vec::new(),
            wheel: vec![Vec::new(); WHEEL],
            tick: 0,
            rng: 0x2545_f491_4f6c_dd1d,
        }
    }

    /// Seeds `twos`'s random numbers (deterministic simulations).
    pub fn seed(&mut self, seed: u64) {
        self.rng = seed | 1;
    }

    /// Live connections (not templates).
    pub fn conn_count(&self) -> usize {
        self.conns.len()
    }

    pub fn template_count(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| s.live && s.state == State::Template)
            .count()
    }

    /// Reconciles the tables with a desired state by difference: unchanged services and
    /// destinations are left alone (connections and counters intact), changed ones are
    /// edited in place, new ones added, and removed ones stop taking new connections
    /// while their existing connections drain. Never flushes.
    pub fn apply(
        &mut self,
        want: &crate::desired::Desired,
        compat: crate::service::Compat,
    ) -> ApplyReport {
        let mut rep = ApplyReport::default();
        self.timeouts = want.timeouts;
        for ws in &want.services {
            let idx = self
                .services
                .iter()
                .position(|s| s.key == ws.key && !s.removed);
            let idx = idx.unwrap_or_else(|| {
                self.services
                    .push(Service::new(ws.key, ws.algo, ws.flags, compat));
                rep.services_added += 1;
                self.services.len() - 1
            });
            let s = &mut self.services[idx];
            s.set_algo(ws.algo);
            s.flags = ws.flags;
            s.persistence = ws.persistence;
            s.set_mh_table_size(ws.mh_size.unwrap_or(crate::sched::MH_DEFAULT_TABLE));
            // Destinations no longer wanted: deleted (their connections drain).
            let wanted: std::collections::HashSet<(IpAddr, u16)> =
                ws.dests.iter().map(|w| (w.addr, w.port)).collect();
            let gone: Vec<DestId> = s
                .dests()
                .filter(|(_, d)| !wanted.contains(&(d.addr, d.port)))
                .map(|(id, _)| id)
                .collect();
            for id in gone {
                let _ = s.del_dest(id);
                rep.dests_removed += 1;
            }
            // In config order, so new ones end up newest first as keepalived adds them.
            for w in &ws.dests {
                if let Some(id) = s.find(w.addr, w.port) {
                    let d = s.dest(id);
                    if d.weight != w.weight
                        || d.u_threshold != w.u_threshold
                        || d.l_threshold != w.l_threshold
                    {
                        let _ = s.edit_dest(id, w.weight, w.u_threshold, w.l_threshold);
                        rep.dests_changed += 1;
                    }
                    if s.dest(id).fwd != w.fwd || s.dest(id).tun != w.tun {
                        s.set_fwd(id, w.fwd);
                        s.set_tun(id, w.tun);
                        rep.dests_changed += 1;
                    }
                } else {
                    let mut d = crate::service::Dest::new(w.addr, w.port, w.weight, w.fwd);
                    d.tun = w.tun;
                    d.u_threshold = w.u_threshold;
                    d.l_threshold = w.l_threshold;
                    if s.add_dest(d).is_ok() {
                        rep.dests_added += 1;
                    }
                }
            }
        }
        for s in &mut self.services {
            if !s.removed && !want.services.iter().any(|w| w.key == s.key) {
                s.removed = true;
                rep.services_removed += 1;
            }
        }
        rep
    }

    /// The live (not removed) service with this key.
    pub fn service_index(&self, key: &SvcKey) -> Option<usize> {
        self.services
            .iter()
            .position(|s| s.key == *key && !s.removed)
    }

    /// Expires a connection now (e.g. the proxy could not connect to its server and
    /// wants the scheduler to pick again).
    pub fn forget(&mut self, conn: ConnRef) {
        if self.is_live(conn) && self.slots[conn.slot as usize].n_control == 0 {
            self.expire_now(conn.slot);
        }
    }

    /// Finds the service a packet addresses: fwmark first, then protocol/address/port,
    /// then a port-0 (all ports) persistent service on the address.
    pub fn find_service(&self, p: &Packet) -> Option<usize> {
        let v6 = p.dst.is_ipv6();
        if p.fwmark != 0 {
            if let Some(i) = self
                .services
                .iter()
                .position(|s| !s.removed && s.key == SvcKey::Fwmark { mark: p.fwmark, v6 })
            {
                return Some(i);
            }
        }
        let exact = SvcKey::Addr {
            proto: p.proto,
            addr: p.dst,
            port: p.dport,
        };
        self.services
            .iter()
            .position(|s| !s.removed && s.key == exact)
            .or_else(|| {
                let any = SvcKey::Addr {
                    proto: p.proto,
                    addr: p.dst,
                    port: 0,
                };
                self.services
                    .iter()
                    .position(|s| !s.removed && s.key == any && s.persistence.is_some())
            })
    }

    /// Processes one packet at `now_ms`.
    pub fn packet(&mut self, now_ms: u64, p: &Packet) -> Verdict {
        self.advance(now_ms);
        if p.dir == Dir::Out {
            let k = ConnKey {
                proto: p.proto,
                caddr: p.dst,
                cport: p.dport,
                vaddr: p.src,
                vport: p.sport,
            };
            return match self.out.get(&k).copied() {
                Some(slot) => {
                    self.update_state(slot, p, now_ms);
                    let s = &self.slots[slot as usize];
                    Verdict::Forward {
                        svc: s.svc as usize,
                        dest: s.dest,
                        conn: Some(ConnRef { slot, gen: s.gen }),
                        new: false,
                    }
                }
                None => Verdict::NotService,
            };
        }
        let key = ConnKey {
            proto: p.proto,
            caddr: p.src,
            cport: p.sport,
            vaddr: p.dst,
            vport: p.dport,
        };
        let is_syn = p.proto != Proto::Tcp
            || (p.tcp.syn && !p.tcp.ack && !p.tcp.rst)
            || self.params.sloppy_tcp;
        if let Some(slot) = self.conns.get(&key).copied() {
            let (svc, dest, state) = {
                let s = &self.slots[slot as usize];
                (s.svc as usize, s.dest, s.state)
            };
            let dest_gone = !self.services[svc].dest(dest).available;
            if dest_gone && self.params.expire_nodest_conn {
                self.expire_now(slot);
                return Verdict::DestGone { svc };
            }
            let reuse = self.params.conn_reuse
                && p.proto == Proto::Tcp
                && is_syn
                && state == State::Tcp(TcpState::TimeWait)
                && self.slots[slot as usize].n_control == 0;
            if !reuse {
                self.update_state(slot, p, now_ms);
                let gen = self.slots[slot as usize].gen;
                return Verdict::Forward {
                    svc,
                    dest,
                    conn: Some(ConnRef { slot, gen }),
                    new: false,
                };
            }
            self.expire_now(slot);
        }
        let Some(svc) = self.find_service(p) else {
            return Verdict::NotService;
        };
        if !is_syn {
            return Verdict::NoConn { svc };
        }
        // One-packet scheduling: UDP packets are scheduled one by one, no connection.
        if self.services[svc].flags.ops && p.proto == Proto::Udp {
            let info = p.info();
            let mut rng = self.rng;
            let d = self.services[svc].schedule(&info, now_ms, &mut || next_rand(&mut rng));
            self.rng = rng;
            return match d {
                Some(dest) => Verdict::Forward {
                    svc,
                    dest,
                    conn: None,
                    new: true,
                },
                None => Verdict::NoDest { svc },
            };
        }
        let Some((dest, tpl)) = self.pick(svc, p, now_ms) else {
            return Verdict::NoDest { svc };
        };
        let conn = self.create(svc, dest, key, tpl, p, now_ms);
        Verdict::Forward {
            svc,
            dest,
            conn: Some(conn),
            new: true,
        }
    }

    /// Schedules a new connection, through the persistence template when the service is
    /// persistent (`ip_vs_sched_persist`).
    fn pick(&mut self, svc: usize, p: &Packet, now_ms: u64) -> Option<(DestId, Option<u32>)> {
        let info = p.info();
        let mut rng = self.rng;
        let mut rand = || next_rand(&mut rng);
        let s = &mut self.services[svc];
        let Some(pers) = s.persistence else {
            let d = s.schedule(&info, now_ms, &mut rand);
            self.rng = rng;
            return d.map(|d| (d, None));
        };
        let vport = match s.key {
            SvcKey::Fwmark { .. } => 0,
            SvcKey::Addr { port, .. } if port == 0 || port == 21 => 0,
            SvcKey::Addr { .. } => p.dport,
        };
        let tk = TplKey {
            svc: u32::try_from(svc).unwrap_or(u32::MAX),
            caddr: mask(p.src, pers.prefix),
            vport,
        };
        if let Some(t) = self.tpls.get(&tk).copied() {
            let dest = self.slots[t as usize].dest;
            let d = self.services[svc].dest(dest);
            let valid = d.available && !(d.weight == 0 && self.params.expire_quiescent_template);
            if valid {
                let tm = self.slots[t as usize].timeout_ms;
                self.slots[t as usize].expires = now_ms + u64::from(tm);
                self.rng = rng;
                return Some((dest, Some(t)));
            }
            // Invalidate: no longer found, lives while it controls connections.
            self.tpls.remove(&tk);
            self.slots[t as usize].hashed = false;
        }
        let dest = self.services[svc].schedule(&info, now_ms, &mut rand)?;
        self.rng = rng;
        let timeout_ms = pers.timeout_s.saturating_mul(1000);
        let slot = self.alloc(Slot {
            key: Key::Tpl(tk),
            svc: tk.svc,
            dest,
            state: State::Template,
            active: false,
            no_output: true,
            hashed: true,
            gen: 0,
            live: true,
            expires: now_ms + u64::from(timeout_ms),
            timeout_ms,
            control: None,
            n_control: 0,
        });
        self.tpls.insert(tk, slot);
        self.file(slot, now_ms + u64::from(timeout_ms));
        self.services[svc].bind(dest, true);
        Some((dest, Some(slot)))
    }

    fn create(
        &mut self,
        svc: usize,
        dest: DestId,
        key: ConnKey,
        tpl: Option<u32>,
        p: &Packet,
        now_ms: u64,
    ) -> ConnRef {
        let d = self.services[svc].dest(dest);
        let (daddr, dport, fwd) = (d.addr, d.port, d.fwd);
        let state = match p.proto {
            Proto::Tcp => State::Tcp(TcpState::None),
            Proto::Udp => State::Udp,
            Proto::Sctp => State::Sctp,
        };
        let slot = self.alloc(Slot {
            key: Key::Conn(key),
            svc: u32::try_from(svc).unwrap_or(u32::MAX),
            dest,
            state,
            active: false,
            no_output: !fwd.is_nat(),
            hashed: true,
            gen: 0,
            live: true,
            expires: now_ms,
            timeout_ms: 0,
            control: tpl,
            n_control: 0,
        });
        if let Some(t) = tpl {
            self.slots[t as usize].n_control += 1;
        }
        self.conns.insert(key, slot);
        if fwd.is_nat() {
            let dport = if dport == 0 { key.vport } else { dport };
            let ok = ConnKey {
                proto: key.proto,
                caddr: key.caddr,
                cport: key.cport,
                vaddr: daddr,
                vport: dport,
            };
            self.out.insert(ok, slot);
        }
        self.services[svc].bind(dest, false);
        self.update_state(slot, p, now_ms);
        // Filed once; later refreshes only move `expires`, and the wheel re-files the
        // entry when it comes round (O(1) per packet).
        let e = self.slots[slot as usize].expires;
        self.file(slot, e);
        ConnRef {
            slot,
            gen: self.slots[slot as usize].gen,
        }
    }

    fn alloc(&mut self, mut s: Slot) -> u32 {
        if let Some(i) = self.free.pop() {
            s.gen = self.slots[i as usize].gen.wrapping_add(1);
            self.slots[i as usize] = s;
            i
        } else {
            self.slots.push(s);
            u32::try_from(self.slots.len() - 1).unwrap_or(u32::MAX)
        }
    }

    fn file(&mut self, slot: u32, expires: u64) {
        let t = (expires / TICK_MS).max(self.tick + 1);
        let gen = self.slots[slot as usize].gen;
        self.wheel[(t % WHEEL as u64) as usize].push((slot, gen));
    }

    /// The state machine step and timer refresh for a packet of an existing connection.
    fn update_state(&mut self, slot: u32, p: &Packet, now_ms: u64) {
        let s = &mut self.slots[slot as usize];
        let timeout_s = match s.state {
            State::Tcp(cur) => {
                let mut dir = usize::from(p.dir != Dir::In);
                if s.no_output {
                    if dir == 1 {
                        s.no_output = false;
                    } else {
                        dir = 2;
                    }
                }
                let next = p
                    .tcp
                    .event()
                    .map_or(cur, |ev| TCP_STATES[dir][ev][cur as usize]);
                s.state = State::Tcp(next);
                self.timeouts.tcp[next as usize]
            }
            State::Udp => self.timeouts.udp,
            State::Sctp => self.timeouts.sctp,
            State::Template => return,
        };
        let want_active = matches!(s.state, State::Tcp(t) if t.is_active());
        s.timeout_ms = timeout_s.saturating_mul(1000);
        s.expires = now_ms + u64::from(s.timeout_ms);
        if want_active != s.active {
            s.active = want_active;
            let (svc, dest) = (s.svc as usize, s.dest);
            self.services[svc].set_active(dest, want_active);
        }
    }

    /// Ends a connection at `now` (e.g. the proxy saw both sides close and wants the
    /// kernel's accounting): it moves to TIME_WAIT-like inactivity through FIN/ACK events.
    pub fn close(&mut self, now_ms: u64, conn: ConnRef) {
        if !self.is_live(conn) {
            return;
        }
        let Key::Conn(k) = self.slots[conn.slot as usize].key else {
            return;
        };
        let nat = !self.slots[conn.slot as usize].no_output;
        let mut pk = Packet {
            proto: k.proto,
            src: k.caddr,
            sport: k.cport,
            dst: k.vaddr,
            dport: k.vport,
            fwmark: 0,
            tcp: TcpFlags::FIN_ACK,
            dir: Dir::In,
        };
        self.update_state(conn.slot, &pk, now_ms);
        if nat {
            pk.dir = Dir::Out;
            self.update_state(conn.slot, &pk, now_ms);
            pk.dir = Dir::In;
            pk.tcp = TcpFlags::ACK;
            self.update_state(conn.slot, &pk, now_ms);
        }
    }

    pub fn is_live(&self, c: ConnRef) -> bool {
        self.slots
            .get(c.slot as usize)
            .is_some_and(|s| s.live && s.gen == c.gen)
    }

    /// The state name of a live connection (`ipvsadm -Lc`).
    pub fn state_of(&self, c: ConnRef) -> Option<&'static str> {
        let s = self
            .slots
            .get(c.slot as usize)
            .filter(|s| s.live && s.gen == c.gen)?;
        Some(s.state.name())
    }

    /// Expires everything due at `now_ms`.
    pub fn advance(&mut self, now_ms: u64) {
        let target = now_ms / TICK_MS;
        let mut steps = 0usize;
        while self.tick < target && steps <= WHEEL {
            self.tick += 1;
            steps += 1;
            let b = usize::try_from(self.tick % WHEEL as u64).unwrap_or(0);
            let bucket = std::mem::take(&mut self.wheel[b]);
            for (slot, gen) in bucket {
                self.visit(slot, gen, now_ms);
            }
        }
        if self.tick < target {
            // A clock jump past a whole revolution: every bucket was visited once.
            self.tick = target;
        }
    }

    fn visit(&mut self, slot: u32, gen: u32, now_ms: u64) {
        let s = &self.slots[slot as usize];
        if !s.live || s.gen != gen {
            return;
        }
        if s.expires > now_ms {
            let e = s.expires;
            self.file(slot, e);
            return;
        }
        if s.n_control > 0 {
            // A template outlives the connections it controls: the kernel re-arms it for
            // 60 s (`expire_later` in ip_vs_conn_expire).
            let e = now_ms + 60_000;
            self.slots[slot as usize].expires = e;
            self.file(slot, e);
            return;
        }
        self.expire_now(slot);
    }

    fn expire_now(&mut self, slot: u32) {
        let s = self.slots[slot as usize].clone();
        if !s.live {
            return;
        }
        match s.key {
            Key::Conn(k) => {
                self.conns.remove(&k);
                let (daddr, dport) = self.dest_of(&s);
                let ok = ConnKey {
                    proto: k.proto,
                    caddr: k.caddr,
                    cport: k.cport,
                    vaddr: daddr,
                    vport: dport,
                };
                if self.out.get(&ok) == Some(&slot) {
                    self.out.remove(&ok);
                }
                self.services[s.svc as usize].unbind(s.dest, false, s.active);
            }
            Key::Tpl(k) => {
                if s.hashed && self.tpls.get(&k) == Some(&slot) {
                    self.tpls.remove(&k);
                }
                self.services[s.svc as usize].unbind(s.dest, true, false);
            }
        }
        if let Some(t) = s.control {
            let ts = &mut self.slots[t as usize];
            ts.n_control = ts.n_control.saturating_sub(1);
        }
        let e = &mut self.slots[slot as usize];
        e.live = false;
        self.free.push(slot);
    }

    /// The real server address and port of an entry (port 0 = the virtual port).
    fn dest_of(&self, s: &Slot) -> (IpAddr, u16) {
        let d = self.services[s.svc as usize].dest(s.dest);
        let vport = match s.key {
            Key::Conn(k) => k.vport,
            Key::Tpl(k) => k.vport,
        };
        (d.addr, if d.port == 0 { vport } else { d.port })
    }

    /// Every live entry, connections and templates (for `ipvsadm -Lc` and the API).
    pub fn connections(&self, now_ms: u64) -> Vec<ConnInfo> {
        self.connections_from(now_ms, 0, usize::MAX).0
    }

    /// The live entries among `max` slots from slot `from`, and the slot to go on from
    /// (`None` at the end): a reader that releases the table between chunks holds it
    /// for a bounded time however large the table is. Entries that move between two
    /// chunks may be listed twice or not at all, as in the kernel's `/proc` walk.
    pub fn connections_from(
        &self,
        now_ms: u64,
        from: usize,
        max: usize,
    ) -> (Vec<ConnInfo>, Option<usize>) {
        let end = from.saturating_add(max).min(self.slots.len());
        let next = (end < self.slots.len()).then_some(end);
        let list = self
            .slots
            .get(from..end)
            .unwrap_or_default()
            .iter()
            .filter(|s| s.live)
            .map(|s| {
                let (proto, template, caddr, cport, vaddr, vport) = match s.key {
                    Key::Conn(k) => (k.proto, false, k.caddr, k.cport, k.vaddr, k.vport),
                    Key::Tpl(k) => {
                        let (proto, vaddr) = match self.services[k.svc as usize].key {
                            SvcKey::Addr { proto, addr, .. } => (proto, addr),
                            SvcKey::Fwmark { v6, .. } => (
                                Proto::Tcp,
                                if v6 {
                                    IpAddr::from([0u16; 8])
                                } else {
                                    IpAddr::from([0u8; 4])
                                },
                            ),
                        };
                        (proto, true, k.caddr, 0, vaddr, k.vport)
                    }
                };
                ConnInfo {
                    proto,
                    template,
                    state: s.state.name(),
                    expires_ms: s.expires.saturating_sub(now_ms),
                    caddr,
                    cport,
                    vaddr,
                    vport,
                    daddr: self.dest_of(s).0,
                    dport: self.dest_of(s).1,
                    svc: s.svc as usize,
                }
            })
            .collect();
        (list, next)
    }
}

fn next_rand(state: &mut u64) -> u32 {
    // xorshift64*: a seedable stand-in for the kernel's prandom.
    let mut x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    u32::try_from(x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 32).unwrap_or(0)
}

/// The client address under the persistence netmask (prefix length).
pub fn mask(a: IpAddr, prefix: u8) -> IpAddr {
    match a {
        IpAddr::V4(v) => {
            let p = u32::from(prefix.min(32));
            let m = if p == 0 { 0 } else { u32::MAX << (32 - p) };
            IpAddr::V4((u32::from(v) & m).into())
        }
        IpAddr::V6(v) => {
            let p = u32::from(prefix.min(128));
            let m = if p == 0 { 0 } else { u128::MAX << (128 - p) };
            IpAddr::V6((u128::from(v) & m).into())
        }
    }
}
