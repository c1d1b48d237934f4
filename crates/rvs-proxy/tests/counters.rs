//! Counters and rates through the proxy, in process: real sockets on loopback.

#![allow(clippy::unwrap_used)]

mod common;

use common::service;
use rvs_proxy::{Proxy, ProxyOptions};
use rvs_sched::desired::Desired;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_and_connections_are_counted_per_real_server() {
    let backend = tokio::net::TcpListener::bind("127.19.0.1:9100")
        .await
        .unwrap();
    tokio::spawn(async move {
        loop {
            let (mut s, _) = backend.accept().await.unwrap();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let n = s.read(&mut buf).await.unwrap();
                s.write_all(&vec![7u8; n * 2]).await.unwrap();
            });
        }
    });
    let want = Desired {
        services: vec![service("127.19.1.1", 8080, "127.19.0.1", 9100)],
        ..Desired::default()
    };
    let mut proxy = Proxy::new(ProxyOptions::default());
    proxy.apply(&want).unwrap();
    for _ in 0..5 {
        let mut c = tokio::net::TcpStream::connect("127.19.1.1:8080")
            .await
            .unwrap();
        c.write_all(&[1u8; 100]).await.unwrap();
        let mut got = vec![0u8; 200];
        c.read_exact(&mut got).await.unwrap();
    }
    // Closing is asynchronous: give the relays a moment to finish counting.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let all = proxy.shared.all_counters();
    assert_eq!(all.len(), 1);
    let t = all[0].1.totals();
    assert_eq!((t.conns, t.in_bytes, t.out_bytes), (5, 500, 1000));
    // The estimator runs every 2 s: after two runs the rates are non-zero.
    tokio::time::sleep(Duration::from_millis(4300)).await;
    let r = all[0].1.rates();
    assert!(r.in_bps > 0 && r.out_bps > 0, "{r:?}");
    proxy.shutdown(Duration::from_millis(100)).await;
}

/// Issue #16: each service has its own scheduling state. While one service's table is
/// held (a listing copying it, a slow apply), another service accepts, schedules and
/// relays: with one table behind one mutex for the whole proxy, its clients waited; and
/// the proxy's own tick skips a busy table instead of waiting on it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_service_never_stalls_another() {
    let backend = tokio::net::TcpListener::bind("127.19.0.2:9100")
        .await
        .unwrap();
    tokio::spawn(async move {
        loop {
            let (mut s, _) = backend.accept().await.unwrap();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64];
                let n = s.read(&mut buf).await.unwrap();
                s.write_all(&buf[..n]).await.unwrap();
            });
        }
    });
    let want = Desired {
        services: vec![
            service("127.19.1.2", 8080, "127.19.0.2", 9100),
            service("127.19.1.3", 8080, "127.19.0.2", 9100),
        ],
        ..Desired::default()
    };
    let mut proxy = Proxy::new(ProxyOptions::default());
    proxy.apply(&want).unwrap();
    let services = proxy.shared.services();
    assert_eq!(services.len(), 2);
    let busy = services[0].clone();
    assert_eq!(busy.key, want.services[0].key);
    // Service A's table held by another thread for the whole exchange with service B.
    let (held_tx, held_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let holder = std::thread::spawn(move || {
        let _guard = busy.table();
        held_tx.send(()).unwrap();
        let _ = release_rx.recv();
    });
    held_rx.recv().unwrap();
    // The proxy's 1 s tick comes while A is held: it must not wait on A (it once blocked a
    // runtime thread there, and B's clients waited with it).
    // (A blocking sleep: the test must not need the proxy's runtime to wake it.)
    std::thread::sleep(Duration::from_millis(1500));
    // An operator lists the tables meanwhile: the listing waits for A, nothing else does.
    let shared = proxy.shared.clone();
    let listing = tokio::spawn(async move { shared.view(true).await });
    // The client on a thread of its own, with plain sockets: if the proxy's runtime
    // were stuck, the test still ends (fails) instead of hanging.
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::{Read as _, Write as _};
        for _ in 0..3 {
            let mut c = std::net::TcpStream::connect("127.19.1.3:8080").unwrap();
            c.write_all(b"ping").unwrap();
            let mut got = [0u8; 4];
            c.read_exact(&mut got).unwrap();
            assert_eq!(&got, b"ping");
        }
        let _ = done_tx.send(());
    });
    // Generous: a stalled service never answers at all; a served one answers in
    // milliseconds.
    let served = done_rx.recv_timeout(Duration::from_secs(30));
    assert!(
        !listing.is_finished(),
        "a listing of A answered while A was held"
    );
    release_tx.send(()).unwrap();
    holder.join().unwrap();
    assert!(
        served.is_ok(),
        "service B waited on service A's table: the packet path shares a lock"
    );
    // Once A is free, the listing comes, with both services and B's three connections
    // (closed, still in the table as the kernel keeps them in TIME_WAIT).
    let view = tokio::time::timeout(Duration::from_secs(20), listing)
        .await
        .expect("the listing never came once A was released")
        .unwrap();
    assert_eq!(view.services.len(), 2);
    let conns = view.conns.as_ref().unwrap();
    assert_eq!(
        conns
            .iter()
            .filter(|c| c.vaddr.to_string() == "127.19.1.3")
            .count(),
        3,
        "{conns:?}"
    );
    proxy.shutdown(Duration::from_millis(100)).await;
}

/// The operator interface's listing is built after it is asked for (a change the
/// caller made just before shows), lists connections only when asked, and still
/// answers once the proxy has shut down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listings_are_built_after_the_request() {
    let backend = tokio::net::TcpListener::bind("127.19.0.3:9100")
        .await
        .unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        loop {
            let (s, _) = backend.accept().await.unwrap();
            held.push(s);
        }
    });
    let mut proxy = Proxy::new(ProxyOptions::default());
    let one = service("127.19.1.4", 8080, "127.19.0.3", 9100);
    proxy
        .apply(&Desired {
            services: vec![one.clone()],
            ..Desired::default()
        })
        .unwrap();
    let first = proxy.shared.view(false).await;
    assert_eq!(first.services.len(), 1);
    assert!(first.conns.is_none());
    // Two clients held open: both counted active at once.
    let mut clients = Vec::new();
    for _ in 0..2 {
        clients.push(
            tokio::net::TcpStream::connect("127.19.1.4:8080")
                .await
                .unwrap(),
        );
    }
    let mut active = 0;
    for _ in 0..100 {
        let v = proxy.shared.view(true).await;
        active = v.services[0].dests[0].active;
        if active == 2 && v.conns.as_ref().is_some_and(|c| c.len() == 2) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(active, 2);
    // A service added just before the request is in the answer.
    proxy
        .apply(&Desired {
            services: vec![one, service("127.19.1.5", 8080, "127.19.0.3", 9100)],
            ..Desired::default()
        })
        .unwrap();
    assert_eq!(proxy.shared.view(false).await.services.len(), 2);
    drop(clients);
    let shared = proxy.shared.clone();
    proxy.shutdown(Duration::from_millis(100)).await;
    assert_eq!(shared.view(false).await.services.len(), 2);
}
