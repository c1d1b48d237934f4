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
    stop: Option<tokio::sync::oneshot::Sender<engine::StopMode>>,
    task: tokio::task::JoinHandle<engine::Handover>,
    pub status: Arc<Mutex<Vec<InstanceStatus>>>,
    /// What runs: a reload with the same plan changes nothing.
    plan: Plan,
    /// The BFD sessions `track_bfd` follows (kept for reloads).
    bfd: rvs_bfd::driver::Registry,
}

impl Vrrp {
    /// Starts every instance of the plan (BACKUP, or FAULT if a tracker says so).
    pub async fn start(plan: Plan) -> Result<Vrrp, StartError> {
        Vrrp::start_from(plan, Arc::new(Mutex::new(Vec::new())), None, Arc::default()).await
    }

    /// Starts, publishing the instances' status into `status`.
    pub async fn start_with_status(
        plan: Plan,
        status: Arc<Mutex<Vec<InstanceStatus>>>,
    ) -> Result<Vrrp, StartError> {
        Vrrp::start_from(plan, status, None, Arc::default()).await
    }

    /// Starts with the BFD sessions that `track_bfd` follows.
    pub async fn start_with_bfd(
        plan: Plan,
        status: Arc<Mutex<Vec<InstanceStatus>>>,
        bfd: rvs_bfd::driver::Registry,
    ) -> Result<Vrrp, StartError> {
        Vrrp::start_from(plan, status, None, bfd).await
    }

    /// `handover`: `None` at the daemon's start (`vrrp_startup_delay` applies), else what
    /// a reload handed over (instances' states, trackers' results).
    async fn start_from(
        plan: Plan,
        status: Arc<Mutex<Vec<InstanceStatus>>>,
        handover: Option<&engine::Handover>,
        bfd: rvs_bfd::driver::Registry,
    ) -> Result<Vrrp, StartError> {
        let (engine, track_rx, adv_rx) =
            engine::Engine::new(plan.clone(), status.clone(), handover, &bfd).await?;
        let (stop, stop_rx) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(engine.run(track_rx, adv_rx, stop_rx));
        Ok(Vrrp {
            stop: Some(stop),
            task,
            status,
            plan,
            bfd,
        })
    }

    /// Leaves gracefully: priority-0 adverts from MASTERs, VIPs removed, STOP notified.
    pub async fn stop(mut self) {
        let _ = self.halt(engine::StopMode::Shutdown).await;
    }

    async fn halt(&mut self, mode: engine::StopMode) -> engine::Handover {
        if let Some(s) = self.stop.take() {
            let _ = s.send(mode);
        }
        match tokio::time::timeout(std::time::Duration::from_secs(5), &mut self.task).await {
            Ok(Ok(h)) => h,
            _ => engine::Handover::default(),
        }
    }

    /// Applies a new plan. Unchanged: nothing happens. Changed: instances that keep their
    /// name, interface, VRID and family go on in their state (a MASTER keeps its VIPs
    /// and sends no priority 0); removed ones leave as on shutdown; new ones start.
    /// Returns what happened, for the reload message.
    pub async fn reload(mut self, plan: Plan) -> (Result<Vrrp, StartError>, String) {
        // The plan types hold config values without PartialEq; their Debug text is a
        // complete rendering of them.
        if format!("{plan:?}") == format!("{:?}", self.plan) {
            return (Ok(self), "VRRP unchanged".into());
        }
        if let Err(e) = engine::preflight(&plan).await {
            return (
                Ok(self),
                format!("error: VRRP not reloaded, the running instances are kept: {e}"),
            );
        }
        let running: Vec<InstanceStatus> = self.snapshot();
        let keep: Vec<String> = plan
            .instances
            .iter()
            .filter(|p| {
                running.iter().any(|r| {
                    r.name == p.name
                        && r.interface == p.iface
                        && r.vrid == p.vrid
                        && r.version == p.version
                })
            })
            .map(|p| p.name.clone())
            .collect();
        let msg = format!(
            "VRRP: {} instance(s) kept, {} started, {} stopped",
            keep.len(),
            plan.instances.len() - keep.len(),
            running.iter().filter(|r| !keep.contains(&r.name)).count()
        );
        let status = self.status.clone();
        let old = self.plan.clone();
        let bfd = self.bfd.clone();
        let handover = self.halt(engine::StopMode::Reload(keep)).await;
        match Vrrp::start_from(plan, status.clone(), Some(&handover), bfd.clone()).await {
            Ok(v) => (Ok(v), msg),
            Err(e) => {
                tracing::error!("VRRP reload failed ({e}): going back to the previous instances");
                (
                    Vrrp::start_from(old, status, Some(&handover), bfd).await,
                    format!("error: VRRP not reloaded: {e}"),
                )
            }
        }
    }

    pub fn snapshot(&self) -> Vec<InstanceStatus> {
        self.status.lock().map(|s| s.clone()).unwrap_or_default()
    }
}
