//! keepalived's checker state rules, sans-IO: the caller reports each check's result with
//! the time, and gets back the state change (if any) and when to check next.
//!
//! Rules (keepalived-conf spec §11.2): without `alpha` a checker starts UP and its first
//! failure marks it DOWN at once; with `alpha` it starts DOWN. Once UP, it takes
//! `retry + 1` consecutive failures, spaced by `delay_before_retry`, to go DOWN. One
//! success brings a DOWN checker UP. Checks run every `delay_loop`; the first one after a
//! random delay in `[0, warmup]`.

use std::time::Duration;

/// What a check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Up,
    Down,
    /// A local failure (no file descriptors, no source address): says nothing about the
    /// real server, so it never changes its state.
    LocalError,
}

/// A state change to act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    WentUp,
    WentDown,
}

#[derive(Debug, Clone)]
pub struct Timing {
    pub delay_loop: Duration,
    pub delay_before_retry: Duration,
    pub retry: u32,
    pub alpha: bool,
}

#[derive(Debug, Clone)]
pub struct CheckerState {
    t: Timing,
    up: bool,
    /// A success has been seen since start (before it, a failure is immediate).
    confirmed: bool,
    failures: u32,
}

impl CheckerState {
    pub fn new(t: Timing) -> CheckerState {
        let up = !t.alpha;
        CheckerState {
            t,
            up,
            confirmed: false,
            failures: 0,
        }
    }

    /// A checker restarted by a reload, carrying its real server's state: a down one
    /// reports its next success; an up one was seen up, so its failures are retried.
    pub fn resume(t: Timing, up: bool) -> CheckerState {
        CheckerState {
            t,
            up,
            confirmed: up,
            failures: 0,
        }
    }

    pub fn is_up(&self) -> bool {
        self.up
    }

    /// Records a check's outcome; returns the state change and the delay to the next check.
    pub fn record(&mut self, o: Outcome) -> (Option<Change>, Duration) {
        match o {
            Outcome::LocalError => (None, self.t.delay_loop),
            Outcome::Up => {
                self.failures = 0;
                self.confirmed = true;
                if self.up {
                    (None, self.t.delay_loop)
                } else {
                    self.up = true;
                    (Some(Change::WentUp), self.t.delay_loop)
                }
            }
            Outcome::Down => {
                if !self.up {
                    return (None, self.t.delay_loop);
                }
                self.failures += 1;
                if !self.confirmed || self.failures > self.t.retry {
                    self.up = false;
                    self.failures = 0;
                    (Some(Change::WentDown), self.t.delay_loop)
                } else {
                    (None, self.t.delay_before_retry)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(retry: u32, alpha: bool) -> Timing {
        Timing {
            delay_loop: Duration::from_secs(6),
            delay_before_retry: Duration::from_secs(2),
            retry,
            alpha,
        }
    }

    #[test]
    fn first_failure_at_start_is_immediate() {
        let mut s = CheckerState::new(t(3, false));
        assert!(s.is_up());
        assert_eq!(
            s.record(Outcome::Down),
            (Some(Change::WentDown), Duration::from_secs(6))
        );
    }

    #[test]
    fn retries_after_a_success() {
        let mut s = CheckerState::new(t(2, false));
        assert_eq!(s.record(Outcome::Up).0, None);
        // retry 2: the 1st and 2nd failures are retried after delay_before_retry.
        assert_eq!(s.record(Outcome::Down), (None, Duration::from_secs(2)));
        assert_eq!(s.record(Outcome::Down), (None, Duration::from_secs(2)));
        assert_eq!(s.record(Outcome::Down).0, Some(Change::WentDown));
        assert_eq!(s.record(Outcome::Up).0, Some(Change::WentUp));
        // A success in between resets the count.
        assert_eq!(s.record(Outcome::Down).0, None);
        assert_eq!(s.record(Outcome::Up).0, None);
        assert_eq!(s.record(Outcome::Down).0, None);
    }

    #[test]
    fn resumed_state_is_reported_from() {
        // Down before the reload, without alpha: the next success is a change (a fresh
        // checker would start up and report nothing, leaving the server out forever).
        let mut s = CheckerState::resume(t(1, false), false);
        assert_eq!(s.record(Outcome::Up).0, Some(Change::WentUp));
        // Up before the reload: already confirmed, so a failure is retried.
        let mut s = CheckerState::resume(t(1, true), true);
        assert_eq!(s.record(Outcome::Down), (None, Duration::from_secs(2)));
        assert_eq!(s.record(Outcome::Down).0, Some(Change::WentDown));
    }

    #[test]
    fn alpha_starts_down_and_local_errors_change_nothing() {
        let mut s = CheckerState::new(t(1, true));
        assert!(!s.is_up());
        assert_eq!(s.record(Outcome::LocalError).0, None);
        assert!(!s.is_up());
        assert_eq!(s.record(Outcome::Up).0, Some(Change::WentUp));
        assert_eq!(s.record(Outcome::LocalError).0, None);
        assert!(s.is_up());
    }
}
