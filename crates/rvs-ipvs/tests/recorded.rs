//! Byte-level tests against an exchange recorded with a real IPVS kernel
//! (`fixtures/kernel-6.1.trace`): the requests rvs builds today are the bytes the kernel
//! acknowledged, and the kernel's replies decode to the table it held.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use rvs_ipvs::wire::{self, attr, cmd, Reply};
use rvs_sched::desired::{DesiredDest, DesiredService};
use rvs_sched::{Algo, Fwd, Persistence, Proto, SvcKey, Tun};
use std::net::IpAddr;

fn trace() -> Vec<(String, Vec<u8>)> {
    include_str!("fixtures/kernel-6.1.trace")
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let (dir, hex) = l.split_once(' ').unwrap();
            let bytes = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
                .collect();
            (dir.to_owned(), bytes)
        })
        .collect()
}

fn key() -> SvcKey {
    SvcKey::Addr {
        proto: Proto::Tcp,
        addr: IpAddr::from([198, 18, 1, 50]),
        port: 80,
    }
}

fn dest(last: u8, weight: i32) -> DesiredDest {
    DesiredDest {
        addr: IpAddr::from([198, 18, 0, last]),
        port: 8080,
        weight,
        base_weight: weight,
        fwd: Fwd::Masq,
        tun: Tun::default(),
        u_threshold: 0,
        l_threshold: 0,
    }
}

fn header(b: &[u8]) -> (u16, u16, u32, u8) {
    (
        u16::from_ne_bytes([b[4], b[5]]),
        u16::from_ne_bytes([b[6], b[7]]),
        u32::from_ne_bytes([b[8], b[9], b[10], b[11]]),
        b[16],
    )
}

#[test]
fn requests_are_the_bytes_the_kernel_accepted() {
    let t = trace();
    let sends: Vec<&Vec<u8>> = t
        .iter()
        .filter(|(d, _)| d == "send")
        .map(|(_, b)| b)
        .collect();
    let service = DesiredService {
        persistence: Some(Persistence {
            timeout_s: 300,
            prefix: 32,
        }),
        ..DesiredService::new(key(), Algo::Wrr)
    };
    let mut checked = 0;
    for s in sends {
        let (family, flags, seq, c) = header(s);
        let attrs = match c {
            cmd::NEW_SERVICE => rvs_ipvs::service_attrs(&service),
            cmd::NEW_DEST => {
                // Which real server: its address is in the message.
                let d = if s.windows(4).any(|w| w == [198, 18, 0, 11]) {
                    dest(11, 2)
                } else {
                    dest(12, 1)
                };
                rvs_ipvs::dest_attrs(&key(), &d)
            }
            _ => continue,
        };
        assert_eq!(
            &wire::message(family, flags, seq, c, &attrs)[..16],
            &s[..16],
            "header of command {c}"
        );
        assert_eq!(
            wire::message(family, flags, seq, c, &attrs),
            *s,
            "command {c} differs from the recorded bytes"
        );
        checked += 1;
    }
    assert_eq!(checked, 3, "one service and two real servers were recorded");
    // Every request was acknowledged (error 0) by the kernel.
    for (d, b) in &t {
        if d == "recv" {
            let seq = header(b).2;
            for r in wire::messages(b, seq).unwrap() {
                if let Reply::Error(e) = r {
                    assert_eq!(e, 0, "the kernel refused a recorded request");
                }
            }
        }
    }
}

#[test]
fn replies_decode_to_the_kernels_table() {
    let t = trace();
    let mut services = Vec::new();
    let mut dests = Vec::new();
    for (d, b) in &t {
        // The controller's answer (family resolution) is not an IPVS message.
        if d != "recv" || header(b).0 == wire::GENL_ID_CTRL {
            continue;
        }
        let seq = header(b).2;
        for r in wire::messages(b, seq).unwrap() {
            if let Reply::Data { cmd: c, attrs } = r {
                for (k, nest) in wire::attrs(attrs) {
                    if c == cmd::NEW_SERVICE && k == attr::CMD_SERVICE {
                        services.push(rvs_ipvs::parse_service(nest).unwrap());
                    }
                    if c == cmd::NEW_DEST && k == attr::CMD_DEST {
                        dests.push(rvs_ipvs::parse_dest(nest, false).unwrap());
                    }
                }
            }
        }
    }
    let s = services.first().expect("a GET_SERVICE reply was recorded");
    assert_eq!(s.key, key());
    assert_eq!(s.sched, "wrr");
    assert_eq!(s.timeout, 300);
    assert_eq!(s.flags & rvs_ipvs::F_PERSISTENT, rvs_ipvs::F_PERSISTENT);
    assert_eq!(s.netmask.to_ne_bytes(), [255, 255, 255, 255]);
    // The kernel lists real servers newest first: .12 was added last.
    let first_dump: Vec<(IpAddr, u16, u32, u32)> = dests
        .iter()
        .take(2)
        .map(|d| (d.addr, d.port, d.weight, d.fwd))
        .collect();
    assert_eq!(
        first_dump,
        vec![
            (IpAddr::from([198, 18, 0, 12]), 8080, 1, 0),
            (IpAddr::from([198, 18, 0, 11]), 8080, 2, 0),
        ]
    );
}
