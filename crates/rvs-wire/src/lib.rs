//! `rvs-wire`: packet views and representations in the smoltcp style. A `Packet<T>` wraps
//! a buffer, checks its length once (`new_checked`), and its accessors never panic after
//! that; a `Repr` is the validated content with `parse`, `emit` and `buffer_len`.

pub mod arp;
pub mod checksum;
pub mod ipvs_sync;
pub mod nd;
pub mod vrrp;

/// Errors of the packet views: always the sender's fault, never a panic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// Shorter than its header or than its own length fields say.
    Truncated,
    /// A field holds a value this protocol does not allow.
    Malformed,
    /// The checksum does not match.
    Checksum,
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Error::Truncated => "truncated packet",
            Error::Malformed => "malformed packet",
            Error::Checksum => "bad checksum",
        })
    }
}

impl std::error::Error for Error {}
