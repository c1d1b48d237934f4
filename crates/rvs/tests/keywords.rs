//! Every keepalived keyword accounted for (issue #17), each declared once (issue #16):
//! `rvs_conf::schema` declares every keyword with its shape and whether rvs applies it, and
//! docs/keywords.md is generated from it. This test fails when a loader handles a keyword
//! the schema does not declare, when an applied keyword is handled by no loader or sets a
//! model value that nothing outside the parser reads, or when docs/keywords.md is not
//! what the schema says (`RVS_BLESS=1` rewrites it).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use rvs_conf::support::{support, Support};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The source of every crate but the parser's, where an applied value must be read.
fn consumers() -> String {
    let mut out = String::new();
    let mut stack = vec![root().join("crates")];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            let s = p.to_string_lossy();
            if s.contains("crates/rvs-conf") || s.ends_with("/tests") || s.contains("/target") {
                continue;
            }
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                let text = std::fs::read_to_string(&p).unwrap();
                out.push_str(&without_test_modules(&text));
                out.push('\n');
            }
        }
    }
    out
}

/// The source without its `#[cfg(test)] mod tests { … }` (unit tests are not consumers);
/// braces are counted naively, which is enough for this code base's test modules.
fn without_test_modules(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("#[cfg(test)]\nmod tests {") {
        out.push_str(&rest[..i]);
        let body = &rest[i..];
        let mut depth = 0usize;
        let mut end = body.len();
        for (j, c) in body.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = j + 1;
                        break;
                    }
                }
                _ => {}
            }
        }
        rest = &body[end..];
    }
    out.push_str(rest);
    out
}

/// The parser's sources (the loaders and helpers), without the schema that declares the
/// keywords and the support module.
fn parser_code() -> String {
    let src = root().join("crates/rvs-conf/src");
    let mut out = String::new();
    let mut stack = vec![src];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs")
                && name != "schema.rs"
                && name != "support.rs"
            {
                out.push_str(&without_test_modules(&std::fs::read_to_string(&p).unwrap()));
                out.push('\n');
            }
        }
    }
    out
}

/// The string literals that start the arms of every `match ….name() {` in `code`: the
/// keywords a loader handles.
fn matched_keywords(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find("name() {") {
        let body = &rest[i + "name() {".len()..];
        let mut depth = 1usize;
        let mut end = body.len();
        let mut line_start = true;
        for (j, c) in body.char_indices() {
            match c {
                '{' | '(' | '[' => depth += 1,
                '}' | ')' | ']' => {
                    depth -= 1;
                    if depth == 0 {
                        end = j;
                        break;
                    }
                }
                '"' if depth == 1 && line_start => {
                    // An arm: `"a" | "b" => …`.
                    let arm = body[j..].split("=>").next().unwrap_or("");
                    let arm = arm.split(" if ").next().unwrap_or(""); // a guard
                    out.extend(arm.split('|').filter_map(|alt| {
                        let t = alt.trim().trim_matches('"');
                        (!t.is_empty() && !t.contains(' ')).then(|| t.to_owned())
                    }));
                }
                _ => {}
            }
            if c == '\n' {
                line_start = true;
            } else if !c.is_whitespace() && c != '|' {
                line_start = false;
            }
        }
        rest = &body[end..];
    }
    out
}

/// Keywords are declared once, in `rvs_conf::schema` (name, shape, support): a loader that
/// matches a keyword the schema does not declare would never see it (the tree builder
/// rejects it first), and an applied keyword that no loader handles would be silently
/// dropped.
#[test]
fn every_handled_keyword_is_declared_and_every_applied_one_handled() {
    let declared = rvs_conf::schema::all_names();
    let code = parser_code();
    let handled = matched_keywords(&code);
    assert!(
        handled.len() > 200,
        "the arm scanner found only {handled:?}"
    );
    let undeclared: Vec<&String> = handled
        .iter()
        .filter(|k| !declared.contains(&k.as_str()))
        .collect();
    assert!(
        undeclared.is_empty(),
        "loaders match keywords the schema does not declare: {undeclared:?}"
    );
    let unhandled: Vec<String> = rvs_conf::schema::every_keyword()
        .into_iter()
        .filter(|(_, k)| matches!(k.support, Support::Applied(f) if !f.starts_with('-')))
        .filter(|(_, k)| !code.contains(&format!("\"{}\"", k.name)))
        .map(|(b, k)| format!("{b}/{}", k.name))
        .collect();
    assert!(
        unhandled.is_empty(),
        "declared applied, but no loader names them: {unhandled:?}"
    );
}

/// Whether `code` reads the field `name`: `.name` as a whole word, or `name` in a
/// destructuring pattern (`{ name, .. }`, `name: x`).
fn reads(code: &str, name: &str) -> bool {
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    code.match_indices(name).any(|(i, _)| {
        let before = code[..i].chars().next_back();
        let after = code[i + name.len()..].chars().next();
        if before.is_some_and(ident) || after.is_some_and(ident) {
            return false;
        }
        before == Some('.')
            || (code[..i].trim_end().ends_with(['{', ','])
                && code[i + name.len()..]
                    .trim_start()
                    .starts_with([',', '}', ':']))
    })
}

#[test]
fn every_applied_keyword_is_read_outside_the_parser() {
    let model = std::fs::read_to_string(root().join("crates/rvs-conf/src/model.rs")).unwrap();
    let code = consumers();
    let mut unread = Vec::new();
    for (block, kw) in rvs_conf::schema::every_keyword() {
        let (kws, Support::Applied(field)) = (kw.name, kw.support) else {
            continue;
        };
        if field.starts_with('-') {
            continue;
        }
        let (strukt, name) = field.split_once('.').expect("Struct.field");
        // The field exists in that struct of the model...
        let body = model
            .split(&format!("pub struct {strukt} {{"))
            .nth(1)
            .and_then(|b| b.split("\n}").next())
            .unwrap_or_else(|| {
                panic!("{field} ({block}/{kws:?}): no struct {strukt} in the model")
            });
        assert!(
            body.contains(&format!("pub {name}:")),
            "{field} ({block}/{kws:?}): {strukt} has no field {name}"
        );
        // ...and some consumer reads it.
        if !reads(&code, name) {
            unread.push(format!("{block}/{kws:?} -> {field}"));
        }
    }
    assert!(
        unread.is_empty(),
        "marked applied, but nothing outside rvs-conf reads the value: {unread:?}"
    );
}

/// docs/keywords.md, from the table.
fn render() -> String {
    let mut by_block: BTreeMap<&str, Vec<(&str, Support)>> = BTreeMap::new();
    for (b, k) in rvs_conf::schema::every_keyword() {
        by_block
            .entry(b)
            .or_default()
            .push((k.name, support(b, k.name).unwrap()));
    }
    let (mut applied, mut not) = (0, 0);
    for v in by_block.values() {
        for (_, s) in v {
            match s {
                Support::Applied(_) => applied += 1,
                Support::NotApplied(_) => not += 1,
                Support::Spelling(_) => {}
            }
        }
    }
    let mut out = String::from(
        "# keepalived's keywords in rvs\n\n\
         Generated from `crates/rvs-conf/src/schema.rs` by `crates/rvs/tests/keywords.rs`\n\
         (`RVS_BLESS=1 cargo test -p rvs --test keywords` rewrites it; the test fails when it is\n\
         out of date). Every keyword keepalived 2.2.7 knows (and the few 2.4 ones rvs accepts),\n\
         by the block it is written in:\n\n\
         - **applied**: rvs does what keepalived does with it; the column names the model value\n  \
           it sets, which the test checks is read outside the parser (`-`: structure);\n\
         - **not applied**: read and checked, but rvs does not act on it. `rvs check` warns at\n  \
           its line with what is lost, `rvs check --strict` fails on it (add\n  \
           `--keepalived-verdict` for `keepalived -t`'s verdict alone), `rvs run` logs it at\n  \
           start, and `rvs check --json` lists it under `not_applied`;\n\
         - **spelling**: another keyword's deprecated or alternate name.\n\n",
    );
    let _ = writeln!(out, "{applied} keyword uses applied, {not} not applied.");
    // The keywords of keepalived 2.2.7 (as Debian builds it) that rvs leaves unapplied
    // somewhere: the newer ones, and those inside a newer block, are not its keywords.
    let newer = rvs_conf::schema::NEWER_THAN_2_2_7;
    let mut unapplied: Vec<&str> = by_block
        .iter()
        .filter(|(b, _)| !newer.contains(b))
        .flat_map(|(_, v)| v.iter())
        .filter(|(k, s)| matches!(s, Support::NotApplied(_)) && !newer.contains(k))
        .map(|(k, _)| *k)
        .collect();
    unapplied.sort_unstable();
    unapplied.dedup();
    let list = |v: &[&str]| {
        v.iter()
            .map(|k| format!("`{k}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let _ = writeln!(
        out,
        "\nOf the keywords keepalived 2.2.7 (Debian's build) knows, {} are not applied \
         somewhere they can be written: {}.\n\nAccepted, but unknown to that keepalived \
         (`keepalived_diff.rs` checks that it calls each unknown): {}.",
        unapplied.len(),
        list(&unapplied),
        list(newer)
    );
    for (block, kws) in by_block {
        let title = if block.is_empty() { "top level" } else { block };
        let _ = write!(
            out,
            "\n## {title}\n\n| keyword | rvs | detail |\n|---|---|---|\n"
        );
        for (k, s) in kws {
            let (what, detail) = match s {
                Support::Applied(f) => ("applied", f),
                Support::NotApplied(l) => ("**not applied**", l),
                Support::Spelling(o) => ("spelling", o),
            };
            let _ = writeln!(out, "| `{k}` | {what} | {detail} |");
        }
    }
    out
}

#[test]
fn docs_keywords_md_is_generated_from_the_table() {
    let path = root().join("docs/keywords.md");
    let want = render();
    if std::env::var_os("RVS_BLESS").is_some() {
        std::fs::write(&path, &want).unwrap();
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "docs/keywords.md is out of date: RVS_BLESS=1 cargo test -p rvs --test keywords"
    );
}

/// The user's view: a keyword rvs does not apply is warned about at its line, with what is
/// lost; `--strict` fails on it, `--strict --keepalived-verdict` does not (keepalived runs
/// it), and `--json` lists it.
#[test]
fn a_keyword_rvs_does_not_apply_is_warned_at_its_line() {
    let dir = std::env::temp_dir().join(format!("rvs-kw-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("k.conf");
    std::fs::write(
        &f,
        "global_defs {\n    nftables_ipvs\n    router_id lb1\n    vrrp_version 2\n    \
         nftables_ipvs_priority 5\n}\nvrrp_instance V {\n    interface eth0\n    \
         virtual_router_id 9\n    use_vmac_addr\n    virtual_ipaddress {\n        \
         198.18.0.1\n    }\n}\nvirtual_server 198.18.0.1 80 {\n    lvs_sched rr\n    \
         lvs_method NAT\n    protocol TCP\n    real_server 198.18.0.2 80 {\n        \
         HTTP_GET {\n            url {\n                path /\n                \
         regex \"ok\"\n            }\n        }\n    }\n}\n",
    )
    .unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_rvs"))
            .args(args)
            .arg("-f")
            .arg(&f)
            .output()
            .unwrap()
    };
    let plain = run(&["check"]);
    let err = String::from_utf8_lossy(&plain.stderr);
    assert!(plain.status.success(), "{err}");
    for want in [
        "k.conf:2:5: warning: 'nftables_ipvs' is not applied by rvs: keepalived's other firewall settings",
        "k.conf:5:5: warning: 'nftables_ipvs_priority' is not applied by rvs: keepalived's other firewall settings",
        "k.conf:10:5: warning: 'use_vmac_addr' is not applied by rvs",
        "valid (0 errors, 3 warnings, 3 not applied by rvs)",
    ] {
        assert!(err.contains(want), "{want}\n{err}");
    }
    assert_eq!(run(&["check", "--strict"]).status.code(), Some(1));
    assert!(run(&["check", "--strict", "--keepalived-verdict"])
        .status
        .success());
    let json = run(&["check", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let lines: Vec<u64> = v["not_applied"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, [2, 5, 10]);
    // `regex` is applied now (issue #18): no word about it.
    assert!(!err.contains("'regex'"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
