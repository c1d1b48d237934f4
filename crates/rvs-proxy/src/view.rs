//! What the operator interface reads of the tables (`ipvsadm -L`, `-Lc`, the control API,
//! the metrics): a [`View`] the proxy's upkeep task builds on request and publishes
//! through a `watch` channel.
//!
//! The control plane never takes a service's table lock: it asks ([`Shared::view`]) and
//! waits for a view built after its request. The proxy's upkeep task, which already
//! advances each service's timers, hands the copy to a blocking thread (one at a time:
//! requests that arrive meanwhile are answered by the next pass), which holds a table
//! only to copy one service's entries, and copies connections in chunks of [`CHUNK`]
//! slots, releasing the table between chunks: a connection opening on that service
//! waits at most one chunk however large the table is, and no runtime thread waits at
//! all. A view is one pass, not an atomic copy: as in the kernel's `/proc` walk, a
//! connection that moves between two chunks may be listed twice or not at all.

use crate::{Counters, ServiceShard, Shared};
use rvs_sched::SvcKey;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Notify};

/// Slots of a connection table copied per hold of its lock.
pub const CHUNK: usize = 1024;

/// How long a reader waits for a pass before it answers with the last view published
/// (a table held that long is a bug elsewhere; the listing is then stale, not absent).
const WAIT: Duration = Duration::from_secs(30);

/// The tables as the operator interface lists them.
#[derive(Debug, Default)]
pub struct View {
    /// The request it answers: built after every request numbered up to this.
    pub seq: u64,
    /// The services in the kernel's order, with their real servers and counters.
    /// Services a reload removed but whose connections still drain are left out, as
    /// the kernel unlinks them at once.
    pub services: Vec<rvs_adm::Service>,
    /// Every connection and template, when the request asked for them.
    pub conns: Option<Vec<rvs_adm::Conn>>,
}

/// Requests and the published view.
pub(crate) struct Board {
    asked: AtomicU64,
    want_conns: AtomicBool,
    /// A pass is under way on a blocking thread.
    building: AtomicBool,
    /// The upkeep task has stopped (the proxy shut down): readers build views themselves.
    closed: AtomicBool,
    notify: Notify,
    tx: watch::Sender<Arc<View>>,
}

impl Default for Board {
    fn default() -> Board {
        Board {
            asked: AtomicU64::new(0),
            want_conns: AtomicBool::new(false),
            building: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            notify: Notify::new(),
            tx: watch::Sender::new(Arc::new(View::default())),
        }
    }
}

impl Board {
    /// The upkeep task stops: readers waiting now, and later ones, build their views.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.tx.send_modify(|_| ());
    }

    /// Waits for a request (the upkeep task's side).
    pub(crate) async fn requested(&self) {
        self.notify.notified().await;
    }
}

impl Shared {
    /// The tables now (built after this call began), with the connections if `conns`.
    pub async fn view(&self, conns: bool) -> Arc<View> {
        let b = &self.board;
        let mut rx = b.tx.subscribe();
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if conns {
                b.want_conns.store(true, Ordering::SeqCst);
            }
            let seq = b.asked.fetch_add(1, Ordering::SeqCst) + 1;
            b.notify.notify_one();
            loop {
                if b.closed.load(Ordering::SeqCst) {
                    return Arc::new(self.build_view(seq, conns));
                }
                let v = rx.borrow_and_update().clone();
                if v.seq >= seq {
                    if conns && v.conns.is_none() {
                        // Another request's pass took the flag before ours was counted:
                        // ask again.
                        break;
                    }
                    return v;
                }
                if tokio::time::timeout_at(deadline, rx.changed())
                    .await
                    .is_err()
                {
                    tracing::warn!(
                        "no listing of the tables within {WAIT:?}: answering with the last one"
                    );
                    return v;
                }
            }
        }
    }

    /// Answers the requests so far on a blocking thread, unless a pass is under way
    /// (it then makes another pass for them). The upkeep task's side.
    pub(crate) fn answer_requests(self: &Arc<Shared>) {
        let b = &self.board;
        if b.building.swap(true, Ordering::SeqCst) {
            return;
        }
        let s = self.clone();
        tokio::task::spawn_blocking(move || loop {
            let seq = s.publish_view();
            let b = &s.board;
            b.building.store(false, Ordering::SeqCst);
            if b.asked.load(Ordering::SeqCst) <= seq || b.building.swap(true, Ordering::SeqCst) {
                break;
            }
        });
    }

    /// Builds and publishes a view for the requests so far; returns the last it answers.
    fn publish_view(&self) -> u64 {
        let seq = self.board.asked.load(Ordering::SeqCst);
        let conns = self.board.want_conns.swap(false, Ordering::SeqCst);
        let v = self.build_view(seq, conns);
        self.board.tx.send_replace(Arc::new(v));
        seq
    }

    fn build_view(&self, seq: u64, conns: bool) -> View {
        let now = self.now_ms();
        let mut v = View {
            seq,
            services: Vec::new(),
            conns: conns.then(Vec::new),
        };
        for shard in self.services().iter() {
            let counters: HashMap<SocketAddr, Arc<Counters>> =
                shard.all_counters().into_iter().collect();
            {
                let table = shard.table();
                for s in table.services.iter().filter(|s| !s.removed) {
                    v.services.push(listing(s, &counters));
                }
            }
            if let Some(list) = v.conns.as_mut() {
                connections(shard, now, list);
            }
        }
        v
    }
}

/// One service's connections, [`CHUNK`] slots per hold of its table.
fn connections(shard: &ServiceShard, now: u64, out: &mut Vec<rvs_adm::Conn>) {
    let mut from = Some(0);
    while let Some(f) = from {
        let (chunk, fwmark, next) = {
            let table = shard.table();
            let fwmark: Vec<bool> = table
                .services
                .iter()
                .map(|s| matches!(s.key, SvcKey::Fwmark { .. }))
                .collect();
            let (chunk, next) = table.connections_from(now, f, CHUNK);
            (chunk, fwmark, next)
        };
        out.extend(chunk.into_iter().map(|c| {
            let fwmark = fwmark.get(c.svc).copied().unwrap_or(false);
            rvs_adm::Conn {
                proto: if c.template && fwmark {
                    "IP".to_owned()
                } else {
                    c.proto.name().to_owned()
                },
                expires_s: c.expires_ms / 1000,
                state: c.state.to_owned(),
                caddr: c.caddr,
                cport: c.cport,
                vaddr: c.vaddr,
                vport: c.vport,
                daddr: c.daddr,
                dport: c.dport,
            }
        }));
        from = next;
    }
}

/// Counters and rates in ipvsadm's terms.
pub fn stats(c: &Counters) -> rvs_adm::Stats {
    let (t, r) = (c.totals(), c.rates());
    rvs_adm::Stats {
        conns: t.conns,
        in_pkts: t.in_pkts,
        out_pkts: t.out_pkts,
        in_bytes: t.in_bytes,
        out_bytes: t.out_bytes,
        cps: r.cps,
        in_pps: r.in_pps,
        out_pps: r.out_pps,
        in_bps: r.in_bps,
        out_bps: r.out_bps,
    }
}

/// One service of a table as ipvsadm lists it. Its counters are the sum of its real
/// servers' (the estimator is linear, so summed rates equal the rate of the sums up to
/// fixed-point rounding).
fn listing(
    s: &rvs_sched::Service,
    counters: &HashMap<SocketAddr, Arc<Counters>>,
) -> rvs_adm::Service {
    let v6 = s.key.is_v6();
    let prefix = s
        .persistence
        .map_or(if v6 { 128 } else { 32 }, |p| p.prefix);
    let netmask = if v6 {
        u32::from(prefix)
    } else if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix.min(32)))
    };
    let mut svc = rvs_adm::Service {
        id: s.key,
        sched: s.algo().name().to_owned(),
        flags: [s.flags.fallback, s.flags.port, s.flags.sched3],
        persistent: s.persistence.map(|p| p.timeout_s),
        netmask,
        pe: None,
        ops: s.flags.ops,
        stats: rvs_adm::Stats::default(),
        dests: Vec::new(),
    };
    for (_, d) in s.dests() {
        let st = counters
            .get(&SocketAddr::new(d.addr, d.port))
            .map(|c| stats(c))
            .unwrap_or_default();
        svc.stats += &st;
        svc.dests.push(rvs_adm::Dest {
            addr: d.addr,
            port: d.port,
            fwd: d.fwd,
            weight: d.weight,
            active: d.active,
            inactive: d.inactive,
            persist: d.persist,
            u_threshold: d.u_threshold,
            l_threshold: d.l_threshold,
            tun: (d.fwd == rvs_sched::Fwd::Tunnel).then_some(d.tun),
            stats: st,
        });
    }
    svc
}
