//! UDP: one socket on the virtual address; per client a flow with its own connected
//! socket towards the chosen real server. Replies go back to the client from the virtual
//! address. A flow ends after the IPVS UDP timeout without traffic.

use crate::buf::Buf;
use crate::{Counters, FdGuard, ServiceShard, Shared, Undelivered};
use rvs_sched::{Dir, Packet, Proto, TcpFlags, Verdict};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;

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
            let mut buf = vec![0u8; 65536];
            loop {
                let (n, client) = match sock.recv_from(&mut buf).await {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::warn!(service = %key, "receive failed: {e}");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                };
                // One look at the flow table per datagram: the flow, or room for a new one.
                let (existing, n_flows) = {
                    let f = flows
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    let e = f
                        .get(&client)
                        .map(|f| (f.upstream.clone(), f.active.clone(), f.counters.clone()));
                    (e, f.len())
                };
                let (up, active, counters) = if let Some(x) = existing {
                    x
                } else {
                    // One socket per flow: flows are capped per service and charged to the
                    // descriptor budget, so a flood of sources cannot exhaust descriptors.
                    let made = if n_flows >= shared.opts.udp_flows_per_service {
                        Err(NoFlow::Undelivered(Undelivered::FlowLimit))
                    } else {
                        new_flow(&shared, &svc, addr, client).await
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
                    let active = Arc::new(AtomicBool::new(true));
                    let counters = svc.counters(dest);
                    counters.conns.fetch_add(1, Ordering::Relaxed);
                    flows
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .insert(
                            client,
                            Flow {
                                upstream: up.clone(),
                                active: active.clone(),
                                counters: counters.clone(),
                            },
                        );
                    spawn_replies(
                        shared.clone(),
                        &svc,
                        sock.clone(),
                        flows.clone(),
                        client,
                        up.clone(),
                        active.clone(),
                        counters.clone(),
                        fds,
                    );
                    (up, active, counters)
                };
                active.store(true, Ordering::Relaxed);
                if up.send(&buf[..n]).await.is_ok() {
                    counters.in_bytes.fetch_add(n as u64, Ordering::Relaxed);
                    counters.in_pkts.fetch_add(1, Ordering::Relaxed);
                }
            }
        })],
        vec![handed],
    ))
}

async fn new_flow(
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
    let err = |_| NoFlow::Undelivered(Undelivered::ConnectError);
    let up = UdpSocket::bind(bind).await.map_err(err)?;
    up.connect(dest).await.map_err(err)?;
    Ok((Arc::new(up), dest, fds))
}

#[allow(clippy::too_many_arguments)]
fn spawn_replies(
    sh: Arc<Shared>,
    svc: &ServiceShard,
    sock: Arc<UdpSocket>,
    flows: Arc<Mutex<HashMap<SocketAddr, Flow>>>,
    client: SocketAddr,
    up: Arc<UdpSocket>,
    active: Arc<AtomicBool>,
    counters: Arc<Counters>,
    fds: FdGuard,
) {
    let idle = Duration::from_secs(u64::from(svc.table().timeouts.udp).max(1));
    tokio::spawn(async move {
        let live = sh.open();
        // The flow ends after a UDP timeout with no datagram either way: one timer,
        // re-armed once per timeout (not per datagram) while the flow has traffic.
        let expiry = tokio::time::sleep(idle);
        tokio::pin!(expiry);
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
            // A buffer only while replies are there: a quiet flow holds none.
            let mut buf = Buf::take_datagram();
            // Until drained; an ICMP error (the real server's port closed…) also ends
            // the round: it is reported once and does not end the flow.
            while let Ok(n) = up.try_recv(&mut buf) {
                active.store(true, Ordering::Relaxed);
                counters.out_bytes.fetch_add(n as u64, Ordering::Relaxed);
                counters.out_pkts.fetch_add(1, Ordering::Relaxed);
                let _ = sock.send_to(&buf[..n], client).await;
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
