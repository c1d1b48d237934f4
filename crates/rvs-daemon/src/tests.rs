//! The core's rules without a network: reload semantics, overlay replay, quorum and the
//! sorry server, checker identities across reloads.

#![allow(clippy::unwrap_used, reason = "tests panic on failure")]

use super::*;
use health::{FileWatch, Spec};
use rvs_types::CheckId;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::Path;

fn parse(text: &str) -> rvs_conf::Parsed {
    rvs_conf::parse_str(Path::new("t.conf"), text, &rvs_conf::Options::default())
}

fn conf(text: &str) -> Config {
    let p = parse(text);
    assert_eq!(p.errors(), 0, "{}", p.render());
    p.config
}

fn core(text: &str) -> Core {
    let mut c = Core::new(conf(text), Mode::Full);
    let _ = c.reconcile_checkers(&BfdSessions::new());
    c
}

/// Two real servers, each with one `TCP_CHECK`.
fn two_servers(first: bool) -> String {
    let rs = |a: &str| {
        format!(
            "real_server {a} 80 {{ weight 1\n notify_down \"/bin/echo down {a}\"\n \
             TCP_CHECK {{ connect_timeout 1\n delay_loop 3600 }} }}\n"
        )
    };
    let mut t = String::from("virtual_server 127.71.0.1 80 { lb_kind DR\n protocol TCP\n");
    if first {
        t.push_str(&rs("127.71.1.1"));
    }
    t.push_str(&rs("127.71.1.2"));
    t.push('}');
    t
}

fn live(c: &Core) -> Vec<(IpAddr, i32)> {
    c.desired().services[0]
        .dests
        .iter()
        .map(|d| (d.addr, d.weight))
        .collect()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn changed(id: CheckId, up: bool) -> CheckEvent {
    CheckEvent::Changed {
        id,
        up,
        detail: format!("checker {} says {up}", id.0),
    }
}

fn reload(c: &mut Core, text: &str) -> Result<Vec<Effect>, String> {
    let r = c.reload(Path::new("t.conf"), Ok(parse(text)));
    if r.is_ok() {
        let _ = c.reconcile_checkers(&BfdSessions::new());
    }
    r
}

fn adm(s: &str) -> Command {
    let args: Vec<String> = s.split_whitespace().map(str::to_owned).collect();
    match rvs_adm::cmd::parse(&args).unwrap() {
        rvs_adm::cmd::Invocation::Apply(c) => c,
        other => panic!("{other:?}"),
    }
}

/// Issue #16 bug 4: a checker's failure that was queued before a reload must not be
/// applied to whichever real server sits at its position afterwards.
#[test]
fn a_queued_event_never_lands_on_another_real_server_after_a_reload() {
    let mut c = core(&two_servers(true));
    let a = c.health().id_at(0, 0, 0).expect("A's checker runs");
    // A's checker saw it fail, but the event waits in the queue while the file is
    // reloaded without A: B is now the first real server.
    reload(&mut c, &two_servers(false)).unwrap();
    let mut fx = Vec::new();
    assert!(
        !c.event(&changed(a, false), 1, &mut fx),
        "an event of a checker the reload removed changed state"
    );
    assert!(fx.is_empty(), "{fx:?}");
    assert_eq!(live(&c), vec![(ip("127.71.1.2"), 1)]);
}

/// A reload reconciles the checkers: an unchanged one goes on (same identity, its queued
/// events still count), a changed one restarts under a new identity (the old one's
/// events are dropped, its real server's state is resumed), a removed one stops.
#[test]
fn a_reload_keeps_unchanged_checkers_and_restarts_changed_ones() {
    let mut c = Core::new(conf(&two_servers(true)), Mode::Full);
    let (first, _) = c.reconcile_checkers(&BfdSessions::new());
    assert_eq!(first.start.len(), 2);
    let (a, b) = (first.start[0].id, first.start[1].id);
    assert_ne!(a, b);
    c.reload(Path::new("t.conf"), Ok(parse(&two_servers(false))))
        .unwrap();
    let (plan, _) = c.reconcile_checkers(&BfdSessions::new());
    assert_eq!(plan.kept, 1, "B's unchanged checker was restarted");
    assert_eq!(plan.stop, vec![a], "A's checker still runs");
    assert!(plan.start.is_empty());
    assert_eq!(c.health().id_at(0, 0, 0), Some(b));
    let mut fx = Vec::new();
    assert!(c.event(&changed(b, false), 1, &mut fx), "B's own failure");
    assert_eq!(live(&c), vec![]);
    // The same server with another delay_loop: a new checker, resuming B's down state.
    let retimed = two_servers(false).replace("delay_loop 3600", "delay_loop 1800");
    c.reload(Path::new("t.conf"), Ok(parse(&retimed))).unwrap();
    let (plan, _) = c.reconcile_checkers(&BfdSessions::new());
    assert_eq!(plan.stop, vec![b]);
    assert_eq!(plan.start.len(), 1);
    let b2 = plan.start[0].id;
    assert_ne!(
        b2, b,
        "a changed checker kept running with its old settings"
    );
    assert_eq!(plan.start[0].resume, Some(false), "B's state is resumed");
    assert_eq!(live(&c), vec![], "B's down state was lost on restart");
    assert!(
        !c.event(&changed(b, true), 2, &mut fx),
        "the replaced checker still counts"
    );
    assert!(c.event(&changed(b2, true), 3, &mut fx));
    assert_eq!(live(&c), vec![(ip("127.71.1.2"), 1)]);
    // Identities are never handed out twice.
    let mut ids = vec![a, b, b2];
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 3);
}

/// A checker whose task ended on its own is started again by the next reconcile.
#[test]
fn an_ended_checker_is_started_again() {
    let mut c = core(&two_servers(false));
    let id = c.health().id_at(0, 0, 0).unwrap();
    c.checker_ended(id);
    let (plan, _) = c.reconcile_checkers(&BfdSessions::new());
    assert_eq!(plan.start.len(), 1);
    assert_ne!(plan.start[0].id, id);
    assert!(plan.stop.is_empty(), "{plan:?}");
}

/// keepalived's quorum with hysteresis: lost below `quorum - hysteresis` (the sorry
/// server alone serves), regained only at `quorum + hysteresis`; scripts, alerts and
/// FIFO lines at each change, not in between.
#[test]
fn quorum_is_lost_and_regained_with_hysteresis() {
    let mut t = String::from(
        "global_defs { notify_fifo /tmp/x }\nvirtual_server 127.71.0.2 80 { lb_kind NAT\n \
         protocol TCP\n quorum 2\n hysteresis 1\n sorry_server 127.71.2.9 80\n \
         quorum_up \"/bin/echo up\"\n quorum_down \"/bin/echo down\"\n",
    );
    for i in 1..=4 {
        let _ = writeln!(
            t,
            "real_server 127.71.2.{i} 80 {{ weight 1\n TCP_CHECK {{ connect_timeout 1\n delay_loop 3600 }} }}"
        );
    }
    t.push('}');
    let mut c = core(&t);
    let id = |c: &Core, i: usize| c.health().id_at(0, i, 0).unwrap();
    let served = |c: &Core| -> Vec<String> {
        c.desired().services[0]
            .dests
            .iter()
            .map(|d| d.addr.to_string())
            .collect()
    };
    let mut fx = Vec::new();
    for i in 0..3 {
        assert!(c.event(&changed(id(&c, i), false), 1, &mut fx));
    }
    assert_eq!(
        served(&c),
        ["127.71.2.4"],
        "weight 1 >= quorum - hysteresis"
    );
    assert!(!c.health().quorum_lost(0));
    assert!(!fx.iter().any(|e| matches!(e, Effect::QuorumAlert { .. })));
    fx.clear();
    assert!(c.event(&changed(id(&c, 3), false), 2, &mut fx));
    assert!(c.health().quorum_lost(0));
    assert_eq!(served(&c), ["127.71.2.9"], "the sorry server alone");
    assert!(fx.contains(&Effect::Script(vec!["/bin/echo".into(), "down".into()])));
    assert!(fx.contains(&Effect::QuorumAlert {
        vs: 0,
        up: false,
        weight: 0
    }));
    assert!(fx.contains(&Effect::Fifo("VS [127.71.0.2]:tcp:80 DOWN\n".into())));
    for i in 0..2 {
        assert!(c.event(&changed(id(&c, i), true), 3, &mut fx));
        assert!(
            c.health().quorum_lost(0),
            "regained below quorum + hysteresis"
        );
        assert_eq!(served(&c), ["127.71.2.9"]);
    }
    fx.clear();
    assert!(c.event(&changed(id(&c, 2), true), 4, &mut fx));
    assert!(!c.health().quorum_lost(0), "weight 3 = quorum + hysteresis");
    assert_eq!(served(&c), ["127.71.2.1", "127.71.2.2", "127.71.2.3"]);
    assert!(fx.contains(&Effect::Script(vec!["/bin/echo".into(), "up".into()])));
}

/// A real server's failure: its `notify_down`, an alert, a FIFO line, the history the
/// status view shows; `inhibit_on_failure` keeps it at weight 0 instead.
#[test]
fn a_failure_takes_a_real_server_out_or_inhibits_it() {
    let mut c = core(&two_servers(false));
    let id = c.health().id_at(0, 0, 0).unwrap();
    let mut fx = Vec::new();
    assert!(c.event(&changed(id, false), 1234, &mut fx));
    assert_eq!(
        fx,
        vec![
            Effect::Script(vec!["/bin/echo".into(), "down".into(), "127.71.1.2".into()]),
            Effect::RealServerAlert {
                vs: 0,
                rs: 0,
                up: false,
                checker: "TCP_CHECK"
            },
            Effect::Fifo("RS [127.71.1.2]:tcp:80 [127.71.0.1]:tcp:80 DOWN\n".into()),
            Effect::Changed(Change::RealServer {
                vs: 0,
                rs: 0,
                up: false
            }),
            // Its only real server gone, the service is below the default quorum (1).
            Effect::QuorumAlert {
                vs: 0,
                up: false,
                weight: 0
            },
            Effect::Fifo("VS [127.71.0.1]:tcp:80 DOWN\n".into()),
            Effect::Changed(Change::Quorum { vs: 0, up: false }),
        ]
    );
    let r = c.report(|_| None);
    assert_eq!(r[0].up, Some(false));
    assert_eq!(r[0].failures, 1);
    assert_eq!(r[0].last_change_unix, Some(1234));
    assert_eq!(r[0].last_failure.as_deref(), Some("checker 0 says false"));
    // The same report again changes nothing.
    fx.clear();
    assert!(!c.event(&changed(id, false), 1235, &mut fx));
    assert!(fx.is_empty());
    assert_eq!(c.report(|_| None)[0].failures, 1);
    // What SNMP shows: the quorum lost, the server dead with one failed checker, its
    // weight still the one its checkers give it.
    assert_eq!(
        c.servers(),
        vec![VsReport {
            quorum_up: false,
            real_servers: vec![RsReport {
                alive: false,
                weight: 1,
                failed_checkers: 1
            }]
        }]
    );

    let mut c = core(&two_servers(false).replace("weight 1\n", "weight 1\n inhibit_on_failure\n"));
    let id = c.health().id_at(0, 0, 0).unwrap();
    assert!(c.event(&changed(id, false), 1, &mut fx));
    assert_eq!(live(&c), vec![(ip("127.71.1.2"), 0)]);
}

/// `alpha`: a checker starts with its real server down until a probe succeeds.
#[test]
fn alpha_starts_down() {
    let c = core(&two_servers(false).replace("TCP_CHECK {", "alpha\n TCP_CHECK {"));
    assert_eq!(live(&c), vec![]);
}

/// A runtime change (`rvs adm -e`) survives health events (it is replayed over them),
/// a refused command changes nothing, a reload drops the changes.
#[test]
fn runtime_changes_are_replayed_over_health_and_dropped_by_a_reload() {
    let mut c = core(&two_servers(true));
    let cmd = adm("-e -t 127.71.0.1:80 -r 127.71.1.1:80 -g -w 7");
    let want = c.propose(&cmd).unwrap();
    assert_eq!(want.services[0].dests[0].weight, 7);
    assert_eq!(live(&c)[0].1, 1, "proposed is not committed");
    c.commit(cmd);
    assert_eq!(live(&c)[0], (ip("127.71.1.1"), 7));
    // B fails and comes back: A's runtime weight stays.
    let b = c.health().id_at(0, 1, 0).unwrap();
    let mut fx = Vec::new();
    assert!(c.event(&changed(b, false), 1, &mut fx));
    assert_eq!(live(&c), vec![(ip("127.71.1.1"), 7)]);
    assert!(c.event(&changed(b, true), 2, &mut fx));
    assert_eq!(live(&c), vec![(ip("127.71.1.1"), 7), (ip("127.71.1.2"), 1)]);
    // Refused: a real server that does not exist.
    let bad = adm("-e -t 127.71.0.1:80 -r 127.71.1.9:80 -g -w 3");
    assert!(c.propose(&bad).is_err());
    assert_eq!(c.runtime().len(), 1);
    // A reload refused for errors keeps the change.
    assert!(reload(&mut c, "virtual_server {").is_err());
    assert_eq!(c.runtime().len(), 1);
    assert_eq!(live(&c)[0], (ip("127.71.1.1"), 7));
    // An accepted one drops it: the file is the truth again.
    reload(&mut c, &two_servers(true)).unwrap();
    assert!(c.runtime().is_empty());
    assert_eq!(live(&c), vec![(ip("127.71.1.1"), 1), (ip("127.71.1.2"), 1)]);
}

/// A refused reload keeps the running configuration and its health untouched, and says
/// why with the file's diagnostics; an unreadable line refuses a reload too.
#[test]
fn a_refused_reload_keeps_everything() {
    let mut c = core(&two_servers(true));
    let a = c.health().id_at(0, 0, 0).unwrap();
    let mut fx = Vec::new();
    assert!(c.event(&changed(a, false), 1, &mut fx));
    let err = reload(
        &mut c,
        "virtual_server 127.71.0.1 80 { real_server 1.2.3 80 { } }",
    )
    .unwrap_err();
    assert!(err.starts_with("error: t.conf has "), "{err}");
    assert!(err.contains(KEPT), "{err}");
    let err = reload(
        &mut c,
        &format!("{}\nno_such_keyword 1\n", two_servers(true)),
    )
    .unwrap_err();
    assert!(err.contains("lines rvs cannot read"), "{err}");
    let err = c
        .reload(
            Path::new("t.conf"),
            Err("reading t.conf took more than 30 s".into()),
        )
        .unwrap_err();
    assert_eq!(
        err,
        format!("error: reading t.conf took more than 30 s; {KEPT}")
    );
    assert_eq!(c.config().virtual_servers[0].real_servers.len(), 2);
    assert_eq!(live(&c), vec![(ip("127.71.1.2"), 1)], "A is still down");
    assert_eq!(c.health().id_at(0, 0, 0), Some(a), "A's checker still runs");
}

/// A reload that removes a live real server runs its `notify_down` (keepalived forces
/// omega there); one that was already down runs nothing; shutdown runs `omega` only.
#[test]
fn a_reload_runs_the_removed_servers_notify_down() {
    let mut c = core(&two_servers(true));
    let fx = reload(&mut c, &two_servers(false)).unwrap();
    assert_eq!(
        fx,
        vec![Effect::Script(vec![
            "/bin/echo".into(),
            "down".into(),
            "127.71.1.1".into()
        ])]
    );
    let mut c = core(&two_servers(true));
    let a = c.health().id_at(0, 0, 0).unwrap();
    let mut fx = Vec::new();
    c.event(&changed(a, false), 1, &mut fx);
    assert_eq!(reload(&mut c, &two_servers(false)).unwrap(), vec![]);
    assert!(c.shutdown_scripts().is_empty(), "no omega");
    let c = core(&two_servers(false).replace("protocol TCP\n", "protocol TCP\n omega\n"));
    assert_eq!(c.shutdown_scripts().len(), 1);
}

/// With `-P` (VRRP only) no checker is planned and no service is scripted.
#[test]
fn vrrp_only_plans_no_checkers() {
    let mut c = Core::new(conf(&two_servers(true)), Mode::VrrpOnly);
    let (plan, fx) = c.reconcile_checkers(&BfdSessions::new());
    assert_eq!(plan, CheckerPlan::default());
    assert!(fx.is_empty());
    assert!(c.shutdown_scripts().is_empty());
}

/// `BFD_CHECK` follows a session by name and run: a restarted session restarts its
/// follower; a checker of a session that does not run plans nothing.
#[test]
fn bfd_checkers_follow_their_session_run() {
    let text = "bfd_instance b1 { neighbor_ip 127.71.9.1 }\n\
                virtual_server 127.71.0.3 80 { lb_kind DR\n protocol TCP\n \
                real_server 127.71.3.1 80 { BFD_CHECK { name b1 } } }";
    let mut c = Core::new(conf(text), Mode::Full);
    let (plan, _) = c.reconcile_checkers(&BfdSessions::new());
    assert!(plan.start.is_empty(), "no session runs");
    let mut runs = BfdSessions::from([("b1".to_owned(), 1)]);
    let (plan, _) = c.reconcile_checkers(&runs);
    assert_eq!(plan.start.len(), 1);
    assert!(matches!(&plan.start[0].spec, Spec::Bfd { name, session: 1 } if name == "b1"));
    let (plan, _) = c.reconcile_checkers(&runs);
    assert_eq!((plan.kept, plan.start.len()), (1, 0));
    runs.insert("b1".into(), 2);
    let (plan, _) = c.reconcile_checkers(&runs);
    assert_eq!((plan.kept, plan.start.len(), plan.stop.len()), (0, 1, 1));
}

/// `rs_init_notifies`: a real server that appears runs its `notify_up` at once; a reload
/// that keeps it does not repeat it.
#[test]
fn rs_init_notifies_once() {
    let text = "global_defs { rs_init_notifies }\nvirtual_server 127.71.0.4 80 { lb_kind DR\n \
                protocol TCP\n real_server 127.71.4.1 80 { notify_up \"/bin/echo up\" } }";
    let mut c = Core::new(conf(text), Mode::Full);
    let (_, fx) = c.reconcile_checkers(&BfdSessions::new());
    assert_eq!(
        fx,
        vec![
            Effect::Script(vec!["/bin/echo".into(), "up".into()]),
            Effect::Fifo("RS [127.71.4.1]:tcp:80 [127.71.0.4]:tcp:80 UP\n".into()),
            Effect::Changed(Change::RealServer {
                vs: 0,
                rs: 0,
                up: true
            }),
        ]
    );
    c.reload(Path::new("t.conf"), Ok(parse(text))).unwrap();
    let (_, fx) = c.reconcile_checkers(&BfdSessions::new());
    assert!(fx.is_empty(), "{fx:?}");
}

#[test]
fn file_check_arithmetic() {
    let watch = |weight, reverse| FileWatch {
        path: std::path::PathBuf::new(),
        weight,
        reverse,
        base: 10,
    };
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

/// Configuration drift: what differs between two directors, named.
#[test]
fn a_weight_a_real_server_and_a_vip_are_named() {
    let a = conf(
        "virtual_server 198.18.0.50 80 {\n lb_algo rr\n lb_kind DR\n protocol TCP\n \
         real_server 198.18.0.11 80 {\n weight 1\n }\n real_server 198.18.0.12 80 {\n }\n}\n\
         vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 51\n priority 150\n \
         virtual_ipaddress {\n 198.18.0.50/24\n }\n}\n",
    );
    let b = conf(
        "virtual_server 198.18.0.50 80 {\n lb_algo rr\n lb_kind DR\n protocol TCP\n \
         real_server 198.18.0.11 80 {\n weight 2\n }\n}\n\
         vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 51\n priority 100\n \
         virtual_ipaddress {\n 198.18.0.50/24\n 198.18.0.60/24\n }\n}\n",
    );
    let d = drift::diff(&drift::sections(&a), &drift::sections(&b));
    assert_eq!(
        d,
        vec![
            "virtual_server 198.18.0.50:80 TCP: real_server 198.18.0.11:80 weight 1 DR here, weight 2 DR there",
            "virtual_server 198.18.0.50:80 TCP: real_server 198.18.0.12:80 weight 1 DR here only",
            "vrrp_instance VI_1: virtual_ipaddress 198.18.0.60/24 there only",
        ]
    );
    // Priorities differ and do not count.
    assert!(drift::diff(&drift::sections(&a), &drift::sections(&a)).is_empty());
}

const BGP: &str = "rvs_bgp {\n local_as 65001\n neighbor 198.18.0.1 { remote_as 65000 }\n \
                   community 65000:100\n med 10\n}\n";

fn vips(c: &Core) -> Vec<IpAddr> {
    c.announcements(&c.desired(), |_| true)
        .into_iter()
        .map(|a| a.vip)
        .collect()
}

/// The VIP is announced while its real servers live, not while only its sorry server
/// would answer; drained, nothing is; and the data plane's word counts.
#[test]
fn a_vip_is_announced_while_it_has_live_real_servers() {
    let text = format!(
        "{BGP}virtual_server 198.19.1.10 80 {{ lb_kind DR\n protocol TCP\n \
         sorry_server 198.18.0.99 80\n real_server 198.18.0.11 80 {{ \
         TCP_CHECK {{ connect_timeout 1 }} }} }}\n"
    );
    let mut c = core(&text);
    // keepalived's checkers start with the real server up (no alpha).
    assert_eq!(vips(&c), vec![ip("198.19.1.10")]);
    let a = &c.announcements(&c.desired(), |_| true)[0];
    assert_eq!(a.communities, vec![rvs_types::Community(65000, 100)]);
    assert_eq!(a.med, Some(10));
    // Unserved by the data plane: withdrawn.
    assert!(c.announcements(&c.desired(), |_| false).is_empty());
    let id = c.health().id_at(0, 0, 0).unwrap();
    let mut fx = Vec::new();
    assert!(c.event(&changed(id, false), 1, &mut fx));
    assert!(
        vips(&c).is_empty(),
        "the sorry server alone is not announced"
    );
    assert!(c.event(&changed(id, true), 2, &mut fx));
    assert_eq!(vips(&c), vec![ip("198.19.1.10")]);
    c.set_drained(true);
    assert!(vips(&c).is_empty());
    c.set_drained(false);
    assert_eq!(vips(&c), vec![ip("198.19.1.10")]);
}

/// A VIP with two ports: with `announce_when all` one dead port withdraws it, with
/// `any` it stays; fwmark services are never announced; without `rvs_bgp`, nothing.
#[test]
fn announce_when_decides_for_a_vip_with_several_ports() {
    let vs = |port: u16| {
        format!(
            "virtual_server 198.19.1.10 {port} {{ lb_kind DR\n protocol TCP\n real_server \
             198.18.0.11 {port} {{ TCP_CHECK {{ connect_timeout 1 }} }} }}\n"
        )
    };
    let fwm = "virtual_server fwmark 7 { lb_kind DR\n real_server 198.18.0.11 80 { } }\n";
    for (when, want) in [("all", vec![]), ("any", vec![ip("198.19.1.10")])] {
        let text = format!(
            "{}announce_when {when}\n}}\n{}{}{fwm}",
            BGP.trim_end().trim_end_matches('}'),
            vs(80),
            vs(443)
        );
        let mut c = core(&text);
        assert_eq!(vips(&c), vec![ip("198.19.1.10")], "{when}");
        let id = c.health().id_at(1, 0, 0).unwrap();
        let mut fx = Vec::new();
        c.event(&changed(id, false), 1, &mut fx);
        assert_eq!(vips(&c), want, "{when}");
    }
    let c = core(&vs(80));
    assert!(vips(&c).is_empty());
}
