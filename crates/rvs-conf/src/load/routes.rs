//! `virtual_routes`, `virtual_rules`, `static_routes` and `static_rules`: `ip route` /
//! `ip rule` lines, read as keepalived 2.2.7 reads them (`vrrp_iproute.c`,
//! `vrrp_iprule.c`), so that `rvs check --strict` counts what `keepalived -t` counts: an
//! address that is not one, an unknown option, `gw` and `or` (deprecated spellings), a
//! tracked route without `dev`, a rule without a preference. Routes are installed (static
//! ones at start, virtual ones with the VIPs); rules are not yet (`crate::support` warns).
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
                    "table" => route.table = Some(val.text.clone()),
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
        };
        let mut ok = true;
        let mut i = 0;
        while i < toks.len() {
            let tok = toks[i];
            let word = tok.text.as_str();
            if RULE_FLAGS.contains(&word) || RULE_TYPES.contains(&word) {
                rule.no_track |= word == "no_track";
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
                    "table" | "lookup" => rule.table = Some(val.text.clone()),
                    "preference" | "prio" | "priority" => {
                        if let Ok(p) = val.text.parse::<u32>() {
                            rule.preference = Some(p);
                        } else {
                            a.diags.ka_warning(
                                val.loc,
                                val.width,
                                format!("invalid rule preference '{}'", val.text),
                            );
                            ok = false;
                        }
                    }
                    _ => {}
                }
                i += 1;
            } else {
                a.diags
                    .ka_warning(tok.loc, tok.width, format!("unknown rule option '{word}'"))
                    .hint("the words of `ip rule add`, and no_track");
            }
            i += 1;
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
