//! keepalived's SNMP objects from rvs's state, served by the `AgentX` subagent (`rvs-snmp`):
//! KEEPALIVED-MIB's global and VRRP parts (`enable_snmp_vrrp`), VRRP-MIB (RFC 2787,
//! `enable_snmp_rfcv2`) and VRRPv3-MIB (RFC 6527, `enable_snmp_rfcv3`), with the OIDs,
//! types and values keepalived 2.2.7 serves (`crates/rvs/tests/vrrp.rs` walks both and
//! compares). The trees are built for each request from the running configuration and the
//! VRRP engine's last published status; nothing here waits on the engine.
//!
//! KEEPALIVED-MIB's checker part (`enable_snmp_checker`) is in [`checker`].
//!
//! Not served (docs/compat.md): KEEPALIVED-MIB's tracked-object, route and rule tables,
//! and SNMP writes (keepalived accepts a few; rvs's objects are read-only).

pub mod checker;

use crate::daemon::dumps::Errors;
use rvs_conf::model::{Config, VipAddr, VrrpInstance};
use rvs_snmp::{Oid, Tree, Value};
use rvs_vrrp::State;
use rvs_vrrpd::InstanceStatus;
use std::net::IpAddr;

/// KEEPALIVED-MIB: `enterprises.debian(9586).project(100).keepalived(5)`.
pub const KEEPALIVED: &[u32] = &[1, 3, 6, 1, 4, 1, 9586, 100, 5];
/// VRRP-MIB (RFC 2787): `mib-2.vrrpMIB(68)`.
pub const VRRP_MIB: &[u32] = &[1, 3, 6, 1, 2, 1, 68];
/// VRRPv3-MIB (RFC 6527): `mib-2.vrrpv3MIB(207)`.
pub const VRRPV3_MIB: &[u32] = &[1, 3, 6, 1, 2, 1, 207];

pub(crate) fn oid(prefix: &[u32], sub: &[u32]) -> Oid {
    let mut v = prefix.to_vec();
    v.extend_from_slice(sub);
    Oid(v)
}

/// The subagent's settings, or `None` when no MIB is enabled.
pub fn agent_config(cfg: &Config) -> Option<Result<rvs_snmp::agent::Config, String>> {
    let s = &cfg.global_defs.snmp;
    if !s.enabled() {
        return None;
    }
    let socket = match &s.socket {
        Some(t) => match rvs_snmp::agent::Socket::parse(t) {
            Ok(x) => x,
            Err(e) => return Some(Err(e)),
        },
        None => rvs_snmp::agent::Socket::default_master(),
    };
    let mut subtrees = Vec::new();
    // keepalived's VRRP and checker processes each register the global part and their own.
    if s.vrrp || s.checker {
        subtrees.push(oid(KEEPALIVED, &[1]));
    }
    if s.vrrp {
        subtrees.push(oid(KEEPALIVED, &[2]));
    }
    if s.checker {
        subtrees.push(oid(KEEPALIVED, &[3]));
    }
    if s.rfcv2 {
        subtrees.push(Oid(VRRP_MIB.to_vec()));
    }
    if s.rfcv3 {
        subtrees.push(Oid(VRRPV3_MIB.to_vec()));
    }
    Some(Ok(rvs_snmp::agent::Config {
        socket,
        id: Oid(KEEPALIVED.to_vec()),
        descr: format!("rvs {} (keepalived's MIBs)", env!("CARGO_PKG_VERSION")),
        subtrees,
    }))
}

/// The running subagent and the settings it was started with.
pub struct Agent {
    pub handle: rvs_snmp::agent::Handle,
    cfg: rvs_snmp::agent::Config,
    stop: tokio_util::sync::CancellationToken,
}

impl Agent {
    /// Starts the subagent `cfg` asks for (none when no MIB is enabled); it stops with
    /// `parent`. Its objects are built per request from `ctx` (the running configuration
    /// and the VRRP status).
    pub fn start(
        cfg: &Config,
        ctx: &std::sync::Arc<crate::daemon::control::Ctx>,
        parent: &tokio_util::sync::CancellationToken,
        tasks: &tokio_util::task::TaskTracker,
    ) -> Option<Agent> {
        Agent::start_with(agent_config(cfg)?, ctx, parent, tasks)
    }

    fn start_with(
        settings: Result<rvs_snmp::agent::Config, String>,
        ctx: &std::sync::Arc<crate::daemon::control::Ctx>,
        parent: &tokio_util::sync::CancellationToken,
        tasks: &tokio_util::task::TaskTracker,
    ) -> Option<Agent> {
        let sc = match settings {
            Ok(sc) => sc,
            Err(e) => {
                tracing::error!("SNMP not served: {e}");
                return None;
            }
        };
        let c = ctx.clone();
        let cache = std::sync::Arc::new(tokio::sync::Mutex::new(StatsCache::default()));
        let source: rvs_snmp::agent::Source = std::sync::Arc::new(move || {
            let (c, cache) = (c.clone(), cache.clone());
            Box::pin(async move {
                let cfg = c.config.load_full();
                let up = u32::try_from(c.started.elapsed().as_millis() / 10).unwrap_or(u32::MAX);
                if !cfg.global_defs.snmp.checker {
                    return tree(&cfg, &c.vrrp(), up, None);
                }
                let (vs, rs) = cache.lock().await.get(&c, &cfg.global_defs.snmp).await;
                let servers = c.servers();
                let st = checker::State {
                    servers: &servers,
                    vs_stats: &vs,
                    rs_stats: &rs,
                };
                tree(&cfg, &c.vrrp(), up, Some(&st))
            })
        });
        let stop = parent.child_token();
        let (handle, task) = rvs_snmp::agent::spawn(sc.clone(), source, stop.clone());
        tasks.spawn(async move {
            let _ = task.await;
        });
        Some(Agent {
            handle,
            cfg: sc,
            stop,
        })
    }

    /// After a reload: a changed set of MIBs or master socket starts a new session (the
    /// objects themselves follow the configuration at every request).
    pub fn follow(
        agent: &mut Option<Agent>,
        cfg: &Config,
        ctx: &std::sync::Arc<crate::daemon::control::Ctx>,
        parent: &tokio_util::sync::CancellationToken,
        tasks: &tokio_util::task::TaskTracker,
    ) {
        let want = agent_config(cfg);
        let same = match (agent.as_ref(), want.as_ref()) {
            (Some(a), Some(Ok(w))) => a.cfg == *w,
            (None, None) => true,
            _ => false,
        };
        if same {
            return;
        }
        if let Some(a) = agent.take() {
            a.stop.cancel();
        }
        tracing::info!("SNMP: the reload changed the SNMP settings; the subagent follows");
        *agent = want.and_then(|w| Agent::start_with(w, ctx, parent, tasks));
    }
}

/// The data plane's listings the checker part's counters come from, each kept for its
/// interval (keepalived reads the kernel's counters at most every 5 s by default).
#[derive(Default)]
struct StatsCache {
    vs: Option<(std::time::Instant, std::sync::Arc<Vec<rvs_adm::Service>>)>,
    rs: Option<(std::time::Instant, std::sync::Arc<Vec<rvs_adm::Service>>)>,
}

type Listing = std::sync::Arc<Vec<rvs_adm::Service>>;

impl StatsCache {
    async fn get(
        &mut self,
        ctx: &crate::daemon::control::Ctx,
        s: &rvs_conf::model::Snmp,
    ) -> (Listing, Listing) {
        let vs_every = s
            .vs_stats_interval
            .unwrap_or(std::time::Duration::from_secs(5));
        let rs_every = s.rs_stats_interval.unwrap_or(vs_every);
        let now = std::time::Instant::now();
        let stale = |e: &Option<(std::time::Instant, Listing)>, every| {
            e.as_ref()
                .is_none_or(|(t, _)| now.duration_since(*t) >= every)
        };
        let (vs_stale, rs_stale) = (stale(&self.vs, vs_every), stale(&self.rs, rs_every));
        if vs_stale || rs_stale {
            let fresh = std::sync::Arc::new(crate::daemon::control::snapshot(&ctx.shared).await);
            if vs_stale {
                self.vs = Some((now, fresh.clone()));
            }
            if rs_stale {
                self.rs = Some((now, fresh));
            }
        }
        let pick = |e: &Option<(std::time::Instant, Listing)>| {
            e.as_ref().map(|(_, l)| l.clone()).unwrap_or_default()
        };
        (pick(&self.vs), pick(&self.rs))
    }
}

/// An interface as the MIBs show it: from the VRRP engine's status (its netlink view, in
/// the namespace the daemon runs in), else from the name (an address's `dev` that is not
/// an instance's interface, or an instance not reported yet).
#[derive(Debug, Clone, Default)]
struct Link {
    index: u32,
    mac: Vec<u8>,
}

fn link(name: &str, st: Option<&InstanceStatus>) -> Link {
    if let Some(s) = st.filter(|s| s.ifindex != 0 && s.interface == name) {
        return Link {
            index: s.ifindex,
            mac: s.mac.to_vec(),
        };
    }
    // A socket's ioctl names interfaces of the daemon's own namespace (unlike /sys).
    let index = std::net::UdpSocket::bind("127.0.0.1:0")
        .ok()
        .and_then(|sock| rustix::net::netdevice::name_to_index(&sock, name).ok())
        .unwrap_or(0);
    Link {
        index,
        mac: Vec::new(),
    }
}

/// keepalived's numbers for a VRRP state (`vrrp_snmp_state`).
fn ka_state(s: State) -> i32 {
    match s {
        State::Init => 0,
        State::Backup => 1,
        State::Master => 2,
        State::Fault => 3,
    }
}

/// The RFC MIBs' numbers: initialize(1), backup(2), master(3).
fn rfc_state(s: State) -> i32 {
    match s {
        State::Master => 3,
        State::Backup => 2,
        State::Init | State::Fault => 1,
    }
}

pub(crate) fn octets(a: IpAddr) -> Vec<u8> {
    match a {
        IpAddr::V4(v) => v.octets().to_vec(),
        IpAddr::V6(v) => v.octets().to_vec(),
    }
}

/// `InetAddressType`: ipv4(1), ipv6(2).
pub(crate) fn inet_type(a: IpAddr) -> i32 {
    if a.is_ipv4() {
        1
    } else {
        2
    }
}

pub(crate) fn gauge(n: impl TryInto<u32>) -> Value {
    Value::Gauge32(n.try_into().unwrap_or(u32::MAX))
}

fn counter(n: u64) -> Value {
    Value::Counter32(u32::try_from(n & u64::from(u32::MAX)).unwrap_or(0))
}

pub(crate) fn int(n: impl TryInto<i32>) -> Value {
    Value::Integer(n.try_into().unwrap_or(i32::MAX))
}

pub(crate) fn script(s: Option<&rvs_conf::model::Script>) -> Option<Value> {
    s.map(|s| Value::string(&s.argv.join(" ")))
}

/// Every object of the enabled MIBs now (`checker`: the health and counters the
/// checker part shows, with `enable_snmp_checker`).
pub fn tree(
    cfg: &Config,
    vrrp: &[InstanceStatus],
    uptime_cs: u32,
    checker: Option<&checker::State<'_>>,
) -> Tree {
    let s = &cfg.global_defs.snmp;
    let mut out = Tree::default();
    let instances: Vec<(&VrrpInstance, Option<&InstanceStatus>, Link)> = cfg
        .vrrp_instances
        .iter()
        .map(|i| {
            let st = vrrp.iter().find(|v| v.name == i.name);
            let l = link(i.interface.as_deref().unwrap_or_default(), st);
            (i, st, l)
        })
        .collect();
    if s.vrrp || s.checker {
        global(cfg, &mut out);
    }
    if s.vrrp {
        keepalived_vrrp(cfg, &instances, &mut out);
    }
    if let Some(st) = checker.filter(|_| s.checker) {
        checker::tree(cfg, st, &mut out);
    }
    if s.rfcv2 {
        rfc2787(cfg, &instances, uptime_cs, &mut out);
    }
    if s.rfcv3 {
        rfc6527(&instances, uptime_cs, &mut out);
    }
    out
}

/// KEEPALIVED-MIB `global` (keepalived's `snmp_scalar` and `snmp_mail`).
fn global(cfg: &Config, out: &mut Tree) {
    let g = &cfg.global_defs;
    let k = |sub: &[u32]| oid(KEEPALIVED, sub);
    out.insert(
        k(&[1, 1, 0]),
        Value::string(&format!("rvs {}", env!("CARGO_PKG_VERSION"))),
    );
    let router_id = g
        .router_id
        .clone()
        .unwrap_or_else(crate::daemon::alerts::hostname);
    out.insert(k(&[1, 2, 0]), Value::string(&router_id));
    // The SMTP server: keepalived reports an unset one as IPv6-typed zero (4 octets).
    let (stype, saddr, sport) = match &g.smtp_server {
        Some(srv) => match srv.host.parse::<IpAddr>() {
            Ok(a) => (inet_type(a), octets(a), u32::from(srv.port)),
            Err(_) => (2, vec![0; 4], u32::from(srv.port)),
        },
        None => (2, vec![0; 4], 0),
    };
    out.insert(k(&[1, 3, 1, 0]), Value::Integer(stype));
    out.insert(k(&[1, 3, 2, 0]), Value::OctetString(saddr));
    // keepalived sets its 30 s default only with a server: without one, 0 (rvs's model
    // holds the default either way, so 30 without a server reads as unset).
    let timeout = if g.smtp_server.is_none() && g.smtp_connect_timeout == 30 {
        0
    } else {
        g.smtp_connect_timeout
    };
    out.insert(k(&[1, 3, 3, 0]), gauge(timeout));
    if let Some(from) = &g.notification_email_from {
        out.insert(k(&[1, 3, 4, 0]), Value::string(from));
    }
    for (i, e) in g.notification_email.iter().enumerate() {
        out.insert(
            k(&[1, 3, 5, 1, 2, u32::try_from(i + 1).unwrap_or(0)]),
            Value::string(e),
        );
    }
    out.insert(k(&[1, 3, 6, 0]), gauge(sport));
    out.insert(k(&[1, 3, 7, 0]), Value::truth(!g.no_email_faults));
    let alert = |v: Option<bool>| Value::Integer(v.map_or(3, |b| if b { 1 } else { 2 }));
    out.insert(k(&[1, 3, 8, 0]), alert(g.smtp_alert));
    out.insert(k(&[1, 3, 9, 0]), alert(g.smtp_alert_vrrp));
    out.insert(k(&[1, 3, 10, 0]), alert(g.smtp_alert_checker));
    out.insert(k(&[1, 4, 0]), Value::truth(g.snmp.traps));
    // linkBeat: netlink(1); rvs takes link state from netlink.
    out.insert(k(&[1, 5, 0]), Value::Integer(1));
    out.insert(k(&[1, 6, 0]), Value::truth(g.lvs_flush));
    // ipvs64BitStats: rvs reads the kernel's 64-bit counters.
    out.insert(k(&[1, 7, 0]), Value::truth(true));
    out.insert(
        k(&[1, 8, 0]),
        Value::string(g.net_namespace.as_deref().unwrap_or_default()),
    );
    out.insert(k(&[1, 9, 0]), Value::truth(g.enable_dbus));
    out.insert(k(&[1, 10, 0]), Value::truth(false));
    // lvsFlushOnStop: enabled(1) (`lvs_flush_on_stop [ALL]`), disabled(2).
    out.insert(k(&[1, 11, 0]), Value::truth(g.lvs_flush_on_stop));
}

/// KEEPALIVED-MIB `vrrp`: the instance table (`vrrp.3`) and the address table (`vrrp.6`).
fn keepalived_vrrp(
    cfg: &Config,
    instances: &[(&VrrpInstance, Option<&InstanceStatus>, Link)],
    out: &mut Tree,
) {
    let g = &cfg.global_defs;
    let smtp_default = g.smtp_alert_vrrp.or(g.smtp_alert).unwrap_or(false);
    for (n, (i, st, l)) in instances.iter().enumerate() {
        let idx = u32::try_from(n + 1).unwrap_or(u32::MAX);
        let c = |col: u32| oid(KEEPALIVED, &[2, 3, 1, col, idx]);
        let state = st.map_or(State::Init, |s| s.state);
        let configured = match i.state {
            rvs_conf::model::VrrpState::Master => State::Master,
            rvs_conf::model::VrrpState::Backup => State::Backup,
        };
        out.insert(c(2), Value::string(&i.name));
        out.insert(c(3), gauge(i.virtual_router_id.unwrap_or(0)));
        out.insert(c(4), Value::Integer(ka_state(state)));
        out.insert(c(5), Value::Integer(ka_state(configured)));
        let wanted = match state {
            State::Master | State::Backup => state,
            State::Init | State::Fault => configured,
        };
        out.insert(c(6), Value::Integer(ka_state(wanted)));
        out.insert(c(7), int(st.map_or(i.priority, |s| s.base_priority)));
        out.insert(c(8), int(st.map_or(i.priority, |s| s.priority)));
        out.insert(c(9), Value::truth(state == State::Master));
        if let Some(ifname) = &i.interface {
            out.insert(c(10), Value::string(ifname));
        }
        out.insert(c(11), Value::truth(!i.trackers.track_interface.is_empty()));
        let adv = if i.version == 2 {
            i.advert_int.as_secs()
        } else {
            u64::try_from(i.advert_int.as_millis() / 10).unwrap_or(u64::MAX)
        };
        out.insert(c(12), gauge(adv));
        out.insert(c(13), Value::truth(!i.nopreempt));
        out.insert(c(14), gauge(i.preempt_delay.as_secs()));
        let auth = if i.version == 2 {
            match i.authentication.as_ref().map(|a| a.auth_type.as_str()) {
                Some("PASS") => 1,
                Some("AH") => 2,
                _ => 0,
            }
        } else {
            0
        };
        out.insert(c(15), Value::Integer(auth));
        let syncd = g
            .lvs_sync_daemon
            .as_ref()
            .filter(|d| d.instance.as_deref() == Some(i.name.as_str()));
        out.insert(c(16), Value::truth(syncd.is_some()));
        if let Some(d) = syncd {
            out.insert(c(17), Value::string(&d.interface));
        }
        if let Some(sg) = &i.sync_group {
            out.insert(c(18), Value::string(sg));
        }
        out.insert(c(19), gauge(i.garp_master_delay));
        out.insert(c(20), Value::truth(i.smtp_alert.unwrap_or(smtp_default)));
        let nf = &i.notify;
        let any_script = nf.notify_master.is_some()
            || nf.notify_backup.is_some()
            || nf.notify_fault.is_some()
            || nf.notify_stop.is_some()
            || nf.notify_deleted.is_some()
            || nf.notify.is_some()
            || i.notify_master_rx_lower_pri.is_some();
        out.insert(c(21), Value::truth(any_script));
        for (col, s) in [
            (22, nf.notify_master.as_ref()),
            (23, nf.notify_backup.as_ref()),
            (24, nf.notify_fault.as_ref()),
            (25, nf.notify_stop.as_ref()),
            (26, nf.notify.as_ref()),
            (31, i.notify_master_rx_lower_pri.as_ref()),
            (32, nf.notify_deleted.as_ref()),
        ] {
            if let Some(v) = script(s) {
                out.insert(c(col), v);
            }
        }
        let accept = if i.version == 3 {
            Value::truth(i.accept)
        } else {
            Value::Integer(0)
        };
        out.insert(c(27), accept);
        out.insert(c(28), Value::truth(i.promote_secondaries));
        out.insert(c(29), Value::truth(false));
        out.insert(c(30), int(i.version));
        out.insert(c(33), Value::truth(nf.report_deleted));
        if i.unicast_peer.is_empty() && !i.unicast_peer_block {
            let group = i.mcast_dst_ip.unwrap_or(match i.family {
                rvs_conf::model::Family::Inet6 => IpAddr::V6(g.vrrp_mcast_group6),
                rvs_conf::model::Family::Inet => IpAddr::V4(g.vrrp_mcast_group4),
            });
            out.insert(c(34), Value::Integer(inet_type(group)));
            out.insert(c(35), Value::OctetString(octets(group)));
        }
        // The address table: each instance's VIPs (advertised), then its excluded ones.
        let vips = i
            .virtual_ipaddress
            .iter()
            .map(|a| (a, true))
            .chain(i.virtual_ipaddress_excluded.iter().map(|a| (a, false)));
        for (j, (a, advertised)) in vips.enumerate() {
            let jdx = u32::try_from(j + 1).unwrap_or(u32::MAX);
            address(i, a, advertised, state == State::Master, l, idx, jdx, out);
        }
    }
}

/// One row of KEEPALIVED-MIB's `vrrpAddressTable`.
#[allow(clippy::too_many_arguments)]
fn address(
    i: &VrrpInstance,
    a: &VipAddr,
    advertised: bool,
    set: bool,
    instance_link: &Link,
    idx: u32,
    jdx: u32,
    out: &mut Tree,
) {
    let c = |col: u32| oid(KEEPALIVED, &[2, 6, 1, col, idx, jdx]);
    let dev = a
        .dev
        .as_deref()
        .or(i.interface.as_deref())
        .unwrap_or_default();
    let l = if Some(dev) == i.interface.as_deref() {
        instance_link.clone()
    } else {
        link(dev, None)
    };
    out.insert(c(2), Value::Integer(inet_type(a.address)));
    out.insert(c(3), Value::OctetString(octets(a.address)));
    if a.address.is_ipv4() {
        let brd = a
            .brd
            .as_deref()
            .and_then(|b| b.parse::<std::net::Ipv4Addr>().ok())
            .map_or([0; 4], |b| b.octets());
        out.insert(c(4), Value::OctetString(brd.to_vec()));
    }
    out.insert(c(5), gauge(a.prefix_len));
    // InetScopeType: global(14), host(1), link(2), site(5), nowhere(0).
    let scope = match a.scope.as_deref() {
        Some("host") => 1,
        Some("link") => 2,
        Some("site") => 5,
        Some("nowhere") => 0,
        _ => 14,
    };
    out.insert(c(6), Value::Integer(scope));
    out.insert(c(7), int(l.index));
    out.insert(c(8), Value::string(dev));
    if let Some(label) = &a.label {
        out.insert(c(9), Value::string(label));
    }
    out.insert(c(10), Value::truth(set));
    out.insert(c(11), Value::truth(advertised));
    if let Some(p) = a
        .peer
        .as_deref()
        .and_then(|p| p.split('/').next()?.parse::<IpAddr>().ok())
    {
        out.insert(c(12), Value::OctetString(octets(p)));
    }
}

fn primary(st: Option<&InstanceStatus>) -> Option<IpAddr> {
    st.and_then(|s| s.source.parse().ok())
}

/// VRRP-MIB (RFC 2787): VRRPv2 instances over IPv4 only, indexed by (ifIndex, VRID).
fn rfc2787(
    cfg: &Config,
    instances: &[(&VrrpInstance, Option<&InstanceStatus>, Link)],
    uptime_cs: u32,
    out: &mut Tree,
) {
    let mib = |sub: &[u32]| oid(VRRP_MIB, sub);
    out.insert(mib(&[1, 1, 0]), Value::Integer(2));
    out.insert(mib(&[1, 2, 0]), Value::truth(cfg.global_defs.snmp.traps));
    for n in [1, 2, 3] {
        out.insert(mib(&[2, n, 0]), Value::Counter32(0));
    }
    let mut rows: Vec<_> = instances
        .iter()
        .filter(|(i, _, _)| i.version == 2 && i.family != rvs_conf::model::Family::Inet6)
        .collect();
    rows.sort_by_key(|(i, _, l)| (l.index, i.virtual_router_id));
    for (i, st, l) in rows {
        let vrid = u32::from(i.virtual_router_id.unwrap_or(0));
        let c = |col: u32| mib(&[1, 3, 1, col, l.index, vrid]);
        let state = st.map_or(State::Init, |s| s.state);
        out.insert(c(2), Value::OctetString(l.mac.clone()));
        out.insert(c(3), Value::Integer(rfc_state(state)));
        out.insert(c(4), Value::Integer(1));
        out.insert(c(5), int(st.map_or(i.priority, |s| s.base_priority)));
        out.insert(c(6), int(i.virtual_ipaddress.len()));
        // The master's address as last heard; none while this node is the master.
        let master = st
            .filter(|s| s.state != State::Master)
            .and_then(|s| s.master.as_deref())
            .and_then(|m| m.parse::<std::net::Ipv4Addr>().ok())
            .map_or([0; 4], |a| a.octets());
        out.insert(c(7), Value::IpAddress(master));
        let pip = match primary(*st) {
            Some(IpAddr::V4(a)) => a.octets(),
            _ => [0; 4],
        };
        out.insert(c(8), Value::IpAddress(pip));
        let auth = match i.authentication.as_ref().map(|a| a.auth_type.as_str()) {
            Some("PASS") => 2,
            Some("AH") => 3,
            _ => 1,
        };
        out.insert(c(9), Value::Integer(auth));
        out.insert(c(11), int(i.advert_int.as_secs()));
        out.insert(c(12), Value::truth(!i.nopreempt));
        let up = if matches!(state, State::Master | State::Backup) {
            uptime_cs
        } else {
            0
        };
        out.insert(c(13), Value::TimeTicks(up));
        out.insert(c(14), Value::Integer(1));
        out.insert(c(15), Value::Integer(1));
        for a in &i.virtual_ipaddress {
            if let IpAddr::V4(v4) = a.address {
                let mut sub = vec![1, 4, 1, 2, l.index, vrid];
                sub.extend(v4.octets().iter().map(|b| u32::from(*b)));
                out.insert(mib(&sub), Value::Integer(1));
            }
        }
        let e = st.map_or_else(Errors::none, Errors::of);
        let n = |f: fn(&InstanceStatus) -> u64| st.map_or(0, f);
        let r = |col: u32| mib(&[2, 4, 1, col, l.index, vrid]);
        for (col, v) in [
            (1, n(|s| s.became_master)),
            (2, n(|s| s.adverts_rx)),
            (3, e.advert_interval),
            (4, e.auth_failure),
            (5, e.ttl),
            (6, n(|s| s.priority_zero_rx)),
            (7, n(|s| s.priority_zero_tx)),
            (8, e.invalid_type),
            (9, n(|s| s.addr_list_err)),
            (10, e.invalid_authtype),
            (11, e.authtype_mismatch),
            (12, e.packet_len),
        ] {
            out.insert(r(col), counter(v));
        }
    }
}

/// VRRPv3-MIB (RFC 6527): every instance, indexed by (ifIndex, VRID, address type).
fn rfc6527(
    instances: &[(&VrrpInstance, Option<&InstanceStatus>, Link)],
    uptime_cs: u32,
    out: &mut Tree,
) {
    let mib = |sub: &[u32]| oid(VRRPV3_MIB, sub);
    for n in [1, 2, 3] {
        out.insert(mib(&[1, 2, n, 0]), Value::Counter64(0));
    }
    out.insert(mib(&[1, 2, 4, 0]), Value::TimeTicks(0));
    let mut rows: Vec<_> = instances.iter().collect();
    let ty = |i: &VrrpInstance| {
        if i.family == rvs_conf::model::Family::Inet6 {
            2
        } else {
            1
        }
    };
    rows.sort_by_key(|(i, _, l)| (l.index, i.virtual_router_id, ty(i)));
    for (i, st, l) in rows {
        let vrid = u32::from(i.virtual_router_id.unwrap_or(0));
        let at = ty(i);
        let c = |col: u32| mib(&[1, 1, 1, 1, col, l.index, vrid, at]);
        let state = st.map_or(State::Init, |s| s.state);
        let pip = primary(*st);
        let master = if state == State::Master {
            pip
        } else {
            st.and_then(|s| s.master.as_deref())
                .and_then(|m| m.parse::<IpAddr>().ok())
        };
        let zero = if at == 2 { vec![0; 16] } else { vec![0; 4] };
        out.insert(
            c(3),
            Value::OctetString(master.map_or(zero.clone(), octets)),
        );
        out.insert(c(4), Value::OctetString(pip.map_or(zero, octets)));
        out.insert(c(5), Value::OctetString(l.mac.clone()));
        out.insert(c(6), Value::Integer(rfc_state(state)));
        out.insert(c(7), gauge(st.map_or(i.priority, |s| s.priority)));
        out.insert(c(8), int(i.virtual_ipaddress.len()));
        out.insert(c(9), int(i.advert_int.as_millis() / 10));
        out.insert(c(10), Value::truth(!i.nopreempt));
        out.insert(c(11), Value::truth(i.accept));
        let up = if matches!(state, State::Master | State::Backup) {
            uptime_cs
        } else {
            0
        };
        out.insert(c(12), Value::TimeTicks(up));
        out.insert(c(13), Value::Integer(1));
        for a in &i.virtual_ipaddress {
            let mut sub = vec![1, 1, 2, 1, 2, l.index, vrid, at];
            sub.extend(octets(a.address).iter().map(|b| u32::from(*b)));
            out.insert(mib(&sub), Value::Integer(1));
        }
        let e = st.map_or_else(Errors::none, Errors::of);
        let n = |f: fn(&InstanceStatus) -> u64| st.map_or(0, f);
        let r = |col: u32| mib(&[1, 2, 5, 1, col, l.index, vrid, at]);
        out.insert(r(1), counter(n(|s| s.became_master)));
        // vrrpv3StatisticsNewMasterReason: notMaster(0), priority(1), preempted(2),
        // masterNoResponse(3).
        let why = match state {
            State::Master if i.priority == 255 => 1,
            State::Master => 3,
            _ => 0,
        };
        out.insert(r(2), Value::Integer(why));
        out.insert(r(3), Value::Counter64(n(|s| s.adverts_rx)));
        out.insert(r(4), Value::Counter64(e.advert_interval));
        out.insert(r(5), Value::Counter64(e.ttl));
        out.insert(r(6), Value::Integer(0));
        out.insert(r(7), Value::Counter64(n(|s| s.priority_zero_rx)));
        out.insert(r(8), Value::Counter64(n(|s| s.priority_zero_tx)));
        out.insert(r(9), Value::Counter64(e.invalid_type));
        out.insert(r(10), Value::Counter64(n(|s| s.addr_list_err)));
        out.insert(r(11), Value::Counter64(e.packet_len));
        out.insert(r(12), Value::TimeTicks(0));
        out.insert(r(13), Value::Gauge32(1000));
    }
}

/// The traps of state changes, found by comparing each status with the last one seen
/// (keepalived's `vrrp_snmp_instance_trap`, `vrrp_rfcv2_snmp_new_master_trap`,
/// `vrrp_rfcv3_snmp_new_master_notify`).
#[derive(Default)]
pub struct Traps {
    last: std::collections::HashMap<String, State>,
}

impl Traps {
    /// The traps due for `status` (none unless `enable_traps`).
    pub fn due(&mut self, cfg: &Config, status: &[InstanceStatus]) -> Vec<rvs_snmp::agent::Trap> {
        let s = &cfg.global_defs.snmp;
        let mut out = Vec::new();
        for st in status {
            if self.last.insert(st.name.clone(), st.state) == Some(st.state) {
                continue;
            }
            if !s.traps {
                continue;
            }
            let Some(i) = cfg.vrrp_instances.iter().find(|v| v.name == st.name) else {
                continue;
            };
            if s.vrrp {
                let configured = match i.state {
                    rvs_conf::model::VrrpState::Master => State::Master,
                    rvs_conf::model::VrrpState::Backup => State::Backup,
                };
                let router_id = cfg
                    .global_defs
                    .router_id
                    .clone()
                    .unwrap_or_else(crate::daemon::alerts::hostname);
                // The objects without their instance index, as keepalived sends them.
                out.push(rvs_snmp::agent::Trap {
                    oid: oid(KEEPALIVED, &[2, 10, 0, 2]),
                    varbinds: vec![
                        (oid(KEEPALIVED, &[2, 3, 1, 2]), Value::string(&st.name)),
                        (
                            oid(KEEPALIVED, &[2, 3, 1, 4]),
                            Value::Integer(ka_state(st.state)),
                        ),
                        (
                            oid(KEEPALIVED, &[2, 3, 1, 5]),
                            Value::Integer(ka_state(configured)),
                        ),
                        (oid(KEEPALIVED, &[1, 2, 0]), Value::string(&router_id)),
                    ],
                });
            }
            if st.state != State::Master {
                continue;
            }
            let l = link(&st.interface, Some(st));
            let vrid = u32::from(st.vrid);
            let pip = primary(Some(st));
            if s.rfcv2 && i.version == 2 {
                if let Some(IpAddr::V4(a)) = pip {
                    out.push(rvs_snmp::agent::Trap {
                        oid: oid(VRRP_MIB, &[0, 1]),
                        varbinds: vec![(
                            oid(VRRP_MIB, &[1, 3, 1, 7, l.index, vrid]),
                            Value::IpAddress(a.octets()),
                        )],
                    });
                }
            }
            if s.rfcv3 {
                let at = if i.family == rvs_conf::model::Family::Inet6 {
                    2
                } else {
                    1
                };
                let mut vbs = Vec::new();
                if let Some(a) = pip {
                    vbs.push((
                        oid(VRRPV3_MIB, &[1, 1, 1, 1, 3, l.index, vrid, at]),
                        Value::OctetString(octets(a)),
                    ));
                }
                let why = if i.priority == 255 { 1 } else { 3 };
                vbs.push((
                    oid(VRRPV3_MIB, &[1, 2, 5, 1, 2, l.index, vrid, at]),
                    Value::Integer(why),
                ));
                out.push(rvs_snmp::agent::Trap {
                    oid: oid(VRRPV3_MIB, &[0, 1]),
                    varbinds: vbs,
                });
            }
        }
        out
    }
}
