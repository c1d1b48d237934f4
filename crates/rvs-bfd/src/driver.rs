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
use tokio::sync::{oneshot, watch};

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

/// Running BFD sessions; stopped (`AdminDown` sent to every neighbour) by [`Bfd::stop`].
pub struct Bfd {
    watches: HashMap<String, watch::Receiver<Seen>>,
    status: Arc<Mutex<Vec<Status>>>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    config: Vec<Instance>,
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
        let mut seen: HashMap<IpAddr, &str> = HashMap::new();
        for i in &instances {
            if let Some(other) = seen.insert(i.neighbor, &i.name) {
                return Err(Error::Duplicate(
                    i.name.clone(),
                    i.neighbor,
                    other.to_owned(),
                ));
            }
        }
        let min_ttl = |v6: bool| {
            instances
                .iter()
                .filter(|i| i.neighbor.is_ipv6() == v6)
                .map(|i| 255u8.saturating_sub(i.max_hops))
                .min()
        };
        let rx4 = match min_ttl(false) {
            Some(m) => Some(
                receive_socket(false, m)
                    .map_err(socket_err("*", "listening on UDP 0.0.0.0:3784"))?,
            ),
            None => None,
        };
        let rx6 = match min_ttl(true) {
            Some(m) => Some(
                receive_socket(true, m).map_err(socket_err("*", "listening on UDP [::]:3784"))?,
            ),
            None => None,
        };
        let now = Instant::now();
        let mut running = Vec::new();
        let mut watches = HashMap::new();
        for (n, inst) in instances.iter().enumerate() {
            let disc = discriminator(n);
            let out = send_socket(inst, disc)
                .map_err(socket_err(&inst.name, "opening the send socket"))?;
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
        if let Ok(mut s) = status.lock() {
            *s = running.iter().map(|r| r.status.clone()).collect();
        }
        let (stop_tx, stop_rx) = oneshot::channel();
        let task = tokio::spawn(run(running, rx4, rx6, status.clone(), stop_rx));
        Ok(Bfd {
            watches,
            status,
            stop: Some(stop_tx),
            task: Some(task),
            config: instances,
        })
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
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
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

async fn run(
    mut running: Vec<Running>,
    rx4: Option<UdpSocket>,
    rx6: Option<UdpSocket>,
    status: Arc<Mutex<Vec<Status>>>,
    mut stop: oneshot::Receiver<()>,
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
            _ = &mut stop => break,
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
