//! Helpers of the XDP program tests: loading, desired state, frames built with
//! etherparse and read back.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use etherparse::{
    NetHeaders, PacketBuilder, PacketHeaders, SlicedPacket, TransportHeader, TransportSlice,
};
use rvs_sched::desired::{Desired, DesiredDest, DesiredService};
use rvs_sched::{Algo, Flags, Fwd, Proto, SvcKey};
use rvs_xdp::{Options, Xdp};
use std::collections::HashMap;
use std::net::IpAddr;

pub const CLIENT_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x64];
pub const DIRECTOR_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];

pub fn mac_of(last: u8) -> [u8; 6] {
    [2, 0, 0, 0, 1, last]
}

pub fn load() -> Xdp {
    load_with(&Options {
        tun_src4: Some("198.18.0.1".parse().unwrap()),
        tun_src6: Some("fd00:198:18::1".parse().unwrap()),
        flows: 4096,
        own_mac: Some(DIRECTOR_MAC),
        ..Options::default()
    })
}

/// Loads the program with `opts` (not attached).
pub fn load_with(opts: &Options) -> Xdp {
    let root = std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"));
    let r = Xdp::load(opts);
    match r {
        Ok(x) => x,
        Err(e @ rvs_xdp::XdpError::NotBuilt) => {
            panic!("the XDP program tests cannot run: {e} (.ci/run installs clang)")
        }
        Err(e) if !root => panic!("the XDP program tests cannot run: loading BPF needs root ({e})"),
        Err(e) => panic!("{e}"),
    }
}

pub fn dest(addr: &str, port: u16, weight: i32, fwd: Fwd) -> DesiredDest {
    DesiredDest {
        tun: rvs_sched::Tun::default(),
        addr: addr.parse().unwrap(),
        port,
        weight,
        base_weight: weight,
        fwd,
        u_threshold: 0,
        l_threshold: 0,
    }
}

pub fn service(
    vip: &str,
    port: u16,
    proto: Proto,
    algo: Algo,
    dests: Vec<DesiredDest>,
) -> DesiredService {
    DesiredService {
        key: SvcKey::Addr {
            proto,
            addr: vip.parse().unwrap(),
            port,
        },
        algo,
        flags: Flags::default(),
        persistence: None,
        mh_size: None,
        fwd: dests.first().map_or(Fwd::Route, |d| d.fwd),
        dests,
        sorry: None,
        connect_timeout: std::time::Duration::from_secs(5),
        proxy_protocol: None,
        local_addrs: Vec::new(),
    }
}

pub fn desired(services: Vec<DesiredService>) -> Desired {
    Desired {
        services,
        ..Desired::default()
    }
}

pub fn macs(d: &Desired) -> HashMap<IpAddr, [u8; 6]> {
    let mut m = HashMap::new();
    for s in &d.services {
        for r in &s.dests {
            let last = match r.addr {
                IpAddr::V4(v) => v.octets()[3],
                IpAddr::V6(v) => v.octets()[15],
            };
            m.insert(r.addr, mac_of(last));
        }
    }
    m
}

pub fn apply(x: &mut Xdp, d: &Desired) {
    x.apply(d, &macs(d)).unwrap();
}

/// The Ethernet and IP headers of a frame from the client to the director.
fn client_ip(src: IpAddr, dst: IpAddr) -> etherparse::PacketBuilderStep<etherparse::IpHeaders> {
    let eth = PacketBuilder::ethernet2(CLIENT_MAC, DIRECTOR_MAC);
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => eth.ipv4(s.octets(), d.octets(), 64),
        (IpAddr::V6(s), IpAddr::V6(d)) => eth.ipv6(s.octets(), d.octets(), 64),
        _ => panic!("mixed families"),
    }
}

/// One Ethernet frame from the client to the director: TCP SYN (IPv4) / ACK (IPv6) or UDP.
pub fn frame(
    tcp: bool,
    src: IpAddr,
    sport: u16,
    dst: IpAddr,
    dport: u16,
    payload: &[u8],
) -> Vec<u8> {
    if tcp {
        return segment(src, sport, dst, dport, src.is_ipv4(), payload);
    }
    let mut v = Vec::new();
    client_ip(src, dst)
        .udp(sport, dport)
        .write(&mut v, payload)
        .unwrap();
    v
}

/// A TCP segment from the client to the director: a SYN, or an ACK of an established
/// connection.
pub fn segment(
    src: IpAddr,
    sport: u16,
    dst: IpAddr,
    dport: u16,
    syn: bool,
    payload: &[u8],
) -> Vec<u8> {
    let t = client_ip(src, dst).tcp(sport, dport, 1000, 64000);
    let t = if syn { t.syn() } else { t.ack(1) };
    let mut v = Vec::new();
    t.write(&mut v, payload).unwrap();
    v
}

pub fn tcp4(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16, payload: &[u8]) -> Vec<u8> {
    frame(true, src.into(), sport, dst.into(), dport, payload)
}

pub fn udp4(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16, payload: &[u8]) -> Vec<u8> {
    frame(false, src.into(), sport, dst.into(), dport, payload)
}

pub fn tcp6(src: [u8; 16], sport: u16, dst: [u8; 16], dport: u16, payload: &[u8]) -> Vec<u8> {
    frame(true, src.into(), sport, dst.into(), dport, payload)
}

pub fn udp6(src: [u8; 16], sport: u16, dst: [u8; 16], dport: u16, payload: &[u8]) -> Vec<u8> {
    frame(false, src.into(), sport, dst.into(), dport, payload)
}

pub fn v6(last: u8) -> [u8; 16] {
    let mut a: [u8; 16] = "fd00:198:18::"
        .parse::<std::net::Ipv6Addr>()
        .unwrap()
        .octets();
    a[15] = last;
    a
}

/// Every checksum of a frame equals a full recomputation.
pub fn assert_checksums(frame: &[u8]) {
    let p = PacketHeaders::from_ethernet_slice(frame).unwrap();
    let payload = p.payload.slice();
    let (got, want) = match (&p.net, &p.transport) {
        (Some(NetHeaders::Ipv4(h, _)), Some(TransportHeader::Tcp(t))) => {
            assert_eq!(h.header_checksum, h.calc_header_checksum(), "IPv4 header");
            (t.checksum, t.calc_checksum_ipv4(h, payload).unwrap())
        }
        (Some(NetHeaders::Ipv4(h, _)), Some(TransportHeader::Udp(u))) => {
            assert_eq!(h.header_checksum, h.calc_header_checksum(), "IPv4 header");
            (u.checksum, u.calc_checksum_ipv4(h, payload).unwrap())
        }
        (Some(NetHeaders::Ipv6(h, _)), Some(TransportHeader::Tcp(t))) => {
            (t.checksum, t.calc_checksum_ipv6(h, payload).unwrap())
        }
        (Some(NetHeaders::Ipv6(h, _)), Some(TransportHeader::Udp(u))) => {
            (u.checksum, u.calc_checksum_ipv6(h, payload).unwrap())
        }
        _ => panic!("not TCP/UDP over IP"),
    };
    assert_eq!(got, want, "L4 checksum");
}

/// (source, destination) address and port of a frame.
pub fn ends(frame: &[u8]) -> ((IpAddr, u16), (IpAddr, u16)) {
    let p = SlicedPacket::from_ethernet(frame).unwrap();
    let (s, d): (IpAddr, IpAddr) = match &p.net {
        Some(etherparse::NetSlice::Ipv4(ip)) => (
            ip.header().source_addr().into(),
            ip.header().destination_addr().into(),
        ),
        Some(etherparse::NetSlice::Ipv6(ip)) => (
            ip.header().source_addr().into(),
            ip.header().destination_addr().into(),
        ),
        _ => panic!("not IP"),
    };
    let (sp, dp) = match &p.transport {
        Some(TransportSlice::Tcp(t)) => (t.source_port(), t.destination_port()),
        Some(TransportSlice::Udp(u)) => (u.source_port(), u.destination_port()),
        _ => panic!("not TCP/UDP"),
    };
    ((s, sp), (d, dp))
}

pub fn src_of(frame: &[u8]) -> (IpAddr, u16) {
    ends(frame).0
}

pub fn dst_of(frame: &[u8]) -> (IpAddr, u16) {
    ends(frame).1
}

pub fn ipvs_choice(
    history: &[&Desired],
    client: [u8; 4],
    sport: u16,
    dport: u16,
) -> Option<IpAddr> {
    let mut ipvs = rvs_sched::Ipvs::new();
    for d in history {
        ipvs.apply(d, rvs_sched::Compat::default());
    }
    let p = rvs_sched::Packet {
        proto: Proto::Tcp,
        src: client.into(),
        sport,
        dst: IpAddr::from([198, 18, 0, 50]),
        dport,
        fwmark: 0,
        tcp: rvs_sched::TcpFlags::SYN,
        dir: rvs_sched::Dir::In,
    };
    match ipvs.packet(0, &p) {
        rvs_sched::Verdict::Forward { svc, dest, .. } => Some(ipvs.services[svc].dest(dest).addr),
        _ => None,
    }
}

/// An IPv4 TCP segment of an established connection (ACK, no SYN).
pub fn ack4(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ethernet2(CLIENT_MAC, DIRECTOR_MAC)
        .ipv4(src, dst, 64)
        .tcp(sport, dport, 1000, 64000)
        .ack(1)
        .write(&mut v, b"")
        .unwrap();
    v
}
