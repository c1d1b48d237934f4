//! The typed configuration, with every default filled exactly as keepalived fills it.
//! Serialized as the stable JSON of `rvs check --json` (documented in docs/config-json.md):
//! fields are only ever added, never renamed or removed, within a major version.
//!
//! Times are `Duration`s, validated and clamped once by the loader (consumers never
//! clamp again); the JSON shows them as keepalived writes them: seconds as decimal
//! numbers (`bfd_instance` timers in milliseconds).

use serde::Serialize;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

/// A `Duration` in the JSON: seconds, as keepalived writes them.
mod secs {
    pub fn serialize<S: serde::Serializer>(
        d: &std::time::Duration,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }

    #[allow(clippy::ref_option, reason = "serde's serialize_with signature")]
    pub fn serialize_opt<S: serde::Serializer>(
        d: &Option<std::time::Duration>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&d.as_secs_f64()),
            None => s.serialize_none(),
        }
    }
}

/// A `Duration` in the JSON: milliseconds, as `bfd_instance` writes them.
mod millis {
    pub fn serialize<S: serde::Serializer>(
        d: &std::time::Duration,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        // Whole microseconds: 10 ms shows as 10, not 10.000000000000002.
        let us = u32::try_from(d.as_micros()).unwrap_or(u32::MAX);
        s.serialize_f64(f64::from(us) / 1000.0)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct Config {
    pub global_defs: GlobalDefs,
    pub vrrp_scripts: Vec<VrrpScript>,
    pub track_files: Vec<TrackFile>,
    pub bfd_instances: Vec<BfdInstance>,
    pub track_processes: Vec<TrackProcess>,
    pub vrrp_sync_groups: Vec<SyncGroup>,
    pub vrrp_instances: Vec<VrrpInstance>,
    pub virtual_server_groups: Vec<VirtualServerGroup>,
    pub virtual_servers: Vec<VirtualServer>,
    /// The root `SSL` block (`SSL_GET` verifies servers against `ca` when it is set).
    pub ssl: Option<SslConfig>,
    /// Blocks that rvs recognises and checks for structure but does not use
    /// (`static_ipaddress`, `bfd_instance`, `SSL`, `vrrp_track_process`, ...), by name.
    pub other_blocks: BTreeMap<String, usize>,
    /// `static_ipaddress`: added at start and kept.
    pub static_ipaddress: Vec<VipAddr>,
    /// `static_routes` / `static_rules`: installed at start and kept.
    pub static_routes: Vec<Route>,
    pub static_rules: Vec<Rule>,
    /// `garp_group` blocks: gratuitous ARP / NA spacing for their interfaces.
    pub garp_groups: Vec<GarpGroup>,
    /// `interface_up_down_delays`: how long an interface must stay down (up) before VRRP
    /// acts on it, by interface name: `(down, up)`.
    pub interface_delays: BTreeMap<String, (Duration, Duration)>,
    /// `local_address_group NAME { ... }` (FULLNAT): the director's own addresses that
    /// FULLNAT virtual servers connect to the real servers from, by name.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub local_address_groups: BTreeMap<String, Vec<IpAddr>>,
    /// `rvs_bgp { ... }` (rvs extension): the VIPs announced to routers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bgp: Option<Bgp>,
}

impl Config {
    /// The local addresses a virtual server's `laddr_group_name` names (FULLNAT): none
    /// without one, or when no `local_address_group` of that name exists (which the
    /// checks report at its line).
    #[must_use]
    pub fn local_addresses(&self, vs: &VirtualServer) -> &[IpAddr] {
        vs.laddr_group
            .as_ref()
            .and_then(|g| self.local_address_groups.get(g))
            .map_or(&[], Vec::as_slice)
    }
}

/// `rvs_bgp { ... }` (rvs extension, docs/cluster.md): the VIPs of the virtual servers
/// announced to the routers by a BGP speaker (BIRD 2, run by rvs) while this director
/// serves them, so that several directors share a VIP behind ECMP.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bgp {
    /// `None`: BIRD chooses (the lowest IPv4 address of an interface).
    pub router_id: Option<Ipv4Addr>,
    pub local_as: u32,
    pub neighbors: Vec<BgpNeighbor>,
    /// Communities every announced VIP carries.
    pub communities: Vec<rvs_types::Community>,
    /// The MED every announced VIP carries.
    pub med: Option<u32>,
    /// On SIGTERM and drain: how long the director goes on serving after withdrawing,
    /// while the routers move new connections away.
    #[serde(serialize_with = "secs::serialize")]
    pub withdraw_delay: Duration,
    /// A VIP with several virtual servers (ports) is announced while all of them (or
    /// any of them) have live real servers.
    pub announce_when: AnnounceWhen,
    /// BFD with the neighbours that ask for it: interval and multiplier.
    #[serde(serialize_with = "millis::serialize")]
    pub bfd_interval: Duration,
    pub bfd_multiplier: u8,
    /// The BIRD binary.
    pub bird: String,
}

/// When a VIP with several virtual servers is announced (`announce_when`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AnnounceWhen {
    /// Every virtual server of the VIP has live real servers (the default): a director
    /// that cannot serve one of the VIP's ports leaves the VIP to the others.
    All,
    /// One of them has.
    Any,
}

/// `neighbor ADDRESS { ... }` of `rvs_bgp`: a router.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BgpNeighbor {
    pub address: IpAddr,
    pub remote_as: u32,
    pub bfd: bool,
    /// Seconds (`None`: BIRD's 240).
    pub hold_time: Option<u16>,
    pub source_address: Option<IpAddr>,
}

/// A `garp_group`: the spacing of gratuitous ARPs (`garp_interval`) and unsolicited NAs
/// (`gna_interval`) sent on its interfaces, over `vrrp_garp_interval`/`vrrp_gna_interval`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GarpGroup {
    #[serde(serialize_with = "secs::serialize_opt")]
    pub garp_interval: Option<Duration>,
    #[serde(serialize_with = "secs::serialize_opt")]
    pub gna_interval: Option<Duration>,
    /// `interface IF` and `interfaces { ... }`.
    pub interfaces: Vec<String>,
}

/// One `ip route` line of `virtual_routes` / `static_routes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Route {
    /// The line as written.
    pub text: String,
    /// `ADDR[/LEN]` or `default`.
    pub dest: Option<String>,
    pub via: Option<String>,
    pub dev: Option<String>,
    /// `table`: its number (names are read from iproute2's `rt_tables`).
    pub table: Option<u32>,
    pub no_track: bool,
    /// `src ADDR` (the preferred source).
    pub src: Option<String>,
    /// `metric N` (also `priority`, `preference`).
    pub metric: Option<u32>,
    /// The route type when not unicast: `blackhole`, `unreachable`, `prohibit`, `throw`.
    pub kind: Option<String>,
    /// Options rvs reads but does not install (`mtu`, `nexthop`, `encap`, ...).
    pub unsupported: Vec<String>,
}

/// One `ip rule` line of `virtual_rules` / `static_rules`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rule {
    pub text: String,
    /// `from ADDR[/LEN]` or `all`.
    pub from: Option<String>,
    pub to: Option<String>,
    /// `table` / `lookup`: its number (names are read from iproute2's `rt_tables`).
    pub table: Option<u32>,
    pub preference: Option<u32>,
    pub no_track: bool,
    /// `not`: the rule applies to what its selector does not match.
    pub invert: bool,
    /// `iif` / `dev`.
    pub iif: Option<String>,
    pub oif: Option<String>,
    /// `fwmark MARK[/MASK]`, as written.
    pub fwmark: Option<String>,
    /// `tos` / `dsfield`, as written.
    pub tos: Option<String>,
    /// `goto PREF`.
    pub goto: Option<u32>,
    pub suppress_prefixlength: Option<u32>,
    /// The action when not a table lookup: `blackhole`, `unreachable`, `prohibit`.
    pub kind: Option<String>,
    /// Options rvs reads but does not install (`realms`, `uidrange`, ...).
    pub unsupported: Vec<String>,
}

/// A socket's receive buffer as keepalived sets it (`*_rcv_bufs BYTES`, `*_rcv_bufs_force`:
/// beyond `net.core.rmem_max`, which needs `CAP_NET_ADMIN`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RcvBufs {
    pub size: Option<u32>,
    pub force: bool,
}

/// `vrrp_rx_bufs_policy`: how big the VRRP receive sockets' buffers are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum RxBufsPolicy {
    /// The interface's MTU (times `vrrp_rx_bufs_multiplier`).
    Mtu,
    /// The instance's advert size (times the multiplier).
    Advert,
    /// A size in bytes (times the multiplier).
    Size(u32),
}

/// keepalived's settings for one of its child processes (VRRP, checkers, BFD), which rvs
/// applies to the threads that do that work.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ProcessSettings {
    /// `*_rt_priority`: real-time (`SCHED_RR`) priority, 1..99.
    pub rt_priority: Option<u8>,
    /// `*_rlimit_rttime`: the CPU time (µs) a real-time thread may use without blocking
    /// (keepalived's default with `*_rt_priority`: 10000).
    pub rlimit_rttime: Option<u64>,
    /// `*_cpu_affinity`: the CPUs it may run on (empty: any).
    pub cpu_affinity: Vec<usize>,
    /// `*_process_name` (or keepalived's default name under `process_names`); at most 15
    /// bytes, as the kernel keeps them.
    pub name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GlobalDefs {
    /// `None` means the host name (keepalived's default).
    pub router_id: Option<String>,
    pub notification_email: Vec<String>,
    pub notification_email_from: Option<String>,
    pub smtp_server: Option<SmtpServer>,
    pub smtp_connect_timeout: u32,
    pub smtp_helo_name: Option<String>,
    pub vrrp_mcast_group4: Ipv4Addr,
    pub vrrp_mcast_group6: Ipv6Addr,
    pub vrrp_garp_master_delay: u32,
    pub vrrp_garp_master_repeat: u32,
    pub vrrp_garp_master_refresh: u32,
    pub vrrp_garp_master_refresh_repeat: u32,
    /// `vrrp_garp_extra_if [all] SECS`: the instances' default `garp_extra_if`.
    pub vrrp_garp_extra_if: Option<GarpExtraIf>,
    pub vrrp_garp_lower_prio_delay: u32,
    pub vrrp_garp_lower_prio_repeat: u32,
    #[serde(serialize_with = "secs::serialize")]
    pub vrrp_garp_interval: Duration,
    #[serde(serialize_with = "secs::serialize")]
    pub vrrp_gna_interval: Duration,
    pub vrrp_min_garp: bool,
    pub vrrp_down_timer_adverts: u32,
    pub vrrp_lower_prio_no_advert: bool,
    pub vrrp_higher_prio_send_advert: bool,
    pub vrrp_version: u8,
    pub vrrp_strict: bool,
    pub vrrp_check_unicast_src: bool,
    pub vrrp_skip_check_adv_addr: bool,
    /// `vrrp_owner_ignore_adverts`: the instances' `owner_ignore_adverts` default.
    pub vrrp_owner_ignore_adverts: bool,
    /// `log_unknown_vrids`: adverts for VRIDs no instance has are logged.
    pub log_unknown_vrids: bool,
    #[serde(serialize_with = "secs::serialize")]
    pub vrrp_startup_delay: Duration,
    /// `vrrp_notify_priority_changes`: priority changes go to the FIFOs.
    pub vrrp_notify_priority_changes: bool,
    /// `fifo_write_vrrp_states_on_reload`: every instance's state goes to the FIFOs
    /// again after a reload.
    pub fifo_write_vrrp_states_on_reload: bool,
    /// `vrrp_priority`, `checker_priority`, `bfd_priority` (nice, -20..19), when set.
    pub vrrp_priority: Option<i8>,
    pub checker_priority: Option<i8>,
    pub bfd_priority: Option<i8>,
    /// `vrrp_no_swap`, `checker_no_swap`, `bfd_no_swap` (one of them: rvs locks its
    /// memory).
    pub no_swap: bool,
    /// `vrrp_rt_priority`, `vrrp_cpu_affinity`, `vrrp_rlimit_rttime`, `vrrp_process_name`.
    pub vrrp_process: ProcessSettings,
    /// The same for the checkers (`checker_*`, `lvs_process_name`).
    pub checker_process: ProcessSettings,
    /// The same for BFD (`bfd_*`).
    pub bfd_process: ProcessSettings,
    /// `max_auto_priority [N]`: VRRP's thread is made real-time, one step at a time up
    /// to N, each time it wakes later than `min_auto_priority_delay` after a timer.
    pub max_auto_priority: Option<u8>,
    #[serde(serialize_with = "secs::serialize")]
    pub min_auto_priority_delay: Duration,
    /// `process_name`: the daemon's own name (its `comm`, which `ps` and `pgrep` show).
    pub process_name: Option<String>,
    pub enable_script_security: bool,
    /// rvs extension `rvs_forwarding_path_check`: the TCP checkers (`TCP_CHECK`,
    /// `HTTP_GET`, `SSL_GET`, `SMTP_CHECK`) of LVS-DR and LVS-TUN (IP-in-IP) real servers
    /// (IPv4) also probe them
    /// along the forwarding path, unless a checker says `rvs_forwarding_path_check off`.
    pub forwarding_path_check: bool,
    /// rvs extension `rvs_config_drift_peer ADDR` (repeatable): directors this one
    /// compares the configuration it must agree on with (UDP port 5409), authenticated
    /// by `rvs_config_drift_key`.
    pub config_drift_peers: Vec<IpAddr>,
    /// rvs extension `rvs_config_drift_key SECRET`: the HMAC-SHA256 key of that exchange.
    pub config_drift_key: Option<String>,
    /// rvs extension `rvs_sync_peer ADDR` (repeatable): the connection sync daemons of
    /// the XDP data plane send to these directors by unicast, and take datagrams from
    /// them only, instead of the multicast group (networks without multicast).
    pub sync_peers: Vec<IpAddr>,
    /// rvs extension `rvs_sync_key SECRET`: sync datagrams carry an HMAC-SHA256 of this
    /// key and the time; others are dropped (rvs directors only: the kernel's daemon
    /// cannot sign).
    pub sync_key: Option<String>,
    pub script_user: Option<String>,
    pub default_interface: Option<String>,
    pub dynamic_interfaces: bool,
    pub checker_log_all_failures: bool,
    pub rs_init_notifies: bool,
    pub lvs_timeouts: LvsTimeouts,
    pub lvs_sync_daemon: Option<LvsSyncDaemon>,
    /// `lvs_flush`: the kernel's IPVS table is emptied at start (kernel IPVS plane).
    pub lvs_flush: bool,
    /// `lvs_flush_on_stop [ALL]`: emptied at stop, not only of rvs's services.
    pub lvs_flush_on_stop: bool,
    /// `vrrp_netlink_cmd_rcv_bufs[_force]`: VRRP's netlink socket for addresses and routes.
    pub vrrp_netlink_cmd_rcv_bufs: RcvBufs,
    /// `vrrp_netlink_monitor_rcv_bufs[_force]`: VRRP's netlink socket watching links.
    pub vrrp_netlink_monitor_rcv_bufs: RcvBufs,
    /// `lvs_netlink_cmd_rcv_bufs[_force]`: the kernel IPVS plane's netlink socket.
    pub lvs_netlink_cmd_rcv_bufs: RcvBufs,
    /// `lvs_netlink_monitor_rcv_bufs[_force]`: the checkers' address monitor
    /// (`ha_suspend` follows address changes as they happen).
    pub lvs_netlink_monitor_rcv_bufs: RcvBufs,
    /// `vrrp_rx_bufs_policy`, when set, and `vrrp_rx_bufs_multiplier` (3).
    pub vrrp_rx_bufs_policy: Option<RxBufsPolicy>,
    pub vrrp_rx_bufs_multiplier: u32,
    /// `vmac_prefix`: the name of a VMAC interface `use_vmac` names none (`vrrp`: `vrrp.51`).
    pub vmac_prefix: String,
    /// `umask`: the process's file creation mask, when set.
    pub umask: Option<u32>,
    /// `disable_local_igmp`: `igmp_link_local_mcast_reports` off while VRRP runs.
    pub disable_local_igmp: bool,
    /// `nftables_priority`: the `no_accept` chains' priority relative to `filter` (-1).
    pub nftables_priority: i32,
    /// `nftables_counters`: the `no_accept` rules count what they match.
    pub nftables_counters: bool,
    /// `nftables_ifindex`: link-local VIPs are always matched by interface index.
    pub nftables_ifindex: bool,
    /// `net_namespace NAME`: rvs runs in the network namespace `/run/netns/NAME` (it
    /// enters it at start, before anything opens a socket).
    pub net_namespace: Option<String>,
    /// `net_namespace_ipvs [NAME]`: the kernel IPVS tables live in that namespace (empty:
    /// the host's own, `/proc/1/ns/net`).
    pub net_namespace_ipvs: Option<String>,
    /// `use_pid_dir`: the pid file goes in the daemon's run directory (`/run/rvs/`).
    pub use_pid_dir: bool,
    /// `instance NAME`: with `net_namespace`, names the daemon's files.
    pub instance: Option<String>,
    /// `data_use_instance`: the dump files' default names carry the namespace and
    /// instance (`/tmp/keepalived_NS_INST.data`).
    pub data_use_instance: bool,
    pub notify_fifo: Option<String>,
    pub vrrp_notify_fifo: Option<String>,
    pub lvs_notify_fifo: Option<String>,
    /// `notify_fifo_script`, `vrrp_notify_fifo_script`, `lvs_notify_fifo_script`: started
    /// with the FIFO's name as last argument, to read it; stopped with the daemon.
    pub notify_fifo_script: Option<Script>,
    pub vrrp_notify_fifo_script: Option<Script>,
    pub lvs_notify_fifo_script: Option<Script>,
    /// `smtp_alert`: the default of every instance, group and virtual server; `None`: off.
    pub smtp_alert: Option<bool>,
    /// `smtp_alert_vrrp` / `smtp_alert_checker`: the default of one side, over `smtp_alert`.
    pub smtp_alert_vrrp: Option<bool>,
    pub smtp_alert_checker: Option<bool>,
    /// `no_email_faults`: no mail for FAULT states.
    pub no_email_faults: bool,
    /// Run when the daemon starts, before any service or instance (waited for, at most
    /// `startup_script_timeout` seconds, default 10).
    pub startup_script: Option<Script>,
    #[serde(serialize_with = "secs::serialize")]
    pub startup_script_timeout: Duration,
    /// Run when the daemon stops, after everything else (waited for, at most
    /// `shutdown_script_timeout` seconds, default 10).
    pub shutdown_script: Option<Script>,
    #[serde(serialize_with = "secs::serialize")]
    pub shutdown_script_timeout: Duration,
    /// `child_wait_time SECS` (default 5): how long a stop waits for each of the parts
    /// that are keepalived's child processes (VRRP; the checkers with their notify
    /// scripts) before it goes on without them.
    #[serde(serialize_with = "secs::serialize")]
    pub child_wait_time: Duration,
    /// `enable_snmp_*`, `enable_traps`, `snmp_socket`: the `AgentX` subagent.
    pub snmp: Snmp,
    /// `reload_check_config [LOG_FILE]`: a reload is done only when the new file passes
    /// keepalived's own check (`keepalived -t`'s verdict); the diagnostics of a file that
    /// fails go to `LOG_FILE` (`/dev/null` when none is named).
    pub reload_check_config: Option<String>,
    /// `reload_file [PATH]`: created (or truncated) when a reload starts reading the
    /// configuration, removed once it is read; `Some("")`: keepalived's default path.
    pub reload_file: Option<String>,
    /// `config_save_dir DIR`: each reload saves the state before and after it there, as
    /// keepalived's `keepalived_{vrrp,check}.PID.N.{pre,post}`.
    pub config_save_dir: Option<String>,
    /// `reload_time_file PATH`: a reload is scheduled at the time the file's first line
    /// gives (keepalived's formats), followed as the file appears, changes and goes.
    pub reload_time_file: Option<String>,
    /// `reload_repeat`: the reload time file is kept after its reload (a time without a
    /// date then reloads every day).
    pub reload_repeat: bool,
    /// `enable_dbus`: keepalived's `DBus` service on the system bus.
    pub enable_dbus: bool,
    /// `dbus_service_name`: the bus name (`org.keepalived.Vrrp1` when `None`).
    pub dbus_service_name: Option<String>,
    /// Other recognised keywords, with their arguments as written.
    pub other: BTreeMap<String, Vec<String>>,
}

/// keepalived's `garp_extra_if [all] SECS`: while MASTER, a gratuitous ARP/NA every
/// `secs` on the interfaces of VIPs that are not the instance's own (its VMACs only,
/// unless `all`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct GarpExtraIf {
    pub secs: u32,
    pub all: bool,
}

/// The SNMP subagent's settings: which MIBs it serves, where the master agent listens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct Snmp {
    /// `enable_snmp_vrrp` (`enable_snmp_keepalived`): KEEPALIVED-MIB's global and VRRP parts.
    pub vrrp: bool,
    /// `enable_snmp_checker`: KEEPALIVED-MIB's global and checker parts.
    pub checker: bool,
    /// `enable_snmp_rfcv2` (or `enable_snmp_rfc`): VRRP-MIB (RFC 2787).
    pub rfcv2: bool,
    /// `enable_snmp_rfcv3` (or `enable_snmp_rfc`): VRRPv3-MIB (RFC 6527).
    pub rfcv3: bool,
    /// `enable_traps`: notifications on state changes.
    pub traps: bool,
    /// `snmp_socket`: the master agent's `AgentX` socket (net-snmp's default when `None`).
    pub socket: Option<String>,
    /// `snmp_vs_stats_update_interval` (keepalived 2.3): virtual servers' counters are
    /// read from the data plane at most this often (keepalived's 5 s when `None`).
    #[serde(serialize_with = "secs::serialize_opt")]
    pub vs_stats_interval: Option<Duration>,
    /// `snmp_rs_stats_update_interval`: the same for real servers (the virtual servers'
    /// interval when `None`).
    #[serde(serialize_with = "secs::serialize_opt")]
    pub rs_stats_interval: Option<Duration>,
}

impl Snmp {
    /// Whether any MIB is served.
    pub fn enabled(&self) -> bool {
        self.vrrp || self.checker || self.rfcv2 || self.rfcv3
    }
}

impl Default for GlobalDefs {
    fn default() -> Self {
        GlobalDefs {
            router_id: None,
            notification_email: Vec::new(),
            notification_email_from: None,
            smtp_server: None,
            smtp_connect_timeout: 30,
            smtp_helo_name: None,
            vrrp_mcast_group4: Ipv4Addr::new(224, 0, 0, 18),
            vrrp_mcast_group6: Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12),
            vrrp_garp_master_delay: 5,
            vrrp_garp_master_repeat: 5,
            vrrp_garp_master_refresh: 0,
            vrrp_garp_master_refresh_repeat: 1,
            vrrp_garp_extra_if: None,
            vrrp_garp_lower_prio_delay: 5,
            vrrp_garp_lower_prio_repeat: 5,
            vrrp_garp_interval: Duration::ZERO,
            vrrp_gna_interval: Duration::ZERO,
            vrrp_min_garp: false,
            vrrp_down_timer_adverts: 3,
            vrrp_lower_prio_no_advert: false,
            vrrp_higher_prio_send_advert: false,
            vrrp_version: 2,
            vrrp_strict: false,
            vrrp_check_unicast_src: false,
            vrrp_skip_check_adv_addr: false,
            vrrp_owner_ignore_adverts: false,
            log_unknown_vrids: false,
            vrrp_startup_delay: Duration::ZERO,
            vrrp_notify_priority_changes: false,
            fifo_write_vrrp_states_on_reload: false,
            vrrp_priority: None,
            checker_priority: None,
            bfd_priority: None,
            no_swap: false,
            vrrp_process: ProcessSettings::default(),
            checker_process: ProcessSettings::default(),
            bfd_process: ProcessSettings::default(),
            process_name: None,
            max_auto_priority: None,
            min_auto_priority_delay: Duration::from_secs(1),
            enable_script_security: false,
            forwarding_path_check: false,
            config_drift_peers: Vec::new(),
            config_drift_key: None,
            sync_peers: Vec::new(),
            sync_key: None,
            script_user: None,
            default_interface: None,
            dynamic_interfaces: false,
            checker_log_all_failures: false,
            rs_init_notifies: false,
            lvs_timeouts: LvsTimeouts::default(),
            lvs_sync_daemon: None,
            lvs_flush: false,
            lvs_flush_on_stop: false,
            vrrp_netlink_cmd_rcv_bufs: RcvBufs::default(),
            vrrp_netlink_monitor_rcv_bufs: RcvBufs::default(),
            lvs_netlink_cmd_rcv_bufs: RcvBufs::default(),
            lvs_netlink_monitor_rcv_bufs: RcvBufs::default(),
            vrrp_rx_bufs_policy: None,
            vrrp_rx_bufs_multiplier: 3,
            vmac_prefix: "vrrp".to_owned(),
            umask: None,
            disable_local_igmp: false,
            nftables_priority: -1,
            nftables_counters: false,
            nftables_ifindex: false,
            net_namespace: None,
            net_namespace_ipvs: None,
            use_pid_dir: false,
            instance: None,
            data_use_instance: false,
            notify_fifo: None,
            vrrp_notify_fifo: None,
            lvs_notify_fifo: None,
            notify_fifo_script: None,
            vrrp_notify_fifo_script: None,
            lvs_notify_fifo_script: None,
            smtp_alert: None,
            smtp_alert_vrrp: None,
            smtp_alert_checker: None,
            no_email_faults: false,
            startup_script: None,
            startup_script_timeout: Duration::from_secs(10),
            shutdown_script: None,
            shutdown_script_timeout: Duration::from_secs(10),
            child_wait_time: Duration::from_secs(5),
            snmp: Snmp::default(),
            reload_check_config: None,
            reload_file: None,
            config_save_dir: None,
            reload_time_file: None,
            reload_repeat: false,
            enable_dbus: false,
            dbus_service_name: None,
            other: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct SslConfig {
    pub ca: Option<String>,
    pub certificate: Option<String>,
    pub key: Option<String>,
    pub password: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SmtpServer {
    pub host: String,
    pub port: u16,
}

/// `lvs_sync_daemon IFNAME VRRP_INSTANCE [id N] [maxlen N] [port N] [ttl N] [group IP]`:
/// the IPVS connection sync daemon follows that instance (master while it is MASTER).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct LvsSyncDaemon {
    pub interface: String,
    /// The instance whose state the daemon follows; none: no daemon runs.
    pub instance: Option<String>,
    /// Defaults to the instance's VRID.
    pub id: Option<u8>,
    pub maxlen: Option<u16>,
    pub port: Option<u16>,
    pub ttl: Option<u8>,
    pub group: Option<IpAddr>,
    /// Where the instance name was written, for the cross-check (and width).
    #[serde(skip)]
    pub instance_at: (crate::diag::Loc, usize),
}

/// IPVS timeouts; `None` leaves the kernel's value (900/120/300).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Default)]
pub struct LvsTimeouts {
    pub tcp: Option<u32>,
    pub tcpfin: Option<u32>,
    pub udp: Option<u32>,
}

/// A script string (§1.6 of the spec): argv after keepalived's quoting and escape rules,
/// and the optional user and group to run it as.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Script {
    pub argv: Vec<String>,
    pub user: Option<String>,
    pub group: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VrrpScript {
    pub name: String,
    pub script: Option<Script>,
    #[serde(serialize_with = "secs::serialize")]
    pub interval: Duration,
    #[serde(serialize_with = "secs::serialize")]
    pub timeout: Duration,
    pub weight: i32,
    pub weight_reverse: bool,
    pub rise: u32,
    pub fall: u32,
    pub init_fail: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrackFile {
    pub name: String,
    pub file: Option<String>,
    pub weight: i32,
    pub weight_reverse: bool,
    pub init_file: Option<InitFile>,
}

/// `vrrp_track_process NAME { ... }`: up while the number of matching processes is in
/// `quorum..=quorum_max`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TrackProcess {
    pub name: String,
    /// The process name (or path with `full_command`); `None` when missing (an error).
    pub process: Option<String>,
    /// Parameters after the name: the process's arguments must match them.
    pub params: Vec<String>,
    /// `exact` (default with parameters), `initial` or `partial`.
    pub param_match: String,
    pub weight: i32,
    pub weight_reverse: bool,
    pub quorum: u32,
    pub quorum_max: Option<u32>,
    /// Seconds a change must last before it counts (new processes / terminations).
    #[serde(serialize_with = "secs::serialize")]
    pub fork_delay: Duration,
    #[serde(serialize_with = "secs::serialize")]
    pub terminate_delay: Duration,
    /// Match the full command path (`/proc/PID/cmdline`'s first word) instead of the
    /// process name.
    pub full_command: bool,
}

impl TrackProcess {
    /// A tracker with keepalived's defaults (exact parameters, quorum 1, no delays).
    #[must_use]
    pub fn new(name: String) -> Self {
        TrackProcess {
            name,
            process: None,
            params: Vec::new(),
            param_match: "exact".into(),
            weight: 0,
            weight_reverse: false,
            quorum: 1,
            quorum_max: None,
            fork_delay: Duration::ZERO,
            terminate_delay: Duration::ZERO,
            full_command: false,
        }
    }
}

/// `bfd_instance NAME { ... }`: a BFD session (keepalived's BFD process) that
/// `BFD_CHECK` and `track_bfd` follow. Timers in milliseconds.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct BfdInstance {
    pub name: String,
    pub neighbor_ip: Option<IpAddr>,
    pub source_ip: Option<IpAddr>,
    #[serde(serialize_with = "millis::serialize")]
    pub min_rx: Duration,
    #[serde(serialize_with = "millis::serialize")]
    pub min_tx: Duration,
    #[serde(serialize_with = "millis::serialize")]
    pub idle_tx: Duration,
    pub multiplier: u8,
    pub passive: bool,
    /// TTL of IPv4 packets (255) and hop limit of IPv6 ones (64).
    pub ttl: u8,
    pub hoplimit: u8,
    pub max_hops: u8,
    pub weight: i32,
    pub weight_reverse: bool,
    pub multihop: bool,
}

impl BfdInstance {
    /// keepalived's defaults.
    pub fn new(name: String) -> BfdInstance {
        BfdInstance {
            name,
            neighbor_ip: None,
            source_ip: None,
            min_rx: Duration::from_millis(10),
            min_tx: Duration::from_millis(10),
            idle_tx: Duration::from_secs(1),
            multiplier: 5,
            passive: false,
            ttl: 255,
            hoplimit: 64,
            max_hops: 0,
            weight: 0,
            weight_reverse: false,
            multihop: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InitFile {
    pub value: i64,
    pub overwrite: bool,
}

/// A tracker reference in `track_*` lists: weight `None` means the tracked object's own.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrackRef {
    pub name: String,
    pub weight: Option<i32>,
    pub reverse: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct Trackers {
    pub track_interface: Vec<TrackRef>,
    pub track_script: Vec<TrackRef>,
    pub track_file: Vec<TrackRef>,
    pub track_process: Vec<TrackRef>,
    pub track_bfd: Vec<TrackRef>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct Notify {
    pub notify_master: Option<Script>,
    pub notify_backup: Option<Script>,
    pub notify_fault: Option<Script>,
    pub notify_stop: Option<Script>,
    pub notify_deleted: Option<Script>,
    /// `notify_deleted` is present (with or without a script): an instance removed by a
    /// reload is reported DELETED instead of FAULT.
    pub report_deleted: bool,
    pub notify: Option<Script>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SyncGroup {
    pub name: String,
    pub group: Vec<String>,
    #[serde(flatten)]
    pub notify: Notify,
    #[serde(flatten)]
    pub trackers: Trackers,
    pub sync_group_tracking_weight: bool,
    /// `notify_priority_changes` (`None`: the global setting).
    pub notify_priority_changes: Option<bool>,
    /// `smtp_alert` here; `None`: inherited (instance and virtual server from
    /// `global_defs`, real server from its virtual server).
    pub smtp_alert: Option<bool>,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub enum VrrpState {
    #[serde(rename = "MASTER")]
    Master,
    #[serde(rename = "BACKUP")]
    Backup,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    Inet,
    Inet6,
}

/// Which destination a VRRPv3 unicast advert's checksum covers (RFC 5798: the packet's;
/// keepalived before 2.0.?: the multicast group, `vrrp_mcast_group4`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
pub enum OldChecksum {
    /// keepalived's default: the RFC's; an advert that checks only the old way switches
    /// the instance to the old way.
    #[default]
    Auto,
    /// `old_unicast_checksum never`: always the RFC's.
    Never,
    /// `old_unicast_checksum`: always the old way (sent and checked).
    Always,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Authentication {
    /// `PASS` or `AH`.
    pub auth_type: String,
    /// Truncated to 8 bytes, as sent on the wire (NUL padding is implied).
    pub auth_pass: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VipAddr {
    pub address: IpAddr,
    pub prefix_len: u8,
    pub brd: Option<String>,
    pub dev: Option<String>,
    pub scope: Option<String>,
    pub label: Option<String>,
    pub peer: Option<String>,
    pub no_track: bool,
    /// Other options as written (`home`, `-nodad`, `preferred_lft 0`, ...).
    pub options: Vec<String>,
}

impl VipAddr {
    /// An address with no options (what `ADDR/PREFIX` alone means).
    pub fn new(address: IpAddr, prefix_len: u8) -> VipAddr {
        VipAddr {
            address,
            prefix_len,
            brd: None,
            dev: None,
            scope: None,
            label: None,
            peer: None,
            no_track: false,
            options: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UnicastPeer {
    pub address: IpAddr,
    pub min_ttl: Option<u8>,
    pub max_ttl: Option<u8>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VrrpInstance {
    pub name: String,
    /// Initial wanted state.
    pub state: VrrpState,
    pub interface: Option<String>,
    pub virtual_router_id: Option<u8>,
    pub priority: u8,
    /// Seconds; rounded as the protocol version requires (v2: whole seconds, v3: 10 ms).
    #[serde(serialize_with = "secs::serialize")]
    pub advert_int: Duration,
    pub version: u8,
    pub family: Family,
    pub authentication: Option<Authentication>,
    pub virtual_ipaddress: Vec<VipAddr>,
    pub virtual_ipaddress_excluded: Vec<VipAddr>,
    #[serde(flatten)]
    pub trackers: Trackers,
    pub dont_track_primary: bool,
    pub unicast_src_ip: Option<IpAddr>,
    pub unicast_peer: Vec<UnicastPeer>,
    pub unicast_ttl: Option<u8>,
    pub mcast_dst_ip: Option<IpAddr>,
    pub nopreempt: bool,
    /// `promote_secondaries`: the interface's `promote_secondaries` sysctl is set while
    /// rvs runs (restored at stop).
    pub promote_secondaries: bool,
    #[serde(serialize_with = "secs::serialize")]
    pub preempt_delay: Duration,
    pub accept: bool,
    pub strict_mode: bool,
    pub check_unicast_src: bool,
    /// `old_unicast_checksum [never]`: the VRRPv3 unicast checksum's pseudo-header.
    pub old_unicast_checksum: OldChecksum,
    /// A `unicast_peer` block was written (even empty: peers may come from a
    /// `$VARIABLE` that expanded to nothing).
    pub unicast_peer_block: bool,
    /// `unicast_fault_no_peer`: a `unicast_peer` block without peers holds the instance in
    /// FAULT (without it, keepalived falls back to multicast).
    pub unicast_fault_no_peer: bool,
    /// `track_src_ip`: the instance is in FAULT while its `unicast_src_ip`/`mcast_src_ip` is
    /// not an address of the host.
    pub track_src_ip: bool,
    /// `kernel_rx_buf_size`: the receive buffer of the instance's socket (bytes), over
    /// `vrrp_rx_bufs_policy`.
    pub kernel_rx_buf_size: Option<u32>,
    /// `skip_check_adv_addr`: an advert's address list is compared only when it differs
    /// from the previous advert's.
    pub skip_check_adv_addr: bool,
    /// `owner_ignore_adverts`: as the address owner (priority 255), adverts are ignored.
    pub owner_ignore_adverts: bool,
    pub garp_master_delay: u32,
    pub garp_master_repeat: u32,
    pub garp_master_refresh: u32,
    pub garp_master_refresh_repeat: u32,
    /// `garp_extra_if [all] SECS` (0: off); `None`: `vrrp_garp_extra_if`'s.
    pub garp_extra_if: Option<GarpExtraIf>,
    pub garp_lower_prio_delay: u32,
    pub garp_lower_prio_repeat: u32,
    pub down_timer_adverts: u32,
    pub lower_prio_no_advert: bool,
    pub higher_prio_send_advert: bool,
    /// rvs extension `rvs_split_brain_arbitration`: when another MAC answers ARP for a
    /// VIP while MASTER, the director with the lower MAC steps down to BACKUP and stays
    /// there while the other answers.
    pub split_brain_arbitration: bool,
    pub use_vmac: Option<String>,
    /// `vmac_xmit_base`: with `use_vmac`, adverts are sent from the base interface (its
    /// own MAC) instead of the VMAC.
    pub vmac_xmit_base: bool,
    /// `virtual_routes` / `virtual_rules`: installed with the VIPs.
    pub virtual_routes: Vec<Route>,
    pub virtual_rules: Vec<Rule>,
    #[serde(flatten)]
    pub notify: Notify,
    pub notify_master_rx_lower_pri: Option<Script>,
    /// `notify_priority_changes` (`None`: the sync group's, else the global setting).
    pub notify_priority_changes: Option<bool>,
    /// `smtp_alert` here; `None`: inherited (instance and virtual server from
    /// `global_defs`, real server from its virtual server).
    pub smtp_alert: Option<bool>,
    /// Name of the sync group the instance belongs to.
    pub sync_group: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum VsgEntry {
    /// `IP [PORT]` or a range `a.b.c.d-e [PORT]`: `first..=last` addresses.
    Range {
        first: IpAddr,
        last: IpAddr,
        port: u16,
    },
    Fwmark {
        fwmark: u32,
        family: Option<Family>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VirtualServerGroup {
    pub name: String,
    pub entries: Vec<VsgEntry>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum VsKey {
    Address { address: IpAddr, port: u16 },
    Fwmark { fwmark: u32 },
    Group { group: String },
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "UPPERCASE")]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Scheduler {
    Rr,
    Wrr,
    Lc,
    Wlc,
    Lblc,
    Lblcr,
    Dh,
    Sh,
    Sed,
    Nq,
    Mh,
    Fo,
    Ovf,
    Twos,
}

impl Scheduler {
    pub const ALL: [(&'static str, Scheduler); 14] = [
        ("rr", Scheduler::Rr),
        ("wrr", Scheduler::Wrr),
        ("lc", Scheduler::Lc),
        ("wlc", Scheduler::Wlc),
        ("lblc", Scheduler::Lblc),
        ("lblcr", Scheduler::Lblcr),
        ("dh", Scheduler::Dh),
        ("sh", Scheduler::Sh),
        ("sed", Scheduler::Sed),
        ("nq", Scheduler::Nq),
        ("mh", Scheduler::Mh),
        ("fo", Scheduler::Fo),
        ("ovf", Scheduler::Ovf),
        ("twos", Scheduler::Twos),
    ];
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, s)| *s == self)
            .map_or("?", |(n, _)| n)
    }
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub enum Method {
    #[serde(rename = "NAT")]
    Nat,
    #[serde(rename = "DR")]
    Dr,
    #[serde(rename = "TUN")]
    Tun,
    /// `FNAT` (the LVS FULLNAT and DPVS forks of keepalived): source and destination
    /// rewritten, the source from the virtual server's `laddr_group_name`.
    #[serde(rename = "FNAT")]
    FullNat,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq, Default)]
pub struct Tunnel {
    /// `ipip` (default), `gue` or `gre`.
    pub kind: String,
    pub port: Option<u16>,
    /// `nocsum`, `csum` or `remcsum`.
    pub csum: Option<String>,
}

/// Forwarding method with its tunnel options.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Forwarding {
    pub method: Method,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tunnel: Option<Tunnel>,
}

/// Where `rvs_forwarding_path_check` can probe a real server at `rip` of the virtual
/// server `key`, forwarded by `fwd`: the VIP and port, the real server, and whether the
/// probe goes inside IP-in-IP (LVS-TUN) rather than in a frame to its MAC (LVS-DR); else
/// why it cannot apply (the loader warns with it, the daemon probes nothing).
pub fn forwarding_path_probe(
    key: &VsKey,
    rip: IpAddr,
    fwd: &Forwarding,
) -> Result<(std::net::SocketAddrV4, Ipv4Addr, bool), &'static str> {
    if fwd.tunnel.as_ref().is_some_and(|t| t.kind != "ipip") {
        return Err("IP-in-IP tunnels only (tunnel_type gue and gre are not probed)");
    }
    match (key, fwd.method, rip) {
        (_, Method::Nat | Method::FullNat, _) => {
            Err("LVS-DR and LVS-TUN real servers only (NAT reaches them at their own address)")
        }
        (
            VsKey::Address {
                address: IpAddr::V4(vip),
                port,
            },
            m,
            IpAddr::V4(rip),
        ) => Ok((
            std::net::SocketAddrV4::new(*vip, *port),
            rip,
            m == Method::Tun,
        )),
        (VsKey::Address { .. }, _, _) => Err("IPv4 only, yet"),
        _ => Err("virtual servers with an address only (a fwmark or group has no one VIP)"),
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct SchedFlags {
    pub flag_1: bool,
    pub flag_2: bool,
    pub flag_3: bool,
    pub sh_port: bool,
    pub sh_fallback: bool,
    pub mh_port: bool,
    pub mh_fallback: bool,
    pub ops: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SorryServer {
    pub address: IpAddr,
    pub port: u16,
    pub forwarding: Forwarding,
    pub inhibit: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VirtualServer {
    pub key: VsKey,
    /// `None` for fwmark services (the protocol comes from the marked packets).
    pub protocol: Option<Protocol>,
    pub lb_algo: Scheduler,
    pub forwarding: Forwarding,
    pub sched_flags: SchedFlags,
    /// Seconds; `None` = not persistent.
    pub persistence_timeout: Option<u32>,
    /// Netmask (IPv4 dotted) or prefix length (IPv6), as written.
    pub persistence_granularity: Option<String>,
    pub persistence_engine: Option<String>,
    #[serde(serialize_with = "secs::serialize")]
    pub delay_loop: Duration,
    #[serde(serialize_with = "secs::serialize")]
    pub connect_timeout: Duration,
    pub inhibit_on_failure: bool,
    pub alpha: bool,
    pub omega: bool,
    pub quorum: u32,
    pub hysteresis: u32,
    pub quorum_up: Option<Script>,
    pub quorum_down: Option<Script>,
    pub sorry_server: Option<SorryServer>,
    pub ha_suspend: bool,
    pub virtualhost: Option<String>,
    pub ip_family: Option<Family>,
    /// `smtp_alert` here; `None`: inherited (instance and virtual server from
    /// `global_defs`, real server from its virtual server).
    pub smtp_alert: Option<bool>,
    /// rvs extension `rvs_mh_table_size N`: Maglev table size (a prime); default 4093.
    pub mh_table_size: Option<u32>,
    /// rvs extension `rvs_proxy_protocol v1|v2`: send a PROXY header to real servers
    /// (proxy data plane only).
    pub proxy_protocol: Option<String>,
    /// `laddr_group_name` (FULLNAT): the `local_address_group` whose addresses the
    /// director connects to the real servers from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub laddr_group: Option<String>,
    /// `snmp_name`: the name KEEPALIVED-MIB's `virtualServerName` shows.
    pub snmp_name: Option<String>,
    /// `weight` in this block: its real servers' default weight (1).
    pub weight: i32,
    /// The checker settings written in this block (its checkers' defaults).
    pub check_defaults: CheckDefaults,
    pub real_servers: Vec<RealServer>,
}

/// `retry`, `delay_before_retry`, `warmup`, `delay_loop` and `connect_timeout` as a
/// virtual or real server block sets them for its checkers (a real server's start from
/// its virtual server's); `None`: not written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct CheckDefaults {
    pub retry: Option<u32>,
    #[serde(serialize_with = "secs::serialize_opt")]
    pub delay_before_retry: Option<Duration>,
    #[serde(serialize_with = "secs::serialize_opt")]
    pub warmup: Option<Duration>,
    #[serde(serialize_with = "secs::serialize_opt")]
    pub delay_loop: Option<Duration>,
    #[serde(serialize_with = "secs::serialize_opt")]
    pub connect_timeout: Option<Duration>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RealServer {
    pub address: IpAddr,
    /// Effective port (the VS port for DR/TUN; 0 for fwmark services unless NAT).
    pub port: u16,
    pub weight: i32,
    pub forwarding: Forwarding,
    pub uthreshold: u32,
    pub lthreshold: u32,
    pub inhibit_on_failure: bool,
    pub alpha: bool,
    pub notify_up: Option<Script>,
    pub notify_down: Option<Script>,
    pub virtualhost: Option<String>,
    /// `smtp_alert` here; `None`: inherited (instance and virtual server from
    /// `global_defs`, real server from its virtual server).
    pub smtp_alert: Option<bool>,
    /// `snmp_name`: the name KEEPALIVED-MIB's `realServerName` shows.
    pub snmp_name: Option<String>,
    /// The checker settings of this block, from its virtual server's and its own.
    pub check_defaults: CheckDefaults,
    pub checkers: Vec<Checker>,
}

/// One health checker with its effective settings (checker → real server → virtual
/// server → checker-type default).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Checker {
    #[serde(flatten)]
    pub kind: CheckKind,
    pub connect_ip: Option<IpAddr>,
    pub connect_port: Option<u16>,
    pub bindto: Option<IpAddr>,
    pub bind_port: Option<u16>,
    pub bind_if: Option<String>,
    #[serde(serialize_with = "secs::serialize")]
    pub connect_timeout: Duration,
    pub fwmark: Option<u32>,
    pub retry: u32,
    #[serde(serialize_with = "secs::serialize")]
    pub delay_before_retry: Duration,
    #[serde(serialize_with = "secs::serialize")]
    pub delay_loop: Duration,
    #[serde(serialize_with = "secs::serialize")]
    pub warmup: Duration,
    pub alpha: bool,
    pub log_all_failures: bool,
    /// rvs extension `rvs_forwarding_path_check [on|off]`: also probe the real server
    /// along the LVS-DR or LVS-TUN path (a SYN to the VIP sent to its MAC, or inside
    /// IP-in-IP); `None`: as
    /// `global_defs` says.
    pub forwarding_path: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type")]
pub enum CheckKind {
    #[serde(rename = "TCP_CHECK")]
    Tcp,
    #[serde(rename = "HTTP_GET")]
    Http(HttpCheck),
    #[serde(rename = "SSL_GET")]
    Ssl(HttpCheck),
    #[serde(rename = "MISC_CHECK")]
    Misc(MiscCheck),
    #[serde(rename = "SMTP_CHECK")]
    Smtp(SmtpCheck),
    #[serde(rename = "DNS_CHECK")]
    Dns(DnsCheck),
    #[serde(rename = "UDP_CHECK")]
    Udp(UdpCheck),
    #[serde(rename = "PING_CHECK")]
    Ping,
    #[serde(rename = "FILE_CHECK")]
    File(FileCheck),
    #[serde(rename = "BFD_CHECK")]
    Bfd(BfdCheck),
}

impl CheckKind {
    pub fn name(&self) -> &'static str {
        match self {
            CheckKind::Tcp => "TCP_CHECK",
            CheckKind::Http(_) => "HTTP_GET",
            CheckKind::Ssl(_) => "SSL_GET",
            CheckKind::Misc(_) => "MISC_CHECK",
            CheckKind::Smtp(_) => "SMTP_CHECK",
            CheckKind::Dns(_) => "DNS_CHECK",
            CheckKind::Udp(_) => "UDP_CHECK",
            CheckKind::Ping => "PING_CHECK",
            CheckKind::File(_) => "FILE_CHECK",
            CheckKind::Bfd(_) => "BFD_CHECK",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct HttpCheck {
    pub urls: Vec<Url>,
    pub virtualhost: Option<String>,
    /// `1.0`, `1.0C` or `1.1`.
    pub http_protocol: String,
    pub enable_sni: bool,
    pub sni_name: Option<String>,
    pub fast_recovery: bool,
    pub tls_compliant: bool,
    /// CA file to verify the server with (`SSL_GET`; from the root `SSL { ca }` block).
    /// Without it, as keepalived, the certificate is not verified.
    pub tls_ca: Option<String>,
    /// The client certificate (PEM chain) and its key presented to real servers that ask
    /// for one (the root `SSL { certificate key }`).
    pub tls_certificate: Option<String>,
    pub tls_key: Option<String>,
    /// The key's password (`SSL { password }`), for an encrypted (PKCS#8) key.
    pub tls_key_password: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Url {
    pub path: String,
    /// Lowercase hex MD5 of the body.
    pub digest: Option<String>,
    /// Inclusive ranges of accepted status codes (default 200-299).
    pub status_code: Vec<(u16, u16)>,
    pub virtualhost: Option<String>,
    /// The page must match (`regex_no_match`: must not match) this pattern.
    pub regex: Option<String>,
    pub regex_no_match: bool,
    /// PCRE2 option names (`caseless`, `multiline`, `dotall`, `extended`, `ungreedy`,
    /// `anchored`), as keepalived takes them.
    pub regex_options: Vec<String>,
    /// The match must start at or after this byte of the page...
    pub regex_min_offset: Option<usize>,
    /// ...and at or before this one.
    pub regex_max_offset: Option<usize>,
}

/// The PCRE2 options keepalived accepts that rvs maps onto the `regex` crate's flags.
pub const REGEX_OPTIONS: &[&str] = &[
    "caseless",
    "multiline",
    "dotall",
    "extended",
    "ungreedy",
    "anchored",
];

impl Url {
    /// The compiled `regex` with its options, if any (an invalid pattern: why).
    pub fn compiled_regex(&self) -> Option<Result<regex::bytes::Regex, String>> {
        let pattern = self.regex.as_deref()?;
        let mut flags = String::new();
        for o in &self.regex_options {
            match o.as_str() {
                "caseless" => flags.push('i'),
                "multiline" => flags.push('m'),
                "dotall" => flags.push('s'),
                "extended" => flags.push('x'),
                "ungreedy" => flags.push('U'),
                _ => {}
            }
        }
        let anchored = self.regex_options.iter().any(|o| o == "anchored");
        let full = format!(
            "{}{}(?:{pattern})",
            if flags.is_empty() {
                String::new()
            } else {
                format!("(?{flags})")
            },
            if anchored { "\\A" } else { "" }
        );
        Some(regex::bytes::Regex::new(&full).map_err(|e| e.to_string()))
    }

    /// Whether the page passes the regex test (true when there is none).
    pub fn page_passes(&self, re: &regex::bytes::Regex, body: &[u8]) -> bool {
        let start = self.regex_min_offset.unwrap_or(0).min(body.len());
        let found = re
            .find_at(body, start)
            .is_some_and(|m| self.regex_max_offset.is_none_or(|max| m.start() <= max));
        found != self.regex_no_match
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MiscCheck {
    pub misc_path: Option<Script>,
    /// Seconds; defaults to the virtual server's `delay_loop`.
    #[serde(serialize_with = "secs::serialize")]
    pub misc_timeout: Duration,
    pub misc_dynamic: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SmtpCheck {
    pub helo_name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DnsCheck {
    pub query_type: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UdpCheck {
    /// Hex bytes; `None` = a random payload.
    pub payload: Option<String>,
    pub require_reply: bool,
    /// Hex with `x` nibbles as wildcards.
    pub reply: Option<String>,
    pub min_reply_length: u32,
    pub max_reply_length: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FileCheck {
    pub track_file: Option<String>,
    pub weight: Option<i32>,
    pub reverse: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BfdCheck {
    pub name: Option<String>,
}
