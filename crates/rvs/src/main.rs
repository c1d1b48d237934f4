//! `rvs`: one binary for the whole LVS + keepalived stack. This file only wires the crates
//! together: argument parsing, personalities (`keepalived`, `ipvsadm` by argv[0]), exit codes.

use anyhow::Result;
use clap::{Parser, Subcommand};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

mod cli;
mod clock;
mod daemon;
mod tools;

use cli::{adm, bgp, check, cleanup, doctor, plan, status, upgrade};
use daemon::{dataplane, logging, run};
use tools::{demo, genhash, lab, sim};

#[derive(Parser, Debug)]
#[command(
    name = "rvs",
    version,
    about = "Rust Virtual Server: LVS + keepalived in one binary"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Check a keepalived.conf: print diagnostics, exit 0 when valid, 1 on errors.
    Check(check::CheckArgs),
    /// What would kernel IPVS do? Schedule flows through the config's virtual services.
    Sim(sim::SimArgs),
    /// Run the load balancer from a keepalived.conf (userspace proxy data plane).
    Run(Box<run::RunArgs>),
    /// Ask the running daemon to reload its config (checked first; errors keep it running).
    Reload(run::ReloadArgs),
    /// What a reload of FILE would change in the running daemon, in order; changes nothing.
    Plan(plan::PlanArgs),
    /// Replace the running daemon by the installed binary without dropping connections.
    Upgrade(upgrade::UpgradeArgs),
    /// From a director, find the classic LVS mistakes (VIP missing on a DR real server,
    /// real servers answering ARP for the VIP, IP forwarding for NAT) and how to fix them.
    Doctor(doctor::DoctorArgs),
    /// Remove what a stopped or killed rvs left on this host: its VRRP instances'
    /// addresses, routes and rules (systemd's `ExecStopPost`).
    Cleanup(cleanup::CleanupArgs),
    /// Three demo backends and a load balancer on 127.0.0.1:8080, until Ctrl-C.
    Demo,
    /// ipvsadm's command line against the running daemon (`rvs adm -Ln`, `-A`, `-a`, `-S`, ...).
    // `-h` is ipvsadm's (its usage); the manual page shows the same text.
    #[command(disable_help_flag = true, after_long_help = adm::USAGE)]
    Adm {
        /// ipvsadm arguments (see `rvs adm -h`), plus `--control PATH`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// What the running daemon is doing: services, real servers, health, rates.
    Status(status::StatusArgs),
    /// The BGP speaker (`rvs_bgp`): what is announced, the sessions; drain and undrain.
    Bgp(bgp::BgpArgs),
    /// Fetch a URL and print the MD5 digest of its body (for `HTTP_GET` `digest`).
    Genhash(genhash::GenhashArgs),
    /// The seed articles' LVS-DR + keepalived lab in network namespaces (root).
    Lab(lab::LabArgs),
    /// Print the control API's OpenAPI document (JSON), generated from its handlers.
    Openapi,
    /// Write the manual pages (rvs(8), one per subcommand, rvs-keepalived.conf(5)) into DIR.
    Manpages {
        /// Where to write them.
        dir: PathBuf,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// keepalived's command line, as far as rvs implements it (`-f`, `-t`, `-i`).
#[derive(Parser, Debug)]
#[command(
    name = "keepalived",
    disable_version_flag = true,
    about = "rvs in keepalived mode"
)]
struct KeepalivedCli {
    /// Configuration file.
    #[arg(
        short = 'f',
        long = "use-file",
        default_value = "/etc/keepalived/keepalived.conf"
    )]
    file: PathBuf,
    /// Check the configuration and exit.
    #[arg(short = 't', long = "config-test")]
    config_test: bool,
    /// Config id for `@id` conditional lines (default: host name up to the first dot).
    #[arg(short = 'i', long = "config-id")]
    config_id: Option<String>,
    /// Print the version and exit.
    #[arg(short = 'v', long = "version")]
    version: bool,
    /// Do not fork (rvs never does; accepted for compatibility).
    #[arg(short = 'n', long = "dont-fork")]
    dont_fork: bool,
    /// Log to the console (accepted; rvs logs to stderr).
    #[arg(short = 'l', long = "log-console")]
    log_console: bool,
    /// Detailed log messages (accepted).
    #[arg(short = 'D', long = "log-detail")]
    log_detail: bool,
    /// Log to syslog with this facility (0-7: local0-7).
    #[arg(short = 'S', long = "log-facility", value_parser = logging::facility)]
    log_facility: Option<u8>,
    /// Main pid file.
    #[arg(short = 'p', long = "pid")]
    pid_file: Option<PathBuf>,
    /// Only run VRRP.
    #[arg(short = 'P', long = "vrrp")]
    vrrp: bool,
    /// Only run the checkers and the data plane.
    #[arg(short = 'C', long = "check")]
    check: bool,
    /// VRRP child pid file (accepted; rvs has no child processes).
    #[arg(short = 'r', long = "vrrp_pid")]
    vrrp_pid: Option<PathBuf>,
    /// Checker child pid file (accepted; rvs has no child processes).
    #[arg(short = 'c', long = "checkers_pid")]
    checkers_pid: Option<PathBuf>,
    /// BFD child pid file (accepted; rvs has no child processes).
    #[arg(short = 'b', long = "bfd_pid")]
    bfd_pid: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().collect();
    let argv0 = args
        .first()
        .and_then(|a| Path::new(a).file_name())
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let res = if argv0.as_str() == "keepalived" {
        keepalived(&args)
    } else if argv0.as_str() == "ipvsadm" {
        let rest: Vec<String> = args
            .iter()
            .skip(1)
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        Ok(adm::run(&rest))
    } else {
        let cli = Cli::parse_from(&args);
        match cli.cmd {
            Cmd::Check(a) => Ok(check::run(&a)),
            Cmd::Sim(a) => Ok(sim::run(&a)),
            Cmd::Run(a) => run::run(&a),
            Cmd::Reload(a) => run::reload_cmd(&a),
            Cmd::Plan(a) => plan::run(&a),
            Cmd::Upgrade(a) => upgrade::run(&a),
            Cmd::Doctor(a) => doctor::run(&a),
            Cmd::Cleanup(a) => cleanup::run(&a),
            Cmd::Demo => demo::run(),
            Cmd::Genhash(a) => genhash::run(&a),
            Cmd::Adm { args } => Ok(adm::run(&args)),
            Cmd::Status(a) => status::run(&a),
            Cmd::Bgp(a) => bgp::run(&a),
            Cmd::Openapi => {
                println!("{}", daemon::control::openapi_json());
                Ok(ExitCode::SUCCESS)
            }
            Cmd::Lab(a) => lab::run(&a),
            Cmd::Manpages { dir } => tools::docs::manpages::<Cli>(&dir).map(|written| {
                for f in written {
                    println!("{}", f.display());
                }
                ExitCode::SUCCESS
            }),
            Cmd::Completions { shell } => {
                tools::docs::completions::<Cli>(shell);
                Ok(ExitCode::SUCCESS)
            }
        }
    };
    match res {
        Ok(code) => code,
        Err(e) => {
            eprintln!("rvs: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// keepalived personality. `keepalived -t` checks the file like keepalived 2.2.7 does:
/// every problem keepalived reports counts, and the exit status is keepalived's (5 for a
/// configuration error), so `ExecStartPre=` lines and config-management validators keep
/// working unchanged.
fn keepalived(args: &[OsString]) -> Result<ExitCode> {
    let cli = KeepalivedCli::parse_from(args);
    if cli.version {
        println!("Keepalived v2.2.7 (rvs {})", env!("CARGO_PKG_VERSION"));
        return Ok(ExitCode::SUCCESS);
    }
    if cli.config_test {
        let a = check::CheckArgs {
            file: cli.file,
            json: false,
            strict: true,
            keepalived_verdict: true,
            config_id: cli.config_id,
            quiet: false,
        };
        let code = check::run(&a);
        return Ok(if code == ExitCode::SUCCESS {
            code
        } else {
            ExitCode::from(5)
        });
    }
    // keepalived programs the kernel's IPVS; so does rvs in its place when the kernel has
    // IPVS (asking for the family loads ip_vs), else it runs the proxy data plane.
    let dataplane = if !cli.vrrp && rvs_ipvs::Ipvs::open().is_ok() {
        dataplane::Kind::Ipvs
    } else {
        dataplane::Kind::Proxy
    };
    let a = run::RunArgs {
        file: cli.file,
        dataplane,
        xdp_iface: None,
        xdp_mode: run::XdpMode::Generic,
        xdp_flows: 1 << 20,
        xdp_by_table: false,
        bpffs: "/sys/fs/bpf".into(),
        dont_fork: cli.dont_fork,
        pid_file: cli.pid_file,
        drain: 5.0,
        no_retry: false,
        max_udp_flows: rvs_proxy::UDP_FLOWS_PER_SERVICE,
        max_relay_fds: None,
        log_level: "info".into(),
        threads: None,
        control: None,
        metrics: None,
        log_format: run::LogFormat::Text,
        syslog: cli.log_facility,
        syslog_socket: None,
        vrrp_only: cli.vrrp,
        check_only: cli.check,
    };
    let _ = (cli.vrrp_pid, cli.checkers_pid, cli.bfd_pid);
    run::run(&a)
}
