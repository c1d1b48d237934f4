//! The XDP program on frames built with etherparse, run by the kernel (`BPF_PROG_RUN`):
//! DR rewrite bytes, TUN encapsulation, NAT rewrites with checksums checked against a
//! full recomputation, frames that must pass untouched, flow affinity across changes, and
//! scheduling decisions equal to kernel IPVS's tables and hashes.
//!
//! Needs root (to load BPF) and the program (clang at build time); in CI (CI=true) a
//! missing prerequisite fails.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::too_many_lines,
    clippy::many_single_char_names,
    clippy::cast_possible_truncation
)]

use rvs_sched::desired::DesiredDest;
use rvs_sched::{Algo, Fwd, Persistence, Proto};
use rvs_xdp::{XDP_DROP, XDP_PASS, XDP_TX};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

mod common;

use common::*;

#[test]
#[ignore = "needs root (loads BPF) and clang: ./test.sh runs it as root"]
fn dr_rewrites_only_the_macs_and_keeps_flows() {
    let mut x = load();
    let d = desired(vec![service(
        "198.18.0.50",
        80,
        Proto::Tcp,
        Algo::Rr,
        vec![
            dest("198.18.0.11", 80, 1, Fwd::Route),
            dest("198.18.0.12", 80, 1, Fwd::Route),
        ],
    )]);
    apply(&mut x, &d);
    let f = tcp4(
        [198, 18, 0, 100],
        40000,
        [198, 18, 0, 50],
        80,
        b"GET / HTTP/1.0\r\n\r\n",
    );
    let (v, out) = x.run(&f).unwrap();
    assert_eq!(v, XDP_TX);
    assert_eq!(&out[6..12], &DIRECTOR_MAC, "source MAC: the director's");
    let first = out[5];
    assert!(
        first == 11 || first == 12,
        "destination MAC is a real server's"
    );
    assert_eq!(&out[..5], &mac_of(first)[..5]);
    assert_eq!(&out[12..], &f[12..], "nothing but the MACs changes in DR");
    // The same flow sticks; the next flow goes to the other real server (rr).
    assert_eq!(x.run(&f).unwrap().1[5], first);
    let g = tcp4([198, 18, 0, 100], 40001, [198, 18, 0, 50], 80, b"");
    assert_ne!(x.run(&g).unwrap().1[5], first);
    // Counters: 3 packets, 2 connections.
    let (svcs, _) = x.counters().unwrap();
    let c = svcs.values().next().unwrap();
    assert_eq!((c.pkts_in, c.conns), (3, 2));

    // The first real server drained (weight 0): new flows avoid it, the old flow stays.
    let other = if first == 11 {
        "198.18.0.12"
    } else {
        "198.18.0.11"
    };
    let drained = if first == 11 {
        "198.18.0.11"
    } else {
        "198.18.0.12"
    };
    let d2 = desired(vec![service(
        "198.18.0.50",
        80,
        Proto::Tcp,
        Algo::Rr,
        vec![
            dest(drained, 80, 0, Fwd::Route),
            dest(other, 80, 1, Fwd::Route),
        ],
    )]);
    apply(&mut x, &d2);
    assert_eq!(
        x.run(&f).unwrap().1[5],
        first,
        "established flow keeps its real server"
    );
    for p in 41000..41010 {
        let n = tcp4([198, 18, 0, 100], p, [198, 18, 0, 50], 80, b"");
        assert_ne!(
            x.run(&n).unwrap().1[5],
            first,
            "no new flow to a drained server"
        );
    }
    // Removed altogether: still the established flow's.
    let d3 = desired(vec![service(
        "198.18.0.50",
        80,
        Proto::Tcp,
        Algo::Rr,
        vec![dest(other, 80, 1, Fwd::Route)],
    )]);
    apply(&mut x, &d3);
    assert_eq!(x.run(&f).unwrap().1[5], first);
    // The service removed: its traffic goes to the kernel.
    apply(&mut x, &desired(vec![]));
    assert_eq!(x.run(&f).unwrap().0, XDP_PASS);
}

#[test]
#[ignore = "needs root (loads BPF) and clang: ./test.sh runs it as root"]
fn frames_that_are_not_ours_pass_untouched() {
    let mut x = load();
    let d = desired(vec![service(
        "198.18.0.50",
        80,
        Proto::Tcp,
        Algo::Rr,
        vec![dest("198.18.0.11", 80, 1, Fwd::Route)],
    )]);
    apply(&mut x, &d);
    let check = |f: &[u8], why: &str| {
        let (v, out) = x.run(f).unwrap();
        assert_eq!(v, XDP_PASS, "{why}");
        assert_eq!(out, f, "{why}: untouched");
    };
    check(
        &tcp4([198, 18, 0, 100], 1, [198, 18, 0, 51], 80, b""),
        "another address",
    );
    check(
        &tcp4([198, 18, 0, 100], 1, [198, 18, 0, 50], 81, b""),
        "another port",
    );
    check(
        &udp4([198, 18, 0, 100], 1, [198, 18, 0, 50], 80, b""),
        "UDP to a TCP service",
    );
    let good = tcp4([198, 18, 0, 100], 1, [198, 18, 0, 50], 80, b"");
    check(&good[..30], "truncated inside the IP header");
    check(&good[..40], "truncated inside the TCP header");
    // ARP.
    let mut arp = vec![0xff; 6];
    arp.extend_from_slice(&CLIENT_MAC);
    arp.extend_from_slice(&[0x08, 0x06]);
    arp.extend_from_slice(&[0; 28]);
    check(&arp, "ARP");
    // IPv4 options (IHL 6): the kernel's.
    let mut opt = good[..14].to_vec();
    let mut ip = good[14..34].to_vec();
    ip[0] = 0x46;
    let tot = u16::from_be_bytes([ip[2], ip[3]]) + 4;
    ip[2..4].copy_from_slice(&tot.to_be_bytes());
    opt.extend_from_slice(&ip);
    opt.extend_from_slice(&[1, 1, 1, 0]);
    opt.extend_from_slice(&good[34..]);
    check(&opt, "IPv4 options");
    // A fragment.
    let mut frag = good.clone();
    frag[20] |= 0x20; // more fragments
    check(&frag, "IPv4 fragment");
    // VLAN tag.
    let mut vlan = good[..12].to_vec();
    vlan.extend_from_slice(&[0x81, 0x00, 0, 5]);
    vlan.extend_from_slice(&good[12..]);
    check(&vlan, "802.1Q");
    // A frame for another host's MAC (a switch flooding, promiscuous mode): forwarding it
    // would duplicate that host's work and teach the switch its MAC on our port.
    let mut other = good.clone();
    other[..6].copy_from_slice(&[2, 0, 0, 0, 0, 2]);
    check(&other, "another host's MAC");
    // A VRRP virtual MAC (use_vmac) is ours: forwarded.
    let mut vmac = good.clone();
    vmac[..6].copy_from_slice(&[0, 0, 0x5e, 0, 1, 51]);
    assert_eq!(x.run(&vmac).unwrap().0, XDP_TX, "VRRP virtual MAC");
    assert_eq!(x.run(&good).unwrap().0, XDP_TX, "the director's own MAC");
}

#[test]
#[ignore = "needs root (loads BPF) and clang: ./test.sh runs it as root"]
fn tun_encapsulates_in_ip() {
    let mut x = load();
    let d = desired(vec![
        service(
            "198.18.0.50",
            80,
            Proto::Tcp,
            Algo::Rr,
            vec![dest("198.18.0.11", 80, 1, Fwd::Tunnel)],
        ),
        service(
            "fd00:198:18::50",
            80,
            Proto::Tcp,
            Algo::Rr,
            vec![dest("fd00:198:18::11", 80, 1, Fwd::Tunnel)],
        ),
    ]);
    apply(&mut x, &d);
    let f = tcp4([198, 18, 0, 100], 40000, [198, 18, 0, 50], 80, b"hello");
    let (v, out) = x.run(&f).unwrap();
    assert_eq!(v, XDP_TX);
    assert_eq!(out.len(), f.len() + 20);
    assert_eq!(&out[..6], &mac_of(11));
    assert_eq!(&out[6..12], &DIRECTOR_MAC);
    assert_eq!(&out[12..14], &[0x08, 0x00]);
    let (outer, rest) = etherparse::Ipv4Header::from_slice(&out[14..]).unwrap();
    assert_eq!(outer.protocol, etherparse::IpNumber::IPV4);
    assert_eq!(outer.source, [198, 18, 0, 1]);
    assert_eq!(outer.destination, [198, 18, 0, 11]);
    assert_eq!(usize::from(outer.total_len), f.len() - 14 + 20);
    assert_eq!(outer.header_checksum, outer.calc_header_checksum());
    assert_eq!(rest, &f[14..], "the inner packet unchanged");

    let f6 = tcp6(v6(100), 40000, v6(0x50), 80, b"hello");
    let (v, out) = x.run(&f6).unwrap();
    assert_eq!(v, XDP_TX);
    assert_eq!(out.len(), f6.len() + 40);
    assert_eq!(&out[12..14], &[0x86, 0xdd]);
    let (outer, rest) = etherparse::Ipv6Header::from_slice(&out[14..]).unwrap();
    assert_eq!(outer.next_header, etherparse::IpNumber::IPV6);
    assert_eq!(outer.source, v6(1));
    assert_eq!(outer.destination, v6(0x11));
    assert_eq!(usize::from(outer.payload_length), f6.len() - 14);
    assert_eq!(rest, &f6[14..]);
}

#[test]
#[ignore = "needs root (loads BPF) and clang: ./test.sh runs it as root"]
fn nat_rewrites_both_ways_with_correct_checksums() {
    let mut x = load();
    let d = desired(vec![
        service(
            "198.18.0.50",
            80,
            Proto::Tcp,
            Algo::Rr,
            vec![dest("198.18.1.11", 8080, 1, Fwd::Masq)],
        ),
        service(
            "198.18.0.50",
            53,
            Proto::Udp,
            Algo::Rr,
            vec![dest("198.18.1.12", 5353, 1, Fwd::Masq)],
        ),
        service(
            "fd00:198:18::50",
            80,
            Proto::Tcp,
            Algo::Rr,
            vec![dest("fd00:198:18:1::11", 8080, 1, Fwd::Masq)],
        ),
        service(
            "fd00:198:18::50",
            53,
            Proto::Udp,
            Algo::Rr,
            vec![dest("fd00:198:18:1::12", 5353, 1, Fwd::Masq)],
        ),
    ]);
    apply(&mut x, &d);
    let cases: Vec<(Vec<u8>, &str, u16)> = vec![
        (
            tcp4([198, 18, 0, 100], 40000, [198, 18, 0, 50], 80, b"GET /"),
            "198.18.1.11",
            8080,
        ),
        (
            udp4([198, 18, 0, 100], 40001, [198, 18, 0, 50], 53, b"query"),
            "198.18.1.12",
            5353,
        ),
        (
            tcp6(v6(100), 40002, v6(0x50), 80, b"GET /"),
            "fd00:198:18:1::11",
            8080,
        ),
        (
            udp6(v6(100), 40003, v6(0x50), 53, b"query"),
            "fd00:198:18:1::12",
            5353,
        ),
    ];
    for (f, real, rport) in cases {
        let (client, cport) = src_of(&f);
        let (vip, vport) = dst_of(&f);
        let (v, out) = x.run(&f).unwrap();
        assert_eq!(v, XDP_TX);
        assert_eq!(
            dst_of(&out),
            (real.parse().unwrap(), rport),
            "to the real server"
        );
        assert_eq!(src_of(&out), (client, cport), "from the client");
        assert_checksums(&out);
        // The reply from the real server, as it arrives at the director.
        let real_ip: IpAddr = real.parse().unwrap();
        let reply = match (real_ip, client) {
            (IpAddr::V4(r), IpAddr::V4(c)) if f[23] == 6 => {
                tcp4(r.octets(), rport, c.octets(), cport, b"200 OK")
            }
            (IpAddr::V4(r), IpAddr::V4(c)) => udp4(r.octets(), rport, c.octets(), cport, b"answer"),
            (IpAddr::V6(r), IpAddr::V6(c)) if f[20] == 6 => {
                tcp6(r.octets(), rport, c.octets(), cport, b"200 OK")
            }
            (IpAddr::V6(r), IpAddr::V6(c)) => udp6(r.octets(), rport, c.octets(), cport, b"answer"),
            _ => unreachable!(),
        };
        let (v, back) = x.run(&reply).unwrap();
        assert_eq!(v, XDP_TX, "the reply is rewritten");
        assert_eq!(src_of(&back), (vip, vport), "the reply comes from the VIP");
        assert_eq!(dst_of(&back), (client, cport));
        assert_eq!(&back[..6], &CLIENT_MAC, "back to the client's MAC");
        assert_checksums(&back);
    }
}

/// What kernel IPVS (the `rvs-sched` table, the code `rvs sim` runs) picks for a SYN,
/// after the configurations `history` were applied in turn.
#[test]
#[ignore = "needs root (loads BPF) and clang: ./test.sh runs it as root"]
fn hashing_schedulers_choose_as_kernel_ipvs() {
    let mut x = load();
    // Five real servers, weights 1..5; then the last one drained (weight 0): IPVS keeps
    // its table slots (mh: last_weight), so fallback matters. With and without fallback
    // and port hashing.
    let reals: Vec<DesiredDest> = (11..16)
        .map(|i| dest(&format!("198.18.0.{i}"), 80, i - 10, Fwd::Route))
        .collect();
    let mut drained = reals.clone();
    drained[4].weight = 0;
    let mut port = 80;
    for algo in [Algo::Mh, Algo::Sh, Algo::Dh] {
        for (fallback, hash_port) in [(false, false), (true, false), (true, true)] {
            port += 1;
            let svc = |dests: &[DesiredDest]| {
                let mut s = service("198.18.0.50", port, Proto::Tcp, algo, dests.to_vec());
                s.mh_size = Some(251);
                s.flags.fallback = fallback;
                s.flags.port = hash_port;
                desired(vec![s])
            };
            let (before, d) = (svc(&reals), svc(&drained));
            apply(&mut x, &before);
            apply(&mut x, &d);
            let mut hits = HashMap::new();
            for c in 0..200u8 {
                let client = [198, 18, 2, c];
                let sport = 40000 + u16::from(c);
                let f = tcp4(client, sport, [198, 18, 0, 50], port, b"");
                let (v, out) = x.run(&f).unwrap();
                let want = ipvs_choice(&[&before, &d], client, sport, port);
                let got = (v == XDP_TX).then(|| IpAddr::from([198, 18, 0, out[5]]));
                assert_eq!(
                    got, want,
                    "{algo:?} fallback={fallback} port={hash_port} client {c}"
                );
                *hits.entry(got).or_insert(0) += 1;
            }
            if algo != Algo::Dh {
                assert!(hits.len() >= 3, "{algo:?} spreads clients: {hits:?}");
            }
        }
    }
}

/// Directors of a cluster (issue #21) must pick the same real server for a flow that
/// ECMP moves between them: the `mh` table is a function of the desired state alone.
/// One director saw real server 5 up and then taken to weight 0 by its checks
/// (`inhibit_on_failure`); another started with it already down. The kernel's table
/// would differ (its `last_weight` is the history); theirs do not.
#[test]
#[ignore = "needs root (loads BPF) and clang: ./test.sh runs it as root"]
fn every_director_builds_the_same_maglev_table_whatever_it_has_seen() {
    let (mut seen, mut fresh) = (load(), load());
    let reals: Vec<DesiredDest> = (11..16)
        .map(|i| dest(&format!("198.18.0.{i}"), 80, i - 10, Fwd::Route))
        .collect();
    let mut down = reals.clone();
    down[4].weight = 0;
    let svc = |dests: &[DesiredDest]| {
        let mut s = service("198.18.0.50", 80, Proto::Tcp, Algo::Mh, dests.to_vec());
        s.mh_size = Some(251);
        s.flags.fallback = true;
        s.flags.port = true;
        desired(vec![s])
    };
    apply(&mut seen, &svc(&reals));
    apply(&mut seen, &svc(&down));
    apply(&mut fresh, &svc(&down));
    let mut differ = 0;
    for c in 0..250u8 {
        let f = tcp4(
            [198, 18, 2, c],
            40000 + u16::from(c),
            [198, 18, 0, 50],
            80,
            b"",
        );
        let (a, b) = (seen.run(&f).unwrap(), fresh.run(&f).unwrap());
        assert_eq!(a.0, XDP_TX);
        if a.1[..6] != b.1[..6] {
            differ += 1;
        }
    }
    assert_eq!(
        differ, 0,
        "flows the two directors send to different real servers"
    );
}

#[test]
#[ignore = "needs root (loads BPF) and clang: ./test.sh runs it as root"]
fn persistence_keeps_a_client_on_one_real_server() {
    let mut x = load();
    let mut svc = service(
        "198.18.0.50",
        443,
        Proto::Tcp,
        Algo::Rr,
        vec![
            dest("198.18.0.11", 443, 1, Fwd::Route),
            dest("198.18.0.12", 443, 1, Fwd::Route),
        ],
    );
    svc.persistence = Some(Persistence {
        timeout_s: 300,
        prefix: 24,
    });
    apply(&mut x, &desired(vec![svc]));
    let first = x
        .run(&tcp4([198, 18, 3, 1], 50000, [198, 18, 0, 50], 443, b""))
        .unwrap()
        .1[5];
    for p in 0..20u16 {
        // Other ports and other hosts of the same /24: the same real server.
        let f = tcp4(
            [198, 18, 3, 1 + (p % 3) as u8],
            50001 + p,
            [198, 18, 0, 50],
            443,
            b"",
        );
        assert_eq!(x.run(&f).unwrap().1[5], first);
    }
    // Another /24 is scheduled anew (rr: the other one).
    let other = x
        .run(&tcp4([198, 18, 4, 1], 50000, [198, 18, 0, 50], 443, b""))
        .unwrap()
        .1[5];
    assert_ne!(other, first);
    // The templates, as `-Lc` lists them: one per /24, masked, with its real server.
    let mut t = x.templates(10).unwrap();
    t.sort_by_key(|e| e.client);
    let got: Vec<(IpAddr, u8)> = t
        .iter()
        .map(|e| {
            assert!((298..=300).contains(&e.expires_s), "{e:?}");
            let IpAddr::V4(r) = e.real.0 else {
                panic!("{e:?}")
            };
            (e.client, r.octets()[3])
        })
        .collect();
    let mac_last = |m: u8| if m == mac_of(11)[5] { 11 } else { 12 };
    assert_eq!(
        got,
        vec![
            ("198.18.3.0".parse().unwrap(), mac_last(first)),
            ("198.18.4.0".parse().unwrap(), mac_last(other)),
        ]
    );
}

#[test]
#[ignore = "needs root (loads BPF) and clang: ./test.sh runs it as root"]
fn no_usable_real_server_drops_and_unsupported_schedulers_are_refused() {
    let mut x = load();
    let d = desired(vec![service(
        "198.18.0.50",
        80,
        Proto::Tcp,
        Algo::Rr,
        vec![dest("198.18.0.11", 80, 0, Fwd::Route)],
    )]);
    apply(&mut x, &d);
    let f = tcp4([198, 18, 0, 100], 40000, [198, 18, 0, 50], 80, b"");
    assert_eq!(x.run(&f).unwrap().0, XDP_DROP);
    let bad = desired(vec![service(
        "198.18.0.60",
        80,
        Proto::Tcp,
        Algo::Wlc,
        vec![dest("198.18.0.11", 80, 1, Fwd::Route)],
    )]);
    let e = x.apply(&bad, &macs(&bad)).unwrap_err();
    assert!(e[0].to_string().contains("wlc"), "{}", e[0]);
    let no_mac = desired(vec![service(
        "198.18.0.60",
        80,
        Proto::Tcp,
        Algo::Rr,
        vec![dest("198.18.0.11", 80, 1, Fwd::Route)],
    )]);
    let e = x.apply(&no_mac, &HashMap::new()).unwrap_err();
    assert!(e[0].to_string().contains("no MAC"), "{}", e[0]);
}

/// Connection sync (issue #21): flows and templates another director carried, adopted,
/// go on to the real server they had there — not where this director's own `rr` or
/// persistence would send them — and expire with the time they had left.
#[test]
#[ignore = "needs root (loads BPF) and clang: ./test.sh runs it as root"]
fn adopted_flows_keep_their_real_server() {
    let mut x = load();
    let reals = vec![
        dest("198.18.0.11", 80, 1, Fwd::Route),
        dest("198.18.0.12", 80, 1, Fwd::Route),
    ];
    let svc = service("198.18.0.50", 80, Proto::Tcp, Algo::Rr, reals.clone());
    let key = svc.key;
    let mut persistent = service("198.18.0.50", 443, Proto::Tcp, Algo::Rr, reals);
    persistent.persistence = Some(Persistence {
        timeout_s: 300,
        prefix: 32,
    });
    let pkey = persistent.key;
    apply(&mut x, &desired(vec![svc, persistent]));
    let client = |c: u8, sport: u16| SocketAddr::new(IpAddr::from([198, 18, 2, c]), sport);
    let vip = |port: u16| SocketAddr::new(IpAddr::from([198, 18, 0, 50]), port);
    // Ten flows, all adopted onto .12 (rr alone would send half of them to .11).
    let flows: Vec<rvs_xdp::FlowEntry> = (0..10u8)
        .map(|c| rvs_xdp::FlowEntry {
            proto: 6,
            client: client(c, 40000),
            vip: vip(80),
            svc: key,
            real: (IpAddr::from([198, 18, 0, 12]), 80),
            fin: false,
            expires_s: 800,
            here: true,
            local: None,
        })
        .collect();
    let tmpl = rvs_xdp::TemplateEntry {
        client: IpAddr::from([198, 18, 3, 1]),
        svc: pkey,
        real: (IpAddr::from([198, 18, 0, 11]), 80),
        expires_s: 200,
    };
    let unknown = rvs_xdp::FlowEntry {
        real: (IpAddr::from([198, 18, 0, 99]), 80),
        ..flows[0].clone()
    };
    let mut all = flows.clone();
    all.push(unknown);
    let adopted = x.adopt(&all, &[tmpl], &HashMap::new()).unwrap();
    assert_eq!((adopted.taken, adopted.not_ours), (11, 1), "{adopted:?}");
    // Listed with the time they had left there (until a packet refreshes them), as
    // adopted only: a sync master here would not send them back.
    let listed = x.flows(100).unwrap();
    assert_eq!(listed.len(), 10);
    assert!(
        listed
            .iter()
            .all(|f| (795..=800).contains(&f.expires_s) && !f.here),
        "{listed:?}"
    );
    for c in 0..10u8 {
        let f = tcp4([198, 18, 2, c], 40000, [198, 18, 0, 50], 80, b"x");
        let (v, out) = x.run(&f).unwrap();
        assert_eq!((v, &out[..6]), (XDP_TX, &mac_of(12)[..]), "flow {c}");
    }
    // Forwarded here now: listed as ours, and the other director's (staler) view of
    // them is not adopted over this director's own.
    assert!(x.flows(100).unwrap().iter().all(|f| f.here));
    let stale: Vec<rvs_xdp::FlowEntry> = flows
        .iter()
        .map(|f| rvs_xdp::FlowEntry {
            real: (IpAddr::from([198, 18, 0, 11]), 80),
            expires_s: 3,
            ..f.clone()
        })
        .collect();
    let again = x.adopt(&stale, &[], &HashMap::new()).unwrap();
    assert_eq!((again.taken, again.forwarded_here), (0, 10), "{again:?}");
    for c in 0..10u8 {
        let f = tcp4([198, 18, 2, c], 40000, [198, 18, 0, 50], 80, b"x");
        let (v, out) = x.run(&f).unwrap();
        assert_eq!((v, &out[..6]), (XDP_TX, &mac_of(12)[..]), "flow {c}");
    }
    // The template: every new flow of that client goes to .11.
    for sport in 1..8u16 {
        let f = tcp4([198, 18, 3, 1], sport, [198, 18, 0, 50], 443, b"");
        let (v, out) = x.run(&f).unwrap();
        assert_eq!((v, &out[..6]), (XDP_TX, &mac_of(11)[..]), "port {sport}");
    }
}

/// FULLNAT (issue #21): the client's packet leaves from one of the service's local
/// addresses and a local port, to the real server; the real server's reply to that
/// address and port goes back from the VIP to the client. Every checksum equals a full
/// recomputation, a connection keeps its local address and port, and no two connections
/// to one real server share them (IPv4 and IPv6, TCP and UDP).
#[test]
#[ignore = "needs root (loads BPF) and clang: ./test.sh runs it as root"]
fn fullnat_rewrites_both_ends_from_local_addresses_and_back() {
    let mut x = load();
    let fnat = |vip: &str, port: u16, proto: Proto, real: &str, rport: u16, laddrs: &[&str]| {
        let mut s = service(
            vip,
            port,
            proto,
            Algo::Rr,
            vec![dest(real, rport, 1, Fwd::FullNat)],
        );
        s.local_addrs = laddrs.iter().map(|a| a.parse().unwrap()).collect();
        s
    };
    let l4 = ["198.18.0.60", "198.18.0.61"];
    let l6 = ["fd00:198:18::60", "fd00:198:18::61"];
    // Both families' local addresses in one group: each service takes its own family's.
    let both: Vec<&str> = l4.iter().chain(l6.iter()).copied().collect();
    let d = desired(vec![
        fnat("198.18.0.50", 80, Proto::Tcp, "198.19.1.11", 8080, &both),
        fnat("198.18.0.50", 53, Proto::Udp, "198.19.1.12", 5353, &both),
        fnat(
            "fd00:198:18::50",
            80,
            Proto::Tcp,
            "fd00:198:19:1::11",
            8080,
            &both,
        ),
        fnat(
            "fd00:198:18::50",
            53,
            Proto::Udp,
            "fd00:198:19:1::12",
            5353,
            &both,
        ),
    ]);
    apply(&mut x, &d);
    let macs = macs(&d);
    let laddr_set: Vec<IpAddr> = both.iter().map(|a| a.parse().unwrap()).collect();
    for (tcp, vip, vport, real, rport) in [
        (true, "198.18.0.50", 80, "198.19.1.11", 8080),
        (false, "198.18.0.50", 53, "198.19.1.12", 5353),
        (true, "fd00:198:18::50", 80, "fd00:198:19:1::11", 8080),
        (false, "fd00:198:18::50", 53, "fd00:198:19:1::12", 5353),
    ] {
        let vip: IpAddr = vip.parse().unwrap();
        let real: IpAddr = real.parse().unwrap();
        let client: IpAddr = if vip.is_ipv4() {
            "198.18.0.100".parse().unwrap()
        } else {
            "fd00:198:18::100".parse().unwrap()
        };
        let mut taken = std::collections::HashSet::new();
        let mut per_laddr: HashMap<IpAddr, usize> = HashMap::new();
        for cport in 40000..40200u16 {
            let f = frame(tcp, client, cport, vip, vport, b"hello");
            let (v, out) = x.run(&f).unwrap();
            assert_eq!(v, XDP_TX, "{client}:{cport} -> {vip}:{vport}");
            assert_checksums(&out);
            assert_eq!(dst_of(&out), (real, rport), "to the real server");
            assert_eq!(&out[..6], &macs[&real], "to the real server's MAC");
            let (laddr, lport) = src_of(&out);
            assert!(
                laddr_set.contains(&laddr) && laddr.is_ipv4() == vip.is_ipv4(),
                "from a local address of the VIP's family: {laddr}"
            );
            assert!(
                lport >= 1024,
                "a local port above the reserved ones: {lport}"
            );
            assert!(
                taken.insert((laddr, lport)),
                "{laddr}:{lport} given to two connections"
            );
            *per_laddr.entry(laddr).or_default() += 1;
            // The connection's next packet leaves from the same address and port.
            let (v, again) = x.run(&f).unwrap();
            assert_eq!(v, XDP_TX);
            assert_eq!(
                src_of(&again),
                (laddr, lport),
                "the connection keeps its ends"
            );
            // The reply, as the real server sends it.
            let reply = frame(tcp, real, rport, laddr, lport, b"world");
            let (v, back) = x.run(&reply).unwrap();
            assert_eq!(v, XDP_TX, "the reply is rewritten");
            assert_eq!(src_of(&back), (vip, vport), "the reply comes from the VIP");
            assert_eq!(dst_of(&back), (client, cport), "to the client");
            assert_eq!(&back[..6], &CLIENT_MAC, "back to the client's MAC");
            assert_checksums(&back);
        }
        assert_eq!(
            per_laddr.len(),
            2,
            "both local addresses used: {per_laddr:?}"
        );
        // A reply to a local port no connection has is the kernel's.
        let stray = frame(
            tcp,
            real,
            rport,
            per_laddr.keys().next().copied().unwrap(),
            999,
            b"",
        );
        assert_eq!(x.run(&stray).unwrap().0, XDP_PASS);
    }
}

/// FULLNAT services the program cannot run are refused with the reason, and the others
/// apply: no local address of the VIP's family, a real server of the other family, more
/// local addresses than the program's per-service block.
#[test]
#[ignore = "needs root (loads BPF) and clang: ./test.sh runs it as root"]
fn fullnat_without_usable_local_addresses_is_refused() {
    let mut x = load();
    let svc = |vip: &str, real: &str, laddrs: Vec<String>| {
        let mut s = service(
            vip,
            80,
            Proto::Tcp,
            Algo::Rr,
            vec![dest(real, 80, 1, Fwd::FullNat)],
        );
        s.local_addrs = laddrs.iter().map(|a| a.parse().unwrap()).collect();
        s
    };
    let cases = [
        (
            svc("198.18.0.50", "198.19.1.11", vec![]),
            "local addresses of the virtual server's family",
        ),
        (
            svc("198.18.0.51", "198.19.1.11", vec!["fd00:198:18::60".into()]),
            "local addresses of the virtual server's family",
        ),
        (
            svc(
                "198.18.0.52",
                "fd00:198:19:1::11",
                vec!["198.18.0.60".into()],
            ),
            "within one family",
        ),
        (
            svc(
                "198.18.0.53",
                "198.19.1.11",
                (1..=17).map(|i| format!("198.18.2.{i}")).collect(),
            ),
            "at most 16",
        ),
    ];
    for (s, why) in cases {
        let key = s.key;
        let good = svc("198.18.0.59", "198.19.1.11", vec!["198.18.0.60".into()]);
        let d = desired(vec![s, good]);
        let e = x.apply(&d, &macs(&d)).unwrap_err();
        assert_eq!(e.len(), 1, "{e:?}");
        let msg = e[0].to_string();
        assert!(msg.contains(why) && msg.contains(&key.to_string()), "{msg}");
        // The good service applied.
        let f = tcp4([198, 18, 0, 100], 40000, [198, 18, 0, 59], 80, b"");
        assert_eq!(x.run(&f).unwrap().0, XDP_TX);
    }
}

/// FULLNAT ports: a CPU gives each port of its share once while the connection holding
/// it lives — with every one held, a new connection is dropped rather than given a live
/// one's port — and gives ports again once their connections have expired.
#[test]
#[ignore = "needs root (loads BPF) and clang: ./test.sh runs it as root"]
fn fullnat_never_gives_a_live_connections_port_and_reuses_expired_ones() {
    // BPF_PROG_RUN runs on the calling CPU: held on one, the test sees one CPU's share.
    let mut one = rustix::thread::CpuSet::new();
    one.set(0);
    rustix::thread::sched_setaffinity(None, &one).unwrap();
    let mut x = load_with(&rvs_xdp::Options {
        flows: 1 << 17,
        own_mac: Some(DIRECTOR_MAC),
        ..rvs_xdp::Options::default()
    });
    let mut s = service(
        "198.18.0.50",
        80,
        Proto::Tcp,
        Algo::Rr,
        vec![dest("198.19.1.11", 8080, 1, Fwd::FullNat)],
    );
    s.local_addrs = vec!["198.18.0.60".parse().unwrap()];
    let mut d = desired(vec![s]);
    let timeout_s = 5;
    d.timeouts.tcp[1] = timeout_s;
    apply(&mut x, &d);
    let cpus = std::fs::read_to_string("/sys/devices/system/cpu/online")
        .unwrap()
        .trim()
        .split([',', '-'])
        .map(|c| c.parse::<u32>().unwrap())
        .max()
        .unwrap()
        + 1;
    let share = (65536 - 1024) / cpus;
    let syn = |n: u32| {
        tcp4(
            [198, 19, (n >> 8) as u8, n as u8],
            40000,
            [198, 18, 0, 50],
            80,
            b"",
        )
    };
    let started = std::time::Instant::now();
    let mut ports = std::collections::HashSet::new();
    let mut n = 0;
    let dropped = loop {
        assert!(n < 65536, "never ran out of ports");
        let (v, out) = x.run(&syn(n)).unwrap();
        if v == XDP_DROP {
            break n;
        }
        assert_eq!(v, XDP_TX);
        let (laddr, lport) = src_of(&out);
        assert_eq!(laddr, IpAddr::from([198, 18, 0, 60]));
        assert!(ports.insert(lport), "port {lport} given twice");
        n += 1;
    };
    // (Only meaningful if no connection expired meanwhile: filling takes ~0.1 s.)
    assert!(
        started.elapsed() < std::time::Duration::from_secs(u64::from(timeout_s) - 1),
        "filling the ports took {:?}: the result says nothing",
        started.elapsed()
    );
    assert_eq!(dropped, share, "every port of the CPU's share, then none");
    assert_eq!(x.run(&syn(dropped)).unwrap().0, XDP_DROP, "still none");
    // Once they expire, their ports are given again.
    std::thread::sleep(std::time::Duration::from_secs(u64::from(timeout_s) + 1));
    let (v, out) = x.run(&syn(dropped + 1)).unwrap();
    assert_eq!(v, XDP_TX, "an expired connection's port is given again");
    assert!(ports.contains(&src_of(&out).1));
}

/// The TOA option of a frame's TCP header (kind 254: port, then the IPv4 or IPv6
/// address), read from the raw option bytes.
fn toa_of(frame: &[u8]) -> Option<SocketAddr> {
    let l4 = if frame[12..14] == [0x08, 0x00] {
        14 + 20
    } else {
        14 + 40
    };
    let doff = usize::from(frame[l4 + 12] >> 4) * 4;
    let opts = &frame[l4 + 20..l4 + doff];
    let mut i = 0;
    while i < opts.len() {
        match opts[i] {
            0 => return None,
            1 => i += 1,
            kind => {
                let len = usize::from(opts[i + 1]);
                if kind == 254 {
                    let port = u16::from_be_bytes([opts[i + 2], opts[i + 3]]);
                    let ip: IpAddr = match len {
                        8 => <[u8; 4]>::try_from(&opts[i + 4..i + 8]).unwrap().into(),
                        20 => <[u8; 16]>::try_from(&opts[i + 4..i + 20]).unwrap().into(),
                        other => panic!("TOA of length {other}"),
                    };
                    return Some(SocketAddr::new(ip, port));
                }
                i += len.max(2);
            }
        }
    }
    None
}

/// FULLNAT and TOA: the real server gets the client's address and port in a TCP option
/// (kind 254, as DPVS and LVS FULLNAT write it; 8 bytes for IPv4, 20 for IPv6) on the
/// connection's first packet after the SYN — the ACK that completes the handshake,
/// where the real server's `toa` module reads it — and on no other; the frame grows by
/// the option, with every checksum right, and the payload follows unchanged.
#[test]
#[ignore = "needs root (loads BPF) and clang: ./test.sh runs it as root"]
fn fullnat_sends_the_client_address_in_toa_once() {
    let mut x = load();
    let mut services = Vec::new();
    for (vip, real, laddr) in [
        ("198.18.0.50", "198.19.1.11", "198.18.0.60"),
        ("fd00:198:18::50", "fd00:198:19:1::11", "fd00:198:18::60"),
    ] {
        let mut s = service(
            vip,
            80,
            Proto::Tcp,
            Algo::Rr,
            vec![dest(real, 8080, 1, Fwd::FullNat)],
        );
        s.local_addrs = vec![laddr.parse().unwrap()];
        services.push(s);
    }
    let d = desired(services);
    apply(&mut x, &d);
    for (client, vip, olen) in [
        ("198.18.0.100", "198.18.0.50", 8),
        ("fd00:198:18::100", "fd00:198:18::50", 20),
    ] {
        let client: IpAddr = client.parse().unwrap();
        let vip: IpAddr = vip.parse().unwrap();
        let syn = segment(client, 40000, vip, 80, true, b"");
        let (v, out) = x.run(&syn).unwrap();
        assert_eq!(v, XDP_TX);
        assert_eq!(toa_of(&out), None, "not on the SYN");
        let ack = segment(client, 40000, vip, 80, false, b"");
        let (v, out) = x.run(&ack).unwrap();
        assert_eq!(v, XDP_TX);
        assert_eq!(out.len(), ack.len() + olen, "the option's bytes");
        assert_eq!(
            toa_of(&out),
            Some(SocketAddr::new(client, 40000)),
            "the client's address and port"
        );
        assert_checksums(&out);
        assert_eq!(
            src_of(&out).0,
            src_of(&x.run(&syn).unwrap().1).0,
            "from the local address"
        );
        // The next segments go without it, their payload unchanged.
        let data = segment(client, 40000, vip, 80, false, b"GET / HTTP/1.0\r\n\r\n");
        let (v, out) = x.run(&data).unwrap();
        assert_eq!(v, XDP_TX);
        assert_eq!(toa_of(&out), None, "once");
        assert_eq!(out.len(), data.len());
        assert!(out.ends_with(b"GET / HTTP/1.0\r\n\r\n"));
        assert_checksums(&out);
        // With data on the first ACK, the payload follows the option unchanged.
        let first = segment(client, 40001, vip, 80, true, b"");
        assert_eq!(x.run(&first).unwrap().0, XDP_TX);
        let with_data = segment(client, 40001, vip, 80, false, b"hello");
        let (_, out) = x.run(&with_data).unwrap();
        assert_eq!(toa_of(&out), Some(SocketAddr::new(client, 40001)));
        assert!(out.ends_with(b"hello"));
        assert_checksums(&out);
    }
}

/// FULLNAT across a failover (connection sync): a director that adopts another's
/// FULLNAT connection gives it the same local address and port — the real server sees
/// the same connection — with no second TOA; the real server's replies wait (dropped)
/// until the client's next packet gives the client's MAC, then go back from the VIP —
/// or go at once when the client's next-hop MAC came with the adoption.
#[test]
#[ignore = "needs root (loads BPF) and clang: ./test.sh runs it as root"]
fn an_adopted_fullnat_connection_keeps_its_local_end() {
    let mut s = service(
        "198.18.0.50",
        80,
        Proto::Tcp,
        Algo::Rr,
        vec![
            dest("198.19.1.11", 8080, 1, Fwd::FullNat),
            dest("198.19.1.12", 8080, 1, Fwd::FullNat),
        ],
    );
    s.local_addrs = vec!["198.18.0.60".parse().unwrap()];
    let d = desired(vec![s]);
    let (mut a, mut b) = (load(), load());
    apply(&mut a, &d);
    apply(&mut b, &d);
    let client: IpAddr = "198.18.0.100".parse().unwrap();
    let vip: IpAddr = "198.18.0.50".parse().unwrap();
    // Three connections through a (rr: .11, .12, .11), their handshakes completed.
    let mut ends = Vec::new();
    for cport in [40000, 40001, 40002] {
        let (_, out) = a.run(&segment(client, cport, vip, 80, true, b"")).unwrap();
        let (v, out2) = a.run(&segment(client, cport, vip, 80, false, b"")).unwrap();
        assert_eq!(v, XDP_TX);
        assert!(toa_of(&out2).is_some());
        ends.push((cport, src_of(&out), dst_of(&out)));
    }
    let listed = a.flows(100).unwrap();
    for (cport, local, _) in &ends {
        let f = listed
            .iter()
            .find(|f| f.client.port() == *cport)
            .expect("listed");
        assert_eq!(
            f.local,
            Some(SocketAddr::new(local.0, local.1)),
            "the local end listed"
        );
    }
    // b takes them over; b's own rr would start at .11 again.
    let adopted = b.adopt(&listed, &[], &HashMap::new()).unwrap();
    assert_eq!(adopted.taken, 3);
    for (cport, local, real) in &ends {
        let reply = segment(real.0, real.1, local.0, local.1, false, b"data");
        assert_eq!(
            b.run(&reply).unwrap().0,
            XDP_DROP,
            "no client MAC yet: the reply waits"
        );
        let (v, out) = b
            .run(&segment(client, *cport, vip, 80, false, b"more"))
            .unwrap();
        assert_eq!(v, XDP_TX);
        assert_eq!(src_of(&out), *local, "the same local end");
        assert_eq!(dst_of(&out), *real, "the same real server");
        assert_eq!(toa_of(&out), None, "TOA went with the handshake, at a");
        assert_checksums(&out);
        let (v, back) = b.run(&reply).unwrap();
        assert_eq!(v, XDP_TX, "now the reply goes back");
        assert_eq!(src_of(&back), (vip, 80));
        assert_eq!(dst_of(&back), (client, *cport));
        assert_eq!(&back[..6], &CLIENT_MAC);
        assert_checksums(&back);
    }
    // Told the client's next-hop MAC (the daemon looks it up), a director sends the
    // replies back at once.
    let mut c = load();
    apply(&mut c, &d);
    c.adopt(&listed, &[], &HashMap::from([(client, CLIENT_MAC)]))
        .unwrap();
    for (cport, local, real) in &ends {
        let reply = segment(real.0, real.1, local.0, local.1, false, b"data");
        let (v, back) = c.run(&reply).unwrap();
        assert_eq!(v, XDP_TX, "the reply goes back before any client packet");
        assert_eq!(dst_of(&back), (client, *cport));
        assert_eq!(&back[..6], &CLIENT_MAC);
    }
}
