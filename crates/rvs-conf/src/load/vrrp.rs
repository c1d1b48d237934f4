//! VRRP blocks: `vrrp_script`, `track_file`, `track_process`, `bfd_instance`, `vrrp_sync_group`, `vrrp_instance` (with their notify scripts and trackers).

#[allow(clippy::wildcard_imports)]
use super::*;
use std::time::Duration;

impl Loader<'_> {
    pub(super) fn vrrp_script(&mut self, node: &Node) {
        let a = &mut self.a;
        let Some(name) = name_of(a, node) else { return };
        let mut s = VrrpScript {
            name,
            script: None,
            interval: Duration::from_secs(1),
            timeout: Duration::ZERO,
            weight: 0,
            weight_reverse: false,
            rise: 1,
            fall: 1,
            init_fail: false,
        };
        let mut timeout = None;
        let mut user = None;
        for n in node.children() {
            match n.name() {
                "script" => s.script = a.script(n),
                "interval" => {
                    if let Some(v) = a.arg_timer(n, 0.0, f64::from(u32::MAX)) {
                        s.interval = if v.is_zero() {
                            Duration::from_secs(1)
                        } else {
                            v
                        };
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
                "user" => user = Some(script_user(a, n)),
                "init_fail" => s.init_fail = a.bare(n),
                _ => {}
            }
        }
        // `user NAME [GROUP]`: the script runs as that user; keepalived removes a script
        // whose user does not exist on the host (its trackers then track nothing).
        match user {
            Some(None) => return,
            Some(Some((u, g))) => {
                if let Some(sc) = s.script.as_mut() {
                    if sc.user.is_none() {
                        sc.user = Some(u);
                        sc.group = g;
                    }
                }
            }
            None => {}
        }
        s.timeout = timeout.filter(|t| !t.is_zero()).unwrap_or(s.interval);
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

    pub(super) fn track_file(&mut self, node: &Node) {
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

    pub(super) fn track_process(&mut self, node: &Node) {
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

    pub(super) fn bfd_instance(&mut self, node: &Node) {
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
                "min_rx" => set(
                    &mut b.min_rx,
                    a.arg_timer(n, 1.0, 4_294_967.0).map(|d| d / 1000),
                ),
                "min_tx" => set(
                    &mut b.min_tx,
                    a.arg_timer(n, 1.0, 4_294_967.0).map(|d| d / 1000),
                ),
                "idle_tx" => set(
                    &mut b.idle_tx,
                    a.arg_timer(n, 1000.0, 4_294_967.0).map(|d| d / 1000),
                ),
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
        self.cfg.bfd_instances.push(b);
    }

    pub(super) fn sync_group(&mut self, node: &Node) {
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
            smtp_alert: None,
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
                "smtp_alert" => g.smtp_alert = Some(self.a.flag(n)),
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
        } else if g.group.len() == 1 {
            // keepalived 2.2.7: "Sync group G has only 1 virtual router(s) - this probably
            // isn't what you want" (a config error for -t; the group runs).
            self.a
                .diags
                .ka_warning(
                    node.kw.loc,
                    node.kw.width,
                    format!(
                        "vrrp_sync_group {} has only one member: a group syncs nothing",
                        g.name
                    ),
                )
                .hint("add the instances that must fail over together, or drop the group");
        }
        self.cfg.vrrp_sync_groups.push(g);
    }

    /// Handles notify_* keywords; returns whether `n` was one.
    pub(super) fn notify(&mut self, n: &Node, out: &mut Notify) -> bool {
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

    pub(super) fn trackers(&mut self, n: &Node, out: &mut Trackers) -> bool {
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

    pub(super) fn vrrp_instance(&mut self, node: &Node) {
        let Some(name) = name_of(&mut self.a, node) else {
            return;
        };
        let g = self.cfg.global_defs.clone();
        let mut vi = VrrpInstance {
            virtual_routes: Vec::new(),
            virtual_rules: Vec::new(),
            name,
            state: VrrpState::Backup,
            interface: None,
            virtual_router_id: None,
            priority: 100,
            advert_int: Duration::from_secs(1),
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
            promote_secondaries: false,
            preempt_delay: Duration::ZERO,
            accept: true,
            strict_mode: g.vrrp_strict,
            check_unicast_src: g.vrrp_check_unicast_src,
            old_unicast_checksum: crate::model::OldChecksum::Auto,
            unicast_peer_block: false,
            unicast_fault_no_peer: false,
            track_src_ip: false,
            kernel_rx_buf_size: None,
            skip_check_adv_addr: g.vrrp_skip_check_adv_addr,
            owner_ignore_adverts: g.vrrp_owner_ignore_adverts,
            garp_master_delay: g.vrrp_garp_master_delay,
            garp_master_repeat: g.vrrp_garp_master_repeat,
            garp_master_refresh: g.vrrp_garp_master_refresh,
            garp_master_refresh_repeat: g.vrrp_garp_master_refresh_repeat,
            garp_extra_if: None,
            garp_lower_prio_delay: g.vrrp_garp_lower_prio_delay,
            garp_lower_prio_repeat: g.vrrp_garp_lower_prio_repeat,
            down_timer_adverts: g.vrrp_down_timer_adverts,
            lower_prio_no_advert: g.vrrp_lower_prio_no_advert,
            higher_prio_send_advert: g.vrrp_higher_prio_send_advert,
            split_brain_arbitration: false,
            use_vmac: None,
            vmac_xmit_base: false,
            notify: Notify::default(),
            notify_master_rx_lower_pri: None,
            notify_priority_changes: None,
            smtp_alert: None,
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
                        if let Some(v) = a.timer(t, 0.0, 255.0).map(|d| d.as_secs_f64()) {
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
                    vi.unicast_peer_block = true;
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
                                    ("min_ttl" | "max_ttl", Some(v)) => {
                                        let ttl = a.int(v, 0, 255);
                                        if k.text == "min_ttl" {
                                            p.min_ttl = ttl;
                                        } else {
                                            p.max_ttl = ttl;
                                        }
                                        a.diags.not_applied(
                                            k.loc,
                                            k.width,
                                            format!(
                                                "unicast_peer option '{}' is not applied by \
                                                 rvs: adverts are not filtered by TTL",
                                                k.text
                                            ),
                                        );
                                    }
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
                "unicast_fault_no_peer" => vi.unicast_fault_no_peer = a.bare(n),
                "track_src_ip" => vi.track_src_ip = a.bare(n),
                "mcast_dst_ip" => vi.mcast_dst_ip = a.arg_ip(n),
                "nopreempt" => vi.nopreempt = a.bare(n),
                "promote_secondaries" => vi.promote_secondaries = a.bare(n),
                "preempt" => vi.nopreempt = !a.bare(n),
                "preempt_delay" => set(&mut vi.preempt_delay, a.arg_timer(n, 0.0, 1000.0)),
                "accept" => vi.accept = a.bare(n),
                "no_accept" => vi.accept = !a.bare(n),
                "strict_mode" => vi.strict_mode = a.flag(n),
                "check_unicast_src" => vi.check_unicast_src = a.bare(n),
                "old_unicast_checksum" => {
                    a.extra(n, 1);
                    vi.old_unicast_checksum = match n.args.first().map(|t| t.text.as_str()) {
                        None => crate::model::OldChecksum::Always,
                        Some("never") => crate::model::OldChecksum::Never,
                        Some(other) => {
                            let t = &n.args[0];
                            a.diags.ka_warning(
                                t.loc,
                                t.width,
                                format!("unknown old_unicast_checksum mode '{other}': ignored"),
                            );
                            vi.old_unicast_checksum
                        }
                    };
                }
                "skip_check_adv_addr" => vi.skip_check_adv_addr = a.flag(n),
                "kernel_rx_buf_size" => {
                    vi.kernel_rx_buf_size = a.arg_int(n, 1, i64::from(u32::MAX));
                }
                "owner_ignore_adverts" => vi.owner_ignore_adverts = a.bare(n),
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
                "rvs_split_brain_arbitration" => vi.split_brain_arbitration = a.flag(n),
                "vmac_xmit_base" => vi.vmac_xmit_base = a.bare(n),
                "use_vmac" => {
                    vi.use_vmac = Some(n.args.first().map_or_else(String::new, |t| t.text.clone()));
                }
                "notify_master_rx_lower_pri" => vi.notify_master_rx_lower_pri = a.script(n),
                "virtual_routes" => {
                    vi.virtual_routes = routes::routes(a, n, true);
                }
                "virtual_rules" => {
                    vi.virtual_rules = routes::rules(a, n);
                }
                "smtp_alert" => vi.smtp_alert = Some(a.flag(n)),
                "notify_priority_changes" => vi.notify_priority_changes = Some(a.flag(n)),
                "native_ipv6" => deprecated(
                    a,
                    n,
                    "an IPv6 virtual_ipaddress (the family comes from the addresses)",
                ),
                "vmac_garp_intvl" | "garp_extra_if" => {
                    if n.name() == "vmac_garp_intvl" {
                        deprecated(a, n, "garp_extra_if");
                    }
                    if let Some(x) = garp_extra_if(a, n, 0) {
                        vi.garp_extra_if = Some(x);
                    }
                }
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
                    vi.advert_int = Duration::from_secs(1);
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
                    vi.advert_int = Duration::from_secs_f64(r);
                }
            } else {
                let cs = (v * 100.0).round();
                if cs > 4095.0 {
                    a.diags.error(
                        t.loc,
                        t.width,
                        format!("({}) VRRPv3 advert_int must be at most 40.95 s", vi.name),
                    );
                    vi.advert_int = Duration::from_secs(1);
                } else {
                    vi.advert_int = Duration::from_secs_f64(cs / 100.0);
                }
            }
        }
        // keepalived 2.2.7: "(VI) Ignoring track_interface eth0 since own interface" (a
        // config error for -t): the instance's own interface is tracked anyway (unless
        // dont_track_primary), so the entry, with its weight, is dropped.
        if let Some(own) = vi.interface.clone() {
            for tn in node
                .children()
                .iter()
                .filter(|c| c.name() == "track_interface")
            {
                for item in tn.children().iter().filter(|i| i.kw.text == own) {
                    a.diags.ka_warning(
                        item.kw.loc,
                        item.kw.width,
                        format!(
                            "({}) track_interface {own} is the instance's own interface: \
                             ignored, as keepalived ignores it",
                            vi.name
                        ),
                    );
                }
            }
            vi.trackers.track_interface.retain(|r| r.name != own);
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
                        // keepalived 2.2.7: "Initial state master is incompatible with AH
                        // authentication - clearing" (a config error for -t).
                        if t == "AH" && vi.state == VrrpState::Master {
                            a.diags.ka_warning(
                                an.kw.loc,
                                an.kw.width,
                                format!(
                                    "({}) initial state MASTER is incompatible with AH \
                                     authentication: the instance starts as BACKUP, as \
                                     keepalived starts it",
                                    vi.name
                                ),
                            );
                            vi.state = VrrpState::Backup;
                        }
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
        if vi.unicast_peer_block && vi.unicast_peer.is_empty() && !vi.unicast_fault_no_peer {
            if let Some(b) = node.children().iter().find(|c| c.name() == "unicast_peer") {
                a.diags
                    .warning(
                        b.kw.loc,
                        b.kw.width,
                        format!(
                            "({}) unicast_peer has no peers: the instance uses multicast, as \
                             keepalived 2.2.7 does (it says this will change)",
                            vi.name
                        ),
                    )
                    .hint("add 'unicast_fault_no_peer' to hold it in FAULT instead");
            }
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
            // keepalived: no accept mode in strict mode unless configured for VRRPv3 (an
            // address owner always accepts); VRRPv2 (RFC 3768) has none at all.
            let explicit = node.children().iter().any(|c| c.name() == "accept");
            if vi.priority != 255 && (!explicit || vi.version == 2) {
                if explicit && vi.accept {
                    a.diags.ka_warning(
                        node.kw.loc,
                        node.kw.width,
                        format!(
                            "({}) warning - accept mode for VRRP version 2 does not comply with RFC3768 - resetting",
                            vi.name
                        ),
                    );
                }
                vi.accept = false;
            }
            vi.preempt_delay = Duration::ZERO;
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
}
