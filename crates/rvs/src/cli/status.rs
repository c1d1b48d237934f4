//! `rvs status`: what is going on, for a human. Daemon, reloads, then every service with
//! its real servers, their health (each checker's verdict) and rates. `--watch` redraws
//! in place, like `watch ipvsadm -Ln --rate`.

use anyhow::{Context as _, Result};
use clap::Args;
use rvs_adm::{Service, SvcKey};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Args, Debug)]
pub struct StatusArgs {
    /// Refresh every N seconds until Ctrl-C (default 2 when given without a value).
    #[arg(short = 'w', long, value_name = "SECONDS", num_args = 0..=1, default_missing_value = "2")]
    pub watch: Option<f64>,
    /// The daemon's control socket (default: `$RVS_CONTROL`, else the default socket).
    #[arg(long)]
    pub control: Option<PathBuf>,
    /// Print the VRRP instances as keepalived's JSON dump (`/tmp/keepalived.json`, what
    /// keepalived writes on its JSON signal) and exit.
    #[arg(long = "keepalived-json", conflicts_with = "watch")]
    pub keepalived_json: bool,
}

use rvs_api::{Check, Status};

fn render_bfd(o: &mut String, st: &Status) {
    if st.bfd.is_empty() {
        return;
    }
    let _ = writeln!(o, "BFD:");
    for b in &st.bfd {
        let _ = writeln!(
            o,
            "  {} to {}: {} (remote {}), detection {} ms, last diagnostic: {}, packets in {} out {}, {} changes",
            b.name,
            b.neighbor,
            b.state,
            b.remote_state,
            b.detection_time_ms,
            b.local_diag,
            b.packets_in,
            b.packets_out,
            b.transitions
        );
    }
    o.push('\n');
}

/// `rvs_config_drift_peer`: what each peer's configuration differs in.
fn render_drift(o: &mut String, st: &Status) {
    if st.drift.is_empty() {
        return;
    }
    let _ = writeln!(o, "Configuration compared with the peer directors:");
    for p in &st.drift {
        if p.differences.is_empty() {
            let _ = writeln!(o, "  {:<15} agrees (heard {} s ago)", p.peer, p.heard_s_ago);
        } else {
            let _ = writeln!(
                o,
                "  {:<15} DRIFT: {} difference(s) (heard {} s ago)",
                p.peer,
                p.differences.len(),
                p.heard_s_ago
            );
            for d in &p.differences {
                let _ = writeln!(o, "    {d}");
            }
        }
    }
    o.push('\n');
}

/// The XDP plane's connection sync daemons: what went out, came in and was dropped.
pub fn render_sync(o: &mut String, st: &Status) {
    let Some(s) = &st.sync else {
        return;
    };
    let last = s.last_received_unix_ms.map_or_else(String::new, |ms| {
        let now = crate::clock::unix_ms();
        #[allow(clippy::cast_precision_loss)]
        let ago = now.saturating_sub(ms) as f64 / 1000.0;
        format!(", the last {ago:.1} s ago")
    });
    let _ = writeln!(
        o,
        "connection sync: sent {} connection(s) in {} datagram(s); received {} datagram(s){last}, adopted {} ({} not ours, {} forwarded here)",
        s.sent_connections,
        s.sent_datagrams,
        s.received_datagrams,
        s.adopted,
        s.not_ours,
        s.forwarded_here
    );
    let dropped: Vec<String> = [
        (s.malformed, "malformed"),
        (s.unauthenticated, "unauthenticated"),
        (s.not_a_peer, "not from a peer"),
        (s.other_syncid, "of another sync id"),
        (s.send_errors, "not sent"),
        (s.adopt_errors, "refused by the tables"),
    ]
    .iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, what)| format!("{n} {what}"))
    .collect();
    if !dropped.is_empty() {
        let _ = writeln!(o, "  datagrams dropped: {}", dropped.join(", "));
    }
}

/// `rvs_bgp`: the speaker, what it announces and its sessions.
pub fn render_bgp(o: &mut String, st: &Status) {
    let Some(b) = &st.bgp else {
        return;
    };
    let speaker = match b.pid {
        Some(pid) => format!("BIRD pid {pid}"),
        None => "BIRD not running".to_owned(),
    };
    let drained = if b.drained { ", DRAINED" } else { "" };
    let vips: Vec<String> = b.announced.iter().map(|a| a.vip.to_string()).collect();
    let _ = writeln!(
        o,
        "BGP ({speaker}{drained}): announcing {}",
        if vips.is_empty() {
            "nothing".to_owned()
        } else {
            vips.join(" ")
        }
    );
    for s in &b.sessions {
        let _ = writeln!(
            o,
            "  neighbour {:<15} {} since {}{}",
            s.neighbor.to_string(),
            s.state,
            s.since,
            if s.info.is_empty() {
                String::new()
            } else {
                format!(" ({})", s.info)
            }
        );
    }
    if let Some(e) = &b.error {
        let _ = writeln!(o, "  last error: {e}");
    }
    o.push('\n');
}

fn render_vrrp(o: &mut String, st: &Status) {
    if !st.vrrp_running {
        let _ = writeln!(o, "VRRP: not run (-C, or no vrrp_instance)\n");
        return;
    }
    let _ = writeln!(o, "VRRP:");
    for v in &st.vrrp {
        let master = match (&v.master, v.state.as_str()) {
            (_, "MASTER") => "us".to_owned(),
            (Some(m), _) => format!(
                "{m}, priority {}",
                v.master_priority.map_or("?".into(), |p| p.to_string())
            ),
            (None, _) => "none seen".to_owned(),
        };
        let group = v
            .sync_group
            .as_ref()
            .map(|g| format!(", group {g}"))
            .unwrap_or_default();
        let _ = writeln!(
            o,
            "  {:<12} {:<7} {} vrid {} VRRPv{} priority {} (base {}){group}, VIPs {}",
            v.name,
            v.state,
            v.interface,
            v.vrid,
            v.version,
            v.priority,
            v.base_priority,
            v.vips.join(" ")
        );
        let dropped = if v.dropped.is_empty() {
            String::new()
        } else {
            format!(
                "; dropped {}",
                v.dropped
                    .iter()
                    .map(|(k, n)| format!("{k} {n}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        let _ = writeln!(
            o,
            "               master {master}; adverts {} in, {} out; became master {} times{dropped}",
            v.adverts_rx, v.adverts_tx, v.became_master
        );
        if v.split_brain > 0 {
            let _ = writeln!(
                o,
                "               SPLIT BRAIN: {} answered for a VIP while this director was MASTER ({} times)",
                v.split_brain_mac.as_deref().unwrap_or("another MAC"),
                v.split_brain
            );
        }
    }
    let _ = writeln!(o);
}

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut v = n;
    let mut i = 0;
    while v >= 10_000 && i + 1 < UNITS.len() {
        v /= 1000;
        i += 1;
    }
    format!("{v} {}", UNITS[i])
}

fn uptime(s: u64) -> String {
    match s {
        _ if s < 60 => format!("{s}s"),
        _ if s < 3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ if s < 86400 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{:02}h", s / 86400, s % 86400 / 3600),
    }
}

fn render(st: &Status, services: &[Service]) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "rvs {} (pid {}), up {}, {} data plane{}, {} live connections",
        st.version,
        st.pid,
        uptime(st.uptime_s),
        serde_json::to_value(st.dataplane)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default(),
        st.xdp
            .as_ref()
            .map(|x| format!(" on {} (chosen by {})", x.interface, x.chosen_by))
            .unwrap_or_default(),
        st.live_connections
    );
    let _ = writeln!(
        o,
        "config {} (reloads: {} ok, {} refused)",
        st.config, st.reloads_ok, st.reloads_failed
    );
    if let Some(b) = &st.by_table {
        let _ = writeln!(
            o,
            "forwarding by table: {} service(s), {} slot(s) changed (their flows looked up)",
            b.services, b.changed_slots
        );
    }
    render_vrrp(&mut o, st);
    render_drift(&mut o, st);
    render_bgp(&mut o, st);
    render_sync(&mut o, st);
    render_bfd(&mut o, st);
    if services.is_empty() {
        let _ = writeln!(o, "no virtual services");
    }
    for s in services {
        let name = match &s.id {
            SvcKey::Addr { proto, addr, port } => {
                format!("{} {}", proto.name(), SocketAddr::new(*addr, *port))
            }
            SvcKey::Fwmark { mark, .. } => format!("FWM {mark}"),
        };
        let persist = s
            .persistent
            .map(|p| format!(", persistent {p}s"))
            .unwrap_or_default();
        let _ = writeln!(
            o,
            "{name}  {}{persist}: {} real servers, {} conns total, {} conn/s, in {}/s, out {}/s",
            s.sched,
            s.dests.len(),
            s.stats.conns,
            s.stats.cps,
            human_bytes(s.stats.in_bps),
            human_bytes(s.stats.out_bps)
        );
        let lost: Vec<&rvs_api::Undelivered> = st
            .undelivered
            .iter()
            .filter(|u| SvcKey::from(u.service) == s.id)
            .collect();
        if !lost.is_empty() {
            let total: u64 = lost.iter().map(|u| u.connections).sum();
            let why: Vec<String> = lost
                .iter()
                .map(|u| format!("{} {}", u.reason, u.connections))
                .collect();
            let _ = writeln!(
                o,
                "  not delivered (client reset): {total} ({})",
                why.join(", ")
            );
        }
        let label = s.id.to_string();
        for d in &s.dests {
            let at = SocketAddr::new(d.addr, d.port);
            let checks: Vec<&Check> = st
                .checks
                .iter()
                .filter(|c| {
                    c.real_server == at
                        && (c.virtual_server == label || c.virtual_server.starts_with("group "))
                })
                .collect();
            let health = if checks.is_empty() {
                "no checker".to_owned()
            } else {
                checks
                    .iter()
                    .map(|c| {
                        let v = match c.up {
                            Some(true) => "up",
                            Some(false) => "DOWN",
                            None => "not run",
                        };
                        let took = c
                            .last_latency_s
                            .map(|s| format!(", last probe {:.1} ms", s * 1e3))
                            .unwrap_or_default();
                        let changed = c
                            .last_change_unix
                            .map(|t| {
                                let now = crate::clock::unix_s();
                                format!(", changed {}s ago", now.saturating_sub(t))
                            })
                            .unwrap_or_default();
                        format!("{} {v} ({} failures{took}{changed})", c.checker, c.failures)
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let _ = writeln!(
                o,
                "  -> {at:<24} {:?} weight {:<3} active {:<5} inactive {:<5} {} conn/s  {health}",
                d.fwd, d.weight, d.active, d.inactive, d.stats.cps
            );
        }
    }
    // Real servers out of the table (failed checks without inhibit_on_failure).
    let listed: Vec<(String, SocketAddr)> = services
        .iter()
        .flat_map(|s| {
            let l = s.id.to_string();
            s.dests
                .iter()
                .map(move |d| (l.clone(), SocketAddr::new(d.addr, d.port)))
        })
        .collect();
    let mut out_of_table: Vec<&Check> = st
        .checks
        .iter()
        .filter(|c| {
            !listed
                .iter()
                .any(|(l, a)| *a == c.real_server && *l == c.virtual_server)
        })
        .filter(|c| c.up == Some(false))
        .collect();
    out_of_table
        .dedup_by(|a, b| a.real_server == b.real_server && a.virtual_server == b.virtual_server);
    if !out_of_table.is_empty() {
        let _ = writeln!(o, "\nout of the table (checks failing):");
        for c in out_of_table {
            let why = c
                .last_failure
                .as_deref()
                .map(|w| format!(": {w}"))
                .unwrap_or_default();
            let _ = writeln!(
                o,
                "  {} in {}: {} DOWN ({} failures){why}",
                c.real_server, c.virtual_server, c.checker, c.failures
            );
        }
    }
    o
}

fn fetch(path: &std::path::Path) -> Result<String> {
    let st: Status =
        serde_json::from_str(&crate::daemon::control::call(path, "GET", "/v1/status")?)
            .context("the daemon's status is not valid JSON")?;
    let api: Vec<rvs_api::Service> =
        serde_json::from_str(&crate::daemon::control::call(path, "GET", "/v1/services")?)
            .context("the daemon's table is not valid JSON")?;
    let services = api
        .iter()
        .map(Service::try_from)
        .collect::<Result<Vec<_>, _>>()
        .context("the daemon's table")?;
    Ok(render(&st, &services))
}

pub fn run(a: &StatusArgs) -> Result<ExitCode> {
    let path = crate::daemon::control::client_path(a.control.as_deref());
    if a.keepalived_json {
        println!(
            "{}",
            crate::daemon::control::call(&path, "GET", "/v1/keepalived/json")?
        );
        return Ok(ExitCode::SUCCESS);
    }
    let Some(every) = a.watch else {
        print!("{}", fetch(&path)?);
        return Ok(ExitCode::SUCCESS);
    };
    let every = Duration::from_secs_f64(every.clamp(0.1, 3600.0));
    loop {
        let text = fetch(&path)?;
        // Clear the screen and draw the new frame from the top left.
        print!("\x1b[H\x1b[2J{text}");
        let _ = std::io::Write::flush(&mut std::io::stdout());
        std::thread::sleep(every);
    }
}
