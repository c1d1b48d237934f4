//! The speaker against the real BIRD 2 (Debian's bird2): started, announcing, changed in
//! place, stopped. Sessions with routers are tested in namespaces
//! (`crates/rvs/tests/cluster.rs`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use rvs_bgp::{BfdTimers, Bird, Settings, Speaker as _};
use rvs_types::{Announcement, Community};
use std::time::Duration;

fn require_bird() {
    let ok = std::process::Command::new("bird")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success() || !o.stderr.is_empty());
    assert!(
        ok,
        "this test needs BIRD 2 on PATH (apt-get install bird2; .ci/run installs it)"
    );
}

fn vip(a: &str, med: Option<u32>) -> Announcement {
    Announcement {
        vip: a.parse().unwrap(),
        communities: vec![Community(65000, 100)],
        med,
    }
}

/// The routes BIRD's static protocols hold now.
fn static_routes(b: &Bird) -> String {
    b.control()
        .command("show route protocol rvs_vips4 all")
        .unwrap()
        .text()
        + &b.control()
            .command("show route protocol rvs_vips6 all")
            .unwrap()
            .text()
}

#[test]
#[ignore = "needs BIRD 2 (bird2): ./test.sh runs it as root, .ci/run installs it"]
fn bird_announces_what_it_is_told_and_changes_in_place() {
    require_bird();
    let dir = std::env::temp_dir().join(format!("rvs-bgp-test-{}", std::process::id()));
    let settings = Settings {
        router_id: Some("198.18.0.2".parse().unwrap()),
        local_as: 65001,
        neighbors: Vec::new(),
        bfd: BfdTimers {
            interval: Duration::from_millis(100),
            multiplier: 3,
        },
        dir: dir.clone(),
        bird: "bird".into(),
    };
    let mut b = Bird::start(settings.clone(), &[vip("198.19.1.10", Some(10))]).unwrap();
    let pid = b.pid();
    let r = static_routes(&b);
    assert!(r.contains("198.19.1.10/32"), "{r}");
    assert!(r.contains("(65000,100)"), "{r}");
    b.announce(&[vip("198.19.1.11", None), vip("fd00:198:18::11", None)])
        .unwrap();
    let r = static_routes(&b);
    assert!(!r.contains("198.19.1.10/32"), "{r}");
    assert!(
        r.contains("198.19.1.11/32") && r.contains("fd00:198:18::11/128"),
        "{r}"
    );
    // Changed in place: the same BIRD.
    assert_eq!(b.pid(), pid);
    // A configuration BIRD refuses is an error with BIRD's text, and the old one runs.
    let mut bad = settings.clone();
    bad.local_as = 0;
    bad.neighbors.push(rvs_bgp::Neighbor {
        address: "198.18.0.1".parse().unwrap(),
        remote_as: 65000,
        bfd: false,
        hold_time: None,
        source_address: None,
    });
    let e = b.reconfigure(bad).unwrap_err().to_string();
    assert!(e.contains("BIRD refused `configure`"), "{e}");
    assert!(static_routes(&b).contains("198.19.1.11/32"));
    b.stop();
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists() || {
            std::thread::sleep(Duration::from_millis(200));
            !std::path::Path::new(&format!("/proc/{pid}")).exists()
        }
    );
    let _ = std::fs::remove_dir_all(dir);
}
