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
