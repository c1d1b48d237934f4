//! keepalived's `DBus` interface (`enable_dbus`), through zbus: the service
//! `org.keepalived.Vrrp1` (`dbus_service_name`) on the system bus, with keepalived's
//! objects, methods, properties and signals (the introspection files Debian's keepalived
//! installs under /usr/share/dbus-1/interfaces/):
//!
//! - `/org/keepalived/Vrrp1/Vrrp`, `org.keepalived.Vrrp1.Vrrp`: `PrintData`, `PrintStats`,
//!   `PrintStatsClear` (the dumps SIGUSR1 and SIGUSR2 write), `ReloadConfig` (as SIGHUP);
//!   signals `VrrpStarted`, `VrrpReloaded`, `VrrpStopped`;
//! - `/org/keepalived/Vrrp1/Instance/IFNAME/VRID/IPv4|IPv6`, `org.keepalived.Vrrp1.Instance`:
//!   properties `Name` (s) and `State` ((us): keepalived's number and name), method
//!   `SendGarp`, signal `VrrpStatusChange` (u).
//!
//! Instance objects follow reloads (added and removed by difference); state changes are
//! seen on the daemon's one-second check, as the e-mail alerts and SNMP traps are. The
//! bus connection lives on its own task; a method call only reads snapshots or sends the
//! main loop a request.

use crate::daemon::control::{Ctx, Request};
use crate::daemon::dumps::Dump;
use rvs_vrrp::State;
use std::collections::HashMap;
use std::sync::Arc;
use zbus::object_server::SignalEmitter;

/// The bus name keepalived registers (`dbus_service_name` overrides it).
pub const SERVICE: &str = "org.keepalived.Vrrp1";
const VRRP_PATH: &str = "/org/keepalived/Vrrp1/Vrrp";

/// keepalived's number and name of a state (`state_str`).
fn state_of(s: State) -> (u32, &'static str) {
    match s {
        State::Init => (0, "Init"),
        State::Backup => (1, "Backup"),
        State::Master => (2, "Master"),
        State::Fault => (3, "Fault"),
    }
}
/// keepalived's `VRRP_STATE_STOP`, signalled for every instance at stop.
const STOPPED: u32 = 98;

/// The object of an instance: `/org/keepalived/Vrrp1/Instance/eth0/51/IPv4`.
fn instance_path(i: &rvs_conf::model::VrrpInstance) -> Option<String> {
    let family = match i.family {
        rvs_conf::model::Family::Inet => "IPv4",
        rvs_conf::model::Family::Inet6 => "IPv6",
    };
    // Object path elements allow [A-Za-z0-9_]; keepalived's interface names rarely need
    // more (a `.` of a VLAN is written as `_`).
    let ifname: String = i
        .interface
        .as_deref()?
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    Some(format!(
        "/org/keepalived/Vrrp1/Instance/{ifname}/{}/{family}",
        i.virtual_router_id?
    ))
}

struct Vrrp {
    ctx: Arc<Ctx>,
}

#[zbus::interface(name = "org.keepalived.Vrrp1.Vrrp")]
impl Vrrp {
    /// Writes keepalived's data dump (as SIGUSR1).
    async fn print_data(&self) {
        write(&self.ctx, Dump::Data).await;
    }

    /// Writes keepalived's statistics dump (as SIGUSR2).
    async fn print_stats(&self) {
        write(&self.ctx, Dump::Stats).await;
    }

    /// keepalived prints and then zeroes its statistics; rvs prints them and keeps its
    /// counters (they feed the metrics and SNMP, which must only grow).
    async fn print_stats_clear(&self) {
        tracing::warn!(
            "DBus PrintStatsClear: statistics written, not cleared (rvs's counters only grow)"
        );
        write(&self.ctx, Dump::Stats).await;
    }

    /// Reloads the configuration, as SIGHUP (the answer does not wait for it).
    async fn reload_config(&self) {
        let (tx, _rx) = tokio::sync::oneshot::channel();
        if self.ctx.tx.send(Request::Reload(tx)).await.is_err() {
            tracing::warn!("DBus ReloadConfig: the daemon is stopping; not reloaded");
        }
    }

    #[zbus(signal)]
    async fn vrrp_started(e: &SignalEmitter<'_>) -> zbus::Result<()>;

    #[zbus(signal)]
    async fn vrrp_reloaded(e: &SignalEmitter<'_>) -> zbus::Result<()>;

    #[zbus(signal)]
    async fn vrrp_stopped(e: &SignalEmitter<'_>) -> zbus::Result<()>;
}

async fn write(ctx: &Arc<Ctx>, which: Dump) {
    let _ = which.spawn_write(ctx.config.load_full(), ctx.vrrp()).await;
}

struct Instance {
    ctx: Arc<Ctx>,
    name: String,
}

impl Instance {
    fn status(&self) -> Option<rvs_vrrpd::InstanceStatus> {
        self.ctx.vrrp().into_iter().find(|s| s.name == self.name)
    }
}

#[zbus::interface(name = "org.keepalived.Vrrp1.Instance")]
impl Instance {
    /// Sends gratuitous ARPs (neighbour advertisements for IPv6) for the instance's
    /// addresses, when it holds them (MASTER).
    async fn send_garp(&self) -> zbus::fdo::Result<()> {
        let Some(st) = self.status() else {
            return Err(zbus::fdo::Error::InvalidArgs(format!(
                "Instance '{}' not found",
                self.name
            )));
        };
        tracing::info!("Sending garps on {} on DBus request", st.name);
        if st.state != State::Master {
            return Ok(());
        }
        let vips = st.vips.clone();
        tokio::task::spawn_blocking(move || {
            let ann = rvs_vrrpd::net::Announcer::new(&st.interface, st.ifindex, st.mac)
                .map_err(|e| zbus::fdo::Error::Failed(format!("{}: {e}", st.interface)))?;
            for v in &vips {
                let ip = v.split('/').next().and_then(|a| a.parse().ok());
                if let Some(ip) = ip {
                    if let Err(e) = ann.announce(ip) {
                        tracing::warn!("({}) gratuitous ARP for {ip}: {e}", st.name);
                    }
                }
            }
            Ok(())
        })
        .await
        .map_err(|e| zbus::fdo::Error::Failed(e.to_string()))?
    }

    #[zbus(property)]
    fn name(&self) -> String {
        self.name.clone()
    }

    #[zbus(property)]
    fn state(&self) -> (u32, String) {
        let s = self.status().map_or(State::Init, |s| s.state);
        let (n, name) = state_of(s);
        (n, name.to_owned())
    }

    #[zbus(signal)]
    async fn vrrp_status_change(e: &SignalEmitter<'_>, status: u32) -> zbus::Result<()>;
}

/// The daemon's `DBus` service while it runs.
pub struct Service {
    conn: zbus::Connection,
    /// The bus name it owns.
    name: String,
    ctx: Arc<Ctx>,
    /// Instance objects by path, with the name they serve.
    objects: HashMap<String, String>,
    /// The last state signalled, by instance name.
    last: HashMap<String, State>,
}

impl Service {
    /// Connects to the system bus (`DBUS_SYSTEM_BUS_ADDRESS` or the default), takes the
    /// service name and serves the objects of the running configuration.
    pub async fn start(ctx: Arc<Ctx>) -> zbus::Result<Service> {
        let cfg = ctx.config.load_full();
        let name = cfg
            .global_defs
            .dbus_service_name
            .clone()
            .unwrap_or_else(|| SERVICE.to_owned());
        let conn = zbus::connection::Builder::system()?
            .serve_at(VRRP_PATH, Vrrp { ctx: ctx.clone() })?
            .name(name.clone())?
            .build()
            .await?;
        tracing::info!("DBus: {name} on the system bus");
        let mut s = Service {
            conn,
            name,
            ctx,
            objects: HashMap::new(),
            last: HashMap::new(),
        };
        s.reconcile(&cfg).await;
        s.vrrp_signal(Signal::Started).await;
        Ok(s)
    }

    /// The bus name it owns.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Adds and removes instance objects to match `cfg` (a reload).
    pub async fn reconcile(&mut self, cfg: &rvs_conf::Config) {
        let want: HashMap<String, String> = cfg
            .vrrp_instances
            .iter()
            .filter_map(|i| Some((instance_path(i)?, i.name.clone())))
            .collect();
        let server = self.conn.object_server();
        let gone: Vec<String> = self
            .objects
            .iter()
            .filter(|(p, n)| want.get(*p) != Some(*n))
            .map(|(p, _)| p.clone())
            .collect();
        for p in gone {
            let _ = server.remove::<Instance, _>(p.as_str()).await;
            self.objects.remove(&p);
        }
        for (p, n) in want {
            if self.objects.contains_key(&p) {
                continue;
            }
            let obj = Instance {
                ctx: self.ctx.clone(),
                name: n.clone(),
            };
            match server.at(p.as_str(), obj).await {
                Ok(_) => {
                    self.objects.insert(p, n);
                }
                Err(e) => tracing::warn!("DBus: object {p}: {e}"),
            }
        }
    }

    /// Signals the instances whose state changed since the last look.
    pub async fn states(&mut self, status: &[rvs_vrrpd::InstanceStatus]) {
        for st in status {
            if self.last.insert(st.name.clone(), st.state) == Some(st.state) {
                continue;
            }
            self.instance_signal(&st.name, state_of(st.state).0).await;
        }
    }

    async fn instance_signal(&self, name: &str, status: u32) {
        let server = self.conn.object_server();
        for (p, n) in &self.objects {
            if n != name {
                continue;
            }
            if let Ok(iface) = server.interface::<_, Instance>(p.as_str()).await {
                let e = iface.signal_emitter();
                let _ = Instance::vrrp_status_change(e, status).await;
                let _ = iface.get().await.state_changed(e).await;
            }
        }
    }

    /// The configuration was reloaded: objects follow it, `VrrpReloaded` is signalled.
    pub async fn reloaded(&mut self, cfg: &rvs_conf::Config) {
        self.reconcile(cfg).await;
        self.vrrp_signal(Signal::Reloaded).await;
    }

    /// At stop: every instance signals keepalived's STOP state, then `VrrpStopped`.
    pub async fn stop(self) {
        let names: Vec<String> = self.objects.values().cloned().collect();
        for n in names {
            self.instance_signal(&n, STOPPED).await;
        }
        self.vrrp_signal(Signal::Stopped).await;
        let _ = self.conn.close().await;
    }

    async fn vrrp_signal(&self, which: Signal) {
        let Ok(e) = SignalEmitter::new(&self.conn, VRRP_PATH) else {
            return;
        };
        let r = match which {
            Signal::Started => Vrrp::vrrp_started(&e).await,
            Signal::Reloaded => Vrrp::vrrp_reloaded(&e).await,
            Signal::Stopped => Vrrp::vrrp_stopped(&e).await,
        };
        if let Err(err) = r {
            tracing::debug!("DBus signal: {err}");
        }
    }
}

#[derive(Clone, Copy)]
enum Signal {
    Started,
    Reloaded,
    Stopped,
}
