//! `virtual_routes`, `virtual_rules`, `static_routes` and `static_rules`: `ip route` /
//! `ip rule` lines, read as keepalived 2.2.7 reads them (`vrrp_iproute.c`,
//! `vrrp_iprule.c`), so that `rvs check --strict` counts what `keepalived -t` counts: an
//! address that is not one, an unknown option, `gw` and `or` (deprecated spellings), a
//! tracked route without `dev`, a rule without a preference. Routes and rules are installed
//! (static ones at start, virtual ones with the VIPs); an option rvs cannot install is
//! warned about at its word and its line is left out.
//!
//! Hand-written: no crate parses iproute2's command-line grammar, and this one must follow
//! keepalived's variant of it (its deprecated words, its tracking rule).

use super::Args;
use crate::lex::Token;
use crate::model::{Route, Rule};
use crate::tree::Node;

/// Route types: `blackhole 192.0.2.0/24`.
const ROUTE_TYPES: &[&str] = &[
    "unicast",
    "local",
    "broadcast",
    "multicast",
    "throw",
    "unreachable",
    "prohibit",
    "blackhole",
    "nat",
    "anycast",
];

/// Route options followed by one value (`mtu lock 1400`: `lock` is skipped).
const ROUTE_VALUED: &[&str] = &[
    "src",
    "via",
    "gw",
    "or",
    "dev",
    "oif",
    "scope",
    "table",
    "metric",
    "priority",
    "preference",
    "protocol",
    "proto",
    "tos",
    "dsfield",
    "realms",
    "mtu",
    "advmss",
    "rtt",
    "rttvar",
    "reordering",
    "window",
    "cwnd",
    "ssthresh",
    "initcwnd",
    "initrwnd",
    "features",
    "quickack",
    "congctl",
    "pref",
    "expires",
    "fastopen_no_cookie",
    "ttl-propagate",
    "hoplimit",
    "weight",
    "to",
];

const ROUTE_FLAGS: &[&str] = &["onlink", "no_track", "pervasive", "nexthop", "lock"];

/// Rule options followed by one value.
const RULE_VALUED: &[&str] = &[
    "from",
    "to",
    "table",
    "lookup",
    "preference",
    "prio",
    "priority",
    "iif",
    "dev",
    "oif",
    "fwmark",
    "tos",
    "dsfield",
    "realms",
    "goto",
    "suppress_prefixlength",
    "suppress_ifgroup",
    "uidrange",
    "sport",
    "dport",
    "ipproto",
    "protocol",
    "map-to",
];

const RULE_FLAGS: &[&str] = &["not", "no_track", "l3mdev"];
const RULE_TYPES: &[&str] = &["unicast", "blackhole", "unreachable", "prohibit", "nat"];

/// `ADDR`, `ADDR/LEN` or `default`.
fn prefix(s: &str) -> bool {
    if s == "default" {
        return true;
    }
    let (addr, len) = match s.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (s, None),
    };
    let Ok(ip) = addr.parse::<std::net::IpAddr>() else {
        return false;
    };
    let max = if ip.is_ipv4() { 32 } else { 128 };
    len.is_none_or(|l| l.parse::<u8>().is_ok_and(|l| l <= max))
}

/// Where iproute2 keeps its table names (`rt_tables`, `rt_tables.d/*.conf`): the
/// directories keepalived 2.2.7 reads by default.
const RT_TABLE_DIRS: &[&str] = &["/etc/iproute2", "/usr/share/iproute2", "/usr/lib/iproute2"];

/// The number of a routing table: a number, one of the reserved names, or a name from
/// iproute2's `rt_tables` files (read as keepalived reads them, when a name is used).
pub(crate) fn table_number(name: &str) -> Option<u32> {
    match name {
        "main" => return Some(254),
        "local" => return Some(255),
        "default" => return Some(253),
        "unspec" => return Some(0),
        _ => {}
    }
    if let Ok(n) = name.parse::<u32>() {
        return Some(n);
    }
    if let Some(h) = name.strip_prefix("0x") {
        return u32::from_str_radix(h, 16).ok();
    }
    for dir in RT_TABLE_DIRS {
        let dir = std::path::Path::new(dir);
        let mut files = vec![dir.join("rt_tables")];
        if let Ok(d) = std::fs::read_dir(dir.join("rt_tables.d")) {
            let mut more: Vec<_> = d
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "conf"))
                .collect();
            more.sort();
            files.extend(more);
        }
        for f in files {
            let Ok(text) = std::fs::read_to_string(&f) else {
                continue;
            };
            for line in text.lines() {
                let mut w = line.split_whitespace();
                let (Some(num), Some(n)) = (w.next(), w.next()) else {
                    continue;
                };
                if n == name && !num.starts_with('#') {
                    if let Some(v) = num.parse::<u32>().ok().or_else(|| {
                        num.strip_prefix("0x")
                            .and_then(|h| u32::from_str_radix(h, 16).ok())
                    }) {
                        return Some(v);
                    }
                }
            }
        }
    }
    None
}

/// A `table` value: its number, or a warning at the value and `None`.
fn table(a: &mut Args<'_>, val: &Token) -> Option<u32> {
    let t = table_number(&val.text);
    if t.is_none() {
        a.diags
            .ka_warning(
                val.loc,
                val.width,
                format!("unknown routing table '{}': the line is ignored", val.text),
            )
            .hint("a number, main/local/default, or a name from /etc/iproute2/rt_tables");
    }
    t
}

/// Looks like an address that went wrong (`192.168.100./24`), rather than a word.
fn addressish(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_digit()) || s.contains(':')
}

/// The tokens of a list line: its first word and the rest.
fn words(item: &Node) -> Vec<&Token> {
    std::iter::once(&item.kw).chain(item.args.iter()).collect()
}

fn text(item: &Node) -> String {
    words(item)
        .iter()
        .map(|t| t.text.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

/// A route option rvs does not install: said at the option (the route is not installed).
fn unsupported(a: &mut Args<'_>, tok: &Token) {
    a.diags.not_applied(
        tok.loc,
        tok.width,
        format!(
            "route option '{}' is not applied by rvs: this route is not installed",
            tok.text
        ),
    );
}

/// Reads a routes block; `tracked` for `virtual_routes` (keepalived tracks a route through
/// its interface, and counts one it cannot track).
pub(super) fn routes(a: &mut Args<'_>, block: &Node, tracked: bool) -> Vec<Route> {
    let mut out = Vec::new();
    for item in block.children() {
        let toks = words(item);
        let mut route = Route {
            text: text(item),
            dest: None,
            via: None,
            dev: None,
            table: None,
            no_track: false,
            src: None,
            metric: None,
            kind: None,
            unsupported: Vec::new(),
        };
        let mut ok = true;
        let mut i = 0;
        while i < toks.len() {
            let tok = toks[i];
            let word = tok.text.as_str();
            if ROUTE_TYPES.contains(&word) || ROUTE_FLAGS.contains(&word) {
                route.no_track |= word == "no_track";
                if ROUTE_TYPES.contains(&word) && word != "unicast" {
                    route.kind = Some(word.to_owned());
                }
                if matches!(word, "nexthop" | "onlink" | "pervasive") {
                    route.unsupported.push(word.to_owned());
                    unsupported(a, tok);
                }
            } else if word == "encap" {
                route.unsupported.push(word.to_owned());
                unsupported(a, tok);
                break; // the encapsulation takes the rest of the line
            } else if ROUTE_VALUED.contains(&word) {
                let Some(val) = toks.get(i + 1) else {
                    a.diags.ka_warning(
                        tok.loc,
                        tok.width,
                        format!("route option '{word}' needs a value"),
                    );
                    ok = false;
                    break;
                };
                let val = if val.text == "lock" {
                    i += 1;
                    toks.get(i + 1).copied().unwrap_or(val)
                } else {
                    val
                };
                match word {
                    "gw" => {
                        a.diags.ka_warning(
                            tok.loc,
                            tok.width,
                            "\"gw\" for routes is deprecated: use \"via\" (keepalived counts it)",
                        );
                    }
                    "or" => {
                        a.diags.ka_warning(
                            tok.loc,
                            tok.width,
                            "\"or\" for routes is deprecated: use \"nexthop\" (keepalived counts it)",
                        );
                    }
                    _ => {}
                }
                match word {
                    "src" | "via" | "gw" | "or" => {
                        if val.text.parse::<std::net::IpAddr>().is_err() {
                            a.diags.ka_warning(
                                val.loc,
                                val.width,
                                format!("invalid IP address '{}' in a route: the route is ignored, as keepalived ignores it", val.text),
                            );
                            ok = false;
                        } else if word != "src" && route.via.is_none() {
                            route.via = Some(val.text.clone());
                        }
                    }
                    "to" => {
                        if prefix(&val.text) {
                            route.dest = Some(val.text.clone());
                        } else {
                            a.diags.ka_warning(
                                val.loc,
                                val.width,
                                format!("invalid route destination '{}': the route is ignored, as keepalived ignores it", val.text),
                            );
                            ok = false;
                        }
                    }
                    "dev" | "oif" => route.dev = Some(val.text.clone()),
                    "table" => {
                        route.table = table(a, val);
                        ok &= route.table.is_some();
                    }
                    "metric" | "priority" | "preference" => {
                        route.metric = val.text.parse().ok();
                    }
                    "scope" | "protocol" | "proto" => {}
                    _ => {
                        route.unsupported.push(word.to_owned());
                        unsupported(a, tok);
                    }
                }
                if word == "src" {
                    route.src = Some(val.text.clone());
                }
                i += 1;
            } else if route.dest.is_none() && prefix(word) {
                route.dest = Some(word.to_owned());
            } else if addressish(word) {
                a.diags.ka_warning(
                    tok.loc,
                    tok.width,
                    format!("invalid IP address '{word}' in a route: the route is ignored, as keepalived ignores it"),
                );
                ok = false;
            } else {
                a.diags
                    .ka_warning(
                        tok.loc,
                        tok.width,
                        format!("unknown route keyword '{word}'"),
                    )
                    .hint("the words of `ip route add`, and no_track");
            }
            i += 1;
        }
        let Some(dest) = route.dest.clone() else {
            if ok {
                a.diags.ka_warning(
                    item.kw.loc,
                    item.kw.width,
                    "a route without a destination: ignored",
                );
            }
            continue;
        };
        if tracked && ok && route.dev.is_none() && !route.no_track {
            a.diags
                .ka_warning(
                    item.kw.loc,
                    item.kw.width,
                    format!("cannot track route {dest} with no interface specified: not tracked (keepalived counts this)"),
                )
                .hint("add 'dev IFNAME', or 'no_track'");
        }
        if ok {
            out.push(route);
        }
    }
    out
}

/// A rule option rvs does not install: said at the option (the rule is not installed).
fn unsupported_rule(a: &mut Args<'_>, tok: &Token) {
    a.diags.not_applied(
        tok.loc,
        tok.width,
        format!(
            "rule option '{}' is not applied by rvs: this rule is not installed",
            tok.text
        ),
    );
}

/// Reads a rules block.
pub(super) fn rules(a: &mut Args<'_>, block: &Node) -> Vec<Rule> {
    let mut out = Vec::new();
    for item in block.children() {
        let toks = words(item);
        let mut rule = Rule {
            text: text(item),
            from: None,
            to: None,
            table: None,
            preference: None,
            no_track: false,
            invert: false,
            iif: None,
            oif: None,
            fwmark: None,
            tos: None,
            goto: None,
            suppress_prefixlength: None,
            kind: None,
            unsupported: Vec::new(),
        };
        let mut ok = true;
        let mut i = 0;
        while i < toks.len() {
            let tok = toks[i];
            let word = tok.text.as_str();
            if RULE_FLAGS.contains(&word) || RULE_TYPES.contains(&word) {
                match word {
                    "no_track" => rule.no_track = true,
                    "not" => rule.invert = true,
                    "blackhole" | "unreachable" | "prohibit" => rule.kind = Some(word.to_owned()),
                    "unicast" => {}
                    _ => {
                        rule.unsupported.push(word.to_owned());
                        unsupported_rule(a, tok);
                    }
                }
            } else if RULE_VALUED.contains(&word) {
                let Some(val) = toks.get(i + 1) else {
                    a.diags.ka_warning(
                        tok.loc,
                        tok.width,
                        format!("rule option '{word}' needs a value"),
                    );
                    ok = false;
                    break;
                };
                let number = |a: &mut Args<'_>| {
                    let n = val.text.parse::<u32>().ok();
                    if n.is_none() {
                        a.diags.ka_warning(
                            val.loc,
                            val.width,
                            format!("invalid rule {word} '{}'", val.text),
                        );
                    }
                    n
                };
                match word {
                    "from" | "to" => {
                        if val.text == "all" || prefix(&val.text) {
                            let slot = if word == "from" {
                                &mut rule.from
                            } else {
                                &mut rule.to
                            };
                            *slot = Some(val.text.clone());
                        } else {
                            a.diags.ka_warning(
                                val.loc,
                                val.width,
                                format!("invalid rule {word} address '{}': the rule is ignored, as keepalived ignores it", val.text),
                            );
                            ok = false;
                        }
                    }
                    "table" | "lookup" => {
                        rule.table = table(a, val);
                        ok &= rule.table.is_some();
                    }
                    "preference" | "prio" | "priority" => {
                        rule.preference = number(a);
                        ok &= rule.preference.is_some();
                    }
                    "iif" | "dev" => rule.iif = Some(val.text.clone()),
                    "oif" => rule.oif = Some(val.text.clone()),
                    "fwmark" | "tos" | "dsfield" => {
                        let num = |t: &str| {
                            t.parse::<u32>().is_ok()
                                || t.strip_prefix("0x")
                                    .is_some_and(|h| u32::from_str_radix(h, 16).is_ok())
                        };
                        let good = if word == "fwmark" {
                            val.text.split('/').count() <= 2 && val.text.split('/').all(num)
                        } else {
                            num(&val.text) && table_number(&val.text).is_some_and(|n| n <= 255)
                        };
                        if good {
                            let slot = if word == "fwmark" {
                                &mut rule.fwmark
                            } else {
                                &mut rule.tos
                            };
                            *slot = Some(val.text.clone());
                        } else {
                            a.diags.ka_warning(
                                val.loc,
                                val.width,
                                format!("invalid rule {word} '{}': the rule is ignored", val.text),
                            );
                            ok = false;
                        }
                    }
                    "goto" => {
                        rule.goto = number(a);
                        ok &= rule.goto.is_some();
                    }
                    "suppress_prefixlength" => {
                        rule.suppress_prefixlength = number(a);
                        ok &= rule.suppress_prefixlength.is_some();
                    }
                    _ => {
                        rule.unsupported.push(word.to_owned());
                        unsupported_rule(a, tok);
                    }
                }
                i += 1;
            } else {
                a.diags
                    .ka_warning(tok.loc, tok.width, format!("unknown rule option '{word}'"))
                    .hint("the words of `ip rule add`, and no_track");
            }
            i += 1;
        }
        let family = |s: &Option<String>| {
            s.as_deref()
                .and_then(|a| a.split('/').next())
                .and_then(|a| a.parse::<std::net::IpAddr>().ok())
                .map(|a| a.is_ipv6())
        };
        if let (Some(f), Some(t)) = (family(&rule.from), family(&rule.to)) {
            if ok && f != t {
                a.diags.ka_warning(
                    item.kw.loc,
                    item.kw.width,
                    "a rule's from and to addresses are of different families: the rule is ignored",
                );
                ok = false;
            }
        }
        if ok && rule.preference.is_none() {
            a.diags
                .ka_warning(
                    item.kw.loc,
                    item.kw.width,
                    "a rule without a preference: keepalived gives it one (16384, then down), \
                     probably not what you want (keepalived counts this)",
                )
                .hint("add 'preference N'");
        }
        if ok {
            out.push(rule);
        }
    }
    out
}
