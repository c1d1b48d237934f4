//! Deterministic simulation of VRRP routers on one LAN: a seeded lossy network, a
//! simulated clock (µs), partitions. Everything is reproducible from the seed.

#![allow(
    clippy::unwrap_used,
    clippy::cast_possible_truncation,
    clippy::cast_precision_loss
)]

use rvs_vrrp::{Action, Advert, Config, Instance, State};
use std::net::IpAddr;

struct Router {
    vrrp: Instance,
    ip: IpAddr,
    up: bool,
    group: u8,
}

struct Net {
    routers: Vec<Router>,
    now: u64,
    /// (delivery time, destination, advert)
    queue: Vec<(u64, usize, Advert)>,
    loss: f64,
    rng: u64,
    /// Per destination: consecutive adverts lost from the current master.
    lost_run: Vec<u32>,
    max_lost_run_before_flap: Vec<u32>,
    masters_log: Vec<(u64, Vec<usize>)>,
}

const DELAY: u64 = 200; // µs on the wire

impl Net {
    fn new(prios: &[u8], version: u8, adv_us: u64, tweak: impl Fn(usize, &mut Config)) -> Net {
        let routers = prios
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let ip = IpAddr::from([198, 18, 0, 10 + i as u8]);
                let mut c = Config {
                    version,
                    priority: *p,
                    adv_us,
                    down_adverts: 3,
                    wants_master: false,
                    nopreempt: false,
                    preempt_delay_us: 0,
                    lower_prio_no_advert: false,
                    higher_prio_send_advert: false,
                    own_ip: ip,
                };
                tweak(i, &mut c);
                Router {
                    vrrp: Instance::new(c),
                    ip,
                    up: false,
                    group: 0,
                }
            })
            .collect::<Vec<_>>();
        let n = routers.len();
        Net {
            routers,
            now: 0,
            queue: Vec::new(),
            loss: 0.0,
            rng: 0x9e37_79b9_7f4a_7c15,
            lost_run: vec![0; n],
            max_lost_run_before_flap: Vec::new(),
            masters_log: Vec::new(),
        }
    }

    fn rand(&mut self) -> f64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        (self.rng >> 11) as f64 / (1u64 << 53) as f64
    }

    fn start(&mut self, i: usize) {
        self.routers[i].up = true;
        let a = self.routers[i].vrrp.start(self.now);
        self.act(i, &a);
    }

    fn stop(&mut self, i: usize) {
        let a = self.routers[i].vrrp.shutdown();
        self.act(i, &a);
        self.routers[i].up = false;
    }

    fn act(&mut self, from: usize, actions: &[Action]) {
        for a in actions {
            if let Action::SendAdvert { priority } = a {
                let adv = Advert {
                    src: self.routers[from].ip,
                    priority: *priority,
                    interval: 10,
                };
                for to in 0..self.routers.len() {
                    if to == from
                        || !self.routers[to].up
                        || self.routers[to].group != self.routers[from].group
                    {
                        continue;
                    }
                    if self.rand() < self.loss {
                        self.lost_run[to] += 1;
                        continue;
                    }
                    self.queue.push((self.now + DELAY, to, adv));
                }
            }
        }
    }

    fn masters(&self) -> Vec<usize> {
        (0..self.routers.len())
            .filter(|i| self.routers[*i].up && self.routers[*i].vrrp.state() == State::Master)
            .collect()
    }

    /// Runs until `until` µs.
    fn run(&mut self, until: u64) {
        loop {
            let next_timer = self
                .routers
                .iter()
                .filter(|r| r.up)
                .filter_map(|r| r.vrrp.deadline())
                .min();
            let next_msg = self.queue.iter().map(|q| q.0).min();
            let next = [next_timer, next_msg].into_iter().flatten().min();
            let Some(t) = next.filter(|t| *t <= until) else {
                self.now = until;
                return;
            };
            self.now = t;
            let due: Vec<(u64, usize, Advert)> =
                self.queue.iter().filter(|q| q.0 <= t).copied().collect();
            self.queue.retain(|q| q.0 > t);
            for (_, to, adv) in due {
                if !self.routers[to].up {
                    continue;
                }
                self.lost_run[to] = 0;
                let a = self.routers[to].vrrp.on_advert(t, &adv);
                self.act(to, &a);
            }
            for i in 0..self.routers.len() {
                if self.routers[i].up && self.routers[i].vrrp.deadline().is_some_and(|d| d <= t) {
                    let was = self.routers[i].vrrp.state();
                    let run = self.lost_run[i];
                    let a = self.routers[i].vrrp.on_timer(t);
                    if was == State::Backup && self.routers[i].vrrp.state() == State::Master {
                        self.max_lost_run_before_flap.push(run);
                    }
                    self.act(i, &a);
                }
            }
            let m = self.masters();
            if self.masters_log.last().is_none_or(|l| l.1 != m) {
                self.masters_log.push((t, m));
            }
        }
    }
}

const S: u64 = 1_000_000;

#[test]
fn one_master_in_steady_state_for_2_to_5_routers() {
    for n in 2..=5 {
        let prios: Vec<u8> = (0..n).map(|i| 100 + 10 * i as u8).collect();
        for version in [2u8, 3] {
            let adv = if version == 2 { S } else { S / 10 };
            let mut net = Net::new(&prios, version, adv, |_, _| {});
            for i in 0..n {
                net.start(i);
            }
            net.run(20 * adv + 10 * S / 10);
            assert_eq!(
                net.masters(),
                vec![n - 1],
                "n={n} v{version}: the highest priority is the only master"
            );
            // And it stays so.
            let flips = net.masters_log.len();
            net.run(net.now + 50 * adv);
            assert_eq!(
                net.masters_log.len(),
                flips,
                "n={n} v{version}: no change in steady state"
            );
        }
    }
}

#[test]
fn priority_zero_handoff_after_the_skew() {
    let mut net = Net::new(&[100, 150, 120], 2, S, |_, _| {});
    for i in 0..3 {
        net.start(i);
    }
    net.run(10 * S);
    assert_eq!(net.masters(), vec![1]);
    let t0 = net.now;
    net.stop(1);
    net.run(t0 + 5 * S);
    // The next highest (120) takes over one skew after the priority-0 advert:
    // (256 - 120) * 1e6 / 256 = 531250 µs (+ the wire delay).
    let (t, m) = net
        .masters_log
        .iter()
        .find(|(t, m)| *t > t0 && !m.is_empty())
        .unwrap()
        .clone();
    assert_eq!(m, vec![2]);
    assert_eq!(t - t0, DELAY + 531_250);
}

#[test]
fn preemption_and_nopreempt() {
    for nopreempt in [false, true] {
        // A (100) runs alone; B (150) starts 10 s later.
        let mut net = Net::new(&[100, 150], 2, S, |i, c| c.nopreempt = nopreempt && i == 1);
        net.start(0);
        net.run(10 * S);
        assert_eq!(net.masters(), vec![0]);
        net.start(1);
        net.run(20 * S);
        if nopreempt {
            assert_eq!(net.masters(), vec![0], "nopreempt: B does not take over");
        } else {
            assert_eq!(net.masters(), vec![1], "B preempts");
            // B ignores A's lower adverts and takes over when its down timer expires:
            // 3 × 1 s + (256-150)/256 s after it started.
            let (t, _) = net
                .masters_log
                .iter()
                .find(|(_, m)| m.contains(&1))
                .unwrap()
                .clone();
            assert_eq!(t, 10 * S + 3 * S + 414_062);
        }
    }
}

#[test]
fn partition_gives_two_masters_and_healing_one() {
    let mut net = Net::new(&[100, 150], 3, S / 10, |_, _| {});
    net.start(0);
    net.start(1);
    net.run(5 * S);
    assert_eq!(net.masters(), vec![1]);
    net.routers[0].group = 1; // cut A off
    net.run(10 * S);
    assert_eq!(net.masters(), vec![0, 1], "split brain while partitioned");
    net.routers[0].group = 0;
    let healed = net.now;
    let mdi = net.routers[0].vrrp.master_down_us();
    net.run(healed + mdi);
    assert_eq!(
        net.masters(),
        vec![1],
        "one master again within one Master_Down_Interval"
    );
}

#[test]
fn lossy_network_flaps_only_after_three_lost_adverts() {
    let mut net = Net::new(&[100, 150], 2, S, |_, _| {});
    net.loss = 0.3;
    net.start(0);
    net.start(1);
    net.run(1000 * S);
    // Every takeover by the backup followed a run of at least 3 lost adverts (the
    // default 3-advert window); the priority-150 master always wins back at once.
    let flaps: Vec<u32> = net
        .max_lost_run_before_flap
        .iter()
        .skip(1)
        .copied()
        .collect();
    assert!(
        flaps.iter().all(|r| *r >= 3),
        "a flap without 3 lost adverts: {flaps:?}"
    );
    assert_eq!(net.masters(), vec![1]);
    eprintln!("1000 s at 30 % loss: {} takeovers by the backup, each after >= 3 lost adverts (expected about 0.3^3 x 1000 = 27)", flaps.len());
}
