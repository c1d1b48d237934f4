//! ipvsadm 1.31's command line (spec `ipvsadm.md` §1-3): popt-style bundling (`-Ln`,
//! `-At ADDR`), one command per invocation, every option at most once, the
//! command × option legality table, and ipvsadm's messages and exit codes.

use crate::{Fwd, Proto, SvcKey, Tun};
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, Ipv4Addr};

/// A service as `-A`/`-E` describe it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SvcSpec {
    pub id: SvcKey,
    pub sched: String,
    pub flags: [bool; 3],
    pub persistent: Option<u32>,
    /// IPv4: the mask as a number; IPv6: the prefix length.
    pub netmask: u32,
    pub ops: bool,
    /// `--pe NAME`: a persistence engine (the kernel has `sip`).
    #[serde(default)]
    pub pe: Option<String>,
}

/// A real server as `-a`/`-e` describe it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DestSpec {
    pub addr: IpAddr,
    pub port: u16,
    pub fwd: Fwd,
    pub weight: i32,
    pub u_threshold: u32,
    pub l_threshold: u32,
    /// The tunnel (read when `fwd` is `Tunnel`).
    #[serde(default)]
    pub tun: Tun,
}

/// A change to the table (what the control API applies).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    AddService(SvcSpec),
    EditService(SvcSpec),
    DelService(SvcKey),
    Clear,
    AddDest(SvcKey, DestSpec),
    EditDest(SvcKey, DestSpec),
    DelDest(SvcKey, IpAddr, u16),
    Zero(Option<SvcKey>),
    /// tcp, tcpfin, udp; 0 leaves a value unchanged.
    SetTimeouts([u32; 3]),
    /// `--start-daemon master|backup` with its parameters.
    StartDaemon(SyncDaemon),
    /// `--stop-daemon master|backup [--syncid N]`.
    StopDaemon {
        state: String,
        syncid: u8,
    },
}

/// IPVS connection synchronisation daemon parameters (spec §3.5; 0 / `None`: the
/// kernel's default).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncDaemon {
    /// `master` or `backup`.
    pub state: String,
    pub ifname: String,
    pub syncid: u8,
    pub maxlen: u16,
    pub group: Option<IpAddr>,
    pub port: u16,
    pub ttl: u8,
}

/// What one invocation asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invocation {
    Apply(Command),
    List {
        opts: crate::ListOpts,
        svc: Option<SvcKey>,
        timeout: bool,
        connections: bool,
        /// `-n`: no name lookups.
        numeric: bool,
        /// `--daemon`: the sync daemons.
        daemon: bool,
    },
    Save {
        numeric: bool,
    },
    Restore,
    Help,
    Version,
}

/// An ipvsadm usage error: the message and the exit status ipvsadm gives.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{msg}")]
pub struct ArgError {
    pub msg: String,
    pub code: u8,
}

/// The checks ipvsadm makes of a command's values, whichever way it arrived (the command
/// line or the control API's JSON): the API used to accept weight -1, a port-0
/// non-persistent service, an IPv6 real server in an IPv4 NAT service. The parser makes
/// the same checks as it reads; this is what both rely on. Messages are ipvsadm's.
pub fn validate(cmd: &Command) -> Result<(), ArgError> {
    match cmd {
        Command::AddService(spec) | Command::EditService(spec) => validate_service(spec),
        Command::AddDest(id, d) | Command::EditDest(id, d) => validate_dest(id, d),
        Command::StartDaemon(sd) => {
            if sd.state != "master" && sd.state != "backup" {
                return Err(fail("illegal start_daemon specified"));
            }
            if sd.ifname.is_empty() || sd.ifname.len() >= 16 {
                return Err(fail("illegal mcast-interface specified"));
            }
            Ok(())
        }
        Command::StopDaemon { state, .. } => {
            if state != "master" && state != "backup" {
                return Err(fail("illegal start_daemon specified"));
            }
            Ok(())
        }
        Command::DelService(_)
        | Command::Clear
        | Command::DelDest(..)
        | Command::Zero(_)
        | Command::SetTimeouts(_) => Ok(()),
    }
}

fn validate_service(spec: &SvcSpec) -> Result<(), ArgError> {
    if spec.sched.is_empty() || spec.sched.len() > 15 {
        return Err(fail("illegal scheduler specified"));
    }
    if let Some(t) = spec.persistent {
        if !(1..=2_678_400).contains(&t) {
            return Err(fail(format!("invalid timeout value `{t}' specified")));
        }
    }
    if let SvcKey::Addr { proto, port, .. } = &spec.id {
        if *port == 0 && spec.persistent.is_none() {
            return Err(fail("Zero port specified for non-persistent service"));
        }
        if spec.ops && *proto != Proto::Udp {
            return Err(fail(
                "One-Packet Scheduling is only for UDP virtual services",
            ));
        }
    }
    if spec.id.is_v6() && !(1..=128).contains(&spec.netmask) {
        return Err(fail("illegal ipv6 netmask specified"));
    }
    Ok(())
}

fn validate_dest(id: &SvcKey, d: &DestSpec) -> Result<(), ArgError> {
    if !(0..=65535).contains(&d.weight) {
        return Err(fail("illegal weight specified"));
    }
    if id.is_v6() != d.addr.is_ipv6() && d.fwd != Fwd::Tunnel {
        return Err(fail(
            "Different address family is allowed only for tunneling servers",
        ));
    }
    if let SvcKey::Addr { port, .. } = id {
        if matches!(d.fwd, Fwd::Route | Fwd::Tunnel) && d.port != *port {
            return Err(fail(
                "the real server's port must be the service's in DR and TUN (the kernel cannot remap ports)",
            ));
        }
    }
    if !d.tun.is_valid() {
        return Err(fail("illegal tunnel type specified"));
    }
    if d.fwd == Fwd::Tunnel && d.tun.kind == Tun::GUE && d.tun.port == 0 {
        return Err(fail("illegal tunnel port specified"));
    }
    Ok(())
}

fn fail(msg: impl Into<String>) -> ArgError {
    ArgError {
        msg: msg.into(),
        code: 2,
    }
}

fn popt_fail() -> ArgError {
    ArgError {
        msg: "Try `ipvsadm -h' or 'ipvsadm --help' for more information.".into(),
        code: 255,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cmd {
    Add,
    Edit,
    Del,
    Flush,
    List,
    AddSrv,
    DelSrv,
    EditSrv,
    Timeout,
    Restore,
    Save,
    Zero,
    StartDaemon,
    StopDaemon,
}

impl Cmd {
    fn name(self) -> &'static str {
        match self {
            Cmd::Add => "add-service",
            Cmd::Edit => "edit-service",
            Cmd::Del => "delete-service",
            Cmd::Flush => "flush",
            Cmd::List => "list",
            Cmd::AddSrv => "add-server",
            Cmd::DelSrv => "delete-server",
            Cmd::EditSrv => "edit-server",
            Cmd::Timeout => "timeout",
            Cmd::Restore => "restore",
            Cmd::Save => "save",
            Cmd::Zero => "zero",
            Cmd::StartDaemon => "start-daemon",
            Cmd::StopDaemon => "stop-daemon",
        }
    }
}

/// Options by ipvsadm's `optnames` (the names its messages use).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Opt {
    Numeric,
    Connection,
    Service,
    Scheduler,
    Persistent,
    Netmask,
    RealServer,
    Fwd,
    Weight,
    UThreshold,
    LThreshold,
    Timeout,
    Stats,
    Rate,
    Thresholds,
    PersistentConn,
    NoSort,
    Sort,
    Exact,
    Ipv6,
    Ops,
    SchedFlags,
    TunInfo,
    TunType,
    TunPort,
    TunNocsum,
    TunCsum,
    TunRemcsum,
    Pe,
    Daemon,
    McastIfn,
    SyncId,
    McastGroup,
    McastPort,
    McastTtl,
    SyncMaxlen,
}

impl Opt {
    fn name(self) -> &'static str {
        match self {
            Opt::Numeric => "numeric",
            Opt::Connection => "connection",
            Opt::Service => "service-address",
            Opt::Scheduler => "scheduler",
            Opt::Persistent => "persistent",
            Opt::Netmask => "netmask",
            Opt::RealServer => "real-server",
            Opt::Fwd => "forwarding-method",
            Opt::Weight => "weight",
            Opt::UThreshold => "u-threshold",
            Opt::LThreshold => "l-threshold",
            Opt::Timeout => "timeout",
            Opt::Stats => "stats",
            Opt::Rate => "rate",
            Opt::Thresholds => "thresholds",
            Opt::PersistentConn => "persistent-conn",
            Opt::NoSort => "nosort",
            Opt::Sort => "sort",
            Opt::Exact => "exact",
            Opt::Ipv6 => "ipv6",
            Opt::Ops => "ops",
            Opt::SchedFlags => "sched-flags",
            Opt::TunInfo => "tun-info",
            Opt::TunType => "tun-type",
            Opt::TunPort => "tun-port",
            Opt::TunNocsum => "tun-nocsum",
            Opt::TunCsum => "tun-csum",
            Opt::TunRemcsum => "tun-remcsum",
            Opt::Pe => "pe",
            Opt::Daemon => "daemon",
            Opt::McastIfn => "mcast-interface",
            Opt::SyncId => "syncid",
            Opt::McastGroup => "mcast-group",
            Opt::McastPort => "mcast-port",
            Opt::McastTtl => "mcast-ttl",
            Opt::SyncMaxlen => "sync-maxlen",
        }
    }
}

/// Which options a command may take (spec §3.6); `-6` and `--sort` are always allowed.
fn legal(cmd: Cmd, opt: Opt) -> bool {
    use Opt as O;
    match cmd {
        Cmd::Add | Cmd::Edit => matches!(
            opt,
            O::Service | O::Scheduler | O::Persistent | O::Netmask | O::Ops | O::SchedFlags | O::Pe
        ),
        Cmd::Del | Cmd::Zero => opt == O::Service,
        Cmd::List => matches!(
            opt,
            O::Numeric
                | O::Stats
                | O::Rate
                | O::Thresholds
                | O::PersistentConn
                | O::NoSort
                | O::Exact
                | O::TunInfo
                | O::Connection
                | O::Service
                | O::Timeout
                | O::Daemon
                | O::SyncId
        ),
        Cmd::StartDaemon => matches!(
            opt,
            O::McastIfn | O::SyncId | O::McastGroup | O::McastPort | O::McastTtl | O::SyncMaxlen
        ),
        Cmd::StopDaemon => opt == O::SyncId,
        Cmd::AddSrv | Cmd::EditSrv => matches!(
            opt,
            O::Service
                | O::RealServer
                | O::Fwd
                | O::Weight
                | O::UThreshold
                | O::LThreshold
                | O::TunType
                | O::TunPort
                | O::TunNocsum
                | O::TunCsum
                | O::TunRemcsum
        ),
        Cmd::DelSrv => matches!(opt, O::Service | O::RealServer),
        Cmd::Save => opt == O::Numeric,
        Cmd::Flush | Cmd::Timeout | Cmd::Restore => false,
    }
}

/// Only tunnels take tunnel options, and each tunnel type its own (ipvsadm's
/// `tunnel_opt_check`: ipip none; gue `--tun-port` and one checksum option; gre one of
/// nocsum/csum).
fn tunnel_check(s: &Seen, fwd: Fwd) -> Result<(), ArgError> {
    let opts = [Opt::TunPort, Opt::TunNocsum, Opt::TunCsum, Opt::TunRemcsum];
    let any = s.opts.contains(&Opt::TunType) || opts.iter().any(|o| s.opts.contains(o));
    if any && fwd != Fwd::Tunnel {
        return Err(fail("Tunnel options conflict with forward method"));
    }
    // '+' compulsory, 'x' illegal, '1' at most one of them.
    let table: [[u8; 4]; 3] = [*b"xxxx", *b"+111", *b"x11x"];
    let t = usize::from(s.tun.kind).min(2);
    let name = Tun::NAMES[t];
    let mut first: Option<Opt> = None;
    for (j, o) in opts.iter().enumerate() {
        let given = s.opts.contains(o);
        match (table[t][j], given) {
            (b'+', false) => {
                return Err(fail(format!(
                    "You need to supply the '{}' option for the '{name}' tunnel type",
                    o.name()
                )))
            }
            (b'x', true) => {
                return Err(fail(format!(
                    "Illegal '{}' option with the '{name}' tunnel type",
                    o.name()
                )))
            }
            (b'1', true) => match first {
                None => first = Some(*o),
                Some(f) => {
                    return Err(fail(format!(
                    "The option '{}' conflicts with the '{}' option in the '{name}' tunnel type",
                    o.name(),
                    f.name()
                )))
                }
            },
            _ => {}
        }
    }
    Ok(())
}

/// `parse_service`: `[v6]:port`, bare IPv6, `v4[:port]` (v4 as `inet_aton` reads it, else
/// a host name, IPv4 only); the port a number or a service name of `proto`.
fn parse_addr(s: &str, proto: &str, names: &dyn crate::Names) -> Option<(IpAddr, u16)> {
    let port_of = |p: &str| -> Option<u16> {
        if p.bytes().all(|b| b.is_ascii_digit()) {
            p.parse().ok()
        } else {
            names.port_of(p, proto)
        }
    };
    if s.is_empty() || s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if let Some(rest) = s.strip_prefix('[') {
        let (a, p) = rest.split_once("]:")?;
        if p.is_empty() {
            return None;
        }
        let port = port_of(p)?;
        return Some((IpAddr::V6(a.parse().ok()?), port));
    }
    if let Ok(v6) = s.parse::<std::net::Ipv6Addr>() {
        return Some((IpAddr::V6(v6), 0));
    }
    let (host, port) = match s.rsplit_once(':') {
        Some((h, p)) if !p.is_empty() => (h, port_of(p)?),
        Some(_) => return None,
        None => (s, 0),
    };
    let addr = inet_aton(host).or_else(|| names.addr_of(host))?;
    Some((IpAddr::V4(addr), port))
}

#[expect(
    clippy::many_single_char_names,
    reason = "the four parts of a dotted quad"
)]
/// glibc `inet_aton`: `a.b.c.d`, `a.b.c` (c 16 bits), `a.b` (b 24 bits), `a` (32 bits);
/// each part decimal, octal (`0`) or hex (`0x`).
fn inet_aton(s: &str) -> Option<Ipv4Addr> {
    let parts: Vec<u32> = s
        .split('.')
        .map(|p| {
            if let Some(h) = p.strip_prefix("0x").or_else(|| p.strip_prefix("0X")) {
                u32::from_str_radix(h, 16).ok()
            } else if p.len() > 1 && p.starts_with('0') {
                u32::from_str_radix(&p[1..], 8).ok()
            } else {
                p.parse().ok()
            }
        })
        .collect::<Option<_>>()?;
    let v = match parts.as_slice() {
        [a] => *a,
        [a, b] if *a < 256 && *b < 1 << 24 => a << 24 | b,
        [a, b, c] if *a < 256 && *b < 256 && *c < 1 << 16 => a << 24 | b << 16 | c,
        [a, b, c, d] if [a, b, c, d].iter().all(|x| **x < 256) => a << 24 | b << 16 | c << 8 | d,
        _ => return None,
    };
    Some(Ipv4Addr::from(v))
}

#[derive(Default)]
struct Seen {
    cmd: Option<Cmd>,
    opts: Vec<Opt>,
    svc: Option<SvcKey>,
    svc_port0: bool,
    sched: Option<String>,
    persistent: Option<u32>,
    netmask: Option<String>,
    flags: Option<String>,
    rs: Option<(IpAddr, u16, bool)>,
    fwd: Option<Fwd>,
    weight: Option<i32>,
    u: Option<u32>,
    l: Option<u32>,
    tun: Tun,
    sync: SyncDaemon,
    pe: Option<String>,
    set: Vec<String>,
    format: crate::Format,
    exact: bool,
    nosort: bool,
    help: bool,
    version: bool,
}

impl Seen {
    fn command(&mut self, c: Cmd) -> Result<(), ArgError> {
        if self.cmd.is_some() {
            return Err(fail("multiple commands specified"));
        }
        self.cmd = Some(c);
        Ok(())
    }

    fn opt(&mut self, o: Opt) -> Result<(), ArgError> {
        if self.opts.contains(&o) {
            return Err(fail(format!("multiple '{}' options specified", o.name())));
        }
        self.opts.push(o);
        Ok(())
    }
}

const TAKES_VALUE: &str = "tufsMbrwxy";

fn long_to_short(name: &str) -> Option<char> {
    Some(match name {
        "add-service" => 'A',
        "edit-service" => 'E',
        "delete-service" => 'D',
        "clear" => 'C',
        "restore" => 'R',
        "save" => 'S',
        "add-server" => 'a',
        "edit-server" => 'e',
        "delete-server" => 'd',
        "list" => 'L',
        "zero" => 'Z',
        "tcp-service" => 't',
        "udp-service" => 'u',
        "fwmark-service" => 'f',
        "scheduler" => 's',
        "persistent" => 'p',
        "netmask" => 'M',
        "real-server" => 'r',
        "gatewaying" => 'g',
        "ipip" => 'i',
        "masquerading" => 'm',
        "weight" => 'w',
        "u-threshold" => 'x',
        "l-threshold" => 'y',
        "numeric" => 'n',
        "connection" => 'c',
        "exact" => 'X',
        "ipv6" => '6',
        "ops" => 'o',
        "sched-flags" => 'b',
        "help" => 'h',
        "version" => 'v',
        _ => return None,
    })
}

/// Parses one invocation (`args` without the program name).
pub fn parse(args: &[String]) -> Result<Invocation, ArgError> {
    parse_with(args, &crate::Numeric)
}

/// [`parse`] with host and service names resolved by `names`; the command's values are
/// then checked by [`validate`], as the control API checks them.
pub fn parse_with(args: &[String], names: &dyn crate::Names) -> Result<Invocation, ArgError> {
    let inv = read_invocation(args, names)?;
    if let Invocation::Apply(cmd) = &inv {
        validate(cmd)?;
    }
    Ok(inv)
}

#[expect(
    clippy::many_single_char_names,
    reason = "s (state), i (cursor), a (argument) carry the parser"
)]
#[expect(
    clippy::too_many_lines,
    reason = "one table-like match over ipvsadm's options"
)]
fn read_invocation(args: &[String], names: &dyn crate::Names) -> Result<Invocation, ArgError> {
    let mut s = Seen::default();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        i += 1;
        // (option char or long-only name, inline value)
        let mut items: Vec<(String, Option<String>)> = Vec::new();
        if let Some(long) = a.strip_prefix("--") {
            let (name, val) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v.to_owned())),
                None => (long, None),
            };
            let key = long_to_short(name).map_or_else(|| name.to_owned(), |c| c.to_string());
            items.push((key, val));
        } else if a.len() > 1 && a.starts_with('-') {
            let chars: Vec<char> = a[1..].chars().collect();
            let mut k = 0;
            while k < chars.len() {
                let c = chars[k];
                k += 1;
                if TAKES_VALUE.contains(c) || c == 'p' {
                    let rest: String = chars[k..].iter().collect();
                    items.push((c.to_string(), (!rest.is_empty()).then_some(rest)));
                    break;
                }
                items.push((c.to_string(), None));
            }
        } else if s.cmd == Some(Cmd::Timeout) && s.set.len() < 3 {
            s.set.push(a.clone());
            continue;
        } else {
            return Err(fail(format!("unexpected argument {a}")));
        }
        for (key, inline) in items {
            let needs = key.len() == 1 && TAKES_VALUE.contains(key.as_str())
                || matches!(
                    key.as_str(),
                    "sctp-service"
                        | "pe"
                        | "tun-type"
                        | "tun-port"
                        | "start-daemon"
                        | "stop-daemon"
                        | "mcast-interface"
                        | "syncid"
                        | "mcast-group"
                        | "mcast-port"
                        | "mcast-ttl"
                        | "sync-maxlen"
                );
            let mut value = || -> Result<String, ArgError> {
                if let Some(v) = inline.clone() {
                    return Ok(v);
                }
                let v = args.get(i).cloned().ok_or_else(popt_fail)?;
                i += 1;
                Ok(v)
            };
            match key.as_str() {
                "A" => s.command(Cmd::Add)?,
                "E" => s.command(Cmd::Edit)?,
                "D" => s.command(Cmd::Del)?,
                "C" => s.command(Cmd::Flush)?,
                "R" => s.command(Cmd::Restore)?,
                "S" => s.command(Cmd::Save)?,
                "a" => s.command(Cmd::AddSrv)?,
                "e" => s.command(Cmd::EditSrv)?,
                "d" => s.command(Cmd::DelSrv)?,
                "L" | "l" => s.command(Cmd::List)?,
                "Z" => s.command(Cmd::Zero)?,
                "set" => s.command(Cmd::Timeout)?,
                "h" => s.help = true,
                "v" => s.version = true,
                "t" | "u" | "sctp-service" => {
                    s.opt(Opt::Service)?;
                    let v = value()?;
                    let proto = match key.as_str() {
                        "t" => Proto::Tcp,
                        "u" => Proto::Udp,
                        _ => Proto::Sctp,
                    };
                    let (addr, port) = parse_addr(&v, &proto.name().to_ascii_lowercase(), names)
                        .ok_or_else(|| fail("illegal virtual server address[:port] specified"))?;
                    s.svc_port0 = port == 0;
                    s.svc = Some(SvcKey::Addr { proto, addr, port });
                }
                "f" => {
                    s.opt(Opt::Service)?;
                    let v = value()?;
                    let mark = v
                        .parse::<u32>()
                        .ok()
                        .filter(|m| *m > 0)
                        .ok_or_else(|| fail(format!("invalid fwmark value `{v}' specified")))?;
                    s.svc = Some(SvcKey::Fwmark { mark, v6: false });
                }
                "6" => {
                    s.opt(Opt::Ipv6)?;
                    match &mut s.svc {
                        Some(SvcKey::Fwmark { v6, .. }) => *v6 = true,
                        _ => return Err(fail("-6 used before -f")),
                    }
                }
                "s" => {
                    s.opt(Opt::Scheduler)?;
                    s.sched = Some(value()?.chars().take(15).collect());
                }
                "p" => {
                    s.opt(Opt::Persistent)?;
                    // popt's optional argument: the next word unless it is an option.
                    let v = match inline {
                        Some(v) => Some(v),
                        None => match args.get(i) {
                            Some(n) if !n.starts_with('-') => {
                                i += 1;
                                Some(n.clone())
                            }
                            _ => None,
                        },
                    };
                    let t = match v {
                        None => 360,
                        Some(v) => v
                            .parse::<u32>()
                            .ok()
                            .filter(|t| (1..=2_678_400).contains(t))
                            .ok_or_else(|| {
                                fail(format!("invalid timeout value `{v}' specified"))
                            })?,
                    };
                    s.persistent = Some(t);
                }
                "M" => {
                    s.opt(Opt::Netmask)?;
                    s.netmask = Some(value()?);
                }
                "pe" => {
                    s.opt(Opt::Pe)?;
                    s.pe = Some(value()?);
                }
                "b" => {
                    s.opt(Opt::SchedFlags)?;
                    s.flags = Some(value()?);
                }
                "r" => {
                    s.opt(Opt::RealServer)?;
                    let v = value()?;
                    let (addr, port) = parse_addr(&v, "tcp", names)
                        .ok_or_else(|| fail("illegal real server address[:port] specified"))?;
                    let explicit = v.contains(':') && v.parse::<std::net::Ipv6Addr>().is_err();
                    s.rs = Some((addr, port, explicit));
                }
                // `--fullnat`: DPVS's ipvsadm (its `-b` is ipvsadm 1.31's --sched-flags).
                "g" | "i" | "m" | "fullnat" => {
                    s.opt(Opt::Fwd)?;
                    s.fwd = Some(match key.as_str() {
                        "g" => Fwd::Route,
                        "i" => Fwd::Tunnel,
                        "fullnat" => Fwd::FullNat,
                        _ => Fwd::Masq,
                    });
                }
                "w" => {
                    s.opt(Opt::Weight)?;
                    let v = value()?;
                    s.weight = Some(
                        v.parse::<i32>()
                            .ok()
                            .filter(|w| (0..=65535).contains(w))
                            .ok_or_else(|| fail("illegal weight specified"))?,
                    );
                }
                "x" | "y" => {
                    let (o, msg) = if key == "x" {
                        (Opt::UThreshold, "illegal u_threshold specified")
                    } else {
                        (Opt::LThreshold, "illegal l_threshold specified")
                    };
                    s.opt(o)?;
                    let v = value()?
                        .parse::<u32>()
                        .ok()
                        .filter(|t| i32::try_from(*t).is_ok())
                        .ok_or_else(|| fail(msg))?;
                    if key == "x" {
                        s.u = Some(v);
                    } else {
                        s.l = Some(v);
                    }
                }
                "n" => s.opt(Opt::Numeric)?,
                "c" => s.opt(Opt::Connection)?,
                "X" => {
                    s.opt(Opt::Exact)?;
                    s.exact = true;
                }
                "o" => s.opt(Opt::Ops)?,
                "timeout" => s.opt(Opt::Timeout)?,
                "stats" => {
                    s.opt(Opt::Stats)?;
                    s.format = crate::Format::Stats;
                }
                "rate" => {
                    s.opt(Opt::Rate)?;
                    s.format = crate::Format::Rate;
                }
                "thresholds" => {
                    s.opt(Opt::Thresholds)?;
                    s.format = crate::Format::Thresholds;
                }
                "persistent-conn" => {
                    s.opt(Opt::PersistentConn)?;
                    s.format = crate::Format::PersistentConn;
                }
                "tun-info" => {
                    s.opt(Opt::TunInfo)?;
                    s.format = crate::Format::TunInfo;
                }
                "tun-type" => {
                    s.opt(Opt::TunType)?;
                    let v = value()?;
                    s.tun.kind = Tun::NAMES
                        .iter()
                        .position(|n| *n == v)
                        .and_then(|i| u8::try_from(i).ok())
                        .ok_or_else(|| fail("illegal tunnel type specified"))?;
                }
                "tun-port" => {
                    s.opt(Opt::TunPort)?;
                    s.tun.port = value()?
                        .parse::<u16>()
                        .ok()
                        .filter(|p| *p >= 1)
                        .ok_or_else(|| fail("illegal tunnel port specified"))?;
                }
                "tun-nocsum" => s.opt(Opt::TunNocsum)?,
                "start-daemon" | "stop-daemon" => {
                    let start = key == "start-daemon";
                    s.command(if start {
                        Cmd::StartDaemon
                    } else {
                        Cmd::StopDaemon
                    })?;
                    s.sync.state = match value()?.as_str() {
                        "master" => "master".into(),
                        "backup" => "backup".into(),
                        _ if start => return Err(fail("illegal start-daemon parameter specified")),
                        _ => return Err(fail("illegal start_daemon specified")),
                    };
                }
                "daemon" => s.opt(Opt::Daemon)?,
                "mcast-interface" => {
                    s.opt(Opt::McastIfn)?;
                    let v = value()?;
                    if v.is_empty() || v.len() > 15 {
                        return Err(fail("illegal mcast-interface specified"));
                    }
                    s.sync.ifname = v;
                }
                "syncid" => {
                    s.opt(Opt::SyncId)?;
                    s.sync.syncid = value()?
                        .parse::<u8>()
                        .map_err(|_| fail("illegal syncid specified"))?;
                }
                "mcast-group" => {
                    s.opt(Opt::McastGroup)?;
                    let g = value()?
                        .parse::<IpAddr>()
                        .ok()
                        .filter(IpAddr::is_multicast)
                        .ok_or_else(|| fail("illegal mcast-group specified"))?;
                    s.sync.group = Some(g);
                }
                "mcast-port" => {
                    s.opt(Opt::McastPort)?;
                    s.sync.port = value()?
                        .parse::<u16>()
                        .ok()
                        .filter(|p| *p >= 1)
                        .ok_or_else(|| fail("illegal mcast-port specified"))?;
                }
                "mcast-ttl" => {
                    s.opt(Opt::McastTtl)?;
                    s.sync.ttl = value()?
                        .parse::<u8>()
                        .ok()
                        .filter(|t| *t >= 1)
                        .ok_or_else(|| fail("illegal mcast-ttl specified"))?;
                }
                "sync-maxlen" => {
                    s.opt(Opt::SyncMaxlen)?;
                    s.sync.maxlen = value()?
                        .parse::<u16>()
                        .ok()
                        .filter(|m| (1..=65507).contains(m))
                        .ok_or_else(|| fail("illegal sync-maxlen specified"))?;
                }
                "tun-csum" => {
                    s.opt(Opt::TunCsum)?;
                    s.tun.flags |= 1;
                }
                "tun-remcsum" => {
                    s.opt(Opt::TunRemcsum)?;
                    s.tun.flags |= 2;
                }
                "nosort" => {
                    s.opt(Opt::NoSort)?;
                    s.nosort = true;
                }
                "sort" => s.opt(Opt::Sort)?,
                _ => return Err(popt_fail()),
            }
            let _ = needs;
        }
    }
    finish(&s)
}

fn finish(s: &Seen) -> Result<Invocation, ArgError> {
    if s.help {
        return Ok(Invocation::Help);
    }
    if s.version {
        return Ok(Invocation::Version);
    }
    let cmd = s.cmd.unwrap_or(Cmd::List);
    for o in &s.opts {
        if !matches!(o, Opt::Sort | Opt::Ipv6) && !legal(cmd, *o) {
            return Err(fail(format!(
                "Illegal '{}' option with the '{}' command",
                o.name(),
                cmd.name()
            )));
        }
    }
    let need_svc = || -> Result<SvcKey, ArgError> {
        s.svc.ok_or_else(|| {
            fail(format!(
                "You need to supply the 'service-address' option for the '{}' command",
                cmd.name()
            ))
        })
    };
    let need_rs = || -> Result<(IpAddr, u16, bool), ArgError> {
        s.rs.ok_or_else(|| {
            fail(format!(
                "You need to supply the 'real-server' option for the '{}' command",
                cmd.name()
            ))
        })
    };
    Ok(match cmd {
        Cmd::Add | Cmd::Edit => {
            let id = need_svc()?;
            let sched = s.sched.clone().unwrap_or_else(|| "wlc".into());
            let v6 = id.is_v6();
            if s.svc_port0 && s.persistent.is_none() && matches!(id, SvcKey::Addr { .. }) {
                return Err(fail("Zero port specified for non-persistent service"));
            }
            let netmask = match &s.netmask {
                None => {
                    if v6 {
                        128
                    } else {
                        u32::MAX
                    }
                }
                Some(m) if v6 => m
                    .parse::<u32>()
                    .ok()
                    .filter(|p| (1..=128).contains(p))
                    .ok_or_else(|| fail("illegal ipv6 netmask specified"))?,
                Some(m) => inet_aton(m)
                    .map(u32::from)
                    .ok_or_else(|| fail("illegal virtual server persistent mask specified"))?,
            };
            let ops = s.opts.contains(&Opt::Ops);
            if ops
                && !matches!(
                    id,
                    SvcKey::Addr {
                        proto: Proto::Udp,
                        ..
                    } | SvcKey::Fwmark { .. }
                )
            {
                return Err(fail(
                    "One-Packet Scheduling is only for UDP virtual services",
                ));
            }
            let mut flags = [false; 3];
            if let Some(list) = &s.flags {
                for f in list.split(',') {
                    let (bit, only) = match f {
                        "flag-1" => (0, None),
                        "flag-2" => (1, None),
                        "flag-3" => (2, None),
                        "sh-fallback" => (0, Some("sh")),
                        "sh-port" => (1, Some("sh")),
                        "mh-fallback" => (0, Some("mh")),
                        "mh-port" => (1, Some("mh")),
                        _ => return Err(fail(format!("invalid scheduler flag `{f}'"))),
                    };
                    if only.is_some_and(|o| o != sched) {
                        return Err(fail(format!("incompatible scheduler flag `{f}'")));
                    }
                    flags[bit] = true;
                }
            }
            let spec = SvcSpec {
                id,
                sched,
                flags,
                persistent: s.persistent,
                netmask,
                ops,
                pe: s.pe.clone(),
            };
            Invocation::Apply(if cmd == Cmd::Add {
                Command::AddService(spec)
            } else {
                Command::EditService(spec)
            })
        }
        Cmd::Del => Invocation::Apply(Command::DelService(need_svc()?)),
        Cmd::Flush => Invocation::Apply(Command::Clear),
        Cmd::Zero => Invocation::Apply(Command::Zero(s.svc)),
        Cmd::AddSrv | Cmd::EditSrv | Cmd::DelSrv => {
            let id = need_svc()?;
            let (addr, mut port, explicit) = need_rs()?;
            let svc_port = match &id {
                SvcKey::Addr { port, .. } => Some(*port),
                SvcKey::Fwmark { .. } => None,
            };
            let fwd = s.fwd.unwrap_or(Fwd::Route);
            if let Some(sp) = svc_port {
                // Unspecified port: the service's; DR and TUN cannot remap ports.
                if !explicit || matches!(fwd, Fwd::Route | Fwd::Tunnel) {
                    port = sp;
                }
            }
            let svc_v6 = id.is_v6();
            if svc_v6 != addr.is_ipv6() && fwd != Fwd::Tunnel && cmd != Cmd::DelSrv {
                return Err(fail(
                    "Different address family is allowed only for tunneling servers",
                ));
            }
            if cmd == Cmd::DelSrv {
                Invocation::Apply(Command::DelDest(id, addr, port))
            } else {
                tunnel_check(s, fwd)?;
                let spec = DestSpec {
                    addr,
                    port,
                    fwd,
                    weight: s.weight.unwrap_or(1),
                    u_threshold: s.u.unwrap_or(0),
                    l_threshold: s.l.unwrap_or(0),
                    tun: s.tun,
                };
                Invocation::Apply(if cmd == Cmd::AddSrv {
                    Command::AddDest(id, spec)
                } else {
                    Command::EditDest(id, spec)
                })
            }
        }
        Cmd::Timeout => {
            if s.set.len() != 3 {
                return Err(popt_fail());
            }
            let mut t = [0u32; 3];
            for (k, v) in s.set.iter().enumerate() {
                t[k] = v
                    .parse::<u32>()
                    .ok()
                    .filter(|x| *x <= 2_678_400)
                    .ok_or_else(|| fail(format!("invalid timeout value `{v}' specified")))?;
            }
            Invocation::Apply(Command::SetTimeouts(t))
        }
        Cmd::Save => Invocation::Save {
            numeric: s.opts.contains(&Opt::Numeric),
        },
        Cmd::Restore => Invocation::Restore,
        Cmd::StartDaemon => {
            let mut d = s.sync.clone();
            if d.ifname.is_empty() {
                d.ifname = "eth0".into();
            }
            Invocation::Apply(Command::StartDaemon(d))
        }
        Cmd::StopDaemon => Invocation::Apply(Command::StopDaemon {
            state: s.sync.state.clone(),
            syncid: s.sync.syncid,
        }),
        Cmd::List => {
            let conn = s.opts.contains(&Opt::Connection);
            let timeout = s.opts.contains(&Opt::Timeout);
            if (conn || timeout)
                && matches!(
                    s.format,
                    crate::Format::Stats | crate::Format::Rate | crate::Format::Thresholds
                )
                || timeout && s.format == crate::Format::PersistentConn
            {
                return Err(fail("options conflicts in the list command"));
            }
            Invocation::List {
                opts: crate::ListOpts {
                    format: s.format,
                    exact: s.exact,
                    nosort: s.nosort,
                },
                svc: s.svc,
                timeout,
                connections: conn,
                numeric: s.opts.contains(&Opt::Numeric),
                daemon: s.opts.contains(&Opt::Daemon),
            }
        }
    })
}

/// The tunnel options `-S` prints for a `--tun-info` text (`ipip`, `gue:6080:+c`, `gre:-c`).
fn tunnel_rule(t: Tun) -> String {
    let flag = Tun::FLAG_OPTS[usize::from(t.flags.min(2))];
    match t.kind {
        Tun::GUE => format!(" --tun-type gue --tun-port {} {flag}", t.port),
        Tun::GRE => format!(" --tun-type gre {flag}"),
        _ => " --tun-type ipip".to_owned(),
    }
}

/// `-S -n`: the table as `-R` input (spec §6; thresholds are not saved).
pub fn save(services: &[crate::Service], nosort: bool) -> String {
    save_named(services, nosort, &crate::Numeric)
}

/// `-S` with names (without `-n`).
pub fn save_named(services: &[crate::Service], nosort: bool, names: &dyn crate::Names) -> String {
    use std::fmt::Write as _;
    let mut v: Vec<crate::Service> = services.to_vec();
    crate::sort(&mut v, nosort);
    let mut out = String::new();
    for s in &v {
        let svc = match &s.id {
            SvcKey::Addr { proto, addr, port } => {
                let p = match proto {
                    Proto::Tcp => "-t",
                    Proto::Udp => "-u",
                    Proto::Sctp => "--sctp-service",
                };
                let pr = proto.name().to_ascii_lowercase();
                format!("{p} {}", crate::anyname(*addr, *port, &pr, names))
            }
            SvcKey::Fwmark { mark, v6 } => format!("-f {mark}{}", if *v6 { " -6" } else { "" }),
        };
        let _ = write!(out, "-A {svc} -s {}", s.sched);
        if let Some(t) = s.persistent {
            let _ = write!(out, " -p {t}");
            if let Some(m) = s.shown_mask() {
                let _ = write!(out, " -M {m}");
            }
        }
        if let Some(pe) = &s.pe {
            let _ = write!(out, " --pe {pe}");
        }
        if s.ops {
            out.push_str(" -o");
        }
        if s.flags.iter().any(|f| *f) {
            let _ = write!(out, " -b {}", crate::flag_names(&s.sched, s.flags));
        }
        out.push('\n');
        let pr = match &s.id {
            SvcKey::Addr { proto, .. } => proto.name().to_ascii_lowercase(),
            SvcKey::Fwmark { .. } => "tcp".to_owned(),
        };
        for d in &s.dests {
            let a = crate::anyname(d.addr, d.port, &pr, names);
            let f = match d.fwd {
                Fwd::Masq => "-m",
                Fwd::FullNat => "--fullnat",
                Fwd::Tunnel => "-i",
                Fwd::Route | Fwd::Local => "-g",
            };
            let _ = write!(out, "-a {svc} -r {a} {f} -w {}", d.weight);
            if d.fwd == Fwd::Tunnel {
                out.push_str(&tunnel_rule(d.tun.unwrap_or_default()));
            }
            out.push('\n');
        }
    }
    out
}

/// `-R`: one restore line as arguments (blanks split, every `ipvsadm` token dropped).
pub fn restore_line(line: &str) -> Vec<String> {
    line.split([' ', '\t', '\r'])
        .filter(|t| !t.is_empty() && *t != "ipvsadm")
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests panic on failure")]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Invocation, ArgError> {
        parse(&s.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
    }

    #[test]
    fn bundles_and_commands() {
        let Invocation::Apply(Command::AddService(s)) = p("-At 10.0.0.1:80 -s rr -p").unwrap()
        else {
            panic!()
        };
        assert_eq!(s.sched, "rr");
        assert_eq!(s.persistent, Some(360));
        assert_eq!(s.netmask, u32::MAX);
        let Invocation::Apply(Command::AddDest(_, d)) =
            p("-a -t 10.0.0.1:80 -r 10.0.0.2:8080 -m -w 3").unwrap()
        else {
            panic!()
        };
        assert_eq!((d.port, d.weight, d.fwd), (8080, 3, Fwd::Masq));
        // DR forces the service's port.
        let Invocation::Apply(Command::AddDest(_, d)) =
            p("-a -t 10.0.0.1:80 -r 10.0.0.2:8080").unwrap()
        else {
            panic!()
        };
        assert_eq!((d.port, d.fwd), (80, Fwd::Route));
        assert!(matches!(p("-Ln").unwrap(), Invocation::List { .. }));
        assert!(matches!(p("").unwrap(), Invocation::List { .. }));
    }

    #[test]
    fn tunnel_options_follow_ipvsadms_matrix() {
        let ok = |s: &str| match p(s).unwrap() {
            Invocation::Apply(Command::AddDest(_, d)) => (d.tun.kind, d.tun.port, d.tun.flags),
            other => panic!("{other:?}"),
        };
        let e = |s: &str| p(s).unwrap_err().msg;
        let a = "-a -t 10.0.0.1:80 -r 10.0.0.2 -i";
        assert_eq!(ok(a), (0, 0, 0));
        assert_eq!(ok(&format!("{a} --tun-type ipip")), (0, 0, 0));
        assert_eq!(
            ok(&format!("{a} --tun-type gue --tun-port 6080 --tun-csum")),
            (1, 6080, 1)
        );
        assert_eq!(
            ok(&format!("{a} --tun-type gue --tun-port 6080")),
            (1, 6080, 0)
        );
        assert_eq!(ok(&format!("{a} --tun-type gre --tun-csum")), (2, 0, 1));
        assert_eq!(
            e(&format!("{a} --tun-type gre --tun-remcsum")),
            "Illegal 'tun-remcsum' option with the 'gre' tunnel type"
        );
        assert_eq!(
            e("-a -t 10.0.0.1:80 -r 10.0.0.2 -g --tun-type gue"),
            "Tunnel options conflict with forward method"
        );
        assert_eq!(
            e(&format!("{a} --tun-type gue")),
            "You need to supply the 'tun-port' option for the 'gue' tunnel type"
        );
        assert_eq!(
            e(&format!("{a} --tun-port 1")),
            "Illegal 'tun-port' option with the 'ipip' tunnel type"
        );
        assert_eq!(
            e(&format!("{a} --tun-type gue --tun-port 1 --tun-csum --tun-remcsum")),
            "The option 'tun-remcsum' conflicts with the 'tun-csum' option in the 'gue' tunnel type"
        );
        assert_eq!(
            e(&format!("{a} --tun-type vxlan")),
            "illegal tunnel type specified"
        );
        assert_eq!(
            e(&format!("{a} --tun-type gue --tun-port 0")),
            "illegal tunnel port specified"
        );
        assert_eq!(
            e("-A -t 10.0.0.1:80 --tun-type gue"),
            "Illegal 'tun-type' option with the 'add-service' command"
        );
    }

    #[test]
    fn sync_daemon_commands() {
        match p("--start-daemon master --syncid 7 --mcast-group 224.0.0.90 --mcast-ttl 2").unwrap()
        {
            Invocation::Apply(Command::StartDaemon(d)) => {
                assert_eq!(
                    (d.state.as_str(), d.ifname.as_str(), d.syncid, d.ttl),
                    ("master", "eth0", 7, 2)
                );
                assert_eq!(d.group, Some("224.0.0.90".parse().unwrap()));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            p("--stop-daemon backup").unwrap(),
            Invocation::Apply(Command::StopDaemon {
                state: "backup".into(),
                syncid: 0
            })
        );
        let e = |s: &str| p(s).unwrap_err().msg;
        assert_eq!(
            e("--start-daemon primary"),
            "illegal start-daemon parameter specified"
        );
        assert_eq!(e("--stop-daemon primary"), "illegal start_daemon specified");
        assert_eq!(
            e("--start-daemon master --syncid 256"),
            "illegal syncid specified"
        );
        assert_eq!(
            e("--stop-daemon master --mcast-ttl 3"),
            "Illegal 'mcast-ttl' option with the 'stop-daemon' command"
        );
        assert!(matches!(
            p("-L --daemon").unwrap(),
            Invocation::List { daemon: true, .. }
        ));
    }

    #[test]
    fn errors_are_ipvsadms() {
        let e = |s: &str| p(s).unwrap_err();
        assert_eq!(e("-A -D -t 1.2.3.4:80").msg, "multiple commands specified");
        assert_eq!(
            e("-A -t 1.2.3.4:80 -w 2").msg,
            "Illegal 'weight' option with the 'add-service' command"
        );
        assert_eq!(
            e("-a -t 1.2.3.4:80 -r 1.1.1.1 -w 70000").msg,
            "illegal weight specified"
        );
        assert_eq!(
            e("-A -t 1.2.3.4:80 -s rr -s wrr").msg,
            "multiple 'scheduler' options specified"
        );
        assert_eq!(
            e("-A -t 80").msg,
            "illegal virtual server address[:port] specified"
        );
        assert_eq!(
            e("-A -t 1.2.3.4").msg,
            "Zero port specified for non-persistent service"
        );
        assert_eq!(
            e("-A -t 1.2.3.4:80 -b sh-port").msg,
            "incompatible scheduler flag `sh-port'"
        );
        assert_eq!(
            e("-A -t 1.2.3.4:80 -o").msg,
            "One-Packet Scheduling is only for UDP virtual services"
        );
        assert_eq!(
            e("-L --stats --timeout").msg,
            "options conflicts in the list command"
        );
        assert_eq!(e("-A foo").msg, "unexpected argument foo");
        assert_eq!(e("-A -t 1.2.3.4:80 --bogus").code, 255);
        assert_eq!(e("-6 -f 1").msg, "-6 used before -f");
    }

    #[test]
    fn inet_aton_short_forms() {
        assert_eq!(inet_aton("10.1"), Some(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(inet_aton("0x7f.1"), Some(Ipv4Addr::LOCALHOST));
        assert_eq!(inet_aton("1.2.3.256"), None);
    }

    #[test]
    fn restore_tokens() {
        assert_eq!(
            restore_line("ipvsadm -A -t 1.2.3.4:80\t-s rr\r"),
            ["-A", "-t", "1.2.3.4:80", "-s", "rr"]
        );
    }
}
