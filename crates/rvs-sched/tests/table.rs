//! Connection table: state transitions, timeouts, counters and persistence, with an
//! injected clock (milliseconds).

// Tests panic on failure so that the failing line is the report (STYLE.md).
#![allow(
    clippy::unwrap_used,
    clippy::many_single_char_names,
    clippy::cast_possible_wrap
)]

use rvs_sched::{
    Algo, Compat, Dest, Dir, Flags, Fwd, Ipvs, Packet, Persistence, Proto, Service, SvcKey,
    TcpFlags, Verdict,
};
use std::net::IpAddr;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

const VIP: &str = "198.18.0.100";

fn director(algo: Algo, fwd: Fwd, rs: &[&str], pers: Option<Persistence>) -> Ipvs {
    let mut ipvs = Ipvs::new();
    let key = SvcKey::Addr {
        proto: Proto::Tcp,
        addr: ip(VIP),
        port: 80,
    };
    let mut s = Service::new(key, algo, Flags::default(), Compat::default());
    s.persistence = pers;
    for a in rs {
        s.add_dest(Dest::new(ip(a), 80, 1, fwd)).unwrap();
    }
    ipvs.services.push(s);
    let ukey = SvcKey::Addr {
        proto: Proto::Udp,
        addr: ip(VIP),
        port: 53,
    };
    let mut u = Service::new(ukey, Algo::Rr, Flags::default(), Compat::default());
    for a in rs {
        u.add_dest(Dest::new(ip(a), 53, 1, fwd)).unwrap();
    }
    ipvs.services.push(u);
    ipvs
}

fn tcp(src: &str, sport: u16, flags: TcpFlags) -> Packet {
    Packet {
        proto: Proto::Tcp,
        src: ip(src),
        sport,
        dst: ip(VIP),
        dport: 80,
        fwmark: 0,
        tcp: flags,
        dir: Dir::In,
    }
}

fn reply(rs: &str, client: &str, cport: u16, flags: TcpFlags) -> Packet {
    Packet {
        proto: Proto::Tcp,
        src: ip(rs),
        sport: 80,
        dst: ip(client),
        dport: cport,
        fwmark: 0,
        tcp: flags,
        dir: Dir::Out,
    }
}

fn counters(ipvs: &Ipvs) -> Vec<(u32, u32)> {
    ipvs.services[0]
        .dests()
        .map(|(_, d)| (d.active, d.inactive))
        .collect()
}

#[test]
fn nat_tcp_lifecycle_and_expiry() {
    let mut v = director(Algo::Rr, Fwd::Masq, &["198.18.0.1"], None);
    let Verdict::Forward {
        conn: Some(c),
        new: true,
        ..
    } = v.packet(0, &tcp("198.18.1.1", 4000, TcpFlags::SYN))
    else {
        panic!()
    };
    assert_eq!(v.state_of(c), Some("SYN_RECV"));
    assert_eq!(counters(&v), vec![(1, 0)], "SYN_RECV counts as active");
    v.packet(
        10,
        &reply("198.18.0.1", "198.18.1.1", 4000, TcpFlags::SYN_ACK),
    );
    v.packet(20, &tcp("198.18.1.1", 4000, TcpFlags::ACK));
    assert_eq!(v.state_of(c), Some("ESTABLISHED"));
    // A non-SYN packet of another client is not a connection.
    assert_eq!(
        v.packet(30, &tcp("198.18.1.2", 4000, TcpFlags::ACK)),
        Verdict::NoConn { svc: 0 }
    );
    // Idle for the ESTABLISHED timeout (900 s): still there just before, gone after.
    v.advance(20 + 899_000);
    assert!(v.is_live(c));
    v.advance(20 + 900_100);
    assert!(!v.is_live(c));
    assert_eq!(counters(&v), vec![(0, 0)]);
}

#[test]
fn close_moves_active_to_inactive() {
    let mut v = director(Algo::Rr, Fwd::Masq, &["198.18.0.1"], None);
    let Verdict::Forward { conn: Some(c), .. } =
        v.packet(0, &tcp("198.18.1.1", 4000, TcpFlags::SYN))
    else {
        panic!()
    };
    v.packet(
        1,
        &reply("198.18.0.1", "198.18.1.1", 4000, TcpFlags::SYN_ACK),
    );
    v.packet(2, &tcp("198.18.1.1", 4000, TcpFlags::ACK));
    v.packet(3, &tcp("198.18.1.1", 4000, TcpFlags::FIN_ACK));
    assert_eq!(v.state_of(c), Some("CLOSE_WAIT"));
    v.packet(
        4,
        &reply("198.18.0.1", "198.18.1.1", 4000, TcpFlags::FIN_ACK),
    );
    assert_eq!(v.state_of(c), Some("TIME_WAIT"));
    assert_eq!(counters(&v), vec![(0, 1)]);
    // TIME_WAIT lasts 120 s.
    v.advance(4 + 121_000);
    assert!(!v.is_live(c));
}

#[test]
fn dr_uses_the_input_only_table() {
    let mut v = director(Algo::Rr, Fwd::Route, &["198.18.0.1"], None);
    let Verdict::Forward { conn: Some(c), .. } =
        v.packet(0, &tcp("198.18.1.1", 4000, TcpFlags::SYN))
    else {
        panic!()
    };
    v.packet(1, &tcp("198.18.1.1", 4000, TcpFlags::ACK));
    assert_eq!(v.state_of(c), Some("ESTABLISHED"));
    v.packet(2, &tcp("198.18.1.1", 4000, TcpFlags::FIN_ACK));
    assert_eq!(
        v.state_of(c),
        Some("FIN_WAIT"),
        "INPUT-ONLY: ES + fin → FIN_WAIT"
    );
    assert_eq!(counters(&v), vec![(0, 1)]);
}

#[test]
fn udp_is_inactive_with_its_timeout() {
    let mut v = director(Algo::Rr, Fwd::Masq, &["198.18.0.1"], None);
    v.timeouts.set(0, 0, 30);
    let p = Packet {
        proto: Proto::Udp,
        src: ip("198.18.1.1"),
        sport: 5000,
        dst: ip(VIP),
        dport: 53,
        fwmark: 0,
        tcp: TcpFlags::default(),
        dir: Dir::In,
    };
    let Verdict::Forward {
        conn: Some(c),
        svc: 1,
        ..
    } = v.packet(0, &p)
    else {
        panic!()
    };
    let (a, i) = v.services[1]
        .dests()
        .map(|(_, d)| (d.active, d.inactive))
        .next()
        .unwrap();
    assert_eq!((a, i), (0, 1));
    v.advance(29_000);
    assert!(v.is_live(c));
    v.advance(30_100);
    assert!(!v.is_live(c));
}

#[test]
fn persistence_templates() {
    let pers = Persistence {
        timeout_s: 60,
        prefix: 24,
    };
    let mut v = director(
        Algo::Rr,
        Fwd::Route,
        &["198.18.0.1", "198.18.0.2"],
        Some(pers),
    );
    let dest_of = |v: &mut Ipvs, t: u64, src: &str, port: u16| match v
        .packet(t, &tcp(src, port, TcpFlags::SYN))
    {
        Verdict::Forward { dest, .. } => dest,
        other => panic!("{other:?}"),
    };
    let d1 = dest_of(&mut v, 0, "198.18.1.1", 1000);
    // Same client, another port; and a neighbour in the same /24: the same real server.
    assert_eq!(dest_of(&mut v, 1, "198.18.1.1", 1001), d1);
    assert_eq!(dest_of(&mut v, 2, "198.18.1.77", 1000), d1);
    // Another /24 is scheduled anew (rr moves on).
    assert_ne!(dest_of(&mut v, 3, "198.18.2.1", 1000), d1);
    assert_eq!(v.template_count(), 2);
    // Templates outlive their connections: establish one (900 s), and the templates are
    // still there after their own 60 s; they go within a timeout after the last conn.
    v.packet(4, &tcp("198.18.1.1", 1000, TcpFlags::ACK));
    v.advance(61_000);
    // The other /24's template and its SYN_RECV conn fall due in the same tick; as with
    // the kernel's timers, which fires first decides whether the template gets its 60 s
    // "expire later" once more.
    assert!(
        (1..=2).contains(&v.template_count()),
        "the /24 with an established conn keeps its template"
    );
    assert_eq!(v.conn_count(), 1);
    v.advance(904_100);
    assert_eq!(v.conn_count(), 0);
    v.advance(904_100 + 60_200);
    assert_eq!(v.template_count(), 0);
}

#[test]
fn quiescent_template_and_nodest_conn() {
    let pers = Persistence {
        timeout_s: 300,
        prefix: 32,
    };
    let mut v = director(
        Algo::Rr,
        Fwd::Route,
        &["198.18.0.1", "198.18.0.2"],
        Some(pers),
    );
    let Verdict::Forward { dest: d1, .. } = v.packet(0, &tcp("198.18.1.1", 1000, TcpFlags::SYN))
    else {
        panic!()
    };
    v.services[0].edit_dest(d1, 0, 0, 0).unwrap();
    // By default a quiesced template still holds.
    let Verdict::Forward { dest, .. } = v.packet(1, &tcp("198.18.1.1", 1001, TcpFlags::SYN)) else {
        panic!()
    };
    assert_eq!(dest, d1);
    v.params.expire_quiescent_template = true;
    let Verdict::Forward { dest, .. } = v.packet(2, &tcp("198.18.1.1", 1002, TcpFlags::SYN)) else {
        panic!()
    };
    assert_ne!(dest, d1);
    // expire_nodest_conn: deleting the dest ends its connections at their next packet.
    v.services[0].del_dest(d1).unwrap();
    let Verdict::Forward { dest, .. } = v.packet(3, &tcp("198.18.1.1", 1000, TcpFlags::ACK)) else {
        panic!()
    };
    assert_eq!(
        dest, d1,
        "without expire_nodest_conn the old server keeps the connection"
    );
    v.params.expire_nodest_conn = true;
    assert_eq!(
        v.packet(4, &tcp("198.18.1.1", 1000, TcpFlags::ACK)),
        Verdict::DestGone { svc: 0 }
    );
}

#[test]
fn syn_on_time_wait_reschedules() {
    let mut v = director(Algo::Rr, Fwd::Masq, &["198.18.0.1", "198.18.0.2"], None);
    let Verdict::Forward {
        dest: d1,
        conn: Some(c1),
        ..
    } = v.packet(0, &tcp("198.18.1.1", 1000, TcpFlags::SYN))
    else {
        panic!()
    };
    v.packet(
        1,
        &reply(
            &v.services[0].dest(d1).addr.to_string(),
            "198.18.1.1",
            1000,
            TcpFlags::SYN_ACK,
        ),
    );
    v.close(2, c1);
    assert_eq!(v.state_of(c1), Some("TIME_WAIT"));
    let Verdict::Forward {
        dest: d2,
        new: true,
        ..
    } = v.packet(3, &tcp("198.18.1.1", 1000, TcpFlags::SYN))
    else {
        panic!()
    };
    assert_ne!(d1, d2, "rr moved on to the other server");
}

#[test]
fn clock_jump_expires_everything() {
    let mut v = director(Algo::Rr, Fwd::Masq, &["198.18.0.1"], None);
    for i in 0..100 {
        v.packet(0, &tcp("198.18.1.1", 1000 + i, TcpFlags::SYN));
    }
    assert_eq!(v.conn_count(), 100);
    v.advance(10 * 24 * 3600 * 1000);
    assert_eq!(v.conn_count(), 0);
    assert_eq!(counters(&v), vec![(0, 0)]);
}

#[test]
fn not_a_service() {
    let mut v = director(Algo::Rr, Fwd::Masq, &["198.18.0.1"], None);
    let mut p = tcp("198.18.1.1", 1, TcpFlags::SYN);
    p.dport = 81;
    assert_eq!(v.packet(0, &p), Verdict::NotService);
}

#[test]
fn apply_reconciles_by_difference() {
    use rvs_sched::desired::{Desired, DesiredDest, DesiredService};
    let dd = |a: &str, w: i32| DesiredDest {
        tun: rvs_sched::Tun::default(),
        addr: ip(a),
        port: 80,
        weight: w,
        base_weight: w,
        fwd: Fwd::Masq,
        u_threshold: 0,
        l_threshold: 0,
    };
    let svc = |dests: Vec<DesiredDest>| DesiredService {
        key: SvcKey::Addr {
            proto: Proto::Tcp,
            addr: ip(VIP),
            port: 80,
        },
        algo: Algo::Rr,
        flags: Flags::default(),
        persistence: None,
        mh_size: None,
        dests,
        sorry: None,
        connect_timeout: std::time::Duration::from_secs(5),
        proxy_protocol: None,
        local_addrs: Vec::new(),
        fwd: Fwd::Masq,
    };
    let mut v = Ipvs::new();
    let want = Desired {
        services: vec![svc(vec![dd("198.18.0.1", 1), dd("198.18.0.2", 1)])],
        ..Desired::default()
    };
    let r = v.apply(&want, Compat::default());
    assert_eq!((r.services_added, r.dests_added), (1, 2));
    // A connection to .2 (rr starts at the newest).
    let Verdict::Forward {
        dest: d2,
        conn: Some(c),
        ..
    } = v.packet(0, &tcp("198.18.1.1", 1, TcpFlags::SYN))
    else {
        panic!()
    };
    assert_eq!(v.services[0].dest(d2).addr, ip("198.18.0.2"));
    // Reload: .1 removed, .3 added, .2 unchanged: its connection and counters survive.
    let want2 = Desired {
        services: vec![svc(vec![dd("198.18.0.2", 1), dd("198.18.0.3", 1)])],
        ..Desired::default()
    };
    let r = v.apply(&want2, Compat::default());
    assert_eq!(
        (
            r.services_added,
            r.dests_added,
            r.dests_removed,
            r.dests_changed
        ),
        (0, 1, 1, 0)
    );
    assert!(v.is_live(c));
    assert_eq!(v.services[0].dest(d2).active, 1);
    // The same desired state again changes nothing.
    assert_eq!(
        v.apply(&want2, Compat::default()),
        rvs_sched::table::ApplyReport::default()
    );
    // Service removed: no new connections, the old one still forwards.
    let r = v.apply(&Desired::default(), Compat::default());
    assert_eq!(r.services_removed, 1);
    assert_eq!(
        v.packet(1, &tcp("198.18.1.9", 1, TcpFlags::SYN)),
        Verdict::NotService
    );
    assert!(
        matches!(v.packet(2, &tcp("198.18.1.1", 1, TcpFlags::ACK)), Verdict::Forward { dest, .. } if dest == d2)
    );
}

#[test]
fn connections_are_listed_in_bounded_chunks() {
    let mut v = director(Algo::Rr, Fwd::Masq, &["198.18.0.1", "198.18.0.2"], None);
    for port in 4000..4010 {
        v.packet(0, &tcp("198.18.1.1", port, TcpFlags::SYN));
    }
    let all = v.connections(0);
    assert_eq!(all.len(), 10);
    // Walking three slots at a time finds the same entries, in the same order.
    let (mut walked, mut from, mut chunks) = (Vec::new(), Some(0), 0);
    while let Some(f) = from {
        let (list, next) = v.connections_from(0, f, 3);
        assert!(list.len() <= 3);
        walked.extend(list.into_iter().map(|c| c.cport));
        from = next;
        chunks += 1;
    }
    assert_eq!(walked, all.iter().map(|c| c.cport).collect::<Vec<_>>());
    assert!(chunks >= 4, "10 entries in chunks of 3: {chunks}");
    // Past the end: nothing, and no next.
    assert_eq!(v.connections_from(0, 1000, 3), (Vec::new(), None));
}
