//! `rvs-check`: health checkers with keepalived's semantics.
//!
//! [`state`] is the sans-IO rule book (retries, alpha, delays). [`probe`] runs one check
//! of a kind against a real server and says UP, DOWN or "local error". [`run`] is the
//! async loop per (real server, checker) that ties them together and reports changes.
//!
//! Implemented kinds: `TCP_CHECK`, `HTTP_GET` (path, status codes with ranges, MD5
//! digest, virtualhost, `http_protocol`), `MISC_CHECK` (`misc_path` run without a shell,
//! `misc_timeout`, `misc_dynamic`), `SMTP_CHECK` (greeting, HELO), `DNS_CHECK` (UDP query,
//! NOERROR), `UDP_CHECK` (payload, `require_reply` with wildcards, lengths) and
//! `PING_CHECK` (unprivileged ping socket), `SSL_GET` (rustls; verified against the root
//! `SSL { ca }` when set, SNI with `enable_sni`). `FILE_CHECK` (a watched file's weight)
//! and `BFD_CHECK` (a BFD session's state) are driven by the daemon, not by probes.

pub mod path;
pub mod probe;
pub mod state;
pub mod tls;

/// Scripts (`MISC_CHECK`, notify scripts) run by keepalived's rules: see `rvs-script`.
pub use rvs_script as script;
pub use rvs_script::ScriptPolicy;

use rvs_conf::model::Checker;
use state::{Change, CheckerState, Outcome, Timing};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;

pub use rvs_types::{CheckEvent as Event, CheckId};

/// What the operator interface shows of a checker between state changes: written by the
/// checker after every probe, read by the metrics and `rvs status` (no channel traffic).
#[derive(Debug, Default)]
pub struct ProbeStats {
    /// Probes run.
    pub probes: AtomicU64,
    /// Probes that found the real server down (local errors excluded).
    pub failed_probes: AtomicU64,
    /// Duration of the last probe, microseconds.
    pub last_latency_us: AtomicU64,
    /// 1 up, 0 down, 2 local error; `u64::MAX` before the first probe.
    pub last_outcome: AtomicU64,
}

impl ProbeStats {
    /// Stats of a checker that has not probed yet.
    pub fn new() -> ProbeStats {
        let s = ProbeStats::default();
        s.last_outcome.store(u64::MAX, Ordering::Relaxed);
        s
    }

    fn record(&self, outcome: Outcome, took: Duration) {
        self.probes.fetch_add(1, Ordering::Relaxed);
        if outcome == Outcome::Down {
            self.failed_probes.fetch_add(1, Ordering::Relaxed);
        }
        self.last_latency_us.store(
            u64::try_from(took.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        let o = match outcome {
            Outcome::Down => 0,
            Outcome::Up => 1,
            Outcome::LocalError => 2,
        };
        self.last_outcome.store(o, Ordering::Relaxed);
    }
}

/// How a checker starts.
#[derive(Debug, Clone, Default)]
pub struct Start {
    /// Before the first check (the caller draws it in `[0, warmup]` to spread the load).
    pub delay: Duration,
    /// The state a reload carries over (`None`: a new checker, up or down by `alpha`).
    /// A checker restarted with its real server down must report the next success.
    pub resume: Option<bool>,
    /// `ha_suspend`'s switch for this checker's virtual server, if it sets it.
    pub suspended: Option<Suspended>,
    /// `rvs_forwarding_path_check`: the real server, VIP and port to probe along the
    /// LVS-DR or LVS-TUN path, after each probe that finds it up ([`path`]).
    pub path: Option<rvs_types::PathTarget>,
}

/// `ha_suspend`: while set, the checker does not probe (its real server keeps its state);
/// the daemon sets it while the virtual server's address is not on the host.
pub type Suspended = std::sync::Arc<std::sync::atomic::AtomicBool>;

/// Runs one checker forever, sending an [`Event`] on every state change and publishing
/// each probe's result and latency in `stats`.
pub async fn run(
    id: CheckId,
    c: Checker,
    target: SocketAddr,
    start: Start,
    policy: ScriptPolicy,
    tx: mpsc::Sender<Event>,
    stats: std::sync::Arc<ProbeStats>,
) {
    let timing = Timing {
        delay_loop: c.delay_loop,
        delay_before_retry: c.delay_before_retry,
        retry: c.retry,
        alpha: c.alpha,
    };
    let mut st = match start.resume {
        Some(up) => CheckerState::resume(timing, up),
        None => CheckerState::new(timing),
    };
    tokio::time::sleep(start.delay).await;
    loop {
        if start
            .suspended
            .as_ref()
            .is_some_and(|s| s.load(Ordering::Relaxed))
        {
            tokio::time::sleep(c.delay_loop.min(Duration::from_secs(1))).await;
            continue;
        }
        let began = std::time::Instant::now();
        let (mut outcome, mut detail) = probe::probe_with(&c, target, &policy).await;
        if let (Outcome::Up, Some(t)) = (outcome, start.path) {
            match path::syn(t, None, c.connect_timeout).await {
                Ok(p) => {
                    if let Some(text) = p.failure_of(&t) {
                        outcome = Outcome::Down;
                        detail = probe::Detail { text, weight: None };
                    }
                }
                Err(e) => {
                    outcome = Outcome::LocalError;
                    detail.text = format!("forwarding path check of [{}]: {e}", t.rip);
                }
            }
        }
        stats.record(outcome, began.elapsed());
        if let (Outcome::Up, Some(w)) = (outcome, detail.weight) {
            if tx.send(Event::Weight { id, weight: w }).await.is_err() {
                return;
            }
        }
        if outcome == Outcome::LocalError {
            tracing::warn!(
                "{} of [{}]:{}: local error, real server state unchanged: {}",
                c.kind.name(),
                target.ip(),
                target.port(),
                detail.text
            );
        } else if outcome == Outcome::Down && c.log_all_failures {
            tracing::info!("{}", detail.text);
        }
        let (change, next) = st.record(outcome);
        if let Some(ch) = change {
            let up = ch == Change::WentUp;
            let text = if up {
                format!(
                    "{} on [{}]:{} succeeded",
                    c.kind.name(),
                    target.ip(),
                    target.port()
                )
            } else {
                detail.text.clone()
            };
            if tx
                .send(Event::Changed {
                    id,
                    up,
                    detail: text,
                })
                .await
                .is_err()
            {
                return;
            }
        }
        tokio::time::sleep(next).await;
    }
}
