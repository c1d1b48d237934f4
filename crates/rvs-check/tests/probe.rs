//! Probes against real servers on loopback and real scripts.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::many_single_char_names
)]

use rvs_check::probe::{md5_hex, probe};
use rvs_check::state::Outcome;
use rvs_conf::model::{CheckKind, Checker, HttpCheck, MiscCheck, Script, Url};
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn checker(kind: CheckKind) -> Checker {
    Checker {
        kind,
        connect_ip: None,
        connect_port: None,
        bindto: None,
        bind_port: None,
        bind_if: None,
        connect_timeout: std::time::Duration::from_secs(1),
        fwmark: None,
        retry: 1,
        delay_before_retry: std::time::Duration::from_secs(1),
        delay_loop: std::time::Duration::from_secs(1),
        warmup: std::time::Duration::ZERO,
        alpha: false,
        log_all_failures: false,
        forwarding_path: None,
    }
}

async fn http_server(addr: &str, status: u16, body: &'static str) -> SocketAddr {
    let l = tokio::net::TcpListener::bind(addr).await.unwrap();
    let a = l.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (mut s, _) = l.accept().await.unwrap();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 2048];
                let n = s.read(&mut buf).await.unwrap_or(0);
                let req = String::from_utf8_lossy(&buf[..n]).to_string();
                assert!(req.contains("User-Agent: KeepAliveClient\r\n"), "{req}");
                let _ = s
                    .write_all(
                        format!("HTTP/1.0 {status} X\r\nContent-Type: text/plain\r\n\r\n{body}")
                            .as_bytes(),
                    )
                    .await;
            });
        }
    });
    a
}

fn http(urls: Vec<Url>) -> CheckKind {
    CheckKind::Http(HttpCheck {
        urls,
        http_protocol: "1.0".into(),
        ..HttpCheck::default()
    })
}

fn url(path: &str, digest: Option<String>, codes: Vec<(u16, u16)>) -> Url {
    Url {
        path: path.into(),
        digest,
        status_code: codes,
        virtualhost: None,
        regex: None,
        regex_no_match: false,
        regex_options: Vec::new(),
        regex_min_offset: None,
        regex_max_offset: None,
    }
}

#[tokio::test]
async fn http_status_ranges_and_digests() {
    let ok = http_server("127.40.0.1:0", 200, "hello").await;
    let err = http_server("127.40.0.2:0", 503, "busy").await;
    let good = md5_hex(b"hello");
    let c = checker(http(vec![url("/", Some(good.clone()), vec![(200, 299)])]));
    assert_eq!(probe(&c, ok).await.0, Outcome::Up);
    let c = checker(http(vec![url(
        "/",
        Some(md5_hex(b"other")),
        vec![(200, 299)],
    )]));
    let (o, d) = probe(&c, ok).await;
    assert_eq!(o, Outcome::Down);
    assert!(d.text.contains("MD5 digest error"), "{}", d.text);
    let c = checker(http(vec![url("/", None, vec![(200, 299)])]));
    let (o, d) = probe(&c, err).await;
    assert_eq!(o, Outcome::Down);
    assert!(d.text.contains("status_code = 503"), "{}", d.text);
    let c = checker(http(vec![url("/", None, vec![(200, 200), (500, 503)])]));
    assert_eq!(
        probe(&c, err).await.0,
        Outcome::Up,
        "503 is in the accepted ranges"
    );
    // A closed port is DOWN, not a local error.
    let c = checker(CheckKind::Tcp);
    assert_eq!(
        probe(&c, "127.40.0.3:9".parse().unwrap()).await.0,
        Outcome::Down
    );
    assert_eq!(probe(&c, ok).await.0, Outcome::Up);
}

fn misc(argv: &[&str], timeout: f64, dynamic: bool) -> Checker {
    checker(CheckKind::Misc(MiscCheck {
        misc_path: Some(Script {
            argv: argv.iter().map(|s| (*s).to_owned()).collect(),
            user: None,
            group: None,
        }),
        misc_timeout: std::time::Duration::from_secs_f64(timeout),
        misc_dynamic: dynamic,
    }))
}

#[tokio::test]
async fn misc_exit_codes_timeout_and_dynamic_weight() {
    let t: SocketAddr = "127.0.0.1:1".parse().unwrap();
    assert_eq!(
        probe(&misc(&["/bin/sh", "-c", "exit 0"], 5.0, false), t)
            .await
            .0,
        Outcome::Up
    );
    assert_eq!(
        probe(&misc(&["/bin/sh", "-c", "exit 3"], 5.0, false), t)
            .await
            .0,
        Outcome::Down
    );
    let (o, d) = probe(&misc(&["/bin/sh", "-c", "exit 7"], 5.0, true), t).await;
    assert_eq!(
        (o, d.weight),
        (Outcome::Up, Some(5)),
        "misc_dynamic: weight = exit - 2"
    );
    assert_eq!(
        probe(&misc(&["/bin/sh", "-c", "exit 1"], 5.0, true), t)
            .await
            .0,
        Outcome::Down
    );
    let start = std::time::Instant::now();
    let (o, d) = probe(&misc(&["/bin/sleep", "10"], 0.3, false), t).await;
    assert_eq!(o, Outcome::Down);
    assert!(d.text.contains("timed out"));
    assert!(start.elapsed() < std::time::Duration::from_secs(3));
    // A script that cannot run is this host's problem: the real server stays as it is.
    assert_eq!(
        probe(&misc(&["/nonexistent/check"], 1.0, false), t).await.0,
        Outcome::LocalError
    );
}

#[tokio::test]
async fn smtp_dns_udp_ping() {
    use rvs_conf::model::{DnsCheck, SmtpCheck, UdpCheck};
    // SMTP: a good server and one that refuses HELO.
    for (addr, helo_reply, want) in [
        ("127.41.0.1:2525", "250 ok\r\n", Outcome::Up),
        ("127.41.0.2:2525", "554 go away\r\n", Outcome::Down),
    ] {
        let l = tokio::net::TcpListener::bind(addr).await.unwrap();
        tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            s.write_all(b"220-mail.example ESMTP\r\n220 ready\r\n")
                .await
                .unwrap();
            let mut buf = [0u8; 256];
            let n = s.read(&mut buf).await.unwrap();
            assert!(buf[..n].starts_with(b"HELO smtpchecker.keepalived.org\r\n"));
            s.write_all(helo_reply.as_bytes()).await.unwrap();
        });
        let c = checker(CheckKind::Smtp(SmtpCheck {
            helo_name: "smtpchecker.keepalived.org".into(),
        }));
        assert_eq!(probe(&c, addr.parse().unwrap()).await.0, want, "{addr}");
    }
    // DNS: NOERROR is up, SERVFAIL down.
    for (addr, rcode, want) in [
        ("127.41.0.3:5353", 0u8, Outcome::Up),
        ("127.41.0.4:5353", 2u8, Outcome::Down),
    ] {
        let u = tokio::net::UdpSocket::bind(addr).await.unwrap();
        tokio::spawn(async move {
            let mut buf = [0u8; 512];
            let (n, from) = u.recv_from(&mut buf).await.unwrap();
            let mut r = buf[..n].to_vec();
            r[2] |= 0x80;
            r[3] = (r[3] & 0xf0) | rcode;
            u.send_to(&r, from).await.unwrap();
        });
        let c = checker(CheckKind::Dns(DnsCheck {
            query_type: "A".into(),
            name: "example.org".into(),
        }));
        assert_eq!(probe(&c, addr.parse().unwrap()).await.0, want, "{addr}");
    }
    // UDP: an echo server matched against a wildcard pattern; a closed port is down.
    let u = tokio::net::UdpSocket::bind("127.41.0.5:7000")
        .await
        .unwrap();
    tokio::spawn(async move {
        let mut buf = [0u8; 512];
        loop {
            let (n, from) = u.recv_from(&mut buf).await.unwrap();
            u.send_to(&buf[..n], from).await.unwrap();
        }
    });
    let uc = |reply: Option<&str>| {
        checker(CheckKind::Udp(UdpCheck {
            payload: Some("01ab".into()),
            require_reply: reply.is_some(),
            reply: reply.map(str::to_owned),
            min_reply_length: 0,
            max_reply_length: 255,
        }))
    };
    assert_eq!(
        probe(&uc(Some("01xx")), "127.41.0.5:7000".parse().unwrap())
            .await
            .0,
        Outcome::Up
    );
    assert_eq!(
        probe(&uc(Some("02xx")), "127.41.0.5:7000".parse().unwrap())
            .await
            .0,
        Outcome::Down
    );
    assert_eq!(
        probe(&uc(None), "127.41.0.6:7000".parse().unwrap()).await.0,
        Outcome::Down,
        "ICMP port unreachable"
    );
    // PING: loopback answers (or the host does not allow ping sockets: a local error).
    let (o, d) = probe(&checker(CheckKind::Ping), "127.0.0.1:0".parse().unwrap()).await;
    assert!(
        o == Outcome::Up || (o == Outcome::LocalError && d.text.contains("ping_group_range")),
        "{o:?} {}",
        d.text
    );
}

fn openssl(args: &[&str]) {
    let out = std::process::Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl is needed for the TLS test (apt-get install openssl)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA and a server certificate for `rvs-test` / 127.42.0.1 signed by it, made with the
/// openssl CLI. Returns (CA file, certificate file, key file).
fn make_certs(dir: &std::path::Path) -> (String, String, String) {
    let p = |n: &str| dir.join(n).display().to_string();
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    openssl(
        &[
            &["req", "-x509"][..],
            &ec,
            &[
                "-days",
                "1",
                "-subj",
                "/CN=rvs-test-ca",
                "-keyout",
                &p("ca.key"),
                "-out",
                &p("ca.pem"),
            ],
        ]
        .concat(),
    );
    openssl(
        &[
            &["req"][..],
            &ec,
            &[
                "-subj",
                "/CN=rvs-test",
                "-keyout",
                &p("key.pem"),
                "-out",
                &p("leaf.csr"),
            ],
        ]
        .concat(),
    );
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=DNS:rvs-test,IP:127.42.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        &p("leaf.csr"),
        "-CA",
        &p("ca.pem"),
        "-CAkey",
        &p("ca.key"),
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        &p("ext.cnf"),
        "-out",
        &p("cert.pem"),
    ]);
    (p("ca.pem"), p("cert.pem"), p("key.pem"))
}

#[tokio::test]
async fn ssl_get_with_verification_on_and_off() {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let dir = std::env::temp_dir().join(format!("rvs-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (ca, cert, key) = make_certs(&dir);
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let key = PrivateKeyDer::from_pem_file(&key).unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let scfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(scfg));
    let l = tokio::net::TcpListener::bind("127.42.0.1:8443")
        .await
        .unwrap();
    tokio::spawn(async move {
        loop {
            let (s, _) = l.accept().await.unwrap();
            let acc = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut s) = acc.accept(s).await else {
                    return;
                };
                let mut buf = vec![0u8; 2048];
                let _ = s.read(&mut buf).await;
                let _ = s.write_all(b"HTTP/1.0 200 OK\r\n\r\nsecure").await;
                let _ = s.shutdown().await;
            });
        }
    });
    let target: SocketAddr = "127.42.0.1:8443".parse().unwrap();
    let ssl = |ca: Option<String>, sni: bool| {
        let mut c = checker(CheckKind::Ssl(HttpCheck {
            urls: vec![url("/", Some(md5_hex(b"secure")), vec![(200, 299)])],
            http_protocol: "1.0".into(),
            enable_sni: sni,
            sni_name: sni.then(|| "rvs-test".to_owned()),
            tls_ca: ca,
            ..HttpCheck::default()
        }));
        c.connect_timeout = std::time::Duration::from_secs(3);
        c
    };
    // Verification off (no SSL { ca }): up.
    assert_eq!(probe(&ssl(None, false), target).await.0, Outcome::Up);
    // Verified against its CA, by IP and by SNI name: up.
    let (o, d) = probe(&ssl(Some(ca.clone()), false), target).await;
    assert_eq!(o, Outcome::Up, "{}", d.text);
    assert_eq!(
        probe(&ssl(Some(ca.clone()), true), target).await.0,
        Outcome::Up
    );
    // Verified against another CA: the handshake fails, down.
    let other = std::env::temp_dir().join(format!("rvs-tls-other-{}", std::process::id()));
    std::fs::create_dir_all(&other).unwrap();
    let (other_ca, _, _) = make_certs(&other);
    let (o, d) = probe(&ssl(Some(other_ca), false), target).await;
    assert_eq!(o, Outcome::Down, "{}", d.text);
    assert!(d.text.contains("SSL handshake"), "{}", d.text);
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::remove_dir_all(&other).unwrap();
}

#[tokio::test]
async fn script_security_refuses_a_world_writable_script() {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("rvs-misc-sec-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("check.sh");
    std::fs::write(&f, "#!/bin/sh\nexit 0\n").unwrap();
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o777)).unwrap();
    let c = misc(&[f.to_str().unwrap()], 5.0, false);
    let t: SocketAddr = "127.0.0.1:1".parse().unwrap();
    // Without script security it runs (up).
    let off = rvs_check::ScriptPolicy::default();
    assert_eq!(
        rvs_check::probe::probe_with(&c, t, &off).await.0,
        Outcome::Up
    );
    // With it, a script anyone can modify is refused: a local error, never "down".
    let on = rvs_check::ScriptPolicy {
        security: true,
        run_as: Some(rvs_check::script::RunAs { uid: 0, gid: 0 }),
    };
    let (o, d) = rvs_check::probe::probe_with(&c, t, &on).await;
    assert_eq!(o, Outcome::LocalError);
    assert!(d.text.contains("refusing to run"), "{}", d.text);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// "Text file busy" is transient: a `MISC_CHECK` whose script is open for writing when it is
/// due (an editor saving it; or another thread's child between fork and exec holding the
/// descriptor the file was written through) runs once the writer closes it, instead of
/// failing the check.
#[tokio::test]
async fn a_script_busy_for_a_moment_still_runs() {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("rvs-misc-busy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("check.sh");
    std::fs::write(&f, "#!/bin/sh\nexit 0\n").unwrap();
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o755)).unwrap();
    // Held open for writing for 20 ms: exec fails with ETXTBSY meanwhile.
    let writer = std::fs::OpenOptions::new().write(true).open(&f).unwrap();
    let busy = std::process::Command::new(&f).status();
    assert_eq!(
        busy.map_err(|e| e.kind()).err(),
        Some(std::io::ErrorKind::ExecutableFileBusy),
        "the kernel lets a file open for writing run: this test proves nothing here"
    );
    let closer = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(20));
        drop(writer);
    });
    let c = misc(&[f.to_str().unwrap()], 5.0, false);
    let t: SocketAddr = "127.0.0.1:1".parse().unwrap();
    let (o, d) = rvs_check::probe::probe_with(&c, t, &rvs_check::ScriptPolicy::default()).await;
    closer.join().unwrap();
    assert_eq!(o, Outcome::Up, "{}", d.text);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Issue #18 item 4: `bindto` / `bind_port` apply to `UDP_CHECK` and `DNS_CHECK` (and `bindto`
/// to `PING_CHECK`), as to the TCP checks: the real server sees the probe come from there.
#[tokio::test]
async fn udp_and_dns_checks_honour_bindto_and_bind_port() {
    use rvs_conf::model::{DnsCheck, UdpCheck};
    for (i, kind) in [
        CheckKind::Udp(UdpCheck {
            payload: None,
            require_reply: false,
            reply: None,
            min_reply_length: 0,
            max_reply_length: 0,
        }),
        CheckKind::Dns(DnsCheck {
            query_type: "A".into(),
            name: "example.org".into(),
        }),
    ]
    .into_iter()
    .enumerate()
    {
        let addr = format!("127.41.1.{}:5300", i + 1);
        let u = tokio::net::UdpSocket::bind(&addr).await.unwrap();
        let from = tokio::spawn(async move {
            let mut buf = [0u8; 512];
            let (n, from) = u.recv_from(&mut buf).await.unwrap();
            let mut r = buf[..n].to_vec();
            if r.len() > 3 {
                r[2] |= 0x80; // a DNS answer, NOERROR; the UDP check ignores it
            }
            u.send_to(&r, from).await.unwrap();
            from
        });
        let mut c = checker(kind);
        c.bindto = Some("127.41.1.9".parse().unwrap());
        c.bind_port = Some(40_100 + u16::try_from(i).unwrap());
        let _ = probe(&c, addr.parse().unwrap()).await;
        let from = tokio::time::timeout(std::time::Duration::from_secs(10), from)
            .await
            .expect("the probe reached the server")
            .unwrap();
        assert_eq!(
            from,
            format!("127.41.1.9:{}", 40_100 + i)
                .parse::<SocketAddr>()
                .unwrap(),
            "check {i}"
        );
    }
}
