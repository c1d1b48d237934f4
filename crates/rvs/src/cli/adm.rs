//! `rvs adm` (and the binary invoked as `ipvsadm`): ipvsadm 1.31's command line applied
//! to the running daemon through the control API. Parsing and formatting live in
//! `rvs-adm`; this file moves requests and maps answers to ipvsadm's exit codes
//! (2 for usage errors, 255 for a refused change).

use anyhow::{Context as _, Result};
use rvs_adm::cmd::{self, Command, Invocation};
use rvs_adm::Service;
use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

pub const USAGE: &str = "ipvsadm v1.31 2019/12/24 (rvs adm)
Usage:
  ipvsadm -A|E virtual-service [-s scheduler] [-p [timeout]] [-M netmask] [--pe persistence_engine] [-b sched-flags]
  ipvsadm -D virtual-service
  ipvsadm -C
  ipvsadm -R
  ipvsadm -S [-n]
  ipvsadm -a|e virtual-service -r server-address [options]
  ipvsadm -d virtual-service -r server-address
  ipvsadm -L|l [virtual-service] [options]
  ipvsadm -Z [virtual-service]
  ipvsadm --set tcp tcpfin udp
  ipvsadm --start-daemon {master|backup} [daemon-options]
  ipvsadm --stop-daemon {master|backup}
  ipvsadm -h

rvs: the daemon is found through --control PATH, else $RVS_CONTROL, else the default socket.
";

/// Splits rvs's own `--control PATH` off ipvsadm's arguments.
fn control_arg(args: &[String]) -> (Option<PathBuf>, Vec<String>) {
    let mut control = None;
    let mut rest = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--control" {
            control = it.next().map(PathBuf::from);
        } else if let Some(p) = a.strip_prefix("--control=") {
            control = Some(PathBuf::from(p));
        } else {
            rest.push(a.clone());
        }
    }
    (control, rest)
}

fn services(path: &Path) -> Result<Vec<Service>> {
    let body = crate::daemon::control::call(path, "GET", "/v1/services")?;
    let api: Vec<rvs_api::Service> =
        serde_json::from_str(&body).context("the daemon's table is not valid JSON")?;
    api.iter()
        .map(|s| Service::try_from(s).context("the daemon's table"))
        .collect()
}

/// The daemon's status (`GET /v1/status`).
fn status(path: &Path) -> Result<rvs_api::Status> {
    let body = crate::daemon::control::call(path, "GET", "/v1/status")?;
    serde_json::from_str(&body).context("the daemon's status is not valid JSON")
}

/// The whole connection table, page by page.
fn all_connections(path: &Path) -> Result<Vec<rvs_adm::Conn>> {
    let mut out = Vec::new();
    loop {
        let body = crate::daemon::control::call(
            path,
            "GET",
            &format!("/v1/connections?offset={}&limit=10000", out.len()),
        )?;
        let page: rvs_api::ConnectionsPage =
            serde_json::from_str(&body).context("bad connections page")?;
        let got = page.connections.len();
        out.extend(page.connections.iter().map(rvs_adm::Conn::from));
        // The table moves between pages; stop at the end or on an empty page.
        if got == 0 || out.len() >= page.total {
            return Ok(out);
        }
    }
}

/// Sends one change; prints ipvsadm's error text when refused. Returns the exit code.
fn send(path: &Path, c: &Command) -> Result<u8> {
    let body = serde_json::to_string(&rvs_api::Command::try_from(c)?)?;
    match crate::daemon::control::call_body(path, "POST", "/v1/commands", &body)? {
        Ok(_) => Ok(0),
        Err(r) => {
            eprintln!("{}", r.msg);
            Ok(255)
        }
    }
}

fn invoke(path: &Path, inv: Invocation) -> Result<u8> {
    match inv {
        Invocation::Help => {
            print!("{USAGE}");
            Ok(0)
        }
        Invocation::Version => {
            println!("ipvsadm v1.31 2019/12/24 (compiled with popt and IPVS v1.2.1)");
            Ok(0)
        }
        Invocation::Apply(c) => send(path, &c),
        Invocation::Save { numeric } => {
            let all = services(path)?;
            let text = if numeric {
                cmd::save(&all, false)
            } else {
                cmd::save_named(&all, false, &crate::cli::names::SystemNames::new())
            };
            print!("{text}");
            Ok(0)
        }
        Invocation::Restore => restore(path),
        Invocation::List {
            opts,
            svc,
            timeout,
            connections,
            numeric,
            daemon,
        } => {
            if daemon {
                // One line per running sync daemon (kernel IPVS only); nothing when none runs.
                for l in status(path)?.sync_daemons {
                    println!("{l}");
                }
                return Ok(0);
            }
            let system;
            let names: &dyn rvs_adm::Names = if numeric {
                &rvs_adm::Numeric
            } else {
                system = crate::cli::names::SystemNames::new();
                &system
            };
            if connections {
                print!(
                    "{}",
                    rvs_adm::list_conns_named(
                        &all_connections(path)?,
                        names,
                        opts.format == rvs_adm::Format::PersistentConn
                    )
                );
                return Ok(0);
            }
            if timeout {
                let t = status(path)?.timeouts;
                println!("Timeout (tcp tcpfin udp): {} {} {}", t.tcp, t.tcpfin, t.udp);
                return Ok(0);
            }
            let all = services(path)?;
            let text = match svc {
                None => rvs_adm::list_named(&all, opts, names),
                Some(id) => {
                    let Some(s) = all.into_iter().find(|s| s.id == id) else {
                        eprintln!("No such service");
                        return Ok(255);
                    };
                    rvs_adm::list_body_named(&[s], opts, names)
                }
            };
            print!("{text}");
            Ok(0)
        }
    }
}

/// `-R`: one invocation per stdin line; a usage error aborts the restore (exit 2), a
/// refused change is printed and the restore goes on (the status is the last command's).
fn restore(path: &Path) -> Result<u8> {
    let mut last = 0;
    for line in std::io::stdin().lock().lines() {
        let args = cmd::restore_line(&line?);
        if args.is_empty() {
            continue;
        }
        match cmd::parse_with(&args, &crate::cli::names::SystemNames::new()) {
            Err(e) => {
                eprintln!("{}", e.msg);
                return Ok(e.code);
            }
            Ok(Invocation::Restore) => {
                eprintln!("-R is not allowed inside a restore");
                return Ok(2);
            }
            Ok(inv @ Invocation::Apply(_)) => last = invoke(path, inv)?,
            Ok(_) => {}
        }
    }
    Ok(last)
}

/// Runs ipvsadm's command line (`args` without the program name).
pub fn run(args: &[String]) -> ExitCode {
    let (control, args) = control_arg(args);
    let inv = match cmd::parse_with(&args, &crate::cli::names::SystemNames::new()) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("{}", e.msg);
            return ExitCode::from(e.code);
        }
    };
    let path = crate::daemon::control::client_path(control.as_deref());
    match invoke(&path, inv) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("rvs adm: {e:#}");
            ExitCode::from(2)
        }
    }
}
