//! Per-scheduler sequences computed by hand from the spec (ipvs-schedulers.md).
//!
//! List order: the kernel inserts a new destination at the **head** of the service's list,
//! and keepalived adds real servers in config order, so for real servers A, B, C in the
//! config the kernel iterates C, B, A. Every tie-break below follows from that.

// Tests panic on failure so that the failing line is the report (STYLE.md).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation
)]

use rvs_sched::{Algo, Compat, Dest, DestId, Flags, Fwd, PktInfo, Proto, Service, SvcKey};
use std::net::IpAddr;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// A service with dests added in `config` order; returns it and the ids in config order.
fn svc(algo: Algo, config: &[(&str, i32)]) -> (Service, Vec<DestId>) {
    svc_flags(algo, config, Flags::default())
}

fn svc_flags(algo: Algo, config: &[(&str, i32)], flags: Flags) -> (Service, Vec<DestId>) {
    let key = SvcKey::Addr {
        proto: Proto::Tcp,
        addr: ip("198.18.0.100"),
        port: 80,
    };
    let mut s = Service::new(key, algo, flags, Compat::default());
    let ids = config
        .iter()
        .map(|(a, w)| s.add_dest(Dest::new(ip(a), 80, *w, Fwd::Route)).unwrap())
        .collect();
    (s, ids)
}

fn pkt(src: &str, sport: u16) -> PktInfo {
    PktInfo {
        proto: Proto::Tcp,
        src: ip(src),
        sport,
        dst: ip("198.18.0.100"),
        dport: 80,
    }
}

fn picks(s: &mut Service, n: usize) -> Vec<Option<DestId>> {
    let p = pkt("198.18.1.1", 1000);
    (0..n).map(|_| s.schedule(&p, 0, &mut || 0)).collect()
}

const A: &str = "198.18.0.1";
const B: &str = "198.18.0.2";
const C: &str = "198.18.0.3";
const D: &str = "198.18.0.4";

#[test]
fn list_order_is_newest_first() {
    let (s, ids) = svc(Algo::Rr, &[(A, 1), (B, 1), (C, 1)]);
    let order: Vec<DestId> = s.dests().map(|(id, _)| id).collect();
    assert_eq!(order, vec![ids[2], ids[1], ids[0]]);
}

#[test]
fn rr_starts_with_the_last_configured() {
    // Config A, B, C → list C, B, A → the walk from the head picks C first.
    let (mut s, ids) = svc(Algo::Rr, &[(A, 1), (B, 1), (C, 1)]);
    let (a, b, c) = (Some(ids[0]), Some(ids[1]), Some(ids[2]));
    assert_eq!(picks(&mut s, 7), vec![c, b, a, c, b, a, c]);
}

#[test]
fn rr_skips_weight_zero_and_overloaded_and_survives_delete() {
    let (mut s, ids) = svc(Algo::Rr, &[(A, 1), (B, 0), (C, 1)]);
    let (a, c) = (Some(ids[0]), Some(ids[2]));
    assert_eq!(picks(&mut s, 4), vec![c, a, c, a]);
    // Saved pointer is A (last pick); deleting A moves it to its predecessor (B), so the
    // next pick is A's successor, which wraps to C.
    s.del_dest(ids[0]).unwrap();
    assert_eq!(picks(&mut s, 2), vec![c, c]);
    s.edit_dest(ids[2], 0, 0, 0).unwrap();
    assert_eq!(picks(&mut s, 1), vec![None], "all quiesced: none");
}

#[test]
fn wrr_sequence_from_the_spec() {
    // List order A, B, C with weights 4, 3, 2 means config order C, B, A.
    // keepalived adds them one at a time, and the kernel adjusts cw on each add
    // (`ip_vs_wrr_dest_changed`): after C alone, di = 2 and mw = 2 − (2 − 1) = 1, so
    // cw = 1; adding B and A keeps cw = 1. The first round is therefore the cw = 1 pass
    // (A B C); from then on the spec's cycle A A B A B C A B C repeats.
    let (mut s, ids) = svc(Algo::Wrr, &[(C, 2), (B, 3), (A, 4)]);
    let (c, b, a) = (Some(ids[0]), Some(ids[1]), Some(ids[2]));
    let cycle = vec![a, a, b, a, b, c, a, b, c];
    assert_eq!(
        picks(&mut s, 21),
        [vec![a, b, c], cycle.clone(), cycle].concat()
    );
}

#[test]
fn wrr_with_gcd() {
    // Weights 4 and 2 (di = 2, mw = 3): passes at cw = 3 then 1 → A, A, B per cycle.
    // Config B then A: after B alone cw = 1, and adding A keeps cw = (1/2)·2 + 1 = 1,
    // so the first round is the cw = 1 pass (A B).
    let (mut s, ids) = svc(Algo::Wrr, &[(B, 2), (A, 4)]);
    let (b, a) = (Some(ids[0]), Some(ids[1]));
    assert_eq!(picks(&mut s, 8), vec![a, b, a, a, b, a, a, b]);
}

#[test]
fn lc_wlc_sed_nq_by_counters() {
    // Counters: set by binding connections (inactive) and activating some.
    let setup = |algo| {
        let (mut s, ids) = svc(algo, &[(A, 1), (B, 2), (C, 3)]);
        // A: 1 active; B: 2 active; C: 4 active + 1 inactive.
        for (id, active, inactive) in [(ids[0], 1, 0), (ids[1], 2, 0), (ids[2], 4, 1)] {
            for _ in 0..active + inactive {
                s.bind(id, false);
            }
            for _ in 0..active {
                s.set_active(id, true);
            }
        }
        (s, ids)
    };
    // lc: overhead (NEW) = 257·A + I: A 257, B 514, C 1029 → A.
    let (mut s, ids) = setup(Algo::Lc);
    assert_eq!(picks(&mut s, 1), vec![Some(ids[0])]);
    // wlc: overhead/weight: A 257, B 257, C 343 → list order C, B, A: C first (343), B
    // (257·3 > 514·... compare loh·w_d > doh·w_least): C→B since 1029·2 > 514·3; B→A?
    // 514·1 > 257·2 is false (equal) → stays B.
    let (mut s, ids) = setup(Algo::Wlc);
    assert_eq!(picks(&mut s, 1), vec![Some(ids[1])]);
    // sed: (active+1)/weight: A 2, B 1.5, C 1.67 → B.
    let (mut s, ids) = setup(Algo::Sed);
    assert_eq!(picks(&mut s, 1), vec![Some(ids[1])]);
    // nq: no idle dest, so like sed → B.
    let (mut s, ids) = setup(Algo::Nq);
    assert_eq!(picks(&mut s, 1), vec![Some(ids[1])]);
    // nq picks the first idle server in list order.
    let (mut s, ids) = svc(Algo::Nq, &[(A, 1), (B, 5), (C, 1)]);
    s.bind(ids[2], false);
    s.set_active(ids[2], true);
    assert_eq!(
        picks(&mut s, 1),
        vec![Some(ids[1])],
        "C busy, B idle and first"
    );
}

#[test]
fn classic_overhead_differs() {
    // A: 1 active, 0 inactive; B: 0 active, 255 inactive, same weight.
    // CLASSIC: A 256, B 255 → B. NEW: A 257, B 255 → B too; with B at 256 inactive:
    // CLASSIC tie (256 vs 256) → first in list; NEW: A 257 > 256 → B.
    for (new, want_b) in [(false, false), (true, true)] {
        let key = SvcKey::Addr {
            proto: Proto::Tcp,
            addr: ip("198.18.0.100"),
            port: 80,
        };
        let compat = Compat {
            overhead_new: new,
            ..Compat::default()
        };
        let mut s = Service::new(key, Algo::Lc, Flags::default(), compat);
        let b = s.add_dest(Dest::new(ip(B), 80, 1, Fwd::Route)).unwrap();
        let a = s.add_dest(Dest::new(ip(A), 80, 1, Fwd::Route)).unwrap();
        s.bind(a, false);
        s.set_active(a, true);
        for _ in 0..256 {
            s.bind(b, false);
        }
        let got = s.schedule(&pkt(C, 1), 0, &mut || 0);
        assert_eq!(got == Some(b), want_b, "overhead_new={new}");
    }
}

#[test]
fn fo_ovf() {
    let (mut s, ids) = svc(Algo::Fo, &[(A, 5), (B, 9), (C, 9)]);
    // Highest weight, first of equals in list order (C before B).
    assert_eq!(picks(&mut s, 1), vec![Some(ids[2])]);
    let (mut s, ids) = svc(Algo::Ovf, &[(A, 5), (B, 1), (C, 2)]);
    assert_eq!(picks(&mut s, 1), vec![Some(ids[0])]);
    for _ in 0..6 {
        s.bind(ids[0], false);
        s.set_active(ids[0], true);
    }
    // A has 6 active > weight 5: overflow to the next highest weight, C.
    assert_eq!(picks(&mut s, 1), vec![Some(ids[2])]);
}

#[test]
fn thresholds_set_and_clear_overload() {
    let (mut s, ids) = svc(Algo::Rr, &[(A, 1), (B, 1)]);
    s.edit_dest(ids[1], 1, 2, 0).unwrap(); // B: upper threshold 2, lower = ceil(3·2/4) = 2
    s.bind(ids[1], false);
    assert!(!s.dest(ids[1]).overloaded);
    s.bind(ids[1], false);
    assert!(s.dest(ids[1]).overloaded, "conns reached u = 2");
    // Overloaded B is skipped: rr gives A every time.
    assert_eq!(picks(&mut s, 3), vec![Some(ids[0]); 3]);
    s.unbind(ids[1], false, false);
    assert!(!s.dest(ids[1]).overloaded, "dropped below l_val");
}

#[test]
fn twos_is_deterministic_with_an_injected_rng() {
    let (mut s, ids) = svc(Algo::Twos, &[(A, 1), (B, 1)]);
    // total = 2 + 1 = 3; r = (rand · 3) >> 32. rand 0 → r 0 → first dest in list (B) for
    // both choices.
    let got = s.schedule(&pkt(C, 1), 0, &mut || 0);
    assert_eq!(got, Some(ids[1]));
    // rand u32::MAX → r = 2 → walks past B (2-1=1) to A (1-1=0).
    let got = s.schedule(&pkt(C, 1), 0, &mut || u32::MAX);
    assert_eq!(got, Some(ids[0]));
}

#[test]
fn empty_and_quiesced_services_give_none() {
    for algo in [
        Algo::Rr,
        Algo::Wrr,
        Algo::Lc,
        Algo::Wlc,
        Algo::Sed,
        Algo::Nq,
        Algo::Dh,
        Algo::Sh,
        Algo::Mh,
        Algo::Lblc,
        Algo::Lblcr,
        Algo::Fo,
        Algo::Ovf,
        Algo::Twos,
    ] {
        let (mut s, _) = svc(algo, &[]);
        assert_eq!(picks(&mut s, 1), vec![None], "{algo:?} empty");
        let (mut s, _) = svc(algo, &[(A, 0), (B, 0)]);
        assert_eq!(picks(&mut s, 1), vec![None], "{algo:?} all weight 0");
    }
}

#[test]
fn sh_tiles_weights_and_falls_back() {
    let (s, ids) = svc(Algo::Sh, &[(A, 1), (B, 3)]);
    let t = s.table().unwrap();
    // List order B (weight 3), A (weight 1): B B B A repeated over 256 buckets.
    assert_eq!(
        &t[..8],
        &[
            Some(ids[1]),
            Some(ids[1]),
            Some(ids[1]),
            Some(ids[0]),
            Some(ids[1]),
            Some(ids[1]),
            Some(ids[1]),
            Some(ids[0])
        ]
    );
    assert_eq!(t.iter().filter(|x| **x == Some(ids[1])).count(), 192);
    // Without fallback a quiesced bucket owner gives none; with sh-fallback another dest.
    let flags = Flags {
        fallback: true,
        ..Flags::default()
    };
    let (mut fb, fids) = svc_flags(Algo::Sh, &[(A, 1), (B, 1)], flags);
    let (mut nofb, nids) = svc(Algo::Sh, &[(A, 1), (B, 1)]);
    let mut saw_none = false;
    for i in 0..64u8 {
        let p = pkt(&format!("198.18.2.{i}"), 1);
        let owner = nofb.schedule(&p, 0, &mut || 0).unwrap();
        nofb.edit_dest(owner, 0, 0, 0).unwrap();
        saw_none |= nofb.schedule(&p, 0, &mut || 0).is_none();
        nofb.edit_dest(owner, 1, 0, 0).unwrap();
        let fowner = fb.schedule(&p, 0, &mut || 0).unwrap();
        let other = if fowner == fids[0] { fids[1] } else { fids[0] };
        fb.edit_dest(fowner, 0, 0, 0).unwrap();
        assert_eq!(fb.schedule(&p, 0, &mut || 0), Some(other));
        fb.edit_dest(fowner, 1, 0, 0).unwrap();
    }
    assert!(saw_none);
    let _ = nids;
}

#[test]
fn dh_hashes_destination_and_ignores_weight_updates() {
    let (mut s, ids) = svc(Algo::Dh, &[(A, 1), (B, 1)]);
    // bucket i = list[i mod 2] = B, A, B, A, ...
    let t = s.table().unwrap().to_vec();
    assert_eq!(
        &t[..4],
        &[Some(ids[1]), Some(ids[0]), Some(ids[1]), Some(ids[0])]
    );
    s.edit_dest(ids[0], 7, 0, 0).unwrap();
    assert_eq!(
        s.table().unwrap(),
        &t[..],
        "dh does not refill on weight updates"
    );
}

#[test]
fn mh_quiesce_keeps_the_table() {
    let (mut s, ids) = svc(Algo::Mh, &[(A, 1), (B, 1), (C, 1)]);
    let before = s.table().unwrap().to_vec();
    assert_eq!(before.len(), 4093);
    s.edit_dest(ids[0], 0, 0, 0).unwrap();
    assert_eq!(
        s.table().unwrap(),
        &before[..],
        "turns come from last_weight"
    );
}

#[test]
fn lblc_sticks_to_a_destination_address() {
    let (mut s, ids) = svc(Algo::Lblc, &[(A, 1), (B, 1)]);
    let p = PktInfo {
        proto: Proto::Tcp,
        src: ip(D),
        sport: 1,
        dst: ip("198.18.9.9"),
        dport: 80,
    };
    let first = s.schedule(&p, 0, &mut || 0).unwrap();
    // Load the chosen one a bit (still not lblc-overloaded): the cache keeps it.
    s.bind(first, false);
    s.set_active(first, true);
    assert_eq!(s.schedule(&p, 1000, &mut || 0), Some(first));
    // After the 24 h expiry (full scan on the 30th minute-check), the entry is gone and
    // wlc decides again: the other dest, idle.
    let later = 31 * 60_000 + 24 * 3600 * 1000;
    let other = if first == ids[0] { ids[1] } else { ids[0] };
    assert_eq!(s.schedule(&p, later, &mut || 0), Some(other));
}

#[test]
fn lblcr_replicates_when_the_member_is_overloaded() {
    let (mut s, ids) = svc(Algo::Lblcr, &[(A, 1), (B, 1)]);
    let p = PktInfo {
        proto: Proto::Tcp,
        src: ip(D),
        sport: 1,
        dst: ip("198.18.9.9"),
        dport: 80,
    };
    // wlc over B, A (list order): both idle → B; the set for the address is {B}.
    assert_eq!(s.schedule(&p, 0, &mut || 0), Some(ids[1]));
    // B gets 2 active (> weight 1) while A has 0 (0·2 < 1): B is lblc-overloaded, so the
    // wlc choice (A) joins the set and is used.
    for _ in 0..2 {
        s.bind(ids[1], false);
        s.set_active(ids[1], true);
    }
    assert_eq!(s.schedule(&p, 1, &mut || 0), Some(ids[0]));
    // A is now the least loaded member of the set: it stays chosen.
    assert_eq!(s.schedule(&p, 2, &mut || 0), Some(ids[0]));
}
