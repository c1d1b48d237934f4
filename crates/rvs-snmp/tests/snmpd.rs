//! The subagent against Debian's net-snmp: `snmpd` as the `AgentX` master (on a socket in a
//! temporary directory, SNMP on a loopback address), `snmpwalk`/`snmpget` as the manager,
//! `snmptrapd` as the trap sink. Needs net-snmp (snmpd, snmp); in CI (CI=true) a missing
//! one fails the test, and .ci/run installs them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use rvs_snmp::agent::{self, Config, Socket, Trap};
use rvs_snmp::{Oid, Tree, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

fn require() {
    for tool in ["snmpd", "snmpwalk", "snmptrapd"] {
        let found = std::env::var_os("PATH").is_some_and(|p| {
            std::env::split_paths(&p).any(|d| d.join(tool).exists())
                || Path::new("/usr/sbin").join(tool).exists()
        });
        assert!(
            found,
            "{tool} is needed (apt-get install snmpd snmp snmptrapd; .ci/run installs them)"
        );
    }
}

fn sbin(tool: &str) -> PathBuf {
    let p = Path::new("/usr/sbin").join(tool);
    if p.exists() {
        p
    } else {
        PathBuf::from(tool)
    }
}

/// A test's directory, removed at the end.
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let d = std::env::temp_dir().join(format!("rvs-snmp-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Dir(d)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A daemon started by the test, killed (by its PID) when dropped.
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// snmpd as the `AgentX` master on `dir/agentx`, answering SNMP on `addr`.
fn snmpd(dir: &Path, addr: &str, trap_sink: Option<&str>) -> Daemon {
    let conf = dir.join("snmpd.conf");
    let mut text = format!(
        "master agentx\nagentXSocket {}\nrocommunity public 127.0.0.0/8\n",
        dir.join("agentx").display()
    );
    if let Some(sink) = trap_sink {
        text = format!("{text}trap2sink {sink} public\n");
    }
    std::fs::write(&conf, text).unwrap();
    let child = Command::new(sbin("snmpd"))
        .args(["-f", "-C", "-Lf"])
        .arg(dir.join("snmpd.log"))
        .arg("-c")
        .arg(&conf)
        .arg(format!("udp:{addr}"))
        .env("SNMP_PERSISTENT_DIR", dir)
        .env("MIBS", "")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("snmpd");
    Daemon(child)
}

/// `snmpwalk -On` of `oid` on `addr`: its lines.
fn walk(addr: &str, oid: &str) -> Vec<String> {
    let out = Command::new("snmpwalk")
        .args([
            "-v2c", "-c", "public", "-On", "-m", "", "-t", "1", "-r", "1", addr, oid,
        ])
        .env("MIBS", "")
        .output()
        .expect("snmpwalk");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .filter(|l| l.starts_with('.'))
        .collect()
}

/// Waits for `f` to hold, for at most `limit`.
fn wait(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    f()
}

fn oid(s: &str) -> Oid {
    s.parse().unwrap()
}

const BASE: &str = "1.3.6.1.4.1.9586.100.5";

/// The objects a subagent serves, built at each request: a counter shows it is rebuilt.
fn source(n: Arc<AtomicI32>) -> agent::Source {
    agent::source_of(move || {
        let mut t = Tree::default();
        t.insert(oid(&format!("{BASE}.1.2.0")), Value::string("lab1"));
        t.insert(
            oid(&format!("{BASE}.1.3.2.0")),
            Value::OctetString(vec![198, 18, 0, 0xfe]),
        );
        t.insert(
            oid(&format!("{BASE}.1.4.0")),
            Value::Integer(n.fetch_add(1, Ordering::SeqCst)),
        );
        t.insert(oid(&format!("{BASE}.2.3.1.3.1")), Value::Gauge32(51));
        t.insert(
            oid(&format!("{BASE}.2.3.1.3.10")),
            Value::Counter64(1 << 40),
        );
        t
    })
}

/// A subagent of the test objects, on `dir/agentx`.
fn subagent(dir: &Path, stop: &CancellationToken) -> (agent::Handle, tokio::task::JoinHandle<()>) {
    agent::spawn(
        Config {
            socket: Socket::Unix(dir.join("agentx")),
            id: oid(BASE),
            descr: "rvs test".into(),
            subtrees: vec![oid(BASE)],
        },
        source(Arc::new(AtomicI32::new(0))),
        stop.clone(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs net-snmp (snmpd, snmpwalk): ./test.sh runs it as root"]
async fn walks_through_snmpd_and_come_back_after_a_master_restart() {
    require();
    let dir = Dir::new("walk");
    let addr = "127.74.0.1:16161";
    let master = snmpd(&dir.0, addr, None);
    let stop = CancellationToken::new();
    let (h, task) = subagent(&dir.0, &stop);
    let want = [
        format!(".{BASE}.1.2.0 = STRING: \"lab1\""),
        format!(".{BASE}.1.3.2.0 = Hex-STRING: C6 12 00 FE "),
        format!(".{BASE}.2.3.1.3.1 = Gauge32: 51"),
        format!(".{BASE}.2.3.1.3.10 = Counter64: 1099511627776"),
    ];
    let mut got = Vec::new();
    let served = tokio::task::spawn_blocking(move || {
        wait(Duration::from_secs(20), || {
            got = walk(addr, BASE);
            got.len() == 5
        });
        got
    })
    .await
    .unwrap();
    for w in &want {
        assert!(served.contains(w), "{w}\nin {served:?}\n{}", log(&dir.0));
    }
    // Rebuilt at each request: two walks see two values of the counter.
    let again = tokio::task::spawn_blocking(move || walk(addr, BASE))
        .await
        .unwrap();
    let counter = |l: &[String]| {
        l.iter()
            .find(|x| x.starts_with(&format!(".{BASE}.1.4.0")))
            .cloned()
    };
    assert_ne!(counter(&served), counter(&again));

    // snmpd restarts: the subagent opens a new session and registers again.
    drop(master);
    let _master = snmpd(&dir.0, addr, None);
    let back = tokio::task::spawn_blocking(move || {
        wait(Duration::from_secs(30), || walk(addr, BASE).len() == 5)
    })
    .await
    .unwrap();
    assert!(back, "no walk after snmpd restarted\n{}", log(&dir.0));
    assert!(h.stats.sessions.load(Ordering::Relaxed) >= 2);
    stop.cancel();
    task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs net-snmp (snmpd, snmptrapd): ./test.sh runs it as root"]
async fn traps_reach_the_trap_sink() {
    require();
    let dir = Dir::new("trap");
    let (addr, sink) = ("127.74.0.2:16161", "127.74.0.2:16162");
    let trapconf = dir.0.join("snmptrapd.conf");
    std::fs::write(&trapconf, "disableAuthorization yes\n").unwrap();
    let trap_log = dir.0.join("traps.log");
    let _trapd = Daemon(
        Command::new(sbin("snmptrapd"))
            .args(["-f", "-C", "-On", "-Lf"])
            .arg(&trap_log)
            .arg("-c")
            .arg(&trapconf)
            .arg(format!("udp:{sink}"))
            .env("MIBS", "")
            .env("SNMP_PERSISTENT_DIR", &dir.0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("snmptrapd"),
    );
    let _master = snmpd(&dir.0, addr, Some(sink));
    let stop = CancellationToken::new();
    let (h, task) = subagent(&dir.0, &stop);
    let up = tokio::task::spawn_blocking(move || {
        wait(Duration::from_secs(20), || walk(addr, BASE).len() == 5)
    })
    .await
    .unwrap();
    assert!(up, "the subagent never registered\n{}", log(&dir.0));
    h.trap(Trap {
        oid: oid(&format!("{BASE}.2.10.0.2")),
        varbinds: vec![(oid(&format!("{BASE}.2.3.1.2.1")), Value::string("VI_1"))],
    });
    let seen = tokio::task::spawn_blocking(move || {
        wait(Duration::from_secs(20), || {
            std::fs::read_to_string(&trap_log)
                .unwrap_or_default()
                .contains("\"VI_1\"")
        })
    })
    .await
    .unwrap();
    let text = std::fs::read_to_string(dir.0.join("traps.log")).unwrap_or_default();
    assert!(seen, "no trap at the sink:\n{text}\n{}", log(&dir.0));
    assert!(text.contains(&format!(".{BASE}.2.10.0.2")), "{text}");
    assert_eq!(h.stats.traps_sent.load(Ordering::Relaxed), 1);
    stop.cancel();
    task.await.unwrap();
}

fn log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("snmpd.log")).unwrap_or_default()
}
