//! Tree → typed [`Config`]: keyword handlers with keepalived's defaults, then the
//! cross-block checks (references, duplicate VRIDs, port remapping in DR/TUN, ...).
//!
//! One `Loader` walks the tree; its handlers are split by block: `global`
//! (`global_defs`), `vrrp` (scripts, trackers, BFD, sync groups, instances), `lvs`
//! (virtual server groups, virtual and real servers), `checker` (the health checkers)
//! and `cross` (the checks across blocks). The value parsers they share live here.

use crate::args::{parse_int, parse_ip, Args};
use crate::diag::{Diags, Loc};
use crate::lex::Token;
use crate::model::{
    Authentication, BfdCheck, CheckKind, Checker, Config, DnsCheck, Family, FileCheck, Forwarding,
    GlobalDefs, HttpCheck, InitFile, LvsTimeouts, Method, MiscCheck, Notify, ProcessSettings,
    Protocol, RealServer, RxBufsPolicy, SchedFlags, Scheduler, SmtpCheck, SmtpServer, SorryServer,
    SyncGroup, TrackFile, TrackRef, Trackers, Tunnel, UdpCheck, UnicastPeer, Url, VipAddr,
    VirtualServer, VirtualServerGroup, VrrpInstance, VrrpScript, VrrpState, VsKey, VsgEntry,
};
use crate::suggest;
use crate::tree::Node;
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::time::Duration;

mod bgp;
mod checker;
mod cross;
mod fnat;
mod global;
mod lvs;
mod routes;
mod vrrp;

pub fn load(tree: &[Node], diags: &mut Diags) -> Config {
    let mut l = Loader {
        a: Args { diags },
        cfg: Config::default(),
        locs: Locs::default(),
    };
    // global_defs first: instance defaults (garp, version) come from it wherever it is.
    for n in tree.iter().filter(|n| n.name() == "global_defs") {
        l.global_defs(n);
    }
    for n in tree {
        match n.name() {
            "global_defs" => {}
            "vrrp_script" => l.vrrp_script(n),
            "track_file" | "vrrp_track_file" => l.track_file(n),
            "bfd_instance" => l.bfd_instance(n),
            "interface_up_down_delays" => {
                // `IF DOWN_DELAY [UP_DELAY]` per line (seconds, up to 255; UP defaults 0).
                let a = &mut l.a;
                for item in n.children() {
                    let Some(down) = item.args.first() else {
                        a.diags.ka_warning(
                            item.kw.loc,
                            item.kw.width,
                            format!("no delays given for {}: ignored", item.kw.text),
                        );
                        continue;
                    };
                    let Some(d) = a.timer(down, 0.0, 255.0) else {
                        continue;
                    };
                    let u = match item.args.get(1) {
                        None => Some(Duration::ZERO),
                        Some(t) => a.timer(t, 0.0, 255.0),
                    };
                    if let Some(t) = item.args.get(2) {
                        a.diags.ka_warning(
                            t.loc,
                            t.width,
                            format!("too many parameters for {} up/down delays", item.kw.text),
                        );
                    }
                    if let Some(u) = u {
                        l.cfg.interface_delays.insert(item.kw.text.clone(), (d, u));
                    }
                }
            }
            "garp_group" => {
                let a = &mut l.a;
                let mut gg = crate::model::GarpGroup {
                    garp_interval: None,
                    gna_interval: None,
                    interfaces: Vec::new(),
                };
                for c in n.children() {
                    match c.name() {
                        "garp_interval" => gg.garp_interval = a.arg_timer(c, 0.0, 1.0),
                        "gna_interval" => gg.gna_interval = a.arg_timer(c, 0.0, 1.0),
                        "interface" => gg.interfaces.extend(a.string(c)),
                        "interfaces" => gg
                            .interfaces
                            .extend(c.children().iter().map(|i| i.kw.text.clone())),
                        _ => {}
                    }
                }
                if gg.interfaces.is_empty() {
                    a.diags
                        .ka_warning(
                            n.kw.loc,
                            n.kw.width,
                            "garp_group without interfaces: ignored",
                        )
                        .hint("add 'interface IFNAME' or 'interfaces { ... }'");
                } else {
                    l.cfg.garp_groups.push(gg);
                }
            }
            "vrrp_track_process" => l.track_process(n),
            "vrrp_sync_group" => l.sync_group(n),
            "vrrp_instance" => l.vrrp_instance(n),
            "virtual_server_group" => l.vs_group(n),
            "virtual_server" => l.virtual_server(n),
            "rvs_bgp" => l.rvs_bgp(n),
            "local_address_group" => l.local_address_group(n),
            "SSL" => {
                let a = &mut l.a;
                let mut ssl = crate::model::SslConfig::default();
                for c in n.children() {
                    let v = a.string(c);
                    match c.name() {
                        "ca" => ssl.ca = v,
                        "certificate" => ssl.certificate = v,
                        "key" => ssl.key = v,
                        "password" => ssl.password = v,
                        _ => {}
                    }
                }
                l.cfg.ssl = Some(ssl);
            }
            "static_ipaddress" => {
                let v = vips(&mut l.a, n);
                l.cfg.static_ipaddress.extend(v);
            }
            "net_namespace" | "net_namespace_ipvs" | "instance" | "use_pid_dir"
            | "child_wait_time" => {
                global::namespaces(&mut l.a, &mut l.cfg.global_defs, n);
            }
            kw @ ("static_routes" | "static_rules") => {
                if kw == "static_routes" {
                    l.cfg.static_routes = routes::routes(&mut l.a, n, false);
                } else {
                    l.cfg.static_rules = routes::rules(&mut l.a, n);
                }
            }
            name => {
                *l.cfg.other_blocks.entry(name.to_owned()).or_default() += 1;
                if !n.args.is_empty() || !n.children().is_empty() {
                    l.cfg.global_defs.other.insert(
                        name.to_owned(),
                        n.args.iter().map(|t| t.text.clone()).collect(),
                    );
                }
            }
        }
    }
    l.note_scripts(tree);
    l.cross_checks();
    l.bgp_checks();
    l.fnat_checks();
    // SSL_GET checkers verify against the root SSL block's CA, wherever it is written.
    // SSL_GET checkers verify against the root SSL block's CA and present its client
    // certificate, wherever the block is written.
    let ssl = l.cfg.ssl.clone().unwrap_or_default();
    for vs in &mut l.cfg.virtual_servers {
        for rs in &mut vs.real_servers {
            for c in &mut rs.checkers {
                if let CheckKind::Ssl(h) = &mut c.kind {
                    h.tls_ca.clone_from(&ssl.ca);
                    h.tls_certificate.clone_from(&ssl.certificate);
                    h.tls_key_password.clone_from(&ssl.password);
                    // Without `key`, the key is read from the certificate's file.
                    h.tls_key.clone_from(if ssl.key.is_some() {
                        &ssl.key
                    } else {
                        &ssl.certificate
                    });
                }
            }
        }
    }
    l.cfg
}

/// Where things were defined, for cross-block diagnostics.
#[derive(Default)]
struct Locs {
    instances: Vec<(Loc, usize)>,
    vrid: Vec<Option<Token>>,
    track_refs: Vec<(String, &'static str, Token)>,
    sync_members: Vec<(String, Token)>,
    vs: Vec<Token>,
    vs_groups: HashMap<String, Loc>,
    file_check_refs: Vec<Token>,
    bfd_check_refs: Vec<Token>,
    /// Every script the file runs: where, and the program (the command's first word).
    scripts: Vec<(Loc, String)>,
}

struct Loader<'d> {
    a: Args<'d>,
    cfg: Config,
    locs: Locs,
}

fn name_of(a: &mut Args<'_>, n: &Node) -> Option<String> {
    a.extra(n, 1);
    if let Some(t) = n.args.first() {
        Some(t.text.clone())
    } else {
        a.diags.error(
            n.kw.loc,
            n.kw.width,
            format!("'{}' needs a name", n.kw.text),
        );
        None
    }
}

impl Loader<'_> {
    fn note_scripts(&mut self, tree: &[Node]) {
        const SCRIPT_KWS: &[&str] = &[
            "script",
            "notify_master",
            "notify_backup",
            "notify_fault",
            "notify_stop",
            "notify",
            "notify_deleted",
            "notify_up",
            "notify_down",
            "misc_path",
            "quorum_up",
            "quorum_down",
            "notify_master_rx_lower_pri",
            "startup_script",
            "shutdown_script",
        ];
        for n in tree {
            if SCRIPT_KWS.contains(&n.name())
                && !n.args.is_empty()
                && !matches!(n.body, crate::tree::Body::List(_))
            {
                let program = n.args[0]
                    .text
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                self.locs.scripts.push((n.kw.loc, program));
            }
            self.note_scripts(n.children());
        }
    }
}

/// The checker settings a virtual or real server block gives its checkers.
type Defaults = crate::model::CheckDefaults;

struct RsCtx<'v> {
    vs_port: Option<u16>,
    fwmark: bool,
    weight: i32,
    fwd: &'v Forwarding,
    vs: &'v VirtualServer,
    d: &'v Defaults,
}

struct CheckCtx<'v> {
    d: &'v Defaults,
    vs_delay_loop: Duration,
    connect_timeout: Duration,
    delay_loop: Duration,
    alpha: bool,
    vhost: Option<String>,
    /// Why `rvs_forwarding_path_check` cannot apply to this real server (`None`: it can).
    no_path: Option<&'static str>,
}

#[derive(Default, Clone)]
struct Common {
    connect_ip: Option<IpAddr>,
    connect_port: Option<u16>,
    bindto: Option<IpAddr>,
    bind_port: Option<u16>,
    bind_if: Option<String>,
    connect_timeout: Option<Duration>,
    fwmark: Option<u32>,
    retry: Option<u32>,
    delay_before_retry: Option<Duration>,
    warmup: Option<Duration>,
    delay_loop: Option<Duration>,
    alpha: Option<bool>,
    log_all_failures: bool,
    forwarding_path: Option<bool>,
}

/// The checker keywords shared by most types; returns whether `n` was one. `checker`:
/// the block's keyword (`TCP_CHECK`, ...), for the keywords keepalived knows only in
/// some checkers.
fn common(a: &mut Args<'_>, n: &Node, c: &mut Common, checker: &str) -> bool {
    match n.name() {
        "connect_ip" => c.connect_ip = a.arg_ip(n),
        "connect_port" => c.connect_port = a.arg_int(n, 1, 65535),
        "bindto" => c.bindto = a.arg_ip(n),
        "bind_port" => c.bind_port = a.arg_int(n, 1, 65535),
        "bind_if" => c.bind_if = a.string(n),
        "connect_timeout" => c.connect_timeout = a.arg_timer(n, 0.000_001, f64::from(u32::MAX)),
        "fwmark" => c.fwmark = a.arg_int(n, 0, i64::from(u32::MAX)),
        "retry" => c.retry = a.arg_int(n, 0, i64::from(u32::MAX)),
        // keepalived 2.2.7 installs nb_get_retry (a deprecated retry) in HTTP_GET and
        // SSL_GET only; elsewhere it is an unknown keyword and the retry count keeps its
        // default, so rvs does not apply it there either (the checker would behave
        // differently from keepalived's on the same file).
        "nb_get_retry" if matches!(checker, "HTTP_GET" | "SSL_GET") => {
            let d = a.diags.ka_warning(
                n.kw.loc,
                n.kw.width,
                "nb_get_retry is deprecated: use retry",
            );
            d.hint("keepalived 2.2 accepts nb_get_retry only in HTTP_GET and SSL_GET");
            c.retry = a.arg_int(n, 0, i64::from(u32::MAX));
        }
        "nb_get_retry" => {
            let d = a.diags.ka_warning(
                n.kw.loc,
                n.kw.width,
                format!(
                    "nb_get_retry is not a {checker} keyword: ignored, as keepalived 2.2 ignores it (the retry count keeps its default)"
                ),
            );
            d.hint("use retry (keepalived accepts nb_get_retry only in HTTP_GET and SSL_GET)");
        }
        "delay_before_retry" => c.delay_before_retry = a.arg_timer(n, 0.0, f64::from(u32::MAX)),
        "warmup" => c.warmup = a.arg_timer(n, 0.0, f64::from(u32::MAX)),
        "delay_loop" => c.delay_loop = a.arg_timer(n, 0.000_001, f64::from(u32::MAX)),
        "alpha" => c.alpha = Some(a.flag(n)),
        "log_all_failures" => c.log_all_failures = a.flag(n),
        "rvs_forwarding_path_check" => c.forwarding_path = Some(a.flag(n)),
        _ => return false,
    }
    true
}

fn url(a: &mut Args<'_>, node: &Node) -> Option<Url> {
    let mut u = Url {
        path: String::new(),
        digest: None,
        status_code: Vec::new(),
        virtualhost: None,
        regex: None,
        regex_no_match: false,
        regex_options: Vec::new(),
        regex_min_offset: None,
        regex_max_offset: None,
    };
    let mut has_path = false;
    let mut regex_at = None;
    for n in node.children() {
        match n.name() {
            "path" => {
                if let Some(p) = a.string(n) {
                    u.path = p;
                    has_path = true;
                }
            }
            "digest" => {
                a.extra(n, 1);
                if let Some(t) = a.need(n, 0, "an MD5 digest") {
                    if t.text.len() == 32 && t.text.bytes().all(|b| b.is_ascii_hexdigit()) {
                        u.digest = Some(t.text.to_ascii_lowercase());
                    } else {
                        a.diags
                            .error(
                                t.loc,
                                t.width,
                                format!(
                                    "invalid digest '{}': expected 32 hex digits (MD5)",
                                    t.text
                                ),
                            )
                            .hint("`rvs genhash` prints the digest of a URL");
                    }
                }
            }
            "status_code" => {
                for t in &n.args {
                    for part in t.text.split(',').filter(|p| !p.is_empty()) {
                        let (lo, hi) = part.split_once('-').unwrap_or((part, part));
                        match (parse_int(lo), parse_int(hi)) {
                            (Some(l), Some(h))
                                if (100..=599).contains(&l)
                                    && (100..=599).contains(&h)
                                    && l <= h =>
                            {
                                u.status_code.push((
                                    u16::try_from(l).unwrap_or(200),
                                    u16::try_from(h).unwrap_or(299),
                                ));
                            }
                            _ => {
                                a.diags
                                    .error(t.loc, t.width, format!("invalid status_code '{part}'"))
                                    .hint("codes or ranges within 100-599, e.g. 200 or 200-299");
                            }
                        }
                    }
                }
                if n.args.is_empty() {
                    a.need(n, 0, "a status code");
                }
            }
            "virtualhost" => u.virtualhost = a.string(n),
            "regex" => {
                u.regex = n.args.first().map(|t| t.text.clone());
                regex_at = Some((n.kw.loc, n.kw.width));
            }
            "regex_no_match" => u.regex_no_match = a.bare(n),
            "regex_options" => {
                for t in &n.args {
                    if crate::model::REGEX_OPTIONS.contains(&t.text.as_str()) {
                        u.regex_options.push(t.text.clone());
                    } else {
                        a.diags
                            .ka_warning(
                                t.loc,
                                t.width,
                                format!("regex option '{}' is not supported: ignored", t.text),
                            )
                            .hint(format!(
                                "options: {}",
                                crate::model::REGEX_OPTIONS.join(" ")
                            ));
                    }
                }
            }
            "regex_min_offset" => u.regex_min_offset = a.arg_int(n, 0, i64::from(u32::MAX)),
            "regex_max_offset" => u.regex_max_offset = a.arg_int(n, 0, i64::from(u32::MAX)),
            _ => {}
        }
    }
    // keepalived compiles the pattern when it reads the file; so does rvs, and a pattern
    // it cannot compile leaves the url checked by status and digest only, with the reason.
    if let (Some(Err(why)), Some((loc, width))) = (u.compiled_regex(), regex_at) {
        a.diags.ka_warning(
            loc,
            width,
            format!("invalid regex: {why}; the page is not matched"),
        );
        u.regex = None;
    }
    if !has_path {
        a.diags
            .ka_warning(node.kw.loc, node.kw.width, "url has no path: it is ignored")
            .hint("add 'path /'");
        return None;
    }
    if u.status_code.is_empty() {
        u.status_code.push((200, 299));
    }
    Some(u)
}

fn hex_arg(a: &mut Args<'_>, n: &Node, wildcards: bool) -> Option<String> {
    let t = a.need(n, 0, "hex bytes")?;
    let mut out = String::new();
    for tok in &n.args {
        let digits: Vec<char> = tok.text.chars().collect();
        let valid = digits
            .iter()
            .all(|c| c.is_ascii_hexdigit() || (wildcards && (*c == 'x' || *c == 'X')));
        if !valid {
            a.diags
                .error(tok.loc, tok.width, format!("invalid hex '{}'", tok.text));
            return None;
        }
        for pair in digits.chunks(2) {
            if pair.len() == 2 {
                out.push(pair[0].to_ascii_lowercase());
                out.push(pair[1].to_ascii_lowercase());
            } else {
                out.push('0');
                out.push(pair[0].to_ascii_lowercase());
            }
        }
    }
    let _ = t;
    Some(out)
}

fn vips(a: &mut Args<'_>, n: &Node) -> Vec<VipAddr> {
    let mut out = Vec::new();
    for item in n.children() {
        let text = &item.kw.text;
        let (addr_s, len_s) = match text.split_once('/') {
            Some((x, y)) => (x, Some(y)),
            None => (text.as_str(), None),
        };
        let Some(address) = parse_ip(addr_s) else {
            a.diags
                .error(
                    item.kw.loc,
                    item.kw.width,
                    format!("invalid virtual_ipaddress '{text}'"),
                )
                .hint("an address with an optional prefix length, e.g. 198.18.0.10/24");
            continue;
        };
        let max = if address.is_ipv6() { 128 } else { 32 };
        let prefix_len = match len_s {
            None => max,
            Some(l) => match parse_int(l) {
                Some(v) if (0..=i64::from(max)).contains(&v) => u8::try_from(v).unwrap_or(max),
                _ => {
                    a.diags.error(
                        item.kw.loc,
                        item.kw.width,
                        format!("invalid prefix length in '{text}' (0-{max})"),
                    );
                    continue;
                }
            },
        };
        let mut v = VipAddr::new(address, prefix_len);
        let mut it = item.args.iter();
        while let Some(k) = it.next() {
            let mut val = |a: &mut Args<'_>| {
                let v = it.next().map(|t| t.text.clone());
                if v.is_none() {
                    a.diags
                        .error(k.loc, k.width, format!("'{}' needs a value", k.text));
                }
                v
            };
            match k.text.as_str() {
                "brd" => v.brd = val(a),
                "dev" => v.dev = val(a),
                "scope" => v.scope = val(a),
                "label" => v.label = val(a),
                // Read, and not acted on: said at the value (`rvs check --json` lists it
                // under not_applied), as for keywords (`crate::support`).
                "peer" => {
                    v.peer = val(a);
                    vip_not_applied(a, k, "the address is added without a peer");
                }
                "no_track" => {
                    v.no_track = true;
                    vip_not_applied(a, k, "a missing address is not tracked in any case");
                }
                "preferred_lft" | "valid_lft" | "metric" | "track_group" | "use_vmac" | "group" => {
                    let x = val(a);
                    v.options
                        .push(format!("{} {}", k.text, x.unwrap_or_default()));
                    vip_not_applied(a, k, "the address is added without it");
                }
                "home" | "-nodad" | "nodad" | "mngtmpaddr" | "noprefixroute" | "autojoin" => {
                    v.options.push(k.text.clone());
                    vip_not_applied(a, k, "the address is added without the flag");
                }
                _ => {
                    a.diags.ka_warning(
                        k.loc,
                        k.width,
                        format!("unknown virtual_ipaddress option '{}'", k.text),
                    );
                }
            }
        }
        out.push(v);
    }
    out
}

/// `user NAME [GROUP]` of a `vrrp_script` or `MISC_CHECK`: `None` (with keepalived's
/// complaint) when the user or group does not exist on this host.
fn script_user(a: &mut Args<'_>, n: &Node) -> Option<(String, Option<String>)> {
    a.extra(n, 2);
    let u = a.need(n, 0, "a user name")?;
    let g = n.args.get(1).map(|t| t.text.clone());
    if rvs_script::lookup(&u.text, g.as_deref()).is_none() {
        a.diags.ka_warning(
            u.loc,
            u.width,
            format!(
                "script user {}{} does not exist on this host: the script is removed, as \
                 keepalived removes it",
                u.text,
                g.as_deref().map(|g| format!(":{g}")).unwrap_or_default()
            ),
        );
        return None;
    }
    Some((u.text.clone(), g))
}

fn vip_not_applied(a: &mut Args<'_>, k: &Token, lost: &str) {
    a.diags.not_applied(
        k.loc,
        k.width,
        format!(
            "virtual_ipaddress option '{}' is not applied by rvs: {lost}",
            k.text
        ),
    );
}

fn vs_key(a: &mut Args<'_>, n: &Node) -> Option<VsKey> {
    let first = a.need(n, 0, "an address and port, 'fwmark N' or 'group NAME'")?;
    match first.text.as_str() {
        "fwmark" => {
            a.extra(n, 2);
            let t = a.need(n, 1, "a mark after 'fwmark'")?;
            let m = a.int(t, 1, i64::from(u32::MAX))?;
            Some(VsKey::Fwmark { fwmark: m })
        }
        "group" => {
            a.extra(n, 2);
            let t = a.need(n, 1, "a group name after 'group'")?;
            Some(VsKey::Group {
                group: t.text.clone(),
            })
        }
        _ => {
            a.extra(n, 2);
            let address = a.host_ip(first)?;
            let port = match n.args.get(1) {
                Some(p) => a.port(p)?,
                None => 0,
            };
            Some(VsKey::Address { address, port })
        }
    }
}

fn forwarding(a: &mut Args<'_>, n: &Node) -> Option<Forwarding> {
    let t = a.need(n, 0, "NAT, DR, TUN or FNAT")?;
    let method = match t.text.as_str() {
        "NAT" => Method::Nat,
        "DR" => Method::Dr,
        "TUN" => Method::Tun,
        "FNAT" => Method::FullNat,
        other => {
            let d = a.diags.error(
                t.loc,
                t.width,
                format!("unknown forwarding method '{other}'"),
            );
            if ["nat", "dr", "tun", "fnat"].contains(&other.to_ascii_lowercase().as_str()) {
                d.hint(format!(
                    "methods are upper case: {}",
                    other.to_ascii_uppercase()
                ));
            } else {
                d.hint("lb_kind is NAT, DR, TUN or FNAT");
            }
            return None;
        }
    };
    if method != Method::Tun {
        a.extra(n, 1);
        return Some(Forwarding {
            method,
            tunnel: None,
        });
    }
    let mut tun = Tunnel {
        kind: "ipip".into(),
        port: None,
        csum: None,
    };
    let mut it = n.args[1..].iter();
    while let Some(k) = it.next() {
        match k.text.as_str() {
            "type" => match it.next() {
                Some(v) if ["ipip", "gue", "gre"].contains(&v.text.as_str()) => {
                    tun.kind.clone_from(&v.text);
                }
                Some(v) => {
                    a.diags.error(
                        v.loc,
                        v.width,
                        format!("unknown tunnel type '{}': ipip, gue or gre", v.text),
                    );
                }
                None => {
                    a.diags
                        .error(k.loc, k.width, "'type' needs ipip, gue or gre");
                }
            },
            "port" => match it.next() {
                Some(v) => tun.port = a.int(v, 1, 65535),
                None => {
                    a.diags.error(k.loc, k.width, "'port' needs a number");
                }
            },
            "nocsum" | "csum" | "remcsum" => tun.csum = Some(k.text.clone()),
            _ => {
                a.diags
                    .error(k.loc, k.width, format!("unknown TUN option '{}'", k.text));
            }
        }
    }
    if tun.kind == "gue" && tun.port.is_none() {
        a.diags.error(t.loc, t.width, "TUN type gue needs a port");
    }
    if tun.kind == "ipip" && tun.csum.is_some() {
        a.diags.error(
            t.loc,
            t.width,
            "TUN type ipip does not take a checksum option",
        );
    }
    if tun.kind == "gre" && tun.csum.as_deref() == Some("remcsum") {
        a.diags
            .error(t.loc, t.width, "TUN type gre does not support remcsum");
    }
    Some(Forwarding {
        method,
        tunnel: Some(tun),
    })
}

/// `lvs_sync_daemon IFNAME [INSTANCE | inst INSTANCE] [id N] [maxlen N] [port N] [ttl N]
/// [group IP]`, as keepalived 2.2.7 reads it: the instance may be left out (no sync daemon
/// runs then: it follows an instance's state), and a bad option value is reported and
/// ignored, not fatal.
fn lvs_sync_daemon(a: &mut Args<'_>, n: &Node) -> Option<crate::model::LvsSyncDaemon> {
    const OPTIONS: &[&str] = &["id", "maxlen", "port", "ttl", "group"];
    let Some(ifname) = n.args.first() else {
        a.diags.ka_warning(
            n.kw.loc,
            n.kw.width,
            "lvs_sync_daemon requires an interface: ignored",
        );
        return None;
    };
    let mut rest = n.args.iter().skip(1).peekable();
    let instance = match rest.peek() {
        Some(t) if t.text == "inst" => {
            rest.next();
            rest.next()
        }
        Some(t) if !OPTIONS.contains(&t.text.as_str()) => rest.next(),
        _ => None,
    };
    let mut sd = crate::model::LvsSyncDaemon {
        interface: ifname.text.clone(),
        instance: instance.map(|t| t.text.clone()),
        instance_at: instance.map_or((n.kw.loc, n.kw.width), |t| (t.loc, t.width)),
        id: None,
        maxlen: None,
        port: None,
        ttl: None,
        group: None,
    };
    if instance.is_none() {
        a.diags.warning(
            n.kw.loc,
            n.kw.width,
            "lvs_sync_daemon names no vrrp_instance: no sync daemon runs (it follows an \
             instance's MASTER/BACKUP state)",
        );
    }
    while let Some(key) = rest.next() {
        if !OPTIONS.contains(&key.text.as_str()) {
            a.diags.ka_warning(
                key.loc,
                key.width,
                format!(
                    "unknown lvs_sync_daemon option '{}' (id, maxlen, port, ttl or group): ignored",
                    key.text
                ),
            );
            continue;
        }
        let Some(v) = rest.next() else {
            a.diags.ka_warning(
                key.loc,
                key.width,
                format!("'{}' needs a value: ignored", key.text),
            );
            break;
        };
        let num = |a: &mut Args<'_>, min: i64, max: i64| -> Option<i64> {
            let got = parse_int(&v.text).filter(|x| (min..=max).contains(x));
            if got.is_none() {
                a.diags.ka_warning(
                    v.loc,
                    v.width,
                    format!(
                        "invalid lvs_sync_daemon {} '{}' (not in {min}..{max}): ignored, as \
                         keepalived ignores it",
                        key.text, v.text
                    ),
                );
            }
            got
        };
        match key.text.as_str() {
            "id" => sd.id = num(a, 0, 255).and_then(|x| u8::try_from(x).ok()),
            "maxlen" => sd.maxlen = num(a, 1, 65507).and_then(|x| u16::try_from(x).ok()),
            "port" => sd.port = num(a, 1, 65535).and_then(|x| u16::try_from(x).ok()),
            "ttl" => sd.ttl = num(a, 1, 255).and_then(|x| u8::try_from(x).ok()),
            _ => match v.text.parse::<IpAddr>() {
                Ok(addr) if addr.is_multicast() => sd.group = Some(addr),
                _ => {
                    a.diags.ka_warning(
                        v.loc,
                        v.width,
                        format!(
                            "lvs_sync_daemon group '{}' is not a multicast address: ignored",
                            v.text
                        ),
                    );
                }
            },
        }
    }
    Some(sd)
}

fn lvs_timeouts(a: &mut Args<'_>, n: &Node, t: &mut LvsTimeouts) {
    let mut it = n.args.iter();
    while let Some(k) = it.next() {
        let slot = match k.text.as_str() {
            "tcp" => &mut t.tcp,
            "tcpfin" => &mut t.tcpfin,
            "udp" => &mut t.udp,
            _ => {
                a.diags.error(
                    k.loc,
                    k.width,
                    format!("unknown lvs_timeouts item '{}': tcp, tcpfin or udp", k.text),
                );
                continue;
            }
        };
        match it.next() {
            Some(v) => *slot = a.int(v, 1, 86400 * 31),
            None => {
                a.diags.error(
                    k.loc,
                    k.width,
                    format!("'{}' needs a number of seconds", k.text),
                );
            }
        }
    }
}

fn weight_reverse(a: &mut Args<'_>, n: &Node, max: i64) -> Option<(i32, bool)> {
    a.extra(n, 2);
    let t = a.need(n, 0, "a weight")?;
    let w = a.int(t, -max, max)?;
    let rev = match n.args.get(1).map(|t| t.text.as_str()) {
        None | Some("noreverse") => false,
        Some("reverse") => true,
        Some(_) => {
            let t = &n.args[1];
            a.diags.error(
                t.loc,
                t.width,
                format!("expected 'reverse' after the weight, found '{}'", t.text),
            );
            false
        }
    };
    Some((w, rev))
}

fn deprecated(a: &mut Args<'_>, n: &Node, instead: &str) {
    a.diags.warning(
        n.kw.loc,
        n.kw.width,
        format!("'{}' is deprecated: use {instead}", n.kw.text),
    );
}

/// `garp_extra_if` / `vrrp_garp_extra_if [all] SECS` as keepalived reads them: `all`
/// anywhere, one number from `min` to a day; anything else, or no number, is a
/// configuration error and the keyword is ignored.
fn garp_extra_if(a: &mut Args<'_>, n: &Node, min: i64) -> Option<crate::model::GarpExtraIf> {
    let mut all = false;
    let mut secs = None;
    for t in &n.args {
        if t.text == "all" {
            all = true;
            continue;
        }
        let valid = t
            .text
            .parse::<i64>()
            .ok()
            .filter(|s| (min..=86_400).contains(s));
        let Some(s) = valid else {
            a.diags.ka_warning(
                t.loc,
                t.width,
                format!("{} '{}' invalid - ignoring", n.kw.text, t.text),
            );
            return None;
        };
        secs = u32::try_from(s).ok();
    }
    let Some(secs) = secs else {
        a.diags.ka_warning(
            n.kw.loc,
            n.kw.width,
            format!("{} specified without time - ignoring", n.kw.text),
        );
        return None;
    };
    Some(crate::model::GarpExtraIf { secs, all })
}

fn other(g: &mut GlobalDefs, n: &Node) {
    g.other.insert(
        n.name().to_owned(),
        n.args.iter().map(|t| t.text.clone()).collect(),
    );
}

fn set<T>(slot: &mut T, v: Option<T>) {
    if let Some(v) = v {
        *slot = v;
    }
}

fn kind_name(kind: &str) -> &'static str {
    match kind {
        "script" => "vrrp_script",
        "file" => "track_file",
        "process" => "vrrp_track_process",
        _ => "bfd_instance",
    }
}

fn method_name(m: Method) -> &'static str {
    match m {
        Method::Nat => "NAT",
        Method::Dr => "DR",
        Method::Tun => "TUN",
        Method::FullNat => "FNAT",
    }
}

fn valid_granularity(s: &str) -> bool {
    if let Ok(std::net::Ipv4Addr { .. }) = s.parse::<std::net::Ipv4Addr>() {
        let m = u32::from(
            s.parse::<std::net::Ipv4Addr>()
                .unwrap_or(std::net::Ipv4Addr::UNSPECIFIED),
        );
        return m != 0 && (!m).wrapping_add(1) & !m == 0;
    }
    matches!(parse_int(s), Some(1..=128))
}

fn is_prime(n: u32) -> bool {
    n >= 2 && (2..=n.isqrt()).all(|d| !n.is_multiple_of(d))
}

/// `a.b.c.d`, `a.b.c.d-e`, `a.b.c.d-e.f.g.h`, `a.b.c.d/nn` and the IPv6 equivalents.
#[expect(
    clippy::many_single_char_names,
    reason = "a, b: the two ends of a range, as written"
)]
fn parse_range(s: &str) -> Option<(IpAddr, IpAddr)> {
    if let Some((a, len)) = s.split_once('/') {
        let ip = parse_ip(a)?;
        let len: u32 = len.parse().ok()?;
        return match ip {
            IpAddr::V4(v) if len <= 32 => {
                let m = if len == 0 { 0 } else { u32::MAX << (32 - len) };
                let base = u32::from(v) & m;
                Some((IpAddr::V4(base.into()), IpAddr::V4((base | !m).into())))
            }
            IpAddr::V6(v) if len <= 128 => {
                let m = if len == 0 {
                    0
                } else {
                    u128::MAX << (128 - len)
                };
                let base = u128::from(v) & m;
                Some((IpAddr::V6(base.into()), IpAddr::V6((base | !m).into())))
            }
            _ => None,
        };
    }
    let Some((a, b)) = s.split_once('-') else {
        let ip = parse_ip(s)?;
        return Some((ip, ip));
    };
    let first = parse_ip(a)?;
    if let Some(last) = parse_ip(b) {
        return (last.is_ipv6() == first.is_ipv6() && last >= first).then_some((first, last));
    }
    match first {
        IpAddr::V4(v) => {
            let end: u8 = b.parse().ok()?;
            let o = v.octets();
            (end >= o[3]).then(|| (first, IpAddr::V4([o[0], o[1], o[2], end].into())))
        }
        IpAddr::V6(v) => {
            let end = u16::from_str_radix(b, 16).ok()?;
            let mut seg = v.segments();
            (end >= seg[7]).then(|| {
                seg[7] = end;
                (first, IpAddr::V6(seg.into()))
            })
        }
    }
}

/// keepalived's label for a service: `[198.18.0.1]:tcp:80`, `FWM 1`, `group NAME`.
pub fn vs_label(key: &VsKey, proto: Option<Protocol>) -> String {
    let p = match proto {
        Some(Protocol::Tcp) => "tcp",
        Some(Protocol::Udp) => "udp",
        Some(Protocol::Sctp) => "sctp",
        None => "none",
    };
    match key {
        VsKey::Address { address, port } => format!("[{address}]:{p}:{port}"),
        VsKey::Fwmark { fwmark } => format!("FWM {fwmark}"),
        VsKey::Group { group } => format!("group {group}:{p}"),
    }
}

fn rs_label(a: IpAddr, p: u16) -> String {
    format!("[{a}]:{p}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        let r = parse_range("198.18.3.20-25").unwrap();
        assert_eq!(r.1.to_string(), "198.18.3.25");
        let r = parse_range("198.18.3.0/30").unwrap();
        assert_eq!(
            (r.0.to_string(), r.1.to_string()),
            ("198.18.3.0".into(), "198.18.3.3".into())
        );
        assert!(parse_range("198.18.3.20-10").is_none());
        let r = parse_range("fd00:198:18::1-a").unwrap();
        assert_eq!(r.1.to_string(), "fd00:198:18::a");
    }

    #[test]
    fn granularity() {
        assert!(valid_granularity("255.255.255.0"));
        assert!(!valid_granularity("255.0.255.0"));
        assert!(valid_granularity("64"));
        assert!(!valid_granularity("129"));
    }

    #[test]
    fn primes() {
        assert!(is_prime(4093) && is_prime(65537) && !is_prime(4096));
    }
}
