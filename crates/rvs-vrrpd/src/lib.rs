//! `rvs-vrrpd`: runs the VRRP instances of a configuration on Linux. The protocol lives in
//! the sans-IO `rvs-vrrp`; this crate does the I/O: raw IP protocol 112 sockets (IPv4 and
//! IPv6, multicast or unicast), VIPs through rtnetlink, gratuitous ARP and unsolicited
//! neighbour advertisements, tracked interfaces/scripts/files, notify scripts and FIFOs.
//!
//! Invariants: the engine task owns every instance and performs actions in the order the
//! core returns them (advert before VIPs on becoming MASTER, spec §6); VIPs present at
//! start are removed before anything else; on [`Vrrp::stop`] a MASTER sends a
//! priority-0 advert and removes its VIPs before the call returns.

pub mod engine;
pub mod link;
pub mod net;
pub mod notify;
pub mod plan;
mod sys;
pub mod track;

pub use plan::{plan, Plan, PlanError};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("vrrp_instance {name}: {error}")]
    Instance { name: String, error: String },
    #[error(
        "vrrp_instance {name}: cannot open its VRRP sockets: {error}{}",
        hint(error)
    )]
    Socket { name: String, error: std::io::Error },
    #[error(transparent)]
    Link(#[from] link::LinkError),
}

fn hint(e: &std::io::Error) -> &'static str {
    if e.kind() == std::io::ErrorKind::PermissionDenied {
        " (VRRP needs CAP_NET_RAW and CAP_NET_ADMIN: run as root, or without VRRP with -C)"
    } else {
        ""
    }
}

/// What the control API and `rvs status` show of an instance.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct InstanceStatus {
    pub name: String,
    pub interface: String,
    pub vrid: u8,
    pub version: u8,
    /// `INIT`, `BACKUP`, `MASTER` or `FAULT`.
    pub state: String,
    pub base_priority: u8,
    /// Effective priority (trackers applied).
    pub priority: u8,
    /// Our source address in adverts.
    pub source: String,
    /// The current master's address as last seen (ours when MASTER).
    pub master: Option<String>,
    pub master_priority: Option<u8>,
    pub vips: Vec<String>,
    pub sync_group: Option<String>,
    pub adverts_rx: u64,
    pub adverts_tx: u64,
    pub priority_zero_tx: u64,
    pub became_master: u64,
    /// Dropped packets by reason (`ttl`, `auth`, `checksum`, ...).
    pub dropped: BTreeMap<String, u64>,
}

/// The running VRRP instances.
pub struct Vrrp {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
    pub status: Arc<Mutex<Vec<InstanceStatus>>>,
}

impl Vrrp {
    /// Starts every instance of the plan (BACKUP, or FAULT if a tracker says so).
    pub async fn start(plan: Plan) -> Result<Vrrp, StartError> {
        let status = Arc::new(Mutex::new(Vec::new()));
        let (engine, track_rx, adv_rx) = engine::Engine::new(plan, status.clone()).await?;
        let (stop, stop_rx) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(engine.run(track_rx, adv_rx, stop_rx));
        Ok(Vrrp {
            stop: Some(stop),
            task,
            status,
        })
    }

    /// Leaves gracefully: priority-0 adverts from MASTERs, VIPs removed, STOP notified.
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), &mut self.task).await;
    }

    pub fn snapshot(&self) -> Vec<InstanceStatus> {
        self.status.lock().map(|s| s.clone()).unwrap_or_default()
    }
}
