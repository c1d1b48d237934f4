//! rtnetlink: interfaces (index, MAC, link state), their addresses, and the VIPs — added
//! with the config's prefix, `dev`, `label`, `scope` and `brd`, removed by the same key.

use futures_util::stream::TryStreamExt as _;
use rtnetlink::packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage, AddressScope,
};
use rtnetlink::packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::Handle;
use rvs_conf::model::VipAddr;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("netlink: {0}")]
    Netlink(#[from] rtnetlink::Error),
    #[error("netlink socket: {0}")]
    Io(#[from] std::io::Error),
    #[error("no interface named {0}")]
    NoSuchInterface(String),
    #[error("interface {0} exists and is not this instance's VMAC (another MAC address)")]
    VmacTaken(String),
    #[error("bad {what} '{value}' for {vip}")]
    BadOption {
        what: &'static str,
        value: String,
        vip: IpAddr,
    },
    #[error("route '{route}' cannot be built: {why}")]
    BadRoute { route: String, why: String },
}

/// What the driver needs of an interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkInfo {
    pub index: u32,
    pub name: String,
    pub mac: [u8; 6],
    /// Administratively up and running (carrier).
    pub up: bool,
    pub mtu: u32,
}

impl LinkInfo {
    fn from_msg(m: &LinkMessage) -> Option<LinkInfo> {
        let mut name = None;
        let mut mac = [0u8; 6];
        let mut mtu = 1500;
        for a in &m.attributes {
            match a {
                LinkAttribute::IfName(n) => name = Some(n.clone()),
                LinkAttribute::Address(a) if a.len() == 6 => mac.copy_from_slice(a),
                LinkAttribute::Mtu(m) => mtu = *m,
                _ => {}
            }
        }
        Some(LinkInfo {
            index: m.header.index,
            name: name?,
            mac,
            up: link_up(m.header.flags),
            mtu,
        })
    }
}

fn link_up(f: LinkFlags) -> bool {
    f.contains(LinkFlags::Up) && f.contains(LinkFlags::Running)
}

/// A netlink connection driven by its own task.
#[derive(Clone)]
pub struct Netlink {
    handle: Handle,
}

fn is_errno(e: &rtnetlink::Error, errno: i32) -> bool {
    matches!(e, rtnetlink::Error::NetlinkError(m) if m.raw_code() == -errno)
}

/// Sets a netlink socket's receive buffer (`*_rcv_bufs`, `_force` beyond `rmem_max`).
fn set_bufs(sock: &rtnetlink::sys::Socket, b: rvs_conf::model::RcvBufs) -> Result<(), LinkError> {
    let Some(size) = b.size else {
        return Ok(());
    };
    let size = usize::try_from(size).unwrap_or(usize::MAX);
    let r = if b.force {
        rustix::net::sockopt::set_socket_recv_buffer_size_force(sock, size)
    } else {
        rustix::net::sockopt::set_socket_recv_buffer_size(sock, size)
    };
    r.map_err(|e| LinkError::Io(e.into()))
}

impl Netlink {
    pub fn new() -> Result<Netlink, LinkError> {
        Netlink::with_bufs(rvs_conf::model::RcvBufs::default())
    }

    /// A connection whose socket has this receive buffer (`vrrp_netlink_cmd_rcv_bufs`).
    pub fn with_bufs(bufs: rvs_conf::model::RcvBufs) -> Result<Netlink, LinkError> {
        use rtnetlink::sys::AsyncSocket as _;
        let (mut conn, handle, _) = rtnetlink::new_connection()?;
        set_bufs(conn.socket_mut().socket_ref(), bufs)?;
        tokio::spawn(conn);
        Ok(Netlink { handle })
    }

    /// The interface a VIP goes on: its own `dev` when that names another interface
    /// than the instance's `iface`, else `own` (the instance's interface, or its VMAC).
    pub async fn vip_link(
        &self,
        vip: &VipAddr,
        iface: &str,
        own: &LinkInfo,
    ) -> Result<LinkInfo, LinkError> {
        match &vip.dev {
            Some(d) if d != iface => self.link(d).await,
            _ => Ok(own.clone()),
        }
    }

    pub async fn link(&self, name: &str) -> Result<LinkInfo, LinkError> {
        let mut s = self
            .handle
            .link()
            .get()
            .match_name(name.to_owned())
            .execute();
        match s.try_next().await {
            Ok(Some(m)) => {
                LinkInfo::from_msg(&m).ok_or_else(|| LinkError::NoSuchInterface(name.into()))
            }
            Ok(None) => Err(LinkError::NoSuchInterface(name.into())),
            Err(e) if is_errno(&e, libc::ENODEV) => Err(LinkError::NoSuchInterface(name.into())),
            Err(e) => Err(e.into()),
        }
    }

    /// keepalived's `use_vmac`: the macvlan `name` (private mode) on `base` with the
    /// virtual router MAC, up. One that already has that MAC is reused, so a reload keeps
    /// a MASTER's VIPs on it.
    pub async fn ensure_vmac(
        &self,
        name: &str,
        base: u32,
        mac: [u8; 6],
    ) -> Result<LinkInfo, LinkError> {
        if let Ok(l) = self.link(name).await {
            if l.mac != mac {
                return Err(LinkError::VmacTaken(name.into()));
            }
            let up = rtnetlink::LinkUnspec::new_with_index(l.index).up().build();
            self.handle.link().set(up).execute().await?;
            return self.link(name).await;
        }
        let m = rtnetlink::LinkMacVlan::new(
            name,
            base,
            rtnetlink::packet_route::link::MacVlanMode::Private,
        )
        .address(mac.to_vec())
        .up()
        .build();
        self.handle.link().add(m).execute().await?;
        self.link(name).await
    }

    /// Deletes an interface (a VMAC rvs created).
    pub async fn del_link(&self, index: u32) -> Result<(), LinkError> {
        self.handle.link().del(index).execute().await?;
        Ok(())
    }

    /// Every link (for the initial state of tracked interfaces).
    pub async fn links(&self) -> Result<Vec<LinkInfo>, LinkError> {
        let mut s = self.handle.link().get().execute();
        let mut out = Vec::new();
        while let Some(m) = s.try_next().await? {
            out.extend(LinkInfo::from_msg(&m));
        }
        Ok(out)
    }

    /// Every address of the host (of every interface).
    pub async fn all_addrs(&self) -> Result<std::collections::HashSet<IpAddr>, LinkError> {
        let mut s = self.handle.address().get().execute();
        let mut out = std::collections::HashSet::new();
        while let Some(m) = s.try_next().await? {
            out.extend(address_of(&m));
        }
        Ok(out)
    }

    /// The addresses of an interface, in the kernel's order, with their prefix lengths.
    pub async fn addrs(&self, index: u32) -> Result<Vec<(IpAddr, u8)>, LinkError> {
        let mut s = self
            .handle
            .address()
            .get()
            .set_link_index_filter(index)
            .execute();
        let mut out = Vec::new();
        while let Some(m) = s.try_next().await? {
            if m.header.index != index {
                continue;
            }
            if let Some(ip) = address_of(&m) {
                out.push((ip, m.header.prefix_len));
            }
        }
        Ok(out)
    }

    /// The primary address of the family: the first IPv4 address, or the first IPv6
    /// link-local one, skipping `exclude` (our VIPs, possibly left by a predecessor).
    pub async fn primary(
        &self,
        index: u32,
        v6: bool,
        exclude: &[IpAddr],
    ) -> Result<Option<IpAddr>, LinkError> {
        Ok(self
            .addrs(index)
            .await?
            .into_iter()
            .map(|(a, _)| a)
            .filter(|a| !exclude.contains(a))
            .find(|a| match a {
                IpAddr::V4(_) => !v6,
                IpAddr::V6(x) => v6 && x.is_unicast_link_local(),
            }))
    }

    fn vip_message(index: u32, vip: &VipAddr) -> Result<AddressMessage, LinkError> {
        let mut m = AddressMessage::default();
        m.header.index = index;
        m.header.prefix_len = vip.prefix_len;
        m.header.scope = match vip.scope.as_deref() {
            None | Some("global" | "universe") => AddressScope::Universe,
            Some("site") => AddressScope::Site,
            Some("link") => AddressScope::Link,
            Some("host") => AddressScope::Host,
            Some("nowhere") => AddressScope::Nowhere,
            Some(n) => AddressScope::Other(n.parse().map_err(|_| LinkError::BadOption {
                what: "scope",
                value: n.into(),
                vip: vip.address,
            })?),
        };
        match vip.address {
            IpAddr::V4(a) => {
                m.header.family = AddressFamily::Inet;
                m.attributes.push(AddressAttribute::Local(vip.address));
                m.attributes.push(AddressAttribute::Address(vip.address));
                if let Some(b) = vip.brd.as_deref() {
                    let brd = match b {
                        "+" => Some(broadcast(a, vip.prefix_len)),
                        "-" => None,
                        s => Some(s.parse::<Ipv4Addr>().map_err(|_| LinkError::BadOption {
                            what: "brd",
                            value: s.into(),
                            vip: vip.address,
                        })?),
                    };
                    m.attributes.extend(brd.map(AddressAttribute::Broadcast));
                }
                if let Some(l) = &vip.label {
                    m.attributes.push(AddressAttribute::Label(l.clone()));
                }
            }
            IpAddr::V6(_) => {
                m.header.family = AddressFamily::Inet6;
                // keepalived adds IPv6 VIPs without duplicate address detection: a VIP
                // moves between routers, DAD would hold it tentative for a second.
                m.header.flags = AddressHeaderFlags::Nodad;
                m.attributes.push(AddressAttribute::Address(vip.address));
                m.attributes
                    .push(AddressAttribute::Flags(AddressFlags::Nodad));
            }
        }
        Ok(m)
    }

    /// Adds a VIP; one already there counts as added.
    pub async fn add_vip(&self, index: u32, vip: &VipAddr) -> Result<(), LinkError> {
        let m = Self::vip_message(index, vip)?;
        let mut req = self
            .handle
            .address()
            .add(index, vip.address, vip.prefix_len);
        *req.message_mut() = m;
        match req.execute().await {
            Err(e) if is_errno(&e, libc::EEXIST) => Ok(()),
            r => Ok(r?),
        }
    }

    /// Installs (`add`, replacing one with the same key) or removes a `virtual_routes`
    /// line; removing one that is not there is not an error.
    pub async fn route(&self, r: &crate::plan::RoutePlan, add: bool) -> Result<(), LinkError> {
        use rtnetlink::packet_route::route::RouteType;
        use rtnetlink::RouteMessageBuilder;
        fn bad<E: std::fmt::Debug>(text: &str) -> impl Fn(E) -> LinkError + '_ {
            move |e| LinkError::BadRoute {
                route: text.to_owned(),
                why: format!("{e:?}"),
            }
        }
        let bad = bad(&r.text);
        let mut b = RouteMessageBuilder::<IpAddr>::new()
            .destination_prefix(r.dest, r.prefix)
            .map_err(&bad)?;
        if let Some(v) = r.via {
            b = b.gateway(v).map_err(&bad)?;
        }
        if let Some(s) = r.src {
            b = b.pref_source(s).map_err(&bad)?;
        }
        if let Some(d) = &r.dev {
            b = b.output_interface(self.link(d).await?.index);
        }
        if let Some(t) = r.table {
            b = b.table_id(t);
        }
        if let Some(m) = r.metric {
            b = b.priority(m);
        }
        b = b.kind(match r.kind {
            crate::plan::RouteKind::Unicast => RouteType::Unicast,
            crate::plan::RouteKind::Blackhole => RouteType::BlackHole,
            crate::plan::RouteKind::Unreachable => RouteType::Unreachable,
            crate::plan::RouteKind::Prohibit => RouteType::Prohibit,
            crate::plan::RouteKind::Throw => RouteType::Throw,
        });
        let msg = b.build();
        if add {
            Ok(self.handle.route().add(msg).replace().execute().await?)
        } else {
            match self.handle.route().del(msg).execute().await {
                Err(e) if is_errno(&e, libc::ESRCH) || is_errno(&e, libc::ENOENT) => Ok(()),
                r => Ok(r?),
            }
        }
    }

    /// Installs or removes a `virtual_rules` / `static_rules` line (`ip rule add/del`); one
    /// already there counts as added, one not there as removed.
    pub async fn rule(&self, r: &crate::plan::RulePlan, add: bool) -> Result<(), LinkError> {
        use crate::plan::RuleAction as A;
        use rtnetlink::packet_route::rule::{RuleAction, RuleAttribute, RuleFlags, RuleMessage};
        use rtnetlink::packet_route::AddressFamily;
        let mut m = RuleMessage::default();
        m.header.family = if r.v6 {
            AddressFamily::Inet6
        } else {
            AddressFamily::Inet
        };
        if let Some((a, len)) = r.from {
            m.header.src_len = len;
            m.attributes.push(RuleAttribute::Source(a));
        }
        if let Some((a, len)) = r.to {
            m.header.dst_len = len;
            m.attributes.push(RuleAttribute::Destination(a));
        }
        if r.invert {
            m.header.flags |= RuleFlags::Invert;
        }
        m.header.tos = r.tos.unwrap_or(0);
        if let Some(p) = r.preference {
            m.attributes.push(RuleAttribute::Priority(p));
        }
        if let Some(i) = &r.iif {
            m.attributes.push(RuleAttribute::Iifname(i.clone()));
        }
        if let Some(o) = &r.oif {
            m.attributes.push(RuleAttribute::Oifname(o.clone()));
        }
        if let Some((mark, mask)) = r.fwmark {
            m.attributes.push(RuleAttribute::FwMark(mark));
            if let Some(k) = mask {
                m.attributes.push(RuleAttribute::FwMask(k));
            }
        }
        if let Some(s) = r.suppress_prefixlength {
            m.attributes.push(RuleAttribute::SuppressPrefixLen(s));
        }
        m.header.action = match r.action {
            A::Lookup(t) => {
                // Tables above 255 travel in the attribute; the header keeps the low ones.
                m.header.table = u8::try_from(t).unwrap_or(0);
                m.attributes.push(RuleAttribute::Table(t));
                RuleAction::ToTable
            }
            A::Goto(p) => {
                m.attributes.push(RuleAttribute::Goto(p));
                RuleAction::Goto
            }
            A::Blackhole => RuleAction::Blackhole,
            A::Unreachable => RuleAction::Unreachable,
            A::Prohibit => RuleAction::Prohibit,
        };
        if add {
            let mut req = self.handle.rule().add();
            *req.message_mut() = m;
            match req.execute().await {
                Err(e) if is_errno(&e, libc::EEXIST) => Ok(()),
                r => Ok(r?),
            }
        } else {
            match self.handle.rule().del(m).execute().await {
                Err(e) if is_errno(&e, libc::ENOENT) || is_errno(&e, libc::ESRCH) => Ok(()),
                r => Ok(r?),
            }
        }
    }

    /// Removes a VIP; one not there counts as removed. Returns whether it was there.
    pub async fn del_vip(&self, index: u32, vip: &VipAddr) -> Result<bool, LinkError> {
        let mut m = Self::vip_message(index, vip)?;
        // Deletion matches on the address and prefix; label and broadcast must not
        // make it miss.
        m.attributes
            .retain(|a| matches!(a, AddressAttribute::Local(_) | AddressAttribute::Address(_)));
        match self.handle.address().del(m).execute().await {
            Ok(()) => Ok(true),
            Err(e) if is_errno(&e, libc::EADDRNOTAVAIL) || is_errno(&e, libc::ENOENT) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }
}

fn broadcast(a: Ipv4Addr, prefix: u8) -> Ipv4Addr {
    let host = u32::MAX.checked_shr(u32::from(prefix)).unwrap_or(0);
    Ipv4Addr::from(u32::from(a) | host)
}

/// An address message's address: `IFA_LOCAL` (the interface's own on point-to-point
/// links), else `IFA_ADDRESS` (IPv6 has only that).
fn address_of(m: &AddressMessage) -> Option<IpAddr> {
    let local = m.attributes.iter().find_map(|a| match a {
        AddressAttribute::Local(ip) => Some(*ip),
        _ => None,
    });
    local.or_else(|| {
        m.attributes.iter().find_map(|a| match a {
            AddressAttribute::Address(ip) => Some(*ip),
            _ => None,
        })
    })
}

/// Address changes: `(address, present)` for every `RTM_NEWADDR`/`RTM_DELADDR`, until the
/// receiver is dropped (`track_src_ip`).
pub fn addr_monitor(
    tx: tokio::sync::mpsc::UnboundedSender<(IpAddr, bool)>,
) -> Result<(), LinkError> {
    addr_monitor_sized(tx, rvs_conf::model::RcvBufs::default())
}

/// [`addr_monitor`] on a socket whose receive buffer `bufs` sizes (the checkers'
/// monitor: `lvs_netlink_monitor_rcv_bufs`).
pub fn addr_monitor_sized(
    tx: tokio::sync::mpsc::UnboundedSender<(IpAddr, bool)>,
    bufs: rvs_conf::model::RcvBufs,
) -> Result<(), LinkError> {
    use futures_util::stream::StreamExt as _;
    use rtnetlink::packet_core::NetlinkPayload;
    use rtnetlink::packet_route::RouteNetlinkMessage;
    use rtnetlink::sys::AsyncSocket as _;
    let (mut conn, _handle, mut msgs) = rtnetlink::new_multicast_connection(&[
        rtnetlink::MulticastGroup::Ipv4Ifaddr,
        rtnetlink::MulticastGroup::Ipv6Ifaddr,
    ])?;
    set_bufs(conn.socket_mut().socket_ref(), bufs)?;
    tokio::spawn(conn);
    tokio::spawn(async move {
        while let Some((m, _)) = msgs.next().await {
            let ev = match m.payload {
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewAddress(a)) => {
                    address_of(&a).map(|ip| (ip, true))
                }
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelAddress(a)) => {
                    address_of(&a).map(|ip| (ip, false))
                }
                _ => None,
            };
            if let Some(ev) = ev {
                if tx.send(ev).is_err() {
                    break;
                }
            }
        }
    });
    Ok(())
}

/// Link state changes: `(index, name, up)` for every `RTM_NEWLINK`/`RTM_DELLINK` the kernel
/// sends, until the receiver is dropped.
pub fn monitor(
    tx: tokio::sync::mpsc::UnboundedSender<(u32, String, bool)>,
    bufs: rvs_conf::model::RcvBufs,
) -> Result<(), LinkError> {
    use futures_util::stream::StreamExt as _;
    use rtnetlink::packet_core::NetlinkPayload;
    use rtnetlink::packet_route::RouteNetlinkMessage;
    use rtnetlink::sys::AsyncSocket as _;
    let (mut conn, _handle, mut msgs) =
        rtnetlink::new_multicast_connection(&[rtnetlink::MulticastGroup::Link])?;
    set_bufs(conn.socket_mut().socket_ref(), bufs)?;
    tokio::spawn(conn);
    tokio::spawn(async move {
        while let Some((m, _)) = msgs.next().await {
            let ev = match m.payload {
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(l)) => {
                    LinkInfo::from_msg(&l).map(|i| (i.index, i.name, i.up))
                }
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelLink(l)) => {
                    LinkInfo::from_msg(&l).map(|i| (i.index, i.name, false))
                }
                _ => None,
            };
            if let Some(ev) = ev {
                if tx.send(ev).is_err() {
                    break;
                }
            }
        }
    });
    Ok(())
}

/// Whether a v6 address is link-local (`fe80::/10`).
pub fn is_link_local(a: Ipv6Addr) -> bool {
    a.is_unicast_link_local()
}

/// Writes an IPv4 per-interface sysctl (`/proc/sys/net/ipv4/conf/IF/NAME`); returns the
/// value it replaced.
pub fn set_ipv4_conf(iface: &str, name: &str, value: &str) -> std::io::Result<String> {
    let path = format!("/proc/sys/net/ipv4/conf/{iface}/{name}");
    let old = std::fs::read_to_string(&path)?.trim().to_owned();
    if old != value {
        std::fs::write(&path, value)?;
    }
    Ok(old)
}

/// keepalived's `static_ipaddress`, `static_rules` and `static_routes`: added when the
/// daemon starts (and on reload: one already there is kept) and left in place when it
/// stops. An address needs its `dev` (or `default_interface`). Returns what could not be
/// installed.
pub async fn install_static(cfg: &rvs_conf::Config) -> Vec<String> {
    let mut errs = Vec::new();
    if cfg.static_ipaddress.is_empty()
        && cfg.static_routes.is_empty()
        && cfg.static_rules.is_empty()
    {
        return errs;
    }
    let nl = match Netlink::new() {
        Ok(nl) => nl,
        Err(e) => return vec![format!("static addresses and routes: {e}")],
    };
    for v in &cfg.static_ipaddress {
        let Some(dev) = v
            .dev
            .as_ref()
            .or(cfg.global_defs.default_interface.as_ref())
        else {
            errs.push(format!("static_ipaddress {}: no dev: not added", v.address));
            continue;
        };
        let r = match nl.link(dev).await {
            Ok(l) => nl.add_vip(l.index, v).await,
            Err(e) => Err(e),
        };
        if let Err(e) = r {
            errs.push(format!("static_ipaddress {} dev {dev}: {e}", v.address));
        }
    }
    for r in &cfg.static_rules {
        let Some(plan) = crate::plan::RulePlan::of(r) else {
            continue; // the parser said why at its line
        };
        if let Err(e) = nl.rule(&plan, true).await {
            errs.push(format!("static_rules '{}': {e}", r.text));
        }
    }
    for r in &cfg.static_routes {
        let Some(plan) = crate::plan::RoutePlan::of(r) else {
            continue; // the parser said why at its line
        };
        if let Err(e) = nl.route(&plan, true).await {
            errs.push(format!("static_routes '{}': {e}", r.text));
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcast_of_prefix() {
        assert_eq!(
            broadcast(Ipv4Addr::new(198, 18, 0, 50), 24),
            Ipv4Addr::new(198, 18, 0, 255)
        );
        assert_eq!(
            broadcast(Ipv4Addr::new(198, 18, 0, 50), 32),
            Ipv4Addr::new(198, 18, 0, 50)
        );
        assert_eq!(
            broadcast(Ipv4Addr::new(198, 18, 0, 50), 0),
            Ipv4Addr::BROADCAST
        );
    }
}
