//! The IPVS connection sync daemon for the XDP data plane (`rvs adm --start-daemon`,
//! `lvs_sync_daemon`): the kernel's protocol (`rvs_wire::ipvs_sync`, version 1), on its
//! multicast group and port, so an rvs director and a kernel IPVS director (or two rvs
//! directors) tell each other which real server each connection has.
//!
//! - **master**: after each walk of the XDP program's flow table (about a second), the
//!   flows and persistence templates that are new or changed (real server, FIN) are sent,
//!   and every one of them each 30 s, with the time each has left;
//! - **backup**: each datagram of its sync id is read and its entries adopted
//!   (`rvs_xdp::Xdp::adopt`): the XDP program sends those flows' packets to the same real
//!   servers, with the time they had left.
//!
//! Only what the XDP plane forwards is adopted: address services (not fwmark), TCP and
//! UDP, real servers this director has.
//!
//! Beyond the kernel (`global_defs`, [`SyncExt`]): `rvs_sync_peer` sends by unicast to
//! the listed directors and takes datagrams from them only (networks without
//! multicast); `rvs_sync_key` signs every datagram ([`auth`]) and drops the unsigned,
//! the forged and the replayed — between rvs directors only. A backup that starts with
//! unicast peers asks them for every flow ([`resync_request`]) rather than wait for
//! their next refresh.

use super::xdp::State;
use super::{owner::Caller, Snapshots};
use crate::clock::unix_ms;
use rvs_adm::cmd::SyncDaemon;
use rvs_wire::ipvs_sync::{ConnRepr, MessageRepr};
use rvs_xdp::{FlowEntry, TemplateEntry};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// The kernel's connection flags rvs reads and writes.
const F_TEMPLATE: u32 = 0x1000;
/// TCP states in the protocol's numbering.
const TCP_ESTABLISHED: u16 = 1;
const TCP_FIN_WAIT: u16 = 4;
/// How often every flow is sent again (new and changed ones go at once).
const REFRESH: Duration = Duration::from_secs(30);
/// The default datagram payload (the kernel's for a 1500-byte MTU).
const MAXLEN: usize = 1472;

/// The rvs extensions of the protocol, from the running configuration (read at each
/// datagram, so a reload's key applies at once; the unicast mode is chosen when a
/// daemon starts).
#[derive(Default)]
pub struct SyncExt {
    /// `rvs_sync_peer`: unicast peers (empty: the multicast group).
    pub peers: Vec<IpAddr>,
    /// `rvs_sync_key`.
    pub key: Option<ring::hmac::Key>,
}

impl SyncExt {
    pub fn of(g: &rvs_conf::model::GlobalDefs) -> SyncExt {
        SyncExt {
            peers: g.sync_peers.clone(),
            key: g
                .sync_key
                .as_ref()
                .map(|k| ring::hmac::Key::new(ring::hmac::HMAC_SHA256, k.as_bytes())),
        }
    }
}

/// Signed sync datagrams (`rvs_sync_key`): the kernel's message, then `RVS1`, the
/// sending time (ms since the Unix epoch, big-endian) and an HMAC-SHA256 of all that.
/// A receiver drops a datagram without a valid tag, or stamped more than [`auth::SKEW`]
/// away from its own clock (a replay: the entries it carries would refresh flows).
pub mod auth {
    const MAGIC: &[u8; 4] = b"RVS1";
    const TAG: usize = 32;
    /// What signing adds to a datagram.
    pub const TRAILER_LEN: usize = MAGIC.len() + 8 + TAG;
    /// The largest difference between the sender's stamp and the receiver's clock.
    pub const SKEW_MS: u64 = 30_000;

    #[derive(Debug, PartialEq, Eq)]
    pub enum Refused {
        /// No trailer (an unsigned datagram: another rvs without the key, a kernel).
        Unsigned,
        /// The tag does not match (another key, or altered).
        Forged,
        /// Signed too long ago, or in the future.
        Stale,
    }

    /// `msg` signed at `now_ms`.
    pub fn seal(key: &ring::hmac::Key, msg: &[u8], now_ms: u64) -> Vec<u8> {
        let mut out = Vec::with_capacity(msg.len() + TRAILER_LEN);
        out.extend_from_slice(msg);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&now_ms.to_be_bytes());
        let tag = ring::hmac::sign(key, &out);
        out.extend_from_slice(tag.as_ref());
        out
    }

    /// The message of a signed datagram, if its tag and its time are good.
    pub fn open<'a>(
        key: &ring::hmac::Key,
        dgram: &'a [u8],
        now_ms: u64,
    ) -> Result<&'a [u8], Refused> {
        let Some(body_len) = dgram.len().checked_sub(TAG) else {
            return Err(Refused::Unsigned);
        };
        let (body, tag) = dgram.split_at(body_len);
        let Some(msg_len) = body.len().checked_sub(MAGIC.len() + 8) else {
            return Err(Refused::Unsigned);
        };
        let (msg, trailer) = body.split_at(msg_len);
        if &trailer[..MAGIC.len()] != MAGIC {
            return Err(Refused::Unsigned);
        }
        ring::hmac::verify(key, body, tag).map_err(|_| Refused::Forged)?;
        let mut ts = [0u8; 8];
        ts.copy_from_slice(&trailer[MAGIC.len()..]);
        if u64::from_be_bytes(ts).abs_diff(now_ms) > SKEW_MS {
            return Err(Refused::Stale);
        }
        Ok(msg)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        fn key(k: &str) -> ring::hmac::Key {
            ring::hmac::Key::new(ring::hmac::HMAC_SHA256, k.as_bytes())
        }

        #[test]
        fn a_signed_message_opens_and_nothing_else_does() {
            let (k, now) = (key("shared secret"), 1_800_000_000_000);
            let msg = b"a sync message".as_slice();
            let sealed = seal(&k, msg, now);
            assert_eq!(open(&k, &sealed, now + 1_000), Ok(msg));
            assert_eq!(open(&k, msg, now), Err(Refused::Unsigned));
            assert_eq!(open(&k, b"", now), Err(Refused::Unsigned));
            assert_eq!(open(&key("another"), &sealed, now), Err(Refused::Forged));
            for i in 0..sealed.len() {
                let mut bad = sealed.clone();
                bad[i] ^= 1;
                assert!(open(&k, &bad, now).is_err(), "byte {i} altered");
            }
            assert_eq!(sealed.len(), msg.len() + TRAILER_LEN);
            assert_eq!(open(&k, &sealed, now + SKEW_MS + 1), Err(Refused::Stale));
            assert_eq!(open(&k, &sealed, now - SKEW_MS - 1), Err(Refused::Stale));
        }
    }
}

/// Whether `ip` is one of this host's addresses (it can be bound): a peer list every
/// director shares names the director itself too.
fn is_local(ip: IpAddr) -> bool {
    std::net::UdpSocket::bind(SocketAddr::new(ip, 0)).is_ok()
}

/// A backup that starts with unicast peers asks them for every flow (rvs only: the
/// kernel's protocol has no such message; its length, 5, is no sync message's).
fn resync_request(syncid: u8) -> [u8; 5] {
    [b'R', b'V', b'S', b'R', syncid]
}

/// Sends [`resync_request`] (signed with the key, if any) to every peer but this host,
/// from the backup's socket: a peer's backup tells its master to send every flow, so a
/// director that (re)joins does not wait for the next refresh.
async fn ask_resync(d: &SyncDaemon, sock: &tokio::net::UdpSocket, snapshots: &Snapshots) {
    let ext = snapshots.sync_ext.load();
    let req = resync_request(d.syncid);
    let dgram = match &ext.key {
        Some(k) => auth::seal(k, &req, unix_ms()),
        None => req.to_vec(),
    };
    for peer in ext.peers.iter().filter(|p| !is_local(**p)) {
        let to = SocketAddr::new(*peer, port(d));
        if let Err(e) = sock.send_to(&dgram, to).await {
            tracing::warn!("sync daemon (backup): asking {to} for every flow: {e}");
        }
    }
}

/// What a walk of the program's tables found (published by the flow scan).
#[derive(Debug, Default)]
pub struct Walk {
    pub flows: Vec<FlowEntry>,
    pub templates: Vec<TemplateEntry>,
    /// Counts walks, so the master sends once per walk.
    pub generation: u64,
}

/// What the sync daemons did since start (`rvs status`, the `rvs_sync_*` metrics): how
/// much went out and came in, and what was dropped and why.
#[derive(Debug, Default)]
pub struct SyncStats {
    pub sent_datagrams: AtomicU64,
    pub sent_conns: AtomicU64,
    /// Datagrams the master could not send (no route, buffer full…).
    pub send_errors: AtomicU64,
    /// Datagrams of the backup's sync id.
    pub received_datagrams: AtomicU64,
    /// Connections and templates written into the data plane's tables.
    pub adopted: AtomicU64,
    /// Connections of services or real servers this director does not have.
    pub not_ours: AtomicU64,
    /// Connections this director forwards itself (another director's view of them, sent
    /// back by an active-active peer, is not taken over this director's own).
    pub forwarded_here: AtomicU64,
    /// Datagrams that did not parse.
    pub malformed: AtomicU64,
    /// Datagrams without a valid signature (`rvs_sync_key`): unsigned, forged, replayed.
    pub unauthenticated: AtomicU64,
    /// Datagrams from an address that is not an `rvs_sync_peer`.
    pub not_a_peer: AtomicU64,
    /// Datagrams of another sync id.
    pub other_syncid: AtomicU64,
    /// Datagrams the data plane could not take (its tables refused the write).
    pub adopt_errors: AtomicU64,
    /// When the last datagram of our sync id came (ms since the Unix epoch; 0: none).
    pub last_received_ms: AtomicU64,
}

impl SyncStats {
    fn add(c: &AtomicU64, n: usize) {
        c.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// The counters as the API reports them.
    pub fn report(&self) -> rvs_api::SyncStats {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let last = g(&self.last_received_ms);
        rvs_api::SyncStats {
            sent_datagrams: g(&self.sent_datagrams),
            sent_connections: g(&self.sent_conns),
            send_errors: g(&self.send_errors),
            received_datagrams: g(&self.received_datagrams),
            adopted: g(&self.adopted),
            not_ours: g(&self.not_ours),
            forwarded_here: g(&self.forwarded_here),
            malformed: g(&self.malformed),
            unauthenticated: g(&self.unauthenticated),
            not_a_peer: g(&self.not_a_peer),
            other_syncid: g(&self.other_syncid),
            adopt_errors: g(&self.adopt_errors),
            last_received_unix_ms: (last > 0).then_some(last),
        }
    }
}

struct Running {
    params: SyncDaemon,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

/// The sync daemons of the XDP plane: at most one master and one backup, as the kernel.
#[derive(Default)]
pub struct SyncDaemons {
    master: Option<Running>,
    backup: Option<Running>,
}

fn group(d: &SyncDaemon) -> IpAddr {
    d.group.unwrap_or(IpAddr::V4(rvs_wire::ipvs_sync::GROUP_V4))
}

fn port(d: &SyncDaemon) -> u16 {
    if d.port == 0 {
        rvs_wire::ipvs_sync::PORT
    } else {
        d.port
    }
}

impl SyncDaemons {
    /// `--start-daemon`: refused as the kernel refuses it (one of each state).
    pub fn start(
        &mut self,
        d: &SyncDaemon,
        caller: Option<Caller<State>>,
        snapshots: &Arc<Snapshots>,
        shared: &Arc<rvs_proxy::Shared>,
    ) -> Result<(), String> {
        let slot = match d.state.as_str() {
            "master" => &mut self.master,
            "backup" => &mut self.backup,
            _ => return Err("Invalid argument".into()),
        };
        if slot.is_some() {
            return Err("Daemon has already run".into());
        }
        let (unicast, signed) = {
            let ext = snapshots.sync_ext.load();
            (ext.peers.first().copied(), ext.key.is_some())
        };
        let sock = socket(d, unicast).map_err(|e| format!("sync daemon on {}: {e}", d.ifname))?;
        let stop = CancellationToken::new();
        let task = if d.state == "master" {
            tokio::spawn(master(
                d.clone(),
                sock,
                unicast.is_some(),
                snapshots.clone(),
                shared.clone(),
                stop.clone(),
            ))
        } else {
            let Some(caller) = caller else {
                return Err("the data plane is stopping".into());
            };
            tokio::spawn(backup(
                d.clone(),
                sock,
                unicast.is_some(),
                caller,
                snapshots.clone(),
                stop.clone(),
            ))
        };
        tracing::info!(
            "{} sync daemon on {} (syncid {}, {}, port {}{}) for the XDP data plane",
            d.state,
            d.ifname,
            d.syncid,
            match unicast {
                Some(_) => "unicast to the rvs_sync_peer directors".to_owned(),
                None => format!("group {}", group(d)),
            },
            port(d),
            if signed { ", signed" } else { "" }
        );
        *slot = Some(Running {
            params: d.clone(),
            stop,
            task,
        });
        self.publish(snapshots);
        Ok(())
    }

    /// `--stop-daemon STATE`.
    pub async fn stop(&mut self, state: &str, snapshots: &Arc<Snapshots>) -> Result<(), String> {
        let slot = match state {
            "master" => &mut self.master,
            "backup" => &mut self.backup,
            _ => return Err("Invalid argument".into()),
        };
        let Some(r) = slot.take() else {
            return Err("No such process".into());
        };
        r.stop.cancel();
        let _ = r.task.await;
        self.publish(snapshots);
        Ok(())
    }

    /// `ipvsadm -L --daemon`'s lines, as the kernel's are printed.
    fn publish(&self, snapshots: &Snapshots) {
        let lines = [&self.master, &self.backup]
            .into_iter()
            .flatten()
            .map(|r| {
                let d = &r.params;
                rvs_ipvs::SyncDaemon {
                    state: d.state.clone(),
                    ifname: d.ifname.clone(),
                    syncid: u32::from(d.syncid),
                    maxlen: if d.maxlen == 0 {
                        u16::try_from(MAXLEN).unwrap_or(1472)
                    } else {
                        d.maxlen
                    },
                    group: Some(group(d)),
                    port: port(d),
                    ttl: if d.ttl == 0 { 1 } else { d.ttl },
                }
                .line()
            })
            .collect();
        snapshots.sync_daemons.store(Arc::new(lines));
    }
}

/// The daemon's socket: bound to its interface; a backup's to the port and the group
/// joined on that interface, a master's with TTL and no loopback of its own datagrams.
/// With unicast peers (`unicast`: one of them, for the address family), a backup's is
/// bound to the port only.
fn socket(d: &SyncDaemon, unicast: Option<IpAddr>) -> std::io::Result<tokio::net::UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let g = unicast.unwrap_or_else(|| group(d));
    let s = Socket::new(
        Domain::for_address(SocketAddr::new(g, 0)),
        Type::DGRAM,
        Some(Protocol::UDP),
    )?;
    s.set_reuse_address(true)?;
    s.bind_device(Some(d.ifname.as_bytes()))?;
    if unicast.is_some() {
        if d.state == "backup" {
            if g.is_ipv6() {
                s.set_only_v6(true)?;
            }
            let any = if g.is_ipv4() {
                IpAddr::from([0u8; 4])
            } else {
                IpAddr::from([0u16; 8])
            };
            s.bind(&SocketAddr::new(any, port(d)).into())?;
        }
        s.set_nonblocking(true)?;
        return tokio::net::UdpSocket::from_std(s.into());
    }
    let index = rustix::net::netdevice::name_to_index(&s, &d.ifname)?;
    match g {
        IpAddr::V4(g4) => {
            if d.state == "backup" {
                s.bind(&SocketAddr::new(IpAddr::from([0u8; 4]), port(d)).into())?;
                s.join_multicast_v4_n(&g4, &socket2::InterfaceIndexOrAddress::Index(index))?;
            } else {
                s.set_multicast_ttl_v4(u32::from(d.ttl.max(1)))?;
                s.set_multicast_loop_v4(false)?;
            }
        }
        IpAddr::V6(g6) => {
            if d.state == "backup" {
                s.set_only_v6(true)?;
                s.bind(&SocketAddr::new(IpAddr::from([0u16; 8]), port(d)).into())?;
                s.join_multicast_v6(&g6, index)?;
            } else {
                s.set_multicast_hops_v6(u32::from(d.ttl.max(1)))?;
                s.set_multicast_loop_v6(false)?;
                s.set_multicast_if_v6(index)?;
            }
        }
    }
    s.set_nonblocking(true)?;
    tokio::net::UdpSocket::from_std(s.into())
}

/// What a connection is called in the sync protocol, from the XDP program's flow.
fn flow_repr(f: &FlowEntry, fwd: u32) -> ConnRepr {
    ConnRepr {
        protocol: f.proto,
        flags: fwd,
        state: match (f.proto, f.fin) {
            (6, false) => TCP_ESTABLISHED,
            (6, true) => TCP_FIN_WAIT,
            _ => 0,
        },
        caddr: f.client.ip(),
        cport: f.client.port(),
        vaddr: f.vip.ip(),
        vport: f.vip.port(),
        daddr: f.real.0,
        dport: f.real.1,
        fwmark: 0,
        timeout_s: Some(f.expires_s),
        seq: None,
        pe_data: Vec::new(),
        pe_name: None,
        local: f.local.map(|l| (l.ip(), l.port())),
    }
}

fn template_repr(t: &TemplateEntry, fwd: u32) -> Option<ConnRepr> {
    let rvs_sched::SvcKey::Addr { proto, addr, port } = t.svc else {
        return None;
    };
    Some(ConnRepr {
        protocol: proto.number(),
        flags: F_TEMPLATE | fwd,
        state: 0,
        caddr: t.client,
        cport: 0,
        vaddr: addr,
        vport: port,
        daddr: t.real.0,
        dport: t.real.1,
        fwmark: 0,
        timeout_s: Some(t.expires_s),
        seq: None,
        pe_data: Vec::new(),
        pe_name: None,
        local: None,
    })
}

/// A received record as the XDP plane adopts it (a flow or a template), or `None` for
/// what it does not forward.
enum Adopt {
    Flow(FlowEntry),
    Template(TemplateEntry),
}

fn adopt_of(c: &ConnRepr) -> Option<Adopt> {
    let proto = rvs_sched::Proto::from_number(c.protocol)?;
    if c.fwmark != 0 {
        return None;
    }
    let svc = rvs_sched::SvcKey::Addr {
        proto,
        addr: c.vaddr,
        port: c.vport,
    };
    // Version 0 carries no timeout: the state's own (IPVS's defaults).
    let expires_s = c.timeout_s.unwrap_or(match (c.protocol, c.state) {
        (17, _) => 300,
        (_, TCP_ESTABLISHED) => 900,
        _ => 120,
    });
    if c.flags & F_TEMPLATE != 0 {
        return Some(Adopt::Template(TemplateEntry {
            client: c.caddr,
            svc,
            real: (c.daddr, c.dport),
            expires_s,
        }));
    }
    if !matches!(c.protocol, 6 | 17) {
        return None;
    }
    Some(Adopt::Flow(FlowEntry {
        proto: c.protocol,
        client: SocketAddr::new(c.caddr, c.cport),
        vip: SocketAddr::new(c.vaddr, c.vport),
        svc,
        real: (c.daddr, c.dport),
        fin: c.protocol == 6 && c.state != TCP_ESTABLISHED,
        expires_s,
        here: false,
        local: c.local.map(|(a, p)| SocketAddr::new(a, p)),
    }))
}

/// The forwarding method of each real server (the kernel's flag), from the table.
fn methods(shared: &rvs_proxy::Shared) -> HashMap<(rvs_sched::SvcKey, IpAddr, u16), u32> {
    let mut out = HashMap::new();
    for shard in shared.services().iter() {
        let table = shard.table();
        for s in table.services.iter().filter(|s| !s.removed) {
            for (_, d) in s.dests() {
                out.insert((s.key, d.addr, d.port), d.fwd.code());
            }
        }
    }
    out
}

/// Packs records into datagrams of at most `maxlen` bytes (and 255 records).
fn datagrams(syncid: u8, conns: Vec<ConnRepr>, maxlen: usize) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut m = MessageRepr {
        syncid,
        conns: Vec::new(),
    };
    let mut flush = |m: &mut MessageRepr| {
        if m.conns.is_empty() {
            return;
        }
        let mut buf = vec![0u8; m.buffer_len()];
        if m.emit(&mut buf).is_ok() {
            out.push(buf);
        }
        m.conns.clear();
    };
    for c in conns {
        m.conns.push(c);
        if m.conns.len() > 255 || m.buffer_len() > maxlen {
            let last = m.conns.pop();
            flush(&mut m);
            m.conns.extend(last);
        }
    }
    flush(&mut m);
    out
}

/// A flow: protocol, client, VIP.
type FlowId = (u8, SocketAddr, SocketAddr);
/// What was last sent of it: its real server and whether it had seen a FIN.
type Sent = ((IpAddr, u16), bool);

async fn master(
    d: SyncDaemon,
    sock: tokio::net::UdpSocket,
    unicast: bool,
    snapshots: Arc<Snapshots>,
    shared: Arc<rvs_proxy::Shared>,
    stop: CancellationToken,
) {
    let group_to = SocketAddr::new(group(&d), port(&d));
    let maxlen = if d.maxlen == 0 {
        MAXLEN
    } else {
        usize::from(d.maxlen)
    };
    let mut sent: HashMap<FlowId, Sent> = HashMap::new();
    let mut last_gen = 0;
    let mut refreshed = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let walk = snapshots.walk.load_full();
        if walk.generation == last_gen {
            continue;
        }
        last_gen = walk.generation;
        // Every flow each REFRESH, and at once when a peer that (re)joined asks.
        let asked = snapshots.sync_resync.swap(false, Ordering::Relaxed);
        let all = asked || refreshed.elapsed() >= REFRESH;
        if all {
            refreshed = Instant::now();
        }
        let fwd = methods(&shared);
        let mut conns = Vec::new();
        let mut now_sent = HashMap::with_capacity(walk.flows.len());
        // Only what this director forwards: a flow it was sent by another (both run a
        // master and a backup, active-active) is that director's to send; sent back, it
        // would never expire.
        for f in walk.flows.iter().filter(|f| f.here) {
            let k = (f.proto, f.client, f.vip);
            let v = (f.real, f.fin);
            if all || sent.get(&k) != Some(&v) {
                let code = fwd.get(&(f.svc, f.real.0, f.real.1)).copied().unwrap_or(3);
                conns.push(flow_repr(f, code));
            }
            now_sent.insert(k, v);
        }
        sent = now_sent;
        if all {
            for t in &walk.templates {
                let code = fwd.get(&(t.svc, t.real.0, t.real.1)).copied().unwrap_or(3);
                conns.extend(template_repr(t, code));
            }
        }
        let stats = &snapshots.sync_stats;
        SyncStats::add(&stats.sent_conns, conns.len());
        let ext = snapshots.sync_ext.load();
        let dests: Vec<SocketAddr> = if unicast {
            ext.peers
                .iter()
                .filter(|p| !is_local(**p))
                .map(|p| SocketAddr::new(*p, port(&d)))
                .collect()
        } else {
            vec![group_to]
        };
        // A signed datagram is longer by its trailer: the messages are cut shorter.
        let room = if ext.key.is_some() {
            maxlen.saturating_sub(auth::TRAILER_LEN)
        } else {
            maxlen
        };
        for msg in datagrams(d.syncid, conns, room) {
            let dgram = match &ext.key {
                Some(k) => auth::seal(k, &msg, unix_ms()),
                None => msg,
            };
            for to in &dests {
                match sock.send_to(&dgram, to).await {
                    Ok(_) => SyncStats::add(&stats.sent_datagrams, 1),
                    Err(e) => {
                        SyncStats::add(&stats.send_errors, 1);
                        tracing::warn!("sync daemon (master): sending to {to}: {e}");
                    }
                }
            }
        }
    }
}

/// FULLNAT clients' next hops, as the backup learns them: one route lookup per client
/// per [`Hops::TTL`] instead of one per datagram (behind a router every client shares
/// one next hop), at most [`Hops::MAX`] clients remembered.
#[derive(Default)]
struct Hops {
    known: HashMap<IpAddr, (IpAddr, Instant)>,
}

impl Hops {
    /// A route change reaches the adopted connections within this.
    const TTL: Duration = Duration::from_secs(10);
    const MAX: usize = 65_536;

    /// The clients among `clients` whose next hop is unknown or older than the TTL.
    fn missing(&self, clients: &[IpAddr], now: Instant) -> Vec<IpAddr> {
        clients
            .iter()
            .filter(|c| {
                self.known
                    .get(c)
                    .is_none_or(|(_, at)| now.saturating_duration_since(*at) >= Self::TTL)
            })
            .copied()
            .collect()
    }

    /// What the lookups found (`None`: on the link, the client is its own next hop);
    /// past [`Hops::MAX`] the stale ones go first, then all.
    fn learn(&mut self, found: HashMap<IpAddr, Option<IpAddr>>, now: Instant) {
        if self.known.len() + found.len() > Self::MAX {
            self.known
                .retain(|_, (_, at)| now.saturating_duration_since(*at) < Self::TTL);
            if self.known.len() + found.len() > Self::MAX {
                self.known.clear();
            }
        }
        for (c, gw) in found {
            self.known.insert(c, (gw.unwrap_or(c), now));
        }
    }

    /// The next hop of each of `clients` that is known.
    fn of(&self, clients: &[IpAddr]) -> HashMap<IpAddr, IpAddr> {
        clients
            .iter()
            .filter_map(|c| self.known.get(c).map(|(hop, _)| (*c, *hop)))
            .collect()
    }
}

async fn backup(
    d: SyncDaemon,
    sock: tokio::net::UdpSocket,
    unicast: bool,
    caller: Caller<State>,
    snapshots: Arc<Snapshots>,
    stop: CancellationToken,
) {
    let stats = &snapshots.sync_stats;
    let mut buf = vec![0u8; 65536];
    let mut hops = Hops::default();
    if unicast {
        ask_resync(&d, &sock, &snapshots).await;
    }
    loop {
        let (n, from) = tokio::select! {
            () = stop.cancelled() => return,
            r = sock.recv_from(&mut buf) => match r {
                Ok(got) => got,
                Err(e) => {
                    tracing::warn!("sync daemon (backup): {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let ext = snapshots.sync_ext.load();
        if unicast && !ext.peers.contains(&from.ip()) {
            SyncStats::add(&stats.not_a_peer, 1);
            tracing::debug!("sync daemon (backup): a datagram from {from}, not a peer");
            continue;
        }
        let body = match &ext.key {
            Some(k) => match auth::open(k, &buf[..n], unix_ms()) {
                Ok(msg) => msg,
                Err(why) => {
                    SyncStats::add(&stats.unauthenticated, 1);
                    tracing::debug!("sync daemon (backup): a datagram from {from}: {why:?}");
                    continue;
                }
            },
            None => &buf[..n],
        };
        if body == resync_request(d.syncid) {
            // A peer's backup (re)joined: this director's master sends it everything.
            tracing::info!("sync daemon (backup): {from} (re)joined and asks for every flow");
            snapshots.sync_resync.store(true, Ordering::Relaxed);
            continue;
        }
        let msg = match MessageRepr::parse(body) {
            Ok((m, _)) => m,
            Err(e) => {
                SyncStats::add(&stats.malformed, 1);
                tracing::debug!("sync daemon (backup): a datagram dropped: {e}");
                continue;
            }
        };
        // As the kernel: another sync id is dropped, unless ours is 0.
        if d.syncid != 0 && msg.syncid != d.syncid {
            SyncStats::add(&stats.other_syncid, 1);
            continue;
        }
        SyncStats::add(&stats.received_datagrams, 1);
        stats.last_received_ms.store(unix_ms(), Ordering::Relaxed);
        let (mut flows, mut templates) = (Vec::new(), Vec::new());
        for c in &msg.conns {
            match adopt_of(c) {
                Some(Adopt::Flow(f)) => flows.push(f),
                Some(Adopt::Template(t)) => templates.push(t),
                None => {}
            }
        }
        // FULLNAT replies go to the client's next hop: a route lookup for the clients
        // not seen within the TTL.
        let mut clients: Vec<IpAddr> = flows
            .iter()
            .filter(|f| f.local.is_some())
            .map(|f| f.client.ip())
            .collect();
        clients.sort_unstable();
        clients.dedup();
        let now = Instant::now();
        let missing = hops.missing(&clients, now);
        if !missing.is_empty() {
            hops.learn(rvs_xdp::neigh::gateways(&missing).await, now);
        }
        let next = hops.of(&clients);
        let r = caller
            .call(move |st| st.adopt(&flows, &templates, &next))
            .await;
        match r {
            Some(Ok(a)) => {
                SyncStats::add(&stats.adopted, a.taken);
                SyncStats::add(&stats.not_ours, a.not_ours);
                SyncStats::add(&stats.forwarded_here, a.forwarded_here);
                tracing::debug!(
                    "sync daemon (backup): {} adopted, {} not ours, {} forwarded here",
                    a.taken,
                    a.not_ours,
                    a.forwarded_here
                );
            }
            Some(Err(e)) => {
                SyncStats::add(&stats.adopt_errors, 1);
                tracing::warn!("sync daemon (backup): adopting: {e}");
            }
            None => return,
        }
    }
}

#[cfg(test)]
mod hop_tests {
    use super::Hops;
    use std::collections::HashMap;
    use std::net::IpAddr;
    use std::time::{Duration, Instant};

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_clients_next_hop_is_looked_up_once_per_ttl() {
        let mut h = Hops::default();
        let t0 = Instant::now();
        let (a, b) = (ip("198.18.1.100"), ip("198.18.0.7"));
        assert_eq!(h.missing(&[a, b], t0), [a, b]);
        // a behind the router, b on the link (its own next hop).
        h.learn(HashMap::from([(a, Some(ip("198.18.0.1"))), (b, None)]), t0);
        assert!(h.missing(&[a, b], t0 + Duration::from_secs(9)).is_empty());
        assert_eq!(h.of(&[a, b])[&a], ip("198.18.0.1"));
        assert_eq!(h.of(&[a, b])[&b], b);
        // A route change is seen once the TTL has passed.
        assert_eq!(h.missing(&[a], t0 + Hops::TTL), [a]);
        h.learn(HashMap::from([(a, Some(ip("198.18.0.9")))]), t0 + Hops::TTL);
        assert_eq!(h.of(&[a])[&a], ip("198.18.0.9"));
    }

    #[test]
    fn the_remembered_clients_are_bounded() {
        let mut h = Hops::default();
        let t0 = Instant::now();
        let many = |from: u32, n: u32| -> HashMap<IpAddr, Option<IpAddr>> {
            (from..from + n)
                .map(|i| (IpAddr::from(i.to_be_bytes()), None))
                .collect()
        };
        let max = u32::try_from(Hops::MAX).unwrap();
        h.learn(many(0, max), t0);
        assert_eq!(h.known.len(), Hops::MAX);
        // Full of fresh entries: cleared rather than grown.
        h.learn(many(max, 10), t0);
        assert_eq!(h.known.len(), 10);
        // Stale ones go first.
        h.learn(many(2 * max, max - 10), t0 + Hops::TTL);
        h.learn(many(3 * max, 5), t0 + Hops::TTL);
        assert_eq!(h.known.len(), Hops::MAX - 10 + 5);
    }
}
