//! Between the scheduling core's types (`rvs_sched`) and the ipvsadm/API types
//! (`rvs_adm`): one place for both directions, so the API and the runtime-change overlay
//! cannot disagree on what a service or a forwarding method is.

use rvs_adm::SvcId;
use rvs_sched::SvcKey;

pub fn adm_proto(p: rvs_sched::Proto) -> rvs_adm::Proto {
    match p {
        rvs_sched::Proto::Tcp => rvs_adm::Proto::Tcp,
        rvs_sched::Proto::Udp => rvs_adm::Proto::Udp,
        rvs_sched::Proto::Sctp => rvs_adm::Proto::Sctp,
    }
}

fn sched_proto(p: rvs_adm::Proto) -> rvs_sched::Proto {
    match p {
        rvs_adm::Proto::Tcp => rvs_sched::Proto::Tcp,
        rvs_adm::Proto::Udp => rvs_sched::Proto::Udp,
        rvs_adm::Proto::Sctp => rvs_sched::Proto::Sctp,
    }
}

pub fn adm_id(k: SvcKey) -> SvcId {
    match k {
        SvcKey::Addr { proto, addr, port } => SvcId::Addr {
            proto: adm_proto(proto),
            addr,
            port,
        },
        SvcKey::Fwmark { mark, v6 } => SvcId::Fwmark { mark, v6 },
    }
}

pub fn sched_key(id: &SvcId) -> SvcKey {
    match id {
        SvcId::Addr { proto, addr, port } => SvcKey::Addr {
            proto: sched_proto(*proto),
            addr: *addr,
            port: *port,
        },
        SvcId::Fwmark { mark, v6 } => SvcKey::Fwmark {
            mark: *mark,
            v6: *v6,
        },
    }
}

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
