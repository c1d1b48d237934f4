//! Health checking inside the daemon: one task per (real server, checker), their state
//! changes folded into each real server's health, which decides its weight in the desired
//! state (down: removed, or weight 0 with `inhibit_on_failure`).

use rvs_check::{CheckId, Event};
use rvs_conf::model::Config;
use rvs_sched::desired::Desired;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// A `bfd_instance` as the BFD driver runs it (`None` without a neighbour: refused by
/// the config check already).
fn bfd_instance(b: &rvs_conf::model::BfdInstance) -> Option<rvs_bfd::driver::Instance> {
    let ms = |v: f64| Duration::from_secs_f64(v.clamp(1.0, 4_294_967.0) / 1000.0);
    let neighbor = b.neighbor_ip?;
    Some(rvs_bfd::driver::Instance {
        name: b.name.clone(),
        neighbor,
        source: b.source_ip,
        session: rvs_bfd::Config {
            detect_mult: b.multiplier,
            min_tx: ms(b.min_tx),
            min_rx: ms(b.min_rx),
            idle_tx: ms(b.idle_tx),
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

/// Identity of a real server across reloads: its virtual server's label and its address.
type RsKey = (String, SocketAddr);

#[cfg(test)]
mod tests {
    use super::*;

    fn watch(weight: i64, reverse: bool) -> FileWatch {
        FileWatch {
            path: std::path::PathBuf::new(),
            weight,
            reverse,
            base: 10,
        }
    }

    fn conf(text: &str) -> Config {
        let p = rvs_conf::parse_str(
            std::path::Path::new("t.conf"),
            text,
            &rvs_conf::Options::default(),
        );
        assert_eq!(p.errors(), 0, "{}", p.render());
        p.config
    }

    /// Two real servers, each with a `TCP_CHECK` that probes once an hour (the test
    /// decides what the checkers report; the one probe each makes goes to loopback).
    fn two_servers(first: bool) -> Config {
        let rs = |a: &str| {
            format!(
                "real_server {a} 80 {{ weight 1\n TCP_CHECK {{ connect_timeout 1\n delay_loop 3600 }} }}\n"
            )
        };
        let mut t = String::from("virtual_server 127.71.0.1 80 { lb_kind DR\n protocol TCP\n");
        if first {
            t.push_str(&rs("127.71.1.1"));
        }
        t.push_str(&rs("127.71.1.2"));
        t.push('}');
        conf(&t)
    }

    fn live(h: &Health, cfg: &Config) -> Vec<(std::net::IpAddr, i32)> {
        h.desired(cfg).services[0]
            .dests
            .iter()
            .map(|d| (d.addr, d.weight))
            .collect()
    }

    /// Issue #16 bug 4: a checker's failure that was queued before a reload must not be
    /// applied to whichever real server sits at its position afterwards.
    #[tokio::test]
    async fn a_queued_event_never_lands_on_another_real_server_after_a_reload() {
        let mut h = Health::new();
        let old = two_servers(true);
        h.start(&old);
        let a = h.id_at(0, 0, 0).expect("A's checker runs");
        // A's checker saw it fail, but the event waits in the channel while the file is
        // reloaded without A: B is now the first real server.
        let queued = Event::Changed {
            id: a,
            up: false,
            detail: "TCP_CHECK of 127.71.1.1 failed".into(),
        };
        let new = two_servers(false);
        h.start(&new);
        let changed = h.event(&new, &queued);
        assert!(
            !changed,
            "an event of a checker the reload removed changed state"
        );
        assert_eq!(live(&h, &new), vec![("127.71.1.2".parse().unwrap(), 1)]);
    }

    /// A reload reconciles the checkers: an unchanged one goes on (same identity, its
    /// queued events still count), a changed one restarts under a new identity (the old
    /// one's events are dropped), a removed one stops.
    #[tokio::test]
    async fn a_reload_keeps_unchanged_checkers_and_restarts_changed_ones() {
        let mut h = Health::new();
        let old = two_servers(true);
        h.start(&old);
        let (a, b) = (h.id_at(0, 0, 0).unwrap(), h.id_at(0, 1, 0).unwrap());
        assert_ne!(a, b);
        let new = two_servers(false);
        h.start(&new);
        assert_eq!(
            h.id_at(0, 0, 0),
            Some(b),
            "B's unchanged checker was restarted"
        );
        assert_eq!(h.running.len(), 1, "A's checker still runs");
        // B's failure, queued before the reload, is B's.
        let down = |id| Event::Changed {
            id,
            up: false,
            detail: "down".into(),
        };
        assert!(h.event(&new, &down(b)));
        assert_eq!(live(&h, &new), vec![]);
        // The same server with another delay_loop: a new checker, resuming B's state.
        let retimed = conf(
            "virtual_server 127.71.0.1 80 { lb_kind DR\n protocol TCP\n \
             real_server 127.71.1.2 80 { weight 1\n \
             TCP_CHECK { connect_timeout 1\n delay_loop 1800 } } }",
        );
        h.start(&retimed);
        let b2 = h.id_at(0, 0, 0).unwrap();
        assert_ne!(
            b2, b,
            "a changed checker kept running with its old settings"
        );
        assert_eq!(
            live(&h, &retimed),
            vec![],
            "B's down state was lost on restart"
        );
        let up = |id| Event::Changed {
            id,
            up: true,
            detail: "up".into(),
        };
        assert!(
            !h.event(&retimed, &up(b)),
            "the replaced checker still counts"
        );
        assert!(h.event(&retimed, &up(b2)));
        assert_eq!(live(&h, &retimed), vec![("127.71.1.2".parse().unwrap(), 1)]);
    }

    /// keepalived's quorum with hysteresis: lost below `quorum - hysteresis` (the sorry
    /// server alone serves), regained only at `quorum + hysteresis`.
    #[tokio::test]
    async fn quorum_is_lost_and_regained_with_hysteresis() {
        use std::fmt::Write as _;
        let mut t = String::from(
            "virtual_server 127.71.0.2 80 { lb_kind NAT\n protocol TCP\n quorum 2\n \
             hysteresis 1\n sorry_server 127.71.2.9 80\n",
        );
        for i in 1..=4 {
            let _ = writeln!(
                t,
                "real_server 127.71.2.{i} 80 {{ weight 1\n TCP_CHECK {{ connect_timeout 1\n delay_loop 3600 }} }}"
            );
        }
        t.push('}');
        let cfg = conf(&t);
        let mut h = Health::new();
        h.start(&cfg);
        let ev = |h: &Health, i: usize, up: bool| Event::Changed {
            id: h.id_at(0, i, 0).unwrap(),
            up,
            detail: String::new(),
        };
        let served = |h: &Health| -> Vec<String> {
            let d = h.desired(&cfg);
            d.services[0]
                .dests
                .iter()
                .map(|d| d.addr.to_string())
                .collect()
        };
        for i in 0..3 {
            assert!(h.event(&cfg, &ev(&h, i, false)));
        }
        assert_eq!(
            served(&h),
            ["127.71.2.4"],
            "weight 1 >= quorum - hysteresis"
        );
        assert!(!h.quorum_lost[0]);
        assert!(h.event(&cfg, &ev(&h, 3, false)));
        assert!(h.quorum_lost[0]);
        assert_eq!(served(&h), ["127.71.2.9"], "the sorry server alone");
        for i in 0..2 {
            assert!(h.event(&cfg, &ev(&h, i, true)));
            assert!(h.quorum_lost[0], "regained below quorum + hysteresis");
            assert_eq!(served(&h), ["127.71.2.9"]);
        }
        assert!(h.event(&cfg, &ev(&h, 2, true)));
        assert!(!h.quorum_lost[0], "weight 3 = quorum + hysteresis");
        assert_eq!(served(&h), ["127.71.2.1", "127.71.2.2", "127.71.2.3"]);
    }

    #[test]
    fn file_check_arithmetic() {
        assert_eq!(watch(2, false).evaluate(3), (true, 16), "10 + 3 x 2");
        assert_eq!(watch(2, true).evaluate(3), (true, 4), "reverse: 10 - 6");
        assert_eq!(watch(2, false).evaluate(-100), (true, 0), "clamped at 0");
        assert_eq!(
            watch(1000, false).evaluate(-100),
            (false, 10),
            "at or below the fault level"
        );
        assert_eq!(
            watch(0, false).evaluate(1),
            (false, 10),
            "weight 0: non-zero is a fault"
        );
        assert_eq!(watch(0, false).evaluate(0), (true, 10));
        assert_eq!(
            watch(0, true).evaluate(0),
            (false, 10),
            "weight 0 reverse: zero is a fault"
        );
    }
}

#[derive(Debug, Clone, Default)]
struct RsHealth {
    /// Per checker (config order); `None` for kinds rvs does not run yet.
    up: Vec<Option<bool>>,
    dyn_weight: Option<i32>,
}

impl RsHealth {
    fn alive(&self) -> bool {
        self.up.iter().all(|u| u.unwrap_or(true))
    }
}

/// One checker of one real server, as the metrics and `rvs status` show it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CheckReport {
    pub service: String,
    pub real_server: SocketAddr,
    pub checker: &'static str,
    /// Position among the real server's checkers (two `TCP_CHECK`s are two checkers).
    pub index: usize,
    /// `None`: a kind rvs does not run yet.
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

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A checker's identity across reloads: its real server and its position among that
/// real server's checkers.
type CheckKey = (RsKey, usize);

/// What a checker was started with: a reload keeps a running checker whose settings are
/// unchanged (its timers, retries and counters go on) and restarts only the others.
enum Spec {
    Probe {
        checker: Box<rvs_conf::model::Checker>,
        target: SocketAddr,
        /// For `MISC_CHECK` only: who runs the script.
        policy: Option<rvs_check::ScriptPolicy>,
    },
    File(FileWatch),
    Bfd {
        name: String,
        watch: tokio::sync::watch::Receiver<rvs_bfd::driver::Seen>,
    },
}

impl PartialEq for Spec {
    fn eq(&self, other: &Spec) -> bool {
        match (self, other) {
            (
                Spec::Probe {
                    checker,
                    target,
                    policy,
                },
                Spec::Probe {
                    checker: c2,
                    target: t2,
                    policy: p2,
                },
            ) => checker == c2 && target == t2 && policy == p2,
            (Spec::File(a), Spec::File(b)) => a == b,
            // A restarted BFD session has a new channel: follow that one.
            (
                Spec::Bfd { name, watch },
                Spec::Bfd {
                    name: n2,
                    watch: w2,
                },
            ) => name == n2 && watch.same_channel(w2),
            _ => false,
        }
    }
}

/// A checker task and the identity its events carry.
struct Running {
    id: CheckId,
    spec: Spec,
    task: JoinHandle<()>,
}

pub struct Health {
    /// The running checkers by identity.
    running: HashMap<CheckKey, Running>,
    /// Whose events are whose: running checkers only, so an event a stopped checker left
    /// in the channel finds no one.
    by_id: HashMap<CheckId, CheckKey>,
    /// The next [`CheckId`] handed out (never reused).
    next_id: u64,
    /// Where each real server sits in the running config.
    pos: HashMap<RsKey, (usize, usize)>,
    state: HashMap<RsKey, RsHealth>,
    /// Virtual servers (by index) whose quorum is lost: their real servers are taken out
    /// and the sorry server serves.
    quorum_lost: Vec<bool>,
    policy: rvs_check::ScriptPolicy,
    ids: HashMap<(usize, usize), RsKey>,
    /// Up → down transitions per (real server, checker index), kept across reloads.
    failures: HashMap<(RsKey, usize), u64>,
    /// When each checker last changed state (unix seconds), kept across reloads.
    changed_at: HashMap<(RsKey, usize), u64>,
    /// Why each checker that is down went down (its probe's detail).
    reasons: HashMap<(RsKey, usize), String>,
    /// Each running checker's probe results (replaced when a reload restarts it).
    probes: HashMap<(RsKey, usize), std::sync::Arc<rvs_check::ProbeStats>>,
    /// The `bfd_instance` sessions (`BFD_CHECK` follows them); restarted only when the
    /// instances change.
    bfd: Option<rvs_bfd::driver::Bfd>,
    /// The sessions' state channels for VRRP's `track_bfd`.
    pub bfd_registry: rvs_bfd::driver::Registry,
    /// The BFD sessions' status, written by the BFD driver, read by the control API.
    pub bfd_status: std::sync::Arc<std::sync::Mutex<Vec<rvs_bfd::driver::Status>>>,
    pub rx: mpsc::Receiver<Event>,
    tx: mpsc::Sender<Event>,
    /// E-mail alerts of real servers and quorums (`smtp_alert`), when configured.
    pub alerts: Option<std::sync::Arc<crate::daemon::alerts::Alerts>>,
    /// `notify_fifo` and `lvs_notify_fifo`: keepalived's `RS …` and `VS …` lines.
    fifos: Option<rvs_vrrpd::notify::Fifos>,
}

fn rs_key(cfg: &Config, vi: usize, ri: usize) -> RsKey {
    let vs = &cfg.virtual_servers[vi];
    let rs = &vs.real_servers[ri];
    (
        rvs_conf::load::vs_label(&vs.key, vs.protocol),
        SocketAddr::new(rs.address, rs.port),
    )
}

impl Health {
    pub fn new() -> Health {
        let (tx, rx) = mpsc::channel(1024);
        Health {
            running: HashMap::new(),
            by_id: HashMap::new(),
            next_id: 0,
            pos: HashMap::new(),
            state: HashMap::new(),
            quorum_lost: Vec::new(),
            policy: rvs_check::ScriptPolicy::default(),
            ids: HashMap::new(),
            failures: HashMap::new(),
            changed_at: HashMap::new(),
            reasons: HashMap::new(),
            probes: HashMap::new(),
            bfd: None,
            bfd_status: std::sync::Arc::default(),
            bfd_registry: std::sync::Arc::default(),
            rx,
            tx,
            alerts: None,
            fifos: None,
        }
    }

    /// Starts (or keeps, when unchanged) the BFD sessions of `cfg` (also with `-P`, for
    /// VRRP's `track_bfd`).
    pub fn start_bfd(&mut self, cfg: &Config) {
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
            return;
        }
        // A reload reconciles: unchanged sessions go on (their neighbours and followers
        // notice nothing), only added, changed and removed ones move.
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
                    if let Ok(mut r) = self.bfd_registry.lock() {
                        *r = b.watches();
                    }
                }
                Err(e) => tracing::error!("BFD not reloaded, the running sessions go on: {e}"),
            }
            return;
        }
        match rvs_bfd::driver::Bfd::start_with_status(want, self.bfd_status.clone()) {
            Ok(b) => {
                if let Ok(mut r) = self.bfd_registry.lock() {
                    *r = b.watches();
                }
                self.bfd = Some(b);
            }
            Err(e) => tracing::error!("BFD not started: {e}"),
        }
    }

    /// Stops the BFD sessions, telling each neighbour (`AdminDown`).
    pub async fn stop_bfd(&mut self) {
        if let Some(b) = self.bfd.take() {
            b.stop().await;
        }
    }

    /// Reconciles the checkers with a configuration: a checker whose real server and
    /// settings are unchanged goes on untouched; changed ones restart (resuming their
    /// real server's state), removed ones stop, new ones start as keepalived starts them
    /// (up, or down with alpha).
    pub fn start(&mut self, cfg: &Config) {
        self.start_bfd(cfg);
        let g = &cfg.global_defs;
        self.policy = policy_of(cfg);
        let paths: Vec<String> = [&g.notify_fifo, &g.lvs_notify_fifo]
            .into_iter()
            .flatten()
            .cloned()
            .collect();
        self.fifos = (!paths.is_empty()).then(|| rvs_vrrpd::notify::Fifos::open(&paths));
        let has_scripts = cfg.virtual_servers.iter().any(|vs| {
            vs.quorum_up.is_some()
                || vs.quorum_down.is_some()
                || vs.real_servers.iter().any(|rs| {
                    rs.notify_up.is_some()
                        || rs.notify_down.is_some()
                        || rs
                            .checkers
                            .iter()
                            .any(|c| matches!(c.kind, rvs_conf::model::CheckKind::Misc(_)))
                })
        });
        if has_scripts && !g.enable_script_security {
            tracing::warn!("script security is off (enable_script_security): scripts are not checked for safe ownership");
        }
        let mut old_running = std::mem::take(&mut self.running);
        let mut old_probes = std::mem::take(&mut self.probes);
        let mut state = HashMap::new();
        self.ids.clear();
        self.pos.clear();
        let (mut kept, mut started) = (0usize, 0usize);
        for (vi, vs) in cfg.virtual_servers.iter().enumerate() {
            for (ri, rs) in vs.real_servers.iter().enumerate() {
                let key = rs_key(cfg, vi, ri);
                self.ids.insert((vi, ri), key.clone());
                self.pos.insert(key.clone(), (vi, ri));
                let old = self.state.get(&key);
                let mut h = RsHealth {
                    up: Vec::new(),
                    dyn_weight: old.and_then(|o| o.dyn_weight),
                };
                for (ci, c) in rs.checkers.iter().enumerate() {
                    let ck: CheckKey = (key.clone(), ci);
                    let prev = old.and_then(|o| o.up.get(ci).copied().flatten());
                    let Some(spec) = self.spec(cfg, c, rs, &key) else {
                        h.up.push(None);
                        continue;
                    };
                    let first = match &spec {
                        Spec::File(_) => true,
                        Spec::Probe { .. } | Spec::Bfd { .. } => !c.alpha,
                    };
                    h.up.push(Some(prev.unwrap_or(first)));
                    if let Some(r) = old_running.remove(&ck) {
                        if r.spec == spec && !r.task.is_finished() {
                            if let Some(p) = old_probes.remove(&ck) {
                                self.probes.insert(ck.clone(), p);
                            }
                            self.running.insert(ck, r);
                            kept += 1;
                            continue;
                        }
                        r.task.abort();
                        self.by_id.remove(&r.id);
                    }
                    let id = CheckId(self.next_id);
                    self.next_id += 1;
                    let task = match &spec {
                        Spec::File(w) => tokio::spawn(w.clone().run(id, self.tx.clone())),
                        Spec::Bfd { name, watch } => tokio::spawn(follow_bfd(
                            id,
                            name.clone(),
                            watch.clone(),
                            prev.unwrap_or(first),
                            self.tx.clone(),
                        )),
                        Spec::Probe { target, .. } => {
                            // Spread first checks over [0, warmup] (keepalived's start jitter).
                            let warm = c.warmup.clamp(0.0, 3600.0);
                            let jitter = if warm > 0.0 {
                                Duration::from_secs_f64(warm * fraction(vi, ri, ci))
                            } else {
                                Duration::ZERO
                            };
                            // A restarted checker keeps its probe counters.
                            let probe_stats = old_probes.remove(&ck).unwrap_or_else(|| {
                                std::sync::Arc::new(rvs_check::ProbeStats::new())
                            });
                            self.probes.insert(ck.clone(), probe_stats.clone());
                            tokio::spawn(rvs_check::run(
                                id,
                                c.clone(),
                                *target,
                                rvs_check::Start {
                                    delay: jitter,
                                    resume: prev,
                                },
                                self.policy,
                                self.tx.clone(),
                                probe_stats,
                            ))
                        }
                    };
                    self.by_id.insert(id, ck.clone());
                    self.running.insert(ck, Running { id, spec, task });
                    started += 1;
                }
                // keepalived's rs_init_notifies: a real server that starts up (no checker
                // against it) gets its notify_up and FIFO line at once; a reload does not
                // repeat them for one it already had.
                if g.rs_init_notifies && old.is_none() && h.alive() {
                    if let Some(sc) = &rs.notify_up {
                        spawn_script(&self.policy, &sc.argv);
                    }
                    if let Some(f) = self.fifos.as_mut() {
                        f.write(&format!(
                            "RS {} {} UP\n",
                            rs_label(vs, rs),
                            rvs_conf::load::vs_label(&vs.key, vs.protocol)
                        ));
                    }
                }
                state.insert(key, h);
            }
        }
        // What is left ran for real servers or checkers the configuration no longer has.
        let stopped = old_running.len();
        for (_, r) in old_running {
            r.task.abort();
            self.by_id.remove(&r.id);
        }
        if kept > 0 {
            tracing::info!("checkers: {kept} kept, {started} started, {stopped} stopped");
        }
        self.state = state;
        self.quorum_lost = vec![false; cfg.virtual_servers.len()];
        for vi in 0..cfg.virtual_servers.len() {
            self.quorum_lost[vi] =
                self.alive_weight(cfg, vi) < i64::from(cfg.virtual_servers[vi].quorum);
        }
    }

    /// What a checker runs with; `None` (and a warning) for one rvs cannot run.
    fn spec(
        &self,
        cfg: &Config,
        c: &rvs_conf::model::Checker,
        rs: &rvs_conf::model::RealServer,
        key: &RsKey,
    ) -> Option<Spec> {
        match &c.kind {
            rvs_conf::model::CheckKind::File(fc) => file_watch(cfg, fc, rs.weight).map(Spec::File),
            rvs_conf::model::CheckKind::Bfd(bc) => {
                let name = bc.name.clone().unwrap_or_default();
                let watch = self.bfd.as_ref().and_then(|b| b.watch(&name));
                if watch.is_none() {
                    tracing::error!("BFD_CHECK of {}: no BFD session runs for it: the real server's state is left alone", key.1);
                }
                watch.map(|watch| Spec::Bfd { name, watch })
            }
            _ if !rvs_check::is_probe(c) => {
                tracing::warn!(
                    "{} of {} is not implemented yet: it does not change the real server's state",
                    c.kind.name(),
                    key.1
                );
                None
            }
            kind => Some(Spec::Probe {
                checker: Box::new(c.clone()),
                target: rvs_check::target(c, rs.address, rs.port),
                policy: matches!(kind, rvs_conf::model::CheckKind::Misc(_)).then_some(self.policy),
            }),
        }
    }

    /// The identity the running checker at a config position reports with.
    #[cfg(test)]
    fn id_at(&self, vi: usize, ri: usize, ci: usize) -> Option<CheckId> {
        let key = self.ids.get(&(vi, ri))?;
        self.running.get(&(key.clone(), ci)).map(|r| r.id)
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
        for (vi, vs) in old.virtual_servers.iter().enumerate() {
            let lost = self.quorum_lost.get(vi).copied().unwrap_or(false);
            if lost && vs.sorry_server.is_some() {
                continue;
            }
            let label = rvs_conf::load::vs_label(&vs.key, vs.protocol);
            let kept = new.and_then(|n| {
                n.virtual_servers
                    .iter()
                    .find(|v| rvs_conf::load::vs_label(&v.key, v.protocol) == label)
            });
            if kept.is_none() && !vs.omega {
                continue;
            }
            let alive = |ri: usize| {
                self.ids
                    .get(&(vi, ri))
                    .and_then(|k| self.state.get(k))
                    .is_none_or(RsHealth::alive)
            };
            let mut remaining = 0i64;
            let mut removed_any = false;
            // The kept service's real servers as a set: a scan per real server was
            // quadratic (100k real servers: minutes per reload).
            let kept_rs: std::collections::HashSet<(std::net::IpAddr, u16)> = kept
                .map(|k| k.real_servers.iter().map(|n| (n.address, n.port)).collect())
                .unwrap_or_default();
            for (ri, rs) in vs.real_servers.iter().enumerate() {
                if !alive(ri) {
                    continue;
                }
                let stays = kept_rs.contains(&(rs.address, rs.port));
                if stays {
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

    /// Runs scripts and waits for them (at most `limit`): keepalived's omega scripts at
    /// shutdown, which must finish before the daemon exits.
    pub async fn run_scripts(&self, scripts: &[Vec<String>], limit: Duration) {
        let mut children = Vec::new();
        for argv in scripts {
            match self
                .policy
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

    /// Starts scripts without waiting (a reload goes on).
    pub fn spawn_scripts(&self, scripts: &[Vec<String>]) {
        for argv in scripts {
            spawn_script(&self.policy, argv);
        }
    }

    /// Sum of the weights of a virtual server's live real servers.
    fn alive_weight(&self, cfg: &Config, vi: usize) -> i64 {
        cfg.virtual_servers[vi]
            .real_servers
            .iter()
            .enumerate()
            .filter(|(ri, _)| {
                self.ids
                    .get(&(vi, *ri))
                    .and_then(|k| self.state.get(k))
                    .is_none_or(RsHealth::alive)
            })
            .map(|(ri, rs)| {
                let dynw = self
                    .ids
                    .get(&(vi, ri))
                    .and_then(|k| self.state.get(k))
                    .and_then(|h| h.dyn_weight);
                i64::from(dynw.unwrap_or(rs.weight))
            })
            .sum()
    }

    /// keepalived's quorum with hysteresis: lost below `quorum - hysteresis`, regained at
    /// `quorum + hysteresis`; runs `quorum_down`/`quorum_up`.
    fn update_quorum(&mut self, cfg: &Config, vi: usize) {
        let vs = &cfg.virtual_servers[vi];
        let w = self.alive_weight(cfg, vi);
        let (q, hy) = (i64::from(vs.quorum), i64::from(vs.hysteresis));
        let lost = self.quorum_lost.get(vi).copied().unwrap_or(false);
        let label = rvs_conf::load::vs_label(&vs.key, vs.protocol);
        if !lost && w < q - hy {
            self.quorum_lost[vi] = true;
            tracing::warn!("Lost quorum {}-{}={} > {w} for VS {label}", q, hy, q - hy);
            if let Some(sc) = &vs.quorum_down {
                spawn_script(&self.policy, &sc.argv);
            }
            if let Some(al) = &self.alerts {
                al.quorum(cfg, vi, false, w);
            }
            if let Some(f) = self.fifos.as_mut() {
                f.write(&format!("VS {label} DOWN\n"));
            }
        } else if lost && w >= q + hy {
            self.quorum_lost[vi] = false;
            tracing::info!(
                "Gained quorum {}+{}={} <= {w} for VS {label}",
                q,
                hy,
                q + hy
            );
            if let Some(sc) = &vs.quorum_up {
                spawn_script(&self.policy, &sc.argv);
            }
            if let Some(al) = &self.alerts {
                al.quorum(cfg, vi, true, w);
            }
            if let Some(f) = self.fifos.as_mut() {
                f.write(&format!("VS {label} UP\n"));
            }
        }
    }

    /// Applies an event; returns whether the real server's weight changed.
    pub fn event(&mut self, cfg: &Config, ev: &Event) -> bool {
        let (Event::Changed { id, .. } | Event::Weight { id, .. }) = ev;
        // A checker a reload stopped (or replaced) is no one's any more.
        let Some((key, ci)) = self.by_id.get(id).cloned() else {
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
            Event::Changed { up, detail, .. } => {
                if let Some(slot) = h.up.get_mut(ci) {
                    if *slot != Some(false) && !*up {
                        *self.failures.entry((key.clone(), ci)).or_default() += 1;
                    }
                    if *slot != Some(*up) {
                        self.changed_at.insert((key.clone(), ci), unix_now());
                    }
                    *slot = Some(*up);
                }
                if *up {
                    self.reasons.remove(&(key.clone(), ci));
                } else {
                    self.reasons.insert((key.clone(), ci), detail.clone());
                }
                tracing::info!("{detail}");
            }
            Event::Weight { weight, .. } => h.dyn_weight = Some(*weight),
        }
        let after = (h.alive(), h.dyn_weight);
        if before.0 != after.0 {
            let vs = &cfg.virtual_servers[vi];
            let verb = if after.0 { "Adding" } else { "Removing" };
            let inhibit = vs.real_servers[ri].inhibit_on_failure;
            let how = if inhibit && !after.0 {
                " (inhibit_on_failure: weight 0)"
            } else {
                ""
            };
            tracing::info!(
                "{verb} service [{}]:tcp:{} {} VS {}{how}",
                key.1.ip(),
                key.1.port(),
                if after.0 { "to" } else { "from" },
                key.0
            );
            let rs = &vs.real_servers[ri];
            let script = if after.0 {
                &rs.notify_up
            } else {
                &rs.notify_down
            };
            if let Some(sc) = script {
                spawn_script(&self.policy, &sc.argv);
            }
            if let Some(al) = &self.alerts {
                let kind = rs.checkers.get(ci).map_or("", |c| c.kind.name());
                al.real_server(cfg, vi, ri, after.0, kind);
            }
            // keepalived's FIFO line: `RS [ip]:tcp:port [vip]:tcp:port UP`.
            if let Some(f) = self.fifos.as_mut() {
                f.write(&format!(
                    "RS {} {} {}\n",
                    rs_label(vs, rs),
                    rvs_conf::load::vs_label(&vs.key, vs.protocol),
                    if after.0 { "UP" } else { "DOWN" }
                ));
            }
        }
        if before == after {
            return false;
        }
        // Weights changed (health or misc_dynamic): the quorum may have moved.
        self.update_quorum(cfg, vi);
        true
    }

    /// Every checker's state, for the metrics and the status view.
    pub fn report(&self, cfg: &Config) -> Vec<CheckReport> {
        let mut out = Vec::new();
        for (vi, vs) in cfg.virtual_servers.iter().enumerate() {
            for (ri, rs) in vs.real_servers.iter().enumerate() {
                let Some(key) = self.ids.get(&(vi, ri)) else {
                    continue;
                };
                let h = self.state.get(key);
                for (ci, c) in rs.checkers.iter().enumerate() {
                    let p = self.probes.get(&(key.clone(), ci));
                    let load = |f: fn(&rvs_check::ProbeStats) -> &std::sync::atomic::AtomicU64| {
                        p.map_or(0, |p| f(p).load(std::sync::atomic::Ordering::Relaxed))
                    };
                    let probes = load(|p| &p.probes);
                    #[expect(
                        clippy::cast_precision_loss,
                        reason = "microseconds fit f64 exactly below 2^53"
                    )]
                    let last_latency_s =
                        (probes > 0).then(|| load(|p| &p.last_latency_us) as f64 / 1e6);
                    out.push(CheckReport {
                        probes,
                        failed_probes: load(|p| &p.failed_probes),
                        last_latency_s,
                        service: key.0.clone(),
                        real_server: key.1,
                        checker: c.kind.name(),
                        index: ci,
                        up: h.and_then(|h| h.up.get(ci).copied().flatten()),
                        failures: self.failures.get(&(key.clone(), ci)).copied().unwrap_or(0),
                        last_change_unix: self.changed_at.get(&(key.clone(), ci)).copied(),
                        last_failure: self.reasons.get(&(key.clone(), ci)).cloned(),
                    });
                }
            }
        }
        out
    }

    /// The desired state with the current health applied.
    pub fn desired(&self, cfg: &Config) -> Desired {
        rvs_desired::desired_with(
            cfg,
            |vi, ri, rs| {
                let h = self.ids.get(&(vi, ri)).and_then(|k| self.state.get(k));
                match h {
                    None => Some(rs.weight),
                    Some(h) if h.alive() => Some(h.dyn_weight.unwrap_or(rs.weight)),
                    Some(_) if rs.inhibit_on_failure => Some(0),
                    Some(_) => None,
                }
            },
            |vi| self.quorum_lost.get(vi).copied().unwrap_or(false),
        )
    }
}

/// A `FILE_CHECK`: the tracked file holds an integer; `value × weight` (negated with
/// `reverse`) is added to the real server's weight, and a result at or below the fault
/// level (−65536), or with weight 0 a non-zero value (zero with `reverse`), takes the
/// real server down. The file is polled every second (keepalived uses inotify).
#[derive(Debug, Clone, PartialEq)]
struct FileWatch {
    path: std::path::PathBuf,
    weight: i64,
    reverse: bool,
    base: i32,
}

const WEIGHT_FAULT: i64 = -65536;

fn file_watch(cfg: &Config, fc: &rvs_conf::model::FileCheck, base: i32) -> Option<FileWatch> {
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

impl FileWatch {
    /// (up, weight) for a file value.
    fn evaluate(&self, value: i64) -> (bool, i32) {
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

    async fn run(self, id: CheckId, tx: mpsc::Sender<Event>) {
        let mut last: Option<(bool, i32)> = None;
        loop {
            let value = std::fs::read_to_string(&self.path)
                .ok()
                .and_then(|t| t.trim().parse::<i64>().ok())
                .unwrap_or(0);
            let now = self.evaluate(value);
            if last != Some(now) {
                if last.is_none_or(|l| l.1 != now.1)
                    && tx.send(Event::Weight { id, weight: now.1 }).await.is_err()
                {
                    return;
                }
                if last.is_none_or(|l| l.0 != now.0) {
                    let detail = format!(
                        "tracked file {} = {value}: {}",
                        self.path.display(),
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
}

/// Runs a notify script without a shell, in the background, killed after 10 s.
/// A real server as keepalived prints it (`FMT_RS`): `[ip]:proto:port`, the protocol of
/// its virtual server.
pub fn rs_label(vs: &rvs_conf::model::VirtualServer, rs: &rvs_conf::model::RealServer) -> String {
    let vs_label = rvs_conf::load::vs_label(&vs.key, vs.protocol);
    let proto = vs_label
        .split(':')
        .nth(1)
        .map_or_else(|| "tcp".to_owned(), str::to_owned);
    format!("[{}]:{proto}:{}", rs.address, rs.port)
}

/// How the configuration's scripts run (`script_user`, `enable_script_security`).
pub fn policy_of(cfg: &Config) -> rvs_check::ScriptPolicy {
    let g = &cfg.global_defs;
    let (policy, why) =
        rvs_check::ScriptPolicy::of(g.enable_script_security, g.script_user.as_deref());
    if let Some(why) = why {
        tracing::error!("{why}");
    }
    policy
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

/// A deterministic spread in [0, 1) per checker.
fn fraction(a: usize, b: usize, c: usize) -> f64 {
    let x = (a as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)
        ^ (b as u64).wrapping_mul(0xc2b2_ae3d_27d4_eb4f)
        ^ (c as u64).wrapping_mul(0x1656_67b1_9e37_79f9);
    let x = x ^ (x >> 29);
    f64::from(u32::try_from(x % 10_000).unwrap_or(0)) / 10_000.0
}
