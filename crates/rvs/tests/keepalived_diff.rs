//! Differential test against the real keepalived (Debian's 2.2.7): for every fixture,
//! `keepalived -t -f` and `rvs check --strict -f` must agree on valid/invalid, and
//! `rvs check` (without --strict) must never reject what keepalived accepts. Known,
//! deliberate differences are listed in KNOWN below and in docs/compat.md.
//!
//! keepalived -t also rejects interfaces that do not exist on the host, so it runs in a
//! network namespace of the test's own with veth interfaces of the names the fixtures use.
//! Needs root, `ip` and keepalived; in CI (CI=true) a missing prerequisite fails the test.

// Tests panic on failure so that the failing line is the report (STYLE.md).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::float_cmp,
    clippy::cast_possible_truncation,
    clippy::items_after_statements
)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// (fixture, keepalived's verdict is invalid, why rvs --strict differs)
const KNOWN: &[(&str, bool, &str)] = &[(
    "40-include-loop.conf",
    false,
    "keepalived recurses until it runs out of file descriptors, then accepts; rvs reports the loop",
)];

fn fixtures() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures");
    let mut v = Vec::new();
    for dir in ["seeds", "corpus"] {
        for e in std::fs::read_dir(root.join(dir)).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "conf") {
                v.push(p);
            }
        }
    }
    v.sort();
    v
}

fn prerequisites() -> Result<(), String> {
    let have = |c: &str| {
        Command::new("sh")
            .args(["-c", &format!("command -v {c}")])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !have("keepalived") {
        return Err("keepalived is not installed (apt-get install keepalived)".into());
    }
    if !have("ip") {
        return Err("iproute2 is not installed".into());
    }
    // SAFETY-free check for root: /proc/self/status Uid line.
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let uid0 = status
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"));
    if !uid0 {
        return Err("needs root for a network namespace".into());
    }
    Ok(())
}

struct Netns(String);

impl Netns {
    fn new(ifaces: &[String]) -> Netns {
        let name = format!("rvs-diff-{}", std::process::id());
        let ip = |args: &[&str]| {
            let s = Command::new("ip").args(args).status().unwrap();
            assert!(s.success(), "ip {args:?} failed");
        };
        ip(&["netns", "add", &name]);
        let ns = Netns(name.clone());
        for (i, ifname) in ifaces.iter().enumerate() {
            let peer = format!("rvsp{i}");
            ip(&[
                "-n", &name, "link", "add", ifname, "type", "veth", "peer", "name", &peer,
            ]);
            ip(&["-n", &name, "link", "set", ifname, "up"]);
        }
        ns
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

#[test]
#[ignore = "needs root and keepalived: ./test.sh runs it as root"]
fn agrees_with_keepalived() {
    if let Err(why) = prerequisites() {
        panic!("the keepalived differential test cannot run: {why} (.ci/run installs keepalived)");
    }
    let files = fixtures();
    let mut ifaces: Vec<String> = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        for w in text.split(['\n', '{', '}']) {
            let t: Vec<&str> = w.split_whitespace().collect();
            if t.len() >= 2 && (t[0] == "interface" || t[0] == "dev") {
                let n = t[1].to_owned();
                if n != "lo"
                    && n.len() < 16
                    && n.chars().all(|c| c.is_ascii_alphanumeric())
                    && !ifaces.contains(&n)
                {
                    ifaces.push(n);
                }
            }
        }
    }
    let ns = Netns::new(&ifaces);
    let mut report = Vec::new();
    let mut compared = 0;
    // keepalived's pid files go here; removed when the test ends, pass or fail.
    struct TempDir(PathBuf);
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    let tmp = TempDir(std::env::temp_dir().join(format!("rvs-ka-{}", std::process::id())));
    std::fs::create_dir_all(&tmp.0).unwrap();
    let dir = &tmp.0;
    for f in &files {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        let pid = |p: &str| dir.join(p).display().to_string();
        let ka = Command::new("ip")
            .args(["netns", "exec", &ns.0, "keepalived", "-t", "-f"])
            .arg(f)
            .args([
                "-p",
                &pid("k.pid"),
                "-r",
                &pid("r.pid"),
                "-c",
                &pid("c.pid"),
                "-b",
                &pid("b.pid"),
            ])
            .current_dir(f.parent().unwrap())
            .output()
            .unwrap();
        let ka_invalid = !ka.status.success();
        let rvs_strict = !Command::new(env!("CARGO_BIN_EXE_rvs"))
            .args(["check", "--strict", "-q", "-i", "lb1", "-f"])
            .arg(f)
            .output()
            .unwrap()
            .status
            .success();
        let rvs_plain = !Command::new(env!("CARGO_BIN_EXE_rvs"))
            .args(["check", "-q", "-i", "lb1", "-f"])
            .arg(f)
            .output()
            .unwrap()
            .status
            .success();
        compared += 1;
        if let Some((_, ka_expect, why)) = KNOWN.iter().find(|k| k.0 == name) {
            assert_eq!(ka_invalid, *ka_expect, "{name}: keepalived's verdict changed; the documented difference ({why}) no longer holds");
            continue;
        }
        if ka_invalid != rvs_strict {
            report.push(format!(
                "{name}: keepalived {} / rvs --strict {}\n{}",
                if ka_invalid { "invalid" } else { "valid" },
                if rvs_strict { "invalid" } else { "valid" },
                String::from_utf8_lossy(&ka.stderr)
            ));
        }
        if rvs_plain && !ka_invalid {
            report.push(format!("{name}: rvs rejects what keepalived accepts"));
        }
    }
    drop(ns);
    eprintln!("compared {compared} fixtures with keepalived");
    assert!(compared >= 40);
    assert!(report.is_empty(), "disagreements:\n{}", report.join("\n"));
}
