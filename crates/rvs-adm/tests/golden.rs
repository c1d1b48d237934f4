//! Expected texts built from ipvsadm 1.31's format strings and the spec's examples
//! (`ipvsadm.md` §5), trailing spaces included — not from rvs's own output.

#![allow(clippy::unwrap_used)]

use rvs_adm::{largenum, list, Dest, Format, Fwd, ListOpts, Proto, Service, Stats, SvcKey};
use std::net::IpAddr;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn dest(a: &str, port: u16, fwd: Fwd, weight: i32, active: u32, inactive: u32) -> Dest {
    Dest {
        addr: ip(a),
        port,
        fwd,
        weight,
        active,
        inactive,
        persist: 0,
        u_threshold: 0,
        l_threshold: 0,
        tun: None,
        stats: Stats::default(),
    }
}

fn svc(id: SvcKey, sched: &str, dests: Vec<Dest>) -> Service {
    Service {
        id,
        sched: sched.into(),
        flags: [false; 3],
        persistent: None,
        netmask: u32::MAX,
        pe: None,
        ops: false,
        stats: Stats::default(),
        dests,
    }
}

fn tcp(a: &str, port: u16) -> SvcKey {
    SvcKey::Addr {
        proto: Proto::Tcp,
        addr: ip(a),
        port,
    }
}

#[test]
fn default_listing_example() {
    let mut web = svc(
        tcp("192.168.10.100", 80),
        "wlc",
        vec![
            dest("192.168.10.12", 80, Fwd::Masq, 3, 12, 40),
            dest("192.168.10.11", 80, Fwd::Route, 1, 0, 0),
        ],
    );
    web.persistent = Some(360);
    let dns = svc(
        SvcKey::Addr {
            proto: Proto::Udp,
            addr: ip("192.168.10.100"),
            port: 53,
        },
        "rr",
        vec![dest("192.168.10.21", 53, Fwd::Masq, 1, 0, 7)],
    );
    let mut fwm = svc(
        SvcKey::Fwmark { mark: 1, v6: false },
        "sh",
        vec![dest("192.168.10.31", 0, Fwd::Tunnel, 1, 2, 1)],
    );
    fwm.flags = [true, true, false];
    let want = concat!(
        "IP Virtual Server version 1.2.1 (size=4096)\n",
        "Prot LocalAddress:Port Scheduler Flags\n",
        "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n",
        "TCP  192.168.10.100:80 wlc persistent 360\n",
        "  -> 192.168.10.11:80             Route   1      0          0         \n",
        "  -> 192.168.10.12:80             Masq    3      12         40        \n",
        "UDP  192.168.10.100:53 rr\n",
        "  -> 192.168.10.21:53             Masq    1      0          7         \n",
        "FWM  1 sh (sh-fallback,sh-port)\n",
        "  -> 192.168.10.31:0              Tunnel  1      2          1         \n"
    );
    assert_eq!(list(&[fwm, dns, web], ListOpts::default()), want);
}

#[test]
fn stats_and_rate_examples() {
    let st = |conns, inp, inb, outb| Stats {
        conns,
        in_pkts: inp,
        out_pkts: 0,
        in_bytes: inb,
        out_bytes: outb,
        ..Stats::default()
    };
    let mut a = dest("192.168.10.11", 80, Fwd::Route, 1, 0, 0);
    a.stats = st(600, 30_000, 1_700_000, 61_000_000_000);
    let mut b = dest("192.168.10.12", 80, Fwd::Route, 1, 0, 0);
    b.stats = st(634, 26_789, 1_756_789, 62_456_000_000);
    let mut s = svc(tcp("192.168.10.100", 80), "wlc", vec![b.clone(), a.clone()]);
    s.stats = st(1234, 56_789, 3_456_789, 123_456_000_000);
    let want = concat!(
        "IP Virtual Server version 1.2.1 (size=4096)\n",
        "Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes\n",
        "  -> RemoteAddress:Port\n",
        "TCP  192.168.10.100:80                1234    56789        0  3456789     123G\n",
        "  -> 192.168.10.11:80                  600    30000        0  1700000   61000M\n",
        "  -> 192.168.10.12:80                  634    26789        0  1756789   62456M\n"
    );
    assert_eq!(
        list(
            &[s.clone()],
            ListOpts {
                format: Format::Stats,
                ..ListOpts::default()
            }
        ),
        want
    );
    let rate = |cps, pps, bps| Stats {
        cps,
        in_pps: pps,
        in_bps: bps,
        ..Stats::default()
    };
    a.stats = rate(6, 170, 22_500);
    b.stats = rate(6, 170, 22_500);
    let mut s = svc(tcp("192.168.10.100", 80), "wlc", vec![b, a]);
    s.stats = rate(12, 340, 45_000);
    let want = concat!(
        "IP Virtual Server version 1.2.1 (size=4096)\n",
        "Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS\n",
        "  -> RemoteAddress:Port\n",
        "TCP  192.168.10.100:80                  12      340        0    45000        0\n",
        "  -> 192.168.10.11:80                    6      170        0    22500        0\n",
        "  -> 192.168.10.12:80                    6      170        0    22500        0\n"
    );
    assert_eq!(
        list(
            &[s],
            ListOpts {
                format: Format::Rate,
                ..ListOpts::default()
            }
        ),
        want
    );
}

#[test]
fn thresholds_persistent_and_tunnel_examples() {
    let mut d = dest("192.168.10.11", 80, Fwd::Route, 1, 0, 0);
    d.u_threshold = 100;
    d.l_threshold = 50;
    let s = svc(tcp("192.168.10.100", 80), "wlc", vec![d]);
    let body = rvs_adm::list_body(
        &[s],
        ListOpts {
            format: Format::Thresholds,
            ..ListOpts::default()
        },
    );
    assert_eq!(body, "Prot LocalAddress:Port            Uthreshold Lthreshold ActiveConn InActConn \n  -> RemoteAddress:Port\nTCP  192.168.10.100:80 wlc\n  -> 192.168.10.11:80             100        50         0          0         \n");
    let mut d = dest("192.168.10.11", 80, Fwd::Route, 1, 0, 0);
    d.persist = 3;
    let mut s = svc(tcp("192.168.10.100", 80), "wlc", vec![d]);
    s.persistent = Some(360);
    let body = rvs_adm::list_body(
        &[s],
        ListOpts {
            format: Format::PersistentConn,
            ..ListOpts::default()
        },
    );
    assert_eq!(body, "Prot LocalAddress:Port            Weight    PersistConn ActiveConn InActConn \n  -> RemoteAddress:Port\nTCP  192.168.10.100:80 wlc persistent 360\n  -> 192.168.10.11:80             1         3           0          0         \n");
    let mut t = dest("192.168.10.31", 80, Fwd::Tunnel, 1, 0, 0);
    t.tun = Some(rvs_adm::Tun {
        kind: rvs_adm::Tun::GUE,
        port: 6080,
        flags: 1,
    });
    let s = svc(
        tcp("192.168.10.100", 80),
        "rr",
        vec![dest("192.168.10.32", 80, Fwd::Route, 1, 0, 0), t],
    );
    let body = rvs_adm::list_body(
        &[s],
        ListOpts {
            format: Format::TunInfo,
            ..ListOpts::default()
        },
    );
    assert_eq!(body, "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn\nTCP  192.168.10.100:80 rr\n  -> 192.168.10.31:80             Tunnel  gue:6080:+c   1      0          0         \n  -> 192.168.10.32:80             Route   n/a           1      0          0         \n");
}

#[test]
fn largenum_scaling_and_the_sort_quirk() {
    assert_eq!(largenum(99_999_999, false), " 99999999");
    assert_eq!(largenum(100_000_000, false), "  100000K");
    assert_eq!(largenum(123_456_000_000, false), "     123G");
    assert_eq!(largenum(123_456_000_000, true), " 123456000000");
    assert_eq!(largenum(5, true), "        5");
    // 10.0.0.1 sorts after 192.168.0.1: (int)(0x0A000001 - 0xC0A80001) > 0.
    let a = svc(tcp("10.0.0.1", 80), "rr", vec![]);
    let b = svc(tcp("192.168.0.1", 80), "rr", vec![]);
    let out = list(&[a, b], ListOpts::default());
    let i10 = out.find("10.0.0.1").unwrap();
    let i192 = out.find("192.168.0.1").unwrap();
    assert!(i192 < i10, "{out}");
    // --nosort keeps the given (kernel) order.
    let a = svc(tcp("10.0.0.1", 80), "rr", vec![]);
    let b = svc(tcp("192.168.0.1", 80), "rr", vec![]);
    let out = list(
        &[a, b],
        ListOpts {
            nosort: true,
            ..ListOpts::default()
        },
    );
    assert!(out.find("10.0.0.1").unwrap() < out.find("192.168.0.1").unwrap());
}

/// The spec's `ipvsadm -Lnc` example, entry for entry.
#[test]
fn connection_listing_example() {
    use rvs_adm::Conn;
    let c = |proto: &str, exp: u64, state: &str, src: &str, vip: &str, rs: &str| {
        let sa = |s: &str| s.parse::<std::net::SocketAddr>().unwrap();
        Conn {
            proto: proto.into(),
            expires_s: exp,
            state: state.into(),
            caddr: sa(src).ip(),
            cport: sa(src).port(),
            vaddr: sa(vip).ip(),
            vport: sa(vip).port(),
            daddr: sa(rs).ip(),
            dport: sa(rs).port(),
        }
    };
    let conns = [
        c(
            "TCP",
            14 * 60 + 57,
            "ESTABLISHED",
            "10.1.2.3:51234",
            "192.168.10.100:80",
            "192.168.10.11:80",
        ),
        c(
            "TCP",
            58,
            "FIN_WAIT",
            "10.1.2.4:40000",
            "192.168.10.100:80",
            "192.168.10.12:80",
        ),
        c(
            "UDP",
            4 * 60 + 59,
            "UDP",
            "10.1.2.5:5353",
            "192.168.10.100:53",
            "192.168.10.21:53",
        ),
        c(
            "TCP",
            5 * 60 + 59,
            "NONE",
            "10.1.2.3:0",
            "192.168.10.100:80",
            "192.168.10.11:80",
        ),
    ];
    let want = "IPVS connection entries
pro expire state       source             virtual            destination
TCP 14:57  ESTABLISHED 10.1.2.3:51234     192.168.10.100:80  192.168.10.11:80
TCP 00:58  FIN_WAIT    10.1.2.4:40000     192.168.10.100:80  192.168.10.12:80
UDP 04:59  UDP         10.1.2.5:5353      192.168.10.100:53  192.168.10.21:53
TCP 05:59  NONE        10.1.2.3:0         192.168.10.100:80  192.168.10.11:80
";
    assert_eq!(rvs_adm::list_conns(&conns), want);
    // --persistent-conn: ipvsadm's title with the persistence engine columns,
    // "pro expire %-11s %-18s %-18s %-18s %-16s %s"; entries without PE data unchanged.
    let with_pe = rvs_adm::list_conns_named(&conns, &rvs_adm::Numeric, true);
    let mut lines = with_pe.lines();
    assert_eq!(lines.next(), Some("IPVS connection entries"));
    assert_eq!(
        lines.next(),
        Some(
            "pro expire state       source             virtual            destination        pe name          pe_data"
        )
    );
    assert_eq!(
        lines.collect::<Vec<_>>(),
        want.lines().skip(2).collect::<Vec<_>>()
    );
}
