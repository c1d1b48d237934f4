//! Serving HTTP/1.1 with hyper (through axum's router) on the control socket and the
//! metrics port, with the limits a daemon needs against a misbehaving client: the
//! request head within 5 s and at most 8 KiB, one request per connection, a lingering
//! close (a client still sending when its answer is written gets the answer, not a
//! reset), and a bound on connections served at once where asked. Stops accepting when
//! the daemon's shutdown token is cancelled.

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, ReadBuf};
use tokio_util::sync::CancellationToken;

/// The longest request head (request line and headers) a client may send.
pub const MAX_HEAD: usize = 8 * 1024;
/// How long a client may take to send its request head.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(5);

/// A connection closed gracefully when hyper is done with it: the write side is shut
/// and whatever the client still sends is read and dropped (at most 1 MiB, 1 s), so a
/// client that sent too much still reads its answer instead of a reset.
struct Lingering<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(Option<S>);

/// What a stream already given up answers (never seen: only `Drop` takes it).
fn gone<T>() -> Poll<std::io::Result<T>> {
    Poll::Ready(Err(std::io::ErrorKind::NotConnected.into()))
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send + 'static> Drop for Lingering<S> {
    fn drop(&mut self) {
        let Some(mut s) = self.0.take() else {
            return;
        };
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        rt.spawn(async move {
            let _ = s.shutdown().await;
            let mut sink = [0u8; 4096];
            let mut left = 1usize << 20;
            let drain = async {
                while left > 0 {
                    match s.read(&mut sink).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => left = left.saturating_sub(n),
                    }
                }
            };
            let _ = tokio::time::timeout(Duration::from_secs(1), drain).await;
        });
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send + 'static> AsyncRead for Lingering<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.0.as_mut() {
            Some(s) => Pin::new(s).poll_read(cx, buf),
            None => gone(),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send + 'static> AsyncWrite for Lingering<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.0.as_mut() {
            Some(s) => Pin::new(s).poll_write(cx, buf),
            None => gone(),
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.0.as_mut() {
            Some(s) => Pin::new(s).poll_flush(cx),
            None => gone(),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.0.as_mut() {
            Some(s) => Pin::new(s).poll_shutdown(cx),
            None => gone(),
        }
    }
}

/// Serves one connection with `app`, one request, within the limits above.
pub async fn serve_connection<S>(stream: S, app: axum::Router)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let io = TokioIo::new(Lingering(Some(stream)));
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEAD_TIMEOUT)
        .max_buf_size(MAX_HEAD)
        .keep_alive(false)
        .serve_connection(io, TowerToHyperService::new(app));
    if let Err(e) = conn.await {
        tracing::debug!("HTTP connection: {e}");
    }
}

/// Accepts until `stop`: each connection served by `app_for(&stream)` (which may refuse
/// the peer with another router), at most `limit` at once (the excess is closed at once
/// and counted in a log line every 10 s), each for at most `budget`.
pub async fn serve<L>(
    mut listener: L,
    limit: usize,
    budget: Duration,
    what: &'static str,
    stop: CancellationToken,
    app_for: impl Fn(&L::Io) -> axum::Router,
) where
    L: axum::serve::Listener,
    L::Io: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let permits = std::sync::Arc::new(tokio::sync::Semaphore::new(limit));
    // Requests under way when `stop` comes may finish (for at most a second).
    let conns = tokio_util::task::TaskTracker::new();
    let mut refused: u64 = 0;
    let mut last_log = std::time::Instant::now();
    loop {
        let (io, _) = tokio::select! {
            c = listener.accept() => c,
            () = stop.cancelled() => {
                conns.close();
                let _ = tokio::time::timeout(Duration::from_secs(1), conns.wait()).await;
                return;
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            drop(io);
            refused += 1;
            if last_log.elapsed() >= Duration::from_secs(10) {
                tracing::warn!(
                    "{what}: {limit} connections already served; refused {refused} more"
                );
                refused = 0;
                last_log = std::time::Instant::now();
            }
            continue;
        };
        let app = app_for(&io);
        conns.spawn(async move {
            let _ = tokio::time::timeout(budget, serve_connection(io, app)).await;
            drop(permit);
        });
    }
}
