//! `rvs adm` and the control API driven as an operator would: a running `rvs run`,
//! real connections, `rvs adm -Ln ...` as a process. Expected listings are built from
//! ipvsadm 1.31's printf formats (spec `ipvsadm.md` §5), not from rvs's own output.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::format_push_string)]

mod common;

use common::{ask_name, backend, vs, Daemon, Mode};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

fn dest_line(addr: &str, fwd: &str, weight: i32, active: u32, inact: u32) -> String {
    format!("  -> {addr:<28} {fwd:<7} {weight:<6} {active:<10} {inact:<10}\n")
}

#[test]
fn listings_follow_the_running_table() {
    let _b = [
        backend("127.50.0.1:9100", "a", Mode::Name),
        backend("127.50.0.2:9100", "b", Mode::Name),
    ];
    let rs = [("127.50.0.1", 9100, 1), ("127.50.0.2", 9100, 2)];
    let conf = vs("127.50.1.1", 8080, "    lvs_sched rr\n", &rs)
        + &vs(
            "127.50.1.1",
            8081,
            "    lvs_sched wlc\n    persistence_timeout 300\n    persistence_granularity 255.255.255.0\n",
            &rs,
        );
    let vip: SocketAddr = "127.50.1.1:8080".parse().unwrap();
    let d = Daemon::start("adm-list", &conf, vip);

    // The default listing: services and real servers sorted (spec §5.4).
    let (code, out, err) = d.adm(&["-Ln"]);
    assert_eq!(code, 0, "{err}");
    let mut want = String::from("IP Virtual Server version 1.2.1 (size=4096)\n");
    want += "Prot LocalAddress:Port Scheduler Flags\n";
    want += "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n";
    want += &format!(
        "{} {}\n",
        format_args!("{:<4} {}", "TCP", "127.50.1.1:8080"),
        "rr"
    );
    want += &dest_line("127.50.0.1:9100", "Masq", 1, 0, 0);
    want += &dest_line("127.50.0.2:9100", "Masq", 2, 0, 0);
    want += &format!(
        "{:<4} {} wlc persistent 300 mask 255.255.255.0\n",
        "TCP", "127.50.1.1:8081"
    );
    want += &dest_line("127.50.0.1:9100", "Masq", 1, 0, 0);
    want += &dest_line("127.50.0.2:9100", "Masq", 2, 0, 0);
    assert_eq!(out, want);
    // The same through an `ipvsadm` link, as scripts call it.
    let link = d.dir.join("ipvsadm");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_rvs"), &link).unwrap();
    let o = std::process::Command::new(&link)
        .arg("-Ln")
        .env("RVS_CONTROL", d.dir.join("ctl.sock"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout), want);
    // --nosort: kernel order, the newest real server first.
    let (_, out, _) = d.adm(&["-Ln", "--nosort", "-t", "127.50.1.1:8080"]);
    let rows: Vec<&str> = out.lines().skip(3).collect();
    assert_eq!(
        rows,
        [
            dest_line("127.50.0.2:9100", "Masq", 2, 0, 0).trim_end_matches('\n'),
            dest_line("127.50.0.1:9100", "Masq", 1, 0, 0).trim_end_matches('\n'),
        ],
        "{out}"
    );

    // Traffic shows in --stats: six connections through rr, three per real server,
    // two bytes ("a\n" or "b\n") back from each.
    for _ in 0..6 {
        let n = ask_name(vip);
        assert!(n == "a" || n == "b", "{n}");
    }
    let t = Instant::now();
    let stats = loop {
        let (code, out, err) = d.adm(&["-L", "-n", "--stats", "-t", "127.50.1.1:8080"]);
        assert_eq!(code, 0, "{err}");
        let rows: Vec<Vec<String>> = out
            .lines()
            .skip(2)
            .map(|l| l.split_whitespace().map(str::to_owned).collect())
            .collect();
        let done = rows.len() == 3 && rows[0][2] == "6" && rows[1][6] == "6" && rows[2][6] == "6";
        if done || t.elapsed() > Duration::from_secs(10) {
            break out;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let lines: Vec<&str> = stats.lines().collect();
    // Single-service listing: no version line; the stats title, column for column.
    assert_eq!(
        lines[0],
        format!(
            "{:<33} {:>8} {:>8} {:>8} {:>8} {:>8}",
            "Prot LocalAddress:Port", "Conns", "InPkts", "OutPkts", "InBytes", "OutBytes"
        )
    );
    assert_eq!(lines[1], "  -> RemoteAddress:Port");
    assert_eq!(lines.len(), 5, "{stats}");
    let svc = format!("{:<4} {}", "TCP", "127.50.1.1:8080");
    assert!(
        lines[2].starts_with(&format!("{svc:<33}{:>9}", 6)),
        "{stats}"
    );
    for (line, addr) in [(lines[3], "127.50.0.1:9100"), (lines[4], "127.50.0.2:9100")] {
        let head = format!("  -> {addr:<28}{:>9}", 3);
        assert!(line.starts_with(&head), "{stats}");
        let cols: Vec<&str> = line.split_whitespace().collect();
        assert_eq!((cols[5], cols[6]), ("0", "6"), "bytes of {addr}: {stats}");
    }

    // Thresholds and persistent-conn layouts (one service, no version line).
    let (code, out, _) = d.adm(&["-Ln", "--thresholds", "-t", "127.50.1.1:8081"]);
    assert_eq!(code, 0);
    let mut want = format!(
        "{:<33} {:<10} {:<10} {:<10} {:<10}\n  -> RemoteAddress:Port\n",
        "Prot LocalAddress:Port", "Uthreshold", "Lthreshold", "ActiveConn", "InActConn"
    );
    want += "TCP  127.50.1.1:8081 wlc persistent 300 mask 255.255.255.0\n";
    for a in ["127.50.0.1:9100", "127.50.0.2:9100"] {
        want += &format!("  -> {a:<28} {:<10} {:<10} {:<10} {:<10}\n", 0, 0, 0, 0);
    }
    assert_eq!(out, want);

    // A service that does not exist: ipvsadm's message and status.
    let (code, out, err) = d.adm(&["-Ln", "-t", "127.50.1.1:9999"]);
    assert_eq!(
        (code, out.as_str(), err.as_str()),
        (255, "", "No such service\n")
    );

    // A reload that removes a service shows in the next listing.
    let (ok, msg) = d.reload(&vs("127.50.1.1", 8080, "    lvs_sched rr\n", &rs));
    assert!(ok, "{msg}");
    let (_, out, _) = d.adm(&["-Ln"]);
    assert!(!out.contains("8081"), "{out}");
    assert!(out.contains("TCP  127.50.1.1:8080 rr\n"), "{out}");
    assert!(d.stop().success());
}

#[test]
fn control_api_answers_and_refuses_clearly() {
    let _b = backend("127.51.0.1:9100", "a", Mode::Name);
    let conf = vs("127.51.1.1", 8080, "", &[("127.51.0.1", 9100, 1)]);
    let vip: SocketAddr = "127.51.1.1:8080".parse().unwrap();
    let d = Daemon::start("adm-api", &conf, vip);

    // Owner-only socket.
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(d.dir.join("ctl.sock"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);

    let ans = d.control_raw(b"GET /v1/status HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(ans.starts_with("HTTP/1.1 200 OK\r\n"), "{ans}");
    let body: serde_json::Value =
        serde_json::from_str(ans.split_once("\r\n\r\n").unwrap().1).unwrap();
    assert_eq!(body["dataplane"], "proxy");
    assert!(body["config"].as_str().unwrap().ends_with("k.conf"));

    for (req, status, needle) in [
        (
            &b"GET /v1/nothing HTTP/1.1\r\n\r\n"[..],
            "404",
            "no such endpoint /v1/nothing",
        ),
        (
            b"DELETE /v1/status HTTP/1.1\r\n\r\n",
            "405",
            "DELETE is not allowed",
        ),
    ] {
        let ans = d.control_raw(req);
        assert!(ans.starts_with(&format!("HTTP/1.1 {status} ")), "{ans}");
        assert!(ans.contains(needle), "{ans}");
    }
    // What is not HTTP is refused by the HTTP layer (hyper): 400, and a head larger than
    // 8 KiB 431; the daemon still serves.
    let big = vec![b'a'; 20_000];
    for (req, status) in [
        (&b"hello\r\n\r\n"[..], "400"),
        (&[0xff, 0xfe, b'\r', b'\n', b'\r', b'\n'][..], "400"),
        (&big[..], "431"),
    ] {
        let ans = d.control_raw(req);
        assert!(ans.starts_with(&format!("HTTP/1.1 {status} ")), "{ans}");
    }
    let ans = d.control_raw(b"GET /v1/status HTTP/1.1\r\n\r\n");
    assert!(ans.starts_with("HTTP/1.1 200 OK\r\n"), "{ans}");

    // Reload through the API: a broken file is refused with its diagnostics and the
    // running table stays.
    std::fs::write(
        d.dir.join("k.conf"),
        "virtual_server 127.51.1.1 8080 {\n lvs_sched nope\n",
    )
    .unwrap();
    let ans = d.control_raw(b"POST /v1/reload HTTP/1.1\r\n\r\n");
    let body: serde_json::Value =
        serde_json::from_str(ans.split_once("\r\n\r\n").unwrap().1).unwrap();
    assert_eq!(body["ok"], false, "{ans}");
    assert!(
        body["message"].as_str().unwrap().contains("k.conf:"),
        "{ans}"
    );
    assert_eq!(ask_name(vip), "a");
    std::fs::write(d.dir.join("k.conf"), &conf).unwrap();
    let ans = d.control_raw(b"POST /v1/reload HTTP/1.1\r\n\r\n");
    assert!(ans.contains("\"ok\":true"), "{ans}");

    // A second daemon on the same socket is refused (it would steal the first's API).
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rvs"))
        .args(["run", "--log-level", "error", "-f"])
        .arg(d.dir.join("k.conf"))
        .arg("--pid-file")
        .arg(d.dir.join("pid2"))
        .arg("--control")
        .arg(d.dir.join("ctl.sock"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("another rvs answers"));
    assert!(d.stop().success());

    // No daemon: a clear error naming the socket, exit 2 (ipvsadm's "Can't initialize ipvs").
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rvs"))
        .args(["adm", "-Ln", "--control", "/nonexistent/rvs.sock"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/rvs.sock"));
}

fn scrape(addr: &str, accept: Option<&str>) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let accept = accept
        .map(|a| format!("Accept: {a}\r\n"))
        .unwrap_or_default();
    write!(s, "GET /metrics HTTP/1.1\r\nHost: x\r\n{accept}\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    body.to_owned()
}

/// `promtool check metrics` (Debian's prometheus package; `.ci/run` installs it).
fn promtool(text: &str) {
    use std::io::Write;
    let child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let mut child = child.unwrap_or_else(|e| {
        panic!("promtool cannot run: {e} (Debian's prometheus package; .ci/run installs it)")
    });
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool: {}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn value(text: &str, series: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

/// A service at `NET.1.1:8080` with two TCP-checked real servers, `NET.0.1:9100` (a live
/// backend, answering "a") and `NET.0.2:9100` (nothing listening), and metrics on
/// `NET.2.1:9300`: the daemon, its config, the backend, the metrics address.
fn checked_pair(net: &str, name: &str) -> (Daemon, String, std::thread::JoinHandle<()>, String) {
    let b = backend(&format!("{net}.0.1:9100"), "a", Mode::Name);
    let check =
        "        TCP_CHECK {\n            connect_timeout 1\n        }\n        delay_loop 1\n";
    let conf = format!(
        "virtual_server {net}.1.1 8080 {{\n    lvs_method NAT\n    protocol TCP\n    lvs_sched rr\n\
         \x20   real_server {net}.0.1 9100 {{\n{check}    }}\n\
         \x20   real_server {net}.0.2 9100 {{\n{check}    }}\n}}\n"
    );
    let vip: SocketAddr = format!("{net}.1.1:8080").parse().unwrap();
    let metrics = format!("{net}.2.1:9300");
    let d = Daemon::start_args(name, &conf, vip, &["--metrics", &metrics]);
    (d, conf, b, metrics)
}

/// A broken config reloaded through the API (refused), then `conf` (applied).
fn refused_then_applied_reload(d: &Daemon, conf: &str) {
    std::fs::write(d.dir.join("k.conf"), "virtual_server {\n").unwrap();
    let ans = d.control_raw(b"POST /v1/reload HTTP/1.1\r\n\r\n");
    assert!(ans.contains("\"ok\":false"), "{ans}");
    std::fs::write(d.dir.join("k.conf"), conf).unwrap();
    let ans = d.control_raw(b"POST /v1/reload HTTP/1.1\r\n\r\n");
    assert!(ans.contains("\"ok\":true"), "{ans}");
}

#[test]
fn prometheus_metrics_follow_traffic_checks_and_reloads() {
    let (d, conf, _b, metrics) = checked_pair("127.52", "adm-metrics");
    let (vip, metrics): (SocketAddr, &str) = ("127.52.1.1:8080".parse().unwrap(), &metrics);

    // The real server with nothing listening fails its check and leaves the pool.
    let live = "rvs_checker_up{virtual_server=\"[127.52.1.1]:tcp:8080\",real_server=\"127.52.0.1:9100\",checker=\"TCP_CHECK\",index=\"0\"}";
    let dead = "rvs_checker_failures_total{virtual_server=\"[127.52.1.1]:tcp:8080\",real_server=\"127.52.0.2:9100\",checker=\"TCP_CHECK\",index=\"0\"}";
    // Both checkers have probed at least once (on a busy machine the live one's first
    // probe can finish after the dead one has failed).
    let probes = live.replace("rvs_checker_up", "rvs_checker_probes_total");
    let t = Instant::now();
    let text = loop {
        let text = scrape(metrics, None);
        let done = value(&text, dead) == Some(1) && value(&text, &probes).unwrap_or(0) >= 1;
        if done || t.elapsed() > Duration::from_secs(15) {
            break text;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(value(&text, dead), Some(1), "{text}");
    assert_eq!(value(&text, live), Some(1), "{text}");
    // Every probe counts, with its latency.
    assert!(value(&text, &probes).unwrap() >= 1, "{text}");
    let latency = live.replace("rvs_checker_up", "rvs_checker_last_latency_seconds");
    let secs: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix(latency.as_str())?.trim().parse().ok())
        .expect("a latency sample");
    assert!(secs > 0.0 && secs < 5.0, "{text}");
    let failed = dead.replace(
        "rvs_checker_failures_total",
        "rvs_checker_failed_probes_total",
    );
    assert!(value(&text, &failed).unwrap() >= 1, "{text}");
    // When it went down; the live one never changed state.
    let changed = dead.replace(
        "rvs_checker_failures_total",
        "rvs_checker_last_change_timestamp_seconds",
    );
    assert!(value(&text, &changed).unwrap() > 1_600_000_000, "{text}");
    let unchanged = live.replace(
        "rvs_checker_up",
        "rvs_checker_last_change_timestamp_seconds",
    );
    assert_eq!(value(&text, &unchanged), None, "{text}");

    for _ in 0..4 {
        assert_eq!(ask_name(vip), "a");
    }
    let rs = "rvs_real_server_connections_total{service=\"tcp/127.52.1.1:8080\",real_server=\"127.52.0.1:9100\"}";
    let t = Instant::now();
    let text = loop {
        let text = scrape(metrics, None);
        if value(&text, rs) == Some(4) || t.elapsed() > Duration::from_secs(10) {
            break text;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(value(&text, rs), Some(4), "{text}");
    assert_eq!(
        value(
            &text,
            "rvs_service_connections_total{service=\"tcp/127.52.1.1:8080\"}"
        ),
        Some(4)
    );
    assert!(
        !text.contains("real_server=\"127.52.0.2:9100\"}"),
        "a failed real server is out of the table"
    );

    // Reloads are counted by result (one refused, one applied).
    refused_then_applied_reload(&d, &conf);
    let text = scrape(metrics, None);
    assert_eq!(
        value(&text, "rvs_reloads_total{result=\"success\"}"),
        Some(1)
    );
    assert_eq!(
        value(&text, "rvs_reloads_total{result=\"failure\"}"),
        Some(1)
    );
    assert!(value(&text, "rvs_last_reload_timestamp_seconds").unwrap() > 1_600_000_000);

    // `rvs status` tells a newcomer the same story in words.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rvs"))
        .arg("status")
        .env("RVS_CONTROL", d.dir.join("ctl.sock"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("(reloads: 1 ok, 1 refused)"), "{text}");
    assert!(
        text.contains("TCP 127.52.1.1:8080  rr: 1 real servers, 4 conns total"),
        "{text}"
    );
    let row = text
        .lines()
        .find(|l| l.contains("-> 127.52.0.1:9100"))
        .unwrap();
    assert!(
        row.contains("Masq weight 1")
            && row.contains("TCP_CHECK up (0 failures, last probe ")
            && row.ends_with(" ms)"),
        "{text}"
    );
    assert!(
        text.contains("  127.52.0.2:9100 in [127.52.1.1]:tcp:8080: TCP_CHECK DOWN (1 failures)"),
        "{text}"
    );

    // Prometheus asks for OpenMetrics and gets it.
    let om = scrape(metrics, Some("application/openmetrics-text; version=1.0.0"));
    assert!(om.ends_with("# EOF\n"), "{om}");
    assert!(om.contains("# TYPE rvs_reloads counter\n"));
    assert!(d.stop().success());
}

/// Every series the exporter writes passes `promtool check metrics`: with live and failed
/// checkers, traffic, and an applied and a refused reload.
#[test]
#[ignore = "needs promtool (Debian's prometheus package): ./test.sh runs it as root"]
fn metrics_pass_promtool() {
    let (d, conf, _b, metrics) = checked_pair("127.59", "adm-promtool");
    let (vip, metrics): (SocketAddr, &str) = ("127.59.1.1:8080".parse().unwrap(), &metrics);
    let dead = "rvs_checker_failures_total{virtual_server=\"[127.59.1.1]:tcp:8080\",real_server=\"127.59.0.2:9100\",checker=\"TCP_CHECK\",index=\"0\"}";
    let t = Instant::now();
    while value(&scrape(metrics, None), dead) != Some(1) {
        assert!(
            t.elapsed() < Duration::from_secs(15),
            "the dead real server never failed"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(ask_name(vip), "a");
    refused_then_applied_reload(&d, &conf);
    promtool(&scrape(metrics, None));
    assert!(d.stop().success());
}

/// Runs `rvs adm` with stdin.
fn adm_stdin(d: &Daemon, args: &[&str], input: &str) -> (i32, String, String) {
    use std::io::Write;
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_rvs"))
        .arg("adm")
        .args(args)
        .env("RVS_CONTROL", d.dir.join("ctl.sock"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let out = c.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn ipvsadm_commands_change_the_running_table() {
    let _b = [
        backend("127.53.0.1:9100", "a", Mode::Name),
        backend("127.53.0.2:9100", "b", Mode::Name),
    ];
    let conf = vs(
        "127.53.1.1",
        8080,
        "    lvs_sched rr\n",
        &[("127.53.0.1", 9100, 1)],
    );
    let vip: SocketAddr = "127.53.1.1:8080".parse().unwrap();
    let d = Daemon::start("adm-edit", &conf, vip);
    let ok = |args: &[&str]| {
        let (code, out, err) = d.adm(args);
        assert_eq!(code, 0, "{args:?}: {err}");
        out
    };

    // A new service and real servers at runtime; traffic reaches them.
    ok(&["-A", "-t", "127.53.1.1:8081", "-s", "wrr"]);
    ok(&[
        "-a",
        "-t",
        "127.53.1.1:8081",
        "-r",
        "127.53.0.1:9100",
        "-m",
        "-w",
        "1",
    ]);
    ok(&[
        "-at",
        "127.53.1.1:8081",
        "-r",
        "127.53.0.2:9100",
        "-m",
        "-w",
        "2",
    ]);
    let vip2: SocketAddr = "127.53.1.1:8081".parse().unwrap();
    let names: Vec<String> = (0..6).map(|_| ask_name(vip2)).collect();
    assert_eq!(names.iter().filter(|n| *n == "b").count(), 4, "{names:?}");
    // A real server added to the config's service, then its weight edited to 0 (drained).
    ok(&["-a", "-t", "127.53.1.1:8080", "-r", "127.53.0.2:9100", "-m"]);
    ok(&[
        "-e",
        "-t",
        "127.53.1.1:8080",
        "-r",
        "127.53.0.2:9100",
        "-m",
        "-w",
        "0",
    ]);
    for _ in 0..4 {
        assert_eq!(ask_name(vip), "a");
    }
    ok(&["-E", "-t", "127.53.1.1:8080", "-s", "sh", "-b", "sh-port"]);
    ok(&["--set", "1000", "0", "200"]);
    assert_eq!(
        ok(&["-L", "--timeout"]),
        "Timeout (tcp tcpfin udp): 1000 120 200\n"
    );

    // -S prints what -R restores.
    let saved = ok(&["-Sn"]);
    assert_eq!(
        saved,
        "-A -t 127.53.1.1:8080 -s sh -b sh-port\n\
         -a -t 127.53.1.1:8080 -r 127.53.0.1:9100 -m -w 1\n\
         -a -t 127.53.1.1:8080 -r 127.53.0.2:9100 -m -w 0\n\
         -A -t 127.53.1.1:8081 -s wrr\n\
         -a -t 127.53.1.1:8081 -r 127.53.0.1:9100 -m -w 1\n\
         -a -t 127.53.1.1:8081 -r 127.53.0.2:9100 -m -w 2\n"
    );
    let listing = ok(&["-Ln"]);
    ok(&["-C"]);
    assert_eq!(
        ok(&["-Ln"]),
        "IP Virtual Server version 1.2.1 (size=4096)\nProt LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n"
    );
    let (code, _, err) = adm_stdin(&d, &["-R"], &saved);
    assert_eq!(code, 0, "{err}");
    let relisted = ok(&["-Ln"]);
    // Counters may differ; the table is the same.
    assert_eq!(
        relisted.replace(char::is_numeric, ""),
        listing.replace(char::is_numeric, "")
    );
    assert_eq!(ok(&["-Sn"]), saved);

    // ipvsadm's refusals (kernel errors: 255) and usage errors (2); nothing applied.
    for (args, code, msg) in [
        (
            &["-A", "-t", "127.53.1.1:8081"][..],
            255,
            "Service already exists\n",
        ),
        (
            &["-a", "-t", "127.53.1.1:9", "-r", "127.53.0.1"],
            255,
            "Service not defined\n",
        ),
        (
            &["-d", "-t", "127.53.1.1:8081", "-r", "127.53.0.9:9100"],
            255,
            "No such destination\n",
        ),
        (
            &["-E", "-t", "127.53.1.1:8081", "-s", "bogus"],
            255,
            "Scheduler or persistence engine not found\n",
        ),
        (&["-D", "-t", "127.53.1.1:9"], 255, "No such service\n"),
        (
            &["-a", "-t", "127.53.1.1:8081", "-r", "127.53.0.1", "-w", "x"],
            2,
            "illegal weight specified\n",
        ),
        (
            &["-A", "-t", "127.53.1.1:8082", "-w", "1"],
            2,
            "Illegal 'weight' option with the 'add-service' command\n",
        ),
        (
            &["-A", "-E", "-t", "127.53.1.1:8082"],
            2,
            "multiple commands specified\n",
        ),
    ] {
        let (c, out, err) = d.adm(args);
        assert_eq!((c, out.as_str(), err.as_str()), (code, "", msg), "{args:?}");
    }
    assert_eq!(ok(&["-Sn"]), saved);
    // A restore line with a usage error aborts the restore with status 2.
    let (code, _, err) = adm_stdin(&d, &["-R"], "-D -t 127.53.1.1:8081\n-A -t\n-C\n");
    assert_eq!(code, 255, "{err}"); // -A -t without a value: popt's error
    assert!(!ok(&["-Ln"]).contains("8081"));
    assert!(
        ok(&["-Ln"]).contains("127.53.1.1:8080"),
        "the -C after the bad line never ran"
    );

    // Services that -C deleted and -R created again start from zero, as the kernel's
    // (the counters live with the service).
    let fresh = ok(&["-Ln", "--stats", "-t", "127.53.1.1:8080"]);
    assert!(
        fresh.lines().nth(2).unwrap().trim_end().ends_with(" 0"),
        "{fresh}"
    );
    // Traffic again (rr: sh may hash a client to the weight-0 server and reset it).
    ok(&["-E", "-t", "127.53.1.1:8080", "-s", "rr"]);
    assert_eq!(ask_name(vip), "a");
    // -Z zeroes the counters.
    let stats = ok(&["-Ln", "--stats", "-t", "127.53.1.1:8080"]);
    assert!(
        !stats.lines().nth(2).unwrap().trim_end().ends_with(" 0"),
        "{stats}"
    );
    ok(&["-Z"]);
    let stats = ok(&["-Ln", "--stats", "-t", "127.53.1.1:8080"]);
    let svc_line: Vec<&str> = stats.lines().nth(2).unwrap().split_whitespace().collect();
    assert_eq!(&svc_line[2..], ["0", "0", "0", "0", "0"], "{stats}");

    // A reload makes the table the file again.
    let (okr, msg) = d.reload(&conf);
    assert!(okr, "{msg}");
    assert_eq!(
        ok(&["-Sn"]),
        "-A -t 127.53.1.1:8080 -s rr\n-a -t 127.53.1.1:8080 -r 127.53.0.1:9100 -m -w 1\n"
    );
    assert!(d.stop().success());
}

#[test]
fn connection_listing_shows_open_connections() {
    use std::io::BufRead;
    let _b = backend("127.54.0.1:9100", "a", Mode::Name);
    let conf = vs("127.54.1.1", 8080, "", &[("127.54.0.1", 9100, 1)]);
    let vip: SocketAddr = "127.54.1.1:8080".parse().unwrap();
    let d = Daemon::start("adm-conns", &conf, vip);
    // Two connections held open (the backend waits for EOF).
    let held: Vec<std::net::TcpStream> = (0..2)
        .map(|_| {
            let s = std::net::TcpStream::connect(vip).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let mut line = String::new();
            std::io::BufReader::new(&s).read_line(&mut line).unwrap();
            assert_eq!(line, "a\n");
            s
        })
        .collect();
    let (code, out, err) = d.adm(&["-Lnc"]);
    assert_eq!(code, 0, "{err}");
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("IPVS connection entries"));
    assert_eq!(
        lines.next().unwrap(),
        format!(
            "pro expire {:<11} {:<18} {:<18} destination",
            "state", "source", "virtual"
        )
    );
    let mut rows: Vec<&str> = lines.collect();
    rows.sort_unstable();
    assert_eq!(rows.len(), 2, "{out}");
    let mut want: Vec<String> = held
        .iter()
        .map(|s| {
            let src = s.local_addr().unwrap().to_string();
            format!(
                "{:<11} {src:<18} {:<18} {}",
                "ESTABLISHED", "127.54.1.1:8080", "127.54.0.1:9100"
            )
        })
        .collect();
    want.sort();
    for (row, w) in rows.iter().zip(&want) {
        // "TCP MM:SS  " then the rest, column for column.
        assert!(row.starts_with("TCP "), "{out}");
        assert_eq!(&row[11..], w.as_str(), "{out}");
    }
    // Paging: one entry per page, and the total.
    let ans = d.control_raw(b"GET /v1/connections?offset=1&limit=1 HTTP/1.1\r\n\r\n");
    let body: serde_json::Value =
        serde_json::from_str(ans.split_once("\r\n\r\n").unwrap().1).unwrap();
    assert_eq!(body["total"], 2);
    assert_eq!(body["connections"].as_array().unwrap().len(), 1);
    let ans = d.control_raw(b"GET /v1/connections?limit=0 HTTP/1.1\r\n\r\n");
    assert!(ans.starts_with("HTTP/1.1 400 "), "{ans}");
    drop(held);
    assert!(d.stop().success());
}

/// Kills the child on drop, so a failing assertion cannot leave a daemon holding the
/// test's output pipe open.
struct Reaper(std::process::Child);

impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn logs_as_json_and_to_syslog() {
    use std::io::BufRead;
    let dir = std::env::temp_dir().join(format!("rvs-logs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let log = std::os::unix::net::UnixDatagram::bind(dir.join("log")).unwrap();
    log.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    // persistence_engine is not applied by rvs: a warning at start (issue #17: rvs run logs every
    // keyword it does not apply).
    let conf = "virtual_server 127.55.1.1 8080 {\n    lvs_method NAT\n    lvs_sched rr\n    persistence_engine sip\n    protocol TCP\n    real_server 127.55.0.1 9100 {\n    }\n}\n";
    // A file name with a level word in it: the severity comes from the event's level,
    // not from its text (an INFO line naming "ERROR-WARN.conf" once went out as an error).
    let file = dir.join("ERROR-WARN.conf");
    std::fs::write(&file, conf).unwrap();
    let mut child = Reaper(
        std::process::Command::new(env!("CARGO_BIN_EXE_rvs"))
            .args([
                "run",
                "--log-format",
                "json",
                "--syslog",
                "daemon",
                "--syslog-socket",
            ])
            .arg(dir.join("log"))
            .arg("-f")
            .arg(&file)
            .arg("--pid-file")
            .arg(dir.join("pid"))
            .arg("--control")
            .arg(dir.join("ctl.sock"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stderr = child.0.stderr.take().unwrap();
    let lines = std::thread::spawn(move || {
        std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
            .find(|l| l.contains("persistence_engine"))
    });
    // Syslog: RFC 3164 with facility daemon (3) and warning severity (4): <28>.
    let mut buf = [0u8; 4096];
    let msg = loop {
        let n = log.recv(&mut buf).unwrap();
        let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
        if msg.contains("persistence_engine") {
            break msg;
        }
    };
    assert!(
        msg.starts_with(&format!("<28>rvs[{}]: ", child.0.id())),
        "{msg}"
    );
    assert!(
        msg.contains("'persistence_engine' is not applied by rvs"),
        "{msg}"
    );
    // The start line, INFO (6): <30>.
    let running = loop {
        let n = log.recv(&mut buf).unwrap();
        let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
        if msg.contains(" running ") {
            break msg;
        }
    };
    assert!(running.contains("ERROR-WARN.conf"), "{running}");
    assert!(
        running.starts_with(&format!("<30>rvs[{}]: ", child.0.id())),
        "{running}"
    );
    // Stop it once it runs (the pid file is written after the signal handlers are set).
    let t = Instant::now();
    while !dir.join("pid").exists() {
        assert!(t.elapsed() < Duration::from_secs(10), "rvs did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let pid = rustix::process::Pid::from_raw(i32::try_from(child.0.id()).unwrap()).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    assert!(child.0.wait().unwrap().success());
    // The console: one JSON object per line.
    let line = lines.join().unwrap().expect("the warning on stderr");
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["level"], "WARN", "{line}");
    assert!(
        v["fields"]["message"]
            .as_str()
            .unwrap()
            .contains("persistence_engine"),
        "{line}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `rvs adm ARG` as user nobody (setpriv) against `d`: the output and its stderr.
fn adm_as_nobody(d: &Daemon, arg: &str) -> (std::process::Output, String) {
    let out = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_rvs"))
        .args(["adm", arg, "--control"])
        .arg(d.dir.join("ctl.sock"))
        .output()
        .expect("setpriv (util-linux)");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    (out, err)
}

/// The control socket is the owner's: another user (nobody, through setpriv) cannot use
/// root's.
#[test]
#[ignore = "needs root to switch users: ./test.sh runs it as root"]
fn another_user_is_refused() {
    assert!(
        rustix::process::getuid().is_root(),
        "this test switches users: it needs root"
    );
    let _b = backend("127.56.0.1:9100", "a", Mode::Name);
    let conf = vs("127.56.1.1", 8080, "", &[("127.56.0.1", 9100, 1)]);
    let d = Daemon::start("adm-perm", &conf, "127.56.1.1:8080".parse().unwrap());
    // The directory must be traversable for the error to be about the socket itself.
    std::fs::set_permissions(&d.dir, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let (out, err) = adm_as_nobody(&d, "-Ln");
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("Permission denied"), "{err}");
    assert!(out.stdout.is_empty());
    // Even with the socket's mode loosened, the daemon checks who connects (SO_PEERCRED).
    std::fs::set_permissions(
        d.dir.join("ctl.sock"),
        std::os::unix::fs::PermissionsExt::from_mode(0o666),
    )
    .unwrap();
    let (out, err) = adm_as_nobody(&d, "-C");
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("uid 65534 may not use this control socket"),
        "{err}"
    );
    let (code, table, _) = d.adm(&["-Ln"]);
    assert_eq!(code, 0);
    assert!(
        table.contains("127.56.1.1:8080"),
        "the table was not cleared: {table}"
    );
    assert!(d.stop().success());
}

/// Without `-n`, ipvsadm prints host and service names (`gethostbyaddr`, `getservbyport`)
/// and `-S` saves them; `-R` and the editing commands accept them back.
#[test]
fn names_without_numeric() {
    let services = std::fs::read_to_string("/etc/services").unwrap_or_default();
    assert!(
        services.contains("bacula-fd") && services.contains("bacula-sd"),
        "/etc/services (Debian's netbase) is needed for this test"
    );
    let conf = vs(
        "127.0.0.1",
        9102,
        "    lvs_sched rr\n",
        &[("127.0.0.1", 9103, 1)],
    );
    let d = Daemon::start("adm-names", &conf, "127.0.0.1:9102".parse().unwrap());
    let (code, out, err) = d.adm(&["-L"]);
    assert_eq!(code, 0, "{err}");
    let mut want = String::from("IP Virtual Server version 1.2.1 (size=4096)\n");
    want += "Prot LocalAddress:Port Scheduler Flags\n";
    want += "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n";
    want += &format!("{:<4} {} {}\n", "TCP", "localhost:bacula-fd", "rr");
    want += &dest_line("localhost:bacula-sd", "Masq", 1, 0, 0);
    assert_eq!(out, want);
    let (_, numeric, _) = d.adm(&["-Ln"]);
    assert!(numeric.contains("TCP  127.0.0.1:9102 rr"), "{numeric}");

    // -S with names; -C; -R of that text; the table is back.
    let (code, saved, err) = d.adm(&["-S"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        saved,
        "-A -t localhost:bacula-fd -s rr\n-a -t localhost:bacula-fd -r localhost:bacula-sd -m -w 1\n"
    );
    assert_eq!(d.adm(&["-C"]).0, 0);
    let (code, _, err) = adm_stdin(&d, &["-R"], &saved);
    assert_eq!(code, 0, "{err}");
    let (_, again, _) = d.adm(&["-L"]);
    assert_eq!(again, want);
    // A service name and a host name on the command line.
    let (code, _, err) = d.adm(&[
        "-a",
        "-t",
        "localhost:bacula-fd",
        "-r",
        "localhost:bacula-dir",
        "-m",
        "-w",
        "2",
    ]);
    assert_eq!(code, 0, "{err}");
    let (_, out, _) = d.adm(&["-Ln"]);
    assert!(out.contains("127.0.0.1:9101"), "{out}");
    let (code, _, err) = d.adm(&["-a", "-t", "localhost:no-such-service", "-r", "127.0.0.1:1"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("illegal virtual server address[:port] specified"),
        "{err}"
    );
}

/// `--tun-type/--tun-port/--tun-*csum` reach the table: `--tun-info` shows them as
/// ipvsadm prints them, `-S` saves them and `-R` restores them.
#[test]
fn tunnel_options_are_kept_listed_and_saved() {
    let conf = vs(
        "127.60.1.1",
        8080,
        "    lvs_sched rr\n",
        &[("127.60.0.1", 9100, 1)],
    );
    let d = Daemon::start("adm-tun", &conf, "127.60.1.1:8080".parse().unwrap());
    let add = |args: &[&str]| {
        let mut a = vec!["-a", "-t", "127.60.1.1:8080"];
        a.extend_from_slice(args);
        d.adm(&a)
    };
    assert_eq!(add(&["-r", "127.60.0.2", "-i"]).0, 0);
    let (code, _, err) = add(&[
        "-r",
        "127.60.0.3",
        "-i",
        "--tun-type",
        "gue",
        "--tun-port",
        "6080",
        "--tun-csum",
    ]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = add(&[
        "-r",
        "127.60.0.4",
        "-i",
        "--tun-type",
        "gre",
        "--tun-nocsum",
    ]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = add(&["-r", "127.60.0.5", "-m", "--tun-type", "gue"]);
    assert_eq!(
        (code, err.trim()),
        (2, "Tunnel options conflict with forward method")
    );

    let (_, out, _) = d.adm(&["-Ln", "--tun-info"]);
    let row = |a: &str, fwd: &str, info: &str| {
        format!(
            "  -> {a:<28} {fwd:<7} {info:<13} {:<6} {:<10} {:<10}\n",
            1, 0, 0
        )
    };
    let mut want = String::from("IP Virtual Server version 1.2.1 (size=4096)\n");
    want += "Prot LocalAddress:Port Scheduler Flags\n";
    want += "  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn\n";
    want += "TCP  127.60.1.1:8080 rr\n";
    want += &row("127.60.0.1:9100", "Masq", "n/a");
    want += &row("127.60.0.2:8080", "Tunnel", "ipip");
    want += &row("127.60.0.3:8080", "Tunnel", "gue:6080:+c");
    want += &row("127.60.0.4:8080", "Tunnel", "gre:-c");
    assert_eq!(out, want);

    let (_, saved, _) = d.adm(&["-S", "-n"]);
    let svc = "-t 127.60.1.1:8080";
    assert_eq!(
        saved,
        format!(
            "-A {svc} -s rr\n\
             -a {svc} -r 127.60.0.1:9100 -m -w 1\n\
             -a {svc} -r 127.60.0.2:8080 -i -w 1 --tun-type ipip\n\
             -a {svc} -r 127.60.0.3:8080 -i -w 1 --tun-type gue --tun-port 6080 --tun-csum\n\
             -a {svc} -r 127.60.0.4:8080 -i -w 1 --tun-type gre --tun-nocsum\n"
        )
    );
    assert_eq!(d.adm(&["-C"]).0, 0);
    let (code, _, err) = adm_stdin(&d, &["-R"], &saved);
    assert_eq!(code, 0, "{err}");
    let (_, again, _) = d.adm(&["-Ln", "--tun-info"]);
    assert_eq!(again, want);

    // No persistence engine: the kernel's answer without ip_vs_pe_sip.
    let (code, _, err) = d.adm(&["-A", "-u", "127.60.1.1:5060", "-p", "--pe", "sip"]);
    assert_eq!(
        (code, err.trim()),
        (255, "Scheduler or persistence engine not found")
    );

    // The sync daemon needs the kernel's table: refused, and none is listed.
    let (code, _, err) = d.adm(&["--start-daemon", "master"]);
    assert_eq!(code, 255);
    assert!(err.contains("sync daemon"), "{err}");
    assert_eq!(
        d.adm(&["-L", "--daemon"]),
        (0, String::new(), String::new())
    );
}

/// A runtime command the data plane cannot apply (its port is taken) fails as a whole:
/// the error names the reason, the table is as before, and a later command does not
/// bring the refused one back.
#[test]
fn a_refused_command_changes_nothing() {
    let _b = backend("127.57.0.1:9100", "a", Mode::Name);
    let _taken = std::net::TcpListener::bind("127.57.1.2:8080").unwrap();
    let conf = vs(
        "127.57.1.1",
        8080,
        "    lvs_sched rr\n",
        &[("127.57.0.1", 9100, 1)],
    );
    let vip: SocketAddr = "127.57.1.1:8080".parse().unwrap();
    let d = Daemon::start("adm-refused", &conf, vip);
    let before = d.adm(&["-Ln"]).1;
    let (code, _, err) = d.adm(&["-A", "-t", "127.57.1.2:8080", "-s", "rr"]);
    assert_ne!(code, 0, "binding a taken port must fail");
    assert!(err.contains("127.57.1.2:8080"), "{err}");
    assert_eq!(
        d.adm(&["-Ln"]).1,
        before,
        "the refused service is not in the table"
    );
    // Another command replays the overlay: the refused one stays out.
    let (code, _, err) = d.adm(&["-A", "-t", "127.57.1.3:8080", "-s", "wrr"]);
    assert_eq!(code, 0, "{err}");
    let after = d.adm(&["-Ln"]).1;
    assert!(after.contains("127.57.1.3:8080 wrr"), "{after}");
    assert!(!after.contains("127.57.1.2:8080"), "{after}");
    assert_eq!(ask_name(vip), "a");
    d.stop();
}

/// keepalived's `reload_check_config LOG`: a reload happens only when the new file passes
/// keepalived's own check. A virtual server without `lb_algo` is one rvs runs (with
/// keepalived's default, and a warning) but `keepalived -t` rejects: with the keyword,
/// the reload is refused, the running services stay, `rvs reload` says why and the log
/// file holds the diagnostics; once the running file no longer sets it, the same file is
/// loaded.
#[test]
fn reload_check_config_refuses_what_keepalived_rejects() {
    let vip: SocketAddr = "127.75.1.1:8080".parse().unwrap();
    let dir = std::env::temp_dir().join(format!("rvs-reload-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("check.log");
    let conf = |check: bool, extra: bool| {
        let mut c = format!(
            "global_defs {{\n{}}}\n{}",
            if check {
                format!("    reload_check_config {}\n", log.display())
            } else {
                String::new()
            },
            vs(
                "127.75.1.1",
                8080,
                "    lb_algo rr\n",
                &[("127.75.1.2", 9100, 1)]
            )
        );
        if extra {
            c += &vs("127.75.1.3", 8080, "", &[("127.75.1.2", 9100, 1)]);
        }
        c
    };
    let d = Daemon::start("reload-check", &conf(true, false), vip);
    let listed = |d: &Daemon| d.adm(&["-Ln"]).1;
    let (ok, out) = d.reload(&conf(true, true));
    assert!(!ok, "reloaded a file keepalived rejects:\n{out}");
    assert!(out.contains("failed validation"), "{out}");
    assert!(!listed(&d).contains("127.75.1.3:8080"), "{}", listed(&d));
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(text.contains("no scheduler set"), "log: {text:?}");
    // The running file's setting decides (as keepalived reads it): a reload to a file
    // without it, then the service without lb_algo loads.
    let (ok, out) = d.reload(&conf(false, false));
    assert!(ok, "{out}");
    let (ok, out) = d.reload(&conf(false, true));
    assert!(ok, "{out}");
    assert!(listed(&d).contains("127.75.1.3:8080"), "{}", listed(&d));
    d.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

/// `reload_file`: a stale file is removed at start; when a reload starts reading the
/// configuration the file is created (or truncated: an editor that wrote into it sees it
/// emptied) and it is removed once the files are read. strace holds the daemon's open of
/// the configuration for 1.5 s so the test sees the reading under way.
#[test]
#[ignore = "needs strace (ptrace of the daemon): ./test.sh runs it as root"]
fn reload_file_marks_the_reading_of_the_configuration() {
    assert!(
        std::path::Path::new("/usr/bin/strace").exists(),
        "strace is needed: .ci/run installs it"
    );
    let vip: SocketAddr = "127.75.2.1:8080".parse().unwrap();
    let dir = std::env::temp_dir().join(format!("rvs-reload-file-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let marker = dir.join("k.reload");
    std::fs::write(&marker, "stale").unwrap();
    let conf = format!(
        "global_defs {{\n    reload_file {}\n}}\n{}",
        marker.display(),
        vs("127.75.2.1", 8080, "", &[("127.75.2.2", 9100, 1)])
    );
    let d = Daemon::start("reload-file", &conf, vip);
    assert!(!marker.exists(), "the stale reload file was left at start");
    let pid = d.pid().to_string();
    let conf_path = d.dir.join("k.conf");
    let mut strace = std::process::Command::new("strace")
        .args(["-f", "-qq", "-o", "/dev/null", "-P"])
        .arg(&conf_path)
        .args([
            "-e",
            "trace=openat",
            "-e",
            "inject=openat:delay_enter=1500000",
            "-p",
            &pid,
        ])
        .spawn()
        .unwrap();
    let traced = || {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .unwrap_or_default()
            .lines()
            .any(|l| l.starts_with("TracerPid:") && l.split_whitespace().nth(1) != Some("0"))
    };
    let t = Instant::now();
    while !traced() {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "strace did not attach"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::fs::write(&marker, "pending").unwrap();
    let (ok, out) = std::thread::scope(|s| {
        let r = s.spawn(|| d.reload(&conf));
        let t = Instant::now();
        while std::fs::metadata(&marker).map_or(true, |m| m.len() != 0) {
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "the reload file was not emptied while the configuration was read"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        r.join().unwrap()
    });
    assert!(ok, "{out}");
    assert!(!marker.exists(), "the reload file is left after the reload");
    let _ = strace.kill();
    let _ = strace.wait();
    d.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

/// `reload_time_file` (and `reload_repeat`): a reload happens at the time the file gives,
/// not before, and the file is deleted; with `reload_repeat` a time of day reloads and
/// the file stays.
#[test]
fn reload_time_file_schedules_a_reload() {
    let vip: SocketAddr = "127.75.3.1:8080".parse().unwrap();
    let dir = std::env::temp_dir().join(format!("rvs-reload-time-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let timef = dir.join("reload.time");
    let conf = |repeat: bool, extra: &[&str]| {
        let mut c = format!(
            "global_defs {{\n    reload_time_file {}\n{}}}\n{}",
            timef.display(),
            if repeat { "    reload_repeat\n" } else { "" },
            vs("127.75.3.1", 8080, "", &[("127.75.3.2", 9100, 1)])
        );
        for a in extra {
            c += &vs(a, 8080, "", &[("127.75.3.2", 9100, 1)]);
        }
        c
    };
    // `date` formats the time in a few seconds, UTC (keepalived's `Z` form).
    let in_secs = |s: u32, fmt: &str| {
        let out = std::process::Command::new("date")
            .args(["-u", "-d", &format!("+{s} seconds"), fmt])
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let d = Daemon::start("reload-time", &conf(false, &[]), vip);
    let listed = |d: &Daemon| d.adm(&["-Ln"]).1;
    let appears = |d: &Daemon, what: &str| {
        let t = Instant::now();
        while !listed(d).contains(what) {
            assert!(
                t.elapsed() < Duration::from_secs(20),
                "no scheduled reload brought {what}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        t.elapsed()
    };
    // A dated time 4 s ahead: the edited file is not read before it.
    std::fs::write(d.dir.join("k.conf"), conf(false, &["127.75.3.3"])).unwrap();
    std::fs::write(&timef, in_secs(4, "+%Y-%m-%d %H:%M:%SZ")).unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    assert!(!listed(&d).contains("127.75.3.3:8080"), "reloaded early");
    let waited = appears(&d, "127.75.3.3:8080");
    assert!(
        waited > Duration::from_secs(1),
        "reloaded early: {waited:?}"
    );
    assert!(!timef.exists(), "the reload time file was not deleted");
    // reload_repeat, a time of day: the reload comes and the file stays.
    let (ok, out) = d.reload(&conf(true, &["127.75.3.3"]));
    assert!(ok, "{out}");
    std::fs::write(
        d.dir.join("k.conf"),
        conf(true, &["127.75.3.3", "127.75.3.4"]),
    )
    .unwrap();
    std::fs::write(&timef, in_secs(3, "+%H:%M:%SZ")).unwrap();
    appears(&d, "127.75.3.4:8080");
    assert!(timef.exists(), "reload_repeat: the file was deleted");
    d.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

/// `config_save_dir`: a reload saves the state before and after it, under keepalived's
/// names (`keepalived_{vrrp,check}.PID.N.{pre,post}`).
#[test]
fn config_save_dir_keeps_the_state_around_each_reload() {
    let vip: SocketAddr = "127.75.4.1:8080".parse().unwrap();
    let dir = std::env::temp_dir().join(format!("rvs-config-save-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let conf = |rs: &str| {
        format!(
            "global_defs {{\n    router_id saver\n    config_save_dir {}/\n}}\n{}",
            dir.display(),
            vs("127.75.4.1", 8080, "", &[(rs, 9100, 1)])
        )
    };
    let d = Daemon::start("config-save", &conf("127.75.4.2"), vip);
    let pid = d.pid();
    let (ok, out) = d.reload(&conf("127.75.4.3"));
    assert!(ok, "{out}");
    let read = |name: &str| {
        std::fs::read_to_string(dir.join(format!("keepalived_{name}")))
            .unwrap_or_else(|e| panic!("keepalived_{name}: {e}"))
    };
    let pre = read(&format!("check.{pid}.1.pre"));
    let post = read(&format!("check.{pid}.1.post"));
    assert!(
        pre.contains("127.75.4.2:9100") && !pre.contains("127.75.4.3"),
        "{pre}"
    );
    assert!(
        post.contains("127.75.4.3:9100") && !post.contains("127.75.4.2"),
        "{post}"
    );
    for when in ["pre", "post"] {
        let v = read(&format!("vrrp.{pid}.1.{when}"));
        assert!(v.contains(" Router ID = saver"), "{v}");
    }
    // The second reload is number 2.
    let (ok, out) = d.reload(&conf("127.75.4.2"));
    assert!(ok, "{out}");
    assert!(read(&format!("check.{pid}.2.post")).contains("127.75.4.2:9100"));
    d.stop();
    let _ = std::fs::remove_dir_all(&dir);
}
