//! Config → what the driver runs: one [`InstancePlan`] per `vrrp_instance`, with the
//! protocol parameters resolved (advert interval field, auth bytes, GARP timings) and the
//! trackers resolved to the objects they name. Pure: no I/O, unit-tested.

use rvs_conf::model::{Family, Script, VipAddr};
use rvs_conf::Config;
use std::net::IpAddr;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PlanError {
    #[error("vrrp_instance {0}: no interface")]
    NoInterface(String),
    #[error("vrrp_instance {0}: no virtual_router_id")]
    NoVrid(String),
    #[error("vrrp_instance {0}: auth_type AH is not supported by rvs (use PASS, or none)")]
    AhUnsupported(String),
    #[error("vrrp_instance {0}: use_vmac is supported for IPv4 instances only")]
    VmacV6(String),
    #[error("vrrp_instance {0}: use_vmac interface name '{1}' is longer than 15 bytes")]
    VmacName(String, String),
}

/// The type of a route that is not plain unicast.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteKind {
    Unicast,
    Blackhole,
    Unreachable,
    Prohibit,
    Throw,
}

/// One `virtual_routes` line as rvs installs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutePlan {
    /// The line as written (for logs).
    pub text: String,
    pub dest: IpAddr,
    pub prefix: u8,
    pub via: Option<IpAddr>,
    pub dev: Option<String>,
    pub src: Option<IpAddr>,
    pub table: Option<u32>,
    pub metric: Option<u32>,
    pub kind: RouteKind,
}

impl RoutePlan {
    /// The route of a config line; `None` for one rvs cannot install (options it does not
    /// support, which the parser warned about at their line).
    pub fn of(r: &rvs_conf::model::Route) -> Option<RoutePlan> {
        if !r.unsupported.is_empty() {
            return None;
        }
        let d = r.dest.as_deref()?;
        let (dest, prefix) = if d == "default" {
            let via_v6 = r.via.as_deref().is_some_and(|v| v.contains(':'));
            if via_v6 {
                (IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED), 0)
            } else {
                (IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), 0)
            }
        } else {
            addr_prefix(d)?
        };
        let table = r.table;
        let kind = match r.kind.as_deref() {
            Some("blackhole") => RouteKind::Blackhole,
            Some("unreachable") => RouteKind::Unreachable,
            Some("prohibit") => RouteKind::Prohibit,
            Some("throw") => RouteKind::Throw,
            None => RouteKind::Unicast,
            Some(_) => return None,
        };
        Some(RoutePlan {
            text: r.text.clone(),
            dest,
            prefix,
            via: r.via.as_deref().and_then(|v| v.parse().ok()),
            dev: r.dev.clone(),
            src: r.src.as_deref().and_then(|v| v.parse().ok()),
            table,
            metric: r.metric,
            kind,
        })
    }
}

/// `ADDR[/LEN]` (`LEN` defaults to the whole address).
fn addr_prefix(s: &str) -> Option<(IpAddr, u8)> {
    let (a, l) = s.split_once('/').unwrap_or((s, ""));
    let a: IpAddr = a.parse().ok()?;
    let max = if a.is_ipv4() { 32 } else { 128 };
    let len = if l.is_empty() { max } else { l.parse().ok()? };
    (len <= max).then_some((a, len))
}

/// What a rule does with a packet it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleAction {
    /// Look the route up in a table (`table`/`lookup`; `main` when none is named).
    Lookup(u32),
    /// Jump to the rule with this preference.
    Goto(u32),
    Blackhole,
    Unreachable,
    Prohibit,
}

/// One `virtual_rules` / `static_rules` line as rvs installs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RulePlan {
    /// The line as written (for logs).
    pub text: String,
    pub v6: bool,
    pub from: Option<(IpAddr, u8)>,
    pub to: Option<(IpAddr, u8)>,
    pub preference: Option<u32>,
    pub invert: bool,
    pub iif: Option<String>,
    pub oif: Option<String>,
    /// `(mark, mask)`.
    pub fwmark: Option<(u32, Option<u32>)>,
    pub tos: Option<u8>,
    pub suppress_prefixlength: Option<u32>,
    pub action: RuleAction,
}

impl RulePlan {
    /// The rule of a config line; `None` for one rvs cannot install (options it does not
    /// support, which the parser warned about at their line). The address family is the
    /// one of its `from`/`to` address, else IPv4.
    pub fn of(r: &rvs_conf::model::Rule) -> Option<RulePlan> {
        if !r.unsupported.is_empty() {
            return None;
        }
        let side = |s: &Option<String>| -> Option<Option<(IpAddr, u8)>> {
            match s.as_deref() {
                None | Some("all") => Some(None),
                Some(a) => addr_prefix(a).map(Some),
            }
        };
        let from = side(&r.from)?;
        let to = side(&r.to)?;
        let v6 = from.or(to).is_some_and(|(a, _)| a.is_ipv6());
        if [from, to].iter().flatten().any(|(a, _)| a.is_ipv6() != v6) {
            return None;
        }
        let number = |s: &str| -> Option<u32> {
            match s.strip_prefix("0x") {
                Some(h) => u32::from_str_radix(h, 16).ok(),
                None => s.parse().ok(),
            }
        };
        let fwmark = match r.fwmark.as_deref() {
            None => None,
            Some(f) => match f.split_once('/') {
                Some((m, k)) => Some((number(m)?, Some(number(k)?))),
                None => Some((number(f)?, None)),
            },
        };
        let tos = match r.tos.as_deref() {
            None => None,
            Some(t) => Some(u8::try_from(number(t)?).ok()?),
        };
        let action = match (r.kind.as_deref(), r.goto) {
            (Some("blackhole"), _) => RuleAction::Blackhole,
            (Some("unreachable"), _) => RuleAction::Unreachable,
            (Some("prohibit"), _) => RuleAction::Prohibit,
            (Some(_), _) => return None,
            (None, Some(g)) => RuleAction::Goto(g),
            (None, None) => RuleAction::Lookup(r.table.unwrap_or(254)),
        };
        Some(RulePlan {
            text: r.text.clone(),
            v6,
            from,
            to,
            preference: r.preference,
            invert: r.invert,
            iif: r.iif.clone(),
            oif: r.oif.clone(),
            fwmark,
            tos,
            suppress_prefixlength: r.suppress_prefixlength,
            action,
        })
    }
}

/// An instance's socket receive buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RxBuf {
    Bytes(usize),
    /// This many times the interface's MTU (known when the socket opens).
    Mtus(u32),
}

impl RxBuf {
    /// The size for an interface of `mtu` bytes.
    pub fn bytes(self, mtu: u32) -> usize {
        match self {
            RxBuf::Bytes(b) => b,
            RxBuf::Mtus(m) => usize::try_from(u64::from(m) * u64::from(mtu)).unwrap_or(usize::MAX),
        }
    }
}

/// What one tracked object is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tracked {
    /// A network interface (up = administratively up and carrier).
    Interface(String),
    /// `vrrp_script` by index in [`Plan::scripts`].
    Script(usize),
    /// `vrrp_track_file` by index in [`Plan::files`].
    File(usize),
    /// `bfd_instance` by index in [`Plan::bfds`].
    Bfd(usize),
    /// `vrrp_track_process` by index in [`Plan::processes`].
    Process(usize),
}

/// One tracker of an instance with its weight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackPlan {
    pub what: Tracked,
    pub weight: i32,
    pub reverse: bool,
}

/// Gratuitous ARP / unsolicited NA timings (seconds and counts).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Garp {
    pub master_delay: u32,
    pub master_repeat: u32,
    pub master_refresh: u32,
    pub master_refresh_repeat: u32,
    /// `garp_extra_if`: seconds between the announcements on the VIPs' other
    /// interfaces while MASTER (0: none), and whether on all of them (`all`) or on VMACs
    /// only.
    pub extra_if: u32,
    pub extra_if_all: bool,
    pub lower_prio_delay: u32,
    pub lower_prio_repeat: u32,
    /// Spacing between two announcements (`vrrp_garp_interval` / `vrrp_gna_interval`).
    pub interval: std::time::Duration,
}

#[derive(Debug, Clone, Default)]
pub struct NotifyPlan {
    pub master: Option<Script>,
    pub backup: Option<Script>,
    pub fault: Option<Script>,
    pub stop: Option<Script>,
    /// `notify_deleted SCRIPT`.
    pub deleted: Option<Script>,
    /// `notify_deleted` is set: removal by a reload is DELETED, not FAULT.
    pub report_deleted: bool,
    /// `notify_master_rx_lower_pri` (instances only).
    pub rx_lower_pri: Option<Script>,
    /// `notify_priority_changes` (instances only; theirs, else their sync group's, else
    /// `vrrp_notify_priority_changes`): FIFO lines when the effective priority changes.
    pub priority_changes: bool,
    pub generic: Option<Script>,
}

impl From<&rvs_conf::model::Notify> for NotifyPlan {
    fn from(n: &rvs_conf::model::Notify) -> NotifyPlan {
        NotifyPlan {
            master: n.notify_master.clone(),
            backup: n.notify_backup.clone(),
            fault: n.notify_fault.clone(),
            stop: n.notify_stop.clone(),
            deleted: n.notify_deleted.clone(),
            report_deleted: n.report_deleted,
            rx_lower_pri: None,
            priority_changes: false,
            generic: n.notify.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct InstancePlan {
    pub name: String,
    pub iface: String,
    /// `use_vmac`: the macvlan that carries the VIPs and sends the adverts, with the
    /// virtual router MAC 00:00:5e:00:01:VRID (`iface` stays the receiving interface).
    pub vmac: Option<String>,
    /// `vmac_xmit_base`: adverts leave from `iface` (its MAC), not the VMAC.
    pub vmac_xmit_base: bool,
    pub vrid: u8,
    pub version: u8,
    pub v6: bool,
    pub priority: u8,
    pub wants_master: bool,
    /// Own advert interval, µs.
    pub adv_us: u64,
    /// The interval as sent: seconds (v2) or centiseconds (v3).
    pub interval_field: u16,
    pub down_adverts: u64,
    pub nopreempt: bool,
    /// `promote_secondaries` on the interface.
    pub promote_secondaries: bool,
    pub preempt_delay_us: u64,
    pub lower_prio_no_advert: bool,
    pub higher_prio_send_advert: bool,
    /// `rvs_split_brain_arbitration`.
    pub split_brain_arbitration: bool,
    /// v2 PASS authentication data.
    pub auth_pass: Option<[u8; rvs_wire::vrrp::AUTH_LEN]>,
    pub vips: Vec<VipAddr>,
    pub excluded: Vec<VipAddr>,
    pub src: Option<IpAddr>,
    pub peers: Vec<IpAddr>,
    /// The multicast group adverts go to and come from (`mcast_dst_ip`, else
    /// `vrrp_mcast_group4`/`6`, else `224.0.0.18` / `ff02::12`); unused in unicast.
    pub mcast_group: IpAddr,
    /// `virtual_routes` installed with the VIPs (the lines rvs can install).
    pub routes: Vec<RoutePlan>,
    /// `virtual_rules` installed with the VIPs (the lines rvs can install).
    pub rules: Vec<RulePlan>,
    pub ttl: u8,
    pub check_unicast_src: bool,
    /// `old_unicast_checksum`: how VRRPv3 unicast checksums cover the destination.
    pub old_checksum: rvs_conf::model::OldChecksum,
    /// The group the old checksums name (`vrrp_mcast_group4`, not `mcast_dst_ip`).
    pub checksum_group: std::net::Ipv4Addr,
    /// `unicast_fault_no_peer` with an empty `unicast_peer` block: held in FAULT.
    pub fault_no_peer: bool,
    /// `track_src_ip`: the source address whose absence holds the instance in FAULT.
    pub track_src: Option<IpAddr>,
    /// The receive buffer of its socket (`kernel_rx_buf_size`, `vrrp_rx_bufs_policy`).
    pub rx_buf: Option<RxBuf>,
    /// `skip_check_adv_addr`.
    pub skip_check_adv_addr: bool,
    /// `owner_ignore_adverts` (effective only at priority 255).
    pub owner_ignore_adverts: bool,
    pub garp: Garp,
    pub notify: NotifyPlan,
    pub trackers: Vec<TrackPlan>,
    /// Index in [`Plan::groups`].
    pub group: Option<usize>,
}

impl InstancePlan {
    /// The addresses carried in adverts: the VIPs (excluded ones are not advertised).
    pub fn advertised(&self) -> Vec<IpAddr> {
        self.vips.iter().map(|v| v.address).collect()
    }

    pub fn unicast(&self) -> bool {
        !self.peers.is_empty()
    }

    /// The sans-IO core's configuration, given our primary address.
    pub fn core(&self, own_ip: IpAddr) -> rvs_vrrp::Config {
        rvs_vrrp::Config {
            version: self.version,
            priority: self.priority,
            adv_us: self.adv_us,
            down_adverts: self.down_adverts,
            wants_master: self.wants_master,
            nopreempt: self.nopreempt,
            preempt_delay_us: self.preempt_delay_us,
            lower_prio_no_advert: self.lower_prio_no_advert,
            higher_prio_send_advert: self.higher_prio_send_advert,
            own_ip,
        }
    }
}

#[derive(Debug, Clone)]
pub struct GroupPlan {
    pub name: String,
    pub notify: NotifyPlan,
    /// Member instances by index in [`Plan::instances`].
    pub members: Vec<usize>,
}

#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub instances: Vec<InstancePlan>,
    pub groups: Vec<GroupPlan>,
    pub scripts: Vec<rvs_conf::model::VrrpScript>,
    pub files: Vec<rvs_conf::model::TrackFile>,
    /// `bfd_instance` names (`track_bfd`).
    pub bfds: Vec<String>,
    pub processes: Vec<rvs_conf::model::TrackProcess>,
    /// `notify_fifo` and `vrrp_notify_fifo` (both get VRRP lines).
    pub fifos: Vec<String>,
    /// `vrrp_startup_delay` (µs): at the daemon's start, the instances wait this long in
    /// INIT, discarding adverts, before they start.
    pub startup_delay_us: u64,
    /// `dynamic_interfaces`: an instance whose interface does not exist waits for it in
    /// FAULT; without it, keepalived refuses to start.
    pub dynamic_interfaces: bool,
    pub script_security: bool,
    pub script_user: Option<String>,
    /// `fifo_write_vrrp_states_on_reload`.
    pub fifo_states_on_reload: bool,
    /// `no_accept` / `vrrp_strict`: the addresses to drop (`None`: no rules).
    pub firewall: Option<crate::firewall::FirewallPlan>,
    /// `disable_local_igmp`: no IGMP reports for link-local groups while VRRP runs.
    pub disable_local_igmp: bool,
    /// `log_unknown_vrids`.
    pub log_unknown_vrids: bool,
    /// `interface_up_down_delays`: `(down, up)` debounce by interface name.
    pub link_delays: std::collections::BTreeMap<String, (std::time::Duration, std::time::Duration)>,
    /// `max_auto_priority` and `min_auto_priority_delay`: raise the VRRP thread's
    /// real-time priority by one, up to the maximum, when a timer fires that late.
    pub auto_priority: Option<(u8, std::time::Duration)>,
    /// `vrrp_netlink_cmd_rcv_bufs` / `vrrp_netlink_monitor_rcv_bufs` (and `_force`).
    pub netlink_cmd_bufs: rvs_conf::model::RcvBufs,
    pub netlink_monitor_bufs: rvs_conf::model::RcvBufs,
    /// Instances set aside because their interface does not exist (yet): shown in FAULT,
    /// started when it appears (see [`Plan::split_waiting`]).
    pub waiting: Vec<InstancePlan>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.instances.is_empty() && self.waiting.is_empty()
    }

    /// Moves the instances that are not `ready` (their interface missing, or without an
    /// address to send adverts from) into
    /// [`Plan::waiting`], with every member of their sync group (keepalived holds such
    /// an instance, and its group, in FAULT until the interface appears). Group and
    /// instance indices are renumbered.
    #[must_use]
    pub fn split_waiting(&self, ready: impl Fn(&InstancePlan) -> bool) -> Plan {
        let mut wait: Vec<bool> = self.instances.iter().map(|p| !ready(p)).collect();
        for g in &self.groups {
            if g.members
                .iter()
                .any(|m| wait.get(*m).copied().unwrap_or(false))
            {
                for m in &g.members {
                    if let Some(w) = wait.get_mut(*m) {
                        *w = true;
                    }
                }
            }
        }
        let mut out = Plan {
            instances: Vec::new(),
            groups: Vec::new(),
            waiting: self.waiting.clone(),
            ..self.clone()
        };
        let mut new_index = vec![None; self.instances.len()];
        for (i, p) in self.instances.iter().enumerate() {
            if wait[i] {
                out.waiting.push(p.clone());
            } else {
                new_index[i] = Some(out.instances.len());
                out.instances.push(p.clone());
            }
        }
        let mut new_group = vec![None; self.groups.len()];
        for (k, g) in self.groups.iter().enumerate() {
            let members: Vec<usize> = g.members.iter().filter_map(|m| new_index[*m]).collect();
            if !members.is_empty() {
                new_group[k] = Some(out.groups.len());
                out.groups.push(GroupPlan {
                    members,
                    ..g.clone()
                });
            }
        }
        for p in &mut out.instances {
            p.group = p.group.and_then(|g| new_group[g]);
        }
        out
    }
}

fn secs_to_us(s: std::time::Duration) -> u64 {
    u64::try_from(s.as_micros()).unwrap_or(u64::MAX)
}

/// Builds the plan of every `vrrp_instance` of a configuration.
pub fn plan(cfg: &Config) -> Result<Plan, Vec<PlanError>> {
    let g = &cfg.global_defs;
    let mut errs = Vec::new();
    let mut out = Plan {
        scripts: cfg.vrrp_scripts.clone(),
        files: cfg.track_files.clone(),
        bfds: cfg.bfd_instances.iter().map(|b| b.name.clone()).collect(),
        processes: cfg.track_processes.clone(),
        script_security: g.enable_script_security,
        script_user: g.script_user.clone(),
        startup_delay_us: secs_to_us(g.vrrp_startup_delay),
        dynamic_interfaces: g.dynamic_interfaces,
        fifo_states_on_reload: g.fifo_write_vrrp_states_on_reload,
        ..Plan::default()
    };
    out.fifos.extend(g.notify_fifo.clone());
    out.fifos.extend(g.vrrp_notify_fifo.clone());
    for sg in &cfg.vrrp_sync_groups {
        out.groups.push(GroupPlan {
            name: sg.name.clone(),
            notify: NotifyPlan::from(&sg.notify),
            members: Vec::new(),
        });
    }
    for vi in &cfg.vrrp_instances {
        let Some(iface) = vi.interface.clone() else {
            errs.push(PlanError::NoInterface(vi.name.clone()));
            continue;
        };
        let Some(vrid) = vi.virtual_router_id else {
            errs.push(PlanError::NoVrid(vi.name.clone()));
            continue;
        };
        let v6 = vi.family == Family::Inet6;
        let version = if v6 { 3 } else { vi.version };
        let adv_us = secs_to_us(vi.advert_int);
        let interval_field = if version == 2 {
            u16::try_from((adv_us / 1_000_000).clamp(1, 255)).unwrap_or(1)
        } else {
            u16::try_from((adv_us / 10_000).clamp(1, 4095)).unwrap_or(100)
        };
        let auth_pass = match &vi.authentication {
            Some(a) if version == 2 && a.auth_type == "AH" => {
                errs.push(PlanError::AhUnsupported(vi.name.clone()));
                continue;
            }
            Some(a) if version == 2 && a.auth_type == "PASS" => {
                Some(rvs_wire::vrrp::Repr::password(&a.auth_pass))
            }
            _ => None,
        };
        let mut trackers = Vec::new();
        let mut resolve = |list: &[rvs_conf::model::TrackRef], kind: &'static str| {
            for t in list {
                let found = match kind {
                    "track_interface" => Some((Tracked::Interface(t.name.clone()), 0)),
                    "track_script" => cfg
                        .vrrp_scripts
                        .iter()
                        .position(|s| s.name == t.name)
                        .map(|i| (Tracked::Script(i), cfg.vrrp_scripts[i].weight)),
                    "track_bfd" => cfg
                        .bfd_instances
                        .iter()
                        .position(|s| s.name == t.name)
                        .map(|i| (Tracked::Bfd(i), cfg.bfd_instances[i].weight)),
                    "track_process" => cfg
                        .track_processes
                        .iter()
                        .position(|s| s.name == t.name)
                        .map(|i| (Tracked::Process(i), cfg.track_processes[i].weight)),
                    _ => cfg
                        .track_files
                        .iter()
                        .position(|s| s.name == t.name)
                        .map(|i| (Tracked::File(i), cfg.track_files[i].weight)),
                };
                // A tracker that names nothing is ignored, as keepalived ignores it ("track
                // script X not found, ignoring..."); the loader warned at its line.
                let Some((what, own_weight)) = found else {
                    continue;
                };
                let reverse = t.reverse
                    || match &what {
                        Tracked::Script(i) => cfg.vrrp_scripts[*i].weight_reverse,
                        Tracked::File(i) => cfg.track_files[*i].weight_reverse,
                        Tracked::Bfd(i) => cfg.bfd_instances[*i].weight_reverse,
                        Tracked::Process(i) => cfg.track_processes[*i].weight_reverse,
                        Tracked::Interface(_) => false,
                    };
                trackers.push(TrackPlan {
                    what,
                    weight: t.weight.unwrap_or(own_weight),
                    reverse,
                });
            }
        };
        let group = vi
            .sync_group
            .as_ref()
            .and_then(|n| cfg.vrrp_sync_groups.iter().position(|s| &s.name == n));
        let mut lists: Vec<&rvs_conf::model::Trackers> = vec![&vi.trackers];
        if let Some(gi) = group {
            lists.push(&cfg.vrrp_sync_groups[gi].trackers);
        }
        for tr in lists {
            resolve(&tr.track_interface, "track_interface");
            resolve(&tr.track_script, "track_script");
            resolve(&tr.track_file, "track_file");
            resolve(&tr.track_bfd, "track_bfd");
            resolve(&tr.track_process, "track_process");
        }
        if !vi.dont_track_primary {
            trackers.push(TrackPlan {
                what: Tracked::Interface(iface.clone()),
                weight: 0,
                reverse: false,
            });
        }
        // Weights of sync group members count only with sync_group_tracking_weight.
        if let Some(gi) = group {
            if !cfg.vrrp_sync_groups[gi].sync_group_tracking_weight {
                for t in &mut trackers {
                    t.weight = 0;
                }
            }
        }
        let wants_master = vi.state == rvs_conf::model::VrrpState::Master;
        let idx = out.instances.len();
        if let Some(gi) = group {
            out.groups[gi].members.push(idx);
        }
        let vmac = match vi.use_vmac.as_deref() {
            None => None,
            Some(_) if v6 => {
                errs.push(PlanError::VmacV6(vi.name.clone()));
                continue;
            }
            Some(n) => {
                let n = if n.is_empty() {
                    format!("{}.{vrid}", g.vmac_prefix)
                } else {
                    n.to_owned()
                };
                if n.len() > 15 {
                    errs.push(PlanError::VmacName(vi.name.clone(), n));
                    continue;
                }
                Some(n)
            }
        };
        out.instances.push(InstancePlan {
            name: vi.name.clone(),
            iface,
            vmac,
            vmac_xmit_base: vi.vmac_xmit_base,
            vrid,
            version,
            v6,
            priority: vi.priority,
            wants_master,
            adv_us,
            interval_field,
            down_adverts: u64::from(vi.down_timer_adverts.max(1)),
            nopreempt: vi.nopreempt && !wants_master && vi.priority != 255,
            promote_secondaries: vi.promote_secondaries,
            preempt_delay_us: if wants_master {
                0
            } else {
                secs_to_us(vi.preempt_delay)
            },
            lower_prio_no_advert: vi.lower_prio_no_advert,
            higher_prio_send_advert: vi.higher_prio_send_advert,
            split_brain_arbitration: vi.split_brain_arbitration,
            auth_pass,
            vips: vi.virtual_ipaddress.clone(),
            excluded: vi.virtual_ipaddress_excluded.clone(),
            src: vi.unicast_src_ip,
            peers: vi.unicast_peer.iter().map(|p| p.address).collect(),
            mcast_group: vi.mcast_dst_ip.unwrap_or(if v6 {
                IpAddr::V6(cfg.global_defs.vrrp_mcast_group6)
            } else {
                IpAddr::V4(cfg.global_defs.vrrp_mcast_group4)
            }),
            routes: vi.virtual_routes.iter().filter_map(RoutePlan::of).collect(),
            rules: vi.virtual_rules.iter().filter_map(RulePlan::of).collect(),
            ttl: vi.unicast_ttl.unwrap_or(255),
            check_unicast_src: vi.check_unicast_src,
            old_checksum: vi.old_unicast_checksum,
            checksum_group: cfg.global_defs.vrrp_mcast_group4,
            fault_no_peer: vi.unicast_peer_block
                && vi.unicast_peer.is_empty()
                && vi.unicast_fault_no_peer,
            track_src: vi.unicast_src_ip.filter(|_| vi.track_src_ip),
            rx_buf: rx_buf(g, vi, v6),
            skip_check_adv_addr: vi.skip_check_adv_addr,
            owner_ignore_adverts: vi.owner_ignore_adverts,
            garp: Garp {
                master_delay: vi.garp_master_delay,
                master_repeat: vi.garp_master_repeat,
                master_refresh: vi.garp_master_refresh,
                master_refresh_repeat: vi.garp_master_refresh_repeat,
                // The instance's, else the global one (with its `all`).
                extra_if: vi
                    .garp_extra_if
                    .or(g.vrrp_garp_extra_if)
                    .map_or(0, |x| x.secs),
                extra_if_all: vi
                    .garp_extra_if
                    .or(g.vrrp_garp_extra_if)
                    .is_some_and(|x| x.all),
                lower_prio_delay: vi.garp_lower_prio_delay,
                lower_prio_repeat: vi.garp_lower_prio_repeat,
                // A garp_group naming the interface sets it; else the global one.
                interval: {
                    let group = cfg.garp_groups.iter().rev().find(|gg| {
                        gg.interfaces
                            .iter()
                            .any(|i| Some(i) == vi.interface.as_ref())
                    });
                    if v6 {
                        group
                            .and_then(|gg| gg.gna_interval)
                            .unwrap_or(g.vrrp_gna_interval)
                    } else {
                        group
                            .and_then(|gg| gg.garp_interval)
                            .unwrap_or(g.vrrp_garp_interval)
                    }
                },
            },
            notify: NotifyPlan {
                rx_lower_pri: vi.notify_master_rx_lower_pri.clone(),
                priority_changes: vi
                    .notify_priority_changes
                    .or_else(|| {
                        cfg.vrrp_sync_groups
                            .iter()
                            .find(|sg| sg.group.contains(&vi.name))
                            .and_then(|sg| sg.notify_priority_changes)
                    })
                    .unwrap_or(g.vrrp_notify_priority_changes),
                ..NotifyPlan::from(&vi.notify)
            },
            trackers,
            group,
        });
    }
    // no_accept (explicit, or by vrrp_strict): the instance's addresses are dropped.
    let mut fw = crate::firewall::FirewallPlan {
        table: g
            .other
            .get("nftables")
            .and_then(|v| v.first())
            .cloned()
            .unwrap_or_else(|| "keepalived".to_owned()),
        priority: g.nftables_priority,
        counters: g.nftables_counters,
        ..Default::default()
    };
    for vi in cfg.vrrp_instances.iter().filter(|v| !v.accept) {
        for a in vi
            .virtual_ipaddress
            .iter()
            .chain(&vi.virtual_ipaddress_excluded)
        {
            match a.address {
                IpAddr::V4(v) => {
                    fw.v4.insert(v);
                }
                // keepalived's link-local sets: by interface index, or by name for an
                // instance that does not track its interface (an address on it, or
                // no_track) unless nftables_ifindex.
                IpAddr::V6(v) if v.segments()[0] & 0xffc0 == 0xfe80 => {
                    let iface = vi.interface.clone().unwrap_or_default();
                    let dev = a.dev.clone().unwrap_or_else(|| iface.clone());
                    let by_name = !g.nftables_ifindex
                        && vi.dont_track_primary
                        && (dev == iface || a.no_track);
                    if by_name {
                        fw.ll_name.insert((v, dev));
                    } else {
                        fw.ll_index.insert((v, dev));
                    }
                }
                IpAddr::V6(v) => {
                    fw.v6.insert(v);
                }
            }
        }
    }
    out.firewall = (!fw.is_empty()).then_some(fw);
    out.disable_local_igmp = g.disable_local_igmp;
    out.log_unknown_vrids = g.log_unknown_vrids;
    out.link_delays.clone_from(&cfg.interface_delays);
    out.auto_priority = g
        .max_auto_priority
        .map(|max| (max, g.min_auto_priority_delay));
    out.netlink_cmd_bufs = g.vrrp_netlink_cmd_rcv_bufs;
    out.netlink_monitor_bufs = g.vrrp_netlink_monitor_rcv_bufs;
    // Groups with no member left (all faulty) are dropped by index remapping-free
    // filtering: members refer to instances, not the other way round.
    if errs.is_empty() {
        Ok(out)
    } else {
        Err(errs)
    }
}

/// keepalived's receive buffer for an instance's socket: `kernel_rx_buf_size`, else
/// `vrrp_rx_bufs_policy` times `vrrp_rx_bufs_multiplier` (rvs has a socket per instance
/// where keepalived shares one per interface, so the size is the instance's share).
fn rx_buf(
    g: &rvs_conf::model::GlobalDefs,
    vi: &rvs_conf::model::VrrpInstance,
    v6: bool,
) -> Option<RxBuf> {
    use rvs_conf::model::RxBufsPolicy;
    if let Some(b) = vi.kernel_rx_buf_size {
        return usize::try_from(b).ok().map(RxBuf::Bytes);
    }
    let m = g.vrrp_rx_bufs_multiplier.max(1);
    let times = |b: usize| b.saturating_mul(usize::try_from(m).unwrap_or(1));
    match g.vrrp_rx_bufs_policy? {
        RxBufsPolicy::Mtu => Some(RxBuf::Mtus(m)),
        RxBufsPolicy::Size(b) => usize::try_from(b).ok().map(times).map(RxBuf::Bytes),
        RxBufsPolicy::Advert => {
            // IP header, VRRP header, the addresses, v2's authentication data.
            let (ip, addr) = if v6 { (40, 16) } else { (20, 4) };
            let auth = if vi.version == 2 { 8 } else { 0 };
            Some(RxBuf::Bytes(times(
                ip + 8 + addr * vi.virtual_ipaddress.len() + auth,
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Config {
        let p = rvs_conf::parse_str(
            std::path::Path::new("t.conf"),
            text,
            &rvs_conf::Options::default(),
        );
        assert_eq!(p.errors(), 0, "{}", p.render());
        p.config
    }

    #[test]
    fn resolves_protocol_parameters_and_trackers() {
        let cfg = load(
            "vrrp_script chk {\n script \"/bin/true\"\n weight -20\n}\n\
             vrrp_instance VI_1 {\n state BACKUP\n interface eth0\n virtual_router_id 51\n\
             priority 100\n advert_int 0.1\n version 3\n track_script { chk }\n\
             track_interface { eth1 weight 10 }\n virtual_ipaddress { 198.18.0.50/24 dev eth0 }\n\
             unicast_peer { 198.18.0.2 }\n}\n",
        );
        let p = plan(&cfg).unwrap();
        let i = &p.instances[0];
        assert_eq!(
            (i.vrid, i.version, i.adv_us, i.interval_field),
            (51, 3, 100_000, 10)
        );
        assert!(i.unicast());
        assert_eq!(
            i.trackers,
            vec![
                TrackPlan {
                    what: Tracked::Interface("eth1".into()),
                    weight: 10,
                    reverse: false
                },
                TrackPlan {
                    what: Tracked::Script(0),
                    weight: -20,
                    reverse: false
                },
                TrackPlan {
                    what: Tracked::Interface("eth0".into()),
                    weight: 0,
                    reverse: false
                },
            ]
        );
    }

    #[test]
    fn v2_pass_auth_and_master_clears_nopreempt() {
        let cfg = load(
            "vrrp_instance VI_1 {\n state MASTER\n nopreempt\n interface eth0\n virtual_router_id 7\n\
             priority 150\n authentication { auth_type PASS\n auth_pass secret123 }\n\
             virtual_ipaddress { 198.18.0.50 }\n}\n",
        );
        let p = plan(&cfg).unwrap();
        let i = &p.instances[0];
        assert_eq!(i.auth_pass, Some(*b"secret12"));
        assert_eq!(i.interval_field, 1);
        assert!(!i.nopreempt && i.wants_master);
    }

    #[test]
    fn priority_change_notifications_instance_then_group_then_global() {
        let vi = |name: &str, vrid: u8, extra: &str| {
            format!(
                "vrrp_instance {name} {{\n interface eth0\n virtual_router_id {vrid}\n{extra}\
                 virtual_ipaddress {{ 198.18.0.{vrid}/24 }}\n}}\n"
            )
        };
        let text = format!(
            "global_defs {{\n vrrp_notify_priority_changes\n}}\n\
             vrrp_sync_group G {{\n group {{\n A\n B\n }}\n notify_priority_changes off\n}}\n{}{}{}",
            vi("A", 1, " notify_priority_changes on\n"),
            vi("B", 2, ""),
            vi("C", 3, ""),
        );
        let p = plan(&load(&text)).unwrap();
        let got: Vec<(&str, bool)> = p
            .instances
            .iter()
            .map(|i| (i.name.as_str(), i.notify.priority_changes))
            .collect();
        assert_eq!(got, [("A", true), ("B", false), ("C", true)]);
    }

    #[test]
    fn waiting_instances_take_their_sync_group_along() {
        let cfg = load(
            "vrrp_sync_group G {\n group {\n A\n B\n }\n}\n\
             vrrp_instance A {\n interface eth0\n virtual_router_id 1\n virtual_ipaddress { 198.18.0.1/24 }\n}\n\
             vrrp_instance B {\n interface late0\n virtual_router_id 2\n virtual_ipaddress { 198.18.0.2/24 }\n}\n\
             vrrp_instance C {\n interface eth0\n virtual_router_id 3\n virtual_ipaddress { 198.18.0.3/24 }\n}\n",
        );
        let p = plan(&cfg).unwrap().split_waiting(|i| i.iface != "late0");
        let names = |v: &[InstancePlan]| v.iter().map(|i| i.name.clone()).collect::<Vec<_>>();
        assert_eq!(names(&p.instances), ["C"]);
        assert_eq!(names(&p.waiting), ["A", "B"]);
        assert!(p.groups.is_empty());
        assert_eq!(p.instances[0].group, None);
        assert!(!p.is_empty());
    }
    fn load_lenient(text: &str) -> Config {
        rvs_conf::parse_str(
            std::path::Path::new("t.conf"),
            text,
            &rvs_conf::Options::default(),
        )
        .config
    }

    #[test]
    fn rules_become_what_ip_rule_would_install() {
        let c = load_lenient(
            "static_rules {\n  not from 198.18.0.0/24 to 198.19.0.0/16 iif eth0 fwmark 0x10/0xff tos 16 lookup 100 preference 5\n  \
             from fd00:198:18::/64 goto 9 prio 8\n  to 198.18.9.0/24 prohibit preference 4\n  \
             from all table main preference 3\n  from all realms 4 preference 1\n}\n",
        );
        let plans: Vec<Option<RulePlan>> = c.static_rules.iter().map(RulePlan::of).collect();
        let p0 = plans[0].as_ref().expect("rule 0");
        assert!(!p0.v6 && p0.invert);
        assert_eq!(p0.from, Some(("198.18.0.0".parse().unwrap(), 24)));
        assert_eq!(p0.to, Some(("198.19.0.0".parse().unwrap(), 16)));
        assert_eq!(p0.fwmark, Some((0x10, Some(0xff))));
        assert_eq!(p0.tos, Some(16));
        assert_eq!(p0.iif.as_deref(), Some("eth0"));
        assert_eq!(p0.action, RuleAction::Lookup(100));
        assert_eq!(p0.preference, Some(5));
        let p1 = plans[1].as_ref().expect("rule 1");
        assert!(p1.v6);
        assert_eq!(p1.action, RuleAction::Goto(9));
        assert_eq!(
            plans[2].as_ref().map(|p| p.action),
            Some(RuleAction::Prohibit)
        );
        let p3 = plans[3].as_ref().expect("rule 3");
        assert_eq!(
            (p3.from, p3.action, p3.v6),
            (None, RuleAction::Lookup(254), false)
        );
        // Options rvs cannot install: not installed (said at the line); mixed families
        // are refused by the parser.
        assert_eq!(plans.len(), 5);
        assert_eq!(plans[4], None);
    }

    #[test]
    fn vmac_names_follow_vmac_prefix() {
        let vmac = |global: &str| {
            let c = load(&format!(
                "{global}vrrp_instance V {{\n interface eth0\n virtual_router_id 51\n use_vmac\n \
                 virtual_ipaddress {{\n  198.18.0.51/24\n }}\n}}\n"
            ));
            plan(&c).unwrap().instances[0].vmac.clone()
        };
        assert_eq!(vmac(""), Some("vrrp.51".to_owned()));
        assert_eq!(
            vmac("global_defs {\n vmac_prefix vm\n}\n"),
            Some("vm.51".to_owned())
        );
    }
}
