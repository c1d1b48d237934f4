//! TCP: accept on the virtual address, schedule, connect, relay both ways with correct
//! half-close (a FIN one way leaves the other way flowing), RST propagation, and the
//! IPVS idle timeout.

use crate::buf::{self, Buf};
use crate::{Counters, ServiceShard, Shared, Undelivered};
use rvs_sched::{ConnRef, Dir, Packet, Proto, TcpFlags, Verdict};
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Accepts on `addr`: one socket per worker of the proxy (`SO_REUSEPORT`), the sockets
/// handed over in `given` first; returns the accept tasks and second descriptors of the
/// sockets (for a later hand-over).
pub fn listen(
    shared: &Arc<Shared>,
    svc: &Arc<ServiceShard>,
    addr: SocketAddr,
    given: Vec<std::os::fd::OwnedFd>,
) -> std::io::Result<(Vec<JoinHandle<()>>, Vec<std::os::fd::OwnedFd>)> {
    let want = shared.workers.sockets();
    let reuse_port = shared.workers.own();
    let socks = crate::sockets_for(addr, socket2::Type::STREAM, given, want, reuse_port)?;
    let mut tasks = Vec::with_capacity(socks.len());
    let mut dups = Vec::with_capacity(socks.len());
    for (i, s) in socks.into_iter().enumerate() {
        // Accepted sockets inherit TCP_NODELAY from the listener: no setsockopt per
        // connection.
        s.set_nodelay(true)?;
        // listen(2) again on a handed-over socket only sets the backlog.
        s.listen(4096)?;
        let std_listener = std::net::TcpListener::from(s);
        dups.push(std::os::fd::OwnedFd::from(std_listener.try_clone()?));
        let rt = shared.workers.handle(i);
        // Registered with the worker's own runtime: its connections stay there.
        let listener = {
            let _in = rt.enter();
            TcpListener::from_std(std_listener)?
        };
        tasks.push(rt.spawn(accept(shared.clone(), svc.clone(), addr, listener, i)));
    }
    Ok((tasks, dups))
}

/// One listening socket's accept loop (on worker `worker`).
async fn accept(
    shared: Arc<Shared>,
    svc: Arc<ServiceShard>,
    addr: SocketAddr,
    listener: TcpListener,
    worker: usize,
) {
    let key = svc.key;
    let mut accept_log = crate::RateLog::default();
    loop {
        match listener.accept().await {
            Ok((client, peer)) => {
                shared.workers.count(worker);
                // A connection costs two descriptors (the client's, the real server's);
                // past the budget the client is reset at once, so a flood never takes
                // what control, health checks and VRRP need.
                let Some(fds) = shared.take_fds(2) else {
                    rst_on_close(&client);
                    drop(client);
                    svc.descriptors_exhausted();
                    continue;
                };
                let sh = shared.clone();
                let svc = svc.clone();
                tokio::spawn(async move {
                    let live = sh.open();
                    serve(&sh, &svc, addr, client, peer).await;
                    drop(live);
                    drop(fds);
                });
            }
            Err(e) => {
                // Out of file descriptors and the like: a local problem, not the
                // client's; back off a little instead of spinning, and say so at most
                // once per 10 s.
                let due = accept_log.hit();
                if let Some(n) = due {
                    tracing::warn!(service = %key, "accept failed ({n} times since the last report): {e}");
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

fn packet(client: SocketAddr, vip: SocketAddr, tcp: TcpFlags) -> Packet {
    Packet {
        proto: Proto::Tcp,
        src: client.ip(),
        sport: client.port(),
        dst: vip.ip(),
        dport: vip.port(),
        fwmark: 0,
        tcp,
        dir: Dir::In,
    }
}

/// Connects to `dest`, from the local address `from` when one is given (FULLNAT: the
/// kernel picks the port at connect, per destination).
async fn connect(dest: SocketAddr, from: Option<std::net::IpAddr>) -> std::io::Result<TcpStream> {
    let Some(from) = from else {
        return TcpStream::connect(dest).await;
    };
    let s = if dest.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    if from.is_ipv4() {
        crate::sys::bind_address_no_port(std::os::fd::AsFd::as_fd(&s))?;
    }
    s.bind(SocketAddr::new(from, 0))?;
    s.connect(dest).await
}

/// Asks the scheduling core for a real server; `None` when none is available.
fn schedule(
    sh: &Shared,
    svc: &ServiceShard,
    client: SocketAddr,
    vip: SocketAddr,
) -> Option<(SocketAddr, Option<ConnRef>)> {
    let now = sh.now_ms();
    let mut ipvs = svc.table();
    let Verdict::Forward {
        svc, dest, conn, ..
    } = ipvs.packet(now, &packet(client, vip, TcpFlags::SYN))
    else {
        return None;
    };
    let d = ipvs.services[svc].dest(dest);
    let port = if d.port == 0 { vip.port() } else { d.port };
    Some((SocketAddr::new(d.addr, port), conn))
}

async fn serve(
    sh: &Arc<Shared>,
    svc: &ServiceShard,
    vip: SocketAddr,
    client: TcpStream,
    peer: SocketAddr,
) {
    let key = svc.key;
    let settings = svc.settings();
    let timeout = settings.connect_timeout;
    let mut tries = if sh.opts.retry_refused { 2 } else { 1 };
    let mut upstream = None;
    // Why the last attempt failed: counted if nothing (not even a sorry server) takes it.
    let mut failure = Undelivered::NoRealServer;
    while tries > 0 && upstream.is_none() {
        tries -= 1;
        let Some((dest, conn)) = schedule(sh, svc, peer, vip) else {
            break;
        };
        if dest == vip {
            // A real server that is the service itself: each connection would open
            // another, until descriptors run out.
            tracing::warn!(service = %key, "real server [{}]:{} is this service's own address: not connecting to it", dest.ip(), dest.port());
            if let Some(c) = conn {
                svc.table().forget(c);
            }
            failure = Undelivered::Loop;
            break;
        }
        let from = svc.local_addr(&settings, dest);
        match tokio::time::timeout(timeout, connect(dest, from)).await {
            Ok(Ok(s)) => upstream = Some((s, dest, conn)),
            Ok(Err(e)) => {
                tracing::info!(service = %key, "connection to [{}]:{} failed: {e}", dest.ip(), dest.port());
                if let Some(c) = conn {
                    svc.table().forget(c);
                }
                if e.kind() != ErrorKind::ConnectionRefused {
                    failure = Undelivered::ConnectError;
                    break;
                }
                failure = Undelivered::ConnectRefused;
            }
            Err(_) => {
                tracing::info!(service = %key, "connection to [{}]:{} timed out", dest.ip(), dest.port());
                if let Some(c) = conn {
                    svc.table().forget(c);
                }
                failure = Undelivered::ConnectTimeout;
                break;
            }
        }
    }
    // No real server: the sorry server, if the service has one.
    if upstream.is_none() {
        if let Some(sorry) = settings.sorry.clone() {
            let dest = SocketAddr::new(
                sorry.addr,
                if sorry.port == 0 {
                    vip.port()
                } else {
                    sorry.port
                },
            );
            if let Ok(Ok(s)) = tokio::time::timeout(timeout, TcpStream::connect(dest)).await {
                upstream = Some((s, dest, None));
            }
        }
    }
    let Some((server, dest, conn)) = upstream else {
        // Nothing to forward to: reset the client, as IPVS rejects, and count it.
        svc.count_undelivered(failure);
        rst_on_close(&client);
        return;
    };
    let now = sh.now_ms();
    svc.table().packet(now, &packet(peer, vip, TcpFlags::ACK));
    let counters = svc.counters(dest);
    counters.conns.fetch_add(1, Ordering::Relaxed);
    // The client's socket has TCP_NODELAY from the listener.
    let _ = server.set_nodelay(true);
    let idle = {
        let ipvs = svc.table();
        let t = |st: rvs_sched::TcpState| {
            Duration::from_secs(u64::from(ipvs.timeouts.tcp[st as usize]))
        };
        Idle {
            established: t(rvs_sched::TcpState::Established),
            half_closed: t(rvs_sched::TcpState::FinWait),
        }
    };
    let proxy_v = settings.proxy_protocol;
    relay(sh, client, server, peer, vip, proxy_v, idle, &counters).await;
    if let Some(c) = conn {
        let now = sh.now_ms();
        svc.table().close(now, c);
    }
}

/// The PROXY protocol header (v1 text or v2 binary) announcing the client.
pub fn proxy_header(version: u8, client: SocketAddr, vip: SocketAddr) -> Vec<u8> {
    if version == 1 {
        let fam = if client.is_ipv4() { "TCP4" } else { "TCP6" };
        return format!(
            "PROXY {fam} {} {} {} {}\r\n",
            client.ip(),
            vip.ip(),
            client.port(),
            vip.port()
        )
        .into_bytes();
    }
    let mut h = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    h.push(0x21); // version 2, PROXY command
    match (client, vip) {
        (SocketAddr::V4(c), SocketAddr::V4(v)) => {
            h.push(0x11); // TCP over IPv4
            h.extend_from_slice(&12u16.to_be_bytes());
            h.extend_from_slice(&c.ip().octets());
            h.extend_from_slice(&v.ip().octets());
        }
        (c, v) => {
            h.push(0x21); // TCP over IPv6
            h.extend_from_slice(&36u16.to_be_bytes());
            let six = |a: SocketAddr| match a {
                SocketAddr::V6(x) => x.ip().octets(),
                SocketAddr::V4(x) => x.ip().to_ipv6_mapped().octets(),
            };
            h.extend_from_slice(&six(c));
            h.extend_from_slice(&six(v));
        }
    }
    h.extend_from_slice(&client.port().to_be_bytes());
    h.extend_from_slice(&vip.port().to_be_bytes());
    h
}

/// How long a connection may stay idle: IPVS's per-state timeouts. Once one side has
/// sent its FIN the connection is half-closed and the `FIN_WAIT` timeout (`tcpfin` of
/// `ipvsadm --set`, 120 s by default) applies, not the ESTABLISHED one (900 s).
#[derive(Debug, Clone, Copy)]
struct Idle {
    established: Duration,
    half_closed: Duration,
}

/// Relays both directions until both are closed, one side resets, or the connection is
/// idle past its state's timeout. A FIN from one side is passed on as a shutdown of the
/// other side's write half while the other direction keeps flowing; a reset (or an idle
/// timeout) closes both sides with RST and nothing before it (no FIN).
#[allow(clippy::too_many_arguments)]
async fn relay(
    sh: &Arc<Shared>,
    client: TcpStream,
    server: TcpStream,
    peer: SocketAddr,
    vip: SocketAddr,
    proxy_v: Option<u8>,
    idle: Idle,
    counters: &Counters,
) {
    let tick = Activity::new();
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    if let Some(v) = proxy_v {
        if sw.write_all(&proxy_header(v, peer, vip)).await.is_err() {
            reset(cw.as_ref(), sw.as_ref());
            cw.forget();
            sw.forget();
            return;
        }
    }
    // The copy futures borrow the halves; they are dropped when this block ends, so the
    // halves can then be reset.
    let outcome = async {
        let up = copy_half(
            sh,
            &mut cr,
            &mut sw,
            &counters.in_bytes,
            &counters.in_pkts,
            &tick,
        );
        let down = copy_half(
            sh,
            &mut sr,
            &mut cw,
            &counters.out_bytes,
            &counters.out_pkts,
            &tick,
        );
        // The idle timeout: one timer, armed for when the connection would have been
        // idle for its state's limit and moved on when it fires after traffic — a busy
        // connection wakes once per limit (900 s), an idle one never before it (it used
        // to tick every second, 10,000 idle connections 10,000 wake-ups a second).
        let mut limit = idle.established;
        let watchdog = tokio::time::sleep(limit);
        tokio::pin!(up, down, watchdog);
        let (mut up_done, mut down_done) = (false, false);
        loop {
            tokio::select! {
                r = &mut up, if !up_done => {
                    up_done = true;
                    if r == End::Reset {
                        return End::Reset;
                    }
                }
                r = &mut down, if !down_done => {
                    down_done = true;
                    if r == End::Reset {
                        return End::Reset;
                    }
                }
                () = &mut watchdog => {
                    let idle_for = tick.idle();
                    if idle_for >= limit {
                        return End::Reset;
                    }
                    watchdog
                        .as_mut()
                        .reset(tokio::time::Instant::now() + limit.saturating_sub(idle_for));
                    continue;
                }
            }
            if up_done && down_done {
                return End::Fin;
            }
            // Half-closed: the FIN_WAIT limit from now on.
            limit = idle.half_closed;
            let left = limit.saturating_sub(tick.idle());
            watchdog.as_mut().reset(tokio::time::Instant::now() + left);
        }
    }
    .await;
    if outcome == End::Reset {
        reset(cw.as_ref(), sw.as_ref());
        // Dropping a tokio write half shuts the write direction down (a FIN) before the
        // close: forgotten halves close with the read halves, and the zero linger makes
        // that close a bare RST.
        cw.forget();
        sw.forget();
    }
}

/// When a connection last carried data, in milliseconds of its own clock.
struct Activity {
    start: std::time::Instant,
    last_ms: AtomicU64,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            start: std::time::Instant::now(),
            last_ms: AtomicU64::new(0),
        }
    }

    /// Data passed now.
    fn touch(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    /// How long since data last passed (since the start when none has).
    fn idle(&self) -> Duration {
        self.start
            .elapsed()
            .saturating_sub(Duration::from_millis(self.last_ms.load(Ordering::Relaxed)))
    }
}

#[derive(Debug, PartialEq, Eq)]
enum End {
    Fin,
    Reset,
}

/// Reads in a row that filled the relay buffer after which a direction switches to
/// splice(2): data arriving faster than it is read is a bulk transfer, whose page
/// references are then moved kernel to kernel. Small request/response traffic (a read
/// that drains the socket short of the buffer) stays on the copy path — one read, one
/// write — however many bytes a long-lived keep-alive connection carries: the switch
/// used to follow bytes carried (256 KiB), so keep-alive connections crossed it within a
/// second and relayed each small response through a pipe (1.3 extra `splice` calls per
/// request, issue #20). A splice that moves less than a buffer switches back.
const SPLICE_AFTER_FULL_READS: u32 = 4;
const SPLICE_CHUNK: usize = 1 << 20;

/// The copy path's bookkeeping of whether a direction is a bulk transfer.
#[derive(Debug, Default)]
struct Bulk {
    full_reads: u32,
}

impl Bulk {
    /// After a read of `n` bytes into a relay buffer: whether to splice from now on.
    fn read(&mut self, n: usize) -> bool {
        self.full_reads = if n == buf::SIZE {
            self.full_reads + 1
        } else {
            0
        };
        self.full_reads >= SPLICE_AFTER_FULL_READS
    }

    /// After a splice moved `n` bytes: whether to go back to copying.
    fn spliced(&mut self, n: usize) -> bool {
        if n < buf::SIZE {
            self.full_reads = 0;
            true
        } else {
            false
        }
    }
}

/// How the splice path ended.
enum Spliced {
    /// The direction ended.
    End(End),
    /// Small messages again: back to the copy path.
    Small,
}

/// Copies one direction; on EOF shuts the other side's write half (FIN).
async fn copy_half(
    sh: &Arc<Shared>,
    r: &mut tokio::net::tcp::OwnedReadHalf,
    w: &mut tokio::net::tcp::OwnedWriteHalf,
    bytes: &AtomicU64,
    pkts: &AtomicU64,
    tick: &Activity,
) -> End {
    let mut bulk = Bulk::default();
    let mut splice = false;
    loop {
        if splice {
            // Boxed: the bulk path's state is not carried by every connection's task.
            match Box::pin(splice_half(sh, r, w, &mut bulk, bytes, pkts, tick)).await {
                Spliced::End(end) => return end,
                Spliced::Small => splice = false,
            }
        }
        // Data first, then a buffer: an idle direction holds none. Readiness can be
        // spurious (a freshly accepted socket reports it): the read that would block
        // gives the buffer straight back.
        if r.as_ref().readable().await.is_err() {
            return End::Reset;
        }
        let mut buf = Buf::take();
        loop {
            match read_now(r, &mut buf).await {
                Some(Ok(n)) => {
                    if let Err(end) = pass_on(w, &buf[..n], bytes, pkts, tick).await {
                        return end;
                    }
                    if bulk.read(n) {
                        splice = true;
                        break;
                    }
                }
                // Nothing more now: the buffer goes back.
                None => break,
                Some(Err(_)) => return End::Reset,
            }
        }
    }
}

/// One read if the socket has data now; `None` when it has none (the task is woken when
/// it has). Through tokio's `poll_read`, which takes a short read as the socket drained
/// and clears its readiness: the next wait goes to epoll instead of costing a `recv`
/// that would block (`try_read` made that extra syscall per message).
async fn read_now(
    r: &mut tokio::net::tcp::OwnedReadHalf,
    buf: &mut [u8],
) -> Option<std::io::Result<usize>> {
    use std::task::Poll;
    use tokio::io::AsyncRead;
    std::future::poll_fn(|cx| {
        let mut rb = tokio::io::ReadBuf::new(buf);
        match std::pin::Pin::new(&mut *r).poll_read(cx, &mut rb) {
            Poll::Ready(Ok(())) => Poll::Ready(Some(Ok(rb.filled().len()))),
            Poll::Ready(Err(e)) => Poll::Ready(Some(Err(e))),
            Poll::Pending => Poll::Ready(None),
        }
    })
    .await
}

/// Reads once and writes what came; `Err` when the direction has ended (EOF passed on as
/// a shutdown of the write half, or a reset).
async fn copy_chunk(
    r: &mut tokio::net::tcp::OwnedReadHalf,
    w: &mut tokio::net::tcp::OwnedWriteHalf,
    buf: &mut [u8],
    bytes: &AtomicU64,
    pkts: &AtomicU64,
    tick: &Activity,
) -> Result<(), End> {
    match r.read(buf).await {
        Ok(n) => pass_on(w, &buf[..n], bytes, pkts, tick).await,
        Err(_) => Err(End::Reset),
    }
}

/// Passes what one read brought to the other side, counted; nothing (EOF) is passed on
/// as a shutdown of the write half. `Err` when the direction has ended (EOF, or a write
/// that failed: a reset).
async fn pass_on(
    w: &mut tokio::net::tcp::OwnedWriteHalf,
    data: &[u8],
    bytes: &AtomicU64,
    pkts: &AtomicU64,
    tick: &Activity,
) -> Result<(), End> {
    if data.is_empty() {
        let _ = w.shutdown().await;
        return Err(End::Fin);
    }
    tick.touch();
    bytes.fetch_add(data.len() as u64, Ordering::Relaxed);
    pkts.fetch_add(1, Ordering::Relaxed);
    w.write_all(data).await.map_err(|_| End::Reset)
}

/// The bulk path: socket → pipe → socket with splice(2), no copy through userspace. A
/// pipe is taken from the shared pool only while a chunk moves through it and given
/// back empty, so an idle bulk connection holds no pipe (it used to keep two descriptors
/// per direction for its life). Without a pipe (descriptor budget spent) a chunk is
/// copied through a buffer instead.
async fn splice_half(
    sh: &Arc<Shared>,
    r: &mut tokio::net::tcp::OwnedReadHalf,
    w: &mut tokio::net::tcp::OwnedWriteHalf,
    bulk: &mut Bulk,
    bytes: &AtomicU64,
    pkts: &AtomicU64,
    tick: &Activity,
) -> Spliced {
    use tokio::io::Interest;
    loop {
        let src = r.as_ref();
        if src.readable().await.is_err() {
            return Spliced::End(End::Reset);
        }
        let Some((pipe, guard)) = sh.pipe() else {
            let mut buf = Buf::take();
            if let Err(end) = copy_chunk(r, w, &mut buf, bytes, pkts, tick).await {
                return Spliced::End(end);
            }
            continue;
        };
        let n = match src.try_io(Interest::READABLE, || pipe.fill_from(src, SPLICE_CHUNK)) {
            Ok(0) => {
                sh.return_pipe(pipe, guard);
                let _ = w.shutdown().await;
                return Spliced::End(End::Fin);
            }
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                sh.return_pipe(pipe, guard);
                continue;
            }
            Err(_) => return Spliced::End(End::Reset),
        };
        tick.touch();
        bytes.fetch_add(n as u64, Ordering::Relaxed);
        pkts.fetch_add(1, Ordering::Relaxed);
        let mut left = n;
        while left > 0 {
            let dst = w.as_ref();
            if dst.writable().await.is_err() {
                return Spliced::End(End::Reset);
            }
            match dst.try_io(Interest::WRITABLE, || pipe.drain_to(dst, left)) {
                Ok(m) => left -= m,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(_) => return Spliced::End(End::Reset),
            }
        }
        // Empty again: back to the pool.
        sh.return_pipe(pipe, guard);
        sh.spliced.fetch_add(n as u64, Ordering::Relaxed);
        if bulk.spliced(n) {
            return Spliced::Small;
        }
    }
}

/// Closes both sides with RST (`SO_LINGER` 0), as a reset on one side propagates.
fn reset(a: &TcpStream, b: &TcpStream) {
    rst_on_close(a);
    rst_on_close(b);
}

/// `SO_LINGER` with a zero timeout: closing sends RST and does not block.
fn rst_on_close(s: &TcpStream) {
    let _ = socket2::SockRef::from(s).set_linger(Some(Duration::ZERO));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_direction_splices_after_full_reads_in_a_row_and_copies_small_messages() {
        let cap = buf::SIZE;
        let mut b = Bulk::default();
        // Small reads never switch, however many.
        for _ in 0..10_000 {
            assert!(!b.read(600));
        }
        // Three full reads and a short one: still copying.
        for _ in 0..3 {
            assert!(!b.read(cap));
        }
        assert!(!b.read(cap - 1));
        for _ in 0..3 {
            assert!(!b.read(cap));
        }
        assert!(b.read(cap), "four full reads in a row: bulk");
        // Spliced chunks of a buffer or more stay on splice; a smaller one goes back,
        // and the count starts again.
        assert!(!b.spliced(1 << 20));
        assert!(!b.spliced(cap));
        assert!(b.spliced(cap - 1));
        assert!(!b.read(cap));
    }

    #[test]
    fn proxy_headers() {
        let c: SocketAddr = "198.18.1.1:4000".parse().unwrap_or_else(|_| unreachable!());
        let v: SocketAddr = "198.18.0.100:80".parse().unwrap_or_else(|_| unreachable!());
        assert_eq!(
            proxy_header(1, c, v),
            b"PROXY TCP4 198.18.1.1 198.18.0.100 4000 80\r\n"
        );
        let h = proxy_header(2, c, v);
        assert_eq!(&h[..12], b"\r\n\r\n\0\r\nQUIT\n");
        assert_eq!(&h[12..16], &[0x21, 0x11, 0, 12]);
        assert_eq!(&h[16..20], &[198, 18, 1, 1]);
        assert_eq!(&h[24..28], &[0x0f, 0xa0, 0, 80]);
    }
}
