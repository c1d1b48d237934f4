//! The README's main job, `rvs demo`, run as a user runs it: the load balancer on
//! 127.0.0.1:8080 answers, rotating over its three backends (rr), and Ctrl-C (SIGINT)
//! stops it cleanly. No root needed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead as _, Read as _, Write as _};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn get() -> Option<String> {
    let mut s = std::net::TcpStream::connect_timeout(
        &"127.0.0.1:8080".parse().unwrap(),
        Duration::from_secs(2),
    )
    .ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.write_all(b"GET / HTTP/1.0\r\nHost: demo\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    out.split_once("\r\n\r\n").map(|(_, b)| b.trim().to_owned())
}

#[test]
fn demo_balances_over_three_backends_and_stops_on_ctrl_c() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rvs"))
        .arg("demo")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut banner = String::new();
    let t0 = Instant::now();
    while !banner.contains("Press Ctrl-C to stop.") {
        let mut line = String::new();
        if out.read_line(&mut line).unwrap_or(0) == 0 || t0.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            let mut err = String::new();
            let _ = child.stderr.take().unwrap().read_to_string(&mut err);
            panic!("rvs demo did not start:\n{banner}\n{err}");
        }
        banner += &line;
    }
    assert!(banner.contains("127.0.0.1:8080"), "{banner}");
    let answers: Vec<String> = (0..6).map(|_| get().expect("an answer")).collect();
    let mut names: Vec<&str> = answers
        .iter()
        .map(|a| a.split(' ').next().unwrap_or(""))
        .collect();
    // rr: each backend twice, in a rotation.
    assert_eq!(answers[0..3], answers[3..6], "{answers:?}");
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "backend-1",
            "backend-1",
            "backend-2",
            "backend-2",
            "backend-3",
            "backend-3"
        ],
        "{answers:?}"
    );
    assert!(Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap()
        .success());
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "rvs demo ignored Ctrl-C"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut rest = String::new();
    let _ = out.read_to_string(&mut rest);
    assert!(status.success(), "{status:?}");
    assert!(rest.contains("rvs demo: stopped"), "{rest}");
    assert!(get().is_none(), "still answering after it stopped");
}
