//! `rvs-types`: the vocabulary at the bottom of the crate graph, defined once. A virtual
//! service's key ([`SvcKey`]) is the same value in the scheduling core, the data planes,
//! the ipvsadm listings and commands, the control API and the metrics; each prints it
//! through one of the methods here, never by hand. So are a real server's forwarding method
//! ([`Fwd`]) and tunnel ([`Tun`]), and a connection as the listings show it ([`Conn`]).

use serde::{Deserialize, Serialize};
use std::net::{IpAddr, SocketAddr};

/// A virtual service's transport protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Proto {
    Tcp,
    Udp,
    Sctp,
}

impl Proto {
    /// `TCP`, `UDP`, `SCTP`, as ipvsadm prints them.
    pub fn name(self) -> &'static str {
        match self {
            Proto::Tcp => "TCP",
            Proto::Udp => "UDP",
            Proto::Sctp => "SCTP",
        }
    }

    /// The IP protocol number (`IPPROTO_TCP` 6, `IPPROTO_UDP` 17, `IPPROTO_SCTP` 132).
    pub fn number(self) -> u8 {
        match self {
            Proto::Tcp => 6,
            Proto::Udp => 17,
            Proto::Sctp => 132,
        }
    }

    /// From the IP protocol number; `None` for another protocol.
    pub fn from_number(n: u8) -> Option<Proto> {
        match n {
            6 => Some(Proto::Tcp),
            17 => Some(Proto::Udp),
            132 => Some(Proto::Sctp),
            _ => None,
        }
    }

    /// `tcp`, `udp`, `sctp`, as keepalived's logs and rvs's metrics print them.
    pub fn lower(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
            Proto::Sctp => "sctp",
        }
    }
}

/// A virtual service: protocol, address and port, or a firewall mark (IPv4 or IPv6).
///
/// `Display` prints it as keepalived's logs do (`[10.0.0.1]:tcp:80`, `FWM 7`), so rvs's
/// lines read like the ones operators grep for; [`SvcKey::metric_label`] is the label
/// value of the metrics (`tcp/10.0.0.1:80`, `fwm/7`, `fwm/7/v6`). The control API carries
/// it as `rvs_api::ServiceKey` (`{"proto": "tcp", "addr": …, "port": …}` or
/// `{"fwmark": 7, "family": "inet"}`); this type's own serde form is internal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SvcKey {
    Addr {
        proto: Proto,
        addr: IpAddr,
        port: u16,
    },
    Fwmark {
        mark: u32,
        v6: bool,
    },
}

impl SvcKey {
    /// Whether the service is IPv6 (its address, or `-6` for a fwmark service).
    pub fn is_v6(&self) -> bool {
        match self {
            SvcKey::Addr { addr, .. } => addr.is_ipv6(),
            SvcKey::Fwmark { v6, .. } => *v6,
        }
    }

    /// The label value of the metrics: `tcp/10.0.0.1:80`, `fwm/7`, `fwm/7/v6`.
    pub fn metric_label(&self) -> String {
        match self {
            SvcKey::Addr { proto, addr, port } => {
                format!("{}/{}", proto.lower(), SocketAddr::new(*addr, *port))
            }
            SvcKey::Fwmark { mark, v6 } => format!("fwm/{mark}{}", if *v6 { "/v6" } else { "" }),
        }
    }
}

impl std::fmt::Display for SvcKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SvcKey::Addr { proto, addr, port } => write!(f, "[{addr}]:{}:{port}", proto.lower()),
            SvcKey::Fwmark { mark, .. } => write!(f, "FWM {mark}"),
        }
    }
}

/// How a real server is reached: ipvsadm's four methods, in the kernel's order
/// (`IP_VS_CONN_F_MASQ` 0, `LOCALNODE` 1, `TUNNEL` 2, `DROUTE` 3).
///
/// `Local` is what the kernel reports for a real server that is one of the director's own
/// addresses; ipvsadm saves it as `-g`, and rvs forwards it as `Route` ([`Fwd::applied`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Fwd {
    Masq,
    Local,
    Tunnel,
    Route,
    /// FULLNAT (`lb_kind FNAT`): source and destination rewritten, the source from the
    /// service's local addresses. Not a stock kernel method: DPVS's number and name.
    FullNat,
}

impl Fwd {
    /// The kernel's number (`IPVS_DEST_ATTR_FWD_METHOD`).
    pub fn code(self) -> u32 {
        match self {
            Fwd::Masq => 0,
            Fwd::Local => 1,
            Fwd::Tunnel => 2,
            Fwd::Route => 3,
            Fwd::FullNat => 5,
        }
    }

    /// From the kernel's number (the low three bits of the connection flags).
    pub fn of_code(code: u32) -> Option<Fwd> {
        match code & 7 {
            0 => Some(Fwd::Masq),
            1 => Some(Fwd::Local),
            2 => Some(Fwd::Tunnel),
            3 => Some(Fwd::Route),
            5 => Some(Fwd::FullNat),
            _ => None,
        }
    }

    /// NAT or FULLNAT: the director sees both directions and may map the port.
    pub fn is_nat(self) -> bool {
        matches!(self, Fwd::Masq | Fwd::FullNat)
    }

    /// The method a data plane applies: `Local` is saved and applied as `-g` (ipvsadm
    /// spec §6).
    #[must_use]
    pub fn applied(self) -> Fwd {
        match self {
            Fwd::Local => Fwd::Route,
            f => f,
        }
    }

    /// `Masq`, `Local`, `Tunnel`, `Route`, as ipvsadm's listings print it (`FullNat` as
    /// DPVS's ipvsadm does).
    pub fn name(self) -> &'static str {
        match self {
            Fwd::Masq => "Masq",
            Fwd::Local => "Local",
            Fwd::Tunnel => "Tunnel",
            Fwd::Route => "Route",
            Fwd::FullNat => "FullNat",
        }
    }
}

/// The encapsulation of a `Tunnel` real server (`--tun-type`, keepalived's `lvs_method TUN
/// type ...`), in the kernel's numbers: kind (0 ipip, 1 gue, 2 gre), the GUE destination
/// port, flags (0 nocsum, 1 csum, 2 remcsum).
///
/// `Display` prints ipvsadm's `--tun-info` text: `ipip`, `gue:PORT:FLAGS`, `gre:FLAGS` with
/// flags `-c`, `+c`, `r+c`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct Tun {
    pub kind: u8,
    pub port: u16,
    pub flags: u8,
}

impl Tun {
    pub const IPIP: u8 = 0;
    pub const GUE: u8 = 1;
    pub const GRE: u8 = 2;
    /// ipvsadm's names of the kinds, by number.
    pub const NAMES: [&'static str; 3] = ["ipip", "gue", "gre"];
    /// ipvsadm's options for the flags, by number.
    pub const FLAG_OPTS: [&'static str; 3] = ["--tun-nocsum", "--tun-csum", "--tun-remcsum"];

    /// Whether the kind and flags are ones the kernel knows.
    pub fn is_valid(self) -> bool {
        self.kind <= Tun::GRE && self.flags <= 2
    }
}

impl std::fmt::Display for Tun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let flags = ["-c", "+c", "r+c"][usize::from(self.flags.min(2))];
        match self.kind {
            Tun::GUE => write!(f, "gue:{}:{flags}", self.port),
            Tun::GRE => write!(f, "gre:{flags}"),
            _ => f.write_str("ipip"),
        }
    }
}

/// How a client's packet reaches a real server from the director, as the
/// forwarding-path probe sends it (`rvs_forwarding_path_check`, `rvs doctor`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathVia {
    /// LVS-DR: the packet as the client sent it, in a frame to the real server's MAC.
    Mac,
    /// LVS-TUN: the packet inside IP-in-IP (protocol 4) to the real server's address,
    /// routed by the kernel (a TUN real server may sit behind routers).
    Ipip,
}

/// A real server to probe along its forwarding path for a VIP and port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PathTarget {
    /// The VIP and the service's port (for LVS-NAT's route check: the real server's own
    /// address and port).
    pub vip: std::net::SocketAddrV4,
    pub rip: std::net::Ipv4Addr,
    pub via: PathVia,
}

/// A BGP community (RFC 1997), written `ASN:VALUE` (`65000:100`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Community(pub u16, pub u16);

impl std::fmt::Display for Community {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.0, self.1)
    }
}

impl std::str::FromStr for Community {
    type Err = String;
    fn from_str(s: &str) -> Result<Community, String> {
        let bad = || format!("'{s}' is not a BGP community (ASN:VALUE, each 0-65535)");
        let (a, v) = s.split_once(':').ok_or_else(bad)?;
        Ok(Community(
            a.parse().map_err(|_| bad())?,
            v.parse().map_err(|_| bad())?,
        ))
    }
}

/// A VIP announced to the routers by the BGP speaker (a host route: /32 or /128), with
/// the attributes it carries.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Announcement {
    pub vip: IpAddr,
    pub communities: Vec<Community>,
    /// The multi-exit discriminator (`None`: not sent).
    pub med: Option<u32>,
}

/// One entry of a connection table as ipvsadm lists it (`ipvsadm -Lc`): the proxy's,
/// the XDP program's flows, the kernel's `/proc/net/ip_vs_conn`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conn {
    /// `TCP`, `UDP`, `SCTP`, or `IP` for a fwmark persistence template.
    pub proto: String,
    pub expires_s: u64,
    /// `ESTABLISHED`, `FIN_WAIT`, ..., `UDP`; templates `NONE`/`ASSURED`.
    pub state: String,
    pub caddr: IpAddr,
    pub cport: u16,
    pub vaddr: IpAddr,
    pub vport: u16,
    pub daddr: IpAddr,
    pub dport: u16,
}

/// Identifies one run of a checker: the daemon hands each checker it starts a number it
/// never hands out again, so events still queued from a checker a reload stopped are
/// recognised as stale instead of landing on whatever now sits at the checker's
/// position in the config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CheckId(pub u64);

/// What a checker reports: a state change, or a new weight (`misc_dynamic`, a tracked
/// file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckEvent {
    Changed {
        id: CheckId,
        up: bool,
        detail: String,
    },
    Weight {
        id: CheckId,
        weight: i32,
    },
}

impl CheckEvent {
    /// The checker run that reported it.
    pub fn id(&self) -> CheckId {
        match self {
            CheckEvent::Changed { id, .. } | CheckEvent::Weight { id, .. } => *id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn communities_read_back_what_they_print() {
        let c: Community = "65000:100".parse().unwrap_or(Community(0, 0));
        assert_eq!(c, Community(65000, 100));
        assert_eq!(c.to_string(), "65000:100");
        for bad in ["65000", "65536:1", "a:b", "1:2:3", ""] {
            assert!(bad.parse::<Community>().is_err(), "{bad}");
        }
    }

    #[test]
    fn one_way_to_print_each_form() {
        let k = SvcKey::Addr {
            proto: Proto::Udp,
            addr: "fd00:198:18::1".parse().unwrap_or(IpAddr::from([0u8; 16])),
            port: 53,
        };
        assert_eq!(k.to_string(), "[fd00:198:18::1]:udp:53");
        assert_eq!(k.metric_label(), "udp/[fd00:198:18::1]:53");
        let m = SvcKey::Fwmark { mark: 7, v6: true };
        assert_eq!(m.to_string(), "FWM 7");
        assert_eq!(m.metric_label(), "fwm/7/v6");
        assert!(m.is_v6() && k.is_v6());
    }

    #[test]
    fn forwarding_and_tunnels_print_as_ipvsadm() {
        for f in [Fwd::Masq, Fwd::Local, Fwd::Tunnel, Fwd::Route, Fwd::FullNat] {
            assert_eq!(Fwd::of_code(f.code()), Some(f));
        }
        assert_eq!(Fwd::of_code(4), None);
        assert_eq!(Fwd::Local.applied(), Fwd::Route);
        assert_eq!(Fwd::Local.name(), "Local");
        let gue = Tun {
            kind: Tun::GUE,
            port: 6080,
            flags: 2,
        };
        assert_eq!(gue.to_string(), "gue:6080:r+c");
        assert_eq!(
            Tun {
                kind: Tun::GRE,
                port: 0,
                flags: 1
            }
            .to_string(),
            "gre:+c"
        );
        assert_eq!(Tun::default().to_string(), "ipip");
        assert!(
            gue.is_valid()
                && !Tun {
                    kind: 3,
                    port: 0,
                    flags: 0
                }
                .is_valid()
        );
    }
}
