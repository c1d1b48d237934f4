//! The BFD Control packet (RFC 5880 §4.1): a [`Packet`] view over bytes, checked once,
//! and the [`Repr`] value it parses to and emits from. Authentication sections are
//! recognised (the A bit and the length) but not interpreted.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! |Vers |  Diag   |Sta|P|F|C|A|D|M|  Detect Mult  |    Length     |
//! |                       My Discriminator                        |
//! |                      Your Discriminator                       |
//! |                    Desired Min TX Interval                    |
//! |                   Required Min RX Interval                    |
//! |                 Required Min Echo RX Interval                 |
//! ```

use std::fmt;

/// Length of a Control packet without authentication.
pub const LEN: usize = 24;
/// The single-hop destination port (RFC 5881 §4).
pub const PORT: u16 = 3784;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("truncated: {0} bytes, a BFD Control packet has at least 24")]
    Truncated(usize),
    #[error("length field {field} does not match the {got} bytes received")]
    Length { field: u8, got: usize },
    #[error("version {0}, only version 1 exists")]
    Version(u8),
    #[error("detect multiplier is zero")]
    DetectMult,
    #[error("multipoint bit set")]
    Multipoint,
    #[error("my discriminator is zero")]
    MyDiscriminator,
    #[error("your discriminator is zero while the state is {0}")]
    YourDiscriminator(State),
    #[error("both poll and final set")]
    PollFinal,
    #[error("diagnostic {0} is not defined")]
    Diag(u8),
}

/// Session state (the Sta field).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum State {
    AdminDown = 0,
    Down = 1,
    Init = 2,
    Up = 3,
}

impl State {
    fn from_bits(b: u8) -> State {
        match b & 3 {
            0 => State::AdminDown,
            1 => State::Down,
            2 => State::Init,
            _ => State::Up,
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            State::AdminDown => "AdminDown",
            State::Down => "Down",
            State::Init => "Init",
            State::Up => "Up",
        })
    }
}

/// Diagnostic codes (RFC 5880 §4.1).
pub mod diag {
    pub const NONE: u8 = 0;
    pub const EXPIRED: u8 = 1;
    pub const NEIGHBOR_DOWN: u8 = 3;
    pub const ADMIN_DOWN: u8 = 7;

    /// The text keepalived logs for a code.
    pub fn text(d: u8) -> &'static str {
        match d {
            0 => "No Diagnostic",
            1 => "Control Detection Time Expired",
            2 => "Echo Function Failed",
            3 => "Neighbor Signaled Session Down",
            4 => "Forwarding Plane Reset",
            5 => "Path Down",
            6 => "Concatenated Path Down",
            7 => "Administratively Down",
            8 => "Reverse Concatenated Path Down",
            _ => "Unknown",
        }
    }
}

/// A checked view of a Control packet: at least 24 bytes, so accessors cannot fail.
#[derive(Debug, Clone, Copy)]
pub struct Packet<T: AsRef<[u8]>> {
    buf: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Checks the length once: 24 bytes at least, and the Length field equal to what
    /// was received (keepalived's check; RFC 5880 allows trailing bytes, none occur).
    pub fn new_checked(buf: T) -> Result<Packet<T>, Error> {
        let b = buf.as_ref();
        if b.len() < LEN {
            return Err(Error::Truncated(b.len()));
        }
        if usize::from(b[3]) != b.len() || b[3] < 24 {
            return Err(Error::Length {
                field: b[3],
                got: b.len(),
            });
        }
        Ok(Packet { buf })
    }

    fn b(&self) -> &[u8] {
        self.buf.as_ref()
    }
    fn u32_at(&self, i: usize) -> u32 {
        let b = self.b();
        u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
    }
    pub fn version(&self) -> u8 {
        self.b()[0] >> 5
    }
    pub fn diag(&self) -> u8 {
        self.b()[0] & 0x1f
    }
    pub fn state(&self) -> State {
        State::from_bits(self.b()[1] >> 6)
    }
    fn flag(&self, bit: u8) -> bool {
        self.b()[1] & bit != 0
    }
    pub fn poll(&self) -> bool {
        self.flag(0x20)
    }
    pub fn final_(&self) -> bool {
        self.flag(0x10)
    }
    pub fn cpi(&self) -> bool {
        self.flag(0x08)
    }
    pub fn auth(&self) -> bool {
        self.flag(0x04)
    }
    pub fn demand(&self) -> bool {
        self.flag(0x02)
    }
    pub fn multipoint(&self) -> bool {
        self.flag(0x01)
    }
    pub fn detect_mult(&self) -> u8 {
        self.b()[2]
    }
    pub fn my_disc(&self) -> u32 {
        self.u32_at(4)
    }
    pub fn your_disc(&self) -> u32 {
        self.u32_at(8)
    }
    pub fn desired_min_tx(&self) -> u32 {
        self.u32_at(12)
    }
    pub fn required_min_rx(&self) -> u32 {
        self.u32_at(16)
    }
    pub fn required_min_echo_rx(&self) -> u32 {
        self.u32_at(20)
    }
}

/// A Control packet's fields; intervals in microseconds as on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    pub diag: u8,
    pub state: State,
    pub poll: bool,
    pub final_: bool,
    pub cpi: bool,
    pub auth: bool,
    pub demand: bool,
    pub detect_mult: u8,
    pub my_disc: u32,
    pub your_disc: u32,
    pub desired_min_tx: u32,
    pub required_min_rx: u32,
    pub required_min_echo_rx: u32,
}

impl Repr {
    /// Parses with the reception checks of RFC 5880 §6.8.6 that need no session (and
    /// keepalived's extra ones: not both P and F, a defined diagnostic).
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Result<Repr, Error> {
        if p.version() != 1 {
            return Err(Error::Version(p.version()));
        }
        if p.detect_mult() == 0 {
            return Err(Error::DetectMult);
        }
        if p.multipoint() {
            return Err(Error::Multipoint);
        }
        if p.my_disc() == 0 {
            return Err(Error::MyDiscriminator);
        }
        if p.your_disc() == 0 && !matches!(p.state(), State::Down | State::AdminDown) {
            return Err(Error::YourDiscriminator(p.state()));
        }
        if p.poll() && p.final_() {
            return Err(Error::PollFinal);
        }
        if p.diag() > 8 {
            return Err(Error::Diag(p.diag()));
        }
        Ok(Repr {
            diag: p.diag(),
            state: p.state(),
            poll: p.poll(),
            final_: p.final_(),
            cpi: p.cpi(),
            auth: p.auth(),
            demand: p.demand(),
            detect_mult: p.detect_mult(),
            my_disc: p.my_disc(),
            your_disc: p.your_disc(),
            desired_min_tx: p.desired_min_tx(),
            required_min_rx: p.required_min_rx(),
            required_min_echo_rx: p.required_min_echo_rx(),
        })
    }

    /// The 24 bytes of this packet (no authentication section).
    pub fn emit(&self) -> [u8; LEN] {
        let mut b = [0u8; LEN];
        b[0] = (1 << 5) | (self.diag & 0x1f);
        b[1] = ((self.state as u8) << 6)
            | (u8::from(self.poll) << 5)
            | (u8::from(self.final_) << 4)
            | (u8::from(self.cpi) << 3)
            | (u8::from(self.auth) << 2)
            | (u8::from(self.demand) << 1);
        b[2] = self.detect_mult;
        b[3] = 24;
        b[4..8].copy_from_slice(&self.my_disc.to_be_bytes());
        b[8..12].copy_from_slice(&self.your_disc.to_be_bytes());
        b[12..16].copy_from_slice(&self.desired_min_tx.to_be_bytes());
        b[16..20].copy_from_slice(&self.required_min_rx.to_be_bytes());
        b[20..24].copy_from_slice(&self.required_min_echo_rx.to_be_bytes());
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Captured from keepalived 2.2.7 (tcpdump between two namespaces, `bfd_instance`
    /// with `min_rx 10` and `min_tx 10`): its first packet — Down, multiplier 5, your
    /// discriminator 0, desired min TX 1 s (not Up yet), required min RX 10 ms, no echo.
    const KEEPALIVED_DOWN: [u8; 24] = [
        0x20, 0x40, 0x05, 0x18, 0x24, 0x1e, 0x6d, 0x46, 0, 0, 0, 0, 0x00, 0x0f, 0x42, 0x40, 0x00,
        0x00, 0x27, 0x10, 0, 0, 0, 0,
    ];

    #[test]
    fn parses_a_down_packet() {
        let p = Packet::new_checked(&KEEPALIVED_DOWN[..]).unwrap_or_else(|e| panic!("{e}"));
        let r = Repr::parse(&p).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.state, State::Down);
        assert_eq!((r.detect_mult, r.my_disc, r.your_disc), (5, 0x241e_6d46, 0));
        assert_eq!((r.desired_min_tx, r.required_min_rx), (1_000_000, 10_000));
        assert!(!r.poll && !r.final_ && !r.auth);
        assert_eq!(r.emit(), KEEPALIVED_DOWN);
    }

    #[test]
    fn flags_round_trip() {
        let r = Repr {
            diag: diag::EXPIRED,
            state: State::Up,
            poll: true,
            final_: false,
            cpi: true,
            auth: false,
            demand: true,
            detect_mult: 3,
            my_disc: 7,
            your_disc: 9,
            desired_min_tx: 100_000,
            required_min_rx: 50_000,
            required_min_echo_rx: 0,
        };
        let b = r.emit();
        assert_eq!(&b[..4], &[0x21, 0xea, 3, 24]);
        let p = Packet::new_checked(&b[..]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(Repr::parse(&p), Ok(r));
    }

    #[test]
    fn refusals() {
        assert_eq!(
            Packet::new_checked(&KEEPALIVED_DOWN[..20]).err(),
            Some(Error::Truncated(20))
        );
        let mut long = KEEPALIVED_DOWN.to_vec();
        long.push(0);
        assert!(matches!(
            Packet::new_checked(&long[..]),
            Err(Error::Length { field: 24, got: 25 })
        ));
        let bad = |f: &dyn Fn(&mut [u8; 24])| {
            let mut b = KEEPALIVED_DOWN;
            f(&mut b);
            Packet::new_checked(b)
                .map_err(|e| e.to_string())
                .and_then(|p| Repr::parse(&p).map_err(|e| e.to_string()))
                .err()
        };
        assert_eq!(
            bad(&|b| b[0] = 0x40).as_deref(),
            Some("version 2, only version 1 exists")
        );
        assert_eq!(
            bad(&|b| b[2] = 0).as_deref(),
            Some("detect multiplier is zero")
        );
        assert_eq!(bad(&|b| b[1] |= 1).as_deref(), Some("multipoint bit set"));
        assert_eq!(
            bad(&|b| b[4..8].fill(0)).as_deref(),
            Some("my discriminator is zero")
        );
        assert_eq!(
            bad(&|b| b[1] = 0xc0).as_deref(),
            Some("your discriminator is zero while the state is Up")
        );
        assert_eq!(
            bad(&|b| b[1] |= 0x30).as_deref(),
            Some("both poll and final set")
        );
        assert_eq!(
            bad(&|b| b[0] = 0x29).as_deref(),
            Some("diagnostic 9 is not defined")
        );
    }

    proptest::proptest! {
        /// Any bytes: a clean error, never a panic.
        #[test]
        fn never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..40)) {
            if let Ok(p) = Packet::new_checked(&bytes[..]) {
                let _ = Repr::parse(&p);
            }
        }

        /// Any 24 bytes with version 1 and length 24: accepted packets re-emit exactly.
        #[test]
        fn accepted_packets_round_trip(mut b in proptest::array::uniform24(proptest::num::u8::ANY)) {
            b[0] = (b[0] & 0x1f) | 0x20;
            b[3] = 24;
            let p = Packet::new_checked(&b[..]).map_err(|e| proptest::test_runner::TestCaseError::fail(e.to_string()))?;
            if let Ok(r) = Repr::parse(&p) {
                proptest::prop_assert_eq!(r.emit(), b);
            }
        }
    }
}
