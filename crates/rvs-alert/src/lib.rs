//! keepalived's e-mail alerts (`notification_email`, `smtp_server`, `smtp_alert`): the
//! mails keepalived 2.2.7 sends, with its subjects and bodies, on the same events (VRRP
//! state changes of instances and sync groups, real servers going up or down, a virtual
//! server's quorum), sent by a task of their own through a bounded queue: the daemon
//! never waits on a mail server. A mail that cannot be queued or delivered is logged and
//! counted ([`Counters`]).
//!
//! The messages are composed here ([`compose`]), pure; SMTP is lettre's.

use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// One mail: keepalived's subject and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    pub subject: String,
    pub body: String,
}

/// Where and how mails go (`global_defs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailConfig {
    /// `smtp_server HOST [PORT]`.
    pub server: String,
    pub port: u16,
    /// `smtp_helo_name` (default: the host name).
    pub helo: String,
    /// `notification_email_from` (default: `keepalived@HOSTNAME`).
    pub from: String,
    /// `notification_email`.
    pub to: Vec<String>,
    /// `smtp_connect_timeout` (default 30 s).
    pub timeout: Duration,
}

/// The state a VRRP mail announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VrrpEvent {
    Master,
    Backup,
    Fault,
    Stop,
}

/// keepalived's subjects and bodies (`smtp.c`, `vrrp_notify.c`, `check_*.c`).
pub mod compose {
    use super::{Alert, VrrpEvent};

    fn subject(router_id: &str, what: &str) -> String {
        format!("[{router_id}] {what}")
    }

    /// `[ROUTER_ID] VRRP Instance VI_1 - Entering MASTER state`.
    pub fn instance(router_id: &str, name: &str, ev: VrrpEvent) -> Alert {
        let (what, body) = match ev {
            VrrpEvent::Master => (
                "Entering MASTER state",
                "=> VRRP Instance is now owning VRRP VIPs <=",
            ),
            VrrpEvent::Backup => (
                "Entering BACKUP state",
                "=> VRRP Instance is no longer owning VRRP VIPs <=",
            ),
            VrrpEvent::Fault => (
                "Entering FAULT state",
                "=> VRRP Instance is no longer owning VRRP VIPs <=",
            ),
            VrrpEvent::Stop => ("Stopping", "=> VRRP Instance stopping <="),
        };
        Alert {
            subject: subject(router_id, &format!("VRRP Instance {name} - {what}")),
            body: body.to_owned(),
        }
    }

    /// `[ROUTER_ID] VRRP Group G - Entering MASTER state`.
    pub fn group(router_id: &str, name: &str, ev: VrrpEvent) -> Alert {
        let (what, body) = match ev {
            VrrpEvent::Master => (
                "Entering MASTER state",
                "=> All VRRP group instances are now in MASTER state <=",
            ),
            VrrpEvent::Backup => (
                "Entering BACKUP state",
                "=> All VRRP group instances are now in BACKUP state <=",
            ),
            VrrpEvent::Fault => (
                "Entering FAULT state",
                "=> All VRRP group instances are now in FAULT state <=",
            ),
            VrrpEvent::Stop => ("Stopping", "=> All VRRP group instances stopping <="),
        };
        Alert {
            subject: subject(router_id, &format!("VRRP Group {name} - {what}")),
            body: body.to_owned(),
        }
    }

    /// `[ROUTER_ID] Realserver [RS]:tcp:80 of virtual server [VIP]:tcp:80 - UP`, body
    /// `=> TCP CHECK succeed on service <=` (`check` as keepalived names the checker in it:
    /// `TCP CHECK`, `ICMP CHECK`, `MISC CHECK`, or `CHECK` for the HTTP-like ones).
    pub fn real_server(router_id: &str, rs: &str, vs: &str, up: bool, check: &str) -> Alert {
        let body = if up {
            format!("=> {check} succeed on service <=")
        } else {
            format!("=> {check} failed on service <=")
        };
        Alert {
            subject: subject(
                router_id,
                &format!(
                    "Realserver {rs} of virtual server {vs} - {}",
                    if up { "UP" } else { "DOWN" }
                ),
            ),
            body,
        }
    }

    /// rvs's own: `[ROUTER_ID] VRRP Instance VI_1 - Split brain` when a MASTER sees
    /// another host (`mac`) answer for its VIP, `... - Split brain over` when none has for
    /// a while. keepalived has no such mail (it does not detect a split brain).
    pub fn split_brain(router_id: &str, name: &str, mac: Option<&str>, over: bool) -> Alert {
        if over {
            return Alert {
                subject: subject(
                    router_id,
                    &format!("VRRP Instance {name} - Split brain over"),
                ),
                body: "=> No other host answers for the VRRP Instance's VIPs any more <=".into(),
            };
        }
        Alert {
            subject: subject(router_id, &format!("VRRP Instance {name} - Split brain")),
            body: format!(
                "=> VRRP Instance is MASTER and {} answers for its VIP too: another director \
                 that does not hear this one's adverts, or a host that answers ARP for the VIP <=",
                mac.unwrap_or("another host")
            ),
        }
    }

    /// rvs's own: `[ROUTER_ID] Configuration drift with PEER` listing each difference
    /// (`rvs_config_drift_peer`), `... - resolved` once the two agree again.
    pub fn drift(router_id: &str, peer: &str, differences: &[String]) -> Alert {
        if differences.is_empty() {
            return Alert {
                subject: subject(
                    router_id,
                    &format!("Configuration drift with {peer} - resolved"),
                ),
                body: "=> The configurations agree again <=".into(),
            };
        }
        Alert {
            subject: subject(router_id, &format!("Configuration drift with {peer}")),
            body: format!(
                "=> The running configurations differ (never applied from the peer) <=\n{}",
                differences.join("\n")
            ),
        }
    }

    /// `[ROUTER_ID] Virtualserver [VIP]:tcp:80 - DOWN`, body `=> Lost quorum 3+1=2 <= 1 <=`.
    pub fn quorum(
        router_id: &str,
        vs: &str,
        up: bool,
        quorum: i64,
        hysteresis: i64,
        weight: i64,
    ) -> Alert {
        let (what, threshold) = if up {
            ("Gained quorum", quorum + hysteresis)
        } else {
            ("Lost quorum", quorum - hysteresis)
        };
        Alert {
            subject: subject(
                router_id,
                &format!("Virtualserver {vs} - {}", if up { "UP" } else { "DOWN" }),
            ),
            body: format!("=> {what} {quorum}+{hysteresis}={threshold} <= {weight} <="),
        }
    }
}

/// What happened to the mails.
#[derive(Debug, Default)]
pub struct Counters {
    pub sent: AtomicU64,
    /// The server refused or could not be reached.
    pub failed: AtomicU64,
    /// The queue was full (the server is slower than the events).
    pub dropped: AtomicU64,
    /// Taken into the queue (each ends as sent or failed).
    pub queued: AtomicU64,
}

/// Mails waiting to be sent, at most; past it, new ones are dropped (and counted).
pub const QUEUE: usize = 64;

/// The sending side: cheap to clone, never blocks.
#[derive(Debug, Clone)]
pub struct Mailer {
    tx: tokio::sync::mpsc::Sender<Alert>,
    pub counters: Arc<Counters>,
}

impl Mailer {
    /// Starts the sending task (inside a tokio runtime). It ends when every `Mailer` is
    /// dropped and the queue is empty.
    pub fn start(cfg: MailConfig) -> Mailer {
        Self::start_with(cfg, Arc::default())
    }

    /// [`Mailer::start`], counting into `counters` (shared across reloads).
    pub fn start_with(cfg: MailConfig, counters: Arc<Counters>) -> Mailer {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Alert>(QUEUE);
        let c = counters.clone();
        tokio::spawn(async move {
            let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&cfg.server)
                .port(cfg.port)
                .timeout(Some(cfg.timeout))
                .hello_name(ClientId::Domain(cfg.helo.clone()))
                .build();
            while let Some(alert) = rx.recv().await {
                match send(&transport, &cfg, &alert).await {
                    Ok(()) => {
                        c.sent.fetch_add(1, Ordering::Relaxed);
                        tracing::info!("SMTP alert sent: {}", alert.subject);
                    }
                    Err(e) => {
                        c.failed.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(
                            "SMTP alert not delivered through {}:{}: {e} ({})",
                            cfg.server,
                            cfg.port,
                            alert.subject
                        );
                    }
                }
            }
        });
        Mailer { tx, counters }
    }

    /// Queues a mail; a full queue drops it, with a log line and a count.
    pub fn send(&self, alert: Alert) {
        if let Err(e) = self.tx.try_send(alert) {
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            let subject = match e {
                tokio::sync::mpsc::error::TrySendError::Full(a)
                | tokio::sync::mpsc::error::TrySendError::Closed(a) => a.subject,
            };
            tracing::warn!("SMTP alert dropped (queue of {QUEUE} full): {subject}");
        } else {
            self.counters.queued.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Waits until every queued mail is sent or has failed, at most `within` (at stop).
    pub async fn flush(&self, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        let c = &self.counters;
        while c.sent.load(Ordering::Relaxed) + c.failed.load(Ordering::Relaxed)
            < c.queued.load(Ordering::Relaxed)
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn send(
    transport: &AsyncSmtpTransport<Tokio1Executor>,
    cfg: &MailConfig,
    alert: &Alert,
) -> Result<(), String> {
    let mut b = Message::builder()
        .from(
            cfg.from
                .parse()
                .map_err(|e| format!("from {}: {e}", cfg.from))?,
        )
        .subject(alert.subject.clone());
    for to in &cfg.to {
        b = b.to(to.parse().map_err(|e| format!("to {to}: {e}"))?);
    }
    let msg = b.body(alert.body.clone()).map_err(|e| e.to_string())?;
    transport
        .send(msg)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_and_bodies_are_keepalived_s() {
        let a = compose::instance("lb1", "VI_1", VrrpEvent::Master);
        assert_eq!(
            a.subject,
            "[lb1] VRRP Instance VI_1 - Entering MASTER state"
        );
        assert_eq!(a.body, "=> VRRP Instance is now owning VRRP VIPs <=");
        let a = compose::real_server(
            "lb1",
            "[198.18.0.2]:tcp:80",
            "[198.18.0.1]:tcp:80",
            false,
            "TCP CHECK",
        );
        assert_eq!(
            a.subject,
            "[lb1] Realserver [198.18.0.2]:tcp:80 of virtual server [198.18.0.1]:tcp:80 - DOWN"
        );
        assert_eq!(a.body, "=> TCP CHECK failed on service <=");
        let a = compose::quorum("lb1", "[198.18.0.1]:tcp:80", false, 3, 1, 1);
        assert_eq!(a.subject, "[lb1] Virtualserver [198.18.0.1]:tcp:80 - DOWN");
        assert_eq!(a.body, "=> Lost quorum 3+1=2 <= 1 <=");
    }
}
