//! The abuse suite: probes that once killed, hung or misled a running `rvs run`, run
//! against the real binary, each bounded in time (issue "Hold under abuse"). Loopback
//! range 127.70.0.0/16, one /24 per test, so the tests run in parallel.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::many_single_char_names
)]

mod common;

use common::{vs, Daemon};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

/// Reads until EOF or error; returns the bytes read and how it ended.
fn drain(s: &mut TcpStream) -> (usize, std::io::Result<()>) {
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut n = 0;
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return (n, Ok(())),
            Ok(k) => n += k,
            Err(e) => return (n, Err(e)),
        }
    }
}

/// Closes with RST (`SO_LINGER {1, 0}`).
fn abort(s: TcpStream) {
    socket2::SockRef::from(&s)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(s);
}

/// A reset is passed on as a reset, both ways, after the data before it: a real server
/// that sends 1000 bytes and aborts leaves the client with the 1000 bytes and then
/// ECONNRESET (not a clean EOF, which is what a FIN sent before the RST looked like), and
/// a client that aborts leaves the real server with ECONNRESET. 20 times each.
#[test]
fn resets_propagate_both_ways() {
    let l = TcpListener::bind("127.70.1.2:9100").unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for (i, s) in l.incoming().enumerate() {
            let Ok(mut s) = s else { continue };
            if i < 20 {
                s.write_all(&[7u8; 1000]).unwrap();
                std::thread::sleep(Duration::from_millis(20));
                abort(s);
            } else {
                let got = drain(&mut s);
                let _ = tx.send((got.0, got.1.map_err(|e| e.kind())));
            }
        }
    });
    let vip: SocketAddr = "127.70.1.1:8080".parse().unwrap();
    let d = Daemon::start(
        "abuse-rst",
        &vs("127.70.1.1", 8080, "", &[("127.70.1.2", 9100, 1)]),
        vip,
    );
    for i in 0..20 {
        let mut c = TcpStream::connect(vip).unwrap();
        let (n, end) = drain(&mut c);
        assert_eq!(n, 1000, "round {i}: the data before the reset");
        let e = end.expect_err("a reset, not a clean close");
        assert_eq!(
            e.kind(),
            std::io::ErrorKind::ConnectionReset,
            "round {i}: {e}"
        );
    }
    for i in 0..20 {
        let mut c = TcpStream::connect(vip).unwrap();
        c.write_all(&[9u8; 1000]).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        abort(c);
        let (n, end) = rx.recv_timeout(Duration::from_secs(20)).unwrap();
        assert_eq!(n, 1000, "round {i}: the data before the reset");
        assert_eq!(
            end,
            Err(std::io::ErrorKind::ConnectionReset),
            "round {i}: the real server saw a clean close"
        );
    }
    d.stop();
}

/// A half-closed connection (the client sent its FIN, the real server keeps its side
/// open and silent) is released after the `FIN_WAIT` timeout (`ipvsadm --set`'s `tcpfin`),
/// not after the ESTABLISHED one: with `--set 30 3 0` it goes after about 3 s, not 30.
#[test]
fn half_closed_connections_use_the_fin_timeout() {
    let l = TcpListener::bind("127.70.2.2:9100").unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in l.incoming().flatten() {
            held.push(s); // never writes, never closes
        }
    });
    let vip: SocketAddr = "127.70.2.1:8080".parse().unwrap();
    let d = Daemon::start(
        "abuse-fin",
        &vs("127.70.2.1", 8080, "", &[("127.70.2.2", 9100, 1)]),
        vip,
    );
    let (code, out, err) = d.adm(&["--set", "30", "3", "0"]);
    assert_eq!(code, 0, "{out}{err}");
    let mut c = TcpStream::connect(vip).unwrap();
    c.write_all(b"request").unwrap();
    c.shutdown(std::net::Shutdown::Write).unwrap();
    let t = Instant::now();
    let (_, end) = drain(&mut c);
    let took = t.elapsed();
    assert!(
        end.is_err(),
        "released by the idle timeout (a reset), after {took:?}"
    );
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(15),
        "released after {took:?}: the FIN_WAIT timeout is 3 s, ESTABLISHED 30 s"
    );
    d.stop();
}

/// A daemon started under strace: on drop, the daemon (by the pid in its pid file) and
/// strace are killed.
struct Traced {
    child: std::process::Child,
    pid_file: std::path::PathBuf,
}

impl Traced {
    fn daemon_pid(&self) -> Option<i32> {
        std::fs::read_to_string(&self.pid_file)
            .ok()?
            .lines()
            .next()?
            .trim()
            .parse()
            .ok()
    }
}

impl Drop for Traced {
    fn drop(&mut self) {
        if let Some(pid) = self.daemon_pid().and_then(rustix::process::Pid::from_raw) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The control socket is never reachable by other users, not even while the daemon
/// starts: with umask 000 the socket file used to exist with mode 0777 until a chmod, a
/// window a local user could win (and then send `Clear`). strace delays every chmod by
/// 300 ms to hold any such window open; a watcher polling the path must first see the
/// socket at 0600, and no private staging directory may be left behind.
#[test]
#[ignore = "needs strace (delay injection): ./test.sh runs it as root"]
fn control_socket_is_private_from_its_first_moment() {
    use std::os::unix::fs::PermissionsExt;
    let have_strace = std::process::Command::new("strace")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(have_strace, "this test needs strace (.ci/run installs it)");
    let dir = std::env::temp_dir().join(format!("rvs-abuse-sock-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("k.conf"),
        vs("127.70.3.1", 8080, "", &[("127.70.3.2", 9100, 1)]),
    )
    .unwrap();
    let sock = dir.join("ctl.sock");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let (sock, stop) = (sock.clone(), stop.clone());
        std::thread::spawn(move || {
            // The path is looked at once more after `stop`: a watcher starved by a busy
            // machine until the daemon is up still reports the socket (rvs binds it
            // before it writes its pid file).
            loop {
                let last = stop.load(std::sync::atomic::Ordering::Relaxed);
                if let Ok(m) = std::fs::symlink_metadata(&sock) {
                    return Some(m.permissions().mode() & 0o777);
                }
                if last {
                    return None;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };
    let script = format!(
        "umask 000; exec strace -f -qq -o /dev/null -e inject=chmod,fchmodat:delay_enter=300000 \
         {} run --log-level error -f {} --pid-file {} --control {}",
        env!("CARGO_BIN_EXE_rvs"),
        dir.join("k.conf").display(),
        dir.join("pid").display(),
        sock.display()
    );
    let child = std::process::Command::new("sh")
        .args(["-c", &script])
        .spawn()
        .unwrap();
    // Whatever happens below, the daemon and strace go (strace leaves its tracee running
    // if only strace is killed: the daemon is killed by the pid it wrote).
    let guard = Traced {
        child,
        pid_file: dir.join("pid"),
    };
    let t = Instant::now();
    while guard.daemon_pid().is_none() {
        assert!(t.elapsed() < Duration::from_secs(20), "rvs did not start");
        std::thread::sleep(Duration::from_millis(10));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let first = watcher.join().unwrap();
    drop(guard);
    assert_eq!(first, Some(0o600), "the socket's first mode");
    let left: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| n.to_string_lossy().starts_with('.'))
        .collect();
    assert!(left.is_empty(), "staging left behind: {left:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `POST /v1/reload` on the control socket: (ok, message).
fn api_reload(d: &Daemon) -> (bool, String) {
    let ans = d.control_raw(b"POST /v1/reload HTTP/1.1\r\n\r\n");
    let body = ans.split_once("\r\n\r\n").map_or("", |(_, b)| b).to_owned();
    let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    (v["ok"].as_bool() == Some(true), body)
}

/// The service is still in the table and still answers.
fn still_serving(d: &Daemon, vip: SocketAddr) {
    let (code, table, err) = d.adm(&["-Ln"]);
    assert_eq!(code, 0, "{err}");
    assert!(table.contains(&vip.to_string()), "{table}");
    assert_eq!(common::ask_name(vip), "a");
}

/// A memory figure of the daemon from /proc (`VmHWM` peak, `VmRSS` now), in KiB.
fn mem_kib(d: &Daemon, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", d.pid())).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap()
}

/// Reloads that once killed, hung or emptied the daemon are refused, quickly, with the
/// reason, and the running configuration keeps serving: an include of a FIFO (hung the
/// main loop, SIGTERM ignored), of /dev/zero (OOM), k files each including `*` (k!
/// reads), 4 KB of random bytes and a file cut in the middle of a keyword (both removed
/// services), and a 140-byte file whose definition refers to itself (millions of
/// diagnostics, a 121 MB answer).
#[test]
fn hostile_reloads_are_refused_and_the_daemon_keeps_serving() {
    let _b = common::backend("127.70.4.2:9100", "a", common::Mode::Name);
    let vip: SocketAddr = "127.70.4.1:8080".parse().unwrap();
    let good = vs("127.70.4.1", 8080, "", &[("127.70.4.2", 9100, 1)]);
    let d = Daemon::start("abuse-reload", &good, vip);
    let conf = d.dir.join("k.conf");
    let fifo = d.dir.join("fifo");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    for k in 0..9 {
        std::fs::write(d.dir.join(format!("fan{k}.inc")), "include fan*.inc\n").unwrap();
    }
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let garbage: Vec<u8> = (0..4096)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()[0]
        })
        .collect();
    let amplify = "$VS=virtual_server 10.0.0.${i} 80 { \\\n    real_server 10.1.0.1 80 { \\\n    } \\\n    $VS \\\n    $VS \\\n}\n~SEQ(i, 1, 1000) $VS\n";
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "fifo",
            format!("{good}include {}\n", fifo.display()).into_bytes(),
            "it is a FIFO",
        ),
        (
            "zero",
            format!("{good}include /dev/zero\n").into_bytes(),
            "it is a character device",
        ),
        (
            "fan-out",
            format!("{good}include fan0.inc\n").into_bytes(),
            "configuration too large",
        ),
        ("garbage", garbage, "lines rvs cannot read"),
        (
            "cut",
            format!("{good}virtual_s").into_bytes(),
            "lines rvs cannot read",
        ),
        (
            "amplify",
            amplify.as_bytes().to_vec(),
            "more diagnostics in this file are not shown",
        ),
    ];
    for (name, text, why) in cases {
        std::fs::write(&conf, text).unwrap();
        let t = Instant::now();
        let (ok, msg) = api_reload(&d);
        let took = t.elapsed();
        assert!(!ok, "{name}: the reload was applied: {msg}");
        assert!(msg.contains(why), "{name}: {}", &msg[..msg.len().min(4000)]);
        assert!(
            msg.contains("the running configuration is kept"),
            "{name}: {}",
            &msg[..msg.len().min(4000)]
        );
        assert!(msg.len() < 1 << 20, "{name}: a {} byte answer", msg.len());
        assert!(took < Duration::from_secs(25), "{name}: took {took:?}");
        still_serving(&d, vip);
    }
    let peak = mem_kib(&d, "VmHWM");
    assert!(peak < 512 * 1024, "peak RSS {peak} KiB");
    // And the good file still reloads.
    std::fs::write(&conf, &good).unwrap();
    let (ok, msg) = api_reload(&d);
    assert!(ok, "{msg}");
    d.stop();
}

/// The top-level file itself replaced by a FIFO nobody writes: the read waits on a thread
/// of its own; the daemon goes on answering commands and stops at once on SIGTERM.
#[test]
fn a_config_that_never_arrives_does_not_stall_the_daemon() {
    let _b = common::backend("127.70.5.2:9100", "a", common::Mode::Name);
    let vip: SocketAddr = "127.70.5.1:8080".parse().unwrap();
    let good = vs("127.70.5.1", 8080, "", &[("127.70.5.2", 9100, 1)]);
    let d = Daemon::start("abuse-fifo", &good, vip);
    let conf = d.dir.join("k.conf");
    std::fs::remove_file(&conf).unwrap();
    assert!(std::process::Command::new("mkfifo")
        .arg(&conf)
        .status()
        .unwrap()
        .success());
    let pid = rustix::process::Pid::from_raw(d.pid().try_into().unwrap()).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::HUP).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    // Runtime commands still apply while the read waits.
    let (code, _, err) = d.adm(&[
        "-a",
        "-t",
        "127.70.5.1:8080",
        "-r",
        "127.70.5.3:9100",
        "-m",
        "-w",
        "0",
    ]);
    assert_eq!(code, 0, "{err}");
    still_serving(&d, vip);
    let t = Instant::now();
    let st = d.stop();
    assert!(st.success(), "{st:?}");
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "SIGTERM took {:?}",
        t.elapsed()
    );
}

/// `rvs reload` with a stale pid file that names another process (here a `sleep`) must
/// not signal it.
#[test]
fn reload_never_signals_a_stranger() {
    let dir = std::env::temp_dir().join(format!("rvs-abuse-stale-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("k.conf"),
        vs("127.70.6.1", 8080, "", &[("127.70.6.2", 9100, 1)]),
    )
    .unwrap();
    let mut sleeper = std::process::Command::new("sleep")
        .arg("60")
        .spawn()
        .unwrap();
    std::fs::write(
        dir.join("pid"),
        format!("{}\n{}\n", sleeper.id(), dir.join("k.conf").display()),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rvs"))
        .args(["reload", "--pid-file"])
        .arg(dir.join("pid"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("not an rvs daemon"), "{err}");
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        sleeper.try_wait().unwrap().is_none(),
        "the sleep was signalled"
    );
    let _ = sleeper.kill();
    let _ = sleeper.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

/// Descriptors the daemon holds, and how many of them are pipes.
fn fds(d: &Daemon) -> (usize, usize) {
    let dir = format!("/proc/{}/fd", d.pid());
    let links: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .map(|p| p.display().to_string())
        .collect();
    let pipes = links.iter().filter(|l| l.starts_with("pipe:")).count();
    (links.len(), pipes)
}

/// The daemon's undelivered count for one reason, from `/v1/status`.
fn undelivered(d: &Daemon, why: &str) -> u64 {
    let ans = d.control_raw(b"GET /v1/status HTTP/1.1\r\n\r\n");
    let body = ans.split_once("\r\n\r\n").unwrap().1;
    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    v["undelivered"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["reason"] == why)
        .map(|u| u["connections"].as_u64().unwrap())
        .sum()
}

/// A UDP flood from 400 sources against a service capped at 100 flows: the daemon's
/// descriptors stay bounded (it used to open a socket per source, 20,000 of them, until
/// nothing answered), the dropped datagrams are counted, and the TCP service, the control
/// API and the metrics on the same daemon keep answering.
#[test]
fn a_udp_flood_is_capped_and_counted() {
    let echo = std::net::UdpSocket::bind("127.70.7.2:9100").unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 1500];
        while let Ok((n, from)) = echo.recv_from(&mut buf) {
            let _ = echo.send_to(&buf[..n], from);
        }
    });
    let _b = common::backend("127.70.7.4:9100", "a", common::Mode::Name);
    let vip: SocketAddr = "127.70.7.3:8080".parse().unwrap();
    let conf = format!(
        "virtual_server 127.70.7.1 5353 {{\n    lvs_method NAT\n    protocol UDP\n    real_server 127.70.7.2 9100 {{\n    }}\n}}\n{}",
        vs("127.70.7.3", 8080, "", &[("127.70.7.4", 9100, 1)])
    );
    let metrics = "127.70.7.5:9300";
    let d = Daemon::start_args(
        "abuse-udp",
        &conf,
        vip,
        &["--max-udp-flows", "100", "--metrics", metrics],
    );
    let (before, _) = fds(&d);
    let mut socks = Vec::new();
    for i in 0..400u32 {
        let src = format!("127.70.8.{}:0", 1 + i % 200);
        let s = std::net::UdpSocket::bind(src).unwrap();
        s.send_to(b"ping", "127.70.7.1:5353").unwrap();
        socks.push(s);
        // Paced, so the kernel's receive queue of the service never overflows: every
        // datagram reaches rvs.
        if i % 20 == 19 {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    // Every datagram is either a flow or counted.
    let t = Instant::now();
    while undelivered(&d, "flow_limit") < 300 {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "flow_limit drops: {}",
            undelivered(&d, "flow_limit")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let (during, _) = fds(&d);
    assert!(
        during <= before + 110,
        "descriptors: {before} before, {during} during the flood"
    );
    still_serving(&d, vip);
    let text = common::scrape(metrics);
    assert!(
        text.contains("rvs_proxy_undelivered_connections_total{service=\"udp/127.70.7.1:5353\",reason=\"flow_limit\"} 300"),
        "{text}"
    );
    d.stop();
}

/// Past the descriptor budget for relayed traffic, new clients are reset at once and
/// counted, while the control API answers (fd exhaustion used to make `rvs adm` hang);
/// 200 idle connections to the metrics port hold at most 32 descriptors.
#[test]
fn descriptors_are_budgeted_and_control_keeps_working() {
    let held = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let l = TcpListener::bind("127.70.9.2:9100").unwrap();
    let h = held.clone();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            h.lock().unwrap().push(s);
        }
    });
    let vip: SocketAddr = "127.70.9.1:8080".parse().unwrap();
    let metrics = "127.70.9.3:9300";
    let d = Daemon::start_args(
        "abuse-fds",
        &vs("127.70.9.1", 8080, "", &[("127.70.9.2", 9100, 1)]),
        vip,
        &["--max-relay-fds", "40", "--metrics", metrics],
    );
    let (before, _) = fds(&d);
    let mut clients = Vec::new();
    for _ in 0..100 {
        clients.push(TcpStream::connect(vip).unwrap());
    }
    let t = Instant::now();
    while undelivered(&d, "descriptors") < 80 {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "descriptor refusals: {}",
            undelivered(&d, "descriptors")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // The count once the clients are all through (relayed or refused): the refusals can
    // reach 80 while the last relayed connections still open their sockets (a run
    // measured 38 here, then the idle connections below seemed to cost 48).
    let mut during = fds(&d).0;
    let t = Instant::now();
    loop {
        std::thread::sleep(Duration::from_millis(300));
        let now = fds(&d).0;
        if now == during || t.elapsed() > Duration::from_secs(10) {
            break;
        }
        during = now;
    }
    assert!(
        during <= before + 45,
        "descriptors: {before} before, {during} with 100 clients"
    );
    let (code, table, err) = d.adm(&["-Ln"]);
    assert_eq!(code, 0, "{err}");
    assert!(table.contains("127.70.9.1:8080"), "{table}");
    // Idle metrics connections: at most 32 kept.
    let idle: Vec<TcpStream> = (0..200)
        .filter_map(|_| TcpStream::connect(metrics).ok())
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let (with_idle, _) = fds(&d);
    assert!(
        with_idle <= during + 40,
        "descriptors: {during} before, {with_idle} with 200 idle metrics connections"
    );
    drop(idle);
    drop(clients);
    d.stop();
}

/// Bulk connections hold no splice pipe once idle: 20 connections that each moved 1 MiB
/// through the proxy and then stayed open keep at most a pooled handful of pipes (each
/// used to keep two descriptors per direction for its life).
#[test]
fn idle_bulk_connections_hold_no_pipes() {
    let _b = common::backend("127.70.10.2:9100", "echo", common::Mode::Echo);
    let vip: SocketAddr = "127.70.10.1:8080".parse().unwrap();
    let d = Daemon::start(
        "abuse-pipes",
        &vs("127.70.10.1", 8080, "", &[("127.70.10.2", 9100, 1)]),
        vip,
    );
    let chunk = vec![5u8; 1 << 20];
    let mut conns = Vec::new();
    for _ in 0..20 {
        let mut c = TcpStream::connect(vip).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut r = c.try_clone().unwrap();
        let reader = std::thread::spawn(move || {
            let mut got = vec![0u8; 1 << 20];
            r.read_exact(&mut got).unwrap();
        });
        c.write_all(&chunk).unwrap();
        reader.join().unwrap();
        conns.push(c);
    }
    let (_, pipes) = fds(&d);
    assert!(
        pipes <= 8,
        "{pipes} pipe descriptors held by 20 idle connections"
    );
    drop(conns);
    d.stop();
}

/// A real server that is the virtual server itself is flagged at its line by `rvs check`,
/// and the proxy refuses to connect to itself: the client is reset and counted, instead of
/// each connection opening another (one request drove the daemon to 19,320 descriptors).
#[test]
fn a_real_server_equal_to_the_vip_does_not_loop() {
    let vip: SocketAddr = "127.70.11.1:8080".parse().unwrap();
    let conf = vs("127.70.11.1", 8080, "", &[("127.70.11.1", 8080, 1)]);
    let d = Daemon::start("abuse-loop", &conf, vip);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rvs"))
        .args(["check", "-f"])
        .arg(d.dir.join("k.conf"))
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains(":4:") && text.contains("is the virtual server itself"),
        "{text}"
    );
    let (before, _) = fds(&d);
    let mut c = TcpStream::connect(vip).unwrap();
    let (_, end) = drain(&mut c);
    assert_eq!(
        end.map_err(|e| e.kind()),
        Err(std::io::ErrorKind::ConnectionReset)
    );
    assert_eq!(undelivered(&d, "loop"), 1);
    let (after, _) = fds(&d);
    assert!(after <= before + 2, "descriptors: {before} -> {after}");
    d.stop();
}

/// `POST /v1/commands` makes the checks `rvs adm` makes, with ipvsadm's messages: weight
/// -1 and -2^31, a port-0 service that is not persistent (it used to bind a random port
/// while listing `:0`), an IPv6 real server in an IPv4 NAT service. Nothing is applied.
#[test]
fn the_api_checks_commands_as_the_cli_does() {
    let _b = common::backend("127.70.12.2:9100", "a", common::Mode::Name);
    let vip: SocketAddr = "127.70.12.1:8080".parse().unwrap();
    let d = Daemon::start(
        "abuse-api",
        &vs("127.70.12.1", 8080, "", &[("127.70.12.2", 9100, 1)]),
        vip,
    );
    let svc = r#"{"proto":"tcp","addr":"127.70.12.1","port":8080}"#;
    let dest = |addr: &str, weight: i64| {
        format!(
            r#"{{"op":"add_real_server","service":{svc},"real_server":{{"addr":"{addr}","port":9100,"forwarding":"masq","weight":{weight}}}}}"#
        )
    };
    let port0 = r#"{"op":"add_service","service":{"proto":"tcp","addr":"127.70.12.1","port":0},"scheduler":"rr"}"#;
    let cases = [
        (dest("127.70.12.3", -1), "illegal weight specified"),
        (
            dest("127.70.12.3", -2_147_483_648),
            "illegal weight specified",
        ),
        (
            port0.to_owned(),
            "Zero port specified for non-persistent service",
        ),
        (
            dest("fd00:198:18::3", 1),
            "Different address family is allowed only for tunneling servers",
        ),
    ];
    let (_, before, _) = d.adm(&["-Ln"]);
    for (body, why) in cases {
        let req = format!(
            "POST /v1/commands HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let ans = d.control_raw(req.as_bytes());
        assert!(ans.starts_with("HTTP/1.1 400"), "{body}\n{ans}");
        assert!(ans.contains(why), "{body}\n{ans}");
    }
    let (_, after, _) = d.adm(&["-Ln"]);
    assert_eq!(before, after, "nothing applied");
    // The same command through `rvs adm`: the same message.
    let (code, _, err) = d.adm(&[
        "-a",
        "-t",
        "127.70.12.1:8080",
        "-r",
        "127.70.12.3:9100",
        "-m",
        "-w",
        "-1",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("illegal weight specified"), "{err}");
    d.stop();
}

/// Memory comes back after a slowloris flood: five rounds of 3,000 connections that each
/// send one byte and hold, then close. Once no connection is left, the daemon's resident
/// memory is near where it started, round after round (nine rounds of 9,000 once left it
/// at 234 MB with no connection open: freed buffers kept by the allocator).
#[test]
fn memory_is_given_back_after_a_slowloris_flood() {
    let l = TcpListener::bind("127.70.13.2:9100").unwrap();
    let held = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let h = held.clone();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            h.lock().unwrap().push(s);
        }
    });
    let vip: SocketAddr = "127.70.13.1:8080".parse().unwrap();
    let d = Daemon::start(
        "abuse-memory",
        &vs("127.70.13.1", 8080, "", &[("127.70.13.2", 9100, 1)]),
        vip,
    );
    let live = |d: &Daemon| -> u64 {
        let ans = d.control_raw(b"GET /v1/status HTTP/1.1\r\n\r\n");
        let v: serde_json::Value =
            serde_json::from_str(ans.split_once("\r\n\r\n").unwrap().1).unwrap();
        v["live_connections"].as_u64().unwrap()
    };
    let start = mem_kib(&d, "VmRSS");
    let mut after = Vec::new();
    let mut peak = 0;
    for round in 0..5 {
        let mut clients = Vec::new();
        for i in 0..3000u32 {
            let src: SocketAddr = format!("127.70.14.{}:0", 1 + i % 250).parse().unwrap();
            let s =
                socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
            s.bind(&src.into()).unwrap();
            s.connect(&vip.into()).unwrap();
            let mut c = TcpStream::from(s);
            c.write_all(b"G").unwrap();
            clients.push(c);
        }
        // Every connection relayed: the real server has accepted all 3,000 (the proxy
        // counts a client live before it connects on, and a real-server socket accepted
        // after the clear below would hold its connection half-open for the FIN timeout).
        let t = Instant::now();
        while held.lock().unwrap().len() < 3000 {
            assert!(
                t.elapsed() < Duration::from_mins(1),
                "round {round}: {} accepted",
                held.lock().unwrap().len()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        std::thread::sleep(Duration::from_millis(500));
        peak = peak.max(mem_kib(&d, "VmRSS"));
        drop(clients);
        held.lock().unwrap().clear();
        let t = Instant::now();
        while live(&d) > 0 {
            assert!(
                t.elapsed() < Duration::from_mins(1),
                "round {round}: {} live",
                live(&d)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        // The proxy gives memory back within seconds of its connections closing (polled:
        // the trim runs on the proxy's 1 s tick).
        // Given back: at most half of what the flood added is still resident, round after
        // round (without the trim it was half after one round and all of it after a
        // few). Idle, a third of it is typical; with a busy CPU beside the test the peak
        // is sampled lower and 36 % was seen, so a third is not the bound.
        let bound = start + (peak - start) / 2;
        let t = Instant::now();
        let mut now = mem_kib(&d, "VmRSS");
        while now >= bound && t.elapsed() < Duration::from_secs(20) {
            std::thread::sleep(Duration::from_millis(250));
            now = mem_kib(&d, "VmRSS");
        }
        after.push(now);
        assert!(
            now < bound,
            "round {round}: RSS {now} KiB with no connection left (start {start}, peak {peak}, rounds {after:?})"
        );
    }
    eprintln!("RSS KiB: start {start}, peak {peak}, after each round {after:?}");
    d.stop();
}

/// A service with 100,000 real servers loads, applies and reloads in linear time: the
/// duplicate check of the loader and the destination lookups of the table were
/// quadratic (a 167k file blocked the main loop for 67 s on reload; this one would take
/// minutes in a debug build). Bounded generously: minutes would fail, seconds pass.
#[test]
fn a_hundred_thousand_real_servers_load_in_linear_time() {
    use std::fmt::Write as _;
    let rs = |n: u32, extra: &str| {
        let mut conf = String::from(
            "virtual_server 127.70.16.1 8080 {\n    lvs_method NAT\n    protocol TCP\n    lvs_sched rr\n",
        );
        for i in 0..n {
            let _ = writeln!(
                conf,
                "    real_server 10.{}.{}.{} 80 {{\n    }}",
                i >> 16,
                (i >> 8) & 255,
                i & 255
            );
        }
        conf + extra + "}\n"
    };
    let vip: SocketAddr = "127.70.16.1:8080".parse().unwrap();
    let t = Instant::now();
    let d = Daemon::start("abuse-large", &rs(100_000, ""), vip);
    let started = t.elapsed();
    let (code, table, err) = d.adm(&["-Ln"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        table.lines().filter(|l| l.contains("-> 10.")).count(),
        100_000
    );
    std::fs::write(
        d.dir.join("k.conf"),
        rs(100_000, "    real_server 10.200.0.1 80 {\n    }\n"),
    )
    .unwrap();
    let t = Instant::now();
    let (ok, msg) = api_reload(&d);
    let reloaded = t.elapsed();
    assert!(ok, "{msg}");
    assert!(msg.contains("real servers +1 -0"), "{msg}");
    eprintln!("100k real servers: started in {started:?}, reloaded in {reloaded:?}");
    assert!(
        started < Duration::from_mins(1) && reloaded < Duration::from_mins(1),
        "started in {started:?}, reloaded in {reloaded:?}"
    );
    d.stop();
}
