//! keepalived's `notify_fifo_script`, `vrrp_notify_fifo_script` and
//! `lvs_notify_fifo_script`: each is started once, when the daemon starts, with its FIFO's
//! name as last argument, to read the lines the daemon writes there; it is stopped
//! (SIGTERM, then SIGKILL after 5 s) when the daemon stops, after the last lines.

use rvs_conf::Config;
use std::time::Duration;

/// The running FIFO readers.
#[derive(Default)]
pub struct FifoScripts {
    children: Vec<(String, tokio::process::Child)>,
}

impl FifoScripts {
    /// Starts the reader of each FIFO that has one (the FIFO is made when missing).
    pub fn start(cfg: &Config) -> FifoScripts {
        let g = &cfg.global_defs;
        let policy = rvs_daemon::policy_of(cfg);
        let mut children = Vec::new();
        for (what, fifo, script) in [
            ("notify_fifo_script", &g.notify_fifo, &g.notify_fifo_script),
            (
                "vrrp_notify_fifo_script",
                &g.vrrp_notify_fifo,
                &g.vrrp_notify_fifo_script,
            ),
            (
                "lvs_notify_fifo_script",
                &g.lvs_notify_fifo,
                &g.lvs_notify_fifo_script,
            ),
        ] {
            let Some(script) = script else { continue };
            let Some(fifo) = fifo else {
                tracing::warn!("{what}: no FIFO to read (its *_notify_fifo is not set)");
                continue;
            };
            let path = std::path::Path::new(fifo);
            if !path.exists() {
                if let Err(e) = rvs_vrrpd::notify::make_fifo(path) {
                    tracing::error!("{what}: cannot make {fifo}: {e}");
                    continue;
                }
            }
            let mut argv = script.argv.clone();
            argv.push(fifo.clone());
            let user = script.user.as_deref().map(|u| (u, script.group.as_deref()));
            match policy
                .command_as(&argv, user)
                .and_then(|mut c| c.spawn().map_err(|e| e.to_string()))
            {
                Ok(child) => {
                    tracing::info!("{what}: started {}", argv.join(" "));
                    children.push((what.to_owned(), child));
                }
                Err(e) => tracing::error!("{what}: {}: {e}", argv.join(" ")),
            }
        }
        FifoScripts { children }
    }

    /// Stops the readers: SIGTERM, and SIGKILL for one still there after 5 s.
    pub async fn stop(self) {
        for (what, mut child) in self.children {
            if let Some(pid) = child
                .id()
                .and_then(|p| i32::try_from(p).ok())
                .and_then(rustix::process::Pid::from_raw)
            {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
            }
            if tokio::time::timeout(Duration::from_secs(5), child.wait())
                .await
                .is_err()
            {
                tracing::warn!("{what}: still running 5 s after SIGTERM: killed");
                let _ = child.kill().await;
            }
        }
    }
}
