//! What one load may read is bounded: includes must be regular files (a FIFO would block,
//! /dev/zero never ends), a file is at most 16 MiB, one load reads at most 10,000 files
//! and 64 MiB, diagnostics are capped per file, and lines rvs cannot read are marked so a
//! reload can refuse them. Each case runs on a thread with a generous bound, so a
//! regression fails instead of hanging the suite.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::format_push_string,
    clippy::format_collect
)]

use std::path::{Path, PathBuf};
use std::time::Duration;

/// A fresh directory for one test.
fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("rvs-bounds-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Parses `path` on a thread; fails the test if it takes more than 120 s (a hang).
fn parse(path: &Path) -> rvs_conf::Parsed {
    let (tx, rx) = std::sync::mpsc::channel();
    let p = path.to_path_buf();
    std::thread::spawn(move || {
        let _ = tx.send(rvs_conf::parse_file(&p, &rvs_conf::Options::default()));
    });
    rx.recv_timeout(Duration::from_mins(2))
        .expect("parsing did not finish: it hangs")
}

fn has(p: &rvs_conf::Parsed, what: &str) -> bool {
    p.diagnostics
        .iter()
        .any(|d| d.is_error() && d.message.contains(what))
}

#[test]
fn an_include_must_be_a_regular_file() {
    let d = scratch("special");
    let fifo = d.join("fifo");
    let ok = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(ok.success());
    std::fs::write(
        d.join("k.conf"),
        format!(
            "include {}\ninclude /dev/zero\ninclude {}\n",
            fifo.display(),
            d.display()
        ),
    )
    .unwrap();
    let p = parse(&d.join("k.conf"));
    let text = p.render();
    assert!(has(&p, "it is a FIFO, not a regular file"), "{text}");
    assert!(
        has(&p, "it is a character device, not a regular file"),
        "{text}"
    );
    // A directory is skipped with a warning (keepalived's read check, which only
    // `includer`/`includea` or `include_check` make an error).
    assert!(
        p.diagnostics
            .iter()
            .any(|x| !x.is_error() && x.message.contains("is a directory - skipping")),
        "{text}"
    );
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_file_over_16_mib_is_not_read() {
    let d = scratch("big");
    let big = std::fs::File::create(d.join("big.conf")).unwrap();
    big.set_len((16 << 20) + 1).unwrap();
    std::fs::write(d.join("k.conf"), "include big.conf\n").unwrap();
    let p = parse(&d.join("k.conf"));
    assert!(has(&p, "it is larger than 16 MiB"), "{}", p.render());
    std::fs::remove_dir_all(&d).unwrap();
}

/// Five files of 15 MiB: the fifth would pass 64 MiB in all.
#[test]
fn one_load_reads_at_most_64_mib() {
    let d = scratch("total");
    let mut inc = String::new();
    for i in 0..5 {
        let f = std::fs::File::create(d.join(format!("p{i}.conf"))).unwrap();
        f.set_len(15 << 20).unwrap();
        inc += &format!("include p{i}.conf\n");
    }
    std::fs::write(d.join("k.conf"), inc).unwrap();
    let p = parse(&d.join("k.conf"));
    assert!(
        has(&p, "configuration too large: more than 64 MiB read in all"),
        "{}",
        p.render()
    );
    std::fs::remove_dir_all(&d).unwrap();
}

/// k files each including `*` reads k! files (k=10: 3.6 M, once 3.3 GB and minutes):
/// the load stops at 10,000 files with one error.
#[test]
fn include_fan_out_is_bounded() {
    let d = scratch("fanout");
    for i in 0..10 {
        std::fs::write(d.join(format!("f{i}.conf")), "include *.conf\n").unwrap();
    }
    let p = parse(&d.join("f0.conf"));
    assert!(
        has(&p, "configuration too large: more than 10000 files read"),
        "{}",
        p.render()
    );
    assert_eq!(
        p.diagnostics
            .iter()
            .filter(|d| d.message.contains("too large"))
            .count(),
        1
    );
    std::fs::remove_dir_all(&d).unwrap();
}

/// A file with 1,000 unknown keywords shows 200 of them and one line counting the rest;
/// every one of them is a line rvs could not read.
#[test]
fn diagnostics_are_capped_per_file() {
    let text: String = (0..1000).map(|i| format!("garbage{i} x\n")).collect();
    let p = rvs_conf::parse_str(
        Path::new("/nonexistent/g.conf"),
        &text,
        &rvs_conf::Options::default(),
    );
    assert_eq!(p.diagnostics.len(), 201, "{}", p.render());
    let last = p.diagnostics.last().unwrap();
    assert!(
        last.message
            .contains("800 more diagnostics in this file are not shown (0 errors, 800 warnings)"),
        "{}",
        last.message
    );
    assert!(p.unreadable() > 0);
}

/// Random bytes and a file cut in the middle of a keyword are lines rvs cannot read.
#[test]
fn garbage_and_truncated_files_are_unreadable() {
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let bytes: Vec<u8> = (0..4096)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()[0]
        })
        .collect();
    let p = rvs_conf::parse_str(
        Path::new("/nonexistent/r.conf"),
        &String::from_utf8_lossy(&bytes),
        &rvs_conf::Options::default(),
    );
    assert!(p.unreadable() > 0, "{}", p.render());
    let cut =
        "virtual_server 198.18.0.1 80 {\n    real_server 198.18.0.2 80 {\n    }\n}\nvirtual_s";
    let p = rvs_conf::parse_str(
        Path::new("/nonexistent/t.conf"),
        cut,
        &rvs_conf::Options::default(),
    );
    assert_eq!(p.unreadable(), 1, "{}", p.render());
}
