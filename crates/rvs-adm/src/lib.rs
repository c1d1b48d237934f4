//! `rvs-adm`: ipvsadm 1.31's listings, byte for byte (spec `ipvsadm.md` §5), from a
//! snapshot of the tables. Pure formatting: the CLI and the control API come with the
//! operator-interface work.

pub mod cmd;

use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::net::IpAddr;

/// A service's key and protocol: the same type as the scheduling core's (`rvs-types`).
pub use rvs_types::{Conn, Fwd, Proto, SvcKey, Tun};

/// Counters (64-bit) and rates of a service or destination.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
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

/// Sums counters and rates (a service's from its real servers', a group's from its
/// members'; the estimator is linear, so summed rates are the rate of the sums).
impl std::ops::AddAssign<&Stats> for Stats {
    fn add_assign(&mut self, b: &Stats) {
        self.conns += b.conns;
        self.in_pkts += b.in_pkts;
        self.out_pkts += b.out_pkts;
        self.in_bytes += b.in_bytes;
        self.out_bytes += b.out_bytes;
        self.cps += b.cps;
        self.in_pps += b.in_pps;
        self.out_pps += b.out_pps;
        self.in_bps += b.in_bps;
        self.out_bps += b.out_bps;
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dest {
    pub addr: IpAddr,
    pub port: u16,
    pub fwd: Fwd,
    pub weight: i32,
    pub active: u32,
    pub inactive: u32,
    pub persist: u32,
    pub u_threshold: u32,
    pub l_threshold: u32,
    /// The encapsulation of a tunnel dest.
    pub tun: Option<Tun>,
    pub stats: Stats,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Service {
    pub id: SvcKey,
    pub sched: String,
    /// SCHED1..3 (`-b`).
    pub flags: [bool; 3],
    /// Persistence timeout in seconds.
    pub persistent: Option<u32>,
    /// Netmask (IPv4, dotted) or prefix length (IPv6).
    pub netmask: u32,
    pub pe: Option<String>,
    pub ops: bool,
    pub stats: Stats,
    /// In kernel order: most recently added first.
    pub dests: Vec<Dest>,
}

impl Service {
    /// The persistence netmask as ipvsadm prints it (dotted for IPv4, a prefix length for
    /// IPv6), or `None` when it is the default (255.255.255.255 / 128).
    pub fn shown_mask(&self) -> Option<String> {
        if self.id.is_v6() {
            (self.netmask != 128).then(|| self.netmask.to_string())
        } else {
            (self.netmask != u32::MAX).then(|| std::net::Ipv4Addr::from(self.netmask).to_string())
        }
    }
}

/// Which listing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Format {
    #[default]
    Default,
    Stats,
    Rate,
    Thresholds,
    PersistentConn,
    TunInfo,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ListOpts {
    pub format: Format,
    pub exact: bool,
    pub nosort: bool,
}

/// The name lookups of ipvsadm without `-n` (`gethostbyaddr`, `getservbyport`) and of its
/// command line (`gethostbyname`, `getservbyname`). The binary answers from the system;
/// [`Numeric`] answers nothing, which is `-n`.
pub trait Names {
    fn host_of(&self, _addr: IpAddr) -> Option<String> {
        None
    }
    /// `proto`: `tcp`, `udp` or `sctp`.
    fn service_of(&self, _port: u16, _proto: &str) -> Option<String> {
        None
    }
    fn addr_of(&self, _host: &str) -> Option<std::net::Ipv4Addr> {
        None
    }
    fn port_of(&self, _name: &str, _proto: &str) -> Option<u16> {
        None
    }
}

/// No lookups: numeric output (`-n`), numeric input only.
pub struct Numeric;

impl Names for Numeric {}

/// `addrport_to_anyname`: `host:service` with each part numeric when it has no name.
pub(crate) fn anyname(a: IpAddr, port: u16, proto: &str, names: &dyn Names) -> String {
    let host = names.host_of(a).unwrap_or_else(|| a.to_string());
    let svc = names
        .service_of(port, proto)
        .unwrap_or_else(|| port.to_string());
    if a.is_ipv6() {
        format!("[{host}]:{svc}")
    } else {
        format!("{host}:{svc}")
    }
}

fn proto_of(id: &SvcKey) -> &'static str {
    match id {
        SvcKey::Addr {
            proto: Proto::Udp, ..
        } => "udp",
        SvcKey::Addr {
            proto: Proto::Sctp, ..
        } => "sctp",
        _ => "tcp",
    }
}

fn trunc(s: String, n: usize, a: IpAddr) -> String {
    if a.is_ipv4() && s.len() > n {
        s[..n].to_owned()
    } else {
        s
    }
}

fn svc_name(id: &SvcKey, names: &dyn Names) -> String {
    match id {
        SvcKey::Addr { proto, addr, port } => trunc(
            format!(
                "{:<4} {}",
                proto.name(),
                anyname(*addr, *port, proto_of(id), names)
            ),
            33,
            *addr,
        ),
        SvcKey::Fwmark { mark, v6 } => format!("FWM  {mark}{}", if *v6 { " IPv6" } else { "" }),
    }
}

/// `print_largenum`.
pub fn largenum(n: u64, exact: bool) -> String {
    if exact {
        let d = n.to_string();
        let w = if d.len() <= 8 { 9 } else { d.len() + 1 };
        return format!("{d:>w$}");
    }
    match n {
        _ if n < 100_000_000 => format!("{n:9}"),
        _ if n < 1_000_000_000 => format!("{:8}K", n / 1000),
        _ if n < 100_000_000_000 => format!("{:8}M", n / 1_000_000),
        _ if n < 100_000_000_000_000 => format!("{:8}G", n / 1_000_000_000),
        _ => format!("{:8}T", n / 1_000_000_000_000),
    }
}

/// ipvsadm's comparator: `(int)(a - b)` on host-order u32s (the sort quirk).
fn wrap_cmp(a: u32, b: u32) -> std::cmp::Ordering {
    #[expect(clippy::cast_possible_wrap, reason = "the quirk is exactly this wrap")]
    let d = a.wrapping_sub(b) as i32;
    d.cmp(&0)
}

#[expect(
    clippy::many_single_char_names,
    reason = "a, b, x, y, w, i: a comparator over words"
)]
fn addr_cmp(a: IpAddr, b: IpAddr) -> std::cmp::Ordering {
    match (a, b) {
        (IpAddr::V4(x), IpAddr::V4(y)) => wrap_cmp(u32::from(x), u32::from(y)),
        (IpAddr::V6(x), IpAddr::V6(y)) => {
            let (xs, ys) = (x.octets(), y.octets());
            for i in 0..4 {
                let w = |o: &[u8; 16]| {
                    u32::from_be_bytes([o[4 * i], o[4 * i + 1], o[4 * i + 2], o[4 * i + 3]])
                };
                let c = wrap_cmp(w(&xs), w(&ys));
                if c.is_ne() {
                    return c;
                }
            }
            std::cmp::Ordering::Equal
        }
        (IpAddr::V4(_), IpAddr::V6(_)) => std::cmp::Ordering::Less,
        (IpAddr::V6(_), IpAddr::V4(_)) => std::cmp::Ordering::Greater,
    }
}

fn svc_cmp(a: &Service, b: &Service) -> std::cmp::Ordering {
    let key = |s: &Service| match &s.id {
        SvcKey::Fwmark { mark, v6 } => (*mark, u8::from(*v6), 0u8, None, 0u16),
        SvcKey::Addr { proto, addr, port } => {
            let p = match proto {
                Proto::Tcp => 6,
                Proto::Udp => 17,
                Proto::Sctp => 132,
            };
            (0, u8::from(addr.is_ipv6()), p, Some(*addr), *port)
        }
    };
    let (fa, afa, pa, aa, pta) = key(a);
    let (fb, afb, pb, ab, ptb) = key(b);
    wrap_cmp(fa, fb)
        .then(afa.cmp(&afb))
        .then(pa.cmp(&pb))
        .then(match (aa, ab) {
            (Some(x), Some(y)) => addr_cmp(x, y),
            _ => std::cmp::Ordering::Equal,
        })
        .then(pta.cmp(&ptb))
}

/// The set scheduler flags by their names for this scheduler, comma-joined.
pub fn flag_names(sched: &str, flags: [bool; 3]) -> String {
    let names: [&str; 3] = match sched {
        "sh" => ["sh-fallback", "sh-port", "flag-3"],
        "mh" => ["mh-fallback", "mh-port", "flag-3"],
        _ => ["flag-1", "flag-2", "flag-3"],
    };
    let set: Vec<&str> = names
        .iter()
        .zip(flags)
        .filter(|(_, f)| *f)
        .map(|(n, _)| *n)
        .collect();
    set.join(",")
}

/// Services and their real servers in listing order (sorted unless `nosort`).
pub fn sort(services: &mut [Service], nosort: bool) {
    if nosort {
        return;
    }
    services.sort_by(svc_cmp);
    for s in services {
        s.dests
            .sort_by(|a, b| addr_cmp(a.addr, b.addr).then(a.port.cmp(&b.port)));
    }
}

/// The full `-L` listing.
pub fn list(services: &[Service], opts: ListOpts) -> String {
    list_named(services, opts, &Numeric)
}

/// The full `-L` listing with names (`-L` without `-n`).
pub fn list_named(services: &[Service], opts: ListOpts, names: &dyn Names) -> String {
    let mut out = String::from("IP Virtual Server version 1.2.1 (size=4096)\n");
    out.push_str(&list_body_named(services, opts, names));
    out
}

/// The listing without the version line (`-L -t ADDR` for one service).
pub fn list_body(services: &[Service], opts: ListOpts) -> String {
    list_body_named(services, opts, &Numeric)
}

/// [`list_body`] with names.
pub fn list_body_named(services: &[Service], opts: ListOpts, names: &dyn Names) -> String {
    let mut out = String::new();
    let _ = match opts.format {
        Format::Default => writeln!(out, "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn"),
        Format::Stats => write!(out, "{:<33} {:>8} {:>8} {:>8} {:>8} {:>8}\n  -> RemoteAddress:Port\n", "Prot LocalAddress:Port", "Conns", "InPkts", "OutPkts", "InBytes", "OutBytes"),
        Format::Rate => write!(out, "{:<33} {:>8} {:>8} {:>8} {:>8} {:>8}\n  -> RemoteAddress:Port\n", "Prot LocalAddress:Port", "CPS", "InPPS", "OutPPS", "InBPS", "OutBPS"),
        Format::Thresholds => write!(out, "{:<33} {:<10} {:<10} {:<10} {:<10}\n  -> RemoteAddress:Port\n", "Prot LocalAddress:Port", "Uthreshold", "Lthreshold", "ActiveConn", "InActConn"),
        Format::PersistentConn => write!(out, "{:<33} {:<9} {:<11} {:<10} {:<10}\n  -> RemoteAddress:Port\n", "Prot LocalAddress:Port", "Weight", "PersistConn", "ActiveConn", "InActConn"),
        Format::TunInfo => writeln!(out, "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn"),
    };
    let mut svcs: Vec<&Service> = services.iter().collect();
    if !opts.nosort {
        // A stable merge sort, like glibc's qsort on the kernel order.
        svcs.sort_by(|a, b| svc_cmp(a, b));
    }
    for s in svcs {
        service(&mut out, s, opts, names);
    }
    out
}

fn service(out: &mut String, s: &Service, opts: ListOpts, names: &dyn Names) {
    let name = svc_name(&s.id, names);
    let ln = |n: u64| largenum(n, opts.exact);
    match opts.format {
        Format::Stats => {
            let st = s.stats;
            let _ = writeln!(
                out,
                "{name:<33}{}{}{}{}{}",
                ln(st.conns),
                ln(st.in_pkts),
                ln(st.out_pkts),
                ln(st.in_bytes),
                ln(st.out_bytes)
            );
        }
        Format::Rate => {
            let st = s.stats;
            let _ = writeln!(
                out,
                "{name:<33}{}{}{}{}{}",
                ln(st.cps),
                ln(st.in_pps),
                ln(st.out_pps),
                ln(st.in_bps),
                ln(st.out_bps)
            );
        }
        _ => {
            let _ = write!(out, "{name} {}", s.sched);
            if s.flags.iter().any(|f| *f) {
                let _ = write!(out, " ({})", flag_names(&s.sched, s.flags));
            }
            if let Some(t) = s.persistent {
                let _ = write!(out, " persistent {t}");
                if let Some(m) = s.shown_mask() {
                    let _ = write!(out, " mask {m}");
                }
                if let Some(pe) = &s.pe {
                    let _ = write!(out, " pe {pe}");
                }
            }
            if s.ops {
                out.push_str(" ops");
            }
            out.push('\n');
        }
    }
    let mut dests: Vec<&Dest> = s.dests.iter().collect();
    if !opts.nosort {
        dests.sort_by(|a, b| addr_cmp(a.addr, b.addr).then(a.port.cmp(&b.port)));
    }
    for d in dests {
        let dname = trunc(anyname(d.addr, d.port, proto_of(&s.id), names), 28, d.addr);
        let st = d.stats;
        let _ = match opts.format {
            Format::Default => writeln!(
                out,
                "  -> {dname:<28} {:<7} {:<6} {:<10} {:<10}",
                d.fwd.name(),
                d.weight,
                d.active,
                d.inactive
            ),
            Format::Stats => writeln!(
                out,
                "  -> {dname:<28}{}{}{}{}{}",
                ln(st.conns),
                ln(st.in_pkts),
                ln(st.out_pkts),
                ln(st.in_bytes),
                ln(st.out_bytes)
            ),
            Format::Rate => writeln!(
                out,
                "  -> {dname:<28} {:8} {:8} {:8}{}{}",
                st.cps,
                st.in_pps,
                st.out_pps,
                ln(st.in_bps),
                ln(st.out_bps)
            ),
            Format::Thresholds => writeln!(
                out,
                "  -> {dname:<28} {:<10} {:<10} {:<10} {:<10}",
                d.u_threshold, d.l_threshold, d.active, d.inactive
            ),
            Format::PersistentConn => writeln!(
                out,
                "  -> {dname:<28} {:<9} {:<11} {:<10} {:<10}",
                d.weight, d.persist, d.active, d.inactive
            ),
            Format::TunInfo => writeln!(
                out,
                "  -> {dname:<28} {:<7} {:<13} {:<6} {:<10} {:<10}",
                d.fwd.name(),
                d.tun.map_or_else(|| "n/a".to_owned(), |t| t.to_string()),
                d.weight,
                d.active,
                d.inactive
            ),
        };
    }
}

/// `ipvsadm -Lnc` (spec §5.9).
pub fn list_conns(conns: &[Conn]) -> String {
    list_conns_named(conns, &Numeric, false)
}

/// `ipvsadm -Lc` with names; `persistent_conn`: `--persistent-conn`, whose title adds
/// the persistence engine columns. No persistence engine exists here (`--pe` is refused
/// as by a kernel without one), so no entry carries PE data and entries print as
/// ipvsadm prints entries without it.
pub fn list_conns_named(conns: &[Conn], names: &dyn Names, persistent_conn: bool) -> String {
    let mut out = String::from("IPVS connection entries\n");
    if persistent_conn {
        let _ = writeln!(
            out,
            "pro expire {:<11} {:<18} {:<18} {:<18} {:<16} pe_data",
            "state", "source", "virtual", "destination", "pe name"
        );
    } else {
        let _ = writeln!(
            out,
            "pro expire {:<11} {:<18} {:<18} destination",
            "state", "source", "virtual"
        );
    }
    for c in conns {
        let proto = c.proto.to_ascii_lowercase();
        let expire = format!("{:02}:{:02}", c.expires_s / 60, c.expires_s % 60);
        let _ = writeln!(
            out,
            "{:<3} {expire:<6} {:<11} {:<18} {:<18} {}",
            c.proto,
            c.state,
            anyname(c.caddr, c.cport, &proto, names),
            anyname(c.vaddr, c.vport, &proto, names),
            anyname(c.daddr, c.dport, &proto, names)
        );
    }
    out
}
