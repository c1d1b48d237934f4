//! The one socket option no safe wrapper offers: the minimum TTL / hop count of received
//! packets (RFC 5082 GTSM), which makes the kernel drop BFD packets from beyond the link.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::AsRawFd;

/// `IP_MINTTL`: IPv4 packets whose TTL is below `min` are dropped by the kernel before
/// they reach the socket.
pub fn set_min_ttl(s: &socket2::Socket, min: u8) -> io::Result<()> {
    let (level, name) = (libc::IPPROTO_IP, libc::IP_MINTTL);
    let value = i32::from(min);
    // SAFETY: the fd is open (owned by `s`); the option value points to a live i32 and the
    // length given is that of an i32, which is what the kernel reads for this option.
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
