//! KEEPALIVED-MIB's checker part (`enable_snmp_checker`): virtual server groups and
//! their members (`check.1`, `check.2`), virtual servers (`check.3`), real servers
//! (`check.4`, the sorry server first, as keepalived lists it), the LVS sync daemon
//! (`check.6`) and timeouts (`check.7`), and the traps `realServerStateChange` and
//! `virtualServerQuorumStateChange` (`check.5.0`). Columns, types and the rows a value is
//! absent from follow keepalived 2.2.7's `check_snmp.c`; the counters come from the data
//! plane's listing (the same numbers as `ipvsadm -L --stats`), read at most every
//! `snmp_vs_stats_update_interval` / `snmp_rs_stats_update_interval` (5 s by default,
//! as keepalived).
//!
//! Differences (docs/compat.md): the `…Low` rate columns hold the low 32 bits (keepalived
//! 2.2.7 answers them from a stale buffer), and real server weights are read-only.

use super::{gauge, inet_type, int, octets, oid, script, KEEPALIVED};
use rvs_adm::Service;
use rvs_adm::SvcKey;
use rvs_conf::model::{
    Config, Method, Protocol, RealServer, Scheduler, VirtualServer, VsKey, VsgEntry,
};
use rvs_daemon::{Change, RsReport, VsReport};
use rvs_snmp::{Oid, Tree, Value};
use std::net::IpAddr;
use std::time::Duration;

/// What the tables show beyond the configuration: the checkers' verdicts and the data
/// plane's counters.
pub struct State<'a> {
    pub servers: &'a [VsReport],
    /// The listing the virtual servers' counters come from.
    pub vs_stats: &'a [Service],
    /// The listing the real servers' counters come from.
    pub rs_stats: &'a [Service],
}

fn k(sub: &[u32]) -> Oid {
    oid(KEEPALIVED, sub)
}

fn idx(n: usize) -> u32 {
    u32::try_from(n + 1).unwrap_or(u32::MAX)
}

/// `TruthValue`: true(1), false(2); also keepalived's enabled(1)/disabled(2),
/// alive(1)/dead(2), met(1)/notMet(2), remove(1)/inhibit(2).
fn truth(b: bool) -> Value {
    Value::truth(b)
}

fn secs(d: Duration) -> Value {
    gauge(d.as_secs())
}

fn usecs(d: Duration) -> Value {
    gauge(d.as_micros())
}

fn c32(n: u64) -> Value {
    Value::Counter32(u32::try_from(n & u64::from(u32::MAX)).unwrap_or(0))
}

fn low(n: u64) -> Value {
    gauge(n & u64::from(u32::MAX))
}

fn high(n: u64) -> Value {
    gauge(n >> 32)
}

/// keepalived's `virtualServerLoadBalancingAlgo` numbers.
fn algo(s: Scheduler) -> i32 {
    match s {
        Scheduler::Rr => 1,
        Scheduler::Wrr => 2,
        Scheduler::Lc => 3,
        Scheduler::Wlc => 4,
        Scheduler::Lblc => 5,
        Scheduler::Lblcr => 6,
        Scheduler::Dh => 7,
        Scheduler::Sh => 8,
        Scheduler::Sed => 9,
        Scheduler::Nq => 10,
        Scheduler::Fo => 11,
        Scheduler::Ovf => 12,
        Scheduler::Mh => 13,
        Scheduler::Twos => 14,
    }
}

/// nat(1), dr(2), tun(3); FULLNAT, which KEEPALIVED-MIB does not know, as nat(1) (it
/// is NAT of both addresses).
fn method(m: Method) -> i32 {
    match m {
        Method::Nat | Method::FullNat => 1,
        Method::Dr => 2,
        Method::Tun => 3,
    }
}

/// The tunnel columns (type, GUE port, checksum) of a TUN virtual or real server.
fn tunnel(f: &rvs_conf::model::Forwarding, out: &mut Tree, col: impl Fn(u32) -> Oid, first: u32) {
    if f.method != Method::Tun {
        return;
    }
    let t = f.tunnel.as_ref();
    let kind = t.map_or("ipip", |t| t.kind.as_str());
    let ty = match kind {
        "gue" => 2,
        "gre" => 3,
        _ => 1,
    };
    out.insert(col(first), Value::Integer(ty));
    if ty == 2 {
        out.insert(col(first + 1), gauge(t.and_then(|t| t.port).unwrap_or(0)));
    }
    if ty != 1 {
        let csum = match t.and_then(|t| t.csum.as_deref()) {
            Some("csum") => 2,
            Some("remcsum") => 3,
            _ => 1,
        };
        out.insert(col(first + 2), Value::Integer(csum));
    }
}

/// The address family keepalived gives a virtual server (`v->af`): its address's, a
/// fwmark's `ip_family` or its real servers', IPv4 otherwise.
fn v6(cfg: &Config, vs: &VirtualServer) -> bool {
    match rvs_desired::keys(cfg, vs).first() {
        Some(SvcKey::Addr { addr, .. }) => addr.is_ipv6(),
        Some(SvcKey::Fwmark { v6, .. }) => *v6,
        None => false,
    }
}

/// The counters of `vs` in a listing: its services' (a group's members summed).
fn vs_counters(keys: &[SvcKey], listing: &[Service]) -> rvs_adm::Stats {
    let mut s = rvs_adm::Stats::default();
    for svc in listing.iter().filter(|s| keys.contains(&s.id)) {
        s += &svc.stats;
    }
    s
}

/// A real server's counters and connection counts across its virtual server's services.
fn rs_counters(
    keys: &[SvcKey],
    listing: &[Service],
    addr: IpAddr,
    port: u16,
) -> (rvs_adm::Stats, [u32; 3]) {
    let mut s = rvs_adm::Stats::default();
    let mut conns = [0u32; 3];
    for svc in listing.iter().filter(|s| keys.contains(&s.id)) {
        for d in svc
            .dests
            .iter()
            .filter(|d| d.addr == addr && d.port == port)
        {
            s += &d.stats;
            conns[0] = conns[0].saturating_add(d.active);
            conns[1] = conns[1].saturating_add(d.inactive);
            conns[2] = conns[2].saturating_add(d.persist);
        }
    }
    (s, conns)
}

/// The counter and rate columns of a row; `base` maps keepalived's columns to the
/// table's (the virtual server table's numbers are the real server table's + 13, but
/// not in one run, so each table lists its own).
struct StatCols {
    conns: u32,
    in_pkts: u32,
    out_pkts: u32,
    in_bytes: u32,
    out_bytes: u32,
    rates: u32,
    conns64: u32,
    low_high: u32,
}

fn stats(s: &rvs_adm::Stats, c: &StatCols, col: &impl Fn(u32) -> Oid, out: &mut Tree) {
    out.insert(col(c.conns), gauge(s.conns & u64::from(u32::MAX)));
    out.insert(col(c.in_pkts), c32(s.in_pkts));
    out.insert(col(c.out_pkts), c32(s.out_pkts));
    out.insert(col(c.in_bytes), Value::Counter64(s.in_bytes));
    out.insert(col(c.out_bytes), Value::Counter64(s.out_bytes));
    let rates = [s.cps, s.in_pps, s.out_pps, s.in_bps, s.out_bps];
    for (i, r) in (0u32..).zip(rates) {
        out.insert(col(c.rates + i), gauge(r & u64::from(u32::MAX)));
        out.insert(col(c.low_high + 2 * i), low(r));
        out.insert(col(c.low_high + 2 * i + 1), high(r));
    }
    out.insert(col(c.conns64), Value::Counter64(s.conns));
    out.insert(col(c.conns64 + 1), Value::Counter64(s.in_pkts));
    out.insert(col(c.conns64 + 2), Value::Counter64(s.out_pkts));
}

const VS_STATS: StatCols = StatCols {
    conns: 27,
    in_pkts: 28,
    out_pkts: 29,
    in_bytes: 30,
    out_bytes: 31,
    rates: 32,
    conns64: 38,
    low_high: 41,
};

const RS_STATS: StatCols = StatCols {
    conns: 14,
    in_pkts: 18,
    out_pkts: 19,
    in_bytes: 20,
    out_bytes: 21,
    rates: 22,
    conns64: 27,
    low_high: 30,
};

/// The checker part's objects.
pub fn tree(cfg: &Config, st: &State<'_>, out: &mut Tree) {
    groups(cfg, out);
    let g = &cfg.global_defs;
    let checker_default = g.smtp_alert_checker.or(g.smtp_alert).unwrap_or(false);
    for (vi, vs) in cfg.virtual_servers.iter().enumerate() {
        let health = st.servers.get(vi);
        let keys = rvs_desired::keys(cfg, vs);
        virtual_server(cfg, vs, idx(vi), health, &keys, st, checker_default, out);
        let mut n = 0;
        if let Some(s) = &vs.sorry_server {
            n += 1;
            let col = |c: u32| k(&[3, 4, 1, c, idx(vi), n]);
            out.insert(col(2), Value::Integer(2));
            out.insert(col(3), Value::Integer(inet_type(s.address)));
            out.insert(col(4), Value::OctetString(octets(s.address)));
            out.insert(col(5), gauge(s.port));
            let (sx, conns) = rs_counters(&keys, st.rs_stats, s.address, s.port);
            rs_stats(&sx, conns, &col, out);
            out.insert(col(40), Value::Integer(method(s.forwarding.method)));
            // The sorry server has no checker settings: keepalived's unset values.
            out.insert(col(42), truth(false));
            for c in [43, 44, 45, 46] {
                out.insert(col(c), gauge(0u32));
            }
            out.insert(col(47), truth(false));
            for c in [48, 49, 50, 51] {
                out.insert(col(c), gauge(0u32));
            }
            tunnel(&s.forwarding, out, col, 52);
        }
        for (ri, rs) in vs.real_servers.iter().enumerate() {
            n += 1;
            let rep = health.and_then(|h| h.real_servers.get(ri));
            real_server(vs, rs, rep, idx(vi), n, &keys, st, checker_default, out);
        }
    }
    if let Some(d) = &g.lvs_sync_daemon {
        let c = |n: u32| k(&[3, 6, n, 0]);
        out.insert(c(1), truth(true));
        out.insert(c(2), Value::string(&d.interface));
        if let Some(i) = &d.instance {
            out.insert(c(3), Value::string(i));
        }
        // What keepalived's checker process holds: unset values are 0.
        out.insert(c(4), int(d.id.unwrap_or(0)));
        out.insert(c(5), int(d.maxlen.unwrap_or(0)));
        out.insert(c(6), int(d.port.unwrap_or(0)));
        out.insert(c(7), int(d.ttl.unwrap_or(0)));
        if let Some(grp) = d.group {
            out.insert(c(8), Value::Integer(inet_type(grp)));
            out.insert(c(9), Value::OctetString(octets(grp)));
        }
    } else {
        out.insert(k(&[3, 6, 1, 0]), truth(false));
    }
    let t = g.lvs_timeouts;
    for (n, v) in [(1, t.tcp), (2, t.tcpfin), (3, t.udp)] {
        if let Some(v) = v.filter(|v| *v > 0) {
            out.insert(k(&[3, 7, n, 0]), int(v));
        }
    }
}

/// The `virtualServerTable` columns that say what a virtual server is (`virtualServerType`
/// and its group, fwmark, or address type, address and port), in keepalived's order:
/// the table's and the traps' (which carry them without the row index).
fn key_columns(vs: &VirtualServer) -> Vec<(u32, Value)> {
    match &vs.key {
        VsKey::Group { group } => vec![(2, Value::Integer(3)), (3, Value::string(group))],
        VsKey::Fwmark { fwmark } => vec![(2, Value::Integer(1)), (4, gauge(*fwmark))],
        VsKey::Address { address, port } => vec![
            (2, Value::Integer(2)),
            (5, Value::Integer(inet_type(*address))),
            (6, Value::OctetString(octets(*address))),
            (7, gauge(*port)),
        ],
    }
}

/// Its live real servers (all of them before the checkers have reported).
fn live(vs: &VirtualServer, health: Option<&VsReport>) -> usize {
    health.map_or(vs.real_servers.len(), |h| {
        h.real_servers.iter().filter(|r| r.alive).count()
    })
}

/// `virtualServerGroupTable` and `virtualServerGroupMemberTable`: a group's fwmarks
/// first, then its addresses and ranges, as keepalived keeps them.
fn groups(cfg: &Config, out: &mut Tree) {
    for (gi, g) in cfg.virtual_server_groups.iter().enumerate() {
        out.insert(k(&[3, 1, 1, 2, idx(gi)]), Value::string(&g.name));
        let marks = g
            .entries
            .iter()
            .filter(|e| matches!(e, VsgEntry::Fwmark { .. }));
        let ranges = g
            .entries
            .iter()
            .filter(|e| matches!(e, VsgEntry::Range { .. }));
        for (mi, e) in marks.chain(ranges).enumerate() {
            let col = |c: u32| k(&[3, 2, 1, c, idx(gi), idx(mi)]);
            match e {
                VsgEntry::Fwmark { fwmark, .. } => {
                    out.insert(col(2), Value::Integer(1));
                    out.insert(col(3), gauge(*fwmark));
                }
                VsgEntry::Range { first, last, port } => {
                    out.insert(col(2), Value::Integer(if first == last { 2 } else { 3 }));
                    out.insert(col(4), Value::Integer(inet_type(*first)));
                    if first == last {
                        out.insert(col(5), Value::OctetString(octets(*first)));
                    } else {
                        out.insert(col(6), Value::OctetString(octets(*first)));
                        out.insert(col(7), Value::OctetString(octets(*last)));
                    }
                    out.insert(col(8), gauge(*port));
                }
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn virtual_server(
    cfg: &Config,
    vs: &VirtualServer,
    i: u32,
    health: Option<&VsReport>,
    keys: &[SvcKey],
    st: &State<'_>,
    checker_default: bool,
    out: &mut Tree,
) {
    let col = |c: u32| k(&[3, 3, 1, c, i]);
    let is_v6 = v6(cfg, vs);
    for (c, v) in key_columns(vs) {
        out.insert(col(c), v);
    }
    // Every kind has an address type (a fwmark's or a group's family too).
    out.insert(col(5), Value::Integer(if is_v6 { 2 } else { 1 }));
    if !matches!(vs.key, VsKey::Fwmark { .. }) {
        let p = match vs.protocol {
            Some(Protocol::Tcp) => 1,
            Some(Protocol::Udp) => 2,
            Some(Protocol::Sctp) => 3,
            None => 4,
        };
        out.insert(col(8), Value::Integer(p));
    }
    out.insert(col(9), Value::Integer(algo(vs.lb_algo)));
    out.insert(col(10), Value::Integer(method(vs.forwarding.method)));
    // alive: the data plane serves it.
    let served = st.vs_stats.iter().any(|s| keys.contains(&s.id));
    out.insert(col(11), truth(served));
    if let Some(h) = &vs.virtualhost {
        out.insert(col(12), Value::string(h));
    }
    let persist = vs.persistence_timeout.filter(|t| *t > 0);
    out.insert(col(13), truth(persist.is_some()));
    if let Some(t) = persist {
        out.insert(col(14), gauge(t));
    }
    let gran = vs.persistence_granularity.as_deref();
    if is_v6 {
        out.insert(
            col(51),
            gauge(gran.and_then(|g| g.parse::<u32>().ok()).unwrap_or(0)),
        );
    } else {
        let m = gran
            .and_then(|g| g.parse::<std::net::Ipv4Addr>().ok())
            .map_or([0; 4], |m| m.octets());
        out.insert(col(15), Value::OctetString(m.to_vec()));
    }
    out.insert(col(16), secs(vs.delay_loop));
    out.insert(col(17), truth(vs.ha_suspend));
    out.insert(col(37), truth(vs.sched_flags.ops));
    out.insert(col(18), truth(vs.alpha));
    out.insert(col(19), truth(vs.omega));
    out.insert(col(20), gauge(vs.real_servers.len()));
    out.insert(col(21), gauge(live(vs, health)));
    out.insert(col(22), gauge(vs.quorum));
    out.insert(col(23), truth(health.is_none_or(|h| h.quorum_up)));
    if let Some(v) = script(vs.quorum_up.as_ref()) {
        out.insert(col(24), v);
    }
    if let Some(v) = script(vs.quorum_down.as_ref()) {
        out.insert(col(25), v);
    }
    out.insert(col(26), gauge(vs.hysteresis));
    stats(&vs_counters(keys, st.vs_stats), &VS_STATS, &col, out);
    let f = &vs.sched_flags;
    out.insert(col(52), truth(false));
    out.insert(col(53), truth(f.sh_fallback || f.mh_fallback || f.flag_1));
    out.insert(col(54), truth(f.sh_port || f.mh_port || f.flag_2));
    out.insert(col(55), truth(f.flag_3));
    out.insert(col(56), truth(!vs.inhibit_on_failure));
    let d = &vs.check_defaults;
    out.insert(col(57), gauge(d.retry.unwrap_or(0)));
    out.insert(col(58), secs(d.delay_before_retry.unwrap_or_default()));
    out.insert(col(59), secs(d.warmup.unwrap_or_default()));
    out.insert(col(60), int(vs.weight));
    out.insert(col(61), truth(vs.smtp_alert.unwrap_or(checker_default)));
    out.insert(col(62), truth(f.sh_fallback || f.mh_fallback || f.flag_1));
    out.insert(col(63), truth(f.sh_port || f.mh_port || f.flag_2));
    out.insert(col(64), usecs(vs.delay_loop));
    out.insert(col(65), usecs(d.delay_before_retry.unwrap_or_default()));
    out.insert(col(66), usecs(d.warmup.unwrap_or_default()));
    out.insert(col(67), usecs(vs.connect_timeout));
    tunnel(&vs.forwarding, out, col, 68);
    if let Some(n) = &vs.snmp_name {
        out.insert(col(71), Value::string(n));
    }
}

fn rs_stats(s: &rvs_adm::Stats, conns: [u32; 3], col: &impl Fn(u32) -> Oid, out: &mut Tree) {
    stats(s, &RS_STATS, col, out);
    out.insert(col(15), gauge(conns[0]));
    out.insert(col(16), gauge(conns[1]));
    out.insert(col(17), gauge(conns[2]));
}

#[allow(clippy::too_many_arguments)]
fn real_server(
    vs: &VirtualServer,
    rs: &RealServer,
    rep: Option<&RsReport>,
    vi: u32,
    ri: u32,
    keys: &[SvcKey],
    st: &State<'_>,
    checker_default: bool,
    out: &mut Tree,
) {
    let col = |c: u32| k(&[3, 4, 1, c, vi, ri]);
    out.insert(col(2), Value::Integer(1));
    out.insert(col(3), Value::Integer(inet_type(rs.address)));
    out.insert(col(4), Value::OctetString(octets(rs.address)));
    out.insert(col(5), gauge(rs.port));
    out.insert(col(6), truth(rep.is_none_or(|r| r.alive)));
    out.insert(col(7), int(rep.map_or(rs.weight, |r| r.weight)));
    if rs.uthreshold > 0 {
        out.insert(col(8), gauge(rs.uthreshold));
    }
    if rs.lthreshold > 0 {
        out.insert(col(9), gauge(rs.lthreshold));
    }
    out.insert(col(10), truth(!rs.inhibit_on_failure));
    if let Some(v) = script(rs.notify_up.as_ref()) {
        out.insert(col(11), v);
    }
    if let Some(v) = script(rs.notify_down.as_ref()) {
        out.insert(col(12), v);
    }
    out.insert(col(13), gauge(rep.map_or(0, |r| r.failed_checkers)));
    let (sx, conns) = rs_counters(keys, st.rs_stats, rs.address, rs.port);
    rs_stats(&sx, conns, &col, out);
    out.insert(col(40), Value::Integer(method(rs.forwarding.method)));
    if let Some(h) = &rs.virtualhost {
        out.insert(col(41), Value::string(h));
    }
    out.insert(col(42), truth(rs.alpha));
    let d = &rs.check_defaults;
    out.insert(col(43), gauge(d.retry.unwrap_or(0)));
    out.insert(col(44), secs(d.delay_before_retry.unwrap_or_default()));
    out.insert(col(45), secs(d.warmup.unwrap_or_default()));
    out.insert(col(46), secs(d.delay_loop.unwrap_or_default()));
    let alert = rs.smtp_alert.or(vs.smtp_alert).unwrap_or(checker_default);
    out.insert(col(47), truth(alert));
    out.insert(col(48), usecs(d.delay_before_retry.unwrap_or_default()));
    out.insert(col(49), usecs(d.warmup.unwrap_or_default()));
    out.insert(col(50), usecs(d.delay_loop.unwrap_or_default()));
    out.insert(
        col(51),
        usecs(d.connect_timeout.unwrap_or(vs.connect_timeout)),
    );
    tunnel(&rs.forwarding, out, col, 52);
    if let Some(n) = &rs.snmp_name {
        out.insert(col(55), Value::string(n));
    }
}

/// The trap keepalived sends for `change` (`check_snmp_rs_trap`,
/// `check_snmp_quorum_trap`): the objects without their row index, the virtual server's
/// live and total real servers now, and `routerId`. `None` unless `enable_traps` and
/// `enable_snmp_checker`.
pub fn trap(cfg: &Config, servers: &[VsReport], change: Change) -> Option<rvs_snmp::agent::Trap> {
    let s = &cfg.global_defs.snmp;
    if !(s.traps && s.checker) {
        return None;
    }
    let (vi, rs) = match change {
        Change::RealServer { vs, rs, up } => (vs, Some((rs, up))),
        Change::Quorum { vs, .. } => (vs, None),
    };
    let vs = cfg.virtual_servers.get(vi)?;
    let health = servers.get(vi);
    let mut vbs = Vec::new();
    if let Some((ri, up)) = rs {
        let r = vs.real_servers.get(ri)?;
        vbs.push((k(&[3, 4, 1, 3]), Value::Integer(inet_type(r.address))));
        vbs.push((k(&[3, 4, 1, 4]), Value::OctetString(octets(r.address))));
        vbs.push((k(&[3, 4, 1, 5]), gauge(r.port)));
        vbs.push((k(&[3, 4, 1, 6]), truth(up)));
    }
    vbs.extend(
        key_columns(vs)
            .into_iter()
            .map(|(c, v)| (k(&[3, 3, 1, c]), v)),
    );
    // keepalived sends tcp(1) for TCP and 2 for anything else here.
    vbs.push((k(&[3, 3, 1, 8]), truth(vs.protocol == Some(Protocol::Tcp))));
    if let Change::Quorum { up, .. } = change {
        vbs.push((k(&[3, 3, 1, 23]), truth(up)));
        vbs.push((k(&[3, 3, 1, 22]), gauge(vs.quorum)));
    }
    vbs.push((k(&[3, 3, 1, 21]), gauge(live(vs, health))));
    vbs.push((k(&[3, 3, 1, 20]), gauge(vs.real_servers.len())));
    let router_id = cfg
        .global_defs
        .router_id
        .clone()
        .unwrap_or_else(crate::daemon::alerts::hostname);
    vbs.push((k(&[1, 2, 0]), Value::string(&router_id)));
    let n = if rs.is_some() { 1 } else { 2 };
    Some(rvs_snmp::agent::Trap {
        oid: k(&[3, 5, 0, n]),
        varbinds: vbs,
    })
}
