//! `rvs-bfd`: Bidirectional Forwarding Detection, single hop, asynchronous mode (RFC 5880,
//! RFC 5881), as keepalived's BFD process runs it for `bfd_instance` blocks.
//!
//! - [`wire`]: the Control packet as a checked view and a value (parse/emit).
//! - [`session`]: the sans-IO state machine and timers of one session.
//! - [`driver`]: the tokio driver — UDP port 3784, TTL 255 both ways on IPv4 (GTSM), one
//!   source port per session in 49152–65535, one session per neighbour address (found by
//!   the packet's source, its Your Discriminator checked), state published through `watch` channels.
//!
//! Not implemented: authentication (packets with the A bit are dropped, as keepalived
//! does), demand mode, the echo function, multihop (port 4784).

pub mod driver;
pub mod session;
mod sys;
pub mod wire;

pub use session::{Config, Session, Transition};
pub use wire::State;
