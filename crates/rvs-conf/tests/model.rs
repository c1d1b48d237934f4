//! Defaults filled as keepalived fills them, and the JSON model (snapshot-tested).

// Tests panic on failure so that the failing line is the report (STYLE.md).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::float_cmp,
    clippy::cast_possible_truncation,
    clippy::items_after_statements
)]

use std::path::Path;

/// A time as the model holds it.
fn secs(s: f64) -> std::time::Duration {
    std::time::Duration::from_secs_f64(s)
}

fn parse(text: &str) -> rvs_conf::Parsed {
    rvs_conf::parse_str(
        Path::new("/t/keepalived.conf"),
        text,
        &rvs_conf::Options {
            config_id: Some("lb1".into()),
            ..Default::default()
        },
    )
}

#[test]
fn surprising_defaults() {
    let p = parse(
        "vrrp_instance V { state MASTER\ninterface eth0\nvirtual_router_id 9\nvirtual_ipaddress {\n198.18.0.1\n}\n}\n\
         virtual_server 198.18.0.1 80 {\npersistence_timeout\nreal_server 198.18.0.2 80 {\nTCP_CHECK {\n}\n}\n}\n",
    );
    let c = &p.config;
    let vi = &c.vrrp_instances[0];
    assert_eq!(
        vi.priority, 255,
        "state MASTER without priority is the address owner"
    );
    assert_eq!(vi.advert_int, secs(1.0));
    assert_eq!(vi.version, 2);
    let vs = &c.virtual_servers[0];
    assert_eq!(
        vs.protocol,
        Some(rvs_conf::model::Protocol::Udp),
        "omitted protocol is UDP"
    );
    assert_eq!(vs.lb_algo, rvs_conf::model::Scheduler::Wlc);
    assert_eq!(vs.forwarding.method, rvs_conf::model::Method::Nat);
    assert_eq!(vs.persistence_timeout, Some(360));
    assert_eq!(vs.delay_loop, secs(60.0));
    let ck = &vs.real_servers[0].checkers[0];
    assert_eq!(
        (
            ck.connect_timeout,
            ck.retry,
            ck.delay_before_retry,
            ck.delay_loop
        ),
        (secs(5.0), 1, secs(1.0), secs(60.0))
    );
    let msgs: Vec<&str> = p.diagnostics.iter().map(|d| d.message.as_str()).collect();
    assert!(
        msgs.iter()
            .any(|m| m.contains("no protocol set - defaulting to UDP")),
        "{msgs:?}"
    );
    assert!(p.keepalived_rejects() && p.errors() == 0);
}

#[test]
fn checker_defaults_by_type() {
    let p = parse(
        "virtual_server 198.18.0.1 80 {\nprotocol TCP\nlb_algo rr\nlb_kind NAT\ndelay_loop 7\n\
         real_server 198.18.0.2 80 {\nHTTP_GET {\nurl {\npath /\n}\n}\nDNS_CHECK {\n}\nMISC_CHECK {\nmisc_path /bin/true\n}\n}\n}\n",
    );
    let cks = &p.config.virtual_servers[0].real_servers[0].checkers;
    assert_eq!(
        (cks[0].retry, cks[0].delay_before_retry),
        (1, secs(3.0)),
        "HTTP_GET"
    );
    assert_eq!(
        (cks[1].retry, cks[1].delay_before_retry),
        (3, secs(7.0)),
        "DNS_CHECK: dbr = delay_loop"
    );
    assert_eq!(cks[2].retry, 0, "MISC_CHECK");
    match &cks[2].kind {
        rvs_conf::model::CheckKind::Misc(m) => {
            assert_eq!(m.misc_timeout, secs(7.0), "misc_timeout = VS delay_loop");
        }
        k => panic!("{k:?}"),
    }
}

#[test]
fn vrrp_rounding_and_v3() {
    let p = parse("vrrp_instance V {\ninterface eth0\nvirtual_router_id 9\nversion 3\nadvert_int 0.123\nvirtual_ipaddress {\nfd00:198:18::1\n}\n}\n");
    let vi = &p.config.vrrp_instances[0];
    assert_eq!(vi.advert_int, secs(0.12));
    assert_eq!(vi.family, rvs_conf::model::Family::Inet6);
    let p = parse("vrrp_instance V {\ninterface eth0\nvirtual_router_id 9\nadvert_int 2.4\nvirtual_ipaddress {\n198.18.0.1\n}\n}\n");
    assert_eq!(p.config.vrrp_instances[0].advert_int, secs(2.0));
}

#[test]
fn json_snapshots() {
    for name in [
        "seeds/seed000-master.repaired.conf",
        "seeds/seed001.repaired.conf",
        "corpus/03-http-get.conf",
        "corpus/12-vs-group.conf",
        "corpus/13-sync-group-and-scripts.conf",
        "corpus/02-all-schedulers.conf",
    ] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures")
            .join(name);
        let p = rvs_conf::parse_file(
            &path,
            &rvs_conf::Options {
                config_id: Some("lb1".into()),
                ..Default::default()
            },
        );
        let json = serde_json::to_string_pretty(&p.config).unwrap();
        let snap = name.replace(['/', '.'], "_");
        insta::assert_snapshot!(snap, json);
    }
}

#[test]
fn lvs_sync_daemon_options_and_errors() {
    let inst = "vrrp_instance VI_1 { state BACKUP\ninterface eth1\nvirtual_router_id 7\npriority 100\nvirtual_ipaddress {\n198.18.0.1\n}\n}\n";
    let p = parse(&format!(
        "global_defs {{\nlvs_sync_daemon eth1 VI_1 id 7 maxlen 1400 port 8848 ttl 2 group 224.0.0.82\n}}\n{inst}"
    ));
    let d = p.config.global_defs.lvs_sync_daemon.as_ref().unwrap();
    assert_eq!(
        (d.interface.as_str(), d.instance.as_deref()),
        ("eth1", Some("VI_1"))
    );
    assert_eq!(
        (d.id, d.maxlen, d.port, d.ttl),
        (Some(7), Some(1400), Some(8848), Some(2))
    );
    assert_eq!(d.group, Some("224.0.0.82".parse().unwrap()));
    assert!(p.diagnostics.is_empty(), "{:?}", p.diagnostics);

    // Issue #17 bug 4, keepalived 2.2.7's forms: `inst NAME`, and options right after the
    // interface (no instance: accepted, no daemon runs, and rvs says so).
    let p = parse(&format!(
        "global_defs {{\nlvs_sync_daemon eth1 inst VI_1 id 5\n}}\n{inst}"
    ));
    let d = p.config.global_defs.lvs_sync_daemon.as_ref().unwrap();
    assert_eq!((d.instance.as_deref(), d.id), (Some("VI_1"), Some(5)));
    assert!(p.diagnostics.is_empty(), "{}", p.render());
    let p = parse(&format!(
        "global_defs {{\nlvs_sync_daemon eth1 id 5 port 8848\n}}\n{inst}"
    ));
    let d = p.config.global_defs.lvs_sync_daemon.as_ref().unwrap();
    assert_eq!(
        (d.instance.as_deref(), d.id, d.port),
        (None, Some(5), Some(8848))
    );
    assert!(!p.keepalived_rejects() && p.errors() == 0, "{}", p.render());
    assert!(p
        .render()
        .contains("names no vrrp_instance: no sync daemon runs"));

    // What keepalived reports and ignores: bad values, unknown options, a second line; an
    // unknown instance it says nothing about (and runs no daemon).
    let bad = parse("global_defs {\nlvs_sync_daemon eth1 VI_1 group 198.18.0.1 speed 3 id 256\nlvs_sync_daemon eth2 VI_1\n}\n");
    assert_eq!(bad.errors(), 0, "{}", bad.render());
    let msgs: Vec<String> = bad
        .diagnostics
        .iter()
        .map(|d| format!("{}:{} {}", d.loc.line, d.loc.col, d.message))
        .collect();
    for want in [
        "2:33 lvs_sync_daemon group '198.18.0.1' is not a multicast address",
        "2:44 unknown lvs_sync_daemon option 'speed'",
        "2:55 invalid lvs_sync_daemon id '256'",
        "3:1 lvs_sync_daemon has already been specified (on eth1)",
        "2:22 lvs_sync_daemon: unknown vrrp_instance 'VI_1': no sync daemon runs",
    ] {
        assert!(msgs.iter().any(|m| m.starts_with(want)), "{want}: {msgs:?}");
    }
    let d = bad.config.global_defs.lvs_sync_daemon.as_ref().unwrap();
    assert_eq!((d.interface.as_str(), d.id, d.group), ("eth1", None, None));
    let none = parse("global_defs {\nlvs_sync_daemon\n}\n");
    assert!(none.config.global_defs.lvs_sync_daemon.is_none());
    assert!(none.keepalived_rejects());
}

#[test]
fn track_process_options_and_errors() {
    let p = parse(
        "vrrp_track_process web {\nprocess nginx -g daemon\nparam_match initial\nweight 20 reverse\nquorum 2\nquorum_max 4\ndelay 1.5\nterminate_delay 3\nfull_command\n}\n\
         vrrp_instance V { interface eth0\nvirtual_router_id 9\ntrack_process {\nweb weight -30\n}\nvirtual_ipaddress {\n198.18.0.1\n}\n}\n",
    );
    assert!(
        p.diagnostics.iter().all(|d| !d.is_error()),
        "{:?}",
        p.diagnostics
    );
    let t = &p.config.track_processes[0];
    assert_eq!(t.process.as_deref(), Some("nginx"));
    assert_eq!(t.params, ["-g", "daemon"]);
    assert_eq!(t.param_match, "initial");
    assert_eq!((t.weight, t.weight_reverse), (20, true));
    assert_eq!((t.quorum, t.quorum_max), (2, Some(4)));
    assert_eq!((t.fork_delay, t.terminate_delay), (secs(1.5), secs(3.0)));
    assert!(t.full_command);
    let r = &p.config.vrrp_instances[0].trackers.track_process[0];
    assert_eq!((r.name.as_str(), r.weight), ("web", Some(-30)));

    let bad = parse(
        "vrrp_track_process a {\nquorum 3\nquorum_max 2\nparam_match fuzzy\n}\n\
         vrrp_instance V { interface eth0\nvirtual_router_id 9\ntrack_process {\nnope\n}\nvirtual_ipaddress {\n198.18.0.1\n}\n}\n",
    );
    let msgs: Vec<String> = bad
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(|d| format!("{}:{} {}", d.loc.line, d.loc.col, d.message))
        .collect();
    for want in [
        "1:1 vrrp_track_process a has no 'process'",
        "1:1 vrrp_track_process a: quorum_max 2 is below quorum 3",
        "4:1 param_match needs",
    ] {
        assert!(msgs.iter().any(|m| m.starts_with(want)), "{want}: {msgs:?}");
    }
    // An unknown tracked process is ignored with a warning, as keepalived ignores it.
    assert!(
        bad.diagnostics.iter().any(|d| !d.is_error()
            && d.loc.line == 9
            && d.message
                .contains("unknown vrrp_track_process 'nope': ignored")),
        "{}",
        bad.render()
    );
}

#[test]
fn notify_deleted_with_and_without_a_script() {
    let p = parse(
        "vrrp_instance A { interface eth0\nvirtual_router_id 9\nnotify_deleted\nvirtual_ipaddress {\n198.18.0.1\n}\n}\n\
         vrrp_instance B { interface eth0\nvirtual_router_id 10\nnotify_deleted /bin/true\nvirtual_ipaddress {\n198.18.0.2\n}\n}\n\
         vrrp_instance C { interface eth0\nvirtual_router_id 11\nvirtual_ipaddress {\n198.18.0.3\n}\n}\n",
    );
    let n: Vec<(bool, bool)> = p
        .config
        .vrrp_instances
        .iter()
        .map(|v| (v.notify.report_deleted, v.notify.notify_deleted.is_some()))
        .collect();
    assert_eq!(n, [(true, false), (true, true), (false, false)]);
}

#[test]
fn keywords_rvs_does_not_apply_are_warned_about() {
    let p = parse(
        "vrrp_instance V { interface eth0\nvirtual_router_id 9\nvirtual_rules {\nfrom 198.18.1.0/24 table 5 preference 9 realms 4\n}\nuse_vmac_addr\nvirtual_ipaddress {\n198.18.0.1\n}\n}\n",
    );
    let msgs: Vec<String> = p
        .diagnostics
        .iter()
        .map(|d| format!("{}:{} {}", d.loc.line, d.loc.col, d.message))
        .collect();
    for want in [
        "4:41 rule option 'realms' is not applied by rvs: this rule is not installed",
        "6:1 'use_vmac_addr' is not applied by rvs",
    ] {
        assert!(msgs.iter().any(|m| m.starts_with(want)), "{want}: {msgs:?}");
    }
    assert!(p.diagnostics.iter().all(|d| !d.is_error()), "{msgs:?}");
    assert_eq!(p.unapplied(), 2, "{msgs:?}");
}

/// `umask`, read as keepalived reads it: C's number bases, or permission names.
#[test]
fn umask_reads_numbers_and_names() {
    for (text, want) in [
        ("022", Some(0o22)),
        ("0077", Some(0o77)),
        ("18", Some(18)),
        ("IWGRP|IWOTH", Some(0o22)),
        ("IRWXG | IRWXO", Some(0o77)),
        ("bogus", None),
        ("0999", None),
    ] {
        let p = parse(&format!("global_defs {{\n  umask {text}\n}}\n"));
        assert_eq!(p.config.global_defs.umask, want, "{text}: {}", p.render());
        assert_eq!(
            p.keepalived_rejects(),
            want.is_none(),
            "{text}: {}",
            p.render()
        );
    }
}

/// `vrrp_garp_extra_if` / `garp_extra_if [all] SECS` as keepalived reads them: `all`
/// anywhere, 1..86400 globally and 0..86400 in an instance (0: off); a bad value or no
/// time is a configuration error and leaves the setting alone.
#[test]
fn garp_extra_if_reads_as_keepalived_reads_it() {
    let p = parse(
        "global_defs {\nvrrp_garp_extra_if 100 all\n}\nvrrp_instance V { interface eth0\n\
         virtual_router_id 9\ngarp_extra_if 0\nvirtual_ipaddress {\n198.18.0.1\n}\n}\n\
         vrrp_instance W { interface eth0\nvirtual_router_id 10\ngarp_extra_if all\n\
         virtual_ipaddress {\n198.18.0.2\n}\n}\n",
    );
    let g = p.config.global_defs.vrrp_garp_extra_if.unwrap();
    assert_eq!((g.secs, g.all), (100, true));
    let v = p.config.vrrp_instances[0].garp_extra_if.unwrap();
    assert_eq!((v.secs, v.all), (0, false));
    assert_eq!(p.config.vrrp_instances[1].garp_extra_if, None);
    assert!(
        p.diagnostics
            .iter()
            .any(|d| d.message == "garp_extra_if specified without time - ignoring"),
        "{:?}",
        p.diagnostics
    );
    let p = parse("global_defs {\nvrrp_garp_extra_if 0\n}\n");
    assert_eq!(p.config.global_defs.vrrp_garp_extra_if, None);
    assert!(p.keepalived_rejects());
}

#[test]
fn sync_peers_and_key_are_read_and_mixed_families_refused() {
    let p = parse(
        "global_defs {\nrvs_sync_peer 198.18.0.1\nrvs_sync_peer 198.18.0.2\nrvs_sync_key \"a secret\"\n}\n",
    );
    let g = &p.config.global_defs;
    assert_eq!(
        g.sync_peers,
        vec![
            "198.18.0.1".parse::<std::net::IpAddr>().unwrap(),
            "198.18.0.2".parse().unwrap()
        ]
    );
    assert_eq!(g.sync_key.as_deref(), Some("a secret"));
    assert!(p.diagnostics.is_empty(), "{}", p.render());
    let p = parse("global_defs {\nrvs_sync_peer 198.18.0.1\nrvs_sync_peer fd00:198:18::2\n}\n");
    assert_eq!(p.errors(), 1, "{}", p.render());
    assert!(
        p.render()
            .contains("keepalived.conf:3:1: error: rvs_sync_peer: the sync peers must all be IPv4 or all IPv6"),
        "{}",
        p.render()
    );
    let p = parse("global_defs {\nrvs_sync_peer not-an-address\n}\n");
    assert!(
        p.errors() >= 1 && p.config.global_defs.sync_peers.is_empty(),
        "{}",
        p.render()
    );
}
