//! `cargo bench -p rvs-sched --bench sched`: `schedule()` per scheduler for 10/100/1000
//! dests, Maglev table builds, connection-table insert/lookup at 1M entries and bytes per
//! entry. Figures and commands in docs/BENCHMARKS.md.

#![allow(
    clippy::unwrap_used,
    clippy::cast_possible_truncation,
    clippy::cast_precision_loss,
    clippy::many_single_char_names,
    clippy::cast_possible_wrap,
    reason = "benchmark harness"
)]

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use rvs_sched::{
    Algo, Compat, Dest, Dir, Flags, Fwd, Ipvs, Packet, PktInfo, Proto, Service, SvcKey, TcpFlags,
};
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

fn service(algo: Algo, n: usize, m: Option<usize>) -> Service {
    let key = SvcKey::Addr {
        proto: Proto::Tcp,
        addr: "198.18.0.100".parse().unwrap(),
        port: 80,
    };
    let mut s = Service::new(key, algo, Flags::default(), Compat::default());
    if let Some(m) = m {
        s.set_mh_table_size(m);
    }
    for i in 0..n {
        let a = IpAddr::V4(Ipv4Addr::new(198, 19, (i / 250) as u8, (i % 250) as u8 + 1));
        s.add_dest(Dest::new(a, 80, (i % 5) as i32 + 1, Fwd::Route))
            .unwrap();
    }
    s
}

fn schedule(c: &mut Criterion) {
    let mut g = c.benchmark_group("schedule");
    let algos = [
        ("rr", Algo::Rr),
        ("wrr", Algo::Wrr),
        ("lc", Algo::Lc),
        ("wlc", Algo::Wlc),
        ("sed", Algo::Sed),
        ("nq", Algo::Nq),
        ("dh", Algo::Dh),
        ("sh", Algo::Sh),
        ("mh", Algo::Mh),
        ("lblc", Algo::Lblc),
        ("lblcr", Algo::Lblcr),
        ("fo", Algo::Fo),
        ("ovf", Algo::Ovf),
        ("twos", Algo::Twos),
    ];
    for (name, algo) in algos {
        for n in [10usize, 100, 1000] {
            let mut s = service(algo, n, None);
            let mut i: u32 = 0;
            let mut r: u32 = 1;
            g.bench_with_input(BenchmarkId::new(name, n), &n, |b, _| {
                b.iter(|| {
                    i = i.wrapping_add(0x9e37_79b9);
                    let p = PktInfo {
                        proto: Proto::Tcp,
                        src: IpAddr::V4(i.into()),
                        sport: i as u16,
                        dst: IpAddr::V4((i >> 3).into()),
                        dport: 80,
                    };
                    black_box(s.schedule(&p, 0, &mut || {
                        r ^= r << 13;
                        r ^= r >> 17;
                        r ^= r << 5;
                        r
                    }))
                });
            });
        }
    }
    g.finish();
}

fn maglev(c: &mut Criterion) {
    let mut g = c.benchmark_group("mh_build");
    g.sample_size(20);
    for (m, n) in [(65537usize, 1000usize), (4093, 1000), (4093, 100)] {
        let mut s = service(Algo::Mh, n, Some(m));
        let id = s.dests().next().unwrap().0;
        let mut w = 1;
        g.bench_function(format!("M={m}_N={n}"), |b| {
            b.iter(|| {
                // A weight edit rebuilds the whole table (the kernel's upd_dest hook).
                w = if w == 1 { 2 } else { 1 };
                s.edit_dest(id, w, 0, 0).unwrap();
            });
        });
        // Side by side, the same destinations: rvs's table and the kernel's loop's
        // (identical tables; the unit tests check that).
        let dests: Vec<Dest> = s.dests().map(|(_, d)| d.clone()).collect();
        g.bench_function(format!("table_M={m}_N={n}"), |b| {
            b.iter(|| black_box(rvs_sched::sched::lookup_table(Algo::Mh, &dests, m)));
        });
        g.bench_function(format!("kernel_loop_M={m}_N={n}"), |b| {
            b.iter(|| black_box(rvs_sched::sched::maglev_table_kernel_loop(&dests, m)));
        });
    }
    g.finish();
}

fn rss_bytes() -> u64 {
    let s = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    s.split_whitespace()
        .nth(1)
        .and_then(|x| x.parse::<u64>().ok())
        .unwrap_or(0)
        * 4096
}

fn conn_table(c: &mut Criterion) {
    const N: u32 = 1_000_000;
    let mut ipvs = Ipvs::new();
    let key = SvcKey::Addr {
        proto: Proto::Tcp,
        addr: "198.18.0.100".parse().unwrap(),
        port: 80,
    };
    let mut s = Service::new(key, Algo::Rr, Flags::default(), Compat::default());
    for i in 0..10u8 {
        s.add_dest(Dest::new(
            IpAddr::V4(Ipv4Addr::new(198, 19, 0, i + 1)),
            80,
            1,
            Fwd::Route,
        ))
        .unwrap();
    }
    ipvs.services.push(s);
    let vip: IpAddr = "198.18.0.100".parse().unwrap();
    let pkt = |i: u32, flags: TcpFlags| Packet {
        proto: Proto::Tcp,
        src: IpAddr::V4(Ipv4Addr::from(0xC613_0000 + (i >> 16))),
        sport: (i & 0xffff) as u16,
        dst: vip,
        dport: 80,
        fwmark: 0,
        tcp: flags,
        dir: Dir::In,
    };
    let before = rss_bytes();
    let t = Instant::now();
    for i in 0..N {
        ipvs.packet(1, &pkt(i, TcpFlags::SYN));
    }
    let insert_ns = t.elapsed().as_nanos() as f64 / f64::from(N);
    let per_entry = (rss_bytes() - before) as f64 / f64::from(N);
    eprintln!("conn table: {N} connections inserted, {insert_ns:.0} ns/insert (one pass), {per_entry:.0} bytes/entry (RSS delta)");
    assert_eq!(ipvs.conn_count(), N as usize);
    let mut i = 0u32;
    c.bench_function("conn_lookup_1M", |b| {
        b.iter(|| {
            i = (i + 7919) % N;
            black_box(ipvs.packet(2, &pkt(i, TcpFlags::ACK)))
        });
    });
}

criterion_group!(benches, schedule, maglev, conn_table);
criterion_main!(benches);
