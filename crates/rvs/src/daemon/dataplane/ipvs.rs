//! Kernel IPVS: rvs programs the kernel's table over netlink and the kernel forwards.
//! The netlink handle lives on its own thread ([`Owner`]), which also copies the
//! kernel's counters and connection counts into the table and the sync-daemon lines
//! into the snapshots, once a second.

use super::owner::Owner;
use super::{ApplyError, Forwarder, Fut, Kind, Snapshots};
use rvs_proxy::Shared;
use rvs_sched::desired::Desired;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

/// What the owning thread holds.
struct State {
    ipvs: rvs_ipvs::Ipvs,
    /// The services rvs created or adopted (others in the kernel are left alone).
    managed: HashSet<rvs_sched::SvcKey>,
    shared: Arc<Shared>,
    snapshots: Arc<Snapshots>,
    /// `lvs_flush_on_stop`: the whole table goes at stop.
    flush_on_stop: bool,
}

/// keepalived's `lvs_flush` and `lvs_flush_on_stop`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Flush {
    pub at_start: bool,
    pub at_stop: bool,
}

pub struct IpvsForwarder {
    owner: Owner<State>,
}

impl IpvsForwarder {
    /// Opens the kernel's IPVS (fails with what to do when the kernel has none).
    pub fn open(
        shared: Arc<Shared>,
        snapshots: Arc<Snapshots>,
        flush: Flush,
        netns: Option<&str>,
        bufs: rvs_conf::model::RcvBufs,
    ) -> anyhow::Result<IpvsForwarder> {
        let mut ipvs = match netns {
            // net_namespace_ipvs: the netlink socket is opened in that namespace and
            // talks to its tables from then on.
            Some(ns) => crate::daemon::netns::run_in(ns, rvs_ipvs::Ipvs::open)
                .map_err(|e| anyhow::anyhow!("net_namespace_ipvs '{ns}': {e}"))?,
            None => rvs_ipvs::Ipvs::open(),
        }
        .map_err(|e| anyhow::anyhow!("--dataplane ipvs: {e}"))?;
        if let Some(size) = bufs.size {
            let bytes = usize::try_from(size).unwrap_or(usize::MAX);
            ipvs.set_recv_buffer(bytes, bufs.force)
                .map_err(|e| anyhow::anyhow!("lvs_netlink_cmd_rcv_bufs {size}: {e}"))?;
        }
        if let Some(ns) = netns {
            tracing::info!("kernel IPVS over netlink, in namespace '{ns}'");
        } else {
            tracing::info!("kernel IPVS over netlink");
        }
        if flush.at_start {
            ipvs.flush()
                .map_err(|e| anyhow::anyhow!("lvs_flush: {e}"))?;
            tracing::info!("lvs_flush: the kernel's IPVS table emptied");
        }
        let state = State {
            ipvs,
            managed: HashSet::new(),
            shared,
            snapshots,
            flush_on_stop: flush.at_stop,
        };
        let owner = Owner::spawn("rvs-ipvs", state, |st| {
            st.copy_counters();
            Duration::from_secs(1)
        })?;
        Ok(IpvsForwarder { owner })
    }
}

fn stopped() -> Vec<ApplyError> {
    vec![ApplyError::Stopping(Kind::Ipvs)]
}

impl Forwarder for IpvsForwarder {
    fn kind(&self) -> Kind {
        Kind::Ipvs
    }

    fn apply<'a>(&'a mut self, want: &'a Desired) -> Fut<'a, Result<(), Vec<ApplyError>>> {
        let mut want = want.clone();
        // FULLNAT is not a stock kernel method: those services are refused, whole.
        let mut refused: Vec<ApplyError> = Vec::new();
        want.services.retain(|s| {
            let fnat = s.dests.iter().any(|d| d.fwd == rvs_sched::Fwd::FullNat);
            if fnat {
                refused.push(ApplyError::FullNatKernel { service: s.key });
            }
            !fnat
        });
        Box::pin(async move {
            let res = self
                .owner
                .call(move |st| rvs_ipvs::reconcile(&mut st.ipvs, &want, &mut st.managed))
                .await
                .ok_or_else(stopped)?;
            match res {
                Ok(r) => {
                    if r != rvs_ipvs::Report::default() {
                        tracing::info!("kernel IPVS: {r:?}");
                    }
                    if refused.is_empty() {
                        Ok(())
                    } else {
                        Err(refused)
                    }
                }
                Err(errs) => {
                    refused.extend(errs.into_iter().map(ApplyError::from));
                    Err(refused)
                }
            }
        })
    }

    fn command<'a>(
        &'a mut self,
        c: &'a rvs_adm::cmd::Command,
    ) -> Fut<'a, Option<Result<(), String>>> {
        let c = c.clone();
        Box::pin(async move {
            self.owner
                .call(move |st| st.command(&c))
                .await
                .unwrap_or_else(|| Some(Err("the data plane is stopping".to_owned())))
        })
    }

    fn leave(self: Box<Self>) -> Fut<'static, ()> {
        Box::pin(async move {
            // The services stay in the kernel (their connections with them): the rvs
            // that took over adopts them at its first reconcile.
            tracing::info!("kernel IPVS services left to the rvs that took over");
            self.owner.stop().await;
        })
    }

    fn stop(self: Box<Self>) -> Fut<'static, ()> {
        Box::pin(async move {
            // As keepalived does at stop: remove what rvs put in the kernel.
            let _ = self
                .owner
                .call(|st| {
                    if st.flush_on_stop {
                        match st.ipvs.flush() {
                            Ok(()) => {
                                tracing::info!(
                                    "lvs_flush_on_stop: the kernel's IPVS table emptied"
                                );
                            }
                            Err(e) => tracing::warn!("lvs_flush_on_stop: {e}"),
                        }
                    } else {
                        for key in &st.managed {
                            if let Err(e) = st.ipvs.del_service(key) {
                                tracing::warn!("removing a kernel IPVS service at stop: {e}");
                            }
                        }
                    }
                    st.managed.clear();
                })
                .await;
            self.owner.stop().await;
        })
    }
}

impl State {
    /// `--start-daemon` / `--stop-daemon` / `-Z` in the kernel; `None` for the others.
    fn command(&mut self, c: &rvs_adm::cmd::Command) -> Option<Result<(), String>> {
        let r = match c {
            rvs_adm::cmd::Command::StartDaemon(d) => self.ipvs.new_daemon(&rvs_ipvs::SyncDaemon {
                state: d.state.clone(),
                ifname: d.ifname.clone(),
                syncid: u32::from(d.syncid),
                maxlen: d.maxlen,
                group: d.group,
                port: d.port,
                ttl: d.ttl,
            }),
            rvs_adm::cmd::Command::StopDaemon { state, .. } => self.ipvs.del_daemon(state),
            // Counters live in the kernel: zero them there (the table copy follows).
            rvs_adm::cmd::Command::Zero(id) => self.ipvs.zero(id.as_ref()),
            _ => return None,
        };
        let r = r.map_err(|e| match e {
            rvs_ipvs::IpvsError::Kernel { errno, .. } if errno == libc::EEXIST => {
                "Daemon has already run".to_owned()
            }
            rvs_ipvs::IpvsError::Kernel { errno, .. } if errno == libc::ESRCH => {
                if matches!(c, rvs_adm::cmd::Command::Zero(_)) {
                    "No such service".to_owned()
                } else {
                    "No daemon is running".to_owned()
                }
            }
            e => e.to_string(),
        });
        self.publish_daemons();
        Some(r)
    }

    fn publish_daemons(&mut self) {
        if let Ok(ds) = self.ipvs.daemons() {
            self.snapshots.sync_daemons.store(Arc::new(
                ds.iter().map(rvs_ipvs::SyncDaemon::line).collect(),
            ));
        }
    }

    /// Copies the kernel's per-real-server counters and connection counts into the
    /// table's, and the sync daemons into the snapshots.
    fn copy_counters(&mut self) {
        self.publish_daemons();
        let Ok(services) = self.ipvs.services() else {
            return;
        };
        let by_key = self.shared.services_by_key();
        for s in services {
            let Ok(dests) = self.ipvs.dests(&s.key) else {
                continue;
            };
            let Some(svc) = by_key.get(&s.key) else {
                continue;
            };
            {
                // Active/inactive/persistent counts, for listings.
                let mut table = svc.table();
                if let Some(ts) = table
                    .services
                    .iter_mut()
                    .find(|t| t.key == s.key && !t.removed)
                {
                    for d in &dests {
                        if let Some(id) = ts.find(d.addr, d.port) {
                            ts.set_conn_counts(id, d.active, d.inactive, d.persist);
                        }
                    }
                }
            }
            for d in dests {
                svc.counters(std::net::SocketAddr::new(d.addr, d.port))
                    .store(rvs_sched::estimator::Totals {
                        conns: d.stats.conns,
                        in_pkts: d.stats.inpkts,
                        out_pkts: d.stats.outpkts,
                        in_bytes: d.stats.inbytes,
                        out_bytes: d.stats.outbytes,
                    });
            }
        }
    }
}
