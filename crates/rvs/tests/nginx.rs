//! `HTTP_GET` and `SSL_GET` against Debian's nginx (installed by CI): `rvs genhash` gives the
//! digest of a page nginx serves; `rvs run` checks it and takes the real server out when
//! the page changes and back when it is restored; `SSL_GET` with a self-signed certificate,
//! verified (the root `SSL { ca }`: a name mismatch is down) and not verified (no CA:
//! the same server is up); nginx stopped takes both out, started again brings them back.
//!
//! Needs nginx and openssl; in CI (CI=true) a missing one fails the test.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::format_push_string)]

mod common;

use common::Daemon;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn have(cmd: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {cmd}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// nginx, openssl, md5sum: a missing one fails the test, naming it.
fn require() {
    for c in ["nginx", "openssl", "md5sum"] {
        assert!(
            have(c),
            "the nginx test cannot run: {c} is not installed (.ci/run installs it)"
        );
    }
}

struct Nginx {
    child: Option<Child>,
    dir: std::path::PathBuf,
}

impl Nginx {
    fn start(dir: &std::path::Path) -> Nginx {
        let child = Command::new("nginx")
            .args(["-p"])
            .arg(dir)
            .args(["-e", "error.log", "-c"])
            .arg(dir.join("nginx.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let n = Nginx {
            child: Some(child),
            dir: dir.to_owned(),
        };
        let t = Instant::now();
        while std::net::TcpStream::connect("127.36.0.1:18080").is_err() {
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "nginx did not start: {}",
                std::fs::read_to_string(dir.join("error.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        n
    }

    /// Stops nginx (SIGTERM to its master, by the pid we started).
    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            let _ = c.wait();
        }
        let _ = &self.dir;
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        self.stop();
    }
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
#[ignore = "needs Debian's nginx: ./test.sh runs it as root"]
fn http_and_ssl_checks_against_nginx() {
    require();
    let dir = std::env::temp_dir().join(format!("rvs-nginx-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("www")).unwrap();
    std::fs::create_dir_all(dir.join("logs")).unwrap();
    let p = |n: &str| dir.join(n).display().to_string();
    // A self-signed certificate (no CA) for 127.36.0.2 only; and a client certificate,
    // which the server at 127.36.0.4 requires (trusting it as its own CA: self-signed).
    let self_signed = |cn: &str, extra: &[&str], key: &str, cert: &str| {
        let mut args = vec![
            "req".to_owned(),
            "-x509".into(),
            "-newkey".into(),
            "ec".into(),
            "-pkeyopt".into(),
            "ec_paramgen_curve:P-256".into(),
            "-nodes".into(),
            "-days".into(),
            "1".into(),
            "-subj".into(),
            format!("/CN={cn}"),
        ];
        for e in extra {
            args.extend(["-addext".to_owned(), (*e).to_owned()]);
        }
        args.extend(["-keyout".into(), p(key), "-out".into(), p(cert)]);
        run(Command::new("openssl").args(&args));
    };
    self_signed(
        "rs2.rvs.test",
        &[
            "subjectAltName=IP:127.36.0.2",
            "basicConstraints=critical,CA:FALSE",
        ],
        "key.pem",
        "cert.pem",
    );
    self_signed(
        "director.rvs.test",
        &["basicConstraints=critical,CA:TRUE"],
        "client-key.pem",
        "client.pem",
    );
    std::fs::write(dir.join("www/health.txt"), "healthy\n").unwrap();
    std::fs::write(
        dir.join("nginx.conf"),
        format!(
            "worker_processes 1;\ndaemon off;\npid {pid};\nevents {{ worker_connections 64; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {d}/tmp;\n  proxy_temp_path {d}/tmp;\n  fastcgi_temp_path {d}/tmp;\n  uwsgi_temp_path {d}/tmp;\n  scgi_temp_path {d}/tmp;\n\
             server {{ listen 127.36.0.1:18080; root {www}; }}\n\
             server {{ listen 127.36.0.2:18443 ssl; listen 127.36.0.3:18443 ssl; ssl_certificate {cert}; ssl_certificate_key {key}; root {www}; }}\n\
             server {{ listen 127.36.0.4:18443 ssl; ssl_certificate {cert}; ssl_certificate_key {key}; ssl_verify_client on; ssl_client_certificate {client}; root {www}; }}\n}}\n",
            pid = p("nginx.pid"),
            d = dir.display(),
            www = p("www"),
            cert = p("cert.pem"),
            key = p("key.pem"),
            client = p("client.pem"),
        ),
    )
    .unwrap();
    let mut nginx = Nginx::start(&dir);
    // genhash: the digest of what nginx serves equals md5sum of the file.
    let gen = run(Command::new(env!("CARGO_BIN_EXE_rvs")).args([
        "genhash",
        "-s",
        "127.36.0.1",
        "-p",
        "18080",
        "-u",
        "/health.txt",
    ]));
    let digest = gen
        .lines()
        .find_map(|l| l.strip_prefix("MD5SUM = "))
        .unwrap_or_else(|| panic!("genhash printed {gen}"))
        .trim()
        .to_owned();
    let md5 = run(Command::new("md5sum").arg(dir.join("www/health.txt")));
    assert_eq!(Some(digest.as_str()), md5.split_whitespace().next());

    // The server at 127.36.0.4 requires a client certificate.
    let checks = || {
        let mut c = String::new();
        let common = "            connect_timeout 1\n            retry 0\n            warmup 0\n";
        c += "virtual_server 127.36.1.1 8080 {\n    delay_loop 1\n    lvs_sched rr\n    lvs_method NAT\n    protocol TCP\n";
        c += &format!("    real_server 127.36.0.1 18080 {{\n        HTTP_GET {{\n            url {{\n                path /health.txt\n                digest {digest}\n                status_code 200-299\n            }}\n{common}        }}\n    }}\n");
        for rs in ["127.36.0.2", "127.36.0.3", "127.36.0.4"] {
            c += &format!("    real_server {rs} 18443 {{\n        SSL_GET {{\n            url {{\n                path /health.txt\n                status_code 200\n            }}\n{common}        }}\n    }}\n");
        }
        c + "}\n"
    };
    let conf = |verify: bool| {
        let mut c = String::new();
        if verify {
            c += &format!("SSL {{\n    ca {}\n}}\n", p("cert.pem"));
        }
        c + &checks()
    };
    let with_client_cert = || {
        format!(
            "SSL {{\n    certificate {}\n    key {}\n}}\n{}",
            p("client.pem"),
            p("client-key.pem"),
            checks()
        )
    };
    let vip: SocketAddr = "127.36.1.1:8080".parse().unwrap();
    let d = Daemon::start("nginx", &conf(true), vip);
    let listed = |rs: &str| d.adm(&["-Ln"]).1.contains(rs);
    let wait = |what: &str, f: &dyn Fn() -> bool| {
        let t = Instant::now();
        while !f() {
            assert!(
                t.elapsed() < Duration::from_secs(8),
                "{what}:\n{}",
                d.adm(&["-Ln"]).1
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        t.elapsed()
    };
    let (rs1, rs2, rs3) = ("127.36.0.1:18080", "127.36.0.2:18443", "127.36.0.3:18443");
    wait(
        "verified SSL_GET to a certificate without 127.36.0.3 must fail",
        &|| !listed(rs3),
    );
    std::thread::sleep(Duration::from_millis(2500));
    assert!(listed(rs1) && listed(rs2), "{}", d.adm(&["-Ln"]).1);
    assert!(!listed(rs3));
    // The page changes: its digest no longer matches.
    std::fs::write(dir.join("www/health.txt"), "changed\n").unwrap();
    let t = wait("HTTP_GET with a stale digest", &|| !listed(rs1));
    eprintln!("digest mismatch: out after {t:?}");
    std::fs::write(dir.join("www/health.txt"), "healthy\n").unwrap();
    wait("HTTP_GET back after the page was restored", &|| listed(rs1));
    // nginx stops: both out; it starts again: both back.
    nginx.stop();
    let t = wait("nginx stopped", &|| !listed(rs1) && !listed(rs2));
    eprintln!("nginx stopped: both out after {t:?}");
    let _nginx = Nginx::start(&dir);
    wait("nginx started again", &|| listed(rs1) && listed(rs2));
    // Without `SSL { ca }` nothing is verified: the mismatching server is up.
    let (ok, msg) = d.reload(&conf(false));
    assert!(ok, "{msg}");
    wait("unverified SSL_GET", &|| listed(rs3));
    // A server that requires a client certificate answers 400 without one: out; with the
    // root `SSL { certificate key }` presented, it is in.
    let rs4 = "127.36.0.4:18443";
    assert!(!listed(rs4), "{}", d.adm(&["-Ln"]).1);
    // The key encrypted (PKCS#8, as `openssl pkcs8 -topk8` writes it), with `password`:
    // a wrong one leaves the server out, the right one lets the certificate through.
    run(Command::new("openssl").args([
        "pkcs8",
        "-topk8",
        "-v2",
        "aes-256-cbc",
        "-in",
        &p("client-key.pem"),
        "-out",
        &p("client-key-enc.pem"),
        "-passout",
        "pass:s3cret",
    ]));
    let encrypted = |password: &str| {
        format!(
            "SSL {{\n    certificate {}\n    key {}\n    password {password}\n}}\n{}",
            p("client.pem"),
            p("client-key-enc.pem"),
            checks()
        )
    };
    let (ok, msg) = d.reload(&encrypted("wrong"));
    assert!(ok, "{msg}");
    std::thread::sleep(Duration::from_millis(2500));
    assert!(!listed(rs4), "a wrong password let the key through");
    let (ok, msg) = d.reload(&encrypted("s3cret"));
    assert!(ok, "{msg}");
    wait("SSL_GET with an encrypted client key", &|| listed(rs4));
    let (ok, msg) = d.reload(&conf(false));
    assert!(ok, "{msg}");
    wait("SSL_GET without a client certificate", &|| !listed(rs4));
    let (ok, msg) = d.reload(&with_client_cert());
    assert!(ok, "{msg}");
    wait("SSL_GET with a client certificate", &|| listed(rs4));
    assert!(d.stop().success());
    let _ = std::fs::remove_dir_all(&dir);
}
