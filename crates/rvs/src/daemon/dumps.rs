//! keepalived's state dumps, in keepalived 2.2.7's layouts, for the tools that read them
//! (keepalived exporters, scripts): on SIGUSR1 the data dump (`/tmp/keepalived.data`),
//! on SIGUSR2 the VRRP statistics (`/tmp/keepalived.stats`), on keepalived's JSON signal
//! (`keepalived --signum=JSON`, SIGRTMIN+2) the VRRP instances as JSON
//! (`/tmp/keepalived.json`). keepalived 2.2.7 writes to those fixed paths; the
//! `state_dump_file`, `stats_dump_file` and `json_dump_file` keywords of later versions
//! move them, in rvs too.
//! `rvs status --keepalived-json` prints the JSON from the API.
//!
//! The statistics and the JSON are keepalived's, field for field (`tests/vrrp.rs` runs
//! keepalived beside rvs and compares). The data dump has keepalived's section titles
//! and its `Name = value` lines for what rvs runs (global definitions and the VRRP
//! topology); keepalived's internals (socket pools, file descriptors, its interface
//! cache) have no counterpart and are left out.

use rvs_conf::model::{Config, VipAddr, VrrpInstance};
use rvs_vrrpd::InstanceStatus;
use std::fmt::Write as _;
use std::path::PathBuf;

/// Numbers the staging files of dump writes.
static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Which dump a signal asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dump {
    Data,
    Stats,
    Json,
}

impl Dump {
    /// Where it goes: the `*_dump_file` of `global_defs`, else keepalived's default.
    pub fn path(self, cfg: &Config) -> PathBuf {
        let (key, default) = match self {
            Dump::Data => ("state_dump_file", "/tmp/keepalived.data"),
            Dump::Stats => ("stats_dump_file", "/tmp/keepalived.stats"),
            Dump::Json => ("json_dump_file", "/tmp/keepalived.json"),
        };
        let g = &cfg.global_defs;
        match g.other.get(key).and_then(|v| v.first()) {
            Some(p) => PathBuf::from(p),
            // data_use_instance: keepalived's names carry the namespace and instance.
            None if g.data_use_instance => crate::daemon::netns::file_name(
                default,
                g.net_namespace.as_deref(),
                g.instance.as_deref(),
            ),
            None => PathBuf::from(default),
        }
    }

    /// The dump's text.
    pub fn render(self, cfg: &Config, instances: &[InstanceStatus]) -> String {
        match self {
            Dump::Data => data(cfg, instances),
            Dump::Stats => stats(instances),
            Dump::Json => json(cfg, instances),
        }
    }

    /// Writes it on a blocking thread (off the runtime): the signal handlers and `DBus`.
    pub fn spawn_write(
        self,
        cfg: std::sync::Arc<Config>,
        instances: Vec<InstanceStatus>,
    ) -> tokio::task::JoinHandle<()> {
        tokio::task::spawn_blocking(move || self.write(&cfg, &instances))
    }

    /// Writes it (mode 0600 like keepalived's, replaced whole), and logs the outcome.
    pub fn write(self, cfg: &Config, instances: &[InstanceStatus]) {
        let path = self.path(cfg);
        match self.try_write(cfg, instances) {
            Ok(()) => tracing::info!("{self:?} dump written to {}", path.display()),
            Err(e) => tracing::error!("writing the {self:?} dump {}: {e}", path.display()),
        }
    }

    fn try_write(self, cfg: &Config, instances: &[InstanceStatus]) -> std::io::Result<()> {
        use std::os::unix::fs::OpenOptionsExt as _;
        let path = self.path(cfg);
        let text = self.render(cfg, instances);
        // Staged beside it under a name of its own: dumps written at once (SIGUSR1 and
        // SIGUSR2 together, or two of one kind) never share a staging file.
        let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut staged = path.clone().into_os_string();
        staged.push(format!(".rvs-tmp.{}.{seq}", std::process::id()));
        let staged = PathBuf::from(staged);
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&staged)
            .and_then(|mut f| std::io::Write::write_all(&mut f, text.as_bytes()))
            .and_then(|()| std::fs::rename(&staged, &path))
    }
}

/// `config_save_dir`: the state around reload `n`, as keepalived saves each process's:
/// `DIR/keepalived_vrrp.PID.N.{pre,post}` (the data dump's VRRP layout) and
/// `DIR/keepalived_check.PID.N.{pre,post}` (the tables, as `ipvsadm -Ln` lists them).
pub fn save_config(
    dir: &std::path::Path,
    n: u64,
    post: bool,
    cfg: &Config,
    instances: &[InstanceStatus],
    services: &[rvs_adm::Service],
) {
    let when = if post { "post" } else { "pre" };
    let pid = std::process::id();
    for (process, text) in [
        ("vrrp", data(cfg, instances)),
        (
            "check",
            rvs_adm::list(services, rvs_adm::ListOpts::default()),
        ),
    ] {
        let f = dir.join(format!("keepalived_{process}.{pid}.{n}.{when}"));
        if let Err(e) = std::fs::write(&f, text) {
            tracing::info!("Failed to open config_save file {}: {e}", f.display());
        }
    }
}

/// keepalived's error counters, from rvs's drop reasons (one mapping for both dumps).
pub(crate) struct Errors {
    pub packet_len: u64,
    pub ttl: u64,
    pub invalid_type: u64,
    pub advert_interval: u64,
    pub invalid_authtype: u64,
    pub authtype_mismatch: u64,
    pub auth_failure: u64,
}

impl Errors {
    /// No errors (an instance the engine has not reported yet).
    pub(crate) fn none() -> Errors {
        Errors {
            packet_len: 0,
            ttl: 0,
            invalid_type: 0,
            advert_interval: 0,
            invalid_authtype: 0,
            authtype_mismatch: 0,
            auth_failure: 0,
        }
    }

    pub(crate) fn of(v: &InstanceStatus) -> Errors {
        let n = |reason: &str| v.dropped.get(reason).copied().unwrap_or(0);
        Errors {
            packet_len: n("truncated"),
            ttl: n("ttl"),
            invalid_type: n("version"),
            advert_interval: n("interval"),
            invalid_authtype: n("auth_invalid"),
            authtype_mismatch: n("auth_type"),
            auth_failure: n("auth"),
        }
    }
}

/// keepalived's `vrrp_print_stats`.
pub fn stats(instances: &[InstanceStatus]) -> String {
    let mut o = String::new();
    for v in instances {
        let e = Errors::of(v);
        let _ = write!(
            o,
            "VRRP Instance: {}\n  Advertisements:\n    Received: {}\n    Sent: {}\n  \
             Became master: {}\n  Released master: {}\n  Packet Errors:\n    Length: {}\n    \
             TTL: {}\n    Invalid Type: {}\n    Advertisement Interval: {}\n    \
             Address List: {}\n  Authentication Errors:\n    Invalid Type: {}\n    \
             Type Mismatch: {}\n    Failure: {}\n  Priority Zero:\n    Received: {}\n    \
             Sent: {}\n",
            v.name,
            v.adverts_rx,
            v.adverts_tx,
            v.became_master,
            v.released_master,
            e.packet_len,
            e.ttl,
            e.invalid_type,
            e.advert_interval,
            v.addr_list_err,
            e.invalid_authtype,
            e.authtype_mismatch,
            e.auth_failure,
            v.priority_zero_rx,
            v.priority_zero_tx,
        );
    }
    o
}

/// keepalived's numbering of states (`VRRP_STATE_*`).
fn state_number(s: rvs_vrrp::State) -> u8 {
    match s {
        rvs_vrrp::State::Init => 0,
        rvs_vrrp::State::Backup => 1,
        rvs_vrrp::State::Master => 2,
        rvs_vrrp::State::Fault => 3,
    }
}

/// A time in seconds as keepalived's JSON writes it: a whole number when it is one.
fn seconds(d: std::time::Duration) -> serde_json::Value {
    if d.subsec_nanos() == 0 {
        serde_json::json!(d.as_secs())
    } else {
        serde_json::json!(d.as_secs_f64())
    }
}

/// A VIP as keepalived prints it: `198.18.0.50 dev eth0 scope global` (the prefix when
/// it is not a host's), ` set` while installed.
fn vip_text(a: &VipAddr, iface: &str, installed: bool) -> String {
    let host = if a.address.is_ipv4() { 32 } else { 128 };
    let prefix = if a.prefix_len == host {
        String::new()
    } else {
        format!("/{}", a.prefix_len)
    };
    format!(
        "{}{prefix} dev {} scope {}{}",
        a.address,
        a.dev.as_deref().unwrap_or(iface),
        a.scope.as_deref().unwrap_or("global"),
        if installed { " set" } else { "" }
    )
}

fn config_of<'c>(cfg: &'c Config, name: &str) -> Option<&'c VrrpInstance> {
    cfg.vrrp_instances.iter().find(|i| i.name == name)
}

fn vmac_name(vi: &VrrpInstance) -> String {
    match &vi.use_vmac {
        Some(n) if n.is_empty() => format!("vrrp.{}", vi.virtual_router_id.unwrap_or(0)),
        Some(n) => n.clone(),
        None => String::new(),
    }
}

fn flag(b: bool) -> u8 {
    u8::from(b)
}

/// keepalived's JSON dump (`vrrp_print_json`): one object per instance, its `data` and
/// `stats`.
pub fn json(cfg: &Config, instances: &[InstanceStatus]) -> String {
    let g = &cfg.global_defs;
    let out: Vec<serde_json::Value> = instances
        .iter()
        .filter_map(|v| {
            let vi = config_of(cfg, &v.name)?;
            let installed = v.state == rvs_vrrp::State::Master;
            let e = Errors::of(v);
            #[expect(
                clippy::cast_precision_loss,
                reason = "microseconds since 1970 fit f64 exactly until 2255"
            )]
            let last_transition = v.last_transition_us as f64 / 1e6;
            Some(serde_json::json!({
                "data": {
                    "iname": v.name,
                    "dont_track_primary": flag(vi.dont_track_primary),
                    "skip_check_adv_addr": flag(g.vrrp_skip_check_adv_addr),
                    "strict_mode": flag(vi.strict_mode),
                    "vmac_ifname": vmac_name(vi),
                    "ifp_ifname": v.interface,
                    // The master heard from (none while this one is MASTER).
                    "master_priority": if installed { 0 } else { v.master_priority.unwrap_or(0) },
                    "last_transition": last_transition,
                    "garp_delay": vi.garp_master_delay,
                    "garp_refresh": vi.garp_master_refresh,
                    "garp_rep": vi.garp_master_repeat,
                    "garp_refresh_rep": vi.garp_master_refresh_repeat,
                    "garp_lower_prio_delay": vi.garp_lower_prio_delay,
                    "garp_lower_prio_rep": vi.garp_lower_prio_repeat,
                    "lower_prio_no_advert": flag(vi.lower_prio_no_advert),
                    "higher_prio_send_advert": flag(vi.higher_prio_send_advert),
                    "vrid": v.vrid,
                    "base_priority": v.base_priority,
                    "effective_priority": v.priority,
                    "vipset": installed,
                    "promote_secondaries": vi.promote_secondaries,
                    "adver_int": seconds(vi.advert_int),
                    "master_adver_int": seconds(vi.advert_int),
                    "accept": flag(vi.accept),
                    "nopreempt": vi.nopreempt,
                    "preempt_delay": seconds(vi.preempt_delay),
                    "state": state_number(v.state),
                    "wantstate": state_number(v.state),
                    "version": v.version,
                    "smtp_alert": vi.smtp_alert.or(g.smtp_alert_vrrp).or(g.smtp_alert).unwrap_or(false),
                    "notify_deleted": false,
                    "vips": vi
                        .virtual_ipaddress
                        .iter()
                        .map(|a| vip_text(a, &v.interface, installed))
                        .collect::<Vec<_>>(),
                    "auth_type": vi.authentication.as_ref().map_or(0, |a| if a.auth_type == "AH" { 2 } else { 1 }),
                },
                "stats": {
                    "advert_rcvd": v.adverts_rx,
                    "advert_sent": v.adverts_tx,
                    "become_master": v.became_master,
                    "release_master": v.released_master,
                    "packet_len_err": e.packet_len,
                    "advert_interval_err": e.advert_interval,
                    "ip_ttl_err": e.ttl,
                    "invalid_type_rcvd": e.invalid_type,
                    "addr_list_err": v.addr_list_err,
                    "invalid_authtype": e.invalid_authtype,
                    "authtype_mismatch": e.authtype_mismatch,
                    "auth_failure": e.auth_failure,
                    "pri_zero_rcvd": v.priority_zero_rx,
                    "pri_zero_sent": v.priority_zero_tx,
                }
            }))
        })
        .collect();
    serde_json::to_string(&out).unwrap_or_else(|_| "[]".to_owned())
}

fn on_off(b: bool) -> &'static str {
    if b {
        "true"
    } else {
        "false"
    }
}

/// keepalived's data dump (`dump_data_vrrp`), as far as rvs has the same things.
pub fn data(cfg: &Config, instances: &[InstanceStatus]) -> String {
    let g = &cfg.global_defs;
    let mut o = String::new();
    let _ = writeln!(o, "------< Global definitions >------");
    let _ = writeln!(
        o,
        " Router ID = {}",
        g.router_id
            .clone()
            .unwrap_or_else(crate::daemon::alerts::hostname)
    );
    let opt = |v: Option<bool>| v.map_or("unset", on_off).to_owned();
    let flag = |b: bool| on_off(b).to_owned();
    for (name, value) in [
        ("Default smtp_alert", opt(g.smtp_alert)),
        ("Default smtp_alert_vrrp", opt(g.smtp_alert_vrrp)),
        ("Default smtp_alert_checker", opt(g.smtp_alert_checker)),
        (
            "Checkers log all failures",
            flag(g.checker_log_all_failures),
        ),
        (
            "VRRP notify priority changes",
            flag(g.vrrp_notify_priority_changes),
        ),
        ("VRRP default protocol version", g.vrrp_version.to_string()),
        ("VRRP check unicast_src", flag(g.vrrp_check_unicast_src)),
        (
            "VRRP skip check advert addresses",
            flag(g.vrrp_skip_check_adv_addr),
        ),
        ("VRRP strict mode", flag(g.vrrp_strict)),
        ("rs_init_notifies", u8::from(g.rs_init_notifies).to_string()),
    ] {
        let _ = writeln!(o, " {name} = {value}");
    }
    let _ = writeln!(o, "------< VRRP Topology >------");
    for v in instances {
        let Some(vi) = config_of(cfg, &v.name) else {
            continue;
        };
        let _ = writeln!(o, " VRRP Instance = {}", v.name);
        let _ = writeln!(o, "   VRRP Version = {}", v.version);
        let _ = writeln!(o, "   State = {}", v.state);
        let _ = writeln!(o, "   Wantstate = {}", v.state);
        let _ = writeln!(o, "   Interface = {}", v.interface);
        let _ = writeln!(o, "   Using src_ip = {}", v.source);
        let _ = writeln!(o, "   Virtual Router ID = {}", v.vrid);
        let _ = writeln!(o, "   Priority = {}", v.base_priority);
        let _ = writeln!(o, "   Effective priority = {}", v.priority);
        let _ = writeln!(
            o,
            "   Advert interval = {}",
            if vi.advert_int.subsec_nanos() == 0 {
                format!("{} sec", vi.advert_int.as_secs())
            } else {
                format!("{} milli-sec", vi.advert_int.as_millis())
            }
        );
        let _ = writeln!(
            o,
            "   Accept = {}",
            if vi.accept { "enabled" } else { "disabled" }
        );
        let _ = writeln!(
            o,
            "   Preempt = {}",
            if vi.nopreempt { "disabled" } else { "enabled" }
        );
        let _ = writeln!(
            o,
            "   Authentication type = {}",
            match &vi.authentication {
                None => "none",
                Some(a) if a.auth_type == "AH" => "IPSEC_AH",
                Some(_) => "SIMPLE_PASSWORD",
            }
        );
        let installed = v.state == rvs_vrrp::State::Master;
        let _ = writeln!(o, "   Virtual IP ({}):", vi.virtual_ipaddress.len());
        for a in &vi.virtual_ipaddress {
            let _ = writeln!(o, "     {}", vip_text(a, &v.interface, installed));
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::Dump;

    /// SIGUSR1 and SIGUSR2 together wrote their dumps through one staging name (the
    /// dump's name with its extension replaced), so one of them failed now and then
    /// (found by the 20-run loop: `vrrp.rs::state_dumps_have_keepalived_layouts`).
    /// Dumps written at once must all land.
    #[test]
    fn dumps_written_at_once_all_land() {
        let dir = std::env::temp_dir().join(format!("rvs-dumps-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let text = format!(
            "global_defs {{\n  state_dump_file {d}/k.data\n  stats_dump_file {d}/k.stats\n  \
             json_dump_file {d}/k.json\n}}\n",
            d = dir.display()
        );
        let parsed = rvs_conf::parse_str(
            std::path::Path::new("k.conf"),
            &text,
            &rvs_conf::Options::default(),
        );
        let cfg = std::sync::Arc::new(parsed.config);
        let writers: Vec<_> = [Dump::Data, Dump::Stats, Dump::Json, Dump::Data]
            .into_iter()
            .map(|d| {
                let cfg = cfg.clone();
                std::thread::spawn(move || {
                    (0..300)
                        .map(|_| d.try_write(&cfg, &[]))
                        .filter(Result::is_err)
                        .count()
                })
            })
            .collect();
        let failed: usize = writers.into_iter().map(|w| w.join().unwrap()).sum();
        assert_eq!(failed, 0, "dump writes failed");
        for x in ["data", "stats", "json"] {
            assert!(dir.join(format!("k.{x}")).exists());
        }
        let left: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().collect();
        assert_eq!(left.len(), 3, "staging files left: {left:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
