//! `rvs-types`: the vocabulary at the bottom of the crate graph, defined once. A virtual
//! service's key ([`SvcKey`]) is the same value in the scheduling core, the data planes,
//! the ipvsadm listings and commands, the control API and the metrics; each prints it
//! through one of the methods here, never by hand.

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
}
