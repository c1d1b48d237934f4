//! Ethernet ARP (RFC 826) for gratuitous announcements: a new MASTER tells the segment
//! that the VIP now lives at its MAC.

use crate::Error;
use std::net::Ipv4Addr;

pub const ETHERTYPE_ARP: u16 = 0x0806;
pub const FRAME_LEN: usize = 14 + 28;

/// An ARP packet of Ethernet/IPv4 (28 bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repr {
    /// 1 request, 2 reply.
    pub op: u16,
    pub sender_mac: [u8; 6],
    pub sender_ip: Ipv4Addr,
    pub target_mac: [u8; 6],
    pub target_ip: Ipv4Addr,
}

impl Repr {
    /// The gratuitous ARP keepalived sends: a request from `mac` for `ip` to `ip`, target
    /// MAC broadcast.
    pub fn gratuitous(mac: [u8; 6], ip: Ipv4Addr) -> Repr {
        Repr {
            op: 1,
            sender_mac: mac,
            sender_ip: ip,
            target_mac: [0xff; 6],
            target_ip: ip,
        }
    }

    /// An ARP probe (RFC 5227): who has `ip`, asked from `mac` without a sender address,
    /// so that no neighbour cache learns anything from it; the holder of `ip` answers.
    pub fn probe(mac: [u8; 6], ip: Ipv4Addr) -> Repr {
        Repr {
            op: 1,
            sender_mac: mac,
            sender_ip: Ipv4Addr::UNSPECIFIED,
            target_mac: [0; 6],
            target_ip: ip,
        }
    }

    /// The ARP packet of a whole Ethernet frame (`Malformed` for another ethertype).
    pub fn parse_frame(b: &[u8]) -> Result<Repr, Error> {
        let ty = b.get(12..14).ok_or(Error::Truncated)?;
        if ty != ETHERTYPE_ARP.to_be_bytes() {
            return Err(Error::Malformed);
        }
        Repr::parse(b.get(14..).ok_or(Error::Truncated)?)
    }

    pub fn parse(b: &[u8]) -> Result<Repr, Error> {
        let b = b.get(..28).ok_or(Error::Truncated)?;
        if b[0..2] != [0, 1] || b[2..4] != [8, 0] || b[4] != 6 || b[5] != 4 {
            return Err(Error::Malformed);
        }
        let mac = |o: usize| {
            let mut m = [0u8; 6];
            m.copy_from_slice(&b[o..o + 6]);
            m
        };
        let ip = |o: usize| Ipv4Addr::new(b[o], b[o + 1], b[o + 2], b[o + 3]);
        Ok(Repr {
            op: u16::from_be_bytes([b[6], b[7]]),
            sender_mac: mac(8),
            sender_ip: ip(14),
            target_mac: mac(18),
            target_ip: ip(24),
        })
    }

    /// Writes the 28-byte ARP packet.
    pub fn emit(&self, b: &mut [u8]) -> Result<usize, Error> {
        let b = b.get_mut(..28).ok_or(Error::Truncated)?;
        b[0..2].copy_from_slice(&[0, 1]);
        b[2..4].copy_from_slice(&[8, 0]);
        b[4] = 6;
        b[5] = 4;
        b[6..8].copy_from_slice(&self.op.to_be_bytes());
        b[8..14].copy_from_slice(&self.sender_mac);
        b[14..18].copy_from_slice(&self.sender_ip.octets());
        b[18..24].copy_from_slice(&self.target_mac);
        b[24..28].copy_from_slice(&self.target_ip.octets());
        Ok(28)
    }

    /// The whole Ethernet frame: broadcast destination, our MAC as source.
    pub fn emit_frame(&self, b: &mut [u8]) -> Result<usize, Error> {
        let b = b.get_mut(..FRAME_LEN).ok_or(Error::Truncated)?;
        b[0..6].copy_from_slice(&[0xff; 6]);
        b[6..12].copy_from_slice(&self.sender_mac);
        b[12..14].copy_from_slice(&ETHERTYPE_ARP.to_be_bytes());
        self.emit(&mut b[14..])?;
        Ok(FRAME_LEN)
    }
}
