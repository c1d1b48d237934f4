//! The data planes behind one interface. The table (`rvs_proxy::Proxy`: scheduling
//! state, counters, listings) is common to all three; what differs is where packets are
//! forwarded, a [`Forwarder`]:
//!
//! - the userspace proxy forwards from the table itself ([`ProxyForwarder`]);
//! - XDP ([`xdp::XdpForwarder`]) programs the BPF maps, and copies the program's
//!   counters and flows into the table;
//! - kernel IPVS ([`ipvs::IpvsForwarder`]) programs the kernel over netlink, and copies
//!   its counters and sync daemons.
//!
//! The kernel handles of the last two are each owned by a thread of their own
//! ([`owner::Owner`]), never shared under a lock with the copier; what they publish for
//! the operator interface (flow list, sync-daemon lines) is swapped whole
//! ([`Snapshots`], `ArcSwap`), so readers never wait.

pub mod guard;
pub mod ipvs;
pub mod owner;
pub mod sync;
pub mod xdp;

use arc_swap::ArcSwap;
use rvs_proxy::{Proxy, ProxyOptions, Shared};
use rvs_sched::desired::Desired;
use rvs_sched::SvcKey;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

pub use rvs_sched::table::ApplyReport;
pub use xdp::XdpSettings;

/// A boxed future, for the object-safe [`Forwarder`].
pub type Fut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Which data plane forwards (`rvs run --dataplane`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// The userspace TCP/UDP proxy (no root needed).
    Proxy,
    /// The XDP/eBPF program forwards DR, TUN and NAT in the kernel (root).
    Xdp,
    /// The kernel's IPVS programmed over netlink, as keepalived does (root, `ip_vs`).
    Ipvs,
}

impl Kind {
    /// The name the CLI, the API and the metrics use.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Proxy => "proxy",
            Kind::Xdp => "xdp",
            Kind::Ipvs => "ipvs",
        }
    }

    /// The name in messages: `proxy`, `XDP`, `kernel IPVS`.
    pub fn title(self) -> &'static str {
        match self {
            Kind::Proxy => "proxy",
            Kind::Xdp => "XDP",
            Kind::Ipvs => "kernel IPVS",
        }
    }
}

/// Why part of a desired state was not applied (the rest is): each plane's own error,
/// kept typed until it is logged or answered.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The table (a listener of the proxy, or of the table-only proxy of XDP/IPVS).
    #[error(transparent)]
    Table(#[from] rvs_proxy::ProxyError),
    /// The kernel's IPVS refused a change.
    #[error(transparent)]
    Ipvs(#[from] rvs_ipvs::IpvsError),
    /// The XDP program or its maps refused a change.
    #[error(transparent)]
    Xdp(#[from] rvs_xdp::XdpError),
    /// LVS-DR rewrites MACs only: a real server behind a router cannot be reached.
    #[error(
        "virtual server {service}: DR real server {real} is routed through {gateway}, not on \
         the director's link (LVS-DR needs the real servers on its segment; use TUN or NAT)"
    )]
    DrRouted {
        service: SvcKey,
        real: std::net::IpAddr,
        gateway: std::net::IpAddr,
    },
    /// FULLNAT real servers on the kernel's IPVS, which has no such method.
    #[error(
        "virtual server {service}: FULLNAT (lb_kind FNAT) is not a method of the kernel's \
         IPVS: run it on the proxy data plane"
    )]
    FullNatKernel { service: SvcKey },
    /// The plane's kernel-handle thread has ended (shutdown under way).
    #[error("{}: the data plane is stopping", .0.title())]
    Stopping(Kind),
}

/// What the last apply could not serve.
#[derive(Debug, Clone, Default)]
pub enum Unserved {
    #[default]
    Nothing,
    Vips(std::collections::BTreeSet<std::net::IpAddr>),
    Everything,
}

impl ApplyError {
    /// The VIP this error leaves unserved, when it names one.
    pub fn vip(&self) -> Option<std::net::IpAddr> {
        match self {
            ApplyError::Table(rvs_proxy::ProxyError::Listen { addr, .. }) => Some(addr.ip()),
            ApplyError::DrRouted {
                service: SvcKey::Addr { addr, .. },
                ..
            }
            | ApplyError::FullNatKernel {
                service: SvcKey::Addr { addr, .. },
            } => Some(*addr),
            _ => None,
        }
    }

    /// Each error's message, for a log line or an answer.
    pub fn messages(errs: &[ApplyError]) -> Vec<String> {
        errs.iter().map(ToString::to_string).collect()
    }
}

/// What a forwarder publishes for listings, swapped whole.
#[derive(Default)]
pub struct Snapshots {
    /// `ipvsadm -L --daemon` lines of the kernel's sync daemons (kernel IPVS only).
    pub sync_daemons: ArcSwap<Vec<String>>,
    /// The XDP program's flows as `-Lc` lists them (XDP only).
    pub flows: ArcSwap<Vec<rvs_adm::Conn>>,
    /// The last walk of the XDP program's tables (its sync daemon sends from it).
    pub walk: ArcSwap<sync::Walk>,
    /// What the XDP plane's sync daemons sent, received and dropped.
    pub sync_stats: sync::SyncStats,
    /// The sync daemons' rvs extensions (`rvs_sync_peer`, `rvs_sync_key`), as the
    /// running configuration has them.
    pub sync_ext: ArcSwap<sync::SyncExt>,
    /// A peer that (re)joined asked for every flow: the master sends them all next.
    pub sync_resync: std::sync::atomic::AtomicBool,
    /// `--xdp-by-table`: services forwarded by their table and their changed slots.
    pub by_table: ArcSwap<Option<rvs_api::ByTable>>,
}

/// Where packets are forwarded: one implementation per data plane.
pub trait Forwarder: Send {
    fn kind(&self) -> Kind;

    /// Programs `want` by difference (the table has taken it already). Errors name
    /// what was not applied; the rest is.
    fn apply<'a>(&'a mut self, want: &'a Desired) -> Fut<'a, Result<(), Vec<ApplyError>>>;

    /// An ipvsadm command this plane carries out itself (`--start-daemon`,
    /// `--stop-daemon`, `-Z` in the kernel): `Some(answer)`; `None` leaves it to the
    /// table. A plane may act and still answer `None` (XDP takes a `-Z` base).
    fn command<'a>(
        &'a mut self,
        c: &'a rvs_adm::cmd::Command,
    ) -> Fut<'a, Option<Result<(), String>>>;

    /// Stops forwarding: the kernel's state is given back (services removed, program
    /// detached).
    fn stop(self: Box<Self>) -> Fut<'static, ()>;

    /// Stops for an upgrade: the kernel's state is left to the rvs that took over
    /// (which adopts it). By default the same as [`Forwarder::stop`].
    fn leave(self: Box<Self>) -> Fut<'static, ()> {
        self.stop()
    }

    /// Before an upgrade: pins what the successor loads its program on under `dir`
    /// (XDP); `None`: nothing to carry this way. The plane keeps forwarding.
    fn pin_for_upgrade<'a>(
        &'a mut self,
        _dir: &'a std::path::Path,
    ) -> Fut<'a, Result<Option<rvs_xdp::Carried>, String>> {
        Box::pin(async { Ok(None) })
    }

    /// After an upgrade: removes the pins; the program keeps its link unless
    /// `handed_over`.
    fn release_pins(&mut self, _handed_over: bool) -> Fut<'_, ()> {
        Box::pin(async {})
    }
}

/// The userspace proxy: the table forwards.
pub struct ProxyForwarder;

impl Forwarder for ProxyForwarder {
    fn kind(&self) -> Kind {
        Kind::Proxy
    }

    fn apply<'a>(&'a mut self, _: &'a Desired) -> Fut<'a, Result<(), Vec<ApplyError>>> {
        Box::pin(async { Ok(()) })
    }

    fn command<'a>(
        &'a mut self,
        _: &'a rvs_adm::cmd::Command,
    ) -> Fut<'a, Option<Result<(), String>>> {
        Box::pin(async { None })
    }

    fn stop(self: Box<Self>) -> Fut<'static, ()> {
        Box::pin(async {})
    }
}

/// The table and the forwarder of the running data plane.
pub struct Dataplane {
    proxy: Proxy,
    fwd: Box<dyn Forwarder>,
    pub snapshots: Arc<Snapshots>,
    unserved: Unserved,
}

impl Dataplane {
    /// The userspace proxy.
    pub fn proxy(opts: ProxyOptions) -> Dataplane {
        Dataplane {
            proxy: Proxy::new(opts),
            fwd: Box::new(ProxyForwarder),
            snapshots: Arc::default(),
            unserved: Unserved::Nothing,
        }
    }

    /// The kernel's IPVS (fails with what to do when the kernel has none).
    /// The kernel's IPVS, in the namespace `netns` names (`net_namespace_ipvs`) or in the
    /// daemon's own.
    pub fn ipvs(
        opts: &ProxyOptions,
        flush: ipvs::Flush,
        netns: Option<&str>,
        bufs: rvs_conf::model::RcvBufs,
    ) -> anyhow::Result<Dataplane> {
        let proxy = Proxy::new(ProxyOptions {
            table_only: true,
            ..opts.clone()
        });
        let snapshots = Arc::<Snapshots>::default();
        let fwd =
            ipvs::IpvsForwarder::open(proxy.shared.clone(), snapshots.clone(), flush, netns, bufs)?;
        Ok(Dataplane {
            proxy,
            fwd: Box::new(fwd),
            snapshots,
            unserved: Unserved::Nothing,
        })
    }

    /// Loads and attaches the XDP program on `s.iface`; taking over (`carried`), on the
    /// running program's maps and link.
    pub async fn xdp(
        opts: ProxyOptions,
        s: &XdpSettings,
        carried: Option<rvs_xdp::Carried>,
    ) -> anyhow::Result<Dataplane> {
        let proxy = Proxy::new(ProxyOptions {
            table_only: true,
            ..opts
        });
        let snapshots = Arc::<Snapshots>::default();
        let fwd =
            xdp::XdpForwarder::load(s, proxy.shared.clone(), snapshots.clone(), carried).await?;
        Ok(Dataplane {
            proxy,
            fwd: Box::new(fwd),
            snapshots,
            unserved: Unserved::Nothing,
        })
    }

    pub fn kind(&self) -> Kind {
        self.fwd.kind()
    }

    /// The table: services, counters, connections (listings and metrics).
    pub fn shared(&self) -> &Arc<Shared> {
        &self.proxy.shared
    }

    /// Applies `want` by difference, to the table then to the forwarder. Errors name
    /// what was not applied; the rest is.
    pub async fn apply(&mut self, want: &Desired) -> Result<ApplyReport, Vec<ApplyError>> {
        let table = self
            .proxy
            .apply(want)
            .map_err(|errs| errs.into_iter().map(ApplyError::from).collect::<Vec<_>>());
        let r = match (table, self.fwd.apply(want).await) {
            (Ok(rep), Ok(())) => Ok(rep),
            (t, f) => {
                let mut errs = t.err().unwrap_or_default();
                errs.extend(f.err().unwrap_or_default());
                Err(errs)
            }
        };
        self.unserved = match &r {
            Ok(_) => Unserved::Nothing,
            Err(errs) => errs
                .iter()
                .map(ApplyError::vip)
                .collect::<Option<std::collections::BTreeSet<_>>>()
                .map_or(Unserved::Everything, Unserved::Vips),
        };
        r
    }

    /// Whether the last apply left `vip` served (`rvs_bgp` announces only such VIPs):
    /// an error that names no VIP (the kernel refused a change) leaves none served.
    pub fn serves(&self, vip: std::net::IpAddr) -> bool {
        match &self.unserved {
            Unserved::Nothing => true,
            Unserved::Vips(v) => !v.contains(&vip),
            Unserved::Everything => false,
        }
    }

    /// An ipvsadm command the forwarder carries out itself (see [`Forwarder::command`]).
    pub async fn command(&mut self, c: &rvs_adm::cmd::Command) -> Option<Result<(), String>> {
        self.fwd.command(c).await
    }

    /// Stops forwarding, then drains the proxy's connections for at most `drain`.
    pub async fn shutdown(self, drain: Duration) {
        let Dataplane { mut proxy, fwd, .. } = self;
        fwd.stop().await;
        proxy.shutdown(drain).await;
    }

    /// Listening sockets handed over by the rvs this one replaces (`rvs upgrade`).
    pub fn adopt(&mut self, socks: impl IntoIterator<Item = (SvcKey, std::os::fd::OwnedFd)>) {
        self.proxy.adopt(socks);
    }

    /// Stops accepting and gives the listening sockets away (`rvs upgrade`).
    pub fn hand_over(&mut self) -> Vec<(SvcKey, std::os::fd::OwnedFd)> {
        self.proxy.hand_over()
    }

    /// Before a hand-over: pins the XDP program's maps and link under `dir` (see
    /// [`Forwarder::pin_for_upgrade`]).
    pub async fn pin_for_upgrade(
        &mut self,
        dir: &std::path::Path,
    ) -> Result<Option<rvs_xdp::Carried>, String> {
        self.fwd.pin_for_upgrade(dir).await
    }

    /// After a hand-over (see [`Forwarder::release_pins`]).
    pub async fn release_pins(&mut self, handed_over: bool) {
        self.fwd.release_pins(handed_over).await;
    }

    /// After a hand-over: leaves the kernel's state to the successor, then drains the
    /// proxy's established connections for at most `drain`.
    pub async fn leave(self, drain: Duration) {
        let Dataplane { mut proxy, fwd, .. } = self;
        fwd.leave().await;
        proxy.shutdown(drain).await;
    }
}
