//! `AgentX` PDUs (RFC 2741 §6), the subset a read-only subagent sends and receives.
//!
//! Encoding: rvs always writes network byte order (the `NETWORK_BYTE_ORDER` flag set) and
//! no prefix compression; it reads either byte order, as the flag of each PDU says, and a
//! non-default context is skipped. Every read checks the length first; a PDU that does not
//! fit is an [`Error`], never a panic.

use crate::{Oid, Tree, Value};

/// `AgentX` protocol version.
pub const VERSION: u8 = 1;
/// Size of the fixed header.
pub const HEADER: usize = 20;
/// The largest payload rvs accepts (a request names OIDs; a megabyte is far beyond any).
pub const MAX_PAYLOAD: u32 = 1 << 20;

const FLAG_NON_DEFAULT_CONTEXT: u8 = 0x08;
const FLAG_NETWORK_BYTE_ORDER: u8 = 0x10;

/// The PDU types (RFC 2741 §6.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Open = 1,
    Close = 2,
    Register = 3,
    Unregister = 4,
    Get = 5,
    GetNext = 6,
    GetBulk = 7,
    TestSet = 8,
    CommitSet = 9,
    UndoSet = 10,
    CleanupSet = 11,
    Notify = 12,
    Ping = 13,
    IndexAllocate = 14,
    IndexDeallocate = 15,
    AddAgentCaps = 16,
    RemoveAgentCaps = 17,
    Response = 18,
}

impl Kind {
    fn of(b: u8) -> Option<Kind> {
        use Kind::{
            AddAgentCaps, CleanupSet, Close, CommitSet, Get, GetBulk, GetNext, IndexAllocate,
            IndexDeallocate, Notify, Open, Ping, Register, RemoveAgentCaps, Response, TestSet,
            UndoSet, Unregister,
        };
        Some(match b {
            1 => Open,
            2 => Close,
            3 => Register,
            4 => Unregister,
            5 => Get,
            6 => GetNext,
            7 => GetBulk,
            8 => TestSet,
            9 => CommitSet,
            10 => UndoSet,
            11 => CleanupSet,
            12 => Notify,
            13 => Ping,
            14 => IndexAllocate,
            15 => IndexDeallocate,
            16 => AddAgentCaps,
            17 => RemoveAgentCaps,
            18 => Response,
            _ => return None,
        })
    }
}

/// Why a PDU could not be read or written.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    #[error("truncated AgentX PDU ({0})")]
    Short(&'static str),
    #[error("AgentX version {0} (rvs speaks 1)")]
    Version(u8),
    #[error("unknown AgentX PDU type {0}")]
    Type(u8),
    #[error("AgentX payload of {0} bytes (at most {MAX_PAYLOAD})")]
    TooLarge(u32),
    #[error("malformed AgentX PDU: {0}")]
    Bad(&'static str),
}

/// The fixed header of a PDU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub kind: Kind,
    pub flags: u8,
    pub session: u32,
    pub transaction: u32,
    pub packet: u32,
    pub payload: u32,
}

impl Header {
    /// Reads a header (the first [`HEADER`] bytes of a PDU).
    pub fn parse(b: &[u8]) -> Result<Header, Error> {
        let b = b.get(..HEADER).ok_or(Error::Short("header"))?;
        if b[0] != VERSION {
            return Err(Error::Version(b[0]));
        }
        let kind = Kind::of(b[1]).ok_or(Error::Type(b[1]))?;
        let flags = b[2];
        let mut r = Reader {
            b: &b[4..],
            big: flags & FLAG_NETWORK_BYTE_ORDER != 0,
        };
        let h = Header {
            kind,
            flags,
            session: r.u32()?,
            transaction: r.u32()?,
            packet: r.u32()?,
            payload: r.u32()?,
        };
        if h.payload > MAX_PAYLOAD {
            return Err(Error::TooLarge(h.payload));
        }
        if !h.payload.is_multiple_of(4) {
            return Err(Error::Bad("payload length is not a multiple of 4"));
        }
        Ok(h)
    }

    /// The header of an answer to this PDU (same session, transaction and packet).
    #[must_use]
    pub fn reply(&self, kind: Kind) -> Header {
        Header {
            kind,
            flags: 0,
            payload: 0,
            ..*self
        }
    }
}

/// A `GetNext` search range: from `start` (itself included when `include`) to before `end`
/// (no bound when empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Range {
    pub start: Oid,
    pub include: bool,
    pub end: Oid,
}

/// What a subagent receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pdu {
    Get(Vec<Range>),
    GetNext(Vec<Range>),
    GetBulk {
        non_repeaters: u16,
        max_repetitions: u16,
        ranges: Vec<Range>,
    },
    /// The master's answer to one of ours.
    Response {
        error: u16,
        index: u16,
    },
    /// The master ends the session (reason, RFC 2741 §6.2.2).
    Close(u8),
    /// Anything else (sets, which rvs refuses: its objects are read-only).
    Other(Kind),
}

/// Reads a PDU's payload.
pub fn decode(h: &Header, payload: &[u8]) -> Result<Pdu, Error> {
    let mut r = Reader {
        b: payload,
        big: h.flags & FLAG_NETWORK_BYTE_ORDER != 0,
    };
    let has_context = h.flags & FLAG_NON_DEFAULT_CONTEXT != 0;
    Ok(match h.kind {
        Kind::Get | Kind::GetNext | Kind::GetBulk => {
            if has_context {
                r.octets()?;
            }
            let bulk = if h.kind == Kind::GetBulk {
                Some((r.u16()?, r.u16()?))
            } else {
                None
            };
            let mut ranges = Vec::new();
            while !r.b.is_empty() {
                let (start, include) = r.oid()?;
                let (end, _) = r.oid()?;
                ranges.push(Range {
                    start,
                    include,
                    end,
                });
            }
            match (h.kind, bulk) {
                (Kind::Get, _) => Pdu::Get(ranges),
                (_, Some((non_repeaters, max_repetitions))) => Pdu::GetBulk {
                    non_repeaters,
                    max_repetitions,
                    ranges,
                },
                _ => Pdu::GetNext(ranges),
            }
        }
        Kind::Response => {
            r.u32()?; // sysUpTime
            Pdu::Response {
                error: r.u16()?,
                index: r.u16()?,
            }
        }
        Kind::Close => Pdu::Close(r.u8()?),
        k => Pdu::Other(k),
    })
}

/// The answers to a request, from `tree` (RFC 2741 §7.2.3): a Get's exact values, a
/// `GetNext`'s next objects, a `GetBulk`'s non-repeaters then its repetitions.
pub fn answer(pdu: &Pdu, tree: &Tree) -> Vec<(Oid, Value)> {
    let next = |r: &Range| match tree.next(&r.start, r.include, &r.end) {
        Some((o, v)) => (o.clone(), v.clone()),
        None => (r.start.clone(), Value::EndOfMibView),
    };
    match pdu {
        Pdu::Get(ranges) => ranges
            .iter()
            .map(|r| {
                let v = tree.get(&r.start).cloned().unwrap_or(Value::NoSuchObject);
                (r.start.clone(), v)
            })
            .collect(),
        Pdu::GetNext(ranges) => ranges.iter().map(next).collect(),
        Pdu::GetBulk {
            non_repeaters,
            max_repetitions,
            ranges,
        } => {
            let n = usize::from(*non_repeaters).min(ranges.len());
            let mut out: Vec<(Oid, Value)> = ranges[..n].iter().map(next).collect();
            let mut cur: Vec<Range> = ranges[n..].to_vec();
            for _ in 0..*max_repetitions {
                if cur.is_empty() {
                    break;
                }
                let mut all_done = true;
                for r in &mut cur {
                    let (o, v) = next(r);
                    if v != Value::EndOfMibView {
                        all_done = false;
                    }
                    r.start.clone_from(&o);
                    r.include = false;
                    out.push((o, v));
                }
                if all_done {
                    break;
                }
            }
            out
        }
        _ => Vec::new(),
    }
}

struct Reader<'a> {
    b: &'a [u8],
    big: bool,
}

impl Reader<'_> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&[u8], Error> {
        if self.b.len() < n {
            return Err(Error::Short(what));
        }
        let (head, rest) = self.b.split_at(n);
        self.b = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, Error> {
        Ok(self.take(4, "byte field")?[0])
    }

    fn u16(&mut self) -> Result<u16, Error> {
        let b = self.take(2, "16-bit field")?;
        let a = [b[0], b[1]];
        Ok(if self.big {
            u16::from_be_bytes(a)
        } else {
            u16::from_le_bytes(a)
        })
    }

    fn u32(&mut self) -> Result<u32, Error> {
        let b = self.take(4, "32-bit field")?;
        let a = [b[0], b[1], b[2], b[3]];
        Ok(if self.big {
            u32::from_be_bytes(a)
        } else {
            u32::from_le_bytes(a)
        })
    }

    /// An object identifier and its `include` flag.
    fn oid(&mut self) -> Result<(Oid, bool), Error> {
        let h = self.take(4, "object identifier")?;
        let (n, prefix, include) = (usize::from(h[0]), h[1], h[2] != 0);
        if n > 128 {
            return Err(Error::Bad("object identifier longer than 128"));
        }
        let mut v = Vec::with_capacity(n + 5);
        if prefix != 0 {
            v.extend_from_slice(&[1, 3, 6, 1, u32::from(prefix)]);
        }
        for _ in 0..n {
            v.push(self.u32()?);
        }
        Ok((Oid(v), include))
    }

    fn octets(&mut self) -> Result<Vec<u8>, Error> {
        let n = usize::try_from(self.u32()?).map_err(|_| Error::Bad("octet string length"))?;
        let padded = n.checked_add(3).ok_or(Error::Bad("octet string length"))? & !3;
        Ok(self.take(padded, "octet string")?[..n].to_vec())
    }
}

/// Writes PDUs in network byte order.
#[derive(Default)]
struct Writer(Vec<u8>);

impl Writer {
    fn u8(&mut self, v: u8) {
        self.0.extend_from_slice(&[v, 0, 0, 0]);
    }
    fn u16(&mut self, v: u16) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn oid(&mut self, o: &Oid) -> Result<(), Error> {
        let n = u8::try_from(o.0.len())
            .ok()
            .filter(|n| *n <= 128)
            .ok_or(Error::Bad("object identifier longer than 128"))?;
        self.0.extend_from_slice(&[n, 0, 0, 0]);
        for s in &o.0 {
            self.u32(*s);
        }
        Ok(())
    }
    fn octets(&mut self, b: &[u8]) -> Result<(), Error> {
        self.u32(u32::try_from(b.len()).map_err(|_| Error::Bad("octet string too long"))?);
        self.0.extend_from_slice(b);
        while !self.0.len().is_multiple_of(4) {
            self.0.push(0);
        }
        Ok(())
    }
    fn varbind(&mut self, o: &Oid, v: &Value) -> Result<(), Error> {
        let ty: u16 = match v {
            Value::Integer(_) => 2,
            Value::OctetString(_) => 4,
            Value::Null => 5,
            Value::ObjectId(_) => 6,
            Value::IpAddress(_) => 64,
            Value::Counter32(_) => 65,
            Value::Gauge32(_) => 66,
            Value::TimeTicks(_) => 67,
            Value::Counter64(_) => 70,
            Value::NoSuchObject => 128,
            Value::NoSuchInstance => 129,
            Value::EndOfMibView => 130,
        };
        self.u16(ty);
        self.u16(0);
        self.oid(o)?;
        match v {
            Value::Integer(i) => self.0.extend_from_slice(&i.to_be_bytes()),
            Value::OctetString(b) => self.octets(b)?,
            Value::ObjectId(x) => self.oid(x)?,
            Value::IpAddress(a) => self.octets(a)?,
            Value::Counter32(n) | Value::Gauge32(n) | Value::TimeTicks(n) => self.u32(*n),
            Value::Counter64(n) => self.0.extend_from_slice(&n.to_be_bytes()),
            Value::Null | Value::NoSuchObject | Value::NoSuchInstance | Value::EndOfMibView => {}
        }
        Ok(())
    }

    /// The PDU: header (network byte order) then this payload.
    fn finish(self, h: &Header) -> Result<Vec<u8>, Error> {
        let len = u32::try_from(self.0.len()).map_err(|_| Error::TooLarge(u32::MAX))?;
        let mut out = Vec::with_capacity(HEADER + self.0.len());
        out.extend_from_slice(&[VERSION, h.kind as u8, FLAG_NETWORK_BYTE_ORDER, 0]);
        out.extend_from_slice(&h.session.to_be_bytes());
        out.extend_from_slice(&h.transaction.to_be_bytes());
        out.extend_from_slice(&h.packet.to_be_bytes());
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&self.0);
        Ok(out)
    }
}

fn header(kind: Kind, session: u32, packet: u32) -> Header {
    Header {
        kind,
        flags: 0,
        session,
        transaction: 0,
        packet,
        payload: 0,
    }
}

/// An Open: the subagent's identity and its default timeout (seconds, 0: the master's).
pub fn open(packet: u32, timeout: u8, id: &Oid, descr: &str) -> Result<Vec<u8>, Error> {
    let mut w = Writer::default();
    w.u8(timeout);
    w.oid(id)?;
    w.octets(descr.as_bytes())?;
    w.finish(&header(Kind::Open, 0, packet))
}

/// A Register of `subtree` at `priority` (lower wins; 127 is the default).
pub fn register(session: u32, packet: u32, subtree: &Oid, priority: u8) -> Result<Vec<u8>, Error> {
    let mut w = Writer::default();
    // timeout 0 (the session's), priority, range_subid 0 (no range), reserved.
    w.0.extend_from_slice(&[0, priority, 0, 0]);
    w.oid(subtree)?;
    w.finish(&header(Kind::Register, session, packet))
}

/// A Response to the request `to`.
pub fn response(
    to: &Header,
    error: u16,
    index: u16,
    varbinds: &[(Oid, Value)],
) -> Result<Vec<u8>, Error> {
    let mut w = Writer::default();
    w.u32(0); // sysUpTime: ignored from a subagent
    w.u16(error);
    w.u16(index);
    for (o, v) in varbinds {
        w.varbind(o, v)?;
    }
    w.finish(&to.reply(Kind::Response))
}

/// A Notify: `sysUpTime.0`, `snmpTrapOID.0 = trap`, then `varbinds` (RFC 2741 §6.2.10).
pub fn notify(
    session: u32,
    packet: u32,
    uptime_cs: u32,
    trap: &Oid,
    varbinds: &[(Oid, Value)],
) -> Result<Vec<u8>, Error> {
    let mut w = Writer::default();
    w.varbind(
        &Oid(vec![1, 3, 6, 1, 2, 1, 1, 3, 0]),
        &Value::TimeTicks(uptime_cs),
    )?;
    w.varbind(
        &Oid(vec![1, 3, 6, 1, 6, 3, 1, 1, 4, 1, 0]),
        &Value::ObjectId(trap.clone()),
    )?;
    for (o, v) in varbinds {
        w.varbind(o, v)?;
    }
    w.finish(&header(Kind::Notify, session, packet))
}

/// A Ping (the master answers it while the session lives).
pub fn ping(session: u32, packet: u32) -> Result<Vec<u8>, Error> {
    Writer::default().finish(&header(Kind::Ping, session, packet))
}

/// A Close, with the reason (5: shutdown).
pub fn close(session: u32, packet: u32, reason: u8) -> Result<Vec<u8>, Error> {
    let mut w = Writer::default();
    w.u8(reason);
    w.finish(&header(Kind::Close, session, packet))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oid(s: &str) -> Oid {
        s.parse().unwrap_or_default()
    }

    /// A `GetNext` as net-snmp's master sends it (little-endian here, to check both orders):
    /// one range from 1.3.6.1.4.1.9586.100.5 (prefix-compressed: 4 = enterprises' parent).
    #[test]
    fn reads_a_masters_getnext_in_either_byte_order() {
        let mut p = vec![1, Kind::GetNext as u8, 0, 0];
        p.extend_from_slice(&7u32.to_le_bytes()); // session
        p.extend_from_slice(&8u32.to_le_bytes()); // transaction
        p.extend_from_slice(&9u32.to_le_bytes()); // packet
        let mut body = vec![4, 4, 1, 0]; // n_subid 4, prefix 4 (1.3.6.1.4), include
        for s in [1u32, 9586, 100, 5] {
            body.extend_from_slice(&s.to_le_bytes());
        }
        body.extend_from_slice(&[0, 0, 0, 0]); // end: null
        p.extend_from_slice(&u32::try_from(body.len()).unwrap_or(0).to_le_bytes());
        p.extend_from_slice(&body);
        let h = Header::parse(&p).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((h.kind, h.session, h.packet), (Kind::GetNext, 7, 9));
        let pdu = decode(&h, &p[HEADER..]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            pdu,
            Pdu::GetNext(vec![Range {
                start: oid("1.3.6.1.4.1.9586.100.5"),
                include: true,
                end: Oid::default(),
            }])
        );
        // The answer goes back in network byte order with the same ids.
        let out =
            response(&h, 0, 0, &[(oid("1.3.6.1.4.1"), Value::Integer(-1))]).unwrap_or_default();
        let back = Header::parse(&out).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (back.kind, back.session, back.transaction, back.packet),
            (Kind::Response, 7, 8, 9)
        );
        assert_eq!(back.payload as usize, out.len() - HEADER);
    }

    #[test]
    fn getbulk_repeats_and_stops_at_the_end() {
        let mut t = Tree::default();
        for i in 1..=3 {
            t.insert(oid(&format!("1.3.6.1.2.{i}")), Value::Integer(i));
        }
        let r = |s: &str| Range {
            start: oid(s),
            include: false,
            end: Oid::default(),
        };
        let got = answer(
            &Pdu::GetBulk {
                non_repeaters: 1,
                max_repetitions: 10,
                ranges: vec![r("1.3.6.1.2.2"), r("1.3.6.1.2")],
            },
            &t,
        );
        let names: Vec<String> = got.iter().map(|(o, _)| o.to_string()).collect();
        assert_eq!(
            names,
            [
                ".1.3.6.1.2.3",
                ".1.3.6.1.2.1",
                ".1.3.6.1.2.2",
                ".1.3.6.1.2.3",
                ".1.3.6.1.2.3"
            ]
        );
        assert_eq!(got[4].1, Value::EndOfMibView);
        // A Get of an object that is not there.
        let g = answer(&Pdu::Get(vec![r("1.3.6.1.9")]), &t);
        assert_eq!(g[0].1, Value::NoSuchObject);
    }

    proptest::proptest! {
        /// Whatever arrives, reading it is an answer or an error, never a panic.
        #[test]
        fn any_bytes_decode_without_panicking(b in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            if let Ok(h) = Header::parse(&b) {
                let _ = decode(&h, b.get(HEADER..).unwrap_or_default());
            }
            let h = Header { kind: Kind::GetBulk, flags: 0x18, session: 0, transaction: 0, packet: 0, payload: 0 };
            let _ = decode(&h, &b);
        }
    }
}
