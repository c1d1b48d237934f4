//! UDP flows end after the UDP timeout of silence, and traffic keeps them (one timer per
//! flow, re-armed once per timeout: issue #20).

#![allow(clippy::unwrap_used)]

mod common;

use common::{service, udp};
use rvs_proxy::{Proxy, ProxyOptions};
use rvs_sched::desired::Desired;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flow_lives_while_it_has_traffic_and_ends_after_the_timeout() {
    common::udp_echo("127.19.3.2:9400").await;
    let mut want = Desired {
        services: vec![udp(service("127.19.3.1", 9400, "127.19.3.2", 9400))],
        ..Desired::default()
    };
    // A 1 s UDP timeout.
    want.timeouts.udp = 1;
    let mut proxy = Proxy::new(ProxyOptions::default());
    proxy.apply(&want).unwrap();
    let live = || proxy.shared.live.load(Ordering::SeqCst);

    let c = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    c.connect("127.19.3.1:9400").await.unwrap();
    let ask = || async {
        c.send(b"ping").await.unwrap();
        let mut got = [0u8; 16];
        let n = tokio::time::timeout(Duration::from_secs(10), c.recv(&mut got))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&got[..n], b"ping");
    };
    ask().await;
    assert_eq!(live(), 1);
    // A datagram every 300 ms for 3 s: three timeouts' worth, the flow stays.
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        ask().await;
        assert_eq!(live(), 1, "the flow ended while it had traffic");
    }
    // Quiet: gone within two timeouts (a bound, with room for a busy machine).
    let t = Instant::now();
    while live() > 0 {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "the flow outlived its timeout"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        t.elapsed() >= Duration::from_millis(900),
        "ended {:?} after its last datagram, before the 1 s timeout",
        t.elapsed()
    );
    proxy.shutdown(Duration::from_millis(100)).await;
}
