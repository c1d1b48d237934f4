//! ICMPv6 neighbour advertisements (RFC 4861 §4.4) for unsolicited announcements: a new
//! MASTER tells the link that an IPv6 VIP now lives at its MAC. The kernel's raw ICMPv6
//! socket fills the checksum, so [`Repr::emit`] leaves it zero unless asked.

use crate::checksum::{fold, pseudo_header, sum};
use crate::Error;
use std::net::{IpAddr, Ipv6Addr};

pub const ICMPV6_NA: u8 = 136;
/// Header (8) + target (16) + target link-layer address option (8).
pub const LEN: usize = 32;
/// The all-nodes group unsolicited advertisements go to.
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    pub router: bool,
    pub solicited: bool,
    pub override_: bool,
    pub target: Ipv6Addr,
    /// The target link-layer address option.
    pub lladdr: [u8; 6],
}

impl Repr {
    /// The unsolicited advertisement keepalived sends: Override set, Solicited clear.
    pub fn unsolicited(target: Ipv6Addr, mac: [u8; 6], router: bool) -> Repr {
        Repr {
            router,
            solicited: false,
            override_: true,
            target,
            lladdr: mac,
        }
    }

    pub fn parse(b: &[u8]) -> Result<Repr, Error> {
        let b = b.get(..LEN).ok_or(Error::Truncated)?;
        if b[0] != ICMPV6_NA || b[1] != 0 || b[24] != 2 || b[25] != 1 {
            return Err(Error::Malformed);
        }
        let mut t = [0u8; 16];
        t.copy_from_slice(&b[8..24]);
        let mut lladdr = [0u8; 6];
        lladdr.copy_from_slice(&b[26..32]);
        Ok(Repr {
            router: b[4] & 0x80 != 0,
            solicited: b[4] & 0x40 != 0,
            override_: b[4] & 0x20 != 0,
            target: Ipv6Addr::from(t),
            lladdr,
        })
    }

    /// Writes the 32-byte message; with `checksum = Some((src, dst))` the ICMPv6 checksum
    /// is computed (for sockets that do not do it, and for tests).
    pub fn emit(
        &self,
        buf: &mut [u8],
        checksum: Option<(Ipv6Addr, Ipv6Addr)>,
    ) -> Result<usize, Error> {
        let b = buf.get_mut(..LEN).ok_or(Error::Truncated)?;
        b.fill(0);
        b[0] = ICMPV6_NA;
        b[4] = (u8::from(self.router) << 7)
            | (u8::from(self.solicited) << 6)
            | (u8::from(self.override_) << 5);
        b[8..24].copy_from_slice(&self.target.octets());
        b[24] = 2;
        b[25] = 1;
        b[26..32].copy_from_slice(&self.lladdr);
        if let Some((src, dst)) = checksum {
            let len = u32::try_from(LEN).unwrap_or(32);
            let c = fold(sum(b) + pseudo_header(IpAddr::V6(src), IpAddr::V6(dst), 58, len));
            b[2..4].copy_from_slice(&c.to_be_bytes());
        }
        Ok(LEN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_checksum_verifies() {
        let r = Repr::unsolicited(
            "fd00:198:18::50".parse().unwrap(),
            [2, 0, 0, 0, 0, 1],
            false,
        );
        let mut b = [0u8; LEN];
        let src: Ipv6Addr = "fd00:198:18::50".parse().unwrap();
        r.emit(&mut b, Some((src, ALL_NODES))).unwrap();
        assert_eq!(&b[..8], &[136, 0, b[2], b[3], 0x20, 0, 0, 0]);
        assert_eq!(Repr::parse(&b).unwrap(), r);
        let len = u32::try_from(LEN).unwrap();
        assert_eq!(
            fold(sum(&b) + pseudo_header(IpAddr::V6(src), IpAddr::V6(ALL_NODES), 58, len)),
            0
        );
        assert_eq!(Repr::parse(&b[..31]), Err(Error::Truncated));
    }
}
