//! Tracked objects that need a task: `vrrp_script` (run every `interval`, killed after
//! `timeout`, up after `rise` successes and down after `fall` failures) and
//! `vrrp_track_file` (polled every second; keepalived uses inotify, the value semantics
//! are the same). Each reports changes on the engine's channel.

use rvs_conf::model::{TrackFile, TrackProcess, VrrpScript};
use rvs_script::ScriptPolicy;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedSender;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrackEvent {
    /// `vrrp_script` index and its new state.
    Script(usize, bool),
    /// `vrrp_track_file` index and its new value.
    File(usize, i64),
    /// An interface by name: up or down.
    Link(String, bool),
    /// A `bfd_instance` (index in the plan's list): its session Up or not.
    Bfd(usize, bool),
    /// A `vrrp_track_process` (index in the plan's list): its quorum met or not.
    Process(usize, bool),
    /// An address of the host came or went (`track_src_ip`).
    Addr(std::net::IpAddr, bool),
    /// Another MAC than this director's answered ARP for one of its VIPs (or announced
    /// it): [`crate::conflict`].
    VipElsewhere(std::net::Ipv4Addr, [u8; 6]),
}

/// Rise/fall counting: `None` until the first result, which decides directly.
#[derive(Debug, Clone, Copy, Default)]
pub struct RiseFall {
    pub state: Option<bool>,
    run: u32,
}

impl RiseFall {
    pub fn new(init_fail: bool) -> RiseFall {
        RiseFall {
            state: init_fail.then_some(false),
            run: 0,
        }
    }

    /// One result; returns the new state when it changed.
    pub fn result(&mut self, ok: bool, rise: u32, fall: u32) -> Option<bool> {
        match self.state {
            None => {
                self.state = Some(ok);
                self.run = 0;
                Some(ok)
            }
            Some(s) if s == ok => {
                self.run = 0;
                None
            }
            Some(_) => {
                self.run += 1;
                let need = if ok { rise } else { fall }.max(1);
                if self.run >= need {
                    self.run = 0;
                    self.state = Some(ok);
                    Some(ok)
                } else {
                    None
                }
            }
        }
    }
}

pub fn spawn_script(
    idx: usize,
    s: VrrpScript,
    policy: ScriptPolicy,
    tx: UnboundedSender<TrackEvent>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let Some(script) = s.script.clone() else {
            return;
        };
        let mut rf = RiseFall::new(s.init_fail);
        // Never zero: the loader makes 0 one second, and a missing timeout the interval.
        let (interval, timeout) = (s.interval, s.timeout);
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let user = script.user.as_deref().map(|u| (u, script.group.as_deref()));
            let ok = match policy.command_as(&script.argv, user) {
                Ok(mut cmd) => {
                    cmd.stderr(std::process::Stdio::null());
                    match rvs_script::spawn(&mut cmd).await {
                        Ok(mut child) => match tokio::time::timeout(timeout, child.wait()).await {
                            Ok(Ok(st)) => st.success(),
                            Ok(Err(_)) => false,
                            Err(_) => {
                                tracing::warn!("vrrp_script {}: timed out", s.name);
                                let _ = child.kill().await;
                                false
                            }
                        },
                        Err(e) => {
                            tracing::error!("vrrp_script {}: {e}", s.name);
                            false
                        }
                    }
                }
                Err(e) => {
                    tracing::error!("vrrp_script {}: {e}", s.name);
                    false
                }
            };
            if let Some(up) = rf.result(ok, s.rise, s.fall) {
                tracing::info!(
                    "VRRP_Script({}) {}",
                    s.name,
                    if up { "succeeded" } else { "failed" }
                );
                if tx.send(TrackEvent::Script(idx, up)).is_err() {
                    return;
                }
            }
        }
    })
}

/// The value of a tracked file: its first integer; unreadable or not a number reads 0.
pub fn read_file_value(path: &str) -> i64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| t.split_whitespace().next().and_then(|w| w.parse().ok()))
        .unwrap_or(0)
}

pub fn spawn_file(
    idx: usize,
    f: TrackFile,
    tx: UnboundedSender<TrackEvent>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let Some(path) = f.file.clone() else {
            return;
        };
        if let Some(init) = &f.init_file {
            if init.overwrite || !std::path::Path::new(&path).exists() {
                if let Err(e) = std::fs::write(&path, format!("{}\n", init.value)) {
                    tracing::error!("track_file {}: init_file {path}: {e}", f.name);
                }
            }
        }
        let mut last = None;
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            let v = read_file_value(&path);
            if last != Some(v) {
                last = Some(v);
                if tx.send(TrackEvent::File(idx, v)).is_err() {
                    return;
                }
            }
        }
    })
}

/// Whether a process (its `/proc/PID/stat` name and its command line, NUL-split) is one
/// a `vrrp_track_process` counts: the name (`comm`, at most 15 bytes, as the kernel keeps
/// it) or with `full_command` the command's first word, then the parameters — all of
/// them (`exact`), the first ones (`initial`) or a run of them anywhere (`partial`).
pub fn process_matches(tp: &TrackProcess, comm: &str, cmdline: &[&str]) -> bool {
    let Some(want) = tp.process.as_deref() else {
        return false;
    };
    let name_ok = if tp.full_command {
        cmdline.first() == Some(&want)
    } else {
        let short: String = want.chars().take(15).collect();
        comm == short
    };
    if !name_ok {
        return false;
    }
    if tp.params.is_empty() {
        return true;
    }
    let args = cmdline.get(1..).unwrap_or_default();
    let want: Vec<&str> = tp.params.iter().map(String::as_str).collect();
    match tp.param_match.as_str() {
        "initial" => args.starts_with(&want),
        "partial" => args.windows(want.len()).any(|w| w == want.as_slice()),
        _ => args == want.as_slice(),
    }
}

/// How many running processes match, from /proc.
pub fn count_processes(tp: &TrackProcess) -> u32 {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0;
    };
    let mut n = 0u32;
    for e in dir.flatten() {
        let name = e.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|s| s.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // "PID (comm) state ...": the name is between the first '(' and the last ')'.
        let (Some(a), Some(b)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let comm = stat.get(a + 1..b).unwrap_or_default();
        let raw = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let text = String::from_utf8_lossy(&raw);
        let cmdline: Vec<&str> = text.split('\0').filter(|s| !s.is_empty()).collect();
        if process_matches(tp, comm, &cmdline) {
            n += 1;
        }
    }
    n
}

/// Follows a `vrrp_track_process` by polling /proc every second (keepalived listens to
/// the kernel's process events; the states are the same, seen up to a second later). A
/// change is reported once it has lasted `fork_delay` (up) or `terminate_delay` (down).
pub fn spawn_process(
    idx: usize,
    tp: TrackProcess,
    tx: UnboundedSender<TrackEvent>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let in_quorum = |n: u32| n >= tp.quorum && tp.quorum_max.is_none_or(|m| n <= m);
        let mut reported: Option<bool> = None;
        let mut pending: Option<(bool, tokio::time::Instant)> = None;
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            let n = count_processes(&tp);
            let up = in_quorum(n);
            let Some(was) = reported else {
                tracing::info!(
                    "vrrp_track_process {}: {n} running, quorum {}",
                    tp.name,
                    if up { "met" } else { "not met" }
                );
                // The first look decides at once.
                reported = Some(up);
                if tx.send(TrackEvent::Process(idx, up)).is_err() {
                    return;
                }
                continue;
            };
            if up == was {
                pending = None;
                continue;
            }
            let delay = if up {
                tp.fork_delay
            } else {
                tp.terminate_delay
            };
            let since = match pending {
                Some((p, t)) if p == up => t,
                _ => {
                    let t = tokio::time::Instant::now();
                    pending = Some((up, t));
                    t
                }
            };
            if since.elapsed() >= delay {
                tracing::info!(
                    "vrrp_track_process {}: {n} running, quorum {}",
                    tp.name,
                    if up { "gained" } else { "lost" }
                );
                pending = None;
                reported = Some(up);
                if tx.send(TrackEvent::Process(idx, up)).is_err() {
                    return;
                }
            }
        }
    })
}

/// Follows a BFD session: its current state at once, then every change (Up or not).
pub fn spawn_bfd(
    idx: usize,
    mut w: tokio::sync::watch::Receiver<rvs_bfd::driver::Seen>,
    tx: UnboundedSender<TrackEvent>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut last = None;
        loop {
            let up = w.borrow_and_update().state == rvs_bfd::State::Up;
            if last != Some(up) {
                last = Some(up);
                if tx.send(TrackEvent::Bfd(idx, up)).is_err() {
                    return;
                }
            }
            if w.changed().await.is_err() {
                return;
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp(process: &str, params: &[&str], mode: &str, full: bool) -> TrackProcess {
        TrackProcess {
            process: Some(process.into()),
            params: params.iter().map(|s| (*s).to_owned()).collect(),
            param_match: mode.into(),
            full_command: full,
            ..TrackProcess::new("t".into())
        }
    }

    #[test]
    fn process_matching() {
        let cmd = [
            "/usr/sbin/nginx",
            "-g",
            "daemon off;",
            "-c",
            "/etc/nginx.conf",
        ];
        assert!(process_matches(
            &tp("nginx", &[], "exact", false),
            "nginx",
            &cmd
        ));
        assert!(!process_matches(
            &tp("nginx", &[], "exact", false),
            "haproxy",
            &cmd
        ));
        // The kernel keeps 15 bytes of the name.
        assert!(process_matches(
            &tp("a-very-long-process-name", &[], "exact", false),
            "a-very-long-pro",
            &["/x/a-very-long-process-name"]
        ));
        assert!(process_matches(
            &tp("/usr/sbin/nginx", &[], "exact", true),
            "nginx",
            &cmd
        ));
        assert!(!process_matches(
            &tp("nginx", &[], "exact", true),
            "nginx",
            &cmd
        ));
        let args = ["-g", "daemon off;", "-c", "/etc/nginx.conf"];
        assert!(process_matches(
            &tp("nginx", &args, "exact", false),
            "nginx",
            &cmd
        ));
        assert!(!process_matches(
            &tp("nginx", &["-g"], "exact", false),
            "nginx",
            &cmd
        ));
        assert!(process_matches(
            &tp("nginx", &["-g"], "initial", false),
            "nginx",
            &cmd
        ));
        assert!(!process_matches(
            &tp("nginx", &["-c"], "initial", false),
            "nginx",
            &cmd
        ));
        assert!(process_matches(
            &tp("nginx", &["-c", "/etc/nginx.conf"], "partial", false),
            "nginx",
            &cmd
        ));
        assert!(!process_matches(
            &tp("nginx", &["-c", "daemon off;"], "partial", false),
            "nginx",
            &cmd
        ));
    }

    #[test]
    fn rise_and_fall() {
        let mut r = RiseFall::new(false);
        assert_eq!(r.result(true, 2, 3), Some(true), "first result decides");
        assert_eq!(r.result(false, 2, 3), None);
        assert_eq!(r.result(false, 2, 3), None);
        assert_eq!(r.result(false, 2, 3), Some(false), "third failure");
        assert_eq!(r.result(true, 2, 3), None);
        assert_eq!(r.result(false, 2, 3), None, "a failure resets the run");
        assert_eq!(r.result(true, 2, 3), None);
        assert_eq!(r.result(true, 2, 3), Some(true));
        let r = RiseFall::new(true);
        assert_eq!(r.state, Some(false), "init_fail starts down");
    }
}
