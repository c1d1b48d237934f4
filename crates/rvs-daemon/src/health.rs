//! The real servers' health, as the daemon decides it: which checkers must run (by
//! difference with the ones running), what each checker's report does to its real
//! server (up, down, a new weight), keepalived's quorum with hysteresis, and the
//! desired state that follows. No task, socket or clock here: the driver starts and
//! stops the checkers this module plans, feeds their events back, and carries out the
//! [`Effect`]s (scripts, alerts, FIFO lines).
//!
//! A checker is known by its real server's identity (virtual server label, address) and
//! its position among that real server's checkers ([`CheckKey`]), never by the real
//! server's position in the file; each run of a checker gets a [`CheckId`] that is never
//! handed out again, so an event a stopped checker left in a queue finds no one.

use crate::{Change, Effect};
use rvs_conf::model::{CheckKind, Checker, Config, RealServer, VirtualServer};
use rvs_sched::desired::Desired;
use rvs_script::ScriptPolicy;
use rvs_types::{CheckEvent, CheckId};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// Identity of a real server across reloads: its virtual server's label and its address.
pub type RsKey = (String, SocketAddr);

/// A checker's identity across reloads: its real server and its position among that
/// real server's checkers.
pub type CheckKey = (RsKey, usize);

/// The BFD sessions a `BFD_CHECK` can follow: name → the session's run (a number the
/// driver changes when it restarts the session, so its followers restart too).
pub type BfdSessions = BTreeMap<String, u64>;

/// What a checker runs with: a reload keeps a running checker whose spec is unchanged
/// (its timers, retries and counters go on) and restarts the others.
#[derive(Debug, Clone, PartialEq)]
pub enum Spec {
    /// A probe (`TCP_CHECK`, `HTTP_GET`, …) against `target`.
    Probe {
        checker: Box<Checker>,
        target: SocketAddr,
        /// For `MISC_CHECK` only: who runs the script.
        policy: Option<ScriptPolicy>,
        /// `rvs_forwarding_path_check`: the VIP and port, and the real server, to probe
        /// along the LVS-DR or LVS-TUN path as well.
        path: Option<rvs_types::PathTarget>,
    },
    /// `FILE_CHECK`: a tracked file's value.
    File(FileWatch),
    /// `BFD_CHECK`: a BFD session's state.
    Bfd { name: String, session: u64 },
}

/// A checker to start.
#[derive(Debug, Clone, PartialEq)]
pub struct Start {
    pub id: CheckId,
    pub key: CheckKey,
    pub spec: Spec,
    /// The state its real server had under the checker it replaces (a restarted checker
    /// resumes it instead of starting over).
    pub resume: Option<bool>,
    /// The state it starts in when there is nothing to resume (up, or down with `alpha`).
    pub first: bool,
    /// Delay of its first probe: keepalived spreads them over `warmup`.
    pub delay: Duration,
}

/// The difference between the checkers that run and the ones a configuration wants.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CheckerPlan {
    pub start: Vec<Start>,
    pub stop: Vec<CheckId>,
    /// Checkers left running untouched.
    pub kept: usize,
}

#[derive(Debug, Clone, Default)]
struct RsHealth {
    /// Per checker (config order); `None` for kinds that do not decide anything.
    up: Vec<Option<bool>>,
    dyn_weight: Option<i32>,
}

impl RsHealth {
    fn alive(&self) -> bool {
        self.up.iter().all(|u| u.unwrap_or(true))
    }
}

/// What a checker's probes measured, as the driver's counters hold them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProbeFigures {
    pub probes: u64,
    pub failed_probes: u64,
    pub last_latency_us: u64,
}

/// One checker of one real server, as the metrics and `rvs status` show it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CheckReport {
    pub service: String,
    pub real_server: SocketAddr,
    pub checker: &'static str,
    /// Position among the real server's checkers (two `TCP_CHECK`s are two checkers).
    pub index: usize,
    /// `None`: a kind rvs does not run.
    pub up: Option<bool>,
    /// Up → down transitions since the daemon started.
    pub failures: u64,
    /// Probes run by this checker since the daemon started (kept across reloads).
    pub probes: u64,
    /// Probes that found the real server down.
    pub failed_probes: u64,
    /// Duration of the last probe in seconds; `None` before the first.
    pub last_latency_s: Option<f64>,
    /// When the checker last changed state (unix seconds); `None`: never since start.
    pub last_change_unix: Option<u64>,
    /// Why the checker last found the real server down, while it is down.
    pub last_failure: Option<String>,
}

/// A virtual server's health as keepalived's SNMP tables and traps show it (one per
/// virtual server of the configuration, in its order).
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct VsReport {
    /// keepalived's `quorum_state_up`.
    pub quorum_up: bool,
    /// Its real servers, in the configuration's order.
    pub real_servers: Vec<RsReport>,
}

/// A real server's health.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct RsReport {
    /// Every checker finds it up (keepalived's `alive`).
    pub alive: bool,
    /// The weight its checkers give it (a dynamic weight, else the configured one),
    /// up or down (keepalived's `effective_weight`).
    pub weight: i32,
    /// Checkers that find it down now (keepalived's `num_failed_checkers`).
    pub failed_checkers: u32,
}

/// Per real server and checker: what the operator sees across reloads.
#[derive(Debug, Clone, Default)]
struct History {
    /// Up → down transitions.
    failures: u64,
    /// When it last changed state (unix seconds).
    changed_at: Option<u64>,
    /// Why it is down, while it is.
    reason: Option<String>,
}

/// The health of every real server of the running configuration.
#[derive(Debug, Clone, Default)]
pub struct HealthState {
    /// The running checkers by identity, with what they run.
    running: HashMap<CheckKey, (CheckId, Spec)>,
    /// Whose events are whose: running checkers only.
    by_id: HashMap<CheckId, CheckKey>,
    /// The next [`CheckId`] handed out (never reused).
    next_id: u64,
    /// Where each real server sits in the running configuration.
    pos: HashMap<RsKey, (usize, usize)>,
    /// And the other way round.
    ids: HashMap<(usize, usize), RsKey>,
    state: HashMap<RsKey, RsHealth>,
    /// Virtual servers (by index) whose quorum is lost: their real servers are taken out
    /// and the sorry server serves.
    quorum_lost: Vec<bool>,
    history: HashMap<CheckKey, History>,
}

/// The label of a virtual server (`[ip]:tcp:port`, `FWM n`), as keepalived prints it.
pub fn vs_label(vs: &VirtualServer) -> String {
    rvs_conf::load::vs_label(&vs.key, vs.protocol)
}

/// A real server as keepalived prints it (`FMT_RS`): `[ip]:proto:port`, the protocol of
/// its virtual server.
pub fn rs_label(vs: &VirtualServer, rs: &RealServer) -> String {
    let label = vs_label(vs);
    let proto = label
        .split(':')
        .nth(1)
        .map_or_else(|| "tcp".to_owned(), str::to_owned);
    format!("[{}]:{proto}:{}", rs.address, rs.port)
}

fn rs_key(vs: &VirtualServer, rs: &RealServer) -> RsKey {
    (vs_label(vs), SocketAddr::new(rs.address, rs.port))
}

impl HealthState {
    pub fn new() -> HealthState {
        HealthState::default()
    }

    /// A checker's run ended on its own (its task stopped): forgotten, so the next
    /// reconcile starts it again.
    pub fn checker_ended(&mut self, id: CheckId) {
        if let Some(key) = self.by_id.remove(&id) {
            self.running.remove(&key);
        }
    }

    /// The checker run at a position of `cfg` (tests and diagnostics).
    pub fn id_at(&self, vi: usize, ri: usize, ci: usize) -> Option<CheckId> {
        let key = self.ids.get(&(vi, ri))?;
        self.running.get(&(key.clone(), ci)).map(|r| r.0)
    }

    /// Whether virtual server `vi` has lost its quorum.
    pub fn quorum_lost(&self, vi: usize) -> bool {
        self.quorum_lost.get(vi).copied().unwrap_or(false)
    }

    /// Reconciles the checkers with a configuration: a checker whose real server and
    /// spec are unchanged goes on untouched; changed ones restart (resuming their real
    /// server's state), removed ones stop, new ones start as keepalived starts them (up,
    /// or down with `alpha`). `effects` gets keepalived's `rs_init_notifies` for real
    /// servers that appear.
    pub fn reconcile(
        &mut self,
        cfg: &Config,
        policy: ScriptPolicy,
        bfd: &BfdSessions,
        effects: &mut Vec<Effect>,
    ) -> CheckerPlan {
        let mut plan = CheckerPlan::default();
        let has_scripts = cfg.virtual_servers.iter().any(|vs| {
            vs.quorum_up.is_some()
                || vs.quorum_down.is_some()
                || vs.real_servers.iter().any(|rs| {
                    rs.notify_up.is_some()
                        || rs.notify_down.is_some()
                        || rs
                            .checkers
                            .iter()
                            .any(|c| matches!(c.kind, CheckKind::Misc(_)))
                })
        });
        if has_scripts && !cfg.global_defs.enable_script_security {
            tracing::warn!("script security is off (enable_script_security): scripts are not checked for safe ownership");
        }
        let mut old_running = std::mem::take(&mut self.running);
        let mut state = HashMap::new();
        self.ids.clear();
        self.pos.clear();
        let mut present: HashSet<CheckKey> = HashSet::new();
        for (vi, vs) in cfg.virtual_servers.iter().enumerate() {
            for (ri, rs) in vs.real_servers.iter().enumerate() {
                let key = rs_key(vs, rs);
                self.ids.insert((vi, ri), key.clone());
                self.pos.insert(key.clone(), (vi, ri));
                let old = self.state.get(&key);
                let mut h = RsHealth {
                    up: Vec::new(),
                    dyn_weight: old.and_then(|o| o.dyn_weight),
                };
                for (ci, c) in rs.checkers.iter().enumerate() {
                    let ck: CheckKey = (key.clone(), ci);
                    present.insert(ck.clone());
                    let prev = old.and_then(|o| o.up.get(ci).copied().flatten());
                    let Some(spec) = spec(cfg, c, vs, rs, policy, bfd) else {
                        h.up.push(None);
                        continue;
                    };
                    let first = match &spec {
                        Spec::File(_) => true,
                        Spec::Probe { .. } | Spec::Bfd { .. } => !c.alpha,
                    };
                    h.up.push(Some(prev.unwrap_or(first)));
                    if let Some((id, was)) = old_running.remove(&ck) {
                        if was == spec {
                            self.running.insert(ck, (id, was));
                            plan.kept += 1;
                            continue;
                        }
                        plan.stop.push(id);
                        self.by_id.remove(&id);
                    }
                    let id = CheckId(self.next_id);
                    self.next_id += 1;
                    // Spread first probes over [0, warmup] (keepalived's start jitter).
                    let delay = if matches!(spec, Spec::Probe { .. }) {
                        c.warmup.mul_f64(fraction(vi, ri, ci))
                    } else {
                        Duration::ZERO
                    };
                    self.by_id.insert(id, ck.clone());
                    self.running.insert(ck.clone(), (id, spec.clone()));
                    plan.start.push(Start {
                        id,
                        key: ck,
                        spec,
                        resume: prev,
                        first,
                        delay,
                    });
                }
                // keepalived's rs_init_notifies: a real server that starts up (no checker
                // against it) gets its notify_up and FIFO line at once; a reload does not
                // repeat them for one it already had.
                if cfg.global_defs.rs_init_notifies && old.is_none() && h.alive() {
                    if let Some(sc) = &rs.notify_up {
                        effects.push(Effect::Script(sc.argv.clone()));
                    }
                    effects.push(Effect::Fifo(format!(
                        "RS {} {} UP\n",
                        rs_label(vs, rs),
                        vs_label(vs)
                    )));
                    effects.push(Effect::Changed(Change::RealServer {
                        vs: vi,
                        rs: ri,
                        up: true,
                    }));
                }
                state.insert(key, h);
            }
        }
        // What is left ran for real servers or checkers the configuration no longer has.
        for (_, (id, _)) in old_running {
            plan.stop.push(id);
            self.by_id.remove(&id);
        }
        if plan.kept > 0 {
            tracing::info!(
                "checkers: {} kept, {} started, {} stopped",
                plan.kept,
                plan.start.len(),
                plan.stop.len()
            );
        }
        self.history.retain(|k, _| present.contains(k));
        self.state = state;
        self.quorum_lost = (0..cfg.virtual_servers.len())
            .map(|vi| self.alive_weight(cfg, vi) < i64::from(cfg.virtual_servers[vi].quorum))
            .collect();
        plan
    }

    /// The health of the real server at a position.
    fn at(&self, vi: usize, ri: usize) -> Option<&RsHealth> {
        self.ids.get(&(vi, ri)).and_then(|k| self.state.get(k))
    }

    /// Sum of the weights of a virtual server's live real servers.
    fn alive_weight(&self, cfg: &Config, vi: usize) -> i64 {
        cfg.virtual_servers[vi]
            .real_servers
            .iter()
            .enumerate()
            .filter_map(|(ri, rs)| {
                let h = self.at(vi, ri);
                h.is_none_or(RsHealth::alive)
                    .then(|| i64::from(h.and_then(|h| h.dyn_weight).unwrap_or(rs.weight)))
            })
            .sum()
    }

    /// keepalived's quorum with hysteresis: lost below `quorum - hysteresis`, regained at
    /// `quorum + hysteresis`; `quorum_down`/`quorum_up`, alerts and FIFO lines follow.
    fn update_quorum(&mut self, cfg: &Config, vi: usize, effects: &mut Vec<Effect>) {
        let vs = &cfg.virtual_servers[vi];
        let w = self.alive_weight(cfg, vi);
        let (q, hy) = (i64::from(vs.quorum), i64::from(vs.hysteresis));
        let lost = self.quorum_lost(vi);
        let label = vs_label(vs);
        let up = if !lost && w < q - hy {
            tracing::warn!(
                virtual_server = %label,
                quorum = false,
                "Lost quorum {}-{}={} > {w} for VS {label}",
                q,
                hy,
                q - hy
            );
            false
        } else if lost && w >= q + hy {
            tracing::info!(
                virtual_server = %label,
                quorum = true,
                "Gained quorum {}+{}={} <= {w} for VS {label}",
                q,
                hy,
                q + hy
            );
            true
        } else {
            return;
        };
        if let Some(slot) = self.quorum_lost.get_mut(vi) {
            *slot = !up;
        }
        let script = if up { &vs.quorum_up } else { &vs.quorum_down };
        if let Some(sc) = script {
            effects.push(Effect::Script(sc.argv.clone()));
        }
        effects.push(Effect::QuorumAlert {
            vs: vi,
            up,
            weight: w,
        });
        effects.push(Effect::Fifo(format!(
            "VS {label} {}\n",
            if up { "UP" } else { "DOWN" }
        )));
        effects.push(Effect::Changed(Change::Quorum { vs: vi, up }));
    }

    /// Applies a checker's report at `now` (unix seconds); returns whether the desired
    /// state changed (a real server's weight, or a quorum).
    pub fn event(
        &mut self,
        cfg: &Config,
        ev: &CheckEvent,
        now: u64,
        effects: &mut Vec<Effect>,
    ) -> bool {
        // A checker a reload stopped (or replaced) is no one's any more.
        let Some((key, ci)) = self.by_id.get(&ev.id()).cloned() else {
            tracing::debug!("event of a stopped checker ignored: {ev:?}");
            return false;
        };
        let Some(&(vi, ri)) = self.pos.get(&key) else {
            return false;
        };
        let Some(h) = self.state.get_mut(&key) else {
            return false;
        };
        let before = (h.alive(), h.dyn_weight);
        match ev {
            CheckEvent::Changed { up, detail, .. } => {
                let hist = self.history.entry((key.clone(), ci)).or_default();
                if let Some(slot) = h.up.get_mut(ci) {
                    if *slot != Some(false) && !*up {
                        hist.failures += 1;
                    }
                    if *slot != Some(*up) {
                        hist.changed_at = Some(now);
                    }
                    *slot = Some(*up);
                }
                hist.reason = (!*up).then(|| detail.clone());
                // The fields travel with the event (journald: RVS_VIRTUAL_SERVER, …).
                tracing::info!(
                    virtual_server = %key.0,
                    real_server = %key.1,
                    checker = ci + 1,
                    up = *up,
                    "{detail}"
                );
            }
            CheckEvent::Weight { weight, .. } => h.dyn_weight = Some(*weight),
        }
        let after = (h.alive(), h.dyn_weight);
        if before.0 != after.0 {
            let vs = &cfg.virtual_servers[vi];
            let rs = &vs.real_servers[ri];
            let verb = if after.0 { "Adding" } else { "Removing" };
            let how = if rs.inhibit_on_failure && !after.0 {
                " (inhibit_on_failure: weight 0)"
            } else {
                ""
            };
            tracing::info!(
                virtual_server = %key.0,
                real_server = %key.1,
                up = after.0,
                "{verb} service {} {} VS {}{how}",
                rs_label(vs, rs),
                if after.0 { "to" } else { "from" },
                key.0
            );
            let script = if after.0 {
                &rs.notify_up
            } else {
                &rs.notify_down
            };
            if let Some(sc) = script {
                effects.push(Effect::Script(sc.argv.clone()));
            }
            effects.push(Effect::RealServerAlert {
                vs: vi,
                rs: ri,
                up: after.0,
                checker: rs.checkers.get(ci).map_or("", |c| c.kind.name()),
            });
            // keepalived's FIFO line: `RS [ip]:tcp:port [vip]:tcp:port UP`.
            effects.push(Effect::Fifo(format!(
                "RS {} {} {}\n",
                rs_label(vs, rs),
                vs_label(vs),
                if after.0 { "UP" } else { "DOWN" }
            )));
            effects.push(Effect::Changed(Change::RealServer {
                vs: vi,
                rs: ri,
                up: after.0,
            }));
        }
        if before == after {
            return false;
        }
        // Weights changed (health or a dynamic weight): the quorum may have moved.
        self.update_quorum(cfg, vi, effects);
        true
    }

    /// The notify scripts keepalived runs when real servers leave because the config
    /// does (`new` is the reloaded config, `None` at shutdown): for a virtual server that
    /// goes away and has `omega`, each live real server's `notify_down`, then
    /// `quorum_down` if its quorum was held; for a virtual server that stays, each live
    /// real server the new config removes runs `notify_down` (keepalived forces omega
    /// there), and `quorum_down` if the ones left fall below the quorum. Nothing runs for
    /// a virtual server whose sorry server is serving (its real servers are out already).
    pub fn removal_scripts(&self, old: &Config, new: Option<&Config>) -> Vec<Vec<String>> {
        let mut out = Vec::new();
        let new_by_label: HashMap<String, &VirtualServer> = new
            .map(|n| n.virtual_servers.iter().map(|v| (vs_label(v), v)).collect())
            .unwrap_or_default();
        for (vi, vs) in old.virtual_servers.iter().enumerate() {
            let lost = self.quorum_lost(vi);
            if lost && vs.sorry_server.is_some() {
                continue;
            }
            let label = vs_label(vs);
            let kept = new_by_label.get(&label);
            if kept.is_none() && !vs.omega {
                continue;
            }
            let mut remaining = 0i64;
            let mut removed_any = false;
            let kept_rs: HashSet<(IpAddr, u16)> = kept
                .map(|k| k.real_servers.iter().map(|n| (n.address, n.port)).collect())
                .unwrap_or_default();
            for (ri, rs) in vs.real_servers.iter().enumerate() {
                if !self.at(vi, ri).is_none_or(RsHealth::alive) {
                    continue;
                }
                if kept_rs.contains(&(rs.address, rs.port)) {
                    remaining += i64::from(rs.weight);
                    continue;
                }
                removed_any = true;
                tracing::info!(
                    "Removing service [{}]:{} from VS {label}",
                    rs.address,
                    rs.port
                );
                if let Some(sc) = &rs.notify_down {
                    out.push(sc.argv.clone());
                }
            }
            let (q, hy) = (i64::from(vs.quorum), i64::from(vs.hysteresis));
            if removed_any && !lost && (remaining == 0 || remaining < q - hy) {
                if let Some(sc) = &vs.quorum_down {
                    out.push(sc.argv.clone());
                }
            }
        }
        out
    }

    /// Every checker's state, for the metrics and the status view; `probes` gives what
    /// the driver measured of each.
    pub fn report(
        &self,
        cfg: &Config,
        probes: impl Fn(&CheckKey) -> Option<ProbeFigures>,
    ) -> Vec<CheckReport> {
        let mut out = Vec::new();
        for (vi, vs) in cfg.virtual_servers.iter().enumerate() {
            for (ri, rs) in vs.real_servers.iter().enumerate() {
                let Some(key) = self.ids.get(&(vi, ri)) else {
                    continue;
                };
                let h = self.state.get(key);
                for (ci, c) in rs.checkers.iter().enumerate() {
                    let ck = (key.clone(), ci);
                    let p = probes(&ck).unwrap_or_default();
                    let hist = self.history.get(&ck);
                    #[expect(
                        clippy::cast_precision_loss,
                        reason = "microseconds fit f64 exactly below 2^53"
                    )]
                    let last_latency_s = (p.probes > 0).then(|| p.last_latency_us as f64 / 1e6);
                    out.push(CheckReport {
                        probes: p.probes,
                        failed_probes: p.failed_probes,
                        last_latency_s,
                        service: key.0.clone(),
                        real_server: key.1,
                        checker: c.kind.name(),
                        index: ci,
                        up: h.and_then(|h| h.up.get(ci).copied().flatten()),
                        failures: hist.map_or(0, |h| h.failures),
                        last_change_unix: hist.and_then(|h| h.changed_at),
                        last_failure: hist.and_then(|h| h.reason.clone()),
                    });
                }
            }
        }
        out
    }

    /// Each virtual server's quorum and real servers now.
    pub fn servers(&self, cfg: &Config) -> Vec<VsReport> {
        cfg.virtual_servers
            .iter()
            .enumerate()
            .map(|(vi, vs)| VsReport {
                quorum_up: !self.quorum_lost(vi),
                real_servers: vs
                    .real_servers
                    .iter()
                    .enumerate()
                    .map(|(ri, rs)| {
                        let h = self.at(vi, ri);
                        RsReport {
                            alive: h.is_none_or(RsHealth::alive),
                            weight: h.and_then(|h| h.dyn_weight).unwrap_or(rs.weight),
                            failed_checkers: h.map_or(0, |h| {
                                let n = h.up.iter().filter(|u| **u == Some(false)).count();
                                u32::try_from(n).unwrap_or(u32::MAX)
                            }),
                        }
                    })
                    .collect(),
            })
            .collect()
    }

    /// The desired state of `cfg` with the current health applied.
    pub fn desired(&self, cfg: &Config) -> Desired {
        rvs_desired::desired_with(
            cfg,
            |vi, ri, rs| match self.at(vi, ri) {
                None => Some(rs.weight),
                Some(h) if h.alive() => Some(h.dyn_weight.unwrap_or(rs.weight)),
                Some(_) if rs.inhibit_on_failure => Some(0),
                Some(_) => None,
            },
            |vi| self.quorum_lost(vi),
        )
    }
}

/// What a checker runs with; `None` (and a log line) for one that cannot run.
fn spec(
    cfg: &Config,
    c: &Checker,
    vs: &VirtualServer,
    rs: &RealServer,
    policy: ScriptPolicy,
    bfd: &BfdSessions,
) -> Option<Spec> {
    match &c.kind {
        CheckKind::File(fc) => FileWatch::of(cfg, fc, rs.weight).map(Spec::File),
        CheckKind::Bfd(bc) => {
            let name = bc.name.clone().unwrap_or_default();
            let Some(&session) = bfd.get(&name) else {
                tracing::error!(
                    "BFD_CHECK of [{}]:{}: no BFD session runs for it: the real server's state is left alone",
                    rs.address,
                    rs.port
                );
                return None;
            };
            Some(Spec::Bfd { name, session })
        }
        kind => Some(Spec::Probe {
            checker: Box::new(c.clone()),
            // `connect_ip`/`connect_port`, else the real server's own address.
            target: SocketAddr::new(
                c.connect_ip.unwrap_or(rs.address),
                c.connect_port.unwrap_or(rs.port),
            ),
            policy: matches!(kind, CheckKind::Misc(_)).then_some(policy),
            path: forwarding_path(cfg, c, vs, rs),
        }),
    }
}

/// Where a TCP checker of an LVS-DR or LVS-TUN real server also probes it along the
/// forwarding path (`rvs_forwarding_path_check`, per checker or for all in `global_defs`).
fn forwarding_path(
    cfg: &Config,
    c: &Checker,
    vs: &VirtualServer,
    rs: &RealServer,
) -> Option<rvs_types::PathTarget> {
    let tcp = matches!(
        c.kind,
        CheckKind::Tcp | CheckKind::Http(_) | CheckKind::Ssl(_) | CheckKind::Smtp(_)
    );
    if !tcp
        || !c
            .forwarding_path
            .unwrap_or(cfg.global_defs.forwarding_path_check)
    {
        return None;
    }
    let (vip, rip, tunnel) =
        rvs_conf::model::forwarding_path_probe(&vs.key, rs.address, &rs.forwarding).ok()?;
    Some(rvs_types::PathTarget {
        vip,
        rip,
        via: if tunnel {
            rvs_types::PathVia::Ipip
        } else {
            rvs_types::PathVia::Mac
        },
    })
}

/// A `FILE_CHECK`: the tracked file holds an integer; `value × weight` (negated with
/// `reverse`) is added to the real server's weight, and a result at or below the fault
/// level (−65536), or with weight 0 a non-zero value (zero with `reverse`), takes the
/// real server down.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileWatch {
    pub path: std::path::PathBuf,
    pub weight: i64,
    pub reverse: bool,
    pub base: i32,
}

const WEIGHT_FAULT: i64 = -65536;

impl FileWatch {
    fn of(cfg: &Config, fc: &rvs_conf::model::FileCheck, base: i32) -> Option<FileWatch> {
        let name = fc.track_file.as_deref()?;
        let tf = cfg.track_files.iter().find(|t| t.name == name)?;
        let path = std::path::PathBuf::from(tf.file.as_deref()?);
        let (weight, reverse) = match fc.weight {
            Some(w) => (i64::from(w), fc.reverse),
            None => (i64::from(tf.weight), tf.weight_reverse),
        };
        Some(FileWatch {
            path,
            weight,
            reverse,
            base,
        })
    }

    /// (up, weight) for a file value.
    pub fn evaluate(&self, value: i64) -> (bool, i32) {
        let mult = if self.reverse { -1 } else { 1 };
        if self.weight == 0 {
            let fault = (value == 0) == self.reverse;
            return (!fault, self.base);
        }
        let status = value.saturating_mul(self.weight).saturating_mul(mult);
        if status <= WEIGHT_FAULT {
            return (false, self.base);
        }
        let w = (i64::from(self.base) + status).clamp(0, i64::from(i32::MAX));
        (true, i32::try_from(w).unwrap_or(i32::MAX))
    }
}

/// A deterministic spread in [0, 1) per checker.
fn fraction(a: usize, b: usize, c: usize) -> f64 {
    let x = (a as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)
        ^ (b as u64).wrapping_mul(0xc2b2_ae3d_27d4_eb4f)
        ^ (c as u64).wrapping_mul(0x1656_67b1_9e37_79f9);
    let x = x ^ (x >> 29);
    f64::from(u32::try_from(x % 10_000).unwrap_or(0)) / 10_000.0
}
