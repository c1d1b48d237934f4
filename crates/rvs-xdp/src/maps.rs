//! The map records shared with `bpf/lb.bpf.c`, byte for byte (`#[repr(C)]`, explicit
//! padding, sizes asserted at compile time).
#![allow(unsafe_code)]

use std::net::IpAddr;

pub const MAX_SVC: u32 = 1024;
pub const MAX_REALS: u32 = 8192;
pub const TABLE_MAX: u32 = 65536;

pub const SCHED_SEQ: u32 = 0;
pub const SCHED_SH: u32 = 1;
pub const SCHED_DH: u32 = 2;
pub const SCHED_MH: u32 = 3;

pub const M_DR: u8 = 0;
pub const M_TUN: u8 = 1;
pub const M_NAT: u8 = 2;
pub const M_FNAT: u8 = 3;

/// FULLNAT: local addresses a service may have (its block of `svc_laddrs`), and distinct
/// local addresses (`laddrs`).
pub const LADDRS_PER_SVC: u32 = 16;
pub const MAX_LADDRS: u32 = 4096;

pub const SF_PORT: u32 = 1;
pub const SF_FALLBACK: u32 = 2;
pub const SF_PERSIST: u32 = 4;
/// Forward by the table alone (`bpf/lb.bpf.c`, `changes`; docs/xdp.md).
pub const SF_BY_TABLE: u32 = 8;

/// A table slot whose flows must be looked up (`changes` says until when).
pub const SLOT_CHANGED: u32 = 0x8000_0000;
/// A table slot's real server + 1 (0: empty).
pub const SLOT_REAL: u32 = 0x7fff_ffff;

pub const RF_USABLE: u16 = 1;

/// Some service has NAT real servers: the program looks replies up.
pub const CF_NAT: u32 = 1;
/// Some service listens on port 0 (any port).
pub const CF_PORT0: u32 = 2;
/// `own_mac` is set: frames for other hosts pass.
pub const CF_OWN_MAC: u32 = 4;
/// Some service has FULLNAT real servers: the program looks replies up.
pub const CF_FNAT: u32 = 8;

/// An address as the program stores it: IPv4 in the first 4 bytes, the rest zero.
pub fn addr16(a: IpAddr) -> ([u8; 16], u8) {
    let mut o = [0u8; 16];
    match a {
        IpAddr::V4(v) => {
            o[..4].copy_from_slice(&v.octets());
            (o, 4)
        }
        IpAddr::V6(v) => (v.octets(), 6),
    }
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct VipKey {
    pub addr: [u8; 16],
    /// Network order.
    pub port: u16,
    pub proto: u8,
    pub family: u8,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Svc {
    pub id: u32,
    pub sched: u32,
    pub table_len: u32,
    pub flags: u32,
    pub persist_s: u32,
    pub persist_prefix: u32,
    /// FULLNAT: how many local addresses the service has (`svc_laddrs`, from
    /// `id * LADDRS_PER_SVC`).
    pub laddrs: u32,
    pub pad: u32,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Real {
    pub addr: [u8; 16],
    pub mac: [u8; 6],
    /// Network order (NAT rewrites to it; 0 keeps the client's destination port).
    pub port: u16,
    pub family: u8,
    pub method: u8,
    pub flags: u16,
    pub pad: u32,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Config {
    /// Idle timeouts in jiffies (`hz` of them a second, the program's clock).
    pub timeout_tcp: u64,
    pub timeout_tcpfin: u64,
    pub timeout_udp: u64,
    /// The kernel's tick rate, as measured at load ([`crate::Xdp::load`]).
    pub hz: u64,
    pub mh_k0: u64,
    pub mh_k1: u64,
    pub tun_src4: [u8; 4],
    pub tun_src6: [u8; 16],
    /// `CF_NAT`, `CF_PORT0`, `CF_OWN_MAC`.
    pub flags: u32,
    /// The interface's MAC (with `CF_OWN_MAC`): unicast frames to another MAC, but a
    /// VRRP virtual MAC, pass to the kernel.
    pub own_mac: [u8; 6],
    /// Possible CPUs: FULLNAT gives each its own share of the local ports.
    pub cpus: u16,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub conns: u64,
    pub pkts_in: u64,
    pub bytes_in: u64,
    pub pkts_out: u64,
    pub bytes_out: u64,
}

/// `struct flow_key`: a flow's 5-tuple as the program parsed it (ports in network order).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlowKey {
    pub src: [u8; 16],
    pub dst: [u8; 16],
    pub sport: u16,
    pub dport: u16,
    pub proto: u8,
    pub family: u8,
    pub pad: u16,
}

/// `struct flow`: where a flow goes and when it was last seen (jiffies).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flow {
    pub last: u64,
    pub real: u32,
    pub svc: u32,
    /// FULLNAT: the connection's local address (its slot in `laddrs` + 1; 0: none).
    pub laddr: u16,
    /// FULLNAT: the connection's local port (network order).
    pub lport: u16,
    /// FULLNAT: the client's address went to the real server (TOA).
    pub toa: u8,
    /// FULLNAT, adopted (connection sync): the reply entry waits for the client's MAC,
    /// which the client's next packet gives.
    pub mac_wait: u8,
    /// A FIN or RST was seen (IPVS's `FIN_WAIT` timeout applies).
    pub fin: u8,
    /// This director forwarded a packet of it: 0 while it is only adopted (connection
    /// sync), so that a director does not send back what it was sent.
    pub here: u8,
}

/// `struct tmpl_key`: a persistence template's client (masked to the granularity) and
/// service.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TmplKey {
    pub client: [u8; 16],
    pub svc: u32,
}

/// `struct tmpl`: the real server a client's new flows go to, and when it was last used.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tmpl {
    /// Jiffies.
    pub last: u64,
    pub real: u32,
    pub pad: u32,
}

/// `struct nat_key`: a reply's ends as the real server sends it (NAT: to the client;
/// FULLNAT: to the local address and port). Ports in network order.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NatKey {
    pub real: [u8; 16],
    pub client: [u8; 16],
    pub rport: u16,
    pub cport: u16,
    pub proto: u8,
    pub family: u8,
    pub pad: u16,
}

/// `struct nat_val`: what a reply is rewritten to. Ports in network order.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NatVal {
    pub vip: [u8; 16],
    /// FULLNAT: the client the reply goes back to.
    pub client: [u8; 16],
    pub vport: u16,
    /// FULLNAT: the client's port.
    pub cport: u16,
    /// All zero: not known yet (an adopted connection); replies are dropped until then.
    pub client_mac: [u8; 6],
    /// 1: FULLNAT (the destination is rewritten too).
    pub fnat: u8,
    pub pad: u8,
    pub svc: u32,
    pub real: u32,
}

/// `struct laddr`: a FULLNAT local address (IPv4 in the first 4 bytes).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Laddr {
    pub addr: [u8; 16],
}

/// `struct clock`: what `rvs_clock` read, jiffies and `CLOCK_MONOTONIC` together.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Clock {
    pub jiffies: u64,
    pub ns: u64,
}

/// `struct change_key`: a slot of a service's table.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct ChangeKey {
    pub svc: u32,
    pub slot: u32,
}

/// `struct change`: until when a slot's flows are looked up, and where its unrecorded
/// flows from before a change go (jiffies).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Change {
    pub dirty_until: u64,
    pub prev_until: u64,
    /// The earlier real server + 1; 0: none.
    pub prev: u32,
    pub pad: u32,
}

const _: () = assert!(size_of::<Laddr>() == 16);
const _: () = assert!(size_of::<NatKey>() == 40);
const _: () = assert!(size_of::<NatVal>() == 52);
const _: () = assert!(size_of::<ChangeKey>() == 8);
const _: () = assert!(size_of::<Change>() == 24);
const _: () = assert!(size_of::<Clock>() == 16);
const _: () = assert!(size_of::<TmplKey>() == 20);
const _: () = assert!(size_of::<Tmpl>() == 16);
const _: () = assert!(size_of::<FlowKey>() == 40);
const _: () = assert!(size_of::<Flow>() == 24);
const _: () = assert!(size_of::<VipKey>() == 20);
const _: () = assert!(size_of::<Svc>() == 32);
const _: () = assert!(size_of::<Real>() == 32);
const _: () = assert!(size_of::<Config>() == 80);
const _: () = assert!(size_of::<Counters>() == 40);

// SAFETY: each type is `#[repr(C)]`, `Copy`, made of integers and byte arrays with the
// padding spelled out as fields (sizes asserted above), so every bit pattern is a valid
// value and no byte is uninitialised: what `aya::Pod` requires to copy them to and from
// the kernel.
unsafe impl aya::Pod for VipKey {}
// SAFETY: as above.
unsafe impl aya::Pod for Svc {}
// SAFETY: as above.
unsafe impl aya::Pod for Real {}
// SAFETY: as above.
unsafe impl aya::Pod for Config {}
// SAFETY: as above.
unsafe impl aya::Pod for Counters {}
// SAFETY: as above.
unsafe impl aya::Pod for FlowKey {}
// SAFETY: as above.
unsafe impl aya::Pod for Flow {}
// SAFETY: as above.
unsafe impl aya::Pod for TmplKey {}
// SAFETY: as above.
unsafe impl aya::Pod for Tmpl {}
// SAFETY: as above.
unsafe impl aya::Pod for Clock {}
// SAFETY: as above.
unsafe impl aya::Pod for ChangeKey {}
// SAFETY: as above.
unsafe impl aya::Pod for Laddr {}
// SAFETY: as above.
unsafe impl aya::Pod for NatKey {}
// SAFETY: as above.
unsafe impl aya::Pod for NatVal {}
// SAFETY: as above.
unsafe impl aya::Pod for Change {}
