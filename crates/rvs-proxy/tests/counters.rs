//! Counters and rates through the proxy, in process: real sockets on loopback.

#![allow(clippy::unwrap_used)]

use rvs_proxy::{Proxy, ProxyOptions};
use rvs_sched::desired::{Desired, DesiredDest, DesiredService};
use rvs_sched::{Algo, Flags, Fwd, Proto, SvcKey};
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
    let key = SvcKey::Addr {
        proto: Proto::Tcp,
        addr: "127.19.1.1".parse().unwrap(),
        port: 8080,
    };
    let want = Desired {
        services: vec![DesiredService {
            key,
            algo: Algo::Rr,
            flags: Flags::default(),
            persistence: None,
            mh_size: None,
            dests: vec![DesiredDest {
                tun: rvs_sched::Tun::default(),
                addr: "127.19.0.1".parse().unwrap(),
                port: 9100,
                weight: 1,
                fwd: Fwd::Masq,
                u_threshold: 0,
                l_threshold: 0,
            }],
            sorry: None,
            connect_timeout: 5.0,
            proxy_protocol: None,
            fwd: Fwd::Masq,
        }],
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
