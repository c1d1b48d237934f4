//! A bounded UDP load generator for bench/xdp.sh: `blast DEST:PORT SECONDS THREADS`
//! sends 18-byte datagrams (64-byte Ethernet frames) from THREADS sockets for SECONDS
//! seconds, 64 per `sendmmsg` call (a system call per datagram made the generator the
//! bottleneck), and prints how many it sent. Run it inside the client's namespace only.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(dest), Some(secs), Some(threads)) = (
        args.get(1).and_then(|a| a.parse::<SocketAddr>().ok()),
        args.get(2).and_then(|a| a.parse::<f64>().ok()),
        args.get(3).and_then(|a| a.parse::<usize>().ok()),
    ) else {
        eprintln!("usage: blast DEST:PORT SECONDS THREADS");
        std::process::exit(2);
    };
    let limit = Duration::from_secs_f64(secs.clamp(0.1, 60.0));
    let handles: Vec<_> = (0..threads.clamp(1, 16))
        .map(|_| {
            std::thread::spawn(move || {
                let Ok(s) = UdpSocket::bind("0.0.0.0:0") else {
                    return 0u64;
                };
                if s.connect(dest).is_err() {
                    return 0;
                }
                let buf = [0u8; 18];
                let iov = [std::io::IoSlice::new(&buf)];
                let mut controls: Vec<rustix::net::SendAncillaryBuffer<'_, '_, '_>> = (0..64)
                    .map(|_| rustix::net::SendAncillaryBuffer::default())
                    .collect();
                let mut msgs: Vec<rustix::net::MMsgHdr<'_>> = controls
                    .iter_mut()
                    .map(|c| rustix::net::MMsgHdr::new(&iov, c))
                    .collect();
                let t0 = Instant::now();
                let mut n = 0u64;
                while t0.elapsed() < limit {
                    for _ in 0..64 {
                        // A full queue (ENOBUFS) drops the batch: counted as not sent.
                        if let Ok(k) =
                            rustix::net::sendmmsg(&s, &mut msgs, rustix::net::SendFlags::empty())
                        {
                            n += k as u64;
                        }
                    }
                }
                n
            })
        })
        .collect();
    let sent: u64 = handles.into_iter().map(|h| h.join().unwrap_or(0)).sum();
    println!("{sent}");
}
