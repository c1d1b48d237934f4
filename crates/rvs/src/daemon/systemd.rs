//! systemd's service protocol for `Type=notify` (and `Type=notify-reload`, systemd ≥ 253):
//! `READY=1` once every listener (or XDP program, or IPVS service) is up and VRRP has
//! started, `RELOADING=1` with `MONOTONIC_USEC` and `READY=1` around each reload,
//! `STOPPING=1` at shutdown, `WATCHDOG=1` at half of `WatchdogSec` from the main loop (so
//! a wedged loop is restarted), and a one-line `STATUS=` with the VRRP states and the live
//! real servers, sent when it changes. The datagrams go through the `sd-notify` crate;
//! without `$NOTIFY_SOCKET` (not started by systemd) nothing is sent.
//!
//! Child processes (notify and check scripts) never inherit the protocol's variables:
//! `rvs_script` removes them from every command it starts.

use rvs_daemon::VsReport;
use rvs_vrrpd::InstanceStatus;
use sd_notify::NotifyState;
use std::fmt::Write as _;
use std::time::Duration;

/// The daemon's side of the protocol.
pub struct Notifier {
    enabled: bool,
    watchdog: Option<Duration>,
    status: String,
    warned: bool,
}

impl Notifier {
    /// From the environment systemd set (`NOTIFY_SOCKET`, `WATCHDOG_USEC`, `WATCHDOG_PID`).
    pub fn from_env() -> Self {
        Notifier {
            enabled: std::env::var_os("NOTIFY_SOCKET").is_some(),
            watchdog: sd_notify::watchdog_enabled(),
            status: String::new(),
            warned: false,
        }
    }

    /// How often the main loop pings the watchdog: half the interval systemd gave, as
    /// `sd_watchdog_enabled(3)` advises; `None` without a watchdog.
    pub fn watchdog_every(&self) -> Option<Duration> {
        self.watchdog
            .filter(|_| self.enabled)
            .map(|d| (d / 2).max(Duration::from_millis(1)))
    }

    fn send(&mut self, states: &[NotifyState]) {
        if !self.enabled {
            return;
        }
        if let Err(e) = sd_notify::notify(states) {
            // One warning: a manager that went away would otherwise fill the log.
            if !self.warned {
                self.warned = true;
                tracing::warn!("systemd notification failed: {e}");
            }
        }
    }

    /// Up: listeners, programs and VRRP are running. `status` is only computed when
    /// systemd listens.
    pub fn ready(&mut self, status: impl FnOnce() -> String) {
        if !self.enabled {
            return;
        }
        self.status = status();
        let s = self.status.clone();
        self.send(&[NotifyState::Ready, NotifyState::Status(&s)]);
    }

    /// A reload begins (the file is being read); `ready` follows when it is applied.
    pub fn reloading(&mut self) {
        match NotifyState::monotonic_usec_now() {
            Ok(now) => self.send(&[NotifyState::Reloading, now]),
            Err(_) => self.send(&[NotifyState::Reloading]),
        }
    }

    /// Shutting down (VRRP hands over, connections drain).
    pub fn stopping(&mut self, drain: f64) {
        let s = format!("stopping: VRRP hands over, draining for up to {drain} s");
        self.send(&[NotifyState::Stopping, NotifyState::Status(&s)]);
    }

    /// `rvs upgrade`: the successor is the service's main process from now on.
    pub fn main_pid(&mut self, pid: u32) {
        self.send(&[NotifyState::MainPid(pid)]);
    }

    /// The main loop is alive.
    pub fn ping(&mut self) {
        self.send(&[NotifyState::Watchdog]);
    }

    /// `STATUS=`, sent only when the line changed; `line` is only computed when systemd
    /// listens (the main loop asks every second).
    pub fn status(&mut self, line: impl FnOnce() -> String) {
        if !self.enabled {
            return;
        }
        let line = line();
        if line != self.status {
            self.status = line;
            let s = self.status.clone();
            self.send(&[NotifyState::Status(&s)]);
        }
    }
}

/// The one-line status `systemctl status rvs` shows: each VRRP instance's state, then the
/// real servers that are alive out of those configured, over every virtual server.
pub fn status_line(vrrp: &[InstanceStatus], servers: &[VsReport]) -> String {
    let mut parts = Vec::new();
    if !vrrp.is_empty() {
        let states: Vec<String> = vrrp
            .iter()
            .map(|i| format!("{} {}", i.name, i.state.name()))
            .collect();
        parts.push(format!("VRRP {}", states.join(", ")));
    }
    let total: usize = servers.iter().map(|v| v.real_servers.len()).sum();
    let alive: usize = servers
        .iter()
        .map(|v| v.real_servers.iter().filter(|r| r.alive).count())
        .sum();
    let quorum_lost = servers.iter().filter(|v| !v.quorum_up).count();
    if !servers.is_empty() {
        let mut s = format!(
            "{} virtual server{}, {alive}/{total} real servers alive",
            servers.len(),
            if servers.len() == 1 { "" } else { "s" }
        );
        if quorum_lost > 0 {
            let _ = write!(s, ", {quorum_lost} without quorum");
        }
        parts.push(s);
    }
    if parts.is_empty() {
        "running".to_owned()
    } else {
        parts.join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rvs_daemon::RsReport;

    fn rs(alive: bool) -> RsReport {
        RsReport {
            alive,
            weight: 1,
            failed_checkers: u32::from(!alive),
        }
    }

    #[test]
    fn the_status_line_names_states_and_counts_live_servers() {
        let vs = [
            VsReport {
                quorum_up: true,
                real_servers: vec![rs(true), rs(false)],
            },
            VsReport {
                quorum_up: false,
                real_servers: vec![rs(false)],
            },
        ];
        assert_eq!(
            status_line(&[], &vs),
            "2 virtual servers, 1/3 real servers alive, 1 without quorum"
        );
        assert_eq!(status_line(&[], &[]), "running");
        assert_eq!(
            status_line(&[], &vs[..1]),
            "1 virtual server, 1/2 real servers alive"
        );
    }
}
