//! `rvs check` and the `keepalived` personality, driven as a user would: the real binary.

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

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
}

fn rvs() -> Command {
    Command::new(env!("CARGO_BIN_EXE_rvs"))
}

#[test]
fn check_exit_codes_and_format() {
    let ok = rvs()
        .args(["check", "-f"])
        .arg(fixtures().join("seeds/seed000-master.repaired.conf"))
        .output()
        .unwrap();
    assert_eq!(ok.status.code(), Some(0));
    let bad = rvs()
        .args(["check", "-f"])
        .arg(fixtures().join("corpus/30-bad-vrid.conf"))
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    let err = String::from_utf8_lossy(&bad.stderr);
    // FILE:LINE:COL: error: message, then the source line and a caret under the value.
    assert!(
        err.contains("30-bad-vrid.conf:3:23: error: number '300' outside range [1, 255]"),
        "{err}"
    );
    assert!(
        err.contains("3 |     virtual_router_id 300\n  |                       ^^^"),
        "{err}"
    );
    // Warnings alone pass, unless --strict (keepalived -t semantics).
    let warn = fixtures().join("corpus/44-no-protocol.conf");
    assert_eq!(
        rvs()
            .args(["check", "-f"])
            .arg(&warn)
            .status()
            .unwrap()
            .code(),
        Some(0)
    );
    assert_eq!(
        rvs()
            .args(["check", "--strict", "-f"])
            .arg(&warn)
            .status()
            .unwrap()
            .code(),
        Some(1)
    );
    let missing = rvs()
        .args(["check", "-f", "/nonexistent/rvs.conf"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr)
        .contains("cannot read configuration file '/nonexistent/rvs.conf'"));
}

#[test]
fn check_json_is_the_model() {
    let out = rvs()
        .args(["check", "--json", "-f"])
        .arg(fixtures().join("seeds/seed004-master.repaired.conf"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["virtual_servers"][0]["lb_algo"], "rr");
    assert_eq!(v["virtual_servers"][0]["forwarding"]["method"], "DR");
    assert_eq!(
        v["virtual_servers"][0]["real_servers"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(v["vrrp_instances"][0]["virtual_router_id"], 51);
    assert_eq!(
        v["vrrp_instances"][0]["authentication"]["auth_pass"],
        "1111"
    );
}

#[test]
fn keepalived_personality() {
    let dir = std::env::temp_dir().join(format!("rvs-argv0-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let link = dir.join("keepalived");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_rvs"), &link).unwrap();
    let ok = Command::new(&link)
        .args(["-t", "-f"])
        .arg(fixtures().join("corpus/01-minimal-vs.conf"))
        .status()
        .unwrap();
    assert_eq!(ok.code(), Some(0));
    // keepalived -t exits 5 on a configuration error, and counts warnings such as a
    // missing protocol as errors: so does the personality.
    let bad = Command::new(&link)
        .args(["--config-test", "--use-file"])
        .arg(fixtures().join("corpus/44-no-protocol.conf"))
        .status()
        .unwrap();
    assert_eq!(bad.code(), Some(5));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn sim_schedules_like_ipvs() {
    use std::io::Write as _;
    // seed004 (repaired): rr, DR, persistence 50 s, real servers .31 then .32 in the config:
    // the kernel lists .32 first, so rr starts there; the same client sticks (persistence).
    let conf = fixtures().join("seeds/seed004-master.repaired.conf");
    let mut child = rvs()
        .args(["sim", "-f"])
        .arg(&conf)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"# comment\ntcp 198.18.1.1:1000 172.16.0.30:80\ntcp 198.18.1.2:1000 172.16.0.30:80 close\ntcp 198.18.1.1:2000 172.16.0.30:80\n@100 tcp 198.18.1.3:1000 172.16.0.30:80\ntcp 198.18.1.9:1 172.16.0.30:81\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "tcp 198.18.1.1:1000 172.16.0.30:80 -> 172.16.0.32:80\n\
         tcp 198.18.1.2:1000 172.16.0.30:80 close -> 172.16.0.31:80\n\
         tcp 198.18.1.1:2000 172.16.0.30:80 -> 172.16.0.32:80\n\
         @100 tcp 198.18.1.3:1000 172.16.0.30:80 -> 172.16.0.32:80\n\
         tcp 198.18.1.9:1 172.16.0.30:81 -> none\n"
    );
    // A bad flow line is reported with its line number, not a panic.
    let dir = std::env::temp_dir().join(format!("rvs-sim-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let flows = dir.join("bad.flows");
    std::fs::write(
        &flows,
        "tcp 198.18.1.1:1000 172.16.0.30:80\nicmp 1.2.3.4 5.6.7.8\n",
    )
    .unwrap();
    let out = rvs()
        .args(["sim", "-f"])
        .arg(&conf)
        .arg("--flows")
        .arg(&flows)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("bad.flows:2: error: unknown protocol 'icmp'"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn keepalived_personality_runs_the_daemon() {
    let dir = std::env::temp_dir().join(format!("rvs-ka-run-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let link = dir.join("keepalived");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_rvs"), &link).unwrap();
    let conf = dir.join("k.conf");
    std::fs::write(&conf, "virtual_server 127.21.1.1 8080 {\n    lvs_sched rr\n    lvs_method NAT\n    protocol TCP\n    real_server 127.21.0.1 80 {\n    }\n}\n").unwrap();
    let pid = dir.join("k.pid");
    let mut child = Command::new(&link)
        .arg("-f")
        .arg(&conf)
        .args(["-n", "-l", "-D", "-p"])
        .arg(&pid)
        .spawn()
        .unwrap();
    let t = std::time::Instant::now();
    while !pid.exists() {
        assert!(
            t.elapsed() < std::time::Duration::from_secs(10),
            "keepalived -n did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(std::net::TcpStream::connect("127.21.1.1:8080").is_ok());
    let p = rustix::process::Pid::from_raw(child.id().cast_signed()).unwrap();
    rustix::process::kill_process(p, rustix::process::Signal::TERM).unwrap();
    assert!(child.wait().unwrap().success());
    assert!(!pid.exists(), "pid file removed on exit");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn genhash_prints_the_body_digest() {
    let l = std::net::TcpListener::bind("127.22.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for mut s in l.incoming().flatten() {
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf);
            let _ = s.write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nabc");
        }
    });
    let out = rvs()
        .args(["genhash", "-s", "127.22.0.1", "-p"])
        .arg(addr.port().to_string())
        .args(["-u", "/health"])
        .output()
        .unwrap();
    assert!(out.status.success());
    // md5("abc")
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("MD5SUM = 900150983cd24fb0d6963f7d28e17f72")
    );
}

/// `rvs cleanup` (systemd's `ExecStopPost`) with a pid file that names no process — 0,
/// a negative number, garbage, empty — cleans up as after a crash instead of failing; a
/// pid file naming a running process that is not rvs does not stop it either. `rvs
/// reload` refuses such pid files with an error (no panic, and never a signal to a
/// process group: kill(2) takes -1 as every process).
#[test]
fn cleanup_takes_a_pid_file_naming_no_rvs_as_no_rvs() {
    let dir = std::env::temp_dir().join(format!("rvs-cli-cleanup-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let conf = dir.join("k.conf");
    std::fs::write(
        &conf,
        "virtual_server 198.18.0.1 80 {\n  lb_algo rr\n  lb_kind NAT\n  protocol TCP\n  real_server 198.18.0.2 80 {\n  }\n}\n",
    )
    .unwrap();
    let pid = dir.join("rvs.pid");
    for content in [
        "0\n".to_owned(),
        "-5\n".to_owned(),
        "x\n".to_owned(),
        String::new(),
        format!("{}\n", std::process::id()),
    ] {
        std::fs::write(&pid, &content).unwrap();
        let out = rvs()
            .args(["cleanup", "-f"])
            .arg(&conf)
            .arg("--pid-file")
            .arg(&pid)
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "pid file {content:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("nothing left behind"),
            "pid file {content:?}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        // With the config line a reload needs: the pid is what is refused.
        std::fs::write(&pid, format!("{}\n{}\n", content.trim(), conf.display())).unwrap();
        let out = rvs()
            .arg("reload")
            .arg("--pid-file")
            .arg(&pid)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(1),
            "reload, pid file {content:?}: {err}"
        );
        assert!(
            !err.contains("panicked") && err.starts_with("rvs: "),
            "reload, pid file {content:?}: {err}"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
