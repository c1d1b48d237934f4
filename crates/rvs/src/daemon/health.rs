//! The checkers' driver: runs the checker tasks the core plans (`rvs_daemon::CheckerPlan`),
//! the BFD sessions `BFD_CHECK` and VRRP's `track_bfd` follow, and carries out the core's
//! effects (notify scripts, e-mail alerts, FIFO lines). What a report does to a real
//! server is the core's decision (`rvs_daemon::health`), not this module's.

use rvs_check::{CheckId, Event};
use rvs_conf::model::Config;
use rvs_daemon::{CheckKey, CheckerPlan, Effect, ProbeFigures, Spec};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// A `bfd_instance` as the BFD driver runs it (`None` without a neighbour: refused by
/// the config check already).
fn bfd_instance(b: &rvs_conf::model::BfdInstance) -> Option<rvs_bfd::driver::Instance> {
    let neighbor = b.neighbor_ip?;
    Some(rvs_bfd::driver::Instance {
        name: b.name.clone(),
        neighbor,
        source: b.source_ip,
        session: rvs_bfd::Config {
            detect_mult: b.multiplier,
            min_tx: b.min_tx,
            min_rx: b.min_rx,
            idle_tx: b.idle_tx,
            passive: b.passive,
        },
        ttl: if neighbor.is_ipv6() {
            b.hoplimit
        } else {
            b.ttl
        },
        max_hops: b.max_hops,
    })
}

/// `BFD_CHECK`: the checker follows its session — up when the session is Up, down when
/// it falls from Init or Up. A session still coming up (Down at start, Init) is no
/// verdict: a checker without `alpha` stays up meanwhile (keepalived takes the Init event
/// for a failure; rvs does not remove a server while its session comes up).
async fn follow_bfd(
    id: CheckId,
    name: String,
    mut w: tokio::sync::watch::Receiver<rvs_bfd::driver::Seen>,
    mut up: bool,
    tx: mpsc::Sender<Event>,
) {
    let mut seen = *w.borrow_and_update();
    let mut downs = seen.downs;
    loop {
        let now_up = if seen.downs != downs {
            false
        } else if seen.state == rvs_bfd::State::Up {
            true
        } else {
            up
        };
        // A fall noticed late, and the session already Up again: down, then up.
        let back_up = seen.downs != downs && seen.state == rvs_bfd::State::Up;
        downs = seen.downs;
        for next in [Some(now_up), back_up.then_some(true)]
            .into_iter()
            .flatten()
        {
            if next != up {
                up = next;
                let detail = format!(
                    "BFD_CHECK: bfd_instance {name} is {}",
                    if up { "Up" } else { "Down" }
                );
                if tx.send(Event::Changed { id, up, detail }).await.is_err() {
                    return;
                }
            }
        }
        if w.changed().await.is_err() {
            return;
        }
        seen = *w.borrow_and_update();
    }
}

/// The checker tasks, the BFD sessions and the outputs of the core's effects.
pub struct Checkers {
    /// Running checker tasks by the identity the core gave them.
    tasks: HashMap<CheckId, (CheckKey, JoinHandle<()>)>,
    /// Each checker's probe counters, kept across restarts of the same checker.
    probes: HashMap<CheckKey, Arc<rvs_check::ProbeStats>>,
    /// `ha_suspend`: by virtual server, whether its checkers are suspended (its address
    /// is not on the host).
    suspended: HashMap<String, rvs_check::Suspended>,
    /// The `bfd_instance` sessions; restarted only when the instances change.
    bfd: Option<rvs_bfd::driver::Bfd>,
    /// The thread the sessions run on (`bfd_rt_priority`, `bfd_cpu_affinity`, ...).
    bfd_thread: Option<crate::daemon::threads::TaskThread>,
    /// Each session's state channel and its run number (bumped when the channel is new).
    bfd_runs: HashMap<String, (tokio::sync::watch::Receiver<rvs_bfd::driver::Seen>, u64)>,
    next_bfd_run: u64,
    /// The sessions' state channels for VRRP's `track_bfd`.
    pub bfd_registry: rvs_bfd::driver::Registry,
    /// The BFD sessions' status, written by the BFD driver, read by the control API.
    pub bfd_status: Arc<std::sync::Mutex<Vec<rvs_bfd::driver::Status>>>,
    pub rx: mpsc::Receiver<Event>,
    tx: mpsc::Sender<Event>,
    /// E-mail alerts of real servers and quorums (`smtp_alert`), when configured.
    pub alerts: Option<Arc<crate::daemon::alerts::Alerts>>,
    /// The SNMP subagent's trap queue, while one runs.
    snmp: Option<rvs_snmp::agent::Handle>,
    /// Traps due before the subagent started (keepalived's `rs_init_notifies` at start).
    early_traps: Vec<rvs_snmp::agent::Trap>,
    /// `notify_fifo` and `lvs_notify_fifo`, and the paths they were opened for.
    fifos: Option<(Vec<String>, rvs_vrrpd::notify::Fifos)>,
}

impl Checkers {
    pub fn new() -> Checkers {
        let (tx, rx) = mpsc::channel(1024);
        Checkers {
            tasks: HashMap::new(),
            probes: HashMap::new(),
            suspended: HashMap::new(),
            bfd: None,
            bfd_thread: None,
            bfd_runs: HashMap::new(),
            next_bfd_run: 1,
            bfd_status: Arc::default(),
            bfd_registry: Arc::default(),
            rx,
            tx,
            alerts: None,
            snmp: None,
            early_traps: Vec::new(),
            fifos: None,
        }
    }

    /// Starts (or keeps, when unchanged) the BFD sessions of `cfg` (also with `-P`, for
    /// VRRP's `track_bfd`); returns the sessions' runs for the core's `BFD_CHECK`s.
    /// The BFD sessions that run now (name → run), as the last `start_bfd` returned them.
    pub fn bfd_sessions(&self) -> rvs_daemon::BfdSessions {
        self.bfd_runs
            .iter()
            .map(|(name, (_, run))| (name.clone(), *run))
            .collect()
    }

    pub fn start_bfd(&mut self, cfg: &Config) -> rvs_daemon::BfdSessions {
        let want: Vec<rvs_bfd::driver::Instance> =
            cfg.bfd_instances.iter().filter_map(bfd_instance).collect();
        if want.is_empty() {
            if let Some(old) = self.bfd.take() {
                tokio::spawn(old.stop());
            }
            if let Ok(mut r) = self.bfd_registry.lock() {
                r.clear();
            }
            if let Ok(mut s) = self.bfd_status.lock() {
                s.clear();
            }
            self.bfd_runs.clear();
            return rvs_daemon::BfdSessions::new();
        }
        // A reload reconciles: unchanged sessions go on (their neighbours and followers
        // notice nothing), only added, changed and removed ones move.
        if self.bfd_thread.is_none() {
            let g = &cfg.global_defs;
            match crate::daemon::threads::TaskThread::spawn(
                "rvs-bfd",
                "BFD",
                &g.bfd_process,
                g.bfd_priority,
            ) {
                Ok(t) => self.bfd_thread = Some(t),
                Err(e) => tracing::error!("BFD not started: {e}"),
            }
        }
        // Sessions and their sockets belong to the BFD thread's runtime.
        let _on_bfd_thread = self.bfd_thread.as_ref().map(|t| t.handle().enter());
        if let Some(b) = &mut self.bfd {
            match b.apply(want) {
                Ok(d) => {
                    if d.added.len() + d.changed.len() + d.removed.len() + d.retimed.len() > 0 {
                        tracing::info!(
                            "BFD: {} session(s) kept, {} retimed, {} restarted, {} added, {} removed",
                            d.kept.len(),
                            d.retimed.len(),
                            d.changed.len(),
                            d.added.len(),
                            d.removed.len()
                        );
                    }
                }
                Err(e) => tracing::error!("BFD not reloaded, the running sessions go on: {e}"),
            }
        } else {
            match rvs_bfd::driver::Bfd::start_with_status(want, self.bfd_status.clone()) {
                Ok(b) => self.bfd = Some(b),
                Err(e) => tracing::error!("BFD not started: {e}"),
            }
        }
        let watches = self
            .bfd
            .as_ref()
            .map(rvs_bfd::driver::Bfd::watches)
            .unwrap_or_default();
        // A session restarted has a new channel: its followers restart too.
        let mut runs = HashMap::new();
        for (name, w) in &watches {
            let run = match self.bfd_runs.get(name) {
                Some((old, run)) if old.same_channel(w) => *run,
                _ => {
                    self.next_bfd_run += 1;
                    self.next_bfd_run
                }
            };
            runs.insert(name.clone(), (w.clone(), run));
        }
        self.bfd_runs = runs;
        if let Ok(mut r) = self.bfd_registry.lock() {
            *r = watches;
        }
        self.bfd_sessions()
    }

    /// Stops the BFD sessions, telling each neighbour (`AdminDown`).
    pub async fn stop_bfd(&mut self) {
        if let Some(b) = self.bfd.take() {
            b.stop().await;
        }
        if let Some(t) = self.bfd_thread.take() {
            t.stop().await;
        }
    }

    /// Checker tasks that ended on their own (the core starts them again).
    pub fn ended(&self) -> Vec<CheckId> {
        self.tasks
            .iter()
            .filter(|(_, (_, t))| t.is_finished())
            .map(|(id, _)| *id)
            .collect()
    }

    /// Carries out a plan: stops, then starts; the configuration's FIFOs are (re)opened
    /// when their paths change.
    pub fn apply(&mut self, cfg: &Config, policy: rvs_check::ScriptPolicy, plan: CheckerPlan) {
        let g = &cfg.global_defs;
        let paths: Vec<String> = [&g.notify_fifo, &g.lvs_notify_fifo]
            .into_iter()
            .flatten()
            .cloned()
            .collect();
        if self.fifos.as_ref().map(|f| &f.0) != Some(&paths) {
            self.fifos = (!paths.is_empty())
                .then(|| (paths.clone(), rvs_vrrpd::notify::Fifos::open(&paths)));
        }
        for id in plan.stop {
            if let Some((_, t)) = self.tasks.remove(&id) {
                t.abort();
            }
        }
        for s in plan.start {
            let task = match s.spec {
                Spec::File(w) => tokio::spawn(watch_file(w, s.id, self.tx.clone())),
                Spec::Bfd { name, .. } => {
                    let Some((w, _)) = self.bfd_runs.get(&name) else {
                        continue;
                    };
                    tokio::spawn(follow_bfd(
                        s.id,
                        name,
                        w.clone(),
                        s.resume.unwrap_or(s.first),
                        self.tx.clone(),
                    ))
                }
                Spec::Probe {
                    checker,
                    target,
                    path,
                    ..
                } => {
                    // A restarted checker keeps its probe counters.
                    let stats = self
                        .probes
                        .entry(s.key.clone())
                        .or_insert_with(|| Arc::new(rvs_check::ProbeStats::new()))
                        .clone();
                    tokio::spawn(rvs_check::run(
                        s.id,
                        *checker,
                        target,
                        rvs_check::Start {
                            delay: s.delay,
                            resume: s.resume,
                            suspended: self.suspended.get(&s.key.0 .0).cloned(),
                            path,
                        },
                        policy,
                        self.tx.clone(),
                        stats,
                    ))
                }
            };
            self.tasks.insert(s.id, (s.key, task));
        }
        let live: std::collections::HashSet<&CheckKey> =
            self.tasks.values().map(|(k, _)| k).collect();
        self.probes.retain(|k, _| live.contains(k));
    }

    /// `ha_suspend`, as keepalived: the checkers of a virtual server that sets it run only
    /// while the virtual server's address (a group's: any of its addresses) is on the host;
    /// meanwhile their real servers keep their state. Called before checkers start and
    /// then every second; logs keepalived's lines for each real server that changes.
    pub fn ha_suspend(&mut self, cfg: &Config) {
        let local = |a: std::net::IpAddr| std::net::UdpSocket::bind((a, 0)).is_ok();
        let mut seen = std::collections::HashSet::new();
        for vs in cfg.virtual_servers.iter().filter(|v| v.ha_suspend) {
            let here = match &vs.key {
                rvs_conf::model::VsKey::Address { address, .. } => local(*address),
                rvs_conf::model::VsKey::Group { group } => cfg
                    .virtual_server_groups
                    .iter()
                    .filter(|g| &g.name == group)
                    .flat_map(|g| g.entries.iter())
                    .filter_map(|e| match e {
                        rvs_conf::model::VsgEntry::Range { first, .. } => Some(*first),
                        rvs_conf::model::VsgEntry::Fwmark { .. } => None,
                    })
                    .any(local),
                // The loader clears ha_suspend on fwmark services, as keepalived does.
                rvs_conf::model::VsKey::Fwmark { .. } => true,
            };
            let label = rvs_daemon::health::vs_label(vs);
            seen.insert(label.clone());
            let new = !self.suspended.contains_key(&label);
            let flag = self.suspended.entry(label.clone()).or_default().clone();
            let was = flag.swap(!here, Ordering::Relaxed);
            if new || was == here {
                let proto = match vs.protocol {
                    Some(rvs_conf::model::Protocol::Udp) => "udp",
                    Some(rvs_conf::model::Protocol::Sctp) => "sctp",
                    _ => "tcp",
                };
                for rs in &vs.real_servers {
                    let verb = match (new, here) {
                        (_, true) => "Activating",
                        (true, false) => "Deactivating",
                        (false, false) => "Suspending",
                    };
                    tracing::info!(
                        "{verb} healthchecker for service [{}]:{proto}:{} for VS {label}",
                        rs.address,
                        rs.port
                    );
                }
            }
        }
        self.suspended.retain(|k, _| seen.contains(k));
    }

    /// What a checker's probes measured.
    pub fn figures(&self, key: &CheckKey) -> Option<ProbeFigures> {
        let p = self.probes.get(key)?;
        Some(ProbeFigures {
            probes: p.probes.load(Ordering::Relaxed),
            failed_probes: p.failed_probes.load(Ordering::Relaxed),
            last_latency_us: p.last_latency_us.load(Ordering::Relaxed),
        })
    }

    /// The SNMP subagent now running (or none): traps due before it started go out.
    pub fn set_snmp(&mut self, h: Option<rvs_snmp::agent::Handle>) {
        if let Some(h) = &h {
            for t in self.early_traps.drain(..) {
                h.trap(t);
            }
        }
        self.early_traps.clear();
        self.snmp = h;
    }

    /// Carries out the core's effects.
    pub fn carry_out(&mut self, core: &rvs_daemon::Core, effects: Vec<Effect>) {
        let (cfg, policy) = (core.config(), core.policy());
        // The real servers' state after these effects, for the traps (built once).
        let mut servers = None;
        for e in effects {
            match e {
                Effect::Script(argv) => spawn_script(&policy, &argv),
                Effect::RealServerAlert {
                    vs,
                    rs,
                    up,
                    checker,
                } => {
                    if let Some(al) = &self.alerts {
                        al.real_server(cfg, vs, rs, up, checker);
                    }
                }
                Effect::QuorumAlert { vs, up, weight } => {
                    if let Some(al) = &self.alerts {
                        al.quorum(cfg, vs, up, weight);
                    }
                }
                Effect::Fifo(line) => {
                    if let Some((_, f)) = self.fifos.as_mut() {
                        f.write(&line);
                    }
                }
                Effect::Changed(change) => {
                    let servers = servers.get_or_insert_with(|| core.servers());
                    if let Some(t) = crate::daemon::snmp::checker::trap(cfg, servers, change) {
                        match &self.snmp {
                            Some(h) => h.trap(t),
                            None if self.early_traps.len() < 1024 => self.early_traps.push(t),
                            None => {}
                        }
                    }
                }
            }
        }
    }

    /// Stops every checker task (shutdown).
    pub fn stop(&mut self) {
        for (_, (_, t)) in self.tasks.drain() {
            t.abort();
        }
    }
}

/// Runs scripts and waits for them (at most `limit`): keepalived's omega scripts at
/// shutdown, which must finish before the daemon exits.
pub async fn run_scripts(
    policy: &rvs_check::ScriptPolicy,
    scripts: &[Vec<String>],
    limit: Duration,
) {
    let mut children = Vec::new();
    for argv in scripts {
        match policy
            .command(argv)
            .and_then(|mut c| c.spawn().map_err(|e| e.to_string()))
        {
            Ok(c) => children.push(c),
            Err(e) => tracing::warn!("notify script {:?}: {e}", argv.first()),
        }
    }
    let all = async {
        for c in &mut children {
            let _ = c.wait().await;
        }
    };
    if tokio::time::timeout(limit, all).await.is_err() {
        tracing::warn!("notify scripts still running after {limit:?}: killed");
    }
}

/// `FILE_CHECK`: the tracked file is read every second (keepalived uses inotify); the
/// core's arithmetic decides up and weight.
async fn watch_file(w: rvs_daemon::health::FileWatch, id: CheckId, tx: mpsc::Sender<Event>) {
    let mut last: Option<(bool, i32)> = None;
    loop {
        let value = std::fs::read_to_string(&w.path)
            .ok()
            .and_then(|t| t.trim().parse::<i64>().ok())
            .unwrap_or(0);
        let now = w.evaluate(value);
        if last != Some(now) {
            if last.is_none_or(|l| l.1 != now.1)
                && tx.send(Event::Weight { id, weight: now.1 }).await.is_err()
            {
                return;
            }
            if last.is_none_or(|l| l.0 != now.0) {
                let detail = format!(
                    "tracked file {} = {value}: {}",
                    w.path.display(),
                    if now.0 { "up" } else { "FAULT" }
                );
                if tx
                    .send(Event::Changed {
                        id,
                        up: now.0,
                        detail,
                    })
                    .await
                    .is_err()
                {
                    return;
                }
            }
            last = Some(now);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Runs `startup_script` / `shutdown_script` and waits for it, at most `limit` (then it
/// is killed), saying how it ended.
pub async fn run_and_wait(
    policy: &rvs_check::ScriptPolicy,
    what: &str,
    script: &rvs_conf::model::Script,
    limit: Duration,
) {
    let user = script.user.as_deref().map(|u| (u, script.group.as_deref()));
    let mut child = match policy
        .command_as(&script.argv, user)
        .and_then(|mut c| c.spawn().map_err(|e| e.to_string()))
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("{what}: {e}");
            return;
        }
    };
    match tokio::time::timeout(limit, child.wait()).await {
        Ok(Ok(st)) if st.success() => tracing::info!("{what} done"),
        Ok(Ok(st)) => tracing::warn!("{what} ended with {st}"),
        Ok(Err(e)) => tracing::warn!("{what}: {e}"),
        Err(_) => {
            let _ = child.kill().await;
            tracing::warn!("{what} still running after {limit:?}: killed");
        }
    }
}

/// Runs a notify script without a shell, in the background, killed after 10 s.
fn spawn_script(policy: &rvs_check::ScriptPolicy, cmdline: &[String]) {
    match policy
        .command(cmdline)
        .and_then(|mut c| c.spawn().map_err(|e| e.to_string()))
    {
        Ok(mut child) => {
            tokio::spawn(async move {
                if tokio::time::timeout(Duration::from_secs(10), child.wait())
                    .await
                    .is_err()
                {
                    let _ = child.kill().await;
                }
            });
        }
        Err(e) => tracing::warn!("notify script {:?}: {e}", cmdline.first()),
    }
}
