//! The crate graph's layering, checked from the manifests: dependencies point down, and
//! the I/O-free cores never link the config parser (ARCHITECTURE.md). A new edge between
//! rvs crates must be added here on purpose.

use std::collections::BTreeMap;
use std::path::Path;

/// Each rvs crate and the rvs crates it depends on (normal dependencies), lowest first.
const ALLOWED: &[(&str, &[&str])] = &[
    ("rvs-types", &[]),
    ("rvs-wire", &[]),
    ("rvs-packet", &[]),
    ("rvs-script", &[]),
    ("rvs-alert", &[]),
    // The AgentX subagent: a codec and a session; the MIB trees are built by the binary.
    ("rvs-snmp", &[]),
    // keepalived's -t checks the host: whether script_user exists; rvs_bgp's
    // communities are the shared vocabulary's.
    ("rvs-conf", &["rvs-script", "rvs-types"]),
    // The BGP speaker's driver (BIRD 2 as rvs's child): announcements in, BIRD's
    // configuration and control socket out.
    ("rvs-bgp", &["rvs-types"]),
    ("rvs-sched", &["rvs-types"]),
    ("rvs-adm", &["rvs-types"]),
    // The control API's JSON schema, and its conversions to and from ipvsadm's model.
    ("rvs-api", &["rvs-adm", "rvs-types"]),
    ("rvs-vrrp", &[]),
    ("rvs-bfd", &[]),
    ("rvs-desired", &["rvs-conf", "rvs-sched"]),
    // The proxy publishes its tables as ipvsadm lists them (rvs-adm's listing types).
    ("rvs-proxy", &["rvs-adm", "rvs-sched"]),
    ("rvs-ipvs", &["rvs-sched", "rvs-types"]),
    ("rvs-xdp", &["rvs-sched"]),
    (
        "rvs-check",
        &[
            "rvs-conf",
            "rvs-packet",
            "rvs-script",
            "rvs-types",
            "rvs-wire",
        ],
    ),
    // The daemon's sans-IO core: config, health and runtime changes in, desired state
    // and effects out.
    (
        "rvs-daemon",
        &[
            "rvs-adm",
            "rvs-conf",
            "rvs-desired",
            "rvs-sched",
            "rvs-script",
            "rvs-types",
            "rvs-vrrp",
        ],
    ),
    (
        "rvs-vrrpd",
        &[
            "rvs-conf",
            "rvs-packet",
            "rvs-vrrp",
            "rvs-wire",
            "rvs-script",
            "rvs-bfd",
        ],
    ),
];

/// The lines of a manifest's `[dependencies]` section, trimmed.
fn dependency_lines(manifest: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut in_deps = false;
    for line in manifest.lines() {
        let t = line.trim();
        if t.starts_with('[') {
            in_deps = t == "[dependencies]";
        } else if in_deps {
            out.push(t);
        }
    }
    out
}

/// The rvs crates a manifest's `[dependencies]` names.
fn rvs_deps(manifest: &str) -> Vec<String> {
    let mut out: Vec<String> = dependency_lines(manifest)
        .into_iter()
        .filter(|t| t.starts_with("rvs"))
        .map(|t| {
            t.chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                .collect()
        })
        .collect();
    out.sort();
    out
}

#[test]
fn dependencies_point_down() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    let mut seen = 0;
    for entry in std::fs::read_dir(&crates).expect("crates/") {
        let dir = entry.expect("crates/ entry").path();
        let name = dir
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("")
            .to_owned();
        let Ok(manifest) = std::fs::read_to_string(dir.join("Cargo.toml")) else {
            continue;
        };
        if name == "rvs" {
            continue; // the binary wires everything
        }
        let may = allowed
            .get(name.as_str())
            .unwrap_or_else(|| panic!("{name}: a new crate; list its place in ALLOWED"));
        let deps = rvs_deps(&manifest);
        for dep in &deps {
            assert!(
                may.contains(&dep.as_str()),
                "{name} depends on {dep}: not in its layer (tests/architecture.rs)"
            );
        }
        // Exact, so that ALLOWED stays the drawing of the graph (and the reading of the
        // manifest is checked too).
        assert_eq!(
            deps.len(),
            may.len(),
            "{name}: {deps:?} but ALLOWED says {may:?}"
        );
        seen += 1;
    }
    assert_eq!(seen, ALLOWED.len(), "a crate in ALLOWED is gone");
}

#[test]
fn the_data_planes_and_the_scheduler_never_link_the_parser() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for name in ["rvs-sched", "rvs-proxy", "rvs-ipvs", "rvs-xdp"] {
        let m = std::fs::read_to_string(crates.join(name).join("Cargo.toml")).expect(name);
        assert!(
            !rvs_deps(&m).iter().any(|d| d == "rvs-conf"),
            "{name} links the config parser"
        );
    }
}

/// The sans-IO cores link no async runtime, directly or through another rvs crate: they
/// take inputs and return decisions; the drivers do the I/O.
#[test]
fn the_sans_io_cores_link_no_runtime() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let manifest =
        |name: &str| std::fs::read_to_string(crates.join(name).join("Cargo.toml")).expect(name);
    for core in ["rvs-daemon", "rvs-sched", "rvs-vrrp", "rvs-desired"] {
        let mut todo = vec![core.to_owned()];
        let mut seen = std::collections::BTreeSet::new();
        while let Some(name) = todo.pop() {
            if !seen.insert(name.clone()) {
                continue;
            }
            let m = manifest(&name);
            for t in dependency_lines(&m) {
                assert!(
                    !t.starts_with("tokio") || t.contains("optional = true"),
                    "{core} links tokio through {name}"
                );
            }
            todo.extend(rvs_deps(&m));
        }
    }
}
