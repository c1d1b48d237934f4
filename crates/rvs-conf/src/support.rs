//! What rvs does with each of keepalived's keywords: applied (and the model value a
//! consumer reads), read but not applied (and what a user loses), or another keyword's
//! spelling. The parser warns at every line whose keyword is not applied, `--strict` counts
//! it, `rvs run` logs it at start, and docs/keywords.md is generated from this table
//! (`crates/rvs/tests/keywords.rs` checks both, and that every applied keyword's value is
//! read outside the parser).
//!
//! Rows are `(block, keywords, support)`; block `"*"` matches any block, `""` is the top
//! level. The first row that names the block and the keyword wins, then a `"*"` row.

/// What rvs does with a keyword.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Support {
    /// Applied as keepalived applies it. The model value it sets, `Struct.field`, which a
    /// consumer outside the parser reads; `-` with the reason for structure (a block whose
    /// contents are the point, a keyword applied inside the parser).
    Applied(&'static str),
    /// Read and checked, not acted on: what a user of the keyword loses.
    NotApplied(&'static str),
    /// Another keyword's spelling (deprecated or alternate): it does what that one does.
    Spelling(&'static str),
}

use Support::{Applied, NotApplied, Spelling};

const NO_SNMP: Support = NotApplied("no SNMP agent (rvs serves Prometheus metrics and a JSON API)");
const NO_DBUS: Support = NotApplied("no DBus interface");
const ONE_PROCESS: Support =
    NotApplied("tunes keepalived's child processes; rvs is one process and sets nothing");
const BUFS: Support = NotApplied(
    "rvs has no such socket: the checkers watch no netlink group, and vrrp_track_process \
     reads /proc",
);
const FIREWALL: Support = NotApplied(
    "keepalived's other firewall settings: rvs installs the no_accept rules in nftables \
     (no iptables, ipsets, interface indexes or IPVS rules)",
);
/// The table. Order matters only between a block row and a `*` row for the same keyword.
pub static TABLE: &[(&str, &[&str], Support)] = &[
    // The top level.
    ("", &["global_defs"], Applied("-: its keywords are accounted for below")),
    ("", &["vrrp_instance"], Applied("Config.vrrp_instances")),
    ("", &["vrrp_sync_group"], Applied("Config.vrrp_sync_groups")),
    ("", &["vrrp_script"], Applied("Config.vrrp_scripts")),
    ("", &["track_file", "vrrp_track_file"], Applied("Config.track_files")),
    ("", &["vrrp_track_process"], Applied("Config.track_processes")),
    ("", &["bfd_instance"], Applied("Config.bfd_instances")),
    ("", &["virtual_server"], Applied("Config.virtual_servers")),
    ("", &["virtual_server_group"], Applied("Config.virtual_server_groups")),
    ("", &["SSL"], Applied("HttpCheck.tls_ca")),
    ("", &["static_ipaddress"], Applied("Config.static_ipaddress")),
    ("", &["static_routes"], Applied("Config.static_routes")),
    ("", &["static_rules"], Applied("Config.static_rules")),
    ("", &["track_group"], NotApplied("instances are not grouped for tracking: each tracks its own interface")),
    ("", &["garp_group"], Applied("Config.garp_groups")),
    ("", &["linkbeat_interfaces"], NotApplied("link state comes from netlink; MII/ethtool polling is not done")),
    ("*", &["linkbeat_use_polling"], NotApplied("link state comes from netlink; MII/ethtool polling is not done")),
    ("", &["interface_up_down_delays"], Applied("Config.interface_delays")),
    ("*", &["net_namespace"], Applied("GlobalDefs.net_namespace")),
    ("*", &["net_namespace_ipvs"], Applied("GlobalDefs.net_namespace_ipvs")),
    ("*", &["instance"], Applied("GlobalDefs.instance")),
    ("*", &["namespace_with_ipsets"], NotApplied("rvs uses no ipsets (its no_accept rules are nftables sets, in the namespace it runs in)")),
    ("*", &["use_pid_dir"], Applied("GlobalDefs.use_pid_dir")),
    ("*", &["child_wait_time"], ONE_PROCESS),
    // global_defs.
    ("global_defs", &["notification_email"], Applied("GlobalDefs.notification_email")),
    ("global_defs", &["notification_email_from"], Applied("GlobalDefs.notification_email_from")),
    ("global_defs", &["smtp_server"], Applied("GlobalDefs.smtp_server")),
    ("global_defs", &["smtp_connect_timeout"], Applied("GlobalDefs.smtp_connect_timeout")),
    ("global_defs", &["smtp_helo_name"], Applied("GlobalDefs.smtp_helo_name")),
    ("global_defs", &["smtp_alert"], Applied("GlobalDefs.smtp_alert")),
    ("global_defs", &["smtp_alert_vrrp"], Applied("GlobalDefs.smtp_alert_vrrp")),
    ("global_defs", &["smtp_alert_checker"], Applied("GlobalDefs.smtp_alert_checker")),
    ("global_defs", &["no_email_faults"], Applied("GlobalDefs.no_email_faults")),
    ("global_defs", &["no_checker_emails"], Applied("-: rvs mails a real server's changes of state, not each checker's, which is what no_checker_emails asks")),
    ("global_defs", &["router_id"], Applied("GlobalDefs.router_id")),
    ("global_defs", &["enable_snmp_vrrp", "enable_snmp_checker", "enable_snmp_rfc", "enable_snmp_rfcv2", "enable_snmp_rfcv3", "enable_traps", "snmp_socket", "snmp_rs_stats_update_interval", "snmp_vs_stats_update_interval"], NO_SNMP),
    ("global_defs", &["enable_snmp_keepalived"], Spelling("enable_snmp_vrrp (not applied)")),
    ("global_defs", &["enable_dbus", "dbus_service_name", "dbus_no_interface_name"], NO_DBUS),
    ("global_defs", &["vrrp_mcast_group4"], Applied("GlobalDefs.vrrp_mcast_group4")),
    ("global_defs", &["vrrp_mcast_group6"], Applied("GlobalDefs.vrrp_mcast_group6")),
    ("global_defs", &["vrrp_garp_master_delay"], Applied("VrrpInstance.garp_master_delay")),
    ("global_defs", &["vrrp_garp_master_repeat"], Applied("VrrpInstance.garp_master_repeat")),
    ("global_defs", &["vrrp_garp_master_refresh"], Applied("VrrpInstance.garp_master_refresh")),
    ("global_defs", &["vrrp_garp_master_refresh_repeat"], Applied("VrrpInstance.garp_master_refresh_repeat")),
    ("global_defs", &["vrrp_garp_lower_prio_delay"], Applied("VrrpInstance.garp_lower_prio_delay")),
    ("global_defs", &["vrrp_garp_lower_prio_repeat"], Applied("VrrpInstance.garp_lower_prio_repeat")),
    ("global_defs", &["vrrp_garp_interval"], Applied("GlobalDefs.vrrp_garp_interval")),
    ("global_defs", &["vrrp_gna_interval"], Applied("GlobalDefs.vrrp_gna_interval")),
    ("global_defs", &["vrrp_min_garp"], Applied("VrrpInstance.garp_master_refresh_repeat")),
    ("global_defs", &["vrrp_down_timer_adverts"], Applied("VrrpInstance.down_timer_adverts")),
    ("global_defs", &["vrrp_lower_prio_no_advert"], Applied("VrrpInstance.lower_prio_no_advert")),
    ("global_defs", &["vrrp_higher_prio_send_advert"], Applied("VrrpInstance.higher_prio_send_advert")),
    ("global_defs", &["vrrp_version"], Applied("VrrpInstance.version")),
    ("global_defs", &["vrrp_check_unicast_src"], Applied("VrrpInstance.check_unicast_src")),
    ("global_defs", &["vrrp_startup_delay", "vrrp_delay_after_boot"], Applied("GlobalDefs.vrrp_startup_delay")),
    ("global_defs", &["vrrp_notify_priority_changes"], Applied("GlobalDefs.vrrp_notify_priority_changes")),
    ("global_defs", &["enable_script_security"], Applied("GlobalDefs.enable_script_security")),
    ("global_defs", &["script_user"], Applied("GlobalDefs.script_user")),
    ("global_defs", &["default_interface"], Applied("VrrpInstance.interface")),
    ("global_defs", &["lvs_timeouts"], Applied("GlobalDefs.lvs_timeouts")),
    ("global_defs", &["lvs_sync_daemon"], Applied("GlobalDefs.lvs_sync_daemon")),
    ("global_defs", &["notify_fifo"], Applied("GlobalDefs.notify_fifo")),
    ("global_defs", &["vrrp_notify_fifo"], Applied("GlobalDefs.vrrp_notify_fifo")),
    ("global_defs", &["vrrp_strict"], Applied("GlobalDefs.vrrp_strict")),
    ("global_defs", &["nftables"], Applied("-: the name of the nftables tables of no_accept (default keepalived)")),
    ("global_defs", &["nftables_priority"], Applied("GlobalDefs.nftables_priority")),
    ("global_defs", &["nftables_counters"], Applied("GlobalDefs.nftables_counters")),
    ("global_defs", &["vrrp_iptables", "vrrp_ipsets", "nftables_ifindex", "nftables_ipvs", "nftables_ipvs_priority", "nftables_ipvs_start_fwmark"], FIREWALL),
    ("global_defs", &["vrrp_skip_check_adv_addr"], Applied("VrrpInstance.skip_check_adv_addr")),
    ("global_defs", &["dynamic_interfaces"], NotApplied("interfaces must exist when rvs starts an instance")),
    ("global_defs", &["checker_log_all_failures"], Applied("Checker.log_all_failures")),
    ("global_defs", &["rs_init_notifies"], Applied("GlobalDefs.rs_init_notifies")),
    ("global_defs", &["lvs_flush"], Applied("GlobalDefs.lvs_flush")),
    ("global_defs", &["lvs_flush_on_stop", "lvs_flush_onstop"], Applied("GlobalDefs.lvs_flush_on_stop")),
    ("global_defs", &["lvs_notify_fifo"], Applied("GlobalDefs.lvs_notify_fifo")),
    ("global_defs", &["notify_fifo_script"], Applied("GlobalDefs.notify_fifo_script")),
    ("global_defs", &["vrrp_notify_fifo_script"], Applied("GlobalDefs.vrrp_notify_fifo_script")),
    ("global_defs", &["lvs_notify_fifo_script"], Applied("GlobalDefs.lvs_notify_fifo_script")),
    ("global_defs", &["fifo_write_vrrp_states_on_reload"], Applied("GlobalDefs.fifo_write_vrrp_states_on_reload")),
    ("global_defs", &["vrrp_vmac_garp_intvl"], Spelling("vrrp_garp_extra_if")),
    ("global_defs", &["vrrp_garp_extra_if"], NotApplied("no extra periodic gratuitous ARP on VMAC interfaces")),
    ("global_defs", &["vrrp_process_name"], Applied("GlobalDefs.vrrp_process")),
    ("global_defs", &["checker_process_name"], Applied("GlobalDefs.checker_process")),
    ("global_defs", &["lvs_process_name"], Spelling("checker_process_name")),
    ("global_defs", &["bfd_process_name"], Applied("GlobalDefs.bfd_process")),
    ("global_defs", &["process_name"], Applied("GlobalDefs.process_name")),
    ("global_defs", &["process_names"], Applied("GlobalDefs.vrrp_process")),
    ("global_defs", &["vrrp_priority"], Applied("GlobalDefs.vrrp_priority")),
    ("global_defs", &["checker_priority"], Applied("GlobalDefs.checker_priority")),
    ("global_defs", &["bfd_priority"], Applied("GlobalDefs.bfd_priority")),
    ("global_defs", &["vrrp_rt_priority", "vrrp_rlimit_rttime", "vrrp_cpu_affinity"], Applied("GlobalDefs.vrrp_process")),
    ("global_defs", &["vrrp_rlimit_rtime"], Spelling("vrrp_rlimit_rttime")),
    ("global_defs", &["bfd_rt_priority", "bfd_rlimit_rttime", "bfd_cpu_affinity"], Applied("GlobalDefs.bfd_process")),
    ("global_defs", &["bfd_rlimit_rtime"], Spelling("bfd_rlimit_rttime")),
    ("global_defs", &["checker_cpu_affinity"], Applied("GlobalDefs.checker_process")),
    ("global_defs", &["checker_rt_priority", "checker_rlimit_rttime"], NotApplied("the checkers share their threads with the proxy, which must not run real-time (it would starve the host under load); give VRRP and BFD vrrp_rt_priority / bfd_rt_priority")),
    ("global_defs", &["checker_rlimit_rtime"], Spelling("checker_rlimit_rttime")),
    ("global_defs", &["vrrp_netlink_cmd_rcv_bufs", "vrrp_netlink_cmd_rcv_bufs_force"], Applied("GlobalDefs.vrrp_netlink_cmd_rcv_bufs")),
    ("global_defs", &["vrrp_netlink_monitor_rcv_bufs", "vrrp_netlink_monitor_rcv_bufs_force"], Applied("GlobalDefs.vrrp_netlink_monitor_rcv_bufs")),
    ("global_defs", &["lvs_netlink_cmd_rcv_bufs", "lvs_netlink_cmd_rcv_bufs_force"], Applied("GlobalDefs.lvs_netlink_cmd_rcv_bufs")),
    ("global_defs", &["vrrp_rx_bufs_policy"], Applied("GlobalDefs.vrrp_rx_bufs_policy")),
    ("global_defs", &["vrrp_rx_bufs_multiplier"], Applied("GlobalDefs.vrrp_rx_bufs_multiplier")),
    ("global_defs", &["lvs_netlink_monitor_rcv_bufs", "lvs_netlink_monitor_rcv_bufs_force", "process_monitor_rcv_bufs", "process_monitor_rcv_bufs_force"], BUFS),
    ("global_defs", &["json_dump_file", "state_dump_file", "stats_dump_file"], Applied("-: where SIGRTMIN+2, SIGUSR1 and SIGUSR2 write keepalived's JSON, data and stats dumps")),
    ("global_defs", &["data_use_instance"], Applied("GlobalDefs.data_use_instance")),
    ("global_defs", &["config_save_dir", "json_version", "tmp_config_directory", "use_symlink_paths", "include_check"], NotApplied("keepalived's config bookkeeping and dump variants; rvs answers `rvs status` and GET /v1/status instead")),
    ("global_defs", &["reload_check_config", "reload_file", "reload_repeat", "reload_time_file"], NotApplied("scheduled and checked reloads are not done; `rvs reload` always checks first")),
    ("global_defs", &["random_seed"], Applied("-: it seeds ${_RANDOM} as the lines are read (rvs's generator: the same seed gives the same values, not glibc's)")),
    ("global_defs", &["umask"], Applied("GlobalDefs.umask")),
    ("global_defs", &["set_supplementary_groups"], NotApplied("scripts run with their user's primary group only")),
    ("global_defs", &["startup_script"], Applied("GlobalDefs.startup_script")),
    ("global_defs", &["startup_script_timeout"], Applied("GlobalDefs.startup_script_timeout")),
    ("global_defs", &["shutdown_script"], Applied("GlobalDefs.shutdown_script")),
    ("global_defs", &["shutdown_script_timeout"], Applied("GlobalDefs.shutdown_script_timeout")),
    ("global_defs", &["disable_local_igmp"], Applied("GlobalDefs.disable_local_igmp")),
    ("global_defs", &["log_unknown_vrids"], Applied("GlobalDefs.log_unknown_vrids")),
    ("global_defs", &["max_auto_priority"], Applied("GlobalDefs.max_auto_priority")),
    ("global_defs", &["min_auto_priority_delay"], Applied("GlobalDefs.min_auto_priority_delay")),
    ("global_defs", &["vrrp_no_swap", "checker_no_swap", "bfd_no_swap"], Applied("GlobalDefs.no_swap")),
    ("global_defs", &["vmac_prefix"], Applied("GlobalDefs.vmac_prefix")),
    ("global_defs", &["vmac_addr_prefix"], NotApplied("VMAC interfaces are addressed the default way")),
    ("global_defs", &["vrrp_owner_ignore_adverts"], Applied("VrrpInstance.owner_ignore_adverts")),
    ("global_defs", &["v3_checksum_as_v2"], NotApplied("not applied")),
    ("global_defs", &["iproute_etc_dir", "iproute_usr_dir"], NotApplied("table names are read from iproute2's default directories (/etc/iproute2, /usr/share/iproute2)")),
    // vrrp_instance.
    ("vrrp_instance", &["state"], Applied("VrrpInstance.state")),
    ("vrrp_instance", &["interface"], Applied("VrrpInstance.interface")),
    ("vrrp_instance", &["virtual_router_id"], Applied("VrrpInstance.virtual_router_id")),
    ("vrrp_instance", &["priority"], Applied("VrrpInstance.priority")),
    ("vrrp_instance", &["advert_int"], Applied("VrrpInstance.advert_int")),
    ("vrrp_instance", &["version"], Applied("VrrpInstance.version")),
    ("vrrp_instance", &["authentication"], Applied("VrrpInstance.authentication")),
    ("vrrp_instance", &["virtual_ipaddress"], Applied("VrrpInstance.virtual_ipaddress")),
    ("vrrp_instance", &["virtual_ipaddress_excluded"], Applied("VrrpInstance.virtual_ipaddress_excluded")),
    ("vrrp_instance", &["no_virtual_ipaddress"], Applied("-: allows an instance without addresses (checked by the parser)")),
    ("vrrp_instance", &["dont_track_primary"], Applied("VrrpInstance.dont_track_primary")),
    ("vrrp_instance", &["unicast_src_ip", "mcast_src_ip"], Applied("VrrpInstance.unicast_src_ip")),
    ("vrrp_instance", &["unicast_peer"], Applied("VrrpInstance.unicast_peer")),
    ("vrrp_instance", &["unicast_ttl"], Applied("VrrpInstance.unicast_ttl")),
    ("vrrp_instance", &["mcast_dst_ip"], Applied("VrrpInstance.mcast_dst_ip")),
    ("vrrp_instance", &["nopreempt", "preempt"], Applied("VrrpInstance.nopreempt")),
    ("vrrp_instance", &["preempt_delay"], Applied("VrrpInstance.preempt_delay")),
    ("vrrp_instance", &["accept", "no_accept"], Applied("VrrpInstance.accept")),
    ("vrrp_instance", &["strict_mode"], Applied("VrrpInstance.strict_mode")),
    ("vrrp_instance", &["check_unicast_src"], Applied("VrrpInstance.check_unicast_src")),
    ("vrrp_instance", &["garp_master_delay"], Applied("VrrpInstance.garp_master_delay")),
    ("vrrp_instance", &["garp_master_repeat"], Applied("VrrpInstance.garp_master_repeat")),
    ("vrrp_instance", &["garp_master_refresh"], Applied("VrrpInstance.garp_master_refresh")),
    ("vrrp_instance", &["garp_master_refresh_repeat"], Applied("VrrpInstance.garp_master_refresh_repeat")),
    ("vrrp_instance", &["garp_lower_prio_delay"], Applied("VrrpInstance.garp_lower_prio_delay")),
    ("vrrp_instance", &["garp_lower_prio_repeat"], Applied("VrrpInstance.garp_lower_prio_repeat")),
    ("vrrp_instance", &["down_timer_adverts"], Applied("VrrpInstance.down_timer_adverts")),
    ("vrrp_instance", &["lower_prio_no_advert"], Applied("VrrpInstance.lower_prio_no_advert")),
    ("vrrp_instance", &["higher_prio_send_advert"], Applied("VrrpInstance.higher_prio_send_advert")),
    ("vrrp_instance", &["use_vmac"], Applied("VrrpInstance.use_vmac")),
    ("vrrp_instance", &["notify_master_rx_lower_pri"], Applied("VrrpInstance.notify_master_rx_lower_pri")),
    ("vrrp_instance", &["notify_priority_changes"], Applied("VrrpInstance.notify_priority_changes")),
    ("vrrp_instance", &["virtual_routes"], Applied("VrrpInstance.virtual_routes")),
    ("vrrp_instance", &["virtual_rules"], Applied("VrrpInstance.virtual_rules")),
    ("vrrp_instance", &["use_ipvlan", "vmac_xmit_base", "use_vmac_addr"], NotApplied("the VMAC interface is a plain macvlan, sending from itself")),
    ("vrrp_instance", &["garp_extra_if"], NotApplied("no extra periodic gratuitous ARP on VMAC interfaces")),
    ("vrrp_instance", &["promote_secondaries"], Applied("VrrpInstance.promote_secondaries")),
    ("vrrp_instance", &["unicast_fault_no_peer"], Applied("VrrpInstance.unicast_fault_no_peer")),
    ("vrrp_instance", &["old_unicast_checksum"], NotApplied("adverts use RFC 5798 checksums (see docs/compat.md)")),
    ("vrrp_instance", &["track_src_ip"], Applied("VrrpInstance.track_src_ip")),
    ("vrrp_instance", &["kernel_rx_buf_size"], Applied("VrrpInstance.kernel_rx_buf_size")),
    ("vrrp_instance", &["debug"], Applied("-: keepalived 2.2.7 reads it and does nothing with it (not implemented there); rvs neither (RUST_LOG sets its logging)")),
    ("vrrp_instance", &["vrf"], NotApplied("instances are not bound to a VRF")),
    ("vrrp_instance", &["skip_check_adv_addr"], Applied("VrrpInstance.skip_check_adv_addr")),
    ("vrrp_instance", &["owner_ignore_adverts"], Applied("VrrpInstance.owner_ignore_adverts")),
    ("vrrp_instance", &["timer_expired_backup", "thread_timer_expired", "v3_checksum_as_v2"], NotApplied("not applied")),
    ("vrrp_instance", &["auth_hmac"], NotApplied("HMAC authentication (keepalived 2.4) is not supported")),
    ("vrrp_instance", &["native_ipv6"], Spelling("an IPv6 virtual_ipaddress")),
    ("vrrp_instance", &["vmac_garp_intvl"], Spelling("garp_extra_if (not applied)")),
    ("vrrp_instance", &["lvs_sync_daemon_interface"], Spelling("global_defs lvs_sync_daemon")),
    ("*", &["smtp_alert"], Applied("RealServer.smtp_alert")),
    ("authentication", &["auth_type", "auth_pass"], Applied("VrrpInstance.authentication")),
    ("auth_hmac", &["key", "active_key", "anti_replay", "time_window", "mode"], NotApplied("HMAC authentication (keepalived 2.4) is not supported")),
    // Notify scripts and trackers, in instances and sync groups.
    ("*", &["notify", "notify_master", "notify_backup", "notify_fault", "notify_stop", "notify_deleted"], Applied("VrrpInstance.notify")),
    ("*", &["track_interface", "track_script", "track_file", "track_process", "track_bfd"], Applied("VrrpInstance.trackers")),
    // vrrp_sync_group.
    ("vrrp_sync_group", &["group"], Applied("SyncGroup.group")),
    ("vrrp_sync_group", &["notify_priority_changes"], Applied("SyncGroup.notify_priority_changes")),
    ("vrrp_sync_group", &["sync_group_tracking_weight"], Applied("SyncGroup.sync_group_tracking_weight")),
    ("vrrp_sync_group", &["global_tracking"], Spelling("sync_group_tracking_weight")),
    // vrrp_script, track_file, vrrp_track_process, bfd_instance.
    ("vrrp_script", &["script"], Applied("VrrpScript.script")),
    ("vrrp_script", &["interval"], Applied("VrrpScript.interval")),
    ("vrrp_script", &["timeout"], Applied("VrrpScript.timeout")),
    ("vrrp_script", &["weight"], Applied("VrrpScript.weight")),
    ("vrrp_script", &["rise"], Applied("VrrpScript.rise")),
    ("vrrp_script", &["fall"], Applied("VrrpScript.fall")),
    ("vrrp_script", &["init_fail"], Applied("VrrpScript.init_fail")),
    ("vrrp_script", &["user"], Applied("Script.user")),
    ("track_file", &["file"], Applied("TrackFile.file")),
    ("track_file", &["weight"], Applied("TrackFile.weight")),
    ("track_file", &["init_file"], Applied("TrackFile.init_file")),
    ("vrrp_track_file", &["file"], Applied("TrackFile.file")),
    ("vrrp_track_file", &["weight"], Applied("TrackFile.weight")),
    ("vrrp_track_file", &["init_file"], Applied("TrackFile.init_file")),
    ("vrrp_track_process", &["process"], Applied("TrackProcess.process")),
    ("vrrp_track_process", &["param_match"], Applied("TrackProcess.param_match")),
    ("vrrp_track_process", &["weight"], Applied("TrackProcess.weight")),
    ("vrrp_track_process", &["quorum"], Applied("TrackProcess.quorum")),
    ("vrrp_track_process", &["quorum_max"], Applied("TrackProcess.quorum_max")),
    ("vrrp_track_process", &["fork_delay"], Applied("TrackProcess.fork_delay")),
    ("vrrp_track_process", &["terminate_delay"], Applied("TrackProcess.terminate_delay")),
    ("vrrp_track_process", &["delay"], Applied("TrackProcess.fork_delay")),
    ("vrrp_track_process", &["full_command"], Applied("TrackProcess.full_command")),
    ("bfd_instance", &["neighbor_ip", "neighbour_ip"], Applied("BfdInstance.neighbor_ip")),
    ("bfd_instance", &["source_ip"], Applied("BfdInstance.source_ip")),
    ("bfd_instance", &["min_rx"], Applied("BfdInstance.min_rx")),
    ("bfd_instance", &["min_tx"], Applied("BfdInstance.min_tx")),
    ("bfd_instance", &["idle_tx"], Applied("BfdInstance.idle_tx")),
    ("bfd_instance", &["multiplier"], Applied("BfdInstance.multiplier")),
    ("bfd_instance", &["passive"], Applied("BfdInstance.passive")),
    ("bfd_instance", &["ttl"], Applied("BfdInstance.ttl")),
    ("bfd_instance", &["hoplimit"], Applied("BfdInstance.hoplimit")),
    ("bfd_instance", &["max_hops"], Applied("BfdInstance.max_hops")),
    ("bfd_instance", &["weight"], Applied("BfdInstance.weight")),
    ("bfd_instance", &["vrrp", "checker"], Applied("-: BFD sessions serve VRRP and checkers alike")),
    ("bfd_instance", &["multihop"], NotApplied("sessions are single-hop (RFC 5881)")),
    ("SSL", &["ca"], Applied("HttpCheck.tls_ca")),
    ("SSL", &["certificate"], Applied("HttpCheck.tls_certificate")),
    ("SSL", &["key"], Applied("HttpCheck.tls_key")),
    ("SSL", &["password"], Applied("HttpCheck.tls_key_password")),
    // virtual_server.
    ("virtual_server", &["protocol"], Applied("VirtualServer.protocol")),
    ("virtual_server", &["lvs_sched", "lb_algo"], Applied("VirtualServer.lb_algo")),
    ("virtual_server", &["lvs_method", "lb_kind"], Applied("VirtualServer.forwarding")),
    ("virtual_server", &["hashed", "ops", "flag-1", "flag-2", "flag-3", "sh-port", "sh-fallback", "mh-port", "mh-fallback"], Applied("VirtualServer.sched_flags")),
    ("virtual_server", &["persistence_timeout"], Applied("VirtualServer.persistence_timeout")),
    ("virtual_server", &["persistence_granularity"], Applied("VirtualServer.persistence_granularity")),
    ("virtual_server", &["persistence_engine"], NotApplied("persistence engines (SIP) are not supported")),
    ("virtual_server", &["quorum"], Applied("VirtualServer.quorum")),
    ("virtual_server", &["hysteresis"], Applied("VirtualServer.hysteresis")),
    ("virtual_server", &["quorum_up"], Applied("VirtualServer.quorum_up")),
    ("virtual_server", &["quorum_down"], Applied("VirtualServer.quorum_down")),
    ("virtual_server", &["sorry_server"], Applied("VirtualServer.sorry_server")),
    ("virtual_server", &["sorry_server_inhibit", "sorry_server_lvs_method"], Applied("VirtualServer.sorry_server")),
    ("virtual_server", &["ha_suspend"], NotApplied("the service stays in the data plane when no VIP is held")),
    ("virtual_server", &["omega"], Applied("VirtualServer.omega")),
    ("virtual_server", &["ip_family"], Applied("VirtualServer.ip_family")),
    ("virtual_server", &["real_server"], Applied("VirtualServer.real_servers")),
    ("virtual_server", &["snmp_name"], NO_SNMP),
    ("virtual_server", &["rvs_mh_table_size"], Applied("VirtualServer.mh_table_size")),
    ("virtual_server", &["rvs_proxy_protocol"], Applied("VirtualServer.proxy_protocol")),
    ("virtual_server", &["inhibit_on_failure"], Applied("RealServer.inhibit_on_failure")),
    ("virtual_server", &["virtualhost"], Applied("HttpCheck.virtualhost")),
    ("virtual_server", &["weight"], Applied("RealServer.weight")),
    ("*", &["virtualhost"], Applied("HttpCheck.virtualhost")),
    ("virtual_server_group", &["*"], Applied("Config.virtual_server_groups")),
    // real_server.
    ("real_server", &["weight"], Applied("RealServer.weight")),
    ("real_server", &["lvs_method"], Applied("RealServer.forwarding")),
    ("real_server", &["uthreshold"], Applied("RealServer.uthreshold")),
    ("real_server", &["lthreshold"], Applied("RealServer.lthreshold")),
    ("real_server", &["inhibit_on_failure"], Applied("RealServer.inhibit_on_failure")),
    ("real_server", &["notify_up"], Applied("RealServer.notify_up")),
    ("real_server", &["notify_down"], Applied("RealServer.notify_down")),
    ("real_server", &["virtualhost"], Applied("HttpCheck.virtualhost")),
    ("real_server", &["snmp_name"], NO_SNMP),
    ("real_server", &["MISC_CHECK", "SMTP_CHECK", "TCP_CHECK", "PING_CHECK", "UDP_CHECK", "HTTP_GET", "SSL_GET", "DNS_CHECK", "FILE_CHECK", "BFD_CHECK"], Applied("RealServer.checkers")),
    // Checker timing, at every level (virtual_server, real_server, each checker).
    ("*", &["connect_ip"], Applied("Checker.connect_ip")),
    ("*", &["connect_port"], Applied("Checker.connect_port")),
    ("*", &["bindto"], Applied("Checker.bindto")),
    ("*", &["bind_port"], Applied("Checker.bind_port")),
    ("*", &["connect_timeout"], Applied("Checker.connect_timeout")),
    ("*", &["fwmark"], Applied("Checker.fwmark")),
    ("*", &["retry"], Applied("Checker.retry")),
    ("*", &["delay_before_retry"], Applied("Checker.delay_before_retry")),
    ("*", &["warmup"], Applied("Checker.warmup")),
    ("*", &["delay_loop"], Applied("Checker.delay_loop")),
    ("*", &["alpha"], Applied("Checker.alpha")),
    ("*", &["nb_get_retry"], Spelling("retry (HTTP_GET and SSL_GET only, as keepalived 2.2.7)")),
    ("*", &["bind_if"], Applied("Checker.bind_if")),
    ("*", &["log_all_failures"], Applied("Checker.log_all_failures")),
    ("HTTP_GET", &["url"], Applied("HttpCheck.urls")),
    ("SSL_GET", &["url"], Applied("HttpCheck.urls")),
    ("*", &["http_protocol"], Applied("HttpCheck.http_protocol")),
    ("*", &["enable_sni"], Applied("HttpCheck.enable_sni")),
    ("*", &["sni_name"], Applied("HttpCheck.sni_name")),
    ("*", &["fast_recovery"], NotApplied("a failed server is retried at delay_loop, not sooner")),
    ("*", &["tls_compliant"], NotApplied("TLS shutdown is not required of the server")),
    ("url", &["path"], Applied("Url.path")),
    ("url", &["digest"], Applied("Url.digest")),
    ("url", &["status_code"], Applied("Url.status_code")),
    ("url", &["virtualhost"], Applied("Url.virtualhost")),
    ("url", &["regex"], Applied("Url.regex")),
    ("url", &["regex_no_match"], Applied("Url.regex_no_match")),
    ("url", &["regex_options", "regex_min_offset", "regex_max_offset"], Applied("-: part of `regex`, compiled by the parser (Url::compiled_regex) and matched by HTTP_GET/SSL_GET")),
    ("url", &["regex_stack"], Applied("-: PCRE2's JIT stack; the regex crate rvs uses matches in linear time and needs none")),
    ("MISC_CHECK", &["misc_path"], Applied("MiscCheck.misc_path")),
    ("MISC_CHECK", &["misc_timeout"], Applied("MiscCheck.misc_timeout")),
    ("MISC_CHECK", &["misc_dynamic"], Applied("MiscCheck.misc_dynamic")),
    ("MISC_CHECK", &["user"], Applied("Script.user")),
    ("SMTP_CHECK", &["helo_name"], Applied("SmtpCheck.helo_name")),
    ("SMTP_CHECK", &["host"], Applied("Checker.connect_ip")),
    ("DNS_CHECK", &["type"], Applied("DnsCheck.query_type")),
    ("DNS_CHECK", &["name"], Applied("DnsCheck.name")),
    ("UDP_CHECK", &["payload"], Applied("UdpCheck.payload")),
    ("UDP_CHECK", &["require_reply"], Applied("UdpCheck.require_reply")),
    ("UDP_CHECK", &["min_reply_length"], Applied("UdpCheck.min_reply_length")),
    ("UDP_CHECK", &["max_reply_length"], Applied("UdpCheck.max_reply_length")),
    ("FILE_CHECK", &["track_file"], Applied("FileCheck.track_file")),
    ("FILE_CHECK", &["weight"], Applied("FileCheck.weight")),
    ("BFD_CHECK", &["name"], Applied("BfdCheck.name")),
    ("garp_group", &["garp_interval", "gna_interval", "interface", "interfaces"], Applied("Config.garp_groups")),
    ("track_group", &["*"], NotApplied("instances are not grouped for tracking")),
];

/// What rvs does with `kw` written in `block` (`""`: the top level).
pub fn support(block: &str, kw: &str) -> Option<Support> {
    let find = |b: &str, k: &str| {
        TABLE
            .iter()
            .find(|(tb, kws, _)| *tb == b && kws.contains(&k))
            .map(|r| r.2)
    };
    find(block, kw)
        .or_else(|| find("*", kw))
        .or_else(|| find(block, "*"))
}

/// Warns at every line whose keyword rvs reads but does not apply (`block`: the block the
/// nodes are in, `""` at the top). Lists' lines are values, not keywords.
pub fn warn_unapplied(nodes: &[crate::tree::Node], block: &str, diags: &mut crate::diag::Diags) {
    for n in nodes {
        match support(block, n.name()) {
            Some(NotApplied(lost)) => {
                diags.not_applied(
                    n.kw.loc,
                    n.kw.width,
                    format!("'{}' is not applied by rvs: {lost}", n.kw.text),
                );
            }
            Some(Spelling(of)) if of.ends_with("(not applied)") => {
                diags.not_applied(
                    n.kw.loc,
                    n.kw.width,
                    format!("'{}' ({of}) is not applied by rvs", n.kw.text),
                );
            }
            _ => {}
        }
        if let crate::tree::Body::Block(children) = &n.body {
            warn_unapplied(children, n.name(), diags);
        }
    }
}
