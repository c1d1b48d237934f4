//! `rvs-snmp`: an `AgentX` subagent (RFC 2741). rvs registers its MIB subtrees
//! (KEEPALIVED-MIB, VRRP-MIB, VRRPv3-MIB) with the host's SNMP master agent — net-snmp's
//! `snmpd` with `master agentx`, as keepalived does — answers its Get, `GetNext` and
//! `GetBulk` requests from a [`Tree`] built on demand, and sends notifications (traps).
//!
//! - [`pdu`]: the wire format, by hand. The one crate for it (`agentx` 0.1) carries an
//!   OCTET STRING as a Rust `String`, so it cannot hold the binary octets every one of
//!   these MIBs has (`InetAddress`, `MacAddress`, `IpAddress`); the encoding is small and
//!   fixed (RFC 2741 §5–6), and the decoder checks every length before it reads.
//! - [`Tree`]: the values of a moment, ordered by OID, with the lookups the requests need
//!   (exact, next within a search range).
//! - [`agent`]: the session driver (tokio): connects, opens, registers, serves, pings,
//!   sends traps, and reconnects when the master goes away; it never blocks the daemon.

pub mod agent;
pub mod pdu;

use std::collections::BTreeMap;
use std::fmt;

/// An object identifier.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Oid(pub Vec<u32>);

impl Oid {
    /// This OID followed by `sub`.
    #[must_use]
    pub fn with(&self, sub: &[u32]) -> Oid {
        let mut v = self.0.clone();
        v.extend_from_slice(sub);
        Oid(v)
    }

    /// Whether `self` is `prefix` or below it.
    pub fn starts_with(&self, prefix: &Oid) -> bool {
        self.0.starts_with(&prefix.0)
    }
}

impl fmt::Display for Oid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for s in &self.0 {
            write!(f, ".{s}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for Oid {
    type Err = std::num::ParseIntError;

    /// `1.3.6.1` or `.1.3.6.1`.
    fn from_str(s: &str) -> Result<Oid, Self::Err> {
        s.trim_start_matches('.')
            .split('.')
            .filter(|p| !p.is_empty())
            .map(str::parse)
            .collect::<Result<Vec<u32>, _>>()
            .map(Oid)
    }
}

/// A value, in `SMIv2`'s types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Integer(i32),
    OctetString(Vec<u8>),
    Null,
    ObjectId(Oid),
    IpAddress([u8; 4]),
    Counter32(u32),
    Gauge32(u32),
    TimeTicks(u32),
    Counter64(u64),
    /// Exceptions in responses.
    NoSuchObject,
    NoSuchInstance,
    EndOfMibView,
}

impl Value {
    /// A `DisplayString`.
    pub fn string(s: &str) -> Value {
        Value::OctetString(s.as_bytes().to_vec())
    }

    /// SNMPv2-TC's `TruthValue`: true(1), false(2).
    pub fn truth(b: bool) -> Value {
        Value::Integer(if b { 1 } else { 2 })
    }
}

/// The objects of a moment, by OID.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tree(pub BTreeMap<Oid, Value>);

impl Tree {
    pub fn insert(&mut self, oid: Oid, v: Value) {
        self.0.insert(oid, v);
    }

    /// The value at exactly `oid`.
    pub fn get(&self, oid: &Oid) -> Option<&Value> {
        self.0.get(oid)
    }

    /// The first object after `start` (at `start` itself when `include`), before `end`
    /// when `end` is not empty: a `GetNext`'s search range (RFC 2741 §5.2).
    pub fn next(&self, start: &Oid, include: bool, end: &Oid) -> Option<(&Oid, &Value)> {
        use std::ops::Bound::{Excluded, Included, Unbounded};
        let lower = if include {
            Included(start)
        } else {
            Excluded(start)
        };
        self.0
            .range((lower, Unbounded))
            .next()
            .filter(|(o, _)| end.0.is_empty() || *o < end)
    }

    /// Adds every object of `other`.
    pub fn extend(&mut self, other: Tree) {
        self.0.extend(other.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oid(s: &str) -> Oid {
        s.parse().unwrap_or_default()
    }

    #[test]
    fn next_walks_in_oid_order_within_the_range() {
        let mut t = Tree::default();
        t.insert(oid("1.3.6.1.2"), Value::Integer(2));
        t.insert(oid("1.3.6.1.10"), Value::Integer(10));
        t.insert(oid("1.3.6.1.2.5"), Value::Integer(25));
        let n = |s, inc, e| t.next(&oid(s), inc, &oid(e)).map(|(o, _)| o.to_string());
        // Numeric, not text, order: .2 < .2.5 < .10.
        assert_eq!(n("1.3.6.1", false, ""), Some(".1.3.6.1.2".into()));
        assert_eq!(n("1.3.6.1.2", false, ""), Some(".1.3.6.1.2.5".into()));
        assert_eq!(n("1.3.6.1.2", true, ""), Some(".1.3.6.1.2".into()));
        assert_eq!(n("1.3.6.1.2.5", false, ""), Some(".1.3.6.1.10".into()));
        assert_eq!(n("1.3.6.1.2.5", false, "1.3.6.1.10"), None);
        assert_eq!(n("1.3.6.1.10", false, ""), None);
        assert_eq!(oid(".1.3.6"), oid("1.3.6"));
    }
}
