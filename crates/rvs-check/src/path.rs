//! Probing a real server along the LVS-DR or LVS-TUN forwarding path
//! (`rvs_forwarding_path_check`, `rvs doctor`).
//!
//! A check that connects to the real server's own address passes on a DR real server
//! that lacks the VIP on its loopback, which then drops every client packet (the seed
//! articles' most common mistake). This probe sends what a client's first packet becomes
//! at the director: a TCP SYN to the VIP and the service port, in a frame addressed to the
//! real server's MAC, from the director's address on that link. A real server that holds
//! the VIP answers SYN-ACK (from the VIP, straight back to the director), and is then sent
//! a RST; one that does not hold it stays silent; one that holds it without a listener on
//! the VIP's port answers RST.
//!
//! The frame leaves through an `AF_PACKET` socket (the kernel's routing would deliver a
//! packet to the VIP locally), and the answer is read from the same socket, before IP
//! (the director holds the VIP too, so the kernel drops the SYN-ACK as a martian), with a
//! classic BPF filter that passes only the answer's 4-tuple. The real server's MAC and
//! the interface come from the kernel's ARP table, filled by the check's own connection
//! to the real server just before. IPv4 only.
//!
//! LVS-TUN ([`PathVia::Ipip`]): the same SYN inside an IP-in-IP packet to the real server's
//! address (a raw socket of protocol 4; the kernel routes it and writes the outer
//! header). A real server that decapsulates it and holds the VIP answers from the VIP,
//! straight to the director, read as above on every interface.

use etherparse::{Ipv4Slice, PacketBuilder, TcpSlice};
use std::hash::{BuildHasher as _, Hasher as _};
use std::io::{self, Read as _};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

pub use rvs_types::{PathTarget, PathVia};

/// What the real server did with a SYN to the VIP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathOutcome {
    /// SYN-ACK: it holds the VIP and listens on the port.
    Answered,
    /// RST: it holds the VIP but nothing listens on the port there.
    Refused,
    /// Nothing within the timeout: it does not take packets for the VIP.
    Silent,
    /// The kernel has no complete ARP entry for it: not on the director's link.
    NoNeighbour,
}

impl PathOutcome {
    /// The log line of an outcome of probing `t` that takes the real server down
    /// (`None`: up).
    pub fn failure_of(self, t: &PathTarget) -> Option<String> {
        let (vip, rip) = (t.vip, t.rip);
        match self {
            PathOutcome::Answered => None,
            PathOutcome::Silent if t.via == PathVia::Ipip => Some(format!(
                "forwarding path check: [{rip}] answers on its own address but not to a SYN \
                 for the VIP {vip} sent inside IP-in-IP, as LVS-TUN forwards clients: no \
                 tunnel device takes it, or the VIP is not on it, or reverse-path filtering \
                 drops it (modprobe ipip; ip link set tunl0 up; ip addr add {}/32 dev tunl0; \
                 rp_filter=0 on tunl0 and all)",
                vip.ip()
            )),
            PathOutcome::Refused => Some(format!(
                "forwarding path check: [{rip}] answers on its own address but refuses \
                 connections to the VIP {vip} (RST): nothing listens on the VIP's port there"
            )),
            PathOutcome::Silent => Some(format!(
                "forwarding path check: [{rip}] answers on its own address but not to a SYN \
                 for the VIP {vip} sent to its MAC, as LVS-DR forwards clients: the VIP is \
                 not on its loopback (ip addr add {}/32 dev lo, with arp_ignore=1 and \
                 arp_announce=2)",
                vip.ip()
            )),
            PathOutcome::NoNeighbour => Some(format!(
                "forwarding path check: the director has no ARP entry for [{rip}]: LVS-DR \
                 needs the real server on the director's link"
            )),
        }
    }
}

/// A random 32-bit number (the hasher is keyed from the OS's randomness).
fn random() -> u32 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(u64::from(std::process::id()));
    u32::try_from(h.finish() & u64::from(u32::MAX)).unwrap_or(0)
}

/// The MAC and interface of `ip` from the kernel's ARP table (`/proc/net/arp`), when the
/// entry is complete.
pub fn neighbour(ip: Ipv4Addr) -> Option<([u8; 6], String)> {
    let table = std::fs::read_to_string("/proc/net/arp").ok()?;
    table.lines().skip(1).find_map(|l| {
        let w: Vec<&str> = l.split_whitespace().collect();
        let (addr, flags, mac, dev) = (w.first()?, w.get(2)?, w.get(3)?, w.get(5)?);
        if addr.parse::<Ipv4Addr>().ok()? != ip {
            return None;
        }
        // ATF_COM: resolved.
        let flags = u32::from_str_radix(flags.trim_start_matches("0x"), 16).ok()?;
        if flags & 0x2 == 0 {
            return None;
        }
        let mut m = [0u8; 6];
        let mut parts = mac.split(':');
        for b in &mut m {
            *b = u8::from_str_radix(parts.next()?, 16).ok()?;
        }
        Some((m, (*dev).to_owned()))
    })
}

/// A classic BPF program that passes only TCP from `from` to `to` (network-layer
/// packets, as an `AF_PACKET`/`SOCK_DGRAM` socket reads them).
fn answer_filter(from: SocketAddrV4, to: SocketAddrV4) -> Vec<libc::sock_filter> {
    let op = |code: u16, jt: u8, jf: u8, k: u32| libc::sock_filter { code, jt, jf, k };
    let ports = (u32::from(from.port()) << 16) | u32::from(to.port());
    vec![
        op(0x30, 0, 0, 9),                     // ldb [9]: protocol
        op(0x15, 0, 8, 6),                     // TCP, else drop
        op(0x20, 0, 0, 12),                    // ld [12]: source address
        op(0x15, 0, 6, u32::from(*from.ip())), // the VIP, else drop
        op(0x20, 0, 0, 16),                    // ld [16]: destination address
        op(0x15, 0, 4, u32::from(*to.ip())),   // ours, else drop
        op(0xb1, 0, 0, 0),                     // ldxb 4*([0]&0xf): header length
        op(0x40, 0, 0, 0),                     // ld [x+0]: both ports
        op(0x15, 0, 1, ports),                 // ours, else drop
        op(0x06, 0, 0, 0xffff),                // pass
        op(0x06, 0, 0, 0),                     // drop
    ]
}

/// One probe of `t`, waiting at most `timeout` for the answer to come back to the
/// director. The SYN comes from `client` (`None`: the director's own address towards the
/// real server, which the real server answers directly). With a `client` address off the
/// real server's link the answer reaches the director only if the real server routes
/// its replies to clients through the director: that is what the LVS-NAT and LVS-DR
/// route checks of `rvs doctor` ask. Such a probe's half-open connection is then reset
/// whether or not its answer was seen.
pub async fn syn(
    t: PathTarget,
    client: Option<Ipv4Addr>,
    timeout: Duration,
) -> io::Result<PathOutcome> {
    let vip = t.vip;
    let udp = towards(t.rip)?;
    let std::net::SocketAddr::V4(local) = udp.local_addr()? else {
        return Err(io::Error::other("no IPv4 source address"));
    };
    let ours = SocketAddrV4::new(
        client.unwrap_or(*local.ip()),
        32768 + u16::try_from(random() % 28_000).unwrap_or(0),
    );
    // Where the answer is read, and how the probe leaves.
    let (capture_on, out) = match t.via {
        PathVia::Mac => {
            let Some((mac, dev)) = neighbour(t.rip) else {
                return Ok(PathOutcome::NoNeighbour);
            };
            let ifindex = rustix::net::netdevice::name_to_index(&udp, &dev)?;
            (ifindex, Out::Frame(ifindex, mac))
        }
        // The answer comes back by whatever route the real server takes: every interface.
        PathVia::Ipip => (0, Out::Ipip(t.rip)),
    };
    let sock = rvs_packet::bound(capture_on, socket2::Type::DGRAM, rvs_packet::ETH_P_IP)?;
    sock.attach_filter(&answer_filter(vip, ours))?;
    let sender = match out {
        Out::Frame(..) => sock.try_clone()?,
        Out::Ipip(_) => {
            // The kernel writes the outer header (protocol 4, its route's source address);
            // what the socket would receive (the host's IP-in-IP traffic) is dropped.
            let s = socket2::Socket::new(
                socket2::Domain::IPV4,
                socket2::Type::RAW,
                Some(socket2::Protocol::from(4)),
            )?;
            s.attach_filter(&[libc::sock_filter {
                code: 0x06,
                jt: 0,
                jf: 0,
                k: 0,
            }])?;
            s
        }
    };
    let isn = random();
    let syn = segment(ours, vip, |b| {
        b.tcp(ours.port(), vip.port(), isn, 64240).syn()
    })?;
    out.send(&sender, &syn)?;
    let rst = segment(ours, vip, |b| {
        b.tcp(ours.port(), vip.port(), isn.wrapping_add(1), 0).rst()
    })?;
    let fd = rvs_packet::async_fd(sock)?;
    let wait = async {
        let mut buf = [0u8; 1500];
        loop {
            let mut guard = fd.readable().await?;
            let n = match guard.try_io(|s| s.get_ref().read(&mut buf)) {
                Ok(r) => r?,
                Err(_would_block) => continue,
            };
            // Packets that arrived before the filter was attached are checked here too.
            let Ok(ip) = Ipv4Slice::from_slice(&buf[..n]) else {
                continue;
            };
            if ip.header().source_addr() != *vip.ip()
                || ip.header().destination_addr() != *ours.ip()
            {
                continue;
            }
            let Ok(tcp) = TcpSlice::from_slice(ip.payload().payload) else {
                continue;
            };
            if tcp.source_port() != vip.port() || tcp.destination_port() != ours.port() {
                continue;
            }
            if tcp.rst() {
                return Ok::<_, io::Error>(PathOutcome::Refused);
            }
            if tcp.syn() && tcp.ack() && tcp.acknowledgment_number() == isn.wrapping_add(1) {
                return Ok(PathOutcome::Answered);
            }
        }
    };
    let outcome = match tokio::time::timeout(timeout, wait).await {
        Ok(r) => r?,
        Err(_) => PathOutcome::Silent,
    };
    // The real server forgets the half-open connection at once.
    if outcome == PathOutcome::Answered || client.is_some() {
        let _ = out.send(&sender, &rst);
    }
    Ok(outcome)
}

/// A UDP socket connected towards `rip`, which sends nothing: the kernel's route to it
/// shows through the socket (its local address, the director's towards the real server;
/// its `IP_MTU`, the path MTU).
pub fn towards(rip: Ipv4Addr) -> io::Result<std::net::UdpSocket> {
    let udp = std::net::UdpSocket::bind("0.0.0.0:0")?;
    udp.connect((rip, 9))?;
    Ok(udp)
}

/// How a probe's packets leave the director.
enum Out {
    /// In a frame on interface (index) to a MAC.
    Frame(u32, [u8; 6]),
    /// Inside IP-in-IP to an address.
    Ipip(Ipv4Addr),
}

impl Out {
    fn send(&self, s: &socket2::Socket, packet: &[u8]) -> io::Result<()> {
        let to = match self {
            Out::Frame(ifindex, mac) => {
                rvs_packet::link_addr(*ifindex, rvs_packet::ETH_P_IP, *mac)?
            }
            Out::Ipip(rip) => socket2::SockAddr::from(SocketAddrV4::new(*rip, 0)),
        };
        s.send_to(packet, &to).map(|_| ())
    }
}

/// An IPv4 packet from `from` to `to` with the TCP segment `tcp` builds.
fn segment(
    from: SocketAddrV4,
    to: SocketAddrV4,
    tcp: impl FnOnce(
        etherparse::PacketBuilderStep<etherparse::IpHeaders>,
    ) -> etherparse::PacketBuilderStep<etherparse::TcpHeader>,
) -> io::Result<Vec<u8>> {
    let b = tcp(PacketBuilder::ipv4(
        from.ip().octets(),
        to.ip().octets(),
        64,
    ));
    let mut out = Vec::with_capacity(b.size(0));
    b.write(&mut out, &[]).map_err(io::Error::other)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filter_jumps_land_on_pass_or_drop() {
        let f = answer_filter(
            "198.18.0.50:80"
                .parse()
                .unwrap_or(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 80)),
            "198.18.0.1:40000"
                .parse()
                .unwrap_or(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 1)),
        );
        for (i, ins) in f.iter().enumerate() {
            if ins.code == 0x15 {
                // Every false branch reaches the final drop; every true one the next
                // instruction or the pass.
                assert_eq!(i + 1 + usize::from(ins.jf), f.len() - 1, "instruction {i}");
            }
        }
        assert_eq!(f[f.len() - 2].k, 0xffff);
        assert_eq!(f[3].k, u32::from(Ipv4Addr::new(198, 18, 0, 50)));
        assert_eq!(f[8].k, 80 * 65536 + 40000);
    }
}
