//! The keyword tree of keepalived.conf: every keyword keepalived 2.2.7 installs (plus the
//! few added up to 2.4.x, marked in [`NEWER_THAN_2_2_7`]), by block, with its shape.
//!
//! The tree builder uses it to know which keywords open a block (so a `{` on the next line
//! belongs to them, and an unknown keyword's block can be skipped as a whole), and the
//! diagnostics use it to suggest the keyword a typo meant.

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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kw {
    pub name: &'static str,
    pub shape: Shape,
}

const fn leaf(name: &'static str) -> Kw {
    Kw {
        name,
        shape: Shape::Leaf,
    }
}
const fn block(name: &'static str, kws: &'static [Kw]) -> Kw {
    Kw {
        name,
        shape: Shape::Block(kws),
    }
}
const fn list(name: &'static str) -> Kw {
    Kw {
        name,
        shape: Shape::List,
    }
}

/// Keywords that keepalived 2.2.7 (Debian bookworm) does not know: rvs accepts them, and the
/// differential test expects keepalived 2.2.7 to call them unknown.
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
    "vrrp_owner_ignore_adverts",
];

/// Keywords valid both at the root and inside `global_defs`.
const ROOT_GLOBALS: &[&str] = &[
    "linkbeat_use_polling",
    "net_namespace",
    "net_namespace_ipvs",
    "namespace_with_ipsets",
    "use_pid_dir",
    "instance",
    "child_wait_time",
];

const GLOBAL_LEAVES: &[&str] = &[
    "bfd_cpu_affinity",
    "bfd_no_swap",
    "bfd_priority",
    "bfd_process_name",
    "bfd_rlimit_rtime",
    "bfd_rlimit_rttime",
    "bfd_rt_priority",
    "checker_cpu_affinity",
    "checker_log_all_failures",
    "checker_no_swap",
    "checker_priority",
    "checker_process_name",
    "checker_rlimit_rtime",
    "checker_rlimit_rttime",
    "checker_rt_priority",
    "config_save_dir",
    "data_use_instance",
    "dbus_service_name",
    "default_interface",
    "disable_local_igmp",
    "dynamic_interfaces",
    "enable_dbus",
    "enable_script_security",
    "enable_snmp_checker",
    "enable_snmp_keepalived",
    "enable_snmp_rfc",
    "enable_snmp_rfcv2",
    "enable_snmp_rfcv3",
    "enable_snmp_vrrp",
    "enable_traps",
    "fifo_write_vrrp_states_on_reload",
    "include_check",
    "log_unknown_vrids",
    "lvs_flush",
    "lvs_flush_on_stop",
    "lvs_flush_onstop",
    "lvs_netlink_cmd_rcv_bufs",
    "lvs_netlink_cmd_rcv_bufs_force",
    "lvs_netlink_monitor_rcv_bufs",
    "lvs_netlink_monitor_rcv_bufs_force",
    "lvs_notify_fifo",
    "lvs_notify_fifo_script",
    "lvs_process_name",
    "lvs_sync_daemon",
    "lvs_timeouts",
    "max_auto_priority",
    "min_auto_priority_delay",
    "nftables",
    "nftables_counters",
    "nftables_ifindex",
    "nftables_ipvs",
    "nftables_ipvs_priority",
    "nftables_ipvs_start_fwmark",
    "nftables_priority",
    "no_checker_emails",
    "no_email_faults",
    "notification_email_from",
    "notify_fifo",
    "notify_fifo_script",
    "process_monitor_rcv_bufs",
    "process_monitor_rcv_bufs_force",
    "process_name",
    "process_names",
    "random_seed",
    "reload_check_config",
    "reload_file",
    "reload_repeat",
    "reload_time_file",
    "router_id",
    "rs_init_notifies",
    "script_user",
    "shutdown_script",
    "shutdown_script_timeout",
    "smtp_alert",
    "smtp_alert_checker",
    "smtp_alert_vrrp",
    "smtp_connect_timeout",
    "smtp_helo_name",
    "smtp_server",
    "snmp_socket",
    "startup_script",
    "startup_script_timeout",
    "tmp_config_directory",
    "umask",
    "vmac_addr_prefix",
    "vmac_prefix",
    "vrrp_check_unicast_src",
    "vrrp_cpu_affinity",
    "vrrp_down_timer_adverts",
    "vrrp_garp_extra_if",
    "vrrp_garp_interval",
    "vrrp_garp_lower_prio_delay",
    "vrrp_garp_lower_prio_repeat",
    "vrrp_garp_master_delay",
    "vrrp_garp_master_refresh",
    "vrrp_garp_master_refresh_repeat",
    "vrrp_garp_master_repeat",
    "vrrp_gna_interval",
    "vrrp_higher_prio_send_advert",
    "vrrp_ipsets",
    "vrrp_iptables",
    "vrrp_lower_prio_no_advert",
    "vrrp_mcast_group4",
    "vrrp_mcast_group6",
    "vrrp_min_garp",
    "vrrp_netlink_cmd_rcv_bufs",
    "vrrp_netlink_cmd_rcv_bufs_force",
    "vrrp_netlink_monitor_rcv_bufs",
    "vrrp_netlink_monitor_rcv_bufs_force",
    "vrrp_no_swap",
    "vrrp_notify_fifo",
    "vrrp_notify_fifo_script",
    "vrrp_notify_priority_changes",
    "vrrp_priority",
    "vrrp_process_name",
    "vrrp_rlimit_rtime",
    "vrrp_rlimit_rttime",
    "vrrp_rt_priority",
    "vrrp_rx_bufs_multiplier",
    "vrrp_rx_bufs_policy",
    "vrrp_skip_check_adv_addr",
    "vrrp_startup_delay",
    "vrrp_strict",
    "vrrp_version",
    "vrrp_vmac_garp_intvl",
    // newer than 2.2.7
    "dbus_no_interface_name",
    "iproute_etc_dir",
    "iproute_usr_dir",
    "json_dump_file",
    "json_version",
    "set_supplementary_groups",
    "snmp_rs_stats_update_interval",
    "snmp_vs_stats_update_interval",
    "state_dump_file",
    "stats_dump_file",
    "use_symlink_paths",
    "v3_checksum_as_v2",
    "vrrp_delay_after_boot",
    "vrrp_owner_ignore_adverts",
];

/// Keywords of a block, for lookups that do not care about the shape (the global
/// leaves are kept as a flat list of names above; see [`lookup`]).
macro_rules! kws {
    ($($e:expr),* $(,)?) => { &[$($e),*] };
}

const CONN: [Kw; 7] = [
    leaf("connect_ip"),
    leaf("connect_port"),
    leaf("bindto"),
    leaf("bind_port"),
    leaf("bind_if"),
    leaf("connect_timeout"),
    leaf("fwmark"),
];
const RETRY: [Kw; 7] = [
    // nb_get_retry: keepalived 2.2.7 knows it only in HTTP_GET/SSL_GET; tutorials put it in
    // every checker, so rvs accepts it everywhere with a deprecation warning.
    leaf("nb_get_retry"),
    leaf("retry"),
    leaf("delay_before_retry"),
    leaf("warmup"),
    leaf("delay_loop"),
    leaf("alpha"),
    leaf("log_all_failures"),
];

/// Concatenates keyword arrays at compile time.
const fn cat<const N: usize>(parts: &[&[Kw]]) -> [Kw; N] {
    let mut out = [leaf(""); N];
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

const CONN_RETRY: [Kw; 14] = cat(&[&CONN, &RETRY]);

static TCP_CHECK: [Kw; 14] = CONN_RETRY;
static PING_CHECK: [Kw; 14] = CONN_RETRY;
static URL: &[Kw] = kws![
    leaf("path"),
    leaf("digest"),
    leaf("status_code"),
    leaf("virtualhost"),
    leaf("regex"),
    leaf("regex_no_match"),
    leaf("regex_options"),
    leaf("regex_min_offset"),
    leaf("regex_max_offset"),
    leaf("regex_stack"),
    leaf("tls_compliant"),
];
static HTTP_GET: [Kw; 21] = cat(&[
    &CONN_RETRY,
    &[
        leaf("virtualhost"),
        leaf("http_protocol"),
        leaf("enable_sni"),
        leaf("fast_recovery"),
        block("url", URL),
        leaf("sni_name"),
        leaf("tls_compliant"),
    ],
]);
static MISC_CHECK: [Kw; 11] = cat(&[
    &RETRY,
    &[
        leaf("misc_path"),
        leaf("misc_timeout"),
        leaf("misc_dynamic"),
        leaf("user"),
    ],
]);
static SMTP_HOST: [Kw; 14] = CONN_RETRY;
static SMTP_CHECK: [Kw; 16] = cat(&[&CONN_RETRY, &[leaf("helo_name"), block("host", &SMTP_HOST)]]);
static DNS_CHECK: [Kw; 16] = cat(&[&CONN_RETRY, &[leaf("type"), leaf("name")]]);
static UDP_CHECK: [Kw; 18] = cat(&[
    &CONN_RETRY,
    &[
        leaf("payload"),
        leaf("require_reply"),
        leaf("min_reply_length"),
        leaf("max_reply_length"),
    ],
]);
static FILE_CHECK: &[Kw] = kws![leaf("track_file"), leaf("weight")];
static BFD_CHECK: &[Kw] = kws![leaf("name"), leaf("alpha")];

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
    leaf("weight"),
    leaf("lvs_method"),
    leaf("uthreshold"),
    leaf("lthreshold"),
    leaf("inhibit_on_failure"),
    leaf("notify_up"),
    leaf("notify_down"),
    leaf("alpha"),
    leaf("retry"),
    leaf("delay_before_retry"),
    leaf("warmup"),
    leaf("connect_timeout"),
    leaf("delay_loop"),
    leaf("smtp_alert"),
    leaf("virtualhost"),
    leaf("snmp_name"),
    block("MISC_CHECK", &MISC_CHECK),
    block("SMTP_CHECK", &SMTP_CHECK),
    block("TCP_CHECK", &TCP_CHECK),
    block("PING_CHECK", &PING_CHECK),
    block("UDP_CHECK", &UDP_CHECK),
    block("HTTP_GET", &HTTP_GET),
    block("SSL_GET", &HTTP_GET),
    block("DNS_CHECK", &DNS_CHECK),
    block("FILE_CHECK", FILE_CHECK),
    block("BFD_CHECK", BFD_CHECK),
];

static VIRTUAL_SERVER: &[Kw] = kws![
    leaf("ip_family"),
    leaf("retry"),
    leaf("delay_before_retry"),
    leaf("warmup"),
    leaf("connect_timeout"),
    leaf("delay_loop"),
    leaf("inhibit_on_failure"),
    leaf("lb_algo"),
    leaf("lvs_sched"),
    leaf("hashed"),
    leaf("ops"),
    leaf("flag-1"),
    leaf("flag-2"),
    leaf("flag-3"),
    leaf("sh-port"),
    leaf("sh-fallback"),
    leaf("mh-port"),
    leaf("mh-fallback"),
    leaf("lb_kind"),
    leaf("lvs_method"),
    leaf("persistence_engine"),
    leaf("persistence_timeout"),
    leaf("persistence_granularity"),
    leaf("protocol"),
    leaf("ha_suspend"),
    leaf("smtp_alert"),
    leaf("virtualhost"),
    leaf("snmp_name"),
    leaf("alpha"),
    leaf("omega"),
    leaf("quorum_up"),
    leaf("quorum_down"),
    leaf("quorum"),
    leaf("hysteresis"),
    leaf("weight"),
    leaf("sorry_server"),
    leaf("sorry_server_inhibit"),
    leaf("sorry_server_lvs_method"),
    block("real_server", REAL_SERVER),
    // rvs extensions (documented in docs/config.md)
    leaf("rvs_mh_table_size"),
    leaf("rvs_proxy_protocol"),
];

static AUTHENTICATION: &[Kw] = kws![leaf("auth_type"), leaf("auth_pass")];
static AUTH_HMAC: &[Kw] = kws![
    leaf("key"),
    leaf("active_key"),
    leaf("anti_replay"),
    leaf("time_window"),
    leaf("mode"),
];

static VRRP_INSTANCE: &[Kw] = kws![
    leaf("accept"),
    leaf("advert_int"),
    block("authentication", AUTHENTICATION),
    block("auth_hmac", AUTH_HMAC),
    leaf("check_unicast_src"),
    leaf("debug"),
    leaf("dont_track_primary"),
    leaf("down_timer_adverts"),
    leaf("garp_extra_if"),
    leaf("garp_lower_prio_delay"),
    leaf("garp_lower_prio_repeat"),
    leaf("garp_master_delay"),
    leaf("garp_master_refresh"),
    leaf("garp_master_refresh_repeat"),
    leaf("garp_master_repeat"),
    leaf("higher_prio_send_advert"),
    leaf("interface"),
    leaf("kernel_rx_buf_size"),
    leaf("linkbeat_use_polling"),
    leaf("lower_prio_no_advert"),
    leaf("lvs_sync_daemon_interface"),
    leaf("mcast_dst_ip"),
    leaf("mcast_src_ip"),
    leaf("native_ipv6"),
    leaf("no_accept"),
    leaf("nopreempt"),
    leaf("notify"),
    leaf("notify_backup"),
    leaf("notify_deleted"),
    leaf("notify_fault"),
    leaf("notify_master"),
    leaf("notify_master_rx_lower_pri"),
    leaf("notify_priority_changes"),
    leaf("notify_stop"),
    leaf("old_unicast_checksum"),
    leaf("preempt"),
    leaf("preempt_delay"),
    leaf("priority"),
    leaf("promote_secondaries"),
    leaf("skip_check_adv_addr"),
    leaf("smtp_alert"),
    leaf("state"),
    leaf("strict_mode"),
    list("track_bfd"),
    list("track_file"),
    list("track_interface"),
    list("track_process"),
    list("track_script"),
    leaf("track_src_ip"),
    leaf("unicast_fault_no_peer"),
    list("unicast_peer"),
    leaf("unicast_src_ip"),
    leaf("unicast_ttl"),
    leaf("use_ipvlan"),
    leaf("use_vmac"),
    leaf("use_vmac_addr"),
    leaf("version"),
    list("virtual_ipaddress"),
    list("virtual_ipaddress_excluded"),
    leaf("virtual_router_id"),
    list("virtual_routes"),
    list("virtual_rules"),
    leaf("vmac_garp_intvl"),
    leaf("vmac_xmit_base"),
    leaf("vrf"),
    // newer than 2.2.7
    leaf("no_virtual_ipaddress"),
    leaf("owner_ignore_adverts"),
    leaf("timer_expired_backup"),
    leaf("thread_timer_expired"),
    leaf("v3_checksum_as_v2"),
];

static VRRP_SYNC_GROUP: &[Kw] = kws![
    leaf("global_tracking"),
    list("group"),
    leaf("notify"),
    leaf("notify_backup"),
    leaf("notify_fault"),
    leaf("notify_master"),
    leaf("notify_priority_changes"),
    leaf("notify_stop"),
    leaf("notify_deleted"),
    leaf("smtp_alert"),
    leaf("sync_group_tracking_weight"),
    list("track_bfd"),
    list("track_file"),
    list("track_interface"),
    list("track_process"),
    list("track_script"),
];

static VRRP_SCRIPT: &[Kw] = kws![
    leaf("script"),
    leaf("interval"),
    leaf("timeout"),
    leaf("weight"),
    leaf("rise"),
    leaf("fall"),
    leaf("user"),
    leaf("init_fail"),
];
static TRACK_FILE: &[Kw] = kws![leaf("file"), leaf("weight"), leaf("init_file")];
static TRACK_PROCESS: &[Kw] = kws![
    leaf("process"),
    leaf("param_match"),
    leaf("weight"),
    leaf("quorum"),
    leaf("quorum_max"),
    leaf("fork_delay"),
    leaf("terminate_delay"),
    leaf("delay"),
    leaf("full_command"),
];
static GARP_GROUP: &[Kw] = kws![
    leaf("garp_interval"),
    leaf("gna_interval"),
    leaf("interface"),
    list("interfaces"),
];
static TRACK_GROUP: &[Kw] = kws![list("group")];
static BFD_INSTANCE: &[Kw] = kws![
    leaf("source_ip"),
    leaf("neighbor_ip"),
    leaf("neighbour_ip"),
    leaf("min_rx"),
    leaf("min_tx"),
    leaf("idle_tx"),
    leaf("multiplier"),
    leaf("passive"),
    leaf("ttl"),
    leaf("hoplimit"),
    leaf("max_hops"),
    leaf("weight"),
    leaf("vrrp"),
    leaf("checker"),
    leaf("multihop"),
];
static SSL: &[Kw] = kws![
    leaf("password"),
    leaf("ca"),
    leaf("certificate"),
    leaf("key")
];

/// Marker for `global_defs`: its leaves are looked up in [`GLOBAL_LEAVES`].
static GLOBAL_DEFS: &[Kw] = kws![list("notification_email")];

pub static ROOT: &[Kw] = kws![
    block("global_defs", GLOBAL_DEFS),
    list("linkbeat_interfaces"),
    block("track_group", TRACK_GROUP),
    list("static_ipaddress"),
    list("static_routes"),
    list("static_rules"),
    block("track_file", TRACK_FILE),
    block("vrrp_track_file", TRACK_FILE),
    block("vrrp_track_process", TRACK_PROCESS),
    block("vrrp_script", VRRP_SCRIPT),
    block("vrrp_sync_group", VRRP_SYNC_GROUP),
    block("garp_group", GARP_GROUP),
    block("vrrp_instance", VRRP_INSTANCE),
    list("interface_up_down_delays"),
    block("bfd_instance", BFD_INSTANCE),
    block("SSL", SSL),
    list("virtual_server_group"),
    block("virtual_server", VIRTUAL_SERVER),
];

/// Looks a keyword up in a block's table.
pub fn lookup(block: &'static [Kw], name: &str) -> Option<Shape> {
    if let Some(k) = block.iter().find(|k| k.name == name) {
        return Some(k.shape);
    }
    let is_root = std::ptr::eq(block, ROOT);
    let is_global = std::ptr::eq(block, GLOBAL_DEFS);
    if (is_root || is_global) && ROOT_GLOBALS.contains(&name) {
        return Some(Shape::Leaf);
    }
    if is_global && GLOBAL_LEAVES.contains(&name) {
        return Some(Shape::Leaf);
    }
    None
}

/// All keyword names valid in a block (for suggestions).
pub fn names(block: &'static [Kw]) -> Vec<&'static str> {
    let mut v: Vec<&'static str> = block.iter().map(|k| k.name).collect();
    if std::ptr::eq(block, ROOT) {
        v.extend_from_slice(ROOT_GLOBALS);
    }
    if std::ptr::eq(block, GLOBAL_DEFS) {
        v.extend_from_slice(ROOT_GLOBALS);
        v.extend_from_slice(GLOBAL_LEAVES);
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
/// each pair once: what docs/keywords.md accounts for.
pub fn every_keyword() -> Vec<(&'static str, &'static str)> {
    fn walk(
        block_name: &'static str,
        block: &'static [Kw],
        out: &mut Vec<(&'static str, &'static str)>,
    ) {
        for n in names(block) {
            if !out.contains(&(block_name, n)) {
                out.push((block_name, n));
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
