//! `rvs-sched`: the sans-IO heart of rvs, shared by every data plane. Given a service, its
//! destinations and their connection counters, which real server gets a new connection,
//! and what happens to the connection afterwards.
//!
//! Reproduces kernel IPVS as of **Linux 6.1.192** (Debian 12; spec
//! `ipvs-schedulers.md`), including the destination list order (newest first) that every
//! tie-break depends on. Where stable kernels changed behaviour, [`service::Compat`]
//! selects it: the default is the current one (connection overhead 256·A + total, i.e.
//! 257·A + I, and `hash_32` taking the high bits); `Compat { overhead_new: false, .. }`
//! gives the classic 256·A + I, and `HashVariant::Legacy` the low-bits hash of 3.x/4.x.
//!
//! No clocks and no sockets: time is a `now_ms` argument, randomness (`twos`) a seedable
//! generator. Invariants: a weight-0 or overloaded destination never receives a new
//! connection (except where the kernel does the same, e.g. a persistence template or a
//! cached lblc entry); counters never underflow; expiry is driven only by `advance(now)`.

pub mod desired;
pub mod estimator;
pub mod hash;
pub mod sched;
pub mod service;
pub mod table;

pub use sched::Algo;
pub use service::{
    Compat, Dest, DestId, Flags, Fwd, Persistence, PktInfo, Proto, Service, SvcKey, Tun,
};
pub use table::{ConnRef, Dir, Ipvs, Packet, Params, TcpFlags, TcpState, Timeouts, Verdict};
