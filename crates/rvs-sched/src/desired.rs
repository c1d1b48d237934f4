//! The desired state of a director, as every data plane takes it: services, their real
//! servers and the timeouts. Built from a configuration by `rvs-desired` (this crate
//! knows nothing of keepalived.conf), changed at run time by `rvs adm`.

use crate::sched::Algo;
use crate::service::{Flags, Fwd, Persistence, SvcKey};
use crate::table::Timeouts;
use std::net::IpAddr;

/// A real server as the configuration wants it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredDest {
    pub addr: IpAddr,
    pub port: u16,
    pub weight: i32,
    pub fwd: Fwd,
    /// Encapsulation of a `Tunnel` real server.
    pub tun: crate::Tun,
    pub u_threshold: u32,
    pub l_threshold: u32,
}

/// A virtual service as the configuration wants it.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredService {
    pub key: SvcKey,
    pub algo: Algo,
    pub flags: Flags,
    pub persistence: Option<Persistence>,
    pub mh_size: Option<usize>,
    /// Real servers in config order.
    pub dests: Vec<DesiredDest>,
    pub sorry: Option<DesiredDest>,
    /// `virtual_server` connect timeout (seconds), used by the proxy to connect.
    pub connect_timeout: std::time::Duration,
    /// rvs extension: PROXY protocol version towards real servers.
    pub proxy_protocol: Option<u8>,
    /// Forwarding method of the service (`lb_kind`).
    pub fwd: Fwd,
}

impl DesiredService {
    /// A service with no real servers and every setting at its default (no flags, no
    /// persistence, DR, the kernel's `mh` table size, 5 s connect timeout).
    pub fn new(key: SvcKey, algo: Algo) -> DesiredService {
        DesiredService {
            key,
            algo,
            flags: Flags::default(),
            persistence: None,
            mh_size: None,
            dests: Vec::new(),
            sorry: None,
            connect_timeout: std::time::Duration::from_secs(5),
            proxy_protocol: None,
            fwd: Fwd::Route,
        }
    }
}

/// The desired state of a director: services and timeouts.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Desired {
    pub timeouts: Timeouts,
    pub services: Vec<DesiredService>,
    /// tcp, tcpfin, udp to write to a kernel's IPVS (`lvs_timeouts`, `ipvsadm --set`);
    /// 0 leaves one unchanged. `None`: the kernel's own stay (an administrator's
    /// `ipvsadm --set` is not undone by defaults).
    pub kernel_timeouts: Option<[u32; 3]>,
}
