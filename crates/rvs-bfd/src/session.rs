//! One BFD session in asynchronous mode (RFC 5880 §6), sans-IO: the caller hands in
//! received packets and the time, asks what to transmit and when to call again. No
//! sockets, no clock: the tests drive it with a simulated one.
//!
//! Timers as keepalived's BFD and RFC 5880 have them:
//! - transmit interval = max(desired min TX, remote required min RX), jittered down by
//!   0–25 % (10–25 % with a detect multiplier of 1); desired min TX is `idle_tx` (≥ 1 s)
//!   while the session is not Up and `min_tx` once Up — that change is announced with a
//!   Poll sequence, answered by a Final;
//! - detection time = remote detect multiplier × max(our required min RX, remote desired
//!   min TX); a session in Init or Up that hears nothing for that long goes Down
//!   ("Control Detection Time Expired") and forgets the remote discriminator.
//! - A remote required min RX of 0 stops periodic transmission (RFC 5880 §6.8.7).

use crate::wire::{diag, Repr, State};
use std::time::{Duration, Instant};

/// A session's configuration (keepalived's `bfd_instance` timers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub detect_mult: u8,
    /// Desired min TX interval once Up (`min_tx`).
    pub min_tx: Duration,
    /// Required min RX interval (`min_rx`).
    pub min_rx: Duration,
    /// Desired min TX interval while not Up (`idle_tx`, at least 1 s).
    pub idle_tx: Duration,
    /// Send nothing until the neighbour has spoken (`passive`).
    pub passive: bool,
}

impl Default for Config {
    /// keepalived's defaults: multiplier 5, 10 ms / 10 ms, idle 1 s, active.
    fn default() -> Config {
        Config {
            detect_mult: 5,
            min_tx: Duration::from_millis(10),
            min_rx: Duration::from_millis(10),
            idle_tx: Duration::from_secs(1),
            passive: false,
        }
    }
}

/// A state change, with the local diagnostic that explains it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    pub from: State,
    pub to: State,
    pub diag: u8,
}

/// Why a received packet was not applied to the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Discard {
    #[error("authentication bit set, but no authentication is configured")]
    Auth,
    #[error("your discriminator {0} is not this session's")]
    Discriminator(u32),
    #[error("session is AdminDown")]
    AdminDown,
}

fn us(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

#[derive(Debug, Clone)]
pub struct Session {
    cfg: Config,
    local_disc: u32,
    state: State,
    diag: u8,
    remote_disc: u32,
    remote_state: State,
    remote_diag: u8,
    /// µs; RFC 5880 initialises it to 1 (so that we transmit before hearing anything).
    remote_min_rx: u32,
    remote_desired_tx: u32,
    remote_mult: u8,
    remote_demand: bool,
    /// A Poll sequence is running: our packets carry P until a Final arrives.
    poll: bool,
    /// A Poll was received: the next packet, sent at once, carries F.
    send_final: bool,
    /// The (min TX, min RX) in force before a reconfiguration while Up, until its Poll
    /// sequence ends (RFC 5880 §6.8.3: an increased TX interval and a reduced RX interval
    /// take effect only then).
    held: Option<(Duration, Duration)>,
    next_tx: Option<Instant>,
    detect_at: Option<Instant>,
    rng: u64,
}

impl Session {
    /// A session in Down state with a non-zero local discriminator. `seed` feeds the
    /// transmit jitter (tests pass a fixed one). The first packet goes out at `now`
    /// (not in passive mode).
    pub fn new(cfg: Config, local_disc: u32, now: Instant, seed: u64) -> Session {
        let passive = cfg.passive;
        Session {
            cfg,
            local_disc: local_disc.max(1),
            state: State::Down,
            diag: diag::NONE,
            remote_disc: 0,
            remote_state: State::Down,
            remote_diag: diag::NONE,
            remote_min_rx: 1,
            remote_desired_tx: 0,
            remote_mult: 0,
            remote_demand: false,
            poll: false,
            send_final: false,
            held: None,
            next_tx: (!passive).then_some(now),
            detect_at: None,
            rng: seed | 1,
        }
    }

    pub fn state(&self) -> State {
        self.state
    }
    pub fn local_diag(&self) -> u8 {
        self.diag
    }
    pub fn remote_state(&self) -> State {
        self.remote_state
    }
    pub fn remote_diag(&self) -> u8 {
        self.remote_diag
    }
    pub fn local_disc(&self) -> u32 {
        self.local_disc
    }
    pub fn remote_disc(&self) -> u32 {
        self.remote_disc
    }
    pub fn polling(&self) -> bool {
        self.poll
    }

    /// Desired min TX we announce: `idle_tx` (at least 1 s) while not Up, `min_tx` once Up.
    pub fn desired_min_tx(&self) -> Duration {
        if self.state == State::Up {
            self.cfg.min_tx
        } else {
            self.cfg
                .idle_tx
                .max(Duration::from_secs(1))
                .max(self.cfg.min_tx)
        }
    }

    /// The interval between our packets; `None` when the remote asked for none.
    pub fn tx_interval(&self) -> Option<Duration> {
        if self.remote_min_rx == 0 {
            return None;
        }
        let mut ours = self.desired_min_tx();
        if let (Some((old_tx, _)), State::Up) = (self.held, self.state) {
            ours = ours.min(old_tx);
        }
        Some(ours.max(Duration::from_micros(u64::from(self.remote_min_rx))))
    }

    /// How long the remote may stay silent before the session goes Down.
    pub fn detection_time(&self) -> Duration {
        let mut min_rx = self.cfg.min_rx;
        if let Some((_, old_rx)) = self.held {
            min_rx = min_rx.max(old_rx);
        }
        let per = min_rx.max(Duration::from_micros(u64::from(self.remote_desired_tx)));
        per * u32::from(self.remote_mult)
    }

    /// New timers and multiplier for a running session (a reload): they go out in the
    /// next packet; while Up, a Poll sequence announces them, and until it ends a longer
    /// TX interval or a shorter RX interval does not take effect (RFC 5880 §6.8.3).
    pub fn reconfigure(&mut self, cfg: Config, now: Instant) {
        let old = (self.cfg.min_tx, self.cfg.min_rx);
        let retimed = cfg.min_tx != self.cfg.min_tx || cfg.min_rx != self.cfg.min_rx;
        self.cfg = cfg;
        if retimed && self.state == State::Up {
            self.held = Some(self.held.map_or(old, |h| (h.0.min(old.0), h.1.max(old.1))));
            self.poll = true;
            self.next_tx = Some(now);
        }
    }

    fn jittered(&mut self, d: Duration) -> Duration {
        // xorshift64*: deterministic per seed, good enough for jitter.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        let r = self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 40; // 24 bits
        #[allow(clippy::cast_precision_loss)]
        let unit = r as f64 / f64::from(1u32 << 24);
        let (lo, hi) = if self.cfg.detect_mult == 1 {
            (0.75, 0.90)
        } else {
            (0.75, 1.0)
        };
        d.mul_f64(lo + (hi - lo) * unit)
    }

    fn schedule_tx(&mut self, now: Instant) {
        self.next_tx = self.tx_interval().map(|i| now + self.jittered(i));
    }

    fn go(&mut self, to: State, diag_code: u8) -> Transition {
        let t = Transition {
            from: self.state,
            to,
            diag: diag_code,
        };
        self.state = to;
        self.diag = diag_code;
        match to {
            // The desired TX drops from idle to min_tx: announce it with a Poll.
            State::Up => self.poll = true,
            State::Down | State::AdminDown => {
                self.poll = false;
                self.held = None;
                self.detect_at = None;
            }
            State::Init => {}
        }
        t
    }

    /// Applies a received packet (already checked by [`Repr::parse`]) at `now`: the
    /// state machine of RFC 5880 §6.8.6. Returns the state change, if any.
    pub fn on_packet(&mut self, now: Instant, p: &Repr) -> Result<Option<Transition>, Discard> {
        if p.your_disc != 0 && p.your_disc != self.local_disc {
            return Err(Discard::Discriminator(p.your_disc));
        }
        if p.auth {
            return Err(Discard::Auth);
        }
        if self.state == State::AdminDown {
            return Err(Discard::AdminDown);
        }
        let old_interval = self.tx_interval();
        self.remote_disc = p.my_disc;
        self.remote_state = p.state;
        self.remote_diag = p.diag;
        self.remote_demand = p.demand;
        self.remote_min_rx = p.required_min_rx;
        self.remote_desired_tx = p.desired_min_tx;
        self.remote_mult = p.detect_mult;
        if p.final_ {
            self.poll = false;
            self.held = None;
        }
        let change = if p.state == State::AdminDown {
            (self.state != State::Down).then(|| self.go(State::Down, diag::NEIGHBOR_DOWN))
        } else {
            match (self.state, p.state) {
                (State::Down, State::Down) => Some(self.go(State::Init, diag::NONE)),
                (State::Down | State::Init, State::Init) | (State::Init, State::Up) => {
                    Some(self.go(State::Up, diag::NONE))
                }
                (State::Up, State::Down) => Some(self.go(State::Down, diag::NEIGHBOR_DOWN)),
                _ => None,
            }
        };
        if p.poll {
            self.send_final = true;
        }
        if matches!(self.state, State::Init | State::Up) {
            self.detect_at = Some(now + self.detection_time());
        }
        // Transmit sooner when the interval shrank (or a passive session was spoken to).
        let new_interval = self.tx_interval();
        if new_interval != old_interval || self.next_tx.is_none() {
            match (self.next_tx, new_interval) {
                (None, Some(_)) => self.next_tx = Some(now),
                (Some(at), Some(i)) if at > now + i => self.schedule_tx(now),
                (_, None) => self.next_tx = None,
                _ => {}
            }
        }
        Ok(change)
    }

    /// Expires the detection timer at `now`.
    pub fn on_timeout(&mut self, now: Instant) -> Option<Transition> {
        match self.detect_at {
            Some(at) if now >= at && matches!(self.state, State::Init | State::Up) => {
                self.remote_disc = 0;
                Some(self.go(State::Down, diag::EXPIRED))
            }
            _ => None,
        }
    }

    /// The packet to send at `now`, if one is due (a periodic one, or a Final answering
    /// a Poll, which goes out at once).
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Repr> {
        let due = self.next_tx.is_some_and(|t| now >= t);
        if !(due || self.send_final) {
            return None;
        }
        let fin = std::mem::take(&mut self.send_final);
        if due {
            self.schedule_tx(now);
        }
        Some(self.packet(fin))
    }

    fn packet(&self, fin: bool) -> Repr {
        Repr {
            diag: self.diag,
            state: self.state,
            poll: self.poll && !fin,
            final_: fin,
            cpi: false,
            auth: false,
            demand: false,
            detect_mult: self.cfg.detect_mult,
            my_disc: self.local_disc,
            your_disc: self.remote_disc,
            desired_min_tx: us(self.desired_min_tx()),
            required_min_rx: us(self.cfg.min_rx),
            required_min_echo_rx: 0,
        }
    }

    /// When to call again ([`Session::on_timeout`] and [`Session::poll_transmit`]).
    pub fn next_deadline(&self) -> Option<Instant> {
        match (self.next_tx, self.detect_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Takes the session `AdminDown` (shutdown): the packet that tells the neighbour.
    pub fn admin_down(&mut self) -> (Option<Transition>, Repr) {
        let t =
            (self.state != State::AdminDown).then(|| self.go(State::AdminDown, diag::ADMIN_DOWN));
        self.next_tx = None;
        (t, self.packet(false))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn cfg(mult: u8, tx_ms: u64, rx_ms: u64) -> Config {
        Config {
            detect_mult: mult,
            min_tx: MS * u32::try_from(tx_ms).unwrap_or(1),
            min_rx: MS * u32::try_from(rx_ms).unwrap_or(1),
            idle_tx: Duration::from_secs(1),
            passive: false,
        }
    }

    /// Delivers every packet each side wants to send at `now` to the other.
    fn exchange(a: &mut Session, b: &mut Session, now: Instant) -> Vec<Transition> {
        let mut out = Vec::new();
        for _ in 0..4 {
            let mut moved = false;
            if let Some(p) = a.poll_transmit(now) {
                out.extend(b.on_packet(now, &p).unwrap_or_else(|e| panic!("{e}")));
                moved = true;
            }
            if let Some(p) = b.poll_transmit(now) {
                out.extend(a.on_packet(now, &p).unwrap_or_else(|e| panic!("{e}")));
                moved = true;
            }
            if !moved {
                break;
            }
        }
        out
    }

    /// Runs both sessions on a simulated clock in 1 ms steps until `until`.
    fn run(
        a: &mut Session,
        b: &mut Session,
        from: Instant,
        until: Duration,
        link: bool,
    ) -> Vec<(Duration, char, Transition)> {
        let mut log = Vec::new();
        let mut now = from;
        while now < from + until {
            if link {
                for t in exchange(a, b, now) {
                    log.push((now - from, '?', t));
                }
            } else {
                let _ = a.poll_transmit(now);
                let _ = b.poll_transmit(now);
            }
            if let Some(t) = a.on_timeout(now) {
                log.push((now - from, 'a', t));
            }
            if let Some(t) = b.on_timeout(now) {
                log.push((now - from, 'b', t));
            }
            now += MS;
        }
        log
    }

    #[test]
    fn three_way_handshake_then_poll_to_fast_timers() {
        let t0 = Instant::now();
        let mut a = Session::new(cfg(3, 50, 50), 11, t0, 1);
        let mut b = Session::new(cfg(3, 50, 50), 22, t0, 2);
        // Both send Down at t0: each goes Init, then Up on the other's Init.
        let log = run(&mut a, &mut b, t0, 100 * MS, true);
        let steps: Vec<(State, State)> = log.iter().map(|(_, _, t)| (t.from, t.to)).collect();
        assert_eq!(
            steps,
            [
                (State::Down, State::Init),
                (State::Down, State::Up),
                (State::Init, State::Up)
            ],
            "{log:?}"
        );
        assert_eq!((a.state(), b.state()), (State::Up, State::Up));
        assert_eq!((a.remote_disc(), b.remote_disc()), (22, 11));
        // Up: the desired TX is min_tx now, announced by a Poll answered with a Final.
        run(
            &mut a,
            &mut b,
            t0 + 100 * MS,
            2 * Duration::from_secs(1),
            true,
        );
        assert!(!a.polling() && !b.polling(), "poll sequences ended");
        assert_eq!(a.desired_min_tx(), 50 * MS);
        assert_eq!(a.tx_interval(), Some(50 * MS));
        assert_eq!(a.detection_time(), 150 * MS, "3 x max(50, 50)");
    }

    #[test]
    fn reconfigured_timers_take_effect_through_a_poll_without_a_flap() {
        let t0 = Instant::now();
        let mut a = Session::new(cfg(3, 50, 50), 11, t0, 1);
        let mut b = Session::new(cfg(3, 50, 50), 22, t0, 2);
        let _ = run(&mut a, &mut b, t0, 3 * Duration::from_secs(1), true);
        assert_eq!((a.state(), b.state()), (State::Up, State::Up));
        let t1 = t0 + 3 * Duration::from_secs(1);
        // Slower TX, faster RX on a: announced with a Poll at once; until the Final the
        // old TX interval and the old (longer) RX interval stay in force.
        a.reconfigure(cfg(3, 200, 20), t1);
        assert!(a.polling());
        assert_eq!(a.tx_interval(), Some(50 * MS), "TX increase held");
        assert_eq!(a.detection_time(), 150 * MS, "RX decrease held");
        let p = a.poll_transmit(t1).expect("the Poll goes out at once");
        assert!(p.poll);
        assert_eq!((p.desired_min_tx, p.required_min_rx), (200_000, 20_000));
        let log = run(&mut a, &mut b, t1, 2 * Duration::from_secs(1), true);
        assert!(log.is_empty(), "no state change: {log:?}");
        assert!(!a.polling(), "the Final ended the Poll");
        assert_eq!(a.tx_interval(), Some(200 * MS));
        // b now sends every 50 ms against a's 20 ms: 3 x max(20, 50).
        assert_eq!(a.detection_time(), 150 * MS);
        assert_eq!(b.detection_time(), 600 * MS, "3 x max(50, 200)");
    }

    #[test]
    fn silence_expires_after_the_detection_time() {
        let t0 = Instant::now();
        let mut a = Session::new(cfg(3, 20, 20), 1, t0, 3);
        let mut b = Session::new(cfg(4, 20, 30), 2, t0, 4);
        run(&mut a, &mut b, t0, Duration::from_secs(3), true);
        assert_eq!(a.state(), State::Up);
        // a's detection time: b's mult 4 x max(a's min_rx 20, b's desired 20) = 80 ms.
        assert_eq!(a.detection_time(), 80 * MS);
        let cut = t0 + Duration::from_secs(3);
        let log = run(&mut a, &mut b, cut, Duration::from_secs(1), false);
        let (at, _, t) = log
            .iter()
            .find(|(_, who, _)| *who == 'a')
            .copied()
            .unwrap_or_else(|| panic!("{log:?}"));
        assert_eq!((t.to, t.diag), (State::Down, diag::EXPIRED));
        assert!(at <= 80 * MS, "expired {at:?} after the last packet");
        assert!(at >= 55 * MS, "not before the detection time: {at:?}");
        assert_eq!(a.remote_disc(), 0, "remote discriminator forgotten");
        // The link comes back: the handshake starts again from Down.
        run(
            &mut a,
            &mut b,
            cut + Duration::from_secs(1),
            Duration::from_secs(3),
            true,
        );
        assert_eq!((a.state(), b.state()), (State::Up, State::Up));
    }

    #[test]
    fn admin_down_takes_the_neighbour_down_at_once() {
        let t0 = Instant::now();
        let mut a = Session::new(cfg(3, 20, 20), 1, t0, 5);
        let mut b = Session::new(cfg(3, 20, 20), 2, t0, 6);
        run(&mut a, &mut b, t0, Duration::from_secs(2), true);
        let (t, p) = a.admin_down();
        assert_eq!(t.map(|t| t.to), Some(State::AdminDown));
        assert_eq!((p.state, p.diag), (State::AdminDown, diag::ADMIN_DOWN));
        let now = t0 + Duration::from_secs(2);
        let got = b.on_packet(now, &p).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            got.map(|t| (t.to, t.diag)),
            Some((State::Down, diag::NEIGHBOR_DOWN))
        );
        assert_eq!(
            a.poll_transmit(now + Duration::from_secs(5)),
            None,
            "AdminDown sends nothing more"
        );
        assert_eq!(a.on_packet(now, &b.packet(false)), Err(Discard::AdminDown));
    }

    #[test]
    fn idle_rate_while_down_and_jitter_bounds() {
        let t0 = Instant::now();
        let mut a = Session::new(cfg(3, 10, 10), 1, t0, 7);
        let mut sent = Vec::new();
        let mut now = t0;
        while now < t0 + Duration::from_secs(10) {
            if let Some(p) = a.poll_transmit(now) {
                assert_eq!(p.state, State::Down);
                assert_eq!(
                    p.desired_min_tx, 1_000_000,
                    "not Up: at least 1 s announced"
                );
                sent.push(now);
            }
            now += MS;
        }
        for w in sent.windows(2) {
            let gap = w[1] - w[0];
            assert!(gap >= 750 * MS && gap <= 1001 * MS, "{gap:?}");
        }
        assert!(sent.len() >= 10 && sent.len() <= 14, "{}", sent.len());
        // Detect multiplier 1: 75–90 %.
        let mut one = Session::new(cfg(1, 10, 10), 1, t0, 9);
        let mut prev = None;
        let mut now = t0;
        while now < t0 + Duration::from_secs(10) {
            if one.poll_transmit(now).is_some() {
                if let Some(p) = prev {
                    let gap: Duration = now - p;
                    assert!(gap >= 750 * MS && gap <= 901 * MS, "{gap:?}");
                }
                prev = Some(now);
            }
            now += MS;
        }
    }

    #[test]
    fn passive_waits_and_poll_gets_a_final_at_once() {
        let t0 = Instant::now();
        let mut p = Session::new(
            Config {
                passive: true,
                ..cfg(3, 10, 10)
            },
            5,
            t0,
            11,
        );
        assert_eq!(p.poll_transmit(t0 + Duration::from_secs(5)), None);
        assert_eq!(p.next_deadline(), None);
        let mut a = Session::new(cfg(3, 10, 10), 6, t0, 12);
        let hello = a
            .poll_transmit(t0)
            .unwrap_or_else(|| panic!("active sends at once"));
        assert_eq!(
            p.on_packet(t0, &hello).ok().flatten().map(|t| t.to),
            Some(State::Init)
        );
        assert!(p.poll_transmit(t0).is_some(), "spoken to: transmits");
        // A Poll is answered by a Final right away, outside the periodic schedule.
        let mut poll = a.packet(false);
        poll.poll = true;
        poll.your_disc = 5;
        let _ = p.on_packet(t0 + MS, &poll);
        let fin = p
            .poll_transmit(t0 + MS)
            .unwrap_or_else(|| panic!("no Final"));
        assert!(fin.final_ && !fin.poll);
        assert_eq!(
            p.on_packet(
                t0,
                &Repr {
                    your_disc: 99,
                    ..hello
                }
            ),
            Err(Discard::Discriminator(99))
        );
        assert_eq!(
            p.on_packet(
                t0,
                &Repr {
                    auth: true,
                    ..hello
                }
            ),
            Err(Discard::Auth)
        );
    }

    #[test]
    fn zero_remote_min_rx_stops_transmission() {
        let t0 = Instant::now();
        let mut a = Session::new(cfg(3, 10, 10), 1, t0, 13);
        let mut b = Session::new(cfg(3, 10, 10), 2, t0, 14);
        let mut hello = b.poll_transmit(t0).unwrap_or_else(|| panic!());
        hello.required_min_rx = 0;
        let _ = a.poll_transmit(t0);
        let _ = a.on_packet(t0, &hello);
        assert_eq!(a.tx_interval(), None);
        assert_eq!(a.poll_transmit(t0 + Duration::from_secs(10)), None);
    }
}
