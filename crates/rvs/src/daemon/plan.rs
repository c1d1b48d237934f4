//! `rvs plan -f FILE` and `rvs reload --dry-run`: what a reload would do, in the order it
//! would do it, without doing it. The data plane's and the checkers' parts come from the
//! reload's own code run on a copy of the core ([`rvs_daemon::Core::preview`]); VRRP's from
//! the rule its reload keeps an instance by ([`rvs_vrrpd::keeps`]) and the states the
//! instances are in now. So the plan and the reload cannot disagree.

use rvs_api::{PlanPart, PlanStep};
use rvs_daemon::{BfdSessions, Core};
use rvs_sched::desired::Step;
use rvs_vrrpd::InstanceStatus;
use std::path::Path;

/// What the main loop knows that the plan needs.
pub struct Running<'a> {
    pub core: &'a Core,
    /// The BFD sessions that run now (name → run).
    pub bfd: &'a BfdSessions,
    pub vrrp: &'a [InstanceStatus],
    /// VRRP is run by this daemon (not `-C`).
    pub vrrp_enabled: bool,
}

/// The plan of reloading `file` (already read into `parsed`).
pub fn plan(
    now: &Running<'_>,
    file: &Path,
    parsed: Result<rvs_conf::Parsed, String>,
) -> rvs_api::Plan {
    let mut out = rvs_api::Plan {
        file: file.display().to_string(),
        refused: None,
        steps: Vec::new(),
        warnings: Vec::new(),
        summary: String::new(),
    };
    // The sessions the new file would run: those that run now keep their run, new ones
    // get a run no checker follows yet (its BFD_CHECKs start).
    let bfd_next = |cfg: &rvs_conf::Config| -> BfdSessions {
        cfg.bfd_instances
            .iter()
            .map(|b| {
                let run = now.bfd.get(&b.name).copied().unwrap_or(u64::MAX);
                (b.name.clone(), run)
            })
            .collect()
    };
    let bfd = match &parsed {
        Ok(p) => bfd_next(&p.config),
        Err(_) => BfdSessions::new(),
    };
    let preview = match now.core.preview(file, parsed, &bfd) {
        Ok(p) => p,
        Err(why) => {
            out.refused = Some(why);
            return out;
        }
    };
    let step = |part, text: String| PlanStep { part, text };
    for argv in &preview.scripts {
        out.steps
            .push(step(PlanPart::Scripts, format!("run {}", argv.join(" "))));
    }
    let c = &preview.checkers;
    if !c.stop.is_empty() {
        out.steps.push(step(
            PlanPart::Checkers,
            format!("stop {} checker(s)", c.stop.len()),
        ));
    }
    for s in &c.start {
        let ((vs, addr), n) = &s.key;
        out.steps.push(step(
            PlanPart::Checkers,
            format!(
                "start checker {} of real server {addr} of virtual server {vs}",
                n + 1
            ),
        ));
    }
    if c.kept > 0 {
        out.steps.push(step(
            PlanPart::Checkers,
            format!("keep {} checker(s) running", c.kept),
        ));
    }
    let before = now.core.desired();
    for s in &preview.steps {
        out.steps.push(step(PlanPart::Dataplane, s.to_string()));
    }
    for ws in &preview.desired.services {
        let live_after = ws.dests.iter().filter(|d| d.weight > 0).count();
        let live_before = before
            .services
            .iter()
            .find(|h| h.key == ws.key)
            .map_or(0, |h| h.dests.iter().filter(|d| d.weight > 0).count());
        if live_after == 0 && live_before > 0 {
            out.warnings.push(format!(
                "removing the last live real server of virtual server {}{}",
                ws.key,
                if ws.sorry.is_some() {
                    " (its sorry server will serve)"
                } else {
                    ": its clients will be refused"
                }
            ));
        }
    }
    // A service the new file still names but that has no real server left leaves the
    // data plane altogether (as keepalived leaves it out of IPVS).
    let named: Vec<String> = preview
        .config
        .virtual_servers
        .iter()
        .map(rvs_daemon::health::vs_label)
        .collect();
    for s in &preview.steps {
        if let Step::ServiceRemoved { key } = s {
            out.warnings.push(if named.contains(&key.to_string()) {
                format!(
                    "removing the last live real server of virtual server {key}: its \
                     clients will be refused"
                )
            } else {
                format!("removing virtual server {key}: new connections to it will be refused")
            });
        }
    }
    let r = rvs_sched::desired::report(&preview.steps);
    out.summary = format!(
        "services +{} -{}, real servers +{} -{} ~{}",
        r.services_added, r.services_removed, r.dests_added, r.dests_removed, r.dests_changed
    );
    if now.vrrp_enabled {
        vrrp_steps(now.vrrp, &preview.config, &mut out);
    }
    out
}

/// VRRP's part: instances kept (in their state; VIPs added or removed), stopped (a
/// MASTER sends priority 0 so its BACKUP takes over at once) and started.
fn vrrp_steps(running: &[InstanceStatus], cfg: &rvs_conf::Config, out: &mut rvs_api::Plan) {
    let plan = match rvs_vrrpd::plan(cfg) {
        Ok(p) => p,
        Err(errs) => {
            out.warnings.push(format!(
                "VRRP would not be reloaded (the running instances go on): {}",
                errs.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            ));
            return;
        }
    };
    let step = |text: String| PlanStep {
        part: PlanPart::Vrrp,
        text,
    };
    for r in running {
        let state = r.state.name();
        if let Some(p) = plan.instances.iter().find(|p| rvs_vrrpd::keeps(r, p)) {
            let want: Vec<String> = p
                .vips
                .iter()
                .map(|v| format!("{}/{}", v.address, v.prefix_len))
                .collect();
            out.steps
                .push(step(format!("keep vrrp_instance {} ({state})", r.name)));
            for v in want.iter().filter(|v| !r.vips.contains(v)) {
                out.steps
                    .push(step(format!("vrrp_instance {}: add VIP {v}", r.name)));
            }
            for v in r.vips.iter().filter(|v| !want.contains(v)) {
                out.steps
                    .push(step(format!("vrrp_instance {}: remove VIP {v}", r.name)));
            }
        } else {
            let master = r.state == rvs_vrrp::State::Master;
            let handover = if master {
                ": MASTER will send priority 0 and release its VIPs"
            } else {
                ""
            };
            out.steps.push(step(format!(
                "remove vrrp_instance {} ({state}){handover}",
                r.name
            )));
            if master {
                out.warnings.push(format!(
                    "vrrp_instance {} is MASTER and will hand its VIPs over",
                    r.name
                ));
            }
        }
    }
    for p in &plan.instances {
        if !running.iter().any(|r| rvs_vrrpd::keeps(r, p)) {
            out.steps.push(step(format!(
                "start vrrp_instance {} (VRID {} on {})",
                p.name, p.vrid, p.iface
            )));
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests panic on failure")]
mod tests {
    use super::*;

    fn running(name: &str, vrid: u8, state: &str, vips: &[&str]) -> InstanceStatus {
        serde_json::from_value(serde_json::json!({
            "name": name, "interface": "eth0", "vrid": vrid, "version": 2, "state": state,
            "base_priority": 100, "priority": 100, "source": "198.18.0.1", "master": null,
            "master_priority": null, "vips": vips, "sync_group": null, "adverts_rx": 0,
            "adverts_tx": 0, "priority_zero_tx": 0, "became_master": 0, "dropped": {}
        }))
        .unwrap()
    }

    /// VRRP's part of a plan: a kept instance keeps its state and gets its VIP changes,
    /// a removed MASTER hands over (and is warned about), a new instance starts.
    #[test]
    fn vrrp_instances_are_kept_removed_and_started_as_the_reload_does() {
        let text = "vrrp_instance VI_1 {\n    interface eth0\n    virtual_router_id 51\n    \
                    priority 100\n    virtual_ipaddress {\n        198.18.0.50/32\n        \
                    198.18.0.51/32\n    }\n}\nvrrp_instance VI_2 {\n    interface eth0\n    \
                    virtual_router_id 52\n    priority 100\n    virtual_ipaddress {\n        \
                    198.18.0.60/32\n    }\n}\n";
        let parsed =
            rvs_conf::parse_str(Path::new("new.conf"), text, &rvs_conf::Options::default());
        assert_eq!(parsed.errors(), 0, "{}", parsed.render());
        let now = [
            running("VI_1", 51, "MASTER", &["198.18.0.50/32"]),
            running("VI_3", 53, "MASTER", &["198.18.0.70/32"]),
        ];
        let mut out = rvs_api::Plan {
            file: "new.conf".into(),
            refused: None,
            steps: Vec::new(),
            warnings: Vec::new(),
            summary: String::new(),
        };
        vrrp_steps(&now, &parsed.config, &mut out);
        let steps: Vec<&str> = out.steps.iter().map(|s| s.text.as_str()).collect();
        assert_eq!(
            steps,
            [
                "keep vrrp_instance VI_1 (MASTER)",
                "vrrp_instance VI_1: add VIP 198.18.0.51/32",
                "remove vrrp_instance VI_3 (MASTER): MASTER will send priority 0 and release its VIPs",
                "start vrrp_instance VI_2 (VRID 52 on eth0)",
            ]
        );
        assert_eq!(
            out.warnings,
            ["vrrp_instance VI_3 is MASTER and will hand its VIPs over"]
        );
    }
}
