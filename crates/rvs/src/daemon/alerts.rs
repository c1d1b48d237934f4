//! keepalived's e-mail alerts, wired: which objects alert (`smtp_alert` at each level,
//! `smtp_alert_vrrp`, `smtp_alert_checker`, `no_email_faults`), and the events that send
//! them (VRRP states seen in the engine's status, real servers and quorums from the
//! checkers). The mails themselves are `rvs_alert`'s.

use rvs_alert::{compose, Mailer, VrrpEvent};
use rvs_conf::Config;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// The alerts of one configuration (rebuilt on reload).
pub struct Alerts {
    mailer: Mailer,
    router_id: String,
    /// `smtp_alert_vrrp`, else `smtp_alert`: the default of instances and groups.
    vrrp_default: bool,
    /// `smtp_alert_checker`, else `smtp_alert`: the default of virtual servers.
    checker_default: bool,
    no_email_faults: bool,
    /// The state each instance / group last mailed about.
    last: std::sync::Mutex<HashMap<(bool, String), VrrpEvent>>,
    /// Per instance: the split-brain count last seen, when it last grew, and whether a
    /// "Split brain" mail is out without its "over".
    split: std::sync::Mutex<HashMap<String, SplitSeen>>,
    /// Per drift peer: the differences last mailed about.
    drift: std::sync::Mutex<HashMap<String, Vec<String>>>,
}

#[derive(Clone)]
struct SplitSeen {
    count: u64,
    grew: std::time::Instant,
    open: bool,
}

/// A split brain is over when its count has not grown for this long (the detector
/// probes every second).
const SPLIT_OVER: Duration = Duration::from_secs(10);

/// The host's name (keepalived's default `router_id` and mail sender).
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map_or_else(|_| "localhost".into(), |h| h.trim().to_owned())
}

impl Alerts {
    /// `None` unless the configuration names both recipients and a server, as keepalived
    /// sends nothing otherwise. `counters` outlive reloads (the metrics read them).
    pub fn from_config(cfg: &Config, counters: &Arc<rvs_alert::Counters>) -> Option<Alerts> {
        let g = &cfg.global_defs;
        let server = g.smtp_server.as_ref()?;
        if g.notification_email.is_empty() {
            return None;
        }
        let host = hostname();
        let mail = rvs_alert::MailConfig {
            server: server.host.clone(),
            port: server.port,
            helo: g.smtp_helo_name.clone().unwrap_or_else(|| host.clone()),
            from: g
                .notification_email_from
                .clone()
                .unwrap_or_else(|| format!("keepalived@{host}")),
            to: g.notification_email.clone(),
            timeout: Duration::from_secs(u64::from(g.smtp_connect_timeout).max(1)),
        };
        Some(Alerts {
            mailer: Mailer::start_with(mail, counters.clone()),
            router_id: g.router_id.clone().unwrap_or(host),
            vrrp_default: g.smtp_alert_vrrp.or(g.smtp_alert).unwrap_or(false),
            checker_default: g.smtp_alert_checker.or(g.smtp_alert).unwrap_or(false),
            no_email_faults: g.no_email_faults,
            last: std::sync::Mutex::default(),
            split: std::sync::Mutex::default(),
            drift: std::sync::Mutex::default(),
        })
    }

    /// Keeps what `old` last mailed about (a reload does not mail unchanged states again).
    pub fn carry(&self, old: &Alerts) {
        if let (Ok(mut mine), Ok(theirs)) = (self.last.lock(), old.last.lock()) {
            mine.clone_from(&theirs);
        }
        if let (Ok(mut mine), Ok(theirs)) = (self.split.lock(), old.split.lock()) {
            mine.clone_from(&theirs);
        }
        if let (Ok(mut mine), Ok(theirs)) = (self.drift.lock(), old.drift.lock()) {
            mine.clone_from(&theirs);
        }
    }

    /// A real server of virtual server `vi` went up or down (its checker of kind `kind`
    /// decided it).
    pub fn real_server(&self, cfg: &Config, vi: usize, ri: usize, up: bool, kind: &str) {
        let vs = &cfg.virtual_servers[vi];
        let rs = &vs.real_servers[ri];
        if !rs
            .smtp_alert
            .or(vs.smtp_alert)
            .unwrap_or(self.checker_default)
        {
            return;
        }
        let check = match kind {
            "TCP_CHECK" => "TCP CHECK",
            "PING_CHECK" => "ICMP CHECK",
            "MISC_CHECK" => "MISC CHECK",
            "UDP_CHECK" => "UDP CHECK",
            "DNS_CHECK" => "DNS CHECK",
            "FILE_CHECK" => "FILE CHECK",
            "BFD_CHECK" => "BFD CHECK",
            _ => "CHECK",
        };
        let vs_label = rvs_conf::load::vs_label(&vs.key, vs.protocol);
        let rs_label = rvs_daemon::health::rs_label(vs, rs);
        self.mailer.send(compose::real_server(
            &self.router_id,
            &rs_label,
            &vs_label,
            up,
            check,
        ));
    }

    /// Virtual server `vi` gained or lost its quorum.
    pub fn quorum(&self, cfg: &Config, vi: usize, up: bool, weight: i64) {
        let vs = &cfg.virtual_servers[vi];
        if !vs.smtp_alert.unwrap_or(self.checker_default) {
            return;
        }
        self.mailer.send(compose::quorum(
            &self.router_id,
            &rvs_conf::load::vs_label(&vs.key, vs.protocol),
            up,
            i64::from(vs.quorum),
            i64::from(vs.hysteresis),
            weight,
        ));
    }

    /// Mails the VRRP instances and sync groups whose state changed since last seen.
    pub fn vrrp(&self, cfg: &Config, status: &[rvs_vrrpd::InstanceStatus]) {
        let event = |s: rvs_vrrp::State| match s {
            rvs_vrrp::State::Master => Some(VrrpEvent::Master),
            rvs_vrrp::State::Backup => Some(VrrpEvent::Backup),
            rvs_vrrp::State::Fault => Some(VrrpEvent::Fault),
            rvs_vrrp::State::Init => None,
        };
        for st in status {
            let Some(vi) = cfg.vrrp_instances.iter().find(|v| v.name == st.name) else {
                continue;
            };
            if let Some(ev) = event(st.state) {
                if vi.smtp_alert.unwrap_or(self.vrrp_default) {
                    self.changed(false, &st.name, ev);
                }
            }
        }
        for g in &cfg.vrrp_sync_groups {
            if !g.smtp_alert.unwrap_or(self.vrrp_default) {
                continue;
            }
            let members: Vec<rvs_vrrp::State> = status
                .iter()
                .filter(|s| g.group.contains(&s.name))
                .map(|s| s.state)
                .collect();
            let ev = if members.contains(&rvs_vrrp::State::Fault) {
                VrrpEvent::Fault
            } else if !members.is_empty() && members.iter().all(|s| *s == rvs_vrrp::State::Master) {
                VrrpEvent::Master
            } else if !members.is_empty()
                && members
                    .iter()
                    .all(|s| matches!(s, rvs_vrrp::State::Backup | rvs_vrrp::State::Master))
            {
                VrrpEvent::Backup
            } else {
                continue;
            };
            self.changed(true, &g.name, ev);
        }
    }

    /// Mails a split brain (rvs's own alert) of each instance that alerts when its count
    /// grows (once per episode) and when it has stopped growing for [`SPLIT_OVER`]. The
    /// first count seen (at start, or carried across an upgrade) is not mailed.
    pub fn split_brain(&self, cfg: &Config, status: &[rvs_vrrpd::InstanceStatus]) {
        let Ok(mut seen) = self.split.lock() else {
            return;
        };
        let now = std::time::Instant::now();
        for st in status {
            let Some(vi) = cfg.vrrp_instances.iter().find(|v| v.name == st.name) else {
                continue;
            };
            if !vi.smtp_alert.unwrap_or(self.vrrp_default) {
                continue;
            }
            let s = seen.entry(st.name.clone()).or_insert(SplitSeen {
                count: st.split_brain,
                grew: now,
                open: false,
            });
            if st.split_brain > s.count {
                s.count = st.split_brain;
                s.grew = now;
                if !s.open {
                    s.open = true;
                    self.mailer.send(compose::split_brain(
                        &self.router_id,
                        &st.name,
                        st.split_brain_mac.as_deref(),
                        false,
                    ));
                }
            } else if s.open && now.duration_since(s.grew) >= SPLIT_OVER {
                s.open = false;
                self.mailer
                    .send(compose::split_brain(&self.router_id, &st.name, None, true));
            }
        }
    }

    /// Mails each drift peer whose differences changed (rvs's own alert, under
    /// `smtp_alert_vrrp` / `smtp_alert`: the directors of a VRRP pair): the new list, or
    /// "resolved" when they agree again. A peer first heard in agreement is not mailed.
    pub fn drift(&self, peers: &crate::daemon::drift::Peers) {
        if !self.vrrp_default {
            return;
        }
        let Ok(mut last) = self.drift.lock() else {
            return;
        };
        for p in crate::daemon::drift::report(peers) {
            let before = last.entry(p.peer.clone()).or_default();
            if *before != p.differences {
                before.clone_from(&p.differences);
                self.mailer
                    .send(compose::drift(&self.router_id, &p.peer, &p.differences));
            }
        }
    }

    /// At stop: "Stopping" for every instance and group that alerts.
    pub fn stopping(&self, cfg: &Config) {
        let keys: Vec<(bool, String)> = self
            .last
            .lock()
            .map(|l| l.keys().cloned().collect())
            .unwrap_or_default();
        for (group, name) in keys {
            if cfg.vrrp_instances.iter().any(|v| v.name == name) || group {
                self.changed(group, &name, VrrpEvent::Stop);
            }
        }
    }

    fn changed(&self, group: bool, name: &str, ev: VrrpEvent) {
        if ev == VrrpEvent::Fault && self.no_email_faults {
            return;
        }
        let key = (group, name.to_owned());
        {
            let Ok(mut last) = self.last.lock() else {
                return;
            };
            if last.get(&key) == Some(&ev) {
                return;
            }
            last.insert(key, ev);
        }
        let alert = if group {
            compose::group(&self.router_id, name, ev)
        } else {
            compose::instance(&self.router_id, name, ev)
        };
        self.mailer.send(alert);
    }

    /// Waits (bounded) for the queued mails to go out, at stop.
    pub async fn flush(&self, within: Duration) {
        self.mailer.flush(within).await;
    }
}
