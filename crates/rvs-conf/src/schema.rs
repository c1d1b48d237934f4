//! The keyword tree of keepalived.conf: every keyword keepalived 2.2.7 installs (plus the
//! few added up to 2.4.x, marked in [`NEWER_THAN_2_2_7`]), by block, each declared once
//! here with its shape and what rvs does with it ([`Support`]).
//!
//! The tree builder uses it to know which keywords open a block (so a `{` on the next line
//! belongs to them, and an unknown keyword's block can be skipped as a whole), the
//! diagnostics use it to suggest the keyword a typo meant, [`crate::support`] to warn at
//! every line whose keyword is not applied, and docs/keywords.md is generated from it. The
//! loaders (`load/*.rs`) handle the keywords declared here; `tests/keywords.rs` checks
//! that every keyword they match on is declared in its block and every applied one is
//! handled.

/// What follows a keyword.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Arguments on the line only.
    Leaf,
    /// A `{ … }` block of keywords.
    Block(&'static [Kw]),
    /// A `{ … }` block whose every line is one list item (`virtual_ipaddress`, …).
    List,
}

/// A keyword: its name, its shape, and what rvs does with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kw {
    pub name: &'static str,
    pub shape: Shape,
    pub support: Support,
}

const fn leaf(name: &'static str, support: Support) -> Kw {
    Kw {
        name,
        shape: Shape::Leaf,
        support,
    }
}
const fn block(name: &'static str, kws: &'static [Kw], support: Support) -> Kw {
    Kw {
        name,
        shape: Shape::Block(kws),
        support,
    }
}
const fn list(name: &'static str, support: Support) -> Kw {
    Kw {
        name,
        shape: Shape::List,
        support,
    }
}

// What is lost, shared by families of keywords.
const SNMP: Support = Applied("GlobalDefs.snmp");
const NO_DBUS: Support = NotApplied("rvs serves keepalived 2.2.7's DBus interface, which always names instance objects by interface (2.4's option)");
const BUFS: Support = NotApplied(
    "rvs has no such socket: vrrp_track_process reads /proc (keepalived listens to the \
     kernel's process events)",
);
const FIREWALL: Support = NotApplied(
    "keepalived's other firewall settings: rvs installs the no_accept rules in nftables \
     (no iptables, ipsets or IPVS rules)",
);

use crate::support::Support::{self, Applied, NotApplied, Spelling};

/// Keywords that keepalived 2.2.7 as Debian bookworm builds it does not know (newer
/// keywords, and those of features its build leaves out: `vrrp_ipsets`): rvs
/// accepts them, and the differential test (`keepalived_diff.rs`) checks that keepalived
/// 2.2.7 calls each unknown.
pub const NEWER_THAN_2_2_7: &[&str] = &[
    "active_key",
    "anti_replay",
    "auth_hmac",
    "dbus_no_interface_name",
    "iproute_etc_dir",
    "iproute_usr_dir",
    "json_dump_file",
    "json_version",
    "mode",
    "multihop",
    "no_virtual_ipaddress",
    "owner_ignore_adverts",
    "set_supplementary_groups",
    "sni_name",
    "snmp_rs_stats_update_interval",
    "snmp_vs_stats_update_interval",
    "state_dump_file",
    "stats_dump_file",
    "thread_timer_expired",
    "time_window",
    "timer_expired_backup",
    "tls_compliant",
    "use_symlink_paths",
    "v3_checksum_as_v2",
    "vrrp_delay_after_boot",
    "vrrp_ipsets",
    "vrrp_owner_ignore_adverts",
];

/// Keywords valid both at the root and inside `global_defs`.
const ROOT_GLOBALS: &[Kw] = &[
    leaf("linkbeat_use_polling", NotApplied("link state comes from netlink; MII/ethtool polling is not done")),
    leaf("net_namespace", Applied("GlobalDefs.net_namespace")),
    leaf("net_namespace_ipvs", Applied("GlobalDefs.net_namespace_ipvs")),
    leaf("namespace_with_ipsets", Applied("-: nothing to do, as in keepalived 2.2.7 built with nftables (Debian's): it only names ipsets (Linux < 3.13), which neither uses")),
    leaf("use_pid_dir", Applied("GlobalDefs.use_pid_dir")),
    leaf("instance", Applied("GlobalDefs.instance")),
    leaf("child_wait_time", Applied("GlobalDefs.child_wait_time")),
];

const GLOBAL_LEAVES: &[Kw] = &[
    leaf("bfd_cpu_affinity", Applied("GlobalDefs.bfd_process")),
    leaf("bfd_no_swap", Applied("GlobalDefs.no_swap")),
    leaf("bfd_priority", Applied("GlobalDefs.bfd_priority")),
    leaf("bfd_process_name", Applied("GlobalDefs.bfd_process")),
    leaf("bfd_rlimit_rtime", Spelling("bfd_rlimit_rttime")),
    leaf("bfd_rlimit_rttime", Applied("GlobalDefs.bfd_process")),
    leaf("bfd_rt_priority", Applied("GlobalDefs.bfd_process")),
    leaf("checker_cpu_affinity", Applied("GlobalDefs.checker_process")),
    leaf("checker_log_all_failures", Applied("Checker.log_all_failures")),
    leaf("checker_no_swap", Applied("GlobalDefs.no_swap")),
    leaf("checker_priority", Applied("GlobalDefs.checker_priority")),
    leaf("checker_process_name", Applied("GlobalDefs.checker_process")),
    leaf("checker_rlimit_rtime", Spelling("checker_rlimit_rttime")),
    leaf("checker_rlimit_rttime", NotApplied("the checkers share their threads with the proxy, which must not run real-time (it would starve the host under load); give VRRP and BFD vrrp_rt_priority / bfd_rt_priority")),
    leaf("checker_rt_priority", NotApplied("the checkers share their threads with the proxy, which must not run real-time (it would starve the host under load); give VRRP and BFD vrrp_rt_priority / bfd_rt_priority")),
    leaf("config_save_dir", Applied("GlobalDefs.config_save_dir")),
    leaf("data_use_instance", Applied("GlobalDefs.data_use_instance")),
    leaf("dbus_service_name", Applied("GlobalDefs.dbus_service_name")),
    leaf("default_interface", Applied("VrrpInstance.interface")),
    leaf("disable_local_igmp", Applied("GlobalDefs.disable_local_igmp")),
    leaf("dynamic_interfaces", Applied("GlobalDefs.dynamic_interfaces")),
    leaf("enable_dbus", Applied("GlobalDefs.enable_dbus")),
    leaf("enable_script_security", Applied("GlobalDefs.enable_script_security")),
    // rvs extension (docs/health.md): every LVS-DR real server's TCP checkers also probe
    // it along the path clients take.
    leaf(
        "rvs_forwarding_path_check",
        Applied("GlobalDefs.forwarding_path_check")
    ),
    // rvs extension (docs/doctor.md): compare the configuration with peer directors.
    leaf("rvs_config_drift_peer", Applied("GlobalDefs.config_drift_peers")),
    leaf("rvs_config_drift_key", Applied("GlobalDefs.config_drift_key")),
    // rvs extension (docs/cluster.md): unicast and authenticated connection sync.
    leaf("rvs_sync_peer", Applied("GlobalDefs.sync_peers")),
    leaf("rvs_sync_key", Applied("GlobalDefs.sync_key")),
    leaf("enable_snmp_checker", SNMP),
    leaf("enable_snmp_keepalived", Spelling("enable_snmp_vrrp")),
    leaf("enable_snmp_rfc", SNMP),
    leaf("enable_snmp_rfcv2", SNMP),
    leaf("enable_snmp_rfcv3", SNMP),
    leaf("enable_snmp_vrrp", SNMP),
    leaf("enable_traps", SNMP),
    leaf("fifo_write_vrrp_states_on_reload", Applied("GlobalDefs.fifo_write_vrrp_states_on_reload")),
    leaf("include_check", Applied("-: it sets the checks of the includes read after it (keepalived's include_check: read, match, wildcard_match, brace_match)")),
    leaf("log_unknown_vrids", Applied("GlobalDefs.log_unknown_vrids")),
    leaf("lvs_flush", Applied("GlobalDefs.lvs_flush")),
    leaf("lvs_flush_on_stop", Applied("GlobalDefs.lvs_flush_on_stop")),
    leaf("lvs_flush_onstop", Applied("GlobalDefs.lvs_flush_on_stop")),
    leaf("lvs_netlink_cmd_rcv_bufs", Applied("GlobalDefs.lvs_netlink_cmd_rcv_bufs")),
    leaf("lvs_netlink_cmd_rcv_bufs_force", Applied("GlobalDefs.lvs_netlink_cmd_rcv_bufs")),
    leaf("lvs_netlink_monitor_rcv_bufs", Applied("GlobalDefs.lvs_netlink_monitor_rcv_bufs")),
    leaf("lvs_netlink_monitor_rcv_bufs_force", Applied("GlobalDefs.lvs_netlink_monitor_rcv_bufs")),
    leaf("lvs_notify_fifo", Applied("GlobalDefs.lvs_notify_fifo")),
    leaf("lvs_notify_fifo_script", Applied("GlobalDefs.lvs_notify_fifo_script")),
    leaf("lvs_process_name", Spelling("checker_process_name")),
    leaf("lvs_sync_daemon", Applied("GlobalDefs.lvs_sync_daemon")),
    leaf("lvs_timeouts", Applied("GlobalDefs.lvs_timeouts")),
    leaf("max_auto_priority", Applied("GlobalDefs.max_auto_priority")),
    leaf("min_auto_priority_delay", Applied("GlobalDefs.min_auto_priority_delay")),
    leaf("nftables", Applied("-: the name of the nftables tables of no_accept (default keepalived)")),
    leaf("nftables_counters", Applied("GlobalDefs.nftables_counters")),
    leaf("nftables_ifindex", Applied("GlobalDefs.nftables_ifindex")),
    leaf("nftables_ipvs", FIREWALL),
    leaf("nftables_ipvs_priority", FIREWALL),
    leaf("nftables_ipvs_start_fwmark", FIREWALL),
    leaf("nftables_priority", Applied("GlobalDefs.nftables_priority")),
    leaf("no_checker_emails", Applied("-: rvs mails a real server's changes of state, not each checker's, which is what no_checker_emails asks")),
    leaf("no_email_faults", Applied("GlobalDefs.no_email_faults")),
    leaf("notification_email_from", Applied("GlobalDefs.notification_email_from")),
    leaf("notify_fifo", Applied("GlobalDefs.notify_fifo")),
    leaf("notify_fifo_script", Applied("GlobalDefs.notify_fifo_script")),
    leaf("process_monitor_rcv_bufs", BUFS),
    leaf("process_monitor_rcv_bufs_force", BUFS),
    leaf("process_name", Applied("GlobalDefs.process_name")),
    leaf("process_names", Applied("GlobalDefs.vrrp_process")),
    leaf("random_seed", Applied("-: it seeds ${_RANDOM} as the lines are read (rvs's generator: the same seed gives the same values, not glibc's)")),
    leaf("reload_check_config", Applied("GlobalDefs.reload_check_config")),
    leaf("reload_file", Applied("GlobalDefs.reload_file")),
    leaf("reload_repeat", Applied("GlobalDefs.reload_repeat")),
    leaf("reload_time_file", Applied("GlobalDefs.reload_time_file")),
    leaf("router_id", Applied("GlobalDefs.router_id")),
    leaf("rs_init_notifies", Applied("GlobalDefs.rs_init_notifies")),
    leaf("script_user", Applied("GlobalDefs.script_user")),
    leaf("shutdown_script", Applied("GlobalDefs.shutdown_script")),
    leaf("shutdown_script_timeout", Applied("GlobalDefs.shutdown_script_timeout")),
    leaf("smtp_alert", Applied("GlobalDefs.smtp_alert")),
    leaf("smtp_alert_checker", Applied("GlobalDefs.smtp_alert_checker")),
    leaf("smtp_alert_vrrp", Applied("GlobalDefs.smtp_alert_vrrp")),
    leaf("smtp_connect_timeout", Applied("GlobalDefs.smtp_connect_timeout")),
    leaf("smtp_helo_name", Applied("GlobalDefs.smtp_helo_name")),
    leaf("smtp_server", Applied("GlobalDefs.smtp_server")),
    leaf("snmp_socket", SNMP),
    leaf("startup_script", Applied("GlobalDefs.startup_script")),
    leaf("startup_script_timeout", Applied("GlobalDefs.startup_script_timeout")),
    leaf("tmp_config_directory", NotApplied("keepalived's config bookkeeping and dump variants; rvs answers `rvs status` and GET /v1/status instead")),
    leaf("umask", Applied("GlobalDefs.umask")),
    leaf("vmac_addr_prefix", NotApplied("VMAC interfaces are addressed the default way")),
    leaf("vmac_prefix", Applied("GlobalDefs.vmac_prefix")),
    leaf("vrrp_check_unicast_src", Applied("VrrpInstance.check_unicast_src")),
    leaf("vrrp_cpu_affinity", Applied("GlobalDefs.vrrp_process")),
    leaf("vrrp_down_timer_adverts", Applied("VrrpInstance.down_timer_adverts")),
    leaf("vrrp_garp_extra_if", Applied("GlobalDefs.vrrp_garp_extra_if")),
    leaf("vrrp_garp_interval", Applied("GlobalDefs.vrrp_garp_interval")),
    leaf("vrrp_garp_lower_prio_delay", Applied("VrrpInstance.garp_lower_prio_delay")),
    leaf("vrrp_garp_lower_prio_repeat", Applied("VrrpInstance.garp_lower_prio_repeat")),
    leaf("vrrp_garp_master_delay", Applied("VrrpInstance.garp_master_delay")),
    leaf("vrrp_garp_master_refresh", Applied("VrrpInstance.garp_master_refresh")),
    leaf("vrrp_garp_master_refresh_repeat", Applied("VrrpInstance.garp_master_refresh_repeat")),
    leaf("vrrp_garp_master_repeat", Applied("VrrpInstance.garp_master_repeat")),
    leaf("vrrp_gna_interval", Applied("GlobalDefs.vrrp_gna_interval")),
    leaf("vrrp_higher_prio_send_advert", Applied("VrrpInstance.higher_prio_send_advert")),
    leaf("vrrp_ipsets", FIREWALL),
    leaf("vrrp_iptables", Applied("GlobalDefs.nftables_priority")),
    leaf("vrrp_lower_prio_no_advert", Applied("VrrpInstance.lower_prio_no_advert")),
    leaf("vrrp_mcast_group4", Applied("GlobalDefs.vrrp_mcast_group4")),
    leaf("vrrp_mcast_group6", Applied("GlobalDefs.vrrp_mcast_group6")),
    leaf("vrrp_min_garp", Applied("VrrpInstance.garp_master_refresh_repeat")),
    leaf("vrrp_netlink_cmd_rcv_bufs", Applied("GlobalDefs.vrrp_netlink_cmd_rcv_bufs")),
    leaf("vrrp_netlink_cmd_rcv_bufs_force", Applied("GlobalDefs.vrrp_netlink_cmd_rcv_bufs")),
    leaf("vrrp_netlink_monitor_rcv_bufs", Applied("GlobalDefs.vrrp_netlink_monitor_rcv_bufs")),
    leaf("vrrp_netlink_monitor_rcv_bufs_force", Applied("GlobalDefs.vrrp_netlink_monitor_rcv_bufs")),
    leaf("vrrp_no_swap", Applied("GlobalDefs.no_swap")),
    leaf("vrrp_notify_fifo", Applied("GlobalDefs.vrrp_notify_fifo")),
    leaf("vrrp_notify_fifo_script", Applied("GlobalDefs.vrrp_notify_fifo_script")),
    leaf("vrrp_notify_priority_changes", Applied("GlobalDefs.vrrp_notify_priority_changes")),
    leaf("vrrp_priority", Applied("GlobalDefs.vrrp_priority")),
    leaf("vrrp_process_name", Applied("GlobalDefs.vrrp_process")),
    leaf("vrrp_rlimit_rtime", Spelling("vrrp_rlimit_rttime")),
    leaf("vrrp_rlimit_rttime", Applied("GlobalDefs.vrrp_process")),
    leaf("vrrp_rt_priority", Applied("GlobalDefs.vrrp_process")),
    leaf("vrrp_rx_bufs_multiplier", Applied("GlobalDefs.vrrp_rx_bufs_multiplier")),
    leaf("vrrp_rx_bufs_policy", Applied("GlobalDefs.vrrp_rx_bufs_policy")),
    leaf("vrrp_skip_check_adv_addr", Applied("VrrpInstance.skip_check_adv_addr")),
    leaf("vrrp_startup_delay", Applied("GlobalDefs.vrrp_startup_delay")),
    leaf("vrrp_strict", Applied("GlobalDefs.vrrp_strict")),
    leaf("vrrp_version", Applied("VrrpInstance.version")),
    leaf("vrrp_vmac_garp_intvl", Spelling("vrrp_garp_extra_if")),
    // newer than 2.2.7
    leaf("dbus_no_interface_name", NO_DBUS),
    leaf("iproute_etc_dir", NotApplied("table names are read from iproute2's default directories (/etc/iproute2, /usr/share/iproute2)")),
    leaf("iproute_usr_dir", NotApplied("table names are read from iproute2's default directories (/etc/iproute2, /usr/share/iproute2)")),
    leaf("json_dump_file", Applied("-: where SIGRTMIN+2, SIGUSR1 and SIGUSR2 write keepalived's JSON, data and stats dumps")),
    leaf("json_version", NotApplied("keepalived's config bookkeeping and dump variants; rvs answers `rvs status` and GET /v1/status instead")),
    leaf("set_supplementary_groups", NotApplied("scripts run with their user's primary group only")),
    leaf("snmp_rs_stats_update_interval", SNMP),
    leaf("snmp_vs_stats_update_interval", SNMP),
    leaf("state_dump_file", Applied("-: where SIGRTMIN+2, SIGUSR1 and SIGUSR2 write keepalived's JSON, data and stats dumps")),
    leaf("stats_dump_file", Applied("-: where SIGRTMIN+2, SIGUSR1 and SIGUSR2 write keepalived's JSON, data and stats dumps")),
    leaf("use_symlink_paths", NotApplied("keepalived's config bookkeeping and dump variants; rvs answers `rvs status` and GET /v1/status instead")),
    leaf("v3_checksum_as_v2", NotApplied("not applied")),
    leaf("vrrp_delay_after_boot", Applied("GlobalDefs.vrrp_startup_delay")),
    leaf("vrrp_owner_ignore_adverts", Applied("VrrpInstance.owner_ignore_adverts")),
];

/// Keywords of a block, for lookups that do not care about the shape (the global
/// leaves are kept as a flat list of names above; see [`lookup`]).
macro_rules! kws {
    ($($e:expr),* $(,)?) => { &[$($e),*] };
}

const CONN: [Kw; 8] = [
    leaf("connect_ip", Applied("Checker.connect_ip")),
    leaf("connect_port", Applied("Checker.connect_port")),
    leaf("bindto", Applied("Checker.bindto")),
    leaf("bind_port", Applied("Checker.bind_port")),
    leaf("bind_if", Applied("Checker.bind_if")),
    leaf("connect_timeout", Applied("Checker.connect_timeout")),
    leaf("fwmark", Applied("Checker.fwmark")),
    // rvs extension (docs/health.md): probe an LVS-DR real server along the path clients take.
    leaf(
        "rvs_forwarding_path_check",
        Applied("Checker.forwarding_path"),
    ),
];
const RETRY: [Kw; 7] = [
    // nb_get_retry: keepalived 2.2.7 knows it only in HTTP_GET/SSL_GET; tutorials put it in
    // every checker, so rvs accepts it everywhere with a deprecation warning.
    leaf(
        "nb_get_retry",
        Spelling("retry (HTTP_GET and SSL_GET only, as keepalived 2.2.7)"),
    ),
    leaf("retry", Applied("Checker.retry")),
    leaf("delay_before_retry", Applied("Checker.delay_before_retry")),
    leaf("warmup", Applied("Checker.warmup")),
    leaf("delay_loop", Applied("Checker.delay_loop")),
    leaf("alpha", Applied("Checker.alpha")),
    leaf("log_all_failures", Applied("Checker.log_all_failures")),
];

/// Concatenates keyword arrays at compile time.
const fn cat<const N: usize>(parts: &[&[Kw]]) -> [Kw; N] {
    let mut out = [leaf("", Applied("-")); N];
    let mut n = 0;
    let mut p = 0;
    while p < parts.len() {
        let mut i = 0;
        while i < parts[p].len() {
            out[n] = parts[p][i];
            n += 1;
            i += 1;
        }
        p += 1;
    }
    assert!(n == N, "keyword table length mismatch");
    out
}

const CONN_RETRY: [Kw; 15] = cat(&[&CONN, &RETRY]);

static TCP_CHECK: [Kw; 15] = CONN_RETRY;
static PING_CHECK: [Kw; 15] = CONN_RETRY;
static URL: &[Kw] = kws![
    leaf("path", Applied("Url.path")),
    leaf("digest", Applied("Url.digest")),
    leaf("status_code", Applied("Url.status_code")),
    leaf("virtualhost", Applied("Url.virtualhost")),
    leaf("regex", Applied("Url.regex")),
    leaf("regex_no_match", Applied("Url.regex_no_match")),
    leaf("regex_options", Applied("-: part of `regex`, compiled by the parser (Url::compiled_regex) and matched by HTTP_GET/SSL_GET")),
    leaf("regex_min_offset", Applied("-: part of `regex`, compiled by the parser (Url::compiled_regex) and matched by HTTP_GET/SSL_GET")),
    leaf("regex_max_offset", Applied("-: part of `regex`, compiled by the parser (Url::compiled_regex) and matched by HTTP_GET/SSL_GET")),
    leaf("regex_stack", Applied("-: PCRE2's JIT stack; the regex crate rvs uses matches in linear time and needs none")),
    leaf("tls_compliant", NotApplied("TLS shutdown is not required of the server")),
];
static HTTP_GET: [Kw; 22] = cat(&[
    &CONN_RETRY,
    &[
        leaf("virtualhost", Applied("HttpCheck.virtualhost")),
        leaf("http_protocol", Applied("HttpCheck.http_protocol")),
        leaf("enable_sni", Applied("HttpCheck.enable_sni")),
        leaf(
            "fast_recovery",
            NotApplied("a failed server is retried at delay_loop, not sooner"),
        ),
        block("url", URL, Applied("HttpCheck.urls")),
        leaf("sni_name", Applied("HttpCheck.sni_name")),
        leaf(
            "tls_compliant",
            NotApplied("TLS shutdown is not required of the server"),
        ),
    ],
]);
static MISC_CHECK: [Kw; 11] = cat(&[
    &RETRY,
    &[
        leaf("misc_path", Applied("MiscCheck.misc_path")),
        leaf("misc_timeout", Applied("MiscCheck.misc_timeout")),
        leaf("misc_dynamic", Applied("MiscCheck.misc_dynamic")),
        leaf("user", Applied("Script.user")),
    ],
]);
static SMTP_HOST: [Kw; 15] = CONN_RETRY;
static SMTP_CHECK: [Kw; 17] = cat(&[
    &CONN_RETRY,
    &[
        leaf("helo_name", Applied("SmtpCheck.helo_name")),
        block("host", &SMTP_HOST, Applied("Checker.connect_ip")),
    ],
]);
static DNS_CHECK: [Kw; 17] = cat(&[
    &CONN_RETRY,
    &[
        leaf("type", Applied("DnsCheck.query_type")),
        leaf("name", Applied("DnsCheck.name")),
    ],
]);
static UDP_CHECK: [Kw; 19] = cat(&[
    &CONN_RETRY,
    &[
        leaf("payload", Applied("UdpCheck.payload")),
        leaf("require_reply", Applied("UdpCheck.require_reply")),
        leaf("min_reply_length", Applied("UdpCheck.min_reply_length")),
        leaf("max_reply_length", Applied("UdpCheck.max_reply_length")),
    ],
]);
static FILE_CHECK: &[Kw] = kws![
    leaf("track_file", Applied("FileCheck.track_file")),
    leaf("weight", Applied("FileCheck.weight"))
];
static BFD_CHECK: &[Kw] = kws![
    leaf("name", Applied("BfdCheck.name")),
    leaf("alpha", Applied("Checker.alpha"))
];

/// The checker block names, in the order keepalived installs them.
pub const CHECKERS: &[&str] = &[
    "MISC_CHECK",
    "SMTP_CHECK",
    "TCP_CHECK",
    "PING_CHECK",
    "UDP_CHECK",
    "HTTP_GET",
    "SSL_GET",
    "DNS_CHECK",
    "FILE_CHECK",
    "BFD_CHECK",
];

static REAL_SERVER: &[Kw] = kws![
    leaf("weight", Applied("RealServer.weight")),
    leaf("lvs_method", Applied("RealServer.forwarding")),
    leaf("uthreshold", Applied("RealServer.uthreshold")),
    leaf("lthreshold", Applied("RealServer.lthreshold")),
    leaf(
        "inhibit_on_failure",
        Applied("RealServer.inhibit_on_failure")
    ),
    leaf("notify_up", Applied("RealServer.notify_up")),
    leaf("notify_down", Applied("RealServer.notify_down")),
    leaf("alpha", Applied("Checker.alpha")),
    leaf("retry", Applied("Checker.retry")),
    leaf("delay_before_retry", Applied("Checker.delay_before_retry")),
    leaf("warmup", Applied("Checker.warmup")),
    leaf("connect_timeout", Applied("Checker.connect_timeout")),
    leaf("delay_loop", Applied("Checker.delay_loop")),
    leaf("smtp_alert", Applied("RealServer.smtp_alert")),
    leaf("virtualhost", Applied("HttpCheck.virtualhost")),
    leaf("snmp_name", Applied("RealServer.snmp_name")),
    block("MISC_CHECK", &MISC_CHECK, Applied("RealServer.checkers")),
    block("SMTP_CHECK", &SMTP_CHECK, Applied("RealServer.checkers")),
    block("TCP_CHECK", &TCP_CHECK, Applied("RealServer.checkers")),
    block("PING_CHECK", &PING_CHECK, Applied("RealServer.checkers")),
    block("UDP_CHECK", &UDP_CHECK, Applied("RealServer.checkers")),
    block("HTTP_GET", &HTTP_GET, Applied("RealServer.checkers")),
    block("SSL_GET", &HTTP_GET, Applied("RealServer.checkers")),
    block("DNS_CHECK", &DNS_CHECK, Applied("RealServer.checkers")),
    block("FILE_CHECK", FILE_CHECK, Applied("RealServer.checkers")),
    block("BFD_CHECK", BFD_CHECK, Applied("RealServer.checkers")),
];

static VIRTUAL_SERVER: &[Kw] = kws![
    leaf("ip_family", Applied("VirtualServer.ip_family")),
    leaf("retry", Applied("Checker.retry")),
    leaf("delay_before_retry", Applied("Checker.delay_before_retry")),
    leaf("warmup", Applied("Checker.warmup")),
    leaf("connect_timeout", Applied("Checker.connect_timeout")),
    leaf("delay_loop", Applied("Checker.delay_loop")),
    leaf(
        "inhibit_on_failure",
        Applied("RealServer.inhibit_on_failure")
    ),
    leaf("lb_algo", Applied("VirtualServer.lb_algo")),
    leaf("lvs_sched", Applied("VirtualServer.lb_algo")),
    leaf("hashed", Applied("VirtualServer.sched_flags")),
    leaf("ops", Applied("VirtualServer.sched_flags")),
    leaf("flag-1", Applied("VirtualServer.sched_flags")),
    leaf("flag-2", Applied("VirtualServer.sched_flags")),
    leaf("flag-3", Applied("VirtualServer.sched_flags")),
    leaf("sh-port", Applied("VirtualServer.sched_flags")),
    leaf("sh-fallback", Applied("VirtualServer.sched_flags")),
    leaf("mh-port", Applied("VirtualServer.sched_flags")),
    leaf("mh-fallback", Applied("VirtualServer.sched_flags")),
    leaf("lb_kind", Applied("VirtualServer.forwarding")),
    leaf("lvs_method", Applied("VirtualServer.forwarding")),
    leaf(
        "persistence_engine",
        NotApplied("persistence engines (SIP) are not supported")
    ),
    leaf(
        "persistence_timeout",
        Applied("VirtualServer.persistence_timeout")
    ),
    leaf(
        "persistence_granularity",
        Applied("VirtualServer.persistence_granularity")
    ),
    leaf("protocol", Applied("VirtualServer.protocol")),
    leaf("ha_suspend", Applied("VirtualServer.ha_suspend")),
    leaf("smtp_alert", Applied("RealServer.smtp_alert")),
    leaf("virtualhost", Applied("HttpCheck.virtualhost")),
    leaf("snmp_name", Applied("VirtualServer.snmp_name")),
    leaf("alpha", Applied("Checker.alpha")),
    leaf("omega", Applied("VirtualServer.omega")),
    leaf("quorum_up", Applied("VirtualServer.quorum_up")),
    leaf("quorum_down", Applied("VirtualServer.quorum_down")),
    leaf("quorum", Applied("VirtualServer.quorum")),
    leaf("hysteresis", Applied("VirtualServer.hysteresis")),
    leaf("weight", Applied("RealServer.weight")),
    leaf("sorry_server", Applied("VirtualServer.sorry_server")),
    leaf(
        "sorry_server_inhibit",
        Applied("VirtualServer.sorry_server")
    ),
    leaf(
        "sorry_server_lvs_method",
        Applied("VirtualServer.sorry_server")
    ),
    block(
        "real_server",
        REAL_SERVER,
        Applied("VirtualServer.real_servers")
    ),
    // rvs extensions (documented in docs/config.md)
    leaf("rvs_mh_table_size", Applied("VirtualServer.mh_table_size")),
    leaf(
        "rvs_proxy_protocol",
        Applied("VirtualServer.proxy_protocol")
    ),
    // FULLNAT, the LVS FULLNAT and DPVS forks' keyword (docs/cluster.md).
    leaf("laddr_group_name", Applied("VirtualServer.laddr_group")),
];

static AUTHENTICATION: &[Kw] = kws![
    leaf("auth_type", Applied("VrrpInstance.authentication")),
    leaf("auth_pass", Applied("VrrpInstance.authentication"))
];
static AUTH_HMAC: &[Kw] = kws![
    leaf(
        "key",
        NotApplied("HMAC authentication (keepalived 2.4) is not supported")
    ),
    leaf(
        "active_key",
        NotApplied("HMAC authentication (keepalived 2.4) is not supported")
    ),
    leaf(
        "anti_replay",
        NotApplied("HMAC authentication (keepalived 2.4) is not supported")
    ),
    leaf(
        "time_window",
        NotApplied("HMAC authentication (keepalived 2.4) is not supported")
    ),
    leaf(
        "mode",
        NotApplied("HMAC authentication (keepalived 2.4) is not supported")
    ),
];

static VRRP_INSTANCE: &[Kw] = kws![
    leaf("accept", Applied("VrrpInstance.accept")),
    leaf("advert_int", Applied("VrrpInstance.advert_int")),
    block("authentication", AUTHENTICATION, Applied("VrrpInstance.authentication")),
    block("auth_hmac", AUTH_HMAC, NotApplied("HMAC authentication (keepalived 2.4) is not supported")),
    leaf("check_unicast_src", Applied("VrrpInstance.check_unicast_src")),
    leaf("debug", Applied("-: keepalived 2.2.7 reads it and does nothing with it (not implemented there); rvs neither (RUST_LOG sets its logging)")),
    leaf("dont_track_primary", Applied("VrrpInstance.dont_track_primary")),
    leaf("down_timer_adverts", Applied("VrrpInstance.down_timer_adverts")),
    leaf("garp_extra_if", Applied("VrrpInstance.garp_extra_if")),
    leaf("garp_lower_prio_delay", Applied("VrrpInstance.garp_lower_prio_delay")),
    leaf("garp_lower_prio_repeat", Applied("VrrpInstance.garp_lower_prio_repeat")),
    leaf("garp_master_delay", Applied("VrrpInstance.garp_master_delay")),
    leaf("garp_master_refresh", Applied("VrrpInstance.garp_master_refresh")),
    leaf("garp_master_refresh_repeat", Applied("VrrpInstance.garp_master_refresh_repeat")),
    leaf("garp_master_repeat", Applied("VrrpInstance.garp_master_repeat")),
    leaf("higher_prio_send_advert", Applied("VrrpInstance.higher_prio_send_advert")),
    leaf("interface", Applied("VrrpInstance.interface")),
    leaf("kernel_rx_buf_size", Applied("VrrpInstance.kernel_rx_buf_size")),
    leaf("linkbeat_use_polling", NotApplied("link state comes from netlink; MII/ethtool polling is not done")),
    leaf("lower_prio_no_advert", Applied("VrrpInstance.lower_prio_no_advert")),
    leaf("lvs_sync_daemon_interface", Spelling("global_defs lvs_sync_daemon")),
    leaf("mcast_dst_ip", Applied("VrrpInstance.mcast_dst_ip")),
    leaf("mcast_src_ip", Applied("VrrpInstance.unicast_src_ip")),
    leaf("native_ipv6", Spelling("an IPv6 virtual_ipaddress")),
    leaf("no_accept", Applied("VrrpInstance.accept")),
    leaf("nopreempt", Applied("VrrpInstance.nopreempt")),
    leaf("notify", Applied("VrrpInstance.notify")),
    leaf("notify_backup", Applied("VrrpInstance.notify")),
    leaf("notify_deleted", Applied("VrrpInstance.notify")),
    leaf("notify_fault", Applied("VrrpInstance.notify")),
    leaf("notify_master", Applied("VrrpInstance.notify")),
    leaf("notify_master_rx_lower_pri", Applied("VrrpInstance.notify_master_rx_lower_pri")),
    leaf("notify_priority_changes", Applied("VrrpInstance.notify_priority_changes")),
    leaf("notify_stop", Applied("VrrpInstance.notify")),
    leaf("old_unicast_checksum", Applied("VrrpInstance.old_unicast_checksum")),
    leaf("preempt", Applied("VrrpInstance.nopreempt")),
    leaf("preempt_delay", Applied("VrrpInstance.preempt_delay")),
    leaf("priority", Applied("VrrpInstance.priority")),
    leaf("promote_secondaries", Applied("VrrpInstance.promote_secondaries")),
    leaf("skip_check_adv_addr", Applied("VrrpInstance.skip_check_adv_addr")),
    leaf("smtp_alert", Applied("RealServer.smtp_alert")),
    leaf("state", Applied("VrrpInstance.state")),
    leaf("strict_mode", Applied("VrrpInstance.strict_mode")),
    list("track_bfd", Applied("VrrpInstance.trackers")),
    list("track_file", Applied("VrrpInstance.trackers")),
    list("track_interface", Applied("VrrpInstance.trackers")),
    list("track_process", Applied("VrrpInstance.trackers")),
    list("track_script", Applied("VrrpInstance.trackers")),
    leaf("track_src_ip", Applied("VrrpInstance.track_src_ip")),
    leaf("unicast_fault_no_peer", Applied("VrrpInstance.unicast_fault_no_peer")),
    list("unicast_peer", Applied("VrrpInstance.unicast_peer")),
    leaf("unicast_src_ip", Applied("VrrpInstance.unicast_src_ip")),
    leaf("unicast_ttl", Applied("VrrpInstance.unicast_ttl")),
    leaf("use_ipvlan", NotApplied("the VMAC interface is a plain macvlan, sending from itself")),
    leaf("use_vmac", Applied("VrrpInstance.use_vmac")),
    leaf("use_vmac_addr", NotApplied("the VMAC interface is a plain macvlan, sending from itself")),
    leaf("version", Applied("VrrpInstance.version")),
    list("virtual_ipaddress", Applied("VrrpInstance.virtual_ipaddress")),
    list("virtual_ipaddress_excluded", Applied("VrrpInstance.virtual_ipaddress_excluded")),
    leaf("virtual_router_id", Applied("VrrpInstance.virtual_router_id")),
    list("virtual_routes", Applied("VrrpInstance.virtual_routes")),
    list("virtual_rules", Applied("VrrpInstance.virtual_rules")),
    leaf("vmac_garp_intvl", Spelling("garp_extra_if")),
    leaf("vmac_xmit_base", Applied("VrrpInstance.vmac_xmit_base")),
    leaf("vrf", NotApplied("instances are not bound to a VRF")),
    // newer than 2.2.7
    leaf("no_virtual_ipaddress", Applied("-: allows an instance without addresses (checked by the parser)")),
    leaf("owner_ignore_adverts", Applied("VrrpInstance.owner_ignore_adverts")),
    leaf("timer_expired_backup", NotApplied("not applied")),
    leaf("thread_timer_expired", NotApplied("not applied")),
    leaf("v3_checksum_as_v2", NotApplied("not applied")),
    // rvs extension (docs/vrrp.md): leave one MASTER when a split brain is seen.
    leaf(
        "rvs_split_brain_arbitration",
        Applied("VrrpInstance.split_brain_arbitration")
    ),
];

static VRRP_SYNC_GROUP: &[Kw] = kws![
    leaf("global_tracking", Spelling("sync_group_tracking_weight")),
    list("group", Applied("SyncGroup.group")),
    leaf("notify", Applied("VrrpInstance.notify")),
    leaf("notify_backup", Applied("VrrpInstance.notify")),
    leaf("notify_fault", Applied("VrrpInstance.notify")),
    leaf("notify_master", Applied("VrrpInstance.notify")),
    leaf(
        "notify_priority_changes",
        Applied("SyncGroup.notify_priority_changes")
    ),
    leaf("notify_stop", Applied("VrrpInstance.notify")),
    leaf("notify_deleted", Applied("VrrpInstance.notify")),
    leaf("smtp_alert", Applied("RealServer.smtp_alert")),
    leaf(
        "sync_group_tracking_weight",
        Applied("SyncGroup.sync_group_tracking_weight")
    ),
    list("track_bfd", Applied("VrrpInstance.trackers")),
    list("track_file", Applied("VrrpInstance.trackers")),
    list("track_interface", Applied("VrrpInstance.trackers")),
    list("track_process", Applied("VrrpInstance.trackers")),
    list("track_script", Applied("VrrpInstance.trackers")),
];

static VRRP_SCRIPT: &[Kw] = kws![
    leaf("script", Applied("VrrpScript.script")),
    leaf("interval", Applied("VrrpScript.interval")),
    leaf("timeout", Applied("VrrpScript.timeout")),
    leaf("weight", Applied("VrrpScript.weight")),
    leaf("rise", Applied("VrrpScript.rise")),
    leaf("fall", Applied("VrrpScript.fall")),
    leaf("user", Applied("Script.user")),
    leaf("init_fail", Applied("VrrpScript.init_fail")),
];
static TRACK_FILE: &[Kw] = kws![
    leaf("file", Applied("TrackFile.file")),
    leaf("weight", Applied("TrackFile.weight")),
    leaf("init_file", Applied("TrackFile.init_file"))
];
static TRACK_PROCESS: &[Kw] = kws![
    leaf("process", Applied("TrackProcess.process")),
    leaf("param_match", Applied("TrackProcess.param_match")),
    leaf("weight", Applied("TrackProcess.weight")),
    leaf("quorum", Applied("TrackProcess.quorum")),
    leaf("quorum_max", Applied("TrackProcess.quorum_max")),
    leaf("fork_delay", Applied("TrackProcess.fork_delay")),
    leaf("terminate_delay", Applied("TrackProcess.terminate_delay")),
    leaf("delay", Applied("TrackProcess.fork_delay")),
    leaf("full_command", Applied("TrackProcess.full_command")),
];
static GARP_GROUP: &[Kw] = kws![
    leaf("garp_interval", Applied("Config.garp_groups")),
    leaf("gna_interval", Applied("Config.garp_groups")),
    leaf("interface", Applied("Config.garp_groups")),
    list("interfaces", Applied("Config.garp_groups")),
];
static TRACK_GROUP: &[Kw] = kws![list(
    "group",
    NotApplied("instances are not grouped for tracking")
)];
static BFD_INSTANCE: &[Kw] = kws![
    leaf("source_ip", Applied("BfdInstance.source_ip")),
    leaf("neighbor_ip", Applied("BfdInstance.neighbor_ip")),
    leaf("neighbour_ip", Applied("BfdInstance.neighbor_ip")),
    leaf("min_rx", Applied("BfdInstance.min_rx")),
    leaf("min_tx", Applied("BfdInstance.min_tx")),
    leaf("idle_tx", Applied("BfdInstance.idle_tx")),
    leaf("multiplier", Applied("BfdInstance.multiplier")),
    leaf("passive", Applied("BfdInstance.passive")),
    leaf("ttl", Applied("BfdInstance.ttl")),
    leaf("hoplimit", Applied("BfdInstance.hoplimit")),
    leaf("max_hops", Applied("BfdInstance.max_hops")),
    leaf("weight", Applied("BfdInstance.weight")),
    leaf(
        "vrrp",
        Applied("-: BFD sessions serve VRRP and checkers alike")
    ),
    leaf(
        "checker",
        Applied("-: BFD sessions serve VRRP and checkers alike")
    ),
    leaf("multihop", NotApplied("sessions are single-hop (RFC 5881)")),
];
static SSL: &[Kw] = kws![
    leaf("password", Applied("HttpCheck.tls_key_password")),
    leaf("ca", Applied("HttpCheck.tls_ca")),
    leaf("certificate", Applied("HttpCheck.tls_certificate")),
    leaf("key", Applied("HttpCheck.tls_key"))
];

/// Marker for `global_defs`: its leaves are looked up in [`GLOBAL_LEAVES`].
static GLOBAL_DEFS: &[Kw] = kws![list(
    "notification_email",
    Applied("GlobalDefs.notification_email")
)];

pub static ROOT: &[Kw] = kws![
    block(
        "global_defs",
        GLOBAL_DEFS,
        Applied("-: its keywords are accounted for below")
    ),
    list(
        "linkbeat_interfaces",
        NotApplied("link state comes from netlink; MII/ethtool polling is not done")
    ),
    block(
        "track_group",
        TRACK_GROUP,
        NotApplied("instances are not grouped for tracking: each tracks its own interface")
    ),
    list("static_ipaddress", Applied("Config.static_ipaddress")),
    list("static_routes", Applied("Config.static_routes")),
    list("static_rules", Applied("Config.static_rules")),
    block("track_file", TRACK_FILE, Applied("Config.track_files")),
    block("vrrp_track_file", TRACK_FILE, Applied("Config.track_files")),
    block(
        "vrrp_track_process",
        TRACK_PROCESS,
        Applied("Config.track_processes")
    ),
    block("vrrp_script", VRRP_SCRIPT, Applied("Config.vrrp_scripts")),
    block(
        "vrrp_sync_group",
        VRRP_SYNC_GROUP,
        Applied("Config.vrrp_sync_groups")
    ),
    block("garp_group", GARP_GROUP, Applied("Config.garp_groups")),
    block(
        "vrrp_instance",
        VRRP_INSTANCE,
        Applied("Config.vrrp_instances")
    ),
    list(
        "interface_up_down_delays",
        Applied("Config.interface_delays")
    ),
    block(
        "bfd_instance",
        BFD_INSTANCE,
        Applied("Config.bfd_instances")
    ),
    block("SSL", SSL, Applied("HttpCheck.tls_ca")),
    list(
        "virtual_server_group",
        Applied("Config.virtual_server_groups")
    ),
    block(
        "virtual_server",
        VIRTUAL_SERVER,
        Applied("Config.virtual_servers")
    ),
    block("rvs_bgp", RVS_BGP, Applied("Config.bgp")),
    // FULLNAT's local addresses, the LVS FULLNAT and DPVS forks' block.
    list(
        "local_address_group",
        Applied("Config.local_address_groups")
    ),
];

// rvs extension (docs/cluster.md): the VIPs announced to routers through BIRD 2.
static RVS_BGP_NEIGHBOR: &[Kw] = kws![
    leaf("remote_as", Applied("BgpNeighbor.remote_as")),
    leaf("bfd", Applied("BgpNeighbor.bfd")),
    leaf("hold_time", Applied("BgpNeighbor.hold_time")),
    leaf("source_address", Applied("BgpNeighbor.source_address")),
];
static RVS_BGP: &[Kw] = kws![
    leaf("router_id", Applied("Bgp.router_id")),
    leaf("local_as", Applied("Bgp.local_as")),
    block("neighbor", RVS_BGP_NEIGHBOR, Applied("Bgp.neighbors")),
    leaf("community", Applied("Bgp.communities")),
    leaf("med", Applied("Bgp.med")),
    leaf("withdraw_delay", Applied("Bgp.withdraw_delay")),
    leaf("announce_when", Applied("Bgp.announce_when")),
    leaf("bfd_interval", Applied("Bgp.bfd_interval")),
    leaf("bfd_multiplier", Applied("Bgp.bfd_multiplier")),
    leaf("bird", Applied("Bgp.bird")),
];

/// Looks a keyword up in a block's table.
pub fn lookup(block: &'static [Kw], name: &str) -> Option<Shape> {
    if let Some(k) = block.iter().find(|k| k.name == name) {
        return Some(k.shape);
    }
    keyword(block, name).map(|k| k.shape)
}

/// A keyword of a block's table (with the globals valid at the top and in `global_defs`).
pub fn keyword(block: &'static [Kw], name: &str) -> Option<&'static Kw> {
    let is_root = std::ptr::eq(block, ROOT);
    let is_global = std::ptr::eq(block, GLOBAL_DEFS);
    let mut tables: Vec<&'static [Kw]> = vec![block];
    if is_root || is_global {
        tables.push(ROOT_GLOBALS);
    }
    if is_global {
        tables.push(GLOBAL_LEAVES);
    }
    tables
        .into_iter()
        .flat_map(|t| t.iter())
        .find(|k| k.name == name)
}

/// All keyword names valid in a block (for suggestions).
pub fn names(block: &'static [Kw]) -> Vec<&'static str> {
    let mut v: Vec<&'static str> = block.iter().map(|k| k.name).collect();
    if std::ptr::eq(block, ROOT) {
        v.extend(ROOT_GLOBALS.iter().map(|k| k.name));
    }
    if std::ptr::eq(block, GLOBAL_DEFS) {
        v.extend(ROOT_GLOBALS.iter().map(|k| k.name));
        v.extend(GLOBAL_LEAVES.iter().map(|k| k.name));
    }
    v
}

/// Every keyword name anywhere in the tree (for "this keyword belongs elsewhere" hints).
pub fn all_names() -> Vec<&'static str> {
    fn walk(block: &'static [Kw], out: &mut Vec<&'static str>) {
        for n in names(block) {
            if !out.contains(&n) {
                out.push(n);
            }
        }
        for k in block {
            if let Shape::Block(b) = k.shape {
                walk(b, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(ROOT, &mut out);
    out
}

/// Every keyword of the tree with the block it is written in (`""` for the top level),
/// each (block, keyword name) pair once: what docs/keywords.md accounts for.
pub fn every_keyword() -> Vec<(&'static str, &'static Kw)> {
    fn walk(
        block_name: &'static str,
        block: &'static [Kw],
        out: &mut Vec<(&'static str, &'static Kw)>,
    ) {
        for n in names(block) {
            if !out.iter().any(|(b, k)| *b == block_name && k.name == n) {
                if let Some(k) = keyword(block, n) {
                    out.push((block_name, k));
                }
            }
        }
        for k in block {
            if let Shape::Block(b) = k.shape {
                walk(k.name, b, out);
            }
        }
    }
    let mut out = Vec::new();
    walk("", ROOT, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyword_count_covers_keepalived() {
        // keepalived HEAD installs 361 distinct keyword strings (spec §0); rvs adds two.
        let n = all_names().len();
        assert!(n >= 361, "only {n} distinct keywords");
    }

    #[test]
    fn shapes() {
        assert_eq!(lookup(ROOT, "virtual_server_group"), Some(Shape::List));
        assert!(matches!(
            lookup(ROOT, "virtual_server"),
            Some(Shape::Block(_))
        ));
        assert_eq!(lookup(GLOBAL_DEFS, "router_id"), Some(Shape::Leaf));
        assert_eq!(lookup(GLOBAL_DEFS, "net_namespace"), Some(Shape::Leaf));
        assert_eq!(lookup(ROOT, "router_id"), None);
        assert_eq!(
            lookup(VRRP_INSTANCE, "virtual_ipaddress"),
            Some(Shape::List)
        );
        assert!(matches!(
            lookup(REAL_SERVER, "SSL_GET"),
            Some(Shape::Block(_))
        ));
        assert_eq!(lookup(&MISC_CHECK, "connect_ip"), None);
    }
}
