//! What the proxy's integration tests share.

#![allow(clippy::unwrap_used, dead_code)]

use rvs_sched::desired::{DesiredDest, DesiredService};
use rvs_sched::{Algo, Fwd, Proto, SvcKey};

/// A TCP service `vip:port` (rr, NAT) with one real server `backend:bport`.
pub fn service(vip: &str, port: u16, backend: &str, bport: u16) -> DesiredService {
    DesiredService {
        dests: vec![DesiredDest {
            tun: rvs_sched::Tun::default(),
            addr: backend.parse().unwrap(),
            port: bport,
            weight: 1,
            base_weight: 1,
            fwd: Fwd::Masq,
            u_threshold: 0,
            l_threshold: 0,
        }],
        fwd: Fwd::Masq,
        ..DesiredService::new(
            SvcKey::Addr {
                proto: Proto::Tcp,
                addr: vip.parse().unwrap(),
                port,
            },
            Algo::Rr,
        )
    }
}

/// The same service over UDP.
pub fn udp(mut s: DesiredService) -> DesiredService {
    if let SvcKey::Addr { proto, .. } = &mut s.key {
        *proto = Proto::Udp;
    }
    s
}

/// A TCP server on `addr` that sends back what each connection sends.
pub async fn tcp_echo(addr: &str) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let echo = tokio::net::TcpListener::bind(addr).await.unwrap();
    tokio::spawn(async move {
        loop {
            let (mut s, _) = echo.accept().await.unwrap();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65536];
                while let Ok(n) = s.read(&mut buf).await {
                    if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
}

/// A UDP server on `addr` that sends every datagram back.
pub async fn udp_echo(addr: &str) {
    let echo = tokio::net::UdpSocket::bind(addr).await.unwrap();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65536];
        while let Ok((n, from)) = echo.recv_from(&mut buf).await {
            let _ = echo.send_to(&buf[..n], from).await;
        }
    });
}
