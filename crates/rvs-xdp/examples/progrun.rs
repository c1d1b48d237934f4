//! Program cost by `BPF_PROG_RUN` (bench/xdp.sh): nanoseconds per packet, as the kernel
//! measures them (no syscall overhead), on the DR hit path with 1, 10k, 100k and 1M
//! active flows, on new flows, and on non-VIP traffic. Needs root.
//!
//! Many flows in repeat mode: the program is loaded as `rvs_lb_bench`, which moves the
//! frame to the next flow of a rotation before balancing (`Xdp::set_rotation`), so one
//! `BPF_PROG_RUN` call with repeat = n visits n flows without a syscall between packets.
//! The first pass over a rotation creates its flows (the new-flow row), later passes hit
//! them; the service's connection counter proves which happened. The flow table is sized
//! so that one CPU's share holds every flow (`BPF_F_NO_COMMON_LRU` splits the entries
//! between the CPUs, and a repeat-mode run stays on one CPU).
//!
//! Each row but the new-flow ones is the best of three runs.
//!
//! A second part compares, on an `mh` service and established flows (ACK segments),
//! recording every flow with forwarding by the table alone (`Options::by_table`), and
//! the by-table path's changed slots: after a change that gives every slot another
//! real server, the first packet of each earlier flow (looked up, missed, sent to the
//! slot's earlier real server and recorded) and the packets after it (found).
//!
//! With `--katran OBJ` (bench/xdp.sh builds it from a Katran checkout,
//! `bench/katran/harness.bpf.c`), Katran's balancer is measured in the same run with the
//! same frames and rotation, and a side-by-side table ends the output: Katran's program
//! as its userspace sets it up (a per-CPU LRU map per CPU, sized like rvs's table's
//! share; one VIP; two real servers on its consistent-hash ring), first packets SYN (it
//! hashes those without a lookup), later ones ACK.
//!
//! Usage: `cargo run --release -p rvs-xdp --example progrun [-- --katran OBJ]`

use rvs_sched::desired::{Desired, DesiredDest, DesiredService};
use rvs_sched::{Algo, Flags, Fwd, Proto, SvcKey};
use std::collections::HashMap;
use std::net::IpAddr;

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

/// The same size, an ACK of an established connection.
fn ack(src: u32, sport: u16, dport: u16) -> Vec<u8> {
    let b = etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 0x64], [2, 0, 0, 0, 0, 1])
        .ipv4(src.to_be_bytes(), [198, 18, 0, 50], 64)
        .tcp(sport, dport, 1, 64000)
        .ack(1);
    let mut v = Vec::new();
    b.write(&mut v, &[0u8; 15]).unwrap_or_default();
    v
}

fn fail(what: &str, e: impl std::fmt::Display) -> ! {
    eprintln!("progrun: {what}: {e}");
    std::process::exit(1);
}

fn service() -> Desired {
    service_of(Algo::Rr, 11..13)
}

fn service_of(algo: Algo, reals: std::ops::Range<u8>) -> Desired {
    let dests: Vec<DesiredDest> = reals
        .map(|i| DesiredDest {
            tun: rvs_sched::Tun::default(),
            addr: IpAddr::from([198, 18, 0, i]),
            port: 80,
            weight: 1,
            base_weight: 1,
            fwd: Fwd::Route,
            u_threshold: 0,
            l_threshold: 0,
        })
        .collect();
    Desired {
        services: vec![DesiredService {
            key: SvcKey::Addr {
                proto: Proto::Tcp,
                addr: IpAddr::from([198, 18, 0, 50]),
                port: 80,
            },
            algo,
            flags: Flags::default(),
            persistence: None,
            mh_size: None,
            dests,
            sorry: None,
            connect_timeout: std::time::Duration::from_secs(5),
            proxy_protocol: None,
            local_addrs: Vec::new(),
            fwd: Fwd::Route,
        }],
        ..Desired::default()
    }
}

/// New connections the service has counted so far.
fn conns(x: &rvs_xdp::Xdp) -> u64 {
    match x.counters() {
        Ok((svcs, _)) => svcs.values().map(|c| c.conns).sum(),
        Err(e) => fail("reading counters", e),
    }
}

fn ns(x: &rvs_xdp::Xdp, f: &[u8], repeat: u32) -> f64 {
    match x.time(f, repeat) {
        Ok(d) => d.as_secs_f64() * 1e9,
        Err(e) => fail("BPF_PROG_RUN", e),
    }
}

/// The best of three runs: the machine's noise only ever adds time.
fn best(mut f: impl FnMut() -> f64) -> f64 {
    (0..3).map(|_| f()).fold(f64::INFINITY, f64::min)
}

fn load(table: u32, by_table: bool, d: &Desired) -> rvs_xdp::Xdp {
    let mut x = match rvs_xdp::Xdp::load(&rvs_xdp::Options {
        flows: table,
        bench: true,
        by_table,
        ..rvs_xdp::Options::default()
    }) {
        Ok(x) => x,
        Err(e) => fail("loading", e),
    };
    apply(&mut x, d);
    x
}

fn apply(x: &mut rvs_xdp::Xdp, d: &Desired) {
    let macs: HashMap<IpAddr, [u8; 6]> = (11u8..15)
        .map(|i| (IpAddr::from([198, 18, 0, i]), [2, 0, 0, 0, 1, i]))
        .collect();
    if let Err(e) = x.apply(d, &macs) {
        fail("apply", format!("{e:?}"));
    }
}

/// ns per packet over `n` flows from `base` (one pass), in repeat mode.
fn pass(x: &mut rvs_xdp::Xdp, f: &[u8], base: u32, n: u32, passes: u32) -> f64 {
    if let Err(e) = x.set_rotation(base, n) {
        fail("rotation", e);
    }
    ns(x, f, n * passes)
}

/// Whether the program recorded any flow.
fn recorded(x: &rvs_xdp::Xdp) -> usize {
    x.flows(1).map_or_else(|e| fail("flows", e), |f| f.len())
}

/// `mh`: recording every flow against forwarding by the table alone, then the changed
/// slots (module doc).
fn by_table(sizes: &[u32], table: u32, repeat: u32) -> Figures {
    let mut fig = Figures::default();
    let two = service_of(Algo::Mh, 11..13);
    let mut rec = load(table, false, &two);
    let mut tab = load(table, true, &two);
    let f = ack(0xc612_0064, 9999, 80);
    println!("\n| mh, established flows (ACK) | every flow recorded | by table | ratio |");
    println!("|---|---|---|---|");
    let _ = rec.run(&f);
    let _ = tab.run(&f);
    let (a, b) = (best(|| ns(&rec, &f, repeat)), best(|| ns(&tab, &f, repeat)));
    println!("| 1 flow | {a:.1} | {b:.1} | {:.2} |", b / a);
    fig.one = b;
    let mut base = 1;
    for &n in sizes {
        let passes = (repeat / n).max(1);
        let (first_a, first_b) = (
            pass(&mut rec, &f, base, n, 1),
            pass(&mut tab, &f, base, n, 1),
        );
        let a = best(|| pass(&mut rec, &f, base, n, passes));
        let b = best(|| pass(&mut tab, &f, base, n, passes));
        println!(
            "| {n} flows, first packet of each | {first_a:.1} | {first_b:.1} | {:.2} |",
            first_b / first_a
        );
        println!(
            "| {n} flows, later packets ({} runs) | {a:.1} | {b:.1} | {:.2} |",
            n * passes,
            b / a
        );
        fig.rows.push((n, first_b, b));
        base += n;
    }
    println!("flows recorded by table: {}", recorded(&tab));
    // Every slot changes: two other real servers. The 1M flows (the last size) are
    // earlier flows of changed slots now.
    let n = sizes.last().copied().unwrap_or(1);
    let start = base - n;
    apply(&mut tab, &service_of(Algo::Mh, 13..15));
    let first = pass(&mut tab, &f, start, n, 1);
    let passes = (repeat / n).max(1);
    let later = best(|| pass(&mut tab, &f, start, n, passes));
    let marked = tab
        .changed_slots()
        .unwrap_or_else(|e| fail("changed slots", e));
    println!(
        "| {n} flows, every slot changed ({marked} marked): first packet of each | | {first:.1} | |"
    );
    println!("| {n} flows, every slot changed: later packets | | {later:.1} | |");
    fig
}

/// One program's figures: one flow, and per rotation size (first packet, later ones).
#[derive(Default)]
struct Figures {
    one: f64,
    rows: Vec<(u32, f64, f64)>,
}

/// Katran's balancer (`bench/katran/harness.bpf.c`, built by bench/xdp.sh) set up as its
/// userspace sets it up, measured like rvs.
fn katran(path: &str, sizes: &[u32], table: u32, repeat: u32) -> Figures {
    use aya::maps::{Array, ArrayOfMaps, HashMap as BpfHashMap, MapData, PerCpuArray};
    use aya::programs::{TestRun as _, TestRunOptions, Xdp};
    let obj = std::fs::read(path).unwrap_or_else(|e| fail(path, e));
    let mut bpf = aya::EbpfLoader::new()
        .load(&obj)
        .unwrap_or_else(|e| fail("loading Katran", e));
    for name in ["katran_bench", "katran_undo"] {
        let p: &mut Xdp = bpf
            .program_mut(name)
            .and_then(|p| p.try_into().ok())
            .unwrap_or_else(|| fail("Katran", format!("no program {name}")));
        p.load().unwrap_or_else(|e| fail(name, e));
    }
    let cpus = u32::try_from(aya::util::nr_cpus().unwrap_or(1)).unwrap_or(1);
    // A connection table per CPU, as Katran's userspace creates them (key: struct
    // flow_key, 40 bytes; value: struct real_pos_lru, 16), each the size of one CPU's
    // share of rvs's table.
    let lrus: Vec<MapData> = (0..cpus)
        .map(|_| {
            let m = aya_obj::Map::new_from_params(9, 40, 16, table / cpus, 0);
            MapData::create(m, "katran_lru", None).unwrap_or_else(|e| fail("LRU map", e))
        })
        .collect();
    {
        let mut outer: ArrayOfMaps<_, MapData> = bpf
            .map_mut("lru_mapping")
            .and_then(|m| ArrayOfMaps::try_from(m).ok())
            .unwrap_or_else(|| fail("Katran", "no lru_mapping"));
        for (cpu, m) in lrus.iter().enumerate() {
            let cpu = u32::try_from(cpu).unwrap_or(0);
            outer
                .set(cpu, m, 0)
                .unwrap_or_else(|e| fail("lru_mapping", e));
        }
    }
    // VIP 198.18.0.50:80/TCP (struct vip_definition: address, port, protocol) →
    // struct vip_meta { flags 0, vip_num 0 }.
    let mut vip = [0u8; 20];
    vip[..4].copy_from_slice(&[198, 18, 0, 50]);
    vip[16..18].copy_from_slice(&80u16.to_be_bytes());
    vip[18] = 6;
    let mut vips: BpfHashMap<_, [u8; 20], [u8; 8]> = bpf
        .map_mut("vip_map")
        .and_then(|m| BpfHashMap::try_from(m).ok())
        .unwrap_or_else(|| fail("Katran", "no vip_map"));
    vips.insert(vip, [0; 8], 0)
        .unwrap_or_else(|e| fail("vip_map", e));
    // Real servers 1 and 2 (struct real_definition: address, flags), alternating on the
    // VIP's ring, as Katran's Maglev ring of two equal weights would split it.
    let mut reals: Array<_, [u8; 20]> = bpf
        .map_mut("reals")
        .and_then(|m| Array::try_from(m).ok())
        .unwrap_or_else(|| fail("Katran", "no reals"));
    for (i, last) in [(1u32, 11u8), (2, 12)] {
        let mut r = [0u8; 20];
        r[..4].copy_from_slice(&[198, 18, 0, last]);
        reals.set(i, r, 0).unwrap_or_else(|e| fail("reals", e));
    }
    let mut ring: Array<_, u32> = bpf
        .map_mut("ch_rings")
        .and_then(|m| Array::try_from(m).ok())
        .unwrap_or_else(|| fail("Katran", "no ch_rings"));
    for i in 0..65_537u32 {
        ring.set(i, 1 + i % 2, 0)
            .unwrap_or_else(|e| fail("ch_rings", e));
    }
    // The default router's MAC (struct ctl_value at position 0).
    let mut ctl: Array<_, [u8; 8]> = bpf
        .map_mut("ctl_array")
        .and_then(|m| Array::try_from(m).ok())
        .unwrap_or_else(|| fail("Katran", "no ctl_array"));
    ctl.set(0, [2, 0, 0, 0, 2, 1, 0, 0], 0)
        .unwrap_or_else(|e| fail("ctl_array", e));
    let run = |bpf: &aya::Ebpf, name: &str, f: &[u8], n: u32| -> f64 {
        let p: &Xdp = bpf
            .program(name)
            .and_then(|p| p.try_into().ok())
            .unwrap_or_else(|| fail("Katran", name));
        let mut out = vec![0u8; f.len() + 64];
        let r = p
            .test_run(TestRunOptions {
                data_in: Some(f),
                data_out: Some(&mut out),
                repeat: n,
                ..TestRunOptions::new()
            })
            .unwrap_or_else(|e| fail("BPF_PROG_RUN", e));
        if r.return_value != 3 {
            fail(name, format!("verdict {} (not XDP_TX)", r.return_value));
        }
        r.duration.as_secs_f64() * 1e9
    };
    // LRU misses so far (stats[MAX_VIPS + LRU_CNTRS].v2, summed over CPUs): the proof
    // that the later passes hit.
    let lru_misses = |bpf: &aya::Ebpf| -> u64 {
        let m: PerCpuArray<_, [u64; 2]> = bpf
            .map("stats")
            .and_then(|m| PerCpuArray::try_from(m).ok())
            .unwrap_or_else(|| fail("Katran", "no stats"));
        m.get(&512, 0)
            .map_or_else(|e| fail("stats", e), |v| v.iter().map(|c| c[1]).sum())
    };
    let set_rotation = |bpf: &mut aya::Ebpf, base: u32, n: u32| {
        let mut m: Array<_, [u32; 3]> = bpf
            .map_mut("bench_rotation")
            .and_then(|m| Array::try_from(m).ok())
            .unwrap_or_else(|| fail("Katran", "no bench_rotation"));
        m.set(0, [n, base, 0], 0)
            .unwrap_or_else(|e| fail("rotation", e));
    };
    let (syn, ackf) = (frame(0xc612_0064, 9999, 80), ack(0xc612_0064, 9999, 80));
    let undo = best(|| run(&bpf, "katran_undo", &syn, repeat));
    run(&bpf, "katran_bench", &syn, 1);
    let mut fig = Figures {
        one: best(|| run(&bpf, "katran_bench", &ackf, repeat)),
        rows: Vec::new(),
    };
    println!("\n| Katran (harness bench/katran/harness.bpf.c) | ns/packet |");
    println!("|---|---|");
    println!("| the harness's undoing of the encapsulation alone | {undo:.1} |");
    println!("| hit, 1 flow | {:.1} |", fig.one);
    let mut base = 1;
    for &n in sizes {
        set_rotation(&mut bpf, base, n);
        let first = run(&bpf, "katran_bench", &syn, n);
        let m0 = lru_misses(&bpf);
        let passes = (repeat / n).max(1);
        let hit = best(|| {
            set_rotation(&mut bpf, base, n);
            run(&bpf, "katran_bench", &ackf, n * passes)
        });
        let missed = lru_misses(&bpf) - m0;
        println!("| new flow (SYN), {n}-flow pass | {first:.1} |");
        println!(
            "| hit, {n} flows ({} runs, {missed} missed) | {hit:.1} |",
            n * passes
        );
        fig.rows.push((n, first, hit));
        base += n;
    }
    fig
}

fn main() {
    let sizes: [u32; 3] = [10_000, 100_000, 1 << 20];
    let total: u32 = sizes.iter().sum::<u32>() + 1;
    let cpus = u32::try_from(aya::util::nr_cpus().unwrap_or(1)).unwrap_or(1);
    let table = total / 4 * 5 * cpus;
    let mut x = load(table, false, &service());
    let repeat = 1_000_000;
    let hot = frame(0xc612_0064, 9999, 80);
    let _ = x.run(&hot);
    let one = best(|| ns(&x, &hot, repeat));
    let other = frame(0xc612_0064, 9999, 81);
    let pass = best(|| ns(&x, &other, repeat));
    // Calibration: an ARP frame leaves after the Ethernet header (the fixed cost of a run).
    let mut arp = vec![0xff; 6];
    arp.extend_from_slice(&[2, 0, 0, 0, 0, 0x64, 0x08, 0x06]);
    arp.extend_from_slice(&[0; 28]);
    let empty = best(|| ns(&x, &arp, repeat));
    // The rotation's own cost: a rotation over one flow.
    let mut base = 0;
    if let Err(e) = x.set_rotation(base, 1) {
        fail("rotation", e);
    }
    let _ = x.run(&hot);
    let rot1 = best(|| ns(&x, &hot, repeat));
    base += 1;
    let mut rows = Vec::new();
    for n in sizes {
        if let Err(e) = x.set_rotation(base, n) {
            fail("rotation", e);
        }
        let c0 = conns(&x);
        let new_ns = ns(&x, &hot, n);
        let c1 = conns(&x);
        let passes = (repeat / n).max(1);
        let hit_ns = best(|| {
            if let Err(e) = x.set_rotation(base, n) {
                fail("rotation", e);
            }
            ns(&x, &hot, n * passes)
        });
        let c2 = conns(&x);
        rows.push((n, new_ns, c1 - c0, hit_ns, c2 - c1, n * passes));
        base += n;
    }
    println!("| path | ns/packet |");
    println!("|---|---|");
    println!("| ARP frame, passed at the Ethernet header (the fixed cost of a run) | {empty:.1} |");
    println!("| non-VIP packet, passed | {pass:.1} |");
    println!("| DR hit, 1 flow | {one:.1} |");
    println!("| DR hit, 1 flow, rotating (the rotation's cost included) | {rot1:.1} |");
    for (n, new_ns, created, hit_ns, missed, runs) in &rows {
        println!("| DR hit, {n} flows, rotating ({runs} runs, {missed} missed) | {hit_ns:.1} |");
        println!("| new flow, {n}-flow pass, rotating ({created} created) | {new_ns:.1} |");
    }
    let rot = rot1 - one;
    print!("\nless the rotation ({rot:.1} ns):");
    for (n, new_ns, _, hit_ns, _, _) in &rows {
        print!(
            " {n} flows {:.0} ns (new {:.0} ns);",
            hit_ns - rot,
            new_ns - rot
        );
    }
    println!(
        "\ntable: {table} entries, {cpus} CPUs ({} per CPU's LRU)",
        table / cpus
    );
    drop(x);
    let tab = by_table(&sizes, table, repeat);
    let args: Vec<String> = std::env::args().collect();
    if let Some(obj) = args
        .iter()
        .position(|a| a == "--katran")
        .and_then(|i| args.get(i + 1))
    {
        let k = katran(obj, &sizes, table, repeat);
        println!("\n## Side by side (one run)\n");
        println!(
            "| path | rvs DR (rr, every flow recorded) | rvs mh, by table | Katran | rvs / Katran | by table / Katran |"
        );
        println!("|---|---|---|---|---|---|");
        let row = |what: &str, r: f64, t: f64, k: f64| {
            println!(
                "| {what} | {r:.1} | {t:.1} | {k:.1} | {:.2} | {:.2} |",
                r / k,
                t / k
            );
        };
        row("hit, 1 flow", one, tab.one, k.one);
        for (((n, new_r, _, hit_r, _, _), (_, first_t, hit_t)), (_, first_k, hit_k)) in
            rows.iter().zip(&tab.rows).zip(&k.rows)
        {
            row(&format!("hit, {n} flows"), *hit_r, *hit_t, *hit_k);
            row(
                &format!("new flow, {n}-flow pass"),
                *new_r,
                *first_t,
                *first_k,
            );
        }
    }
}
