//! E-mail alerts (issue #18): the mails keepalived sends, with its subjects and bodies,
//! received by a real SMTP server (Debian's python3-aiosmtpd, writing a Maildir), from a
//! running `rvs run` whose real server goes down and up. And a mail server that cannot be
//! reached costs the daemon nothing: the mail is counted as failed.
//!
//! Needs /usr/bin/python3 with aiosmtpd (.ci/run installs python3-aiosmtpd); in CI a
//! missing prerequisite fails the test.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "common/lab.rs"]
mod lab;
#[path = "common/mail.rs"]
mod mail;

use mail::wait_mail;

use common::Daemon;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The SMTP server, stopped (by PID) when the test ends.
struct Smtpd(Child, PathBuf);

impl Drop for Smtpd {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        let _ = std::fs::remove_dir_all(&self.1);
    }
}

fn smtpd(listen: &str) -> Smtpd {
    mail::require_aiosmtpd();
    let dir = std::env::temp_dir().join(format!("rvs-maildir-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let child = Command::new("/usr/bin/python3")
        .args([
            "-m",
            "aiosmtpd",
            "-n",
            "-l",
            listen,
            "-c",
            "aiosmtpd.handlers.Mailbox",
        ])
        .arg(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let s = Smtpd(child, dir);
    let addr: SocketAddr = listen.parse().unwrap();
    let t = Instant::now();
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "aiosmtpd did not listen on {listen}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    s
}

fn conf(smtp: &str) -> String {
    format!(
        "global_defs {{\n    notification_email {{\n        ops@example.org\n        oncall@example.org\n    }}\n    \
         notification_email_from rvs@example.org\n    smtp_server {smtp}\n    smtp_connect_timeout 5\n    \
         router_id rvs-test\n}}\n\
         virtual_server 127.73.0.1 8080 {{\n    lvs_sched rr\n    lvs_method NAT\n    protocol TCP\n    \
         delay_loop 1\n    quorum 1\n    smtp_alert\n    real_server 127.73.0.2 9100 {{\n        \
         TCP_CHECK {{\n            connect_timeout 1\n            retry 0\n        }}\n    }}\n}}\n"
    )
}

#[test]
#[ignore = "needs python3-aiosmtpd (Debian): ./test.sh and CI run it"]
fn real_server_and_quorum_changes_are_mailed_as_keepalived_mails_them() {
    let smtp = smtpd("127.73.0.9:2525");
    let d = Daemon::start(
        "alerts",
        &conf("127.73.0.9 2525"),
        "127.73.0.1:8080".parse().unwrap(),
    );
    // Nothing listens on the real server: its TCP_CHECK fails, it and the quorum go down.
    let down = wait_mail(
        &smtp.1,
        "[rvs-test] Realserver [127.73.0.2]:tcp:9100 of virtual server [127.73.0.1]:tcp:8080 - DOWN",
    );
    assert!(down.contains("=> TCP CHECK failed on service <="), "{down}");
    assert!(down.contains("From: rvs@example.org"), "{down}");
    assert!(
        down.contains("ops@example.org") && down.contains("oncall@example.org"),
        "{down}"
    );
    let lost = wait_mail(
        &smtp.1,
        "[rvs-test] Virtualserver [127.73.0.1]:tcp:8080 - DOWN",
    );
    assert!(lost.contains("=> Lost quorum 1+0=1 <= 0 <="), "{lost}");
    // The real server comes up: UP, and the quorum is back.
    let l = TcpListener::bind("127.73.0.2:9100").unwrap();
    std::thread::spawn(move || for _ in l.incoming() {});
    let up = wait_mail(
        &smtp.1,
        "[rvs-test] Realserver [127.73.0.2]:tcp:9100 of virtual server [127.73.0.1]:tcp:8080 - UP",
    );
    assert!(up.contains("=> TCP CHECK succeed on service <="), "{up}");
    let gained = wait_mail(
        &smtp.1,
        "[rvs-test] Virtualserver [127.73.0.1]:tcp:8080 - UP",
    );
    assert!(
        gained.contains("=> Gained quorum 1+0=1 <= 1 <="),
        "{gained}"
    );
    d.stop();
}

/// A mail server that does not answer: the daemon goes on (the control API answers at
/// once) and the mail is counted as failed in the metrics.
#[test]
fn an_unreachable_mail_server_is_counted_not_waited_for() {
    let metrics = "127.73.1.1:9901";
    // Nothing listens on 127.73.1.9:2525: connections are refused.
    let d = Daemon::start_args(
        "alerts-fail",
        &conf("127.73.1.9 2525").replace("127.73.0.", "127.73.1."),
        "127.73.1.1:8080".parse().unwrap(),
        &["--metrics", metrics],
    );
    let scrape = || {
        let mut s = TcpStream::connect(metrics).unwrap();
        write!(
            s,
            "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    };
    let t = Instant::now();
    loop {
        let m = scrape();
        let failed = m
            .lines()
            .find(|l| l.starts_with("rvs_smtp_alerts_total{result=\"failed\"}"))
            .and_then(|l| l.split_whitespace().last())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0);
        if failed >= 2.0 {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_mins(1),
            "no failed mail counted:\n{m}"
        );
        // The daemon answers meanwhile.
        assert!(d.status().contains("127.73.1.1"), "{}", d.status());
        std::thread::sleep(Duration::from_millis(200));
    }
    d.stop();
}

/// VRRP mails, in a namespace of the test's own: an instance that starts BACKUP and takes
/// over, its sync group once all its instances are MASTER, and "Stopping" at SIGTERM,
/// each with keepalived's subject and body.
#[test]
#[ignore = "needs root, network namespaces and python3-aiosmtpd: ./test.sh runs it as root"]
fn vrrp_state_changes_are_mailed_as_keepalived_mails_them() {
    lab::require(false);
    let mut l = lab::Lab::new(&[("a", 1)]);
    let maildir = mail::smtpd_in(&mut l, "a");
    let conf = "global_defs {\n  notification_email {\n    ops@example.org\n  }\n  \
                smtp_server 127.0.0.1 2525\n  router_id lb-a\n  smtp_alert_vrrp\n}\n\
                vrrp_sync_group G {\n  group {\n    VI_1\n    VI_2\n  }\n}\n\
                vrrp_instance VI_1 {\n  state BACKUP\n  interface eth0\n  virtual_router_id 51\n  \
                priority 100\n  advert_int 1\n  virtual_ipaddress {\n    198.18.0.50/24 dev eth0\n  }\n}\n\
                vrrp_instance VI_2 {\n  state BACKUP\n  interface eth0\n  virtual_router_id 52\n  \
                priority 100\n  advert_int 1\n  virtual_ipaddress {\n    198.18.0.51/24 dev eth0\n  }\n}\n";
    let p = l.rvs("a", conf, &[]);
    let backup = wait_mail(
        &maildir,
        "[lb-a] VRRP Instance VI_1 - Entering BACKUP state",
    );
    assert!(
        backup.contains("=> VRRP Instance is no longer owning VRRP VIPs <="),
        "{backup}"
    );
    let master = wait_mail(
        &maildir,
        "[lb-a] VRRP Instance VI_1 - Entering MASTER state",
    );
    assert!(
        master.contains("=> VRRP Instance is now owning VRRP VIPs <="),
        "{master}"
    );
    let group = wait_mail(&maildir, "[lb-a] VRRP Group G - Entering MASTER state");
    assert!(
        group.contains("=> All VRRP group instances are now in MASTER state <="),
        "{group}"
    );
    l.signal(&p, "TERM");
    l.wait_exit(&p, Duration::from_secs(30));
    let stop = wait_mail(&maildir, "[lb-a] VRRP Instance VI_2 - Stopping");
    assert!(stop.contains("=> VRRP Instance stopping <="), "{stop}");
}
