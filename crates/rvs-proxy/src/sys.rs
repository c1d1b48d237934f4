//! The C library calls the proxy makes that no crate wraps: `malloc_trim(3)`, and the
//! `IP_BIND_ADDRESS_NO_PORT` socket option (FULLNAT's local addresses).
//!
//! Why by hand: after a flood of connections closes, glibc keeps the freed per-connection
//! buffers in its arenas (a slowloris flood once left 234 MB resident with no connection
//! open); `malloc_trim` hands the free pages back to the kernel. No allocator crate is
//! worth swapping the global allocator for this one call.

#![allow(unsafe_code)]

/// `IP_BIND_ADDRESS_NO_PORT`: a socket bound to a local address takes its port at
/// `connect`, unique per destination, rather than at `bind` (where each local address
/// would run out of ports after ~28k connections whatever the real servers).
pub fn bind_address_no_port(fd: std::os::fd::BorrowedFd<'_>) -> std::io::Result<()> {
    use std::os::fd::AsRawFd as _;
    let on: libc::c_int = 1;
    // SAFETY: setsockopt reads `size_of::<c_int>()` bytes from a pointer to a live
    // c_int; the descriptor is borrowed, so it is open for the call.
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            std::ptr::from_ref(&on).cast(),
            libc::socklen_t::try_from(size_of::<libc::c_int>()).unwrap_or(4),
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Returns the allocator's free memory to the kernel (glibc; a no-op elsewhere).
pub fn trim_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free pages the allocator owns; it reads or writes
    // no memory of ours, takes no pointer, and is thread-safe in glibc.
    unsafe {
        libc::malloc_trim(0);
    }
}
