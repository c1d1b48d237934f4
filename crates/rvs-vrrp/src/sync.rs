//! `vrrp_sync_group`: members move together (spec §8). A member's FAULT faults them all;
//! a member leaving MASTER takes them all to BACKUP; a member may become MASTER only when
//! every other member wants to as well, and then they all do.

use crate::{Action, Advert, Instance, State};

/// The members of one sync group, with the group's decisions applied on every event.
#[derive(Debug, Clone)]
pub struct Group {
    pub members: Vec<Instance>,
}

impl Group {
    pub fn new(members: Vec<Instance>) -> Group {
        Group { members }
    }

    pub fn start(&mut self, now: u64) -> Vec<(usize, Action)> {
        let mut out = Vec::new();
        for (i, m) in self.members.iter_mut().enumerate() {
            out.extend(m.start(now).into_iter().map(|a| (i, a)));
        }
        out
    }

    /// The earliest member deadline.
    pub fn deadline(&self) -> Option<u64> {
        self.members.iter().filter_map(Instance::deadline).min()
    }

    pub fn state(&self) -> Vec<State> {
        self.members.iter().map(Instance::state).collect()
    }

    /// Timers: masters send adverts; a backup whose timer expired becomes MASTER only
    /// together with all the others, else it is held back.
    pub fn on_timer(&mut self, now: u64) -> Vec<(usize, Action)> {
        let mut out = Vec::new();
        for i in 0..self.members.len() {
            let m = &self.members[i];
            if m.state() == State::Master && m.deadline().is_some_and(|d| now >= d) {
                out.extend(self.members[i].on_timer(now).into_iter().map(|a| (i, a)));
            }
        }
        let wanting: Vec<usize> = (0..self.members.len())
            .filter(|i| self.members[*i].wants_master(now))
            .collect();
        if wanting.is_empty() {
            return out;
        }
        let all = self
            .members
            .iter()
            .all(|m| m.state() == State::Master || m.wants_master(now));
        if all {
            for (i, m) in self.members.iter_mut().enumerate() {
                out.extend(m.force_master(now).into_iter().map(|a| (i, a)));
            }
        } else {
            for i in wanting {
                self.members[i].hold_back(now);
            }
        }
        out
    }

    /// An advert for member `i`; if it leaves MASTER, the others follow to BACKUP.
    pub fn on_advert(&mut self, now: u64, i: usize, adv: &Advert) -> Vec<(usize, Action)> {
        let was = self.members[i].state();
        let acts = self.members[i].on_advert(now, adv);
        self.follow(now, i, was, acts)
    }

    /// Member `i`'s actions; if it went from MASTER to BACKUP, the others follow.
    fn follow(
        &mut self,
        now: u64,
        i: usize,
        was: State,
        acts: Vec<Action>,
    ) -> Vec<(usize, Action)> {
        let mut out: Vec<(usize, Action)> = acts.into_iter().map(|a| (i, a)).collect();
        if was == State::Master && self.members[i].state() == State::Backup {
            for (j, m) in self.members.iter_mut().enumerate() {
                if j != i {
                    out.extend(m.force_backup(now).into_iter().map(|a| (j, a)));
                }
            }
        }
        out
    }

    /// Another router answers for a VIP of member `i` ([`Instance::on_vip_elsewhere`]);
    /// if it leaves MASTER, the others follow to BACKUP.
    pub fn on_vip_elsewhere(&mut self, now: u64, i: usize, it_wins: bool) -> Vec<(usize, Action)> {
        let was = self.members[i].state();
        let acts = self.members[i].on_vip_elsewhere(now, it_wins);
        self.follow(now, i, was, acts)
    }

    /// A fault of member `i` faults every member; the group recovers when none is faulted.
    pub fn set_fault(
        &mut self,
        now: u64,
        i: usize,
        fault: bool,
        faulted: &mut [bool],
    ) -> Vec<(usize, Action)> {
        faulted[i] = fault;
        let any = faulted.iter().any(|f| *f);
        let mut out = Vec::new();
        for (j, m) in self.members.iter_mut().enumerate() {
            out.extend(m.set_fault(now, any).into_iter().map(|a| (j, a)));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Config;
    use std::net::IpAddr;

    fn inst(prio: u8, last: u8) -> Instance {
        Instance::new(Config {
            version: 2,
            priority: prio,
            adv_us: 1_000_000,
            down_adverts: 3,
            wants_master: false,
            nopreempt: false,
            preempt_delay_us: 0,
            lower_prio_no_advert: false,
            higher_prio_send_advert: false,
            own_ip: IpAddr::from([198, 18, 0, last]),
        })
    }

    #[test]
    fn members_become_master_together() {
        // Two members with different priorities: their down timers expire at different
        // times; the first is held back until the second wants MASTER too.
        let mut g = Group::new(vec![inst(200, 1), inst(100, 2)]);
        g.start(0);
        let t1 = g.deadline().unwrap();
        g.on_timer(t1);
        assert_eq!(g.state(), vec![State::Backup, State::Backup], "held back");
        // The second member's own timer (3 s + (256-100)/256 s) releases both.
        let t2 = 3_000_000 + 609_375;
        while g.state() != vec![State::Master, State::Master] {
            let now = g.deadline().unwrap();
            assert!(now <= t2, "not master together by {t2} µs");
            g.on_timer(now);
        }
    }

    #[test]
    fn one_leaves_master_all_leave_and_a_fault_faults_all() {
        let mut g = Group::new(vec![inst(100, 1), inst(100, 2)]);
        g.start(0);
        let mut now = 0;
        while g.state() != vec![State::Master, State::Master] {
            now = g.deadline().unwrap();
            g.on_timer(now);
        }
        // A higher-priority master appears for member 0: both go BACKUP.
        let adv = Advert {
            src: IpAddr::from([198, 18, 0, 9]),
            priority: 200,
            interval: 1,
        };
        let out = g.on_advert(now, 0, &adv);
        assert_eq!(g.state(), vec![State::Backup, State::Backup]);
        assert!(out.contains(&(1, Action::ReleaseAddresses)));
        // A fault of member 1 faults both; clearing it brings both back to BACKUP.
        let mut faulted = vec![false, false];
        g.set_fault(now, 1, true, &mut faulted);
        assert_eq!(g.state(), vec![State::Fault, State::Fault]);
        g.set_fault(now, 1, false, &mut faulted);
        assert_eq!(g.state(), vec![State::Backup, State::Backup]);
    }
}
