//! The kernel's rate estimator (`ip_vs_est.c`): every 2 seconds the counters' deltas are
//! folded into exponentially weighted moving averages with weight 1/4, in fixed point
//! (connections and packets scaled by 2^10, bytes by 2^5), so `ipvsadm --rate` and rvs
//! show the same numbers for the same traffic.

/// Cumulative counters of a service or real server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub conns: u64,
    pub in_pkts: u64,
    pub out_pkts: u64,
    pub in_bytes: u64,
    pub out_bytes: u64,
}

/// Per-second rates, as `ipvsadm --rate` prints them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rates {
    pub cps: u64,
    pub in_pps: u64,
    pub out_pps: u64,
    pub in_bps: u64,
    pub out_bps: u64,
}

/// Seconds between two estimator runs.
pub const INTERVAL_S: u64 = 2;

#[derive(Debug, Clone, Copy, Default)]
pub struct Estimator {
    last: Totals,
    cps: i64,
    in_pps: i64,
    out_pps: i64,
    in_bps: i64,
    out_bps: i64,
}

fn ewma(avg: &mut i64, delta: u64, shift: u32) {
    let rate = i64::try_from(delta).unwrap_or(i64::MAX >> 12) << shift;
    *avg += (rate - *avg) >> 2;
}

impl Estimator {
    /// Starts from the current totals (no burst of history on the first run).
    pub fn new(now: Totals) -> Estimator {
        Estimator {
            last: now,
            ..Estimator::default()
        }
    }

    /// One 2-second run with the current totals.
    pub fn tick(&mut self, now: Totals) {
        let d = |a: u64, b: u64| a.saturating_sub(b);
        // Per 2 s, scaled: conns/packets << 9 (= per second << 10), bytes << 4 (<< 5).
        ewma(&mut self.cps, d(now.conns, self.last.conns), 9);
        ewma(&mut self.in_pps, d(now.in_pkts, self.last.in_pkts), 9);
        ewma(&mut self.out_pps, d(now.out_pkts, self.last.out_pkts), 9);
        ewma(&mut self.in_bps, d(now.in_bytes, self.last.in_bytes), 4);
        ewma(&mut self.out_bps, d(now.out_bytes, self.last.out_bytes), 4);
        self.last = now;
    }

    /// The rates, rounded as the kernel reads them out.
    pub fn rates(&self) -> Rates {
        let r = |v: i64, add: i64, shift: u32| u64::try_from((v + add) >> shift).unwrap_or(0);
        Rates {
            cps: r(self.cps, 0x1ff, 10),
            in_pps: r(self.in_pps, 0x1ff, 10),
            out_pps: r(self.out_pps, 0x1ff, 10),
            in_bps: r(self.in_bps, 0xf, 5),
            out_bps: r(self.out_bps, 0xf, 5),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converges_to_the_steady_rate() {
        let mut t = Totals::default();
        let mut e = Estimator::new(t);
        // 100 connections and 1 MB in per second, for 200 s (the average converges
        // geometrically: (3/4)^100 of the start remains).
        for _ in 0..100 {
            t.conns += 200;
            t.in_bytes += 2_000_000;
            t.in_pkts += 2000;
            e.tick(t);
        }
        let r = e.rates();
        assert_eq!(r.cps, 100);
        assert_eq!(r.in_bps, 1_000_000);
        assert_eq!(r.in_pps, 1000);
        // One run after traffic stops, the average falls by a quarter.
        e.tick(t);
        assert_eq!(e.rates().cps, 75);
    }
}
