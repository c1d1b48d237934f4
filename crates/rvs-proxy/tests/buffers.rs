//! Relay buffers are held only while data is in flight (issue #20: the footprint of an
//! idle connection). Its own test binary: the gauge counts the whole process.

#![allow(clippy::unwrap_used)]

mod common;

use common::{service, udp};
use rvs_proxy::{Proxy, ProxyOptions};
use rvs_sched::desired::Desired;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_hold_no_buffer() {
    // Echoes what it reads, over TCP and UDP.
    common::udp_echo("127.19.2.2:9301").await;
    common::tcp_echo("127.19.2.2:9300").await;
    let want = Desired {
        services: vec![
            service("127.19.2.1", 9300, "127.19.2.2", 9300),
            udp(service("127.19.2.1", 9301, "127.19.2.2", 9301)),
        ],
        ..Desired::default()
    };
    let mut proxy = Proxy::new(ProxyOptions::default());
    proxy.apply(&want).unwrap();

    // 100 connections, each used once and then left open and idle (before: each kept a
    // 16 KiB buffer per direction that had carried data)…
    let mut conns = Vec::new();
    for _ in 0..100 {
        let mut c = tokio::net::TcpStream::connect("127.19.2.1:9300")
            .await
            .unwrap();
        c.write_all(&[5u8; 1000]).await.unwrap();
        let mut got = vec![0u8; 1000];
        c.read_exact(&mut got).await.unwrap();
        conns.push(c);
    }
    // … and 100 never used (before: a freshly accepted socket's spurious readiness
    // took a buffer each).
    for _ in 0..100 {
        conns.push(
            tokio::net::TcpStream::connect("127.19.2.1:9300")
                .await
                .unwrap(),
        );
    }
    // And 50 UDP flows (a client socket each), each answered once, then quiet (before:
    // each flow kept a 64 KiB buffer for its life).
    let mut flows = Vec::new();
    for _ in 0..50 {
        let f = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        f.connect("127.19.2.1:9301").await.unwrap();
        f.send(&[9u8; 1200]).await.unwrap();
        let mut got = vec![0u8; 2000];
        let n = tokio::time::timeout(Duration::from_secs(10), f.recv(&mut got))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(n, 1200);
        flows.push(f);
    }
    assert!(
        settles_at(&proxy, |n| n == 0).await,
        "{} buffers held by 200 idle connections and 50 quiet UDP flows",
        proxy.shared.relay_buffers_in_use()
    );
    // Each idle connection still works.
    for c in conns.iter_mut().step_by(20) {
        c.write_all(b"again").await.unwrap();
        let mut got = [0u8; 5];
        c.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"again");
    }
    drop(conns);
    assert!(
        settles_at(&proxy, |n| n == 0).await,
        "{} buffers held after every connection closed",
        proxy.shared.relay_buffers_in_use()
    );
    proxy.shutdown(Duration::from_millis(100)).await;
}

/// Whether the gauge reaches a value the test wants within 10 s (a bound, not a timing:
/// relays finish asynchronously).
async fn settles_at(proxy: &Proxy, ok: impl Fn(usize) -> bool) -> bool {
    for _ in 0..1000 {
        if ok(proxy.shared.relay_buffers_in_use()) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}
