//! `rvs-daemon`: the daemon's own decisions, sans-IO (in the style of quinn-proto).
//!
//! [`Core`] holds the running configuration, the operator's runtime changes and the real
//! servers' health. It takes inputs — a configuration read for a reload, a checker's
//! report, an `rvs adm` command, the time — and answers with what must happen: the
//! desired state to apply, the checkers to start and stop ([`CheckerPlan`]), and
//! [`Effect`]s (scripts, e-mail alerts, FIFO lines). It never touches a socket, a task,
//! a file or the clock: the binary's drivers do, which is why every rule here (reload
//! semantics, overlay replay, quorum, sorry server, checker identities) is unit-tested
//! without a network.
//!
//! ```text
//!   reload(parsed) ─┐                         ┌─> desired()        → data plane
//!   event(ev, now) ─┼──> Core { cfg, health, ─┼─> CheckerPlan      → checker tasks
//!   propose/commit ─┘         runtime }       └─> Vec<Effect>      → scripts, alerts, FIFOs
//! ```

pub mod announce;
pub mod drift;
pub mod health;
pub mod overlay;
pub mod reload;
pub mod reload_time;

pub use health::{
    BfdSessions, CheckKey, CheckReport, CheckerPlan, ProbeFigures, RsKey, RsReport, Spec, VsReport,
};
pub use reload::{refuse_reload, DataReload, ReloadReport, VrrpReload, KEPT};

use health::HealthState;
use rvs_adm::cmd::Command;
use rvs_conf::model::Config;
use rvs_sched::desired::Desired;
use rvs_script::ScriptPolicy;
use rvs_types::CheckEvent;

/// Something the core decided that the drivers carry out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Run a notify script in the background (`notify_up`/`notify_down`,
    /// `quorum_up`/`quorum_down`), with the configuration's script policy.
    Script(Vec<String>),
    /// A real server went up or down (keepalived's checker alert).
    RealServerAlert {
        vs: usize,
        rs: usize,
        up: bool,
        /// The checker kind that decided (`TCP_CHECK`, …).
        checker: &'static str,
    },
    /// A virtual server lost or regained its quorum, at this live weight.
    QuorumAlert { vs: usize, up: bool, weight: i64 },
    /// A line for `notify_fifo` and `lvs_notify_fifo` (keepalived's `RS …`/`VS …`).
    Fifo(String),
    /// A change keepalived notifies (its notify scripts, FIFO lines and SNMP traps
    /// `realServerStateChange` / `virtualServerQuorumStateChange`), by position in the
    /// running configuration.
    Changed(Change),
}

/// What changed, for [`Effect::Changed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    RealServer { vs: usize, rs: usize, up: bool },
    Quorum { vs: usize, up: bool },
}

/// What [`Core::preview`] found a reload would do.
#[derive(Debug, Clone)]
pub struct Preview {
    pub steps: Vec<rvs_sched::desired::Step>,
    /// The desired state after the reload.
    pub desired: Desired,
    pub checkers: CheckerPlan,
    /// Notify scripts the removed real servers would run (`notify_down`, omega).
    pub scripts: Vec<Vec<String>>,
    /// Each new virtual server's health right after the reload.
    pub servers: Vec<VsReport>,
    /// The configuration that would run.
    pub config: Config,
}

/// What the daemon runs besides VRRP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Data plane and checkers (the default, and `-C`).
    Full,
    /// keepalived's `-P`: VRRP only, no checkers, no services.
    VrrpOnly,
}

/// Why a runtime command was refused (ipvsadm's texts).
pub use overlay::Refusal;

/// The daemon's state and rules.
#[derive(Debug, Clone)]
pub struct Core {
    cfg: Config,
    mode: Mode,
    /// `rvs adm` changes accepted since the file was last (re)loaded, replayed in order
    /// over config + health.
    runtime: Vec<Command>,
    health: HealthState,
    policy: ScriptPolicy,
    /// `rvs bgp drain`: no VIP announced, whatever the health (kept across reloads).
    drained: bool,
}

impl Core {
    /// The core of a daemon starting with `cfg`; [`Core::reconcile_checkers`] plans its
    /// first checkers.
    pub fn new(cfg: Config, mode: Mode) -> Core {
        let policy = policy_of(&cfg);
        Core {
            cfg,
            mode,
            runtime: Vec::new(),
            health: HealthState::new(),
            policy,
            drained: false,
        }
    }

    /// The configuration that runs.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// How the configuration's scripts run (`script_user`, `enable_script_security`).
    pub fn policy(&self) -> ScriptPolicy {
        self.policy
    }

    /// The health state (reports, quorums).
    pub fn health(&self) -> &HealthState {
        &self.health
    }

    /// Runtime changes in force.
    pub fn runtime(&self) -> &[Command] {
        &self.runtime
    }

    /// A configuration read for a reload. Refused (the running one is kept, and the text
    /// says why, with the file's diagnostics) when it has errors or lines rvs cannot
    /// read; otherwise it replaces the running one, the runtime changes are dropped (the
    /// file is the truth again) and the answer holds the notify scripts of the real
    /// servers it removes. The driver then reconciles BFD and the checkers
    /// ([`Core::reconcile_checkers`]) and applies [`Core::desired`].
    /// `reload_check_config` (the running file's setting, as keepalived reads it): the log
    /// file, when `parsed` fails keepalived's own check and so must not be loaded. The
    /// driver writes the diagnostics there; [`Core::reload`] refuses the file.
    pub fn failed_validation(&self, parsed: &rvs_conf::Parsed) -> Option<&str> {
        self.cfg
            .global_defs
            .reload_check_config
            .as_deref()
            .filter(|_| parsed.keepalived_rejects())
    }

    pub fn reload(
        &mut self,
        path: &std::path::Path,
        parsed: Result<rvs_conf::Parsed, String>,
    ) -> Result<Vec<Effect>, String> {
        let parsed = match parsed {
            Ok(p) => p,
            Err(why) => {
                tracing::error!("reload refused, {KEPT}: {why}");
                return Err(format!("error: {why}; {KEPT}"));
            }
        };
        if let Some(why) = refuse_reload(&parsed) {
            let text = parsed.render();
            tracing::error!("reload refused, {KEPT}:\n{text}");
            return Err(format!("error: {} {why}; {KEPT}\n{text}", path.display()));
        }
        if let Some(log) = self.failed_validation(&parsed) {
            tracing::error!("New config failed validation, see {log} for details; {KEPT}");
            return Err(format!(
                "error: {} failed validation (reload_check_config), see {log} for \
                 details; {KEPT}",
                path.display()
            ));
        }
        let effects = match self.mode {
            Mode::Full => self
                .health
                .removal_scripts(&self.cfg, Some(&parsed.config))
                .into_iter()
                .map(Effect::Script)
                .collect(),
            Mode::VrrpOnly => Vec::new(),
        };
        self.cfg = parsed.config;
        self.policy = policy_of(&self.cfg);
        if !self.runtime.is_empty() {
            tracing::info!(
                "reload: {} runtime change(s) replaced by the file",
                self.runtime.len()
            );
            self.runtime.clear();
        }
        Ok(effects)
    }

    /// What a reload of `parsed` would do, computed by the reload's own code on a copy
    /// of this core: the data plane's steps (from [`Core::desired`] now to after), the
    /// checkers started, stopped and kept, and the notify scripts of removed real
    /// servers; or why the file would be refused. `bfd`: the BFD sessions the new
    /// configuration would run.
    pub fn preview(
        &self,
        path: &std::path::Path,
        parsed: Result<rvs_conf::Parsed, String>,
        bfd: &BfdSessions,
    ) -> Result<Preview, String> {
        let mut next = self.clone();
        let effects = next.reload(path, parsed)?;
        let (checkers, _) = next.reconcile_checkers(bfd);
        let desired = next.desired();
        let steps = rvs_sched::desired::diff(&self.desired(), &desired);
        let scripts = effects
            .into_iter()
            .filter_map(|e| match e {
                Effect::Script(argv) => Some(argv),
                _ => None,
            })
            .collect();
        Ok(Preview {
            steps,
            desired,
            checkers,
            scripts,
            servers: next.servers(),
            config: next.cfg,
        })
    }

    /// Plans the checkers of the running configuration by difference with the ones that
    /// run (none with [`Mode::VrrpOnly`]); `bfd` names the BFD sessions that run now.
    pub fn reconcile_checkers(&mut self, bfd: &BfdSessions) -> (CheckerPlan, Vec<Effect>) {
        let mut effects = Vec::new();
        if self.mode == Mode::VrrpOnly {
            return (CheckerPlan::default(), effects);
        }
        let plan = self
            .health
            .reconcile(&self.cfg, self.policy, bfd, &mut effects);
        (plan, effects)
    }

    /// A checker's run ended on its own: the next reconcile starts it again.
    pub fn checker_ended(&mut self, id: rvs_types::CheckId) {
        self.health.checker_ended(id);
    }

    /// A checker's report at `now` (unix seconds). `true`: the desired state changed.
    pub fn event(&mut self, ev: &CheckEvent, now: u64, effects: &mut Vec<Effect>) -> bool {
        self.health.event(&self.cfg, ev, now, effects)
    }

    /// The desired state: the configuration, its health, then the runtime changes.
    pub fn desired(&self) -> Desired {
        overlay::replay(self.health.desired(&self.cfg), &self.runtime)
    }

    /// The desired state with `cmd` applied on top, for the driver to try; the command
    /// only counts once [`Core::commit`]ted (after the data plane took it).
    pub fn propose(&self, cmd: &Command) -> Result<Desired, Refusal> {
        let mut want = self.desired();
        overlay::apply(&mut want, cmd)?;
        Ok(want)
    }

    /// A command the data plane took: replayed from now on.
    pub fn commit(&mut self, cmd: Command) {
        tracing::info!("runtime change: {cmd:?}");
        self.runtime.push(cmd);
    }

    /// Drains (`true`) or returns (`false`) this director: while drained, it announces
    /// no VIP to its routers and goes on serving the connections they still send.
    pub fn set_drained(&mut self, on: bool) {
        if on != self.drained {
            tracing::info!(
                "{}",
                if on {
                    "drained: every VIP is withdrawn from the routers"
                } else {
                    "drain ended: VIPs are announced again while they can be served"
                }
            );
        }
        self.drained = on;
    }

    pub fn drained(&self) -> bool {
        self.drained
    }

    /// The VIPs to announce now (`rvs_bgp`; none without it): see [`announce`].
    /// `applied`: the desired state the data plane took; `served`: whether its last
    /// apply left a VIP unserved.
    pub fn announcements(
        &self,
        applied: &Desired,
        served: impl Fn(std::net::IpAddr) -> bool,
    ) -> Vec<rvs_types::Announcement> {
        match (&self.cfg.bgp, self.mode) {
            (Some(bgp), Mode::Full) => announce::announcements(applied, bgp, served, self.drained),
            _ => Vec::new(),
        }
    }

    /// The notify scripts of shutdown (keepalived's omega): every live real server of a
    /// virtual server with `omega`.
    pub fn shutdown_scripts(&self) -> Vec<Vec<String>> {
        match self.mode {
            Mode::Full => self.health.removal_scripts(&self.cfg, None),
            Mode::VrrpOnly => Vec::new(),
        }
    }

    /// Every checker's state; `probes` gives what the driver measured.
    pub fn report(&self, probes: impl Fn(&CheckKey) -> Option<ProbeFigures>) -> Vec<CheckReport> {
        self.health.report(&self.cfg, probes)
    }

    /// Each virtual server's quorum and real servers (SNMP's tables and traps).
    pub fn servers(&self) -> Vec<VsReport> {
        self.health.servers(&self.cfg)
    }
}

/// How the configuration's scripts run; a `script_user` that does not exist is logged.
pub fn policy_of(cfg: &Config) -> ScriptPolicy {
    let g = &cfg.global_defs;
    let (policy, why) = ScriptPolicy::of(g.enable_script_security, g.script_user.as_deref());
    if let Some(why) = why {
        tracing::error!("{why}");
    }
    policy
}

#[cfg(test)]
mod tests;
