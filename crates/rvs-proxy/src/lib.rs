//! `rvs-proxy`: the userspace data plane. Listens on each virtual service address
//! (TCP and UDP, IPv4 and IPv6, `IP_FREEBIND` so a BACKUP director can listen before it
//! holds the VIP), asks the shared scheduling core (`rvs-sched`) for a real server per new
//! connection or UDP flow, and relays both directions.
//!
//! What it does with IPVS forwarding methods: `lb_kind NAT` is exactly what a proxy does;
//! DR and TUN are served as a proxy too (a one-time warning says the XDP or kernel-IPVS
//! data plane forwards them for real).
//!
//! Invariants: each service has its own [`ServiceShard`] — scheduling table, settings,
//! counters — and a connection holds its service's shard from accept to close, so the
//! packet path never waits on another service or on the control plane's global state
//! (the service list is an `ArcSwap` the control plane swaps whole; the splice pipe pool
//! is lock-free). A shard's table mutex is held only for a table operation (never across
//! an await), by its own connections and by the proxy's upkeep task (timers, and the
//! listings it publishes in bounded chunks, [`view`]); the control plane never takes it.
//! A relay never touches it except at open and close. Listeners of unchanged services are never re-created by
//! a reload.

mod buf;
mod dgram;
mod splice;
mod sys;
mod tcp;
mod udp;
pub mod view;
mod workers;

use arc_swap::ArcSwap;
use rvs_sched::desired::{Desired, DesiredService};
use rvs_sched::estimator::{Estimator, Rates, Totals, INTERVAL_S};
use rvs_sched::table::ApplyReport;
use rvs_sched::{Compat, Ipvs, Proto, SvcKey, Timeouts};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

/// Options of the proxy data plane.
#[derive(Debug, Clone)]
pub struct ProxyOptions {
    /// If a real server refuses a connection, ask the scheduler once more (another
    /// server). On by default; `--no-retry` turns it off.
    pub retry_refused: bool,
    /// Connect timeout when the config gives none.
    pub connect_timeout: Duration,
    /// Keep the table and counters only, never listen: for a packet data plane that
    /// forwards itself and uses this table for listings and statistics.
    pub table_only: bool,
    /// Descriptors the proxy may hold for connections, UDP flows and splice pipes; `None`:
    /// the open-files limit less [`RESERVED_FDS`], read when the proxy starts.
    pub max_fds: Option<u64>,
    /// Most UDP flows (client address → real server, one socket each) per service.
    pub udp_flows_per_service: usize,
    /// Worker threads of the proxy's own (each a current-thread runtime with one
    /// `SO_REUSEPORT` listening socket per TCP service; a connection stays on the worker
    /// that accepted it). 0: the listeners and connections run on the runtime that
    /// makes the proxy.
    pub workers: usize,
}

/// Descriptors kept for everything but relayed traffic (the control socket, metrics,
/// health checks, VRRP, config files, logs): a flood of connections or UDP sources can
/// never take them.
pub const RESERVED_FDS: u64 = 512;

/// Default cap of UDP flows per service.
pub const UDP_FLOWS_PER_SERVICE: usize = 10_000;

impl Default for ProxyOptions {
    fn default() -> Self {
        ProxyOptions {
            retry_refused: true,
            connect_timeout: Duration::from_secs(5),
            table_only: false,
            max_fds: None,
            udp_flows_per_service: UDP_FLOWS_PER_SERVICE,
            workers: 0,
        }
    }
}

/// Errors of the proxy data plane.
#[derive(Debug)]
pub enum ProxyError {
    /// A listening socket could not be created; names the address.
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

impl std::fmt::Display for ProxyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProxyError::Listen { addr, source } => write!(f, "cannot listen on {addr}: {source}"),
        }
    }
}

impl std::error::Error for ProxyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ProxyError::Listen { source, .. } => Some(source),
        }
    }
}

/// Byte and connection counters of one real server (as IPVS keeps them). "Packets" are
/// the reads and writes the proxy made: a proxy does not see the client's packets.
#[derive(Debug, Default)]
pub struct Counters {
    pub conns: AtomicU64,
    pub in_bytes: AtomicU64,
    pub out_bytes: AtomicU64,
    pub in_pkts: AtomicU64,
    pub out_pkts: AtomicU64,
    /// Starts with zero totals, like the kernel's (created with the service).
    estimator: Mutex<Estimator>,
}

impl Counters {
    pub fn totals(&self) -> Totals {
        Totals {
            conns: self.conns.load(Ordering::Relaxed),
            in_pkts: self.in_pkts.load(Ordering::Relaxed),
            out_pkts: self.out_pkts.load(Ordering::Relaxed),
            in_bytes: self.in_bytes.load(Ordering::Relaxed),
            out_bytes: self.out_bytes.load(Ordering::Relaxed),
        }
    }

    /// Sets the totals (a packet data plane copies its own counters into the listings').
    pub fn store(&self, t: Totals) {
        self.conns.store(t.conns, Ordering::Relaxed);
        self.in_pkts.store(t.in_pkts, Ordering::Relaxed);
        self.in_bytes.store(t.in_bytes, Ordering::Relaxed);
        self.out_pkts.store(t.out_pkts, Ordering::Relaxed);
        self.out_bytes.store(t.out_bytes, Ordering::Relaxed);
    }

    /// The 2-second EWMA rates (kernel estimator).
    pub fn rates(&self) -> Rates {
        self.estimator
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .rates()
    }

    /// Zeroes the counters and rates (`ipvsadm -Z`).
    pub fn zero(&self) {
        for c in [
            &self.conns,
            &self.in_bytes,
            &self.out_bytes,
            &self.in_pkts,
            &self.out_pkts,
        ] {
            c.store(0, Ordering::Relaxed);
        }
        *self
            .estimator
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Estimator::default();
    }

    fn estimate(&self) {
        let t = self.totals();
        self.estimator
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .tick(t);
    }
}

/// Why a connection the proxy accepted (or a UDP datagram it received) was not delivered
/// to any server. A TCP client is then reset (RST), as IPVS rejects; each case is counted
/// per service (`Shared::undelivered`) for the metrics, `/v1/status` and `rvs status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Undelivered {
    /// The scheduler found no real server with a weight (and no sorry server took it).
    NoRealServer,
    /// Every real server tried refused the connection.
    ConnectRefused,
    /// The real server did not complete the handshake within the connect timeout (its
    /// accept queue full, or it is unreachable).
    ConnectTimeout,
    /// Another local or network error from `connect` (no route, out of descriptors…).
    ConnectError,
    /// The service is at its UDP flow limit.
    FlowLimit,
    /// The proxy's descriptor budget is spent (`RESERVED_FDS` are kept for the rest).
    Descriptors,
    /// The real server is the service's own address: connecting would loop.
    Loop,
}

impl Undelivered {
    /// Every reason, in the order listings print them.
    pub const ALL: [Undelivered; 7] = [
        Undelivered::NoRealServer,
        Undelivered::ConnectRefused,
        Undelivered::ConnectTimeout,
        Undelivered::ConnectError,
        Undelivered::FlowLimit,
        Undelivered::Descriptors,
        Undelivered::Loop,
    ];

    fn index(self) -> usize {
        self as usize
    }

    /// The label value of the reason (metrics, JSON).
    pub fn as_str(self) -> &'static str {
        match self {
            Undelivered::NoRealServer => "no_real_server",
            Undelivered::ConnectRefused => "connect_refused",
            Undelivered::ConnectTimeout => "connect_timeout",
            Undelivered::ConnectError => "connect_error",
            Undelivered::FlowLimit => "flow_limit",
            Undelivered::Descriptors => "descriptors",
            Undelivered::Loop => "loop",
        }
    }
}

impl std::fmt::Display for Undelivered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One service's share of the proxy: its scheduling table (this service alone), its
/// settings, its real servers' counters and what it could not deliver. Its listener
/// and each of its connections hold it (`Arc`) from accept to close: nothing on their
/// path is shared with another service.
pub struct ServiceShard {
    pub key: SvcKey,
    table: Mutex<Ipvs>,
    /// Settings the scheduling core does not hold (sorry server, connect timeout, PROXY
    /// protocol), swapped by a reload.
    settings: ArcSwap<DesiredService>,
    counters: Mutex<HashMap<SocketAddr, Arc<Counters>>>,
    /// Not delivered, by reason ([`Undelivered::index`]).
    undelivered: [AtomicU64; Undelivered::ALL.len()],
    /// Rate limit of this service's "out of descriptors" line.
    fd_log: Mutex<RateLog>,
    /// FULLNAT: the next of the service's local addresses (round robin).
    laddr_next: std::sync::atomic::AtomicUsize,
}

impl ServiceShard {
    fn new(want: &DesiredService) -> ServiceShard {
        ServiceShard {
            key: want.key,
            table: Mutex::new(Ipvs::new()),
            settings: ArcSwap::from_pointee(want.clone()),
            counters: Mutex::new(HashMap::new()),
            undelivered: std::array::from_fn(|_| AtomicU64::new(0)),
            fd_log: Mutex::new(RateLog::default()),
            laddr_next: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// FULLNAT: the local address to connect to `dest` from (the service's
    /// `local_addrs` of its family, in turn); `None` for other methods or without one.
    fn local_addr(&self, settings: &DesiredService, dest: SocketAddr) -> Option<std::net::IpAddr> {
        let fnat = settings
            .dests
            .iter()
            .any(|d| d.fwd == rvs_sched::Fwd::FullNat && d.addr == dest.ip());
        if !fnat {
            return None;
        }
        // Counted, then the turn's one picked: no allocation per connection.
        let mine = || {
            settings
                .local_addrs
                .iter()
                .copied()
                .filter(|a| a.is_ipv4() == dest.is_ipv4())
        };
        let n = mine().count();
        if n == 0 {
            return None;
        }
        let i = self.laddr_next.fetch_add(1, Ordering::Relaxed);
        mine().nth(i % n)
    }

    /// The service's scheduling table (hold it only for a table operation).
    pub fn table(&self) -> std::sync::MutexGuard<'_, Ipvs> {
        self.table
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The table if nobody holds it now.
    fn try_table(&self) -> Option<std::sync::MutexGuard<'_, Ipvs>> {
        match self.table.try_lock() {
            Ok(t) => Some(t),
            Err(std::sync::TryLockError::Poisoned(p)) => Some(p.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => None,
        }
    }

    fn settings(&self) -> Arc<DesiredService> {
        self.settings.load_full()
    }

    /// The counters of one of its real servers (created on first use).
    pub fn counters(&self, dest: SocketAddr) -> Arc<Counters> {
        self.counters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(dest)
            .or_default()
            .clone()
    }

    fn all_counters(&self) -> Vec<(SocketAddr, Arc<Counters>)> {
        self.counters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .map(|(k, v)| (*k, v.clone()))
            .collect()
    }

    /// Notes a refusal for lack of descriptors, logged at most once per 10 s.
    fn descriptors_exhausted(&self) {
        self.count_undelivered(Undelivered::Descriptors);
        let due = self
            .fd_log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .hit();
        if let Some(n) = due {
            tracing::warn!(
                service = %self.key,
                "out of descriptors for relayed traffic: {n} connection(s)/flow(s) refused since the last report ({RESERVED_FDS} are kept for control, health and VRRP)"
            );
        }
    }

    /// Counts a connection (or datagram) that was not delivered.
    pub fn count_undelivered(&self, why: Undelivered) {
        self.undelivered[why.index()].fetch_add(1, Ordering::Relaxed);
    }
}

/// State shared by the listeners and connections.
pub struct Shared {
    /// The services, in the order they were added (the kernel's order), swapped whole
    /// by [`Proxy::apply`]; readers never wait.
    services: ArcSwap<Vec<Arc<ServiceShard>>>,
    /// The connection timeouts every table runs with (for listings).
    timeouts: Mutex<Timeouts>,
    start: Instant,
    pub opts: ProxyOptions,
    pub draining: AtomicBool,
    /// Connections (and UDP flows) being relayed; see [`Shared::open`].
    pub live: AtomicU64,
    /// The most `live` has been since the ticker last looked: a flood that comes and
    /// goes between two ticks still makes the proxy give its memory back.
    live_peak: AtomicU64,
    warned_dr: AtomicBool,
    /// Descriptors still available to relayed traffic (see [`Shared::take_fds`]).
    fds_left: AtomicI64,
    /// Idle splice pipes, reused (a pipe is held only while a chunk moves through it);
    /// lock-free, as every bulk connection of every service takes from it.
    pipes: crossbeam_queue::ArrayQueue<splice::Pipe>,
    /// Bytes moved by splice(2) since start (bulk transfers; see `tcp::Bulk`).
    spliced: AtomicU64,
    /// The operator interface's requests for a [`view::View`], and the last one built.
    board: view::Board,
    /// The runtimes listeners and connections run on.
    workers: workers::Workers,
    /// The worker the next UDP service's socket goes to.
    udp_next: std::sync::atomic::AtomicUsize,
}

/// One relayed connection or UDP flow, counted in [`Shared::live`] while it lives.
pub(crate) struct LiveGuard(Arc<Shared>);

impl Drop for LiveGuard {
    fn drop(&mut self) {
        self.0.live.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Shared {
    /// Counts a connection or flow as live until the guard is dropped, and keeps the
    /// high-water mark the memory trim looks at.
    pub(crate) fn open(self: &Arc<Self>) -> LiveGuard {
        let now = self.live.fetch_add(1, Ordering::SeqCst) + 1;
        self.live_peak.fetch_max(now, Ordering::Relaxed);
        LiveGuard(self.clone())
    }
}

/// A log line said at most once per interval, with the count of what it stood for.
#[derive(Debug, Default)]
pub struct RateLog {
    last: Option<Instant>,
    pending: u64,
}

impl RateLog {
    /// Counts one event; returns how many to report if the line is due (every 10 s).
    pub fn hit(&mut self) -> Option<u64> {
        self.pending += 1;
        let due = self
            .last
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(10));
        if due {
            self.last = Some(Instant::now());
            return Some(std::mem::take(&mut self.pending));
        }
        None
    }
}

/// Descriptors taken from the budget, given back on drop.
pub struct FdGuard {
    shared: Arc<Shared>,
    n: i64,
}

impl Drop for FdGuard {
    fn drop(&mut self) {
        self.shared.fds_left.fetch_add(self.n, Ordering::Relaxed);
    }
}

impl Shared {
    /// Milliseconds since the proxy started: the scheduling core's clock.
    pub fn now_ms(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// The running services, in the kernel's order (most recently added last).
    pub fn services(&self) -> Arc<Vec<Arc<ServiceShard>>> {
        self.services.load_full()
    }

    /// The running services by key (one lookup table per pass of a copier).
    pub fn services_by_key(&self) -> HashMap<SvcKey, Arc<ServiceShard>> {
        self.services
            .load()
            .iter()
            .map(|s| (s.key, s.clone()))
            .collect()
    }

    /// The connection timeouts the tables run with.
    pub fn timeouts(&self) -> Timeouts {
        *self
            .timeouts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Takes `n` descriptors from the relay budget, or `None` when it is spent.
    pub fn take_fds(self: &Arc<Self>, n: i64) -> Option<FdGuard> {
        let left = self.fds_left.fetch_sub(n, Ordering::Relaxed);
        if left < n {
            self.fds_left.fetch_add(n, Ordering::Relaxed);
            return None;
        }
        Some(FdGuard {
            shared: self.clone(),
            n,
        })
    }

    /// Relay buffers holding data in flight (the gauge `rvs_proxy_relay_buffers_in_use`):
    /// a direction holds one only while it has data to pass on, so idle connections
    /// count none.
    pub fn relay_buffers_in_use(&self) -> usize {
        buf::in_use()
    }

    /// Bytes relayed by splice(2) since start (the counter `rvs_proxy_spliced_bytes`):
    /// bulk transfers, not small request/response traffic.
    pub fn spliced_bytes(&self) -> u64 {
        self.spliced.load(Ordering::Relaxed)
    }

    /// Connections accepted by each worker thread since start (one entry when the proxy
    /// runs on its caller's runtime).
    pub fn worker_connections(&self) -> Vec<u64> {
        self.workers
            .accepted
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect()
    }

    /// Descriptors left to relayed traffic (the gauge `rvs_proxy_descriptors_available`).
    pub fn fds_available(&self) -> i64 {
        self.fds_left.load(Ordering::Relaxed)
    }

    /// A splice pipe from the pool (or a new one, within the descriptor budget), with
    /// the guard of its two descriptors.
    fn pipe(self: &Arc<Self>) -> Option<(splice::Pipe, FdGuard)> {
        if let Some(p) = self.pipes.pop() {
            // A pooled pipe's descriptors were never given back: its guard takes them over.
            let guard = FdGuard {
                shared: self.clone(),
                n: 2,
            };
            return Some((p, guard));
        }
        let guard = self.take_fds(2)?;
        splice::Pipe::new().ok().map(|p| (p, guard))
    }

    /// Gives an empty pipe back to the pool (at most [`PIPE_POOL`] are kept; the rest are
    /// closed). A pooled pipe keeps its descriptors charged to the budget.
    fn return_pipe(&self, p: splice::Pipe, guard: FdGuard) {
        if self.pipes.push(p).is_ok() {
            std::mem::forget(guard);
        }
    }

    /// What was not delivered since start, per running service and reason (sorted).
    pub fn undelivered(&self) -> Vec<(SvcKey, Undelivered, u64)> {
        let mut v = Vec::new();
        for s in self.services.load().iter() {
            for why in Undelivered::ALL {
                let n = s.undelivered[why.index()].load(Ordering::Relaxed);
                if n > 0 {
                    v.push((s.key, why, n));
                }
            }
        }
        v.sort_by_key(|(k, w, _)| (k.to_string(), *w));
        v
    }

    /// Every running service's real servers' counters.
    pub fn all_counters(&self) -> Vec<((SvcKey, SocketAddr), Arc<Counters>)> {
        let mut out = Vec::new();
        for s in self.services.load().iter() {
            out.extend(s.all_counters().into_iter().map(|(d, c)| ((s.key, d), c)));
        }
        out
    }
}

/// Idle splice pipes kept for reuse.
const PIPE_POOL: usize = 64;

/// Connections whose closing makes the proxy give memory back to the kernel (see
/// `sys::trim_heap`): below this, what the allocator keeps is small.
const TRIM_AFTER: u64 = 256;

/// A service's listening sockets (one per worker for TCP) and their accept tasks.
struct Listener {
    tasks: Vec<JoinHandle<()>>,
    /// Second descriptors of the listening sockets, for a hand-over to the next rvs.
    socks: Vec<std::os::fd::OwnedFd>,
}

impl Listener {
    /// Stops accepting (the sockets stay open while `socks` holds them).
    fn abort(&self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// The proxy data plane.
pub struct Proxy {
    pub shared: Arc<Shared>,
    listeners: HashMap<SvcKey, Listener>,
    /// Listening sockets handed over by the rvs this one replaces, used instead of
    /// binding anew (so no connection is refused while the two change places).
    adopted: HashMap<SvcKey, Vec<std::os::fd::OwnedFd>>,
    ticker: JoinHandle<()>,
}

impl Proxy {
    /// Must run inside a tokio runtime.
    pub fn new(opts: ProxyOptions) -> Proxy {
        let budget = opts.max_fds.unwrap_or_else(|| {
            rustix::process::getrlimit(rustix::process::Resource::Nofile)
                .current
                .unwrap_or(1 << 20)
                .saturating_sub(RESERVED_FDS)
        });
        let workers = if opts.workers == 0 || opts.table_only {
            workers::Workers::ambient()
        } else {
            match workers::Workers::spawn(opts.workers) {
                Ok(w) => w,
                Err(e) => {
                    tracing::error!("cannot start {} proxy worker thread(s), serving on the control runtime: {e}", opts.workers);
                    workers::Workers::ambient()
                }
            }
        };
        let shared = Arc::new(Shared {
            services: ArcSwap::from_pointee(Vec::new()),
            timeouts: Mutex::new(Timeouts::default()),
            start: Instant::now(),
            opts,
            draining: AtomicBool::new(false),
            live: AtomicU64::new(0),
            live_peak: AtomicU64::new(0),
            warned_dr: AtomicBool::new(false),
            fds_left: AtomicI64::new(i64::try_from(budget).unwrap_or(i64::MAX)),
            pipes: crossbeam_queue::ArrayQueue::new(PIPE_POOL),
            spliced: AtomicU64::new(0),
            board: view::Board::default(),
            workers,
            udp_next: std::sync::atomic::AtomicUsize::new(0),
        });
        // Expire idle connections and templates once a second; run the rate estimator
        // every 2 seconds.
        let s = shared.clone();
        let ticker = tokio::spawn(async move {
            let mut iv = tokio::time::interval(Duration::from_secs(1));
            let mut n: u64 = 0;
            // Live connections at their highest since memory was last given back; after a
            // trim, one more once the count has settled (connections still closing during
            // the first free their memory after it).
            let mut high: u64 = 0;
            let mut last_live: u64 = 0;
            let mut settle = false;
            loop {
                tokio::select! {
                    _ = iv.tick() => {}
                    () = s.board.requested() => {
                        s.answer_requests();
                        continue;
                    }
                }
                let now = s.now_ms();
                // A table busy right now (its connections, a listing) is advanced on a
                // later tick: the tick never waits on a service, so it never holds a
                // runtime thread that the other services' connections need.
                for svc in s.services.load().iter() {
                    if let Some(mut table) = svc.try_table() {
                        table.advance(now);
                    }
                }
                let live = s.live.load(Ordering::Relaxed);
                high = high
                    .max(s.live_peak.swap(live, Ordering::Relaxed))
                    .max(live);
                if high >= TRIM_AFTER && live <= high / 2 {
                    // At least half of a large number of connections closed: give their
                    // buffers' memory back, off the runtime (a trim walks the heap).
                    high = live;
                    settle = true;
                    tokio::task::spawn_blocking(sys::trim_heap);
                } else if settle && live == last_live {
                    settle = false;
                    tokio::task::spawn_blocking(sys::trim_heap);
                }
                last_live = live;
                n += 1;
                if n.is_multiple_of(INTERVAL_S) {
                    for (_, c) in s.all_counters() {
                        c.estimate();
                    }
                }
            }
        });
        Proxy {
            shared,
            listeners: HashMap::new(),
            adopted: HashMap::new(),
            ticker,
        }
    }

    /// Listening sockets from the rvs this one replaces ([`Proxy::hand_over`]): a service
    /// with one listens on it instead of binding (same address and protocol: the key).
    /// A service may come with several (one per worker of the rvs that gave them).
    pub fn adopt(&mut self, socks: impl IntoIterator<Item = (SvcKey, std::os::fd::OwnedFd)>) {
        for (key, fd) in socks {
            self.adopted.entry(key).or_default().push(fd);
        }
    }

    /// Stops accepting and gives every listening socket away (for the next rvs, which
    /// [`Proxy::adopt`]s them): the sockets stay open, so clients that connect meanwhile
    /// wait in the kernel's queue instead of being refused. Established connections go
    /// on; [`Proxy::shutdown`] then drains them.
    pub fn hand_over(&mut self) -> Vec<(SvcKey, std::os::fd::OwnedFd)> {
        self.listeners
            .drain()
            .flat_map(|(key, l)| {
                l.abort();
                l.socks.into_iter().map(move |s| (key, s))
            })
            .collect()
    }

    /// Applies a desired state by difference: the scheduling tables are reconciled, new
    /// services get listeners, removed services stop listening (their connections
    /// finish), unchanged services keep their sockets. Listening errors are returned
    /// after everything else has been applied.
    pub fn apply(&mut self, want: &Desired) -> Result<ApplyReport, Vec<ProxyError>> {
        let rep = self.reconcile_services(want);
        *self
            .shared
            .timeouts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = want.timeouts;
        let mut errors = Vec::new();
        if self.shared.opts.table_only {
            return Ok(rep);
        }
        // Sets and maps, not scans: a virtual_server_group range may stand for tens of
        // thousands of services.
        let wanted: std::collections::HashSet<SvcKey> =
            want.services.iter().map(|s| s.key).collect();
        let shards = self.shared.services_by_key();
        self.listeners.retain(|key, l| {
            let keep = wanted.contains(key);
            if !keep {
                tracing::info!(service = %key, "stop listening (service removed); its connections drain");
                l.abort();
            }
            keep
        });
        for s in &want.services {
            if self.listeners.contains_key(&s.key) {
                continue;
            }
            if !s.fwd.is_nat() && !self.shared.warned_dr.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    "lb_kind DR/TUN is served as a proxy by the proxy data plane; \
                     use --dataplane xdp (or ipvs) to forward DR/TUN for real"
                );
            }
            match s.key {
                SvcKey::Addr { proto, addr, port } => {
                    let sa = SocketAddr::new(addr, port);
                    let Some(svc) = shards.get(&s.key).cloned() else {
                        continue;
                    };
                    let given = self.adopted.remove(&s.key).unwrap_or_default();
                    let task = match proto {
                        Proto::Tcp => tcp::listen(&self.shared, &svc, sa, given),
                        Proto::Udp => udp::listen(&self.shared, svc, sa, given),
                        Proto::Sctp => {
                            tracing::warn!(service = %s.key, "SCTP is not proxied: use the xdp or ipvs data plane");
                            continue;
                        }
                    };
                    match task {
                        Ok((tasks, socks)) => {
                            tracing::info!(service = %s.key, sockets = socks.len(), "listening");
                            self.listeners.insert(s.key, Listener { tasks, socks });
                        }
                        Err(e) => errors.push(ProxyError::Listen {
                            addr: sa,
                            source: e,
                        }),
                    }
                }
                SvcKey::Fwmark { mark, .. } => {
                    tracing::warn!("virtual_server fwmark {mark}: a proxy cannot see firewall marks; use the xdp or ipvs data plane");
                }
            }
        }
        if errors.is_empty() {
            Ok(rep)
        } else {
            Err(errors)
        }
    }

    /// The services' tables reconciled with `want`, each under its own lock: kept
    /// services keep their shard (and their connections, counters and listener), new
    /// ones get a shard, removed ones leave the list (their connections finish on the
    /// shard they hold). The list is swapped whole.
    fn reconcile_services(&self, want: &Desired) -> ApplyReport {
        let old = self.shared.services.load_full();
        let mut rep = ApplyReport::default();
        let add = |rep: &mut ApplyReport, r: ApplyReport| {
            rep.services_added += r.services_added;
            rep.services_removed += r.services_removed;
            rep.dests_added += r.dests_added;
            rep.dests_removed += r.dests_removed;
            rep.dests_changed += r.dests_changed;
        };
        // The first of services listed twice wins, as the scheduling table's apply does.
        let mut wanted: HashMap<SvcKey, &DesiredService> = HashMap::new();
        for w in &want.services {
            wanted.entry(w.key).or_insert(w);
        }
        let one = |w: &DesiredService| Desired {
            timeouts: want.timeouts,
            services: vec![w.clone()],
            kernel_timeouts: None,
        };
        let mut next: Vec<Arc<ServiceShard>> = Vec::with_capacity(wanted.len());
        for shard in old.iter() {
            match wanted.remove(&shard.key) {
                Some(w) => {
                    let r = shard.table().apply(&one(w), Compat::default());
                    add(&mut rep, r);
                    shard.settings.store(Arc::new(w.clone()));
                    next.push(shard.clone());
                }
                None => rep.services_removed += 1,
            }
        }
        for w in &want.services {
            if wanted.remove(&w.key).is_some() {
                let shard = Arc::new(ServiceShard::new(w));
                let r = shard.table().apply(&one(w), Compat::default());
                add(&mut rep, r);
                next.push(shard);
            }
        }
        self.shared.services.store(Arc::new(next));
        rep
    }

    /// Stops accepting; returns when connections are done or `drain` has passed.
    pub async fn shutdown(&mut self, drain: Duration) {
        self.shared.draining.store(true, Ordering::SeqCst);
        // Sockets handed over but never used (the new configuration dropped them).
        self.adopted.clear();
        for (_, l) in self.listeners.drain() {
            l.abort();
        }
        let deadline = Instant::now() + drain;
        while self.shared.live.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.shared.board.close();
        self.ticker.abort();
    }

    /// Addresses currently listened on.
    pub fn listening(&self) -> Vec<SvcKey> {
        self.listeners.keys().copied().collect()
    }
}

/// The sockets to serve `addr` on: those handed over by the previous rvs (checked to be
/// of the kind wanted and bound to `addr`; anything else is dropped), then new ones up to
/// `want` (`SO_REUSEPORT` siblings when `reuse_port`: one per worker). Sockets handed
/// over by an rvs that did not set `SO_REUSEPORT` admit no sibling: they are served as
/// they are.
fn sockets_for(
    addr: SocketAddr,
    ty: socket2::Type,
    given: Vec<std::os::fd::OwnedFd>,
    want: usize,
    reuse_port: bool,
) -> std::io::Result<Vec<socket2::Socket>> {
    let mut out = Vec::with_capacity(want.max(given.len()));
    for fd in given {
        let s = socket2::Socket::from(fd);
        let same = s.r#type().is_ok_and(|t| t == ty)
            && s.local_addr().ok().and_then(|a| a.as_socket()) == Some(addr);
        if same {
            s.set_nonblocking(true)?;
            out.push(s);
        } else {
            tracing::warn!("a socket handed over for {addr} is not one: binding a new one");
        }
    }
    if out.is_empty() && reuse_port {
        // Another process listening on the address with SO_REUSEPORT of its own would
        // let the siblings join its group and share its connections: a plain bind first
        // fails there, as a second listener on one address must.
        drop(socket(addr, ty, false)?);
    }
    while out.len() < want {
        match socket(addr, ty, reuse_port) {
            Ok(s) => out.push(s),
            Err(e) if !out.is_empty() => {
                tracing::info!(
                    "{addr}: serving the {} socket(s) handed over ({e} for another)",
                    out.len()
                );
                break;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// A listening socket with `SO_REUSEADDR` and `IP_FREEBIND` (the address need not be local
/// yet: a BACKUP director listens on the VIP before VRRP gives it the address), and
/// `SO_REUSEPORT` when asked (one per worker).
fn socket(
    addr: SocketAddr,
    ty: socket2::Type,
    reuse_port: bool,
) -> std::io::Result<socket2::Socket> {
    let domain = if addr.is_ipv4() {
        socket2::Domain::IPV4
    } else {
        socket2::Domain::IPV6
    };
    let proto = if ty == socket2::Type::STREAM {
        socket2::Protocol::TCP
    } else {
        socket2::Protocol::UDP
    };
    let s = socket2::Socket::new(domain, ty, Some(proto))?;
    s.set_reuse_address(true)?;
    if reuse_port {
        s.set_reuse_port(true)?;
    }
    if addr.is_ipv4() {
        s.set_freebind(true)?;
    } else {
        s.set_only_v6(true)?;
        s.set_freebind_ipv6(true)?;
    }
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    Ok(s)
}
