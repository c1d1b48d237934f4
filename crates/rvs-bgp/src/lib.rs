//! `rvs-bgp`: the VIPs a director serves, announced to its routers by an existing BGP
//! speaker — BIRD 2, which rvs runs as its child. rvs never speaks BGP itself: the
//! protocol, its timers, BFD and every router's quirks are BIRD's, a daemon operators
//! already run and trust (docs/cluster.md says why BIRD rather than `GoBGP`, FRR or
//! `ExaBGP`).
//!
//! What rvs owns is small, and this crate is all of it:
//! - [`render`]: the BIRD configuration for a [`Settings`] and the [`Announcement`]s
//!   wanted now (a pure function, unit-tested): the VIPs as static host routes that
//!   never reach the kernel, their communities and MED, one BGP session per neighbour
//!   that exports only them and imports nothing, BFD where asked;
//! - [`control`]: BIRD's control-socket protocol (numbered reply lines), spoken
//!   directly rather than through `birdc`, whose prompt is meant for people;
//! - [`Bird`]: the child process — started with the parent-death signal, so a crash of
//!   rvs ends the BGP sessions and the routers withdraw at once; reconfigured in place
//!   (`configure`: BIRD applies the difference, sessions whose options did not change
//!   stay up); its log lines re-logged under the `bird` target; stopped gracefully.
//!
//! The [`Speaker`] trait is the interface a second engine would implement: announce a
//! set, report the sessions, stop.

pub mod control;
mod sys;

use rvs_types::Announcement;
use std::fmt::Write as _;
use std::io::BufRead as _;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Why the speaker could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum BgpError {
    #[error("cannot start BIRD ({bin}): {source}{hint}")]
    Spawn {
        bin: String,
        source: std::io::Error,
        hint: &'static str,
    },
    #[error("BIRD did not answer on {path} within {limit:?}{exited}")]
    NotReady {
        path: PathBuf,
        limit: Duration,
        exited: String,
    },
    #[error("BIRD's control socket {path}: {source}")]
    Socket {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("BIRD refused `{command}`: {text}")]
    Refused { command: String, text: String },
    #[error("BIRD's control socket answered `{command}` with something unreadable: {line:?}")]
    Garbled { command: String, line: String },
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A BGP neighbour (a router) of this director.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Neighbor {
    pub address: IpAddr,
    pub remote_as: u32,
    /// BFD on this session: BIRD takes it down when BFD says the router is gone.
    pub bfd: bool,
    /// Hold time in seconds (`None`: BIRD's default, 240).
    pub hold_time: Option<u16>,
    /// The local address of the session (`None`: chosen by the kernel's route).
    pub source_address: Option<IpAddr>,
}

impl Neighbor {
    /// The BIRD protocol name of this neighbour's session (`peer_198_18_0_1`).
    pub fn protocol(&self) -> String {
        let a = self.address.to_string().replace(['.', ':'], "_");
        format!("peer_{a}")
    }
}

/// BFD timers of the sessions that ask for BFD.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BfdTimers {
    /// Both the wanted transmit and the accepted receive interval.
    pub interval: Duration,
    pub multiplier: u8,
}

/// Everything the speaker is configured with, but the routes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// `None`: BIRD chooses (the lowest IPv4 address of an interface).
    pub router_id: Option<Ipv4Addr>,
    pub local_as: u32,
    pub neighbors: Vec<Neighbor>,
    pub bfd: BfdTimers,
    /// Where BIRD's configuration and control socket live (created, mode 0700).
    pub dir: PathBuf,
    /// The `bird` binary (found on `PATH` when bare).
    pub bird: PathBuf,
}

impl Settings {
    pub fn config_path(&self) -> PathBuf {
        self.dir.join("bird.conf")
    }
    pub fn socket_path(&self) -> PathBuf {
        self.dir.join("bird.ctl")
    }
}

/// A BGP session's state as BIRD reports it (`show protocols`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Session {
    /// The neighbour's address.
    pub neighbor: IpAddr,
    /// `Established` when routes flow; otherwise BIRD's word for where it is (`Idle`,
    /// `Connect`, `Active`, `OpenSent`, …).
    pub state: String,
    /// Since when (BIRD's `iso long` time).
    pub since: String,
    /// BIRD's reason, when the session is not up (`Received: Hold timer expired`, …).
    pub info: String,
}

impl Session {
    pub fn established(&self) -> bool {
        self.state == "Established"
    }
}

/// What an engine that announces VIPs does; [`Bird`] is the one rvs ships.
pub trait Speaker {
    /// Announces exactly `routes` (every other VIP is withdrawn).
    fn announce(&mut self, routes: &[Announcement]) -> Result<(), BgpError>;
    /// The sessions with the neighbours.
    fn sessions(&mut self) -> Result<Vec<Session>, BgpError>;
    /// Ends every session (the routers withdraw what was announced) and the engine.
    fn stop(self);
}

fn family_routes(routes: &[Announcement], v4: bool) -> impl Iterator<Item = &Announcement> {
    routes.iter().filter(move |r| r.vip.is_ipv4() == v4)
}

/// The BIRD configuration of `s` announcing `routes`.
///
/// The VIPs are static `blackhole` routes of the protocols `rvs_vips4`/`rvs_vips6`
/// (no kernel protocol is configured, so they never reach the director's own routing
/// table), carrying their communities; each neighbour's session exports those of its
/// family and nothing else, sets the MED in its export filter (BIRD does not send a MED
/// a static route carries to an external peer), and imports nothing. Graceful restart
/// is off: a router must drop this director's routes the moment its session ends, not
/// keep them as stale.
pub fn render(s: &Settings, routes: &[Announcement]) -> String {
    let mut c = String::new();
    let _ = writeln!(
        c,
        "# Written by rvs: BIRD is its BGP speaker. Edit rvs_bgp in keepalived.conf, not this \
         file:\n# rvs rewrites it whenever what it announces changes."
    );
    if let Some(id) = s.router_id {
        let _ = writeln!(c, "router id {id};");
    }
    c.push_str("log stderr all;\ntimeformat protocol iso long;\nprotocol device {}\n");
    for (v4, fam) in [(true, "4"), (false, "6")] {
        let _ = writeln!(c, "protocol static rvs_vips{fam} {{\n  ipv{fam};");
        for r in family_routes(routes, v4) {
            let len = if v4 { 32 } else { 128 };
            let _ = write!(c, "  route {}/{len} blackhole", r.vip);
            if r.communities.is_empty() {
                c.push_str(";\n");
            } else {
                c.push_str(" {");
                for k in &r.communities {
                    let _ = write!(c, " bgp_community.add(({},{}));", k.0, k.1);
                }
                c.push_str(" };\n");
            }
        }
        c.push_str("}\n");
        let _ = writeln!(
            c,
            "filter rvs_export{fam} {{\n  if proto != \"rvs_vips{fam}\" then reject;"
        );
        for r in family_routes(routes, v4) {
            if let Some(med) = r.med {
                let len = if v4 { 32 } else { 128 };
                let _ = writeln!(c, "  if net = {}/{len} then bgp_med = {med};", r.vip);
            }
        }
        c.push_str("  accept;\n}\n");
    }
    if s.neighbors.iter().any(|n| n.bfd) {
        let ms = s.bfd.interval.as_millis();
        let _ = writeln!(
            c,
            "protocol bfd rvs_bfd {{\n  interface \"*\" {{ min rx interval {ms} ms; min tx \
             interval {ms} ms; multiplier {}; }};\n  multihop {{ min rx interval {ms} ms; min \
             tx interval {ms} ms; multiplier {}; }};\n}}",
            s.bfd.multiplier, s.bfd.multiplier
        );
    }
    for n in &s.neighbors {
        let fam = if n.address.is_ipv4() { "4" } else { "6" };
        let _ = writeln!(c, "protocol bgp {} {{", n.protocol());
        match n.source_address {
            Some(src) => {
                let _ = writeln!(c, "  local {src} as {};", s.local_as);
            }
            None => {
                let _ = writeln!(c, "  local as {};", s.local_as);
            }
        }
        let _ = writeln!(c, "  neighbor {} as {};", n.address, n.remote_as);
        if let Some(h) = n.hold_time {
            let _ = writeln!(c, "  hold time {h};");
        }
        // A router that restarts or was not up yet is tried again within seconds
        // (BIRD's defaults wait minutes).
        c.push_str(
            "  graceful restart off;\n  connect delay time 1;\n  connect retry time 5;\n  \
             error wait time 1, 30;\n",
        );
        if n.bfd {
            c.push_str("  bfd on;\n");
        }
        let _ = writeln!(
            c,
            "  ipv{fam} {{ import none; export filter rvs_export{fam}; next hop self; }};\n}}"
        );
    }
    c
}

/// BIRD 2 run as rvs's child.
pub struct Bird {
    settings: Settings,
    child: Child,
    routes: Vec<Announcement>,
    log: Option<std::thread::JoinHandle<()>>,
}

/// How long BIRD may take to open its control socket.
const READY: Duration = Duration::from_secs(10);

impl Bird {
    /// Writes the configuration announcing `routes` and starts BIRD on it. BIRD gets
    /// the parent-death signal (SIGKILL): the thread that calls this must live as long
    /// as the speaker (the kernel sends it when that thread ends).
    pub fn start(settings: Settings, routes: &[Announcement]) -> Result<Bird, BgpError> {
        create_dir(&settings.dir)?;
        let sock = settings.socket_path();
        let _ = std::fs::remove_file(&sock);
        write_atomic(&settings.config_path(), &render(&settings, routes))?;
        let mut cmd = Command::new(&settings.bird);
        cmd.arg("-f")
            .arg("-c")
            .arg(settings.config_path())
            .arg("-s")
            .arg(&sock)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        sys::die_with_parent(&mut cmd);
        let mut child = cmd.spawn().map_err(|source| BgpError::Spawn {
            bin: settings.bird.display().to_string(),
            hint: if source.kind() == std::io::ErrorKind::NotFound {
                " (install BIRD 2: apt-get install bird2)"
            } else {
                ""
            },
            source,
        })?;
        let log = child.stderr.take().map(|err| {
            std::thread::spawn(move || {
                for line in std::io::BufReader::new(err).lines() {
                    let Ok(line) = line else { break };
                    relog(&line);
                }
            })
        });
        let mut bird = Bird {
            settings,
            child,
            routes: routes.to_vec(),
            log,
        };
        let t0 = Instant::now();
        loop {
            if bird.control().command("show status").is_ok() {
                tracing::info!(
                    "BIRD (pid {}) is the BGP speaker: {} neighbour(s), {} VIP(s) announced",
                    bird.child.id(),
                    bird.settings.neighbors.len(),
                    bird.routes.len()
                );
                return Ok(bird);
            }
            let exited = bird.child.try_wait().ok().flatten();
            if exited.is_some() || t0.elapsed() > READY {
                let path = bird.settings.socket_path();
                bird.kill();
                return Err(BgpError::NotReady {
                    path,
                    limit: READY,
                    exited: exited
                        .map(|s| format!(" (it exited: {s}; its log says why)"))
                        .unwrap_or_default(),
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// What is announced now.
    pub fn routes(&self) -> &[Announcement] {
        &self.routes
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The control socket.
    pub fn control(&self) -> control::Control {
        control::Control::new(self.settings.socket_path())
    }

    /// New settings (a reload): BIRD reconfigures in place; only the sessions whose
    /// options changed restart.
    pub fn reconfigure(&mut self, settings: Settings) -> Result<(), BgpError> {
        if settings == self.settings {
            return Ok(());
        }
        let old = std::mem::replace(&mut self.settings, settings);
        let r = self.configure(&self.routes.clone());
        if r.is_err() {
            self.settings = old;
        }
        r
    }

    fn configure(&mut self, routes: &[Announcement]) -> Result<(), BgpError> {
        write_atomic(
            &self.settings.config_path(),
            &render(&self.settings, routes),
        )?;
        self.control().command("configure")?;
        self.routes = routes.to_vec();
        Ok(())
    }

    /// Whether BIRD has exited (its status), without waiting.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(t) = self.log.take() {
            let _ = t.join();
        }
    }
}

impl Speaker for Bird {
    fn announce(&mut self, routes: &[Announcement]) -> Result<(), BgpError> {
        if routes == self.routes {
            return Ok(());
        }
        self.configure(routes)
    }

    fn sessions(&mut self) -> Result<Vec<Session>, BgpError> {
        let reply = self.control().command("show protocols")?;
        Ok(control::sessions(&reply, &self.settings.neighbors))
    }

    /// `down`: BIRD ends each session with a Cease notification and exits; killed if it
    /// has not within 5 s.
    fn stop(mut self) {
        let _ = self.control().command("down");
        let t0 = Instant::now();
        while self.exited().is_none() && t0.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill();
        let _ = std::fs::remove_file(self.settings.socket_path());
    }
}

/// One of BIRD's log lines (`2026-12-05 20:18:47.761 <INFO> Started`) under rvs's log,
/// target `bird`, at its level.
fn relog(line: &str) {
    let text = line
        .split_once(" <")
        .and_then(|(_, rest)| rest.split_once("> "));
    match text {
        Some(("ERR" | "FATAL" | "BUG", msg)) => tracing::error!(target: "bird", "{msg}"),
        Some(("WARN" | "AUTH", msg)) => tracing::warn!(target: "bird", "{msg}"),
        Some(("TRACE" | "DBG", msg)) => tracing::debug!(target: "bird", "{msg}"),
        Some((_, msg)) => tracing::info!(target: "bird", "{msg}"),
        None => tracing::info!(target: "bird", "{line}"),
    }
}

fn create_dir(dir: &Path) -> Result<(), BgpError> {
    use std::os::unix::fs::DirBuilderExt as _;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| BgpError::Write {
            path: dir.to_owned(),
            source,
        })
}

/// Written aside and renamed: BIRD never reads half a file.
fn write_atomic(path: &Path, text: &str) -> Result<(), BgpError> {
    let tmp = path.with_extension("conf.tmp");
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|source| BgpError::Write {
            path: path.to_owned(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rvs_types::Community;

    fn settings() -> Settings {
        Settings {
            router_id: Some(Ipv4Addr::new(198, 18, 0, 2)),
            local_as: 65001,
            neighbors: vec![
                Neighbor {
                    address: "198.18.0.1".parse().unwrap_or(IpAddr::from([0u8; 4])),
                    remote_as: 65000,
                    bfd: true,
                    hold_time: Some(3),
                    source_address: None,
                },
                Neighbor {
                    address: "fd00:198:18::1".parse().unwrap_or(IpAddr::from([0u8; 4])),
                    remote_as: 65000,
                    bfd: false,
                    hold_time: None,
                    source_address: "fd00:198:18::2".parse().ok(),
                },
            ],
            bfd: BfdTimers {
                interval: Duration::from_millis(100),
                multiplier: 3,
            },
            dir: PathBuf::from("/run/rvs/bird"),
            bird: PathBuf::from("bird"),
        }
    }

    #[test]
    fn each_family_exports_its_own_vips_with_their_attributes() {
        let routes = vec![
            Announcement {
                vip: "198.19.1.10".parse().unwrap_or(IpAddr::from([0u8; 4])),
                communities: vec![Community(65000, 100), Community(65000, 7)],
                med: Some(10),
            },
            Announcement {
                vip: "fd00:198:18::10".parse().unwrap_or(IpAddr::from([0u8; 4])),
                communities: vec![],
                med: None,
            },
        ];
        let c = render(&settings(), &routes);
        for want in [
            "router id 198.18.0.2;",
            "route 198.19.1.10/32 blackhole { bgp_community.add((65000,100)); \
             bgp_community.add((65000,7)); };",
            "if net = 198.19.1.10/32 then bgp_med = 10;",
            "route fd00:198:18::10/128 blackhole;",
            "protocol bgp peer_198_18_0_1 {\n  local as 65001;\n  neighbor 198.18.0.1 as 65000;\n  hold time 3;",
            "bfd on;\n  ipv4 { import none; export filter rvs_export4; next hop self; };",
            "protocol bgp peer_fd00_198_18__1 {\n  local fd00:198:18::2 as 65001;",
            "ipv6 { import none; export filter rvs_export6; next hop self; };",
            "graceful restart off;",
            "min rx interval 100 ms; min tx interval 100 ms; multiplier 3;",
        ] {
            assert!(c.contains(want), "{want:?} not in:\n{c}");
        }
        // No kernel protocol: the VIP routes never reach the director's routing table.
        assert!(!c.contains("protocol kernel"), "{c}");
        // The IPv6 session has no BFD; with no BFD at all there is no BFD protocol.
        let mut s = settings();
        for n in &mut s.neighbors {
            n.bfd = false;
        }
        assert!(!render(&s, &routes).contains("protocol bfd"));
    }
}
