//! The classic LVS mistakes the seed articles warn about, made on purpose in network
//! namespaces, and caught.
//!
//! Needs root and `ip`; in CI (CI=true) a missing prerequisite fails.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/lab.rs"]
mod lab;

use lab::Lab;
use std::process::Command;
use std::time::Duration;

const VIP: &str = "198.18.0.50";

/// `rvs adm -Ln` of the director.
fn table(sock: &std::path::Path) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_rvs"))
        .args(["adm", "-Ln"])
        .env("RVS_CONTROL", sock)
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// `rvs_forwarding_path_check`: a `TCP_CHECK` on an LVS-DR real server that lacks the VIP
/// on `lo` connects to the real server's own address and passes, though every client
/// packet forwarded to it would be dropped. With the check on (in `global_defs`), that
/// real server is taken out with a reason that says so, and comes in once the VIP is
/// added; one that holds the VIP but listens only on its own address is out with "refuses
/// connections to the VIP"; a checker that says `rvs_forwarding_path_check off` keeps the
/// old behaviour; and where the check cannot apply (NAT) the keyword is warned about at
/// its line.
#[test]
#[ignore = "needs root and network namespaces: ./test.sh runs it as root"]
fn a_dr_real_server_without_the_vip_is_taken_out_with_the_reason() {
    lab::require(false);
    let mut l = Lab::new(&[
        ("dir", 1),
        ("rs1", 11),
        ("rs2", 12),
        ("rs3", 13),
        ("rs4", 14),
    ]);
    // rs1: set up right. rs2, rs3: no VIP (rs3's checker opts out). rs4: the VIP, but
    // its server listens on its own address only.
    l.vip_on_lo("rs1", VIP);
    l.vip_on_lo("rs4", VIP);
    for (rs, listen) in [
        ("rs1", "0.0.0.0:80"),
        ("rs2", "0.0.0.0:80"),
        ("rs3", "0.0.0.0:80"),
        ("rs4", "198.18.0.14:80"),
    ] {
        l.spawn_cmd(rs, &[env!("CARGO_BIN_EXE_rvs"), "lab", "serve", rs, listen]);
    }
    // The director holds the VIP, as a DR director does (its kernel then drops the real
    // servers' SYN-ACKs from the VIP as martians: the probe reads them before IP).
    l.ip_in("dir", &["addr", "add", &format!("{VIP}/32"), "dev", "eth0"]);
    let rs = |n: u8, extra: &str| {
        format!(
            "    real_server 198.18.0.{n} 80 {{\n        TCP_CHECK {{\n            \
             connect_timeout 1\n{extra}        }}\n    }}\n"
        )
    };
    let conf = format!(
        "global_defs {{\n    rvs_forwarding_path_check\n}}\n\
         virtual_server {VIP} 80 {{\n    delay_loop 1\n    lb_algo rr\n    lb_kind DR\n    \
         protocol TCP\n{}{}{}{}}}\n",
        rs(11, ""),
        rs(12, ""),
        rs(13, "            rvs_forwarding_path_check off\n"),
        rs(14, ""),
    );
    l.rvs("dir", &conf, &[]);
    let sock = l.control("dir", 4);
    let mut t = String::new();
    let settled = Lab::wait(Duration::from_secs(20), || {
        t = table(&sock);
        t.contains("198.18.0.11:80")
            && t.contains("198.18.0.13:80")
            && !t.contains("198.18.0.12:80")
            && !t.contains("198.18.0.14:80")
            && l.logs()
                .contains("[198.18.0.14] answers on its own address but refuses")
    });
    assert!(settled.is_some(), "{t}\n{}", l.logs());
    let logs = l.logs();
    assert!(
        logs.contains(
            "forwarding path check: [198.18.0.12] answers on its own address but not to a SYN \
             for the VIP 198.18.0.50:80 sent to its MAC, as LVS-DR forwards clients: the VIP \
             is not on its loopback"
        ),
        "{logs}"
    );
    assert!(
        !logs.contains("[198.18.0.11] answers on its own address")
            && !logs.contains("[198.18.0.13] answers on its own address"),
        "{logs}"
    );

    // The operator adds the VIP to rs2's loopback: it comes in.
    l.vip_on_lo("rs2", VIP);
    let back = Lab::wait(Duration::from_secs(15), || {
        table(&sock).contains("198.18.0.12:80")
    });
    assert!(back.is_some(), "{}\n{}", table(&sock), l.logs());

    // Where the check cannot apply, the keyword is warned about at its line.
    let nat = l.dir.join("nat.conf");
    std::fs::write(
        &nat,
        "virtual_server 198.18.0.51 80 {\n    lb_kind NAT\n    protocol TCP\n    \
         real_server 198.18.0.11 8080 {\n        TCP_CHECK {\n            \
         rvs_forwarding_path_check\n        }\n    }\n}\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_rvs"))
        .args(["check", "--strict", "-f"])
        .arg(&nat)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains("nat.conf:6")
            && text.contains(
                "rvs_forwarding_path_check is not applied here: LVS-DR real servers only"
            ),
        "{text}"
    );
    assert!(!out.status.success(), "--strict counts it: {text}");
}
