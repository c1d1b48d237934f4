//! `rvs upgrade`: the running daemon starts the installed binary to take its place
//! without dropping connections (`POST /v1/upgrade`, `daemon::upgrade`); this waits until
//! the successor answers on the control socket.

use anyhow::{bail, Context as _, Result};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(clap::Args, Debug)]
pub struct UpgradeArgs {
    /// The binary to run instead of the one now installed where the daemon's was.
    #[arg(long)]
    pub binary: Option<PathBuf>,
    /// The daemon's control socket (default: `$RVS_CONTROL`, else the default socket).
    #[arg(long)]
    pub control: Option<PathBuf>,
}

pub fn run(a: &UpgradeArgs) -> Result<ExitCode> {
    let binary = super::absolute_arg(a.binary.as_deref(), "find")?;
    let sock = crate::daemon::control::client_path(a.control.as_deref());
    let old: rvs_api::Status =
        serde_json::from_str(&crate::daemon::control::call(&sock, "GET", "/v1/status")?)
            .context("the daemon's status is not valid JSON")?;
    let body = serde_json::to_string(&rvs_api::UpgradeRequest { binary })?;
    let answer = match crate::daemon::control::call_body(&sock, "POST", "/v1/upgrade", &body)? {
        Ok(b) => b,
        Err(r) => bail!("the daemon answered {}: {}", r.status, r.msg),
    };
    let new: rvs_api::UpgradeAnswer =
        serde_json::from_str(&answer).context("the daemon's answer is not valid JSON")?;
    // The successor answers on the same socket once it has the listeners.
    let t = Instant::now();
    while t.elapsed() < Duration::from_mins(1) {
        let now = crate::daemon::control::call(&sock, "GET", "/v1/status")
            .ok()
            .and_then(|b| serde_json::from_str::<rvs_api::Status>(&b).ok());
        if now.is_some_and(|s| s.pid == new.pid) {
            println!(
                "upgraded: rvs {} (pid {}) took over from rvs {} (pid {}), which drains its connections",
                now_version(&sock),
                new.pid,
                old.version,
                old.pid
            );
            return Ok(ExitCode::SUCCESS);
        }
        if !alive(new.pid) {
            bail!(
                "the successor (pid {}) exited before taking over; the running rvs (pid {}) \
                 goes on: its log says why",
                new.pid,
                old.pid
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!(
        "the successor (pid {}) did not answer within a minute: see the daemon's log",
        new.pid
    )
}

/// Whether `pid` runs (a zombie does not).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        // The state follows the parenthesised command name.
        s.rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z') && !rest.starts_with('X'))
    })
}

fn now_version(sock: &std::path::Path) -> String {
    crate::daemon::control::call(sock, "GET", "/v1/status")
        .ok()
        .and_then(|b| serde_json::from_str::<rvs_api::Status>(&b).ok())
        .map(|s| s.version)
        .unwrap_or_default()
}
