//! `rvs cleanup`: what a stopped or killed rvs left on this host, removed — its VRRP
//! instances' virtual addresses, routes and rules. A daemon killed with SIGKILL (or that
//! crashed) cannot remove them itself, and this host's kernel then keeps answering ARP
//! for addresses a peer has taken over: a FULLNAT local address, a VIP. systemd runs it
//! after the daemon has exited (`ExecStopPost` in rvs.service); it refuses to run while
//! the daemon named by the pid file lives.

use anyhow::{Context as _, Result};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct CleanupArgs {
    /// The configuration the daemon ran.
    #[arg(
        short = 'f',
        long = "file",
        default_value = "/etc/keepalived/keepalived.conf"
    )]
    pub file: PathBuf,
    /// The daemon's pid file: while the process it names is an rvs, nothing is removed.
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// Print nothing when nothing was left behind.
    #[arg(short, long)]
    pub quiet: bool,
}

pub fn run(a: &CleanupArgs) -> Result<ExitCode> {
    let pid_file = a
        .pid_file
        .clone()
        .unwrap_or_else(crate::daemon::run::default_pid_file);
    // A pid file that names no process (empty, garbage, 0 or negative) names no rvs.
    if let Some(pid) = std::fs::read_to_string(&pid_file)
        .ok()
        .and_then(|t| t.lines().next().and_then(|l| l.trim().parse::<i32>().ok()))
        .and_then(|p| crate::daemon::run::rustix_pid(p).ok())
    {
        if !exited(pid.as_raw_nonzero().get())
            && crate::daemon::run::ensure_rvs_daemon(pid, &pid_file).is_ok()
        {
            eprintln!(
                "rvs is running (pid {}, {}): nothing removed",
                pid.as_raw_nonzero(),
                pid_file.display()
            );
            return Ok(ExitCode::from(1));
        }
    }
    let parsed = rvs_conf::parse_file(&a.file, &rvs_conf::Options::default());
    if parsed.errors() > 0 {
        eprint!("{}", parsed.render());
        return Ok(ExitCode::from(2));
    }
    let plan = rvs_vrrpd::plan(&parsed.config).map_err(|errs| {
        anyhow::anyhow!(
            "{}",
            errs.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        )
    })?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut done = rt
        .block_on(rvs_vrrpd::release(&plan))
        .context("removing what rvs left behind")?;
    // The XDP plane's FULLNAT reset guard: needed only while the local addresses were
    // still on this host.
    if crate::daemon::dataplane::guard::present() {
        let gone = crate::daemon::dataplane::guard::script(&std::collections::BTreeSet::new());
        match rt.block_on(crate::daemon::dataplane::guard::apply(&gone)) {
            Ok(()) => done.push(format!(
                "removed the FULLNAT reset guard (nftables table inet {})",
                crate::daemon::dataplane::guard::TABLE
            )),
            Err(e) => done.push(format!("the FULLNAT reset guard: {e}")),
        }
    }
    for line in &done {
        println!("{line}");
    }
    if done.is_empty() && !a.quiet {
        println!(
            "nothing left behind by {}'s {} VRRP instance(s)",
            a.file.display(),
            plan.instances.len()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Whether process `pid` is gone or has exited and waits to be reaped (a zombie: its
/// parent has not collected it yet).
fn exited(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |st| {
        st.rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state == "Z" || state == "X")
    })
}
