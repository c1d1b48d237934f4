//! VRRP advertisements: version 2 (RFC 3768, IPv4, with authentication) and version 3
//! (RFC 5798, IPv4 and IPv6). The checksum of v2 covers the message only; v3 adds the
//! pseudo-header with the *actual* destination (the group, or each unicast peer).

use crate::checksum::{fold, pseudo_header, sum};
use crate::Error;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// IP protocol number of VRRP.
pub const PROTO: u8 = 112;
/// The IPv4 and IPv6 multicast groups.
pub const GROUP4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
pub const GROUP6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);

mod field {
    pub const VER_TYPE: usize = 0;
    pub const VRID: usize = 1;
    pub const PRIORITY: usize = 2;
    pub const COUNT: usize = 3;
    /// v2: auth type; v3: reserved (4 bits) + the high 4 bits of the interval.
    pub const AUTH_OR_INT_HI: usize = 4;
    /// v2: interval (seconds); v3: the low 8 bits of the interval (centiseconds).
    pub const INT: usize = 5;
    pub const CHECKSUM: std::ops::Range<usize> = 6..8;
    pub const ADDRS: usize = 8;
}

/// Length of the v2 authentication data.
pub const AUTH_LEN: usize = 8;

/// A read-only or writable view of a VRRP message.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checks (accessors may then panic: use `new_checked`).
    pub fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wraps a buffer, checking that the header and the addresses it announces (and, for
    /// v2, the authentication data) fit, for an address family of `v6`.
    pub fn new_checked(buffer: T, v6: bool) -> Result<Packet<T>, Error> {
        let p = Packet { buffer };
        let b = p.buffer.as_ref();
        if b.len() < field::ADDRS {
            return Err(Error::Truncated);
        }
        if b.len() < p.len_for(v6) {
            return Err(Error::Truncated);
        }
        Ok(p)
    }

    fn len_for(&self, v6: bool) -> usize {
        let n = usize::from(self.count());
        let addr = if v6 { 16 } else { 4 };
        field::ADDRS + n * addr + if self.version() == 2 { AUTH_LEN } else { 0 }
    }

    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_TYPE] >> 4
    }
    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[field::VER_TYPE] & 0x0f
    }
    pub fn vrid(&self) -> u8 {
        self.buffer.as_ref()[field::VRID]
    }
    pub fn priority(&self) -> u8 {
        self.buffer.as_ref()[field::PRIORITY]
    }
    pub fn count(&self) -> u8 {
        self.buffer.as_ref()[field::COUNT]
    }
    /// v2 only.
    pub fn auth_type(&self) -> u8 {
        self.buffer.as_ref()[field::AUTH_OR_INT_HI]
    }
    /// The advertisement interval: seconds for v2, centiseconds for v3.
    pub fn interval(&self) -> u16 {
        let b = self.buffer.as_ref();
        if self.version() == 2 {
            u16::from(b[field::INT])
        } else {
            (u16::from(b[field::AUTH_OR_INT_HI] & 0x0f) << 8) | u16::from(b[field::INT])
        }
    }
    pub fn checksum(&self) -> u16 {
        let b = self.buffer.as_ref();
        u16::from_be_bytes([b[field::CHECKSUM.start], b[field::CHECKSUM.start + 1]])
    }
}

/// The content of an advertisement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repr {
    pub version: u8,
    pub vrid: u8,
    pub priority: u8,
    /// v2: seconds; v3: centiseconds (12 bits).
    pub interval: u16,
    pub addrs: Vec<IpAddr>,
    /// v2 authentication: type (0 none, 1 simple password, 2 AH) and the 8 data bytes.
    pub auth_type: u8,
    pub auth_data: [u8; AUTH_LEN],
}

/// How to compute or verify the checksum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checksum {
    /// v2, or v3 with `v3_checksum_as_v2`: the message only.
    MessageOnly,
    /// v3: with the pseudo-header of this source and (actual) destination.
    Pseudo { src: IpAddr, dst: IpAddr },
    /// IPv6 raw sockets with `IPV6_CHECKSUM`: the kernel verifies it on receive (dropping
    /// bad packets) and writes it on send, so parse skips it and emit leaves it zero.
    Kernel,
}

impl Repr {
    /// Parses and validates a message (type advertisement, version 2 or 3, checksum).
    #[expect(
        clippy::many_single_char_names,
        reason = "p, b, n: packet, bytes, count, as in smoltcp"
    )]
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>, v6: bool, ck: Checksum) -> Result<Repr, Error> {
        let b = p.buffer.as_ref();
        if p.msg_type() != 1 || !(p.version() == 2 || p.version() == 3) || (v6 && p.version() == 2)
        {
            return Err(Error::Malformed);
        }
        let len = p.len_for(v6);
        let msg = b.get(..len).ok_or(Error::Truncated)?;
        let computed = match ck {
            Checksum::MessageOnly => fold(sum(msg)),
            Checksum::Pseudo { src, dst } => {
                fold(sum(msg) + pseudo_header(src, dst, PROTO, u32::try_from(len).unwrap_or(0)))
            }
            Checksum::Kernel => 0,
        };
        if computed != 0 {
            return Err(Error::Checksum);
        }
        let n = usize::from(p.count());
        let mut addrs = Vec::with_capacity(n);
        for i in 0..n {
            if v6 {
                let s = field::ADDRS + 16 * i;
                let mut o = [0u8; 16];
                o.copy_from_slice(&b[s..s + 16]);
                addrs.push(IpAddr::V6(o.into()));
            } else {
                let s = field::ADDRS + 4 * i;
                addrs.push(IpAddr::V4(Ipv4Addr::new(
                    b[s],
                    b[s + 1],
                    b[s + 2],
                    b[s + 3],
                )));
            }
        }
        let mut auth_data = [0u8; AUTH_LEN];
        let auth_type = if p.version() == 2 {
            let s = field::ADDRS + 4 * n;
            auth_data.copy_from_slice(&b[s..s + AUTH_LEN]);
            p.auth_type()
        } else {
            0
        };
        Ok(Repr {
            version: p.version(),
            vrid: p.vrid(),
            priority: p.priority(),
            interval: p.interval(),
            addrs,
            auth_type,
            auth_data,
        })
    }

    pub fn buffer_len(&self) -> usize {
        let per = if self.addrs.first().is_some_and(IpAddr::is_ipv6) {
            16
        } else {
            4
        };
        field::ADDRS + per * self.addrs.len() + if self.version == 2 { AUTH_LEN } else { 0 }
    }

    /// Writes the message into `buf` (at least `buffer_len` bytes) with its checksum.
    pub fn emit(&self, buf: &mut [u8], ck: Checksum) -> Result<usize, Error> {
        let len = self.buffer_len();
        let b = buf.get_mut(..len).ok_or(Error::Truncated)?;
        if self.addrs.len() > 255 || (self.version == 3 && self.interval > 0x0fff) {
            return Err(Error::Malformed);
        }
        b[field::VER_TYPE] = (self.version << 4) | 1;
        b[field::VRID] = self.vrid;
        b[field::PRIORITY] = self.priority;
        b[field::COUNT] = u8::try_from(self.addrs.len()).map_err(|_| Error::Malformed)?;
        if self.version == 2 {
            b[field::AUTH_OR_INT_HI] = self.auth_type;
            b[field::INT] = u8::try_from(self.interval).map_err(|_| Error::Malformed)?;
        } else {
            let [hi, lo] = self.interval.to_be_bytes();
            b[field::AUTH_OR_INT_HI] = hi & 0x0f;
            b[field::INT] = lo;
        }
        b[field::CHECKSUM].fill(0);
        let mut off = field::ADDRS;
        for a in &self.addrs {
            match a {
                IpAddr::V4(v) => {
                    b[off..off + 4].copy_from_slice(&v.octets());
                    off += 4;
                }
                IpAddr::V6(v) => {
                    b[off..off + 16].copy_from_slice(&v.octets());
                    off += 16;
                }
            }
        }
        if self.version == 2 {
            b[off..off + AUTH_LEN].copy_from_slice(&self.auth_data);
        }
        let c = match ck {
            Checksum::MessageOnly => fold(sum(b)),
            Checksum::Pseudo { src, dst } => {
                fold(sum(b) + pseudo_header(src, dst, PROTO, u32::try_from(len).unwrap_or(0)))
            }
            Checksum::Kernel => 0,
        };
        b[field::CHECKSUM].copy_from_slice(&c.to_be_bytes());
        Ok(len)
    }

    /// v2 simple-text authentication data: the password truncated to 8 bytes, NUL-padded.
    pub fn password(pass: &str) -> [u8; AUTH_LEN] {
        let mut d = [0u8; AUTH_LEN];
        for (o, i) in d.iter_mut().zip(pass.bytes()) {
            *o = i;
        }
        d
    }
}
