//! The bytes of the IPVS generic netlink family (spec `ipvs-netlink.md`): netlink and
//! genetlink headers, attributes (TLVs padded to 4), and the IPVS records. Pure: no I/O.

use std::net::IpAddr;

pub const NLMSG_ERROR: u16 = 2;
pub const NLMSG_DONE: u16 = 3;
pub const GENL_ID_CTRL: u16 = 0x10;
pub const CTRL_CMD_GETFAMILY: u8 = 3;
pub const CTRL_ATTR_FAMILY_ID: u16 = 1;
pub const CTRL_ATTR_FAMILY_NAME: u16 = 2;

pub const F_REQUEST: u16 = 0x1;
pub const F_MULTI: u16 = 0x2;
pub const F_ACK: u16 = 0x4;
pub const F_DUMP: u16 = 0x300;

pub const NLA_F_NESTED: u16 = 0x8000;

/// IPVS commands.
pub mod cmd {
    pub const NEW_SERVICE: u8 = 1;
    pub const SET_SERVICE: u8 = 2;
    pub const DEL_SERVICE: u8 = 3;
    pub const GET_SERVICE: u8 = 4;
    pub const NEW_DEST: u8 = 5;
    pub const SET_DEST: u8 = 6;
    pub const DEL_DEST: u8 = 7;
    pub const GET_DEST: u8 = 8;
    pub const NEW_DAEMON: u8 = 9;
    pub const DEL_DAEMON: u8 = 10;
    pub const GET_DAEMON: u8 = 11;
    pub const SET_CONFIG: u8 = 12;
    pub const GET_CONFIG: u8 = 13;
    pub const GET_INFO: u8 = 15;
    pub const ZERO: u8 = 16;
    pub const FLUSH: u8 = 17;
}

/// Attribute numbers.
pub mod attr {
    pub const CMD_SERVICE: u16 = 1;
    pub const CMD_DEST: u16 = 2;
    pub const CMD_DAEMON: u16 = 3;

    pub const DAEMON_STATE: u16 = 1;
    pub const DAEMON_MCAST_IFN: u16 = 2;
    pub const DAEMON_SYNC_ID: u16 = 3;
    pub const DAEMON_SYNC_MAXLEN: u16 = 4;
    pub const DAEMON_MCAST_GROUP: u16 = 5;
    pub const DAEMON_MCAST_GROUP6: u16 = 6;
    pub const DAEMON_MCAST_PORT: u16 = 7;
    pub const DAEMON_MCAST_TTL: u16 = 8;
    pub const CMD_TIMEOUT_TCP: u16 = 4;
    pub const CMD_TIMEOUT_TCP_FIN: u16 = 5;
    pub const CMD_TIMEOUT_UDP: u16 = 6;

    pub const SVC_AF: u16 = 1;
    pub const SVC_PROTOCOL: u16 = 2;
    pub const SVC_ADDR: u16 = 3;
    pub const SVC_PORT: u16 = 4;
    pub const SVC_FWMARK: u16 = 5;
    pub const SVC_SCHED_NAME: u16 = 6;
    pub const SVC_FLAGS: u16 = 7;
    pub const SVC_TIMEOUT: u16 = 8;
    pub const SVC_NETMASK: u16 = 9;
    pub const SVC_STATS64: u16 = 12;

    pub const DEST_ADDR: u16 = 1;
    pub const DEST_PORT: u16 = 2;
    pub const DEST_FWD_METHOD: u16 = 3;
    pub const DEST_WEIGHT: u16 = 4;
    pub const DEST_U_THRESH: u16 = 5;
    pub const DEST_L_THRESH: u16 = 6;
    pub const DEST_ACTIVE_CONNS: u16 = 7;
    pub const DEST_INACT_CONNS: u16 = 8;
    pub const DEST_PERSIST_CONNS: u16 = 9;
    pub const DEST_ADDR_FAMILY: u16 = 11;
    pub const DEST_STATS64: u16 = 12;
    pub const DEST_TUN_TYPE: u16 = 13;
    pub const DEST_TUN_PORT: u16 = 14;
    pub const DEST_TUN_FLAGS: u16 = 15;

    pub const STATS_CONNS: u16 = 1;
    pub const STATS_INPKTS: u16 = 2;
    pub const STATS_OUTPKTS: u16 = 3;
    pub const STATS_INBYTES: u16 = 4;
    pub const STATS_OUTBYTES: u16 = 5;
}

pub const AF_INET: u16 = 2;
pub const AF_INET6: u16 = 10;

/// Writes attributes into a buffer, 4-byte aligned.
#[derive(Debug, Default, Clone)]
pub struct Attrs(pub Vec<u8>);

impl Attrs {
    pub fn put(&mut self, kind: u16, payload: &[u8]) -> &mut Self {
        let len = u16::try_from(4 + payload.len()).unwrap_or(u16::MAX);
        self.0.extend_from_slice(&len.to_ne_bytes());
        self.0.extend_from_slice(&kind.to_ne_bytes());
        self.0.extend_from_slice(payload);
        while !self.0.len().is_multiple_of(4) {
            self.0.push(0);
        }
        self
    }
    pub fn u8(&mut self, kind: u16, v: u8) -> &mut Self {
        self.put(kind, &[v])
    }
    pub fn u16(&mut self, kind: u16, v: u16) -> &mut Self {
        self.put(kind, &v.to_ne_bytes())
    }
    /// A port or other big-endian 16-bit field.
    pub fn be16(&mut self, kind: u16, v: u16) -> &mut Self {
        self.put(kind, &v.to_be_bytes())
    }
    pub fn u32(&mut self, kind: u16, v: u32) -> &mut Self {
        self.put(kind, &v.to_ne_bytes())
    }
    pub fn string(&mut self, kind: u16, s: &str) -> &mut Self {
        let mut b = s.as_bytes().to_vec();
        b.push(0);
        self.put(kind, &b)
    }
    pub fn nested(&mut self, kind: u16, inner: &Attrs) -> &mut Self {
        self.put(kind | NLA_F_NESTED, &inner.0)
    }
}

/// `union nf_inet_addr`: 16 bytes, IPv4 in the first four.
pub fn inet_addr(a: IpAddr) -> [u8; 16] {
    let mut o = [0u8; 16];
    match a {
        IpAddr::V4(v) => o[..4].copy_from_slice(&v.octets()),
        IpAddr::V6(v) => o = v.octets(),
    }
    o
}

pub fn af_of(a: IpAddr) -> u16 {
    if a.is_ipv4() {
        AF_INET
    } else {
        AF_INET6
    }
}

/// One netlink message: header + genetlink header + attributes.
pub fn message(kind: u16, flags: u16, seq: u32, cmd: u8, attrs: &Attrs) -> Vec<u8> {
    let len = u32::try_from(16 + 4 + attrs.0.len()).unwrap_or(u32::MAX);
    let mut b = Vec::with_capacity(len as usize);
    b.extend_from_slice(&len.to_ne_bytes());
    b.extend_from_slice(&kind.to_ne_bytes());
    b.extend_from_slice(&flags.to_ne_bytes());
    b.extend_from_slice(&seq.to_ne_bytes());
    b.extend_from_slice(&0u32.to_ne_bytes());
    b.push(cmd);
    b.push(1); // IPVS_GENL_VERSION (also fine for the controller)
    b.extend_from_slice(&0u16.to_ne_bytes());
    b.extend_from_slice(&attrs.0);
    b
}

/// A received netlink message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply<'a> {
    /// An error (negative errno) or, with 0, the acknowledgement.
    Error(i32),
    Done,
    /// A genetlink payload: command and attributes.
    Data {
        cmd: u8,
        attrs: &'a [u8],
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("malformed netlink message")]
pub struct Malformed;

fn u16_at(b: &[u8], o: usize) -> Result<u16, Malformed> {
    Ok(u16::from_ne_bytes(
        b.get(o..o + 2)
            .ok_or(Malformed)?
            .try_into()
            .map_err(|_| Malformed)?,
    ))
}

fn u32_at(b: &[u8], o: usize) -> Result<u32, Malformed> {
    Ok(u32::from_ne_bytes(
        b.get(o..o + 4)
            .ok_or(Malformed)?
            .try_into()
            .map_err(|_| Malformed)?,
    ))
}

/// Splits a datagram into its messages (those of sequence `seq` only).
pub fn messages(buf: &[u8], seq: u32) -> Result<Vec<Reply<'_>>, Malformed> {
    let mut out = Vec::new();
    let mut off = 0;
    while off + 16 <= buf.len() {
        let len = u32_at(buf, off)? as usize;
        if len < 16 || off + len > buf.len() {
            return Err(Malformed);
        }
        let kind = u16_at(buf, off + 4)?;
        let mseq = u32_at(buf, off + 8)?;
        let body = &buf[off + 16..off + len];
        if mseq == seq {
            out.push(match kind {
                NLMSG_ERROR => {
                    let e = i32::from_ne_bytes(
                        body.get(..4)
                            .ok_or(Malformed)?
                            .try_into()
                            .map_err(|_| Malformed)?,
                    );
                    Reply::Error(e)
                }
                NLMSG_DONE => Reply::Done,
                _ => Reply::Data {
                    cmd: *body.first().ok_or(Malformed)?,
                    attrs: body.get(4..).ok_or(Malformed)?,
                },
            });
        }
        off += (len + 3) & !3;
    }
    Ok(out)
}

/// Iterates over the attributes of a buffer: (kind without flags, payload).
pub fn attrs(mut b: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        if b.len() < 4 {
            return None;
        }
        let len = usize::from(u16::from_ne_bytes([b[0], b[1]]));
        let kind = u16::from_ne_bytes([b[2], b[3]]) & 0x3fff;
        if len < 4 || len > b.len() {
            return None;
        }
        let payload = &b[4..len];
        b = &b[((len + 3) & !3).min(b.len())..];
        Some((kind, payload))
    })
}

pub fn get_u16(p: &[u8]) -> Option<u16> {
    Some(u16::from_ne_bytes(p.get(..2)?.try_into().ok()?))
}
pub fn get_be16(p: &[u8]) -> Option<u16> {
    Some(u16::from_be_bytes(p.get(..2)?.try_into().ok()?))
}
pub fn get_u32(p: &[u8]) -> Option<u32> {
    Some(u32::from_ne_bytes(p.get(..4)?.try_into().ok()?))
}
pub fn get_u64(p: &[u8]) -> Option<u64> {
    Some(u64::from_ne_bytes(p.get(..8)?.try_into().ok()?))
}
pub fn get_addr(p: &[u8], af: u16) -> Option<IpAddr> {
    if af == AF_INET6 {
        let o: [u8; 16] = p.get(..16)?.try_into().ok()?;
        Some(IpAddr::from(o))
    } else {
        let o: [u8; 4] = p.get(..4)?.try_into().ok()?;
        Some(IpAddr::from(o))
    }
}
pub fn get_string(p: &[u8]) -> String {
    String::from_utf8_lossy(p.split(|c| *c == 0).next().unwrap_or(&[])).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_are_padded_and_nest() {
        let mut inner = Attrs::default();
        inner
            .u16(attr::SVC_AF, AF_INET)
            .be16(attr::SVC_PORT, 80)
            .string(attr::SVC_SCHED_NAME, "rr");
        // AF: 4 + 2 (+2 pad); PORT: 4 + 2 (+2); SCHED "rr\0": 4 + 3 (+1).
        assert_eq!(inner.0.len(), 24);
        assert_eq!(&inner.0[8..16], &[6, 0, 4, 0, 0, 80, 0, 0][..]);
        let mut top = Attrs::default();
        top.nested(attr::CMD_SERVICE, &inner);
        assert_eq!(top.0.len(), 28);
        assert_eq!(u16::from_ne_bytes([top.0[2], top.0[3]]), 1 | NLA_F_NESTED);
        let parsed: Vec<(u16, Vec<u8>)> = attrs(&top.0).map(|(k, p)| (k, p.to_vec())).collect();
        assert_eq!(parsed[0].0, 1);
        let fields: Vec<u16> = attrs(&parsed[0].1).map(|(k, _)| k).collect();
        assert_eq!(fields, vec![1, 4, 6]);
    }

    #[test]
    fn messages_split_and_errors_read() {
        let m = message(0x1c, F_REQUEST | F_ACK, 7, cmd::FLUSH, &Attrs::default());
        assert_eq!(m.len(), 20);
        assert_eq!(&m[..4], &20u32.to_ne_bytes());
        assert_eq!(m[16], cmd::FLUSH);
        // An error reply for seq 7: header, errno -2, the original header.
        let mut e = Vec::new();
        e.extend_from_slice(&36u32.to_ne_bytes());
        e.extend_from_slice(&NLMSG_ERROR.to_ne_bytes());
        e.extend_from_slice(&0u16.to_ne_bytes());
        e.extend_from_slice(&7u32.to_ne_bytes());
        e.extend_from_slice(&0u32.to_ne_bytes());
        e.extend_from_slice(&(-2i32).to_ne_bytes());
        e.extend_from_slice(&m[..16]);
        assert_eq!(messages(&e, 7).unwrap(), vec![Reply::Error(-2)]);
        assert!(messages(&e, 8).unwrap().is_empty());
        assert_eq!(messages(&e[..20], 7), Err(Malformed));
    }
}
