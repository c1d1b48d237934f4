//! rvs as a system service (issue #22): systemd's notify protocol spoken to a socket this
//! test owns, and the shipped unit checked by systemd's own tools.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{backend, Mode};
use std::fmt::Write as _;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn rvs() -> Command {
    Command::new(env!("CARGO_BIN_EXE_rvs"))
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The datagrams rvs sends to its `NOTIFY_SOCKET`, read until `until` accepts one.
struct Manager {
    sock: UnixDatagram,
    seen: Vec<String>,
}

impl Manager {
    fn bind(path: &Path) -> Manager {
        let sock = UnixDatagram::bind(path).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        Manager {
            sock,
            seen: Vec::new(),
        }
    }

    /// Reads datagrams until one satisfies `f` (returned), within `limit`.
    fn until(&mut self, what: &str, limit: Duration, f: impl Fn(&str) -> bool) -> String {
        let t = Instant::now();
        let mut buf = [0u8; 4096];
        while t.elapsed() < limit {
            if let Ok(n) = self.sock.recv(&mut buf) {
                let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
                self.seen.push(msg.clone());
                if f(&msg) {
                    return msg;
                }
            }
        }
        panic!("no {what} within {limit:?}; received: {:#?}", self.seen);
    }
}

fn field<'a>(msg: &'a str, key: &str) -> Option<&'a str> {
    msg.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `rvs run` on `DIR/k.conf` with its files in DIR and `NOTIFY_SOCKET` at `DIR/SOCKET`.
fn run_in(dir: &Path, socket: &str, more: impl FnOnce(&mut Command)) -> Killed {
    let mut c = rvs();
    c.args(["run", "--log-level", "warn", "--drain", "0", "-f"])
        .arg(dir.join("k.conf"))
        .arg("--pid-file")
        .arg(dir.join("pid"))
        .arg("--control")
        .arg(dir.join("ctl.sock"))
        .env("NOTIFY_SOCKET", dir.join(socket))
        .stdout(Stdio::null());
    more(&mut c);
    Killed(c.spawn().unwrap())
}

/// `Type=notify`: READY=1 (with a STATUS line) comes once the service listens; WATCHDOG=1
/// keeps coming at half of `WATCHDOG_USEC`; STATUS changes when a real server fails its
/// check; a reload is bracketed by RELOADING=1 (with `MONOTONIC_USEC`) and READY=1; SIGTERM
/// sends STOPPING=1. A check script does not inherit the protocol's variables.
#[test]
fn the_notify_protocol_follows_the_daemon() {
    let dir = std::env::temp_dir().join(format!("rvs-notify-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut mgr = Manager::bind(&dir.join("notify.sock"));
    // The script writes its environment, then answers "up" while a flag file exists.
    let script = dir.join("check.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nenv > {env}\ntest -e {flag}\n",
            env = dir.join("env.txt").display(),
            flag = dir.join("up").display()
        ),
    )
    .unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::write(dir.join("up"), "").unwrap();
    let _b = backend("127.77.0.2:9000", "a", Mode::Name);
    let conf = format!(
        "virtual_server 127.77.0.1 8080 {{\n    lb_kind NAT\n    protocol TCP\n    delay_loop 1\n\
         \x20   real_server 127.77.0.2 9000 {{\n        MISC_CHECK {{\n            misc_path {}\n\
         \x20       }}\n    }}\n}}\n",
        script.display()
    );
    std::fs::write(dir.join("k.conf"), &conf).unwrap();
    let mut child = run_in(&dir, "notify.sock", |c| {
        c.env("WATCHDOG_USEC", "400000");
    });
    let ready = mgr.until("READY=1", Duration::from_mins(1), |m| {
        m.lines().any(|l| l == "READY=1")
    });
    // Ready means serving: the virtual server accepts at once.
    std::net::TcpStream::connect("127.77.0.1:8080").expect("READY=1 before the listener");
    // keepalived's start: a real server is alive until its checker says otherwise.
    let status = field(&ready, "STATUS").expect("READY=1 carries a STATUS line");
    assert_eq!(status, "1 virtual server, 1/1 real servers alive");
    // The watchdog is pinged (WATCHDOG_USEC 0.4 s: every 0.2 s) from the main loop.
    for _ in 0..3 {
        mgr.until("WATCHDOG=1", Duration::from_secs(10), |m| {
            m == "WATCHDOG=1\n"
        });
    }
    // The check fails: STATUS follows the live real servers.
    std::fs::remove_file(dir.join("up")).unwrap();
    mgr.until("STATUS with 0/1 alive", Duration::from_secs(30), |m| {
        field(m, "STATUS").is_some_and(|s| s.contains("0/1 real servers alive"))
    });
    let env = std::fs::read_to_string(dir.join("env.txt")).unwrap();
    for v in ["NOTIFY_SOCKET", "WATCHDOG_USEC"] {
        assert!(!env.contains(v), "a check script inherited {v}: {env}");
    }
    // A reload: RELOADING=1 with the monotonic time, then READY=1 again.
    let out = rvs()
        .arg("reload")
        .arg("--pid-file")
        .arg(dir.join("pid"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let reloading = mgr.until("RELOADING=1", Duration::from_secs(30), |m| {
        m.lines().any(|l| l == "RELOADING=1")
    });
    let usec: u64 = field(&reloading, "MONOTONIC_USEC")
        .expect("RELOADING=1 carries MONOTONIC_USEC")
        .parse()
        .unwrap();
    assert!(usec > 0);
    mgr.until("READY=1 after the reload", Duration::from_secs(30), |m| {
        m.lines().any(|l| l == "READY=1")
    });
    // SIGTERM: STOPPING=1, then the process exits.
    let pid = rustix::process::Pid::from_raw(i32::try_from(child.0.id()).unwrap()).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    mgr.until("STOPPING=1", Duration::from_secs(30), |m| {
        m.lines().any(|l| l == "STOPPING=1")
    });
    let t = Instant::now();
    while child.0.try_wait().unwrap().is_none() {
        assert!(t.elapsed() < Duration::from_secs(30), "rvs did not stop");
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The same daemon without `NOTIFY_SOCKET` sends nothing and runs as before (covered by
/// every other test); with a socket that is gone, it warns and goes on serving.
#[test]
fn a_missing_notify_socket_does_not_stop_the_daemon() {
    let dir = std::env::temp_dir().join(format!("rvs-notify-gone-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let _b = backend("127.77.0.4:9000", "b", Mode::Name);
    std::fs::write(
        dir.join("k.conf"),
        "virtual_server 127.77.0.3 8080 {\n    lb_kind NAT\n    protocol TCP\n\
         \x20   real_server 127.77.0.4 9000 {\n    }\n}\n",
    )
    .unwrap();
    let mut child = run_in(&dir, "nobody-listens.sock", |c| {
        c.stderr(Stdio::piped());
    });
    let t = Instant::now();
    while !dir.join("pid").exists() {
        assert!(
            child.0.try_wait().unwrap().is_none(),
            "rvs exited: the notify socket is not needed to run"
        );
        assert!(t.elapsed() < Duration::from_mins(1), "rvs did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(common::ask_name("127.77.0.3:8080".parse().unwrap()), "b");
    child.0.kill().unwrap();
    let out = child.0.wait_with_output_ref();
    assert!(
        out.contains("systemd notification failed"),
        "the failure is said once: {out}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

trait WaitOutput {
    fn wait_with_output_ref(&mut self) -> String;
}

impl WaitOutput for Child {
    fn wait_with_output_ref(&mut self) -> String {
        use std::io::Read;
        let _ = self.wait();
        let mut s = String::new();
        if let Some(mut e) = self.stderr.take() {
            let _ = e.read_to_string(&mut s);
        }
        s
    }
}

/// The shipped unit passes `systemd-analyze verify` (with the binary where the unit says,
/// here the one under test) and `systemd-analyze security` rates it "OK" (exposure ≤ 4.0
/// alone, below 5.0 with a data plane's drop-in; keepalived's own unit rates 9.6 "UNSAFE").
#[test]
fn the_unit_verifies_and_is_hardened() {
    let dir = std::env::temp_dir().join(format!("rvs-unit-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let unit = std::fs::read_to_string(repo().join("dist/systemd/rvs.service")).unwrap();
    let local = unit.replace("/usr/sbin/rvs", env!("CARGO_BIN_EXE_rvs"));
    assert_ne!(local, unit, "the unit runs /usr/sbin/rvs");
    let path = dir.join("rvs.service");
    std::fs::write(&path, local).unwrap();
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
        .expect("systemd-analyze (systemd) is needed: .ci/run installs it");
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "systemd-analyze verify: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // systemd rates exposure below 5.0 "OK"; the unit alone stays below 4.0.
    let security = |path: &Path, limit: u32| {
        let out = Command::new("systemd-analyze")
            .args(["security", "--offline=yes"])
            .arg(format!("--threshold={limit}"))
            .arg(path)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{}: exposure above {}: {}",
            path.display(),
            f64::from(limit) / 10.0,
            text.lines().last().unwrap_or_default()
        );
    };
    security(&path, 40);
    // Each drop-in (a data plane's extra capabilities) keeps the unit valid and "OK".
    for dropin in ["xdp", "netns"] {
        let extra =
            std::fs::read_to_string(repo().join(format!("dist/systemd/{dropin}.conf"))).unwrap();
        let p = dir.join(format!("rvs-{dropin}.service"));
        std::fs::write(
            &p,
            format!("{}\n{extra}", std::fs::read_to_string(&path).unwrap()),
        )
        .unwrap();
        let out = Command::new("systemd-analyze")
            .args(["verify", "--man=no"])
            .arg(&p)
            .output()
            .unwrap();
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "{dropin}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        security(&p, 49);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `rvs manpages DIR`: rvs(8), a page per subcommand and rvs-keepalived.conf(5), each
/// rendered by man(1) without a warning; the dialect page names every `rvs_` extension and
/// every keyword rvs reads without applying (from the schema, so a new one cannot be
/// forgotten).
#[test]
fn manual_pages_cover_the_command_line_and_the_dialect() {
    let dir = std::env::temp_dir().join(format!("rvs-man-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let out = rvs().arg("manpages").arg(&dir).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    for page in [
        "rvs.8",
        "rvs-run.8",
        "rvs-check.8",
        "rvs-reload.8",
        "rvs-adm.8",
        "rvs-status.8",
        "rvs-keepalived.conf.5",
    ] {
        let path = dir.join(page);
        assert!(path.exists(), "{page} not written");
        let out = Command::new("man")
            .args(["--warnings", "-E", "UTF-8", "-l"])
            .arg(&path)
            .env("MANWIDTH", "100")
            .output()
            .expect("man (man-db) is needed: .ci/run installs it");
        assert!(out.status.success(), "{page}: {out:?}");
        let warnings = String::from_utf8_lossy(&out.stderr);
        assert!(warnings.is_empty(), "{page}: {warnings}");
    }
    // rvs-adm(8) carries ipvsadm's usage, which `rvs adm -h` prints too.
    let adm = std::fs::read_to_string(dir.join("rvs-adm.8")).unwrap();
    assert!(adm.contains("\\-\\-start\\-daemon"), "{adm}");
    let dialect = std::fs::read_to_string(dir.join("rvs-keepalived.conf.5")).unwrap();
    let plain = dialect.replace("\\-", "-");
    for (_, kw) in rvs_conf::schema::every_keyword() {
        let named = kw.name.starts_with("rvs_")
            || matches!(kw.support, rvs_conf::support::Support::NotApplied(_));
        if named {
            assert!(
                plain.contains(&format!("\n.B {}\n", kw.name))
                    || plain.contains(&format!("\n.BR {} ", kw.name)),
                "rvs-keepalived.conf(5) does not describe {}",
                kw.name
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `rvs completions bash` is a script bash accepts, and it completes subcommands and
/// `rvs run`'s options as a user's shell would (bash calls the function with the command,
/// the word being completed and the one before).
#[test]
fn bash_completion_completes_subcommands_and_options() {
    let out = rvs().args(["completions", "bash"]).output().unwrap();
    assert!(out.status.success());
    let dir = std::env::temp_dir().join(format!("rvs-compl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("rvs.bash");
    std::fs::write(&script, &out.stdout).unwrap();
    let complete = |words: &str| {
        let out = Command::new("bash")
            .arg("-c")
            .arg(format!(
                "source {}; COMP_WORDS=({words}); COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1)); \
                 COMP_LINE=\"${{COMP_WORDS[*]}}\"; COMP_POINT=${{#COMP_LINE}}; _rvs rvs \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"; \
                 printf '%s\\n' \"${{COMPREPLY[@]}}\"",
                script.display()
            ))
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let subs = complete("rvs re");
    assert_eq!(subs.trim(), "reload", "{subs}");
    let opts = complete("rvs run --data");
    assert_eq!(opts.trim(), "--dataplane", "{opts}");
    for shell in ["zsh", "fish"] {
        let out = rvs().args(["completions", shell]).output().unwrap();
        assert!(out.status.success() && !out.stdout.is_empty(), "{shell}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Purges the package on the way out, whatever the test found.
struct Purge;

impl Drop for Purge {
    fn drop(&mut self) {
        let _ = Command::new("dpkg").args(["-P", "rvs"]).output();
    }
}

fn require_root() {
    assert!(
        rustix::process::getuid().is_root(),
        "needs root (dpkg -i): run ./test.sh as root, as CI does"
    );
}

/// The Debian package (dist/deb/build.sh, cargo-deb, release profile) installs with
/// `dpkg -i` beside Debian's keepalived package, gives a working `rvs` (version, manual
/// pages, the demo serving from the installed binary, the unit verified with its manual
/// pages, the `keepalived` personality through the compatibility link without shadowing
/// the real `keepalived`), and `dpkg -P` leaves none of its files behind.
#[test]
#[ignore = "needs root, cargo-deb and a release build (minutes): ./test.sh runs it as root, as CI does"]
fn the_debian_package_installs_runs_and_purges() {
    require_root();
    let status = Command::new("dpkg").args(["-s", "rvs"]).output().unwrap();
    assert!(
        !status.status.success(),
        "a package named rvs is already installed: this test installs and purges its own"
    );
    // Its own target directory: the release build never waits for (or on) the test build.
    let target = repo().join("target/deb");
    let out = Command::new("bash")
        .arg(repo().join("dist/deb/build.sh"))
        .env("CARGO_TARGET_DIR", &target)
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "dist/deb/build.sh failed: its output is above (cargo-deb comes from .ci/run)"
    );
    let deb = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(
        Path::new(&deb).is_file() && Path::new(&deb).extension().is_some_and(|e| e == "deb"),
        "no package: {deb}"
    );
    let sh = |cmd: &str| {
        let out = Command::new("sh").arg("-c").arg(cmd).output().unwrap();
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };
    let (ok, text) = sh(&format!("dpkg -i {deb}"));
    assert!(ok, "dpkg -i: {text}");
    let _purge = Purge;
    let (_, listed) = sh("dpkg -L rvs");
    let files: Vec<PathBuf> = listed
        .lines()
        .map(PathBuf::from)
        .filter(|p| p.symlink_metadata().is_ok_and(|m| !m.is_dir()))
        .collect();
    for f in [
        "/usr/sbin/rvs",
        "/usr/lib/systemd/system/rvs.service",
        "/etc/default/rvs",
        "/usr/share/rvs/systemd/xdp.conf",
        "/usr/share/bash-completion/completions/rvs",
        "/usr/lib/rvs/compat/keepalived",
    ] {
        assert!(
            files.contains(&PathBuf::from(f)),
            "{f} not in the package: {listed}"
        );
    }
    let (ok, text) = sh("dpkg-query -W -f='${Conffiles}' rvs");
    assert!(ok && text.contains("/etc/default/rvs"), "conffiles: {text}");
    let (ok, version) = sh("/usr/sbin/rvs --version");
    assert!(ok && version.starts_with("rvs "), "{version}");
    for page in ["rvs", "rvs-run", "rvs-keepalived.conf"] {
        let (ok, text) = sh(&format!("man -w {page}"));
        assert!(
            ok && text.contains("/usr/share/man/"),
            "man -w {page}: {text}"
        );
    }
    // The installed unit verifies, its Documentation= pages included.
    let (ok, text) = sh("systemd-analyze verify /usr/lib/systemd/system/rvs.service");
    assert!(ok && text.is_empty(), "systemd-analyze verify: {text}");
    // The compatibility link speaks as keepalived; Debian's keepalived is untouched.
    let (ok, text) = sh("/usr/lib/rvs/compat/keepalived -v");
    assert!(ok && text.contains("(rvs "), "{text}");
    let (_, real) = sh("keepalived -v");
    assert!(
        !real.contains("(rvs "),
        "the real keepalived is shadowed: {real}"
    );
    // The main job from the installed binary: the demo serves on 127.0.0.1:8080.
    let demo = Command::new("/usr/sbin/rvs")
        .arg("demo")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut demo = Killed(demo);
    let t = Instant::now();
    let answer = loop {
        match std::net::TcpStream::connect("127.0.0.1:8080") {
            Ok(mut s) => {
                use std::io::{Read, Write};
                s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                s.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
                let mut body = String::new();
                let _ = s.read_to_string(&mut body);
                if !body.is_empty() {
                    break body;
                }
            }
            Err(_) => assert!(
                demo.0.try_wait().unwrap().is_none(),
                "the installed rvs demo exited"
            ),
        }
        assert!(
            t.elapsed() < Duration::from_mins(1),
            "the demo never answered"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(answer.contains("backend"), "{answer}");
    let pid = rustix::process::Pid::from_raw(i32::try_from(demo.0.id()).unwrap()).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::INT).unwrap();
    let t = Instant::now();
    while demo.0.try_wait().unwrap().is_none() {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "the demo did not stop"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // An upgrade of the package (the same one again) replaces a running rvs with
    // `rvs upgrade` (the postinst), never a restart: a new pid, the same socket.
    std::fs::write(
        "/tmp/rvs-deb-upgrade.conf",
        "virtual_server 127.77.5.1 8080 {\n    lb_algo rr\n    lb_kind NAT\n    \
         protocol TCP\n    real_server 127.77.5.2 9000 {\n    }\n}\n",
    )
    .unwrap();
    let running = Command::new("/usr/sbin/rvs")
        .args([
            "run",
            "-f",
            "/tmp/rvs-deb-upgrade.conf",
            "--pid-file",
            "/run/rvs/rvs.pid",
        ])
        .args(["--control", "/run/rvs/rvs.sock", "--drain", "0"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _running = Killed(running);
    let t = Instant::now();
    while !Path::new("/run/rvs/rvs.sock").exists() {
        assert!(t.elapsed() < Duration::from_mins(1), "rvs did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let pid_of = || {
        std::fs::read_to_string("/run/rvs/rvs.pid")
            .ok()
            .and_then(|t| t.lines().next().map(str::to_owned))
            .unwrap_or_default()
    };
    let before = pid_of();
    let (ok, text) = sh(&format!("dpkg -i {deb}"));
    assert!(ok, "dpkg -i (upgrade): {text}");
    assert!(
        text.contains("took over from"),
        "the postinst ran rvs upgrade: {text}"
    );
    let after = pid_of();
    assert!(!after.is_empty() && after != before, "{before} → {after}");
    let (ok, status) = sh("/usr/sbin/rvs status --control /run/rvs/rvs.sock");
    assert!(ok && status.contains(&format!("(pid {after})")), "{status}");
    let _ = sh(&format!("kill {after}"));
    assert!(
        common::exited_within(after.parse().unwrap(), Duration::from_secs(30)),
        "the upgraded rvs did not stop"
    );
    let _ = std::fs::remove_file("/tmp/rvs-deb-upgrade.conf");
    // Purge: nothing of the package is left.
    let (ok, text) = sh("dpkg -P rvs");
    assert!(ok, "dpkg -P: {text}");
    let left: Vec<&PathBuf> = files
        .iter()
        .filter(|f| f.symlink_metadata().is_ok())
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    for d in ["/usr/lib/rvs", "/usr/share/rvs", "/usr/share/doc/rvs"] {
        assert!(!Path::new(d).exists(), "{d} left behind");
    }
    let (installed, _) = sh("dpkg -s rvs");
    assert!(!installed, "rvs still known to dpkg");
}

/// `rvs plan -f NEW.conf` against a running daemon lists, in the reload's order, the
/// services and real servers a reload would add, remove and change, with warnings, and
/// changes nothing; the reload that follows does exactly that (its report and the table
/// `rvs adm -Ln` lists); `rvs reload --dry-run` then finds nothing to do; a broken file
/// is reported as refused.
#[test]
fn a_plan_says_what_the_reload_then_does() {
    let _b = backend("127.77.1.2:9000", "b2", Mode::Name);
    let vs = |port: u16, algo: &str, rs: &[(u8, u8)]| {
        let mut s = format!(
            "virtual_server 127.77.1.1 {port} {{\n    lb_algo {algo}\n    lb_kind NAT\n    protocol TCP\n"
        );
        for (h, w) in rs {
            let _ = write!(
                s,
                "    real_server 127.77.1.{h} 9000 {{\n        weight {w}\n    }}\n"
            );
        }
        s + "}\n"
    };
    let a = [
        vs(8080, "wlc", &[(2, 1), (3, 1)]),
        vs(8081, "wlc", &[(4, 1)]),
        vs(8083, "wlc", &[(6, 1)]),
    ]
    .concat();
    let b = [
        vs(8080, "rr", &[(2, 3), (5, 1)]),
        vs(8082, "wlc", &[(4, 1)]),
        vs(8083, "wlc", &[]),
    ]
    .concat();
    let d = common::Daemon::start("plan", &a, "127.77.1.1:8080".parse().unwrap());
    let new = d.dir.join("b.conf");
    std::fs::write(&new, &b).unwrap();
    let table_before = d.adm(&["-Ln"]).1;
    let out = rvs()
        .args(["plan", "-f"])
        .arg(&new)
        .env("RVS_CONTROL", d.dir.join("ctl.sock"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let steps: Vec<&str> = text
        .lines()
        .filter_map(|l| l.trim_start().split_once(". dataplane  ").map(|(_, s)| s))
        .collect();
    let vs80 = "[127.77.1.1]:tcp:8080";
    assert_eq!(
        steps,
        [
            format!("change virtual server {vs80}: scheduler wlc → rr"),
            format!("remove real server 127.77.1.3:9000 from {vs80} (its connections drain)"),
            format!("change real server 127.77.1.2:9000 of {vs80}: weight 1 → 3"),
            format!("add real server 127.77.1.5:9000 to {vs80} (weight 1, Masq)"),
            "add virtual server [127.77.1.1]:tcp:8082 (scheduler wlc)".to_owned(),
            "add real server 127.77.1.4:9000 to [127.77.1.1]:tcp:8082 (weight 1, Masq)".to_owned(),
            // A service left without real servers leaves the data plane.
            "remove virtual server [127.77.1.1]:tcp:8081 (its connections drain)".to_owned(),
            "remove virtual server [127.77.1.1]:tcp:8083 (its connections drain)".to_owned(),
        ],
        "{text}"
    );
    assert!(
        text.contains(
            "warning: removing the last live real server of virtual server \
             [127.77.1.1]:tcp:8083: its clients will be refused"
        ),
        "{text}"
    );
    assert!(
        text.contains("data plane: services +1 -2, real servers +2 -1 ~1"),
        "{text}"
    );
    // Nothing changed yet.
    assert_eq!(d.adm(&["-Ln"]).1, table_before);
    // The reload does what the plan said.
    let (ok, said) = d.reload(&b);
    assert!(ok, "{said}");
    assert!(
        said.contains("ok: services +1 -2, real servers +2 -1 ~1"),
        "the reload reports what the plan said: {said}"
    );
    let table = d.adm(&["-Ln"]).1;
    for want in [
        "TCP  127.77.1.1:8080 rr",
        "  -> 127.77.1.2:9000              Masq    3",
        "  -> 127.77.1.5:9000              Masq    1",
        "TCP  127.77.1.1:8082 wlc",
    ] {
        assert!(table.contains(want), "{want:?} not in\n{table}");
    }
    for gone in ["127.77.1.3:9000", "127.77.1.1:8081", "127.77.1.1:8083"] {
        assert!(!table.contains(gone), "{gone} still in\n{table}");
    }
    // The daemon's own file, now running: nothing to do.
    let out = rvs()
        .args(["reload", "--dry-run", "--control"])
        .arg(d.dir.join("ctl.sock"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("  change nothing"),
        "{text}"
    );
    // JSON for tooling; a broken file is refused, with its diagnostics.
    std::fs::write(
        &new,
        "virtual_server 127.77.1.1 8080 {\n    lb_algo nope\n}\n",
    )
    .unwrap();
    let out = rvs()
        .args(["plan", "--json", "-f"])
        .arg(&new)
        .env("RVS_CONTROL", d.dir.join("ctl.sock"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let why = plan["refused"].as_str().unwrap_or_default();
    assert!(why.contains("b.conf:2:") && why.contains("nope"), "{plan}");
    assert!(
        plan["steps"].as_array().is_some_and(Vec::is_empty),
        "{plan}"
    );
    d.stop();
}

/// Logs reach journald with their fields: a real `systemd-journald` runs in a private
/// mount namespace (its own tmpfs on /run), rvs logs to it (`--log-format journald`, and
/// by itself when `$JOURNAL_STREAM` says stderr is the journal, as systemd sets it), a
/// real server fails its check, and `journalctl -o json` shows the events with
/// `RVS_VIRTUAL_SERVER`, `RVS_REAL_SERVER`, `RVS_UP`, the priority and `SYSLOG_IDENTIFIER=rvs`.
/// Each rvs is `exec`ed so that the script's kill reaches it.
#[test]
#[ignore = "needs root (a mount namespace with its own systemd-journald): ./test.sh runs it as root"]
fn logs_reach_journald_with_their_fields() {
    require_root();
    let dir = std::env::temp_dir().join(format!("rvs-journal-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // A real server nobody listens on: its TCP_CHECK fails at once.
    let conf = "virtual_server 127.77.2.1 8080 {\n    lb_algo rr\n    lb_kind NAT\n    \
                protocol TCP\n    delay_loop 1\n    real_server 127.77.2.2 9000 {\n        \
                TCP_CHECK {\n            connect_timeout 1\n            retry 0\n        }\n    \
                }\n}\n";
    std::fs::write(dir.join("k.conf"), conf).unwrap();
    let rvs_bin = env!("CARGO_BIN_EXE_rvs");
    let d = dir.display();
    let script = format!(
        r#"set -e
mount -t tmpfs tmpfs /run
mkdir -p /run/systemd/journal /run/log/journal
/lib/systemd/systemd-journald & J=$!
for i in $(seq 100); do [ -S /run/systemd/journal/socket ] && break; sleep 0.1; done
wait_for() {{
  for i in $(seq 300); do
    journalctl -D /run/log/journal -o json --no-pager SYSLOG_IDENTIFIER=rvs > {d}/$1.json 2>/dev/null || true
    grep -q "$2" {d}/$1.json && return 0
    sleep 0.1
  done
  return 1
}}
run() {{
  exec {rvs_bin} run -f {d}/k.conf --pid-file {d}/$1.pid --control {d}/$1.sock --drain 0 "${{@:2}}"
}}
run explicit --log-format journald & R=$!
wait_for explicit 'Removing service' || echo "explicit: no entry"
kill $R; wait $R || true
# As systemd starts it: stderr is the journal's stream and $JOURNAL_STREAM names it.
systemd-cat -t rvs-stream bash -c 'export JOURNAL_STREAM=$(stat -L -c %d:%i /proc/self/fd/2); exec {rvs_bin} run -f {d}/k.conf --pid-file {d}/auto.pid --control {d}/auto.sock --drain 0' & R=$!
for i in $(seq 300); do
  journalctl -D /run/log/journal -o json --no-pager SYSLOG_IDENTIFIER=rvs > {d}/auto.json 2>/dev/null || true
  [ "$(grep -c 'Removing service' {d}/auto.json)" -ge 2 ] && break
  sleep 0.1
done
kill $(head -1 {d}/auto.pid) 2>/dev/null || true
wait $R || true
kill $J; wait $J || true
"#
    );
    std::fs::write(dir.join("run.sh"), script).unwrap();
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "bash"])
        .arg(dir.join("run.sh"))
        .output()
        .expect("unshare (util-linux)");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{said}");
    let entries = |name: &str| -> Vec<serde_json::Value> {
        std::fs::read_to_string(dir.join(format!("{name}.json")))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    };
    let removed = |all: &[serde_json::Value]| -> Vec<serde_json::Value> {
        all.iter()
            .filter(|e| {
                e["MESSAGE"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("Removing service [127.77.2.2]:tcp:9000"))
            })
            .cloned()
            .collect()
    };
    let explicit = removed(&entries("explicit"));
    let e = explicit.first().unwrap_or_else(|| {
        panic!(
            "no 'Removing service' entry: {:?}\n{said}",
            entries("explicit")
        )
    });
    assert_eq!(e["RVS_VIRTUAL_SERVER"], "[127.77.2.1]:tcp:8080", "{e}");
    assert_eq!(e["RVS_REAL_SERVER"], "127.77.2.2:9000", "{e}");
    assert_eq!(e["RVS_UP"], "false", "{e}");
    // tracing-journald's levels: info is 5 (notice).
    assert_eq!(e["PRIORITY"], "5", "{e}");
    assert_eq!(e["_TRANSPORT"], "journal", "{e}");
    // Started as systemd starts it, rvs chose the native protocol by itself: two runs'
    // entries now, both structured (none came through the stdout stream).
    let all = removed(&entries("auto"));
    assert!(all.len() >= 2, "{all:?}\n{said}");
    for e in &all {
        assert_eq!(e["_TRANSPORT"], "journal", "{e}");
        assert_eq!(e["RVS_REAL_SERVER"], "127.77.2.2:9000", "{e}");
    }
    let pids: std::collections::BTreeSet<&str> =
        all.iter().filter_map(|e| e["_PID"].as_str()).collect();
    assert_eq!(pids.len(), 2, "one entry from each run: {all:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// One request as a `Connection: close` client makes it: connect, read the backend's
/// name, close. `Err` says what failed.
fn one_request(vip: std::net::SocketAddr) -> Result<String, String> {
    use std::io::BufRead as _;
    let s = std::net::TcpStream::connect_timeout(&vip, Duration::from_secs(5))
        .map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    let mut line = String::new();
    std::io::BufReader::new(&s)
        .read_line(&mut line)
        .map_err(|e| format!("read: {e}"))?;
    if line.is_empty() {
        return Err("closed without an answer".into());
    }
    Ok(line.trim().to_owned())
}

/// `rvs upgrade` under load (proxy data plane): the running daemon starts the binary to
/// take its place and hands it the listening sockets; no client is refused or left
/// without an answer while they change places, a connection established before the
/// upgrade goes on through the old process (which drains, then exits), and the new one
/// serves from then on, answering on the same control socket with a new pid.
#[test]
fn an_upgrade_under_load_loses_no_connection() {
    use std::io::{Read as _, Write as _};
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    let _b = backend("127.77.3.2:9000", "b", Mode::Name);
    let _e = backend("127.77.3.4:9000", "echo", Mode::Echo);
    let conf = "virtual_server 127.77.3.1 8080 {\n    lb_algo rr\n    lb_kind NAT\n    \
                protocol TCP\n    real_server 127.77.3.2 9000 {\n    }\n}\n\
                virtual_server 127.77.3.1 8081 {\n    lb_algo rr\n    lb_kind NAT\n    \
                protocol TCP\n    real_server 127.77.3.4 9000 {\n    }\n}\n";
    let vip: std::net::SocketAddr = "127.77.3.1:8080".parse().unwrap();
    let d = common::Daemon::start_args("upgrade", conf, vip, &["--drain", "30"]);
    let old = d.pid();
    // A connection established before the upgrade.
    let mut long = std::net::TcpStream::connect("127.77.3.1:8081").unwrap();
    long.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut echo = |what: &[u8]| {
        long.write_all(what).unwrap();
        let mut got = vec![0u8; what.len()];
        long.read_exact(&mut got).unwrap();
        assert_eq!(got, what);
    };
    echo(b"before");
    // Clients, one after another, all through the upgrade (bounded in count and time).
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let (ok, failed) = (
        std::sync::Arc::new(AtomicU64::new(0)),
        std::sync::Arc::new(std::sync::Mutex::new(Vec::new())),
    );
    let load = {
        let (stop, ok, failed) = (stop.clone(), ok.clone(), failed.clone());
        std::thread::spawn(move || {
            let t = Instant::now();
            for _ in 0..200_000 {
                if stop.load(Ordering::Relaxed) || t.elapsed() > Duration::from_mins(2) {
                    break;
                }
                match one_request(vip) {
                    Ok(name) if name == "b" => ok.fetch_add(1, Ordering::Relaxed),
                    Ok(other) => {
                        failed.lock().unwrap().push(format!("answer {other:?}"));
                        0
                    }
                    Err(e) => {
                        failed.lock().unwrap().push(e);
                        0
                    }
                };
            }
        })
    };
    while ok.load(Ordering::Relaxed) < 50 {
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = rvs()
        .arg("upgrade")
        .arg("--control")
        .arg(d.dir.join("ctl.sock"))
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let new = d.pid();
    assert_ne!(new, old, "the pid file names the successor: {said}");
    assert!(
        said.contains(&format!("(pid {new}) took over from")),
        "{said}"
    );
    let before = ok.load(Ordering::Relaxed);
    while ok.load(Ordering::Relaxed) < before + 200 {
        std::thread::sleep(Duration::from_millis(10));
    }
    stop.store(true, Ordering::Relaxed);
    load.join().unwrap();
    let failed = failed.lock().unwrap().clone();
    assert!(
        failed.is_empty(),
        "{} of {} requests failed during the upgrade: {:?}",
        failed.len(),
        ok.load(Ordering::Relaxed) + failed.len() as u64,
        &failed[..failed.len().min(5)]
    );
    // The established connection still goes, through the old process.
    echo(b"after the upgrade");
    assert!(
        Path::new(&format!("/proc/{old}")).exists(),
        "the old rvs drains while a connection is open"
    );
    // The successor serves and answers the control socket.
    let (_, table, _) = d.adm(&["-Ln", "--stats"]);
    assert!(table.contains("TCP  127.77.3.1:8080"), "{table}");
    let status = d.status();
    assert!(status.contains(&format!("(pid {new})")), "{status}");
    // The last connection closed, the old process exits.
    drop(long);
    assert!(
        common::exited_within(old, Duration::from_secs(20)),
        "the old rvs did not exit"
    );
    // The old process left the successor's control socket alone (a CI run once saw it
    // unlink the socket the successor had just bound).
    let status = d.status();
    assert!(status.contains(&format!("(pid {new})")), "{status}");
    // The successor stops as any daemon does.
    let pid = rustix::process::Pid::from_raw(i32::try_from(new).unwrap()).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    assert!(
        common::exited_within(new, Duration::from_secs(40)),
        "the new rvs did not stop"
    );
    drop(d);
}

/// A successor that goes away in the middle of the hand-over (it connects to the
/// upgrade socket and closes at once) costs nothing: the daemon listens again on the
/// same sockets and keeps its API, its pid and its clients.
#[test]
fn a_failed_hand_over_leaves_the_daemon_serving() {
    let _b = backend("127.77.3.6:9000", "b6", Mode::Name);
    let conf = "virtual_server 127.77.3.5 8080 {\n    lb_algo rr\n    lb_kind NAT\n    \
                protocol TCP\n    real_server 127.77.3.6 9000 {\n    }\n}\n";
    let vip: std::net::SocketAddr = "127.77.3.5:8080".parse().unwrap();
    let d = common::Daemon::start("failed-upgrade", conf, vip);
    assert_eq!(one_request(vip).as_deref(), Ok("b6"));
    let pid = d.pid();
    for _ in 0..3 {
        let s = std::os::unix::net::UnixStream::connect(d.dir.join("ctl.sock.upgrade")).unwrap();
        drop(s);
        // The daemon notices, takes its sockets back and serves on.
        let t = Instant::now();
        loop {
            let status = d.status();
            if status.contains(&format!("(pid {pid})")) && one_request(vip).as_deref() == Ok("b6") {
                break;
            }
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "the daemon did not go on after a failed hand-over: {status}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    for _ in 0..20 {
        assert_eq!(one_request(vip).as_deref(), Ok("b6"));
    }
    assert_eq!(d.pid(), pid);
    d.stop();
}
