//! `global_defs`: the daemon-wide settings.

#[allow(clippy::wildcard_imports)]
use super::*;

impl Loader<'_> {
    pub(super) fn global_defs(&mut self, node: &Node) {
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
                        g.smtp_server = smtp_server(a, n, h);
                    }
                }
                "smtp_connect_timeout" => {
                    if let Some(v) = a.arg_int(n, 1, i64::from(u32::MAX)) {
                        g.smtp_connect_timeout = v;
                    }
                }
                "smtp_helo_name" => g.smtp_helo_name = a.string(n),
                "smtp_alert" => g.smtp_alert = Some(a.flag(n)),
                "smtp_alert_vrrp" => g.smtp_alert_vrrp = Some(a.flag(n)),
                "smtp_alert_checker" => g.smtp_alert_checker = Some(a.flag(n)),
                "no_email_faults" => g.no_email_faults = a.bare(n),
                "startup_script" => g.startup_script = a.script(n),
                "shutdown_script" => g.shutdown_script = a.script(n),
                "startup_script_timeout" => {
                    set(&mut g.startup_script_timeout, a.arg_timer(n, 1.0, 1000.0));
                }
                "shutdown_script_timeout" => {
                    set(&mut g.shutdown_script_timeout, a.arg_timer(n, 1.0, 1000.0));
                }
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
                "vrrp_owner_ignore_adverts" => g.vrrp_owner_ignore_adverts = a.bare(n),
                "log_unknown_vrids" => g.log_unknown_vrids = a.bare(n),
                "vrrp_startup_delay" | "vrrp_delay_after_boot" => {
                    set(&mut g.vrrp_startup_delay, a.arg_timer(n, 0.0, 3600.0));
                }
                "vrrp_notify_priority_changes" => g.vrrp_notify_priority_changes = a.flag(n),
                "vrrp_priority" => g.vrrp_priority = a.arg_int(n, -20, 19),
                "checker_priority" => g.checker_priority = a.arg_int(n, -20, 19),
                "bfd_priority" => g.bfd_priority = a.arg_int(n, -20, 19),
                "vrrp_no_swap" | "checker_no_swap" | "bfd_no_swap" => {
                    g.no_swap |= a.bare(n);
                }
                "fifo_write_vrrp_states_on_reload" => {
                    g.fifo_write_vrrp_states_on_reload = a.flag(n);
                }
                "enable_script_security" => g.enable_script_security = a.bare(n),
                "rvs_forwarding_path_check" => g.forwarding_path_check = a.flag(n),
                "rvs_config_drift_peer" => {
                    a.extra(n, 1);
                    if let Some(ip) = a.arg_ip(n) {
                        g.config_drift_peers.push(ip);
                    }
                }
                "rvs_config_drift_key" => g.config_drift_key = a.string(n),
                "rvs_sync_peer" => {
                    a.extra(n, 1);
                    if let Some(ip) = a.arg_ip(n) {
                        if g.sync_peers
                            .first()
                            .is_some_and(|p| p.is_ipv4() != ip.is_ipv4())
                        {
                            a.diags.error(
                                n.kw.loc,
                                n.kw.width,
                                "rvs_sync_peer: the sync peers must all be IPv4 or all IPv6",
                            );
                        } else {
                            g.sync_peers.push(ip);
                        }
                    }
                }
                "rvs_sync_key" => g.sync_key = a.string(n),
                "script_user" => {
                    a.extra(n, 2);
                    // `script_user USER [GROUP]`, kept as rvs-script reads it (`USER:GROUP`).
                    g.script_user = a.need(n, 0, "a user name").map(|t| match n.args.get(1) {
                        Some(grp) => format!("{}:{}", t.text, grp.text),
                        None => t.text.clone(),
                    });
                    // keepalived -t: "Error setting global script uid/gid" when the user
                    // (or group) does not exist on the checking host; no script runs.
                    if let Some(u) = &g.script_user {
                        if let Err(why) = rvs_script::default_user(Some(u)) {
                            a.diags
                                .ka_warning(
                                    n.kw.loc,
                                    n.kw.width,
                                    format!(
                                        "{why} on this host: no script can run (keepalived \
                                         reports \"Error setting global script uid/gid\")"
                                    ),
                                )
                                .hint("create the user, or name one that exists");
                        }
                    }
                }
                "default_interface" => g.default_interface = a.string(n),
                "dynamic_interfaces" => {
                    a.extra(n, 1);
                    g.dynamic_interfaces = true;
                }
                "checker_log_all_failures" => g.checker_log_all_failures = a.flag(n),
                "rs_init_notifies" => g.rs_init_notifies = a.bare(n),
                "lvs_timeouts" => lvs_timeouts(a, n, &mut g.lvs_timeouts),
                "lvs_sync_daemon" => {
                    if let Some(prev) = &g.lvs_sync_daemon {
                        // keepalived: "lvs_sync_daemon has already been specified as
                        // IF INST - ignoring".
                        a.diags.ka_warning(
                            n.kw.loc,
                            n.kw.width,
                            format!(
                                "lvs_sync_daemon has already been specified (on {}): ignored",
                                prev.interface
                            ),
                        );
                    } else {
                        g.lvs_sync_daemon = lvs_sync_daemon(a, n);
                    }
                }
                "lvs_flush" => g.lvs_flush = a.bare(n),
                "nftables_priority" => set(&mut g.nftables_priority, a.arg_int(n, -1000, 1000)),
                "nftables_counters" => g.nftables_counters = a.bare(n),
                "nftables_ifindex" => g.nftables_ifindex = a.bare(n),
                "vrrp_iptables" => {
                    // keepalived built with nftables only (Debian's) reads the legacy
                    // keyword as `nftables keepalived` at priority -1, and says so.
                    a.diags.ka_warning(
                        n.kw.loc,
                        n.kw.width,
                        "iptables not supported, using nftables instead. Please replace 'vrrp_iptables and 'vrrp_ipsets' with 'nftables' config option",
                    );
                    g.other
                        .insert("nftables".to_owned(), vec!["keepalived".to_owned()]);
                    g.nftables_priority = -1;
                }
                "disable_local_igmp" => g.disable_local_igmp = a.bare(n),
                "umask" => g.umask = umask(a, n),
                "vmac_prefix" => {
                    if let Some(p) = a.string(n) {
                        g.vmac_prefix = p;
                    }
                }
                kw @ ("vrrp_netlink_cmd_rcv_bufs"
                | "vrrp_netlink_cmd_rcv_bufs_force"
                | "vrrp_netlink_monitor_rcv_bufs"
                | "vrrp_netlink_monitor_rcv_bufs_force"
                | "lvs_netlink_cmd_rcv_bufs"
                | "lvs_netlink_cmd_rcv_bufs_force"
                | "lvs_netlink_monitor_rcv_bufs"
                | "lvs_netlink_monitor_rcv_bufs_force") => {
                    let slot = if kw.starts_with("lvs_netlink_monitor") {
                        &mut g.lvs_netlink_monitor_rcv_bufs
                    } else if kw.starts_with("lvs") {
                        &mut g.lvs_netlink_cmd_rcv_bufs
                    } else if kw.contains("monitor") {
                        &mut g.vrrp_netlink_monitor_rcv_bufs
                    } else {
                        &mut g.vrrp_netlink_cmd_rcv_bufs
                    };
                    if kw.ends_with("_force") {
                        slot.force = a.flag(n);
                    } else if let Some(v) = a.arg_int(n, 1, i64::from(u32::MAX)) {
                        slot.size = Some(v);
                    }
                }
                "vrrp_rx_bufs_policy" => g.vrrp_rx_bufs_policy = rx_bufs_policy(a, n),
                "vrrp_rx_bufs_multiplier" => {
                    set(&mut g.vrrp_rx_bufs_multiplier, a.arg_int(n, 1, 1_000_000));
                }
                "net_namespace" | "net_namespace_ipvs" | "instance" | "data_use_instance"
                | "use_pid_dir" | "child_wait_time" => {
                    namespaces(a, g, n);
                }
                "lvs_flush_on_stop" | "lvs_flush_onstop" => {
                    if n.name() == "lvs_flush_onstop" {
                        deprecated(a, n, "lvs_flush_on_stop");
                    }
                    // keepalived: bare or `ALL` flushes the whole table at stop; `VS`
                    // removes the configured services (what rvs does anyway), `NO` nothing
                    // more.
                    g.lvs_flush_on_stop = match n.args.first().map(|t| t.text.as_str()) {
                        None | Some("ALL") => true,
                        Some("VS" | "NO") => false,
                        Some(_) => {
                            let t = &n.args[0];
                            a.diags.error(
                                t.loc,
                                t.width,
                                format!("lvs_flush_on_stop '{}': expected ALL, VS or NO", t.text),
                            );
                            false
                        }
                    };
                    a.extra(n, 1);
                }
                "notify_fifo" => g.notify_fifo = n.args.first().map(|t| t.text.clone()),
                "vrrp_notify_fifo" => g.vrrp_notify_fifo = n.args.first().map(|t| t.text.clone()),
                "lvs_notify_fifo" => g.lvs_notify_fifo = n.args.first().map(|t| t.text.clone()),
                "notify_fifo_script" => g.notify_fifo_script = a.script(n),
                "vrrp_notify_fifo_script" => g.vrrp_notify_fifo_script = a.script(n),
                "lvs_notify_fifo_script" => g.lvs_notify_fifo_script = a.script(n),
                "vrrp_vmac_garp_intvl" | "vrrp_garp_extra_if" => {
                    if n.name() == "vrrp_vmac_garp_intvl" {
                        deprecated(a, n, "vrrp_garp_extra_if");
                    }
                    if let Some(x) = garp_extra_if(a, n, 1) {
                        g.vrrp_garp_extra_if = Some(x);
                    }
                }
                "enable_snmp_keepalived" => {
                    deprecated(a, n, "enable_snmp_vrrp");
                    g.snmp.vrrp |= a.bare(n);
                }
                "enable_snmp_vrrp" => g.snmp.vrrp |= a.bare(n),
                "enable_snmp_checker" => g.snmp.checker |= a.bare(n),
                "enable_snmp_rfc" => {
                    let on = a.bare(n);
                    g.snmp.rfcv2 |= on;
                    g.snmp.rfcv3 |= on;
                }
                "enable_snmp_rfcv2" => g.snmp.rfcv2 |= a.bare(n),
                "enable_snmp_rfcv3" => g.snmp.rfcv3 |= a.bare(n),
                "enable_traps" => g.snmp.traps |= a.bare(n),
                "snmp_vs_stats_update_interval" => {
                    g.snmp.vs_stats_interval = a.arg_timer(n, 0.0, f64::from(u32::MAX));
                }
                "snmp_rs_stats_update_interval" => {
                    g.snmp.rs_stats_interval = a.arg_timer(n, 0.0, f64::from(u32::MAX));
                }
                "enable_dbus" => g.enable_dbus |= a.bare(n),
                "reload_check_config" => {
                    a.extra(n, 1);
                    g.reload_check_config = Some(
                        n.args
                            .first()
                            .map_or_else(|| "/dev/null".to_owned(), |t| t.text.clone()),
                    );
                }
                "dbus_service_name" => g.dbus_service_name = a.string(n),
                "reload_time_file" => g.reload_time_file = a.string(n),
                "config_save_dir" => {
                    // keepalived drops a trailing '/'.
                    g.config_save_dir = a.string(n).map(|d| {
                        d.strip_suffix('/')
                            .filter(|s| !s.is_empty())
                            .unwrap_or(&d)
                            .to_owned()
                    });
                }
                "reload_repeat" => g.reload_repeat = a.bare(n),
                "reload_file" => {
                    a.extra(n, 1);
                    g.reload_file =
                        Some(n.args.first().map(|t| t.text.clone()).unwrap_or_default());
                }
                "snmp_socket" => {
                    g.snmp.socket = a.string(n);
                    if let Some(s) = &g.snmp.socket {
                        let ok = s.starts_with('/')
                            || s.strip_prefix("unix:").is_some_and(|p| p.starts_with('/'))
                            || s.strip_prefix("tcp:").is_some_and(|hp| {
                                hp.rsplit_once(':')
                                    .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
                            });
                        if !ok {
                            a.diags.not_applied(
                                n.args[0].loc,
                                n.args[0].width,
                                format!(
                                    "snmp_socket {s}: rvs connects to the AgentX master \
                                         only by unix:PATH, /PATH or tcp:HOST:PORT; SNMP is \
                                         not served"
                                ),
                            );
                        }
                    }
                }
                kw @ ("vrrp_rt_priority"
                | "checker_rt_priority"
                | "bfd_rt_priority"
                | "vrrp_cpu_affinity"
                | "checker_cpu_affinity"
                | "bfd_cpu_affinity"
                | "vrrp_rlimit_rttime"
                | "checker_rlimit_rttime"
                | "bfd_rlimit_rttime"
                | "vrrp_rlimit_rtime"
                | "checker_rlimit_rtime"
                | "bfd_rlimit_rtime"
                | "vrrp_process_name"
                | "checker_process_name"
                | "lvs_process_name"
                | "bfd_process_name") => {
                    if kw == "lvs_process_name" {
                        deprecated(a, n, "checker_process_name");
                    } else if kw.ends_with("_rlimit_rtime") {
                        deprecated(a, n, &kw.replace("rtime", "rttime"));
                    }
                    let (who, what) = kw.split_once('_').unwrap_or((kw, ""));
                    let ps = match who {
                        "vrrp" => &mut g.vrrp_process,
                        "bfd" => &mut g.bfd_process,
                        _ => &mut g.checker_process,
                    };
                    process_setting(a, n, ps, what);
                }
                "max_auto_priority" => {
                    a.extra(n, 1);
                    g.max_auto_priority = match n.args.first() {
                        None => Some(99),
                        Some(_) => match a.arg_int::<i64>(n, -1, 99) {
                            Some(p) if p > 0 => u8::try_from(p).ok(),
                            _ => None,
                        },
                    };
                }
                "min_auto_priority_delay" => {
                    if let Some(us) = a.arg_int::<u64>(n, 1, 10_000_000) {
                        g.min_auto_priority_delay = Duration::from_micros(us);
                    }
                }
                "process_names" => {
                    a.extra(n, 0);
                    g.vrrp_process.name = Some("keepalived_vrrp".into());
                    g.checker_process.name = Some("keepalived_lvs".into());
                    g.bfd_process.name = Some("keepalived_bfd".into());
                }
                "process_name" => {
                    a.extra(n, 1);
                    if let Some(t) = a.need(n, 0, "a name") {
                        g.process_name = Some(comm_name(a, t));
                    }
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
}

/// `vrrp_rx_bufs_policy MTU|ADVERT|BYTES`.
fn rx_bufs_policy(a: &mut Args<'_>, n: &Node) -> Option<RxBufsPolicy> {
    a.extra(n, 1);
    let t = a.need(n, 0, "MTU, ADVERT or a size")?;
    match t.text.as_str() {
        "MTU" => Some(RxBufsPolicy::Mtu),
        "ADVERT" => Some(RxBufsPolicy::Advert),
        other => match parse_int(other).and_then(|v| u32::try_from(v).ok()) {
            Some(v) if v > 0 => Some(RxBufsPolicy::Size(v)),
            _ => {
                a.diags.ka_warning(
                    t.loc,
                    t.width,
                    format!(
                        "invalid vrrp_rx_bufs_policy '{other}': MTU, ADVERT or a size; ignored"
                    ),
                );
                None
            }
        },
    }
}

/// `umask MASK`, as keepalived reads it: a number (C's base rules: `022` is octal) or
/// permission names joined by `|` (`IWGRP|IWOTH`).
fn umask(a: &mut Args<'_>, n: &Node) -> Option<u32> {
    let text: String = n.args.iter().map(|t| t.text.as_str()).collect();
    let tok = a.need(n, 0, "a mask")?;
    let value = if text.starts_with(|c: char| c.is_ascii_digit()) {
        if let Some(h) = text.strip_prefix("0x") {
            u32::from_str_radix(h, 16).ok()
        } else if text.len() > 1 && text.starts_with('0') {
            u32::from_str_radix(&text[1..], 8).ok()
        } else {
            text.parse().ok()
        }
    } else {
        text.split('|').try_fold(0u32, |m, w| {
            let bit = match w.trim() {
                "IRUSR" => 0o400,
                "IWUSR" => 0o200,
                "IXUSR" => 0o100,
                "IRWXU" => 0o700,
                "IRGRP" => 0o040,
                "IWGRP" => 0o020,
                "IXGRP" => 0o010,
                "IRWXG" => 0o070,
                "IROTH" => 0o004,
                "IWOTH" => 0o002,
                "IXOTH" => 0o001,
                "IRWXO" => 0o007,
                _ => return None,
            };
            Some(m | bit)
        })
    };
    match value {
        Some(v) if v <= 0o777 => Some(v),
        _ => {
            a.diags
                .ka_warning(
                    tok.loc,
                    tok.width,
                    format!("invalid umask '{text}': ignored"),
                )
                .hint("an octal number (0022) or names such as IWGRP|IWOTH");
            None
        }
    }
}

/// A process name as the kernel keeps it: at most 15 bytes (keepalived truncates, and
/// counts it).
fn comm_name(a: &mut Args<'_>, t: &Token) -> String {
    let mut name = t.text.clone();
    if name.len() > 15 {
        a.diags.ka_warning(
            t.loc,
            t.width,
            format!("process name {name} more than 15 characters, truncated"),
        );
        let mut end = 15;
        while !name.is_char_boundary(end) {
            end -= 1;
        }
        name.truncate(end);
    }
    name
}

/// `*_rt_priority`, `*_cpu_affinity`, `*_rlimit_rttime`, `*_process_name`, read as
/// keepalived 2.2.7 reads them: an out-of-range priority is counted and clamped, a bad
/// CPU number is counted and leaves the set empty.
fn process_setting(a: &mut Args<'_>, n: &Node, ps: &mut ProcessSettings, what: &str) {
    match what {
        "rt_priority" => {
            a.extra(n, 1);
            let Some(t) = a.need(n, 0, "a priority") else {
                return;
            };
            match parse_int(&t.text) {
                Some(p) if (1..=99).contains(&p) => ps.rt_priority = u8::try_from(p).ok(),
                Some(p) => {
                    let clamped = p.clamp(1, 99);
                    a.diags.ka_warning(
                        t.loc,
                        t.width,
                        format!("real-time priority {p} outside [1, 99]: {clamped} is used"),
                    );
                    ps.rt_priority = u8::try_from(clamped).ok();
                }
                None => {
                    a.diags.ka_warning(
                        t.loc,
                        t.width,
                        format!("real-time priority '{}' invalid: ignored", t.text),
                    );
                }
            }
        }
        "cpu_affinity" => {
            let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
            let mut set = Vec::new();
            for t in &n.args {
                match parse_int(&t.text).and_then(|c| usize::try_from(c).ok()) {
                    Some(c) if c < cpus => set.push(c),
                    _ => {
                        a.diags.ka_warning(
                            t.loc,
                            t.width,
                            format!(
                                "invalid cpu_id '{}' (this host has CPUs 0..{}): no affinity is set",
                                t.text,
                                cpus - 1
                            ),
                        );
                        return;
                    }
                }
            }
            if set.is_empty() {
                a.diags
                    .ka_warning(n.kw.loc, n.kw.width, "no CPU numbers given: ignored");
            }
            ps.cpu_affinity = set;
        }
        "process_name" => {
            a.extra(n, 1);
            if let Some(t) = a.need(n, 0, "a name") {
                ps.name = Some(comm_name(a, t));
            }
        }
        _ => {
            if let Some(v) = a.arg_int::<u64>(n, 1, i64::from(u32::MAX)) {
                ps.rlimit_rttime = Some(v);
            }
        }
    }
}

/// `net_namespace`, `net_namespace_ipvs`, `instance`, `use_pid_dir`, `child_wait_time`
/// (in `global_defs` or at the top level, as keepalived reads them) and
/// `data_use_instance`.
pub(super) fn namespaces(a: &mut Args<'_>, g: &mut GlobalDefs, n: &Node) {
    match n.name() {
        "net_namespace" => g.net_namespace = a.string(n),
        "net_namespace_ipvs" => {
            a.extra(n, 1);
            g.net_namespace_ipvs =
                Some(n.args.first().map_or_else(String::new, |t| t.text.clone()));
        }
        "instance" => g.instance = a.string(n),
        "use_pid_dir" => g.use_pid_dir = a.bare(n),
        "child_wait_time" => set(
            &mut g.child_wait_time,
            a.arg_int::<u32>(n, 0, i64::from(u32::MAX))
                .map(|s| Duration::from_secs(u64::from(s))),
        ),
        _ => g.data_use_instance = a.flag(n),
    }
}

/// `smtp_server HOST [PORT]`: keepalived 2.2.7 resolves the host when it reads the file and
/// reports "Invalid smtp server" (a config error for -t; no mail is sent) for a port out of
/// range or a host it cannot resolve. So does rvs, on the host it checks on.
fn smtp_server(a: &mut Args<'_>, n: &Node, h: &Token) -> Option<SmtpServer> {
    let port = match n.args.get(1) {
        None => Some(25),
        Some(p) => parse_int(&p.text)
            .filter(|x| (1..=65535).contains(x))
            .and_then(|x| u16::try_from(x).ok()),
    };
    let resolves = |port: u16| {
        h.text.parse::<IpAddr>().is_ok()
            || std::net::ToSocketAddrs::to_socket_addrs(&(h.text.as_str(), port))
                .is_ok_and(|mut it| it.next().is_some())
    };
    match port {
        Some(port) if resolves(port) => Some(SmtpServer {
            host: h.text.clone(),
            port,
        }),
        _ => {
            a.diags.ka_warning(
                h.loc,
                h.width,
                format!(
                    "invalid smtp_server '{}': {}; ignored, as keepalived ignores it",
                    n.args
                        .iter()
                        .map(|t| t.text.as_str())
                        .collect::<Vec<_>>()
                        .join(" "),
                    if port.is_none() {
                        "the port is not in 1..65535"
                    } else {
                        "the host does not resolve here"
                    }
                ),
            );
            None
        }
    }
}
