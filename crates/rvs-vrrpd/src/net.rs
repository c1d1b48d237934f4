//! VRRP on the wire: a send socket (bound to our source address, TTL/hop limit 255,
//! traffic class 0xC0) and a receive socket (bound to the interface, joined to the group
//! unless unicast) per instance; receive validation in keepalived's order (spec §4);
//! gratuitous ARP and unsolicited neighbour advertisements.

use crate::plan::InstancePlan;
use crate::sys;
use rvs_conf::model::OldChecksum;
use rvs_wire::vrrp::{Checksum, Packet, Repr, PROTO};
use socket2::{Domain, InterfaceIndexOrAddress, Protocol, SockAddr, Socket, Type};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::io::unix::AsyncFd;

/// Why a received packet was not taken as an advert (counted per reason).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Drop {
    /// Shorter than the IP header or the VRRP message it announces.
    Truncated,
    /// TTL / hop limit not 255 on a multicast advert.
    Ttl,
    /// Version nibble not ours, type not advertisement.
    Version,
    /// Checksum does not verify.
    Checksum,
    /// v2 password differs (keepalived's `auth_failure`).
    Auth,
    /// v2 authentication type differs from ours (keepalived's `authtype_mismatch`).
    AuthType,
    /// v2 authentication type unknown (keepalived's `invalid_authtype`).
    AuthInvalid,
    /// v2 advert interval differs from ours (dropped silently by keepalived).
    Interval,
    /// Multicast on a unicast instance or the reverse.
    Destination,
    /// Unicast from an address that is not a configured peer (`check_unicast_src`).
    Source,
}

impl Drop {
    pub const ALL: [Drop; 10] = [
        Drop::Truncated,
        Drop::Ttl,
        Drop::Version,
        Drop::Checksum,
        Drop::Auth,
        Drop::AuthType,
        Drop::AuthInvalid,
        Drop::Interval,
        Drop::Destination,
        Drop::Source,
    ];
    pub fn name(self) -> &'static str {
        match self {
            Drop::Truncated => "truncated",
            Drop::Ttl => "ttl",
            Drop::Version => "version",
            Drop::Checksum => "checksum",
            Drop::Auth => "auth",
            Drop::AuthType => "auth_type",
            Drop::AuthInvalid => "auth_invalid",
            Drop::Interval => "interval",
            Drop::Destination => "destination",
            Drop::Source => "source",
        }
    }
}

/// A received IP datagram's addressing, as the socket reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    pub src: IpAddr,
    pub dst: Option<IpAddr>,
    pub ttl: Option<u8>,
}

/// An accepted advert and what is only worth a log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub advert: rvs_vrrp::Advert,
    /// The advertised addresses differ from ours (keepalived logs it, nothing more).
    pub addr_mismatch: bool,
    /// The advertised addresses.
    pub addrs: Vec<IpAddr>,
    /// A VRRPv3 unicast advert whose checksum covers the multicast group instead of the
    /// packet's destination (keepalived before 2.0's, or `old_unicast_checksum`).
    pub old_checksum: bool,
}

/// What to do with one VRRP message: not ours (another VRID: ignored, not counted),
/// dropped for a reason, or accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    NotOurs,
    Drop(Drop),
    Accept(Accepted),
}

/// Splits a raw IPv4 datagram (header included, as IPv4 raw sockets deliver it) into its
/// addressing and VRRP payload; Ethernet padding after `tot_len` is tolerated.
pub fn split_ipv4(b: &[u8]) -> Result<(Meta, &[u8]), Drop> {
    if b.len() < 20 || b[0] >> 4 != 4 {
        return Err(Drop::Truncated);
    }
    let ihl = usize::from(b[0] & 0x0f) * 4;
    let tot = usize::from(u16::from_be_bytes([b[2], b[3]]));
    if ihl < 20 || tot < ihl || b.len() < tot {
        return Err(Drop::Truncated);
    }
    let src = Ipv4Addr::new(b[12], b[13], b[14], b[15]);
    let dst = Ipv4Addr::new(b[16], b[17], b[18], b[19]);
    Ok((
        Meta {
            src: src.into(),
            dst: Some(dst.into()),
            ttl: Some(b[8]),
        },
        &b[ihl..tot],
    ))
}

fn is_multicast(a: IpAddr) -> bool {
    a.is_multicast()
}

/// keepalived's receive checks (spec §4), for one instance.
pub fn check(p: &InstancePlan, m: &Meta, msg: &[u8]) -> Verdict {
    let Ok(pkt) = Packet::new_checked(msg, p.v6) else {
        return Verdict::Drop(Drop::Truncated);
    };
    if pkt.vrid() != p.vrid {
        return Verdict::NotOurs;
    }
    let multicast = m.dst.is_some_and(is_multicast);
    // Adverts to another multicast group belong to routers configured on that group (a
    // raw socket sees every group some socket of the host joined on the link).
    if !p.unicast() && multicast && m.dst != Some(p.mcast_group) {
        return Verdict::NotOurs;
    }
    if !p.unicast() && multicast && m.ttl.is_some_and(|t| t != 255) {
        return Verdict::Drop(Drop::Ttl);
    }
    if pkt.version() != p.version || pkt.msg_type() != 1 {
        return Verdict::Drop(Drop::Version);
    }
    // IPv6: the kernel verified the checksum (IPV6_CHECKSUM) and dropped bad packets.
    // old_unicast_checksum: a v3 unicast advert's checksum may cover the group instead
    // of the packet's destination (keepalived's modes: always that, never that, or the
    // RFC's with that accepted, which switches the instance to it).
    let old_way = Checksum::Pseudo {
        src: m.src,
        dst: IpAddr::V4(p.checksum_group),
    };
    let unicast_v3 = !p.v6 && p.version == 3 && !multicast;
    let ck = if p.v6 {
        Checksum::Kernel
    } else if p.version == 2 {
        Checksum::MessageOnly
    } else if unicast_v3 && p.old_checksum == OldChecksum::Always {
        old_way
    } else {
        let dst = m.dst.unwrap_or(p.mcast_group);
        Checksum::Pseudo { src: m.src, dst }
    };
    let mut old_checksum = unicast_v3 && p.old_checksum == OldChecksum::Always;
    let repr = match Repr::parse(&pkt, p.v6, ck) {
        Ok(r) => r,
        Err(rvs_wire::Error::Checksum) if unicast_v3 && p.old_checksum == OldChecksum::Auto => {
            match Repr::parse(&pkt, false, old_way) {
                Ok(r) => {
                    old_checksum = true;
                    r
                }
                Err(_) => return Verdict::Drop(Drop::Checksum),
            }
        }
        Err(rvs_wire::Error::Checksum) => return Verdict::Drop(Drop::Checksum),
        Err(rvs_wire::Error::Truncated) => return Verdict::Drop(Drop::Truncated),
        Err(rvs_wire::Error::Malformed) => return Verdict::Drop(Drop::Version),
    };
    if p.version == 2 {
        let (want_type, want_data) = match p.auth_pass {
            Some(d) => (1, d),
            None => (0, [0u8; rvs_wire::vrrp::AUTH_LEN]),
        };
        if repr.auth_type > 2 {
            return Verdict::Drop(Drop::AuthInvalid);
        }
        if repr.auth_type != want_type {
            return Verdict::Drop(Drop::AuthType);
        }
        if want_type == 1 && !ct_eq(&repr.auth_data, &want_data) {
            return Verdict::Drop(Drop::Auth);
        }
        if repr.interval != p.interval_field {
            return Verdict::Drop(Drop::Interval);
        }
    }
    if p.unicast() == multicast {
        return Verdict::Drop(Drop::Destination);
    }
    if p.unicast() && p.check_unicast_src && !p.peers.contains(&m.src) {
        return Verdict::Drop(Drop::Source);
    }
    let addr_mismatch = repr.addrs != p.advertised();
    Verdict::Accept(Accepted {
        advert: rvs_vrrp::Advert {
            src: m.src,
            priority: repr.priority,
            interval: repr.interval,
        },
        addr_mismatch,
        addrs: repr.addrs,
        old_checksum,
    })
}

/// Constant-time comparison of the v2 password (spec §4.5).
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The advert this instance sends with `priority`.
pub fn advert(p: &InstancePlan, priority: u8) -> Repr {
    Repr {
        version: p.version,
        vrid: p.vrid,
        priority,
        interval: p.interval_field,
        addrs: p.advertised(),
        auth_type: u8::from(p.auth_pass.is_some()),
        auth_data: p.auth_pass.unwrap_or_default(),
    }
}

/// One instance's sockets.
pub struct VrrpSocket {
    send: Socket,
    recv: AsyncFd<Socket>,
    v6: bool,
    version: u8,
    src: IpAddr,
    dests: Vec<IpAddr>,
    ifindex: u32,
    /// VRRPv3 unicast checksums cover this group instead of the peer (`old_unicast_checksum`,
    /// or switched to by a peer's advert).
    old_checksum: AtomicBool,
    checksum_group: Ipv4Addr,
    multicast: bool,
}

fn raw(v6: bool, proto: i32) -> io::Result<Socket> {
    let d = if v6 { Domain::IPV6 } else { Domain::IPV4 };
    Socket::new(d, Type::RAW, Some(Protocol::from(proto)))
}

impl VrrpSocket {
    /// Opens the sockets of an instance: receiving on interface `ifindex` (`p.iface`),
    /// sending there too or, with `use_vmac`, out of the VMAC `send_if` (so adverts carry
    /// the virtual router MAC), from `src`.
    pub fn open(
        p: &InstancePlan,
        ifindex: u32,
        mtu: u32,
        send_if: Option<&str>,
        src: IpAddr,
    ) -> io::Result<VrrpSocket> {
        let proto = i32::from(PROTO);
        let send = raw(p.v6, proto)?;
        let recv = raw(p.v6, proto)?;
        if let Some(b) = p.rx_buf {
            recv.set_recv_buffer_size(b.bytes(mtu))?;
        }
        send.bind_device(Some(send_if.unwrap_or(&p.iface).as_bytes()))?;
        recv.bind_device(Some(p.iface.as_bytes()))?;
        for s in [&send, &recv] {
            s.set_nonblocking(true)?;
        }
        if p.v6 {
            sys::set_ipv6_checksum(&send)?;
            sys::set_ipv6_checksum(&recv)?;
            sys::set_recv_hoplimit(&recv)?;
            send.set_multicast_hops_v6(255)?;
            send.set_unicast_hops_v6(u32::from(p.ttl))?;
            send.set_multicast_loop_v6(false)?;
            send.set_multicast_if_v6(ifindex)?;
            send.set_tclass_v6(0xc0)?;
            // The link-local address may still be tentative (DAD) right after the link
            // came up; bind anyway, as the kernel will let it send once DAD is done.
            send.set_freebind_ipv6(true)?;
            send.bind(&sys::scoped(v6_of(src), ifindex))?;
            if !p.unicast() {
                recv.join_multicast_v6(&v6_of(p.mcast_group), ifindex)?;
            }
        } else {
            send.set_multicast_ttl_v4(255)?;
            send.set_ttl(u32::from(p.ttl))?;
            send.set_multicast_loop_v4(false)?;
            send.set_tos(0xc0)?;
            if send_if.is_none() {
                // With a VMAC the socket is bound to that device, which picks the
                // output link; IP_MULTICAST_IF by the base's address would conflict
                // with the binding (EINVAL).
                send.set_multicast_if_v4(&v4_of(src))?;
            }
            send.bind(&SockAddr::from(SocketAddrV4::new(v4_of(src), 0)))?;
            if !p.unicast() {
                recv.join_multicast_v4_n(
                    &v4_of(p.mcast_group),
                    &InterfaceIndexOrAddress::Index(ifindex),
                )?;
            }
        }
        let dests = if p.unicast() {
            p.peers.clone()
        } else {
            vec![p.mcast_group]
        };
        Ok(VrrpSocket {
            send,
            recv: sys::async_fd(recv)?,
            v6: p.v6,
            version: p.version,
            src,
            dests,
            ifindex,
            old_checksum: AtomicBool::new(p.old_checksum == OldChecksum::Always),
            checksum_group: p.checksum_group,
            multicast: !p.unicast(),
        })
    }

    /// Sends VRRPv3 unicast checksums the old way from now on; `true` if it was not so.
    pub fn use_old_checksum(&self) -> bool {
        !self.old_checksum.swap(true, Ordering::Relaxed)
    }

    /// Sends the advert to the group or to every peer, in configuration order.
    pub fn send(&self, r: &Repr) -> io::Result<()> {
        let mut buf = [0u8; 1500];
        let mut first_err = None;
        for d in &self.dests {
            let ck = if self.v6 {
                Checksum::Kernel
            } else if self.version == 2 {
                Checksum::MessageOnly
            } else if !self.multicast && self.old_checksum.load(Ordering::Relaxed) {
                Checksum::Pseudo {
                    src: self.src,
                    dst: IpAddr::V4(self.checksum_group),
                }
            } else {
                Checksum::Pseudo {
                    src: self.src,
                    dst: *d,
                }
            };
            let n = r
                .emit(&mut buf, ck)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
            let to = match d {
                IpAddr::V6(a) => sys::scoped(*a, self.ifindex),
                IpAddr::V4(a) => SockAddr::from(SocketAddr::from((*a, 0))),
            };
            if let Err(e) = self.send.send_to(&buf[..n], &to) {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// Receives one datagram: its addressing and VRRP message.
    pub async fn recv<'b>(&self, buf: &'b mut [u8]) -> io::Result<(Meta, Result<&'b [u8], Drop>)> {
        loop {
            let mut guard = self.recv.readable().await?;
            let r = guard.try_io(|s| {
                if self.v6 {
                    sys::recv_v6(s.get_ref(), buf).map(|m| {
                        (
                            m.len,
                            Some(Meta {
                                src: IpAddr::V6(m.src),
                                dst: m.dst.map(IpAddr::V6),
                                ttl: m.hop_limit,
                            }),
                        )
                    })
                } else {
                    use std::io::Read as _;
                    s.get_ref().read(buf).map(|n| (n, None))
                }
            });
            match r {
                Ok(Ok((n, Some(meta)))) => return Ok((meta, Ok(&buf[..n]))),
                Ok(Ok((n, None))) => {
                    return match split_ipv4(&buf[..n]) {
                        Ok((meta, msg)) => Ok((meta, Ok(msg))),
                        Err(d) => Ok((
                            Meta {
                                src: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                                dst: None,
                                ttl: None,
                            },
                            Err(d),
                        )),
                    };
                }
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => {}
            }
        }
    }
}

fn v4_of(a: IpAddr) -> Ipv4Addr {
    match a {
        IpAddr::V4(v) => v,
        IpAddr::V6(_) => Ipv4Addr::UNSPECIFIED,
    }
}

fn v6_of(a: IpAddr) -> Ipv6Addr {
    match a {
        IpAddr::V6(v) => v,
        IpAddr::V4(v) => v.to_ipv6_mapped(),
    }
}

/// Sends gratuitous ARPs / unsolicited NAs for addresses from `mac` on `ifindex`.
pub struct Announcer {
    packet: Option<Socket>,
    ifname: String,
    ifindex: u32,
    mac: [u8; 6],
}

impl Announcer {
    /// The interface it announces on.
    pub fn ifname(&self) -> &str {
        &self.ifname
    }

    pub fn new(ifname: &str, ifindex: u32, mac: [u8; 6]) -> io::Result<Announcer> {
        Ok(Announcer {
            packet: Some(sys::packet_socket(ifindex)?),
            ifname: ifname.to_owned(),
            ifindex,
            mac,
        })
    }

    pub fn announce(&self, ip: IpAddr) -> io::Result<()> {
        match ip {
            IpAddr::V4(v) => {
                let mut f = [0u8; rvs_wire::arp::FRAME_LEN];
                let n = rvs_wire::arp::Repr::gratuitous(self.mac, v)
                    .emit_frame(&mut f)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
                match &self.packet {
                    Some(s) => s.send(&f[..n]).map(|_| ()),
                    None => Ok(()),
                }
            }
            IpAddr::V6(v) => {
                let s = raw(true, libc::IPPROTO_ICMPV6)?;
                s.bind_device(Some(self.ifname.as_bytes()))?;
                s.set_freebind_ipv6(true)?;
                s.set_multicast_hops_v6(255)?;
                s.set_multicast_if_v6(self.ifindex)?;
                s.bind(&sys::scoped(v, self.ifindex))?;
                let router = std::fs::read_to_string(format!(
                    "/proc/sys/net/ipv6/conf/{}/forwarding",
                    self.ifname
                ))
                .is_ok_and(|s| s.trim() == "1");
                let mut b = [0u8; rvs_wire::nd::LEN];
                let n = rvs_wire::nd::Repr::unsolicited(v, self.mac, router)
                    .emit(&mut b, None)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
                s.send_to(&b[..n], &sys::scoped(rvs_wire::nd::ALL_NODES, self.ifindex))
                    .map(|_| ())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Garp, InstancePlan, NotifyPlan};
    use rvs_wire::vrrp::GROUP4;

    fn plan(version: u8, auth: Option<[u8; 8]>, peers: Vec<IpAddr>) -> InstancePlan {
        InstancePlan {
            name: "VI_1".into(),
            iface: "eth0".into(),
            vmac: None,
            vmac_xmit_base: false,
            vrid: 51,
            version,
            v6: false,
            priority: 100,
            wants_master: false,
            adv_us: 1_000_000,
            interval_field: if version == 2 { 1 } else { 100 },
            down_adverts: 3,
            nopreempt: false,
            promote_secondaries: false,
            preempt_delay_us: 0,
            lower_prio_no_advert: false,
            higher_prio_send_advert: false,
            split_brain_arbitration: false,
            mcast_group: IpAddr::V4(GROUP4),
            routes: Vec::new(),
            rules: Vec::new(),
            auth_pass: auth,
            vips: Vec::new(),
            excluded: Vec::new(),
            src: None,
            check_unicast_src: !peers.is_empty(),
            old_checksum: OldChecksum::Auto,
            checksum_group: GROUP4,
            fault_no_peer: false,
            track_src: None,
            rx_buf: None,
            skip_check_adv_addr: false,
            owner_ignore_adverts: false,
            peers,
            ttl: 255,
            garp: Garp {
                master_delay: 5,
                master_repeat: 5,
                master_refresh: 0,
                master_refresh_repeat: 1,
                extra_if: 0,
                extra_if_all: false,
                lower_prio_delay: 5,
                lower_prio_repeat: 5,
                interval: std::time::Duration::ZERO,
            },
            notify: NotifyPlan::default(),
            trackers: Vec::new(),
            group: None,
        }
    }

    fn ip4(total: &[u8], ttl: u8, src: [u8; 4], dst: [u8; 4]) -> Vec<u8> {
        let mut b = vec![0x45, 0xc0, 0, 0, 0, 0, 0, 0, ttl, 112, 0, 0];
        b.extend_from_slice(&src);
        b.extend_from_slice(&dst);
        b.extend_from_slice(total);
        let len = u16::try_from(b.len()).unwrap().to_be_bytes();
        b[2] = len[0];
        b[3] = len[1];
        b
    }

    fn msg(p: &InstancePlan, prio: u8, src: [u8; 4], dst: [u8; 4]) -> Vec<u8> {
        let r = advert(p, prio);
        let mut b = vec![0u8; r.buffer_len()];
        let ck = if p.version == 2 {
            Checksum::MessageOnly
        } else {
            Checksum::Pseudo {
                src: src.into(),
                dst: dst.into(),
            }
        };
        r.emit(&mut b, ck).unwrap();
        b
    }

    fn verdict(p: &InstancePlan, dgram: &[u8]) -> Verdict {
        let (m, body) = split_ipv4(dgram).unwrap();
        check(p, &m, body)
    }

    #[test]
    fn keepalived_receive_checks_in_order() {
        let src = [198, 18, 0, 2];
        let p = plan(2, Some(*b"secret\0\0"), Vec::new());
        let good = ip4(
            &msg(&p, 100, src, [224, 0, 0, 18]),
            255,
            src,
            [224, 0, 0, 18],
        );
        match verdict(&p, &good) {
            Verdict::Accept(a) => assert_eq!(a.advert.priority, 100),
            v => panic!("{v:?}"),
        }
        // Ethernet padding after tot_len is tolerated.
        let mut padded = good.clone();
        padded.extend_from_slice(&[0; 6]);
        assert!(matches!(split_ipv4(&padded), Ok((_, b)) if b.len() == good.len() - 20));
        // TTL 254 on multicast.
        let low_ttl = ip4(
            &msg(&p, 100, src, [224, 0, 0, 18]),
            254,
            src,
            [224, 0, 0, 18],
        );
        assert_eq!(verdict(&p, &low_ttl), Verdict::Drop(Drop::Ttl));
        // Wrong password.
        let other = plan(2, Some(*b"other\0\0\0"), Vec::new());
        let bad_auth = ip4(
            &msg(&other, 100, src, [224, 0, 0, 18]),
            255,
            src,
            [224, 0, 0, 18],
        );
        assert_eq!(verdict(&p, &bad_auth), Verdict::Drop(Drop::Auth));
        // No authentication where we have PASS: a type mismatch.
        let none = plan(2, None, Vec::new());
        let no_auth = ip4(
            &msg(&none, 100, src, [224, 0, 0, 18]),
            255,
            src,
            [224, 0, 0, 18],
        );
        assert_eq!(verdict(&p, &no_auth), Verdict::Drop(Drop::AuthType));
        // Another VRID: not ours, not counted.
        let mut vr = plan(2, Some(*b"secret\0\0"), Vec::new());
        vr.vrid = 52;
        let theirs = ip4(
            &msg(&vr, 100, src, [224, 0, 0, 18]),
            255,
            src,
            [224, 0, 0, 18],
        );
        assert_eq!(verdict(&p, &theirs), Verdict::NotOurs);
        // Corrupted checksum.
        let mut bad = good.clone();
        bad[20 + 2] ^= 1;
        assert_eq!(verdict(&p, &bad), Verdict::Drop(Drop::Checksum));
        // Short.
        assert_eq!(
            split_ipv4(&good[..good.len() - 3]).err(),
            Some(Drop::Truncated)
        );
        let (m, body) = split_ipv4(&good).unwrap();
        assert_eq!(
            check(&p, &m, &body[..body.len() - 1]),
            Verdict::Drop(Drop::Truncated)
        );
        // v2 interval differs.
        let mut slow = p.clone();
        slow.interval_field = 2;
        assert_eq!(verdict(&slow, &good), Verdict::Drop(Drop::Interval));
        // Version 3 on a v2 instance.
        let v3 = plan(3, None, Vec::new());
        let v3pkt = ip4(
            &msg(&v3, 100, src, [224, 0, 0, 18]),
            255,
            src,
            [224, 0, 0, 18],
        );
        assert_eq!(verdict(&p, &v3pkt), Verdict::Drop(Drop::Version));
    }

    #[test]
    fn v3_unicast_checksum_uses_the_actual_destination_and_source_is_checked() {
        let peer = IpAddr::from([198, 18, 0, 2]);
        let p = plan(3, None, vec![peer]);
        let me = [198, 18, 0, 1];
        let ok = ip4(&msg(&p, 100, [198, 18, 0, 2], me), 64, [198, 18, 0, 2], me);
        assert!(matches!(verdict(&p, &ok), Verdict::Accept(_)));
        // keepalived before 2.0 (or with old_unicast_checksum): the group address in
        // the pseudo-header, accepted and noted (the instance answers in kind).
        let old = ip4(
            &msg(&p, 100, [198, 18, 0, 2], [224, 0, 0, 18]),
            64,
            [198, 18, 0, 2],
            me,
        );
        let old_seen = |p: &InstancePlan, pkt: &[u8]| match verdict(p, pkt) {
            Verdict::Accept(a) => Some(a.old_checksum),
            _ => None,
        };
        assert_eq!(old_seen(&p, &old), Some(true));
        assert_eq!(old_seen(&p, &ok), Some(false));
        // `old_unicast_checksum never`: only the RFC's; `old_unicast_checksum`: only the
        // old one.
        let never = InstancePlan {
            old_checksum: OldChecksum::Never,
            ..p.clone()
        };
        assert_eq!(verdict(&never, &old), Verdict::Drop(Drop::Checksum));
        assert_eq!(old_seen(&never, &ok), Some(false));
        let always = InstancePlan {
            old_checksum: OldChecksum::Always,
            ..p.clone()
        };
        assert_eq!(verdict(&always, &ok), Verdict::Drop(Drop::Checksum));
        assert_eq!(old_seen(&always, &old), Some(true));
        let stranger = ip4(&msg(&p, 100, [198, 18, 0, 9], me), 64, [198, 18, 0, 9], me);
        assert_eq!(verdict(&p, &stranger), Verdict::Drop(Drop::Source));
        // Multicast advert on a unicast instance.
        let mc = ip4(
            &msg(&p, 100, [198, 18, 0, 2], [224, 0, 0, 18]),
            255,
            [198, 18, 0, 2],
            [224, 0, 0, 18],
        );
        assert_eq!(verdict(&p, &mc), Verdict::Drop(Drop::Destination));
    }
}
