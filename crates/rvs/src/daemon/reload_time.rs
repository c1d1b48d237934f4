//! keepalived's scheduled reloads, driven: `reload_time_file` is read every second (it
//! may appear, change or go at any time), the time its first line gives is worked out by
//! `rvs_daemon::reload_time`, and when it comes the daemon reloads as on SIGHUP. The
//! file is then deleted, unless `reload_repeat` (a time without a date then comes back
//! every day). A reload that changes either keyword restarts the watch.

use crate::daemon::control::Request;
use jiff::Timestamp;
use rvs_daemon::reload_time::{next, parse, Spec};
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// The running watch and what it was started for.
pub struct Watch {
    settings: Option<(PathBuf, bool)>,
    stop: CancellationToken,
}

fn settings(cfg: &rvs_conf::Config) -> Option<(PathBuf, bool)> {
    let g = &cfg.global_defs;
    g.reload_time_file
        .as_ref()
        .map(|p| (PathBuf::from(p), g.reload_repeat))
}

impl Watch {
    /// Starts watching what `cfg` names (nothing without `reload_time_file`).
    pub fn start(
        cfg: &rvs_conf::Config,
        tx: &mpsc::Sender<Request>,
        parent: &CancellationToken,
        tasks: &tokio_util::task::TaskTracker,
    ) -> Watch {
        let stop = parent.child_token();
        let s = settings(cfg);
        if let Some((path, repeat)) = s.clone() {
            tasks.spawn(watch(path, repeat, tx.clone(), stop.clone()));
        }
        Watch { settings: s, stop }
    }

    /// After a reload: a changed file or `reload_repeat` restarts the watch.
    pub fn follow(
        &mut self,
        cfg: &rvs_conf::Config,
        tx: &mpsc::Sender<Request>,
        parent: &CancellationToken,
        tasks: &tokio_util::task::TaskTracker,
    ) {
        if settings(cfg) != self.settings {
            self.stop.cancel();
            *self = Watch::start(cfg, tx, parent, tasks);
        }
    }
}

async fn watch(path: PathBuf, repeat: bool, tx: mpsc::Sender<Request>, stop: CancellationToken) {
    let local = jiff::tz::TimeZone::system();
    let shown = path.display().to_string();
    // What the file said when last read (None: no file), and the reload it schedules.
    let mut seen: Option<String> = None;
    let mut due: Option<(Spec, Timestamp)> = None;
    loop {
        let text = tokio::fs::read_to_string(&path).await.ok();
        if text != seen {
            due = match text.as_deref() {
                None => {
                    if seen.is_some() {
                        tracing::info!("reload_time_file {shown} removed: no reload scheduled");
                    }
                    None
                }
                Some(t) => match parse(t) {
                    Ok(spec) => {
                        let at = next(&spec, Timestamp::now(), &local);
                        if let Some(at) = at {
                            tracing::info!("Reload scheduled for {at} by {shown}");
                        } else {
                            tracing::info!("reload_time_file {shown}: the time has passed");
                        }
                        at.map(|at| (spec, at))
                    }
                    Err(e) => {
                        tracing::warn!("reload_time_file {shown}: {e}: no reload scheduled");
                        None
                    }
                },
            };
            seen = text;
        }
        let now = Timestamp::now();
        if let Some((spec, at)) = due.filter(|(_, at)| *at <= now) {
            tracing::info!("Scheduled reload (reload_time_file {shown})");
            if !repeat {
                let _ = tokio::fs::remove_file(&path).await;
                seen = None;
            }
            let (reply, _) = tokio::sync::oneshot::channel();
            if tx.send(Request::Reload(reply)).await.is_err() {
                return;
            }
            due = if repeat {
                next(&spec, at, &local).map(|n| (spec, n))
            } else {
                None
            };
        }
        let until_due = due
            .map(|(_, at)| now.duration_until(at))
            .and_then(|d| Duration::try_from(d).ok())
            .unwrap_or(Duration::from_secs(1));
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(until_due.min(Duration::from_secs(1))) => {}
        }
    }
}
