//! `rvs run`: the daemon. Config → desired state → data plane; SIGHUP reloads by
//! difference (a bad file keeps the old config running); SIGTERM/SIGINT drain and exit.

use crate::daemon::dataplane::{ApplyError, Dataplane, Kind, XdpSettings};
use crate::daemon::health::Checkers;
use anyhow::{bail, Context as _, Result};
use clap::Args;
use rvs_daemon::{refuse_reload, Core, DataReload, Mode, ReloadReport, VrrpReload};
use rvs_proxy::ProxyOptions;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;
use tokio::signal::unix::{signal, SignalKind};

#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// The keepalived.conf to run.
    #[arg(
        short = 'f',
        long = "file",
        default_value = "/etc/keepalived/keepalived.conf"
    )]
    pub file: PathBuf,
    /// Data plane: `proxy` (userspace TCP/UDP proxy, no root needed), `xdp` (the
    /// XDP/eBPF program forwards DR, TUN and NAT in the kernel; root) or `ipvs` (the
    /// kernel's IPVS programmed over netlink, as keepalived does; root, `ip_vs`).
    #[arg(long, value_enum, default_value_t = Kind::Proxy)]
    pub dataplane: Kind,
    /// The interface the XDP program attaches to (default: the first `vrrp_instance`'s).
    #[arg(long = "xdp-iface", value_name = "IFACE")]
    pub xdp_iface: Option<String>,
    /// XDP attach mode: `generic` (works on every interface) or `native` (driver).
    #[arg(long = "xdp-mode", value_enum, default_value_t = XdpMode::Generic)]
    pub xdp_mode: XdpMode,
    /// Entries of the XDP flow table (LRU).
    #[arg(long = "xdp-flows", default_value_t = 1 << 20)]
    pub xdp_flows: u32,
    /// Forward the TCP flows of `mh`, `sh` and `dh` services (DR, TUN; no persistence)
    /// by their table slot alone: no flow-table lookup per packet, except for slots whose
    /// real server changed, whose earlier flows still go on to it. Their flows are then
    /// not recorded, so `-Lc`, ActiveConn/InActConn and connection sync show only those
    /// of changed slots (docs/xdp.md, "Forwarding by the table").
    #[arg(long = "xdp-by-table")]
    pub xdp_by_table: bool,
    /// A BPF file system: `rvs upgrade` pins the XDP program's maps and link there for
    /// the new process to load on (systemd mounts /sys/fs/bpf at boot).
    #[arg(long = "bpffs", value_name = "DIR", default_value = "/sys/fs/bpf")]
    pub bpffs: PathBuf,
    /// Stay in the foreground (keepalived's -n; rvs never forks, so this is the default).
    #[arg(short = 'n', long = "dont-fork")]
    pub dont_fork: bool,
    /// Where to write the pid (read by `rvs reload`; named after `net_namespace` and
    /// `instance` by default, as the control socket is).
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// On SIGTERM/SIGINT, how long established connections may finish (seconds).
    #[arg(long, default_value_t = 5.0)]
    pub drain: f64,
    /// Do not try another real server when the chosen one refuses the connection.
    #[arg(long)]
    pub no_retry: bool,
    /// Most UDP flows (client addresses, one socket each) per UDP service; datagrams from
    /// further sources are dropped and counted (docs/limits.md).
    #[arg(long, value_name = "N", default_value_t = rvs_proxy::UDP_FLOWS_PER_SERVICE)]
    pub max_udp_flows: usize,
    /// Descriptors the proxy may use for relayed traffic (default: the open-files limit
    /// less 512 kept for control, health checks and VRRP).
    #[arg(long, value_name = "N")]
    pub max_relay_fds: Option<u64>,
    /// Log level (error, warn, info, debug, trace).
    #[arg(long = "log-level", default_value = "info")]
    pub log_level: String,
    /// Worker threads of the data plane (default: one per CPU). The proxy runs its
    /// connections on this many threads of its own, each with an `SO_REUSEPORT` socket
    /// per TCP service; the control plane (checkers, API) gets as many runtime threads.
    #[arg(long)]
    pub threads: Option<usize>,
    /// The control API's Unix socket (default: /run/rvs/rvs.sock as root,
    /// `$XDG_RUNTIME_DIR/rvs.sock` otherwise; with `net_namespace`/`instance` in the
    /// config, their names go before the extension: `rvs_NS_INST.sock`).
    #[arg(long)]
    pub control: Option<PathBuf>,
    /// Log format on stderr: `text` (keepalived-like lines) or `json` (one object per line).
    #[arg(long = "log-format", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Also log to syslog with this facility (0-7 = local0-7 as keepalived's -S, daemon, user).
    #[arg(long, value_name = "FACILITY", value_parser = crate::daemon::logging::facility)]
    pub syslog: Option<u8>,
    /// The syslog socket (default /dev/log).
    #[arg(long = "syslog-socket", value_name = "PATH")]
    pub syslog_socket: Option<PathBuf>,
    /// Serve Prometheus metrics on ADDR:PORT (`GET /metrics`).
    #[arg(long, value_name = "ADDR:PORT")]
    pub metrics: Option<std::net::SocketAddr>,
    /// Only run VRRP (keepalived's -P): no data plane, no checkers.
    #[arg(short = 'P', long = "vrrp", conflicts_with = "check_only")]
    pub vrrp_only: bool,
    /// Do not run VRRP (keepalived's -C): data plane and checkers only.
    #[arg(short = 'C', long = "check")]
    pub check_only: bool,
}

/// How the XDP program attaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum XdpMode {
    /// Works on every interface (the kernel's generic XDP).
    Generic,
    /// In the driver (faster; the driver must support XDP).
    Native,
}

/// The log format on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// keepalived-like lines.
    Text,
    /// One JSON object per line.
    Json,
    /// journald's native protocol: each event with its fields (`RVS_VIRTUAL_SERVER`,
    /// `RVS_REAL_SERVER`, `RVS_INSTANCE`, …). Chosen by itself when systemd connects
    /// stderr to the journal (`$JOURNAL_STREAM`).
    Journald,
}

/// Default pid file: `$XDG_RUNTIME_DIR/rvs.pid`, `/run/rvs.pid` as root, else in /tmp.
pub fn default_pid_file() -> PathBuf {
    if let Some(d) = std::env::var_os("XDG_RUNTIME_DIR") {
        return PathBuf::from(d).join("rvs.pid");
    }
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let uid = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1).map(str::to_owned))
        .unwrap_or_default();
    if uid == "0" {
        PathBuf::from("/run/rvs.pid")
    } else {
        PathBuf::from(format!("/tmp/rvs-{uid}.pid"))
    }
}

/// A default file of the daemon (pid file, control socket), named after `net_namespace`
/// and `instance` as keepalived names its pid files, so that daemons for two namespaces
/// on one host do not collide.
/// `config_save_dir`: the state before (`post` false) or after reload `n`, written off
/// the runtime.
async fn save_config(
    ctx: &crate::daemon::control::Ctx,
    cfg: &rvs_conf::Config,
    n: u64,
    post: bool,
) {
    let Some(dir) = cfg.global_defs.config_save_dir.clone() else {
        return;
    };
    let services = crate::daemon::control::snapshot(&ctx.shared).await;
    let (cfg, vrrp) = (cfg.clone(), ctx.vrrp());
    let _ = tokio::task::spawn_blocking(move || {
        crate::daemon::dumps::save_config(Path::new(&dir), n, post, &cfg, &vrrp, &services);
    })
    .await;
}

/// `reload_file`'s path: as written, else keepalived's default beside its pid file.
fn reload_file_of(cfg: &rvs_conf::Config) -> Option<PathBuf> {
    let g = &cfg.global_defs;
    let f = g.reload_file.as_deref()?;
    Some(if f.is_empty() {
        let base = if g.use_pid_dir {
            "/run/keepalived/keepalived.reload"
        } else {
            "/run/keepalived.reload"
        };
        own_file(cfg, Path::new(base))
    } else {
        PathBuf::from(f)
    })
}

fn own_file(cfg: &rvs_conf::Config, default: &Path) -> PathBuf {
    let g = &cfg.global_defs;
    crate::daemon::netns::file_name(
        &default.to_string_lossy(),
        g.net_namespace.as_deref(),
        g.instance.as_deref(),
    )
}

pub fn init_logging(level: &str) {
    crate::daemon::logging::init(&crate::daemon::logging::LogOpts {
        level: level.to_owned(),
        ..Default::default()
    });
}

/// Parses and checks a config; on errors prints them and returns None.
pub fn load(path: &Path) -> Option<rvs_conf::Config> {
    let parsed = rvs_conf::parse_file(path, &rvs_conf::Options::default());
    let text = parsed.render();
    if parsed.errors() > 0 {
        eprint!("{text}");
        eprintln!("{}: invalid ({} errors)", path.display(), parsed.errors());
        return None;
    }
    for d in &parsed.diagnostics {
        tracing::warn!(
            "{}:{}:{}: {}",
            parsed.sources.path(d.loc.file).display(),
            d.loc.line,
            d.loc.col,
            d.message
        );
    }
    Some(parsed.config)
}

/// Raises the soft limit of open files to the hard one: a proxied connection costs two
/// descriptors, and the default soft limit (often 1024) is far too low for a load balancer.
fn raise_nofile() {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let cur = getrlimit(Resource::Nofile);
    if cur.current < cur.maximum {
        let _ = setrlimit(
            Resource::Nofile,
            Rlimit {
                current: cur.maximum,
                maximum: cur.maximum,
            },
        );
    }
    let now = getrlimit(Resource::Nofile);
    tracing::debug!("open files limit: {:?}", now.current);
}

pub fn run(a: &RunArgs) -> Result<ExitCode> {
    crate::daemon::logging::init(&crate::daemon::logging::LogOpts {
        level: a.log_level.clone(),
        json: a.log_format == LogFormat::Json,
        journald: a.log_format == LogFormat::Journald
            || (a.log_format == LogFormat::Text && crate::daemon::logging::stderr_is_the_journal()),
        syslog: a.syslog,
        syslog_socket: a.syslog_socket.clone(),
    });
    raise_nofile();
    let _ = a.dont_fork;
    let Some(cfg) = load(&a.file) else {
        return Ok(ExitCode::from(1));
    };
    // net_namespace: entered before the runtime starts a thread (every thread inherits
    // it), so the VRRP sockets, the checkers and the data plane all live there.
    if let Some(ns) = &cfg.global_defs.net_namespace {
        if let Err(e) = crate::daemon::netns::enter(ns) {
            tracing::error!("net_namespace {ns}: {e}");
            return Ok(ExitCode::from(1));
        }
        tracing::info!("running in network namespace {ns}");
    }
    // keepalived's process settings: the checkers' go to the runtime's threads (and the
    // main thread), VRRP's and BFD's to their threads (`threads`).
    crate::daemon::threads::remember_original();
    crate::daemon::threads::apply_to_main(&cfg.global_defs);
    let threads = threads(a);
    // One thread: tokio's current-thread scheduler (no work stealing, no cross-thread
    // wake-ups); more: the multi-thread one.
    let rt = if threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        let checker = cfg.global_defs.checker_process.clone();
        let nice = cfg.global_defs.checker_priority;
        let mut b = tokio::runtime::Builder::new_multi_thread();
        if let Some(name) = &checker.name {
            b.thread_name(name);
        }
        b.worker_threads(threads)
            .on_thread_start(move || crate::daemon::threads::apply_checker(&checker, nice))
            .enable_all()
            .build()?
    };
    rt.block_on(daemon(a, &cfg, threads))
}

/// `--threads`, or one per CPU.
fn threads(a: &RunArgs) -> usize {
    a.threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, std::num::NonZero::get))
        .max(1)
}

/// The daemon on its runtime; `threads`: the proxy's workers, as many as the runtime's.
async fn daemon(a: &RunArgs, cfg: &rvs_conf::Config, threads: usize) -> Result<ExitCode> {
    let opts = ProxyOptions {
        retry_refused: !a.no_retry,
        udp_flows_per_service: a.max_udp_flows.max(1),
        max_fds: a.max_relay_fds,
        workers: threads,
        ..ProxyOptions::default()
    };
    // The control socket's path first: `rvs upgrade` started this process to take the
    // running one's place, and what it hands over (listening sockets, the XDP program's
    // maps and link) comes before the data plane starts.
    let control_path = a
        .control
        .clone()
        .unwrap_or_else(|| own_file(cfg, &crate::daemon::control::default_path()));
    let mut received = None;
    if std::env::var_os(crate::daemon::upgrade::ENV).is_some() {
        let ctl = control_path.clone();
        match tokio::task::spawn_blocking(move || crate::daemon::upgrade::receive(&ctl)).await? {
            Ok(Some(r)) => {
                tracing::info!(
                    "taking over from rvs pid {}: {} listening socket(s){}",
                    r.handover.pid,
                    r.fds.len(),
                    if r.handover.xdp.is_some() {
                        ", the XDP program's link and maps"
                    } else {
                        ""
                    }
                );
                received = Some(r);
            }
            Ok(None) => tracing::warn!(
                "{} is set but no rvs answers on {}: starting afresh",
                crate::daemon::upgrade::ENV,
                crate::daemon::upgrade::path_of(&control_path).display()
            ),
            Err(e) => return Err(e.context("taking over from the running rvs")),
        }
    }
    let carried_xdp = received.as_ref().and_then(|r| r.handover.xdp.clone());
    let mut xdp_attach = None;
    let mut proxy = if a.dataplane == Kind::Xdp && !a.vrrp_only {
        let attach = match &a.xdp_iface {
            Some(i) => rvs_api::XdpAttach {
                interface: i.clone(),
                chosen_by: "--xdp-iface".to_owned(),
            },
            None => xdp_iface_of(cfg).await?,
        };
        tracing::info!(
            "XDP data plane on {} (chosen by {})",
            attach.interface,
            attach.chosen_by
        );
        let iface = attach.interface.clone();
        xdp_attach = Some(attach);
        Dataplane::xdp(
            opts,
            &XdpSettings {
                iface,
                native: a.xdp_mode == XdpMode::Native,
                flows: a.xdp_flows,
                by_table: a.xdp_by_table,
                bpffs: a.bpffs.clone(),
            },
            carried_xdp,
        )
        .await?
    } else if a.dataplane == Kind::Ipvs && !a.vrrp_only {
        Dataplane::ipvs(
            &opts,
            crate::daemon::dataplane::ipvs::Flush {
                at_start: cfg.global_defs.lvs_flush,
                at_stop: cfg.global_defs.lvs_flush_on_stop,
            },
            cfg.global_defs.net_namespace_ipvs.as_deref(),
            cfg.global_defs.lvs_netlink_cmd_rcv_bufs,
        )?
    } else {
        Dataplane::proxy(opts)
    };
    // `rvs upgrade`: the listening sockets are adopted before anything binds, then the
    // hand-over is confirmed (the predecessor frees the control socket). VRRP instances
    // as the predecessor left them (a MASTER goes on as MASTER).
    let mut carried_vrrp: Option<Vec<rvs_vrrpd::Carried>> = None;
    if let Some(mut r) = received {
        let services = std::mem::take(&mut r.handover.services);
        proxy.adopt(services.into_iter().zip(std::mem::take(&mut r.fds)));
        carried_vrrp = Some(std::mem::take(&mut r.handover.vrrp));
        tokio::task::spawn_blocking(move || r.confirm())
            .await?
            .context("taking over from the running rvs")?;
    }
    // The control socket: a second daemon started by mistake stops here, before it
    // touches any listener.
    // Taking over, the predecessor frees the control socket once the hand-over is sent.
    let listener = if carried_vrrp.is_some() {
        let t = std::time::Instant::now();
        loop {
            match crate::daemon::control::bind(&control_path) {
                Ok(l) => break l,
                Err(e) if t.elapsed() > Duration::from_secs(10) => return Err(e),
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    } else {
        crate::daemon::control::bind(&control_path)?
    };
    // Where a successor asks for the listening sockets (`rvs upgrade`).
    let upgrade_path = crate::daemon::upgrade::path_of(&control_path);
    let upgrade_listener = crate::daemon::control::bind(&upgrade_path)?;
    let metrics_listener = match a.metrics {
        None => None,
        Some(addr) => match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => {
                tracing::info!("metrics on http://{addr}/metrics");
                Some(l)
            }
            Err(e) => {
                drop(listener);
                let _ = std::fs::remove_file(&control_path);
                bail!("cannot serve metrics on {addr}: {e}");
            }
        },
    };
    let cleanup = |why: anyhow::Error| {
        let _ = std::fs::remove_file(&control_path);
        why
    };
    let vrrp_plan = if a.check_only {
        rvs_vrrpd::Plan::default()
    } else {
        rvs_vrrpd::plan(cfg).map_err(|errs| {
            cleanup(anyhow::anyhow!(
                "cannot start VRRP: {}",
                errs.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            ))
        })?
    };
    // keepalived's startup_script: before any service or instance, waited for.
    if let Some(sc) = &cfg.global_defs.startup_script {
        crate::daemon::health::run_and_wait(
            &rvs_daemon::policy_of(cfg),
            "startup_script",
            sc,
            cfg.global_defs.startup_script_timeout,
        )
        .await;
    }
    // vrrp_no_swap / checker_no_swap / bfd_no_swap: keepalived locks each child process in
    // memory; rvs is one process, so any of them locks all of it.
    if cfg.global_defs.no_swap {
        use rustix::mm::{mlockall, MlockAllFlags};
        match mlockall(MlockAllFlags::CURRENT | MlockAllFlags::FUTURE) {
            Ok(()) => tracing::info!("memory locked (no_swap)"),
            Err(e) => tracing::warn!(
                "no_swap: cannot lock memory: {e} (needs CAP_IPC_LOCK or a larger RLIMIT_MEMLOCK)"
            ),
        }
    }
    // static_ipaddress / static_rules / static_routes: installed at start, kept at stop (keepalived's).
    for e in rvs_vrrpd::link::install_static(cfg).await {
        tracing::error!("{e}");
    }
    let mut checkers = Checkers::new();
    let mut core = Core::new(
        cfg.clone(),
        if a.vrrp_only {
            Mode::VrrpOnly
        } else {
            Mode::Full
        },
    );
    // E-mail alerts (notification_email + smtp_server); counted across reloads.
    let alert_counters = std::sync::Arc::new(rvs_alert::Counters::default());
    let mut alerts = crate::daemon::alerts::Alerts::from_config(core.config(), &alert_counters)
        .map(std::sync::Arc::new);
    checkers.alerts.clone_from(&alerts);
    // VRRP's track_bfd needs the BFD sessions even without checkers (-P).
    let bfd = checkers.start_bfd(core.config());
    if !a.vrrp_only {
        let (plan, fx) = core.reconcile_checkers(&bfd);
        checkers.ha_suspend(core.config());
        checkers.apply(core.config(), core.policy(), plan);
        checkers.carry_out(&core, fx);
        if let Err(errs) = proxy.apply(&core.desired()).await {
            for e in &errs {
                tracing::error!("{e}");
            }
            drop(listener);
            return Err(cleanup(anyhow::anyhow!(
                "cannot start: {} listener(s) failed",
                errs.len()
            )));
        }
    }
    // VRRP after the data plane: by the time this director can become MASTER and draw
    // traffic to the VIP, its services listen.
    // The FIFO readers first: they see every line from the first transition on.
    let fifo_scripts = crate::daemon::fifo::FifoScripts::start(cfg);
    let vrrp_status = std::sync::Arc::default();
    let mut vrrp = crate::daemon::threads::VrrpHost::default();
    if !vrrp_plan.is_empty() {
        if let Err(e) = vrrp
            .start(
                &cfg.global_defs,
                vrrp_plan,
                std::sync::Arc::clone(&vrrp_status),
                checkers.bfd_registry.clone(),
                carried_vrrp.take(),
            )
            .await
        {
            drop(listener);
            vrrp.stop().await;
            return Err(cleanup(anyhow::anyhow!("cannot start VRRP: {e}")));
        }
    }
    // Signal handlers before the pid file: whoever reads the pid may signal at once.
    let mut hup = signal(SignalKind::hangup())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    // keepalived's dump signals: data, stats, JSON (`keepalived --signum=JSON`).
    let mut usr1 = signal(SignalKind::user_defined1())?;
    let mut usr2 = signal(SignalKind::user_defined2())?;
    let mut json_sig = signal(SignalKind::from_raw(libc::SIGRTMIN() + 2))?;
    // RLIMIT_RTTIME's soft limit (half of *_rlimit_rttime) warns a real-time thread
    // before the kernel kills the process at the hard one, as keepalived logs it.
    let mut xcpu = signal(SignalKind::from_raw(libc::SIGXCPU))?;
    let pid_file = a.pid_file.clone().unwrap_or_else(|| {
        // use_pid_dir: in the run directory, beside the control socket (as root).
        let default = if cfg.global_defs.use_pid_dir && rustix::process::getuid().is_root() {
            PathBuf::from("/run/rvs/rvs.pid")
        } else {
            default_pid_file()
        };
        own_file(cfg, &default)
    });
    let conf_abs = std::fs::canonicalize(&a.file).unwrap_or_else(|_| a.file.clone());
    if let Some(dir) = pid_file.parent().filter(|d| !d.as_os_str().is_empty()) {
        let _ = std::fs::create_dir_all(dir);
    }
    // Written aside and renamed: a reader (`rvs reload`, a test) never sees it half-written.
    let staged = pid_file.with_extension(format!("tmp.{}", std::process::id()));
    std::fs::write(
        &staged,
        format!("{}\n{}\n", std::process::id(), conf_abs.display()),
    )
    .and_then(|()| std::fs::rename(&staged, &pid_file))
    .with_context(|| format!("writing the pid file {}", pid_file.display()))?;
    // A reload file left by a daemon that died while reading is stale (keepalived too
    // removes it at start).
    if let Some(f) = reload_file_of(cfg) {
        let _ = std::fs::remove_file(f);
    }
    tracing::info!(
        "rvs {} running {} (pid {}, pid file {})",
        env!("CARGO_PKG_VERSION"),
        a.file.display(),
        std::process::id(),
        pid_file.display()
    );
    let (ctl_tx, mut ctl_rx) = tokio::sync::mpsc::channel(8);
    // The sync daemons' rvs extensions, from the configuration (again at each reload).
    proxy.snapshots.sync_ext.store(std::sync::Arc::new(
        crate::daemon::dataplane::sync::SyncExt::of(&core.config().global_defs),
    ));
    let g = &core.config().global_defs;
    if (!g.sync_peers.is_empty() || g.sync_key.is_some()) && proxy.kind() != Kind::Xdp {
        tracing::warn!(
            "rvs_sync_peer and rvs_sync_key apply to the XDP data plane's sync daemons; \
             with --dataplane {} they are not used (the kernel's sync daemon multicasts, \
             unsigned)",
            proxy.kind().name()
        );
    }
    let ctx = std::sync::Arc::new(crate::daemon::control::Ctx {
        shared: proxy.shared().clone(),
        conf: conf_abs.clone(),
        started: std::time::Instant::now(),
        tx: ctl_tx,
        status: std::sync::Mutex::default(),
        vrrp: vrrp_status.clone(),
        bfd: checkers.bfd_status.clone(),
        snapshots: proxy.snapshots.clone(),
        vrrp_enabled: !a.check_only,
        dataplane: (!a.vrrp_only).then(|| proxy.kind()),
        xdp: xdp_attach,
        alerts: alert_counters.clone(),
        config: arc_swap::ArcSwap::from_pointee(core.config().clone()),
        drift: std::sync::Arc::default(),
        bgp: std::sync::Arc::default(),
    });
    publish_health(&ctx, &core, &checkers);
    // rvs_bgp: BIRD announces the VIPs this director serves (nothing with -P).
    let mut bgp = core
        .config()
        .bgp
        .as_ref()
        .filter(|_| !a.vrrp_only)
        .map(|b| crate::daemon::bgp::Bgp::start(b, &control_path, ctx.bgp.clone()));
    // The servers stop accepting when `stop` is cancelled; `tasks` waits for them.
    let stop = tokio_util::sync::CancellationToken::new();
    let tasks = tokio_util::task::TaskTracker::new();
    // rvs_config_drift_peer: the configuration compared with the peer directors'.
    crate::daemon::drift::start(&ctx, &stop, &tasks);
    // SNMP: the AgentX subagent reads the running config and the VRRP status per request.
    let mut snmp = crate::daemon::snmp::Agent::start(core.config(), &ctx, &stop, &tasks);
    checkers.set_snmp(snmp.as_ref().map(|a| a.handle.clone()));
    // reload_time_file: a reload at the time the file gives, as on SIGHUP.
    let mut reload_watch =
        crate::daemon::reload_time::Watch::start(core.config(), &ctx.tx, &stop, &tasks);
    let mut traps = crate::daemon::snmp::Traps::default();
    // DBus: keepalived's service on the system bus (`enable_dbus`).
    let mut dbus = if core.config().global_defs.enable_dbus && !a.check_only {
        start_dbus(&ctx).await
    } else {
        None
    };
    if let Some(l) = metrics_listener {
        tasks.spawn(crate::daemon::metrics::serve(l, ctx.clone(), stop.clone()));
    }
    tasks.spawn(crate::daemon::control::serve(
        listener,
        ctx.clone(),
        stop.clone(),
    ));
    tasks.close();
    tracing::info!("control API on {}", control_path.display());
    // systemd (Type=notify): everything is up; the watchdog is pinged from this loop.
    let mut sd = crate::daemon::systemd::Notifier::from_env();
    let sd_status = |core: &Core| {
        let v = vrrp_status.lock().map(|v| v.clone()).unwrap_or_default();
        crate::daemon::systemd::status_line(&v, &core.servers())
    };
    sd.ready(|| sd_status(&core));
    let mut watchdog = sd.watchdog_every().map(tokio::time::interval);
    let status = reload_status_path(&pid_file);
    // The reload counter starts again: a predecessor's (after `rvs upgrade`) is not ours.
    let _ = std::fs::remove_file(&status);
    let mut generation: u64 = 0;
    // Set when a successor took the listening sockets: it owns the files and the
    // kernel's state from then on.
    let mut handed_over = false;
    // lvs_sync_daemon: the kernel's sync daemon follows a VRRP instance, and VRRP instances
    // waiting for their interface are started (both checked each second).
    let mut sync_tick = tokio::time::interval(Duration::from_secs(1));
    let mut sync_role: Option<bool> = None;
    // keepalived's checker process watches the host's addresses (netlink, its buffer set
    // by lvs_netlink_monitor_rcv_bufs): ha_suspend follows a VIP the moment it comes or
    // goes, not at the next tick.
    let (addr_tx, mut addr_rx) = tokio::sync::mpsc::unbounded_channel();
    if !a.vrrp_only {
        let bufs = core.config().global_defs.lvs_netlink_monitor_rcv_bufs;
        if let Err(e) = rvs_vrrpd::link::addr_monitor_sized(addr_tx, bufs) {
            tracing::warn!(
                "no address monitor for the checkers ({e}): ha_suspend follows each second"
            );
        }
    }
    // A reload reads the file off the runtime (`read_config`) while this loop goes on
    // serving health events, commands and signals; reload requests that arrive meanwhile
    // share the read under way and get its answer.
    let mut reading: Option<ConfigRead> = None;
    let mut waiting: Vec<Option<tokio::sync::oneshot::Sender<ReloadReport>>> = Vec::new();
    loop {
        // SIGHUP and `POST /v1/reload` take the same path (the latter gets the message).
        let mut reload_reply: Option<Option<tokio::sync::oneshot::Sender<ReloadReport>>> = None;
        let mut read_done: Option<Result<rvs_conf::Parsed, String>> = None;
        tokio::select! {
            _ = hup.recv() => reload_reply = Some(None),
            r = async {
                match reading.as_mut() {
                    Some(f) => f.await,
                    None => std::future::pending().await,
                }
            }, if reading.is_some() => {
                reading = None;
                read_done = Some(r);
            }
            Some(ev) = checkers.rx.recv() => {
                let mut fx = Vec::new();
                let changed = core.event(&ev, crate::clock::unix_s(), &mut fx);
                checkers.carry_out(&core, fx);
                publish_health(&ctx, &core, &checkers);
                if changed {
                    if let Err(errs) = proxy.apply(&core.desired()).await {
                        for e in &errs {
                            tracing::error!("{e}");
                        }
                    }
                }
            }
            Some(req) = ctl_rx.recv() => match req {
                crate::daemon::control::Request::Reload(reply) => reload_reply = Some(Some(reply)),
                crate::daemon::control::Request::Command(cmd, reply) => {
                    let _ = reply.send(runtime_command(&mut proxy, &mut core, cmd).await);
                }
                crate::daemon::control::Request::Drain(on, reply) => {
                    let _ = reply.send(match &bgp {
                        Some(b) => {
                            core.set_drained(on);
                            b.drained(on);
                            Ok(())
                        }
                        None => Err("no rvs_bgp in the configuration: this director announces nothing".to_owned()),
                    });
                }
                crate::daemon::control::Request::Upgrade(binary, reply) => {
                    let _ = reply.send(start_successor(binary.as_deref()));
                }
                crate::daemon::control::Request::Plan(file, parsed, reply) => {
                    let vrrp_now = vrrp_status.lock().map(|v| v.clone()).unwrap_or_default();
                    let now = crate::daemon::plan::Running {
                        core: &core,
                        bfd: &checkers.bfd_sessions(),
                        vrrp: &vrrp_now,
                        vrrp_enabled: !a.check_only,
                    };
                    let _ = reply.send(crate::daemon::plan::plan(&now, &file, *parsed));
                }
            },
            Some(_) = addr_rx.recv() => {
                while addr_rx.try_recv().is_ok() {}
                checkers.ha_suspend(core.config());
            }
            _ = sync_tick.tick() => {
                follow_sync_daemon(&mut proxy, core.config(), &vrrp_status, &mut sync_role).await;
                // ha_suspend: checkers follow their virtual server's address.
                checkers.ha_suspend(core.config());
                if let (Some(al), Ok(st)) = (&alerts, vrrp_status.lock()) {
                    al.vrrp(core.config(), &st);
                    al.split_brain(core.config(), &st);
                }
                if let Some(al) = &alerts {
                    al.drift(&ctx.drift);
                }
                if let (Some(ag), Ok(st)) = (&snmp, vrrp_status.lock()) {
                    for t in traps.due(core.config(), &st) {
                        ag.handle.trap(t);
                    }
                }
                if let Some(d) = &mut dbus {
                    let st = vrrp_status.lock().map(|v| v.clone()).unwrap_or_default();
                    d.states(&st).await;
                }
                // Instances waiting for their interface start once it can carry them.
                if let Some(msg) = vrrp.poll_waiting().await {
                    tracing::info!("{msg}");
                }
                // systemd's STATUS= line (sent when it changed).
                sd.status(|| sd_status(&core));
            }
            _ = usr1.recv() => dump(crate::daemon::dumps::Dump::Data, core.config(), &vrrp_status),
            _ = usr2.recv() => dump(crate::daemon::dumps::Dump::Stats, core.config(), &vrrp_status),
            _ = json_sig.recv() => dump(crate::daemon::dumps::Dump::Json, core.config(), &vrrp_status),
            _ = xcpu.recv() => tracing::warn!(
                "a real-time thread (VRRP or BFD) ran for half its *_rlimit_rttime without \
                 blocking: at the limit the kernel kills rvs"
            ),
            _ = async {
                match watchdog.as_mut() {
                    Some(w) => w.tick().await,
                    None => std::future::pending().await,
                }
            } => sd.ping(),
            Ok((stream, _)) = upgrade_listener.accept() => {
                let ends = Ends { stop: &stop, tasks: &tasks, control_path: &control_path, bpffs: &a.bpffs };
                match hand_over(stream, &mut proxy, &mut vrrp, ends).await {
                    Ok(successor) => {
                        tracing::info!(
                            "handed over to rvs pid {successor}: draining established connections"
                        );
                        sd.main_pid(successor);
                        handed_over = true;
                        break;
                    }
                    Err(f) => {
                        tracing::error!("upgrade failed, going on: {:#}", f.why);
                        take_back(
                            f,
                            &mut proxy,
                            &mut vrrp,
                            &core,
                            &vrrp_status,
                            checkers.bfd_registry.clone(),
                        )
                        .await;
                    }
                }
            }
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
        if let Some(reply) = reload_reply {
            waiting.push(reply);
            if reading.is_none() {
                sd.reloading();
                reading = Some(read_config(&a.file, reload_file_of(core.config())));
            }
        }
        if let Some(parsed) = read_done {
            generation += 1;
            save_config(&ctx, core.config(), generation, false).await;
            let data = reload(&mut proxy, &mut core, &mut checkers, a, parsed).await;
            let vrrp_part = reload_vrrp(
                &mut vrrp,
                &vrrp_status,
                &checkers.bfd_registry,
                core.config(),
                a,
                &data,
            )
            .await;
            let report = ReloadReport {
                data,
                vrrp: vrrp_part,
            };
            save_config(&ctx, core.config(), generation, true).await;
            // The alerts follow the configuration now running (what was mailed is kept).
            let next = crate::daemon::alerts::Alerts::from_config(core.config(), &alert_counters);
            alerts = next.map(|n| {
                if let Some(old) = &alerts {
                    n.carry(old);
                }
                std::sync::Arc::new(n)
            });
            checkers.alerts.clone_from(&alerts);
            publish_health(&ctx, &core, &checkers);
            publish_reload(&ctx, report.is_ok());
            ctx.config.store(std::sync::Arc::new(core.config().clone()));
            ctx.snapshots.sync_ext.store(std::sync::Arc::new(
                crate::daemon::dataplane::sync::SyncExt::of(&core.config().global_defs),
            ));
            crate::daemon::snmp::Agent::follow(&mut snmp, core.config(), &ctx, &stop, &tasks);
            checkers.set_snmp(snmp.as_ref().map(|a| a.handle.clone()));
            reload_watch.follow(core.config(), &ctx.tx, &stop, &tasks);
            // DBus follows too: switched on or off, or another service name.
            let g = &core.config().global_defs;
            let want = g.enable_dbus && !a.check_only;
            let name = g
                .dbus_service_name
                .clone()
                .unwrap_or_else(|| crate::daemon::dbus::SERVICE.to_owned());
            if dbus.as_ref().is_some_and(|d| !want || d.name() != name) {
                if let Some(d) = dbus.take() {
                    d.stop().await;
                }
            }
            match &mut dbus {
                Some(d) => d.reloaded(core.config()).await,
                None if want => dbus = start_dbus(&ctx).await,
                None => {}
            }
            write_reload_status(
                &status,
                &ReloadStatus {
                    generation,
                    ok: report.is_ok(),
                    message: report.message(),
                },
            );
            for r in waiting.drain(..).flatten() {
                let _ = r.send(report.clone());
            }
            // rvs_bgp follows: started, reconfigured or stopped.
            match (
                &mut bgp,
                core.config().bgp.as_ref().filter(|_| !a.vrrp_only),
            ) {
                (Some(b), Some(conf)) => b.follow(conf, &control_path),
                (None, Some(conf)) => {
                    let b = crate::daemon::bgp::Bgp::start(conf, &control_path, ctx.bgp.clone());
                    b.drained(core.drained());
                    bgp = Some(b);
                }
                (Some(_), None) => {
                    if let Some(mut b) = bgp.take() {
                        b.stop().await;
                    }
                }
                (None, None) => {}
            }
            sd.ready(|| sd_status(&core));
        }
        // What the routers are to be told, from what the data plane serves now.
        if let Some(b) = &mut bgp {
            b.want(core.announcements(&core.desired(), |v| proxy.serves(v)));
        }
    }
    // rvs_bgp: the routers are told first, and the director serves on while they move
    // new connections away (withdraw_delay); then VRRP, the checkers and the drain.
    if let Some(mut b) = bgp.take() {
        if handed_over {
            b.stop().await;
        } else {
            b.shutdown().await;
        }
    }
    sd.stopping(a.drain);
    if sync_role.is_some() {
        for state in ["master", "backup"] {
            let _ = proxy
                .command(&rvs_adm::cmd::Command::StopDaemon {
                    state: state.into(),
                    syncid: 0,
                })
                .await;
        }
    }
    // keepalived's parent waits child_wait_time for each child process to exit: rvs
    // waits as long for each part that is one (VRRP; the checkers and their scripts).
    let child_wait = core.config().global_defs.child_wait_time;
    // VRRP first: a MASTER hands the VIP over (priority-0 advert) before the drain.
    if vrrp.is_running() && tokio::time::timeout(child_wait, vrrp.stop()).await.is_err() {
        tracing::warn!("VRRP did not stop within child_wait_time ({child_wait:?}): going on");
    }
    if let Some(d) = dbus.take() {
        d.stop().await;
    }
    if let Some(al) = &alerts {
        al.stopping(core.config());
        al.flush(Duration::from_secs(5)).await;
    }
    // BFD neighbours hear AdminDown and take this director's sessions down at once.
    checkers.stop_bfd().await;
    checkers.stop();
    // The FIFO readers have had the last lines (STOP).
    fifo_scripts.stop().await;
    // keepalived's omega: notify_down / quorum_down of the services going away.
    crate::daemon::health::run_scripts(&core.policy(), &core.shutdown_scripts(), child_wait).await;
    tracing::info!(
        "stopping: no new connections, draining for up to {} s",
        a.drain
    );
    let drain = Duration::from_secs_f64(a.drain.clamp(0.0, 3600.0));
    if handed_over {
        proxy.leave(drain).await;
    } else {
        proxy.shutdown(drain).await;
    }
    stop.cancel();
    if tokio::time::timeout(Duration::from_secs(2), tasks.wait())
        .await
        .is_err()
    {
        tracing::debug!("the control and metrics servers did not stop within 2 s");
    }
    // keepalived's shutdown_script: after everything else has stopped, waited for.
    if let Some(sc) = &core.config().global_defs.shutdown_script {
        crate::daemon::health::run_and_wait(
            &core.policy(),
            "shutdown_script",
            sc,
            core.config().global_defs.shutdown_script_timeout,
        )
        .await;
    }
    if !handed_over {
        let _ = std::fs::remove_file(&upgrade_path);
        let _ = std::fs::remove_file(&control_path);
        let _ = std::fs::remove_file(&status);
    }
    // The pid file is the successor's once it wrote its own.
    if read_pid(&pid_file) == Some(std::process::id()) {
        let _ = std::fs::remove_file(&pid_file);
    }
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// `--dataplane xdp` without `--xdp-iface`: the one interface the kernel routes every
/// real server through (and that holds the VIPs it holds), as in LVS-DR only one link
/// reaches them; else the interface of the first `vrrp_instance` when no route says;
/// several interfaces are refused with where each address goes.
async fn xdp_iface_of(cfg: &rvs_conf::Config) -> Result<rvs_api::XdpAttach> {
    use rvs_conf::model::VsKey;
    let mut real = Vec::new();
    let mut vips = Vec::new();
    for vs in &cfg.virtual_servers {
        if let VsKey::Address { address, .. } = vs.key {
            vips.push(address);
        }
        real.extend(vs.real_servers.iter().map(|r| r.address));
        real.extend(vs.sorry_server.iter().map(|s| s.address));
    }
    let seen = rvs_xdp::iface::routes(&real, &vips)
        .await
        .context("reading the routes to the real servers")?;
    match rvs_xdp::iface::choose(&seen) {
        Ok(interface) => Ok(rvs_api::XdpAttach {
            interface,
            chosen_by: "route to the real servers".to_owned(),
        }),
        Err(rvs_xdp::iface::ChooseError::NoRoute) => cfg
            .vrrp_instances
            .iter()
            .find_map(|v| {
                v.interface.clone().map(|interface| rvs_api::XdpAttach {
                    interface,
                    chosen_by: format!("vrrp_instance {}", v.name),
                })
            })
            .ok_or_else(|| rvs_xdp::iface::ChooseError::NoRoute.into()),
        Err(e) => Err(e.into()),
    }
}

/// The pid a pid file names (its first line).
fn read_pid(path: &Path) -> Option<u32> {
    std::fs::read_to_string(path)
        .ok()?
        .lines()
        .next()?
        .trim()
        .parse()
        .ok()
}

/// `POST /v1/upgrade`: starts the binary now installed where this one was (or `binary`)
/// with this process's arguments and environment and `RVS_TAKEOVER=1`; it connects back
/// for the hand-over. Returns its pid.
fn start_successor(binary: Option<&Path>) -> Result<u32, String> {
    use std::os::unix::process::CommandExt as _;
    let exe = if let Some(b) = binary {
        b.to_path_buf()
    } else {
        // After a package upgrade /proc/self/exe names the replaced file "(deleted)":
        // the new binary is at the same path.
        let link = std::fs::read_link("/proc/self/exe").map_err(|e| e.to_string())?;
        let text = link.to_string_lossy();
        PathBuf::from(text.strip_suffix(" (deleted)").unwrap_or(&text))
    };
    let mut args = std::env::args_os();
    let argv0 = args.next().unwrap_or_else(|| exe.clone().into_os_string());
    let mut child = std::process::Command::new(&exe)
        .arg0(argv0)
        .args(args)
        .env(crate::daemon::upgrade::ENV, "1")
        .stdin(std::process::Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", exe.display()))?;
    let pid = child.id();
    tracing::info!("upgrade: started {} as pid {pid}", exe.display());
    // A successor that fails is reaped (`rvs upgrade` sees it gone at once); one that
    // takes over outlives this process and is reparented.
    let _ = std::thread::Builder::new()
        .name("rvs-successor".into())
        .spawn(move || {
            if let Ok(st) = child.wait() {
                tracing::warn!("the successor (pid {pid}) exited before taking over: {st}");
            }
        });
    Ok(pid)
}

/// What a failed hand-over gives back, so the daemon goes on as it was.
struct HandoverFailed {
    why: anyhow::Error,
    socks: Vec<(rvs_sched::SvcKey, std::os::fd::OwnedFd)>,
    carried: Option<Vec<rvs_vrrpd::Carried>>,
}

/// After a failed hand-over nothing was handed over: listen again on the same sockets
/// and start VRRP where it stopped (a MASTER stays MASTER).
async fn take_back(
    f: HandoverFailed,
    proxy: &mut Dataplane,
    vrrp: &mut crate::daemon::threads::VrrpHost,
    core: &Core,
    status: &std::sync::Arc<std::sync::Mutex<Vec<rvs_vrrpd::InstanceStatus>>>,
    bfd: rvs_bfd::driver::Registry,
) {
    // The XDP program takes its link back (and its own program again in it).
    proxy.release_pins(false).await;
    proxy.adopt(f.socks);
    if let Err(errs) = proxy.apply(&core.desired()).await {
        for e in &errs {
            tracing::error!("{e}");
        }
    }
    let Some(carried) = f.carried else { return };
    let restarted = match rvs_vrrpd::plan(core.config()) {
        Ok(plan) => {
            vrrp.start(
                &core.config().global_defs,
                plan,
                std::sync::Arc::clone(status),
                bfd,
                Some(carried),
            )
            .await
        }
        Err(errs) => Err(errs
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")),
    };
    if let Err(e) = restarted {
        tracing::error!("VRRP could not start again: {e}");
    }
}

/// The old side of `rvs upgrade`: stops accepting, leaves VRRP as a reload keeps it and
/// sends the listening sockets and the instances to the successor; only once they are
/// sent does it stop its API servers (the successor waits to bind their socket and port).
/// Returns the successor's pid; on a failure, what to take back.
/// What the old side of an upgrade stops or uses once the successor has everything.
struct Ends<'a> {
    /// Stops the control and metrics servers ...
    stop: &'a tokio_util::sync::CancellationToken,
    /// ... tracked here.
    tasks: &'a tokio_util::task::TaskTracker,
    control_path: &'a Path,
    /// Where the XDP program's maps and link are pinned for the successor.
    bpffs: &'a Path,
}

async fn hand_over(
    stream: tokio::net::UnixStream,
    proxy: &mut Dataplane,
    vrrp: &mut crate::daemon::threads::VrrpHost,
    ends: Ends<'_>,
) -> Result<u32, HandoverFailed> {
    let Ends {
        stop,
        tasks,
        control_path,
        bpffs,
    } = ends;
    let early = |why: anyhow::Error| HandoverFailed {
        why,
        socks: Vec::new(),
        carried: None,
    };
    crate::daemon::control::peer_allowed(&stream).map_err(|e| early(anyhow::Error::msg(e)))?;
    let successor = stream
        .peer_cred()
        .ok()
        .and_then(|c| c.pid())
        .and_then(|p| u32::try_from(p).ok())
        .ok_or_else(|| early(anyhow::anyhow!("the successor's pid is unknown")))?;
    let mut std_stream = stream
        .into_std()
        .and_then(|s| s.set_nonblocking(false).map(|()| s))
        .map_err(|e| early(e.into()))?;
    // XDP: the maps and the link pinned for the successor to load its program on; the
    // program goes on forwarding meanwhile. Refused (no BPF file system, an old kernel):
    // nothing was given away.
    let xdp = proxy
        .pin_for_upgrade(&rvs_xdp::pin_dir(bpffs, std::process::id()))
        .await
        .map_err(|e| early(anyhow::Error::msg(e)))?;
    let socks = proxy.hand_over();
    // VRRP last before the message: the successor's instances start where these stop
    // (a MASTER keeps its VIPs; the successor adverts within the peers' master-down time).
    let was_running = vrrp.is_running();
    let carried = vrrp.leave_for_upgrade().await;
    let h = crate::daemon::upgrade::Handover {
        pid: std::process::id(),
        services: socks.iter().map(|(k, _)| *k).collect(),
        vrrp: carried.clone(),
        xdp,
    };
    let (sent, socks, mut std_stream) = tokio::task::spawn_blocking(move || {
        let fds: Vec<_> = socks
            .iter()
            .map(|(_, f)| std::os::fd::AsFd::as_fd(f))
            .collect();
        let r = crate::daemon::upgrade::send(&mut std_stream, &h, &fds);
        (r, socks, std_stream)
    })
    .await
    .map_err(|e| early(e.into()))?;
    if let Err(why) = sent {
        return Err(HandoverFailed {
            why,
            socks,
            carried: was_running.then_some(carried),
        });
    }
    drop(socks);
    // The successor holds the XDP link now: the pins go, and this program's hold on it.
    proxy.release_pins(true).await;
    // Confirmed: the control socket and the metrics port are the successor's now. The
    // files go first (nobody new reaches this process's servers), then the servers; the
    // successor binds once told DONE, so it never loses its socket file to this process.
    let _ = std::fs::remove_file(crate::daemon::upgrade::path_of(control_path));
    let _ = std::fs::remove_file(control_path);
    stop.cancel();
    if tokio::time::timeout(Duration::from_secs(2), tasks.wait())
        .await
        .is_err()
    {
        tracing::debug!("the control and metrics servers did not stop within 2 s");
    }
    if let Err(e) = crate::daemon::upgrade::done(&mut std_stream) {
        tracing::warn!("telling the successor its sockets are free: {e}");
    }
    Ok(successor)
}

/// Writes a keepalived dump off the runtime.
fn dump(
    which: crate::daemon::dumps::Dump,
    cfg: &rvs_conf::Config,
    vrrp: &std::sync::Arc<std::sync::Mutex<Vec<rvs_vrrpd::InstanceStatus>>>,
) {
    let now = vrrp.lock().map(|v| v.clone()).unwrap_or_default();
    which.spawn_write(std::sync::Arc::new(cfg.clone()), now);
}

/// Applies an `rvs adm` command on top of the running state; refused commands change
/// nothing.
async fn runtime_command(
    proxy: &mut Dataplane,
    core: &mut Core,
    cmd: rvs_adm::cmd::Command,
) -> Result<(), String> {
    if let Some(r) = proxy.command(&cmd).await {
        return r;
    }
    let want = core.propose(&cmd).map_err(str::to_owned)?;
    if let rvs_adm::cmd::Command::Zero(id) = &cmd {
        let only = *id;
        for ((k, _), c) in proxy.shared().all_counters() {
            if only.is_none_or(|o| o == k) {
                c.zero();
            }
        }
        return Ok(());
    }
    if let Err(list) = proxy.apply(&want).await {
        // A command applies whole or not at all (as the kernel's IPVS commands do): put
        // back what ran before it, so the table, the overlay and later replays agree.
        if let Err(again) = proxy.apply(&core.desired()).await {
            tracing::error!(
                "rolling back a refused runtime change: {}",
                ApplyError::messages(&again).join("; ")
            );
        }
        return Err(ApplyError::messages(&list).join("; "));
    }
    core.commit(cmd);
    Ok(())
}

/// keepalived's `DBus` service, if the system bus answers within 5 s (a bus that does not
/// must not hold the daemon up).
async fn start_dbus(
    ctx: &std::sync::Arc<crate::daemon::control::Ctx>,
) -> Option<crate::daemon::dbus::Service> {
    match tokio::time::timeout(
        Duration::from_secs(5),
        crate::daemon::dbus::Service::start(ctx.clone()),
    )
    .await
    {
        Ok(Ok(s)) => Some(s),
        Ok(Err(e)) => {
            tracing::error!("DBus not served: {e}");
            None
        }
        Err(_) => {
            tracing::error!("DBus not served: the system bus did not answer within 5 s");
            None
        }
    }
}

/// The checkers' and real servers' state, for the metrics, `rvs status` and SNMP.
fn publish_health(ctx: &crate::daemon::control::Ctx, core: &Core, checkers: &Checkers) {
    let checks = core.report(|k| checkers.figures(k));
    let servers = core.servers();
    ctx.publish(|st| {
        st.checks = checks;
        st.servers = servers;
    });
}

fn publish_reload(ctx: &crate::daemon::control::Ctx, ok: bool) {
    let now = crate::clock::unix_s();
    ctx.publish(|st| {
        if ok {
            st.reloads_ok += 1;
            st.last_reload_unix = now;
        } else {
            st.reloads_failed += 1;
        }
    });
}

/// keepalived's `lvs_sync_daemon IFNAME INSTANCE`: the kernel's connection sync daemon
/// runs as master while the instance is MASTER and as backup otherwise (a role change
/// stops the other daemon first). Only with the kernel-IPVS data plane.
async fn follow_sync_daemon(
    proxy: &mut Dataplane,
    cfg: &rvs_conf::Config,
    vrrp: &std::sync::Arc<std::sync::Mutex<Vec<rvs_vrrpd::InstanceStatus>>>,
    role: &mut Option<bool>,
) {
    use rvs_adm::cmd::{Command, SyncDaemon};
    let Some(ls) = &cfg.global_defs.lvs_sync_daemon else {
        return;
    };
    let Some(instance) = &ls.instance else {
        return;
    };
    let Some((master, vrid)) = vrrp.lock().ok().and_then(|v| {
        v.iter()
            .find(|i| &i.name == instance)
            .map(|i| (i.state == rvs_vrrp::State::Master, i.vrid))
    }) else {
        return;
    };
    if *role == Some(master) {
        return;
    }
    let (state, other) = if master {
        ("master", "backup")
    } else {
        ("backup", "master")
    };
    let syncid = ls.id.unwrap_or(vrid);
    let _ = proxy
        .command(&Command::StopDaemon {
            state: other.into(),
            syncid,
        })
        .await;
    let start = Command::StartDaemon(SyncDaemon {
        state: state.into(),
        ifname: ls.interface.clone(),
        syncid,
        maxlen: ls.maxlen.unwrap_or(0),
        group: ls.group,
        port: ls.port.unwrap_or(0),
        ttl: ls.ttl.unwrap_or(0),
    });
    match proxy.command(&start).await {
        Some(Ok(())) => {
            tracing::info!(
                "lvs_sync_daemon: {state} sync daemon on {} (syncid {syncid})",
                ls.interface
            );
            *role = Some(master);
        }
        Some(Err(e)) if e == "Daemon has already run" => *role = Some(master),
        Some(Err(e)) => tracing::error!("lvs_sync_daemon: starting the {state} sync daemon: {e}"),
        None => {}
    }
}

/// How long reading and parsing the configuration may take on a reload before it is
/// refused (a file that never ends, a FIFO the top-level name points at).
const READ_DEADLINE: Duration = Duration::from_secs(30);

/// A configuration being read for a reload.
type ConfigRead =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<rvs_conf::Parsed, String>> + Send>>;

/// Reads and parses the configuration on a thread of its own, never on the async
/// runtime: the daemon goes on answering (and obeys SIGTERM) however long it takes, and
/// gives up after [`READ_DEADLINE`] (the thread is left to finish on its own).
///
/// `reload_file` (the running configuration's): created, or truncated, before the files
/// are read and removed once they are (also the new configuration's, if it names
/// another), so that whoever edits the files knows when rvs has read them.
fn read_config(path: &Path, reload_file: Option<PathBuf>) -> ConfigRead {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let owned = path.to_path_buf();
    let shown = path.display().to_string();
    let started = std::thread::Builder::new()
        .name("rvs-config".into())
        .spawn(move || {
            if let Some(f) = &reload_file {
                use std::os::unix::fs::OpenOptionsExt as _;
                let made = std::fs::OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .mode(0o644)
                    .open(f);
                if let Err(e) = made {
                    tracing::info!("Failed to create reload file ({}): {e}", f.display());
                }
            }
            let parsed = rvs_conf::parse_file(&owned, &rvs_conf::Options::default());
            let new = reload_file_of(&parsed.config);
            for f in reload_file.iter().chain(new.iter()) {
                let _ = std::fs::remove_file(f);
            }
            let _ = tx.send(parsed);
        });
    Box::pin(async move {
        started.map_err(|e| format!("cannot start reading {shown}: {e}"))?;
        match tokio::time::timeout(READ_DEADLINE, rx).await {
            Ok(Ok(p)) => Ok(p),
            Ok(Err(_)) => Err(format!("reading {shown} failed")),
            Err(_) => Err(format!(
                "reading {shown} took more than {} s",
                READ_DEADLINE.as_secs()
            )),
        }
    })
}

/// Applies a re-read config by difference, or keeps the running one on errors: the
/// core decides, then BFD, the checkers and the data plane follow.
async fn reload(
    proxy: &mut Dataplane,
    core: &mut Core,
    checkers: &mut Checkers,
    a: &RunArgs,
    parsed: Result<rvs_conf::Parsed, String>,
) -> DataReload {
    let path = a.file.as_path();
    if let Ok(p) = &parsed {
        // As keepalived: the namespaces are entered at start; a reload cannot move them.
        let (was, now) = (&core.config().global_defs, &p.config.global_defs);
        if was.net_namespace != now.net_namespace
            || was.net_namespace_ipvs != now.net_namespace_ipvs
            || was.instance != now.instance
        {
            tracing::warn!(
                "net_namespace, net_namespace_ipvs and instance cannot change on a reload: \
                 restart rvs for the new ones (it goes on where it is)"
            );
        }
        let settings = |g: &rvs_conf::model::GlobalDefs| {
            (
                g.vrrp_process.clone(),
                g.checker_process.clone(),
                g.bfd_process.clone(),
                g.process_name.clone(),
                [g.vrrp_priority, g.checker_priority, g.bfd_priority],
            )
        };
        if settings(was) != settings(now) {
            tracing::warn!(
                "process settings (*_priority, *_rt_priority, *_cpu_affinity, *_rlimit_rttime, \
                 *_process_name) are applied at start: restart rvs for the new ones"
            );
        }
    }
    // reload_check_config: what keepalived's check says of a file it rejects goes to the
    // log file (replaced, as keepalived's check process writes it anew).
    if let Ok(p) = &parsed {
        if let Some(log) = core.failed_validation(p) {
            let (log, text) = (log.to_owned(), p.render());
            let _ = tokio::task::spawn_blocking(move || {
                if let Err(e) = std::fs::write(&log, text) {
                    tracing::warn!("reload_check_config: writing {log}: {e}");
                }
            })
            .await;
        }
    }
    let fx = match core.reload(path, parsed) {
        Ok(fx) => fx,
        Err(msg) => return DataReload::Refused(msg),
    };
    // The removed real servers' notify_down: started, not waited for.
    checkers.carry_out(core, fx);
    let bfd = checkers.start_bfd(core.config());
    if a.vrrp_only {
        return DataReload::VrrpOnly;
    }
    for id in checkers.ended() {
        core.checker_ended(id);
    }
    let (plan, fx) = core.reconcile_checkers(&bfd);
    checkers.ha_suspend(core.config());
    checkers.apply(core.config(), core.policy(), plan);
    checkers.carry_out(core, fx);
    match proxy.apply(&core.desired()).await {
        Ok(r) => {
            let done = DataReload::Applied(r);
            let shown = ReloadReport {
                data: done.clone(),
                vrrp: VrrpReload::NotRun,
            };
            tracing::info!("reloaded {}: {}", path.display(), shown.message());
            done
        }
        Err(errs) => {
            let list = ApplyError::messages(&errs);
            tracing::error!("reload applied with errors: {}", list.join("; "));
            DataReload::Failed(list)
        }
    }
}

/// The VRRP part of a reload, after the data plane's: a file the data plane refused is
/// not applied to VRRP either.
async fn reload_vrrp(
    vrrp: &mut crate::daemon::threads::VrrpHost,
    status: &std::sync::Arc<std::sync::Mutex<Vec<rvs_vrrpd::InstanceStatus>>>,
    bfd: &rvs_bfd::driver::Registry,
    cfg: &rvs_conf::Config,
    a: &RunArgs,
    data: &DataReload,
) -> VrrpReload {
    if a.check_only || matches!(data, DataReload::Refused(_)) {
        return VrrpReload::NotRun;
    }
    let plan = match rvs_vrrpd::plan(cfg) {
        Ok(p) => p,
        Err(errs) => {
            let e: Vec<String> = errs.iter().map(ToString::to_string).collect();
            return VrrpReload::Invalid(e.join("; "));
        }
    };
    let (next, outcome) = if vrrp.is_running() {
        match vrrp.reload(plan).await {
            Some((r, o)) => (r, VrrpReload::Reloaded(o)),
            None => return VrrpReload::NotRun,
        }
    } else if plan.is_empty() {
        return VrrpReload::NotRun;
    } else {
        (
            vrrp.start(
                &cfg.global_defs,
                plan,
                std::sync::Arc::clone(status),
                bfd.clone(),
                None,
            )
            .await,
            VrrpReload::Started,
        )
    };
    match next {
        Ok(()) => {
            if let VrrpReload::Reloaded(o) = &outcome {
                tracing::info!("reload: {o}");
            } else {
                tracing::info!("reload: VRRP started");
            }
            outcome
        }
        Err(e) => {
            tracing::error!("reload: VRRP: {e}");
            VrrpReload::StartFailed(e)
        }
    }
}

/// What the daemon leaves beside its pid file after each reload, for `rvs reload`.
#[derive(serde::Serialize, serde::Deserialize)]
struct ReloadStatus {
    /// Reloads since the daemon started (`rvs reload` waits for a new one).
    generation: u64,
    ok: bool,
    message: String,
}

/// Written aside and renamed: `rvs reload` never reads half a file.
fn write_reload_status(path: &Path, st: &ReloadStatus) {
    let staged = path.with_extension(format!("tmp.{}", std::process::id()));
    let written = serde_json::to_vec(st)
        .map_err(std::io::Error::other)
        .and_then(|b| std::fs::write(&staged, b))
        .and_then(|()| std::fs::rename(&staged, path));
    if let Err(e) = written {
        tracing::warn!("writing the reload status {}: {e}", path.display());
    }
}

fn read_reload_status(path: &Path) -> Option<ReloadStatus> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

fn reload_status_path(pid_file: &Path) -> PathBuf {
    let mut p = pid_file.as_os_str().to_owned();
    p.push(".reload");
    PathBuf::from(p)
}

#[derive(Args, Debug)]
pub struct ReloadArgs {
    /// The running daemon's pid file.
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// Print what the reload would do (`rvs plan` of the daemon's own file), change nothing.
    #[arg(long = "dry-run")]
    pub dry_run: bool,
    /// The daemon's control socket, for `--dry-run` (default: `$RVS_CONTROL`, else the
    /// default socket).
    #[arg(long, requires = "dry_run")]
    pub control: Option<PathBuf>,
}

/// `rvs reload`: checks the daemon's config file first (so errors are printed here and the
/// daemon is not bothered), then sends SIGHUP and waits for the daemon's answer.
pub fn reload_cmd(a: &ReloadArgs) -> Result<ExitCode> {
    if a.dry_run {
        return crate::cli::plan::run(&crate::cli::plan::PlanArgs {
            file: None,
            json: false,
            control: a.control.clone(),
        });
    }
    let pid_file = a.pid_file.clone().unwrap_or_else(default_pid_file);
    let text = std::fs::read_to_string(&pid_file)
        .with_context(|| format!("no running rvs found: cannot read {}", pid_file.display()))?;
    let mut lines = text.lines();
    let pid: i32 = lines
        .next()
        .and_then(|l| l.trim().parse().ok())
        .context("bad pid file")?;
    let conf = PathBuf::from(lines.next().context("pid file names no config")?);
    let pid = rustix_pid(pid)?;
    ensure_rvs_daemon(pid, &pid_file)?;
    let parsed = rvs_conf::parse_file(&conf, &rvs_conf::Options::default());
    if let Some(why) = refuse_reload(&parsed) {
        eprint!("{}", parsed.render());
        eprintln!(
            "{} {why}; the running configuration is kept (not reloaded)",
            conf.display()
        );
        return Ok(ExitCode::from(1));
    }
    let status = reload_status_path(&pid_file);
    let before_gen = read_reload_status(&status).map_or(0, |r| r.generation);
    rustix::process::kill_process(pid, rustix::process::Signal::HUP)
        .with_context(|| format!("signalling pid {pid:?}"))?;
    for _ in 0..100 {
        std::thread::sleep(Duration::from_millis(50));
        if let Some(r) = read_reload_status(&status).filter(|r| r.generation > before_gen) {
            println!("{}", r.message);
            return Ok(if r.ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            });
        }
    }
    bail!("the daemon (pid {pid:?}) did not answer within 5 s")
}

/// Refuses to signal a process that is not an rvs daemon: a pid file left behind by a
/// killed daemon may name any process now (`rvs reload` once hung up a `sleep`). The
/// process must run the same executable as this one, or be named `rvs` or `keepalived`
/// (the daemon's binary replaced by an upgrade).
pub(crate) fn ensure_rvs_daemon(pid: rustix::process::Pid, pid_file: &Path) -> Result<()> {
    use std::os::unix::fs::MetadataExt as _;
    let proc_dir = PathBuf::from(format!("/proc/{}", pid.as_raw_nonzero()));
    let comm = std::fs::read_to_string(proc_dir.join("comm")).with_context(|| {
        format!(
            "no process {} (from {}): rvs is not running; remove the stale pid file",
            pid.as_raw_nonzero(),
            pid_file.display()
        )
    })?;
    let comm = comm.trim();
    let same_exe = match (
        std::fs::metadata(proc_dir.join("exe")),
        std::fs::metadata("/proc/self/exe"),
    ) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    };
    if same_exe || comm == "rvs" || comm == "keepalived" {
        return Ok(());
    }
    bail!(
        "process {} named by {} is '{comm}', not an rvs daemon: the pid file is stale \
         (rvs is not running); not signalled",
        pid.as_raw_nonzero(),
        pid_file.display()
    )
}

pub(crate) fn rustix_pid(pid: i32) -> Result<rustix::process::Pid> {
    // A process is positive: kill(2) takes 0 and negatives as process groups (-1: every
    // process), and rustix asserts on a negative in debug builds.
    if pid <= 0 {
        anyhow::bail!("invalid pid {pid}");
    }
    rustix::process::Pid::from_raw(pid).context("invalid pid")
}
