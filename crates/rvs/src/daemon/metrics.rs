//! Prometheus / `OpenMetrics` exposition (`--metrics ADDR:PORT`, `GET /metrics`).
//!
//! Each scrape builds a registry from a snapshot of the tables and the daemon's status,
//! so a scrape shows one consistent moment and costs nothing between scrapes. Labels are
//! bounded by the configuration (service, real server, checker), never by traffic.

use crate::daemon::control::Ctx;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

type Labels = Vec<(String, String)>;

fn counters(reg: &mut Registry, name: &str, help: &str) -> Family<Labels, Counter> {
    let f = Family::<Labels, Counter>::default();
    reg.register(name, help, f.clone());
    f
}

fn gauges(reg: &mut Registry, name: &str, help: &str) -> Family<Labels, Gauge> {
    let f = Family::<Labels, Gauge>::default();
    reg.register(name, help, f.clone());
    f
}

fn i64_of(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Families of one kind of statistics, for services or real servers.
struct StatFamilies {
    conns: Family<Labels, Counter>,
    pkts_in: Family<Labels, Counter>,
    pkts_out: Family<Labels, Counter>,
    bytes_in: Family<Labels, Counter>,
    bytes_out: Family<Labels, Counter>,
    cps: Family<Labels, Gauge>,
    bps_in: Family<Labels, Gauge>,
    bps_out: Family<Labels, Gauge>,
}

impl StatFamilies {
    fn new(reg: &mut Registry, what: &str) -> StatFamilies {
        let n = |s: &str| format!("{what}_{s}");
        StatFamilies {
            conns: counters(reg, &n("connections"), "Connections scheduled"),
            pkts_in: counters(reg, &n("in_packets"), "Packets (proxy: reads) from clients"),
            pkts_out: counters(
                reg,
                &n("out_packets"),
                "Packets (proxy: reads) from real servers",
            ),
            bytes_in: counters(reg, &n("in_bytes"), "Bytes from clients"),
            bytes_out: counters(reg, &n("out_bytes"), "Bytes from real servers"),
            cps: gauges(
                reg,
                &n("connections_per_second"),
                "Connection rate (2 s EWMA, as ipvsadm --rate)",
            ),
            bps_in: gauges(
                reg,
                &n("in_bytes_per_second"),
                "Inbound byte rate (2 s EWMA)",
            ),
            bps_out: gauges(
                reg,
                &n("out_bytes_per_second"),
                "Outbound byte rate (2 s EWMA)",
            ),
        }
    }

    fn set(&self, l: &Labels, s: &rvs_adm::Stats) {
        self.conns.get_or_create(l).inc_by(s.conns);
        self.pkts_in.get_or_create(l).inc_by(s.in_pkts);
        self.pkts_out.get_or_create(l).inc_by(s.out_pkts);
        self.bytes_in.get_or_create(l).inc_by(s.in_bytes);
        self.bytes_out.get_or_create(l).inc_by(s.out_bytes);
        self.cps.get_or_create(l).set(i64_of(s.cps));
        self.bps_in.get_or_create(l).set(i64_of(s.in_bps));
        self.bps_out.get_or_create(l).set(i64_of(s.out_bps));
    }
}

/// The exposition text of the daemon's state now, with the table's `services`.
pub fn render(ctx: &Ctx, services: &[rvs_adm::Service]) -> String {
    let mut reg = Registry::with_prefix("rvs");
    // build_info as a gauge at 1 (the Prometheus convention; promtool's text parser does
    // not know OpenMetrics' `info` type).
    let build = gauges(&mut reg, "build_info", "rvs build information");
    build
        .get_or_create(&vec![
            ("version".to_owned(), env!("CARGO_PKG_VERSION").to_owned()),
            (
                "dataplane".to_owned(),
                ctx.dataplane
                    .map_or("none", crate::daemon::dataplane::Kind::name)
                    .to_owned(),
            ),
        ])
        .set(1);
    let svc = StatFamilies::new(&mut reg, "service");
    let rs = StatFamilies::new(&mut reg, "real_server");
    let active = gauges(
        &mut reg,
        "real_server_active_connections",
        "Active connections (ipvsadm ActiveConn)",
    );
    let inactive = gauges(
        &mut reg,
        "real_server_inactive_connections",
        "Inactive connections (ipvsadm InActConn)",
    );
    let weight = gauges(
        &mut reg,
        "real_server_weight",
        "Current weight (0: drained)",
    );
    let check_up = gauges(
        &mut reg,
        "checker_up",
        "1 when the checker last succeeded, 0 when it failed",
    );
    let check_fail = counters(
        &mut reg,
        "checker_failures",
        "Up-to-down transitions of the checker",
    );
    let check_probes = counters(&mut reg, "checker_probes", "Probes run by the checker");
    let check_failed = counters(
        &mut reg,
        "checker_failed_probes",
        "Probes that found the real server down",
    );
    let check_latency = Family::<Labels, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
    reg.register(
        "checker_last_latency_seconds",
        "Duration of the checker's last probe",
        check_latency.clone(),
    );
    let check_changed = gauges(
        &mut reg,
        "checker_last_change_timestamp_seconds",
        "Unix time of the checker's last state change (absent: none since start)",
    );
    let reloads = counters(&mut reg, "reloads", "Configuration reloads by result");
    let last_reload = gauges(
        &mut reg,
        "last_reload_timestamp_seconds",
        "Unix time of the last successful reload (0: none)",
    );
    let live = gauges(
        &mut reg,
        "live_connections",
        "Connections the data plane holds open",
    );
    let fds = gauges(
        &mut reg,
        "proxy_descriptors_available",
        "Descriptors the proxy may still use for relayed connections, UDP flows and splice pipes",
    );
    let bufs = gauges(
        &mut reg,
        "proxy_relay_buffers_in_use",
        "Relay buffers (16 KiB) holding data in flight; idle connections hold none",
    );
    let sync_dgrams = counters(
        &mut reg,
        "sync_datagrams",
        "Connection sync datagrams (XDP plane): sent, received (of our sync id), or dropped by reason",
    );
    let sync_conns = counters(
        &mut reg,
        "sync_connections",
        "Connections and templates in sync datagrams: sent, adopted into the tables, not_ours (no such service or real server here), forwarded_here (this director's own entry kept)",
    );
    let sync_last = gauges(
        &mut reg,
        "sync_last_received_timestamp_seconds",
        "Unix time of the last sync datagram of our sync id (absent: none since start)",
    );
    let by_table = gauges(
        &mut reg,
        "xdp_by_table_changed_slots",
        "--xdp-by-table: table slots whose flows are looked up (a real server changed within the flows' timeout, or flows there go elsewhere); absent without the option",
    );
    let per_worker = counters(
        &mut reg,
        "proxy_worker_connections",
        "TCP connections accepted by each proxy worker thread (its SO_REUSEPORT socket)",
    );
    let spliced = counters(
        &mut reg,
        "proxy_spliced_bytes",
        "Bytes the proxy relayed with splice(2), kernel to kernel: bulk transfers (reads that fill the 16 KiB buffer, four in a row), not small messages",
    );
    let undelivered = counters(
        &mut reg,
        "proxy_undelivered_connections",
        "Connections the proxy accepted and could not deliver (the client was reset), by reason",
    );

    let mails = counters(
        &mut reg,
        "smtp_alerts",
        "E-mail alerts (smtp_alert) by result: sent, failed (not delivered), dropped (queue full)",
    );
    {
        use std::sync::atomic::Ordering::Relaxed;
        let c = &ctx.alerts;
        for (result, n) in [
            ("sent", c.sent.load(Relaxed)),
            ("failed", c.failed.load(Relaxed)),
            ("dropped", c.dropped.load(Relaxed)),
        ] {
            mails
                .get_or_create(&vec![("result".to_owned(), result.to_owned())])
                .inc_by(n);
        }
    }

    for s in services {
        let sl = s.id.metric_label();
        svc.set(&vec![("service".to_owned(), sl.clone())], &s.stats);
        for d in &s.dests {
            let l = vec![
                ("service".to_owned(), sl.clone()),
                (
                    "real_server".to_owned(),
                    std::net::SocketAddr::new(d.addr, d.port).to_string(),
                ),
            ];
            rs.set(&l, &d.stats);
            active.get_or_create(&l).set(i64::from(d.active));
            inactive.get_or_create(&l).set(i64::from(d.inactive));
            weight.get_or_create(&l).set(i64::from(d.weight));
        }
    }
    fds.get_or_create(&Vec::new())
        .set(ctx.shared.fds_available());
    bufs.get_or_create(&Vec::new())
        .set(i64::try_from(ctx.shared.relay_buffers_in_use()).unwrap_or(i64::MAX));
    {
        let s = ctx.snapshots.sync_stats.report();
        let l = |k: &str, v: &str| vec![(k.to_owned(), v.to_owned())];
        for (result, n) in [
            ("sent", s.sent_datagrams),
            ("received", s.received_datagrams),
            ("not_sent", s.send_errors),
            ("malformed", s.malformed),
            ("unauthenticated", s.unauthenticated),
            ("not_a_peer", s.not_a_peer),
            ("other_syncid", s.other_syncid),
            ("refused", s.adopt_errors),
        ] {
            sync_dgrams.get_or_create(&l("result", result)).inc_by(n);
        }
        for (result, n) in [
            ("sent", s.sent_connections),
            ("adopted", s.adopted),
            ("not_ours", s.not_ours),
            ("forwarded_here", s.forwarded_here),
        ] {
            sync_conns.get_or_create(&l("result", result)).inc_by(n);
        }
        if let Some(ms) = s.last_received_unix_ms {
            sync_last
                .get_or_create(&Vec::new())
                .set(i64::try_from(ms / 1000).unwrap_or(i64::MAX));
        }
    }
    if let Some(b) = **ctx.snapshots.by_table.load() {
        by_table
            .get_or_create(&Vec::new())
            .set(i64::try_from(b.changed_slots).unwrap_or(i64::MAX));
    }
    for (i, n) in ctx.shared.worker_connections().into_iter().enumerate() {
        per_worker
            .get_or_create(&vec![("worker".to_owned(), i.to_string())])
            .inc_by(n);
    }
    spliced
        .get_or_create(&Vec::new())
        .inc_by(ctx.shared.spliced_bytes());
    for (key, why, n) in ctx.shared.undelivered() {
        undelivered
            .get_or_create(&vec![
                ("service".to_owned(), key.metric_label()),
                ("reason".to_owned(), why.as_str().to_owned()),
            ])
            .inc_by(n);
    }
    let st = ctx.status();
    for c in &st.checks {
        let Some(up) = c.up else { continue };
        let l = vec![
            // The config's virtual_server (keepalived's label): a virtual_server_group
            // expands to several services, checked once.
            ("virtual_server".to_owned(), c.service.clone()),
            ("real_server".to_owned(), c.real_server.to_string()),
            ("checker".to_owned(), c.checker.to_owned()),
            ("index".to_owned(), c.index.to_string()),
        ];
        check_up.get_or_create(&l).set(i64::from(up));
        check_fail.get_or_create(&l).inc_by(c.failures);
        check_probes.get_or_create(&l).inc_by(c.probes);
        check_failed.get_or_create(&l).inc_by(c.failed_probes);
        if let Some(s) = c.last_latency_s {
            check_latency.get_or_create(&l).set(s);
        }
        if let Some(t) = c.last_change_unix {
            check_changed.get_or_create(&l).set(i64_of(t));
        }
    }
    for (result, n) in [("success", st.reloads_ok), ("failure", st.reloads_failed)] {
        reloads
            .get_or_create(&vec![("result".to_owned(), result.to_owned())])
            .inc_by(n);
    }
    last_reload
        .get_or_create(&Vec::new())
        .set(i64_of(st.last_reload_unix));
    live.get_or_create(&Vec::new()).set(i64_of(
        ctx.shared.live.load(std::sync::atomic::Ordering::Relaxed),
    ));
    vrrp(&mut reg, &ctx.vrrp());
    let drift = crate::daemon::drift::report(&ctx.drift);
    if !drift.is_empty() {
        let g = gauges(
            &mut reg,
            "config_drift_differences",
            "Differences between this director's configuration and a peer's (rvs_config_drift_peer)",
        );
        for p in drift {
            g.get_or_create(&vec![("peer".to_owned(), p.peer)])
                .set(i64::try_from(p.differences.len()).unwrap_or(i64::MAX));
        }
    }
    bfd(&mut reg, &ctx.bfd());
    let mut out = String::new();
    if encode(&mut out, &reg).is_err() {
        return "# encoding failed\n".to_owned();
    }
    out
}

/// VRRP instances: state (keepalived's numbering: 0 init, 1 backup, 2 master, 3
/// fault), priority, adverts, transitions and dropped packets by reason.
fn bfd(reg: &mut Registry, sessions: &[rvs_bfd::driver::Status]) {
    if sessions.is_empty() {
        return;
    }
    let state = gauges(
        reg,
        "bfd_session_state",
        "BFD session state: 0 AdminDown, 1 Down, 2 Init, 3 Up",
    );
    let rx = counters(
        reg,
        "bfd_packets_received",
        "Valid BFD control packets received",
    );
    let tx = counters(reg, "bfd_packets_sent", "BFD control packets sent");
    let dropped = counters(reg, "bfd_dropped_packets", "BFD packets discarded");
    let changes = counters(reg, "bfd_transitions", "BFD session state changes");
    for b in sessions {
        let l = vec![
            ("instance".to_owned(), b.name.clone()),
            ("neighbor".to_owned(), b.neighbor.to_string()),
        ];
        state.get_or_create(&l).set(b.state as i64);
        rx.get_or_create(&l).inc_by(b.packets_in);
        tx.get_or_create(&l).inc_by(b.packets_out);
        dropped.get_or_create(&l).inc_by(b.dropped);
        changes.get_or_create(&l).inc_by(b.transitions);
    }
}

fn vrrp(reg: &mut Registry, instances: &[rvs_vrrpd::InstanceStatus]) {
    if instances.is_empty() {
        return;
    }
    let state = gauges(
        reg,
        "vrrp_state",
        "VRRP state: 0 init, 1 backup, 2 master, 3 fault",
    );
    let prio = gauges(reg, "vrrp_priority", "Effective VRRP priority");
    let rx = counters(reg, "vrrp_adverts_received", "Valid adverts received");
    let tx = counters(reg, "vrrp_adverts_sent", "Adverts sent");
    let zero = counters(
        reg,
        "vrrp_priority_zero_sent",
        "Priority-0 adverts sent (graceful hand-over)",
    );
    let became = counters(
        reg,
        "vrrp_became_master",
        "Transitions to MASTER of the instance",
    );
    let split = counters(
        reg,
        "vrrp_split_brain",
        "Times another MAC answered ARP for a VIP while the instance was MASTER",
    );
    let dropped = counters(
        reg,
        "vrrp_dropped_packets",
        "VRRP packets dropped by the receive checks, by reason",
    );
    for v in instances {
        let l = vec![
            ("instance".to_owned(), v.name.clone()),
            ("interface".to_owned(), v.interface.clone()),
            ("vrid".to_owned(), v.vrid.to_string()),
        ];
        state.get_or_create(&l).set(i64::from(v.state.number()));
        prio.get_or_create(&l).set(i64::from(v.priority));
        rx.get_or_create(&l).inc_by(v.adverts_rx);
        tx.get_or_create(&l).inc_by(v.adverts_tx);
        zero.get_or_create(&l).inc_by(v.priority_zero_tx);
        became.get_or_create(&l).inc_by(v.became_master);
        split.get_or_create(&l).inc_by(v.split_brain);
        for (reason, c) in &v.dropped {
            let mut l = l.clone();
            l.push(("reason".to_owned(), reason.clone()));
            dropped.get_or_create(&l).inc_by(*c);
        }
    }
}

/// `OpenMetrics` → Prometheus text format 0.0.4, for scrapers that do not ask for
/// `OpenMetrics` (curl, `promtool check metrics`, older Prometheus): counters' HELP and
/// TYPE lines carry the `_total` name, no `# EOF`, no empty label braces.
pub fn to_text_004(om: &str) -> String {
    let counters: std::collections::HashSet<&str> = om
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(om.len() + 16 * counters.len());
    for line in om.lines() {
        if line == "# EOF" {
            continue;
        }
        let meta = line
            .strip_prefix("# HELP ")
            .map(|r| ("# HELP ", r))
            .or_else(|| line.strip_prefix("# TYPE ").map(|r| ("# TYPE ", r)));
        if let Some((kind, rest)) = meta {
            let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
            out.push_str(kind);
            out.push_str(name);
            if counters.contains(name) {
                out.push_str("_total");
            }
            out.push(' ');
            out.push_str(tail);
        } else {
            out.push_str(&line.replacen("{} ", " ", 1));
        }
        out.push('\n');
    }
    out
}

/// Most scrapes served at once: a client that opens thousands of connections gets the
/// excess closed at once instead of holding the daemon's descriptors (each lives at most
/// 10 s anyway).
pub const MAX_SCRAPES: usize = 32;

/// Serves `GET /metrics` on a TCP address until `stop`.
pub async fn serve(l: TcpListener, ctx: Arc<Ctx>, stop: CancellationToken) {
    let app = Router::new()
        .route("/metrics", get(scrape))
        .fallback(|| async { (StatusCode::NOT_FOUND, "not found: try /metrics\n") })
        .with_state(ctx);
    crate::daemon::http::serve(
        l,
        MAX_SCRAPES,
        Duration::from_secs(10),
        "metrics",
        stop,
        |_| app.clone(),
    )
    .await;
}

/// `OpenMetrics` for scrapers that ask for it, the text format 0.0.4 otherwise.
async fn scrape(State(ctx): State<Arc<Ctx>>, headers: HeaderMap) -> Response {
    let openmetrics = headers.get_all(header::ACCEPT).iter().any(|v| {
        v.to_str()
            .is_ok_and(|v| v.contains("application/openmetrics-text"))
    });
    let services = crate::daemon::control::snapshot(&ctx.shared).await;
    if openmetrics {
        (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            render(&ctx, &services),
        )
            .into_response()
    } else {
        (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            to_text_004(&render(&ctx, &services)),
        )
            .into_response()
    }
}
