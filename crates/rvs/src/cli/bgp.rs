//! `rvs bgp`: the BGP speaker of `rvs_bgp` — what it announces and its sessions, and
//! the drain of this director (every VIP withdrawn; established connections go on).

use anyhow::{bail, Context as _, Result};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct BgpArgs {
    #[command(subcommand)]
    pub what: Option<BgpCmd>,
    /// The daemon's control socket (default: `$RVS_CONTROL`, else the default socket).
    #[arg(long, global = true)]
    pub control: Option<PathBuf>,
}

#[derive(clap::Subcommand, Debug, Clone, Copy)]
pub enum BgpCmd {
    /// What is announced, and each session with a router (the default).
    Status,
    /// Withdraw every VIP from the routers: new connections go to the other directors,
    /// established ones are still served. Kept across reloads, until `undrain`.
    Drain,
    /// Announce the VIPs again (while they can be served).
    Undrain,
}

pub fn run(a: &BgpArgs) -> Result<ExitCode> {
    let sock = crate::daemon::control::client_path(a.control.as_deref());
    let path = match a.what.unwrap_or(BgpCmd::Status) {
        BgpCmd::Status => {
            let st: rvs_api::Status =
                serde_json::from_str(&crate::daemon::control::call(&sock, "GET", "/v1/status")?)
                    .context("the daemon's status is not valid JSON")?;
            if st.bgp.is_none() {
                bail!("no rvs_bgp in the daemon's configuration: it announces nothing");
            }
            let mut o = String::new();
            crate::cli::status::render_bgp(&mut o, &st);
            print!("{o}");
            return Ok(ExitCode::SUCCESS);
        }
        BgpCmd::Drain => "/v1/bgp/drain",
        BgpCmd::Undrain => "/v1/bgp/undrain",
    };
    match crate::daemon::control::call_body(&sock, "POST", path, "")? {
        Ok(_) => Ok(ExitCode::SUCCESS),
        Err(r) => bail!("{}", r.msg),
    }
}
