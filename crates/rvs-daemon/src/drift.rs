//! Configuration drift between directors (sans-IO): the parts of a configuration that
//! the directors of one service must agree on — virtual servers (scheduler, forwarding,
//! persistence, real servers and their weights) and VRRP instances (VRID, VIPs) — as
//! sections of canonical lines, and the differences between two directors' sections.
//! What legitimately differs (priorities, initial states, router ids, checkers' timing)
//! is left out. The daemon exchanges sections with its peers (`rvs_config_drift_*`);
//! it never applies a peer's configuration, it reports.

use rvs_conf::model::{Config, VsKey};
use std::collections::BTreeMap;

/// Section title → its canonical lines (sorted).
pub type Sections = BTreeMap<String, Vec<String>>;

fn vs_title(key: &VsKey, proto: Option<rvs_conf::model::Protocol>) -> String {
    let p = proto.map_or(String::new(), |p| format!(" {p:?}").to_uppercase());
    match key {
        VsKey::Address { address, port } => {
            format!(
                "virtual_server {}{p}",
                std::net::SocketAddr::new(*address, *port)
            )
        }
        VsKey::Fwmark { fwmark } => format!("virtual_server fwmark {fwmark}{p}"),
        VsKey::Group { group } => format!("virtual_server group {group}{p}"),
    }
}

/// The sections of `cfg` the directors must agree on.
pub fn sections(cfg: &Config) -> Sections {
    let mut out = Sections::new();
    for vs in &cfg.virtual_servers {
        let mut lines = vec![
            format!("lb_algo {}", format!("{:?}", vs.lb_algo).to_lowercase()),
            format!("lb_kind {:?}", vs.forwarding.method).to_uppercase(),
            match vs.persistence_timeout {
                Some(t) => format!("persistence_timeout {t}"),
                None => "persistence_timeout none".into(),
            },
        ];
        if let Some(g) = &vs.persistence_granularity {
            lines.push(format!("persistence_granularity {g}"));
        }
        for rs in &vs.real_servers {
            lines.push(format!(
                "real_server {} weight {} {}",
                std::net::SocketAddr::new(rs.address, rs.port),
                rs.weight,
                format!("{:?}", rs.forwarding.method).to_uppercase()
            ));
        }
        lines.sort();
        out.insert(vs_title(&vs.key, vs.protocol), lines);
    }
    for vi in &cfg.vrrp_instances {
        let mut lines = vec![format!(
            "virtual_router_id {}",
            vi.virtual_router_id
                .map_or("none".into(), |v| v.to_string())
        )];
        for v in &vi.virtual_ipaddress {
            lines.push(format!("virtual_ipaddress {}/{}", v.address, v.prefix_len));
        }
        lines.sort();
        out.insert(format!("vrrp_instance {}", vi.name), lines);
    }
    out
}

/// The key of a line: what it sets (`real_server 198.18.0.11:80`, `lb_algo`).
fn line_key(l: &str) -> String {
    let mut w = l.split_whitespace();
    match (w.next(), w.next()) {
        (Some(k @ ("real_server" | "virtual_ipaddress")), Some(a)) => format!("{k} {a}"),
        (Some(k), _) => k.to_owned(),
        (None, _) => String::new(),
    }
}

/// The differences between this director's sections and a peer's, one line each:
/// `virtual_server 198.18.0.50:80 TCP: real_server 198.18.0.11:80 weight 1 DR here,
/// weight 2 DR there`.
pub fn diff(ours: &Sections, theirs: &Sections) -> Vec<String> {
    let mut out = Vec::new();
    for (title, lines) in ours {
        let Some(other) = theirs.get(title) else {
            out.push(format!("{title}: here only"));
            continue;
        };
        let mine: BTreeMap<String, &String> = lines.iter().map(|l| (line_key(l), l)).collect();
        let peer: BTreeMap<String, &String> = other.iter().map(|l| (line_key(l), l)).collect();
        for (k, l) in &mine {
            match peer.get(k) {
                None => out.push(format!("{title}: {l} here only")),
                Some(p) if p != l => {
                    let here = l.strip_prefix(k.as_str()).unwrap_or(l).trim();
                    let there = p.strip_prefix(k.as_str()).unwrap_or(p).trim();
                    out.push(format!("{title}: {k} {here} here, {there} there"));
                }
                Some(_) => {}
            }
        }
        for (k, p) in &peer {
            if !mine.contains_key(k) {
                out.push(format!("{title}: {p} there only"));
            }
        }
    }
    for title in theirs.keys().filter(|t| !ours.contains_key(*t)) {
        out.push(format!("{title}: there only"));
    }
    out
}
