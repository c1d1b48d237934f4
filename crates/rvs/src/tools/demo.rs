//! `rvs demo`: three small HTTP backends on 127.0.0.1 and rvs in front of them on
//! 127.0.0.1:8080, from the shipped examples/demo.conf. No root needed.

use anyhow::{Context as _, Result};
use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const DEMO_CONF: &str = include_str!("../../../../examples/demo.conf");

/// A tiny HTTP server answering every request with its own name.
pub async fn backend(addr: SocketAddr, name: String) -> Result<tokio::task::JoinHandle<()>> {
    let l = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("backend {name}: cannot listen on {addr}"))?;
    Ok(tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                continue;
            };
            let name = name.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                    if got.len() > 65536 {
                        return;
                    }
                }
                let body = format!("{name}\n");
                let resp = format!("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
                let _ = s.write_all(resp.as_bytes()).await;
                let _ = s.shutdown().await;
            });
        }
    }))
}

pub fn run() -> Result<ExitCode> {
    crate::daemon::run::init_logging("info");
    let parsed = rvs_conf::parse_str(
        Path::new("examples/demo.conf"),
        DEMO_CONF,
        &rvs_conf::Options::default(),
    );
    if parsed.errors() > 0 {
        eprint!("{}", parsed.render());
        return Ok(ExitCode::from(1));
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async {
        let mut backends = Vec::new();
        let vs = parsed
            .config
            .virtual_servers
            .first()
            .context("demo.conf has no virtual server")?;
        for (i, rs) in vs.real_servers.iter().enumerate() {
            let addr = SocketAddr::new(rs.address, rs.port);
            backends.push(backend(addr, format!("backend-{} ({addr})", i + 1)).await?);
        }
        // Ctrl-C is caught from here on: the banner below invites it, and a SIGINT that
        // came before the handler existed would kill the demo instead of stopping it.
        let mut interrupt =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
        let mut proxy = rvs_proxy::Proxy::new(rvs_proxy::ProxyOptions::default());
        if let Err(errs) = proxy.apply(&rvs_desired::desired(&parsed.config)) {
            for e in &errs {
                eprintln!("rvs demo: {e}");
            }
            anyhow::bail!("cannot start the demo load balancer (is 127.0.0.1:8080 in use?)");
        }
        println!("rvs demo: a load balancer on 127.0.0.1:8080 (rr, from examples/demo.conf)");
        println!("           in front of three backends on 127.0.0.1:9001, 9002 and 9003.");
        println!();
        println!("Try, in another terminal:");
        println!("    for i in 1 2 3 4 5 6; do curl -s 127.0.0.1:8080; done");
        println!(
            "The answers rotate through the backends: rr, newest real server first, as IPVS does."
        );
        println!();
        println!("Press Ctrl-C to stop.");
        interrupt.recv().await;
        proxy.shutdown(Duration::from_secs(1)).await;
        for b in backends {
            b.abort();
        }
        println!("rvs demo: stopped");
        Ok(ExitCode::SUCCESS)
    })
}
