//! Network-namespace labs for the VRRP tests: a bridge in its own namespace and one
//! namespace per node, each with `eth0` on the bridge and an address in 198.18.0.0/24
//! (`fd00:198:18::/64` for IPv6). Nothing touches the host's namespace. Processes started
//! here (rvs, keepalived) are killed by PID and the namespaces deleted on drop.

#![allow(
    dead_code,
    clippy::similar_names,
    clippy::unused_self,
    clippy::format_push_string
)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

static SEQ: AtomicU32 = AtomicU32::new(0);

/// Root, `ip` and keepalived: a missing one fails the test, naming it. The tests that
/// call this are `#[ignore]`d with the reason; `./test.sh` includes them when run as root
/// (and in CI, where `.ci/run` installs what they need).
pub fn require(need_keepalived: bool) {
    let have = |c: &str| {
        Command::new("sh")
            .args(["-c", &format!("command -v {c}")])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let root = status
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"));
    let why = if !root {
        Some("needs root for network namespaces")
    } else if !have("ip") {
        Some("iproute2 is not installed")
    } else if need_keepalived && !have("keepalived") {
        Some("keepalived is not installed (apt-get install keepalived)")
    } else {
        None
    };
    if let Some(w) = why {
        panic!("this namespace test cannot run: {w} (.ci/run installs what it needs)");
    }
}

fn ip(args: &[&str]) -> String {
    let o = Command::new("ip").args(args).output().unwrap();
    assert!(
        o.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Runs `f` on a thread that has moved into network namespace `ns` (sockets it opens
/// live there), and returns its result.
pub fn in_ns<T: Send>(ns: &str, f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        s.spawn(|| {
            let fd = std::fs::File::open(format!("/run/netns/{ns}")).unwrap();
            rustix::thread::move_into_link_name_space(
                std::os::fd::AsFd::as_fd(&fd),
                Some(rustix::thread::LinkNameSpaceType::Network),
            )
            .unwrap();
            f()
        })
        .join()
        .unwrap()
    })
}

/// One HTTP/1.0 GET from namespace `ns`; the response body, or the error.
pub fn http_get(ns: &str, addr: std::net::SocketAddr) -> Result<String, String> {
    in_ns(ns, || {
        use std::io::Write as _;
        let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2))
            .map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(Duration::from_secs(2)))
            .map_err(|e| e.to_string())?;
        s.write_all(b"GET / HTTP/1.0\r\nHost: lab\r\n\r\n")
            .map_err(|e| e.to_string())?;
        response_body(&mut s)
    })
}

/// Reads an HTTP/1.0 response to its end: its body, trimmed, or the error.
pub fn response_body(s: &mut std::net::TcpStream) -> Result<String, String> {
    use std::io::Read as _;
    let mut out = String::new();
    s.read_to_string(&mut out).map_err(|e| e.to_string())?;
    Ok(out
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .trim()
        .to_owned())
}

/// `rvs ARGS` against the daemon whose control socket is `sock`: its standard output.
pub fn rvs_at(sock: &std::path::Path, args: &[&str]) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_rvs"))
        .args(args)
        .env("RVS_CONTROL", sock)
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A started daemon.
#[derive(Debug, Clone)]
pub struct Proc {
    pub pids: Vec<i32>,
}

pub struct Lab {
    prefix: String,
    nodes: Vec<String>,
    pub dir: PathBuf,
    children: Vec<Child>,
    extra_pids: Vec<i32>,
}

impl Lab {
    /// Nodes by name with their IPv4 host number (`198.18.0.N/24`, `fd00:198:18::N/64`).
    pub fn new(nodes: &[(&str, u8)]) -> Lab {
        let n = SEQ.fetch_add(1, Ordering::SeqCst);
        let prefix = format!("rvt{}-{n}", std::process::id() % 100_000);
        let dir = std::env::temp_dir().join(&prefix);
        std::fs::create_dir_all(&dir).unwrap();
        let mut lab = Lab {
            prefix,
            nodes: Vec::new(),
            dir,
            children: Vec::new(),
            extra_pids: Vec::new(),
        };
        let br = lab.ns("br");
        ip(&["netns", "add", &br]);
        lab.nodes.push("br".into());
        ip(&["-n", &br, "link", "add", "br0", "type", "bridge"]);
        ip(&["-n", &br, "link", "set", "br0", "up"]);
        for (i, (name, host)) in nodes.iter().enumerate() {
            let ns = lab.ns(name);
            ip(&["netns", "add", &ns]);
            lab.nodes.push((*name).to_owned());
            let port = format!("p{i}");
            ip(&[
                "-n", &br, "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns",
                &ns,
            ]);
            ip(&["-n", &br, "link", "set", &port, "master", "br0", "up"]);
            ip(&["-n", &ns, "link", "set", "lo", "up"]);
            ip(&[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("198.18.0.{host}/24"),
                "dev",
                "eth0",
            ]);
            ip(&[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("fd00:198:18::{host}/64"),
                "dev",
                "eth0",
                "nodad",
            ]);
            ip(&["-n", &ns, "link", "set", "eth0", "up"]);
        }
        lab
    }

    pub fn ns(&self, node: &str) -> String {
        format!("{}-{node}", self.prefix)
    }

    pub fn mac(&self, node: &str) -> String {
        let out = ip(&["-n", &self.ns(node), "-o", "link", "show", "eth0"]);
        out.split_whitespace()
            .skip_while(|w| *w != "link/ether")
            .nth(1)
            .unwrap()
            .to_owned()
    }

    pub fn has_addr(&self, node: &str, addr: &str) -> bool {
        let out = ip(&["-n", &self.ns(node), "-o", "addr", "show", "dev", "eth0"]);
        out.split_whitespace()
            .any(|w| w.split('/').next() == Some(addr))
    }

    /// Which nodes hold `addr` now.
    pub fn holders(&self, addr: &str, among: &[&str]) -> Vec<String> {
        among
            .iter()
            .filter(|n| self.has_addr(n, addr))
            .map(|n| (*n).to_owned())
            .collect()
    }

    /// Polls `f` every 10 ms until it holds or `limit` passes; the time it took.
    pub fn wait(limit: Duration, mut f: impl FnMut() -> bool) -> Option<Duration> {
        let t0 = Instant::now();
        while t0.elapsed() < limit {
            if f() {
                return Some(t0.elapsed());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }

    /// Waits until exactly `node` holds `addr` among `among`.
    pub fn wait_holder(&self, addr: &str, node: &str, among: &[&str], limit: Duration) -> Duration {
        Lab::wait(limit, || self.holders(addr, among) == vec![node.to_owned()]).unwrap_or_else(
            || {
                panic!(
                    "{addr} not on {node} alone within {limit:?}: on {:?}\n{}",
                    self.holders(addr, among),
                    self.logs()
                )
            },
        )
    }

    fn spawn(&mut self, node: &str, tag: &str, argv: &[String]) -> Child {
        self.spawn_in(Some(node), node, tag, argv)
    }

    /// Starts `argv` in `node`'s namespace, or in the test's own with `None`.
    fn spawn_in(&mut self, node: Option<&str>, name: &str, tag: &str, argv: &[String]) -> Child {
        let log = self.dir.join(format!("{name}-{tag}.log"));
        let f = std::fs::File::create(&log).unwrap();
        let mut cmd = if let Some(node) = node {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", &self.ns(node)]).args(argv);
            c
        } else {
            let mut c = Command::new(&argv[0]);
            c.args(&argv[1..]);
            c
        };
        cmd.stdin(Stdio::null())
            .stdout(f.try_clone().unwrap())
            .stderr(f)
            .spawn()
            .unwrap()
    }

    /// `rvs run -P` in `node` with this config (`ip netns exec` execs, so the child's pid
    /// is rvs's).
    pub fn rvs(&mut self, node: &str, conf: &str, extra: &[&str]) -> Proc {
        self.rvs_in(Some(node), node, conf, extra)
    }

    /// `rvs run` started in the test's own network namespace (files named after `name`),
    /// for a config that names the namespace it is to run in (`net_namespace`).
    pub fn rvs_outside(&mut self, name: &str, conf: &str, extra: &[&str]) -> Proc {
        self.rvs_in(None, name, conf, extra)
    }

    fn rvs_in(&mut self, ns: Option<&str>, node: &str, conf: &str, extra: &[&str]) -> Proc {
        let n = self.children.len();
        let c = self.dir.join(format!("{node}-{n}.conf"));
        std::fs::write(&c, conf).unwrap();
        let mut argv: Vec<String> = vec![
            env!("CARGO_BIN_EXE_rvs").into(),
            "run".into(),
            "-f".into(),
            c.display().to_string(),
            "--control".into(),
            self.dir
                .join(format!("{node}-{n}.sock"))
                .display()
                .to_string(),
            "--pid-file".into(),
            self.dir
                .join(format!("{node}-{n}.pid"))
                .display()
                .to_string(),
            "--log-level".into(),
            "debug".into(),
        ];
        argv.extend(extra.iter().map(|s| (*s).to_owned()));
        let child = self.spawn_in(ns, node, &format!("rvs{n}"), &argv);
        let pid = i32::try_from(child.id()).unwrap();
        self.children.push(child);
        Proc { pids: vec![pid] }
    }

    /// The control socket of the `n`th process started (for `rvs status`).
    pub fn control(&self, node: &str, n: usize) -> PathBuf {
        self.dir.join(format!("{node}-{n}.sock"))
    }

    /// keepalived 2.2.7, VRRP only, in the foreground with its own pid files. Its VRRP
    /// child's pid is read from its pid file so SIGKILL can take both.
    pub fn keepalived(&mut self, node: &str, conf: &str) -> Proc {
        let n = self.children.len();
        let c = self.dir.join(format!("{node}-{n}.conf"));
        std::fs::write(&c, conf).unwrap();
        let pidf = |p: &str| {
            self.dir
                .join(format!("{node}-{n}-{p}.pid"))
                .display()
                .to_string()
        };
        let vrrp_pid = pidf("vrrp");
        let argv: Vec<String> = [
            "keepalived",
            "-P",
            "-n",
            "-l",
            "-D",
            "-f",
            &c.display().to_string(),
            "-p",
            &pidf("main"),
            "-r",
            &vrrp_pid,
            "-c",
            &pidf("check"),
            "-b",
            &pidf("bfd"),
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        let child = self.spawn(node, &format!("ka{n}"), &argv);
        let pid = i32::try_from(child.id()).unwrap();
        self.children.push(child);
        let mut pids = vec![pid];
        let child_pid = Lab::wait(Duration::from_secs(5), || {
            std::fs::read_to_string(&vrrp_pid)
                .ok()
                .and_then(|s| s.trim().parse::<i32>().ok())
                .is_some()
        });
        assert!(
            child_pid.is_some(),
            "keepalived did not start:\n{}",
            self.logs()
        );
        let vp: i32 = std::fs::read_to_string(&vrrp_pid)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        pids.push(vp);
        self.extra_pids.push(vp);
        Proc { pids }
    }

    pub fn signal(&self, p: &Proc, sig: &str) {
        for pid in &p.pids {
            let _ = Command::new("kill")
                .args([&format!("-{sig}"), &pid.to_string()])
                .status();
        }
    }

    /// Waits for every process of `p` to exit (keepalived needs ≈1 s after SIGTERM).
    pub fn wait_exit(&mut self, p: &Proc, limit: Duration) {
        let gone = Lab::wait(limit, || {
            p.pids.iter().all(|pid| {
                !std::path::Path::new(&format!("/proc/{pid}")).exists()
                    || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                        .is_ok_and(|s| s.contains(") Z "))
            })
        });
        assert!(gone.is_some(), "{p:?} did not exit\n{}", self.logs());
        for c in &mut self.children {
            let _ = c.try_wait();
        }
    }

    /// Starts any command in `node` (killed on drop).
    pub fn spawn_cmd(&mut self, node: &str, argv: &[&str]) -> Proc {
        let n = self.children.len();
        let argv: Vec<String> = argv.iter().map(|s| (*s).to_owned()).collect();
        let child = self.spawn(node, &format!("cmd{n}"), &argv);
        let pid = i32::try_from(child.id()).unwrap();
        self.children.push(child);
        Proc { pids: vec![pid] }
    }

    /// Loads nftables rules (`nft -f -`) in `node`.
    pub fn nft(&self, node: &str, rules: &str) {
        use std::io::Write as _;
        let mut c = Command::new("ip")
            .args(["netns", "exec", &self.ns(node), "nft", "-f", "-"])
            .stdin(Stdio::piped())
            .spawn()
            .expect("nft (nftables) is needed: .ci/run installs it");
        c.stdin.take().unwrap().write_all(rules.as_bytes()).unwrap();
        assert!(c.wait().unwrap().success(), "nft -f - in {node}: {rules}");
    }

    /// Runs `ip ARGS` in `node`.
    pub fn ip_in(&self, node: &str, args: &[&str]) {
        let mut a = vec!["-n".to_owned(), self.ns(node)];
        a.extend(args.iter().map(|s| (*s).to_owned()));
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        ip(&a);
    }

    /// An LVS-DR real server as the seed articles set one up: `vip` on `lo`, never
    /// announced (`arp_ignore=1`, `arp_announce=2`).
    pub fn vip_on_lo(&self, node: &str, vip: &str) {
        self.ip_in(node, &["addr", "add", &format!("{vip}/32"), "dev", "lo"]);
        for kv in [
            "net.ipv4.conf.all.arp_ignore=1",
            "net.ipv4.conf.all.arp_announce=2",
        ] {
            let ok = Command::new("ip")
                .args(["netns", "exec", &self.ns(node), "sysctl", "-qw", kv])
                .status()
                .unwrap();
            assert!(ok.success(), "{kv}");
        }
    }

    pub fn link(&self, node: &str, up: bool) {
        ip(&[
            "-n",
            &self.ns(node),
            "link",
            "set",
            "eth0",
            if up { "up" } else { "down" },
        ]);
    }

    /// Makes the client resolve `addr` (one UDP datagram to the discard port).
    pub fn touch(&self, node: &str, addr: &str) {
        let _ = Command::new("ip")
            .args(["netns", "exec", &self.ns(node), "bash", "-c"])
            .arg(format!("echo x > /dev/udp/{addr}/9"))
            .status();
    }

    /// The client's neighbour entry for `addr`: its MAC.
    pub fn neigh(&self, node: &str, addr: &str) -> Option<String> {
        let out = ip(&["-n", &self.ns(node), "neigh", "show", addr]);
        out.split_whitespace()
            .skip_while(|w| *w != "lladdr")
            .nth(1)
            .map(str::to_owned)
    }

    /// All logs, for failure messages.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        let mut files: Vec<_> = std::fs::read_dir(&self.dir)
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        files.sort();
        for f in files {
            if f.extension().is_some_and(|e| e == "log") {
                let t = std::fs::read_to_string(&f).unwrap_or_default();
                let tail: Vec<&str> = t.lines().rev().take(40).collect();
                out += &format!("--- {}\n", f.display());
                for l in tail.iter().rev() {
                    out += l;
                    out.push('\n');
                }
            }
        }
        out
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for pid in &self.extra_pids {
            // Only if it still is the keepalived we started (pids are reused).
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            if comm.trim() == "keepalived" {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
            }
        }
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        for n in self.nodes.iter().rev() {
            let _ = Command::new("ip")
                .args(["netns", "del", &self.ns(n)])
                .status();
        }
        // Failure messages carry the logs (`Lab::logs`).
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
