//! The few system calls no safe wrapper offers: `IPV6_CHECKSUM` / `IPV6_RECVHOPLIMIT`, `recvmsg`
//! with the hop limit and destination of an IPv6 VRRP packet, and `sched_setscheduler`
//! (rustix has affinity and nice, not the real-time policies). Every `unsafe` block
//! states why it is sound.
#![allow(unsafe_code)]

use socket2::{SockAddr, Socket, Type};
use std::io;
use std::net::{Ipv6Addr, SocketAddrV6};
use std::os::fd::AsRawFd;

/// An `AF_PACKET`/`SOCK_RAW` socket bound to interface `ifindex`, for sending whole
/// Ethernet frames (gratuitous ARP).
pub fn packet_socket(ifindex: u32) -> io::Result<Socket> {
    rvs_packet::bound(ifindex, Type::RAW, rvs_packet::ETH_P_ARP)
}

fn setsockopt_int(s: &Socket, level: i32, name: i32, value: i32) -> io::Result<()> {
    // SAFETY: the fd is open (owned by `s`), the option value points to a live i32 and
    // its length is that of an i32, as the kernel expects for these integer options.
    let r = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            level,
            name,
            std::ptr::from_ref(&value).cast(),
            u32::try_from(size_of::<i32>()).unwrap_or(4),
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The kernel computes (on send) and verifies (on receive, dropping bad packets) the
/// VRRPv3/IPv6 checksum at offset 6, with the pseudo-header of the actual addresses.
pub fn set_ipv6_checksum(s: &Socket) -> io::Result<()> {
    setsockopt_int(s, libc::IPPROTO_IPV6, libc::IPV6_CHECKSUM, 6)
}

/// Ask for the hop limit and destination of every received packet (`recv_v6`).
pub fn set_recv_hoplimit(s: &Socket) -> io::Result<()> {
    setsockopt_int(s, libc::IPPROTO_IPV6, libc::IPV6_RECVHOPLIMIT, 1)?;
    setsockopt_int(s, libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO, 1)
}

/// One received IPv6 packet's metadata.
#[derive(Debug, Clone, Copy)]
pub struct Recv6 {
    pub len: usize,
    pub src: Ipv6Addr,
    pub dst: Option<Ipv6Addr>,
    pub hop_limit: Option<u8>,
}

/// `recvmsg` on a non-blocking IPv6 raw socket: the payload, its source, hop limit and
/// destination.
pub fn recv_v6(sock: &Socket, buf: &mut [u8]) -> io::Result<Recv6> {
    let mut control = [0u64; 16];
    // SAFETY: zeroed sockaddr_in6 and msghdr are valid values of these C structs.
    let mut from: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: as above.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_name = std::ptr::from_mut(&mut from).cast();
    msg.msg_namelen = u32::try_from(size_of::<libc::sockaddr_in6>()).unwrap_or(28);
    msg.msg_iov = &raw mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = size_of_val(&control);
    // SAFETY: every pointer in `msg` refers to a live local buffer of the stated length
    // (`buf` through `iov`, `from`, `control`), all outliving the call.
    let got = unsafe { libc::recvmsg(sock.as_raw_fd(), &raw mut msg, libc::MSG_DONTWAIT) };
    let len = usize::try_from(got).map_err(|_| io::Error::last_os_error())?;
    let mut out = Recv6 {
        len,
        src: Ipv6Addr::from(from.sin6_addr.s6_addr),
        dst: None,
        hop_limit: None,
    };
    // SAFETY: the CMSG_* functions walk the control buffer the kernel filled, bounded by
    // `msg_controllen`; each data pointer is read with the type the (level, type) pair
    // defines (an int for IPV6_HOPLIMIT, in6_pktinfo for IPV6_PKTINFO), unaligned.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&raw const msg);
        while !cmsg.is_null() {
            let h = &*cmsg;
            if h.cmsg_level == libc::IPPROTO_IPV6 && h.cmsg_type == libc::IPV6_HOPLIMIT {
                let v = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<i32>());
                out.hop_limit = u8::try_from(v).ok();
            } else if h.cmsg_level == libc::IPPROTO_IPV6 && h.cmsg_type == libc::IPV6_PKTINFO {
                let v = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::in6_pktinfo>());
                out.dst = Some(Ipv6Addr::from(v.ipi6_addr.s6_addr));
            }
            cmsg = libc::CMSG_NXTHDR(&raw const msg, cmsg);
        }
    }
    Ok(out)
}

/// A link-local destination with its scope.
pub fn scoped(addr: Ipv6Addr, ifindex: u32) -> SockAddr {
    SockAddr::from(SocketAddrV6::new(addr, 0, 0, ifindex))
}

/// mkfifo(3), mode 0600.
pub fn mkfifo(path: &std::path::Path) -> io::Result<()> {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| io::Error::other("NUL in path"))?;
    // SAFETY: `c` is a valid NUL-terminated path that lives across the call.
    let r = unsafe { libc::mkfifo(c.as_ptr(), 0o600) };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Registers a socket with tokio's reactor.
pub fn async_fd(s: Socket) -> io::Result<tokio::io::unix::AsyncFd<Socket>> {
    rvs_packet::async_fd(s)
}

/// keepalived's `RLIMIT_RTTIME` (µs) for a real-time process that sets none.
pub const RT_RLIMIT_DEFAULT: u64 = 10_000;

/// `RLIMIT_RTTIME` as keepalived sets it for a real-time process: the kernel warns
/// (`SIGXCPU`) at half of `limit` µs without blocking, and kills at `limit`.
pub fn set_rttime_limit(limit: u64) -> io::Result<()> {
    rustix::process::setrlimit(
        rustix::process::Resource::Rttime,
        rustix::process::Rlimit {
            current: Some(limit / 2),
            maximum: Some(limit),
        },
    )?;
    Ok(())
}

/// The real-time priority this process's control threads run at (0: none); the VRRP
/// engine raises it (`max_auto_priority`) from there.
static RT_PRIORITY: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);

/// The priority last set by [`set_round_robin`].
pub fn rt_priority() -> u8 {
    RT_PRIORITY.load(std::sync::atomic::Ordering::Relaxed)
}

/// Makes the calling thread real-time (`SCHED_RR` at `priority`, 1..99), with
/// `SCHED_RESET_ON_FORK` so that processes it starts (notify scripts) run normally.
pub fn set_round_robin(priority: u8) -> io::Result<()> {
    let param = libc::sched_param {
        sched_priority: i32::from(priority),
    };
    // SAFETY: `param` is a valid, initialised sched_param that outlives the call; pid 0
    // is the calling thread; the kernel only reads the struct.
    let r = unsafe {
        libc::sched_setscheduler(
            0,
            libc::SCHED_RR | libc::SCHED_RESET_ON_FORK,
            &raw const param,
        )
    };
    if r == 0 {
        RT_PRIORITY.store(priority, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
