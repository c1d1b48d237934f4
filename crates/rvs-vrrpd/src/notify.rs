//! Notifications (spec §9): the state's own script (`notify_master`, ...) runs as
//! configured, then the generic `notify` with `INSTANCE|GROUP name STATE priority`
//! appended, then one line per FIFO: `INSTANCE "VI_1" MASTER 100`.

use crate::plan::NotifyPlan;
use rvs_conf::model::Script;
use rvs_script::ScriptPolicy;
use std::io::Write as _;
use std::os::unix::fs::{FileTypeExt as _, OpenOptionsExt as _};
use std::path::Path;
use std::time::Duration;

/// The state names of notifications.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    Master,
    Backup,
    Fault,
    Stop,
    /// Removed by a reload, with `notify_deleted` set.
    Deleted,
    /// A MASTER heard a lower-priority master (FIFO and its own script only).
    MasterRxLowerPri,
    /// The effective priority changed (FIFO only, with `notify_priority_changes`).
    MasterPriority,
    BackupPriority,
}

impl Event {
    /// The event of entering a state (none for INIT).
    pub fn of_state(s: rvs_vrrp::State) -> Option<Event> {
        match s {
            rvs_vrrp::State::Master => Some(Event::Master),
            rvs_vrrp::State::Backup => Some(Event::Backup),
            rvs_vrrp::State::Fault => Some(Event::Fault),
            rvs_vrrp::State::Init => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Event::Master => "MASTER",
            Event::Backup => "BACKUP",
            Event::Fault => "FAULT",
            Event::Stop => "STOP",
            Event::Deleted => "DELETED",
            Event::MasterRxLowerPri => "MASTER_RX_LOWER_PRI",
            Event::MasterPriority => "MASTER_PRIORITY",
            Event::BackupPriority => "BACKUP_PRIORITY",
        }
    }
}

/// The FIFO line for an instance (`INSTANCE`) or a group (`GROUP`, priority 0).
pub fn fifo_line(kind: &str, name: &str, ev: Event, prio: u8) -> String {
    format!("{kind} \"{name}\" {} {prio}\n", ev.name())
}

/// Makes a FIFO (mode 0600), for a reader started before the writer opens it.
pub fn make_fifo(path: &Path) -> std::io::Result<()> {
    crate::sys::mkfifo(path)
}

/// FIFOs opened once (read-write and non-blocking, as keepalived does: a writer never
/// blocks on a missing reader), created when missing.
pub struct Fifos {
    files: Vec<(String, std::fs::File)>,
}

impl Fifos {
    pub fn open(paths: &[String]) -> Fifos {
        let mut files = Vec::new();
        for p in paths {
            let path = Path::new(p);
            if !path.exists() {
                if let Err(e) = crate::sys::mkfifo(path) {
                    tracing::error!("notify fifo {p}: cannot create: {e}");
                    continue;
                }
            }
            match std::fs::metadata(path) {
                Ok(m) if m.file_type().is_fifo() => {}
                _ => {
                    tracing::error!("notify fifo {p}: not a FIFO");
                    continue;
                }
            }
            match std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(path)
            {
                Ok(f) => files.push((p.clone(), f)),
                Err(e) => tracing::error!("notify fifo {p}: {e}"),
            }
        }
        Fifos { files }
    }

    pub fn write(&mut self, line: &str) {
        for (p, f) in &mut self.files {
            if let Err(e) = f.write_all(line.as_bytes()) {
                tracing::warn!("notify fifo {p}: {e}");
            }
        }
    }
}

/// Runs a script in the background (reaped by its own task), with a kill timer.
pub fn spawn(policy: &ScriptPolicy, script: &Script, extra: &[String], limit: Duration) {
    let mut argv = script.argv.clone();
    argv.extend(extra.iter().cloned());
    let user = script.user.as_deref().map(|u| (u, script.group.as_deref()));
    let mut cmd = match policy.command_as(&argv, user) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("notify: {e}");
            return;
        }
    };
    match cmd.spawn() {
        Ok(mut child) => {
            tokio::spawn(async move {
                if tokio::time::timeout(limit, child.wait()).await.is_err() {
                    let _ = child.kill().await;
                }
            });
        }
        Err(e) => tracing::error!("notify {}: {e}", argv.join(" ")),
    }
}

/// The scripts and FIFO line of one transition, in keepalived's order.
pub fn notify(
    policy: &ScriptPolicy,
    fifos: &mut Fifos,
    n: &NotifyPlan,
    kind: &str,
    name: &str,
    ev: Event,
    prio: u8,
) {
    // Notify scripts are not expected to run long; keepalived gives STOP scripts 1 s.
    let limit = if ev == Event::Stop {
        Duration::from_secs(1)
    } else {
        Duration::from_mins(1)
    };
    let own = match ev {
        Event::Master => &n.master,
        Event::Backup => &n.backup,
        Event::Fault => &n.fault,
        Event::Stop => &n.stop,
        Event::Deleted => &n.deleted,
        Event::MasterRxLowerPri => &n.rx_lower_pri,
        Event::MasterPriority | Event::BackupPriority => &None,
    };
    if let Some(s) = own {
        spawn(policy, s, &[], limit);
    }
    // keepalived runs only the event's own script for MASTER_RX_LOWER_PRI.
    let event_only = matches!(
        ev,
        Event::MasterRxLowerPri | Event::MasterPriority | Event::BackupPriority
    );
    if let Some(s) = n.generic.as_ref().filter(|_| !event_only) {
        let extra = [
            kind.to_owned(),
            name.to_owned(),
            ev.name().to_owned(),
            prio.to_string(),
        ];
        spawn(policy, s, &extra, limit);
    }
    fifos.write(&fifo_line(kind, name, ev, prio));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifo_lines_as_keepalived_prints_them() {
        assert_eq!(
            fifo_line("INSTANCE", "VI_1", Event::Master, 100),
            "INSTANCE \"VI_1\" MASTER 100\n"
        );
        assert_eq!(
            fifo_line("GROUP", "VG_1", Event::Backup, 0),
            "GROUP \"VG_1\" BACKUP 0\n"
        );
    }
}
