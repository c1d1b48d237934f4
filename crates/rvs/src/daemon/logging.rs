//! Logging: readable text lines on stderr by default, `--log-format json` for log
//! pipelines, journald's native protocol with structured fields (`--log-format journald`,
//! chosen by itself under systemd: `tracing-journald`), and syslog (`--syslog FACILITY`,
//! keepalived's `-S`) as keepalived does.
//!
//! Syslog lines go to `/dev/log` (or `--syslog-socket`) as RFC 3164 datagrams,
//! `<PRI>rvs[PID]: message`; a missing socket is reported once and the console keeps
//! logging, so logging can never stop the daemon.

use std::io::Write;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::Layer as _;

#[derive(Debug, Clone, Default)]
pub struct LogOpts {
    pub level: String,
    pub json: bool,
    /// journald's native protocol instead of stderr.
    pub journald: bool,
    /// Syslog facility number (keepalived's `-S 0..7` = local0..local7 = 16..23).
    pub syslog: Option<u8>,
    pub syslog_socket: Option<PathBuf>,
}

/// Parses a facility: `0`..`7` (keepalived's `-S`, local0..7), `local0`..`local7`,
/// `daemon`, `user`.
pub fn facility(s: &str) -> Result<u8, String> {
    match s {
        "user" => Ok(1),
        "daemon" => Ok(3),
        _ => {
            let n = s.strip_prefix("local").unwrap_or(s);
            match n.parse::<u8>() {
                Ok(n) if n <= 7 => Ok(16 + n),
                _ => Err(format!(
                    "syslog facility {s:?}: use 0-7 (local0-7), local0-7, daemon or user"
                )),
            }
        }
    }
}

#[derive(Clone)]
struct Syslog {
    sock: Arc<Mutex<Option<UnixDatagram>>>,
    facility: u8,
}

struct SyslogLine {
    sink: Syslog,
    /// The event's syslog severity (from its level, never from its text).
    severity: u16,
    buf: Vec<u8>,
}

/// The syslog severity of a tracing level: error 3, warning 4, info 6, debug 7.
fn severity(level: tracing::Level) -> u16 {
    match level {
        tracing::Level::ERROR => 3,
        tracing::Level::WARN => 4,
        tracing::Level::INFO => 6,
        _ => 7,
    }
}

impl Write for SyslogLine {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for SyslogLine {
    fn drop(&mut self) {
        let text = String::from_utf8_lossy(&self.buf);
        let text = text.trim_end();
        if text.is_empty() {
            return;
        }
        let pri = u16::from(self.sink.facility) * 8 + self.severity;
        let msg = format!("<{pri}>rvs[{}]: {text}", std::process::id());
        let guard = self
            .sink
            .sock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(s) = guard.as_ref() {
            let _ = s.send(msg.as_bytes());
        }
    }
}

impl<'a> MakeWriter<'a> for Syslog {
    type Writer = SyslogLine;
    fn make_writer(&'a self) -> SyslogLine {
        SyslogLine {
            sink: self.clone(),
            severity: severity(tracing::Level::INFO),
            buf: Vec::with_capacity(256),
        }
    }

    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> SyslogLine {
        SyslogLine {
            sink: self.clone(),
            severity: severity(*meta.level()),
            buf: Vec::with_capacity(256),
        }
    }
}

/// systemd connected stderr to the journal: `$JOURNAL_STREAM` names stderr's device and
/// inode (systemd.exec(5)), so the native protocol can carry the fields instead.
pub fn stderr_is_the_journal() -> bool {
    let Some(v) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Ok(st) = rustix::fs::fstat(std::io::stderr()) else {
        return false;
    };
    v.to_string_lossy() == format!("{}:{}", st.st_dev, st.st_ino)
}

pub fn init(o: &LogOpts) {
    let filter = || {
        tracing_subscriber::EnvFilter::try_from_env("RVS_LOG")
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&o.level))
    };
    let mut problem = None;
    let journald = if o.journald {
        match tracing_journald::layer() {
            Ok(l) => Some(
                l.with_field_prefix(Some("RVS".to_owned()))
                    .with_syslog_identifier("rvs".to_owned())
                    .with_filter(filter()),
            ),
            Err(e) => {
                problem = Some(format!("journald: {e}; logging to stderr"));
                None
            }
        }
    } else {
        None
    };
    let console = if journald.is_some() {
        None
    } else if o.json {
        Some(
            tracing_subscriber::fmt::layer()
                .json()
                .with_writer(std::io::stderr)
                .with_target(false)
                .with_filter(filter())
                .boxed(),
        )
    } else {
        Some(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_target(false)
                .with_filter(filter())
                .boxed(),
        )
    };
    let syslog = o.syslog.map(|facility| {
        let path = o
            .syslog_socket
            .clone()
            .unwrap_or_else(|| PathBuf::from("/dev/log"));
        let sock = UnixDatagram::unbound()
            .and_then(|s| s.connect(&path).map(|()| s))
            .map_err(|e| {
                problem = Some(format!(
                    "syslog {}: {e}; logging to stderr only",
                    path.display()
                ));
            })
            .ok();
        tracing_subscriber::fmt::layer()
            .with_writer(Syslog {
                sock: Arc::new(Mutex::new(sock)),
                facility,
            })
            .with_ansi(false)
            .without_time()
            .with_target(false)
            .with_filter(filter())
    });
    let _ = tracing_subscriber::registry()
        .with(console)
        .with(journald)
        .with(syslog)
        .try_init();
    if let Some(p) = problem {
        tracing::warn!("{p}");
    }
}
