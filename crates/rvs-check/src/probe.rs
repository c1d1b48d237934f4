//! One check of one kind against one real server.

use crate::secs;
use crate::state::Outcome;
use md5::{Digest, Md5};
use rvs_conf::model::{CheckKind, Checker, HttpCheck, MiscCheck};
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// What a probe found, for the log (and the weight a `misc_dynamic` script asked for).
#[derive(Debug, Clone, Default)]
pub struct Detail {
    pub text: String,
    pub weight: Option<i32>,
}

fn detail(text: String) -> Detail {
    Detail { text, weight: None }
}

/// Errors that are this host's problem, not the real server's.
fn local(e: &std::io::Error) -> bool {
    // EMFILE (24) and ENFILE (23): out of file descriptors.
    matches!(e.raw_os_error(), Some(23 | 24))
        || e.kind() == ErrorKind::AddrNotAvailable
        || e.kind() == ErrorKind::AddrInUse
        || e.kind() == ErrorKind::PermissionDenied
}

pub async fn probe(c: &Checker, target: SocketAddr) -> (Outcome, Detail) {
    match &c.kind {
        CheckKind::Tcp => match connect(c, target).await {
            Ok(_) => (Outcome::Up, Detail::default()),
            Err((o, e)) => (
                o,
                detail(format!(
                    "TCP connection to [{}]:tcp:{} failed: {e}",
                    target.ip(),
                    target.port()
                )),
            ),
        },
        CheckKind::Http(h) => http(c, h, target, false).await,
        CheckKind::Ssl(h) => http(c, h, target, true).await,
        CheckKind::Misc(m) => misc(m).await,
        other => (
            Outcome::LocalError,
            detail(format!("{} is not implemented yet", other.name())),
        ),
    }
}

async fn connect(c: &Checker, target: SocketAddr) -> Result<TcpStream, (Outcome, std::io::Error)> {
    let sock = if target.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(|e| (Outcome::LocalError, e))?;
    if c.bindto.is_some() || c.bind_port.is_some() {
        let ip = c.bindto.unwrap_or(if target.is_ipv4() {
            [0, 0, 0, 0].into()
        } else {
            std::net::Ipv6Addr::UNSPECIFIED.into()
        });
        sock.bind(SocketAddr::new(ip, c.bind_port.unwrap_or(0)))
            .map_err(|e| (Outcome::LocalError, e))?;
    }
    if let Some(m) = c.fwmark {
        let _ = socket2::SockRef::from(&sock).set_mark(m);
    }
    match tokio::time::timeout(secs(c.connect_timeout), sock.connect(target)).await {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(e)) => Err((
            if local(&e) {
                Outcome::LocalError
            } else {
                Outcome::Down
            },
            e,
        )),
        Err(_) => Err((
            Outcome::Down,
            std::io::Error::new(ErrorKind::TimedOut, "timeout"),
        )),
    }
}

/// The request keepalived sends (spec §11.3).
pub fn request(h: &HttpCheck, path: &str, vhost: Option<&str>, target: SocketAddr) -> String {
    let host = vhost.map_or_else(|| target.to_string(), str::to_owned);
    let (ver, close) = match h.http_protocol.as_str() {
        "1.1" => ("1.1", true),
        "1.0C" => ("1.0", true),
        _ => ("1.0", false),
    };
    let conn = if close { "Connection: close\r\n" } else { "" };
    format!("GET {path} HTTP/{ver}\r\nUser-Agent: KeepAliveClient\r\n{conn}Host: {host}\r\n\r\n")
}

/// Status code and body of a raw HTTP response.
pub fn parse_response(raw: &[u8]) -> Option<(u16, &[u8])> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..end]).ok()?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, &raw[end + 4..]))
}

/// The MD5 of a body as keepalived's `digest` and `genhash` write it.
pub fn md5_hex(body: &[u8]) -> String {
    use std::fmt::Write as _;
    Md5::digest(body)
        .iter()
        .fold(String::with_capacity(32), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

async fn http(c: &Checker, h: &HttpCheck, target: SocketAddr, tls: bool) -> (Outcome, Detail) {
    if tls {
        return (
            Outcome::LocalError,
            detail("SSL_GET is not implemented yet".into()),
        );
    }
    for u in &h.urls {
        let vhost = u.virtualhost.as_deref().or(h.virtualhost.as_deref());
        let url = format!("http://{target}{}", u.path);
        let mut s = match connect(c, target).await {
            Ok(s) => s,
            Err((o, e)) => {
                return (
                    o,
                    detail(format!(
                        "HTTP connection to [{}]:tcp:{} failed: {e}",
                        target.ip(),
                        target.port()
                    )),
                )
            }
        };
        let req = request(h, &u.path, vhost, target);
        let io = async {
            s.write_all(req.as_bytes()).await?;
            let mut raw = Vec::new();
            let mut buf = vec![0u8; 16384];
            loop {
                let n = s.read(&mut buf).await?;
                if n == 0 || raw.len() > 16 << 20 {
                    return Ok::<_, std::io::Error>(raw);
                }
                raw.extend_from_slice(&buf[..n]);
            }
        };
        let raw = match tokio::time::timeout(secs(c.connect_timeout), io).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                return (
                    Outcome::Down,
                    detail(format!("HTTP read from {url} failed: {e}")),
                )
            }
            Err(_) => {
                return (
                    Outcome::Down,
                    detail(format!("HTTP read from {url} timed out")),
                )
            }
        };
        let Some((status, body)) = parse_response(&raw) else {
            return (
                Outcome::Down,
                detail(format!("HTTP response from {url} is not HTTP")),
            );
        };
        if !u
            .status_code
            .iter()
            .any(|(lo, hi)| (*lo..=*hi).contains(&status))
        {
            return (
                Outcome::Down,
                detail(format!(
                    "HTTP status code error to {url}: status_code = {status}"
                )),
            );
        }
        if let Some(want) = &u.digest {
            let got = md5_hex(body);
            if &got != want {
                return (
                    Outcome::Down,
                    detail(format!("MD5 digest error to {url}: digest = {got}")),
                );
            }
        }
    }
    (Outcome::Up, Detail::default())
}

async fn misc(m: &MiscCheck) -> (Outcome, Detail) {
    let Some(script) = &m.misc_path else {
        return (
            Outcome::LocalError,
            detail("MISC_CHECK without misc_path".into()),
        );
    };
    let Some((prog, args)) = script.argv.split_first() else {
        return (Outcome::LocalError, detail("empty misc_path".into()));
    };
    let mut cmd = tokio::process::Command::new(prog);
    cmd.args(args)
        .kill_on_drop(true)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null());
    cmd.env_remove("LD_PRELOAD")
        .env_remove("LD_LIBRARY_PATH")
        .env_remove("IFS");
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return (
                Outcome::LocalError,
                detail(format!("cannot run {prog}: {e}")),
            )
        }
    };
    let status = match tokio::time::timeout(
        Duration::from_secs_f64(m.misc_timeout.clamp(0.001, 1e6)),
        child.wait(),
    )
    .await
    {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            return (
                Outcome::LocalError,
                detail(format!("waiting for {prog}: {e}")),
            )
        }
        Err(_) => {
            let _ = child.kill().await;
            return (
                Outcome::Down,
                detail(format!("Misc check to {prog} timed out")),
            );
        }
    };
    let code = status.code().unwrap_or(-1);
    match (code, m.misc_dynamic) {
        (0, _) => (Outcome::Up, Detail::default()),
        (2..=255, true) => (
            Outcome::Up,
            Detail {
                text: String::new(),
                weight: Some(code - 2),
            },
        ),
        _ => (
            Outcome::Down,
            detail(format!(
                "Misc check to {prog} failed with exit status {code}"
            )),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_format() {
        let h = HttpCheck {
            http_protocol: "1.0".into(),
            ..HttpCheck::default()
        };
        let t: SocketAddr = "198.18.0.3:80".parse().unwrap_or_else(|_| unreachable!());
        assert_eq!(
            request(&h, "/healthz", None, t),
            "GET /healthz HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nHost: 198.18.0.3:80\r\n\r\n"
        );
        let h = HttpCheck {
            http_protocol: "1.1".into(),
            ..HttpCheck::default()
        };
        assert_eq!(request(&h, "/", Some("www"), t), "GET / HTTP/1.1\r\nUser-Agent: KeepAliveClient\r\nConnection: close\r\nHost: www\r\n\r\n");
    }

    #[test]
    fn responses_and_digests() {
        let (s, b) =
            parse_response(b"HTTP/1.1 204 No Content\r\nX: y\r\n\r\nhello").unwrap_or((0, b""));
        assert_eq!((s, b), (204, &b"hello"[..]));
        assert!(parse_response(b"garbage").is_none());
        assert_eq!(md5_hex(b""), "d41d8cd98f00b204e9800998ecf8427e");
    }
}
