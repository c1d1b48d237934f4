//! Tree → typed [`Config`]: keyword handlers with keepalived's defaults, then the
//! cross-block checks (references, duplicate VRIDs, port remapping in DR/TUN, ...).

use crate::args::{parse_int, parse_ip, Args};
use crate::diag::{Diags, Loc};
use crate::lex::Token;
use crate::model::{
    Authentication, BfdCheck, CheckKind, Checker, Config, DnsCheck, Family, FileCheck, Forwarding,
    GlobalDefs, HttpCheck, InitFile, LvsTimeouts, Method, MiscCheck, Notify, Protocol, RealServer,
    SchedFlags, Scheduler, SmtpCheck, SmtpServer, SorryServer, SyncGroup, TrackFile, TrackRef,
    Trackers, Tunnel, UdpCheck, UnicastPeer, Url, VipAddr, VirtualServer, VirtualServerGroup,
    VrrpInstance, VrrpScript, VrrpState, VsKey, VsgEntry,
};
use crate::suggest;
use crate::tree::Node;
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

pub fn load(tree: &[Node], diags: &mut Diags) -> Config {
    let mut l = Loader {
        a: Args { diags },
        cfg: Config::default(),
        locs: Locs::default(),
    };
    // global_defs first: instance defaults (garp, version) come from it wherever it is.
    for n in tree.iter().filter(|n| n.name() == "global_defs") {
        l.global_defs(n);
    }
    for n in tree {
        match n.name() {
            "global_defs" => {}
            "vrrp_script" => l.vrrp_script(n),
            "track_file" | "vrrp_track_file" => l.track_file(n),
            "bfd_instance" => l.bfd_instance(n),
            "vrrp_track_process" => l.track_process(n),
            "vrrp_sync_group" => l.sync_group(n),
            "vrrp_instance" => l.vrrp_instance(n),
            "virtual_server_group" => l.vs_group(n),
            "virtual_server" => l.virtual_server(n),
            "SSL" => {
                let a = &mut l.a;
                let mut ssl = crate::model::SslConfig::default();
                for c in n.children() {
                    let v = a.string(c);
                    match c.name() {
                        "ca" => ssl.ca = v,
                        "certificate" => ssl.certificate = v,
                        "key" => ssl.key = v,
                        _ => ssl.password = v,
                    }
                }
                l.cfg.ssl = Some(ssl);
            }
            name => {
                *l.cfg.other_blocks.entry(name.to_owned()).or_default() += 1;
                if !n.args.is_empty() || !n.children().is_empty() {
                    l.cfg.global_defs.other.insert(
                        name.to_owned(),
                        n.args.iter().map(|t| t.text.clone()).collect(),
                    );
                }
            }
        }
    }
    l.note_scripts(tree);
    l.cross_checks();
    // SSL_GET checkers verify against the root SSL block's CA, wherever it is written.
    let ca = l.cfg.ssl.as_ref().and_then(|s| s.ca.clone());
    for vs in &mut l.cfg.virtual_servers {
        for rs in &mut vs.real_servers {
            for c in &mut rs.checkers {
                if let CheckKind::Ssl(h) = &mut c.kind {
                    h.tls_ca.clone_from(&ca);
                }
            }
        }
    }
    l.cfg
}

/// Where things were defined, for cross-block diagnostics.
#[derive(Default)]
struct Locs {
    instances: Vec<(Loc, usize)>,
    vrid: Vec<Option<Token>>,
    track_refs: Vec<(String, &'static str, Token)>,
    sync_members: Vec<(String, Token)>,
    vs: Vec<Token>,
    vs_groups: HashMap<String, Loc>,
    file_check_refs: Vec<Token>,
    bfd_check_refs: Vec<Token>,
    first_script: Option<Loc>,
}

struct Loader<'d> {
    a: Args<'d>,
    cfg: Config,
    locs: Locs,
}

fn name_of(a: &mut Args<'_>, n: &Node) -> Option<String> {
    a.extra(n, 1);
    if let Some(t) = n.args.first() {
        Some(t.text.clone())
    } else {
        a.diags.error(
            n.kw.loc,
            n.kw.width,
            format!("'{}' needs a name", n.kw.text),
        );
        None
    }
}

impl Loader<'_> {
    fn note_scripts(&mut self, tree: &[Node]) {
        const SCRIPT_KWS: &[&str] = &[
            "script",
            "notify_master",
            "notify_backup",
            "notify_fault",
            "notify_stop",
            "notify",
            "notify_deleted",
            "notify_up",
            "notify_down",
            "misc_path",
            "quorum_up",
            "quorum_down",
            "notify_master_rx_lower_pri",
            "startup_script",
            "shutdown_script",
        ];
        for n in tree {
            if self.locs.first_script.is_some() {
                return;
            }
            if SCRIPT_KWS.contains(&n.name())
                && !n.args.is_empty()
                && !matches!(n.body, crate::tree::Body::List(_))
            {
                self.locs.first_script = Some(n.kw.loc);
                return;
            }
            self.note_scripts(n.children());
        }
    }

    fn global_defs(&mut self, node: &Node) {
        let a = &mut self.a;
        let g = &mut self.cfg.global_defs;
        for n in node.children() {
            match n.name() {
                "router_id" => g.router_id = a.string(n),
                "notification_email" => {
                    g.notification_email
                        .extend(n.children().iter().map(|i| i.kw.text.clone()));
                }
                "notification_email_from" => g.notification_email_from = a.string(n),
                "smtp_server" => {
                    a.extra(n, 2);
                    if let Some(h) = a.need(n, 0, "a host") {
                        let port = match n.args.get(1) {
                            Some(p) => a.int(p, 1, 65535).unwrap_or(25),
                            None => 25,
                        };
                        g.smtp_server = Some(SmtpServer {
                            host: h.text.clone(),
                            port,
                        });
                    }
                }
                "smtp_connect_timeout" => {
                    if let Some(v) = a.arg_int(n, 1, i64::from(u32::MAX)) {
                        g.smtp_connect_timeout = v;
                    }
                }
                "smtp_helo_name" => g.smtp_helo_name = a.string(n),
                "vrrp_mcast_group4" => {
                    if let Some(IpAddr::V4(v)) = a.arg_ip(n) {
                        g.vrrp_mcast_group4 = v;
                    } else if !n.args.is_empty() {
                        a.diags.error(
                            n.args[0].loc,
                            n.args[0].width,
                            "vrrp_mcast_group4 must be an IPv4 address",
                        );
                    }
                }
                "vrrp_mcast_group6" => {
                    if let Some(IpAddr::V6(v)) = a.arg_ip(n) {
                        g.vrrp_mcast_group6 = v;
                    } else if !n.args.is_empty() {
                        a.diags.error(
                            n.args[0].loc,
                            n.args[0].width,
                            "vrrp_mcast_group6 must be an IPv6 address",
                        );
                    }
                }
                "vrrp_garp_master_delay" => {
                    set(&mut g.vrrp_garp_master_delay, a.arg_int(n, 0, 86400));
                }
                "vrrp_garp_master_repeat" => {
                    set(&mut g.vrrp_garp_master_repeat, a.arg_int(n, 1, 255));
                }
                "vrrp_garp_master_refresh" => {
                    set(&mut g.vrrp_garp_master_refresh, a.arg_int(n, 0, 86400));
                }
                "vrrp_garp_master_refresh_repeat" => {
                    set(&mut g.vrrp_garp_master_refresh_repeat, a.arg_int(n, 1, 255));
                }
                "vrrp_garp_lower_prio_delay" => {
                    set(&mut g.vrrp_garp_lower_prio_delay, a.arg_int(n, 0, 86400));
                }
                "vrrp_garp_lower_prio_repeat" => {
                    set(&mut g.vrrp_garp_lower_prio_repeat, a.arg_int(n, 1, 255));
                }
                "vrrp_garp_interval" => set(&mut g.vrrp_garp_interval, a.arg_timer(n, 0.0, 1.0)),
                "vrrp_gna_interval" => set(&mut g.vrrp_gna_interval, a.arg_timer(n, 0.0, 1.0)),
                "vrrp_min_garp" => g.vrrp_min_garp = a.flag(n),
                "vrrp_down_timer_adverts" => {
                    set(&mut g.vrrp_down_timer_adverts, a.arg_int(n, 1, 100));
                }
                "vrrp_lower_prio_no_advert" => g.vrrp_lower_prio_no_advert = a.flag(n),
                "vrrp_higher_prio_send_advert" => g.vrrp_higher_prio_send_advert = a.flag(n),
                "vrrp_version" => set(&mut g.vrrp_version, a.arg_int(n, 2, 3)),
                "vrrp_strict" => g.vrrp_strict = a.bare(n),
                "vrrp_check_unicast_src" => g.vrrp_check_unicast_src = a.bare(n),
                "vrrp_skip_check_adv_addr" => g.vrrp_skip_check_adv_addr = a.bare(n),
                "vrrp_startup_delay" | "vrrp_delay_after_boot" => {
                    set(&mut g.vrrp_startup_delay, a.arg_timer(n, 0.0, 3600.0));
                }
                "vrrp_notify_priority_changes" => g.vrrp_notify_priority_changes = a.flag(n),
                "enable_script_security" => g.enable_script_security = a.bare(n),
                "script_user" => {
                    a.extra(n, 2);
                    g.script_user = a.need(n, 0, "a user name").map(|t| t.text.clone());
                }
                "default_interface" => g.default_interface = a.string(n),
                "dynamic_interfaces" => {
                    a.extra(n, 1);
                    g.dynamic_interfaces = true;
                }
                "checker_log_all_failures" => g.checker_log_all_failures = a.flag(n),
                "rs_init_notifies" => g.rs_init_notifies = a.bare(n),
                "lvs_timeouts" => lvs_timeouts(a, n, &mut g.lvs_timeouts),
                "lvs_sync_daemon" => g.lvs_sync_daemon = lvs_sync_daemon(a, n),
                "lvs_flush" => g.lvs_flush = a.bare(n),
                "lvs_flush_on_stop" | "lvs_flush_onstop" => {
                    if n.name() == "lvs_flush_onstop" {
                        deprecated(a, n, "lvs_flush_on_stop");
                    }
                    g.lvs_flush_on_stop = true;
                }
                "notify_fifo" => g.notify_fifo = n.args.first().map(|t| t.text.clone()),
                "vrrp_notify_fifo" => g.vrrp_notify_fifo = n.args.first().map(|t| t.text.clone()),
                "lvs_notify_fifo" => g.lvs_notify_fifo = n.args.first().map(|t| t.text.clone()),
                "vrrp_vmac_garp_intvl" => {
                    deprecated(a, n, "vrrp_garp_extra_if");
                    other(g, n);
                }
                "enable_snmp_keepalived" => {
                    deprecated(a, n, "enable_snmp_vrrp");
                    other(g, n);
                }
                "lvs_process_name" => {
                    deprecated(a, n, "checker_process_name");
                    other(g, n);
                }
                _ => other(g, n),
            }
        }
        // vrrp_min_garp changes the garp settings still at their defaults.
        if g.vrrp_min_garp {
            let set_here = |k: &str| node.children().iter().any(|c| c.name() == k);
            if !set_here("vrrp_garp_master_repeat") {
                g.vrrp_garp_master_repeat = 1;
            }
            if !set_here("vrrp_garp_master_refresh") {
                g.vrrp_garp_master_refresh = 0;
            }
            if !set_here("vrrp_garp_master_delay") {
                g.vrrp_garp_master_delay = 0;
            }
        }
        let set_here = |k: &str| node.children().iter().any(|c| c.name() == k);
        if !set_here("vrrp_garp_lower_prio_delay") {
            g.vrrp_garp_lower_prio_delay = g.vrrp_garp_master_delay;
        }
        if !set_here("vrrp_garp_lower_prio_repeat") {
            g.vrrp_garp_lower_prio_repeat = g.vrrp_garp_master_repeat;
        }
        if g.vrrp_strict && !set_here("vrrp_lower_prio_no_advert") {
            g.vrrp_lower_prio_no_advert = true;
        }
    }

    fn vrrp_script(&mut self, node: &Node) {
        let a = &mut self.a;
        let Some(name) = name_of(a, node) else { return };
        let mut s = VrrpScript {
            name,
            script: None,
            interval: 1.0,
            timeout: 0.0,
            weight: 0,
            weight_reverse: false,
            rise: 1,
            fall: 1,
            init_fail: false,
        };
        let mut timeout = None;
        for n in node.children() {
            match n.name() {
                "script" => s.script = a.script(n),
                "interval" => {
                    if let Some(v) = a.arg_timer(n, 0.0, f64::from(u32::MAX)) {
                        s.interval = if v == 0.0 { 1.0 } else { v };
                    }
                }
                "timeout" => timeout = a.arg_timer(n, 0.0, f64::from(u32::MAX)),
                "weight" => {
                    if let Some((w, r)) = weight_reverse(a, n, 253) {
                        s.weight = w;
                        s.weight_reverse = r;
                    }
                }
                "rise" => set(&mut s.rise, a.arg_int(n, 1, i64::from(i32::MAX))),
                "fall" => set(&mut s.fall, a.arg_int(n, 1, i64::from(i32::MAX))),
                "user" => {
                    a.extra(n, 2);
                }
                "init_fail" => s.init_fail = a.bare(n),
                _ => {}
            }
        }
        s.timeout = timeout.filter(|t| *t > 0.0).unwrap_or(s.interval);
        if s.script.is_none() && !node.children().iter().any(|c| c.name() == "script") {
            a.diags.ka_warning(
                node.kw.loc,
                node.kw.width,
                format!("vrrp_script {} has no 'script'; it is ignored", s.name),
            );
            return;
        }
        if self.cfg.vrrp_scripts.iter().any(|x| x.name == s.name) {
            let t = &node.args[0];
            a.diags.error(
                t.loc,
                t.width,
                format!("vrrp_script {} is defined twice", s.name),
            );
            return;
        }
        self.cfg.vrrp_scripts.push(s);
    }

    fn track_file(&mut self, node: &Node) {
        let a = &mut self.a;
        if node.name() == "vrrp_track_file" {
            deprecated(a, node, "track_file");
        }
        let Some(name) = name_of(a, node) else { return };
        let mut t = TrackFile {
            name,
            file: None,
            weight: 1,
            weight_reverse: false,
            init_file: None,
        };
        for n in node.children() {
            match n.name() {
                "file" => t.file = a.string(n),
                "weight" => {
                    if let Some((w, r)) = weight_reverse(a, n, 254) {
                        t.weight = w;
                        t.weight_reverse = r;
                    }
                }
                "init_file" => {
                    let mut f = InitFile {
                        value: 0,
                        overwrite: false,
                    };
                    for arg in &n.args {
                        if arg.text == "overwrite" {
                            f.overwrite = true;
                        } else if let Some(v) = a.int(arg, i64::from(i32::MIN), i64::from(i32::MAX))
                        {
                            f.value = v;
                        }
                    }
                    t.init_file = Some(f);
                }
                _ => {}
            }
        }
        if t.file.is_none() {
            a.diags.error(
                node.kw.loc,
                node.kw.width,
                format!("track_file {} has no 'file'", t.name),
            );
        }
        self.cfg.track_files.push(t);
    }

    fn track_process(&mut self, node: &Node) {
        let a = &mut self.a;
        let Some(name) = name_of(a, node) else { return };
        if self.cfg.track_processes.iter().any(|p| p.name == name) {
            a.diags.error(
                node.args[0].loc,
                node.args[0].width,
                format!("vrrp_track_process {name} is defined twice"),
            );
            return;
        }
        let mut p = crate::model::TrackProcess::new(name);
        for n in node.children() {
            match n.name() {
                "process" => {
                    if let Some((first, rest)) = n.args.split_first() {
                        p.process = Some(first.text.clone());
                        p.params = rest.iter().map(|t| t.text.clone()).collect();
                    } else {
                        a.diags
                            .error(n.kw.loc, n.kw.width, "'process' needs a process name");
                    }
                }
                "param_match" => {
                    a.extra(n, 1);
                    match n.args.first().map(|t| t.text.as_str()) {
                        Some(m @ ("initial" | "partial" | "exact")) => p.param_match = m.into(),
                        _ => {
                            a.diags
                                .error(
                                    n.kw.loc,
                                    n.kw.width,
                                    "param_match needs 'initial' or 'partial'",
                                )
                                .hint("without param_match the parameters must match exactly");
                        }
                    }
                }
                "weight" => {
                    if let Some((w, r)) = weight_reverse(a, n, 254) {
                        p.weight = w;
                        p.weight_reverse = r;
                    }
                }
                "quorum" => set(&mut p.quorum, a.arg_int(n, 1, 65535)),
                "quorum_max" => p.quorum_max = a.arg_int(n, 1, 65535).or(p.quorum_max),
                "fork_delay" => set(&mut p.fork_delay, a.arg_timer(n, 0.0, 3600.0)),
                "terminate_delay" => set(&mut p.terminate_delay, a.arg_timer(n, 0.0, 3600.0)),
                "delay" => {
                    if let Some(d) = a.arg_timer(n, 0.0, 3600.0) {
                        p.fork_delay = d;
                        p.terminate_delay = d;
                    }
                }
                "full_command" => p.full_command = a.flag(n),
                _ => {}
            }
        }
        if p.process.is_none() {
            a.diags.error(
                node.kw.loc,
                node.kw.width,
                format!("vrrp_track_process {} has no 'process'", p.name),
            );
        }
        if let Some(max) = p.quorum_max {
            if max < p.quorum {
                a.diags.error(
                    node.kw.loc,
                    node.kw.width,
                    format!(
                        "vrrp_track_process {}: quorum_max {max} is below quorum {}",
                        p.name, p.quorum
                    ),
                );
            }
        }
        self.cfg.track_processes.push(p);
    }

    fn bfd_instance(&mut self, node: &Node) {
        let a = &mut self.a;
        let Some(name) = name_of(a, node) else { return };
        if self.cfg.bfd_instances.iter().any(|b| b.name == name) {
            a.diags.error(
                node.args[0].loc,
                node.args[0].width,
                format!("bfd_instance {name} is defined twice"),
            );
            return;
        }
        let mut b = crate::model::BfdInstance::new(name);
        for n in node.children() {
            match n.name() {
                "neighbor_ip" | "neighbour_ip" => b.neighbor_ip = a.arg_ip(n).or(b.neighbor_ip),
                "source_ip" => b.source_ip = a.arg_ip(n).or(b.source_ip),
                "min_rx" => set(&mut b.min_rx, a.arg_timer(n, 1.0, 4_294_967.0)),
                "min_tx" => set(&mut b.min_tx, a.arg_timer(n, 1.0, 4_294_967.0)),
                "idle_tx" => set(&mut b.idle_tx, a.arg_timer(n, 1000.0, 4_294_967.0)),
                "multiplier" => set(&mut b.multiplier, a.arg_int(n, 1, 255)),
                "passive" => b.passive = a.flag(n),
                "ttl" => set(&mut b.ttl, a.arg_int(n, 1, 255)),
                "hoplimit" => set(&mut b.hoplimit, a.arg_int(n, 1, 255)),
                "max_hops" => set(&mut b.max_hops, a.arg_int(n, 0, 255)),
                "multihop" => b.multihop = a.flag(n),
                "weight" => {
                    if let Some((w, r)) = weight_reverse(a, n, 253) {
                        b.weight = w;
                        b.weight_reverse = r;
                    }
                }
                _ => {}
            }
        }
        if b.neighbor_ip.is_none() {
            a.diags.error(
                node.kw.loc,
                node.kw.width,
                format!("bfd_instance {} has no neighbor_ip", b.name),
            );
        }
        if let (Some(n), Some(s)) = (b.neighbor_ip, b.source_ip) {
            if n.is_ipv4() != s.is_ipv4() {
                a.diags.error(
                    node.kw.loc,
                    node.kw.width,
                    format!(
                        "bfd_instance {}: source_ip {s} and neighbor_ip {n} are of different families",
                        b.name
                    ),
                );
            }
        }
        if b.multihop {
            a.diags.warning(
                node.kw.loc,
                node.kw.width,
                format!("bfd_instance {}: multihop BFD is not supported by rvs; the session runs single-hop", b.name),
            );
        }
        self.cfg.bfd_instances.push(b);
    }

    fn sync_group(&mut self, node: &Node) {
        let Some(name) = name_of(&mut self.a, node) else {
            return;
        };
        let mut g = SyncGroup {
            name,
            group: Vec::new(),
            notify: Notify::default(),
            trackers: Trackers::default(),
            sync_group_tracking_weight: false,
            notify_priority_changes: None,
            smtp_alert: false,
        };
        for n in node.children() {
            match n.name() {
                "group" => {
                    for item in n.children() {
                        self.a.extra(item, 0);
                        g.group.push(item.kw.text.clone());
                        self.locs
                            .sync_members
                            .push((g.name.clone(), item.kw.clone()));
                    }
                }
                "sync_group_tracking_weight" => g.sync_group_tracking_weight = self.a.bare(n),
                "smtp_alert" => g.smtp_alert = self.a.flag(n),
                "notify_priority_changes" => {
                    g.notify_priority_changes = Some(self.a.flag(n));
                }
                "global_tracking" => deprecated(&mut self.a, n, "sync_group_tracking_weight"),
                _ => {
                    if !self.notify(n, &mut g.notify) {
                        self.trackers(n, &mut g.trackers);
                    }
                }
            }
        }
        if g.group.is_empty() {
            self.a
                .diags
                .ka_warning(
                    node.kw.loc,
                    node.kw.width,
                    format!("vrrp_sync_group {} has no member instances", g.name),
                )
                .hint("list the instances in 'group { VI_1 VI_2 }'");
        }
        self.cfg.vrrp_sync_groups.push(g);
    }

    /// Handles notify_* keywords; returns whether `n` was one.
    fn notify(&mut self, n: &Node, out: &mut Notify) -> bool {
        let slot = match n.name() {
            "notify_master" => &mut out.notify_master,
            "notify_backup" => &mut out.notify_backup,
            "notify_fault" => &mut out.notify_fault,
            "notify_stop" => &mut out.notify_stop,
            "notify_deleted" => &mut out.notify_deleted,
            "notify" => &mut out.notify,
            _ => return false,
        };
        if n.name() == "notify_deleted" {
            out.report_deleted = true;
            if n.args.is_empty() {
                return true;
            }
        }
        *slot = self.a.script(n);
        true
    }

    fn trackers(&mut self, n: &Node, out: &mut Trackers) -> bool {
        let (list, max, kind) = match n.name() {
            "track_interface" => (&mut out.track_interface, 253, "interface"),
            "track_script" => (&mut out.track_script, 253, "script"),
            "track_file" => (&mut out.track_file, 254, "file"),
            "track_process" => (&mut out.track_process, 254, "process"),
            "track_bfd" => (&mut out.track_bfd, 253, "bfd"),
            _ => return false,
        };
        for item in n.children() {
            let mut r = TrackRef {
                name: item.kw.text.clone(),
                weight: None,
                reverse: false,
            };
            let mut i = 0;
            while i < item.args.len() {
                let t = &item.args[i];
                match t.text.as_str() {
                    "weight" => {
                        if let Some(w) = item.args.get(i + 1) {
                            r.weight = self.a.int(w, -max, max);
                            i += 1;
                        } else {
                            self.a.diags.error(t.loc, t.width, "'weight' needs a value");
                        }
                    }
                    "reverse" => r.reverse = true,
                    "noreverse" => r.reverse = false,
                    _ => {
                        self.a.diags.ka_warning(
                            t.loc,
                            t.width,
                            format!("unknown {} tracking option '{}'", n.name(), t.text),
                        );
                    }
                }
                i += 1;
            }
            if kind != "interface" {
                self.locs
                    .track_refs
                    .push((kind.to_owned(), kind_name(kind), item.kw.clone()));
            }
            list.push(r);
        }
        true
    }

    fn vrrp_instance(&mut self, node: &Node) {
        let Some(name) = name_of(&mut self.a, node) else {
            return;
        };
        let g = self.cfg.global_defs.clone();
        let mut vi = VrrpInstance {
            name,
            state: VrrpState::Backup,
            interface: None,
            virtual_router_id: None,
            priority: 100,
            advert_int: 1.0,
            version: g.vrrp_version,
            family: Family::Inet,
            authentication: None,
            virtual_ipaddress: Vec::new(),
            virtual_ipaddress_excluded: Vec::new(),
            trackers: Trackers::default(),
            dont_track_primary: false,
            unicast_src_ip: None,
            unicast_peer: Vec::new(),
            unicast_ttl: None,
            mcast_dst_ip: None,
            nopreempt: false,
            preempt_delay: 0.0,
            accept: true,
            strict_mode: g.vrrp_strict,
            check_unicast_src: g.vrrp_check_unicast_src,
            garp_master_delay: g.vrrp_garp_master_delay,
            garp_master_repeat: g.vrrp_garp_master_repeat,
            garp_master_refresh: g.vrrp_garp_master_refresh,
            garp_master_refresh_repeat: g.vrrp_garp_master_refresh_repeat,
            garp_lower_prio_delay: g.vrrp_garp_lower_prio_delay,
            garp_lower_prio_repeat: g.vrrp_garp_lower_prio_repeat,
            down_timer_adverts: g.vrrp_down_timer_adverts,
            lower_prio_no_advert: g.vrrp_lower_prio_no_advert,
            higher_prio_send_advert: g.vrrp_higher_prio_send_advert,
            use_vmac: None,
            notify: Notify::default(),
            notify_master_rx_lower_pri: None,
            notify_priority_changes: None,
            smtp_alert: false,
            sync_group: None,
        };
        let mut state: Option<(VrrpState, &Token)> = None;
        let mut priority: Option<u8> = None;
        let mut advert: Option<(f64, &Token)> = None;
        let mut version_set = false;
        let mut vrid_tok = None;
        let mut auth_node = None;
        for n in node.children() {
            let a = &mut self.a;
            match n.name() {
                "state" => {
                    a.extra(n, 1);
                    if let Some(t) = a.need(n, 0, "MASTER or BACKUP") {
                        match t.text.as_str() {
                            "MASTER" => state = Some((VrrpState::Master, t)),
                            "BACKUP" => {
                                if state.is_some_and(|s| s.0 == VrrpState::Master) {
                                    a.diags.ka_warning(
                                        t.loc,
                                        t.width,
                                        "state BACKUP after state MASTER is ignored",
                                    );
                                } else {
                                    state = Some((VrrpState::Backup, t));
                                }
                            }
                            other => {
                                let d = a.diags.error(
                                    t.loc,
                                    t.width,
                                    format!("unknown state '{other}': using BACKUP"),
                                );
                                if other.eq_ignore_ascii_case("master")
                                    || other.eq_ignore_ascii_case("backup")
                                {
                                    d.hint(format!(
                                        "states are upper case: {}",
                                        other.to_ascii_uppercase()
                                    ));
                                } else {
                                    d.hint("state is MASTER or BACKUP");
                                }
                                state = Some((VrrpState::Backup, t));
                            }
                        }
                    }
                }
                "interface" => {
                    a.extra(n, 1);
                    if let Some(t) = a.need(n, 0, "an interface name") {
                        if t.text == "lo" {
                            a.diags.error(
                                t.loc,
                                t.width,
                                format!(
                                    "({}) cannot use a loopback interface (lo) for vrrp",
                                    vi.name
                                ),
                            );
                        } else {
                            vi.interface = Some(t.text.clone());
                        }
                    }
                }
                "virtual_router_id" => {
                    vrid_tok = n.args.first().cloned();
                    vi.virtual_router_id = a.arg_int(n, 1, 255);
                }
                "priority" => {
                    priority = a.arg_int(n, 1, 255);
                    if priority.is_none() && !n.args.is_empty() {
                        priority = Some(100);
                    }
                }
                "advert_int" => {
                    a.extra(n, 1);
                    if let Some(t) = a.need(n, 0, "an interval in seconds") {
                        if let Some(v) = a.timer(t, 0.0, 255.0) {
                            if v < 0.01 {
                                a.diags
                                    .error(t.loc, t.width, format!("advert_int '{}' is too small: at least 0.01 s (VRRPv3) or 1 s (VRRPv2)", t.text));
                            } else {
                                advert = Some((v, t));
                            }
                        }
                    }
                }
                "version" => {
                    if let Some(v) = a.arg_int(n, 2, 3) {
                        vi.version = v;
                        version_set = true;
                    }
                }
                "authentication" => auth_node = Some(n),
                "virtual_ipaddress" => vi.virtual_ipaddress = vips(a, n),
                "virtual_ipaddress_excluded" => vi.virtual_ipaddress_excluded = vips(a, n),
                "dont_track_primary" => vi.dont_track_primary = a.bare(n),
                "unicast_src_ip" | "mcast_src_ip" => vi.unicast_src_ip = a.arg_host_ip(n),
                "unicast_peer" => {
                    for item in n.children() {
                        if let Some(addr) = a.host_ip(&item.kw) {
                            let mut p = UnicastPeer {
                                address: addr,
                                min_ttl: None,
                                max_ttl: None,
                            };
                            let mut it = item.args.iter();
                            while let Some(k) = it.next() {
                                let v = it.next();
                                match (k.text.as_str(), v) {
                                    ("min_ttl", Some(v)) => p.min_ttl = a.int(v, 0, 255),
                                    ("max_ttl", Some(v)) => p.max_ttl = a.int(v, 0, 255),
                                    _ => {
                                        a.diags.error(
                                            k.loc,
                                            k.width,
                                            format!("unknown unicast_peer option '{}'", k.text),
                                        );
                                    }
                                }
                            }
                            vi.unicast_peer.push(p);
                        }
                    }
                }
                "unicast_ttl" => vi.unicast_ttl = a.arg_int(n, 0, 255),
                "mcast_dst_ip" => vi.mcast_dst_ip = a.arg_ip(n),
                "nopreempt" => vi.nopreempt = a.bare(n),
                "preempt" => vi.nopreempt = !a.bare(n),
                "preempt_delay" => set(&mut vi.preempt_delay, a.arg_timer(n, 0.0, 1000.0)),
                "accept" => vi.accept = a.bare(n),
                "no_accept" => vi.accept = !a.bare(n),
                "strict_mode" => vi.strict_mode = a.flag(n),
                "check_unicast_src" => vi.check_unicast_src = a.bare(n),
                "garp_master_delay" => set(&mut vi.garp_master_delay, a.arg_int(n, 0, 86400)),
                "garp_master_repeat" => set(&mut vi.garp_master_repeat, a.arg_int(n, 1, 255)),
                "garp_master_refresh" => set(&mut vi.garp_master_refresh, a.arg_int(n, 0, 86400)),
                "garp_master_refresh_repeat" => {
                    set(&mut vi.garp_master_refresh_repeat, a.arg_int(n, 1, 255));
                }
                "garp_lower_prio_delay" => {
                    set(&mut vi.garp_lower_prio_delay, a.arg_int(n, 0, 86400));
                }
                "garp_lower_prio_repeat" => {
                    set(&mut vi.garp_lower_prio_repeat, a.arg_int(n, 1, 255));
                }
                "down_timer_adverts" => set(&mut vi.down_timer_adverts, a.arg_int(n, 1, 100)),
                "lower_prio_no_advert" => vi.lower_prio_no_advert = a.flag(n),
                "higher_prio_send_advert" => vi.higher_prio_send_advert = a.flag(n),
                "use_vmac" => {
                    vi.use_vmac = Some(n.args.first().map_or_else(String::new, |t| t.text.clone()));
                }
                "notify_master_rx_lower_pri" => vi.notify_master_rx_lower_pri = a.script(n),
                kw @ ("virtual_routes" | "virtual_rules" | "use_ipvlan" | "vmac_xmit_base") => {
                    a.diags
                        .warning(
                            n.kw.loc,
                            n.kw.width,
                            format!("({}) {kw} is not applied by rvs yet: ignored", vi.name),
                        )
                        .hint("see docs/vrrp.md, \"Not yet\"");
                }
                "smtp_alert" => vi.smtp_alert = a.flag(n),
                "notify_priority_changes" => vi.notify_priority_changes = Some(a.flag(n)),
                "native_ipv6" => deprecated(
                    a,
                    n,
                    "an IPv6 virtual_ipaddress (the family comes from the addresses)",
                ),
                "vmac_garp_intvl" => deprecated(a, n, "garp_extra_if"),
                "lvs_sync_daemon_interface" => deprecated(a, n, "global_defs lvs_sync_daemon"),
                "linkbeat_use_polling" => deprecated(a, n, "linkbeat_interfaces"),
                _ => {
                    let mut notify = std::mem::take(&mut vi.notify);
                    let mut trackers = std::mem::take(&mut vi.trackers);
                    if !self.notify(n, &mut notify) {
                        self.trackers(n, &mut trackers);
                    }
                    vi.notify = notify;
                    vi.trackers = trackers;
                }
            }
        }
        let a = &mut self.a;
        // Family from the first VIP; all advertised VIPs must share it.
        if let Some(first) = vi.virtual_ipaddress.first() {
            vi.family = if first.address.is_ipv6() {
                Family::Inet6
            } else {
                Family::Inet
            };
        }
        if let Some(vips_node) = node
            .children()
            .iter()
            .find(|c| c.name() == "virtual_ipaddress")
        {
            let fam6 = vi.family == Family::Inet6;
            for item in vips_node.children() {
                if let Some(ip) = parse_ip(item.kw.text.split('/').next().unwrap_or("")) {
                    if ip.is_ipv6() != fam6 {
                        a.diags
                            .error(item.kw.loc, item.kw.width, format!("({}) address family of {} differs from the instance's first virtual_ipaddress", vi.name, item.kw.text))
                            .hint("put addresses of the other family in virtual_ipaddress_excluded");
                    }
                }
            }
        }
        if vi.family == Family::Inet6 {
            if version_set && vi.version == 2 {
                a.diags.error(
                    node.kw.loc,
                    node.kw.width,
                    format!("({}) VRRPv2 does not support IPv6: use version 3", vi.name),
                );
            }
            vi.version = 3;
        }
        // Priority and state defaults (spec §13: MASTER without priority is the owner, 255).
        vi.priority = match (priority, state) {
            (Some(p), _) => p,
            (None, Some((VrrpState::Master, _))) => 255,
            (None, _) => 100,
        };
        vi.state = match state {
            Some((s, _)) => s,
            None if vi.priority == 255 => VrrpState::Master,
            None => VrrpState::Backup,
        };
        if let Some((VrrpState::Backup, t)) = state {
            if vi.priority == 255 {
                a.diags.ka_warning(t.loc, t.width, format!("({}) priority 255 makes the instance the address owner: it starts as MASTER", vi.name));
                vi.state = VrrpState::Master;
            }
        }
        if vi.nopreempt && (vi.state == VrrpState::Master || vi.priority == 255) {
            if let Some(n) = node.children().iter().find(|c| c.name() == "nopreempt") {
                a.diags
                    .ka_warning(n.kw.loc, n.kw.width, format!("({}) nopreempt is incompatible with state MASTER or priority 255; it is cleared", vi.name))
                    .hint("use state BACKUP on every node of a nopreempt pair");
            }
            vi.nopreempt = false;
        }
        // advert_int rounding per version.
        if let Some((v, t)) = advert {
            if vi.version == 2 {
                let r = v.round();
                if r < 1.0 {
                    a.diags.error(
                        t.loc,
                        t.width,
                        format!("({}) VRRPv2 advert_int must be at least 1 second", vi.name),
                    );
                    vi.advert_int = 1.0;
                } else {
                    if (r - v).abs() > f64::EPSILON {
                        a.diags.ka_warning(
                            t.loc,
                            t.width,
                            format!(
                                "({}) VRRPv2 advert_int {} rounded to {} s",
                                vi.name, t.text, r
                            ),
                        );
                    }
                    vi.advert_int = r;
                }
            } else {
                let cs = (v * 100.0).round();
                if cs > 4095.0 {
                    a.diags.error(
                        t.loc,
                        t.width,
                        format!("({}) VRRPv3 advert_int must be at most 40.95 s", vi.name),
                    );
                    vi.advert_int = 1.0;
                } else {
                    vi.advert_int = cs / 100.0;
                }
            }
        }
        if let Some(an) = auth_node {
            let mut ty = None;
            let mut pass = None;
            for n in an.children() {
                match n.name() {
                    "auth_type" => {
                        a.extra(n, 1);
                        if let Some(t) = a.need(n, 0, "PASS or AH") {
                            match t.text.as_str() {
                                "PASS" | "AH" => ty = Some(t.text.clone()),
                                _ => {
                                    a.diags
                                        .error(
                                            t.loc,
                                            t.width,
                                            format!("unknown auth_type '{}'", t.text),
                                        )
                                        .hint("auth_type is PASS or AH");
                                }
                            }
                        }
                    }
                    "auth_pass" => {
                        a.extra(n, 1);
                        if let Some(t) = a.need(n, 0, "a password") {
                            if t.text.len() > 8 {
                                // keepalived reports this as a configuration error (`-t`
                                // fails), and uses the first 8 characters.
                                a.diags.ka_warning(t.loc, t.width, "auth_pass is longer than 8 characters: only the first 8 are used");
                            }
                            pass = Some(t.text.bytes().take(8).map(char::from).collect::<String>());
                        }
                    }
                    _ => {}
                }
            }
            match (ty, pass) {
                (Some(_), _) | (None, Some(_)) if vi.version == 3 => {
                    a.diags.ka_warning(
                        an.kw.loc,
                        an.kw.width,
                        format!(
                            "({}) authentication is not supported with VRRPv3 and is ignored",
                            vi.name
                        ),
                    );
                }
                (Some(t), Some(p)) => {
                    if t == "AH" && vi.family == Family::Inet6 {
                        a.diags.error(
                            an.kw.loc,
                            an.kw.width,
                            format!("({}) AH authentication is not supported with IPv6", vi.name),
                        );
                    } else {
                        vi.authentication = Some(Authentication {
                            auth_type: t,
                            auth_pass: p,
                        });
                    }
                }
                (Some(_), None) => {
                    a.diags.ka_warning(
                        an.kw.loc,
                        an.kw.width,
                        format!(
                            "({}) authentication has no auth_pass and is ignored",
                            vi.name
                        ),
                    );
                }
                (None, Some(_)) => {
                    a.diags.ka_warning(
                        an.kw.loc,
                        an.kw.width,
                        format!(
                            "({}) authentication has no auth_type and is ignored",
                            vi.name
                        ),
                    );
                }
                (None, None) => {}
            }
        }
        if vi.virtual_router_id.is_none() && vrid_tok.is_none() {
            a.diags
                .error(
                    node.kw.loc,
                    node.kw.width,
                    format!("({}) the virtual router id must be set", vi.name),
                )
                .hint("add 'virtual_router_id N' (1-255), the same on every node of the group");
        }
        if vi.interface.is_none()
            && vi.unicast_peer.is_empty()
            && !node.children().iter().any(|c| c.name() == "interface")
        {
            if let Some(d) = &g.default_interface {
                vi.interface = Some(d.clone());
            } else {
                a.diags
                    .error(
                        node.kw.loc,
                        node.kw.width,
                        format!("({}) no interface set", vi.name),
                    )
                    .hint("add 'interface IFNAME' (or unicast_peer with unicast_src_ip)");
            }
        }
        if vi.virtual_ipaddress.is_empty()
            && !node
                .children()
                .iter()
                .any(|c| c.name() == "no_virtual_ipaddress")
        {
            a.diags.warning(
                node.kw.loc,
                node.kw.width,
                format!(
                    "({}) no virtual_ipaddress: the instance holds no address",
                    vi.name
                ),
            );
        }
        if vi.strict_mode {
            if vi.authentication.is_some() {
                a.diags.ka_warning(
                    node.kw.loc,
                    node.kw.width,
                    format!(
                        "({}) authentication is not allowed in strict mode and is ignored",
                        vi.name
                    ),
                );
                vi.authentication = None;
            }
            if !vi.unicast_peer.is_empty() {
                a.diags.error(
                    node.kw.loc,
                    node.kw.width,
                    format!("({}) unicast_peer is not allowed in strict mode", vi.name),
                );
            }
            if vi.priority != 255 && !node.children().iter().any(|c| c.name() == "accept") {
                vi.accept = false;
            }
            vi.preempt_delay = 0.0;
        }
        if self.cfg.vrrp_instances.iter().any(|x| x.name == vi.name) {
            let t = &node.args[0];
            a.diags.error(
                t.loc,
                t.width,
                format!("vrrp_instance {} is defined twice", vi.name),
            );
            return;
        }
        self.locs
            .instances
            .push((node.kw.loc, self.cfg.vrrp_instances.len()));
        self.locs.vrid.push(vrid_tok);
        self.cfg.vrrp_instances.push(vi);
    }

    fn vs_group(&mut self, node: &Node) {
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
            a.diags.error(
                node.args[0].loc,
                node.args[0].width,
                format!("virtual_server_group {} is defined twice", g.name),
            );
            return;
        }
        self.cfg.virtual_server_groups.push(g);
    }

    fn virtual_server(&mut self, node: &Node) {
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
            delay_loop: 60.0,
            connect_timeout: 5.0,
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
            smtp_alert: false,
            mh_table_size: None,
            proxy_protocol: None,
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
                "lb_algo" | "lvs_sched" => {
                    if n.name() == "lb_algo" {
                        deprecated(a, n, "lvs_sched (keepalived's documented name)");
                    }
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
                    if n.name() == "lb_kind" {
                        deprecated(a, n, "lvs_method (keepalived's documented name)");
                    }
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
                "ha_suspend" => vs.ha_suspend = a.bare(n),
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
                "smtp_alert" => vs.smtp_alert = a.flag(n),
                "snmp_name" => {
                    a.string(n);
                }
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
        self.locs.vs.push(node.kw.clone());
        self.cfg.virtual_servers.push(vs);
    }

    fn real_server(&mut self, node: &Node, ctx: &RsCtx<'_>) -> Option<RealServer> {
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
            smtp_alert: true,
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
                "smtp_alert" => rs.smtp_alert = a.flag(n),
                "virtualhost" => rs.virtualhost = a.string(n),
                _ => {}
            }
        }
        // Port rules (spec §11.1).
        let method = rs.forwarding.method;
        rs.port = match (ctx.fwmark, ctx.vs_port, given_port) {
            (true, _, p) => {
                if method == Method::Nat {
                    p.unwrap_or(0)
                } else {
                    0
                }
            }
            (false, Some(vp), Some(p)) if method != Method::Nat && p != vp && vp != 0 => {
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
        };
        for n in node.children() {
            if crate::schema::CHECKERS.contains(&n.name()) {
                let mut cs = self.checker(n, &rs_ctx);
                rs.checkers.append(&mut cs);
            }
        }
        Some(rs)
    }

    fn checker(&mut self, node: &Node, ctx: &CheckCtx<'_>) -> Vec<Checker> {
        let a = &mut self.a;
        a.extra(node, 0);
        let mut c = Common::default();
        let mut extra = Vec::new();
        let mut kind = match node.name() {
            "TCP_CHECK" => CheckKind::Tcp,
            "HTTP_GET" => CheckKind::Http(HttpCheck {
                http_protocol: "1.0".into(),
                ..HttpCheck::default()
            }),
            "SSL_GET" => CheckKind::Ssl(HttpCheck {
                http_protocol: "1.0".into(),
                ..HttpCheck::default()
            }),
            "MISC_CHECK" => CheckKind::Misc(MiscCheck {
                misc_path: None,
                misc_timeout: ctx.vs_delay_loop,
                misc_dynamic: false,
            }),
            "SMTP_CHECK" => CheckKind::Smtp(SmtpCheck {
                helo_name: "smtpchecker.keepalived.org".into(),
            }),
            "DNS_CHECK" => CheckKind::Dns(DnsCheck {
                query_type: "SOA".into(),
                name: String::new(),
            }),
            "UDP_CHECK" => CheckKind::Udp(UdpCheck {
                payload: None,
                require_reply: false,
                reply: None,
                min_reply_length: 0,
                max_reply_length: 255,
            }),
            "PING_CHECK" => CheckKind::Ping,
            "FILE_CHECK" => CheckKind::File(FileCheck {
                track_file: None,
                weight: None,
                reverse: false,
            }),
            _ => CheckKind::Bfd(BfdCheck { name: None }),
        };
        for n in node.children() {
            if common(a, n, &mut c) {
                continue;
            }
            match (&mut kind, n.name()) {
                (CheckKind::Http(h) | CheckKind::Ssl(h), k) => match k {
                    "url" => {
                        if let Some(u) = url(a, n) {
                            h.urls.push(u);
                        }
                    }
                    "virtualhost" => h.virtualhost = a.string(n),
                    "http_protocol" => {
                        a.extra(n, 1);
                        if let Some(t) = a.need(n, 0, "1.0, 1.0C or 1.1") {
                            match t.text.as_str() {
                                "1.0" | "1.1" => h.http_protocol.clone_from(&t.text),
                                "1.0C" | "1.0c" => h.http_protocol = "1.0C".into(),
                                _ => {
                                    a.diags
                                        .error(
                                            t.loc,
                                            t.width,
                                            format!("invalid http_protocol '{}'", t.text),
                                        )
                                        .hint("1.0, 1.0C or 1.1");
                                }
                            }
                        }
                    }
                    "enable_sni" => h.enable_sni = a.flag(n),
                    "sni_name" => {
                        h.enable_sni = true;
                        h.sni_name = n.args.first().map(|t| t.text.clone());
                    }
                    "fast_recovery" => h.fast_recovery = a.flag(n),
                    "tls_compliant" => h.tls_compliant = a.flag(n),
                    _ => {}
                },
                (CheckKind::Misc(m), k) => match k {
                    "misc_path" => m.misc_path = a.script(n),
                    "misc_timeout" => set(
                        &mut m.misc_timeout,
                        a.arg_int::<u32>(n, 1, i64::from(u32::MAX)).map(f64::from),
                    ),
                    "misc_dynamic" => m.misc_dynamic = a.bare(n),
                    _ => {}
                },
                (CheckKind::Smtp(s), k) => match k {
                    "helo_name" => {
                        if let Some(v) = a.string(n) {
                            s.helo_name = v;
                        }
                    }
                    "host" => {
                        deprecated(a, n, "one SMTP_CHECK per host");
                        let mut hc = c.clone();
                        for hn in n.children() {
                            common(a, hn, &mut hc);
                        }
                        extra.push(hc);
                    }
                    _ => {}
                },
                (CheckKind::Dns(dq), k) => match k {
                    "type" => {
                        a.extra(n, 1);
                        if let Some(t) = a.need(n, 0, "a query type") {
                            // keepalived's check_dns.c types.
                            const TYPES: [&str; 9] = [
                                "A", "NS", "CNAME", "SOA", "MX", "TXT", "AAAA", "RRSIG", "DNSKEY",
                            ];
                            let up = t.text.to_ascii_uppercase();
                            if TYPES.contains(&up.as_str()) {
                                dq.query_type = up;
                            } else {
                                a.diags
                                    .error(
                                        t.loc,
                                        t.width,
                                        format!("unknown DNS query type '{}'", t.text),
                                    )
                                    .hint(TYPES.join(" "));
                            }
                        }
                    }
                    "name" => {
                        if let Some(v) = a.string(n) {
                            if v.split('.').filter(|_| v != ".").any(str::is_empty)
                                && !v.is_empty()
                                && v.trim_end_matches('.').split('.').any(str::is_empty)
                            {
                                a.diags.error(
                                    n.args[0].loc,
                                    n.args[0].width,
                                    format!("DNS name '{v}' has an empty label"),
                                );
                            } else {
                                dq.name = v;
                            }
                        }
                    }
                    _ => {}
                },
                (CheckKind::Udp(u), k) => match k {
                    "payload" => u.payload = hex_arg(a, n, false),
                    "require_reply" => {
                        u.require_reply = true;
                        if !n.args.is_empty() {
                            u.reply = hex_arg(a, n, true);
                        }
                    }
                    "min_reply_length" => set(&mut u.min_reply_length, a.arg_int(n, 0, 65535)),
                    "max_reply_length" => set(&mut u.max_reply_length, a.arg_int(n, 0, 65535)),
                    _ => {}
                },
                (CheckKind::File(f), k) => match k {
                    "track_file" => {
                        f.track_file = a.string(n);
                        if let Some(t) = n.args.first() {
                            self.locs.file_check_refs.push(t.clone());
                        }
                    }
                    "weight" => {
                        if let Some((w, r)) = weight_reverse(a, n, i64::from(i32::MAX)) {
                            f.weight = Some(w);
                            f.reverse = r;
                        }
                    }
                    _ => {}
                },
                (CheckKind::Bfd(b), "name") => {
                    b.name = a.string(n);
                    if let Some(t) = n.args.first() {
                        self.locs.bfd_check_refs.push(t.clone());
                    }
                }
                _ => {}
            }
        }
        // Required parts.
        match &kind {
            CheckKind::Http(h) | CheckKind::Ssl(h) if h.urls.is_empty() => {
                a.diags
                    .ka_warning(
                        node.kw.loc,
                        node.kw.width,
                        format!("{} has no url: the checker is ignored", node.name()),
                    )
                    .hint("add 'url { path /healthz }'");
                return Vec::new();
            }
            CheckKind::Misc(m) if m.misc_path.is_none() => {
                a.diags.ka_warning(
                    node.kw.loc,
                    node.kw.width,
                    "MISC_CHECK has no misc_path: the checker is ignored",
                );
                return Vec::new();
            }
            CheckKind::File(f) if f.track_file.is_none() => {
                a.diags.ka_warning(
                    node.kw.loc,
                    node.kw.width,
                    "FILE_CHECK has no track_file: the checker is ignored",
                );
                return Vec::new();
            }
            CheckKind::Bfd(b) if b.name.is_none() => {
                a.diags.ka_warning(
                    node.kw.loc,
                    node.kw.width,
                    "BFD_CHECK has no name: the checker is ignored",
                );
                return Vec::new();
            }
            _ => {}
        }
        // Per-type defaults (spec §11): retry 1 (DNS 3, MISC 0); delay_before_retry 1 s
        // (HTTP/SSL 3 s, DNS = delay_loop).
        let (def_retry, def_dbr) = match kind {
            CheckKind::Dns(_) => (3, None),
            CheckKind::Misc(_) => (0, Some(1.0)),
            CheckKind::Http(_) | CheckKind::Ssl(_) => (1, Some(3.0)),
            _ => (1, Some(1.0)),
        };
        if let CheckKind::Http(h) | CheckKind::Ssl(h) = &mut kind {
            if h.virtualhost.is_none() {
                h.virtualhost.clone_from(&ctx.vhost);
            }
        }
        let mk = |c: &Common, kind: CheckKind| {
            let delay_loop = c.delay_loop.unwrap_or(ctx.delay_loop);
            Checker {
                kind,
                connect_ip: c.connect_ip,
                connect_port: c.connect_port,
                bindto: c.bindto,
                bind_port: c.bind_port,
                bind_if: c.bind_if.clone(),
                connect_timeout: c.connect_timeout.unwrap_or(ctx.connect_timeout),
                fwmark: c.fwmark,
                retry: c.retry.or(ctx.d.retry).unwrap_or(def_retry),
                delay_before_retry: c
                    .delay_before_retry
                    .or(ctx.d.delay_before_retry)
                    .or(def_dbr)
                    .unwrap_or(delay_loop),
                delay_loop,
                warmup: c.warmup.or(ctx.d.warmup).unwrap_or(delay_loop),
                alpha: c.alpha.unwrap_or(ctx.alpha),
                log_all_failures: c.log_all_failures,
            }
        };
        let mut out = vec![mk(&c, kind.clone())];
        for hc in &extra {
            out.push(mk(hc, kind.clone()));
        }
        out
    }

    fn cross_checks(&mut self) {
        let a = &mut self.a;
        let cfg = &mut self.cfg;
        // keepalived refuses to call this safe: scripts run as root from paths it has not
        // checked. Its `-t` fails on it; rvs warns (checks the paths when it runs scripts).
        if !cfg.global_defs.enable_script_security {
            if let Some(loc) = self.locs.first_script {
                a.diags
                    .ka_warning(loc, 1, "SECURITY VIOLATION - scripts are being executed but script_security not enabled")
                    .hint("add 'enable_script_security' (and 'script_user') to global_defs");
            }
        }
        // keepalived: "lvs_sync_daemon vrrp instance X not found" (and no sync daemon).
        if let Some(ls) = &cfg.global_defs.lvs_sync_daemon {
            if !cfg.vrrp_instances.iter().any(|v| v.name == ls.instance) {
                let (loc, width) = ls.instance_at;
                a.diags.error(
                    loc,
                    width,
                    format!("lvs_sync_daemon: unknown vrrp_instance '{}'", ls.instance),
                );
            }
        }
        // Sync groups: members exist, and belong to one group only.
        for (group, tok) in &self.locs.sync_members {
            match cfg.vrrp_instances.iter_mut().find(|v| v.name == tok.text) {
                None => {
                    a.diags.error(
                        tok.loc,
                        tok.width,
                        format!(
                            "vrrp_sync_group {group}: unknown vrrp_instance '{}'",
                            tok.text
                        ),
                    );
                }
                Some(vi) => {
                    if let Some(prev) = &vi.sync_group {
                        if prev != group {
                            a.diags.error(
                                tok.loc,
                                tok.width,
                                format!(
                                    "vrrp_instance {} is already in sync group {prev}",
                                    tok.text
                                ),
                            );
                        }
                    } else {
                        vi.sync_group = Some(group.clone());
                    }
                }
            }
        }
        // Members of a sync group move together: tracker weights would make one member
        // change priority alone, so keepalived ignores them unless the group allows it.
        for (loc, idx) in &self.locs.instances {
            let vi = &mut cfg.vrrp_instances[*idx];
            let Some(gname) = &vi.sync_group else {
                continue;
            };
            let allowed = cfg
                .vrrp_sync_groups
                .iter()
                .any(|g| &g.name == gname && g.sync_group_tracking_weight);
            if allowed {
                continue;
            }
            let scripts = &cfg.vrrp_scripts;
            let files = &cfg.track_files;
            let mut ignored = Vec::new();
            vi.trackers.track_script.retain(|r| {
                let w = r
                    .weight
                    .or_else(|| scripts.iter().find(|s| s.name == r.name).map(|s| s.weight))
                    .unwrap_or(0);
                (w == 0).then_some(()).is_some() || {
                    ignored.push(format!("script {}", r.name));
                    false
                }
            });
            vi.trackers.track_file.retain(|r| {
                let w = r
                    .weight
                    .or_else(|| files.iter().find(|s| s.name == r.name).map(|s| s.weight))
                    .unwrap_or(1);
                (w == 0).then_some(()).is_some() || {
                    ignored.push(format!("file {}", r.name));
                    false
                }
            });
            vi.trackers.track_interface.retain(|r| {
                r.weight.unwrap_or(0) == 0 || {
                    ignored.push(format!("interface {}", r.name));
                    false
                }
            });
            for what in ignored {
                a.diags
                    .ka_warning(*loc, 13, format!("({}) ignoring tracked {what} with weights due to SYNC group {gname}", vi.name))
                    .hint(format!("add 'sync_group_tracking_weight' to vrrp_sync_group {gname}, or use weight 0 (fault on failure)"));
            }
        }
        // Tracker references.
        for (kind, what, tok) in &self.locs.track_refs {
            let known = match kind.as_str() {
                "script" => cfg.vrrp_scripts.iter().any(|s| s.name == tok.text),
                "file" => cfg.track_files.iter().any(|s| s.name == tok.text),
                "bfd" => cfg.bfd_instances.iter().any(|s| s.name == tok.text),
                "process" => cfg.track_processes.iter().any(|s| s.name == tok.text),
                _ => true,
            };
            if !known {
                let names: Vec<&str> = match kind.as_str() {
                    "script" => cfg.vrrp_scripts.iter().map(|s| s.name.as_str()).collect(),
                    "bfd" => cfg.bfd_instances.iter().map(|s| s.name.as_str()).collect(),
                    "process" => cfg
                        .track_processes
                        .iter()
                        .map(|s| s.name.as_str())
                        .collect(),
                    _ => cfg.track_files.iter().map(|s| s.name.as_str()).collect(),
                };
                let d = a.diags.error(
                    tok.loc,
                    tok.width,
                    format!("track_{kind} refers to unknown {what} '{}'", tok.text),
                );
                if let Some(b) = suggest::closest(&tok.text, &names) {
                    d.hint(format!("did you mean {b}?"));
                }
            }
        }
        for tok in &self.locs.file_check_refs {
            if !cfg.track_files.iter().any(|s| s.name == tok.text) {
                a.diags.error(
                    tok.loc,
                    tok.width,
                    format!("FILE_CHECK refers to unknown track_file '{}'", tok.text),
                );
            }
        }
        for tok in &self.locs.bfd_check_refs {
            if !cfg.bfd_instances.iter().any(|b| b.name == tok.text) {
                let names: Vec<&str> = cfg.bfd_instances.iter().map(|b| b.name.as_str()).collect();
                let d = a.diags.error(
                    tok.loc,
                    tok.width,
                    format!("BFD_CHECK refers to unknown bfd_instance '{}'", tok.text),
                );
                if let Some(b) = suggest::closest(&tok.text, &names) {
                    d.hint(format!("did you mean {b}?"));
                }
            }
        }
        // Duplicate VRID on one interface (same family).
        let mut seen: BTreeMap<(String, u8, bool), String> = BTreeMap::new();
        for (i, (_, idx)) in self.locs.instances.iter().enumerate() {
            let vi = &cfg.vrrp_instances[*idx];
            let (Some(vrid), Some(ifname)) = (vi.virtual_router_id, &vi.interface) else {
                continue;
            };
            let key = (ifname.clone(), vrid, vi.family == Family::Inet6);
            if let Some(prev) = seen.get(&key) {
                if let Some(t) = &self.locs.vrid[i] {
                    a.diags
                        .error(t.loc, t.width, format!("({}) virtual_router_id {vrid} is already used on {ifname} by {prev}", vi.name))
                        .hint("each VRRP group on an interface needs its own virtual_router_id");
                }
            } else {
                seen.insert(key, vi.name.clone());
            }
        }
        // Virtual server groups referenced exist; duplicate services.
        let mut services: std::collections::HashSet<String> = std::collections::HashSet::new();
        for (i, vs) in cfg.virtual_servers.iter().enumerate() {
            let tok = &self.locs.vs[i];
            if let VsKey::Group { group } = &vs.key {
                if !self.locs.vs_groups.contains_key(group) {
                    a.diags.error(
                        tok.loc,
                        tok.width,
                        format!(
                            "virtual_server group {group}: no virtual_server_group of that name"
                        ),
                    );
                }
            }
            let label = vs_label(&vs.key, vs.protocol);
            if services.contains(&label) {
                a.diags.error(
                    tok.loc,
                    tok.width,
                    format!("virtual server {label} is defined twice"),
                );
            } else {
                services.insert(label);
            }
        }
    }
}

#[derive(Default, Clone, Copy)]
struct Defaults {
    retry: Option<u32>,
    delay_before_retry: Option<f64>,
    warmup: Option<f64>,
    delay_loop: Option<f64>,
    connect_timeout: Option<f64>,
}

struct RsCtx<'v> {
    vs_port: Option<u16>,
    fwmark: bool,
    weight: i32,
    fwd: &'v Forwarding,
    vs: &'v VirtualServer,
    d: &'v Defaults,
}

struct CheckCtx<'v> {
    d: &'v Defaults,
    vs_delay_loop: f64,
    connect_timeout: f64,
    delay_loop: f64,
    alpha: bool,
    vhost: Option<String>,
}

#[derive(Default, Clone)]
struct Common {
    connect_ip: Option<IpAddr>,
    connect_port: Option<u16>,
    bindto: Option<IpAddr>,
    bind_port: Option<u16>,
    bind_if: Option<String>,
    connect_timeout: Option<f64>,
    fwmark: Option<u32>,
    retry: Option<u32>,
    delay_before_retry: Option<f64>,
    warmup: Option<f64>,
    delay_loop: Option<f64>,
    alpha: Option<bool>,
    log_all_failures: bool,
}

/// The checker keywords shared by most types; returns whether `n` was one.
fn common(a: &mut Args<'_>, n: &Node, c: &mut Common) -> bool {
    match n.name() {
        "connect_ip" => c.connect_ip = a.arg_ip(n),
        "connect_port" => c.connect_port = a.arg_int(n, 1, 65535),
        "bindto" => c.bindto = a.arg_ip(n),
        "bind_port" => c.bind_port = a.arg_int(n, 1, 65535),
        "bind_if" => c.bind_if = a.string(n),
        "connect_timeout" => c.connect_timeout = a.arg_timer(n, 0.000_001, f64::from(u32::MAX)),
        "fwmark" => c.fwmark = a.arg_int(n, 0, i64::from(u32::MAX)),
        "retry" => c.retry = a.arg_int(n, 0, i64::from(u32::MAX)),
        "nb_get_retry" => {
            let d = a.diags.ka_warning(
                n.kw.loc,
                n.kw.width,
                "nb_get_retry is deprecated: use retry",
            );
            d.hint("keepalived 2.2 accepts nb_get_retry only in HTTP_GET and SSL_GET");
            c.retry = a.arg_int(n, 0, i64::from(u32::MAX));
        }
        "delay_before_retry" => c.delay_before_retry = a.arg_timer(n, 0.0, f64::from(u32::MAX)),
        "warmup" => c.warmup = a.arg_timer(n, 0.0, f64::from(u32::MAX)),
        "delay_loop" => c.delay_loop = a.arg_timer(n, 0.000_001, f64::from(u32::MAX)),
        "alpha" => c.alpha = Some(a.flag(n)),
        "log_all_failures" => c.log_all_failures = a.flag(n),
        _ => return false,
    }
    true
}

fn url(a: &mut Args<'_>, node: &Node) -> Option<Url> {
    let mut u = Url {
        path: String::new(),
        digest: None,
        status_code: Vec::new(),
        virtualhost: None,
        regex: None,
        regex_no_match: false,
    };
    let mut has_path = false;
    for n in node.children() {
        match n.name() {
            "path" => {
                if let Some(p) = a.string(n) {
                    u.path = p;
                    has_path = true;
                }
            }
            "digest" => {
                a.extra(n, 1);
                if let Some(t) = a.need(n, 0, "an MD5 digest") {
                    if t.text.len() == 32 && t.text.bytes().all(|b| b.is_ascii_hexdigit()) {
                        u.digest = Some(t.text.to_ascii_lowercase());
                    } else {
                        a.diags
                            .error(
                                t.loc,
                                t.width,
                                format!(
                                    "invalid digest '{}': expected 32 hex digits (MD5)",
                                    t.text
                                ),
                            )
                            .hint("`rvs genhash` prints the digest of a URL");
                    }
                }
            }
            "status_code" => {
                for t in &n.args {
                    for part in t.text.split(',').filter(|p| !p.is_empty()) {
                        let (lo, hi) = part.split_once('-').unwrap_or((part, part));
                        match (parse_int(lo), parse_int(hi)) {
                            (Some(l), Some(h))
                                if (100..=599).contains(&l)
                                    && (100..=599).contains(&h)
                                    && l <= h =>
                            {
                                u.status_code.push((
                                    u16::try_from(l).unwrap_or(200),
                                    u16::try_from(h).unwrap_or(299),
                                ));
                            }
                            _ => {
                                a.diags
                                    .error(t.loc, t.width, format!("invalid status_code '{part}'"))
                                    .hint("codes or ranges within 100-599, e.g. 200 or 200-299");
                            }
                        }
                    }
                }
                if n.args.is_empty() {
                    a.need(n, 0, "a status code");
                }
            }
            "virtualhost" => u.virtualhost = a.string(n),
            "regex" => u.regex = n.args.first().map(|t| t.text.clone()),
            "regex_no_match" => u.regex_no_match = a.bare(n),
            _ => {}
        }
    }
    if !has_path {
        a.diags
            .ka_warning(node.kw.loc, node.kw.width, "url has no path: it is ignored")
            .hint("add 'path /'");
        return None;
    }
    if u.status_code.is_empty() {
        u.status_code.push((200, 299));
    }
    Some(u)
}

fn hex_arg(a: &mut Args<'_>, n: &Node, wildcards: bool) -> Option<String> {
    let t = a.need(n, 0, "hex bytes")?;
    let mut out = String::new();
    for tok in &n.args {
        let digits: Vec<char> = tok.text.chars().collect();
        let valid = digits
            .iter()
            .all(|c| c.is_ascii_hexdigit() || (wildcards && (*c == 'x' || *c == 'X')));
        if !valid {
            a.diags
                .error(tok.loc, tok.width, format!("invalid hex '{}'", tok.text));
            return None;
        }
        for pair in digits.chunks(2) {
            if pair.len() == 2 {
                out.push(pair[0].to_ascii_lowercase());
                out.push(pair[1].to_ascii_lowercase());
            } else {
                out.push('0');
                out.push(pair[0].to_ascii_lowercase());
            }
        }
    }
    let _ = t;
    Some(out)
}

fn vips(a: &mut Args<'_>, n: &Node) -> Vec<VipAddr> {
    let mut out = Vec::new();
    for item in n.children() {
        let text = &item.kw.text;
        let (addr_s, len_s) = match text.split_once('/') {
            Some((x, y)) => (x, Some(y)),
            None => (text.as_str(), None),
        };
        let Some(address) = parse_ip(addr_s) else {
            a.diags
                .error(
                    item.kw.loc,
                    item.kw.width,
                    format!("invalid virtual_ipaddress '{text}'"),
                )
                .hint("an address with an optional prefix length, e.g. 198.18.0.10/24");
            continue;
        };
        let max = if address.is_ipv6() { 128 } else { 32 };
        let prefix_len = match len_s {
            None => max,
            Some(l) => match parse_int(l) {
                Some(v) if (0..=i64::from(max)).contains(&v) => u8::try_from(v).unwrap_or(max),
                _ => {
                    a.diags.error(
                        item.kw.loc,
                        item.kw.width,
                        format!("invalid prefix length in '{text}' (0-{max})"),
                    );
                    continue;
                }
            },
        };
        let mut v = VipAddr::new(address, prefix_len);
        let mut it = item.args.iter();
        while let Some(k) = it.next() {
            let mut val = |a: &mut Args<'_>| {
                let v = it.next().map(|t| t.text.clone());
                if v.is_none() {
                    a.diags
                        .error(k.loc, k.width, format!("'{}' needs a value", k.text));
                }
                v
            };
            match k.text.as_str() {
                "brd" => v.brd = val(a),
                "dev" => v.dev = val(a),
                "scope" => v.scope = val(a),
                "label" => v.label = val(a),
                "peer" => v.peer = val(a),
                "no_track" => v.no_track = true,
                "preferred_lft" | "valid_lft" | "metric" | "track_group" | "use_vmac" | "group" => {
                    let x = val(a);
                    v.options
                        .push(format!("{} {}", k.text, x.unwrap_or_default()));
                }
                "home" | "-nodad" | "nodad" | "mngtmpaddr" | "noprefixroute" | "autojoin" => {
                    v.options.push(k.text.clone());
                }
                _ => {
                    a.diags.ka_warning(
                        k.loc,
                        k.width,
                        format!("unknown virtual_ipaddress option '{}'", k.text),
                    );
                }
            }
        }
        out.push(v);
    }
    out
}

fn vs_key(a: &mut Args<'_>, n: &Node) -> Option<VsKey> {
    let first = a.need(n, 0, "an address and port, 'fwmark N' or 'group NAME'")?;
    match first.text.as_str() {
        "fwmark" => {
            a.extra(n, 2);
            let t = a.need(n, 1, "a mark after 'fwmark'")?;
            let m = a.int(t, 1, i64::from(u32::MAX))?;
            Some(VsKey::Fwmark { fwmark: m })
        }
        "group" => {
            a.extra(n, 2);
            let t = a.need(n, 1, "a group name after 'group'")?;
            Some(VsKey::Group {
                group: t.text.clone(),
            })
        }
        _ => {
            a.extra(n, 2);
            let address = a.host_ip(first)?;
            let port = match n.args.get(1) {
                Some(p) => a.port(p)?,
                None => 0,
            };
            Some(VsKey::Address { address, port })
        }
    }
}

fn forwarding(a: &mut Args<'_>, n: &Node) -> Option<Forwarding> {
    let t = a.need(n, 0, "NAT, DR or TUN")?;
    let method = match t.text.as_str() {
        "NAT" => Method::Nat,
        "DR" => Method::Dr,
        "TUN" => Method::Tun,
        other => {
            let d = a.diags.error(
                t.loc,
                t.width,
                format!("unknown forwarding method '{other}'"),
            );
            if ["nat", "dr", "tun"].contains(&other.to_ascii_lowercase().as_str()) {
                d.hint(format!(
                    "methods are upper case: {}",
                    other.to_ascii_uppercase()
                ));
            } else {
                d.hint("lb_kind is NAT, DR or TUN");
            }
            return None;
        }
    };
    if method != Method::Tun {
        a.extra(n, 1);
        return Some(Forwarding {
            method,
            tunnel: None,
        });
    }
    let mut tun = Tunnel {
        kind: "ipip".into(),
        port: None,
        csum: None,
    };
    let mut it = n.args[1..].iter();
    while let Some(k) = it.next() {
        match k.text.as_str() {
            "type" => match it.next() {
                Some(v) if ["ipip", "gue", "gre"].contains(&v.text.as_str()) => {
                    tun.kind.clone_from(&v.text);
                }
                Some(v) => {
                    a.diags.error(
                        v.loc,
                        v.width,
                        format!("unknown tunnel type '{}': ipip, gue or gre", v.text),
                    );
                }
                None => {
                    a.diags
                        .error(k.loc, k.width, "'type' needs ipip, gue or gre");
                }
            },
            "port" => match it.next() {
                Some(v) => tun.port = a.int(v, 1, 65535),
                None => {
                    a.diags.error(k.loc, k.width, "'port' needs a number");
                }
            },
            "nocsum" | "csum" | "remcsum" => tun.csum = Some(k.text.clone()),
            _ => {
                a.diags
                    .error(k.loc, k.width, format!("unknown TUN option '{}'", k.text));
            }
        }
    }
    if tun.kind == "gue" && tun.port.is_none() {
        a.diags.error(t.loc, t.width, "TUN type gue needs a port");
    }
    if tun.kind == "ipip" && tun.csum.is_some() {
        a.diags.error(
            t.loc,
            t.width,
            "TUN type ipip does not take a checksum option",
        );
    }
    if tun.kind == "gre" && tun.csum.as_deref() == Some("remcsum") {
        a.diags
            .error(t.loc, t.width, "TUN type gre does not support remcsum");
    }
    Some(Forwarding {
        method,
        tunnel: Some(tun),
    })
}

fn lvs_sync_daemon(a: &mut Args<'_>, n: &Node) -> Option<crate::model::LvsSyncDaemon> {
    let (Some(ifname), Some(instance)) = (n.args.first(), n.args.get(1)) else {
        a.diags.error(
            n.kw.loc,
            n.kw.width,
            "lvs_sync_daemon needs an interface and a vrrp_instance name",
        );
        return None;
    };
    let mut sd = crate::model::LvsSyncDaemon {
        interface: ifname.text.clone(),
        instance: instance.text.clone(),
        instance_at: (instance.loc, instance.width),
        id: None,
        maxlen: None,
        port: None,
        ttl: None,
        group: None,
    };
    let mut it = n.args.iter().skip(2);
    while let Some(key) = it.next() {
        let Some(v) = it.next() else {
            a.diags
                .error(key.loc, key.width, format!("'{}' needs a value", key.text));
            break;
        };
        match key.text.as_str() {
            "id" => sd.id = a.int(v, 0, 255),
            "maxlen" => sd.maxlen = a.int(v, 1, 65507),
            "port" => sd.port = a.int(v, 1, 65535),
            "ttl" => sd.ttl = a.int(v, 1, 255),
            "group" => match v.text.parse::<IpAddr>() {
                Ok(addr) if addr.is_multicast() => sd.group = Some(addr),
                _ => {
                    a.diags.error(
                        v.loc,
                        v.width,
                        format!(
                            "lvs_sync_daemon group '{}' is not a multicast address",
                            v.text
                        ),
                    );
                }
            },
            _ => {
                a.diags.error(
                    key.loc,
                    key.width,
                    format!(
                        "unknown lvs_sync_daemon option '{}': id, maxlen, port, ttl or group",
                        key.text
                    ),
                );
            }
        }
    }
    Some(sd)
}

fn lvs_timeouts(a: &mut Args<'_>, n: &Node, t: &mut LvsTimeouts) {
    let mut it = n.args.iter();
    while let Some(k) = it.next() {
        let slot = match k.text.as_str() {
            "tcp" => &mut t.tcp,
            "tcpfin" => &mut t.tcpfin,
            "udp" => &mut t.udp,
            _ => {
                a.diags.error(
                    k.loc,
                    k.width,
                    format!("unknown lvs_timeouts item '{}': tcp, tcpfin or udp", k.text),
                );
                continue;
            }
        };
        match it.next() {
            Some(v) => *slot = a.int(v, 1, 86400 * 31),
            None => {
                a.diags.error(
                    k.loc,
                    k.width,
                    format!("'{}' needs a number of seconds", k.text),
                );
            }
        }
    }
}

fn weight_reverse(a: &mut Args<'_>, n: &Node, max: i64) -> Option<(i32, bool)> {
    a.extra(n, 2);
    let t = a.need(n, 0, "a weight")?;
    let w = a.int(t, -max, max)?;
    let rev = match n.args.get(1).map(|t| t.text.as_str()) {
        None | Some("noreverse") => false,
        Some("reverse") => true,
        Some(_) => {
            let t = &n.args[1];
            a.diags.error(
                t.loc,
                t.width,
                format!("expected 'reverse' after the weight, found '{}'", t.text),
            );
            false
        }
    };
    Some((w, rev))
}

fn deprecated(a: &mut Args<'_>, n: &Node, instead: &str) {
    a.diags.warning(
        n.kw.loc,
        n.kw.width,
        format!("'{}' is deprecated: use {instead}", n.kw.text),
    );
}

fn other(g: &mut GlobalDefs, n: &Node) {
    g.other.insert(
        n.name().to_owned(),
        n.args.iter().map(|t| t.text.clone()).collect(),
    );
}

fn set<T>(slot: &mut T, v: Option<T>) {
    if let Some(v) = v {
        *slot = v;
    }
}

fn kind_name(kind: &str) -> &'static str {
    match kind {
        "script" => "vrrp_script",
        "file" => "track_file",
        "process" => "vrrp_track_process",
        _ => "bfd_instance",
    }
}

fn method_name(m: Method) -> &'static str {
    match m {
        Method::Nat => "NAT",
        Method::Dr => "DR",
        Method::Tun => "TUN",
    }
}

fn valid_granularity(s: &str) -> bool {
    if let Ok(std::net::Ipv4Addr { .. }) = s.parse::<std::net::Ipv4Addr>() {
        let m = u32::from(
            s.parse::<std::net::Ipv4Addr>()
                .unwrap_or(std::net::Ipv4Addr::UNSPECIFIED),
        );
        return m != 0 && (!m).wrapping_add(1) & !m == 0;
    }
    matches!(parse_int(s), Some(1..=128))
}

fn is_prime(n: u32) -> bool {
    n >= 2 && (2..=n.isqrt()).all(|d| !n.is_multiple_of(d))
}

/// `a.b.c.d`, `a.b.c.d-e`, `a.b.c.d-e.f.g.h`, `a.b.c.d/nn` and the IPv6 equivalents.
#[expect(
    clippy::many_single_char_names,
    reason = "a, b: the two ends of a range, as written"
)]
fn parse_range(s: &str) -> Option<(IpAddr, IpAddr)> {
    if let Some((a, len)) = s.split_once('/') {
        let ip = parse_ip(a)?;
        let len: u32 = len.parse().ok()?;
        return match ip {
            IpAddr::V4(v) if len <= 32 => {
                let m = if len == 0 { 0 } else { u32::MAX << (32 - len) };
                let base = u32::from(v) & m;
                Some((IpAddr::V4(base.into()), IpAddr::V4((base | !m).into())))
            }
            IpAddr::V6(v) if len <= 128 => {
                let m = if len == 0 {
                    0
                } else {
                    u128::MAX << (128 - len)
                };
                let base = u128::from(v) & m;
                Some((IpAddr::V6(base.into()), IpAddr::V6((base | !m).into())))
            }
            _ => None,
        };
    }
    let Some((a, b)) = s.split_once('-') else {
        let ip = parse_ip(s)?;
        return Some((ip, ip));
    };
    let first = parse_ip(a)?;
    if let Some(last) = parse_ip(b) {
        return (last.is_ipv6() == first.is_ipv6() && last >= first).then_some((first, last));
    }
    match first {
        IpAddr::V4(v) => {
            let end: u8 = b.parse().ok()?;
            let o = v.octets();
            (end >= o[3]).then(|| (first, IpAddr::V4([o[0], o[1], o[2], end].into())))
        }
        IpAddr::V6(v) => {
            let end = u16::from_str_radix(b, 16).ok()?;
            let mut seg = v.segments();
            (end >= seg[7]).then(|| {
                seg[7] = end;
                (first, IpAddr::V6(seg.into()))
            })
        }
    }
}

/// keepalived's label for a service: `[198.18.0.1]:tcp:80`, `FWM 1`, `group NAME`.
pub fn vs_label(key: &VsKey, proto: Option<Protocol>) -> String {
    let p = match proto {
        Some(Protocol::Tcp) => "tcp",
        Some(Protocol::Udp) => "udp",
        Some(Protocol::Sctp) => "sctp",
        None => "none",
    };
    match key {
        VsKey::Address { address, port } => format!("[{address}]:{p}:{port}"),
        VsKey::Fwmark { fwmark } => format!("FWM {fwmark}"),
        VsKey::Group { group } => format!("group {group}:{p}"),
    }
}

fn rs_label(a: IpAddr, p: u16) -> String {
    format!("[{a}]:{p}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        let r = parse_range("198.18.3.20-25").unwrap();
        assert_eq!(r.1.to_string(), "198.18.3.25");
        let r = parse_range("198.18.3.0/30").unwrap();
        assert_eq!(
            (r.0.to_string(), r.1.to_string()),
            ("198.18.3.0".into(), "198.18.3.3".into())
        );
        assert!(parse_range("198.18.3.20-10").is_none());
        let r = parse_range("fd00:198:18::1-a").unwrap();
        assert_eq!(r.1.to_string(), "fd00:198:18::a");
    }

    #[test]
    fn granularity() {
        assert!(valid_granularity("255.255.255.0"));
        assert!(!valid_granularity("255.0.255.0"));
        assert!(valid_granularity("64"));
        assert!(!valid_granularity("129"));
    }

    #[test]
    fn primes() {
        assert!(is_prime(4093) && is_prime(65537) && !is_prime(4096));
    }
}
