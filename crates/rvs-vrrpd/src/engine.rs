//! The driver task: every instance's sans-IO core (inside a [`rvs_vrrp::sync::Group`], a
//! group of one for an instance outside any `vrrp_sync_group`), fed by socket readers,
//! trackers and its own timer, performing the actions the cores return.

use crate::link::{LinkInfo, Netlink};
use crate::net::{self, Announcer, Drop, Verdict, VrrpSocket};
use crate::notify::{self, Event, Fifos};
use crate::plan::{InstancePlan, NotifyPlan, Plan, Tracked};
use crate::track::{self, TrackEvent};
use crate::{InstanceStatus, StartError};
use rvs_script::ScriptPolicy;
use rvs_vrrp::sync::Group;
use rvs_vrrp::track::Tracker;
use rvs_vrrp::{Action, Instance, State};
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Counters a reader task shares with the engine.
#[derive(Debug, Default)]
pub struct RxStats {
    pub adverts: AtomicU64,
    /// Adverts with priority 0 (the master leaving).
    pub priority_zero: AtomicU64,
    /// Adverts whose address list differs from ours (keepalived's `addr_list_err`).
    pub addr_list_err: AtomicU64,
    pub dropped: [AtomicU64; Drop::ALL.len()],
}

/// An instance's counters, handed to the next engine on reload.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    pub adverts_rx: u64,
    pub adverts_tx: u64,
    pub priority_zero_rx: u64,
    pub priority_zero_tx: u64,
    pub addr_list_err: u64,
    pub became_master: u64,
    pub released_master: u64,
    /// Unix time (µs) of the last state change.
    pub last_transition_us: u64,
    /// By [`Drop::ALL`] position.
    pub dropped: Vec<u64>,
    /// Another MAC answered for a VIP while MASTER.
    pub split_brain: u64,
}

/// How the engine stops.
#[derive(Debug)]
pub enum StopMode {
    /// SIGTERM: MASTERs send priority 0 and remove their VIPs; STOP is notified.
    Shutdown,
    /// A reload: the instances named here go on in the next engine as they are (no
    /// advert, no VIP change, no notify); the others leave as on shutdown.
    Reload(Vec<String>),
}

/// What an instance hands to its successor on reload.
#[derive(Debug, Clone)]
pub struct Handoff {
    pub name: String,
    pub iface: String,
    pub vrid: u8,
    pub v6: bool,
    pub state: State,
    /// The VIPs it holds (on MASTER).
    pub held: Vec<(IpAddr, u8, u32)>,
    /// The `virtual_routes` and `virtual_rules` it installed (on MASTER): those the next
    /// engine's plan no longer has are removed, the others stay.
    pub held_routes: Vec<crate::plan::RoutePlan>,
    pub held_rules: Vec<crate::plan::RulePlan>,
    /// Its counters (adverts received, sent, priority 0 sent, became MASTER, dropped by
    /// reason): a reload does not reset what operators graph.
    pub counters: Counters,
}

/// Tracker results a reload hands to the next engine, so that a kept instance does not
/// pass through FAULT while its trackers run again (keepalived keeps an unchanged
/// script's result too). Scripts and processes by their whole definition, BFD sessions
/// by name (their channel says the truth at once anyway).
#[derive(Debug, Default)]
pub struct Carry {
    scripts: HashMap<String, bool>,
    bfds: HashMap<String, bool>,
    processes: HashMap<String, bool>,
}

/// What a stopping engine hands to the next one on a reload.
#[derive(Debug, Default)]
pub struct Handover {
    pub instances: Vec<Handoff>,
    pub trackers: Carry,
}

enum Ev {
    Advert(usize, rvs_vrrp::Advert),
    Track(TrackEvent),
}

struct Rt {
    plan: InstancePlan,
    link: LinkInfo,
    /// `use_vmac`: the macvlan that carries the VIPs and sends the adverts.
    vmac: Option<LinkInfo>,
    src: IpAddr,
    sock: Arc<VrrpSocket>,
    /// Every VIP and excluded VIP with the interface it goes on and who announces it.
    vips: Vec<(rvs_conf::model::VipAddr, u32, Arc<Announcer>)>,
    garp: Option<JoinHandle<()>>,
    holding: bool,
    /// A state taken over from the previous engine (reload): not notified again.
    quiet: Option<State>,
    fault: bool,
    rx: Arc<RxStats>,
    tx: u64,
    prio_zero_tx: u64,
    became_master: u64,
    /// MASTER → another state.
    released_master: u64,
    /// Unix time (µs) of the last state change (0: none yet).
    last_transition_us: u64,
    /// The last state notified was MASTER.
    was_master: bool,
    reader: JoinHandle<()>,
    /// Another MAC answered for a VIP while MASTER: how often, the last MAC, when logged.
    split_brain: u64,
    split_brain_mac: Option<[u8; 6]>,
    split_brain_logged: Option<Instant>,
    /// Under `rvs_split_brain_arbitration`: the MAC this instance stepped down for (its
    /// answers keep a BACKUP from taking over); cleared by the next advert heard.
    yielded_to: Option<[u8; 6]>,
}

impl Rt {
    fn counters(&self) -> Counters {
        Counters {
            adverts_rx: self.rx.adverts.load(Ordering::Relaxed),
            adverts_tx: self.tx,
            priority_zero_rx: self.rx.priority_zero.load(Ordering::Relaxed),
            priority_zero_tx: self.prio_zero_tx,
            addr_list_err: self.rx.addr_list_err.load(Ordering::Relaxed),
            became_master: self.became_master,
            released_master: self.released_master,
            last_transition_us: self.last_transition_us,
            dropped: self
                .rx
                .dropped
                .iter()
                .map(|d| d.load(Ordering::Relaxed))
                .collect(),
            split_brain: self.split_brain,
        }
    }
}

/// Now as unix microseconds.
fn unix_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

struct Grp {
    core: Group,
    members: Vec<usize>,
    faulted: Vec<bool>,
    /// `Some` for a `vrrp_sync_group`.
    named: Option<(String, NotifyPlan)>,
    last: Option<Event>,
}

pub struct Engine {
    /// Instances waiting for their interface: published in FAULT.
    waiting: Vec<InstancePlan>,
    /// The keys under which [`Carry`] hands the trackers' results on: scripts,
    /// `bfd_instance`s and processes, in the plan's order.
    keys: (Vec<String>, Vec<String>, Vec<String>),
    rts: Vec<Rt>,
    groups: Vec<Grp>,
    /// Instance → (group, member).
    loc: Vec<(usize, usize)>,
    nl: Netlink,
    origin: Instant,
    /// `vrrp_startup_delay` still to wait (the daemon's first start only).
    startup_delay: Duration,
    links: HashMap<String, bool>,
    /// The host's addresses, watched when an instance has `track_src_ip`.
    addrs: std::collections::HashSet<IpAddr>,
    scripts: Vec<Option<bool>>,
    files: Vec<i64>,
    /// `track_bfd`: each session Up or not (`None`: no session runs for it).
    bfds: Vec<Option<bool>>,
    /// `track_process`: each quorum met or not (`None`: not looked at yet).
    processes: Vec<Option<bool>>,
    policy: ScriptPolicy,
    fifos: Fifos,
    /// `fifo_write_vrrp_states_on_reload`.
    fifo_states_on_reload: bool,
    /// `max_auto_priority`, `min_auto_priority_delay`.
    auto_priority: Option<(u8, Duration)>,
    tasks: Vec<JoinHandle<()>>,
    status: Arc<Mutex<Vec<InstanceStatus>>>,
}

/// Checks what [`Engine::new`] needs of the system (interfaces, source addresses) without
/// touching anything, so a reload can refuse a plan before it stops the running engine.
pub async fn preflight(plan: &Plan) -> Result<(), StartError> {
    let nl = Netlink::new()?;
    for p in &plan.instances {
        let fail = |error: String| StartError::Instance {
            name: p.name.clone(),
            error,
        };
        let link = nl.link(&p.iface).await.map_err(|e| fail(e.to_string()))?;
        for v in p.vips.iter().chain(&p.excluded) {
            if let Some(d) = &v.dev {
                nl.link(d)
                    .await
                    .map_err(|e| fail(format!("virtual_ipaddress {}: {e}", v.address)))?;
            }
        }
        if p.src.is_none() {
            let exclude: Vec<IpAddr> = p.vips.iter().map(|v| v.address).collect();
            if nl.primary(link.index, p.v6, &exclude).await?.is_none() {
                return Err(fail(format!(
                    "{} has no address to send adverts from",
                    p.iface
                )));
            }
        }
    }
    Ok(())
}

impl Engine {
    fn now(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_micros()).unwrap_or(u64::MAX) + 1
    }

    /// Resolves interfaces and addresses, removes stale VIPs, opens the sockets and
    /// starts the trackers; nothing is announced yet.
    pub async fn new(
        plan: Plan,
        status: Arc<Mutex<Vec<InstanceStatus>>>,
        handover: Option<&Handover>,
        bfd: &rvs_bfd::driver::Registry,
    ) -> Result<
        (
            Engine,
            mpsc::UnboundedReceiver<TrackEvent>,
            mpsc::Receiver<(usize, rvs_vrrp::Advert)>,
        ),
        StartError,
    > {
        let nl = Netlink::with_bufs(plan.netlink_cmd_bufs)?;
        let handoffs = handover.map_or(&[][..], |h| &h.instances[..]);
        let carry = handover.map(|h| &h.trackers);
        let mut rts = Vec::new();
        let (adv_tx, adv_rx) = mpsc::channel(1024);
        let mut announcers: HashMap<u32, Arc<Announcer>> = HashMap::new();
        for (i, p) in plan.instances.iter().enumerate() {
            let link = nl.link(&p.iface).await.map_err(|e| StartError::Instance {
                name: p.name.clone(),
                error: e.to_string(),
            })?;
            let handoff = handoffs.iter().find(|h| h.name == p.name);
            let vmac = match &p.vmac {
                Some(name) => Some(setup_vmac(&nl, name, &link, p.vrid).await.map_err(|e| {
                    StartError::Instance {
                        name: p.name.clone(),
                        error: format!("use_vmac {name}: {e}"),
                    }
                })?),
                None => None,
            };
            // VIPs, gratuitous ARPs and adverts go out on the VMAC when there is one.
            let vip_link = vmac.clone().unwrap_or_else(|| link.clone());
            let mut vips = Vec::new();
            // Routes, rules and VIPs the previous instance held that this one no longer has.
            if let Some(h) = handoff {
                for r in h.held_routes.iter().filter(|r| !p.routes.contains(r)) {
                    if let Err(e) = nl.route(r, false).await {
                        tracing::warn!("({}) removing route '{}': {e}", p.name, r.text);
                    }
                }
                for r in h.held_rules.iter().filter(|r| !p.rules.contains(r)) {
                    if let Err(e) = nl.rule(r, false).await {
                        tracing::warn!("({}) removing rule '{}': {e}", p.name, r.text);
                    }
                }
                for (addr, plen, idx) in &h.held {
                    let still = p
                        .vips
                        .iter()
                        .chain(&p.excluded)
                        .any(|v| v.address == *addr && v.prefix_len == *plen);
                    if !still {
                        let v = rvs_conf::model::VipAddr::new(*addr, *plen);
                        if let Err(e) = nl.del_vip(*idx, &v).await {
                            tracing::warn!("({}) {addr}: {e}", p.name);
                        }
                    }
                }
            }
            for v in p.vips.iter().chain(&p.excluded) {
                let l = nl.vip_link(v, &p.iface, &vip_link).await.map_err(|e| {
                    StartError::Instance {
                        name: p.name.clone(),
                        error: format!("virtual_ipaddress {}: {e}", v.address),
                    }
                })?;
                let kept = handoff.is_some_and(|h| {
                    h.state == State::Master && h.held.contains(&(v.address, v.prefix_len, l.index))
                });
                // A predecessor killed with SIGKILL leaves its VIPs behind (spec §2.2);
                // a MASTER kept across a reload keeps them.
                match if kept {
                    Ok(false)
                } else {
                    nl.del_vip(l.index, v).await
                } {
                    Ok(true) => tracing::info!(
                        "({}) removed stale VIP {}/{} from {}",
                        p.name,
                        v.address,
                        v.prefix_len,
                        l.name
                    ),
                    Ok(false) => {}
                    Err(e) => tracing::warn!("({}) {}: {e}", p.name, v.address),
                }
                let ann = if let Some(a) = announcers.get(&l.index) {
                    a.clone()
                } else {
                    let a = Arc::new(Announcer::new(&l.name, l.index, l.mac).map_err(|e| {
                        StartError::Socket {
                            name: p.name.clone(),
                            error: e,
                        }
                    })?);
                    announcers.insert(l.index, a.clone());
                    a
                };
                vips.push((v.clone(), l.index, ann));
            }
            let exclude: Vec<IpAddr> = vips.iter().map(|(v, _, _)| v.address).collect();
            let src = match p.src {
                Some(s) => s,
                None => nl
                    .primary(link.index, p.v6, &exclude)
                    .await?
                    .ok_or_else(|| StartError::Instance {
                        name: p.name.clone(),
                        error: format!(
                            "{} has no {} address to send adverts from (set unicast_src_ip)",
                            p.iface,
                            if p.v6 { "IPv6 link-local" } else { "IPv4" }
                        ),
                    })?,
            };
            let sock = Arc::new(
                VrrpSocket::open(
                    p,
                    link.index,
                    link.mtu,
                    // vmac_xmit_base: out of the base interface, with its own MAC.
                    vmac.as_ref()
                        .filter(|_| !p.vmac_xmit_base)
                        .map(|v| v.name.as_str()),
                    src,
                )
                .map_err(|e| StartError::Socket {
                    name: p.name.clone(),
                    error: e,
                })?,
            );
            let rx = Arc::new(RxStats::default());
            let carried = handoff.map(|h| h.counters.clone()).unwrap_or_default();
            rx.adverts.store(carried.adverts_rx, Ordering::Relaxed);
            rx.priority_zero
                .store(carried.priority_zero_rx, Ordering::Relaxed);
            rx.addr_list_err
                .store(carried.addr_list_err, Ordering::Relaxed);
            for (d, n) in rx.dropped.iter().zip(&carried.dropped) {
                d.store(*n, Ordering::Relaxed);
            }
            // log_unknown_vrids: the first instance on each interface (and family) says
            // it, knowing every VRID configured there.
            let unknown = (plan.log_unknown_vrids
                && !plan.instances[..i]
                    .iter()
                    .any(|q| q.iface == p.iface && q.v6 == p.v6))
            .then(|| {
                plan.instances
                    .iter()
                    .filter(|q| q.iface == p.iface && q.v6 == p.v6)
                    .map(|q| q.vrid)
                    .collect::<std::collections::BTreeSet<u8>>()
            });
            let reader = tokio::spawn(reader(
                i,
                p.clone(),
                sock.clone(),
                rx.clone(),
                adv_tx.clone(),
                unknown,
            ));
            tracing::info!(
                "({}) VRRPv{} on {} vrid {} from {} to {}",
                p.name,
                p.version,
                p.iface,
                p.vrid,
                src,
                if p.unicast() {
                    p.peers
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(",")
                } else {
                    p.mcast_group.to_string()
                }
            );
            rts.push(Rt {
                plan: p.clone(),
                link,
                vmac,
                src,
                sock,
                vips,
                garp: None,
                holding: false,
                quiet: handoff.map(|h| h.state),
                fault: false,
                rx,
                tx: carried.adverts_tx,
                prio_zero_tx: carried.priority_zero_tx,
                became_master: carried.became_master,
                released_master: carried.released_master,
                last_transition_us: carried.last_transition_us,
                was_master: handoff.is_some_and(|h| h.state == State::Master),
                reader,
                split_brain: carried.split_brain,
                split_brain_mac: None,
                split_brain_logged: None,
                yielded_to: None,
            });
        }
        // Groups: sync groups first, then one per lone instance.
        let mut groups = Vec::new();
        let mut loc = vec![(0, 0); rts.len()];
        for gp in &plan.groups {
            if gp.members.is_empty() {
                continue;
            }
            let mut members = Vec::new();
            for (m, &i) in gp.members.iter().enumerate() {
                loc[i] = (groups.len(), m);
                members.push(Instance::new(rts[i].plan.core(rts[i].src)));
            }
            groups.push(Grp {
                faulted: vec![false; members.len()],
                core: Group::new(members),
                members: gp.members.clone(),
                named: Some((gp.name.clone(), gp.notify.clone())),
                last: None,
            });
        }
        for (i, rt) in rts.iter().enumerate() {
            if rt.plan.group.is_none() {
                loc[i] = (groups.len(), 0);
                groups.push(Grp {
                    core: Group::new(vec![Instance::new(rt.plan.core(rt.src))]),
                    members: vec![i],
                    faulted: vec![false],
                    named: None,
                    last: None,
                });
            }
        }
        // Trackers.
        let (track_tx, track_rx) = mpsc::unbounded_channel();
        // Split-brain detection: who else answers for the IPv4 VIPs, per interface.
        let ours: Vec<[u8; 6]> = rts
            .iter()
            .flat_map(|r: &Rt| std::iter::once(r.link.mac).chain(r.vmac.as_ref().map(|v| v.mac)))
            .collect();
        let mut by_if: BTreeMap<u32, Vec<std::net::Ipv4Addr>> = BTreeMap::new();
        for r in &rts {
            for (v, idx, _) in &r.vips {
                if let IpAddr::V4(a) = v.address {
                    let list = by_if.entry(*idx).or_default();
                    if !list.contains(&a) {
                        list.push(a);
                    }
                }
            }
        }
        let mut conflict_tasks = Vec::new();
        for (idx, vips) in by_if {
            match crate::conflict::spawn(idx, ours.clone(), vips, track_tx.clone()) {
                Ok(t) => conflict_tasks.push(t),
                Err(e) => {
                    tracing::warn!("split-brain detection on interface {idx} cannot start: {e}");
                }
            }
        }
        let mut links = HashMap::new();
        for l in nl.links().await? {
            links.insert(l.name, l.up);
        }
        let (link_tx, mut link_rx) = mpsc::unbounded_channel();
        crate::link::monitor(link_tx, plan.netlink_monitor_bufs)?;
        let fwd = track_tx.clone();
        let delays = plan.link_delays.clone();
        let mut tasks = vec![tokio::spawn(async move {
            // interface_up_down_delays: a change is passed on only once it has lasted its
            // delay; a later change of the same interface cancels a pending one.
            // Each interface's change count: a pending change still current passes.
            let latest = Arc::new(Mutex::new(HashMap::<String, u64>::new()));
            while let Some((_, name, up)) = link_rx.recv().await {
                let delay = delays
                    .get(&name)
                    .map_or(Duration::ZERO, |(down, upd)| if up { *upd } else { *down });
                let n = latest.lock().map_or(0, |mut l| {
                    let n = l.entry(name.clone()).or_default();
                    *n += 1;
                    *n
                });
                if delay.is_zero() {
                    if fwd.send(TrackEvent::Link(name, up)).is_err() {
                        break;
                    }
                    continue;
                }
                let (fwd, latest) = (fwd.clone(), latest.clone());
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    let current = latest.lock().is_ok_and(|l| l.get(&name) == Some(&n));
                    if current {
                        let _ = fwd.send(TrackEvent::Link(name, up));
                    }
                });
            }
        })];
        tasks.extend(conflict_tasks);
        // track_src_ip: the host's addresses, kept up to date.
        let mut addrs = std::collections::HashSet::new();
        if plan.instances.iter().any(|p| p.track_src.is_some()) {
            let (addr_tx, mut addr_rx) = mpsc::unbounded_channel();
            crate::link::addr_monitor(addr_tx)?;
            addrs = nl.all_addrs().await?;
            let fwd = track_tx.clone();
            tasks.push(tokio::spawn(async move {
                while let Some((ip, present)) = addr_rx.recv().await {
                    if fwd.send(TrackEvent::Addr(ip, present)).is_err() {
                        break;
                    }
                }
            }));
        }
        let (policy, why) = ScriptPolicy::of(plan.script_security, plan.script_user.as_deref());
        if let Some(why) = why {
            tracing::error!("{why}");
        }
        let used = |t: &Tracked| {
            rts.iter()
                .any(|r| r.plan.trackers.iter().any(|x| &x.what == t))
        };
        for (k, s) in plan.scripts.iter().enumerate() {
            if used(&Tracked::Script(k)) {
                tasks.push(track::spawn_script(k, s.clone(), policy, track_tx.clone()));
            }
        }
        let mut files = vec![0; plan.files.len()];
        for (k, f) in plan.files.iter().enumerate() {
            if used(&Tracked::File(k)) {
                if let Some(p) = &f.file {
                    files[k] = track::read_file_value(p);
                }
                tasks.push(track::spawn_file(k, f.clone(), track_tx.clone()));
            }
        }
        for (k, name) in plan.bfds.iter().enumerate() {
            if used(&Tracked::Bfd(k)) {
                let w = bfd.lock().ok().and_then(|r| r.get(name).cloned());
                if let Some(w) = w {
                    tasks.push(track::spawn_bfd(k, w, track_tx.clone()));
                } else {
                    tracing::error!(
                        "track_bfd {name}: no BFD session runs for it (a weight-0 tracker keeps the instance in FAULT)"
                    );
                }
            }
        }
        for (k, p) in plan.processes.iter().enumerate() {
            if used(&Tracked::Process(k)) {
                tasks.push(track::spawn_process(k, p.clone(), track_tx.clone()));
            }
        }
        let scripts = plan
            .scripts
            .iter()
            .map(|s| {
                carry
                    .and_then(|c| c.scripts.get(&format!("{s:?}")).copied())
                    .or(s.init_fail.then_some(false))
            })
            .collect();
        let bfds = plan
            .bfds
            .iter()
            .map(|n| carry.and_then(|c| c.bfds.get(n).copied()))
            .collect();
        let processes = plan
            .processes
            .iter()
            .map(|p| carry.and_then(|c| c.processes.get(&format!("{p:?}")).copied()))
            .collect();
        let keys = (
            plan.scripts.iter().map(|s| format!("{s:?}")).collect(),
            plan.bfds.clone(),
            plan.processes.iter().map(|p| format!("{p:?}")).collect(),
        );
        let engine = Engine {
            waiting: plan.waiting.clone(),
            keys,
            rts,
            groups,
            loc,
            nl,
            origin: Instant::now(),
            startup_delay: if handover.is_none() {
                Duration::from_micros(plan.startup_delay_us)
            } else {
                Duration::ZERO
            },
            links,
            addrs,
            scripts,
            files,
            bfds,
            processes,
            policy,
            fifos: Fifos::open(&plan.fifos),
            fifo_states_on_reload: plan.fifo_states_on_reload,
            auto_priority: plan.auto_priority,
            tasks,
            status,
        };
        Ok((engine, track_rx, adv_rx))
    }

    /// Runs until `stop` fires, then leaves as keepalived does on SIGTERM: a MASTER
    /// sends a priority-0 advert and removes its VIPs, and STOP is notified.
    pub async fn run(
        mut self,
        mut track_rx: mpsc::UnboundedReceiver<TrackEvent>,
        mut adv_rx: mpsc::Receiver<(usize, rvs_vrrp::Advert)>,
        mut stop: tokio::sync::oneshot::Receiver<StopMode>,
    ) -> Handover {
        if !self.startup_delay.is_zero() {
            tracing::info!(
                "Delaying startup for {} seconds",
                self.startup_delay.as_secs_f64()
            );
            self.publish();
            let until = tokio::time::Instant::now() + self.startup_delay;
            loop {
                tokio::select! {
                    biased;
                    mode = &mut stop => {
                        return self.shutdown(mode.unwrap_or(StopMode::Shutdown)).await;
                    }
                    () = tokio::time::sleep_until(until) => break,
                    // Adverts are discarded meanwhile (spec §2.2); trackers keep their state.
                    Some(_) = adv_rx.recv() => {}
                    Some(t) = track_rx.recv() => self.track(t),
                }
            }
        }
        let now = self.now();
        for g in 0..self.groups.len() {
            let acts = self.groups[g].core.start(now);
            self.exec(g, acts).await;
            // MASTERs handed over by a reload go on as MASTER at once.
            for m in 0..self.groups[g].members.len() {
                let i = self.groups[g].members[m];
                if self.rts[i].quiet == Some(State::Master) {
                    let acts = self.groups[g].core.members[m].force_master(now);
                    let acts = acts.into_iter().map(|a| (m, a)).collect();
                    self.exec(g, acts).await;
                }
            }
        }
        self.reevaluate().await;
        self.publish();
        let mode = loop {
            let deadline = self
                .groups
                .iter()
                .filter_map(|g| g.core.deadline())
                .min()
                .map(|d| self.origin + Duration::from_micros(d.saturating_sub(1)));
            let sleep = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d.into()).await,
                    None => std::future::pending().await,
                }
            };
            let ev = tokio::select! {
                biased;
                mode = &mut stop => break mode.unwrap_or(StopMode::Shutdown),
                // Timers before packets: a flood of adverts cannot starve them.
                () = sleep => None,
                Some((i, a)) = adv_rx.recv() => Some(Ev::Advert(i, a)),
                Some(t) = track_rx.recv() => Some(Ev::Track(t)),
            };
            match ev {
                Some(Ev::Advert(i, a)) => self.on_advert(i, &a).await,
                Some(Ev::Track(TrackEvent::VipElsewhere(vip, mac))) => {
                    self.vip_elsewhere(vip, mac).await;
                }
                Some(Ev::Track(t)) => {
                    self.track(t);
                    self.reevaluate().await;
                }
                None => {
                    if let (Some(d), Some((max, min_delay))) = (deadline, self.auto_priority) {
                        let late = Instant::now().saturating_duration_since(d);
                        if late > min_delay {
                            raise_priority(late, max);
                        }
                    }
                    let now = self.now();
                    for g in 0..self.groups.len() {
                        if self.groups[g].core.deadline().is_some_and(|d| d <= now) {
                            let acts = self.groups[g].core.on_timer(now);
                            self.exec(g, acts).await;
                        }
                    }
                }
            }
            self.publish();
        };
        self.shutdown(mode).await
    }

    /// A tracker's new state.
    fn track(&mut self, t: TrackEvent) {
        match t {
            TrackEvent::Link(name, up) => {
                if self.links.insert(name.clone(), up) != Some(up) {
                    tracing::info!("Netlink reports {name} {}", if up { "up" } else { "down" });
                }
            }
            TrackEvent::Addr(ip, present) => {
                let changed = if present {
                    self.addrs.insert(ip)
                } else {
                    self.addrs.remove(&ip)
                };
                if changed && self.rts.iter().any(|r| r.plan.track_src == Some(ip)) {
                    tracing::info!(
                        "Netlink reports address {ip} {}",
                        if present { "added" } else { "removed" }
                    );
                }
            }
            TrackEvent::Script(k, up) => {
                if let Some(s) = self.scripts.get_mut(k) {
                    *s = Some(up);
                }
            }
            TrackEvent::File(k, v) => {
                if let Some(f) = self.files.get_mut(k) {
                    *f = v;
                }
            }
            TrackEvent::Bfd(k, up) => {
                if let Some(b) = self.bfds.get_mut(k) {
                    *b = Some(up);
                }
            }
            TrackEvent::Process(k, up) => {
                if let Some(p) = self.processes.get_mut(k) {
                    *p = Some(up);
                }
            }
            // Handled by the main loop (`vip_elsewhere`), ignored while starting up.
            TrackEvent::VipElsewhere(..) => {}
        }
    }

    /// Another MAC answered for `vip`: a split brain when an instance holding it is
    /// MASTER (counted, and logged once a minute per instance). Under
    /// `rvs_split_brain_arbitration` the lower MAC steps down and stays BACKUP while the
    /// higher one answers.
    async fn vip_elsewhere(&mut self, vip: std::net::Ipv4Addr, mac: [u8; 6]) {
        let now = self.now();
        for i in 0..self.rts.len() {
            let (g, m) = self.loc[i];
            let state = self.groups[g].core.members[m].state();
            let rt = &mut self.rts[i];
            if !rt.vips.iter().any(|(v, _, _)| v.address == IpAddr::V4(vip)) {
                continue;
            }
            let own = rt.vmac.as_ref().map_or(rt.link.mac, |v| v.mac);
            if state == State::Master {
                rt.split_brain += 1;
                rt.split_brain_mac = Some(mac);
                if rt
                    .split_brain_logged
                    .is_none_or(|t| t.elapsed() >= Duration::from_mins(1))
                {
                    rt.split_brain_logged = Some(Instant::now());
                    tracing::error!(
                        rvs_instance = %rt.plan.name,
                        "({}) split brain: this director is MASTER and {} answers for VIP {vip} too: \
                         another director that does not hear this one's adverts (check that VRRP, \
                         IP protocol 112, passes between them), or a host that answers ARP for the \
                         VIP (a real server without arp_ignore=1 / arp_announce=2)",
                        rt.plan.name,
                        mac_text(mac)
                    );
                }
            }
            if !rt.plan.split_brain_arbitration {
                continue;
            }
            let step = match state {
                State::Master if mac > own => {
                    tracing::warn!(
                        rvs_instance = %rt.plan.name,
                        "({}) split brain arbitration: {} has the higher MAC; stepping down to \
                         BACKUP while it answers for VIP {vip}",
                        rt.plan.name,
                        mac_text(mac)
                    );
                    rt.yielded_to = Some(mac);
                    true
                }
                State::Backup => rt.yielded_to == Some(mac),
                _ => false,
            };
            if step {
                let acts = self.groups[g].core.on_vip_elsewhere(now, m, true);
                self.exec(g, acts).await;
            }
        }
    }

    async fn on_advert(&mut self, i: usize, a: &rvs_vrrp::Advert) {
        // Adverts pass again: VRRP decides, not the split-brain arbitration.
        self.rts[i].yielded_to = None;
        let (g, m) = self.loc[i];
        let was = self.groups[g].core.members[m].state();
        let now = self.now();
        let acts = self.groups[g].core.on_advert(now, m, a);
        if was == State::Master
            && acts.iter().any(|(_, x)| *x == Action::TakeAddresses)
            && self.groups[g].core.members[m].state() == State::Master
        {
            tracing::info!(
                "({}) Received advert from {} with lower priority {}, ours {}, forcing new election",
                self.rts[i].plan.name,
                a.src,
                a.priority,
                self.groups[g].core.members[m].priority()
            );
        }
        self.exec(g, acts).await;
    }

    /// Recomputes every instance's effective priority and fault from the trackers.
    async fn reevaluate(&mut self) {
        let now = self.now();
        for i in 0..self.rts.len() {
            let trackers: Vec<Tracker> = self.rts[i]
                .plan
                .trackers
                .iter()
                .filter_map(|t| match &t.what {
                    Tracked::Interface(n) => Some(Tracker::State {
                        up: self.links.get(n).copied().unwrap_or(false),
                        weight: t.weight,
                        reverse: t.reverse,
                    }),
                    Tracked::Bfd(k) => on_off(self.bfds.get(*k).copied().flatten(), t),
                    Tracked::Process(k) => on_off(self.processes.get(*k).copied().flatten(), t),
                    Tracked::Script(k) => on_off(self.scripts.get(*k).copied().flatten(), t),
                    Tracked::File(k) => Some(Tracker::File {
                        value: self.files.get(*k).copied().unwrap_or(0),
                        weight: t.weight,
                        reverse: t.reverse,
                    }),
                })
                .collect();
            let r = rvs_vrrp::track::effective_priority(self.rts[i].plan.priority, &trackers);
            let (g, m) = self.loc[i];
            let plan = &self.rts[i].plan;
            // unicast_fault_no_peer without peers, track_src_ip without the address.
            let fault = r.is_err()
                || plan.fault_no_peer
                || plan.track_src.is_some_and(|a| !self.addrs.contains(&a));
            if let Ok(p) = r {
                let before = self.groups[g].core.members[m].priority();
                self.groups[g].core.members[m].set_priority(p);
                let after = self.groups[g].core.members[m].priority();
                if before != after {
                    tracing::info!(
                        "({}) Changing effective priority from {before} to {after}",
                        self.rts[i].plan.name
                    );
                    // keepalived's send_instance_priority_notifies: a FIFO line,
                    // MASTER_PRIORITY when MASTER, else BACKUP_PRIORITY.
                    if self.rts[i].plan.notify.priority_changes {
                        let ev = if self.groups[g].core.members[m].state() == State::Master {
                            Event::MasterPriority
                        } else {
                            Event::BackupPriority
                        };
                        self.notify_instance(i, ev);
                    }
                }
            }
            if fault != self.rts[i].fault {
                self.rts[i].fault = fault;
                let grp = &mut self.groups[g];
                let acts = grp.core.set_fault(now, m, fault, &mut grp.faulted);
                self.exec(g, acts).await;
            }
        }
    }

    async fn exec(&mut self, g: usize, acts: Vec<(usize, Action)>) {
        for (m, a) in acts {
            let i = self.groups[g].members[m];
            match a {
                Action::SendAdvert { priority } => {
                    let r = net::advert(&self.rts[i].plan, priority);
                    match self.rts[i].sock.send(&r) {
                        Ok(()) => {
                            self.rts[i].tx += 1;
                            if priority == 0 {
                                self.rts[i].prio_zero_tx += 1;
                            }
                        }
                        Err(e) => tracing::warn!("({}) sending advert: {e}", self.rts[i].plan.name),
                    }
                }
                Action::TakeAddresses => self.take(i).await,
                Action::ReleaseAddresses => self.release(i).await,
                Action::Notify(s) => {
                    let Some(ev) = Event::of_state(s) else {
                        continue;
                    };
                    // The state a reload handed over (or BACKUP on the way to it).
                    if let Some(q) = self.rts[i].quiet {
                        if s == q || (s == State::Backup && q == State::Master) {
                            if s == q {
                                self.rts[i].quiet = None;
                                // fifo_write_vrrp_states_on_reload: the state it goes on
                                // in, to the FIFOs only (no script runs).
                                if self.fifo_states_on_reload {
                                    let (g, m) = self.loc[i];
                                    let prio = self.groups[g].core.members[m].priority();
                                    let line = notify::fifo_line(
                                        "INSTANCE",
                                        &self.rts[i].plan.name,
                                        ev,
                                        prio,
                                    );
                                    self.fifos.write(&line);
                                }
                            }
                            continue;
                        }
                        self.rts[i].quiet = None;
                    }
                    let rt = &mut self.rts[i];
                    tracing::info!(
                        instance = %rt.plan.name,
                        state = s.name(),
                        "({}) Entering {} STATE",
                        rt.plan.name,
                        s
                    );
                    if s == State::Master {
                        rt.became_master += 1;
                    } else if rt.was_master {
                        rt.released_master += 1;
                    }
                    rt.was_master = s == State::Master;
                    rt.last_transition_us = unix_us();
                    self.notify_instance(i, ev);
                }
                Action::MasterRxLowerPriority => {
                    self.notify_instance(i, Event::MasterRxLowerPri);
                }
            }
        }
        self.group_notify(g);
    }

    fn notify_instance(&mut self, i: usize, ev: Event) {
        let (g, m) = self.loc[i];
        let prio = self.groups[g].core.members[m].priority();
        let p = &self.rts[i].plan;
        notify::notify(
            &self.policy,
            &mut self.fifos,
            &p.notify,
            "INSTANCE",
            &p.name,
            ev,
            prio,
        );
    }

    /// A sync group's own notification when its overall state changes.
    fn group_notify(&mut self, g: usize) {
        let grp = &mut self.groups[g];
        let Some((name, n)) = &grp.named else { return };
        let st = grp.core.state();
        let ev = if st.contains(&State::Fault) {
            Event::Fault
        } else if st.iter().all(|s| *s == State::Master) {
            Event::Master
        } else if st
            .iter()
            .all(|s| *s == State::Backup || *s == State::Master)
        {
            Event::Backup
        } else {
            return;
        };
        if grp.last != Some(ev) {
            grp.last = Some(ev);
            tracing::info!(
                "VRRP_Group({name}) Syncing instances to {} state",
                ev.name()
            );
            notify::notify(&self.policy, &mut self.fifos, n, "GROUP", name, ev, 0);
        }
    }

    async fn take(&mut self, i: usize) {
        let rt = &mut self.rts[i];
        let lower_prio = rt.holding;
        if !rt.holding {
            // Adding a VIP that is there already is a no-op (kept across a reload).
            for (v, idx, _) in &rt.vips {
                if let Err(e) = self.nl.add_vip(*idx, v).await {
                    tracing::error!("({}) adding VIP {}: {e}", rt.plan.name, v.address);
                }
            }
            // virtual_rules and virtual_routes follow the VIPs (after them: a route may use
            // a VIP as source), rules first (a route may be in a table a rule points at).
            for r in &rt.plan.rules {
                if let Err(e) = self.nl.rule(r, true).await {
                    tracing::error!("({}) adding rule '{}': {e}", rt.plan.name, r.text);
                }
            }
            for r in &rt.plan.routes {
                if let Err(e) = self.nl.route(r, true).await {
                    tracing::error!("({}) adding route '{}': {e}", rt.plan.name, r.text);
                }
            }
            rt.holding = true;
        }
        let gp = rt.plan.garp;
        let (repeat, delay, refresh) = if lower_prio {
            (gp.lower_prio_repeat, gp.lower_prio_delay, 0)
        } else {
            (gp.master_repeat, gp.master_delay, gp.master_refresh)
        };
        if let Some(t) = rt.garp.take() {
            t.abort();
        }
        let targets: Vec<(Arc<Announcer>, IpAddr)> = rt
            .vips
            .iter()
            .map(|(v, _, a)| (a.clone(), v.address))
            .collect();
        // garp_extra_if (keepalived's vrrp_send_vmac_update): one announcement per
        // interface of a VIP that is not the instance's own (its VMAC, with use_vmac),
        // VMACs only unless `all` (rvs makes no VMAC but the instance's, so `all`), the
        // instance's own with vmac_xmit_base; none at all when no VIP is elsewhere.
        let own = rt
            .vmac
            .as_ref()
            .map_or(rt.plan.iface.as_str(), |v| v.name.as_str());
        let mut extra: Vec<(Arc<Announcer>, IpAddr)> = Vec::new();
        let elsewhere = targets.iter().any(|(a, _)| a.ifname() != own);
        if gp.extra_if > 0 && elsewhere && gp.extra_if_all {
            for (a, ip) in &targets {
                let is_own = a.ifname() == own;
                if is_own && !rt.plan.vmac_xmit_base {
                    continue;
                }
                if !extra.iter().any(|(b, _)| b.ifname() == a.ifname()) {
                    extra.push((a.clone(), *ip));
                }
            }
        }
        rt.garp = Some(tokio::spawn(announce(
            targets,
            repeat,
            delay,
            refresh,
            gp.master_refresh_repeat,
            gp.interval,
            (extra, gp.extra_if),
        )));
    }

    async fn release(&mut self, i: usize) {
        let rt = &mut self.rts[i];
        if let Some(t) = rt.garp.take() {
            t.abort();
        }
        if !rt.holding {
            return;
        }
        for r in &rt.plan.routes {
            if let Err(e) = self.nl.route(r, false).await {
                tracing::error!("({}) removing route '{}': {e}", rt.plan.name, r.text);
            }
        }
        for r in &rt.plan.rules {
            if let Err(e) = self.nl.rule(r, false).await {
                tracing::error!("({}) removing rule '{}': {e}", rt.plan.name, r.text);
            }
        }
        for (v, idx, _) in &rt.vips {
            if let Err(e) = self.nl.del_vip(*idx, v).await {
                tracing::error!("({}) removing VIP {}: {e}", rt.plan.name, v.address);
            }
        }
        rt.holding = false;
    }

    async fn shutdown(mut self, mode: StopMode) -> Handover {
        let keep: Vec<String> = match &mode {
            StopMode::Shutdown => Vec::new(),
            StopMode::Reload(k) => k.clone(),
        };
        let mut handoffs = Vec::new();
        for g in 0..self.groups.len() {
            let mut acts = Vec::new();
            for m in 0..self.groups[g].core.members.len() {
                let i = self.groups[g].members[m];
                let rt = &self.rts[i];
                if keep.contains(&rt.plan.name) {
                    handoffs.push(Handoff {
                        name: rt.plan.name.clone(),
                        iface: rt.plan.iface.clone(),
                        vrid: rt.plan.vrid,
                        v6: rt.plan.v6,
                        state: self.groups[g].core.members[m].state(),
                        held: if rt.holding {
                            rt.vips
                                .iter()
                                .map(|(v, idx, _)| (v.address, v.prefix_len, *idx))
                                .collect()
                        } else {
                            Vec::new()
                        },
                        held_routes: if rt.holding {
                            rt.plan.routes.clone()
                        } else {
                            Vec::new()
                        },
                        held_rules: if rt.holding {
                            rt.plan.rules.clone()
                        } else {
                            Vec::new()
                        },
                        counters: rt.counters(),
                    });
                    continue;
                }
                acts.extend(
                    self.groups[g].core.members[m]
                        .shutdown()
                        .into_iter()
                        .map(|a| (m, a)),
                );
            }
            self.exec(g, acts).await;
        }
        for i in 0..self.rts.len() {
            let rt = &mut self.rts[i];
            rt.reader.abort();
            if let Some(t) = rt.garp.take() {
                t.abort();
            }
            if keep.contains(&rt.plan.name) {
                continue;
            }
            if let Some(v) = &rt.vmac {
                // keepalived removes its VMACs at stop (the base's ARP settings stay).
                if let Err(e) = self.nl.del_link(v.index).await {
                    tracing::warn!("({}) removing {}: {e}", rt.plan.name, v.name);
                }
            }
            let rt = &self.rts[i];
            // Removed by a reload: keepalived reports DELETED with notify_deleted, else FAULT.
            let ev = match mode {
                StopMode::Shutdown => Event::Stop,
                StopMode::Reload(_) if rt.plan.notify.report_deleted => Event::Deleted,
                StopMode::Reload(_) => Event::Fault,
            };
            tracing::info!("({}) Stopped ({})", rt.plan.name, ev.name());
            self.notify_instance(i, ev);
        }
        for g in &self.groups {
            if let Some((name, n)) = &g.named {
                if matches!(mode, StopMode::Shutdown) {
                    notify::notify(
                        &self.policy,
                        &mut self.fifos,
                        n,
                        "GROUP",
                        name,
                        Event::Stop,
                        0,
                    );
                }
            }
        }
        for t in &self.tasks {
            t.abort();
        }
        self.publish();
        let known = |keys: &[String], vals: &[Option<bool>]| -> HashMap<String, bool> {
            keys.iter()
                .zip(vals)
                .filter_map(|(k, v)| v.map(|v| (k.clone(), v)))
                .collect()
        };
        Handover {
            instances: handoffs,
            trackers: Carry {
                scripts: known(&self.keys.0, &self.scripts),
                bfds: known(&self.keys.1, &self.bfds),
                processes: known(&self.keys.2, &self.processes),
            },
        }
    }

    fn publish(&self) {
        let mut out = Vec::with_capacity(self.rts.len());
        for (i, rt) in self.rts.iter().enumerate() {
            let (g, m) = self.loc[i];
            let core = &self.groups[g].core.members[m];
            let mut dropped = BTreeMap::new();
            for (k, d) in Drop::ALL.iter().enumerate() {
                let n = rt.rx.dropped[k].load(Ordering::Relaxed);
                if n > 0 {
                    dropped.insert(d.name().to_owned(), n);
                }
            }
            out.push(InstanceStatus {
                name: rt.plan.name.clone(),
                interface: rt.link.name.clone(),
                ifindex: rt.link.index,
                mac: rt.link.mac,
                vrid: rt.plan.vrid,
                version: rt.plan.version,
                state: core.state(),
                base_priority: rt.plan.priority,
                priority: core.priority(),
                source: rt.src.to_string(),
                master: core.master.map(|(a, _)| a.to_string()),
                master_priority: core.master.map(|(_, p)| p),
                vips: rt
                    .vips
                    .iter()
                    .map(|(v, _, _)| format!("{}/{}", v.address, v.prefix_len))
                    .collect(),
                sync_group: self.groups[g].named.as_ref().map(|(n, _)| n.clone()),
                adverts_rx: rt.rx.adverts.load(Ordering::Relaxed),
                adverts_tx: rt.tx,
                priority_zero_tx: rt.prio_zero_tx,
                became_master: rt.became_master,
                priority_zero_rx: rt.rx.priority_zero.load(Ordering::Relaxed),
                released_master: rt.released_master,
                addr_list_err: rt.rx.addr_list_err.load(Ordering::Relaxed),
                last_transition_us: rt.last_transition_us,
                dropped,
                split_brain: rt.split_brain,
                split_brain_mac: rt.split_brain_mac.map(mac_text),
            });
        }
        for p in &self.waiting {
            out.push(InstanceStatus {
                name: p.name.clone(),
                interface: p.iface.clone(),
                ifindex: 0,
                mac: [0; 6],
                vrid: p.vrid,
                version: p.version,
                state: State::Fault,
                base_priority: p.priority,
                priority: p.priority,
                source: String::new(),
                master: None,
                master_priority: None,
                vips: p
                    .vips
                    .iter()
                    .map(|v| format!("{}/{}", v.address, v.prefix_len))
                    .collect(),
                sync_group: None,
                adverts_rx: 0,
                adverts_tx: 0,
                priority_zero_tx: 0,
                became_master: 0,
                priority_zero_rx: 0,
                released_master: 0,
                addr_list_err: 0,
                last_transition_us: 0,
                dropped: BTreeMap::new(),
                split_brain: 0,
                split_brain_mac: None,
            });
        }
        if let Ok(mut s) = self.status.lock() {
            *s = out;
        }
    }
}

/// Gratuitous ARP / NA bursts: `repeat` rounds now, again after `delay` s, then
/// `refresh_repeat` rounds every `refresh` s, until aborted; beside them, one round on
/// the `extra` interfaces every `extra_secs` s (`garp_extra_if`).
async fn announce(
    targets: Vec<(Arc<Announcer>, IpAddr)>,
    repeat: u32,
    delay: u32,
    refresh: u32,
    refresh_repeat: u32,
    interval: Duration,
    (extra, extra_secs): (Vec<(Arc<Announcer>, IpAddr)>, u32),
) {
    let extra_if = async {
        if extra.is_empty() || extra_secs == 0 {
            return;
        }
        loop {
            tokio::time::sleep(Duration::from_secs(u64::from(extra_secs))).await;
            for (a, ip) in &extra {
                if let Err(e) = a.announce(*ip) {
                    tracing::warn!("announcing {ip} on {}: {e}", a.ifname());
                }
            }
        }
    };
    tokio::join!(
        bursts(&targets, repeat, delay, refresh, refresh_repeat, interval),
        extra_if
    );
}

async fn bursts(
    targets: &[(Arc<Announcer>, IpAddr)],
    repeat: u32,
    delay: u32,
    refresh: u32,
    refresh_repeat: u32,
    interval: Duration,
) {
    let gap = interval;
    let burst = |n: u32| async move {
        for _ in 0..n {
            for (a, ip) in targets {
                if let Err(e) = a.announce(*ip) {
                    tracing::warn!("announcing {ip}: {e}");
                }
                if !gap.is_zero() {
                    tokio::time::sleep(gap).await;
                }
            }
        }
    };
    burst(repeat).await;
    if delay > 0 {
        tokio::time::sleep(Duration::from_secs(u64::from(delay))).await;
        burst(repeat).await;
    }
    if refresh > 0 {
        loop {
            tokio::time::sleep(Duration::from_secs(u64::from(refresh))).await;
            burst(refresh_repeat).await;
        }
    }
}

/// Reads one instance's socket: valid adverts go to the engine, the rest are counted
/// and logged at most once per reason every 10 s.
async fn reader(
    i: usize,
    p: InstancePlan,
    sock: Arc<VrrpSocket>,
    stats: Arc<RxStats>,
    tx: mpsc::Sender<(usize, rvs_vrrp::Advert)>,
    unknown: Option<std::collections::BTreeSet<u8>>,
) {
    let mut buf = vec![0u8; 65_536];
    let mut last_log: [Option<Instant>; Drop::ALL.len()] = [None; Drop::ALL.len()];
    let mut last_mismatch: Option<Instant> = None;
    let mut last_unknown: Option<Instant> = None;
    // skip_check_adv_addr: the previous advert's addresses.
    let mut last_addrs: Option<Vec<IpAddr>> = None;
    loop {
        let (meta, msg) = match sock.recv(&mut buf).await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!("({}) receiving: {e}", p.name);
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let verdict = match msg {
            Ok(m) => net::check(&p, &meta, m),
            Err(d) => Verdict::Drop(d),
        };
        match verdict {
            Verdict::NotOurs => {
                let vrid = msg
                    .ok()
                    .and_then(|m| rvs_wire::vrrp::Packet::new_checked(m, p.v6).ok())
                    .map(|k| k.vrid());
                if let (Some(known), Some(v)) = (&unknown, vrid) {
                    if !known.contains(&v)
                        && last_unknown.is_none_or(|t| t.elapsed() > Duration::from_secs(10))
                    {
                        last_unknown = Some(Instant::now());
                        tracing::info!(
                            "VRRP advert on {} from {} for unknown VRID {v} (logged at most \
                             every 10 s)",
                            p.iface,
                            meta.src
                        );
                    }
                }
            }
            Verdict::Drop(d) => {
                let k = Drop::ALL.iter().position(|x| *x == d).unwrap_or(0);
                stats.dropped[k].fetch_add(1, Ordering::Relaxed);
                if last_log[k].is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
                    last_log[k] = Some(Instant::now());
                    tracing::warn!(
                        "({}) dropped a VRRP packet from {}: {} (counted; logged at most every 10 s)",
                        p.name,
                        meta.src,
                        d.name()
                    );
                }
            }
            Verdict::Accept(a) => {
                stats.adverts.fetch_add(1, Ordering::Relaxed);
                // A peer checksumming unicast adverts the old way: answer in kind (as
                // keepalived does unless `old_unicast_checksum never`).
                if a.old_checksum && sock.use_old_checksum() {
                    tracing::info!(
                        "({}) Setting unicast VRRPv3 checksum to old version",
                        p.name
                    );
                }
                if a.advert.priority == 0 {
                    stats.priority_zero.fetch_add(1, Ordering::Relaxed);
                }
                // skip_check_adv_addr: a list the same as the previous advert's is not
                // compared again.
                let compare = !p.skip_check_adv_addr || last_addrs.as_ref() != Some(&a.addrs);
                let mismatch = compare && a.addr_mismatch;
                last_addrs = Some(a.addrs);
                if mismatch {
                    stats.addr_list_err.fetch_add(1, Ordering::Relaxed);
                }
                if mismatch && last_mismatch.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
                    last_mismatch = Some(Instant::now());
                    tracing::warn!(
                        "({}) advert from {} lists other addresses than ours",
                        p.name,
                        meta.src
                    );
                }
                // owner_ignore_adverts: the address owner goes on as MASTER whatever it hears.
                if p.owner_ignore_adverts && p.priority == 255 {
                    continue;
                }
                if tx.send((i, a.advert)).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// keepalived's `max_auto_priority`: a timer that fired `late` says this thread does not
/// get the CPU in time, so it goes one real-time step up (to `max` at most), with
/// keepalived's default `RLIMIT_RTTIME` once it is real-time.
fn raise_priority(late: Duration, max: u8) {
    let now = crate::sys::rt_priority();
    tracing::info!(
        "A thread timer expired {}.{:06} seconds ago",
        late.as_secs(),
        late.subsec_micros()
    );
    if now >= max {
        return;
    }
    match crate::sys::set_round_robin(now + 1) {
        Ok(()) => {
            tracing::info!("Set realtime priority {}", now + 1);
            if now == 0 {
                let _ = crate::sys::set_rttime_limit(crate::sys::RT_RLIMIT_DEFAULT);
            }
        }
        Err(e) => tracing::warn!("cannot raise the VRRP thread's priority: {e}"),
    }
}

/// An up/down tracker (`vrrp_script`, `track_bfd`). `None` — a script not run yet, a BFD
/// session that does not run: with weight 0 it holds the instance in FAULT (as keepalived
/// before the first result), a weighted one counts for nothing.
fn on_off(state: Option<bool>, t: &crate::plan::TrackPlan) -> Option<Tracker> {
    match state {
        Some(up) => Some(Tracker::State {
            up,
            weight: t.weight,
            reverse: t.reverse,
        }),
        None if t.weight == 0 => Some(Tracker::State {
            up: t.reverse,
            weight: 0,
            reverse: t.reverse,
        }),
        None => None,
    }
}

/// Creates (or reuses) an instance's VMAC — a private-mode macvlan on the base interface
/// with 00:00:5e:00:01:VRID — with keepalived's interface settings: on the VMAC
/// `arp_ignore 1` (answer ARP only for the VIPs on it), `accept_local 1` and
/// `rp_filter 0` (it has no address of its own); on the base `arp_ignore 1` and
/// `arp_filter 1`, so that the base does not answer for the VIPs with its own MAC.
async fn setup_vmac(
    nl: &Netlink,
    name: &str,
    base: &LinkInfo,
    vrid: u8,
) -> Result<LinkInfo, String> {
    let mac = [0x00, 0x00, 0x5e, 0x00, 0x01, vrid];
    let v = nl
        .ensure_vmac(name, base.index, mac)
        .await
        .map_err(|e| e.to_string())?;
    for (iface, key, value) in [
        (name, "arp_ignore", "1"),
        (name, "accept_local", "1"),
        (name, "rp_filter", "0"),
        (base.name.as_str(), "arp_ignore", "1"),
        (base.name.as_str(), "arp_filter", "1"),
    ] {
        crate::link::set_ipv4_conf(iface, key, value)
            .map_err(|e| format!("net.ipv4.conf.{iface}.{key}: {e}"))?;
    }
    tracing::info!(
        "VMAC {name} ({}) on {}",
        mac.iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(":"),
        base.name
    );
    Ok(v)
}

/// A MAC as `ip link` prints it.
fn mac_text(m: [u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}
