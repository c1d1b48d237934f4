//! `rvs-packet`: `AF_PACKET` sockets, for what must leave by an interface to a MAC the
//! kernel's routing would not choose (gratuitous ARP, a health probe along the LVS-DR
//! path), and raw sockets on tokio's reactor. socket2 creates the sockets; what it
//! cannot do without `unsafe` — build a `sockaddr_ll`, register a socket with tokio — is
//! done here once.
#![allow(unsafe_code)]

use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::io;

/// `ETH_P_ARP`.
pub const ETH_P_ARP: u16 = 0x0806;
/// `ETH_P_IP`.
pub const ETH_P_IP: u16 = 0x0800;

/// The link-layer address of interface `ifindex` for protocol `proto` (an `ETH_P_*`), to
/// `mac` (all zero: none, as `bind` takes it).
pub fn link_addr(ifindex: u32, proto: u16, mac: [u8; 6]) -> io::Result<SockAddr> {
    let ifindex = i32::try_from(ifindex).map_err(|_| io::Error::other("ifindex out of range"))?;
    // SAFETY: `sockaddr_ll` is plain old data for which all-zero bytes are valid.
    let mut ll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    ll.sll_family = u16::try_from(libc::AF_PACKET).unwrap_or(17);
    ll.sll_protocol = proto.to_be();
    ll.sll_ifindex = ifindex;
    ll.sll_halen = 6;
    ll.sll_addr[..6].copy_from_slice(&mac);
    // SAFETY: `sockaddr_storage` is plain old data for which all-zero bytes are valid; the
    // `sockaddr_ll` written at its start is smaller than it and suitably aligned by the
    // storage's alignment, and the length reported is the `sockaddr_ll`'s exactly, which is
    // what `SockAddr::new` requires of the pair it takes.
    let addr = unsafe {
        let mut storage: libc::sockaddr_storage = std::mem::zeroed();
        std::ptr::write(
            std::ptr::from_mut(&mut storage).cast::<libc::sockaddr_ll>(),
            ll,
        );
        let len = u32::try_from(size_of::<libc::sockaddr_ll>()).unwrap_or(20);
        SockAddr::new(storage, len)
    };
    Ok(addr)
}

/// Registers a socket with tokio's reactor.
pub fn async_fd(s: Socket) -> io::Result<tokio::io::unix::AsyncFd<Socket>> {
    // SAFETY: a `Socket` owns its descriptor: it stays open, and `as_raw_fd` returns the
    // same one, until the `Socket` is dropped, which only the `AsyncFd` can do now.
    unsafe { tokio::io::unix::AsyncFd::register(s) }.map_err(io::Error::from)
}

/// An `AF_PACKET` socket bound to interface `ifindex` for protocol `proto` (an
/// `ETH_P_*`, which it also receives), non-blocking. `Type::RAW` sends and receives whole
/// Ethernet frames, `Type::DGRAM` the network-layer packet (the kernel writes the
/// Ethernet header to the MAC `send_to` names).
pub fn bound(ifindex: u32, ty: Type, proto: u16) -> io::Result<Socket> {
    let s = Socket::new(
        Domain::PACKET,
        ty,
        Some(Protocol::from(i32::from(proto.to_be()))),
    )?;
    s.bind(&link_addr(ifindex, proto, [0; 6])?)?;
    s.set_nonblocking(true)?;
    Ok(s)
}
