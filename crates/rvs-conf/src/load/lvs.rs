//! LVS blocks: `virtual_server_group`, `virtual_server`, `real_server`.

#[allow(clippy::wildcard_imports)]
use super::*;
use std::time::Duration;

impl Loader<'_> {
    pub(super) fn vs_group(&mut self, node: &Node) {
        let Some(name) = name_of(&mut self.a, node) else {
            return;
        };
        let a = &mut self.a;
        let mut g = VirtualServerGroup {
            name,
            entries: Vec::new(),
        };
        for item in node.children() {
            if item.kw.text == "fwmark" {
                a.extra(item, 2);
                let Some(t) = item.args.first() else {
                    a.diags
                        .error(item.kw.loc, item.kw.width, "'fwmark' needs a mark");
                    continue;
                };
                let family = match item.args.get(1).map(|t| t.text.as_str()) {
                    Some("inet") => Some(Family::Inet),
                    Some("inet6") => Some(Family::Inet6),
                    None => None,
                    Some(_) => {
                        let t = &item.args[1];
                        a.diags.error(
                            t.loc,
                            t.width,
                            format!("unknown family '{}': inet or inet6", t.text),
                        );
                        None
                    }
                };
                if let Some(m) = a.int(t, 1, i64::from(u32::MAX)) {
                    g.entries.push(VsgEntry::Fwmark { fwmark: m, family });
                }
                continue;
            }
            a.extra(item, 1);
            let Some((first, last)) = parse_range(&item.kw.text) else {
                a.diags.error(item.kw.loc, item.kw.width, format!("invalid virtual_server_group entry '{}'", item.kw.text))
                    .hint("entries are 'IP [PORT]', 'a.b.c.d-e [PORT]', 'a.b.c.d/nn [PORT]' or 'fwmark N'");
                continue;
            };
            let port = match item.args.first() {
                Some(p) => match a.port(p) {
                    Some(p) => p,
                    None => continue,
                },
                None => 0,
            };
            g.entries.push(VsgEntry::Range { first, last, port });
        }
        if g.entries.is_empty() {
            a.diags.ka_warning(
                node.kw.loc,
                node.kw.width,
                format!("virtual_server_group {} is empty and is removed", g.name),
            );
            return;
        }
        let has4 = g.entries.iter().any(|e| {
            matches!(
                e,
                VsgEntry::Range {
                    first: IpAddr::V4(_),
                    ..
                }
            )
        });
        let has6 = g.entries.iter().any(|e| {
            matches!(
                e,
                VsgEntry::Range {
                    first: IpAddr::V6(_),
                    ..
                }
            )
        });
        let fw_nofam = g
            .entries
            .iter()
            .any(|e| matches!(e, VsgEntry::Fwmark { family: None, .. }));
        if has4 && has6 && fw_nofam {
            a.diags.error(node.kw.loc, node.kw.width, format!("virtual_server_group {} mixes IPv4 and IPv6 with a fwmark that has no family", g.name))
                .hint("add 'inet' or 'inet6' after the fwmark");
        }
        if self
            .locs
            .vs_groups
            .insert(g.name.clone(), node.kw.loc)
            .is_some()
        {
            // keepalived 2.2.7 runs such a file (its `-t` says nothing) and finds a group
            // by name, the first one: so does rvs, and says so.
            a.diags
                .warning(
                    node.args[0].loc,
                    node.args[0].width,
                    format!(
                        "virtual_server_group {} is defined twice: the first definition is used and this one ignored",
                        g.name
                    ),
                )
                .hint("merge the two blocks, or rename one");
            return;
        }
        self.cfg.virtual_server_groups.push(g);
    }

    pub(super) fn virtual_server(&mut self, node: &Node) {
        let a = &mut self.a;
        let Some(key) = vs_key(a, node) else { return };
        let mut vs = VirtualServer {
            key,
            protocol: None,
            lb_algo: Scheduler::Wlc,
            forwarding: Forwarding {
                method: Method::Nat,
                tunnel: None,
            },
            sched_flags: SchedFlags::default(),
            persistence_timeout: None,
            persistence_granularity: None,
            persistence_engine: None,
            delay_loop: Duration::from_mins(1),
            connect_timeout: Duration::from_secs(5),
            inhibit_on_failure: false,
            alpha: false,
            omega: false,
            quorum: 1,
            hysteresis: 0,
            quorum_up: None,
            quorum_down: None,
            sorry_server: None,
            ha_suspend: false,
            virtualhost: None,
            ip_family: None,
            smtp_alert: None,
            mh_table_size: None,
            proxy_protocol: None,
            laddr_group: None,
            snmp_name: None,
            weight: 1,
            check_defaults: Defaults::default(),
            real_servers: Vec::new(),
        };
        let mut d = Defaults::default();
        let mut sched_set = false;
        let mut method_set = false;
        let mut proto_set = false;
        let mut weight: i32 = 1;
        let mut sorry: Option<(IpAddr, Option<u16>)> = None;
        let mut sorry_inhibit = false;
        let mut sorry_fwd: Option<Forwarding> = None;
        let mut quorum_tok = None;
        let mut hyst_tok = None;
        for n in node.children() {
            match n.name() {
                // lb_algo / lb_kind: the names keepalived's own samples use; it says
                // nothing about them, and neither does rvs (issue #17 bug 10).
                "lb_algo" | "lvs_sched" => {
                    a.extra(n, 1);
                    if let Some(t) = a.need(n, 0, "a scheduler name") {
                        if let Some((_, s)) = Scheduler::ALL.iter().find(|(s, _)| *s == t.text) {
                            vs.lb_algo = *s;
                            sched_set = true;
                        } else {
                            let names: Vec<&str> = Scheduler::ALL.iter().map(|s| s.0).collect();
                            let d = a.diags.error(
                                t.loc,
                                t.width,
                                format!("unknown scheduler '{}'", t.text),
                            );
                            match suggest::closest(&t.text, &names) {
                                Some(b) if b.eq_ignore_ascii_case(&t.text) => {
                                    d.hint(format!("scheduler names are lower case: {b}"))
                                }
                                Some(b) => d.hint(format!("did you mean {b}?")),
                                None => d.hint(format!("schedulers: {}", names.join(" "))),
                            };
                        }
                    }
                }
                "lb_kind" | "lvs_method" => {
                    if let Some(f) = forwarding(a, n) {
                        vs.forwarding = f;
                        method_set = true;
                    }
                }
                "sorry_server_lvs_method" => sorry_fwd = forwarding(a, n),
                "protocol" => {
                    a.extra(n, 1);
                    if matches!(vs.key, VsKey::Fwmark { .. }) {
                        // keepalived: "protocol specified for fwmark - ignoring", counted
                        // by `-t` as a configuration error.
                        a.diags.ka_warning(
                            n.kw.loc,
                            n.kw.width,
                            "'protocol' is ignored for a fwmark service (the firewall mark selects the packets)",
                        );
                    }
                    if let Some(t) = a.need(n, 0, "TCP, UDP or SCTP") {
                        vs.protocol = match t.text.to_ascii_uppercase().as_str() {
                            "TCP" => Some(Protocol::Tcp),
                            "UDP" => Some(Protocol::Udp),
                            "SCTP" => Some(Protocol::Sctp),
                            _ => {
                                a.diags
                                    .error(t.loc, t.width, format!("unknown protocol '{}'", t.text))
                                    .hint("protocol is TCP, UDP or SCTP");
                                None
                            }
                        };
                        proto_set = vs.protocol.is_some();
                    }
                }
                "persistence_timeout" => {
                    a.extra(n, 1);
                    vs.persistence_timeout = match n.args.first() {
                        None => Some(360),
                        Some(t) => a.int(t, 1, 2_678_400),
                    };
                }
                "persistence_granularity" => {
                    a.extra(n, 1);
                    if let Some(t) = a.need(n, 0, "a netmask or prefix length") {
                        if valid_granularity(&t.text) {
                            vs.persistence_granularity = Some(t.text.clone());
                        } else {
                            a.diags.error(t.loc, t.width, format!("invalid persistence_granularity '{}'", t.text))
                                .hint("an IPv4 netmask such as 255.255.255.0, or an IPv6 prefix length 1-128");
                        }
                    }
                }
                "persistence_engine" => vs.persistence_engine = a.string(n),
                "ops" => vs.sched_flags.ops = a.bare(n),
                "hashed" => {
                    a.bare(n);
                }
                "flag-1" => vs.sched_flags.flag_1 = a.bare(n),
                "flag-2" => vs.sched_flags.flag_2 = a.bare(n),
                "flag-3" => vs.sched_flags.flag_3 = a.bare(n),
                f @ ("sh-port" | "sh-fallback" | "mh-port" | "mh-fallback") => {
                    a.bare(n);
                    let want = if f.starts_with("sh") {
                        Scheduler::Sh
                    } else {
                        Scheduler::Mh
                    };
                    let other = if want == Scheduler::Sh {
                        Scheduler::Mh
                    } else {
                        Scheduler::Sh
                    };
                    if sched_set && vs.lb_algo == want {
                        match f {
                            "sh-port" => vs.sched_flags.sh_port = true,
                            "sh-fallback" => vs.sched_flags.sh_fallback = true,
                            "mh-port" => vs.sched_flags.mh_port = true,
                            _ => vs.sched_flags.mh_fallback = true,
                        }
                    } else if !(sched_set && vs.lb_algo == other) {
                        a.diags
                            .ka_warning(
                                n.kw.loc,
                                n.kw.width,
                                format!(
                                    "{f} only applies to the {} scheduler and is ignored",
                                    want.name()
                                ),
                            )
                            .hint(format!(
                                "it takes effect only after 'lb_algo {}' in the same block",
                                want.name()
                            ));
                    }
                }
                "delay_loop" => set(
                    &mut vs.delay_loop,
                    a.arg_timer(n, 0.000_001, f64::from(u32::MAX)),
                ),
                "connect_timeout" => set(
                    &mut vs.connect_timeout,
                    a.arg_timer(n, 0.000_001, f64::from(u32::MAX)),
                ),
                "retry" => d.retry = a.arg_int(n, 1, i64::from(u32::MAX)),
                "delay_before_retry" => {
                    d.delay_before_retry = a.arg_timer(n, 0.0, f64::from(u32::MAX));
                }
                "warmup" => d.warmup = a.arg_timer(n, 0.0, f64::from(u32::MAX)),
                "inhibit_on_failure" => vs.inhibit_on_failure = a.flag(n),
                "alpha" => vs.alpha = a.flag(n),
                "omega" => vs.omega = a.flag(n),
                "ha_suspend" => {
                    vs.ha_suspend = a.bare(n);
                    if matches!(vs.key, VsKey::Fwmark { .. }) {
                        // keepalived: a fwmark has no address to follow.
                        a.diags.ka_warning(
                            n.kw.loc,
                            n.kw.width,
                            "cannot use ha_suspend with fwmarks - clearing ha_suspend",
                        );
                        vs.ha_suspend = false;
                    }
                }
                "quorum" => {
                    quorum_tok = n.args.first().cloned();
                    set(&mut vs.quorum, a.arg_int(n, 1, i64::from(u32::MAX)));
                }
                "hysteresis" => {
                    hyst_tok = n.args.first().cloned();
                    set(&mut vs.hysteresis, a.arg_int(n, 0, i64::from(u32::MAX)));
                }
                "quorum_up" => vs.quorum_up = a.script(n),
                "quorum_down" => vs.quorum_down = a.script(n),
                "weight" => set(&mut weight, a.arg_int(n, 1, i64::from(i32::MAX))),
                "sorry_server" => {
                    a.extra(n, 2);
                    if let Some(t) = a.need(n, 0, "an address") {
                        if let Some(ip) = a.ip(t) {
                            let port = match n.args.get(1) {
                                Some(p) => a.port(p),
                                None => None,
                            };
                            sorry = Some((ip, port));
                        }
                    }
                }
                "sorry_server_inhibit" => sorry_inhibit = a.flag(n),
                "virtualhost" => vs.virtualhost = a.string(n),
                "snmp_name" => vs.snmp_name = a.string(n),
                "ip_family" => {
                    a.extra(n, 1);
                    vs.ip_family = match n.args.first().map(|t| t.text.as_str()) {
                        Some("inet") => Some(Family::Inet),
                        Some("inet6") => Some(Family::Inet6),
                        _ => {
                            a.diags
                                .error(n.kw.loc, n.kw.width, "ip_family is inet or inet6");
                            None
                        }
                    };
                }
                "smtp_alert" => vs.smtp_alert = Some(a.flag(n)),
                "rvs_mh_table_size" => {
                    if let Some(t) = n.args.first() {
                        if let Some(m) = a.arg_int::<u32>(n, 2, 1 << 20) {
                            if is_prime(m) {
                                vs.mh_table_size = Some(m);
                            } else {
                                a.diags
                                    .error(
                                        t.loc,
                                        t.width,
                                        format!("rvs_mh_table_size {m} is not a prime"),
                                    )
                                    .hint("Maglev needs a prime table size, e.g. 4093 or 65537");
                            }
                        }
                    } else {
                        a.need(n, 0, "a prime table size");
                    }
                }
                "laddr_group_name" => vs.laddr_group = a.string(n).or(vs.laddr_group.take()),
                "rvs_proxy_protocol" => {
                    a.extra(n, 1);
                    match n.args.first().map(|t| t.text.as_str()) {
                        Some(v @ ("v1" | "v2")) => vs.proxy_protocol = Some(v.to_owned()),
                        _ => {
                            a.diags.error(
                                n.kw.loc,
                                n.kw.width,
                                "rvs_proxy_protocol takes v1 or v2",
                            );
                        }
                    }
                }
                // real_server blocks are read below, once the service's defaults are known.
                _ => {}
            }
        }
        let vs_name = vs_label(&vs.key, vs.protocol);
        if !sched_set {
            a.diags.ka_warning(
                node.kw.loc,
                node.kw.width,
                format!("Virtual server {vs_name}: no scheduler set, setting default 'wlc'"),
            );
        }
        if !method_set {
            a.diags.ka_warning(
                node.kw.loc,
                node.kw.width,
                format!("Virtual server {vs_name}: no forwarding method set, setting default NAT"),
            );
        }
        if matches!(vs.key, VsKey::Fwmark { .. }) {
            if proto_set {
                a.diags.warning(
                    node.kw.loc,
                    node.kw.width,
                    format!("Virtual server {vs_name}: protocol is ignored for fwmark services"),
                );
            }
            vs.protocol = None;
        } else if !proto_set {
            a.diags
                .ka_warning(
                    node.kw.loc,
                    node.kw.width,
                    format!("Virtual server {vs_name}: no protocol set - defaulting to UDP"),
                )
                .hint("add 'protocol TCP' for a TCP service (keepalived's default is UDP)");
            vs.protocol = Some(Protocol::Udp);
        }
        if vs.persistence_granularity.is_some() && vs.persistence_timeout.is_none() {
            vs.persistence_timeout = Some(360);
        }
        if let VsKey::Address { port, .. } = vs.key {
            if port == 0 && vs.persistence_timeout.is_none() {
                let omitted = node.args.len() < 2;
                if omitted {
                    a.diags
                        .error(node.kw.loc, node.kw.width, format!("Virtual server {vs_name}: a port is required unless the service is persistent"))
                        .hint("add the port after the address, or a persistence_timeout");
                } else {
                    a.diags.ka_warning(
                        node.args[1].loc,
                        node.args[1].width,
                        format!("Virtual server {vs_name}: port 0 forces persistence (360 s)"),
                    );
                    vs.persistence_timeout = Some(360);
                }
            }
        }
        let vs_port = match vs.key {
            VsKey::Address { port, .. } => Some(port),
            _ => None,
        };
        // Real servers.
        let fwmark = matches!(vs.key, VsKey::Fwmark { .. });
        // Seen (address, port) pairs: a set, so a service with 100k real servers loads in
        // linear time (a scan of the list per real server was quadratic).
        let mut seen: std::collections::HashSet<(IpAddr, u16)> = std::collections::HashSet::new();
        for rn in node.children().iter().filter(|c| c.name() == "real_server") {
            let ctx = RsCtx {
                vs_port,
                fwmark,
                weight,
                fwd: &vs.forwarding,
                vs: &vs,
                d: &d,
            };
            if let Some(rs) = self.real_server(rn, &ctx) {
                let a = &mut self.a;
                if let VsKey::Address { address, port } = vs.key {
                    if rs.address == address && rs.port == port {
                        a.diags
                            .warning(
                                rn.args[0].loc,
                                rn.args[0].width,
                                format!(
                                    "real server {} is the virtual server itself: a connection to it would come back to the director",
                                    rs_label(rs.address, rs.port)
                                ),
                            )
                            .hint("the proxy data plane refuses to forward to its own address (the client is reset); kernel IPVS delivers it locally");
                    }
                }
                if !seen.insert((rs.address, rs.port)) {
                    a.diags.error(
                        rn.args[0].loc,
                        rn.args[0].width,
                        format!(
                            "real server {} is listed twice in virtual server {vs_name}",
                            rs_label(rs.address, rs.port)
                        ),
                    );
                    continue;
                }
                vs.real_servers.push(rs);
            }
        }
        let a = &mut self.a;
        if let Some((ip, port)) = sorry {
            let fwd = sorry_fwd.unwrap_or_else(|| vs.forwarding.clone());
            let port = port.or(vs_port).unwrap_or(0);
            vs.sorry_server = Some(SorryServer {
                address: ip,
                port,
                forwarding: fwd,
                inhibit: sorry_inhibit,
            });
        }
        if vs.real_servers.is_empty() && vs.sorry_server.is_none() {
            a.diags.ka_warning(
                node.kw.loc,
                node.kw.width,
                format!("Virtual server {vs_name}: no real servers: the service is not created"),
            );
        }
        let total: i64 = vs.real_servers.iter().map(|r| i64::from(r.weight)).sum();
        if i64::from(vs.quorum) > total && total > 0 {
            if let Some(t) = &quorum_tok {
                a.diags.warning(t.loc, t.width, format!("quorum {} is more than the total weight {total} of the real servers: capped", vs.quorum));
            }
            vs.quorum = u32::try_from(total).unwrap_or(u32::MAX);
        }
        if vs.hysteresis >= vs.quorum && vs.hysteresis > 0 {
            if let Some(t) = &hyst_tok {
                a.diags.ka_warning(
                    t.loc,
                    t.width,
                    format!(
                        "hysteresis {} must be less than quorum {}: set to {}",
                        vs.hysteresis,
                        vs.quorum,
                        vs.quorum - 1
                    ),
                );
            }
            vs.hysteresis = vs.quorum - 1;
        }
        vs.check_defaults = d;
        vs.weight = weight;
        self.locs.vs.push(node.kw.clone());
        self.cfg.virtual_servers.push(vs);
    }

    pub(super) fn real_server(&mut self, node: &Node, ctx: &RsCtx<'_>) -> Option<RealServer> {
        let a = &mut self.a;
        a.extra(node, 2);
        let t = a.need(node, 0, "an address")?;
        let address = a.ip(t)?;
        let given_port = match node.args.get(1) {
            Some(p) => Some(a.port(p)?),
            None => None,
        };
        let mut rs = RealServer {
            address,
            port: 0,
            weight: ctx.weight,
            forwarding: ctx.fwd.clone(),
            uthreshold: 0,
            lthreshold: 0,
            inhibit_on_failure: ctx.vs.inhibit_on_failure,
            alpha: ctx.vs.alpha,
            notify_up: None,
            notify_down: None,
            virtualhost: None,
            smtp_alert: None,
            snmp_name: None,
            check_defaults: Defaults::default(),
            checkers: Vec::new(),
        };
        let mut d = Defaults {
            retry: ctx.d.retry,
            delay_before_retry: ctx.d.delay_before_retry,
            warmup: ctx.d.warmup,
            delay_loop: None,
            connect_timeout: None,
        };
        for n in node.children() {
            match n.name() {
                "weight" => set(&mut rs.weight, a.arg_int(n, 0, i64::from(i32::MAX))),
                "lvs_method" => {
                    if let Some(f) = forwarding(a, n) {
                        rs.forwarding = f;
                    }
                }
                "uthreshold" => set(&mut rs.uthreshold, a.arg_int(n, 0, i64::from(u32::MAX))),
                "lthreshold" => set(&mut rs.lthreshold, a.arg_int(n, 0, i64::from(u32::MAX))),
                "inhibit_on_failure" => rs.inhibit_on_failure = a.flag(n),
                "notify_up" => rs.notify_up = a.script(n),
                "notify_down" => rs.notify_down = a.script(n),
                "alpha" => rs.alpha = a.flag(n),
                "retry" => d.retry = a.arg_int(n, 1, i64::from(u32::MAX)),
                "delay_before_retry" => {
                    d.delay_before_retry = a.arg_timer(n, 0.0, f64::from(u32::MAX));
                }
                "warmup" => d.warmup = a.arg_timer(n, 0.0, f64::from(u32::MAX)),
                "connect_timeout" => {
                    d.connect_timeout = a.arg_timer(n, 0.000_001, f64::from(u32::MAX));
                }
                "delay_loop" => d.delay_loop = a.arg_timer(n, 0.000_001, f64::from(u32::MAX)),
                "smtp_alert" => rs.smtp_alert = Some(a.flag(n)),
                "virtualhost" => rs.virtualhost = a.string(n),
                "snmp_name" => rs.snmp_name = a.string(n),
                _ => {}
            }
        }
        // Port rules (spec §11.1).
        let method = rs.forwarding.method;
        rs.port = match (ctx.fwmark, ctx.vs_port, given_port) {
            (true, _, p) => {
                if matches!(method, Method::Nat | Method::FullNat) {
                    p.unwrap_or(0)
                } else {
                    0
                }
            }
            (false, Some(vp), Some(p))
                if !matches!(method, Method::Nat | Method::FullNat) && p != vp && vp != 0 =>
            {
                let t = &node.args[1];
                a.diags
                    .error(t.loc, t.width, format!("real server {}: port {p} differs from the virtual server port {vp}, but {} forwarding cannot change ports", rs_label(address, p), method_name(method)))
                    .hint(format!("use port {vp}, or lb_kind NAT to map ports"));
                vp
            }
            (false, Some(vp), Some(p)) => {
                if method != Method::Nat && vp == 0 {
                    0
                } else {
                    p
                }
            }
            (false, None, Some(p)) => p,
            (false, vp, None) => vp.unwrap_or(0),
        };
        if rs.lthreshold > rs.uthreshold && rs.uthreshold != 0 {
            a.diags.warning(
                node.kw.loc,
                node.kw.width,
                format!(
                    "real server {}: lthreshold {} is above uthreshold {}",
                    rs_label(address, rs.port),
                    rs.lthreshold,
                    rs.uthreshold
                ),
            );
        }
        rs.check_defaults = d;
        let rs_ctx = CheckCtx {
            d: &d,
            vs_delay_loop: ctx.vs.delay_loop,
            connect_timeout: d.connect_timeout.unwrap_or(ctx.vs.connect_timeout),
            delay_loop: d.delay_loop.unwrap_or(ctx.vs.delay_loop),
            alpha: rs.alpha,
            vhost: rs
                .virtualhost
                .clone()
                .or_else(|| ctx.vs.virtualhost.clone()),
            no_path: crate::model::forwarding_path_probe(&ctx.vs.key, address, &rs.forwarding)
                .err(),
        };
        for n in node.children() {
            if crate::schema::CHECKERS.contains(&n.name()) {
                let mut cs = self.checker(n, &rs_ctx);
                rs.checkers.append(&mut cs);
            }
        }
        Some(rs)
    }
}
