//! The kernel's floor under `TCP_CHECK`: blocking connect + close to the same loopback
//! addresses at the same rate, with no runtime, timers or epoll. `bench/checks.sh` runs
//! it next to rvs and reports both CPU figures, so that what rvs adds is visible.
//!
//! Usage: `connect_floor N PORT RATE SECONDS` — connects to 127.51.(i / 250).(i % 250 + 1)
//! for i in 0..N round-robin, RATE connections a second, for SECONDS.

use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .map(|a| a.parse().unwrap_or(0))
        .collect();
    let [n, port, rate, secs] = args[..] else {
        eprintln!("usage: connect_floor N PORT RATE SECONDS");
        std::process::exit(2);
    };
    let (n, rate) = (n.max(1), rate.max(1));
    let port = u16::try_from(port).unwrap_or(19000);
    let targets: Vec<SocketAddr> = (0..n)
        .map(|i| {
            let (hi, lo) = (
                u8::try_from(i / 250).unwrap_or(0),
                u8::try_from(i % 250 + 1).unwrap_or(1),
            );
            SocketAddr::from(([127, 51, hi, lo], port))
        })
        .collect();
    let start = Instant::now();
    let total = rate * secs;
    let mut failed = 0u64;
    for i in 0..total {
        // Pace: connection i is due at i / rate seconds.
        let due = start + Duration::from_nanos(i.saturating_mul(1_000_000_000) / rate);
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        let t = targets[usize::try_from(i % n).unwrap_or(0)];
        if TcpStream::connect(t).is_err() {
            failed += 1;
        }
    }
    println!(
        "{total} connects in {:.1} s, {failed} failed",
        start.elapsed().as_secs_f64()
    );
}
