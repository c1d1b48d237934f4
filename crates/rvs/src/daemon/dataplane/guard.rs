//! The FULLNAT reset guard: while the XDP program forwards FULLNAT connections from the
//! director's local addresses, the director's own kernel has no socket for them, and a
//! real server's reply that reaches the kernel instead of the program — rvs killed or
//! crashed, its program gone, the address not yet removed (`rvs cleanup`) or moved to a
//! peer (VRRP) — would be answered with a TCP reset, which ends the connection at the
//! real server although a peer director could carry it on. An nftables rule drops the
//! resets the kernel sends from those addresses: the real server retransmits, by then to
//! the peer that took the address over.
//!
//! The table (`inet rvs_fullnat`) lives in the kernel, so it outlasts a killed rvs; a
//! stopping rvs deletes it, and so does `rvs cleanup` once the addresses are gone.
//! Written for `nft` (as the VRRP firewall, `rvs_vrrpd::firewall`); without it the
//! guard is skipped with a warning.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::net::IpAddr;

/// The nftables table of the guard.
pub const TABLE: &str = "rvs_fullnat";

/// The `nft -f` script that replaces the guard with one for `laddrs` (an empty set:
/// the table deleted).
pub fn script(laddrs: &BTreeSet<IpAddr>) -> String {
    // Declared first, so that deleting never fails on a table that is not there.
    let mut s = format!("table inet {TABLE}\ndelete table inet {TABLE}\n");
    if laddrs.is_empty() {
        return s;
    }
    let list = |v6: bool| -> String {
        laddrs
            .iter()
            .filter(|a| a.is_ipv6() == v6)
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let _ = writeln!(s, "table inet {TABLE} {{");
    for (name, ty, v6) in [
        ("laddrs4", "ipv4_addr", false),
        ("laddrs6", "ipv6_addr", true),
    ] {
        let elements = list(v6);
        let _ = write!(s, "\tset {name} {{\n\t\ttype {ty}\n");
        if !elements.is_empty() {
            let _ = writeln!(s, "\t\telements = {{ {elements} }}");
        }
        let _ = writeln!(s, "\t}}");
    }
    s.push_str(
        "\tchain out {\n\t\ttype filter hook output priority filter; policy accept;\n\
         \t\tip saddr @laddrs4 tcp flags & rst == rst drop\n\
         \t\tip6 saddr @laddrs6 tcp flags & rst == rst drop\n\t}\n}\n",
    );
    s
}

/// Runs `nft -f -` with `script` (`rvs_vrrpd::firewall::nft`).
///
/// # Errors
/// `nft` missing, or its complaint.
pub async fn apply(script: &str) -> Result<(), String> {
    rvs_vrrpd::firewall::nft(script)
        .await
        .map_err(|e| e.to_string())
}

/// Whether the guard's table is in the kernel (`nft list table`).
pub fn present() -> bool {
    std::process::Command::new("nft")
        .args(["list", "table", "inet", TABLE])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guard_drops_resets_from_the_local_addresses_of_both_families() {
        let laddrs: BTreeSet<IpAddr> = ["198.18.0.23", "fd00:198:18::60", "198.18.0.22"]
            .iter()
            .map(|a| a.parse().unwrap())
            .collect();
        let s = script(&laddrs);
        assert!(s.starts_with("table inet rvs_fullnat\ndelete table inet rvs_fullnat\n"));
        assert!(s.contains("elements = { 198.18.0.22, 198.18.0.23 }"), "{s}");
        assert!(s.contains("elements = { fd00:198:18::60 }"), "{s}");
        assert!(
            s.contains("ip saddr @laddrs4 tcp flags & rst == rst drop"),
            "{s}"
        );
        assert!(
            s.contains("ip6 saddr @laddrs6 tcp flags & rst == rst drop"),
            "{s}"
        );
        // None left: the table goes.
        assert_eq!(
            script(&BTreeSet::new()),
            "table inet rvs_fullnat\ndelete table inet rvs_fullnat\n"
        );
    }
}
