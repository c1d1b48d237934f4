//! `rvs-api`: the control API's JSON, version 1 (`/v1/...`), as a designed schema: named
//! fields and lower-case names, never serde's rendering of internal Rust enums. The
//! daemon answers with these types and its clients (`rvs adm`, `rvs status`, scripts)
//! read them; the OpenAPI document (`docs/openapi.json`) is generated from them and from
//! the daemon's handlers, and a test keeps the two equal.
//!
//! Conversions to and from the ipvsadm model (`rvs_adm`) live here, in one place: the
//! listings print `rvs_adm` values, the API carries these.
//!
//! Compatibility rule: within `v1`, fields are only added (clients ignore unknown ones);
//! renaming or removing one makes `v2`.

use rvs_adm::cmd::{DestSpec, SvcSpec, SyncDaemon as AdmSyncDaemon};
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use utoipa::ToSchema;

/// The API version this crate describes (the path prefix, and `api` in `/v1/status`).
pub const VERSION: &str = "v1";

/// A transport protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

/// An address family (of a firewall-mark service).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    #[default]
    Inet,
    Inet6,
}

/// A virtual service: `{"proto": "tcp", "addr": "198.18.0.1", "port": 80}`, or a
/// firewall mark `{"fwmark": 7, "family": "inet"}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(untagged, deny_unknown_fields)]
pub enum ServiceKey {
    Addr {
        proto: Protocol,
        #[schema(value_type = String)]
        addr: IpAddr,
        port: u16,
    },
    Fwmark {
        fwmark: u32,
        #[serde(default)]
        family: Family,
    },
}

impl From<rvs_types::SvcKey> for ServiceKey {
    fn from(k: rvs_types::SvcKey) -> ServiceKey {
        match k {
            rvs_types::SvcKey::Addr { proto, addr, port } => ServiceKey::Addr {
                proto: match proto {
                    rvs_types::Proto::Tcp => Protocol::Tcp,
                    rvs_types::Proto::Udp => Protocol::Udp,
                    rvs_types::Proto::Sctp => Protocol::Sctp,
                },
                addr,
                port,
            },
            rvs_types::SvcKey::Fwmark { mark, v6 } => ServiceKey::Fwmark {
                fwmark: mark,
                family: if v6 { Family::Inet6 } else { Family::Inet },
            },
        }
    }
}

impl From<ServiceKey> for rvs_types::SvcKey {
    fn from(k: ServiceKey) -> rvs_types::SvcKey {
        match k {
            ServiceKey::Addr { proto, addr, port } => rvs_types::SvcKey::Addr {
                proto: match proto {
                    Protocol::Tcp => rvs_types::Proto::Tcp,
                    Protocol::Udp => rvs_types::Proto::Udp,
                    Protocol::Sctp => rvs_types::Proto::Sctp,
                },
                addr,
                port,
            },
            ServiceKey::Fwmark { fwmark, family } => rvs_types::SvcKey::Fwmark {
                mark: fwmark,
                v6: family == Family::Inet6,
            },
        }
    }
}

/// The scheduler flags (`ipvsadm -b`): for `sh` and `mh`, `fallback` (flag-1) picks
/// another real server when the hashed one is unavailable and `port` (flag-2) hashes
/// the source port too; `flag_3` is the third, unnamed one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct SchedFlags {
    pub fallback: bool,
    pub port: bool,
    pub flag_3: bool,
}

impl SchedFlags {
    fn of(f: [bool; 3]) -> SchedFlags {
        SchedFlags {
            fallback: f[0],
            port: f[1],
            flag_3: f[2],
        }
    }

    fn bits(self) -> [bool; 3] {
        [self.fallback, self.port, self.flag_3]
    }
}

/// Persistence (`ipvsadm -p/-M`): a client sticks to its real server for `timeout_s`
/// seconds; clients within one `netmask` (IPv4: dotted, e.g. `255.255.255.0`; IPv6: a
/// prefix length, e.g. `64`) count as one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Persistence {
    pub timeout_s: u32,
    pub netmask: String,
}

/// How packets reach a real server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Forwarding {
    /// NAT (`-m`).
    Masq,
    /// Direct routing (`-g`).
    Route,
    /// IP-in-IP, GUE or GRE (`-i`).
    Tunnel,
    /// A local address (listed by the kernel only).
    Local,
    /// FULLNAT (`lb_kind FNAT`, `--fullnat`): source and destination rewritten.
    Fullnat,
}

impl From<rvs_adm::Fwd> for Forwarding {
    fn from(f: rvs_adm::Fwd) -> Forwarding {
        match f {
            rvs_adm::Fwd::Masq => Forwarding::Masq,
            rvs_adm::Fwd::Route => Forwarding::Route,
            rvs_adm::Fwd::Tunnel => Forwarding::Tunnel,
            rvs_adm::Fwd::Local => Forwarding::Local,
            rvs_adm::Fwd::FullNat => Forwarding::Fullnat,
        }
    }
}

impl From<Forwarding> for rvs_adm::Fwd {
    fn from(f: Forwarding) -> rvs_adm::Fwd {
        match f {
            Forwarding::Masq => rvs_adm::Fwd::Masq,
            Forwarding::Route => rvs_adm::Fwd::Route,
            Forwarding::Tunnel => rvs_adm::Fwd::Tunnel,
            Forwarding::Local => rvs_adm::Fwd::Local,
            Forwarding::Fullnat => rvs_adm::Fwd::FullNat,
        }
    }
}

/// A tunnel's encapsulation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TunnelType {
    #[default]
    Ipip,
    Gue,
    Gre,
}

/// A tunnel's checksum option.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Checksum {
    #[default]
    Nocsum,
    Csum,
    Remcsum,
}

/// The tunnel of a `tunnel` real server (`--tun-type`, `--tun-port`, `--tun-nocsum` …).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Tunnel {
    #[serde(rename = "type")]
    pub kind: TunnelType,
    /// The GUE destination port (0 otherwise).
    pub port: u16,
    pub checksum: Checksum,
}

impl From<rvs_types::Tun> for Tunnel {
    fn from(t: rvs_types::Tun) -> Tunnel {
        Tunnel {
            kind: match t.kind {
                rvs_types::Tun::GUE => TunnelType::Gue,
                rvs_types::Tun::GRE => TunnelType::Gre,
                _ => TunnelType::Ipip,
            },
            port: t.port,
            checksum: match t.flags {
                1 => Checksum::Csum,
                2 => Checksum::Remcsum,
                _ => Checksum::Nocsum,
            },
        }
    }
}

impl From<Tunnel> for rvs_types::Tun {
    fn from(t: Tunnel) -> rvs_types::Tun {
        rvs_types::Tun {
            kind: match t.kind {
                TunnelType::Ipip => rvs_types::Tun::IPIP,
                TunnelType::Gue => rvs_types::Tun::GUE,
                TunnelType::Gre => rvs_types::Tun::GRE,
            },
            port: t.port,
            flags: match t.checksum {
                Checksum::Nocsum => 0,
                Checksum::Csum => 1,
                Checksum::Remcsum => 2,
            },
        }
    }
}

/// Counters and 2-second rates, as the kernel keeps them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Stats {
    pub conns: u64,
    pub in_pkts: u64,
    pub out_pkts: u64,
    pub in_bytes: u64,
    pub out_bytes: u64,
    pub cps: u64,
    pub in_pps: u64,
    pub out_pps: u64,
    pub in_bps: u64,
    pub out_bps: u64,
}

impl From<rvs_adm::Stats> for Stats {
    fn from(s: rvs_adm::Stats) -> Stats {
        Stats {
            conns: s.conns,
            in_pkts: s.in_pkts,
            out_pkts: s.out_pkts,
            in_bytes: s.in_bytes,
            out_bytes: s.out_bytes,
            cps: s.cps,
            in_pps: s.in_pps,
            out_pps: s.out_pps,
            in_bps: s.in_bps,
            out_bps: s.out_bps,
        }
    }
}

impl From<Stats> for rvs_adm::Stats {
    fn from(s: Stats) -> rvs_adm::Stats {
        rvs_adm::Stats {
            conns: s.conns,
            in_pkts: s.in_pkts,
            out_pkts: s.out_pkts,
            in_bytes: s.in_bytes,
            out_bytes: s.out_bytes,
            cps: s.cps,
            in_pps: s.in_pps,
            out_pps: s.out_pps,
            in_bps: s.in_bps,
            out_bps: s.out_bps,
        }
    }
}

/// A real server of the running table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RealServer {
    #[schema(value_type = String)]
    pub addr: IpAddr,
    pub port: u16,
    pub forwarding: Forwarding,
    pub weight: i32,
    pub active_conns: u32,
    pub inactive_conns: u32,
    pub persistent_conns: u32,
    /// Upper connection threshold (0: none).
    pub upper_threshold: u32,
    /// Lower connection threshold (0: none).
    pub lower_threshold: u32,
    /// Only for `tunnel`.
    pub tunnel: Option<Tunnel>,
    pub stats: Stats,
}

/// A virtual service of the running table (what `rvs adm -L` lists).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Service {
    pub service: ServiceKey,
    pub scheduler: String,
    pub flags: SchedFlags,
    pub persistence: Option<Persistence>,
    /// One-packet scheduling (`-o`, UDP).
    pub one_packet: bool,
    /// A persistence engine (`--pe`).
    pub persistence_engine: Option<String>,
    /// The sums of its real servers'.
    pub stats: Stats,
    /// In the kernel's order: the most recently added first.
    pub real_servers: Vec<RealServer>,
}

/// A refused conversion: the field and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid(pub String);

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Invalid {}

/// The netmask as the API shows it: dotted for IPv4, a prefix length for IPv6.
fn mask_text(v6: bool, netmask: u32) -> String {
    if v6 {
        netmask.to_string()
    } else {
        Ipv4Addr::from(netmask).to_string()
    }
}

fn mask_number(v6: bool, text: &str) -> Result<u32, Invalid> {
    if v6 {
        text.parse::<u32>()
            .ok()
            .filter(|p| (1..=128).contains(p))
            .ok_or_else(|| {
                Invalid(format!(
                    "persistence.netmask {text:?}: an IPv6 prefix length (1-128)"
                ))
            })
    } else {
        text.parse::<Ipv4Addr>()
            .map(u32::from)
            .map_err(|_| Invalid(format!("persistence.netmask {text:?}: a dotted IPv4 mask")))
    }
}

fn default_mask(v6: bool) -> u32 {
    if v6 {
        128
    } else {
        u32::MAX
    }
}

impl Persistence {
    /// From ipvsadm's model: a timeout (none: not persistent) and a mask as a number.
    fn of(v6: bool, timeout: Option<u32>, netmask: u32) -> Option<Persistence> {
        timeout.map(|timeout_s| Persistence {
            timeout_s,
            netmask: mask_text(v6, netmask),
        })
    }

    /// ipvsadm's mask number (the default without persistence).
    fn mask(p: Option<&Persistence>, v6: bool) -> Result<u32, Invalid> {
        match p {
            Some(p) => mask_number(v6, &p.netmask),
            None => Ok(default_mask(v6)),
        }
    }
}

impl From<&rvs_adm::Service> for Service {
    fn from(s: &rvs_adm::Service) -> Service {
        let v6 = s.id.is_v6();
        Service {
            service: s.id.into(),
            scheduler: s.sched.clone(),
            flags: SchedFlags::of(s.flags),
            persistence: Persistence::of(v6, s.persistent, s.netmask),
            one_packet: s.ops,
            persistence_engine: s.pe.clone(),
            stats: s.stats.into(),
            real_servers: s
                .dests
                .iter()
                .map(|d| RealServer {
                    addr: d.addr,
                    port: d.port,
                    forwarding: d.fwd.into(),
                    weight: d.weight,
                    active_conns: d.active,
                    inactive_conns: d.inactive,
                    persistent_conns: d.persist,
                    upper_threshold: d.u_threshold,
                    lower_threshold: d.l_threshold,
                    tunnel: d.tun.map(Tunnel::from),
                    stats: d.stats.into(),
                })
                .collect(),
        }
    }
}

impl TryFrom<&Service> for rvs_adm::Service {
    type Error = Invalid;

    fn try_from(s: &Service) -> Result<rvs_adm::Service, Invalid> {
        let id: rvs_types::SvcKey = s.service.into();
        let v6 = id.is_v6();
        Ok(rvs_adm::Service {
            id,
            sched: s.scheduler.clone(),
            flags: s.flags.bits(),
            persistent: s.persistence.as_ref().map(|p| p.timeout_s),
            netmask: Persistence::mask(s.persistence.as_ref(), v6)?,
            pe: s.persistence_engine.clone(),
            ops: s.one_packet,
            stats: s.stats.into(),
            dests: s
                .real_servers
                .iter()
                .map(|d| rvs_adm::Dest {
                    addr: d.addr,
                    port: d.port,
                    fwd: d.forwarding.into(),
                    weight: d.weight,
                    active: d.active_conns,
                    inactive: d.inactive_conns,
                    persist: d.persistent_conns,
                    u_threshold: d.upper_threshold,
                    l_threshold: d.lower_threshold,
                    tun: d.tunnel.map(rvs_types::Tun::from),
                    stats: d.stats.into(),
                })
                .collect(),
        })
    }
}

/// A virtual service to add or edit (`rvs adm -A/-E`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceSpec {
    pub service: ServiceKey,
    /// `rr`, `wrr`, `lc`, `wlc`, `sh`, `mh`, … (ipvsadm's names).
    pub scheduler: String,
    #[serde(default)]
    pub flags: SchedFlags,
    #[serde(default)]
    pub persistence: Option<Persistence>,
    #[serde(default)]
    pub one_packet: bool,
    #[serde(default)]
    pub persistence_engine: Option<String>,
}

/// A real server to add or edit (`rvs adm -a/-e`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RealServerSpec {
    #[schema(value_type = String)]
    pub addr: IpAddr,
    pub port: u16,
    pub forwarding: Forwarding,
    pub weight: i32,
    #[serde(default)]
    pub upper_threshold: u32,
    #[serde(default)]
    pub lower_threshold: u32,
    /// Only for `tunnel` (default: `ipip`).
    #[serde(default)]
    pub tunnel: Option<Tunnel>,
}

/// The connection timeouts in seconds (`--set`); 0 leaves a value unchanged.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Timeouts {
    pub tcp: u32,
    pub tcpfin: u32,
    pub udp: u32,
}

/// The role of a connection-sync daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SyncState {
    Master,
    Backup,
}

impl SyncState {
    fn name(self) -> &'static str {
        match self {
            SyncState::Master => "master",
            SyncState::Backup => "backup",
        }
    }

    fn of(s: &str) -> Result<SyncState, Invalid> {
        match s {
            "master" => Ok(SyncState::Master),
            "backup" => Ok(SyncState::Backup),
            other => Err(Invalid(format!("state {other:?}: master or backup"))),
        }
    }
}

/// The kernel's connection-sync daemon (`--start-daemon`; kernel IPVS only). 0 or
/// absent: the kernel's default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SyncDaemon {
    pub state: SyncState,
    pub interface: String,
    #[serde(default)]
    pub syncid: u8,
    #[serde(default)]
    pub maxlen: u16,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub group: Option<IpAddr>,
    #[serde(default)]
    pub port: u16,
    #[serde(default)]
    pub ttl: u8,
}

/// A change to the running table, as `rvs adm` (ipvsadm's options) makes it:
/// `{"op": "add_real_server", "service": {...}, "real_server": {...}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Command {
    /// `-A`
    AddService(ServiceSpec),
    /// `-E`
    EditService(ServiceSpec),
    /// `-D`
    DeleteService { service: ServiceKey },
    /// `-C`
    Clear,
    /// `-a`
    AddRealServer {
        service: ServiceKey,
        real_server: RealServerSpec,
    },
    /// `-e`
    EditRealServer {
        service: ServiceKey,
        real_server: RealServerSpec,
    },
    /// `-d`
    DeleteRealServer {
        service: ServiceKey,
        #[schema(value_type = String)]
        addr: IpAddr,
        port: u16,
    },
    /// `-Z`: one service's counters, or all.
    Zero {
        #[serde(default)]
        service: Option<ServiceKey>,
    },
    /// `--set`
    SetTimeouts(Timeouts),
    /// `--start-daemon`
    StartSyncDaemon(SyncDaemon),
    /// `--stop-daemon`
    StopSyncDaemon {
        state: SyncState,
        #[serde(default)]
        syncid: u8,
    },
}

fn svc_spec(s: &SvcSpec) -> ServiceSpec {
    let v6 = s.id.is_v6();
    ServiceSpec {
        service: s.id.into(),
        scheduler: s.sched.clone(),
        flags: SchedFlags::of(s.flags),
        persistence: Persistence::of(v6, s.persistent, s.netmask),
        one_packet: s.ops,
        persistence_engine: s.pe.clone(),
    }
}

fn adm_svc_spec(s: &ServiceSpec) -> Result<SvcSpec, Invalid> {
    let id: rvs_types::SvcKey = s.service.into();
    let v6 = id.is_v6();
    Ok(SvcSpec {
        id,
        sched: s.scheduler.clone(),
        flags: s.flags.bits(),
        persistent: s.persistence.as_ref().map(|p| p.timeout_s),
        netmask: Persistence::mask(s.persistence.as_ref(), v6)?,
        ops: s.one_packet,
        pe: s.persistence_engine.clone(),
    })
}

fn rs_spec(d: &DestSpec) -> RealServerSpec {
    RealServerSpec {
        addr: d.addr,
        port: d.port,
        forwarding: d.fwd.into(),
        weight: d.weight,
        upper_threshold: d.u_threshold,
        lower_threshold: d.l_threshold,
        tunnel: (d.fwd == rvs_adm::Fwd::Tunnel).then(|| d.tun.into()),
    }
}

fn adm_rs_spec(d: &RealServerSpec) -> DestSpec {
    DestSpec {
        addr: d.addr,
        port: d.port,
        fwd: d.forwarding.into(),
        weight: d.weight,
        u_threshold: d.upper_threshold,
        l_threshold: d.lower_threshold,
        tun: d.tunnel.unwrap_or_default().into(),
    }
}

impl TryFrom<&rvs_adm::cmd::Command> for Command {
    type Error = Invalid;

    fn try_from(c: &rvs_adm::cmd::Command) -> Result<Command, Invalid> {
        use rvs_adm::cmd::Command as C;
        Ok(match c {
            C::AddService(s) => Command::AddService(svc_spec(s)),
            C::EditService(s) => Command::EditService(svc_spec(s)),
            C::DelService(k) => Command::DeleteService {
                service: (*k).into(),
            },
            C::Clear => Command::Clear,
            C::AddDest(k, d) => Command::AddRealServer {
                service: (*k).into(),
                real_server: rs_spec(d),
            },
            C::EditDest(k, d) => Command::EditRealServer {
                service: (*k).into(),
                real_server: rs_spec(d),
            },
            C::DelDest(k, addr, port) => Command::DeleteRealServer {
                service: (*k).into(),
                addr: *addr,
                port: *port,
            },
            C::Zero(k) => Command::Zero {
                service: k.map(Into::into),
            },
            C::SetTimeouts([tcp, tcpfin, udp]) => Command::SetTimeouts(Timeouts {
                tcp: *tcp,
                tcpfin: *tcpfin,
                udp: *udp,
            }),
            C::StartDaemon(d) => Command::StartSyncDaemon(SyncDaemon {
                state: SyncState::of(&d.state)?,
                interface: d.ifname.clone(),
                syncid: d.syncid,
                maxlen: d.maxlen,
                group: d.group,
                port: d.port,
                ttl: d.ttl,
            }),
            C::StopDaemon { state, syncid } => Command::StopSyncDaemon {
                state: SyncState::of(state)?,
                syncid: *syncid,
            },
        })
    }
}

impl TryFrom<&Command> for rvs_adm::cmd::Command {
    type Error = Invalid;

    fn try_from(c: &Command) -> Result<rvs_adm::cmd::Command, Invalid> {
        use rvs_adm::cmd::Command as C;
        Ok(match c {
            Command::AddService(s) => C::AddService(adm_svc_spec(s)?),
            Command::EditService(s) => C::EditService(adm_svc_spec(s)?),
            Command::DeleteService { service } => C::DelService((*service).into()),
            Command::Clear => C::Clear,
            Command::AddRealServer {
                service,
                real_server,
            } => C::AddDest((*service).into(), adm_rs_spec(real_server)),
            Command::EditRealServer {
                service,
                real_server,
            } => C::EditDest((*service).into(), adm_rs_spec(real_server)),
            Command::DeleteRealServer {
                service,
                addr,
                port,
            } => C::DelDest((*service).into(), *addr, *port),
            Command::Zero { service } => C::Zero(service.map(Into::into)),
            Command::SetTimeouts(t) => C::SetTimeouts([t.tcp, t.tcpfin, t.udp]),
            Command::StartSyncDaemon(d) => C::StartDaemon(AdmSyncDaemon {
                state: d.state.name().to_owned(),
                ifname: d.interface.clone(),
                syncid: d.syncid,
                maxlen: d.maxlen,
                group: d.group,
                port: d.port,
                ttl: d.ttl,
            }),
            Command::StopSyncDaemon { state, syncid } => C::StopDaemon {
                state: state.name().to_owned(),
                syncid: *syncid,
            },
        })
    }
}

/// An error answer (4xx, 5xx): what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error: String,
}

/// `POST /v1/upgrade`: which binary takes over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema, Default)]
pub struct UpgradeRequest {
    /// An absolute path; absent: the binary now installed where the daemon's was.
    #[serde(default)]
    pub binary: Option<String>,
}

/// The answer to `POST /v1/upgrade`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UpgradeAnswer {
    /// The successor's pid.
    pub pid: u32,
}

/// `POST /v1/plan`: which file to plan a reload of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema, Default)]
pub struct PlanRequest {
    /// An absolute path; absent: the daemon's own configuration file (`rvs reload
    /// --dry-run`).
    #[serde(default)]
    pub file: Option<String>,
}

/// Which part of the daemon a planned step changes, in the order a reload changes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PlanPart {
    /// Notify scripts of removed real servers (`notify_down`), run first.
    Scripts,
    /// Health checkers started and stopped.
    Checkers,
    /// Virtual and real servers.
    Dataplane,
    /// VRRP instances and their VIPs.
    Vrrp,
}

/// One step of a planned reload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PlanStep {
    pub part: PlanPart,
    pub text: String,
}

/// The answer to `POST /v1/plan`: what a reload would change, computed by the reload's
/// own code on a copy of the running state; nothing is changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Plan {
    pub file: String,
    /// Why a reload would refuse the file (the running configuration would be kept);
    /// then there are no steps.
    pub refused: Option<String>,
    pub steps: Vec<PlanStep>,
    /// Changes worth a second look ("removing the last live real server of …").
    pub warnings: Vec<String>,
    /// The data plane's part as `rvs reload` would report it.
    pub summary: String,
}

/// The answer to `POST /v1/reload`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReloadAnswer {
    /// The new configuration runs, whole.
    pub ok: bool,
    /// What the reload did, or why it was refused (with the file's diagnostics).
    pub message: String,
}

/// The answer to an accepted `POST /v1/commands`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CommandAnswer {
    pub ok: bool,
}

/// One connection (or persistence template) of the table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Connection {
    /// `TCP`, `UDP`, `SCTP`, or `IP` for a firewall-mark persistence template.
    pub protocol: String,
    pub expires_s: u64,
    /// `ESTABLISHED`, `FIN_WAIT`, …, `UDP`; templates `NONE`/`ASSURED`.
    pub state: String,
    #[schema(value_type = String)]
    pub client: SocketAddr,
    #[schema(value_type = String)]
    pub virtual_address: SocketAddr,
    #[schema(value_type = String)]
    pub real_server: SocketAddr,
}

impl From<&rvs_adm::Conn> for Connection {
    fn from(c: &rvs_adm::Conn) -> Connection {
        Connection {
            protocol: c.proto.clone(),
            expires_s: c.expires_s,
            state: c.state.clone(),
            client: SocketAddr::new(c.caddr, c.cport),
            virtual_address: SocketAddr::new(c.vaddr, c.vport),
            real_server: SocketAddr::new(c.daddr, c.dport),
        }
    }
}

impl From<&Connection> for rvs_adm::Conn {
    fn from(c: &Connection) -> rvs_adm::Conn {
        rvs_adm::Conn {
            proto: c.protocol.clone(),
            expires_s: c.expires_s,
            state: c.state.clone(),
            caddr: c.client.ip(),
            cport: c.client.port(),
            vaddr: c.virtual_address.ip(),
            vport: c.virtual_address.port(),
            daddr: c.real_server.ip(),
            dport: c.real_server.port(),
        }
    }
}

/// One page of the connection table (`GET /v1/connections?offset=&limit=`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ConnectionsPage {
    /// Entries in the whole table now (it moves between pages).
    pub total: usize,
    pub offset: usize,
    pub connections: Vec<Connection>,
}

/// The data plane that runs the services.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Dataplane {
    Proxy,
    Xdp,
    Ipvs,
    /// VRRP only (`-P`).
    None,
}

/// Where the XDP program is attached, and how that interface was chosen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct XdpAttach {
    pub interface: String,
    /// `--xdp-iface`, `route to the real servers` or `vrrp_instance NAME`.
    pub chosen_by: String,
}

/// `--xdp-by-table`: what is forwarded by the table alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ByTable {
    /// Services forwarded by their table slot (mh, sh, dh; TCP; DR, TUN).
    pub services: u64,
    /// Their slots whose flows are looked up in the flow table (a real server changed
    /// within the flows' timeout, or flows there go elsewhere).
    pub changed_slots: u64,
}

/// Connections (or datagrams) a service accepted and could not deliver: the client was
/// reset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Undelivered {
    pub service: ServiceKey,
    /// `no_real_server`, `connect_refused`, `connect_timeout`, `connect_error`,
    /// `flow_limit`, `descriptors`, `loop`.
    pub reason: String,
    pub connections: u64,
}

/// One health checker of one real server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Check {
    /// keepalived's label of the `virtual_server` (`[198.18.0.1]:tcp:80`, `FWM 7`).
    pub virtual_server: String,
    #[schema(value_type = String)]
    pub real_server: SocketAddr,
    /// `TCP_CHECK`, `HTTP_GET`, …
    pub checker: String,
    /// Position among the real server's checkers.
    pub index: usize,
    /// `null`: a kind that decides nothing.
    pub up: Option<bool>,
    /// Up → down transitions since the daemon started.
    pub failures: u64,
    pub probes: u64,
    pub failed_probes: u64,
    pub last_latency_s: Option<f64>,
    pub last_change_unix: Option<u64>,
    /// Why it found the real server down, while it is.
    pub last_failure: Option<String>,
}

/// A BFD session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BfdSession {
    pub name: String,
    #[schema(value_type = String)]
    pub neighbor: IpAddr,
    /// `AdminDown`, `Down`, `Init`, `Up`.
    pub state: String,
    pub remote_state: String,
    pub local_diag: String,
    pub remote_diag: String,
    pub detection_time_ms: u64,
    pub packets_in: u64,
    pub packets_out: u64,
    pub dropped: u64,
    pub transitions: u64,
}

/// A VRRP instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct VrrpInstance {
    pub name: String,
    pub interface: String,
    pub vrid: u8,
    pub version: u8,
    /// `INIT`, `BACKUP`, `MASTER` or `FAULT`, as keepalived names them.
    pub state: String,
    pub base_priority: u8,
    /// With the trackers applied.
    pub priority: u8,
    /// This director's source address in adverts.
    pub source: String,
    /// The master as last heard (this director when MASTER).
    pub master: Option<String>,
    pub master_priority: Option<u8>,
    pub vips: Vec<String>,
    pub sync_group: Option<String>,
    pub adverts_rx: u64,
    pub adverts_tx: u64,
    pub priority_zero_tx: u64,
    pub became_master: u64,
    /// MASTER → another state.
    pub released_master: u64,
    /// Adverts received with priority 0 (a master leaving).
    pub priority_zero_rx: u64,
    /// Adverts whose address list differs from this instance's.
    pub addr_list_err: u64,
    /// Unix time (µs) of the last state change; 0: none yet.
    pub last_transition_us: u64,
    /// Dropped adverts by reason (`ttl`, `auth`, `checksum`, …).
    pub dropped: std::collections::BTreeMap<String, u64>,
    /// Times another MAC answered ARP for a VIP while this instance was MASTER: a split
    /// brain (the directors do not hear each other's adverts), or a host that answers
    /// ARP for the VIP.
    #[serde(default)]
    pub split_brain: u64,
    /// The last MAC that did.
    #[serde(default)]
    pub split_brain_mac: Option<String>,
}

/// `GET /v1/status`: the daemon, its reloads, health, BFD and VRRP.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Status {
    /// The API version (`v1`).
    pub api: String,
    /// rvs's version.
    pub version: String,
    pub pid: u32,
    /// The configuration file.
    pub config: String,
    pub uptime_s: u64,
    /// Connections and UDP flows being relayed (proxy data plane).
    pub live_connections: u64,
    pub dataplane: Dataplane,
    /// The XDP data plane's interface (`--dataplane xdp`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xdp: Option<XdpAttach>,
    /// `--xdp-by-table`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by_table: Option<ByTable>,
    pub timeouts: Timeouts,
    pub undelivered: Vec<Undelivered>,
    pub checks: Vec<Check>,
    pub bfd: Vec<BfdSession>,
    pub reloads_ok: u64,
    pub reloads_failed: u64,
    /// Unix time of the last successful reload; 0: none.
    pub last_reload_unix: u64,
    /// VRRP runs (not `-C`).
    pub vrrp_running: bool,
    /// The kernel's sync daemons, as `ipvsadm -L --daemon` prints them.
    pub sync_daemons: Vec<String>,
    pub vrrp: Vec<VrrpInstance>,
    /// `rvs_config_drift_peer`s heard, each with how its configuration differs from this
    /// director's (empty: they agree).
    #[serde(default)]
    pub drift: Vec<PeerDrift>,
    /// The BGP speaker (`rvs_bgp`; absent without it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bgp: Option<BgpStatus>,
    /// The connection sync daemons of the XDP plane (absent when none ran since start).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync: Option<SyncStats>,
}

/// What the connection sync daemons (`lvs_sync_daemon`, `rvs adm --start-daemon`) sent,
/// received and dropped since start.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SyncStats {
    /// Datagrams the master sent.
    pub sent_datagrams: u64,
    /// Connections and templates in them.
    pub sent_connections: u64,
    /// Datagrams the master could not send.
    pub send_errors: u64,
    /// Datagrams of the backup's sync id received.
    pub received_datagrams: u64,
    /// Connections and templates written into the data plane's tables.
    pub adopted: u64,
    /// Connections of services or real servers this director does not have.
    pub not_ours: u64,
    /// Connections this director forwards itself, which another director sent too
    /// (active-active): its own entry is kept.
    #[serde(default)]
    pub forwarded_here: u64,
    /// Datagrams that did not parse.
    pub malformed: u64,
    /// Datagrams without a valid signature (`rvs_sync_key`): unsigned, forged, replayed.
    #[serde(default)]
    pub unauthenticated: u64,
    /// Datagrams from an address that is not an `rvs_sync_peer`.
    #[serde(default)]
    pub not_a_peer: u64,
    /// Datagrams of another sync id.
    pub other_syncid: u64,
    /// Datagrams the data plane's tables refused.
    pub adopt_errors: u64,
    /// When the last datagram of the backup's sync id came (ms since the Unix epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_received_unix_ms: Option<u64>,
}

/// The BGP speaker of `rvs_bgp` (BIRD 2, run by rvs): what it announces and its sessions.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BgpStatus {
    /// BIRD's pid; absent while it is not running (starting, or restarting after it exited).
    pub pid: Option<u32>,
    /// `rvs bgp drain`: nothing is announced, whatever the health.
    pub drained: bool,
    /// The VIPs announced now.
    pub announced: Vec<BgpAnnouncement>,
    /// One per neighbour, in configuration order.
    pub sessions: Vec<BgpSession>,
    /// The speaker's last error (start, reconfiguration), if the last attempt failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A VIP announced to the routers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BgpAnnouncement {
    #[schema(value_type = String)]
    pub vip: IpAddr,
    /// `ASN:VALUE` each.
    pub communities: Vec<String>,
    pub med: Option<u32>,
}

/// A BGP session with a router, as BIRD reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BgpSession {
    #[schema(value_type = String)]
    pub neighbor: IpAddr,
    /// `Established` when routes flow; otherwise BIRD's word for where the session is
    /// (`Idle`, `Connect`, `Active`, `OpenSent`, …).
    pub state: String,
    pub since: String,
    /// BIRD's reason when the session is not up.
    pub info: String,
}

/// What a peer director's configuration differs in (`rvs_config_drift_peer`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PeerDrift {
    pub peer: String,
    /// One line per difference: `virtual_server 198.18.0.50:80 TCP: real_server
    /// 198.18.0.11:80 weight 1 DR here, weight 2 DR there`.
    pub differences: Vec<String>,
    /// Seconds since the peer was last heard.
    pub heard_s_ago: u64,
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests panic on failure")]
mod tests {
    use super::*;

    fn adm(s: &str) -> rvs_adm::cmd::Command {
        let args: Vec<String> = s.split_whitespace().map(str::to_owned).collect();
        match rvs_adm::cmd::parse(&args).unwrap() {
            rvs_adm::cmd::Invocation::Apply(c) => c,
            other => panic!("{other:?}"),
        }
    }

    /// Every command `rvs adm` can send survives the trip through the API's JSON.
    #[test]
    fn commands_round_trip_through_json() {
        for line in [
            "-A -t 198.18.0.1:80 -s wrr",
            "-A -u [fd00:198:18::1]:53 -s sh -b sh-fallback,sh-port -p 60 -M 64",
            "-E -f 7 -s rr -p 300 -M 255.255.255.0",
            "-A -f 9 -6 -s mh -b mh-port",
            "-D -t 198.18.0.1:80",
            "-C",
            "-a -t 198.18.0.1:80 -r 198.18.1.1:8080 -m -w 3 -x 100 -y 10",
            "-e -t 198.18.0.1:80 -r 198.18.1.1 -i --tun-type gue --tun-port 6080 --tun-csum",
            "-a -t 198.18.0.1:80 -r 198.18.1.2 -i --tun-type gre --tun-csum",
            "-d -t 198.18.0.1:80 -r 198.18.1.1:8080",
            "-Z",
            "-Z -t 198.18.0.1:80",
            "--set 900 120 300",
            "--start-daemon master --mcast-interface lo --syncid 3",
            "--stop-daemon backup",
        ] {
            let c = adm(line);
            let api = Command::try_from(&c).unwrap();
            let json = serde_json::to_string(&api).unwrap();
            let back: Command = serde_json::from_str(&json).unwrap();
            assert_eq!(back, api, "{line}: {json}");
            assert_eq!(
                rvs_adm::cmd::Command::try_from(&back).unwrap(),
                c,
                "{line}: {json}"
            );
        }
    }

    /// The designed shape: an `op` tag, named fields, lower-case names.
    #[test]
    fn a_command_reads_as_designed() {
        let c = adm("-a -t 198.18.0.1:80 -r 198.18.1.1:8080 -m -w 3");
        let v = serde_json::to_value(Command::try_from(&c).unwrap()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "op": "add_real_server",
                "service": {"proto": "tcp", "addr": "198.18.0.1", "port": 80},
                "real_server": {
                    "addr": "198.18.1.1", "port": 8080, "forwarding": "masq", "weight": 3,
                    "upper_threshold": 0, "lower_threshold": 0, "tunnel": null
                }
            })
        );
        let f: ServiceKey = serde_json::from_str(r#"{"fwmark": 7}"#).unwrap();
        assert_eq!(
            rvs_types::SvcKey::from(f),
            rvs_types::SvcKey::Fwmark { mark: 7, v6: false }
        );
        // Unknown fields, ops and names are errors that say which.
        for (bad, why) in [
            (
                r#"{"op": "add_real_server", "service": {"proto": "tcp", "addr": "198.18.0.1", "port": 80}, "real_server": {"addr": "198.18.1.1", "port": 1, "forwarding": "masq", "weight": 1, "wieght": 2}}"#,
                "unknown field `wieght`",
            ),
            (
                r#"{"op": "drop_everything"}"#,
                "unknown variant `drop_everything`",
            ),
            (
                r#"{"op": "zero", "service": {"proto": "icmp", "addr": "198.18.0.1", "port": 80}}"#,
                "ServiceKey",
            ),
        ] {
            let e = serde_json::from_str::<Command>(bad)
                .unwrap_err()
                .to_string();
            assert!(e.contains(why), "{bad}: {e}");
        }
        let bad_mask = Command::AddService(ServiceSpec {
            service: ServiceKey::Addr {
                proto: Protocol::Tcp,
                addr: "198.18.0.1".parse().unwrap(),
                port: 80,
            },
            scheduler: "rr".into(),
            flags: SchedFlags::default(),
            persistence: Some(Persistence {
                timeout_s: 60,
                netmask: "64".into(),
            }),
            one_packet: false,
            persistence_engine: None,
        });
        let e = rvs_adm::cmd::Command::try_from(&bad_mask).unwrap_err();
        assert!(e.0.contains("dotted IPv4 mask"), "{e}");
    }

    /// A listing converts both ways without loss.
    #[test]
    fn listings_round_trip() {
        let s = rvs_adm::Service {
            id: rvs_types::SvcKey::Addr {
                proto: rvs_types::Proto::Udp,
                addr: "198.18.0.1".parse().unwrap(),
                port: 53,
            },
            sched: "sh".into(),
            flags: [true, false, true],
            persistent: Some(30),
            netmask: 0xffff_ff00,
            pe: None,
            ops: true,
            stats: rvs_adm::Stats {
                conns: 5,
                ..Default::default()
            },
            dests: vec![rvs_adm::Dest {
                addr: "198.18.1.1".parse().unwrap(),
                port: 53,
                fwd: rvs_adm::Fwd::Tunnel,
                weight: 2,
                active: 1,
                inactive: 2,
                persist: 3,
                u_threshold: 4,
                l_threshold: 5,
                tun: Some(rvs_types::Tun {
                    kind: rvs_types::Tun::GUE,
                    port: 6080,
                    flags: 2,
                }),
                stats: rvs_adm::Stats::default(),
            }],
        };
        let api = Service::from(&s);
        assert_eq!(api.persistence.as_ref().unwrap().netmask, "255.255.255.0");
        let json = serde_json::to_string(&api).unwrap();
        let back: Service = serde_json::from_str(&json).unwrap();
        assert_eq!(rvs_adm::Service::try_from(&back).unwrap(), s, "{json}");
    }
}
