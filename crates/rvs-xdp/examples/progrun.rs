//! Program cost by `BPF_PROG_RUN` (bench/xdp.sh): nanoseconds per packet, as the kernel
//! measures them (no syscall overhead), on the DR hit path with 1, 10k and 1M active
//! flows, on new flows, and on non-VIP traffic. Needs root.
//!
//! Usage: `cargo run --release -p rvs-xdp --example progrun`

use rvs_sched::config::{Desired, DesiredDest, DesiredService};
use rvs_sched::{Algo, Flags, Fwd, Proto, SvcKey};
use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

fn frame(src: u32, sport: u16, dport: u16) -> Vec<u8> {
    // Ethernet + IPv4 + TCP SYN, 54 bytes + 15 bytes payload = 69 (the lab notes' size).
    let b = etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 0x64], [2, 0, 0, 0, 0, 1])
        .ipv4(src.to_be_bytes(), [198, 18, 0, 50], 64)
        .tcp(sport, dport, 1, 64000)
        .syn();
    let mut v = Vec::new();
    b.write(&mut v, &[0u8; 15]).unwrap_or_default();
    v
}

fn client(i: u32) -> (u32, u16) {
    // 198.19.0.0/16 clients, 16 ports each: distinct 5-tuples.
    (
        0xc613_0000 | (i >> 4),
        10_000 + u16::try_from(i & 15).unwrap_or(0),
    )
}

fn per_packet(x: &rvs_xdp::Xdp, frames: &[Vec<u8>]) -> f64 {
    let mut total = Duration::ZERO;
    for f in frames {
        total += x.time(f, 1).unwrap_or_default();
    }
    total.as_secs_f64() * 1e9 / f64::from(u32::try_from(frames.len()).unwrap_or(1))
}

fn main() {
    let flows: u32 = 1 << 20;
    let mut x = match rvs_xdp::Xdp::load(&rvs_xdp::Options {
        flows: flows + flows / 4,
        ..rvs_xdp::Options::default()
    }) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    let dests: Vec<DesiredDest> = (11..13)
        .map(|i| DesiredDest {
            tun: rvs_sched::Tun::default(),
            addr: IpAddr::from([198, 18, 0, i]),
            port: 80,
            weight: 1,
            fwd: Fwd::Route,
            u_threshold: 0,
            l_threshold: 0,
        })
        .collect();
    let macs: HashMap<IpAddr, [u8; 6]> =
        dests.iter().map(|d| (d.addr, [2, 0, 0, 0, 1, 1])).collect();
    let want = Desired {
        services: vec![DesiredService {
            key: SvcKey::Addr {
                proto: Proto::Tcp,
                addr: IpAddr::from([198, 18, 0, 50]),
                port: 80,
            },
            algo: Algo::Rr,
            flags: Flags::default(),
            persistence: None,
            mh_size: None,
            dests,
            sorry: None,
            connect_timeout: 5.0,
            proxy_protocol: None,
            fwd: Fwd::Route,
        }],
        ..Desired::default()
    };
    if let Err(e) = x.apply(&want, &macs) {
        eprintln!("{e:?}");
        std::process::exit(1);
    }
    let repeat = 1_000_000;
    let hot = frame(0xc613_0001, 9999, 80);
    let _ = x.run(&hot);
    let one = x.time(&hot, repeat).unwrap_or_default().as_secs_f64() * 1e9;
    let pass = x
        .time(&frame(0xc613_0001, 9999, 81), repeat)
        .unwrap_or_default()
        .as_secs_f64()
        * 1e9;
    // Calibration: an ARP frame leaves after the Ethernet header (the fixed cost of a run).
    let mut arp = vec![0xff; 6];
    arp.extend_from_slice(&[2, 0, 0, 0, 0, 0x64, 0x08, 0x06]);
    arp.extend_from_slice(&[0; 28]);
    let empty = x.time(&arp, repeat).unwrap_or_default().as_secs_f64() * 1e9;
    // New flows (each frame once), which also fills the table.
    let sample = 100_000u32;
    let new: Vec<Vec<u8>> = (0..sample)
        .map(|i| {
            let (s, p) = client(i);
            frame(s, p, 80)
        })
        .collect();
    let new_ns = per_packet(&x, &new);
    for i in sample..10_000 {
        let (s, p) = client(i);
        let _ = x.run(&frame(s, p, 80));
    }
    let k10: Vec<Vec<u8>> = (0..10_000u32)
        .cycle()
        .take(100_000)
        .map(|i| {
            let (s, p) = client(i * 7919 % 10_000);
            frame(s, p, 80)
        })
        .collect();
    let k10_ns = per_packet(&x, &k10);
    for i in 10_000..flows {
        let (s, p) = client(i);
        let _ = x.run(&frame(s, p, 80));
    }
    let m1: Vec<Vec<u8>> = (0..100_000u32)
        .map(|i| {
            let (s, p) = client(i.wrapping_mul(2_654_435_761) % flows);
            frame(s, p, 80)
        })
        .collect();
    let m1_ns = per_packet(&x, &m1);
    // The same single-run method on one hot flow: the timer's share of a repeat=1 run.
    let hot1: Vec<Vec<u8>> = (0..100_000).map(|_| hot.clone()).collect();
    let hot1_ns = per_packet(&x, &hot1);
    println!("| path | ns/packet |");
    println!("|---|---|");
    println!("| ARP frame, passed at the Ethernet header (repeat {repeat}; the fixed cost) | {empty:.1} |");
    println!("| DR hit, 1 flow (repeat {repeat}) | {one:.1} |");
    println!("| non-VIP packet, passed (repeat {repeat}) | {pass:.1} |");
    println!("| DR hit, 1 flow, single runs (method baseline) | {hot1_ns:.1} |");
    println!("| DR hit, 10k flows, single runs | {k10_ns:.1} |");
    println!("| DR hit, 1M flows, single runs | {m1_ns:.1} |");
    println!("| new flow (rr, flow insert), single runs | {new_ns:.1} |");
    let est = |v: f64| v - hot1_ns + one;
    println!(
        "\nsingle-run rows less the method baseline, plus the repeat-mode hot path: \
         10k flows {:.0} ns, 1M flows {:.0} ns, new flow {:.0} ns",
        est(k10_ns),
        est(m1_ns),
        est(new_ns)
    );
}
