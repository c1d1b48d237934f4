//! keepalived's firewall for `no_accept` and `vrrp_strict`: the addresses of instances
//! that must not accept traffic to their VIPs (RFC 3768 / 5798: a backup, or a master
//! that is not the address owner) are dropped in and out by nftables rules, in
//! keepalived 2.2.7's own tables and layout (`table ip keepalived` / `table ip6
//! keepalived`, a `vips` set, `in`/`out` chains at priority filter - 1, IPv6 neighbour
//! discovery let through), replaced whole on every change and deleted at stop.
//!
//! Written for Debian's `nft` (nftables package) as one atomic `nft -f -` transaction:
//! the crates that speak nftables' netlink directly either generate bindings with
//! bindgen at build time (libclang for everyone who builds rvs) or link libnftnl, while
//! `nft` is the firewall tool the host already runs; it is only needed when a
//! configuration asks for these rules.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};

/// The addresses to drop, by family, and the table name (`nftables NAME`, default
/// `keepalived`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FirewallPlan {
    pub table: String,
    /// The chains' priority relative to `filter` (`nftables_priority`, default -1).
    pub priority: i32,
    /// `nftables_counters`: every rule counts what it matches.
    pub counters: bool,
    pub v4: BTreeSet<Ipv4Addr>,
    /// IPv6 addresses other than link-local ones.
    pub v6: BTreeSet<Ipv6Addr>,
    /// Link-local addresses with their interface, matched by interface index
    /// (keepalived's `vips_link_local` set).
    pub ll_index: BTreeSet<(Ipv6Addr, String)>,
    /// Link-local addresses matched by interface name (`vips_link_local_name`: an
    /// instance with `dont_track_primary`, for an address on its interface or
    /// `no_track`, unless `nftables_ifindex`).
    pub ll_name: BTreeSet<(Ipv6Addr, String)>,
}

impl FirewallPlan {
    pub fn is_empty(&self) -> bool {
        self.v4.is_empty() && !self.has_v6()
    }

    fn has_v6(&self) -> bool {
        !(self.v6.is_empty() && self.ll_index.is_empty() && self.ll_name.is_empty())
    }
}

/// The `table ip6` of `w`, in keepalived's layout: its sets, the chains declared in
/// keepalived's order (`nft list` shows them so), then their rules.
fn table_v6(w: &FirewallPlan, prio: &str, counter: &str, o: &mut String) {
    let t = &w.table;
    let _ = writeln!(o, "table ip6 {t} {{");
    let elements: Vec<String> = w.v6.iter().map(ToString::to_string).collect();
    let _ = write!(o, "\tset vips {{\n\t\ttype ipv6_addr\n");
    if !elements.is_empty() {
        let _ = writeln!(o, "\t\telements = {{ {} }}", elements.join(", "));
    }
    let _ = writeln!(
        o,
        "\t}}\n\tset neighbor-discovery {{\n\t\ttype icmpv6_type\n\t\tflags constant\n\t\t\
         elements = {{ nd-neighbor-solicit, nd-neighbor-advert }}\n\t}}"
    );
    let ll = |set: &BTreeSet<(Ipv6Addr, String)>| {
        set.iter()
            .map(|(a, i)| format!("{a} . \"{i}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if !w.ll_index.is_empty() {
        let _ = writeln!(
            o,
            "\tset vips_link_local {{\n\t\ttype ipv6_addr . iface_index\n\t\telements = {{ {} }}\n\t}}",
            ll(&w.ll_index)
        );
    }
    if !w.ll_name.is_empty() {
        let _ = writeln!(
            o,
            "\tset vips_link_local_name {{\n\t\ttype ipv6_addr . ifname\n\t\telements = {{ {} }}\n\t}}",
            ll(&w.ll_name)
        );
    }
    for (chain, hook) in [("out", "output"), ("in", "input")] {
        let _ = writeln!(
            o,
            "\tchain {chain} {{\n\t\ttype filter hook {hook} priority {prio}; policy accept;\n\t}}"
        );
    }
    let _ = writeln!(
        o,
        "\tchain in_link_local {{\n\t}}\n\tchain out_link_local {{\n\t}}\n}}"
    );
    for (chain, dir) in [("out", "saddr"), ("in", "daddr")] {
        let _ = writeln!(
            o,
            "add rule ip6 {t} {chain} icmpv6 type @neighbor-discovery {counter}accept\n\
             add rule ip6 {t} {chain} ip6 {dir} fe80::/10 {counter}goto {chain}_link_local\n\
             add rule ip6 {t} {chain} ip6 {dir} @vips {counter}drop"
        );
    }
    for (chain, dir, if_) in [
        ("in_link_local", "daddr", "i"),
        ("out_link_local", "saddr", "o"),
    ] {
        if !w.ll_index.is_empty() {
            let _ = writeln!(
                o,
                "add rule ip6 {t} {chain} ip6 {dir} . {if_}if @vips_link_local {counter}drop"
            );
        }
        if !w.ll_name.is_empty() {
            let _ = writeln!(
                o,
                "add rule ip6 {t} {chain} ip6 {dir} . {if_}ifname @vips_link_local_name {counter}drop"
            );
        }
    }
}

/// The `nft -f` script that turns the tables of `prev` into those of `want` (tables
/// without addresses are deleted, never left empty).
pub fn script(want: Option<&FirewallPlan>, prev: Option<&FirewallPlan>) -> String {
    let mut o = String::new();
    for (family, v6) in [("ip", false), ("ip6", true)] {
        let has = |p: Option<&FirewallPlan>| {
            p.is_some_and(|p| if v6 { p.has_v6() } else { !p.v4.is_empty() })
        };
        // The old table goes (declared first, so that deleting it cannot fail).
        if let Some(p) = prev.filter(|p| has(Some(p))) {
            let _ = writeln!(
                o,
                "table {family} {t}\ndelete table {family} {t}",
                t = p.table
            );
        }
        let Some(w) = want.filter(|w| has(Some(w))) else {
            continue;
        };
        if prev.is_none_or(|p| p.table != w.table || !has(Some(p))) {
            let _ = writeln!(
                o,
                "table {family} {t}\ndelete table {family} {t}",
                t = w.table
            );
        }
        let prio = match w.priority {
            0 => "filter".to_owned(),
            p if p < 0 => format!("filter - {}", p.unsigned_abs()),
            p => format!("filter + {p}"),
        };
        let counter = if w.counters { "counter " } else { "" };
        if v6 {
            table_v6(w, &prio, counter, &mut o);
            continue;
        }
        let elements: Vec<String> = w.v4.iter().map(ToString::to_string).collect();
        let _ = writeln!(o, "table {family} {} {{", w.table);
        let _ = writeln!(
            o,
            "\tset vips {{\n\t\ttype ipv4_addr\n\t\telements = {{ {} }}\n\t}}",
            elements.join(", ")
        );
        for (chain, hook, dir) in [("out", "output", "saddr"), ("in", "input", "daddr")] {
            let _ = writeln!(
                o,
                "\tchain {chain} {{\n\t\ttype filter hook {hook} priority {prio}; policy accept;"
            );
            let _ = writeln!(o, "\t\t{family} {dir} @vips {counter}drop\n\t}}");
        }
        let _ = writeln!(o, "}}");
    }
    o
}

/// Applies the difference from `prev` to `want` with `nft`; the error says what to do.
pub async fn apply(want: Option<&FirewallPlan>, prev: Option<&FirewallPlan>) -> Result<(), String> {
    let text = script(want, prev);
    if text.is_empty() {
        return Ok(());
    }
    nft(&text).await.map_err(|e| match e {
        NftError::Missing(e) => format!(
            "no_accept / vrrp_strict: cannot run nft ({e}): install nftables; traffic to \
             the VIPs is not filtered"
        ),
        NftError::Refused(why) => format!("nft refused the no_accept rules: {why}"),
        NftError::Other(e) => e,
    })
}

/// Why `nft -f -` did not apply a script.
#[derive(Debug)]
pub enum NftError {
    /// `nft` cannot be run (not installed).
    Missing(std::io::Error),
    /// nft's own complaint.
    Refused(String),
    Other(String),
}

impl std::fmt::Display for NftError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NftError::Missing(e) => write!(f, "cannot run nft: {e}"),
            NftError::Refused(why) => write!(f, "nft: {why}"),
            NftError::Other(e) => f.write_str(e),
        }
    }
}

/// Runs `nft -f -` with `text` (one atomic transaction), for at most 10 s.
///
/// # Errors
/// [`NftError`].
pub async fn nft(text: &str) -> Result<(), NftError> {
    let mut child = tokio::process::Command::new("nft")
        .args(["-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(NftError::Missing)?;
    if let Some(mut stdin) = child.stdin.take() {
        use tokio::io::AsyncWriteExt as _;
        stdin
            .write_all(text.as_bytes())
            .await
            .map_err(|e| NftError::Other(format!("nft: {e}")))?;
    }
    let out = tokio::time::timeout(std::time::Duration::from_secs(10), child.wait_with_output())
        .await
        .map_err(|_| NftError::Other("nft did not finish within 10 s".to_owned()))?
        .map_err(|e| NftError::Other(format!("nft: {e}")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(NftError::Refused(
            String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        ))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests panic on failure")]
mod tests {
    use super::*;

    fn plan(v4: &[&str], v6: &[&str]) -> FirewallPlan {
        FirewallPlan {
            table: "keepalived".into(),
            priority: -1,
            counters: false,
            v4: v4.iter().map(|a| a.parse().unwrap()).collect(),
            v6: v6.iter().map(|a| a.parse().unwrap()).collect(),
            ll_index: BTreeSet::new(),
            ll_name: BTreeSet::new(),
        }
    }

    #[test]
    fn scripts_replace_whole_tables_and_delete_empty_ones() {
        let a = plan(&["198.18.0.50"], &[]);
        let s = script(Some(&a), None);
        assert!(
            s.starts_with("table ip keepalived\ndelete table ip keepalived\ntable ip keepalived {"),
            "{s}"
        );
        assert!(s.contains("elements = { 198.18.0.50 }"), "{s}");
        assert!(
            s.contains("ip daddr @vips drop") && s.contains("ip saddr @vips drop"),
            "{s}"
        );
        assert!(!s.contains("ip6"), "{s}");
        // Another address: the table is replaced, once.
        let b = plan(&["198.18.0.50", "198.18.0.51"], &["fd00:198:18::50"]);
        let s = script(Some(&b), Some(&a));
        assert_eq!(s.matches("delete table ip keepalived").count(), 1, "{s}");
        assert!(s.contains("elements = { 198.18.0.50, 198.18.0.51 }"), "{s}");
        assert!(s.contains("icmpv6 type @neighbor-discovery accept"), "{s}");
        // Nothing left to filter: both tables go, none is created.
        let s = script(None, Some(&b));
        assert_eq!(
            s,
            "table ip keepalived\ndelete table ip keepalived\n\
             table ip6 keepalived\ndelete table ip6 keepalived\n"
        );
        assert_eq!(script(None, None), "");
        // nftables_priority / nftables_counters.
        let c = FirewallPlan {
            priority: 5,
            counters: true,
            ..a.clone()
        };
        let s = script(Some(&c), Some(&a));
        assert!(s.contains("priority filter + 5;"), "{s}");
        assert!(s.contains("ip daddr @vips counter drop"), "{s}");
    }
}
