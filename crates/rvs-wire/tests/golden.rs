//! Golden tests against frames captured from keepalived 2.2.7 (tests/fixtures/vrrp/,
//! copied from the shared lab captures): every VRRP frame parses with its checksum, the
//! decoded fields match the capture's dissection, and re-emitting gives the same bytes.
//! Every gratuitous ARP frame is re-emitted byte for byte too.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use rvs_wire::vrrp::{Checksum, Packet, Repr};
use std::net::{IpAddr, Ipv4Addr};

struct Vector {
    title: String,
    frame: Vec<u8>,
    notes: String,
}

fn vectors() -> Vec<Vector> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/vrrp/keepalived-vrrp-captures.txt"
    );
    let text = std::fs::read_to_string(path).unwrap();
    let mut out: Vec<Vector> = Vec::new();
    for line in text.lines() {
        if let Some(t) = line.strip_prefix("## ") {
            out.push(Vector {
                title: t.to_owned(),
                frame: Vec::new(),
                notes: String::new(),
            });
        } else if let Some(h) = line.strip_prefix("hex: ") {
            let v = out.last_mut().unwrap();
            v.frame = (0..h.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap())
                .collect();
        } else if let Some(v) = out.last_mut() {
            v.notes.push_str(line);
            v.notes.push('\n');
        }
    }
    out
}

fn ip4(b: &[u8]) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]))
}

#[test]
fn every_captured_frame() {
    let vs = vectors();
    assert!(vs.len() >= 11, "captures shrank: {}", vs.len());
    let (mut vrrp, mut arp) = (0, 0);
    for v in &vs {
        let f = &v.frame;
        let ethertype = u16::from_be_bytes([f[12], f[13]]);
        if ethertype == rvs_wire::arp::ETHERTYPE_ARP {
            let r = rvs_wire::arp::Repr::parse(&f[14..]).unwrap();
            assert_eq!(r.sender_ip, r.target_ip, "{}: gratuitous", v.title);
            let g = rvs_wire::arp::Repr::gratuitous(r.sender_mac, r.sender_ip);
            let mut out = vec![0u8; rvs_wire::arp::FRAME_LEN];
            g.emit_frame(&mut out).unwrap();
            assert_eq!(&out, f, "{}: re-emitted ARP frame", v.title);
            arp += 1;
            continue;
        }
        assert_eq!(ethertype, 0x0800, "{}", v.title);
        assert_eq!(f[23], rvs_wire::vrrp::PROTO);
        assert_eq!(f[22], 255, "{}: TTL 255", v.title);
        let (src, dst) = (ip4(&f[26..30]), ip4(&f[30..34]));
        let msg = &f[34..];
        let p = Packet::new_checked(msg, false).unwrap();
        let ck = if p.version() == 3 {
            Checksum::Pseudo { src, dst }
        } else {
            Checksum::MessageOnly
        };
        let r = Repr::parse(&p, false, ck).unwrap_or_else(|e| panic!("{}: {e}", v.title));
        // The dissection's fields.
        let field = |name: &str| -> String {
            v.notes
                .lines()
                .find_map(|l| {
                    l.trim_start_matches('#')
                        .trim()
                        .strip_prefix(name)
                        .map(|x| x.trim().to_owned())
                })
                .unwrap_or_default()
        };
        assert_eq!(r.vrid.to_string(), field("Virtual Rtr ID:"), "{}", v.title);
        assert!(
            field("Priority:").starts_with(&r.priority.to_string()),
            "{}",
            v.title
        );
        assert_eq!(
            r.addrs,
            vec![IpAddr::V4(Ipv4Addr::new(198, 18, 0, 100))],
            "{}",
            v.title
        );
        assert_eq!(
            format!("0x{:04x}", p.checksum()),
            field("Checksum:").split_whitespace().next().unwrap(),
            "{}",
            v.title
        );
        if r.version == 3 {
            assert_eq!(r.interval, 10, "{}: 0.1 s = 10 cs", v.title);
        } else {
            assert_eq!(r.interval, 1, "{}", v.title);
            if v.title.contains("PASS") {
                assert_eq!(r.auth_type, 1);
                assert_eq!(r.auth_data, Repr::password("s3cret"));
            }
        }
        // Byte-for-byte re-emission.
        let mut out = vec![0u8; r.buffer_len()];
        r.emit(&mut out, ck).unwrap();
        assert_eq!(&out, msg, "{}: re-emitted", v.title);
        vrrp += 1;
    }
    assert!(vrrp >= 9 && arp >= 2, "vrrp {vrrp} arp {arp}");
}

#[test]
fn v3_unicast_checksum_depends_on_the_actual_destination() {
    let v = vectors()
        .into_iter()
        .find(|v| v.title.starts_with("VRRPv3 unicast 198.18.0.11"))
        .unwrap();
    let msg = &v.frame[34..];
    let p = Packet::new_checked(msg, false).unwrap();
    let src = ip4(&v.frame[26..30]);
    let group = IpAddr::V4(rvs_wire::vrrp::GROUP4);
    assert_eq!(
        Repr::parse(&p, false, Checksum::Pseudo { src, dst: group }),
        Err(rvs_wire::Error::Checksum)
    );
    assert_eq!(
        Repr::parse(&p, false, Checksum::MessageOnly),
        Err(rvs_wire::Error::Checksum)
    );
}

#[test]
fn bad_packets_are_errors_not_panics() {
    let v = vectors().into_iter().next().unwrap();
    let msg = v.frame[34..].to_vec();
    for n in 0..msg.len() {
        let _ = Packet::new_checked(&msg[..n], false)
            .map(|p| Repr::parse(&p, false, Checksum::MessageOnly));
    }
    assert_eq!(
        Packet::new_checked(&msg[..7], false).unwrap_err(),
        rvs_wire::Error::Truncated
    );
    let mut bad = msg.clone();
    bad[2] ^= 1;
    let p = Packet::new_checked(&bad, false).unwrap();
    assert_eq!(
        Repr::parse(&p, false, Checksum::MessageOnly),
        Err(rvs_wire::Error::Checksum)
    );
    let mut bad = msg;
    bad[0] = 0x41; // version 4
    let p = Packet::new_checked(&bad, false).unwrap();
    assert_eq!(
        Repr::parse(&p, false, Checksum::MessageOnly),
        Err(rvs_wire::Error::Malformed)
    );
}

proptest! {
    #[test]
    fn round_trip(v3 in any::<bool>(), v6 in any::<bool>(), vrid in 1u8.., prio in any::<u8>(), int in 1u16..4096, n in 1usize..20, seed in any::<u64>(), pass in "[a-z]{0,10}") {
        let v3 = v3 || v6;
        let addrs: Vec<IpAddr> = (0..n).map(|i| {
            let x = seed.wrapping_add(i as u64);
            if v6 { IpAddr::V6(u128::from(x).wrapping_mul(0x9e37_79b9_7f4a_7c15).into()) } else { IpAddr::V4(u32::try_from(x & 0xffff_ffff).unwrap().into()) }
        }).collect();
        let r = Repr {
            version: if v3 { 3 } else { 2 },
            vrid,
            priority: prio,
            interval: if v3 { int } else { int % 255 + 1 },
            addrs,
            auth_type: u8::from(!v3),
            auth_data: if v3 { [0; 8] } else { Repr::password(&pass) },
        };
        let (src, dst): (IpAddr, IpAddr) = if v6 { ("fd00:198:18::1".parse().unwrap(), "ff02::12".parse().unwrap()) } else { ("198.18.0.1".parse().unwrap(), "224.0.0.18".parse().unwrap()) };
        let ck = if v3 { Checksum::Pseudo { src, dst } } else { Checksum::MessageOnly };
        let mut buf = vec![0u8; r.buffer_len()];
        r.emit(&mut buf, ck).unwrap();
        let p = Packet::new_checked(&buf, v6).unwrap();
        prop_assert_eq!(Repr::parse(&p, v6, ck).unwrap(), r);
    }
}
