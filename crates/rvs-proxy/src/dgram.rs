//! Datagram sockets moved in batches: `recvmmsg(2)` and `sendmmsg(2)` (through nix) on
//! tokio's `UdpSocket`, so that a burst of datagrams costs one system call each way
//! instead of one per datagram (issue #20: the UDP proxy made four per DNS query). A
//! batch that comes back short of its slots drained the socket, and its readiness is
//! cleared then — reported to tokio as `EWOULDBLOCK`, which clears it only if no event
//! came since — so no receive that would block follows it.

use nix::sys::socket::{recvmmsg, sendmmsg, MsgFlags, MultiHeaders, SockaddrStorage};
use std::io::{ErrorKind, IoSlice, IoSliceMut};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use tokio::io::Interest;
use tokio::net::UdpSocket;

/// Datagrams one system call moves at most.
pub(crate) const BATCH: usize = 32;

/// What a receive brought: slot `i`'s datagram length and source.
pub(crate) type Got = Vec<(usize, Option<SocketAddr>)>;

/// Waits for datagrams, then receives up to one per slot; returns how many came (at
/// least one).
pub(crate) async fn recv_batch(
    s: &UdpSocket,
    slots: &mut [&mut [u8]],
    got: &mut Got,
) -> std::io::Result<usize> {
    loop {
        s.readable().await?;
        let n = recv_ready(s, slots, got)?;
        if n > 0 {
            return Ok(n);
        }
    }
}

/// Receives what is there now, up to one datagram per slot, without waiting: 0 when
/// nothing is.
pub(crate) fn recv_ready(
    s: &UdpSocket,
    slots: &mut [&mut [u8]],
    got: &mut Got,
) -> std::io::Result<usize> {
    got.clear();
    let want = slots.len();
    let r = s.try_io(Interest::READABLE, || {
        let n = recv_now(s, slots, got)?;
        if n < want {
            // Drained: tokio clears the readiness on this (unless an event came since).
            Err(ErrorKind::WouldBlock.into())
        } else {
            Ok(())
        }
    });
    match r {
        Err(e) if e.kind() != ErrorKind::WouldBlock => Err(e),
        _ => Ok(got.len()),
    }
}

/// Sends every datagram of `msgs` to `to`, in as few system calls as the socket's send
/// buffer allows (waiting when it is full).
pub(crate) async fn send_batch(
    s: &UdpSocket,
    msgs: &[&[u8]],
    to: SocketAddr,
) -> std::io::Result<()> {
    let to = SockaddrStorage::from(to);
    let mut done = 0;
    while done < msgs.len() {
        let rest = &msgs[done..];
        match s.try_io(Interest::WRITABLE, || send_now(s, rest, &to)) {
            Ok(n) => done += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => s.writable().await?,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// One `recvmmsg` without waiting.
fn recv_now(s: &UdpSocket, slots: &mut [&mut [u8]], got: &mut Got) -> std::io::Result<usize> {
    let mut headers = MultiHeaders::<SockaddrStorage>::preallocate(slots.len(), None);
    let mut iovs: Vec<[IoSliceMut<'_>; 1]> = slots
        .iter_mut()
        .map(|b| [IoSliceMut::new(&mut b[..])])
        .collect();
    let results = recvmmsg(
        s.as_raw_fd(),
        &mut headers,
        iovs.iter_mut(),
        MsgFlags::MSG_DONTWAIT,
        None,
    )
    .map_err(std::io::Error::from)?;
    for r in results {
        got.push((r.bytes, r.address.as_ref().and_then(socket_addr)));
    }
    Ok(got.len())
}

/// One `sendmmsg` without waiting: how many datagrams went.
fn send_now(s: &UdpSocket, msgs: &[&[u8]], to: &SockaddrStorage) -> std::io::Result<usize> {
    let n = msgs.len().min(BATCH);
    let mut headers = MultiHeaders::<SockaddrStorage>::preallocate(n, None);
    let iovs: Vec<[IoSlice<'_>; 1]> = msgs[..n].iter().map(|m| [IoSlice::new(m)]).collect();
    let addrs = vec![Some(*to); n];
    let sent = sendmmsg(
        s.as_raw_fd(),
        &mut headers,
        &iovs,
        &addrs,
        [],
        MsgFlags::MSG_DONTWAIT,
    )
    .map_err(std::io::Error::from)?;
    Ok(sent.count())
}

/// The source of a received datagram.
fn socket_addr(a: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = a.as_sockaddr_in() {
        return Some(SocketAddr::from(std::net::SocketAddrV4::from(*v4)));
    }
    a.as_sockaddr_in6()
        .map(|v6| SocketAddr::from(std::net::SocketAddrV6::from(*v6)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_burst_is_received_and_sent_in_batches() {
        let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let (ta, tb) = (a.local_addr().unwrap(), b.local_addr().unwrap());
        // 40 datagrams of different sizes (one the largest a UDP payload can be), a → b.
        let msgs: Vec<Vec<u8>> = (0..40u8)
            .map(|i| vec![i; if i == 7 { 65_507 } else { usize::from(i) + 1 }])
            .collect();
        let refs: Vec<&[u8]> = msgs.iter().map(Vec::as_slice).collect();
        send_batch(&a, &refs, tb).await.unwrap();
        let mut store = vec![0u8; BATCH * 65536];
        let mut slots: Vec<&mut [u8]> = store.chunks_mut(65536).collect();
        let mut got = Vec::new();
        let mut seen = Vec::new();
        while seen.len() < 40 {
            let n = recv_batch(&b, &mut slots, &mut got).await.unwrap();
            assert!((1..=BATCH).contains(&n));
            for (i, &(len, from)) in got.iter().enumerate() {
                assert_eq!(from, Some(ta));
                seen.push(slots[i][..len].to_vec());
            }
        }
        assert_eq!(seen, msgs, "every datagram, whole and in order");
        // Drained: nothing now, and no wait.
        assert_eq!(recv_ready(&b, &mut slots, &mut got).unwrap(), 0);
    }
}
