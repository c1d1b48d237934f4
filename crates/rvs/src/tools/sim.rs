//! `rvs sim`: what would kernel IPVS do with these connections, given this config?

use clap::Args;
use rvs_sched::{Compat, Dir, Ipvs, Packet, Proto, TcpFlags, Verdict};
use std::io::{BufRead, Write as _};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

/// Flow file format (one flow per line; blank lines and `#` comments are skipped):
///
///   [@SECONDS] tcp|udp `CLIENT_IP:PORT` VIP:PORT [mark=N] [close]
///
/// Each flow opens a connection from the client to the virtual service as the kernel
/// would see it (TCP: SYN, then the handshake; UDP: one datagram) and prints the input
/// line, ` -> `, and the real server chosen (`IP:PORT`, `[IPv6]:PORT`) or `none`.
/// `close` ends the connection after it is scheduled (FIN both ways), so its server's
/// counters move from active to inactive as in the kernel. A flow whose 4-tuple is still
/// in the connection table goes where that connection goes. `@SECONDS` sets the clock
/// (it never goes back), so timeouts and persistence expire as configured. `mark=N`
/// gives the packet a firewall mark (for `virtual_server fwmark N`).
///
/// Real servers enter each service in config order, as keepalived adds them, so the
/// kernel's list (which every tie-break depends on) holds them newest first.
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct SimArgs {
    /// The keepalived.conf.
    #[arg(short = 'f', long = "file")]
    pub file: PathBuf,
    /// The flow file (default: standard input).
    #[arg(long)]
    pub flows: Option<PathBuf>,
    /// One JSON object per flow instead of text.
    #[arg(long)]
    pub json: bool,
    /// Kernel behaviour: `new` (Linux 6.1.183+ stable: overhead 257·A + I, default) or
    /// `classic` (256·A + I).
    #[arg(long, default_value = "new", value_parser = ["new", "classic"])]
    pub kernel: String,
    /// Seed for the `twos` scheduler's random choices.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

pub fn run(a: &SimArgs) -> ExitCode {
    let parsed = rvs_conf::parse_file(&a.file, &rvs_conf::Options::default());
    let mut err = std::io::stderr().lock();
    if parsed.errors() > 0 {
        let _ = write!(err, "{}", parsed.render());
        let _ = writeln!(err, "{}: invalid configuration", a.file.display());
        return ExitCode::from(1);
    }
    let compat = Compat {
        overhead_new: a.kernel == "new",
        ..Compat::default()
    };
    let mut ipvs = rvs_desired::build(&parsed.config, compat);
    ipvs.seed(a.seed);
    let input: Box<dyn BufRead> = match &a.flows {
        Some(p) => match std::fs::File::open(p) {
            Ok(f) => Box::new(std::io::BufReader::new(f)),
            Err(e) => {
                let _ = writeln!(err, "rvs sim: cannot read {}: {e}", p.display());
                return ExitCode::from(1);
            }
        },
        None => Box::new(std::io::stdin().lock()),
    };
    let name = a
        .flows
        .as_ref()
        .map_or_else(|| "<stdin>".to_owned(), |p| p.display().to_string());
    let mut out = std::io::stdout().lock();
    let mut now_ms: u64 = 0;
    for (i, line) in input.lines().enumerate() {
        let line = match line {
            Ok(l) => l,
            Err(e) => {
                let _ = writeln!(err, "{name}:{}: error: {e}", i + 1);
                return ExitCode::from(1);
            }
        };
        let text = line.split('#').next().unwrap_or("").trim();
        if text.is_empty() {
            continue;
        }
        let flow = match parse_flow(text) {
            Ok(f) => f,
            Err(e) => {
                let _ = writeln!(err, "{name}:{}: error: {e}\n  | {line}", i + 1);
                return ExitCode::from(1);
            }
        };
        if let Some(t) = flow.at_ms {
            now_ms = now_ms.max(t);
        }
        let dest = run_flow(&mut ipvs, now_ms, &flow);
        let shown = dest.map_or_else(
            || "none".to_owned(),
            |(a, p)| SocketAddr::new(a, p).to_string(),
        );
        let res = if a.json {
            let v = serde_json::json!({
                "line": i + 1,
                "flow": text,
                "dest": dest.map(|(a, p)| SocketAddr::new(a, p).to_string()),
            });
            writeln!(out, "{v}")
        } else {
            writeln!(out, "{text} -> {shown}")
        };
        if res.is_err() {
            return ExitCode::from(1);
        }
    }
    ExitCode::SUCCESS
}

struct Flow {
    at_ms: Option<u64>,
    proto: Proto,
    client: SocketAddr,
    vip: SocketAddr,
    mark: u32,
    close: bool,
}

fn parse_flow(text: &str) -> Result<Flow, String> {
    let mut words = text.split_whitespace().peekable();
    let mut at_ms = None;
    if let Some(w) = words.peek().and_then(|w| w.strip_prefix('@')) {
        let secs: f64 = w
            .parse()
            .map_err(|_| format!("invalid time '@{w}': seconds expected"))?;
        if !secs.is_finite() || secs < 0.0 {
            return Err(format!("invalid time '@{w}'"));
        }
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "checked finite and non-negative"
        )]
        let ms = (secs * 1000.0) as u64;
        at_ms = Some(ms);
        words.next();
    }
    let proto = match words.next() {
        Some("tcp") => Proto::Tcp,
        Some("udp") => Proto::Udp,
        Some("sctp") => Proto::Sctp,
        Some(w) => return Err(format!("unknown protocol '{w}': tcp, udp or sctp")),
        None => return Err("empty flow".into()),
    };
    let addr = |w: Option<&str>, what: &str| -> Result<SocketAddr, String> {
        let w = w.ok_or_else(|| format!("missing {what} (IP:PORT)"))?;
        w.parse()
            .map_err(|_| format!("invalid {what} '{w}': expected IP:PORT or [IPv6]:PORT"))
    };
    let client = addr(words.next(), "client address")?;
    let vip = addr(words.next(), "virtual address")?;
    let mut mark = 0;
    let mut close = false;
    for w in words {
        if w == "close" {
            close = true;
        } else if let Some(m) = w.strip_prefix("mark=") {
            mark = m.parse().map_err(|_| format!("invalid mark '{m}'"))?;
        } else {
            return Err(format!(
                "unexpected '{w}': only mark=N and close may follow the addresses"
            ));
        }
    }
    if client.is_ipv4() != vip.is_ipv4() {
        return Err("client and virtual address are of different families".into());
    }
    Ok(Flow {
        at_ms,
        proto,
        client,
        vip,
        mark,
        close,
    })
}

/// Plays a flow's packets through the table; returns the chosen real server.
fn run_flow(ipvs: &mut Ipvs, now: u64, f: &Flow) -> Option<(IpAddr, u16)> {
    let mut p = Packet {
        proto: f.proto,
        src: f.client.ip(),
        sport: f.client.port(),
        dst: f.vip.ip(),
        dport: f.vip.port(),
        fwmark: f.mark,
        tcp: TcpFlags::SYN,
        dir: Dir::In,
    };
    let Verdict::Forward {
        svc, dest, conn, ..
    } = ipvs.packet(now, &p)
    else {
        return None;
    };
    let d = ipvs.services[svc].dest(dest);
    let (daddr, dport, masq) = (
        d.addr,
        if d.port == 0 { f.vip.port() } else { d.port },
        d.fwd.is_nat(),
    );
    if f.proto == Proto::Tcp {
        if masq {
            let r = Packet {
                src: daddr,
                sport: dport,
                dst: p.src,
                dport: p.sport,
                tcp: TcpFlags::SYN_ACK,
                dir: Dir::Out,
                ..p
            };
            ipvs.packet(now, &r);
        }
        p.tcp = TcpFlags::ACK;
        ipvs.packet(now, &p);
    }
    if f.close {
        if let Some(c) = conn {
            ipvs.close(now, c);
        }
    }
    Some((daddr, dport))
}
