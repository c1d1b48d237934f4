//! `rvs-vrrpd`: runs the VRRP instances of a configuration on Linux. The protocol lives in
//! the sans-IO `rvs-vrrp`; this crate does the I/O: raw IP protocol 112 sockets (IPv4 and
//! IPv6, multicast or unicast), VIPs through rtnetlink, gratuitous ARP and unsolicited
//! neighbour advertisements, tracked interfaces/scripts/files, notify scripts and FIFOs.
//!
//! Invariants: the engine task owns every instance and performs actions in the order the
//! core returns them (advert before VIPs on becoming MASTER, spec §6); VIPs present at
//! start are removed before anything else; on [`Vrrp::stop`] a MASTER sends a
//! priority-0 advert and removes its VIPs before the call returns.

pub mod conflict;
pub mod engine;
pub mod firewall;
pub mod link;
pub mod net;
pub mod notify;
pub mod plan;
pub mod sys;
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

/// A reload keeps a running instance in its state (a MASTER keeps its VIPs and sends
/// no priority 0) when the new plan has it under the same name, on the same interface,
/// with the same VRID and version; otherwise it leaves and the new one starts.
pub fn keeps(running: &InstanceStatus, new: &plan::InstancePlan) -> bool {
    running.name == new.name
        && running.interface == new.iface
        && running.vrid == new.vrid
        && running.version == new.version
}

/// An instance as an rvs being replaced (`rvs upgrade`) left it, for its successor.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Carried {
    pub name: String,
    pub iface: String,
    pub vrid: u8,
    pub v6: bool,
    /// keepalived's name of the state (`MASTER`, `BACKUP`, …).
    pub state: String,
    /// The VIPs it holds: address, prefix length, interface index.
    pub held: Vec<(std::net::IpAddr, u8, u32)>,
}

/// What the control API and `rvs status` show of an instance.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct InstanceStatus {
    pub name: String,
    pub interface: String,
    /// The interface's index and MAC address in the daemon's namespace (0 and zeros while
    /// the instance waits for its interface).
    #[serde(default)]
    pub ifindex: u32,
    #[serde(default)]
    pub mac: [u8; 6],
    pub vrid: u8,
    pub version: u8,
    /// Shown as keepalived names it: `INIT`, `BACKUP`, `MASTER` or `FAULT`.
    #[serde(with = "state_by_name")]
    pub state: rvs_vrrp::State,
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
    /// Adverts received with priority 0 (a master leaving).
    #[serde(default)]
    pub priority_zero_rx: u64,
    /// MASTER → another state.
    #[serde(default)]
    pub released_master: u64,
    /// Adverts whose address list differs from ours.
    #[serde(default)]
    pub addr_list_err: u64,
    /// Unix time (µs) of the last state change; 0: none yet.
    #[serde(default)]
    pub last_transition_us: u64,
    /// Dropped packets by reason (`ttl`, `auth`, `checksum`, ...).
    pub dropped: BTreeMap<String, u64>,
    /// Times another MAC answered for a VIP while this instance was MASTER (a split
    /// brain, or a host that answers ARP for the VIP): [`conflict`].
    #[serde(default)]
    pub split_brain: u64,
    /// The last such MAC.
    #[serde(default)]
    pub split_brain_mac: Option<String>,
}

pub use rvs_vrrp::ReloadOutcome;

/// A VRRP state in JSON: its keepalived name.
mod state_by_name {
    use rvs_vrrp::State;

    #[expect(
        clippy::trivially_copy_pass_by_ref,
        reason = "serde's `with` passes a reference"
    )]
    pub fn serialize<S: serde::Serializer>(s: &State, ser: S) -> Result<S::Ok, S::Error> {
        ser.serialize_str(s.name())
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(de: D) -> Result<State, D::Error> {
        let name = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(de)?;
        State::from_name(&name)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown VRRP state {name}")))
    }
}

/// What a stopped or killed rvs left on this host for `plan`'s instances — their virtual
/// addresses (on the VMAC where the instance has one), routes and rules — removed, so
/// that this host's kernel stops answering ARP for addresses a peer now holds (`rvs
/// cleanup`, systemd's `ExecStopPost`). One line per address removed; routes and rules
/// are removed where present. An instance whose interface is gone is said and skipped.
///
/// # Errors
/// No netlink socket.
pub async fn release(plan: &Plan) -> Result<Vec<String>, link::LinkError> {
    let nl = link::Netlink::new()?;
    let mut out = Vec::new();
    for p in &plan.instances {
        let own = match p.vmac.as_deref() {
            Some(v) => match nl.link(v).await {
                Ok(l) => Ok(l),
                Err(_) => nl.link(&p.iface).await,
            },
            None => nl.link(&p.iface).await,
        };
        let own = match own {
            Ok(l) => l,
            Err(e) => {
                out.push(format!("({}) skipped: {e}", p.name));
                continue;
            }
        };
        for v in p.vips.iter().chain(&p.excluded) {
            let l = match nl.vip_link(v, &p.iface, &own).await {
                Ok(l) => l,
                Err(e) => {
                    out.push(format!("({}) {}: {e}", p.name, v.address));
                    continue;
                }
            };
            match nl.del_vip(l.index, v).await {
                Ok(true) => out.push(format!(
                    "({}) removed {}/{} from {}",
                    p.name, v.address, v.prefix_len, l.name
                )),
                Ok(false) => {}
                Err(e) => out.push(format!("({}) {}: {e}", p.name, v.address)),
            }
        }
        for r in &p.routes {
            if let Err(e) = nl.route(r, false).await {
                out.push(format!("({}) route '{}': {e}", p.name, r.text));
            }
        }
        for r in &p.rules {
            if let Err(e) = nl.rule(r, false).await {
                out.push(format!("({}) rule '{}': {e}", p.name, r.text));
            }
        }
    }
    Ok(out)
}

/// `plan` with the instances that cannot start now — their interface missing, or without
/// an address to send adverts from — set aside in [`Plan::waiting`].
async fn split(plan: &Plan) -> Plan {
    split_and_missing(plan).await.0
}

/// keepalived's error for an instance whose interface does not exist, without
/// `dynamic_interfaces`.
fn nonexistent(name: &str, iface: &str) -> String {
    format!(
        "WARNING - interface {iface} for vrrp_instance {name} doesn't exist: \
         Non-existent interface specified in configuration (set dynamic_interfaces to \
         let the instance wait for it in FAULT)"
    )
}

/// The plan with the instances that cannot start yet set aside, and the instances whose
/// interface does not exist at all (name, interface).
async fn split_and_missing(plan: &Plan) -> (Plan, Vec<(String, String)>) {
    let mut missing = Vec::new();
    let Ok(nl) = link::Netlink::new() else {
        return (plan.clone(), missing);
    };
    let mut ready = std::collections::HashSet::new();
    for p in &plan.instances {
        let Ok(l) = nl.link(&p.iface).await else {
            missing.push((p.name.clone(), p.iface.clone()));
            continue;
        };
        let exclude: Vec<std::net::IpAddr> = p.vips.iter().map(|v| v.address).collect();
        if p.src.is_some() || matches!(nl.primary(l.index, p.v6, &exclude).await, Ok(Some(_))) {
            ready.insert(p.name.clone());
        }
    }
    (plan.split_waiting(|p| ready.contains(&p.name)), missing)
}

/// The running VRRP instances.
pub struct Vrrp {
    stop: Option<tokio::sync::oneshot::Sender<engine::StopMode>>,
    task: tokio::task::JoinHandle<engine::Handover>,
    pub status: Arc<Mutex<Vec<InstanceStatus>>>,
    /// What was asked: a reload with the same plan changes nothing.
    plan: Plan,
    /// What runs: `plan` with the instances that cannot start yet set aside.
    running: Plan,
    /// The BFD sessions `track_bfd` follows (kept for reloads).
    bfd: rvs_bfd::driver::Registry,
    /// The `no_accept` rules installed.
    firewall: Option<firewall::FirewallPlan>,
    /// Interfaces whose `promote_secondaries` rvs set, with the value to restore.
    promoted: Vec<(String, String)>,
}

/// The `promote_secondaries` sysctl of an interface.
/// The sysctls VRRP sets while it runs, by path, with the value it needs: keepalived's
/// `promote_secondaries` on the instances' interfaces (removing a VIP that is a primary
/// address does not take the secondaries with it) and `disable_local_igmp` (no IGMP
/// reports for link-local groups, which some switches mistake for a flood).
fn wanted_sysctls(plan: &Plan) -> BTreeMap<String, &'static str> {
    let mut want: BTreeMap<String, &'static str> = plan
        .instances
        .iter()
        .chain(&plan.waiting)
        .filter(|p| p.promote_secondaries)
        .map(|p| {
            (
                format!("/proc/sys/net/ipv4/conf/{}/promote_secondaries", p.iface),
                "1",
            )
        })
        .collect();
    if plan.disable_local_igmp && !plan.is_empty() {
        want.insert(
            "/proc/sys/net/ipv4/igmp_link_local_mcast_reports".to_owned(),
            "0",
        );
    }
    want
}

/// Sets the sysctls the plan needs and restores, to the values they had, those no
/// longer needed. `held` holds what was set and the values to restore.
fn sysctls(plan: &Plan, held: &mut Vec<(String, String)>) {
    let want = wanted_sysctls(plan);
    held.retain(|(path, old)| {
        if want.contains_key(path) {
            return true;
        }
        if let Err(e) = std::fs::write(path, old) {
            tracing::warn!("restoring {path}: {e}");
        }
        false
    });
    for (path, value) in want {
        if held.iter().any(|(p, _)| *p == path) {
            continue;
        }
        let old = std::fs::read_to_string(&path)
            .map(|v| v.trim().to_owned())
            .unwrap_or_default();
        match std::fs::write(&path, value) {
            Ok(()) => held.push((path, old)),
            Err(e) => tracing::warn!("setting {path} to {value}: {e}"),
        }
    }
}

impl Vrrp {
    /// Starts every instance of the plan (BACKUP, or FAULT if a tracker says so),
    /// publishing their status into `status`; `track_bfd` follows the sessions of `bfd`.
    /// The one way to start VRRP, at the daemon's start as on the reload that brings the
    /// first instance: a second constructor without `bfd` once left `track_bfd` blind.
    pub async fn start(
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
        let (running, missing) = split_and_missing(&plan).await;
        if let Some((name, iface)) = missing.first().filter(|_| !plan.dynamic_interfaces) {
            return Err(StartError::Instance {
                name: name.clone(),
                error: nonexistent(name, iface),
            });
        }
        Vrrp::launch(plan, running, status, handover, bfd, None, Vec::new()).await
    }

    /// Starts `running` (`plan` with the instances that cannot start yet set aside).
    async fn launch(
        plan: Plan,
        running: Plan,
        status: Arc<Mutex<Vec<InstanceStatus>>>,
        handover: Option<&engine::Handover>,
        bfd: rvs_bfd::driver::Registry,
        installed: Option<firewall::FirewallPlan>,
        mut promoted: Vec<(String, String)>,
    ) -> Result<Vrrp, StartError> {
        for p in &running.waiting {
            tracing::warn!(
                "({}) {} does not exist or has no {} address yet: FAULT until it can start",
                p.name,
                p.iface,
                if p.v6 { "IPv6" } else { "IPv4" }
            );
        }
        let (engine, track_rx, adv_rx) =
            engine::Engine::new(running.clone(), status.clone(), handover, &bfd).await?;
        let (stop, stop_rx) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(engine.run(track_rx, adv_rx, stop_rx));
        // no_accept / vrrp_strict: the rules follow the plan (replaced whole).
        let firewall = if plan.firewall == installed {
            installed
        } else {
            match firewall::apply(plan.firewall.as_ref(), installed.as_ref()).await {
                Ok(()) => {
                    if let Some(f) = &plan.firewall {
                        tracing::info!(
                            "no_accept: traffic to {} VIP(s) dropped (nftables table {})",
                            f.v4.len() + f.v6.len(),
                            f.table
                        );
                    }
                    plan.firewall.clone()
                }
                Err(e) => {
                    tracing::error!("{e}");
                    installed
                }
            }
        };
        sysctls(&plan, &mut promoted);
        Ok(Vrrp {
            stop: Some(stop),
            task,
            status,
            plan,
            running,
            bfd,
            firewall,
            promoted,
        })
    }

    /// Starts instances that were waiting for their interface once it can carry them
    /// (the running ones go on, as on a reload). Call it periodically; returns what
    /// happened when something did.
    pub async fn poll_waiting(&mut self) -> Option<String> {
        if self.running.waiting.is_empty() {
            return None;
        }
        let now = split(&self.plan).await;
        if now.waiting.len() >= self.running.waiting.len() {
            return None;
        }
        let keep: Vec<String> = self
            .running
            .instances
            .iter()
            .map(|p| p.name.clone())
            .collect();
        let handover = self.halt(engine::StopMode::Reload(keep)).await;
        let status = self.status.clone();
        let bfd = self.bfd.clone();
        let started = self.running.waiting.len() - now.waiting.len();
        let installed = self.firewall.clone();
        match Vrrp::launch(
            self.plan.clone(),
            now,
            status.clone(),
            Some(&handover),
            bfd.clone(),
            installed.clone(),
            self.promoted.clone(),
        )
        .await
        {
            Ok(v) => {
                *self = v;
                Some(format!("VRRP: {started} waiting instance(s) started"))
            }
            Err(e) => {
                // Back to what ran (its instances were ready a moment ago).
                tracing::error!("VRRP: starting the waiting instances failed: {e}");
                let (plan, running) = (self.plan.clone(), self.running.clone());
                let promoted = self.promoted.clone();
                if let Ok(v) = Vrrp::launch(
                    plan,
                    running,
                    status,
                    Some(&handover),
                    bfd,
                    installed,
                    promoted,
                )
                .await
                {
                    *self = v;
                }
                None
            }
        }
    }

    /// Starts the plan's instances where the rvs this one replaces left them
    /// (`rvs upgrade`): a MASTER goes on as MASTER at once with the VIPs it holds, no
    /// priority-0 hand-over, no startup delay.
    pub async fn start_carried(
        plan: Plan,
        status: Arc<Mutex<Vec<InstanceStatus>>>,
        bfd: rvs_bfd::driver::Registry,
        carried: &[Carried],
    ) -> Result<Vrrp, StartError> {
        let handover = engine::Handover {
            instances: carried
                .iter()
                .filter_map(|c| {
                    Some(engine::Handoff {
                        name: c.name.clone(),
                        iface: c.iface.clone(),
                        vrid: c.vrid,
                        v6: c.v6,
                        state: rvs_vrrp::State::from_name(&c.state)?,
                        held: c.held.clone(),
                        held_routes: Vec::new(),
                        held_rules: Vec::new(),
                        counters: engine::Counters::default(),
                    })
                })
                .collect(),
            trackers: engine::Carry::default(),
        };
        Vrrp::start_from(plan, status, Some(&handover), bfd).await
    }

    /// Stops for `rvs upgrade`: every instance leaves as a reload keeps it (no priority-0
    /// advert, its VIPs stay, nothing notified) and is described for the successor.
    pub async fn leave_for_upgrade(mut self) -> Vec<Carried> {
        let all = self
            .running
            .instances
            .iter()
            .map(|p| p.name.clone())
            .collect();
        let h = self.halt(engine::StopMode::Reload(all)).await;
        h.instances
            .into_iter()
            .map(|h| Carried {
                name: h.name,
                iface: h.iface,
                vrid: h.vrid,
                v6: h.v6,
                state: h.state.name().to_owned(),
                held: h.held,
            })
            .collect()
    }

    /// Leaves gracefully: priority-0 adverts from MASTERs, VIPs removed, STOP notified.
    pub async fn stop(mut self) {
        let _ = self.halt(engine::StopMode::Shutdown).await;
        // As keepalived does: its tables go with it.
        if let Err(e) = firewall::apply(None, self.firewall.as_ref()).await {
            tracing::error!("removing the no_accept rules: {e}");
        }
        sysctls(&Plan::default(), &mut self.promoted);
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
    pub async fn reload(mut self, plan: Plan) -> (Result<Vrrp, StartError>, ReloadOutcome) {
        // The plan types hold config values without PartialEq; their Debug text is a
        // complete rendering of them.
        if format!("{plan:?}") == format!("{:?}", self.plan) {
            // Nothing restarts; fifo_write_vrrp_states_on_reload still writes the states.
            if plan.fifo_states_on_reload {
                let mut fifos = notify::Fifos::open(&plan.fifos);
                for v in self.snapshot() {
                    if let Some(ev) = notify::Event::of_state(v.state) {
                        fifos.write(&notify::fifo_line("INSTANCE", &v.name, ev, v.priority));
                    }
                }
            }
            return (Ok(self), ReloadOutcome::Unchanged);
        }
        // New instances may wait for their interface; a running one is not moved to an
        // interface that cannot carry it (a typo would drop a MASTER's VIPs).
        let (ready, missing) = split_and_missing(&plan).await;
        if let Some((name, iface)) = missing.first().filter(|_| !plan.dynamic_interfaces) {
            return (Ok(self), ReloadOutcome::Refused(nonexistent(name, iface)));
        }
        if let Some(p) = ready
            .waiting
            .iter()
            .find(|p| self.running.instances.iter().any(|r| r.name == p.name))
        {
            return (
                Ok(self),
                ReloadOutcome::Refused(format!(
                    "vrrp_instance {}: {} does not exist or has no address to send adverts from",
                    p.name, p.iface
                )),
            );
        }
        if let Err(e) = engine::preflight(&ready).await {
            return (Ok(self), ReloadOutcome::Refused(e.to_string()));
        }
        let running: Vec<InstanceStatus> = self.snapshot();
        let keep: Vec<String> = ready
            .instances
            .iter()
            .filter(|p| running.iter().any(|r| keeps(r, p)))
            .map(|p| p.name.clone())
            .collect();
        let msg = ReloadOutcome::Applied {
            kept: keep.len(),
            started: ready.instances.len() - keep.len(),
            stopped: running.iter().filter(|r| !keep.contains(&r.name)).count(),
        };
        let status = self.status.clone();
        let (old, old_running) = (self.plan.clone(), self.running.clone());
        let bfd = self.bfd.clone();
        let installed = self.firewall.clone();
        let promoted = self.promoted.clone();
        let handover = self.halt(engine::StopMode::Reload(keep)).await;
        match Vrrp::launch(
            plan,
            ready,
            status.clone(),
            Some(&handover),
            bfd.clone(),
            installed.clone(),
            promoted.clone(),
        )
        .await
        {
            Ok(v) => (Ok(v), msg),
            Err(e) => {
                tracing::error!("VRRP reload failed ({e}): going back to the previous instances");
                (
                    Vrrp::launch(
                        old,
                        old_running,
                        status,
                        Some(&handover),
                        bfd,
                        installed,
                        promoted,
                    )
                    .await,
                    ReloadOutcome::RolledBack(e.to_string()),
                )
            }
        }
    }

    pub fn snapshot(&self) -> Vec<InstanceStatus> {
        self.status.lock().map(|s| s.clone()).unwrap_or_default()
    }
}
