//! The BFD sessions of a configuration on real sockets (tokio): one receive socket per
//! address family on port 3784 with the kernel dropping packets whose TTL is below
//! `255 - max_hops`; one send socket per session, bound to its source address and a
//! port in 49152–65535, sending with TTL `ttl` (255) / hop limit `hoplimit`. Each
//! session's state is published in a `watch` channel (what `BFD_CHECK` follows) and in a
//! status snapshot (what the operator interface shows).

use crate::session::{Config, Session, Transition};
use crate::wire::{self, diag, Packet, Repr, State};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;
use tokio::sync::watch;

/// One `bfd_instance`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    pub name: String,
    pub neighbor: IpAddr,
    pub source: Option<IpAddr>,
    pub session: Config,
    /// TTL (IPv4) or hop limit (IPv6) of our packets.
    pub ttl: u8,
    /// Hops a received packet may have crossed (0: single hop, TTL must be 255).
    pub max_hops: u8,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("bfd_instance {name}: {what}: {source}")]
    Socket {
        name: String,
        what: &'static str,
        source: std::io::Error,
    },
    #[error("bfd_instance {0}: neighbor {1} is used by bfd_instance {2} too")]
    Duplicate(String, IpAddr, String),
}

/// What the operator interface shows of a session.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Status {
    pub name: String,
    pub neighbor: IpAddr,
    pub state: State,
    pub remote_state: State,
    pub local_diag: &'static str,
    pub remote_diag: &'static str,
    pub detection_time_ms: u64,
    pub packets_in: u64,
    pub packets_out: u64,
    pub dropped: u64,
    pub transitions: u64,
}

/// What a session's `watch` channel carries: its state, and how many times it has gone
/// Down (or `AdminDown`) from Init or Up — so that a follower that wakes after a quick
/// Down → Init still sees the failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    pub state: State,
    pub downs: u64,
}

/// The state channels of the running sessions by `bfd_instance` name, shared with the
/// users that follow them (`BFD_CHECK`, VRRP's `track_bfd`); replaced when the sessions
/// are restarted.
pub type Registry = Arc<Mutex<HashMap<String, watch::Receiver<Seen>>>>;

struct Running {
    inst: Instance,
    s: Session,
    out: UdpSocket,
    state_tx: watch::Sender<Seen>,
    status: Status,
}

/// Running BFD sessions; changed by [`Bfd::apply`], stopped (`AdminDown` sent to every
/// neighbour) by [`Bfd::stop`].
pub struct Bfd {
    watches: HashMap<String, watch::Receiver<Seen>>,
    status: Arc<Mutex<Vec<Status>>>,
    cmd: Option<tokio::sync::mpsc::UnboundedSender<Cmd>>,
    task: Option<tokio::task::JoinHandle<()>>,
    config: Vec<Instance>,
    /// The receive sockets' minimum TTL by family (`None`: no socket).
    min_ttl: (Option<u8>, Option<u8>),
    /// Discriminators handed out so far (a new session never reuses one).
    next: usize,
}

/// What [`Bfd::apply`] did, by `bfd_instance` name.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Applied {
    pub kept: Vec<String>,
    /// Only their timers or multiplier changed: announced to the neighbour with a Poll
    /// sequence, the session stays Up.
    pub retimed: Vec<String>,
    /// Restarted with their new settings (neighbour, source, TTL or hops changed);
    /// followers keep their channel.
    pub changed: Vec<String>,
    pub added: Vec<String>,
    /// Sent `AdminDown` and stopped.
    pub removed: Vec<String>,
}

/// A change for the running task: sessions to stop (`AdminDown`), sessions to start (a
/// changed one takes over its predecessor's state channel), the receive sockets' TTLs.
enum Cmd {
    Stop,
    Apply {
        remove: Vec<String>,
        add: Vec<Running>,
        retime: Vec<Instance>,
        min_ttl: (Option<u8>, Option<u8>),
        new_rx4: Option<UdpSocket>,
        new_rx6: Option<UdpSocket>,
    },
}

fn socket_err<'a>(name: &'a str, what: &'static str) -> impl FnOnce(std::io::Error) -> Error + 'a {
    move |source| Error::Socket {
        name: name.to_owned(),
        what,
        source,
    }
}

fn receive_socket(v6: bool, min_ttl: u8) -> std::io::Result<UdpSocket> {
    let (domain, addr) = if v6 {
        (
            socket2::Domain::IPV6,
            SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), wire::PORT),
        )
    } else {
        (
            socket2::Domain::IPV4,
            SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), wire::PORT),
        )
    };
    let s = socket2::Socket::new(domain, socket2::Type::DGRAM, Some(socket2::Protocol::UDP))?;
    if v6 {
        s.set_only_v6(true)?;
    }
    // IPv4 only: keepalived sends IPv6 BFD with hop limit 64 by default (`hoplimit`), so
    // a GTSM check of 255 would refuse it.
    if !v6 {
        crate::sys::set_min_ttl(&s, min_ttl)?;
    }
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    UdpSocket::from_std(s.into())
}

/// A send socket on a port in 49152–65535 (RFC 5881 §4), tried from a start derived
/// from the discriminator.
fn send_socket(inst: &Instance, disc: u32) -> std::io::Result<UdpSocket> {
    let v6 = inst.neighbor.is_ipv6();
    let src = inst.source.unwrap_or(if v6 {
        Ipv6Addr::UNSPECIFIED.into()
    } else {
        Ipv4Addr::UNSPECIFIED.into()
    });
    let domain = if v6 {
        socket2::Domain::IPV6
    } else {
        socket2::Domain::IPV4
    };
    let s = socket2::Socket::new(domain, socket2::Type::DGRAM, Some(socket2::Protocol::UDP))?;
    if v6 {
        s.set_unicast_hops_v6(u32::from(inst.ttl))?;
    } else {
        s.set_ttl(u32::from(inst.ttl))?;
    }
    let start = u16::try_from(disc % 16384).unwrap_or(0);
    let mut last = None;
    for i in 0..64u16 {
        let port = 49152 + (start + i * 257) % 16384;
        match s.bind(&SocketAddr::new(src, port).into()) {
            Ok(()) => {
                s.set_nonblocking(true)?;
                return UdpSocket::from_std(s.into());
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no free source port")))
}

/// A random non-zero discriminator (from the clock and the process, mixed).
fn discriminator(i: usize) -> u32 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mut x = u64::try_from(t & u128::from(u64::MAX)).unwrap_or(0)
        ^ (u64::from(std::process::id()) << 32)
        ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    u32::try_from(x & 0xffff_ffff).unwrap_or(1).max(1)
}

/// Two sessions with one neighbour could not tell their packets apart.
fn check_neighbors(instances: &[Instance]) -> Result<(), Error> {
    let mut seen: HashMap<IpAddr, &str> = HashMap::new();
    for i in instances {
        if let Some(other) = seen.insert(i.neighbor, &i.name) {
            return Err(Error::Duplicate(
                i.name.clone(),
                i.neighbor,
                other.to_owned(),
            ));
        }
    }
    Ok(())
}

/// The receive sockets' minimum TTL (IPv4, IPv6): the lowest any session accepts.
fn min_ttls(instances: &[Instance]) -> (Option<u8>, Option<u8>) {
    let min = |v6: bool| {
        instances
            .iter()
            .filter(|i| i.neighbor.is_ipv6() == v6)
            .map(|i| 255u8.saturating_sub(i.max_hops))
            .min()
    };
    (min(false), min(true))
}

fn open_receive(v6: bool, min_ttl: Option<u8>) -> Result<Option<UdpSocket>, Error> {
    let what = if v6 {
        "listening on UDP [::]:3784"
    } else {
        "listening on UDP 0.0.0.0:3784"
    };
    min_ttl
        .map(|m| receive_socket(v6, m).map_err(socket_err("*", what)))
        .transpose()
}

/// Opens the send sockets of new sessions (discriminators from `first` on), each with a
/// fresh state channel whose receiver goes into `watches`.
fn start_sessions(
    instances: &[Instance],
    first: usize,
    watches: &mut HashMap<String, watch::Receiver<Seen>>,
) -> Result<Vec<Running>, Error> {
    let now = Instant::now();
    let mut running = Vec::new();
    for (n, inst) in instances.iter().enumerate() {
        let disc = discriminator(first + n);
        let out =
            send_socket(inst, disc).map_err(socket_err(&inst.name, "opening the send socket"))?;
        let (state_tx, state_rx) = watch::channel(Seen {
            state: State::Down,
            downs: 0,
        });
        watches.insert(inst.name.clone(), state_rx);
        let s = Session::new(inst.session.clone(), disc, now, u64::from(disc) << 1 | 1);
        let status = Status {
            name: inst.name.clone(),
            neighbor: inst.neighbor,
            state: State::Down,
            remote_state: State::Down,
            local_diag: diag::text(0),
            remote_diag: diag::text(0),
            detection_time_ms: 0,
            packets_in: 0,
            packets_out: 0,
            dropped: 0,
            transitions: 0,
        };
        running.push(Running {
            inst: inst.clone(),
            s,
            out,
            state_tx,
            status,
        });
    }
    Ok(running)
}

impl Bfd {
    /// Opens the sockets and starts every session (in Down state).
    pub fn start(instances: Vec<Instance>) -> Result<Bfd, Error> {
        Bfd::start_with_status(instances, Arc::default())
    }

    /// As [`Bfd::start`], publishing the sessions' status in `status` (kept up to date
    /// on every packet and timer, for the operator interface).
    pub fn start_with_status(
        instances: Vec<Instance>,
        status: Arc<Mutex<Vec<Status>>>,
    ) -> Result<Bfd, Error> {
        check_neighbors(&instances)?;
        let min_ttl = min_ttls(&instances);
        let rx4 = open_receive(false, min_ttl.0)?;
        let rx6 = open_receive(true, min_ttl.1)?;
        let mut watches = HashMap::new();
        let running = start_sessions(&instances, 0, &mut watches)?;
        if let Ok(mut s) = status.lock() {
            *s = running.iter().map(|r| r.status.clone()).collect();
        }
        let (cmd_tx, cmd_rx) = tokio::sync::mpsc::unbounded_channel();
        let task = tokio::spawn(run(running, rx4, rx6, status.clone(), cmd_rx));
        Ok(Bfd {
            watches,
            status,
            cmd: Some(cmd_tx),
            task: Some(task),
            next: instances.len(),
            config: instances,
            min_ttl,
        })
    }

    /// Reconciles the running sessions with `want`: unchanged sessions go on untouched
    /// (no packet of theirs changes, their followers notice nothing), removed ones send
    /// `AdminDown` and stop, new ones start, and a changed one restarts with its new
    /// settings while its followers keep their channel. All or nothing: an error (a
    /// duplicate neighbour, a socket that cannot be opened) changes nothing.
    pub fn apply(&mut self, want: Vec<Instance>) -> Result<Applied, Error> {
        check_neighbors(&want)?;
        let mut out = Applied::default();
        let mut starting = Vec::new();
        for w in &want {
            match self.config.iter().find(|c| c.name == w.name) {
                Some(c) if c == w => out.kept.push(w.name.clone()),
                Some(c)
                    if c.neighbor == w.neighbor
                        && c.source == w.source
                        && c.ttl == w.ttl
                        && c.max_hops == w.max_hops =>
                {
                    out.retimed.push(w.name.clone());
                }
                Some(_) => {
                    out.changed.push(w.name.clone());
                    starting.push(w.clone());
                }
                None => {
                    out.added.push(w.name.clone());
                    starting.push(w.clone());
                }
            }
        }
        out.removed = self
            .config
            .iter()
            .filter(|c| !want.iter().any(|w| w.name == c.name))
            .map(|c| c.name.clone())
            .collect();
        if out.changed.is_empty()
            && out.added.is_empty()
            && out.removed.is_empty()
            && out.retimed.is_empty()
        {
            return Ok(out);
        }
        let retime: Vec<Instance> = want
            .iter()
            .filter(|w| out.retimed.contains(&w.name))
            .cloned()
            .collect();
        let min_ttl = min_ttls(&want);
        let new_rx4 = if self.min_ttl.0.is_none() {
            open_receive(false, min_ttl.0)?
        } else {
            None
        };
        let new_rx6 = if self.min_ttl.1.is_none() {
            open_receive(true, min_ttl.1)?
        } else {
            None
        };
        let mut watches = HashMap::new();
        let add = start_sessions(&starting, self.next, &mut watches)?;
        self.next += starting.len();
        let mut remove = out.removed.clone();
        remove.extend(out.changed.iter().cloned());
        // The task applies it at its next turn; the channels of new sessions are valid
        // from now on.
        if let Some(cmd) = &self.cmd {
            let _ = cmd.send(Cmd::Apply {
                remove,
                add,
                retime,
                min_ttl,
                new_rx4,
                new_rx6,
            });
        }
        for name in &out.removed {
            self.watches.remove(name);
        }
        for name in &out.added {
            if let Some(w) = watches.remove(name) {
                self.watches.insert(name.clone(), w);
            }
        }
        self.min_ttl = min_ttl;
        self.config = want;
        Ok(out)
    }

    /// The configuration this was started with (a reload with the same one keeps it).
    pub fn config(&self) -> &[Instance] {
        &self.config
    }

    /// Every session's state channel, by `bfd_instance` name.
    pub fn watches(&self) -> HashMap<String, watch::Receiver<Seen>> {
        self.watches.clone()
    }

    /// The state channel of a session, by `bfd_instance` name.
    pub fn watch(&self, name: &str) -> Option<watch::Receiver<Seen>> {
        self.watches.get(name).cloned()
    }

    pub fn status(&self) -> Vec<Status> {
        self.status.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Sends `AdminDown` to every neighbour (so that they go Down at once) and stops.
    pub async fn stop(mut self) {
        if let Some(s) = self.cmd.take() {
            let _ = s.send(Cmd::Stop);
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

impl Drop for Bfd {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

fn log_transition(r: &Running, t: Transition) {
    if t.to == State::Up {
        tracing::info!(
            "({}) Entering Up state (neighbor {})",
            r.inst.name,
            r.inst.neighbor
        );
    } else {
        tracing::warn!(
            "({}) Entering {} state (Local diagnostic - {}, Remote diagnostic - {})",
            r.inst.name,
            t.to,
            diag::text(t.diag),
            diag::text(r.s.remote_diag())
        );
    }
}

fn note(r: &mut Running, t: Option<Transition>) {
    if let Some(t) = t {
        log_transition(r, t);
        r.status.transitions += 1;
        let fell = matches!(t.from, State::Init | State::Up)
            && matches!(t.to, State::Down | State::AdminDown);
        r.state_tx.send_modify(|w| {
            w.state = t.to;
            w.downs += u64::from(fell);
        });
    }
    r.status.state = r.s.state();
    r.status.remote_state = r.s.remote_state();
    r.status.local_diag = diag::text(r.s.local_diag());
    r.status.remote_diag = diag::text(r.s.remote_diag());
    r.status.detection_time_ms =
        u64::try_from(r.s.detection_time().as_millis()).unwrap_or(u64::MAX);
}

async fn recv(s: Option<&UdpSocket>, buf: &mut [u8]) -> std::io::Result<(usize, SocketAddr)> {
    match s {
        Some(s) => s.recv_from(buf).await,
        None => std::future::pending().await,
    }
}

fn deliver(running: &mut [Running], buf: &[u8], from: SocketAddr, now: Instant) {
    let parsed = Packet::new_checked(buf).and_then(|p| Repr::parse(&p));
    let from_ip = match from.ip() {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 @ IpAddr::V4(_) => v4,
    };
    let Some(r) = running.iter_mut().find(|r| r.inst.neighbor == from_ip) else {
        tracing::debug!("BFD: packet from {from} matches no bfd_instance");
        return;
    };
    let p = match parsed {
        Ok(p) => p,
        Err(e) => {
            r.status.dropped += 1;
            tracing::debug!("({}) BFD: discarding packet from {from}: {e}", r.inst.name);
            return;
        }
    };
    r.status.packets_in += 1;
    match r.s.on_packet(now, &p) {
        Ok(t) => note(r, t),
        Err(e) => {
            r.status.dropped += 1;
            tracing::debug!("({}) BFD: discarding packet from {from}: {e}", r.inst.name);
        }
    }
}

async fn send(r: &mut Running, p: &Repr) {
    let dst = SocketAddr::new(r.inst.neighbor, wire::PORT);
    match r.out.send_to(&p.emit(), dst).await {
        Ok(_) => r.status.packets_out += 1,
        Err(e) => tracing::warn!("({}) BFD: sending to {dst}: {e}", r.inst.name),
    }
}

/// Applies a [`Cmd::Apply`] in the running task.
async fn reconcile(running: &mut Vec<Running>, remove: &[String], add: Vec<Running>) {
    let mut channels = HashMap::new();
    let mut k = 0;
    while k < running.len() {
        if remove.contains(&running[k].inst.name) {
            let mut r = running.remove(k);
            let (t, p) = r.s.admin_down();
            note(&mut r, t);
            send(&mut r, &p).await;
            channels.insert(r.inst.name.clone(), r.state_tx);
        } else {
            k += 1;
        }
    }
    for mut r in add {
        // A changed session keeps its followers: they see it go Down and come back.
        if let Some(tx) = channels.remove(&r.inst.name) {
            tx.send_modify(|w| {
                let fell = matches!(w.state, State::Init | State::Up);
                w.state = State::Down;
                w.downs += u64::from(fell);
            });
            r.state_tx = tx;
        }
        tracing::info!(
            "({}) BFD session starting (neighbor {})",
            r.inst.name,
            r.inst.neighbor
        );
        running.push(r);
    }
}

fn set_min_ttl(s: Option<&UdpSocket>, ttl: Option<u8>) {
    if let (Some(s), Some(m)) = (s, ttl) {
        if let Err(e) = crate::sys::set_min_ttl(&socket2::SockRef::from(s), m) {
            tracing::warn!("BFD: setting the minimum TTL {m}: {e}");
        }
    }
}

async fn run(
    mut running: Vec<Running>,
    mut rx4: Option<UdpSocket>,
    mut rx6: Option<UdpSocket>,
    status: Arc<Mutex<Vec<Status>>>,
    mut cmds: tokio::sync::mpsc::UnboundedReceiver<Cmd>,
) {
    let mut buf4 = [0u8; 512];
    let mut buf6 = [0u8; 512];
    loop {
        let now = Instant::now();
        for r in &mut running {
            let t = r.s.on_timeout(now);
            note(r, t);
            while let Some(p) = r.s.poll_transmit(now) {
                send(r, &p).await;
            }
        }
        if let Ok(mut s) = status.lock() {
            *s = running.iter().map(|r| r.status.clone()).collect();
        }
        let next = running
            .iter()
            .filter_map(|r| r.s.next_deadline())
            .min()
            .unwrap_or(now + Duration::from_hours(1));
        tokio::select! {
            cmd = cmds.recv() => match cmd {
                None | Some(Cmd::Stop) => break,
                Some(Cmd::Apply { remove, add, retime, min_ttl, new_rx4, new_rx6 }) => {
                    reconcile(&mut running, &remove, add).await;
                    for inst in retime {
                        if let Some(r) = running.iter_mut().find(|r| r.inst.name == inst.name) {
                            tracing::info!("({}) BFD session timers changed: Poll sequence", inst.name);
                            r.s.reconfigure(inst.session.clone(), Instant::now());
                            r.inst = inst;
                        }
                    }
                    if min_ttl.0.is_none() {
                        rx4 = None;
                    } else if new_rx4.is_some() {
                        rx4 = new_rx4;
                    } else {
                        set_min_ttl(rx4.as_ref(), min_ttl.0);
                    }
                    if min_ttl.1.is_none() {
                        rx6 = None;
                    } else if new_rx6.is_some() {
                        rx6 = new_rx6;
                    }
                }
            },
            got = recv(rx4.as_ref(), &mut buf4) => {
                if let Ok((n, from)) = got {
                    deliver(&mut running, &buf4[..n], from, Instant::now());
                }
            }
            got = recv(rx6.as_ref(), &mut buf6) => {
                if let Ok((n, from)) = got {
                    deliver(&mut running, &buf6[..n], from, Instant::now());
                }
            }
            () = tokio::time::sleep_until(next.into()) => {}
        }
    }
    for r in &mut running {
        let (t, p) = r.s.admin_down();
        note(r, t);
        send(r, &p).await;
    }
    if let Ok(mut s) = status.lock() {
        *s = running.iter().map(|r| r.status.clone()).collect();
    }
}
