//! Differential test against the real keepalived (Debian's 2.2.7): for every fixture,
//! `keepalived -t -f` and `rvs check --strict --keepalived-verdict -f` must agree on
//! valid/invalid (keywords rvs does not apply are docs/keywords.md's business), and
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
    clippy::items_after_statements,
    clippy::format_push_string
)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// (fixture, keepalived's verdict is invalid, why rvs --strict differs)
const KNOWN: &[(&str, bool, &str)] = &[
    (
        "40-include-loop.conf",
        false,
        "keepalived recurses until it runs out of file descriptors, then accepts; rvs reports the loop",
    ),
    (
        "23-fullnat.conf",
        true,
        "FULLNAT in the LVS FULLNAT and DPVS forks' syntax (local_address_group, \
         laddr_group_name, lb_kind FNAT): stock keepalived knows none of it",
    ),
    (
        "22-rvs-bgp.conf",
        true,
        "an rvs extension (rvs_bgp): keepalived rejects it as an unknown keyword, as the rvs_ \
         prefix intends, rather than misreading it",
    ),
];

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

/// A directory removed when the test ends, pass or fail.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

struct Netns(String, std::cell::Cell<usize>);

impl Netns {
    fn new(ifaces: &[String]) -> Netns {
        Self::named(&format!("rvs-diff-{}", std::process::id()), ifaces)
    }

    fn named(name: &str, ifaces: &[String]) -> Netns {
        let s = Command::new("ip")
            .args(["netns", "add", name])
            .status()
            .unwrap();
        assert!(s.success(), "ip netns add {name} failed");
        let ns = Netns(name.to_owned(), std::cell::Cell::new(0));
        for ifname in ifaces {
            ns.add(ifname);
        }
        ns
    }

    /// Adds an interface of that name (a veth whose peer stays in the namespace), up.
    fn add(&self, ifname: &str) {
        let ip = |args: &[&str]| {
            let s = Command::new("ip").args(args).status().unwrap();
            assert!(s.success(), "ip {args:?} failed");
        };
        let i = self.1.get();
        self.1.set(i + 1);
        let peer = format!("rvsp{i}");
        ip(&[
            "-n", &self.0, "link", "add", ifname, "type", "veth", "peer", "name", &peer,
        ]);
        ip(&["-n", &self.0, "link", "set", ifname, "up"]);
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
            .args([
                "check",
                "--strict",
                "--keepalived-verdict",
                "-q",
                "-i",
                "lb1",
                "-f",
            ])
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

/// A row of the wild-corpus table in docs/compat.md: a file where rvs and keepalived
/// 2.2.7 disagree, and why.
struct Known {
    file: String,
    ka_invalid: bool,
    strict_invalid: bool,
    plain_invalid: bool,
}

/// The table under "## The wild corpus" in docs/compat.md: `| file | keepalived -t |
/// rvs check --strict | rvs check | why |`, verdicts `valid`/`invalid`.
fn wild_known() -> Vec<Known> {
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/compat.md"))
            .unwrap();
    let section = doc
        .split("\n## ")
        .find(|s| s.starts_with("The wild corpus"))
        .expect("docs/compat.md has a \"## The wild corpus\" section");
    let verdict = |s: &str, row: &str| match s.trim() {
        "valid" => false,
        "invalid" => true,
        other => panic!("docs/compat.md: verdict '{other}' is not valid/invalid in: {row}"),
    };
    section
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|row| {
            let c: Vec<&str> = row.split('|').map(str::trim).collect();
            assert!(c.len() >= 6, "docs/compat.md: short row: {row}");
            assert!(
                !c[5].is_empty(),
                "docs/compat.md: a row without its reason: {row}"
            );
            Known {
                file: c[1].trim_matches('`').to_owned(),
                ka_invalid: verdict(c[2], row),
                strict_invalid: verdict(c[3], row),
                plain_invalid: verdict(c[4], row),
            }
        })
        .collect()
}

/// The interfaces keepalived says are missing (`interface X for vrrp_instance Y doesn't
/// exist`, `… for VROUTE nexthop …`): names that substitution builds are found this way.
fn missing_interfaces(ka_stderr: &str) -> Vec<String> {
    ka_stderr
        .lines()
        .filter_map(|l| {
            let rest = l.split("interface ").nth(1)?;
            let (name, tail) = rest.split_once(' ')?;
            tail.starts_with("for ")
                .then(|| tail.contains("doesn't exist"))
                .filter(|x| *x)
                .map(|_| name.to_owned())
        })
        .collect()
}

/// Issue #17: every real keepalived.conf of `../shared/corpus/wild` (read in place), checked
/// by `keepalived -t` and by `rvs check --strict`, both from the corpus directory (so that
/// `${_PWD}` and relative includes mean the same), in a network namespace with the
/// interfaces the files name. Any disagreement must be listed, with its reason, in the
/// wild-corpus table of docs/compat.md; a listed file that now agrees fails too (the table
/// must say what is true).
#[test]
#[ignore = "needs root, keepalived and ../shared/corpus/wild: ./test.sh runs it as root"]
fn agrees_with_keepalived_on_the_wild_corpus() {
    if let Err(why) = prerequisites() {
        panic!("the keepalived differential test cannot run: {why} (.ci/run installs keepalived)");
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus/wild");
    assert!(
        dir.is_dir(),
        "{} is missing: the wild corpus lives in ../shared beside the repository",
        dir.display()
    );
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| {
            Path::new(n).extension().is_some_and(|e| e == "conf")
                && n.len() > 4
                && n[..3].chars().all(|c| c.is_ascii_digit())
        })
        .collect();
    files.sort();
    assert!(
        files.len() >= 50,
        "only {} files in the wild corpus",
        files.len()
    );
    let known = wild_known();

    let ns = Netns::named(&format!("rvs-wild-{}", std::process::id()), &[]);
    let mut have: Vec<String> = Vec::new();
    let tmp = TempDir(std::env::temp_dir().join(format!("rvs-wild-{}", std::process::id())));
    std::fs::create_dir_all(&tmp.0).unwrap();
    let pid = |p: &str| tmp.0.join(p).display().to_string();
    let keepalived = |name: &str| {
        Command::new("ip")
            .args(["netns", "exec", &ns.0, "keepalived", "-t", "-f", name])
            .args(["-p", &pid("k.pid"), "-r", &pid("r.pid")])
            .args(["-c", &pid("c.pid"), "-b", &pid("b.pid")])
            .current_dir(&dir)
            .output()
            .unwrap()
    };
    let rvs = |args: &[&str], name: &str| {
        !Command::new(env!("CARGO_BIN_EXE_rvs"))
            .args(args)
            .args(["-q", "-f", name])
            .current_dir(&dir)
            .output()
            .unwrap()
            .status
            .success()
    };
    let mut report = Vec::new();
    let mut agreed = 0;
    for name in &files {
        // keepalived's verdict with every interface the file names present: add what it
        // says is missing and ask again.
        let mut ka = keepalived(name);
        for _ in 0..3 {
            let missing: Vec<String> = missing_interfaces(&String::from_utf8_lossy(&ka.stderr))
                .into_iter()
                .filter(|n| {
                    !have.contains(n)
                        && n.len() < 16
                        && n.chars()
                            .all(|c| c.is_ascii_alphanumeric() || ".-_".contains(c))
                })
                .collect();
            if missing.is_empty() {
                break;
            }
            for n in missing {
                if !have.contains(&n) {
                    ns.add(&n);
                    have.push(n);
                }
            }
            ka = keepalived(name);
        }
        let ka_invalid = !ka.status.success();
        let strict_invalid = rvs(&["check", "--strict", "--keepalived-verdict"], name);
        let plain_invalid = rvs(&["check"], name);
        let row = known.iter().find(|k| &k.file == name);
        let agree = ka_invalid == strict_invalid && (ka_invalid || !plain_invalid);
        match row {
            None if agree => agreed += 1,
            None => report.push(format!(
                "{name}: keepalived {} / rvs --strict {} / rvs {} and no row in docs/compat.md\n{}",
                v(ka_invalid),
                v(strict_invalid),
                v(plain_invalid),
                String::from_utf8_lossy(&ka.stderr)
            )),
            Some(k) => {
                if (k.ka_invalid, k.strict_invalid, k.plain_invalid)
                    != (ka_invalid, strict_invalid, plain_invalid)
                {
                    report.push(format!(
                        "{name}: docs/compat.md says keepalived {} / rvs --strict {} / rvs {}, \
                         measured {} / {} / {}",
                        v(k.ka_invalid),
                        v(k.strict_invalid),
                        v(k.plain_invalid),
                        v(ka_invalid),
                        v(strict_invalid),
                        v(plain_invalid)
                    ));
                } else if agree {
                    report.push(format!(
                        "{name}: listed in docs/compat.md but rvs and keepalived agree: remove the row"
                    ));
                }
            }
        }
    }
    for k in &known {
        assert!(
            files.contains(&k.file),
            "docs/compat.md lists {}, which is not in the corpus",
            k.file
        );
    }
    drop(ns);
    eprintln!(
        "wild corpus: {agreed} of {} files agree with keepalived; {} documented differences",
        files.len(),
        known.len()
    );
    assert!(report.is_empty(), "disagreements:\n{}", report.join("\n"));
}

fn v(invalid: bool) -> &'static str {
    if invalid {
        "invalid"
    } else {
        "valid"
    }
}

/// The paths from the top of keepalived.conf to each place keyword `name` is declared.
fn paths_to(
    block: &'static [rvs_conf::schema::Kw],
    name: &str,
    path: &mut Vec<&'static str>,
    out: &mut Vec<Vec<&'static str>>,
) {
    let kws = rvs_conf::schema::names(block)
        .into_iter()
        .filter_map(|n| rvs_conf::schema::keyword(block, n));
    for kw in kws {
        if kw.name == name {
            let mut p = path.clone();
            p.push(kw.name);
            out.push(p);
        }
        if let rvs_conf::schema::Shape::Block(inner) = kw.shape {
            // Inside a block keepalived 2.2.7 does not know, its keywords are never read:
            // the block's own check covers them.
            if rvs_conf::schema::NEWER_THAN_2_2_7.contains(&kw.name) {
                if inner.iter().any(|k| k.name == name) {
                    let mut p = path.clone();
                    p.push(kw.name);
                    out.push(p);
                }
                continue;
            }
            path.push(kw.name);
            paths_to(inner, name, path, out);
            path.pop();
        }
    }
}

/// What a block's header needs for keepalived to read the block at all.
fn header(block: &str) -> String {
    match block {
        "global_defs" | "vrrp_script" | "url" | "SSL" | "authentication" => block.to_owned(),
        "virtual_server" => "virtual_server 198.18.0.1 80".to_owned(),
        "real_server" | "sorry_server" => format!("{block} 198.18.0.2 80"),
        _ if block.chars().all(|c| c.is_ascii_uppercase() || c == '_') => block.to_owned(),
        _ => format!("{block} X"),
    }
}

/// docs/keywords.md leaves the keywords of `schema::NEWER_THAN_2_2_7` out of the count
/// of keepalived 2.2.7's keywords: each is one Debian's keepalived 2.2.7 does not know
/// (newer keywords, and those of features its build leaves out: ipsets, ipvlan). Each is
/// written alone where the schema declares it, and `keepalived -t` must call it unknown.
#[test]
#[ignore = "needs keepalived: ./test.sh runs it as root"]
fn keywords_left_out_of_the_2_2_7_count_are_unknown_to_keepalived() {
    assert!(
        Path::new("/usr/sbin/keepalived").exists(),
        "keepalived is not installed (apt-get install keepalived)"
    );
    let dir = TempDir(std::env::temp_dir().join(format!("rvs-newer-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0).unwrap();
    let mut checked = 0;
    for name in rvs_conf::schema::NEWER_THAN_2_2_7 {
        let mut paths = Vec::new();
        paths_to(rvs_conf::schema::ROOT, name, &mut Vec::new(), &mut paths);
        assert!(
            !paths.is_empty(),
            "{name} is declared nowhere in the schema"
        );
        for p in paths {
            let (kw, blocks) = p.split_last().unwrap();
            let mut text = String::new();
            for b in blocks {
                text += &format!("{} {{\n", header(b));
            }
            text += &format!("{kw} 1\n");
            for _ in blocks {
                text += "}\n";
            }
            let f = dir.0.join("k.conf");
            std::fs::write(&f, &text).unwrap();
            let out = Command::new("keepalived")
                .args(["-t", "-l", "-D", "-f"])
                .arg(&f)
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                err.contains(&format!("Unknown keyword '{kw}'")),
                "keepalived 2.2.7 knows '{kw}' in {}:\n{text}\n{err}",
                blocks.join(" > ")
            );
            checked += 1;
        }
    }
    assert!(checked >= rvs_conf::schema::NEWER_THAN_2_2_7.len());
}

/// `include_check` and the include variants: for each case, keepalived 2.2.7's verdict
/// (`keepalived -t`) and rvs's (`rvs check --strict --keepalived-verdict`) agree on which
/// failed include check is a configuration error.
#[test]
#[ignore = "needs keepalived: ./test.sh runs it as root"]
fn include_checks_agree_with_keepalived() {
    assert!(
        Path::new("/usr/sbin/keepalived").exists(),
        "keepalived is not installed (apt-get install keepalived)"
    );
    let dir = TempDir(std::env::temp_dir().join(format!("rvs-inc-{}", std::process::id())));
    let d = &dir.0;
    std::fs::create_dir_all(d.join("sub")).unwrap();
    std::fs::create_dir_all(d.join("empty")).unwrap();
    let part = "global_defs {\n  router_id a\n}\n";
    std::fs::write(d.join("a.conf"), part).unwrap();
    std::fs::write(d.join("b.conf"), part).unwrap();
    std::fs::write(d.join("c.conf"), "global_defs {\n  include_check\n}\n").unwrap();
    std::fs::write(d.join("x.sh"), part).unwrap();
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(d.join("x.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let checks = |c: &str| format!("global_defs {{\n  include_check{c}\n}}\n");
    let cases = [
        "include missing.conf\n".to_owned(),
        "includem missing.conf\n".to_owned(),
        "includer missing.conf\n".to_owned(),
        "includew empty/*.conf\n".to_owned(),
        "includer empty/*.conf\n".to_owned(),
        "include empty/*.conf\n".to_owned(),
        "include nodir/*.conf\n".to_owned(),
        "includem nodir/*.conf\n".to_owned(),
        "include x.sh\n".to_owned(),
        "includer x.sh\n".to_owned(),
        "include sub\n".to_owned(),
        "includea sub\n".to_owned(),
        "include {a,nothere}.conf\n".to_owned(),
        "includeb {a,nothere}.conf\n".to_owned(),
        "includem {a,nothere}.conf\n".to_owned(),
        "include {a,b}.conf\n".to_owned(),
        format!("{}include empty/*.conf\n", checks("")),
        format!("{}include missing.conf\n", checks(" read")),
        format!("{}include missing.conf\n", checks(" match")),
        format!("{}include x.sh\n", checks(" read")),
        format!("{}include empty/*.conf\n", checks(" +wildcard_match")),
        format!("{}include {{a,nothere}}.conf\n", checks(" brace_match")),
        format!("{}includer x.sh\n", checks(" -read")),
        format!("{}include x.sh\n", checks(" read -read")),
        "include c.conf\ninclude missing.conf\n".to_owned(),
    ];
    let mut disagree = Vec::new();
    for (i, text) in cases.iter().enumerate() {
        let f = d.join(format!("k{i}.conf"));
        std::fs::write(&f, text).unwrap();
        let ka = Command::new("keepalived")
            .args(["-t", "-l", "-D", "-f"])
            .arg(&f)
            .current_dir(d)
            .output()
            .unwrap();
        let rvs = Command::new(env!("CARGO_BIN_EXE_rvs"))
            .args(["check", "--strict", "--keepalived-verdict", "-f"])
            .arg(&f)
            .current_dir(d)
            .output()
            .unwrap();
        let (k, r) = (ka.status.success(), rvs.status.success());
        if k != r {
            disagree.push(format!(
                "{text}  keepalived: {} ({})\n  rvs: {} ({})",
                v(!k),
                String::from_utf8_lossy(&ka.stderr).trim(),
                v(!r),
                String::from_utf8_lossy(&rvs.stderr).trim()
            ));
        }
    }
    assert!(disagree.is_empty(), "{}", disagree.join("\n\n"));
}
