//! Configuration drift between directors (`rvs_config_drift_peer`, `rvs_config_drift_key`):
//! keepalived leaves keeping both directors' files identical to the operator. Every two
//! seconds this director sends each peer the sections of its running configuration that
//! must agree ([`rvs_daemon::drift::sections`]) over UDP port [`PORT`], as JSON behind an
//! HMAC-SHA256 of the shared key (ring); what a peer sends is compared with what runs here
//! and every difference is logged (once, when it appears or goes), shown by `rvs status`
//! and `GET /v1/status`, and counted in `rvs_config_drift_differences{peer}`. A peer's
//! configuration is never applied. Datagrams that fail the HMAC, or come from another
//! address than a configured peer, are dropped.

use rvs_daemon::drift::{diff, sections, Sections};
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The UDP port the directors exchange their sections on.
pub const PORT: u16 = 5409;

/// How often the sections are sent.
const EVERY: Duration = Duration::from_secs(2);

/// Each peer heard: its differences and when it was last heard.
pub type Peers = Arc<Mutex<BTreeMap<IpAddr, (Vec<String>, Instant)>>>;

#[derive(serde::Serialize, serde::Deserialize)]
struct Message {
    v: u8,
    sections: Sections,
}

/// The API's view of `peers`.
pub fn report(peers: &Peers) -> Vec<rvs_api::PeerDrift> {
    peers.lock().map_or_else(
        |_| Vec::new(),
        |p| {
            p.iter()
                .map(|(ip, (d, t))| rvs_api::PeerDrift {
                    peer: ip.to_string(),
                    differences: d.clone(),
                    heard_s_ago: t.elapsed().as_secs(),
                })
                .collect()
        },
    )
}

/// The HMAC key of the running configuration.
fn key_of(cfg: &rvs_conf::Config) -> Option<ring::hmac::Key> {
    cfg.global_defs
        .config_drift_key
        .as_ref()
        .map(|k| ring::hmac::Key::new(ring::hmac::HMAC_SHA256, k.as_bytes()))
}

/// Starts the exchange when the configuration names peers (and a key); the config is
/// read from `ctx` at every send and receipt, so a reload's peers and key take effect at
/// once (the first peer needs a restart: it opens the port).
pub fn start(
    ctx: &Arc<crate::daemon::control::Ctx>,
    stop: &tokio_util::sync::CancellationToken,
    tasks: &tokio_util::task::TaskTracker,
) {
    let g = &ctx.config.load().global_defs;
    if g.config_drift_peers.is_empty() {
        return;
    }
    if g.config_drift_key.is_none() {
        tracing::error!(
            "rvs_config_drift_peer needs rvs_config_drift_key (the shared secret): the configuration is not compared"
        );
        return;
    }
    let sock = match std::net::UdpSocket::bind(("0.0.0.0", PORT))
        .and_then(|s| s.set_nonblocking(true).map(|()| s))
        .and_then(tokio::net::UdpSocket::from_std)
    {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("configuration drift: cannot listen on UDP port {PORT}: {e}");
            return;
        }
    };
    let (ctx, stop) = (ctx.clone(), stop.clone());
    tasks.spawn(async move {
        let mut tick = tokio::time::interval(EVERY);
        let mut buf = vec![0u8; 65536];
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = tick.tick() => {
                    let cfg = ctx.config.load();
                    let Some(key) = key_of(&cfg) else { continue };
                    let msg = Message { v: 1, sections: sections(&cfg) };
                    let Ok(body) = serde_json::to_vec(&msg) else { continue };
                    let tag = ring::hmac::sign(&key, &body);
                    let mut dgram = tag.as_ref().to_vec();
                    dgram.extend_from_slice(&body);
                    for p in &cfg.global_defs.config_drift_peers {
                        let _ = sock.send_to(&dgram, SocketAddr::new(*p, PORT)).await;
                    }
                }
                r = sock.recv_from(&mut buf) => {
                    let Ok((n, from)) = r else { continue };
                    received(&ctx, &buf[..n], from.ip());
                }
            }
        }
    });
}

/// A datagram from `from`: checked, compared, reported.
fn received(ctx: &crate::daemon::control::Ctx, d: &[u8], from: IpAddr) {
    let cfg = ctx.config.load();
    let Some(key) = key_of(&cfg) else { return };
    if !cfg.global_defs.config_drift_peers.contains(&from) || d.len() < 32 {
        return;
    }
    let (tag, body) = d.split_at(32);
    if ring::hmac::verify(&key, body, tag).is_err() {
        tracing::debug!("configuration drift: a datagram from {from} failed authentication");
        return;
    }
    let Ok(msg) = serde_json::from_slice::<Message>(body) else {
        return;
    };
    let differences = diff(&sections(&cfg), &msg.sections);
    let Ok(mut peers) = ctx.drift.lock() else {
        return;
    };
    let before = peers.get(&from).map(|(d, _)| d.clone());
    if before.as_ref() != Some(&differences) {
        if differences.is_empty() {
            tracing::info!("configuration agrees with director {from}");
        } else {
            for d in &differences {
                tracing::warn!("configuration drift with director {from}: {d}");
            }
        }
    }
    peers.insert(from, (differences, Instant::now()));
}
