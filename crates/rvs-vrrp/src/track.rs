//! Effective priority from tracked objects (spec §7): `clamp(base + Σ adjustments, 1, 254)`,
//! an address owner (base 255) is immune, and a weight-0 tracker in the wrong state puts
//! the instance in FAULT.

/// One tracked object's contribution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tracker {
    /// An interface, script, process or BFD session: up or down, with a weight (±253/254)
    /// and `reverse`.
    State {
        up: bool,
        weight: i32,
        reverse: bool,
    },
    /// A tracked file: its integer value times the weight (±254), with `reverse`.
    File {
        value: i64,
        weight: i32,
        reverse: bool,
    },
}

/// The instance is faulted by a tracker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fault;

/// keepalived's effective priority.
pub fn effective_priority(base: u8, trackers: &[Tracker]) -> Result<u8, Fault> {
    let mut total = i64::from(base);
    for t in trackers {
        match *t {
            Tracker::State {
                up,
                weight,
                reverse,
            } => {
                let m: i64 = if reverse { -1 } else { 1 };
                if weight == 0 {
                    // With reverse, FAULT when the object is up.
                    if up == reverse {
                        return Err(Fault);
                    }
                } else if (weight > 0 && up) || (weight < 0 && !up) {
                    total += i64::from(weight) * m;
                }
            }
            Tracker::File {
                value,
                weight,
                reverse,
            } => {
                let m: i64 = if reverse { -1 } else { 1 };
                if weight == 0 {
                    if value != 0 {
                        return Err(Fault);
                    }
                    continue;
                }
                let r = value.saturating_mul(i64::from(weight)).saturating_mul(m);
                if r <= -254 {
                    return Err(Fault);
                }
                total += r.min(253);
            }
        }
    }
    if base == 255 {
        return Ok(255);
    }
    Ok(u8::try_from(total.clamp(1, 254)).unwrap_or(254))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(up: bool, weight: i32, reverse: bool) -> Tracker {
        Tracker::State {
            up,
            weight,
            reverse,
        }
    }

    #[test]
    fn weights_and_reverse() {
        assert_eq!(
            effective_priority(100, &[st(true, 20, false)]),
            Ok(120),
            "up, w > 0: add"
        );
        assert_eq!(
            effective_priority(100, &[st(false, 20, false)]),
            Ok(100),
            "down, w > 0: nothing"
        );
        assert_eq!(
            effective_priority(100, &[st(false, -30, false)]),
            Ok(70),
            "down, w < 0: subtract"
        );
        assert_eq!(
            effective_priority(100, &[st(true, -30, false)]),
            Ok(100),
            "up, w < 0: nothing"
        );
        assert_eq!(
            effective_priority(100, &[st(true, 20, true)]),
            Ok(80),
            "reverse: a positive weight subtracts while up"
        );
        assert_eq!(
            effective_priority(100, &[st(false, -20, true)]),
            Ok(120),
            "reverse: a negative weight adds while down"
        );
        assert_eq!(
            effective_priority(250, &[st(true, 50, false)]),
            Ok(254),
            "clamped to 254"
        );
        assert_eq!(
            effective_priority(10, &[st(false, -50, false)]),
            Ok(1),
            "clamped to 1"
        );
        assert_eq!(
            effective_priority(255, &[st(false, -50, false)]),
            Ok(255),
            "the owner is immune"
        );
    }

    #[test]
    fn faults() {
        assert_eq!(
            effective_priority(100, &[st(false, 0, false)]),
            Err(Fault),
            "weight 0 down"
        );
        assert_eq!(effective_priority(100, &[st(true, 0, false)]), Ok(100));
        assert_eq!(
            effective_priority(100, &[st(true, 0, true)]),
            Err(Fault),
            "weight 0 reverse: fault while up"
        );
        let file = |value, weight| Tracker::File {
            value,
            weight,
            reverse: false,
        };
        assert_eq!(effective_priority(100, &[file(2, 10)]), Ok(120));
        assert_eq!(
            effective_priority(100, &[file(100, 10)]),
            Ok(254),
            "file contribution capped at +253, then clamped"
        );
        assert_eq!(
            effective_priority(100, &[file(-30, 10)]),
            Err(Fault),
            "a result <= -254 faults"
        );
        assert_eq!(
            effective_priority(100, &[file(1, 0)]),
            Err(Fault),
            "weight 0: non-zero faults"
        );
    }
}
