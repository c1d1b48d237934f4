//! A real SMTP server for the alert tests (Debian's python3-aiosmtpd, writing a Maildir)
//! and reading what it received. Included with `#[path]` by test crates that also
//! include `common/lab.rs` as `lab`.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use crate::lab::{in_ns, Lab};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Fails, naming the package, when aiosmtpd is missing.
pub fn require_aiosmtpd() {
    let ok = Command::new("/usr/bin/python3")
        .args(["-c", "import aiosmtpd"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "/usr/bin/python3 has no aiosmtpd: apt-get install python3-aiosmtpd (.ci/run does)"
    );
}

/// An SMTP server on 127.0.0.1:2525 in `node`'s namespace (stopped with the lab),
/// listening when this returns; its Maildir.
pub fn smtpd_in(l: &mut Lab, node: &str) -> PathBuf {
    require_aiosmtpd();
    let maildir = l.dir.join(format!("maildir-{node}"));
    l.spawn_cmd(
        node,
        &[
            "/usr/bin/python3",
            "-m",
            "aiosmtpd",
            "-n",
            "-l",
            "127.0.0.1:2525",
            "-c",
            "aiosmtpd.handlers.Mailbox",
            &maildir.display().to_string(),
        ],
    );
    let ns = l.ns(node);
    let ready = Lab::wait(Duration::from_secs(30), || {
        in_ns(&ns, || {
            TcpStream::connect_timeout(
                &"127.0.0.1:2525".parse().unwrap(),
                Duration::from_millis(200),
            )
            .is_ok()
        })
    });
    assert!(ready.is_some(), "aiosmtpd did not listen in {ns}");
    maildir
}

/// The mails in the Maildir, as text, headers unfolded (a long Subject is folded onto
/// continuation lines, RFC 5322 2.2.3), quoted-printable bodies decoded (lettre encodes
/// a body with long lines so).
pub fn mails(dir: &Path) -> Vec<String> {
    let Ok(rd) = std::fs::read_dir(dir.join("new")) else {
        return Vec::new();
    };
    rd.flatten()
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .map(|m| {
            let m = m
                .replace("\r\n", "\n")
                .replace("\n ", " ")
                .replace("\n\t", " ");
            match m.split_once("\n\n") {
                Some((head, body))
                    if head.contains("Content-Transfer-Encoding: quoted-printable") =>
                {
                    format!("{head}\n\n{}", quoted_printable(body))
                }
                _ => m,
            }
        })
        .collect()
}

/// RFC 2045 6.7: soft line breaks (`=` at a line's end) joined, `=XX` decoded.
fn quoted_printable(body: &str) -> String {
    let joined = body.replace("=\n", "");
    let b = joined.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = b
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b[i], hex) {
            (b'=', Some(v)) => {
                out.push(v);
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Waits (bounded) for a mail whose Subject is `subject`; returns it.
pub fn wait_mail(dir: &Path, subject: &str) -> String {
    let t = Instant::now();
    loop {
        if let Some(m) = mails(dir)
            .into_iter()
            .find(|m| m.lines().any(|l| l == format!("Subject: {subject}")))
        {
            return m;
        }
        assert!(
            t.elapsed() < Duration::from_mins(1),
            "no mail \"{subject}\"; received: {:#?}",
            mails(dir)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
