//! Between the scheduling core's forwarding method (`rvs_sched::Fwd`: masq, route,
//! tunnel) and ipvsadm's (`rvs_adm::Fwd`, which also has `Local`): one place for both
//! directions. Services and protocols need no conversion: both crates use `rvs-types`.

pub fn adm_fwd(f: rvs_sched::Fwd) -> rvs_adm::Fwd {
    match f {
        rvs_sched::Fwd::Masq => rvs_adm::Fwd::Masq,
        rvs_sched::Fwd::Route => rvs_adm::Fwd::Route,
        rvs_sched::Fwd::Tunnel => rvs_adm::Fwd::Tunnel,
    }
}

/// ipvsadm's Local method is saved and applied as `-g` (spec §6).
pub fn sched_fwd(f: rvs_adm::Fwd) -> rvs_sched::Fwd {
    match f {
        rvs_adm::Fwd::Masq => rvs_sched::Fwd::Masq,
        rvs_adm::Fwd::Tunnel => rvs_sched::Fwd::Tunnel,
        rvs_adm::Fwd::Route | rvs_adm::Fwd::Local => rvs_sched::Fwd::Route,
    }
}

/// ipvsadm's `--tun-info` text: `ipip`, `gue:PORT:FLAGS`, `gre:FLAGS` with flags `-c`
/// (nocsum), `+c` (csum), `r+c` (remcsum).
pub fn tun_info(t: rvs_sched::Tun) -> String {
    let flags = ["-c", "+c", "r+c"][usize::from(t.flags.min(2))];
    match t.kind {
        rvs_sched::Tun::GUE => format!("gue:{}:{flags}", t.port),
        rvs_sched::Tun::GRE => format!("gre:{flags}"),
        _ => "ipip".to_owned(),
    }
}
