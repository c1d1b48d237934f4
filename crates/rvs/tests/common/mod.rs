//! The test harness shared by the end-to-end tests: `rvs run` as a real process, real
//! backends on loopback addresses.

#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_wrap,
    clippy::format_push_string
)]

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub struct Daemon {
    child: Option<Child>,
    pub dir: PathBuf,
}

impl Daemon {
    pub fn start(name: &str, conf: &str, vip: SocketAddr) -> Daemon {
        Daemon::start_args(name, conf, vip, &[])
    }

    pub fn start_args(name: &str, conf: &str, vip: SocketAddr, args: &[&str]) -> Daemon {
        let dir = std::env::temp_dir().join(format!("rvs-proxy-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("k.conf"), conf).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_rvs"))
            .args(["run", "--log-level", "warn"])
            .args(args)
            .arg("-f")
            .arg(dir.join("k.conf"))
            .arg("--pid-file")
            .arg(dir.join("pid"))
            .arg("--control")
            .arg(dir.join("ctl.sock"))
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let mut d = Daemon {
            child: Some(child),
            dir,
        };
        // The pid file is written once every listener is up (no probe connection: it
        // would take a turn of the scheduler). A large config may take a while in a debug
        // build on a busy machine; a daemon that exits fails at once.
        let t = Instant::now();
        while !d.dir.join("pid").exists() {
            if let Some(st) = d.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                panic!("rvs exited before listening on {vip}: {st}");
            }
            assert!(
                t.elapsed() < Duration::from_mins(2),
                "rvs did not start listening on {vip}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        d
    }

    /// The daemon's pid, from its pid file.
    pub fn pid(&self) -> u32 {
        let pid = std::fs::read_to_string(self.dir.join("pid")).unwrap();
        pid.lines().next().unwrap().trim().parse().unwrap()
    }

    /// Writes a new config and runs `rvs reload`; returns (success, output).
    pub fn reload(&self, conf: &str) -> (bool, String) {
        std::fs::write(self.dir.join("k.conf"), conf).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_rvs"))
            .arg("reload")
            .arg("--pid-file")
            .arg(self.dir.join("pid"))
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }

    /// Runs `rvs adm ARGS` against this daemon; returns (exit code, stdout, stderr).
    pub fn adm(&self, args: &[&str]) -> (i32, String, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_rvs"))
            .arg("adm")
            .args(args)
            .env("RVS_CONTROL", self.dir.join("ctl.sock"))
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// What `rvs status` prints for this daemon (stdout and stderr).
    pub fn status(&self) -> String {
        let out = Command::new(env!("CARGO_BIN_EXE_rvs"))
            .arg("status")
            .env("RVS_CONTROL", self.dir.join("ctl.sock"))
            .output()
            .unwrap();
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }

    /// One raw HTTP request on the control socket; returns the whole answer.
    pub fn control_raw(&self, request: &[u8]) -> String {
        let mut s = std::os::unix::net::UnixStream::connect(self.dir.join("ctl.sock")).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        s.write_all(request).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    }

    pub fn stop(mut self) -> std::process::ExitStatus {
        let mut c = self.child.take().unwrap();
        let pid = rustix::process::Pid::from_raw(c.id() as i32).unwrap();
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
        let t = Instant::now();
        loop {
            if let Some(st) = c.try_wait().unwrap() {
                return st;
            }
            assert!(t.elapsed() < Duration::from_secs(15), "rvs did not stop");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[derive(Clone, Copy)]
pub enum Mode {
    /// Writes its name, then reads until EOF.
    Name,
    /// Reads until EOF, then writes back all it got (tests half-close).
    EchoAfterEof,
    /// Echoes as it reads.
    Echo,
}

/// Waits until process `pid` has exited (gone, or a zombie not reaped yet); `false`
/// when it still runs after `limit`.
/// A daemon the test did not spawn (an upgrade's successor): its pid and a string its
/// command line contains (the test's directory). Dropped, it is ended — SIGTERM, then
/// SIGKILL after 10 s — if that pid is still such a process (not a reused pid), so that
/// a failing assertion does not leave it running with the test's addresses and pipes.
pub struct KillOnDrop(pub u32, pub String);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let ours = std::fs::read(format!("/proc/{}/cmdline", self.0))
            .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&self.1));
        let Some(pid) = i32::try_from(self.0)
            .ok()
            .and_then(rustix::process::Pid::from_raw)
            .filter(|_| ours)
        else {
            return;
        };
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        if !exited_within(self.0, Duration::from_secs(10)) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
        }
    }
}

pub fn exited_within(pid: u32, limit: Duration) -> bool {
    let t = Instant::now();
    loop {
        let gone = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map_or(true, |s| s.contains(") Z "));
        if gone {
            return true;
        }
        if t.elapsed() > limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn backend(addr: &str, name: &'static str, mode: Mode) -> JoinHandle<()> {
    let l = TcpListener::bind(addr).unwrap();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            std::thread::spawn(move || match mode {
                Mode::Name => {
                    let _ = s.write_all(format!("{name}\n").as_bytes());
                    let mut sink = Vec::new();
                    let _ = s.read_to_end(&mut sink);
                }
                Mode::EchoAfterEof => {
                    let mut got = Vec::new();
                    let _ = s.read_to_end(&mut got);
                    let _ = s.write_all(format!("{name} got {} bytes\n", got.len()).as_bytes());
                    let _ = s.write_all(&got);
                }
                Mode::Echo => {
                    let mut r = s.try_clone().unwrap();
                    let _ = std::io::copy(&mut r, &mut s);
                    let _ = s.shutdown(Shutdown::Write);
                }
            });
        }
    })
}

pub fn ask_name(vip: SocketAddr) -> String {
    ask_name_from(vip, None)
}

pub fn ask_name_from(vip: SocketAddr, src: Option<&str>) -> String {
    let s = match src {
        None => TcpStream::connect(vip).unwrap(),
        Some(ip) => {
            let sock =
                socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
            sock.bind(&format!("{ip}:0").parse::<SocketAddr>().unwrap().into())
                .unwrap();
            sock.connect(&vip.into()).unwrap();
            TcpStream::from(sock)
        }
    };
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut line = String::new();
    let mut r = std::io::BufReader::new(&s);
    std::io::BufRead::read_line(&mut r, &mut line).unwrap();
    line.trim().to_owned()
}

/// The objects of a `snmpwalk -On` output (OID → `TYPE: value`), without net-snmp's
/// "No Such Object/Instance" and "No more variables" lines.
pub fn snmpwalk_objects(stdout: &[u8]) -> std::collections::BTreeMap<String, String> {
    let mut out = std::collections::BTreeMap::new();
    for line in String::from_utf8_lossy(stdout).lines() {
        if let Some((k, v)) = line.split_once(" = ") {
            if k.starts_with('.') && !v.starts_with("No Such") && !v.starts_with("No more") {
                out.insert(k.to_owned(), v.trim_end().to_owned());
            }
        }
    }
    out
}

/// The metrics endpoint's body (text format).
pub fn scrape(addr: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or(out)
}

pub fn vs(vip: &str, port: u16, body: &str, rs: &[(&str, u16, i32)]) -> String {
    let mut s =
        format!("virtual_server {vip} {port} {{\n    lvs_method NAT\n    protocol TCP\n{body}");
    for (a, p, w) in rs {
        s += &format!("    real_server {a} {p} {{\n        weight {w}\n    }}\n");
    }
    s + "}\n"
}
