//! Where the proxy's connections run. By default on the runtime that made the proxy
//! (tests, `rvs demo`); with [`ProxyOptions::workers`](crate::ProxyOptions) set, on
//! threads of its own, each a current-thread tokio runtime with its own epoll: a TCP
//! service then has one `SO_REUSEPORT` listening socket per worker, the kernel spreads
//! new connections over them by the 4-tuple's hash, and a connection stays on the thread
//! that accepted it for its whole life — no work stealing, no wake-up of another thread
//! (with one shared listener and tokio's multi-thread scheduler, a second thread made
//! the proxy slower, not faster: #20).

use std::sync::atomic::{AtomicU64, Ordering};
use tokio::runtime::Handle;

/// The runtimes the proxy spawns its listeners (and so its connections) on.
pub(crate) struct Workers {
    handles: Vec<Handle>,
    /// Dropped with the proxy: each worker's runtime then ends (its tasks cancelled).
    _stops: Vec<tokio::sync::oneshot::Sender<()>>,
    /// Whether the handles are threads of the proxy's own (one listening socket each).
    own: bool,
    /// Connections accepted by each worker (the metric `rvs_proxy_worker_connections`).
    pub accepted: Vec<AtomicU64>,
}

impl Workers {
    /// The runtime the caller runs on.
    pub(crate) fn ambient() -> Workers {
        Workers {
            handles: vec![Handle::current()],
            _stops: Vec::new(),
            own: false,
            accepted: vec![AtomicU64::new(0)],
        }
    }

    /// `n` threads named `rvs-proxy-N`, each running a current-thread runtime until the
    /// proxy is dropped.
    pub(crate) fn spawn(n: usize) -> std::io::Result<Workers> {
        let mut handles = Vec::with_capacity(n);
        let mut stops = Vec::with_capacity(n);
        for i in 0..n {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            handles.push(rt.handle().clone());
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            stops.push(stop);
            std::thread::Builder::new()
                .name(format!("rvs-proxy-{i}"))
                .spawn(move || {
                    // Err when the sender is dropped: the proxy is gone.
                    let _ = rt.block_on(stopped);
                })?;
        }
        Ok(Workers {
            handles,
            _stops: stops,
            own: true,
            accepted: (0..n).map(|_| AtomicU64::new(0)).collect(),
        })
    }

    /// How many listening sockets a TCP service gets: one per worker of the proxy's own.
    /// Whether the proxy runs threads of its own (`--threads`): their listeners are
    /// `SO_REUSEPORT` siblings, even a lone worker's, so that a successor with more
    /// threads (`rvs upgrade`) can add siblings to the socket it is handed.
    pub(crate) fn own(&self) -> bool {
        self.own
    }

    pub(crate) fn sockets(&self) -> usize {
        if self.own {
            self.handles.len()
        } else {
            1
        }
    }

    /// The runtime of worker `i` (modulo their number).
    pub(crate) fn handle(&self, i: usize) -> &Handle {
        &self.handles[i % self.handles.len()]
    }

    /// Counts a connection accepted by worker `i`.
    pub(crate) fn count(&self, i: usize) {
        if let Some(c) = self.accepted.get(i % self.accepted.len().max(1)) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }
}
