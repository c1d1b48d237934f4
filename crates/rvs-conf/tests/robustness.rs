//! The parser never panics and never hangs: arbitrary bytes, and mutations of every fixture.
//! CI runs a few thousand cases; `RVS_FUZZ_CASES=1000000 cargo test --release -p rvs-conf
//! --test robustness -- --ignored` runs the long campaign by hand.

// Tests panic on failure so that the failing line is the report (STYLE.md).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::float_cmp,
    clippy::cast_possible_truncation,
    clippy::items_after_statements
)]

use proptest::prelude::*;
use std::path::{Path, PathBuf};

fn fixture_texts() -> &'static [String] {
    static TEXTS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    TEXTS.get_or_init(load_texts)
}

fn load_texts() -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures");
    let mut v = Vec::new();
    for dir in ["seeds", "corpus"] {
        for e in std::fs::read_dir(root.join(dir)).unwrap() {
            let p: PathBuf = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "conf") {
                v.push(std::fs::read_to_string(p).unwrap());
            }
        }
    }
    v
}

fn parse(bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    let p = rvs_conf::parse_str(
        Path::new("/nonexistent/fuzz.conf"),
        &text,
        &rvs_conf::Options {
            config_id: Some("lb1".into()),
            max_generated_lines: 20_000,
        },
    );
    // Rendering must not panic either (carets on odd characters, empty lines, ...).
    let _ = p.render();
    let _ = serde_json::to_string(&p.config).unwrap();
}

/// Mutates a fixture: byte flips, deletions, insertions of config-significant characters.
fn mutate(base: &str, ops: &[(u16, u8, u8)]) -> Vec<u8> {
    let mut b = base.as_bytes().to_vec();
    const SPICE: &[u8] = b"{}\"#!$@~\\ \n\t0123456789-/:.%";
    for &(pos, kind, val) in ops {
        if b.is_empty() {
            b.push(val);
            continue;
        }
        let i = usize::from(pos) % b.len();
        match kind % 4 {
            0 => b[i] = val,
            1 => {
                b.remove(i);
            }
            2 => b.insert(i, SPICE[usize::from(val) % SPICE.len()]),
            _ => {
                let j = usize::from(val) % b.len();
                let (lo, hi) = if i < j { (i, j) } else { (j, i) };
                let chunk: Vec<u8> = b[lo..hi.min(lo + 64)].to_vec();
                b.splice(i..i, chunk);
            }
        }
    }
    b
}

fn cases() -> u32 {
    std::env::var("RVS_FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2000)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        parse(&bytes);
    }

    #[test]
    fn mutated_fixtures(idx in any::<usize>(), ops in proptest::collection::vec((any::<u16>(), any::<u8>(), any::<u8>()), 1..24)) {
        let texts = fixture_texts();
        let base = &texts[idx % texts.len()];
        parse(&mutate(base, &ops));
    }
}

#[test]
fn deep_nesting_and_recursion_are_bounded() {
    let deep = "a {\n".repeat(100_000);
    parse(deep.as_bytes());
    parse(b"$A=${A}${A}\nx $A\n");
    parse(b"~SEQ(i, 1, 100000000) x $i\n");
    parse("$X= \\\n".repeat(10_000).as_bytes());
}

#[test]
fn self_include_terminates() {
    let dir = std::env::temp_dir().join(format!("rvs-inc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("a.conf"), "include b.conf\n").unwrap();
    std::fs::write(dir.join("b.conf"), "include a.conf\ninclude *.conf\n").unwrap();
    let p = rvs_conf::parse_file(&dir.join("a.conf"), &rvs_conf::Options::default());
    assert!(
        p.diagnostics
            .iter()
            .any(|d| d.message.contains("include loop")),
        "{}",
        p.render()
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The long campaign, by hand (see the module doc).
#[test]
#[ignore = "long: run by hand with RVS_FUZZ_CASES"]
fn long_campaign() {
    let texts = fixture_texts();
    let n: u64 = std::env::var("RVS_FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for i in 0..n {
        let base = &texts[(next() as usize) % texts.len()];
        let ops: Vec<(u16, u8, u8)> = (0..=(next() % 16))
            .map(|_| {
                let r = next();
                (r as u16, (r >> 16) as u8, (r >> 24) as u8)
            })
            .collect();
        parse(&mutate(base, &ops));
        if i % 100_000 == 0 {
            eprintln!("{i} cases");
        }
    }
    eprintln!("{n} cases, no panic");
}
