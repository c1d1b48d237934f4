//! The subagent's session with the master agent: connect to `snmp_socket`, Open, Register
//! each subtree, then answer requests from a [`Tree`] the daemon builds for each one, send
//! traps, and Ping every 15 s. When the master goes away (snmpd restarted, socket gone)
//! the session is retried with a growing pause (1 s to 15 s); traps raised meanwhile are
//! counted as dropped, never queued without bound. Nothing here blocks the daemon: it
//! talks to this task through a bounded channel and a closure that reads snapshots.

use crate::pdu::{self, Header, Kind, Pdu};
use crate::{Oid, Tree, Value};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Where the master agent listens, in net-snmp's transport syntax as keepalived's
/// `snmp_socket` takes it: `unix:PATH` or a plain path, `tcp:HOST:PORT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Socket {
    Unix(PathBuf),
    Tcp(String),
}

impl Socket {
    /// net-snmp's default `AgentX` socket.
    pub fn default_master() -> Socket {
        Socket::Unix(PathBuf::from("/var/agentx/master"))
    }

    /// Reads `snmp_socket`'s value.
    pub fn parse(s: &str) -> Result<Socket, String> {
        if let Some(p) = s.strip_prefix("unix:") {
            return Ok(Socket::Unix(PathBuf::from(p)));
        }
        if s.starts_with('/') {
            return Ok(Socket::Unix(PathBuf::from(s)));
        }
        if let Some(hp) = s.strip_prefix("tcp:") {
            if hp
                .rsplit_once(':')
                .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
            {
                return Ok(Socket::Tcp(hp.to_owned()));
            }
        }
        Err(format!(
            "snmp_socket {s:?}: rvs connects to unix:PATH, /PATH or tcp:HOST:PORT"
        ))
    }
}

impl std::fmt::Display for Socket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Socket::Unix(p) => write!(f, "unix:{}", p.display()),
            Socket::Tcp(a) => write!(f, "tcp:{a}"),
        }
    }
}

/// What the subagent registers and how it presents itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub socket: Socket,
    /// The subagent's identity in its Open (and the description).
    pub id: Oid,
    pub descr: String,
    pub subtrees: Vec<Oid>,
}

/// Builds the objects of the registered subtrees now (asynchronously: the daemon asks its
/// data plane for counters without blocking the runtime).
pub type Source = Arc<
    dyn Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = Tree> + Send>> + Send + Sync,
>;

/// A [`Source`] from a function that builds the objects at once.
pub fn source_of(f: impl Fn() -> Tree + Send + Sync + 'static) -> Source {
    Arc::new(move || {
        let t = f();
        Box::pin(async move { t })
    })
}

/// A trap: its `snmpTrapOID` and its variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trap {
    pub oid: Oid,
    pub varbinds: Vec<(Oid, Value)>,
}

/// Counters of the subagent, for logs and metrics.
#[derive(Debug, Default)]
pub struct Stats {
    pub requests: AtomicU64,
    pub traps_sent: AtomicU64,
    pub traps_dropped: AtomicU64,
    pub sessions: AtomicU64,
}

/// The daemon's side of a running subagent.
#[derive(Clone)]
pub struct Handle {
    traps: mpsc::Sender<Trap>,
    pub stats: Arc<Stats>,
}

impl Handle {
    /// Sends a trap when the session is up; never waits (a full queue drops it, counted).
    pub fn trap(&self, t: Trap) {
        if self.traps.try_send(t).is_err() {
            self.stats.traps_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Starts the subagent; it runs until `stop`.
pub fn spawn(
    cfg: Config,
    source: Source,
    stop: CancellationToken,
) -> (Handle, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(64);
    let stats = Arc::new(Stats::default());
    let h = Handle {
        traps: tx,
        stats: stats.clone(),
    };
    let task = tokio::spawn(run(cfg, source, rx, stats, stop));
    (h, task)
}

async fn run(
    cfg: Config,
    source: Source,
    mut traps: mpsc::Receiver<Trap>,
    stats: Arc<Stats>,
    stop: CancellationToken,
) {
    let started = Instant::now();
    let mut pause = Duration::from_secs(1);
    let mut warned = false;
    loop {
        let before = stats.sessions.load(Ordering::Relaxed);
        let ctx = Ctx {
            cfg: &cfg,
            source: &source,
            stats: &stats,
            stop: &stop,
            started,
        };
        let res = tokio::select! {
            () = stop.cancelled() => return,
            r = connect_and_serve(&ctx, &mut traps) => r,
        };
        if stats.sessions.load(Ordering::Relaxed) != before {
            // A session lived: warn about its end, and retry soon.
            warned = false;
            pause = Duration::from_secs(1);
        }
        match res {
            Ok(()) => return,
            Err(e) => {
                // Once per outage: a master that stays away is not news every 15 s.
                if warned {
                    tracing::debug!("SNMP: {e}");
                } else {
                    tracing::warn!("SNMP: {e}; retrying the AgentX master at {}", cfg.socket);
                    warned = true;
                }
            }
        }
        // Traps raised while there is no session are lost (counted).
        while traps.try_recv().is_ok() {
            stats.traps_dropped.fetch_add(1, Ordering::Relaxed);
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(pause) => {}
        }
        pause = (pause * 2).min(Duration::from_secs(15));
    }
}

/// Why a session ended.
#[derive(Debug, thiserror::Error)]
enum SessionError {
    #[error("cannot reach the AgentX master: {0}")]
    Connect(std::io::Error),
    #[error("AgentX session: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Pdu(#[from] pdu::Error),
    #[error("the AgentX master refused {what} (error {code})")]
    Refused { what: String, code: u16 },
    #[error("the AgentX master closed the session (reason {0})")]
    Closed(u8),
}

/// What a session works with.
struct Ctx<'a> {
    cfg: &'a Config,
    source: &'a Source,
    stats: &'a Stats,
    stop: &'a CancellationToken,
    started: Instant,
}

async fn connect_and_serve(
    ctx: &Ctx<'_>,
    traps: &mut mpsc::Receiver<Trap>,
) -> Result<(), SessionError> {
    match &ctx.cfg.socket {
        Socket::Unix(p) => {
            let s = tokio::net::UnixStream::connect(p)
                .await
                .map_err(SessionError::Connect)?;
            serve(s, ctx, traps).await
        }
        Socket::Tcp(a) => {
            let s = tokio::net::TcpStream::connect(a)
                .await
                .map_err(SessionError::Connect)?;
            serve(s, ctx, traps).await
        }
    }
}

/// Reads one PDU.
async fn read_pdu<R: AsyncRead + Unpin>(r: &mut R) -> Result<(Header, Vec<u8>), SessionError> {
    let mut head = [0u8; pdu::HEADER];
    r.read_exact(&mut head).await?;
    let h = Header::parse(&head)?;
    let mut body = vec![0u8; h.payload as usize];
    r.read_exact(&mut body).await?;
    Ok((h, body))
}

/// Waits for the Response to `packet`, answering nothing else meanwhile (only used before
/// the session serves requests).
async fn expect_response<R: AsyncRead + Unpin>(
    r: &mut R,
    packet: u32,
    what: &str,
) -> Result<Header, SessionError> {
    loop {
        let (h, body) = read_pdu(r).await?;
        match pdu::decode(&h, &body)? {
            Pdu::Response { error, .. } if h.packet == packet => {
                if error != 0 {
                    return Err(SessionError::Refused {
                        what: what.to_owned(),
                        code: error,
                    });
                }
                return Ok(h);
            }
            Pdu::Close(reason) => return Err(SessionError::Closed(reason)),
            _ => {}
        }
    }
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(
    stream: S,
    ctx: &Ctx<'_>,
    traps: &mut mpsc::Receiver<Trap>,
) -> Result<(), SessionError> {
    let Ctx {
        cfg,
        source,
        stats,
        stop,
        started,
    } = *ctx;
    let (mut rd, mut wr) = tokio::io::split(stream);
    let mut packet: u32 = 1;
    wr.write_all(&pdu::open(packet, 0, &cfg.id, &cfg.descr)?)
        .await?;
    let session = expect_response(&mut rd, packet, "the Open").await?.session;
    for t in &cfg.subtrees {
        packet += 1;
        wr.write_all(&pdu::register(session, packet, t, 127)?)
            .await?;
        match expect_response(&mut rd, packet, &format!("the registration of {t}")).await {
            Ok(_) => {}
            // Another agent (keepalived itself?) holds it: serve the rest.
            Err(SessionError::Refused { what, code }) => {
                tracing::warn!("SNMP: the AgentX master refused {what} (error {code})");
            }
            Err(e) => return Err(e),
        }
    }
    stats.sessions.fetch_add(1, Ordering::Relaxed);
    tracing::info!("SNMP: AgentX session {session} open with {}", cfg.socket);
    let mut ping = tokio::time::interval(Duration::from_secs(15));
    ping.tick().await;
    // Requests are read by their own task so that a half-read PDU is never dropped by
    // the select below.
    let (req_tx, mut req_rx) = mpsc::channel::<Result<(Header, Vec<u8>), SessionError>>(8);
    let reader = tokio::spawn(async move {
        loop {
            let r = read_pdu(&mut rd).await;
            let end = r.is_err();
            if req_tx.send(r).await.is_err() || end {
                return;
            }
        }
    });
    let res = loop {
        tokio::select! {
            () = stop.cancelled() => {
                packet += 1;
                let _ = wr.write_all(&pdu::close(session, packet, 5)?).await;
                break Ok(());
            }
            got = req_rx.recv() => {
                let Some(got) = got else { break Err(SessionError::Closed(0)) };
                let (h, body) = match got {
                    Ok(x) => x,
                    Err(e) => break Err(e),
                };
                match pdu::decode(&h, &body) {
                    Ok(p @ (Pdu::Get(_) | Pdu::GetNext(_) | Pdu::GetBulk { .. })) => {
                        stats.requests.fetch_add(1, Ordering::Relaxed);
                        let tree = source().await;
                        let vbs = pdu::answer(&p, &tree);
                        wr.write_all(&pdu::response(&h, 0, 0, &vbs)?).await?;
                    }
                    // Sets: every object rvs serves is read-only (notWritable, 17).
                    Ok(Pdu::Other(Kind::TestSet)) => {
                        wr.write_all(&pdu::response(&h, 17, 1, &[])?).await?;
                    }
                    Ok(Pdu::Other(Kind::CommitSet | Kind::UndoSet | Kind::CleanupSet)) => {
                        wr.write_all(&pdu::response(&h, 0, 0, &[])?).await?;
                    }
                    Ok(Pdu::Close(reason)) => break Err(SessionError::Closed(reason)),
                    Ok(_) => {}
                    // A PDU rvs cannot read: parseError (266) to the master, session kept.
                    Err(e) => {
                        tracing::debug!("SNMP: {e}");
                        wr.write_all(&pdu::response(&h, 266, 0, &[])?).await?;
                    }
                }
            }
            Some(t) = traps.recv() => {
                packet += 1;
                let up = u32::try_from(started.elapsed().as_millis() / 10).unwrap_or(u32::MAX);
                wr.write_all(&pdu::notify(session, packet, up, &t.oid, &t.varbinds)?).await?;
                stats.traps_sent.fetch_add(1, Ordering::Relaxed);
            }
            _ = ping.tick() => {
                packet += 1;
                wr.write_all(&pdu::ping(session, packet)?).await?;
            }
        }
    };
    reader.abort();
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snmp_socket_forms() {
        assert_eq!(
            Socket::parse("unix:/run/agentx"),
            Ok(Socket::Unix("/run/agentx".into()))
        );
        assert_eq!(
            Socket::parse("/var/agentx/master"),
            Ok(Socket::default_master())
        );
        assert_eq!(
            Socket::parse("tcp:127.0.0.1:705"),
            Ok(Socket::Tcp("127.0.0.1:705".into()))
        );
        assert!(Socket::parse("udp:127.0.0.1:161").is_err());
        assert!(Socket::parse("tcp:localhost").is_err());
    }
}
