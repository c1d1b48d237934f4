//! Health checking end to end through `rvs run`: a real server that dies leaves the pool
//! within `delay_loop + connect_timeout`, and comes back when it answers again.

// Tests panic on failure so that the failing line is the report (STYLE.md).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::format_push_string,
    clippy::items_after_statements
)]

mod common;

use common::{backend, Daemon, Mode};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

/// Answers with its name until the returned flag is cleared; then refuses connections.
fn stoppable(
    addr: &'static str,
    name: &'static str,
) -> std::sync::Arc<std::sync::atomic::AtomicBool> {
    let on = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let flag = on.clone();
    std::thread::spawn(move || loop {
        if flag.load(std::sync::atomic::Ordering::SeqCst) {
            let l = TcpListener::bind(addr).unwrap();
            l.set_nonblocking(true).unwrap();
            while flag.load(std::sync::atomic::Ordering::SeqCst) {
                match l.accept() {
                    Ok((mut s, _)) => {
                        use std::io::Write;
                        s.set_nonblocking(false).unwrap();
                        let _ = s.write_all(format!("{name}\n").as_bytes());
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
            drop(l);
        }
        std::thread::sleep(Duration::from_millis(20));
    });
    on
}

fn config(vip: &str, checker: &str, extra: &str, rs: &[&str]) -> String {
    let mut s = format!("virtual_server {vip} 8080 {{\n    delay_loop 1\n    lvs_sched rr\n    lvs_method NAT\n    protocol TCP\n{extra}");
    for a in rs {
        s += &format!("    real_server {a} 9100 {{\n        {checker}\n    }}\n");
    }
    s + "}\n"
}

/// The names of `n` answers; a refused or reset connection gives "".
fn names(vip: SocketAddr, n: usize) -> Vec<String> {
    (0..n)
        .map(|_| {
            let Ok(s) = TcpStream::connect(vip) else {
                return String::new();
            };
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut line = String::new();
            let _ = std::io::BufRead::read_line(&mut std::io::BufReader::new(&s), &mut line);
            line.trim().to_owned()
        })
        .collect()
}

#[test]
fn tcp_check_removes_and_restores_a_real_server() {
    let _a = backend("127.30.0.1:9100", "a", Mode::Name);
    let b = stoppable("127.30.0.2:9100", "b");
    let conf = config(
        "127.30.1.1",
        "TCP_CHECK {\n            connect_timeout 1\n            warmup 0\n        }",
        "",
        &["127.30.0.1", "127.30.0.2"],
    );
    let vip: SocketAddr = "127.30.1.1:8080".parse().unwrap();
    // Without the proxy's retry of refused connections, only the checker keeps requests
    // away from a dead server.
    let d = Daemon::start_args("tcpcheck", &conf, vip, &["--no-retry"]);
    std::thread::sleep(Duration::from_millis(300));
    assert!(names(vip, 4).contains(&"b".to_owned()));
    // b goes away: within delay_loop (1 s) + connect_timeout (1 s) (+ slack for a loaded
    // machine) it leaves the pool, and every request lands on a.
    b.store(false, std::sync::atomic::Ordering::SeqCst);
    let t = Instant::now();
    // Connections caught in b's backlog as it closes may fail; once the check has removed
    // b, every request lands on a.
    while names(vip, 6).iter().any(|n| n != "a") {
        assert!(
            t.elapsed() < Duration::from_millis(3500),
            "b not removed within delay_loop + connect_timeout (+ slack)"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let removed_after = t.elapsed();
    eprintln!("b removed after {removed_after:?}");
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        names(vip, 6).iter().all(|n| n == "a"),
        "b stays out while down"
    );
    // It comes back.
    b.store(true, std::sync::atomic::Ordering::SeqCst);
    let t = Instant::now();
    while !names(vip, 4).contains(&"b".to_owned()) {
        assert!(t.elapsed() < Duration::from_secs(10), "b did not come back");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(d.stop().success());
}

#[test]
fn failed_http_check_with_inhibit_and_misc_dynamic_weight() {
    // HTTP_GET wants status 204 from a and b: a answers 200 (fails), b answers 204.
    let http = |addr: &'static str, status: &'static str| {
        let l = TcpListener::bind(addr).unwrap();
        std::thread::spawn(move || {
            for s in l.incoming().flatten() {
                use std::io::{Read, Write};
                let mut s = s;
                let mut buf = [0u8; 1024];
                let n = s.read(&mut buf).unwrap_or(0);
                let req = String::from_utf8_lossy(&buf[..n]).to_string();
                if req.starts_with("GET /health") {
                    let _ = s.write_all(format!("HTTP/1.0 {status} X\r\n\r\n").as_bytes());
                } else {
                    let _ = s.write_all(format!("{addr}\n").as_bytes());
                }
            }
        });
    };
    http("127.31.0.1:9100", "200");
    http("127.31.0.2:9100", "204");
    let checker = "HTTP_GET {\n            url {\n                path /health\n                status_code 204\n            }\n            connect_timeout 1\n            warmup 0\n        }";
    let conf = config(
        "127.31.1.1",
        checker,
        "    inhibit_on_failure\n",
        &["127.31.0.1", "127.31.0.2"],
    );
    let vip: SocketAddr = "127.31.1.1:8080".parse().unwrap();
    let d = Daemon::start("httpcheck", &conf, vip);
    // a fails its first check at once (not yet confirmed up): weight 0, so only b serves.
    let t = Instant::now();
    loop {
        let got: Vec<String> = (0..4)
            .map(|_| {
                let mut s = TcpStream::connect(vip).unwrap();
                use std::io::{Read, Write};
                s.write_all(b"hi\n").unwrap();
                let mut out = String::new();
                s.read_to_string(&mut out).unwrap();
                out.trim().to_owned()
            })
            .collect();
        if got.iter().all(|n| n == "127.31.0.2:9100") {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "a still serves: {got:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    d.stop();
}

#[test]
fn notify_scripts_and_quorum_with_sorry_server() {
    // Two real servers of weight 1 with quorum 2: when b dies the quorum is lost, a is
    // taken out too, the sorry server serves, and quorum_down / notify_down run.
    let _a = backend("127.32.0.1:9100", "a", Mode::Name);
    let _sorry = backend("127.32.0.9:9100", "sorry", Mode::Name);
    let b = stoppable("127.32.0.2:9100", "b");
    let dir = std::env::temp_dir().join(format!("rvs-notify-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mark = |n: &str| dir.join(n).display().to_string();
    let checker = "TCP_CHECK {\n            connect_timeout 1\n            warmup 0\n        }";
    let mut conf = format!(
        "global_defs {{\n    enable_script_security\n    script_user root\n}}\nvirtual_server 127.32.1.1 8080 {{\n    delay_loop 1\n    lvs_sched rr\n    lvs_method NAT\n    protocol TCP\n    quorum 2\n    sorry_server 127.32.0.9 9100\n    quorum_down \"/usr/bin/touch {}\"\n    quorum_up \"/usr/bin/touch {}\"\n",
        mark("qdown"),
        mark("qup")
    );
    conf += &format!("    real_server 127.32.0.1 9100 {{\n        {checker}\n    }}\n");
    conf += &format!(
        "    real_server 127.32.0.2 9100 {{\n        notify_down \"/usr/bin/touch {}\"\n        notify_up \"/usr/bin/touch {}\"\n        {checker}\n    }}\n}}\n",
        mark("bdown"),
        mark("bup")
    );
    let vip: SocketAddr = "127.32.1.1:8080".parse().unwrap();
    let d = Daemon::start_args("quorum", &conf, vip, &["--no-retry"]);
    std::thread::sleep(Duration::from_millis(300));
    b.store(false, std::sync::atomic::Ordering::SeqCst);
    let t = Instant::now();
    while !names(vip, 4).iter().all(|n| n == "sorry") {
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "the sorry server did not take over"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let t = Instant::now();
    while !(dir.join("qdown").exists() && dir.join("bdown").exists()) {
        assert!(
            t.elapsed() < Duration::from_secs(3),
            "quorum_down / notify_down did not run"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    b.store(true, std::sync::atomic::Ordering::SeqCst);
    let t = Instant::now();
    while !names(vip, 4).iter().any(|n| n == "a") {
        assert!(
            t.elapsed() < Duration::from_secs(8),
            "the real servers did not come back"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let t = Instant::now();
    while !(dir.join("qup").exists() && dir.join("bup").exists()) {
        assert!(
            t.elapsed() < Duration::from_secs(3),
            "quorum_up / notify_up did not run"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    d.stop();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn file_check_takes_a_server_out_and_back() {
    let _a = backend("127.33.0.1:9100", "a", Mode::Name);
    let _b = backend("127.33.0.2:9100", "b", Mode::Name);
    let dir = std::env::temp_dir().join(format!("rvs-filecheck-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("b.state");
    std::fs::write(&f, "0\n").unwrap();
    // weight 0: a non-zero value in the file is a fault.
    let conf = format!(
        "track_file b_state {{\n    file \"{}\"\n    weight 0\n}}\nvirtual_server 127.33.1.1 8080 {{\n    lvs_sched rr\n    lvs_method NAT\n    protocol TCP\n    real_server 127.33.0.1 9100 {{\n    }}\n    real_server 127.33.0.2 9100 {{\n        FILE_CHECK {{\n            track_file b_state\n        }}\n    }}\n}}\n",
        f.display()
    );
    let vip: SocketAddr = "127.33.1.1:8080".parse().unwrap();
    let d = Daemon::start("filecheck", &conf, vip);
    std::thread::sleep(Duration::from_millis(300));
    assert!(names(vip, 4).contains(&"b".to_owned()));
    std::fs::write(&f, "1\n").unwrap();
    let t = Instant::now();
    while names(vip, 4).contains(&"b".to_owned()) {
        assert!(
            t.elapsed() < Duration::from_secs(4),
            "b still serves after its file faulted"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::fs::write(&f, "0\n").unwrap();
    let t = Instant::now();
    while !names(vip, 4).contains(&"b".to_owned()) {
        assert!(t.elapsed() < Duration::from_secs(4), "b did not come back");
        std::thread::sleep(Duration::from_millis(100));
    }
    d.stop();
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A server that answers SMTP, DNS or UDP echo while `on` is set; when cleared, SMTP
/// refuses connections, DNS answers SERVFAIL and the UDP port is closed (ICMP
/// unreachable).
fn switchable(
    kind: &'static str,
    addr: &'static str,
) -> std::sync::Arc<std::sync::atomic::AtomicBool> {
    use std::io::{Read, Write};
    use std::sync::atomic::Ordering::SeqCst;
    let on = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let flag = on.clone();
    std::thread::spawn(move || loop {
        match kind {
            "smtp" if flag.load(SeqCst) => {
                let l = TcpListener::bind(addr).unwrap();
                l.set_nonblocking(true).unwrap();
                while flag.load(SeqCst) {
                    if let Ok((mut s, _)) = l.accept() {
                        s.set_nonblocking(false).unwrap();
                        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                        let _ = s.write_all(b"220 mail ESMTP\r\n");
                        let mut buf = [0u8; 256];
                        let n = s.read(&mut buf).unwrap_or(0);
                        if buf[..n].starts_with(b"HELO ") {
                            let _ = s.write_all(b"250 ok\r\n");
                        }
                    } else {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                }
            }
            "dns" => {
                let u = std::net::UdpSocket::bind(addr).unwrap();
                u.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
                let mut buf = [0u8; 512];
                loop {
                    if let Ok((n, from)) = u.recv_from(&mut buf) {
                        let mut r = buf[..n].to_vec();
                        r[2] |= 0x80;
                        r[3] = (r[3] & 0xf0) | if flag.load(SeqCst) { 0 } else { 2 };
                        let _ = u.send_to(&r, from);
                    }
                }
            }
            "udp" if flag.load(SeqCst) => {
                let u = std::net::UdpSocket::bind(addr).unwrap();
                u.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
                let mut buf = [0u8; 512];
                while flag.load(SeqCst) {
                    if let Ok((n, from)) = u.recv_from(&mut buf) {
                        let _ = u.send_to(&buf[..n], from);
                    }
                }
            }
            _ => {}
        }
        std::thread::sleep(Duration::from_millis(20));
    });
    on
}

/// `SMTP_CHECK`, `DNS_CHECK` and `UDP_CHECK` through `rvs run`: each real server leaves the
/// table when its service fails and comes back when it answers again (up → down → up).
#[test]
fn smtp_dns_and_udp_checks_drive_real_servers() {
    use std::sync::atomic::Ordering::SeqCst;
    let servers = [
        ("127.34.0.1", switchable("smtp", "127.34.0.1:2525"), "SMTP_CHECK {\n            connect_port 2525\n            helo_name rvs.test\n"),
        ("127.34.0.2", switchable("dns", "127.34.0.2:5353"), "DNS_CHECK {\n            connect_port 5353\n            type A\n            name example.org\n"),
        ("127.34.0.3", switchable("udp", "127.34.0.3:7000"), "UDP_CHECK {\n            connect_port 7000\n            payload 01ab\n            require_reply 01xx\n"),
    ];
    let mut conf = "virtual_server 127.34.1.1 8080 {\n    delay_loop 1\n    lvs_sched rr\n    lvs_method NAT\n    protocol TCP\n".to_owned();
    for (ip, _, checker) in &servers {
        conf += &format!("    real_server {ip} 9100 {{\n        {checker}            connect_timeout 1\n            retry 0\n            warmup 0\n        }}\n    }}\n");
    }
    conf += "}\n";
    let vip: SocketAddr = "127.34.1.1:8080".parse().unwrap();
    let d = Daemon::start("smtpdnsudp", &conf, vip);
    let table = || d.adm(&["-Ln"]).1;
    let wait = |what: &str, f: &dyn Fn(&str) -> bool| {
        let t = Instant::now();
        loop {
            let tb = table();
            if f(&tb) {
                return t.elapsed();
            }
            assert!(t.elapsed() < Duration::from_secs(6), "{what}:\n{tb}");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    // A few rounds of checks succeed: all three stay in.
    std::thread::sleep(Duration::from_millis(2500));
    let tb = table();
    for (ip, _, _) in &servers {
        assert!(
            tb.contains(&format!("{ip}:9100")),
            "{ip} not in the table:\n{tb}"
        );
    }
    for (ip, on, checker) in &servers {
        let name = checker.split_whitespace().next().unwrap();
        on.store(false, SeqCst);
        let took = wait(&format!("{name}: {ip} still in the table"), &|tb| {
            !tb.contains(&format!("{ip}:9100"))
        });
        eprintln!("{name}: {ip} removed after {took:?}");
        on.store(true, SeqCst);
        wait(&format!("{name}: {ip} did not come back"), &|tb| {
            tb.contains(&format!("{ip}:9100"))
        });
    }
    d.stop();
}

/// `sorry_server_inhibit` keeps the sorry server in the table at weight 0 while the quorum
/// holds and gives it weight 1 (the real servers out) when it is lost; a virtual server
/// without a sorry server keeps its live real servers when its quorum is lost (keepalived
/// only runs `quorum_down` then). Both seen in `rvs adm -Ln`, as ipvsadm shows them.
#[test]
fn sorry_server_inhibit_and_quorum_without_sorry() {
    let _a = backend("127.37.0.1:9100", "a", Mode::Name);
    let b = stoppable("127.37.0.2:9100", "b");
    let _sorry = backend("127.37.0.9:9100", "sorry", Mode::Name);
    let checker = "TCP_CHECK {\n            connect_timeout 1\n            retry 0\n            warmup 0\n        }";
    let mut conf = String::new();
    for (vip, sorry) in [
        (
            "127.37.1.1",
            "    sorry_server 127.37.0.9 9100\n    sorry_server_inhibit\n",
        ),
        ("127.37.1.2", ""),
    ] {
        conf += &format!("virtual_server {vip} 8080 {{\n    delay_loop 1\n    lvs_sched rr\n    lvs_method NAT\n    protocol TCP\n    quorum 2\n{sorry}");
        for rs in ["127.37.0.1", "127.37.0.2"] {
            conf += &format!("    real_server {rs} 9100 {{\n        {checker}\n    }}\n");
        }
        conf += "}\n";
    }
    let d = Daemon::start("sorryinhibit", &conf, "127.37.1.1:8080".parse().unwrap());
    let service = |vip: &str| {
        let out = d.adm(&["-Ln", "-t", &format!("{vip}:8080")]).1;
        out.lines()
            .filter(|l| l.contains("->") && !l.contains("RemoteAddress"))
            .map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                format!("{} {}", f[1], f[3])
            })
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect::<Vec<_>>()
    };
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        service("127.37.1.1"),
        [
            "127.37.0.1:9100 1",
            "127.37.0.2:9100 1",
            "127.37.0.9:9100 0"
        ],
        "quorum held: the inhibited sorry server is listed at weight 0"
    );
    b.store(false, std::sync::atomic::Ordering::SeqCst);
    let t = Instant::now();
    while service("127.37.1.1") != ["127.37.0.9:9100 1"] {
        assert!(
            t.elapsed() < Duration::from_secs(6),
            "quorum lost: only the sorry server, weight 1: {:?}",
            service("127.37.1.1")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        service("127.37.1.2"),
        ["127.37.0.1:9100 1"],
        "no sorry server: the live real server stays"
    );
    assert_eq!(
        names("127.37.1.1:8080".parse().unwrap(), 2),
        ["sorry", "sorry"]
    );
    b.store(true, std::sync::atomic::Ordering::SeqCst);
    let t = Instant::now();
    while service("127.37.1.1").len() != 3 {
        assert!(t.elapsed() < Duration::from_secs(8), "quorum not regained");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(service("127.37.1.1")[2], "127.37.0.9:9100 0");
    d.stop();
}

/// keepalived's `omega`: stopping the daemon runs `notify_down` of each live real server
/// and `quorum_down` of a virtual server with `omega`; a reload that removes a live real
/// server from a virtual server that stays runs its `notify_down` (omega or not).
#[test]
fn omega_scripts_at_stop_and_removal_on_reload() {
    let _a = backend("127.38.0.1:9100", "a", Mode::Name);
    let _b = backend("127.38.0.2:9100", "b", Mode::Name);
    let _c = backend("127.38.0.3:9100", "c", Mode::Name);
    let dir = std::env::temp_dir().join(format!("rvs-omega-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mark = |n: &str| dir.join(n).display().to_string();
    let checker = "TCP_CHECK {\n            connect_timeout 1\n            warmup 0\n        }";
    let rs = |ip: &str, name: &str| {
        format!(
            "    real_server {ip} 9100 {{\n        notify_down \"/usr/bin/touch {}\"\n        {checker}\n    }}\n",
            mark(&format!("{name}-down"))
        )
    };
    let conf = |with_c: bool| {
        let mut c = format!(
            "global_defs {{\n    enable_script_security\n    script_user root\n}}\n\
             virtual_server 127.38.1.1 8080 {{\n    delay_loop 1\n    lvs_sched rr\n    lvs_method NAT\n    protocol TCP\n    omega\n    quorum_down \"/usr/bin/touch {}\"\n",
            mark("q1-down")
        );
        c += &rs("127.38.0.1", "a");
        c += &rs("127.38.0.2", "b");
        c += "}\nvirtual_server 127.38.1.2 8080 {\n    delay_loop 1\n    lvs_sched rr\n    lvs_method NAT\n    protocol TCP\n";
        if with_c {
            c += &rs("127.38.0.3", "c");
        }
        c += &rs("127.38.0.1", "a2");
        c + "}\n"
    };
    let d = Daemon::start("omega", &conf(true), "127.38.1.1:8080".parse().unwrap());
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        std::fs::read_dir(&dir).unwrap().next().is_none(),
        "no script yet"
    );
    // c leaves the second virtual server (no omega there): its notify_down runs.
    let (ok, msg) = d.reload(&conf(false));
    assert!(ok, "{msg}");
    let t = Instant::now();
    while !dir.join("c-down").exists() {
        assert!(
            t.elapsed() < Duration::from_secs(3),
            "c's notify_down did not run"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!dir.join("a2-down").exists() && !dir.join("a-down").exists());
    // Stop: the omega virtual server's live real servers and its quorum go down; the
    // other one (no omega) runs nothing.
    assert!(d.stop().success());
    for f in ["a-down", "b-down", "q1-down"] {
        assert!(dir.join(f).exists(), "{f} did not run at stop");
    }
    assert!(!dir.join("a2-down").exists(), "no omega: nothing at stop");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Issue #18 item 4: `url { regex }`: a back end that answers 200 with an error page is
/// taken out (it stayed in the pool), and comes back when its page matches again.
#[test]
fn a_page_that_fails_its_regex_takes_the_server_out() {
    let healthy = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let page = |addr: &'static str, ok: std::sync::Arc<std::sync::atomic::AtomicBool>| {
        let l = TcpListener::bind(addr).unwrap();
        std::thread::spawn(move || {
            for s in l.incoming().flatten() {
                use std::io::{Read, Write};
                let mut s = s;
                let mut buf = [0u8; 1024];
                let n = s.read(&mut buf).unwrap_or(0);
                let req = String::from_utf8_lossy(&buf[..n]).to_string();
                if req.starts_with("GET /health") {
                    let body = if ok.load(std::sync::atomic::Ordering::SeqCst) {
                        "<html>Status: OK</html>"
                    } else {
                        "<html>Status: database ERROR</html>"
                    };
                    let _ = s.write_all(format!("HTTP/1.0 200 OK\r\n\r\n{body}").as_bytes());
                } else {
                    let _ = s.write_all(format!("{addr}\n").as_bytes());
                }
            }
        });
    };
    page(
        "127.35.0.1:9100",
        std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true)),
    );
    page("127.35.0.2:9100", healthy.clone());
    let checker = "HTTP_GET {\n            url {\n                path /health\n                \
                   regex \"status: ok\"\n                regex_options caseless\n            }\n            \
                   connect_timeout 1\n            warmup 0\n        }";
    let conf = config("127.35.1.1", checker, "", &["127.35.0.1", "127.35.0.2"]);
    let vip: SocketAddr = "127.35.1.1:8080".parse().unwrap();
    let d = Daemon::start("httpregex", &conf, vip);
    let served = || -> Vec<String> {
        (0..4)
            .map(|_| {
                let mut s = TcpStream::connect(vip).unwrap();
                use std::io::{Read, Write};
                s.write_all(b"hi\n").unwrap();
                let mut out = String::new();
                let _ = s.read_to_string(&mut out);
                out.trim().to_owned()
            })
            .collect()
    };
    // b answers 200, but its page says ERROR: out.
    let t = Instant::now();
    while !served().iter().all(|n| n == "127.35.0.1:9100") {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "b still serves with an error page"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // The reason is the regex, not the connection (`rvs status` shows the last result).
    let t = Instant::now();
    while !d.status().contains("Regex match failed") {
        assert!(t.elapsed() < Duration::from_secs(10), "{}", d.status());
        std::thread::sleep(Duration::from_millis(100));
    }
    // Its page is healthy again: back in.
    healthy.store(true, std::sync::atomic::Ordering::SeqCst);
    let t = Instant::now();
    while !served().contains(&"127.35.0.2:9100".to_owned()) {
        assert!(t.elapsed() < Duration::from_secs(10), "b did not come back");
        std::thread::sleep(Duration::from_millis(200));
    }
    d.stop();
}

/// Issue #18 item 6: a `MISC_CHECK` with `user nobody` runs as nobody (it ran as root): the
/// script writes the uid it runs with. Needs root (to switch users).
#[test]
#[ignore = "needs root to run a script as another user: ./test.sh runs it as root"]
fn a_misc_check_runs_as_its_own_user() {
    use std::os::unix::fs::PermissionsExt;
    require_root();
    let nobody = std::fs::read_to_string("/etc/passwd")
        .unwrap()
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f[0] == "nobody").then(|| f[2].to_owned())
        })
        .expect("a nobody user");
    let dir = std::env::temp_dir().join(format!("rvs-misc-user-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let script = dir.join("check.sh");
    let out = dir.join("uid");
    std::fs::write(
        &script,
        format!("#!/bin/sh\nid -u > {}\nexit 0\n", out.display()),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let _b = backend("127.35.2.1:9100", "a", Mode::Name);
    let checker = format!(
        "MISC_CHECK {{\n            misc_path {}\n            user nobody\n        }}",
        script.display()
    );
    let conf = config("127.35.3.1", &checker, "", &["127.35.2.1"]);
    let d = Daemon::start("miscuser", &conf, "127.35.3.1:8080".parse().unwrap());
    let t = Instant::now();
    while !out.exists() {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "the MISC_CHECK never ran"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(std::fs::read_to_string(&out).unwrap().trim(), nobody);
    d.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

/// Issue #18 item 8: `startup_script` runs before anything starts (and is waited for, at
/// most its timeout: a script that hangs is killed), `shutdown_script` after everything
/// stopped.
#[test]
fn startup_and_shutdown_scripts_run_and_are_bounded() {
    let dir = std::env::temp_dir().join(format!("rvs-start-stop-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("log");
    let up = dir.join("up.sh");
    let down = dir.join("down.sh");
    // The start script records whether the service listened already (it must not).
    std::fs::write(
        &up,
        format!(
            "#!/bin/sh\nif (echo > /dev/tcp/127.35.5.1/8080) 2>/dev/null; then echo listening >> {l}; fi\n\
             echo start >> {l}\nsleep 30\n",
            l = log.display()
        ),
    )
    .unwrap();
    std::fs::write(
        &down,
        format!("#!/bin/sh\necho stop >> {}\n", log.display()),
    )
    .unwrap();
    for f in [&up, &down] {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let _b = backend("127.35.4.1:9100", "a", Mode::Name);
    let conf = format!(
        "global_defs {{\n    startup_script \"/bin/bash {}\"\n    startup_script_timeout 2\n    \
         shutdown_script {}\n}}\n{}",
        up.display(),
        down.display(),
        config(
            "127.35.5.1",
            "TCP_CHECK {\n            connect_timeout 1\n        }",
            "",
            &["127.35.4.1"]
        )
    );
    let t = Instant::now();
    let d = Daemon::start("startstop", &conf, "127.35.5.1:8080".parse().unwrap());
    let took = t.elapsed();
    // Waited for (2 s timeout), then killed: not the script's 30 s.
    assert!(
        took >= Duration::from_secs(2),
        "started after {took:?}: the script was not waited for"
    );
    assert!(
        took < Duration::from_secs(25),
        "started after {took:?}: the hung script was not killed"
    );
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "start\n");
    d.stop();
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "start\nstop\n");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Fails (never skips) a root-only test run as another user.
fn require_root() {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0")),
        "needs root (CI runs it as root)"
    );
}

/// The lines written to a FIFO, as they come (read by a thread of their own).
fn fifo_lines(path: &std::path::Path) -> std::sync::mpsc::Receiver<String> {
    use std::io::BufRead;
    let f = std::fs::File::open(path).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for l in std::io::BufReader::new(f).lines().map_while(Result::ok) {
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    rx
}

/// Issue #18 item 8: `lvs_notify_fifo` (and `notify_fifo`) get keepalived's checker lines,
/// `RS [rs]:tcp:port [vip]:tcp:port DOWN` and `VS [vip]:tcp:port DOWN` (only VRRP lines were
/// written).
#[test]
fn checker_lines_reach_the_lvs_notify_fifo() {
    let dir = std::env::temp_dir().join(format!("rvs-lvs-fifo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let fifo = dir.join("lvs.fifo");
    let conf = format!(
        "global_defs {{\n    lvs_notify_fifo {}\n}}\n{}",
        fifo.display(),
        config(
            "127.35.7.1",
            "TCP_CHECK {\n            connect_timeout 1\n            retry 0\n        }",
            "    quorum 1\n",
            &["127.35.6.2"]
        )
    );
    let d = Daemon::start("lvsfifo", &conf, "127.35.7.1:8080".parse().unwrap());
    // rvs creates the FIFO and holds it open: lines wait in it for a reader.
    let rx = fifo_lines(&fifo);
    let wait_line = |want: &str| {
        let t = Instant::now();
        loop {
            let left = Duration::from_secs(20).saturating_sub(t.elapsed());
            let l = rx
                .recv_timeout(left)
                .unwrap_or_else(|e| panic!("no line {want:?} in the FIFO: {e}"));
            if l == want {
                return;
            }
        }
    };
    // Nothing listens on the real server: down, and the quorum with it.
    wait_line("RS [127.35.6.2]:tcp:9100 [127.35.7.1]:tcp:8080 DOWN");
    wait_line("VS [127.35.7.1]:tcp:8080 DOWN");
    let _b = backend("127.35.6.2:9100", "b", Mode::Name);
    wait_line("RS [127.35.6.2]:tcp:9100 [127.35.7.1]:tcp:8080 UP");
    wait_line("VS [127.35.7.1]:tcp:8080 UP");
    d.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

/// `rs_init_notifies`: a real server that is up from the start gets its `notify_up` and its
/// FIFO line at once (without it, nothing is said until it changes).
#[test]
fn rs_init_notifies_announce_the_servers_that_start_up() {
    let dir = std::env::temp_dir().join(format!("rvs-rs-init-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let fifo = dir.join("lvs.fifo");
    let marker = dir.join("up");
    let _b = backend("127.35.8.2:9100", "b", Mode::Name);
    let conf = format!(
        "global_defs {{\n    lvs_notify_fifo {}\n    rs_init_notifies\n}}\n{}",
        fifo.display(),
        config(
            "127.35.9.1",
            &format!(
                "TCP_CHECK {{\n            connect_timeout 1\n        }}\n        notify_up \"/bin/touch {}\"",
                marker.display()
            ),
            "",
            &["127.35.8.2"]
        )
    );
    let d = Daemon::start("rsinit", &conf, "127.35.9.1:8080".parse().unwrap());
    let rx = fifo_lines(&fifo);
    let line = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("a line in the FIFO");
    assert_eq!(line, "RS [127.35.8.2]:tcp:9100 [127.35.9.1]:tcp:8080 UP");
    let t = Instant::now();
    while !marker.exists() {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "notify_up did not run"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    d.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

/// Issue #18 item 10: `checker_priority` sets the nice value of the threads that run the
/// checkers (the runtime's, and the main thread); `vrrp_priority` is VRRP's thread's
/// alone, which this daemon (no VRRP) does not have (vrrp.rs tests it). Needs root (a
/// negative nice).
#[test]
#[ignore = "needs root for a negative nice: ./test.sh runs it as root"]
fn process_priority_sets_the_daemons_nice() {
    require_root();
    let _b = backend("127.35.12.2:9100", "b", Mode::Name);
    let conf = format!(
        "global_defs {{\n    vrrp_priority 3\n    checker_priority -5\n}}\n{}",
        config(
            "127.35.13.1",
            "TCP_CHECK {\n            connect_timeout 1\n        }",
            "",
            &["127.35.12.2"]
        )
    );
    let d = Daemon::start("nice", &conf, "127.35.13.1:8080".parse().unwrap());
    let pid = std::fs::read_to_string(d.dir.join("pid")).unwrap();
    let pid = pid.lines().next().unwrap().trim().to_owned();
    // Every thread's nice (Linux keeps one per thread): the 19th field of its stat, after
    // the command in brackets.
    let mut threads = 0;
    for t in std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .flatten()
    {
        let stat = std::fs::read_to_string(t.path().join("stat")).unwrap();
        let after = stat.rsplit_once(") ").unwrap().1;
        let nice: i32 = after.split_whitespace().nth(16).unwrap().parse().unwrap();
        assert_eq!(nice, -5, "{stat}");
        threads += 1;
    }
    assert!(threads > 1, "the runtime's threads were not seen");
    d.stop();
}

/// Issue #18 item 10: `vrrp_no_swap` (and `checker_no_swap`, `bfd_no_swap`) lock the
/// daemon's memory (rvs is one process). Needs root (`CAP_IPC_LOCK`).
#[test]
#[ignore = "needs root to lock memory: ./test.sh runs it as root"]
fn no_swap_locks_the_daemon_in_memory() {
    require_root();
    let _b = backend("127.35.10.2:9100", "b", Mode::Name);
    let conf = format!(
        "global_defs {{\n    vrrp_no_swap\n}}\n{}",
        config(
            "127.35.11.1",
            "TCP_CHECK {\n            connect_timeout 1\n        }",
            "",
            &["127.35.10.2"]
        )
    );
    let d = Daemon::start("noswap", &conf, "127.35.11.1:8080".parse().unwrap());
    let pid = std::fs::read_to_string(d.dir.join("pid")).unwrap();
    let pid = pid.lines().next().unwrap().trim().to_owned();
    let st = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let locked: u64 = st
        .lines()
        .find_map(|l| l.strip_prefix("VmLck:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap();
    assert!(
        locked > 1024,
        "VmLck {locked} kB: the daemon is not locked in memory"
    );
    d.stop();
}

/// A process the test started, killed when the test ends whatever happens.
struct Kid(std::process::Child);

impl Drop for Kid {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The SYNTAX of every column and scalar of a MIB file, by numeric OID (a small reader
/// of the MIB's `name OBJECT-TYPE … SYNTAX … ::= { parent n }` and `OBJECT IDENTIFIER`
/// assignments; `root` names the module's base).
fn mib_syntaxes(text: &str, root: (&str, &str)) -> std::collections::BTreeMap<String, String> {
    let mut parent: std::collections::HashMap<String, (String, String)> =
        std::collections::HashMap::new();
    let mut syntax: std::collections::HashMap<String, String> = std::collections::HashMap::new();
    let lines: Vec<&str> = text.lines().collect();
    for (i, l) in lines.iter().enumerate() {
        let Some(name) = l.split_whitespace().next() else {
            continue;
        };
        if l.starts_with(char::is_whitespace) || l.starts_with("--") {
            continue;
        }
        let assign = |s: &str| -> Option<(String, String)> {
            let inner = s.split("::=").nth(1)?.trim().trim_start_matches('{');
            let inner = inner.trim_end().trim_end_matches('}');
            let mut w = inner.split_whitespace();
            Some((w.next()?.to_owned(), w.next()?.to_owned()))
        };
        if l.contains("OBJECT IDENTIFIER ::=") {
            if let Some(p) = assign(l) {
                parent.insert(name.to_owned(), p);
            }
        } else if l.contains("OBJECT-TYPE") || l.contains("NOTIFICATION-TYPE") {
            for m in &lines[i + 1..] {
                if let Some(s) = m.trim().strip_prefix("SYNTAX") {
                    syntax.insert(name.to_owned(), s.trim().to_owned());
                }
                if m.contains("::=") {
                    if let Some(p) = assign(m) {
                        parent.insert(name.to_owned(), p);
                    }
                    break;
                }
            }
        }
    }
    let resolve = |mut n: String| -> Option<String> {
        let mut tail = Vec::new();
        for _ in 0..32 {
            if n == root.0 {
                tail.reverse();
                return Some(format!("{}.{}", root.1, tail.join(".")));
            }
            let (p, k) = parent.get(&n)?;
            tail.push(k.clone());
            n.clone_from(p);
        }
        None
    };
    syntax
        .into_iter()
        .filter_map(|(n, s)| Some((resolve(n)?, s)))
        .collect()
}

/// The type snmpwalk prints for a value of MIB `syntax`.
fn wire_type(syntax: &str) -> &'static str {
    let s = syntax.split_whitespace().next().unwrap_or("");
    match s {
        "Integer32" | "INTEGER" | "InetAddressType" | "TruthValue" | "InetScopeType" => "INTEGER",
        "Unsigned32" | "Gauge32" | "InetPortNumber" => "Gauge32",
        "Counter32" => "Counter32",
        "Counter64" => "Counter64",
        "DisplayString" | "InetAddress" | "OCTET" => "STRING",
        "TimeTicks" => "Timeticks",
        "IpAddress" => "IpAddress",
        _ => "?",
    }
}

fn require_tools(tools: &[&str]) {
    for t in tools {
        assert!(
            std::path::Path::new(t).exists(),
            "{t} is needed (net-snmp: .ci/run installs snmpd, snmptrapd, snmp, keepalived)"
        );
    }
}

/// Issue #19: KEEPALIVED-MIB's checker part. rvs registers with net-snmp's snmpd over
/// `AgentX`; snmpwalk reads virtual server groups, virtual servers and real servers (the
/// sorry server first), with every value of the type keepalived's own MIB file (Debian's
/// keepalived package) declares, the names from `snmp_name`, and the data plane's
/// counters for the connections the test made. A real server that stops answering is
/// shown dead with its failed checker, the quorum lost, and the two traps
/// (`realServerStateChange`, `virtualServerQuorumStateChange`) reach snmptrapd.
#[test]
#[ignore = "needs net-snmp's snmpd, snmptrapd and snmpwalk and keepalived's KEEPALIVED-MIB: ./test.sh runs it"]
fn snmp_serves_keepalived_s_checker_tables_and_traps() {
    let mib = "/usr/share/snmp/mibs/KEEPALIVED-MIB.txt";
    require_tools(&[
        "/usr/sbin/snmpd",
        "/usr/sbin/snmptrapd",
        "/usr/bin/snmpwalk",
        mib,
    ]);
    let dir = std::env::temp_dir().join(format!("rvs-snmp-checker-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let sock = dir.join("agentx");
    let in_dir = |n: &str| dir.join(n).display().to_string();
    std::fs::write(
        dir.join("snmpd.conf"),
        format!(
            "master agentx\nagentXSocket {}\nrocommunity public 127.0.0.0/8\n\
             trap2sink 127.76.0.9:16162 public\n",
            sock.display()
        ),
    )
    .unwrap();
    std::fs::write(dir.join("snmptrapd.conf"), "disableAuthorization yes\n").unwrap();
    let spawn = |args: &[String]| {
        Kid(std::process::Command::new(&args[0])
            .args(&args[1..])
            .env("SNMP_PERSISTENT_DIR", &dir)
            .env("MIBS", "")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap())
    };
    let arg = |x: &str| x.to_owned();
    let _snmpd = spawn(&[
        arg("/usr/sbin/snmpd"),
        arg("-f"),
        arg("-C"),
        arg("-Lf"),
        in_dir("snmpd.log"),
        arg("-c"),
        in_dir("snmpd.conf"),
        arg("udp:127.76.0.9:16161"),
    ]);
    let traps = dir.join("traps.log");
    let _trapd = spawn(&[
        arg("/usr/sbin/snmptrapd"),
        arg("-f"),
        arg("-C"),
        arg("-On"),
        arg("-Lf"),
        in_dir("traps.log"),
        arg("-c"),
        in_dir("snmptrapd.conf"),
        arg("udp:127.76.0.9:16162"),
    ]);
    let t = Instant::now();
    while !(sock.exists() && traps.exists()) {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "snmpd/snmptrapd did not start: {}",
            std::fs::read_to_string(dir.join("snmpd.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    let _a = backend("127.76.1.1:9100", "a", Mode::Name);
    let _sorry = backend("127.76.1.9:9100", "sorry", Mode::Name);
    let b = stoppable("127.76.1.2:9100", "b");
    let _g = backend("127.76.1.3:9100", "g", Mode::Name);
    let check = "TCP_CHECK {\n            connect_timeout 1\n            warmup 0\n        }";
    let conf = format!(
        "global_defs {{\n    router_id snmp-lab\n    enable_snmp_checker\n    enable_traps\n    \
         snmp_socket {}\n    snmp_vs_stats_update_interval 0\n}}\n\
         virtual_server_group G {{\n    127.76.0.2 8081\n    127.76.0.3-4 8082\n}}\n\
         virtual_server 127.76.0.1 8080 {{\n    delay_loop 1\n    lb_algo rr\n    lb_kind NAT\n    \
         protocol TCP\n    quorum 2\n    snmp_name web\n    sorry_server 127.76.1.9 9100\n    \
         real_server 127.76.1.1 9100 {{\n        snmp_name rs-a\n        {check}\n    }}\n    \
         real_server 127.76.1.2 9100 {{\n        weight 1\n        {check}\n    }}\n}}\n\
         virtual_server group G {{\n    delay_loop 1\n    lb_algo wrr\n    lb_kind NAT\n    \
         protocol TCP\n    real_server 127.76.1.3 9100 {{\n        weight 5\n    }}\n}}\n",
        sock.display()
    );
    let vip: SocketAddr = "127.76.0.1:8080".parse().unwrap();
    let d = Daemon::start("snmp-checker", &conf, vip);
    for _ in 0..6 {
        let n = common::ask_name(vip);
        assert!(n == "a" || n == "b", "{n}");
    }

    let base = ".1.3.6.1.4.1.9586.100.5";
    let walk = |sub: &str| -> std::collections::BTreeMap<String, String> {
        let res = std::process::Command::new("snmpwalk")
            .args([
                "-v2c", "-c", "public", "-On", "-m", "", "-t", "1", "-r", "2",
            ])
            .args(["127.76.0.9:16161", &format!("{base}{sub}")])
            .env("MIBS", "")
            .output()
            .unwrap();
        common::snmpwalk_objects(&res.stdout)
    };
    // Registered (the subagent connects at start), and the checkers have probed.
    let mut w = std::collections::BTreeMap::new();
    let t = Instant::now();
    while w.get(&format!("{base}.3.3.1.21.1")).map(String::as_str) != Some("Gauge32: 2") {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "no checker tables: {w:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
        w = walk(".3");
    }
    // Every value has the type keepalived's MIB declares for its column.
    let syntaxes = mib_syntaxes(
        &std::fs::read_to_string(mib).unwrap(),
        ("keepalived", &base[1..]),
    );
    for (oid, v) in &w {
        let column = syntaxes
            .iter()
            .filter(|(o, _)| oid[1..].starts_with(&format!("{o}.")))
            .max_by_key(|(o, _)| o.len());
        let Some((col, syn)) = column else {
            panic!("{oid} = {v}: not an object of KEEPALIVED-MIB");
        };
        let ty = v.split(':').next().unwrap_or("");
        let want = wire_type(syn);
        let ok = ty == want || (want == "STRING" && ty == "Hex-STRING");
        assert!(ok, "{oid} ({col}: {syn}) = {v}: expected {want}");
    }
    let get = |w: &std::collections::BTreeMap<String, String>, o: &str| {
        w.get(&format!("{base}{o}")).cloned().unwrap_or_default()
    };
    // The group and its members: an address (2), then a range (3).
    assert_eq!(get(&w, ".3.1.1.2.1"), "STRING: \"G\"");
    assert_eq!(get(&w, ".3.2.1.2.1.1"), "INTEGER: 2");
    assert_eq!(get(&w, ".3.2.1.5.1.1"), "Hex-STRING: 7F 4C 00 02");
    assert_eq!(get(&w, ".3.2.1.2.1.2"), "INTEGER: 3");
    assert_eq!(get(&w, ".3.2.1.7.1.2"), "Hex-STRING: 7F 4C 00 04");
    assert_eq!(get(&w, ".3.2.1.8.1.2"), "Gauge32: 8082");
    // The virtual servers: web, then the group's (type group(3), wrr).
    for (col, want) in [
        (2, "INTEGER: 2"),
        (6, "Hex-STRING: 7F 4C 00 01"),
        (7, "Gauge32: 8080"),
        (8, "INTEGER: 1"),
        (9, "INTEGER: 1"),
        (10, "INTEGER: 1"),
        (11, "INTEGER: 1"),
        (20, "Gauge32: 2"),
        (22, "Gauge32: 2"),
        (23, "INTEGER: 1"),
        (38, "Counter64: 6"),
        (71, "STRING: \"web\""),
    ] {
        assert_eq!(
            get(&w, &format!(".3.3.1.{col}.1")),
            want,
            "virtualServer column {col}"
        );
    }
    assert_eq!(get(&w, ".3.3.1.2.2"), "INTEGER: 3");
    assert_eq!(get(&w, ".3.3.1.3.2"), "STRING: \"G\"");
    assert_eq!(get(&w, ".3.3.1.9.2"), "INTEGER: 2");
    // The real servers of web: the sorry server first, then a and b.
    assert_eq!(get(&w, ".3.4.1.2.1.1"), "INTEGER: 2");
    assert_eq!(get(&w, ".3.4.1.4.1.1"), "Hex-STRING: 7F 4C 01 09");
    assert_eq!(get(&w, ".3.4.1.6.1.1"), "");
    assert_eq!(get(&w, ".3.4.1.2.1.2"), "INTEGER: 1");
    assert_eq!(get(&w, ".3.4.1.55.1.2"), "STRING: \"rs-a\"");
    assert_eq!(get(&w, ".3.4.1.7.1.3"), "INTEGER: 1");
    let conns = |w: &std::collections::BTreeMap<String, String>, r: u32| {
        get(w, &format!(".3.4.1.27.1.{r}"))
            .trim_start_matches("Counter64: ")
            .parse::<u64>()
            .unwrap()
    };
    assert_eq!(conns(&w, 2) + conns(&w, 3), 6, "{w:?}");
    assert_eq!(get(&w, ".3.4.1.7.2.1"), "INTEGER: 5");

    // b stops answering: dead, one failed checker, the quorum lost; two traps.
    b.store(false, std::sync::atomic::Ordering::SeqCst);
    let t = Instant::now();
    loop {
        w = walk(".3");
        if get(&w, ".3.4.1.6.1.3") == "INTEGER: 2" && get(&w, ".3.3.1.23.1") == "INTEGER: 2" {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(15),
            "b not seen dead: {w:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(get(&w, ".3.4.1.13.1.3"), "Gauge32: 1");
    assert_eq!(get(&w, ".3.3.1.21.1"), "Gauge32: 1");
    let t = Instant::now();
    let log = loop {
        let log = std::fs::read_to_string(&traps).unwrap_or_default();
        if log.contains(&format!("{base}.3.5.0.2")) {
            break log;
        }
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "no quorum trap: {log}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(log.contains(&format!("{base}.3.5.0.1")), "{log}");
    // realServerStatus dead(2) and routerId in the real server's trap.
    assert!(
        log.contains(&format!("{base}.3.4.1.6 = INTEGER: 2")),
        "{log}"
    );
    assert!(
        log.contains(&format!("{base}.1.2.0 = STRING: \"snmp-lab\"")),
        "{log}"
    );
    d.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

/// `child_wait_time`: a stop waits that long for the checkers' part (keepalived's checker
/// process, with its omega notify scripts) and no longer. A `notify_down` that sleeps
/// holds the stop for the default 5 s, and for 1 s with `child_wait_time 1`.
#[test]
fn child_wait_time_bounds_the_wait_for_scripts_at_stop() {
    let _b = backend("127.38.2.2:9100", "b", Mode::Name);
    let conf = |wait: &str| {
        format!(
            "{wait}global_defs {{\n    enable_script_security\n    script_user root\n}}\n\
             virtual_server 127.38.2.1 8080 {{\n    delay_loop 1\n    lvs_sched rr\n    \
             lvs_method NAT\n    protocol TCP\n    omega\n    \
             real_server 127.38.2.2 9100 {{\n        notify_down \"/bin/sleep 30\"\n        \
             TCP_CHECK {{\n            connect_timeout 1\n        }}\n    }}\n}}\n"
        )
    };
    let stop_time = |name: &str, text: &str| {
        let d = Daemon::start(name, text, "127.38.2.1:8080".parse().unwrap());
        std::thread::sleep(Duration::from_millis(500));
        let t = Instant::now();
        assert!(d.stop().success());
        t.elapsed()
    };
    let default = stop_time("cwt-default", &conf(""));
    assert!(
        default >= Duration::from_secs(5),
        "the default child_wait_time (5 s) was not waited: {default:?}"
    );
    let short = stop_time("cwt-1", &conf("child_wait_time 1\n"));
    assert!(
        short < Duration::from_secs(4),
        "child_wait_time 1: the stop took {short:?}"
    );
}
