//! One check of one kind against one real server.

use crate::state::Outcome;
use md5::{Digest, Md5};
use rvs_conf::model::{CheckKind, Checker, HttpCheck, MiscCheck, UdpCheck};
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

/// One check, scripts run as the daemon's own user without script security.
pub async fn probe(c: &Checker, target: SocketAddr) -> (Outcome, Detail) {
    probe_with(c, target, &crate::ScriptPolicy::default()).await
}

/// One check, with the config's script policy.
pub async fn probe_with(
    c: &Checker,
    target: SocketAddr,
    policy: &crate::ScriptPolicy,
) -> (Outcome, Detail) {
    match &c.kind {
        CheckKind::Tcp => match connect_for(c, target, "TCP").await {
            Ok(_) => (Outcome::Up, Detail::default()),
            Err(fail) => fail,
        },
        CheckKind::Http(h) => http(c, h, target, false).await,
        CheckKind::Ssl(h) => http(c, h, target, true).await,
        CheckKind::Misc(m) => misc(m, policy).await,
        CheckKind::Smtp(sm) => smtp(c, &sm.helo_name, target).await,
        CheckKind::Dns(dq) => dns(c, &dq.query_type, &dq.name, target).await,
        CheckKind::Udp(u) => udp(c, u, target).await,
        CheckKind::Ping => ping(c, target).await,
        other => (
            Outcome::LocalError,
            detail(format!("{} is not implemented yet", other.name())),
        ),
    }
}

/// Connects, or returns the check's outcome with keepalived's log line
/// (`TCP connection to [198.18.0.3]:tcp:80 failed: …`).
async fn connect_for(
    c: &Checker,
    target: SocketAddr,
    what: &str,
) -> Result<TcpStream, (Outcome, Detail)> {
    connect(c, target).await.map_err(|(o, e)| {
        (
            o,
            detail(format!(
                "{what} connection to [{}]:tcp:{} failed: {e}",
                target.ip(),
                target.port()
            )),
        )
    })
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
    let target =
        bind_if(c, &socket2::SockRef::from(&sock), target).map_err(|e| (Outcome::LocalError, e))?;
    match tokio::time::timeout(c.connect_timeout, sock.connect(target)).await {
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

/// Sends a request and reads the whole response (until the server closes, 16 MiB at
/// most), all within `timeout`.
pub async fn exchange<S>(s: &mut S, req: &str, timeout: Duration) -> std::io::Result<Vec<u8>>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let io = async {
        s.write_all(req.as_bytes()).await?;
        let mut raw = Vec::new();
        let mut buf = vec![0u8; 16384];
        loop {
            let n = match s.read(&mut buf).await {
                Ok(n) => n,
                // TLS servers often close without close_notify: the response is complete.
                Err(e) if e.kind() == ErrorKind::UnexpectedEof && !raw.is_empty() => 0,
                Err(e) => return Err(e),
            };
            if n == 0 || raw.len() > 16 << 20 {
                return Ok(raw);
            }
            raw.extend_from_slice(&buf[..n]);
        }
    };
    tokio::time::timeout(timeout, io)
        .await
        .unwrap_or_else(|_| Err(std::io::Error::new(ErrorKind::TimedOut, "timed out")))
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
    let scheme = if tls { "https" } else { "http" };
    let tls_cfg = if tls {
        let client = h.tls_certificate.as_deref().zip(h.tls_key.as_deref());
        match crate::tls::client_config(h.tls_ca.as_deref(), client, h.tls_key_password.as_deref())
        {
            Ok(cfg) => Some(std::sync::Arc::new(cfg)),
            Err(e) => return (Outcome::LocalError, detail(format!("SSL_GET: {e}"))),
        }
    } else {
        None
    };
    for u in &h.urls {
        let vhost = u.virtualhost.as_deref().or(h.virtualhost.as_deref());
        let url = format!("{scheme}://{target}{}", u.path);
        let tcp = match connect_for(c, target, "HTTP").await {
            Ok(s) => s,
            Err(fail) => return fail,
        };
        let req = request(h, &u.path, vhost, target);
        let timeout = c.connect_timeout;
        let raw = if let Some(cfg) = &tls_cfg {
            let sni = if h.enable_sni {
                h.sni_name.as_deref().or(vhost)
            } else {
                None
            };
            let name = crate::tls::server_name(sni, target);
            let conn = tokio_rustls::TlsConnector::from(cfg.clone());
            let mut s = match tokio::time::timeout(timeout, conn.connect(name, tcp)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    return (
                        Outcome::Down,
                        detail(format!("SSL handshake with {url} failed: {e}")),
                    )
                }
                Err(_) => {
                    return (
                        Outcome::Down,
                        detail(format!("SSL handshake with {url} timed out")),
                    )
                }
            };
            exchange(&mut s, &req, timeout).await
        } else {
            let mut s = tcp;
            exchange(&mut s, &req, timeout).await
        };
        let raw = match raw {
            Ok(r) => r,
            Err(e) => {
                return (
                    Outcome::Down,
                    detail(format!("HTTP read from {url} failed: {e}")),
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
        // `regex` / `regex_no_match`: a page that answers 200 with an error in it.
        if let Some(Ok(re)) = u.compiled_regex() {
            if !u.page_passes(&re, body) {
                return (
                    Outcome::Down,
                    detail(format!(
                        "Regex {}match failed on {url} (regex \"{}\")",
                        if u.regex_no_match { "no " } else { "" },
                        u.regex.as_deref().unwrap_or_default()
                    )),
                );
            }
        }
    }
    (Outcome::Up, Detail::default())
}

async fn misc(m: &MiscCheck, policy: &crate::ScriptPolicy) -> (Outcome, Detail) {
    let Some(script) = &m.misc_path else {
        return (
            Outcome::LocalError,
            detail("MISC_CHECK without misc_path".into()),
        );
    };
    let prog = script.argv.first().cloned().unwrap_or_default();
    let user = script.user.as_deref().map(|u| (u, script.group.as_deref()));
    let mut cmd = match policy.command_as(&script.argv, user) {
        Ok(c) => c,
        Err(e) => return (Outcome::LocalError, detail(e)),
    };
    let mut child = match rvs_script::spawn(&mut cmd).await {
        Ok(c) => c,
        Err(e) => {
            return (
                Outcome::LocalError,
                detail(format!("cannot run {prog}: {e}")),
            )
        }
    };
    let status = match tokio::time::timeout(m.misc_timeout, child.wait()).await {
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

/// SMTP: the 220 greeting, `HELO name` answered with 250, then QUIT.
async fn smtp(c: &Checker, helo: &str, target: SocketAddr) -> (Outcome, Detail) {
    let fail = |why: String| {
        (
            Outcome::Down,
            detail(format!(
                "SMTP check of [{}]:tcp:{} failed: {why}",
                target.ip(),
                target.port()
            )),
        )
    };
    let mut s = match connect_for(c, target, "SMTP").await {
        Ok(s) => s,
        Err(fail) => return fail,
    };
    let io = async {
        let greet = read_reply(&mut s).await?;
        if !greet.starts_with("220") {
            return Ok(Err(format!("greeting '{}'", greet.trim())));
        }
        s.write_all(format!("HELO {helo}\r\n").as_bytes()).await?;
        let r = read_reply(&mut s).await?;
        if !r.starts_with("250") {
            return Ok(Err(format!("HELO answered '{}'", r.trim())));
        }
        let _ = s.write_all(b"QUIT\r\n").await;
        Ok::<_, std::io::Error>(Ok(()))
    };
    match tokio::time::timeout(c.connect_timeout, io).await {
        Ok(Ok(Ok(()))) => (Outcome::Up, Detail::default()),
        Ok(Ok(Err(why))) => fail(why),
        Ok(Err(e)) => fail(e.to_string()),
        Err(_) => fail("timeout".into()),
    }
}

/// Reads one SMTP reply (the last line of a multi-line reply has a space after the code).
async fn read_reply(s: &mut TcpStream) -> std::io::Result<String> {
    let mut got = Vec::new();
    let mut buf = [0u8; 512];
    loop {
        let n = s.read(&mut buf).await?;
        if n == 0 {
            return Err(std::io::Error::new(
                ErrorKind::UnexpectedEof,
                "connection closed",
            ));
        }
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got).to_string();
        if let Some(last) = text
            .strip_suffix("\r\n")
            .and_then(|t| t.rsplit("\r\n").next())
        {
            if last.len() < 4 || last.as_bytes()[3] == b' ' {
                return Ok(last.to_owned());
            }
        }
        if got.len() > 8192 {
            return Ok(text);
        }
    }
}

/// A DNS query (RFC 1035) for `name`/`qtype` with recursion desired.
pub fn dns_query(id: u16, name: &str, qtype: &str) -> Vec<u8> {
    let t: u16 = match qtype {
        "A" => 1,
        "NS" => 2,
        "CNAME" => 5,
        "MX" => 15,
        "TXT" => 16,
        "AAAA" => 28,
        "RRSIG" => 46,
        "DNSKEY" => 48,
        _ => 6, // SOA
    };
    let mut q = id.to_be_bytes().to_vec();
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name
        .trim_end_matches('.')
        .split('.')
        .filter(|l| !l.is_empty())
    {
        let l = &label.as_bytes()[..label.len().min(63)];
        q.push(u8::try_from(l.len()).unwrap_or(63));
        q.extend_from_slice(l);
    }
    q.push(0);
    q.extend_from_slice(&t.to_be_bytes());
    q.extend_from_slice(&1u16.to_be_bytes());
    q
}

/// DNS over UDP: a reply with our id, QR set and RCODE NOERROR means up.
/// `bind_if`: the check's socket sends and receives through that interface only
/// (`SO_BINDTODEVICE`), as keepalived binds it, and an IPv6 link-local target without a
/// scope is reached through it. Returns the target to use.
fn bind_if(
    c: &Checker,
    sock: &socket2::SockRef<'_>,
    target: SocketAddr,
) -> std::io::Result<SocketAddr> {
    let Some(ifname) = &c.bind_if else {
        return Ok(target);
    };
    sock.bind_device(Some(ifname.as_bytes()))
        .map_err(|e| std::io::Error::new(e.kind(), format!("bind_if {ifname}: {e}")))?;
    Ok(match target {
        SocketAddr::V6(mut v6) if v6.ip().is_unicast_link_local() && v6.scope_id() == 0 => {
            let index = rustix::net::netdevice::name_to_index(&**sock, ifname)
                .map_err(|e| std::io::Error::other(format!("bind_if {ifname}: {e}")))?;
            v6.set_scope_id(index);
            SocketAddr::V6(v6)
        }
        t => t,
    })
}

/// A UDP socket for a check: bound to `bindto`/`bind_port` when set, with `fwmark` and
/// `bind_if`, as the TCP checks are (keepalived applies them to every checker). Returns
/// the target to use (`bind_if` scopes a link-local one).
async fn udp_socket(
    c: &Checker,
    target: SocketAddr,
) -> std::io::Result<(tokio::net::UdpSocket, SocketAddr)> {
    let ip = c.bindto.unwrap_or(if target.is_ipv4() {
        [0, 0, 0, 0].into()
    } else {
        std::net::Ipv6Addr::UNSPECIFIED.into()
    });
    let sock = tokio::net::UdpSocket::bind(SocketAddr::new(ip, c.bind_port.unwrap_or(0))).await?;
    if let Some(m) = c.fwmark {
        let _ = socket2::SockRef::from(&sock).set_mark(m);
    }
    let target = bind_if(c, &socket2::SockRef::from(&sock), target)?;
    Ok((sock, target))
}

async fn dns(c: &Checker, qtype: &str, name: &str, target: SocketAddr) -> (Outcome, Detail) {
    let (sock, target) = match udp_socket(c, target).await {
        Ok(s) => s,
        Err(e) => return (Outcome::LocalError, detail(format!("DNS check: {e}"))),
    };
    let id = u16::try_from(std::process::id() & 0xffff).unwrap_or(1) ^ target.port();
    let q = dns_query(id, name, qtype);
    let fail = |why: String| {
        (
            Outcome::Down,
            detail(format!(
                "DNS check of [{}]:udp:{} failed: {why}",
                target.ip(),
                target.port()
            )),
        )
    };
    let io = async {
        sock.connect(target).await?;
        sock.send(&q).await?;
        let mut buf = [0u8; 4096];
        loop {
            let n = sock.recv(&mut buf).await?;
            if n >= 12 && buf[..2] == id.to_be_bytes() && buf[2] & 0x80 != 0 {
                return Ok::<_, std::io::Error>(buf[3] & 0x0f);
            }
        }
    };
    match tokio::time::timeout(c.connect_timeout, io).await {
        Ok(Ok(0)) => (Outcome::Up, Detail::default()),
        Ok(Ok(rcode)) => fail(format!("RCODE {rcode}")),
        Ok(Err(e)) => fail(e.to_string()),
        Err(_) => fail("no answer".into()),
    }
}

fn unhex(h: &str) -> Vec<u8> {
    h.as_bytes()
        .chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap_or("00"), 16).unwrap_or(0))
        .collect()
}

/// Whether a reply matches a hex pattern with `x` nibbles as wildcards.
pub fn reply_matches(reply: &[u8], pattern: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    if reply.len() * 2 < p.len() {
        return false;
    }
    p.chunks(2).zip(reply).all(|(pair, b)| {
        let hex = format!("{b:02x}");
        pair.iter()
            .zip(hex.chars())
            .all(|(pc, hc)| *pc == 'x' || *pc == 'X' || pc.eq_ignore_ascii_case(&hc))
    })
}

/// UDP: send the payload; with `require_reply` a matching reply is needed, otherwise
/// only an ICMP error (port unreachable) means down.
async fn udp(c: &Checker, u: &UdpCheck, target: SocketAddr) -> (Outcome, Detail) {
    let (sock, target) = match udp_socket(c, target).await {
        Ok(s) => s,
        Err(e) => return (Outcome::LocalError, detail(format!("UDP check: {e}"))),
    };
    let payload = u
        .payload
        .as_deref()
        .map_or_else(|| b"rvs-udp-check".to_vec(), unhex);
    let fail = |why: String| {
        (
            Outcome::Down,
            detail(format!(
                "UDP check of [{}]:udp:{} failed: {why}",
                target.ip(),
                target.port()
            )),
        )
    };
    if let Err(e) = sock.connect(target).await {
        return fail(e.to_string());
    }
    if let Err(e) = sock.send(&payload).await {
        return fail(e.to_string());
    }
    let mut buf = vec![0u8; 65536];
    match tokio::time::timeout(c.connect_timeout, sock.recv(&mut buf)).await {
        Ok(Ok(n)) => {
            let r = &buf[..n];
            let len_ok = u64::try_from(n).is_ok_and(|n| {
                n >= u64::from(u.min_reply_length) && n <= u64::from(u.max_reply_length)
            });
            if u.require_reply
                && (!len_ok || !u.reply.as_deref().is_none_or(|p| reply_matches(r, p)))
            {
                return fail("reply does not match".into());
            }
            (Outcome::Up, Detail::default())
        }
        Ok(Err(e)) => fail(e.to_string()),
        Err(_) if u.require_reply => fail("no reply".into()),
        Err(_) => (Outcome::Up, Detail::default()),
    }
}

/// `PING_CHECK`: one ICMP/ICMPv6 echo. An unprivileged ping socket when the host allows it
/// (`net.ipv4.ping_group_range`); otherwise, when rvs may open raw sockets (root), a raw
/// ICMP socket, so that a root daemon needs no sysctl change.
async fn ping(c: &Checker, target: SocketAddr) -> (Outcome, Detail) {
    let (domain, proto, req) = if target.is_ipv4() {
        (socket2::Domain::IPV4, socket2::Protocol::ICMPV4, 8u8)
    } else {
        (socket2::Domain::IPV6, socket2::Protocol::ICMPV6, 128u8)
    };
    let (sock, raw) = match socket2::Socket::new(domain, socket2::Type::DGRAM, Some(proto)) {
        Ok(s) => (s, false),
        Err(e) => match socket2::Socket::new(domain, socket2::Type::RAW, Some(proto)) {
            Ok(s) => (s, true),
            Err(_) => {
                return (
                    Outcome::LocalError,
                    detail(format!(
                        "PING_CHECK cannot open a ping socket ({e}) nor a raw one; check net.ipv4.ping_group_range"
                    )),
                );
            }
        },
    };
    let _ = sock.set_nonblocking(true);
    // bindto (the source of the echo requests) and fwmark, as the other checks.
    if let Some(ip) = c.bindto {
        if let Err(e) = sock.bind(&SocketAddr::new(ip, 0).into()) {
            return (
                Outcome::LocalError,
                detail(format!("PING_CHECK cannot bind to {ip}: {e}")),
            );
        }
    }
    if let Some(m) = c.fwmark {
        let _ = sock.set_mark(m);
    }
    let target = match bind_if(c, &socket2::SockRef::from(&sock), target) {
        Ok(t) => t,
        Err(e) => return (Outcome::LocalError, detail(format!("PING_CHECK: {e}"))),
    };
    let std_sock: std::net::UdpSocket = sock.into();
    let Ok(sock) = tokio::net::UdpSocket::from_std(std_sock) else {
        return (
            Outcome::LocalError,
            detail("PING_CHECK: socket setup failed".into()),
        );
    };
    let dst = SocketAddr::new(target.ip(), 0);
    // A ping socket gets its identifier from the kernel; a raw one uses ours.
    let ident = ping_ident();
    let mut pkt = vec![req, 0, 0, 0];
    pkt.extend_from_slice(&ident.to_be_bytes());
    pkt.extend_from_slice(&[0, 1]);
    pkt.extend_from_slice(b"rvs-ping");
    if raw && target.is_ipv4() {
        // ICMPv6 raw sockets have the kernel fill the checksum; ICMPv4 ones do not.
        let ck = rvs_wire::checksum::fold(rvs_wire::checksum::sum(&pkt));
        pkt[2..4].copy_from_slice(&ck.to_be_bytes());
    }
    let fail = |why: String| {
        (
            Outcome::Down,
            detail(format!("PING_CHECK of [{}] failed: {why}", target.ip())),
        )
    };
    if let Err(e) = sock.send_to(&pkt, dst).await {
        return fail(e.to_string());
    }
    let reply = if target.is_ipv4() { 0u8 } else { 129u8 };
    let io = async {
        let mut buf = [0u8; 1500];
        loop {
            let (n, from) = sock.recv_from(&mut buf).await?;
            if from.ip() != target.ip() {
                continue;
            }
            // A raw IPv4 socket hands over the IP header too.
            let icmp = if raw && target.is_ipv4() {
                let ihl = usize::from(buf[0] & 0x0f) * 4;
                buf.get(ihl..n).unwrap_or_default()
            } else {
                buf.get(..n).unwrap_or_default()
            };
            let ours = !raw || icmp.get(4..6) == Some(&ident.to_be_bytes()[..]);
            if icmp.len() >= 8 && icmp[0] == reply && ours {
                return Ok::<_, std::io::Error>(());
            }
        }
    };
    match tokio::time::timeout(c.connect_timeout, io).await {
        Ok(Ok(())) => (Outcome::Up, Detail::default()),
        Ok(Err(e)) => fail(e.to_string()),
        Err(_) => fail("no echo reply".into()),
    }
}

/// An echo identifier per probe (process id mixed with a counter), so that concurrent raw
/// probes tell their replies apart.
fn ping_ident() -> u16 {
    static NEXT: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    // Only the low bits matter.
    let pid = (std::process::id() & 0xffff) as u16;
    pid.wrapping_mul(31).wrapping_add(n)
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
    fn dns_query_bytes_and_reply_patterns() {
        let q = dns_query(0x1234, "example.org", "A");
        assert_eq!(&q[..12], &[0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&q[12..], b"\x07example\x03org\x00\x00\x01\x00\x01");
        // keepalived's DNSSEC types (RFC 4034).
        assert_eq!(&dns_query(1, "a", "RRSIG")[15..17], &[0, 46]);
        assert_eq!(&dns_query(1, "a", "DNSKEY")[15..17], &[0, 48]);
        assert!(reply_matches(&[0x01, 0xab], "01xx"));
        assert!(reply_matches(&[0x01, 0xab, 0xff], "01aB"));
        assert!(!reply_matches(&[0x02, 0xab], "01xx"));
        assert!(!reply_matches(&[0x01], "01ab"));
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
