//! keepalived's retry counting and `delay_before_retry`, checked on tokio's paused clock:
//! the checker loop runs against a real loopback port, and the times of its state changes
//! are exact to the configured delays.

#![allow(clippy::unwrap_used)]

use rvs_check::{CheckId, Event, ScriptPolicy};
use rvs_conf::model::{CheckKind, Checker};
use std::time::Duration;
use tokio::time::Instant;

#[tokio::test(start_paused = true)]
async fn retry_and_delay_before_retry() {
    let addr: std::net::SocketAddr = "127.43.0.1:9300".parse().unwrap();
    let mut listener = Some(tokio::net::TcpListener::bind(addr).await.unwrap());
    let c = Checker {
        kind: CheckKind::Tcp,
        connect_ip: None,
        connect_port: None,
        bindto: None,
        bind_port: None,
        bind_if: None,
        connect_timeout: Duration::from_secs(1),
        fwmark: None,
        retry: 2,
        delay_before_retry: Duration::from_secs(3),
        delay_loop: Duration::from_secs(10),
        warmup: Duration::ZERO,
        alpha: false,
        log_all_failures: false,
        forwarding_path: None,
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel(16);
    let id = CheckId(7);
    let start = Instant::now();
    tokio::spawn(rvs_check::run(
        id,
        c,
        addr,
        rvs_check::Start::default(),
        ScriptPolicy::default(),
        tx,
        std::sync::Arc::default(),
    ));
    // Checks at 0 and 10 s succeed (no event: the checker starts up). The server goes away
    // at 15 s: the check at 20 s fails, retries follow 3 s apart (23, 26); the third
    // failure (retry 2 + 1) at 26 s takes it down.
    tokio::time::sleep(Duration::from_secs(15)).await;
    listener.take();
    let Some(Event::Changed { up: false, .. }) = rx.recv().await else {
        panic!("expected a down event")
    };
    assert_eq!(start.elapsed().as_secs(), 26);
    // Back at 30 s: the next check, delay_loop after the last one (36 s), brings it up.
    tokio::time::sleep_until(start + Duration::from_secs(30)).await;
    let _l = tokio::net::TcpListener::bind(addr).await.unwrap();
    let Some(Event::Changed { up: true, .. }) = rx.recv().await else {
        panic!("expected an up event")
    };
    assert_eq!(start.elapsed().as_secs(), 36);
}
