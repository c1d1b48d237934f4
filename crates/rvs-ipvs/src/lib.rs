//! `rvs-ipvs`: kernel IPVS over generic netlink (family `"IPVS"`, spec
//! `ipvs-netlink.md`): a blocking client for services, destinations, timeouts and
//! counters, and [`reconcile`], which turns a desired state into the difference of
//! commands (never a flush, never a delete-and-re-add of an unchanged entry).
//!
//! Invariants: every request is acknowledged or answered with the kernel's errno; a
//! service rvs did not create or adopt is never touched; real servers are added in
//! configuration order, so the kernel's list (newest first) is keepalived's.

pub mod wire;

use rvs_sched::desired::{Desired, DesiredDest, DesiredService};
use rvs_sched::{Fwd, Proto, SvcKey};
use std::collections::HashSet;
use std::net::IpAddr;
use wire::{attr, cmd, Attrs, Reply};

#[derive(Debug, thiserror::Error)]
pub enum IpvsError {
    #[error("the kernel has no IPVS (no generic netlink family \"IPVS\"): load ip_vs (modprobe ip_vs) or use --dataplane proxy|xdp")]
    NoIpvs,
    #[error("netlink: {0}")]
    Io(#[from] std::io::Error),
    #[error("{op}: {}", std::io::Error::from_raw_os_error(*.errno))]
    Kernel { op: &'static str, errno: i32 },
    #[error("malformed reply from the kernel")]
    Malformed,
}

impl From<wire::Malformed> for IpvsError {
    fn from(_: wire::Malformed) -> IpvsError {
        IpvsError::Malformed
    }
}

/// Counters of a service or real server (the kernel's 64-bit view).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub conns: u64,
    pub inpkts: u64,
    pub outpkts: u64,
    pub inbytes: u64,
    pub outbytes: u64,
}

/// A service as the kernel holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    pub key: SvcKey,
    pub sched: String,
    pub flags: u32,
    /// Persistence timeout, seconds.
    pub timeout: u32,
    /// IPv4: the mask (host order value of the network-order mask); IPv6: prefix length.
    pub netmask: u32,
    pub stats: Stats,
}

/// A real server as the kernel holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dest {
    pub addr: IpAddr,
    pub port: u16,
    /// 0 masq, 1 local, 2 tunnel, 3 route.
    pub fwd: u32,
    pub weight: u32,
    pub u_thresh: u32,
    pub l_thresh: u32,
    pub active: u32,
    pub inactive: u32,
    pub persist: u32,
    pub tun: rvs_sched::Tun,
    pub stats: Stats,
}

pub const F_PERSISTENT: u32 = 0x01;
pub const F_ONEPACKET: u32 = 0x04;
pub const F_SCHED1: u32 = 0x08;
pub const F_SCHED2: u32 = 0x10;
pub const F_SCHED3: u32 = 0x20;

/// With `RVS_IPVS_TRACE=FILE`, every message sent and received is appended to FILE as
/// `send|recv HEX` lines (how the kernel fixtures of the codec tests were recorded).
fn trace(dir: &str, b: &[u8]) {
    use std::io::Write as _;
    let Some(path) = std::env::var_os("RVS_IPVS_TRACE") else {
        return;
    };
    let hex = b
        .iter()
        .fold(String::with_capacity(b.len() * 2), |mut h, x| {
            use std::fmt::Write as _;
            let _ = write!(h, "{x:02x}");
            h
        });
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = writeln!(f, "{dir} {hex}");
    }
}

/// A generic netlink socket bound to the IPVS family.
pub struct Ipvs {
    sock: netlink_sys::Socket,
    family: u16,
    seq: u32,
}

fn proto_code(p: Proto) -> u16 {
    u16::from(p.number())
}

/// The identifying attributes of a service.
pub fn svc_id_attrs(key: &SvcKey) -> Attrs {
    let mut a = Attrs::default();
    match key {
        SvcKey::Addr { proto, addr, port } => {
            a.u16(attr::SVC_AF, wire::af_of(*addr))
                .u16(attr::SVC_PROTOCOL, proto_code(*proto))
                .put(attr::SVC_ADDR, &wire::inet_addr(*addr))
                .be16(attr::SVC_PORT, *port);
        }
        SvcKey::Fwmark { mark, v6 } => {
            a.u16(
                attr::SVC_AF,
                if *v6 { wire::AF_INET6 } else { wire::AF_INET },
            )
            .u32(attr::SVC_FWMARK, *mark);
        }
    }
    a
}

impl Ipvs {
    /// Sets the socket's receive buffer (keepalived's `lvs_netlink_cmd_rcv_bufs`; with
    /// `force`, beyond `net.core.rmem_max`, which needs `CAP_NET_ADMIN`).
    pub fn set_recv_buffer(&self, bytes: usize, force: bool) -> std::io::Result<()> {
        if force {
            rustix::net::sockopt::set_socket_recv_buffer_size_force(&self.sock, bytes)?;
        } else {
            rustix::net::sockopt::set_socket_recv_buffer_size(&self.sock, bytes)?;
        }
        Ok(())
    }

    /// Opens the socket and resolves the family.
    pub fn open() -> Result<Ipvs, IpvsError> {
        let mut sock = netlink_sys::Socket::new(netlink_sys::protocols::NETLINK_GENERIC)?;
        sock.bind_auto()?;
        let mut me = Ipvs {
            sock,
            family: wire::GENL_ID_CTRL,
            seq: 1,
        };
        let mut a = Attrs::default();
        a.string(wire::CTRL_ATTR_FAMILY_NAME, "IPVS");
        let replies = match me.request("resolving the IPVS family", wire::CTRL_CMD_GETFAMILY, 0, &a)
        {
            Err(IpvsError::Kernel { errno, .. }) if errno == libc::ENOENT => {
                return Err(IpvsError::NoIpvs)
            }
            r => r?,
        };
        let id = replies
            .iter()
            .flat_map(|(_, b)| wire::attrs(b).collect::<Vec<_>>())
            .find(|(k, _)| *k == wire::CTRL_ATTR_FAMILY_ID)
            .and_then(|(_, p)| wire::get_u16(p))
            .ok_or(IpvsError::NoIpvs)?;
        me.family = id;
        Ok(me)
    }

    /// Sends one request and collects its replies (payload attributes of each message).
    fn request(
        &mut self,
        op: &'static str,
        command: u8,
        extra_flags: u16,
        attrs: &Attrs,
    ) -> Result<Vec<(u8, Vec<u8>)>, IpvsError> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let msg = wire::message(
            self.family,
            wire::F_REQUEST | wire::F_ACK | extra_flags,
            seq,
            command,
            attrs,
        );
        trace("send", &msg);
        self.sock.send(&msg, 0)?;
        let dump = extra_flags & wire::F_DUMP != 0;
        let mut out = Vec::new();
        loop {
            let mut buf = vec![0u8; 65_536];
            let n = self.sock.recv(&mut &mut buf[..], 0)?;
            trace("recv", &buf[..n]);
            for r in wire::messages(&buf[..n], seq)? {
                match r {
                    Reply::Error(0) if !dump => return Ok(out),
                    Reply::Error(0) => {}
                    Reply::Error(e) => {
                        return Err(IpvsError::Kernel {
                            op,
                            errno: e.saturating_neg(),
                        })
                    }
                    Reply::Done => return Ok(out),
                    // GETFAMILY and GET_CONFIG answer with data, then the ack.
                    Reply::Data { cmd, attrs } => out.push((cmd, attrs.to_vec())),
                }
            }
        }
    }

    /// Every service, in the kernel's order.
    pub fn services(&mut self) -> Result<Vec<Service>, IpvsError> {
        let replies = self.request(
            "listing services",
            cmd::GET_SERVICE,
            wire::F_DUMP,
            &Attrs::default(),
        )?;
        let mut out = Vec::new();
        for (_, b) in replies {
            for (k, nest) in wire::attrs(&b) {
                if k == attr::CMD_SERVICE {
                    out.push(parse_service(nest).ok_or(IpvsError::Malformed)?);
                }
            }
        }
        Ok(out)
    }

    /// The real servers of a service, newest first (the kernel's list order).
    pub fn dests(&mut self, key: &SvcKey) -> Result<Vec<Dest>, IpvsError> {
        let mut a = Attrs::default();
        a.nested(attr::CMD_SERVICE, &svc_id_attrs(key));
        let replies = self.request("listing real servers", cmd::GET_DEST, wire::F_DUMP, &a)?;
        let v6 = match key {
            SvcKey::Addr { addr, .. } => addr.is_ipv6(),
            SvcKey::Fwmark { v6, .. } => *v6,
        };
        let mut out = Vec::new();
        for (_, b) in replies {
            for (k, nest) in wire::attrs(&b) {
                if k == attr::CMD_DEST {
                    out.push(parse_dest(nest, v6).ok_or(IpvsError::Malformed)?);
                }
            }
        }
        Ok(out)
    }

    fn service_cmd(
        &mut self,
        op: &'static str,
        c: u8,
        s: &DesiredService,
    ) -> Result<(), IpvsError> {
        self.request(op, c, 0, &service_attrs(s)).map(|_| ())
    }

    pub fn new_service(&mut self, s: &DesiredService) -> Result<(), IpvsError> {
        self.service_cmd("adding a service", cmd::NEW_SERVICE, s)
    }

    pub fn set_service(&mut self, s: &DesiredService) -> Result<(), IpvsError> {
        self.service_cmd("editing a service", cmd::SET_SERVICE, s)
    }

    /// Empties the kernel's table: every service, whoever made it (`ipvsadm -C`).
    pub fn flush(&mut self) -> Result<(), IpvsError> {
        self.request("flushing the table", cmd::FLUSH, 0, &Attrs::default())
            .map(|_| ())
    }

    pub fn del_service(&mut self, key: &SvcKey) -> Result<(), IpvsError> {
        let mut top = Attrs::default();
        top.nested(attr::CMD_SERVICE, &svc_id_attrs(key));
        self.request("deleting a service", cmd::DEL_SERVICE, 0, &top)
            .map(|_| ())
    }

    fn dest_cmd(
        &mut self,
        op: &'static str,
        c: u8,
        key: &SvcKey,
        d: &DesiredDest,
    ) -> Result<(), IpvsError> {
        self.request(op, c, 0, &dest_attrs(key, d)).map(|_| ())
    }

    pub fn new_dest(&mut self, key: &SvcKey, d: &DesiredDest) -> Result<(), IpvsError> {
        self.dest_cmd("adding a real server", cmd::NEW_DEST, key, d)
    }

    pub fn set_dest(&mut self, key: &SvcKey, d: &DesiredDest) -> Result<(), IpvsError> {
        self.dest_cmd("editing a real server", cmd::SET_DEST, key, d)
    }

    /// Deletes the real server the kernel holds at `addr`:`port` (its stored port).
    pub fn del_dest(&mut self, key: &SvcKey, addr: IpAddr, port: u16) -> Result<(), IpvsError> {
        let mut da = Attrs::default();
        da.u16(attr::DEST_ADDR_FAMILY, wire::af_of(addr))
            .put(attr::DEST_ADDR, &wire::inet_addr(addr))
            .be16(attr::DEST_PORT, port);
        let mut top = Attrs::default();
        top.nested(attr::CMD_SERVICE, &svc_id_attrs(key))
            .nested(attr::CMD_DEST, &da);
        self.request("deleting a real server", cmd::DEL_DEST, 0, &top)
            .map(|_| ())
    }

    /// tcp, tcpfin, udp timeouts in seconds.
    pub fn timeouts(&mut self) -> Result<[u32; 3], IpvsError> {
        let r = self.request("reading timeouts", cmd::GET_CONFIG, 0, &Attrs::default())?;
        let mut t = [0u32; 3];
        for (_, b) in r {
            for (k, p) in wire::attrs(&b) {
                let v = wire::get_u32(p).unwrap_or(0);
                match k {
                    attr::CMD_TIMEOUT_TCP => t[0] = v,
                    attr::CMD_TIMEOUT_TCP_FIN => t[1] = v,
                    attr::CMD_TIMEOUT_UDP => t[2] = v,
                    _ => {}
                }
            }
        }
        Ok(t)
    }

    pub fn set_timeouts(&mut self, t: [u32; 3]) -> Result<(), IpvsError> {
        let mut a = Attrs::default();
        a.u32(attr::CMD_TIMEOUT_TCP, t[0])
            .u32(attr::CMD_TIMEOUT_TCP_FIN, t[1])
            .u32(attr::CMD_TIMEOUT_UDP, t[2]);
        self.request("setting timeouts", cmd::SET_CONFIG, 0, &a)
            .map(|_| ())
    }
}

/// The attributes of `NEW_SERVICE` / `SET_SERVICE` for `s` (keepalived's encodings).
pub fn service_attrs(s: &DesiredService) -> Attrs {
    let mut a = svc_id_attrs(&s.key);
    let v6 = matches!(s.key, SvcKey::Addr { addr, .. } if addr.is_ipv6())
        || matches!(s.key, SvcKey::Fwmark { v6: true, .. });
    let (flags, timeout, netmask) = service_settings(s, v6);
    a.string(attr::SVC_SCHED_NAME, s.algo.name());
    let mut f = Vec::with_capacity(8);
    f.extend_from_slice(&flags.to_ne_bytes());
    f.extend_from_slice(&u32::MAX.to_ne_bytes());
    a.put(attr::SVC_FLAGS, &f)
        .u32(attr::SVC_TIMEOUT, timeout)
        .u32(attr::SVC_NETMASK, netmask);
    let mut top = Attrs::default();
    top.nested(attr::CMD_SERVICE, &a);
    top
}

/// The attributes of `NEW_DEST` / `SET_DEST` for `d` in the service `key`.
pub fn dest_attrs(key: &SvcKey, d: &DesiredDest) -> Attrs {
    let mut da = Attrs::default();
    da.u16(attr::DEST_ADDR_FAMILY, wire::af_of(d.addr))
        .put(attr::DEST_ADDR, &wire::inet_addr(d.addr))
        .be16(attr::DEST_PORT, dest_port(key, d))
        .u32(attr::DEST_FWD_METHOD, d.fwd.code())
        .u32(
            attr::DEST_WEIGHT,
            u32::try_from(d.weight.max(0)).unwrap_or(0),
        )
        .u8(attr::DEST_TUN_TYPE, d.tun.kind)
        .be16(attr::DEST_TUN_PORT, d.tun.port)
        .u16(attr::DEST_TUN_FLAGS, u16::from(d.tun.flags))
        .u32(attr::DEST_U_THRESH, d.u_threshold)
        .u32(attr::DEST_L_THRESH, d.l_threshold);
    let mut top = Attrs::default();
    top.nested(attr::CMD_SERVICE, &svc_id_attrs(key))
        .nested(attr::CMD_DEST, &da);
    top
}

/// The dest port the kernel stores: DR and TUN real servers of address services take
/// the service's port (ipvsadm and keepalived send it), fwmark services port 0... or
/// the configured one.
fn dest_port(key: &SvcKey, d: &DesiredDest) -> u16 {
    match key {
        SvcKey::Addr { port, .. } if d.fwd != Fwd::Masq => *port,
        _ => d.port,
    }
}

/// flags, persistence timeout, netmask, as keepalived sends them.
fn service_settings(s: &DesiredService, v6: bool) -> (u32, u32, u32) {
    let mut flags = 0;
    if s.flags.fallback {
        flags |= F_SCHED1;
    }
    if s.flags.port {
        flags |= F_SCHED2;
    }
    if s.flags.sched3 {
        flags |= F_SCHED3;
    }
    if s.flags.ops {
        flags |= F_ONEPACKET;
    }
    let (timeout, prefix) = match s.persistence {
        Some(p) => {
            flags |= F_PERSISTENT;
            (p.timeout_s, p.prefix)
        }
        None => (0, if v6 { 128 } else { 32 }),
    };
    let netmask = if v6 {
        u32::from(prefix)
    } else {
        // The mask in network byte order, as a native-endian u32 on the wire.
        let m = u32::MAX
            .checked_shl(32 - u32::from(prefix.min(32)))
            .unwrap_or(0);
        u32::from_ne_bytes(m.to_be_bytes())
    };
    (flags, timeout, netmask)
}

fn parse_stats(b: &[u8]) -> Stats {
    let mut s = Stats::default();
    for (k, p) in wire::attrs(b) {
        let v = wire::get_u64(p).unwrap_or(0);
        match k {
            attr::STATS_CONNS => s.conns = v,
            attr::STATS_INPKTS => s.inpkts = v,
            attr::STATS_OUTPKTS => s.outpkts = v,
            attr::STATS_INBYTES => s.inbytes = v,
            attr::STATS_OUTBYTES => s.outbytes = v,
            _ => {}
        }
    }
    s
}

/// A service from the nested `IPVS_CMD_ATTR_SERVICE` of a kernel reply.
pub fn parse_service(b: &[u8]) -> Option<Service> {
    let mut af = wire::AF_INET;
    let (mut proto, mut addr, mut port, mut mark) = (0u16, None, 0u16, None);
    let (mut sched, mut flags, mut timeout, mut netmask) = (String::new(), 0, 0, 0);
    let mut stats = Stats::default();
    for (k, p) in wire::attrs(b) {
        match k {
            attr::SVC_AF => af = wire::get_u16(p)?,
            attr::SVC_PROTOCOL => proto = wire::get_u16(p)?,
            attr::SVC_ADDR => addr = Some(p.to_vec()),
            attr::SVC_PORT => port = wire::get_be16(p)?,
            attr::SVC_FWMARK => mark = wire::get_u32(p),
            attr::SVC_SCHED_NAME => sched = wire::get_string(p),
            attr::SVC_FLAGS => flags = wire::get_u32(p)?,
            attr::SVC_TIMEOUT => timeout = wire::get_u32(p)?,
            attr::SVC_NETMASK => netmask = wire::get_u32(p)?,
            attr::SVC_STATS64 => stats = parse_stats(p),
            _ => {}
        }
    }
    let key = match mark {
        Some(m) => SvcKey::Fwmark {
            mark: m,
            v6: af == wire::AF_INET6,
        },
        None => SvcKey::Addr {
            proto: match proto {
                17 => Proto::Udp,
                132 => Proto::Sctp,
                _ => Proto::Tcp,
            },
            addr: wire::get_addr(&addr?, af)?,
            port,
        },
    };
    Some(Service {
        key,
        sched,
        flags,
        timeout,
        netmask,
        stats,
    })
}

/// A real server from the nested `IPVS_CMD_ATTR_DEST` of a kernel reply.
pub fn parse_dest(b: &[u8], v6: bool) -> Option<Dest> {
    let mut af = if v6 { wire::AF_INET6 } else { wire::AF_INET };
    let mut raw = None;
    let mut d = Dest {
        addr: IpAddr::from([0, 0, 0, 0]),
        port: 0,
        fwd: 0,
        weight: 0,
        u_thresh: 0,
        l_thresh: 0,
        active: 0,
        inactive: 0,
        persist: 0,
        tun: rvs_sched::Tun::default(),
        stats: Stats::default(),
    };
    for (k, p) in wire::attrs(b) {
        match k {
            attr::DEST_ADDR => raw = Some(p.to_vec()),
            attr::DEST_ADDR_FAMILY => af = wire::get_u16(p)?,
            attr::DEST_PORT => d.port = wire::get_be16(p)?,
            attr::DEST_FWD_METHOD => d.fwd = wire::get_u32(p)? & 7,
            attr::DEST_WEIGHT => d.weight = wire::get_u32(p)?,
            attr::DEST_U_THRESH => d.u_thresh = wire::get_u32(p)?,
            attr::DEST_L_THRESH => d.l_thresh = wire::get_u32(p)?,
            attr::DEST_ACTIVE_CONNS => d.active = wire::get_u32(p)?,
            attr::DEST_INACT_CONNS => d.inactive = wire::get_u32(p)?,
            attr::DEST_PERSIST_CONNS => d.persist = wire::get_u32(p)?,
            attr::DEST_TUN_TYPE => d.tun.kind = *p.first()?,
            attr::DEST_TUN_PORT => d.tun.port = wire::get_be16(p)?,
            attr::DEST_TUN_FLAGS => {
                d.tun.flags = u8::try_from(wire::get_u16(p)?).unwrap_or(0);
            }
            attr::DEST_STATS64 => d.stats = parse_stats(p),
            _ => {}
        }
    }
    d.addr = wire::get_addr(&raw?, af)?;
    Some(d)
}

/// What [`reconcile`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    pub services_added: usize,
    pub services_changed: usize,
    pub services_removed: usize,
    pub services_adopted: usize,
    pub dests_added: usize,
    pub dests_changed: usize,
    pub dests_removed: usize,
}

/// Brings the kernel's table to `want` by difference. `managed` holds the services rvs
/// owns (created, or found at start and adopted because the config has them); a kernel
/// service outside it is left alone. Returns what changed, or every error (the rest is
/// still applied).
pub fn reconcile<S: std::hash::BuildHasher>(
    ipvs: &mut Ipvs,
    want: &Desired,
    managed: &mut HashSet<SvcKey, S>,
) -> Result<Report, Vec<IpvsError>> {
    let mut rep = Report::default();
    let mut errs = Vec::new();
    let current = match ipvs.services() {
        Ok(s) => s,
        Err(e) => return Err(vec![e]),
    };
    for s in &want.services {
        let v6 = matches!(s.key, SvcKey::Addr { addr, .. } if addr.is_ipv6())
            || matches!(s.key, SvcKey::Fwmark { v6: true, .. });
        match current.iter().find(|c| c.key == s.key) {
            None => match ipvs.new_service(s) {
                Ok(()) => rep.services_added += 1,
                Err(e) => {
                    errs.push(e);
                    continue;
                }
            },
            Some(c) => {
                if managed.insert(s.key) {
                    rep.services_adopted += 1;
                }
                let (flags, timeout, netmask) = service_settings(s, v6);
                let user_flags = c.flags & !0x02; // HASHED is the kernel's
                if c.sched != s.algo.name()
                    || user_flags != flags
                    || c.timeout != timeout
                    || c.netmask != netmask
                {
                    match ipvs.set_service(s) {
                        Ok(()) => rep.services_changed += 1,
                        Err(e) => errs.push(e),
                    }
                }
            }
        }
        managed.insert(s.key);
        let have = match ipvs.dests(&s.key) {
            Ok(d) => d,
            Err(e) => {
                errs.push(e);
                continue;
            }
        };
        for h in &have {
            let still = s
                .dests
                .iter()
                .any(|d| d.addr == h.addr && dest_port(&s.key, d) == h.port);
            if !still {
                match ipvs.del_dest(&s.key, h.addr, h.port) {
                    Ok(()) => rep.dests_removed += 1,
                    Err(e) => errs.push(e),
                }
            }
        }
        for d in &s.dests {
            let port = dest_port(&s.key, d);
            match have.iter().find(|h| h.addr == d.addr && h.port == port) {
                None => match ipvs.new_dest(&s.key, d) {
                    Ok(()) => rep.dests_added += 1,
                    Err(e) => errs.push(e),
                },
                Some(h) => {
                    let same = h.fwd == d.fwd.code()
                        && i64::from(h.weight) == i64::from(d.weight.max(0))
                        && h.u_thresh == d.u_threshold
                        && h.l_thresh == d.l_threshold
                        && (d.fwd != Fwd::Tunnel || h.tun == d.tun);
                    if !same {
                        match ipvs.set_dest(&s.key, d) {
                            Ok(()) => rep.dests_changed += 1,
                            Err(e) => errs.push(e),
                        }
                    }
                }
            }
        }
    }
    if let Some(t) = want.kernel_timeouts {
        match ipvs.timeouts() {
            Ok(cur) if (0..3).any(|i| t[i] != 0 && t[i] != cur[i]) => {
                if let Err(e) = ipvs.set_timeouts(t) {
                    errs.push(e);
                }
            }
            Ok(_) => {}
            Err(e) => errs.push(e),
        }
    }
    let gone: Vec<SvcKey> = managed
        .iter()
        .filter(|k| !want.services.iter().any(|s| s.key == **k))
        .copied()
        .collect();
    for k in gone {
        managed.remove(&k);
        if current.iter().any(|c| c.key == k) {
            match ipvs.del_service(&k) {
                Ok(()) => rep.services_removed += 1,
                Err(e) => errs.push(e),
            }
        }
    }
    if errs.is_empty() {
        Ok(rep)
    } else {
        Err(errs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_netmask_goes_in_network_order() {
        let key = SvcKey::Addr {
            proto: Proto::Tcp,
            addr: IpAddr::from([198, 18, 0, 50]),
            port: 80,
        };
        let s = DesiredService {
            persistence: Some(rvs_sched::Persistence {
                timeout_s: 300,
                prefix: 24,
            }),
            ..DesiredService::new(key, rvs_sched::Algo::Rr)
        };
        let (flags, timeout, netmask) = service_settings(&s, false);
        assert_eq!((flags, timeout), (F_PERSISTENT, 300));
        assert_eq!(netmask.to_ne_bytes(), [255, 255, 255, 0]);
    }

    #[test]
    fn no_ipvs_is_a_clear_error() {
        // Where the kernel has no IPVS (this project's CI hosts; the VM test covers the
        // real thing), opening says so and what to do.
        if std::path::Path::new("/proc/net/ip_vs").exists() {
            return;
        }
        match Ipvs::open() {
            Err(e @ IpvsError::NoIpvs) => assert!(e.to_string().contains("load ip_vs")),
            Err(e) => panic!("{e}"),
            Ok(_) => panic!("an IPVS family without /proc/net/ip_vs"),
        }
    }
}

/// A connection synchronisation daemon (`ipvsadm --start-daemon`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncDaemon {
    /// `master` or `backup`.
    pub state: String,
    pub ifname: String,
    pub syncid: u32,
    /// 0: the kernel's default.
    pub maxlen: u16,
    pub group: Option<IpAddr>,
    pub port: u16,
    pub ttl: u8,
}

impl SyncDaemon {
    fn state_code(&self) -> u32 {
        if self.state == "backup" {
            2
        } else {
            1
        }
    }

    /// ipvsadm's `-L --daemon` line.
    pub fn line(&self) -> String {
        use std::fmt::Write as _;
        let mut l = format!(
            "{} sync daemon (mcast={}, syncid={}",
            self.state, self.ifname, self.syncid
        );
        if self.maxlen != 0 {
            let _ = write!(l, ", maxlen={}", self.maxlen);
        }
        if let Some(g) = self.group {
            let _ = write!(l, ", group={g}");
        }
        if self.port != 0 {
            let _ = write!(l, ", port={}", self.port);
        }
        if self.ttl != 0 {
            let _ = write!(l, ", ttl={}", self.ttl);
        }
        l.push(')');
        l
    }
}

impl Ipvs {
    /// Starts a sync daemon (`IPVS_CMD_NEW_DAEMON`).
    pub fn new_daemon(&mut self, d: &SyncDaemon) -> Result<(), IpvsError> {
        let mut a = Attrs::default();
        a.u32(attr::DAEMON_STATE, d.state_code())
            .string(attr::DAEMON_MCAST_IFN, &d.ifname)
            .u32(attr::DAEMON_SYNC_ID, d.syncid);
        if d.maxlen != 0 {
            a.u16(attr::DAEMON_SYNC_MAXLEN, d.maxlen);
        }
        match d.group {
            Some(IpAddr::V4(g)) => {
                a.put(attr::DAEMON_MCAST_GROUP, &g.octets());
            }
            Some(IpAddr::V6(g)) => {
                a.put(attr::DAEMON_MCAST_GROUP6, &g.octets());
            }
            None => {}
        }
        if d.port != 0 {
            a.u16(attr::DAEMON_MCAST_PORT, d.port);
        }
        if d.ttl != 0 {
            a.u8(attr::DAEMON_MCAST_TTL, d.ttl);
        }
        let mut top = Attrs::default();
        top.nested(attr::CMD_DAEMON, &a);
        self.request("starting the sync daemon", cmd::NEW_DAEMON, 0, &top)
            .map(|_| ())
    }

    /// Zeroes the counters of one service, or of all (`IPVS_CMD_ZERO`).
    pub fn zero(&mut self, key: Option<&SvcKey>) -> Result<(), IpvsError> {
        let mut top = Attrs::default();
        if let Some(k) = key {
            top.nested(attr::CMD_SERVICE, &svc_id_attrs(k));
        }
        self.request("zeroing counters", cmd::ZERO, 0, &top)
            .map(|_| ())
    }

    /// Stops the `master` or `backup` sync daemon.
    pub fn del_daemon(&mut self, state: &str) -> Result<(), IpvsError> {
        let d = SyncDaemon {
            state: state.to_owned(),
            ..SyncDaemon::default()
        };
        let mut a = Attrs::default();
        a.u32(attr::DAEMON_STATE, d.state_code());
        let mut top = Attrs::default();
        top.nested(attr::CMD_DAEMON, &a);
        self.request("stopping the sync daemon", cmd::DEL_DAEMON, 0, &top)
            .map(|_| ())
    }

    /// The running sync daemons (master first).
    pub fn daemons(&mut self) -> Result<Vec<SyncDaemon>, IpvsError> {
        let r = self.request(
            "listing sync daemons",
            cmd::GET_DAEMON,
            wire::F_DUMP,
            &Attrs::default(),
        )?;
        let mut out = Vec::new();
        for (_, b) in r {
            for (k, nest) in wire::attrs(&b) {
                if k != attr::CMD_DAEMON {
                    continue;
                }
                let mut d = SyncDaemon::default();
                for (kk, p) in wire::attrs(nest) {
                    match kk {
                        attr::DAEMON_STATE => {
                            d.state = if wire::get_u32(p) == Some(2) {
                                "backup".into()
                            } else {
                                "master".into()
                            };
                        }
                        attr::DAEMON_MCAST_IFN => d.ifname = wire::get_string(p),
                        attr::DAEMON_SYNC_ID => d.syncid = wire::get_u32(p).unwrap_or(0),
                        attr::DAEMON_SYNC_MAXLEN => d.maxlen = wire::get_u16(p).unwrap_or(0),
                        attr::DAEMON_MCAST_GROUP => d.group = wire::get_addr(p, wire::AF_INET),
                        attr::DAEMON_MCAST_GROUP6 => d.group = wire::get_addr(p, wire::AF_INET6),
                        attr::DAEMON_MCAST_PORT => d.port = wire::get_u16(p).unwrap_or(0),
                        attr::DAEMON_MCAST_TTL => d.ttl = p.first().copied().unwrap_or(0),
                        _ => {}
                    }
                }
                out.push(d);
            }
        }
        Ok(out)
    }
}

pub use rvs_types::Conn;

fn hex_addr(s: &str) -> Option<IpAddr> {
    if s.contains(':') {
        return s.parse().ok();
    }
    u32::from_str_radix(s, 16)
        .ok()
        .map(|v| IpAddr::from(v.to_be_bytes()))
}

/// Parses `/proc/net/ip_vs_conn` text: `Pro FromIP FPrt ToIP TPrt DestIP DPrt State
/// Expires ...`, IPv4 addresses and ports in hex, IPv6 addresses written out.
pub fn parse_conns(text: &str) -> Vec<Conn> {
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            let port = |s: &str| u16::from_str_radix(s, 16).ok();
            Some(Conn {
                proto: (*w.first()?).to_owned(),
                caddr: hex_addr(w.get(1)?)?,
                cport: port(w.get(2)?)?,
                vaddr: hex_addr(w.get(3)?)?,
                vport: port(w.get(4)?)?,
                daddr: hex_addr(w.get(5)?)?,
                dport: port(w.get(6)?)?,
                state: (*w.get(7)?).to_owned(),
                expires_s: w.get(8)?.parse().ok()?,
            })
        })
        .collect()
}

/// The kernel's connection table.
pub fn connections() -> std::io::Result<Vec<Conn>> {
    Ok(parse_conns(&std::fs::read_to_string(
        "/proc/net/ip_vs_conn",
    )?))
}

#[cfg(test)]
mod conn_tests {
    use super::*;

    #[test]
    fn proc_ip_vs_conn_lines() {
        let text = "Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires PEName PEData\n\
                    TCP C6120164 9C40 C6120132 0050 C612000B 1F90 ESTABLISHED     897\n\
                    UDP 2001:0db8:0000:0000:0000:0000:0000:0001 0035 2001:0db8:0000:0000:0000:0000:0000:0050 0035 2001:0db8:0000:0000:0000:0000:0000:000b 0035 UDP             299\n";
        let c = parse_conns(text);
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].caddr, IpAddr::from([198, 18, 1, 100]));
        assert_eq!((c[0].cport, c[0].vport, c[0].dport), (40000, 80, 8080));
        assert_eq!((c[0].state.as_str(), c[0].expires_s), ("ESTABLISHED", 897));
        assert_eq!(c[1].daddr, "2001:db8::b".parse::<IpAddr>().unwrap());
    }
}
