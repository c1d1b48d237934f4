//! Forwarding by the table alone (`Options::by_table`, docs/xdp.md): flows of an
//! unchanged `mh` slot go to its real server with no flow record, and a change of a
//! slot's real server moves no established flow — the kernel IPVS guarantee — while new
//! connections take the new choice, until the old flows have timed out.
//!
//! Needs root (to load BPF) and the program (clang at build time); in CI (CI=true) a
//! missing prerequisite fails.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use rvs_sched::desired::{Desired, DesiredDest};
use rvs_sched::{Algo, Fwd, Proto};
use rvs_xdp::{Options, Xdp, XDP_TX};
use std::collections::HashMap;

const VIP: [u8; 4] = [198, 18, 0, 50];

fn opts(by_table: bool) -> Options {
    Options {
        flows: 4096,
        own_mac: Some(DIRECTOR_MAC),
        by_table,
        ..Options::default()
    }
}

/// An `mh` service on port 80 over real servers 198.18.0.11.. (`n` of them), DR;
/// TCP idle timeouts `timeout_s`.
fn mh(n: u8, timeout_s: u32) -> Desired {
    let reals: Vec<DesiredDest> = (11..11 + n)
        .map(|i| dest(&format!("198.18.0.{i}"), 80, 1, Fwd::Route))
        .collect();
    let mut s = service("198.18.0.50", 80, Proto::Tcp, Algo::Mh, reals);
    s.mh_size = Some(251);
    let mut d = desired(vec![s]);
    d.timeouts.tcp[1] = timeout_s;
    d.timeouts.tcp[4] = timeout_s;
    d
}

/// The real server (last address byte) a frame was sent to; panics unless forwarded.
fn sent_to(x: &Xdp, f: &[u8]) -> u8 {
    let (v, out) = x.run(f).unwrap();
    assert_eq!(v, XDP_TX, "forwarded");
    out[5]
}

fn client(c: u8) -> [u8; 4] {
    [198, 18, 2, c]
}

/// Where the table of `d` sends each client's new connection (a director that records
/// every flow, fresh).
fn choices(d: &Desired, clients: u8) -> HashMap<u8, u8> {
    let mut plain = load_with(&opts(false));
    plain.apply(d, &macs(d)).unwrap();
    (0..clients)
        .map(|c| (c, sent_to(&plain, &tcp4(client(c), 5000, VIP, 80, b""))))
        .collect()
}

#[test]
#[ignore = "needs root (loads BPF) and clang: ./test.sh runs it as root"]
fn an_unchanged_slot_forwards_without_a_flow_record() {
    let d = mh(3, 900);
    let mut x = load_with(&opts(true));
    x.apply(&d, &macs(&d)).unwrap();
    let want = choices(&d, 100);
    for c in 0..100 {
        assert_eq!(sent_to(&x, &tcp4(client(c), 5000, VIP, 80, b"")), want[&c]);
        assert_eq!(sent_to(&x, &ack4(client(c), 5000, VIP, 80)), want[&c]);
    }
    assert!(x.flows(1000).unwrap().is_empty(), "no flow recorded");
    assert_eq!(x.changed_slots().unwrap(), 0);
    // Connections are counted by their SYN; both packets of each are.
    let (svcs, _) = x.counters().unwrap();
    let c = svcs.values().next().unwrap();
    assert_eq!((c.conns, c.pkts_in), (100, 200));
    // The same service recorded flow by flow (the default) records them.
    let mut plain = load_with(&opts(false));
    plain.apply(&d, &macs(&d)).unwrap();
    for c in 0..10 {
        sent_to(&plain, &tcp4(client(c), 5000, VIP, 80, b""));
    }
    assert_eq!(plain.flows(1000).unwrap().len(), 10);
}

#[test]
#[ignore = "needs root (loads BPF) and clang: ./test.sh runs it as root"]
fn established_flows_keep_their_real_server_when_their_slot_changes() {
    let (three, four) = (mh(3, 900), mh(4, 900));
    let mut x = load_with(&opts(true));
    x.apply(&three, &macs(&three)).unwrap();
    let before = choices(&three, 200);
    // 200 established connections, none recorded.
    for c in 0..200 {
        sent_to(&x, &tcp4(client(c), 5000, VIP, 80, b""));
        sent_to(&x, &ack4(client(c), 5000, VIP, 80));
    }
    assert!(x.flows(1000).unwrap().is_empty());
    // A fourth real server takes slots from the others.
    let rep = x.apply(&four, &macs(&four)).unwrap();
    assert!(rep.slots_changed > 0, "{rep:?}");
    assert_eq!(rep.tables_swapped, 0, "rewritten in place: {rep:?}");
    let after = choices(&four, 200);
    let moved: Vec<u8> = (0..200).filter(|c| before[c] != after[c]).collect();
    assert!(moved.len() >= 20, "a quarter of the slots move: {moved:?}");
    assert!(x.changed_slots().unwrap() >= moved.len().min(1));
    for c in 0..200 {
        // The established connection stays where it was, twice (recorded, then found).
        for _ in 0..2 {
            assert_eq!(
                sent_to(&x, &ack4(client(c), 5000, VIP, 80)),
                before[&c],
                "client {c}: an established flow moved"
            );
        }
        // A new connection of the same client takes the new table's choice.
        assert_eq!(
            sent_to(&x, &tcp4(client(c), 6000, VIP, 80, b"")),
            after[&c],
            "client {c}: a new connection"
        );
        assert_eq!(sent_to(&x, &ack4(client(c), 6000, VIP, 80)), after[&c]);
    }
    // Only the clients of changed slots were recorded: their old flows and new ones.
    let recorded = x.flows(1000).unwrap();
    assert!(recorded.len() >= 2 * moved.len(), "{}", recorded.len());
    assert!(
        recorded.len() < 400,
        "unchanged slots record nothing: {}",
        recorded.len()
    );
}

#[test]
#[ignore = "needs root (loads BPF) and clang: ./test.sh runs it as root"]
fn a_changed_slot_returns_to_the_table_once_its_old_flows_time_out() {
    // Idle timeout 2 s: a flow silent for 3 s has ended, as in IPVS.
    let (three, four) = (mh(3, 2), mh(4, 2));
    let mut x = load_with(&opts(true));
    x.apply(&three, &macs(&three)).unwrap();
    let before = choices(&three, 200);
    for c in 0..200 {
        sent_to(&x, &tcp4(client(c), 5000, VIP, 80, b""));
    }
    x.apply(&four, &macs(&four)).unwrap();
    let after = choices(&four, 200);
    let moved: Vec<u8> = (0..200).filter(|c| before[c] != after[c]).collect();
    assert!(moved.len() >= 2, "{moved:?}");
    // One moved client keeps talking every 400 ms; the others fall silent.
    let (talker, silent) = (moved[0], moved[1..].to_vec());
    let t0 = std::time::Instant::now();
    while t0.elapsed() < std::time::Duration::from_millis(3200) {
        assert_eq!(
            sent_to(&x, &ack4(client(talker), 5000, VIP, 80)),
            before[&talker]
        );
        std::thread::sleep(std::time::Duration::from_millis(400));
    }
    let sweep = x.sweep_changes().unwrap();
    assert!(
        sweep.cleared >= 1,
        "the silent clients' slots are cleared: {sweep:?}"
    );
    assert_eq!(sweep.services, 1);
    assert!(sweep.changed >= 1, "the talker's slot: {sweep:?}");
    // The talker's flow is alive: its slot stays marked and it stays put.
    assert!(x.changed_slots().unwrap() >= 1);
    assert_eq!(
        sent_to(&x, &ack4(client(talker), 5000, VIP, 80)),
        before[&talker]
    );
    // The silent ones' flows have ended: their next segment goes by the new table.
    for c in silent {
        assert_eq!(
            sent_to(&x, &ack4(client(c), 5000, VIP, 80)),
            after[&c],
            "{c}"
        );
    }
}

/// A service that starts being forwarded by its table (here: its persistence removed)
/// keeps the flows recorded until then where they were, even those whose real server
/// is not their slot's (100 flows adopted from another director, all on .13): their
/// slots are marked before the program forwards by table. New connections take the
/// table's choice.
#[test]
#[ignore = "needs root (loads BPF) and clang: ./test.sh runs it as root"]
fn flows_recorded_before_a_service_goes_by_table_keep_their_real_server() {
    let plain_three = mh(3, 900);
    let mut persistent = plain_three.clone();
    persistent.services[0].persistence = Some(rvs_sched::Persistence {
        timeout_s: 300,
        prefix: 32,
    });
    let mut x = load_with(&opts(true));
    x.apply(&persistent, &macs(&persistent)).unwrap();
    let table = choices(&plain_three, 100);
    let moved = (0..100).filter(|c| table[c] != 13).count();
    assert!(moved >= 30, "most clients' slots are not .13's: {moved}");
    let flows: Vec<rvs_xdp::FlowEntry> = (0..100)
        .map(|c| rvs_xdp::FlowEntry {
            proto: 6,
            client: std::net::SocketAddr::new(client(c).into(), 5000),
            vip: std::net::SocketAddr::new(VIP.into(), 80),
            svc: plain_three.services[0].key,
            real: ("198.18.0.13".parse().unwrap(), 80),
            fin: false,
            expires_s: 800,
            here: false,
            local: None,
        })
        .collect();
    assert_eq!(x.adopt(&flows, &[], &HashMap::new()).unwrap().taken, 100);
    assert_eq!(x.changed_slots().unwrap(), 0, "not forwarded by table yet");
    x.apply(&plain_three, &macs(&plain_three)).unwrap();
    assert!(x.changed_slots().unwrap() > 0);
    for c in 0..100 {
        assert_eq!(
            sent_to(&x, &ack4(client(c), 5000, VIP, 80)),
            13,
            "client {c}: a recorded flow moved"
        );
        assert_eq!(
            sent_to(&x, &tcp4(client(c), 6000, VIP, 80, b"")),
            table[&c],
            "client {c}: a new connection"
        );
    }
}
