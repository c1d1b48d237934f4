//! `rvs lab up|down|status|exec`: the seed articles' LVS-DR + keepalived setup on one
//! machine, in network namespaces: a client, two directors (rvs with the XDP data plane
//! and VRRP, MASTER and BACKUP) and two real servers (the VIP on `lo`, `arp_ignore=1`,
//! `arp_announce=2`, an HTTP server answering with its name) on one bridge, all in
//! 198.18.0.0/24. Nothing is created in the host's own namespace.
//!
//! ```text
//! rvs lab up                      # build it and start everything
//! rvs lab exec client curl -s http://198.18.0.50/
//! rvs lab status                  # who holds the VIP, each director's rvs status
//! rvs lab down                    # stop the processes it started, delete the namespaces
//! ```

use anyhow::{bail, Context as _, Result};
use clap::{Args, Subcommand};
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};

#[derive(Args, Debug)]
pub struct LabArgs {
    #[command(subcommand)]
    pub cmd: LabCmd,
    /// Name prefix of the lab's namespaces (several labs can coexist).
    #[arg(long, default_value = "rvslab", global = true)]
    pub prefix: String,
}

#[derive(Subcommand, Debug)]
pub enum ClusterCmd {
    /// Build the topology and start the router, the directors and the real servers.
    Up {
        /// FULLNAT instead of LVS-DR: each director forwards from a local address of its
        /// own (198.18.0.22-24, held by VRRP so that it moves to a live director), the
        /// directors sync their connections to each other, the real servers hold no VIP.
        #[arg(long)]
        fnat: bool,
    },
    /// Stop what `up` started and delete the namespaces.
    Down,
    /// The router's next hops, each director's BGP sessions and the flows it carries.
    Status,
}

#[derive(Subcommand, Debug)]
pub enum LabCmd {
    /// Build the topology and start the real servers and both directors.
    Up {
        /// The directors' data plane (`xdp`, the seed articles' DR; or `proxy`).
        #[arg(long, default_value = "xdp", value_parser = ["xdp", "proxy"])]
        dataplane: String,
        /// XDP attach mode of the directors: `generic` (SKB mode) or `native` (veth's
        /// driver mode; the lab then attaches a pass program to the bridge side of each
        /// director's veth and turns TX checksum offload off on the client with ethtool,
        /// which native `XDP_TX` on veth needs).
        #[arg(long, default_value = "generic", value_parser = ["generic", "native"])]
        xdp_mode: String,
    },
    /// Stop what `up` started and delete the namespaces.
    Down,
    /// Namespaces, processes, who holds the VIP, each director's status.
    Status,
    /// Run a command in a node: client, dir1, dir2, rs1, rs2.
    Exec {
        node: String,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
        cmd: Vec<String>,
    },
    /// Several active directors behind ECMP (issue #21): a router running BIRD, three
    /// directors announcing the VIP with `rvs_bgp`, three real servers.
    Cluster {
        #[command(subcommand)]
        cmd: ClusterCmd,
    },
    /// Holds long-lived connections to an echo service (the cluster lab's port 7) and
    /// checks each every 100 ms; prints how many broke and which real server each had.
    Hold {
        /// The service (e.g. 198.18.0.60:7).
        to: std::net::SocketAddr,
        #[arg(long, default_value_t = 100)]
        connections: usize,
        /// How long to hold them.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// How long a connection may take to echo a line before it counts as broken
        /// (seconds).
        #[arg(long, default_value_t = 2.0)]
        timeout: f64,
        /// A file written once every connection is open.
        #[arg(long)]
        ready: Option<PathBuf>,
    },
    /// Sends an HTTP request on a new connection every 10 ms for SECONDS, each on time;
    /// prints how many failed, the longest time without an answer, and the span of
    /// start times of the connections not answered within 500 ms.
    Probe {
        to: std::net::SocketAddr,
        #[arg(long, default_value_t = 5)]
        seconds: u64,
    },
    /// (internal) An echo server: sends NAME, then echoes each line back.
    #[command(hide = true)]
    Echo {
        name: String,
        addr: std::net::SocketAddr,
    },
    /// (internal) The real servers' HTTP server: answers every request with NAME.
    #[command(hide = true)]
    Serve {
        name: String,
        addr: std::net::SocketAddr,
    },
    /// (internal) Opens the TCP connections of an `rvs sim` flow file, each from its
    /// client address and port, one after the other, and holds them open: the same
    /// connections `rvs sim` schedules, through a real kernel.
    #[command(hide = true)]
    Flows {
        file: PathBuf,
        /// Pause between two connections (ms).
        #[arg(long, default_value_t = 20)]
        gap_ms: u64,
        /// Seconds to hold the connections after the last one.
        #[arg(long, default_value_t = 5)]
        hold: u64,
        /// A file written once every connection is established.
        #[arg(long)]
        ready: Option<PathBuf>,
    },
}

fn open_flows(
    file: &std::path::Path,
    gap_ms: u64,
    hold: u64,
    ready: Option<&std::path::Path>,
) -> Result<ExitCode> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let mut conns = Vec::new();
    let mut failed = 0;
    for line in text.lines() {
        let w: Vec<&str> = line
            .split_whitespace()
            .filter(|w| !w.starts_with('@'))
            .collect();
        let (Some(&"tcp"), Some(from), Some(to)) = (w.first(), w.get(1), w.get(2)) else {
            continue;
        };
        let (Ok(from), Ok(to)) = (
            from.parse::<std::net::SocketAddr>(),
            to.parse::<std::net::SocketAddr>(),
        ) else {
            bail!("bad flow line: {line}");
        };
        let s = socket2::Socket::new(
            socket2::Domain::for_address(from),
            socket2::Type::STREAM,
            None,
        )?;
        s.set_reuse_address(true)?;
        s.bind(&from.into())?;
        match s.connect_timeout(&to.into(), std::time::Duration::from_secs(3)) {
            Ok(()) => conns.push(s),
            Err(e) => {
                eprintln!("{from} -> {to}: {e}");
                failed += 1;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(gap_ms));
    }
    eprintln!("{} connections open, {failed} failed", conns.len());
    if let Some(r) = ready {
        std::fs::write(r, format!("{}\n", conns.len()))?;
    }
    std::thread::sleep(std::time::Duration::from_secs(hold));
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

pub const VIP: &str = "198.18.0.50";
const NODES: [(&str, u8); 5] = [
    ("client", 100),
    ("dir1", 1),
    ("dir2", 2),
    ("rs1", 11),
    ("rs2", 12),
];

pub(crate) fn ns(prefix: &str, node: &str) -> String {
    format!("{prefix}-{node}")
}

pub(crate) fn dir(prefix: &str) -> PathBuf {
    std::env::temp_dir().join(format!("rvs-lab-{prefix}"))
}

pub(crate) fn ip(args: &[&str]) -> Result<()> {
    let o = Command::new("ip")
        .args(args)
        .output()
        .context("running ip (install iproute2)")?;
    if !o.status.success() {
        bail!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&o.stderr).trim()
        );
    }
    Ok(())
}

pub(crate) fn in_ns(prefix: &str, node: &str, argv: &[&str]) -> Result<()> {
    let mut a = vec!["netns", "exec"];
    let n = ns(prefix, node);
    a.push(&n);
    a.extend_from_slice(argv);
    ip(&a)
}

/// The directors' keepalived.conf: the seed articles' LVS-DR setup (VRRP MASTER/BACKUP
/// with PASS auth, `virtual_server` DR rr with `TCP_CHECK`), on the lab's addresses.
pub fn director_conf(name: &str, master: bool) -> String {
    let (state, prio) = if master {
        ("MASTER", 150)
    } else {
        ("BACKUP", 100)
    };
    format!(
        "global_defs {{\n    router_id {name}\n}}\n\n\
         vrrp_instance VI_1 {{\n    state {state}\n    interface eth0\n    virtual_router_id 51\n    \
         priority {prio}\n    advert_int 1\n    authentication {{\n        auth_type PASS\n        \
         auth_pass 1111\n    }}\n    virtual_ipaddress {{\n        {VIP}\n    }}\n}}\n\n\
         virtual_server {VIP} 80 {{\n    delay_loop 2\n    lb_algo rr\n    lb_kind DR\n    \
         protocol TCP\n\n    real_server 198.18.0.11 80 {{\n        weight 1\n        \
         TCP_CHECK {{\n            connect_timeout 3\n        }}\n    }}\n    \
         real_server 198.18.0.12 80 {{\n        weight 1\n        TCP_CHECK {{\n            \
         connect_timeout 3\n        }}\n    }}\n}}\n"
    )
}

pub(crate) fn spawn(prefix: &str, node: &str, tag: &str, argv: &[String]) -> Result<u32> {
    let d = dir(prefix);
    let log = std::fs::File::create(d.join(format!("{node}-{tag}.log")))?;
    let child = Command::new("setsid")
        .args(["ip", "netns", "exec", &ns(prefix, node)])
        .args(argv)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .context("starting a lab process (setsid, ip)")?;
    let pid = child.id();
    std::fs::write(d.join(format!("{node}-{tag}.pid")), format!("{pid}\n"))?;
    Ok(pid)
}

fn up(prefix: &str, dataplane: &str, native: bool) -> Result<()> {
    if native {
        if rvs_xdp::PASS_OBJECT.is_empty() {
            bail!("native mode needs the XDP pass program: rvs was built without clang");
        }
        if Command::new("ethtool").arg("--version").output().is_err() {
            bail!(
                "native mode needs ethtool (apt-get install ethtool) to turn TX checksum \
                 offload off on the client"
            );
        }
    }
    if ns_exists(prefix, "br") {
        bail!(
            "a lab named {prefix} is up already (rvs lab down{} first)",
            if prefix == "rvslab" {
                String::new()
            } else {
                format!(" --prefix {prefix}")
            }
        );
    }
    let d = dir(prefix);
    std::fs::create_dir_all(&d)?;
    let br = ns(prefix, "br");
    ip(&["netns", "add", &br])?;
    ip(&["-n", &br, "link", "add", "br0", "type", "bridge"])?;
    ip(&["-n", &br, "link", "set", "br0", "up"])?;
    for (i, (node, host)) in NODES.iter().enumerate() {
        let n = ns(prefix, node);
        ip(&["netns", "add", &n])?;
        let port = format!("p{i}");
        ip(&[
            "-n", &br, "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns", &n,
        ])?;
        ip(&["-n", &br, "link", "set", &port, "master", "br0", "up"])?;
        ip(&["-n", &n, "link", "set", "lo", "up"])?;
        ip(&[
            "-n",
            &n,
            "addr",
            "add",
            &format!("198.18.0.{host}/24"),
            "dev",
            "eth0",
        ])?;
        ip(&["-n", &n, "link", "set", "eth0", "up"])?;
        if native && node.starts_with("dir") {
            // veth delivers a native XDP_TX frame only to a peer that runs XDP itself.
            let obj = d.join("pass.bpf.o");
            std::fs::write(&obj, rvs_xdp::PASS_OBJECT)?;
            ip(&[
                "-n",
                &br,
                "link",
                "set",
                "dev",
                &port,
                "xdpdrv",
                "obj",
                &obj.display().to_string(),
                "sec",
                "xdp",
            ])?;
        }
        if native && *node == "client" {
            // A CHECKSUM_PARTIAL frame loses its pending checksum in native XDP on veth:
            // the client must send complete checksums (real NICs need nothing).
            in_ns(prefix, node, &["ethtool", "-K", "eth0", "tx", "off"])?;
        }
    }
    // Two directors on one segment must not answer ARP for each other's addresses.
    for node in ["dir1", "dir2"] {
        for (k, v) in [("arp_ignore", "1"), ("arp_announce", "2")] {
            in_ns(
                prefix,
                node,
                &["sysctl", "-qw", &format!("net.ipv4.conf.all.{k}={v}")],
            )?;
        }
    }
    // Real servers exactly as the articles configure them: the VIP on lo, ARP silenced.
    let me = std::env::current_exe().context("locating the rvs binary")?;
    let me = me.display().to_string();
    for node in ["rs1", "rs2"] {
        let n = ns(prefix, node);
        ip(&["-n", &n, "addr", "add", &format!("{VIP}/32"), "dev", "lo"])?;
        for (k, v) in [
            ("lo.arp_ignore", "1"),
            ("lo.arp_announce", "2"),
            ("all.arp_ignore", "1"),
            ("all.arp_announce", "2"),
        ] {
            in_ns(
                prefix,
                node,
                &["sysctl", "-qw", &format!("net.ipv4.conf.{k}={v}")],
            )?;
        }
        spawn(
            prefix,
            node,
            "http",
            &[
                me.clone(),
                "lab".into(),
                "serve".into(),
                node.into(),
                "0.0.0.0:80".into(),
            ],
        )?;
    }
    // `rvs upgrade` pins the XDP program's maps and link on a BPF file system: the lab's
    // own (this machine may have none on /sys/fs/bpf), unmounted by `rvs lab down`.
    let bpffs = d.join("bpf");
    if dataplane == "xdp" {
        std::fs::create_dir_all(&bpffs)?;
        let st = Command::new("mount")
            .args(["-t", "bpf", "bpf"])
            .arg(&bpffs)
            .status()
            .context("mounting the lab's BPF file system (mount)")?;
        if !st.success() {
            bail!("mount -t bpf bpf {} failed", bpffs.display());
        }
    }
    for (node, master) in [("dir1", true), ("dir2", false)] {
        let conf = d.join(format!("{node}.conf"));
        std::fs::write(&conf, director_conf(node, master))?;
        let mut argv = vec![
            me.clone(),
            "run".into(),
            "-f".into(),
            conf.display().to_string(),
            "--dataplane".into(),
            dataplane.into(),
            "--control".into(),
            d.join(format!("{node}.sock")).display().to_string(),
            "--pid-file".into(),
            d.join(format!("{node}.rvs-pid")).display().to_string(),
        ];
        if dataplane == "xdp" {
            argv.extend(["--xdp-iface".into(), "eth0".into()]);
            argv.extend(["--bpffs".into(), bpffs.display().to_string()]);
            if native {
                argv.extend(["--xdp-mode".into(), "native".into()]);
            }
        }
        spawn(prefix, node, "rvs", &argv)?;
    }
    println!(
        "lab {prefix} is up: client 198.18.0.100, directors dir1 (MASTER) 198.18.0.1 and \
         dir2 198.18.0.2, real servers rs1 198.18.0.11 and rs2 198.18.0.12, VIP {VIP}:80 \
         (LVS-DR, {dataplane} data plane{})\n\
         try:  rvs lab exec client curl -s http://{VIP}/\n\
         logs and configs: {}",
        if native { ", native XDP" } else { "" },
        d.display()
    );
    Ok(())
}

pub(crate) fn ns_exists(prefix: &str, node: &str) -> bool {
    std::path::Path::new("/run/netns")
        .join(ns(prefix, node))
        .exists()
}

/// Stops the processes a lab started (by the pid files in `d`): rvs first (a MASTER hands
/// the VIP over), then the rest; only a pid that still runs this binary or one of
/// `others` (by file name) is signalled — pids are reused.
pub(crate) fn stop_processes(d: &std::path::Path, others: &[&str]) {
    let me = std::env::current_exe().ok();
    let Ok(rd) = std::fs::read_dir(d) else {
        return;
    };
    // A director's pid file (`.rvs-pid`) names the rvs that took over after an `rvs upgrade`.
    let mut pids: Vec<PathBuf> = rd
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "pid" || e == "rvs-pid"))
        .collect();
    pids.sort_by_key(|p| !p.to_string_lossy().contains("rvs"));
    for p in pids {
        // rvs's own pid file holds the pid, then the configuration's path.
        let Some(pid) = std::fs::read_to_string(&p)
            .ok()
            .and_then(|s| s.lines().next()?.trim().parse::<i32>().ok())
        else {
            continue;
        };
        let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok();
        let ours = exe.as_deref().is_some_and(|e| {
            Some(e) == me.as_deref()
                || e.file_name()
                    .is_some_and(|f| others.iter().any(|o| f == std::ffi::OsStr::new(o)))
        });
        if ours {
            let _ = Command::new("kill").arg(pid.to_string()).status();
            for _ in 0..100 {
                if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
        }
    }
}

fn down(prefix: &str) -> Result<()> {
    let d = dir(prefix);
    stop_processes(&d, &[]);
    for (node, _) in NODES.iter().rev() {
        if ns_exists(prefix, node) {
            ip(&["netns", "del", &ns(prefix, node)])?;
        }
    }
    if ns_exists(prefix, "br") {
        ip(&["netns", "del", &ns(prefix, "br")])?;
    }
    let bpffs = d.join("bpf");
    if bpffs.exists() {
        let _ = Command::new("umount").arg(&bpffs).status();
    }
    let _ = std::fs::remove_dir_all(&d);
    println!("lab {prefix} is down");
    Ok(())
}

fn status(prefix: &str) -> Result<ExitCode> {
    if !ns_exists(prefix, "br") {
        println!("lab {prefix} is not up (rvs lab up)");
        return Ok(ExitCode::from(1));
    }
    for (node, host) in NODES {
        let out = Command::new("ip")
            .args(["-n", &ns(prefix, node), "-o", "-4", "addr", "show"])
            .output()?;
        let text = String::from_utf8_lossy(&out.stdout);
        let vip = text.contains(&format!(" {VIP}/"));
        println!(
            "{node:<7} 198.18.0.{host:<4}{}",
            if vip && node.starts_with("dir") {
                "  holds the VIP (VRRP MASTER)"
            } else {
                ""
            }
        );
    }
    for node in ["dir1", "dir2"] {
        println!("\n--- {node}: rvs status");
        let _ = Command::new(std::env::current_exe()?)
            .args(["status", "--control"])
            .arg(dir(prefix).join(format!("{node}.sock")))
            .status();
    }
    Ok(ExitCode::SUCCESS)
}

pub fn run(a: &LabArgs) -> Result<ExitCode> {
    match &a.cmd {
        LabCmd::Up {
            dataplane,
            xdp_mode,
        } => {
            let native = dataplane == "xdp" && xdp_mode == "native";
            if let Err(e) = up(&a.prefix, dataplane, native) {
                let _ = down(&a.prefix);
                return Err(e.context("rvs lab up (cleaned up what it had made)"));
            }
            Ok(ExitCode::SUCCESS)
        }
        LabCmd::Down => down(&a.prefix).map(|()| ExitCode::SUCCESS),
        LabCmd::Status => status(&a.prefix),
        LabCmd::Exec { node, cmd } => {
            if !ns_exists(&a.prefix, node) {
                bail!(
                    "no node {node} in the lab {} (client, dir1, dir2, rs1, rs2; the cluster \
                     lab's with --prefix {}c: client, router, d1, d2, d3, rs1, rs2, rs3)",
                    a.prefix,
                    a.prefix
                );
            }
            let st = Command::new("ip")
                .args(["netns", "exec", &ns(&a.prefix, node)])
                .args(cmd)
                .status()?;
            Ok(ExitCode::from(
                u8::try_from(st.code().unwrap_or(1)).unwrap_or(1),
            ))
        }
        LabCmd::Flows {
            file,
            gap_ms,
            hold,
            ready,
        } => open_flows(file, *gap_ms, *hold, ready.as_deref()),
        LabCmd::Cluster { cmd } => match cmd {
            ClusterCmd::Up { fnat } => {
                if let Err(e) = crate::tools::cluster::up(&a.prefix, *fnat) {
                    let _ = crate::tools::cluster::down(&a.prefix);
                    return Err(e.context("rvs lab cluster up (cleaned up what it had made)"));
                }
                Ok(ExitCode::SUCCESS)
            }
            ClusterCmd::Down => crate::tools::cluster::down(&a.prefix).map(|()| ExitCode::SUCCESS),
            ClusterCmd::Status => crate::tools::cluster::status(&a.prefix),
        },
        LabCmd::Hold {
            to,
            connections,
            seconds,
            timeout,
            ready,
        } => crate::tools::cluster::hold(
            *to,
            *connections,
            *seconds,
            std::time::Duration::try_from_secs_f64(*timeout)
                .ok()
                .filter(|t| !t.is_zero())
                .context("--timeout: a positive number of seconds")?,
            ready.as_deref(),
        ),
        LabCmd::Probe { to, seconds } => Ok(crate::tools::cluster::probe(*to, *seconds)),
        LabCmd::Echo { name, addr } => crate::tools::cluster::echo(name, *addr),
        LabCmd::Serve { name, addr } => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(async {
                let t = crate::tools::demo::backend(*addr, name.clone()).await?;
                let _ = t.await;
                Ok(ExitCode::SUCCESS)
            })
        }
    }
}
