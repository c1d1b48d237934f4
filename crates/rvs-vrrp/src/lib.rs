//! `rvs-vrrp`: one VRRP instance as a sans-IO state machine, with keepalived's integer
//! timer arithmetic (spec `vrrp-behaviour.md` §2-§6). The driver feeds it received
//! adverts, timer expiries and faults, each with `now` in microseconds, and performs the
//! returned [`Action`]s (send an advert, add or remove the VIPs and announce them).
//!
//! [`track::effective_priority`] turns tracked objects into the effective priority (or a
//! fault) the caller passes to [`Instance::set_priority`] / [`Instance::set_fault`].
//! Not here yet: sync groups, the owner-conflict dance, notify scripts (the driver runs
//! them on `Notify`).

pub mod sync;
pub mod track;

use std::net::IpAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Init,
    Backup,
    Master,
    Fault,
}

impl State {
    /// keepalived's name of the state (`MASTER`): logs, notify scripts, the API.
    pub fn name(self) -> &'static str {
        match self {
            State::Init => "INIT",
            State::Backup => "BACKUP",
            State::Master => "MASTER",
            State::Fault => "FAULT",
        }
    }

    /// The state [`State::name`] printed.
    pub fn from_name(name: &str) -> Option<State> {
        [State::Init, State::Backup, State::Master, State::Fault]
            .into_iter()
            .find(|s| s.name() == name)
    }

    /// keepalived's number of the state (VRRP-MIB, `rvs_vrrp_state`): 0 init, 1 backup,
    /// 2 master, 3 fault.
    pub fn number(self) -> u8 {
        match self {
            State::Init => 0,
            State::Backup => 1,
            State::Master => 2,
            State::Fault => 3,
        }
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.name())
    }
}

/// What the driver must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send an advertisement with this priority (0: the master is leaving).
    SendAdvert { priority: u8 },
    /// Add the VIPs and announce them (gratuitous ARP / unsolicited NA bursts).
    TakeAddresses,
    /// Remove the VIPs.
    ReleaseAddresses,
    /// The state changed: run notify scripts, write the FIFO line.
    Notify(State),
    /// A MASTER heard another router claim mastership with a lower priority (a split
    /// brain healing): `notify_master_rx_lower_pri` and the FIFO's `MASTER_RX_LOWER_PRI`.
    MasterRxLowerPriority,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub version: u8,
    pub priority: u8,
    /// Own advertisement interval in microseconds.
    pub adv_us: u64,
    /// `down_timer_adverts` (default 3).
    pub down_adverts: u64,
    pub wants_master: bool,
    pub nopreempt: bool,
    pub preempt_delay_us: u64,
    pub lower_prio_no_advert: bool,
    pub higher_prio_send_advert: bool,
    /// Our primary address, for the equal-priority tie-break.
    pub own_ip: IpAddr,
}

/// A received advertisement (already validated by the codec and the receive checks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Advert {
    pub src: IpAddr,
    pub priority: u8,
    /// v2: seconds; v3: centiseconds.
    pub interval: u16,
}

#[derive(Debug, Clone)]
pub struct Instance {
    cfg: Config,
    state: State,
    /// Effective priority (trackers applied by the caller; 255 stays 255).
    prio: u8,
    /// `Master_Adver_Interval`, µs (v3 learns it from the master).
    mai_us: u64,
    /// The pending timer: down timer in BACKUP, advert timer in MASTER.
    deadline: Option<u64>,
    preempt_deadline: Option<u64>,
    /// A BACKUP whose down timer expired but whose sync group held it back.
    held: bool,
    pub master: Option<(IpAddr, u8)>,
}

impl Instance {
    pub fn new(cfg: Config) -> Instance {
        let prio = cfg.priority;
        let mai_us = cfg.adv_us;
        Instance {
            cfg,
            state: State::Init,
            prio,
            mai_us,
            deadline: None,
            preempt_deadline: None,
            held: false,
            master: None,
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn priority(&self) -> u8 {
        self.prio
    }

    /// When the driver must call [`Instance::on_timer`].
    pub fn deadline(&self) -> Option<u64> {
        self.deadline
    }

    /// keepalived's skew in µs for priority `p`.
    pub fn skew_us(&self, p: u8) -> u64 {
        let k = 256 - u64::from(p);
        if self.cfg.version == 2 {
            k * 1_000_000 / 256
        } else {
            (k * (self.mai_us / 10_000) * 625) / 16
        }
    }

    /// `Master_Down_Interval` = N × MAI + skew.
    pub fn master_down_us(&self) -> u64 {
        self.cfg.down_adverts * self.mai_us + self.skew_us(self.prio)
    }

    /// Start-up: BACKUP with the down timer (1 µs for an address owner that wants MASTER).
    pub fn start(&mut self, now: u64) -> Vec<Action> {
        self.state = State::Backup;
        let t = if self.cfg.wants_master && self.cfg.priority == 255 {
            1
        } else {
            self.master_down_us()
        };
        self.deadline = Some(now + t);
        vec![Action::Notify(State::Backup)]
    }

    /// The pending timer has expired.
    pub fn on_timer(&mut self, now: u64) -> Vec<Action> {
        match self.deadline {
            Some(d) if now >= d => {}
            _ => return Vec::new(),
        }
        match self.state {
            State::Backup => self.become_master(now),
            State::Master => {
                self.deadline = Some(now + self.cfg.adv_us);
                vec![Action::SendAdvert {
                    priority: self.prio,
                }]
            }
            State::Init | State::Fault => {
                self.deadline = None;
                Vec::new()
            }
        }
    }

    fn become_master(&mut self, now: u64) -> Vec<Action> {
        self.state = State::Master;
        self.held = false;
        self.mai_us = self.cfg.adv_us;
        self.deadline = Some(now + self.cfg.adv_us);
        self.master = Some((self.cfg.own_ip, self.prio));
        vec![
            Action::SendAdvert {
                priority: self.prio,
            },
            Action::TakeAddresses,
            Action::Notify(State::Master),
        ]
    }

    fn enter_backup(&mut self, now: u64, adv: &Advert) -> Vec<Action> {
        self.state = State::Backup;
        if self.cfg.version == 3 {
            self.mai_us = u64::from(adv.interval & 0x0fff) * 10_000;
        }
        self.deadline = Some(now + self.master_down_us());
        self.master = Some((adv.src, adv.priority));
        vec![Action::ReleaseAddresses, Action::Notify(State::Backup)]
    }

    /// A valid advertisement arrived.
    pub fn on_advert(&mut self, now: u64, adv: &Advert) -> Vec<Action> {
        match self.state {
            State::Init | State::Fault => Vec::new(),
            State::Backup => {
                if adv.priority == 0 {
                    self.deadline = Some(now + self.skew_us(self.prio));
                    return Vec::new();
                }
                let lower = adv.priority < self.prio;
                let preempt_delaying = match (lower, self.cfg.preempt_delay_us) {
                    (true, d) if d > 0 => {
                        let dl = *self.preempt_deadline.get_or_insert(now + d);
                        now < dl
                    }
                    _ => false,
                };
                if !lower {
                    self.preempt_deadline = None;
                }
                if !lower || self.cfg.nopreempt || preempt_delaying {
                    self.held = false;
                    if self.cfg.version == 3 {
                        self.mai_us = u64::from(adv.interval & 0x0fff) * 10_000;
                    }
                    self.deadline = Some(now + self.master_down_us());
                    self.master = Some((adv.src, adv.priority));
                }
                // A lower priority advert without preemption restrictions is discarded
                // and does not reset the timer: we take over when it expires.
                Vec::new()
            }
            State::Master => {
                if adv.priority == 0 {
                    self.deadline = Some(now + self.cfg.adv_us);
                    return vec![Action::SendAdvert {
                        priority: self.prio,
                    }];
                }
                let higher = adv.priority > self.prio
                    || (adv.priority == self.prio && ip_gt(adv.src, self.cfg.own_ip));
                if higher {
                    let mut out = Vec::new();
                    if self.cfg.higher_prio_send_advert {
                        out.push(Action::SendAdvert {
                            priority: self.prio,
                        });
                    }
                    out.extend(self.enter_backup(now, adv));
                    return out;
                }
                if adv.src == self.cfg.own_ip {
                    return Vec::new();
                }
                if self.cfg.lower_prio_no_advert {
                    return vec![Action::MasterRxLowerPriority];
                }
                self.deadline = Some(now + self.cfg.adv_us);
                vec![
                    Action::SendAdvert {
                        priority: self.prio,
                    },
                    Action::TakeAddresses,
                    Action::MasterRxLowerPriority,
                ]
            }
        }
    }

    /// Another router answers ARP for our VIP (a split brain: its adverts do not reach
    /// us), under `rvs_split_brain_arbitration`. `it_wins` (it has the higher MAC, the
    /// one rule both sides can apply without hearing each other): a MASTER steps down to
    /// BACKUP and releases its VIPs; a BACKUP counts the winner's answer as a live master
    /// (its down timer restarts), so it does not take over again while the winner answers.
    pub fn on_vip_elsewhere(&mut self, now: u64, it_wins: bool) -> Vec<Action> {
        if !it_wins {
            return Vec::new();
        }
        match self.state {
            State::Master => {
                self.state = State::Backup;
                self.mai_us = self.cfg.adv_us;
                self.deadline = Some(now + self.master_down_us());
                self.master = None;
                vec![Action::ReleaseAddresses, Action::Notify(State::Backup)]
            }
            State::Backup => {
                self.deadline = Some(now + self.master_down_us());
                Vec::new()
            }
            State::Init | State::Fault => Vec::new(),
        }
    }

    /// A tracked object failed (or recovered): FAULT, or back to BACKUP.
    pub fn set_fault(&mut self, now: u64, fault: bool) -> Vec<Action> {
        match (fault, self.state) {
            (true, State::Fault) | (false, State::Backup | State::Master | State::Init) => {
                Vec::new()
            }
            (true, s) => {
                let mut out = Vec::new();
                if s == State::Master {
                    out.push(Action::SendAdvert { priority: 0 });
                    out.push(Action::ReleaseAddresses);
                }
                self.state = State::Fault;
                self.deadline = None;
                out.push(Action::Notify(State::Fault));
                out
            }
            (false, State::Fault) => {
                self.state = State::Backup;
                self.mai_us = self.cfg.adv_us;
                let t = if self.cfg.wants_master && self.cfg.priority == 255 {
                    self.cfg.adv_us + self.skew_us(255)
                } else {
                    self.master_down_us()
                };
                self.deadline = Some(now + t);
                vec![Action::Notify(State::Backup)]
            }
        }
    }

    /// A new effective priority (trackers); the owner's 255 is immune. While BACKUP the
    /// pending down timer moves by the change in `Master_Down_Interval`.
    pub fn set_priority(&mut self, p: u8) {
        if self.cfg.priority == 255 {
            return;
        }
        let p = p.clamp(1, 254);
        let before = self.master_down_us();
        self.prio = p;
        if self.state == State::Backup {
            let after = self.master_down_us();
            self.deadline = self.deadline.map(|d| (d + after).saturating_sub(before));
        }
    }

    /// Whether this BACKUP would become MASTER now: its down timer expired (or expired
    /// before while its sync group held it back, with no advert since).
    pub fn wants_master(&self, now: u64) -> bool {
        self.state == State::Backup && (self.held || self.deadline.is_some_and(|d| now >= d))
    }

    /// A sync group holds this BACKUP back: it keeps wanting MASTER and checks again after
    /// about one advert interval (`adv + skew(255)`, keepalived's timer for this case).
    pub fn hold_back(&mut self, now: u64) {
        if self.state == State::Backup {
            self.held = true;
            self.deadline = Some(now + self.cfg.adv_us + self.skew_us(255));
        }
    }

    /// Moves to MASTER now (a sync group decided it).
    pub fn force_master(&mut self, now: u64) -> Vec<Action> {
        if self.state == State::Backup {
            self.become_master(now)
        } else {
            Vec::new()
        }
    }

    /// Moves a MASTER to BACKUP now (a sync group member left MASTER).
    pub fn force_backup(&mut self, now: u64) -> Vec<Action> {
        if self.state != State::Master {
            return Vec::new();
        }
        self.state = State::Backup;
        self.mai_us = self.cfg.adv_us;
        self.deadline = Some(now + self.master_down_us());
        vec![Action::ReleaseAddresses, Action::Notify(State::Backup)]
    }

    /// Graceful shutdown: a MASTER sends a priority-0 advert and releases the VIPs.
    pub fn shutdown(&mut self) -> Vec<Action> {
        let mut out = Vec::new();
        if self.state == State::Master {
            out.push(Action::SendAdvert { priority: 0 });
            out.push(Action::ReleaseAddresses);
        }
        self.state = State::Init;
        self.deadline = None;
        out
    }
}

/// The RFC's tie-break: unsigned compare of the addresses in network byte order.
pub fn ip_gt(a: IpAddr, b: IpAddr) -> bool {
    match (a, b) {
        (IpAddr::V4(x), IpAddr::V4(y)) => u32::from(x) > u32::from(y),
        (IpAddr::V6(x), IpAddr::V6(y)) => u128::from(x) > u128::from(y),
        _ => false,
    }
}

/// What a reload did to VRRP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReloadOutcome {
    /// The same instances with the same settings: nothing touched.
    Unchanged,
    /// Instances kept (in their state), started and stopped.
    Applied {
        kept: usize,
        started: usize,
        stopped: usize,
    },
    /// Refused before anything stopped (why): the running instances go on.
    Refused(String),
    /// The new instances failed to start (why): the previous ones were started again.
    RolledBack(String),
}

impl ReloadOutcome {
    /// Whether the new configuration runs.
    pub fn is_ok(&self) -> bool {
        matches!(
            self,
            ReloadOutcome::Unchanged | ReloadOutcome::Applied { .. }
        )
    }
}

impl std::fmt::Display for ReloadOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReloadOutcome::Unchanged => f.write_str("VRRP unchanged"),
            ReloadOutcome::Applied {
                kept,
                started,
                stopped,
            } => write!(
                f,
                "VRRP: {kept} instance(s) kept, {started} started, {stopped} stopped"
            ),
            ReloadOutcome::Refused(why) => write!(
                f,
                "error: VRRP not reloaded, the running instances are kept: {why}"
            ),
            ReloadOutcome::RolledBack(why) => write!(f, "error: VRRP not reloaded: {why}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(version: u8, prio: u8, adv_us: u64) -> Config {
        Config {
            version,
            priority: prio,
            adv_us,
            down_adverts: 3,
            wants_master: false,
            nopreempt: false,
            preempt_delay_us: 0,
            lower_prio_no_advert: false,
            higher_prio_send_advert: false,
            own_ip: IpAddr::from([198, 18, 0, 11]),
        }
    }

    #[test]
    fn keepalived_timer_arithmetic() {
        // Spec §3 examples: p=100, adv 1 s → skew 609375 µs, Master_Down 3.609375 s.
        let i = Instance::new(cfg(2, 100, 1_000_000));
        assert_eq!(i.skew_us(100), 609_375);
        assert_eq!(i.master_down_us(), 3_609_375);
        assert_eq!(i.skew_us(254), 7_812);
        // v3, adv 0.1 s, p=150: ((256-150) * 10 * 625) / 16 = 41406 µs.
        let i = Instance::new(cfg(3, 150, 100_000));
        assert_eq!(i.skew_us(150), 41_406);
        assert_eq!(i.master_down_us(), 341_406);
    }

    #[test]
    fn a_split_brain_loser_steps_down_and_stays_backup() {
        let mut i = Instance::new(cfg(2, 150, 1_000_000));
        i.start(0);
        let _ = i.on_timer(i.deadline().unwrap_or(0));
        assert_eq!(i.state(), State::Master);
        // Another router with a lower MAC answers: nothing changes.
        assert!(i.on_vip_elsewhere(5_000_000, false).is_empty());
        assert_eq!(i.state(), State::Master);
        // One with a higher MAC: step down, release the VIPs.
        let a = i.on_vip_elsewhere(6_000_000, true);
        assert_eq!(
            a,
            vec![Action::ReleaseAddresses, Action::Notify(State::Backup)]
        );
        assert_eq!(i.state(), State::Backup);
        // Its answers keep the down timer from expiring.
        let down = i.master_down_us();
        assert_eq!(i.deadline(), Some(6_000_000 + down));
        assert!(i.on_vip_elsewhere(7_000_000, true).is_empty());
        assert_eq!(i.deadline(), Some(7_000_000 + down));
        assert!(i.on_timer(7_000_000 + down - 1).is_empty());
        assert_eq!(i.state(), State::Backup);
        // Silence: it takes over again.
        let a = i.on_timer(7_000_000 + down);
        assert!(a.contains(&Action::TakeAddresses));
    }

    #[test]
    fn owner_takes_over_at_once() {
        let mut c = cfg(2, 255, 1_000_000);
        c.wants_master = true;
        let mut i = Instance::new(c);
        i.start(0);
        assert_eq!(i.deadline(), Some(1));
        let a = i.on_timer(1);
        assert!(a.contains(&Action::TakeAddresses));
        assert_eq!(i.state(), State::Master);
    }

    #[test]
    fn master_hearing_a_lower_priority_master() {
        let lower = Advert {
            src: IpAddr::from([198, 18, 0, 12]),
            priority: 100,
            interval: 1,
        };
        for no_advert in [false, true] {
            let mut c = cfg(2, 150, 1_000_000);
            c.wants_master = true;
            c.lower_prio_no_advert = no_advert;
            let mut i = Instance::new(c);
            i.start(0);
            let _ = i.on_timer(i.deadline().unwrap_or(0));
            assert_eq!(i.state(), State::Master);
            let a = i.on_advert(2_000_000, &lower);
            assert_eq!(i.state(), State::Master);
            assert_eq!(a.last(), Some(&Action::MasterRxLowerPriority), "{a:?}");
            assert_eq!(
                a.iter().any(|x| matches!(x, Action::SendAdvert { .. })),
                !no_advert
            );
            // Our own advert looped back is not another master.
            let own = Advert {
                src: IpAddr::from([198, 18, 0, 11]),
                ..lower
            };
            assert!(i.on_advert(2_100_000, &own).is_empty());
        }
    }
}
