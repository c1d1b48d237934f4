//! Which relay path a direction takes (issue #20): small request/response traffic is
//! copied (one read, one write) however long the connection lives; a bulk transfer is
//! spliced kernel to kernel. Its own test binary: the spliced-bytes counter is the
//! whole process's.

#![allow(clippy::unwrap_used)]

mod common;

use common::service;
use rvs_proxy::{Proxy, ProxyOptions};
use rvs_sched::desired::Desired;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_traffic_is_copied_and_bulk_transfers_are_spliced() {
    common::tcp_echo("127.19.4.2:9400").await;
    let want = Desired {
        services: vec![service("127.19.4.1", 9400, "127.19.4.2", 9400)],
        ..Desired::default()
    };
    let mut proxy = Proxy::new(ProxyOptions::default());
    proxy.apply(&want).unwrap();

    // A keep-alive connection: 1,000 request/response pairs of 600 bytes, 600 kB each
    // way — past the 256 KiB after which a direction used to switch to splice.
    let mut c = tokio::net::TcpStream::connect("127.19.4.1:9400")
        .await
        .unwrap();
    let msg = [7u8; 600];
    let mut got = [0u8; 600];
    for _ in 0..1000 {
        c.write_all(&msg).await.unwrap();
        c.read_exact(&mut got).await.unwrap();
        assert_eq!(got, msg);
    }
    assert_eq!(
        proxy.shared.spliced_bytes(),
        0,
        "small messages went through a pipe"
    );

    // A bulk transfer on the same connection: 8 MiB written at once, read back while
    // it is written. Most of it goes kernel to kernel.
    let (mut r, mut w) = c.into_split();
    let total = 8usize << 20;
    let writer = tokio::spawn(async move {
        let chunk = vec![3u8; 1 << 20];
        for _ in 0..8 {
            w.write_all(&chunk).await.unwrap();
        }
        w
    });
    let mut buf = vec![0u8; 1 << 16];
    let mut read = 0;
    while read < total {
        let n = r.read(&mut buf).await.unwrap();
        assert!(n > 0, "the proxy closed after {read} bytes");
        assert!(buf[..n].iter().all(|&b| b == 3));
        read += n;
    }
    let w = writer.await.unwrap();
    let spliced = proxy.shared.spliced_bytes();
    assert!(
        spliced >= 4 << 20,
        "{spliced} bytes of 16 MiB (8 each way) spliced"
    );

    // Small messages after the bulk: back on the copy path, still relayed.
    let mut c = r.reunite(w).unwrap();
    for _ in 0..100 {
        c.write_all(&msg).await.unwrap();
        c.read_exact(&mut got).await.unwrap();
    }
    assert_eq!(got, msg);
    proxy.shutdown(std::time::Duration::from_millis(100)).await;
}
