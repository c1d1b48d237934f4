//! Runtime changes (`rvs adm -A/-E/-D/-a/-e/-d/-C/--set`, as ipvsadm makes them to the
//! kernel) layered over the configuration's desired state.
//!
//! The daemon keeps the accepted commands in order and replays them on top of
//! `config + health` every time it computes the desired state, so a health event does not
//! undo an operator's change. A successful reload drops them: the file is the truth again
//! (docs/proxy.md, "Runtime changes").

use rvs_adm::cmd::{Command, DestSpec, SvcSpec};
use rvs_adm::SvcKey;
use rvs_sched::desired::{Desired, DesiredDest, DesiredService};
use rvs_sched::{Algo, Flags, Persistence};

/// Why a command cannot apply: ipvsadm's `ipvs_strerror` texts (spec §8).
pub type Refusal = &'static str;

fn settings(spec: &SvcSpec) -> Result<(Algo, Flags, Option<Persistence>), Refusal> {
    // No persistence engine (the kernel's `sip`) is implemented: the kernel's answer when
    // its module is missing.
    if spec.pe.is_some() {
        return Err("Scheduler or persistence engine not found");
    }
    let algo = Algo::from_name(&spec.sched).ok_or("Scheduler or persistence engine not found")?;
    let v6 = spec.id.is_v6();
    let prefix = if v6 {
        u8::try_from(spec.netmask.min(128)).unwrap_or(128)
    } else {
        u8::try_from(spec.netmask.leading_ones()).unwrap_or(32)
    };
    let persistence = spec.persistent.map(|t| Persistence {
        timeout_s: t,
        prefix,
    });
    let flags = Flags {
        fallback: spec.flags[0],
        port: spec.flags[1],
        sched3: spec.flags[2],
        ops: spec.ops,
    };
    Ok((algo, flags, persistence))
}

fn dest(d: &DestSpec) -> Result<DesiredDest, Refusal> {
    if d.l_threshold > d.u_threshold && d.u_threshold != 0 {
        return Err("Numerical result out of range");
    }
    Ok(DesiredDest {
        addr: d.addr,
        port: d.port,
        weight: d.weight,
        base_weight: d.weight,
        fwd: d.fwd.applied(),
        tun: d.tun,
        u_threshold: d.u_threshold,
        l_threshold: d.l_threshold,
    })
}

fn find<'a>(want: &'a mut Desired, id: &SvcKey) -> Option<&'a mut DesiredService> {
    let k = *id;
    want.services.iter_mut().find(|s| s.key == k)
}

/// Applies one command to a desired state, or says why not (nothing half-applied: every
/// check happens before the first change).
pub fn apply(want: &mut Desired, c: &Command) -> Result<(), Refusal> {
    match c {
        // The kernel IPVS and XDP planes run sync daemons (their forwarders take the
        // command before it gets here); the proxy terminates TCP: a connection cannot
        // move to another director, so there is nothing to synchronise.
        Command::StartDaemon(_) | Command::StopDaemon { .. } => {
            return Err(
                "the IPVS sync daemon synchronises connection tables: it runs with the kernel \
                 IPVS and XDP data planes (rvs run --dataplane ipvs|xdp), not the proxy, \
                 whose connections cannot move to another director; nothing started or \
                 stopped",
            )
        }
        Command::AddService(spec) => {
            if find(want, &spec.id).is_some() {
                return Err("Service already exists");
            }
            let (algo, flags, persistence) = settings(spec)?;
            want.services.push(DesiredService {
                flags,
                persistence,
                ..DesiredService::new(spec.id, algo)
            });
        }
        Command::EditService(spec) => {
            let (algo, flags, persistence) = settings(spec)?;
            let s = find(want, &spec.id).ok_or("No such service")?;
            s.algo = algo;
            s.flags = flags;
            s.persistence = persistence;
        }
        Command::DelService(id) => {
            let k = *id;
            let before = want.services.len();
            want.services.retain(|s| s.key != k);
            if want.services.len() == before {
                return Err("No such service");
            }
        }
        Command::Clear => want.services.clear(),
        Command::AddDest(id, d) => {
            let new = dest(d)?;
            let s = find(want, id).ok_or("Service not defined")?;
            if s.dests.iter().any(|x| x.addr == d.addr && x.port == d.port) {
                return Err("Destination already exists");
            }
            s.dests.push(new);
        }
        Command::EditDest(id, d) => {
            let new = dest(d)?;
            let s = find(want, id).ok_or("Service not defined")?;
            let x = s
                .dests
                .iter_mut()
                .find(|x| x.addr == d.addr && x.port == d.port)
                .ok_or("No such destination")?;
            // Quiesced (`-w 0`): it keeps the weight it had for the hashing tables.
            let base = if new.weight > 0 {
                new.weight
            } else {
                x.base_weight
            };
            *x = DesiredDest {
                base_weight: base,
                ..new
            };
        }
        Command::DelDest(id, addr, port) => {
            let s = find(want, id).ok_or("Service not defined")?;
            let before = s.dests.len();
            s.dests.retain(|x| !(x.addr == *addr && x.port == *port));
            if s.dests.len() == before {
                return Err("No such destination");
            }
        }
        Command::Zero(Some(id)) => {
            find(want, id).ok_or("No such service")?;
        }
        Command::Zero(None) => {}
        Command::SetTimeouts([tcp, fin, udp]) => {
            want.timeouts.set(*tcp, *fin, *udp);
            want.kernel_timeouts = Some([*tcp, *fin, *udp]);
        }
    }
    Ok(())
}

/// Replays accepted commands over a fresh desired state. A command that no longer
/// applies (its real server was taken out by a failing check) is skipped.
pub fn replay(mut want: Desired, cmds: &[Command]) -> Desired {
    for c in cmds {
        let _ = apply(&mut want, c);
    }
    want
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests panic on failure")]
mod tests {
    use super::*;

    fn cmd(s: &str) -> Command {
        let args: Vec<String> = s.split_whitespace().map(str::to_owned).collect();
        match rvs_adm::cmd::parse(&args).unwrap() {
            rvs_adm::cmd::Invocation::Apply(c) => c,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn ipvsadm_semantics() {
        let mut d = Desired::default();
        apply(
            &mut d,
            &cmd("-A -t 198.18.0.1:80 -s wrr -p 60 -M 255.255.255.0"),
        )
        .unwrap();
        assert_eq!(
            apply(&mut d, &cmd("-A -t 198.18.0.1:80")),
            Err("Service already exists")
        );
        apply(&mut d, &cmd("-a -t 198.18.0.1:80 -r 198.18.0.2 -m -w 3")).unwrap();
        assert_eq!(
            apply(&mut d, &cmd("-a -t 198.18.0.1:80 -r 198.18.0.2 -m")),
            Err("Destination already exists")
        );
        assert_eq!(
            apply(&mut d, &cmd("-a -t 198.18.0.9:80 -r 198.18.0.2")),
            Err("Service not defined")
        );
        assert_eq!(
            apply(&mut d, &cmd("-E -t 198.18.0.1:80 -s nope")),
            Err("Scheduler or persistence engine not found")
        );
        let s = &d.services[0];
        assert_eq!(s.algo, Algo::Wrr);
        assert_eq!(s.persistence.unwrap().prefix, 24);
        assert_eq!(s.dests[0].weight, 3);
        apply(&mut d, &cmd("-e -t 198.18.0.1:80 -r 198.18.0.2 -m -w 0")).unwrap();
        assert_eq!(d.services[0].dests[0].weight, 0);
        apply(&mut d, &cmd("-d -t 198.18.0.1:80 -r 198.18.0.2")).unwrap();
        assert!(d.services[0].dests.is_empty());
        apply(&mut d, &cmd("-C")).unwrap();
        assert!(d.services.is_empty());
    }
}
