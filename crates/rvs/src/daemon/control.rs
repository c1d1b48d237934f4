//! The control API: HTTP/1.1 + JSON on a Unix socket (mode 0600 from its first moment,
//! and each connection's peer checked with `SO_PEERCRED`: only the daemon's user, or
//! root, may read the tables or change them).
//!
//! - `GET /v1/services`: the IPVS table as `[rvs_adm::Service]` (what `rvs adm -L` prints).
//! - `GET /v1/status`: pid, config file, uptime, live connections.
//! - `POST /v1/reload`: re-read the config; `{"ok":bool,"message":...}` (a bad file keeps
//!   the running configuration, as with SIGHUP).
//!
//! The server reads one request per connection (at most 8 KiB of head, 5 s), answers and
//! closes; a malformed request gets `400` with a JSON error, never a crash.

use crate::daemon::dataplane::Kind;
use anyhow::{bail, Context as _, Result};
use rvs_proxy::Shared;
use std::collections::HashMap;
use std::io::{Read as _, Write as _};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};

const MAX_HEAD: usize = 8 * 1024;

/// Default socket: `/run/rvs/rvs.sock` as root, else `$XDG_RUNTIME_DIR/rvs.sock`, else
/// `/tmp/rvs-UID.sock`.
pub fn default_path() -> PathBuf {
    let uid = rustix::process::getuid();
    if uid.is_root() {
        return PathBuf::from("/run/rvs/rvs.sock");
    }
    if let Some(d) = std::env::var_os("XDG_RUNTIME_DIR") {
        return PathBuf::from(d).join("rvs.sock");
    }
    PathBuf::from(format!("/tmp/rvs-{}.sock", uid.as_raw()))
}

/// The socket `rvs adm` talks to: `--control`, else `$RVS_CONTROL`, else the default.
pub fn client_path(flag: Option<&Path>) -> PathBuf {
    flag.map(Path::to_path_buf)
        .or_else(|| std::env::var_os("RVS_CONTROL").map(PathBuf::from))
        .unwrap_or_else(default_path)
}

/// What the control task asks of the daemon's main loop.
pub enum Request {
    Reload(oneshot::Sender<String>),
    /// An ipvsadm command (`rvs adm -A ...`); the answer is ipvsadm's error text.
    Command(rvs_adm::cmd::Command, oneshot::Sender<Result<(), String>>),
}

/// Binds the control socket. A socket file nobody answers on (a crashed daemon's) is
/// replaced; a live one is an error: two daemons must not share a socket.
pub fn bind(path: &Path) -> Result<UnixListener> {
    if let Some(dir) = path.parent() {
        if !dir.as_os_str().is_empty() && !dir.exists() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
    }
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            bail!(
                "another rvs answers on the control socket {}",
                path.display()
            );
        }
        std::fs::remove_file(path)
            .with_context(|| format!("removing the stale control socket {}", path.display()))?;
    }
    // Bound inside a fresh directory of mode 0700, narrowed to 0600 there, then renamed
    // into place: at no moment can another user connect, whatever the umask (binding at
    // the final path and chmod-ing after left a window a local user could win).
    let file = path
        .file_name()
        .map_or_else(|| "rvs.sock".into(), |f| f.to_string_lossy().into_owned());
    let private = path.with_file_name(format!(".{file}.{}.d", std::process::id()));
    let _ = std::fs::remove_dir_all(&private);
    std::os::unix::fs::DirBuilderExt::mode(&mut std::fs::DirBuilder::new(), 0o700)
        .create(&private)
        .with_context(|| format!("creating {}", private.display()))?;
    let staged = private.join(&file);
    let bound = (|| -> Result<UnixListener> {
        let l = UnixListener::bind(&staged)
            .with_context(|| format!("binding the control socket {}", path.display()))?;
        std::fs::set_permissions(&staged, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .with_context(|| format!("chmod 0600 {}", staged.display()))?;
        std::fs::rename(&staged, path)
            .with_context(|| format!("moving the control socket to {}", path.display()))?;
        Ok(l)
    })();
    let _ = std::fs::remove_dir_all(&private);
    bound
}

/// Whether the peer of a control connection may use it: root, or the daemon's own user
/// (the socket's mode says the same; this holds even if someone loosens the mode).
fn peer_allowed(s: &UnixStream) -> std::result::Result<(), String> {
    let me = rustix::process::geteuid().as_raw();
    match s.peer_cred() {
        Ok(c) if c.uid() == 0 || c.uid() == me => Ok(()),
        Ok(c) => Err(format!(
            "uid {} may not use this control socket (only root and uid {me})",
            c.uid()
        )),
        Err(e) => Err(format!("cannot tell who is connecting: {e}")),
    }
}

pub struct Ctx {
    pub shared: Arc<Shared>,
    pub conf: PathBuf,
    pub started: Instant,
    pub tx: mpsc::Sender<Request>,
    /// Published by the main loop after every change it makes.
    pub status: std::sync::Mutex<DaemonStatus>,
    /// Published by the VRRP engine after every event.
    pub vrrp: Arc<std::sync::Mutex<Vec<rvs_vrrpd::InstanceStatus>>>,
    /// Published by the BFD driver on every packet and timer.
    pub bfd: Arc<std::sync::Mutex<Vec<rvs_bfd::driver::Status>>>,
    /// VRRP is run by this daemon (not `-C`).
    pub vrrp_enabled: bool,
    /// The kernel's sync daemons as `ipvsadm -L --daemon` prints them.
    pub sync_daemons: crate::daemon::dataplane::SyncLines,
    /// The XDP program's flows as `-Lc` lists them (XDP data plane only).
    pub xdp_flows: crate::daemon::dataplane::FlowList,
    /// `proxy`, `xdp`, `ipvs`, or `none` when only VRRP runs (`-P`).
    /// `None` with `-P` (VRRP only).
    pub dataplane: Option<Kind>,
    /// E-mail alerts sent, failed and dropped.
    pub alerts: Arc<rvs_alert::Counters>,
}

/// What the main loop knows that the tables do not: checkers and reloads.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct DaemonStatus {
    pub checks: Vec<rvs_daemon::CheckReport>,
    pub reloads_ok: u64,
    pub reloads_failed: u64,
    /// Unix time of the last successful reload; 0 when none.
    pub last_reload_unix: u64,
}

impl Ctx {
    pub fn bfd(&self) -> Vec<rvs_bfd::driver::Status> {
        self.bfd.lock().map(|b| b.clone()).unwrap_or_default()
    }

    pub fn status(&self) -> DaemonStatus {
        self.status
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The VRRP instances now (empty when VRRP is not run).
    pub fn vrrp(&self) -> Vec<rvs_vrrpd::InstanceStatus> {
        self.vrrp
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    pub fn publish(&self, f: impl FnOnce(&mut DaemonStatus)) {
        f(&mut self
            .status
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner));
    }
}

pub async fn serve(l: UnixListener, ctx: Arc<Ctx>) {
    loop {
        let Ok((s, _)) = l.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let ctx = ctx.clone();
        tokio::spawn(async move {
            if let Err(e) = handle(s, &ctx).await {
                tracing::debug!("control connection: {e}");
            }
        });
    }
}

async fn handle(mut s: UnixStream, ctx: &Ctx) -> std::io::Result<()> {
    // The request is read either way (bounded), so a refused client gets its answer
    // rather than a broken pipe.
    let allowed = peer_allowed(&s);
    let head = tokio::time::timeout(Duration::from_secs(5), read_head(&mut s)).await;
    let (status, body) = match head {
        Err(_) => (408, err_json("request head not received within 5 s")),
        Ok(Err(e)) => (400, err_json(&e)),
        Ok(Ok((head, rest))) => match read_body(&mut s, &head, rest).await {
            Ok(body) => match &allowed {
                Ok(()) => route(&head, &body, ctx).await,
                Err(why) => {
                    tracing::warn!("control socket: refused a request: {why}");
                    (403, err_json(why))
                }
            },
            Err(e) => (400, err_json(&e)),
        },
    };
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        408 => "Request Timeout",
        _ => "Internal Server Error",
    };
    let msg = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(msg.as_bytes()).await?;
    s.shutdown().await?;
    // Read what the client may still be sending (an oversized head) before closing, so
    // it gets the answer rather than a reset. Bounded in bytes and time.
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
    Ok(())
}

/// Reads an HTTP request head (up to the blank line), at most `MAX_HEAD` bytes.
const MAX_BODY: usize = 64 * 1024;

/// Reads the body announced by `Content-Length` (at most `MAX_BODY`), within 5 s.
async fn read_body(s: &mut UnixStream, head: &str, mut have: Vec<u8>) -> Result<Vec<u8>, String> {
    let len = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .map(|(_, v)| {
            v.trim()
                .parse::<usize>()
                .map_err(|_| "bad Content-Length".to_owned())
        })
        .transpose()?
        .unwrap_or(0);
    if len > MAX_BODY {
        return Err(format!("request body larger than {MAX_BODY} bytes"));
    }
    let fill = async {
        let mut chunk = [0u8; 4096];
        while have.len() < len {
            let n = s.read(&mut chunk).await.map_err(|e| e.to_string())?;
            if n == 0 {
                return Err("connection closed before the end of the body".to_owned());
            }
            have.extend_from_slice(&chunk[..n]);
        }
        have.truncate(len);
        Ok(have)
    };
    tokio::time::timeout(Duration::from_secs(5), fill)
        .await
        .map_err(|_| "request body not received within 5 s".to_owned())?
}

/// Reads an HTTP request head (up to the blank line), at most `MAX_HEAD` bytes; returns
/// it and the bytes read past it.
pub async fn read_head(
    s: &mut (impl tokio::io::AsyncRead + Unpin),
) -> Result<(String, Vec<u8>), String> {
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = buf.split_off(end + 4);
            buf.truncate(end);
            let head =
                String::from_utf8(buf).map_err(|_| "request head is not UTF-8".to_owned())?;
            return Ok((head, rest));
        }
        if buf.len() > MAX_HEAD {
            return Err(format!("request head longer than {MAX_HEAD} bytes"));
        }
        let n = s.read(&mut chunk).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("connection closed before the end of the request head".into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn err_json(msg: &str) -> String {
    serde_json::json!({ "error": msg }).to_string()
}

async fn route(head: &str, body: &[u8], ctx: &Ctx) -> (u16, String) {
    let line = head.lines().next().unwrap_or_default();
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return (400, err_json(&format!("bad request line {line:?}")));
    };
    if !version.starts_with("HTTP/1.") || parts.next().is_some() {
        return (400, err_json(&format!("bad request line {line:?}")));
    }
    let path = target.split('?').next().unwrap_or(target);
    match (method, path) {
        ("GET", "/v1/services") => match serde_json::to_string(&snapshot(&ctx.shared)) {
            Ok(b) => (200, b),
            Err(e) => (500, err_json(&e.to_string())),
        },
        ("GET", "/v1/connections") if ctx.dataplane == Some(Kind::Ipvs) => {
            kernel_connections(target)
        }
        ("GET", "/v1/connections") if ctx.dataplane == Some(Kind::Xdp) => {
            xdp_connections(ctx, target)
        }
        ("GET", "/v1/connections") => connections(&ctx.shared, target),
        ("GET", "/v1/vrrp") => match serde_json::to_string(&ctx.vrrp()) {
            Ok(b) => (200, b),
            Err(e) => (500, err_json(&e.to_string())),
        },
        ("GET", "/metrics") => (200, crate::daemon::metrics::render(ctx)),
        ("GET", "/v1/status") => {
            let st = ctx.status();
            (
                200,
                serde_json::json!({
                    "version": env!("CARGO_PKG_VERSION"),
                    "pid": std::process::id(),
                    "config": ctx.conf.display().to_string(),
                    "uptime_s": ctx.started.elapsed().as_secs(),
                    "live_connections": ctx.shared.live.load(std::sync::atomic::Ordering::Relaxed),
                    "undelivered": ctx.shared.undelivered().into_iter().map(|(k, why, n)| {
                        serde_json::json!({
                            "service": k.metric_label(),
                            "reason": why.as_str(),
                            "connections": n,
                        })
                    }).collect::<Vec<_>>(),
                    "dataplane": ctx.dataplane.map_or("none", Kind::name),
                    "timeouts": timeouts(&ctx.shared),
                    "checks": st.checks,
                    "bfd": ctx.bfd(),
                    "reloads_ok": st.reloads_ok,
                    "reloads_failed": st.reloads_failed,
                    "vrrp_running": ctx.vrrp_enabled,
                    "sync_daemons": ctx
                        .sync_daemons
                        .lock()
                        .map(|l| l.clone())
                        .unwrap_or_default(),
                    "vrrp": ctx.vrrp(),
                })
                .to_string(),
            )
        }
        ("POST", "/v1/reload") => {
            let (tx, rx) = oneshot::channel();
            if ctx.tx.send(Request::Reload(tx)).await.is_err() {
                return (500, err_json("the daemon is stopping"));
            }
            match rx.await {
                Ok(msg) => (
                    200,
                    serde_json::json!({ "ok": msg.starts_with("ok"), "message": msg }).to_string(),
                ),
                Err(_) => (500, err_json("the daemon is stopping")),
            }
        }
        ("POST", "/v1/commands") => {
            let cmd: rvs_adm::cmd::Command = match serde_json::from_slice(body) {
                Ok(c) => c,
                Err(e) => return (400, err_json(&format!("bad command: {e}"))),
            };
            // The checks `rvs adm` makes (ipvsadm's), whichever way a command arrives.
            if let Err(e) = rvs_adm::cmd::validate(&cmd) {
                return (400, err_json(&e.msg));
            }
            let (tx, rx) = oneshot::channel();
            if ctx.tx.send(Request::Command(cmd, tx)).await.is_err() {
                return (500, err_json("the daemon is stopping"));
            }
            match rx.await {
                Ok(Ok(())) => (200, serde_json::json!({ "ok": true }).to_string()),
                // ipvsadm's kernel error: the change was refused, nothing applied.
                Ok(Err(msg)) => (409, err_json(&msg)),
                Err(_) => (500, err_json("the daemon is stopping")),
            }
        }
        (
            _,
            "/v1/services" | "/v1/status" | "/v1/reload" | "/v1/commands" | "/v1/connections"
            | "/v1/vrrp",
        ) => (405, err_json(&format!("{method} is not allowed on {path}"))),
        _ => (404, err_json(&format!("no such endpoint {path}"))),
    }
}

const MAX_PAGE: usize = 100_000;

/// `GET /v1/connections?offset=N&limit=M`: one page of the connection table (default
/// limit 1000, at most 100000), with the total so a client can page.
fn page_params(target: &str) -> Result<(usize, usize), (u16, String)> {
    let mut offset = 0usize;
    let mut limit = 1000usize;
    if let Some((_, q)) = target.split_once('?') {
        for kv in q.split('&').filter(|kv| !kv.is_empty()) {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            let slot = match k {
                "offset" => &mut offset,
                "limit" => &mut limit,
                _ => return Err((400, err_json(&format!("unknown query parameter {k:?}")))),
            };
            match v.parse::<usize>() {
                Ok(n) => *slot = n,
                Err(_) => return Err((400, err_json(&format!("{k}={v:?} is not a number")))),
            }
        }
    }
    if limit == 0 || limit > MAX_PAGE {
        return Err((400, err_json(&format!("limit must be 1..={MAX_PAGE}"))));
    }
    Ok((offset, limit))
}

/// The kernel's connection table (`--dataplane ipvs`), as `ipvsadm -Lc` reads it.
fn kernel_connections(target: &str) -> (u16, String) {
    let (offset, limit) = match page_params(target) {
        Ok(p) => p,
        Err(e) => return e,
    };
    let all = match rvs_ipvs::connections() {
        Ok(c) => c,
        Err(e) => return (500, err_json(&format!("reading /proc/net/ip_vs_conn: {e}"))),
    };
    let total = all.len();
    let page: Vec<rvs_adm::Conn> = all
        .into_iter()
        .skip(offset)
        .take(limit)
        .map(|c| rvs_adm::Conn {
            proto: c.proto,
            expires_s: c.expires_s,
            state: c.state,
            caddr: c.caddr,
            cport: c.cport,
            vaddr: c.vaddr,
            vport: c.vport,
            daddr: c.daddr,
            dport: c.dport,
        })
        .collect();
    page_reply(total, offset, &page)
}

/// The XDP program's flows (`--dataplane xdp`), from the last walk of its flow table.
fn xdp_connections(ctx: &Ctx, target: &str) -> (u16, String) {
    let (offset, limit) = match page_params(target) {
        Ok(p) => p,
        Err(e) => return e,
    };
    let all = ctx.xdp_flows.lock().map(|l| l.clone()).unwrap_or_default();
    let page: Vec<rvs_adm::Conn> = all.iter().skip(offset).take(limit).cloned().collect();
    page_reply(all.len(), offset, &page)
}

fn connections(shared: &Shared, target: &str) -> (u16, String) {
    let (offset, limit) = match page_params(target) {
        Ok(p) => p,
        Err(e) => return e,
    };
    let now = shared.now_ms();
    // One service's table locked at a time, and only to copy its entries.
    let mut all = Vec::new();
    for svc in shared.services().iter() {
        let table = svc.table();
        let fwmark: Vec<bool> = table
            .services
            .iter()
            .map(|s| matches!(s.key, rvs_sched::SvcKey::Fwmark { .. }))
            .collect();
        all.extend(
            table
                .connections(now)
                .into_iter()
                .map(|c| (fwmark.get(c.svc).copied().unwrap_or(false), c)),
        );
    }
    let total = all.len();
    let page: Vec<rvs_adm::Conn> = all
        .into_iter()
        .skip(offset)
        .take(limit)
        .map(|(fwmark, c)| rvs_adm::Conn {
            proto: if c.template && fwmark {
                "IP".to_owned()
            } else {
                c.proto.name().to_owned()
            },
            expires_s: c.expires_ms / 1000,
            state: c.state.to_owned(),
            caddr: c.caddr,
            cport: c.cport,
            vaddr: c.vaddr,
            vport: c.vport,
            daddr: c.daddr,
            dport: c.dport,
        })
        .collect();
    page_reply(total, offset, &page)
}

/// One page of the connection table, as `GET /v1/connections` answers.
fn page_reply(total: usize, offset: usize, page: &[rvs_adm::Conn]) -> (u16, String) {
    (
        200,
        serde_json::json!({ "total": total, "offset": offset, "connections": page }).to_string(),
    )
}

fn timeouts(shared: &Shared) -> [u32; 3] {
    let t = shared.timeouts().shown();
    [t.0, t.1, t.2]
}

fn stats(t: rvs_sched::estimator::Totals, r: rvs_sched::estimator::Rates) -> rvs_adm::Stats {
    rvs_adm::Stats {
        conns: t.conns,
        in_pkts: t.in_pkts,
        out_pkts: t.out_pkts,
        in_bytes: t.in_bytes,
        out_bytes: t.out_bytes,
        cps: r.cps,
        in_pps: r.in_pps,
        out_pps: r.out_pps,
        in_bps: r.in_bps,
        out_bps: r.out_bps,
    }
}

fn add(a: &mut rvs_adm::Stats, b: &rvs_adm::Stats) {
    a.conns += b.conns;
    a.in_pkts += b.in_pkts;
    a.out_pkts += b.out_pkts;
    a.in_bytes += b.in_bytes;
    a.out_bytes += b.out_bytes;
    a.cps += b.cps;
    a.in_pps += b.in_pps;
    a.out_pps += b.out_pps;
    a.in_bps += b.in_bps;
    a.out_bps += b.out_bps;
}

/// The running table, as ipvsadm would see it. A service's counters are the sum of its
/// real servers' (the estimator is linear, so summed rates equal the rate of the sums up
/// to fixed-point rounding). Services deleted by a reload but still draining are hidden,
/// as the kernel unlinks them at once.
pub fn snapshot(shared: &Shared) -> Vec<rvs_adm::Service> {
    let counters: HashMap<_, _> = shared.all_counters().into_iter().collect();
    let mut out = Vec::new();
    for shard in shared.services().iter() {
        // The service's table, locked only while its entry is copied.
        let table = shard.table();
        for s in table.services.iter().filter(|s| !s.removed) {
            out.push(listing(s, &counters));
        }
    }
    out
}

/// One service of the table as ipvsadm lists it.
fn listing(
    s: &rvs_sched::Service,
    counters: &HashMap<(rvs_sched::SvcKey, SocketAddr), Arc<rvs_proxy::Counters>>,
) -> rvs_adm::Service {
    {
        let id = s.key;
        let v6 = id.is_v6();
        let prefix = s
            .persistence
            .map_or(if v6 { 128 } else { 32 }, |p| p.prefix);
        let netmask = if v6 {
            u32::from(prefix)
        } else if prefix == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(prefix.min(32)))
        };
        let mut svc = rvs_adm::Service {
            id,
            sched: s.algo().name().to_owned(),
            flags: [s.flags.fallback, s.flags.port, s.flags.sched3],
            persistent: s.persistence.map(|p| p.timeout_s),
            netmask,
            pe: None,
            ops: s.flags.ops,
            stats: rvs_adm::Stats::default(),
            dests: Vec::new(),
        };
        for (_, d) in s.dests() {
            let st = counters
                .get(&(s.key, SocketAddr::new(d.addr, d.port)))
                .map(|c| stats(c.totals(), c.rates()))
                .unwrap_or_default();
            add(&mut svc.stats, &st);
            svc.dests.push(rvs_adm::Dest {
                addr: d.addr,
                port: d.port,
                fwd: rvs_daemon::convert::adm_fwd(d.fwd),
                weight: d.weight,
                active: d.active,
                inactive: d.inactive,
                persist: d.persist,
                u_threshold: d.u_threshold,
                l_threshold: d.l_threshold,
                tun_info: (d.fwd == rvs_sched::Fwd::Tunnel)
                    .then(|| rvs_daemon::convert::tun_info(d.tun)),
                stats: st,
            });
        }
        svc
    }
}

/// Client side: one request, the body of a `200` answer, or the server's error.
pub fn call(path: &Path, method: &str, target: &str) -> Result<String> {
    match call_body(path, method, target, "")? {
        Ok(b) => Ok(b),
        Err(r) => bail!("the daemon answered {}: {}", r.status, r.msg),
    }
}

/// An answer other than 200: the status and the server's error text.
#[derive(Debug)]
pub struct Refused {
    pub status: u16,
    pub msg: String,
}

/// Client side with a JSON body; `Err` carries transport errors, `Ok(Err)` refusals.
pub fn call_body(
    path: &Path,
    method: &str,
    target: &str,
    body: &str,
) -> Result<std::result::Result<String, Refused>> {
    let mut s = std::os::unix::net::UnixStream::connect(path).with_context(|| {
        format!(
            "cannot reach rvs on its control socket {} (is `rvs run` running? \
             see --control)",
            path.display()
        )
    })?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        s,
        "{method} {target} HTTP/1.1\r\nHost: rvs\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut resp = String::new();
    s.read_to_string(&mut resp)
        .context("reading the daemon's answer")?;
    let (head, body) = resp
        .split_once("\r\n\r\n")
        .context("malformed answer from the daemon")?;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse::<u16>().ok())
        .context("malformed status line from the daemon")?;
    if status == 200 {
        return Ok(Ok(body.to_owned()));
    }
    let msg = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_owned))
        .unwrap_or_else(|| body.to_owned());
    Ok(Err(Refused { status, msg }))
}
