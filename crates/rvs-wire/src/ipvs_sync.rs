//! The IPVS connection synchronisation protocol: the datagrams the kernel's sync daemon
//! (`ip_vs_sync.c`) multicasts from a master director to its backups, so that a backup
//! that takes over knows every connection's real server. Version 1 (the kernel's
//! default: IPv4 and IPv6, firewall marks, timeouts, persistence templates, options) is
//! parsed and emitted; version 0 (`net.ipv4.vs.sync_version=0`, IPv4 only) is parsed.
//! Layout: `shared/spec/ipvs-netlink.md` §5.
//!
//! Written by hand because no crate speaks it. Records are read with every length checked
//! against the datagram before use: a short or lying datagram is an error, never a panic.

use crate::Error;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The kernel's default multicast group and port.
pub const GROUP_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 81);
pub const PORT: u16 = 8848;
/// Version 1 header: reserved, `syncid`, size, `nr_conns`, version, spare.
pub const HEADER_LEN: usize = 8;
/// The fixed part of an IPv4 / IPv6 version 1 record.
pub const CONN_V4_LEN: usize = 36;
pub const CONN_V6_LEN: usize = 72;
/// A version 0 record, without / with its sequence data.
const CONN_V0_LEN: usize = 24;
const SEQ_LEN: usize = 24;

const STYPE_F_INET6: u8 = 1;
const OPT_SEQ_DATA: u8 = 1;
const OPT_PE_DATA: u8 = 2;
const OPT_PE_NAME: u8 = 3;
/// An option type with this bit may be skipped by a receiver that does not know it.
const OPT_F_PARAM: u8 = 1 << 6;
/// rvs's option (sent with `OPT_F_PARAM`, which the kernel skips): a FULLNAT
/// connection's local port and address (2 + 4 or 16 bytes). The kernel's own types are
/// 1–3 and 7 (`IPVS_OPT_PARAM`).
const OPT_RVS_LOCAL: u8 = 16;
/// `IP_VS_CONN_F_IN_SEQ | IP_VS_CONN_F_OUT_SEQ`: the record carries sequence data.
pub const F_SEQ_MASK: u32 = 0x0600;
/// The longest persistence-engine name the kernel sends (`IP_VS_PENAME_MAXLEN`).
const PE_NAME_MAX: usize = 16;

/// TCP sequence adjustments of a connection (in and out: initial sequence, delta,
/// previous delta), as the kernel keeps them for application helpers.
pub type Seq = [u32; 6];

/// One synchronised connection (or persistence template: `flags` has the template bit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnRepr {
    /// `IPPROTO_*`.
    pub protocol: u8,
    /// The kernel's connection flags (forwarding method in the low bits, template, …).
    pub flags: u32,
    /// The protocol state (TCP: 1 ESTABLISHED, 4 `FIN_WAIT`, …; templates: 0 or 1).
    pub state: u16,
    pub caddr: IpAddr,
    pub cport: u16,
    pub vaddr: IpAddr,
    pub vport: u16,
    pub daddr: IpAddr,
    pub dport: u16,
    pub fwmark: u32,
    /// Seconds (version 0 carries none: `None`, the state's own timeout applies).
    pub timeout_s: Option<u32>,
    pub seq: Option<Seq>,
    /// The persistence engine's data and name (`sip`), when one is used.
    pub pe_data: Vec<u8>,
    pub pe_name: Option<String>,
    /// FULLNAT (rvs to rvs): the connection's local address and port, the source the
    /// real server sees; of the client's family. Sent as an optional parameter the
    /// kernel skips.
    pub local: Option<(IpAddr, u16)>,
}

/// Which version a datagram was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V0,
    V1,
}

/// One datagram: its sync id and its connections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageRepr {
    pub syncid: u8,
    pub conns: Vec<ConnRepr>,
}

fn be16(b: &[u8], at: usize) -> Result<u16, Error> {
    b.get(at..at + 2)
        .map(|x| u16::from_be_bytes([x[0], x[1]]))
        .ok_or(Error::Truncated)
}

fn be32(b: &[u8], at: usize) -> Result<u32, Error> {
    b.get(at..at + 4)
        .map(|x| u32::from_be_bytes([x[0], x[1], x[2], x[3]]))
        .ok_or(Error::Truncated)
}

fn ne32(b: &[u8], at: usize) -> Result<u32, Error> {
    b.get(at..at + 4)
        .map(|x| u32::from_ne_bytes([x[0], x[1], x[2], x[3]]))
        .ok_or(Error::Truncated)
}

fn v4(b: &[u8], at: usize) -> Result<IpAddr, Error> {
    b.get(at..at + 4)
        .map(|x| IpAddr::from([x[0], x[1], x[2], x[3]]))
        .ok_or(Error::Truncated)
}

fn v6(b: &[u8], at: usize) -> Result<IpAddr, Error> {
    let x: [u8; 16] = b
        .get(at..at + 16)
        .and_then(|x| x.try_into().ok())
        .ok_or(Error::Truncated)?;
    Ok(IpAddr::from(Ipv6Addr::from(x)))
}

const fn align4(n: usize) -> usize {
    (n + 3) & !3
}

impl MessageRepr {
    /// Parses a datagram as the kernel's backup does: the header's size must be the
    /// datagram's length; version 1 when `version == 1` and the reserved and spare
    /// fields are zero, version 0 otherwise.
    pub fn parse(buf: &[u8]) -> Result<(MessageRepr, Version), Error> {
        if buf.len() < 4 {
            return Err(Error::Truncated);
        }
        if usize::from(be16(buf, 2)?) != buf.len() {
            return Err(Error::Malformed);
        }
        let is_v1 = buf.len() >= HEADER_LEN && buf[5] == 1 && buf[0] == 0 && buf[6..8] == [0, 0];
        if is_v1 {
            let (syncid, n) = (buf[1], usize::from(buf[4]));
            let mut conns = Vec::with_capacity(n);
            let mut at = HEADER_LEN;
            for _ in 0..n {
                at = align4(at);
                let (c, len) = parse_v1(buf.get(at..).ok_or(Error::Truncated)?)?;
                conns.push(c);
                at += len;
            }
            Ok((MessageRepr { syncid, conns }, Version::V1))
        } else {
            let (n, syncid) = (usize::from(buf[0]), buf[1]);
            let mut conns = Vec::with_capacity(n);
            let mut at = 4;
            for _ in 0..n {
                let (c, len) = parse_v0(buf.get(at..).ok_or(Error::Truncated)?)?;
                conns.push(c);
                at += len;
            }
            Ok((MessageRepr { syncid, conns }, Version::V0))
        }
    }

    /// The length of the version 1 datagram [`MessageRepr::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        self.conns
            .iter()
            .fold(HEADER_LEN, |at, c| align4(at) + c.v1_len())
    }

    /// Writes the version 1 datagram into `buf`; its length. At most 255 connections
    /// and 65535 bytes (the header's fields); a record's options fit its 12-bit size.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, Error> {
        let len = self.buffer_len();
        let n = u8::try_from(self.conns.len()).map_err(|_| Error::Malformed)?;
        let size = u16::try_from(len).map_err(|_| Error::Malformed)?;
        let out = buf.get_mut(..len).ok_or(Error::Truncated)?;
        out.fill(0);
        out[1] = self.syncid;
        out[2..4].copy_from_slice(&size.to_be_bytes());
        out[4] = n;
        out[5] = 1;
        let mut at = HEADER_LEN;
        for c in &self.conns {
            at = align4(at);
            at += c.emit_v1(&mut out[at..])?;
        }
        Ok(len)
    }
}

impl ConnRepr {
    fn fixed_len(&self) -> usize {
        if self.caddr.is_ipv6() {
            CONN_V6_LEN
        } else {
            CONN_V4_LEN
        }
    }

    /// Its version 1 record's length, without padding.
    fn v1_len(&self) -> usize {
        self.fixed_len()
            + self.seq.map_or(0, |_| 2 + SEQ_LEN)
            + if self.pe_data.is_empty() {
                0
            } else {
                2 + self.pe_data.len()
            }
            + self.pe_name.as_ref().map_or(0, |n| 2 + n.len())
            + self
                .local
                .map_or(0, |(a, _)| if a.is_ipv6() { 20 } else { 8 })
    }

    fn emit_v1(&self, out: &mut [u8]) -> Result<usize, Error> {
        let len = self.v1_len();
        let size = u16::try_from(len)
            .ok()
            .filter(|s| *s <= 0x0fff)
            .ok_or(Error::Malformed)?;
        let out = out.get_mut(..len).ok_or(Error::Truncated)?;
        let six = self.caddr.is_ipv6();
        if self.vaddr.is_ipv6() != six
            || self.daddr.is_ipv6() != six
            || self.local.is_some_and(|(a, _)| a.is_ipv6() != six)
        {
            return Err(Error::Malformed);
        }
        out[0] = if six { STYPE_F_INET6 } else { 0 };
        out[1] = self.protocol;
        out[2..4].copy_from_slice(&size.to_be_bytes());
        // The kernel clears HASHED (0x40) before sending; so does rvs.
        let mut flags = self.flags & !0x40;
        if self.seq.is_some() {
            flags |= F_SEQ_MASK;
        }
        out[4..8].copy_from_slice(&flags.to_be_bytes());
        out[8..10].copy_from_slice(&self.state.to_be_bytes());
        out[10..12].copy_from_slice(&self.cport.to_be_bytes());
        out[12..14].copy_from_slice(&self.vport.to_be_bytes());
        out[14..16].copy_from_slice(&self.dport.to_be_bytes());
        out[16..20].copy_from_slice(&self.fwmark.to_be_bytes());
        out[20..24].copy_from_slice(&self.timeout_s.unwrap_or(0).to_be_bytes());
        let mut at = 24;
        for a in [self.caddr, self.vaddr, self.daddr] {
            match a {
                IpAddr::V4(x) => {
                    out[at..at + 4].copy_from_slice(&x.octets());
                    at += 4;
                }
                IpAddr::V6(x) => {
                    out[at..at + 16].copy_from_slice(&x.octets());
                    at += 16;
                }
            }
        }
        if let Some(seq) = self.seq {
            out[at] = OPT_SEQ_DATA;
            out[at + 1] = 24;
            at += 2;
            for v in seq {
                out[at..at + 4].copy_from_slice(&v.to_be_bytes());
                at += 4;
            }
        }
        let mut opt = |ty: u8, data: &[u8], at: &mut usize| -> Result<(), Error> {
            let l = u8::try_from(data.len()).map_err(|_| Error::Malformed)?;
            out[*at] = ty;
            out[*at + 1] = l;
            out[*at + 2..*at + 2 + data.len()].copy_from_slice(data);
            *at += 2 + data.len();
            Ok(())
        };
        if !self.pe_data.is_empty() {
            opt(OPT_PE_DATA, &self.pe_data, &mut at)?;
        }
        if let Some(n) = &self.pe_name {
            if n.is_empty() || n.len() > PE_NAME_MAX {
                return Err(Error::Malformed);
            }
            opt(OPT_PE_NAME, n.as_bytes(), &mut at)?;
        }
        if let Some((a, port)) = self.local {
            let mut data = port.to_be_bytes().to_vec();
            match a {
                IpAddr::V4(x) => data.extend_from_slice(&x.octets()),
                IpAddr::V6(x) => data.extend_from_slice(&x.octets()),
            }
            opt(OPT_F_PARAM | OPT_RVS_LOCAL, &data, &mut at)?;
        }
        Ok(len)
    }
}

/// A version 1 record at the start of `b`: it, and its length without padding.
fn parse_v1(b: &[u8]) -> Result<(ConnRepr, usize), Error> {
    let ty = *b.first().ok_or(Error::Truncated)?;
    if ty & !STYPE_F_INET6 != 0 {
        return Err(Error::Malformed);
    }
    let six = ty & STYPE_F_INET6 != 0;
    let ver_size = be16(b, 2)?;
    if ver_size >> 12 != 0 {
        return Err(Error::Malformed);
    }
    let size = usize::from(ver_size & 0x0fff);
    let fixed = if six { CONN_V6_LEN } else { CONN_V4_LEN };
    if size < fixed {
        return Err(Error::Malformed);
    }
    let rec = b.get(..size).ok_or(Error::Truncated)?;
    let addr = if six { v6 } else { v4 };
    let w = if six { 16 } else { 4 };
    let mut c = ConnRepr {
        protocol: rec[1],
        flags: be32(rec, 4)?,
        state: be16(rec, 8)?,
        cport: be16(rec, 10)?,
        vport: be16(rec, 12)?,
        dport: be16(rec, 14)?,
        fwmark: be32(rec, 16)?,
        timeout_s: Some(be32(rec, 20)?),
        caddr: addr(rec, 24)?,
        vaddr: addr(rec, 24 + w)?,
        daddr: addr(rec, 24 + 2 * w)?,
        seq: None,
        pe_data: Vec::new(),
        pe_name: None,
        local: None,
    };
    let mut at = fixed;
    let mut seen = 0u8;
    while at < size {
        let ty = rec[at];
        let len = usize::from(*rec.get(at + 1).ok_or(Error::Truncated)?);
        let data = rec.get(at + 2..at + 2 + len).ok_or(Error::Truncated)?;
        if len == 0 {
            return Err(Error::Malformed);
        }
        let kind = ty & !OPT_F_PARAM;
        if (1..=3).contains(&kind) {
            if seen & (1 << kind) != 0 {
                return Err(Error::Malformed);
            }
            seen |= 1 << kind;
        }
        match kind {
            OPT_SEQ_DATA => {
                if len != SEQ_LEN {
                    return Err(Error::Malformed);
                }
                let mut s = [0u32; 6];
                for (i, v) in s.iter_mut().enumerate() {
                    *v = be32(data, 4 * i)?;
                }
                c.seq = Some(s);
            }
            OPT_PE_DATA => c.pe_data = data.to_vec(),
            OPT_PE_NAME => {
                if len > PE_NAME_MAX {
                    return Err(Error::Malformed);
                }
                c.pe_name = Some(String::from_utf8(data.to_vec()).map_err(|_| Error::Malformed)?);
            }
            OPT_RVS_LOCAL if ty & OPT_F_PARAM != 0 => {
                let a = match (len, six) {
                    (6, false) => v4(data, 2)?,
                    (18, true) => v6(data, 2)?,
                    _ => return Err(Error::Malformed),
                };
                c.local = Some((a, be16(data, 0)?));
            }
            // An unknown option the sender marked optional is skipped.
            _ if ty & OPT_F_PARAM != 0 => {}
            _ => return Err(Error::Malformed),
        }
        at += 2 + len;
    }
    Ok((c, size))
}

/// A version 0 record at the start of `b` (IPv4; its sequence data in the sender's
/// byte order, which is the kernel's quirk: read here as this host's).
fn parse_v0(b: &[u8]) -> Result<(ConnRepr, usize), Error> {
    let rec = b.get(..CONN_V0_LEN).ok_or(Error::Truncated)?;
    let flags = u32::from(be16(rec, 20)?);
    let mut c = ConnRepr {
        protocol: rec[1],
        cport: be16(rec, 2)?,
        vport: be16(rec, 4)?,
        dport: be16(rec, 6)?,
        caddr: v4(rec, 8)?,
        vaddr: v4(rec, 12)?,
        daddr: v4(rec, 16)?,
        flags,
        state: be16(rec, 22)?,
        fwmark: 0,
        timeout_s: None,
        seq: None,
        pe_data: Vec::new(),
        pe_name: None,
        local: None,
    };
    if flags & F_SEQ_MASK == 0 {
        return Ok((c, CONN_V0_LEN));
    }
    let seq = b
        .get(CONN_V0_LEN..CONN_V0_LEN + SEQ_LEN)
        .ok_or(Error::Truncated)?;
    let mut s = [0u32; 6];
    for (i, v) in s.iter_mut().enumerate() {
        *v = ne32(seq, 4 * i)?;
    }
    c.seq = Some(s);
    Ok((c, CONN_V0_LEN + SEQ_LEN))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn conn(six: bool) -> ConnRepr {
        let (c, v, d) = if six {
            (
                "fd00:198:18::100".parse().unwrap_or(IpAddr::from([0u8; 4])),
                "fd00:198:18::50".parse().unwrap_or(IpAddr::from([0u8; 4])),
                "fd00:198:18::11".parse().unwrap_or(IpAddr::from([0u8; 4])),
            )
        } else {
            (
                IpAddr::from([198, 18, 1, 100]),
                IpAddr::from([198, 18, 0, 50]),
                IpAddr::from([198, 18, 0, 11]),
            )
        };
        ConnRepr {
            protocol: 6,
            flags: 0x0003, // DR (IP_VS_CONN_F_DROUTE)
            state: 1,
            caddr: c,
            cport: 40000,
            vaddr: v,
            vport: 80,
            daddr: d,
            dport: 80,
            fwmark: 0,
            timeout_s: Some(900),
            seq: None,
            pe_data: Vec::new(),
            pe_name: None,
            local: None,
        }
    }

    /// A datagram laid out byte by byte from the specification (§5.2, §5.3): one IPv4
    /// ESTABLISHED TCP connection, DR, 900 s, syncid 51.
    #[test]
    fn reads_the_kernels_layout() {
        let mut d = vec![0u8, 51, 0, 44, 1, 1, 0, 0];
        d.extend_from_slice(&[0, 6, 0, 36]); // type v4, TCP, ver 0 | size 36
        d.extend_from_slice(&[0, 0, 0, 3]); // flags: DROUTE
        d.extend_from_slice(&[0, 1]); // ESTABLISHED
        d.extend_from_slice(&[0x9c, 0x40, 0, 80, 0, 80]); // cport 40000, vport, dport
        d.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0x03, 0x84]); // fwmark 0, timeout 900
        d.extend_from_slice(&[198, 18, 1, 100, 198, 18, 0, 50, 198, 18, 0, 11]);
        assert_eq!(d.len(), 44);
        let (m, v) = MessageRepr::parse(&d).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(v, Version::V1);
        assert_eq!(m.syncid, 51);
        assert_eq!(m.conns, vec![conn(false)]);
        // And rvs writes exactly those bytes.
        let mut out = vec![0u8; m.buffer_len()];
        assert_eq!(m.emit(&mut out), Ok(44));
        assert_eq!(out, d);
    }

    /// A FULLNAT connection's local end (rvs to rvs) follows the fixed record as an
    /// option whose type has the kernel's "optional" bit (`IPVS_OPT_F_PARAM`): a kernel
    /// backup skips it (`ip_vs_proc_sync_conn`), an rvs one reads it back.
    #[test]
    fn the_fullnat_local_end_is_an_option_the_kernel_skips() {
        for six in [false, true] {
            let mut c = conn(six);
            c.local = Some(if six {
                (
                    "fd00:198:18::60".parse().unwrap_or(IpAddr::from([0u8; 4])),
                    30000,
                )
            } else {
                (IpAddr::from([198, 18, 0, 60]), 30000)
            });
            let m = MessageRepr {
                syncid: 1,
                conns: vec![c.clone()],
            };
            let mut out = vec![0u8; m.buffer_len()];
            assert_eq!(m.emit(&mut out).map(|n| n == out.len()), Ok(true));
            let fixed = HEADER_LEN + if six { CONN_V6_LEN } else { CONN_V4_LEN };
            assert_eq!(out[fixed], OPT_F_PARAM | OPT_RVS_LOCAL);
            assert_eq!(usize::from(out[fixed + 1]), if six { 18 } else { 6 });
            assert_eq!(out[fixed + 2..fixed + 4], 30000u16.to_be_bytes());
            assert_eq!(MessageRepr::parse(&out).map(|(m, _)| m.conns), Ok(vec![c]));
            // The same bytes without the optional bit: a mandatory unknown option,
            // which the kernel refuses (and so does rvs).
            let mut mandatory = out.clone();
            mandatory[fixed] = OPT_RVS_LOCAL;
            assert_eq!(MessageRepr::parse(&mandatory), Err(Error::Malformed));
        }
    }

    /// A version 0 datagram (`sync_version=0`): 4-byte header, 24-byte records.
    #[test]
    fn reads_version_0() {
        let mut d = vec![1u8, 7, 0, 28];
        d.extend_from_slice(&[0, 17, 0x9c, 0x40, 0, 53, 0, 53]);
        d.extend_from_slice(&[198, 18, 1, 100, 198, 18, 0, 50, 198, 18, 0, 11]);
        d.extend_from_slice(&[0, 0, 0, 0]); // flags MASQ, state 0
        let (m, v) = MessageRepr::parse(&d).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(v, Version::V0);
        assert_eq!(m.syncid, 7);
        assert_eq!(m.conns[0].protocol, 17);
        assert_eq!(m.conns[0].vport, 53);
        assert_eq!(m.conns[0].timeout_s, None);
    }

    #[test]
    fn refuses_what_the_kernel_refuses() {
        let m = MessageRepr {
            syncid: 1,
            conns: vec![conn(false)],
        };
        let mut good = vec![0u8; m.buffer_len()];
        let _ = m.emit(&mut good);
        let bad = |f: &dyn Fn(&mut Vec<u8>)| {
            let mut d = good.clone();
            f(&mut d);
            MessageRepr::parse(&d).map(|_| ())
        };
        // The size field must be the datagram's length.
        assert_eq!(bad(&|d| d.push(0)), Err(Error::Malformed));
        // A record longer than the datagram.
        assert!(bad(&|d| d[11] = 60).is_err());
        // An unknown type bit; a record version other than 0.
        assert_eq!(bad(&|d| d[8] = 2), Err(Error::Malformed));
        assert_eq!(bad(&|d| d[10] = 0x10), Err(Error::Malformed));
        // An unknown mandatory option, a zero-length option, the same option twice.
        let with_opts = |opts: &[u8]| {
            let mut d = good.clone();
            d.extend_from_slice(opts);
            let size = u16::try_from(36 + opts.len()).unwrap_or(0);
            d[10..12].copy_from_slice(&size.to_be_bytes());
            let total = u16::try_from(d.len()).unwrap_or(0);
            d[2..4].copy_from_slice(&total.to_be_bytes());
            MessageRepr::parse(&d).map(|(m, _)| m)
        };
        assert_eq!(with_opts(&[9, 1, 0]), Err(Error::Malformed));
        assert!(
            with_opts(&[9 | OPT_F_PARAM, 1, 0]).is_ok(),
            "optional, skipped"
        );
        assert_eq!(with_opts(&[OPT_PE_DATA, 0]), Err(Error::Malformed));
        assert_eq!(
            with_opts(&[OPT_PE_DATA, 1, 7, OPT_PE_DATA, 1, 7]),
            Err(Error::Malformed)
        );
        assert_eq!(
            with_opts(&[OPT_PE_NAME, 3, b's', b'i', b'p']).map(|m| m.conns[0].pe_name.clone()),
            Ok(Some("sip".to_owned()))
        );
        assert_eq!(MessageRepr::parse(&[0, 1]), Err(Error::Truncated));
    }

    fn arb_conn() -> impl Strategy<Value = ConnRepr> {
        (
            any::<bool>(),
            any::<(u8, u32, u16, u16, u16, u16, u32, u32)>(),
            proptest::option::of(any::<[u32; 6]>()),
            proptest::collection::vec(any::<u8>(), 0..40),
            proptest::option::of("[a-z]{1,16}"),
            any::<([u8; 16], [u8; 16], [u8; 16])>(),
            proptest::option::of(any::<([u8; 16], u16)>()),
        )
            .prop_map(
                |(six, (p, f, st, cp, vp, dp, fw, t), seq, pe, name, a, local)| {
                    let ip = |b: [u8; 16]| {
                        if six {
                            IpAddr::from(b)
                        } else {
                            IpAddr::from([b[0], b[1], b[2], b[3]])
                        }
                    };
                    ConnRepr {
                        protocol: p,
                        // What a record carries back: HASHED cleared, SEQ set with seq.
                        flags: (f & !0x40 & !F_SEQ_MASK) | seq.map_or(0, |_| F_SEQ_MASK),
                        state: st,
                        caddr: ip(a.0),
                        cport: cp,
                        vaddr: ip(a.1),
                        vport: vp,
                        daddr: ip(a.2),
                        dport: dp,
                        fwmark: fw,
                        timeout_s: Some(t),
                        seq,
                        pe_data: pe,
                        pe_name: name,
                        local: local.map(|(l, port)| (ip(l), port)),
                    }
                },
            )
    }

    proptest! {
        /// Whatever rvs writes, it reads back the same.
        #[test]
        fn emit_then_parse_is_identity(syncid: u8, conns in proptest::collection::vec(arb_conn(), 0..12)) {
            let m = MessageRepr { syncid, conns };
            let mut buf = vec![0u8; m.buffer_len()];
            let n = m.emit(&mut buf);
            prop_assert_eq!(n, Ok(buf.len()));
            prop_assert_eq!(MessageRepr::parse(&buf), Ok((m, Version::V1)));
        }

        /// Any bytes, any length: an answer, never a panic.
        #[test]
        fn arbitrary_datagrams_never_panic(mut d in proptest::collection::vec(any::<u8>(), 0..600), v1: bool) {
            if d.len() >= 8 {
                let n = u16::try_from(d.len()).unwrap_or(0).to_be_bytes();
                d[2] = n[0];
                d[3] = n[1];
                if v1 { d[0] = 0; d[5] = 1; d[6] = 0; d[7] = 0; }
            }
            let _ = MessageRepr::parse(&d);
        }
    }
}
