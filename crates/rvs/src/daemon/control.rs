//! The control API: HTTP/1.1 + JSON on a Unix socket, served by axum/hyper (mode 0600
//! from its first moment, and each connection's peer checked with `SO_PEERCRED`: only
//! the daemon's user, or root, may read the tables or change them). The JSON is
//! `rvs_api`'s schema, version 1; `docs/openapi.json` is generated from the handlers
//! here ([`ApiDoc`]) and a test keeps it current.
//!
//! - `GET /v1/services`: the running table (what `rvs adm -L` prints).
//! - `GET /v1/status`: the daemon, health checks, BFD, VRRP.
//! - `GET /v1/vrrp`, `GET /v1/connections?offset=&limit=`, `GET /metrics`.
//! - `POST /v1/reload`: re-read the config (a bad file keeps the running one, as SIGHUP).
//! - `POST /v1/commands`: an ipvsadm change (`{"op": "add_real_server", …}`).
//! - `POST /v1/bgp/drain`, `POST /v1/bgp/undrain`: withdraw every VIP from the routers
//!   (`rvs_bgp`) and announce them again.
//!
//! Limits (`daemon::http`): the request head within 5 s and 8 KiB, a body within 5 s and
//! 64 KiB, one request per connection, 64 connections at once.

use crate::daemon::dataplane::Kind;
use anyhow::{bail, Context as _, Result};
use axum::extract::{RawQuery, State};
use axum::http::{header, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use rvs_proxy::Shared;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

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
    Reload(oneshot::Sender<rvs_daemon::ReloadReport>),
    /// An ipvsadm command (`rvs adm -A ...`); the answer is ipvsadm's error text.
    Command(rvs_adm::cmd::Command, oneshot::Sender<Result<(), String>>),
    /// `rvs upgrade`: start this binary (or the one named) to take over; its pid.
    Upgrade(Option<PathBuf>, oneshot::Sender<Result<u32, String>>),
    /// `rvs bgp drain` (`true`) / `undrain`: the answer is why it cannot be done.
    Drain(bool, oneshot::Sender<Result<(), String>>),
    /// What a reload of this file (read already: its path and what was read) would do.
    Plan(
        PathBuf,
        Box<Result<rvs_conf::Parsed, String>>,
        oneshot::Sender<rvs_api::Plan>,
    ),
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
pub fn peer_allowed(s: &UnixStream) -> std::result::Result<(), String> {
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
    /// What the data plane publishes: the kernel's sync daemons, the XDP flows.
    pub snapshots: Arc<crate::daemon::dataplane::Snapshots>,
    /// `proxy`, `xdp`, `ipvs`, or `none` when only VRRP runs (`-P`).
    /// `None` with `-P` (VRRP only).
    pub dataplane: Option<Kind>,
    /// The XDP program's interface and how it was chosen (`--dataplane xdp`).
    pub xdp: Option<rvs_api::XdpAttach>,
    /// E-mail alerts sent, failed and dropped.
    pub alerts: Arc<rvs_alert::Counters>,
    /// The configuration that runs (for keepalived's dumps), swapped by reloads.
    pub config: arc_swap::ArcSwap<rvs_conf::Config>,
    /// What the peers' configurations differ in (`rvs_config_drift_peer`).
    pub drift: crate::daemon::drift::Peers,
    /// The BGP speaker's status (`rvs_bgp`), published by its thread.
    pub bgp: crate::daemon::bgp::Published,
}

/// What the main loop knows that the tables do not: checkers and reloads.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct DaemonStatus {
    pub checks: Vec<rvs_daemon::CheckReport>,
    /// Each virtual server's quorum and real servers (SNMP's checker tables).
    pub servers: Vec<rvs_daemon::VsReport>,
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

    /// The virtual servers' health (without copying the rest of the status: SNMP asks
    /// for it on every request).
    pub fn servers(&self) -> Vec<rvs_daemon::VsReport> {
        self.status
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .servers
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

/// The control API's routes and their OpenAPI description, both from the handlers
/// below (each registered once, with its `#[utoipa::path]`).
fn parts() -> (Router<Arc<Ctx>>, utoipa::openapi::OpenApi) {
    use utoipa::OpenApi as _;
    use utoipa_axum::{router::OpenApiRouter, routes};
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(services))
        .routes(routes!(status))
        .routes(routes!(vrrp))
        .routes(routes!(connections))
        .routes(routes!(reload))
        .routes(routes!(plan))
        .routes(routes!(upgrade))
        .routes(routes!(commands))
        .routes(routes!(bgp_drain))
        .routes(routes!(bgp_undrain))
        .routes(routes!(metrics))
        .routes(routes!(keepalived_dump))
        .split_for_parts()
}

/// The control API's router.
pub fn router(ctx: Arc<Ctx>) -> Router {
    parts()
        .0
        .fallback(not_found)
        .method_not_allowed_fallback(not_allowed)
        .with_state(ctx)
}

/// The API's description; the paths come from the handlers ([`parts`]).
#[derive(utoipa::OpenApi)]
#[openapi(info(
    title = "rvs control API",
    version = "1",
    description = "Served by `rvs run` on a Unix socket (HTTP/1.1, one request per connection, mode 0600, only root and the daemon's user). Socket: --control PATH; default /run/rvs/rvs.sock as root, $XDG_RUNTIME_DIR/rvs.sock otherwise (else /tmp/rvs-UID.sock). Try: curl --unix-socket /run/rvs/rvs.sock http://rvs/v1/services. Errors are 4xx/5xx with {\"error\": \"...\"}. Within v1, fields are only added."
))]
struct ApiDoc;

/// The OpenAPI document as pretty JSON (`rvs openapi`, `docs/openapi.json`).
pub fn openapi_json() -> String {
    parts()
        .1
        .to_pretty_json()
        .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

/// An error answer: a status and `{"error": "..."}`.
pub struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(rvs_api::ErrorBody { error: self.1 })).into_response()
    }
}

fn stopping() -> ApiError {
    ApiError(
        StatusCode::INTERNAL_SERVER_ERROR,
        "the daemon is stopping".into(),
    )
}

async fn not_found(uri: Uri) -> ApiError {
    ApiError(
        StatusCode::NOT_FOUND,
        format!("no such endpoint {}", uri.path()),
    )
}

async fn not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("{method} is not allowed on {}", uri.path()),
    )
}

/// The answer to a peer that may not use the socket.
fn forbidden(why: String) -> Router {
    Router::new().fallback(move || {
        let why = why.clone();
        async move { ApiError(StatusCode::FORBIDDEN, why) }
    })
}

/// Serves the control API until `stop`.
pub async fn serve(l: UnixListener, ctx: Arc<Ctx>, stop: CancellationToken) {
    let app = router(ctx);
    crate::daemon::http::serve(
        l,
        MAX_CONTROL_CONNECTIONS,
        Duration::from_mins(2),
        "control socket",
        stop,
        |s: &UnixStream| match peer_allowed(s) {
            Ok(()) => app.clone(),
            Err(why) => {
                tracing::warn!("control socket: refused a request: {why}");
                forbidden(why)
            }
        },
    )
    .await;
}

/// Control connections served at once.
const MAX_CONTROL_CONNECTIONS: usize = 64;

/// The running table.
#[utoipa::path(get, path = "/v1/services",
    responses((status = 200, description = "The virtual services in the kernel's order, with their real servers, counters and rates (what `rvs adm -L` lists).", body = [rvs_api::Service])))]
async fn services(State(ctx): State<Arc<Ctx>>) -> Json<Vec<rvs_api::Service>> {
    Json(snapshot(&ctx.shared).await.iter().map(Into::into).collect())
}

/// The daemon's state.
#[utoipa::path(get, path = "/v1/status",
    responses((status = 200, description = "Version, uptime, data plane, health checks, BFD and VRRP.", body = rvs_api::Status)))]
async fn status(State(ctx): State<Arc<Ctx>>) -> Json<rvs_api::Status> {
    Json(ctx.api_status())
}

/// The VRRP instances.
#[utoipa::path(get, path = "/v1/vrrp",
    responses((status = 200, description = "The instances in configuration order; empty when VRRP is not run.", body = [rvs_api::VrrpInstance])))]
async fn vrrp(State(ctx): State<Arc<Ctx>>) -> Json<Vec<rvs_api::VrrpInstance>> {
    Json(ctx.vrrp().iter().map(vrrp_instance).collect())
}

/// Metrics.
#[utoipa::path(get, path = "/metrics",
    responses((status = 200, description = "The Prometheus metrics in OpenMetrics text (docs/metrics.md).", body = String, content_type = "application/openmetrics-text")))]
async fn metrics(State(ctx): State<Arc<Ctx>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        crate::daemon::metrics::render(&ctx, &snapshot(&ctx.shared).await),
    )
        .into_response()
}

/// keepalived's dump files.
#[utoipa::path(get, path = "/v1/keepalived/{dump}",
    params(("dump" = String, Path, description = "`data`, `stats` or `json`: what keepalived writes to /tmp/keepalived.data, .stats and .json on SIGUSR1, SIGUSR2 and its JSON signal.")),
    responses(
        (status = 200, description = "The dump in keepalived 2.2.7's layout (text, or JSON for `json`).", body = String),
        (status = 404, description = "Another name.", body = rvs_api::ErrorBody),
    ))]
async fn keepalived_dump(
    State(ctx): State<Arc<Ctx>>,
    axum::extract::Path(dump): axum::extract::Path<String>,
) -> Result<Response, ApiError> {
    use crate::daemon::dumps::Dump;
    let (which, ctype) = match dump.as_str() {
        "data" => (Dump::Data, "text/plain; charset=utf-8"),
        "stats" => (Dump::Stats, "text/plain; charset=utf-8"),
        "json" => (Dump::Json, "application/json"),
        other => {
            return Err(ApiError(
                StatusCode::NOT_FOUND,
                format!("no keepalived dump {other:?}: data, stats or json"),
            ))
        }
    };
    let text = which.render(&ctx.config.load(), &ctx.vrrp());
    Ok(([(header::CONTENT_TYPE, ctype)], text).into_response())
}

/// One page of the connection table.
#[utoipa::path(get, path = "/v1/connections",
    params(
        ("offset" = Option<usize>, Query, description = "First entry (default 0)."),
        ("limit" = Option<usize>, Query, description = "Entries (1..=100000, default 1000)."),
    ),
    responses(
        (status = 200, description = "The page, and the table's size now (it moves between pages).", body = rvs_api::ConnectionsPage),
        (status = 400, description = "A bad parameter.", body = rvs_api::ErrorBody),
    ))]
async fn connections(
    State(ctx): State<Arc<Ctx>>,
    RawQuery(q): RawQuery,
) -> Result<Json<rvs_api::ConnectionsPage>, ApiError> {
    let (offset, limit) = page_params(q.as_deref().unwrap_or(""))?;
    let (total, page) = match ctx.dataplane {
        // /proc is read off the runtime.
        Some(Kind::Ipvs) => tokio::task::spawn_blocking(move || kernel_connections(offset, limit))
            .await
            .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))??,
        // The XDP program's flows, from the last walk of its flow table.
        Some(Kind::Xdp) => page_of(&ctx.snapshots.flows.load(), offset, limit),
        // The proxy's table, built after this request (`rvs_proxy::view`).
        _ => {
            let view = ctx.shared.view(true).await;
            page_of(view.conns.as_deref().unwrap_or_default(), offset, limit)
        }
    };
    Ok(Json(rvs_api::ConnectionsPage {
        total,
        offset,
        connections: page.iter().map(Into::into).collect(),
    }))
}

/// Re-reads the configuration file.
#[utoipa::path(post, path = "/v1/reload",
    responses((status = 200, description = "What the reload did: `ok` is false when the file was refused (the running configuration is kept, as with SIGHUP) or a part failed; `message` says why, with the file's diagnostics.", body = rvs_api::ReloadAnswer)))]
async fn reload(State(ctx): State<Arc<Ctx>>) -> Result<Json<rvs_api::ReloadAnswer>, ApiError> {
    let (tx, rx) = oneshot::channel();
    ctx.tx
        .send(Request::Reload(tx))
        .await
        .map_err(|_| stopping())?;
    let report = rx.await.map_err(|_| stopping())?;
    Ok(Json(rvs_api::ReloadAnswer {
        ok: report.is_ok(),
        message: report.message(),
    }))
}

/// What a reload would do, computed by the reload's own code; nothing is changed.
#[utoipa::path(post, path = "/v1/plan",
    request_body = rvs_api::PlanRequest,
    responses(
        (status = 200, description = "The plan: steps in the order a reload takes them, warnings, or why the file would be refused.", body = rvs_api::Plan),
        (status = 400, description = "Not a valid request (a relative path, bad JSON).", body = rvs_api::ErrorBody),
    ))]
async fn plan(
    State(ctx): State<Arc<Ctx>>,
    body: axum::body::Body,
) -> Result<Json<rvs_api::Plan>, ApiError> {
    let req: rvs_api::PlanRequest = optional_request(body, "plan").await?;
    let file = absolute("file", req.file)?.unwrap_or_else(|| ctx.conf.clone());
    // Read off the runtime, as a reload reads (a file on a slow mount blocks nobody).
    let path = file.clone();
    let parsed = tokio::task::spawn_blocking(move || {
        rvs_conf::parse_file(&path, &rvs_conf::Options::default())
    })
    .await
    .map_err(|e| format!("reading {}: {e}", file.display()));
    let (tx, rx) = oneshot::channel();
    ctx.tx
        .send(Request::Plan(file, Box::new(parsed), tx))
        .await
        .map_err(|_| stopping())?;
    Ok(Json(rx.await.map_err(|_| stopping())?))
}

/// Starts the installed binary (or `binary`) to take this daemon's place without dropping
/// connections: it receives the listening sockets, this one drains and exits.
#[utoipa::path(post, path = "/v1/upgrade",
    request_body = rvs_api::UpgradeRequest,
    responses(
        (status = 200, description = "The successor started; it takes over within seconds (its pid).", body = rvs_api::UpgradeAnswer),
        (status = 400, description = "Not a valid request (a relative path, bad JSON).", body = rvs_api::ErrorBody),
        (status = 409, description = "The successor could not be started; this daemon goes on.", body = rvs_api::ErrorBody),
    ))]
async fn upgrade(
    State(ctx): State<Arc<Ctx>>,
    body: axum::body::Body,
) -> Result<Json<rvs_api::UpgradeAnswer>, ApiError> {
    let req: rvs_api::UpgradeRequest = optional_request(body, "upgrade").await?;
    let binary = absolute("binary", req.binary)?;
    let (tx, rx) = oneshot::channel();
    ctx.tx
        .send(Request::Upgrade(binary, tx))
        .await
        .map_err(|_| stopping())?;
    match rx.await.map_err(|_| stopping())? {
        Ok(pid) => Ok(Json(rvs_api::UpgradeAnswer { pid })),
        Err(msg) => Err(ApiError(StatusCode::CONFLICT, msg)),
    }
}

/// Changes the running table as `rvs adm` (ipvsadm) does.
#[utoipa::path(post, path = "/v1/commands",
    request_body = rvs_api::Command,
    responses(
        (status = 200, description = "Applied.", body = rvs_api::CommandAnswer),
        (status = 400, description = "Not a valid command (ipvsadm's usage errors); nothing applied.", body = rvs_api::ErrorBody),
        (status = 409, description = "Refused by the table (ipvsadm's kernel errors, e.g. \"Service not defined\"); nothing applied.", body = rvs_api::ErrorBody),
    ))]
async fn commands(
    State(ctx): State<Arc<Ctx>>,
    body: axum::body::Body,
) -> Result<Json<rvs_api::CommandAnswer>, ApiError> {
    let bad = |m: String| ApiError(StatusCode::BAD_REQUEST, m);
    let bytes = read_body(body).await?;
    let api: rvs_api::Command =
        serde_json::from_slice(&bytes).map_err(|e| bad(format!("bad command: {e}")))?;
    let cmd =
        rvs_adm::cmd::Command::try_from(&api).map_err(|e| bad(format!("bad command: {e}")))?;
    // The checks `rvs adm` makes (ipvsadm's), whichever way a command arrives.
    rvs_adm::cmd::validate(&cmd).map_err(|e| bad(e.msg))?;
    let (tx, rx) = oneshot::channel();
    ctx.tx
        .send(Request::Command(cmd, tx))
        .await
        .map_err(|_| stopping())?;
    match rx.await.map_err(|_| stopping())? {
        Ok(()) => Ok(Json(rvs_api::CommandAnswer { ok: true })),
        // ipvsadm's kernel error: the change was refused, nothing applied.
        Err(msg) => Err(ApiError(StatusCode::CONFLICT, msg)),
    }
}

/// Drains this director: every VIP withdrawn from the routers (`rvs_bgp`).
#[utoipa::path(post, path = "/v1/bgp/drain",
    responses(
        (status = 200, description = "Drained: the VIPs are withdrawn; established connections go on being served (GET /v1/status shows the speaker).", body = rvs_api::CommandAnswer),
        (status = 409, description = "No rvs_bgp in the configuration.", body = rvs_api::ErrorBody),
    ))]
async fn bgp_drain(State(ctx): State<Arc<Ctx>>) -> Result<Json<rvs_api::CommandAnswer>, ApiError> {
    drain(&ctx, true).await
}

/// Ends a drain: the VIPs are announced again while they can be served.
#[utoipa::path(post, path = "/v1/bgp/undrain",
    responses(
        (status = 200, description = "Undrained.", body = rvs_api::CommandAnswer),
        (status = 409, description = "No rvs_bgp in the configuration.", body = rvs_api::ErrorBody),
    ))]
async fn bgp_undrain(
    State(ctx): State<Arc<Ctx>>,
) -> Result<Json<rvs_api::CommandAnswer>, ApiError> {
    drain(&ctx, false).await
}

async fn drain(ctx: &Ctx, on: bool) -> Result<Json<rvs_api::CommandAnswer>, ApiError> {
    let (tx, rx) = oneshot::channel();
    ctx.tx
        .send(Request::Drain(on, tx))
        .await
        .map_err(|_| stopping())?;
    match rx.await.map_err(|_| stopping())? {
        Ok(()) => Ok(Json(rvs_api::CommandAnswer { ok: true })),
        Err(msg) => Err(ApiError(StatusCode::CONFLICT, msg)),
    }
}

/// The largest command body.
const MAX_BODY: usize = 64 * 1024;

/// A request whose body may be left out (all its fields are optional): empty is the
/// default request.
async fn optional_request<T: Default + serde::de::DeserializeOwned>(
    body: axum::body::Body,
    what: &str,
) -> Result<T, ApiError> {
    let bytes = read_body(body).await?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(&bytes)
        .map_err(|e| ApiError(StatusCode::BAD_REQUEST, format!("bad {what} request: {e}")))
}

/// A path the daemon is given: it must be absolute (the daemon's directory is not the
/// client's).
fn absolute(field: &str, path: Option<String>) -> Result<Option<PathBuf>, ApiError> {
    match path {
        Some(p) if Path::new(&p).is_absolute() => Ok(Some(PathBuf::from(p))),
        Some(p) => Err(ApiError(
            StatusCode::BAD_REQUEST,
            format!("{field} must be an absolute path: {p}"),
        )),
        None => Ok(None),
    }
}

/// A request's body, within 5 s and [`MAX_BODY`] bytes.
async fn read_body(body: axum::body::Body) -> Result<axum::body::Bytes, ApiError> {
    let bad = |m: String| ApiError(StatusCode::BAD_REQUEST, m);
    tokio::time::timeout(Duration::from_secs(5), axum::body::to_bytes(body, MAX_BODY))
        .await
        .map_err(|_| bad("request body not received within 5 s".into()))?
        .map_err(|_| bad(format!("request body larger than {MAX_BODY} bytes")))
}

const MAX_PAGE: usize = 100_000;

/// `offset=N&limit=M` (default limit 1000, at most 100000).
fn page_params(q: &str) -> Result<(usize, usize), ApiError> {
    let bad = |m: String| ApiError(StatusCode::BAD_REQUEST, m);
    let mut offset = 0usize;
    let mut limit = 1000usize;
    for kv in q.split('&').filter(|kv| !kv.is_empty()) {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        let slot = match k {
            "offset" => &mut offset,
            "limit" => &mut limit,
            _ => return Err(bad(format!("unknown query parameter {k:?}"))),
        };
        *slot = v
            .parse::<usize>()
            .map_err(|_| bad(format!("{k}={v:?} is not a number")))?;
    }
    if limit == 0 || limit > MAX_PAGE {
        return Err(bad(format!("limit must be 1..={MAX_PAGE}")));
    }
    Ok((offset, limit))
}

/// The kernel's connection table (`--dataplane ipvs`), as `ipvsadm -Lc` reads it.
fn kernel_connections(
    offset: usize,
    limit: usize,
) -> Result<(usize, Vec<rvs_adm::Conn>), ApiError> {
    let all = rvs_ipvs::connections().map_err(|e| {
        ApiError(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("reading /proc/net/ip_vs_conn: {e}"),
        )
    })?;
    Ok(page_of(&all, offset, limit))
}

/// The table's size and one page of it.
fn page_of(all: &[rvs_adm::Conn], offset: usize, limit: usize) -> (usize, Vec<rvs_adm::Conn>) {
    let page = all.iter().skip(offset).take(limit).cloned().collect();
    (all.len(), page)
}

fn vrrp_instance(v: &rvs_vrrpd::InstanceStatus) -> rvs_api::VrrpInstance {
    rvs_api::VrrpInstance {
        name: v.name.clone(),
        interface: v.interface.clone(),
        vrid: v.vrid,
        version: v.version,
        state: v.state.to_string(),
        base_priority: v.base_priority,
        priority: v.priority,
        source: v.source.clone(),
        master: v.master.clone(),
        master_priority: v.master_priority,
        vips: v.vips.clone(),
        sync_group: v.sync_group.clone(),
        adverts_rx: v.adverts_rx,
        adverts_tx: v.adverts_tx,
        priority_zero_tx: v.priority_zero_tx,
        became_master: v.became_master,
        released_master: v.released_master,
        priority_zero_rx: v.priority_zero_rx,
        addr_list_err: v.addr_list_err,
        last_transition_us: v.last_transition_us,
        dropped: v.dropped.clone(),
        split_brain: v.split_brain,
        split_brain_mac: v.split_brain_mac.clone(),
    }
}

fn bfd_session(b: &rvs_bfd::driver::Status) -> rvs_api::BfdSession {
    rvs_api::BfdSession {
        name: b.name.clone(),
        neighbor: b.neighbor,
        state: format!("{:?}", b.state),
        remote_state: format!("{:?}", b.remote_state),
        local_diag: b.local_diag.to_owned(),
        remote_diag: b.remote_diag.to_owned(),
        detection_time_ms: b.detection_time_ms,
        packets_in: b.packets_in,
        packets_out: b.packets_out,
        dropped: b.dropped,
        transitions: b.transitions,
    }
}

fn check(c: &rvs_daemon::CheckReport) -> rvs_api::Check {
    rvs_api::Check {
        virtual_server: c.service.clone(),
        real_server: c.real_server,
        checker: c.checker.to_owned(),
        index: c.index,
        up: c.up,
        failures: c.failures,
        probes: c.probes,
        failed_probes: c.failed_probes,
        last_latency_s: c.last_latency_s,
        last_change_unix: c.last_change_unix,
        last_failure: c.last_failure.clone(),
    }
}

impl Ctx {
    /// `GET /v1/status`.
    pub fn api_status(&self) -> rvs_api::Status {
        let st = self.status();
        let t = self.shared.timeouts().shown();
        rvs_api::Status {
            api: rvs_api::VERSION.to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            pid: std::process::id(),
            config: self.conf.display().to_string(),
            uptime_s: self.started.elapsed().as_secs(),
            live_connections: self.shared.live.load(std::sync::atomic::Ordering::Relaxed),
            dataplane: match self.dataplane {
                None => rvs_api::Dataplane::None,
                Some(Kind::Proxy) => rvs_api::Dataplane::Proxy,
                Some(Kind::Xdp) => rvs_api::Dataplane::Xdp,
                Some(Kind::Ipvs) => rvs_api::Dataplane::Ipvs,
            },
            xdp: self.xdp.clone(),
            by_table: **self.snapshots.by_table.load(),
            timeouts: rvs_api::Timeouts {
                tcp: t.0,
                tcpfin: t.1,
                udp: t.2,
            },
            undelivered: self
                .shared
                .undelivered()
                .into_iter()
                .map(|(k, why, n)| rvs_api::Undelivered {
                    service: k.into(),
                    reason: why.as_str().to_owned(),
                    connections: n,
                })
                .collect(),
            checks: st.checks.iter().map(check).collect(),
            bfd: self.bfd().iter().map(bfd_session).collect(),
            reloads_ok: st.reloads_ok,
            reloads_failed: st.reloads_failed,
            last_reload_unix: st.last_reload_unix,
            vrrp_running: self.vrrp_enabled,
            sync_daemons: self.snapshots.sync_daemons.load().to_vec(),
            vrrp: self.vrrp().iter().map(vrrp_instance).collect(),
            drift: crate::daemon::drift::report(&self.drift),
            bgp: self.bgp.load_full().map(|b| (*b).clone()),
            sync: {
                let r = self.snapshots.sync_stats.report();
                // The kernel's own daemons keep their counters to themselves.
                let ran = r != rvs_api::SyncStats::default();
                let xdp_daemon = self.dataplane == Some(Kind::Xdp)
                    && !self.snapshots.sync_daemons.load().is_empty();
                (ran || xdp_daemon).then_some(r)
            },
        }
    }
}

/// The running table, as ipvsadm would see it (published by the proxy's upkeep task:
/// see `rvs_proxy::view`).
pub async fn snapshot(shared: &Shared) -> Vec<rvs_adm::Service> {
    shared.view(false).await.services.clone()
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

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests panic on failure")]
mod tests {
    use super::*;
    use tower::ServiceExt as _;

    /// `docs/openapi.json` is the document the handlers generate (`RVS_BLESS=1` rewrites
    /// it after a deliberate change of the API).
    #[test]
    fn the_openapi_document_is_current() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json");
        let now = format!("{}\n", openapi_json());
        if std::env::var_os("RVS_BLESS").is_some() {
            std::fs::write(&path, &now).unwrap();
        }
        let doc = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            doc == now,
            "docs/openapi.json differs from the handlers' document: run \
             RVS_BLESS=1 cargo test -p rvs the_openapi_document_is_current"
        );
    }

    fn ctx() -> (Arc<Ctx>, mpsc::Receiver<Request>) {
        let plane = crate::daemon::dataplane::Dataplane::proxy(rvs_proxy::ProxyOptions::default());
        let (tx, rx) = mpsc::channel(8);
        let ctx = Arc::new(Ctx {
            shared: plane.shared().clone(),
            conf: PathBuf::from("/etc/keepalived/keepalived.conf"),
            started: Instant::now(),
            tx,
            status: std::sync::Mutex::default(),
            vrrp: Arc::default(),
            bfd: Arc::default(),
            vrrp_enabled: false,
            snapshots: Arc::default(),
            dataplane: Some(Kind::Proxy),
            xdp: None,
            alerts: Arc::default(),
            config: arc_swap::ArcSwap::from_pointee(rvs_conf::Config::default()),
            drift: Arc::default(),
            bgp: Arc::default(),
        });
        (ctx, rx)
    }

    async fn call(app: &Router, method: &str, uri: &str, body: &str) -> (StatusCode, String) {
        let req = axum::http::Request::builder()
            .method(method)
            .uri(uri)
            .header(header::CONTENT_TYPE, "application/json")
            .body(axum::body::Body::from(body.to_owned()))
            .unwrap();
        let ans = app.clone().oneshot(req).await.unwrap();
        let status = ans.status();
        let bytes = axum::body::to_bytes(ans.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, String::from_utf8_lossy(&bytes).into_owned())
    }

    /// Every operation of the document is served, and answers with its documented
    /// schema; anything else is a JSON 404 or 405.
    #[tokio::test]
    async fn every_documented_operation_is_served_with_its_schema() {
        let (ctx, mut rx) = ctx();
        // The main loop's part: a reload refused, a command accepted.
        tokio::spawn(async move {
            while let Some(r) = rx.recv().await {
                match r {
                    Request::Reload(tx) => {
                        let _ = tx.send(rvs_daemon::ReloadReport {
                            data: rvs_daemon::DataReload::Refused("error: has 1 errors".into()),
                            vrrp: rvs_daemon::VrrpReload::NotRun,
                        });
                    }
                    Request::Command(_, tx) | Request::Drain(_, tx) => {
                        let _ = tx.send(Ok(()));
                    }
                    Request::Upgrade(_, tx) => {
                        let _ = tx.send(Ok(4242));
                    }
                    Request::Plan(file, _, tx) => {
                        let _ = tx.send(rvs_api::Plan {
                            file: file.display().to_string(),
                            refused: None,
                            steps: Vec::new(),
                            warnings: Vec::new(),
                            summary: "services +0 -0, real servers +0 -0 ~0".into(),
                        });
                    }
                }
            }
        });
        let app = router(ctx);
        let doc: serde_json::Value = serde_json::from_str(&openapi_json()).unwrap();
        let mut served = 0;
        for (path, ops) in doc["paths"].as_object().unwrap() {
            for method in ops.as_object().unwrap().keys() {
                let body = if path == "/v1/commands" {
                    r#"{"op": "zero"}"#
                } else {
                    ""
                };
                let uri = path.replace("{dump}", "json");
                let (st, text) = call(&app, &method.to_uppercase(), &uri, body).await;
                assert_eq!(st, StatusCode::OK, "{method} {path}: {text}");
                served += 1;
                match path.as_str() {
                    "/v1/services" => {
                        serde_json::from_str::<Vec<rvs_api::Service>>(&text).unwrap();
                    }
                    "/v1/status" => {
                        let s: rvs_api::Status = serde_json::from_str(&text).unwrap();
                        assert_eq!(s.api, "v1");
                    }
                    "/v1/vrrp" => {
                        serde_json::from_str::<Vec<rvs_api::VrrpInstance>>(&text).unwrap();
                    }
                    "/v1/connections" => {
                        serde_json::from_str::<rvs_api::ConnectionsPage>(&text).unwrap();
                    }
                    "/v1/reload" => {
                        let r: rvs_api::ReloadAnswer = serde_json::from_str(&text).unwrap();
                        assert!(!r.ok);
                    }
                    "/v1/commands" | "/v1/bgp/drain" | "/v1/bgp/undrain" => {
                        serde_json::from_str::<rvs_api::CommandAnswer>(&text).unwrap();
                    }
                    "/v1/upgrade" => {
                        let u: rvs_api::UpgradeAnswer = serde_json::from_str(&text).unwrap();
                        assert_eq!(u.pid, 4242);
                    }
                    "/v1/plan" => {
                        let p: rvs_api::Plan = serde_json::from_str(&text).unwrap();
                        assert_eq!(p.file, "/etc/keepalived/keepalived.conf");
                    }
                    "/metrics" => assert!(text.ends_with("# EOF\n"), "{text}"),
                    "/v1/keepalived/{dump}" => {
                        serde_json::from_str::<serde_json::Value>(&text).unwrap();
                    }
                    other => panic!("{other}: documented but not checked here"),
                }
            }
        }
        assert_eq!(served, 12);
        for (method, uri, status, says) in [
            (
                "GET",
                "/v1/nothing",
                StatusCode::NOT_FOUND,
                "no such endpoint /v1/nothing",
            ),
            (
                "DELETE",
                "/v1/status",
                StatusCode::METHOD_NOT_ALLOWED,
                "DELETE is not allowed on /v1/status",
            ),
            (
                "GET",
                "/v1/connections?limit=0",
                StatusCode::BAD_REQUEST,
                "limit must be 1..=100000",
            ),
            (
                "GET",
                "/v1/connections?page=2",
                StatusCode::BAD_REQUEST,
                "unknown query parameter",
            ),
        ] {
            let (st, text) = call(&app, method, uri, "").await;
            assert_eq!(st, status, "{method} {uri}: {text}");
            let e: rvs_api::ErrorBody = serde_json::from_str(&text).unwrap();
            assert!(e.error.contains(says), "{method} {uri}: {text}");
        }
        for (body, says) in [
            ("{", "bad command: EOF while parsing"),
            (
                r#"{"op": "drop_everything"}"#,
                "unknown variant `drop_everything`",
            ),
            (
                r#"{"op": "add_service", "service": {"proto": "tcp", "addr": "198.18.0.1", "port": 0}, "scheduler": "rr"}"#,
                "Zero port specified for non-persistent service",
            ),
        ] {
            let (st, text) = call(&app, "POST", "/v1/commands", body).await;
            assert_eq!(st, StatusCode::BAD_REQUEST, "{body}: {text}");
            assert!(text.contains(says), "{body}: {text}");
        }
        let big = format!(r#"{{"op": "clear", "pad": "{}"}}"#, "x".repeat(MAX_BODY));
        let (st, text) = call(&app, "POST", "/v1/commands", &big).await;
        assert_eq!(st, StatusCode::BAD_REQUEST);
        assert!(text.contains("larger than"), "{text}");
    }
}
