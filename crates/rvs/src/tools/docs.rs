//! Manual pages and shell completions, generated from the clap definitions
//! (`clap_mangen`, `clap_complete`) so they cannot drift from the command line:
//! `rvs manpages DIR` writes rvs(8), one page per subcommand (rvs-run(8), …) and
//! rvs-keepalived.conf(5), the configuration dialect, made from the keyword schema
//! (`rvs_conf::schema`): the `rvs_` extensions and every keyword rvs reads but does not
//! apply, with what is lost. `rvs completions SHELL` prints a completion script.

use anyhow::{Context, Result};
use clap::CommandFactory;
use rvs_conf::schema;
use rvs_conf::support::Support;
use std::fmt::Write as _;
use std::path::Path;

/// What the `rvs_` extension keywords do, for the dialect page (the schema says where
/// each is written; a test checks that every one of them is described here).
pub const EXTENSIONS: &[(&str, &str)] = &[
    (
        "rvs_mh_table_size",
        "virtual_server: the Maglev (mh) lookup table size, a prime up to 2^20 (the kernel \
         fixes it at build time; default 4093). Directors of a cluster must use the same.",
    ),
    (
        "rvs_proxy_protocol",
        "virtual_server: v1 or v2: the proxy data plane sends the client's address to the \
         real servers with the PROXY protocol.",
    ),
    (
        "rvs_forwarding_path_check",
        "global_defs (for every LVS-DR and LVS-TUN real server) or a TCP_CHECK, HTTP_GET, \
         SSL_GET or SMTP_CHECK block (on, or off to opt out): after each check that finds \
         the real server up, send it a TCP SYN for the VIP and port as the director \
         forwards a client (LVS-DR: in a frame to its MAC; LVS-TUN: inside IP-in-IP); no \
         SYN-ACK takes it down, saying that the VIP is not on its loopback (tunl0 for TUN, \
         or reverse-path filtering drops it), or, on a RST, that nothing listens on the \
         VIP's port. IPv4 only.",
    ),
    (
        "rvs_split_brain_arbitration",
        "vrrp_instance: when another MAC answers ARP for a VIP while this instance is \
         MASTER (two MASTERs whose adverts do not reach each other), the director with the \
         lower MAC steps down to BACKUP and stays there while the other answers; once \
         adverts pass again, priorities decide. Split brains are detected and logged \
         without it.",
    ),
    (
        "rvs_config_drift_peer",
        "global_defs, repeatable: a peer director whose configuration this one compares \
         with its own (UDP port 5409): virtual servers, real servers and weights, VRIDs and \
         VIPs. Differences are logged, shown by rvs status and counted; a peer's \
         configuration is never applied.",
    ),
    (
        "rvs_bgp",
        "top level, a block (docs/cluster.md): announce the VIPs of the virtual servers to          routers over BGP while this director serves them, through BIRD 2, which rvs runs          as its child (router_id, local_as, neighbor ADDRESS { remote_as, bfd, hold_time,          source_address }, community, med, withdraw_delay, announce_when all|any,          bfd_interval, bfd_multiplier, bird). A VIP is withdrawn when its real servers are          all down, when the director is drained (rvs bgp drain) and on SIGTERM before the          drain; a crash ends the BGP sessions.",
    ),
    (
        "rvs_config_drift_key",
        "global_defs: the shared secret (HMAC-SHA256) of the rvs_config_drift_peer \
         exchange; datagrams that fail it are dropped.",
    ),
    (
        "rvs_sync_peer",
        "global_defs, repeatable (docs/cluster.md): the XDP data plane's connection sync \
         daemons send to these directors by unicast (port 8848 or the daemon's) and take \
         datagrams from them only, instead of the multicast group; the director's own \
         addresses in the list are skipped, so every director can carry the same list.",
    ),
    (
        "rvs_sync_key",
        "global_defs: the shared secret of the connection sync daemons (XDP data plane): \
         every datagram carries an HMAC-SHA256 of it and the time of sending, and one \
         without a valid tag, or sent more than 30 s ago, is dropped. Between rvs \
         directors only: the kernel's sync daemon neither signs nor accepts the tag.",
    ),
];

/// Writes the manual pages into `dir`; returns the files written.
pub fn manpages<C: CommandFactory>(dir: &Path) -> Result<Vec<std::path::PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut cmd = C::command().disable_help_subcommand(true);
    cmd.build();
    let mut written = Vec::new();
    let mut pages = vec![cmd.clone()];
    pages.extend(cmd.get_subcommands().filter(|s| !s.is_hide_set()).cloned());
    for page in pages {
        let man = clap_mangen::Man::new(page)
            .section("8")
            .manual("rvs manual")
            .source(format!("rvs {}", env!("CARGO_PKG_VERSION")));
        let path = dir.join(man.get_filename());
        let mut buf = Vec::new();
        man.render(&mut buf)?;
        std::fs::write(&path, buf).with_context(|| format!("writing {}", path.display()))?;
        written.push(path);
    }
    let path = dir.join("rvs-keepalived.conf.5");
    std::fs::write(&path, dialect_page()).with_context(|| format!("writing {}", path.display()))?;
    written.push(path);
    Ok(written)
}

/// Prints the completion script for `shell`.
pub fn completions<C: CommandFactory>(shell: clap_complete::Shell) {
    let mut cmd = C::command();
    clap_complete::generate(shell, &mut cmd, "rvs", &mut std::io::stdout());
}

/// Text for roff: backslashes doubled, a leading `.` or `'` kept from being a request.
fn roff(s: &str) -> String {
    let s = s.replace('\\', "\\e").replace('-', "\\-");
    if s.starts_with('.') || s.starts_with('\'') {
        format!("\\&{s}")
    } else {
        s
    }
}

/// rvs-keepalived.conf(5).
pub fn dialect_page() -> String {
    let mut p = String::new();
    let _ = writeln!(
        p,
        ".TH RVS\\-KEEPALIVED.CONF 5 \"\" \"rvs {}\" \"rvs manual\"",
        env!("CARGO_PKG_VERSION")
    );
    p.push_str(
        ".SH NAME\nrvs\\-keepalived.conf \\- keepalived.conf as rvs reads it\n\
         .SH DESCRIPTION\n\
         rvs takes keepalived's configuration file unchanged: the syntax of keepalived 2.2.7 \
         (comments, blocks, \\fBinclude\\fR, \\fB$PARAM\\fR definitions, \\fB@\\fR conditional \
         lines, \\fB~SEQ\\fR), every keyword it knows, its defaults and its meaning. See \
         \\fBkeepalived.conf\\fR(5) for the keywords themselves. This page lists what rvs adds \
         and what it reads but does not do.\n.PP\n\
         \\fBrvs check \\-f\\fR \\fIFILE\\fR reports each problem as \
         \\fIFILE\\fR:\\fILINE\\fR:\\fICOL\\fR with the source line; \\fB\\-\\-strict\\fR also \
         fails on the keywords below that are not applied, and \\fB\\-\\-keepalived\\-verdict\\fR \
         gives keepalived \\-t's verdict alone. \\fBkeepalived \\-t\\fR (rvs called as \
         keepalived) exits as keepalived does.\n\
         .SH EXTENSIONS\n\
         Keywords of rvs's own start with \\fBrvs_\\fR, so that keepalived rejects a file that \
         uses them rather than misreading it.\n",
    );
    for (name, what) in EXTENSIONS {
        let _ = writeln!(p, ".TP\n.B {}\n{}", roff(name), roff(what));
    }
    p.push_str(
        ".SH NOT APPLIED\n\
         rvs reads and checks these keywords but does not act on them. \\fBrvs check\\fR warns \
         at each line that uses one, with what is lost; \\fBrvs run\\fR logs it at start.\n",
    );
    for (block, kw) in schema::every_keyword() {
        if let Support::NotApplied(why) = kw.support {
            let place = if block.is_empty() { "top level" } else { block };
            let newer = if schema::NEWER_THAN_2_2_7.contains(&kw.name) {
                " (newer than keepalived 2.2.7)"
            } else {
                ""
            };
            let _ = writeln!(
                p,
                ".TP\n.BR {} \" in {}{}\"\n{}",
                roff(kw.name),
                roff(place),
                roff(newer),
                roff(why)
            );
        }
    }
    p.push_str(
        ".SH DIFFERENCES\n\
         .IP \\(bu 2\n\
         rvs is one process: keepalived's VRRP, checker and BFD children are threads, and \
         their pid files and process names are accepted.\n\
         .IP \\(bu 2\n\
         A reload applies the difference: unchanged virtual servers keep their connections, \
         a file with errors keeps the running configuration.\n\
         .IP \\(bu 2\n\
         The data plane is chosen with \\fBrvs run \\-\\-dataplane\\fR: the userspace proxy \
         (default), XDP, or the kernel's IPVS (what keepalived programs).\n\
         .IP \\(bu 2\n\
         Firewall rules for \\fBvrrp_strict\\fR and \\fBno_accept\\fR go through nftables.\n\
         .PP\n\
         The full list, with the reasons, is docs/compat.md and docs/keywords.md in rvs's \
         sources.\n\
         .SH SEE ALSO\n\
         \\fBrvs\\fR(8), \\fBrvs\\-run\\fR(8), \\fBrvs\\-check\\fR(8), \\fBkeepalived.conf\\fR(5), \
         \\fBipvsadm\\fR(8)\n",
    );
    p
}
