//! UDP: one socket on the virtual address; per client a flow with its own connected
//! socket towards the chosen real server. Replies go back to the client from the virtual
//! address. A flow ends after the IPVS UDP timeout without traffic.
//!
//! Datagrams move in batches (`dgram`): the virtual address's socket is read 32 at a
//! time, with one look at the flow table per batch; a flow's replies are read and sent
//! back to its client up to 8 at a time.

use crate::buf::{self, Buf};
use crate::dgram::{self, Got};
use crate::{Counters, FdGuard, ServiceShard, Shared, Undelivered};
use rvs_sched::{Dir, Packet, Proto, TcpFlags, Verdict};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;

/// A client's flow: its handles are cloned out of the table for the datagrams of a batch.
#[derive(Clone)]
struct Flow {
    upstream: Arc<UdpSocket>,
    active: Arc<AtomicBool>,
    /// The real server's counters, found once when the flow starts.
    counters: Arc<Counters>,
}

/// What became of a datagram that starts no flow.
enum NoFlow {
    /// Counted as undelivered for this reason.
    Undelivered(Undelivered),
    /// The descriptor budget is spent (counted and logged by the budget).
    Descriptors,
}

/// Receives on `addr` (on a socket handed over in `given`, when there is one): one
/// socket, on one worker (services take the workers in turn); returns the task and a
/// second descriptor of the socket (for a later hand-over).
pub fn listen(
    shared: &Arc<Shared>,
    svc: Arc<ServiceShard>,
    addr: SocketAddr,
    given: Vec<std::os::fd::OwnedFd>,
) -> std::io::Result<(Vec<JoinHandle<()>>, Vec<std::os::fd::OwnedFd>)> {
    let key = svc.key;
    // Flows are per socket: more than one (never made by rvs) would split them.
    let Some(s) = crate::sockets_for(addr, socket2::Type::DGRAM, given, 1, false)?
        .into_iter()
        .next()
    else {
        return Err(std::io::Error::other("no socket"));
    };
    let std_sock = std::net::UdpSocket::from(s);
    let handed = std::os::fd::OwnedFd::from(std_sock.try_clone()?);
    let rt = shared
        .workers
        .handle(shared.udp_next.fetch_add(1, Ordering::Relaxed));
    let sock = {
        let _in = rt.enter();
        Arc::new(UdpSocket::from_std(std_sock)?)
    };
    let shared = shared.clone();
    Ok((
        vec![rt.spawn(async move {
            let flows: Arc<Mutex<HashMap<SocketAddr, Flow>>> = Arc::new(Mutex::new(HashMap::new()));
            let mut flow_log = crate::RateLog::default();
            // A slot per datagram of a batch, each the largest a datagram can be, in one
            // allocation: the allocator maps it, so its pages become resident only as
            // datagrams fill them (a burst of DNS queries touches one page per slot).
            let mut store = vec![0u8; dgram::BATCH * buf::DATAGRAM];
            let mut got = Got::with_capacity(dgram::BATCH);
            let mut slots: Vec<&mut [u8]> = store.chunks_mut(buf::DATAGRAM).collect();
            let mut to: Vec<Option<Flow>> = Vec::with_capacity(dgram::BATCH);
            loop {
                if let Err(e) = dgram::recv_batch(&sock, &mut slots, &mut got).await {
                    tracing::warn!(service = %key, "receive failed: {e}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
                // One look at the flow table per batch: each datagram's flow, if it has one.
                let mut n_flows = {
                    let f = flows
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    to.clear();
                    to.extend(got.iter().map(|(_, from)| {
                        from.and_then(|c| f.get(&c)).cloned()
                    }));
                    f.len()
                };
                for (i, &(n, from)) in got.iter().enumerate() {
                    let Some(client) = from else { continue };
                    // Made by an earlier datagram of this batch? (Looked up apart: a
                    // guard in the match's scrutinee would be held through the insert.)
                    let known = to[i].take().or_else(|| {
                        flows
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .get(&client)
                            .cloned()
                    });
                    let flow = if let Some(f) = known {
                        f
                    } else {
                        // One socket per flow: flows are capped per service and
                        // charged to the descriptor budget, so a flood of sources
                        // cannot exhaust descriptors.
                        let made = if n_flows >= shared.opts.udp_flows_per_service {
                            Err(NoFlow::Undelivered(Undelivered::FlowLimit))
                        } else {
                            new_flow(&shared, &svc, addr, client)
                        };
                        let (up, dest, fds) = match made {
                            Ok(x) => x,
                            Err(NoFlow::Undelivered(why)) => {
                                svc.count_undelivered(why);
                                if why == Undelivered::FlowLimit {
                                    if let Some(n) = flow_log.hit() {
                                        tracing::warn!(service = %key, "{} UDP flows: {n} datagram(s) from new sources dropped since the last report", shared.opts.udp_flows_per_service);
                                    }
                                }
                                continue;
                            }
                            Err(NoFlow::Descriptors) => {
                                svc.descriptors_exhausted();
                                continue;
                            }
                        };
                        let flow = Flow {
                            upstream: up,
                            active: Arc::new(AtomicBool::new(true)),
                            counters: svc.counters(dest),
                        };
                        flow.counters.conns.fetch_add(1, Ordering::Relaxed);
                        flows
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .insert(client, flow.clone());
                        n_flows += 1;
                        spawn_replies(
                            shared.clone(),
                            &svc,
                            sock.clone(),
                            flows.clone(),
                            client,
                            flow.clone(),
                            fds,
                        );
                        flow
                    };
                    flow.active.store(true, Ordering::Relaxed);
                    if flow.upstream.send(&slots[i][..n]).await.is_ok() {
                        flow.counters.in_bytes.fetch_add(n as u64, Ordering::Relaxed);
                        flow.counters.in_pkts.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        })],
        vec![handed],
    ))
}

fn new_flow(
    sh: &Arc<Shared>,
    svc: &ServiceShard,
    vip: SocketAddr,
    client: SocketAddr,
) -> Result<(Arc<UdpSocket>, SocketAddr, FdGuard), NoFlow> {
    let now = sh.now_ms();
    let dest = {
        let mut ipvs = svc.table();
        let p = Packet {
            proto: Proto::Udp,
            src: client.ip(),
            sport: client.port(),
            dst: vip.ip(),
            dport: vip.port(),
            fwmark: 0,
            tcp: TcpFlags::default(),
            dir: Dir::In,
        };
        match ipvs.packet(now, &p) {
            Verdict::Forward { svc, dest, .. } => {
                let d = ipvs.services[svc].dest(dest);
                SocketAddr::new(d.addr, if d.port == 0 { vip.port() } else { d.port })
            }
            _ => return Err(NoFlow::Undelivered(Undelivered::NoRealServer)),
        }
    };
    if dest == vip {
        return Err(NoFlow::Undelivered(Undelivered::Loop));
    }
    let fds = sh.take_fds(1).ok_or(NoFlow::Descriptors)?;
    let bind: SocketAddr = if dest.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    // Binding and connecting a UDP socket exchange no packet: nothing to wait for.
    let err = |_| NoFlow::Undelivered(Undelivered::ConnectError);
    let up = std::net::UdpSocket::bind(bind).map_err(err)?;
    up.connect(dest).map_err(err)?;
    up.set_nonblocking(true).map_err(err)?;
    let up = UdpSocket::from_std(up).map_err(err)?;
    Ok((Arc::new(up), dest, fds))
}

/// A flow's replies read and sent back at a time.
const REPLY_BATCH: usize = 8;

fn spawn_replies(
    sh: Arc<Shared>,
    svc: &ServiceShard,
    sock: Arc<UdpSocket>,
    flows: Arc<Mutex<HashMap<SocketAddr, Flow>>>,
    client: SocketAddr,
    flow: Flow,
    fds: FdGuard,
) {
    let idle = Duration::from_secs(u64::from(svc.table().timeouts.udp).max(1));
    let Flow {
        upstream: up,
        active,
        counters,
    } = flow;
    tokio::spawn(async move {
        let live = sh.open();
        // The flow ends after a UDP timeout with no datagram either way: one timer,
        // re-armed once per timeout (not per datagram) while the flow has traffic.
        let expiry = tokio::time::sleep(idle);
        tokio::pin!(expiry);
        let mut got = Got::with_capacity(REPLY_BATCH);
        'flow: loop {
            tokio::select! {
                r = up.readable() => {
                    if r.is_err() {
                        break 'flow;
                    }
                }
                () = &mut expiry => {
                    if !active.swap(false, Ordering::Relaxed) {
                        break 'flow;
                    }
                    expiry.as_mut().reset(tokio::time::Instant::now() + idle);
                    continue;
                }
            }
            // Buffers only while replies are there: a quiet flow holds none.
            let mut bufs: Vec<Buf> = (0..REPLY_BATCH).map(|_| Buf::take_datagram()).collect();
            // Until drained; an ICMP error (the real server's port closed…) also ends
            // the round: it is reported once and does not end the flow.
            loop {
                let mut slots: Vec<&mut [u8]> = bufs.iter_mut().map(|b| &mut b[..]).collect();
                let Ok(k) = dgram::recv_ready(&up, &mut slots, &mut got) else {
                    break;
                };
                if k == 0 {
                    break;
                }
                active.store(true, Ordering::Relaxed);
                let replies: Vec<&[u8]> =
                    got.iter().zip(&slots).map(|(&(n, _), b)| &b[..n]).collect();
                for r in &replies {
                    counters
                        .out_bytes
                        .fetch_add(r.len() as u64, Ordering::Relaxed);
                    counters.out_pkts.fetch_add(1, Ordering::Relaxed);
                }
                let _ = dgram::send_batch(&sock, &replies, client).await;
                if k < REPLY_BATCH {
                    break;
                }
            }
        }
        flows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&client);
        drop(live);
        drop(fds);
    });
}
