//! keepalived.conf as other people write it (issue "keepalived.conf fidelity"): the
//! cases found on `../shared/corpus/wild` (read in place, never copied), each also as a
//! small inline case so it stays checked where the corpus is absent.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

fn parse(text: &str) -> rvs_conf::Parsed {
    rvs_conf::parse_str(
        Path::new("/nonexistent/k.conf"),
        text,
        &rvs_conf::Options::default(),
    )
}

fn corpus(name: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/corpus/wild")
        .join(name);
    assert!(
        p.exists(),
        "{} is missing: the wild corpus lives in ../shared beside the repository",
        p.display()
    );
    p
}

/// A line whose substitution starts with `#` is a comment (keepalived strips comments
/// after substitution): `$TEST=${_HASH}` then `$TEST track_file …` comments blocks out.
#[test]
fn a_substitution_that_starts_with_a_hash_is_a_comment() {
    let p = parse(
        "$OFF=${_HASH}\n$OFF track_file TF {\n$OFF     file /tmp/x\n$OFF }\n\
         virtual_server 198.18.0.1 80 {\n    protocol TCP\n    lvs_sched rr\n    lvs_method NAT\n    real_server 198.18.0.2 80 {\n$OFF        weight 7\n    }\n}\n",
    );
    assert_eq!(p.diagnostics.len(), 0, "{}", p.render());
    assert!(p.config.track_files.is_empty());
    assert_eq!(p.config.virtual_servers[0].real_servers[0].weight, 1);
    // In the middle of a value, `${_HASH}` stays a '#'.
    let p = parse("global_defs {\n    router_id a${_HASH}b\n}\n");
    assert_eq!(
        p.config.global_defs.router_id.as_deref(),
        Some("a#b"),
        "{}",
        p.render()
    );
}

#[test]
#[ignore = "reads ../shared/corpus/wild beside the repository: ./test.sh runs it as root and in CI"]
fn corpus_060_comments_out_with_hash_substitutions() {
    let p = rvs_conf::parse_file(
        &corpus("060-pq1756-filecheck-vmac.conf"),
        &rvs_conf::Options::default(),
    );
    let text = p.render();
    assert!(!text.contains("unknown keyword '#'"), "{text}");
    assert!(!text.contains("unknown keyword '$TEST'"), "{text}");
}

/// `${_PWD}` of a file named without a directory is the current directory (it was
/// empty, so `include ${_PWD}/prio.conf` read `/prio.conf`).
#[test]
fn pwd_of_a_bare_file_name_is_the_current_directory() {
    let dir = std::env::temp_dir().join(format!("rvs-wild-pwd-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("k.conf"), "include ${_PWD}/inc.conf\n").unwrap();
    std::fs::write(
        dir.join("inc.conf"),
        "global_defs {\n    router_id from_inc\n}\n",
    )
    .unwrap();
    // As an operator runs `keepalived -f keepalived.conf` in the file's directory.
    let here = std::env::current_dir().unwrap();
    std::env::set_current_dir(&dir).unwrap();
    let p = rvs_conf::parse_file(Path::new("k.conf"), &rvs_conf::Options::default());
    std::env::set_current_dir(here).unwrap();
    assert_eq!(
        p.config.global_defs.router_id.as_deref(),
        Some("from_inc"),
        "{}",
        p.render()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Addresses with a prefix or an IPv4 range: keepalived uses the address and ignores the
/// rest; rvs does the same with a note (it rejected the file).
#[test]
fn addresses_with_a_prefix_or_range_use_the_address() {
    let p = parse(
        "vrrp_instance VI {\n    state MASTER\n    interface eth0\n    virtual_router_id 51\n    priority 100\n\
         \x20   unicast_src_ip 192.168.0.91/24\n    unicast_peer {\n        192.168.0.92/24\n        192.168.0.93-99\n    }\n\
         \x20   virtual_ipaddress {\n        192.168.0.100\n    }\n}\n\
         virtual_server 192.168.0.10/32 80 {\n    protocol TCP\n    lvs_sched rr\n    lvs_method NAT\n    real_server 192.168.0.20 80 {\n    }\n}\n",
    );
    assert_eq!(p.errors(), 0, "{}", p.render());
    let vi = &p.config.vrrp_instances[0];
    assert_eq!(vi.unicast_src_ip, Some("192.168.0.91".parse().unwrap()));
    let peers: Vec<String> = vi
        .unicast_peer
        .iter()
        .map(|u| u.address.to_string())
        .collect();
    assert_eq!(peers, ["192.168.0.92", "192.168.0.93"]);
    assert!(
        p.render().contains("'/24' after the address is ignored"),
        "{}",
        p.render()
    );
    assert!(!p.keepalived_rejects(), "{}", p.render());
}

/// `DNS_CHECK` `type RRSIG` and `DNSKEY`, which keepalived supports.
#[test]
fn dns_check_takes_the_dnssec_types() {
    for t in ["RRSIG", "DNSKEY", "rrsig"] {
        let p = parse(&format!(
            "virtual_server 198.18.0.1 53 {{\n    protocol UDP\n    lvs_sched rr\n    lvs_method NAT\n    \
             real_server 198.18.0.2 53 {{\n        DNS_CHECK {{\n            type {t}\n        }}\n    }}\n}}\n"
        ));
        assert_eq!(p.errors(), 0, "{t}: {}", p.render());
    }
}

/// What keepalived's `-t` counts as configuration errors and `--strict` must too: an
/// `auth_pass` longer than 8 characters, `protocol` in a fwmark service. Plain `rvs check`
/// still runs them (warnings), as keepalived runs them.
#[test]
fn strict_counts_what_keepalived_counts() {
    let p = parse(
        "vrrp_instance VI {\n    state MASTER\n    interface eth0\n    virtual_router_id 51\n    priority 100\n\
         \x20   authentication {\n        auth_type PASS\n        auth_pass 123456789\n    }\n\
         \x20   virtual_ipaddress {\n        192.168.0.100\n    }\n}\n",
    );
    assert_eq!(p.errors(), 0, "{}", p.render());
    assert!(p.keepalived_rejects(), "{}", p.render());
    let p = parse(
        "virtual_server fwmark 7 {\n    protocol TCP\n    lvs_sched rr\n    lvs_method DR\n    \
         real_server 198.18.0.2 80 {\n    }\n}\n",
    );
    assert_eq!(p.errors(), 0, "{}", p.render());
    assert!(p.keepalived_rejects(), "{}", p.render());
    assert!(p
        .render()
        .contains("'protocol' is ignored for a fwmark service"));
}

/// Issue #17 bug 6: keepalived 2.2.7 knows `nb_get_retry` (a deprecated `retry`) in
/// `HTTP_GET` and `SSL_GET` only; in `TCP_CHECK` (and the other checkers) it is an
/// unknown keyword and the retry count keeps its default. rvs applied it everywhere, so
/// the same file made rvs's checker retry 3 times where keepalived's tried once.
#[test]
fn nb_get_retry_applies_only_where_keepalived_knows_it() {
    let p = parse(
        "virtual_server 198.18.0.1 80 {\n    lvs_sched rr\n    lvs_method NAT\n    protocol TCP\n    \
         real_server 198.18.0.2 80 {\n        TCP_CHECK {\n            nb_get_retry 3\n        }\n        \
         HTTP_GET {\n            url {\n                path /\n            }\n            nb_get_retry 2\n        }\n    }\n}\n",
    );
    assert_eq!(p.errors(), 0, "{}", p.render());
    let checkers = &p.config.virtual_servers[0].real_servers[0].checkers;
    assert_eq!(checkers[0].kind.name(), "TCP_CHECK");
    assert_eq!(checkers[0].retry, 1, "TCP_CHECK keeps keepalived's default");
    assert_eq!(checkers[1].kind.name(), "HTTP_GET");
    assert_eq!(
        checkers[1].retry, 2,
        "HTTP_GET applies it, as keepalived does"
    );
    let text = p.render();
    assert!(
        text.contains("nb_get_retry is not a TCP_CHECK keyword: ignored"),
        "{text}"
    );
    // keepalived -t counts both (unknown keyword; deprecated keyword) as errors.
    assert!(p.keepalived_rejects());
}

/// Issue #17 bug 9: keepalived 2.2.7 runs a file that defines a `virtual_server` or a
/// `virtual_server_group` twice (its `-t` says nothing): plain `rvs check` must not
/// reject it. rvs warns at the second definition and runs the first.
#[test]
fn a_service_or_group_defined_twice_is_a_warning_and_the_first_runs() {
    let vs = |sched: &str, rs: &str| {
        format!(
            "virtual_server 198.18.0.1 80 {{\n    lvs_sched {sched}\n    lvs_method NAT\n    protocol TCP\n    \
             real_server {rs} 80 {{\n        weight 1\n    }}\n}}\n"
        )
    };
    let p = parse(&format!(
        "{}{}",
        vs("rr", "198.18.0.2"),
        vs("wrr", "198.18.0.3")
    ));
    assert_eq!(p.errors(), 0, "{}", p.render());
    assert!(!p.keepalived_rejects(), "{}", p.render());
    assert!(
        p.render()
            .contains("is defined twice: rvs runs the first definition"),
        "{}",
        p.render()
    );
    assert_eq!(p.config.virtual_servers.len(), 1);
    let first = &p.config.virtual_servers[0];
    assert_eq!(first.real_servers[0].address.to_string(), "198.18.0.2");
    let p = parse(
        "virtual_server_group G {\n    198.18.0.1 80\n}\nvirtual_server_group G {\n    198.18.0.5 80\n}\n\
         virtual_server group G {\n    lvs_sched rr\n    lvs_method NAT\n    protocol TCP\n    \
         real_server 198.18.0.2 80 {\n        weight 1\n    }\n}\n",
    );
    assert_eq!(p.errors(), 0, "{}", p.render());
    assert!(!p.keepalived_rejects(), "{}", p.render());
    assert_eq!(p.config.virtual_server_groups.len(), 1);
    assert!(
        p.render().contains("the first definition is used"),
        "{}",
        p.render()
    );
}

/// A `{` that no keyword opens (after an unknown keyword, after a keyword that takes no
/// block, or `${NAME}` left undefined) is ignored, as keepalived 2.2.7 ignores it ("Unexpected
/// '{' - ignoring"): what follows belongs to the enclosing block and the next `}` ends that
/// block. rvs skipped the block instead (and rejected the file), so the same file meant
/// something else, or did not run at all (062 with `router_id ${NAME}`).
#[test]
fn a_stray_brace_is_ignored_as_keepalived_ignores_it() {
    let p = parse(
        "vrrp_instance X {\n    interface eth0\n    virtual_router_id 5\n    bogus {\n        \
         priority 50\n    }\n    advert_int 2\n}\n",
    );
    assert_eq!(p.errors(), 0, "{}", p.render());
    assert!(p.keepalived_rejects(), "{}", p.render());
    let out = p.render();
    assert!(out.contains("4:11: warning: unexpected '{'"), "{out}");
    // `priority 50` is the instance's, and `advert_int` fell out of it with the `}`.
    let vi = &p.config.vrrp_instances[0];
    assert_eq!(vi.priority, 50, "{out}");
    assert!(
        out.contains("7:5: warning: unknown keyword 'advert_int'"),
        "{out}"
    );
    assert!(out.contains("8:1: warning: extra '}' found"), "{out}");

    // A keyword that takes no block, as an undefined `${NAME}` makes it.
    let p = parse("global_defs {\n    router_id ${NAME}\n    script_user root\n}\n");
    assert_eq!(p.errors(), 0, "{}", p.render());
    let out = p.render();
    assert!(out.contains("'router_id' takes no block"), "{out}");
    assert!(out.contains("unknown keyword 'NAME'"), "{out}");
    assert!(
        out.contains("3:5: warning: unknown keyword 'script_user'"),
        "{out}"
    );
}

/// 062 (a reproduction kept by keepalived's maintainer) defines `$VI` over many lines, with
/// blocks commented out inside it (`#    track_bfd { \`). keepalived looks for the line's
/// closing `\` before it removes the comment, so those lines continue the definition; rvs
/// ended the definition there and read the rest of the instance as stray top-level lines.
/// With `-i high` (the ids its `@high` lines name) the file reads cleanly; without, its
/// `${NAME}` is undefined and keepalived cuts `global_defs` short, as rvs now does, and the
/// two instances share VRID 253 on one interface, which keepalived rejects too.
#[test]
#[ignore = "reads ../shared/corpus/wild beside the repository: ./test.sh runs it as root and in CI"]
fn corpus_062_multi_line_definitions_with_comments() {
    let path = corpus("062-pq751-bfd-check-syncgroup.conf");
    let high = rvs_conf::Options {
        config_id: Some("high".into()),
        ..rvs_conf::Options::default()
    };
    let p = rvs_conf::parse_file(&path, &high);
    assert_eq!(p.errors(), 0, "{}", p.render());
    let vi0 = p
        .config
        .vrrp_instances
        .iter()
        .find(|v| v.name == "VI_0")
        .expect("VI_0 from the $VI definition");
    assert_eq!(vi0.interface.as_deref(), Some("eth0"));
    assert_eq!(vi0.trackers.track_interface[0].name, "eth4");

    let p = rvs_conf::parse_file(&path, &rvs_conf::Options::default());
    let errors: Vec<&str> = p
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(|d| d.message.as_str())
        .collect();
    assert_eq!(
        errors,
        ["(VI_1) virtual_router_id 253 is already used on wlp3s0 by VI_0"],
        "{}",
        p.render()
    );
    assert!(p.render().contains("'router_id' takes no block"));
}

/// The `\` that continues a multi-line definition counts before the comment is removed,
/// as keepalived counts it: `# text \` and `value # text \` continue, a comment or blank
/// line without it ends the definition.
#[test]
fn a_comment_ending_in_backslash_continues_a_definition() {
    for text in [
        "$G= \\\nglobal_defs { \\\n# a comment { \\\n router_id r1 \\\n}\n$G\n",
        "$G= \\\nglobal_defs { \\\n router_id r1 # comment \\\n}\n$G\n",
        "$G=global_defs { # c \\\n router_id r1 \\\n}\n$G\n",
    ] {
        let p = parse(text);
        assert_eq!(p.diagnostics.len(), 0, "{text}\n{}", p.render());
        assert_eq!(
            p.config.global_defs.router_id.as_deref(),
            Some("r1"),
            "{text}"
        );
    }
    // Ended by a comment line without `\`: `router_id` is read outside global_defs.
    let p = parse("$G= \\\nglobal_defs { \\\n# a comment\n router_id r1 \\\n}\n$G\n");
    assert!(
        p.render().contains("unknown keyword 'router_id'"),
        "{}",
        p.render()
    );
}

/// keepalived's `-t` refuses scripts without `enable_script_security` (exit 6) only when a
/// script it would run exists on the checking host; the samples name scripts that do not
/// exist there, and it says nothing. `rvs check` judges the host the same way, and still
/// advises where no script exists yet.
#[test]
fn script_security_is_judged_on_the_checking_host() {
    let conf = |script: &str| {
        format!(
            "vrrp_script s {{\n    script \"{script} arg\"\n}}\nvrrp_instance V {{\n    \
             interface eth0\n    virtual_router_id 9\n    track_script {{\n        s\n    }}\n    \
             virtual_ipaddress {{\n        198.18.0.1\n    }}\n}}\n"
        )
    };
    let p = parse(&conf("/bin/sh"));
    assert!(p.keepalived_rejects(), "{}", p.render());
    assert!(
        p.render().contains("/bin/sh exists on this host"),
        "{}",
        p.render()
    );
    let p = parse(&conf("/nonexistent/rvs-test-script.sh"));
    assert!(!p.keepalived_rejects(), "{}", p.render());
    assert!(p
        .render()
        .contains("none of the scripts exists on this host"));
    let p = parse(&format!(
        "global_defs {{\n    enable_script_security\n}}\n{}",
        conf("/bin/sh")
    ));
    assert!(!p.render().contains("SECURITY VIOLATION"), "{}", p.render());
}

/// Issue #17 bug 7, what keepalived 2.2.7's `-t` counts and rvs did not: AH authentication
/// with `state MASTER` (005: the instance starts as BACKUP), `track_interface` naming the
/// instance's own interface (074: ignored), and a `script_user` that does not exist on
/// the checking host (069, 080: no script runs).
#[test]
fn what_keepalived_counts_on_instances_and_script_users() {
    let inst = |extra: &str| {
        format!(
            "vrrp_instance V {{\n    state MASTER\n    interface eth0\n    virtual_router_id 9\n{extra}    \
             virtual_ipaddress {{\n        198.18.0.1\n    }}\n}}\n"
        )
    };
    let p = parse(&inst(
        "    authentication {\n        auth_type AH\n        auth_pass secret\n    }\n",
    ));
    assert!(p.keepalived_rejects(), "{}", p.render());
    assert!(
        p.render().contains("incompatible with AH"),
        "{}",
        p.render()
    );
    assert_eq!(
        p.config.vrrp_instances[0].state,
        rvs_conf::model::VrrpState::Backup
    );
    let p = parse(&inst(
        "    track_interface {\n        eth0 weight 10\n        eth1\n    }\n",
    ));
    assert!(p.keepalived_rejects(), "{}", p.render());
    assert!(p
        .render()
        .contains("track_interface eth0 is the instance's own interface"));
    let names: Vec<&str> = p.config.vrrp_instances[0]
        .trackers
        .track_interface
        .iter()
        .map(|t| t.name.as_str())
        .collect();
    assert_eq!(names, ["eth1"]);
    for (user, bad) in [
        ("rvs-no-such-user-x", true),
        ("root", false),
        ("root root", false),
        ("root rvs-no-such-group", true),
    ] {
        let p = parse(&format!("global_defs {{\n    script_user {user}\n}}\n"));
        assert_eq!(p.keepalived_rejects(), bad, "{user}: {}", p.render());
        assert_eq!(p.errors(), 0);
    }
    let p = parse("global_defs {\n    script_user root root\n}\n");
    assert_eq!(
        p.config.global_defs.script_user.as_deref(),
        Some("root:root")
    );
}

/// Issue #17 bug 7: `virtual_routes` / `virtual_rules` (and the `static_` ones) were not
/// parsed at all, so `to 192.168.100./24` passed (022). They are read as keepalived 2.2.7
/// reads them (015, 021, 022, 024), and what its `-t` counts, `--strict` counts.
#[test]
fn routes_and_rules_are_read_as_keepalived_reads_them() {
    let inst = |block: &str| {
        format!(
            "vrrp_instance V {{\n    interface eth0\n    virtual_router_id 9\n    \
             virtual_ipaddress {{\n        198.18.0.1/24\n    }}\n{block}}}\n"
        )
    };
    // Clean lines: only the "not applied yet" note, which --strict does not count.
    let p = parse(&inst(
        "    virtual_routes {\n        src 198.18.0.1 198.18.5.0/24 via 198.18.0.254 dev eth0\n        \
         blackhole 198.18.6.0/24 no_track\n        default via 198.18.0.254 dev eth0 table 100 mtu lock 1400\n    }\n    \
         virtual_rules {\n        from 198.18.0.5 table 100 preference 100\n        to all lookup 5 prio 7 no_track\n    }\n",
    ));
    assert!(!p.keepalived_rejects(), "{}", p.render());
    let vi = &p.config.vrrp_instances[0];
    assert_eq!(vi.virtual_routes.len(), 3);
    assert_eq!(vi.virtual_routes[0].dest.as_deref(), Some("198.18.5.0/24"));
    assert_eq!(vi.virtual_routes[0].via.as_deref(), Some("198.18.0.254"));
    assert_eq!(vi.virtual_routes[2].table, Some(100));
    assert_eq!(vi.virtual_rules[1].preference, Some(7));
    // virtual_routes are installed now; a line with an option rvs cannot install is said.
    assert!(!p.render().contains("'virtual_routes' is not applied"));
    assert!(
        p.render()
            .contains("route option 'mtu' is not applied by rvs: this route is not installed"),
        "{}",
        p.render()
    );
    // So are the rules, with every `ip rule` selector rvs installs.
    assert!(!p.render().contains("'virtual_rules' is not applied"));
    let r = parse(&inst(
        "    virtual_rules {\n        not from 198.18.0.0/24 to 198.19.0.0/16 iif eth0 oif eth1 fwmark 0x10/0xff tos 0x10 \
         suppress_prefixlength 0 lookup main preference 5\n        from all goto 9 prio 8\n        \
         to 198.18.9.0/24 blackhole preference 4\n        from all realms 4 preference 3\n    }\n",
    ));
    let rules = &r.config.vrrp_instances[0].virtual_rules;
    assert_eq!(rules.len(), 4, "{}", r.render());
    assert!(rules[0].invert);
    assert_eq!(rules[0].iif.as_deref(), Some("eth0"));
    assert_eq!(rules[0].oif.as_deref(), Some("eth1"));
    assert_eq!(rules[0].fwmark.as_deref(), Some("0x10/0xff"));
    assert_eq!(rules[0].tos.as_deref(), Some("0x10"));
    assert_eq!(rules[0].suppress_prefixlength, Some(0));
    assert_eq!(rules[1].goto, Some(9));
    assert_eq!(rules[2].kind.as_deref(), Some("blackhole"));
    assert_eq!(rules[3].unsupported, ["realms"]);
    assert!(
        r.render()
            .contains("rule option 'realms' is not applied by rvs: this rule is not installed"),
        "{}",
        r.render()
    );
    // Each thing keepalived counts.
    for (block, want) in [
        (
            "virtual_routes {\n 198.18.5.0/24 via 198.18.0.254\n }\n",
            "cannot track route 198.18.5.0/24 with no interface",
        ),
        (
            "virtual_routes {\n 198.18.5.0/24 gw 198.18.0.254 dev eth0\n }\n",
            "\"gw\" for routes is deprecated",
        ),
        (
            "virtual_routes {\n 198.18.5.0/24 via 198.18.0.252 or 198.18.0.253 dev eth0\n }\n",
            "\"or\" for routes is deprecated",
        ),
        (
            "virtual_routes {\n 198.18.5.0/24 via 198.18.0.252 dev eth0 bogusopt 3\n }\n",
            "unknown route keyword 'bogusopt'",
        ),
        (
            "virtual_routes {\n 198.18.5./24 dev eth0\n }\n",
            "invalid IP address '198.18.5./24'",
        ),
        (
            "virtual_rules {\n from 198.18.0.5 table 100\n }\n",
            "a rule without a preference",
        ),
        (
            "virtual_rules {\n to 192.168.100./24 table 5 priority 3\n }\n",
            "invalid rule to address '192.168.100./24'",
        ),
        (
            "virtual_rules {\n from 198.18.0.5 table 100 priority 100 bogus\n }\n",
            "unknown rule option 'bogus'",
        ),
        (
            "virtual_rules {\n from 198.18.0.5 to fd00:198:18::5 table 100 priority 100\n }\n",
            "different families: the rule is ignored",
        ),
        (
            "virtual_rules {\n from 198.18.0.5 table no_such_table priority 100\n }\n",
            "unknown routing table 'no_such_table'",
        ),
        (
            "virtual_routes {\n 198.18.5.0/24 dev eth0 table no_such_table\n }\n",
            "unknown routing table 'no_such_table'",
        ),
        (
            "virtual_rules {\n fwmark 0x1/0xzz table 5 priority 100\n }\n",
            "invalid rule fwmark '0x1/0xzz'",
        ),
    ] {
        let p = parse(&inst(block));
        assert!(p.keepalived_rejects(), "{block}: {}", p.render());
        assert_eq!(p.errors(), 0, "{block}: {}", p.render());
        assert!(p.render().contains(want), "{block}: {}", p.render());
    }
    // The static blocks: the same grammar, no tracking.
    let p = parse("static_routes {\n    198.18.5.0/24 via 198.18.0.254\n}\nstatic_rules {\n    from all table 5 preference 9\n}\n");
    assert!(!p.keepalived_rejects(), "{}", p.render());
    assert_eq!(p.config.static_routes.len(), 1);
    assert_eq!(p.config.static_rules.len(), 1);
    // Static routes and rules are installed (at start).
    assert!(!p.render().contains("is not applied"), "{}", p.render());
}

/// Issue #17 bug 10: `lb_algo` / `lb_kind` are what keepalived's own samples write, and
/// keepalived says nothing about them; rvs drew 566 "deprecated" warnings across the wild
/// corpus. They are now plain synonyms of `lvs_sched` / `lvs_method`.
#[test]
fn lb_algo_and_lb_kind_draw_no_warning() {
    let p = parse(
        "virtual_server 198.18.0.1 80 {\n    lb_algo wrr\n    lb_kind DR\n    protocol TCP\n    \
         real_server 198.18.0.2 80 {\n        weight 2\n    }\n}\n",
    );
    assert!(p.diagnostics.is_empty(), "{}", p.render());
    let vs = &p.config.virtual_servers[0];
    assert_eq!(vs.lb_algo, rvs_conf::model::Scheduler::Wrr);
    assert_eq!(vs.forwarding.method, rvs_conf::model::Method::Dr);
}

/// Issue #17 bug 7, the rest of what keepalived 2.2.7's `-t` counts: a sync group with a
/// single member (it syncs nothing), an `smtp_server` with a port out of range (ignored).
/// A host name is resolved as keepalived resolves it (here only `localhost`, from
/// /etc/hosts: the test sends nothing to a name server).
#[test]
fn single_member_sync_groups_and_bad_smtp_servers() {
    let inst = "vrrp_instance VI_1 {\n    interface eth0\n    virtual_router_id 9\n    \
                virtual_ipaddress {\n        198.18.0.1\n    }\n}\n";
    let p = parse(&format!(
        "vrrp_sync_group G {{\n    group {{\n        VI_1\n    }}\n}}\n{inst}"
    ));
    assert!(p.keepalived_rejects(), "{}", p.render());
    assert!(p.render().contains("vrrp_sync_group G has only one member"));
    assert_eq!(p.errors(), 0);
    for (server, ok) in [
        ("198.18.0.9", true),
        ("198.18.0.9 2525", true),
        ("localhost 25", true),
        ("198.18.0.9 99999", false),
        ("198.18.0.9 0", false),
    ] {
        let p = parse(&format!("global_defs {{\n    smtp_server {server}\n}}\n"));
        assert_eq!(p.errors(), 0, "{server}: {}", p.render());
        assert_eq!(p.keepalived_rejects(), !ok, "{server}: {}", p.render());
        assert_eq!(p.config.global_defs.smtp_server.is_some(), ok, "{server}");
    }
}

/// Values too: a `virtual_ipaddress` option rvs does not act on (`home`, `peer`,
/// `preferred_lft`, ...) is warned about at the value and counted as not applied; the ones
/// it applies (`dev`, `brd`, `scope`, `label`) are not.
#[test]
fn virtual_ipaddress_options_not_applied_are_said() {
    let p = parse(
        "vrrp_instance V {\n    interface eth0\n    virtual_router_id 9\n    virtual_ipaddress {\n        \
         198.18.0.1/24 dev eth1 brd + scope global label eth1:vip\n        198.18.0.2/24 home preferred_lft 0\n    }\n}\n",
    );
    assert_eq!(p.unapplied(), 2, "{}", p.render());
    assert!(p
        .render()
        .contains("6:23: warning: virtual_ipaddress option 'home' is not applied by rvs"));
    assert!(p
        .render()
        .contains("6:28: warning: virtual_ipaddress option 'preferred_lft'"));
    assert!(!p.keepalived_rejects(), "{}", p.render());
}

/// `unicast_peer` TTL filters (keepalived 2.2.7) are read and not applied: said.
#[test]
fn unicast_peer_ttl_filters_are_said() {
    let p = parse(
        "vrrp_instance V {\n    interface eth0\n    virtual_router_id 9\n    unicast_peer {\n        \
         198.18.0.2 min_ttl 250 max_ttl 255\n    }\n    virtual_ipaddress {\n        198.18.0.1\n    }\n}\n",
    );
    assert_eq!(p.unapplied(), 2, "{}", p.render());
    assert_eq!(
        p.config.vrrp_instances[0].unicast_peer[0].min_ttl,
        Some(250)
    );
}

/// `url { regex }` with keepalived's options and offsets (issue #18 item 4); a pattern that
/// does not compile is said at its line and leaves the url checked by status only.
#[test]
fn url_regex_options_offsets_and_errors() {
    let url = |body: &str| {
        let p = parse(&format!(
            "virtual_server 198.18.0.1 80 {{\n    lvs_sched rr\n    lvs_method NAT\n    protocol TCP\n    \
             real_server 198.18.0.2 80 {{\n        HTTP_GET {{\n            url {{\n                path /\n{body}            }}\n        }}\n    }}\n}}\n"
        ));
        let rvs_conf::model::CheckKind::Http(h) =
            &p.config.virtual_servers[0].real_servers[0].checkers[0].kind
        else {
            panic!("not HTTP_GET: {}", p.render());
        };
        (h.urls[0].clone(), p)
    };
    let (u, p) =
        url("                regex \"status: ok\"\n                regex_options caseless\n");
    assert!(p.diagnostics.is_empty(), "{}", p.render());
    let re = u.compiled_regex().unwrap().unwrap();
    assert!(u.page_passes(&re, b"<b>Status: OK</b>"));
    assert!(!u.page_passes(&re, b"<b>Status: ERROR</b>"));
    let (u, _) = url("                regex ERROR\n                regex_no_match\n");
    let re = u.compiled_regex().unwrap().unwrap();
    assert!(u.page_passes(&re, b"all good"));
    assert!(!u.page_passes(&re, b"database ERROR"));
    // The match must start within [min, max].
    let (u, _) = url("                regex ok\n                regex_min_offset 3\n                regex_max_offset 5\n");
    let re = u.compiled_regex().unwrap().unwrap();
    assert!(!u.page_passes(&re, b"ok......"), "before min_offset");
    assert!(u.page_passes(&re, b"...ok..."));
    assert!(!u.page_passes(&re, b"........ok"), "after max_offset");
    let (u, p) = url("                regex \"(unclosed\"\n                regex_options bogus\n");
    assert!(u.regex.is_none());
    assert!(p.render().contains("invalid regex"), "{}", p.render());
    assert!(p.render().contains("regex option 'bogus' is not supported"));
    assert!(p.keepalived_rejects());
}

/// Issue #18 item 6: `user NAME [GROUP]` in `vrrp_script` and `MISC_CHECK` was dropped
/// (the scripts ran as `script_user` or root). It is kept on the script; a user that does not
/// exist on the host removes the script, as keepalived does, with the line.
#[test]
fn per_script_users_are_kept_and_checked() {
    let p = parse(
        "vrrp_script s {\n    script \"/bin/true\"\n    user nobody\n}\n\
         vrrp_script gone {\n    script \"/bin/true\"\n    user rvs-no-such-user\n}\n\
         virtual_server 198.18.0.1 80 {\n    lvs_sched rr\n    lvs_method NAT\n    protocol TCP\n    \
         real_server 198.18.0.2 80 {\n        MISC_CHECK {\n            misc_path /bin/true\n            \
         user root root\n        }\n    }\n    real_server 198.18.0.3 80 {\n        MISC_CHECK {\n            \
         misc_path /bin/true\n            user rvs-no-such-user\n        }\n    }\n}\n",
    );
    let names: Vec<&str> = p
        .config
        .vrrp_scripts
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(names, ["s"], "{}", p.render());
    let sc = p.config.vrrp_scripts[0].script.as_ref().unwrap();
    assert_eq!(sc.user.as_deref(), Some("nobody"));
    let rs = &p.config.virtual_servers[0].real_servers;
    let rvs_conf::model::CheckKind::Misc(m) = &rs[0].checkers[0].kind else {
        panic!("MISC_CHECK");
    };
    let misc = m.misc_path.as_ref().unwrap();
    assert_eq!(
        (misc.user.as_deref(), misc.group.as_deref()),
        (Some("root"), Some("root"))
    );
    assert!(
        rs[1].checkers.is_empty(),
        "the MISC_CHECK of a missing user is removed"
    );
    assert_eq!(
        p.render()
            .matches("script user rvs-no-such-user does not exist")
            .count(),
        2,
        "{}",
        p.render()
    );
    assert!(p.keepalived_rejects());
}

/// `checker_log_all_failures` is the default of every checker's `log_all_failures` (it was
/// read and dropped; the per-checker keyword was applied all along).
#[test]
fn checker_log_all_failures_is_the_checkers_default() {
    let p = parse(
        "global_defs {\n    checker_log_all_failures\n}\n\
         virtual_server 198.18.0.1 80 {\n    lvs_sched rr\n    lvs_method NAT\n    protocol TCP\n    \
         real_server 198.18.0.2 80 {\n        TCP_CHECK {\n            connect_timeout 1\n        }\n    }\n}\n",
    );
    assert!(p.diagnostics.is_empty(), "{}", p.render());
    assert!(p.config.virtual_servers[0].real_servers[0].checkers[0].log_all_failures);
}
