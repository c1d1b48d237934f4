//! Every fixture under tests/fixtures/ is checked against its golden diagnostics
//! (`NAME.conf.expected`: what `rvs check` must print) and its expected verdict:
//! `*.faithful.conf` (seed articles as written) are invalid, `*.repaired.conf` check clean,
//! corpus files 0x-2x are valid and 3x-4x invalid.
//!
//! Run with `RVS_BLESS=1` to rewrite the .expected files after a deliberate change, then
//! review the diff.

// Tests panic on failure so that the failing line is the report (STYLE.md).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::float_cmp,
    clippy::cast_possible_truncation,
    clippy::items_after_statements
)]

use std::path::{Path, PathBuf};

fn fixtures_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures")
        .canonicalize()
        .unwrap()
}

fn all_fixtures() -> Vec<PathBuf> {
    let mut v = Vec::new();
    for dir in ["seeds", "corpus"] {
        for e in std::fs::read_dir(fixtures_root().join(dir)).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "conf") {
                v.push(p);
            }
        }
    }
    v.sort();
    assert!(v.len() >= 40, "fixture corpus shrank: {}", v.len());
    v
}

fn rendered(p: &Path) -> (String, rvs_conf::Parsed) {
    let opts = rvs_conf::Options {
        config_id: Some("lb1".into()),
        ..Default::default()
    };
    let parsed = rvs_conf::parse_file(p, &opts);
    let root = format!("{}/", fixtures_root().display());
    let text = parsed.render().replace(&root, "");
    let summary = format!(
        "verdict: {} ({} errors, {} warnings, keepalived -t {})\n",
        if parsed.errors() > 0 {
            "invalid"
        } else {
            "valid"
        },
        parsed.errors(),
        parsed.warnings(),
        if parsed.keepalived_rejects() {
            "rejects"
        } else {
            "accepts"
        }
    );
    (format!("{text}{summary}"), parsed)
}

#[test]
fn golden_diagnostics() {
    let bless = std::env::var_os("RVS_BLESS").is_some();
    let mut failures = Vec::new();
    for p in all_fixtures() {
        let (got, _) = rendered(&p);
        let exp_path = p.with_extension("conf.expected");
        if bless {
            std::fs::write(&exp_path, &got).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&exp_path)
            .unwrap_or_else(|_| panic!("missing {}: run with RVS_BLESS=1", exp_path.display()));
        if got != want {
            failures.push(format!("{}:\n--- want\n{want}--- got\n{got}", p.display()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn verdicts() {
    for p in all_fixtures() {
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        let (_, parsed) = rendered(&p);
        let invalid = parsed.errors() > 0;
        if name.contains(".faithful.") {
            assert!(
                invalid,
                "{name}: the seed as written must be reported invalid"
            );
        } else if name.contains(".repaired.") {
            // Clean but for the keywords rvs reads and does not apply (e-mail alerts).
            assert!(
                !invalid && parsed.warnings() == parsed.unapplied(),
                "{name}: repaired seed must check clean:\n{}",
                parsed.render()
            );
        } else {
            let n: u32 = name[..2].parse().unwrap();
            if n < 30 {
                assert!(!invalid, "{name} must be valid:\n{}", parsed.render());
            } else {
                // Valid with warnings: what keepalived reports and runs anyway (38 a
                // missing '}' at the end, 39 an extra '}', 43 an unknown keyword, 44 no
                // protocol, 45 a missing include, 47 an unknown track_script).
                let warn_only = matches!(n, 38 | 39 | 43..=45 | 47);
                assert_eq!(invalid, !warn_only, "{name}:\n{}", parsed.render());
                assert!(
                    !parsed.diagnostics.is_empty(),
                    "{name}: expected a diagnostic"
                );
            }
        }
        // Every diagnostic points into a file at a real line.
        for d in &parsed.diagnostics {
            assert!(
                d.loc.line >= 1,
                "{name}: diagnostic without a line: {}",
                d.message
            );
        }
    }
}

/// The examples of hints, on the seed articles as written.
#[test]
fn seed_hints() {
    let root = fixtures_root();
    let (out, _) = rendered(&root.join("seeds/seed000-backup.faithful.conf"));
    assert!(out.contains("did you mean virtual_server?"), "{out}");
    assert!(out.contains("did you mean virtual_ipaddress?"), "{out}");
    let (out, _) = rendered(&root.join("seeds/seed000-master.faithful.conf"));
    assert!(out.contains("runs into the keyword router_id"), "{out}");
    assert!(out.contains("TCP_CHECK"), "{out}");
}
